"""gfcore.pretrained.load_official: checkpoints written by the official ShapeGF classes (tests/data/official, see
its README) load into gfcore's models, reproduce the official outputs to float32 rounding, and go through the
same calls as a native model; files and configs that do not fit are refused with clear errors."""
import copy
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gfcore import surface
from gfcore.evaluation import evaluate_generation, evaluate_reconstruction
from gfcore.models import LatentCritic, LatentGenerator, ShapeGF, sample_shapes
from gfcore.models.decoder import reference_forward
from gfcore.models.fold import fast_score_fn
from gfcore.pretrained import OfficialModels, load_official

DATA = Path(__file__).resolve().parent / "data" / "official"
# Measured on these fixtures (CPU, float32): codes within 6e-8, fields within 2.1e-7 (values up to 0.44),
# generator codes and critic scores exact. The tolerance leaves a few times that for other CPUs' kernels.
TOL = dict(rtol=1e-5, atol=1e-6)


def ckpt(name):
    return DATA / f"{name}.pt", DATA / f"{name}.yaml"


def config(name) -> dict:
    return yaml.safe_load((DATA / f"{name}.yaml").read_text())


@pytest.fixture(scope="module")
def expected():
    return {k: torch.from_numpy(v) for k, v in np.load(DATA / "expected.npz").items()}


@pytest.fixture(scope="module")
def loaded():
    return {name: load_official(*ckpt(name), device="cpu") for name in ("recon_add", "recon_cbn", "gen_chair")}


