"""Distances between point clouds and the generation metrics built on them (PointFlow's protocol).

Pure tensor functions: no files, no models. Taught in chapter 7 (Measuring quality).
"""
from __future__ import annotations

import torch

from gfcore import _checks

_CHUNK_ELEMENTS = 2**25  # elements of the largest temporary, (B, chunk, M, d); 128 MiB in float32


def chamfer_distance(a: torch.Tensor, b: torch.Tensor, *, chunk_size: int | None = None) -> torch.Tensor:
    """Chamfer distance, ``mean_i min_j |a_i - b_j|^2 + mean_j min_i |a_i - b_j|^2`` (squared distances, the sum
    of the two means: PointFlow's and the official ShapeGF evaluation's convention).

    Distances come from exact differences (no ``|a|^2 + |b|^2 - 2 a.b`` cancellation), chunked over the points of
    ``a`` so the temporary stays near 128 MiB.

    Args:
        a: ``(B, N, d)`` point clouds.
        b: ``(B, M, d)`` point clouds (``M`` may differ from ``N``).
        chunk_size: points of ``a`` per chunk (default: bounded memory).

    Returns:
        ``(B,)`` distances.

    Raises:
        ValueError, TypeError: not 3-D, empty, NaN/inf, different ``B`` or ``d``.

    Taught in chapter 7.
    """
    a = _checks.point_cloud("a", a, batched=True)
    b = _checks.point_cloud("b", b, batched=True)
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(f"a and b must share B and d, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"a is {a.dtype} but b is {b.dtype}")
    batch, n, d = a.shape
    m = b.shape[1]
    if chunk_size is None:
        step = max(1, _CHUNK_ELEMENTS // (batch * m * d))
    else:
        step = _checks.positive_int("chunk_size", chunk_size)
    a_to_b = []
    b_to_a = torch.full((batch, m), float("inf"), dtype=a.dtype, device=a.device)
    for i in range(0, n, step):
        d2 = (a[:, i:i + step].unsqueeze(2) - b.unsqueeze(1)).square().sum(-1)      # (B, chunk, M)
        a_to_b.append(d2.min(dim=2).values)
        b_to_a = torch.minimum(b_to_a, d2.min(dim=1).values)
    return torch.cat(a_to_b, dim=1).mean(1) + b_to_a.mean(1)
