"""The auto-encoder's training loop: set up, then for every step fetch, forward, step, log, validate, save.

``train_autoencoder(config, ...)`` runs the official recipe (Adam 1e-3, batch 32 shapes, one sigma per shape from
the 10-level ladder, the learning rate flat for half the run then decaying to 1%) with today's options: bf16
autocast (:func:`gfcore.train.distributed.autocast_dtype`), ``torch.compile``, EMA, gradient clipping, multi-GPU
DDP under ``torchrun``, atomic checkpoints and exact resume (:mod:`gfcore.train.checkpoint`).

Determinism: batches and DSM noise are pure functions of ``(seed, step, rank)`` (:mod:`gfcore.train.batches`).
What the dataset draws itself (e.g. a fresh subset of points per item) comes from the global RNGs, whose states
(torch, CUDA, NumPy, Python; per rank) are checkpointed. Resume is bit-exact with ``num_workers=0``; with worker
processes the per-item draws after a mid-epoch resume differ.

Taught in chapter 4 (Conditional fields in 2D) and chapter 5 (The full 3D model).
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate
from tqdm.auto import tqdm

from gfcore.evaluation import evaluate_reconstruction, spread_indices
from gfcore.models import ShapeGF
from gfcore.schedule import lr_factor
from gfcore.train import distributed
from gfcore.train.batches import StepBatches, mix_seed, seed_worker
from gfcore.train.checkpoint import (
    RecordLog,
    RunDir,
    architecture_diff,
    capture_rng,
    checkpoint_state,
    initial_weights,
    load_checkpoint,
    load_state,
    restore_rng,
)
from gfcore.train.config import AutoEncoderConfig, resolve_config
from gfcore.train.watch import FirstBadStep
from gfcore.utils import seed_everything


@dataclass
class TrainResult:
    """What :func:`train_autoencoder` returns: the model (eval mode; EMA weights when kept), the log records,
    the run folder (``None`` when nothing was written), the config and the final step.

    Taught in chapter 4/5.
    """

    model: ShapeGF
    history: list
    out_dir: Path | None
    config: AutoEncoderConfig
    step: int

    @property
    def run(self) -> RunDir | None:
        """The run folder as a :class:`~gfcore.train.RunDir` (``None`` when nothing was written)."""
        return RunDir(self.out_dir) if self.out_dir is not None else None


def train_autoencoder(config: AutoEncoderConfig | dict | None = None, *, train_set: Dataset | None = None,
                      val_set: Dataset | None = None, out_dir=None, resume: bool = False, progress: bool = True,
                      callback=None, **overrides) -> TrainResult:
    """Train ShapeGF's encoder and decoder jointly with multi-sigma denoising score matching (ShapeGF Eq. 5).

    Args:
        config: an :class:`AutoEncoderConfig`, a dict of its keys, or ``None`` (defaults); ``overrides`` (config
            keys as keyword arguments) are applied on top, e.g. ``train_autoencoder(cfg, max_steps=200)``.
        train_set, val_set: datasets of ``{"points": (N, d), "shift": (1, d), "scale": (1, 1), "idx"}`` items;
            when omitted they are built with ``gfcore.data.build_dataset(config.dataset, "train"/"val",
            **config.dataset_kwargs)``. Without any validation set, validation uses the first training shapes.
        out_dir: the run folder (a path or :class:`~gfcore.train.RunDir`) for ``config.yaml``,
            ``metrics.jsonl`` and ``checkpoints/``; ``None`` writes nothing.
        resume: continue from the run folder's ``checkpoints/last.pt`` (same final weights as an uninterrupted
            run).
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
    cfg = resolve_config(config, overrides)
    run = RunDir(out_dir) if out_dir is not None else None
    if resume and run is None:
        raise ValueError("resume=True needs out_dir (the run folder holding checkpoints/last.pt)")
    with distributed.process_group(cfg.device) as (rank, world, device), \
            distributed.tf32(cfg.tf32 and device.type == "cuda"):   # restored afterwards: the notebook stays fp32
        return _train(cfg, train_set, val_set, run, resume, progress, callback, rank, world, device)


# ================================================================================================================
# set-up: data, model, resume
# ================================================================================================================
def _datasets(cfg: AutoEncoderConfig, train_set, val_set):
    """The training and validation sets: those given, else built from ``cfg.dataset``; dimensions checked."""
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
    return train_set, val_set


