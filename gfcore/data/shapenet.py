"""ShapeNetCore.v2.PC15k (the PointFlow release), the data of the paper's ShapeNet experiments.

Layout: ``root/<synset>/<split>/<name>.npy``, each file a ``(15000, 3)`` cloud sampled from a ShapeNet mesh;
splits ``train``/``val``/``test``. Points 0..9,999 are the pool training points are drawn from, 10,000..14,999
the pool test points come from. Training draws ``num_points`` with replacement afresh on every access;
evaluation takes the first ``num_points`` of the pool (see ``gfcore.data.base``).

The shape list is the sorted file names of each requested category (categories in the order given), shuffled
once with a fixed seed (PointFlow's ``random.Random(38383)``), so item order does not depend on the file
system.

The data is not downloadable from here: get ``ShapeNetCore.v2.PC15k`` from the link in the PointFlow
repository README (github.com/stevenygd/PointFlow) and unpack it, e.g. to ``data/ShapeNetCore.v2.PC15k``.

Taught in chapter 10 (Reproducing the paper on ShapeNet).
"""
from __future__ import annotations

import os
import random
from collections.abc import Sequence

import numpy as np
import torch

from gfcore import _checks
from gfcore.data.base import PointCloudDataset

SYNSETS = {"airplane": "02691156", "chair": "03001627", "car": "02958343"}
CLOUD_SIZE = 15000
TRAIN_POOL = slice(0, 10000)
TEST_POOL = slice(10000, 15000)
SHUFFLE_SEED = 38383
WHERE_TO_GET = ("ShapeNetCore.v2.PC15k is the PointFlow release of ShapeNet point clouds: download it "
                "from the link in the PointFlow repository README (github.com/stevenygd/PointFlow), "
                "unpack it, and pass root=<the folder that holds the synset folders such as 02691156>")


