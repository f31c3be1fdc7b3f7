"""Figure of annealing: the same points under a ladder of sigmas, moved by Langevin dynamics from coarse to fine.

Drawn from data, not by hand: each panel is the real smoothed density of a 2D point set
(:func:`gfcore.fields.smoothed_log_density`) at one level of the ladder, and the dots and arrows are a few samples
of :func:`gfcore.sampling.annealed_langevin` run on the closed-form field (:func:`gfcore.fields.smoothed_score`),
shown where each level starts and ends.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.colors import LinearSegmentedColormap

from gfcore import fields, sampling
from gfcore.diagrams import _draw

__all__ = ["draw_annealing"]

_BOUND = 1.5    # the panels show the official prior's box [-1.5, 1.5]^2
_PANEL = 3.0    # panel side, in canvas units
_GAP = 1.1      # space between panels, for the arrows
_BASE = 0.9     # room under the panels for their labels
_NATS = 8.0     # the shading spans the top 8 nats of each panel's log-density
_MARGIN = 0.1   # left and right of the row, so that the outer frames are not clipped


def _ladder(sigmas) -> torch.Tensor:
    ladder = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    if ladder.numel() < 2:
        raise ValueError(f"sigmas must hold at least 2 levels, got {ladder.tolist()}")
    if not torch.isfinite(ladder).all() or (ladder <= 0).any() or (ladder[1:] >= ladder[:-1]).any():
        raise ValueError(f"sigmas must be positive and strictly decreasing, got {ladder.tolist()}")
    return ladder


def _to_panel(xy: np.ndarray, i: int) -> np.ndarray:
    """World coordinates in [-1.5, 1.5]^2 -> canvas coordinates of panel i."""
    origin = np.array([_MARGIN + i * (_PANEL + _GAP), _BASE])
    return origin + (np.clip(xy, -_BOUND, _BOUND) + _BOUND) / (2 * _BOUND) * _PANEL


@torch.no_grad()
def draw_annealing(points=None, *, sigmas=(1.0, 0.3, 0.1, 0.03), num_samples: int = 14, steps_per_sigma: int = 10,
                   resolution: int = 100, seed: int = 0, ax=None):
    """Draw annealed Langevin dynamics as a row of panels, one per noise level ``sigma_i`` (coarse to fine).

    Panel ``i`` shows the log-density of the shape smoothed at ``sigma_i`` (ShapeGF Eq. 2; purple at the panel's
    maximum, fading to white 8 nats below it), and where ``num_samples`` samples stand when the level starts
    (hollow circles) and when its ``steps_per_sigma`` Langevin steps end (dots), with an arrow for each. The
    samples start uniformly in ``[-1.5, 1.5]^2`` and run on the closed-form field of ``points``: at the first
    level they gather in the blob, at the last they sit on the outline.

    Args:
        points: ``(N, 2)`` the shape (a tensor on any device; default: 512 points of the star of
            :mod:`gfcore.data.shapes2d`, drawn with ``seed``).
        sigmas: the ladder, ``(L,)`` strictly decreasing, ``L >= 2``: one panel per level.
        num_samples: how many samples are drawn moving.
        steps_per_sigma: Langevin steps per level (the official step size, ``alpha_i = 2 sigma_i^2``).
        resolution: density grid points per side of a panel.
        seed: seeds the default shape, the prior and the Langevin noise (the same seed draws the same figure).
        ax: draw into this ``Axes``; ``None`` creates a figure.

    Returns:
        the matplotlib ``Figure``. The dots of panel ``i`` are the scatter with gid ``"samples-i"`` (canvas
        coordinates; the world point ``(u, v)`` is at ``_to_panel``), its density image has gid ``"density-i"``.

    Raises:
        ValueError: ``points`` not ``(N, 2)``, a ladder that is not positive and decreasing, or a size below 1.

    Taught in chapter 3 (Annealed Langevin dynamics), Figure 3.1.
    """
    ladder = _ladder(sigmas)
    for name, value in (("num_samples", num_samples), ("steps_per_sigma", steps_per_sigma)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if int(resolution) != resolution or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    if points is None:
        from gfcore.data import shapes2d

        points = shapes2d.sample("star", 512, generator=torch.Generator().manual_seed(seed))
    if not isinstance(points, torch.Tensor):
        points = torch.as_tensor(np.asarray(points), dtype=torch.float32)
    if points.dim() != 2 or points.shape[1] != 2 or points.shape[0] == 0 or not points.is_floating_point():
        raise ValueError(f"points must be a floating (N, 2) tensor with N >= 1, got shape {tuple(points.shape)}")
    device, dtype = points.device, points.dtype
    ladder = ladder.to(device=device, dtype=dtype)
    levels = len(ladder)

    generator = torch.Generator(device=device).manual_seed(seed)
    x0 = sampling.prior("uniform", (1, int(num_samples), 2), bound=_BOUND, generator=generator, device=device,
                        dtype=dtype)
    _, trajectory = sampling.annealed_langevin(lambda x, s: fields.smoothed_score(x, points, s), x0, ladder,
                                               steps_per_sigma=int(steps_per_sigma), return_trajectory=True,
                                               generator=generator)
    marks = trajectory[:: int(steps_per_sigma), 0].cpu().double().numpy()  # (L + 1, M, 2): each level's start

    ticks = torch.linspace(-_BOUND, _BOUND, int(resolution), device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    cmap = LinearSegmentedColormap.from_list("annealing", ["white", _draw.COLORS["field"]])

    width = levels * _PANEL + (levels - 1) * _GAP + 2 * _MARGIN
    fig, ax = _draw.canvas(width, _PANEL + _BASE + 0.4, ax=ax)
    for i in range(levels):
        x_left = _MARGIN + i * (_PANEL + _GAP)
        log_density = fields.smoothed_log_density(grid, points, ladder[i]).reshape(int(resolution), -1)
        # log scale, the top _NATS nats: a thin ridge at small sigma stays visible
        shade = (1 + (log_density - log_density.max()) / _NATS).clamp_min(0).cpu().numpy()
        ax.imshow(shade, origin="lower", cmap=cmap, vmin=0.0, vmax=1.0, interpolation="bilinear", zorder=1,
                  extent=(x_left, x_left + _PANEL, _BASE, _BASE + _PANEL), gid=f"density-{i}")
        ax.add_patch(_frame(x_left))
        start, end = _to_panel(marks[i], i), _to_panel(marks[i + 1], i)
        ax.scatter(start[:, 0], start[:, 1], s=14, facecolors="none", edgecolors=_draw.COLORS["ink"],
                   linewidths=0.7, zorder=3, gid=f"starts-{i}")
        for a, b in zip(start, end):
            if np.hypot(*(b - a)) > 0.05:  # too short to draw as an arrow
                _draw.arrow(ax, a, b, color=_draw.COLORS["ink"], shrink=2.5, linewidth=0.6, head=6)
        ax.scatter(end[:, 0], end[:, 1], s=12, color=_draw.COLORS["data"], zorder=4, gid=f"samples-{i}")
        _draw.note(ax, (x_left + _PANEL / 2, _BASE - 0.3), rf"$\sigma_{{{i + 1}}} = {ladder[i].item():.3g}$",
                   fontsize=_draw.FONT["label"])
        if i + 1 < levels:
            y = _BASE + _PANEL / 2
            _draw.arrow(ax, (x_left + _PANEL + 0.1, y), (x_left + _PANEL + _GAP - 0.1, y),
                        label=r"$\sigma \downarrow$", offset=0.12)
    _draw.note(ax, (width / 2, _BASE + _PANEL + 0.25),
               f"{int(num_samples)} samples: where a level starts (circles) \u2192 {int(steps_per_sigma)} "
               f"Langevin steps \u2192 where it ends (dots)", fontsize=_draw.FONT["small"])
    return fig


def _frame(x_left: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x_left, _BASE), _PANEL, _PANEL, fill=False, edgecolor=_draw.COLORS["neutral"], linewidth=0.8,
                     zorder=2)
