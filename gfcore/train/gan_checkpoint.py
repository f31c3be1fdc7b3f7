"""The latent GAN's checkpoints: what :func:`~gfcore.train.train_latent_gan` saves, and how it is read back.

A checkpoint (kind :data:`CHECKPOINT_KIND`, format version 1, tensors and primitives only) holds the generator,
the critic, both optimizers, the real codes and the frozen auto-encoder's weights, so it samples shapes on its
own (:func:`load_latent_gan`) and a resumed run replays the uninterrupted one.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gfcore import checkpoint_io
from gfcore._version import __version__
from gfcore.checkpoint_io import FORMAT_VERSION, load_gan_checkpoint
from gfcore.models import LatentCritic, LatentGenerator, ShapeGF
from gfcore.train.checkpoint import RunDir, checkpoint_file
from gfcore.train.gan_config import LatentGANConfig

#: the ``kind`` of a latent-GAN checkpoint (an auto-encoder checkpoint is ``"shapegf-autoencoder"``)
CHECKPOINT_KIND = checkpoint_io.LATENT_GAN_KIND
REQUIRED_KEYS = checkpoint_io.LATENT_GAN_KEYS


@dataclass
class LatentGANResult:
    """What :func:`~gfcore.train.train_latent_gan` and :func:`load_latent_gan` return.

    Attributes:
        generator, critic: the networks, in eval mode.
        autoencoder: the frozen :class:`~gfcore.models.ShapeGF` (eval mode), ``None`` for a GAN trained on
            codes passed in code.
        latents: ``(N, zdim)`` the real codes it was trained on.
        history: the log records.
        out_dir: the run folder (``None`` when nothing was written).
        config: the :class:`~gfcore.train.LatentGANConfig`.
        step: the final step.

    Taught in chapter 7 (Generating new shapes).
    """

    generator: LatentGenerator
    critic: LatentCritic
    autoencoder: ShapeGF | None
    latents: torch.Tensor
    history: list
    out_dir: Path | None
    config: LatentGANConfig
    step: int

    @property
    def run(self) -> RunDir | None:
        """The run folder as a :class:`~gfcore.train.RunDir` (``None`` when nothing was written)."""
        return RunDir(self.out_dir) if self.out_dir is not None else None

    def sample(self, num_shapes: int, num_points: int, **kwargs) -> torch.Tensor:
        """New shapes: :func:`gfcore.models.sample_shapes` with this auto-encoder and generator.

        Raises:
            ValueError: no auto-encoder (a GAN trained on codes passed in code), or as ``sample_shapes``.
        """
        if self.autoencoder is None:
            raise ValueError("this latent GAN was trained on codes passed in code: it has no auto-encoder to "
                             "decode with; call gfcore.models.sample_shapes(autoencoder, result.generator, "
                             "...)")
        from gfcore.models import sample_shapes

        return sample_shapes(self.autoencoder, self.generator, num_shapes, num_points, **kwargs)


def load_latent_gan(path, device=None) -> LatentGANResult:
    """Rebuild a trained latent GAN and its frozen auto-encoder from a checkpoint, in eval mode.

    Args:
        path: a checkpoint written by :func:`~gfcore.train.train_latent_gan`, or its run folder.
        device: where to put the networks (default: CUDA when present, else CPU).

    Returns:
        :class:`LatentGANResult`; ``result.sample(num_shapes, num_points, generator=...)`` draws new shapes.

    Raises:
        ValueError: not a latent-GAN checkpoint (see :func:`load_gan_checkpoint`), weights that do not fit.

    Taught in chapter 7 (Generating new shapes).
    """
    path = checkpoint_file(path)
    nets = checkpoint_io.load_gan_networks(path, device=device)
    out_dir = path.parent.parent if path.parent.name == "checkpoints" else None
    return LatentGANResult(generator=nets.generator, critic=nets.critic, autoencoder=nets.autoencoder,
                           latents=nets.latents, history=nets.history, out_dir=out_dir,
                           config=LatentGANConfig.from_dict(nets.config), step=nets.step)


def checkpoint_state(*, step, total, cfg, gen, critic, opt_g, opt_c, latents, autoencoder, source,
                     history) -> dict:
    """The dict :func:`~gfcore.train.train_latent_gan` saves (keys :data:`REQUIRED_KEYS` and ``torch_version``):
    tensors and primitives only, so it loads with ``weights_only=True``."""
    ae = None
    if autoencoder is not None:
        ae = {"source": source, "model_config": dict(autoencoder.config),
              "state_dict": {k: v.detach().cpu() for k, v in autoencoder.state_dict().items()}}
    return {"format_version": FORMAT_VERSION, "kind": CHECKPOINT_KIND, "gfcore_version": __version__,
            "torch_version": str(torch.__version__), "step": step, "total_steps": total,
            "config": cfg.to_dict(),
            "generator_config": dict(gen.config), "critic_config": dict(critic.config),
            "generator": gen.state_dict(), "critic": critic.state_dict(), "opt_generator": opt_g.state_dict(),
            "opt_critic": opt_c.state_dict(), "latents": latents.detach().cpu(), "autoencoder": ae,
            "history": history}


__all__ = ["CHECKPOINT_KIND", "REQUIRED_KEYS", "LatentGANResult", "checkpoint_state", "load_gan_checkpoint",
           "load_latent_gan"]
