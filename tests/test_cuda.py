"""GPU against CPU: the same model computes the same thing on an accelerator (issue 15).

Skipped without CUDA; ``make gpu-check`` runs them on a GPU. ``scripts/gpu_check.py --dry-run`` runs them with
``GF_CHECK_DEVICE=cpu`` (the CPU standing in for the accelerator: the comparisons are then trivially close, but the
code of every test runs, so it cannot rot on machines without a GPU).
"""
import itertools
import os

import pytest
import torch
from torch import nn
from train_helpers import Circles, tiny

from gfcore.models import ShapeGF
from gfcore.models.decoder import reference_forward
from gfcore.models.fold import fold_batchnorm
from gfcore.train import RunDir, train_autoencoder

DEVICE = os.environ.get("GF_CHECK_DEVICE", "cuda")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                 reason="needs CUDA (make gpu-check runs these on a GPU)")]
VARIANTS = list(itertools.product(["add", "cbn"], ["batch", "none"], ["none", "edm"]))


def trained_looking(model: ShapeGF, seed: int = 0, scale: float = 0.1) -> ShapeGF:
    """Perturb every parameter and batch-norm statistic, so a term lost on one device would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(0.5 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.3 + 3 * torch.rand(m.running_var.shape, generator=g))
    return model.eval()


def cpu_model(block, norm, preconditioning, seed=0, scale=0.1):
    torch.manual_seed(seed)
    return trained_looking(ShapeGF(dim=3, zdim=16, hidden=64, n_blocks=3, block=block, norm=norm,
                                   preconditioning=preconditioning), seed, scale)


def field_inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(3, 200, 3, generator=g), 0.02 + torch.rand(3, generator=g), torch.randn(3, 16, generator=g))


@pytest.mark.parametrize("block,norm,preconditioning", VARIANTS)
def test_folded_field_on_the_device_equals_the_reference_on_the_cpu(block, norm, preconditioning):
    model = cpu_model(block, norm, preconditioning)
    x, sigma, z = field_inputs()
    with torch.no_grad():
        ref = reference_forward(model.decoder, x, sigma, z)
        on_device = model.to(DEVICE)
        folded = fold_batchnorm(on_device.decoder)
        out = folded(x.to(DEVICE), sigma.to(DEVICE), z.to(DEVICE)).cpu()
        plain = on_device.decoder(x.to(DEVICE), sigma.to(DEVICE), z.to(DEVICE)).cpu()
    scale = float(ref.abs().max())
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * scale)
    torch.testing.assert_close(plain, ref, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_bf16_and_fp32_decode_on_the_device(block):
    """The fast path's bf16 field is within bf16 rounding of the fp32 field; fp32 decode through the fold follows
    the plain decoder's samples (same noise); bf16 decode runs and returns float32 points on the device."""
    model = cpu_model(block, "batch", "edm", scale=0.02).to(DEVICE)      # a mild field: the sampler stays put
    x, sigma, z = (t.to(DEVICE) for t in field_inputs())
    folded = fold_batchnorm(model.decoder)
    with torch.no_grad():
        ref = folded.run(x, folded.precompute(z, sigma))
        low = folded.run(x, folded.precompute(z, sigma, dtype=torch.bfloat16))
    assert low.dtype == torch.float32
    assert float((low - ref).norm() / ref.norm()) < 0.03

    def decode(**kw):
        return model.decode(z, 256, steps_per_sigma=3, generator=torch.Generator(device=DEVICE).manual_seed(0),
                            **kw)

    fp32, plain, bf16 = decode(dtype=torch.float32), decode(fast=False), decode(dtype=torch.bfloat16)
    assert bf16.dtype == fp32.dtype == torch.float32 and bf16.device == fp32.device
    assert bool(torch.isfinite(bf16).all())
    assert (fp32 - plain).abs().max() < 1e-3


def test_a_training_step_on_the_device_equals_the_cpu():
    """One DSM step by hand on both devices, same weights, same noise: same loss and gradients (TF32 off)."""
    torch.manual_seed(3)
    model = ShapeGF(dim=3, zdim=16, hidden=64, n_blocks=3, block="cbn").train()
    g = torch.Generator().manual_seed(4)
    points = torch.randn(4, 128, 3, generator=g)
    sigma = torch.tensor([0.05, 0.1, 0.3, 1.0])
    eps = torch.randn(points.shape, generator=g)

    def step(m, device):
        m = m.to(device)
        m.zero_grad(set_to_none=True)
        p, s, e = points.to(device), sigma.to(device), eps.to(device)
        z = m.encode(p)
        pred = m.decoder(p + s.view(-1, 1, 1) * e, s, z)
        loss = (pred + s.view(-1, 1, 1) * e).square().sum(-1).mean()
        loss.backward()
        return loss.detach().cpu(), [q.grad.detach().cpu() for q in m.parameters()]

    import copy

    loss_cpu, grads_cpu = step(copy.deepcopy(model), "cpu")
    loss_dev, grads_dev = step(copy.deepcopy(model), DEVICE)
    torch.testing.assert_close(loss_dev, loss_cpu, rtol=1e-4, atol=1e-6)
    for a, b in zip(grads_dev, grads_cpu):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5 * max(1.0, float(b.abs().max())))


def test_training_and_resume_on_the_device(tmp_path):
    """amp: auto and the fused optimizer on the device; TF32 restored afterwards; a resumed run continues the
    uninterrupted one, with the optimizer state where torch keeps it."""
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    straight = train_autoencoder(tiny(max_steps=8, device=DEVICE, amp="auto"), train_set=Circles(),
                                 out_dir=tmp_path / "a", progress=False)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == flags
    def crash(record):
        if record["step"] == 5:                     # after the step-4 checkpoint (same run length: same schedule)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_autoencoder(tiny(max_steps=8, device=DEVICE, amp="auto", log_every=1), train_set=Circles(),
                          out_dir=tmp_path / "b", progress=False, callback=crash)
    resumed = train_autoencoder(tiny(max_steps=8, device=DEVICE, amp="auto"), train_set=Circles(),
                                out_dir=tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 8
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    ckpt = torch.load(RunDir(tmp_path / "b").last, weights_only=True, map_location="cpu")
    assert ckpt["step"] == 8
