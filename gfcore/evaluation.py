"""Evaluating a trained auto-encoder on a data set: reconstruct shapes and measure them against their points.

Evaluation is not training: the trainer calls :func:`evaluate_reconstruction` for its validation records, and
chapters and the CLI call it on held-out splits. Taught in chapter 5 (The full 3D model).
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from gfcore.data.normalize import denormalize
from gfcore.metrics import chamfer_distance


def first_items(dataset: Dataset, count: int) -> dict:
    """Collate the first ``min(count, len(dataset))`` items of ``dataset`` into one batch dict.

    Args:
        dataset: a dataset of ``{"points": (N, d), "shift": (1, d), "scale": (1, 1), ...}`` items.
        count: how many items to take.

    Returns:
        ``{"points": (B, N, d), "shift": (B, 1, d), "scale": (B, 1, 1), ...}``.

    Taught in chapter 5 (The full 3D model).
    """
    return default_collate([dataset[i] for i in range(min(count, len(dataset)))])


def _raw(points: torch.Tensor, batch: dict) -> torch.Tensor:
    """``points`` in the data set's original coordinates, when the batch carries ``shift``/``scale``."""
    shift, scale = batch.get("shift"), batch.get("scale")
    shift = shift.to(points) if shift is not None else torch.zeros((), dtype=points.dtype, device=points.device)
    scale = scale.to(points) if scale is not None else torch.ones((), dtype=points.dtype, device=points.device)
    return denormalize(points, shift, scale)


@torch.no_grad()
def evaluate_reconstruction(model, dataset_or_batch, *, num_shapes: int = 16, num_points: int = 2048,
                            steps_per_sigma: int = 10, sigmas: torch.Tensor | None = None, seed: int = 0,
                            device=None) -> dict:
    """Auto-encode the first ``num_shapes`` shapes and measure the Chamfer distance to their points.

    Both clouds are mapped back to the dataset's original coordinates (``points * scale + shift`` when the items
    carry them), as the official auto-encoding evaluation does. Sampling is seeded, so two calls agree.

    Args:
        model: a :class:`~gfcore.models.ShapeGF` (switched to eval mode for the call, then restored).
        dataset_or_batch: a dataset of ``{"points", "shift", "scale"}`` items, or an already collated batch dict.
        num_shapes, num_points, steps_per_sigma, sigmas: what to reconstruct and how (default ladder: 1 -> 0.01,
            10 levels).
        seed: seed of the prior and Langevin noise.
        device: where to run (default: the model's device).

    Returns:
        ``{"chamfer": float (mean), "chamfer_per_shape": (B,) tensor}``.

    Taught in chapter 4/5.
    """
    batch = dataset_or_batch if isinstance(dataset_or_batch, dict) else first_items(dataset_or_batch, num_shapes)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    ref = batch["points"][:num_shapes].to(device=device, dtype=torch.float32)
    batch = {k: (v[:num_shapes].to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    gen = torch.Generator(device=device).manual_seed(seed)
    rec = model.reconstruct(ref, num_points, sigmas=sigmas, steps_per_sigma=steps_per_sigma, generator=gen)
    cd = chamfer_distance(_raw(rec, batch), _raw(ref, batch))
    return {"chamfer": float(cd.mean()), "chamfer_per_shape": cd.cpu()}
