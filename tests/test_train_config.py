"""gfcore.train.config: the trainer's config dataclass and its YAML presets."""
from pathlib import Path

import pytest
import yaml
from train_helpers import Circles, tiny

from gfcore.models import ShapeGF
from gfcore.train import AutoEncoderConfig, train_autoencoder
from gfcore.train.config import resolve_config

ROOT = Path(__file__).resolve().parent.parent


def test_config_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown config keys \['lr_rate'\].*valid keys.*'lr'"):
        AutoEncoderConfig.from_dict({"lr_rate": 1e-3})
    with pytest.raises(ValueError, match="unknown config keys"):
        train_autoencoder(tiny(), train_set=Circles(), progress=False, n_blokcs=3)


def test_config_yaml_round_trip(tmp_path):
    cfg = tiny(block="cbn", ema_decay=0.99, grad_clip=1.0, dataset="circles", dataset_kwargs={"n": 4},
               betas=(0.5, 0.9), preconditioning="edm")
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert yaml.safe_load(path.read_text())["betas"] == [0.5, 0.9]
    back = AutoEncoderConfig.from_yaml(path)
    assert back == cfg and back.betas == (0.5, 0.9)
    assert AutoEncoderConfig.from_dict(cfg.to_dict()) == cfg
    assert AutoEncoderConfig.from_dict(yaml.safe_load("lr: 1e-3")).lr == 1e-3   # YAML 1.1 reads 1e-3 as a string


AUTOENCODER_PRESETS = [p for p in sorted((ROOT / "configs").glob("*.yaml"))
                       if (yaml.safe_load(p.read_text()) or {}).get("stage") != "gan"]   # stage: gan -> LatentGANConfig


@pytest.mark.parametrize("path", AUTOENCODER_PRESETS, ids=lambda p: p.name)
def test_every_preset_loads(path):
    cfg = AutoEncoderConfig.from_yaml(path)
    assert set(cfg.model_kwargs()) == set(ShapeGF.CONFIG_KEYS)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_no_preset_forces_bf16(path):
    """On a CPU without bf16 units (AVX2 only: most laptops, Colab's CPU runtime) bf16 autocast is emulated and
    about 20x slower than float32, so a preset says amp: auto (bf16 where the hardware has it) or off."""
    assert (yaml.safe_load(path.read_text()) or {}).get("amp", "auto") in ("auto", "off")


def test_config_validation():
    with pytest.raises(ValueError, match="not both"):
        AutoEncoderConfig(max_steps=10, epochs=2)
    with pytest.raises(ValueError, match="block"):
        AutoEncoderConfig(block="film")
    with pytest.raises(ValueError, match="lr_schedule"):
        AutoEncoderConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="preconditioning"):
        AutoEncoderConfig(preconditioning="karras")
    with pytest.raises(ValueError, match="amp"):
        AutoEncoderConfig(amp="fp16")
    with pytest.raises(ValueError, match="lr must be a number"):
        AutoEncoderConfig(lr="fast")
    with pytest.raises(TypeError, match="seed"):
        AutoEncoderConfig(seed=1.5)


def test_model_kwargs_build_the_model():
    cfg = tiny(preconditioning="edm")
    model = ShapeGF.from_config(cfg.model_kwargs())
    assert model.config == cfg.model_kwargs() and model.config["preconditioning"] == "edm"


def test_resolve_config():
    assert resolve_config(None, {}) == AutoEncoderConfig()
    assert resolve_config({"lr": 2e-3}, {"zdim": 8}) == AutoEncoderConfig(lr=2e-3, zdim=8)
    with pytest.raises(TypeError, match="config must be"):
        resolve_config("configs/tiny.yaml", {})
