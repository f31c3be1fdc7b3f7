"""The latent GAN's configuration: :class:`LatentGANConfig`, the keyword arguments of
:func:`~gfcore.train.train_latent_gan` and the keys of ``stage: gan`` YAML presets.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from gfcore import _checks
from gfcore.train.config import ConfigIO

#: gradient penalties: the official zero-centred one, R1 proper, and WGAN-GP's on interpolates
PENALTIES = ("official", "r1", "wgan-gp")

_FLOAT_KEYS = ("lr", "penalty_weight", "critic_slope")
_POSITIVE_INTS = ("encode_batch_size", "noise_dim", "critic_steps", "batch_size", "log_every", "val_samples",
                  "ckpt_every")


@dataclass
class LatentGANConfig(ConfigIO):
    """Everything :func:`~gfcore.train.train_latent_gan` needs; YAML presets with ``stage: gan`` load into it.

    ``stage`` is always ``"gan"`` (the CLI dispatches on it). The frozen auto-encoder: ``autoencoder`` (a
    checkpoint file or run folder of :func:`~gfcore.train.train_autoencoder`, or a name of
    :func:`gfcore.pretrained.available`; ``autoencoder_ema`` picks a checkpoint's EMA weights). The real
    codes: the encoder's outputs on the ``"train"`` split of ``dataset`` with ``dataset_kwargs`` (``None``:
    those the auto-encoder was trained on, as its checkpoint or model card records them), each shape's first
    ``num_points`` pool points, ``encode_batch_size`` shapes at a time. Networks: ``noise_dim``,
    ``generator_hidden``, ``critic_hidden``, ``critic_slope`` (see :class:`~gfcore.models.LatentGenerator`,
    :class:`~gfcore.models.LatentCritic`). Loss: ``penalty`` (one of :data:`PENALTIES`) with
    ``penalty_weight``, ``critic_steps`` critic steps per generator step. Optimisation: ``batch_size`` real
    codes per step, the run length as ``max_steps`` or ``epochs`` (passes over the real codes; one of the
    two), Adam ``lr`` and ``betas``. ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``); ``cpu_threads`` (torch's
    CPU threads during the training loop, restored afterwards; ``None`` leaves them: these networks are so
    small that one thread is fastest, and several threads on a busy CPU are several times slower); ``seed``.
    Logging: every ``log_every`` steps; the latent MMD (:func:`~gfcore.train.latent_metrics.latent_mmd`) of
    ``val_samples`` generated codes against as many real ones every ``val_every`` steps (``None`` off);
    ``last.pt`` every ``ckpt_every`` steps and at the end.

    The official recipe is the defaults plus ``epochs=10000``.

    Raises:
        ValueError, TypeError: on construction, naming the first bad field.

    Taught in chapter 7 (Generating new shapes).
    """

    WHAT = "latent-GAN config"

    stage: str = "gan"
    autoencoder: str | None = None
    autoencoder_ema: bool = True
    dataset: str | None = None
    dataset_kwargs: dict | None = None
    encode_batch_size: int = 64
    noise_dim: int = 128
    generator_hidden: tuple = (256, 256)
    critic_hidden: tuple = (512, 512)
    critic_slope: float = 0.2
    penalty: str = "official"
    penalty_weight: float = 1.0
    critic_steps: int = 1
    batch_size: int = 256
    max_steps: int | None = None
    epochs: int | None = None
    lr: float = 1e-4
    betas: tuple = (0.5, 0.9)
    device: str = "auto"
    cpu_threads: int | None = None
    seed: int = 100
    log_every: int = 100
    val_every: int | None = 1000
    val_samples: int = 1000
    ckpt_every: int = 1000
    keep_checkpoints: bool = False

    def __post_init__(self):
        self._coerce_numbers(_FLOAT_KEYS)
        for name in ("generator_hidden", "critic_hidden"):
            value = getattr(self, name)
            setattr(self, name, tuple(value) if isinstance(value, (list, tuple)) else value)
        if self.autoencoder is not None and not isinstance(self.autoencoder, str):
            self.autoencoder = str(self.autoencoder)   # a Path
        if self.dataset_kwargs is not None:
            if not isinstance(self.dataset_kwargs, dict):
                raise TypeError(f"dataset_kwargs must be a dict or None, "
                                f"got {type(self.dataset_kwargs).__name__}")
            self.dataset_kwargs = dict(self.dataset_kwargs)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        if self.stage != "gan":
            raise ValueError(f"stage must be 'gan' for a latent-GAN config, got {self.stage!r}")
        for name in _POSITIVE_INTS:
            _checks.positive_int(name, getattr(self, name))
        for name in ("max_steps", "epochs", "val_every", "cpu_threads"):
            if getattr(self, name) is not None:
                _checks.positive_int(name, getattr(self, name))
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError(f"set max_steps or epochs, not both (got max_steps={self.max_steps}, "
                             f"epochs={self.epochs})")
        for name in ("generator_hidden", "critic_hidden"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value:
                raise ValueError(f"{name} must be a non-empty list of widths, got {value!r}")
            for width in value:
                _checks.positive_int(name, width)
        if not 0 <= float(self.critic_slope) < 1:
            raise ValueError(f"critic_slope must be in [0, 1), got {self.critic_slope}")
        _checks.choice("penalty", self.penalty, PENALTIES)
        if isinstance(self.penalty_weight, bool) or not math.isfinite(float(self.penalty_weight)) or float(
                self.penalty_weight) < 0:
            raise ValueError(f"penalty_weight must be a finite number >= 0, got {self.penalty_weight}")
        _checks.positive("lr", float(self.lr))
        if len(self.betas) != 2 or not all(0 <= float(b) < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        _checks.choice("device", str(self.device).split(":")[0], ("auto", "cpu", "cuda"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")
        for name in ("autoencoder_ema", "keep_checkpoints"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def generator_kwargs(self, zdim: int) -> dict:
        """The keyword arguments of :class:`~gfcore.models.LatentGenerator` for codes of size ``zdim``."""
        return {"zdim": zdim, "noise_dim": self.noise_dim, "hidden": list(self.generator_hidden)}

    def critic_kwargs(self, zdim: int) -> dict:
        """The keyword arguments of :class:`~gfcore.models.LatentCritic` for codes of size ``zdim``."""
        return {"zdim": zdim, "hidden": list(self.critic_hidden), "negative_slope": float(self.critic_slope)}


def resolve_gan_config(config, overrides: dict) -> LatentGANConfig:
    """A :class:`LatentGANConfig` from a config, a dict of its keys or ``None``, with ``overrides`` on top."""
    if config is None:
        config = LatentGANConfig()
    elif isinstance(config, dict):
        config = LatentGANConfig.from_dict(config)
    elif not isinstance(config, LatentGANConfig):
        raise TypeError(f"config must be a LatentGANConfig, a dict or None, got {type(config).__name__}")
    if overrides:
        config = LatentGANConfig.from_dict({**config.to_dict(), **overrides})
    return config


__all__ = ["PENALTIES", "LatentGANConfig", "resolve_gan_config"]
