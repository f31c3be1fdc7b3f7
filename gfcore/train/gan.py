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

Taught in chapter 7 (Generating new shapes).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from gfcore import _checks
from gfcore._version import __version__
from gfcore.models import LatentCritic, LatentGenerator, ShapeGF
from gfcore.train import distributed
from gfcore.train.batches import StepBatches, mix_seed
from gfcore.train.checkpoint import FORMAT_VERSION, RunDir, checkpoint_file, load_state
from gfcore.train.config import ConfigIO
from gfcore.utils import seed_everything

#: the ``kind`` of a latent-GAN checkpoint (an auto-encoder checkpoint is ``"shapegf-autoencoder"``)
CHECKPOINT_KIND = "shapegf-latent-gan"
REQUIRED_KEYS = ("format_version", "kind", "gfcore_version", "step", "total_steps", "config",
                 "generator_config", "critic_config", "generator", "critic", "opt_generator", "opt_critic",
                 "latents", "autoencoder", "history")
#: gradient penalties: the official zero-centred one, R1 proper, and WGAN-GP's on interpolates
PENALTIES = ("official", "r1", "wgan-gp")

_FLOAT_KEYS = ("lr", "penalty_weight", "critic_slope")
_POSITIVE_INTS = ("encode_batch_size", "noise_dim", "critic_steps", "batch_size", "log_every", "val_samples",
                  "ckpt_every")
# random streams (the second value of mix_seed): noise of the generator step, of the critic step,
# interpolation weights of WGAN-GP, the validation noise and the validation subset of real codes
_GEN_STREAM, _CRITIC_STREAM, _MIX_STREAM, _VAL_STREAM, _VAL_REAL_STREAM = 21, 22, 23, 24, 25


