"""Tests for gfcore.diagrams: the drawing primitives and each schematic figure (they draw, and hold their labels)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gfcore import diagrams  # noqa: E402
from gfcore.diagrams import _draw  # noqa: E402


def texts(fig) -> list[str]:
    """Every text artist's string in ``fig`` (axes texts, titles, figure texts)."""
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# -- primitives ---------------------------------------------------------------------------------------------

def test_canvas_is_square_tick_free_and_frameless():
    fig, ax = _draw.canvas(6, 2)
    assert ax.get_xlim() == (0, 6) and ax.get_ylim() == (0, 2)
    assert ax.get_aspect() == 1.0
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert not any(s.get_visible() for s in ax.spines.values())
    assert fig.get_size_inches()[0] == pytest.approx(6.0)
    fig2, ax2 = _draw.canvas(14, 2)  # wide drawings are scaled to 7 inches
    assert tuple(fig2.get_size_inches()) == pytest.approx((7.0, 1.0))
    _, ax3 = _draw.canvas(3, 1, ax=ax2)  # an existing axes is reused
    assert ax3 is ax2 and ax2.get_xlim() == (0, 3)
    with pytest.raises(ValueError, match="width"):
        _draw.canvas(0, 1)


def test_box_holds_its_label_and_its_sides():
    fig, ax = _draw.canvas(4, 2)
    b = _draw.box(ax, (2, 1), "encoder", width=1.6, height=0.8, color="network")
    assert b.text.get_text() == "encoder" and "encoder" in texts(fig)
    assert b.left == (1.2, 1.0) and b.right == (2.8, 1.0) and b.top == (2.0, 1.4) and b.bottom == (2.0, 0.6)
    assert b.side("center") == (2.0, 1.0)
    # the drawn patch lies inside the requested box and nearly fills it
    bb = b.patch.get_extents().transformed(ax.transData.inverted())
    assert 1.15 <= bb.x0 <= 1.3 and 2.7 <= bb.x1 <= 2.85 and 0.55 <= bb.y0 <= 0.7 and 1.3 <= bb.y1 <= 1.45
    # tinted fill, role-coloured edge
    edge = matplotlib.colors.to_rgb(_draw.COLORS["network"])
    assert b.patch.get_edgecolor()[:3] == pytest.approx(edge)
    assert b.patch.get_facecolor()[3] < 0.5
    with pytest.raises(ValueError, match="side"):
        b.side("middle")
    with pytest.raises(ValueError, match="height"):
        _draw.box(ax, (1, 1), "x", height=-1)
    with pytest.raises(ValueError, match="xy"):
        _draw.box(ax, (1, float("nan")), "x")


@pytest.mark.parametrize("curve", [0.0, 0.4, -0.4])
def test_arrow_label_sits_on_the_outer_side(curve):
    fig, ax = _draw.canvas(4, 2)
    patch = _draw.arrow(ax, (1, 1), (3, 1), label="z", curve=curve)
    assert patch in ax.patches and "z" in texts(fig)
    (label,) = [t for t in ax.texts if t.get_text() == "z"]
    x, y = label.get_position()
    assert x == pytest.approx(2.0)
    # a straight or left-bent (negative rad) arrow has its label above, a right-bent one below
    assert (y > 1.0) == (curve <= 0)
    assert abs(y - 1.0) >= 0.15 + abs(curve) * 2 / 2 - 1e-9
    with pytest.raises(ValueError, match="same point"):
        _draw.arrow(ax, (1, 1), (1, 1))