def _run_length(cfg: AutoEncoderConfig, n_items: int, world: int) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)``."""
    if n_items < cfg.batch_size:
        raise ValueError(f"train_set has {n_items} shapes, fewer than batch_size={cfg.batch_size}")
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world})")
    steps_per_epoch = n_items // cfg.batch_size
    if cfg.max_steps is None and cfg.epochs is None:
        raise ValueError("set max_steps or epochs in the config")
    total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
    return steps_per_epoch, total


def _build(cfg: AutoEncoderConfig, device, rank: int, world: int):
    """``(model, optimizer, ema)``: identical initial weights on every rank, then per-rank RNG streams."""
    seed_everything(cfg.seed)
    model = ShapeGF.from_config(cfg.model_kwargs())
    if cfg.init_from is not None:       # a fine-tuning stage: trained weights instead of the initialisation
        load_state(model, initial_weights(cfg.init_from, model), cfg.init_from, "init_from")
    model = model.to(device)
    if world > 1:  # identical initial weights everywhere, then per-rank streams for the dataset's own draws
        seed_everything(mix_seed(cfg.seed, 11, rank) % 2**31)
    opt_kwargs = {"fused": True} if device.type == "cuda" else {}
    if cfg.train_only == "encoder":
        model.decoder.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=cfg.lr, betas=tuple(float(b) for b in cfg.betas),
                                 weight_decay=float(cfg.weight_decay), **opt_kwargs)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema_decay is not None else None
    return model, optimizer, ema


def _resume(run: RunDir, model, optimizer, ema, rank: int, world: int, total: int) -> tuple[int, list]:
    """Load ``run.last`` into the model, optimizer, EMA and RNGs; return ``(step, history)``."""
    path = run.last
    # read on the CPU: load_state_dict copies weights and Adam's moments to the parameters' device, and Adam's step
    # counters stay on the CPU where torch keeps them (on the GPU, every optimizer step would read each of them)
    ckpt = load_checkpoint(path, map_location="cpu")
    diff = architecture_diff(ckpt["model_config"], model)
    if diff:
        raise ValueError(f"{path} was trained with a different architecture: " + "; ".join(diff))
    load_state(model, ckpt["model"], path, "model")
    optimizer.load_state_dict(ckpt["optimizer"])
    if ema is not None:
        if ckpt["ema"] is None:
            warnings.warn(f"{path} has no EMA weights; starting the EMA from the current weights", stacklevel=4)
            ema.load_state_dict(model.state_dict())
        else:
            load_state(ema, ckpt["ema"], path, "EMA")
    start, history = int(ckpt["step"]), list(ckpt["history"])
    ranks = ckpt["rng"]["ranks"]
    if len(ranks) == world:
        restore_rng(ranks[rank])
    else:
        warnings.warn(f"{path} was written by {len(ranks)} processes, now {world}: the dataset's random draws "
                      "will differ from an uninterrupted run", stacklevel=4)
    if start >= total:
        warnings.warn(f"{path} is at step {start} >= total steps {total}; nothing to train", stacklevel=4)
    return start, history


class _BadSteps:
    """The first step whose batch held NaN/inf points and the first whose loss was not finite
    (:class:`~gfcore.train.watch.FirstBadStep`, no host sync per step), raised by :meth:`check` at the next log,
    validation or checkpoint step, before anything is written, with the bad batch's dataset items."""

    def __init__(self, device: torch.device):
        self.first = FirstBadStep(("points", "loss"), device)
        self.items = {}                 # step -> the batch's dataset items (CPU), since the last check

    def note(self, step: int, points: torch.Tensor, loss: torch.Tensor, items) -> None:
        self.first.note(step, points=points, loss=loss)
        self.items[step] = items

    def check(self, world: int) -> None:
        first = self.first.read(world)
        items, self.items = self.items, {}
        if first["points"] is not None:
            idx = items.get(first["points"])
            raise ValueError(f"step {first['points']}: the batch holds NaN/inf points (dataset items "
                             f"{idx.tolist() if isinstance(idx, torch.Tensor) else '?'}); check the data")
        if first["loss"] is not None:
            raise FloatingPointError(f"step {first['loss']}: the loss is nan or inf; lower lr, enable grad_clip, or "
                                     "check the data")


