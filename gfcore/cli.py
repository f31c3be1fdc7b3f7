"""Command line: ``python -m gfcore train|sample``.

::

    python -m gfcore train --config configs/shapenet-airplane.yaml [--out runs/airplane] [--resume]
                           [--set key=value ...] [--no-progress]
    python -m gfcore sample --ckpt runs/airplane --out samples.npy
                            [--num-points 2048] [--num-shapes 16] [--from-dataset val] [--raw]
                            [--save-input PATH] [--set key=value ...]

``train`` loads a YAML preset into :class:`gfcore.train.AutoEncoderConfig` (unknown keys are an error),
applies ``--set`` overrides (values parsed as YAML; dotted keys reach into dicts:
``--set dataset_kwargs.root=/data/pc15k``) and runs :func:`gfcore.train.train_autoencoder`; the run
folder gets ``config.yaml``, ``metrics.jsonl`` and ``checkpoints/last.pt``.

``sample`` auto-encodes shapes of a split of the checkpoint's own dataset (encode, then annealed Langevin from
the uniform prior) and writes a ``(B, num_points, d)`` ``.npy``, in the normalised space (``--raw``: the
dataset's original coordinates).

Errors in the input (a bad config key, a missing dataset folder, a missing checkpoint) exit with status 2 and
a one-line message; ``GF_DEBUG=1`` shows the traceback instead.

Taught in chapter 5 (training on a GPU) and chapter 10 (the ShapeNet commands).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

EXIT_USAGE = 2


class CLIError(Exception):
    """A user error reported as one line on stderr with exit status 2."""


def parse_assignment(text: str) -> tuple[list[str], object]:
    """``"a.b=1e-3"`` -> ``(["a", "b"], 0.001)``: the key path and the value parsed as YAML (``1e-3`` and
    ``None`` included, which YAML 1.1 alone reads as strings).

    Raises:
        CLIError: no ``=``, or an empty key.
    """
    if "=" not in text:
        raise CLIError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    path = [k.strip() for k in key.strip().split(".")]
    if not all(path):
        raise CLIError(f"--set has an empty key in {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str):
        if parsed.strip().lower() == "none":
            parsed = None
        else:
            try:  # YAML 1.1 reads "1e-4" (no dot) as a string; a number is meant
                parsed = float(parsed)
            except ValueError:
                pass
    return path, parsed


def apply_overrides(config: dict, assignments: list[str]) -> dict:
    """Apply ``--set`` assignments to a config dict (a copy): nested keys create dicts as needed."""
    out = yaml.safe_load(yaml.safe_dump(config))  # deep copy of plain data
    for text in assignments or []:
        path, value = parse_assignment(text)
        node = out
        for k in path[:-1]:
            if node.get(k) is None:
                node[k] = {}
            if not isinstance(node[k], dict):
                raise CLIError(f"--set {text!r}: {k!r} is not a mapping (it is {node[k]!r})")
            node = node[k]
        node[path[-1]] = value
    return out


def load_config_dict(path) -> dict:
    """Read a YAML preset into a dict (a mapping of config keys)."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"no config file at {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise CLIError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    return data


# ------------------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from gfcore.train import AutoEncoderConfig, RunDir, train_autoencoder

    data = apply_overrides(load_config_dict(args.config), args.set)
    config = AutoEncoderConfig.from_dict(data)
    run = RunDir(args.out if args.out else Path("runs") / Path(args.config).stem)
    if args.resume and not run.has_checkpoint():
        raise CLIError(f"--resume: no checkpoint at {run.last}")
    print(f"gfcore train: config {args.config} -> {run.path}", flush=True)
    result = train_autoencoder(config, out_dir=run, resume=args.resume, progress=not args.no_progress)
    last = {}
    for rec in result.history:
        last.update(rec)
    summary = ", ".join(f"{k}={last[k]:.5g}" for k in ("loss", "val_chamfer")
                        if isinstance(last.get(k), float))
    print(f"gfcore train: done at step {result.step}; {summary or 'no log records'}; "
          f"checkpoint {run.last}", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------------------
# sample
# ------------------------------------------------------------------------------------------------------------
def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from gfcore.data import build_dataset
    from gfcore.data.normalize import denormalize
    from gfcore.train import RunDir, load_checkpoint, load_model
    from gfcore.utils import default_device

    ckpt_path = Path(args.ckpt)
    if ckpt_path.is_dir():                 # a run folder means its checkpoints/last.pt
        ckpt_path = RunDir(ckpt_path).last
    if not ckpt_path.is_file():
        raise CLIError(f"no checkpoint at {ckpt_path}")
    if args.num_points < 1 or args.num_shapes < 1 or args.batch_size < 1 or args.steps_per_sigma < 1:
        raise CLIError("--num-points, --num-shapes, --batch-size and --steps-per-sigma must be >= 1")
    device = default_device() if args.device == "auto" else torch.device(args.device)
    config = load_checkpoint(ckpt_path, map_location="cpu")["config"]
    config = apply_overrides(config, args.set)
    if not config.get("dataset"):
        raise CLIError(f"{ckpt_path} was trained on datasets passed in code (config.dataset is empty); "
                       "auto-encode from Python instead")
    model = load_model(ckpt_path, device=device)
    dataset = build_dataset(config["dataset"], args.from_dataset, **(config.get("dataset_kwargs") or {}))
    count = min(args.num_shapes, len(dataset))
    gen = torch.Generator(device=device).manual_seed(args.seed)
    outputs, inputs = [], []
    for start in range(0, count, args.batch_size):
        items = [dataset[i] for i in range(start, min(start + args.batch_size, count))]
        points = torch.stack([it["points"] for it in items]).to(device)
        shift = torch.stack([it["shift"] for it in items]).to(device)
        scale = torch.stack([it["scale"] for it in items]).to(device)
        rec = model.reconstruct(points, args.num_points, steps_per_sigma=args.steps_per_sigma, generator=gen)
        if args.raw:
            rec, points = denormalize(rec, shift, scale), denormalize(points, shift, scale)
        outputs.append(rec.float().cpu())
        inputs.append(points.float().cpu())
        print(f"gfcore sample: {min(start + args.batch_size, count)}/{count} shapes", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    samples = torch.cat(outputs).numpy()
    np.save(out, samples)
    if args.save_input:
        Path(args.save_input).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.save_input, torch.cat(inputs).numpy())
    print(f"gfcore sample: wrote {out} {tuple(samples.shape)} "
          f"({'raw' if args.raw else 'normalised'} coordinates, {args.from_dataset} split)", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------------------
# parser and entry point
# ------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gfcore",
                                     description="gfcore: train and sample ShapeGF "
                                                 "(gradient fields for shapes)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample}")

    t = sub.add_parser("train", help="train the auto-encoder from a YAML preset",
                       description="Train ShapeGF's auto-encoder from a YAML preset (configs/*.yaml).")
    t.add_argument("--config", required=True, help="YAML preset: keys of gfcore.train.AutoEncoderConfig")
    t.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (YAML value; dotted keys for dicts), repeatable")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="auto-encode shapes of a split with a trained checkpoint",
                       description="Encode shapes of a split of the checkpoint's dataset and sample their "
                                   "points by annealed Langevin dynamics; writes a (B, num_points, d) .npy.")
    s.add_argument("--ckpt", required=True,
                   help="checkpoint written by train (run/checkpoints/last.pt), or the run folder")
    s.add_argument("--out", required=True, help="output .npy: (num_shapes, num_points, d) float32")
    s.add_argument("--num-points", type=int, default=2048, help="points per shape (any number; default 2048)")
    s.add_argument("--num-shapes", type=int, default=16, help="shapes to auto-encode: the first of the split")
    s.add_argument("--from-dataset", default="val", choices=("train", "val", "test"), metavar="SPLIT",
                   help="split of the checkpoint's dataset to encode (default val)")
    s.add_argument("--steps-per-sigma", type=int, default=10,
                   help="Langevin steps per noise level (official 10)")
    s.add_argument("--batch-size", type=int, default=32, help="shapes per batch")
    s.add_argument("--seed", type=int, default=0, help="seed of the prior and the Langevin noise")
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    s.add_argument("--raw", action="store_true",
                   help="write the dataset's original coordinates (de-normalised)")
    s.add_argument("--save-input", default=None, metavar="PATH", help="also write the encoded input clouds")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the stored config, e.g. dataset_kwargs.root=/data/ShapeNetCore.v2.PC15k")
    s.set_defaults(func=cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ValueError, TypeError, FileNotFoundError, ImportError) as err:
        if os.environ.get("GF_DEBUG"):
            raise
        print(f"gfcore {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
