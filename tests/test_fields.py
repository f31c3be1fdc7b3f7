"""gfcore.fields: the closed-form field against naive references (autograd, numpy loops, looped batches)."""
import math

import numpy as np
import pytest
import torch

from gfcore import fields

METHODS = ["direct", "attention", "auto"]


def _cloud(n, d, *, batch=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = (n, d) if batch is None else (batch, n, d)
    return torch.randn(shape, generator=g, dtype=dtype)


# ---------------------------------------------------------------- naive numpy reference (explicit loops)

def _np_logsumexp(a):
    m = max(a)
    return m + math.log(sum(math.exp(v - m) for v in a))


def _np_log_density(x, points, sigma):
    """log (1/N) sum_i N(x; x_i, sigma^2 I), one query at a time, one point at a time."""
    n, d = points.shape
    out = np.empty(len(x))
    for q in range(len(x)):
        logits = [-float(np.sum((x[q] - points[i]) ** 2)) / (2 * sigma**2) for i in range(n)]
        out[q] = _np_logsumexp(logits) - math.log(n) - 0.5 * d * math.log(2 * math.pi * sigma**2)
    return out


def _np_score(x, points, sigma):
    """(-x + sum_i w_i x_i) / sigma^2 with w = softmax(-|x - x_i|^2 / (2 sigma^2)), by loops."""
    n, d = points.shape
    out = np.empty_like(x)
    for q in range(len(x)):
        logits = [-float(np.sum((x[q] - points[i]) ** 2)) / (2 * sigma**2) for i in range(n)]
        lse = _np_logsumexp(logits)
        mean = np.zeros(d)
        for i in range(n):
            mean += math.exp(logits[i] - lse) * points[i]
        out[q] = (mean - x[q]) / sigma**2
    return out


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("sigma", [0.05, 0.3, 1.0])
def test_matches_numpy_loop_reference(d, sigma):
    points, x = _cloud(17, d, seed=1), _cloud(9, d, seed=2) * 1.5
    ref_ld = _np_log_density(x.numpy(), points.numpy(), sigma)
    ref_s = _np_score(x.numpy(), points.numpy(), sigma)
    np.testing.assert_allclose(fields.smoothed_log_density(x, points, sigma).numpy(), ref_ld, rtol=1e-10,
                               atol=1e-10)
    for method in METHODS:
        got = fields.smoothed_score(x, points, sigma, method=method).numpy()
        np.testing.assert_allclose(got, ref_s, rtol=1e-8, atol=1e-8 / sigma**2, err_msg=method)


# ---------------------------------------------------------------- closed form == autograd of the log-density

@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("method", METHODS)
def test_score_is_gradient_of_log_density(d, batched, method):
    batch = 3 if batched else None
    points = _cloud(20, d, batch=batch, seed=3)
    x = _cloud(11, d, batch=batch, seed=4).requires_grad_(True)
    sigma = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64) if batched else 0.4
    (grad,) = torch.autograd.grad(fields.smoothed_log_density(x, points, sigma).sum(), x)
    score = fields.smoothed_score(x.detach(), points, sigma, method=method)
    assert score.shape == x.shape
    torch.testing.assert_close(score, grad, rtol=1e-9, atol=1e-9)


def test_gradcheck_log_density():
    points = _cloud(6, 2, seed=5)
    x = _cloud(4, 2, seed=6).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, p: fields.smoothed_log_density(x, p, 0.7),
                                    (x, points.clone().requires_grad_(True)))


def test_gradcheck_score_direct():
    points = _cloud(5, 3, seed=7)
    x = _cloud(3, 3, seed=8).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: fields.smoothed_score(x, points, 0.6, method="direct"), (x,))


