"""gfcore.data.normalize protocol helpers (PROTOCOLS, protocol_coordinates): the coordinates each table uses."""
import numpy as np
import pytest
import torch

from gfcore.data import Shapes3D
from gfcore.data import normalize as norm
from gfcore.metrics import chamfer_distance


def test_protocols_are_described():
    assert set(norm.PROTOCOLS) == {"pointflow", "shape_bbox", "shapegf_autoencoding"}
    assert "global" not in norm.PROTOCOLS["shape_bbox"]
    assert "training split" in norm.PROTOCOLS["pointflow"] and "de-normalised" in norm.PROTOCOLS["pointflow"]
    assert "test pool" in norm.PROTOCOLS["shapegf_autoencoding"]


def test_shapegf_autoencoding_coordinates_are_the_raw_points():
    ds = Shapes3D(["mug"], split="val", num_points=256, num_shapes=2, sample="first", pool="test")
    for i in range(2):
        item = ds[i]
        raw = norm.protocol_coordinates(item["points"], "shapegf_autoencoding", shift=item["shift"],
                                        scale=item["scale"])
        np.testing.assert_allclose(raw.numpy(), ds.raw_cloud(i)[10000:10256], rtol=1e-5, atol=1e-5)


def test_shape_bbox_coordinates_forget_shift_and_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 50, 3, generator=g, dtype=torch.float64)
    moved = x * torch.tensor([2.0, 0.5, 7.0], dtype=torch.float64).view(3, 1, 1) + 4.0
    a = norm.protocol_coordinates(x, "shape_bbox")
    torch.testing.assert_close(norm.protocol_coordinates(moved, "shape_bbox"), a)
    assert torch.allclose(a.abs().amax(dim=(1, 2)), torch.ones(3, dtype=torch.float64))


def test_the_same_clouds_score_differently_under_the_two_protocols():
    # a big shape and a small one: the global protocol keeps their sizes, the box protocol does not
    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, 64, 3, generator=g, dtype=torch.float64)
    b = a + 0.05 * torch.randn(2, 64, 3, generator=g, dtype=torch.float64)
    sizes = torch.tensor([4.0, 0.25], dtype=torch.float64).view(2, 1, 1)
    raw_a, raw_b = a * sizes, b * sizes
    stats = norm.global_stats(raw_a)
    glob = chamfer_distance(*(norm.protocol_coordinates(norm.apply_global(x, stats)[0], "pointflow",
                                                        shift=stats["shift"].double(),
                                                        scale=stats["scale"].double()) for x in (raw_a, raw_b)))
    box = chamfer_distance(norm.protocol_coordinates(raw_a, "shape_bbox"),
                           norm.protocol_coordinates(raw_b, "shape_bbox"))
    torch.testing.assert_close(glob, chamfer_distance(raw_a, raw_b))
    assert glob[0] / glob[1] > 100 and box[0] / box[1] < 10


def test_protocol_coordinates_rejects_bad_input():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="protocol must be one of"):
        norm.protocol_coordinates(x, "dpm")
    with pytest.raises(ValueError, match="pass the shift and scale"):
        norm.protocol_coordinates(x, "pointflow")
    with pytest.raises(ValueError, match="degenerate cloud"):
        norm.protocol_coordinates(x, "shape_bbox")
