"""Ray casting the field: sphere tracing with the unsigned distance, cameras, depth and normal images.

Taught in chapter 8 (From gradients to surfaces).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from gfcore import _checks
from gfcore.surface._common import _chunk_size, _device, _displacement, _resolution, _sigma_b

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


class _Trace(NamedTuple):
    """The options of one :func:`raycast` call, checked, defaults resolved; ``smax`` is the largest sigma (the
    scale of the crossing test, the saddle probes and the final check)."""

    near: float
    far: float
    max_steps: int
    hit_eps: float
    step_scale: float
    refine_steps: int
    normal_offset: float
    reject_saddles: bool
    smax: float


def _trace_options(sigma_b: torch.Tensor, *, near, far, max_steps, hit_eps, step_scale, refine_steps,
                   normal_offset, reject_saddles) -> _Trace:
    """Check :func:`raycast`'s options and resolve ``far``, ``hit_eps`` and ``normal_offset``."""
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
    return _Trace(near, far, max_steps, hit_eps, step_scale, refine_steps, normal_offset, reject_saddles, smax)


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
    sigma_b = _sigma_b(sigma, o.shape[0], o)
    chunk = _chunk_size(chunk_size)
    opts = _trace_options(sigma_b, near=near, far=far, max_steps=max_steps, hit_eps=hit_eps, step_scale=step_scale,
                          refine_steps=refine_steps, normal_offset=normal_offset, reject_saddles=reject_saddles)

    def disp(x):
        """``sigma^2 s`` at ``x (B, m, 3)``."""
        return _displacement(score_fn, x, sigma_b, chunk)

    t, hit = _march(disp, o, d, opts)
    out = _refine(disp, o, d, t, hit, opts)
    return out if batched else RayHits(*(v.squeeze(0) for v in out))


def _march(disp, o: torch.Tensor, d: torch.Tensor, opts: _Trace) -> tuple[torch.Tensor, torch.Tensor]:
    """Sphere tracing: ``(t (B, R), hit (B, R))``, each ray's distance along it and whether it hit; only the
    columns of rays still active in some shape are evaluated."""
    batch, r, _ = o.shape
    t = torch.full((batch, r), float(opts.near), device=o.device, dtype=o.dtype)
    active = torch.ones(batch, r, dtype=torch.bool, device=o.device)
    hit = torch.zeros_like(active)
    ahead = torch.zeros_like(active)        # the field pointed along the ray at the previous step
    for _ in range(opts.max_steps):
        cols = active.any(dim=0).nonzero().squeeze(1)
        if cols.numel() == 0:
            break
        oc, dc, tc, ac = o[:, cols], d[:, cols], t[:, cols], active[:, cols]
        disp_c = disp(oc + tc.unsqueeze(-1) * dc)
        u = disp_c.norm(dim=-1)                                                         # (B, c)
        along = (disp_c * dc).sum(-1)
        crossed = ahead[:, cols] & (along < 0) & (u < opts.smax)
        ahead[:, cols] = along > 0
        new = ac & ((u < opts.hit_eps) | crossed)
        if opts.reject_saddles and new.any():
            new, tc = _skip_saddles(disp, oc, dc, tc, new, opts)
        moving = ac & ~new
        tc = torch.where(moving & ~(u < opts.hit_eps) & ~crossed, tc + opts.step_scale * u, tc)
        gone = moving & (tc > opts.far)
        t[:, cols] = tc
        hit[:, cols] = hit[:, cols] | new
        active[:, cols] = ac & ~new & ~gone
    return t, hit


def _skip_saddles(disp, oc, dc, tc, new, opts: _Trace) -> tuple[torch.Tensor, torch.Tensor]:
    """``(new, tc)``: the new hits where ``u`` is not distance-like dropped, and those rays moved on by
    ``2 smax``."""
    new_cols = new.any(dim=0).nonzero().squeeze(1)
    ok = _distance_like(disp, oc[:, new_cols] + tc[:, new_cols].unsqueeze(-1) * dc[:, new_cols], opts.smax,
                        opts.hit_eps)
    bad = torch.zeros_like(new)
    bad[:, new_cols] = new[:, new_cols] & ~ok
    return new & ~bad, torch.where(bad, tc + 2 * opts.smax, tc)


def _refine(disp, o: torch.Tensor, d: torch.Tensor, t: torch.Tensor, hit: torch.Tensor, opts: _Trace) -> RayHits:
    """The batched :class:`RayHits`: each hit's normal, read ``normal_offset`` before it and facing the ray
    origin; the hit refined along the field, kept on its ray; hits that end off the surface dropped."""
    rows_cols = hit.any(dim=0).nonzero().squeeze(1)
    points = torch.full_like(o, float("nan"))
    normals = torch.full_like(o, float("nan"))
    depth = torch.full_like(t, float("nan"))
    hit = hit.clone()
    if rows_cols.numel():
        oc, dc, tc, hc = o[:, rows_cols], d[:, rows_cols], t[:, rows_cols], hit[:, rows_cols]
        # the field's direction a little in front of the hit: toward the surface, a stable normal
        v = disp(oc + (tc - opts.normal_offset).unsqueeze(-1) * dc)
        n = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        facing = (n * dc).sum(-1)                                   # cos of the incidence, > 0 if the surface is ahead
        for _ in range(opts.refine_steps):
            # Newton step on the signed offset along n: moving dt along the ray changes it by facing * dt
            u = disp(oc + tc.unsqueeze(-1) * dc)
            dt = (u * n).sum(-1) / facing.clamp_min(0.1)
            tc = torch.where(hc & (facing > 0.1), tc + dt.clamp(-opts.normal_offset, opts.normal_offset), tc)
        x = oc + tc.unsqueeze(-1) * dc
        n = torch.where(facing.unsqueeze(-1) > 0, -n, n)             # face the ray origin
        # a ray that passed near a silhouette without meeting the surface ends away from it: a miss
        hc = hc & (disp(x).norm(dim=-1) <= max(opts.hit_eps, opts.smax))
        hit[:, rows_cols] = hc
        nan = torch.tensor(float("nan"), device=o.device, dtype=o.dtype)
        points[:, rows_cols] = torch.where(hc.unsqueeze(-1), x, nan)
        normals[:, rows_cols] = torch.where(hc.unsqueeze(-1), n, nan)
        depth[:, rows_cols] = torch.where(hc, tc, nan)
    return RayHits(points, normals, hit, depth)


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
