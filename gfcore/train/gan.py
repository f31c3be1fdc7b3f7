"""Training the latent GAN: ShapeGF's generation stage, as the official code runs it.

The auto-encoder is frozen. Its encoder (eval mode) turns every training shape into a latent code once; those
codes are the "real" data of a Wasserstein GAN (Arjovsky et al. 2017) whose generator maps Gaussian noise to
codes (:class:`~gfcore.models.LatentGenerator`) and whose critic scores codes
(:class:`~gfcore.models.LatentCritic`). Official recipe: batch 256, one critic step per generator step, Adam
lr ``1e-4``, betas ``(0.5, 0.9)``, no schedule, and a zero-centred gradient penalty on the real codes of
weight 1. New shapes are then :func:`gfcore.models.sample_shapes`: a generated code decoded by annealed
Langevin.

Files (only when ``out_dir`` is given): ``config.yaml``, ``metrics.jsonl``, ``checkpoints/last.pt`` (kind
:data:`CHECKPOINT_KIND`; see :class:`~gfcore.train.RunDir`). A checkpoint holds the generator, the critic,
both optimizers, the real codes and the frozen auto-encoder's weights, so it samples shapes on its own
(:func:`load_latent_gan`) and a resumed run replays the uninterrupted one exactly (every random draw is a pure
function of ``(seed, step)``).

By job: this module holds the training loop (:func:`train_latent_gan`); :mod:`~gfcore.train.gan_steps` the losses
(:func:`gradient_penalty`) and one update of each network (:func:`generator_step`, :func:`critic_step`: the
training step, callable by hand); :mod:`~gfcore.train.gan_config` the config (:class:`LatentGANConfig`),
:mod:`~gfcore.train.gan_codes` the frozen auto-encoder and its codes (:func:`resolve_autoencoder`,
:func:`encode_dataset`), :mod:`~gfcore.train.latent_metrics` the distances between sets of codes that monitor
training (:func:`latent_mmd`, :func:`mmd_yardstick`), and :mod:`~gfcore.train.gan_checkpoint` the checkpoints
(:func:`load_latent_gan`, :class:`LatentGANResult`). Their public names are importable from here too.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gfcore import _checks
from gfcore.models import LatentCritic, LatentGenerator, ShapeGF
from gfcore.train import distributed
from gfcore.train.batches import StepBatches, mix_seed
from gfcore.train.checkpoint import RecordLog, RunDir, load_state
from gfcore.train.gan_checkpoint import (
    CHECKPOINT_KIND,
    REQUIRED_KEYS,
    LatentGANResult,
    checkpoint_state,
    load_gan_checkpoint,
    load_latent_gan,
)
from gfcore.train.gan_codes import encode_dataset, resolve_autoencoder
from gfcore.train.gan_config import PENALTIES, LatentGANConfig, resolve_gan_config
from gfcore.train.gan_steps import critic_step, generator_step, gradient_penalty
from gfcore.train.latent_metrics import latent_mmd, median_distance, mmd_yardstick
from gfcore.train.watch import FirstBadStep
from gfcore.utils import seed_everything

# random streams (the second value of mix_seed): noise of the generator step, of the critic step,
# interpolation weights of WGAN-GP, the validation noise (the yardstick's real subset is stream 25, see
# gfcore.train.latent_metrics)
_GEN_STREAM, _CRITIC_STREAM, _MIX_STREAM, _VAL_STREAM = 21, 22, 23, 24


# ============================================================================================================
# set-up: the real codes, the run length, the networks, resume, validation
# ============================================================================================================
def _resumed_codes(run: RunDir, cfg: LatentGANConfig, device):
    """``(cfg, latents, autoencoder, source, ckpt)`` from the run folder's last checkpoint: its codes and frozen
    auto-encoder, and its data settings in the config. Read onto the CPU (the optimizers' step counters stay
    there; :func:`_restore` moves the rest to the parameters' device)."""
    ckpt = load_gan_checkpoint(run.last, map_location="cpu")
    ae_state, ae_model, source = ckpt["autoencoder"], None, None
    if ae_state is not None:
        ae_model = ShapeGF.from_config(ae_state["model_config"])
        load_state(ae_model, ae_state["state_dict"], run.last, "auto-encoder")
        ae_model, source = ae_model.to(device).eval(), ae_state["source"]
    saved = LatentGANConfig.from_dict(ckpt["config"])
    cfg = dataclasses.replace(cfg, autoencoder=saved.autoencoder, dataset=saved.dataset,
                              dataset_kwargs=saved.dataset_kwargs)
    return cfg, ckpt["latents"].to(device), ae_model, source, ckpt


def _encoded_codes(cfg: LatentGANConfig, autoencoder, train_set, device, progress: bool):
    """``(cfg, latents, autoencoder, source)``: the frozen auto-encoder's codes of the training shapes (the data
    set from ``train_set``, the config, or what the auto-encoder records), recorded in the config."""
    spec = autoencoder if autoencoder is not None else cfg.autoencoder
    if spec is None:
        raise ValueError("no codes to train on: pass latents=, autoencoder=, or set config.autoencoder")
    ae_model, source, data = resolve_autoencoder(spec, device=device, ema=cfg.autoencoder_ema)
    ae_model.requires_grad_(False)
    if isinstance(spec, (str, Path)):
        cfg = dataclasses.replace(cfg, autoencoder=source)
    if train_set is None:
        if cfg.dataset is None and data is not None:
            cfg = dataclasses.replace(cfg, dataset=data["dataset"])
        if cfg.dataset_kwargs is None and data is not None:
            cfg = dataclasses.replace(cfg, dataset_kwargs=data["dataset_kwargs"])
        if cfg.dataset is None:
            raise ValueError("no training shapes to encode: pass train_set= or set config.dataset (the "
                             "auto-encoder does not record its data set)")
        from gfcore.data import build_dataset

        train_set = build_dataset(cfg.dataset, "train", **{**(cfg.dataset_kwargs or {}), "sample": "first"})
    latents = encode_dataset(ae_model, train_set, batch_size=cfg.encode_batch_size, progress=progress)
    _checks.finite("latents (the encoder's codes)", latents)
    return cfg, latents, ae_model, source


def _run_length(cfg: LatentGANConfig, n: int) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)`` for ``n`` real codes."""
    if n < cfg.batch_size:
        raise ValueError(f"{n} real codes, fewer than batch_size={cfg.batch_size}")
    if cfg.max_steps is None and cfg.epochs is None:
        raise ValueError("set max_steps or epochs in the config")
    steps_per_epoch = n // cfg.batch_size
    return steps_per_epoch, cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch


def _build(cfg: LatentGANConfig, zdim: int, device):
    """``(generator, critic, opt_generator, opt_critic)``: the networks from the seed, Adam for each."""
    seed_everything(cfg.seed)
    gen = LatentGenerator(**cfg.generator_kwargs(zdim)).to(device)
    critic = LatentCritic(**cfg.critic_kwargs(zdim)).to(device)
    betas = tuple(float(b) for b in cfg.betas)
    opt_g = torch.optim.Adam(gen.parameters(), lr=float(cfg.lr), betas=betas)
    opt_c = torch.optim.Adam(critic.parameters(), lr=float(cfg.lr), betas=betas)
    return gen, critic, opt_g, opt_c


def _restore(ckpt: dict, path, gen, critic, opt_g, opt_c) -> tuple[int, list]:
    """Load a checkpoint (read with ``map_location="cpu"``) into the networks and optimizers, wherever they
    are; return ``(step, history)``. ``Optimizer.load_state_dict`` moves each moment to its parameter's device
    and keeps Adam's ``step`` counters on the CPU, where the optimizer reads them without a host sync."""
    for what, module, key in (("generator", gen, "generator"), ("critic", critic, "critic")):
        if ckpt[f"{key}_config"] != module.config:
            raise ValueError(f"{path} has a {what} {ckpt[f'{key}_config']}, the config asks for {module.config}")
        load_state(module, ckpt[key], path, what)
    opt_g.load_state_dict(ckpt["opt_generator"])
    opt_c.load_state_dict(ckpt["opt_critic"])
    return int(ckpt["step"]), list(ckpt["history"])


