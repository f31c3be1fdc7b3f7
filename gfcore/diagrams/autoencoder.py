"""Figure of ShapeGF's auto-encoder: cloud -> PointNet -> z; (x, sigma, z) -> decoder -> displacement.

The top row is the encoder: a point cloud ``X`` goes through the PointNet encoder ``E_phi`` (the same MLP on every
point, then a maximum over the points) to a code ``z``. The bottom row is the decoder: a query point ``x`` and a
noise level ``sigma``, with the code ``z`` from above, go through the conditional decoder ``D_theta``, which
returns the displacement ``sigma^2 * score`` that moves ``x`` toward the shape. The glyph on the right shows one
such displacement: a point off the shape and the arrow that brings it back.
"""
from __future__ import annotations

import numpy as np

from gfcore.diagrams import _draw

__all__ = ["draw_autoencoder"]


def _ring(num_points: int, rng: np.random.Generator) -> np.ndarray:
    """A thick ring (a "0" of ink) as points: the shape of the glyphs."""
    angle = rng.uniform(0.0, 2.0 * np.pi, num_points)
    radius = 1.0 + 0.08 * rng.standard_normal(num_points)
    return np.stack([0.75 * radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def draw_autoencoder(*, show_training: bool = True, ax=None, seed: int = 0):
    """Draw the auto-encoder (ShapeGF Sec. 3.4): the encoder's code ``z`` conditions the decoder's field.

    Args:
        show_training: also write, under the decoder, what it is trained on (noisy points, target ``-sigma eps``)
            and how sampling uses it (annealed Langevin).
        ax: draw into this ``Axes``; ``None`` creates a figure.
        seed: seed of the glyphs' random points (the same seed draws the same figure).

    Returns:
        the matplotlib ``Figure``.

    Taught in chapter 4 (Conditional fields in 2D).
    """
    width, height = 14.0, (5.4 if show_training else 4.6)
    fig, ax = _draw.canvas(width, height, ax=ax, figsize=(11.0, 11.0 * height / width))
    rng = np.random.default_rng(seed)
    top, bottom = height - 1.2, height - 3.4

    # encoder row: cloud -> PointNet -> z
    shape = _ring(90, rng)
    inp = _draw.cloud(ax, (0.9, top), points=shape, radius=0.55, color="data", size=4.0)
    _draw.note(ax, (0.9, top - 0.85), "point cloud $X$\n($N$ points)")
    enc = _draw.box(ax, (3.7, top), "PointNet encoder $E_\\phi$\nsame MLP on every point,\nmax over the points",
                    width=3.4, height=1.25, color="network")
    code = _draw.box(ax, (7.0, top), "code $z$", width=1.8, height=0.8, color="latent")
    _draw.arrow(ax, (inp.get_offsets()[:, 0].max() + 0.05, top), enc.left)
    _draw.arrow(ax, enc.right, code.left)
    _draw.note(ax, (width - 0.2, top + 0.25), "encoder: once per shape", ha="right", color="network",
               fontsize=_draw.FONT["label"])

    # decoder row: (x, sigma) and z -> decoder -> displacement
    x_box = _draw.box(ax, (1.0, bottom + 0.5), "query point $x$", width=1.9, height=0.65, color="data")
    s_box = _draw.box(ax, (1.0, bottom - 0.5), "noise level $\\sigma$", width=1.9, height=0.65, color="field")
    dec = _draw.box(ax, (5.6, bottom), "decoder $D_\\theta(x, \\sigma, z)$\n$c = [x, z, \\sigma]$ enters every "
                    "block\n(conditional batch norm or added)", width=4.3, height=1.45, color="network")
    out = _draw.box(ax, (9.9, bottom), "displacement\n$D_\\theta \\approx \\sigma^2\\, \\nabla_x "
                    "\\log p_\\sigma(x \\mid z)$", width=3.2, height=1.1, color="field")
    _draw.arrow(ax, x_box.right, (dec.left[0], bottom + 0.3))
    _draw.arrow(ax, s_box.right, (dec.left[0], bottom - 0.3))
    _draw.arrow(ax, code.bottom, (code.x, dec.top[1]), label="$z$", offset=0.12)
    _draw.arrow(ax, dec.right, out.left)
    _draw.note(ax, (width - 0.2, bottom + 1.05), "decoder: every point, every step", ha="right",
               color="network", fontsize=_draw.FONT["label"])

    # the glyph: the shape, a point off it, and the displacement that brings it back
    cx, cy = 12.9, bottom
    glyph = _draw.cloud(ax, (cx, cy), points=shape, radius=0.55, color="data", size=2.5)
    pts = glyph.get_offsets()
    x_off = np.array([cx + 0.95, cy + 0.55])
    target = pts[np.argmin(((pts - x_off) ** 2).sum(axis=1))]
    ax.scatter([x_off[0]], [x_off[1]], s=22, color=_draw.COLORS["field"], zorder=4)
    _draw.arrow(ax, tuple(x_off), tuple(target), color="field", shrink=1.0, head=9.0)
    _draw.note(ax, (cx, cy - 0.85), "$x$ moved by $D_\\theta$")
    _draw.arrow(ax, out.right, (cx - 0.75, cy))

    if show_training:
        _draw.note(ax, (4.6, 0.35), "training: $x = x_i + \\sigma\\epsilon$ for the points $x_i$ of $X$, "
                   "target $-\\sigma\\epsilon$ (denoising score matching)", fontsize=_draw.FONT["small"])
        _draw.note(ax, (11.4, 0.35), "sampling: annealed Langevin on $D_\\theta / \\sigma^2$",
                   fontsize=_draw.FONT["small"])
    return fig
