"""gfcore.cli: every known failure prints one line on stderr naming the file or the step and what to do, exits
non-zero, shows no traceback (``--debug`` shows it) and never suggests loading a checkpoint unsafely."""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gfcore import cli

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"
SHAPENET = ROOT / "configs" / "shapenet-airplane.yaml"


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GF_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gfcore", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def one_error_line(err: str, command: str) -> str:
    """The single line of ``err``, checked: the command's prefix, no traceback, no unsafe advice."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gfcore {command}: error: "), err
    assert "Traceback" not in err and "weights_only=False" not in err
    return lines[0]


def fails(capsys, argv, *needles, code=2) -> str:
    """Run ``cli.main(argv)`` in process: exit status ``code`` and one stderr line holding every needle."""
    assert cli.main(argv) == code
    line = one_error_line(capsys.readouterr().err, argv[0])
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A two-step auto-encoder run of configs/tiny.yaml."""
    run = tmp_path_factory.mktemp("cli_errors") / "run"
    assert cli.main(["train", "--config", str(TINY), "--out", str(run), "--no-progress", "--set", "max_steps=2",
                     "--set", "val_every=null"]) == 0
    return run


# -- checkpoints ---------------------------------------------------------------------------------------------
def test_unreadable_checkpoints(tmp_path, capsys):
    out = ["--out", str(tmp_path / "s.npy")]
    fails(capsys, ["sample", "--ckpt", str(tmp_path / "none.pt"), *out], "no checkpoint at", "none.pt")
    fails(capsys, ["sample", "--ckpt", str(tmp_path), *out], "no checkpoint at", "last.pt", "run folder")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    fails(capsys, ["sample", "--ckpt", str(tmp_path / "junk.pt"), *out], "junk.pt", "not a PyTorch checkpoint",
          "copy it again")
    (tmp_path / "empty.pt").write_bytes(b"")
    fails(capsys, ["eval", "--ckpt", str(tmp_path / "empty.pt")], "empty.pt", "is empty")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_checkpoint_without_read_permission(tmp_path, capsys):
    path = tmp_path / "locked.pt"
    torch.save({"kind": "shapegf-autoencoder"}, path)
    path.chmod(0)
    try:
        fails(capsys, ["sample", "--ckpt", str(path), "--out", str(tmp_path / "s.npy")], "locked.pt",
              "permission")
    finally:
        path.chmod(0o644)


