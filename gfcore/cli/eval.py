"""``python -m gfcore eval``: score an auto-encoder under the official protocol
(:func:`gfcore.evaluation.main_eval`) or a latent GAN (:func:`gfcore.evaluation.main_eval_generation`), and write
the JSON record.

Taught in chapter 6 (Measuring quality) and chapter 7 (Generating new shapes).
"""
from __future__ import annotations

from pathlib import Path

from gfcore.cli import official
from gfcore.cli.common import CLIError, checkpoint_kind, checkpoint_path, resolve_device


def add_parser(sub, parents) -> None:
    e = sub.add_parser("eval", parents=parents,
                       help="score an auto-encoder (official protocol) or a latent GAN (generation table)",
                       description="Auto-encoder checkpoint: reconstruct a split of its data set (train-pool sample "
                                   "in, test-pool sample as reference) and report CD and EMD beside the oracle. "
                                   "Latent-GAN checkpoint: generate one shape per shape of the split and report "
                                   "MMD, COV and 1-NNA (box-normalised clouds). Writes the JSON record.")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="auto-encoder or latent-GAN checkpoint, or its run folder")
    src.add_argument("--pretrained", metavar="NAME",
                     help="a shipped auto-encoder (gfcore.pretrained: shapes3d, digits2d) on its card's data set")
    official.add_arguments(e, src)
    e.add_argument("--split", default=None, choices=("train", "val", "test"),
                   help="split (default: val for an auto-encoder, as the official code; test for a latent GAN)")
    e.add_argument("--data", default=None, metavar="ROOT", help="replace the data root (shapenet)")
    e.add_argument("--emd", default="approxmatch", choices=("approxmatch", "exact", "sinkhorn", "none"),
                   help="EMD algorithm (none: Chamfer only)")
    e.add_argument("--num-shapes", type=int, default=None, help="shapes spread over the split (default: all)")
    e.add_argument("--num-points", type=int, default=2048, help="points per sample (official 2048)")
    e.add_argument("--batch-size", type=int, default=32, help="shapes per batch")
    e.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, ...")
    e.add_argument("--out", default=None, help="JSON record (default: eval_<split>.json, or eval_gen_<split>.json for "
                                               "a latent GAN, beside the checkpoint; eval_<NAME>_<split>.json in "
                                               "the current folder for --pretrained NAME)")
    e.add_argument("--seed", type=int, default=0, help="seed of the generated shapes (latent GAN)")
    e.add_argument("--refine-steps", type=int, default=0,
                   help="auto-encoder: refine each code on its input points first (ShapeGF.reconstruct("
                        "refine_steps=...)); default 0, the official encoder-only protocol")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=run)


def write_record(out: dict) -> int:
    """Print ``main_eval``'s table and write its JSON record."""
    import json

    print(out["table"], flush=True)
    path = Path(out["json_path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out["record"], indent=2) + "\n")
    print(f"gfcore eval: wrote {path}", flush=True)
    return 0


def run(args) -> int:
    from gfcore.checkpoint_io import LATENT_GAN_KIND
    from gfcore.evaluation import main_eval, main_eval_generation

    emd_method = None if args.emd == "none" else args.emd
    if args.refine_steps < 0:
        raise CLIError(f"--refine-steps must be >= 0, got {args.refine_steps}")
    common = dict(emd_method=emd_method, num_shapes=args.num_shapes, num_points=args.num_points,
                  batch_size=args.batch_size, out_json=args.out, disable=args.no_progress)
    if official.check_arguments(args):
        return write_record(official.evaluate(args, resolve_device(args.device)))
    if args.pretrained is not None:
        device = resolve_device(args.device)
        args.split = args.split or "val"
        return write_record(main_eval(pretrained=args.pretrained, data=args.data, split=args.split,
                                      refine_steps=args.refine_steps, device=device, **common))
    ckpt_path = checkpoint_path(args.ckpt)
    device = resolve_device(args.device)
    if checkpoint_kind(ckpt_path) == LATENT_GAN_KIND:     # generation: new shapes against the split
        if args.refine_steps:
            raise CLIError("--refine-steps applies to auto-encoders; a latent GAN generates new shapes")
        if args.data is not None:
            raise CLIError("--data applies to auto-encoder checkpoints; a latent GAN takes its auto-encoder's data")
        args.split = args.split or "test"
        return write_record(main_eval_generation(ckpt_path, split=args.split, seed=args.seed, device=device,
                                                 **common))
    args.split = args.split or "val"
    return write_record(main_eval(ckpt_path, data=args.data, split=args.split, refine_steps=args.refine_steps,
                                  device=device, **common))
