"""gfcore.pretrained: the shipped weights load, and their cards' numbers still hold (re-measured on a handful)."""
import pytest
import torch

import gfcore.pretrained
from gfcore.data import build_dataset
from gfcore.evaluation import evaluate_reconstruction, first_items
from gfcore.metrics import pairwise_cd
from gfcore.models import LatentGenerator, ShapeGF, sample_shapes

NAMES = gfcore.pretrained.available()
AUTOENCODERS = [n for n in NAMES if gfcore.pretrained.card(n)["model"] == "gfcore.models.ShapeGF"]
GENERATORS = [n for n in NAMES if gfcore.pretrained.card(n)["model"] == "gfcore.models.LatentGenerator"]


def test_the_book_models_are_shipped():
    assert {"shapes3d", "digits2d", "shapes3d-gen"} <= set(NAMES)
    assert set(AUTOENCODERS) | set(GENERATORS) == set(NAMES)


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_card_describes_the_model(name):
    card = gfcore.pretrained.card(name)
    model = gfcore.pretrained.load(name, device="cpu")
    assert isinstance(model, ShapeGF) and not model.training
    assert model.config == card["model_config"]
    assert sum(p.numel() for p in model.parameters()) == card["parameters"]
    for key in ("dataset", "dataset_kwargs", "training", "evaluation", "metrics", "preset"):
        assert key in card, key
    assert card["training"]["steps"] > 0 and card["training"]["wall_time_s"] > 0
    build_dataset(card["dataset"], "test", **{**card["dataset_kwargs"], "num_points": 16})   # the split rebuilds


def remeasure(name: str, check: dict, **kwargs) -> dict:
    """The card's check shapes (the first test shapes) auto-encoded again under the card's protocol and seed."""
    card = gfcore.pretrained.card(name)
    model = gfcore.pretrained.load(name, device="cpu")
    kw = {**card["dataset_kwargs"], "num_points": card["evaluation"]["num_points"], "sample": "first"}
    inputs = build_dataset(card["dataset"], "test", **kw, pool="train")
    refs = build_dataset(card["dataset"], "test", **kw, pool="test")
    k = check["num_shapes"]
    return evaluate_reconstruction(model, first_items(inputs, k), first_items(refs, k), emd_method=None,
                                   seed=check["seed"], **kwargs)


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_card_numbers_still_hold(name):
    """Re-measure the card's check shapes (first test shapes, same protocol, seed and sampler): each shape's
    Chamfer distance within 25% of the card's (float rounding differs across machines; Langevin is seeded), and
    the card's headline ratio within the issue's bar."""
    card = gfcore.pretrained.card(name)
    check = card["check"]
    got = remeasure(name, check)
    torch.testing.assert_close(got["oracle_cd"], torch.tensor(check["oracle_cd"], dtype=torch.float64),
                               rtol=1e-4, atol=0)
    torch.testing.assert_close(got["cd"], torch.tensor(check["cd"], dtype=torch.float64), rtol=0.25, atol=0)
    assert card["metrics"]["CD_over_oracle"] <= 3.0   # encoder's codes: the 2x goal is met only with refinement


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_refined_card_numbers_still_hold(name):
    """The card's refined-codes numbers (ShapeGF.reconstruct(refine_steps=...)): the check shapes re-measured
    within 25% each, the refined reconstructions better than the encoder-only ones on them, and the headline
    within the book's goal of 2x the oracle with the controls kept."""
    card = gfcore.pretrained.card(name)
    check, base = card["check_refined"], card["check"]
    got = remeasure(name, check, refine_steps=check["refine_steps"])
    torch.testing.assert_close(got["cd"], torch.tensor(check["cd"], dtype=torch.float64), rtol=0.25, atol=0)
    assert got["cd"].mean() < torch.tensor(base["cd"]).mean()
    refined = card["metrics_refined"]
    assert refined["CD_over_oracle"] <= 2.0 and refined["CD_over_oracle"] < card["metrics"]["CD_over_oracle"]
    for key in ("category_accuracy", "own_shape_rate"):
        if key in refined:
            assert refined[key] >= card["metrics"][key] - 0.05, (key, refined, card["metrics"])


