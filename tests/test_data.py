"""gfcore.data: the dataset contract, normalisations, procedural 3D shapes, digits, meshes and the PC15k
loader."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

import gfcore.data as gd
from gfcore.data import digits2d, meshes, normalize, shapenet, shapes3d
from gfcore.data.base import PointCloudDataset


def check_item(ds, item, num_points, dim):
    assert set(item) >= {"points", "shift", "scale", "idx", "label"}
    assert item["points"].shape == (num_points, dim) and item["points"].dtype == torch.float32
    assert item["shift"].shape == (1, dim) and item["shift"].dtype == torch.float32
    assert item["scale"].shape == (1, 1) and item["scale"].dtype == torch.float32
    assert isinstance(item["idx"], int) and isinstance(item["label"], int)
    assert ds.dim == dim
    assert torch.isfinite(item["points"]).all()


def chamfer(a, b):
    """Squared-distance Chamfer (sum of the two means) by k-d trees (quick on a busy CPU)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float((cKDTree(b).query(a)[0] ** 2).mean() + (cKDTree(a).query(b)[0] ** 2).mean())


# ------------------------------------------------------------------------------------------------------------
# normalisations
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["torch", "numpy"])
@pytest.mark.parametrize("batched", [False, True])
def test_shape_bbox_longest_axis_exactly_unit(kind, batched):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 200, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 5.0, 1.0]) + 3
    x = x if batched else x[0]
    x = x.numpy() if kind == "numpy" else x
    normed, shift, scale = normalize.normalize(x, "shape_bbox")
    assert type(normed) is type(x)
    normed_t = torch.as_tensor(normed)
    assert tuple(shift.shape) == ((3, 1, 3) if batched else (1, 3))
    assert tuple(scale.shape) == ((3, 1, 1) if batched else (1, 1))
    lo, hi = normed_t.amin(-2), normed_t.amax(-2)
    torch.testing.assert_close(lo[..., 1], torch.full_like(lo[..., 1], -1.0))  # y is the longest axis
    torch.testing.assert_close(hi[..., 1], torch.full_like(hi[..., 1], 1.0))
    assert (hi - lo).amax() <= 2 + 1e-12
    back = normalize.denormalize(normed, shift, scale)
    torch.testing.assert_close(torch.as_tensor(back), torch.as_tensor(x))


def test_shape_unit_and_none():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 1
    normed, shift, scale = normalize.normalize(x, "shape_unit")
    torch.testing.assert_close(normed.mean(0), torch.zeros(3, dtype=torch.float64))
    assert math.isclose(float(normed.norm(dim=1).max()), 1.0, rel_tol=1e-12)
    torch.testing.assert_close(normed * scale + shift, x)
    normed, shift, scale = normalize.normalize(x, "none")
    torch.testing.assert_close(normed, x)
    assert float(shift.abs().max()) == 0 and float(scale) == 1


