"""Run folders and checkpoints: what a training run writes, and how it is read back.

A run folder (:class:`RunDir`) holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON object
per log record) and ``checkpoints/last.pt`` (plus ``step_XXXXXX.pt`` with ``keep_checkpoints``). A checkpoint is
a dict of tensors and primitive containers only (format version 1, kind ``"shapegf-autoencoder"``), so it loads
with ``torch.load(..., weights_only=True)``; it holds the model, optimizer and EMA weights, the log, and the RNG
states of every rank, so that a resumed run replays the uninterrupted one. Reading checkpoints back
(:func:`load_checkpoint`, :func:`load_model`) lives in :mod:`gfcore.checkpoint_io`, below training and evaluation;
the names are importable from here too.

Taught in chapter 5 (The full 3D model).
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from gfcore import checkpoint_io
from gfcore._version import __version__
from gfcore.checkpoint_io import FORMAT_VERSION, load_checkpoint, load_model, load_state  # noqa: F401 (re-exported)
from gfcore.models import ShapeGF

CHECKPOINT_KIND = checkpoint_io.AUTOENCODER_KIND
REQUIRED_KEYS = checkpoint_io.AUTOENCODER_KEYS


class RunDir:
    """A training run's folder and the paths inside it; the one place that names them.

    Args:
        path: the run folder (need not exist yet).

    Attributes:
        path: the folder; ``config_path`` (``config.yaml``), ``metrics_path`` (``metrics.jsonl``),
            ``checkpoints`` (``checkpoints/``) and ``last`` (``checkpoints/last.pt``).

    Taught in chapter 5 (The full 3D model).
    """

    def __init__(self, path):
        if isinstance(path, RunDir):
            path = path.path
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / "last.pt"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def __eq__(self, other) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def step_checkpoint(self, step: int) -> Path:
        """``checkpoints/step_XXXXXX.pt``: the copy kept at ``step`` with ``keep_checkpoints``."""
        return self.checkpoints / f"step_{int(step):06d}.pt"

    def has_checkpoint(self) -> bool:
        """Whether ``checkpoints/last.pt`` exists (a run can be resumed)."""
        return self.last.is_file()

    def read_metrics(self) -> list[dict]:
        """The log records of ``metrics.jsonl`` (an empty list before the first one)."""
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    # -- writing (rank 0 of the trainer) -----------------------------------------------------------------------
    def write_config(self, config) -> Path:
        """Write ``config.yaml`` (an :class:`~gfcore.train.AutoEncoderConfig`), creating the folder."""
        self.path.mkdir(parents=True, exist_ok=True)
        config.to_yaml(self.config_path)
        return self.config_path

    def open_metrics(self, history: list[dict]):
        """Open ``metrics.jsonl`` for writing, starting with ``history`` (on resume: the records up to the
        checkpoint); the caller closes the file."""
        self.path.mkdir(parents=True, exist_ok=True)
        f = open(self.metrics_path, "w")  # noqa: SIM115 (the trainer closes it)
        for record in history:
            f.write(json.dumps(record) + "\n")
        f.flush()
        return f

    def save(self, ckpt: dict, *, keep: bool = False) -> Path:
        """Write ``ckpt`` atomically to ``last.pt`` (and to ``step_XXXXXX.pt`` when ``keep``)."""
        save_checkpoint(ckpt, self.last)
        if keep:
            save_checkpoint(ckpt, self.step_checkpoint(ckpt["step"]))
        return self.last


class RecordLog:
    """A training run's log records: kept in ``history``, appended to the run folder's ``metrics.jsonl`` (when
    there is one) and handed to ``callback``; it also times the steps between records. Both trainers log
    through it.

    Args:
        run: the :class:`RunDir` to write to, or ``None`` (nothing is written).
        history: the records so far (on resume: those up to the checkpoint; ``metrics.jsonl`` is rewritten to
            exactly them); new records are appended to this list.
        callback: called with every new record, or ``None``.
        step: the step the run starts at (the first window of :meth:`steps_per_s`).

    Taught in chapter 5 (The full 3D model).
    """

    def __init__(self, run: RunDir | None, history: list, callback=None, *, step: int = 0):
        self.history = history
        self.callback = callback
        self._file = run.open_metrics(history) if run is not None else None
        self._time, self._step = time.perf_counter(), step

    def steps_per_s(self, step: int) -> float:
        """Steps per second since the previous call (or the start), and start the next window at ``step``."""
        now = time.perf_counter()
        rate = (step - self._step) / max(now - self._time, 1e-9)
        self._time, self._step = now, step
        return rate

    def add(self, record: dict) -> None:
        """Keep, write (flushed: a crash loses nothing) and hand on one record."""
        self.history.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        if self.callback is not None:
            self.callback(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def save_checkpoint(obj: dict, path) -> Path:
    """Write ``obj`` with ``torch.save`` atomically: a temporary file in the same folder, fsync, ``os.replace``.

    Returns:
        ``path`` as a ``Path``.

    Taught in chapter 5 (The full 3D model).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes the file private (0600); a checkpoint is a plain file
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