# ============================================================================================================
# configuration
# ============================================================================================================
@dataclass
class LatentGANConfig(ConfigIO):
    """Everything :func:`train_latent_gan` needs; YAML presets with ``stage: gan`` load into it.

    ``stage`` is always ``"gan"`` (the CLI dispatches on it). The frozen auto-encoder: ``autoencoder`` (a
    checkpoint file or run folder of :func:`~gfcore.train.train_autoencoder`, or a name of
    :func:`gfcore.pretrained.available`; ``autoencoder_ema`` picks a checkpoint's EMA weights). The real
    codes: the encoder's outputs on the ``"train"`` split of ``dataset`` with ``dataset_kwargs`` (``None``:
    those the auto-encoder was trained on, as its checkpoint or model card records them), each shape's first
    ``num_points`` pool points, ``encode_batch_size`` shapes at a time. Networks: ``noise_dim``,
    ``generator_hidden``, ``critic_hidden``, ``critic_slope`` (see :class:`~gfcore.models.LatentGenerator`,
    :class:`~gfcore.models.LatentCritic`). Loss: ``penalty`` (one of :data:`PENALTIES`) with
    ``penalty_weight``, ``critic_steps`` critic steps per generator step. Optimisation: ``batch_size`` real
    codes per step, the run length as ``max_steps`` or ``epochs`` (passes over the real codes; one of the
    two), Adam ``lr`` and ``betas``. ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``); ``cpu_threads`` (torch's
    CPU threads during the training loop, restored afterwards; ``None`` leaves them: these networks are so
    small that one thread is fastest, and several threads on a busy CPU are several times slower); ``seed``.
    Logging: every ``log_every`` steps; the latent MMD (:func:`latent_mmd`) of ``val_samples`` generated codes
    against as many real ones every ``val_every`` steps (``None`` off); ``last.pt`` every ``ckpt_every`` steps
    and at the end.

    The official recipe is the defaults plus ``epochs=10000``.

    Raises:
        ValueError, TypeError: on construction, naming the first bad field.

    Taught in chapter 7 (Generating new shapes).
    """

    WHAT = "latent-GAN config"

    stage: str = "gan"
    autoencoder: str | None = None
    autoencoder_ema: bool = True
    dataset: str | None = None
    dataset_kwargs: dict | None = None
    encode_batch_size: int = 64
    noise_dim: int = 128
    generator_hidden: tuple = (256, 256)
    critic_hidden: tuple = (512, 512)
    critic_slope: float = 0.2
    penalty: str = "official"
    penalty_weight: float = 1.0
    critic_steps: int = 1
    batch_size: int = 256
    max_steps: int | None = None
    epochs: int | None = None
    lr: float = 1e-4
    betas: tuple = (0.5, 0.9)
    device: str = "auto"
    cpu_threads: int | None = None
    seed: int = 100
    log_every: int = 100
    val_every: int | None = 1000
    val_samples: int = 1000
    ckpt_every: int = 1000
    keep_checkpoints: bool = False

    def __post_init__(self):
        for name in _FLOAT_KEYS:
            value = getattr(self, name)
            if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
                try:
                    setattr(self, name, float(value))
                except ValueError:
                    raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not isinstance(self.betas, (list, tuple)):
            raise TypeError(f"betas must be two numbers, got {self.betas!r}")
        self.betas = tuple(float(b) for b in self.betas)
        for name in ("generator_hidden", "critic_hidden"):
            value = getattr(self, name)
            setattr(self, name, tuple(value) if isinstance(value, (list, tuple)) else value)
        if self.autoencoder is not None and not isinstance(self.autoencoder, str):
            self.autoencoder = str(self.autoencoder)   # a Path
        if self.dataset_kwargs is not None:
            if not isinstance(self.dataset_kwargs, dict):
                raise TypeError(f"dataset_kwargs must be a dict or None, "
                                f"got {type(self.dataset_kwargs).__name__}")
            self.dataset_kwargs = dict(self.dataset_kwargs)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field."""
        if self.stage != "gan":
            raise ValueError(f"stage must be 'gan' for a latent-GAN config, got {self.stage!r}")
        for name in _POSITIVE_INTS:
            _checks.positive_int(name, getattr(self, name))
        for name in ("max_steps", "epochs", "val_every", "cpu_threads"):
            if getattr(self, name) is not None:
                _checks.positive_int(name, getattr(self, name))
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError(f"set max_steps or epochs, not both (got max_steps={self.max_steps}, "
                             f"epochs={self.epochs})")
        for name in ("generator_hidden", "critic_hidden"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value:
                raise ValueError(f"{name} must be a non-empty list of widths, got {value!r}")
            for width in value:
                _checks.positive_int(name, width)
        if not 0 <= float(self.critic_slope) < 1:
            raise ValueError(f"critic_slope must be in [0, 1), got {self.critic_slope}")
        _checks.choice("penalty", self.penalty, PENALTIES)
        if isinstance(self.penalty_weight, bool) or not math.isfinite(float(self.penalty_weight)) or float(
                self.penalty_weight) < 0:
            raise ValueError(f"penalty_weight must be a finite number >= 0, got {self.penalty_weight}")
        _checks.positive("lr", float(self.lr))
        if len(self.betas) != 2 or not all(0 <= float(b) < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        _checks.choice("device", str(self.device).split(":")[0], ("auto", "cpu", "cuda"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")
        for name in ("autoencoder_ema", "keep_checkpoints"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        """Plain dict (lists, no tuples): YAML/JSON/checkpoint safe."""
        d = dataclasses.asdict(self)
        for name in ("betas", "generator_hidden", "critic_hidden"):
            d[name] = list(getattr(self, name))
        d["betas"] = [float(b) for b in self.betas]
        return d

    def to_yaml(self, path=None) -> str:
        """YAML text of :meth:`to_dict`; also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def generator_kwargs(self, zdim: int) -> dict:
        """The keyword arguments of :class:`~gfcore.models.LatentGenerator` for codes of size ``zdim``."""
        return {"zdim": zdim, "noise_dim": self.noise_dim, "hidden": list(self.generator_hidden)}

    def critic_kwargs(self, zdim: int) -> dict:
        """The keyword arguments of :class:`~gfcore.models.LatentCritic` for codes of size ``zdim``."""
        return {"zdim": zdim, "hidden": list(self.critic_hidden), "negative_slope": float(self.critic_slope)}


