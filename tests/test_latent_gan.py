"""gfcore.models.latent_gan: the latent GAN's networks and sampling new shapes (shapes, devices, seeds, bad
input)."""
import pytest
import torch

from gfcore.models import LatentCritic, LatentGenerator, ShapeGF, sample_shapes
from gfcore.models.latent_gan import generation_sigmas

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _tiny_ae(zdim=8, device="cpu"):
    torch.manual_seed(0)
    return ShapeGF(dim=3, zdim=zdim, hidden=16, n_blocks=1).to(device).eval()


def _gen(zdim=8, device="cpu"):
    torch.manual_seed(1)
    return LatentGenerator(zdim=zdim, noise_dim=4, hidden=(16,)).to(device)


# ---------------------------------------------------------------- the networks

def test_official_sizes_and_state_dict_names():
    gen, critic = LatentGenerator(), LatentCritic()
    # 128 -> 256 -> 256 -> 128 and 128 -> 512 -> 512 -> 1, weights and biases
    assert sum(p.numel() for p in gen.parameters()) == 128 * 256 + 256 + 256 * 256 + 256 + 256 * 128 + 128
    assert sum(p.numel() for p in critic.parameters()) == 128 * 512 + 512 + 512 * 512 + 512 + 512 + 1
    # the official checkpoints' names: layers.{i} and out
    assert sorted(gen.state_dict()) == ["layers.0.bias", "layers.0.weight", "layers.1.bias",
                                        "layers.1.weight", "out.bias", "out.weight"]
    assert sorted(critic.state_dict()) == sorted(gen.state_dict())
    assert gen.config == {"zdim": 128, "noise_dim": 128, "hidden": [256, 256]}
    assert critic.config == {"zdim": 128, "hidden": [512, 512], "negative_slope": 0.2}


def test_forward_matches_a_hand_written_mlp():
    gen, critic = LatentGenerator(zdim=3, noise_dim=2, hidden=(5, 4)), LatentCritic(zdim=3, hidden=(6,))
    noise = torch.randn(7, 2)
    h = torch.relu(gen.layers[1](torch.relu(gen.layers[0](noise))))
    torch.testing.assert_close(gen(noise), gen.out(h))
    z = torch.randn(7, 3)
    pre = critic.layers[0](z)
    h = torch.where(pre > 0, pre, 0.2 * pre)                            # LeakyReLU, slope 0.2
    out = critic(z)
    assert out.shape == (7,)
    torch.testing.assert_close(out, critic.out(h).squeeze(-1))


def test_from_config_round_trip():
    gen = LatentGenerator(zdim=6, noise_dim=3, hidden=[10, 9, 8])
    again = LatentGenerator.from_config(gen.config)
    again.load_state_dict(gen.state_dict())
    x = torch.randn(4, 3)
    torch.testing.assert_close(again(x), gen(x))
    critic = LatentCritic.from_config({"zdim": 6, "hidden": [5], "negative_slope": 0.1})
    assert critic.negative_slope == 0.1
    with pytest.raises(ValueError, match="unknown LatentGenerator config keys"):
        LatentGenerator.from_config({"zdim": 6, "width": 3})


