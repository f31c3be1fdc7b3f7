"""gfcore: learning gradient fields for shape generation (ShapeGF, Cai et al. 2020), small and tested.

Submodules by job: ``fields`` (closed-form field), ``schedule`` (noise ladders), ``losses`` (denoising score
matching), ``sampling`` (annealed Langevin, priors), ``models``, ``data``, ``viz``, ``config`` (fast/full switch),
``utils`` (device, seeding).
"""
from gfcore import config, fields, losses, models, sampling, schedule, utils

__version__ = "0.1.0"

__all__ = ["config", "fields", "losses", "models", "sampling", "schedule", "utils", "__version__"]
