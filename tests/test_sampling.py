"""gfcore.sampling: annealed Langevin on the closed-form field, priors, bookkeeping."""
import math

import pytest
import torch

from gfcore import fields, sampling, schedule


def _circle(n=256):
    t = torch.arange(n) * (2 * math.pi / n)
    return torch.stack([t.cos(), t.sin()], -1)


def _circle_score(circle):
    return lambda x, sigma: fields.smoothed_score(x, circle, sigma)


@pytest.mark.parametrize("batch,m", [(300, 1), (10, 100), (1, 3000)])
def test_langevin_converges_onto_and_covers_circle(batch, m):
    circle = _circle()
    g = torch.Generator().manual_seed(0)
    x0 = sampling.prior("uniform", (batch, m, 2), generator=g)
    sigmas = schedule.geometric_sigmas(1.0, 0.01, 10)
    x = sampling.annealed_langevin(_circle_score(circle), x0, sigmas, steps_per_sigma=10, generator=g)
    assert x.shape == (batch, m, 2)
    r = x.norm(dim=-1)
    assert float((r - 1).abs().mean()) < 0.03
    assert float((r - 1).abs().max()) < 0.2
    angles = torch.atan2(x[..., 1], x[..., 0]).reshape(-1)
    hist = torch.histc(angles, bins=36, min=-math.pi, max=math.pi)
    assert (hist > 0).all(), hist
    # roughly uniform along the circle: no bin holds more than 3x its share
    assert float(hist.max()) < 3 * angles.numel() / 36


def test_uniform_prior():
    x = sampling.prior("uniform", (4, 5000, 3), bound=0.7, generator=torch.Generator().manual_seed(1))
    assert x.shape == (4, 5000, 3) and x.dtype == torch.float32
    assert float(x.abs().max()) <= 0.7
    assert float(x.abs().max()) > 0.69 and abs(float(x.mean())) < 0.02
    assert abs(float(x.var()) - 0.7**2 / 3) < 0.01


def test_gaussian_prior():
    x = sampling.prior("gaussian", (2, 20000, 2), std=0.3, generator=torch.Generator().manual_seed(2),
                       dtype=torch.float64)
    assert x.dtype == torch.float64
    assert abs(float(x.std()) - 0.3) < 0.01 and abs(float(x.mean())) < 0.01


def test_fixed_prior_one_point_and_k_points():
    p = torch.tensor([0.1, -0.2, 0.3])
    x = sampling.prior("fixed", (2, 7, 3), points=p)
    assert x.shape == (2, 7, 3) and torch.equal(x, p.expand(2, 7, 3))
    x[0, 0, 0] = 5.0                                   # a copy, not a view of the argument
    assert float(p[0]) == pytest.approx(0.1)
    k_pts = torch.randn(5, 3)
    x = sampling.prior("fixed", (3, 40, 3), points=k_pts, generator=torch.Generator().manual_seed(3))
    assert x.shape == (3, 40, 3)
    assert ((x[..., None, :] - k_pts).abs().sum(-1) == 0).any(-1).all()   # every sample is one of the K points
    same = sampling.prior("fixed", (3, 5, 3), points=k_pts)              # K == M: copied as is
    assert torch.equal(same, k_pts.expand(3, 5, 3))
    per_shape = torch.randn(3, 4, 3)
    x = sampling.prior("fixed", (3, 10, 3), points=per_shape, generator=torch.Generator().manual_seed(4))
    for b in range(3):
        assert ((x[b][:, None] - per_shape[b]).abs().sum(-1) == 0).any(-1).all()