@pytest.mark.parametrize("make, kwargs, name", [
    (LatentGenerator, {"zdim": 0}, "zdim"),
    (LatentGenerator, {"noise_dim": -1}, "noise_dim"),
    (LatentGenerator, {"hidden": []}, "hidden"),
    (LatentGenerator, {"hidden": [8, 0]}, "hidden"),
    (LatentCritic, {"zdim": 0}, "zdim"),
    (LatentCritic, {"hidden": ()}, "hidden"),
    (LatentCritic, {"negative_slope": 1.5}, "negative_slope"),
])
def test_bad_sizes_raise_naming_the_argument(make, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make(**kwargs)


def test_bad_inputs_raise_naming_the_argument():
    gen, critic = LatentGenerator(zdim=4, noise_dim=3, hidden=(5,)), LatentCritic(zdim=4, hidden=(5,))
    with pytest.raises(ValueError, match=r"noise must be \(B, 3\)"):
        gen(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"z must be \(B, 4\)"):
        critic(torch.randn(2, 3, 4))
    with pytest.raises(TypeError, match="noise"):
        gen(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="num_shapes"):
        gen.sample(0)
    with pytest.raises(TypeError, match="num_shapes"):
        gen.sample(2.0)


def test_generator_sample_is_reproducible():
    gen = LatentGenerator(zdim=4, noise_dim=3, hidden=(5,))
    a = gen.sample(6, generator=torch.Generator().manual_seed(3))
    b = gen.sample(6, generator=torch.Generator().manual_seed(3))
    c = gen.sample(6, generator=torch.Generator().manual_seed(4))
    assert a.shape == (6, 4)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


# ---------------------------------------------------------------- sampling new shapes

def test_generation_ladder_is_the_official_one():
    torch.testing.assert_close(generation_sigmas(), torch.tensor([1.0, 0.316228, 0.1, 0.0316228, 0.01]),
                               rtol=1e-5, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_sample_shapes_shape_device_and_seed(device):
    ae, gen = _tiny_ae(device=device), _gen(device=device)

    def draw(seed, **kw):
        g = torch.Generator(device=device).manual_seed(seed)
        return sample_shapes(ae, gen, 3, 50, generator=g, steps_per_sigma=2, **kw)

    a, b, c = draw(0), draw(0), draw(1)
    assert a.shape == (3, 50, 3) and a.device.type == device and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)          # a fixed generator reproduces the shapes
    assert not torch.allclose(a, c)
    shapes, z = draw(0, return_latents=True)
    assert z.shape == (3, 8)
    torch.testing.assert_close(shapes, a, rtol=0, atol=0)
    assert gen.training                                         # the mode is restored


def test_sample_shapes_is_generator_then_decode_on_the_5_level_ladder():
    ae, gen = _tiny_ae(), _gen()
    got = sample_shapes(ae, gen, 2, 40, generator=torch.Generator().manual_seed(5), steps_per_sigma=3)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        z = gen.eval().sample(2, generator=g)
    ref = ae.decode(z, 40, sigmas=torch.tensor([1.0, 0.1 ** 0.5, 0.1, 0.01 ** 0.75, 0.01]), steps_per_sigma=3,
                    generator=g)
    torch.testing.assert_close(got, ref)
    # one batch of 2 or two batches of 1 decode the same codes
    halves = sample_shapes(ae, gen, 2, 40, generator=torch.Generator().manual_seed(5), steps_per_sigma=3,
                           batch_size=1)
    assert halves.shape == got.shape and torch.isfinite(halves).all()


@pytest.mark.parametrize("kwargs, exc, name", [
    ({"num_shapes": 0}, ValueError, "num_shapes"),
    ({"num_shapes": -2}, ValueError, "num_shapes"),
    ({"num_points": 0}, ValueError, "num_points"),
    ({"num_points": 1.5}, TypeError, "num_points"),
    ({"steps_per_sigma": 0}, ValueError, "steps_per_sigma"),
    ({"batch_size": 0}, ValueError, "batch_size"),
])
def test_sample_shapes_bad_counts_raise(kwargs, exc, name):
    args = {"num_shapes": 2, "num_points": 10, **kwargs}
    with pytest.raises(exc, match=name):
        sample_shapes(_tiny_ae(), _gen(), args.pop("num_shapes"), args.pop("num_points"), **args)


def test_sample_shapes_bad_networks_raise():
    ae = _tiny_ae()
    with pytest.raises(ValueError, match="zdim"):
        sample_shapes(ae, _gen(zdim=5), 2, 10)
    with pytest.raises(TypeError, match="latent_generator"):
        sample_shapes(ae, torch.nn.Linear(4, 8), 2, 10)
    with pytest.raises(TypeError, match="autoencoder"):
        sample_shapes(torch.nn.Linear(4, 8), _gen(), 2, 10)
    with pytest.raises(TypeError, match="generator"):
        sample_shapes(ae, _gen(), 2, 10, generator=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sample_shapes_device_mismatches_raise():
    ae, gen = _tiny_ae(device="cuda"), _gen()
    with pytest.raises(ValueError, match="latent_generator is on cpu"):
        sample_shapes(ae, gen, 2, 10)
    with pytest.raises(ValueError, match="generator is on cpu"):
        sample_shapes(ae, gen.cuda(), 2, 10, generator=torch.Generator())


# ---------------------------------------------------------------- ShapeGF.sample, the method form
@pytest.mark.parametrize("device", DEVICES)
def test_shapegf_sample_is_sample_shapes(device):
    ae, gen = _tiny_ae(device=device), _gen(device=device)

    def draw(seed, **kw):
        return ae.sample(gen, 4, 30, generator=torch.Generator(device=device).manual_seed(seed),
                         steps_per_sigma=2, **kw)

    a, b = draw(3), draw(3)
    assert a.shape == (4, 30, 3) and a.device.type == device
    torch.testing.assert_close(a, b, rtol=0, atol=0)          # reproducible with a fixed torch.Generator
    assert not torch.allclose(a, draw(4))
    ref = sample_shapes(ae, gen, 4, 30, generator=torch.Generator(device=device).manual_seed(3), steps_per_sigma=2)
    torch.testing.assert_close(a, ref, rtol=0, atol=0)
    shapes, z = draw(3, return_latents=True, batch_size=2)
    assert shapes.shape == (4, 30, 3) and z.shape == (4, 8)


@pytest.mark.parametrize("args, exc, name", [
    ((0, 10), ValueError, "num_shapes"),
    ((-1, 10), ValueError, "num_shapes"),
    ((2, 0), ValueError, "num_points"),
    ((2.0, 10), TypeError, "num_shapes"),
])
def test_shapegf_sample_bad_counts_raise(args, exc, name):
    with pytest.raises(exc, match=name):
        _tiny_ae().sample(_gen(), *args)
