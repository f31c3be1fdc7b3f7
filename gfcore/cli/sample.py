"""``python -m gfcore sample``: auto-encode shapes of a split (an auto-encoder checkpoint), or generate new ones (a
latent-GAN checkpoint), into a ``(B, num_points, d)`` ``.npy``.

Taught in chapter 5 (The full 3D model) and chapter 7 (Generating new shapes).
"""
from __future__ import annotations

from pathlib import Path

from gfcore.cli import official
from gfcore.cli.common import CLIError, apply_overrides, checkpoint_kind, checkpoint_path, resolve_device


def add_parser(sub, parents) -> None:
    s = sub.add_parser("sample", parents=parents,
                       help="auto-encode shapes of a split, or generate shapes with a latent GAN",
                       description="Encode shapes of a split of the checkpoint's dataset and sample their "
                                   "points by annealed Langevin dynamics (a latent-GAN checkpoint: generate new "
                                   "shapes); writes a (B, num_points, d) .npy.")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint written by train (run/checkpoints/last.pt), or the run folder")
    official.add_arguments(s, src)
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
                   help="override the stored config (with --official: the data set its config names), e.g. "
                        "dataset_kwargs.root=/data/ShapeNetCore.v2.PC15k")
    s.set_defaults(func=run)


def generate(sample_fn, args, gen) -> list:
    """New shapes in batches: ``sample_fn(count, num_points, generator=, steps_per_sigma=)`` per batch."""
    outputs = []
    for start in range(0, args.num_shapes, args.batch_size):
        count = min(args.batch_size, args.num_shapes - start)
        outputs.append(sample_fn(count, args.num_points, generator=gen,
                                 steps_per_sigma=args.steps_per_sigma).float().cpu())
        print(f"gfcore sample: {start + count}/{args.num_shapes} shapes", flush=True)
    return outputs


def auto_encode(model, dataset, args, gen) -> tuple[list, list]:
    """Encode the first ``--num-shapes`` items of ``dataset`` and sample their points: ``(outputs, inputs)``."""
    import torch

    from gfcore.data.normalize import denormalize

    device = next(model.parameters()).device
    outputs, inputs = [], []
    count = min(args.num_shapes, len(dataset))
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
    return outputs, inputs


def write(args, outputs: list, inputs: list, what: str) -> int:
    """Write the samples (and ``--save-input``) as ``.npy``."""
    import numpy as np
    import torch

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    samples = torch.cat(outputs).numpy()
    np.save(out, samples)
    if args.save_input:
        Path(args.save_input).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.save_input, torch.cat(inputs).numpy())
    print(f"gfcore sample: wrote {out} {tuple(samples.shape)} ({what})", flush=True)
    return 0


def run_official(args) -> int:
    """``sample --official``: generate with the official latent GAN when the checkpoint holds one, else
    auto-encode shapes of the data set its config names."""
    import functools

    import torch

    from gfcore.data import build_dataset
    from gfcore.models import sample_shapes

    device = resolve_device(args.device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    models = official.load(args, device)
    if models.generator is not None:
        if args.raw or args.save_input:
            raise CLIError("--raw and --save-input apply to auto-encoding; generated shapes have no input")
        sample_fn = functools.partial(sample_shapes, models.autoencoder, models.generator)
        return write(args, generate(sample_fn, args, gen), [], "generated by the official latent GAN, normalised "
                                                                 "coordinates")
    name, kwargs = official.dataset_of(models.config, args.set)
    outputs, inputs = auto_encode(models.autoencoder, build_dataset(name, args.from_dataset, **kwargs), args, gen)
    what = f"official auto-encoder, {'raw' if args.raw else 'normalised'} coordinates, {args.from_dataset} split"
    return write(args, outputs, inputs, what)


def run(args) -> int:
    import torch

    from gfcore.checkpoint_io import LATENT_GAN_KIND, load_checkpoint, load_model
    from gfcore.data import build_dataset

    if args.num_points < 1 or args.num_shapes < 1 or args.batch_size < 1 or args.steps_per_sigma < 1:
        raise CLIError("--num-points, --num-shapes, --batch-size and --steps-per-sigma must be >= 1")
    if official.check_arguments(args):
        return run_official(args)
    ckpt_path = checkpoint_path(args.ckpt)
    device = resolve_device(args.device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    if checkpoint_kind(ckpt_path) == LATENT_GAN_KIND:      # generation: new shapes from the latent GAN
        from gfcore.train import load_latent_gan

        if args.raw or args.save_input:
            raise CLIError("--raw and --save-input apply to auto-encoding; generated shapes have no input")
        result = load_latent_gan(ckpt_path, device=device)
        return write(args, generate(result.sample, args, gen), [], "generated, normalised coordinates")
    config = apply_overrides(load_checkpoint(ckpt_path, map_location="cpu")["config"], args.set)
    if not config.get("dataset"):
        raise CLIError(f"{ckpt_path} was trained on datasets passed in code (config.dataset is empty); "
                       "auto-encode from Python instead")
    model = load_model(ckpt_path, device=device)
    dataset = build_dataset(config["dataset"], args.from_dataset, **(config.get("dataset_kwargs") or {}))
    outputs, inputs = auto_encode(model, dataset, args, gen)
    what = f"{'raw' if args.raw else 'normalised'} coordinates, {args.from_dataset} split"
    return write(args, outputs, inputs, what)
