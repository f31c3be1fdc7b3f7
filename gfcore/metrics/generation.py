"""Metrics of a generated set of shapes against a reference set (PointFlow's definitions).

Shape letters: ``S`` generated shapes, ``R`` reference shapes, ``N`` points per shape, ``d`` dimension. A
distance ``D`` between two clouds is the Chamfer distance or the EMD.

- MMD (minimum matching distance): for each reference, the distance to its nearest generated shape, averaged
  over references: ``MMD = (1/R) sum_r min_s D(s, r)``. Rewards fidelity; blind to how many references are
  covered.
- COV (coverage): the fraction of references that are the nearest reference of at least one generated shape.
  Rewards diversity; blind to quality.
- 1-NNA (1-nearest-neighbour accuracy): label references 1 and generated shapes 0, classify every shape of the
  union by its nearest *other* shape, report the accuracy. 50% when the two sets are indistinguishable, near
  100% when they differ, and below 50% when the generated shapes sit closer to the references than the
  references to each other (copies).
- JSD: Jensen-Shannon divergence between the two sets' point distributions on a 28^3 grid.

Pairwise matrices come from :func:`pairwise_cd` and :func:`pairwise_emd`; :func:`evaluate` computes the table.

Taught in chapter 6 (Measuring quality).
"""
from __future__ import annotations

import math
import warnings

import torch
from tqdm.auto import tqdm

from gfcore import _checks
from gfcore.metrics import _common
from gfcore.metrics.chamfer import chamfer_distance
from gfcore.metrics.transport import EMD_COSTS, EMD_METHODS, emd

# How the papers print each quantity (PointFlow's tables): value * scale.
PAPER_SCALES = {"MMD-CD": 1e3, "MMD-EMD": 1e2, "COV-CD": 1e2, "COV-EMD": 1e2, "1-NNA-CD": 1e2, "1-NNA-EMD": 1e2,
                "JSD": 1e2}


