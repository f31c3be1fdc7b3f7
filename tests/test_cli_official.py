"""gfcore.cli with ``--official CKPT --official-config YAML``: the checkpoints written by the official ShapeGF classes
(tests/data/official) sample, evaluate and mesh through the same commands as native ones; a config that does not
fit the checkpoint is one line on stderr."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gfcore import cli
from gfcore.data.shapenet import CLOUD_SIZE, SYNSETS
from gfcore.models import sample_shapes
from gfcore.pretrained import load_official

DATA = Path(__file__).resolve().parent / "data" / "official"


def official(name: str) -> list[str]:
    return ["--official", str(DATA / f"{name}.pt"), "--official-config", str(DATA / f"{name}.yaml")]


@pytest.fixture(scope="module")
def pc15k(tmp_path_factory):
    """A ShapeNet PC15k-format tree: airplane and chair, 3 shapes per split, (15000, 3) clouds of boxes."""
    root = tmp_path_factory.mktemp("pc15k")
    rng = np.random.default_rng(0)
    for category in ("airplane", "chair"):
        for split in ("train", "val", "test"):
            folder = root / SYNSETS[category] / split
            folder.mkdir(parents=True)
            for i in range(3):
                cloud = rng.uniform(-1, 1, size=(CLOUD_SIZE, 3)) * rng.uniform(0.2, 1.0, size=(1, 3)) + 0.3
                np.save(folder / f"shape{i}.npy", cloud.astype(np.float32))
    return root


def test_sample_from_the_official_latent_gan(tmp_path, capsys):
    out = tmp_path / "gen.npy"
    args = ["sample", *official("gen_chair"), "--num-shapes", "3", "--num-points", "32", "--steps-per-sigma", "1",
            "--batch-size", "2", "--seed", "5", "--device", "cpu", "--out", str(out)]
    assert cli.main(args) == 0
    arr = np.load(out)
    assert arr.shape == (3, 32, 3) and np.isfinite(arr).all()
    assert "official latent GAN" in capsys.readouterr().out
    # the same shapes as the library's own call on the loaded models (same seed, same batches)
    models = load_official(DATA / "gen_chair.pt", DATA / "gen_chair.yaml", device="cpu")
    gen = torch.Generator().manual_seed(5)
    expected = [sample_shapes(models.autoencoder, models.generator, n, 32, generator=gen, steps_per_sigma=1)
                for n in (2, 1)]
    np.testing.assert_allclose(arr, torch.cat(expected).numpy(), rtol=1e-5, atol=1e-6)


def test_sample_auto_encodes_with_an_official_auto_encoder(pc15k, tmp_path):
    out = tmp_path / "rec.npy"
    assert cli.main(["sample", *official("recon_add"), "--set", f"dataset_kwargs.root={pc15k}", "--num-shapes", "2",
                     "--num-points", "40", "--steps-per-sigma", "1", "--device", "cpu", "--out", str(out),
                     "--save-input", str(tmp_path / "in.npy")]) == 0
    assert np.load(out).shape == (2, 40, 3) and np.load(tmp_path / "in.npy").shape == (2, 2048, 3)
    inputs = np.load(tmp_path / "in.npy")     # normalised per shape by its box (of all 15000 points; 2048 shown)
    span, centre = (inputs.max(1) - inputs.min(1)).max(-1), (inputs.max(1) + inputs.min(1)) / 2
    assert np.all((span > 1.95) & (span <= 2 + 1e-5)) and np.abs(centre).max() < 0.03     # raw clouds sit at +0.3


def test_eval_reconstruction_and_generation(pc15k, tmp_path, capsys):
    common = ["--data", str(pc15k), "--num-points", "64", "--num-shapes", "2", "--emd", "none", "--device", "cpu",
              "--no-progress"]
    out = tmp_path / "rec.json"
    assert cli.main(["eval", *official("recon_cbn"), *common, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["protocol"] == "shapegf_autoencoding" and record["split"] == "val" and record["num_shapes"] == 2
    assert record["checkpoint"].startswith("official:") and record["dataset_kwargs"]["categories"] == ["airplane"]
    assert record["CD"] > 0 and record["oracle-CD"] > 0 and record["step"] == torch.load(
        DATA / "recon_cbn.pt", weights_only=True)["step"]
    out = tmp_path / "gen.json"
    assert cli.main(["eval", *official("gen_chair"), *common, "--split", "val", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["protocol"] == "shape_bbox" and record["num_shapes"] == 2 and 0 <= record["COV-CD"] <= 1
    assert record["dataset_kwargs"]["categories"] == ["chair"]
    assert "1-NNA-CD" in capsys.readouterr().out


def test_mesh_from_the_official_auto_encoder(pc15k, tmp_path, capsys):
    cloud = tmp_path / "cloud.npy"
    rng = np.random.default_rng(1)
    np.save(cloud, (rng.uniform(-1, 1, size=(500, 3)) * [1.0, 0.3, 0.5]).astype(np.float32))
    out = tmp_path / "shape.ply"
    assert cli.main(["mesh", *official("recon_add"), "--input", str(cloud), "--resolution", "12", "--sigma", "0.1",
                     "--num-support", "0", "--keep", "all", "--device", "cpu", "--out", str(out)]) == 0
    assert out.read_text().startswith("ply") and "gfcore mesh: wrote" in capsys.readouterr().out


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_official_config_that_does_not_fit(tmp_path, capsys):
    out = ["--out", str(tmp_path / "s.npy"), "--device", "cpu"]
    mixed = ["--official", str(DATA / "recon_add.pt"), "--official-config", str(DATA / "recon_cbn.yaml")]
    assert cli.main(["sample", *mixed, *out]) == 2
    line = one_line(capsys)
    assert line.startswith("gfcore sample: error: ") and "recon_add.pt" in line and "recon_cbn.yaml" in line
    assert "the YAML config of the run that wrote it" in line
    gan_with_ae_config = ["--official", str(DATA / "gen_chair.pt"), "--official-config", str(DATA / "recon_add.yaml")]
    assert cli.main(["eval", *gan_with_ae_config, "--device", "cpu"]) == 2
    assert "holds the networks ['gen', 'dis']" in one_line(capsys)
    assert cli.main(["mesh", "--official", str(DATA / "recon_add.yaml"), "--official-config",
                     str(DATA / "recon_add.yaml"), "--out", str(tmp_path / "m.ply"), "--device", "cpu"]) == 2
    line = one_line(capsys)
    assert "not an official ShapeGF checkpoint" in line and "weights_only" not in line
    assert cli.main(["sample", "--official", str(DATA / "recon_add.pt"), *out]) == 2
    assert "go together" in one_line(capsys)
    assert cli.main(["mesh", "--official", str(tmp_path / "none.pt"), "--official-config",
                     str(DATA / "recon_add.yaml"), "--out", str(tmp_path / "m.ply")]) == 2
    assert "--official: no file at" in one_line(capsys)
