"""gfcore.data.shapes3d: the procedural categories and the Shapes3D dataset."""
import math

import numpy as np
import pytest
import torch
from data_helpers import chamfer, check_item

from gfcore.data import normalize, shapes3d


def test_generate_shape_deterministic_and_varied():
    for c in shapes3d.CATEGORIES:
        a = shapes3d.generate_shape(c, 3, seed=0, num_points=3000)
        assert a.shape == (3000, 3) and a.dtype == np.float32 and np.isfinite(a).all()
        np.testing.assert_array_equal(a, shapes3d.generate_shape(c, 3, seed=0, num_points=3000))
        assert not np.allclose(a, shapes3d.generate_shape(c, 3, seed=1, num_points=3000))
    chairs = [shapes3d.generate_shape("chair", i, num_points=2000) for i in range(2)]
    ext = [np.ptp(c, axis=0) for c in chairs]
    assert not np.allclose(ext[0], ext[1], atol=1e-3)  # two chairs differ in their proportions
    with pytest.raises(ValueError, match="category"):
        shapes3d.generate_shape("sofa", 0)


def test_between_category_chamfer_larger_than_within():
    n = 512
    cats = ("chair", "airplane", "lamp", "table")
    clouds = {c: [normalize.shape_bbox(shapes3d.generate_shape(c, i, num_points=n))[0] for i in range(4)]
              for c in cats}
    within = [chamfer(a, b) for c in cats for i, a in enumerate(clouds[c]) for b in clouds[c][i + 1:]]
    between = [chamfer(a, b) for i, c in enumerate(cats) for d in cats[i + 1:] for a in clouds[c][:2]
               for b in clouds[d][:2]]
    assert np.mean(between) > 1.5 * np.mean(within)


def test_shapes3d_contract_and_sampling():
    ds = shapes3d.Shapes3D(categories=("chair", "table"), split="train", num_points=256, num_shapes=3, seed=0)
    assert len(ds) == 6 and ds.sample == "random" and ds.pool == "train"
    item = ds[4]
    check_item(ds, item, 256, 3)
    assert item["idx"] == 4 and item["label"] == 1
    assert ds[np.int64(4)]["idx"] == 4 and ds[torch.tensor(-1)]["idx"] == 5
    raw = ds.raw_cloud(4)
    recon = item["points"] * item["scale"] + item["shift"]
    # every reconstructed point is one of the raw train-pool points
    d = torch.cdist(recon.double(), torch.from_numpy(raw[:10000]).double())
    assert float(d.min(1).values.max()) < 1e-5
    # shape_bbox over the full cloud: the longest axis spans exactly [-1, 1] when normalised
    full = (torch.from_numpy(raw) - item["shift"]) / item["scale"]
    ext = full.amax(0) - full.amin(0)
    assert math.isclose(float(ext.max()), 2.0, rel_tol=1e-5)
    # training draws vary per access, with replacement
    assert not torch.equal(ds[4]["points"], ds[4]["points"])
    # a caller-seeded generator makes the draws reproducible
    kw = dict(categories="chair", num_points=64, num_shapes=2)
    a = shapes3d.Shapes3D(**kw, generator=torch.Generator().manual_seed(5))
    b = shapes3d.Shapes3D(**kw, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0]["points"], b[0]["points"]) and torch.equal(a[1]["points"], b[1]["points"])


def test_shapes3d_eval_fixed_and_splits_disjoint():
    val = shapes3d.Shapes3D(categories="lamp", split="val", num_points=128, shapes_per_category=20)
    assert val.sample == "first" and val.pool == "test" and len(val) == 2
    assert torch.equal(val[1]["points"], val[1]["points"])
    again = shapes3d.Shapes3D(categories="lamp", split="val", num_points=128, shapes_per_category=20)
    assert torch.equal(val[0]["points"], again[0]["points"])
    ranges = {s: {i for _, _, i in shapes3d.Shapes3D("lamp", split=s, shapes_per_category=20).items}
              for s in ("train", "val", "test")}
    assert ranges["train"].isdisjoint(ranges["val"]) and ranges["val"].isdisjoint(ranges["test"])
    assert len(ranges["train"] | ranges["val"] | ranges["test"]) == 20


def test_shapes3d_global_normalization_uses_train_stats():
    kw = dict(categories="mug", num_points=64, shapes_per_category=10, normalize="global")
    train = shapes3d.Shapes3D(split="train", **kw)
    test = shapes3d.Shapes3D(split="test", **kw)
    torch.testing.assert_close(train.stats["shift"], test.stats["shift"])
    torch.testing.assert_close(train.stats["scale"], test.stats["scale"])
    ref = normalize.global_stats([shapes3d.generate_shape("mug", i) for i in range(8)])
    torch.testing.assert_close(train.stats["scale"], ref["scale"])
    item = test[0]
    torch.testing.assert_close(item["shift"], train.stats["shift"])
    stats = {"shift": torch.zeros(1, 3), "scale": torch.full((1, 1), 2.0)}
    given = shapes3d.Shapes3D(split="val", stats=stats, **kw)
    assert float(given[0]["scale"]) == 2.0


def test_shapes3d_errors():
    with pytest.raises(ValueError, match="unknown categories entry 'sofa'"):
        shapes3d.Shapes3D(categories=("sofa",))
    with pytest.raises(ValueError, match="split"):
        shapes3d.Shapes3D(split="valid")
    with pytest.raises(ValueError, match="normalize"):
        shapes3d.Shapes3D(normalize="bbox")
    with pytest.raises(ValueError, match="sample"):
        shapes3d.Shapes3D(sample="fixed")
    with pytest.raises(ValueError, match="num_points"):
        shapes3d.Shapes3D(num_points=0)
    with pytest.raises(ValueError, match="exceeds"):
        shapes3d.Shapes3D(split="val", num_points=6000)
    with pytest.raises(ValueError, match="stats"):
        shapes3d.Shapes3D(stats={"shift": torch.zeros(1, 3), "scale": torch.ones(1, 1)})
    with pytest.raises(IndexError):
        shapes3d.Shapes3D(num_shapes=2)[5]


def test_default_draws_follow_the_global_rng():
    ds = shapes3d.Shapes3D(categories="chair", num_points=64, num_shapes=2)
    torch.manual_seed(123)
    a = ds[1]["points"]
    torch.manual_seed(123)
    assert torch.equal(a, ds[1]["points"])


def test_dataloader_collates_and_workers_differ():
    ds = shapes3d.Shapes3D(categories="table", num_points=32, num_shapes=4,
                           generator=torch.Generator().manual_seed(0))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["points"].shape == (4, 32, 3) and batch["shift"].shape == (4, 1, 3)
    assert batch["scale"].shape == (4, 1, 1) and batch["idx"].tolist() == [0, 1, 2, 3]
    # two workers, each shape once per worker: a shared generator copied into both would draw the same indices
    twice = torch.utils.data.ConcatDataset([ds, ds])
    loader = torch.utils.data.DataLoader(twice, batch_size=4, num_workers=2)
    first, second = list(loader)  # worker 0 serves items 0-3, worker 1 the same shapes again
    assert not torch.equal(first["points"], second["points"])
