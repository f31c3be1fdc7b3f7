"""gfcore.surface: unsigned distance, ray casting and marching cubes of the closed-form field of a sphere,
checked against geometry (analytic distances, ray-sphere intersections, Euler characteristic), dense against
narrow-band and chunked against unchunked evaluation, files against a reader, and bad input."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from gfcore import fields, surface

R = 0.6          # sphere radius
SIGMA = 0.05     # field width: points are spaced ~0.02 < SIGMA, and SIGMA << R
N = 8000         # points on the sphere
# Sampling ripple of the field's surface estimate: the weighted mean of the ~2 pi sigma^2 rho points under the
# kernel (rho = N / (4 pi R^2) per unit area) wanders by ~sigma / sqrt(2 pi sigma^2 rho) = R sqrt(2 / N) ~
# 0.0095.
RIPPLE = R * math.sqrt(2 / N)


def _sphere(n, *, radius=R, seed=0, centre=(0.0, 0.0, 0.0)):
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1) * radius
    return p + torch.tensor(centre, dtype=torch.float64)


@pytest.fixture(scope="module")
def sphere():
    """A sphere sampled with N points and its closed-form score callable (float64, direct: deterministic)."""
    points = _sphere(N)
    return points, (lambda x, s: fields.smoothed_score(x, points, s, method="direct"))


def _smooth_sphere_distance(r, radius, sigma):
    """u(r) of a *uniformly* smoothed sphere: |r - R (coth k - 1/k)|, k = r R / sigma^2 (von Mises-Fisher)."""
    k = r * radius / sigma**2
    return (r - radius * (1 / torch.tanh(k) - 1 / k)).abs()


# ---------------------------------------------------------------- unsigned distance

def test_unsigned_distance_of_a_sphere(sphere):
    _, score_fn = sphere
    g = torch.Generator().manual_seed(1)
    r = torch.linspace(0.35, 0.95, 25, dtype=torch.float64)
    x = torch.nn.functional.normalize(torch.randn(25, 3, generator=g, dtype=torch.float64), dim=-1)
    x = x * r[:, None]
    u = surface.unsigned_distance(score_fn, x, SIGMA)
    assert u.shape == (25,)
    # the continuous-sphere formula, up to the sampling of 8,000 points: ripples of a few % of sigma
    torch.testing.assert_close(u, _smooth_sphere_distance(r, R, SIGMA), rtol=0, atol=0.1 * SIGMA)
    # the true distance |r - R|, up to the curvature bias sigma^2 / r (<= 0.007 here) and the same sampling
    # error
    assert ((u - (r - R).abs()).abs() <= SIGMA**2 / r + 0.1 * SIGMA).all()


def test_unsigned_distance_batched_equals_looped_and_chunked(sphere):
    points, score_fn = sphere
    x = _sphere(50, radius=0.8, seed=2).reshape(2, 25, 3)
    sigma = torch.tensor([0.05, 0.1], dtype=torch.float64)
    batched = surface.unsigned_distance(score_fn, x, sigma, chunk_size=7)
    for b in range(2):
        torch.testing.assert_close(batched[b], surface.unsigned_distance(score_fn, x[b], float(sigma[b])))
    # the estimate is sigma^2 |score| by definition
    torch.testing.assert_close(batched[1], 0.01 * fields.smoothed_score(x[1], points, 0.1).norm(dim=-1))


def test_project_to_surface_lands_on_the_zero_set(sphere):
    _, score_fn = sphere
    x = _sphere(200, radius=0.8, seed=3)
    y = surface.project_to_surface(score_fn, x, SIGMA, num_steps=3)
    radius = y.norm(dim=-1)
    # the zero set of u is shrunk by ~ sigma^2 / R (curvature), up to the sampling ripple
    assert (radius - (R - SIGMA**2 / R)).abs().max() < 0.1 * SIGMA
    annealed = surface.project_to_surface(score_fn, x * 2, SIGMA, num_steps=5, sigma_start=0.4)
    assert (annealed.norm(dim=-1) - (R - SIGMA**2 / R)).abs().max() < 0.1 * SIGMA


# ---------------------------------------------------------------- ray casting

def test_rays_hit_a_sphere_where_geometry_says(sphere):
    _, score_fn = sphere
    # rays from z = 3 toward -z, with impact parameters b from the axis; hits for b < R, misses for b > R
    b = torch.tensor([0.0, 0.1, 0.25, 0.4, 0.5, 0.7, 0.9], dtype=torch.float64)
    origins = torch.stack([b, torch.zeros_like(b), torch.full_like(b, 3.0)], dim=-1)
    directions = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).expand(7, 3)
    hits = surface.raycast(score_fn, origins, directions, SIGMA, near=1.5, far=4.5, max_steps=100)
    assert hits.hit.tolist() == [True] * 5 + [False] * 2
    expected = 3.0 - torch.sqrt(R**2 - b[:5] ** 2)                        # ray-sphere intersection
    assert (hits.depth[:5] - expected).abs().max() < 0.02          # ~ sigma^2 / R bias, more on oblique rays
    radius = hits.points[:5].norm(dim=-1)
    assert (radius - R).abs().max() < SIGMA**2 / R + RIPPLE
    radial = hits.points[:5] / radius[:, None]
    # normals read 2 sigma before the hit: direction error ~ RIPPLE / (2 sigma) ~ 0.1 rad
    assert ((hits.normals[:5] * radial).sum(-1) > 0.98).all()              # normals along the radius
    assert ((hits.normals[:5] * directions[:5]).sum(-1) < 0).all()         # facing the ray origin
    assert torch.isnan(hits.points[5:]).all() and torch.isnan(hits.depth[5:]).all()


def test_raycast_batched_per_shape_sigma_and_inside_rays(sphere):
    _, score_fn = sphere
    # rays from inside the sphere hit it from the inside; the normal then faces the centre (the ray origin)
    d = _sphere(6, radius=1.0, seed=4)
    o = torch.zeros(2, 6, 3, dtype=torch.float64)
    hits = surface.raycast(score_fn, o, d.expand(2, 6, 3), torch.tensor([0.05, 0.03], dtype=torch.float64),
                           far=2.0)
    assert hits.hit.all() and hits.depth.shape == (2, 6)
    for s, depth in zip([0.05, 0.03], hits.depth, strict=True):
        assert (depth - (R - s**2 / R)).abs().max() < RIPPLE
    assert ((hits.normals * d).sum(-1) < -0.98).all()


def test_raycast_rejects_the_saddle_between_two_parts():
    """Two spheres, a ray through the middle of the gap: u falls to 0 at the saddle, with no surface there."""
    base = _sphere(500, radius=0.3, seed=5)
    signs = torch.tensor([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (1, -1)],
                         dtype=torch.float64)
    ball = (base[None] * signs[:, None]).reshape(-1, 3)                   # symmetric under every sign flip
    shift = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    points = torch.cat([ball - shift, ball + shift])
    score_fn = lambda x, s: fields.smoothed_score(x, points, s, method="direct")  # noqa: E731
    o = torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    centre = torch.zeros(1, 3, dtype=torch.float64)
    assert surface.unsigned_distance(score_fn, centre, SIGMA).item() < 1e-6    # the gradient vanishes here
    naive = surface.raycast(score_fn, o, d, SIGMA, far=4.0, reject_saddles=False)
    assert naive.hit.item() and naive.points.norm().item() < 0.05                # a false hit in the gap
    checked = surface.raycast(score_fn, o, d, SIGMA, far=4.0)
    assert not checked.hit.item()


def test_render_depth_of_a_sphere(sphere):
    _, score_fn = sphere
    image = surface.render_depth(score_fn, SIGMA, resolution=(12, 16), distance=3.0, fov=40.0, device="cpu",
                                 dtype=torch.float64)
    assert image.depth.shape == (1, 12, 16) and image.normals.shape == (1, 12, 16, 3)
    o, d = surface.camera_rays((12, 16), distance=3.0, fov=40.0, device="cpu", dtype=torch.float64)
    closest = (o - (o * d).sum(-1, keepdim=True) * d).norm(dim=-1).reshape(12, 16)   # ray-centre distance
    # a hit can also be declared where the ray crosses within sigma of the surface: silhouettes grow <= sigma
    assert image.hit[0][closest < R - 0.05].all() and not image.hit[0][closest > R + 1.5 * SIGMA].any()
    assert 0.1 < image.hit[0].float().mean() < 0.3                           # pi R^2 over the view: 0.18
    # depth where the ray meets the sphere (tca: distance along the ray to its closest approach to the centre)
    tca = -(o * d).sum(-1).reshape(12, 16)
    inside = closest < R - 0.1
    cos = (R**2 - closest[inside] ** 2).sqrt() / R                         # of the angle of incidence
    expected = tca[inside] - cos * R
    # radial error: curvature bias plus ripple; along an oblique ray it grows as 1 / cos
    assert ((image.depth[0][inside] - expected).abs() * cos).max() < SIGMA**2 / R + RIPPLE


# ---------------------------------------------------------------- marching cubes

def _edges_closed_and_euler(vertices, faces):
    """Every undirected edge in exactly two faces (a closed surface), and V - E + F over the used vertices."""
    f = faces.numpy()
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    used = len(np.unique(f))
    return bool((counts == 2).all()), used - len(counts) + len(f)


@pytest.fixture(scope="module")
def grids(sphere):
    _, score_fn = sphere
    kw = dict(sigma=SIGMA, resolution=28, bounds=0.9, device="cpu", dtype=torch.float64)
    dense = surface.unsigned_distance_grid(score_fn, **kw, chunk_size=10**6)
    return kw, dense


def test_chunked_grid_equals_unchunked(sphere, grids):
    _, score_fn = sphere
    kw, dense = grids
    assert dense.shape == (1, 28, 28, 28)
    small = dict(sigma=torch.tensor([SIGMA, 0.1], dtype=torch.float64), resolution=9, bounds=0.9,
                 num_shapes=2, device="cpu", dtype=torch.float64)
    whole = surface.unsigned_distance_grid(score_fn, **small, chunk_size=10**6)
    torch.testing.assert_close(surface.unsigned_distance_grid(score_fn, **small, chunk_size=17), whole,
                               rtol=1e-12, atol=1e-12)
    one = surface.unsigned_distance_grid(score_fn, **{**small, "sigma": SIGMA, "num_shapes": 1})
    torch.testing.assert_close(whole[:1], one)                              # batched == one shape
    # grid point [i, j, l] is lo + (i, j, l) * step
    step = 1.8 / 27
    x = torch.tensor([[-0.9 + 3 * step, -0.9 + 20 * step, -0.9 + 9 * step]], dtype=torch.float64)
    torch.testing.assert_close(dense[0, 3, 20, 9], surface.unsigned_distance(score_fn, x, SIGMA)[0])


def test_narrow_band_is_exact_in_the_band(sphere, grids):
    _, score_fn = sphere
    kw, dense = grids
    band = 0.1
    narrow = surface.unsigned_distance_grid(score_fn, **kw, band=band, block=4)
    near = dense <= band + 2 * 1.8 / 27
    assert near.sum() > 1000
    torch.testing.assert_close(narrow[near], dense[near], rtol=1e-12, atol=1e-12)
    assert (narrow[~near] > band).all() and (narrow <= dense + 1e-12).all()   # lower bounds elsewhere
    assert (narrow != dense).sum() > 0.15 * narrow.numel()                    # ... and skipped: cheaper


def test_marching_cubes_of_a_sphere_is_closed_and_on_the_sphere(sphere, grids):
    _, score_fn = sphere
    kw, dense = grids
    level = 2 * 1.8 / 27
    verts, faces = surface.mesh_from_grid(dense[0], bounds=0.9, level=level, dtype=torch.float64)
    assert verts.dtype == torch.float64 and faces.dtype == torch.int64 and faces.shape[1] == 3
    closed, euler = _edges_closed_and_euler(verts, faces)
    assert closed and euler == 2                                              # one closed sphere
    # the outer sheet: u = level outside, i.e. radius ~ R + level - sigma^2 / R, within a grid step
    assert (verts.norm(dim=-1) - (R + level - SIGMA**2 / R)).abs().max() < 0.5 * level
    tri = verts[faces]
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert ((normal * tri.mean(1)).sum(-1) > 0).all()                        # faces point outward
    # the double surface: both sheets, two closed spheres at R +- level
    both_v, both_f = surface.mesh_from_grid(dense[0], bounds=0.9, level=level, keep="all")
    closed, euler = _edges_closed_and_euler(both_v, both_f)
    assert closed and euler == 4
    radius = both_v.norm(dim=-1)
    inner = radius < R
    assert inner.sum() > 0.15 * len(radius)                                 # an inner sheet exists, at u = level
    assert (radius[inner] - (R - level - SIGMA**2 / (R - level))).abs().max() < 0.5 * level
    # one call: narrow-band grid (the same mesh as the dense grid: same faces), then the remedy, the outer sheet
    # projected onto the surface along the field
    proj_v, proj_f = surface.marching_cubes(score_fn, **kw, project_steps=2)
    assert torch.equal(proj_f, faces)
    assert (proj_v.norm(dim=-1) - (R - SIGMA**2 / R)).abs().max() < RIPPLE


def test_support_removes_unsupported_sheets():
    """Analytic unsigned distance of two spheres; support on one of them keeps only its sheet."""
    k, r = 41, 0.25                   # spheres 0.6 apart: more than the support's reach (3 level + 2 steps)
    axis = torch.linspace(-1.0, 1.0, k, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)
    centres = torch.tensor([[-0.55, 0.0, 0.0], [0.55, 0.0, 0.0]], dtype=torch.float64)
    volume = ((grid[..., None, :] - centres).norm(dim=-1) - r).abs().amin(dim=-1)       # (K, K, K)
    level = 2 * 2.0 / (k - 1)
    both_v, both_f = surface.mesh_from_grid(volume, bounds=1.0, level=level)
    assert _edges_closed_and_euler(both_v, both_f) == (True, 4)                        # two closed spheres
    support = _sphere(500, radius=r, centre=(-0.55, 0.0, 0.0))
    both_spheres = torch.cat([support, support + torch.tensor([1.1, 0.0, 0.0], dtype=torch.float64)])
    same = surface.mesh_from_grid(volume, bounds=1.0, level=level, support=both_spheres)
    assert torch.equal(same[0], both_v) and torch.equal(same[1], both_f)           # full support: no change
    one_v, one_f = surface.mesh_from_grid(volume, bounds=1.0, level=level, support=support)
    assert _edges_closed_and_euler(one_v, one_f) == (True, 2)                          # one sphere left
    used = one_v[one_f.unique()].double()
    assert ((used - centres[0]).norm(dim=-1) - (r + level)).abs().max() < 0.5 * level
    with pytest.raises(ValueError, match="support_radius"):
        surface.mesh_from_grid(volume, bounds=1.0, level=level, support=support, support_radius=0.5 * level)
    with pytest.raises(ValueError, match="support"):
        surface.mesh_from_grid(volume, bounds=1.0, level=level, support=support[:, :2])


# ---------------------------------------------------------------- files, pyvista

def _tetrahedron():
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]) - 0.25
    f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return v, f


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_write_mesh_round_trip(tmp_path, suffix):
    v, f = _tetrahedron()
    path = surface.write_mesh(tmp_path / f"tet{suffix}", v, f)
    lines = open(path).read().splitlines()
    if suffix == ".ply":
        start = lines.index("end_header") + 1
        assert "element vertex 4" in lines and "element face 4" in lines
        verts = np.array([list(map(float, line.split())) for line in lines[start:start + 4]])
        faces = np.array([list(map(int, line.split()))[1:] for line in lines[start + 4:]])
    else:
        verts = np.array([list(map(float, line.split()[1:])) for line in lines if line.startswith("v ")])
        faces = np.array([list(map(int, line.split()[1:])) for line in lines if line.startswith("f ")]) - 1
    np.testing.assert_allclose(verts, v.numpy(), atol=1e-6)
    np.testing.assert_array_equal(faces, f.numpy())
    pv = pytest.importorskip("pyvista")
    mesh = pv.read(path)
    assert mesh.n_points == 4 and mesh.n_cells == 4


def test_headless_render_of_an_extracted_mesh(grids, tmp_path):
    """pyvista off-screen (EGL, as gfcore.viz3d): the file is written and the sphere's pixels are in frame."""
    pv = pytest.importorskip("pyvista")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    verts, faces = surface.mesh_from_grid(grids[1][0], bounds=0.9, level=2 * 1.8 / 27)
    mesh = surface.to_polydata(verts, faces)
    assert mesh.n_points == len(verts) and mesh.n_cells == len(faces)
    path = tmp_path / "sphere.png"
    try:
        plotter = pv.Plotter(off_screen=True, window_size=(100, 100))
        plotter.set_background("white")
        plotter.add_mesh(mesh, color="red")
        plotter.camera_position = [(0.0, 0.0, 4.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)]
        image = plotter.screenshot(str(path), return_img=True)
        plotter.close()
    except Exception as err:  # pragma: no cover - depends on the machine's OpenGL
        pytest.skip(f"pyvista cannot render off-screen here: {type(err).__name__}: {err}")
    assert path.stat().st_size > 0
    assert pv.read(str(path)).n_points == 100 * 100                          # the file is the image
    red = (image[..., 0] > 150) & (image[..., 1] < 120)
    rows, cols = np.nonzero(red)
    assert 0.05 < red.mean() < 0.8                                            # the sphere fills part of it
    assert 0 < rows.min() and rows.max() < 99 and 0 < cols.min() and cols.max() < 99   # ... all in frame
    assert rows.min() < 50 < rows.max() and cols.min() < 50 < cols.max()     # ... around the centre


