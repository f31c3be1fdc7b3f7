"""Inference-time rewrites of the score decoder: batch norm folded away, per-shape terms computed once.

In eval mode every batch norm is a per-channel affine map ``BN(h) = a * h + b`` (running statistics), and in
sampling the code ``z`` is fixed for all steps and ``sigma`` for all steps of a level. :func:`fold_batchnorm`
returns a copy of a :class:`~gfcore.models.ScoreDecoder` that exploits both, computing the same function
(exactly, up to float rounding) with fewer passes over the ``(B, M, C)`` activations:

* ``"add"``: the batch norm after ``W0`` is folded into ``W0`` (its only input). The norm at the head of each
  block reads the residual stream, which also feeds the skip path, so it cannot be folded into a linear; instead
  the residual stream is carried *without* its per-shape part ``S_j`` (the sum of every ``W_z z + w_s sigma + b``
  added so far) and that part is moved into the norm's bias, per shape: ``a * (h' + S_j) + b = a * h' + (a S_j + b)``,
  one ``addcmul`` with a ``(B, 1, C)`` bias.
* ``"cbn"``: ``gamma(c) * (a h + b) + beta(c) = (a gamma(c)) h + (b gamma(c) + beta(c))``; both are linear in
  ``c``, so ``a`` and ``b`` are folded into the gamma/beta linears and no batch norm remains. The per-shape part
  ``S`` of the residual stream is moved into beta the same way; the product ``S * gamma(x)`` makes beta's
  ``x``-weights per shape, which a batched ``baddbmm`` takes as it is.
* Both: the ``z, sigma`` part of every linear of ``c = [x, z, sigma]`` is computed once per shape by
  :meth:`FoldedDecoder.precompute` (one small matrix product for all layers); per point only ``W_x x`` (``d`` = 2
  or 3 inputs) remains. The head's ``1 / sigma^2`` (score units) can be folded in as well.
* Preconditioning (``"edm"``): ``c_noise(sigma)`` takes the place of ``sigma`` in the per-shape terms, the input
  scale ``c_in(sigma)`` multiplies ``x`` once per call and ``c_out(sigma)`` is folded into the head with
  ``1 / sigma^2``.

In the paper's terms the folded decoder is still Eq. 6's network ``s_theta(x, sigma, z)`` (times ``sigma^2``) in
eval mode: only the order of the arithmetic changes.

Taught in chapter 5 (The full 3D model), section on fast sampling.
"""
from __future__ import annotations

import torch
from torch import nn

from gfcore import _checks
from gfcore.models.decoder import ScoreDecoder, preconditioning

__all__ = ["FoldedDecoder", "fold_batchnorm", "fast_score_fn"]


