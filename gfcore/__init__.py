"""gfcore: learning gradient fields for shape generation (ShapeGF, Cai et al. 2020), small and tested.

Submodules by job: ``fields`` (closed-form field), ``schedule`` (noise ladders, learning-rate schedules),
``losses`` (denoising score matching), ``sampling`` (annealed Langevin, priors), ``models`` (encoder, decoders,
toy network), ``data`` (2D/3D shapes, digits, ShapeNet PC15k), ``metrics``, ``evaluation`` (reconstruction
protocols), ``surface`` (surfaces from the field), ``train`` (trainer, checkpoints, run folders), ``pretrained``
(shipped weights), ``viz`` (matplotlib plots), ``viz3d`` (pyvista renders) and ``diagrams`` (schematic figures of
the method, drawn by code), ``mode`` (the fast/full switch),
``utils`` (device, seeding); ``python -m gfcore`` is the CLI.

``import gfcore`` is cheap: a submodule is imported the first time it is used (``gfcore.fields``, or
``import gfcore.fields``), as scipy does, so plotting libraries load only when plots are drawn.
"""
import importlib as _importlib

from gfcore._version import __version__

_SUBMODULES = ("data", "diagrams", "evaluation", "fields", "losses", "metrics", "mode", "models", "pretrained",
               "sampling", "schedule", "surface", "train", "utils", "viz", "viz3d")

__all__ = [*_SUBMODULES, "__version__"]


def __getattr__(name: str):
    """Import the submodule ``gfcore.<name>`` on first access (PEP 562)."""
    if name in _SUBMODULES:
        return _importlib.import_module(f"gfcore.{name}")
    raise AttributeError(f"module 'gfcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