def test_import_loads_no_plotting_library():
    code = ("import sys, gfcore.surface; "
            "print(sorted(m for m in ('matplotlib', 'pyvista', 'vtk', 'gfcore.data', 'gfcore.train') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# ---------------------------------------------------------------- bad input

def test_bad_inputs_raise(sphere):
    _, score_fn = sphere
    x = _sphere(5, seed=7)
    cpu = dict(device="cpu", dtype=torch.float64)
    tet_v, tet_f = _tetrahedron()

    def grid(**kw):
        return surface.unsigned_distance_grid(score_fn, **{"sigma": SIGMA, "resolution": 8, **cpu, **kw})

    def mc(**kw):
        return surface.marching_cubes(score_fn, **{"sigma": SIGMA, "resolution": 8, **cpu, **kw})

    def rays(o=x, d=x, sigma=SIGMA, **kw):
        return surface.raycast(score_fn, o, d, sigma, **kw)

    cases = [
        (lambda: surface.unsigned_distance(score_fn, x, 0.0), ValueError, "sigma"),
        (lambda: surface.unsigned_distance(score_fn, x, -1.0), ValueError, "sigma"),
        (lambda: surface.unsigned_distance(score_fn, x[:, :2], SIGMA), ValueError, "points|d="),
        (lambda: surface.unsigned_distance(score_fn, x[0], SIGMA), ValueError, "x"),
        (lambda: surface.unsigned_distance(score_fn, x, SIGMA, chunk_size=0), ValueError, "chunk_size"),
        (lambda: surface.unsigned_distance(lambda q, s: q[..., :2], x, SIGMA), ValueError, "score_fn"),
        (lambda: surface.project_to_surface(score_fn, x, SIGMA, num_steps=0), ValueError, "num_steps"),
        (lambda: surface.project_to_surface(score_fn, x, SIGMA, sigma_start=0.01), ValueError, "sigma_start"),
        (lambda: grid(resolution=0), ValueError, "resolution"),
        (lambda: grid(resolution=1), ValueError, "resolution"),
        (lambda: grid(resolution=8.0), TypeError, "resolution"),
        (lambda: grid(sigma=0), ValueError, "sigma"),
        (lambda: grid(bounds=(1, -1)), ValueError, "bounds"),
        (lambda: grid(bounds=(0.5, 0.5)), ValueError, "bounds"),
        (lambda: grid(bounds=-1.0), ValueError, "bounds"),
        (lambda: grid(bounds=[[0, 0, 0], [1, 1, 0]]), ValueError, "bounds"),
        (lambda: grid(bounds=(0, 1, 2)), ValueError, "bounds"),
        (lambda: grid(band=0.0), ValueError, "band"),
        (lambda: grid(band=0.1, lipschitz=0.5), ValueError, "lipschitz"),
        (lambda: mc(resolution=-4), ValueError, "resolution"),
        (lambda: mc(sigma=-0.1), ValueError, "sigma"),
        (lambda: mc(level=0.0), ValueError, "level"),
        (lambda: mc(keep="inner"), ValueError, "keep"),
        (lambda: mc(bounds=(2, 1)), ValueError, "bounds"),
        (lambda: mc(bounds=(2.0, 3.0)), ValueError, "no surface"),
        (lambda: mc(bounds=0.5, level=0.3), ValueError, "bounds"),
        (lambda: surface.mesh_from_grid(np.zeros((4, 4)), level=0.1), ValueError, "volume"),
        (lambda: surface.mesh_from_grid(torch.zeros(4, 1, 4), level=0.1), ValueError, "volume"),
        (lambda: surface.mesh_from_grid(torch.full((4, 4, 4), float("nan")), level=0.1), ValueError,
         "volume"),
        (lambda: surface.mesh_from_grid(torch.zeros(4, 4, 4), level=-0.1), ValueError, "level"),
        (lambda: surface.mesh_from_grid(torch.zeros(8, 8, 8), level=0.1, support=torch.full((4, 3), 5.0)),
         ValueError, "no surface near the support"),
        (lambda: rays(d=x[:3]), ValueError, "directions"),
        (lambda: rays(d=torch.zeros_like(x)), ValueError, "directions"),
        (lambda: rays(step_scale=1.5), ValueError, "step_scale"),
        (lambda: rays(near=1.0, far=0.5), ValueError, "far"),
        (lambda: rays(sigma=0.0), ValueError, "sigma"),
        (lambda: rays(max_steps=0), ValueError, "max_steps"),
        (lambda: rays(o=x.float()), TypeError, "directions"),
        (lambda: surface.camera_rays(0), ValueError, "resolution"),
        (lambda: surface.camera_rays((8, -2)), ValueError, "resolution"),
        (lambda: surface.camera_rays(8, fov=180.0), ValueError, "fov"),
        (lambda: surface.render_depth(score_fn, SIGMA, resolution=8, radius=5.0, **cpu), ValueError,
         "radius"),
        (lambda: surface.write_mesh("mesh.stl", tet_v, tet_f), ValueError, "suffix"),
        (lambda: surface.write_mesh("mesh.ply", tet_v, torch.tensor([[0, 1, 9]])), ValueError, "faces"),
        (lambda: surface.write_mesh("mesh.ply", tet_v[:, :2], tet_f), ValueError, "vertices"),
    ]
    for call, exc, word in cases:
        with pytest.raises(exc, match=word):
            call()


def test_mesh_from_model_with_a_stand_in_model(sphere):
    """Any object with encode / score_fn / parameters works; the model's mode is restored."""
    points, _ = sphere

    class Closed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

        def encode(self, p):
            assert not self.training
            return p.mean(dim=1) * 0 + 1                      # (1, 3): a dummy code

        def score_fn(self, z):
            return lambda x, s: fields.smoothed_score(x, points, s, method="direct")

    model = Closed().train()
    verts, faces = surface.mesh_from_model(model, points=points[None], sigma=SIGMA, resolution=16, bounds=1.0,
                                           num_support=0, dtype=torch.float64)
    assert model.training
    assert (verts.norm(dim=-1) - R).abs().max() < RIPPLE + SIGMA**2 / R
    with pytest.raises(ValueError, match="exactly one"):
        surface.mesh_from_model(model, sigma=SIGMA)
    with pytest.raises(ValueError, match="one shape"):
        surface.mesh_from_model(model, points=torch.stack([points, points]), sigma=SIGMA)
    with pytest.raises(ValueError, match="num_support"):
        surface.mesh_from_model(model, points=points, sigma=SIGMA, num_support=-1)
    # with support from the model's samples (here: the sphere's own points), the same sphere
    model.decode = lambda z, n, generator=None: points[None, :n]
    supported = surface.mesh_from_model(model, points=points, sigma=SIGMA, resolution=16, bounds=1.0,
                                        num_support=4000, dtype=torch.float64)
    assert torch.equal(supported[1], faces)
    assert math.isfinite(float(verts.sum()))
