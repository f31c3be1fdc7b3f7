"""gfcore.data.digits2d: real handwritten digits from installed wheels, as point clouds."""
import math

import numpy as np
import pytest
import torch
from data_helpers import check_item

from gfcore.data import digits2d


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
