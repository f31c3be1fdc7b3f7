"""Printed characters as 2D point clouds: many classes, real variation in form, nothing to download.

Each item is one character drawn in one of matplotlib's bundled fonts (DejaVu Sans, DejaVu Serif, DejaVu Sans
Mono; regular, bold, italic/oblique), slightly rotated, sheared and stretched, with points sampled uniformly by
arc length along its outline (:func:`gfcore.data.shapes2d.polyline_sample`), as the shapes of chapters 1-3.
The character, font and distortion of item ``i`` follow from ``(seed, i)``, so the data set is the same on every
machine. A complement to :class:`~gfcore.data.Digits2D`: outlines instead of filled strokes, 36 classes
instead of 10.

Taught in chapter 4 (Conditional fields in 2D).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from gfcore import _checks
from gfcore.data import shapes2d
from gfcore.data.base import PointCloudDataset

DEFAULT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
FONTS = (("DejaVu Sans", "normal", "normal"), ("DejaVu Sans", "normal", "bold"),
         ("DejaVu Sans", "oblique", "normal"), ("DejaVu Serif", "normal", "normal"),
         ("DejaVu Serif", "normal", "bold"), ("DejaVu Serif", "italic", "normal"),
         ("DejaVu Sans Mono", "normal", "normal"), ("DejaVu Sans Mono", "normal", "bold"))
"""``(family, style, weight)`` of the fonts used; all ship with matplotlib."""
SPLIT_FRACTIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


@functools.lru_cache(maxsize=4096)
def _outline(char: str, font: int) -> tuple[np.ndarray, ...]:
    family, style, weight = FONTS[font]
    return tuple(p.numpy() for p in shapes2d.glyph(char, family=family, style=style, weight=weight,
                                                   resolution=1024))


def glyph_variant(char: str, font: int, rng: np.random.Generator, *, max_rotation: float = 10.0,
                  max_shear: float = 0.15, max_stretch: float = 0.15) -> list[torch.Tensor]:
    """The outline of ``char`` in font ``FONTS[font]`` under a random small rotation, shear and stretch.

    Returns:
        float64 polylines ``[(P_j, 2), ...]``, centred and fitting ``[-0.9, 0.9]^2`` like the other 2D shapes.

    Taught in chapter 4.
    """
    angle = math.radians(rng.uniform(-max_rotation, max_rotation))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-max_shear, max_shear)], [0.0, 1.0]])
    stretch = np.diag(np.exp(rng.uniform(-max_stretch, max_stretch, size=2)))
    a = rot @ shear @ stretch
    return shapes2d._fit([torch.from_numpy(p @ a.T) for p in _outline(char, font)])


class Glyphs2D(PointCloudDataset):
    """Characters in several bundled fonts with random small distortions, as 2D outline point clouds.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``: disjoint ranges of each class's variants (80/10/10).
        num_points: points per item ``N``.
        chars: the classes, one character each (default ``A-Z`` and ``0-9``).
        variants_per_char: items per class over all splits.
        normalize, stats, sample, pool, generator: as :class:`~gfcore.data.Digits2D`.
        cloud_size: points in each item's fixed cloud (train pool: the first two thirds; test pool: the rest).
        seed: fixes the fonts and distortions (what the data is; not the random draws).

    Items: ``{"points": (N, 2), "shift": (1, 2), "scale": (1, 1), "idx": int, "label": int}``, ``label`` the
    index of the character in ``chars``.

    Raises:
        ValueError: bad split or sizes, empty or repeated ``chars``, a character without an outline.

    Taught in chapter 4.
    """

    dim = 2

    def __init__(self, split: str = "train", num_points: int = 512, chars: str = DEFAULT_CHARS,
                 variants_per_char: int = 40, normalize: str = "shape_bbox", stats=None, sample: str = "auto",
                 pool: str = "auto", cloud_size: int = 3000, seed: int = 0,
                 generator: torch.Generator | None = None):
        if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars) or not chars.isprintable():
            raise ValueError(f"chars must be distinct printable characters, got {chars!r}")
        if " " in chars:
            raise ValueError("chars must not contain a space (it has no outline)")
        _checks.int_at_least("variants_per_char", variants_per_char, 10)   # so that every split has one
        _checks.int_at_least("cloud_size", cloud_size, 3)
        _checks.choice("split", split, SPLIT_FRACTIONS)
        lo, hi = SPLIT_FRACTIONS[split]
        variants = range(round(lo * variants_per_char), round(hi * variants_per_char))
        # items interleave the classes: item k is class k % C, so any prefix mixes all characters
        self.items = [(c, v) for v in variants for c in range(len(chars))]
        self.chars = chars
        self.variants_per_char = variants_per_char
        self._length = len(self.items)
        self._kwargs = dict(num_points=num_points, chars=chars, variants_per_char=variants_per_char,
                            sample=sample, pool=pool, cloud_size=cloud_size, seed=seed)
        n_train = (2 * cloud_size) // 3
        self._setup(split=split, num_points=num_points, normalize=normalize, stats=stats, sample=sample,
                    pool=pool, seed=seed, generator=generator, cloud_size=cloud_size,
                    pools={"train": slice(0, n_train), "test": slice(n_train, cloud_size)})

    def _variant(self, index: int):
        c, v = self.items[index]
        rng = np.random.default_rng([self.seed, c, v, ord(self.chars[c])])
        font = int(rng.integers(len(FONTS)))
        return c, font, rng

    def font(self, index: int) -> tuple[str, str, str]:
        """``(family, style, weight)`` of item ``index``."""
        return FONTS[self._variant(index)[1]]

    def _full_cloud(self, index):
        c, font, rng = self._variant(index)
        polylines = glyph_variant(self.chars[c], font, rng)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return shapes2d.polyline_sample(polylines, self.cloud_size, generator=gen, dtype=torch.float64).numpy()

    def _label(self, index):
        return self.items[index][0]

    def _train_split(self):
        return Glyphs2D(**{**self._kwargs, "split": "train", "normalize": "none"})

    def extra_repr(self):
        return f"chars={self.chars!r}, variants_per_char={self.variants_per_char}"
