"""Multi-sigma denoising score matching (Vincent 2011; ShapeGF Eq. 5).

Taught in chapter 2 (Learning the field).
"""
from __future__ import annotations

import torch

from gfcore import _checks
from gfcore.schedule import WEIGHTINGS, loss_weight


def dsm_loss(score_fn, points, sigmas, *, weighting: str = "shapegf", generator: torch.Generator | None = None,
             return_sigma: bool = False, check_values: bool = True):
    """Denoising score matching summed over a noise ladder, one ``sigma`` per shape.

    For each shape ``b`` a level ``sigma_b`` is drawn uniformly from ``sigmas`` (as the official code does), every
    point is perturbed, ``x~ = x + sigma_b * eps``, and the network's score at ``x~`` is regressed onto the score
    of the perturbation kernel, ``(x - x~) / sigma_b^2 = -eps / sigma_b``:

        loss_b = 0.5 * lambda(sigma_b) * mean_n |s_theta(x~_n, sigma_b) - (x_n - x~_n) / sigma_b^2|^2

    with ``lambda(sigma) = sigma^3`` (``"shapegf"``, the official code's normalisation) or ``sigma^2``
    (``"ncsn"``).

    Args:
        score_fn: callable ``(x (B, N, d), sigma (B,)) -> score (B, N, d)``.
        points: ``(B, N, d)`` clean points.
        sigmas: ``(L,)`` noise ladder (``L = 1`` trains a single level).
        weighting: ``"shapegf"`` or ``"ncsn"``.
        generator: optional ``torch.Generator`` on ``points``' device, for reproducible noise.
        return_sigma: also return the ``(B,)`` levels drawn, e.g. to log the loss per level.
        check_values: check ``points`` for NaN and ``sigmas`` for positive finite values; these read the tensors on
            the host (a synchronisation on a GPU), so a training loop passes ``False`` and checks on the device.

    Returns:
        ``(B,)`` per-shape losses (the caller reduces), and ``(B,)`` sigmas if ``return_sigma``.

    Raises:
        ValueError: bad shapes, NaN, non-positive sigmas, unknown weighting, or a score of the wrong shape.

    Taught in chapter 2.
    """
    points = _checks.point_cloud("points", points, batched=True, values=check_values)
    sigmas = _checks.tensor("sigmas", sigmas, ndims=(1,), values=check_values)
    if check_values:
        _checks.positive("sigmas", sigmas)
    _checks.choice("weighting", weighting, WEIGHTINGS)
    batch = points.shape[0]
    sigmas = sigmas.to(device=points.device, dtype=points.dtype)
    idx = torch.randint(len(sigmas), (batch,), device=points.device, generator=generator)
    sigma = sigmas[idx]
    eps = torch.randn(points.shape, device=points.device, dtype=points.dtype, generator=generator)
    s = sigma.view(batch, 1, 1)
    noisy = points + s * eps
    score = score_fn(noisy, sigma)
    if score.shape != points.shape:
        raise ValueError(f"score_fn returned shape {tuple(score.shape)}, expected {tuple(points.shape)}")
    target = -eps / s
    loss = 0.5 * loss_weight(sigma, weighting) * (score - target).square().sum(-1).mean(-1)
    return (loss, sigma) if return_sigma else loss