def _resolve_config(config, overrides: dict) -> LatentGANConfig:
    if config is None:
        config = LatentGANConfig()
    elif isinstance(config, dict):
        config = LatentGANConfig.from_dict(config)
    elif not isinstance(config, LatentGANConfig):
        raise TypeError(f"config must be a LatentGANConfig, a dict or None, got {type(config).__name__}")
    if overrides:
        config = LatentGANConfig.from_dict({**config.to_dict(), **overrides})
    return config


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
        kind: one of :data:`PENALTIES`.
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
    """The fixed yardstick of :func:`train_latent_gan`'s ``latent_mmd`` records, to measure other codes alike.

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
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(seed, _VAL_REAL_STREAM)))
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


# ============================================================================================================
# the frozen auto-encoder and the real codes
# ============================================================================================================
def resolve_autoencoder(spec, *, device=None, ema: bool = True) -> tuple[ShapeGF, str, dict | None]:
    """Load the auto-encoder a latent GAN is trained on.

    Args:
        spec: a :class:`~gfcore.models.ShapeGF`; a checkpoint file or run folder of
            :func:`~gfcore.train.train_autoencoder`; a name of :func:`gfcore.pretrained.available` (optionally
            written ``"pretrained:<name>"``).
        device: where to put it (default: CUDA when present, else CPU).
        ema: for a checkpoint, use its EMA weights when it kept them.

    Returns:
        ``(model, source, data)``: the model in eval mode, a string naming where it came from, and
        ``{"dataset", "dataset_kwargs"}`` it was trained on, number of points included (from the checkpoint's
        config or the model card's training config; ``None`` when unknown).

    Raises:
        TypeError: ``spec`` of another type.
        ValueError, FileNotFoundError: neither a checkpoint nor a pretrained name; an incompatible checkpoint.

    Taught in chapter 7 (Generating new shapes).
    """
    from gfcore import pretrained
    from gfcore.train.checkpoint import load_checkpoint, load_model
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    if isinstance(spec, ShapeGF):
        return spec.to(device).eval(), "ShapeGF passed in code", None
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"autoencoder must be a ShapeGF, a checkpoint path or a pretrained name, got "
                        f"{type(spec).__name__}")
    text = str(spec)
    if Path(text).exists():
        model = load_model(text, device, ema=ema)
        cfg = load_checkpoint(text, map_location="cpu")["config"]
        data = {"dataset": cfg.get("dataset"), "dataset_kwargs": dict(cfg.get("dataset_kwargs") or {})}
        return model, text, data if data["dataset"] else None
    name = text.removeprefix("pretrained:")
    if name in pretrained.available():
        card = pretrained.card(name)
        trained = card.get("config") or {}        # the training config: the data exactly as it was trained on
        data = {"dataset": trained.get("dataset", card.get("dataset")),
                "dataset_kwargs": dict(trained.get("dataset_kwargs", card.get("dataset_kwargs")) or {})}
        return pretrained.load(name, device=device), f"pretrained:{name}", data if data["dataset"] else None
    raise ValueError(f"autoencoder {text!r} is neither an existing checkpoint file or run folder nor a "
                     f"pretrained model (available: {pretrained.available()})")


@torch.no_grad()
def encode_dataset(autoencoder: ShapeGF, dataset, *, batch_size: int = 64,
                   progress: bool = False) -> torch.Tensor:
    """The encoder's codes (eval mode) of every item of ``dataset``, in order: the latent GAN's real data.

    Args:
        autoencoder: a :class:`~gfcore.models.ShapeGF` (its encoder is used in eval mode; the mode is
            restored).
        dataset: items ``{"points": (N, d), ...}`` (for reproducible codes, a dataset whose items do not draw
            random points, e.g. built with ``sample="first"``).
        batch_size: shapes per forward pass.
        progress: show a tqdm bar.

    Returns:
        ``(len(dataset), zdim)`` float32 codes on the auto-encoder's device.

    Raises:
        ValueError: an empty dataset, points of the wrong dimension or with NaN.

    Taught in chapter 7 (Generating new shapes).
    """
    batch_size = _checks.positive_int("batch_size", batch_size)
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    device = next(autoencoder.parameters()).device
    was_training = autoencoder.training
    autoencoder.eval()
    out = []
    try:
        for start in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="encode"):
            points = torch.stack([dataset[i]["points"] for i in range(start, min(start + batch_size,
                                                                                 len(dataset)))])
            out.append(autoencoder.encode(points.to(device)).float())
    finally:
        autoencoder.train(was_training)
    return torch.cat(out)


# ============================================================================================================
# checkpoints
# ============================================================================================================
@dataclass
class LatentGANResult:
    """What :func:`train_latent_gan` and :func:`load_latent_gan` return.

    Attributes:
        generator, critic: the networks, in eval mode.
        autoencoder: the frozen :class:`~gfcore.models.ShapeGF` (eval mode), ``None`` for a GAN trained on
            codes passed in code.
        latents: ``(N, zdim)`` the real codes it was trained on.
        history: the log records.
        out_dir: the run folder (``None`` when nothing was written).
        config: the :class:`LatentGANConfig`.
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


def load_gan_checkpoint(path, *, map_location="cpu") -> dict:
    """Load and check a latent-GAN checkpoint (``weights_only=True``).

    Args:
        path: a checkpoint file, or a run folder / :class:`~gfcore.train.RunDir` (its
            ``checkpoints/last.pt``).
        map_location: as for ``torch.load``.

    Returns:
        The checkpoint dict (keys :data:`REQUIRED_KEYS` and ``torch_version``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: another kind of checkpoint (e.g. an auto-encoder's), another format version, missing keys.

    Taught in chapter 7 (Generating new shapes).
    """
    path = checkpoint_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, weights_only=True, map_location=map_location)
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} is not a gfcore checkpoint (holds a {type(ckpt).__name__}, "
                         "expected a dict)")
    kind = ckpt.get("kind")
    if kind != CHECKPOINT_KIND:
        hint = ""
        if kind == "shapegf-autoencoder":
            hint = " (an auto-encoder: load it with gfcore.train.load_model)"
        raise ValueError(f"{path} holds a {kind!r} checkpoint{hint}, expected a latent GAN "
                         f"({CHECKPOINT_KIND!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {ckpt.get('format_version')}; this gfcore "
                         f"reads version {FORMAT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a complete latent-GAN checkpoint: missing keys {missing}")
    return ckpt


