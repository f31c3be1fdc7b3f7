"""One update of each network of the latent GAN, and its gradient penalty: the step :func:`~gfcore.train.
train_latent_gan` takes, as pure functions that a chapter can call by hand.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import torch

from gfcore import _checks
from gfcore.train.gan_config import PENALTIES


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
        ValueError: unknown ``kind``; non-finite ``real``; ``"wgan-gp"`` without ``fake`` or with a different
            shape.

    Taught in chapter 7 (Generating new shapes).
    """
    _checks.choice("kind", kind, PENALTIES)
    real = _checks.tensor("real", real, ndims=(2,))
    if kind == "wgan-gp":
        if fake is None:
            raise ValueError('penalty kind "wgan-gp" needs fake= (the generated codes)')
        if fake.shape != real.shape:
            raise ValueError(f"fake must have real's shape {tuple(real.shape)}, got {tuple(fake.shape)}")
    return _penalty(critic, real, fake, kind=kind, generator=generator)


def _penalty(critic, real, fake, *, kind, generator):
    """:func:`gradient_penalty` without the checks of its inputs (no host synchronisation: the training step)."""
    if kind == "wgan-gp":
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
# one update of each network (what the trainer calls every step; a chapter can call them by hand)
# ============================================================================================================
def generator_step(latent_generator, critic, optimizer, *, batch_size: int,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One update of the generator on ``L_G = -mean_b D(G(n_b))``, ``n ~ N(0, I)``, with the critic frozen.

    Zeroes the optimizer's gradients, back-propagates ``L_G`` into the generator only and steps the optimizer.
    Nothing is read back to the host, so a training loop on a GPU does not wait for it.

    Args:
        latent_generator: the :class:`~gfcore.models.LatentGenerator` being trained.
        critic: the :class:`~gfcore.models.LatentCritic`; it receives no gradients (its parameters'
            ``requires_grad`` flags are restored afterwards).
        optimizer: the generator's optimizer.
        batch_size: codes to generate ``B``.
        generator: ``torch.Generator`` on the networks' device, for the noise ``n``.

    Returns:
        ``{"loss_generator": ()}``, the detached loss on the networks' device.

    Raises:
        ValueError: ``batch_size < 1``; a ``generator`` on another device.

    Taught in chapter 7 (Generating new shapes).
    """
    flags = [p.requires_grad for p in critic.parameters()]
    critic.requires_grad_(False)
    try:
        loss = -critic(latent_generator.sample(batch_size, generator=generator)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    finally:
        for p, flag in zip(critic.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return {"loss_generator": loss.detach()}


def critic_step(latent_generator, critic, optimizer, real: torch.Tensor, *, penalty: str = "official",
                penalty_weight: float = 1.0, generator: torch.Generator | None = None,
                penalty_generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One update of the critic on ``L_D = mean_b D(G(n_b)) - mean_b D(z_b) + penalty_weight * penalty``.

    The fake codes ``G(n)`` (``B`` of them, ``n ~ N(0, I)``) are drawn without gradients; the penalty is
    :func:`gradient_penalty` of kind ``penalty``. Zeroes the optimizer's gradients, back-propagates ``L_D`` and
    steps the optimizer. The values of ``real`` are not checked and nothing is read back to the host (a NaN
    loss shows in the returned ``loss_critic``), so a training loop on a GPU does not wait for it.

    Args:
        latent_generator: the :class:`~gfcore.models.LatentGenerator` (not updated).
        critic: the :class:`~gfcore.models.LatentCritic` being trained.
        optimizer: the critic's optimizer.
        real: ``(B, zdim)`` real codes ``z``.
        penalty: one of :data:`~gfcore.train.gan_config.PENALTIES`.
        penalty_weight: the penalty's weight; ``0`` leaves it out.
        generator: ``torch.Generator`` on the networks' device, for the noise ``n``.
        penalty_generator: ``torch.Generator`` for the interpolation weights of ``"wgan-gp"``.

    Returns:
        Detached ``()`` tensors on the networks' device: ``"loss_critic"`` (``L_D``), ``"wdist"`` (``mean D(z)
        - mean D(G(n))``, the critic's estimate of the Wasserstein distance) and, when ``penalty_weight > 0``,
        ``"penalty"`` and ``"grad_norm"`` (the mean ``|grad D|`` where the penalty is taken).

    Raises:
        ValueError: unknown ``penalty``, negative ``penalty_weight``, ``real`` not ``(B, zdim)``.

    Taught in chapter 7 (Generating new shapes).
    """
    _checks.choice("penalty", penalty, PENALTIES)
    if penalty_weight < 0:
        raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
    if not isinstance(real, torch.Tensor) or real.dim() != 2 or real.shape[0] == 0:
        raise ValueError(f"real must be a non-empty (B, zdim) tensor, got {getattr(real, 'shape', real)!r}")
    with torch.no_grad():
        fake = latent_generator.sample(real.shape[0], generator=generator)
    wdist = critic(real).mean() - critic(fake).mean()
    loss = -wdist
    stats = {}
    if penalty_weight > 0:
        value, grad_norm = _penalty(critic, real, fake, kind=penalty, generator=penalty_generator)
        loss = loss + float(penalty_weight) * value
        stats.update(penalty=value.detach(), grad_norm=grad_norm)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {**stats, "loss_critic": loss.detach(), "wdist": wdist.detach()}


__all__ = ["critic_step", "generator_step", "gradient_penalty"]
