"""gfcore.checkpoint_io: safe reading (unsafe pickles refused before their code runs, truncated and foreign files
named), the kind checks, and the rebuilt networks equal to the saved ones."""
import pickle

import pytest
import torch

from gfcore import checkpoint_io
from gfcore.checkpoint_io import CheckpointError, CheckpointNotFoundError, read_checkpoint
from gfcore.models import LatentCritic, LatentGenerator, ShapeGF


class RunsCode:
    """Unpickling this would create ``marker`` (``open(marker, "w")``): a stand-in for code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Custom:
    """An ordinary class: a pickle of it names a global that ``weights_only`` does not allow."""

    def __init__(self):
        self.weights = torch.ones(2)


def assert_safe_message(err: Exception, path) -> str:
    text = str(err)
    assert str(path) in text and "\n" not in text
    assert "weights_only=False" not in text and "weights_only" not in text.replace("weights only", "")
    return text


def test_reads_tensors_and_containers(tmp_path):
    blob = {"a": torch.arange(3.0), "b": [1, "x", None], "c": {"d": (2.5, True)}}
    torch.save(blob, tmp_path / "ok.pt")
    torch.save(blob, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("ok.pt", "legacy.pt"):
        out = read_checkpoint(tmp_path / name)
        assert torch.equal(out["a"], blob["a"]) and out["b"] == blob["b"] and out["c"] == {"d": (2.5, True)}


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_pickle_that_would_run_code_is_refused_before_it_runs(tmp_path, how):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"model": {"w": torch.ones(1)}, "extra": RunsCode(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"extra": RunsCode(marker)}, protocol=2))
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert not marker.exists()                                   # the pickle's code did not run
    text = assert_safe_message(info.value, path)
    if how == "torch.save":                                       # the object it names is reported
        assert "holds Python objects" in text and "open" in text
    pickle.loads(pickle.dumps({"x": RunsCode(marker)}, protocol=2))["x"].close()   # plain pickle runs it:
    assert marker.exists()                                                          # the test would see it


def test_a_custom_class_is_refused(tmp_path):
    torch.save({"obj": Custom()}, tmp_path / "custom.pt")
    with pytest.raises(CheckpointError, match=r"holds Python objects.*Custom") as info:
        read_checkpoint(tmp_path / "custom.pt")
    assert_safe_message(info.value, tmp_path / "custom.pt")


@pytest.mark.parametrize("zipped", [True, False])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.95])
def test_truncated_files_are_named(tmp_path, zipped, fraction):
    full = tmp_path / "full.pt"
    torch.save({"w": torch.randn(4000)}, full, _use_new_zipfile_serialization=zipped)
    data = full.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match="truncated or damaged|not a PyTorch checkpoint") as info:
        read_checkpoint(cut)
    assert_safe_message(info.value, cut)


def test_missing_empty_foreign_and_folder(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint at") as info:
        read_checkpoint(tmp_path / "nothing.pt")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        read_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as info:
        read_checkpoint(tmp_path / "junk.pt")
    assert_safe_message(info.value, tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="is a folder"):
        read_checkpoint(tmp_path)


def test_kind_checks(tmp_path):
    torch.save({"kind": checkpoint_io.LATENT_GAN_KIND, "format_version": 1}, tmp_path / "gan.pt")
    with pytest.raises(CheckpointError, match="'shapegf-latent-gan' checkpoint .*load_latent_gan"):
        checkpoint_io.load_checkpoint(tmp_path / "gan.pt")
    assert checkpoint_io.checkpoint_kind(tmp_path / "gan.pt") == "shapegf-latent-gan"
    torch.save({"kind": checkpoint_io.AUTOENCODER_KIND, "format_version": 1}, tmp_path / "ae.pt")
    with pytest.raises(CheckpointError, match="'shapegf-autoencoder' checkpoint .*load_model"):
        checkpoint_io.load_gan_checkpoint(tmp_path / "ae.pt")
    with pytest.raises(CheckpointError, match=r"missing keys \['gfcore_version'"):
        checkpoint_io.load_checkpoint(tmp_path / "ae.pt")
    torch.save({"kind": checkpoint_io.AUTOENCODER_KIND, "format_version": 7}, tmp_path / "v7.pt")
    with pytest.raises(CheckpointError, match="format version 7"):
        checkpoint_io.load_checkpoint(tmp_path / "v7.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list"):
        checkpoint_io.load_gan_checkpoint(tmp_path / "list.pt")
    assert checkpoint_io.checkpoint_kind(tmp_path / "list.pt") is None


def _fake_gan_checkpoint(path, autoencoder):
    torch.manual_seed(0)
    gen = LatentGenerator(noise_dim=4, zdim=8, hidden=(16,))
    critic = LatentCritic(zdim=8, hidden=(16,))
    ckpt = {"format_version": 1, "kind": checkpoint_io.LATENT_GAN_KIND, "gfcore_version": "x", "step": 3,
            "total_steps": 3, "config": {"noise_dim": 4, "dataset": "shapes3d"},
            "generator_config": dict(gen.config), "critic_config": dict(critic.config),
            "generator": gen.state_dict(), "critic": critic.state_dict(), "opt_generator": {}, "opt_critic": {},
            "latents": torch.randn(5, 8), "history": [{"step": 3}],
            "autoencoder": {"source": "code", "model_config": dict(autoencoder.config),
                            "state_dict": autoencoder.state_dict()}}
    torch.save(ckpt, path)
    return gen, critic, ckpt


def test_gan_networks_are_the_saved_ones(tmp_path):
    ae = ShapeGF(dim=3, zdim=8, hidden=16, n_blocks=1)
    gen, critic, ckpt = _fake_gan_checkpoint(tmp_path / "gan.pt", ae)
    nets = checkpoint_io.load_gan_networks(tmp_path / "gan.pt", device="cpu")
    noise = torch.randn(2, 4)
    assert torch.equal(nets.generator(noise), gen.eval()(noise))
    assert not nets.generator.training and not nets.critic.training and not nets.autoencoder.training
    assert all(torch.equal(a, b) for a, b in zip(nets.autoencoder.state_dict().values(), ae.state_dict().values()))
    assert nets.config == ckpt["config"] and nets.step == 3 and torch.equal(nets.latents, ckpt["latents"])
    bad = {**ckpt, "generator_config": {**ckpt["generator_config"], "hidden": [32]}}
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="generator weights do not fit") as info:
        checkpoint_io.load_gan_networks(tmp_path / "bad.pt", device="cpu")
    assert "\n" not in str(info.value)
