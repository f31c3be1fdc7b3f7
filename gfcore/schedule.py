"""Noise ladders and loss weights (ShapeGF Sec. 3.2).

Every schedule takes ``(sigma_max, sigma_min, n)`` and returns a descending ``(n,)`` tensor, so a chapter swaps one
for another in one line. Taught in chapters 2 and 3.
"""
from __future__ import annotations

import math

import torch

from gfcore import _checks


def _validate(sigma_max, sigma_min, n):
    _checks.positive("sigma_max", sigma_max)
    _checks.positive("sigma_min", sigma_min)
    _checks.positive_int("n", n)
    if sigma_min > sigma_max:
        raise ValueError(f"sigma_min ({sigma_min}) must be <= sigma_max ({sigma_max})")
    if n == 1 and sigma_min != sigma_max:
        raise ValueError(f"n=1 needs sigma_min == sigma_max, got {sigma_max} and {sigma_min}")


def geometric_sigmas(sigma_max: float, sigma_min: float, n: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Geometric ladder ``sigma_max * (sigma_min / sigma_max) ** (i / (n - 1))``, ``i = 0..n-1``.

    The official setting is ``geometric_sigmas(1.0, 0.01, 10)`` (auto-encoding) and ``(1.0, 0.01, 5)`` (generation).

    Returns:
        ``(n,)`` descending tensor.

    Taught in chapter 2.
    """
    _validate(sigma_max, sigma_min, n)
    if n == 1:
        return torch.tensor([float(sigma_max)], dtype=dtype, device=device)
    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    out = torch.exp(math.log(sigma_max) + t * (math.log(sigma_min) - math.log(sigma_max)))
    return out.to(dtype=dtype, device=device)


def linear_sigmas(sigma_max: float, sigma_min: float, n: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Evenly spaced ladder from ``sigma_max`` down to ``sigma_min``; an ablation for chapter 3.

    Returns:
        ``(n,)`` descending tensor.
    """
    _validate(sigma_max, sigma_min, n)
    return torch.linspace(float(sigma_max), float(sigma_min), n, dtype=torch.float64).to(dtype=dtype, device=device)


SCHEDULES = {"geometric": geometric_sigmas, "linear": linear_sigmas}


def loss_weight(sigma: torch.Tensor, weighting: str = "shapegf") -> torch.Tensor:
    """The weight ``lambda(sigma)`` of the score-matching loss in score units.

    ``"shapegf"``: ``sigma^3``, what the official code's loss amounts to
    (``0.5 |sigma^2 s_theta - sigma^2 s|^2 / sigma``); ``"ncsn"``: ``sigma^2`` (Song & Ermon 2019), which makes
    every level's loss of order one.

    Taught in chapter 2.
    """
    _checks.choice("weighting", weighting, WEIGHTINGS)
    return sigma ** WEIGHTINGS[weighting]


WEIGHTINGS = {"shapegf": 3, "ncsn": 2}
