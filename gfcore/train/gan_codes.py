"""The latent GAN's data: the frozen auto-encoder (:func:`resolve_autoencoder`, which lives in
:mod:`gfcore.pretrained.resolve` so that evaluation reaches it without the trainer) and its codes of the training
shapes (:func:`encode_dataset`), the "real" samples of the GAN.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from gfcore import _checks
from gfcore.models import ShapeGF
from gfcore.pretrained.resolve import resolve_autoencoder  # noqa: F401 (re-exported: the trainer's name for it)


@torch.no_grad()
def encode_dataset(autoencoder: ShapeGF, dataset, *, batch_size: int = 64,
                   progress: bool = False) -> torch.Tensor:
    """The encoder's codes (eval mode) of every item of ``dataset``, in order: the latent GAN's real data.

    Args:
        autoencoder: a :class:`~gfcore.models.ShapeGF` (its encoder is used in eval mode; the mode is
            restored).
        dataset: items ``{"points": (N, d), ...}`` (for reproducible codes, a dataset whose items do not draw
            random points, e.g. built with ``sample="first"``).
        batch_size: shapes per forward pass.
        progress: show a tqdm bar.

    Returns:
        ``(len(dataset), zdim)`` float32 codes on the auto-encoder's device.

    Raises:
        ValueError: an empty dataset, points of the wrong dimension or with NaN.

    Taught in chapter 7 (Generating new shapes).
    """
    batch_size = _checks.positive_int("batch_size", batch_size)
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    device = next(autoencoder.parameters()).device
    was_training = autoencoder.training
    autoencoder.eval()
    out = []
    try:
        for start in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="encode"):
            points = torch.stack([dataset[i]["points"] for i in range(start, min(start + batch_size,
                                                                                 len(dataset)))])
            out.append(autoencoder.encode(points.to(device)).float())
    finally:
        autoencoder.train(was_training)
    return torch.cat(out)


__all__ = ["encode_dataset", "resolve_autoencoder"]
