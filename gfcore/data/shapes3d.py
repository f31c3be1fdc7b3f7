"""A procedural 3D shape family: chairs, tables, airplanes, lamps, mugs and bottles built from primitives.

A stand-in for ShapeNet that needs no download: each category is a small grammar of parametric primitives
(boxes and other convex hexahedra, cylinders, cones and frusta, spheres, ellipsoids, torus handles) with
random proportions, so shapes vary within a category (chair backs of random height and tilt, four legs or a
pedestal, armrests or none; swept and tapered airplane wings, engines or none; ...) and differ between
categories.

Surfaces are sampled **uniformly by area**: the number of points per primitive is multinomial with
probabilities proportional to the primitives' exact areas, then each primitive is sampled uniformly on its own
surface (triangles by barycentric sampling; cylinders, cones and frusta by inverse CDF along the axis; spheres
exactly; ellipsoids and tori by exact rejection on the area element). Ellipsoid areas use Thomsen's formula
(relative error below 1.1%). Overlapping primitives are not trimmed, so hidden parts (a leg's top inside the
seat) carry points too, as in a union of parts.

Coordinates: y up (as ShapeNet), x to the right, z towards the viewer; airplanes fly along +z.

Generation is deterministic in ``(category, index, seed)`` and fast (a few ms for 15,000 points), so nothing
is cached on disk; a dataset keeps the clouds it has generated in memory.

Taught in chapter 5 (The full 3D model).
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import torch

from gfcore.data.base import PointCloudDataset

CATEGORIES = ("chair", "table", "airplane", "lamp", "mug", "bottle")
CLOUD_SIZE = 15000
TRAIN_POOL = slice(0, 10000)
TEST_POOL = slice(10000, 15000)
SPLIT_FRACTIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


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
        if areas is None:
            e1 = self.tri[:, 1] - self.tri[:, 0]
            e2 = self.tri[:, 2] - self.tri[:, 0]
            areas = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
        self.tri_areas = areas
        self.area = float(self.tri_areas.sum())

    @classmethod
    def merge(cls, meshes: Sequence[TriangleMesh]) -> TriangleMesh:
        """One mesh holding the triangles of all ``meshes`` (sampling it samples their union by area)."""
        return cls(np.concatenate([m.tri for m in meshes]), np.concatenate([m.tri_areas for m in meshes]))

    def sample(self, n, rng):
        """``n`` points uniform by area, grouped by triangle (multinomial counts; callers shuffle)."""
        counts = rng.multinomial(n, self.tri_areas / self.area)
        which = np.repeat(np.arange(len(counts)), counts)
        return sample_triangles(self.tri, rng, which)


def sample_triangles(tri: np.ndarray, rng: np.random.Generator,
                     which: np.ndarray | None = None) -> np.ndarray:
    """One uniform point in each triangle ``tri[which]`` (reflected barycentric sampling): ``(n, 3)``.

    ``tri`` is ``(T, 3, 3)``; ``which`` ``(n,)`` triangle indices (default: each triangle once).
    """
    if which is None:
        which = np.arange(tri.shape[0])
    u = rng.random((which.shape[0], 2))
    u = np.where(u.sum(axis=1, keepdims=True) > 1, 1 - u, u)
    a = tri[:, 0]
    return a[which] + u[:, :1] * (tri[:, 1] - a)[which] + u[:, 1:] * (tri[:, 2] - a)[which]


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


# ------------------------------------------------------------------------------------------------------------
# Categories: (rng) -> list of primitives
# ------------------------------------------------------------------------------------------------------------
def _leg(x, z, y0, y1, thick, round_legs, splay=(0.0, 0.0)):
    """A leg from height y0 (floor) to y1, optionally splayed outwards by (dx, dz) at the floor."""
    top = np.array([x, y1, z])
    bottom = np.array([x + splay[0], y0, z + splay[1]])
    axis = top - bottom
    length = float(np.linalg.norm(axis))
    if round_legs:
        return cylinder(bottom, axis, length, thick / 2)
    return box((top + bottom) / 2, (thick, thick, length), rotation=frame_from_axis(axis))  # local z: the leg


def make_chair(rng: np.random.Generator) -> list[Primitive]:
    """Seat, a back of random height and tilt, four legs or a pedestal with a star base, optional armrests."""
    w = rng.uniform(0.40, 0.60)
    d = rng.uniform(0.38, 0.55)
    seat_h = rng.uniform(0.38, 0.50)
    t = rng.uniform(0.03, 0.08)
    prims: list[Primitive] = [box((0, seat_h, 0), (w, t, d))]
    # back: hinged at the rear edge of the seat, leaning back by `tilt`
    back_h = rng.uniform(0.30, 0.65)
    tilt = rng.uniform(0.0, 0.35)
    bt = rng.uniform(0.025, 0.06)
    back_w = w * rng.uniform(0.8, 1.0)
    rot = rot_x(-tilt)
    hinge = np.array([0, seat_h + t / 2, -d / 2 + bt / 2])
    centre = hinge + rot @ np.array([0, back_h / 2, 0])
    prims.append(box(centre, (back_w, back_h, bt), rotation=rot))
    style = rng.choice(["legs", "legs", "pedestal"])
    if style == "legs":
        thick = rng.uniform(0.025, 0.06)
        round_legs = rng.random() < 0.4
        splay = rng.uniform(0.0, 0.06)
        ix, iz = w / 2 - thick, d / 2 - thick
        for sx in (-1, 1):
            for sz in (-1, 1):
                prims.append(_leg(sx * ix, sz * iz, 0.0, seat_h - t / 2, thick, round_legs,
                                  (sx * splay, sz * splay)))
        if rng.random() < 0.4:  # stretchers between the legs
            y = rng.uniform(0.08, 0.2)
            prims.append(box((0, y, iz), (2 * ix, thick * 0.6, thick * 0.6)))
            prims.append(box((0, y, -iz), (2 * ix, thick * 0.6, thick * 0.6)))
    else:
        r = rng.uniform(0.025, 0.05)
        base_y = rng.uniform(0.04, 0.08)
        prims.append(cylinder((0, base_y, 0), (0, 1, 0), seat_h - t / 2 - base_y, r))
        n_spokes = int(rng.integers(4, 6))
        length = rng.uniform(0.22, 0.32)
        phase = rng.uniform(0, 2 * math.pi)
        for k in range(n_spokes):
            a = phase + 2 * math.pi * k / n_spokes
            prims.append(box((math.cos(a) * length / 2, base_y, math.sin(a) * length / 2),
                             (length, 0.035, 0.04), rotation=rot_y(-a)))
    if rng.random() < 0.35:  # armrests on two posts
        arm_h = rng.uniform(0.18, 0.28)
        at = rng.uniform(0.03, 0.06)
        for sx in (-1, 1):
            x = sx * (w / 2 - at / 2)
            prims.append(box((x, seat_h + arm_h, 0), (at, 0.03, d * 0.9)))
            prims.append(box((x, seat_h + arm_h / 2, d * 0.35), (at, arm_h, 0.03)))
    return prims


def make_table(rng: np.random.Generator) -> list[Primitive]:
    """A rectangular or round top on four legs, a central pedestal or two trestles; optional shelf."""
    height = rng.uniform(0.45, 0.80)
    t = rng.uniform(0.025, 0.07)
    top_shape = rng.choice(["rect", "rect", "round"])
    if top_shape == "rect":
        w, d = rng.uniform(0.6, 1.6), rng.uniform(0.5, 1.0)
        prims: list[Primitive] = [box((0, height - t / 2, 0), (w, t, d))]
        half_x, half_z = w / 2, d / 2
    else:
        r = rng.uniform(0.3, 0.6)
        prims = [cylinder((0, height - t, 0), (0, 1, 0), t, r)]
        half_x = half_z = r / math.sqrt(2)
    styles = ["legs", "legs", "pedestal", "trestle"] if top_shape == "rect" else ["legs", "pedestal"]
    style = rng.choice(styles)
    leg_top = height - t
    if style == "legs":
        thick = rng.uniform(0.03, 0.08)
        inset = rng.uniform(0.02, 0.12)
        round_legs = rng.random() < 0.4
        ix, iz = max(half_x - thick / 2 - inset, 0.05), max(half_z - thick / 2 - inset, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                prims.append(_leg(sx * ix, sz * iz, 0.0, leg_top, thick, round_legs))
        if rng.random() < 0.35:  # lower shelf
            y = rng.uniform(0.1, 0.3) * height
            prims.append(box((0, y, 0), (2 * ix + thick, 0.02, 2 * iz + thick)))
    elif style == "pedestal":
        r = rng.uniform(0.04, 0.10)
        prims.append(cylinder((0, 0.02, 0), (0, 1, 0), leg_top - 0.02, r))
        foot = rng.uniform(0.18, 0.35)
        prims.append(cylinder((0, 0, 0), (0, 1, 0), 0.03, foot))
    else:  # two trestles joined by a beam
        thick = rng.uniform(0.04, 0.08)
        x = half_x * rng.uniform(0.6, 0.85)
        for sx in (-1, 1):
            prims.append(box((sx * x, leg_top / 2, 0), (thick, leg_top, thick)))
            prims.append(box((sx * x, 0.02, 0), (thick * 1.5, 0.04, 2 * half_z * 0.8)))
        prims.append(box((0, leg_top * rng.uniform(0.3, 0.6), 0), (2 * x, thick * 0.7, thick * 0.7)))
    return prims


def _wing(root_x, y, z_root, span, root_chord, tip_chord, sweep, thick, dihedral, side) -> TriangleMesh:
    """A tapered, swept wing as a hexahedron; ``side`` = +1 (right) or -1 (left); chords run along z."""
    corners = []
    for i in range(8):
        bx, by, bz = i & 1, (i >> 1) & 1, (i >> 2) & 1
        chord = root_chord if bx == 0 else tip_chord
        th = thick if bx == 0 else thick * tip_chord / root_chord
        x = root_x + bx * span
        zc = z_root - bx * sweep  # leading edge moves back (-z) with the sweep
        z = zc - (1 - bz) * chord  # bz=1: leading edge
        yy = y + bx * span * math.tan(dihedral) + (by - 0.5) * th
        corners.append([side * x, yy, z])
    return hexahedron(np.array(corners))  # orientation is irrelevant for sampling: only positions matter


def make_airplane(rng: np.random.Generator) -> list[Primitive]:
    """Fuselage (cylinder with nose and tail, or one long ellipsoid), swept tapered wings, tail, optional
    engines."""
    length = rng.uniform(1.6, 2.4)
    radius = rng.uniform(0.07, 0.14)
    prims: list[Primitive] = []
    if rng.random() < 0.6:
        body = length * rng.uniform(0.55, 0.7)
        nose = length * rng.uniform(0.08, 0.15)
        tail = length - body - nose
        z0 = -length / 2 + tail
        prims.append(cylinder((0, 0, z0), (0, 0, 1), body, radius, caps="none"))
        prims.append(Ellipsoid((0, 0, z0 + body), (radius, radius, nose)))
        tail_r = radius * rng.uniform(0.15, 0.4)
        prims.append(Frustum((0, 0, z0), (0, 0, -1), tail, radius, tail_r, caps="top"))
    else:
        prims.append(Ellipsoid((0, 0, 0), (radius, radius * rng.uniform(0.9, 1.2), length / 2)))
    # main wings
    span = rng.uniform(0.6, 1.3)
    root_chord = rng.uniform(0.25, 0.55)
    tip_chord = root_chord * rng.uniform(0.25, 0.8)
    sweep = rng.uniform(0.0, 0.6) * span
    thick = rng.uniform(0.025, 0.05)
    dihedral = rng.uniform(-0.05, 0.12)
    wing_y = rng.uniform(-0.6, 0.5) * radius
    wing_z = rng.uniform(-0.05, 0.25) * length
    for side in (-1, 1):
        prims.append(_wing(radius * 0.5, wing_y, wing_z, span, root_chord, tip_chord, sweep, thick, dihedral,
                           side))
    # horizontal stabilisers and vertical fin at the tail
    tail_z = -length / 2 + rng.uniform(0.15, 0.3) * root_chord + 0.1
    h_span = span * rng.uniform(0.25, 0.4)
    h_chord = root_chord * rng.uniform(0.4, 0.6)
    fin_on_top = rng.random() < 0.25  # T-tail
    fin_h = rng.uniform(0.2, 0.45)
    fin_chord = h_chord * rng.uniform(1.0, 1.5)
    stab_y = fin_h if fin_on_top else 0.0
    for side in (-1, 1):
        prims.append(_wing(0.02 if fin_on_top else radius * 0.3, stab_y, tail_z + h_chord, h_span, h_chord,
                           h_chord * 0.5, h_span * 0.4, thick * 0.7, 0.0, side))
    # vertical fin: a wing rotated to point up (x -> y)
    fin = _wing(0.0, 0.0, tail_z + fin_chord, fin_h, fin_chord, fin_chord * 0.5, fin_h * 0.6, thick * 0.8,
                0.0, 1)
    tri = fin.tri[..., [1, 0, 2]]  # swap x and y: the span goes up
    tri[..., 1] += radius * 0.6
    prims.append(TriangleMesh(tri))
    # engines under the wings: 0, 2 or 4
    n_eng = int(rng.choice([0, 2, 2, 4]))
    if n_eng:
        er = rng.uniform(0.04, 0.08)
        el = rng.uniform(0.2, 0.35)
        positions = [0.35] if n_eng == 2 else [0.3, 0.6]
        for frac in positions:
            for side in (-1, 1):
                x = side * (radius * 0.5 + frac * span)
                zl = wing_z - frac * sweep
                y = wing_y + frac * span * math.tan(dihedral) - thick / 2 - er * 1.1
                prims.append(cylinder((x, y, zl - el * 0.7), (0, 0, 1), el, er))
    return prims


def make_lamp(rng: np.random.Generator) -> list[Primitive]:
    """Base (disk or box), a straight or bent stem, and a conical shade (open frustum) or a globe."""
    height = rng.uniform(0.5, 1.6)
    prims: list[Primitive] = []
    base_h = rng.uniform(0.02, 0.06)
    if rng.random() < 0.6:
        prims.append(cylinder((0, 0, 0), (0, 1, 0), base_h, rng.uniform(0.1, 0.2)))
    else:
        s = rng.uniform(0.16, 0.32)
        prims.append(box((0, base_h / 2, 0), (s, base_h, s * rng.uniform(0.7, 1.0))))
    stem_r = rng.uniform(0.008, 0.02)
    if rng.random() < 0.65:  # straight stem
        top = np.array([0, height, 0])
        prims.append(cylinder((0, base_h, 0), (0, 1, 0), height - base_h, stem_r))
        axis = np.array([0, -1.0, 0])
    else:  # bent: up, then an arm at an angle
        h1 = (height - base_h) * rng.uniform(0.5, 0.8)
        a = rng.uniform(0.4, 1.2)
        arm = rng.uniform(0.2, 0.5)
        joint = np.array([0, base_h + h1, 0])
        top = joint + arm * np.array([math.sin(a), math.cos(a), 0])
        prims.append(cylinder((0, base_h, 0), (0, 1, 0), h1, stem_r))
        prims.append(cylinder(joint, top - joint, arm, stem_r))
        prims.append(sphere(joint, stem_r * 1.6))
        axis = np.array([math.sin(a) * 0.5, -1.0, 0])
    if rng.random() < 0.75:  # shade: an open frustum hanging from the top, wider at the bottom
        r_top = rng.uniform(0.04, 0.12)
        r_bot = r_top + rng.uniform(0.05, 0.2)
        shade_h = rng.uniform(0.12, 0.35)
        axis = axis / np.linalg.norm(axis)
        start = top - axis * shade_h * 0.25
        prims.append(Frustum(start, axis, shade_h, r_top, r_bot, caps="none"))
    else:
        prims.append(sphere(top, rng.uniform(0.08, 0.16)))
    return prims


def make_mug(rng: np.random.Generator) -> list[Primitive]:
    """Cylindrical or slightly conical body open at the top, and a half-torus handle."""
    h = rng.uniform(0.25, 0.45)
    r0 = rng.uniform(0.10, 0.18)
    r1 = r0 * rng.uniform(0.9, 1.25)
    prims: list[Primitive] = [Frustum((0, 0, 0), (0, 1, 0), h, r0, r1, caps="bottom")]
    R = h * rng.uniform(0.25, 0.35)
    r = rng.uniform(0.012, 0.025)
    centre = (max(r0, r1) - R * 0.25, h * rng.uniform(0.45, 0.6), 0)
    # a 216-degree arc in the xy plane centred on +x: it bulges out of the body, its ends inside the wall
    prims.append(Torus(centre, R, r, angle=math.pi * 1.2))
    return prims


def make_bottle(rng: np.random.Generator) -> list[Primitive]:
    """Body cylinder, a conical shoulder, a neck and a cap."""
    body_h = rng.uniform(0.3, 0.7)
    r = rng.uniform(0.08, 0.16)
    shoulder = rng.uniform(0.05, 0.2)
    neck_r = r * rng.uniform(0.2, 0.45)
    neck_h = rng.uniform(0.05, 0.2)
    prims: list[Primitive] = [cylinder((0, 0, 0), (0, 1, 0), body_h, r, caps="bottom"),
                              Frustum((0, body_h, 0), (0, 1, 0), shoulder, r, neck_r, caps="none"),
                              cylinder((0, body_h + shoulder, 0), (0, 1, 0), neck_h, neck_r, caps="none")]
    cap_h = rng.uniform(0.02, 0.05)
    prims.append(cylinder((0, body_h + shoulder + neck_h, 0), (0, 1, 0), cap_h, neck_r * 1.15))
    return prims


MAKERS = {"chair": make_chair, "table": make_table, "airplane": make_airplane, "lamp": make_lamp,
          "mug": make_mug, "bottle": make_bottle}


def _rng(category: str, index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(category.encode()), int(index)])


def make_primitives(category: str, index: int, seed: int = 0) -> list[Primitive]:
    """The primitives of shape ``index`` of ``category`` (deterministic in ``(category, index, seed)``)."""
    if category not in MAKERS:
        raise ValueError(f"category must be one of {list(MAKERS)}, got {category!r}")
    return MAKERS[category](_rng(category, index, seed))


def generate_shape(category: str, index: int, seed: int = 0, num_points: int = CLOUD_SIZE) -> np.ndarray:
    """The raw point cloud of shape ``index`` of ``category``: ``(num_points, 3)`` float32, uniform by area.

    Deterministic in ``(category, index, seed, num_points)``; a few ms for 15,000 points.

    Raises:
        ValueError: unknown category.

    Taught in chapter 5.
    """
    if category not in MAKERS:
        raise ValueError(f"category must be one of {list(MAKERS)}, got {category!r}")
    rng = _rng(category, index, seed)
    prims = MAKERS[category](rng)
    return sample_primitives(prims, num_points, rng)


class Shapes3D(PointCloudDataset):
    """Procedural 3D shapes, one or several categories, as a point-cloud dataset (see ``gfcore.data.base``).

    Each category has ``shapes_per_category`` shapes (index space); the splits are disjoint index ranges:
    train the first 80%, val the next 10%, test the last 10%. Each shape is a 15,000-point cloud like PC15k:
    points 0..9,999 the train pool, 10,000..14,999 the test pool.

    Args:
        categories: names from :data:`CATEGORIES` (a single string is accepted).
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_points: points per item ``N``.
        num_shapes: keep only the first ``num_shapes`` shapes of the split *per category* (``None``: all).
        normalize: ``"shape_bbox"`` (default), ``"shape_unit"``, ``"global"`` or ``"none"``.
        stats: global statistics for ``normalize="global"`` (default: computed on the train split).
        sample: ``"random"``, ``"first"`` or ``"auto"`` (random on train, first otherwise).
        pool: ``"train"``, ``"test"`` or ``"auto"`` (the train pool on train, the test pool otherwise).
        seed: picks the family of shapes (what the data is; not the random draws).
        generator: optional ``torch.Generator`` for the random draws (default: torch's global RNG).
        shapes_per_category: size of each category's index space (default 500).

    Items: ``{"points": (N, 3), "shift": (1, 3), "scale": (1, 1), "idx": int, "label": int}``, ``label`` the
    category's position in ``categories``.

    Taught in chapter 5.
    """

    dim = 3

    def __init__(self, categories: Sequence[str] | str = ("chair",), split: str = "train",
                 num_points: int = 2048, num_shapes: int | None = None, normalize: str = "shape_bbox",
                 stats=None, sample: str = "auto", pool: str = "auto", seed: int = 0,
                 generator: torch.Generator | None = None,
                 shapes_per_category: int = 500):
        if isinstance(categories, str):
            categories = (categories,)
        categories = tuple(categories)
        if not categories:
            raise ValueError("categories must name at least one category")
        for c in categories:
            if c not in MAKERS:
                raise ValueError(f"unknown category {c!r}; valid categories: {list(MAKERS)}")
        if split not in SPLIT_FRACTIONS:
            raise ValueError(f"split must be one of {list(SPLIT_FRACTIONS)}, got {split!r}")
        if isinstance(shapes_per_category, bool) or not isinstance(shapes_per_category, int) \
                or shapes_per_category < 10:
            raise ValueError(f"shapes_per_category must be an int >= 10, got {shapes_per_category!r}")
        lo, hi = SPLIT_FRACTIONS[split]
        start, stop = round(lo * shapes_per_category), round(hi * shapes_per_category)
        if num_shapes is not None:
            if isinstance(num_shapes, bool) or not isinstance(num_shapes, int) or num_shapes < 1:
                raise ValueError(f"num_shapes must be an int >= 1 or None, got {num_shapes!r}")
            stop = min(stop, start + num_shapes)
        self.categories = categories
        self.shapes_per_category = shapes_per_category
        self.num_shapes = num_shapes
        self._kwargs = dict(categories=categories, num_points=num_points, num_shapes=num_shapes,
                            normalize=normalize, sample=sample, pool=pool, seed=seed,
                            shapes_per_category=shapes_per_category)
        self.items = [(ci, c, i) for ci, c in enumerate(categories) for i in range(start, stop)]
        self._length = len(self.items)
        self._setup(split=split, num_points=num_points, normalize=normalize, stats=stats, sample=sample,
                    pool=pool, seed=seed, generator=generator, cloud_size=CLOUD_SIZE,
                    pools={"train": TRAIN_POOL, "test": TEST_POOL})

    def _full_cloud(self, index):
        _, category, i = self.items[index]
        return generate_shape(category, i, self.seed)

    def _label(self, index):
        return self.items[index][0]

    def _train_split(self):
        return Shapes3D(**{**self._kwargs, "split": "train", "num_shapes": None, "normalize": "none"})

    def extra_repr(self):
        return f"categories={list(self.categories)}"