def checkpoint_file(path) -> Path:
    """A checkpoint file, or a run folder's ``checkpoints/last.pt`` (:func:`gfcore.checkpoint_io.checkpoint_file`;
    a :class:`RunDir` means its ``last.pt`` even before the folder exists)."""
    return path.last if isinstance(path, RunDir) else checkpoint_io.checkpoint_file(path)


def architecture_diff(saved: dict, model: ShapeGF) -> list[str]:
    """Lines ``"key: checkpoint a, requested b"`` where a checkpoint's ``model_config`` differs from ``model``'s.

    Keys a checkpoint of an earlier gfcore lacks are compared at their defaults.
    """
    saved = ShapeGF.from_config(saved).config
    keys = sorted(set(saved) | set(model.config))
    return [f"{k}: checkpoint {saved.get(k)!r}, requested {model.config.get(k)!r}" for k in keys
            if saved.get(k) != model.config.get(k)]


def initial_weights(source: str, model: ShapeGF) -> dict:
    """The state dict ``source`` names, checked to fit ``model``: a trainer config's ``init_from``.

    Args:
        source: ``"pretrained:NAME"`` (a model of :mod:`gfcore.pretrained`, stored in half precision and cast to
            ``model``'s dtype) or the path of a checkpoint written by the trainer, or its run folder (the raw
            weights, not the EMA copy).
        model: the freshly built model the weights are for.

    Returns:
        A state dict for ``model.load_state_dict``.

    Raises:
        ValueError: an unknown pretrained name, an incompatible checkpoint, or an architecture that differs from
            ``model``'s (each differing key named).
        FileNotFoundError: no checkpoint at the path.
    """
    dtype = next(model.parameters()).dtype
    if source.startswith("pretrained:"):
        from gfcore import pretrained

        name = source.split(":", 1)[1]
        saved = pretrained.load(name, device="cpu", dtype=dtype)
        if not isinstance(saved, ShapeGF):
            raise ValueError(f"init_from={source!r} is a {type(saved).__name__}, not an auto-encoder (ShapeGF)")
        config, state, where = saved.config, saved.state_dict(), source
    else:
        path = checkpoint_file(source)
        ckpt = load_checkpoint(path, map_location="cpu")
        config, state, where = ckpt["model_config"], ckpt["model"], path
    diff = architecture_diff(config, model)
    if diff:
        raise ValueError(f"init_from={where}: a different architecture: " + "; ".join(diff))
    return state


# -- RNG states as tensors and primitives (weights_only-safe) ----------------------------------------------------
def capture_rng() -> dict:
    """The global RNG states (torch, CUDA when initialised, NumPy, Python) as tensors and primitives."""
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


def restore_rng(state: dict) -> None:
    """Restore what :func:`capture_rng` captured (CUDA only when the device count matches, else a warning)."""
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


def checkpoint_state(*, step: int, total_steps: int, config, model: ShapeGF, optimizer, ema, lr: float,
                     rng: list[dict], steps_per_epoch: int, history: list[dict]) -> dict:
    """The checkpoint dict of format version 1 (the keys :func:`load_checkpoint` requires, plus
    ``torch_version``).

    Args:
        step, total_steps: steps done and the run length.
        config: the run's :class:`~gfcore.train.AutoEncoderConfig`.
        model, optimizer, ema: the live model (unwrapped), its optimizer, the EMA copy (or ``None``).
        lr: the learning rate of the last step.
        rng: one :func:`capture_rng` dict per rank.
        steps_per_epoch: batches per epoch.
        history: the log records so far.
    """
    return {
        "format_version": FORMAT_VERSION, "kind": CHECKPOINT_KIND, "gfcore_version": __version__,
        "torch_version": str(torch.__version__), "step": step, "total_steps": total_steps,
        "config": config.to_dict(), "model_config": dict(model.config),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": {"name": config.lr_schedule, "base_lr": float(config.lr), "last_step": step,
                      "total_steps": total_steps, "lr": lr},
        "ema": ema.state_dict() if ema is not None else None,
        "rng": {"world_size": len(rng), "ranks": rng},
        "sampler": {"seed": config.seed, "epoch": step // steps_per_epoch, "position": step % steps_per_epoch,
                    "steps_per_epoch": steps_per_epoch, "batch_size": config.batch_size},
        "history": history,
    }
