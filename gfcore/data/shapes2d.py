"""Procedural 2D shapes as point clouds, sampled uniformly by arc length along their outline.

A 2D "shape" here is its outline: a list of polylines (closed ones repeat their first vertex at the end).
Points on the shape are drawn i.i.d. from the uniform distribution on that outline, i.e. each polyline segment
is chosen with probability proportional to its length and a point is placed uniformly along it. This is the 2D
analogue of sampling a mesh surface uniformly by area, which is how ShapeGF's 3D point clouds are made.

Every shape is centred near the origin and fits in ``[-1, 1]^2``. Names:

- the registry :data:`SHAPES` (``"circle"``, ``"square"``, ``"star"``, ``"heart"``, ``"spiral"``);
- ``"glyph:<text>"`` for text outlined with matplotlib's bundled DejaVu Sans font, e.g. ``"glyph:A"`` or
  ``"glyph:8"``.

Taught in chapter 1 (Shapes as distributions); glyphs return in chapter 4 (Conditional fields in 2D).
"""
from __future__ import annotations

import math

import torch

from gfcore import _checks

__all__ = ["SHAPES", "circle", "square", "star", "heart", "spiral", "glyph", "names", "outline", "sample",
           "dense", "polyline_sample", "polyline_dense", "outline_length"]

GLYPH_PREFIX = "glyph:"
_HALF_EXTENT = 0.9  # shapes normalised by bounding box fill [-0.9, 0.9] along their longest side


# ------------------------------------------------------------------------------------------------------------
# Outlines: each function returns a list of (P_j, 2) float64 polylines
# ------------------------------------------------------------------------------------------------------------

def _closed(vertices: torch.Tensor) -> torch.Tensor:
    """Append the first vertex so the polyline closes: ``(P, 2) -> (P + 1, 2)``."""
    return torch.cat([vertices, vertices[:1]], dim=0)


def _fit(polylines: list[torch.Tensor], half_extent: float = _HALF_EXTENT) -> list[torch.Tensor]:
    """Centre the bounding box of ``polylines`` at the origin; scale its longest side to ``2 half_extent``."""
    allv = torch.cat(polylines, dim=0)
    lo, hi = allv.min(dim=0).values, allv.max(dim=0).values
    centre = (lo + hi) / 2
    scale = 2 * half_extent / float((hi - lo).max())
    return [(p - centre) * scale for p in polylines]


def circle(*, radius: float = 0.8, resolution: int = 2048) -> list[torch.Tensor]:
    """Outline of a circle of ``radius`` centred at the origin, as a regular ``resolution``-gon.

    With the default ``resolution`` the polygon is within ``radius * (1 - cos(pi / 2048)) < 1e-6`` of the
    circle.

    Returns:
        ``[(resolution + 1, 2)]`` one closed float64 polyline.

    Taught in chapter 1.
    """
    _checks.positive("radius", radius)
    _checks.positive_int("resolution", resolution)
    if resolution < 3:
        raise ValueError(f"resolution must be >= 3 for a circle, got {resolution}")
    t = torch.arange(resolution, dtype=torch.float64) * (2 * math.pi / resolution)
    return [_closed(radius * torch.stack([torch.cos(t), torch.sin(t)], dim=1))]


def square(*, half_side: float = 0.7) -> list[torch.Tensor]:
    """Outline of the axis-aligned square ``max(|x|, |y|) = half_side``.

    Returns:
        ``[(5, 2)]`` one closed float64 polyline (the four corners, counter-clockwise).

    Taught in chapter 1.
    """
    _checks.positive("half_side", half_side)
    h = float(half_side)
    return [_closed(torch.tensor([[h, h], [-h, h], [-h, -h], [h, -h]], dtype=torch.float64))]


def star(*, num_tips: int = 5, outer: float = 0.9, inner: float = 0.38) -> list[torch.Tensor]:
    """Outline of a star: ``num_tips`` tips at radius ``outer``, notches at radius ``inner``, one tip up.

    The defaults give a regular pentagram outline (``inner / outer`` close to ``(3 - sqrt 5) / 2``).

    Returns:
        ``[(2 * num_tips + 1, 2)]`` one closed float64 polyline.

    Taught in chapter 1.
    """
    _checks.positive_int("num_tips", num_tips)
    if num_tips < 2:
        raise ValueError(f"num_tips must be >= 2, got {num_tips}")
    _checks.positive("outer", outer)
    _checks.positive("inner", inner)
    k = torch.arange(2 * num_tips, dtype=torch.float64)
    angle = math.pi / 2 + k * (math.pi / num_tips)
    r = torch.where(k % 2 == 0, torch.tensor(float(outer), dtype=torch.float64),
                    torch.tensor(float(inner), dtype=torch.float64))
    return [_closed(torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1))]


