"""Which shapes each training step sees: a stateless, resumable batch sampler and seed mixing.

The order of shapes is a permutation per epoch drawn from ``(seed, epoch)``; the DSM noise of step ``t`` on rank
``r`` comes from a generator seeded by ``(seed, r, t)`` (see :func:`mix_seed`). Neither has state to lose, so a
run resumed from a checkpoint replays the same batches and noise.

Taught in chapter 5 (The full 3D model).
"""
from __future__ import annotations

import hashlib
import random

import numpy as np
import torch
from torch.utils.data import Sampler


def mix_seed(*values) -> int:
    """A 63-bit seed from a tuple of ints, stable across runs and platforms (a hash, not arithmetic).

    Args:
        values: ints, e.g. ``(seed, stream, rank, step)``.

    Returns:
        An int in ``[0, 2**63)``.
    """
    digest = hashlib.blake2b(repr(tuple(int(v) for v in values)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class StepBatches(Sampler):
    """Index lists for global steps ``start..stop-1``: a permutation per epoch from ``(seed, epoch)``, cut into
    batches of ``batch_size`` (the last partial batch dropped), of which this rank takes its contiguous share.

    Args:
        n: items in the data set.
        batch_size: shapes per step over all ranks (divisible by ``world``).
        seed: the run's seed.
        start, stop: the global steps to cover.
        rank, world: this process and the number of processes.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.steps_per_epoch = n // batch_size
        self.local = batch_size // world

    def permutation(self, epoch: int) -> torch.Tensor:
        """The ``(n,)`` order of the items in ``epoch``."""
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(mix_seed(self.seed, 7, epoch)))

    def __iter__(self):
        epoch, perm = None, None
        for step in range(self.start, self.stop):
            e, pos = divmod(step, self.steps_per_epoch)
            if e != epoch:
                epoch, perm = e, self.permutation(e).tolist()          # once per epoch, not per step
            batch = perm[pos * self.batch_size:(pos + 1) * self.batch_size]
            yield batch[self.rank * self.local:(self.rank + 1) * self.local]

    def __len__(self):
        return self.stop - self.start


def seed_worker(worker_id: int) -> None:
    """``DataLoader`` ``worker_init_fn``: seed NumPy and Python in a worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
