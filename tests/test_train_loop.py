"""gfcore.train.loop: train_autoencoder learns, resumes exactly, and names the step that fails."""
import math

import pytest
import torch
from train_helpers import Circles, flat_state, tiny

from gfcore.evaluation import evaluate_reconstruction
from gfcore.models import ShapeGF
from gfcore.train import RunDir, train_autoencoder
from gfcore.train import loop as train_loop


# -- training -------------------------------------------------------------------------------------------------
def test_training_lowers_loss_and_improves_reconstruction():
    torch.set_num_threads(1)
    cfg = tiny(max_steps=200, log_every=20, val_every=200, lr_schedule="constant")
    data = Circles(n=16)
    torch.manual_seed(cfg.seed)
    untrained = ShapeGF(**cfg.model_kwargs())
    kw = dict(num_shapes=8, steps_per_sigma=3, emd_method=None)      # two random draws of each circle
    cd0 = evaluate_reconstruction(untrained, data, data, **kw)["CD"]
    records = []
    res = train_autoencoder(cfg, train_set=data, progress=False, callback=records.append)
    assert not res.model.training and res.step == 200 and res.out_dir is None
    losses = [r["loss"] for r in res.history if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert len(res.history[0]["loss_per_sigma"]) == cfg.num_sigmas
    assert records == res.history
    val = res.history[-1]
    assert math.isfinite(val["val_chamfer"]) and 0 < val["val_chamfer_oracle"] < val["val_chamfer"]
    out = evaluate_reconstruction(res.model, data, data, **kw)
    cd1 = out["CD"]
    assert cd1 < 0.1 * cd0 and cd1 < 0.3, (cd0, cd1, out["oracle-CD"])


class _Stop(Exception):
    pass


@pytest.mark.parametrize("ema", [None, 0.9])
def test_resume_gives_the_same_weights(tmp_path, ema):
    """2N steps straight == N steps, a crash, then resume to 2N (official lr schedule, EMA, RNG-drawing data)."""
    cfg = tiny(max_steps=8, ckpt_every=4, log_every=1, ema_decay=ema)
    straight = train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path / "a", progress=False)

    def crash(record):
        if record["step"] == 5:          # after the step-4 checkpoint, mid-epoch
            raise _Stop

    with pytest.raises(_Stop):
        train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path / "b", progress=False, callback=crash)
    resumed = train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path / "b", resume=True, progress=False)
    a, b = flat_state(straight.model), flat_state(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    def untimed(records):
        return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in records]

    assert untimed(resumed.history) == untimed(straight.history)
    files = [RunDir(tmp_path / run).read_metrics() for run in "ab"]
    assert untimed(files[0]) == untimed(files[1]) == untimed(straight.history)
    ca = torch.load(RunDir(tmp_path / "a").last, weights_only=True)
    cb = torch.load(RunDir(tmp_path / "b").last, weights_only=True)
    for group_a, group_b in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values()):
        assert torch.equal(group_a["exp_avg_sq"], group_b["exp_avg_sq"])


def test_nan_data_names_the_step():
    with pytest.raises(ValueError, match=r"step \d+: the batch holds NaN"):
        train_autoencoder(tiny(max_steps=8), train_set=Circles(nan_item=3), progress=False)


def test_nan_loss_names_the_step(monkeypatch):
    import gfcore.models.shapegf as shapegf_module

    real = shapegf_module.dsm_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, sigma = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 3 else loss), sigma

    monkeypatch.setattr(shapegf_module, "dsm_loss", poisoned)
    with pytest.raises(FloatingPointError, match="step 3: the loss is nan"):
        train_autoencoder(tiny(max_steps=8), train_set=Circles(), progress=False)