def _bn_affine(bn: nn.Module, channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)`` with ``bn(h) == a * h + b`` in eval mode (float64 for an exact fold); ``(1, 0)`` on ``device``
    for the identity that a decoder built with ``norm="none"`` holds instead of a batch norm."""
    if isinstance(bn, nn.Identity):
        return (torch.ones(channels, dtype=torch.float64, device=device),
                torch.zeros(channels, dtype=torch.float64, device=device))
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"cannot fold {bn}: it has no running statistics (track_running_stats=False uses batch "
                         "statistics even in eval mode)")
    var, mean = bn.running_var.double(), bn.running_mean.double()
    a = torch.rsqrt(var + bn.eps)
    b = -mean * a
    if bn.affine:
        w, bias = bn.weight.double(), bn.bias.double()
        a, b = a * w, b * w + bias
    return a, b


class FoldedDecoder(nn.Module):
    """An inference copy of a :class:`~gfcore.models.ScoreDecoder` with batch norm folded away (see module doc).

    Build it with :func:`fold_batchnorm`. All folded parameters are buffers (no gradients: inference only).

    Use ``forward(x, sigma, z)`` as the decoder, or split the work: ``terms = precompute(z, sigma)`` once per
    ``(z, sigma)``, then ``run(x, terms)`` per step.

    Shapes:
        ``forward(x (B, M, d), sigma (B,), z (B, zdim)) -> (B, M, d)`` (float32, as the decoder's output);
        ``precompute(z (B, zdim), sigma (B,), *, dtype=None, score=False) -> dict`` of per-shape tensors;
        ``run(x (B, M, d), terms) -> (B, M, d)``.

    Taught in chapter 5.
    """

    def __init__(self, decoder: ScoreDecoder):
        super().__init__()
        dec = decoder
        self.dim, self.zdim, self.hidden = dec.dim, dec.zdim, dec.hidden
        self.n_blocks, self.block = dec.n_blocks, dec.block
        self.preconditioning = dec.preconditioning
        d, hid = dec.dim, dec.hidden
        f64 = torch.float64
        dev = dec.inp.weight.device                      # every constant of the fold is made here (CUDA, meta, ...)

        store = torch.float64 if dec.inp.weight.dtype == torch.float64 else torch.float32

        def buf(name, t):
            self.register_buffer(name, t.detach().to(store).contiguous())

        with torch.no_grad():
            if dec.block == "add":
                # the linears of c: input layer, then W_c of every block (bias: W_c's + W1's, both constant)
                w = [dec.inp.weight] + [blk.fc_c.weight for blk in dec.blocks]
                b = [dec.inp.bias] + [blk.fc_c.bias + blk.fc1.bias for blk in dec.blocks]
                wc, bc = torch.stack(w).double(), torch.stack(b).double()            # (n+1, C, c_dim), (n+1, C)
                buf("w_x", wc[:, :, :d].transpose(1, 2))                            # (n+1, d, C)
                buf("w_zs", wc[:, :, d:])                                           # (n+1, C, zdim+1)
                buf("b_c", bc)
                a0, b0, w0, b0f, w1t = [], [], [], [], []
                for blk in dec.blocks:
                    a, bb = _bn_affine(blk.bn0, hid, dev)
                    a0.append(a)
                    b0.append(bb)
                    a1, b1 = _bn_affine(blk.bn1, hid, dev)                                    # bn1 folded into fc0
                    w0.append((a1[:, None] * blk.fc0.weight.double()).t())
                    b0f.append(a1 * blk.fc0.bias.double() + b1)
                    w1t.append(blk.fc1.weight.double().t())
                buf("bn_a", torch.stack(a0))                                        # (n, C)
                buf("bn_b", torch.stack(b0))
                buf("w0t", torch.stack(w0))                                         # (n, C, C)
                buf("b0", torch.stack(b0f))                                         # (n, C)
                buf("w1t", torch.stack(w1t))                                        # (n, C, C)
                a, bb = _bn_affine(dec.out_norm, hid, dev)
                buf("out_a", a)
                buf("out_b", bb)
            else:
                buf("w_x", dec.inp.weight[:, :d].double().t().unsqueeze(0))         # (1, d, C)
                buf("w_zs", dec.inp.weight[:, d:].double().unsqueeze(0))            # (1, C, zdim+1)
                buf("b_c", dec.inp.bias.double().unsqueeze(0))
                norms = [n for blk in dec.blocks for n in (blk.norm0, blk.norm1)] + [dec.out_norm]
                # per norm k: gamma'(c) = a gamma(c), beta'(c) = b gamma(c) + beta(c)   (exact)
                gw, gb, bw, bb_ = [], [], [], []
                for n in norms:
                    a, b = _bn_affine(n.bn, hid, dev)
                    g_w, g_b = n.gamma.weight.double(), n.gamma.bias.double()
                    gw.append(a[:, None] * g_w)
                    gb.append(a * g_b)
                    bw.append(b[:, None] * g_w + n.beta.weight.double())
                    bb_.append(b * g_b + n.beta.bias.double())
                gw, bw = torch.stack(gw), torch.stack(bw)                          # (K, C, c_dim)
                buf("g_x", gw[:, :, :d].transpose(1, 2))                            # (K, d, C)
                buf("g_zs", gw[:, :, d:])                                           # (K, C, zdim+1)
                buf("g_b", torch.stack(gb))                                         # (K, C)
                buf("be_x", bw[:, :, :d].transpose(1, 2))
                buf("be_zs", bw[:, :, d:])
                buf("be_b", torch.stack(bb_))
                buf("w0t", torch.stack([blk.fc0.weight.double().t() for blk in dec.blocks]))
                buf("b0", torch.stack([blk.fc0.bias.double() for blk in dec.blocks]))
                buf("w1t", torch.stack([blk.fc1.weight.double().t() for blk in dec.blocks]))
                # cumulative constant added to the residual stream before norm k (fc1 biases), (K, C)
                b1 = torch.stack([blk.fc1.bias.double() for blk in dec.blocks])
                cum = torch.cat([b1.new_zeros(1, hid), b1.cumsum(0)])     # after 0..n blocks
                buf("s_const", torch.cat([cum[:-1].repeat_interleave(2, 0), cum[-1:]]))
                # norms reading the residual stream (norm0 of each block, the head) see S; norm1 reads fc0's output
                mask = torch.tensor([1.0, 0.0] * dec.n_blocks + [1.0], dtype=f64, device=dev)
                buf("s_mask", mask.unsqueeze(1))                                    # (K, 1)
            buf("out_w", dec.out.weight.double().t())                               # (C, d)
            buf("out_bias", dec.out.bias.double())
        self.eval()

    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError("FoldedDecoder is an inference copy (batch norm folded with running statistics); "
                               "train the original ScoreDecoder instead")
        return super().train(False)

    # -- per-shape work ------------------------------------------------------------------------------------
    @torch.no_grad()
    def precompute(self, z: torch.Tensor, sigma, *, dtype: torch.dtype | None = None, score: bool = False):
        """Everything that depends on ``(z, sigma)`` only, once per shape (float32, then cast to ``dtype``).

        Args:
            z: ``(B, zdim)`` latent codes.
            sigma: ``(B,)`` noise levels (a number or 0-d tensor is broadcast).
            dtype: compute dtype of :meth:`run` (default: the buffers', float32); e.g. ``torch.bfloat16`` on CUDA.
            score: fold ``1 / sigma^2`` into the head, so :meth:`run` returns the score instead of
                ``sigma^2 * score``.

        Returns:
            a dict of tensors for :meth:`run`.
        """
        if z.dim() != 2 or z.shape[1] != self.zdim:
            raise ValueError(f"z must be (B, zdim={self.zdim}), got shape {tuple(z.shape)}")
        sigma = _checks.sigma_batch(sigma, z.shape[0], like=z)
        base = self.w0t.dtype                                                       # float32 (float64 if cast)
        dtype = dtype or base
        c_in, sigma_cond, c_out = preconditioning(sigma.to(base), self.preconditioning)
        zs = torch.cat([z.to(base), sigma_cond.unsqueeze(1)], dim=1)               # (B, zdim+1)
        batch = z.shape[0]
        t = {}
        if self.block == "add":
            shape = torch.einsum("bk,nck->bnc", zs, self.w_zs) + self.b_c           # (B, n+1, C)
            cum = shape.cumsum(1)                                                   # S_j, after j blocks
            t["bn_bias"] = (self.bn_a * cum[:, :-1] + self.bn_b).to(dtype)          # (B, n, C)
            t["out_bias_n"] = (self.out_a * cum[:, -1] + self.out_b).to(dtype).unsqueeze(1)
            t["out_a"] = self.out_a.to(dtype)
            t["bn_a"] = self.bn_a.to(dtype)
            t["w_x"] = self.w_x.to(dtype)                                            # (n+1, d, C)
        else:
            c0 = zs @ self.w_zs[0].t() + self.b_c[0]                                # (B, C): S after the input
            s = (c0.unsqueeze(1) + self.s_const) * self.s_mask                      # (B, K, C): S at norm k
            g_shape = torch.einsum("bk,nck->bnc", zs, self.g_zs) + self.g_b         # (B, K, C)
            be_shape = torch.einsum("bk,nck->bnc", zs, self.be_zs) + self.be_b
            # beta'(c) + gamma'(c) * S  (gamma' = a gamma already); S per shape, gamma' has an x part
            bias = torch.cat([g_shape, be_shape + g_shape * s], dim=-1)             # (B, K, 2C)
            wx = torch.cat([self.g_x.expand(batch, -1, -1, -1),
                            self.be_x + self.g_x * s.unsqueeze(2)], dim=-1)         # (B, K, d, 2C)
            t["gb_bias"] = bias.to(dtype)
            t["gb_x"] = wx.transpose(0, 1).contiguous().to(dtype)                   # (K, B, d, 2C)
            t["w_x0"] = self.w_x[0].to(dtype)                                        # (d, C)
        scale = c_out.view(batch, 1, 1)
        if score:
            scale = scale / sigma.to(base).square().view(batch, 1, 1)
        t["c_in"] = None if self.preconditioning == "none" else c_in.view(batch, 1, 1).to(dtype)
        t["out_w"] = (self.out_w * scale).to(dtype)                                  # (B, C, d)
        t["out_b"] = (self.out_bias * scale).to(dtype)                               # (B, 1, d)
        t["w0t"], t["b0"], t["w1t"] = self.w0t.to(dtype), self.b0.to(dtype), self.w1t.to(dtype)
        return t

    # -- per-point work ------------------------------------------------------------------------------------
    def run(self, x: torch.Tensor, terms: dict) -> torch.Tensor:
        """The decoder on query points, given :meth:`precompute`'s per-shape terms. Returns float32.

        The compute dtype is the one chosen in :meth:`precompute`; an enclosing ``torch.autocast`` is switched
        off here (its casts would mix dtypes in the in-place accumulations).
        """
        if not torch.amp.is_autocast_available(x.device.type):                      # e.g. the meta device
            return self._run(x, terms)
        with torch.autocast(x.device.type, enabled=False):
            return self._run(x, terms)

    def _run(self, x: torch.Tensor, terms: dict) -> torch.Tensor:
        t = terms
        batch, m, d = x.shape
        hid = self.hidden
        dtype = t["w0t"].dtype
        x = x.to(dtype) if t["c_in"] is None else x.to(dtype) * t["c_in"]
        if self.block == "add":
            h = x @ t["w_x"][0]                                                     # (B, M, C): h - S_0
            for i in range(self.n_blocks):
                u = torch.addcmul(t["bn_bias"][:, i:i + 1], h, t["bn_a"][i]).relu_()
                u = torch.addmm(t["b0"][i], u.view(-1, hid), t["w0t"][i]).relu_()
                h = torch.baddbmm(h, x, t["w_x"][i + 1].expand(batch, d, hid))     # + W_x x of block i
                h.view(-1, hid).addmm_(u, t["w1t"][i])                              # + W1 u (biases are in S)
            u = torch.addcmul(t["out_bias_n"], h, t["out_a"]).relu_()
        else:
            h = x @ t["w_x0"]                                                       # (B, M, C): h - S

            def cbn_relu(v, k):
                """relu(gamma'(c) * v + beta'(c)), gamma'/beta' of norm k from one baddbmm."""
                gb = torch.baddbmm(t["gb_bias"][:, k:k + 1], x, t["gb_x"][k])     # (B, M, 2C)
                return torch.addcmul(gb[..., hid:], v, gb[..., :hid]).relu_()

            for i in range(self.n_blocks):
                u = cbn_relu(h, 2 * i)
                u = torch.addmm(t["b0"][i], u.view(-1, hid), t["w0t"][i]).view(batch, m, hid)
                u = cbn_relu(u, 2 * i + 1)
                h = torch.addmm(h.view(-1, hid), u.view(-1, hid), t["w1t"][i]).view(batch, m, hid)
            u = cbn_relu(h, 2 * self.n_blocks)
        out = torch.baddbmm(t["out_b"], u.view(batch, m, hid), t["out_w"])
        return out if out.dtype == torch.float64 else out.float()

    def forward(self, x: torch.Tensor, sigma, z: torch.Tensor) -> torch.Tensor:
        """Same as the decoder's forward in eval mode: ``(B, M, d) -> (B, M, d)`` ``sigma^2 * score``."""
        if x.dim() != 3 or x.shape[-1] != self.dim or x.shape[0] != z.shape[0]:
            raise ValueError(f"x must be (B, M, {self.dim}) with B = z.shape[0], got {tuple(x.shape)}")
        return self.run(x, self.precompute(z, sigma))


def fold_batchnorm(decoder: ScoreDecoder) -> FoldedDecoder:
    """An inference copy of ``decoder`` (eval-mode function) with every batch norm folded (see the module doc).

    The original module is not modified (its mode included). Exact in real arithmetic (the fold itself is
    computed in float64); in float32 the output matches ``decoder.eval()(x, sigma, z)`` to rounding (relative
    ~1e-6). The buffers are float32, or float64 for a float64 decoder.

    Args:
        decoder: a :class:`~gfcore.models.ScoreDecoder` (``"add"`` or ``"cbn"``) whose batch norms keep running
            statistics.

    Returns:
        :class:`FoldedDecoder` in eval mode, on the decoder's device.

    Raises:
        TypeError: not a ``ScoreDecoder``. ValueError: a batch norm without running statistics.

    Taught in chapter 5.
    """
    if not isinstance(decoder, ScoreDecoder):
        raise TypeError(f"decoder must be a ScoreDecoder, got {type(decoder).__name__}")
    return FoldedDecoder(decoder)


def _sigma_key(sigma):
    """What :func:`fast_score_fn` remembers of a sigma: its values where reading them needs no host sync (a number,
    a CPU tensor), else the tensor itself and its version counter (an in-place change makes it a new sigma)."""
    if not isinstance(sigma, torch.Tensor):
        return ("value", float(sigma))
    if sigma.device.type == "cpu":
        return ("cpu", sigma.detach().clone())
    return ("tensor", sigma, sigma._version)


def _same_sigma(old, new) -> bool:
    if old is None or old[0] != new[0]:
        return False
    if new[0] == "value":
        return old[1] == new[1]
    if new[0] == "cpu":
        return old[1].shape == new[1].shape and torch.equal(old[1], new[1])
    return old[1] is new[1] and old[2] == new[2]


def fast_score_fn(model, z: torch.Tensor, *, dtype: torch.dtype | None = None, folded: FoldedDecoder | None = None,
                  compile: bool | str = False):
    """A score callable ``(x (B, M, d), sigma (B,)) -> score (B, M, d)`` for the samplers, on the folded decoder.

    Same function as ``model.score_fn(z)`` in eval mode, faster: batch norm folded, the ``(z, sigma)`` terms and
    ``1 / sigma^2`` computed once per noise level, and optionally a lower compute dtype. The per-level terms are
    cached without a host synchronisation: a number or a CPU tensor by its values, a tensor on an accelerator by
    identity (the same, unmodified tensor object, as :func:`gfcore.sampling.annealed_langevin` passes for every step
    of a level); any other sigma recomputes the terms, so every call gets the terms of the sigma it passes.

    Args:
        model: a :class:`~gfcore.models.ShapeGF` or a :class:`~gfcore.models.ScoreDecoder`.
        z: ``(B, zdim)`` latent codes.
        dtype: compute dtype; default float32. ``torch.bfloat16`` is the fast choice on CUDA (weights and
            activations in bf16, float32 accumulation inside the matrix products; output float32).
        folded: a :class:`FoldedDecoder` to reuse (default: fold ``model``'s decoder now).
        compile: ``torch.compile`` the per-point network (``True`` or a mode such as ``"reduce-overhead"``,
            which adds CUDA graphs).

    Returns:
        ``score_fn(x, sigma)``, returning float32.

    Taught in chapter 5.
    """
    decoder = model.decoder if hasattr(model, "decoder") else model
    folded = folded if folded is not None else fold_batchnorm(decoder).to(z.device)
    z = z.detach()
    run = folded.run
    if compile:
        run = torch.compile(run, mode=None if compile is True else compile, dynamic=False)
    cache = {"key": None, "terms": None}

    def score_fn(x: torch.Tensor, sigma) -> torch.Tensor:
        key = _sigma_key(sigma)
        if not _same_sigma(cache["key"], key):                                   # a new level: per-shape terms
            cache["terms"] = folded.precompute(z, _checks.sigma_batch(sigma, z.shape[0], like=z), dtype=dtype,
                                               score=True)
            cache["key"] = key
        with torch.no_grad():
            if compile == "reduce-overhead" and x.is_cuda:
                torch.compiler.cudagraph_mark_step_begin()
                return run(x, cache["terms"]).clone()
            return run(x, cache["terms"])

    score_fn.folded = folded
    return score_fn

