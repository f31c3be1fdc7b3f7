"""Training ShapeGF's auto-encoder: the one trainer the chapters and the CLI share.

``train_autoencoder(config, ...)`` runs the official recipe (Adam 1e-3, batch 32 shapes, one sigma per shape from
the 10-level ladder, the learning rate flat for half the run then decaying to 1%) with today's options: bf16
autocast on CUDA, ``torch.compile``, EMA, gradient clipping, multi-GPU DDP under ``torchrun``, atomic checkpoints
and exact resume.

Files (only when ``out_dir`` is given, only rank 0 writes): ``config.yaml`` (the resolved config),
``metrics.jsonl`` (one JSON object per log line), ``checkpoints/last.pt`` (and ``step_XXXXXX.pt`` with
``keep_checkpoints``). Checkpoints hold only tensors and primitive containers, so they load with
``torch.load(..., weights_only=True)``.

Determinism: the order of shapes is a permutation per epoch drawn from ``(seed, epoch)``; the DSM noise of step
``t`` on rank ``r`` comes from a generator seeded by ``(seed, r, t)``. Neither has state to lose, so a run resumed
from a checkpoint replays the same batches and noise. What the dataset draws itself (e.g. a fresh subset of points
per item) comes from the global RNGs, whose states (torch, CUDA, NumPy, Python; per rank) are checkpointed. Resume
is bit-exact with ``num_workers=0``; with worker processes the per-item draws after a mid-epoch resume differ.

Taught in chapter 4 (Conditional fields in 2D) and chapter 5 (The full 3D model).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import random
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data._utils.collate import default_collate
from tqdm.auto import tqdm

from gfcore import _checks
from gfcore.metrics import chamfer_distance
from gfcore.models import ShapeGF
from gfcore.schedule import WEIGHTINGS, geometric_sigmas
from gfcore.utils import seed_everything

FORMAT_VERSION = 1
CHECKPOINT_KIND = "shapegf-autoencoder"
LR_SCHEDULES = ("official", "constant", "cosine")
AMP_MODES = ("auto", "bf16", "off")
MODEL_KEYS = ("dim", "zdim", "hidden", "n_blocks", "block")
_REQUIRED_KEYS = ("format_version", "kind", "gfcore_version", "step", "total_steps", "config", "model_config",
                  "model", "optimizer", "scheduler", "ema", "rng", "sampler", "history")


# ================================================================================================================
# configuration
# ================================================================================================================
@dataclass
class AutoEncoderConfig:
    """Everything :func:`train_autoencoder` needs; YAML presets in ``configs/`` load into it.

    Data: ``dataset`` (a name for ``gfcore.data.build_dataset(name, split, **dataset_kwargs)``; optional when
    datasets are passed to the trainer). Model: ``dim, zdim, hidden, n_blocks, block`` (see
    :class:`~gfcore.models.ShapeGF`). Noise: a geometric ladder ``sigma_max -> sigma_min`` of ``num_sigmas``
    levels and the loss ``weighting``. Optimisation: ``batch_size`` shapes per step (the total over all GPUs),
    the run length as ``max_steps`` or ``epochs`` (one of the two), Adam ``lr, betas, weight_decay``,
    ``lr_schedule`` (``"official"``: flat for the first half, then linear decay to 1% at 95% of the run;
    ``"constant"``; ``"cosine"``), ``grad_clip`` (max grad norm, ``None`` off), ``ema_decay`` (``None`` off; when
    set, validation and the returned model use the EMA weights). Speed: ``amp`` (``"auto"`` = bf16 autocast on
    CUDA only, ``"bf16"``, ``"off"``), ``compile`` (``torch.compile`` the decoder), ``tf32``, ``device``
    (``"auto"``, ``"cpu"``, ``"cuda"``), ``num_workers``. ``seed`` (official 100). Logging: every ``log_every``
    steps; reconstruction Chamfer of ``val_shapes`` held-out shapes (``val_num_points`` points,
    ``val_steps_per_sigma`` Langevin steps per level) every ``val_every`` steps (``None`` off); ``last.pt`` every
    ``ckpt_every`` steps and at the end.

    The official ShapeNet recipe: defaults plus ``epochs=2000`` (one category) and the dataset.

    Taught in chapter 4/5.
    """

    dataset: str | None = None
    dataset_kwargs: dict = field(default_factory=dict)
    dim: int = 3
    zdim: int = 128
    hidden: int = 256
    n_blocks: int = 24
    block: str = "add"
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

    def __post_init__(self):
        for name in ("sigma_max", "sigma_min", "lr", "weight_decay", "grad_clip", "ema_decay"):
            value = getattr(self, name)
            if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
                try:
                    setattr(self, name, float(value))
                except ValueError:
                    raise ValueError(f"{name} must be a number, got {value!r}") from None
        self.betas = tuple(float(b) for b in self.betas)
        self.dataset_kwargs = dict(self.dataset_kwargs or {})
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        for name in ("dim", "zdim", "hidden", "n_blocks", "num_sigmas", "batch_size", "log_every", "val_shapes",
                     "val_num_points", "val_steps_per_sigma", "ckpt_every"):
            _checks.positive_int(name, getattr(self, name))
        for name in ("max_steps", "epochs", "val_every"):
            if getattr(self, name) is not None:
                _checks.positive_int(name, getattr(self, name))
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError(f"set max_steps or epochs, not both (got max_steps={self.max_steps}, "
                             f"epochs={self.epochs})")
        _checks.choice("block", self.block, ("add", "cbn"))
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
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")

    @classmethod
    def keys(cls) -> list[str]:
        """The valid config keys."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict) -> AutoEncoderConfig:
        """Build from a dict; unknown keys raise ``ValueError`` listing the valid ones."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid keys: {cls.keys()}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path) -> AutoEncoderConfig:
        """Load a YAML preset (a mapping of config keys)."""
        with open(path) as f:
            d = yaml.safe_load(f) or {}
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        """Plain dict (lists, no tuples): YAML/JSON/checkpoint safe."""
        d = dataclasses.asdict(self)
        d["betas"] = [float(b) for b in self.betas]
        return d

    def to_yaml(self, path=None) -> str:
        """YAML text of :meth:`to_dict`; also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def model_kwargs(self) -> dict:
        return {k: getattr(self, k) for k in MODEL_KEYS}

    def sigmas(self, device=None) -> torch.Tensor:
        """The ``(L,)`` training ladder."""
        return geometric_sigmas(float(self.sigma_max), float(self.sigma_min), self.num_sigmas, device=device)


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate before optimizer step ``step`` (0-based) of ``total_steps``.

    ``"official"``: 1 for the first half, then linear to 0.01 at 95% of the run, 0.01 after. ``"cosine"``: half
    a cosine from 1 to 0. ``"constant"``: 1.

    Taught in chapter 5.
    """
    _checks.choice("schedule", schedule, LR_SCHEDULES)
    t = step / max(int(total_steps), 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
    if t < 0.5:
        return 1.0
    return max(0.01, 1.0 - 0.99 * (t - 0.5) / 0.45)


# ================================================================================================================
# checkpoints
# ================================================================================================================
def save_checkpoint(obj: dict, path) -> Path:
    """Write ``obj`` with ``torch.save`` atomically: a temporary file in the same folder, fsync, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable (POSIX)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def load_checkpoint(path, *, map_location="cpu") -> dict:
    """Load and check a training checkpoint (``weights_only=True``: tensors and primitive containers only).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a gfcore auto-encoder checkpoint, missing keys, or another format version.

    Taught in chapter 5.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, weights_only=True, map_location=map_location)
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} is not a gfcore checkpoint (holds a {type(ckpt).__name__}, expected a dict)")
    missing = [k for k in _REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a complete gfcore checkpoint: missing keys {missing}")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {ckpt['format_version']}; this gfcore reads "
                         f"version {FORMAT_VERSION}")
    if ckpt["kind"] != CHECKPOINT_KIND:
        raise ValueError(f"{path} holds a {ckpt['kind']!r} checkpoint, expected {CHECKPOINT_KIND!r}")
    return ckpt


def _config_diff(saved: dict, wanted: dict) -> list[str]:
    keys = sorted(set(saved) | set(wanted))
    return [f"{k}: checkpoint {saved.get(k)!r}, requested {wanted.get(k)!r}" for k in keys
            if saved.get(k) != wanted.get(k)]


def _load_state(module: torch.nn.Module, state: dict, path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: {what} weights do not fit the model: {e}") from None


def load_model(path, device=None, *, ema: bool = True) -> ShapeGF:
    """Rebuild the trained :class:`~gfcore.models.ShapeGF` from a checkpoint, in eval mode.

    Args:
        path: a checkpoint written by :func:`train_autoencoder` (e.g. ``run/checkpoints/last.pt``).
        device: where to put the model (default: CUDA when present, else CPU).
        ema: use the EMA weights when the run kept them (``ema_decay``); ``False`` takes the raw weights.

    Raises:
        ValueError: an incompatible checkpoint (see :func:`load_checkpoint`), or weights that do not fit the
            stored architecture.

    Taught in chapter 5.
    """
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    ckpt = load_checkpoint(path, map_location="cpu")
    model = ShapeGF.from_config(ckpt["model_config"])
    state = ckpt["ema"] if ema and ckpt["ema"] is not None else ckpt["model"]
    _load_state(model, state, path, "model")
    return model.to(device).eval()


# -- RNG states as tensors and primitives (weights_only-safe) ----------------------------------------------------
def _capture_rng() -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": torch.tensor(py_state[1], dtype=torch.int64),
                   "gauss_next": py_state[2]},
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return out


def _restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.warn(f"checkpoint holds {len(cuda)} CUDA RNG states for {torch.cuda.device_count()} devices; "
                          "CUDA RNG not restored", stacklevel=3)


def _mix(*values) -> int:
    """A 63-bit seed from a tuple of ints (stable across runs and platforms)."""
    digest = hashlib.blake2b(repr(tuple(int(v) for v in values)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


# ================================================================================================================
# data
# ================================================================================================================
class _StepBatches(Sampler):
    """Index lists for global steps ``start..stop-1``: a permutation per epoch from ``(seed, epoch)``, cut into
    batches of ``batch_size`` (the last partial batch dropped), of which this rank takes its contiguous share."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int, world: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.steps_per_epoch = n // batch_size
        self.local = batch_size // world

    def permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(_mix(self.seed, 7, epoch)))

    def __iter__(self):
        epoch, perm = None, None
        for step in range(self.start, self.stop):
            e, pos = divmod(step, self.steps_per_epoch)
            if e != epoch:
                epoch, perm = e, self.permutation(e)
            batch = perm[pos * self.batch_size:(pos + 1) * self.batch_size]
            yield batch[self.rank * self.local:(self.rank + 1) * self.local].tolist()

    def __len__(self):
        return self.stop - self.start


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _first_items(dataset: Dataset, count: int) -> dict:
    return default_collate([dataset[i] for i in range(min(count, len(dataset)))])


