"""gfcore.models.fold: the folded decoder computes the decoder's eval-mode function, faster."""
import copy

import pytest
import torch
from torch import nn

from gfcore.models import ScoreDecoder, ShapeGF
from gfcore.models.fold import FoldedDecoder, fast_score_fn, fold_batchnorm
from gfcore.sampling import annealed_langevin
from gfcore.schedule import geometric_sigmas


def trained_looking(dec, seed=0, scale=0.1):
    """Perturb every parameter (zero-initialised W1 and CBN gamma/beta weights included) and every batch-norm
    running statistic, so that a fold that forgot a term would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in dec.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in dec.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(0.5 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.3 + 3 * torch.rand(m.running_var.shape, generator=g))
    return dec.eval()


def make(block, dim, seed=0, n_blocks=3):
    torch.manual_seed(seed)
    return trained_looking(ScoreDecoder(dim=dim, zdim=8, hidden=32, n_blocks=n_blocks, block=block), seed)


def inputs(dim, batch=3, m=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, m, dim, generator=g), 0.05 + torch.rand(batch, generator=g),
            torch.randn(batch, 8, generator=g))


@pytest.mark.parametrize("block", ["add", "cbn"])
@pytest.mark.parametrize("dim", [2, 3])
def test_folded_equals_decoder(block, dim):
    dec = make(block, dim)
    x, sigma, z = inputs(dim)
    with torch.no_grad():
        ref = dec(x, sigma, z)
        out = fold_batchnorm(dec)(x, sigma, z)
    assert ref.abs().max() > 0.5  # the test is meaningful: a non-trivial field
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_folded_equals_decoder_float64_tightly(block):
    """The fold is exact algebra: in float64 the two agree to ~1e-12 (only rounding differs)."""
    dec = make(block, 3, seed=2, n_blocks=4).double()
    x, sigma, z = (t.double() for t in inputs(3, seed=3))
    f = fold_batchnorm(dec)
    assert f.w0t.dtype == torch.float64
    with torch.no_grad():
        out, ref = f(x, sigma, z), dec(x, sigma, z)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_original_not_modified(block):
    dec = make(block, 3).train()  # even in train mode: the fold reads running statistics only
    before = copy.deepcopy(dec.state_dict())
    f = fold_batchnorm(dec)
    assert dec.training and not f.training
    for k, v in dec.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(True for _ in f.parameters())  # inference copy: buffers only
    with pytest.raises(RuntimeError, match="inference copy"):
        f.train()


def test_fold_affine_free_and_affine_bn():
    """Both kinds of batch norm: "add" uses affine BN, "cbn" affine-free BN; an affine BN set to (w, b) folds too."""
    dec = make("add", 3)
    with torch.no_grad():
        dec.blocks[0].bn0.weight.fill_(-0.7)   # a negative scale must survive the ReLU ordering
    x, sigma, z = inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(dec)(x, sigma, z), dec(x, sigma, z), rtol=1e-5, atol=1e-5)


def test_fold_rejects_bn_without_running_stats():
    dec = make("add", 3)
    dec.blocks[1].bn1 = nn.BatchNorm1d(32, track_running_stats=False)
    with pytest.raises(ValueError, match="running statistics"):
        fold_batchnorm(dec)
    with pytest.raises(TypeError):
        fold_batchnorm(nn.Linear(3, 3))


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_precompute_once_many_points(block):
    """Per-shape terms computed once serve any number of points; scalar sigma broadcasts."""
    dec = make(block, 3)
    f = fold_batchnorm(dec)
    _, _, z = inputs(3)
    t = f.precompute(z, 0.3)
    for m in (1, 17, 64):
        x = torch.randn(3, m, 3)
        with torch.no_grad():
            torch.testing.assert_close(f.run(x, t), dec(x, torch.full((3,), 0.3), z), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_fast_score_fn_matches_model_score_and_sampler(block):
    torch.manual_seed(0)
    model = ShapeGF(dim=3, zdim=8, hidden=32, n_blocks=3, block=block)
    trained_looking(model.decoder)
    model.eval()
    _, _, z = inputs(3)
    x = torch.randn(3, 40, 3)
    fast = fast_score_fn(model, z)
    assert isinstance(fast.folded, FoldedDecoder)
    with torch.no_grad():
        for s in (torch.full((3,), 0.5), torch.tensor([0.01, 0.1, 1.0])):
            ref = model.score(x, s, z)   # up to |score| ~ 1e4 at sigma = 0.01: compare relative to the scale
            torch.testing.assert_close(fast(x, s), ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    # the whole sampler, same seed: same points (float32 rounding only)
    sig = geometric_sigmas(1.0, 0.05, 3)
    x0 = torch.rand(3, 40, 3) * 3 - 1.5
    kw = {"steps_per_sigma": 3, "step_size": 5e-4}   # a small step: a random field would diverge at full step
    a = annealed_langevin(model.score_fn(z), x0, sig, generator=torch.Generator().manual_seed(4), **kw)
    b = annealed_langevin(fast, x0, sig, generator=torch.Generator().manual_seed(4), **kw)
    assert (a - x0).abs().max() > 0.05
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_fast_score_fn_cache_follows_sigma():
    """The per-level cache must not serve a stale sigma (new tensor, or the same tensor changed in place)."""
    torch.manual_seed(0)
    model = ShapeGF(dim=2, zdim=8, hidden=32, n_blocks=2, block="cbn")
    trained_looking(model.decoder)
    model.eval()
    _, _, z = inputs(2)
    fast = fast_score_fn(model, z)
    x = torch.randn(3, 20, 2)
    s = torch.full((3,), 0.2)
    with torch.no_grad():
        fast(x, s)
        s.fill_(0.7)
        torch.testing.assert_close(fast(x, s), model.score(x, s, z), rtol=1e-5, atol=1e-4)
        s2 = torch.full((3,), 0.05)
        ref = model.score(x, s2, z)
        torch.testing.assert_close(fast(x, s2), ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_bfloat16_close(block):
    """bf16 compute (the CUDA fast path's dtype; runs on CPU too): close to float32, float32 output."""
    dec = make(block, 3, n_blocks=4)
    x, sigma, z = inputs(3, m=200)
    f = fold_batchnorm(dec)
    with torch.no_grad():
        ref = dec(x, sigma, z)
        out = f.run(x, f.precompute(z, sigma, dtype=torch.bfloat16))
    assert out.dtype == torch.float32
    rel = (out - ref).norm() / ref.norm()
    assert rel < 0.03, rel


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_folded_equals_decoder_preconditioned(block):
    torch.manual_seed(4)
    dec = trained_looking(ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=3, block=block,
                                       preconditioning="edm"), 4).double()
    x, sigma, z = (t.double() for t in inputs(3, seed=5))
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(dec)(x, sigma, z), dec(x, sigma, z), rtol=0, atol=1e-12)


