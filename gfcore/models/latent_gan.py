"""The generation stage of ShapeGF: a GAN on the auto-encoder's latent codes, and sampling new shapes with it.

ShapeGF generates shapes in two stages (Sec. 3.5 of the paper): the auto-encoder first, then a small GAN that
learns the distribution of the latent codes ``z``. A new shape is a sampled ``z`` decoded by annealed Langevin
dynamics on the decoder's field. This module holds the two networks, as the official configs size them, and
:func:`sample_shapes`, which chains them; their training lives in :mod:`gfcore.train.gan`.

Module names follow the official checkpoints (``layers.{i}`` and ``out``). The critic's state dict is the
official discriminator's key for key (its unused norm lists hold no modules in the released configs), though the
official one returns ``(B, 1)`` scores where :class:`LatentCritic` returns ``(B,)``. The generator's is not, strictly:
the official generator always builds batch norms ``bns.{i}`` (one per hidden layer) and ``out_bn``, whether or not
its config applies them, and the released configs apply none (``use_bn: False``, ``output_bn: False``). So an
official ``gen`` state dict holds five extra entries per norm (``weight``, ``bias``, ``running_mean``,
``running_var``, ``num_batches_tracked``) that :class:`LatentGenerator` has no place for; keep only the keys
that start with ``layers.`` or ``out.`` before ``load_state_dict`` (the rest are unused by those configs), as
:func:`gfcore.pretrained.load_official` does.

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import torch
from torch import nn

from gfcore import _checks
from gfcore.schedule import geometric_sigmas

#: the official generation ladder: 5 geometric levels from 1 to 0.01 (1, 0.316, 0.1, 0.0316, 0.01)
GENERATION_LADDER = (1.0, 0.01, 5)


def generation_sigmas(*, device=None, dtype=torch.float32) -> torch.Tensor:
    """The official generation ladder ``(1, 0.316, 0.1, 0.0316, 0.01)`` (auto-encoding uses 10 levels).

    Returns:
        ``(5,)`` descending tensor on ``device``.

    Taught in chapter 7 (Generating new shapes).
    """
    return geometric_sigmas(*GENERATION_LADDER, dtype=dtype, device=device)


def _widths(name: str, hidden) -> tuple[int, ...]:
    """A non-empty tuple of positive ints (one width per hidden layer)."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints (one width per hidden layer), "
                        f"got {type(hidden).__name__}") from None
    if not hidden:
        raise ValueError(f"{name} must list at least one hidden width, got {hidden}")
    for h in hidden:
        _checks.positive_int(name, h)
    return hidden


def _check_input(name: str, value, width: int) -> torch.Tensor:
    """Shape and dtype check of a network input (values are not checked: training's hot path)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.dim() != 2 or value.shape[1] != width or value.shape[0] == 0:
        raise ValueError(f"{name} must be (B, {width}) with B >= 1, got shape {tuple(value.shape)}")
    return value


class _ConfigMixin:
    CONFIG_KEYS: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: dict):
        """Build from :attr:`config` (as stored in checkpoints); unknown keys raise ``ValueError``."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - set(cls.CONFIG_KEYS))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} config keys {unknown}; "
                             f"valid keys: {list(cls.CONFIG_KEYS)}")
        return cls(**config)


