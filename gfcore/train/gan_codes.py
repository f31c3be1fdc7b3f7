"""The latent GAN's data: the frozen auto-encoder (:func:`resolve_autoencoder`) and its codes of the training
shapes (:func:`encode_dataset`), the "real" samples of the GAN.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from gfcore import _checks
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
    from gfcore.train.checkpoint import load_checkpoint, load_model
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