def test_prior_errors():
    with pytest.raises(ValueError, match="kind"):
        sampling.prior("cauchy", (1, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        sampling.prior("uniform", (2, 2))
    with pytest.raises(ValueError, match="shape"):
        sampling.prior("uniform", (1, 0, 2))
    with pytest.raises(ValueError, match="bound"):
        sampling.prior("uniform", (1, 2, 2), bound=0)
    with pytest.raises(ValueError, match="std"):
        sampling.prior("gaussian", (1, 2, 2), std=-1.0)
    with pytest.raises(ValueError, match="points"):
        sampling.prior("fixed", (1, 2, 2))
    with pytest.raises(ValueError, match="points"):
        sampling.prior("fixed", (1, 2, 2), points=torch.zeros(3))
    with pytest.raises(ValueError, match="points"):
        sampling.prior("fixed", (2, 2, 2), points=torch.zeros(3, 4, 2))


def test_trajectory_and_callback():
    calls = []
    x0 = torch.randn(2, 9, 2)
    sigmas = torch.tensor([1.0, 0.5, 0.1])
    x, traj = sampling.annealed_langevin(lambda x, s: -x, x0, sigmas, steps_per_sigma=4, return_trajectory=True,
                                         callback=calls.append, generator=torch.Generator().manual_seed(0))
    T = 3 * 4
    assert traj.shape == (T + 1, 2, 9, 2)
    assert torch.equal(traj[0], x0) and torch.equal(traj[-1], x)
    assert len(calls) == T
    assert all(set(c) == {"step", "level", "sigma", "x"} for c in calls)
    assert [c["step"] for c in calls] == list(range(1, T + 1))
    assert [c["level"] for c in calls] == [0] * 4 + [1] * 4 + [2] * 4
    assert [c["sigma"] for c in calls] == pytest.approx([1.0] * 4 + [0.5] * 4 + [0.1] * 4)
    for i, c in enumerate(calls):
        assert torch.equal(c["x"], traj[i + 1])


def test_no_noise_is_deterministic_and_generator_reproducible():
    x0 = sampling.prior("gaussian", (2, 30, 2), generator=torch.Generator().manual_seed(0))
    sigmas = schedule.geometric_sigmas(1.0, 0.05, 4)
    score = _circle_score(_circle(64))
    a = sampling.annealed_langevin(score, x0, sigmas, steps_per_sigma=3, noise=False)
    b = sampling.annealed_langevin(score, x0, sigmas, steps_per_sigma=3, noise=False)
    assert torch.equal(a, b)
    c = sampling.annealed_langevin(score, x0, sigmas, steps_per_sigma=3, generator=torch.Generator().manual_seed(7))
    d = sampling.annealed_langevin(score, x0, sigmas, steps_per_sigma=3, generator=torch.Generator().manual_seed(7))
    e = sampling.annealed_langevin(score, x0, sigmas, steps_per_sigma=3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(c, d) and not torch.equal(c, e)
    assert torch.equal(x0, sampling.prior("gaussian", (2, 30, 2), generator=torch.Generator().manual_seed(0)))


def test_update_rule_by_hand():
    """score = -x (a standard normal), one level: x1 = x0 + 0.5 * alpha * (-x0) with alpha = 2 sigma^2."""
    x0 = torch.randn(1, 5, 3, dtype=torch.float64)
    sigma = 0.3
    alpha = 2 * sigma**2                                  # default step_size = 2 sigma_L^2
    x1 = sampling.annealed_langevin(lambda x, s: -x, x0, torch.tensor([sigma]), steps_per_sigma=1, noise=False)
    torch.testing.assert_close(x1, x0 + 0.5 * alpha * (-x0))
    # two levels: alpha_i = step_size * sigma_i^2 / sigma_L^2, noise-free steps compose
    sigmas = torch.tensor([0.4, 0.2], dtype=torch.float64)
    x2 = sampling.annealed_langevin(lambda x, s: -x, x0, sigmas, steps_per_sigma=1, noise=False, step_size=0.01)
    a1, a2 = 0.01 * 4.0, 0.01
    torch.testing.assert_close(x2, x0 * (1 - a1 / 2) * (1 - a2 / 2))
    # with noise: x' = x + sqrt(alpha) eps, then x = x' + alpha/2 * score(x'), with the same generator
    g = torch.Generator().manual_seed(11)
    eps = torch.randn(x0.shape, generator=torch.Generator().set_state(g.get_state()), dtype=torch.float64)
    x3 = sampling.annealed_langevin(lambda x, s: -x, x0, torch.tensor([sigma]), steps_per_sigma=1, generator=g)
    xp = x0 + math.sqrt(alpha) * eps
    torch.testing.assert_close(x3, xp - 0.5 * alpha * xp)


def test_score_fn_gets_per_shape_sigma():
    seen = []
    sampling.annealed_langevin(lambda x, s: seen.append(s.clone()) or torch.zeros_like(x), torch.zeros(3, 2, 2),
                               torch.tensor([0.5, 0.1]), steps_per_sigma=1, noise=False)
    assert [s.shape for s in seen] == [(3,), (3,)]
    torch.testing.assert_close(seen[1], torch.full((3,), 0.1))


def test_errors_and_divergence():
    x0 = torch.randn(1, 4, 2)
    zero = lambda x, s: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(ValueError, match="descending"):
        sampling.annealed_langevin(zero, x0, torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="sigmas"):
        sampling.annealed_langevin(zero, x0, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="x"):
        sampling.annealed_langevin(zero, x0[0], torch.tensor([1.0]))
    with pytest.raises(ValueError, match="steps_per_sigma"):
        sampling.annealed_langevin(zero, x0, torch.tensor([1.0]), steps_per_sigma=0)
    with pytest.raises(ValueError, match="step_size"):
        sampling.annealed_langevin(zero, x0, torch.tensor([1.0]), step_size=-1.0)
    with pytest.raises(ValueError, match="score_fn"):
        sampling.annealed_langevin(lambda x, s: x[..., :1], x0, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="diverged"):   # x -> x (1 + 1e20 * alpha / 2) overflows
        sampling.annealed_langevin(lambda x, s: 1e20 * x, x0, torch.tensor([1.0]), steps_per_sigma=5, noise=False)
    with pytest.raises(ValueError, match="diverged"):
        sampling.annealed_langevin(lambda x, s: torch.full_like(x, float("nan")), x0, torch.tensor([1.0]))
