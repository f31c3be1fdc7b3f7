"""Evaluating a trained auto-encoder: the official auto-encoding protocol of ShapeGF (after PointFlow).

Each shape is encoded from its **train-pool** sample (the first 2,048 of points 0..9,999) and the
reconstruction is compared with its **test-pool** sample (the first 2,048 of points 10,000..14,999): two
independent samples of the same surface. Both are mapped back to the original coordinates (the per-shape
normalisation undone), the whole split is evaluated, and the result is printed as the official README does,
CD x10^4 and EMD x10^2, beside the **oracle**: the train-pool sample scored against the test-pool sample, the
best a perfect auto-encoder could do given that the two samples differ. Every number then reads as "k times
the oracle".

    CD(rec, ref) = mean_i min_j |rec_i - ref_j|^2 + mean_j min_i |rec_i - ref_j|^2
    EMD(rec, ref) = min_phi (1/N) sum_i |rec_i - ref_phi(i)|           (approxmatch by default, as published)

Evaluation is not training: the trainer calls :func:`evaluate_reconstruction` for its validation records, and
chapters and ``python -m gfcore eval`` (through :func:`main_eval`) call it on held-out splits. Nothing here
writes files; :func:`main_eval` returns the record and the path the command line writes it to.

Taught in chapter 5 (The full 3D model) and chapter 6 (Measuring quality).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from gfcore import _checks
from gfcore._version import __version__
from gfcore.data.normalize import PROTOCOLS, denormalize
from gfcore.metrics import EMD_COSTS, EMD_METHODS, chamfer_distance, emd

PROTOCOL = "shapegf_autoencoding"
CD_SCALE = 1e4            # the official README prints CD x10^4
EMD_SCALE = 1e2           # and EMD x10^2


def first_items(dataset: Dataset, count: int) -> dict:
    """Collate the first ``min(count, len(dataset))`` items of ``dataset`` into one batch dict.

    Args:
        dataset: a dataset of ``{"points": (N, d), "shift": (1, d), "scale": (1, 1), ...}`` items.
        count: how many items to take.

    Returns:
        ``{"points": (B, N, d), "shift": (B, 1, d), "scale": (B, 1, 1), ...}``.

    Taught in chapter 5 (The full 3D model).
    """
    return default_collate([dataset[i] for i in range(min(count, len(dataset)))])


def spread_indices(length: int, count: int | None) -> list[int]:
    """``count`` indices spread evenly over ``range(length)`` (all of them for ``None``), so that a subset of a
    split ordered by category still holds every category."""
    if count is None or count >= length:
        return list(range(length))
    count = _checks.positive_int("num_shapes", count)
    if count == 1:
        return [0]
    return sorted({round(i * (length - 1) / (count - 1)) for i in range(count)})


def protocol_data(name: str, split: str = "val", *, num_points: int = 2048, **dataset_kwargs):
    """The two samples the official protocol compares, as data sets of the same shapes in the same order.

    ``inputs`` = ``build_dataset(name, split, pool="train", sample="first")`` (what the encoder sees),
    ``references`` = the same with ``pool="test"`` (what the reconstruction is scored against).

    Args:
        name: a data set name of :data:`gfcore.data.DATASETS` (``"shapes3d"``, ``"shapenet"``, ...).
        split: ``"train"``, ``"val"`` (the official default) or ``"test"``.
        num_points: points per sample (official: 2048).
        **dataset_kwargs: the data set's other arguments (e.g. a training config's ``dataset_kwargs``); any
            ``pool``, ``sample`` or ``num_points`` in them is replaced by the protocol's.

    Returns:
        ``(inputs, references)``.

    Raises:
        ValueError: as :func:`gfcore.data.build_dataset` (unknown name, missing data root, ...).

    Taught in chapter 6 (Measuring quality).
    """
    from gfcore.data import build_dataset

    kw = {k: v for k, v in dataset_kwargs.items() if k not in ("pool", "sample", "num_points")}
    inputs = build_dataset(name, split, num_points=num_points, pool="train", sample="first", **kw)
    references = build_dataset(name, split, num_points=num_points, pool="test", sample="first", **kw)
    return inputs, references


def _as_batch(name: str, data, num_shapes: int | None) -> dict:
    """A collated batch dict from a data set (spread indices) or a batch (its first ``num_shapes``)."""
    if isinstance(data, dict):
        if "points" not in data:
            raise ValueError(f"{name} must be a data set or a batch dict with 'points', got keys {sorted(data)}")
        count = data["points"].shape[0] if num_shapes is None else num_shapes
        return {k: (v[:count] if isinstance(v, torch.Tensor) else v) for k, v in data.items()}
    if not isinstance(data, Dataset):
        raise TypeError(f"{name} must be a Dataset or a batch dict, got {type(data).__name__}")
    sample = getattr(data, "sample", "first")
    if sample != "first":
        raise ValueError(f"{name} draws its points at random (sample={sample!r}); the protocol takes the first "
                         "points of each pool (sample='first'): see protocol_data")
    if len(data) == 0:
        raise ValueError(f"{name} is an empty data set")
    return default_collate([data[i] for i in spread_indices(len(data), num_shapes)])


def _check_protocol(inputs, references, inp: dict, ref: dict) -> None:
    """The two samples must be different samples of the same shapes."""
    pools = getattr(inputs, "pool", None), getattr(references, "pool", None)
    if pools[0] is not None and pools[0] == pools[1]:
        raise ValueError(f"inputs and references both come from the {pools[0]!r} pool; the protocol encodes the "
                         "train-pool sample and scores against the test-pool sample (see protocol_data)")
    p_in, p_ref = inp["points"], ref["points"]
    if p_in.shape[0] != p_ref.shape[0]:
        raise ValueError(f"inputs has {p_in.shape[0]} shapes but references has {p_ref.shape[0]}")
    if "idx" in inp and "idx" in ref and not torch.equal(torch.as_tensor(inp["idx"]), torch.as_tensor(ref["idx"])):
        raise ValueError("inputs and references hold different shapes (their 'idx' differ); pass the same shapes "
                         "in the same order")
    if p_in.shape == p_ref.shape and torch.equal(p_in, p_ref):
        raise ValueError("inputs and references are the same points; the protocol needs two independent samples "
                         "of each shape (train pool in, test pool as reference), or it flatters the model")
    for key in ("shift", "scale"):
        if (key in inp) != (key in ref):
            raise ValueError(f"only one of inputs and references carries {key!r}")
        if key in inp and not torch.allclose(inp[key].double(), ref[key].double(), rtol=1e-5, atol=1e-6):
            raise ValueError(f"inputs and references have different {key!r}: they must be the same shapes under "
                             "the same normalisation")


def _original(points: torch.Tensor, batch: dict) -> torch.Tensor:
    """``points`` in the data set's original coordinates when the batch carries ``shift``/``scale``."""
    shift, scale = batch.get("shift"), batch.get("scale")
    if shift is None and scale is None:
        return points
    shift = torch.zeros((), dtype=points.dtype) if shift is None else shift
    scale = torch.ones((), dtype=points.dtype) if scale is None else scale
    return denormalize(points, shift.to(points), scale.to(points))


