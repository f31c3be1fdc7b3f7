"""Surfaces with exact areas and uniform samplers: triangles, boxes and hexahedra, frusta (cylinders, cones),
ellipsoids (spheres), tori; and sampling a union of them uniformly by area.

The building blocks of the procedural 3D shapes (:mod:`gfcore.data.shapes3d`) and the package's one triangle
sampler (:func:`sample_triangles`, also behind :func:`gfcore.data.meshes.sample_mesh`). Every primitive has an
``area`` and ``sample(n, rng) -> (n, 3)``, uniform on its own surface: triangles by barycentric sampling;
cylinders, cones and frusta by inverse CDF along the axis; spheres exactly; ellipsoids and tori by exact
rejection on the area element. Ellipsoid areas use Thomsen's formula (relative error below 1.1%).

Taught in chapter 5 (The full 3D model).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


# ------------------------------------------------------------------------------------------------------------
# Rotations
# ------------------------------------------------------------------------------------------------------------
def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def frame_from_axis(axis) -> np.ndarray:
    """A rotation taking the local +z axis to ``axis`` (normalised)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    helper = np.array([1.0, 0, 0]) if abs(a[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(helper, a)
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    return np.stack([u, v, a], axis=1)


# ------------------------------------------------------------------------------------------------------------
# Triangles: the package's one surface sampler for triangle meshes
# ------------------------------------------------------------------------------------------------------------
def triangle_areas(triangles: np.ndarray) -> np.ndarray:
    """Areas ``|(b - a) x (c - a)| / 2`` of triangles ``(T, 3, 3)`` (corners ``a, b, c``): ``(T,)`` float64."""
    tri = np.asarray(triangles, dtype=np.float64)
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def sample_triangles(triangles: np.ndarray, num_points: int, rng: np.random.Generator, *,
                     areas: np.ndarray | None = None) -> np.ndarray:
    """Points uniform by area on a set of triangles: multinomial counts per triangle in proportion to its area,
    then reflected barycentric sampling inside it (``a + u (b - a) + v (c - a)``, ``(u, v) -> (1 - u, 1 - v)``
    when ``u + v > 1``).

    Args:
        triangles: ``(T, 3, 3)`` corners.
        num_points: ``N``.
        rng: NumPy generator for the counts and the barycentric draws.
        areas: ``(T,)`` areas when already known (default: :func:`triangle_areas`).

    Returns:
        ``(N, 3)`` float64, grouped by triangle (callers shuffle when the order matters).

    Raises:
        ValueError: the triangles have zero total area.

    Taught in chapter 5 (3D shapes) and chapter 10 (clouds from meshes).
    """
    tri = np.asarray(triangles, dtype=np.float64)
    areas = triangle_areas(tri) if areas is None else areas
    total = float(areas.sum())
    if not total > 0:
        raise ValueError("the triangles have zero total area")
    counts = rng.multinomial(num_points, areas / total)
    which = np.repeat(np.arange(len(counts)), counts)
    u = rng.random((num_points, 2))
    u = np.where(u.sum(axis=1, keepdims=True) > 1, 1 - u, u)
    a = tri[:, 0]
    return a[which] + u[:, :1] * (tri[:, 1] - a)[which] + u[:, 1:] * (tri[:, 2] - a)[which]


# ------------------------------------------------------------------------------------------------------------
# Primitives: each has ``area`` and ``sample(n, rng) -> (n, 3)`` uniform on its surface
# ------------------------------------------------------------------------------------------------------------
class Primitive:
    """A surface with an exact (or, for ellipsoids, Thomsen's) area and uniform sampling on it."""

    area: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class TriangleMesh(Primitive):
    """A set of triangles ``(T, 3, 3)``; sampled by area (barycentric)."""

    def __init__(self, triangles: np.ndarray, areas: np.ndarray | None = None):
        self.tri = np.asarray(triangles, dtype=np.float64)
        self.tri_areas = triangle_areas(self.tri) if areas is None else np.asarray(areas, dtype=np.float64)
        self.area = float(self.tri_areas.sum())

    @classmethod
    def merge(cls, meshes: Sequence[TriangleMesh]) -> TriangleMesh:
        """One mesh holding the triangles of all ``meshes`` (sampling it samples their union by area)."""
        return cls(np.concatenate([m.tri for m in meshes]), np.concatenate([m.tri_areas for m in meshes]))

    def sample(self, n, rng):
        """``n`` points uniform by area, grouped by triangle (multinomial counts; callers shuffle)."""
        return sample_triangles(self.tri, n, rng, areas=self.tri_areas)


# the 12 triangles of a hexahedron whose corners are indexed by bits (x, y, z):
# corner i = (i & 1, (i >> 1) & 1, (i >> 2) & 1)
_HEX_FACES = np.array([
    [0, 2, 6], [0, 6, 4],  # x = 0
    [1, 5, 7], [1, 7, 3],  # x = 1
    [0, 4, 5], [0, 5, 1],  # y = 0
    [2, 3, 7], [2, 7, 6],  # y = 1
    [0, 1, 3], [0, 3, 2],  # z = 0
    [4, 6, 7], [4, 7, 5],  # z = 1
])


def hexahedron(corners: np.ndarray) -> TriangleMesh:
    """A closed hexahedron from 8 corners ordered by bits: corner ``i`` is ``(i&1, i>>1&1, i>>2&1)``."""
    corners = np.asarray(corners, dtype=np.float64).reshape(8, 3)
    return TriangleMesh(corners[_HEX_FACES])


def box(center, size, rotation=None) -> TriangleMesh:
    """An (optionally rotated) box of full side lengths ``size`` centred at ``center``."""
    bits = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], dtype=np.float64)
    local = (bits - 0.5) * np.asarray(size, dtype=np.float64)
    if rotation is not None:
        local = local @ np.asarray(rotation).T
    return hexahedron(local + np.asarray(center, dtype=np.float64))