def test_a_bug_in_validation_is_not_swallowed(monkeypatch):
    """Only the sampler's ValueError becomes a NaN record; any other error stops the run."""
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(train_loop, "evaluate_reconstruction", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        train_autoencoder(tiny(max_steps=4, val_every=2), train_set=Circles(), progress=False)


def _count_host_reads(monkeypatch):
    """Count the reads of tensor values (``bool``, ``item``, ``tolist``, ``float``, ``int``) made by gfcore's own
    code: on a GPU each waits for the device."""
    import sys

    counts = {"n": 0}
    for name in ("__bool__", "item", "tolist", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def counting(self, *args, _real=real, **kwargs):
            if "/gfcore/" in sys._getframe(1).f_code.co_filename.replace("\\", "/"):
                counts["n"] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts


def test_training_steps_do_not_wait_for_the_device(monkeypatch):
    """Between two log records a training step reads no tensor value on the host (the batch and the loss are
    checked on the device, read at the next record): the count of reads does not grow with the steps."""
    counts = _count_host_reads(monkeypatch)
    reads = []
    for steps in (3, 9):
        counts["n"] = 0
        # 80 items: all steps in one epoch (the CPU index sampler reads its permutation once per epoch)
        train_autoencoder(tiny(max_steps=steps, log_every=100, ckpt_every=100), train_set=Circles(n=80),
                          progress=False)
        reads.append(counts["n"])
    assert reads[0] > 0, "the counter sees the reads of the log record"
    assert reads[1] == reads[0], reads


def test_resume_reads_the_checkpoint_on_the_cpu(tmp_path, monkeypatch):
    """Optimizer state loaded with map_location=<the GPU> would leave Adam's step counters there, and every step
    would then read each of them from the device; on the CPU, load_state_dict puts each tensor where it belongs."""
    cfg = tiny(max_steps=4)
    train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path / "run", progress=False)
    seen = []
    real = train_loop.load_checkpoint
    monkeypatch.setattr(train_loop, "load_checkpoint", lambda path, **kw: seen.append(kw) or real(path, **kw))
    res = train_autoencoder(tiny(max_steps=8), train_set=Circles(), out_dir=tmp_path / "run", resume=True,
                            progress=False)
    assert res.step == 8 and seen == [{"map_location": "cpu"}]


def test_failed_validation_is_recorded_not_fatal(monkeypatch):
    def diverge(*args, **kwargs):
        raise ValueError("Langevin diverged at level 3")

    monkeypatch.setattr(train_loop, "evaluate_reconstruction", diverge)
    with pytest.warns(RuntimeWarning, match="validation failed"):
        res = train_autoencoder(tiny(max_steps=4, val_every=2), train_set=Circles(), progress=False)
    vals = [r["val_chamfer"] for r in res.history if "val_chamfer" in r]
    assert res.step == 4 and len(vals) == 2 and all(math.isnan(v) for v in vals)


def test_resume_needs_a_run_folder():
    with pytest.raises(ValueError, match="resume=True needs out_dir"):
        train_autoencoder(tiny(), train_set=Circles(), resume=True, progress=False)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="max_steps or epochs"):
        train_autoencoder(tiny(max_steps=None), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="dim=2 but config.dim=3"):
        train_autoencoder(tiny(dim=3), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        train_autoencoder(tiny(batch_size=32), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="config.dataset is not set"):
        train_autoencoder(tiny(), progress=False)


def test_epochs_set_the_run_length():
    res = train_autoencoder(tiny(max_steps=None, epochs=2, log_every=1), train_set=Circles(n=16), progress=False)
    assert res.step == 4 and res.history[-1]["epoch"] == 2.0


def test_validation_follows_the_official_protocol():
    """A gfcore data set validates on its train-pool sample in, its test-pool sample as the reference."""
    from gfcore.data import build_dataset

    data = dict(categories=["chair", "lamp"], num_points=64, shapes_per_category=10)
    cfg = tiny(dim=3, max_steps=2, val_every=2, val_shapes=2, val_num_points=48, dataset="shapes3d",
               dataset_kwargs=data)
    inputs, references = train_loop._validation_batches(build_dataset("shapes3d", "val", **data), cfg)
    assert inputs["points"].shape == references["points"].shape == (2, 48, 3)
    assert inputs["label"].tolist() == [0, 1]                         # spread over the set: both categories
    assert torch.equal(inputs["idx"], references["idx"]) and torch.equal(inputs["shift"], references["shift"])
    assert not torch.equal(inputs["points"], references["points"])
    res = train_autoencoder(cfg, progress=False)
    record = res.history[-1]
    assert math.isfinite(record["val_chamfer"]) and record["val_chamfer_oracle"] > 0


# -- init_from: a fine-tuning stage ---------------------------------------------------------------------------
def test_init_from_starts_at_the_checkpoints_weights(tmp_path):
    """A fine-tuning run starts from the raw weights of the run it names (checkpoint or run folder), not from the
    initialisation; with lr ~ 0 it ends where it started."""
    first = train_autoencoder(tiny(max_steps=8), train_set=Circles(), out_dir=tmp_path / "a", progress=False)
    raw = torch.load(RunDir(tmp_path / "a").last, weights_only=True)["model"]
    fresh = dict(ShapeGF(**tiny().model_kwargs()).named_parameters())
    for source in (tmp_path / "a", RunDir(tmp_path / "a").last):
        second = train_autoencoder(tiny(max_steps=1, lr=1e-12, init_from=str(source)), train_set=Circles(),
                                   progress=False)
        got = dict(second.model.named_parameters())      # parameters only: a train step moves BN statistics
        for k in got:
            assert torch.allclose(got[k], raw[k], atol=1e-6), k
        assert any(not torch.allclose(got[k], fresh[k]) for k in fresh)
    assert first.step == 8


def test_init_from_a_shipped_model_and_bad_sources(tmp_path):
    from gfcore import pretrained

    card = pretrained.card("digits2d")
    cfg = tiny(**card["model_config"], max_steps=1, lr=1e-12, init_from="pretrained:digits2d")
    res = train_autoencoder(cfg, train_set=Circles(n=8), progress=False)
    shipped = dict(pretrained.load("digits2d", device="cpu").named_parameters())
    got = dict(res.model.named_parameters())
    assert got.keys() == shipped.keys()
    assert all(torch.allclose(got[k], shipped[k], atol=1e-6) for k in got)
    with pytest.raises(ValueError, match="different architecture: .*hidden"):
        train_autoencoder(tiny(init_from="pretrained:digits2d"), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="unknown|not one of|available"):
        train_autoencoder(tiny(init_from="pretrained:nope"), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="not an auto-encoder"):
        train_autoencoder(tiny(init_from="pretrained:shapes3d-gen"), train_set=Circles(), progress=False)
    with pytest.raises(FileNotFoundError):
        train_autoencoder(tiny(init_from=str(tmp_path / "missing.pt")), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="init_from"):
        tiny(init_from="")


def test_train_only_encoder_leaves_the_decoder_untouched(tmp_path):
    train_autoencoder(tiny(max_steps=4), train_set=Circles(), out_dir=tmp_path / "a", progress=False)
    raw = torch.load(RunDir(tmp_path / "a").last, weights_only=True)["model"]
    cfg = tiny(max_steps=20, lr=1e-2, train_only="encoder", init_from=str(tmp_path / "a"))
    got = train_autoencoder(cfg, train_set=Circles(), progress=False).model.state_dict()
    dec = [k for k in raw if k.startswith("decoder.")]
    enc = [k for k in raw if k.startswith("encoder.") and raw[k].is_floating_point()]
    assert dec and all(torch.equal(got[k], raw[k]) for k in dec)
    assert any(not torch.allclose(got[k], raw[k]) for k in enc)
    with pytest.raises(ValueError, match="train_only"):
        tiny(train_only="decoder")
