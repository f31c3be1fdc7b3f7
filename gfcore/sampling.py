"""Annealed Langevin dynamics (Song & Ermon 2019; ShapeGF Sec. 3.3) and the priors it starts from.

Every sampler takes a score callable ``score_fn(x, sigma)`` (``x`` ``(B, M, d)``, ``sigma`` ``(B,)``, returning
the score), never a model, so the closed-form field and a trained network are interchangeable.

Taught in chapter 3 (Annealed Langevin dynamics).
"""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from gfcore import _checks

PRIORS = ("uniform", "gaussian", "fixed")


def prior(kind: str, shape, *, bound: float = 1.5, std: float = 1.0, points: torch.Tensor | None = None,
          generator: torch.Generator | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Initial points for Langevin sampling.

    Args:
        kind: ``"uniform"`` (the box ``[-bound, bound]^d``, the official prior with ``bound=1.5``),
            ``"gaussian"`` (``N(0, std^2 I)``) or ``"fixed"`` (copies of given ``points``).
        shape: ``(B, M, d)``.
        points: for ``"fixed"``: ``(d,)`` one point every sample starts from, or ``(K, d)`` / ``(B, K, d)``
            points; when ``K != M``, ``M`` of them are drawn with replacement.
        generator: optional ``torch.Generator`` on ``device``.

    Returns:
        ``(B, M, d)`` tensor on ``device`` (``points``' device for ``"fixed"``).

    Taught in chapter 3.
    """
    _checks.choice("kind", kind, PRIORS)
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (B, M, d) with positive sizes, got {shape}")
    batch, m, d = shape
    if kind == "uniform":
        _checks.positive("bound", bound)
        return (torch.rand(shape, generator=generator, device=device, dtype=dtype) * 2 - 1) * bound
    if kind == "gaussian":
        _checks.positive("std", std)
        return torch.randn(shape, generator=generator, device=device, dtype=dtype) * std
    if points is None:
        raise ValueError('prior "fixed" needs points=')
    points = _checks.tensor("points", points, ndims=(1, 2, 3), dim=d)
    if points.dim() == 1:
        return points.expand(batch, m, d).clone()
    pb = points if points.dim() == 3 else points.unsqueeze(0).expand(batch, -1, -1)
    if pb.shape[0] != batch:
        raise ValueError(f"points has {pb.shape[0]} shapes, expected {batch}")
    if pb.shape[1] == m:
        return pb.clone()
    idx = torch.randint(pb.shape[1], (batch, m), generator=generator, device=pb.device)
    return torch.gather(pb, 1, idx.unsqueeze(-1).expand(batch, m, d))


@torch.no_grad()
def annealed_langevin(score_fn, x: torch.Tensor, sigmas: torch.Tensor, *, steps_per_sigma: int = 10,
                      step_size: float | None = None, noise: bool = True, return_trajectory: bool = False,
                      callback=None, disable: bool = True, generator: torch.Generator | None = None):
    """Annealed Langevin dynamics from ``x`` through the ladder ``sigmas`` (large to small).

    At level ``sigma_i`` with ``alpha_i = step_size * sigma_i^2 / sigma_L^2``, repeat ``steps_per_sigma`` times:

        x' = x + sqrt(alpha_i) * eps,      x = x' + (alpha_i / 2) * score_fn(x', sigma_i)

    (noise first, then the gradient step at the noised point, as ShapeGF's Algorithm 1 and the official code do).
    The official setting is ``step_size = 2 * sigma_L^2`` (the default), so ``alpha_i = 2 sigma_i^2``; with a
    network predicting ``sigma^2 * score`` the update is then ``x' + prediction``. No final denoising step.

    Args:
        score_fn: ``(x (B, M, d), sigma (B,)) -> score (B, M, d)``.
        x: ``(B, M, d)`` initial points (see :func:`prior`); any ``M``.
        sigmas: ``(L,)`` descending ladder.
        steps_per_sigma: Langevin steps per level.
        step_size: ``epsilon`` of Song & Ermon; default ``2 * sigmas[-1]^2``.
        noise: ``False`` turns the sampler into plain annealed gradient ascent.
        return_trajectory: also return every iterate, ``(T + 1, B, M, d)`` on ``x``'s device.
        callback: called after every step with ``{"step", "level", "sigma", "x"}``.
        disable: hide the tqdm progress bar (default ``True``).
        generator: ``torch.Generator`` on ``x``'s device for reproducible noise.

    Returns:
        ``(B, M, d)`` final points, and the trajectory if ``return_trajectory``.

    Raises:
        ValueError: bad shapes, NaN, non-positive or increasing sigmas, a score of the wrong shape or with NaN.

    Taught in chapter 3.
    """
    x = _checks.point_cloud("x", x, batched=True)
    sigmas = _checks.tensor("sigmas", sigmas, ndims=(1,))
    _checks.positive("sigmas", sigmas)
    if len(sigmas) > 1 and (sigmas[1:] > sigmas[:-1]).any():
        raise ValueError(f"sigmas must be descending, got {sigmas.tolist()}")
    _checks.positive_int("steps_per_sigma", steps_per_sigma)
    sig = sigmas.detach().cpu().tolist()                     # read once on the host (one copy, not L syncs)
    if step_size is None:
        step_size = 2.0 * sig[-1] ** 2
    _checks.positive("step_size", step_size)
    batch = x.shape[0]
    traj = [x.clone()] if return_trajectory else None
    step = 0
    bar = tqdm(total=len(sig) * steps_per_sigma, disable=disable, desc="Langevin")
    for level, sigma in enumerate(sig):
        alpha = step_size * sigma ** 2 / sig[-1] ** 2
        sigma_b = torch.full((batch,), sigma, device=x.device, dtype=x.dtype)
        for _ in range(steps_per_sigma):
            if noise:
                eps = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
                x = x + math.sqrt(alpha) * eps
            score = score_fn(x, sigma_b)
            if score.shape != x.shape:
                raise ValueError(f"score_fn returned shape {tuple(score.shape)}, expected {tuple(x.shape)}")
            x = x + 0.5 * alpha * score
            step += 1
            if traj is not None:
                traj.append(x.clone())
            if callback is not None:
                callback({"step": step, "level": level, "sigma": sigma, "x": x})
            bar.update()
        if _checks.has_values(x) and not torch.isfinite(x).all():  # once per level, not per step (a sync)
            bar.close()
            raise ValueError(f"Langevin diverged at level {level} (sigma={sigma:.4g}): NaN/inf in x; "
                             "lower step_size")
    bar.close()
    return (x, torch.stack(traj)) if return_trajectory else x