def test_cloud_glyph_fits_its_disc():
    fig, ax = _draw.canvas(4, 2)
    sc = _draw.cloud(ax, (2, 1), radius=0.5, num_points=40, seed=3)
    pts = sc.get_offsets()
    assert pts.shape == (40, 2)
    r = np.hypot(pts[:, 0] - pts[:, 0].mean(), pts[:, 1] - pts[:, 1].mean())
    assert r.max() == pytest.approx(0.5)
    assert np.allclose(pts, _draw.cloud(ax, (2, 1), radius=0.5, num_points=40, seed=3).get_offsets())
    # given points (a tensor, any scale) are centred and scaled; their shape is kept
    square = torch.tensor([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    got = _draw.cloud(ax, (1, 1), points=square, radius=0.2).get_offsets()
    assert np.allclose(got, [[0.8586, 0.8586], [1.1414, 0.8586], [1.1414, 1.1414], [0.8586, 1.1414]], atol=1e-4)
    with pytest.raises(ValueError, match="points"):
        _draw.cloud(ax, (1, 1), points=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="num_points"):
        _draw.cloud(ax, (1, 1), num_points=0)


def test_note_and_package_exports():
    fig, ax = _draw.canvas(2, 1)
    t = _draw.note(ax, (1, 0.5), r"$\sigma_1$", color="field")
    assert t.get_text() == r"$\sigma_1$" and t.get_color() == _draw.COLORS["field"]
    for name in ("canvas", "box", "arrow", "cloud", "note", "COLORS", "FONT", "Box"):
        assert getattr(diagrams, name) is getattr(_draw, name)


# -- annealing (chapter 3) ----------------------------------------------------------------------------------

def test_draw_annealing_panels_labels_and_samples_on_the_shape():
    from gfcore.data import shapes2d
    from gfcore.diagrams.annealing import _to_panel

    sigmas = (1.0, 0.2, 0.03)
    fig = diagrams.draw_annealing(sigmas=sigmas, num_samples=10, steps_per_sigma=10, resolution=24, seed=1)
    (ax,) = fig.axes
    labels = texts(fig)
    for i, s in enumerate(sigmas):
        assert rf"$\sigma_{{{i + 1}}} = {s:.3g}$" in labels
    assert sum(t == r"$\sigma \downarrow$" for t in labels) == len(sigmas) - 1    # one arrow between panels
    assert sorted(im.get_gid() for im in ax.images) == [f"density-{i}" for i in range(3)]
    dots = {c.get_gid(): c.get_offsets() for c in ax.collections}
    assert all(dots[f"samples-{i}"].shape == (10, 2) for i in range(3))
    # a level ends where the next one starts
    assert np.allclose(dots["samples-0"] - _to_panel(np.zeros(2), 0), dots["starts-1"] - _to_panel(np.zeros(2), 1))
    # drawn from the real sampler: after the last level the samples lie on the star, not where they started
    outline = shapes2d.dense("star", 4000).double().numpy()

    def to_world(xy, i):
        return (xy - _to_panel(np.full(2, -1.5), i)) * (3.0 / 3.0) - 1.5  # panel side 3 = world box side 3

    def distance(xy):
        return np.sqrt(((xy[:, None] - outline[None]) ** 2).sum(-1)).min(1)

    assert distance(to_world(dots["samples-2"], 2)).max() < 0.1
    assert distance(to_world(dots["starts-0"], 0)).mean() > 0.2
    # the same seed draws the same figure, another seed another one
    again = diagrams.draw_annealing(sigmas=sigmas, num_samples=10, resolution=24, seed=1).axes[0]
    other = diagrams.draw_annealing(sigmas=sigmas, num_samples=10, resolution=24, seed=2).axes[0]
    final = {name: {c.get_gid(): c.get_offsets() for c in a.collections}["samples-2"]
             for name, a in (("again", again), ("other", other))}
    assert np.allclose(final["again"], dots["samples-2"]) and not np.allclose(final["other"], dots["samples-2"])


def test_draw_annealing_density_sharpens_and_draws_into_an_axes():
    fig, ax = plt.subplots()
    points = torch.tensor([[0.0, 0.0]], dtype=torch.float64)  # one point: the shading is a disc of radius ~ sigma
    out = diagrams.draw_annealing(points, sigmas=(0.8, 0.1), num_samples=3, resolution=41, ax=ax)
    assert out is fig and len(ax.images) == 2
    shaded = [float((im.get_array() > 0).mean()) for im in ax.images]
    # 8 nats below the peak: r = 4 sigma, a disc of area 16 pi sigma^2 in the 3 x 3 box (clipped by it)
    assert shaded[1] == pytest.approx(16 * np.pi * 0.1 ** 2 / 9, rel=0.15)
    assert shaded[0] > 0.95


@pytest.mark.parametrize("kwargs, match", [
    ({"sigmas": (0.1, 1.0)}, "decreasing"),
    ({"sigmas": (1.0,)}, "at least 2"),
    ({"num_samples": 0}, "num_samples"),
    ({"steps_per_sigma": 1.5}, "steps_per_sigma"),
    ({"resolution": 1}, "resolution"),
    ({"points": torch.zeros(5, 3)}, "points"),
])
def test_draw_annealing_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        diagrams.draw_annealing(**kwargs)


# -- the two-stage generation (chapter 7) ----------------------------------------------------------------------

def test_draw_generation_names_both_stages():
    fig = diagrams.draw_generation()
    labels = " | ".join(texts(fig))
    for word in ("noise", "generator", "code $z$", "annealed Langevin", "uniform prior", "new shape",
                 "encoder", "real codes", "critic", "stage 1", "stage 2"):
        assert word in labels, (word, labels)
    small = diagrams.draw_generation(show_training=False)
    assert "critic" not in " | ".join(texts(small)) and "generator" in " | ".join(texts(small))
    # the same seed draws the same glyphs
    offsets = [c.get_offsets() for c in fig.axes[0].collections]
    again = [c.get_offsets() for c in diagrams.draw_generation().axes[0].collections]
    assert len(offsets) == len(again) and all(np.array_equal(a, b) for a, b in zip(offsets, again))


def test_draw_generation_into_an_axes():
    fig, ax = plt.subplots()
    assert diagrams.draw_generation(ax=ax) is fig and len(fig.axes) == 1


# -- the unsigned distance read off the field (chapter 8) ------------------------------------------------------

def test_draw_unsigned_distance_arrow_ends_on_the_surface_and_profile_tracks_the_distance():
    from gfcore.diagrams import surface

    fig = diagrams.draw_unsigned_distance(sigma=0.1, level=0.1)
    assert len(fig.axes) == 2
    labels = " | ".join(texts(fig))
    for word in ("$\\sigma^2 s(x, \\sigma)", "dist$(x, S)$", "double surface", "level"):
        assert word in labels, (word, labels)
    # the main arrow goes from x to the weighted mean, which lies within a small distance of the curve
    main = [a for a in fig.axes[0].texts if a.get_text() == "" and a.arrow_patch.get_linewidth() > 1.5]
    assert len(main) == 1
    foot = np.asarray(main[0].xy)
    xs = np.linspace(-2, 2, 4001)
    gap = np.hypot(xs - foot[0], surface._curve(xs) - foot[1]).min()
    start = np.asarray(main[0].xyann)
    reach = np.hypot(*(foot - start))
    dist = np.hypot(xs - start[0], surface._curve(xs) - start[1]).min()
    assert gap < 0.03 and abs(reach - dist) < 0.03, (gap, reach, dist)
    # the profile: u follows the true distance, and the level is met exactly twice (one point on each side)
    true_line, u_line = fig.axes[1].lines[:2]
    assert np.abs(u_line.get_ydata() - true_line.get_ydata()).max() < 0.05
    crossings = fig.axes[1].collections[0].get_offsets()
    assert len(crossings) == 2 and crossings[0, 0] < 0 < crossings[1, 0]


def test_draw_unsigned_distance_into_an_axes_and_bad_input():
    fig, ax = plt.subplots()
    assert diagrams.draw_unsigned_distance(ax=ax) is fig and len(fig.axes) == 1
    for kwargs, match in (({"sigma": 0}, "sigma"), ({"level": -1}, "level"), ({"num_points": 3}, "num_points")):
        with pytest.raises(ValueError, match=match):
            diagrams.draw_unsigned_distance(**kwargs)


# -- the auto-encoder (chapter 4) --------------------------------------------------------------------------------

def test_draw_autoencoder_names_its_parts_and_the_code_flows_into_the_decoder():
    from matplotlib.patches import FancyBboxPatch

    fig = diagrams.draw_autoencoder()
    labels = " | ".join(texts(fig))
    for word in ("point cloud $X$", "PointNet encoder", "max over the points", "code $z$", "query point $x$",
                 "noise level $\\sigma$", "decoder $D_\\theta(x, \\sigma, z)$", "$c = [x, z, \\sigma]$",
                 "displacement", "training", "sampling"):
        assert word in labels, (word, labels)
    ax = fig.axes[0]

    def box_extent(word):
        """(x0, x1) of the box whose label starts with ``word``."""
        (text,) = [t for t in ax.texts if t.get_text().startswith(word)]
        x, y = text.get_position()
        (patch,) = [p for p in ax.patches if isinstance(p, FancyBboxPatch)
                    and p.get_extents().transformed(ax.transData.inverted()).contains(x, y)]
        bb = patch.get_extents().transformed(ax.transData.inverted())
        return bb.x0, bb.x1

    (z_label,) = [t for t in ax.texts if t.get_text() == "$z$"]
    arrow_x = z_label.get_position()[0] + 0.12        # the label sits 0.12 left of the vertical arrow
    code, decoder = box_extent("code $z$"), box_extent("decoder $D")
    assert code[0] < arrow_x < code[1] and decoder[0] < arrow_x < decoder[1], (arrow_x, code, decoder)
    small = diagrams.draw_autoencoder(show_training=False)
    assert "training" not in " | ".join(texts(small)) and "PointNet encoder" in " | ".join(texts(small))


def test_draw_autoencoder_into_an_axes():
    fig, ax = plt.subplots()
    assert diagrams.draw_autoencoder(ax=ax) is fig and len(fig.axes) == 1
