"""The auto-encoder trainer's configuration: one dataclass, loaded from YAML presets (``configs/*.yaml``).

Taught in chapter 4 (Conditional fields in 2D) and chapter 5 (The full 3D model).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from gfcore import _checks
from gfcore.models import ShapeGF
from gfcore.models.decoder import NORMS, PRECONDITIONINGS
from gfcore.schedule import LR_SCHEDULES, WEIGHTINGS, geometric_sigmas
from gfcore.train.distributed import AMP_MODES

# keys that YAML 1.1 may hand over as strings ("1e-3" without a dot) and that mean numbers
_FLOAT_KEYS = ("sigma_max", "sigma_min", "lr", "weight_decay", "grad_clip", "ema_decay")
_POSITIVE_INTS = ("dim", "zdim", "hidden", "n_blocks", "num_sigmas", "batch_size", "log_every", "val_shapes",
                  "val_num_points", "val_steps_per_sigma", "ckpt_every")


class ConfigIO:
    """Dict and YAML loading shared by the trainers' config dataclasses; unknown keys are an error.

    A subclass is a dataclass; ``WHAT`` names it in error messages.
    """

    WHAT = "config"

    @classmethod
    def keys(cls) -> list[str]:
        """The valid config keys."""
        return [f.name for f in dataclasses.fields(cls)]

    def _coerce_numbers(self, names) -> None:
        """Read the numeric fields ``names`` that YAML 1.1 leaves as strings (``1e-3`` without a dot) as floats;
        ``betas`` as a tuple of two floats when the config has them."""
        for name in names:
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    setattr(self, name, float(value))
                except ValueError:
                    raise ValueError(f"{name} must be a number, got {value!r}") from None
        if hasattr(self, "betas"):
            if not isinstance(self.betas, (list, tuple)):
                raise TypeError(f"betas must be two numbers, got {self.betas!r}")
            self.betas = tuple(float(b) for b in self.betas)

    def to_dict(self) -> dict:
        """Plain dict (lists, no tuples): YAML/JSON/checkpoint safe."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_yaml(self, path=None) -> str:
        """YAML text of :meth:`to_dict`; also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict):
        """Build from a dict; unknown keys raise ``ValueError`` listing the valid ones."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown {cls.WHAT} keys {unknown}; valid keys: {cls.keys()}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path):
        """Load a YAML preset (a mapping of config keys).

        Raises:
            FileNotFoundError: no file at ``path``.
            TypeError: the file does not hold a mapping.
        """
        with open(path) as f:
            d = yaml.safe_load(f) or {}
        return cls.from_dict(d)