# ---------------------------------------------------------------- chunked == unchunked, batched == looped

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_chunked_equals_unchunked(method, chunk_size):
    points, x = _cloud(30, 3, batch=2, seed=9), _cloud(23, 3, batch=2, seed=10)
    full = fields.smoothed_score(x, points, 0.3, method=method, chunk_size=10**6)
    part = fields.smoothed_score(x, points, 0.3, method=method, chunk_size=chunk_size)
    torch.testing.assert_close(part, full, rtol=1e-12, atol=1e-12)
    ld_full = fields.smoothed_log_density(x, points, 0.3, chunk_size=10**6)
    torch.testing.assert_close(fields.smoothed_log_density(x, points, 0.3, chunk_size=chunk_size), ld_full,
                               rtol=1e-12, atol=1e-12)
    dist_full = fields.distance_to_points(x, points, chunk_size=10**6)
    torch.testing.assert_close(fields.distance_to_points(x, points, chunk_size=chunk_size), dist_full)


@pytest.mark.parametrize("method", METHODS)
def test_batched_equals_loop_with_per_shape_sigma(method):
    batch = 4
    points, x = _cloud(25, 2, batch=batch, seed=11), _cloud(13, 2, batch=batch, seed=12)
    sigma = torch.tensor([0.05, 0.1, 0.5, 2.0], dtype=torch.float64)
    got = fields.smoothed_score(x, points, sigma, method=method)
    got_ld = fields.smoothed_log_density(x, points, sigma)
    assert got.shape == (batch, 13, 2) and got_ld.shape == (batch, 13)
    for b in range(batch):
        s = float(sigma[b])
        torch.testing.assert_close(got[b], fields.smoothed_score(x[b], points[b], s, method="direct"))
        torch.testing.assert_close(got_ld[b], fields.smoothed_log_density(x[b], points[b], s))


def test_broadcast_unbatched_side():
    points, xs = _cloud(15, 3, seed=13), _cloud(8, 3, batch=3, seed=14)
    sigma = torch.tensor([0.2, 0.4, 0.8], dtype=torch.float64)
    got = fields.smoothed_score(xs, points, sigma)
    assert got.shape == (3, 8, 3)
    for b in range(3):
        torch.testing.assert_close(got[b], fields.smoothed_score(xs[b], points, float(sigma[b]), method="direct"))
    # unbatched x against batched points
    pts_b, x = _cloud(15, 3, batch=3, seed=15), _cloud(8, 3, seed=16)
    got = fields.smoothed_log_density(x, pts_b, 0.3)
    assert got.shape == (3, 8)
    for b in range(3):
        torch.testing.assert_close(got[b], fields.smoothed_log_density(x, pts_b[b], 0.3))
    # both unbatched: unbatched output; a (1,) sigma tensor behaves like a number
    one = fields.smoothed_score(x, points, torch.tensor([0.3], dtype=torch.float64))
    assert one.shape == (8, 3)
    torch.testing.assert_close(one, fields.smoothed_score(x, points, 0.3))


def test_distance_to_points_brute_force():
    points, x = _cloud(40, 3, seed=17), _cloud(12, 3, seed=18)
    ref = torch.tensor([min(float((x[q] - points[i]).norm()) for i in range(40)) for q in range(12)],
                       dtype=torch.float64)
    torch.testing.assert_close(fields.distance_to_points(x, points, chunk_size=5), ref)


# ---------------------------------------------------------------- attention vs direct

@pytest.mark.parametrize("d", [2, 3])
def test_attention_matches_direct_float64(d):
    points = _cloud(200, d, batch=2, seed=19) + 3.0       # off-centre cloud: attention centres it
    x = points[:, :150] + 0.1 * _cloud(150, d, batch=2, seed=20)
    for sigma in (0.01, 0.1, 1.0):
        a = fields.smoothed_score(x, points, sigma, method="attention")
        r = fields.smoothed_score(x, points, sigma, method="direct")
        assert (a - r).abs().max() <= 1e-9 * r.abs().max()


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.5])
def test_attention_matches_direct_float32(sigma):
    g = torch.Generator().manual_seed(21)
    points = torch.nn.functional.normalize(torch.randn(500, 3, generator=g), dim=-1)   # unit sphere
    x = points[:300] + sigma * torch.randn(300, 3, generator=g)
    ref = fields.smoothed_score(x.double(), points.double(), sigma, method="direct")
    rms = ref.norm(dim=-1).square().mean().sqrt()
    for method in METHODS:
        got = fields.smoothed_score(x, points, sigma, method=method)
        assert got.dtype == torch.float32
        err = (got.double() - ref).norm(dim=-1).max() / rms
        assert err < 2e-4, (method, float(err))


