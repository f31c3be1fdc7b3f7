"""Validation of user input, shared by the library.

Every check raises ``ValueError`` (or ``TypeError``) naming the argument, the value seen and what was expected.
Library code calls these up front instead of ``assert`` (asserts vanish under ``python -O``).
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def tensor(name: str, value, *, ndims: tuple[int, ...] | None = None, dim: int | None = None,
           values: bool = True) -> torch.Tensor:
    """Check that ``value`` is a floating tensor with one of ``ndims`` dimensions and last size ``dim``, and (with
    ``values``, the default) that it holds no NaN or inf: a read of its values, which on an accelerator waits for
    the device (a host synchronisation; training loops check on the device instead and pass ``values=False``).

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong number of dimensions, wrong last size, empty, NaN or inf.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if ndims is not None and value.dim() not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(value.shape)}")
    if dim is not None and value.shape[-1] != dim:
        raise ValueError(f"{name} must have last dimension {dim}, got shape {tuple(value.shape)}")
    if value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
    if values:
        finite(name, value)
    return value


def has_values(value: torch.Tensor) -> bool:
    """False for a tensor on the ``meta`` device: it has shapes, dtypes and a device but no values, so the checks
    of values (finite, positive) pass it by. The test battery runs the model paths on ``meta`` to prove that every
    tensor is made on its input's device."""
    return value.device.type != "meta"


def finite(name: str, value: torch.Tensor) -> torch.Tensor:
    """Raise ``ValueError`` if ``value`` holds NaN or inf (a ``meta`` tensor, which holds no values, passes)."""
    if has_values(value) and not torch.isfinite(value).all():
        n_nan = int(torch.isnan(value).sum())
        n_inf = int(torch.isinf(value).sum())
        raise ValueError(f"{name} contains {n_nan} NaN and {n_inf} inf values")
    return value


def point_cloud(name: str, value, *, dim: int | None = None, batched: bool | None = None,
                values: bool = True) -> torch.Tensor:
    """Check a point cloud: ``(N, d)`` (``batched`` False/None) or ``(B, N, d)`` (``batched`` True/None); its
    values too unless ``values=False`` (see :func:`tensor`)."""
    ndims = {None: (2, 3), True: (3,), False: (2,)}[batched]
    value = tensor(name, value, ndims=ndims, dim=dim, values=values)
    if value.shape[-2] == 0:
        raise ValueError(f"{name} is an empty point cloud (shape {tuple(value.shape)})")
    return value


def positive(name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` (a number or tensor) is finite and > 0 everywhere."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 0:
            raise ValueError(f"{name} is empty")
        if has_values(value) and (not torch.isfinite(value).all() or (value <= 0).any()):
            raise ValueError(f"{name} must be finite and > 0, got {value.detach().cpu().tolist()}")
    else:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}")
        if not math.isfinite(float(value)) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {value}")


def positive_int(name: str, value) -> int:
    """Raise unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def choice(name: str, value, options) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``options`` (listed in the message)."""
    if value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")


def sigma_per_shape(sigma, batch: int | None, *, like: torch.Tensor) -> torch.Tensor:
    """Turn ``sigma`` (a number, 0-D tensor or ``(B,)`` tensor) into a tensor broadcastable as ``(B, 1, 1)``.

    Returns a tensor of shape ``(B, 1, 1)`` (or ``(1, 1, 1)`` for a scalar) in ``like``'s dtype and device.
    """
    positive("sigma", sigma)
    if isinstance(sigma, torch.Tensor):
        if sigma.dim() == 0:
            sigma = sigma.reshape(1)
        if sigma.dim() != 1:
            raise ValueError(f"sigma must be a number or a (B,) tensor, got shape {tuple(sigma.shape)}")
        if sigma.shape[0] != 1 and batch is None:
            raise ValueError(f"sigma of shape {tuple(sigma.shape)} needs batched (B, M, d) inputs")
        if sigma.shape[0] != 1 and sigma.shape[0] != batch:
            raise ValueError(f"sigma has {sigma.shape[0]} values but the batch has {batch} shapes")
        return sigma.to(device=like.device, dtype=like.dtype).reshape(-1, 1, 1)
    return torch.full((1, 1, 1), float(sigma), device=like.device, dtype=like.dtype)


def sigma_batch(sigma, batch: int, *, like: torch.Tensor) -> torch.Tensor:
    """Turn ``sigma`` (a number, 0-D or ``(B,)`` tensor) into a ``(B,)`` tensor on ``like``'s device.

    The hot-path sibling of :func:`sigma_per_shape` for the networks: shapes are checked, values are not (a
    sampler calls it at every step). The dtype is ``like``'s for numbers, the tensor's own otherwise.
    """
    if not isinstance(sigma, torch.Tensor):
        return torch.full((batch,), float(sigma), device=like.device, dtype=like.dtype)
    if sigma.dim() == 0:
        sigma = sigma.expand(batch)
    if sigma.dim() != 1 or sigma.shape[0] != batch:
        raise ValueError(f"sigma must be a number or a (B,) tensor with B={batch}, got shape {tuple(sigma.shape)}")
    return sigma.to(like.device)


def numpy_points(name: str, points, *, ndims: tuple[int, ...] = (2,), dims: int | None = 2):
    """Check a point tensor or array (floating, ``ndims`` dimensions, last size ``dims``, finite); return it as
    a float64 NumPy array on the CPU (for plotting and rendering).

    Raises:
        TypeError, ValueError: as :func:`tensor`.
    """
    if isinstance(points, np.ndarray):
        points = torch.from_numpy(points)
    points = tensor(name, points, ndims=ndims, dim=dims)
    return points.detach().cpu().double().numpy()


def int_at_least(name: str, value, minimum: int, *, optional: bool = False):
    """Raise unless ``value`` is an int ``>= minimum`` (or ``None`` when ``optional``); return it.

    Raises:
        TypeError: not an int (``bool`` included).
        ValueError: below ``minimum``.
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int{' or None' if optional else ''}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def names(name: str, value, options) -> tuple[str, ...]:
    """A non-empty tuple of distinct names from ``options`` (a single string is one name).

    Raises:
        TypeError: not a string or a sequence of strings.
        ValueError: empty, repeated or unknown names (the message lists the valid ones).
    """
    if isinstance(value, str):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a name or a sequence of names, got {type(value).__name__}") from None
    if not value:
        raise ValueError(f"{name} must name at least one of {list(options)}")
    for v in value:
        if v not in options:
            raise ValueError(f"unknown {name} entry {v!r}; valid: {list(options)}")
    if len(set(value)) != len(value):
        raise ValueError(f"{name} repeats a name: {list(value)}")
    return value
