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

By job: this module holds the losses (:func:`gradient_penalty`) and the training loop
(:func:`train_latent_gan`); :mod:`~gfcore.train.gan_config` the config (:class:`LatentGANConfig`),
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
from gfcore.train.latent_metrics import latent_mmd, median_distance, mmd_yardstick
from gfcore.utils import seed_everything

# random streams (the second value of mix_seed): noise of the generator step, of the critic step,
# interpolation weights of WGAN-GP, the validation noise (the yardstick's real subset is stream 25, see
# gfcore.train.latent_metrics)
_GEN_STREAM, _CRITIC_STREAM, _MIX_STREAM, _VAL_STREAM = 21, 22, 23, 24


# ============================================================================================================
# the losses
# ============================================================================================================
def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor | None = None, *, kind: str = "official",
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The critic's gradient penalty (differentiable: its graph is kept for the critic's update).

    With ``g_b = grad_x D(x)`` at sample ``b``:

    - ``"official"`` (ShapeGF's code; zero-centred, on the real codes): ``(mean_b |g_b|)^2``, the square of
      the mean gradient norm. By Jensen's inequality it is at most R1.
    - ``"r1"`` (Mescheder et al. 2018, on the real codes, without the 1/2): ``mean_b |g_b|^2``.
    - ``"wgan-gp"`` (Gulrajani et al. 2017, on interpolates ``x = t real + (1 - t) fake``, ``t ~ U(0, 1)`` per
      sample): ``mean_b (|g_b| - 1)^2``.

    Args:
        critic: a callable ``(B, zdim) -> (B,)``, e.g. :class:`~gfcore.models.LatentCritic`.
        real: ``(B, zdim)`` real codes.
        fake: ``(B, zdim)`` generated codes (``"wgan-gp"`` only).
        kind: one of :data:`~gfcore.train.gan_config.PENALTIES`.
        generator: ``torch.Generator`` for the interpolation weights of ``"wgan-gp"``.

    Returns:
        ``(penalty, grad_norm)``: the scalar penalty (to multiply by its weight) and the detached mean
        ``|g_b|``.

    Raises:
        ValueError: unknown ``kind``; ``"wgan-gp"`` without ``fake`` or with a different shape.

    Taught in chapter 7 (Generating new shapes).
    """
    _checks.choice("kind", kind, PENALTIES)
    real = _checks.tensor("real", real, ndims=(2,))
    if kind == "wgan-gp":
        if fake is None:
            raise ValueError('penalty kind "wgan-gp" needs fake= (the generated codes)')
        if fake.shape != real.shape:
            raise ValueError(f"fake must have real's shape {tuple(real.shape)}, got {tuple(fake.shape)}")
        t = torch.rand(real.shape[0], 1, generator=generator, device=real.device, dtype=real.dtype)
        x = t * real.detach() + (1 - t) * fake.detach()
    else:
        x = real.detach()
    x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    sq = grad.square().sum(dim=1)
    if kind == "r1":
        norm = sq.detach().sqrt()
        return sq.mean(), norm.mean()
    norm = (sq + 1e-12).sqrt()
    if kind == "official":
        return norm.mean().square(), norm.detach().mean()
    return (norm - 1).square().mean(), norm.detach().mean()


# ============================================================================================================
# the trainer
# ============================================================================================================
def train_latent_gan(config: LatentGANConfig | dict | None = None, *, autoencoder=None,
                     latents: torch.Tensor | None = None, train_set=None, out_dir=None, resume: bool = False,
                     progress: bool = True, callback=None, **overrides) -> LatentGANResult:
    """Train the latent GAN of ShapeGF's generation stage: a Wasserstein GAN on a frozen auto-encoder's codes.

    Per step, on a batch of ``batch_size`` real codes ``z`` (an epoch is a permutation of all of them): every
    ``critic_steps`` steps one generator step on ``L_G = -mean D(G(n))``, then one critic step on ``L_D = mean
    D(G(n')) - mean D(z) + penalty_weight * penalty`` (:func:`gradient_penalty`), with fresh noise ``n, n' ~
    N(0, I)`` each; Adam for both networks.

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
    estimate of the Wasserstein distance), ``penalty``, ``grad_norm``, ``steps_per_s``; and every
    ``val_every`` steps ``latent_mmd`` (:func:`latent_mmd` of ``val_samples`` generated codes against as many
    real ones, the bandwidth fixed from the real codes) beside ``latent_mmd_floor`` (two disjoint halves of
    the real codes against each other at the same sample size: what a perfect generator reaches).

    Raises:
        ValueError: bad config, no codes to train on (no ``latents``, no auto-encoder), fewer codes than a
            batch, non-finite codes, a checkpoint of another kind on resume.
        FloatingPointError: a loss became NaN/inf (naming the step).
        FileNotFoundError: ``resume=True`` without a checkpoint.

    Taught in chapter 7 (Generating new shapes).
    """
    cfg = resolve_gan_config(config, overrides)
    run = RunDir(out_dir) if out_dir is not None else None
    if resume and run is None:
        raise ValueError("resume=True needs out_dir (the run folder holding checkpoints/last.pt)")
    device = distributed.resolve_device(cfg.device)

    # -- the real codes and the frozen auto-encoder --------------------------------------------------------
    ckpt = None
    if resume:
        ckpt = load_gan_checkpoint(run.last, map_location=device)
        latents = ckpt["latents"].to(device)
        ae_state = ckpt["autoencoder"]
        ae_model, source = None, None
        if ae_state is not None:
            ae_model = ShapeGF.from_config(ae_state["model_config"])
            load_state(ae_model, ae_state["state_dict"], run.last, "auto-encoder")
            ae_model, source = ae_model.to(device).eval(), ae_state["source"]
        saved = LatentGANConfig.from_dict(ckpt["config"])
        cfg = dataclasses.replace(cfg, autoencoder=saved.autoencoder, dataset=saved.dataset,
                                  dataset_kwargs=saved.dataset_kwargs)
    elif latents is not None:
        if autoencoder is not None:
            raise ValueError("pass latents or autoencoder, not both")
        latents = _checks.tensor("latents", latents, ndims=(2,)).detach().float().to(device)
        ae_model, source = None, None
    else:
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

            kwargs = {**(cfg.dataset_kwargs or {}), "sample": "first"}
            train_set = build_dataset(cfg.dataset, "train", **kwargs)
        latents = encode_dataset(ae_model, train_set, batch_size=cfg.encode_batch_size, progress=progress)
        _checks.finite("latents (the encoder's codes)", latents)
    n, zdim = latents.shape
    if n < cfg.batch_size:
        raise ValueError(f"{n} real codes, fewer than batch_size={cfg.batch_size}")
    steps_per_epoch = n // cfg.batch_size
    if cfg.max_steps is None and cfg.epochs is None:
        raise ValueError("set max_steps or epochs in the config")
    total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch

    # -- the networks, optimizers, resume, files -----------------------------------------------------------
    seed_everything(cfg.seed)
    gen = LatentGenerator(**cfg.generator_kwargs(zdim)).to(device)
    critic = LatentCritic(**cfg.critic_kwargs(zdim)).to(device)
    betas = tuple(float(b) for b in cfg.betas)
    opt_g = torch.optim.Adam(gen.parameters(), lr=float(cfg.lr), betas=betas)
    opt_c = torch.optim.Adam(critic.parameters(), lr=float(cfg.lr), betas=betas)
    start, history = 0, []
    if ckpt is not None:
        for what, module, key in (("generator", gen, "generator"), ("critic", critic, "critic")):
            if ckpt[f"{key}_config"] != module.config:
                raise ValueError(f"{run.last} has a {what} {ckpt[f'{key}_config']}, the config asks for "
                                 f"{module.config}")
            load_state(module, ckpt[key], run.last, what)
        opt_g.load_state_dict(ckpt["opt_generator"])
        opt_c.load_state_dict(ckpt["opt_critic"])
        start, history = int(ckpt["step"]), list(ckpt["history"])
    if run is not None:
        run.write_config(cfg)

    # validation: fixed noise, a fixed subset of real codes, the bandwidth and the floor computed once
    val = None
    if cfg.val_every:
        g = torch.Generator(device=device).manual_seed(mix_seed(cfg.seed, _VAL_STREAM))
        val_noise = torch.randn(cfg.val_samples, cfg.noise_dim, generator=g, device=device)
        val = (val_noise, *mmd_yardstick(latents, num=cfg.val_samples, seed=cfg.seed))

    batches = StepBatches(n, cfg.batch_size, cfg.seed, start, total)
    threads = torch.get_num_threads()
    if device.type == "cpu" and cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    noise_gen = torch.Generator(device=device)
    sums = {}
    bar = tqdm(total=total, initial=start, disable=not progress, desc="latent GAN", dynamic_ncols=True)
    step = start
    gen.train()
    critic.train()
    log = RecordLog(run, history, callback, step=start)
    try:
        for step_idx, idx in zip(range(start, total), batches, strict=True):
            step = step_idx + 1
            real = latents[torch.as_tensor(idx, device=device)]
            stats = {}
            # 1. the generator step (every critic_steps steps), critic frozen
            if step_idx % cfg.critic_steps == 0:
                noise_gen.manual_seed(mix_seed(cfg.seed, _GEN_STREAM, step_idx))
                critic.requires_grad_(False)
                loss_g = -critic(gen.sample(cfg.batch_size, generator=noise_gen)).mean()
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                critic.requires_grad_(True)
                stats["loss_generator"] = loss_g.detach()
            # 2. the critic step: Wasserstein loss plus the gradient penalty
            noise_gen.manual_seed(mix_seed(cfg.seed, _CRITIC_STREAM, step_idx))
            with torch.no_grad():
                fake = gen.sample(cfg.batch_size, generator=noise_gen)
            wdist = critic(real).mean() - critic(fake).mean()
            loss_c = -wdist
            if cfg.penalty_weight > 0:
                noise_gen.manual_seed(mix_seed(cfg.seed, _MIX_STREAM, step_idx))
                penalty, grad_norm = gradient_penalty(critic, real, fake, kind=cfg.penalty,
                                                      generator=noise_gen)
                loss_c = loss_c + float(cfg.penalty_weight) * penalty
                stats.update(penalty=penalty.detach(), grad_norm=grad_norm)
            if not bool(torch.isfinite(loss_c)):
                raise FloatingPointError(f"step {step}: the critic loss is {float(loss_c.detach())} "
                                         "(NaN/inf); lower lr or raise penalty_weight")
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
            stats.update(loss_critic=loss_c.detach(), wdist=wdist.detach())
            for k, v in stats.items():
                s = sums.setdefault(k, [0.0, 0])
                s[0] += float(v)
                s[1] += 1
            bar.update()

            # 3. the log record, then validation
            record = {}
            if step % cfg.log_every == 0 or step == total:
                record.update({"step": step, "epoch": round(step / steps_per_epoch, 4),
                               **{k: s[0] / s[1] for k, s in sums.items() if s[1]},
                               "steps_per_s": log.steps_per_s(step)})
                sums = {}
                bar.set_postfix(wdist=f"{record['wdist']:.4g}")
            if val is not None and (step % cfg.val_every == 0 or step == total):
                val_noise, val_real, bandwidth, floor = val
                gen.eval()
                with torch.no_grad():
                    fake = gen(val_noise)
                gen.train()
                record.update({"step": step, "latent_mmd": latent_mmd(fake, val_real, bandwidth=bandwidth),
                               "latent_mmd_floor": floor})
                bar.set_postfix(wdist=record.get("wdist", float("nan")), mmd=f"{record['latent_mmd']:.3g}")
            if record:
                log.add(record)

            # 4. the checkpoint
            if run is not None and (step % cfg.ckpt_every == 0 or step == total):
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


__all__ = ["CHECKPOINT_KIND", "PENALTIES", "REQUIRED_KEYS", "LatentGANConfig", "LatentGANResult", "encode_dataset",
           "gradient_penalty", "latent_mmd", "load_gan_checkpoint", "load_latent_gan", "median_distance",
           "mmd_yardstick", "resolve_autoencoder", "train_latent_gan"]
