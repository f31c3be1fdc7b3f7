"""The one switch that sizes every chapter: ``GF_MODE=fast|full|paper``.

* ``fast``: what CI runs on a CPU, a few minutes per chapter at most;
* ``full``: what the published book shows, a run that a 2-core CPU finishes in about an hour per chapter at most
  (minutes on a GPU);
* ``paper``: the paper's sizes, for a GPU (hours per chapter; each chapter says how long).

The code path is the same, only sizes and step counts change. Default: ``full`` when CUDA is available, else
``fast``.

Taught in chapter 1 (Shapes as distributions), where every chapter's setup cell first uses it.
"""
from __future__ import annotations

import os
import platform

import torch

MODES = ("fast", "full", "paper")


def current() -> str:
    """Return ``"fast"``, ``"full"`` or ``"paper"`` from the ``GF_MODE`` environment variable (default by device).

    Returns:
        ``"full"`` when ``GF_MODE`` is unset/empty and CUDA is available, ``"fast"`` when it is unset and CUDA
        is not; otherwise the (case- and space-insensitive) value of ``GF_MODE``.

    Raises:
        ValueError: ``GF_MODE`` is set to something else.

    Taught in chapter 1 (Shapes as distributions).
    """
    value = os.environ.get("GF_MODE", "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "fast"
    if value not in MODES:
        raise ValueError(f"GF_MODE must be one of {MODES}, got {value!r}")
    return value


_UNSET = object()


def choose(*, fast, full, paper=_UNSET):
    """Return ``fast``, ``full`` or ``paper`` according to :func:`current`: ``steps = choose(fast=300, full=5000)``.

    Args:
        fast, full: the values for those modes.
        paper: the value for ``GF_MODE=paper`` (the paper's sizes); default: ``full``, for a size that the paper
            does not change.

    Raises:
        ValueError: ``GF_MODE`` holds an unknown mode.

    Taught in chapter 1 (Shapes as distributions).
    """
    mode = current()
    if mode == "fast":
        return fast
    if mode == "paper" and paper is not _UNSET:
        return paper
    return full


def describe(device=None) -> str:
    """One line naming the mode, device and versions, printed at the top of every chapter.

    Args:
        device: the device to name (default: :func:`gfcore.utils.default_device`).

    Returns:
        ``"GF_MODE=fast | device=cpu (x86_64) | torch 2.x | python 3.x"``.

    Taught in chapter 1 (Shapes as distributions).
    """
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return (f"GF_MODE={current()} | device={device} ({name}) | torch {torch.__version__} | "
            f"python {platform.python_version()}")
