"""Distances between point clouds and the metrics built on them, in plain PyTorch (any device, batched, chunked).

- ``chamfer``: :func:`chamfer_distance` (PointFlow's squared convention, or plain), nearest-neighbour helpers.
- ``transport``: :func:`emd` with ``method="exact"`` (optimal assignment), ``"approxmatch"`` (Fan et al.'s
  approximate matching, what published tables used) or ``"sinkhorn"`` (entropic, log domain), Euclidean or
  squared ground cost.
- ``generation``: :func:`pairwise_cd`, :func:`pairwise_emd`, and from their matrices :func:`mmd`,
  :func:`coverage`, :func:`one_nna`; :func:`jsd` on PointFlow's grid; :func:`evaluate` for the whole table.

Pure tensor functions: no files, no models, no data sets. The coordinates the clouds come in define the
protocol (``gfcore.data.normalize.PROTOCOLS``); the auto-encoding protocol over a model and a data set lives in
``gfcore.evaluation``.

Taught in chapter 6 (Measuring quality).
"""
from gfcore.metrics import chamfer, generation, transport
from gfcore.metrics.chamfer import chamfer_distance, nearest_distance
from gfcore.metrics.generation import (
    PAPER_SCALES,
    coverage,
    evaluate,
    format_table,
    jsd,
    mmd,
    one_nna,
    pairwise_cd,
    pairwise_emd,
)
from gfcore.metrics.transport import (
    APPROXMATCH_LEVELS,
    EMD_COSTS,
    EMD_METHODS,
    emd,
    emd_approxmatch,
    emd_exact,
    emd_sinkhorn,
)

__all__ = ["APPROXMATCH_LEVELS", "EMD_COSTS", "EMD_METHODS", "PAPER_SCALES", "chamfer", "chamfer_distance",
           "coverage", "emd", "emd_approxmatch", "emd_exact", "emd_sinkhorn", "evaluate", "format_table",
           "generation", "jsd", "mmd", "nearest_distance", "one_nna", "pairwise_cd", "pairwise_emd", "transport"]