def _validation_set(cfg: LatentGANConfig, latents: torch.Tensor, device):
    """``(noise, real, bandwidth, floor)`` fixed for the run (see :func:`mmd_yardstick`), or ``None``."""
    if not cfg.val_every:
        return None
    g = torch.Generator(device=device).manual_seed(mix_seed(cfg.seed, _VAL_STREAM))
    noise = torch.randn(cfg.val_samples, cfg.noise_dim, generator=g, device=device)
    return (noise, *mmd_yardstick(latents, num=cfg.val_samples, seed=cfg.seed))


def _validate(gen, val) -> dict:
    """``{"latent_mmd", "latent_mmd_floor"}`` of the generator (eval mode) on the fixed validation set."""
    noise, real, bandwidth, floor = val
    gen.eval()
    with torch.no_grad():
        fake = gen(noise)
    gen.train()
    return {"latent_mmd": latent_mmd(fake, real, bandwidth=bandwidth), "latent_mmd_floor": floor}


# ============================================================================================================
# the loop
# ============================================================================================================
def _real_batches(latents: torch.Tensor, cfg: LatentGANConfig, start: int, total: int):
    """The ``(batch_size, zdim)`` real codes of steps ``start..total-1`` in :class:`StepBatches` order; on a GPU
    the indices travel from pinned memory without blocking the host."""
    device = latents.device
    for idx in StepBatches(len(latents), cfg.batch_size, cfg.seed, start, total):
        idx = torch.as_tensor(idx)
        if device.type == "cuda":
            idx = idx.pin_memory()
        yield latents[idx.to(device, non_blocking=True)]


