"""The score decoder: a per-point ResNet conditioned on ``c = [x, z, sigma]`` (ShapeGF Sec. 3.4).

Two variants, both matching the official implementation's layer layout and parameter counts:

* ``"add"`` (the official code, used for the released numbers): pre-activation ResNet blocks with plain batch
  norm, the condition entering each block through a linear shortcut ``W_c c``.
* ``"cbn"`` (the paper's description): conditional batch norm, ``gamma(c) * BN(h) + beta(c)``.

The network predicts ``D = sigma^2 * score``, the displacement from a noisy point back toward the surface, under one
of two parameterisations (:data:`PRECONDITIONINGS`):

* ``"none"`` (the official one): ``D = net(x, sigma, z)``, the raw ``sigma`` in the condition. Needed to reproduce
  the paper and to load its checkpoints.
* ``"edm"`` (preconditioned): ``D = sigma * net(c_in x, c_noise, z)`` with ``c_in = 1 / sqrt(sigma^2 + 0.5^2)``
  and ``c_noise = 1.5 + log10(sigma) / 2``. Only the input scaling ``c_in`` is EDM's (Karras et al. 2022, with
  ``sigma_data = 0.5``); the output is a noise prediction: in EDM's form ``x + D = c_skip x + c_out net`` it has
  ``c_skip = 1`` and ``c_out = sigma`` (EDM's own choice is ``c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)``,
  ``c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)``, ``c_noise = ln(sigma) / 4``). The network's target
  is then the unit-variance noise direction ``-eps`` at every level and its condition a smooth function of
  ``sigma`` (0.5 .. 1.5 over the official ladder), which makes a small network learn far faster (chapter 4
  explains the constants; chapter 5 trains the 3D model with it).

Taught in chapter 4 (Conditional fields in 2D) and chapter 5 (The full 3D model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gfcore import _checks
from gfcore.models.encoder import pointwise_bn

BLOCKS = ("add", "cbn")
NORMS = ("batch", "none")
PRECONDITIONINGS = ("none", "edm")
SIGMA_DATA = 0.5   # the data's scale assumed by "edm" (shapes fit [-1, 1]; per-coordinate std about 0.3-0.5)


def preconditioning(sigma: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_in, c_noise, c_out)``, each ``(B,)``: ``D(x, sigma) = c_out * net(c_in * x, c_noise, z)``.

    ``"none"``: ``(1, sigma, 1)`` (the official network). ``"edm"``: ``(1 / sqrt(sigma^2 + 0.5^2),
    1.5 + log10(sigma) / 2, sigma)``: EDM's input scaling with a noise-prediction output (``c_skip = 1``,
    ``c_out = sigma``), so the network predicts the unit-scale noise direction.

    Args:
        sigma: ``(B,)`` noise levels.
        kind: one of :data:`PRECONDITIONINGS`.

    Taught in chapter 4 (Conditional fields in 2D).
    """
    if kind == "none":
        one = torch.ones_like(sigma)
        return one, sigma, one
    if kind == "edm":
        return torch.rsqrt(sigma.square() + SIGMA_DATA ** 2), 1.5 + 0.5 * torch.log10(sigma), sigma
    raise ValueError(f"preconditioning must be one of {list(PRECONDITIONINGS)}, got {kind!r}")


def _norm(channels: int, norm: str, *, affine: bool = True) -> nn.Module:
    """A batch norm over points (``norm="batch"``) or the identity (``norm="none"``)."""
    return nn.BatchNorm1d(channels, affine=affine) if norm == "batch" else nn.Identity()


class _AddBlock(nn.Module):
    """``h <- h + W1 relu(BN(W0 relu(BN(h)))) + W_c c`` with ``W1`` zero-initialised (BN optional)."""

    def __init__(self, c_dim: int, hidden: int, norm: str = "batch"):
        super().__init__()
        self.bn0 = _norm(hidden, norm)
        self.fc0 = nn.Linear(hidden, hidden)
        self.bn1 = _norm(hidden, norm)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc_c = nn.Linear(c_dim, hidden)
        nn.init.zeros_(self.fc1.weight)


