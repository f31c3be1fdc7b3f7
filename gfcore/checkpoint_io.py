"""Reading checkpoints safely: the one place where gfcore calls ``torch.load``, below training and evaluation.

:func:`read_checkpoint` wraps ``torch.load(path, weights_only=True, map_location=...)``: tensors and primitive
containers load, Python objects that a pickle would rebuild (and could run code with) are refused. Its failures
(no file, a truncated or damaged file, a file that is not a PyTorch checkpoint, a pickle holding such objects)
become :class:`CheckpointError`, a ``ValueError`` whose message names the file and says what to do.

On top of it, the checks of gfcore's own checkpoints (the kind, the format version, the keys) and the rebuilding
of their networks: :func:`load_checkpoint` and :func:`load_model` for the auto-encoder's trainer,
:func:`load_gan_checkpoint` and :func:`load_gan_networks` for the latent GAN's. :mod:`gfcore.train` (which writes
the checkpoints), :mod:`gfcore.evaluation` and :mod:`gfcore.pretrained` read through this module, so evaluation
never needs the trainer.

Taught in chapter 5 (The full 3D model) and chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import NamedTuple

import torch

#: the format version of gfcore's training checkpoints (auto-encoder and latent GAN)
FORMAT_VERSION = 1
#: the ``kind`` of an auto-encoder checkpoint written by :func:`gfcore.train.train_autoencoder`
AUTOENCODER_KIND = "shapegf-autoencoder"
#: the ``kind`` of a latent-GAN checkpoint written by :func:`gfcore.train.train_latent_gan`
LATENT_GAN_KIND = "shapegf-latent-gan"
AUTOENCODER_KEYS = ("format_version", "kind", "gfcore_version", "step", "total_steps", "config", "model_config",
                    "model", "optimizer", "scheduler", "ema", "rng", "sampler", "history")
LATENT_GAN_KEYS = ("format_version", "kind", "gfcore_version", "step", "total_steps", "config",
                   "generator_config", "critic_config", "generator", "critic", "opt_generator", "opt_critic",
                   "latents", "autoencoder", "history")
#: what torch's readers say of a truncated or damaged file (zip archive, legacy format)
_DAMAGED = re.compile(r"PytorchStreamReader|zip archive|unexpected EOF|corrupt", re.IGNORECASE)
_LOADERS = {AUTOENCODER_KIND: "gfcore.train.load_model", LATENT_GAN_KIND: "gfcore.train.load_latent_gan"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or is not the one asked for; the message names the file and says what to
    do.

    Taught in chapter 5 (The full 3D model).
    """


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file where a checkpoint was expected (also a ``FileNotFoundError``)."""


def checkpoint_file(path) -> Path:
    """The checkpoint file ``path`` names: the file itself, or a run folder's ``checkpoints/last.pt``.

    Args:
        path: a file, a run folder, or any ``os.PathLike`` naming one (a :class:`gfcore.train.RunDir`).
    """
    path = Path(os.fspath(path))
    return path / "checkpoints" / "last.pt" if path.is_dir() else path


def _unsafe_global(message: str) -> str | None:
    """The Python object a refused pickle names (``"posix.system"``), from ``torch.load``'s message."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    return found.group(1) if found else None


