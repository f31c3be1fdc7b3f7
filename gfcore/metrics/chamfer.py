"""Chamfer distance between point clouds, batched and chunked (PointFlow's convention by default).

    CD(a, b) = (1/N) sum_i min_j |a_i - b_j|^2 + (1/M) sum_j min_i |a_i - b_j|^2

How it is computed: a matrix product ``|b_j|^2 - 2 a_i . b_j`` picks each point's nearest neighbour (fast, and
chunked so memory stays bounded), then the distance to that neighbour is measured again from exact differences
``a_i - b_j``. The expansion alone loses digits to cancellation (``|a|^2 + |b|^2 - 2 a.b`` with ``|a|`` large: a
relative error near 1e-5 in float32 on clouds centred 3 units from the origin, which is what ``torch.cdist``
does for large inputs); the re-measured distance is exact to rounding, and where rounding makes the product pick
a near-tie instead of the true neighbour the two distances differ by less than that rounding. Measured on one
CPU thread, 2048-point pairs: 25 ms per pair, against 80 ms for exact differences of all pairs.

Taught in chapter 6 (Measuring quality).
"""
from __future__ import annotations

import torch

from gfcore import _checks
from gfcore.metrics import _common


def _search_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half precision picks neighbours poorly (and CPU matmuls may not support it): search in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def nearest_index(x: torch.Tensor, y: torch.Tensor, *, chunk_size: int | None = None) -> torch.Tensor:
    """Index of each query's nearest point, ``argmin_j |x_i - y_j|``, by chunked matrix products.

    Args:
        x: ``(B, N, d)`` queries.
        y: ``(B, M, d)`` points.
        chunk_size: queries per chunk (default: bounded memory, cache-sized on a CPU).

    Returns:
        ``(B, N)`` long tensor of indices into ``y``'s points.

    Taught in chapter 6.
    """
    x, y = _common.pair(x, y, names=("x", "y"))
    batch, n, _ = x.shape
    m = y.shape[1]
    if chunk_size is None:
        step = max(1, _common.chunk_elements(x.device) // (batch * m))
        if x.device.type != "cuda":
            step = min(step, max(1, 2**17 // m))           # per-shape blocks of <= 512 KiB stay in cache
    else:
        step = _checks.positive_int("chunk_size", chunk_size)
    dt = _search_dtype(x.dtype)
    center = y.mean(dim=1, keepdim=True)                   # smaller numbers, less cancellation
    xs, ys = (x - center).to(dt), (y - center).to(dt)
    y_sq = ys.square().sum(-1).unsqueeze(1)                # (B, 1, M); |x_i|^2 is constant along a row
    yt = ys.transpose(1, 2)
    return torch.cat([torch.baddbmm(y_sq, xs[:, i:i + step], yt, alpha=-2.0).argmin(dim=2)
                      for i in range(0, n, step)], dim=1)


def nearest_distance(x: torch.Tensor, y: torch.Tensor, *, squared: bool = True,
                     chunk_size: int | None = None) -> torch.Tensor:
    """Distance from each query to its nearest point, ``min_j |x_i - y_j|^2`` (or ``|.|`` when not squared).

    Args:
        x: ``(B, N, d)`` queries.
        y: ``(B, M, d)`` points.
        squared: squared distances (default) or plain Euclidean ones.
        chunk_size: queries per chunk of the neighbour search.

    Returns:
        ``(B, N)`` distances in ``x``'s dtype, differentiable with respect to ``x`` and ``y``.

    Taught in chapter 6.
    """
    idx = nearest_index(x, y, chunk_size=chunk_size)
    near = torch.gather(y, 1, idx.unsqueeze(-1).expand(-1, -1, y.shape[-1]))
    d2 = (x - near).square().sum(-1)
    return d2 if squared else d2.sqrt()


def chamfer_distance(a: torch.Tensor, b: torch.Tensor, *, squared: bool = True,
                     chunk_size: int | None = None) -> torch.Tensor:
    """Chamfer distance, ``mean_i min_j |a_i - b_j|^2 + mean_j min_i |a_i - b_j|^2`` (squared distances, the sum
    of the two means: PointFlow's and the official ShapeGF evaluation's convention).

    ``squared=False`` gives the plain variant, the same sum of two means of *Euclidean* nearest-neighbour
    distances (in the units of the coordinates; the completion literature's "CD-L1" is half of it). It is not
    comparable with published generation or auto-encoding tables, which all use the squared form.

    Args:
        a: ``(B, N, d)`` point clouds.
        b: ``(B, M, d)`` point clouds (``M`` may differ from ``N``).
        squared: squared distances (default, PointFlow) or plain Euclidean ones.
        chunk_size: points per chunk of the neighbour search (default: bounded memory).

    Returns:
        ``(B,)`` distances in the input's dtype; differentiable.

    Raises:
        ValueError, TypeError: not 3-D, empty, NaN/inf, different ``B``, ``d``, dtype or device.

    Taught in chapter 6 (Measuring quality).
    """
    a, b = _common.pair(a, b)
    return (nearest_distance(a, b, squared=squared, chunk_size=chunk_size).mean(1)
            + nearest_distance(b, a, squared=squared, chunk_size=chunk_size).mean(1))
