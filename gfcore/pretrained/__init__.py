"""Trained models shipped with the package, each with a model card.

A model is two files in this folder: ``<name>.pt`` (a ``torch.save`` dict of tensors and primitives: the model's
``config`` and its ``state_dict``, loadable with ``weights_only=True``) and ``<name>.json``, its card: the data
(``"dataset"`` and ``"dataset_kwargs"`` that :func:`gfcore.data.build_dataset` accepts, so anyone can rebuild the
exact splits), the training preset, steps, wall time, hardware, torch version, and held-out metrics under the
official auto-encoding protocol with the oracle beside them. ``scripts/export_pretrained.py`` writes both from a
training checkpoint; ``tests/test_pretrained.py`` re-measures a handful of shapes so the numbers cannot rot.

A weights file names its class in ``"model"`` (default ``"ShapeGF"``): the auto-encoders ``shapes3d`` and
``digits2d`` are :class:`~gfcore.models.ShapeGF`; ``shapes3d-gen`` is the latent GAN's generator
(:class:`~gfcore.models.LatentGenerator`) trained on the codes of ``shapes3d``, whose card names that auto-encoder
(``"autoencoder"``) and holds generation metrics against baselines measured in the same run.

Usage::

    model = gfcore.pretrained.load("shapes3d")           # a ShapeGF in eval mode
    gfcore.pretrained.card("shapes3d")["metrics"]        # what it achieves, and how that was measured
    latent_generator = gfcore.pretrained.load("shapes3d-gen")   # a LatentGenerator in eval mode
    shapes = model.sample(latent_generator, 16, 2048)    # new shapes (chapter 7)
    official = load_official("airplane_recon_add.pt", "airplane_recon_add.yaml")   # official checkpoints (chapter 10)

Taught in chapter 4 (Conditional fields in 2D), chapter 5 (The full 3D model) and chapter 7 (Generating new
shapes).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from gfcore.pretrained.official import OfficialModels, load_official

FOLDER = Path(__file__).resolve().parent
FORMAT_VERSION = 1
KIND = "gfcore-pretrained"


def available() -> list[str]:
    """Names of the shipped models (those with both a card and weights), sorted."""
    return sorted(p.stem for p in FOLDER.glob("*.json") if (FOLDER / f"{p.stem}.pt").is_file())


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    names = available()
    if name not in names:
        raise ValueError(f"no pretrained model named {name!r}; available: {names}")
    return name


def card(name: str) -> dict:
    """The model card of ``name`` (a dict; see the module docstring for its keys).

    Raises:
        ValueError: unknown ``name`` (the message lists the available ones).
    """
    name = _check_name(name)
    return json.loads((FOLDER / f"{name}.json").read_text())


def _model_classes() -> dict:
    """The classes a weights file may name in its ``"model"`` field (imported on use)."""
    from gfcore.models import LatentGenerator, ShapeGF

    return {"ShapeGF": ShapeGF, "LatentGenerator": LatentGenerator}


def load(name: str, *, device=None, dtype: torch.dtype = torch.float32):
    """Load the shipped model ``name`` in eval mode: a :class:`~gfcore.models.ShapeGF` (the auto-encoders) or a
    :class:`~gfcore.models.LatentGenerator` (``"shapes3d-gen"``), as the weights file's ``"model"`` field says.

    The weights are stored in half precision (the card says so and its metrics were measured with them) and are
    cast to ``dtype`` on load; loading uses ``torch.load(..., weights_only=True)``.

    Args:
        name: one of :func:`available` (``"shapes3d"``, ``"digits2d"``, ``"shapes3d-gen"``).
        device: where to put the model (default: CUDA when present, else CPU).
        dtype: floating dtype of the returned model.

    Returns:
        ``ShapeGF`` or ``LatentGenerator``, in eval mode.

    Raises:
        ValueError: unknown ``name``, or a file that is not a gfcore pretrained model, names an unknown model
            class or does not fit its config.

    Taught in chapter 4/5 (auto-encoders) and chapter 7 (the generator).
    """
    name = _check_name(name)
    return load_file(FOLDER / f"{name}.pt", device=device, dtype=dtype)


def load_file(path, *, device=None, dtype: torch.dtype = torch.float32):
    """:func:`load` for a weights file at ``path`` (e.g. one being exported, before its card exists).

    Raises:
        ValueError: as :func:`load`.
    """
    from gfcore.checkpoint_io import read_checkpoint
    from gfcore.utils import default_device

    path = Path(path)
    blob = read_checkpoint(path, map_location="cpu")
    if not isinstance(blob, dict) or blob.get("kind") != KIND:
        raise ValueError(f"{path} is not a gfcore pretrained model (expected a dict with kind={KIND!r})")
    if blob.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {blob.get('format_version')}; this gfcore reads "
                         f"{FORMAT_VERSION}")
    classes = _model_classes()
    model_name = blob.get("model", "ShapeGF")
    if model_name not in classes:
        raise ValueError(f"{path} holds a {model_name!r}; this gfcore loads {sorted(classes)}")
    model = classes[model_name].from_config(blob["config"])
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit the stored config {blob['config']}: {e}") from None
    device = torch.device(device) if device is not None else default_device()
    return model.to(device=device, dtype=dtype).eval()


__all__ = ["OfficialModels", "available", "card", "load", "load_file", "load_official"]
