"""gfcore.evaluation: the official auto-encoding protocol (train-pool sample in, test-pool sample as reference,
original coordinates, oracle beside), checked with a stand-in model and a tiny trained ShapeGF."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gfcore import evaluation
from gfcore.data import Shapes3D
from gfcore.evaluation import evaluate_reconstruction, format_table, main_eval, protocol_data, spread_indices
from gfcore.metrics import chamfer_distance, emd
from gfcore.models import ShapeGF

ROOT = Path(__file__).resolve().parent.parent
N = 96
KW = dict(categories=["chair", "mug"], num_points=N, shapes_per_category=20)


class Echo(torch.nn.Module):
    """A stand-in auto-encoder that returns the points it was given (a perfect copy of its input)."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def reconstruct(self, points, num_points, **kwargs):
        self.seen.append(points.clone())
        return points[:, :num_points].clone()


@pytest.fixture(scope="module")
def pools():
    return protocol_data("shapes3d", "val", **KW)


def test_protocol_data_gives_two_samples_of_the_same_shapes(pools):
    inputs, references = pools
    assert (inputs.pool, inputs.sample, references.pool, references.sample) == ("train", "first", "test", "first")
    assert len(inputs) == len(references) == 4
    for i in range(len(inputs)):
        a, b = inputs[i], references[i]
        assert a["idx"] == b["idx"] and a["label"] == b["label"]
        torch.testing.assert_close(a["shift"], b["shift"])
        torch.testing.assert_close(a["scale"], b["scale"])
        assert not torch.equal(a["points"], b["points"])
    # kwargs of a training config may carry their own pool/sample/num_points: the protocol's win
    inp, ref = protocol_data("shapes3d", "val", **{**KW, "pool": "auto", "sample": "random"})
    assert (inp.pool, ref.pool, inp.sample) == ("train", "test", "first")


def test_a_copy_of_the_input_scores_exactly_the_oracle(pools):
    inputs, references = pools
    model = Echo()
    res = evaluate_reconstruction(model, inputs, references, emd_method="exact")
    # the model saw the train-pool points, normalised
    seen = torch.cat(model.seen)
    torch.testing.assert_close(seen, torch.stack([inputs[i]["points"] for i in range(4)]))
    torch.testing.assert_close(res["cd"], res["oracle_cd"])
    torch.testing.assert_close(res["emd"], res["oracle_emd"])
    assert res["CD/oracle"] == pytest.approx(1.0) and res["EMD/oracle"] == pytest.approx(1.0)


