"""The dataset contract shared by every point-cloud dataset in ``gfcore.data``.

An item is a dict::

    {"points": (N, d) float32 tensor, normalised,
     "shift":  (1, d) float32 tensor,
     "scale":  (1, 1) float32 tensor,     # raw = points * scale + shift
     "idx":    int,                       # the item's index in the dataset
     "label":  int}                       # class / category index (every dataset here has one)

Each shape is stored as a *full cloud* of ``P`` raw points (15,000 for PC15k). The full cloud fixes the
per-shape normalisation (as the official code computes it over all 15,000 points); a slice of it is the *pool*
that points are drawn from: the ``"train"`` pool (PC15k: points 0..9,999) or the ``"test"`` pool
(10,000..14,999).

- ``sample="random"`` draws ``num_points`` points from the pool with replacement, afresh on every access
  (training).
- ``sample="first"`` takes the first ``num_points`` points of the pool, the same every time (evaluation).
- ``sample="auto"`` (default) is ``"random"`` on the train split and ``"first"`` on the others, and
  ``pool="auto"`` is the train pool on the train split and the test pool on the others.

Random draws use ``generator`` (a CPU ``torch.Generator``) when given, else torch's global RNG, which
``gfcore.utils.seed_everything`` seeds and the trainer checkpoints (so a resumed run replays the same draws),
and which a ``DataLoader`` seeds differently in every worker and epoch. A given generator is not shared across
worker processes: inside a worker, a per-worker generator seeded from the worker's seed replaces it (otherwise
every worker would copy the same generator state and repeat the same draws). ``seed`` fixes what the data *is*
(procedural shapes, digit clouds), never the random draws.

Taught in chapters 4, 5 and 10.
"""
from __future__ import annotations

import copy
import operator
from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from gfcore import _checks
from gfcore.data import normalize as _norm

SPLITS = ("train", "val", "test")
SAMPLES = ("random", "first", "auto")
POOLS = ("train", "test", "auto")


