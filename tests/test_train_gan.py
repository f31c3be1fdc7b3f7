"""gfcore.train.gan: the latent GAN's losses and its two update steps against hand-computed values, the trainer as
those steps in a loop, no host sync between log records (a NaN still caught), learning a toy distribution, exact
resume (Adam's step counters on the CPU), checkpoints of the right kind, the config."""
import copy
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import Circles, flat_state, tiny

import gfcore.pretrained
from gfcore.models import LatentCritic, LatentGenerator
from gfcore.train import (
    LatentGANConfig,
    RunDir,
    gan,
    load_checkpoint,
    load_latent_gan,
    load_model,
    train_autoencoder,
    train_latent_gan,
)
from gfcore.train.batches import StepBatches, mix_seed
from gfcore.train.gan import (
    CHECKPOINT_KIND,
    critic_step,
    generator_step,
    gradient_penalty,
    latent_mmd,
    load_gan_checkpoint,
    median_distance,
    mmd_yardstick,
    resolve_autoencoder,
)
from gfcore.utils import seed_everything

ROOT = Path(__file__).resolve().parents[1]
TOY = dict(noise_dim=8, generator_hidden=[64, 64], critic_hidden=[64, 64], batch_size=128, lr=1e-3,
           device="cpu", seed=0, log_every=50, progress=False)


def _mixture(n, seed):
    """A mixture of 4 Gaussians (std 0.25) in 8-D, centres at distance 2 from the origin."""
    centres = torch.randn(4, 8, generator=torch.Generator().manual_seed(123))
    centres = 2.0 * centres / centres.norm(dim=1, keepdim=True)
    g = torch.Generator().manual_seed(seed)
    return centres[torch.randint(4, (n,), generator=g)] + 0.25 * torch.randn(n, 8, generator=g)


# ---------------------------------------------------------------- the gradient penalty, by hand