def test_oracle_is_the_chamfer_of_the_two_raw_pools(pools):
    inputs, references = pools
    res = evaluate_reconstruction(Echo(), inputs, references, emd_method="exact")
    raw_in = torch.stack([torch.from_numpy(inputs.raw_cloud(i)[:N]) for i in range(4)]).double()
    raw_ref = torch.stack([torch.from_numpy(references.raw_cloud(i)[10000:10000 + N]) for i in range(4)]).double()
    torch.testing.assert_close(res["oracle_cd"], chamfer_distance(raw_in, raw_ref), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(res["oracle_emd"], emd(raw_in, raw_ref), rtol=1e-4, atol=1e-6)
    assert res["oracle-CD"] == pytest.approx(float(res["oracle_cd"].mean()))
    assert res["idx"].tolist() == [0, 1, 2, 3] and res["label"].tolist() == [0, 0, 1, 1]


def test_tiny_shapegf_ratios_are_consistent_and_reproducible(pools):
    inputs, references = pools
    torch.manual_seed(0)
    model = ShapeGF(dim=3, zdim=8, hidden=16, n_blocks=1).eval()
    kw = dict(emd_method="approxmatch", steps_per_sigma=1, sigmas=torch.tensor([1.0, 0.1]), batch_size=3)
    res = evaluate_reconstruction(model, inputs, references, **kw)
    assert res["protocol"] == "shapegf_autoencoding" and res["num_shapes"] == 4 and res["num_points"] == N
    for key in ("cd", "oracle_cd", "emd", "oracle_emd"):
        assert res[key].shape == (4,) and torch.isfinite(res[key]).all()
    assert res["CD/oracle"] == pytest.approx(res["CD"] / res["oracle-CD"])
    assert res["EMD/oracle"] == pytest.approx(res["EMD"] / res["oracle-EMD"])
    assert res["CD/oracle"] > 1.0                                   # an untrained model is no oracle
    again = evaluate_reconstruction(model, inputs, references, **kw)
    torch.testing.assert_close(again["cd"], res["cd"])
    # one data set: both pools through view(); the same numbers
    single = evaluate_reconstruction(model, Shapes3D(split="val", **KW), **kw)
    torch.testing.assert_close(single["cd"], res["cd"])
    text = format_table(res)
    assert "shapegf_autoencoding" in text and "CD x1e4" in text and "EMD x1e2 (approxmatch, euclidean)" in text
    assert f"{res['CD/oracle']:.2f}x" in text and f"{res['CD'] * 1e4:.3f}" in text


def test_num_shapes_spreads_over_the_split(pools):
    assert spread_indices(10, 3) == [0, 4, 9] and spread_indices(5, None) == [0, 1, 2, 3, 4]
    res = evaluate_reconstruction(Echo(), *pools, num_shapes=2, emd_method=None)
    assert res["idx"].tolist() == [0, 3] and res["label"].tolist() == [0, 1]        # both categories
    assert "EMD" not in res and "emd" not in res


def test_refuses_what_would_flatter_the_model(pools):
    inputs, references = pools
    with pytest.raises(ValueError, match="both come from the 'test' pool"):
        evaluate_reconstruction(Echo(), references, references)
    batch = evaluation.first_items(references, 4)
    with pytest.raises(ValueError, match="are the same points"):
        evaluate_reconstruction(Echo(), batch, {k: v.clone() for k, v in batch.items()})
    with pytest.raises(ValueError, match="draws its points at random"):
        evaluate_reconstruction(Echo(), inputs.view(sample="random"), references)
    other = evaluation.first_items(references, 4)
    other["idx"] = other["idx"].flip(0)
    with pytest.raises(ValueError, match="different shapes"):
        evaluate_reconstruction(Echo(), evaluation.first_items(inputs, 4), other)


def test_mismatched_point_counts_raise_for_the_emd_only(pools):
    inputs, references = pools
    small = references.view(num_points=64)
    with pytest.raises(ValueError, match="mismatched point counts: inputs have N=96 points, references N=64"):
        evaluate_reconstruction(Echo(), inputs, small)
    res = evaluate_reconstruction(Echo(), inputs, small, emd_method=None)
    assert res["num_points"] == 64
    with pytest.raises(ValueError, match="emd_method must be one of"):
        evaluate_reconstruction(Echo(), inputs, references, emd_method="hungarian")
    with pytest.raises(TypeError, match="references=None needs a gfcore data set"):
        evaluate_reconstruction(Echo(), evaluation.first_items(inputs, 2))


def test_main_eval_from_a_trained_checkpoint(tmp_path):
    from gfcore.train import AutoEncoderConfig, train_autoencoder

    cfg = AutoEncoderConfig.from_yaml(ROOT / "configs" / "tiny.yaml")
    cfg.max_steps, cfg.val_every = 2, None
    train_autoencoder(cfg, out_dir=tmp_path / "run", progress=False)
    out = main_eval(tmp_path / "run", num_points=64, emd_method="exact", disable=True, device="cpu")
    assert out["json_path"] == tmp_path / "run" / "checkpoints" / "eval_val.json"
    assert not out["json_path"].exists()                 # the command line writes it, not the library
    rec = out["record"]
    json.dumps(rec)
    assert rec["protocol"] == "shapegf_autoencoding" and rec["split"] == "val" and rec["dataset"] == "shapes3d"
    assert rec["num_shapes"] == 2 and len(rec["cd"]) == 2 and rec["emd_method"] == "exact"
    assert "oracle" in out["table"] and "shapes3d val, step 2" in out["table"]
    np.testing.assert_allclose(rec["CD/oracle"], rec["CD"] / rec["oracle-CD"])
    with pytest.raises(ValueError, match="has none"):
        main_eval(tmp_path / "run", data=str(tmp_path), emd_method=None)
    with pytest.raises(FileNotFoundError):
        main_eval(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="exactly one"):
        main_eval(tmp_path / "run", pretrained="digits2d")
    with pytest.raises(ValueError, match="exactly one"):
        main_eval()