class _CondBatchNorm(nn.Module):
    """Conditional batch norm: batch norm without affine, then ``gamma(c) * h + beta(c)`` (per-point linears).

    Initialised to ``gamma = 1``, ``beta = 0`` (zero weights), so a fresh layer is plain batch norm.
    """

    def __init__(self, c_dim: int, channels: int, norm: str = "batch"):
        super().__init__()
        self.bn = _norm(channels, norm, affine=False)
        self.gamma = nn.Linear(c_dim, channels)
        self.beta = nn.Linear(c_dim, channels)
        nn.init.zeros_(self.gamma.weight)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.weight)
        nn.init.zeros_(self.beta.bias)


class _CBNBlock(nn.Module):
    """``h <- h + W1 relu(CBN(W0 relu(CBN(h, c)), c))`` with ``W1`` zero-initialised."""

    def __init__(self, c_dim: int, hidden: int, norm: str = "batch"):
        super().__init__()
        self.norm0 = _CondBatchNorm(c_dim, hidden, norm)
        self.fc0 = nn.Linear(hidden, hidden)
        self.norm1 = _CondBatchNorm(c_dim, hidden, norm)
        self.fc1 = nn.Linear(hidden, hidden)
        nn.init.zeros_(self.fc1.weight)


class ScoreDecoder(nn.Module):
    """Per-point ResNet predicting ``sigma^2 * grad_x log p_sigma(x | z)`` (ShapeGF Eq. 6, "normalised scale").

    Every layer is a per-point linear (a 1x1 convolution); the condition per point is ``c = [x, z, sigma]``
    (``d + zdim + 1`` channels; the raw ``x`` and ``sigma``, or ``c_in x`` and ``c_noise`` when preconditioned, see
    :func:`preconditioning`). Layout:

    * ``"add"``: input linear ``c -> hidden``; ``n_blocks`` blocks
      ``h <- h + W1 relu(BN(W0 relu(BN(h)))) + W_c c`` (``W_c`` with bias); head ``relu(BN(h)) -> d``.
      4,035,075 parameters at ``d=3, zdim=128, hidden=256, n_blocks=24`` (the official 4.04M).
    * ``"cbn"``: input linear ``c -> hidden``; ``n_blocks`` blocks
      ``h <- h + W1 relu(CBN(W0 relu(CBN(h, c)), c))``; head ``relu(CBN(h, c)) -> d``; each CBN has two linears
      ``c -> hidden`` (gamma, beta). 4,387,331 parameters at ``n_blocks=16`` (the official 4.39M).

    ``W1`` of every block is zero-initialised, so a fresh ``"add"`` block adds only its condition term ``W_c c``
    to ``h`` and a fresh ``"cbn"`` block passes ``h`` through unchanged. Batch-norm
    statistics are taken over all ``B * M`` points of the batch (as a 1x1 conv + ``BatchNorm1d`` does).

    The fast form (this ``forward``): the condition is never materialised; a linear of ``c`` is computed as
    ``W_x x + (W_z z + w_s sigma + b)``, the bracket once per shape for all layers in one matrix product,
    ``W_x x`` fused into a batched ``baddbmm``. In the paper's terms it is exactly the per-point linear of the
    concatenation ``[x, z, sigma]``; :func:`reference_forward` is that readable form, and the tests check that
    both compute the same function.

    Args:
        dim: spatial dimension ``d`` (2 or 3).
        zdim: size of the latent code.
        hidden: width ``C`` of every hidden layer.
        n_blocks: number of ResNet blocks (official: 24 for ``"add"``, 16 for ``"cbn"``).
        block: ``"add"`` or ``"cbn"``.
        preconditioning: ``"none"`` (official) or ``"edm"``; see :func:`preconditioning`.
        norm: ``"batch"`` (official: batch norm over the ``B * M`` points of a batch) or ``"none"`` (every ``BN``
            above is the identity). Batch statistics mix the noise levels of the shapes in a batch, so a
            network trained with them behaves differently in eval mode at the levels that a batch rarely holds
            many of; without the norm a point's output never depends on the rest of its batch (chapter 5).

    Shapes:
        ``forward(x (B, M, d), sigma (B,), z (B, zdim)) -> (B, M, d)``, the predicted ``sigma^2 * score``; any
        ``M``. In train mode ``B * M >= 2``.

    Raises:
        ValueError: wrong shapes (``x`` not ``(B, M, d)``, ``sigma`` not ``(B,)``, ``z`` not ``(B, zdim)``).
        Values are not checked here (the hot path); :class:`~gfcore.models.ShapeGF` checks them up front.

    Taught in chapter 4/5.
    """

    def __init__(self, dim: int = 3, zdim: int = 128, hidden: int = 256, n_blocks: int = 24, block: str = "add",
                 preconditioning: str = "none", norm: str = "batch"):
        super().__init__()
        _checks.positive_int("dim", dim)
        _checks.positive_int("zdim", zdim)
        _checks.positive_int("hidden", hidden)
        _checks.positive_int("n_blocks", n_blocks)
        _checks.choice("block", block, BLOCKS)
        _checks.choice("preconditioning", preconditioning, PRECONDITIONINGS)
        _checks.choice("norm", norm, NORMS)
        self.dim, self.zdim, self.hidden, self.n_blocks, self.block = dim, zdim, hidden, n_blocks, block
        self.preconditioning, self.norm = preconditioning, norm
        c_dim = dim + zdim + 1
        self.c_dim = c_dim
        self.inp = nn.Linear(c_dim, hidden)
        if block == "add":
            self.blocks = nn.ModuleList(_AddBlock(c_dim, hidden, norm) for _ in range(n_blocks))
            self.out_norm = _norm(hidden, norm)
        else:
            self.blocks = nn.ModuleList(_CBNBlock(c_dim, hidden, norm) for _ in range(n_blocks))
            self.out_norm = _CondBatchNorm(c_dim, hidden, norm)
        self.out = nn.Linear(hidden, dim)

    # -- the linears that read the condition c, in the order forward() consumes them ------------------------
    def _cond_params(self):
        """``(weight (n * C, c_dim), bias (n * C,))`` of every linear of ``c``, concatenated.

        For ``"add"`` the bias of each block's ``W1`` is folded into its ``W_c`` bias (both are constant terms).
        """
        weights, biases = [self.inp.weight], [self.inp.bias]
        if self.block == "add":
            for blk in self.blocks:
                weights.append(blk.fc_c.weight)
                biases.append(blk.fc_c.bias + blk.fc1.bias)
        else:
            norms = [n for blk in self.blocks for n in (blk.norm0, blk.norm1)] + [self.out_norm]
            for n in norms:
                weights += [n.gamma.weight, n.beta.weight]
                biases += [n.gamma.bias, n.beta.bias]
        return torch.cat(weights), torch.cat(biases)

    def check_inputs(self, x: torch.Tensor, sigma, z: torch.Tensor) -> torch.Tensor:
        """Check the shapes of ``x (B, M, d)`` and ``z (B, zdim)``; return ``sigma`` as a ``(B,)`` tensor.

        Raises:
            ValueError: a wrong shape, naming the argument.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.dim:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be (B, M, {self.dim}), got {got}")
        batch = x.shape[0]
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.zdim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must be (B, zdim={self.zdim}), got {got}")
        if z.shape[0] != batch:
            raise ValueError(f"z has {z.shape[0]} codes but x has {batch} shapes")
        return _checks.sigma_batch(sigma, batch, like=x)

    def forward(self, x: torch.Tensor, sigma, z: torch.Tensor) -> torch.Tensor:
        sigma = self.check_inputs(x, sigma, z)
        c_in, sigma_cond, c_out = preconditioning(sigma if sigma.dtype == torch.float64 else sigma.float(),
                                                 self.preconditioning)
        if self.preconditioning != "none":
            x = x * c_in.to(x.dtype).view(-1, 1, 1)
        batch, m, d = x.shape
        hidden = self.hidden
        weight, bias = self._cond_params()
        zs = torch.cat([z, sigma_cond.to(z.dtype).unsqueeze(1)], dim=1)          # (B, zdim + 1)
        shape_terms = F.linear(zs, weight[:, d:], bias)                        # (B, n * C): once per shape
        w_x = weight[:, :d]                                                    # (n * C, d)

        def cond(i: int, width: int = hidden) -> torch.Tensor:
            """The ``i``-th linear of ``c``, ``(B, M, width)``: per-shape term + ``W_x x`` in one baddbmm."""
            s = shape_terms[:, i * hidden:i * hidden + width].unsqueeze(1)
            wt = w_x[i * hidden:i * hidden + width].t().unsqueeze(0).expand(batch, d, width)
            return torch.baddbmm(s, x.to(s.dtype), wt.to(s.dtype))

        def mm_acc(acc: torch.Tensor, a: torch.Tensor, lin: nn.Linear) -> torch.Tensor:
            """``acc + a @ W^T`` (no bias) as one GEMM: ``(B, M, C)``."""
            return torch.addmm(acc.reshape(-1, hidden), a.reshape(-1, hidden), lin.weight.t()).view(batch, m, -1)

        h = cond(0)
        if self.block == "add":
            for i, blk in enumerate(self.blocks, start=1):
                a = torch.relu(pointwise_bn(blk.bn0, h))
                a = torch.relu(pointwise_bn(blk.bn1, blk.fc0(a)))
                h = mm_acc(h + cond(i), a, blk.fc1)                            # h + W_c c + b1 + W1 a
            out = torch.relu(pointwise_bn(self.out_norm, h))
        else:
            def cond_bn(norm: _CondBatchNorm, h: torch.Tensor, k: int) -> torch.Tensor:
                """``gamma(c) * BN(h) + beta(c)``; gamma and beta are linears ``k`` and ``k + 1`` of ``c``."""
                gamma, beta = cond(k, 2 * hidden).chunk(2, dim=-1)            # adjacent in the concatenation
                return torch.addcmul(beta, pointwise_bn(norm.bn, h), gamma)

            for i, blk in enumerate(self.blocks):
                a = torch.relu(cond_bn(blk.norm0, h, 4 * i + 1))
                a = torch.relu(cond_bn(blk.norm1, blk.fc0(a), 4 * i + 3))
                h = mm_acc(h, a, blk.fc1) + blk.fc1.bias
            out = torch.relu(cond_bn(self.out_norm, h, 4 * self.n_blocks + 1))
        out = self.out(out)
        out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
        return out if self.preconditioning == "none" else out * c_out.to(out.dtype).view(-1, 1, 1)


def reference_forward(decoder: ScoreDecoder, x: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """:meth:`ScoreDecoder.forward` written the readable way: the condition ``c = [x, z, sigma]`` materialised for
    every point and every layer applied as written in the paper and the official code (with the decoder's
    preconditioning, if any, around it). This is the form the chapters show.

    The same function as ``decoder(x, sigma, z)``, slower; the reference the tests compare the fast forward and
    the folded decoder with, and the dataflow ``bench/train_step.py`` times as its baseline.

    Shapes: ``x (B, M, d)``, ``sigma (B,)``, ``z (B, zdim)`` -> ``(B, M, d)``.
    """
    b, m, _ = x.shape
    sigma = decoder.check_inputs(x, sigma, z)
    c_in, sigma_cond, c_out = preconditioning(sigma, decoder.preconditioning)
    x_in = x * c_in.to(x.dtype).view(b, 1, 1)
    c = torch.cat([x_in, z.unsqueeze(1).expand(b, m, -1), sigma_cond.to(x.dtype).view(b, 1, 1).expand(b, m, 1)],
                  dim=-1)

    def cbn(norm: _CondBatchNorm, h: torch.Tensor) -> torch.Tensor:
        return pointwise_bn(norm.bn, h) * norm.gamma(c) + norm.beta(c)

    h = decoder.inp(c)
    for blk in decoder.blocks:
        if decoder.block == "add":
            a = blk.fc0(torch.relu(pointwise_bn(blk.bn0, h)))
            h = h + blk.fc1(torch.relu(pointwise_bn(blk.bn1, a))) + blk.fc_c(c)
        else:
            a = blk.fc0(torch.relu(cbn(blk.norm0, h)))
            h = h + blk.fc1(torch.relu(cbn(blk.norm1, a)))
    h = torch.relu(pointwise_bn(decoder.out_norm, h) if decoder.block == "add" else cbn(decoder.out_norm, h))
    return c_out.to(x.dtype).view(b, 1, 1) * decoder.out(h)
