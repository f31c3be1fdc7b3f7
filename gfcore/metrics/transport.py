"""Earth mover's distance between equal-size point clouds: exact, Fan et al.'s approximate matching, Sinkhorn.

    EMD(a, b) = min over bijections phi of (1/N) sum_i c(a_i, b_phi(i)),
    c(x, y) = |x - y|   (cost="euclidean": PointFlow, ShapeGF, DPM)   or   |x - y|^2   (cost="squared": PVD, LION)

Three ways to compute it, one signature (``(B, N, d), (B, N, d) -> (B,)``, divided by ``N``):

- ``exact``: the optimal assignment (``scipy.optimize.linear_sum_assignment`` per pair, on the CPU in float64);
  the reference. About 0.7 s per 2048-point pair on one CPU core.
- ``approxmatch``: a batched PyTorch version of the approximate matching of Fan et al. (2017) behind the CUDA
  kernel that PointFlow and ShapeGF report with (and, with the squared cost, PVD and LION). Coarse-to-fine soft
  matching over a ladder of Gaussian kernels: it is an upper bound on the exact value, and published tables are
  reproduced only through it (see :func:`emd_approxmatch` for the measured gap).
- ``sinkhorn``: entropic optimal transport in the log domain with epsilon scaling, the fast option on a GPU.

Taught in chapter 6 (Measuring quality).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from gfcore import _checks
from gfcore.metrics import _common

EMD_METHODS = ("exact", "approxmatch", "sinkhorn")
EMD_COSTS = ("euclidean", "squared")

# The kernel widths of the approximate matching: level k multiplies squared distances by -4^j. PointFlow's and
# ShapeGF's kernel (via pcgan-pytorch) stops at 4^-1; Fan et al.'s original ladder and the kernel of PVD/LION
# add a last level of width 0 (every remaining pair equally weighted), which places all the remaining mass.
APPROXMATCH_LEVELS = {
    "pointflow": tuple(4.0**j for j in range(7, -2, -1)),
    "complete": tuple(4.0**j for j in range(7, -2, -1)) + (0.0,),
}
# Which ladder each cost's published numbers were computed with.
_LEVELS_FOR_COST = {"euclidean": "pointflow", "squared": "complete"}


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All squared distances from exact differences, one coordinate at a time: ``(G, N, d), (G, M, d) ->
    (G, N, M)`` (no ``|x|^2 + |y|^2 - 2 x.y`` cancellation, no ``(G, N, M, d)`` temporary)."""
    out = (x[:, :, None, 0] - y[:, None, :, 0]).square_()
    for k in range(1, x.shape[-1]):
        out.add_((x[:, :, None, k] - y[:, None, :, k]).square_())
    return out


