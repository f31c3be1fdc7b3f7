"""Loading the checkpoints of the official ShapeGF code (Cai et al. 2020) into gfcore's models.

The official trainers save a plain dict with ``torch.save`` (torch's legacy serialisation for the released files):
``enc`` and ``sn`` (the encoder's and the score network's state dicts), optimiser states, ``epoch`` and ``step``;
the latent-GAN trainer adds ``gen`` and ``dis``. The networks are described by the YAML config the run used
(``models.encoder``, ``models.scorenet``, and ``models.gen`` / ``models.dis`` for generation). The official layers
are 1x1 ``Conv1d`` on ``(B, C, N)`` features, weights ``(out, in, 1)``; gfcore's are ``nn.Linear`` on
``(B, N, C)``, weights ``(out, in)``: the same numbers with the last axis dropped. The decoder's condition is the
concatenation ``[x, z, sigma]`` per point in both, with the raw ``sigma`` (gfcore's ``preconditioning="none"``)
and the output ``sigma^2 * score``, so the imported :class:`~gfcore.models.ShapeGF` computes the official
function: encoder codes, decoder fields (batch-norm running statistics included) and generator codes agree to
float32 rounding (``tests/test_official.py`` checks it on checkpoints written by the official classes).

The names, by network (official -> gfcore):

* encoder (``models.encoders.l3dp_encoder``, deterministic): ``conv1..conv4`` -> ``point_layers.0..3``,
  ``bn1..bn4`` -> ``point_norms.0..3``, ``fc1``, ``fc2`` -> ``fc_layers.0``, ``.1``, ``fc_bn1``, ``fc_bn2`` ->
  ``fc_norms.0``, ``.1``, ``fc3`` -> ``out``.
* decoder, both variants: ``conv_p`` -> ``inp``, ``conv_out`` -> ``out``, ``blocks.{i}.fc_0`` / ``.fc_1`` ->
  ``blocks.{i}.fc0`` / ``.fc1``.
  ``"add"`` (``models.decoders.resnet_add``): ``blocks.{i}.bn_0`` / ``.bn_1`` -> ``blocks.{i}.bn0`` / ``.bn1``,
  ``blocks.{i}.fc_c`` -> ``blocks.{i}.fc_c``, ``bn_out`` -> ``out_norm``.
  ``"cbn"`` (``models.decoders.resnet_cbn``): ``blocks.{i}.bn_0.{bn, conv_gamma, conv_beta}`` ->
  ``blocks.{i}.norm0.{bn, gamma, beta}`` (likewise ``bn_1`` -> ``norm1``), the head's ``bn.*`` -> ``out_norm.*``.
* generator (``models.generators.mlp_gen``): ``layers.{i}``, ``out`` as they are; its batch norms ``bns.{i}`` and
  ``out_bn`` are stored but unused by configs with ``use_bn: false`` and ``output_bn: false`` (the released ones),
  and are left out. Its prior ``N(0, gaussian_scale^2 I)`` is folded into the first layer's weight, so
  :meth:`~gfcore.models.LatentGenerator.sample`'s standard normal noise gives the official distribution.
* critic (``models.discriminators.mlp_dis``): ``layers.{i}``, ``out`` as they are; LeakyReLU slope 0.2.

State dicts saved from a ``DataParallel`` / ``DistributedDataParallel`` wrapper (every key prefixed ``module.``) are
read as well.

Usage::

    official = gfcore.pretrained.load_official("airplane_recon_add.pt", "airplane_recon_add.yaml")
    model = official.autoencoder                      # a ShapeGF in eval mode, the official parameterisation
    recon = model.reconstruct(points, 2048)           # points normalised as the official data loader does

Taught in chapter 10 (Reproducing the paper).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from gfcore.checkpoint_io import CheckpointError, read_checkpoint

#: official decoder types and the gfcore ``block`` each is
DECODER_TYPES = {"models.decoders.resnet_add": "add", "models.decoders.resnet_cbn": "cbn"}
ENCODER_TYPES = ("models.encoders.l3dp_encoder",)
GENERATOR_TYPES = ("models.generators.mlp_gen",)
CRITIC_TYPES = ("models.discriminators.mlp_dis",)
#: slope of the official critic's LeakyReLU
CRITIC_SLOPE = 0.2


@dataclass(frozen=True)
class OfficialModels:
    """What :func:`load_official` returns.

    Attributes:
        autoencoder: :class:`~gfcore.models.ShapeGF` in eval mode (``preconditioning="none"``, ``norm="batch"``).
        generator: :class:`~gfcore.models.LatentGenerator` in eval mode, or ``None`` (auto-encoder checkpoints).
        critic: :class:`~gfcore.models.LatentCritic` in eval mode, or ``None``.
        config: the YAML config as a dict.
        epoch, step: the checkpoint's counters (``None`` when absent).
    """

    autoencoder: torch.nn.Module
    generator: torch.nn.Module | None
    critic: torch.nn.Module | None
    config: dict
    epoch: int | None = None
    step: int | None = None


# -- reading ---------------------------------------------------------------------------------------------------
def _read_checkpoint(checkpoint) -> tuple[dict, str]:
    """The checkpoint dict (from a path, or a dict already loaded) and a name for messages."""
    if isinstance(checkpoint, Mapping):
        blob, where = dict(checkpoint), "checkpoint"
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
        where = str(path)
        try:
            blob = read_checkpoint(path, map_location="cpu")      # torch.load(weights_only=True), errors made clear
        except CheckpointError as err:
            raise CheckpointError(f"not an official ShapeGF checkpoint: {err}") from None
    if not isinstance(blob, dict):
        raise ValueError(f"{where} is not an official ShapeGF checkpoint: it holds a {type(blob).__name__}, "
                         "expected a dict with the state dicts 'enc' and 'sn'")
    if blob.get("kind") == "gfcore-pretrained":
        raise ValueError(f"{where} is a gfcore model, not an official checkpoint: use gfcore.pretrained.load_file")
    missing = [k for k in ("enc", "sn") if not isinstance(blob.get(k), Mapping)]
    if missing:
        raise ValueError(f"{where} is not an official ShapeGF checkpoint: it lacks the state dict(s) {missing} "
                         f"(keys found: {sorted(map(str, blob))}; expected 'enc', 'sn', and for a latent GAN "
                         "'gen', 'dis')")
    for key in ("enc", "sn", "gen", "dis"):
        if key not in blob:
            continue
        if not all(isinstance(v, torch.Tensor) for v in blob[key].values()):
            raise ValueError(f"{where}: '{key}' is not a state dict of tensors")
        state = dict(blob[key])
        if state and all(k.startswith("module.") for k in state):   # saved from a (Distributed)DataParallel wrapper
            state = {k[len("module."):]: v for k, v in state.items()}
        blob[key] = state
    return blob, where


def _read_config(config) -> dict:
    if isinstance(config, Mapping):
        cfg = dict(config)
    else:
        import yaml

        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"config {str(path)!r} does not exist")
        cfg = yaml.safe_load(path.read_text())
        if not isinstance(cfg, dict):
            raise ValueError(f"config {str(path)!r} is not a YAML mapping (got {type(cfg).__name__})")
    models = cfg.get("models")
    if not isinstance(models, Mapping):
        raise ValueError("config has no 'models' section (the official configs describe the networks under "
                         "models.encoder and models.scorenet)")
    for key in ("encoder", "scorenet"):
        if not isinstance(models.get(key), Mapping):
            raise ValueError(f"config has no models.{key} section")
    return cfg


def _get(section: Mapping, name: str, key: str, default=None, *, required: bool = False):
    if key not in section:
        if required:
            raise ValueError(f"config models.{name} lacks '{key}'")
        return default
    return section[key]


def _require(name: str, key: str, value, expected) -> None:
    if value != expected:
        raise ValueError(f"config models.{name}.{key} is {value!r}; gfcore loads only {key}: {expected!r} "
                         "(the released models' setting)")


def _int(name: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"config models.{name}.{key} must be a positive int, got {value!r}")
    return value


# -- the networks' settings --------------------------------------------------------------------------------------
def _autoencoder_kwargs(models: Mapping) -> dict:
    enc, dec = models["encoder"], models["scorenet"]
    enc_type, dec_type = enc.get("type"), dec.get("type")
    if enc_type not in ENCODER_TYPES:
        raise ValueError(f"unknown encoder type {enc_type!r} (config models.encoder.type); gfcore loads "
                         f"{list(ENCODER_TYPES)}")
    if dec_type not in DECODER_TYPES:
        raise ValueError(f"unknown decoder type {dec_type!r} (config models.scorenet.type); gfcore loads "
                         f"{sorted(DECODER_TYPES)}")
    _require("encoder", "use_deterministic_encoder", _get(enc, "encoder", "use_deterministic_encoder", False),
             True)
    for key, expected in (("sigma_condition", True), ("xyz_condition", True), ("param_likelihood", False)):
        _require("scorenet", key, _get(dec, "scorenet", key, expected), expected)
    dim = _int("scorenet", "dim", _get(dec, "scorenet", "dim", 3))
    if _get(dec, "scorenet", "out_dim", dim) != dim:
        raise ValueError(f"config models.scorenet.out_dim is {dec['out_dim']!r} but dim is {dim}: the score has "
                         "one value per coordinate")
    in_dim = _int("encoder", "input_dim", _get(enc, "encoder", "input_dim", 3))
    if in_dim != dim:
        raise ValueError(f"config models.encoder.input_dim is {in_dim} but models.scorenet.dim is {dim}")
    zdim = _int("encoder", "zdim", _get(enc, "encoder", "zdim", required=True))
    z_dim = _int("scorenet", "z_dim", _get(dec, "scorenet", "z_dim", required=True))
    if z_dim != zdim:
        raise ValueError(f"config models.scorenet.z_dim is {z_dim} but models.encoder.zdim is {zdim}")
    return {"dim": dim, "zdim": zdim,
            "hidden": _int("scorenet", "hidden_size", _get(dec, "scorenet", "hidden_size", required=True)),
            "n_blocks": _int("scorenet", "n_blocks", _get(dec, "scorenet", "n_blocks", required=True)),
            "block": DECODER_TYPES[dec_type], "preconditioning": "none", "norm": "batch"}


def _widths(name: str, section: Mapping) -> list[int]:
    dims = _get(section, name, "dims", required=True)
    if not isinstance(dims, (list, tuple)) or not dims:
        raise ValueError(f"config models.{name}.dims must be a non-empty list of widths, got {dims!r}")
    return [_int(name, "dims", d) for d in dims]


def _generator_kwargs(gen: Mapping) -> tuple[dict, float]:
    """``(LatentGenerator kwargs, the prior's scale)``."""
    if gen.get("type") not in GENERATOR_TYPES:
        raise ValueError(f"unknown generator type {gen.get('type')!r} (config models.gen.type); gfcore loads "
                         f"{list(GENERATOR_TYPES)}")
    for key in ("use_bn", "output_bn"):
        _require("gen", key, _get(gen, "gen", key, False), False)
    _require("gen", "prior", _get(gen, "gen", "prior", "gaussian"), "gaussian")
    scale = _get(gen, "gen", "gaussian_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"config models.gen.gaussian_scale must be a positive number, got {scale!r}")
    kwargs = {"noise_dim": _int("gen", "inp_dim", _get(gen, "gen", "inp_dim", required=True)),
              "zdim": _int("gen", "out_dim", _get(gen, "gen", "out_dim", required=True)),
              "hidden": _widths("gen", gen)}
    return kwargs, float(scale)


def _critic_kwargs(dis: Mapping) -> dict:
    if dis.get("type") not in CRITIC_TYPES:
        raise ValueError(f"unknown critic type {dis.get('type')!r} (config models.dis.type); gfcore loads "
                         f"{list(CRITIC_TYPES)}")
    for key in ("use_bn", "use_ln", "use_sigmoid"):
        _require("dis", key, _get(dis, "dis", key, False), False)
    return {"zdim": _int("dis", "inp_dim", _get(dis, "dis", "inp_dim", required=True)),
            "hidden": _widths("dis", dis), "negative_slope": CRITIC_SLOPE}


# -- the names --------------------------------------------------------------------------------------------------
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_BN_NO_AFFINE = ("running_mean", "running_var", "num_batches_tracked")
_LIN = ("weight", "bias")


def _pairs(official: str, ours: str, fields) -> list[tuple[str, str]]:
    return [(f"{official}.{f}", f"{ours}.{f}") for f in fields]


def _encoder_names() -> list[tuple[str, str]]:
    names = []
    for i in range(4):
        names += _pairs(f"conv{i + 1}", f"point_layers.{i}", _LIN) + _pairs(f"bn{i + 1}", f"point_norms.{i}", _BN)
    for i in range(2):
        names += _pairs(f"fc{i + 1}", f"fc_layers.{i}", _LIN) + _pairs(f"fc_bn{i + 1}", f"fc_norms.{i}", _BN)
    return names + _pairs("fc3", "out", _LIN)


def _decoder_names(block: str, n_blocks: int) -> list[tuple[str, str]]:
    def cbn(official: str, ours: str) -> list[tuple[str, str]]:
        return (_pairs(f"{official}.bn", f"{ours}.bn", _BN_NO_AFFINE)
                + _pairs(f"{official}.conv_gamma", f"{ours}.gamma", _LIN)
                + _pairs(f"{official}.conv_beta", f"{ours}.beta", _LIN))

    names = _pairs("conv_p", "inp", _LIN)
    for i in range(n_blocks):
        o, g = f"blocks.{i}", f"blocks.{i}"
        names += _pairs(f"{o}.fc_0", f"{g}.fc0", _LIN) + _pairs(f"{o}.fc_1", f"{g}.fc1", _LIN)
        if block == "add":
            names += (_pairs(f"{o}.bn_0", f"{g}.bn0", _BN) + _pairs(f"{o}.bn_1", f"{g}.bn1", _BN)
                      + _pairs(f"{o}.fc_c", f"{g}.fc_c", _LIN))
        else:
            names += cbn(f"{o}.bn_0", f"{g}.norm0") + cbn(f"{o}.bn_1", f"{g}.norm1")
    names += _pairs("bn_out", "out_norm", _BN) if block == "add" else cbn("bn", "out_norm")
    return names + _pairs("conv_out", "out", _LIN)


def _mlp_names(n_hidden: int) -> list[tuple[str, str]]:
    return [p for i in range(n_hidden) for p in _pairs(f"layers.{i}", f"layers.{i}", _LIN)] + _pairs("out", "out",
                                                                                                       _LIN)


def _convert(official: Mapping, names: list[tuple[str, str]], module: torch.nn.Module, *, part: str,
             where: str, described: str, ignore: tuple[str, ...] = ()) -> dict:
    """The official state dict ``official`` renamed and reshaped for ``module`` (whose state dict must be filled
    exactly). ``Conv1d`` weights ``(out, in, 1)`` become ``(out, in)``.

    Raises:
        ValueError: a missing or unexpected key, or a shape that does not fit (naming the key and both shapes).
    """
    target = module.state_dict()
    expected_keys = {o for o, _ in names}
    missing = [o for o, _ in names if o not in official]
    extra = sorted(k for k in official if k not in expected_keys and not k.startswith(ignore))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks {missing[:6]}{' ...' if len(missing) > 6 else ''} ({len(missing)} keys)")
        if extra:
            parts.append(f"has keys the config does not describe: {extra[:6]}{' ...' if len(extra) > 6 else ''} "
                         f"({len(extra)} keys)")
        raise ValueError(f"{where}: '{part}' does not fit the config ({described}): it " + "; it ".join(parts))
    out = {}
    for o, g in names:
        value, want = official[o], target[g]
        if value.dim() == want.dim() + 1 and value.shape[-1] == 1:       # Conv1d (out, in, 1) -> Linear (out, in)
            value = value[..., 0]
        if value.shape != want.shape:
            want_official = tuple(want.shape) + ((1,) if official[o].dim() == want.dim() + 1 else ())
            raise ValueError(f"{where}: {part}['{o}'] has shape {tuple(official[o].shape)} but the config "
                             f"({described}) needs {want_official}")
        out[g] = value
    return out


def _describe(kind: str, kwargs: dict) -> str:
    return f"models.{kind}: " + ", ".join(f"{k}={v}" for k, v in kwargs.items())


# -- the entry point -------------------------------------------------------------------------------------------
def load_official(checkpoint, config, *, device=None, dtype: torch.dtype = torch.float32) -> OfficialModels:
    """Load a checkpoint of the official ShapeGF code and its YAML config into gfcore's models.

    Reads the checkpoint with ``torch.load(..., weights_only=True)`` (torch's legacy format included) and the
    config with ``yaml.safe_load``, maps the official names and layouts onto
    :class:`~gfcore.models.ShapeGF` in the official parameterisation (raw ``sigma`` in the condition
    ``[x, z, sigma]``, output ``sigma^2 * score``; see the module docstring for every name) and, for latent-GAN
    checkpoints, onto :class:`~gfcore.models.LatentGenerator` and :class:`~gfcore.models.LatentCritic`. The
    imported models go through the same calls as native ones (``encode``, ``reconstruct``, ``decode``,
    ``sample``, :mod:`gfcore.surface`, :mod:`gfcore.evaluation`). Points are expected normalised as the official
    data loader normalised them for training (see ``config["data"]``).

    Args:
        checkpoint: path to the ``.pt`` file (or the dict ``torch.load`` returned).
        config: path to the run's YAML config (or the dict it holds).
        device: where to put the models (default: CUDA when present, else CPU).
        dtype: floating dtype of the models.

    Returns:
        :class:`OfficialModels` with ``.autoencoder`` (eval mode), ``.generator`` and ``.critic`` (``None`` for
        auto-encoder checkpoints), ``.config``, ``.epoch`` and ``.step``.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: a file that is not an official checkpoint; a config that does not fit it (naming the key and
            both shapes, or the missing and unexpected keys); an unknown encoder, decoder, generator or critic
            type, or a setting gfcore does not implement (e.g. a stochastic encoder, ``use_bn: true``).

    Taught in chapter 10 (Reproducing the paper).
    """
    from gfcore.models import LatentCritic, LatentGenerator, ShapeGF
    from gfcore.utils import default_device

    blob, where = _read_checkpoint(checkpoint)
    cfg = _read_config(config)
    models = cfg["models"]
    ae_kwargs = _autoencoder_kwargs(models)
    autoencoder = ShapeGF(**ae_kwargs)
    enc_desc = _describe("encoder", {"zdim": ae_kwargs["zdim"], "input_dim": ae_kwargs["dim"]})
    dec_desc = _describe("scorenet", {"type": models["scorenet"]["type"], "dim": ae_kwargs["dim"],
                                      "z_dim": ae_kwargs["zdim"], "hidden_size": ae_kwargs["hidden"],
                                      "n_blocks": ae_kwargs["n_blocks"]})
    autoencoder.encoder.load_state_dict(_convert(blob["enc"], _encoder_names(), autoencoder.encoder, part="enc",
                                                 where=where, described=enc_desc))
    autoencoder.decoder.load_state_dict(_convert(
        blob["sn"], _decoder_names(ae_kwargs["block"], ae_kwargs["n_blocks"]), autoencoder.decoder, part="sn",
        where=where, described=dec_desc))

    generator = critic = None
    has_gan = [k for k in ("gen", "dis") if k in blob]
    described = [k for k in ("gen", "dis") if isinstance(models.get(k), Mapping)]
    if has_gan != described:
        raise ValueError(f"{where} holds the networks {has_gan or 'none'} of a latent GAN but the config describes "
                         f"{['models.' + k for k in described] or 'none'}: pass the config of the run that wrote "
                         "the checkpoint")
    if "gen" in blob:
        gen_kwargs, scale = _generator_kwargs(models["gen"])
        generator = LatentGenerator(**gen_kwargs)
        state = _convert(blob["gen"], _mlp_names(len(gen_kwargs["hidden"])), generator, part="gen", where=where,
                         described=_describe("gen", gen_kwargs), ignore=("bns.", "out_bn."))
        state["layers.0.weight"] = state["layers.0.weight"] * scale     # noise N(0, scale^2) = scale * N(0, 1)
        generator.load_state_dict(state)
        if generator.zdim != autoencoder.zdim:
            raise ValueError(f"config models.gen.out_dim is {generator.zdim} but the auto-encoder's zdim is "
                             f"{autoencoder.zdim}")
    if "dis" in blob:
        dis_kwargs = _critic_kwargs(models["dis"])
        critic = LatentCritic(**dis_kwargs)
        critic.load_state_dict(_convert(blob["dis"], _mlp_names(len(dis_kwargs["hidden"])), critic, part="dis",
                                        where=where, described=_describe("dis", dis_kwargs)))

    device = torch.device(device) if device is not None else default_device()

    def ready(module):
        return None if module is None else module.to(device=device, dtype=dtype).eval()

    def counter(key):
        value = blob.get(key)
        return int(value) if isinstance(value, (int, torch.Tensor)) and not isinstance(value, bool) else None

    return OfficialModels(autoencoder=ready(autoencoder), generator=ready(generator), critic=ready(critic),
                          config=cfg, epoch=counter("epoch"), step=counter("step"))


__all__ = ["CRITIC_TYPES", "DECODER_TYPES", "ENCODER_TYPES", "GENERATOR_TYPES", "OfficialModels", "load_official"]
