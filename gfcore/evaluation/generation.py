"""Evaluating a generator: new shapes from a latent GAN scored against a held-out split with the generation table.

One generated shape per reference shape (PointFlow's rule), the references being the first ``num_points`` of
each shape's test pool; MMD, COV and 1-NNA by Chamfer and by EMD (:func:`gfcore.metrics.evaluate`). The clouds
are compared under the **per-shape bounding-box** protocol (``gfcore.data.normalize.PROTOCOLS["shape_bbox"]``):
every generated and reference cloud is scaled into its own box first, which is how the procedural family is
normalised for training, and what DPM's table reports for ShapeGF. JSD is left out under that protocol: its
grid assumes clouds inside the sphere of radius 0.5, and box-normalised clouds span ``[-1, 1]``.

Nothing here writes files; :func:`main_eval_generation` returns the record and the path the command line writes
it to.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from gfcore import _checks
from gfcore._version import __version__
from gfcore.data.normalize import PROTOCOLS, protocol_coordinates
from gfcore.evaluation.reconstruction import _as_batch, _json_safe
from gfcore.metrics import EMD_METHODS, evaluate, format_table

GENERATION_PROTOCOL = "shape_bbox"


def evaluate_generation(autoencoder, latent_generator, references, *, num_shapes: int | None = None,
                        emd_method: str | None = "approxmatch", seed: int = 0, steps_per_sigma: int = 10,
                        batch_size: int = 32, device=None, disable: bool = True) -> dict:
    """Generate one shape per reference and score the set with MMD, COV and 1-NNA (box-normalised clouds).

    Args:
        autoencoder: the trained :class:`~gfcore.models.ShapeGF` that decodes the codes.
        latent_generator: a trained :class:`~gfcore.models.LatentGenerator` (same ``zdim``).
        references: the held-out shapes: a data set built with ``sample="first"`` (e.g.
            ``build_dataset(name, "test", pool="test", sample="first", num_points=2048)``) or a batch dict with
            ``"points"`` ``(R, N, d)``.
        num_shapes: use this many references, spread over the split (default: all); as many shapes are generated.
        emd_method: ``"approxmatch"`` (default, the published tables' algorithm), ``"exact"``, ``"sinkhorn"``, or
            ``None`` for the Chamfer half of the table only.
        seed: seed of the generator's noise and the Langevin sampler.
        steps_per_sigma: Langevin steps per level of the generation ladder (official 10).
        batch_size: shapes decoded at once (the draw is reproducible for a fixed batch size).
        device: where to run (default: the auto-encoder's device).
        disable: hide the progress bars.

    Returns:
        ``{"MMD-CD", "COV-CD", "1-NNA-CD"[, "MMD-EMD", "COV-EMD", "1-NNA-EMD"], "protocol", "num_shapes",
        "num_points", "emd_method", "seed", "generated"}`` with the metrics as raw floats (fractions, distances in
        box units) and ``"generated"`` the ``(R, N, d)`` generated clouds in the auto-encoder's normalised space.

    Raises:
        ValueError: an empty or randomly drawn reference set, an unknown ``emd_method``, bad counts.

    Taught in chapter 7 (Generating new shapes).
    """
    from gfcore.models import sample_shapes

    if emd_method is not None:
        _checks.choice("emd_method", emd_method, EMD_METHODS)
    steps_per_sigma = _checks.positive_int("steps_per_sigma", steps_per_sigma)
    batch_size = _checks.positive_int("batch_size", batch_size)
    device = torch.device(device) if device is not None else next(autoencoder.parameters()).device
    ref = _as_batch("references", references, num_shapes)["points"].to(device=device, dtype=torch.float32)
    count, num_points = ref.shape[0], ref.shape[1]
    gen = torch.Generator(device=device).manual_seed(seed)
    generated = sample_shapes(autoencoder, latent_generator, count, num_points, generator=gen,
                              steps_per_sigma=steps_per_sigma, batch_size=batch_size).float()
    box_gen = protocol_coordinates(generated, GENERATION_PROTOCOL)
    box_ref = protocol_coordinates(ref, GENERATION_PROTOCOL)
    if emd_method is None:
        from gfcore.metrics import coverage, mmd, one_nna, pairwise_cd

        sr = pairwise_cd(box_ref, box_gen, disable=disable).T    # (S, R): generated in rows, as evaluate
        ss = pairwise_cd(box_gen, disable=disable)
        rr = pairwise_cd(box_ref, disable=disable)
        table = {"MMD-CD": mmd(sr), "COV-CD": coverage(sr), "1-NNA-CD": one_nna(ss, sr, rr)}
    else:
        table = evaluate(box_gen, box_ref, emd_method=emd_method, with_jsd=False, disable=disable)
    return {**table, "protocol": GENERATION_PROTOCOL, "num_shapes": count, "num_points": num_points,
            "emd_method": emd_method, "seed": seed, "generated": generated}


def main_eval_generation(ckpt, *, split: str = "test", emd_method: str | None = "approxmatch",
                         num_shapes: int | None = None, num_points: int = 2048, seed: int = 0, device=None,
                         batch_size: int = 32, out_json=None, disable: bool = False) -> dict:
    """What ``python -m gfcore eval`` runs on a latent-GAN checkpoint: generate, score against a held-out split.

    The references are the first ``num_points`` of the test pool of each shape of ``split`` of the data set the
    GAN's auto-encoder was trained on (the GAN config's ``dataset``, else the auto-encoder's).

    Args:
        ckpt: a checkpoint written by :func:`gfcore.train.train_latent_gan`, or its run folder.
        split: the reference split (default ``"test"``).
        emd_method, num_shapes, seed, batch_size, disable: as :func:`evaluate_generation`.
        num_points: points per cloud (official 2048).
        device: where to run (default: CUDA when present).
        out_json: where the record should go (default: ``eval_gen_<split>.json`` beside the checkpoint).

    Returns:
        ``{"table": str, "record": dict, "json_path": Path, "result": dict}``.

    Raises:
        FileNotFoundError: no checkpoint.
        ValueError: a checkpoint of another kind, a GAN trained on codes passed in code (no auto-encoder or
            no named data set to take references from).

    Taught in chapter 7 (Generating new shapes).
    """
    from gfcore.checkpoint_io import checkpoint_file, load_gan_networks
    from gfcore.data import build_dataset
    from gfcore.pretrained.resolve import resolve_autoencoder
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    ckpt_path = checkpoint_file(ckpt)
    gan = load_gan_networks(ckpt_path, device=device)     # raises on a missing file or a checkpoint of another kind
    if gan.autoencoder is None:
        raise ValueError(f"{ckpt_path} is a latent GAN trained on codes passed in code: it has no auto-encoder "
                         "to decode with; use evaluate_generation(autoencoder, generator, references)")
    name, kwargs = gan.config.get("dataset"), dict(gan.config.get("dataset_kwargs") or {})
    if name is None and gan.config.get("autoencoder") is not None:
        _, _, data = resolve_autoencoder(gan.config["autoencoder"], device="cpu")
        if data is not None:
            name, kwargs = data["dataset"], dict(data.get("dataset_kwargs") or {})
    if name is None:
        raise ValueError(f"{ckpt_path}: neither the GAN's config nor its auto-encoder names a data set to take "
                         "reference shapes from; use evaluate_generation(autoencoder, generator, references)")
    kwargs = {k: v for k, v in kwargs.items() if k not in ("pool", "sample", "num_points")}
    references = build_dataset(name, split, num_points=num_points, pool="test", sample="first", **kwargs)
    t0 = time.perf_counter()
    result = evaluate_generation(gan.autoencoder, gan.generator, references, num_shapes=num_shapes,
                                 emd_method=emd_method, seed=seed, batch_size=batch_size, device=device,
                                 disable=disable)
    seconds = time.perf_counter() - t0
    metrics = {k: v for k, v in result.items() if k != "generated"}
    record = {**metrics, "protocol_description": PROTOCOLS[GENERATION_PROTOCOL], "checkpoint": str(ckpt_path),
              "step": gan.step, "dataset": name, "split": split, "dataset_kwargs": _json_safe(kwargs),
              "device": str(device), "seconds": seconds, "gfcore_version": __version__,
              "torch_version": torch.__version__}
    json_path = Path(out_json) if out_json is not None else ckpt_path.parent / f"eval_gen_{split}.json"
    table = (format_table(metrics, protocol=GENERATION_PROTOCOL)
             + f"\n({result['num_shapes']} generated vs {result['num_shapes']} {name} {split} shapes x "
               f"{result['num_points']} points; step {gan.step}; {seconds:.0f} s)")
    return {"table": table, "record": record, "json_path": json_path, "result": result}


__all__ = ["GENERATION_PROTOCOL", "evaluate_generation", "main_eval_generation"]
