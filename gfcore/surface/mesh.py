"""Meshes from the field: marching cubes of the unsigned distance (the double surface and its remedy), and
the mesh of one shape of a trained auto-encoder.

Taught in chapter 8 (From gradients to surfaces).
"""
from __future__ import annotations

import numpy as np
import torch

from gfcore import _checks
from gfcore.surface._common import KEEP, _bounds, _device, _resolution
from gfcore.surface.distance import project_to_surface, unsigned_distance_grid

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
        radius = 3.0 * level if support_radius is None else support_radius
        volume = _mask_support(volume, support, lo, step, level, radius)
        if not volume.min() <= level:
            raise ValueError(f"no surface near the support: u drops to level={level:.4g} only farther than "
                             f"support_radius={radius:.4g} from all {len(support)} support points; check that "
                             "they lie on the shape, inside bounds")
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
