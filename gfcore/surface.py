"""Surfaces from a gradient field: unsigned distance, ray casting, marching cubes, projection.

ShapeGF (Cai et al. 2020) points out that its field defines the surface implicitly, with no mesh in training,
and names the failure cases (points where the gradient vanishes; the double surface of marching cubes); the
official code released no extraction. This module is the book's construction from the field alone.

A score ``s(x, sigma) = grad_x log p_sigma(x)`` of a shape smoothed at a small ``sigma`` points to the shape,
and ``sigma^2 s(x, sigma)`` is the displacement from ``x`` to the kernel-weighted mean of the surface near it.
Its length estimates the **unsigned distance** to the surface, with no mesh and no inside/outside:

    u(x) = sigma^2 |s(x, sigma)|  ~  dist(x, surface),      x + sigma^2 s(x, sigma)  ~  nearest surface point.

Every function here takes a *score callable* ``score_fn(x (B, M, d), sigma (B,)) -> (B, M, d)``, so the
closed-form field (``lambda x, s: gfcore.fields.smoothed_score(x, points, s)``) and a trained model
(``model.score_fn(z)``) are interchangeable. Calls are batched over shapes, chunked over points (bounded
memory) and run under ``torch.no_grad`` on the device of their inputs (``device=`` for the grid functions):

- :func:`unsigned_distance`, :func:`unsigned_distance_grid` (dense, or exact only in a narrow band around the
  surface, which is far cheaper), :func:`project_to_surface` (noise-free steps along the field);
- :func:`raycast` (sphere tracing with ``u``, refined along the field, normals from the field) and
  :func:`render_depth` (depth and normal images from a pinhole camera, no mesh at all);
- :func:`marching_cubes` (scikit-image at a small positive level of ``u``; the double surface and the remedy;
  :func:`mesh_from_grid` is its extraction half),
  :func:`mesh_from_model`, :func:`write_mesh` (PLY/OBJ) and :func:`to_polydata` (pyvista, when installed).

Taught in chapter 8 (From gradients to surfaces).
"""
from __future__ import annotations

import math
import os
from typing import NamedTuple

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


# ------------------------------------------------------------------------------------------- marching cubes

def _mask_support(volume: np.ndarray, support, lo, step, level: float, radius: float) -> np.ndarray:
    """Raise ``u`` above ``level`` at grid points farther than ``radius`` from every support point.

    The support points are binned into their voxels, which are dilated by a ball of ``radius`` (in grid steps,
    plus one for the binning), so the test is conservative by at most one grid step.
    """
    from scipy import ndimage

    support = _checks.point_cloud("support", support, dim=3, batched=False).detach().cpu().double().numpy()
    _checks.positive("support_radius", radius)
    if not radius > level:
        raise ValueError(f"support_radius={radius} must be > level={level} (the sheet lies level away)")
    shape = np.asarray(volume.shape)
    idx = np.rint((support - lo) / step).astype(np.int64)
    idx = idx[((idx >= 0) & (idx < shape)).all(axis=1)]
    near = np.zeros(volume.shape, dtype=bool)
    near[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    reach = np.ceil(radius / step).astype(int) + 1                        # voxels per axis, plus the binning
    axes = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    ball = sum((a * s) ** 2 for a, s in zip(axes, step, strict=True)) <= (radius + float(step.max())) ** 2
    near = ndimage.binary_dilation(near, structure=ball)
    out = volume.copy()
    out[~near] = np.maximum(out[~near], 2.0 * level)
    return out


def _fill_enclosed(volume: np.ndarray, level: float) -> np.ndarray:
    """Set the regions of ``u > level`` that the box's border cannot reach to 0: the outer sheet stays."""
    from scipy import ndimage

    labels, _ = ndimage.label(volume > level)
    faces = [labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]]
    border = np.unique(np.concatenate([f.ravel() for f in faces]))
    border = border[border != 0]
    if border.size == 0:
        raise ValueError(f"the band u <= level={level:.4g} covers the whole border of bounds: enlarge bounds "
                         "(or lower level) so that the box surrounds the shape")
    enclosed = (labels != 0) & ~np.isin(labels, border)
    out = volume.copy()
    out[enclosed] = 0.0
    return out


