"""``--official CKPT --official-config YAML`` for ``sample``, ``eval`` and ``mesh``: a checkpoint of the official
ShapeGF code (:func:`gfcore.pretrained.load_official`) used through the same calls as a native model.

The official config's ``data`` section names the ShapeNet PC15k categories and folder it was trained on; with
``recenter_per_shape: true`` (the ShapeGF configs) that is gfcore's ``shapenet`` data set with the per-shape
bounding-box normalisation (``shape_bbox``). ``--set dataset_kwargs.root=...`` (``sample``) or ``--data ROOT``
(``eval``) point it at another folder.

Taught in chapter 10 (Reproducing the paper).
"""
from __future__ import annotations

import time
from pathlib import Path

from gfcore.cli.common import CLIError, apply_overrides

#: what a ``data`` section of an official config must say for gfcore to rebuild the data set
_SUPPORTED = "dataset_type: shapenet15k with recenter_per_shape: true (the ShapeGF configs)"


def add_arguments(parser, group=None) -> None:
    """``--official`` (into ``group``, a mutually exclusive group of model sources, when given) and
    ``--official-config``."""
    (group or parser).add_argument("--official", default=None, metavar="CKPT",
                                   help="a checkpoint of the official ShapeGF code (needs --official-config)")
    parser.add_argument("--official-config", default=None, metavar="YAML",
                        help="the YAML config of the official run that wrote --official")


def check_arguments(args) -> bool:
    """Whether ``--official`` is used; ``CLIError`` when only one of the two flags is given."""
    if bool(args.official) != bool(args.official_config):
        raise CLIError("--official CKPT and --official-config YAML go together: give the checkpoint of the "
                       "official code and the YAML config of the run that wrote it")
    return bool(args.official)


def load(args, device):
    """:func:`gfcore.pretrained.load_official` of ``--official`` and ``--official-config`` on ``device``.

    Raises:
        CLIError: a missing file, a file that is not an official checkpoint, a config that does not fit it.
    """
    from gfcore.pretrained import load_official

    for flag, path in (("--official", args.official), ("--official-config", args.official_config)):
        if not Path(path).is_file():
            raise CLIError(f"{flag}: no file at {path}")
    try:
        return load_official(args.official, args.official_config, device=device)
    except ValueError as err:
        text = " ".join(str(err).split())
        raise CLIError(f"{text} (--official {args.official}, --official-config {args.official_config}: pass the "
                       "official checkpoint with the YAML config of the run that wrote it)") from None


def dataset_of(config: dict, assignments: list[str] | None = None) -> tuple[str, dict]:
    """``(name, kwargs)`` for :func:`gfcore.data.build_dataset`: the data an official config trained on, with
    ``--set`` assignments (``dataset_kwargs.root=...``) applied.

    Raises:
        CLIError: a ``data`` section gfcore cannot rebuild.
    """
    data = config.get("data") or {}
    if data.get("dataset_type") != "shapenet15k" or not data.get("recenter_per_shape"):
        seen = f"dataset_type: {data.get('dataset_type')}, recenter_per_shape: {data.get('recenter_per_shape')}"
        raise CLIError(f"the official config's data section ({seen}) is not one gfcore rebuilds ({_SUPPORTED}): "
                       "give the shape with --input (mesh), or evaluate from Python")
    kwargs = {"root": data.get("data_dir", "data/ShapeNetCore.v2.PC15k"), "normalize": "shape_bbox",
              "categories": list(data.get("cates") or []), "num_points": int(data.get("tr_max_sample_points", 2048))}
    spec = apply_overrides({"dataset": "shapenet", "dataset_kwargs": kwargs}, assignments or [])
    return spec["dataset"], dict(spec["dataset_kwargs"] or {})


def _json_ready(result: dict) -> dict:
    import torch

    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in result.items()
            if k != "generated"}


def evaluate(args, device) -> dict:
    """``eval --official``: the reconstruction protocol of an auto-encoder checkpoint, or the generation table when
    the checkpoint holds a latent GAN; ``{"table", "record", "json_path"}`` as :func:`gfcore.evaluation.main_eval`.
    """
    import torch

    from gfcore._version import __version__
    from gfcore.data import build_dataset
    from gfcore.data.normalize import PROTOCOLS
    from gfcore.evaluation import GENERATION_PROTOCOL, evaluate_generation, evaluate_reconstruction, protocol_data
    from gfcore.evaluation import format_table as reconstruction_table
    from gfcore.metrics import format_table

    models = load(args, device)
    assignments = [f"dataset_kwargs.root={args.data}"] if args.data is not None else []
    name, kwargs = dataset_of(models.config, assignments)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("pool", "sample", "num_points")}
    emd_method = None if args.emd == "none" else args.emd
    t0 = time.perf_counter()
    if models.generator is not None:
        if args.refine_steps:
            raise CLIError("--refine-steps applies to auto-encoders; a latent GAN generates new shapes")
        split = args.split or "test"
        references = build_dataset(name, split, num_points=args.num_points, pool="test", sample="first", **kwargs)
        result = evaluate_generation(models.autoencoder, models.generator, references, num_shapes=args.num_shapes,
                                     emd_method=emd_method, seed=args.seed, batch_size=args.batch_size,
                                     device=device, disable=args.no_progress)
        protocol, stem = GENERATION_PROTOCOL, f"eval_gen_{split}"
        table = format_table({k: v for k, v in result.items() if k != "generated"}, protocol=protocol)
    else:
        split = args.split or "val"
        inputs, references = protocol_data(name, split, num_points=args.num_points, **kwargs)
        result = evaluate_reconstruction(models.autoencoder, inputs, references, num_shapes=args.num_shapes,
                                         emd_method=emd_method, batch_size=args.batch_size, device=device,
                                         disable=args.no_progress, refine_steps=args.refine_steps)
        protocol, stem, table = result["protocol"], f"eval_{split}", reconstruction_table(result)
    seconds = time.perf_counter() - t0
    record = {**_json_ready(result), "protocol_description": PROTOCOLS[protocol],
              "checkpoint": f"official:{args.official}", "official_config": str(args.official_config),
              "step": models.step, "epoch": models.epoch, "dataset": name, "split": split,
              "dataset_kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()},
              "device": str(device), "seconds": seconds, "gfcore_version": __version__,
              "torch_version": torch.__version__}
    table += f"\n(official checkpoint {args.official}; {name} {split}; {seconds:.0f} s)"
    json_path = Path(args.out) if args.out is not None else Path(args.official).parent / f"{stem}.json"
    return {"table": table, "record": record, "json_path": json_path}


__all__ = ["add_arguments", "check_arguments", "dataset_of", "evaluate", "load"]
