"""gfcore.train.watch.FirstBadStep: the first NaN/inf step per named tensor, kept on the device."""

import pytest
import torch

from gfcore.train.watch import FirstBadStep


def test_records_the_first_bad_step_of_each_name_and_keeps_it():
    watch = FirstBadStep(("points", "loss"), "cpu")
    fine = torch.zeros(4, 3)
    watch.note(1, points=fine, loss=torch.tensor(0.5))
    assert watch.read() == {"points": None, "loss": None}
    watch.note(2, points=fine, loss=torch.tensor(float("nan")))
    watch.note(3, points=torch.tensor([[0.0, float("inf"), 0.0]]), loss=torch.tensor(float("inf")))
    watch.note(4, points=fine, loss=torch.tensor(1.0))
    assert watch.read() == {"points": 3, "loss": 2}   # later bad steps do not replace the first


def test_a_fresh_record_has_no_bad_step_and_meta_tensors_pass_through():
    watch = FirstBadStep(("loss_critic",), "meta")
    watch.note(7, loss_critic=torch.empty((), device="meta"))   # no values, no host sync, no error
    assert watch.first.device.type == "meta"


def test_names_must_match():
    with pytest.raises(ValueError, match="distinct"):
        FirstBadStep(("a", "a"), "cpu")
    with pytest.raises(ValueError, match="distinct"):
        FirstBadStep((), "cpu")
    watch = FirstBadStep(("points", "loss"), "cpu")
    with pytest.raises(ValueError, match="exactly"):
        watch.note(1, points=torch.zeros(1))
