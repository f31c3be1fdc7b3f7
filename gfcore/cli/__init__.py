"""Command line: ``python -m gfcore train|sample|eval|mesh``.

::

    python -m gfcore train --config configs/shapenet-airplane.yaml [--out runs/airplane] [--resume]
                           [--set key=value ...] [--no-progress]
    python -m gfcore sample --ckpt runs/airplane --out samples.npy
                            [--num-points 2048] [--num-shapes 16] [--from-dataset val] [--raw]
                            [--save-input PATH] [--set key=value ...]
    python -m gfcore eval --ckpt runs/airplane [--split val] [--data ROOT] [--emd approxmatch] [--out eval.json]
    python -m gfcore mesh (--ckpt runs/airplane | --pretrained shapes3d | --gan runs/airplane-gan)
                          --out shape.ply [--input cloud.npy | --dataset-index 0 [--split test]] [--sigma 0.05]
                          [--num-support 2048] [--resolution 128] [--raw]

``train`` loads a YAML preset into :class:`gfcore.train.AutoEncoderConfig` (or, for a preset with
``stage: gan``, :class:`gfcore.train.LatentGANConfig`; unknown keys are an error), applies ``--set`` overrides
(values parsed as YAML; dotted keys reach into dicts: ``--set dataset_kwargs.root=/data/pc15k``) and trains; the
run folder (:class:`gfcore.train.RunDir`) gets ``config.yaml``, ``metrics.jsonl`` and ``checkpoints/last.pt``.

``sample`` auto-encodes shapes of a split of the checkpoint's own dataset (encode, then annealed Langevin from
the uniform prior), or, given a latent-GAN run, generates new shapes; it writes a ``(B, num_points, d)``
``.npy`` in the normalised space (``--raw``: the dataset's original coordinates, auto-encoding only).

``eval`` scores an auto-encoder under the official protocol (:func:`gfcore.evaluation.main_eval`) and writes the
JSON record. ``mesh`` extracts the surface of one shape (:func:`gfcore.surface.mesh_from_model`) and writes it
as PLY or OBJ; the mesh is kept near ``--num-support`` of the model's own samples (0: everywhere), which removes
sheets a learned field can draw in empty space.

Errors in the input (a bad config key, a missing dataset folder, a missing checkpoint) exit with status 2 and
a one-line message; ``GF_DEBUG=1`` shows the traceback instead.

Taught in chapter 5 (training on a GPU), chapter 8 (surfaces) and chapter 10 (the ShapeNet commands).
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
    from gfcore.train import RunDir

    data = apply_overrides(load_config_dict(args.config), args.set)
    run = RunDir(args.out if args.out else Path("runs") / Path(args.config).stem)
    if args.resume and not run.has_checkpoint():
        raise CLIError(f"--resume: no checkpoint at {run.last}")
    print(f"gfcore train: config {args.config} -> {run.path}", flush=True)
    if data.get("stage") == "gan":       # ShapeGF's generation stage: a latent GAN on a trained auto-encoder
        from gfcore.train import LatentGANConfig, train_latent_gan

        result = train_latent_gan(LatentGANConfig.from_dict(data), out_dir=run, resume=args.resume,
                                  progress=not args.no_progress)
        keys = ("wdist", "latent_mmd", "latent_mmd_floor")
    else:
        from gfcore.train import AutoEncoderConfig, train_autoencoder

        result = train_autoencoder(AutoEncoderConfig.from_dict(data), out_dir=run, resume=args.resume,
                                   progress=not args.no_progress)
        keys = ("loss", "val_chamfer", "val_chamfer_oracle")
    last = {}
    for rec in result.history:
        last.update(rec)
    summary = ", ".join(f"{k}={last[k]:.5g}" for k in keys if isinstance(last.get(k), float))
    print(f"gfcore train: done at step {result.step}; {summary or 'no log records'}; "
          f"checkpoint {run.last}", flush=True)
    return 0


def _checkpoint_file(path) -> Path:
    """A checkpoint file, or a run folder's ``checkpoints/last.pt``; ``CLIError`` when there is none."""
    from gfcore.train import RunDir

    path = Path(path)
    if path.is_dir():
        path = RunDir(path).last
    if not path.is_file():
        raise CLIError(f"no checkpoint at {path}")
    return path


