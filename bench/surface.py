"""Surface extraction from the closed-form field: grid evaluation rate and marching-cubes time, side by side.

    .venv/bin/python bench/surface.py [--resolutions 64 128] [--big] [--device cpu|cuda]

The field is the closed form (``gfcore.fields.smoothed_score``) of ``--num-points`` points on a sphere of
radius 0.7 at ``--sigma``; the grid is ``K^3`` points on ``[-1, 1]^3`` and the marching-cubes level is two
grid steps, at least ``MIN_LEVEL``. For each ``K`` (``--big`` adds 256; on a 2-core CPU that is many
minutes, hence a flag):

- **naive, unchunked**: the whole grid at once, ``torch.cdist`` + softmax over the points,
  ``sigma^2 |mean - x|`` (skipped, with the memory it would need, when its ``K^3 x N`` matrices exceed
  ``--naive-max-gib``);
- **gfcore dense**: ``surface.unsigned_distance_grid`` (chunked, every grid point);
- **gfcore narrow band**: the same with ``band=level`` (exact within the band, block lower bounds elsewhere):
  the points actually evaluated are counted;
- **marching cubes**: scikit-image on the dense volume (both sheets), and the whole ``surface.marching_cubes``
  call (narrow band, flood fill to keep the outer sheet, extraction).

Rates are grid points per second of wall time (one timed run after a small warm-up; two threads by default).
Each timing also records the process CPU seconds (``*_cpu_s``) and the load average is stored: on a shared
machine wall time overstates the cost, and CPU time (summed over threads) is the steadier figure.
Accuracy: max difference of naive and narrow band against gfcore dense (in the band). Writes
``bench/results/surface_<device>.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, print_table, set_threads, sync, write_json  # noqa: E402

sys.path.insert(0, str(ROOT))
from gfcore import fields, surface  # noqa: E402


def naive_grid(points: torch.Tensor, k: int, sigma: float) -> torch.Tensor:
    """The unsigned distance on the whole grid at once (cdist, softmax, weighted mean): ``(K, K, K)``."""
    axis = torch.linspace(-1.0, 1.0, k, device=points.device, dtype=points.dtype)
    x = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    w = torch.softmax(torch.cdist(x, points).square() / (-2 * sigma**2), dim=-1)
    return (sigma**2 * ((w @ points - x) / sigma**2).norm(dim=-1)).reshape(k, k, k)


TIMES: list[dict] = []
# The band u <= level must be thicker than the field's sampling ripple, R sqrt(2 / N) ~ 0.03 for 1,024 points on
# the sphere, or it has holes, the flood fill leaks through them, and the inner sheet is kept too.
MIN_LEVEL = 0.06


def once(fn, device):
    """Run ``fn`` once: its output and wall seconds; the process CPU seconds are appended to ``TIMES``."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    TIMES.append({"wall_s": wall, "cpu_s": cpu})
    return out, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--big", action="store_true", help="also K = 256 (minutes to tens of minutes on a CPU)")
    ap.add_argument("--num-points", type=int, default=1024)
    ap.add_argument("--sigma", type=float, default=0.1, help="about 1.3 point spacings at the default --num-points")
    ap.add_argument("--naive-max-gib", type=float, default=4.0, help="skip the naive path above this memory")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    load_start = list(os.getloadavg())
    device = torch.device(args.device)
    resolutions = sorted(set(args.resolutions + ([256] if args.big else [])))
    g = torch.Generator().manual_seed(0)
    points = 0.7 * torch.nn.functional.normalize(torch.randn(args.num_points, 3, generator=g), dim=-1)
    points = points.to(device)
    sigma = args.sigma
    calls = {"points": 0}

    def score_fn(x, s):
        calls["points"] += x.shape[0] * x.shape[1]
        return fields.smoothed_score(x, points, s)

    # warm-up (kernels, allocator) on a small grid
    surface.unsigned_distance_grid(score_fn, sigma=sigma, resolution=16, device=device)
    naive_grid(points, 16, sigma)

    rows, results = [], []
    for k in resolutions:
        n = k**3
        level = max(2 * 2.0 / (k - 1), MIN_LEVEL)
        res = {"K": k, "grid_points": n, "level": level}
        gib = 3 * n * args.num_points * 4 / 2**30          # cdist, its square, softmax: three K^3 x N float32
        if gib <= args.naive_max_gib:
            naive, secs = once(lambda k=k: naive_grid(points, k, sigma), device)
            res["naive_s"], res["naive_cpu_s"] = secs, TIMES[-1]["cpu_s"]
            res["naive_points_per_s"] = n / secs
        else:
            naive = None
            res["naive_skipped"] = f"needs ~{gib:.1f} GiB (> --naive-max-gib {args.naive_max_gib})"
        print(f"K={k}: naive " + (f"{res['naive_s']:.1f} s" if naive is not None else res["naive_skipped"]),
              flush=True)
        dense, secs = once(lambda k=k: surface.unsigned_distance_grid(score_fn, sigma=sigma, resolution=k,
                                                                      device=device)[0], device)
        res["dense_s"], res["dense_points_per_s"], res["dense_cpu_s"] = secs, n / secs, TIMES[-1]["cpu_s"]
        print(f"K={k}: gfcore dense {secs:.1f} s", flush=True)
        calls["points"] = 0
        narrow, secs = once(lambda k=k, level=level: surface.unsigned_distance_grid(
            score_fn, sigma=sigma, resolution=k, band=level, device=device)[0], device)
        res["narrow_s"], res["narrow_points_per_s"], res["narrow_cpu_s"] = secs, n / secs, TIMES[-1]["cpu_s"]
        res["narrow_evaluated_points"] = calls["points"]
        print(f"K={k}: gfcore narrow band {secs:.1f} s ({calls['points']} points evaluated)", flush=True)
        band = dense <= level + 2.0 / (k - 1)
        res["narrow_max_diff_in_band"] = float((narrow - dense)[band].abs().max())
        if naive is not None:
            res["naive_max_diff"] = float((naive - dense).abs().max())
        volume = dense.cpu().numpy()
        from skimage import measure

        (verts, faces, _, _), secs = once(lambda v=volume, lv=level: measure.marching_cubes(v, lv),
                                          torch.device("cpu"))
        res["skimage_mc_s"], res["mc_vertices_both_sheets"] = secs, len(verts)
        res["skimage_mc_cpu_s"] = TIMES[-1]["cpu_s"]
        (v, f), secs = once(lambda k=k, level=level: surface.marching_cubes(
            score_fn, sigma=sigma, resolution=k, level=level, device=device), device)
        res["marching_cubes_total_s"], res["mesh_vertices"], res["mesh_faces"] = secs, len(v), len(f)
        res["marching_cubes_total_cpu_s"] = TIMES[-1]["cpu_s"]
        radius = v.double().norm(dim=-1)
        res["mesh_radius_mean"] = float(radius.mean())
        res["mesh_radius_expected"] = 0.7 + level - sigma**2 / 0.7
        results.append(res)
        for method, key in [("naive unchunked (cdist+softmax)", "naive"), ("gfcore dense (chunked)", "dense"),
                            ("gfcore narrow band", "narrow")]:
            rows.append({"K": k, "method": method, "seconds": res.get(f"{key}_s"),
                         "cpu": res.get(f"{key}_cpu_s"), "rate": res.get(f"{key}_points_per_s"),
                         "evaluated": res.get("narrow_evaluated_points") if key == "narrow" else
                         (n if res.get(f"{key}_s") is not None else None)})
        rows.append({"K": k, "method": "skimage marching cubes (both sheets)",
                     "seconds": res["skimage_mc_s"], "cpu": res["skimage_mc_cpu_s"]})
        rows.append({"K": k, "method": "surface.marching_cubes (total)",
                     "seconds": res["marching_cubes_total_s"], "cpu": res["marching_cubes_total_cpu_s"]})
    print()
    print_table(rows, [("method", "method", ""), ("K", "K", "d"), ("seconds", "wall s", ".2f"),
                       ("cpu", "cpu s", ".2f"), ("rate", "grid points/s", ".3g"),
                       ("evaluated", "points evaluated", "d")])
    print()
    for r in results:
        print(f"K={r['K']}: narrow-band max diff in band {r['narrow_max_diff_in_band']:.2e}; "
              f"naive max diff {r.get('naive_max_diff', float('nan')):.2e}; "
              f"mesh radius {r['mesh_radius_mean']:.4f} "
              f"(expected ~{r['mesh_radius_expected']:.4f}); {r.get('naive_skipped', '')}")
    write_json("surface", device, {"machine": machine(device), "num_points": args.num_points, "sigma": sigma,
                                   "radius": 0.7, "bounds": [-1.0, 1.0], "threads": args.threads,
                                   "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
                                   "results": results,
                                   "note": "256^3 needs --big" if 256 not in resolutions else ""}, args.out)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
