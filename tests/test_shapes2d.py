"""Tests for gfcore.data.shapes2d: points lie on the outline and are uniform by arc length."""
import math

import pytest
import torch

from gfcore.data import shapes2d
from gfcore.fields import distance_to_points

ALL = [*shapes2d.SHAPES, "glyph:A", "glyph:8", "glyph:GF"]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _arc_position(points, ref):
    """Arc-length position in [0, 1) of each point: index of its nearest point in the dense outline."""
    d2 = torch.cdist(points.double(), ref.double())
    return d2.argmin(dim=1).double() / ref.shape[0]


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_bounds(name):
    p = shapes2d.sample(name, 300, generator=_gen())
    assert p.shape == (300, 2) and p.dtype == torch.float32
    assert p.abs().max() <= 1.0
    q = shapes2d.sample(name, 10, generator=_gen(), dtype=torch.float64, device="cpu")
    assert q.dtype == torch.float64 and q.device.type == "cpu"


@pytest.mark.parametrize("name", ALL)
def test_points_on_dense_outline(name):
    ref = shapes2d.dense(name, 20000, dtype=torch.float64)
    p = shapes2d.sample(name, 1000, generator=_gen(1), dtype=torch.float64)
    assert distance_to_points(p, ref).max() < 1e-3


def test_circle_and_square_exact():
    c = shapes2d.sample("circle", 2000, generator=_gen(), dtype=torch.float64)
    assert (c.norm(dim=1) - 0.8).abs().max() < 1e-5
    s = shapes2d.sample("square", 2000, generator=_gen(), dtype=torch.float64)
    assert (s.abs().max(dim=1).values - 0.7).abs().max() < 1e-12


def test_square_sides_equal_share():
    n = 4000
    p = shapes2d.sample("square", n, generator=_gen(2), dtype=torch.float64)
    h = 0.7
    on = [(p[:, 0] - h).abs() < 1e-9, (p[:, 0] + h).abs() < 1e-9,
          (p[:, 1] - h).abs() < 1e-9, (p[:, 1] + h).abs() < 1e-9]
    counts = torch.stack(on).sum(dim=1)
    assert counts.sum() >= n  # every point on a side (corners count twice)
    # binomial std sqrt(4000 * 0.25 * 0.75) ~ 27; allow about 4.4 std
    assert ((counts - n / 4).abs() < 120).all(), counts


def test_circle_angles_flat():
    n, bins = 4000, 20
    p = shapes2d.sample("circle", n, generator=_gen(3), dtype=torch.float64)
    angle = torch.atan2(p[:, 1], p[:, 0]) + math.pi
    hist = torch.histc(angle, bins=bins, min=0, max=2 * math.pi)
    expected = n / bins
    chi2 = float(((hist - expected) ** 2 / expected).sum())
    assert chi2 < 45.3, chi2  # chi-square, 19 dof: P(chi2 > 45.3) < 0.001


@pytest.mark.parametrize("name", [*shapes2d.SHAPES, "glyph:8"])
def test_uniform_by_arc_length_ks(name):
    """Arc-length positions of the samples follow U(0, 1): Kolmogorov-Smirnov at level 0.001."""
    n = 2000
    ref = shapes2d.dense(name, 20000, dtype=torch.float64)
    pos = _arc_position(shapes2d.sample(name, n, generator=_gen(4)), ref).sort().values
    ecdf_hi = torch.arange(1, n + 1, dtype=torch.float64) / n
    ks = float(torch.maximum(ecdf_hi - pos, pos - (ecdf_hi - 1 / n)).max())
    assert ks < 1.95 / math.sqrt(n), ks


def test_glyph_contours_get_points_by_length():
    polys = shapes2d.outline("glyph:8")
    assert len(polys) == 3
    lengths = torch.tensor([shapes2d.outline_length(q) for q in polys])
    n = 3000
    p = shapes2d.sample("glyph:8", n, generator=_gen(5), dtype=torch.float64)
    dist = torch.stack([distance_to_points(p, shapes2d.polyline_dense(q, 2000, dtype=torch.float64))
                        for q in polys])
    counts = torch.bincount(dist.argmin(dim=0), minlength=3).double()
    share = lengths / lengths.sum()
    assert ((counts / n - share).abs() < 0.03).all(), (counts / n, share)