@torch.no_grad()
def evaluate_reconstruction(model, inputs, references=None, *, num_shapes: int | None = None,
                            num_points: int | None = None, emd_method: str | None = "approxmatch",
                            emd_cost: str = "euclidean", steps_per_sigma: int = 10,
                            sigmas: torch.Tensor | None = None, seed: int = 0, refine_steps: int = 0,
                            batch_size: int = 32, device=None, disable: bool = True) -> dict:
    """Auto-encoding under the official protocol: encode the train-pool sample, score the reconstruction against
    the test-pool sample in original coordinates, beside the oracle (train-pool vs test-pool sample).

    Args:
        model: a :class:`~gfcore.models.ShapeGF`; reconstruction is ``model.reconstruct(points, N, ...)``.
        inputs: the train-pool samples: a data set (``protocol_data(...)[0]``) or a collated batch dict
            ``{"points": (B, N, d), "shift": (B, 1, d), "scale": (B, 1, 1), "idx": (B,)}``; or, with
            ``references=None``, any gfcore data set of the shapes to evaluate, whose two pools are then taken
            with :meth:`~gfcore.data.base.PointCloudDataset.view` (``pool="train"`` / ``"test"``,
            ``sample="first"``, its ``num_points``).
        references: the test-pool samples of the same shapes, in the same order (data set or batch).
        num_shapes: evaluate this many shapes (data sets: spread evenly over the split, so every category
            counts; batches: the first ones); ``None`` (default) evaluates all of them.
        num_points: points of each reconstruction (default: as many as the references; must be that many when an
            EMD is computed, which matches points one to one).
        emd_method: ``"approxmatch"`` (default, the published numbers' algorithm), ``"exact"``, ``"sinkhorn"``,
            or ``None`` for Chamfer only (the trainer's quick validation).
        emd_cost: ``"euclidean"`` (ShapeGF, PointFlow) or ``"squared"``.
        steps_per_sigma, sigmas: the Langevin sampler's settings (default: official 10 levels x 10 steps).
        seed: seed of the prior and Langevin noise (results are reproducible for a given ``batch_size``).
        refine_steps: refine each code on its input points first (``ShapeGF.reconstruct(refine_steps=...)``;
            the reference is never seen); 0 (default) is the official model, the encoder's codes as they are.
        batch_size: shapes reconstructed at once.
        device: where to run (default: the model's device).
        disable: hide the tqdm progress bar (default ``True``).

    Returns:
        ``{"protocol", "num_shapes", "num_points", "emd_method", "emd_cost",
        "CD", "oracle-CD", "CD/oracle", "EMD", "oracle-EMD", "EMD/oracle"`` (means, original units; EMD keys only
        with an ``emd_method``), ``"cd", "oracle_cd", "emd", "oracle_emd"`` (``(B,)`` per-shape tensors),
        ``"idx"`` and ``"label"`` (``(B,)``, when the items carry them)``}``. The ratios are ratios of the means.

    Raises:
        ValueError: the same points (or the same pool) as input and reference, different shapes, mismatched
            point counts, a randomly sampled data set, an unknown ``emd_method``/``emd_cost``.
        TypeError: ``inputs``/``references`` neither a data set nor a batch dict; ``references=None`` without a
            gfcore data set.

    Taught in chapter 6 (Measuring quality).
    """
    from tqdm.auto import tqdm

    if emd_method is not None:
        _checks.choice("emd_method", emd_method, EMD_METHODS)
    _checks.choice("emd_cost", emd_cost, EMD_COSTS)
    batch_size = _checks.positive_int("batch_size", batch_size)
    if num_shapes is not None:
        _checks.positive_int("num_shapes", num_shapes)
    if references is None:
        if not hasattr(inputs, "view"):
            raise TypeError("references=None needs a gfcore data set as inputs (its view() gives both pools); "
                            f"got {type(inputs).__name__}: pass the test-pool references explicitly")
        inputs, references = inputs.view(pool="train", sample="first"), inputs.view(pool="test", sample="first")
    inp = _as_batch("inputs", inputs, num_shapes)
    ref = _as_batch("references", references, num_shapes)
    _check_protocol(inputs, references, inp, ref)
    n_in, n_ref = inp["points"].shape[1], ref["points"].shape[1]
    n_rec = n_ref if num_points is None else _checks.positive_int("num_points", num_points)
    if emd_method is not None and len({n_in, n_ref, n_rec}) > 1:
        raise ValueError(f"mismatched point counts: inputs have N={n_in} points, references N={n_ref}, "
                         f"reconstructions num_points={n_rec}; the EMD matches points one to one (the protocol "
                         "uses 2048 for all three), or pass emd_method=None for Chamfer only")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    count = inp["points"].shape[0]
    rows = {"cd": [], "oracle_cd": [], "emd": [], "oracle_emd": []}
    for start in tqdm(range(0, count, batch_size), disable=disable, desc="auto-encoding"):
        part = slice(start, start + batch_size)
        b_in = {k: v[part].to(device) for k, v in inp.items() if isinstance(v, torch.Tensor)}
        b_ref = {k: v[part].to(device) for k, v in ref.items() if isinstance(v, torch.Tensor)}
        x_in = b_in["points"].float()
        extra = {"refine_steps": refine_steps} if refine_steps else {}
        rec = model.reconstruct(x_in, n_rec, sigmas=sigmas, steps_per_sigma=steps_per_sigma, generator=gen, **extra)
        rec, x_ref, x_in = _original(rec.float(), b_ref), _original(b_ref["points"].float(), b_ref), \
            _original(x_in, b_in)
        rows["cd"].append(chamfer_distance(rec, x_ref))
        rows["oracle_cd"].append(chamfer_distance(x_in, x_ref))
        if emd_method is not None:                # PointFlow's order: emd(sample, reference)
            rows["emd"].append(emd(rec, x_ref, method=emd_method, cost=emd_cost))
            rows["oracle_emd"].append(emd(x_in, x_ref, method=emd_method, cost=emd_cost))
    out = {"protocol": PROTOCOL, "num_shapes": count, "num_points": n_ref, "emd_method": emd_method,
           "emd_cost": emd_cost if emd_method is not None else None, "refine_steps": refine_steps}
    for key in ("cd", "oracle_cd") + (("emd", "oracle_emd") if emd_method is not None else ()):
        out[key] = torch.cat(rows[key]).double().cpu()
    for name, key in (("CD", "cd"), ("EMD", "emd")):
        if key in out:
            mean, oracle = float(out[key].mean()), float(out[f"oracle_{key}"].mean())
            out[name], out[f"oracle-{name}"] = mean, oracle
            out[f"{name}/oracle"] = mean / oracle if oracle > 0 else math.inf
    for key in ("idx", "label"):
        if key in ref:
            out[key] = torch.as_tensor(ref[key]).cpu()
    return out


