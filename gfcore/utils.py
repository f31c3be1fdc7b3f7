"""Device choice, seeding, and the fast compute dtype of a device."""
from __future__ import annotations

import random

import numpy as np
import torch


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU ``torch.Generator`` seeded with ``seed``.

    Results on the CPU are then reproducible run to run.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX tiles), so that bfloat16 pays off."""
    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def cuda_has_fast_bf16(device) -> bool:
    """Whether the CUDA device multiplies bfloat16 in its tensor cores (compute capability 8.0, Ampere, or newer);
    older cards such as the T4 (7.5) or the V100 (7.0) only emulate it, slower than float32."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def fast_dtype(device) -> torch.dtype:
    """The sampler's compute dtype on ``device``: bfloat16 on CUDA cards with bfloat16 tensor cores
    (:func:`cuda_has_fast_bf16`) and on CPUs that multiply it natively (:func:`cpu_has_fast_bf16`), where
    ``bench/sample.py`` measures it faster and as accurate as float32 (its samples' distance to float32's is far
    below the seed-to-seed noise floor); float32 elsewhere (a T4, a CPU with AVX2 only, any other device)."""
    device = torch.device(device)
    if device.type == "cuda" and cuda_has_fast_bf16(device):
        return torch.bfloat16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32