class _Linear(torch.nn.Module):
    """D(x) = w . x + b."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w))
        self.b = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return x @ self.w + self.b


class _Quadratic(torch.nn.Module):
    """D(x) = 0.5 sum_i a_i x_i^2, so grad D(x) = a * x differs from sample to sample."""

    def __init__(self, a):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return 0.5 * (self.a * x.square()).sum(dim=1)


def test_penalties_on_a_linear_critic_by_hand():
    critic = _Linear([3.0, -4.0])                                # |grad D| = 5 everywhere
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    for kind, want in (("official", 25.0), ("r1", 25.0), ("wgan-gp", 16.0)):   # 5^2, 5^2, (5 - 1)^2
        penalty, norm = gradient_penalty(critic, real, fake, kind=kind)
        torch.testing.assert_close(penalty, torch.tensor(want))
        torch.testing.assert_close(norm, torch.tensor(5.0))
    # differentiable in the critic's weights: d/dw |w|^2 = 2 w
    penalty, _ = gradient_penalty(critic, real, kind="official")
    (grad_w,) = torch.autograd.grad(penalty, critic.w)
    torch.testing.assert_close(grad_w, torch.tensor([6.0, -8.0]))


def test_official_penalty_squares_the_mean_norm_and_r1_averages_the_squares():
    critic = _Quadratic([1.0, 2.0])
    real = torch.tensor([[3.0, 0.0], [0.0, 1.0]])               # grads (3, 0) and (0, 2): norms 3 and 2
    official, norm = gradient_penalty(critic, real, kind="official")
    r1, _ = gradient_penalty(critic, real, kind="r1")
    torch.testing.assert_close(official, torch.tensor(6.25))     # ((3 + 2) / 2)^2
    torch.testing.assert_close(r1, torch.tensor(6.5))            # (9 + 4) / 2
    torch.testing.assert_close(norm, torch.tensor(2.5))


def test_penalty_bad_input():
    critic = _Linear([1.0, 0.0])
    with pytest.raises(ValueError, match="fake="):
        gradient_penalty(critic, torch.randn(3, 2), kind="wgan-gp")
    with pytest.raises(ValueError, match="kind"):
        gradient_penalty(critic, torch.randn(3, 2), kind="r2")
    with pytest.raises(ValueError, match="real"):
        gradient_penalty(critic, torch.full((3, 2), float("nan")))


def test_latent_mmd():
    a, b = _mixture(300, 1), _mixture(300, 2)
    assert latent_mmd(a, a) == pytest.approx(0.0, abs=1e-12)
    same, shifted = latent_mmd(a, b), latent_mmd(a + 1.0, b)
    assert 0 < same < shifted / 20
    with pytest.raises(ValueError, match="width"):
        latent_mmd(a, b[:, :4])
    real, bandwidth, floor = mmd_yardstick(a, num=100, seed=3)
    assert real.shape == (100, 8) and bandwidth == median_distance(real)
    assert 0 < floor < shifted / 20                              # two halves of one sample: near zero
    again = mmd_yardstick(a, num=100, seed=3)
    assert torch.equal(again[0], real) and again[2] == floor     # a pure function of the seed


# ---------------------------------------------------------------- learning a toy distribution

def test_short_run_moves_the_generator_toward_a_mixture_of_gaussians():
    data, held_out = _mixture(2048, 0), _mixture(1000, 9)
    seed_everything(TOY["seed"])   # the trainer's initial weights: the first thing it builds after seeding
    untrained = LatentGenerator(zdim=8, noise_dim=8, hidden=TOY["generator_hidden"])
    with torch.no_grad():
        before = latent_mmd(untrained.sample(1000, generator=torch.Generator().manual_seed(7)), held_out)
    result = train_latent_gan(latents=data, max_steps=400, val_every=200, val_samples=500, **TOY)
    with torch.no_grad():
        after = latent_mmd(result.generator.sample(1000, generator=torch.Generator().manual_seed(7)),
                           held_out)
    floor = latent_mmd(_mixture(1000, 11), held_out)            # two samples of the target itself
    assert after < before / 5, (before, after, floor)            # the stated factor: 5x closer
    records = [r for r in result.history if "latent_mmd" in r]
    assert [r["step"] for r in records] == [200, 400]
    assert records[-1]["latent_mmd"] < records[0]["latent_mmd"]
    assert {"loss_critic", "loss_generator", "wdist", "penalty", "grad_norm", "steps_per_s"} <= set(
        result.history[0])


# ---------------------------------------------------------------- resume, checkpoints

def test_resume_gives_the_uninterrupted_weights(tmp_path):
    data = _mixture(512, 0)
    kw = {**TOY, "batch_size": 64, "ckpt_every": 5, "val_every": 10, "val_samples": 64, "log_every": 5}
    full = train_latent_gan(latents=data, max_steps=20, out_dir=tmp_path / "full", **kw)
    train_latent_gan(latents=data, max_steps=10, out_dir=tmp_path / "part", **kw)
    resumed = train_latent_gan(latents=data, max_steps=20, out_dir=tmp_path / "part", resume=True, **kw)
    for a, b in ((full.generator, resumed.generator), (full.critic, resumed.critic)):
        for k, v in flat_state(a).items():
            torch.testing.assert_close(flat_state(b)[k], v, rtol=0, atol=0)
    strip = [{k: v for k, v in r.items() if k != "steps_per_s"} for r in full.history]
    assert [{k: v for k, v in r.items() if k != "steps_per_s"} for r in resumed.history] == strip
    assert len(RunDir(tmp_path / "part").read_metrics()) == len(full.history)
    loaded = load_latent_gan(tmp_path / "full", device="cpu")
    torch.testing.assert_close(flat_state(loaded.generator)["out.weight"],
                               flat_state(full.generator)["out.weight"])
    assert loaded.step == 20 and loaded.autoencoder is None and loaded.latents.shape == (512, 8)
    with pytest.raises(ValueError, match="no auto-encoder"):
        loaded.sample(2, 10)


def test_autoencoder_to_generated_shapes_and_wrong_kinds(tmp_path):
    # a (barely) trained 2D auto-encoder, then a latent GAN on its codes of 16 circles
    ae_run = tmp_path / "ae"
    train_autoencoder(tiny(max_steps=1, ckpt_every=1), train_set=Circles(), out_dir=ae_run, progress=False)
    gan_run = tmp_path / "gan"
    result = train_latent_gan(autoencoder=ae_run, train_set=Circles(), out_dir=gan_run, noise_dim=4,
                              generator_hidden=[8], critic_hidden=[8], batch_size=8, max_steps=2,
                              device="cpu", val_every=None, progress=False)
    assert result.latents.shape == (16, 16) and result.config.autoencoder == str(ae_run)
    loaded = load_latent_gan(gan_run, device="cpu")
    shapes = loaded.sample(3, 20, generator=torch.Generator().manual_seed(0), steps_per_sigma=1)
    assert shapes.shape == (3, 20, 2)
    again = result.sample(3, 20, generator=torch.Generator().manual_seed(0), steps_per_sigma=1)
    torch.testing.assert_close(shapes, again)                   # the checkpoint holds the frozen auto-encoder
    # each loader refuses the other's checkpoint, naming the kinds
    with pytest.raises(ValueError, match="'shapegf-autoencoder' checkpoint .*load_model"):
        load_latent_gan(ae_run)
    with pytest.raises(ValueError, match="'shapegf-latent-gan' checkpoint .*load_latent_gan"):
        load_model(gan_run)
    with pytest.raises(ValueError, match="'shapegf-latent-gan' checkpoint .*load_latent_gan"):
        load_checkpoint(gan_run)
    assert load_gan_checkpoint(gan_run)["kind"] == CHECKPOINT_KIND


def test_bad_runs_raise(tmp_path):
    data = _mixture(100, 0)
    with pytest.raises(ValueError, match="batch_size=128"):
        train_latent_gan(latents=data, max_steps=1, **TOY)
    with pytest.raises(ValueError, match="no codes to train on"):
        train_latent_gan(max_steps=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="max_steps or epochs"):
        train_latent_gan(latents=data, batch_size=10, device="cpu", progress=False)
    with pytest.raises(FileNotFoundError):
        train_latent_gan(latents=data, max_steps=1, batch_size=10, out_dir=tmp_path, resume=True,
                         device="cpu", progress=False)
    with pytest.raises(ValueError, match="latents"):
        train_latent_gan(latents=torch.full((20, 3), float("nan")), max_steps=1, batch_size=10, device="cpu",
                         progress=False)
    with pytest.raises(ValueError, match="neither an existing checkpoint"):
        train_latent_gan(autoencoder=str(tmp_path / "nothing.pt"), max_steps=1, device="cpu", progress=False)


# ---------------------------------------------------------------- the config

def test_config_keys_and_preset(tmp_path):
    cfg = LatentGANConfig.from_yaml(ROOT / "configs" / "shapes3d-gan-cpu.yaml")
    assert cfg.stage == "gan" and cfg.penalty == "official" and cfg.lr == 1e-4 and cfg.betas == (0.5, 0.9)
    assert cfg.generator_hidden == (256, 256) and cfg.critic_hidden == (512, 512) and cfg.critic_steps == 1
    assert LatentGANConfig.from_dict(cfg.to_dict()) == cfg
    cfg.to_yaml(tmp_path / "c.yaml")
    assert LatentGANConfig.from_yaml(tmp_path / "c.yaml") == cfg
    defaults = LatentGANConfig()
    assert (defaults.batch_size, defaults.noise_dim, defaults.penalty_weight) == (256, 128, 1.0)


@pytest.mark.parametrize("d, exc, name", [
    ({"lr_decay": 0.5}, ValueError, "unknown latent-GAN config keys"),
    ({"stage": "autoencoder"}, ValueError, "stage"),
    ({"penalty": "gp"}, ValueError, "penalty"),
    ({"penalty_weight": -1.0}, ValueError, "penalty_weight"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"max_steps": 5, "epochs": 5}, ValueError, "max_steps or epochs"),
    ({"generator_hidden": []}, ValueError, "generator_hidden"),
    ({"critic_hidden": [8, -1]}, ValueError, "critic_hidden"),
    ({"betas": [0.5]}, ValueError, "betas"),
    ({"lr": "fast"}, ValueError, "lr"),
    ({"seed": 1.5}, TypeError, "seed"),
])
def test_config_bad_values_raise(d, exc, name):
    with pytest.raises(exc, match=name):
        LatentGANConfig.from_dict(d)


def test_generator_widths_come_from_the_config():
    result = train_latent_gan(latents=_mixture(64, 0), max_steps=1, **{**TOY, "batch_size": 32,
                                                                         "generator_hidden": [16, 8]})
    assert isinstance(result.generator, LatentGenerator)
    assert result.generator.config == {"zdim": 8, "noise_dim": 8, "hidden": [16, 8]}


@pytest.mark.skipif("shapes3d" not in gfcore.pretrained.available(), reason="needs the shipped shapes3d model")
def test_resolve_a_pretrained_autoencoder_with_its_training_data():
    model, source, data = resolve_autoencoder("pretrained:shapes3d", device="cpu")
    card = gfcore.pretrained.card("shapes3d")
    assert source == "pretrained:shapes3d" and not model.training
    assert data["dataset"] == card["dataset"]
    assert data["dataset_kwargs"] == card["config"]["dataset_kwargs"]   # points per shape included
    assert resolve_autoencoder("shapes3d", device="cpu")[1] == "pretrained:shapes3d"


# ---------------------------------------------------------------- one step of each network, by hand

def _nets(seed=0, zdim=8, noise_dim=8):
    torch.manual_seed(seed)
    gen = LatentGenerator(zdim=zdim, noise_dim=noise_dim, hidden=[16, 16])
    critic = LatentCritic(zdim=zdim, hidden=[16, 16])
    return gen, critic


def _adam(module):
    return torch.optim.Adam(module.parameters(), lr=1e-2, betas=(0.5, 0.9))


def test_generator_step_is_minus_the_mean_critic_score_of_fresh_codes():
    gen, critic = _nets()
    gen_ref, critic_ref = copy.deepcopy(gen), copy.deepcopy(critic)
    critic_before = flat_state(critic)
    out = generator_step(gen, critic, _adam(gen), batch_size=32, generator=torch.Generator().manual_seed(5))
    # by hand: the noise the generator draws, the loss, the gradient in the generator's weights, one Adam step
    noise = torch.randn(32, 8, generator=torch.Generator().manual_seed(5))
    loss = -critic_ref(gen_ref(noise)).mean()
    opt = _adam(gen_ref)
    loss.backward()
    opt.step()
    assert set(out) == {"loss_generator"} and not out["loss_generator"].requires_grad
    torch.testing.assert_close(out["loss_generator"], loss.detach(), rtol=0, atol=0)
    for k, v in flat_state(gen_ref).items():
        torch.testing.assert_close(flat_state(gen)[k], v, rtol=0, atol=0)
    # the critic is untouched and keeps its requires_grad flags, no gradient left on it
    for k, v in critic_before.items():
        assert torch.equal(flat_state(critic)[k], v), k
    assert all(p.requires_grad and p.grad is None for p in critic.parameters())


@pytest.mark.parametrize("penalty, weight", [("official", 1.0), ("r1", 0.5), ("wgan-gp", 10.0), ("official", 0.0)])
def test_critic_step_is_the_wasserstein_loss_plus_the_penalty_by_hand(penalty, weight):
    gen, critic = _nets(1)
    gen_ref, critic_ref = copy.deepcopy(gen), copy.deepcopy(critic)
    real = _mixture(24, 3)
    out = critic_step(gen, critic, _adam(critic), real, penalty=penalty, penalty_weight=weight,
                      generator=torch.Generator().manual_seed(7), penalty_generator=torch.Generator().manual_seed(8))
    # by hand, with autograd of D at the penalty's points written out
    with torch.no_grad():
        fake = gen_ref(torch.randn(24, 8, generator=torch.Generator().manual_seed(7)))
    wdist = critic_ref(real).mean() - critic_ref(fake).mean()
    if penalty == "wgan-gp":
        t = torch.rand(24, 1, generator=torch.Generator().manual_seed(8))
        x = (t * real + (1 - t) * fake).requires_grad_(True)
    else:
        x = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(critic_ref(x).sum(), x, create_graph=True)
    norms = g.square().sum(dim=1).add(1e-12 if penalty != "r1" else 0.0).sqrt()
    value = {"official": norms.mean() ** 2, "r1": norms.square().mean(), "wgan-gp": (norms - 1).square().mean()}
    loss = -wdist + weight * value[penalty] if weight > 0 else -wdist
    opt = _adam(critic_ref)
    loss.backward()
    opt.step()
    torch.testing.assert_close(out["loss_critic"], loss.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out["wdist"], wdist.detach(), rtol=0, atol=0)
    if weight > 0:
        torch.testing.assert_close(out["penalty"], value[penalty].detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(out["grad_norm"], norms.detach().mean(), rtol=1e-6, atol=1e-7)
    else:
        assert set(out) == {"loss_critic", "wdist"}
    for k, v in flat_state(critic_ref).items():
        torch.testing.assert_close(flat_state(critic)[k], v, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in gen.parameters())        # the generator is not updated
    for k, v in flat_state(gen_ref).items():
        assert torch.equal(flat_state(gen)[k], v), k


def test_step_functions_bad_input():
    gen, critic = _nets()
    with pytest.raises(ValueError, match="penalty"):
        critic_step(gen, critic, _adam(critic), _mixture(8, 0), penalty="gp")
    with pytest.raises(ValueError, match="penalty_weight"):
        critic_step(gen, critic, _adam(critic), _mixture(8, 0), penalty_weight=-1.0)
    with pytest.raises(ValueError, match="real"):
        critic_step(gen, critic, _adam(critic), torch.randn(8))
    with pytest.raises(ValueError, match="num_shapes"):
        generator_step(gen, critic, _adam(gen), batch_size=0)


def test_the_trainer_is_the_two_steps_in_a_loop():
    """train_latent_gan's weights, bit for bit, from a hand-written loop of generator_step and critic_step with
    the trainer's documented seeding (a chapter can write the loop itself)."""
    data = _mixture(256, 0)
    kw = {**TOY, "batch_size": 64, "critic_steps": 2, "penalty": "wgan-gp", "penalty_weight": 10.0,
          "val_every": None, "log_every": 4}
    result = train_latent_gan(latents=data, max_steps=9, **kw)
    seed_everything(0)
    gen = LatentGenerator(zdim=8, noise_dim=8, hidden=[64, 64])
    critic = LatentCritic(zdim=8, hidden=[64, 64])
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.9))
    opt_c = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    noise, mix = torch.Generator(), torch.Generator()
    losses = []
    for step, idx in enumerate(StepBatches(256, 64, 0, 0, 9)):
        if step % 2 == 0:
            noise.manual_seed(mix_seed(0, gan._GEN_STREAM, step))
            generator_step(gen, critic, opt_g, batch_size=64, generator=noise)
        noise.manual_seed(mix_seed(0, gan._CRITIC_STREAM, step))
        mix.manual_seed(mix_seed(0, gan._MIX_STREAM, step))
        out = critic_step(gen, critic, opt_c, data[torch.as_tensor(idx)], penalty="wgan-gp", penalty_weight=10.0,
                          generator=noise, penalty_generator=mix)
        losses.append(out["loss_critic"].item())
    for a, b in ((result.generator, gen), (result.critic, critic)):
        for k, v in flat_state(a).items():
            torch.testing.assert_close(flat_state(b)[k], v, rtol=0, atol=0)
    # the log records are the float64 means of the steps since the previous record
    assert [r["step"] for r in result.history] == [4, 8, 9]
    assert result.history[0]["loss_critic"] == pytest.approx(sum(losses[:4]) / 4, rel=1e-12)
    assert result.history[2]["loss_critic"] == pytest.approx(losses[8], rel=1e-12)


