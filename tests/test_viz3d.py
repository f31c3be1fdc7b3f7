"""gfcore.viz3d: off-screen 3D renders (pyvista/VTK with EGL): images show the clouds, errors name the problem."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gfcore import viz3d  # noqa: E402

pytest.importorskip("pyvista")


def _ink(image):
    """Fraction of non-white pixels."""
    return float((image.astype(int).sum(-1) < 3 * 250).mean())


def test_render_clouds_draws_each_panel():
    gen = torch.Generator().manual_seed(0)
    cloud = torch.randn(3000, 3, generator=gen) * 0.4
    image = viz3d.render_clouds([cloud, cloud[:30]], window_size=(160, 120))
    assert image.shape == (120, 320, 3) and image.dtype == np.uint8
    left, right = image[:, :160], image[:, 160:]
    assert _ink(left) > 0.05                     # a dense cloud covers the panel
    assert 0 < _ink(right) < _ink(left) / 3      # 30 points leave most of it white


def test_render_camera_moves_the_picture():
    cloud = torch.tensor([[0.8, 0.0, 0.0]] * 5 + [[0.0, 0.0, 0.0]] * 5)
    front = viz3d.render_clouds(cloud, window_size=(100, 100), azimuth=0.0, elevation=0.0)
    side = viz3d.render_clouds(cloud, window_size=(100, 100), azimuth=90.0, elevation=0.0)
    assert not np.array_equal(front, side)


def test_render_meshes_and_bad_faces():
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]) - 0.25
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    assert _ink(viz3d.render_meshes((verts, faces), window_size=(100, 100))) > 0.01
    with pytest.raises(ValueError, match="faces"):
        viz3d.render_meshes((verts, np.array([[0, 1, 7]])))


def test_bad_clouds_raise():
    with pytest.raises(ValueError, match="clouds"):
        viz3d.render_clouds([])
    with pytest.raises(ValueError, match=r"clouds\[0\]"):
        viz3d.render_clouds(torch.zeros(10, 2))
    with pytest.raises(ValueError, match="titles"):
        viz3d.render_clouds([torch.zeros(4, 3)], titles=["a", "b"])


def test_interactive_clouds_is_self_contained_html():
    html = viz3d.interactive_clouds(torch.rand(200, 3) - 0.5, window_size=(120, 120)).data
    assert html.startswith("<div><iframe srcdoc=") and "vtk" in html.lower()
    assert len(html) > 100_000  # the vtk.js viewer is embedded, nothing is fetched


def test_interactive_meshes_and_scene_arguments():
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]) - 0.25
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    html = viz3d.interactive_meshes((verts, faces), window_size=(100, 100)).data
    assert html.startswith("<div><iframe srcdoc=") and 'width="100"' in html
    with pytest.raises(ValueError, match="clouds or meshes"):
        viz3d.scene()
    with pytest.raises(ValueError, match="meshes is empty"):
        viz3d.render_meshes([])


def test_show_image():
    fig = viz3d.show_image(np.zeros((20, 30, 3), dtype=np.uint8), title="t")
    assert fig.axes[0].get_title() == "t"
    with pytest.raises(ValueError, match="image"):
        viz3d.show_image(np.zeros((20, 30)))
