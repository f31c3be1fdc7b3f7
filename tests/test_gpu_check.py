"""scripts/gpu_check.py: without CUDA it refuses; its dry run on the CPU runs the same steps at tiny sizes."""
import importlib.util
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_and_exits_2(monkeypatch, tmp_path, capsys):
    gpu_check = load_script()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out-dir", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_card_names_are_file_safe():
    gpu_check = load_script()
    assert gpu_check.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert gpu_check.slug("Tesla T4") == "tesla-t4"


def test_dry_run_on_the_cpu(tmp_path):
    """The script's steps, on the CPU at tiny sizes: the CUDA tests (the CPU standing in for the card), a preset of
    each kind (auto-encoder, latent GAN) trained then sampled and evaluated from the command line, the shipped
    models from the command line and the library. (All presets and the benchmarks: `scripts/gpu_check.py
    --dry-run` without --only, several minutes.)"""
    gpu_check = load_script()
    only = "CUDA tests,tiny.yaml,shapes3d-gan-cpu.yaml,pretrained digits2d,mesh --pretrained,library"
    rc = gpu_check.main(["--dry-run", "--out-dir", str(tmp_path), "--no-bench", "--only", only])
    report = json.loads((tmp_path / "gpu_check_dryrun.json").read_text())
    names = [s["name"] for s in report["steps"]]
    assert rc == 0, [(s["name"], s["detail"][-800:]) for s in report["steps"] if not s["ok"]]
    assert report["dry_run"] and report["card"]["device"] == "cpu" and not report["failed"]
    assert names == ["CUDA tests (tests/test_cuda.py)", "train shapes3d-gan-cpu.yaml", "sample shapes3d-gan-cpu.yaml",
                     "eval shapes3d-gan-cpu.yaml", "train tiny.yaml", "sample tiny.yaml", "eval tiny.yaml",
                     "eval --pretrained digits2d", "mesh --pretrained shapes3d",
                     "sample the shipped models (library)"]
    assert all(s["seconds"] > 0 for s in report["steps"])
