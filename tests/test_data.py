"""gfcore.data: the registry (build_dataset) and the dataset contract of gfcore.data.base."""
import pytest

import gfcore.data as gd
from gfcore.data.base import PointCloudDataset


def test_build_dataset_registry(pc15k):
    assert set(gd.DATASETS) == {"digits2d", "glyphs2d", "shapes3d", "shapenet"}
    ds = gd.build_dataset("shapes3d", "val", categories=["airplane"], num_points=64, shapes_per_category=10)
    assert isinstance(ds, PointCloudDataset) and ds.split == "val" and len(ds) == 1
    ds = gd.build_dataset("digits2d", "test", num_points=32, source="sklearn")
    assert ds.dim == 2
    ds = gd.build_dataset("shapenet", "train", root=str(pc15k), categories=["chair"], num_points=16)
    assert len(ds) == 3
    with pytest.raises(ValueError, match="digits2d"):
        gd.build_dataset("modelnet", "train")


@pytest.mark.parametrize("name,kwargs,error,match", [
    ("shapes3d", {"num_points": True}, TypeError, "num_points must be an int"),
    ("shapes3d", {"num_shapes": 0}, ValueError, "num_shapes must be >= 1"),
    ("shapes3d", {"shapes_per_category": 5}, ValueError, "shapes_per_category must be >= 10"),
    ("shapes3d", {"categories": ["chair", "chair"]}, ValueError, "repeats"),
    ("shapes3d", {"categories": []}, ValueError, "at least one"),
    ("shapes3d", {"pool": "val"}, ValueError, "pool must be one of"),
    ("digits2d", {"source": "sklearn", "cloud_size": 2}, ValueError, "cloud_size must be >= 3"),
    ("digits2d", {"source": "sklearn", "num_shapes": 1.5}, TypeError, "num_shapes must be an int or None"),
    ("glyphs2d", {"variants_per_char": 4}, ValueError, "variants_per_char must be >= 10"),
])
def test_dataset_arguments_are_checked_up_front(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        gd.build_dataset(name, "train", **kwargs)


def test_view_gives_the_other_pool_of_the_same_shapes():
    import torch

    ds = gd.build_dataset("shapes3d", "val", categories=["chair", "lamp"], num_points=64, shapes_per_category=20)
    assert (ds.pool, ds.sample) == ("test", "first")
    inputs = ds.view(pool="train", num_points=128)
    assert (inputs.pool, inputs.sample, inputs.num_points, len(inputs)) == ("train", "first", 128, len(ds))
    assert (ds.pool, ds.num_points) == ("test", 64)                          # the original is unchanged
    a, b = inputs[3], ds[3]
    assert a["idx"] == b["idx"] and a["label"] == b["label"]
    assert torch.equal(a["shift"], b["shift"]) and torch.equal(a["scale"], b["scale"])
    assert not torch.equal(a["points"][:64], b["points"])                     # another sample of the same shape
    full = torch.from_numpy(ds.raw_cloud(3))
    torch.testing.assert_close(a["points"] * a["scale"] + a["shift"], full[:128])
    torch.testing.assert_close(ds.view(pool="train")[3]["points"], a["points"][:64])
    assert ds.view(sample="random")[3]["points"].shape == (64, 3)
    with pytest.raises(ValueError, match="exceeds the test pool"):
        ds.view(num_points=6000)
    with pytest.raises(ValueError, match="pool must be one of"):
        ds.view(pool="val")