def load_latent_gan(path, device=None) -> LatentGANResult:
    """Rebuild a trained latent GAN and its frozen auto-encoder from a checkpoint, in eval mode.

    Args:
        path: a checkpoint written by :func:`train_latent_gan`, or its run folder.
        device: where to put the networks (default: CUDA when present, else CPU).

    Returns:
        :class:`LatentGANResult`; ``result.sample(num_shapes, num_points, generator=...)`` draws new shapes.

    Raises:
        ValueError: not a latent-GAN checkpoint (see :func:`load_gan_checkpoint`), weights that do not fit.

    Taught in chapter 7 (Generating new shapes).
    """
    from gfcore.utils import default_device

    device = torch.device(device) if device is not None else default_device()
    path = checkpoint_file(path)
    ckpt = load_gan_checkpoint(path)
    gen = LatentGenerator.from_config(ckpt["generator_config"])
    critic = LatentCritic.from_config(ckpt["critic_config"])
    load_state(gen, ckpt["generator"], path, "generator")
    load_state(critic, ckpt["critic"], path, "critic")
    autoencoder = None
    if ckpt["autoencoder"] is not None:
        autoencoder = ShapeGF.from_config(ckpt["autoencoder"]["model_config"])
        load_state(autoencoder, ckpt["autoencoder"]["state_dict"], path, "auto-encoder")
        autoencoder = autoencoder.to(device).eval()
    out_dir = path.parent.parent if path.parent.name == "checkpoints" else None
    return LatentGANResult(generator=gen.to(device).eval(), critic=critic.to(device).eval(),
                           autoencoder=autoencoder, latents=ckpt["latents"].to(device),
                           history=list(ckpt["history"]), out_dir=out_dir,
                           config=LatentGANConfig.from_dict(ckpt["config"]), step=int(ckpt["step"]))


def _checkpoint_state(*, step, total, cfg, gen, critic, opt_g, opt_c, latents, autoencoder, source,
                      history) -> dict:
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
    cfg = _resolve_config(config, overrides)
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
    metrics_file = None
    if run is not None:
        run.write_config(cfg)
        metrics_file = run.open_metrics(history)

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
    t_window, step_window, step = time.perf_counter(), start, start
    gen.train()
    critic.train()
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
                now = time.perf_counter()
                record.update({"step": step, "epoch": round(step / steps_per_epoch, 4),
                               **{k: s[0] / s[1] for k, s in sums.items() if s[1]},
                               "steps_per_s": (step - step_window) / max(now - t_window, 1e-9)})
                sums = {}
                t_window, step_window = now, step
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
                history.append(record)
                if metrics_file is not None:
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                if callback is not None:
                    callback(record)

            # 4. the checkpoint
            if run is not None and (step % cfg.ckpt_every == 0 or step == total):
                state = _checkpoint_state(step=step, total=total, cfg=cfg, gen=gen, critic=critic,
                                          opt_g=opt_g, opt_c=opt_c, latents=latents, autoencoder=ae_model,
                                          source=source, history=history)
                run.save(state, keep=cfg.keep_checkpoints)
    finally:
        torch.set_num_threads(threads)
        bar.close()
        if metrics_file is not None:
            metrics_file.close()
    return LatentGANResult(generator=gen.eval(), critic=critic.eval(), autoencoder=ae_model, latents=latents,
                           history=history, out_dir=run.path if run else None, config=cfg, step=step)
