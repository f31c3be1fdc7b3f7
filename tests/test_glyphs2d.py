"""Glyphs2D: printed characters as outline clouds; deterministic, varied, on the outline, split cleanly."""
import numpy as np
import pytest
import torch

from gfcore.data import Glyphs2D, build_dataset, glyphs2d, shapes2d
from gfcore.fields import distance_to_points


def test_contract_and_splits_are_disjoint():
    train = Glyphs2D("train", num_points=64, chars="AB8", variants_per_char=10)
    val = Glyphs2D("val", num_points=64, chars="AB8", variants_per_char=10)
    assert len(train) == 3 * 8 and len(val) == 3 * 1
    assert not set(train.items) & set(val.items)
    item = train[0]
    assert item["points"].shape == (64, 2) and item["points"].dtype == torch.float32
    assert item["label"] == 0 and train[1]["label"] == 1  # classes interleave
    raw = item["points"] * item["scale"] + item["shift"]
    assert raw.shape == (64, 2)
    assert item["points"].abs().max() <= 1.0 + 1e-5  # shape_bbox


def test_points_lie_on_the_distorted_outline():
    ds = Glyphs2D("val", num_points=500, chars="R", variants_per_char=10, normalize="none")
    c, font, rng = ds._variant(0)
    outline = shapes2d.polyline_dense(glyphs2d.glyph_variant("R", font, rng), 40000)
    d = distance_to_points(ds[0]["points"], outline)
    assert d.max() < 2e-3


def test_deterministic_and_varied():
    a = Glyphs2D("train", chars="K", variants_per_char=20, sample="first", num_points=300)
    b = Glyphs2D("train", chars="K", variants_per_char=20, sample="first", num_points=300)
    assert torch.equal(a[3]["points"], b[3]["points"])
    # two variants of the same character differ by more than resampling noise
    assert (a[3]["points"] - a[4]["points"]).abs().max() > 0.05
    assert len({a.font(i) for i in range(len(a))}) >= 3


def test_train_split_draws_afresh():
    ds = build_dataset("glyphs2d", "train", chars="AB", variants_per_char=10, num_points=100)
    assert not torch.equal(ds[0]["points"], ds[0]["points"])


@pytest.mark.parametrize("kwargs, match", [
    ({"chars": ""}, "chars"), ({"chars": "AA"}, "chars"), ({"chars": "A B"}, "space"),
    ({"variants_per_char": 5}, "variants_per_char"), ({"split": "dev"}, "split"), ({"cloud_size": 2}, "cloud_size"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Glyphs2D(**kwargs)


def test_variant_transform_is_bounded():
    rng = np.random.default_rng(0)
    for font in range(len(glyphs2d.FONTS)):
        lines = glyphs2d.glyph_variant("W", font, rng)
        allv = torch.cat(lines)
        assert allv.abs().max() <= 0.9 + 1e-9
