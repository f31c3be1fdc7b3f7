"""Device discipline without a GPU: the model paths run with modules and tensors on PyTorch's ``meta`` device.

A tensor on ``meta`` has a shape, a dtype and a device but no values, and an operation that mixes it with a CPU
tensor fails ("Expected all tensors to be on the same device"). So a path that runs here makes every tensor it
uses on the device of its inputs or its module: the property a CUDA reader needs, checked on a CPU-only machine
(issue 15: the fold built its constants on the CPU and failed on every GPU for 3 of the 4 decoder types).
"""
import itertools

import pytest
import torch

from gfcore import fields
from gfcore.metrics import chamfer_distance, emd, pairwise_cd
from gfcore.models import LatentCritic, LatentGenerator, ShapeGF
from gfcore.models.decoder import reference_forward
from gfcore.models.fold import fast_score_fn, fold_batchnorm
from gfcore.schedule import geometric_sigmas
from gfcore.train.gan import gradient_penalty

META = torch.device("meta")
VARIANTS = list(itertools.product(["add", "cbn"], ["batch", "none"], ["none", "edm"]))


def meta_model(block, norm, preconditioning, dim=3):
    model = ShapeGF(dim=dim, zdim=16, hidden=32, n_blocks=2, block=block, norm=norm, preconditioning=preconditioning)
    return model.to(META)


def on_meta(*tensors):
    for t in tensors:
        assert t.device == META, t.device


def test_the_variants_cover_every_decoder():
    assert len(VARIANTS) == 8


@pytest.mark.parametrize("block,norm,preconditioning", VARIANTS)
def test_training_loss_and_backward_on_meta(block, norm, preconditioning):
    model = meta_model(block, norm, preconditioning).train()
    points = torch.empty(4, 64, 3, device=META)
    loss = model.loss(points, geometric_sigmas(1.0, 0.01, 10, device=META))
    assert loss.shape == (4,)
    loss.mean().backward()
    on_meta(loss, *(p.grad for p in model.parameters()))


@pytest.mark.parametrize("block,norm,preconditioning", VARIANTS)
def test_fold_and_fields_on_meta(block, norm, preconditioning):
    """The fold's constants, the folded field, the reference field and the fast score callable stay on meta."""
    model = meta_model(block, norm, preconditioning).eval()
    folded = fold_batchnorm(model.decoder)
    on_meta(*folded.buffers())
    x, sigma, z = torch.empty(2, 50, 3, device=META), torch.empty(2, device=META), torch.empty(2, 16, device=META)
    with torch.no_grad():
        out = folded(x, sigma, z)
        ref = reference_forward(model.decoder, x, sigma, z)
        dec = model.decoder(x, sigma, z)
        terms = folded.precompute(z, sigma, dtype=torch.bfloat16, score=True)
        fast = fast_score_fn(model, z, folded=folded, dtype=torch.bfloat16)(x, sigma)
    assert out.shape == ref.shape == dec.shape == fast.shape == (2, 50, 3)
    assert fast.dtype == torch.float32
    on_meta(out, ref, dec, fast, *(t for t in terms.values() if t is not None))


@pytest.mark.parametrize("block,norm,preconditioning", VARIANTS)
def test_encode_decode_reconstruct_on_meta(block, norm, preconditioning):
    """The reader's calls: decode/reconstruct go through the fold (fast=True), with the default ladder."""
    model = meta_model(block, norm, preconditioning)
    points = torch.empty(2, 40, 3, device=META)
    z = model.encode(points)
    on_meta(z)
    for dtype in (torch.float32, torch.bfloat16):
        out = model.reconstruct(points, 30, steps_per_sigma=1, dtype=dtype)
        assert out.shape == (2, 30, 3)
        on_meta(out)
    out = model.decode(z, 20, steps_per_sigma=1, fast=False, prior="gaussian")
    on_meta(out)
    assert model.training, "decode restores the mode"


def test_latent_gan_networks_and_penalty_on_meta():
    gen, critic = LatentGenerator(zdim=16, noise_dim=8, hidden=(32,)).to(META), LatentCritic(16, hidden=(32,)).to(META)
    z = gen(torch.empty(5, 8, device=META))
    real = torch.empty(5, 16, device=META)
    score = critic(z)
    for kind in ("official", "r1", "wgan-gp"):
        penalty, grad_norm = gradient_penalty(critic, real, z.detach(), kind=kind)
        penalty.backward()
        on_meta(penalty, grad_norm, *(p.grad for p in critic.parameters() if p.grad is not None))
    on_meta(z, score)
    model = meta_model("add", "none", "none")
    shapes = model.sample(gen, 3, 25, steps_per_sigma=1)
    assert shapes.shape == (3, 25, 3)
    on_meta(shapes)


def test_metrics_and_closed_form_on_meta():
    a, b = torch.empty(3, 64, 3, device=META), torch.empty(3, 48, 3, device=META)
    on_meta(chamfer_distance(a, b), pairwise_cd(a, b[:2], batch_size=2))
    on_meta(emd(a, torch.empty(3, 64, 3, device=META), method="approxmatch"))
    on_meta(fields.smoothed_score(torch.empty(2, 10, 3, device=META), a[:2], 0.1))


def test_fast_score_fn_cache_on_an_accelerator_is_sync_free_and_correct(monkeypatch):
    """Off the CPU the per-level cache keys on the sigma tensor itself (no torch.equal, a host sync): the same
    tensor reuses the terms, an in-place change or a new tensor recomputes them."""
    model = meta_model("cbn", "batch", "edm").eval()
    z = torch.empty(2, 16, device=META)
    fast = fast_score_fn(model, z)
    calls = []
    real = fast.folded.precompute
    monkeypatch.setattr(fast.folded, "precompute", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(torch, "equal", lambda *a: pytest.fail("torch.equal syncs with the host"))
    x = torch.empty(2, 10, 3, device=META)
    s = torch.empty(2, device=META)
    fast(x, s)
    fast(x, s)
    assert len(calls) == 1
    s.fill_(0.3)                                        # the same tensor, new values
    fast(x, s)
    assert len(calls) == 2
    fast(x, torch.empty(2, device=META))                # a new tensor
    assert len(calls) == 3
