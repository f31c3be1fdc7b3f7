"""Point-cloud normalisations: one function per convention, and :func:`normalize` to pick one by name.

Every normalisation returns ``(normed, shift, scale)`` with ``raw = normed * scale + shift``, so a model works
in the normalised space and metrics can be computed after undoing it (``denormalize``).

- ``"shape_bbox"`` (official ShapeGF, every ShapeNet config): per shape, ``shift`` = bounding-box centre,
  ``scale`` = half the longest bounding-box side; the shape fits ``[-1, 1]`` exactly on its longest axis.
- ``"shape_unit"``: per shape, ``shift`` = mean of the points, ``scale`` = largest distance from it; the shape
  fits the unit ball and touches its boundary.
- ``"global"`` (PointFlow's protocol): one per-axis mean and one scalar std computed over a whole training
  split (the std of all coordinates flattened together, exactly as PointFlow computes it); other splits reuse
  the training statistics (pass ``stats``).
- ``"none"``: ``shift = 0``, ``scale = 1``.

Functions accept ``torch.Tensor`` or ``numpy.ndarray`` clouds, ``(N, d)`` or batched ``(B, N, d)``, and return
the same type. ``shift`` is ``(1, d)`` (``(B, 1, d)`` batched), ``scale`` is ``(1, 1)`` (``(B, 1, 1)``
batched).

Taught in chapter 10 (Reproducing the paper on ShapeNet: data and its normalisation).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

NORMALIZATIONS = ("shape_bbox", "shape_unit", "global", "none")


def _check(points, name: str = "points"):
    """Validate a cloud; numpy arrays stay numpy (no torch op in the data-loading hot path)."""
    if not isinstance(points, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(points).__name__}")
    floating = points.is_floating_point() if isinstance(points, torch.Tensor) else \
        np.issubdtype(points.dtype, np.floating)
    if not floating:
        raise TypeError(f"{name} must be floating point, got dtype {points.dtype}")
    if points.ndim not in (2, 3) or points.shape[-2] == 0 or points.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, d) or (B, N, d) cloud, "
                         f"got shape {tuple(points.shape)}")
    finite = torch.isfinite(points).all() if isinstance(points, torch.Tensor) else np.isfinite(points).all()
    if not finite:
        raise ValueError(f"{name} contains NaN or inf values")
    return points


def _amax(x, axis):
    return x.amax(dim=axis, keepdim=True) if isinstance(x, torch.Tensor) else x.max(axis=axis, keepdims=True)


def _amin(x, axis):
    return x.amin(dim=axis, keepdim=True) if isinstance(x, torch.Tensor) else x.min(axis=axis, keepdims=True)


def _finish(t, shift, scale):
    if (scale <= 0).any():
        raise ValueError("cannot normalise a degenerate cloud (all points identical: zero scale)")
    return (t - shift) / scale, shift, scale


def shape_bbox(points):
    """Per-shape bounding-box normalisation (official ShapeGF): centre the box, half its longest side -> 1.

    Args:
        points: ``(N, d)`` or ``(B, N, d)`` cloud (tensor or array).

    Returns:
        ``(normed, shift, scale)``: ``normed`` like ``points``, with every shape's longest axis spanning
        exactly ``[-1, 1]``; ``shift`` ``(1, d)``/``(B, 1, d)`` the box centre; ``scale`` ``(1, 1)``/
        ``(B, 1, 1)``.

    Taught in chapter 10.
    """
    t = _check(points)
    hi, lo = _amax(t, -2), _amin(t, -2)
    shift = (hi + lo) / 2
    scale = _amax(hi - lo, -1) / 2
    return _finish(t, shift, scale)


def shape_unit(points):
    """Per-shape unit-ball normalisation: centre on the mean, the farthest point at distance 1.

    Args:
        points: ``(N, d)`` or ``(B, N, d)`` cloud.

    Returns:
        ``(normed, shift, scale)`` with ``shift`` the mean ``(1, d)``/``(B, 1, d)`` and ``scale`` the largest
        distance from it ``(1, 1)``/``(B, 1, 1)``.

    Taught in chapter 10.
    """
    t = _check(points)
    shift = t.mean(-2, keepdims=True) if isinstance(t, np.ndarray) else t.mean(dim=-2, keepdim=True)
    centred = t - shift
    norms = (centred * centred).sum(-1, keepdims=True) if isinstance(t, np.ndarray) else \
        (centred * centred).sum(dim=-1, keepdim=True)
    scale = _amax(norms, -2) ** 0.5
    return _finish(t, shift, scale)


def global_stats(clouds: Iterable) -> dict[str, torch.Tensor]:
    """PointFlow's global statistics over a training split: per-axis mean and one scalar std.

    The std is that of *all coordinates flattened together* (around their scalar mean), exactly as PointFlow
    computes it (``all_points.reshape(-1).std()``), not the std around the per-axis mean. Accumulated in
    float64, one cloud at a time, so a whole split never has to sit in memory at once.

    Args:
        clouds: an iterable of ``(N_i, d)`` clouds (tensors or arrays), or one ``(B, N, d)`` batch.

    Returns:
        ``{"shift": (1, d) float32 tensor, "scale": (1, 1) float32 tensor}`` (the mean and the std).

    Raises:
        ValueError: no clouds, mismatched ``d``, zero spread.

    Taught in chapter 10.
    """
    if isinstance(clouds, (torch.Tensor, np.ndarray)) and clouds.ndim == 3:
        clouds = list(clouds)
    count = 0
    total = None
    total_sq = 0.0
    for i, cloud in enumerate(clouds):
        a = cloud.detach().cpu().numpy() if isinstance(cloud, torch.Tensor) else np.asarray(cloud)
        if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"clouds[{i}] must be a non-empty (N, d) cloud, got shape {a.shape}")
        a = a.astype(np.float64, copy=False)
        if not np.isfinite(a).all():
            raise ValueError(f"clouds[{i}] contains NaN or inf values")
        s = a.sum(axis=0)
        if total is None:
            total = s
        elif s.shape != total.shape:
            raise ValueError(f"clouds[{i}] has d={s.shape[0]}, earlier clouds d={total.shape[0]}")
        else:
            total = total + s
        total_sq += float(np.einsum("ij,ij->", a, a))
        count += a.shape[0]
    if total is None:
        raise ValueError("global_stats needs at least one cloud")
    d = total.shape[0]
    mean_axis = total / count
    mean_all = float(total.sum()) / (count * d)
    var = total_sq / (count * d) - mean_all**2
    if var <= 0:
        raise ValueError("global_stats: the clouds have zero spread")
    return {"shift": torch.from_numpy(mean_axis).float().reshape(1, d),
            "scale": torch.tensor([[var**0.5]], dtype=torch.float32)}


def apply_global(points, stats: Mapping):
    """Normalise with given global statistics (``{"shift": (1, d), "scale": (1, 1)}``, from
    :func:`global_stats`).

    Returns:
        ``(normed, shift, scale)``; ``shift``/``scale`` are ``(1, d)``/``(1, 1)``, or ``(B, 1, d)``/
        ``(B, 1, 1)`` for a batch, like the per-shape normalisations.

    Taught in chapter 10.
    """
    t = _check(points)
    shift, scale = _check_stats(stats, t.shape[-1])
    lead = (t.shape[0], 1) if t.ndim == 3 else (1,)
    if isinstance(t, np.ndarray):
        shift = np.broadcast_to(shift.numpy().astype(t.dtype), lead + (t.shape[-1],)).copy()
        scale = np.broadcast_to(scale.numpy().astype(t.dtype), lead + (1,)).copy()
    else:
        shift = shift.to(device=t.device, dtype=t.dtype).expand(*lead, t.shape[-1]).clone()
        scale = scale.to(device=t.device, dtype=t.dtype).expand(*lead, 1).clone()
    return _finish(t, shift, scale)


def _check_stats(stats, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(stats, Mapping) or "shift" not in stats or "scale" not in stats:
        raise ValueError(f"stats must be a mapping with 'shift' (1, d) and 'scale' (1, 1), got {stats!r}")
    shift = torch.as_tensor(np.asarray(stats["shift"], dtype=np.float64)).reshape(-1)
    scale = torch.as_tensor(np.asarray(stats["scale"], dtype=np.float64)).reshape(-1)
    if shift.numel() != d or scale.numel() != 1:
        raise ValueError(f"stats must hold shift of {d} values and one scale, got shift {tuple(shift.shape)} "
                         f"and scale {tuple(scale.shape)}")
    if not (torch.isfinite(shift).all() and torch.isfinite(scale).all()) or float(scale) <= 0:
        raise ValueError(f"stats must be finite with scale > 0, got shift {shift.tolist()}, "
                         f"scale {scale.tolist()}")
    return shift, scale


def no_normalization(points):
    """The identity: ``shift = 0``, ``scale = 1`` (shapes as for the per-shape normalisations)."""
    t = _check(points)
    shift = t[..., :1, :] * 0
    scale = t[..., :1, :1] * 0 + 1
    return t * 1, shift, scale


def normalize(points, mode: str, stats: Mapping | None = None):
    """Normalise a cloud by name: ``"shape_bbox"``, ``"shape_unit"``, ``"global"`` or ``"none"``.

    Args:
        points: ``(N, d)`` or ``(B, N, d)`` cloud (tensor or array; the outputs have the same type).
        mode: one of :data:`NORMALIZATIONS`.
        stats: for ``"global"``: ``{"shift", "scale"}`` from :func:`global_stats` over the training split.
            When omitted, the statistics are computed from ``points`` themselves (treating them as the
            training split).

    Returns:
        ``(normed, shift, scale)`` with ``points == normed * scale + shift``.

    Raises:
        ValueError: unknown ``mode``, malformed ``stats``, degenerate cloud.

    Taught in chapter 10.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalize mode must be one of {list(NORMALIZATIONS)}, got {mode!r}")
    if mode == "shape_bbox":
        return shape_bbox(points)
    if mode == "shape_unit":
        return shape_unit(points)
    if mode == "none":
        return no_normalization(points)
    if stats is None:
        t = _check(points)
        stats = global_stats([t.reshape(-1, t.shape[-1])])
    return apply_global(points, stats)