def _denormalise(points: torch.Tensor, batch: dict) -> torch.Tensor:
    scale = batch.get("scale")
    shift = batch.get("shift")
    if scale is not None:
        points = points * scale.to(points)
    if shift is not None:
        points = points + shift.to(points)
    return points


@torch.no_grad()
def evaluate_reconstruction(model: ShapeGF, dataset_or_batch, *, num_shapes: int = 16, num_points: int = 2048,
                            steps_per_sigma: int = 10, sigmas: torch.Tensor | None = None, seed: int = 0,
                            device=None) -> dict:
    """Auto-encode the first ``num_shapes`` shapes and measure the Chamfer distance to their points.

    Both clouds are mapped back to the dataset's original coordinates (``points * scale + shift`` when the items
    carry them), as the official auto-encoding evaluation does. Sampling is seeded, so two calls agree.

    Args:
        model: a :class:`~gfcore.models.ShapeGF` (switched to eval mode for the call, then restored).
        dataset_or_batch: a dataset of ``{"points", "shift", "scale"}`` items, or an already collated batch dict.
        num_shapes, num_points, steps_per_sigma, sigmas: what to reconstruct and how (default ladder: 1 -> 0.01,
            10 levels).
        seed: seed of the prior and Langevin noise.

    Returns:
        ``{"chamfer": float (mean), "chamfer_per_shape": (B,) tensor}``.

    Taught in chapter 4/5.
    """
    batch = dataset_or_batch if isinstance(dataset_or_batch, dict) else _first_items(dataset_or_batch, num_shapes)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    ref = batch["points"][:num_shapes].to(device=device, dtype=torch.float32)
    batch = {k: (v[:num_shapes].to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    gen = torch.Generator(device=device).manual_seed(seed)
    rec = model.reconstruct(ref, num_points, sigmas=sigmas, steps_per_sigma=steps_per_sigma, generator=gen)
    cd = chamfer_distance(_denormalise(rec, batch), _denormalise(ref, batch))
    return {"chamfer": float(cd.mean()), "chamfer_per_shape": cd.cpu()}


# ================================================================================================================
# the trainer
# ================================================================================================================
@dataclass
class TrainResult:
    """What :func:`train_autoencoder` returns: the model (eval mode; EMA weights when kept), the log records,
    the run folder (``None`` when nothing was written), the config and the final step."""

    model: ShapeGF
    history: list
    out_dir: Path | None
    config: AutoEncoderConfig
    step: int


def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r} but CUDA is not available")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    return torch.device("cpu")


def _setup_distributed(cfg: AutoEncoderConfig):
    """``(rank, world, device, created)``: join the process group when launched by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _resolve_device(cfg.device, local_rank)
    created = False
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            created = True
        rank, world = dist.get_rank(), dist.get_world_size()
    return rank, world, device, created


def train_autoencoder(config: AutoEncoderConfig | dict | None = None, *, train_set: Dataset | None = None,
                      val_set: Dataset | None = None, out_dir=None, resume: bool = False, progress: bool = True,
                      callback=None, **overrides) -> TrainResult:
    """Train ShapeGF's encoder and decoder jointly with multi-sigma denoising score matching.

    Args:
        config: an :class:`AutoEncoderConfig`, a dict of its keys, or ``None`` (defaults); ``overrides`` (config
            keys as keyword arguments) are applied on top, e.g. ``train_autoencoder(cfg, max_steps=200)``.
        train_set, val_set: datasets of ``{"points": (N, d), "shift": (1, d), "scale": (1, 1), "idx"}`` items;
            when omitted they are built with ``gfcore.data.build_dataset(config.dataset, "train"/"val",
            **config.dataset_kwargs)``. Without any validation set, validation uses the first training shapes.
        out_dir: run folder for ``config.yaml``, ``metrics.jsonl`` and ``checkpoints/``; ``None`` writes nothing.
        resume: continue from ``out_dir/checkpoints/last.pt`` (same final weights as an uninterrupted run).
        progress: show a tqdm bar (rank 0).
        callback: called with every log record (a dict) on rank 0.

    Returns:
        :class:`TrainResult` (``model``, ``history``, ``out_dir``, ``config``, ``step``).

    Raises:
        ValueError: bad config, a dataset of the wrong dimension or smaller than a batch, non-finite data (naming
            the step), an incompatible checkpoint on resume.
        FloatingPointError: the loss became NaN/inf (naming the step).
        FileNotFoundError: ``resume=True`` without a checkpoint.

    Under ``torchrun`` (``WORLD_SIZE > 1``): one process per GPU (NCCL) or CPU process (gloo), the model wrapped
    in ``DistributedDataParallel``, each step's ``batch_size`` shapes split evenly across ranks (batch-norm
    statistics per rank, as the official code), only rank 0 writes files.

    Taught in chapter 4/5.
    """
    if config is None:
        config = AutoEncoderConfig()
    elif isinstance(config, dict):
        config = AutoEncoderConfig.from_dict(config)
    elif not isinstance(config, AutoEncoderConfig):
        raise TypeError(f"config must be an AutoEncoderConfig, a dict or None, got {type(config).__name__}")
    if overrides:
        config = AutoEncoderConfig.from_dict({**config.to_dict(), **overrides})
    cfg = config
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir (the run folder holding checkpoints/last.pt)")
    rank, world, device, created = _setup_distributed(cfg)
    try:
        return _train(cfg, train_set, val_set, Path(out_dir) if out_dir is not None else None, resume, progress,
                      callback, rank, world, device)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg, train_set, val_set, out_dir, resume, progress, callback, rank, world, device) -> TrainResult:
    from gfcore import __version__

    # -- data -----------------------------------------------------------------------------------------------
    if train_set is None or (val_set is None and cfg.val_every and cfg.dataset is not None):
        if cfg.dataset is None:
            raise ValueError("no train_set given and config.dataset is not set")
        from gfcore.data import build_dataset

        if train_set is None:
            train_set = build_dataset(cfg.dataset, "train", **cfg.dataset_kwargs)
        if val_set is None and cfg.val_every:
            val_set = build_dataset(cfg.dataset, "val", **cfg.dataset_kwargs)
    for name, ds in (("train_set", train_set), ("val_set", val_set)):
        ds_dim = getattr(ds, "dim", None)
        if ds is not None and ds_dim is not None and ds_dim != cfg.dim:
            raise ValueError(f"{name} has dim={ds_dim} but config.dim={cfg.dim}")
    n_items = len(train_set)
    if n_items < cfg.batch_size:
        raise ValueError(f"train_set has {n_items} shapes, fewer than batch_size={cfg.batch_size}")
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world})")
    steps_per_epoch = n_items // cfg.batch_size
    if cfg.max_steps is None and cfg.epochs is None:
        raise ValueError("set max_steps or epochs in the config")
    total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch

    # -- model, optimizer, EMA ------------------------------------------------------------------------------
    if device.type == "cuda" and cfg.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed_everything(cfg.seed)
    model = ShapeGF(**cfg.model_kwargs()).to(device)
    if world > 1:  # identical initial weights everywhere, then per-rank streams for the dataset's own draws
        seed_everything(_mix(cfg.seed, 11, rank) % 2**31)
    opt_kwargs = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(float(b) for b in cfg.betas),
                                 weight_decay=float(cfg.weight_decay), **opt_kwargs)
    ema = None
    if cfg.ema_decay is not None:
        ema = copy.deepcopy(model).eval().requires_grad_(False)
    sigmas = cfg.sigmas(device=device)
    val_source = val_set if val_set is not None else train_set
    val_batch = None
    if cfg.val_every and rank == 0:
        state = _capture_rng()           # fetching items must not move the training RNG streams
        val_batch = _first_items(val_source, cfg.val_shapes)
        _restore_rng(state)

    # -- resume -----------------------------------------------------------------------------------------------
    start, history = 0, []
    ckpt_dir = out_dir / "checkpoints" if out_dir is not None else None
    if resume:
        path = ckpt_dir / "last.pt"
        ckpt = load_checkpoint(path, map_location=device)
        diff = _config_diff(ckpt["model_config"], model.config)
        if diff:
            raise ValueError(f"{path} was trained with a different architecture: " + "; ".join(diff))
        _load_state(model, ckpt["model"], path, "model")
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None:
            if ckpt["ema"] is None:
                warnings.warn(f"{path} has no EMA weights; starting the EMA from the current weights",
                              stacklevel=3)
                ema.load_state_dict(model.state_dict())
            else:
                _load_state(ema, ckpt["ema"], path, "EMA")
        start, history = int(ckpt["step"]), list(ckpt["history"])
        ranks = ckpt["rng"]["ranks"]
        if len(ranks) == world:
            _restore_rng(ranks[rank])
        else:
            warnings.warn(f"{path} was written by {len(ranks)} processes, now {world}: the dataset's random draws "
                          "will differ from an uninterrupted run", stacklevel=3)
        del ckpt
        if start >= total:
            warnings.warn(f"{path} is at step {start} >= total steps {total}; nothing to train", stacklevel=3)

    if cfg.compile:
        model.decoder.compile()
    train_module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_module = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    # -- files ------------------------------------------------------------------------------------------------
    metrics_file = None
    if out_dir is not None and rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(out_dir / "config.yaml")
        metrics_file = open(out_dir / "metrics.jsonl", "w")  # noqa: SIM115 (closed in finally)
        for rec in history:  # on resume: exactly the records up to the checkpoint
            metrics_file.write(json.dumps(rec) + "\n")
        metrics_file.flush()

    # -- loop -------------------------------------------------------------------------------------------------
    sampler = _StepBatches(n_items, cfg.batch_size, cfg.seed, start, total, rank, world)
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=device.type == "cuda", worker_init_fn=_seed_worker,
                        generator=torch.Generator().manual_seed(_mix(cfg.seed, 5, start, rank)))
    use_amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    noise_gen = torch.Generator(device=device)
    n_levels = len(sigmas)
    win_sum = torch.zeros(n_levels, device=device, dtype=torch.float64)
    win_cnt = torch.zeros(n_levels, device=device, dtype=torch.float64)
    eval_model = ema if ema is not None else model
    bar = tqdm(total=total, initial=start, disable=not progress or rank != 0, desc="train", dynamic_ncols=True)
    t_window, step_window = time.perf_counter(), start
    ema_params = list(ema.parameters()) if ema is not None else None
    live_params = list(model.parameters())
    step = start
    model.train()
    try:
        for step_idx, batch in zip(range(start, total), loader):
            step = step_idx + 1
            points = batch["points"].to(device, non_blocking=True)
            if not torch.isfinite(points).all():
                raise ValueError(f"step {step}: the batch holds NaN/inf points (dataset items "
                                 f"{batch['idx'].tolist() if 'idx' in batch else '?'})")
            lr = cfg.lr * lr_factor(cfg.lr_schedule, step_idx, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            noise_gen.manual_seed(_mix(cfg.seed, 3, rank, step_idx))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, sig = train_module(points, sigmas, weighting=cfg.weighting, generator=noise_gen,
                                         return_sigma=True)
            mean = loss.mean()
            if not bool(torch.isfinite(mean)):
                raise FloatingPointError(f"step {step}: the loss is {float(mean.detach())} (NaN/inf); lower lr, enable "
                                         "grad_clip, or check the data")
            optimizer.zero_grad(set_to_none=True)
            mean.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg.grad_clip))
            optimizer.step()
            if ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(ema_params, live_params, 1.0 - float(cfg.ema_decay))
                    for b_ema, b in zip(ema.buffers(), model.buffers()):
                        b_ema.copy_(b)
            with torch.no_grad():
                level = (sig.detach().view(-1, 1) - sigmas.view(1, -1)).abs().argmin(dim=1)
                win_sum.index_add_(0, level, loss.detach().double())
                win_cnt.index_add_(0, level, torch.ones_like(level, dtype=torch.float64))
            bar.update()

            record = {}
            if step % cfg.log_every == 0 or step == total:
                if world > 1:
                    dist.all_reduce(win_sum)
                    dist.all_reduce(win_cnt)
                now = time.perf_counter()
                per = (win_sum / win_cnt.clamp_min(1)).tolist()
                cnt = win_cnt.tolist()
                record.update({
                    "step": step, "epoch": round(step / steps_per_epoch, 4),
                    "loss": float(win_sum.sum() / win_cnt.sum().clamp_min(1)),
                    "loss_per_sigma": [v if c > 0 else None for v, c in zip(per, cnt)],
                    "lr": lr, "steps_per_s": (step - step_window) / max(now - t_window, 1e-9),
                })
                win_sum.zero_()
                win_cnt.zero_()
                t_window, step_window = now, step
                bar.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{lr:.2e}")
            if cfg.val_every and (step % cfg.val_every == 0 or step == total) and rank == 0:
                try:
                    val = evaluate_reconstruction(eval_model, val_batch, num_shapes=cfg.val_shapes,
                                                  num_points=cfg.val_num_points,
                                                  steps_per_sigma=cfg.val_steps_per_sigma, seed=cfg.seed)
                except ValueError as err:  # an early, rough field can throw the sampler out; keep training
                    warnings.warn(f"step {step}: validation failed ({err}); val_chamfer recorded as NaN",
                                  RuntimeWarning, stacklevel=1)
                    val = {"chamfer": float("nan")}
                record.update({"step": step, "val_chamfer": val["chamfer"]})
                bar.set_postfix(loss=record.get("loss", float("nan")), val_cd=f"{val['chamfer']:.4g}")
            if record and rank == 0:
                history.append(record)
                if metrics_file is not None:
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                if callback is not None:
                    callback(record)
            if ckpt_dir is not None and (step % cfg.ckpt_every == 0 or step == total):
                rng = [_capture_rng()]
                if world > 1:
                    gathered = [None] * world
                    dist.all_gather_object(gathered, rng[0])
                    rng = gathered
                if rank == 0:
                    ckpt = {
                        "format_version": FORMAT_VERSION, "kind": CHECKPOINT_KIND, "gfcore_version": __version__,
                        "torch_version": str(torch.__version__), "step": step, "total_steps": total,
                        "config": cfg.to_dict(), "model_config": dict(model.config),
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": {"name": cfg.lr_schedule, "base_lr": float(cfg.lr), "last_step": step,
                                      "total_steps": total, "lr": lr},
                        "ema": ema.state_dict() if ema is not None else None,
                        "rng": {"world_size": world, "ranks": rng},
                        "sampler": {"seed": cfg.seed, "epoch": step // steps_per_epoch,
                                    "position": step % steps_per_epoch, "steps_per_epoch": steps_per_epoch,
                                    "batch_size": cfg.batch_size},
                        "history": history,
                    }
                    save_checkpoint(ckpt, ckpt_dir / "last.pt")
                    if cfg.keep_checkpoints:
                        save_checkpoint(ckpt, ckpt_dir / f"step_{step:06d}.pt")
    finally:
        bar.close()
        if metrics_file is not None:
            metrics_file.close()
    if world > 1:
        dist.barrier()
    model.eval()
    return TrainResult(model=eval_model.eval(), history=history, out_dir=out_dir, config=cfg, step=step)
