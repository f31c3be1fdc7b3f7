"""Shared helpers of the model benchmarks (train_step.py, sample.py): timing, machine info, JSON, tables, the
official-style reference forward passes and a tiny procedural shape set.

bench/field.py keeps its own small timer (it predates this module); the conventions are the same: warm up,
``torch.cuda.synchronize`` around every timed call on CUDA, report the median.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -- timing ----------------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, *, repeats: int, warmup: int = 1) -> dict:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times, each between two device synchronisations.

    Returns ``{"median_s", "min_s", "times_s"}``. ``warmup`` must cover ``torch.compile``'s first calls (compile and
    CUDA-graph recording happen there) and cuBLAS/cuDNN's heuristics.
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


# -- machine info, JSON, tables --------------------------------------------------------------------------------
def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """What ran the benchmark: torch, Python, CPU/GPU, threads, TF32 flags and the date (UTC, ISO 8601)."""
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "processor": cpu_name(), "device": str(device),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["gpu_count"] = torch.cuda.device_count()
    else:
        info["device_name"] = info["processor"]
    return info


def write_json(name: str, device: torch.device, result: dict, out: str | None = None) -> Path:
    path = Path(out) if out else ROOT / "bench" / "results" / f"{name}_{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """``columns``: ``(key, header, format)``; a missing value prints as ``-``."""
    widths = [max(len(h), 10) for _, h, _ in columns]
    widths[0] = max(widths[0], *(len(str(r.get(columns[0][0], ""))) for r in rows))
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, ((_, h, _), w) in enumerate(zip(columns, widths))))
    for r in rows:
        cells = []
        for i, ((k, _, fmt), w) in enumerate(zip(columns, widths)):
            v = r.get(k)
            s = "-" if v is None else (format(v, fmt) if fmt else str(v))
            cells.append(s.ljust(w) if i == 0 else s.rjust(w))
        print("  ".join(cells))


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


# -- accuracy ----------------------------------------------------------------------------------------------------
def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(B,)`` Chamfer distance (squared, sum of the two means), in float32: gfcore.metrics.chamfer_distance."""
    from gfcore.metrics import chamfer_distance

    return chamfer_distance(a.float(), b.float())


# -- the official code's computation, on gfcore's parameters ------------------------------------------------
# The official ShapeGF keeps per-point features as (B, C, N) and applies 1x1 Conv1d layers; the decoder's
# condition c = [x, z, sigma] is materialised per point (B, d + zdim + 1, N) and every linear of c (input layer,
# each block's W_c, each CBN's gamma and beta) is a 1x1 conv of it. These functions run exactly that dataflow on a
# gfcore model's parameters, so baseline and fast path train and sample the same function.
def _conv(lin: torch.nn.Linear, h: torch.Tensor) -> torch.Tensor:
    return F.conv1d(h, lin.weight.unsqueeze(-1), lin.bias)


def official_encoder(enc, points: torch.Tensor) -> torch.Tensor:
    """PointNet as the official code runs it: Conv1d + BatchNorm1d on ``(B, C, N)``. ``(B, N, d) -> (B, zdim)``."""
    h = points.transpose(1, 2)
    last = len(enc.point_layers) - 1
    for i, (lin, bn) in enumerate(zip(enc.point_layers, enc.point_norms)):
        h = bn(_conv(lin, h))
        if i < last:
            h = torch.relu(h)
    h = h.max(dim=2).values
    for lin, bn in zip(enc.fc_layers, enc.fc_norms):
        h = torch.relu(bn(lin(h)))
    return enc.out(h)


def official_decoder(dec, x: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The score decoder as the official code runs it (materialised ``c``, Conv1d on ``(B, C, N)``).

    ``x (B, M, d), sigma (B,), z (B, zdim) -> (B, M, d)`` (``sigma^2 * score``), the same function as
    ``dec(x, sigma, z)``.
    """
    b, m, _ = x.shape
    c = torch.cat([x.transpose(1, 2), z.unsqueeze(2).expand(b, -1, m),
                   sigma.to(x.dtype).view(b, 1, 1).expand(b, 1, m)], dim=1)           # (B, c_dim, M)

    def cbn(norm, h):
        return norm.bn(h) * _conv(norm.gamma, c) + _conv(norm.beta, c)

    h = _conv(dec.inp, c)
    for blk in dec.blocks:
        if dec.block == "add":
            a = _conv(blk.fc0, torch.relu(blk.bn0(h)))
            h = h + _conv(blk.fc1, torch.relu(blk.bn1(a))) + _conv(blk.fc_c, c)
        else:
            a = _conv(blk.fc0, torch.relu(cbn(blk.norm0, h)))
            h = h + _conv(blk.fc1, torch.relu(cbn(blk.norm1, a)))
    h = torch.relu(dec.out_norm(h) if dec.block == "add" else cbn(dec.out_norm, h))
    return _conv(dec.out, h).transpose(1, 2)


def official_score_fn(model, z: torch.Tensor):
    """``score_fn(x, sigma)`` of the official-style decoder: prediction ``/ sigma^2``."""
    def score_fn(x, sigma):
        return official_decoder(model.decoder, x, sigma, z) / sigma.view(-1, 1, 1).square()
    return score_fn


# -- a tiny procedural shape set (ellipsoids, tori, boxes), for a model whose field makes sense ---------------
def toy_shapes(batch: int, num_points: int, *, generator: torch.Generator, dim: int = 3) -> torch.Tensor:
    """``(batch, num_points, 3)`` surface points of random ellipsoids, tori and box shells, randomly rotated,
    scaled into ``[-1, 1]``. Not area-uniform (a benchmark's stand-in for data, not a dataset)."""
    if dim != 3:
        raise ValueError("toy_shapes is 3D only")
    out = []
    for _ in range(batch):
        kind = int(torch.randint(3, (1,), generator=generator))
        u = torch.rand(num_points, 2, generator=generator)
        if kind == 0:                                                    # ellipsoid
            p = F.normalize(torch.randn(num_points, 3, generator=generator), dim=-1)
            p = p * (0.4 + 0.6 * torch.rand(3, generator=generator))
        elif kind == 1:                                                  # torus
            r0, r1 = 0.55 + 0.2 * torch.rand(1, generator=generator), 0.12 + 0.15 * torch.rand(1, generator=generator)
            a, b = 2 * math.pi * u[:, 0], 2 * math.pi * u[:, 1]
            p = torch.stack([(r0 + r1 * b.cos()) * a.cos(), (r0 + r1 * b.cos()) * a.sin(), r1 * b.sin()], -1)
        else:                                                            # box shell
            half = 0.3 + 0.6 * torch.rand(3, generator=generator)
            p = (torch.rand(num_points, 3, generator=generator) * 2 - 1)
            face = torch.randint(3, (num_points,), generator=generator)
            sign = torch.randint(2, (num_points,), generator=generator) * 2 - 1
            p[torch.arange(num_points), face] = sign.float()
            p = p * half
        q, _ = torch.linalg.qr(torch.randn(3, 3, generator=generator))
        p = p @ q
        p = p / p.abs().max()
        out.append(p)
    return torch.stack(out)


def naive_decoder(dec, x: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The official dataflow (materialised ``c``, every linear of ``c`` per point) in gfcore's channels-last layout
    (``nn.Linear`` on ``(B, M, C)``): separates the layout's cost from the per-shape condition's saving."""
    from gfcore.models.decoder import reference_forward

    return reference_forward(dec, x, sigma, z)
