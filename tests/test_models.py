"""gfcore.models: PointNetEncoder, ScoreDecoder, ShapeGF."""
import pytest
import torch
from torch import nn

from gfcore.models import PointNetEncoder, ScoreDecoder, ShapeGF, ToyScoreNet
from gfcore.models.decoder import reference_forward as reference_decoder
from gfcore.utils import fast_dtype


def nparams(module):
    return sum(p.numel() for p in module.parameters())


def perturb_(module, scale=0.05, seed=0):
    """Make every parameter non-trivial (zero-initialised layers included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


# -- parameter counts (reference.md: encoder ~0.37M, add-24 ~4.04M, cbn-16 ~4.39M) -----------------------------
def test_parameter_counts_match_official():
    assert nparams(PointNetEncoder(3, 128)) == pytest.approx(0.37e6, rel=0.02)
    add = nparams(ScoreDecoder(3, 128, 256, 24, "add"))
    cbn = nparams(ScoreDecoder(3, 128, 256, 16, "cbn"))
    assert add == pytest.approx(4.04e6, rel=0.01)
    assert cbn == pytest.approx(4.39e6, rel=0.01)
    assert (add, cbn) == (4_035_075, 4_387_331)  # the layout documented in ScoreDecoder


# -- encoder --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("train", [False, True])
def test_encoder_shape_and_permutation_invariance(dim, train):
    torch.manual_seed(0)
    enc = PointNetEncoder(in_dim=dim, zdim=16).double().train(train)
    perturb_(enc)
    pts = torch.randn(3, 50, dim, dtype=torch.float64)
    perm = torch.randperm(50)
    z1 = enc(pts)
    z2 = enc(pts[:, perm])
    assert z1.shape == (3, 16)
    torch.testing.assert_close(z1, z2, atol=1e-10, rtol=1e-10)  # only summation order differs
    assert not torch.allclose(z1[0], z1[1])


def test_encoder_any_num_points():
    enc = PointNetEncoder(in_dim=3, zdim=8).eval()
    for n in (1, 7, 300):
        assert enc(torch.randn(2, n, 3)).shape == (2, 8)


def test_encoder_rejects_bad_input():
    enc = PointNetEncoder(in_dim=3, zdim=8)
    with pytest.raises(ValueError, match="points"):
        enc(torch.randn(2, 10, 2))
    with pytest.raises(ValueError, match="points"):
        enc(torch.randn(10, 3))
    bad = torch.randn(2, 10, 3)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        enc(bad)
    with pytest.raises(ValueError, match="batch"):
        enc.train()(torch.randn(1, 10, 3))


# -- decoder --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["add", "cbn"])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("train", [True, False])
def test_decoder_matches_naive_reference(block, dim, train):
    torch.manual_seed(1)
    dec = ScoreDecoder(dim=dim, zdim=8, hidden=32, n_blocks=3, block=block).double()
    perturb_(dec)
    dec.train(train)
    x = torch.randn(4, 20, dim, dtype=torch.float64)
    sigma = torch.tensor([1.0, 0.3, 0.05, 0.01], dtype=torch.float64)
    z = torch.randn(4, 8, dtype=torch.float64)
    out = dec(x, sigma, z)
    assert out.shape == (4, 20, dim)
    torch.testing.assert_close(out, reference_decoder(dec, x, sigma, z))


def test_decoder_gradients_match_reference():
    torch.manual_seed(2)
    dec = ScoreDecoder(dim=3, zdim=4, hidden=16, n_blocks=2, block="cbn").double()
    perturb_(dec)
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    sigma = torch.tensor([0.5, 0.1], dtype=torch.float64)
    z = torch.randn(2, 4, dtype=torch.float64)
    grads = []
    for fn in (dec, lambda *a: reference_decoder(dec, *a)):
        dec.zero_grad()
        fn(x, sigma, z).square().sum().backward()
        grads.append([p.grad.clone() for p in dec.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_fresh_add_blocks_are_identity_residual():
    """W1 = 0: the BN-ReLU-W0 branch contributes nothing, so W0 can be anything and gets no gradient."""
    torch.manual_seed(3)
    dec = ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=4, block="add").eval()
    x, sigma, z = torch.randn(2, 30, 3), torch.tensor([0.5, 0.1]), torch.randn(2, 8)
    out = dec(x, sigma, z)
    out.square().sum().backward()
    for blk in dec.blocks:
        assert torch.count_nonzero(blk.fc1.weight) == 0
        assert torch.count_nonzero(blk.fc0.weight.grad) == 0
        assert torch.count_nonzero(blk.fc1.weight.grad) > 0
    with torch.no_grad():
        for blk in dec.blocks:
            blk.fc0.weight.normal_()
    torch.testing.assert_close(dec(x, sigma, z), out)


def test_cbn_uses_z_and_sigma():
    torch.manual_seed(4)
    dec = ScoreDecoder(dim=2, zdim=8, hidden=32, n_blocks=2, block="cbn").eval()
    x, sigma = torch.randn(1, 40, 2), torch.tensor([0.2])
    z1, z2 = torch.randn(1, 8), torch.randn(1, 8)
    # fresh: gamma = 1, beta = 0 whatever c is
    for norm in [dec.blocks[0].norm0, dec.out_norm]:
        assert torch.count_nonzero(norm.gamma.weight) == 0 and torch.all(norm.gamma.bias == 1)
    # after two optimizer steps the CBN layers read c = [x, z, sigma]
    opt = torch.optim.SGD(dec.parameters(), lr=0.1)
    for _ in range(2):
        dec.train()
        opt.zero_grad()
        dec(torch.randn(4, 40, 2), torch.rand(4) + 0.1, torch.randn(4, 8)).square().mean().backward()
        opt.step()
    dec.eval()
    assert torch.count_nonzero(dec.blocks[0].norm0.gamma.weight) > 0
    assert not torch.allclose(dec(x, sigma, z1), dec(x, sigma, z2))
    assert not torch.allclose(dec(x, sigma, z1), dec(x, sigma * 2, z1))


def test_decoder_rejects_bad_shapes():
    dec = ScoreDecoder(dim=3, zdim=8, hidden=16, n_blocks=1)
    x, sigma, z = torch.randn(2, 5, 3), torch.tensor([0.1, 0.2]), torch.randn(2, 8)
    with pytest.raises(ValueError, match="x must be"):
        dec(torch.randn(2, 5, 2), sigma, z)
    with pytest.raises(ValueError, match="z must be"):
        dec(x, sigma, torch.randn(2, 7))
    with pytest.raises(ValueError, match="z has 3 codes"):
        dec(x, sigma, torch.randn(3, 8))
    with pytest.raises(ValueError, match="sigma"):
        dec(x, torch.tensor([0.1, 0.2, 0.3]), z)


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_decoder_bf16_autocast_runs(block):
    dec = ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=2, block=block)
    perturb_(dec)
    x, sigma, z = torch.randn(2, 64, 3), torch.tensor([0.5, 0.1]), torch.randn(2, 8)
    ref = dec(x, sigma, z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dec(x, sigma, z)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.1 * ref.abs().max() + 0.05


# -- ShapeGF --------------------------------------------------------------------------------------------------
def small(dim=2, block="add"):
    torch.manual_seed(5)
    return ShapeGF(dim=dim, zdim=8, hidden=32, n_blocks=2, block=block)


def test_shapegf_config_rebuilds():
    m = small(block="cbn")
    assert m.config == {"dim": 2, "zdim": 8, "hidden": 32, "n_blocks": 2, "block": "cbn",
                        "preconditioning": "none", "norm": "batch"}
    m2 = ShapeGF.from_config(m.config)
    m2.load_state_dict(m.state_dict())
    with pytest.raises(ValueError, match="unknown model config keys"):
        ShapeGF.from_config({**m.config, "widht": 3})


def test_score_is_decoder_over_sigma_squared():
    m = small(dim=3)
    perturb_(m)
    m.eval()
    x, sigma, z = torch.randn(2, 10, 3), torch.tensor([0.5, 0.02]), torch.randn(2, 8)
    torch.testing.assert_close(m.score(x, sigma, z), m.decoder(x, sigma, z) / sigma.view(2, 1, 1) ** 2)
    torch.testing.assert_close(m.score_fn(z)(x, sigma), m.score(x, sigma, z))


def test_loss_is_the_official_normalisation():
    """With weighting "shapegf": 0.5 / sigma * mean_n |decoder(x~) + sigma eps|^2 (sum over coordinates)."""
    m = small(dim=2).double()
    perturb_(m)
    pts = torch.randn(3, 16, 2, dtype=torch.float64)
    sigmas = torch.tensor([1.0, 0.1, 0.01], dtype=torch.float64)
    loss, sig = m.loss(pts, sigmas, generator=torch.Generator().manual_seed(0), return_sigma=True)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(3, (3,), generator=g)
    eps = torch.randn(pts.shape, generator=g, dtype=torch.float64)
    s = sigmas[idx]
    torch.testing.assert_close(sig, s)
    z = m.encode(pts)
    pred = m.decoder(pts + s.view(3, 1, 1) * eps, s, z)
    expect = 0.5 / s * (pred + s.view(3, 1, 1) * eps).square().sum(-1).mean(-1)
    torch.testing.assert_close(loss, expect)
    assert loss.shape == (3,)


@pytest.mark.parametrize("num_points", [7, 300])
def test_decode_any_num_points_and_restores_mode(num_points):
    m = small(dim=2).train()
    z = torch.randn(3, 8)
    out = m.decode(z, num_points, steps_per_sigma=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, num_points, 2)
    assert m.training
    pts = torch.randn(3, 50, 2)
    rec, traj = m.reconstruct(pts, num_points, steps_per_sigma=1, return_trajectory=True,
                              sigmas=torch.tensor([1.0, 0.1]))
    assert rec.shape == (3, num_points, 2) and traj.shape == (3, 3, num_points, 2)
    assert m.training
    m.eval()
    m.decode(z, 5, steps_per_sigma=1)
    assert not m.training


def test_decode_is_reproducible_with_generator():
    m = small(dim=3)
    z = torch.randn(2, 8)
    a = m.decode(z, 20, steps_per_sigma=1, generator=torch.Generator().manual_seed(3))
    b = m.decode(z, 20, steps_per_sigma=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_shapegf_rejects_bad_input():
    m = small(dim=3)
    with pytest.raises(ValueError, match="points"):
        m.encode(torch.randn(2, 10, 2))                       # wrong dim
    nan = torch.randn(2, 10, 3)
    nan[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m.encode(nan)
    with pytest.raises(ValueError, match="NaN"):
        m.loss(nan, torch.tensor([0.1]))
    with pytest.raises(ValueError, match="zdim"):
        m.decode(torch.randn(2, 5), 10)                       # wrong zdim
    z_nan = torch.randn(2, 8)
    z_nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="z contains"):
        m.decode(z_nan, 10)
    with pytest.raises(ValueError, match="z has 3 codes"):
        m.score(torch.randn(2, 10, 3), torch.tensor([0.1, 0.1]), torch.randn(3, 8))   # z batch mismatch
    with pytest.raises(ValueError, match="num_points"):
        m.decode(torch.randn(2, 8), 0)


def test_models_exports():
    import gfcore.models as gm

    assert set(gm.__all__) >= {"PointNetEncoder", "ScoreDecoder", "ShapeGF", "ToyScoreNet"}
    assert isinstance(ToyScoreNet(), nn.Module)


def test_decode_fast_path_matches_plain_score_fn():
    """decode(fast=True) samples with the folded decoder: the same points as the plain field, same seed."""
    model = ShapeGF(dim=2, zdim=8, hidden=32, n_blocks=2, block="cbn")
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.03, generator=gen)
    model.train()
    z = torch.randn(3, 8, generator=gen)
    fast = model.decode(z, 64, generator=torch.Generator().manual_seed(0), steps_per_sigma=3, dtype=torch.float32)
    plain = model.decode(z, 64, generator=torch.Generator().manual_seed(0), steps_per_sigma=3, fast=False)
    assert model.training
    assert torch.allclose(fast, plain, atol=1e-4), (fast - plain).abs().max()
    # the default compute dtype is the device's fast one (bfloat16 on CPUs with bf16 units): close, not equal
    auto = model.decode(z, 64, generator=torch.Generator().manual_seed(0), steps_per_sigma=3)
    bf16 = model.decode(z, 64, generator=torch.Generator().manual_seed(0), steps_per_sigma=3, dtype=torch.bfloat16)
    expected = bf16 if fast_dtype("cpu") == torch.bfloat16 else fast
    torch.testing.assert_close(auto, expected)
    assert (bf16 - plain).abs().max() < 0.05 and not torch.equal(bf16, fast)


def test_fast_dtype_follows_the_cpu_flags(monkeypatch):
    import gfcore.utils

    monkeypatch.setattr(gfcore.utils, "cpu_has_fast_bf16", lambda: False)
    assert gfcore.utils.fast_dtype("cpu") == torch.float32
    monkeypatch.setattr(gfcore.utils, "cpu_has_fast_bf16", lambda: True)
    assert gfcore.utils.fast_dtype("cpu") == torch.bfloat16


def test_fast_dtype_on_cuda_follows_the_card(monkeypatch):
    """bfloat16 only on cards with bfloat16 tensor cores (compute capability >= 8.0); a T4 (7.5) computes in
    float32, where emulated bfloat16 would be slower. Other devices (meta) get float32."""
    import gfcore.utils

    seen = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: seen.append(device) or (7, 5))
    assert gfcore.utils.fast_dtype("cuda:1") == torch.float32
    assert seen == [torch.device("cuda:1")]                 # the card asked about, not the current one
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert gfcore.utils.fast_dtype("cuda") == torch.bfloat16
    assert gfcore.utils.fast_dtype("meta") == torch.float32


# -- preconditioning ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["add", "cbn"])
def test_edm_preconditioning_is_the_official_network_rescaled(block):
    """``D_edm(x, sigma, z) = sigma * D_none(x / sqrt(sigma^2 + 0.25), 1.5 + log10(sigma) / 2, z)``, same weights."""
    torch.manual_seed(3)
    edm = ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=2, block=block, preconditioning="edm").double()
    perturb_(edm)
    plain = ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=2, block=block).double()
    plain.load_state_dict(edm.state_dict())
    edm.eval(), plain.eval()
    x = torch.randn(4, 20, 3, dtype=torch.float64)
    sigma = torch.tensor([1.0, 0.3, 0.05, 0.01], dtype=torch.float64)
    z = torch.randn(4, 8, dtype=torch.float64)
    c_in = (sigma.square() + 0.25).rsqrt().view(4, 1, 1)
    want = sigma.view(4, 1, 1) * plain(x * c_in, 1.5 + 0.5 * torch.log10(sigma), z)
    torch.testing.assert_close(edm(x, sigma, z), want)
    torch.testing.assert_close(reference_decoder(edm, x, sigma, z), want)


def test_edm_loss_is_unit_scale_noise_regression():
    """With "edm" and NCSN weighting the DSM loss is ``0.5 * mean_n |F + eps|^2``: a zero network scores 1.5 in 3D
    at every level (the zero-output baseline), whatever sigma."""
    model = ShapeGF(dim=3, zdim=8, hidden=16, n_blocks=1, preconditioning="edm")
    torch.nn.init.zeros_(model.decoder.out.weight)
    torch.nn.init.zeros_(model.decoder.out.bias)
    pts = torch.rand(8, 4096, 3)
    for sigma in (1.0, 0.01):
        loss = model.loss(pts, torch.tensor([sigma]), weighting="ncsn", generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(loss, torch.full((8,), 1.5), rtol=0.05, atol=0)


def test_unknown_preconditioning_rejected():
    with pytest.raises(ValueError, match="preconditioning"):
        ShapeGF(dim=2, zdim=4, hidden=8, n_blocks=1, preconditioning="karras")
    with pytest.raises(ValueError, match="unknown model config keys"):
        ShapeGF.from_config({"dim": 2, "precond": "edm"})
    assert ShapeGF.from_config({"dim": 2, "zdim": 4, "hidden": 8, "n_blocks": 1}).config["preconditioning"] == "none"


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_norm_none_output_does_not_depend_on_the_batch(block):
    """Without batch norm a shape's field is the same alone, in a batch, in train or eval mode; with it, not."""
    torch.manual_seed(5)
    x = torch.randn(4, 30, 3)
    sigma = torch.tensor([1.0, 0.3, 0.05, 0.01])
    z = torch.randn(4, 8)
    for norm, independent in (("none", True), ("batch", False)):
        dec = ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=2, block=block, norm=norm, preconditioning="edm")
        perturb_(dec)
        dec.train()
        with torch.no_grad():
            together = dec(x, sigma, z)[:1]
            alone = dec(x[:1], sigma[:1], z[:1])
            dec.eval()
            evaluated = dec(x[:1], sigma[:1], z[:1])
        same = torch.allclose(together, alone, atol=1e-5) and torch.allclose(alone, evaluated, atol=1e-5)
        assert same == independent, norm
    assert not any(isinstance(m, nn.BatchNorm1d) for m in
                   ScoreDecoder(dim=3, zdim=8, hidden=32, n_blocks=2, block=block, norm="none").modules())