def format_table(result: dict) -> str:
    """The auto-encoding table as the official README prints it (CD x10^4, EMD x10^2), oracle and ratio beside,
    naming the protocol.

    Args:
        result: the dict from :func:`evaluate_reconstruction`.

    Returns:
        A multi-line string.

    Taught in chapter 6 (Measuring quality).
    """
    if "CD" not in result or "oracle-CD" not in result:
        raise ValueError(f"result must come from evaluate_reconstruction (keys 'CD', 'oracle-CD'), got "
                         f"{sorted(result)}")
    cols = [("CD x1e4", "CD", CD_SCALE)]
    if "EMD" in result:
        cols.append((f"EMD x1e2 ({result['emd_method']}, {result['emd_cost']})", "EMD", EMD_SCALE))
    rows = [("model", [f"{result[k] * s:.3f}" for _, k, s in cols]),
            ("oracle", [f"{result['oracle-' + k] * s:.3f}" for _, k, s in cols]),
            ("model / oracle", [f"{result[k + '/oracle']:.2f}x" for _, k, _ in cols])]
    w0 = max(len(r[0]) for r in rows)
    widths = [max(len(h), *(len(r[1][i]) for r in rows)) for i, (h, _, _) in enumerate(cols)]
    lines = [f"auto-encoding, protocol {result.get('protocol', PROTOCOL)}: {result['num_shapes']} shapes x "
             f"{result['num_points']} points, original coordinates",
             "  input: train-pool sample; reference: test-pool sample; oracle: input scored as the reconstruction",
             " " * w0 + "  " + "  ".join(h.rjust(w) for (h, _, _), w in zip(cols, widths))]
    lines += [name.ljust(w0) + "  " + "  ".join(v.rjust(w) for v, w in zip(vals, widths)) for name, vals in rows]
    return "\n".join(lines)


