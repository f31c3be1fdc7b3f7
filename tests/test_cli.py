"""gfcore.cli: ``python -m gfcore train|sample`` end to end on a tiny config, overrides, and the error
paths."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from gfcore import cli, pretrained
from gfcore.train import AutoEncoderConfig, RunDir

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"


def run_cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GF_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gfcore", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


# ------------------------------------------------------------------------------------------------------------
# parsing
# ------------------------------------------------------------------------------------------------------------
def test_parse_assignment_values_are_yaml():
    assert cli.parse_assignment("lr=1e-4") == (["lr"], 1e-4)
    assert cli.parse_assignment("max_steps=10") == (["max_steps"], 10)
    assert cli.parse_assignment("grad_clip=null") == (["grad_clip"], None)
    assert cli.parse_assignment("grad_clip=None") == (["grad_clip"], None)
    assert cli.parse_assignment("betas=[0.5, 0.9]") == (["betas"], [0.5, 0.9])
    assert cli.parse_assignment("dataset_kwargs.root=/a/b=c") == (["dataset_kwargs", "root"], "/a/b=c")
    assert cli.parse_assignment("compile=true") == (["compile"], True)
    with pytest.raises(cli.CLIError, match="key=value"):
        cli.parse_assignment("lr")
    with pytest.raises(cli.CLIError, match="empty key"):
        cli.parse_assignment("dataset_kwargs.=1")


def test_apply_overrides_nested_and_copy():
    base = {"lr": 1e-3, "dataset_kwargs": {"categories": ["chair"]}}
    out = cli.apply_overrides(base, ["lr=2e-3", "dataset_kwargs.num_points=64", "extra.deep.key=1"])
    assert out == {"lr": 2e-3, "dataset_kwargs": {"categories": ["chair"], "num_points": 64},
                   "extra": {"deep": {"key": 1}}}
    assert base == {"lr": 1e-3, "dataset_kwargs": {"categories": ["chair"]}}
    with pytest.raises(cli.CLIError, match="not a mapping"):
        cli.apply_overrides(base, ["lr.x=1"])


def test_parser_requires_arguments(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["train"])
    assert err.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["sample", "--ckpt", "x.pt"])  # --out missing
    with pytest.raises(SystemExit):
        cli.main([])


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_loads(path):
    if yaml.safe_load(path.read_text()).get("stage") == "gan":      # the CLI trains these with train_latent_gan
        from gfcore.train import LatentGANConfig

        assert LatentGANConfig.from_yaml(path).stage == "gan"
        return
    cfg = AutoEncoderConfig.from_yaml(path)
    assert cfg.dataset in {"digits2d", "shapes3d", "shapenet"}
    if path.name.startswith("shapenet-"):
        category = path.stem.split("-", 1)[1]
        assert cfg.dataset_kwargs["categories"] == [category]
        assert cfg.dataset_kwargs["root"] == "data/ShapeNetCore.v2.PC15k"
        train_shapes = {"airplane": 2832, "chair": 4612, "car": 2458}[category]
        assert cfg.max_steps == 2000 * (train_shapes // 32)
        optim = (cfg.batch_size, cfg.lr, cfg.num_sigmas, cfg.sigma_max, cfg.sigma_min)
        assert optim == (32, 1e-3, 10, 1.0, 0.01)
        assert (cfg.block, cfg.n_blocks, cfg.zdim, cfg.hidden, cfg.seed) == ("add", 24, 128, 256, 100)
        assert cfg.lr_schedule == "official" and cfg.dataset_kwargs["num_points"] == 2048


# ------------------------------------------------------------------------------------------------------------
# end to end
# ------------------------------------------------------------------------------------------------------------
def test_train_then_sample_end_to_end(tmp_path):
    out = tmp_path / "run"
    res = run_cli("train", "--config", str(TINY), "--out", str(out), "--no-progress", "--set", "max_steps=2",
                  "--set", "log_every=1")
    assert res.returncode == 0, res.stderr
    assert "done at step 2" in res.stdout
    run = RunDir(out)
    assert run.has_checkpoint() and run.metrics_path.is_file()
    saved = yaml.safe_load(run.config_path.read_text())
    assert saved["max_steps"] == 2 and saved["log_every"] == 1  # --set reached the stored config

    samples = tmp_path / "samples.npy"
    res = run_cli("sample", "--ckpt", str(run.last), "--num-points", "48", "--num-shapes", "2",
                  "--steps-per-sigma", "1", "--out", str(samples),
                  "--save-input", str(tmp_path / "inputs.npy"))
    assert res.returncode == 0, res.stderr
    arr = np.load(samples)
    assert arr.shape == (2, 48, 3) and arr.dtype == np.float32 and np.isfinite(arr).all()
    inputs = np.load(tmp_path / "inputs.npy")
    assert inputs.shape == (2, 128, 3)

    # --raw: the same samples (same seed) in the data set's own coordinates; --ckpt may name the run folder
    assert cli.main(["sample", "--ckpt", str(out), "--num-points", "48", "--num-shapes", "2",
                     "--steps-per-sigma", "1", "--out", str(tmp_path / "raw.npy"), "--raw",
                     "--save-input", str(tmp_path / "raw_inputs.npy")]) == 0
    from gfcore.data import build_dataset

    items = [build_dataset(saved["dataset"], "val", **saved["dataset_kwargs"])[i] for i in range(2)]
    shift = np.stack([it["shift"].numpy() for it in items])
    scale = np.stack([it["scale"].numpy() for it in items])
    np.testing.assert_allclose(np.load(tmp_path / "raw_inputs.npy"), inputs * scale + shift, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "raw.npy"), arr * scale + shift, rtol=1e-4, atol=1e-5)

    # resume in-process: continue the same run to step 3
    assert cli.main(["train", "--config", str(TINY), "--out", str(out), "--resume", "--no-progress",
                     "--set", "max_steps=3", "--set", "log_every=1"]) == 0
    assert [record["step"] for record in run.read_metrics()] == [1, 2, 3]


def test_eval_writes_the_protocol_record(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(TINY), "--out", str(run), "--no-progress", "--set", "max_steps=2",
                     "--set", "val_every=null"]) == 0
    out = tmp_path / "eval.json"             # the official protocol on the val split, Chamfer only
    assert cli.main(["eval", "--ckpt", str(run), "--emd", "none", "--num-points", "64", "--out", str(out),
                     "--no-progress"]) == 0
    text = out.read_text()
    assert json.loads(text) and "CD" in text and "oracle" in text


def test_eval_a_shipped_model_with_refined_codes(tmp_path, capsys):
    out = tmp_path / "digits.json"
    args = ["eval", "--pretrained", "digits2d", "--split", "test", "--num-shapes", "2", "--num-points", "128",
            "--emd", "none", "--device", "cpu", "--no-progress", "--out", str(out)]
    assert cli.main(args + ["--refine-steps", "3"]) == 0
    record = json.loads(out.read_text())
    assert record["checkpoint"] == "pretrained:digits2d" and record["dataset"] == "digits2d"
    assert record["refine_steps"] == 3 and record["num_shapes"] == 2 and record["split"] == "test"
    assert record["step"] == pretrained.card("digits2d")["training"]["steps"]
    assert "codes refined 3 steps" in capsys.readouterr().out
    assert cli.main(args) == 0 and json.loads(out.read_text())["refine_steps"] == 0
    assert cli.main(["eval", "--pretrained", "shapes3d-gen", "--emd", "none"]) == 2
    assert "not an auto-encoder" in capsys.readouterr().err
    assert cli.main(args + ["--refine-steps", "-1"]) == 2
    with pytest.raises(SystemExit):                                                   # one source only
        cli.main(["eval", "--pretrained", "digits2d", "--ckpt", str(tmp_path)])


def test_mesh_and_gan_from_a_tiny_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(TINY), "--out", str(run), "--no-progress", "--set", "max_steps=2",
                     "--set", "val_every=null"]) == 0
    # mesh: one encoded data-set item, a coarse grid; the PLY header names the counts it printed
    mesh = tmp_path / "shape.ply"
    assert cli.main(["mesh", "--ckpt", str(run), "--out", str(mesh), "--resolution", "16", "--sigma", "0.1",
                     "--split", "val", "--keep", "all", "--num-support", "0"]) == 0
    printed = capsys.readouterr().out
    header = mesh.read_text().split("end_header")[0]
    assert header.startswith("ply") and "element vertex" in header and "element face" in header
    assert "gfcore mesh: wrote" in printed
    assert cli.main(["mesh", "--ckpt", str(run), "--out", str(mesh), "--num-support", "-1"]) == 2
    assert "--num-support" in capsys.readouterr().err
    # the latent GAN: a preset with stage: gan trains on the run's codes; sample then generates shapes
    preset = tmp_path / "gan.yaml"
    preset.write_text(yaml.safe_dump({"stage": "gan", "autoencoder": str(run), "noise_dim": 4,
                                      "generator_hidden": [8], "critic_hidden": [8], "batch_size": 4,
                                      "max_steps": 2, "device": "cpu", "log_every": 1, "val_every": None,
                                      "ckpt_every": 2}))
    gan = tmp_path / "gan"
    assert cli.main(["train", "--config", str(preset), "--out", str(gan), "--no-progress"]) == 0
    assert RunDir(gan).has_checkpoint()
    samples = tmp_path / "generated.npy"
    assert cli.main(["sample", "--ckpt", str(gan), "--num-shapes", "3", "--num-points", "32",
                     "--steps-per-sigma", "1", "--batch-size", "2", "--out", str(samples)]) == 0
    arr = np.load(samples)
    assert arr.shape == (3, 32, 3) and np.isfinite(arr).all()
    assert cli.main(["sample", "--ckpt", str(gan), "--raw", "--out", str(samples)]) == 2
    # eval on a latent GAN: the generation table against its auto-encoder's data (val split here: 2 shapes)
    assert cli.main(["eval", "--ckpt", str(gan), "--split", "val", "--emd", "none", "--num-points", "32",
                     "--no-progress"]) == 0
    record = json.loads((gan / "checkpoints" / "eval_gen_val.json").read_text())
    assert record["protocol"] == "shape_bbox" and record["num_shapes"] == 2 and 0 <= record["COV-CD"] <= 1
    assert "1-NNA-CD" in capsys.readouterr().out
    assert cli.main(["eval", "--ckpt", str(gan), "--data", str(tmp_path), "--emd", "none"]) == 2
    assert cli.main(["mesh", "--ckpt", str(run), "--gan", str(gan), "--out", str(mesh)]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_mesh_defaults_reach_the_library(tmp_path, monkeypatch):
    # sigma 0.05 is the level chapter 8 found best for the shipped shapes3d, with support from 2048 samples
    import torch

    import gfcore.surface

    seen = []

    def fake_mesh_from_model(model, **kwargs):
        seen.append(kwargs)
        return torch.eye(3), torch.tensor([[0, 1, 2]])

    monkeypatch.setattr(gfcore.surface, "mesh_from_model", fake_mesh_from_model)
    out = tmp_path / "shape.ply"
    assert cli.main(["mesh", "--pretrained", "shapes3d", "--out", str(out), "--device", "cpu"]) == 0
    assert cli.main(["mesh", "--pretrained", "shapes3d", "--out", str(out), "--device", "cpu",
                     "--sigma", "0.08", "--num-support", "0"]) == 0
    assert [(k["sigma"], k["num_support"]) for k in seen] == [(0.05, 2048), (0.08, 0)]
    assert "element face 1" in out.read_text()


def test_mesh_of_the_shipped_model_with_support(tmp_path, capsys):
    # the real thing on a coarse grid: a held-out table, kept near 256 of the model's own samples; an OBJ file
    out = tmp_path / "table.obj"
    assert cli.main(["mesh", "--pretrained", "shapes3d", "--dataset-index", "50", "--resolution", "24",
                     "--num-support", "256", "--out", str(out), "--device", "cpu"]) == 0
    lines = out.read_text().splitlines()
    faces = sum(line.startswith("f ") for line in lines)
    assert faces > 100 and f"{faces} faces" in capsys.readouterr().out
    vertices = np.array([[float(c) for c in line.split()[1:]] for line in lines if line.startswith("v ")])
    assert np.abs(vertices).max() <= 1.0 + 1e-6        # inside the meshed box (the model's normalised space)


# ------------------------------------------------------------------------------------------------------------
# errors: exit status 2 and a one-line message
# ------------------------------------------------------------------------------------------------------------
def test_unknown_config_key_fails(tmp_path, capsys):
    code = cli.main(["train", "--config", str(TINY), "--out", str(tmp_path / "r"), "--set", "bogus_key=1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bogus_key" in err and "valid keys" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load(TINY.read_text()), "learning_rate": 0.1}))
    res = run_cli("train", "--config", str(bad), "--out", str(tmp_path / "r2"))
    assert res.returncode == 2 and "learning_rate" in res.stderr and "Traceback" not in res.stderr


def test_missing_dataset_root_fails_clearly(tmp_path, capsys):
    code = cli.main(["train", "--config", str(ROOT / "configs" / "shapenet-airplane.yaml"), "--out",
                     str(tmp_path / "r"), "--set", f"dataset_kwargs.root={tmp_path / 'no_pc15k'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no_pc15k" in err and "PointFlow repository README" in err


def test_other_user_errors(tmp_path, capsys):
    assert cli.main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "no config file" in capsys.readouterr().err
    assert cli.main(["train", "--config", str(TINY), "--out", str(tmp_path / "fresh"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert cli.main(["train", "--config", str(TINY), "--out", str(tmp_path / "r"), "--set", "lr=-1"]) == 2
    assert "lr" in capsys.readouterr().err
    assert cli.main(["sample", "--ckpt", str(tmp_path / "none.pt"), "--out", str(tmp_path / "s.npy")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    notckpt = tmp_path / "junk.pt"
    notckpt.write_bytes(b"not a checkpoint")
    code = cli.main(["sample", "--ckpt", str(notckpt), "--out", str(tmp_path / "s.npy"), "--num-points", "0"])
    assert code == 2
