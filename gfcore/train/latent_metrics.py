"""Distances between sets of latent codes: how the latent GAN is monitored (not shape metrics: those are
:mod:`gfcore.metrics`).

:func:`latent_mmd` is a kernel distance between two sets of codes; :func:`mmd_yardstick` fixes the real codes,
the kernel width and the floor (two halves of the real codes against each other) once for a run, so that
generated codes are measured against the same yardstick at every validation step.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import torch

from gfcore import _checks
from gfcore.train.batches import mix_seed

#: the random stream (second value of :func:`~gfcore.train.batches.mix_seed`) of the yardstick's real subset;
#: the trainer's streams are 21 to 24 (:mod:`gfcore.train.gan`)
VAL_REAL_STREAM = 25


@torch.no_grad()
def latent_mmd(a: torch.Tensor, b: torch.Tensor, *, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy between two sets of codes, with a Gaussian kernel at three scales.
 ``MMD^2 = mean k(a, a') + mean k(b, b') - 2 mean k(a, b)`` (the biased estimator, so it is ``>= 0`` and about
``1 / n`` for two samples of one distribution), ``k`` the average of ``exp(-|x - y|^2 / (2 h^2))`` over ``h in
{bandwidth / 2, bandwidth, 2 bandwidth}``. A distance between distributions for monitoring the GAN;
    not a shape metric (those are in :mod:`gfcore.metrics`).

    Args:
        a: ``(n, C)`` codes (e.g. generated).
        b: ``(m, C)`` codes (the reference, e.g. real).
        bandwidth: ``h``; default the median distance between the points of ``b``.

    Returns:
        ``MMD^2`` as a float.

    Raises:
        ValueError: bad shapes, NaN, a non-positive ``bandwidth``.

    Taught in chapter 7 (Generating new shapes).
    """
    a = _checks.tensor("a", a, ndims=(2,))
    b = _checks.tensor("b", b, ndims=(2,))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same width, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    a, b = a.double(), b.to(device=a.device, dtype=torch.float64)
    if bandwidth is None:
        bandwidth = median_distance(b)
    _checks.positive("bandwidth", bandwidth)

    def k(x, y):
        d2 = torch.cdist(x, y).square()
        return sum(torch.exp(-d2 / (2 * (bandwidth * s) ** 2)) for s in (0.5, 1.0, 2.0)) / 3

    return float(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())


@torch.no_grad()
def mmd_yardstick(latents: torch.Tensor, *, num: int = 1000, seed: int = 100):
    """The fixed yardstick of :func:`~gfcore.train.train_latent_gan`'s ``latent_mmd`` records, to measure other
    codes alike.

    Args:
        latents: ``(N, C)`` real codes (``N >= 2``).
        num: codes in the real subset (at most ``N``).
        seed: the run's seed (the subset is a pure function of it).

    Returns:
        ``(real, bandwidth, floor)``: a ``(min(num, N), C)`` random subset of ``latents``, the median distance
        within it (the kernel's bandwidth) and the floor: :func:`latent_mmd` between two disjoint halves of
        ``latents`` (each of ``min(num, N // 2)`` codes), what a perfect generator reaches at that size.

    Raises:
        ValueError: fewer than 2 codes, bad ``num``.

    Taught in chapter 7 (Generating new shapes).
    """
    latents = _checks.tensor("latents", latents, ndims=(2,))
    num = _checks.positive_int("num", num)
    n = len(latents)
    if n < 2:
        raise ValueError(f"latents needs at least 2 codes, got shape {tuple(latents.shape)}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(seed, VAL_REAL_STREAM)))
    perm = perm.to(latents.device)
    real = latents[perm[:min(num, n)]]
    bandwidth = median_distance(real)
    half = n // 2
    m = min(num, half)
    floor = latent_mmd(latents[perm[:m]], latents[perm[half:half + m]], bandwidth=bandwidth)
    return real, bandwidth, floor


def median_distance(x: torch.Tensor) -> float:
    """The median distance between distinct rows of ``(n, C)`` ``x`` (``n >= 2``): a kernel bandwidth."""
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 codes for a median distance, got shape {tuple(x.shape)}")
    d = torch.cdist(x.double(), x.double())
    i, j = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    value = float(d[i, j].median())
    if value <= 0:
        raise ValueError("the codes are all identical (median distance 0)")
    return value


__all__ = ["latent_mmd", "median_distance", "mmd_yardstick"]