# ---------------------------------------------------------------- the latent GAN's generator
@pytest.mark.parametrize("name", GENERATORS)
def test_generator_card_describes_the_model(name):
    card = gfcore.pretrained.card(name)
    gen = gfcore.pretrained.load(name, device="cpu")
    assert isinstance(gen, LatentGenerator) and not gen.training
    assert gen.config == card["model_config"]
    assert sum(p.numel() for p in gen.parameters()) == card["parameters"]
    for key in ("autoencoder", "dataset", "dataset_kwargs", "preset", "config", "training", "evaluation",
                "metrics", "check"):
        assert key in card, key
    for key in ("steps", "wall_time_s", "hardware", "torch", "note"):
        assert key in card["training"], key
    assert card["training"]["steps"] > 0 and card["training"]["wall_time_s"] > 0
    ae_card = gfcore.pretrained.card(card["autoencoder"])                 # the codes are a shipped model's
    assert gen.zdim == ae_card["model_config"]["zdim"]
    assert (card["dataset"], card["dataset_kwargs"]) == (ae_card["dataset"], ae_card["dataset_kwargs"])
    assert card["config"]["autoencoder"] == f"pretrained:{card['autoencoder']}"


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_card_numbers_still_hold(name):
    """Re-measure the generator card's check: the statistics of codes from fixed noise (the weights), then a few
    generated shapes decoded by the shipped auto-encoder, each one's Chamfer distance to its nearest reference
    within 25% of the card's (float rounding differs across machines; the sampler is seeded). And the card's
    headline: the generator beats the baselines measured beside it, by the margin the chapter states."""
    card = gfcore.pretrained.card(name)
    check = card["check"]
    gen = gfcore.pretrained.load(name, device="cpu")
    with torch.no_grad():
        codes = gen.sample(check["num_codes"], generator=torch.Generator().manual_seed(check["seed"]))
    torch.testing.assert_close(codes.mean(0), torch.tensor(check["code_mean"]), rtol=0, atol=1e-4)
    torch.testing.assert_close(codes.std(0), torch.tensor(check["code_std"]), rtol=0, atol=1e-4)

    autoencoder = gfcore.pretrained.load(card["autoencoder"], device="cpu")
    ev = card["evaluation"]
    refs = build_dataset(card["dataset"], "test", **{**card["dataset_kwargs"], "num_points": ev["num_points"],
                                                     "num_shapes": ev["num_shapes"] // len(
                                                         card["dataset_kwargs"]["categories"])})
    assert len(refs) == ev["num_shapes"]
    reference = torch.stack([refs[i]["points"] for i in range(len(refs))])
    shapes = sample_shapes(autoencoder, gen, check["num_shapes"], check["num_points"],
                           generator=torch.Generator().manual_seed(check["seed"]))
    nearest = pairwise_cd(shapes, reference).min(dim=1).values
    torch.testing.assert_close(nearest, torch.tensor(check["nearest_reference_cd"]), rtol=0.25, atol=0)

    m = card["metrics"]
    ours, gauss = m[name], m["Gaussian fitted to the training codes"]
    controls = [m["noise clouds (uniform in [-1, 1]^3)"], m["mean shape (the mean training code, decoded)"]]
    assert ours["1-NNA-CD"] < 0.70 and ours["1-NNA-CD"] < gauss["1-NNA-CD"]       # chapter 7's bound
    assert all(ours["MMD-CD"] < 0.5 * c["MMD-CD"] and c["1-NNA-CD"] > 0.95 for c in controls)
    assert card["nearest_training_code_median"][name] > card["nearest_training_code_median"][
        "held-out shapes (val split)"]                                        # not a copy machine


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="available"):
        gfcore.pretrained.load("shapenet-everything")
    with pytest.raises(TypeError):
        gfcore.pretrained.card(3)


def test_a_file_of_the_wrong_kind_is_refused(tmp_path, monkeypatch):
    torch.save({"kind": "something-else", "format_version": 1}, tmp_path / "bad.pt")
    (tmp_path / "bad.json").write_text("{}")
    monkeypatch.setattr(gfcore.pretrained, "FOLDER", tmp_path)
    assert gfcore.pretrained.available() == ["bad"]
    with pytest.raises(ValueError, match="not a gfcore pretrained model"):
        gfcore.pretrained.load("bad")
    torch.save({"kind": "gfcore-pretrained", "format_version": 1, "model": "Transformer", "config": {},
                "state_dict": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="'Transformer'.*LatentGenerator"):
        gfcore.pretrained.load("bad")
    torch.save({"kind": "gfcore-pretrained", "format_version": 2}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="format version 2"):
        gfcore.pretrained.load("bad")


def test_a_generator_that_does_not_fit_its_config_is_refused(tmp_path, monkeypatch):
    gen = LatentGenerator(zdim=8, noise_dim=4, hidden=(16,))
    torch.save({"kind": "gfcore-pretrained", "format_version": 1, "model": "LatentGenerator",
                "config": {**gen.config, "zdim": 9}, "state_dict": gen.state_dict()}, tmp_path / "g.pt")
    (tmp_path / "g.json").write_text("{}")
    monkeypatch.setattr(gfcore.pretrained, "FOLDER", tmp_path)
    with pytest.raises(ValueError, match="do not fit"):
        gfcore.pretrained.load("g")
    torch.save({"kind": "gfcore-pretrained", "format_version": 1, "model": "LatentGenerator",
                "config": gen.config, "state_dict": gen.state_dict()}, tmp_path / "g.pt")
    loaded = gfcore.pretrained.load("g", device="cpu")
    assert isinstance(loaded, LatentGenerator) and not loaded.training
