"""gfcore.schedule: noise ladders, loss weights and learning-rate schedules."""
import math

import pytest
import torch

from gfcore import schedule

OFFICIAL_10 = [1.0, 0.5995, 0.3594, 0.2154, 0.1292, 0.0774, 0.0464, 0.0278, 0.0167, 0.01]


def test_official_ten_levels():
    got = schedule.geometric_sigmas(1.0, 0.01, 10)
    assert got.shape == (10,) and got.dtype == torch.float32
    assert [round(float(v), 4) for v in got] == OFFICIAL_10


@pytest.mark.parametrize("smax,smin,n", [(1.0, 0.01, 10), (1.0, 0.01, 5), (3.0, 0.2, 7), (0.5, 0.5, 4)])
def test_geometric_endpoints_constant_ratio(smax, smin, n):
    s = schedule.geometric_sigmas(smax, smin, n, dtype=torch.float64)
    assert s.shape == (n,)
    assert math.isclose(float(s[0]), smax, rel_tol=1e-12) and math.isclose(float(s[-1]), smin, rel_tol=1e-12)
    ratios = s[1:] / s[:-1]
    ref = (smin / smax) ** (1 / (n - 1))
    torch.testing.assert_close(ratios, torch.full_like(ratios, ref))
    assert (s[1:] <= s[:-1]).all()
    if smin < smax:
        assert (s[1:] < s[:-1]).all()


def test_naive_geometric_reference():
    n, smax, smin = 6, 2.0, 0.05
    ref = torch.tensor([smax * (smin / smax) ** (i / (n - 1)) for i in range(n)], dtype=torch.float64)
    torch.testing.assert_close(schedule.geometric_sigmas(smax, smin, n, dtype=torch.float64), ref)


def test_linear_schedule():
    s = schedule.linear_sigmas(1.0, 0.1, 4, dtype=torch.float64)
    torch.testing.assert_close(s, torch.tensor([1.0, 0.7, 0.4, 0.1], dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(schedule.SCHEDULES))
def test_family_signature_and_n1(name):
    fn = schedule.SCHEDULES[name]
    one = fn(0.3, 0.3, 1)
    assert one.shape == (1,) and math.isclose(float(one[0]), 0.3, rel_tol=1e-6)
    s = fn(1.0, 0.01, 8, dtype=torch.float64)
    assert s.dtype == torch.float64 and (s[1:] < s[:-1]).all()


@pytest.mark.parametrize("name", sorted(schedule.SCHEDULES))
@pytest.mark.parametrize("args,exc,word", [
    ((0.01, 1.0, 10), ValueError, "sigma_min"),     # ascending
    ((0.0, 0.01, 10), ValueError, "sigma_max"),
    ((1.0, -0.01, 10), ValueError, "sigma_min"),
    ((1.0, 0.01, 0), ValueError, "n"),
    ((1.0, 0.01, 2.0), TypeError, "n"),
    ((1.0, 0.5, 1), ValueError, "n=1"),
    ((float("nan"), 0.5, 3), ValueError, "sigma_max"),
])
def test_schedule_errors(name, args, exc, word):
    with pytest.raises(exc, match=word):
        schedule.SCHEDULES[name](*args)


def test_loss_weight_exponents():
    s = torch.tensor([0.01, 0.1, 0.5, 1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(schedule.loss_weight(s, "shapegf"), s**3)
    torch.testing.assert_close(schedule.loss_weight(s, "ncsn"), s**2)
    torch.testing.assert_close(schedule.loss_weight(s), s**3)
    with pytest.raises(ValueError, match="weighting"):
        schedule.loss_weight(s, "edm")


def test_lr_schedules():
    assert schedule.lr_factor("official", 0, 100) == 1.0
    assert schedule.lr_factor("official", 49, 100) == 1.0
    assert schedule.lr_factor("official", 95, 100) == pytest.approx(0.01)
    assert schedule.lr_factor("official", 99, 100) == pytest.approx(0.01)
    assert 0.01 < schedule.lr_factor("official", 70, 100) < 1.0
    assert schedule.lr_factor("cosine", 0, 100) == 1.0
    assert schedule.lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert schedule.lr_factor("cosine", 100, 100) == pytest.approx(0.0)
    assert schedule.lr_factor("constant", 70, 100) == 1.0
    assert set(schedule.LR_SCHEDULES) == {"official", "constant", "cosine"}
    with pytest.raises(ValueError, match="schedule"):
        schedule.lr_factor("step", 0, 10)
