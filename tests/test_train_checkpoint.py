"""gfcore.train.checkpoint: run folders, the checkpoint format (version 1), loading, RNG capture."""
import json
import os
import random

import numpy as np
import pytest
import torch
import yaml
from train_helpers import Circles, flat_state, tiny

import gfcore
from gfcore.train import RunDir, load_checkpoint, load_model, save_checkpoint, train_autoencoder
from gfcore.train.checkpoint import (
    CHECKPOINT_KIND,
    FORMAT_VERSION,
    REQUIRED_KEYS,
    RecordLog,
    capture_rng,
    restore_rng,
)

# The keys of a version-1 checkpoint, as gfcore 0.1.0 wrote them: frozen here so that a change of the format is a
# decision (a new FORMAT_VERSION), not an accident.
V1_KEYS = {"format_version", "kind", "gfcore_version", "torch_version", "step", "total_steps", "config",
           "model_config", "model", "optimizer", "scheduler", "ema", "rng", "sampler", "history"}
V1_SCHEDULER = {"name", "base_lr", "last_step", "total_steps", "lr"}
V1_SAMPLER = {"seed", "epoch", "position", "steps_per_epoch", "batch_size"}
V1_RNG = {"torch", "numpy", "python", "cuda"}


def test_run_dir_paths(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.config_path == tmp_path / "r" / "config.yaml"
    assert run.metrics_path == tmp_path / "r" / "metrics.jsonl"
    assert run.checkpoints == tmp_path / "r" / "checkpoints"
    assert run.last == tmp_path / "r" / "checkpoints" / "last.pt"
    assert run.step_checkpoint(12) == run.checkpoints / "step_000012.pt"
    assert RunDir(run) == run and RunDir(str(tmp_path / "r")) == run
    assert not run.has_checkpoint() and run.read_metrics() == [] and not run.path.exists()


def test_checkpoint_files_and_contents(tmp_path):
    cfg = tiny(max_steps=6, ckpt_every=3, keep_checkpoints=True, ema_decay=0.9, val_every=6)
    res = train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path, progress=False)
    run = res.run
    assert run == RunDir(tmp_path) and run.has_checkpoint()
    assert yaml.safe_load(run.config_path.read_text()) == cfg.to_dict()
    lines = run.read_metrics()
    assert [r["step"] for r in lines] == [2, 4, 6] and lines == res.history
    assert "val_chamfer" in lines[-1]
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["last.pt", "step_000003.pt", "step_000006.pt"]
    raw = torch.load(run.last, weights_only=True)
    assert set(raw) == V1_KEYS and set(REQUIRED_KEYS) <= V1_KEYS
    assert set(raw["scheduler"]) == V1_SCHEDULER and set(raw["sampler"]) == V1_SAMPLER
    assert set(raw["rng"]) == {"world_size", "ranks"} and set(raw["rng"]["ranks"][0]) == V1_RNG
    assert raw["format_version"] == FORMAT_VERSION == 1 and raw["kind"] == CHECKPOINT_KIND == "shapegf-autoencoder"
    assert raw["step"] == 6 and raw["gfcore_version"] == gfcore.__version__
    assert raw["model_config"] == res.model.config and raw["config"] == cfg.to_dict()
    assert load_checkpoint(run.step_checkpoint(3))["step"] == 3
    assert load_checkpoint(tmp_path)["step"] == 6                     # a run folder means its last.pt
    model = load_model(run, device="cpu")
    assert not model.training
    for k, v in res.model.state_dict().items():        # EMA weights by default, as the trainer returns
        assert torch.equal(model.state_dict()[k], v), k
    raw_model = load_model(run.last, device="cpu", ema=False)
    assert not torch.equal(raw_model.decoder.out.weight, model.decoder.out.weight)


