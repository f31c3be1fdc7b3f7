"""gfcore.data.primitives: surfaces with exact areas, sampled uniformly; the one triangle sampler."""
import math

import numpy as np
import pytest

from gfcore.data import primitives


def test_box_points_on_faces_and_area_split():
    rng = np.random.default_rng(0)
    size = np.array([2.0, 1.0, 0.5])
    b = primitives.box((0.0, 0.0, 0.0), size)
    assert math.isclose(b.area, 2 * (2 * 1 + 2 * 0.5 + 1 * 0.5))
    p = b.sample(20000, rng)
    on_face = np.isclose(np.abs(p), size / 2, atol=1e-9)
    assert on_face.any(axis=1).all()
    assert (np.abs(p) <= size / 2 + 1e-9).all()
    frac = on_face.mean(axis=0)  # fraction on the +-x, +-y, +-z faces
    np.testing.assert_allclose(frac, np.array([1 * 0.5, 2 * 0.5, 2 * 1]) * 2 / b.area, atol=0.015)


def test_rotated_box_points_on_surface():
    rng = np.random.default_rng(1)
    R = primitives.rot_y(0.3) @ primitives.rot_x(-0.4)
    c, size = np.array([0.5, 1.0, -0.2]), np.array([0.3, 0.6, 0.1])
    p = primitives.box(c, size, rotation=R).sample(2000, rng)
    local = (p - c) @ R
    assert np.isclose(np.abs(local), size / 2, atol=1e-9).any(axis=1).all()


def test_frustum_cylinder_sphere_torus_on_surface_and_uniform():
    rng = np.random.default_rng(2)
    # open cone along +y: every point satisfies r(y) = r0 + (r1 - r0) y / h; uniform => y density ~ r(y)
    f = primitives.Frustum((0, 0, 0), (0, 1, 0), 2.0, 1.0, 0.2, caps="none")
    assert math.isclose(f.area, math.pi * 1.2 * math.hypot(2.0, 0.8))
    p = f.sample(40000, rng)
    r = np.hypot(p[:, 0], p[:, 2])
    np.testing.assert_allclose(r, 1.0 - 0.8 * p[:, 1] / 2.0, atol=1e-9)
    # fraction below mid-height = area of the lower half / total = (1 + 0.6) / (1 + 0.6 + 0.6 + 0.2)
    assert abs((p[:, 1] < 1.0).mean() - 1.6 / 2.4) < 0.01
    # closed cylinder: caps get pi r^2 each, the side 2 pi r h
    cyl = primitives.cylinder((0, 0, 0), (0, 0, 1), 1.0, 0.5)
    q = cyl.sample(40000, rng)
    side = np.isclose(np.hypot(q[:, 0], q[:, 1]), 0.5, atol=1e-9) & (q[:, 2] > 1e-9) & (q[:, 2] < 1 - 1e-9)
    caps = np.isclose(q[:, 2], 0, atol=1e-9) | np.isclose(q[:, 2], 1, atol=1e-9)
    assert (side | caps).all()
    assert abs(side.mean() - (math.pi * 1.0) / (math.pi * 1.0 + 2 * math.pi * 0.25)) < 0.01
    s = primitives.sphere((1, 2, 3), 0.7).sample(1000, rng)
    np.testing.assert_allclose(np.linalg.norm(s - [1, 2, 3], axis=1), 0.7, atol=1e-9)
    e = primitives.Ellipsoid((0, 0, 0), (1.0, 0.5, 0.25)).sample(1000, rng)
    np.testing.assert_allclose(((e / [1.0, 0.5, 0.25]) ** 2).sum(1), 1.0, atol=1e-9)
    t = primitives.Torus((0, 0, 0), 1.0, 0.2)
    assert math.isclose(t.area, 4 * math.pi**2 * 0.2)
    tp = t.sample(20000, rng)
    ring = np.hypot(tp[:, 0], tp[:, 1])
    np.testing.assert_allclose((ring - 1.0) ** 2 + tp[:, 2] ** 2, 0.04, atol=1e-9)
    # area element ~ (R + r cos v): the outer half (ring > R) holds (pi R + 2 r) / (2 pi R) of the points
    assert abs((ring > 1.0).mean() - (math.pi + 0.4) / (2 * math.pi)) < 0.015


def test_sample_primitives_area_weighted_and_shuffled():
    rng = np.random.default_rng(3)
    a = primitives.box((-5, 0, 0), (1, 1, 1))  # area 6
    b = primitives.box((5, 0, 0), (2, 2, 2))  # area 24
    p = primitives.sample_primitives([a, b], 10000, rng)
    assert p.shape == (10000, 3) and p.dtype == np.float32
    assert abs((p[:, 0] < 0).mean() - 0.2) < 0.015
    assert abs((p[:5000, 0] < 0).mean() - (p[5000:, 0] < 0).mean()) < 0.03  # shuffled: slices alike


def test_triangle_areas_against_heron():
    rng = np.random.default_rng(5)
    tri = rng.normal(size=(50, 3, 3))
    a, b, c = (np.linalg.norm(tri[:, i] - tri[:, j], axis=1) for i, j in ((0, 1), (1, 2), (2, 0)))
    s = (a + b + c) / 2
    heron = np.sqrt(np.clip(s * (s - a) * (s - b) * (s - c), 0, None))
    np.testing.assert_allclose(primitives.triangle_areas(tri), heron, rtol=1e-6, atol=1e-12)


def test_sample_triangles_uniform_inside_and_by_area():
    # a right triangle of area 0.5 and one of area 2 in the plane z = 0
    tri = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[3, 0, 0], [5, 0, 0], [3, 2, 0]]], dtype=float)
    p = primitives.sample_triangles(tri, 20000, np.random.default_rng(0))
    assert p.shape == (20000, 3) and (p[:, 2] == 0).all()
    first = p[:, 0] < 2
    assert abs(first.mean() - 0.2) < 0.01                                  # 0.5 / 2.5 of the points
    q = p[first]
    assert (q[:, 0] >= 0).all() and (q[:, 1] >= 0).all() and (q.sum(1) <= 1 + 1e-12).all()
    # uniform inside: the mean is the centroid, the fraction below the mid-line is 3/4
    np.testing.assert_allclose(q[:, :2].mean(0), [1 / 3, 1 / 3], atol=0.01)
    assert abs((q[:, 1] < 0.5).mean() - 0.75) < 0.015
    again = primitives.sample_triangles(tri, 20000, np.random.default_rng(0), areas=np.array([0.5, 2.0]))
    np.testing.assert_array_equal(p, again)
    with pytest.raises(ValueError, match="zero total area"):
        primitives.sample_triangles(np.zeros((2, 3, 3)), 5, np.random.default_rng(0))
