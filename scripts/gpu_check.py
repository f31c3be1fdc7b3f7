"""The GPU check: everything a Colab GPU reader runs, in one script of at most about 8 minutes (`make gpu-check`).

Steps, each in its own process with a time limit (a failure is recorded and the next step runs):

1. the card: name, compute capability, whether it multiplies bfloat16, torch and CUDA versions;
2. the CUDA tests (`tests/test_cuda.py`: GPU against CPU for the folded and reference fields, bf16 against fp32
   decoding, a training step, training and resume);
3. a short training of every preset in `configs/` with `amp: auto` and `torch.compile` (the ShapeNet presets only
   with `--shapenet ROOT`), then the command line on its checkpoint (`sample`, `eval`);
4. the shipped models: `eval --pretrained` and `mesh --pretrained` from the command line, and sampling each shipped
   auto-encoder and the latent GAN through the library;
5. the training-step and sampling benchmarks against the official-style fp32 baseline (`bench/`).

It writes `bench/results/gpu_check_<card>.json` (and the benchmarks' JSON beside it), prints a table and exits 1
when a step failed. Without CUDA it says so and exits 2. `--dry-run` runs the same steps on the CPU at tiny sizes
(no compile, benchmarks at their smallest), which `tests/test_gpu_check.py` runs in `make test` so the script
cannot rot on machines without a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# Dry run: a preset shrunk to a few seconds on a CPU (same code path: data set, model, loss, validation, checkpoint).
TINY_AE = ["max_steps=2", "hidden=16", "n_blocks=1", "zdim=8", "batch_size=4", "val_every=2", "val_shapes=2",
           "val_num_points=64", "val_steps_per_sigma=1", "ckpt_every=2", "log_every=1", "dataset_kwargs.num_shapes=8",
           "dataset_kwargs.num_points=128"]
TINY_GAN = ["max_steps=2", "batch_size=4", "val_every=null", "ckpt_every=2", "log_every=1", "generator_hidden=[16]",
            "critic_hidden=[16]", "noise_dim=8", "dataset=shapes3d",
            "dataset_kwargs={categories: [chair], num_shapes: 8, num_points: 128}"]
GPU_AE = ["max_steps=30", "val_every=30", "val_shapes=4", "ckpt_every=30", "log_every=10", "compile=true"]
GPU_GAN = ["max_steps=50", "val_every=50", "val_samples=64", "ckpt_every=50", "log_every=10"]


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    command: str
    detail: str = ""
    extra: dict = field(default_factory=dict)


def slug(text: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``: a file-name-safe card name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def card(device: str) -> dict:
    """What the machine is: the card (or the CPU for a dry run) and the versions."""
    import platform

    import torch

    info = {"device": device, "torch": torch.__version__, "python": platform.python_version()}
    if device.startswith("cuda"):
        from gfcore.utils import cuda_has_fast_bf16

        info.update(name=torch.cuda.get_device_name(device), capability=list(torch.cuda.get_device_capability(device)),
                    bf16_tensor_cores=cuda_has_fast_bf16(device), cuda=torch.version.cuda,
                    memory_gib=round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1))
    else:
        from gfcore.utils import cpu_has_fast_bf16

        info.update(name=f"cpu-{platform.machine()}", cpu_bf16=cpu_has_fast_bf16(), threads=torch.get_num_threads())
    return info


def run_step(name: str, args: list[str], *, timeout: float, env: dict | None = None, cwd: Path = ROOT) -> Step:
    """Run one step in its own process; keep its last lines when it fails."""
    t0 = time.perf_counter()
    shown = " ".join(a if " " not in a else repr(a) for a in args)
    try:
        proc = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)
        ok, out = proc.returncode == 0, (proc.stdout + proc.stderr)
        detail = "" if ok else out.strip()[-1500:]
    except subprocess.TimeoutExpired:
        ok, detail = False, f"timed out after {timeout:.0f} s"
    step = Step(name, ok, round(time.perf_counter() - t0, 1), shown, detail)
    print(f"  {'ok  ' if ok else 'FAIL'} {step.seconds:7.1f} s  {name}", flush=True)
    if not ok:
        print("       " + detail.replace("\n", "\n       ")[-1200:], flush=True)
    return step


def presets(shapenet: str | None) -> list[Path]:
    out = []
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name.startswith("shapenet") and shapenet is None:
            continue
        out.append(path)
    return out


def is_gan(path: Path) -> bool:
    import yaml

    return (yaml.safe_load(path.read_text()) or {}).get("stage") == "gan"


def check(device: str, dry_run: bool, out_dir: Path, shapenet: str | None, with_bench: bool,
          only: list[str] | None = None) -> tuple[dict, list]:
    gf = [PY, "-m", "gfcore"]
    limit = 240 if dry_run else 300
    steps: list[Step] = []

    def run(name: str, args: list[str], **kw) -> Step:
        """:func:`run_step`, or a skipped step when ``only`` names other steps."""
        if only and not any(o in name for o in only):
            return Step(name, True, 0.0, " ".join(args), "skipped (--only)")
        return run_step(name, args, **kw)

    env = {"GF_MODE": "fast", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get(
        "PYTHONPATH", "")}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        # 2. the CUDA tests (on the CPU standing in for the card in a dry run)
        steps.append(run("CUDA tests (tests/test_cuda.py)", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                             "tests/test_cuda.py"],
                         timeout=limit * 2, env={**env, "GF_CHECK_DEVICE": device}))
        # 3. every preset: a short training (amp: auto, compile on the GPU), then sample and eval on its checkpoint
        for path in presets(shapenet):
            run_dir = tmp / path.stem
            gan = is_gan(path)
            sets = (TINY_GAN if gan else TINY_AE) if dry_run else (GPU_GAN if gan else GPU_AE)
            sets = [*sets, f"device={device}"] + ([] if gan else ["amp=auto"])
            if shapenet is not None and path.name.startswith("shapenet"):
                sets.append(f"dataset_kwargs.root={shapenet}")
            args = [*gf, "train", "--config", str(path), "--out", str(run_dir), "--no-progress"]
            for s in sets:
                args += ["--set", s]
            steps.append(run(f"train {path.name}", args, timeout=limit, env=env))
            if not steps[-1].ok or steps[-1].detail:
                continue
            points = "64" if dry_run else "2048"
            steps.append(run(f"sample {path.name}", [*gf, "sample", "--ckpt", str(run_dir), "--out",
                                                     str(tmp / f"{path.stem}.npy"), "--num-shapes", "2",
                                                     "--num-points", points, "--steps-per-sigma", "1" if dry_run else
                                                     "10", "--device", device], timeout=limit, env=env))
            steps.append(run(f"eval {path.name}", [*gf, "eval", "--ckpt", str(run_dir), "--num-shapes", "2",
                                                   "--num-points", points, "--emd", "none", "--device", device,
                                                   "--out", str(tmp / f"{path.stem}.json"), "--no-progress"],
                             timeout=limit, env=env))
        # 4. the shipped models: the command line, then the library's sampling
        points = "128" if dry_run else "2048"
        for name in ("shapes3d", "digits2d"):
            steps.append(run(f"eval --pretrained {name}", [*gf, "eval", "--pretrained", name, "--num-shapes", "2",
                                                           "--num-points", points, "--emd", "none", "--device",
                                                           device, "--out", str(tmp / f"pre_{name}.json"),
                                                           "--no-progress"], timeout=limit, env=env))
        steps.append(run("mesh --pretrained shapes3d", [*gf, "mesh", "--pretrained", "shapes3d", "--out",
                                                        str(tmp / "shapes3d.ply"), "--resolution",
                                                        "24" if dry_run else "128", "--num-support",
                                                        "256" if dry_run else "2048", "--device", device],
                         timeout=limit, env=env))
        code = (f"import torch, gfcore.pretrained as P; d={device!r}; m=P.load('shapes3d').to(d); "
                f"g=P.load('shapes3d-gen').to(d); n={int(points)}; "
                "x=m.sample(g, 2, n, steps_per_sigma=2, generator=torch.Generator(device=d).manual_seed(0)); "
                "a=P.load('digits2d').to(d); z=torch.randn(2, a.zdim, device=d); "
                "y=a.decode(z, n, steps_per_sigma=2); "
                "assert x.shape == (2, n, 3) and y.shape == (2, n, 2) and x.device.type == d.split(':')[0]; "
                "assert bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())")
        steps.append(run("sample the shipped models (library)", [PY, "-c", code], timeout=limit, env=env))
        # 5. the benchmarks, against the official-style fp32 baseline in the same run
        bench = {}
        if with_bench:
            tag = "dryrun" if dry_run else slug(card(device)["name"])
            for script, size in (("train_step", ["--quick", "--blocks", "add"] if dry_run else ["--full"]),
                                 ("sample", ["--quick", "--blocks", "add", "--no-compile", "--repeats", "1"]
                                  if dry_run else ["--full"])):
                target = (tmp if dry_run else out_dir) / f"{script}_{tag}.json"
                extra = ["--no-compile"] if dry_run and script == "train_step" else []
                step = run(f"bench/{script}.py", [PY, f"bench/{script}.py", "--device", device, *size, *extra,
                                                   "--out", str(target)], timeout=limit * 2, env=env)
                if step.ok and target.exists():
                    bench[script] = json.loads(target.read_text())
                    step.extra = {"json": str(target.relative_to(ROOT)) if not dry_run else target.name}
                steps.append(step)
    return bench, steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny sizes")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--shapenet", default=None, metavar="ROOT", help="also train the ShapeNet presets on this data")
    ap.add_argument("--no-bench", action="store_true", help="skip the benchmarks")
    ap.add_argument("--only", default=None, help="comma-separated parts of step names: run only those steps")
    args = ap.parse_args(argv)

    import torch

    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; this check needs a GPU. `python scripts/gpu_check.py --dry-run` runs "
              "the same steps on the CPU at tiny sizes.", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = card(device)
    print(f"gpu-check on {info['name']} ({device}), torch {info['torch']}"
          + (" -- DRY RUN on the CPU at tiny sizes" if args.dry_run else ""), flush=True)
    t0 = time.perf_counter()
    only = [o.strip() for o in args.only.split(",") if o.strip()] if args.only else None
    bench, steps = check(device, args.dry_run, out_dir, args.shapenet, not args.no_bench, only)
    steps = [s for s in steps if s.detail != "skipped (--only)"]
    report = {"card": info, "dry_run": args.dry_run, "seconds": round(time.perf_counter() - t0, 1),
              "date": time.strftime("%Y-%m-%d"), "steps": [asdict(s) for s in steps],
              "failed": [s.name for s in steps if not s.ok], "bench": bench}
    name = "gpu_check_dryrun.json" if args.dry_run else f"gpu_check_{slug(info['name'])}.json"
    target = out_dir / name
    target.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{len(steps) - len(report['failed'])}/{len(steps)} steps passed in {report['seconds']:.0f} s; "
          f"report: {target}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