def resolve_categories(root: str, categories: Sequence[str] | str) -> list[tuple[str, str]]:
    """``[(name, synset), ...]`` for ``categories`` (names from :data:`SYNSETS`, 8-digit synset ids, or
    ``"all"``).

    ``"all"`` means every synset folder under ``root`` (sorted).

    Raises:
        ValueError: an unknown category name, or ``"all"`` with no synset folders.
    """
    if isinstance(categories, str):
        categories = (categories,)
    categories = list(categories)
    if not categories:
        raise ValueError("categories must name at least one category")
    names = {v: k for k, v in SYNSETS.items()}
    if "all" in categories:
        if categories != ["all"]:
            raise ValueError(f"'all' cannot be combined with other categories, got {categories}")
        found = sorted(d for d in os.listdir(root)
                       if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
        if not found:
            raise ValueError(f"no synset folders under {root}. {WHERE_TO_GET}")
        return [(names.get(s, s), s) for s in found]
    out = []
    for c in categories:
        if c in SYNSETS:
            out.append((c, SYNSETS[c]))
        elif isinstance(c, str) and c.isdigit() and len(c) == 8:
            out.append((names.get(c, c), c))
        else:
            raise ValueError(f"unknown category {c!r}; valid: {sorted(SYNSETS)}, an 8-digit synset id, "
                             "or 'all'")
    return out


class ShapeNetPC15k(PointCloudDataset):
    """ShapeNetCore.v2.PC15k as a point-cloud dataset (see ``gfcore.data.base`` for the item contract).

    Args:
        root: the folder holding the synset folders (``root/02691156/train/*.npy``, ...).
        categories: names (``"airplane"``, ``"chair"``, ``"car"``), 8-digit synset ids, or ``"all"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_points: points per item ``N`` (official: 2,048).
        normalize: ``"shape_bbox"`` (official ShapeGF, default), ``"shape_unit"``, ``"global"`` (PointFlow's
            protocol; the statistics come from the train split unless ``stats`` is given) or ``"none"``.
        sample: ``"random"`` (draw with replacement, afresh), ``"first"`` (fixed) or ``"auto"`` (random on
            train).
        pool: ``"train"`` (points 0..9,999), ``"test"`` (10,000..14,999) or ``"auto"`` (train pool on train).
        stats: ``{"shift": (1, 3), "scale": (1, 1)}`` for ``normalize="global"``.
        seed: kept for a uniform signature (PC15k's content is fixed by the files).
        generator: optional ``torch.Generator`` for the random draws (default: torch's global RNG).
        shuffle_seed: the fixed seed of the shape-list shuffle (PointFlow's 38383).
        max_shapes: keep only the first ``max_shapes`` shapes after the shuffle (``None``: all).
        cache: keep each shape's normalised pool in memory after its first load (default True).

    Items: ``{"points": (N, 3), "shift": (1, 3), "scale": (1, 1), "idx": int, "label": int}``, ``label`` the
    category's position in the resolved category list; ``files[idx]`` is the item's file.

    Raises:
        FileNotFoundError: ``root`` or a category/split folder is missing (the message says where to get
            PC15k).
        ValueError: unknown category; a folder with no ``.npy`` files; a file that is not ``(15000, 3)``.

    Taught in chapter 10.
    """

    dim = 3

    def __init__(self, root: str | os.PathLike, categories: Sequence[str] | str = ("airplane",),
                 split: str = "train", num_points: int = 2048, normalize: str = "shape_bbox",
                 sample: str = "auto", pool: str = "auto", stats=None, seed: int = 0,
                 generator: torch.Generator | None = None, shuffle_seed: int = SHUFFLE_SEED,
                 max_shapes: int | None = None, cache: bool = True):
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"ShapeNet PC15k root {os.path.abspath(root)!r} does not exist. "
                                    f"{WHERE_TO_GET}")
        _checks.choice("split", split, ("train", "val", "test"))
        _checks.int_at_least("max_shapes", max_shapes, 1, optional=True)
        cats = resolve_categories(root, categories)
        files, labels = [], []
        for label, (name, synset) in enumerate(cats):
            folder = os.path.join(root, synset, split)
            if not os.path.isdir(folder):
                have = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
                raise FileNotFoundError(f"no folder {folder!r} for category {name!r} (synset {synset}), "
                                        f"split {split!r}; synset folders under the root: {have}. "
                                        f"{WHERE_TO_GET}")
            names = sorted(f for f in os.listdir(folder) if f.endswith(".npy"))
            if not names:
                raise ValueError(f"folder {folder!r} (category {name!r}, split {split!r}) "
                                 "holds no .npy files")
            files += [os.path.join(folder, f) for f in names]
            labels += [label] * len(names)
        order = list(range(len(files)))
        random.Random(shuffle_seed).shuffle(order)
        if max_shapes is not None:
            order = order[:max_shapes]
        self.root = root
        self.categories = [name for name, _ in cats]
        self.synsets = [s for _, s in cats]
        self.files = [files[i] for i in order]
        self.labels = [labels[i] for i in order]
        for f in self.files:  # validate every file up front (header only: cheap)
            try:
                shape = np.load(f, mmap_mode="r").shape
            except Exception as err:  # noqa: BLE001 - report any unreadable file by name
                raise ValueError(f"cannot read {f}: {err}") from err
            if shape != (CLOUD_SIZE, 3):
                raise ValueError(f"{f} holds an array of shape {shape}; PC15k files are ({CLOUD_SIZE}, 3)")
        self._length = len(self.files)
        self._kwargs = dict(root=root, categories=categories, num_points=num_points, sample=sample, pool=pool,
                            seed=seed, shuffle_seed=shuffle_seed, cache=cache)
        self._setup(split=split, num_points=num_points, normalize=normalize, stats=stats, sample=sample,
                    pool=pool, seed=seed, generator=generator, cloud_size=CLOUD_SIZE,
                    pools={"train": TRAIN_POOL, "test": TEST_POOL}, cache=cache)

    def _full_cloud(self, index):
        return np.load(self.files[index]).astype(np.float32, copy=False)

    def _label(self, index):
        return self.labels[index]

    def _train_split(self):
        return ShapeNetPC15k(**{**self._kwargs, "split": "train", "normalize": "none", "cache": False})

    def extra_repr(self):
        return f"categories={self.categories}, root={self.root!r}"