@pytest.mark.parametrize("text", ["A", "8", *"0123456789"])
def test_glyphs(text):
    polys = shapes2d.glyph(text)
    assert all(torch.equal(q[0], q[-1]) for q in polys)  # closed contours
    ref = shapes2d.dense(f"glyph:{text}", 5000, dtype=torch.float64)
    span = ref.max(dim=0).values - ref.min(dim=0).values
    assert abs(float(span.max()) - 1.8) < 1e-2
    centre = (ref.max(dim=0).values + ref.min(dim=0).values) / 2
    assert centre.abs().max() < 1e-2
    assert shapes2d.sample(f"glyph:{text}", 50, generator=_gen()).shape == (50, 2)


def test_glyph_contour_counts():
    assert len(shapes2d.outline("glyph:A")) == 2
    assert len(shapes2d.outline("glyph:8")) == 3
    assert len(shapes2d.outline("glyph:1")) == 1


def test_outline_closed_and_resolution():
    for name in ["circle", "square", "star", "heart"]:
        (poly,) = shapes2d.outline(name)
        assert torch.equal(poly[0], poly[-1])
    assert shapes2d.outline("circle", resolution=64)[0].shape == (65, 2)
    assert shapes2d.outline("square", resolution=64)[0].shape == (5, 2)  # polygons ignore resolution
    assert shapes2d.outline("spiral")[0].dtype == torch.float64


def test_generator_reproducible():
    a = shapes2d.sample("star", 500, generator=_gen(7))
    b = shapes2d.sample("star", 500, generator=_gen(7))
    c = shapes2d.sample("star", 500, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    d = shapes2d.sample("heart", 100)
    torch.manual_seed(3)
    assert torch.equal(d, shapes2d.sample("heart", 100))


def test_dense_deterministic_and_even():
    a = shapes2d.dense("circle", 1000, dtype=torch.float64)
    assert torch.equal(a, shapes2d.dense("circle", 1000, dtype=torch.float64))
    step = (a[1:] - a[:-1]).norm(dim=1)
    length = shapes2d.outline_length(shapes2d.outline("circle"))
    assert torch.allclose(step, torch.full_like(step, length / 1000), rtol=1e-4)


def test_polyline_sample_single_tensor_and_lengths():
    seg = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    p = shapes2d.polyline_sample(seg, 4000, generator=_gen())
    assert (p[:, 1] == 0).all() and p[:, 0].min() >= 0 and p[:, 0].max() <= 1
    assert abs(float(p[:, 0].mean()) - 0.5) < 0.02
    # two separate segments, lengths 1 and 3: shares 1/4 and 3/4
    two = [seg, torch.tensor([[0.0, 1.0], [3.0, 1.0]])]
    q = shapes2d.polyline_sample(two, 4000, generator=_gen())
    assert abs(float((q[:, 1] == 0).double().mean()) - 0.25) < 0.03
    assert shapes2d.outline_length(two) == pytest.approx(4.0)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="name must be one of.*circle"):
        shapes2d.sample("blob", 10)
    with pytest.raises(ValueError, match="num_points"):
        shapes2d.sample("circle", 0)
    with pytest.raises(ValueError, match="name"):
        shapes2d.sample("glyph:", 10)
    with pytest.raises(ValueError, match="text"):
        shapes2d.glyph("")
    with pytest.raises(ValueError, match="text"):
        shapes2d.glyph("   ")
    with pytest.raises(ValueError, match="text"):
        shapes2d.glyph("a\nb")
    with pytest.raises(ValueError, match="polylines"):
        shapes2d.polyline_sample([], 10)
    with pytest.raises(ValueError, match="polylines"):
        shapes2d.polyline_sample([torch.zeros(3, 2)], 10)
    with pytest.raises(ValueError, match="num_points"):
        shapes2d.dense("square", -1)
    with pytest.raises(ValueError, match="resolution"):
        shapes2d.circle(resolution=2)
