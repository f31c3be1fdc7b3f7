"""Drawing primitives shared by the schematic figures: a canvas, labelled boxes, arrows, point-cloud glyphs.

Every diagram of :mod:`gfcore.diagrams` is built from these, so the figures share one look: boxes are rounded
rectangles filled with a light tint of a role colour (:data:`COLORS`), text uses the sizes of :data:`FONT`,
arrows are thin dark grey. Coordinates are those of a :func:`canvas`: data units with equal aspect, no ticks
and no frame, so a diagram is laid out in plain numbers (``box(ax, (2, 1), "encoder")``).

Each primitive draws into the ``ax`` it is given and returns what it drew (a :class:`Box`, the arrow patch, the
scatter), so tests and callers can read the labels back from the artists.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["COLORS", "FONT", "Box", "canvas", "box", "arrow", "cloud", "note"]

COLORS = {
    "data": "#4C72B0",      # point clouds, inputs, outputs
    "network": "#DD8452",   # learned modules (encoder, decoder, generator, critic)
    "latent": "#55A868",    # codes z, latent noise
    "field": "#8172B3",     # gradient fields, sigma, Langevin dynamics
    "neutral": "#8C8C8C",   # everything else (operations, losses)
    "ink": "#333333",       # text, arrows and box edges
}
"""Role colours (the seaborn "deep" palette, readable in print and by most colour-blind readers)."""

FONT = {"label": 10, "small": 8, "title": 11}
"""Font sizes in points: box labels, arrow labels and notes, panel titles."""

_SIDES = ("left", "right", "top", "bottom", "center")


def _color(color) -> str:
    """A role name of :data:`COLORS` or any matplotlib colour."""
    return COLORS.get(color, color) if isinstance(color, str) else color


def _point(name: str, value) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a point (x, y), got {value!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return x, y


def _positive(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return value


@dataclass(frozen=True)
class Box:
    """A labelled box drawn by :func:`box`: its centre ``(x, y)``, size, and the artists.

    ``left``, ``right``, ``top``, ``bottom`` are the midpoints of its sides, where arrows attach.
    """

    x: float
    y: float
    width: float
    height: float
    patch: FancyBboxPatch
    text: plt.Text

    @property
    def center(self) -> tuple[float, float]:
        return (self.x, self.y)

    @property
    def left(self) -> tuple[float, float]:
        return (self.x - self.width / 2, self.y)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.width / 2, self.y)

    @property
    def top(self) -> tuple[float, float]:
        return (self.x, self.y + self.height / 2)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x, self.y - self.height / 2)

    def side(self, name: str) -> tuple[float, float]:
        """The point ``"left"``, ``"right"``, ``"top"``, ``"bottom"`` or ``"center"`` of the box."""
        if name not in _SIDES:
            raise ValueError(f"side must be one of {_SIDES}, got {name!r}")
        return getattr(self, name)


def canvas(width: float, height: float, *, ax=None, figsize: tuple[float, float] | None = None):
    """Axes for a diagram: data units ``[0, width] x [0, height]``, equal aspect, no ticks, no frame.

    Args:
        width, height: the extent of the drawing, in data units.
        ax: draw into this ``Axes`` (its limits and look are set); ``None`` creates a figure.
        figsize: inches, when a figure is created; default ``(width, height)`` scaled to 7 inches wide at most.

    Returns:
        ``(fig, ax)``.

    Raises:
        ValueError: a size that is not positive.

    Used by every diagram of :mod:`gfcore.diagrams` (chapter 3 draws the first).
    """
    width, height = _positive("width", width), _positive("height", height)
    if ax is None:
        if figsize is None:
            scale = min(1.0, 7.0 / width)
            figsize = (width * scale, height * scale)
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig, ax


def box(ax, xy, label: str, *, width: float = 1.6, height: float = 0.7, color="neutral", fontsize=None) -> Box:
    """A rounded box centred at ``xy`` with ``label`` in it, tinted with ``color``.

    Args:
        ax: the ``Axes`` (from :func:`canvas`).
        xy: the centre ``(x, y)`` in data units.
        label: the text (may hold ``\\n`` and matplotlib mathtext such as ``r"$\\sigma$"``).
        width, height: the box size in data units.
        color: a role of :data:`COLORS` (``"data"``, ``"network"``, ``"latent"``, ``"field"``, ``"neutral"``) or
            any matplotlib colour; the fill is a light tint of it, the edge the colour itself.
        fontsize: default ``FONT["label"]``.

    Returns:
        the :class:`Box` (its side midpoints are where :func:`arrow` attaches).

    Raises:
        ValueError: a bad ``xy``, ``width`` or ``height``.

    Used by every diagram of :mod:`gfcore.diagrams`.
    """
    x, y = _point("xy", xy)
    width, height = _positive("width", width), _positive("height", height)
    edge = _color(color)
    pad = 0.08 * min(width, height)
    patch = FancyBboxPatch((x - width / 2 + pad, y - height / 2 + pad), width - 2 * pad, height - 2 * pad,
                           boxstyle=f"round,pad={pad}", facecolor=(*to_rgb(edge), 0.18), edgecolor=edge,
                           linewidth=1.2, zorder=2)
    ax.add_patch(patch)
    text = ax.text(x, y, label, ha="center", va="center", fontsize=fontsize or FONT["label"],
                   color=COLORS["ink"], zorder=3)
    return Box(x, y, width, height, patch, text)


def arrow(ax, start, end, *, label: str | None = None, color="ink", curve: float = 0.0, offset: float = 0.15,
          fontsize=None, linestyle: str = "-", shrink: float = 2.0, linewidth: float = 1.2,
          head: float = 12.0) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end`` (points or :class:`Box` sides), with an optional label beside it.

    Args:
        ax: the ``Axes``.
        start, end: ``(x, y)`` in data units (e.g. ``a.right`` and ``b.left`` of two boxes).
        label: text placed at the middle of the arrow, ``offset`` data units to its left (above a left-to-right
            arrow).
        color: a role of :data:`COLORS` or a matplotlib colour.
        curve: bend, as matplotlib's ``arc3`` radius (0: straight; positive bends to the right of travel).
        offset: distance of the label from the arrow, in data units.
        fontsize: default ``FONT["small"]``.
        linestyle: ``"-"``, ``"--"``, ...
        shrink: gap in points left at both ends.
        linewidth: line width in points.
        head: arrow head size (matplotlib's ``mutation_scale``).

    Returns:
        the ``FancyArrowPatch``; its label (if any) is a text artist of ``ax``.

    Raises:
        ValueError: a bad ``start`` or ``end``, or ``start == end``.

    Used by every diagram of :mod:`gfcore.diagrams`.
    """
    (x0, y0), (x1, y1) = _point("start", start), _point("end", end)
    if (x0, y0) == (x1, y1):
        raise ValueError(f"start and end are the same point {start!r}")
    ink = _color(color)
    patch = FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=head, color=ink, linewidth=linewidth,
                            linestyle=linestyle, connectionstyle=f"arc3,rad={float(curve)}", shrinkA=shrink,
                            shrinkB=shrink, zorder=4)
    ax.add_patch(patch)
    if label is not None:
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        nx, ny = -dy / length, dx / length  # unit normal, to the left of travel
        # arc3 moves the curve's midpoint by curve * length / 2 to the right of travel; the label goes on the
        # outer side of the bend (the left for a straight arrow)
        bend = -float(curve) * length / 2
        shift = bend + offset if bend >= 0 else bend - offset
        mx, my = (x0 + x1) / 2 + nx * shift, (y0 + y1) / 2 + ny * shift
        nx, ny = (nx, ny) if shift >= 0 else (-nx, -ny)
        ha = "center" if abs(nx) < 0.5 else ("right" if nx < 0 else "left")
        va = "center" if abs(ny) < 0.5 else ("top" if ny < 0 else "bottom")
        ax.text(mx, my, label, ha=ha, va=va, fontsize=fontsize or FONT["small"], color=COLORS["ink"], zorder=5)
    return patch