def test_auto_on_cpu_is_float64_accurate():
    """On CPU "auto" computes in float64, so float32 inputs at small sigma are as good as float32 allows."""
    g = torch.Generator().manual_seed(22)
    points = torch.nn.functional.normalize(torch.randn(500, 3, generator=g), dim=-1)
    x = points[torch.randint(500, (600,), generator=g)] + 0.01 * torch.randn(600, 3, generator=g)
    assert 600 * 500 >= fields._AUTO_MIN_PAIRS_ATTENTION      # large enough for the fused path
    ref = fields.smoothed_score(x.double(), points.double(), 0.01, method="direct")
    got = fields.smoothed_score(x, points, 0.01)
    rms = ref.norm(dim=-1).square().mean().sqrt()
    assert (got.double() - ref).norm(dim=-1).max() / rms < 1e-5


# ---------------------------------------------------------------- extremes: tiny sigma, far queries

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_and_pointing_home_at_extremes(method, dtype):
    points = _cloud(50, 3, seed=23, dtype=dtype) * 0.5
    centroid = points.mean(0)
    near = points[:10] + 0.01
    far = torch.tensor([[1e3, 0.0, 0.0], [0.0, -1e3, 0.0], [600.0, 600.0, -600.0]], dtype=dtype)
    for sigma in (1e-3, 0.1):
        for x in (near, far):
            s = fields.smoothed_score(x, points, sigma, method=method)
            ld = fields.smoothed_log_density(x, points, sigma)
            assert torch.isfinite(s).all() and torch.isfinite(ld).all(), (sigma, method)
        s_far = fields.smoothed_score(far, points, sigma, method=method)
        assert ((centroid - far) * s_far).sum(-1).min() > 0
        # far away the field is (nearest point - x) / sigma^2 up to rounding
        nearest = points[((far[:, None] - points[None]).norm(dim=-1)).argmin(-1)]
        if method == "direct" or dtype == torch.float64:
            torch.testing.assert_close(s_far, (nearest - far) / sigma**2, rtol=1e-3, atol=0)


def test_log_density_normalised_2d():
    points = torch.tensor([[0.0, 0.0], [0.3, 0.1], [-0.2, 0.25]], dtype=torch.float64)
    sigma = 0.1
    h = 0.01
    grid = torch.arange(-1.0, 1.0 + h / 2, h, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="ij")
    q = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)
    total = fields.smoothed_log_density(q, points, sigma).exp().sum() * h * h
    assert abs(float(total) - 1.0) < 1e-6
    # and a sigma twice as large spreads mass but still integrates to one over a larger box
    grid = torch.arange(-2.0, 2.0 + h / 2, h, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="ij")
    q = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)
    total = fields.smoothed_log_density(q, points, 2 * sigma).exp().sum() * h * h
    assert abs(float(total) - 1.0) < 1e-6


def test_log_density_single_point_is_gaussian():
    x = _cloud(5, 3, seed=24)
    p = torch.zeros(1, 3, dtype=torch.float64)
    sigma = 0.7
    ref = -x.square().sum(-1) / (2 * sigma**2) - 1.5 * math.log(2 * math.pi * sigma**2)
    torch.testing.assert_close(fields.smoothed_log_density(x, p, sigma), ref)


# ---------------------------------------------------------------- validation

