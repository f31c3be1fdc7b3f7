"""Test-time refinement of latent codes: closing the encoder's amortisation gap.

The encoder maps a cloud to its code in one forward pass; the decoder defines, for any code ``z``, a denoising
score-matching loss on that cloud. The code that minimises this loss for a given input can be much better than the
encoder's guess (the *amortisation gap* of a learned encoder). :func:`refine_codes` starts from the encoder's code
and takes a few Adam steps on ``z`` alone, the network frozen, using only the input points: the reference that a
reconstruction is scored against is never seen. This is the auto-decoder's inference of DeepSDF, applied as a
correction to ShapeGF's encoder; the official ShapeGF code does not do it.

Taught in chapter 5 (The full 3D model).
"""
from __future__ import annotations

import math

import torch

from gfcore import _checks
from gfcore.losses import dsm_loss
from gfcore.schedule import geometric_sigmas


def refine_codes(model, points: torch.Tensor, z: torch.Tensor | None = None, *, steps: int = 200,
                 lr: float = 1e-2, sigmas: torch.Tensor | None = None, weighting: str = "ncsn",
                 generator: torch.Generator | None = None, autocast_dtype: torch.dtype | None = None,
                 callback=None) -> torch.Tensor:
    """Codes that fit ``points`` better than the encoder's: Adam on ``z`` of the DSM loss, the network frozen.

    Each step draws one level per shape from ``sigmas`` and fresh noise (as training does), and the learning rate
    follows half a cosine from ``lr`` to 0. The model runs in eval mode (restored afterwards) and receives no
    gradients; shapes are independent (the loss is summed over the batch).

    Args:
        model: a trained :class:`~gfcore.models.ShapeGF`.
        points: ``(B, N, d)`` the input clouds, normalised as the model's data.
        z: ``(B, zdim)`` starting codes (default: ``model.encode(points)`` in eval mode).
        steps: Adam steps (0 returns the starting codes).
        lr: the first step's learning rate.
        sigmas: ``(L,)`` ladder the levels are drawn from (default: the official ``geometric_sigmas(1, 0.01, 10)``).
        weighting: ``"ncsn"`` (default: equal weight per level for a preconditioned model) or ``"shapegf"``.
        generator: ``torch.Generator`` on ``points``' device, for reproducible levels and noise.
        autocast_dtype: run the network under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16`` on a CPU
            with bf16 units); ``None`` for the parameters' dtype.
        callback: called after every step with ``{"step", "loss", "lr"}`` (``loss``: the batch mean).

    Returns:
        ``(B, zdim)`` refined codes (detached).

    Raises:
        ValueError: bad shapes or values (``points`` with NaN, ``z`` of the wrong size, non-positive ``lr``,
            negative ``steps``).

    Taught in chapter 5 (The full 3D model).
    """
    points = _checks.point_cloud("points", points, batched=True)
    steps = _checks.int_at_least("steps", steps, 0)
    _checks.positive("lr", lr)
    was_training = model.training
    model.eval()
    try:
        if z is None:
            with torch.no_grad():
                z = model.encode(points)
        z = _checks.tensor("z", z, ndims=(2,))
        if z.shape[0] != points.shape[0]:
            raise ValueError(f"z has {z.shape[0]} codes for {points.shape[0]} clouds")
        if sigmas is None:
            sigmas = geometric_sigmas(1.0, 0.01, 10, device=points.device)
        z = z.detach().clone().requires_grad_(True)          # a leaf in the codes' own dtype (the model's)
        opt = torch.optim.Adam([z], lr=lr)
        for step in range(steps):
            step_lr = lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
            for group in opt.param_groups:
                group["lr"] = step_lr
            with torch.enable_grad(), torch.autocast(points.device.type, dtype=autocast_dtype or torch.float32,
                                                     enabled=autocast_dtype is not None):
                loss = dsm_loss(lambda x, s: model.score(x, s, z), points, sigmas, weighting=weighting,
                                generator=generator).float().sum()
                (grad,) = torch.autograd.grad(loss, z)
            z.grad = grad
            opt.step()
            if callback is not None:
                callback({"step": step + 1, "loss": float(loss.detach()) / points.shape[0], "lr": step_lr})
    finally:
        model.train(was_training)
    return z.detach()


__all__ = ["refine_codes"]
