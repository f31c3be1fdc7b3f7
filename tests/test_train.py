"""gfcore.train: the auto-encoder trainer, its config, checkpoints, resume and DDP."""
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import Dataset

import gfcore
from gfcore import train as gtrain
from gfcore.models import ShapeGF
from gfcore.train import (AutoEncoderConfig, evaluate_reconstruction, load_checkpoint, load_model, lr_factor,
                          train_autoencoder)

ROOT = Path(__file__).resolve().parent.parent


class Circles(Dataset):
    """Circles of per-item radius; the points of an item are drawn afresh from the global RNG on every access
    (as real datasets subsample), so exact resume needs the RNG states in the checkpoint."""

    dim = 2

    def __init__(self, n=16, num_points=64, seed=0, nan_item=None):
        g = torch.Generator().manual_seed(seed)
        self.radius = 0.3 + 0.7 * torch.rand(n, generator=g)
        self.num_points = num_points
        self.nan_item = nan_item

    def __len__(self):
        return len(self.radius)

    def __getitem__(self, i):
        theta = 2 * math.pi * torch.rand(self.num_points)
        pts = self.radius[i] * torch.stack([theta.cos(), theta.sin()], -1)
        if i == self.nan_item:
            pts[0, 0] = float("nan")
        return {"points": pts, "shift": torch.zeros(1, 2), "scale": torch.ones(1, 1), "idx": i}


def tiny(**kw):
    base = dict(dim=2, zdim=16, hidden=32, n_blocks=2, batch_size=8, max_steps=8, log_every=2, val_every=None,
                val_shapes=4, val_num_points=32, val_steps_per_sigma=1, ckpt_every=4)
    return AutoEncoderConfig(**{**base, **kw})


def flat_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# -- config ---------------------------------------------------------------------------------------------------
def test_config_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown config keys \['lr_rate'\].*valid keys.*'lr'"):
        AutoEncoderConfig.from_dict({"lr_rate": 1e-3})
    with pytest.raises(ValueError, match="unknown config keys"):
        train_autoencoder(tiny(), train_set=Circles(), progress=False, n_blokcs=3)


def test_config_yaml_round_trip(tmp_path):
    cfg = tiny(block="cbn", ema_decay=0.99, grad_clip=1.0, dataset="circles", dataset_kwargs={"n": 4},
               betas=(0.5, 0.9))
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert yaml.safe_load(path.read_text())["betas"] == [0.5, 0.9]
    back = AutoEncoderConfig.from_yaml(path)
    assert back == cfg and back.betas == (0.5, 0.9)
    assert AutoEncoderConfig.from_dict(cfg.to_dict()) == cfg
    assert AutoEncoderConfig.from_dict(yaml.safe_load("lr: 1e-3")).lr == 1e-3   # YAML 1.1 reads 1e-3 as a string


def test_config_validation():
    with pytest.raises(ValueError, match="not both"):
        AutoEncoderConfig(max_steps=10, epochs=2)
    with pytest.raises(ValueError, match="block"):
        AutoEncoderConfig(block="film")
    with pytest.raises(ValueError, match="lr_schedule"):
        AutoEncoderConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="max_steps or epochs"):
        train_autoencoder(tiny(max_steps=None), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="dim=2 but config.dim=3"):
        train_autoencoder(tiny(dim=3), train_set=Circles(), progress=False)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        train_autoencoder(tiny(batch_size=32), train_set=Circles(), progress=False)


def test_lr_schedule_official():
    assert lr_factor("official", 0, 100) == 1.0
    assert lr_factor("official", 49, 100) == 1.0
    assert lr_factor("official", 95, 100) == pytest.approx(0.01)
    assert lr_factor("official", 99, 100) == pytest.approx(0.01)
    assert 0.01 < lr_factor("official", 70, 100) < 1.0
    assert lr_factor("cosine", 100, 100) == pytest.approx(0.0)
    assert lr_factor("constant", 70, 100) == 1.0