def _train_step(cfg: LatentGANConfig, step_idx: int, nets, real: torch.Tensor, rngs) -> dict[str, torch.Tensor]:
    """Step ``step_idx``: the generator step (every ``critic_steps`` steps), then the critic step; every random
    draw from a generator seeded by ``(seed, stream, step)``."""
    gen, critic, opt_g, opt_c = nets
    noise, mix = rngs
    stats = {}
    if step_idx % cfg.critic_steps == 0:
        noise.manual_seed(mix_seed(cfg.seed, _GEN_STREAM, step_idx))
        stats.update(generator_step(gen, critic, opt_g, batch_size=cfg.batch_size, generator=noise))
    noise.manual_seed(mix_seed(cfg.seed, _CRITIC_STREAM, step_idx))
    mix.manual_seed(mix_seed(cfg.seed, _MIX_STREAM, step_idx))
    stats.update(critic_step(gen, critic, opt_c, real, penalty=cfg.penalty, penalty_weight=float(cfg.penalty_weight),
                             generator=noise, penalty_generator=mix))
    return stats


class _StatWindow:
    """The step statistics since the last log record, summed on the device in float64 (no host sync per step),
    and the first step whose critic loss was NaN/inf."""

    def __init__(self, device):
        self.device = device
        self.sums, self.counts = {}, {}
        self.first_bad = FirstBadStep(("loss_critic",), device)

    def add(self, step: int, stats: dict) -> None:
        for k, v in stats.items():
            if k not in self.sums:
                self.sums[k] = torch.zeros((), dtype=torch.float64, device=self.device)
                self.counts[k] = 0
            self.sums[k].add_(v)
            self.counts[k] += 1
        self.first_bad.note(step, loss_critic=stats["loss_critic"])

    def check(self) -> None:
        """Raise ``FloatingPointError`` naming the first step with a NaN/inf critic loss (one host sync)."""
        bad = self.first_bad.read()["loss_critic"]
        if bad is not None:
            raise FloatingPointError(f"step {bad}: the critic loss is NaN/inf; lower lr or raise penalty_weight")

    def take(self) -> dict:
        """The window's means (one host sync), then start a new window."""
        sums = torch.stack(list(self.sums.values())).tolist() if self.sums else []
        out = {k: s / self.counts[k] for k, s in zip(self.sums, sums, strict=True)}
        self.sums, self.counts = {}, {}
        return out


