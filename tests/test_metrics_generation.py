"""gfcore.metrics generation metrics: MMD, COV, 1-NNA on constructed cases, JSD, pairwise matrices, evaluate."""
import itertools
import warnings

import numpy as np
import pytest
import torch

from gfcore import metrics
from gfcore.metrics import (
    chamfer_distance,
    coverage,
    emd,
    evaluate,
    format_table,
    jsd,
    mmd,
    one_nna,
    pairwise_cd,
    pairwise_emd,
)


def _set(count, n, *, seed, center=0.0, spread=0.1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(count, n, 3, generator=g, dtype=dtype) * spread + center


# ---------------------------------------------------------------- MMD and COV on hand-made matrices

def test_mmd_and_coverage_hand_computed():
    # rows: 3 generated shapes, columns: 4 references
    d = torch.tensor([[1.0, 5.0, 9.0, 4.0],
                      [2.0, 0.5, 7.0, 6.0],
                      [3.0, 0.2, 8.0, 9.0]])
    # each reference's nearest generated shape: 1.0, 0.2, 7.0, 4.0
    assert mmd(d) == pytest.approx((1.0 + 0.2 + 7.0 + 4.0) / 4)
    # nearest reference of each generated shape: 0, 1, 1 -> references {0, 1} of 4 covered
    assert coverage(d) == 0.5


def test_coverage_of_a_set_against_itself_is_full():
    shapes = _set(6, 30, seed=0, spread=1.0)
    d = pairwise_cd(shapes, shapes)
    assert coverage(d) == 1.0
    assert mmd(d) == 0.0


def test_copies_score_perfect_mmd_and_coverage_but_zero_1nna():
    refs = _set(5, 40, seed=1, spread=1.0)
    d_sr = pairwise_cd(refs.clone(), refs)
    d_ss = pairwise_cd(refs.clone())
    d_rr = pairwise_cd(refs)
    assert mmd(d_sr) == 0.0 and coverage(d_sr) == 1.0
    # every shape's nearest other shape is its copy, which carries the other label: all wrong
    assert one_nna(d_ss, d_sr, d_rr) == 0.0


# ---------------------------------------------------------------- 1-NNA

def brute_1nna(d_ss, d_sr, d_rr):
    """Leave-one-out 1-NN accuracy by explicit loops (references first in the union)."""
    s, r = d_sr.shape
    items = [("r", i) for i in range(r)] + [("s", i) for i in range(s)]

    def dist(x, y):   # distance used to find y's nearest neighbour x
        (kx, i), (ky, j) = x, y
        if kx == "r" and ky == "r":
            return float(d_rr[i, j])
        if kx == "s" and ky == "s":
            return float(d_ss[i, j])
        return float(d_sr[j, i]) if kx == "r" else float(d_sr[i, j])

    right = 0
    for y in items:
        best = min((x for x in items if x != y), key=lambda x: dist(x, y))   # min() keeps the first on ties
        right += best[0] == y[0]
    return right / len(items)


def test_one_nna_matches_loop_on_random_matrices():
    g = torch.Generator().manual_seed(2)
    s, r = 6, 5
    d_sr = torch.rand(s, r, generator=g, dtype=torch.float64)
    d_ss = torch.rand(s, s, generator=g, dtype=torch.float64)
    d_rr = torch.rand(r, r, generator=g, dtype=torch.float64)
    assert one_nna(d_ss, d_sr, d_rr) == pytest.approx(brute_1nna(d_ss, d_sr, d_rr))


def test_one_nna_ties_go_to_references_first():
    # every distance equal: every shape's nearest is the first reference (or the second, for that one)
    s, r = 3, 2
    acc, acc_r, acc_s = one_nna(torch.ones(s, s), torch.ones(s, r), torch.ones(r, r), return_parts=True)
    assert (acc_r, acc_s) == (1.0, 0.0)
    assert acc == pytest.approx(r / (s + r))


def test_one_nna_separated_sets_and_same_distribution():
    far = pairwise_cd(_set(8, 50, seed=3, center=3.0), _set(8, 50, seed=4))
    near_ss = pairwise_cd(_set(8, 50, seed=3, center=3.0))
    rr = pairwise_cd(_set(8, 50, seed=4))
    assert one_nna(near_ss, far, rr) == 1.0
    # two samples of one distribution of shapes (random ellipsoid scales): near 50%
    g = torch.Generator().manual_seed(5)
    base = torch.nn.functional.normalize(torch.randn(64, 3, generator=g, dtype=torch.float64), dim=-1)
    scales = 0.5 + torch.rand(80, 1, 3, generator=g, dtype=torch.float64)
    clouds = base * scales
    gen, ref = clouds[:40], clouds[40:]
    acc = one_nna(pairwise_cd(gen), pairwise_cd(ref, gen).T, pairwise_cd(ref))
    assert 0.3 <= acc <= 0.7, acc


def test_matrix_checks_name_the_argument():
    with pytest.raises(ValueError, match="dist_sr must be a 2-D"):
        mmd(torch.ones(3))
    with pytest.raises(ValueError, match="dist_sr is empty"):
        coverage(torch.ones(0, 3))
    with pytest.raises(ValueError, match="dist_ss must have 2 rows"):
        one_nna(torch.ones(3, 3), torch.ones(2, 4), torch.ones(4, 4))
    with pytest.raises(ValueError, match="dist_rr must have 4 rows"):
        one_nna(torch.ones(2, 2), torch.ones(2, 4), torch.ones(3, 3))
    with pytest.raises(ValueError, match="dist_sr contains 1 NaN"):
        mmd(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(TypeError, match="dist_sr must be a floating-point"):
        mmd(torch.ones(2, 2, dtype=torch.long))


# ---------------------------------------------------------------- pairwise matrices == per-pair functions

@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_pairwise_cd_equals_per_pair(batch_size):
    a, b = _set(3, 20, seed=6), _set(4, 15, seed=7)
    m = pairwise_cd(a, b, batch_size=batch_size)
    assert m.shape == (3, 4)
    for i, j in itertools.product(range(3), range(4)):
        torch.testing.assert_close(m[i, j], chamfer_distance(a[i:i + 1], b[j:j + 1])[0])
    self_m = pairwise_cd(a, batch_size=batch_size)
    torch.testing.assert_close(self_m, pairwise_cd(a, a.clone(), batch_size=batch_size), rtol=1e-12, atol=1e-15)
    assert torch.all(self_m.diagonal() == 0)


@pytest.mark.parametrize("method", ["exact", "approxmatch", "sinkhorn"])
def test_pairwise_emd_equals_per_pair(method):
    a, b = _set(3, 12, seed=8), _set(2, 12, seed=9, spread=0.2)
    m = pairwise_emd(a, b, method=method, batch_size=2)
    for i, j in itertools.product(range(3), range(2)):
        torch.testing.assert_close(m[i, j], emd(a[i:i + 1], b[j:j + 1], method=method)[0])
    self_m = pairwise_emd(a, method=method)
    for i, j in itertools.product(range(3), range(3)):
        want = 0.0 if (i == j and method == "exact") else emd(a[i:i + 1], a[j:j + 1], method=method)[0]
        torch.testing.assert_close(self_m[i, j], torch.as_tensor(want, dtype=a.dtype))


def test_pairwise_rejects_bad_input():
    a = _set(2, 10, seed=10)
    with pytest.raises(ValueError, match="same number of points N for the EMD"):
        pairwise_emd(a, _set(2, 11, seed=11))
    with pytest.raises(ValueError, match="A and B must share d"):
        pairwise_cd(a, torch.randn(2, 10, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="B is empty"):
        pairwise_cd(a, torch.randn(0, 10, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="A must be 3-D"):
        pairwise_cd(torch.randn(10, 3))
    with pytest.raises(TypeError, match="batch_size must be an int"):
        pairwise_cd(a, batch_size=1.5)


# ---------------------------------------------------------------- JSD

def test_jsd_zero_for_identical_sets_and_one_for_disjoint():
    a = _set(4, 200, seed=12, spread=0.1)
    assert jsd(a, a.clone()) == 0.0
    assert jsd(a, a[torch.tensor([2, 0, 3, 1])]) == pytest.approx(0.0, abs=1e-12)   # order of shapes: no effect
    left = _set(3, 100, seed=13, center=-0.2, spread=0.01)
    right = _set(3, 100, seed=14, center=0.2, spread=0.01)
    assert jsd(left, right) == pytest.approx(1.0)          # no shared cell: one bit


def test_jsd_counts_each_point_in_its_nearest_in_sphere_cell():
    # brute force: nearest of PointFlow's in-sphere grid centres, for points near the sphere's boundary too
    from gfcore.metrics.generation import _grid_cells, _occupancy

    g = torch.Generator().manual_seed(15)
    direction = torch.nn.functional.normalize(torch.randn(1, 600, 3, generator=g, dtype=torch.float64), dim=-1)
    radius = torch.rand(1, 600, 1, generator=g, dtype=torch.float64) ** (1 / 3) * 0.5
    pts = direction * radius
    centres, inside = _grid_cells(28, "cpu")
    kept = centres[inside].numpy()
    p = pts[0].numpy()
    nearest = np.argmin(((p[:, None, :] - kept[None]) ** 2).sum(-1), axis=1)
    ref = np.bincount(nearest, minlength=len(kept))
    np.testing.assert_array_equal(_occupancy("x", pts, 28, "raise").numpy(), ref)


def test_jsd_refuses_data_outside_the_sphere_and_warns_on_request():
    inside = _set(2, 50, seed=16, spread=0.05)
    outside = inside * 1.0
    outside[0, 0] = torch.tensor([0.45, 0.45, 0.0], dtype=torch.float64)      # in the cube, outside the sphere
    with pytest.raises(ValueError, match=r"reference has points up to radius 0.636.*: 1 of 100 points \(1%\) lie "
                                         "outside"):
        jsd(inside, outside)
    with pytest.warns(UserWarning, match=r"generated has points up to radius .*1 of 100 points .*nearest cell"):
        value = jsd(outside, inside, on_outside="warn")
    assert 0.0 < value < 1.0
    with pytest.raises(ValueError, match="generated must have last dimension 3"):
        jsd(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match="on_outside must be one of"):
        jsd(inside, inside, on_outside="clip")


# ---------------------------------------------------------------- evaluate

def test_evaluate_matches_the_matrices():
    gen, ref = _set(4, 24, seed=17), _set(5, 24, seed=18, spread=0.12)
    res = evaluate(gen, ref, emd_method="exact", return_matrices=True)
    assert set(res) == {"MMD-CD", "COV-CD", "1-NNA-CD", "MMD-EMD", "COV-EMD", "1-NNA-EMD", "JSD", "matrices"}
    cd_sr = pairwise_cd(gen, ref)
    assert res["MMD-CD"] == pytest.approx(mmd(cd_sr))
    assert res["COV-CD"] == coverage(cd_sr)
    assert res["1-NNA-CD"] == pytest.approx(one_nna(pairwise_cd(gen), cd_sr, pairwise_cd(ref)))
    emd_sr = pairwise_emd(gen, ref)
    assert res["MMD-EMD"] == pytest.approx(mmd(emd_sr))
    assert res["1-NNA-EMD"] == pytest.approx(one_nna(pairwise_emd(gen), emd_sr, pairwise_emd(ref)))
    assert res["JSD"] == pytest.approx(jsd(gen, ref))
    torch.testing.assert_close(res["matrices"]["EMD"]["sr"], emd_sr)


def test_evaluate_counts_points_outside_the_jsd_sphere_by_default_and_refuses_them_on_request():
    """The protocol (the official code) counts points past radius 0.5 in their nearest cell: evaluate's default,
    with a warning that says how many; jsd_on_outside="raise" keeps the strict check."""
    gen, ref = _set(3, 40, seed=30, spread=0.08), _set(3, 40, seed=31, spread=0.08)
    reach = gen.clone()
    direction = torch.nn.functional.normalize(reach[0, :7], dim=-1)
    reach[0, :7] = direction * 0.54                                  # as PointFlow-normalised clouds reach
    assert int((reach.norm(dim=-1) > 0.501).sum()) == 7 and int((ref.norm(dim=-1) > 0.501).sum()) == 0
    with pytest.warns(UserWarning, match=r"generated has points up to radius 0.54.*: 7 of 120 points \(5.8%\) lie "
                                         "outside.*counted in their nearest cell"):
        res = evaluate(reach, ref, emd_method="exact")
    with pytest.warns(UserWarning):
        want = jsd(reach, ref, on_outside="warn")
    assert res["JSD"] == pytest.approx(want) and res["JSD"] != pytest.approx(jsd(gen, ref))
    with pytest.raises(ValueError, match="7 of 120 points"):
        evaluate(reach, ref, jsd_on_outside="raise")
    with warnings.catch_warnings():                                  # clouds inside the sphere: no warning
        warnings.simplefilter("error")
        evaluate(gen, ref, emd_method="exact")


def test_evaluate_approxmatch_uses_pointflows_argument_order():
    gen, ref = _set(3, 16, seed=19), _set(3, 16, seed=20, spread=0.13)
    res = evaluate(gen, ref, with_jsd=False, return_matrices=True)
    torch.testing.assert_close(res["matrices"]["EMD"]["sr"], pairwise_emd(ref, gen, method="approxmatch").T)
    assert "JSD" not in res


def test_evaluate_rejects_bad_input_before_the_long_loops():
    gen = _set(3, 16, seed=21)
    with pytest.raises(ValueError, match="generated and reference must share N and d"):
        evaluate(gen, _set(3, 17, seed=22))
    with pytest.raises(ValueError, match="emd_method must be one of"):
        evaluate(gen, gen, emd_method="hungarian")
    with pytest.raises(ValueError, match="has points up to radius"):             # the strict JSD check
        evaluate(gen * 10, gen * 10, jsd_on_outside="raise")
    with pytest.raises(ValueError, match="reference is empty"):
        evaluate(gen, gen[:0])


def test_format_table_names_the_protocol_and_scales():
    res = {"MMD-CD": 0.0012, "COV-CD": 0.5, "1-NNA-CD": 0.75, "JSD": 0.02}
    text = format_table(res, protocol="pointflow")
    assert "pointflow" in text and "MMD-CD x1e3" in text and "1-NNA-CD %" in text
    assert "1.200" in text and "75.000" in text and "2.000" in text
    with pytest.raises(ValueError, match="none of the table's keys"):
        format_table({"foo": 1.0})


def test_metrics_is_pure_tensor_code():
    import ast
    from pathlib import Path

    for path in Path(metrics.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module] + \
                [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        bad = [n for n in names if n.startswith(("gfcore.data", "gfcore.models", "gfcore.train", "gfcore.viz",
                                                 "matplotlib", "pyvista"))]
        assert not bad, (path.name, bad)
