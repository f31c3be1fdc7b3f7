"""The field's unsigned distance, at points and on grids, and projection of points onto the surface.

Taught in chapter 8 (From gradients to surfaces).
"""
from __future__ import annotations

import numpy as np
import torch

from gfcore import _checks
from gfcore.surface._common import (
    _bounds,
    _chunk_size,
    _device,
    _displacement,
    _queries,
    _resolution,
    _score,
    _sigma_b,
)

# ----------------------------------------------------------------------------------------------- distance

@torch.no_grad()
def unsigned_distance(score_fn, x, sigma, *, chunk_size: int | None = None) -> torch.Tensor:
    """Unsigned distance to the surface from the field, ``u(x) = sigma^2 |s(x, sigma)|`` (from ShapeGF Eq. 3).

    ``sigma^2 s(x, sigma)`` is the step from ``x`` to the kernel-weighted mean of the surface near ``x`` (the
    closed form exactly, ShapeGF Eq. 3; a network trained by denoising score matching approximately), so its
    length is the distance to the surface when:

    - the surface is flat at the scale ``sigma``. Curvature biases it: for a sphere of radius ``R`` sampled
      uniformly, ``u(r) = |r - R (coth k - 1/k)|`` with ``k = r R / sigma^2``, about
      ``|r - R + sigma^2 / r|``: the zero set shrinks inward by ``~sigma^2 / R`` and ``u`` is ``~sigma^2 / R``
      on the true surface;
    - the points are dense at the scale ``sigma`` (spacing well below ``sigma``), else ``u`` ripples;
    - ``x`` is much nearer one part of the surface than any other. Near the medial axis the mean averages the
      nearest points of several parts and ``u`` falls below the distance, to exactly 0 at a symmetric point
      between two parts (a saddle of the density, where the gradient vanishes; see :func:`raycast`);
    - for a learned field, ``x`` lies within a few ``sigma`` of the surface: the network was trained on points
      perturbed by noise of size ``sigma`` and is unreliable farther out (the closed form is fine anywhere).

    Args:
        score_fn: ``(x (B, m, d), sigma (B,)) -> (B, m, d)``; a trained model must be in eval mode.
        x: ``(M, d)`` or ``(B, M, d)`` query points.
        sigma: a positive number or a ``(B,)`` tensor.
        chunk_size: query points per ``score_fn`` call (default ``DEFAULT_CHUNK``).

    Returns:
        ``(M,)`` for unbatched ``x``, else ``(B, M)``, in the field's units (those of ``x``).

    Raises:
        ValueError, TypeError: bad ``x``, ``sigma`` or ``chunk_size``; a ``score_fn`` output of the wrong
            shape.

    Taught in chapter 8 (From gradients to surfaces).
    """
    xb, batched = _queries("x", x)
    sigma_b = _sigma_b(sigma, xb.shape[0], xb)
    out = _displacement(score_fn, xb, sigma_b, _chunk_size(chunk_size)).norm(dim=-1)
    return out if batched else out.squeeze(0)