# ---------------------------------------------------------------- no host sync per step; NaN still caught

_SYNCS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu")


def test_the_loop_reads_nothing_back_between_log_records(monkeypatch):
    """Every read of a tensor's value from gfcore's own code (``.item()``, ``bool``, ``float``, ...), which is a
    host synchronisation on a GPU, happens after a logging step, never inside or between the other steps."""
    events = []
    gfcore_dir = str(Path(gfcore.__file__).parent)
    for name in _SYNCS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            where = sys._getframe(1).f_code.co_filename
            # StepBatches lists the indices of its permutation, which lives on the CPU whatever the device
            if where.startswith(gfcore_dir) and not where.endswith("batches.py"):
                events.append(("sync", (_name, where, sys._getframe(1).f_lineno)))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    train_step = gan._train_step

    def marked(cfg, step_idx, *args):
        events.append(("start", step_idx + 1))
        out = train_step(cfg, step_idx, *args)
        events.append(("end", step_idx + 1))
        return out

    monkeypatch.setattr(gan, "_train_step", marked)
    train_latent_gan(latents=_mixture(256, 0), max_steps=12, **{**TOY, "batch_size": 32, "log_every": 5,
                                                                "val_every": None})
    first = events.index(("start", 1))
    syncs_after, step, inside = {}, None, False
    for kind, what in events[first:]:
        if kind == "start":
            step, inside = what, True
        elif kind == "end":
            inside = False
        elif inside:
            pytest.fail(f"{what} called inside step {step}")
        else:
            syncs_after[step] = syncs_after.get(step, 0) + 1
    assert set(syncs_after) == {5, 10, 12}, syncs_after          # the logging steps only
    assert max(syncs_after.values()) <= 2                        # the NaN check and the means: one read each