def test_truncated_checkpoint(ae_run, tmp_path, capsys):
    data = (ae_run / "checkpoints" / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    fails(capsys, ["sample", "--ckpt", str(cut), "--out", str(tmp_path / "s.npy")], "cut.pt",
          "truncated or damaged", "copy it again")
    fails(capsys, ["mesh", "--ckpt", str(cut), "--out", str(tmp_path / "m.ply")], "cut.pt", "truncated")


class RunsCode:
    """Unpickling this would create ``marker``: a stand-in for the code a malicious pickle runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_unsafe_pickle_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"kind": "shapegf-autoencoder", "model": {"w": torch.ones(1)}, "x": RunsCode(marker)}, path)
    for args in (["sample", "--ckpt", str(path), "--out", str(tmp_path / "s.npy")],
                 ["eval", "--ckpt", str(path)], ["mesh", "--gan", str(path), "--out", str(tmp_path / "m.ply")]):
        res = run_cli(*args)
        assert res.returncode == 2
        line = one_error_line(res.stderr, args[0])
        assert "evil.pt" in line and "holds Python objects" in line and "refused" in line
        assert not marker.exists()


def test_incompatible_checkpoints(ae_run, tmp_path, capsys):
    # wrong kind: an auto-encoder where a latent GAN is asked for
    fails(capsys, ["mesh", "--gan", str(ae_run), "--out", str(tmp_path / "m.ply")],
          "'shapegf-autoencoder' checkpoint", "expected a latent GAN")
    # weights that do not fit the architecture the checkpoint names
    ckpt = torch.load(ae_run / "checkpoints" / "last.pt", weights_only=True)
    bad = tmp_path / "bad.pt"
    torch.save({**ckpt, "model_config": {**ckpt["model_config"], "hidden": 8}}, bad)
    fails(capsys, ["sample", "--ckpt", str(bad), "--out", str(tmp_path / "s.npy")], "bad.pt",
          "weights do not fit")
    # another format version
    torch.save({**ckpt, "format_version": 9}, tmp_path / "v9.pt")
    fails(capsys, ["eval", "--ckpt", str(tmp_path / "v9.pt")], "v9.pt", "format version 9")
    # resuming with another architecture
    run = tmp_path / "run"
    shutil.copytree(ae_run, run)
    fails(capsys, ["train", "--config", str(TINY), "--out", str(run), "--resume", "--no-progress",
                   "--set", "n_blocks=3"], "different architecture", "n_blocks: checkpoint 2, requested 3")


# -- config and data -------------------------------------------------------------------------------------------
def test_unknown_config_key_and_malformed_config(tmp_path, capsys):
    fails(capsys, ["train", "--config", str(TINY), "--out", str(tmp_path / "r"), "--set", "bogus_key=1"],
          "bogus_key", "valid keys")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: shapes3d\nlr: [1, 2\n")
    fails(capsys, ["train", "--config", str(bad)], "bad.yaml", "not valid YAML", "line")
    fails(capsys, ["train", "--config", str(tmp_path / "nope.yaml")], "no config file", "nope.yaml")


def test_missing_or_malformed_data_folder(tmp_path, capsys):
    train = ["train", "--config", str(SHAPENET), "--no-progress", "--out", str(tmp_path / "r")]
    fails(capsys, [*train, "--set", f"dataset_kwargs.root={tmp_path / 'absent'}"], "absent", "does not exist",
          "PointFlow repository README")
    empty = tmp_path / "empty_root"
    empty.mkdir()
    fails(capsys, [*train, "--set", f"dataset_kwargs.root={empty}"], "no folder", "02691156", "PointFlow")
    bad = tmp_path / "bad_root"
    (bad / "02691156" / "train").mkdir(parents=True)
    np.save(bad / "02691156" / "train" / "a.npy", np.zeros((10, 3), dtype=np.float32))
    fails(capsys, [*train, "--set", f"dataset_kwargs.root={bad}"], "a.npy", "(10, 3)", "(15000, 3)")


# -- the run itself ----------------------------------------------------------------------------------------------
def test_nan_loss_names_the_step(tmp_path):
    # a learning rate of 1e30 sends the weights past float32 after one step: the next loss is not finite
    res = run_cli("train", "--config", str(TINY), "--out", str(tmp_path / "r"), "--no-progress",
                  "--set", "lr=1e30", "--set", "max_steps=4", "--set", "val_every=null", "--set", "log_every=1")
    assert res.returncode == 1, res.stderr
    line = one_error_line(res.stderr, "train")
    assert re.search(r"step \d+: the loss", line) and "lower lr" in line      # the step, and what to do


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a CUDA GPU")
def test_cuda_device_without_a_gpu(ae_run, tmp_path, capsys):
    fails(capsys, ["train", "--config", str(TINY), "--out", str(tmp_path / "r"), "--device", "cuda"],
          "--device cuda", "no CUDA GPU", "--device cpu")
    fails(capsys, ["train", "--config", str(TINY), "--out", str(tmp_path / "r"), "--set", "device=cuda"],
          "tiny.yaml", "no CUDA GPU")
    fails(capsys, ["sample", "--ckpt", str(ae_run), "--out", str(tmp_path / "s.npy"), "--device", "cuda"],
          "no CUDA GPU")
    fails(capsys, ["eval", "--pretrained", "digits2d", "--device", "cuda:0"], "no CUDA GPU")
    fails(capsys, ["mesh", "--pretrained", "shapes3d", "--out", str(tmp_path / "m.ply"), "--device", "gpu"],
          "'gpu' is not a device")


# -- --debug and --version ---------------------------------------------------------------------------------------
def test_debug_shows_the_traceback(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for argv in (["--debug", "sample", "--ckpt", str(junk), "--out", "x.npy"],
                 ["sample", "--debug", "--ckpt", str(junk), "--out", "x.npy"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "CheckpointError" in err
        assert err.strip().splitlines()[-1].startswith("gfcore sample: error: ")
    res = run_cli("--debug", "eval", "--ckpt", str(junk))
    assert res.returncode == 2 and "Traceback" in res.stderr and "junk.pt" in res.stderr


def test_version_is_the_package_version():
    import gfcore

    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"gfcore {gfcore.__version__}"
    assert gfcore.__version__ == "0.2.0"
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]      # one place: gfcore/_version.py


def _strings(tree: ast.AST):
    """The string constants of a module that are not docstrings (what the code can print or raise)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_no_message_suggests_unsafe_loading():
    offenders = [f"{p.relative_to(ROOT)}:{node.lineno}" for p in sorted((ROOT / "gfcore").rglob("*.py"))
                 for node in _strings(ast.parse(p.read_text())) if "weights_only=False" in node.value.replace(" ", "")]
    assert not offenders, offenders
    fake = ast.parse('"""doc: weights_only=False is never used"""\nraise ValueError("use weights_only=False")\n')
    assert [n.value for n in _strings(fake)] == ["use weights_only=False"]    # the scan sees a message
