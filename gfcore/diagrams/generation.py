"""Figure of ShapeGF's two-stage generation: noise -> generator -> code z -> annealed Langevin -> points.

The top row is how a new shape is drawn: Gaussian noise ``n`` goes through the latent GAN's generator
``G_phi`` to a code ``z``, and the frozen decoder's field ``s_theta(x, sigma, z)`` moves points drawn from the
uniform prior onto the shape by annealed Langevin dynamics. The bottom row is what the generator learns from: the
frozen encoder's codes of the training shapes, which the critic ``D_psi`` tells apart from generated codes.
"""
from __future__ import annotations

import numpy as np

from gfcore.diagrams import _draw

__all__ = ["draw_generation"]


def _airplane(num_points: int, rng: np.random.Generator) -> np.ndarray:
    """An airplane seen from above, as points on five strokes (fuselage, two wings, tail): the output glyph."""
    strokes = [((-1.0, 0.0), (1.0, 0.0)),            # fuselage
               ((0.25, 0.0), (-0.15, 0.85)), ((0.25, 0.0), (-0.15, -0.85)),   # swept wings
               ((-0.8, 0.0), (-1.0, 0.35)), ((-0.8, 0.0), (-1.0, -0.35))]     # tail
    lengths = np.array([np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in strokes])
    which = rng.choice(len(strokes), size=num_points, p=lengths / lengths.sum())
    t = rng.uniform(0.0, 1.0, num_points)
    a = np.array([strokes[k][0] for k in which])
    b = np.array([strokes[k][1] for k in which])
    return a + t[:, None] * (b - a) + 0.02 * rng.standard_normal((num_points, 2))


def draw_generation(*, show_training: bool = True, ax=None, seed: int = 0):
    """Draw the two stages of generation (ShapeGF Sec. 3.5): a code from the latent GAN, points from Langevin.

    Args:
        show_training: also draw the bottom row (training shapes -> frozen encoder -> real codes -> critic), what
            the generator is trained against.
        ax: draw into this ``Axes``; ``None`` creates a figure.
        seed: seed of the glyphs' random points (the same seed draws the same figure).

    Returns:
        the matplotlib ``Figure``.

    Taught in chapter 7 (Generating new shapes).
    """
    width, height = 14.0, (5.2 if show_training else 3.2)
    fig, ax = _draw.canvas(width, height, ax=ax, figsize=(11.0, 11.0 * height / width))
    rng = np.random.default_rng(seed)
    y = height - 1.9                                   # the sampling row

    noise = _draw.cloud(ax, (0.8, y), points=rng.standard_normal((70, 2)), radius=0.45, color="latent")
    _draw.note(ax, (0.8, y - 0.8), r"noise $n \sim \mathcal{N}(0, I)$")
    gen = _draw.box(ax, (3.0, y), "generator\n$G_\\phi$", width=1.9, height=1.0, color="network")
    code = _draw.box(ax, (5.6, y), "code $z$\n(128 numbers)", width=2.2, height=1.0, color="latent")
    lang = _draw.box(ax, (9.0, y), "annealed Langevin on\n$s_\\theta(x, \\sigma, z)$, $\\sigma$: 1 $\\to$ 0.01",
                     width=3.4, height=1.0, color="field")
    out = _draw.cloud(ax, (12.9, y), points=_airplane(160, rng), radius=0.65, color="data", size=3.0)
    _draw.note(ax, (12.9, y - 0.8), "new shape (points)")
    _draw.arrow(ax, (noise.get_offsets()[:, 0].max() + 0.05, y), gen.left)
    _draw.arrow(ax, gen.right, code.left)
    _draw.arrow(ax, code.right, lang.left)
    _draw.arrow(ax, lang.right, (out.get_offsets()[:, 0].min() - 0.05, y))
    prior = _draw.cloud(ax, (9.0, y + 1.15), points=rng.uniform(-1.0, 1.0, (50, 2)), radius=0.32,
                        color="neutral", size=3.0)
    _draw.note(ax, (9.5, y + 1.15), "points from the uniform prior", ha="left")
    _draw.arrow(ax, (9.0, prior.get_offsets()[:, 1].min() - 0.02), lang.top)
    _draw.note(ax, (3.3, height - 0.25), "stage 2: the latent GAN (this chapter)", color="network",
               fontsize=_draw.FONT["label"])
    _draw.note(ax, (10.9, height - 0.25), "stage 1: the frozen auto-encoder's decoder", color="field",
               fontsize=_draw.FONT["label"])

    if show_training:
        yb = 0.75
        shapes = _draw.cloud(ax, (0.8, yb), points=_airplane(120, rng), radius=0.5, color="data", size=2.5)
        _draw.note(ax, (0.8, yb - 0.65), "training shapes")
        enc = _draw.box(ax, (3.0, yb), "encoder $E$\n(frozen)", width=1.9, height=0.9, color="network")
        real = _draw.box(ax, (5.6, yb), "real codes", width=2.2, height=0.9, color="latent")
        critic = _draw.box(ax, (8.3, yb), "critic $D_\\psi$", width=1.8, height=0.9, color="network")
        _draw.note(ax, (9.45, yb), "Wasserstein loss + zero-centred\npenalty on the real codes;\n"
                   "its scores train $G_\\phi$", ha="left")
        _draw.arrow(ax, (shapes.get_offsets()[:, 0].max() + 0.05, yb), enc.left)
        _draw.arrow(ax, enc.right, real.left)
        _draw.arrow(ax, real.right, critic.left)
        _draw.arrow(ax, code.bottom, (critic.top[0] - 0.3, critic.top[1]), label="generated codes", curve=0.25)
    return fig
