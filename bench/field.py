"""Speed, memory and accuracy of the closed-form score, gfcore against plain references, side by side.

    .venv/bin/python bench/field.py [--quick] [--device cpu|cuda]

Throughput is query-point pairs per second of ``smoothed_score`` at M=4096 queries x N=2048 points, d=3, float32:
(a) a naive NumPy reference (a Python loop over queries, NumPy over points; timed on a subset and extrapolated per
pair), (b) plain PyTorch ``cdist`` + softmax, unchunked, (c) gfcore "direct", (d) gfcore "attention" (fused SDPA with
augmented vectors), (e) gfcore "auto" (the default). Peak memory of a large call (1M x 15k; 100k x 15k on CPU with
``--quick``): CUDA ``max_memory_allocated`` per method; CPU peak RSS delta (``ru_maxrss``) of gfcore's default, in
a fresh subprocess. Accuracy: error of each float32 method against float64 "direct" at sigma 0.01, 0.05, 0.2 on
points of the unit sphere with queries at distance ~sigma. Prints a table, writes ``bench/results/field_<device>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from gfcore import fields  # noqa: E402


def sphere(n, *, generator, device, dtype=torch.float32):
    return torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=-1).to(device, dtype)


def queries(points, m, sigma, *, generator):
    idx = torch.randint(points.shape[0], (m,), generator=generator)
    noise = torch.randn(m, 3, generator=generator).to(points.device, points.dtype)
    return points[idx.to(points.device)] + sigma * noise


def numpy_loop(x, points, sigma):
    """Naive reference: one query at a time, NumPy over the points, float64."""
    out = np.empty_like(x)
    for q in range(len(x)):
        logits = -((x[q] - points) ** 2).sum(-1) / (2 * sigma**2)
        w = np.exp(logits - logits.max())
        w /= w.sum()
        out[q] = (w @ points - x[q]) / sigma**2
    return out


def cdist_softmax(x, points, sigma, chunk=None):
    """Plain PyTorch: cdist, softmax over points, weighted mean; optionally chunked over queries."""
    step = chunk or x.shape[-2]
    outs = []
    for i in range(0, x.shape[-2], step):
        xc = x[..., i:i + step, :]
        w = torch.softmax(torch.cdist(xc, points).square() / (-2 * sigma**2), dim=-1)
        outs.append((w @ points - xc) / sigma**2)
    return torch.cat(outs, dim=-2)


METHODS = {
    "cdist+softmax (torch)": lambda x, p, s: cdist_softmax(x, p, s),
    "gfcore direct": lambda x, p, s: fields.smoothed_score(x, p, s, method="direct"),
    "gfcore attention": lambda x, p, s: fields.smoothed_score(x, p, s, method="attention"),
    "gfcore auto (default)": lambda x, p, s: fields.smoothed_score(x, p, s),
}


def timed(fn, device, repeats, warmup=2):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def throughput(device, repeats, m=4096, n=2048, sigma=0.05, numpy_subset=256):
    g = torch.Generator().manual_seed(0)
    p = sphere(n, generator=g, device=device)
    x = queries(p, m, sigma, generator=g)
    rows = []
    xs, ps = x[:numpy_subset].double().cpu().numpy(), p.double().cpu().numpy()
    t = timed(lambda: numpy_loop(xs, ps, sigma), torch.device("cpu"), max(1, repeats // 3), warmup=0)
    rows.append({"method": "numpy loop (naive)", "seconds": t * m / numpy_subset,
                 "pairs_per_s": numpy_subset * n / t,
                 "note": f"timed on {numpy_subset} of {m} queries in float64, extrapolated per pair"})
    with torch.no_grad():
        for name, fn in METHODS.items():
            t = timed(lambda fn=fn: fn(x, p, sigma), device, repeats)
            rows.append({"method": name, "seconds": t, "pairs_per_s": m * n / t, "note": ""})
    return {"M": m, "N": n, "d": 3, "dtype": "float32", "sigma": sigma, "repeats": repeats, "rows": rows}


def accuracy(device, sigmas=(0.01, 0.05, 0.2), m=4096, n=2048):
    out = []
    g = torch.Generator().manual_seed(1)
    p = sphere(n, generator=g, device=device)
    with torch.no_grad():
        for sigma in sigmas:
            x = queries(p, m, sigma, generator=g)
            ref = fields.smoothed_score(x.double(), p.double(), sigma, method="direct")
            rnorm = ref.norm(dim=-1)
            rms = rnorm.square().mean().sqrt()
            for name, fn in METHODS.items():
                err = (fn(x, p, sigma).double() - ref).norm(dim=-1)
                out.append({"sigma": sigma, "method": name,
                            "max_err_over_rms": float(err.max() / rms),
                            "max_err_over_max": float(err.max() / rnorm.max()),
                            "p99_pointwise_rel": float((err / rnorm.clamp_min(1e-30)).quantile(0.99))})
    return out


MEM_SNIPPET = """
import resource, sys, time, torch
sys.path.insert(0, {root!r})
from gfcore import fields
m, n = {m}, {n}
g = torch.Generator().manual_seed(0)
p = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
x = p[torch.randint(n, (m,), generator=g)] + 0.05 * torch.randn(m, 3, generator=g)
fields.smoothed_score(x[:1000], p, 0.05, method={method!r})   # load kernels before the baseline
def rss_kib():  # current resident set; ru_maxrss is a high-water mark that imports may already have set
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = rss_kib()
t0 = time.perf_counter()
with torch.no_grad():
    fields.smoothed_score(x, p, 0.05, method={method!r})
t = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, t)
"""


def memory_cpu(m, n, methods):
    rows = []
    for method in methods:
        code = MEM_SNIPPET.format(root=str(ROOT), m=m, n=n, method=method)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        mib, secs = (float(v) for v in res.stdout.split())
        rows.append({"method": f"gfcore {method}", "peak_mib": mib, "seconds": secs,
                     "measure": "peak RSS (ru_maxrss) minus RSS before the call, fresh process, inputs "
                                "excluded; an upper bound (the allocator may keep freed memory resident), "
                                "seen 25-390 MiB run to run"})
    return rows


def memory_cuda(device, m, n, methods):
    rows = []
    g = torch.Generator().manual_seed(0)
    p = sphere(n, generator=g, device=device)
    x = queries(p, m, 0.05, generator=g)
    for method in methods:
        with torch.no_grad():
            fields.smoothed_score(x[:1000], p, 0.05, method=method)
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            t0 = time.perf_counter()
            out = fields.smoothed_score(x, p, 0.05, method=method)
            torch.cuda.synchronize(device)
            t = time.perf_counter() - t0
            peak = torch.cuda.max_memory_allocated(device) - base
            del out
        rows.append({"method": f"gfcore {method}", "peak_mib": peak / 2**20, "seconds": t,
                     "measure": "torch.cuda.max_memory_allocated minus inputs (output included)"})
    return rows


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device):
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "processor": cpu_name(), "device": str(device)}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = info["processor"]
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats; CPU memory case at 100k x 15k and gfcore's default only")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/field_<device>.json)")
    args = ap.parse_args()
    device = torch.device(args.device)
    repeats = 5 if args.quick else 15

    result = {"machine": machine(device), "quick": args.quick}
    result["throughput"] = throughput(device, repeats)
    result["accuracy"] = accuracy(device)
    n = 15000
    if device.type == "cuda":
        m = 1_000_000
        result["memory"] = {"M": m, "N": n, "rows": memory_cuda(device, m, n, ["auto", "attention", "direct"])}
    else:
        m = 100_000 if args.quick else 1_000_000
        methods = ["auto"] if args.quick else ["auto", "direct"]
        result["memory"] = {"M": m, "N": n, "rows": memory_cpu(m, n, methods),
                            "note": "--quick: 100k x 15k instead of 1M x 15k" if args.quick else ""}

    print(f"\n{result['machine']['device_name']} | torch {torch.__version__} | {device}")
    tp = result["throughput"]
    print(f"\nThroughput, M={tp['M']} x N={tp['N']}, d=3, float32, sigma={tp['sigma']} (median of {repeats})")
    print(f"{'method':28s} {'seconds':>10s} {'Mpairs/s':>10s}  note")
    for r in tp["rows"]:
        print(f"{r['method']:28s} {r['seconds']:10.4f} {r['pairs_per_s'] / 1e6:10.1f}  {r['note']}")
    print("\nAccuracy of float32 against float64 direct (unit sphere, queries ~sigma from it)")
    print(f"{'sigma':>6s} {'method':28s} {'max err/rms':>12s} {'max err/max':>12s} {'p99 pointwise':>14s}")
    for r in result["accuracy"]:
        print(f"{r['sigma']:6.2f} {r['method']:28s} {r['max_err_over_rms']:12.2e} {r['max_err_over_max']:12.2e} "
              f"{r['p99_pointwise_rel']:14.2e}")
    mem = result["memory"]
    print(f"\nPeak memory, M={mem['M']} x N={mem['N']} {mem.get('note', '')}")
    for r in mem["rows"]:
        print(f"{r['method']:28s} {r['peak_mib']:10.1f} MiB {r['seconds']:8.2f} s  ({r['measure']})")

    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"field_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
