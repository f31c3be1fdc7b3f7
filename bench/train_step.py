"""Milliseconds per auto-encoder training step (encoder + decoder, forward + backward + Adam), side by side.

    .venv/bin/python bench/train_step.py [--quick | --full] [--device cpu|cuda] [--blocks add,cbn]
                                         [--no-compile | --compile] [--repeats N] [--threads N]

The official-size model (PointNetEncoder + ScoreDecoder, zdim 128, width 256; "add" 24 blocks and "cbn" 16 blocks)
trains on one fixed batch (32 shapes x 2048 points with --full, the default on CUDA; 4 x 512 with --quick, the
default on CPU), one sigma per shape from the 10-level ladder, the official loss, Adam lr 1e-3. Rows, each on its
own copy of the same initial weights and the same random draws:

(a) official fp32 eager: the official code's computation (Conv1d on (B, C, N), the condition c = [x, z, sigma]
    materialised per point, every linear of c per point), default Adam; torch's default precision flags.
(a') naive, channels-last: the same dataflow with nn.Linear on (B, N, C) (isolates the layout).
(b) gfcore fp32 eager: ShapeGF.loss as it is (channels-last; the z/sigma part of every linear of c once per shape).
(c) gfcore fast, the trainer's defaults (``amp="auto"``): bf16 autocast and fused Adam, plus TF32 matmuls on CUDA;
    on a CPU bf16 autocast only where the CPU multiplies bf16 natively (gfcore.train.distributed.cpu_has_fast_bf16),
    else fp32 + fused Adam. Its accuracy: the loss of every timed step against row (b)'s, same weights and draws.
(d) gfcore fast + torch.compile of encoder and decoder (CUDA by default; --no-compile drops it; --compile adds it on
    CPU).

Prints a table (ms per step, speedup over (a)) and writes bench/results/train_step_<device>.json.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    machine,
    naive_decoder,
    official_decoder,
    official_encoder,
    print_table,
    set_threads,
    timed,
    toy_shapes,
    write_json,
)

sys.path.insert(0, str(ROOT))
from gfcore.losses import dsm_loss  # noqa: E402
from gfcore.models import ShapeGF  # noqa: E402
from gfcore.schedule import geometric_sigmas  # noqa: E402
from gfcore.train.distributed import autocast_dtype  # noqa: E402

VARIANTS = {"add": 24, "cbn": 16}


def loss_official(model, points, sigmas, gen):
    z = official_encoder(model.encoder, points)

    def score_fn(x, sigma):
        return official_decoder(model.decoder, x, sigma, z) / sigma.view(-1, 1, 1).square()
    return dsm_loss(score_fn, points, sigmas, generator=gen)


def loss_naive(model, points, sigmas, gen):
    z = model.encoder(points)

    def score_fn(x, sigma):
        return naive_decoder(model.decoder, x, sigma, z) / sigma.view(-1, 1, 1).square()
    return dsm_loss(score_fn, points, sigmas, generator=gen)


def loss_gfcore(model, points, sigmas, gen):
    return model.loss(points, sigmas, generator=gen)


def make_row(name, base, loss_fn, *, device, fast, compile_mode):
    model = copy.deepcopy(base).train()
    opt_kw = {"fused": True} if fast else {}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), **opt_kw)
    if compile_mode:  # "default" or a torch.compile mode
        mode = None if compile_mode == "default" else compile_mode
        model.encoder.compile(mode=mode)
        model.decoder.compile(mode=mode)
    amp_dtype = autocast_dtype(device, "auto") if fast else None
    amp = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext())
    return {"name": name, "model": model, "opt": opt, "loss_fn": loss_fn, "amp": amp, "fast": fast,
            "compile": compile_mode}


def run_row(row, points, sigmas, *, device, seed, repeats, warmup):
    prec = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if row["fast"] and device.type == "cuda" else "highest")
    gen = torch.Generator(device).manual_seed(seed)
    model, opt = row["model"], row["opt"]
    losses = []

    def step():
        with row["amp"]:
            loss = row["loss_fn"](model, points, sigmas, gen).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t = timed(step, device, repeats=repeats, warmup=warmup)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    finally:
        torch.set_float32_matmul_precision(prec)
    return {"ms": 1e3 * t["median_s"], "min_ms": 1e3 * t["min_s"], "times_ms": [1e3 * v for v in t["times_s"]],
            "peak_mib": peak, "losses": [float(v) for v in losses]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="batch 4 x 512 points (default on CPU)")
    size.add_argument("--full", action="store_true", help="batch 32 x 2048 points (default on CUDA)")
    ap.add_argument("--blocks", default="add,cbn", help="decoder variants, comma-separated: add (24), cbn (16)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile row (CUDA)")
    ap.add_argument("--compile", action="store_true", help="add the torch.compile row on CPU too (slow to build)")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode for row (d)")
    ap.add_argument("--repeats", type=int, default=None, help="timed steps per row (default 3 quick, 20 full)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per row (default 1, 3 with compile)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    device = torch.device(args.device)
    quick = args.quick or (not args.full and device.type == "cpu")
    batch, npts = (4, 512) if quick else (32, 2048)
    repeats = args.repeats or (3 if quick else 20)
    use_compile = (device.type == "cuda" and not args.no_compile) or args.compile

    g = torch.Generator().manual_seed(args.seed)
    points = toy_shapes(batch, npts, generator=g).to(device)
    sigmas = geometric_sigmas(1.0, 0.01, 10, device=device)
    fast_dtype = "bf16 autocast" if autocast_dtype(device, "auto") is not None else "fp32"
    result = {"machine": machine(device), "quick": quick, "batch": batch, "num_points": npts, "zdim": 128,
              "hidden": 256, "repeats": repeats, "dtype_baseline": "float32",
              "dtype_fast": "bfloat16 autocast, TF32 matmuls" if device.type == "cuda" else fast_dtype,
              "note": ("--quick: batch 4 x 512 points, not the official 32 x 2048" if quick else
                       "official size: batch 32 x 2048 points"),
              "variants": {}}
    print(f"{result['machine']['device_name']} | torch {torch.__version__} | {device} | batch {batch} x {npts}"
          f"{' (--quick)' if quick else ''} | median of {repeats} steps")
    for block in args.blocks.split(","):
        n_blocks = VARIANTS[block]
        torch.manual_seed(args.seed)
        base = ShapeGF(dim=3, zdim=128, hidden=256, n_blocks=n_blocks, block=block).to(device)
        # sanity: every row computes the same loss from the same weights and draws
        with torch.no_grad():
            ref = [f(copy.deepcopy(base).train(), points, sigmas, torch.Generator(device).manual_seed(1)).mean()
                   for f in (loss_official, loss_naive, loss_gfcore)]
        rel = max(abs(float(r) - float(ref[0])) / abs(float(ref[0])) for r in ref[1:])
        specs = [("(a) official fp32 eager", loss_official, False, None),
                 ("(a') naive c, channels-last, fp32", loss_naive, False, None),
                 ("(b) gfcore fp32 eager", loss_gfcore, False, None),
                 ("(c) gfcore fast" + (" (bf16+TF32+fused Adam)" if device.type == "cuda" else
                                       f" ({fast_dtype}, fused Adam)"), loss_gfcore, True, None)]
        if use_compile:
            specs.append(("(d) gfcore fast + compile", loss_gfcore, True, args.compile_mode))
        rows = []
        for name, fn, fast, cmode in specs:
            row = make_row(name, base, fn, device=device, fast=fast, compile_mode=cmode)
            warmup = args.warmup if args.warmup is not None else (3 if cmode else 1)
            r = run_row(row, points, sigmas, device=device, seed=args.seed, repeats=repeats, warmup=warmup)
            r.update(name=name, compile=cmode, warmup=warmup)
            rows.append(r)
            print(f"  {block}: {name}: {r['ms']:.1f} ms", flush=True)
            del row
        base_ms = rows[0]["ms"]
        for r in rows:
            r["speedup"] = base_ms / r["ms"]
            r["speedup_vs_gfcore_fp32"] = rows[2]["ms"] / r["ms"]
            # accuracy: same weights, same draws, step by step against gfcore fp32 (row b)
            pairs = list(zip(r["losses"], rows[2]["losses"]))
            r["loss_rel_diff_vs_fp32"] = max(abs(a - b) / abs(b) for a, b in pairs) if pairs else None
        print(f"\n{block}-{n_blocks} (loss rel. difference between rows at step 0: {rel:.1e})")
        print_table(rows, [("name", "row", ""), ("ms", "ms/step", ".1f"), ("min_ms", "min ms", ".1f"),
                           ("speedup", "speedup", ".2f"), ("loss_rel_diff_vs_fp32", "loss vs fp32", ".1e"),
                           ("peak_mib", "peak MiB", ".0f")])
        print()
        result["variants"][f"{block}-{n_blocks}"] = {"rows": rows, "loss_rel_diff_step0": rel}
    write_json("train_step", device, result, args.out)


if __name__ == "__main__":
    main()