def mesh_from_grid(volume, *, bounds=1.0, level: float, keep: str = "outer", support=None,
                   support_radius: float | None = None,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Marching cubes (scikit-image, Lewiner) of a precomputed unsigned-distance grid at ``level``.

    The extraction half of :func:`marching_cubes`, for a grid from :func:`unsigned_distance_grid` (one shape),
    so that one grid serves several levels or both ``keep`` choices.

    Args:
        volume: ``(K1, K2, K3)`` tensor or array, every size ``>= 2``; ``volume[i, j, l]`` at
            ``lo + (i, j, l) * (hi - lo) / (K - 1)``.
        bounds: the box the grid spans, as in :func:`unsigned_distance_grid`.
        level: the positive contour of ``u``.
        keep: ``"outer"`` (flood fill from the border, see :func:`marching_cubes`) or ``"all"``.
        support: optional ``(N, 3)`` points on the shape (e.g. a learned model's own Langevin samples); grid
            points farther than ``support_radius`` from all of them cannot be on the surface (their ``u`` is
            raised above ``level``). A learned field is unreliable far from its training data, where ``u`` can
            be small in empty space; its samples, annealed from a large ``sigma``, are not. The support must
            cover the whole surface: where it has a gap the band is cut, and ``keep="outer"`` then also keeps
            the inner sheet there.
        support_radius: default ``3 * level``; must exceed ``level`` (the sheet's offset from the surface).
        dtype: of the returned vertices.

    Returns:
        ``vertices (V, 3)`` and ``faces (F, 3)`` (int64) CPU tensors, faces facing away from the surface.

    Raises:
        ValueError, TypeError: a volume that is not 3-D with sizes ``>= 2`` or holds NaN/inf, bad ``bounds``,
            non-positive ``level``, unknown ``keep``, no surface, a band covering the whole border.

    Taught in chapter 8 (From gradients to surfaces).
    """
    from skimage import measure

    _checks.choice("keep", keep, KEEP)
    _checks.positive("level", level)
    lo, hi = _bounds(bounds)
    if isinstance(volume, torch.Tensor):
        volume = volume.detach().cpu().numpy()
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise ValueError(f"volume must be a (K1, K2, K3) grid with every size >= 2, got shape {volume.shape}")
    if not np.isfinite(volume).all():
        raise ValueError("volume contains NaN or inf")
    if not volume.min() <= level:
        raise ValueError(f"no surface: the unsigned distance never drops to level={level:.4g} in bounds "
                         f"(min {volume.min():.4g}); check bounds and sigma, or raise level")
    step = (hi - lo) / (np.asarray(volume.shape) - 1)
    if support is not None:
        volume = _mask_support(volume, support, lo, step, level,
                               3.0 * level if support_radius is None else support_radius)
    if keep == "outer":
        volume = _fill_enclosed(volume, level)
    verts, faces, _, _ = measure.marching_cubes(volume, level, spacing=tuple(float(s) for s in step),
                                                gradient_direction="descent", allow_degenerate=False)
    verts = torch.from_numpy(verts + lo.astype(verts.dtype)).to(dtype)
    return verts, torch.from_numpy(np.ascontiguousarray(faces, dtype=np.int64))


def marching_cubes(score_fn, *, sigma, resolution: int = 64, bounds=1.0, level: float | None = None,
                   keep: str = "outer", project_steps: int = 0, narrow_band: bool = True, support=None,
                   support_radius: float | None = None,
                   chunk_size: int | None = None, device=None,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangle mesh of the level set ``u(x) = level`` of the field's unsigned distance (marching cubes).

    ``u`` has no sign, so its zero set cannot be contoured; a small positive ``level`` is, with scikit-image's
    (Lewiner) marching cubes. Around a surface that level set is the boundary of a band of half-width
    ``level``: a **double surface**, one sheet on each side. For a closed shape the sheets are two nested
    closed surfaces (``keep="all"`` returns both); for a thin open part (a plate) they join around its rim
    into one flat closed shell. Locally the two sheets cannot be told apart by orientation: each has its
    normal along ``grad u``, away from the surface, and the field points back toward it on both. So the choice
    is global: ``keep="outer"`` (default) keeps only the sheet that the border of ``bounds`` can reach without
    crossing the band (a flood fill of ``u > level`` from the border; enclosed regions are filled), which
    removes the inner sheet of closed shapes and leaves a watertight mesh offset outward by ``level``.
    ``project_steps`` then moves the vertices onto the surface along the field (:func:`project_to_surface`),
    removing the offset; on a thin plate this collapses the shell's two faces onto each other (coincident
    layers, right place).

    One shape: pass the score callable of one shape (e.g. ``model.score_fn(z[i:i + 1])``).

    Args:
        score_fn: score callable of one shape, on ``device``.
        sigma: a positive number.
        resolution: ``K >= 2`` grid points per axis.
        bounds: ``b``, ``(lo, hi)`` or ``((3,), (3,))``; must contain the shape with a margin larger than
            ``level``.
        level: the contour of ``u`` (default: twice the largest grid step, so the band is resolved).
        keep: ``"outer"`` or ``"all"`` (both sheets: the double surface).
        project_steps: steps of :func:`project_to_surface` at ``sigma`` applied to the vertices (0: none).
        narrow_band: evaluate ``u`` exactly only near the level (:func:`unsigned_distance_grid`, same mesh).
        support, support_radius: extract only near these ``(N, 3)`` points (see :func:`mesh_from_grid`).
        chunk_size: grid points per ``score_fn`` call.
        device, dtype: of the grid (default: CUDA if present); extraction runs on the CPU.

    Returns:
        ``vertices (V, 3)`` (``dtype``) and ``faces (F, 3)`` (int64), CPU tensors; faces are oriented with
        their normals (right-hand rule) pointing away from the surface, i.e. outward for ``keep="outer"``.

    Raises:
        ValueError, TypeError: as :func:`unsigned_distance_grid`; non-positive ``level``, unknown ``keep``,
            ``u`` never below ``level`` in the box (no surface), a band covering the whole border.

    Taught in chapter 8 (From gradients to surfaces).
    """
    _checks.choice("keep", keep, KEEP)
    k = _resolution("resolution", resolution, minimum=2)
    lo, hi = _bounds(bounds)
    if level is None:
        level = 2.0 * float(((hi - lo) / (k - 1)).max())
    _checks.positive("level", level)
    if project_steps:
        _checks.positive_int("project_steps", project_steps)
    if isinstance(sigma, torch.Tensor) and sigma.numel() != 1:
        raise ValueError("marching_cubes meshes one shape: sigma must be a number, got shape "
                         f"{tuple(sigma.shape)}")
    device = _device(device)
    grid = unsigned_distance_grid(score_fn, sigma=sigma, resolution=k, bounds=(lo, hi),
                                  band=level if narrow_band else None, chunk_size=chunk_size, device=device,
                                  dtype=dtype)[0]
    verts, faces = mesh_from_grid(grid, bounds=(lo, hi), level=level, keep=keep, support=support,
                                  support_radius=support_radius, dtype=dtype)
    if project_steps:
        verts = project_to_surface(score_fn, verts.to(device), sigma, num_steps=project_steps,
                                   chunk_size=chunk_size).cpu()
    return verts, faces


# ----------------------------------------------------------------------------------------------- ray casting

class RayHits(NamedTuple):
    """What :func:`raycast` returns; rays without a hit hold NaN in ``points``, ``normals`` and ``depth``."""

    points: torch.Tensor   # (B, R, 3) hit points
    normals: torch.Tensor  # (B, R, 3) unit normals from the field, facing the ray origin
    hit: torch.Tensor      # (B, R) bool
    depth: torch.Tensor    # (B, R) distance from the origin along the (unit) ray


def _rays(origins, directions):
    origins = _checks.tensor("origins", origins, ndims=(2, 3), dim=3)
    directions = _checks.tensor("directions", directions, ndims=(2, 3), dim=3)
    if directions.shape[-2] != origins.shape[-2]:
        raise ValueError(f"origins and directions must hold the same rays, got shapes {tuple(origins.shape)} "
                         f"and {tuple(directions.shape)}")
    if directions.dtype != origins.dtype or directions.device != origins.device:
        raise TypeError(f"origins ({origins.dtype}, {origins.device}) and directions ({directions.dtype}, "
                        f"{directions.device}) must share dtype and device")
    batched = origins.dim() == 3 or directions.dim() == 3
    o = origins if origins.dim() == 3 else origins.unsqueeze(0)
    d = directions if directions.dim() == 3 else directions.unsqueeze(0)
    if o.shape[0] != d.shape[0] and 1 not in (o.shape[0], d.shape[0]):
        raise ValueError(f"batch sizes differ: origins has {o.shape[0]} shapes, directions has {d.shape[0]}")
    norm = d.norm(dim=-1, keepdim=True)
    if (norm == 0).any():
        raise ValueError("directions contains zero vectors")
    batch = max(o.shape[0], d.shape[0])
    return o.expand(batch, -1, -1), (d / norm).expand(batch, -1, -1), batched


@torch.no_grad()
def raycast(score_fn, origins, directions, sigma, *, near: float = 0.0, far: float | None = None,
            max_steps: int = 64, hit_eps: float | None = None, step_scale: float = 0.9, refine_steps: int = 2,
            normal_offset: float | None = None, reject_saddles: bool = True,
            chunk_size: int | None = None) -> RayHits:
    """Sphere tracing (Hart 1996) with the field's unsigned distance ``u``, no mesh needed.

    From ``t = near``, every ray steps ``t <- t + step_scale * u(o + t d)``: ``u`` bounds the distance to the
    nearest surface, and ``step_scale < 1`` keeps the steps short of it where ``u`` overestimates (curvature,
    noise). A ray hits when ``u < hit_eps``, or when it has just crossed the surface (the field's component
    along the ray turned from forward to backward where ``u < sigma``: sampling ripples or a learned field's
    error can keep ``u`` above ``hit_eps`` at the crossing; silhouettes may grow by up to that much). With
    ``reject_saddles`` a hit is checked first: on a real surface ``u`` at the six points ``+-sigma`` along the
    axes is at most about ``sigma``, whereas at a saddle between two parts (where ``u`` falls to 0 but the
    surface is far) it jumps; such hits (``u > 2 sigma + hit_eps`` at a probe) are skipped and the ray moves
    on by ``2 sigma``. Rays past ``far`` or out of steps miss.

    The normal ``n`` is the field's direction at a point ``normal_offset`` before the hit, oriented toward the
    ray origin (farther out the direction averages more points and is less noisy than at the surface, where
    the field's small tangential ripple dominates it). The hit is then refined by ``refine_steps`` Newton
    steps along the ray on the displacement's component along ``n`` (a signed distance to the surface), so it
    stays on the ray; grazing hits (incidence above ~84 degrees) are not refined. A hit whose final point still
    has ``u > sigma`` (a ray that passed near a silhouette without meeting the surface) is a miss.

    Args:
        score_fn: score callable; rays are batched as ``(B, m, 3)``.
        origins: ``(R, 3)`` or ``(B, R, 3)`` ray origins.
        directions: like ``origins``; normalised here.
        sigma: a positive number or ``(B,)`` tensor.
        near, far: the ray segment searched (``far=None``: unbounded; then misses run all ``max_steps``).
        max_steps: sphere-tracing steps.
        hit_eps: hit threshold on ``u`` (default ``sigma / 10``).
        step_scale: fraction of ``u`` stepped, in ``(0, 1]``.
        refine_steps: refinement steps after a hit (0: none).
        normal_offset: distance before the hit where the normal is read (default ``2 sigma``).
        reject_saddles: skip hits where ``u`` is not locally distance-like (see above).
        chunk_size: rays per ``score_fn`` call.

    Returns:
        :class:`RayHits` ``(points (B, R, 3), normals (B, R, 3), hit (B, R), depth (B, R))``, batch dimension
        dropped when neither ``origins`` nor ``directions`` is batched.

    Raises:
        ValueError, TypeError: bad shapes, zero directions, non-positive ``sigma``/``hit_eps``, ``step_scale``
            outside ``(0, 1]``, ``far <= near``, bad step counts.

    Taught in chapter 8 (From gradients to surfaces).
    """
    o, d, batched = _rays(origins, directions)
    batch, r, _ = o.shape
    sigma_b = _sigma_b(sigma, batch, o)
    chunk = _chunk_size(chunk_size)
    _checks.positive_int("max_steps", max_steps)
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 0:
        raise ValueError(f"refine_steps must be an int >= 0, got {refine_steps!r}")
    if not 0 < step_scale <= 1:
        raise ValueError(f"step_scale must be in (0, 1], got {step_scale}")
    if not (isinstance(near, (int, float)) and math.isfinite(near) and near >= 0):
        raise ValueError(f"near must be a finite number >= 0, got {near!r}")
    far = math.inf if far is None else float(far)
    if not far > near:
        raise ValueError(f"far must be > near={near}, got {far}")
    smax = float(sigma_b.max())
    hit_eps = smax / 10 if hit_eps is None else hit_eps
    normal_offset = 2 * smax if normal_offset is None else normal_offset
    _checks.positive("hit_eps", hit_eps)
    _checks.positive("normal_offset", normal_offset)

    def disp(x):
        """``sigma^2 s`` at ``x (B, m, 3)``."""
        return _displacement(score_fn, x, sigma_b, chunk)

    t = torch.full((batch, r), float(near), device=o.device, dtype=o.dtype)
    active = torch.ones(batch, r, dtype=torch.bool, device=o.device)
    hit = torch.zeros_like(active)
    ahead = torch.zeros_like(active)        # the field pointed along the ray at the previous step
    for _ in range(max_steps):
        cols = active.any(dim=0).nonzero().squeeze(1)
        if cols.numel() == 0:
            break
        oc, dc, tc, ac = o[:, cols], d[:, cols], t[:, cols], active[:, cols]
        disp_c = disp(oc + tc.unsqueeze(-1) * dc)
        u = disp_c.norm(dim=-1)                                                         # (B, c)
        along = (disp_c * dc).sum(-1)
        crossed = ahead[:, cols] & (along < 0) & (u < smax)
        ahead[:, cols] = along > 0
        new = ac & ((u < hit_eps) | crossed)
        if reject_saddles and new.any():
            new_cols = new.any(dim=0).nonzero().squeeze(1)
            ok = _distance_like(disp, oc[:, new_cols] + tc[:, new_cols].unsqueeze(-1) * dc[:, new_cols],
                                smax, hit_eps)
            bad = torch.zeros_like(new)
            bad[:, new_cols] = new[:, new_cols] & ~ok
            new = new & ~bad
            tc = torch.where(bad, tc + 2 * smax, tc)
        moving = ac & ~new
        tc = torch.where(moving & ~(u < hit_eps) & ~crossed, tc + step_scale * u, tc)
        gone = moving & (tc > far)
        t[:, cols] = tc
        hit[:, cols] = hit[:, cols] | new
        active[:, cols] = ac & ~new & ~gone
    # refine the hits along the field, keeping them on their rays
    rows_cols = hit.any(dim=0).nonzero().squeeze(1)
    points = torch.full_like(o, float("nan"))
    normals = torch.full_like(o, float("nan"))
    depth = torch.full_like(t, float("nan"))
    if rows_cols.numel():
        oc, dc, tc, hc = o[:, rows_cols], d[:, rows_cols], t[:, rows_cols], hit[:, rows_cols]
        # the field's direction a little in front of the hit: toward the surface, a stable normal
        v = disp(oc + (tc - normal_offset).unsqueeze(-1) * dc)
        n = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        facing = (n * dc).sum(-1)                                   # cos of the incidence, > 0 if the surface is ahead
        for _ in range(refine_steps):
            # Newton step on the signed offset along n: moving dt along the ray changes it by facing * dt
            u = disp(oc + tc.unsqueeze(-1) * dc)
            dt = (u * n).sum(-1) / facing.clamp_min(0.1)
            tc = torch.where(hc & (facing > 0.1), tc + dt.clamp(-normal_offset, normal_offset), tc)
        x = oc + tc.unsqueeze(-1) * dc
        n = torch.where(facing.unsqueeze(-1) > 0, -n, n)             # face the ray origin
        # a ray that passed near a silhouette without meeting the surface ends away from it: a miss
        hc = hc & (disp(x).norm(dim=-1) <= max(hit_eps, smax))
        hit[:, rows_cols] = hc
        nan = torch.tensor(float("nan"), device=o.device, dtype=o.dtype)
        points[:, rows_cols] = torch.where(hc.unsqueeze(-1), x, nan)
        normals[:, rows_cols] = torch.where(hc.unsqueeze(-1), n, nan)
        depth[:, rows_cols] = torch.where(hc, tc, nan)
    out = RayHits(points, normals, hit, depth)
    return out if batched else RayHits(*(v.squeeze(0) for v in out))


def _distance_like(disp, x, eps: float, hit_eps: float) -> torch.Tensor:
    """``(B, m)`` True where ``u`` at the six points ``x +- eps * e_a`` stays below ``2 * eps + hit_eps``."""
    batch, m, _ = x.shape
    offsets = torch.cat([torch.eye(3, device=x.device, dtype=x.dtype),
                         -torch.eye(3, device=x.device, dtype=x.dtype)]) * eps         # (6, 3)
    probes = (x.unsqueeze(2) + offsets).reshape(batch, m * 6, 3)
    u = disp(probes).norm(dim=-1).reshape(batch, m, 6)
    return u.amax(dim=-1) <= 2 * eps + hit_eps


def camera_rays(resolution, *, azimuth: float = 35.0, elevation: float = 20.0, distance: float = 4.6,
                fov: float = 30.0, device=None, dtype: torch.dtype = torch.float32):
    """Rays of a pinhole camera at ``distance`` from the origin, looking at it, ``y`` up (as in ``viz3d``).

    The eye is ``distance * (sin(az) cos(el), sin(el), cos(az) cos(el))`` (degrees); ``fov`` is the vertical
    field of view in degrees (30 is VTK's default, so images line up with the pyvista renders).

    Args:
        resolution: ``H`` (square) or ``(H, W)`` pixels.

    Returns:
        ``origins (H * W, 3)``, ``directions (H * W, 3)`` (unit), row-major from the top-left pixel.

    Raises:
        ValueError, TypeError: non-positive resolution, ``distance`` or ``fov`` outside ``(0, 180)``.

    Taught in chapter 8 (From gradients to surfaces).
    """
    h, w = (resolution, resolution) if isinstance(resolution, int) and not isinstance(resolution, bool) else \
        tuple(resolution) if isinstance(resolution, (tuple, list)) and len(resolution) == 2 else (None, None)
    if h is None:
        raise TypeError(f"resolution must be an int or (H, W), got {resolution!r}")
    _resolution("resolution", h, minimum=1)
    _resolution("resolution", w, minimum=1)
    _checks.positive("distance", distance)
    if not 0 < fov < 180:
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov}")
    az, el = math.radians(azimuth), math.radians(elevation)
    eye = torch.tensor([distance * math.sin(az) * math.cos(el), distance * math.sin(el),
                        distance * math.cos(az) * math.cos(el)], dtype=torch.float64)
    forward = -eye / eye.norm()
    right = torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    if right.norm() < 1e-9:  # looking straight down or up: any horizontal right vector
        right = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    right = right / right.norm()
    up = torch.linalg.cross(right, forward)
    half = math.tan(math.radians(fov) / 2)
    v = (1 - (torch.arange(h, dtype=torch.float64) + 0.5) * 2 / h) * half
    u = ((torch.arange(w, dtype=torch.float64) + 0.5) * 2 / w - 1) * half * w / h
    dirs = forward + u.view(1, w, 1) * right + v.view(h, 1, 1) * up
    dirs = (dirs / dirs.norm(dim=-1, keepdim=True)).reshape(-1, 3)
    device = _device(device)
    return eye.expand(h * w, 3).to(device, dtype), dirs.to(device, dtype)


class DepthImage(NamedTuple):
    """What :func:`render_depth` returns; background pixels hold NaN in ``depth`` and ``normals``."""

    depth: torch.Tensor    # (B, H, W) distance from the eye along each pixel's ray
    normals: torch.Tensor  # (B, H, W, 3) world-space unit normals facing the camera
    hit: torch.Tensor      # (B, H, W) bool


def render_depth(score_fn, sigma, *, resolution=128, azimuth: float = 35.0, elevation: float = 20.0,
                 distance: float = 4.6, fov: float = 30.0, radius: float = math.sqrt(3.0),
                 num_shapes: int = 1,
                 device=None, dtype: torch.dtype = torch.float32, **raycast_kwargs) -> DepthImage:
    """Depth and normal images of the field's surface from a pinhole camera (:func:`raycast`, no mesh).

    Rays are searched inside the sphere of ``radius`` around the origin (default: the one around
    ``[-1, 1]^3``). The camera is :func:`camera_rays`' (the same view as ``gfcore.viz3d``'s renders with the
    same angles).

    Args:
        score_fn: score callable for ``num_shapes`` shapes, on ``device``.
        sigma: a positive number or ``(B,)`` tensor.
        resolution: ``H`` or ``(H, W)``.
        azimuth, elevation, distance, fov: the camera (degrees, degrees, length, degrees).
        radius: bounding sphere of the shapes, ``< distance``.
        num_shapes: ``B``.
        **raycast_kwargs: passed to :func:`raycast` (``max_steps``, ``hit_eps``, ``chunk_size``, ...).

    Returns:
        :class:`DepthImage` ``(depth (B, H, W), normals (B, H, W, 3), hit (B, H, W))``.

    Raises:
        ValueError, TypeError: as :func:`camera_rays` and :func:`raycast`; ``radius`` not in
            ``(0, distance)``.

    Taught in chapter 8 (From gradients to surfaces).
    """
    _checks.positive("radius", radius)
    if not radius < distance:
        raise ValueError(f"radius={radius} must be < distance={distance} (the camera must be outside the "
                         "shape)")
    batch = _checks.positive_int("num_shapes", num_shapes)
    origins, directions = camera_rays(resolution, azimuth=azimuth, elevation=elevation, distance=distance,
                                      fov=fov, device=device, dtype=dtype)
    h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    hits = raycast(score_fn, origins.expand(batch, -1, -1), directions.expand(batch, -1, -1), sigma,
                   near=distance - radius, far=distance + radius, **raycast_kwargs)
    return DepthImage(hits.depth.reshape(batch, h, w), hits.normals.reshape(batch, h, w, 3),
                      hits.hit.reshape(batch, h, w))


# -------------------------------------------------------------------------------------------- models, files

def mesh_from_model(model, *, points=None, z=None, sigma: float = 0.05, num_support: int = 2048,
                    generator: torch.Generator | None = None, **marching_cubes_kwargs):
    """Mesh of one shape of a trained auto-encoder: encode ``points`` (or take ``z``), then marching cubes.

    The model is any object with ``encode(points (B, N, 3)) -> (B, zdim)``, ``score_fn(z) -> score callable``,
    ``decode(z, num_points)`` (annealed Langevin sampling) and parameters (e.g. :class:`gfcore.models.ShapeGF`).
    It runs in eval mode on its own device and is put back in the mode it was in. Defaults:
    ``project_steps=2`` (vertices on the surface), ``keep="outer"``, and the mesh is kept near
    ``num_support`` of the model's own samples (``support=`` of :func:`mesh_from_grid`): far from its data a
    learned field can be small in empty space, and marching cubes would draw sheets there.

    Args:
        model: the auto-encoder.
        points: ``(N, 3)`` or ``(1, N, 3)`` input cloud, normalised as the model's training data.
        z: ``(zdim,)`` or ``(1, zdim)`` latent code instead of ``points`` (e.g. from a latent generator).
        sigma: the field's level for the unsigned distance; a small level of the training ladder, but not the
            very smallest (a learned field is reliable only within a few ``sigma`` of the surface).
        num_support: samples drawn with ``model.decode`` to support the mesh; 0: no support.
        generator: for the samples' Langevin noise (on the model's device).
        **marching_cubes_kwargs: ``resolution``, ``bounds``, ``level``, ``keep``, ``project_steps``, ...

    Returns:
        ``vertices (V, 3)``, ``faces (F, 3)`` CPU tensors.

    Raises:
        ValueError: neither or both of ``points`` and ``z``, or more than one shape; as
            :func:`marching_cubes`.

    Taught in chapter 8 (From gradients to surfaces).
    """
    if (points is None) == (z is None):
        raise ValueError("pass exactly one of points= or z=")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if points is not None:
                points = _checks.point_cloud("points", points, dim=3)
                points = points if points.dim() == 3 else points.unsqueeze(0)
                if points.shape[0] != 1:
                    raise ValueError(f"points must hold one shape, got shape {tuple(points.shape)}")
                z = model.encode(points.to(device))
            else:
                z = _checks.tensor("z", z, ndims=(1, 2))
                z = (z if z.dim() == 2 else z.unsqueeze(0)).to(device)
                if z.shape[0] != 1:
                    raise ValueError(f"z must hold one shape, got shape {tuple(z.shape)}")
        if isinstance(num_support, bool) or not isinstance(num_support, int) or num_support < 0:
            raise ValueError(f"num_support must be an int >= 0, got {num_support!r}")
        if num_support and "support" not in marching_cubes_kwargs:
            with torch.no_grad():
                marching_cubes_kwargs["support"] = model.decode(z, num_support, generator=generator)[0]
        marching_cubes_kwargs.setdefault("project_steps", 2)
        marching_cubes_kwargs.setdefault("device", device)
        return marching_cubes(model.score_fn(z), sigma=sigma, **marching_cubes_kwargs)
    finally:
        model.train(was_training)


def _mesh_arrays(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    v = vertices.detach().cpu().numpy() if isinstance(vertices, torch.Tensor) else np.asarray(vertices)
    f = faces.detach().cpu().numpy() if isinstance(faces, torch.Tensor) else np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0 or not np.issubdtype(v.dtype, np.floating):
        raise ValueError(f"vertices must be a non-empty floating (V, 3) array, got shape {v.shape}, "
                         f"{v.dtype}")
    if not np.isfinite(v).all():
        raise ValueError("vertices contain NaN or inf")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be a non-empty integer (F, 3) array, got shape {f.shape}, {f.dtype}")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"faces index vertices 0..{len(v) - 1}, got indices {f.min()}..{f.max()}")
    return v, f.astype(np.int64)


def write_mesh(path, vertices, faces) -> str:
    """Write a triangle mesh as ASCII PLY (``.ply``) or Wavefront OBJ (``.obj``), by the file's suffix.

    Args:
        path: the file to write (its folder must exist).
        vertices: ``(V, 3)`` floating tensor or array.
        faces: ``(F, 3)`` integer vertex indices (0-based; OBJ's 1-based indices are written for you).

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: an unknown suffix, malformed arrays, indices out of range.

    Taught in chapter 8 (From gradients to surfaces).
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    _checks.choice("path suffix", suffix, (".ply", ".obj"))
    v, f = _mesh_arrays(vertices, faces)
    vtext = "\n".join(" ".join(f"{c:.7g}" for c in row) for row in v)
    if suffix == ".ply":
        header = ["ply", "format ascii 1.0", "comment written by gfcore.surface", f"element vertex {len(v)}",
                  "property float x", "property float y", "property float z", f"element face {len(f)}",
                  "property list uchar int vertex_indices", "end_header"]
        ftext = "\n".join(f"3 {a} {b} {c}" for a, b, c in f)
        text = "\n".join(header) + "\n" + vtext + "\n" + ftext + "\n"
    else:
        text = ("# written by gfcore.surface\n" + "\n".join("v " + line for line in vtext.split("\n")) + "\n"
                + "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f) + "\n")
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)
    return path


def to_polydata(vertices, faces):
    """A ``pyvista.PolyData`` of a triangle mesh (pyvista is imported here, only when called).

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)`` indices.

    Returns:
        ``pyvista.PolyData``.

    Raises:
        ImportError: pyvista is not installed. ValueError: malformed arrays.

    Taught in chapter 8 (From gradients to surfaces).
    """
    v, f = _mesh_arrays(vertices, faces)
    try:
        import pyvista
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("to_polydata needs pyvista: pip install pyvista") from err
    cells = np.hstack([np.full((len(f), 1), 3, dtype=np.int64), f]).ravel()
    return pyvista.PolyData(v.astype(np.float32), cells)