# -- training -------------------------------------------------------------------------------------------------
def test_training_lowers_loss_and_improves_reconstruction():
    torch.set_num_threads(1)
    cfg = tiny(max_steps=200, log_every=20, val_every=200, lr_schedule="constant")
    data = Circles(n=16)
    torch.manual_seed(cfg.seed)
    untrained = ShapeGF(**cfg.model_kwargs())
    kw = dict(num_shapes=8, num_points=64, steps_per_sigma=3)
    cd0 = evaluate_reconstruction(untrained, data, **kw)["chamfer"]
    records = []
    res = train_autoencoder(cfg, train_set=data, progress=False, callback=records.append)
    assert not res.model.training and res.step == 200 and res.out_dir is None
    losses = [r["loss"] for r in res.history if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert len(res.history[0]["loss_per_sigma"]) == cfg.num_sigmas
    assert "val_chamfer" in res.history[-1] and records == res.history
    cd1 = evaluate_reconstruction(res.model, data, **kw)["chamfer"]
    assert cd1 < 0.1 * cd0 and cd1 < 0.3, (cd0, cd1)


def test_checkpoint_files_and_contents(tmp_path):
    cfg = tiny(max_steps=6, ckpt_every=3, keep_checkpoints=True, ema_decay=0.9, val_every=6)
    res = train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path, progress=False)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == cfg.to_dict()
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6] and lines == res.history
    assert "val_chamfer" in lines[-1]
    ckdir = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckdir.iterdir()) == ["last.pt", "step_000003.pt", "step_000006.pt"]
    raw = torch.load(ckdir / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "ema", "rng", "sampler", "step", "config", "model_config",
                "gfcore_version", "format_version", "history"):
        assert key in raw
    assert raw["step"] == 6 and raw["gfcore_version"] == gfcore.__version__
    assert raw["model_config"] == res.model.config and raw["config"] == cfg.to_dict()
    assert set(raw["rng"]["ranks"][0]) >= {"torch", "numpy", "python"}
    assert load_checkpoint(ckdir / "step_000003.pt")["step"] == 3
    model = load_model(ckdir / "last.pt", device="cpu")
    assert not model.training
    for k, v in res.model.state_dict().items():        # EMA weights by default, as the trainer returns
        assert torch.equal(model.state_dict()[k], v), k
    raw_model = load_model(ckdir / "last.pt", device="cpu", ema=False)
    assert not torch.equal(raw_model.decoder.out.weight, model.decoder.out.weight)


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
    files = [[json.loads(s) for s in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in "ab"]
    assert untimed(files[0]) == untimed(files[1]) == untimed(straight.history)
    ca = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    cb = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    for group_a, group_b in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values()):
        assert torch.equal(group_a["exp_avg_sq"], group_b["exp_avg_sq"])


def test_incompatible_checkpoint_refused(tmp_path):
    cfg = tiny(max_steps=2, ckpt_every=2)
    train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"different architecture.*n_blocks: checkpoint 2, requested 3"):
        train_autoencoder(tiny(max_steps=4, n_blocks=3), train_set=Circles(), out_dir=tmp_path, resume=True,
                          progress=False)
    path = tmp_path / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    gtrain.save_checkpoint({**ckpt, "format_version": 99}, tmp_path / "v99.pt")
    with pytest.raises(ValueError, match="format version 99"):
        load_model(tmp_path / "v99.pt")
    gtrain.save_checkpoint({k: v for k, v in ckpt.items() if k != "optimizer"}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"missing keys \['optimizer'\]"):
        load_checkpoint(tmp_path / "partial.pt")
    bad = {**ckpt, "model_config": {**ckpt["model_config"], "hidden": 16}}
    gtrain.save_checkpoint(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path / "empty", resume=True, progress=False)
    assert not list(tmp_path.glob("checkpoints/.*.tmp"))      # atomic writes leave no temporaries


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


def test_failed_validation_is_recorded_not_fatal(monkeypatch):
    def diverge(*args, **kwargs):
        raise ValueError("Langevin diverged at level 3")

    monkeypatch.setattr(gtrain, "evaluate_reconstruction", diverge)
    with pytest.warns(RuntimeWarning, match="validation failed"):
        res = train_autoencoder(tiny(max_steps=4, val_every=2), train_set=Circles(), progress=False)
    vals = [r["val_chamfer"] for r in res.history if "val_chamfer" in r]
    assert res.step == 4 and len(vals) == 2 and all(math.isnan(v) for v in vals)


# -- DDP ------------------------------------------------------------------------------------------------------
DDP_SCRIPT = textwrap.dedent('''
    import math, os, sys
    import torch
    sys.path.insert(0, {tests!r})
    from test_train import Circles, tiny
    from gfcore.train import train_autoencoder

    torch.set_num_threads(1)
    out = sys.argv[1]
    torch.manual_seed(0)
    res = train_autoencoder(tiny(max_steps=6, batch_size=8, ckpt_every=3), train_set=Circles(),
                            out_dir=out + "/run", progress=False)
    flat = torch.cat([p.detach().flatten() for p in res.model.parameters()])
    torch.save(flat, out + "/rank%s.pt" % os.environ["RANK"])
''')


def test_ddp_two_processes(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(ROOT / "tests")))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt")
    w1 = torch.load(tmp_path / "rank1.pt")
    assert torch.equal(w0, w1)
    torch.manual_seed(100)
    init = torch.cat([p.detach().flatten() for p in ShapeGF(**tiny().model_kwargs()).parameters()])
    assert not torch.allclose(w0, init)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["step"] for s in lines] == [2, 4, 6]          # rank 0 alone wrote, once per record
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["rng"]["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2