class Frustum(Primitive):
    """A (truncated) cone or cylinder between radii ``r0`` (at ``base``) and ``r1`` (at ``base + h * axis``).

    ``caps`` selects the closing disks: ``"both"``, ``"bottom"``, ``"top"`` or ``"none"`` (an open lampshade).
    The lateral surface is sampled by inverse CDF along the axis (density proportional to the radius).
    """

    def __init__(self, base, axis, h, r0, r1, caps="both"):
        self.base = np.asarray(base, dtype=np.float64)
        self.R = frame_from_axis(axis)
        self.h, self.r0, self.r1 = float(h), float(r0), float(r1)
        slant = math.hypot(self.h, self.r1 - self.r0)
        self.parts = [math.pi * (self.r0 + self.r1) * slant,
                      math.pi * self.r0**2 if caps in ("both", "bottom") else 0.0,
                      math.pi * self.r1**2 if caps in ("both", "top") else 0.0]
        self.area = float(sum(self.parts))

    def sample(self, n, rng):
        counts = rng.multinomial(n, np.array(self.parts) / self.area)
        r0, r1 = self.r0, self.r1
        u = rng.random(counts[0])
        # density of t in [0, 1] proportional to r(t) = r0 + (r1 - r0) t; stable root of the quadratic CDF
        t = u * (r0 + r1) / (r0 + np.sqrt(r0**2 + u * (r1**2 - r0**2)))
        radius = r0 + (r1 - r0) * t
        phi = rng.random(counts[0]) * 2 * math.pi
        side = np.stack([radius * np.cos(phi), radius * np.sin(phi), t * self.h], axis=1)
        caps = []
        for k, (r, z) in ((1, (r0, 0.0)), (2, (r1, self.h))):
            m = counts[k]
            rr = r * np.sqrt(rng.random(m))
            ph = rng.random(m) * 2 * math.pi
            caps.append(np.stack([rr * np.cos(ph), rr * np.sin(ph), np.full(m, z)], axis=1))
        local = np.concatenate([side, *caps])
        return local @ self.R.T + self.base