@torch.no_grad()
def project_to_surface(score_fn, x, sigma, *, num_steps: int = 3, sigma_start: float | None = None,
                       chunk_size: int | None = None) -> torch.Tensor:
    """Move points onto the surface along the field: ``x <- x + sigma_t^2 s(x, sigma_t)`` (noise-free Alg. 1).

    Each step jumps to the field's estimate of the nearest surface point (Algorithm 1's gradient step with
    ``alpha = 2 sigma^2`` and the noise left out), so one step lands within the bias of
    :func:`unsigned_distance` and a few more settle on the zero set of ``u``. With ``sigma_start`` the levels
    anneal geometrically from ``sigma_start`` down to ``sigma`` over ``num_steps`` steps, which helps points
    that start far away (where a learned field at small ``sigma`` is unreliable). Points exactly at a saddle
    between two parts do not move.

    Args:
        score_fn: score callable, as in :func:`unsigned_distance`.
        x: ``(M, d)`` or ``(B, M, d)`` points, e.g. marching-cubes vertices.
        sigma: final level, a positive number or ``(B,)`` tensor.
        num_steps: steps (levels).
        sigma_start: first level (``>= sigma``); default: every step at ``sigma``.
        chunk_size: points per ``score_fn`` call.

    Returns:
        Tensor of ``x``'s shape: the projected points.

    Raises:
        ValueError, TypeError: bad ``x``, ``sigma``, ``num_steps``, ``sigma_start`` or ``chunk_size``.

    Taught in chapter 8 (From gradients to surfaces).
    """
    xb, batched = _queries("x", x)
    sigma_b = _sigma_b(sigma, xb.shape[0], xb)
    _checks.positive_int("num_steps", num_steps)
    chunk = _chunk_size(chunk_size)
    if sigma_start is not None:
        _checks.positive("sigma_start", sigma_start)
        if (sigma_b > sigma_start).any():
            raise ValueError(f"sigma_start={sigma_start} must be >= sigma ({sigma_b.max().item():.4g})")
    for t in range(num_steps):
        if sigma_start is None or num_steps == 1:
            level = sigma_b
        else:  # geometric from sigma_start to sigma
            level = sigma_b * (sigma_start / sigma_b) ** ((num_steps - 1 - t) / (num_steps - 1))
        xb = xb + _displacement(score_fn, xb, level, chunk)
    return xb if batched else xb.squeeze(0)


# ----------------------------------------------------------------------------------------------- grids

def _grid_axes(resolution: int, lo: np.ndarray, hi: np.ndarray, device, dtype) -> list[torch.Tensor]:
    return [torch.linspace(float(lo[a]), float(hi[a]), resolution, device=device, dtype=dtype)
            for a in range(3)]


