"""A small noise-conditional score network for 2D toy shapes (chapter 2)."""
from __future__ import annotations

import math

import torch
from torch import nn

from gfcore import _checks


class ToyScoreNet(nn.Module):
    """MLP ``s_theta(x, sigma)`` for one shape: input ``x`` and a Fourier embedding of ``log sigma``.

    The network outputs ``sigma * score`` and divides by ``sigma`` (Song & Ermon 2020's scaling), so every noise
    level asks for an output of order one. Unconditional on shape: it learns the field of the data it is trained
    on.

    Args:
        dim: spatial dimension ``d``.
        hidden: width of the hidden layers.
        depth: number of hidden layers.
        num_freqs: Fourier frequencies of the ``log sigma`` embedding.

    Shapes:
        ``forward(x (B, M, d), sigma (B,)) -> score (B, M, d)``; also accepts ``x (M, d)`` with a float ``sigma``.

    Taught in chapter 2.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, num_freqs: int = 8):
        super().__init__()
        _checks.positive_int("dim", dim)
        _checks.positive_int("hidden", hidden)
        _checks.positive_int("depth", depth)
        _checks.positive_int("num_freqs", num_freqs)
        self.dim = dim
        self.register_buffer("freqs", 2.0 ** torch.arange(num_freqs, dtype=torch.float32) * (math.pi / 8))
        layers, width = [], dim + 2 * num_freqs
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        squeeze = x.dim() == 2
        xb = x.unsqueeze(0) if squeeze else x
        if xb.dim() != 3 or xb.shape[-1] != self.dim:
            raise ValueError(f"x must be (B, M, {self.dim}) or (M, {self.dim}), got shape {tuple(x.shape)}")
        s = _checks.sigma_per_shape(sigma, xb.shape[0], like=xb).expand(xb.shape[0], 1, 1)
        angles = torch.log(s) * self.freqs.to(xb.dtype)                     # (B, 1, F)
        emb = torch.cat([angles.sin(), angles.cos()], dim=-1).expand(-1, xb.shape[1], -1)
        out = self.net(torch.cat([xb, emb], dim=-1)) / s
        return out.squeeze(0) if squeeze else out
