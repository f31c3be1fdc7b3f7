"""Watching a training loop for NaN/inf without a host synchronisation per step.

Both trainers (:func:`~gfcore.train.train_autoencoder`, :func:`~gfcore.train.train_latent_gan`) note each step's
tensors here, on their device, and read the record back only at their log, validation and checkpoint steps, where
they read other values anyway. Chapter 5 shows the auto-encoder's trainer; chapter 7 the GAN's.
"""

from __future__ import annotations

import torch

from gfcore.train import distributed

__all__ = ["FirstBadStep"]


class FirstBadStep:
    """The first step at which each named tensor held a NaN or inf, recorded on the device.

    ``FirstBadStep(("points", "loss"), device)``; per step ``note(step, points=..., loss=...)`` (no host sync);
    at a check, ``read(world)`` gives ``{"points": step or None, "loss": step or None}`` (one host sync, and the
    minimum over the ranks of a ``torchrun`` job, so that every rank sees the same steps and stops together).
    """

    NONE = 2**62  # "no bad step yet": above any step count

    def __init__(self, names, device):
        self.names = tuple(names)
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"names must be distinct and not empty, got {names!r}")
        self.first = torch.full((len(self.names),), self.NONE, dtype=torch.long, device=device)

    @torch.no_grad()
    def note(self, step: int, **tensors: torch.Tensor) -> None:
        """Record ``step`` for every named tensor that holds a NaN/inf, unless an earlier step is recorded."""
        if set(tensors) != set(self.names):
            raise ValueError(f"note() takes exactly {self.names}, got {tuple(tensors)}")
        ok = torch.stack([torch.isfinite(tensors[name]).all() for name in self.names])
        torch.minimum(self.first, torch.where(ok, self.NONE, step), out=self.first)

    def read(self, world: int = 1) -> dict[str, int | None]:
        """``{name: first bad step, or None}`` (all ranks' minimum when ``world > 1``)."""
        distributed.all_reduce_min(self.first, world=world)
        return {name: (None if s == self.NONE else s) for name, s in zip(self.names, self.first.tolist(),
                                                                        strict=True)}
