"""Fixtures shared by several test files."""
import numpy as np
import pytest


@pytest.fixture
def pc15k(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ShapeNetCore.v2.PC15k"
    for synset in ("02691156", "03001627"):
        for split in ("train", "val", "test"):
            folder = root / synset / split
            folder.mkdir(parents=True)
            for k in range(3):
                pts = rng.normal(size=(15000, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0]
                np.save(folder / f"shape{k}.npy", pts.astype(np.float32))
    return root
