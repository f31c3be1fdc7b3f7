"""Pictures of fields and point clouds: stream and quiver plots, scatter, animations, a sigma slider.

Model-agnostic: every field plot takes a score callable ``score_fn(x, sigma)`` (``x`` ``(1, M, 2)``,
``sigma`` ``(1,)``, returning ``(1, M, 2)``), so the closed-form field of :mod:`gfcore.fields` and a trained
network are drawn by the same code. Functions draw into an ``ax`` they are given and return the artists;
nothing here calls ``plt.show()``. Animations are matplotlib ``FuncAnimation`` objects; :func:`to_html` turns
one into a JavaScript player that works in the static book.

Sections: 2D fields, 2D points and axes, animations, widgets, training curves. 3D renders (pyvista) live in
:mod:`gfcore.viz3d`; importing this module never imports pyvista.

Taught in chapter 1 (Shapes as distributions) and used by every chapter after it.
"""
from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from gfcore import _checks, fields

__all__ = ["DEFAULT_EXTENT", "FIELD_KINDS", "grid", "evaluate_field", "plot_field", "plot_points",
           "setup_axes", "animate_trajectory", "animate_sigma", "to_html", "field_sigma_slider", "loss_curve"]

DEFAULT_EXTENT = (-1.5, 1.5, -1.5, 1.5)
"""``(xmin, xmax, ymin, ymax)``: the box of the official uniform prior (``[-1.5, 1.5]^2``)."""
FIELD_KINDS = ("stream", "quiver")
MAX_FRAMES = 60
_TINY = 1e-12


def _extent(extent) -> tuple[float, float, float, float]:
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in extent)
    except (TypeError, ValueError):
        raise ValueError(f"extent must be (xmin, xmax, ymin, ymax), got {extent!r}") from None
    if not (xmin < xmax and ymin < ymax) or not all(map(math.isfinite, (xmin, xmax, ymin, ymax))):
        raise ValueError(f"extent must be finite with xmin < xmax and ymin < ymax, got {extent!r}")
    return xmin, xmax, ymin, ymax


# ------------------------------------------------------------------------------------------------------------
# 2D fields
# ------------------------------------------------------------------------------------------------------------

def grid(extent=DEFAULT_EXTENT, resolution: int = 25, *, device=None, dtype: torch.dtype = torch.float32):
    """A regular ``K x K`` grid of query points over ``extent``, for field plots.

    Args:
        extent: ``(xmin, xmax, ymin, ymax)``.
        resolution: ``K``, points per side (at least 2).

    Returns:
        ``(x, xx, yy)``: ``x`` the ``(K*K, 2)`` query tensor on ``device``, and ``xx``, ``yy`` the ``(K, K)``
        numpy meshgrid (``indexing="xy"``: rows run along y) with ``x[i * K + j] == (xx[i, j], yy[i, j])``,
        so a ``(K*K,)`` value reshapes to ``(K, K)`` for ``contourf(xx, yy, value)``.

    Taught in chapter 1.
    """
    xmin, xmax, ymin, ymax = _extent(extent)
    _checks.positive_int("resolution", resolution)
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    xs = np.linspace(xmin, xmax, resolution)
    ys = np.linspace(ymin, ymax, resolution)
    xx, yy = np.meshgrid(xs, ys, indexing="xy")
    x = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], axis=1), dtype=dtype, device=device)
    return x, xx, yy


@torch.no_grad()
def evaluate_field(score_fn, x: torch.Tensor, sigma=None) -> np.ndarray:
    """Evaluate ``score_fn`` at the ``(M, 2)`` queries ``x`` in one batch; return the ``(M, 2)`` field.

    ``score_fn`` is called as ``score_fn(x[None], sigma_b)`` with ``sigma_b`` a ``(1,)`` tensor (or ``None``
    when ``sigma`` is ``None``, for callables that fix their own sigma) and must return ``(1, M, 2)``
    (``(M, 2)`` is accepted too). Runs under ``torch.no_grad()``.

    Raises:
        ValueError: a result of the wrong shape or with NaN/inf.

    Taught in chapter 1.
    """
    m = x.shape[0]
    sigma_b = None
    if sigma is not None:
        _checks.positive("sigma", sigma)
        sigma_b = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1)
        if sigma_b.numel() != 1:
            raise ValueError(f"sigma must be one number for a field plot, got {sigma_b.numel()} values")
    out = score_fn(x.unsqueeze(0), sigma_b)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"score_fn must return a tensor, got {type(out).__name__}")
    if tuple(out.shape) not in ((1, m, 2), (m, 2)):
        raise ValueError(f"score_fn returned shape {tuple(out.shape)}, expected (1, {m}, 2)")
    _checks.finite("score_fn(x, sigma)", out)
    return out.reshape(m, 2).detach().cpu().double().numpy()


