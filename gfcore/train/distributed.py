"""Where training runs: device resolution, mixed precision, and the process group under ``torchrun``.

Under ``torchrun`` (``WORLD_SIZE > 1``) every process joins one group (NCCL on GPUs, gloo on CPUs), takes the
device of its ``LOCAL_RANK`` and an equal share of every step's batch; only rank 0 writes files.

Taught in chapter 5 (The full 3D model) and chapter 10 (training on several GPUs).
"""
from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist

from gfcore import _checks
from gfcore.utils import cpu_has_fast_bf16, fast_dtype  # noqa: F401  (cpu_has_fast_bf16 kept importable here)

AMP_MODES = ("auto", "bf16", "off")


def autocast_dtype(device, amp: str) -> torch.dtype | None:
    """The ``torch.autocast`` dtype of the training step, or ``None`` for plain float32.

    ``"off"``: float32. ``"bf16"``: bfloat16 autocast on any device. ``"auto"``: bfloat16 on CUDA, and on a CPU
    whose instructions multiply bfloat16 natively (:func:`cpu_has_fast_bf16`: AVX512-BF16 or AMX), where it is
    faster than float32 and trains to the same loss; float32 on other CPUs. Parameters, optimizer state and the
    loss reduction stay float32 in every case (autocast, not a bfloat16 model).

    Args:
        device: the training device (``torch.device`` or a string).
        amp: one of :data:`AMP_MODES`.

    Returns:
        ``torch.bfloat16`` or ``None``.

    Raises:
        ValueError: unknown ``amp``.

    Taught in chapter 5 (The full 3D model).
    """
    _checks.choice("amp", amp, AMP_MODES)
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if fast_dtype(device) == torch.bfloat16 else None


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; ``"cuda"`` -> this process's GPU (``cuda:<local_rank>``).

    Raises:
        ValueError: a CUDA device asked for where CUDA is not available, or one this machine does not have (a
            ``LOCAL_RANK`` or index beyond ``torch.cuda.device_count()``).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r} but CUDA is not available")
        device = torch.device(name if ":" in name else f"cuda:{local_rank}")
        count = torch.cuda.device_count()
        if device.index >= count:
            source = f"device={name!r}" if ":" in name else f"LOCAL_RANK={local_rank}"
            raise ValueError(f"{source} asks for {device}, but this machine has {count} CUDA device(s); start "
                             f"at most {count} processes per machine (torchrun --nproc_per_node={count})")
        return device
    return torch.device("cpu")


@contextlib.contextmanager
def tf32(enabled: bool):
    """Let CUDA matrix products and convolutions use TF32 inside the block when ``enabled`` (nothing otherwise);
    the previous settings are restored on the way out, so code that runs afterwards (a notebook's float32
    metrics) is not silently computed in TF32."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if enabled:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@contextlib.contextmanager
def process_group(device_name: str):
    """Yield ``(rank, world, device)``; under ``torchrun`` join the process group (and leave it afterwards when
    this call created it). A single process yields ``(0, 1, device)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_name, int(os.environ.get("LOCAL_RANK", "0")))
    created = False
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            created = True
        rank, world = dist.get_rank(), dist.get_world_size()
    try:
        yield rank, world, device
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: int, device: torch.device) -> torch.nn.Module:
    """``model`` itself in one process, ``DistributedDataParallel(model)`` in several."""
    if world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce(*tensors: torch.Tensor, world: int) -> None:
    """Sum each tensor over the processes, in place (nothing in one process)."""
    if world > 1:
        for t in tensors:
            dist.all_reduce(t)


def all_reduce_min(*tensors: torch.Tensor, world: int) -> None:
    """The element-wise minimum of each tensor over the processes, in place (nothing in one process)."""
    if world > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.MIN)


def gather(obj, world: int) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in one process)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def barrier(world: int) -> None:
    """Wait for every process (nothing in one process)."""
    if world > 1:
        dist.barrier()
