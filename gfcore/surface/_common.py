"""Helpers shared by the surface modules: argument checks, chunked evaluation of ``sigma^2 * score_fn``."""
from __future__ import annotations

import numpy as np
import torch

from gfcore import _checks

KEEP = ("outer", "all")
DEFAULT_CHUNK = 2**16  # query points per score_fn call


# ----------------------------------------------------------------------------------------------- helpers

def _sigma_b(sigma, batch: int, like: torch.Tensor) -> torch.Tensor:
    """``sigma`` (number, 0-D or ``(B,)``) as a validated ``(B,)`` tensor in ``like``'s dtype and device."""
    return _checks.sigma_per_shape(sigma, batch, like=like).reshape(-1).expand(batch).contiguous()


def _chunk_size(chunk_size) -> int:
    return DEFAULT_CHUNK if chunk_size is None else _checks.positive_int("chunk_size", chunk_size)


def _resolution(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _score(score_fn, x: torch.Tensor, sigma_b: torch.Tensor) -> torch.Tensor:
    out = score_fn(x, sigma_b)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"score_fn returned {got}, expected a tensor of shape {tuple(x.shape)}")
    return out


def _displacement(score_fn, x: torch.Tensor, sigma_b: torch.Tensor, chunk: int) -> torch.Tensor:
    """``sigma^2 * score_fn(x, sigma)`` for ``x (B, M, d)``, chunked over ``M``: ``(B, M, d)``."""
    s2 = sigma_b.square().view(-1, 1, 1)
    return torch.cat([_score(score_fn, x[:, i:i + chunk], sigma_b) * s2.to(x.dtype)
                      for i in range(0, x.shape[1], chunk)], dim=1)


def _queries(name: str, x) -> tuple[torch.Tensor, bool]:
    x = _checks.point_cloud(name, x)
    return (x, True) if x.dim() == 3 else (x.unsqueeze(0), False)


def _bounds(bounds) -> tuple[np.ndarray, np.ndarray]:
    """``b`` -> ``[-b, b]^3``; ``(lo, hi)`` numbers -> ``[lo, hi]^3``; ``((3,), (3,))`` -> a box per axis."""
    if isinstance(bounds, torch.Tensor):
        bounds = bounds.detach().cpu().numpy()
    try:
        arr = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"bounds must be a number, (lo, hi) or ((3,), (3,)), got {bounds!r}") from err
    if arr.ndim == 0:
        lo, hi = -np.full(3, float(arr)), np.full(3, float(arr))
    elif arr.shape == (2,):
        lo, hi = np.full(3, arr[0]), np.full(3, arr[1])
    elif arr.shape == (2, 3):
        lo, hi = arr[0].copy(), arr[1].copy()
    else:
        raise ValueError(f"bounds must be a number, (lo, hi) or ((3,), (3,)), got shape {arr.shape}")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or (lo >= hi).any():
        raise ValueError(f"bounds must have finite min < max on every axis, got min {lo.tolist()}, "
                         f"max {hi.tolist()}")
    return lo, hi


def _device(device) -> torch.device:
    if device is None:
        from gfcore.utils import default_device

        return default_device()
    return torch.device(device)
