"""Export a trained model into gfcore/pretrained/: half-precision weights and a model card measured on them.

    .venv/bin/python scripts/export_pretrained.py --run RUN_DIR --name shapes3d [--ema] [--num-shapes N]
    .venv/bin/python scripts/export_pretrained.py --run runs/shapes3d-gan --name shapes3d-gen \
        --preset configs/shapes3d-gan-cpu.yaml [--per-category 20] [--num-points 512]
    .venv/bin/python scripts/export_pretrained.py --refine shapes3d --refine-steps 200

`--refine NAME` adds to a shipped auto-encoder's card the same table and controls measured with test-time
refinement of the codes (ShapeGF.reconstruct(refine_steps=...), gfcore.models.refine_codes: Adam on each code
of the DSM loss of its own input points, the network frozen; the reference is never seen), beside the official
encoder-only numbers, which stay the card's "metrics".

The kind of the run's checkpoint picks the export. An auto-encoder's card is measured on the weights exactly as
shipped (float16, loaded back as float32), under the official auto-encoding protocol (gfcore.evaluation:
train-pool sample in, the independent test-pool sample as reference, original coordinates, the oracle beside
it) on the test split. Two controls that need the reconstructions themselves follow: the category (digit) of
each reconstruction by its nearest neighbour under Chamfer, and whether a reconstruction is closer to its own
shape's reference than to every other shape of its category.

A latent GAN's generator (export_generator below) is measured, as shipped, with the shipped auto-encoder it was
trained on, by the generation metrics of gfcore.metrics against held-out test shapes, beside baselines computed
in the same run. `tests/test_pretrained.py` re-measures a few shapes of every card.
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
from gfcore.evaluation import evaluate_reconstruction, first_items, protocol_data, spread_indices  # noqa: E402
from gfcore.metrics import pairwise_cd  # noqa: E402
from gfcore.models import ShapeGF  # noqa: E402
from gfcore.pretrained import FOLDER, FORMAT_VERSION, KIND  # noqa: E402
from gfcore.train import RunDir, load_checkpoint  # noqa: E402
from gfcore.train.checkpoint import checkpoint_file  # noqa: E402
from gfcore.utils import fast_dtype  # noqa: E402

CHECK_SHAPES = 6        # the first shapes of the test split that tests/test_pretrained.py re-measures
SEED = 0


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        name = platform.processor() or "cpu"
    return f"{name}, {torch.get_num_threads()} threads, no GPU"


def checkpoint_kind(run) -> str | None:
    """The ``kind`` field of a run's checkpoint (``"shapegf-autoencoder"``, ``"shapegf-latent-gan"``)."""
    blob = torch.load(checkpoint_file(run), weights_only=True, map_location="cpu")
    return blob.get("kind") if isinstance(blob, dict) else None


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


