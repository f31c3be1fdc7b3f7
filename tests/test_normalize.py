"""gfcore.data.normalize: every normalisation, its inverse, PointFlow's global statistics."""
import math

import numpy as np
import pytest
import torch

from gfcore.data import normalize


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