# ------------------------------------------------------------------------------------------------ pairwise
def _default_pairs_per_batch(n: int, m: int, device: torch.device) -> int:
    return max(1, (8 * _common.chunk_elements(device)) // (n * m))


def _pairwise(fn, a: torch.Tensor, b: torch.Tensor | None, *, symmetric: bool, batch_size, disable: bool,
              desc: str) -> torch.Tensor:
    """``(|A|, |B|)`` matrix of ``fn(A[i], B[j])``, pairs batched; ``b=None``: ``A`` against itself."""
    self_pairs = b is None
    if self_pairs:
        b = a
    if a.shape[2] != b.shape[2]:
        raise ValueError(f"A and B must share d, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"A is {a.dtype} but B is {b.dtype}; convert one of them")
    if a.device != b.device:
        raise ValueError(f"A is on {a.device} but B is on {b.device}")
    na, nb = a.shape[0], b.shape[0]
    if batch_size is None:
        batch_size = _default_pairs_per_batch(a.shape[1], b.shape[1], a.device)
    else:
        batch_size = _checks.positive_int("batch_size", batch_size)
    ii, jj = torch.meshgrid(torch.arange(na), torch.arange(nb), indexing="ij")
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    if self_pairs:
        keep = ii < jj if symmetric else ii != jj          # the diagonal of a cloud with itself is set below
        ii, jj = ii[keep], jj[keep]
    out = torch.zeros(na, nb, dtype=a.dtype, device=a.device)
    with torch.no_grad():
        for start in tqdm(range(0, len(ii), batch_size), disable=disable, desc=desc):
            i, j = ii[start:start + batch_size], jj[start:start + batch_size]
            out[i, j] = fn(a[i.to(a.device)], b[j.to(b.device)])
    if self_pairs:
        if symmetric:
            out = out + out.T
        else:
            diag = torch.arange(na)
            for start in range(0, na, batch_size):
                k = diag[start:start + batch_size]
                out[k, k] = fn(a[k.to(a.device)], a[k.to(a.device)])
    return out


def pairwise_cd(A: torch.Tensor, B: torch.Tensor | None = None, *, squared: bool = True,
                batch_size: int | None = None, disable: bool = True) -> torch.Tensor:
    """All Chamfer distances between two sets of clouds: ``M[i, j] = chamfer_distance(A[i], B[j])``.

    Args:
        A: ``(S, N, d)`` clouds.
        B: ``(R, M, d)`` clouds, or ``None`` for ``A`` against itself (the symmetric half is computed once; the
            diagonal is 0).
        squared: squared distances (PointFlow) or plain ones (see :func:`~gfcore.metrics.chamfer_distance`).
        batch_size: pairs per batch (default: bounded memory).
        disable: hide the tqdm progress bar (default ``True``).

    Returns:
        ``(S, R)`` matrix in ``A``'s dtype and device.

    Raises:
        ValueError, TypeError: empty sets or clouds, NaN/inf, different ``d``, dtype or device.

    Taught in chapter 6.
    """
    A = _common.cloud_set("A", A)
    B = None if B is None else _common.cloud_set("B", B)
    return _pairwise(lambda x, y: chamfer_distance(x, y, squared=squared), A, B, symmetric=True,
                     batch_size=batch_size, disable=disable, desc="pairwise CD")


def pairwise_emd(A: torch.Tensor, B: torch.Tensor | None = None, *, method: str = "exact",
                 cost: str = "euclidean", batch_size: int | None = None, disable: bool = True,
                 **options) -> torch.Tensor:
    """All EMDs between two sets of clouds: ``M[i, j] = emd(A[i], B[j], method=method, cost=cost)``.

    Args:
        A: ``(S, N, d)`` clouds.
        B: ``(R, N, d)`` clouds with the same ``N``, or ``None`` for ``A`` against itself (exact: the symmetric
            half once and a zero diagonal; the approximations, which are not symmetric, every ordered pair).
        method, cost, **options: as :func:`~gfcore.metrics.emd`.
        batch_size: pairs per batch (default: bounded memory).
        disable: hide the tqdm progress bar (default ``True``).

    Returns:
        ``(S, R)`` matrix in ``A``'s dtype and device.

    Raises:
        ValueError, TypeError: as :func:`pairwise_cd`, different ``N``, unknown ``method`` or ``cost``.

    Taught in chapter 6.
    """
    _checks.choice("method", method, EMD_METHODS)
    _checks.choice("cost", cost, EMD_COSTS)
    A = _common.cloud_set("A", A)
    B = None if B is None else _common.cloud_set("B", B)
    if B is not None and A.shape[1] != B.shape[1]:
        raise ValueError(f"A and B must have the same number of points N for the EMD, got N={A.shape[1]} in A "
                         f"and N={B.shape[1]} in B")
    return _pairwise(lambda x, y: emd(x, y, method=method, cost=cost, **options), A, B,
                     symmetric=method == "exact", batch_size=batch_size, disable=disable,
                     desc=f"pairwise EMD ({method})")


# ------------------------------------------------------------------------------------------------ from matrices
def mmd(dist_sr: torch.Tensor) -> float:
    """Minimum matching distance: ``(1/R) sum_r min_s D(s, r)`` (PointFlow's direction: reference to nearest
    generated shape).

    Args:
        dist_sr: ``(S, R)`` distances, generated shapes in rows, references in columns.

    Returns:
        The MMD, a float in the distance's units.

    Raises:
        ValueError, TypeError: not a non-empty 2-D floating tensor, NaN.

    Taught in chapter 6.
    """
    dist_sr = _common.distance_matrix("dist_sr", dist_sr)
    return float(dist_sr.min(dim=0).values.double().mean())


def coverage(dist_sr: torch.Tensor) -> float:
    """Coverage: the fraction of references that are the nearest reference of at least one generated shape.

    Args:
        dist_sr: ``(S, R)`` distances, generated shapes in rows, references in columns.

    Returns:
        COV in ``[0, 1]`` (ties: the first nearest reference counts).

    Raises:
        ValueError, TypeError: as :func:`mmd`.

    Taught in chapter 6.
    """
    dist_sr = _common.distance_matrix("dist_sr", dist_sr)
    return dist_sr.argmin(dim=1).unique().numel() / dist_sr.shape[1]


def one_nna(dist_ss: torch.Tensor, dist_sr: torch.Tensor, dist_rr: torch.Tensor, *,
            return_parts: bool = False):
    """1-nearest-neighbour accuracy of telling generated shapes from references, leave-one-out over the union.

    Every shape of the union (references labelled 1, generated shapes 0) is classified by the label of its
    nearest other shape (itself excluded); the result is the accuracy over all ``S + R`` shapes. The nearest
    neighbour of ``y`` is ``argmin_x D(x, y)`` (PointFlow's convention; it matters only for the approximate EMD,
    which is not symmetric). Ties go to the first candidate, references listed before generated shapes (as
    PointFlow orders the union).

    Args:
        dist_ss: ``(S, S)`` distances among generated shapes, ``[i, j] = D(s_i, s_j)`` (diagonal ignored).
        dist_sr: ``(S, R)`` distances between generated shape ``i`` and reference ``j`` (:func:`evaluate` takes
            them from ``pairwise(reference, generated).T``, PointFlow's order for the approximate EMD).
        dist_rr: ``(R, R)`` distances among references, ``[i, j] = D(r_i, r_j)`` (diagonal ignored).
        return_parts: also return the accuracies on the references and on the generated shapes alone.

    Returns:
        1-NNA in ``[0, 1]`` (0.5 is ideal), or ``(acc, acc_references, acc_generated)``.

    Raises:
        ValueError, TypeError: malformed matrices, or shapes that do not fit together.

    Taught in chapter 6.
    """
    dist_sr = _common.distance_matrix("dist_sr", dist_sr)
    s, r = dist_sr.shape
    dist_ss = _common.distance_matrix("dist_ss", dist_ss, rows=s, cols=s)
    dist_rr = _common.distance_matrix("dist_rr", dist_rr, rows=r, cols=r)
    # D[x, y] = D(x, y); the nearest neighbour of y is argmin_x D[x, y] (column-wise, as PointFlow)
    full = torch.cat([torch.cat([dist_rr, dist_sr.T], dim=1),
                      torch.cat([dist_sr, dist_ss], dim=1)], dim=0).double()      # references first
    full.fill_diagonal_(math.inf)
    label = torch.cat([torch.ones(r), torch.zeros(s)]).to(full.device)
    predicted = label[full.argmin(dim=0)]
    right = (predicted == label).double()
    acc = float(right.mean())
    if return_parts:
        return acc, float(right[:r].mean()), float(right[r:].mean())
    return acc


# ------------------------------------------------------------------------------------------------ JSD
JSD_RESOLUTION = 28
JSD_RADIUS = 0.5
_JSD_TOLERANCE = 1e-3            # PointFlow's bound 0.5 + 1e-3


def _grid_cells(resolution: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres of the ``resolution^3`` grid on ``[-0.5, 0.5]^3`` and the mask of those inside the sphere."""
    axis = torch.linspace(-0.5, 0.5, resolution, dtype=torch.float64, device=device)
    centres = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    return centres, centres.norm(dim=-1) <= JSD_RADIUS


def _occupancy(name: str, clouds: torch.Tensor, resolution: int, on_outside: str) -> torch.Tensor:
    """Points per in-sphere grid cell, each point counted in its nearest in-sphere cell: ``(cells,)``."""
    pts = clouds.detach().reshape(-1, 3).double()
    norms = pts.norm(dim=-1)
    radius = float(norms.max())
    if radius > JSD_RADIUS + _JSD_TOLERANCE:
        n_out = int((norms > JSD_RADIUS + _JSD_TOLERANCE).sum())
        msg = (f"{name} has points up to radius {radius:.4g} from the origin, but the JSD grid covers the sphere "
               f"of radius {JSD_RADIUS} (PointFlow's 28^3 grid on [-0.5, 0.5]^3, corner cells dropped): {n_out} "
               f"of {len(pts)} points ({100 * n_out / len(pts):.2g}%) lie outside")
        if on_outside == "raise":
            raise ValueError(msg + "; scale the clouds into it first (e.g. divide data in the unit ball by 2), "
                             "or pass on_outside='warn' to count outside points in their nearest cell "
                             "(evaluate: jsd_on_outside='warn', its default, or with_jsd=False)")
        warnings.warn(msg + "; they are counted in their nearest cell inside the sphere, as the official code "
                      "(PointFlow's) does", UserWarning, stacklevel=3)
    centres, inside = _grid_cells(resolution, pts.device)
    step = 1.0 / (resolution - 1)
    ijk = torch.clamp(torch.round((pts + 0.5) / step), 0, resolution - 1).long()
    cell = (ijk[:, 0] * resolution + ijk[:, 1]) * resolution + ijk[:, 2]   # nearest cell of the full grid
    outside = ~inside[cell]
    if outside.any():          # its nearest grid cell is a dropped corner: search the cells inside the sphere
        kept = centres[inside]
        kept_ids = inside.nonzero().squeeze(1)
        far = pts[outside]
        best = torch.cat([torch.cdist(far[i:i + 4096], kept).argmin(dim=1) for i in range(0, len(far), 4096)])
        cell[outside] = kept_ids[best]
    counts = torch.bincount(cell, minlength=resolution**3).double()
    return counts[inside]


def _entropy_bits(p: torch.Tensor) -> torch.Tensor:
    nz = p[p > 0]
    return -(nz * torch.log2(nz)).sum()


def jsd(generated: torch.Tensor, reference: torch.Tensor, *, resolution: int = JSD_RESOLUTION,
        on_outside: str = "raise") -> float:
    """Jensen-Shannon divergence (bits) between the point distributions of two sets on PointFlow's grid.

    Every point of every cloud is counted in its nearest cell of a ``resolution^3`` grid of cell centres on
    ``[-0.5, 0.5]^3`` with the corner cells outside the sphere of radius 0.5 dropped (PointFlow's, after
    Achlioptas et al.); the two normalised histograms ``P``, ``Q`` give ``JSD = H((P + Q) / 2) - (H(P) + H(Q)) / 2``.

    It assumes the clouds lie inside the sphere of radius 0.5 (PointFlow: raw PC15k coordinates). Data in
    ``[-1, 1]`` would pile its outer half into the boundary cells, so points farther than ``0.5 + 1e-3`` from
    the origin raise an error here (or, with ``on_outside="warn"``, a warning that says how many points were
    outside), never a silent clip. With ``"warn"`` they are counted in their nearest cell inside the sphere,
    which is what the official code does (PointFlow-normalised ShapeNet clouds routinely reach radius ~0.54):
    :func:`evaluate`, the protocol's table, does that by default.

    Args:
        generated: ``(S, N, 3)`` clouds.
        reference: ``(R, M, 3)`` clouds.
        resolution: grid cells per axis (PointFlow: 28).
        on_outside: ``"raise"`` (default) or ``"warn"`` (count them in their nearest cell, as the protocol
            does) for points outside the sphere.

    Returns:
        JSD in bits, in ``[0, 1]``; 0 for identical histograms.

    Raises:
        ValueError: points outside the sphere (``on_outside="raise"``), ``d != 3``, empty sets, NaN.

    Taught in chapter 6.
    """
    _checks.choice("on_outside", on_outside, ("raise", "warn"))
    resolution = _checks.positive_int("resolution", resolution)
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    generated = _checks.point_cloud("generated", generated, batched=True, dim=3)
    reference = _checks.point_cloud("reference", reference, batched=True, dim=3)
    p = _occupancy("generated", generated, resolution, on_outside)
    q = _occupancy("reference", reference, resolution, on_outside)
    p, q = p / p.sum(), q / q.sum()
    return float(_entropy_bits((p + q) / 2) - (_entropy_bits(p) + _entropy_bits(q)) / 2)


# ------------------------------------------------------------------------------------------------ the table
def evaluate(generated: torch.Tensor, reference: torch.Tensor, *, emd_method: str = "approxmatch",
             emd_cost: str = "euclidean", with_jsd: bool = True, jsd_on_outside: str = "warn",
             batch_size: int | None = None, disable: bool = True, return_matrices: bool = False) -> dict:
    """The generation table: MMD, COV and 1-NNA by Chamfer and by EMD, and JSD (PointFlow's definitions).

    Matrices are computed as PointFlow does: reference x generated for MMD/COV (the approximate EMD is not
    symmetric; its first argument is the reference), reference x reference and generated x generated for 1-NNA.
    Values are raw (distances in the data's units, fractions in ``[0, 1]``); :data:`PAPER_SCALES` holds the
    factors the papers print them with. The coordinates the clouds are given in *are* the protocol: see
    ``gfcore.data.normalize.PROTOCOLS``.

    Args:
        generated: ``(S, N, d)`` generated clouds.
        reference: ``(R, N, d)`` reference clouds (the same ``N``: the EMD matches points one to one).
        emd_method: ``"approxmatch"`` (default: the published tables' algorithm), ``"exact"`` or ``"sinkhorn"``.
        emd_cost: ``"euclidean"`` (PointFlow, ShapeGF) or ``"squared"`` (PVD, LION).
        with_jsd: add ``"JSD"`` (3-D clouds, meant to lie inside the sphere of radius 0.5; see :func:`jsd`).
        jsd_on_outside: ``"warn"`` (default: the protocol's behaviour, as the official code computes it; points
            outside the sphere are counted in their nearest cell, with a warning that says how many there were)
            or ``"raise"`` (the strict check: refuse such clouds), passed to :func:`jsd`.
        batch_size, disable: passed to :func:`pairwise_cd` / :func:`pairwise_emd`.
        return_matrices: also return the six matrices under ``"matrices"``.

    Returns:
        ``{"MMD-CD", "COV-CD", "1-NNA-CD", "MMD-EMD", "COV-EMD", "1-NNA-EMD"[, "JSD"]}`` floats (plus
        ``"matrices"`` when asked: ``{"CD": {"sr", "ss", "rr"}, "EMD": {...}}``).

    Raises:
        ValueError, TypeError: as the pairwise functions and :func:`jsd` (points outside its sphere only with
            ``jsd_on_outside="raise"``).

    Taught in chapter 6 (Measuring quality).
    """
    _checks.choice("emd_method", emd_method, EMD_METHODS)
    _checks.choice("emd_cost", emd_cost, EMD_COSTS)
    generated = _common.cloud_set("generated", generated)
    reference = _common.cloud_set("reference", reference)
    if generated.shape[1:] != reference.shape[1:]:
        raise ValueError(f"generated and reference must share N and d, got shapes {tuple(generated.shape)} and "
                         f"{tuple(reference.shape)}")
    if generated.dtype != reference.dtype:
        raise TypeError(f"generated is {generated.dtype} but reference is {reference.dtype}")
    if with_jsd:   # checked first: a JSD that cannot be computed fails before the long loops
        jsd_value = jsd(generated, reference, on_outside=jsd_on_outside)
    kw = dict(batch_size=batch_size, disable=disable)
    matrices = {}
    for name, fn in (("CD", lambda a, b, **k: pairwise_cd(a, b, **k)),
                     ("EMD", lambda a, b, **k: pairwise_emd(a, b, method=emd_method, cost=emd_cost, **k))):
        matrices[name] = {"sr": fn(reference, generated, **kw).T, "ss": fn(generated, None, **kw),
                          "rr": fn(reference, None, **kw)}
    out = {}
    for name in ("CD", "EMD"):
        m = matrices[name]
        out[f"MMD-{name}"] = mmd(m["sr"])
        out[f"COV-{name}"] = coverage(m["sr"])
        out[f"1-NNA-{name}"] = one_nna(m["ss"], m["sr"], m["rr"])
    if with_jsd:
        out["JSD"] = jsd_value
    if return_matrices:
        out["matrices"] = matrices
    return out


def format_table(results: dict, *, protocol: str | None = None, paper_scale: bool = True) -> str:
    """A printable one-row table of :func:`evaluate`'s results, scaled as the papers print them.

    Args:
        results: the dict from :func:`evaluate`.
        protocol: the protocol's name or description, printed in the header (e.g. a key of
            ``gfcore.data.normalize.PROTOCOLS``).
        paper_scale: multiply by :data:`PAPER_SCALES` and say so in the header.

    Returns:
        A multi-line string.

    Taught in chapter 6.
    """
    keys = [k for k in PAPER_SCALES if k in results]
    if not keys:
        raise ValueError(f"results holds none of the table's keys {list(PAPER_SCALES)}; got {sorted(results)}")
    cells = []
    for k in keys:
        scale = PAPER_SCALES[k] if paper_scale else 1.0
        head = k if not paper_scale else (f"{k} %" if scale == 100 and not k.startswith(("MMD", "JSD"))
                                          else f"{k} x{_power(scale)}")
        cells.append((head, f"{results[k] * scale:.3f}"))
    width = [max(len(h), len(v)) for h, v in cells]
    title = f"generation metrics ({protocol})" if protocol else "generation metrics"
    lines = [title, "  ".join(h.rjust(w) for (h, _), w in zip(cells, width)),
             "  ".join(v.rjust(w) for (_, v), w in zip(cells, width))]
    return "\n".join(lines)


def _power(scale: float) -> str:
    return f"1e{round(math.log10(scale))}"
