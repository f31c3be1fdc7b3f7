"""bench/summary.py: small benchmark JSON in, one Markdown table of ratios against same-run baselines out."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def summary():
    spec = importlib.util.spec_from_file_location("bench_summary", ROOT / "bench" / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _machine(date="2026-01-02T03:04:05+00:00", name="Test CPU"):
    return {"date": date, "torch": "9.9.9+cpu", "device": "cpu", "device_name": name, "torch_threads": 2}


def _write(folder: Path, name: str, data: dict) -> None:
    (folder / name).write_text(json.dumps(data))


@pytest.fixture
def results(tmp_path):
    _write(tmp_path, "train_step_cpu.json", {
        "machine": _machine(), "batch": 4, "num_points": 512,
        "variants": {"add-24": {"rows": [{"name": "(a) official", "ms": 300.0}, {"name": "(b) gfcore", "ms": 100.0},
                                         {"name": "(c) skipped", "ms": None}]}}})
    _write(tmp_path, "sample_cpu_medium.json", {
        "machine": _machine(name="Other CPU"), "shapes": 8, "num_points": 1024, "steps": 50,
        "variants": {"cbn-16": {"speed": [{"name": "(a) official", "s_per_run": 2.0},
                                          {"name": "(d) bf16", "s_per_run": 0.5}]}}})
    _write(tmp_path, "field_cpu.json", {
        "machine": _machine(), "throughput": {"M": 10, "N": 20, "d": 3, "dtype": "float32", "rows": [
            {"method": "numpy loop (naive)", "seconds": 9.0}, {"method": "cdist+softmax (torch)", "seconds": 0.3},
            {"method": "gfcore auto (default)", "seconds": 0.1}]}})
    _write(tmp_path, "surface_cpu.json", {
        "machine": _machine(), "num_points": 64, "results": [
            {"K": 16, "naive_s": 4.0, "dense_s": 2.0, "narrow_s": 1.0},
            {"K": 32, "naive_skipped": "needs ~9 GiB", "dense_s": 6.0, "narrow_s": 2.0}]})
    _write(tmp_path, "metrics_cpu.json", {
        "machine": _machine(), "num_points": 128,
        "speed": {"sets": 3, "gfcore": {"seconds": 1.0},
                  "scipy_baseline": {"seconds_total": 12.0, "total_extrapolated": True}},
        "accuracy": {"num_points": 128, "s_per_pair": {"exact (scipy, CPU float64)": 0.4, "approxmatch": 0.1}}})
    _write(tmp_path, "unrelated_cpu.json", {"machine": _machine()})
    (tmp_path / "notes.txt").write_text("not JSON")
    return tmp_path


def test_collect_gives_each_ratio_against_its_own_baseline(summary, results):
    rows = summary.collect(results)
    got = {(r["benchmark"], r["case"].split(",")[0], r["method"]): r for r in rows}
    assert len(rows) == len(got) == 8
    assert got[("train_step", "training step add-24", "(b) gfcore")]["speedup"] == pytest.approx(3.0)
    assert got[("sample", "Langevin cbn-16", "(d) bf16")]["speedup"] == pytest.approx(4.0)
    assert got[("sample", "Langevin cbn-16", "(d) bf16")]["device"] == "Other CPU (2 threads)"
    field = got[("field", "closed-form score", "gfcore auto (default)")]
    assert field["baseline"] == "cdist+softmax (torch)" and field["speedup"] == pytest.approx(3.0)
    assert got[("surface", "unsigned-distance grid 16^3", "gfcore dense (chunked)")]["speedup"] == pytest.approx(2.0)
    assert got[("surface", "unsigned-distance grid 16^3", "gfcore narrow band")]["speedup"] == pytest.approx(4.0)
    k32 = got[("surface", "unsigned-distance grid 32^3", "gfcore narrow band")]
    assert k32["baseline"] == "gfcore dense (chunked)" and k32["speedup"] == pytest.approx(3.0)
    assert "naive skipped" in k32["note"]
    table = got[("metrics", "generation table", "gfcore.metrics.evaluate (approxmatch EMD)")]
    assert table["speedup"] == pytest.approx(12.0) and "extrapolated" in table["note"]
    assert got[("metrics", "EMD of one pair", "approxmatch")]["speedup"] == pytest.approx(4.0)
    assert {r["date"] for r in rows} == {"2026-01-02"} and {r["torch"] for r in rows} == {"9.9.9+cpu"}


def test_render_writes_one_table_with_device_torch_and_date(summary, results, tmp_path):
    out = summary.main(["--results", str(results), "--out", str(tmp_path / "out" / "summary.md"),
                        "--note", "Measured on a busy machine."])
    text = out.read_text()
    assert "\nMeasured on a busy machine.\n" in text
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 8                                           # header, alignment, one line per row
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[header.index("speedup")] == "speedup" and {"device", "torch", "date"} <= set(header)
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "| 3.00x |" in text and "| 12.00x |" in text and "300.0 ms" in text and "12.00 s" in text
    assert "Test CPU (2 threads)" in text and "9.9.9+cpu" in text and "2026-01-02" in text


def test_render_without_results(summary, tmp_path):
    assert "No benchmark results found." in summary.render(summary.collect(tmp_path), generated="today")