def heart(*, resolution: int = 2048) -> list[torch.Tensor]:
    """Outline of the classic heart curve ``x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t``.

    Centred by its bounding box and scaled so its longest side spans ``[-0.9, 0.9]``.

    Returns:
        ``[(resolution + 1, 2)]`` one closed float64 polyline.

    Taught in chapter 1.
    """
    _checks.positive_int("resolution", resolution)
    if resolution < 3:
        raise ValueError(f"resolution must be >= 3 for a heart, got {resolution}")
    t = torch.arange(resolution, dtype=torch.float64) * (2 * math.pi / resolution)
    x = 16 * torch.sin(t) ** 3
    y = 13 * torch.cos(t) - 5 * torch.cos(2 * t) - 2 * torch.cos(3 * t) - torch.cos(4 * t)
    return _fit([_closed(torch.stack([x, y], dim=1))])


def spiral(*, turns: float = 2.5, radius: float = 0.9, resolution: int = 4096) -> list[torch.Tensor]:
    """An open Archimedean spiral ``r = radius * s, angle = 2 pi turns s`` for ``s`` in ``[0.05, 1]``.

    The arms are ``radius / turns`` apart (0.36 by default), so a small ``sigma`` resolves them and a large
    one blurs them into a disc: a good shape for seeing what ``sigma`` does.

    Returns:
        ``[(resolution, 2)]`` one open float64 polyline, from the centre outwards.

    Taught in chapter 1.
    """
    _checks.positive("turns", turns)
    _checks.positive("radius", radius)
    _checks.positive_int("resolution", resolution)
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2 for a spiral, got {resolution}")
    s = torch.linspace(0.05, 1.0, resolution, dtype=torch.float64)
    angle = 2 * math.pi * turns * s
    r = radius * s
    return [torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)]


def glyph(text: str, *, family: str = "DejaVu Sans", style: str = "normal", weight: str = "normal",
          resolution: int = 4096) -> list[torch.Tensor]:
    """Outline of ``text`` in matplotlib's bundled font: every closed contour of every character.

    The font's Bezier curves are flattened by ``matplotlib.textpath.TextPath.to_polygons`` at ``resolution``
    units per em, so the polylines deviate from the true curves by about ``0.5 / resolution`` em. The result
    is centred by its bounding box and scaled so its longest side spans ``[-0.9, 0.9]``.

    Args:
        text: one or more printable characters, at least one of them not a space (``"A"``, ``"8"``, ``"GF"``).
        family: a font family matplotlib can find; the default ships with matplotlib, so results match
            everywhere.
        style, weight: font style (``"normal"``, ``"italic"``, ``"oblique"``) and weight (``"normal"``,
            ``"bold"``), as matplotlib's ``FontProperties`` takes them.
        resolution: flattening scale (units per em).

    Returns:
        a list of closed float64 polylines ``(P_j, 2)``, one per contour (``"8"`` has three).

    Raises:
        ValueError: empty, blank or non-printable ``text``.

    Taught in chapter 4.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"text must hold at least one visible character, got {text!r}")
    if not text.isprintable():
        raise ValueError(f"text must be printable on one line (no newlines or control characters), "
                         f"got {text!r}")
    _checks.positive_int("resolution", resolution)
    path = TextPath((0, 0), text, size=1, prop=FontProperties(family=family, style=style, weight=weight))
    polygons = path.to_polygons(transform=Affine2D().scale(resolution), closed_only=True)
    polylines = [torch.as_tensor(p, dtype=torch.float64) / resolution for p in polygons if len(p) >= 3]
    if not polylines:
        raise ValueError(f"text {text!r} has no outline in font family {family!r}")
    return _fit(polylines)


SHAPES = {
    "circle": circle,
    "square": square,
    "star": star,
    "heart": heart,
    "spiral": spiral,
}
"""Registry of the procedural shapes: name -> function returning the outline polylines."""


def names() -> list[str]:
    """The valid shape names: the keys of :data:`SHAPES` and the pattern ``"glyph:<text>"``."""
    return sorted(SHAPES) + [GLYPH_PREFIX + "<text>"]


def outline(name: str, *, resolution: int | None = None) -> list[torch.Tensor]:
    """The outline of shape ``name`` as ordered float64 polylines, for plotting and distance checks.

    Args:
        name: a key of :data:`SHAPES` or ``"glyph:<text>"``.
        resolution: vertices along curved outlines (circle, heart, spiral) or the glyph flattening scale;
            ignored by the polygons (square, star). Default: each shape's own default.

    Returns:
        ``[(P_j, 2), ...]`` polylines; closed ones repeat their first vertex at the end.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names) or empty glyph text.

    Taught in chapter 1.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    kwargs = {} if resolution is None else {"resolution": resolution}
    if name.startswith(GLYPH_PREFIX):
        text = name[len(GLYPH_PREFIX):]
        if not text.strip():
            raise ValueError(f"name {name!r} has no glyph text; write e.g. 'glyph:A'")
        return glyph(text, **kwargs)
    if name not in SHAPES:
        raise ValueError(f"name must be one of {names()}, got {name!r}")
    if name in ("square", "star"):
        kwargs = {}
    return SHAPES[name](**kwargs)


# ------------------------------------------------------------------------------------------------------------
# Arc-length parametrisation of polylines
# ------------------------------------------------------------------------------------------------------------

