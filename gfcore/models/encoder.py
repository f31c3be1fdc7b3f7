"""The PointNet encoder: a point cloud to a shape latent ``z`` (ShapeGF Sec. 3.4).

Taught in chapter 4 (Conditional fields in 2D).
"""
from __future__ import annotations

import torch
from torch import nn

from gfcore import _checks


def pointwise_bn(bn: nn.BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
    """Batch norm of per-point features ``(B, N, C)``, statistics over all ``B * N`` points (as a 1x1 conv + BN)."""
    shape = h.shape
    return bn(h.reshape(-1, shape[-1])).view(shape)


class PointNetEncoder(nn.Module):
    """Deterministic PointNet: per-point MLP, max over points, then an MLP to ``z``.

    Layout (as the official ShapeGF encoder): per-point linears ``d -> 128 -> 128 -> 256 -> 512``, each followed by
    batch norm, ReLU after the first three only; max-pool over points; ``512 -> 256 -> 128`` (linear, BN, ReLU);
    a final linear ``128 -> zdim``. 365,184 parameters at ``in_dim=3, zdim=128``.

    Per-point layers are ``nn.Linear`` on ``(B, N, C)``; their batch norm takes statistics over all ``B * N``
    points, so the encoder is invariant to point order in train and eval mode alike.

    Args:
        in_dim: spatial dimension ``d`` of the input points (2 or 3).
        zdim: size of the latent code.

    Shapes:
        ``forward(points (B, N, d)) -> z (B, zdim)``; any ``N >= 1``. In train mode ``B >= 2`` (batch norm).

    Raises:
        ValueError: ``points`` not ``(B, N, in_dim)``, empty, or holding NaN/inf.

    Taught in chapter 4/5.
    """

    def __init__(self, in_dim: int = 3, zdim: int = 128):
        super().__init__()
        _checks.positive_int("in_dim", in_dim)
        _checks.positive_int("zdim", zdim)
        self.in_dim = in_dim
        self.zdim = zdim
        widths = [in_dim, 128, 128, 256, 512]
        self.point_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.point_norms = nn.ModuleList(nn.BatchNorm1d(b) for b in widths[1:])
        self.fc_layers = nn.ModuleList([nn.Linear(512, 256), nn.Linear(256, 128)])
        self.fc_norms = nn.ModuleList([nn.BatchNorm1d(256), nn.BatchNorm1d(128)])
        self.out = nn.Linear(128, zdim)

    def forward(self, points: torch.Tensor, *, check_values: bool = True) -> torch.Tensor:
        """``(B, N, in_dim) -> (B, zdim)``; ``check_values=False`` skips the NaN check (a host sync; the trainer
        checks its batches on the device)."""
        points = _checks.point_cloud("points", points, batched=True, dim=self.in_dim, values=check_values)
        if self.training and points.shape[0] < 2:
            raise ValueError(f"points has batch size {points.shape[0]}; batch norm in train mode needs >= 2 "
                             "shapes (call .eval() to encode a single shape)")
        h = points
        last = len(self.point_layers) - 1
        for i, (lin, bn) in enumerate(zip(self.point_layers, self.point_norms)):
            h = pointwise_bn(bn, lin(h))
            if i < last:
                h = torch.relu(h)
        h = h.max(dim=1).values                                            # (B, 512)
        for lin, bn in zip(self.fc_layers, self.fc_norms):
            h = torch.relu(bn(lin(h)))
        return self.out(h)