def plot_field(ax, score_fn, *, extent=DEFAULT_EXTENT, resolution: int = 25, sigma=None, kind: str = "stream",
               normalize: bool = True, color_by_magnitude: bool = True, colorbar: bool = False,
               cmap: str = "viridis", color="0.3", density: float = 1.2, linewidth: float = 0.8,
               device=None, dtype: torch.dtype = torch.float32, **kwargs):
    """Draw the 2D vector field ``score_fn(x, sigma)`` on a ``K x K`` grid as streamlines or arrows.

    The score ``grad log p_sigma`` (ShapeGF Eq. 3) grows like ``1 / sigma^2`` near the shape, so arrows are
    drawn with unit length (``normalize``) and the magnitude is shown by colour, on a ``log10`` scale.

    Args:
        ax: a matplotlib ``Axes``.
        score_fn: ``(x (1, M, 2), sigma (1,) or None) -> (1, M, 2)``; a closed-form lambda or a network.
        extent: ``(xmin, xmax, ymin, ymax)`` of the grid.
        resolution: ``K``.
        sigma: the noise level passed to ``score_fn`` (as a ``(1,)`` tensor); ``None`` passes ``None``.
        kind: ``"stream"`` (``ax.streamplot``) or ``"quiver"`` (``ax.quiver``).
        normalize: quiver only: draw unit arrows, 0.8 of a grid cell long (streamlines show direction only).
        color_by_magnitude: colour by ``log10 |score|`` with ``cmap``; else use ``color``.
        colorbar: add a colorbar labelled ``log10 |score|`` (needs ``color_by_magnitude``).
        density, linewidth: streamplot options; other ``kwargs`` go to ``streamplot`` / ``quiver``.
        device, dtype: of the grid handed to ``score_fn`` (put it where the network lives).

    Returns:
        the ``StreamplotSet`` (``kind="stream"``) or ``Quiver`` (``kind="quiver"``).

    Raises:
        ValueError: unknown ``kind``, bad ``extent``/``resolution``/``sigma``, or a malformed ``score_fn``
            result.

    Taught in chapter 1.
    """
    _checks.choice("kind", kind, FIELD_KINDS)
    x, xx, yy = grid(extent, resolution, device=device, dtype=dtype)
    field = evaluate_field(score_fn, x, sigma)
    k = resolution
    u, v = field[:, 0].reshape(k, k), field[:, 1].reshape(k, k)
    mag = np.hypot(u, v)
    logmag = np.log10(np.maximum(mag, _TINY))
    if kind == "stream":
        style = {"cmap": cmap, "color": logmag} if color_by_magnitude else {"color": color}
        artist = ax.streamplot(xx, yy, u, v, density=density, linewidth=linewidth, arrowsize=0.8,
                               **{**style, **kwargs})
        mappable = artist.lines
    else:
        if normalize:
            scale = np.maximum(mag, _TINY)
            u, v = u / scale, v / scale
        opts = {"angles": "xy", "pivot": "mid"}
        if normalize:  # unit arrows drawn 0.8 of a grid cell long
            cell = min(xx[0, 1] - xx[0, 0], yy[1, 0] - yy[0, 0])
            opts.update(scale_units="xy", scale=1.0 / (0.8 * cell), width=0.004)
        if color_by_magnitude:
            artist = ax.quiver(xx, yy, u, v, logmag, cmap=cmap, **{**opts, **kwargs})
        else:
            artist = ax.quiver(xx, yy, u, v, color=color, **{**opts, **kwargs})
        mappable = artist
    if colorbar and color_by_magnitude:
        ax.figure.colorbar(mappable, ax=ax, label=r"$\log_{10}\,|\nabla_x \log p_\sigma(x)|$", shrink=0.8)
    setup_axes(ax, extent)
    return artist


# ------------------------------------------------------------------------------------------------------------
# 2D points and axes
# ------------------------------------------------------------------------------------------------------------

def plot_points(ax, points, *, s: float = 2, color="C3", alpha: float = 0.8, label: str | None = None,
                **kwargs):
    """Scatter an ``(N, 2)`` point cloud (tensor on any device, with or without grad, or a numpy array).

    Returns:
        the ``PathCollection``.

    Taught in chapter 1.
    """
    p = _checks.numpy_points("points", points)
    kwargs.setdefault("linewidths", 0 if kwargs.get("marker", "o") in ("o", ".") else None)
    return ax.scatter(p[:, 0], p[:, 1], s=s, color=color, alpha=alpha, label=label, **kwargs)


