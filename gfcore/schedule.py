"""Noise ladders, loss weights (ShapeGF Sec. 3.2) and learning-rate schedules.

Every sigma schedule takes ``(sigma_max, sigma_min, n)`` and returns a descending ``(n,)`` tensor, so a chapter
swaps one for another in one line; every learning-rate schedule is a name for :func:`lr_factor`.
Taught in chapters 2 and 3 (sigmas) and 5 (learning rate).
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


LR_SCHEDULES = ("official", "constant", "cosine")


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate before optimizer step ``step`` (0-based) of ``total_steps``.

    ``"official"`` (the ShapeGF recipe): 1 for the first half, then linear to 0.01 at 95% of the run, 0.01 after.
    ``"cosine"``: half a cosine from 1 to 0. ``"constant"``: 1.

    Args:
        schedule: one of :data:`LR_SCHEDULES`.
        step: the 0-based optimizer step.
        total_steps: the run length in steps.

    Returns:
        A float in ``[0, 1]``.

    Raises:
        ValueError: unknown ``schedule``.

    Taught in chapter 5 (The full 3D model).
    """
    _checks.choice("schedule", schedule, LR_SCHEDULES)
    t = step / max(int(total_steps), 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
    if t < 0.5:
        return 1.0
    return max(0.01, 1.0 - 0.99 * (t - 0.5) / 0.45)
