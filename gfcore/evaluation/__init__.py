"""Evaluating trained models on held-out shapes, in the units of the published tables.

- :mod:`gfcore.evaluation.reconstruction`: an auto-encoder under ShapeGF's official auto-encoding protocol (encode
  the train-pool sample, score the reconstruction against the test-pool sample, beside the oracle);
  ``python -m gfcore eval`` on an auto-encoder checkpoint (:func:`main_eval`).
- :mod:`gfcore.evaluation.generation`: a latent GAN's new shapes against a held-out split (MMD, COV, 1-NNA);
  ``python -m gfcore eval`` on a latent-GAN checkpoint (:func:`main_eval_generation`).

Nothing here writes files. Taught in chapters 5 (The full 3D model), 6 (Measuring quality) and 7 (Generating new
shapes).
"""
from gfcore.evaluation import generation, reconstruction
from gfcore.evaluation.generation import GENERATION_PROTOCOL, evaluate_generation, main_eval_generation
from gfcore.evaluation.reconstruction import (
    CD_SCALE,
    EMD_SCALE,
    PROTOCOL,
    evaluate_reconstruction,
    first_items,
    format_table,
    main_eval,
    protocol_data,
    spread_indices,
)

__all__ = ["CD_SCALE", "EMD_SCALE", "GENERATION_PROTOCOL", "PROTOCOL", "evaluate_generation",
           "evaluate_reconstruction", "first_items", "format_table", "generation", "main_eval",
           "main_eval_generation", "protocol_data", "reconstruction", "spread_indices"]