def setup_axes(ax, extent=DEFAULT_EXTENT, title: str | None = None):
    """Square, tick-free axes over ``extent`` (``(xmin, xmax, ymin, ymax)``), with an optional title.

    Returns:
        ``ax``.

    Taught in chapter 1.
    """
    xmin, xmax, ymin, ymax = _extent(extent)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return ax


# ------------------------------------------------------------------------------------------------------------
# Animations
# ------------------------------------------------------------------------------------------------------------

def _points_and_sigmas(points, sigmas, kind: str) -> tuple[torch.Tensor, list[float]]:
    """Validate the inputs of the sigma sweeps: ``(N, 2)`` points, positive sigmas, a field kind."""
    pts = torch.as_tensor(_checks.numpy_points("points", points))
    sig = [float(v) for v in torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)]
    if not sig:
        raise ValueError("sigmas is empty")
    _checks.positive("sigmas", torch.tensor(sig))
    _checks.choice("kind", kind, FIELD_KINDS)
    return pts, sig


def _frame_indices(total: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` evenly spaced indices in ``range(total)``, always the first and the last."""
    _checks.positive_int("max_frames", max_frames)
    if total <= max_frames:
        return list(range(total))
    if max_frames == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (max_frames - 1)) for i in range(max_frames)})


def animate_trajectory(trajectory, *, points=None, extent=DEFAULT_EXTENT, interval: int = 50,
                       max_frames: int = MAX_FRAMES, title_fn=None, s: float = 3, color="C0",
                       figsize=(4, 4), dpi: int = 80) -> animation.FuncAnimation:
    """Animate a point trajectory ``(T, M, 2)``, e.g. Langevin iterates, over an optional reference shape.

    Frames are subsampled evenly to at most ``max_frames`` (first and last kept), which bounds the size of the
    HTML player made by :func:`to_html`.

    Args:
        trajectory: ``(T, M, 2)``; for the ``(T, B, M, 2)`` trajectory of ``annealed_langevin`` pass
            ``trajectory[:, b]``.
        points: optional ``(N, 2)`` reference points drawn faintly behind.
        extent: ``(xmin, xmax, ymin, ymax)``.
        interval: milliseconds between frames.
        max_frames: cap on the number of frames.
        title_fn: ``t -> str``, called with the trajectory index ``t`` of each frame (default ``"step t"``).
        s, color: of the moving points.

    Returns:
        a ``FuncAnimation`` with its own figure; show it with ``to_html(anim)``.

    Taught in chapter 3.
    """
    traj = trajectory
    if isinstance(traj, torch.Tensor) and traj.dim() == 4:
        raise ValueError(f"trajectory must be (T, M, 2), got shape {tuple(traj.shape)}; "
                         "for a batched (T, B, M, 2) trajectory pass trajectory[:, b]")
    traj = _checks.numpy_points("trajectory", traj, ndims=(3,))
    _checks.positive_int("interval", interval)
    frames = _frame_indices(traj.shape[0], max_frames)
    title_fn = title_fn if title_fn is not None else (lambda t: f"step {t}")
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    setup_axes(ax, extent)
    if points is not None:
        plot_points(ax, points, s=1, color="0.6", alpha=0.4)
    scat = ax.scatter(traj[0, :, 0], traj[0, :, 1], s=s, color=color, linewidths=0)
    title = ax.set_title(title_fn(frames[0]))
    fig.tight_layout()

    def update(t):
        scat.set_offsets(traj[t])
        title.set_text(title_fn(t))
        return scat, title

    return animation.FuncAnimation(fig, update, frames=frames, interval=interval, blit=False)


def animate_sigma(points, sigmas, *, extent=DEFAULT_EXTENT, resolution: int = 25, kind: str = "stream",
                  interval: int = 600, figsize=(4, 4), dpi: int = 80) -> animation.FuncAnimation:
    """Animate the closed-form field of ``points`` as ``sigma`` runs through ``sigmas`` (the static slider).

    Each frame draws :func:`gfcore.fields.smoothed_score` at one ``sigma`` (ShapeGF Eq. 3) with
    :func:`plot_field` over the points.

    Args:
        points: ``(N, 2)`` points on the shape.
        sigmas: a sequence or ``(L,)`` tensor of positive noise levels, one frame each (capped at 60 frames).
        extent, resolution, kind: as in :func:`plot_field`.
        interval: milliseconds between frames.

    Returns:
        a ``FuncAnimation``; show it with ``to_html(anim)``.

    Taught in chapter 1.
    """

    pts, sig = _points_and_sigmas(points, sigmas, kind)
    sig = [sig[i] for i in _frame_indices(len(sig), MAX_FRAMES)]
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)

    def update(i):
        ax.clear()
        plot_field(ax, lambda x, _s: fields.smoothed_score(x, pts, sig[i]), extent=extent,
                   resolution=resolution, kind=kind, dtype=torch.float64)
        plot_points(ax, pts, s=1, color="C3", alpha=0.6)
        setup_axes(ax, extent, rf"$\sigma$ = {sig[i]:.3g}")
        return []

    update(0)
    fig.tight_layout()
    return animation.FuncAnimation(fig, update, frames=len(sig), interval=interval, blit=False)


def to_html(anim: animation.Animation, *, default_mode: str = "loop", close: bool = True):
    """Wrap ``anim`` as an ``IPython.display.HTML`` JavaScript player (``anim.to_jshtml()``) for the book.

    Closes the animation's figure (``close=True``) so the notebook does not also show a static copy of it. The
    player works offline: matplotlib's link to a Font Awesome stylesheet on a CDN is dropped (the book's theme
    ships Font Awesome, which draws the player's buttons; Jupyter and Colab load it themselves).

    Args:
        default_mode: the player's start mode, ``"loop"``, ``"once"`` or ``"reflect"``.
        close: close the animation's figure.

    Returns:
        ``IPython.display.HTML`` with no request leaving the machine.

    Taught in chapter 1.
    """
    from IPython.display import HTML

    _checks.choice("default_mode", default_mode, ("loop", "once", "reflect"))
    html = re.sub(r"<link[^>]*font-awesome[^>]*>\s*", "", anim.to_jshtml(default_mode=default_mode))
    if close:
        plt.close(anim._fig)
    return HTML(html)


# ------------------------------------------------------------------------------------------------------------
# Widgets (live notebooks; the static book shows animate_sigma instead)
# ------------------------------------------------------------------------------------------------------------

def field_sigma_slider(points, sigmas, *, extent=DEFAULT_EXTENT, resolution: int = 25, kind: str = "stream",
                       figsize=(4, 4)):
    """An ``ipywidgets.interactive`` slider over ``sigmas`` redrawing the closed-form field of ``points``.

    Args:
        points: ``(N, 2)`` points on the shape.
        sigmas: a sequence or ``(L,)`` tensor of positive noise levels, the slider's stops.
        extent, resolution, kind: as in :func:`plot_field`.

    Returns:
        the ``ipywidgets.interactive`` widget (display it, or make it the last expression of a cell).

    Taught in chapter 1.
    """
    import ipywidgets
    from IPython.display import display


    pts, sig = _points_and_sigmas(points, sigmas, kind)

    def draw(sigma):
        fig, ax = plt.subplots(figsize=figsize)
        plot_field(ax, lambda x, _s: fields.smoothed_score(x, pts, sigma), extent=extent,
                   resolution=resolution, kind=kind, dtype=torch.float64, colorbar=True)
        plot_points(ax, pts, s=1, color="C3", alpha=0.6)
        setup_axes(ax, extent, rf"$\sigma$ = {sigma:.3g}")
        display(fig)
        plt.close(fig)

    slider = ipywidgets.SelectionSlider(options=[(f"{v:.3g}", v) for v in sig], value=sig[len(sig) // 2],
                                        description="sigma", continuous_update=False)
    return ipywidgets.interactive(draw, sigma=slider)


# ------------------------------------------------------------------------------------------------------------
# Training curves
# ------------------------------------------------------------------------------------------------------------

def loss_curve(ax, losses, *, smooth: int = 50, label: str | None = None, color="C0"):
    """Plot raw losses (faint) and their moving average over ``smooth`` steps, on a log y-scale when all > 0.

    Args:
        losses: a sequence, numpy array or tensor of per-step losses ``(T,)``.
        smooth: moving-average window (clipped to ``T``); 1 draws only the raw curve.

    Returns:
        the list of ``Line2D`` drawn (raw, then smoothed when ``smooth > 1``).

    Taught in chapter 2.
    """
    if isinstance(losses, torch.Tensor):
        losses = losses.detach().cpu()
    values = np.asarray(losses, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("losses is empty")
    _checks.positive_int("smooth", smooth)
    steps = np.arange(values.size)
    lines = ax.plot(steps, values, color=color, alpha=0.3 if smooth > 1 else 1.0, lw=0.8,
                    label=None if smooth > 1 else label)
    window = min(smooth, values.size)
    if window > 1:
        avg = np.convolve(values, np.ones(window) / window, mode="valid")
        lines += ax.plot(steps[window - 1:], avg, color=color, lw=1.5, label=label)
    if np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return lines
