"""The closed-form gradient field of a Gaussian-smoothed point set (ShapeGF, Sec. 3.1).

A shape sampled as points ``{x_i}`` is smoothed with an isotropic Gaussian of width ``sigma``:

    A_sigma(x) = (1/N) sum_i N(x; x_i, sigma^2 I)
    grad log A_sigma(x) = (-x + sum_i w_i(x) x_i) / sigma^2,   w = softmax_i(-|x - x_i|^2 / (2 sigma^2)).

The weights are an attention of the query over the points, so the field is computed either directly (exact
differences, chunked over queries so memory stays bounded) or with PyTorch's fused
``scaled_dot_product_attention``, which never builds the ``(M, N)`` matrix (the default; see
:func:`smoothed_score` and ``bench/field.py`` for speed and accuracy).

:func:`jacobian_asymmetry` measures, for any score callable (this closed form or a learned field), how far the
field is from being a gradient (chapter 9).

Taught in chapter 1 (Shapes as distributions).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gfcore import _checks

METHODS = ("auto", "direct", "attention")
_CHUNK_ELEMENTS = 2**25  # elements of the largest temporary, (B, chunk, N, d + 1); 128 MiB in float32


def _prepare(x, points, sigma):
    """Validate and broadcast to ``x (B, M, d)``, ``points (B, N, d)``, ``sigma (B|1, 1, 1)``."""
    x = _checks.point_cloud("x", x)
    points = _checks.point_cloud("points", points)
    if x.shape[-1] != points.shape[-1]:
        raise ValueError(f"x has d={x.shape[-1]} but points has d={points.shape[-1]} (shapes "
                         f"{tuple(x.shape)} and {tuple(points.shape)})")
    if x.dtype != points.dtype:
        raise TypeError(f"x is {x.dtype} but points is {points.dtype}; convert one of them")
    if x.device != points.device:
        raise ValueError(f"x is on {x.device} but points is on {points.device}")
    batched = x.dim() == 3 or points.dim() == 3
    xb = x if x.dim() == 3 else x.unsqueeze(0)
    pb = points if points.dim() == 3 else points.unsqueeze(0)
    bx, bp = xb.shape[0], pb.shape[0]
    if bx != bp and 1 not in (bx, bp):
        raise ValueError(f"batch sizes differ: x has {bx} shapes, points has {bp}")
    batch = max(bx, bp)
    s = _checks.sigma_per_shape(sigma, batch if batched else None, like=xb)
    xb = xb.expand(batch, -1, -1)
    pb = pb.expand(batch, -1, -1)
    return xb, pb, s.expand(batch, 1, 1), batched


def _chunk(chunk_size, batch, n, d) -> int:
    if chunk_size is not None:
        return _checks.positive_int("chunk_size", chunk_size)
    return max(1, _CHUNK_ELEMENTS // (batch * n * (d + 1)))


def _logits(xc, pb, s):
    """``-|x - x_i|^2 / (2 sigma^2)`` from exact differences: ``(B, m, d), (B, N, d) -> (B, m, N)``."""
    d2 = (xc.unsqueeze(2) - pb.unsqueeze(1)).square().sum(-1)
    return d2 / (-2.0 * s.square())


def smoothed_log_density(x, points, sigma, *, chunk_size: int | None = None) -> torch.Tensor:
    """Log-density of the smoothed point set, ``log (1/N) sum_i N(x; x_i, sigma^2 I)`` (ShapeGF Eq. 2).

    Computed with a log-sum-exp, so far queries and tiny ``sigma`` give finite values. Differentiable.

    Args:
        x: ``(M, d)`` or ``(B, M, d)`` query points.
        points: ``(N, d)`` or ``(B, N, d)`` points sampled on the shape; an unbatched side is shared by the batch.
        sigma: a positive number, or a ``(B,)`` tensor (one width per shape).
        chunk_size: queries per chunk (default: sized so temporaries stay near 128 MiB).

    Returns:
        ``(M,)`` when neither input is batched, else ``(B, M)``.

    Raises:
        ValueError, TypeError: empty clouds, NaN/inf, ``sigma <= 0``, mismatched ``d``, batch, dtype or device.

    Taught in chapter 1.
    """
    xb, pb, s, batched = _prepare(x, points, sigma)
    batch, m, d = xb.shape
    n = pb.shape[1]
    norm = math.log(n) + 0.5 * d * torch.log(2 * math.pi * s.square()).reshape(batch, 1)
    step = _chunk(chunk_size, batch, n, d)
    out = torch.cat([torch.logsumexp(_logits(xb[:, i:i + step], pb, s), dim=-1)
                     for i in range(0, m, step)], dim=1) - norm
    return out if batched else out.squeeze(0)


def _mean_direct(xb, pb, s, step):
    return torch.cat([torch.softmax(_logits(xb[:, i:i + step], pb, s), dim=-1) @ pb
                      for i in range(0, xb.shape[1], step)], dim=1)


def _mean_attention(xb, pb, s, step):
    """``sum_i w_i x_i`` with fused attention: logits ``(x . x_i - |x_i|^2 / 2) / sigma^2``.

    Query ``[x / sigma^2, 1 / sigma^2]``, key ``[x_i, -|x_i|^2 / 2]``, value ``x_i``, scale 1; padded with zeros to a
    multiple of 8 channels, which fused kernels want. The dropped term ``-|x|^2 / (2 sigma^2)`` is constant over
    ``i``. Coordinates are first centred on each shape's centroid (the field is translation-equivariant), which keeps
    the logits small for clouds far from the origin. Rounding of logits of size ``|x| |x_i| / sigma^2`` still limits
    float32 accuracy when ``sigma`` is tiny compared with the shape: about ``1e-3`` of the RMS score at
    ``sigma = 0.01`` on unit-scale data (see ``bench/field.py``).
    """
    batch, m, d = xb.shape
    center = pb.mean(dim=1, keepdim=True)                                # (B, 1, d)
    xc, pc = xb - center, pb - center
    inv = 1.0 / s.square()                                               # (B, 1, 1)
    q = torch.cat([xc * inv, inv.expand(batch, m, 1)], dim=-1)
    k = torch.cat([pc, -0.5 * pc.square().sum(-1, keepdim=True)], dim=-1)
    pad_qk = (-(d + 1)) % 8
    pad_v = (-d) % 8
    q = F.pad(q, (0, pad_qk)).unsqueeze(1)
    k = F.pad(k, (0, pad_qk)).unsqueeze(1)
    v = F.pad(pc, (0, pad_v)).unsqueeze(1)
    out = torch.cat([F.scaled_dot_product_attention(q[:, :, i:i + step], k, v, scale=1.0)
                     for i in range(0, m, step)], dim=2)
    return out.squeeze(1)[..., :d] + center


# Largest logit scale max|x - c| * max|x_i - c| / sigma^2 for which "auto" trusts fused attention in float32 on a
# GPU: the logits' rounding error is about 1e-7 of it, giving errors near 1e-3 of the RMS score at the limit.
_AUTO_MAX_LOGIT_SCALE_F32 = 3e4
# Below this many query-point pairs "auto" takes the direct path: exact, and per-call overheads of the fused kernel
# (and of a float64 copy on CPU) dominate such small problems, e.g. one query per shape during Langevin sampling.
_AUTO_MIN_PAIRS_ATTENTION = 2**17


def _auto_method(xb, pb, s) -> tuple[str, torch.dtype | None]:
    """What ``method="auto"`` runs: ``(method, dtype to compute in, or None for the input's)``.

    CPU: fused attention computed in float64 (float32 inputs are upcast and the result cast back): measured
    5-15x faster than both the direct path and a chunked ``cdist`` + softmax in float32, and as accurate as the
    direct path. Small problems (under ``_AUTO_MIN_PAIRS_ATTENTION`` pairs) take the direct path everywhere.
    CUDA: fused attention in the input's dtype while the logits stay small enough for float32
    (see ``_AUTO_MAX_LOGIT_SCALE_F32``), else the direct path; half precision always takes the direct path.
    """
    if xb.shape[0] * xb.shape[1] * pb.shape[1] < _AUTO_MIN_PAIRS_ATTENTION:
        return "direct", None
    if not xb.is_cuda:
        return "attention", torch.float64
    if xb.dtype == torch.float64:
        return "attention", None
    if xb.dtype != torch.float32:
        return "direct", None
    center = pb.mean(dim=1, keepdim=True)
    rx = (xb - center).norm(dim=-1).amax(dim=1)                         # (B,)
    rp = (pb - center).norm(dim=-1).amax(dim=1)
    scale = float((rx * rp / s.reshape(-1).square()).max())
    return ("attention" if scale <= _AUTO_MAX_LOGIT_SCALE_F32 else "direct"), None


def smoothed_score(x, points, sigma, *, chunk_size: int | None = None, method: str = "auto") -> torch.Tensor:
    """Closed-form score ``grad_x log A_sigma(x) = (-x + sum_i w_i(x) x_i) / sigma^2`` (ShapeGF Eq. 3).

    Args:
        x: ``(M, d)`` or ``(B, M, d)`` query points.
        points: ``(N, d)`` or ``(B, N, d)`` points on the shape; an unbatched side is shared by the batch.
        sigma: a positive number, or a ``(B,)`` tensor.
        chunk_size: queries per chunk (default: bounded memory).
        method: ``"direct"`` (exact differences and softmax, differentiable, the reference), ``"attention"``
            (fused ``scaled_dot_product_attention`` in the input's dtype, never builds the ``(M, N)`` matrix) or
            ``"auto"``: direct for small problems; otherwise on CPU attention computed in float64 (fastest there,
            and accurate); on CUDA attention in float32 unless ``sigma`` is so small against the shape's extent
            that float32 logits lose accuracy, then direct. Measurements: ``bench/field.py``.

    Returns:
        ``(M, d)`` when neither input is batched, else ``(B, M, d)``, in ``x``'s dtype.

    Raises:
        ValueError, TypeError: as :func:`smoothed_log_density`, and an unknown ``method``.

    Taught in chapter 1.
    """
    _checks.choice("method", method, METHODS)
    if chunk_size is not None:
        _checks.positive_int("chunk_size", chunk_size)
    xb, pb, s, batched = _prepare(x, points, sigma)
    batch, m, d = xb.shape
    compute_dtype = None
    if method == "auto":
        method, compute_dtype = _auto_method(xb, pb, s)
    in_dtype = xb.dtype
    if compute_dtype is not None and compute_dtype != in_dtype:
        xb, pb, s = xb.to(compute_dtype), pb.to(compute_dtype), s.to(compute_dtype)
    if method == "attention":
        if chunk_size is None:  # the CPU kernel keeps a buffer linear in the queries (~400 MiB at 100k in float64)
            chunk_size = 2**20 if xb.is_cuda else max(1, 2**14 // batch)
        mean = _mean_attention(xb, pb, s, chunk_size)
    else:
        mean = _mean_direct(xb, pb, s, _chunk(chunk_size, batch, pb.shape[1], d))
    out = ((mean - xb) / s.square()).to(in_dtype)
    return out if batched else out.squeeze(0)


def distance_to_points(x, points, *, chunk_size: int | None = None) -> torch.Tensor:
    """Euclidean distance from each query to its nearest point, chunked: ``(B, M, d), (B, N, d) -> (B, M)``.

    Unbatched inputs as in :func:`smoothed_score`. Used to check that samples lie on a shape (chapters 1-3).
    """
    xb, pb, _, batched = _prepare(x, points, 1.0)
    batch, m, d = xb.shape
    step = _chunk(chunk_size, batch, pb.shape[1], d)
    out = torch.cat([(xb[:, i:i + step].unsqueeze(2) - pb.unsqueeze(1)).square().sum(-1).min(-1).values
                     for i in range(0, m, step)], dim=1).sqrt()
    return out if batched else out.squeeze(0)


def jacobian_asymmetry(score_fn, x, sigma, *, chunk_size: int | None = None) -> torch.Tensor:
    """How far a vector field is from a gradient field, per point: ``||J - J^T||_F / (2 ||J||_F)``.

    ``J = d s / d x`` is the ``(d, d)`` Jacobian of the field ``s(x) = score_fn(x, sigma)`` at each point. Write
    ``J = S + A`` with ``S = (J + J^T) / 2`` symmetric and ``A = (J - J^T) / 2`` antisymmetric (the curl part).
    The two parts are orthogonal, ``||J||^2 = ||S||^2 + ||A||^2``, so the measure is
    ``||A|| / sqrt(||S||^2 + ||A||^2)`` in ``[0, 1]``: **0 for a gradient field** (the Jacobian of a gradient is a
    Hessian, symmetric: the closed-form score of :func:`smoothed_score` is one), **1 for a pure rotation**
    (``J`` antisymmetric, e.g. ``s(x) = A x``). The factor 1/2 is what makes 1 the maximum, since
    ``||J - J^T|| = 2 ||A|| <= 2 ||J||``. A learned score (ShapeGF's decoder) is not constrained to be a
    gradient; this measures how much it is not (chapter 9). Where ``J = 0`` (a locally constant field, the
    gradient of a linear function) the value is 0.

    ``J`` comes from autograd, one backward pass per output coordinate (``d`` passes, cheap for ``d <= 3``),
    which needs a ``score_fn`` that treats points independently (a trained model in eval mode: in train mode
    batch norm couples the points) and is differentiable (e.g. ``model.score_fn(z)``, not the ``no_grad`` sampler
    path of ``gfcore.models.fold``).

    Args:
        score_fn: ``(x (B, m, d), sigma (B,)) -> (B, m, d)``, e.g. ``lambda x, s: smoothed_score(x, points, s)``
            or ``model.score_fn(z)``.
        x: ``(M, d)`` or ``(B, M, d)`` points where the Jacobian is taken.
        sigma: a positive number or a ``(B,)`` tensor (passed to ``score_fn`` as ``(B,)``, in ``x``'s dtype).
        chunk_size: points per ``score_fn`` call (default: all at once).

    Returns:
        ``(M,)`` for unbatched ``x``, else ``(B, M)``, in ``x``'s dtype and on its device; values in ``[0, 1]``.

    Raises:
        ValueError, TypeError: bad ``x``, ``sigma`` or ``chunk_size``; a ``score_fn`` output of the wrong shape,
            or one that does not depend differentiably on ``x``.

    Taught in chapter 9 (Experiments).
    """
    x = _checks.point_cloud("x", x)
    batched = x.dim() == 3
    xb = (x if batched else x.unsqueeze(0)).detach()
    batch, m, d = xb.shape
    sigma_b = _checks.sigma_per_shape(sigma, batch, like=xb).reshape(-1).expand(batch).contiguous()
    step = m if chunk_size is None else _checks.positive_int("chunk_size", chunk_size)
    out = []
    for i in range(0, m, step):
        xc = xb[:, i:i + step].clone().requires_grad_(True)
        with torch.enable_grad():
            s = score_fn(xc, sigma_b)
            if not isinstance(s, torch.Tensor) or s.shape != xc.shape:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"score_fn returned {got}, expected a tensor of shape {tuple(xc.shape)}")
            if not s.requires_grad:
                raise ValueError("score_fn's output does not depend differentiably on x (computed under "
                                 "torch.no_grad, or detached); pass a differentiable score callable such as "
                                 "model.score_fn(z)")
            # row k of J at every point: the gradient of s_k summed over points (points are independent)
            rows = [torch.autograd.grad(s[..., k].sum(), xc, retain_graph=k < d - 1, allow_unused=True)[0]
                    for k in range(d)]
        rows = [torch.zeros_like(xc) if r is None else r for r in rows]
        jac = torch.stack(rows, dim=-2).to(xb.dtype)                     # (B, m, d, d), jac[..., k, j] = ds_k/dx_j
        full = jac.flatten(-2).norm(dim=-1)
        anti = (jac - jac.transpose(-1, -2)).flatten(-2).norm(dim=-1)
        out.append(torch.where(full > 0, anti / (2 * full).clamp_min(torch.finfo(full.dtype).tiny),
                               torch.zeros_like(full)))
    res = torch.cat(out, dim=1)
    return res if batched else res.squeeze(0)
