"""Training ShapeGF: the auto-encoder, then the latent GAN of its generation stage; the trainers the chapters
and the CLI share.

By job: :mod:`~gfcore.train.config` (:class:`AutoEncoderConfig`, YAML presets), :mod:`~gfcore.train.loop`
(:func:`train_autoencoder`, :class:`TrainResult`), :mod:`~gfcore.train.checkpoint` (:class:`RunDir`, atomic
checkpoints, :func:`load_checkpoint`, :func:`load_model`, RNG states, the log records), :mod:`~gfcore.train.batches`
(the resumable batch order) and :mod:`~gfcore.train.distributed` (device, mixed precision, ``torchrun``). The
latent GAN: :mod:`~gfcore.train.gan` (losses and :func:`train_latent_gan`), :mod:`~gfcore.train.gan_config`
(:class:`LatentGANConfig`), :mod:`~gfcore.train.gan_codes` (the frozen auto-encoder and its codes),
:mod:`~gfcore.train.latent_metrics` (distances between sets of codes) and :mod:`~gfcore.train.gan_checkpoint`
(:func:`load_latent_gan`). The learning-rate schedule is :func:`gfcore.schedule.lr_factor`; evaluation is
:mod:`gfcore.evaluation`.

Files (only when ``out_dir`` is given, only rank 0 writes): ``config.yaml``, ``metrics.jsonl``,
``checkpoints/last.pt`` (see :class:`RunDir`).

Taught in chapter 4 (Conditional fields in 2D), chapter 5 (The full 3D model) and chapter 7 (Generating new
shapes).
"""
from gfcore.train.checkpoint import (
    CHECKPOINT_KIND,
    FORMAT_VERSION,
    RunDir,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from gfcore.train.config import AutoEncoderConfig
from gfcore.train.gan import train_latent_gan
from gfcore.train.gan_checkpoint import LatentGANResult, load_latent_gan
from gfcore.train.gan_config import LatentGANConfig
from gfcore.train.loop import TrainResult, train_autoencoder

__all__ = ["CHECKPOINT_KIND", "FORMAT_VERSION", "AutoEncoderConfig", "RunDir", "TrainResult", "load_checkpoint",
           "load_model", "save_checkpoint", "train_autoencoder",
           "LatentGANConfig", "LatentGANResult", "load_latent_gan", "train_latent_gan"]
