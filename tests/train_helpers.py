"""Shared by the gfcore.train tests (and the DDP subprocess): a tiny 2D data set and a tiny config."""
import math

import torch
from torch.utils.data import Dataset

from gfcore.train import AutoEncoderConfig


class Circles(Dataset):
    """Circles of per-item radius; the points of an item are drawn afresh from the global RNG on every access
    (as real datasets subsample), so exact resume needs the RNG states in the checkpoint."""

    dim = 2

    def __init__(self, n=16, num_points=64, seed=0, nan_item=None):
        g = torch.Generator().manual_seed(seed)
        self.radius = 0.3 + 0.7 * torch.rand(n, generator=g)
        self.num_points = num_points
        self.nan_item = nan_item

    def __len__(self):
        return len(self.radius)

    def __getitem__(self, i):
        theta = 2 * math.pi * torch.rand(self.num_points)
        pts = self.radius[i] * torch.stack([theta.cos(), theta.sin()], -1)
        if i == self.nan_item:
            pts[0, 0] = float("nan")
        return {"points": pts, "shift": torch.zeros(1, 2), "scale": torch.ones(1, 1), "idx": i}


def tiny(**kw):
    # device="cpu": the tests compare with CPU tensors, so they must not train on a GPU where one is present
    base = dict(dim=2, zdim=16, hidden=32, n_blocks=2, batch_size=8, max_steps=8, log_every=2, val_every=None,
                val_shapes=4, val_num_points=32, val_steps_per_sigma=1, ckpt_every=4, device="cpu")
    return AutoEncoderConfig(**{**base, **kw})


def flat_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