def train_latent_gan(config: LatentGANConfig | dict | None = None, *, autoencoder=None,
                     latents: torch.Tensor | None = None, train_set=None, out_dir=None, resume: bool = False,
                     progress: bool = True, callback=None, **overrides) -> LatentGANResult:
    """Train the latent GAN of ShapeGF's generation stage: a Wasserstein GAN on a frozen auto-encoder's codes.

    Per step, on a batch of ``batch_size`` real codes ``z`` (an epoch is a permutation of all of them): every
    ``critic_steps`` steps one :func:`generator_step` on ``L_G = -mean D(G(n))``, then one :func:`critic_step`
    on ``L_D = mean D(G(n')) - mean D(z) + penalty_weight * penalty`` (:func:`gradient_penalty`), with fresh
    noise ``n, n' ~ N(0, I)`` each; Adam for both networks. The loop reads nothing back to the host between
    log records: the statistics are summed on the device, and a NaN/inf loss is reported at the next log record
    (or checkpoint).

    Args:
        config: a :class:`LatentGANConfig`, a dict of its keys, or ``None`` (defaults); ``overrides`` (config
            keys as keyword arguments) are applied on top, e.g. ``train_latent_gan(cfg, max_steps=200)``.
        autoencoder: the frozen auto-encoder: a :class:`~gfcore.models.ShapeGF`, a checkpoint path / run
            folder, or a pretrained name (see :func:`resolve_autoencoder`); default ``config.autoencoder``.
        latents: ``(N, zdim)`` real codes to train on directly (no auto-encoder needed; e.g. a toy
            distribution).
        train_set: the dataset to encode (default: ``config.dataset``'s ``"train"`` split with
            ``sample="first"``, or the auto-encoder's own data).
        out_dir: the run folder for ``config.yaml``, ``metrics.jsonl`` and ``checkpoints/``; ``None`` writes
            nothing.
        resume: continue from the run folder's ``checkpoints/last.pt`` (its codes and auto-encoder are reused;
            the same final weights as an uninterrupted run).
        progress: show tqdm bars.
        callback: called with every log record (a dict).

    Returns:
        :class:`LatentGANResult` (``generator``, ``critic``, ``autoencoder``, ``latents``, ``history``, ...).

    Log records: ``loss_critic``, ``loss_generator``, ``wdist`` (``mean D(z) - mean D(G(n))``, the critic's
    estimate of the Wasserstein distance), ``penalty``, ``grad_norm`` (means since the previous record),
    ``steps_per_s``; and every ``val_every`` steps ``latent_mmd`` (:func:`latent_mmd` of ``val_samples``
    generated codes against as many real ones, the bandwidth fixed from the real codes) beside
    ``latent_mmd_floor`` (two disjoint halves of the real codes against each other at the same sample size:
    what a perfect generator reaches).

    Raises:
        ValueError: bad config, no codes to train on (no ``latents``, no auto-encoder), fewer codes than a
            batch, non-finite codes, a checkpoint of another kind on resume.
        FloatingPointError: a loss became NaN/inf (naming the step; raised at the next log record or
            checkpoint, before either is written).
        FileNotFoundError: ``resume=True`` without a checkpoint.

    Taught in chapter 7 (Generating new shapes).
    """
    cfg = resolve_gan_config(config, overrides)
    run = RunDir(out_dir) if out_dir is not None else None
    if resume and run is None:
        raise ValueError("resume=True needs out_dir (the run folder holding checkpoints/last.pt)")
    return _train(cfg, run, resume, autoencoder, latents, train_set, progress, callback)


