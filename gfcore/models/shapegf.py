"""ShapeGF's auto-encoder: a PointNet encoder and a gradient-field decoder (ShapeGF Sec. 3.4).

Taught in chapter 4 (Conditional fields in 2D) and chapter 5 (The full 3D model).
"""
from __future__ import annotations

import torch
from torch import nn

from gfcore import _checks
from gfcore.losses import dsm_loss
from gfcore.models.decoder import ScoreDecoder
from gfcore.models.encoder import PointNetEncoder
from gfcore.models.fold import fast_score_fn
from gfcore.models.latent_gan import sample_shapes
from gfcore.models.refine import refine_codes
from gfcore.sampling import annealed_langevin
from gfcore.sampling import prior as make_prior
from gfcore.schedule import geometric_sigmas
from gfcore.utils import fast_dtype


class ShapeGF(nn.Module):
    """Encoder ``points -> z`` and decoder field ``(x, sigma, z) -> sigma^2 * score``, with training and sampling.

    Args:
        dim: spatial dimension ``d`` (2 or 3).
        zdim: size of the latent code.
        hidden, n_blocks, block: the :class:`~gfcore.models.ScoreDecoder` (``"add"`` 24 blocks is the official
            model; ``"cbn"`` with 16 blocks is the paper's description).
        preconditioning: ``"none"`` (the official parameterisation, the default) or ``"edm"`` (the decoder
            predicts the noise direction from a scaled input and a smooth function of sigma; trains far faster on
            small budgets); see :func:`gfcore.models.decoder.preconditioning`.
        norm: the decoder's normalisation, ``"batch"`` (official) or ``"none"``; see
            :class:`~gfcore.models.ScoreDecoder`.

    Attributes:
        encoder: :class:`~gfcore.models.PointNetEncoder`.
        decoder: :class:`~gfcore.models.ScoreDecoder`.
        config: the constructor keyword arguments (a dict), stored in checkpoints to rebuild the model.

    Shapes:
        ``encode(points (B, N, d)) -> z (B, zdim)``; ``score(x (B, M, d), sigma (B,), z) -> (B, M, d)``;
        ``loss(points (B, N, d), sigmas (L,)) -> (B,)``; ``decode(z, num_points) -> (B, num_points, d)``.
        ``forward`` is :meth:`loss` (so ``DistributedDataParallel`` wraps training).

    Taught in chapter 4/5.
    """

    #: the constructor's keyword arguments: what :attr:`config` holds and :meth:`from_config` accepts
    CONFIG_KEYS = ("dim", "zdim", "hidden", "n_blocks", "block", "preconditioning", "norm")

    def __init__(self, dim: int = 3, zdim: int = 128, hidden: int = 256, n_blocks: int = 24, block: str = "add",
                 preconditioning: str = "none", norm: str = "batch"):
        super().__init__()
        self.config = {"dim": dim, "zdim": zdim, "hidden": hidden, "n_blocks": n_blocks, "block": block,
                       "preconditioning": preconditioning, "norm": norm}
        self.dim, self.zdim = dim, zdim
        self.encoder = PointNetEncoder(in_dim=dim, zdim=zdim)
        self.decoder = ScoreDecoder(dim=dim, zdim=zdim, hidden=hidden, n_blocks=n_blocks, block=block,
                                    preconditioning=preconditioning, norm=norm)

    @classmethod
    def from_config(cls, config: dict) -> ShapeGF:
        """Build a model from :attr:`config` (as stored in a checkpoint; a missing ``preconditioning`` is the
        official ``"none"``). Unknown keys raise ``ValueError`` listing the valid ones."""
        unknown = sorted(set(config) - set(cls.CONFIG_KEYS))
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; valid keys: {list(cls.CONFIG_KEYS)}")
        return cls(**config)

    # -- the pieces ------------------------------------------------------------------------------------------
    def encode(self, points: torch.Tensor, *, check_values: bool = True) -> torch.Tensor:
        """Latent codes of point clouds.

        Args:
            points: ``(B, N, d)`` clean points (any ``N``).
            check_values: check ``points`` for NaN/inf (a host synchronisation on a GPU); the trainer passes
                ``False`` and checks its batches on the device.

        Returns:
            ``(B, zdim)``.

        Raises:
            ValueError: wrong shape, NaN/inf; ``B < 2`` in train mode.

        Taught in chapter 4/5.
        """
        return self.encoder(points, check_values=check_values)

    def _check_z(self, z: torch.Tensor) -> torch.Tensor:
        z = _checks.tensor("z", z, ndims=(2,))
        if z.shape[1] != self.zdim:
            raise ValueError(f"z must be (B, zdim={self.zdim}), got shape {tuple(z.shape)}")
        return z

    def score(self, x: torch.Tensor, sigma, z: torch.Tensor) -> torch.Tensor:
        """The learned score ``grad_x log p_sigma(x | z)`` = decoder output ``/ sigma^2``.

        Args:
            x: ``(B, M, d)`` query points.
            sigma: ``(B,)`` noise levels (a number is broadcast).
            z: ``(B, zdim)`` latent codes.

        Returns:
            ``(B, M, d)`` score (float32 under autocast).

        Raises:
            ValueError: wrong shapes (values are not checked: this is the sampler's hot path).

        Taught in chapter 4/5.
        """
        sigma = self.decoder.check_inputs(x, sigma, z)
        out = self.decoder(x, sigma, z)
        return out / sigma.to(out.dtype).square().view(-1, 1, 1)

    def score_fn(self, z: torch.Tensor):
        """A score callable ``(x (B, M, d), sigma (B,)) -> (B, M, d)`` conditioned on ``z`` (for the samplers).

        Taught in chapter 4/5.
        """
        z = self._check_z(z)
        return lambda x, sigma: self.score(x, sigma, z)

    def loss(self, points: torch.Tensor, sigmas: torch.Tensor, *, weighting: str = "shapegf",
             generator: torch.Generator | None = None, return_sigma: bool = False, check_values: bool = True):
        """Auto-encoding loss: encode the clean points, then denoising score matching of the decoder's field.

        The code ``z`` is computed from the clean ``points``; one ``sigma`` per shape is drawn from ``sigmas``
        (see :func:`gfcore.losses.dsm_loss`). With ``weighting="shapegf"`` this equals the official loss
        ``0.5 / sigma * mean_n |(-sigma eps) - decoder(x~, sigma, z)|^2``.

        Args:
            points: ``(B, N, d)`` clean points.
            sigmas: ``(L,)`` noise ladder.
            weighting: ``"shapegf"`` (``lambda = sigma^3``) or ``"ncsn"`` (``sigma^2``).
            generator: ``torch.Generator`` on ``points``' device for the level and noise draws.
            return_sigma: also return the ``(B,)`` levels drawn.
            check_values: check the values of ``points`` and ``sigmas`` (NaN, positive), which reads them on the
                host; ``False`` in a training loop that checks on the device (shapes are always checked).

        Returns:
            ``(B,)`` per-shape losses (and ``(B,)`` sigmas if ``return_sigma``).

        Taught in chapter 4/5.
        """
        z = self.encode(points, check_values=check_values)
        return dsm_loss(lambda x, sigma: self.score(x, sigma, z), points, sigmas, weighting=weighting,
                        generator=generator, return_sigma=return_sigma, check_values=check_values)

    forward = loss

    # -- sampling ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor, num_points: int, *, sigmas: torch.Tensor | None = None,
               steps_per_sigma: int = 10, prior: str = "uniform", prior_kwargs: dict | None = None,
               step_size: float | None = None, generator: torch.Generator | None = None,
               return_trajectory: bool = False, fast: bool = True, dtype: torch.dtype | str | None = "auto"):
        """Sample ``num_points`` points of each shape ``z`` by annealed Langevin dynamics on the learned field.

        Runs in eval mode (batch norm with running statistics) under ``no_grad`` and restores the previous mode.

        Args:
            z: ``(B, zdim)`` latent codes.
            num_points: points per shape, any ``M >= 1`` (independent of the training density).
            sigmas: ``(L,)`` descending ladder; default ``geometric_sigmas(1, 0.01, 10)`` (the official one).
            steps_per_sigma: Langevin steps per level (official: 10).
            prior: ``"uniform"`` (official, the box ``[-1.5, 1.5]^d``), ``"gaussian"`` or ``"fixed"``; see
                :func:`gfcore.sampling.prior`, which receives ``prior_kwargs``.
            step_size: see :func:`gfcore.sampling.annealed_langevin` (default ``2 * sigma_L^2``).
            generator: ``torch.Generator`` on ``z``'s device, for the prior and the Langevin noise.
            return_trajectory: also return the ``(T + 1, B, M, d)`` iterates.
            fast: sample with :func:`gfcore.models.fold.fast_score_fn` (batch norm folded, the ``(z, sigma)``
                terms computed once per level; the same function in float32 to ~1e-6, see ``bench/sample.py``)
                instead of :meth:`score_fn`.
            dtype: compute dtype of the fast path: ``"auto"`` (default) is :func:`gfcore.utils.fast_dtype`,
                bfloat16 on CUDA and on CPUs with native bfloat16 units (faster, and as accurate as float32 by
                ``bench/sample.py``), float32 elsewhere; ``None`` or ``torch.float32`` for float32. The
                ``fast=False`` path always runs in the parameters' dtype.

        Returns:
            ``(B, num_points, d)`` points (and the trajectory if asked).

        Raises:
            ValueError: bad ``z`` (shape, NaN), ``num_points``, or a diverging sampler.

        Taught in chapter 4/5.
        """
        z = self._check_z(z)
        num_points = _checks.positive_int("num_points", num_points)
        if sigmas is None:
            sigmas = geometric_sigmas(1.0, 0.01, 10)    # on the CPU: the sampler reads the levels on the host
        x0 = make_prior(prior, (z.shape[0], num_points, self.dim), generator=generator, device=z.device,
                        dtype=z.dtype, **(prior_kwargs or {}))
        was_training = self.training
        self.eval()
        try:
            if dtype == "auto":
                dtype = fast_dtype(z.device)
            score_fn = fast_score_fn(self, z, dtype=dtype) if fast else self.score_fn(z)
            return annealed_langevin(score_fn, x0, sigmas, steps_per_sigma=steps_per_sigma,
                                     step_size=step_size, generator=generator,
                                     return_trajectory=return_trajectory)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def reconstruct(self, points: torch.Tensor, num_points: int, *, refine_steps: int = 0, **kwargs):
        """Auto-encode: :meth:`decode` of :meth:`encode` (eval mode). ``points (B, N, d) -> (B, num_points, d)``.

        ``refine_steps > 0`` first refines the encoder's codes on ``points`` (the network frozen, see
        :func:`gfcore.models.refine.refine_codes`, with its defaults and ``decode``'s ``generator``); the official
        model uses the encoder's codes as they are (``refine_steps=0``). Other keyword arguments are those of
        :meth:`decode`.

        Taught in chapter 4/5.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                z = self.encode(points)
        finally:
            self.train(was_training)
        if refine_steps:
            z = refine_codes(self, points, z, steps=refine_steps, generator=kwargs.get("generator"))
        return self.decode(z, num_points, **kwargs)

    @torch.no_grad()
    def sample(self, latent_generator, num_shapes: int, num_points: int, **kwargs):
        """New shapes: codes from a trained latent GAN, decoded by annealed Langevin (ShapeGF Sec. 3.5).

        A thin wrapper: ``model.sample(G, B, M, ...)`` is ``gfcore.models.sample_shapes(model, G, B, M, ...)``.
        The default ladder is the official 5-level generation ladder (1 to 0.01, 10 steps each).

        Args:
            latent_generator: a trained :class:`~gfcore.models.LatentGenerator` with this model's ``zdim``, on
                this model's device (``noise (B, noise_dim) -> z (B, zdim)``).
            num_shapes: shapes to generate ``B``.
            num_points: points per shape ``M`` (any number).
            kwargs: keyword arguments of :func:`gfcore.models.sample_shapes` (``generator``, ``sigmas``,
                ``steps_per_sigma``, ``batch_size``, ``return_latents``) and of :meth:`decode` (``prior``,
                ``step_size``, ``fast``).

        Returns:
            ``(B, M, d)`` points on this model's device, in its normalised space (and the ``(B, zdim)`` codes
            with ``return_latents=True``).

        Raises:
            TypeError, ValueError: as :func:`gfcore.models.sample_shapes` (non-positive counts name the argument).

        Taught in chapter 7 (Generating new shapes).
        """
        return sample_shapes(self, latent_generator, num_shapes, num_points, **kwargs)
