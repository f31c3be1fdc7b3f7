"""gfcore.models.refine_codes: test-time refinement of the codes on the input points, the network frozen."""
import pytest
import torch

from gfcore.losses import dsm_loss
from gfcore.models import ShapeGF, refine_codes
from gfcore.schedule import geometric_sigmas


def model_and_clouds(seed=0):
    torch.manual_seed(seed)
    model = ShapeGF(dim=2, zdim=8, hidden=32, n_blocks=2, preconditioning="edm", norm="none")
    for p in model.decoder.parameters():        # a decoder that depends on z clearly (fresh blocks barely do)
        p.data.add_(0.1 * torch.randn_like(p))
    t = torch.linspace(0, 6.2832, 64)
    circle = torch.stack([t.cos(), t.sin()], -1)
    clouds = torch.stack([0.5 * circle, 0.8 * circle * torch.tensor([1.0, 0.4]), 0.3 * circle + 0.2])
    return model, clouds


def expected_loss(model, clouds, z, draws=64):
    """The DSM loss of the codes averaged over many fixed draws (the same draws for every z)."""
    gen = torch.Generator().manual_seed(123)
    sig = geometric_sigmas(1.0, 0.01, 10)
    with torch.no_grad():
        return sum(float(dsm_loss(lambda x, s: model.score(x, s, z), clouds, sig, weighting="ncsn",
                                  generator=gen).mean()) for _ in range(draws)) / draws


def test_refined_codes_fit_the_input_better_and_leave_the_network_alone():
    model, clouds = model_and_clouds()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        z0 = model.encode(clouds)
    model.train()
    seen = []
    z = refine_codes(model, clouds, steps=60, lr=5e-2, generator=torch.Generator().manual_seed(0),
                     callback=seen.append)
    assert z.shape == z0.shape and not z.requires_grad
    assert expected_loss(model, clouds, z) < 0.9 * expected_loss(model, clouds, z0)
    assert model.training                                          # the mode is restored
    assert all(p.grad is None for p in model.parameters())         # no gradient reached the network
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert [r["step"] for r in seen] == list(range(1, 61)) and seen[-1]["lr"] < 1e-3 * seen[0]["lr"] + 1e-6


def test_zero_steps_and_reproducibility():
    model, clouds = model_and_clouds()
    model.eval()
    with torch.no_grad():
        z0 = model.encode(clouds)
    torch.testing.assert_close(refine_codes(model, clouds, steps=0), z0)
    a = refine_codes(model, clouds, steps=5, generator=torch.Generator().manual_seed(1))
    b = refine_codes(model, clouds, z0, steps=5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, z0)


def test_reconstruct_with_refinement_decodes_the_refined_codes():
    model, clouds = model_and_clouds()
    gen = torch.Generator().manual_seed(3)
    out = model.reconstruct(clouds, 20, refine_steps=4, steps_per_sigma=1, generator=gen)
    gen = torch.Generator().manual_seed(3)
    z = refine_codes(model, clouds, steps=4, generator=gen)
    expected = model.decode(z, 20, steps_per_sigma=1, generator=gen)
    assert out.shape == (3, 20, 2)
    torch.testing.assert_close(out, expected)


def test_bad_input_raises():
    model, clouds = model_and_clouds()
    with pytest.raises(ValueError, match="z has 2 codes for 3 clouds"):
        refine_codes(model, clouds, torch.zeros(2, 8), steps=1)
    with pytest.raises(ValueError, match="lr"):
        refine_codes(model, clouds, steps=1, lr=0.0)
    with pytest.raises(ValueError, match="steps"):
        refine_codes(model, clouds, steps=-1)
    bad = clouds.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="points"):
        refine_codes(model, bad, steps=1)