def test_checkpoint_of_gfcore_0_1_loads_and_resumes(tmp_path):
    """gfcore 0.1.0 wrote neither ``preconditioning`` key; such a checkpoint loads as the official model and
    resumes to the same weights as an uninterrupted run."""
    cfg = tiny(max_steps=8, ckpt_every=4, lr_schedule="constant")   # the first half runs as a 4-step run
    straight = train_autoencoder(cfg, train_set=Circles(), progress=False)
    train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path, progress=False, max_steps=4)
    run = RunDir(tmp_path)
    ckpt = torch.load(run.last, weights_only=True)
    old = {**ckpt, "config": {k: v for k, v in ckpt["config"].items() if k != "preconditioning"},
           "model_config": {k: v for k, v in ckpt["model_config"].items() if k != "preconditioning"}}
    save_checkpoint(old, run.last)
    assert load_model(run, device="cpu").config["preconditioning"] == "none"
    resumed = train_autoencoder(old["config"], train_set=Circles(), out_dir=tmp_path, resume=True, progress=False,
                                max_steps=8)
    a, b = flat_state(straight.model), flat_state(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_incompatible_checkpoint_refused(tmp_path):
    cfg = tiny(max_steps=2, ckpt_every=2)
    train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"different architecture.*n_blocks: checkpoint 2, requested 3"):
        train_autoencoder(tiny(max_steps=4, n_blocks=3), train_set=Circles(), out_dir=tmp_path, resume=True,
                          progress=False)
    path = RunDir(tmp_path).last
    ckpt = torch.load(path, weights_only=True)
    save_checkpoint({**ckpt, "format_version": 99}, tmp_path / "v99.pt")
    with pytest.raises(ValueError, match="format version 99"):
        load_model(tmp_path / "v99.pt")
    save_checkpoint({**ckpt, "kind": "latent-gan"}, tmp_path / "gan.pt")
    with pytest.raises(ValueError, match="'latent-gan' checkpoint"):
        load_checkpoint(tmp_path / "gan.pt")
    # the kind is checked before the keys: a checkpoint of another kind is named as such, not as incomplete
    save_checkpoint({"kind": "shapegf-latent-gan", "format_version": 1}, tmp_path / "gan2.pt")
    with pytest.raises(ValueError, match="'shapegf-latent-gan' checkpoint .*load_latent_gan"):
        load_checkpoint(tmp_path / "gan2.pt")
    save_checkpoint({k: v for k, v in ckpt.items() if k != "optimizer"}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"missing keys \['optimizer'\]"):
        load_checkpoint(tmp_path / "partial.pt")
    save_checkpoint([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a gfcore checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    bad = {**ckpt, "model_config": {**ckpt["model_config"], "hidden": 16}}
    save_checkpoint(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nothing.pt")
    with pytest.raises(FileNotFoundError):
        train_autoencoder(cfg, train_set=Circles(), out_dir=tmp_path / "empty", resume=True, progress=False)
    assert not list(tmp_path.glob("checkpoints/.*.tmp"))      # atomic writes leave no temporaries


def test_atomic_save_leaves_the_old_file_on_failure(tmp_path):
    path = save_checkpoint({"a": torch.ones(2)}, tmp_path / "x.pt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_rng_capture_restore_round_trip(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    state = capture_rng()
    save_checkpoint({"rng": state}, tmp_path / "rng.pt")           # weights_only-safe
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_metrics_file_is_json_lines(tmp_path):
    run = RunDir(tmp_path)
    with run.open_metrics([{"step": 1, "loss": 0.5}]) as f:
        f.write(json.dumps({"step": 2, "loss": 0.25}) + "\n")
    assert run.read_metrics() == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]


def test_record_log_keeps_writes_and_hands_on_records(tmp_path):
    seen = []
    history = [{"step": 1, "loss": 2.0}]                     # on resume: the records up to the checkpoint
    log = RecordLog(RunDir(tmp_path), history, seen.append, step=1)
    assert log.steps_per_s(1) == 0.0
    log.add({"step": 2, "loss": 1.5})
    assert history == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}] and seen == [{"step": 2, "loss": 1.5}]
    lines = RunDir(tmp_path).metrics_path.read_text().splitlines()   # flushed before close
    assert [json.loads(line) for line in lines] == history
    log.close()
    log.close()                                                  # closing twice is harmless
    assert RunDir(tmp_path).read_metrics() == history
    quiet = RecordLog(None, [], None, step=5)                    # no run folder, no callback: keeps only
    quiet.add({"step": 6})
    assert quiet.history == [{"step": 6}] and quiet.steps_per_s(10) > 0
    quiet.close()


def test_saved_checkpoints_have_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint({"a": torch.zeros(2)}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644                 # not mkstemp's private 0600
    assert not list(tmp_path.glob(".c.pt.*"))                   # no temporary file left behind
