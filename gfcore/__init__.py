"""gfcore: learning gradient fields for shape generation (ShapeGF, Cai et al. 2020), small and tested.

Submodules by job: ``fields`` (closed-form field), ``schedule`` (noise ladders, learning-rate schedules),
``losses`` (denoising score matching), ``sampling`` (annealed Langevin, priors), ``models`` (encoder, decoders,
latent GAN networks, toy network), ``data`` (2D/3D shapes, digits, ShapeNet PC15k), ``metrics``, ``evaluation``
(reconstruction and generation protocols), ``surface`` (surfaces from the field: distance, ray casting, marching
cubes), ``train`` (the auto-encoder's and the latent GAN's trainers, checkpoints, run folders), ``checkpoint_io``
(reading checkpoints safely), ``pretrained`` (shipped weights and model cards), ``viz`` (matplotlib plots),
``viz3d`` (pyvista renders), ``diagrams`` (schematic figures of the method, drawn by code), ``mode`` (the
fast/full switch), ``utils`` (device, seeding) and ``cli`` (the command line, ``python -m gfcore``). The README's
layout table lists the same modules (``tests/test_layout.py`` keeps both in step with the tree).

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