def controls(model, dataset: str, kwargs: dict, num_points: int, num_shapes: int | None,
             refine_steps: int = 0) -> dict:
    """Label recovery and own-shape rate on the evaluated test shapes (official sampler, seeded)."""
    inputs, refs = protocol_data(dataset, "test", num_points=num_points, **kwargs)
    pick = spread_indices(len(inputs), num_shapes)
    inp = default_collate([inputs[i] for i in pick])
    ref = default_collate([refs[i] for i in pick])
    gen = torch.Generator().manual_seed(SEED)
    recs = torch.cat([model.reconstruct(inp["points"][i:i + 64], num_points, generator=gen, refine_steps=refine_steps)
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


# ============================================================================================================
# the latent GAN's generator
# ============================================================================================================
GEN_BATCH = 40          # shapes decoded at a time (part of the seeded protocol: the Langevin noise depends on it)
GEN_CHECK_SHAPES = 6    # generated shapes whose nearest-reference distance tests/test_pretrained.py re-measures
GEN_CHECK_CODES = 1000  # generated codes whose statistics the test re-measures


def generation_references(dataset: str, kwargs: dict, per_category: int, num_points: int, split: str = "test",
                          **extra) -> torch.Tensor:
    """``(R, num_points, d)``: the first ``per_category`` shapes of each category of ``split``, the test pool's
    first points (the split's defaults), in the normalised space."""
    data = build_dataset(dataset, split, **{**kwargs, "num_points": num_points, "num_shapes": per_category,
                                            **extra})
    return torch.stack([data[i]["points"] for i in range(len(data))])


def generator_check(autoencoder, latent_generator, reference: torch.Tensor, num_points: int) -> dict:
    """What tests/test_pretrained.py re-measures: statistics of codes from fixed noise (the weights) and the
    distance of a few generated shapes to their nearest reference (the weights with the auto-encoder)."""
    from gfcore.metrics import pairwise_cd
    from gfcore.models import sample_shapes

    with torch.no_grad():
        codes = latent_generator.sample(GEN_CHECK_CODES, generator=torch.Generator().manual_seed(SEED))
    shapes = sample_shapes(autoencoder, latent_generator, GEN_CHECK_SHAPES, num_points,
                           generator=torch.Generator().manual_seed(SEED))
    nearest = pairwise_cd(shapes, reference).min(dim=1).values
    return {"seed": SEED, "num_codes": GEN_CHECK_CODES, "code_mean": [round(float(v), 6) for v in codes.mean(0)],
            "code_std": [round(float(v), 6) for v in codes.std(0)], "num_shapes": GEN_CHECK_SHAPES,
            "num_points": num_points, "nearest_reference_cd": nearest.tolist()}


def export_generator(run, name: str, *, preset: str | None, per_category: int, num_points: int) -> dict:
    """Ship a latent-GAN run's generator as ``<name>.pt`` (float16) with a card whose generation metrics are
    measured on the shipped files, beside baselines computed in the same run.

    Protocol: references = the first ``per_category`` test shapes of each category (test pool, first
    ``num_points`` points, normalised space); as many clouds from every candidate; Chamfer (squared, both
    directions summed) MMD, COV and 1-NNA (gfcore.metrics). Candidates: the shipped generator decoded by the
    shipped auto-encoder (5-level generation ladder, uniform prior, seed 0, GEN_BATCH shapes at a time); a
    Gaussian fitted to the training codes (mean and covariance), decoded the same way; copies of training shapes
    (the first ``per_category`` of each category, test pool); held-out shapes of the val split (the floor); noise
    clouds and the mean training code decoded (controls). Plus the codes' distance to the nearest training code
    for the generator and for held-out shapes (a copy machine sits at zero).
    """
    import time

    from gfcore import pretrained
    from gfcore.metrics import coverage, mmd, one_nna, pairwise_cd
    from gfcore.models import sample_shapes
    from gfcore.models.latent_gan import generation_sigmas
    from gfcore.train.gan import encode_dataset, load_gan_checkpoint

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    path = checkpoint_file(run)
    ckpt = load_gan_checkpoint(path)
    ae_info = ckpt["autoencoder"]
    if ae_info is None or not str(ae_info["source"]).startswith("pretrained:"):
        raise SystemExit(f"{path}: the GAN must be trained on a shipped auto-encoder's codes, got "
                         f"{ae_info and ae_info['source']!r}")
    ae_name = str(ae_info["source"]).removeprefix("pretrained:")
    autoencoder = pretrained.load(ae_name, device="cpu")
    shipped = autoencoder.state_dict()
    for k, v in ae_info["state_dict"].items():          # the codes were made by exactly the shipped weights
        if not torch.equal(v.float(), shipped[k].float()):
            raise SystemExit(f"{path}: its auto-encoder's {k} differs from the shipped {ae_name!r}")
    ae_card = pretrained.card(ae_name)
    cfg = ckpt["config"]
    dataset = cfg["dataset"]
    kwargs = {k: v for k, v in cfg["dataset_kwargs"].items() if k != "num_points"}
    latents = ckpt["latents"].float()

    half = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["generator"].items()}
    out_pt, out_card = FOLDER / f"{name}.pt", FOLDER / f"{name}.json"
    torch.save({"kind": KIND, "format_version": FORMAT_VERSION, "model": "LatentGenerator",
                "config": dict(ckpt["generator_config"]), "state_dict": half}, out_pt)
    gen = pretrained.load_file(out_pt, device="cpu")                 # measure exactly what ships

    # the training codes are the shipped encoder's: re-encode a few training shapes and compare
    few = build_dataset(dataset, "train", **{**cfg["dataset_kwargs"], "sample": "first"})
    recheck = encode_dataset(autoencoder, [few[i] for i in range(8)])
    torch.testing.assert_close(recheck, latents[:8], rtol=1e-4, atol=1e-5)

    reference = generation_references(dataset, kwargs, per_category, num_points)
    R = len(reference)
    times = {}
    t = time.perf_counter()
    sets = {name: sample_shapes(autoencoder, gen, R, num_points, generator=torch.Generator().manual_seed(SEED),
                                batch_size=GEN_BATCH)}
    times["generate"] = time.perf_counter() - t
    g = torch.Generator().manual_seed(SEED + 1)
    mu = latents.mean(0).double()
    chol = torch.linalg.cholesky(torch.cov(latents.T.double()) + 1e-9 * torch.eye(latents.shape[1],
                                                                                   dtype=torch.float64))
    gauss = (mu + torch.randn(R, latents.shape[1], generator=g, dtype=torch.float64) @ chol.T).float()
    sigmas = generation_sigmas()
    sets["Gaussian fitted to the training codes"] = torch.cat([
        autoencoder.decode(gauss[i:i + GEN_BATCH], num_points, sigmas=sigmas, generator=g)
        for i in range(0, R, GEN_BATCH)])
    sets["copies of training shapes"] = generation_references(dataset, kwargs, per_category, num_points,
                                                              split="train", pool="test", sample="first")
    sets["held-out shapes (val split)"] = generation_references(dataset, kwargs, per_category, num_points,
                                                                split="val")
    g = torch.Generator().manual_seed(SEED + 2)
    sets["noise clouds (uniform in [-1, 1]^3)"] = 2 * torch.rand(R, num_points, reference.shape[2],
                                                                 generator=g) - 1
    sets["mean shape (the mean training code, decoded)"] = torch.cat([
        autoencoder.decode(mu.float().expand(min(GEN_BATCH, R - i), -1).contiguous(), num_points,
                           sigmas=sigmas, generator=g) for i in range(0, R, GEN_BATCH)])
    times["baselines"] = time.perf_counter() - t - times["generate"]

    t = time.perf_counter()
    d_rr = pairwise_cd(reference)
    metrics = {}
    for key, clouds in sets.items():
        d_sr, d_ss = pairwise_cd(clouds, reference), pairwise_cd(clouds)
        metrics[key] = {"MMD-CD": mmd(d_sr), "COV-CD": coverage(d_sr), "1-NNA-CD": one_nna(d_ss, d_sr, d_rr)}
        print(f"{key:48} MMD-CD x1e3 {1e3 * metrics[key]['MMD-CD']:7.2f}  COV-CD {100 * metrics[key]['COV-CD']:5.1f}%"
              f"  1-NNA-CD {100 * metrics[key]['1-NNA-CD']:5.1f}%", flush=True)
    times["metrics"] = time.perf_counter() - t

    # copying, in code space: distance of each code to its nearest training code
    with torch.no_grad():
        gen_codes = gen.sample(R, generator=torch.Generator().manual_seed(SEED))
    val_items = build_dataset(dataset, "val", **{**cfg["dataset_kwargs"], "num_shapes": per_category,
                                                 "sample": "first"})
    val_codes = encode_dataset(autoencoder, val_items)
    nearest_code = {key: float(torch.cdist(z, latents).min(dim=1).values.median())
                    for key, z in ((name, gen_codes), ("held-out shapes (val split)", val_codes))}

    check = generator_check(autoencoder, gen, reference, num_points)
    history = [{k: r[k] for k in ("step", "wdist", "latent_mmd", "latent_mmd_floor") if k in r}
               for r in ckpt["history"] if "latent_mmd" in r]
    card = {
        "name": name,
        "model": "gfcore.models.LatentGenerator", "model_config": dict(ckpt["generator_config"]),
        "parameters": sum(p.numel() for p in gen.parameters()),
        "weights": {"file": out_pt.name, "dtype": "float16", "bytes": out_pt.stat().st_size,
                    "which": "the generator at the last step (the critic is not shipped)"},
        "autoencoder": ae_name,
        "dataset": dataset, "dataset_kwargs": kwargs,
        "splits": ae_card.get("splits"),
        "codes": {"split": "train", "num_shapes": int(latents.shape[0]),
                  "num_points": cfg["dataset_kwargs"].get("num_points"),
                  "how": f"the encoder of {ae_name!r} (eval mode) on each training shape's first points"},
        "preset": preset, "config": cfg,
        "training": {"steps": int(ckpt["step"]), "wall_time_s": round(wall_time(ckpt["history"]), 1),
                     "hardware": f"{cpu_name().split(',')[0]}, 1 thread (cpu_threads: 1), no GPU",
                     "torch": str(ckpt.get("torch_version", torch.__version__)),
                     "gfcore": ckpt.get("gfcore_version", gfcore.__version__),
                     "note": "wall time of the training loop from the logged step rates, on a 2-core CPU shared "
                             "with other jobs; encoding the training shapes once before it took about 11 "
                             "minutes more (1,034 s in all for the run)"},
        "evaluation": {
            "protocol": "generation (PointFlow's metrics, Chamfer only), normalised space",
            "reference": f"test split, the first {per_category} shapes of each category ({R} shapes), the test "
                         f"pool's first {num_points} points",
            "num_points": num_points, "num_shapes": R,
            "space": "normalised: each shape fits [-1, 1] on its longest side (shape_bbox), the space the "
                     "auto-encoder and the GAN work in",
            "distance": "Chamfer, squared distances, the two directions' means summed (gfcore.metrics.pairwise_cd)",
            "sampler": f"gfcore.models.sample_shapes: the 5-level generation ladder 1 -> 0.01, 10 steps each, "
                       f"uniform prior, {GEN_BATCH} shapes per batch",
            "seed": SEED,
            "baselines": "measured in the same run on the same references: a Gaussian with the training codes' "
                         "mean and covariance, decoded the same way; copies of training shapes (first "
                         f"{per_category} of each category, test pool); held-out val shapes (the floor); noise "
                         "clouds and the mean training code decoded (controls)",
            "units": "MMD-CD raw (x1e3 in the papers' tables), COV-CD and 1-NNA-CD as fractions (50% ideal)",
            "emd": "not computed (CPU budget)",
        },
        "metrics": metrics,
        "nearest_training_code_median": nearest_code,
        "check": check,
        "history": history,
        "times_s": {k: round(v, 1) for k, v in {**times, "total": time.perf_counter() - t_start}.items()},
    }
    out_card.write_text(json.dumps(card, indent=1) + "\n")
    print(yaml.safe_dump({k: card[k] for k in ("metrics", "nearest_training_code_median", "training",
                                                "weights", "times_s")}, sort_keys=False), flush=True)
    return card



def refine_card(name: str, steps: int) -> dict:
    """Add ``"metrics_refined"`` and ``"check_refined"`` to the card of the shipped auto-encoder ``name``: its
    own protocol (split, shapes, points, seed, EMD) and controls, with ``refine_steps=steps``."""
    from gfcore import pretrained

    torch.set_num_threads(2)
    model, card = pretrained.load(name), pretrained.card(name)
    ev = card["evaluation"]
    dataset, kwargs, num_points = card["dataset"], card["dataset_kwargs"], ev["num_points"]
    inputs, refs = protocol_data(dataset, ev["split"], num_points=num_points, **kwargs)
    result = evaluate_reconstruction(model, inputs, refs, num_shapes=ev["num_shapes"], emd_method=ev["emd_method"],
                                     seed=ev["seed"], refine_steps=steps, disable=False)
    check = evaluate_reconstruction(model, first_items(inputs, CHECK_SHAPES), first_items(refs, CHECK_SHAPES),
                                    emd_method=None, seed=SEED, refine_steps=steps)
    ctrl = controls(model, dataset, kwargs, num_points, ev["num_shapes"], refine_steps=steps)
    base_keys = ("category_accuracy", "label_accuracy_reconstructions")
    if not any(k in card["metrics"] for k in base_keys):    # the encoder-only controls too, where the card lacks them
        card["metrics"].update(controls(model, dataset, kwargs, num_points, ev["num_shapes"]))
    card["metrics_refined"] = {
        "refine_steps": steps,
        "how": "ShapeGF.reconstruct(refine_steps=...): each code refined from the encoder's by Adam (lr 1e-2, "
               "cosine to 0) on the DSM loss of its own input points (levels drawn from the official ladder), the "
               "network frozen; the reference is never seen. Same protocol, shapes and seed as 'metrics'.",
        "sampler_dtype": str(fast_dtype("cpu")).replace("torch.", ""),
        "sampler_note": "ShapeGF.decode's default compute dtype on this CPU (dtype='auto'); the CD and EMD of "
                        "'metrics' were measured before that default, in float32; controls that 'metrics' lacked "
                        "were added in the same run as this block, with this default",
        "CD_x1e4": result["CD"] * 1e4, "oracle_CD_x1e4": result["oracle-CD"] * 1e4,
        "CD_over_oracle": result["CD/oracle"], "EMD_x1e2": result["EMD"] * 1e2,
        "oracle_EMD_x1e2": result["oracle-EMD"] * 1e2, "EMD_over_oracle": result["EMD/oracle"], **ctrl}
    card["check_refined"] = {"num_shapes": CHECK_SHAPES, "seed": SEED, "refine_steps": steps,
                             "cd": check["cd"].tolist(), "oracle_cd": check["oracle_cd"].tolist()}
    (FOLDER / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n")
    return card


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a training run (or checkpoint): auto-encoder or latent GAN")
    ap.add_argument("--name", default=None)
    ap.add_argument("--refine", default=None, metavar="NAME",
                    help="add the refined-codes table to the card of the shipped auto-encoder NAME")
    ap.add_argument("--refine-steps", type=int, default=200, help="refinement steps for --refine")
    ap.add_argument("--per-category", type=int, default=20,
                    help="latent GAN: held-out test shapes per category as the reference set (default 20)")
    ap.add_argument("--ema", action="store_true", help="ship the EMA weights instead of the raw ones")
    ap.add_argument("--num-shapes", type=int, default=None, help="test shapes to evaluate (default: all)")
    ap.add_argument("--num-points", type=int, default=None,
                    help="points per sample (default: an auto-encoder 2048 in 3D, 512 in 2D; a latent GAN 512)")
    ap.add_argument("--emd", default="approxmatch")
    ap.add_argument("--no-controls", action="store_true", help="skip the label / own-shape controls")
    ap.add_argument("--preset", default=None, help="the YAML preset the run came from (recorded in the card)")
    args = ap.parse_args()
    if args.refine:
        card = refine_card(args.refine, args.refine_steps)
        print(yaml.safe_dump({"metrics": card["metrics"], "metrics_refined": card["metrics_refined"]},
                             sort_keys=False))
        return
    if not args.run or not args.name:
        ap.error("--run and --name are required (or --refine NAME)")
    if checkpoint_kind(args.run) == "shapegf-latent-gan":
        export_generator(args.run, args.name, preset=args.preset, per_category=args.per_category,
                         num_points=args.num_points or 512)
        return
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

    inputs, refs = protocol_data(dataset, "test", num_points=num_points, **kwargs)
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