def _groups(batch: int, n: int, m: int, device: torch.device, matrices: int):
    """Slices of the batch so that ``matrices`` temporaries of ``(G, N, M)`` stay within the element budget."""
    size = max(1, (4 * _common.chunk_elements(device)) // (matrices * n * m))
    return [slice(i, min(batch, i + size)) for i in range(0, batch, size)]


# ------------------------------------------------------------------------------------------------ exact
def emd_exact(a: torch.Tensor, b: torch.Tensor, *, cost: str = "euclidean") -> torch.Tensor:
    """Exact EMD: the optimal one-to-one matching's cost divided by ``N`` (``linear_sum_assignment`` per pair).

    The assignment is solved on the CPU in float64; the cost of the chosen matching is then evaluated in
    PyTorch on the inputs' device and dtype, so the result is differentiable (the matching held fixed).

    Args:
        a: ``(B, N, d)`` point clouds.
        b: ``(B, N, d)`` point clouds, the same ``N``.
        cost: ``"euclidean"`` (``|x - y|``) or ``"squared"`` (``|x - y|^2``).

    Returns:
        ``(B,)`` distances.

    Raises:
        ValueError, TypeError: bad clouds (see :func:`emd`), unknown ``cost``.

    Taught in chapter 6.
    """
    from scipy.optimize import linear_sum_assignment

    _checks.choice("cost", cost, EMD_COSTS)
    a, b = _common.pair(a, b, same_points=True)
    a64 = a.detach().to("cpu", torch.float64)
    b64 = b.detach().to("cpu", torch.float64)
    perms = []
    for i in range(a.shape[0]):
        c = _sq_dists(a64[i:i + 1], b64[i:i + 1])[0]
        if cost == "euclidean":
            c = c.sqrt_()
        _, col = linear_sum_assignment(c.numpy())
        perms.append(torch.from_numpy(np.ascontiguousarray(col)))
    perm = torch.stack(perms).to(a.device)
    matched = torch.gather(b, 1, perm.unsqueeze(-1).expand(-1, -1, b.shape[-1]))
    d2 = (a - matched).square().sum(-1)
    return (d2.sqrt() if cost == "euclidean" else d2).mean(1)


# ------------------------------------------------------------------------------------------------ approxmatch
def _bmv(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(G, N, M) @ (G, M) -> (G, N)``."""
    return torch.bmm(k, v.unsqueeze(-1)).squeeze(-1)


def _bvm(v: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``(G, N) @ (G, N, M) -> (G, M)``."""
    return torch.bmm(v.unsqueeze(1), k).squeeze(1)


def _approxmatch_group(x, y, levels, cost):
    """Fan et al.'s matching on one group of pairs: returns ``(total cost, unmatched mass)``, both ``(G,)``.

    The matching is built without autograd (in place, four ``(G, N, M)`` buffers); when ``x`` or ``y`` need
    gradients the flows are also summed into a plan ``P`` and the cost ``sum P_ij c(x_i, y_j)`` is recomputed with
    ``P`` held fixed, which is the gradient the CUDA kernel gives.
    """
    g, n, m = x.shape[0], x.shape[1], y.shape[1]
    need_grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
    with torch.no_grad():
        d2 = _sq_dists(x, y)
        c = d2.sqrt() if cost == "euclidean" else d2.clone()
        remain_a = x.new_ones(g, n)                      # mass of each point of a not yet matched
        remain_b = x.new_ones(g, m)
        total = x.new_zeros(g)
        plan = torch.zeros_like(d2) if need_grad else None
        k = torch.empty_like(d2)
        tiny = 1e-9
        for width in levels:
            torch.mul(d2, -width, out=k).exp_()          # Gaussian kernel of this level, (G, N, M)
            # each point of a offers its remaining mass to b in proportion to kernel x b's remaining mass
            ratio_a = remain_a / (_bmv(k, remain_b) + tiny)
            demand_b = remain_b * _bvm(ratio_a, k)       # mass that a asks of each point of b
            # a point of b asked for more than it has gives what it has, in the same proportions
            ratio_b = remain_b * torch.clamp(remain_b / (demand_b + tiny), max=1.0)
            remain_b = torch.clamp(remain_b - demand_b, min=0.0)
            # the flow of this level is ratio_a[i] * k[i, j] * ratio_b[j]
            remain_a = torch.clamp(remain_a - ratio_a * _bmv(k, ratio_b), min=0.0)
            if need_grad:
                plan.add_(k * ratio_a.unsqueeze(2) * ratio_b.unsqueeze(1))
            total += (ratio_a * _bmv(k.mul_(c), ratio_b)).sum(1)
    if need_grad:
        d2 = _sq_dists(x, y)
        total = (plan * (d2.clamp_min(1e-20).sqrt() if cost == "euclidean" else d2)).sum(dim=(1, 2))
    return total, remain_a.sum(1)


def emd_approxmatch(a: torch.Tensor, b: torch.Tensor, *, cost: str = "euclidean", levels: str = "auto",
                    return_unmatched: bool = False):
    """EMD by Fan et al.'s approximate matching, the algorithm of the CUDA kernel published numbers come from.

    The matching is built coarse to fine: at level ``w`` (``w = 4^7, 4^6, ..., 4^-1``) each point of ``a``
    spreads its unmatched mass over the points of ``b`` in proportion to ``exp(-w |a_i - b_j|^2)`` times their
    unmatched mass; a point of ``b`` that receives more than it has left scales its intake down. The matched
    flows ``P_ij`` accumulate over the levels, and the value is ``(1/N) sum_ij P_ij c(a_i, b_j)``. A soft matching
    is a feasible transport plan, so with every unit of mass placed the value is >= the exact EMD.

    Measured against :func:`emd_exact` on pairs of procedural shapes (512 and 2048 points, shapes of size 0.8 to
    2; ``bench/metrics.py`` has a run's numbers), Euclidean cost: 1.2-1.5 x exact for two samplings of one shape
    (whose exact EMD is small: the points only shuffle locally, and soft matching blurs exactly those short moves),
    1.1-1.3 x for two different shapes; squared cost: 4-13 x and 1.3-2.4 x. Kernel widths are absolute, so the
    value depends on the coordinate units, as the CUDA kernel's does: compute it in the units the published table
    used (PointFlow: raw PC15k coordinates).

    Args:
        a: ``(B, N, d)`` point clouds.
        b: ``(B, N, d)`` point clouds, the same ``N``. The algorithm is not symmetric in ``a`` and ``b``.
        cost: ``"euclidean"`` or ``"squared"``.
        levels: ``"pointflow"`` (9 levels, 4^7 .. 4^-1: PointFlow's and ShapeGF's kernel; a little mass can stay
            unmatched), ``"complete"`` (adds a last uniform level, as Fan et al.'s original and PVD/LION's
            kernel: all mass placed), or ``"auto"``: ``"pointflow"`` for the Euclidean cost, ``"complete"`` for
            the squared one, i.e. the kernel each family of published numbers used.
        return_unmatched: also return the ``(B,)`` fraction of mass left unmatched.

    Returns:
        ``(B,)`` distances (and the unmatched fraction when asked). Differentiable in ``a`` and ``b`` with the
        matching held fixed, as the CUDA kernel's gradient (costs one more ``(N, N)`` buffer per pair).

    Raises:
        ValueError, TypeError: bad clouds (see :func:`emd`), unknown ``cost`` or ``levels``.

    Taught in chapter 6.
    """
    _checks.choice("cost", cost, EMD_COSTS)
    _checks.choice("levels", levels, (*APPROXMATCH_LEVELS, "auto"))
    a, b = _common.pair(a, b, same_points=True)
    ladder = APPROXMATCH_LEVELS[_LEVELS_FOR_COST[cost] if levels == "auto" else levels]
    batch, n, _ = a.shape
    dt = torch.float32 if a.dtype in (torch.float16, torch.bfloat16) else a.dtype
    totals, unmatched = [], []
    for s in _groups(batch, n, n, a.device, matrices=4):
        t, u = _approxmatch_group(a[s].to(dt), b[s].to(dt), ladder, cost)
        totals.append(t)
        unmatched.append(u)
    value = (torch.cat(totals) / n).to(a.dtype)
    if return_unmatched:
        return value, (torch.cat(unmatched) / n).to(a.dtype)
    return value


# ------------------------------------------------------------------------------------------------ sinkhorn
def _sinkhorn_group(c, *, epsilon_ratio, scaling, tol, max_iter, check_every=5):
    """Log-domain Sinkhorn with epsilon scaling on one group of cost matrices ``c (G, N, M)``.

    Epsilon starts at the largest cost and is multiplied by ``scaling`` whenever the plan's row marginals are
    within 10% of ``1/N``, down to ``epsilon_ratio`` times the current plan's cost; there each pair iterates
    until its rows are within ``tol`` (relative). Finished pairs leave the batch, so a slow pair costs only its own
    sweeps.

    Returns ``(cost of each pair's plan with exact rows (G,), sweeps of the slowest pair, row error (G,))``; the
    cost is differentiable in ``c`` (through the last half-sweep only).
    """
    g, n, m = c.shape
    log_a, log_b = -math.log(n), -math.log(m)
    active = torch.arange(g, device=c.device)           # original index of each pair still iterating
    cc = c.detach()
    f = cc.new_zeros(g, n)
    h = cc.new_zeros(g, m)
    eps = cc.amax(dim=(1, 2)).clamp_min(torch.finfo(cc.dtype).tiny)   # start at the largest cost: a flat plan
    floor = 1e-6 * eps                                  # identical clouds: the cost, hence the goal, tends to 0
    final = torch.zeros(g, dtype=torch.bool, device=c.device)
    h_out, eps_out = h.clone(), eps.clone()
    err_out = torch.full_like(eps, math.inf)
    sweeps = 0
    while sweeps < max_iter and len(active):
        e = eps.view(-1, 1, 1)
        f = -eps.view(-1, 1) * torch.logsumexp((h.unsqueeze(1) - cc) / e + log_b, dim=2)
        h = -eps.view(-1, 1) * torch.logsumexp((f.unsqueeze(2) - cc) / e + log_a, dim=1)
        sweeps += 1
        if sweeps % check_every and sweeps < max_iter:
            continue
        lp = (f.unsqueeze(2) + h.unsqueeze(1) - cc) / e + (log_a + log_b)   # columns exact after the h-update
        err = (torch.logsumexp(lp, dim=2).exp() * n - 1.0).abs().amax(dim=1)
        h_out[active], eps_out[active], err_out[active] = h, eps, err
        move = ~final & (err < 0.1)                     # converged at this epsilon: anneal towards the goal
        if bool(move.any()):
            goal = torch.maximum(epsilon_ratio * (lp.exp() * cc).sum(dim=(1, 2)), floor)
            smaller = torch.maximum(eps * scaling, goal)
            final = final | (move & (smaller <= goal))
            eps = torch.where(move, smaller, eps)
        keep = ~(final & (err < tol) & ~move)
        if not bool(keep.all()):                        # finished pairs leave the batch
            active, cc, f, h, eps, final, floor = (t[keep] for t in (active, cc, f, h, eps, final, floor))
    if len(active):
        warnings.warn(f"emd_sinkhorn: max_iter={max_iter} sweeps reached before every plan converged (largest row "
                      f"error {float(err_out.max()):.2%}, asked {tol:.2%}); those values are unreliable (raise "
                      "max_iter, or use method='exact')", RuntimeWarning, stacklevel=3)
    e = eps_out.view(g, 1, 1)                           # the plan with exact rows, differentiable in c
    f = -eps_out.view(g, 1) * torch.logsumexp((h_out.unsqueeze(1) - c) / e + log_b, dim=2)
    plan = torch.exp((f.unsqueeze(2) + h_out.unsqueeze(1) - c) / e + (log_a + log_b))
    return (plan * c).sum(dim=(1, 2)), sweeps, err_out


def emd_sinkhorn(a: torch.Tensor, b: torch.Tensor, *, cost: str = "euclidean", epsilon_ratio: float = 0.01,
                 scaling: float = 0.5, tol: float = 1e-3, max_iter: int = 20000) -> torch.Tensor:
    """EMD by entropic optimal transport: log-domain Sinkhorn iterations with epsilon scaling.

    Solves ``min_P <P, C> - eps H(P)`` over plans with uniform marginals ``1/N``, starting with ``eps`` at the
    largest cost and lowering it by ``scaling`` each time the plan has converged, down to ``epsilon_ratio``
    times the plan's own transport cost: so the entropic blur is a fixed fraction of the answer, whatever the
    units and however close the clouds. There it iterates until every row marginal is within ``tol`` (relative)
    of ``1/N`` and returns the transport cost ``<P, C>`` of the plan (rows exact, columns within ``tol``).
    The entropy spreads each point's mass over near-optimal partners, so the value sits slightly above the exact
    EMD (about half of ``epsilon_ratio`` in relative terms; ``bench/metrics.py`` has measured errors).

    Each sweep reads the ``(N, N)`` cost matrix twice and hundreds to thousands of sweeps are needed (most for two
    samplings of one shape under the squared cost, whose EMD is tiny against the shape's size), so on a CPU the
    exact assignment is faster: this is the option for a GPU.

    Args:
        a: ``(B, N, d)`` point clouds.
        b: ``(B, N, d)`` point clouds, the same ``N``.
        cost: ``"euclidean"`` or ``"squared"``.
        epsilon_ratio: final epsilon as a fraction of the transport cost.
        scaling: epsilon factor per annealing step, in ``(0, 1)``.
        tol: stop when every row marginal is within ``tol`` (relative) of ``1/N``.
        max_iter: largest number of sweeps; reaching it before convergence warns.

    Returns:
        ``(B,)`` distances, differentiable.

    Raises:
        ValueError, TypeError: bad clouds (see :func:`emd`), unknown ``cost``, bad options.

    Taught in chapter 6.
    """
    _checks.choice("cost", cost, EMD_COSTS)
    a, b = _common.pair(a, b, same_points=True)
    _checks.positive("epsilon_ratio", epsilon_ratio)
    _checks.positive("tol", tol)
    if isinstance(scaling, bool) or not isinstance(scaling, (int, float)) or not 0 < scaling < 1:
        raise ValueError(f"scaling must be a number in (0, 1), got {scaling!r}")
    max_iter = _checks.positive_int("max_iter", max_iter)
    batch, n, _ = a.shape
    dt = torch.float32 if a.dtype in (torch.float16, torch.bfloat16) else a.dtype
    out = []
    for s in _groups(batch, n, n, a.device, matrices=5):
        d2 = _sq_dists(a[s].to(dt), b[s].to(dt))
        c = d2.sqrt() if cost == "euclidean" else d2
        value, _, _ = _sinkhorn_group(c, epsilon_ratio=float(epsilon_ratio), scaling=float(scaling),
                                      tol=float(tol), max_iter=max_iter)
        out.append(torch.where(c.detach().amax(dim=(1, 2)) > 0, value, torch.zeros_like(value)))
    return torch.cat(out).to(a.dtype)


# ------------------------------------------------------------------------------------------------ one entry point
_METHODS = {"exact": emd_exact, "approxmatch": emd_approxmatch, "sinkhorn": emd_sinkhorn}


def emd(a: torch.Tensor, b: torch.Tensor, *, method: str = "exact", cost: str = "euclidean",
        **options) -> torch.Tensor:
    """Earth mover's distance ``min_phi (1/N) sum_i c(a_i, b_phi(i))`` between equal-size clouds (PointFlow's
    EMD with ``cost="euclidean"``, PVD/LION's with ``cost="squared"``).

    Args:
        a: ``(B, N, d)`` point clouds.
        b: ``(B, N, d)`` point clouds with the same ``B``, ``N`` and ``d``.
        method: ``"exact"`` (:func:`emd_exact`, the reference), ``"approxmatch"`` (:func:`emd_approxmatch`, what
            published tables used; an upper bound) or ``"sinkhorn"`` (:func:`emd_sinkhorn`, entropic, fast on a
            GPU).
        cost: ``"euclidean"`` (``|x - y|``) or ``"squared"`` (``|x - y|^2``).
        **options: passed to the method's function (e.g. ``blur=`` for Sinkhorn, ``levels=`` for approxmatch).

    Returns:
        ``(B,)`` distances in the input's dtype.

    Raises:
        ValueError: unknown ``method`` or ``cost``; not 3-D, empty, NaN/inf, different ``B``, ``N`` or ``d``.
        TypeError: non-floating or mismatched dtypes, unknown options.

    Taught in chapter 6 (Measuring quality).
    """
    _checks.choice("method", method, EMD_METHODS)
    return _METHODS[method](a, b, cost=cost, **options)
