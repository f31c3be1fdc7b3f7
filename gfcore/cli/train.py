"""``python -m gfcore train``: a YAML preset (plus ``--set`` overrides) into a trainer's config, then a run folder.

Taught in chapter 5 (training on a GPU) and chapter 10 (the ShapeNet commands).
"""
from __future__ import annotations

from pathlib import Path

from gfcore.cli.common import CLIError, apply_overrides, load_config_dict, resolve_device


def add_parser(sub, parents) -> None:
    t = sub.add_parser("train", parents=parents,
                       help="train the auto-encoder (or, stage: gan, the latent GAN) from a YAML preset",
                       description="Train ShapeGF's auto-encoder from a YAML preset (configs/*.yaml); a preset "
                                   "with 'stage: gan' trains the latent GAN of the generation stage.")
    t.add_argument("--config", required=True,
                   help="YAML preset: keys of gfcore.train.AutoEncoderConfig (LatentGANConfig with stage: gan)")
    t.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (YAML value; dotted keys for dicts), repeatable")
    t.add_argument("--device", default=None,
                   help="override the config's device: auto (CUDA if present), cpu, cuda, cuda:1, ...")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run)


def run(args) -> int:
    from gfcore.train import RunDir

    data = apply_overrides(load_config_dict(args.config), args.set)
    if args.device is not None:
        data["device"] = args.device
    if isinstance(data.get("device"), str):          # a CUDA device on a machine without one fails here, clearly
        resolve_device(data["device"], "--device" if args.device is not None else f"{args.config}: device:")
    run_dir = RunDir(args.out if args.out else Path("runs") / Path(args.config).stem)
    if args.resume and not run_dir.has_checkpoint():
        raise CLIError(f"--resume: no checkpoint at {run_dir.last}")
    print(f"gfcore train: config {args.config} -> {run_dir.path}", flush=True)
    if data.get("stage") == "gan":       # ShapeGF's generation stage: a latent GAN on a trained auto-encoder
        from gfcore.train import LatentGANConfig, train_latent_gan

        result = train_latent_gan(LatentGANConfig.from_dict(data), out_dir=run_dir, resume=args.resume,
                                  progress=not args.no_progress)
        keys = ("wdist", "latent_mmd", "latent_mmd_floor")
    else:
        from gfcore.train import AutoEncoderConfig, train_autoencoder

        result = train_autoencoder(AutoEncoderConfig.from_dict(data), out_dir=run_dir, resume=args.resume,
                                   progress=not args.no_progress)
        keys = ("loss", "val_chamfer", "val_chamfer_oracle")
    last = {}
    for rec in result.history:
        last.update(rec)
    summary = ", ".join(f"{k}={last[k]:.5g}" for k in keys if isinstance(last.get(k), float))
    print(f"gfcore train: done at step {result.step}; {summary or 'no log records'}; "
          f"checkpoint {run_dir.last}", flush=True)
    return 0
