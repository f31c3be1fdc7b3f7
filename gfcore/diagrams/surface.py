"""Figure of how an unsigned distance is read off a gradient field: ``u(x) = sigma^2 |s(x, sigma)|``.

Drawn from data, not by hand: the curve is a point set, and every arrow is the real closed-form displacement
``sigma^2 s(x, sigma)`` (:func:`gfcore.fields.smoothed_score`), from a query ``x`` to the kernel-weighted mean of
the points near it, which on a surface that is flat at the scale ``sigma`` is the foot of the perpendicular. Its
length is the unsigned distance. The second panel follows ``u`` along a line that crosses the curve: it tracks the
true distance, touches zero without changing sign, and a small level ``u = l`` is met twice, once on each side
(the double surface that marching cubes returns).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from gfcore import fields
from gfcore.diagrams import _draw

__all__ = ["draw_unsigned_distance"]

_X0, _X1 = -2.0, 2.0          # the curve's x range


def _curve(x: np.ndarray) -> np.ndarray:
    """The drawn surface: a gentle wave ``y = 0.3 sin(1.4 x)``."""
    return 0.3 * np.sin(1.4 * x)


def _displacement(queries: np.ndarray, points: torch.Tensor, sigma: float) -> np.ndarray:
    """``sigma^2 s(x, sigma)`` of the closed-form field at ``queries (M, 2)``, as numpy."""
    q = torch.as_tensor(queries, dtype=torch.float64)
    return (sigma ** 2 * fields.smoothed_score(q, points, sigma, method="direct")).numpy()


def draw_unsigned_distance(*, sigma: float = 0.12, level: float = 0.12, num_points: int = 400, ax=None):
    """Draw the unsigned distance read off the field: the displacement arrow to the surface, and ``u`` across it.

    Args:
        sigma: the field's width, in the drawing's units (the curve spans ``x`` in ``[-2, 2]``).
        level: the level ``l`` marked on the profile (marching cubes' ``u = l``).
        num_points: points sampled evenly along the curve.
        ax: draw only the first panel (the geometry) into this ``Axes``; ``None`` creates a figure with both.

    Returns:
        the matplotlib ``Figure``.

    Raises:
        ValueError: ``sigma`` or ``level`` not positive, ``num_points < 10``.

    Taught in chapter 8 (From gradients to surfaces).
    """
    sigma = _draw._positive("sigma", sigma)
    level = _draw._positive("level", level)
    if int(num_points) != num_points or num_points < 10:
        raise ValueError(f"num_points must be an integer >= 10, got {num_points!r}")
    xs = np.linspace(_X0, _X1, int(num_points))
    pts = np.stack([xs, _curve(xs)], axis=1)
    points = torch.as_tensor(pts, dtype=torch.float64)

    if ax is None:
        fig, (ax, ax_profile) = plt.subplots(1, 2, figsize=(11.0, 3.8), gridspec_kw={"width_ratios": [1.7, 1]})
    else:
        fig, ax_profile = ax.figure, None

    # -- panel 1: the geometry --------------------------------------------------------------------------------
    ax.set_xlim(_X0, _X1)
    ax.set_ylim(-1.0, 1.2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    query = np.array([[-0.35, 0.85]])
    d = _displacement(query, points, sigma)[0]
    foot = query[0] + d
    weights = np.exp(-((pts - query) ** 2).sum(1) / (2 * sigma ** 2) + ((pts - query) ** 2).sum(1).min()
                     / (2 * sigma ** 2))
    ax.scatter(pts[:, 0], pts[:, 1], s=3, color=_draw.COLORS["data"], zorder=2, label="points on the surface $S$")
    near = weights > 1e-3
    ax.scatter(pts[near, 0], pts[near, 1], s=4 + 40 * weights[near] / weights.max(), color=_draw.COLORS["field"],
               zorder=3, label=r"their kernel weights $w_i(x)$")
    # a few more displacements, as a field of arrows
    gx = np.array([-1.75, -1.25, 0.55, 1.05, 1.55])
    grid = np.concatenate([np.stack([gx, _curve(gx) + off], 1) for off in (-0.5, 0.38)])
    for q, v in zip(grid, _displacement(grid, points, sigma)):
        ax.annotate("", q + v, q, arrowprops=dict(arrowstyle="-|>", color=_draw.COLORS["neutral"], lw=0.8,
                                                  shrinkA=0, shrinkB=0), zorder=1)
    ax.annotate("", foot, query[0], arrowprops=dict(arrowstyle="-|>", color=_draw.COLORS["ink"], lw=1.6,
                                                    shrinkA=0, shrinkB=0), zorder=5)
    ax.scatter(*query[0], s=30, color=_draw.COLORS["ink"], zorder=6)
    ax.scatter(*foot, s=30, marker="x", color=_draw.COLORS["ink"], zorder=6)
    _draw.note(ax, (query[0, 0] + 0.08, query[0, 1] + 0.06), "$x$", ha="left", va="bottom",
               fontsize=_draw.FONT["label"])
    _draw.note(ax, (0.05, 1.16), "arrow: $\\sigma^2 s(x, \\sigma) = \\sum_i w_i(x)\\, x_i - x$\n"
               "its length: $u(x) \\approx$ dist$(x, S)$", ha="left", va="top", fontsize=_draw.FONT["label"])
    _draw.note(ax, (foot[0], foot[1] - 0.22), "weighted mean $\\approx$\nnearest surface point", va="top")
    ax.legend(fontsize=_draw.FONT["small"], loc="lower right", frameon=False)
    ax.set_title(f"the displacement $\\sigma^2 s$ points to the surface ($\\sigma$ = {sigma:g})",
                 fontsize=_draw.FONT["title"])

    # -- panel 2: u along a line across the surface -------------------------------------------------------------
    if ax_profile is not None:
        x_line = 0.9
        t = np.linspace(-0.6, 0.6, 241)
        line = np.stack([np.full_like(t, x_line), _curve(np.array([x_line]))[0] + t], axis=1)
        u = np.linalg.norm(_displacement(line, points, sigma), axis=1)
        dense = np.linspace(_X0, _X1, 4000)
        true = np.sqrt(((line[:, None] - np.stack([dense, _curve(dense)], 1)[None]) ** 2).sum(-1)).min(1)
        ax_profile.plot(t, true, color=_draw.COLORS["ink"], lw=1.2, label="distance to $S$")
        ax_profile.plot(t, u, color=_draw.COLORS["field"], lw=1.6, ls="--", label="$u = \\sigma^2 |s|$")
        ax_profile.axhline(level, color=_draw.COLORS["network"], lw=1.0, label=f"level $\\ell$ = {level:g}")
        crossings = t[np.nonzero(np.diff(np.sign(u - level)))[0]]
        ax_profile.scatter(crossings, np.full_like(crossings, level), color=_draw.COLORS["network"], zorder=3)
        _draw.note(ax_profile, (0.0, 0.3), "$u = \\ell$ on both sides:\nthe double surface", va="bottom")
        ax_profile.set_xlabel("position across the surface (0: on it)", fontsize=_draw.FONT["small"])
        ax_profile.set_ylim(0, 0.6)
        ax_profile.legend(fontsize=_draw.FONT["small"], loc="upper right", frameon=False)
        ax_profile.set_title("$u$ along a line across $S$", fontsize=_draw.FONT["title"])
        ax_profile.tick_params(labelsize=_draw.FONT["small"])
    return fig