def test_fixtures_are_legacy_format_official_checkpoints():
    for name in ("recon_add", "recon_cbn", "gen_chair"):
        path = DATA / f"{name}.pt"
        assert not zipfile.is_zipfile(path)                  # torch's pre-1.6 format, as the released files
        blob = torch.load(path, weights_only=True)
        assert {"enc", "sn", "epoch"} <= set(blob)


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_reproduces_the_official_codes_and_fields(block, loaded, expected):
    official = loaded[f"recon_{block}"]
    model = official.autoencoder
    assert isinstance(official, OfficialModels) and isinstance(model, ShapeGF)
    assert official.generator is None and official.critic is None
    assert not model.training and model.decoder.block == block
    assert model.config == {"dim": 3, "zdim": 128, "hidden": 64, "n_blocks": 4, "block": block,
                            "preconditioning": "none", "norm": "batch"}
    assert official.config["models"]["scorenet"]["type"] == f"models.decoders.resnet_{block}"
    assert (official.epoch, official.step) == (1999, 123456)
    with torch.no_grad():
        z = model.encode(expected["inputs"])
        torch.testing.assert_close(z, expected[f"{block}_z"], **TOL)
        x = expected["points"]
        for s in expected["sigmas"].tolist():
            want = expected[f"{block}_field_sigma{s:g}"]
            sigma = torch.full((3,), s)
            ez = expected[f"{block}_z"]
            torch.testing.assert_close(model.decoder(x, sigma, ez), want, **TOL)           # the fast forward
            torch.testing.assert_close(reference_forward(model.decoder, x, sigma, ez), want, **TOL)
            torch.testing.assert_close(model.score(x, sigma, ez) * s**2, want, rtol=1e-5, atol=1e-6 * max(1, s**2))
            # folded batch norm and per-level terms (the sampler's fast path), in score units
            fast = fast_score_fn(model, ez, dtype=torch.float32)
            torch.testing.assert_close(fast(x, sigma) * s**2, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_the_batch_norm_statistics_matter(loaded, expected):
    """The comparison above would catch a loader that dropped the running statistics."""
    model = copy.deepcopy(loaded["recon_add"].autoencoder)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.reset_running_stats()
    with torch.no_grad():
        z = model.encode(expected["inputs"])
        field = model.decoder(expected["points"], torch.full((3,), 0.1), expected["add_z"])
    assert (z - expected["add_z"]).abs().max() > 1e-2
    assert (field - expected["add_field_sigma0.1"]).abs().max() > 1e-2


def test_reproduces_the_official_generator_and_critic(loaded, expected):
    official = loaded["gen_chair"]
    assert isinstance(official.generator, LatentGenerator) and isinstance(official.critic, LatentCritic)
    assert not official.generator.training and not official.critic.training
    assert official.generator.hidden == (256, 256) and official.critic.hidden == (512, 512)
    with torch.no_grad():
        codes = official.generator(expected["gan_noise"])
        torch.testing.assert_close(codes, expected["gan_codes"], **TOL)
        torch.testing.assert_close(official.critic(expected["gan_codes"]), expected["gan_critic"][:, 0], **TOL)
        # the GAN checkpoint holds the add auto-encoder it was trained on
        torch.testing.assert_close(official.autoencoder.encode(expected["inputs"]), expected["add_z"], **TOL)


def test_the_generator_prior_scale_is_folded_into_its_first_layer(expected):
    cfg = config("gen_chair")
    cfg["models"]["gen"]["gaussian_scale"] = 2.0
    official = load_official(DATA / "gen_chair.pt", cfg, device="cpu")
    with torch.no_grad():   # official: G(2 n), n ~ N(0, I); here G'(n) with the scale in G' -> G'(n / 2) = G(n)
        torch.testing.assert_close(official.generator(expected["gan_noise"] / 2), expected["gan_codes"], **TOL)


def test_dtype_device_and_a_preloaded_dict(expected):
    blob = torch.load(DATA / "recon_cbn.pt", weights_only=True)
    official = load_official(blob, config("recon_cbn"), device="cpu", dtype=torch.float64)
    model = official.autoencoder
    assert next(model.parameters()).dtype == torch.float64
    with torch.no_grad():
        z = model.encode(expected["inputs"].double())
        torch.testing.assert_close(z.float(), expected["cbn_z"], **TOL)
    # saved from a DistributedDataParallel wrapper: every key prefixed "module."
    wrapped = {**blob, "sn": {f"module.{k}": v for k, v in blob["sn"].items()}}
    twin = load_official(wrapped, config("recon_cbn"), device="cpu").autoencoder
    for (k, v), (k2, v2) in zip(model.decoder.state_dict().items(), twin.decoder.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v.float(), v2)
    meta = load_official(*ckpt("recon_add"), device="meta")
    assert next(meta.autoencoder.parameters()).device.type == "meta"


# ---------------------------------------------------------------- the same calls as a native model

def _native_twin(model: ShapeGF) -> ShapeGF:
    twin = ShapeGF.from_config(model.config)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


SIGMAS = torch.tensor([1.0, 0.1, 0.01])


@pytest.mark.parametrize("block", ["add", "cbn"])
def test_folded_fast_decode_equals_the_reference_decode(block, loaded, expected):
    model = loaded[f"recon_{block}"].autoencoder
    z = expected[f"{block}_z"]
    kw = dict(sigmas=SIGMAS, steps_per_sigma=2)
    a = model.decode(z, 96, fast=True, dtype=torch.float32, generator=torch.Generator().manual_seed(3), **kw)
    b = model.decode(z, 96, fast=False, generator=torch.Generator().manual_seed(3), **kw)
    assert a.shape == (3, 96, 3) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
    c = model.decode(z, 96, fast=False, generator=torch.Generator().manual_seed(4), **kw)
    assert (c - b).abs().max() > 1e-2                        # the seed matters: the comparison above can fail


def test_samples_reconstructs_and_evaluates_like_a_native_model(loaded, expected):
    official = loaded["gen_chair"]
    model, gen = official.autoencoder, official.generator
    twin = _native_twin(model)
    kw = dict(sigmas=SIGMAS, steps_per_sigma=1)
    shapes = model.sample(gen, 2, 64, generator=torch.Generator().manual_seed(0), **kw)
    assert shapes.shape == (2, 64, 3) and torch.isfinite(shapes).all()
    torch.testing.assert_close(shapes, sample_shapes(twin, gen, 2, 64, generator=torch.Generator().manual_seed(0),
                                                     **kw))
    points = expected["inputs"]
    recon = model.reconstruct(points, 64, generator=torch.Generator().manual_seed(1), **kw)
    torch.testing.assert_close(recon, twin.reconstruct(points, 64, generator=torch.Generator().manual_seed(1), **kw))
    inputs = {"points": points[:, :256], "idx": torch.arange(3)}
    references = {"points": points[:, 256:], "idx": torch.arange(3)}
    rkw = dict(emd_method="approxmatch", steps_per_sigma=1, sigmas=SIGMAS[:2], batch_size=3)
    res = evaluate_reconstruction(model, inputs, references, **rkw)
    assert res["num_shapes"] == 3 and np.isfinite(res["CD"]) and np.isfinite(res["EMD"])
    assert res["CD"] == pytest.approx(evaluate_reconstruction(twin, inputs, references, **rkw)["CD"], rel=1e-6)
    gres = evaluate_generation(model, gen, references, emd_method=None, steps_per_sigma=1)
    assert gres["num_shapes"] == 3 and 0.0 <= gres["COV-CD"] <= 1.0 and 0.0 <= gres["1-NNA-CD"] <= 1.0


def test_meshes_like_a_native_model(loaded, expected):
    model = loaded["recon_add"].autoencoder
    twin = _native_twin(model)
    points = expected["inputs"][0]
    with torch.no_grad():
        z = model.encode(points[None])
        grid = surface.unsigned_distance_grid(model.score_fn(z), sigma=0.1, resolution=16, device="cpu")
    # a field of random weights has no surface where a shape is: mesh a level set it does cross
    level = float(grid.flatten().quantile(0.3))
    kw = dict(points=points, sigma=0.1, num_support=0, resolution=16, level=level, keep="all", project_steps=0,
              narrow_band=False)
    verts, faces = surface.mesh_from_model(model, **kw)
    assert verts.shape[0] > 0 and faces.shape[1] == 3
    verts2, faces2 = surface.mesh_from_model(twin, **kw)
    torch.testing.assert_close(verts, verts2)
    assert torch.equal(faces, faces2)


# ---------------------------------------------------------------- errors

def test_refuses_files_that_are_not_official_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="not an official ShapeGF checkpoint: .*recon_add.yaml") as info:
        load_official(DATA / "recon_add.yaml", DATA / "recon_add.yaml")
    assert "weights_only" not in str(info.value)              # torch's advice to load unsafely is not passed on
    torch.save({"model": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"lacks the state dict\(s\) \['enc', 'sn'\]"):
        load_official(tmp_path / "other.pt", DATA / "recon_add.yaml")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="it holds a list"):
        load_official(tmp_path / "list.pt", DATA / "recon_add.yaml")
    torch.save({"kind": "gfcore-pretrained"}, tmp_path / "ours.pt")
    with pytest.raises(ValueError, match="gfcore.pretrained.load_file"):
        load_official(tmp_path / "ours.pt", DATA / "recon_add.yaml")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_official(tmp_path / "missing.pt", DATA / "recon_add.yaml")


