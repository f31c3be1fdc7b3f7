"""Generation metrics: gfcore.metrics.evaluate against a scipy-only baseline, and each EMD's error against exact.

    .venv/bin/python bench/metrics.py [--quick | --full] [--device cpu|cuda] [--sets S] [--points N]
                                      [--error-pairs P] [--baseline-emd-pairs K] [--threads T] [--out PATH]

Data: procedural shapes (gfcore.data.Shapes3D, all six categories), each cloud scaled into the ball of radius 0.5
(PointFlow's JSD sphere; about the size of raw PC15k shapes). "Generated" = S shapes of the train split,
"reference" = S shapes of the val split: two honest samples of one distribution.

(1) Speed of the whole generation table, MMD/COV/1-NNA by CD and by EMD plus JSD:
    (a) gfcore.metrics.evaluate(generated, reference, emd_method="approxmatch") (what published tables used);
    (b) a scipy-only baseline of the same table: Chamfer by scipy.spatial.cKDTree, EMD by
        scipy.optimize.linear_sum_assignment (exact), MMD/COV/1-NNA in NumPy, JSD by a KD-tree on the grid.
    --full is the issue's size, S = 100 sets of N = 2048 points (30,000 approximate EMDs: hours on a CPU);
    --quick (the default on a CPU) is S = 10. When the baseline's exact EMDs exceed --baseline-emd-pairs, it solves
    that many and the JSON extrapolates its time (flagged). Times for 100 x 100 are extrapolated from per-pair
    rates measured here (flagged).
(2) Accuracy of the EMDs against the exact assignment on P pairs of N-point clouds (half two samplings of one shape,
    train pool vs test pool; half two different shapes): approxmatch / exact with the Euclidean and the squared cost,
    Sinkhorn's relative error and time. --quick measures Sinkhorn at 256 points (thousands of sweeps over an N x N
    matrix are slow on a CPU) and says so.

Prints tables, writes bench/results/metrics_<device>.json.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, print_table, set_threads, sync, write_json  # noqa: E402

sys.path.insert(0, str(ROOT))
from gfcore import metrics  # noqa: E402
from gfcore.data import Shapes3D  # noqa: E402
from gfcore.data.shapes3d import CATEGORIES  # noqa: E402
from gfcore.evaluation import spread_indices  # noqa: E402


# -- data ------------------------------------------------------------------------------------------------------
def shape_set(split: str, count: int, num_points: int, *, pool: str = "test") -> torch.Tensor:
    """``(count, N, 3)`` clouds spread over the six categories, inside the ball of radius 0.5."""
    per = math.ceil(count / len(CATEGORIES))
    ds = Shapes3D(CATEGORIES, split=split, num_points=num_points, num_shapes=per, normalize="shape_unit",
                  sample="first", pool=pool)
    return torch.stack([ds[i]["points"] for i in spread_indices(len(ds), count)]) * 0.5


def error_pairs(count: int, num_points: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Half same-shape pairs (train pool vs test pool), half different-shape pairs; radius-0.5 coordinates."""
    half = max(1, count // 2)
    a = shape_set("val", half, num_points, pool="train")
    b = shape_set("val", half, num_points, pool="test")
    kinds = ["same shape"] * half + ["different shapes"] * half
    return torch.cat([a, a]), torch.cat([b, b.roll(1, 0)]), kinds


# -- the scipy-only baseline ------------------------------------------------------------------------------------
def scipy_cd(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.spatial import cKDTree

    d_xy, _ = cKDTree(y).query(x)
    d_yx, _ = cKDTree(x).query(y)
    return float((d_xy**2).mean() + (d_yx**2).mean())


def scipy_emd(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    c = cdist(x, y)
    r, col = linear_sum_assignment(c)
    return float(c[r, col].mean())


def scipy_matrix(fn, a: np.ndarray, b: np.ndarray | None, limit: int | None = None):
    """``fn`` over all pairs (the symmetric half for ``b=None``); returns (matrix, pairs done, pairs needed, s)."""
    self_pairs = b is None
    b = a if self_pairs else b
    pairs = [(i, j) for i in range(len(a)) for j in range(len(b)) if not self_pairs or i < j]
    todo = pairs if limit is None else pairs[:limit]
    out = np.full((len(a), len(b)), np.nan)
    if self_pairs:
        np.fill_diagonal(out, 0.0)
    fn(a[0], b[-1])                                   # warm-up: imports and first-call costs stay out of the time
    t0 = time.perf_counter()
    for i, j in todo:
        out[i, j] = fn(a[i], b[j])
        if self_pairs:
            out[j, i] = out[i, j]
    return out, len(todo), len(pairs), time.perf_counter() - t0


def numpy_table(ss: np.ndarray, sr: np.ndarray, rr: np.ndarray) -> dict:
    """MMD, COV and 1-NNA from matrices (PointFlow's definitions), in NumPy."""
    s, r = sr.shape
    full = np.block([[rr, sr.T], [sr, ss]]).astype(float)
    np.fill_diagonal(full, np.inf)
    label = np.r_[np.ones(r), np.zeros(s)]
    return {"MMD": float(sr.min(axis=0).mean()), "COV": len(np.unique(sr.argmin(axis=1))) / r,
            "1-NNA": float((label[full.argmin(axis=0)] == label).mean())}


def scipy_jsd(gen: np.ndarray, ref: np.ndarray, resolution: int = 28) -> float:
    from scipy.spatial import cKDTree

    axis = np.linspace(-0.5, 0.5, resolution)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[np.linalg.norm(grid, axis=1) <= 0.5]
    tree = cKDTree(grid)

    def hist(x):
        _, idx = tree.query(x.reshape(-1, 3))
        h = np.bincount(idx, minlength=len(grid)).astype(float)
        return h / h.sum()

    def entropy(p):
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum())

    p, q = hist(gen), hist(ref)
    return entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2


def baseline_table(gen: torch.Tensor, ref: torch.Tensor, emd_limit: int) -> dict:
    g, r = gen.double().numpy(), ref.double().numpy()
    out, timing = {}, {}
    t0 = time.perf_counter()
    for name, fn in (("CD", scipy_cd), ("EMD", scipy_emd)):
        limit = emd_limit if name == "EMD" else None
        rs, n1, need1, t1 = scipy_matrix(fn, r, g, limit)
        ss, n2, need2, t2 = scipy_matrix(fn, g, None, limit)
        rr, n3, need3, t3 = scipy_matrix(fn, r, None, limit)
        done, need, secs = n1 + n2 + n3, need1 + need2 + need3, t1 + t2 + t3
        timing[name] = {"pairs_done": done, "pairs_needed": need, "seconds": secs, "s_per_pair": secs / done,
                        "extrapolated": done < need}
        if done == need:
            out.update({f"{k}-{name}": v for k, v in numpy_table(ss, rs.T, rr).items()})
    t_jsd = time.perf_counter()
    out["JSD"] = scipy_jsd(g, r)
    timing["JSD"] = {"seconds": time.perf_counter() - t_jsd}
    measured = time.perf_counter() - t0
    total = timing["CD"]["seconds"] + timing["JSD"]["seconds"] + \
        timing["EMD"]["s_per_pair"] * timing["EMD"]["pairs_needed"]
    return {"values": out, "timing": timing, "seconds_measured": measured, "seconds_total": total,
            "total_extrapolated": timing["EMD"]["extrapolated"]}


# -- (1) speed ----------------------------------------------------------------------------------------------------
def pairs_for(s: int) -> dict:
    """Pairs an S x S table needs: symmetric metrics compute each unordered pair once, approxmatch every ordered one."""
    return {"symmetric": s * s + s * (s - 1), "approxmatch": 3 * s * s}


def speed(gen, ref, device, emd_limit) -> dict:
    s = gen.shape[0]
    g, r = gen.to(device), ref.to(device)
    metrics.evaluate(g[:2], r[:2], emd_method="approxmatch")     # warm-up
    sync(device)
    t0 = time.perf_counter()
    ours = metrics.evaluate(g, r, emd_method="approxmatch", disable=False)
    sync(device)
    t_ours = time.perf_counter() - t0
    # per-pair rates of our two distances, on the reference x generated block of two references
    rates = {}
    for name, fn in (("CD", lambda a, b: metrics.pairwise_cd(a, b)),
                     ("EMD approxmatch", lambda a, b: metrics.pairwise_emd(a, b, method="approxmatch"))):
        sync(device)
        t1 = time.perf_counter()
        fn(r[:2], g)
        sync(device)
        rates[name] = (time.perf_counter() - t1) / (2 * s)
    base = baseline_table(gen, ref, emd_limit)
    n100 = pairs_for(100)
    extrap = {
        "gfcore_evaluate_s": rates["CD"] * n100["symmetric"] + rates["EMD approxmatch"] * n100["approxmatch"],
        "scipy_baseline_s": base["timing"]["CD"]["s_per_pair"] * n100["symmetric"]
        + base["timing"]["EMD"]["s_per_pair"] * n100["symmetric"],
        "note": "extrapolated to 100 x 100 sets from the per-pair rates measured in this run (JSD not included)",
    }
    return {"sets": s, "gfcore": {"seconds": t_ours, "values": ours, "s_per_pair": rates},
            "scipy_baseline": base, "extrapolated_100x100": extrap}


# -- (2) accuracy -----------------------------------------------------------------------------------------------
def accuracy(count: int, num_points: int, sinkhorn_points: int, device) -> dict:
    a, b, kinds = error_pairs(count, num_points)
    rows = []
    t = time.perf_counter()
    exact = {c: metrics.emd_exact(a.double(), b.double(), cost=c) for c in ("euclidean", "squared")}
    t_exact = (time.perf_counter() - t) / (2 * len(a))
    sync(device)
    t = time.perf_counter()
    approx = {c: metrics.emd_approxmatch(a.to(device), b.to(device), cost=c).double().cpu()
              for c in ("euclidean", "squared")}
    sync(device)
    t_approx = (time.perf_counter() - t) / (2 * len(a))
    if sinkhorn_points == num_points:
        sa, sb, s_exact = a, b, exact
    else:
        sa, sb, _ = error_pairs(count, sinkhorn_points)
        s_exact = {c: metrics.emd_exact(sa.double(), sb.double(), cost=c) for c in ("euclidean", "squared")}
    sync(device)
    t = time.perf_counter()
    sink = {c: metrics.emd_sinkhorn(sa.to(device), sb.to(device), cost=c).double().cpu()
            for c in ("euclidean", "squared")}
    sync(device)
    t_sink = (time.perf_counter() - t) / (2 * len(sa))
    for i, kind in enumerate(kinds):
        rows.append({"pair": f"{i} ({kind})", "kind": kind,
                     "exact_euclidean": float(exact["euclidean"][i]),
                     "approx_over_exact_euclidean": float(approx["euclidean"][i] / exact["euclidean"][i]),
                     "approx_over_exact_squared": float(approx["squared"][i] / exact["squared"][i]),
                     "sinkhorn_rel_err_euclidean": float(sink["euclidean"][i] / s_exact["euclidean"][i] - 1),
                     "sinkhorn_rel_err_squared": float(sink["squared"][i] / s_exact["squared"][i] - 1)})

    def span(key, kind=None):
        vals = [r[key] for r in rows if kind is None or r["kind"] == kind]
        return {"min": min(vals), "median": statistics.median(vals), "max": max(vals)}

    summary = {f"{key} [{kind}]": span(key, kind) for key in ("approx_over_exact_euclidean",
                                                              "approx_over_exact_squared",
                                                              "sinkhorn_rel_err_euclidean",
                                                              "sinkhorn_rel_err_squared")
               for kind in ("same shape", "different shapes")}
    return {"pairs": len(rows), "num_points": num_points, "sinkhorn_points": sinkhorn_points, "rows": rows,
            "summary": summary, "s_per_pair": {"exact (scipy, CPU float64)": t_exact, "approxmatch": t_approx,
                                               f"sinkhorn ({sinkhorn_points} points)": t_sink}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10 x 10 sets (default on CPU)")
    size.add_argument("--full", action="store_true", help="100 x 100 sets (default on CUDA)")
    ap.add_argument("--sets", type=int, default=None, help="S, shapes per set (overrides --quick/--full)")
    ap.add_argument("--points", type=int, default=2048)
    ap.add_argument("--error-pairs", type=int, default=8)
    ap.add_argument("--baseline-emd-pairs", type=int, default=400,
                    help="largest number of exact EMDs the baseline solves (more: its time is extrapolated)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    quick = args.quick or (not args.full and device.type == "cpu")
    s = args.sets or (10 if quick else 100)
    sink_points = 256 if (quick and device.type == "cpu") else args.points
    result = {"machine": machine(device), "quick": quick, "sets": s, "num_points": args.points,
              "note": (f"--quick: {s} x {s} sets, not the issue's 100 x 100; Sinkhorn's error at {sink_points} points"
                       if quick else f"{s} x {s} sets of {args.points} points")}
    print(f"{result['machine']['device_name']} | torch {torch.__version__} | {device} | {s} x {s} sets x "
          f"{args.points} points{' (--quick)' if quick else ''}", flush=True)

    gen = shape_set("train", s, args.points)
    ref = shape_set("val", s, args.points)
    sp = speed(gen, ref, device, args.baseline_emd_pairs)
    result["speed"] = sp
    base = sp["scipy_baseline"]
    rows = [{"name": "(a) gfcore evaluate (approxmatch EMD)", "seconds": sp["gfcore"]["seconds"],
             "cd_ms": 1e3 * sp["gfcore"]["s_per_pair"]["CD"],
             "emd_ms": 1e3 * sp["gfcore"]["s_per_pair"]["EMD approxmatch"],
             "s100": sp["extrapolated_100x100"]["gfcore_evaluate_s"]},
            {"name": "(b) scipy baseline (cKDTree CD, exact EMD)" + (" *" if base["total_extrapolated"] else ""),
             "seconds": base["seconds_total"], "cd_ms": 1e3 * base["timing"]["CD"]["s_per_pair"],
             "emd_ms": 1e3 * base["timing"]["EMD"]["s_per_pair"],
             "s100": sp["extrapolated_100x100"]["scipy_baseline_s"]}]
    print(f"\n(1) the generation table, {s} x {s} sets of {args.points} points")
    print_table(rows, [("name", "row", ""), ("seconds", "seconds", ".1f"), ("cd_ms", "CD ms/pair", ".2f"),
                       ("emd_ms", "EMD ms/pair", ".1f"), ("s100", "100x100 s (extrap.)", ".0f")])
    if base["total_extrapolated"]:
        print(f"    * the baseline solved {base['timing']['EMD']['pairs_done']} of "
              f"{base['timing']['EMD']['pairs_needed']} exact EMDs; its time is extrapolated")
    vals = [{"name": "gfcore (approxmatch)", **sp["gfcore"]["values"]},
            {"name": "scipy (exact EMD)", **base["values"]}]
    keys = [k for k in metrics.PAPER_SCALES if k in vals[0]]
    print_table(vals, [("name", "values (raw)", "")] + [(k, k, ".4f") for k in keys])

    acc = accuracy(args.error_pairs, args.points, sink_points, device)
    result["accuracy"] = acc
    print(f"\n(2) EMD against exact, {acc['pairs']} pairs of {args.points} points (Sinkhorn: {sink_points} points)")
    print_table(acc["rows"], [("pair", "pair", ""), ("exact_euclidean", "exact", ".4f"),
                              ("approx_over_exact_euclidean", "approx/exact", ".3f"),
                              ("approx_over_exact_squared", "approx/exact sq", ".3f"),
                              ("sinkhorn_rel_err_euclidean", "sinkhorn err", ".4f"),
                              ("sinkhorn_rel_err_squared", "sinkhorn err sq", ".4f")])
    print("    seconds per pair: " + ", ".join(f"{k} {v:.3f}" for k, v in acc["s_per_pair"].items()))
    write_json("metrics", device, result, args.out)


if __name__ == "__main__":
    main()