def _points_at(flat: torch.Tensor, axes: list[torch.Tensor], k: int) -> torch.Tensor:
    """Coordinates of flat grid indices ``i * K^2 + j * K + l``: ``(n,) -> (n, 3)``."""
    return torch.stack([axes[0][flat // (k * k)], axes[1][(flat // k) % k], axes[2][flat % k]], dim=-1)


def _eval_flat(score_fn, flat, axes, k, sigma_b, chunk) -> torch.Tensor:
    """Unsigned distance at flat grid indices ``(n,)`` for every shape: ``(B, n)``, chunked."""
    batch = sigma_b.shape[0]
    s2 = sigma_b.square().view(-1, 1, 1)
    out = []
    for i in range(0, flat.shape[0], chunk):
        x = _points_at(flat[i:i + chunk], axes, k).unsqueeze(0).expand(batch, -1, -1)
        out.append((_score(score_fn, x, sigma_b) * s2.to(x.dtype)).norm(dim=-1))
    return torch.cat(out, dim=1)


@torch.no_grad()
def unsigned_distance_grid(score_fn, *, sigma, resolution: int = 64, bounds=1.0, band: float | None = None,
                           num_shapes: int = 1, chunk_size: int | None = None, block: int = 4,
                           lipschitz: float = 1.5, device=None,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """:func:`unsigned_distance` on a ``K^3`` grid, dense or exact only in a narrow band.

    Grid point ``[i, j, l]`` is ``lo + (i, j, l) * (hi - lo) / (K - 1)``. Points are generated chunk by chunk
    on ``device``, so memory stays ``O(K^3)`` for the output plus one chunk.

    With ``band``, the grid is first cut into blocks of ``block^3`` points and ``u`` is evaluated at block
    centres; a block is skipped when ``u(centre) > band + lipschitz * (r + h)`` (``r`` the block's
    half-diagonal, ``h`` the grid step), which, if ``u`` changes no faster than ``lipschitz`` per unit length,
    means no point of the block or next to it has ``u <= band``. Skipped points get the lower bound
    ``u(centre) - lipschitz * r`` (``> band``); all others are exact, so marching cubes at any level
    ``<= band`` gives the same mesh as on the dense grid, at a cost that grows like ``K^2`` instead of
    ``K^3``. ``u`` is 1-Lipschitz where it is a distance; spurious zeros thinner than a block (at saddles
    between parts) may be skipped, which is harmless.

    Args:
        score_fn: score callable; ``(x (B, m, 3), sigma (B,)) -> (B, m, 3)`` on ``device``.
        sigma: a positive number or ``(B,)`` tensor.
        resolution: ``K >= 2`` points per axis.
        bounds: ``b`` (the cube ``[-b, b]^3``), ``(lo, hi)`` or ``((3,), (3,))``.
        band: exact values only where ``u <= band`` (positive); ``None``: every point exactly.
        num_shapes: ``B``, the batch the grid is evaluated for (``score_fn`` decides what the shapes are).
        chunk_size: grid points per ``score_fn`` call.
        block: block edge in grid points for ``band`` (``>= 2``).
        lipschitz: assumed bound on ``|grad u|`` for ``band`` (``>= 1``).
        device, dtype: where and in what precision the grid points are made (default: CUDA if present).

    Returns:
        ``(B, K, K, K)`` tensor on ``device``.

    Raises:
        ValueError, TypeError: ``resolution < 2``, bounds with min >= max, non-positive ``sigma`` or ``band``,
            bad ``block``, ``lipschitz`` or ``chunk_size``; NaN/inf from ``score_fn``.

    Taught in chapter 8 (From gradients to surfaces).
    """
    k = _resolution("resolution", resolution, minimum=2)
    lo, hi = _bounds(bounds)
    batch = _checks.positive_int("num_shapes", num_shapes)
    chunk = _chunk_size(chunk_size)
    device = _device(device)
    axes = _grid_axes(k, lo, hi, device, dtype)
    sigma_b = _sigma_b(sigma, batch, axes[0])
    if band is None:
        out = _eval_flat(score_fn, torch.arange(k**3, device=device), axes, k, sigma_b, chunk)
    else:
        _checks.positive("band", band)
        block = _resolution("block", block, minimum=2)
        _checks.positive("lipschitz", lipschitz)
        if lipschitz < 1:
            raise ValueError(f"lipschitz must be >= 1 (u is a distance), got {lipschitz}")
        out = _narrow_band(score_fn, axes, k, lo, hi, sigma_b, chunk, band, block, lipschitz)
    _checks.finite("the unsigned distance from score_fn", out)
    return out.reshape(batch, k, k, k)


def _narrow_band(score_fn, axes, k, lo, hi, sigma_b, chunk, band, block, lipschitz) -> torch.Tensor:
    device, dtype = axes[0].device, axes[0].dtype
    batch = sigma_b.shape[0]
    step = (hi - lo) / (k - 1)
    nb = -(-k // block)                                                   # blocks per axis
    half = 0.5 * (block - 1) * float(np.linalg.norm(step))                # half-diagonal of a block
    centre_axes = [torch.as_tensor(lo[a] + (np.arange(nb) * block + 0.5 * (block - 1)) * step[a],
                                   device=device, dtype=dtype) for a in range(3)]
    u_c = _eval_flat(score_fn, torch.arange(nb**3, device=device), centre_axes, nb, sigma_b, chunk)  # B, nb^3
    active = (u_c <= band + lipschitz * (half + float(np.linalg.norm(step)))).any(dim=0)            # (nb^3,)
    # every grid point starts at its block's lower bound, then the active blocks are evaluated exactly
    fill = (u_c - lipschitz * half).reshape(batch, nb, nb, nb)
    for dim in (1, 2, 3):
        fill = fill.repeat_interleave(block, dim=dim)
    out = fill[:, :k, :k, :k].reshape(batch, k**3).clone()
    ids = active.nonzero().squeeze(1)
    if ids.numel():
        bi, bj, bl = ids // (nb * nb), (ids // nb) % nb, ids % nb
        off = torch.arange(block, device=device)
        i = (bi[:, None] * block + off).view(-1, block, 1, 1)
        j = (bj[:, None] * block + off).view(-1, 1, block, 1)
        l_ = (bl[:, None] * block + off).view(-1, 1, 1, block)
        inside = (i < k) & (j < k) & (l_ < k)
        full = (-1, block, block, block)
        flat = (i * k * k + j * k + l_).expand(*full)[inside.expand(*full)]
        out[:, flat] = _eval_flat(score_fn, flat, axes, k, sigma_b, chunk)
    return out
