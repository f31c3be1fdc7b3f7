"""A procedural 3D shape family: chairs, tables, airplanes, lamps, mugs and bottles built from primitives.

A stand-in for ShapeNet that needs no download: each category is a small grammar of parametric primitives
(boxes and other convex hexahedra, cylinders, cones and frusta, spheres, ellipsoids, torus handles) with
random proportions, so shapes vary within a category (chair backs of random height and tilt, four legs or a
pedestal, armrests or none; swept and tapered airplane wings, engines or none; ...) and differ between
categories.

Surfaces are sampled **uniformly by area** (:func:`gfcore.data.primitives.sample_primitives`: the number of
points per primitive is multinomial in the primitives' exact areas, then each primitive is sampled uniformly on
its own surface). Overlapping primitives are not trimmed, so hidden parts (a leg's top inside the seat) carry
points too, as in a union of parts. The primitives live in :mod:`gfcore.data.primitives`; this module holds the
category grammars and the dataset.

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

from gfcore import _checks
from gfcore.data.base import PointCloudDataset
from gfcore.data.primitives import (
    Ellipsoid,
    Frustum,
    Primitive,
    Torus,
    TriangleMesh,
    box,
    cylinder,
    frame_from_axis,
    hexahedron,
    rot_x,
    rot_y,
    sample_primitives,
    sphere,
)

CATEGORIES = ("chair", "table", "airplane", "lamp", "mug", "bottle")
CLOUD_SIZE = 15000
TRAIN_POOL = slice(0, 10000)
TEST_POOL = slice(10000, 15000)
SPLIT_FRACTIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


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
    _checks.choice("category", category, MAKERS)
    return MAKERS[category](_rng(category, index, seed))


def generate_shape(category: str, index: int, seed: int = 0, num_points: int = CLOUD_SIZE) -> np.ndarray:
    """The raw point cloud of shape ``index`` of ``category``: ``(num_points, 3)`` float32, uniform by area.

    Deterministic in ``(category, index, seed, num_points)``; a few ms for 15,000 points.

    Raises:
        ValueError: unknown category.

    Taught in chapter 5.
    """
    _checks.choice("category", category, MAKERS)
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
        categories = _checks.names("categories", categories, MAKERS)
        _checks.choice("split", split, SPLIT_FRACTIONS)
        _checks.int_at_least("shapes_per_category", shapes_per_category, 10)
        _checks.int_at_least("num_shapes", num_shapes, 1, optional=True)
        lo, hi = SPLIT_FRACTIONS[split]
        start, stop = round(lo * shapes_per_category), round(hi * shapes_per_category)
        if num_shapes is not None:
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
