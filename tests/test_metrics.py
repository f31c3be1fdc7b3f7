"""gfcore.metrics: Chamfer distance against a brute-force loop."""
import pytest
import torch

from gfcore.metrics import chamfer_distance


def brute_chamfer(a, b):
    out = []
    for x, y in zip(a, b):
        d2 = torch.tensor([[float(((p - q) ** 2).sum()) for q in y] for p in x], dtype=torch.float64)
        out.append(d2.min(1).values.mean() + d2.min(0).values.mean())
    return torch.stack(out)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_chamfer_matches_brute_force(d, chunk_size):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 17, d, generator=g, dtype=torch.float64)
    b = torch.randn(3, 11, d, generator=g, dtype=torch.float64)
    cd = chamfer_distance(a, b, chunk_size=chunk_size)
    assert cd.shape == (3,)
    torch.testing.assert_close(cd, brute_chamfer(a, b))
    torch.testing.assert_close(chamfer_distance(b, a), cd)   # symmetric


def test_chamfer_zero_on_identical_and_permuted():
    a = torch.randn(2, 50, 3)
    assert torch.all(chamfer_distance(a, a) == 0)
    assert torch.all(chamfer_distance(a, a[:, torch.randperm(50)]) == 0)


def test_chamfer_rejects_bad_input():
    a = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="share B and d"):
        chamfer_distance(a, torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match="share B and d"):
        chamfer_distance(a, torch.randn(2, 5, 2))
    bad = a.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        chamfer_distance(bad, a)
