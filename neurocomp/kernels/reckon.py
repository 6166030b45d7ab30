"""ReckOn's learning step, compiled: its LFSR draws, presynaptic traces, stochastic +-1 LSB
weight updates in the chip's SRAM word and draw order, and its plastic delivery.

The arithmetic is the chip's (``srnn.v``), as :mod:`neurocomp.rules.reckon` documents it; the
scalar functions here are its one definition, which the array functions of that module and
the fused per-step kernels both call. Integers are int64 (every intermediate fits: a 16-bit
learning signal times a 12-bit trace times a 5-bit level, or a 32-bit magnitude shifted by
at most 31 bits). The fused kernels also run the all-float attribution level (weights,
traces and learning signal in float64: the arrays' dtype picks the arithmetic), whose update
is the lowered learning rate's exact step (:func:`neurocomp.rules.reckon.float_step`); other
mixes of the attribution knobs stay in numpy.

LFSR draws read byte tables (:meth:`neurocomp.arith.lfsr.Lfsr.chunk_tables`): a draw's words
and next register are the XOR of one table row per byte of the register (GF(2)-linear).
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from . import kernel, parallel_kernel, prange

W_MIN, W_MAX = -128, 127  # 8-bit two's-complement weights
HIDDEN_WIDTH = 32  # stoch_update WIDTH_IN of the input and recurrent weights
OUTPUT_WIDTH = 28  # ... of the output weights
BLOCK = 16  # post neurons per weight SRAM word (128 bits of 8-bit weights)


# -- LFSR ---------------------------------------------------------------------------------------
@kernel
def lfsr_next(tab_next, reg):
    """The register after one draw from ``reg``."""
    out = 0
    c = 0
    while reg:
        out ^= tab_next[c, reg & 255]
        reg >>= 8
        c += 1
    return out


@kernel
def lfsr_words(tab_words, reg, out):
    """The random words of one draw from ``reg`` into ``out`` (``words_per_draw``)."""
    out[:] = 0
    c = 0
    while reg:
        row = tab_words[c, reg & 255]
        for k in range(out.size):
            out[k] ^= row[k]
        reg >>= 8
        c += 1


@kernel
def lfsr_draw(tab_words, tab_next, regs, out):
    """``out.shape[1]`` consecutive draws from each register of ``regs`` (1-d, updated in
    place): ``out[r, n, :]`` the words of draw ``n`` from register ``r``."""
    for r in range(regs.size):
        reg = regs[r]
        for n in range(out.shape[1]):
            lfsr_words(tab_words, reg, out[r, n])
            reg = lfsr_next(tab_next, reg)
        regs[r] = reg


# -- the chip's arithmetic, one value at a time --------------------------------------------------
@kernel
def wrap(x, bits):
    """Two's-complement wrap of ``x`` to ``bits`` bits (Verilog's truncation)."""
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


@kernel
def decay_round(x, factor, frac_bits, rand, rand_bits, nearest):
    """``x * factor / 2**frac_bits`` rounded as the chip rounds: up by one when the dropped
    fraction (its top ``rand_bits`` bits) is >= ``rand`` and the floor is nonzero; or to
    nearest, halves up (``nearest``: no random number, no condition on the floor)."""
    p = x * factor
    if nearest:
        return (p + (1 << (frac_bits - 1))) >> frac_bits
    q = p >> frac_bits
    frac = p & ((1 << frac_bits) - 1)
    if rand_bits < frac_bits:
        frac >>= frac_bits - rand_bits
    return q + 1 if frac >= rand and q != 0 else q


@kernel
def stoch_step(w, p, lr_p, lr_r, rand, width, enable):
    """``srnn.v``'s ``stoch_update``: ``w + sign(p)`` where ``p != 0`` (and ``enable``) and
    either ``p = -2**(width-1)`` or ``min(|p| << lr_p, 2**width - 1) >> lr_r >= rand``; no
    change when the 8-bit weight would overflow."""
    if p == 0 or not enable:
        return w
    if p != -(1 << (width - 1)):
        tot = min(abs(p) << lr_p, (1 << width) - 1) >> lr_r
        if tot < rand:
            return w
    new = w + 1 if p > 0 else w - 1
    return w if new < W_MIN or new > W_MAX else new


@kernel
def hidden_p(L, t, h, reg_term):
    """The 32-bit ``p`` of an input or recurrent synapse: ``L * t * h`` (``t`` the trace as
    read, ``trace >> FP_LOC``) minus the regularization term, forced to ``-2**31`` where
    that is >= 0 while bit 27 of the product is set (``srnn.v``'s quirk)."""
    prod = wrap(L * t * h, 32) if h != 0 else 0
    s = wrap(prod - reg_term, 32)
    if s >= 0 and (prod >> 27) & 1:
        return -(1 << 31)
    return s


@kernel
def stoch_step_array(w, p, lr_p, lr_r, rand, width, enable, out):
    """:func:`stoch_step` over flat arrays."""
    for k in range(out.size):
        out[k] = stoch_step(w[k], p[k], lr_p, lr_r, rand[k], width, enable[k])


@kernel
def decay_round_array(x, factor, frac_bits, rand, rand_bits, nearest, out):
    """:func:`decay_round` over flat arrays (``rand`` ignored when ``nearest``)."""
    for k in range(out.size):
        out[k] = decay_round(x[k], factor, frac_bits, rand[k], rand_bits, nearest)


# -- traces -------------------------------------------------------------------------------------
@kernel
def trace_step(x, spikes, factor, frac_bits, impulse, top, words, first, rand_bits, nearest):
    """One step of the presynaptic traces ``x`` ``[batch, n]`` (int64, in place): decay
    rounded with this step's numbers (neuron ``first + i`` reads ``words[b, (first + i) % 2,
    (first + i) // 2]``: its SRAM word's number from the LFSR of its parity), the spike's
    impulse, saturation to ``top``."""
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            k = first + i
            r = 0 if nearest else words[b, k & 1, k >> 1]
            t = decay_round(x[b, i], factor, frac_bits, r, rand_bits, nearest) + int(spikes[b, i]) * impulse
            x[b, i] = min(t, top)


@kernel
def float_trace_step(x, spikes, decay, impulse):
    """One step of float64 traces (attribution): exact decay plus the impulse, unsaturated."""
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            x[b, i] = x[b, i] * decay + spikes[b, i] * impulse


# -- the weight updates of one step (EPROP phase) ------------------------------------------------
# One loop template for both arithmetics, chosen by the dtype of the weights and traces: the
# chip's integers (int64), or the all-float attribution level (float64: weights, traces and
# learning signal unquantized, the update the lowered learning rate's exact step).
def read(t, fp):
    """A trace as the update reads it: ``t >> fp`` (integer), ``t / 2**fp`` (float)."""


@overload(read)
def _read(t, fp):
    if isinstance(t, types.Float):
        return lambda t, fp: t / 2.0**fp
    return lambda t, fp: t >> fp


def hidden_synapse(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale):
    """One input or recurrent weight's update (see :func:`_hidden_synapse`)."""


@overload(hidden_synapse)
def _hidden_synapse(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale):
    """Integer: the chip's stochastic step with :func:`hidden_p`. Float: ``w + p * scale``
    (``p = L * t * h - reg_term``, ``scale = 2**(lr_p - lr_r - 32)``), saturated to 8 bits."""
    if isinstance(w, types.Float):

        def exact(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale):
            return min(max(w + ((L * t * h - reg_term) * scale if on else 0.0), W_MIN), W_MAX)

        return exact

    def chip(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale):
        return stoch_step(w, hidden_p(L, t, h, reg_term), lr_p, lr_r, rand, HIDDEN_WIDTH, on)

    return chip


def output_synapse(w, err, t, lr_p, lr_r, rand, scale):
    """One output weight's update (see :func:`_output_synapse`)."""


@overload(output_synapse)
def _output_synapse(w, err, t, lr_p, lr_r, rand, scale):
    """Integer: the stochastic step of the 28-bit ``p = e * t``. Float: ``w + e * t * scale``,
    saturated to 8 bits."""
    if isinstance(w, types.Float):
        return lambda w, err, t, lr_p, lr_r, rand, scale: min(max(w + err * t * scale, W_MIN), W_MAX)
    return lambda w, err, t, lr_p, lr_r, rand, scale: stoch_step(
        w, wrap(err * t, OUTPUT_WIDTH), lr_p, lr_r, rand, OUTPUT_WIDTH, True
    )


@kernel
def _hidden_role(w, t_pre, fp, L, h, reg_term, regularize, lr_p, lr_r, reg_zero, tabs, reg, nearest, recurrent,
                 scale, buf):  # fmt: skip
    """One trial's input or recurrent weights ``w[post, pre]``: block by block of 16 post
    neurons, pre neuron by pre neuron, one draw per SRAM word written (unless the pre trace
    reads 0 and the block has no regularization term: ``reg_zero``); returns the register
    after them. A block none of whose weights can move draws without reading the numbers."""
    tab_words, tab_next = tabs
    n_post, n_pre = w.shape
    for lo in range(0, n_post, BLOCK):
        hi = min(lo + BLOCK, n_post)
        active = False  # a post neuron whose p can be nonzero, with its update on
        for j in range(lo, hi):
            on = h[j] != 0 or regularize
            active = active or (on and ((L[j] != 0 and h[j] != 0) or reg_term[j] != 0))
        for i in range(n_pre):
            t = read(t_pre[i], fp)
            if t == 0 and reg_zero[lo // BLOCK]:
                continue  # the word is not written: no draw
            if active:
                if nearest:
                    buf[:] = 1 << (HIDDEN_WIDTH - 1)
                else:
                    lfsr_words(tab_words, reg, buf)
                for j in range(lo, hi):
                    on = h[j] != 0 or regularize
                    w[j, i] = hidden_synapse(w[j, i], L[j], t, h[j], reg_term[j], on, lr_p, lr_r, buf[j - lo], scale)
            if recurrent and lo <= i < hi:
                w[i, i] = 0  # a written recurrent word sets its autapse to 0 (srnn.v)
            reg = lfsr_next(tab_next, reg)
    return reg


@kernel
def _output_role(w, err, t_out, fp, lr_p, lr_r, tabs, reg, nearest, scale, buf):
    """One trial's output weights ``w[out, hidden]``: one draw per hidden neuron whose output
    trace reads nonzero, its first ``out`` numbers for that neuron's weights (a trace that
    reads 0 makes ``p = 0``: no step, and no exact change either)."""
    tab_words, tab_next = tabs
    n_out, n_hid = w.shape
    for j in range(n_hid):
        t = read(t_out[j], fp)
        if t == 0:
            continue
        if nearest:
            buf[:] = 1 << (OUTPUT_WIDTH - 1)
        else:
            lfsr_words(tab_words, reg, buf)
        reg = lfsr_next(tab_next, reg)
        for k in range(n_out):
            w[k, j] = output_synapse(w[k, j], err[k], t, lr_p, lr_r, buf[k], scale)
    return reg


@kernel
def _learn_trial(b, hid, out, reg_zero, regs, nearest):
    """Trial ``b``'s weight updates: ``hid`` the input and recurrent roles' arguments (see
    :func:`learn_step`), ``out`` the output role's, ``regs`` its three weight LFSR registers."""
    buf = np.empty(BLOCK, np.int64)
    for r in range(len(hid)):
        w, t_pre, fp, L, h, reg_term, regularize, lr_p, lr_r, tabs, recurrent, scale = hid[r]
        regs[b, r] = _hidden_role(w[b], t_pre[b], fp, L[b], h[b], reg_term[b], regularize, lr_p, lr_r, reg_zero[b],
                                  tabs, regs[b, r], nearest, recurrent, scale, buf)  # fmt: skip
    w, err, t_out, fp, lr_p, lr_r, tabs, scale = out
    regs[b, 2] = _output_role(w[b], err[b], t_out[b], fp, lr_p, lr_r, tabs, regs[b, 2], nearest, scale, buf)


@kernel
def learn_step(valid, hid, out, reg_zero, regs, nearest):
    """The EPROP phase of every trial with a target (``valid``), one after the other.
    ``hid``: per input/recurrent role ``(w, t_pre, fp, L, h, reg_term, regularize, lr_p, lr_r,
    (tab_words, tab_next), recurrent, scale)``; ``out``: ``(w, err, t_out, fp, lr_p, lr_r,
    tables, scale)``; ``regs[b]``: the input, recurrent and output weight LFSR registers."""
    for b in range(valid.size):
        if valid[b]:
            _learn_trial(b, hid, out, reg_zero, regs, nearest)


@parallel_kernel
def learn_step_batch(valid, hid, out, reg_zero, regs, nearest):
    """:func:`learn_step` with the trials spread over the cores (each has its own weights and
    LFSRs, so the result does not depend on how they are spread)."""
    for b in prange(valid.size):
        if valid[b]:
            _learn_trial(b, hid, out, reg_zero, regs, nearest)


# -- delivery -----------------------------------------------------------------------------------
@kernel
def deliver_sum(w, spikes, acc):
    """``acc[b, n] = sum_m w[b, n, m] * spikes[b, m]`` for integer weights (exact in float64
    in any order: at most 512 8-bit weights), visiting only the spiking columns."""
    n_b, n_post, n_pre = w.shape
    idx = np.empty(n_pre, np.int64)
    for b in range(n_b):
        k = 0
        for m in range(n_pre):
            if spikes[b, m]:
                idx[k] = m
                k += 1
        for n in range(n_post):
            s = 0
            for q in range(k):
                s += w[b, n, idx[q]] * spikes[b, idx[q]]
            acc[b, n] = s
