"""Shared by the gfcore.data tests: the item contract and a quick Chamfer distance."""
import numpy as np
import torch
from scipy.spatial import cKDTree


def check_item(ds, item, num_points, dim):
    assert set(item) >= {"points", "shift", "scale", "idx", "label"}
    assert item["points"].shape == (num_points, dim) and item["points"].dtype == torch.float32
    assert item["shift"].shape == (1, dim) and item["shift"].dtype == torch.float32
    assert item["scale"].shape == (1, 1) and item["scale"].dtype == torch.float32
    assert isinstance(item["idx"], int) and isinstance(item["label"], int)
    assert ds.dim == dim
    assert torch.isfinite(item["points"]).all()


def chamfer(a, b):
    """Squared-distance Chamfer (sum of the two means) by k-d trees (quick on a busy CPU)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float((cKDTree(b).query(a)[0] ** 2).mean() + (cKDTree(a).query(b)[0] ** 2).mean())
