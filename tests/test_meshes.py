"""gfcore.data.meshes: clouds sampled from triangle meshes, and meshes bundled in installed wheels."""
import numpy as np
import pytest
import torch

from gfcore.data import meshes, primitives


def unit_cube():
    v = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], dtype=np.float64)
    return v, primitives._HEX_FACES.copy()


def test_sample_mesh_unit_cube_faces_equal():
    v, f = unit_cube()
    p = meshes.sample_mesh(v, f, 12000, generator=torch.Generator().manual_seed(0))
    assert p.shape == (12000, 3) and p.dtype == torch.float64
    on = (p.abs() < 1e-12) | ((p - 1).abs() < 1e-12)
    assert on.any(dim=1).all() and ((p >= 0) & (p <= 1)).all()
    counts = torch.stack([(p[:, k] < 1e-12).sum() for k in range(3)] + [((p[:, k] - 1).abs() < 1e-12).sum()
                                                                        for k in range(3)]).double()
    sixth = torch.full((6,), 1 / 6, dtype=torch.float64)
    torch.testing.assert_close(counts / 12000, sixth, atol=0.015, rtol=0)
    again = meshes.sample_mesh(v, f, 12000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(p, again)


def test_sample_mesh_known_area_split():
    # two triangles in the plane z=0: areas 0.5 (x<=1) and 1.5 (x>=1): a quarter / three quarters of the
    # points
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [4, 0, 0], [1, 1, 0]], dtype=torch.float32)
    f = torch.tensor([[0, 1, 2], [3, 4, 5]])
    torch.testing.assert_close(meshes.triangle_areas(v, f), torch.tensor([0.5, 1.5]))
    p = meshes.sample_mesh(v, f, 20000, generator=torch.Generator().manual_seed(1))
    assert p.dtype == torch.float32 and (p[:, 2] == 0).all()
    first = (p[:, 0] + p[:, 1] <= 1 + 1e-6) & (p[:, 0] >= -1e-6) & (p[:, 1] >= -1e-6)
    assert abs(first.double().mean().item() - 0.25) < 0.015
    second = ~first
    assert (p[second, 1] <= 1 + 1e-6).all() and (p[second, 0] >= 1 - 1e-6).all()


def test_sample_mesh_errors():
    v, f = unit_cube()
    with pytest.raises(ValueError, match="num_points"):
        meshes.sample_mesh(v, f, 0)
    with pytest.raises(ValueError, match="faces index"):
        meshes.sample_mesh(v, f + 10, 5)
    with pytest.raises(TypeError, match="integer"):
        meshes.sample_mesh(v, f.astype(float), 5)
    with pytest.raises(ValueError, match="zero area"):
        meshes.sample_mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]), 5)
    with pytest.raises(ValueError, match="vertices"):
        meshes.sample_mesh(np.zeros((3, 2)), np.array([[0, 1, 2]]), 5)


@pytest.mark.parametrize("name", ["airplane", "ant", "nut", "sphere", "globe", "bunny"])
def test_bundled_meshes_ship_offline(name):
    pytest.importorskip("pyvista")
    if name == "bunny":
        pytest.importorskip("pymeshfix")
    v, f = meshes.bundled_mesh(name)
    assert v.ndim == 2 and v.shape[1] == 3 and f.ndim == 2 and f.shape[1] == 3
    assert f.min() >= 0 and f.max() < len(v)
    assert meshes.sample_mesh(v, f, 100).shape == (100, 3)
    with pytest.raises(ValueError, match="valid names"):
        meshes.bundled_mesh("teapot")


def test_sample_mesh_is_in_random_order_and_areas_once():
    v, f = unit_cube()
    p = meshes.sample_mesh(v, f, 600, generator=torch.Generator().manual_seed(2))
    first_faces = (p[:100, 0] < 1e-12).double().mean()                    # face x = 0 holds 1/6 of every slice
    assert 0.05 < float(first_faces) < 0.35
    torch.testing.assert_close(meshes.triangle_areas(v, f), torch.full((12,), 0.5, dtype=torch.float64))
