"""gfcore._checks: every check names the argument, the value seen and what was expected."""
import numpy as np
import pytest
import torch

from gfcore import _checks


def test_tensor_and_point_cloud():
    x = torch.zeros(2, 5, 3)
    assert _checks.tensor("x", x, ndims=(3,), dim=3) is x
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        _checks.tensor("x", [1.0])
    with pytest.raises(TypeError, match="floating-point"):
        _checks.tensor("x", torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"x must be 2-D, got shape \(2, 5, 3\)"):
        _checks.tensor("x", x, ndims=(2,))
    with pytest.raises(ValueError, match="last dimension 2"):
        _checks.tensor("x", x, dim=2)
    with pytest.raises(ValueError, match="empty"):
        _checks.tensor("x", torch.zeros(0, 3))
    with pytest.raises(ValueError, match="1 NaN and 1 inf"):
        _checks.tensor("x", torch.tensor([float("nan"), float("inf"), 0.0]))
    with pytest.raises(ValueError, match=r"points is empty \(shape \(2, 0, 3\)\)"):
        _checks.point_cloud("points", torch.zeros(2, 0, 3))


def test_numbers_and_choices():
    _checks.positive("sigma", 0.1)
    _checks.positive("sigma", torch.tensor([0.1, 1.0]))
    for bad in (0, -1.0, float("inf"), torch.tensor([0.1, 0.0])):
        with pytest.raises(ValueError, match="sigma must be finite and > 0"):
            _checks.positive("sigma", bad)
    with pytest.raises(TypeError, match="sigma must be a number"):
        _checks.positive("sigma", True)
    assert _checks.positive_int("n", 3) == 3
    with pytest.raises(TypeError):
        _checks.positive_int("n", 3.0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        _checks.positive_int("n", 0)
    with pytest.raises(ValueError, match=r"kind must be one of \['a', 'b'\], got 'c'"):
        _checks.choice("kind", "c", ("b", "a"))


def test_int_at_least():
    assert _checks.int_at_least("k", 10, 10) == 10
    assert _checks.int_at_least("k", None, 1, optional=True) is None
    with pytest.raises(ValueError, match="k must be >= 10, got 9"):
        _checks.int_at_least("k", 9, 10)
    with pytest.raises(TypeError, match="k must be an int, got bool"):
        _checks.int_at_least("k", True, 0)
    with pytest.raises(TypeError, match="k must be an int or None, got float"):
        _checks.int_at_least("k", 2.0, 0, optional=True)
    with pytest.raises(TypeError, match="k must be an int, got NoneType"):
        _checks.int_at_least("k", None, 0)


def test_names():
    options = ("chair", "table", "lamp")
    assert _checks.names("categories", "chair", options) == ("chair",)
    assert _checks.names("categories", ["lamp", "chair"], options) == ("lamp", "chair")
    with pytest.raises(ValueError, match="unknown categories entry 'sofa'; valid: \\['chair', 'table', 'lamp'\\]"):
        _checks.names("categories", ["chair", "sofa"], options)
    with pytest.raises(ValueError, match="at least one"):
        _checks.names("categories", [], options)
    with pytest.raises(ValueError, match="repeats"):
        _checks.names("categories", ["chair", "chair"], options)
    with pytest.raises(TypeError, match="sequence of names"):
        _checks.names("categories", 3, options)


def test_numpy_points():
    out = _checks.numpy_points("p", np.ones((4, 2), dtype=np.float32))
    assert out.dtype == np.float64 and out.shape == (4, 2)
    assert _checks.numpy_points("p", torch.ones(2, 4, 3), ndims=(3,), dims=3).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="p must have last dimension 2"):
        _checks.numpy_points("p", torch.ones(4, 3))


def test_sigma_per_shape_and_sigma_batch():
    like = torch.zeros(3, 5, 2, dtype=torch.float64)
    s = _checks.sigma_per_shape(0.5, 3, like=like)
    assert s.shape == (1, 1, 1) and s.dtype == torch.float64 and float(s) == 0.5
    s = _checks.sigma_per_shape(torch.tensor([0.1, 0.2, 0.3]), 3, like=like)
    assert s.shape == (3, 1, 1) and s.dtype == torch.float64
    assert _checks.sigma_per_shape(torch.tensor(0.2), None, like=like).shape == (1, 1, 1)
    with pytest.raises(ValueError, match="2 values but the batch has 3"):
        _checks.sigma_per_shape(torch.tensor([0.1, 0.2]), 3, like=like)
    with pytest.raises(ValueError, match="needs batched"):
        _checks.sigma_per_shape(torch.tensor([0.1, 0.2]), None, like=like)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        _checks.sigma_per_shape(-1.0, 3, like=like)
    b = _checks.sigma_batch(0.5, 3, like=like)
    assert b.shape == (3,) and b.dtype == torch.float64
    assert _checks.sigma_batch(torch.tensor(0.5), 3, like=like).shape == (3,)
    with pytest.raises(ValueError, match="B=3"):
        _checks.sigma_batch(torch.ones(2), 3, like=like)