def _bad_calls():
    p = _cloud(10, 3, seed=25)
    x = _cloud(4, 3, seed=26)
    pb = _cloud(10, 3, batch=2, seed=27)
    xb = _cloud(4, 3, batch=3, seed=28)
    nan_x = x.clone()
    nan_x[1, 2] = float("nan")
    nan_p = p.clone()
    nan_p[0, 0] = float("nan")
    inf_p = p.clone()
    inf_p[3, 1] = float("inf")
    return [
        ("empty cloud", dict(x=x, points=p[:0], sigma=0.1), ValueError, "points"),
        ("empty queries", dict(x=x[:0], points=p, sigma=0.1), ValueError, "x"),
        ("NaN in x", dict(x=nan_x, points=p, sigma=0.1), ValueError, "x"),
        ("NaN in points", dict(x=x, points=nan_p, sigma=0.1), ValueError, "points"),
        ("inf in points", dict(x=x, points=inf_p, sigma=0.1), ValueError, "points"),
        ("sigma 0", dict(x=x, points=p, sigma=0.0), ValueError, "sigma"),
        ("negative sigma", dict(x=x, points=p, sigma=-0.1), ValueError, "sigma"),
        ("inf sigma", dict(x=x, points=p, sigma=float("inf")), ValueError, "sigma"),
        ("negative sigma in tensor", dict(x=pb, points=pb, sigma=torch.tensor([0.1, -0.1])), ValueError, "sigma"),
        ("sigma wrong length", dict(x=pb, points=pb, sigma=torch.tensor([0.1, 0.2, 0.3])), ValueError, "sigma"),
        ("per-shape sigma, unbatched", dict(x=x, points=p, sigma=torch.tensor([0.1, 0.2])), ValueError, "sigma"),
        ("sigma 2-D", dict(x=pb, points=pb, sigma=torch.ones(2, 1)), ValueError, "sigma"),
        ("sigma string", dict(x=x, points=p, sigma="0.1"), TypeError, "sigma"),
        ("d mismatch", dict(x=x[:, :2], points=p, sigma=0.1), ValueError, "points"),
        ("batch mismatch", dict(x=xb, points=pb, sigma=0.1), ValueError, "batch"),
        ("dtype mismatch", dict(x=x.float(), points=p, sigma=0.1), TypeError, "points"),
        ("integer x", dict(x=torch.ones(4, 3, dtype=torch.int64), points=p, sigma=0.1), TypeError, "x"),
        ("integer points", dict(x=x, points=torch.ones(4, 3, dtype=torch.int32), sigma=0.1), TypeError, "points"),
        ("not a tensor", dict(x=x.numpy(), points=p, sigma=0.1), TypeError, "x"),
        ("1-D x", dict(x=x[0], points=p, sigma=0.1), ValueError, "x"),
        ("4-D points", dict(x=x, points=pb[None], sigma=0.1), ValueError, "points"),
    ]


@pytest.mark.parametrize("fn", ["score", "log_density"])
@pytest.mark.parametrize("case", _bad_calls(), ids=lambda c: c[0])
def test_bad_inputs_raise(fn, case):
    _, kwargs, exc, word = case
    func = fields.smoothed_score if fn == "score" else fields.smoothed_log_density
    with pytest.raises(exc, match=word):
        func(kwargs["x"], kwargs["points"], kwargs["sigma"])


def test_bad_method_and_chunk_size_raise():
    p, x = _cloud(10, 3, seed=29), _cloud(4, 3, seed=30)
    with pytest.raises(ValueError, match="method"):
        fields.smoothed_score(x, p, 0.1, method="fast")
    for method in METHODS:
        with pytest.raises(ValueError, match="chunk_size"):
            fields.smoothed_score(x, p, 0.1, chunk_size=0, method=method)
        with pytest.raises(TypeError, match="chunk_size"):
            fields.smoothed_score(x, p, 0.1, chunk_size=2.5, method=method)
    with pytest.raises(ValueError, match="chunk_size"):
        fields.smoothed_log_density(x, p, 0.1, chunk_size=0)
    with pytest.raises(ValueError, match="chunk_size"):
        fields.distance_to_points(x, p, chunk_size=-1)