def test_a_nan_loss_is_caught_at_the_next_log_record(tmp_path, monkeypatch):
    calls = []
    step = gan.critic_step

    def poisoned(latent_generator, critic, *args, **kwargs):
        calls.append(1)
        if len(calls) == 7:                                      # step 7: the critic's weights become NaN
            with torch.no_grad():
                critic.out.weight.fill_(float("nan"))
        return step(latent_generator, critic, *args, **kwargs)

    monkeypatch.setattr(gan, "critic_step", poisoned)
    kw = {**TOY, "batch_size": 32, "val_every": None, "log_every": 5}
    # records every 5 steps, checkpoints every 4: the NaN of step 7 is found before the checkpoint of step 8
    with pytest.raises(FloatingPointError, match=r"step 7: the critic loss is NaN/inf"):
        train_latent_gan(latents=_mixture(256, 0), max_steps=20, out_dir=tmp_path / "a", ckpt_every=4,
                         **kw)
    assert len(calls) == 8
    assert [r["step"] for r in RunDir(tmp_path / "a").read_metrics()] == [5]
    assert load_gan_checkpoint(tmp_path / "a")["step"] == 4     # no checkpoint of NaN weights
    # checkpoints every 20: found at the record of step 10, which is not written
    calls.clear()
    with pytest.raises(FloatingPointError, match=r"step 7: the critic loss is NaN/inf"):
        train_latent_gan(latents=_mixture(256, 0), max_steps=20, out_dir=tmp_path / "b", ckpt_every=20,
                         **kw)
    assert len(calls) == 10
    assert [r["step"] for r in RunDir(tmp_path / "b").read_metrics()] == [5]


