"""gfcore.data.shapenet: the ShapeNetCore.v2.PC15k loader, on a fake tree (conftest.py's pc15k)."""
import numpy as np
import pytest
import torch
from data_helpers import check_item

from gfcore.data import normalize, shapenet


def test_pc15k_pools_and_normalization(pc15k):
    train = shapenet.ShapeNetPC15k(pc15k, categories=("airplane",), split="train", num_points=100)
    assert len(train) == 3 and train.sample == "random" and train.pool == "train"
    item = train[0]
    check_item(train, item, 100, 3)
    raw = np.load(train.files[0])
    recon = (item["points"] * item["scale"] + item["shift"]).numpy()
    d = np.abs(recon[:, None, :] - raw[None, :10000]).sum(-1).min(1)
    assert d.max() < 1e-4  # every drawn point comes from the train pool (0..9999)
    lo, hi = raw.min(0), raw.max(0)
    np.testing.assert_allclose(item["shift"].numpy()[0], (lo + hi) / 2, rtol=1e-5)
    np.testing.assert_allclose(float(item["scale"]), (hi - lo).max() / 2, rtol=1e-5)
    assert not torch.equal(train[0]["points"], train[0]["points"])
    val = shapenet.ShapeNetPC15k(pc15k, categories="airplane", split="val", num_points=100)
    v = val[1]
    raw = np.load(val.files[1])
    np.testing.assert_allclose((v["points"] * v["scale"] + v["shift"]).numpy(), raw[10000:10100], atol=1e-5)
    assert torch.equal(v["points"], val[1]["points"])
    own = shapenet.ShapeNetPC15k(pc15k, categories="airplane", split="val", num_points=100, pool="train")
    back = own[1]["points"] * own[1]["scale"] + own[1]["shift"]
    np.testing.assert_allclose(back.numpy(), raw[:100], atol=1e-5)


def test_pc15k_categories_all_and_shuffle(pc15k):
    both = shapenet.ShapeNetPC15k(pc15k, categories="all", split="test", num_points=10)
    assert len(both) == 6 and both.synsets == ["02691156", "03001627"]
    assert both.categories == ["airplane", "chair"]
    assert sorted(both.labels) == [0, 0, 0, 1, 1, 1]
    names = [(f.split("/")[-3], f.split("/")[-1]) for f in both.files]
    assert names != sorted(names)  # shuffled with the fixed seed
    again = shapenet.ShapeNetPC15k(pc15k, categories=["airplane", "chair"], split="test", num_points=10)
    assert again.files == both.files
    by_id = shapenet.ShapeNetPC15k(pc15k, categories=["03001627"], split="val", num_points=10)
    assert by_id.categories == ["chair"]


def test_pc15k_global_stats_from_train(pc15k):
    val = shapenet.ShapeNetPC15k(pc15k, categories="chair", split="val", num_points=50, normalize="global")
    train_files = sorted((pc15k / "03001627" / "train").glob("*.npy"))
    ref = normalize.global_stats([np.load(f) for f in train_files])
    torch.testing.assert_close(val.stats["shift"], ref["shift"])
    torch.testing.assert_close(val.stats["scale"], ref["scale"])
    item = val[0]
    raw = np.load(val.files[0])[10000:10050]
    np.testing.assert_allclose(item["points"].numpy(), (raw - ref["shift"].numpy()) / ref["scale"].numpy(),
                               rtol=1e-4, atol=1e-5)


def test_pc15k_errors(pc15k, tmp_path):
    with pytest.raises(FileNotFoundError, match="PointFlow repository README") as err:
        shapenet.ShapeNetPC15k(tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    with pytest.raises(FileNotFoundError, match="02958343"):
        shapenet.ShapeNetPC15k(pc15k, categories="car")
    with pytest.raises(ValueError, match="unknown category"):
        shapenet.ShapeNetPC15k(pc15k, categories="boat")
    with pytest.raises(ValueError, match="split"):
        shapenet.ShapeNetPC15k(pc15k, split="valid")
    empty = tmp_path / "empty"
    (empty / "02691156" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .npy"):
        shapenet.ShapeNetPC15k(empty)
    with pytest.raises(ValueError, match="no synset folders"):
        shapenet.ShapeNetPC15k(tmp_path / "empty" / "02691156" / "train", categories="all")
    np.save(pc15k / "02691156" / "train" / "bad.npy", np.zeros((100, 3), np.float32))
    with pytest.raises(ValueError, match="bad.npy"):
        shapenet.ShapeNetPC15k(pc15k)