# ---------------------------------------------------------------- jacobian_asymmetry

def _antisym(d, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(d, d, generator=g, dtype=torch.float64)
    return m - m.T, (m + m.T) / 2


def _naive_asymmetry(score_fn_of, x, sigma_b):
    """Per point, one at a time: J by torch.autograd.functional.jacobian, then the formula in NumPy.
    ``score_fn_of(b)`` is the score callable of shape ``b`` alone (a batch of one)."""
    out = np.empty(x.shape[:2])
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            def f(v, b=b):
                return score_fn_of(b)(v.view(1, 1, -1), sigma_b[b:b + 1])[0, 0]
            jac = torch.autograd.functional.jacobian(f, x[b, i].clone()).numpy()
            out[b, i] = np.linalg.norm(jac - jac.T) / (2 * np.linalg.norm(jac))
    return out


def _swirl(w, a):
    """A nonlinear field that is not a gradient and depends on sigma: tanh(W x) sigma + |x|^2 A x."""
    def score_fn(x, sigma):
        return torch.tanh(x @ w.T) * sigma.view(-1, 1, 1) + (x @ a.T) * x.square().sum(-1, keepdim=True)
    return score_fn


@pytest.mark.parametrize("d", [2, 3])
def test_jacobian_asymmetry_of_the_closed_form_score_is_zero(d):
    points = _cloud(40, d, seed=40)
    x = _cloud(30, d, batch=2, seed=41) * 0.7
    sigma = torch.tensor([0.3, 0.8], dtype=torch.float64)
    val = fields.jacobian_asymmetry(lambda q, s: fields.smoothed_score(q, points, s, method="direct"), x, sigma)
    assert val.shape == (2, 30) and val.dtype == torch.float64
    assert val.abs().max() < 1e-12
    # the swirl beside it is far from a gradient: the measure is not trivially zero
    a, _ = _antisym(d, 42)
    swirl = fields.jacobian_asymmetry(_swirl(torch.eye(d, dtype=torch.float64), a), x, sigma)
    assert swirl.max() > 0.5


def test_jacobian_asymmetry_of_an_explicit_gradient_is_zero():
    _, q = _antisym(3, 43)                              # symmetric Q: s = grad (x^T Q x / 2 + b . x) = Q x + b
    b = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    x = _cloud(50, 3, batch=3, seed=44)
    val = fields.jacobian_asymmetry(lambda p, s: p @ q.T + b, x, 0.5)
    assert val.abs().max() < 1e-15


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-15), (torch.float32, 1e-6)])
@pytest.mark.parametrize("d", [2, 3])
def test_jacobian_asymmetry_of_a_rotation_is_one(d, dtype, tol):
    a, _ = _antisym(d, 45)
    a = a.to(dtype)
    x = _cloud(20, d, batch=2, seed=46, dtype=dtype)
    val = fields.jacobian_asymmetry(lambda p, s: p @ a.T, x, 1.0)
    assert val.dtype == dtype
    torch.testing.assert_close(val, torch.ones_like(val), rtol=0, atol=tol)


def test_jacobian_asymmetry_of_a_mixed_linear_field_is_analytic():
    a, s = _antisym(3, 47)
    x = _cloud(10, 3, seed=48)                                        # unbatched (M, d) -> (M,)
    for t in (0.0, 0.25, 1.0, 4.0):
        j = s + t * a
        want = float(torch.linalg.norm(t * a) / torch.sqrt(torch.linalg.norm(s) ** 2 + torch.linalg.norm(t * a) ** 2))
        val = fields.jacobian_asymmetry(lambda p, sig, j=j: p @ j.T, x, 0.1)
        assert val.shape == (10,)
        torch.testing.assert_close(val, torch.full((10,), want, dtype=torch.float64), rtol=1e-13, atol=1e-14)
        # the same number from the formula as the docstring writes it: ||J - J^T|| / (2 ||J||)
        assert want == pytest.approx(float(torch.linalg.norm(j - j.T) / (2 * torch.linalg.norm(j))), rel=1e-13)