def _segments(polylines) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack all polylines' segments: starts ``(S, 2)``, ends ``(S, 2)``, cumulative lengths ``(S + 1,)``."""
    if isinstance(polylines, torch.Tensor):
        polylines = [polylines]
    if len(polylines) == 0:
        raise ValueError("polylines is empty; expected a list of (P, 2) tensors")
    starts, ends = [], []
    for j, p in enumerate(polylines):
        p = torch.as_tensor(p)
        p = _checks.tensor(f"polylines[{j}]", p, ndims=(2,), dim=2).to(torch.float64).cpu()
        if p.shape[0] < 2:
            raise ValueError(f"polylines[{j}] needs at least 2 vertices, got shape {tuple(p.shape)}")
        starts.append(p[:-1])
        ends.append(p[1:])
    a, b = torch.cat(starts), torch.cat(ends)
    lengths = (b - a).norm(dim=1)
    cum = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    if float(cum[-1]) <= 0:
        raise ValueError("polylines have zero total length")
    return a, b, cum


def _at_arc_length(a, b, cum, s) -> torch.Tensor:
    """Points at arc lengths ``s`` ``(M,)`` (float64, in ``[0, total]``) along the stacked segments."""
    idx = torch.searchsorted(cum, s, right=True) - 1
    idx = idx.clamp(0, a.shape[0] - 1)
    seg = cum[idx + 1] - cum[idx]
    # zero-length segments are never selected by a strictly increasing search, but guard the division anyway
    t = torch.where(seg > 0, (s - cum[idx]) / seg.clamp_min(torch.finfo(seg.dtype).tiny), torch.zeros_like(s))
    t = t.clamp(0, 1).unsqueeze(1)
    return a[idx] + t * (b[idx] - a[idx])


def outline_length(polylines) -> float:
    """Total arc length of ``polylines`` (a ``(P, 2)`` tensor or a list of them)."""
    return float(_segments(polylines)[2][-1])


def polyline_sample(polylines, num_points: int, *, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``num_points`` i.i.d. points, uniform by arc length over all ``polylines`` together.

    Each point picks an arc length ``s ~ U(0, total length)`` and is placed at that distance along the
    concatenated polylines, so a polyline receives points in proportion to its length. The draws run in
    float64 on the generator's device (CPU by default), so a seeded ``generator`` gives the same points on any
    ``device``.

    Args:
        polylines: a ``(P, 2)`` tensor or a list of ``(P_j, 2)`` tensors (closed ones repeat their first
            vertex).
        num_points: ``N``, at least 1.
        generator: optional ``torch.Generator``; default the global torch RNG.
        dtype, device: of the result.

    Returns:
        ``(N, 2)`` points in random order.

    Raises:
        ValueError: ``num_points < 1``, empty or degenerate polylines.

    Taught in chapter 1.
    """
    _checks.positive_int("num_points", num_points)
    a, b, cum = _segments(polylines)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(num_points, generator=generator, dtype=torch.float64, device=gen_device).cpu()
    return _at_arc_length(a, b, cum, u * cum[-1]).to(device=device, dtype=dtype)


def polyline_dense(polylines, num_points: int, *, dtype: torch.dtype = torch.float32,
                   device=None) -> torch.Tensor:
    """``num_points`` deterministic points evenly spaced by arc length, at ``(k + 1/2) / N`` of the length.

    Returns:
        ``(N, 2)`` points, ordered along the polylines.

    Taught in chapter 1.
    """
    _checks.positive_int("num_points", num_points)
    a, b, cum = _segments(polylines)
    s = (torch.arange(num_points, dtype=torch.float64) + 0.5) * (cum[-1] / num_points)
    return _at_arc_length(a, b, cum, s).to(device=device, dtype=dtype)


# ------------------------------------------------------------------------------------------------------------
# Public entry points by name
# ------------------------------------------------------------------------------------------------------------

def sample(name: str, num_points: int, *, generator: torch.Generator | None = None,
           dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Sample ``num_points`` points uniformly by arc length on the outline of shape ``name``.

    Args:
        name: a key of :data:`SHAPES` (``"circle"``, ``"square"``, ``"star"``, ``"heart"``, ``"spiral"``) or
            ``"glyph:<text>"`` (e.g. ``"glyph:A"``).
        num_points: ``N``, at least 1.
        generator: optional ``torch.Generator`` for reproducible draws; default the global torch RNG.
        dtype, device: of the result.

    Returns:
        ``(N, 2)`` points in ``[-1, 1]^2``, in random order.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names), ``num_points < 1``, empty glyph
            text.

    Taught in chapter 1.
    """
    _checks.positive_int("num_points", num_points)
    return polyline_sample(outline(name), num_points, generator=generator, dtype=dtype, device=device)


def dense(name: str, num_points: int = 20000, *, dtype: torch.dtype = torch.float32,
          device=None) -> torch.Tensor:
    """Deterministic, evenly spaced points along the outline of shape ``name`` (a reference for distances).

    Args:
        name: as in :func:`sample`.
        num_points: ``N`` (default 20000).

    Returns:
        ``(N, 2)`` points ordered along the outline.

    Taught in chapter 1.
    """
    _checks.positive_int("num_points", num_points)
    return polyline_dense(outline(name), num_points, dtype=dtype, device=device)