def read_checkpoint(path, *, map_location="cpu"):
    """``torch.load(path, weights_only=True, map_location=map_location)``, with its failures made clear.

    Only tensors and primitive containers (dict, list, tuple, str, numbers, None) are loaded; a pickle that would
    rebuild other Python objects is refused before any of its code runs.

    Args:
        path: a checkpoint file (:func:`checkpoint_file` resolves a run folder first).
        map_location: as for ``torch.load`` (default ``"cpu"``).

    Returns:
        What the file holds.

    Raises:
        CheckpointNotFoundError: no file at ``path`` (also a ``FileNotFoundError``).
        CheckpointError: a folder, an unreadable, empty, truncated or damaged file, a file that is not a PyTorch
            checkpoint, or one holding Python objects other than tensors and containers.

    Taught in chapter 5 (The full 3D model).
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise CheckpointNotFoundError(f"no checkpoint at {path}: check the path (a run folder stands for its "
                                      "checkpoints/last.pt)")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder without checkpoints/last.pt: name the checkpoint file")
    try:
        with warnings.catch_warnings():      # torch warns about pickle protocols before it refuses or loads
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, weights_only=True, map_location=map_location)
    except PermissionError:
        raise CheckpointError(f"{path} cannot be read (permission denied): check the file's permissions") from None
    except pickle.UnpicklingError as err:
        name = _unsafe_global(str(err))
        if name is not None:
            raise CheckpointError(
                f"{path} holds Python objects, not only tensors (it names {name}); gfcore reads weights only and "
                "refused it before any of its code could run: use a checkpoint saved as tensors and plain "
                "containers (a state dict), e.g. one written by gfcore") from None
        raise CheckpointError(f"{path} is not a PyTorch checkpoint of tensors (or it is damaged): check that it is "
                              "the right file and copy it again") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, struct.error, OSError) as err:
        if isinstance(err, RuntimeError) and not _DAMAGED.search(str(err)):
            raise                            # not a damaged file (e.g. CUDA tensors on a machine without CUDA)
        what = "empty" if path.stat().st_size == 0 else "truncated or damaged"
        raise CheckpointError(f"{path} is {what} ({type(err).__name__}), not a complete checkpoint: copy it "
                              "again, or use another checkpoint (training keeps checkpoints/last.pt whole)") from None


def checkpoint_kind(path) -> str | None:
    """The ``"kind"`` a gfcore checkpoint declares (:data:`AUTOENCODER_KIND`, :data:`LATENT_GAN_KIND`, ...),
    ``None`` for a file that holds no kind.

    Raises:
        CheckpointError: as :func:`read_checkpoint`.
    """
    blob = read_checkpoint(checkpoint_file(path))
    return blob.get("kind") if isinstance(blob, dict) else None


def _checked(path, kind: str, keys: tuple[str, ...], what: str, map_location) -> dict:
    """Read ``path`` and check its kind (first: another kind lacks the keys by design), version and keys."""
    path = checkpoint_file(path)
    ckpt = read_checkpoint(path, map_location=map_location)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a gfcore checkpoint (holds a {type(ckpt).__name__}, expected a dict)")
    found = ckpt.get("kind")
    if found != kind:
        hint = f" (load it with {_LOADERS[found]})" if found in _LOADERS else ""
        raise CheckpointError(f"{path} holds a {found!r} checkpoint{hint}, expected {what} ({kind!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {ckpt.get('format_version')}; this gfcore "
                              f"reads version {FORMAT_VERSION}")
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not a complete {what} checkpoint: missing keys {missing}")
    return ckpt


def load_checkpoint(path, *, map_location="cpu") -> dict:
    """Load and check an auto-encoder training checkpoint (``weights_only=True``).

    Args:
        path: a checkpoint file, or a run folder (its ``checkpoints/last.pt``).
        map_location: as for ``torch.load``.

    Returns:
        The checkpoint dict (keys :data:`AUTOENCODER_KEYS` and ``torch_version``).

    Raises:
        CheckpointNotFoundError: no file at ``path`` (also a ``FileNotFoundError``).
        CheckpointError: an unreadable file (see :func:`read_checkpoint`); not a gfcore auto-encoder checkpoint,
            missing keys, or another format version.

    Taught in chapter 5 (The full 3D model).
    """
    return _checked(path, AUTOENCODER_KIND, AUTOENCODER_KEYS, "an auto-encoder", map_location)


def load_gan_checkpoint(path, *, map_location="cpu") -> dict:
    """Load and check a latent-GAN checkpoint (``weights_only=True``).

    Args:
        path: a checkpoint file, or a run folder (its ``checkpoints/last.pt``).
        map_location: as for ``torch.load``.

    Returns:
        The checkpoint dict (keys :data:`LATENT_GAN_KEYS` and ``torch_version``).

    Raises:
        CheckpointNotFoundError: no file at ``path`` (also a ``FileNotFoundError``).
        CheckpointError: an unreadable file; another kind of checkpoint (e.g. an auto-encoder's), another format
            version, missing keys.

    Taught in chapter 7 (Generating new shapes).
    """
    return _checked(path, LATENT_GAN_KIND, LATENT_GAN_KEYS, "a latent GAN", map_location)


def load_state(module: torch.nn.Module, state: dict, path, what: str) -> None:
    """``module.load_state_dict(state)``; a misfit raises :class:`CheckpointError` naming the file, ``what`` and
    the first differing entries, on one line."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        if len(detail) > 400:
            detail = detail[:400] + " ..."
        raise CheckpointError(f"{path}: {what} weights do not fit the model ({detail}); the file was written for "
                              "another architecture: use the checkpoint of this configuration") from None


def load_model(path, device=None, *, ema: bool = True):
    """Rebuild the trained :class:`~gfcore.models.ShapeGF` of an auto-encoder checkpoint, in eval mode.

    Args:
        path: a checkpoint written by :func:`gfcore.train.train_autoencoder`, or its run folder.
        device: where to put the model (default: CUDA when present, else CPU).
        ema: use the EMA weights when the run kept them (``ema_decay``); ``False`` takes the raw weights.

    Returns:
        The model, in eval mode on ``device``.

    Raises:
        CheckpointNotFoundError, CheckpointError: as :func:`load_checkpoint`, or weights that do not fit the stored
            architecture.

    Taught in chapter 5 (The full 3D model).
    """
    from gfcore.models import ShapeGF
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    path = checkpoint_file(path)
    ckpt = load_checkpoint(path, map_location="cpu")
    model = ShapeGF.from_config(ckpt["model_config"])
    state = ckpt["ema"] if ema and ckpt["ema"] is not None else ckpt["model"]
    load_state(model, state, path, "model")
    return model.to(device).eval()


class GANNetworks(NamedTuple):
    """The networks and records of a latent-GAN checkpoint (:func:`load_gan_networks`).

    Attributes:
        generator, critic: :class:`~gfcore.models.LatentGenerator`, :class:`~gfcore.models.LatentCritic`, eval mode.
        autoencoder: the frozen :class:`~gfcore.models.ShapeGF` (eval mode), ``None`` for a GAN trained on codes
            passed in code.
        latents: ``(N, zdim)`` the real codes it was trained on.
        config: the trainer's config as a dict (``gfcore.train.LatentGANConfig.from_dict`` reads it).
        history: the log records.
        step: the step it was saved at.
        path: the checkpoint file.
    """

    generator: torch.nn.Module
    critic: torch.nn.Module
    autoencoder: torch.nn.Module | None
    latents: torch.Tensor
    config: dict
    history: list
    step: int
    path: Path


def load_gan_networks(path, device=None) -> GANNetworks:
    """Rebuild a latent-GAN checkpoint's generator, critic and frozen auto-encoder, in eval mode.

    Args:
        path: a checkpoint written by :func:`gfcore.train.train_latent_gan`, or its run folder.
        device: where to put the networks (default: CUDA when present, else CPU).

    Returns:
        :class:`GANNetworks`.

    Raises:
        CheckpointNotFoundError, CheckpointError: as :func:`load_gan_checkpoint`, or weights that do not fit.

    Taught in chapter 7 (Generating new shapes).
    """
    from gfcore.models import LatentCritic, LatentGenerator, ShapeGF
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    path = checkpoint_file(path)
    ckpt = load_gan_checkpoint(path)
    gen = LatentGenerator.from_config(ckpt["generator_config"])
    critic = LatentCritic.from_config(ckpt["critic_config"])
    load_state(gen, ckpt["generator"], path, "generator")
    load_state(critic, ckpt["critic"], path, "critic")
    autoencoder = None
    if ckpt["autoencoder"] is not None:
        autoencoder = ShapeGF.from_config(ckpt["autoencoder"]["model_config"])
        load_state(autoencoder, ckpt["autoencoder"]["state_dict"], path, "auto-encoder")
        autoencoder = autoencoder.to(device).eval()
    return GANNetworks(generator=gen.to(device).eval(), critic=critic.to(device).eval(), autoencoder=autoencoder,
                       latents=ckpt["latents"].to(device), config=dict(ckpt["config"]),
                       history=list(ckpt["history"]), step=int(ckpt["step"]), path=path)


__all__ = ["AUTOENCODER_KEYS", "AUTOENCODER_KIND", "FORMAT_VERSION", "LATENT_GAN_KEYS", "LATENT_GAN_KIND",
           "CheckpointError", "CheckpointNotFoundError", "GANNetworks", "checkpoint_file", "checkpoint_kind",
           "load_checkpoint", "load_gan_checkpoint", "load_gan_networks", "load_model", "load_state",
           "read_checkpoint"]
