"""Resolving the auto-encoder a latent GAN names: a model passed in code, a training checkpoint (or its run
folder) or a shipped model's name, with the data set it was trained on.

The latent-GAN trainer (:mod:`gfcore.train.gan_codes`) and the generation protocol
(:func:`gfcore.evaluation.main_eval_generation`) both call :func:`resolve_autoencoder`; it sits here, above
:mod:`gfcore.checkpoint_io` and beside the shipped models, so that evaluation needs no part of the trainer.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

from pathlib import Path

import torch

from gfcore.models import ShapeGF


def resolve_autoencoder(spec, *, device=None, ema: bool = True) -> tuple[ShapeGF, str, dict | None]:
    """Load the auto-encoder a latent GAN is trained on.

    Args:
        spec: a :class:`~gfcore.models.ShapeGF`; a checkpoint file or run folder of
            :func:`~gfcore.train.train_autoencoder`; a name of :func:`gfcore.pretrained.available` (optionally
            written ``"pretrained:<name>"``).
        device: where to put it (default: CUDA when present, else CPU).
        ema: for a checkpoint, use its EMA weights when it kept them.

    Returns:
        ``(model, source, data)``: the model in eval mode, a string naming where it came from, and
        ``{"dataset", "dataset_kwargs"}`` it was trained on, number of points included (from the checkpoint's
        config or the model card's training config; ``None`` when unknown).

    Raises:
        TypeError: ``spec`` of another type.
        ValueError, FileNotFoundError: neither a checkpoint nor a pretrained name; an incompatible checkpoint.

    Taught in chapter 7 (Generating new shapes).
    """
    from gfcore import pretrained
    from gfcore.checkpoint_io import load_checkpoint, load_model
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    if isinstance(spec, ShapeGF):
        return spec.to(device).eval(), "ShapeGF passed in code", None
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"autoencoder must be a ShapeGF, a checkpoint path or a pretrained name, got "
                        f"{type(spec).__name__}")
    text = str(spec)
    if Path(text).exists():
        model = load_model(text, device, ema=ema)
        cfg = load_checkpoint(text, map_location="cpu")["config"]
        data = {"dataset": cfg.get("dataset"), "dataset_kwargs": dict(cfg.get("dataset_kwargs") or {})}
        return model, text, data if data["dataset"] else None
    name = text.removeprefix("pretrained:")
    if name in pretrained.available():
        card = pretrained.card(name)
        trained = card.get("config") or {}        # the training config: the data exactly as it was trained on
        data = {"dataset": trained.get("dataset", card.get("dataset")),
                "dataset_kwargs": dict(trained.get("dataset_kwargs", card.get("dataset_kwargs")) or {})}
        return pretrained.load(name, device=device), f"pretrained:{name}", data if data["dataset"] else None
    raise ValueError(f"autoencoder {text!r} is neither an existing checkpoint file or run folder nor a "
                     f"pretrained model (available: {pretrained.available()})")


__all__ = ["resolve_autoencoder"]