def _checkpoint_kind(path: Path) -> str | None:
    import torch

    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
        raise CLIError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    return blob.get("kind") if isinstance(blob, dict) else None


def _device(name: str):
    import torch

    from gfcore.utils import default_device

    return default_device() if name == "auto" else torch.device(name)


# ------------------------------------------------------------------------------------------------------------
# sample
# ------------------------------------------------------------------------------------------------------------
def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from gfcore.data import build_dataset
    from gfcore.data.normalize import denormalize
    from gfcore.train import load_checkpoint, load_model

    ckpt_path = _checkpoint_file(args.ckpt)
    if args.num_points < 1 or args.num_shapes < 1 or args.batch_size < 1 or args.steps_per_sigma < 1:
        raise CLIError("--num-points, --num-shapes, --batch-size and --steps-per-sigma must be >= 1")
    device = _device(args.device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    outputs, inputs = [], []
    if _checkpoint_kind(ckpt_path) == "shapegf-latent-gan":      # generation: new shapes from the latent GAN
        from gfcore.train import load_latent_gan

        if args.raw or args.save_input:
            raise CLIError("--raw and --save-input apply to auto-encoding; generated shapes have no input")
        result = load_latent_gan(ckpt_path, device=device)
        for start in range(0, args.num_shapes, args.batch_size):
            count = min(args.batch_size, args.num_shapes - start)
            outputs.append(result.sample(count, args.num_points, generator=gen,
                                         steps_per_sigma=args.steps_per_sigma).float().cpu())
            print(f"gfcore sample: {start + count}/{args.num_shapes} shapes", flush=True)
        what = "generated, normalised coordinates"
    else:
        config = apply_overrides(load_checkpoint(ckpt_path, map_location="cpu")["config"], args.set)
        if not config.get("dataset"):
            raise CLIError(f"{ckpt_path} was trained on datasets passed in code (config.dataset is empty); "
                           "auto-encode from Python instead")
        model = load_model(ckpt_path, device=device)
        dataset = build_dataset(config["dataset"], args.from_dataset, **(config.get("dataset_kwargs") or {}))
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
        what = f"{'raw' if args.raw else 'normalised'} coordinates, {args.from_dataset} split"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    samples = torch.cat(outputs).numpy()
    np.save(out, samples)
    if args.save_input:
        Path(args.save_input).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.save_input, torch.cat(inputs).numpy())
    print(f"gfcore sample: wrote {out} {tuple(samples.shape)} ({what})", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------------------
# eval
# ------------------------------------------------------------------------------------------------------------
def cmd_eval(args) -> int:
    from gfcore.evaluation import main_eval, main_eval_generation

    emd_method = None if args.emd == "none" else args.emd
    if args.refine_steps < 0:
        raise CLIError(f"--refine-steps must be >= 0, got {args.refine_steps}")
    if args.pretrained is not None:
        args.split = args.split or "val"
        out = main_eval(pretrained=args.pretrained, data=args.data, split=args.split, emd_method=emd_method,
                        num_shapes=args.num_shapes, out_json=args.out, num_points=args.num_points,
                        refine_steps=args.refine_steps, device=_device(args.device), batch_size=args.batch_size,
                        disable=args.no_progress)
        return _write_eval(out)
    ckpt_path = _checkpoint_file(args.ckpt)
    if _checkpoint_kind(ckpt_path) == "shapegf-latent-gan":     # generation: new shapes against the split
        if args.refine_steps:
            raise CLIError("--refine-steps applies to auto-encoders; a latent GAN generates new shapes")
        args.split = args.split or "test"
        if args.data is not None:
            raise CLIError("--data applies to auto-encoder checkpoints; a latent GAN takes its auto-encoder's data")
        out = main_eval_generation(ckpt_path, split=args.split, emd_method=emd_method, num_shapes=args.num_shapes,
                                   num_points=args.num_points, seed=args.seed, device=_device(args.device),
                                   batch_size=args.batch_size, out_json=args.out, disable=args.no_progress)
    else:
        args.split = args.split or "val"
        out = main_eval(ckpt_path, data=args.data, split=args.split, emd_method=emd_method,
                        num_shapes=args.num_shapes, out_json=args.out, num_points=args.num_points,
                        refine_steps=args.refine_steps, device=_device(args.device), batch_size=args.batch_size,
                        disable=args.no_progress)
    return _write_eval(out)


def _write_eval(out: dict) -> int:
    """Print ``main_eval``'s table and write its JSON record."""
    import json

    print(out["table"], flush=True)
    path = Path(out["json_path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out["record"], indent=2) + "\n")
    print(f"gfcore eval: wrote {path}", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------------------
# mesh
# ------------------------------------------------------------------------------------------------------------
def _mesh_source(args, device):
    """``(model, points or None, z or None, shift, scale)`` for ``mesh``: the shape to mesh, normalised as the
    model's data, and how to map it back to the input's coordinates."""
    import numpy as np
    import torch

    from gfcore.data import build_dataset
    from gfcore.data.normalize import normalize

    if args.gan:
        from gfcore.train import load_latent_gan

        result = load_latent_gan(_checkpoint_file(args.gan), device=device)
        if result.autoencoder is None:
            raise CLIError(f"{args.gan} was trained on codes passed in code: it has no auto-encoder to mesh with")
        gen = torch.Generator(device=device).manual_seed(args.seed)
        noise = torch.randn(1, result.config.noise_dim, generator=gen, device=device)
        with torch.no_grad():
            z = result.generator(noise)
        return result.autoencoder, None, z, None, None
    if args.pretrained:
        import gfcore.pretrained

        model = gfcore.pretrained.load(args.pretrained, device=device)
        card = gfcore.pretrained.card(args.pretrained)
        dataset, kwargs = card.get("dataset"), dict(card.get("dataset_kwargs") or {})
    else:
        from gfcore.train import load_checkpoint, load_model

        path = _checkpoint_file(args.ckpt)
        model = load_model(path, device=device)
        config = load_checkpoint(path)["config"]
        dataset, kwargs = config.get("dataset"), dict(config.get("dataset_kwargs") or {})
    if args.input:
        cloud = np.load(args.input)
        if cloud.ndim != 2 or cloud.shape[1] != 3:
            raise CLIError(f"--input must hold an (N, 3) array, got shape {cloud.shape}")
        points, shift, scale = normalize(torch.from_numpy(cloud.astype(np.float32)),
                                         kwargs.get("normalize", "shape_bbox"))
        return model, points, None, shift, scale
    if not dataset:
        raise CLIError("the model was trained on data passed in code: give the shape with --input cloud.npy")
    items = build_dataset(dataset, args.split, **kwargs)
    if not 0 <= args.dataset_index < len(items):
        raise CLIError(f"--dataset-index {args.dataset_index} is outside the {args.split} split "
                       f"({len(items)} shapes)")
    item = items[args.dataset_index]
    return model, item["points"], None, item["shift"], item["scale"]


def cmd_mesh(args) -> int:
    import time

    from gfcore import surface
    from gfcore.data.normalize import denormalize

    if sum(bool(v) for v in (args.ckpt, args.pretrained, args.gan)) != 1:
        raise CLIError("give exactly one of --ckpt, --pretrained and --gan")
    if args.gan and (args.input or args.raw):
        raise CLIError("--input and --raw apply to encoded shapes; --gan generates a new one")
    device = _device(args.device)
    model, points, z, shift, scale = _mesh_source(args, device)
    if args.num_support < 0:
        raise CLIError(f"--num-support must be >= 0 (0: no support), got {args.num_support}")
    options = {k: v for k, v in (("resolution", args.resolution), ("bounds", args.bounds),
                                 ("project_steps", args.project_steps), ("keep", args.keep)) if v is not None}
    t0 = time.perf_counter()
    vertices, faces = surface.mesh_from_model(model, points=points, z=z, sigma=args.sigma,
                                              num_support=args.num_support, **options)
    if args.raw:
        vertices = denormalize(vertices, shift.reshape(1, 3).to(vertices), scale.reshape(1, 1).to(vertices))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    surface.write_mesh(args.out, vertices, faces)
    print(f"gfcore mesh: wrote {args.out} ({len(vertices)} vertices, {len(faces)} faces, "
          f"{time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------------------
# parser and entry point
# ------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gfcore",
                                     description="gfcore: train and sample ShapeGF "
                                                 "(gradient fields for shapes)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,eval,mesh}")

    t = sub.add_parser("train", help="train the auto-encoder (or, stage: gan, the latent GAN) from a YAML preset",
                       description="Train ShapeGF's auto-encoder from a YAML preset (configs/*.yaml); a preset "
                                   "with 'stage: gan' trains the latent GAN of the generation stage.")
    t.add_argument("--config", required=True,
                   help="YAML preset: keys of gfcore.train.AutoEncoderConfig (LatentGANConfig with stage: gan)")
    t.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (YAML value; dotted keys for dicts), repeatable")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="auto-encode shapes of a split, or generate shapes with a latent GAN",
                       description="Encode shapes of a split of the checkpoint's dataset and sample their "
                                   "points by annealed Langevin dynamics (a latent-GAN checkpoint: generate new "
                                   "shapes); writes a (B, num_points, d) .npy.")
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

    e = sub.add_parser("eval", help="score an auto-encoder (official protocol) or a latent GAN (generation table)",
                       description="Auto-encoder checkpoint: reconstruct a split of its data set (train-pool sample "
                                   "in, test-pool sample as reference) and report CD and EMD beside the oracle. "
                                   "Latent-GAN checkpoint: generate one shape per shape of the split and report "
                                   "MMD, COV and 1-NNA (box-normalised clouds). Writes the JSON record.")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="auto-encoder or latent-GAN checkpoint, or its run folder")
    src.add_argument("--pretrained", metavar="NAME",
                     help="a shipped auto-encoder (gfcore.pretrained: shapes3d, digits2d) on its card's data set")
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
    e.set_defaults(func=cmd_eval)

    m = sub.add_parser("mesh", help="extract the surface of one shape as a PLY or OBJ mesh",
                       description="Encode one shape (a data-set item or an (N, 3) .npy cloud), or generate one "
                                   "with a latent GAN, and mesh the learned field by marching cubes.")
    m.add_argument("--ckpt", default=None, help="auto-encoder checkpoint, or its run folder")
    m.add_argument("--pretrained", default=None, metavar="NAME", help="a shipped model (gfcore.pretrained)")
    m.add_argument("--gan", default=None, metavar="CKPT", help="latent-GAN checkpoint: mesh a generated shape")
    m.add_argument("--out", required=True, help="output mesh, .ply or .obj")
    m.add_argument("--input", default=None, metavar="NPY", help="an (N, 3) cloud to encode (normalised first)")
    m.add_argument("--dataset-index", type=int, default=0, help="item of the model's data set (default 0)")
    m.add_argument("--split", default="test", choices=("train", "val", "test"), help="split of --dataset-index")
    m.add_argument("--seed", type=int, default=0, help="seed of the latent GAN's noise (--gan)")
    m.add_argument("--sigma", type=float, default=0.05,
                   help="noise level of the field to mesh (default 0.05: best for the shipped shapes3d, chapter 8)")
    m.add_argument("--num-support", type=int, default=2048, metavar="N",
                   help="keep the mesh near N samples of the model's own (annealed Langevin); 0: no support")
    m.add_argument("--resolution", type=int, default=None, help="marching-cubes grid size per side")
    m.add_argument("--bounds", type=float, default=None, help="half side of the meshed box")
    m.add_argument("--project-steps", type=int, default=None, help="steps projecting vertices onto the surface")
    m.add_argument("--keep", default=None, choices=("outer", "all"), help="components to keep")
    m.add_argument("--raw", action="store_true", help="write the input's original coordinates")
    m.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, ...")
    m.set_defaults(func=cmd_mesh)
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