class PointCloudDataset(Dataset):
    """Base class: subclasses set ``dim``, ``pools`` and ``_length`` and implement ``_full_cloud(i)``.

    Attributes:
        dim: spatial dimension ``d``.
        pools: ``{"train": slice, "test": slice}`` into each full cloud.
        stats: for ``normalize="global"``, ``{"shift": (1, d), "scale": (1, 1)}``; else ``None``.
    """

    dim: int = 3

    def _setup(self, *, split: str, num_points: int, normalize: str, stats: Mapping | None, sample: str,
               pool: str, seed: int, generator: torch.Generator | None, cloud_size: int,
               pools: Mapping[str, slice], cache: bool = True) -> None:
        _checks.choice("split", split, SPLITS)
        _checks.int_at_least("num_points", num_points, 1)
        _checks.choice("normalize", normalize, _norm.NORMALIZATIONS)
        _checks.choice("sample", sample, SAMPLES)
        _checks.choice("pool", pool, POOLS)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.split = split
        self.normalize = normalize
        self.seed = int(seed)
        self.cloud_size = cloud_size
        self.pools = dict(pools)
        self._choose_points(split, num_points, sample, pool)
        self.generator = generator
        self._worker_gen: tuple[int, torch.Generator] | None = None
        self._cache_enabled = cache
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.stats = None
        if normalize == "global":
            if stats is None:
                source = self if split == "train" else self._train_split()
                stats = source.compute_global_stats()
            shift, scale = _norm._check_stats(stats, self.dim)
            self.stats = {"shift": shift.float().reshape(1, -1), "scale": scale.float().reshape(1, 1)}
        elif stats is not None:
            raise ValueError(f"stats are only used with normalize='global', got normalize={normalize!r}")

    def _choose_points(self, split: str, num_points: int, sample: str, pool: str) -> None:
        """Set ``num_points``, ``sample`` and ``pool`` (resolving ``"auto"`` by ``split``) and the pool's slice."""
        self.num_points = num_points
        self.sample = ("random" if split == "train" else "first") if sample == "auto" else sample
        self.pool = ("train" if split == "train" else "test") if pool == "auto" else pool
        self._slice = self.pools[self.pool]
        pool_size = len(range(self.cloud_size)[self._slice])
        if self.sample == "first" and num_points > pool_size:
            raise ValueError(f"num_points={num_points} exceeds the {self.pool} pool of {pool_size} points "
                             "(sample='first' takes distinct points; sample='random' draws with replacement)")
        self.pool_size = pool_size

    def view(self, *, pool: str | None = None, sample: str | None = None,
             num_points: int | None = None) -> PointCloudDataset:
        """The same shapes (split, order, normalisation, statistics, seed, labels) with another pool, sampling
        or number of points; ``None`` keeps this dataset's choice.

        The official auto-encoding protocol encodes ``view(pool="train", sample="first")`` and scores the
        reconstruction against ``view(pool="test", sample="first")`` (see :mod:`gfcore.evaluation`).

        Args:
            pool: ``"train"``, ``"test"`` or ``"auto"``.
            sample: ``"random"``, ``"first"`` or ``"auto"``.
            num_points: points per item.

        Returns:
            A new dataset of this type; this one is unchanged.

        Raises:
            ValueError, TypeError: as the constructor (unknown pool or sampling, ``num_points`` beyond the pool).

        Taught in chapter 6 (Measuring quality).
        """
        pool = self.pool if pool is None else pool
        sample = self.sample if sample is None else sample
        num_points = self.num_points if num_points is None else num_points
        _checks.int_at_least("num_points", num_points, 1)
        _checks.choice("sample", sample, SAMPLES)
        _checks.choice("pool", pool, POOLS)
        out = copy.copy(self)
        out._choose_points(self.split, num_points, sample, pool)
        if out._slice != self._slice:
            out._cache = {}          # the cache holds normalised pools
        out._worker_gen = None
        return out

    # -- to implement ---------------------------------------------------------------------------------------
    def _full_cloud(self, index: int) -> np.ndarray:
        """The raw ``(cloud_size, d)`` float32 cloud of item ``index``."""
        raise NotImplementedError

    def _label(self, index: int) -> int:
        return 0

    def _train_split(self) -> PointCloudDataset:
        """The same dataset on the train split (used to compute global statistics for other splits)."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._length

    def compute_global_stats(self) -> dict[str, torch.Tensor]:
        """PointFlow's global statistics over this dataset's full clouds (see
        :func:`normalize.global_stats`)."""
        return _norm.global_stats(self._full_cloud(i) for i in range(len(self)))

    def _normalized_pool(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        full = np.ascontiguousarray(self._full_cloud(index), dtype=np.float32)
        if full.shape != (self.cloud_size, self.dim):
            raise ValueError(f"item {index}: expected a ({self.cloud_size}, {self.dim}) cloud, "
                             f"got {full.shape}")
        if self.normalize == "global":
            shift, scale = self.stats["shift"].numpy(), self.stats["scale"].numpy()
        else:  # numpy here: the data-loading hot path stays free of small torch ops
            _, shift, scale = _norm.normalize(full, self.normalize)
        shift = np.asarray(shift, dtype=np.float32).reshape(1, self.dim)
        scale = np.asarray(scale, dtype=np.float32).reshape(1, 1)
        pool = (full[self._slice] - shift) / scale
        out = (torch.from_numpy(np.ascontiguousarray(pool)), torch.from_numpy(shift), torch.from_numpy(scale))
        if self._cache_enabled:
            self._cache[index] = out
        return out

    def _draw_generator(self) -> torch.Generator | None:
        info = get_worker_info()
        if info is None or self.generator is None:
            return self.generator
        if self._worker_gen is None or self._worker_gen[0] != info.seed:
            self._worker_gen = (info.seed, torch.Generator().manual_seed(info.seed % 2**63))
        return self._worker_gen[1]

    def __getitem__(self, index: int) -> dict:
        index = operator.index(index)  # ints, NumPy and 0-d integer tensors alike
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        index = int(index % n)
        pool, shift, scale = self._normalized_pool(index)
        if self.sample == "random":
            choice = torch.randint(pool.shape[0], (self.num_points,), generator=self._draw_generator())
            points = pool[choice]
        else:
            points = pool[: self.num_points].clone()
        return {"points": points, "shift": shift.clone(), "scale": scale.clone(), "idx": index,
                "label": self._label(index)}

    def raw_cloud(self, index: int) -> np.ndarray:
        """The raw (un-normalised) full cloud of item ``index``: ``(cloud_size, d)`` float32 array."""
        return np.asarray(self._full_cloud(index), dtype=np.float32)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        return (f"{type(self).__name__}(split={self.split!r}, len={len(self)}, dim={self.dim}, "
                f"num_points={self.num_points}, normalize={self.normalize!r}, sample={self.sample!r}, "
                f"pool={self.pool!r}{', ' + extra if extra else ''})")
