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

LFSR draws read tables (:meth:`neurocomp.arith.lfsr.Lfsr.chunk_tables`): a draw's words and
next register are the XOR of one table row per 6-bit chunk of the register (GF(2)-linear).
"""

from __future__ import annotations

import numpy as np
from numba import literal_unroll, types
from numba.extending import overload

from . import kernel

W_MIN, W_MAX = -128, 127  # 8-bit two's-complement weights
HIDDEN_WIDTH = 32  # stoch_update WIDTH_IN of the input and recurrent weights
OUTPUT_WIDTH = 28  # ... of the output weights
BLOCK = 16  # post neurons per weight SRAM word (128 bits of 8-bit weights)
CHUNK_BITS = 6  # register bits per row of the LFSR tables (Lfsr.chunk_tables): 64 rows stay in L1 cache
CHUNK_MASK = (1 << CHUNK_BITS) - 1


# -- LFSR ---------------------------------------------------------------------------------------
@kernel
def lfsr_next(tab_next, reg):
    """The register after one draw from ``reg``."""
    out = 0
    for c in range(tab_next.shape[0]):  # every chunk, zero or not: a loop without unpredictable exits
        out ^= tab_next[c, (reg >> (CHUNK_BITS * c)) & CHUNK_MASK]
    return out


@kernel
def lfsr_step(tab_words, tab_next, reg, out):
    """One draw from ``reg``: its words into ``out`` (``words_per_draw``); returns the next
    register."""
    n = tab_words.shape[2]
    v = reg & CHUNK_MASK
    for k in range(n):
        out[k] = tab_words[0, v, k]
    for c in range(1, tab_words.shape[0]):
        v = (reg >> (CHUNK_BITS * c)) & CHUNK_MASK
        for k in range(n):
            out[k] ^= tab_words[c, v, k]
    return lfsr_next(tab_next, reg)


@kernel
def lfsr_draw(tab_words, tab_next, regs, out):
    """``out.shape[1]`` consecutive draws from each register of ``regs`` (1-d, updated in
    place): ``out[r, n, :]`` the words of draw ``n`` from register ``r``."""
    for r in range(regs.size):
        reg = regs[r]
        for n in range(out.shape[1]):
            reg = lfsr_step(tab_words, tab_next, reg, out[r, n])
        regs[r] = reg


@kernel
def lfsr_draw_all(jobs):
    """:func:`lfsr_draw` for each ``(tab_words, tab_next, regs, out)`` of ``jobs`` (tables of
    any word width: the tuple is unrolled)."""
    for job in literal_unroll(jobs):
        lfsr_draw(job[0], job[1], job[2], job[3])


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
    tot = min(abs(p) << lr_p, (1 << width) - 1) >> lr_r  # |p| <= 2**31, lr_p < 32: fits int64
    fire = (p == -(1 << (width - 1))) | (tot >= rand)
    new = w + ((1 if p > 0 else -1) if fire & (p != 0) & enable else 0)
    return w if (new < W_MIN) | (new > W_MAX) else new  # written without early exits: it vectorizes


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
def level(v, thr, levels):
    """The 5-level pseudo-derivative of a membrane ``v``: ``levels[i]`` for the first threshold
    ``thr[i]`` that ``v`` is below (a priority chain, so unsorted thresholds behave as the
    chip's), ``levels[4]`` if none."""
    for i in range(4):
        if v < thr[i]:
            return levels[i]
    return levels[4]


@kernel
def learning_signal(err, w_out, j, scale_bits, bits):
    """``L_j = sat(((sum_k e_k * W_out[k, j]) << scale_bits) >> 12)`` to ``bits`` signed bits."""
    s = 0
    for k in range(err.size):
        s += err[k] * w_out[k, j]
    return min(max((s << scale_bits) >> 12, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


@kernel
def wrap_array(x, bits, out):
    """:func:`wrap` over flat arrays."""
    for k in range(out.size):
        out[k] = wrap(x[k], bits)


@kernel
def level_array(v, thr, levels, out):
    """:func:`level` over flat arrays."""
    for k in range(out.size):
        out[k] = level(v[k], thr, levels)


@kernel
def learning_signal_array(err, w_out, scale_bits, bits, out):
    """:func:`learning_signal` of every hidden neuron ``j``."""
    for j in range(out.size):
        out[j] = learning_signal(err, w_out, j, scale_bits, bits)


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
def leak(x, factor, frac_bits, words, parity, word, rand_bits, out):
    """The neurons' leak ``x * factor / 2**frac_bits`` (states held in float64) rounded with
    this step's numbers: neuron ``i`` reads ``words[b, parity[i], word[i]]``."""
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            r = words[b, parity[i], word[i]]
            out[b, i] = decay_round(np.int64(x[b, i]), factor, frac_bits, r, rand_bits, False)


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


def fill_learning_signal(L, err, w_out, scale_bits, bits):
    """``L[j]`` of every hidden neuron (see :func:`_fill_learning_signal`)."""


@overload(fill_learning_signal)
def _fill_learning_signal(L, err, w_out, scale_bits, bits):
    """Integer: :func:`learning_signal`. Float: ``L`` is given (numpy's product, in its order)."""
    if isinstance(L.dtype, types.Float):
        return lambda L, err, w_out, scale_bits, bits: None

    def chip(L, err, w_out, scale_bits, bits):
        for j in range(L.size):
            L[j] = learning_signal(err, w_out, j, scale_bits, bits)

    return chip


def regularization(t, fp, f0, k_p, on):
    """A post neuron's regularization term from its recurrent trace (see :func:`_regularization`)."""


@overload(regularization)
def _regularization(t, fp, f0, k_p, on):
    """``max(0, read(t) - F0) << K_P``: 32-bit wrapped (integer) or ``* 2**K_P`` (float); 0 off."""
    if isinstance(t, types.Float):
        return lambda t, fp, f0, k_p, on: max(t / 2.0**fp - f0, 0.0) * 2.0**k_p if on else 0.0
    return lambda t, fp, f0, k_p, on: wrap(max((t >> fp) - f0, 0) << k_p, 32) if on else 0


@kernel
def _hidden_role(w, t_pre, fp, L, h, reg_term, regularize, lr_p, lr_r, reg_zero, tables, reg, nearest, recurrent,
                 scale, rand):  # fmt: skip
    """One trial's input or recurrent weights ``w[post, pre]``: block by block of 16 post
    neurons, pre neuron by pre neuron, one draw per SRAM word written (unless the pre trace
    reads 0 and the block has no regularization term: ``reg_zero``); returns the register
    after them. The block's numbers are drawn first (``rand[n, i]``: number ``n`` of word
    ``i``), then each post neuron's row is updated in one pass over the pre neurons (a loop
    the compiler vectorizes). A block none of whose weights can move draws no numbers."""
    n_post, n_pre = w.shape
    t = np.empty(n_pre, L.dtype)  # the traces as the update reads them
    for i in range(n_pre):
        t[i] = read(t_pre[i], fp)
    written = np.empty(n_pre, np.bool_)
    tab_words, tab_next = tables
    buf = np.empty(tab_words.shape[2], tab_words.dtype)  # the table's width: a 32-bit XOR vectorizes wider
    for lo in range(0, n_post, BLOCK):
        hi = min(lo + BLOCK, n_post)
        active = False  # a post neuron whose p can be nonzero, with its update on
        for j in range(lo, hi):
            active = active or _moves(L[j], h[j], reg_term[j], regularize)
        for i in range(n_pre):
            written[i] = not (t[i] == 0 and reg_zero[lo // BLOCK])
            if not written[i]:
                continue  # one draw per written word
            if active and not nearest:
                reg = lfsr_step(tab_words, tab_next, reg, buf)
                for n in range(BLOCK):
                    rand[n, i] = buf[n]
            else:
                reg = lfsr_next(tab_next, reg)
        if active:
            if nearest:
                rand[:, :] = 1 << (HIDDEN_WIDTH - 1)
            for j in range(lo, hi):
                if _moves(L[j], h[j], reg_term[j], regularize):
                    _hidden_row(w[j], L[j], t, h[j], reg_term[j], h[j] != 0 or regularize, lr_p, lr_r, rand[j - lo],
                                scale, written)  # fmt: skip
        if recurrent:
            for i in range(lo, hi):
                if written[i]:
                    w[i, i] = 0  # a written recurrent word sets its autapse to 0 (srnn.v)
    return reg


@kernel
def _moves(L, h, reg_term, regularize):
    """Whether a post neuron's ``p`` can be nonzero with its update on (``h != 0`` or
    regularization): a nonzero ``L * h`` or regularization term."""
    return (h != 0 or regularize) and ((L != 0 and h != 0) or reg_term != 0)


@kernel
def _hidden_row(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale, written):
    """One post neuron's weights ``w[i]`` where their word is ``written``."""
    for i in range(w.size):
        new = hidden_synapse(w[i], L, t[i], h, reg_term, on, lr_p, lr_r, rand[i], scale)
        w[i] = new if written[i] else w[i]


@kernel
def _output_role(w, err, t_out, fp, lr_p, lr_r, tables, reg, nearest, scale, buf):
    """One trial's output weights ``w[out, hidden]``: one draw per hidden neuron whose output
    trace reads nonzero, its first ``out`` numbers for that neuron's weights (a trace that
    reads 0 makes ``p = 0``: no step, and no exact change either)."""
    tab_words, tab_next = tables
    n_out, n_hid = w.shape
    for j in range(n_hid):
        t = read(t_out[j], fp)
        if t == 0:
            continue
        if nearest:
            buf[:] = 1 << (OUTPUT_WIDTH - 1)
            reg = lfsr_next(tab_next, reg)
        else:
            reg = lfsr_step(tab_words, tab_next, reg, buf)
        for k in range(n_out):
            w[k, j] = output_synapse(w[k, j], err[k], t, lr_p, lr_r, buf[k], scale)
    return reg


@kernel
def _learn_trial(b, hid, out, chip, err, v, L, t_rec, regs, nearest):
    """Trial ``b``'s EPROP phase (see :func:`learn_step`)."""
    thr, levels, sig_scale, sig_bits, regularize, fp_trec, f0 = chip
    n_hid = v.shape[1]
    h = np.empty(n_hid, np.int64)
    for j in range(n_hid):
        h[j] = level(v[b, j], thr, levels)
    w_out = out[0]
    fill_learning_signal(L[b], err[b], w_out[b], sig_scale, sig_bits)  # from W_out before its update
    reg_zero = np.ones((n_hid + BLOCK - 1) // BLOCK, np.bool_)  # blocks without a regularization term
    if regularize:
        for j in range(n_hid):
            if read(t_rec[b, j], fp_trec) - f0 > 0:
                reg_zero[j // BLOCK] = False
    reg_term = np.empty(n_hid, L.dtype)
    for r in range(len(hid)):
        w, t_pre, fp, lr_p, lr_r, tables, recurrent, scale, reg_on, reg_fp, reg_f0, reg_k = hid[r]
        for j in range(n_hid):
            reg_term[j] = regularization(t_rec[b, j], reg_fp, reg_f0, reg_k, reg_on)
        rand = np.empty((BLOCK, w.shape[2]), np.int64)
        regs[r][b, 0] = _hidden_role(w[b], t_pre[b], fp, L[b], h, reg_term, reg_on, lr_p, lr_r, reg_zero, tables,
                                     regs[r][b, 0], nearest, recurrent, scale, rand)  # fmt: skip
    w_out, t_out, fp, lr_p, lr_r, tables, scale = out
    buf = np.empty(tables[0].shape[2], np.int64)
    regs[2][b, 0] = _output_role(w_out[b], err[b], t_out[b], fp, lr_p, lr_r, tables, regs[2][b, 0], nearest, scale, buf)


@kernel
def learn_step(valid, hid, out, chip, err, v, L, t_rec, regs, nearest):
    """The EPROP phase of every trial with a target (``valid``), one after the other: the
    pseudo-derivative of the membranes ``v`` (before the reset), the learning signal ``L``
    from the errors ``err`` (integer: computed here; float: given), the regularization terms
    of the recurrent traces ``t_rec``, then the weights. ``hid``: per input/recurrent role
    ``(w, t_pre, fp, lr_p, lr_r, LFSR tables, recurrent, scale, regularize,
    fp_loc_trec, regul_f0, regul_k_p)``; ``out``: ``(w, t_out, fp, lr_p, lr_r, tables,
    scale)``; ``chip``: ``(thr_h, h_values, learn_sig_scale, signal bits, regularize,
    fp_loc_trec, regul_f0)`` of the output registers; ``regs``: the input, recurrent and output
    weight LFSRs' registers ``[batch, 1]`` (advanced in place)."""
    for b in range(valid.size):
        if valid[b]:
            _learn_trial(b, hid, out, chip, err, v, L, t_rec, regs, nearest)


# -- delivery -----------------------------------------------------------------------------------
@kernel
def deliver(w, spikes, factor, in_scale, out):
    """``out[b, n] += floor(sum_m w[b, n, m] * spikes[b, m] * factor) * in_scale``: integer
    weights summed (exact in float64 in any order: at most 512 8-bit weights), shifted by the
    exponent ``factor = 2**exp`` with the chip's floor, at the input shift. Visits only the
    spiking columns."""
    n_b, n_post, n_pre = w.shape
    idx = np.empty(n_pre, np.int64)
    for b in range(n_b):
        k = 0
        for m in range(n_pre):
            if spikes[b, m]:
                idx[k] = m
                k += 1
        if k == 0:
            continue
        for n in range(n_post):
            s = 0.0
            for q in range(k):
                s += w[b, n, idx[q]] * spikes[b, idx[q]]
            out[b, n] += np.floor(s * factor) * in_scale