def cylinder(base, axis, h, r, caps="both") -> Frustum:
    """A cylinder of radius ``r`` from ``base`` along ``axis`` for length ``h``."""
    return Frustum(base, axis, h, r, r, caps)


def _sphere_dirs(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class Ellipsoid(Primitive):
    """An ellipsoid with semi-axes ``radii`` (a sphere when equal), rotated by ``rotation``, centred at
    ``center``.

    Exact uniform sampling: directions on the unit sphere mapped to the ellipsoid, accepted with probability
    proportional to the area element ``|diag(radii)^-1 u| * abc`` (rejection). The area uses Thomsen's formula
    (exact for spheres, within 1.1% otherwise); it only weighs this primitive against the others.
    """

    def __init__(self, center, radii, rotation=None):
        self.center = np.asarray(center, dtype=np.float64)
        self.radii = np.asarray(radii, dtype=np.float64)
        self.R = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
        a, b, c = self.radii
        p = 1.6075
        self.area = float(4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p))

    def sample(self, n, rng):
        a, b, c = self.radii
        w = np.array([b * c, a * c, a * b])
        wmax = w.max()
        out = []
        got = 0
        while got < n:
            m = max(2 * (n - got), 16)
            u = _sphere_dirs(m, rng)
            keep = rng.random(m) * wmax < np.linalg.norm(u * w, axis=1)
            u = u[keep][: n - got]
            out.append(u * self.radii)
            got += len(u)
        local = np.concatenate(out) if out else np.zeros((0, 3))
        return local @ self.R.T + self.center


def sphere(center, r) -> Ellipsoid:
    """A sphere of radius ``r``."""
    return Ellipsoid(center, (r, r, r))


class Torus(Primitive):
    """A torus (or an arc of one: ``angle`` < 2 pi) of major radius ``R`` and tube radius ``r``.

    Local frame: the ring lies in the xy plane around the origin, from angle ``-angle / 2`` to ``angle / 2``
    about +x; then rotated by ``rotation`` and moved to ``center``. The tube angle is sampled by rejection on
    the area element ``r (R + r cos v)``; area = ``angle * 2 pi R r``.
    """

    def __init__(self, center, R, r, angle=2 * math.pi, rotation=None):
        self.center = np.asarray(center, dtype=np.float64)
        self.Rm, self.r, self.angle = float(R), float(r), float(angle)
        self.rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
        self.area = self.angle * 2 * math.pi * self.Rm * self.r

    def sample(self, n, rng):
        vs = []
        got = 0
        while got < n:
            m = max(2 * (n - got), 16)
            v = rng.random(m) * 2 * math.pi
            keep = rng.random(m) * (self.Rm + self.r) < self.Rm + self.r * np.cos(v)
            v = v[keep][: n - got]
            vs.append(v)
            got += len(v)
        v = np.concatenate(vs) if vs else np.zeros(0)
        u = (rng.random(n) - 0.5) * self.angle
        rad = self.Rm + self.r * np.cos(v)
        local = np.stack([rad * np.cos(u), rad * np.sin(u), self.r * np.sin(v)], axis=1)
        return local @ self.rot.T + self.center


def sample_primitives(primitives: Sequence[Primitive], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform by area over a union of primitives, in random order: ``(n, 3)`` float32.

    Counts per primitive are multinomial in the primitives' areas; the points are shuffled so any slice (the
    train and test pools) is itself a uniform sample.
    """
    meshes = [p for p in primitives if isinstance(p, TriangleMesh)]
    if len(meshes) > 1:  # one area-weighted pass over all triangles instead of one per box
        primitives = [TriangleMesh.merge(meshes)] + [p for p in primitives if not isinstance(p, TriangleMesh)]
    areas = np.array([p.area for p in primitives], dtype=np.float64)
    counts = rng.multinomial(n, areas / areas.sum())
    pts = np.concatenate([p.sample(int(k), rng) for p, k in zip(primitives, counts, strict=True) if k > 0])
    return pts[rng.permutation(n)].astype(np.float32)