def _train(cfg, run, resume, autoencoder, latents, train_set, progress, callback) -> LatentGANResult:
    # -- set-up: the real codes and the frozen auto-encoder, the networks, resume, files --------------------
    device = distributed.resolve_device(cfg.device)
    ckpt, ae_model, source = None, None, None
    if resume:
        cfg, latents, ae_model, source, ckpt = _resumed_codes(run, cfg, device)
    elif latents is not None:
        if autoencoder is not None:
            raise ValueError("pass latents or autoencoder, not both")
        latents = _checks.tensor("latents", latents, ndims=(2,)).detach().float().to(device)
    else:
        cfg, latents, ae_model, source = _encoded_codes(cfg, autoencoder, train_set, device, progress)
    steps_per_epoch, total = _run_length(cfg, len(latents))
    gen, critic, opt_g, opt_c = _build(cfg, latents.shape[1], device)
    start, history = _restore(ckpt, run.last, gen, critic, opt_g, opt_c) if ckpt is not None else (0, [])
    if run is not None:
        run.write_config(cfg)
    val = _validation_set(cfg, latents, device)

    threads = torch.get_num_threads()
    if device.type == "cpu" and cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    rngs = (torch.Generator(device=device), torch.Generator(device=device))
    window = _StatWindow(device)
    bar = tqdm(total=total, initial=start, disable=not progress, desc="latent GAN", dynamic_ncols=True)
    step = start
    gen.train()
    critic.train()
    log = RecordLog(run, history, callback, step=start)
    try:
        for step_idx, real in zip(range(start, total), _real_batches(latents, cfg, start, total), strict=True):
            step = step_idx + 1
            # 1. the generator step (every critic_steps steps), then the critic step; sums kept on the device
            window.add(step, _train_step(cfg, step_idx, (gen, critic, opt_g, opt_c), real, rngs))
            bar.update()

            # 2. the log record (the only host syncs: the NaN check and the means), then validation
            record = {}
            if step % cfg.log_every == 0 or step == total:
                window.check()
                record.update({"step": step, "epoch": round(step / steps_per_epoch, 4), **window.take(),
                               "steps_per_s": log.steps_per_s(step)})
                bar.set_postfix(wdist=f"{record['wdist']:.4g}")
            if val is not None and (step % cfg.val_every == 0 or step == total):
                record.update({"step": step, **_validate(gen, val)})
                bar.set_postfix(wdist=record.get("wdist", float("nan")), mmd=f"{record['latent_mmd']:.3g}")
            if record:
                log.add(record)

            # 3. the checkpoint (never of NaN weights)
            if run is not None and (step % cfg.ckpt_every == 0 or step == total):
                window.check()
                state = checkpoint_state(step=step, total=total, cfg=cfg, gen=gen, critic=critic,
                                         opt_g=opt_g, opt_c=opt_c, latents=latents, autoencoder=ae_model,
                                         source=source, history=history)
                run.save(state, keep=cfg.keep_checkpoints)
    finally:
        torch.set_num_threads(threads)
        bar.close()
        log.close()
    return LatentGANResult(generator=gen.eval(), critic=critic.eval(), autoencoder=ae_model, latents=latents,
                           history=history, out_dir=run.path if run else None, config=cfg, step=step)


__all__ = ["CHECKPOINT_KIND", "PENALTIES", "REQUIRED_KEYS", "LatentGANConfig", "LatentGANResult", "critic_step",
           "encode_dataset", "generator_step", "gradient_penalty", "latent_mmd", "load_gan_checkpoint",
           "load_latent_gan", "median_distance", "mmd_yardstick", "resolve_autoencoder", "train_latent_gan"]