class LatentGenerator(_ConfigMixin, nn.Module):
    """The latent GAN's generator: noise ``n ~ N(0, I)`` to a latent code ``z = G(n)`` (ShapeGF Sec. 3.5).

    A plain MLP, ``noise_dim -> hidden[0] -> ... -> zdim``, ReLU after every hidden layer, no normalisation
    and no output activation. The official configs: ``noise_dim = zdim = 128``, ``hidden = (256, 256)``
    (131,712 parameters).

    Args:
        zdim: size of the latent codes it produces (the auto-encoder's ``zdim``).
        noise_dim: size of the Gaussian noise it reads.
        hidden: widths of the hidden layers.

    Attributes:
        config: the constructor's keyword arguments (a dict of primitives), stored in checkpoints.

    Shapes:
        ``forward(noise (B, noise_dim)) -> z (B, zdim)``; ``sample(num_shapes) -> z (num_shapes, zdim)``.

    Raises:
        TypeError, ValueError: non-positive or non-int sizes (naming the argument); inputs of the wrong shape.

    Taught in chapter 7 (Generating new shapes).
    """

    CONFIG_KEYS = ("zdim", "noise_dim", "hidden")

    def __init__(self, zdim: int = 128, noise_dim: int = 128, hidden=(256, 256)):
        super().__init__()
        zdim = _checks.positive_int("zdim", zdim)
        noise_dim = _checks.positive_int("noise_dim", noise_dim)
        hidden = _widths("hidden", hidden)
        self.zdim, self.noise_dim, self.hidden = zdim, noise_dim, hidden
        self.config = {"zdim": zdim, "noise_dim": noise_dim, "hidden": list(hidden)}
        widths = (noise_dim, *hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.out = nn.Linear(widths[-1], zdim)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """``(B, noise_dim)`` noise -> ``(B, zdim)`` latent codes."""
        h = _check_input("noise", noise, self.noise_dim)
        for layer in self.layers:
            h = torch.relu(layer(h))
        return self.out(h)

    def sample(self, num_shapes: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``num_shapes`` latent codes: noise from ``N(0, I)`` through the network.

        Gradients flow (training uses it); wrap in ``torch.no_grad()`` to sample only.

        Args:
            num_shapes: how many codes.
            generator: ``torch.Generator`` on the network's device, for the noise.

        Returns:
            ``(num_shapes, zdim)`` on the network's device.

        Raises:
            ValueError: ``num_shapes < 1``; a ``generator`` on another device.

        Taught in chapter 7.
        """
        num_shapes = _checks.positive_int("num_shapes", num_shapes)
        param = self.out.weight
        _check_generator(generator, param.device)
        noise = torch.randn(num_shapes, self.noise_dim, generator=generator, device=param.device,
                            dtype=param.dtype)
        return self(noise)


class LatentCritic(_ConfigMixin, nn.Module):
    """The latent GAN's critic (a Wasserstein "discriminator"): a code ``z`` to one real score ``D(z)``.

    A plain MLP, ``zdim -> hidden[0] -> ... -> 1``, LeakyReLU after every hidden layer, no normalisation, no
    output activation (a Wasserstein critic outputs any real number). The official configs: ``zdim = 128``,
    ``hidden = (512, 512)``, slope 0.2 (329,217 parameters).

    Args:
        zdim: size of the latent codes it scores.
        hidden: widths of the hidden layers.
        negative_slope: slope of the LeakyReLU for negative inputs.

    Attributes:
        config: the constructor's keyword arguments (a dict of primitives), stored in checkpoints.

    Shapes:
        ``forward(z (B, zdim)) -> (B,)``: one score per code.

    Raises:
        TypeError, ValueError: bad sizes or slope (naming the argument); inputs of the wrong shape.

    Taught in chapter 7 (Generating new shapes).
    """

    CONFIG_KEYS = ("zdim", "hidden", "negative_slope")

    def __init__(self, zdim: int = 128, hidden=(512, 512), negative_slope: float = 0.2):
        super().__init__()
        zdim = _checks.positive_int("zdim", zdim)
        hidden = _widths("hidden", hidden)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or not (
                0 <= negative_slope < 1):
            raise ValueError(f"negative_slope must be a number in [0, 1), got {negative_slope!r}")
        self.zdim, self.hidden, self.negative_slope = zdim, hidden, float(negative_slope)
        self.config = {"zdim": zdim, "hidden": list(hidden), "negative_slope": float(negative_slope)}
        widths = (zdim, *hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.out = nn.Linear(widths[-1], 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, zdim)`` codes -> ``(B,)`` scores."""
        h = _check_input("z", z, self.zdim)
        for layer in self.layers:
            h = nn.functional.leaky_relu(layer(h), self.negative_slope)
        return self.out(h).squeeze(-1)


def _check_generator(generator, device: torch.device) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if torch.device(generator.device).type != torch.device(device).type:
        raise ValueError(f"generator is on {generator.device} but the networks are on {device}; create it "
                         f"with torch.Generator(device={str(device)!r})")


@torch.no_grad()
def sample_shapes(autoencoder, latent_generator: LatentGenerator, num_shapes: int, num_points: int, *,
                  generator: torch.Generator | None = None, sigmas: torch.Tensor | None = None,
                  steps_per_sigma: int = 10, batch_size: int | None = None, return_latents: bool = False,
                  **decode_kwargs):
    """New shapes: ``z = G(n)``, ``n ~ N(0, I)``, decoded by annealed Langevin (ShapeGF Sec. 3.5).

    The official generation recipe: the 5-level ladder :func:`generation_sigmas` (1 to 0.01), 10 steps per
    level (50 network calls), the uniform prior in ``[-1.5, 1.5]^3`` (see
    :meth:`gfcore.models.ShapeGF.decode`). The shapes come out in the auto-encoder's normalised space (the
    space generation metrics are computed in).

    Args:
        autoencoder: a trained :class:`~gfcore.models.ShapeGF` (its ``decode`` is used, in eval mode).
        latent_generator: a trained :class:`LatentGenerator` with the auto-encoder's ``zdim``, on its device.
        num_shapes: shapes to generate ``B``.
        num_points: points per shape ``M`` (any number, independent of training).
        generator: ``torch.Generator`` on the networks' device: with it the noise, the prior and the Langevin
            noise are reproducible (for a fixed ``batch_size``).
        sigmas: ``(L,)`` descending ladder (default: :func:`generation_sigmas`).
        steps_per_sigma: Langevin steps per level (official 10).
        batch_size: decode this many shapes at a time (default: all at once).
        return_latents: also return the ``(B, zdim)`` codes.
        decode_kwargs: further keyword arguments of :meth:`~gfcore.models.ShapeGF.decode` (``prior``,
            ``step_size``, ``fast``, ...).

    Returns:
        ``(B, M, d)`` points on the auto-encoder's device (and ``(B, zdim)`` codes if ``return_latents``).

    Raises:
        TypeError: a ``latent_generator`` that is not a :class:`LatentGenerator`, a bad ``generator``.
        ValueError: non-positive counts, ``zdim`` mismatch, networks on different devices, a ``generator`` on
            another device, a diverging sampler.

    Taught in chapter 7 (Generating new shapes).
    """
    num_shapes = _checks.positive_int("num_shapes", num_shapes)
    num_points = _checks.positive_int("num_points", num_points)
    steps_per_sigma = _checks.positive_int("steps_per_sigma", steps_per_sigma)
    if batch_size is not None:
        batch_size = _checks.positive_int("batch_size", batch_size)
    if not isinstance(latent_generator, LatentGenerator):
        raise TypeError(f"latent_generator must be a LatentGenerator, got {type(latent_generator).__name__}")
    if not hasattr(autoencoder, "decode") or not hasattr(autoencoder, "zdim"):
        raise TypeError(f"autoencoder must be a ShapeGF (with decode and zdim), "
                        f"got {type(autoencoder).__name__}")
    if latent_generator.zdim != autoencoder.zdim:
        raise ValueError(f"latent_generator makes codes of size {latent_generator.zdim} but the "
                         f"autoencoder's zdim is {autoencoder.zdim}")
    device = next(autoencoder.parameters()).device
    gen_device = latent_generator.out.weight.device
    if gen_device != device:
        raise ValueError(f"latent_generator is on {gen_device} but the autoencoder is on {device}; move one")
    _check_generator(generator, device)
    if sigmas is None:
        sigmas = generation_sigmas()                   # on the CPU: the sampler reads the levels on the host
    was_training = latent_generator.training
    latent_generator.eval()
    try:
        z = latent_generator.sample(num_shapes, generator=generator)
    finally:
        latent_generator.train(was_training)
    step = batch_size or num_shapes
    shapes = [autoencoder.decode(z[i:i + step], num_points, sigmas=sigmas, steps_per_sigma=steps_per_sigma,
                                 generator=generator, **decode_kwargs)
              for i in range(0, num_shapes, step)]
    shapes = torch.cat(shapes) if len(shapes) > 1 else shapes[0]
    return (shapes, z) if return_latents else shapes
