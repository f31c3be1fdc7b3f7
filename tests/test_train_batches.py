"""gfcore.train.batches: the stateless batch order that makes resume exact."""
import torch

from gfcore.train.batches import StepBatches, mix_seed


def test_mix_seed_is_stable_and_sensitive():
    assert mix_seed(100, 3, 0, 7) == mix_seed(100, 3, 0, 7)
    assert len({mix_seed(100, 3, 0, t) for t in range(100)}) == 100
    assert 0 <= mix_seed(-5, 2**70) < 2**63


def test_each_epoch_is_a_permutation_and_resume_replays_it():
    full = list(StepBatches(n=10, batch_size=3, seed=1, start=0, stop=9))
    assert len(full) == 9 and all(len(b) == 3 for b in full)
    for epoch in range(3):                       # 3 steps per epoch, the 10th item dropped each epoch
        seen = sum(full[3 * epoch:3 * epoch + 3], [])
        assert len(set(seen)) == 9 and set(seen) <= set(range(10))
    assert full[:3] != full[3:6]                  # a new order every epoch
    assert list(StepBatches(n=10, batch_size=3, seed=1, start=4, stop=9)) == full[4:]
    assert list(StepBatches(n=10, batch_size=3, seed=2, start=0, stop=3)) != full[:3]


def test_ranks_split_each_batch():
    whole = list(StepBatches(n=16, batch_size=8, seed=0, start=0, stop=4))
    parts = [list(StepBatches(n=16, batch_size=8, seed=0, start=0, stop=4, rank=r, world=2)) for r in (0, 1)]
    for step in range(4):
        assert parts[0][step] + parts[1][step] == whole[step]
    assert len(StepBatches(n=16, batch_size=8, seed=0, start=1, stop=4)) == 3
    assert torch.equal(StepBatches(16, 8, 0, 0, 1).permutation(0), StepBatches(16, 8, 0, 5, 6).permutation(0))
