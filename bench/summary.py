"""One table of every benchmark's speed ratios, each against a baseline measured in the same run.

    .venv/bin/python bench/summary.py [--results DIR] [--out PATH]

Reads the JSON that the benchmarks write (``<name>_<device>[_<size>].json`` in ``--results``, default
``bench/results``) and writes a Markdown table (default ``<results>/summary.md``; ``make bench`` writes
``bench/results/summary.md`` from its run). Each row compares one path with the baseline that the same script timed
in the same process on the same machine: ``speedup = baseline seconds / path seconds`` (above 1: faster than the
baseline). The device, torch version and date of each run stand in every row, since ratios are comparable only
within one machine. Baselines, by script:

- ``field``: plain ``torch.cdist`` + softmax (the closed-form score written the obvious way);
- ``train_step``, ``sample``: the official code's computation in fp32 eager (Conv1d, materialised condition);
- ``surface``: the unchunked cdist + softmax grid (where it fits in memory; else gfcore's dense grid);
- ``metrics``: a scipy-only generation table (cKDTree Chamfer, exact EMD by ``linear_sum_assignment``), and exact
  EMD per pair against the approximate matching.

Missing numbers (a skipped row, an unknown script) are left out, never invented.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# -- one function per benchmark: its JSON -> rows {case, baseline, baseline_s, method, method_s[, note]} --------
def rows_field(data: dict) -> list[dict]:
    tp = data["throughput"]
    rows = tp["rows"]
    base = next((r for r in rows if r["method"].startswith("cdist")), None)
    if base is None:
        return []
    case = f"closed-form score, M={tp['M']} x N={tp['N']}, d={tp['d']}, {tp['dtype']}"
    return [{"case": case, "baseline": base["method"], "baseline_s": base["seconds"], "method": r["method"],
             "method_s": r["seconds"]} for r in rows if r["method"].startswith("gfcore")]


def rows_train_step(data: dict) -> list[dict]:
    out = []
    for variant, v in data["variants"].items():
        rows = v["rows"]
        base = rows[0]
        case = f"training step {variant}, batch {data['batch']} x {data['num_points']}"
        out += [{"case": case, "baseline": base["name"], "baseline_s": base["ms"] / 1e3, "method": r["name"],
                 "method_s": r["ms"] / 1e3} for r in rows[1:] if r.get("ms") is not None]
    return out


def rows_sample(data: dict) -> list[dict]:
    out = []
    for variant, v in data["variants"].items():
        rows = v["speed"]
        base = rows[0]
        case = f"Langevin {variant}, {data['shapes']} x {data['num_points']} points x {data['steps']} steps"
        out += [{"case": case, "baseline": base["name"], "baseline_s": base["s_per_run"], "method": r["name"],
                 "method_s": r["s_per_run"]} for r in rows[1:] if r.get("s_per_run") is not None]
    return out


def rows_surface(data: dict) -> list[dict]:
    out = []
    for r in data["results"]:
        case = f"unsigned-distance grid {r['K']}^3, {data['num_points']} points"
        if r.get("naive_s") is not None:
            base, base_s = "naive unchunked (cdist+softmax)", r["naive_s"]
            paths = [("gfcore dense (chunked)", "dense_s"), ("gfcore narrow band", "narrow_s")]
        elif r.get("dense_s") is not None:
            base, base_s = "gfcore dense (chunked)", r["dense_s"]
            paths = [("gfcore narrow band", "narrow_s")]
        else:
            continue
        note = f"naive skipped: {r['naive_skipped']}" if r.get("naive_skipped") else ""
        out += [{"case": case, "baseline": base, "baseline_s": base_s, "method": name, "method_s": r[key],
                 "note": note} for name, key in paths if r.get(key) is not None]
    return out


def rows_metrics(data: dict) -> list[dict]:
    out = []
    sp = data.get("speed")
    if sp:
        base = sp["scipy_baseline"]
        note = "baseline's EMD time extrapolated from the pairs it solved" if base.get("total_extrapolated") else ""
        out.append({"case": f"generation table, {sp['sets']} x {sp['sets']} sets x {data['num_points']} points",
                    "baseline": "scipy (cKDTree CD, exact EMD)", "baseline_s": base["seconds_total"],
                    "method": "gfcore.metrics.evaluate (approxmatch EMD)", "method_s": sp["gfcore"]["seconds"],
                    "note": note})
    acc = data.get("accuracy")
    if acc:
        per_pair = acc["s_per_pair"]
        exact = next((v for k, v in per_pair.items() if k.startswith("exact")), None)
        if exact is not None and per_pair.get("approxmatch") is not None:
            out.append({"case": f"EMD of one pair, {acc['num_points']} points", "baseline": "exact (scipy, float64)",
                        "baseline_s": exact, "method": "approxmatch", "method_s": per_pair["approxmatch"]})
    return out


EXTRACTORS = {"train_step": rows_train_step, "field": rows_field, "sample": rows_sample, "surface": rows_surface,
              "metrics": rows_metrics}


def _split_name(stem: str) -> tuple[str, str] | None:
    """``"sample_cpu_medium"`` -> ``("sample", "cpu_medium")``; ``None`` for a file of no known benchmark."""
    for name in sorted(EXTRACTORS, key=len, reverse=True):
        if stem.startswith(name + "_"):
            return name, stem[len(name) + 1:]
    return None


def _run_info(data: dict) -> dict:
    m = data.get("machine", {})
    device = m.get("device_name") or m.get("device") or "?"
    if m.get("device", "cpu").startswith("cpu") and m.get("torch_threads"):
        device = f"{device} ({m['torch_threads']} thread{'s' if m['torch_threads'] != 1 else ''})"
    return {"device": device, "torch": m.get("torch", "?"), "date": (m.get("date") or "?")[:10]}


def collect(results_dir) -> list[dict]:
    """Every row of every known benchmark JSON in ``results_dir``, sorted by benchmark and file, with its ratio."""
    rows = []
    for path in sorted(Path(results_dir).glob("*.json")):
        split = _split_name(path.stem)
        if split is None:
            continue
        name, tag = split
        data = json.loads(path.read_text())
        info = _run_info(data)
        for r in EXTRACTORS[name](data):
            if not (r["method_s"] and r["method_s"] > 0 and r["baseline_s"] and r["baseline_s"] > 0):
                continue
            rows.append({"benchmark": name, "file": path.name, "tag": tag, **info, "note": "", **r,
                         "speedup": r["baseline_s"] / r["method_s"]})
    return rows


def _seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def render(rows: list[dict], *, generated: str | None = None, source: str = "", note: str = "") -> str:
    """The Markdown page: a short header (with ``note``, e.g. how loaded the machine was) and one table (``rows``
    from :func:`collect`)."""
    generated = generated or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Benchmark summary", "",
             f"Built by `bench/summary.py` on {generated}{f' from `{source}`' if source else ''}. Each row times one "
             "path against the baseline that the same script measured in the same run (same process, same "
             "machine): speedup = baseline time / path time, above 1 is faster. Compare ratios only between rows of "
             "the same device. The JSON it is built from holds every measurement (repeats, accuracy, sizes).", ""]
    if note:
        lines += [note, ""]
    if not rows:
        return "\n".join(lines + ["No benchmark results found.", ""])
    header = ["benchmark", "case", "baseline", "path", "baseline time", "path time", "speedup", "device", "torch",
              "date", "note"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 4 + ["---:"] * 3 + ["---"] * 4) + "|"]
    for r in rows:
        cells = [r["benchmark"], r["case"], r["baseline"], r["method"], _seconds(r["baseline_s"]),
                 _seconds(r["method_s"]), f"{r['speedup']:.2f}x", r["device"], r["torch"], r["date"], r["note"]]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"), help="folder of the benchmark JSON")
    ap.add_argument("--out", default=None, help="Markdown path (default <results>/summary.md)")
    ap.add_argument("--note", default="", help="a sentence printed above the table (e.g. the machine's load)")
    args = ap.parse_args(argv)
    results = Path(args.results)
    out = Path(args.out) if args.out else results / "summary.md"
    rows = collect(results)
    try:
        source = str(results.resolve().relative_to(ROOT))
    except ValueError:
        source = str(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(rows, source=source, note=args.note))
    print(f"{len(rows)} rows from {len({r['file'] for r in rows})} files -> {out}")
    return out


if __name__ == "__main__":
    main()
