"""Langevin sampling speed (point-steps per second) and what the fast path costs in accuracy, side by side.

    .venv/bin/python bench/sample.py [--quick | --medium | --full] [--device cpu|cuda] [--blocks add,cbn]
                                     [--no-compile] [--compile-mode reduce-overhead] [--threads N] [--out F]

Speed: annealed Langevin as the official code runs it (uniform prior in [-1.5, 1.5]^3, the 10-level ladder 1..0.01,
10 steps per level, step 2 sigma^2), 32 shapes x 2048 points x 100 steps with --full (the default on CUDA), 4 x 512
x 20 steps (2 per level) with --quick (the default on CPU: 2,048 points per step, where per-operation overheads
weigh most), 8 x 1024 x 50 steps (5 per level) with --medium (8,192 points per step, where the matrix products
dominate, as when a chapter decodes a few shapes), on the official-size decoder ("add" 24 blocks, "cbn" 16).
Every row is run once untimed before it is timed. Rows, the same seeds for all:

(a) official fp32 eager: the official code's computation per step (Conv1d on (B, C, N), c = [x, z, sigma]
    materialised per point), prediction / sigma^2;
(b) gfcore ShapeGF.score fp32 eager (the z/sigma terms once per call);
(c) gfcore fast fp32: fold_batchnorm + per-shape terms once per level (gfcore.models.fold.fast_score_fn);
(d) gfcore fast bf16 (CUDA, and CPUs that multiply bf16 natively: AVX512-BF16 or AMX);
(e) gfcore fast bf16 + torch.compile (CUDA: mode reduce-overhead, CUDA graphs; CPU: the default mode, Inductor's
    C++ backend; --no-compile drops it). Its compile time is reported apart, not in the timed runs.

Accuracy, on a model trained briefly on a tiny procedural set (ellipsoids, tori, boxes): the official-size model
for --train-steps steps (2000) with --full, a small one (width 64, 4 blocks, 100 steps) with --quick. A field
trained this briefly is not converged (its samples are not yet on the shapes; the JSON records their Chamfer to
the data), so the comparison measures how closely the fast path follows the baseline's dynamics. Reported per
fast row: the relative error of its score against the official-style score on the same points along a whole
sampling run, and the Chamfer distance between its samples and the baseline's (same seeds),
next to the noise floor, the Chamfer distance between two baseline runs with different seeds.

Prints a table, writes bench/results/sample_<device>.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, chamfer, machine, official_score_fn, print_table, set_threads, timed, toy_shapes, write_json  # noqa: E402

sys.path.insert(0, str(ROOT))
from gfcore.models import ShapeGF  # noqa: E402
from gfcore.models.fold import fast_score_fn, fold_batchnorm  # noqa: E402
from gfcore.sampling import annealed_langevin, prior  # noqa: E402
from gfcore.schedule import geometric_sigmas  # noqa: E402
from gfcore.utils import cpu_has_fast_bf16  # noqa: E402

VARIANTS = {"add": 24, "cbn": 16}


def fast_rows(device, use_compile, compile_mode):
    """(name, dtype, compile) of the fast rows on this device."""
    rows = [("(c) gfcore fast fp32 (folded BN, per-level terms)", None, False)]
    if device.type == "cuda" or cpu_has_fast_bf16():
        rows.append(("(d) gfcore fast bf16", torch.bfloat16, False))
        if use_compile:
            mode = "default" if compile_mode is True else compile_mode
            rows.append((f"(e) gfcore fast bf16 + compile ({mode})", torch.bfloat16, compile_mode))
    return rows


def sampler(score_fn, x0, sigmas, steps, seed, device):
    gen = torch.Generator(device).manual_seed(seed)
    return annealed_langevin(score_fn, x0, sigmas, steps_per_sigma=steps, generator=gen)


def train_small(model, *, steps, batch, npts, device, seed, nshapes_data=64, weighting="shapegf", lr=1e-3,
                log=print):
    """A few hundred Adam steps of the auto-encoder on toy shapes (fp32 eager): a field that makes sense."""
    g = torch.Generator().manual_seed(seed)
    data = toy_shapes(nshapes_data, npts, generator=g).to(device)
    sigmas = geometric_sigmas(1.0, 0.01, 10, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device).manual_seed(seed)
    model.train()
    for i in range(steps):
        idx = torch.randint(len(data), (batch,), generator=g)
        loss = model.loss(data[idx.to(device)], sigmas, generator=gen, weighting=weighting).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (i + 1) % max(1, steps // 4) == 0:
            log(f"    train step {i + 1}/{steps}: loss {loss.item():.4f}")
    return model.eval(), data


@torch.no_grad()
def accuracy(model, data, *, device, nshapes, npts, steps, seed, fast_specs):
    """Score rel. error along a run, Chamfer between fast and baseline samples, and the seed noise floor."""
    sigmas = geometric_sigmas(1.0, 0.01, 10, device=device)
    shapes = data[:nshapes]
    z = model.encode(shapes)
    x0 = prior("uniform", (nshapes, npts, 3), generator=torch.Generator(device).manual_seed(seed), device=device)
    x1 = prior("uniform", (nshapes, npts, 3), generator=torch.Generator(device).manual_seed(seed + 1),
               device=device)
    base_fn = official_score_fn(model, z)
    base = sampler(base_fn, x0, sigmas, steps, seed, device)
    base2 = sampler(base_fn, x1, sigmas, steps, seed + 1, device)
    out = {"nshapes": nshapes, "num_points": npts, "steps": steps * len(sigmas),
           "chamfer_baseline_vs_data": float(chamfer(base, shapes).mean()),
           "chamfer_noise_floor_two_baseline_seeds": float(chamfer(base, base2).mean()), "rows": []}
    gm = sampler(model.score_fn(z), x0, sigmas, steps, seed, device)
    out["rows"].append({"name": "(b) gfcore ShapeGF.score fp32",
                        "chamfer_vs_baseline": float(chamfer(gm, base).mean())})
    for name, dtype, cmode in fast_specs:
        fast = fast_score_fn(model, z, dtype=dtype, compile=cmode or False)
        errs = []

        def probe(x, sigma, fast=fast, errs=errs):
            s, ref = fast(x, sigma), base_fn(x, sigma)
            errs.append(float((s - ref).norm() / ref.norm()))
            return s

        sampler(probe, x0, sigmas, steps, seed, device)           # score error along the fast path's own run
        xs = sampler(fast, x0, sigmas, steps, seed, device)
        out["rows"].append({"name": name, "score_rel_err_max": max(errs),
                            "score_rel_err_mean": sum(errs) / len(errs),
                            "chamfer_vs_baseline": float(chamfer(xs, base).mean()),
                            "chamfer_vs_data": float(chamfer(xs, shapes).mean())})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="4 shapes x 512 points x 20 steps (default on CPU)")
    size.add_argument("--medium", action="store_true", help="8 shapes x 1024 points x 50 steps")
    size.add_argument("--full", action="store_true", help="32 x 2048 x 100 steps (default on CUDA)")
    ap.add_argument("--blocks", default="add,cbn")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    ap.add_argument("--compile-mode", default=None,
                    help="torch.compile mode of row (e): reduce-overhead (CUDA graphs; the default on CUDA), "
                         "default (the default on CPU), max-autotune")
    ap.add_argument("--repeats", type=int, default=None, help="timed sampling runs per row (default 1 quick, 3 full)")
    ap.add_argument("--train-steps", type=int, default=None,
                    help="training steps of the accuracy model (default 100 quick, 2000 full)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    device = torch.device(args.device)
    quick = args.quick or args.medium or (not args.full and device.type == "cpu")
    nshapes, npts, per_level = (8, 1024, 5) if args.medium else (4, 512, 2) if quick else (32, 2048, 10)
    repeats = args.repeats or (1 if quick else 3)
    use_compile = not args.no_compile
    compile_mode = args.compile_mode or ("reduce-overhead" if device.type == "cuda" else "default")
    compile_mode = True if compile_mode == "default" else compile_mode   # fast_score_fn(compile=True): default mode
    sigmas = geometric_sigmas(1.0, 0.01, 10, device=device)
    nsteps = per_level * len(sigmas)
    specs = fast_rows(device, use_compile, compile_mode)

    result = {"machine": machine(device), "quick": quick, "shapes": nshapes, "num_points": npts,
              "steps": nsteps, "steps_per_sigma": per_level, "repeats": repeats, "dtype_baseline": "float32",
              "note": (f"{nshapes} shapes x {npts} points x {nsteps} steps, not the official 32 x 2048 x 100"
                       if quick else "official size: 32 shapes x 2048 points x 100 steps"),
              "variants": {}}
    print(f"{result['machine']['device_name']} | torch {torch.__version__} | {device} | {nshapes} shapes x {npts} "
          f"points x {nsteps} steps{' (--medium)' if args.medium else ' (--quick)' if quick else ''}")
    for block in args.blocks.split(","):
        n_blocks = VARIANTS[block]
        # -- the model: trained briefly (full) or fresh (quick: the accuracy uses a small trained one) -----------
        torch.manual_seed(args.seed)
        model = ShapeGF(dim=3, zdim=128, hidden=256, n_blocks=n_blocks, block=block).to(device)
        train_steps = args.train_steps if args.train_steps is not None else (100 if quick else 2000)
        if quick:
            acc_model = ShapeGF(dim=3, zdim=128, hidden=64, n_blocks=4, block=block).to(device)
            acc_desc = f"small ShapeGF (width 64, 4 {block} blocks), {train_steps} Adam steps on 8 x 256 toy shapes"
            print(f"  {block}: training the accuracy model: {acc_desc}", flush=True)
            acc_model, data = train_small(acc_model, steps=train_steps, batch=8, npts=256, device=device,
                                          seed=args.seed)
            acc_sizes = {"nshapes": 4, "npts": 512, "steps": 2}
        else:
            acc_desc = f"official-size model (timed one), {train_steps} Adam steps on 32 x 2048 toy shapes"
            print(f"  {block}: training: {acc_desc}", flush=True)
            model, data = train_small(model, steps=train_steps, batch=32, npts=2048, device=device, seed=args.seed)
            acc_model, acc_sizes = model, {"nshapes": nshapes, "npts": npts, "steps": per_level}
        model.eval()
        acc_specs = specs if any(dt == torch.bfloat16 for _, dt, _ in specs) else specs + [
            ("(d) gfcore fast bf16 (accuracy only: this CPU has no native bf16)", torch.bfloat16, False)]
        acc = accuracy(acc_model, data, device=device, seed=args.seed, fast_specs=acc_specs, **acc_sizes)
        acc["model"] = acc_desc
        acc["caveat"] = ("a briefly trained field is not converged (see chamfer_baseline_vs_data): the Chamfer "
                         "columns measure how closely the fast path follows the baseline's dynamics, not "
                         "reconstruction quality")

        # -- speed -------------------------------------------------------------------------------------------
        g = torch.Generator().manual_seed(args.seed + 7)
        z = torch.randn(nshapes, 128, generator=g).to(device) if quick else model.encode(data[:nshapes])
        x0 = prior("uniform", (nshapes, npts, 3), generator=torch.Generator(device).manual_seed(args.seed),
                   device=device)
        folded = fold_batchnorm(model.decoder)
        fns = [("(a) official fp32 eager", official_score_fn(model, z), False),
               ("(b) gfcore ShapeGF.score fp32 eager", model.score_fn(z), False)]
        fns += [(name, fast_score_fn(model, z, dtype=dt, folded=folded, compile=cm or False), bool(cm))
                for name, dt, cm in specs]
        rows, finals = [], {}
        for name, fn, compiled in fns:
            out = {}

            def run(fn=fn, out=out, x0=x0):
                with torch.no_grad():
                    out["x"] = sampler(fn, x0, sigmas, per_level, args.seed, device)

            t0 = time.perf_counter()
            run()                                           # untimed: compilation, first-call kernel set-up
            first_s = time.perf_counter() - t0
            t = timed(run, device, repeats=repeats, warmup=1 if compiled else 0)
            finals[name] = out["x"]
            rows.append({"name": name, "s_per_run": t["median_s"], "ms_per_step": 1e3 * t["median_s"] / nsteps,
                         "point_steps_per_s": nshapes * npts * nsteps / t["median_s"],
                         "mpoint_steps_per_s": nshapes * npts * nsteps / t["median_s"] / 1e6, "times_s": t["times_s"],
                         "first_run_s": first_s})
            print(f"  {block}: {name}: {rows[-1]['ms_per_step']:.2f} ms/step", flush=True)
        base = finals[rows[0]["name"]]
        for r in rows:
            r["speedup"] = rows[0]["s_per_run"] / r["s_per_run"]
            r["max_abs_diff_vs_a_same_seed"] = float((finals[r["name"]] - base).abs().max())
        print(f"\n{block}-{n_blocks}: speed")
        print_table(rows, [("name", "row", ""), ("ms_per_step", "ms/step", ".2f"),
                           ("mpoint_steps_per_s", "Mpt-steps/s", ".3f"), ("speedup", "speedup", ".2f")])
        print(f"\n{block}-{n_blocks}: accuracy ({acc_desc}; {acc['nshapes']} shapes x {acc['num_points']} points x "
              f"{acc['steps']} steps)")
        print(f"    Chamfer baseline samples vs data: {acc['chamfer_baseline_vs_data']:.3e}; noise floor (two "
              f"baseline seeds): {acc['chamfer_noise_floor_two_baseline_seeds']:.3e}")
        print_table(acc["rows"], [("name", "row", ""), ("score_rel_err_max", "score rel err max", ".1e"),
                                  ("chamfer_vs_baseline", "CD vs baseline", ".2e")])
        print()
        result["variants"][f"{block}-{n_blocks}"] = {"speed": rows, "accuracy": acc}
    write_json("sample", device, result, args.out)


if __name__ == "__main__":
    main()
