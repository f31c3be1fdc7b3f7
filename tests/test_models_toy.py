"""gfcore.models.ToyScoreNet."""
import pytest
import torch

from gfcore.models import ToyScoreNet


def _embed(net, x, sigma_b):
    """The network's input: x and the Fourier features of log sigma, built by hand."""
    angles = torch.log(sigma_b)[:, None, None] * net.freqs  # (B, 1, F)
    emb = torch.cat([angles.sin(), angles.cos()], -1).expand(-1, x.shape[1], -1)
    return torch.cat([x, emb], -1)


@pytest.mark.parametrize("dim", [2, 3])
def test_output_shape_and_sigma_scaling(dim):
    torch.manual_seed(0)
    net = ToyScoreNet(dim=dim, hidden=32, depth=2, num_freqs=4)
    x = torch.randn(3, 17, dim)
    sigma = torch.tensor([0.01, 0.3, 1.0])
    out = net(x, sigma)
    assert out.shape == (3, 17, dim)
    raw = net.net(_embed(net, x, sigma))
    torch.testing.assert_close(out * sigma[:, None, None], raw)


def test_sigma_broadcasting():
    torch.manual_seed(1)
    net = ToyScoreNet(hidden=16, depth=1)
    x = torch.randn(4, 9, 2)
    by_float = net(x, 0.2)
    by_tensor = net(x, torch.full((4,), 0.2))
    by_0d = net(x, torch.tensor(0.2))
    torch.testing.assert_close(by_float, by_tensor)
    torch.testing.assert_close(by_float, by_0d)
    unbatched = net(x[1], 0.2)
    assert unbatched.shape == (9, 2)
    torch.testing.assert_close(unbatched, by_float[1])
    # different sigmas give different outputs (the network is conditioned on sigma)
    assert not torch.allclose(net(x, 0.2), net(x, 0.5) * 2.5)


def test_gradient_and_float64():
    net = ToyScoreNet(hidden=8, depth=1).double()
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    out = net(x, torch.tensor([0.1, 0.2], dtype=torch.float64))
    assert out.dtype == torch.float64
    out.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_errors():
    net = ToyScoreNet(dim=2, hidden=8, depth=1)
    with pytest.raises(ValueError, match="x must be"):
        net(torch.randn(4, 9, 3), 0.1)
    with pytest.raises(ValueError, match="x must be"):
        net(torch.randn(9), 0.1)
    with pytest.raises(ValueError, match="sigma"):
        net(torch.randn(4, 9, 2), torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="sigma"):
        net(torch.randn(4, 9, 2), 0.0)
    with pytest.raises(ValueError, match="dim"):
        ToyScoreNet(dim=0)
    with pytest.raises(TypeError, match="hidden"):
        ToyScoreNet(hidden=1.5)