def test_global_stats_match_pointflow_definition():
    g = torch.Generator().manual_seed(2)
    clouds = [torch.randn(100 + 10 * i, 3, generator=g, dtype=torch.float64) * (i + 1) + i for i in range(4)]
    stats = normalize.global_stats(clouds)
    allpts = torch.cat(clouds).numpy()
    np.testing.assert_allclose(stats["shift"].numpy(), allpts.mean(axis=0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(stats["scale"].numpy(), allpts.reshape(-1).std().reshape(1, 1), rtol=1e-5)
    normed, shift, scale = normalize.normalize(clouds[0], "global", stats)
    torch.testing.assert_close(normed * scale + shift, clouds[0])
    pair = torch.stack([clouds[0][:50], clouds[1][:50]])
    batched, bshift, bscale = normalize.normalize(pair, "global", stats)
    assert bshift.shape == (2, 1, 3) and bscale.shape == (2, 1, 1)
    # without stats: computed from the points themselves -> zero mean, unit flattened std
    own, _, _ = normalize.normalize(allpts, "global")
    np.testing.assert_allclose(own.mean(axis=0), 0, atol=1e-6)


def test_normalize_errors():
    x = torch.rand(10, 3)
    with pytest.raises(ValueError, match="mode"):
        normalize.normalize(x, "bbox")
    with pytest.raises(ValueError, match="degenerate"):
        normalize.normalize(torch.ones(5, 3), "shape_bbox")
    with pytest.raises(ValueError, match="stats"):
        normalize.normalize(x, "global", {"shift": torch.zeros(1, 2), "scale": torch.ones(1, 1)})
    with pytest.raises(ValueError, match="stats"):
        normalize.normalize(x, "global", {"mean": 0})
    with pytest.raises(ValueError, match="NaN"):
        normalize.normalize(torch.full((4, 3), float("nan")), "shape_bbox")
    with pytest.raises(TypeError):
        normalize.normalize([[0.0, 1.0]], "shape_bbox")
    with pytest.raises(ValueError, match="at least one"):
        normalize.global_stats([])


# ------------------------------------------------------------------------------------------------------------
# procedural 3D shapes: primitives
# ------------------------------------------------------------------------------------------------------------
def test_box_points_on_faces_and_area_split():
    rng = np.random.default_rng(0)
    size = np.array([2.0, 1.0, 0.5])
    b = shapes3d.box((0.0, 0.0, 0.0), size)
    assert math.isclose(b.area, 2 * (2 * 1 + 2 * 0.5 + 1 * 0.5))
    p = b.sample(20000, rng)
    on_face = np.isclose(np.abs(p), size / 2, atol=1e-9)
    assert on_face.any(axis=1).all()
    assert (np.abs(p) <= size / 2 + 1e-9).all()
    frac = on_face.mean(axis=0)  # fraction on the +-x, +-y, +-z faces
    np.testing.assert_allclose(frac, np.array([1 * 0.5, 2 * 0.5, 2 * 1]) * 2 / b.area, atol=0.015)


def test_rotated_box_points_on_surface():
    rng = np.random.default_rng(1)
    R = shapes3d.rot_y(0.3) @ shapes3d.rot_x(-0.4)
    c, size = np.array([0.5, 1.0, -0.2]), np.array([0.3, 0.6, 0.1])
    p = shapes3d.box(c, size, rotation=R).sample(2000, rng)
    local = (p - c) @ R
    assert np.isclose(np.abs(local), size / 2, atol=1e-9).any(axis=1).all()


def test_frustum_cylinder_sphere_torus_on_surface_and_uniform():
    rng = np.random.default_rng(2)
    # open cone along +y: every point satisfies r(y) = r0 + (r1 - r0) y / h; uniform => y density ~ r(y)
    f = shapes3d.Frustum((0, 0, 0), (0, 1, 0), 2.0, 1.0, 0.2, caps="none")
    assert math.isclose(f.area, math.pi * 1.2 * math.hypot(2.0, 0.8))
    p = f.sample(40000, rng)
    r = np.hypot(p[:, 0], p[:, 2])
    np.testing.assert_allclose(r, 1.0 - 0.8 * p[:, 1] / 2.0, atol=1e-9)
    # fraction below mid-height = area of the lower half / total = (1 + 0.6) / (1 + 0.6 + 0.6 + 0.2)
    assert abs((p[:, 1] < 1.0).mean() - 1.6 / 2.4) < 0.01
    # closed cylinder: caps get pi r^2 each, the side 2 pi r h
    cyl = shapes3d.cylinder((0, 0, 0), (0, 0, 1), 1.0, 0.5)
    q = cyl.sample(40000, rng)
    side = np.isclose(np.hypot(q[:, 0], q[:, 1]), 0.5, atol=1e-9) & (q[:, 2] > 1e-9) & (q[:, 2] < 1 - 1e-9)
    caps = np.isclose(q[:, 2], 0, atol=1e-9) | np.isclose(q[:, 2], 1, atol=1e-9)
    assert (side | caps).all()
    assert abs(side.mean() - (math.pi * 1.0) / (math.pi * 1.0 + 2 * math.pi * 0.25)) < 0.01
    s = shapes3d.sphere((1, 2, 3), 0.7).sample(1000, rng)
    np.testing.assert_allclose(np.linalg.norm(s - [1, 2, 3], axis=1), 0.7, atol=1e-9)
    e = shapes3d.Ellipsoid((0, 0, 0), (1.0, 0.5, 0.25)).sample(1000, rng)
    np.testing.assert_allclose(((e / [1.0, 0.5, 0.25]) ** 2).sum(1), 1.0, atol=1e-9)
    t = shapes3d.Torus((0, 0, 0), 1.0, 0.2)
    assert math.isclose(t.area, 4 * math.pi**2 * 0.2)
    tp = t.sample(20000, rng)
    ring = np.hypot(tp[:, 0], tp[:, 1])
    np.testing.assert_allclose((ring - 1.0) ** 2 + tp[:, 2] ** 2, 0.04, atol=1e-9)
    # area element ~ (R + r cos v): the outer half (ring > R) holds (pi R + 2 r) / (2 pi R) of the points
    assert abs((ring > 1.0).mean() - (math.pi + 0.4) / (2 * math.pi)) < 0.015


def test_sample_primitives_area_weighted_and_shuffled():
    rng = np.random.default_rng(3)
    a = shapes3d.box((-5, 0, 0), (1, 1, 1))  # area 6
    b = shapes3d.box((5, 0, 0), (2, 2, 2))  # area 24
    p = shapes3d.sample_primitives([a, b], 10000, rng)
    assert p.shape == (10000, 3) and p.dtype == np.float32
    assert abs((p[:, 0] < 0).mean() - 0.2) < 0.015
    assert abs((p[:5000, 0] < 0).mean() - (p[5000:, 0] < 0).mean()) < 0.03  # shuffled: slices alike


# ------------------------------------------------------------------------------------------------------------
# procedural 3D shapes: categories and dataset
# ------------------------------------------------------------------------------------------------------------
def test_generate_shape_deterministic_and_varied():
    for c in shapes3d.CATEGORIES:
        a = shapes3d.generate_shape(c, 3, seed=0, num_points=3000)
        assert a.shape == (3000, 3) and a.dtype == np.float32 and np.isfinite(a).all()
        np.testing.assert_array_equal(a, shapes3d.generate_shape(c, 3, seed=0, num_points=3000))
        assert not np.allclose(a, shapes3d.generate_shape(c, 3, seed=1, num_points=3000))
    chairs = [shapes3d.generate_shape("chair", i, num_points=2000) for i in range(2)]
    ext = [np.ptp(c, axis=0) for c in chairs]
    assert not np.allclose(ext[0], ext[1], atol=1e-3)  # two chairs differ in their proportions
    with pytest.raises(ValueError, match="category"):
        shapes3d.generate_shape("sofa", 0)


def test_between_category_chamfer_larger_than_within():
    n = 512
    cats = ("chair", "airplane", "lamp", "table")
    clouds = {c: [normalize.shape_bbox(shapes3d.generate_shape(c, i, num_points=n))[0] for i in range(4)]
              for c in cats}
    within = [chamfer(a, b) for c in cats for i, a in enumerate(clouds[c]) for b in clouds[c][i + 1:]]
    between = [chamfer(a, b) for i, c in enumerate(cats) for d in cats[i + 1:] for a in clouds[c][:2]
               for b in clouds[d][:2]]
    assert np.mean(between) > 1.5 * np.mean(within)


def test_shapes3d_contract_and_sampling():
    ds = shapes3d.Shapes3D(categories=("chair", "table"), split="train", num_points=256, num_shapes=3, seed=0)
    assert len(ds) == 6 and ds.sample == "random" and ds.pool == "train"
    item = ds[4]
    check_item(ds, item, 256, 3)
    assert item["idx"] == 4 and item["label"] == 1
    assert ds[np.int64(4)]["idx"] == 4 and ds[torch.tensor(-1)]["idx"] == 5
    raw = ds.raw_cloud(4)
    recon = item["points"] * item["scale"] + item["shift"]
    # every reconstructed point is one of the raw train-pool points
    d = torch.cdist(recon.double(), torch.from_numpy(raw[:10000]).double())
    assert float(d.min(1).values.max()) < 1e-5
    # shape_bbox over the full cloud: the longest axis spans exactly [-1, 1] when normalised
    full = (torch.from_numpy(raw) - item["shift"]) / item["scale"]
    ext = full.amax(0) - full.amin(0)
    assert math.isclose(float(ext.max()), 2.0, rel_tol=1e-5)
    # training draws vary per access, with replacement
    assert not torch.equal(ds[4]["points"], ds[4]["points"])
    # a caller-seeded generator makes the draws reproducible
    kw = dict(categories="chair", num_points=64, num_shapes=2)
    a = shapes3d.Shapes3D(**kw, generator=torch.Generator().manual_seed(5))
    b = shapes3d.Shapes3D(**kw, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0]["points"], b[0]["points"]) and torch.equal(a[1]["points"], b[1]["points"])


def test_shapes3d_eval_fixed_and_splits_disjoint():
    val = shapes3d.Shapes3D(categories="lamp", split="val", num_points=128, shapes_per_category=20)
    assert val.sample == "first" and val.pool == "test" and len(val) == 2
    assert torch.equal(val[1]["points"], val[1]["points"])
    again = shapes3d.Shapes3D(categories="lamp", split="val", num_points=128, shapes_per_category=20)
    assert torch.equal(val[0]["points"], again[0]["points"])
    ranges = {s: {i for _, _, i in shapes3d.Shapes3D("lamp", split=s, shapes_per_category=20).items}
              for s in ("train", "val", "test")}
    assert ranges["train"].isdisjoint(ranges["val"]) and ranges["val"].isdisjoint(ranges["test"])
    assert len(ranges["train"] | ranges["val"] | ranges["test"]) == 20


def test_shapes3d_global_normalisation_uses_train_stats():
    kw = dict(categories="mug", num_points=64, shapes_per_category=10, normalize="global")
    train = shapes3d.Shapes3D(split="train", **kw)
    test = shapes3d.Shapes3D(split="test", **kw)
    torch.testing.assert_close(train.stats["shift"], test.stats["shift"])
    torch.testing.assert_close(train.stats["scale"], test.stats["scale"])
    ref = normalize.global_stats([shapes3d.generate_shape("mug", i) for i in range(8)])
    torch.testing.assert_close(train.stats["scale"], ref["scale"])
    item = test[0]
    torch.testing.assert_close(item["shift"], train.stats["shift"])
    stats = {"shift": torch.zeros(1, 3), "scale": torch.full((1, 1), 2.0)}
    given = shapes3d.Shapes3D(split="val", stats=stats, **kw)
    assert float(given[0]["scale"]) == 2.0


def test_shapes3d_errors():
    with pytest.raises(ValueError, match="category"):
        shapes3d.Shapes3D(categories=("sofa",))
    with pytest.raises(ValueError, match="split"):
        shapes3d.Shapes3D(split="valid")
    with pytest.raises(ValueError, match="normalize"):
        shapes3d.Shapes3D(normalize="bbox")
    with pytest.raises(ValueError, match="sample"):
        shapes3d.Shapes3D(sample="fixed")
    with pytest.raises(ValueError, match="num_points"):
        shapes3d.Shapes3D(num_points=0)
    with pytest.raises(ValueError, match="exceeds"):
        shapes3d.Shapes3D(split="val", num_points=6000)
    with pytest.raises(ValueError, match="stats"):
        shapes3d.Shapes3D(stats={"shift": torch.zeros(1, 3), "scale": torch.ones(1, 1)})
    with pytest.raises(IndexError):
        shapes3d.Shapes3D(num_shapes=2)[5]


def test_default_draws_follow_the_global_rng():
    ds = shapes3d.Shapes3D(categories="chair", num_points=64, num_shapes=2)
    torch.manual_seed(123)
    a = ds[1]["points"]
    torch.manual_seed(123)
    assert torch.equal(a, ds[1]["points"])


def test_dataloader_collates_and_workers_differ():
    ds = shapes3d.Shapes3D(categories="table", num_points=32, num_shapes=4,
                           generator=torch.Generator().manual_seed(0))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["points"].shape == (4, 32, 3) and batch["shift"].shape == (4, 1, 3)
    assert batch["scale"].shape == (4, 1, 1) and batch["idx"].tolist() == [0, 1, 2, 3]
    # two workers, each shape once per worker: a shared generator copied into both would draw the same indices
    twice = torch.utils.data.ConcatDataset([ds, ds])
    loader = torch.utils.data.DataLoader(twice, batch_size=4, num_workers=2)
    first, second = list(loader)  # worker 0 serves items 0-3, worker 1 the same shapes again
    assert not torch.equal(first["points"], second["points"])


# ------------------------------------------------------------------------------------------------------------
# digits
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source,shape,size", [("mnist", (28, 28), 5000), ("sklearn", (8, 8), 1797)])
def test_digit_sources_load_offline(source, shape, size):
    images, labels = digits2d.load_images(source)
    assert images.shape == (size, *shape) and labels.shape == (size,)
    assert images.min() >= 0 and images.max() <= 1 and set(labels.tolist()) == set(range(10))
    sizes = [len(digits2d.split_indices(source, s)) for s in ("train", "val", "test")]
    assert sum(sizes) == size
    parts = [set(digits2d.split_indices(source, s).tolist()) for s in ("train", "val", "test")]
    assert parts[0].isdisjoint(parts[1]) and parts[1].isdisjoint(parts[2]) and parts[0].isdisjoint(parts[2])


def test_image_to_points_inside_strokes_y_up():
    img = np.zeros((4, 5))
    img[0, 1] = 1.0  # top row, column 1: x in [1, 2), y in [3, 4)
    img[3, 4] = 3.0  # bottom row, column 4: x in [4, 5), y in [0, 1)
    p = digits2d.image_to_points(img, 4000, np.random.default_rng(0))
    top = (p[:, 0] >= 1) & (p[:, 0] < 2) & (p[:, 1] >= 3) & (p[:, 1] < 4)
    bottom = (p[:, 0] >= 4) & (p[:, 0] < 5) & (p[:, 1] >= 0) & (p[:, 1] < 1)
    assert (top | bottom).all()
    assert abs(bottom.mean() - 0.75) < 0.03  # intensity-weighted
    with pytest.raises(ValueError, match="intensity"):
        digits2d.image_to_points(np.zeros((3, 3)), 10, np.random.default_rng(0))


@pytest.mark.parametrize("source", ["mnist", "sklearn"])
def test_digits2d_dataset(source):
    train = digits2d.Digits2D("train", num_points=128, source=source, num_shapes=20)
    check_item(train, train[0], 128, 2)
    assert not torch.equal(train[0]["points"], train[0]["points"])
    assert {train[i]["label"] for i in range(20)} != {train[0]["label"]}  # shuffled order mixes the classes
    val = digits2d.Digits2D("val", num_points=128, source=source, num_shapes=5)
    a = val[3]
    assert torch.equal(a["points"], val[3]["points"])
    assert torch.equal(a["points"], digits2d.Digits2D("val", num_points=128, source=source)[3]["points"])
    full = (torch.from_numpy(val.raw_cloud(3)) - a["shift"]) / a["scale"]
    assert math.isclose(float((full.amax(0) - full.amin(0)).max()), 2.0, rel_tol=1e-5)
    ones = digits2d.Digits2D("test", num_points=64, source=source, digits=[1, 7])
    assert {ones[i]["label"] for i in range(len(ones))} == {1, 7}
    assert a["label"] == int(val.labels[3])


def test_digits2d_errors():
    with pytest.raises(ValueError, match="source"):
        digits2d.Digits2D(source="emnist")
    with pytest.raises(ValueError, match="digits"):
        digits2d.Digits2D(digits=[11])
    with pytest.raises(ValueError, match="split"):
        digits2d.Digits2D(split="dev")


# ------------------------------------------------------------------------------------------------------------
# meshes
# ------------------------------------------------------------------------------------------------------------
def unit_cube():
    v = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], dtype=np.float64)
    return v, shapes3d._HEX_FACES.copy()


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


