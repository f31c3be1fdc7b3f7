"""Export a trained auto-encoder into gfcore/pretrained/: half-precision weights and a measured model card.

    .venv/bin/python scripts/export_pretrained.py --run RUN_DIR --name shapes3d [--ema] [--num-shapes N]

The card's numbers are measured here, on the weights exactly as shipped (float16, loaded back as float32), under
the official auto-encoding protocol (gfcore.evaluation: train-pool sample in, the independent test-pool sample as
reference, original coordinates, the oracle beside it) on the test split. Two controls that need the
reconstructions themselves follow: the category (digit) of each reconstruction by its nearest neighbour under
Chamfer, and whether a reconstruction is closer to its own shape's reference than to every other shape of its
category. `tests/test_pretrained.py` re-measures the card's first shapes.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from torch.utils.data import default_collate  # noqa: E402

import gfcore  # noqa: E402
from gfcore.data import build_dataset  # noqa: E402
from gfcore.evaluation import evaluate_reconstruction, first_items, spread_indices  # noqa: E402
from gfcore.metrics import pairwise_cd  # noqa: E402
from gfcore.models import ShapeGF  # noqa: E402
from gfcore.pretrained import FOLDER, FORMAT_VERSION, KIND  # noqa: E402
from gfcore.train import RunDir, load_checkpoint  # noqa: E402

CHECK_SHAPES = 6        # the first shapes of the test split that tests/test_pretrained.py re-measures
SEED = 0


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        name = platform.processor() or "cpu"
    return f"{name}, {torch.get_num_threads()} threads, no GPU"


def wall_time(history: list[dict]) -> float:
    """Seconds of training from the logged rates (restarts excluded; validation included in the rates)."""
    logs = [r for r in history if "steps_per_s" in r]
    total, prev = 0.0, 0
    for r in logs:
        total += (r["step"] - prev) / max(r["steps_per_s"], 1e-9)
        prev = r["step"]
    return total


def compact_history(history: list[dict], every: int) -> list[dict]:
    return [{"step": r["step"], "loss_per_sigma": r["loss_per_sigma"]} for r in history
            if "loss_per_sigma" in r and r["step"] % every == 0]


def controls(model, dataset: str, kwargs: dict, num_points: int, num_shapes: int | None) -> dict:
    """Label recovery and own-shape rate on the evaluated test shapes (official sampler, seeded)."""
    inputs = build_dataset(dataset, "test", **{**kwargs, "num_points": num_points, "pool": "train",
                                               "sample": "first"})
    refs = build_dataset(dataset, "test", **{**kwargs, "num_points": num_points, "pool": "test", "sample": "first"})
    pick = spread_indices(len(inputs), num_shapes)
    inp = default_collate([inputs[i] for i in pick])
    ref = default_collate([refs[i] for i in pick])
    gen = torch.Generator().manual_seed(SEED)
    recs = torch.cat([model.reconstruct(inp["points"][i:i + 64], num_points, generator=gen)
                      for i in range(0, len(pick), 64)])
    labels = torch.as_tensor(ref["label"])
    if dataset == "digits2d":   # the digit of a cloud: its nearest training digit (1-NN under Chamfer)
        train = build_dataset(dataset, "train", **{**kwargs, "num_points": num_points, "pool": "train",
                                                   "sample": "first"})
        bank = default_collate([train[i] for i in spread_indices(len(train), 1000)])
        on_rec = pairwise_cd(recs, bank["points"]).argmin(1)
        on_inp = pairwise_cd(inp["points"], bank["points"]).argmin(1)
        bank_labels = torch.as_tensor(bank["label"])
        return {"label_accuracy_reconstructions": float((bank_labels[on_rec] == labels).float().mean()),
                "label_accuracy_inputs": float((bank_labels[on_inp] == labels).float().mean()),
                "label_classifier": "1-NN under Chamfer over 1000 training digits spread over the train split "
                                    "(train pool)"}
    dist = pairwise_cd(recs, ref["points"])                                       # (S, S), normalised coords
    nearest = dist.argmin(1)
    own = torch.arange(len(recs))
    same_cat = labels[:, None] == labels[None, :]
    others = dist.masked_fill(~same_cat | (own[:, None] == own[None, :]), float("inf")).min(1).values
    return {"category_accuracy": float((labels[nearest] == labels).float().mean()),
            "own_shape_rate": float((dist[own, own] < others).float().mean()),
            "controls_note": "category: the label of the nearest test reference (Chamfer) to each reconstruction; "
                             "own shape: the reconstruction is closer to its own reference than to every other "
                             "shape of its category"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--ema", action="store_true", help="ship the EMA weights instead of the raw ones")
    ap.add_argument("--num-shapes", type=int, default=None, help="test shapes to evaluate (default: all)")
    ap.add_argument("--num-points", type=int, default=None, help="points per sample (default 2048 in 3D, 512 in 2D)")
    ap.add_argument("--emd", default="approxmatch")
    ap.add_argument("--no-controls", action="store_true", help="skip the label / own-shape controls")
    ap.add_argument("--preset", default=None, help="the YAML preset the run came from (recorded in the card)")
    args = ap.parse_args()
    torch.set_num_threads(2)

    run = RunDir(args.run)
    ckpt = load_checkpoint(run.last)
    cfg = ckpt["config"]
    state = ckpt["ema"] if args.ema else ckpt["model"]
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    model = ShapeGF.from_config(ckpt["model_config"])
    model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in half.items()})
    model.eval()
    dataset, kwargs = cfg["dataset"], {k: v for k, v in cfg["dataset_kwargs"].items() if k != "num_points"}
    num_points = args.num_points or (2048 if ckpt["model_config"]["dim"] == 3 else 512)

    inputs = build_dataset(dataset, "test", **{**kwargs, "num_points": num_points, "pool": "train",
                                               "sample": "first"})
    refs = build_dataset(dataset, "test", **{**kwargs, "num_points": num_points, "pool": "test", "sample": "first"})
    result = evaluate_reconstruction(model, inputs, refs, num_shapes=args.num_shapes, emd_method=args.emd,
                                     seed=SEED, disable=False)
    check = evaluate_reconstruction(model, first_items(inputs, CHECK_SHAPES), first_items(refs, CHECK_SHAPES),
                                    emd_method=None, seed=SEED)
    ctrl = {} if args.no_controls else controls(model, dataset, kwargs, num_points, args.num_shapes)

    out_pt, out_card = FOLDER / f"{args.name}.pt", FOLDER / f"{args.name}.json"
    torch.save({"kind": KIND, "format_version": FORMAT_VERSION, "config": dict(ckpt["model_config"]),
                "state_dict": half}, out_pt)
    card = {
        "name": args.name,
        "model": "gfcore.models.ShapeGF", "model_config": dict(ckpt["model_config"]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights": {"file": out_pt.name, "dtype": "float16", "bytes": out_pt.stat().st_size,
                    "which": "EMA" if args.ema else "raw (last step; the EMA copy measured slightly worse: its "
                             "encoder's batch-norm statistics belong to the raw weights)"},
        "dataset": dataset, "dataset_kwargs": kwargs,
        "splits": {s: len(build_dataset(dataset, s, **{**kwargs, "num_points": 16})) for s in ("train", "val", "test")},
        "preset": args.preset, "config": cfg,
        "training": {"steps": int(ckpt["step"]), "wall_time_s": round(wall_time(ckpt["history"]), 1),
                     "hardware": cpu_name(), "torch": str(ckpt.get("torch_version", torch.__version__)),
                     "gfcore": ckpt.get("gfcore_version", gfcore.__version__),
                     "note": "wall time from the logged step rates; the run shared the 2-core CPU with other "
                             "jobs for part of the time (another training run and the book's tests)"},
        "evaluation": {"protocol": result["protocol"], "split": "test", "num_shapes": result["num_shapes"],
                       "num_points": num_points, "sampler": "ShapeGF.reconstruct defaults: uniform prior, "
                       "10 levels 1 -> 0.01, 10 steps each, step 2 sigma^2 (the official sampler)", "seed": SEED,
                       "emd_method": result["emd_method"], "units": "original coordinates; CD x1e4, EMD x1e2 as "
                       "the official README prints them"},
        "metrics": {"CD_x1e4": result["CD"] * 1e4, "oracle_CD_x1e4": result["oracle-CD"] * 1e4,
                    "CD_over_oracle": result["CD/oracle"], "EMD_x1e2": result["EMD"] * 1e2,
                    "oracle_EMD_x1e2": result["oracle-EMD"] * 1e2, "EMD_over_oracle": result["EMD/oracle"], **ctrl},
        "check": {"num_shapes": CHECK_SHAPES, "seed": SEED, "cd": check["cd"].tolist(),
                  "oracle_cd": check["oracle_cd"].tolist()},
        "history": compact_history(ckpt["history"], 1000 if ckpt["step"] >= 5000 else 500),
    }
    out_card.write_text(json.dumps(card, indent=1) + "\n")
    print(yaml.safe_dump({k: card[k] for k in ("metrics", "training", "weights")}, sort_keys=False))


if __name__ == "__main__":
    main()
