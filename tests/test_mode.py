"""gfcore.mode: the GF_MODE switch."""
import pytest
import torch

from gfcore import mode


@pytest.mark.parametrize("value,expected", [("fast", "fast"), ("full", "full"), (" FULL ", "full"),
                                            ("paper", "paper")])
def test_mode_from_env(monkeypatch, value, expected):
    monkeypatch.setenv("GF_MODE", value)
    assert mode.current() == expected
    assert mode.choose(fast=1, full=2, paper=3) == {"fast": 1, "full": 2, "paper": 3}[expected]
    # a size the paper does not change falls back to full's
    assert mode.choose(fast=1, full=2) == (1 if expected == "fast" else 2)


def test_mode_default_by_device(monkeypatch):
    monkeypatch.delenv("GF_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert mode.current() == "fast"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert mode.current() == "full"


def test_invalid_mode(monkeypatch):
    monkeypatch.setenv("GF_MODE", "turbo")
    with pytest.raises(ValueError, match="GF_MODE"):
        mode.current()
    with pytest.raises(ValueError, match="GF_MODE"):
        mode.choose(fast=1, full=2)


def test_describe(monkeypatch):
    monkeypatch.setenv("GF_MODE", "fast")
    line = mode.describe("cpu")
    assert "GF_MODE=fast" in line and torch.__version__ in line and "device=cpu" in line
    monkeypatch.setenv("GF_MODE", "full")
    assert "GF_MODE=full" in mode.describe()