def test_fast_score_fn_cache_is_keyed_on_sigma_values():
    """A sampler that allocates a new sigma tensor at every step, or reuses one tensor across levels, gets the
    terms of the values it passes (no contract on tensor identity)."""
    torch.manual_seed(0)
    model = ShapeGF(dim=3, zdim=8, hidden=32, n_blocks=2, block="add", preconditioning="edm")
    trained_looking(model.decoder)
    model.eval()
    _, _, z = inputs(3)
    fast = fast_score_fn(model, z)
    x = torch.randn(3, 20, 3)
    shared = torch.empty(3)
    with torch.no_grad():
        for level in (1.0, 0.3, 0.3, 0.02):
            fresh = torch.full((3,), level)                 # a new tensor every call
            shared.fill_(level)                             # the same tensor, new values
            ref = model.score(x, fresh, z)
            for s in (fresh, shared, level):
                torch.testing.assert_close(fast(x, s), ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_folded_equals_decoder_without_norm(block):
    torch.manual_seed(6)
    dec = trained_looking(ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=3, block=block, norm="none",
                                       preconditioning="edm"), 6).double()
    x, sigma, z = (t.double() for t in inputs(3, seed=7))
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(dec)(x, sigma, z), dec(x, sigma, z), rtol=0, atol=1e-12)