class _LossWindow:
    """Per-level sums of the per-shape losses since the last log record (summed over ranks when logged)."""

    def __init__(self, sigmas: torch.Tensor):
        self.sigmas = sigmas
        self.sum = torch.zeros(len(sigmas), device=sigmas.device, dtype=torch.float64)
        self.count = torch.zeros_like(self.sum)

    @torch.no_grad()
    def add(self, loss: torch.Tensor, sigma: torch.Tensor) -> None:
        level = (sigma.detach().view(-1, 1) - self.sigmas.view(1, -1)).abs().argmin(dim=1)
        self.sum.index_add_(0, level, loss.detach().double())
        self.count.index_add_(0, level, torch.ones_like(level, dtype=torch.float64))

    def take(self, world: int) -> dict:
        """``{"loss", "loss_per_sigma"}`` of the window, then start a new one."""
        distributed.all_reduce(self.sum, self.count, world=world)
        per = (self.sum / self.count.clamp_min(1)).tolist()
        out = {"loss": float(self.sum.sum() / self.count.sum().clamp_min(1)),
               "loss_per_sigma": [v if c > 0 else None for v, c in zip(per, self.count.tolist())]}
        self.sum.zero_()
        self.count.zero_()
        return out


# ================================================================================================================
# the loop
# ================================================================================================================
def _train(cfg, train_set, val_set, run, resume, progress, callback, rank, world, device) -> TrainResult:
    # -- set-up: data, run length, model, validation shapes, resume, files ------------------------------------
    train_set, val_set = _datasets(cfg, train_set, val_set)
    steps_per_epoch, total = _run_length(cfg, len(train_set), world)
    model, optimizer, ema = _build(cfg, device, rank, world)
    sigmas = cfg.sigmas(device=device)
    val_batches = None
    if cfg.val_every and rank == 0:
        state = capture_rng()           # fetching items must not move the training RNG streams
        val_batches = _validation_batches(val_set if val_set is not None else train_set, cfg)
        restore_rng(state)
    start, history = _resume(run, model, optimizer, ema, rank, world, total) if resume else (0, [])
    if cfg.compile:
        model.decoder.compile()
    train_module = distributed.wrap(model, world, device)
    if run is not None and rank == 0:
        run.write_config(cfg)

    loader = DataLoader(train_set, batch_sampler=StepBatches(len(train_set), cfg.batch_size, cfg.seed, start,
                                                             total, rank, world),
                        num_workers=cfg.num_workers, pin_memory=device.type == "cuda", worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(mix_seed(cfg.seed, 5, start, rank)))
    amp_dtype = distributed.autocast_dtype(device, cfg.amp)
    noise_gen = torch.Generator(device=device)
    window = _LossWindow(sigmas)
    bad = _BadSteps(device)
    eval_model = ema if ema is not None else model
    ema_params = list(ema.parameters()) if ema is not None else None
    live_params = list(model.parameters())
    bar = tqdm(total=total, initial=start, disable=not progress or rank != 0, desc="train", dynamic_ncols=True)
    step = start
    model.train()
    if cfg.train_only == "encoder":
        model.decoder.eval()            # frozen: its batch norm (if any) keeps its running statistics
    # rank 0 keeps, writes and hands on the records (on resume: exactly the records up to the checkpoint)
    log = RecordLog(run if rank == 0 else None, history, callback if rank == 0 else None, step=start)
    try:
        for step_idx, batch in zip(range(start, total), loader):
            step = step_idx + 1
            # 1. the batch
            points = batch["points"].to(device, non_blocking=True)
            # 2. the learning rate of this step
            lr = cfg.lr * lr_factor(cfg.lr_schedule, step_idx, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # 3. the loss: per-shape DSM at one sigma per shape, noise from (seed, rank, step); the values of the
            #    batch and the loss are checked on the device (read at the next log step, not synchronised here)
            noise_gen.manual_seed(mix_seed(cfg.seed, 3, rank, step_idx))
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                loss, sig = train_module(points, sigmas, weighting=cfg.weighting, generator=noise_gen,
                                         return_sigma=True, check_values=False)
            mean = loss.mean()
            bad.note(step, points, mean, batch.get("idx"))
            # 4. the update, then the EMA
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
            window.add(loss, sig)
            bar.update()

            # 5. the log record: training loss, then validation (a NaN batch or loss since the last one raises)
            logging = step % cfg.log_every == 0 or step == total
            validating = bool(cfg.val_every) and (step % cfg.val_every == 0 or step == total)
            saving = run is not None and (step % cfg.ckpt_every == 0 or step == total)
            if logging or validating or saving:
                bad.check(world)
            record = {}
            if logging:
                record.update({"step": step, "epoch": round(step / steps_per_epoch, 4), **window.take(world),
                               "lr": lr, "steps_per_s": log.steps_per_s(step)})
                bar.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{lr:.2e}")
            if validating:
                record.update({"step": step, **_validate_on_rank0(cfg, eval_model, val_batches, step, rank, world,
                                                                  device)})
                bar.set_postfix(loss=record.get("loss", float("nan")), val_cd=f"{record['val_chamfer']:.4g}")
            if record and rank == 0:
                log.add(record)

            # 6. the checkpoint (every rank's RNG states, rank 0 writes)
            if saving:
                rng = distributed.gather(capture_rng(), world)
                if rank == 0:
                    run.save(checkpoint_state(step=step, total_steps=total, config=cfg, model=model,
                                              optimizer=optimizer, ema=ema, lr=lr, rng=rng,
                                              steps_per_epoch=steps_per_epoch, history=history),
                             keep=cfg.keep_checkpoints)
    finally:
        bar.close()
        log.close()
    distributed.barrier(world)
    model.eval()
    return TrainResult(model=eval_model.eval(), history=history, out_dir=run.path if run else None, config=cfg,
                       step=step)


def _validation_batches(dataset, cfg: AutoEncoderConfig) -> tuple[dict, dict]:
    """``(inputs, references)``: ``val_shapes`` shapes spread over the set, as the official protocol takes them.

    A gfcore data set gives its train-pool sample as the input and its test-pool sample as the reference
    (:meth:`~gfcore.data.base.PointCloudDataset.view`, ``val_num_points`` points each, fewer when a pool is
    smaller); any other data set gives two draws of each item (which must differ, or validation records NaN).
    """
    inputs = references = dataset
    if hasattr(dataset, "view"):
        def pool_view(pool):
            size = len(range(dataset.cloud_size)[dataset.pools[pool]])
            return dataset.view(pool=pool, sample="first", num_points=min(cfg.val_num_points, size))

        inputs, references = pool_view("train"), pool_view("test")
    idx = spread_indices(len(dataset), cfg.val_shapes)
    return default_collate([inputs[i] for i in idx]), default_collate([references[i] for i in idx])


def _validate_on_rank0(cfg, model, batches, step: int, rank: int, world: int, device) -> dict:
    """Rank 0 validates (:func:`_validate`); the other ranks learn whether it failed, so that an error there stops
    every rank at once instead of leaving the others waiting in the next collective until its timeout."""
    record, error = {}, None
    if rank == 0:
        try:
            record = {"step": step, **_validate(cfg, model, batches, step)}
        except Exception as err:        # re-raised below, after telling the other ranks
            error = err
    if world > 1:
        failed = torch.tensor([0 if error is None else 1], device=device)
        distributed.all_reduce(failed, world=world)
        if error is None and int(failed.item()):
            raise RuntimeError(f"step {step}: validation failed on rank 0 (its traceback says why); rank {rank} "
                               "stops too")
    if error is not None:
        raise error
    return record


def _validate(cfg: AutoEncoderConfig, model, batches: tuple[dict, dict], step: int) -> dict:
    """``{"val_chamfer", "val_chamfer_oracle"}`` of the validation shapes (:func:`gfcore.evaluation.
    evaluate_reconstruction`, Chamfer only); NaN (with a warning) when the sampler fails."""
    try:
        out = evaluate_reconstruction(model, *batches, emd_method=None, steps_per_sigma=cfg.val_steps_per_sigma,
                                      seed=cfg.seed, batch_size=cfg.val_shapes)
        return {"val_chamfer": out["CD"], "val_chamfer_oracle": out["oracle-CD"]}
    except ValueError as err:  # an early, rough field can throw the sampler out; keep training
        warnings.warn(f"step {step}: validation failed ({err}); val_chamfer recorded as NaN", RuntimeWarning,
                      stacklevel=1)
        return {"val_chamfer": float("nan"), "val_chamfer_oracle": float("nan")}
