"""The one switch that sizes every chapter: ``GF_MODE=fast|full``.

``fast`` is what CI runs on a CPU in seconds to minutes; ``full`` is what a reader runs on a GPU. The code path is
the same, only sizes and step counts change. Default: ``full`` when CUDA is available, else ``fast``.

Taught in chapter 1 (Shapes as distributions), where every chapter's setup cell first uses it.
"""
from __future__ import annotations

import os
import platform

import torch

MODES = ("fast", "full")


def current() -> str:
    """Return ``"fast"`` or ``"full"`` from the ``GF_MODE`` environment variable (default by device).

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


def choose(*, fast, full):
    """Return ``fast`` or ``full`` according to :func:`current`: ``steps = choose(fast=300, full=5000)``.

    Raises:
        ValueError: ``GF_MODE`` holds an unknown mode.

    Taught in chapter 1 (Shapes as distributions).
    """
    return fast if current() == "fast" else full


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