def test_refuses_a_config_that_does_not_fit():
    cfg = config("recon_add")
    cfg["models"]["scorenet"]["hidden_size"] = 32
    with pytest.raises(ValueError, match=r"sn\['conv_p.weight'\] has shape \(64, 132, 1\) but the config .*"
                                         r"hidden_size=32.* needs \(32, 132, 1\)"):
        load_official(DATA / "recon_add.pt", cfg)
    cfg = config("recon_add")
    cfg["models"]["scorenet"]["n_blocks"] = 3
    with pytest.raises(ValueError, match=r"has keys the config does not describe: \['blocks.3"):
        load_official(DATA / "recon_add.pt", cfg)
    cfg = config("recon_add")
    cfg["models"]["encoder"]["zdim"] = cfg["models"]["scorenet"]["z_dim"] = 64
    with pytest.raises(ValueError, match=r"enc\['fc3.weight'\] has shape \(128, 128\) but the config .* needs "
                                         r"\(64, 128\)"):
        load_official(DATA / "recon_add.pt", cfg)
    with pytest.raises(ValueError, match="lacks"):                     # an add checkpoint read as cbn
        load_official(DATA / "recon_add.pt", DATA / "recon_cbn.yaml")
    with pytest.raises(ValueError, match=r"holds the networks \['gen', 'dis'\] .* describes none"):
        load_official(DATA / "gen_chair.pt", DATA / "recon_add.yaml")
    with pytest.raises(ValueError, match=r"holds the networks none .* describes \['models.gen', 'models.dis'\]"):
        load_official(DATA / "recon_add.pt", DATA / "gen_chair.yaml")


def test_refuses_unknown_types_and_settings():
    cfg = config("recon_add")
    cfg["models"]["scorenet"]["type"] = "models.decoders.resnet_siren"
    with pytest.raises(ValueError, match="unknown decoder type 'models.decoders.resnet_siren'"):
        load_official(DATA / "recon_add.pt", cfg)
    cfg = config("recon_add")
    cfg["models"]["encoder"]["use_deterministic_encoder"] = False
    with pytest.raises(ValueError, match="use_deterministic_encoder is False"):
        load_official(DATA / "recon_add.pt", cfg)
    cfg = config("recon_add")
    cfg["models"]["scorenet"]["z_dim"] = 64
    with pytest.raises(ValueError, match="z_dim is 64 but models.encoder.zdim is 128"):
        load_official(DATA / "recon_add.pt", cfg)
    cfg = config("gen_chair")
    cfg["models"]["gen"]["use_bn"] = True
    with pytest.raises(ValueError, match="models.gen.use_bn is True"):
        load_official(DATA / "gen_chair.pt", cfg)
    with pytest.raises(ValueError, match="no 'models' section"):
        load_official(DATA / "recon_add.pt", {"data": {}})