@dataclass
class AutoEncoderConfig(ConfigIO):
    """Everything :func:`~gfcore.train.train_autoencoder` needs; YAML presets in ``configs/`` load into it.

    Data: ``dataset`` (a name for ``gfcore.data.build_dataset(name, split, **dataset_kwargs)``; optional when
    datasets are passed to the trainer). Model: ``dim, zdim, hidden, n_blocks, block, preconditioning, norm``
    (see :class:`~gfcore.models.ShapeGF`; ``preconditioning`` is ``"none"``, the official parameterisation, or
    ``"edm"``; ``norm`` the decoder's ``"batch"`` norm, official, or ``"none"``). Noise: a geometric ladder
    ``sigma_max -> sigma_min`` of ``num_sigmas`` levels and the loss
    ``weighting``. Optimisation: ``batch_size`` shapes per step (the total over all GPUs), the run length as
    ``max_steps`` or ``epochs`` (one of the two), Adam ``lr, betas, weight_decay``, ``lr_schedule`` (see
    :func:`gfcore.schedule.lr_factor`), ``grad_clip`` (max grad norm, ``None`` off), ``ema_decay`` (``None`` off;
    when set, validation and the returned model use the EMA weights). Speed: ``amp`` (``"auto"``, ``"bf16"``,
    ``"off"``; see :func:`gfcore.train.distributed.autocast_dtype`), ``compile`` (``torch.compile`` the
    decoder), ``tf32``, ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``), ``num_workers``. ``seed`` (official
    100). Logging: every ``log_every`` steps; reconstruction Chamfer of ``val_shapes`` held-out shapes under the
    official protocol, beside its oracle (``val_num_points`` points in and as reference, ``val_steps_per_sigma``
    Langevin steps per level; :func:`gfcore.evaluation.evaluate_reconstruction`) every ``val_every`` steps
    (``None`` off); ``last.pt`` every ``ckpt_every`` steps and at the end. ``init_from``: start from trained
    weights instead of a random initialisation (a fine-tuning stage): ``"pretrained:NAME"`` (a shipped model,
    :mod:`gfcore.pretrained`) or the path of a trainer checkpoint or run folder (its raw weights); the
    architecture must match. The optimizer, schedule and step count start afresh. ``train_only``: ``None`` (all
    weights) or ``"encoder"``: the decoder frozen (no gradients, left out of the optimizer), so the stage teaches
    the encoder to produce the codes the trained decoder needs (its amortisation gap, chapter 5).

    The official ShapeNet recipe: defaults plus ``epochs=2000`` (one category) and the dataset.

    Raises:
        ValueError, TypeError: on construction, naming the first bad field.

    Taught in chapter 4/5.
    """

    dataset: str | None = None
    dataset_kwargs: dict = field(default_factory=dict)
    dim: int = 3
    zdim: int = 128
    hidden: int = 256
    n_blocks: int = 24
    block: str = "add"
    preconditioning: str = "none"
    norm: str = "batch"
    sigma_max: float = 1.0
    sigma_min: float = 0.01
    num_sigmas: int = 10
    weighting: str = "shapegf"
    batch_size: int = 32
    max_steps: int | None = None
    epochs: int | None = None
    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: str = "official"
    grad_clip: float | None = None
    ema_decay: float | None = None
    amp: str = "auto"
    compile: bool = False
    tf32: bool = True
    device: str = "auto"
    num_workers: int = 0
    seed: int = 100
    log_every: int = 50
    val_every: int | None = 1000
    val_shapes: int = 16
    val_num_points: int = 2048
    val_steps_per_sigma: int = 10
    ckpt_every: int = 1000
    keep_checkpoints: bool = False
    init_from: str | None = None
    train_only: str | None = None

    def __post_init__(self):
        self._coerce_numbers(_FLOAT_KEYS)
        self.dataset_kwargs = dict(self.dataset_kwargs or {})
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        for name in _POSITIVE_INTS:
            _checks.positive_int(name, getattr(self, name))
        for name in ("max_steps", "epochs", "val_every"):
            if getattr(self, name) is not None:
                _checks.positive_int(name, getattr(self, name))
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError(f"set max_steps or epochs, not both (got max_steps={self.max_steps}, "
                             f"epochs={self.epochs})")
        _checks.choice("block", self.block, ("add", "cbn"))
        _checks.choice("preconditioning", self.preconditioning, PRECONDITIONINGS)
        _checks.choice("norm", self.norm, NORMS)
        _checks.choice("weighting", self.weighting, tuple(WEIGHTINGS))
        _checks.choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _checks.choice("amp", self.amp, AMP_MODES)
        _checks.choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda"))
        _checks.positive("sigma_max", float(self.sigma_max))
        _checks.positive("sigma_min", float(self.sigma_min))
        _checks.positive("lr", float(self.lr))
        if len(self.betas) != 2 or not all(0 <= float(b) < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if float(self.weight_decay) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip is not None:
            _checks.positive("grad_clip", float(self.grad_clip))
        if self.ema_decay is not None and not 0 < float(self.ema_decay) < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {self.num_workers!r}")
        if self.train_only is not None:
            _checks.choice("train_only", self.train_only, ("encoder",))
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()):
            raise ValueError(f"init_from must be 'pretrained:NAME' or a checkpoint path, got {self.init_from!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")

    def model_kwargs(self) -> dict:
        """The keyword arguments of :class:`~gfcore.models.ShapeGF` (its ``config``)."""
        return {k: getattr(self, k) for k in ShapeGF.CONFIG_KEYS}

    def sigmas(self, device=None) -> torch.Tensor:
        """The ``(L,)`` training ladder."""
        return geometric_sigmas(float(self.sigma_max), float(self.sigma_min), self.num_sigmas, device=device)


def resolve_config(config, overrides: dict) -> AutoEncoderConfig:
    """An :class:`AutoEncoderConfig` from a config, a dict or ``None`` (the defaults), with ``overrides`` on top.

    Raises:
        TypeError: ``config`` of another type.
        ValueError: unknown keys, bad values.
    """
    if config is None:
        config = AutoEncoderConfig()
    elif isinstance(config, dict):
        config = AutoEncoderConfig.from_dict(config)
    elif not isinstance(config, AutoEncoderConfig):
        raise TypeError(f"config must be an AutoEncoderConfig, a dict or None, got {type(config).__name__}")
    if overrides:
        config = AutoEncoderConfig.from_dict({**config.to_dict(), **overrides})
    return config