# ---------------------------------------------------------------- resume keeps Adam's step counters on the CPU

@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")   # meta: a no-op copy
@pytest.mark.parametrize("device", ["meta", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
def test_resume_keeps_the_optimizer_step_counters_on_the_cpu(tmp_path, device):
    """The checkpoint is read onto the CPU; loaded into networks on another device, the moments move there and
    Adam's ``step`` counters stay on the CPU (on a GPU: no sync per parameter per step)."""
    kw = {**TOY, "batch_size": 32, "val_every": None, "ckpt_every": 3}
    train_latent_gan(latents=_mixture(64, 0), max_steps=3, out_dir=tmp_path, **kw)
    run = RunDir(tmp_path)
    cfg = LatentGANConfig.from_dict({k: v for k, v in kw.items() if k != "progress"})
    cfg, latents, _, _, ckpt = gan._resumed_codes(run, cfg, torch.device(device))
    assert latents.device.type == device
    nets = gan._build(cfg, latents.shape[1], torch.device(device))
    start, history = gan._restore(ckpt, run.last, *nets)
    assert start == 3 and len(history) == 1
    for opt in nets[2:]:
        assert opt.state
        for state in opt.state.values():
            assert state["step"].device.type == "cpu" and float(state["step"]) == 3.0
            assert state["exp_avg"].device.type == device and state["exp_avg_sq"].device.type == device