# ------------------------------------------------------------------------------------------------------------
# ShapeNet PC15k (a fake tree)
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture
def pc15k(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ShapeNetCore.v2.PC15k"
    for synset in ("02691156", "03001627"):
        for split in ("train", "val", "test"):
            folder = root / synset / split
            folder.mkdir(parents=True)
            for k in range(3):
                pts = rng.normal(size=(15000, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0]
                np.save(folder / f"shape{k}.npy", pts.astype(np.float32))
    return root


def test_pc15k_pools_and_normalisation(pc15k):
    train = shapenet.ShapeNetPC15k(pc15k, categories=("airplane",), split="train", num_points=100)
    assert len(train) == 3 and train.sample == "random" and train.pool == "train"
    item = train[0]
    check_item(train, item, 100, 3)
    raw = np.load(train.files[0])
    recon = (item["points"] * item["scale"] + item["shift"]).numpy()
    d = np.abs(recon[:, None, :] - raw[None, :10000]).sum(-1).min(1)
    assert d.max() < 1e-4  # every drawn point comes from the train pool (0..9999)
    lo, hi = raw.min(0), raw.max(0)
    np.testing.assert_allclose(item["shift"].numpy()[0], (lo + hi) / 2, rtol=1e-5)
    np.testing.assert_allclose(float(item["scale"]), (hi - lo).max() / 2, rtol=1e-5)
    assert not torch.equal(train[0]["points"], train[0]["points"])
    val = shapenet.ShapeNetPC15k(pc15k, categories="airplane", split="val", num_points=100)
    v = val[1]
    raw = np.load(val.files[1])
    np.testing.assert_allclose((v["points"] * v["scale"] + v["shift"]).numpy(), raw[10000:10100], atol=1e-5)
    assert torch.equal(v["points"], val[1]["points"])
    own = shapenet.ShapeNetPC15k(pc15k, categories="airplane", split="val", num_points=100, pool="train")
    back = own[1]["points"] * own[1]["scale"] + own[1]["shift"]
    np.testing.assert_allclose(back.numpy(), raw[:100], atol=1e-5)


def test_pc15k_categories_all_and_shuffle(pc15k):
    both = shapenet.ShapeNetPC15k(pc15k, categories="all", split="test", num_points=10)
    assert len(both) == 6 and both.synsets == ["02691156", "03001627"]
    assert both.categories == ["airplane", "chair"]
    assert sorted(both.labels) == [0, 0, 0, 1, 1, 1]
    names = [(f.split("/")[-3], f.split("/")[-1]) for f in both.files]
    assert names != sorted(names)  # shuffled with the fixed seed
    again = shapenet.ShapeNetPC15k(pc15k, categories=["airplane", "chair"], split="test", num_points=10)
    assert again.files == both.files
    by_id = shapenet.ShapeNetPC15k(pc15k, categories=["03001627"], split="val", num_points=10)
    assert by_id.categories == ["chair"]


def test_pc15k_global_stats_from_train(pc15k):
    val = shapenet.ShapeNetPC15k(pc15k, categories="chair", split="val", num_points=50, normalize="global")
    train_files = sorted((pc15k / "03001627" / "train").glob("*.npy"))
    ref = normalize.global_stats([np.load(f) for f in train_files])
    torch.testing.assert_close(val.stats["shift"], ref["shift"])
    torch.testing.assert_close(val.stats["scale"], ref["scale"])
    item = val[0]
    raw = np.load(val.files[0])[10000:10050]
    np.testing.assert_allclose(item["points"].numpy(), (raw - ref["shift"].numpy()) / ref["scale"].numpy(),
                               rtol=1e-4, atol=1e-5)


def test_pc15k_errors(pc15k, tmp_path):
    with pytest.raises(FileNotFoundError, match="PointFlow repository README") as err:
        shapenet.ShapeNetPC15k(tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    with pytest.raises(FileNotFoundError, match="02958343"):
        shapenet.ShapeNetPC15k(pc15k, categories="car")
    with pytest.raises(ValueError, match="unknown category"):
        shapenet.ShapeNetPC15k(pc15k, categories="boat")
    with pytest.raises(ValueError, match="split"):
        shapenet.ShapeNetPC15k(pc15k, split="valid")
    empty = tmp_path / "empty"
    (empty / "02691156" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .npy"):
        shapenet.ShapeNetPC15k(empty)
    with pytest.raises(ValueError, match="no synset folders"):
        shapenet.ShapeNetPC15k(tmp_path / "empty" / "02691156" / "train", categories="all")
    np.save(pc15k / "02691156" / "train" / "bad.npy", np.zeros((100, 3), np.float32))
    with pytest.raises(ValueError, match="bad.npy"):
        shapenet.ShapeNetPC15k(pc15k)


# ------------------------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------------------------
def test_build_dataset_registry(pc15k):
    assert set(gd.DATASETS) == {"digits2d", "glyphs2d", "shapes3d", "shapenet"}
    ds = gd.build_dataset("shapes3d", "val", categories=["airplane"], num_points=64, shapes_per_category=10)
    assert isinstance(ds, PointCloudDataset) and ds.split == "val" and len(ds) == 1
    ds = gd.build_dataset("digits2d", "test", num_points=32, source="sklearn")
    assert ds.dim == 2
    ds = gd.build_dataset("shapenet", "train", root=str(pc15k), categories=["chair"], num_points=16)
    assert len(ds) == 3
    with pytest.raises(ValueError, match="digits2d"):
        gd.build_dataset("modelnet", "train")
