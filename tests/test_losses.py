"""gfcore.losses.dsm_loss against hand computations with the same random numbers."""
import pytest
import torch

from gfcore import fields, losses, schedule
from gfcore.models import ToyScoreNet


def _shapes(batch, n, d=2, seed=0, dtype=torch.float32):
    """Points on circles / ellipses of random radii: a batch of simple 2D (or 3D) shapes."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(batch, n, generator=g) * 2 * torch.pi
    radii = 0.5 + torch.rand(batch, 1, d, generator=g)
    circle = torch.stack([t.cos(), t.sin()] + [torch.zeros_like(t)] * (d - 2), -1)
    return (circle * radii).to(dtype)


def _clone(g):
    return torch.Generator().set_state(g.get_state())


def _hand_noise(g, batch, sigmas, shape, dtype):
    idx = torch.randint(len(sigmas), (batch,), generator=g)
    sigma = sigmas.to(dtype)[idx]
    eps = torch.randn(shape, generator=g, dtype=dtype)
    return sigma, eps


@pytest.mark.parametrize("weighting", ["ncsn", "shapegf"])
def test_matches_hand_computation(weighting):
    points = _shapes(5, 32, seed=1, dtype=torch.float64)
    sigmas = schedule.geometric_sigmas(1.0, 0.01, 10, dtype=torch.float64)
    net = ToyScoreNet(hidden=16, depth=1).double()
    g = torch.Generator().manual_seed(123)
    g_hand = _clone(g)
    got, drawn = losses.dsm_loss(net, points, sigmas, weighting=weighting, generator=g, return_sigma=True)
    sigma, eps = _hand_noise(g_hand, 5, sigmas, points.shape, torch.float64)
    torch.testing.assert_close(drawn, sigma)
    s = sigma.view(-1, 1, 1)
    pred = net(points + s * eps, sigma)
    if weighting == "ncsn":     # 0.5 |sigma s + eps|^2, averaged over points
        ref = 0.5 * (s * pred + eps).square().sum(-1).mean(-1)
    else:                       # official: 0.5 |sigma^2 s - sigma^2 s*|^2 / sigma, s* = -eps / sigma
        ref = 0.5 * (s**2 * pred - s**2 * (-eps / s)).square().sum(-1).mean(-1) / sigma
    assert got.shape == (5,)
    torch.testing.assert_close(got, ref)


def test_optimal_score_beats_random_network():
    """The smoothed score of the clean points is the minimiser of DSM; an untrained network does worse."""
    sigmas = schedule.geometric_sigmas(1.0, 0.01, 10)
    wins = 0
    for seed in range(5):
        points = _shapes(8, 64, seed=seed)
        torch.manual_seed(seed)
        net = ToyScoreNet(hidden=32, depth=2)
        for weighting in ("ncsn", "shapegf"):
            g = torch.Generator().manual_seed(1000 + seed)
            closed = losses.dsm_loss(lambda x, s, points=points: fields.smoothed_score(x, points, s), points, sigmas,
                                     weighting=weighting, generator=_clone(g))
            with torch.no_grad():
                learned = losses.dsm_loss(net, points, sigmas, weighting=weighting, generator=_clone(g))
            wins += int(closed.mean() < learned.mean())
            # the closed-form field is no worse per shape than predicting zero (the "ncsn" loss of 0 is 0.5 d)
            zero = losses.dsm_loss(lambda x, s: torch.zeros_like(x), points, sigmas, weighting=weighting,
                                   generator=_clone(g))
            assert (closed <= zero + 1e-6).all()
    assert wins == 10


def test_zero_score_ncsn_is_half_chi_square():
    """With s = 0 the "ncsn" loss is 0.5 mean |eps|^2, about d / 2."""
    points = _shapes(64, 256, seed=3)
    loss = losses.dsm_loss(lambda x, s: torch.zeros_like(x), points, torch.tensor([0.1, 1.0]), weighting="ncsn",
                           generator=torch.Generator().manual_seed(0))
    assert abs(float(loss.mean()) - 1.0) < 0.05


def test_return_sigma_from_ladder_and_all_levels_drawn():
    points = _shapes(200, 4, seed=4)
    sigmas = schedule.geometric_sigmas(1.0, 0.01, 5)
    loss, drawn = losses.dsm_loss(lambda x, s: torch.zeros_like(x), points, sigmas, return_sigma=True,
                                  generator=torch.Generator().manual_seed(5))
    assert loss.shape == (200,) and drawn.shape == (200,)
    assert torch.isin(drawn, sigmas).all()
    assert set(drawn.tolist()) == set(sigmas.tolist())


def test_score_fn_receives_noisy_points_and_per_shape_sigma():
    points = _shapes(3, 10, seed=6)
    seen = {}

    def spy(x, sigma):
        seen["x"], seen["sigma"] = x, sigma
        return torch.zeros_like(x)

    losses.dsm_loss(spy, points, torch.tensor([0.5]), generator=torch.Generator().manual_seed(0))
    assert seen["sigma"].shape == (3,) and torch.all(seen["sigma"] == 0.5)
    assert seen["x"].shape == points.shape and not torch.equal(seen["x"], points)


def test_gradient_flows_to_network():
    net = ToyScoreNet(hidden=16, depth=2)
    points = _shapes(4, 16, seed=7)
    loss = losses.dsm_loss(net, points, schedule.geometric_sigmas(1.0, 0.01, 4)).mean()
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0


def test_errors():
    points = _shapes(2, 8, seed=8)
    sigmas = torch.tensor([1.0, 0.1])
    zero = lambda x, s: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(ValueError, match="score_fn"):
        losses.dsm_loss(lambda x, s: torch.zeros(2, 8, 3), points, sigmas)
    with pytest.raises(ValueError, match="score_fn"):
        losses.dsm_loss(lambda x, s: x[:, :4], points, sigmas)
    with pytest.raises(ValueError, match="points"):
        losses.dsm_loss(zero, points[0], sigmas)
    with pytest.raises(ValueError, match="sigmas"):
        losses.dsm_loss(zero, points, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="sigmas"):
        losses.dsm_loss(zero, points, torch.ones(2, 2))
    with pytest.raises(ValueError, match="weighting"):
        losses.dsm_loss(zero, points, sigmas, weighting="edm")
    bad = points.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="points"):
        losses.dsm_loss(zero, bad, sigmas)
