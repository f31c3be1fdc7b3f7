"""gfcore.metrics: Chamfer and the three EMDs against brute-force references (loops, scipy, permutation search)."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from gfcore.metrics import (
    APPROXMATCH_LEVELS,
    chamfer_distance,
    emd,
    emd_approxmatch,
    emd_exact,
    emd_sinkhorn,
    nearest_distance,
)


def _clouds(batch, n, d, *, seed=0, dtype=torch.float64, m=None):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, n, d, generator=g, dtype=dtype)
    b = torch.randn(batch, m or n, d, generator=g, dtype=dtype) * 0.8 + 0.3
    return a, b


# ---------------------------------------------------------------- Chamfer

def brute_chamfer(a, b, squared=True):
    out = []
    for x, y in zip(a, b):
        d2 = torch.tensor([[float(((p - q) ** 2).sum()) for q in y] for p in x], dtype=torch.float64)
        d = d2 if squared else d2.sqrt()
        out.append(d.min(1).values.mean() + d.min(0).values.mean())
    return torch.stack(out)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
@pytest.mark.parametrize("squared", [True, False])
def test_chamfer_matches_brute_force(d, chunk_size, squared):
    a, b = _clouds(3, 17, d, m=11)
    cd = chamfer_distance(a, b, squared=squared, chunk_size=chunk_size)
    assert cd.shape == (3,)
    torch.testing.assert_close(cd, brute_chamfer(a, b, squared=squared))
    torch.testing.assert_close(chamfer_distance(b, a, squared=squared), cd)   # symmetric


def test_chamfer_float32_far_from_origin_is_exact_to_rounding():
    # the matmul expansion alone loses ~1e-5 relative here; the re-measured distances do not
    a, b = _clouds(2, 300, 3, seed=1, dtype=torch.float32)
    a, b = a * 0.05 + 3.0, b * 0.05 + 3.0
    ref = brute_chamfer(a.double(), b.double())
    got = chamfer_distance(a, b)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, rtol=2e-6, atol=0)


def test_chamfer_zero_on_identical_and_permuted():
    a = torch.randn(2, 50, 3)
    assert torch.all(chamfer_distance(a, a) == 0)
    assert torch.all(chamfer_distance(a, a[:, torch.randperm(50)]) == 0)


def test_chamfer_gradient_matches_brute_force_autograd():
    a, b = _clouds(1, 6, 3, seed=2)
    a.requires_grad_(True)
    (g_fast,) = torch.autograd.grad(chamfer_distance(a, b).sum(), a)
    d2 = (a[0].unsqueeze(1) - b[0].unsqueeze(0)).square().sum(-1)
    (g_ref,) = torch.autograd.grad(d2.min(1).values.mean() + d2.min(0).values.mean(), a)
    torch.testing.assert_close(g_fast, g_ref)


def test_nearest_distance_matches_loop():
    a, b = _clouds(2, 9, 3, seed=3, m=13)
    got = nearest_distance(a, b, squared=False)
    ref = torch.tensor([[min(float((p - q).norm()) for q in y) for p in x] for x, y in zip(a, b)],
                       dtype=torch.float64)
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_chamfer_half_precision_inputs(dtype):
    a, b = _clouds(2, 40, 3, seed=4, dtype=torch.float32)
    got = chamfer_distance(a.to(dtype), b.to(dtype))
    assert got.dtype == dtype
    ref = chamfer_distance(a.to(dtype).double(), b.to(dtype).double())
    torch.testing.assert_close(got.double(), ref, rtol=2e-2, atol=1e-3)


def test_chamfer_rejects_bad_input():
    a = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="a has B=2 shapes, b has B=3"):
        chamfer_distance(a, torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match="a has d=3, b has d=2"):
        chamfer_distance(a, torch.randn(2, 5, 2))
    bad = a.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="a contains 1 NaN"):
        chamfer_distance(bad, a)
    with pytest.raises(ValueError, match="b is empty"):
        chamfer_distance(a, torch.randn(2, 0, 3))
    with pytest.raises(ValueError, match="b must be 3-D"):
        chamfer_distance(a, torch.randn(5, 3))
    with pytest.raises(TypeError, match="a is torch.float32 but b is torch.float64"):
        chamfer_distance(a, a.double())
    with pytest.raises(TypeError, match="chunk_size must be an int"):
        chamfer_distance(a, a, chunk_size=2.5)


# ---------------------------------------------------------------- exact EMD

def permutation_search(x, y, cost):
    """The smallest matching cost over all N! bijections, divided by N (tiny N only)."""
    n = len(x)
    c = cdist(x, y, "euclidean" if cost == "euclidean" else "sqeuclidean")
    return min(sum(c[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n))) / n


@pytest.mark.parametrize("cost", ["euclidean", "squared"])
@pytest.mark.parametrize("d", [2, 3])
def test_exact_emd_equals_permutation_search(cost, d):
    a, b = _clouds(3, 6, d, seed=5)
    got = emd(a, b, method="exact", cost=cost)
    ref = torch.tensor([permutation_search(x.numpy(), y.numpy(), cost) for x, y in zip(a, b)],
                       dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cost", ["euclidean", "squared"])
def test_exact_emd_equals_scipy_assignment(cost):
    a, b = _clouds(2, 40, 3, seed=6)
    ref = []
    for x, y in zip(a.numpy(), b.numpy()):
        c = cdist(x, y, "euclidean" if cost == "euclidean" else "sqeuclidean")
        r, col = linear_sum_assignment(c)
        ref.append(c[r, col].mean())
    torch.testing.assert_close(emd_exact(a, b, cost=cost), torch.tensor(ref, dtype=torch.float64))


def test_exact_emd_properties_and_gradient():
    a, b = _clouds(2, 12, 3, seed=7)
    assert torch.all(emd_exact(a, a[:, torch.randperm(12)]) == 0)
    torch.testing.assert_close(emd_exact(a, b), emd_exact(b, a))
    # Euclidean EMD >= distance of the centroids (Jensen); squared EMD >= Chamfer's one-sided means
    assert torch.all(emd_exact(a, b) >= (a.mean(1) - b.mean(1)).norm(dim=-1) - 1e-12)
    a.requires_grad_(True)
    (grad,) = torch.autograd.grad(emd_exact(a, b, cost="squared").sum(), a)
    perm = [linear_sum_assignment(cdist(x, y, "sqeuclidean"))[1] for x, y in zip(a.detach().numpy(), b.numpy())]
    ref = torch.stack([2 * (a[i].detach() - b[i][perm[i]]) / 12 for i in range(2)])
    torch.testing.assert_close(grad, ref)


# ---------------------------------------------------------------- approxmatch

def naive_approxmatch(x, y, widths, cost):
    """Fan et al.'s approximate matching restated with scalar loops (the test's independent reference)."""
    n, m = len(x), len(y)
    d2 = [[float(np.sum((x[i] - y[j]) ** 2)) for j in range(m)] for i in range(n)]
    rem_a, rem_b = [1.0] * n, [1.0] * m
    flow = [[0.0] * m for _ in range(n)]
    for w in widths:
        k = [[math.exp(-w * d2[i][j]) for j in range(m)] for i in range(n)]
        ratio_a = [rem_a[i] / (1e-9 + sum(k[i][j] * rem_b[j] for j in range(m))) for i in range(n)]
        ratio_b = [0.0] * m
        for j in range(m):
            asked = rem_b[j] * sum(k[i][j] * ratio_a[i] for i in range(n))
            ratio_b[j] = rem_b[j] * min(rem_b[j] / (asked + 1e-9), 1.0)
            rem_b[j] = max(0.0, rem_b[j] - asked)
        for i in range(n):
            given = 0.0
            for j in range(m):
                f = k[i][j] * ratio_a[i] * ratio_b[j]
                flow[i][j] += f
                given += f
            rem_a[i] = max(0.0, rem_a[i] - given)
    c = [[math.sqrt(v) if cost == "euclidean" else v for v in row] for row in d2]
    return sum(flow[i][j] * c[i][j] for i in range(n) for j in range(m)) / n, sum(rem_a) / n


@pytest.mark.parametrize("cost", ["euclidean", "squared"])
@pytest.mark.parametrize("levels", ["pointflow", "complete"])
def test_approxmatch_matches_loop_reference(cost, levels):
    a, b = _clouds(3, 7, 3, seed=8)
    a, b = a * 0.3, b * 0.3                        # so that several kernel levels matter
    got, left = emd_approxmatch(a, b, cost=cost, levels=levels, return_unmatched=True)
    ref = [naive_approxmatch(x.numpy(), y.numpy(), APPROXMATCH_LEVELS[levels], cost) for x, y in zip(a, b)]
    torch.testing.assert_close(got, torch.tensor([r[0] for r in ref], dtype=torch.float64), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(left, torch.tensor([r[1] for r in ref], dtype=torch.float64), rtol=1e-8, atol=1e-12)


def test_approxmatch_levels_follow_the_cost_family():
    a, b = _clouds(2, 9, 3, seed=9)
    torch.testing.assert_close(emd_approxmatch(a, b), emd_approxmatch(a, b, levels="pointflow"))
    torch.testing.assert_close(emd_approxmatch(a, b, cost="squared"),
                               emd_approxmatch(a, b, cost="squared", levels="complete"))
    _, left = emd_approxmatch(a, b, levels="complete", return_unmatched=True)
    assert float(left.max()) < 1e-9                 # the last, uniform level places all the mass


def test_approxmatch_batched_equals_looped_and_float32_close():
    a, b = _clouds(5, 30, 3, seed=10)
    full = emd_approxmatch(a, b)
    for i in range(5):
        torch.testing.assert_close(emd_approxmatch(a[i:i + 1], b[i:i + 1]), full[i:i + 1])
    torch.testing.assert_close(emd_approxmatch(a.float(), b.float()).double(), full, rtol=1e-4, atol=1e-6)


def test_approxmatch_gradient_holds_the_matching_fixed():
    a, b = _clouds(2, 24, 3, seed=15)
    a.requires_grad_(True)
    b = b.clone().requires_grad_(True)
    ga, gb = torch.autograd.grad(emd_approxmatch(a, b).sum(), (a, b))
    assert torch.isfinite(ga).all() and torch.isfinite(gb).all()
    # the cost depends on a_i - b_j only: moving both clouds together changes nothing
    torch.testing.assert_close(ga.sum(1) + gb.sum(1), torch.zeros(2, 3, dtype=torch.float64), atol=1e-10, rtol=0)
    # and it points where the exact EMD's gradient points
    (ge,) = torch.autograd.grad(emd_exact(a, b).sum(), a)
    cos = torch.nn.functional.cosine_similarity(ga.reshape(2, -1), ge.reshape(2, -1), dim=1)
    assert torch.all(cos > 0.5), cos                     # measured 0.73 and 0.87
    with torch.no_grad():                                  # the value is the same with and without the plan
        torch.testing.assert_close(emd_approxmatch(a, b), emd_approxmatch(a.detach(), b.detach()))


def _shape_pairs(num_points):
    """Same-shape pairs (train pool vs test pool) and different-shape pairs of procedural shapes."""
    from gfcore.data import Shapes3D

    kw = dict(categories=["chair", "airplane"], split="val", num_points=num_points, num_shapes=2, sample="first")
    inp = Shapes3D(pool="train", **kw)
    ref = Shapes3D(pool="test", **kw)
    a = torch.stack([inp[i]["points"] for i in range(len(inp))])
    b = torch.stack([ref[i]["points"] for i in range(len(ref))])
    return torch.cat([a, a]), torch.cat([b, b.roll(1, 0)])


# Measured on 512-point pairs of 4 categories (shape_bbox coordinates), Euclidean cost: approxmatch / exact =
# 1.23-1.37 for two samplings of one shape, 1.10-1.22 for different shapes.
APPROXMATCH_MAX_FACTOR = 1.6


def test_approxmatch_is_an_upper_bound_within_a_factor_on_shapes():
    a, b = _shape_pairs(512)
    exact = emd_exact(a, b)
    approx = emd_approxmatch(a, b)
    ratio = approx / exact
    assert torch.all(ratio >= 1.0), ratio
    assert torch.all(ratio <= APPROXMATCH_MAX_FACTOR), ratio


# ---------------------------------------------------------------- Sinkhorn

# epsilon_ratio 0.01: the entropic plan's cost sits ~0.5% above exact (measured: bench/metrics.py)
SINKHORN_RTOL = 0.01


@pytest.mark.parametrize("cost", ["euclidean", "squared"])
def test_sinkhorn_within_tolerance_of_exact(cost):
    a, b = _clouds(2, 48, 3, seed=11)
    exact = emd_exact(a, b, cost=cost)
    sink = emd_sinkhorn(a, b, cost=cost)
    assert torch.all((sink - exact).abs() <= SINKHORN_RTOL * exact), (sink / exact)


def test_sinkhorn_tends_to_exact_as_epsilon_shrinks():
    a, b = _clouds(1, 32, 2, seed=12)
    exact = float(emd_exact(a, b))
    errs = [abs(float(emd_sinkhorn(a, b, epsilon_ratio=r)) - exact) for r in (0.3, 0.1, 0.01)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] <= SINKHORN_RTOL * exact


def test_sinkhorn_identical_clouds_and_gradient():
    a, _ = _clouds(2, 20, 3, seed=13)
    assert torch.all(emd_sinkhorn(a, a) <= 1e-4 * emd_exact(a, a.roll(1, 1)))
    b = a.detach() * 0.9 + 0.05
    x = a.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(emd_sinkhorn(x, b, cost="squared").sum(), x)
    (ref,) = torch.autograd.grad(emd_exact(x, b, cost="squared").sum(), x)
    torch.testing.assert_close(grad, ref, rtol=0.05, atol=1e-3)


def test_sinkhorn_warns_when_it_runs_out_of_sweeps():
    a, b = _clouds(1, 16, 3, seed=14)
    with pytest.warns(RuntimeWarning, match="max_iter=10 sweeps reached"):
        emd_sinkhorn(a, b, max_iter=10)


# ---------------------------------------------------------------- one entry point, bad input

def test_emd_dispatches_and_passes_options():
    a, b = _clouds(2, 10, 3, seed=13)
    torch.testing.assert_close(emd(a, b, method="approxmatch", levels="complete"),
                               emd_approxmatch(a, b, levels="complete"))
    torch.testing.assert_close(emd(a, b, method="sinkhorn", cost="squared", epsilon_ratio=0.05),
                               emd_sinkhorn(a, b, cost="squared", epsilon_ratio=0.05))
    with pytest.raises(TypeError, match="blur"):
        emd(a, b, method="exact", blur=0.1)


@pytest.mark.parametrize("method", ["exact", "approxmatch", "sinkhorn"])
def test_emd_rejects_bad_input(method):
    a = torch.randn(2, 8, 3)
    with pytest.raises(ValueError, match="same number of points N.*N=8 in a and N=9 in b"):
        emd(a, torch.randn(2, 9, 3), method=method)
    with pytest.raises(ValueError, match="a has B=2 shapes, b has B=1"):
        emd(a, torch.randn(1, 8, 3), method=method)
    with pytest.raises(ValueError, match="a has d=3, b has d=2"):
        emd(a, torch.randn(2, 8, 2), method=method)
    with pytest.raises(ValueError, match="a is empty"):
        emd(torch.randn(2, 0, 3), torch.randn(2, 0, 3), method=method)
    bad = a.clone()
    bad[1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="b contains 0 NaN and 1 inf"):
        emd(a, bad, method=method)
    with pytest.raises(ValueError, match="cost must be one of"):
        emd(a, a, method=method, cost="manhattan")
    with pytest.raises(ValueError, match="method must be one of"):
        emd(a, a, method="hungarian")
