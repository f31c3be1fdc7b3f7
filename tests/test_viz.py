"""Tests for gfcore.viz (Agg backend, small sizes)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gfcore import fields, viz  # noqa: E402
from gfcore.data import shapes2d  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
    yield ax
    plt.close(fig)


@pytest.fixture
def circle_points():
    return shapes2d.sample("circle", 64, generator=torch.Generator().manual_seed(0))


def test_grid_layout():
    x, xx, yy = viz.grid((-1, 1, -2, 2), 5)
    assert x.shape == (25, 2) and xx.shape == yy.shape == (5, 5)
    assert torch.allclose(x[7], torch.tensor([xx[1, 2], yy[1, 2]], dtype=torch.float32))
    assert xx.min() == -1 and xx.max() == 1 and yy.min() == -2 and yy.max() == 2
    with pytest.raises(ValueError, match="extent"):
        viz.grid((1, -1, 0, 1))
    with pytest.raises(ValueError, match="resolution"):
        viz.grid(resolution=1)


def test_plot_field_closed_form_stream(ax, circle_points):
    art = viz.plot_field(ax, lambda x, s: fields.smoothed_score(x, circle_points, s), sigma=0.1,
                         resolution=12, colorbar=True)
    assert len(art.lines.get_segments()) > 0


def test_plot_field_closed_form_points_inward(ax, circle_points):
    """Outside the circle the closed-form field points back towards it."""
    q = viz.plot_field(ax, lambda x, s: fields.smoothed_score(x, circle_points, s), sigma=0.1, resolution=15,
                       kind="quiver")
    xy = q.XY
    r = np.linalg.norm(xy, axis=1)
    radial = (q.U * xy[:, 0] + q.V * xy[:, 1]) / np.maximum(r, 1e-9)
    assert (radial[r > 1.0] < -0.9).all()


def test_plot_field_constant_quiver(ax):
    seen = {}

    def score_fn(x, sigma):
        seen["x"], seen["sigma"], seen["grad"] = x.shape, sigma, torch.is_grad_enabled()
        return torch.tensor([3.0, 4.0]).expand_as(x).clone()

    q = viz.plot_field(ax, score_fn, sigma=0.5, resolution=6, kind="quiver")
    assert seen["x"] == (1, 36, 2) and seen["sigma"].shape == (1,) and float(seen["sigma"]) == 0.5
    assert seen["grad"] is False
    np.testing.assert_allclose(q.U, 0.6, rtol=1e-6)
    np.testing.assert_allclose(q.V, 0.8, rtol=1e-6)
    q2 = viz.plot_field(ax, score_fn, resolution=6, kind="quiver", normalize=False, color_by_magnitude=False)
    assert seen["sigma"] is None
    np.testing.assert_allclose(q2.U, 3.0)
    np.testing.assert_allclose(q2.V, 4.0)


def test_plot_field_errors(ax):
    with pytest.raises(ValueError, match="kind"):
        viz.plot_field(ax, lambda x, s: x, kind="arrows")
    with pytest.raises(ValueError, match="shape"):
        viz.plot_field(ax, lambda x, s: x[..., :1], resolution=4)
    with pytest.raises(ValueError, match="NaN"):
        viz.plot_field(ax, lambda x, s: x * float("nan"), resolution=4)
    with pytest.raises(ValueError, match="sigma"):
        viz.plot_field(ax, lambda x, s: x, sigma=-1.0, resolution=4)


def test_plot_points_and_axes(ax):
    p = torch.randn(10, 2, requires_grad=True)
    sc = viz.plot_points(ax, p, label="pts")
    assert sc.get_offsets().shape == (10, 2)
    viz.plot_points(ax, np.zeros((3, 2)))
    assert viz.setup_axes(ax, (-1, 1, -1, 1), "t") is ax
    assert ax.get_xlim() == (-1, 1) and ax.get_title() == "t" and len(ax.get_xticks()) == 0
    with pytest.raises(ValueError, match="points"):
        viz.plot_points(ax, torch.zeros(3, 3))


def _num_frames(html: str) -> int:
    return html.count("data:image/png;base64")


def test_animate_trajectory_capped_and_html():
    traj = torch.randn(200, 8, 2) * 0.5
    anim = viz.animate_trajectory(traj, points=torch.zeros(4, 2), figsize=(1.5, 1.5), dpi=30,
                                  title_fn=lambda t: f"t={t}")
    fig = anim._fig
    html = viz.to_html(anim).data
    assert "<script" in html
    assert "font-awesome" in anim.to_jshtml()                          # matplotlib links a CDN stylesheet ...
    assert "<link" not in html and "http" not in html.split("<script")[0]  # ... which the book's player drops
    assert _num_frames(html) == viz.MAX_FRAMES
    assert not plt.fignum_exists(fig.number)  # closed: no duplicate static image
    small = viz.animate_trajectory(traj[:5], figsize=(1.5, 1.5), dpi=30, max_frames=10)
    assert _num_frames(viz.to_html(small).data) == 5
    with pytest.raises(ValueError, match="trajectory"):
        viz.animate_trajectory(torch.zeros(3, 1, 4, 2))


def test_frame_indices():
    idx = viz._frame_indices(1000, 60)
    assert len(idx) == 60 and idx[0] == 0 and idx[-1] == 999
    assert viz._frame_indices(7, 60) == list(range(7))


def test_animate_sigma(circle_points):
    anim = viz.animate_sigma(circle_points, [0.5, 0.2, 0.05], resolution=8, figsize=(1.5, 1.5), dpi=30)
    html = viz.to_html(anim).data
    assert "<script" in html and _num_frames(html) == 3
    with pytest.raises(ValueError, match="sigmas"):
        viz.animate_sigma(circle_points, [0.1, -0.1])


def test_field_sigma_slider(circle_points):
    ipywidgets = pytest.importorskip("ipywidgets")
    w = viz.field_sigma_slider(circle_points, torch.tensor([0.3, 0.1, 0.03]), resolution=6,
                               figsize=(1.5, 1.5))
    assert isinstance(w, ipywidgets.interactive)
    slider = w.children[0]
    assert len(slider.options) == 3 and slider.value == pytest.approx(0.1)
    plt.close("all")


def test_loss_curve(ax):
    losses = torch.linspace(1.0, 0.1, 100)
    lines = viz.loss_curve(ax, losses, smooth=10, label="dsm")
    assert len(lines) == 2 and ax.get_yscale() == "log"
    assert len(lines[1].get_xdata()) == 91
    fig, ax2 = plt.subplots()
    assert len(viz.loss_curve(ax2, [-1.0, 2.0], smooth=1)) == 1 and ax2.get_yscale() == "linear"
    plt.close(fig)
    with pytest.raises(ValueError, match="losses"):
        viz.loss_curve(ax, [])