def test_jacobian_asymmetry_batched_equals_looped_and_finite_differences():
    w = _cloud(3, 3, seed=49)
    a, _ = _antisym(3, 50)
    field = _swirl(w, a)
    x = _cloud(7, 3, batch=3, seed=51) * 0.6
    sigma = torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64)
    val = fields.jacobian_asymmetry(field, x, sigma)
    np.testing.assert_allclose(val.numpy(), _naive_asymmetry(lambda b: field, x, sigma), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fields.jacobian_asymmetry(field, x, sigma, chunk_size=3), val, rtol=0, atol=0)
    # float64 central differences of the field give the same Jacobian (to their truncation error)
    h = 1e-6
    for b, i in ((0, 0), (2, 5)):
        p = x[b, i]
        cols = [(field((p + h * e).view(1, 1, 3), sigma[b:b + 1]) - field((p - h * e).view(1, 1, 3),
                                                                           sigma[b:b + 1]))[0, 0] / (2 * h)
                for e in torch.eye(3, dtype=torch.float64)]
        jac = torch.stack(cols, dim=1)
        fd = float(torch.linalg.norm(jac - jac.T) / (2 * torch.linalg.norm(jac)))
        assert float(val[b, i]) == pytest.approx(fd, abs=1e-8)


def test_jacobian_asymmetry_of_a_learned_field():
    from gfcore.models import ShapeGF

    torch.manual_seed(0)
    model = ShapeGF(dim=3, zdim=8, hidden=16, n_blocks=2).double().eval()
    for blk in model.decoder.blocks:                                  # non-zero residual branches
        torch.nn.init.normal_(blk.fc1.weight, std=0.3)
    z = torch.randn(2, 8, dtype=torch.float64)
    x = _cloud(6, 3, batch=2, seed=52)
    sigma = torch.tensor([0.05, 0.5], dtype=torch.float64)
    with torch.no_grad():                                             # inside no_grad, as a chapter cell may be
        val = fields.jacobian_asymmetry(model.score_fn(z), x, sigma)
    assert val.shape == (2, 6) and ((val >= 0) & (val <= 1)).all() and val.max() > 1e-3
    naive = _naive_asymmetry(lambda b: model.score_fn(z[b:b + 1]), x, sigma)
    np.testing.assert_allclose(val.numpy(), naive, rtol=1e-10, atol=1e-12)


def test_jacobian_asymmetry_bad_inputs():
    x = _cloud(5, 3, batch=2, seed=53)
    with pytest.raises(ValueError, match="score_fn returned"):
        fields.jacobian_asymmetry(lambda p, s: p[..., :2], x, 0.1)
    with pytest.raises(ValueError, match="does not depend differentiably"):
        fields.jacobian_asymmetry(lambda p, s: p.detach() * 2, x, 0.1)
    with pytest.raises(ValueError, match="sigma"):
        fields.jacobian_asymmetry(lambda p, s: p, x, -0.1)
    with pytest.raises(ValueError, match="sigma has 3 values"):
        fields.jacobian_asymmetry(lambda p, s: p, x, torch.ones(3))
    with pytest.raises(ValueError, match="x"):
        fields.jacobian_asymmetry(lambda p, s: p, x[0, 0], 0.1)
    with pytest.raises(ValueError, match="chunk_size"):
        fields.jacobian_asymmetry(lambda p, s: p, x, 0.1, chunk_size=0)


def test_jacobian_asymmetry_makes_its_tensors_on_the_input_device():
    """On the meta device (shapes, no values) every tensor must be made where x lives, sigma included."""
    a = torch.randn(3, 3, device="meta")
    x = torch.randn(2, 5, 3, device="meta")
    for sigma in (0.1, torch.ones(2, device="meta")):
        val = fields.jacobian_asymmetry(lambda p, s: p @ a.T * s.view(-1, 1, 1), x, sigma)
        assert val.shape == (2, 5) and val.device.type == "meta"
