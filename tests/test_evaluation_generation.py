"""gfcore.evaluation.generation: one generated shape per held-out reference, scored with MMD, COV and 1-NNA on
box-normalised clouds; `python -m gfcore eval` on a latent-GAN checkpoint (main_eval_generation)."""
import json
from pathlib import Path

import pytest
import torch

from gfcore.data import Shapes3D
from gfcore.data.normalize import shape_bbox
from gfcore.evaluation import evaluate_generation, main_eval_generation
from gfcore.metrics import coverage, mmd, one_nna, pairwise_cd
from gfcore.train import AutoEncoderConfig, train_autoencoder, train_latent_gan

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A (barely) trained auto-encoder of configs/tiny.yaml and a latent GAN on its codes (no data set passed:
    the GAN takes the auto-encoder's training data)."""
    root = tmp_path_factory.mktemp("gen")
    cfg = AutoEncoderConfig.from_yaml(ROOT / "configs" / "tiny.yaml")
    cfg.max_steps, cfg.val_every = 2, None
    train_autoencoder(cfg, out_dir=root / "ae", progress=False)
    gan = train_latent_gan(autoencoder=root / "ae", out_dir=root / "gan", noise_dim=4, generator_hidden=[8],
                           critic_hidden=[8], batch_size=8, max_steps=2, device="cpu", val_every=None,
                           progress=False)
    return root, gan


def references(num_points=32):
    return Shapes3D(split="val", categories=["chair"], num_points=num_points, shapes_per_category=20, pool="test",
                    sample="first")


def test_the_table_is_computed_on_the_generated_clouds_in_their_boxes(runs):
    _, gan = runs
    refs = references()
    out = evaluate_generation(gan.autoencoder, gan.generator, refs, emd_method="exact", steps_per_sigma=1,
                              device="cpu")
    gen = out["generated"]
    assert gen.shape == (len(refs), 32, 3) and out["num_shapes"] == len(refs) == 2
    assert out["protocol"] == "shape_bbox" and "JSD" not in out
    ref = torch.stack([torch.as_tensor(refs[i]["points"]) for i in range(len(refs))])
    box_ref, box_gen = shape_bbox(ref)[0], shape_bbox(gen)[0]
    sr, ss, rr = pairwise_cd(box_gen, box_ref), pairwise_cd(box_gen), pairwise_cd(box_ref)   # sr: (S, R)
    assert out["MMD-CD"] == pytest.approx(mmd(sr), rel=1e-5)
    assert out["COV-CD"] == pytest.approx(coverage(sr)) and out["1-NNA-CD"] == pytest.approx(one_nna(ss, sr, rr))
    # the box protocol: scaling the generated clouds changes the raw Chamfer but not the table
    assert mmd(pairwise_cd(ref, gen * 3)) != pytest.approx(mmd(pairwise_cd(ref, gen)))
    for key in ("MMD-EMD", "COV-EMD", "1-NNA-EMD"):
        assert key in out
    again = evaluate_generation(gan.autoencoder, gan.generator, refs, emd_method=None, steps_per_sigma=1,
                                device="cpu")
    torch.testing.assert_close(again["generated"], gen)            # same seed, same shapes
    assert again["MMD-CD"] == pytest.approx(out["MMD-CD"]) and "MMD-EMD" not in again
    other = evaluate_generation(gan.autoencoder, gan.generator, refs, emd_method=None, steps_per_sigma=1,
                                device="cpu", seed=1)
    assert not torch.allclose(other["generated"], gen)


def test_main_eval_generation_on_a_checkpoint(runs):
    root, _ = runs
    out = main_eval_generation(root / "gan", split="val", num_points=32, emd_method=None, device="cpu",
                               disable=True)
    rec = out["record"]
    json.dumps(rec)
    assert out["json_path"] == root / "gan" / "checkpoints" / "eval_gen_val.json" and not out["json_path"].exists()
    assert rec["dataset"] == "shapes3d" and rec["split"] == "val" and rec["num_shapes"] == 2
    assert rec["protocol"] == "shape_bbox" and "generated" not in rec
    assert 0.0 <= rec["COV-CD"] <= 1.0 and 0.0 <= rec["1-NNA-CD"] <= 1.0 and rec["MMD-CD"] > 0
    assert "generation metrics (shape_bbox)" in out["table"] and "2 generated vs 2 shapes3d val" in out["table"]


def test_bad_input_raises(runs):
    root, gan = runs
    with pytest.raises(ValueError, match="'shapegf-autoencoder' checkpoint"):
        main_eval_generation(root / "ae", emd_method=None, device="cpu")
    with pytest.raises(ValueError, match="emd_method"):
        evaluate_generation(gan.autoencoder, gan.generator, references(), emd_method="fast", device="cpu")
    with pytest.raises(ValueError, match="steps_per_sigma"):
        evaluate_generation(gan.autoencoder, gan.generator, references(), steps_per_sigma=0, device="cpu")
    with pytest.raises(ValueError, match="sample='first'|draws its points at random"):
        evaluate_generation(gan.autoencoder, gan.generator,
                            Shapes3D(split="val", categories=["chair"], num_points=32, shapes_per_category=20,
                                     sample="random"), device="cpu")
