"""gfcore.train.distributed: devices, mixed precision, and two processes under torchrun."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from train_helpers import tiny

from gfcore import utils
from gfcore.models import ShapeGF
from gfcore.train import distributed, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def test_autocast_dtype(monkeypatch):
    assert distributed.autocast_dtype("cpu", "off") is None
    assert distributed.autocast_dtype("cpu", "bf16") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))     # A100 and newer
    assert distributed.autocast_dtype("cuda", "auto") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))     # a T4: emulated bf16
    assert distributed.autocast_dtype("cuda", "auto") is None
    assert distributed.autocast_dtype("cuda", "bf16") is torch.bfloat16                       # asked for: honoured
    assert distributed.autocast_dtype("cuda", "off") is None
    monkeypatch.setattr(utils, "cpu_has_fast_bf16", lambda: True)      # the rule lives in utils.fast_dtype
    assert distributed.autocast_dtype("cpu", "auto") is torch.bfloat16
    monkeypatch.setattr(utils, "cpu_has_fast_bf16", lambda: False)
    assert distributed.autocast_dtype(torch.device("cpu"), "auto") is None
    with pytest.raises(ValueError, match="amp"):
        distributed.autocast_dtype("cpu", "fp16")


def test_cpu_has_fast_bf16_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert distributed.cpu_has_fast_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert distributed.cpu_has_fast_bf16() is True


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.resolve_device("auto") == torch.device("cpu")
    assert distributed.resolve_device("cpu", 3) == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        distributed.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.resolve_device("auto", 1) == torch.device("cuda:1")
    assert distributed.resolve_device("cuda:0", 1) == torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)      # a one-GPU machine, a second local process
    with pytest.raises(ValueError, match=r"LOCAL_RANK=1 asks for cuda:1, but this machine has 1 CUDA device"):
        distributed.resolve_device("auto", 1)
    with pytest.raises(ValueError, match=r"device='cuda:3'"):
        distributed.resolve_device("cuda:3")


def test_tf32_is_restored():
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        with distributed.tf32(True):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        with pytest.raises(KeyError), distributed.tf32(True):
            raise KeyError("a failing run restores them too")
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        with distributed.tf32(False):   # disabled: the settings are left as they are
            assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def test_single_process_helpers_are_identities():
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, 1, torch.device("cpu")) is model
    t = torch.ones(3)
    distributed.all_reduce(t, world=1)
    assert torch.equal(t, torch.ones(3)) and distributed.gather("x", 1) == ["x"]
    with distributed.process_group("cpu") as (rank, world, device):
        assert (rank, world, device) == (0, 1, torch.device("cpu"))


DDP_SCRIPT = textwrap.dedent('''
    import math, os, sys
    import torch
    sys.path.insert(0, {tests!r})
    from train_helpers import Circles, tiny
    from gfcore.train import train_autoencoder

    torch.set_num_threads(1)
    out = sys.argv[1]
    torch.manual_seed(0)
    res = train_autoencoder(tiny(max_steps=6, batch_size=8, ckpt_every=3), train_set=Circles(),
                            out_dir=out + "/run", progress=False)
    flat = torch.cat([p.detach().flatten() for p in res.model.parameters()])
    torch.save(flat, out + "/rank%s.pt" % os.environ["RANK"])
''')


DDP_FAILING_VALIDATION = textwrap.dedent('''
    import os, sys
    import torch
    sys.path.insert(0, {tests!r})
    from train_helpers import Circles, tiny
    from gfcore.train import loop, train_autoencoder

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in validation")

    loop._validate = broken
    torch.set_num_threads(1)
    train_autoencoder(tiny(max_steps=6, val_every=2), train_set=Circles(), progress=False)
''')


def test_ddp_validation_error_on_rank0_stops_every_rank(tmp_path):
    """Rank 0 alone validates; before the fix an error there left rank 1 waiting in the next all-reduce until the
    process group's timeout (30 minutes by default). Now every rank stops at once, rank 1 saying why."""
    script = tmp_path / "ddp_fail.py"
    script.write_text(DDP_FAILING_VALIDATION.format(tests=str(ROOT / "tests")))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "a bug in validation" in proc.stderr
    assert "step 2: validation failed on rank 0" in proc.stderr, proc.stderr[-3000:]


def test_ddp_two_processes(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(ROOT / "tests")))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt")
    w1 = torch.load(tmp_path / "rank1.pt")
    assert torch.equal(w0, w1)
    torch.manual_seed(100)
    init = torch.cat([p.detach().flatten() for p in ShapeGF(**tiny().model_kwargs()).parameters()])
    assert not torch.allclose(w0, init)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["step"] for s in lines] == [2, 4, 6]          # rank 0 alone wrote, once per record
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["rng"]["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2