def cloud(ax, center, *, points=None, radius: float = 0.4, num_points: int = 60, color="data", size: float = 4.0,
          seed: int = 0):
    """A small point-cloud glyph: ``points`` scaled into a disc of ``radius`` around ``center``.

    Args:
        ax: the ``Axes``.
        center: ``(x, y)`` in data units.
        points: an ``(N, 2)`` array (numpy or tensor, any scale; it is centred and scaled so its farthest point
            lies at ``radius``); default: ``num_points`` noisy points on a circle, from a seeded generator.
        radius: the glyph's radius in data units.
        num_points: how many points the default glyph has.
        color: a role of :data:`COLORS` or a matplotlib colour.
        size: marker area in points^2.
        seed: the default glyph's seed (the same seed draws the same glyph).

    Returns:
        the ``PathCollection`` of the scatter (its offsets are the drawn positions).

    Raises:
        ValueError: a bad ``center`` or ``radius``, ``points`` that are not ``(N, 2)`` with ``N >= 1`` finite
            values, or ``num_points < 1``.

    Used by the diagrams of :mod:`gfcore.diagrams` wherever a shape is an input or an output.
    """
    cx, cy = _point("center", center)
    radius = _positive("radius", radius)
    if points is None:
        if int(num_points) != num_points or num_points < 1:
            raise ValueError(f"num_points must be a positive integer, got {num_points!r}")
        rng = np.random.default_rng(seed)
        angle = rng.uniform(0.0, 2.0 * np.pi, int(num_points))
        r = 1.0 + 0.06 * rng.standard_normal(int(num_points))
        pts = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    else:
        if hasattr(points, "detach"):
            points = points.detach().cpu().numpy()
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
            raise ValueError(f"points must be (N, 2) with N >= 1, got shape {pts.shape}")
        if not np.isfinite(pts).all():
            raise ValueError("points contains NaN or inf")
    pts = pts - pts.mean(axis=0)
    extent = np.sqrt((pts ** 2).sum(axis=1)).max()
    if extent > 0:
        pts = pts / extent
    pts = pts * radius + np.array([cx, cy])
    return ax.scatter(pts[:, 0], pts[:, 1], s=size, color=_color(color), linewidths=0, zorder=3)


def note(ax, xy, text: str, *, fontsize=None, ha: str = "center", va: str = "center", color="ink", **kwargs):
    """Free text at ``xy`` in the diagrams' font and ink (captions, panel titles, equations).

    Returns:
        the ``Text`` artist.

    Used by the diagrams of :mod:`gfcore.diagrams`.
    """
    x, y = _point("xy", xy)
    return ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize or FONT["small"], color=_color(color), zorder=5,
                   **kwargs)
