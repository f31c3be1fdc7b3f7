"""gfcore: learning gradient fields for shape generation (ShapeGF, Cai et al. 2020), small and tested.

Submodules by job: ``fields`` (closed-form field), ``schedule`` (noise ladders), ``losses`` (denoising score
matching), ``sampling`` (annealed Langevin, priors), ``models`` (encoder, decoders, toy network), ``data``
(2D/3D shapes, digits, ShapeNet PC15k), ``metrics``, ``train`` (trainer, checkpoints), ``viz`` (plots and 3D
renders), ``config`` (the fast/full switch), ``utils`` (device, seeding); ``python -m gfcore`` is the CLI.
"""
__version__ = "0.1.0"

from gfcore import config, data, fields, losses, metrics, models, sampling, schedule, train, utils, viz  # noqa: E402

__all__ = ["config", "data", "fields", "losses", "metrics", "models", "sampling", "schedule", "train", "utils",
           "viz", "__version__"]