def denormalize(points, shift, scale):
    """Undo a normalisation: ``points * scale + shift`` (any broadcastable shapes, tensors or arrays)."""
    return points * scale + shift


# ---------------------------------------------------------------------------------------------------------------
# Evaluation protocols (chapter 6): which normalisation a published table used, and where its metrics are taken.
# ---------------------------------------------------------------------------------------------------------------
PROTOCOLS = {
    "pointflow": (
        "PointFlow's generation protocol: one category; every cloud normalised by one per-axis mean and one scalar "
        "std computed over the training split (global_stats); metrics on de-normalised (original) coordinates; "
        "references = the val split, one generated cloud per reference, 2048 points each"),
    "shape_bbox": (
        "per-shape bounding-box protocol (DPM's, and ShapeGF's numbers in DPM's table): every generated and "
        "reference cloud is scaled into its own box (centre 0, longest side spanning [-1, 1]) before the metrics"),
    "shapegf_autoencoding": (
        "ShapeGF's official auto-encoding protocol: encode the first 2048 points of each shape's train pool, compare "
        "the reconstruction with the first 2048 points of its test pool, in original coordinates (the per-shape "
        "normalisation undone); CD x1e4, EMD x1e2, beside the oracle (train-pool sample against test-pool sample)"),
}


def protocol_coordinates(points, protocol: str, *, shift=None, scale=None):
    """Clouds in the coordinates a protocol computes its metrics in (see :data:`PROTOCOLS`).

    - ``"pointflow"`` and ``"shapegf_autoencoding"``: the original coordinates, ``points * scale + shift``
      (``shift``/``scale`` from the data set's items, or :func:`global_stats` of the training split for PointFlow).
    - ``"shape_bbox"``: every cloud scaled into its own bounding box (:func:`shape_bbox`); ``shift`` and ``scale``
      are not needed, since a box normalisation undoes any shift and uniform scale.

    Args:
        points: ``(N, d)`` or ``(B, N, d)`` clouds (tensor or array), as a model or data set gives them.
        protocol: a key of :data:`PROTOCOLS`.
        shift, scale: the normalisation to undo (``(1, d)``/``(B, 1, d)`` and ``(1, 1)``/``(B, 1, 1)``).

    Returns:
        The clouds in the protocol's coordinates, same type and shape as ``points``.

    Raises:
        ValueError: unknown ``protocol``, missing ``shift``/``scale``, or a bad cloud.

    Taught in chapter 6 (Measuring quality).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    t = _check(points)
    if protocol == "shape_bbox":
        return shape_bbox(t)[0]
    if shift is None or scale is None:
        raise ValueError(f"protocol {protocol!r} computes metrics in original coordinates: pass the shift and "
                         "scale that normalised the clouds (data set items carry them; global_stats for PointFlow)")
    return denormalize(t, shift, scale)