def _record(result: dict, **extra) -> dict:
    """A JSON-ready copy of a result (tensors as lists), with the protocol's description."""
    rec = {"protocol": result["protocol"], "protocol_description": PROTOCOLS[PROTOCOL],
           "scales": {"CD": CD_SCALE, "EMD": EMD_SCALE}, **extra}
    for k, v in result.items():
        rec[k] = v.tolist() if isinstance(v, torch.Tensor) else v
    rec["gfcore_version"] = __version__
    rec["torch_version"] = torch.__version__
    return rec


def _json_safe(value):
    """Tuples as lists, anything not JSON-native as its ``str``."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def main_eval(ckpt=None, *, pretrained: str | None = None, data: str | None = None, split: str = "val",
              emd_method: str | None = "approxmatch", num_shapes: int | None = None, out_json=None,
              num_points: int = 2048, refine_steps: int = 0, device=None, batch_size: int = 32,
              disable: bool = False) -> dict:
    """What ``python -m gfcore eval`` runs: load an auto-encoder checkpoint (or a shipped model), evaluate its data
    set's split under the official protocol, and return the table and a JSON-ready record (the command line
    writes it).

    Args:
        ckpt: a checkpoint file written by the trainer, or its run folder.
        pretrained: instead of ``ckpt``, the name of a shipped auto-encoder (:mod:`gfcore.pretrained`), evaluated
            on the data set its card names.
        data: a data root that replaces the checkpoint's (``dataset_kwargs["root"]``, for ``shapenet``); ``None``
            uses the data set the checkpoint was trained on.
        split: the split to evaluate (official: ``"val"``).
        emd_method: as :func:`evaluate_reconstruction` (``None``: Chamfer only).
        num_shapes: evaluate this many shapes spread over the split (default: all).
        out_json: where the record should go (default: ``eval_<split>.json`` beside the checkpoint).
        num_points: points per sample, input and reference alike (official: 2048, whatever the training used).
        refine_steps: refine each code on its input points first (:func:`evaluate_reconstruction`); 0, the
            official encoder-only protocol, by default.
        device: where to run (default: CUDA when present).
        batch_size: shapes reconstructed at once.
        disable: hide the progress bar.

    Returns:
        ``{"table": str, "record": dict, "json_path": Path, "result": dict}``.

    Raises:
        FileNotFoundError: no checkpoint, or a data root that does not exist.
        ValueError: both or neither of ``ckpt`` and ``pretrained``; a checkpoint of the wrong kind or format, one
            trained without a named data set, an unknown or non-auto-encoder pretrained name, a data root for a
            data set that takes none, mismatched point counts.

    Taught in chapter 6 (Measuring quality).
    """
    from gfcore.checkpoint_io import checkpoint_file, load_checkpoint, load_model
    from gfcore.utils import default_device

    if (ckpt is None) == (pretrained is None):
        raise ValueError("give exactly one of ckpt (a checkpoint or run folder) and pretrained (a shipped model)")
    device = torch.device(device) if device is not None else default_device()
    if pretrained is not None:
        from gfcore import pretrained as shipped

        card = shipped.card(pretrained)
        if card.get("model") != "gfcore.models.ShapeGF":
            raise ValueError(f"pretrained {pretrained!r} is a {card.get('model')}, not an auto-encoder (ShapeGF); "
                             "a latent GAN's checkpoint is scored with --ckpt")
        model = shipped.load(pretrained, device=device)
        name, source, step = card["dataset"], f"pretrained:{pretrained}", int(card["training"]["steps"])
        dataset_kwargs, default_json = card["dataset_kwargs"], Path(f"eval_{pretrained}_{split}.json")
    else:
        ckpt_path = checkpoint_file(ckpt)
        saved = load_checkpoint(ckpt_path)            # raises on a missing file or a checkpoint of another kind
        name, source, step = saved["config"].get("dataset"), str(ckpt_path), int(saved["step"])
        if name is None:
            raise ValueError(f"{ckpt_path} was trained on data sets passed in code (config 'dataset' is None); "
                             "evaluate it with evaluate_reconstruction(model, inputs, references)")
        dataset_kwargs, default_json = saved["config"].get("dataset_kwargs"), ckpt_path.parent / f"eval_{split}.json"
        model = load_model(ckpt_path, device=device)
    kwargs = {k: v for k, v in (dataset_kwargs or {}).items()
              if k not in ("pool", "sample", "num_points")}    # the protocol sets these
    if data is not None:
        if name != "shapenet":
            raise ValueError(f"data={data!r} replaces a data root, but the checkpoint's data set {name!r} has none")
        if not Path(data).is_dir():
            raise FileNotFoundError(f"data root {data} does not exist")
        kwargs["root"] = str(data)
    inputs, references = protocol_data(name, split, num_points=num_points, **kwargs)
    t0 = time.perf_counter()
    result = evaluate_reconstruction(model, inputs, references, num_shapes=num_shapes, emd_method=emd_method,
                                     batch_size=batch_size, device=device, disable=disable,
                                     refine_steps=refine_steps)
    seconds = time.perf_counter() - t0
    json_path = Path(out_json) if out_json is not None else default_json
    record = _record(result, checkpoint=source, step=step, dataset=name, split=split,
                     dataset_kwargs=_json_safe(kwargs), device=str(device), seconds=seconds)
    refined = f", codes refined {refine_steps} steps" if refine_steps else ""
    table = format_table(result) + f"\n({name} {split}, step {step}{refined}; {seconds:.0f} s)"
    return {"table": table, "record": record, "json_path": json_path, "result": result}
