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

from . import kernel, parallel_kernel, prange

CHUNK_BITS = 6  # register bits per row of the LFSR tables (Lfsr.chunk_tables): 64 rows stay in L1 cache
CHUNK_MASK = (1 << CHUNK_BITS) - 1
BY_POST_CHUNKS = 6  # chunks of the per-post weight tables (:func:`_by_post`): registers up to 36 bits


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
def lfsr_first(tab_words, tab_next, reg):
    """The first word of one draw from ``reg`` and the next register (no buffer: both stay in
    registers of the CPU)."""
    word = np.int64(0)
    out = 0
    for c in range(tab_next.shape[0]):
        v = (reg >> (CHUNK_BITS * c)) & CHUNK_MASK
        word ^= np.int64(tab_words[c, v, 0])
        out ^= tab_next[c, v]
    return word, out


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
def stoch_step(w, p, lr_p, lr_r, rand, width, enable, w_bits):
    """``srnn.v``'s ``stoch_update``: ``w + sign(p)`` where ``p != 0`` (and ``enable``) and
    either ``p = -2**(width-1)`` or ``min(|p| << lr_p, 2**width - 1) >> lr_r >= rand``; no
    change when the ``w_bits``-bit two's-complement weight would overflow."""
    tot = min(abs(p) << lr_p, (1 << width) - 1) >> lr_r  # |p| <= 2**31, lr_p < 32: fits int64
    fire = (p == -(1 << (width - 1))) | (tot >= rand)
    new = w + ((1 if p > 0 else -1) if fire & (p != 0) & enable else 0)
    top = 1 << (w_bits - 1)
    return w if (new < -top) | (new >= top) else new  # written without early exits: it vectorizes


@kernel
def hidden_p(L, t, h, reg_term, width, mul_frac):
    """The ``width``-bit (32) ``p`` of an input or recurrent synapse: ``L * t * h`` (``t`` the
    trace as read, ``trace >> FP_LOC``) minus the regularization term, forced to
    ``-2**(width-1)`` where that is >= 0 while bit ``width - 1 - mul_frac`` (27) of the product
    is set (``srnn.v``'s quirk: it tests the top bit of the product scaled by ``2**mul_frac``)."""
    prod = wrap(L * t * h, width) if h != 0 else 0
    s = wrap(prod - reg_term, width)
    if s >= 0 and (prod >> (width - 1 - mul_frac)) & 1:
        return -(1 << (width - 1))
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
def learning_signal(err, w_out, j, scale_bits, shift, bits):
    """``L_j = sat(((sum_k e_k * W_out[k, j]) << scale_bits) >> shift)`` to ``bits`` signed bits
    (``shift``: the profile's ``learning_signal_shift``, 12)."""
    s = 0
    for k in range(err.size):
        s += err[k] * w_out[k, j]
    return min(max((s << scale_bits) >> shift, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


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
def learning_signal_array(err, w_out, scale_bits, shift, bits, out):
    """:func:`learning_signal` of every hidden neuron ``j``."""
    for j in range(out.size):
        out[j] = learning_signal(err, w_out, j, scale_bits, shift, bits)


@kernel
def stoch_step_array(w, p, lr_p, lr_r, rand, width, enable, w_bits, out):
    """:func:`stoch_step` over flat arrays."""
    for k in range(out.size):
        out[k] = stoch_step(w[k], p[k], lr_p, lr_r, rand[k], width, enable[k], w_bits)


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


@kernel
def saturate(x, bits):
    """``x`` clipped to the ``bits``-bit two's-complement range (a float weight's saturation)."""
    top = float(1 << (bits - 1))
    return min(max(x, -top), top - 1.0)


def hidden_synapse(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale, width, w_bits, mul_frac):
    """One input or recurrent weight's update (see :func:`_hidden_synapse`)."""


@overload(hidden_synapse)
def _hidden_synapse(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale, width, w_bits, mul_frac):
    """Integer: the chip's stochastic step with :func:`hidden_p` (``width``: its random number's
    bits). Float: ``w + p * scale`` (``p = L * t * h - reg_term``, ``scale = 2**(lr_p - lr_r -
    width)``), saturated to ``w_bits``."""
    if isinstance(w, types.Float):

        def exact(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale, width, w_bits, mul_frac):
            return saturate(w + ((L * t * h - reg_term) * scale if on else 0.0), w_bits)

        return exact

    def chip(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale, width, w_bits, mul_frac):
        return stoch_step(w, hidden_p(L, t, h, reg_term, width, mul_frac), lr_p, lr_r, rand, width, on, w_bits)

    return chip


def output_synapse(w, err, t, lr_p, lr_r, rand, scale, width, w_bits):
    """One output weight's update (see :func:`_output_synapse`)."""


@overload(output_synapse)
def _output_synapse(w, err, t, lr_p, lr_r, rand, scale, width, w_bits):
    """Integer: the stochastic step of the ``width``-bit ``p = e * t``. Float: ``w + e * t *
    scale``, saturated to ``w_bits``."""
    if isinstance(w, types.Float):
        return lambda w, err, t, lr_p, lr_r, rand, scale, width, w_bits: saturate(w + err * t * scale, w_bits)
    return lambda w, err, t, lr_p, lr_r, rand, scale, width, w_bits: stoch_step(
        w, wrap(err * t, width), lr_p, lr_r, rand, width, True, w_bits
    )


def fill_learning_signal(L, err, w_out, scale_bits, shift, bits):
    """``L[j]`` of every hidden neuron (see :func:`_fill_learning_signal`)."""


@overload(fill_learning_signal)
def _fill_learning_signal(L, err, w_out, scale_bits, shift, bits):
    """Integer: :func:`learning_signal`. Float: ``L`` is given (numpy's product, in its order)."""
    if isinstance(L.dtype, types.Float):
        return lambda L, err, w_out, scale_bits, shift, bits: None

    def chip(L, err, w_out, scale_bits, shift, bits):
        for j in range(L.size):
            L[j] = learning_signal(err, w_out, j, scale_bits, shift, bits)

    return chip


def regularization(t, fp, f0, k_p, on, width):
    """A post neuron's regularization term from its recurrent trace (see :func:`_regularization`)."""


@overload(regularization)
def _regularization(t, fp, f0, k_p, on, width):
    """``max(0, read(t) - F0) << K_P``: ``width``-bit (32) wrapped (integer) or ``* 2**K_P``
    (float); 0 off."""
    if isinstance(t, types.Float):
        return lambda t, fp, f0, k_p, on, width: max(t / 2.0**fp - f0, 0.0) * 2.0**k_p if on else 0.0
    return lambda t, fp, f0, k_p, on, width: wrap(max((t >> fp) - f0, 0) << k_p, width) if on else 0


@kernel
def _hidden_role(w, t_pre, fp, L, h, reg_term, regularize, lr_p, lr_r, reg_zero, tables, reg, nearest, recurrent,
                 scale, rand, width, w_bits, mul_frac):  # fmt: skip
    """One trial's input or recurrent weights ``w[post, pre]``: block by block of ``rand.shape[0]`` post
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
    block = rand.shape[0]  # posts per SRAM word
    for lo in range(0, n_post, block):
        hi = min(lo + block, n_post)
        active = False  # a post neuron whose p can be nonzero, with its update on
        for j in range(lo, hi):
            active = active or _moves(L[j], h[j], reg_term[j], regularize)
        for i in range(n_pre):
            written[i] = not (t[i] == 0 and reg_zero[lo // block])
            if not written[i]:
                continue  # one draw per written word
            if active and not nearest:
                reg = lfsr_step(tab_words, tab_next, reg, buf)
                for n in range(block):
                    rand[n, i] = buf[n]
            else:
                reg = lfsr_next(tab_next, reg)
        if active:
            if nearest:
                rand[:, :] = 1 << (width - 1)
            for j in range(lo, hi):
                if _moves(L[j], h[j], reg_term[j], regularize):
                    _hidden_row(w[j], L[j], t, h[j], reg_term[j], h[j] != 0 or regularize, lr_p, lr_r, rand[j - lo],
                                scale, written, width, w_bits, mul_frac)  # fmt: skip
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
def _hidden_row(w, L, t, h, reg_term, on, lr_p, lr_r, rand, scale, written, width, w_bits, mul_frac):
    """One post neuron's weights ``w[i]`` where their word is ``written``."""
    for i in range(w.size):
        new = hidden_synapse(w[i], L, t[i], h, reg_term, on, lr_p, lr_r, rand[i], scale, width, w_bits, mul_frac)
        w[i] = new if written[i] else w[i]


@kernel
def _output_role(w, err, t_out, fp, lr_p, lr_r, tables, reg, nearest, scale, buf, width, w_bits):
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
            buf[:] = 1 << (width - 1)
            reg = lfsr_next(tab_next, reg)
        else:
            reg = lfsr_step(tab_words, tab_next, reg, buf)
        for k in range(n_out):
            w[k, j] = output_synapse(w[k, j], err[k], t, lr_p, lr_r, buf[k], scale, width, w_bits)
    return reg


@kernel
def _learn_trial(b, hid, out, chip, err, v, L, t_rec, regs, nearest):
    """Trial ``b``'s EPROP phase (see :func:`learn_step`)."""
    thr, levels, sig_scale, sig_shift, sig_bits, regularize, fp_trec, f0 = chip[:8]
    w_bits, hid_width, out_width, block, mul_frac = chip[8:]
    n_hid = v.shape[1]
    h = np.empty(n_hid, np.int64)
    for j in range(n_hid):
        h[j] = level(v[b, j], thr, levels)
    w_out = out[0]
    fill_learning_signal(L[b], err[b], w_out[b], sig_scale, sig_shift, sig_bits)  # from W_out before its update
    reg_zero = np.ones((n_hid + block - 1) // block, np.bool_)  # blocks without a regularization term
    if regularize:
        for j in range(n_hid):
            if read(t_rec[b, j], fp_trec) - f0 > 0:
                reg_zero[j // block] = False
    reg_term = np.empty(n_hid, L.dtype)
    for r in range(len(hid)):
        w, t_pre, fp, lr_p, lr_r, tables, recurrent, scale, reg_on, reg_fp, reg_f0, reg_k = hid[r]
        for j in range(n_hid):
            reg_term[j] = regularization(t_rec[b, j], reg_fp, reg_f0, reg_k, reg_on, hid_width)
        rand = np.empty((block, w.shape[2]), np.int64)
        regs[r][b, 0] = _hidden_role(w[b], t_pre[b], fp, L[b], h, reg_term, reg_on, lr_p, lr_r, reg_zero, tables,
                                     regs[r][b, 0], nearest, recurrent, scale, rand, hid_width, w_bits,
                                     mul_frac)  # fmt: skip
    w_out, t_out, fp, lr_p, lr_r, tables, scale = out
    buf = np.empty(tables[0].shape[2], np.int64)
    regs[2][b, 0] = _output_role(w_out[b], err[b], t_out[b], fp, lr_p, lr_r, tables, regs[2][b, 0], nearest, scale, buf,
                                 out_width, w_bits)  # fmt: skip


@kernel
def learn_step(valid, hid, out, chip, err, v, L, t_rec, regs, nearest):
    """The EPROP phase of every trial with a target (``valid``), one after the other: the
    pseudo-derivative of the membranes ``v`` (before the reset), the learning signal ``L``
    from the errors ``err`` (integer: computed here; float: given), the regularization terms
    of the recurrent traces ``t_rec``, then the weights. ``hid``: per input/recurrent role
    ``(w, t_pre, fp, lr_p, lr_r, LFSR tables, recurrent, scale, regularize,
    fp_loc_trec, regul_f0, regul_k_p)``; ``out``: ``(w, t_out, fp, lr_p, lr_r, tables,
    scale)``; ``chip``: ``(thr_h, h_values, learn_sig_scale, learning_signal_shift, signal bits,
    regularize, fp_loc_trec, regul_f0)`` of the output registers and the profile, then the
    profile's widths ``(weight bits, hidden and output update_prob_bits, posts_per_word,
    regul_mul_frac_bits)``; ``regs``: the input, recurrent and output
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


# -- the whole core, cycle-accurate in its arithmetic (srnn.v's PROP, STEP and EPROP phases) ------
# Register vector of :func:`run_core` (built by :class:`neurocomp.emulator.reckon.ReckonChip`).
(R_N_IN, R_N_REC, R_N_OUT, R_FP_WINP, R_FP_WREC, R_FP_WOUT, R_FP_TINP, R_FP_TREC, R_FP_TOUT, R_SIG_SCALE, R_SIG_BITS,
 R_REGUL_MODE, R_REGUL_W, R_RST_ZERO, R_REGRESSION, R_OUT_ACT, R_ALPHA, R_KAPPA, R_THR, R_LR_R_WINP, R_LR_P_WINP,
 R_LR_R_WREC, R_LR_P_WREC, R_LR_R_WOUT, R_LR_P_WOUT, R_F0, R_K_INP_R, R_K_INP_P, R_K_REC_R, R_K_REC_P, R_K_MUL,
 R_BITS_TINP, R_BITS_TREC, R_BITS_TOUT, R_IMP_INP, R_IMP_REC, R_IMP_OUT, R_ALPHA_ONE,
 R_KAPPA_ONE) = range(39)  # fmt: skip
R_THR_H = 39  # THR_H_0..3
R_H = 43  # H_0..4
R_HID_BITS, R_OUT_BITS, R_ERR_BITS, R_BLOCK = 48, 49, 50, 51  # update_prob_bits, error_bits, posts_per_word
R_V_BITS, R_ALPHA_FRAC, R_KAPPA_FRAC = 52, 53, 54  # membrane width, fraction bits of the two leaks
R_W_BITS = 55  # weight width (two's complement)
R_SIG_SHIFT, R_SIGMOID_ONE, R_MUL_FRAC = 56, 57, 58  # learning_signal_shift, hard_sigmoid_one, regul_mul_frac_bits
N_REGISTERS = 59
# LFSR register columns of :func:`run_core` (one per instance) and the table each draws from
L_MEM0, L_MEM1, L_RO, L_TI0, L_TI1, L_TR0, L_TR1, L_TO0, L_TO1, L_WI, L_WR, L_WO = range(12)
T_MEM, T_RO, T_TI, T_TR, T_TO, T_WI, T_WR, T_WO = range(8)


@kernel
def sat(x, bits):
    """``x`` saturated to ``bits`` signed bits (srnn.v's overflow checks after an add)."""
    return min(max(x, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


@kernel
def _number(words, nexts, table, regs, col, buf):
    """One draw from LFSR instance ``col`` (its words into ``buf``), the register advanced in place."""
    regs[col] = lfsr_step(words[table], nexts[table], regs[col], buf)
    return buf[0]


@kernel
def _prop(x, z, u, ti, tr, to, oneur, winp, wrec, wout, r, do_eprop):
    """The event phase after a tick (``PROP``): input events ``x`` and last step's spikes ``z``,
    pre neuron by pre neuron in index order, each adding its input and recurrent weights to
    every membrane (16-bit saturation after each pre) and its output weights to the readouts;
    an event's presynaptic trace jumps by its impulse (saturating) when that role learns. (The
    input channel just past an odd number of recurrent neurons shares their last SRAM word: the
    event pass over the posts and the ``SUPP`` cycle for inputs past ``NUM_REC`` both add its
    impulse, as srnn.v does.)"""
    n_in, n_rec, n_out = r[R_N_IN], r[R_N_REC], r[R_N_OUT]
    n_post = ((n_rec - 1) | 1) + 1  # the neuron words of posts 0 .. NUM_REC
    # registers as locals: the state arrays are int64 too, so the compiler cannot assume they do not alias r
    fp_in, fp_rec, fp_out, vb = r[R_FP_WINP], r[R_FP_WREC], r[R_FP_WOUT], r[R_V_BITS]
    imp_i, imp_r, imp_o = r[R_IMP_INP], r[R_IMP_REC], r[R_IMP_OUT]
    top_i, top_r, top_o = (1 << r[R_BITS_TINP]) - 1, (1 << r[R_BITS_TREC]) - 1, (1 << r[R_BITS_TOUT]) - 1
    for i in range(max(n_in, n_rec)):
        xi = i < x.size and x[i] != 0
        zi = i < n_rec and z[i] != 0
        if not (xi or zi):
            continue
        if zi:
            for k in range(n_out):
                oneur[k] = sat(oneur[k] + (wout[i, k] << fp_out), vb)
        if xi and zi:
            for j in range(n_post):
                u[j] = sat(u[j] + sat((winp[i, j] << fp_in) + (wrec[i, j] << fp_rec), vb), vb)
        elif xi:
            for j in range(n_post):
                u[j] = sat(u[j] + sat(winp[i, j] << fp_in, vb), vb)
        else:
            for j in range(n_post):
                u[j] = sat(u[j] + sat(wrec[i, j] << fp_rec, vb), vb)
        if xi and do_eprop & 1:
            ti[i] = min(ti[i] + imp_i, top_i)
            if i >= n_rec and i < n_post:  # an input past NUM_REC in the last word: the EVT pass
                ti[i] = min(ti[i] + imp_i, top_i)  # and the SUPP cycle both add
        if zi and do_eprop & 2:
            tr[i] = min(tr[i] + imp_r, top_r)
        if zi and do_eprop & 4:
            to[i] = min(to[i] + imp_o, top_o)
        z[i] = 0


@kernel
def _leak(x, factor, frac_bits, rand, on, bits):
    """``x * factor >> frac_bits`` plus srnn.v's stochastic increment (the dropped fraction >= the
    random number and a nonzero kept part), truncated to ``bits``: signed (``bits`` > 0) or
    unsigned (``-bits``)."""
    p = x * factor
    q = p >> frac_bits
    width = abs(bits)
    kept = q & ((1 << width) - 1)
    up = 1 if on and (p & ((1 << frac_bits) - 1)) >= rand and kept != 0 else 0
    return wrap(q + up, width) if bits > 0 else (kept + up) & ((1 << width) - 1)


@kernel
def _step(u, ti, tr, to, z, oneur, r, words, nexts, regs, buf):
    """The tick's neuron update (``STEP``): two neurons per SRAM word, one word per odd cycle;
    spike where ``u >= thr`` (the membrane after the events), then leak and reset; the three
    traces decay. Every word draws from the paired rounding LFSRs (the membrane pair only
    when the leak is not exactly 1); the readouts leak on cycles 0..15, one number per cycle."""
    n_max = max(r[R_N_IN], r[R_N_REC], r[R_N_OUT])
    alpha, kappa, thr = r[R_ALPHA], r[R_KAPPA], r[R_THR]
    leaky = alpha != r[R_ALPHA_ONE]
    kleaky = kappa != r[R_KAPPA_ONE]
    wi, wr, wo = -r[R_BITS_TINP], -r[R_BITS_TREC], -r[R_BITS_TOUT]  # unsigned widths
    a_frac, k_frac, vb, rst_zero = r[R_ALPHA_FRAC], r[R_KAPPA_FRAC], r[R_V_BITS], r[R_RST_ZERO]
    # the paired LFSRs' registers as locals for the whole phase (one number per draw: word 0)
    wm, wti, wtr, wto = words[T_MEM], words[T_TI], words[T_TR], words[T_TO]
    nm, nti, ntr, nto = nexts[T_MEM], nexts[T_TI], nexts[T_TR], nexts[T_TO]
    m0, m1, i0, i1 = regs[L_MEM0], regs[L_MEM1], regs[L_TI0], regs[L_TI1]
    q0, q1, o0, o1 = regs[L_TR0], regs[L_TR1], regs[L_TO0], regs[L_TO1]
    for w in range(n_max // 2):  # a word is written on an odd cycle <= NUM_RECOUT
        rm0, rm1 = 0, 0
        if leaky:
            rm0, m0 = lfsr_first(wm, nm, m0)
            rm1, m1 = lfsr_first(wm, nm, m1)
        ri0, i0 = lfsr_first(wti, nti, i0)
        ri1, i1 = lfsr_first(wti, nti, i1)
        rr0, q0 = lfsr_first(wtr, ntr, q0)
        rr1, q1 = lfsr_first(wtr, ntr, q1)
        ro0, o0 = lfsr_first(wto, nto, o0)
        ro1, o1 = lfsr_first(wto, nto, o1)
        for n in range(2):
            s = 2 * w + n
            v = u[s]
            lk = _leak(v, alpha, a_frac, rm1 if n else rm0, leaky, vb)
            if v >= thr:
                z[s] = 1
                u[s] = 0 if rst_zero else wrap(lk - thr, vb)
            else:
                z[s] = 0
                u[s] = lk
            ti[s] = _leak(ti[s], alpha, a_frac, ri1 if n else ri0, leaky, wi)
            tr[s] = _leak(tr[s], alpha, a_frac, rr1 if n else rr0, leaky, wr)
            to[s] = _leak(to[s], kappa, k_frac, ro1 if n else ro0, kleaky, wo)
    regs[L_MEM0], regs[L_MEM1], regs[L_TI0], regs[L_TI1] = m0, m1, i0, i1
    regs[L_TR0], regs[L_TR1], regs[L_TO0], regs[L_TO1] = q0, q1, o0, o1
    n_out = r[R_N_OUT]
    for c in range(min(oneur.size, n_max)):  # one readout per STEP cycle
        ro = _number(words, nexts, T_RO, regs, L_RO, buf) if kleaky else 0
        if c < n_out:
            oneur[c] = _leak(oneur[c], kappa, k_frac, ro, kleaky, vb)


@kernel
def _errors(oneur, tar, r, err):
    """The output errors ``e_k = sat16(target - y_k)`` (``output_act_err``): ``y`` the readout
    after this step's leak, through the hard sigmoid ``clip((vo + one) >> 1, 0, one)`` unless
    ``NO_OUT_ACT``; the target is the 16-bit regression value, or ``one`` for the label's output
    and 0 for the others (``one``: the profile's ``hard_sigmoid_one``, 2048)."""
    err[:] = 0
    one = r[R_SIGMOID_ONE]
    for k in range(r[R_N_OUT]):
        vo = oneur[k]
        y = vo
        if r[R_OUT_ACT]:
            y = one if vo > one - 1 else (0 if vo < -one else (vo + one) >> 1)
        yt = tar[k] if r[R_REGRESSION] else (one if tar[0] == k else 0)
        err[k] = sat(yt - y, r[R_ERR_BITS])


@kernel
def stoch_fires(p, lr_p, lr_r, rand, width, enable):
    """Whether ``stoch_update`` writes its byte (``~no_change``; an overflow still writes)."""
    tot = min(abs(p) << lr_p, (1 << width) - 1) >> lr_r
    return enable and p != 0 and (p == -(1 << (width - 1)) or tot >= rand)


@kernel
def _eprop(u, ti, tr, to, winp, wrec, wout, err, r, do_eprop, out_tabs, regs, L, h, treg, act, post, tabs, reads,
           scratch):  # fmt: skip
    """The learning phase (``EPROP``) of a step with a target: block by block of 16 post
    neurons, first each post's pseudo-derivative, regularization term, learning signal (from
    ``W_out`` before its update) and output weights (one draw per post whose output trace reads
    nonzero), then pre neuron by pre neuron one draw per written input and recurrent word
    (:func:`_role_words`; ``reads``: per role the traces as read and the pre neurons whose
    read is nonzero, :func:`_reads`). ``out_tabs``: the output weight LFSR's word and next
    tables; ``tabs``: the input and recurrent ones (:func:`_role_tables`)."""
    n_in, n_rec = r[R_N_IN], r[R_N_REC]
    n_neur = max(n_in, n_rec)
    thr_h, h_values = r[R_THR_H : R_THR_H + 4], r[R_H : R_H + 5]
    last_even = (n_neur - 1) & ~1  # posts beyond NUM_NEUR read the last word the phase read
    mode = r[R_REGUL_MODE]
    block = r[R_BLOCK]
    n_out, fp_trec, f0, fp_tout = r[R_N_OUT], r[R_FP_TREC], r[R_F0], r[R_FP_TOUT]
    scale, shift, sig_bits = r[R_SIG_SCALE], r[R_SIG_SHIFT], r[R_SIG_BITS]
    width, lr_p, lr_r, w_bits = r[R_OUT_BITS], r[R_LR_P_WOUT], r[R_LR_R_WOUT], r[R_W_BITS]
    tab_o, next_o = out_tabs
    reg_o = regs[L_WO]
    n_nz_i, t_max_i = _reads(ti, n_in if do_eprop & 1 else 0, r[R_FP_TINP], reads[0])
    n_nz_r, t_max_r = _reads(tr, n_rec if do_eprop & 2 else 0, r[R_FP_TREC], reads[1])
    for bl in range((n_rec - 1) // block + 1):
        treg_zero = True
        for n in range(block):
            p = bl * block + n
            rs = p if p < n_neur else last_even | (p & 1)
            h[n] = level(u[rs], thr_h, h_values)
            treg[n] = max((tr[rs] >> fp_trec) - f0, 0) if mode else 0
            treg_zero = treg_zero and treg[n] == 0
            L[n] = 0
            if p >= n_rec:
                continue
            if do_eprop & 3:
                s = 0
                for k in range(n_out):
                    s += err[k] * wout[p, k]
                L[n] = sat((s << scale) >> shift, sig_bits)
            t = to[rs] >> fp_tout
            if do_eprop & 4 and t != 0:  # one draw; the outputs past NUM_OUT have e = 0: p = 0, no step
                for k in range(n_out):
                    rnd = np.int64(0)
                    for c in range(tab_o.shape[0]):  # number k of the draw
                        rnd ^= np.int64(tab_o[c, (reg_o >> (CHUNK_BITS * c)) & CHUNK_MASK, k])
                    pk = wrap(err[k] * t, width)
                    wout[p, k] = stoch_step(wout[p, k], pk, lr_p, lr_r, rnd, width, True, w_bits)
                reg_o = lfsr_next(next_o, reg_o)
        if do_eprop & 7 == 4:
            continue
        _movers(L, h, treg, r[R_REGUL_W] & 1, r[R_K_INP_P], r[R_K_INP_R], r, act[0], post[0])
        _movers(L, h, treg, r[R_REGUL_W] & 2, r[R_K_REC_P], r[R_K_REC_R], r, act[1], post[1])
        lo = bl * block
        # a pre neuron's word is written (one draw) unless its trace reads 0 and no post of the
        # block has a regularization term: then every pre neuron's word is
        if do_eprop & 1:
            regs[L_WI] = _role_words(winp, lo, act[0], post[0], r[R_LR_P_WINP], r[R_LR_R_WINP], r[R_HID_BITS],
                                     r[R_W_BITS], r[R_MUL_FRAC], tabs[0], regs[L_WI], reads[0],
                                     n_nz_i if treg_zero else n_in, not treg_zero, t_max_i, False,
                                     scratch)  # fmt: skip
        if do_eprop & 2:
            regs[L_WR] = _role_words(wrec, lo, act[1], post[1], r[R_LR_P_WREC], r[R_LR_R_WREC], r[R_HID_BITS],
                                     r[R_W_BITS], r[R_MUL_FRAC], tabs[1], regs[L_WR], reads[1],
                                     n_nz_r if treg_zero else n_rec, not treg_zero, t_max_r, True,
                                     scratch)  # fmt: skip
    regs[L_WO] = reg_o


@kernel
def _movers(L, h, treg, reg_w, k_p, k_r, r, act, post):
    """The posts of a block whose ``p`` can be nonzero: ``act[0, 0]`` of them with a nonzero trace
    read, in ``act[0, 1:]`` (a nonzero ``L * h``, or an additive regularization term), and
    ``act[1, 0]`` with a zero one, in ``act[1, 1:]`` (the regularization term only); and each
    post's part of ``p`` that does not depend on the pre neuron, ``post[:, n]``: ``L * h``, the
    additive term, the multiplicative factor (``srnn.v``'s ``prob_wregs``, in units of
    ``2**-R_MUL_FRAC``: ``16 - m`` for ``m = treg >> K_MUL`` below 16, else 0) and the enable."""
    mode, width, frac = r[R_REGUL_MODE], r[R_HID_BITS], r[R_MUL_FRAC]
    one = 1 << frac
    act[0, 0] = 0
    act[1, 0] = 0
    for n in range(L.size):
        post[0, n] = L[n] * h[n]
        post[1, n] = wrap(((treg[n] << k_p) & ((1 << width) - 1)) >> k_r, width) if (mode & 2) and reg_w else 0
        post[2, n] = one
        if (mode & 1) and r[R_REGUL_W] != 0:
            m = treg[n] >> r[R_K_MUL]
            post[2, n] = 0 if m >> frac else one - (m & (one - 1))
        post[3, n] = h[n] != 0 or (mode != 0 and reg_w != 0)
        reg = (mode & 2) != 0 and reg_w != 0 and treg[n] != 0
        if reg or (L[n] != 0 and h[n] != 0):
            act[0, 0] += 1
            act[0, act[0, 0]] = n
        if reg:
            act[1, 0] += 1
            act[1, act[1, 0]] = n


@kernel
def _hidden_p(lh, t, wregi, wregs, width, frac):
    """The ``width``-bit (32) ``p`` of an input or recurrent synapse from its post's parts
    (:func:`_movers`) and the pre trace as read (``srnn.v``'s ``prob_winp``: the product ``L * t
    * h`` scaled by the multiplicative factor ``wregs / 2**frac``, minus the additive term,
    forced to ``-2**(width-1)`` where that is >= 0 while bit ``width - 1`` of the scaled product
    is set)."""
    pe = wrap(lh * t, width)
    pk = (pe << frac) if pe < 0 else pe * wregs
    ps = wrap(wrap(pk >> frac, width) - wregi, width)
    return -(1 << (width - 1)) if ps >= 0 and (pk >> (width - 1)) & 1 else ps


@kernel
def _reads(trace, n, fp, out):
    """A role's ``n`` pre traces as the update reads them, ``out[0, i] = trace[i] >> fp``, and the
    pre neurons whose read is nonzero, ``out[1, :count]`` in order (the words written where no
    post of a block has a regularization term); returns ``count`` and the largest read."""
    count, t_max = 0, 0
    for i in range(n):
        t = trace[i] >> fp
        out[0, i] = t
        out[1, count] = i
        count += t != 0
        t_max = max(t_max, t)
    return count, t_max


@kernel
def _role_words(w, lo, act, post, lr_p, lr_r, width, w_bits, frac, tabs, reg, reads, nw, dense, t_max, recurrent,
                scratch):  # fmt: skip
    """The ``nw`` written words of one block (posts ``lo ..``) in the weights ``w[pre, post]`` of
    one role, in draw order (``dense``: pre neurons ``0 .. nw - 1``; else those of ``reads[1]``),
    from the weight LFSR's register ``reg``; returns the register after them (one draw per
    word). Word by word, the posts of ``act`` (:func:`_movers`: the others keep their weight),
    each with its own number of the word's draw (``by_post[n]``: the LFSR tables of number
    ``n``). A recurrent word's autapse is written as 0 where its update fires.

    Event-driven and exact: a post that cannot move reads no number, and a post whose ``p`` is
    bounded reads its number only in the words whose number's top ``q`` bits are within its
    bound (:func:`_limit`). One table lookup per register chunk gives a word's next register
    and the top bits of all its numbers (``comb``), and one SWAR compare tests them against
    every post's bound at once (even and odd posts in lanes of ``2q`` bits, a lane's top bit
    set where the bound is reached). A block without moving posts jumps over its words
    (``jumps[k]``: the register after ``2**k`` draws)."""
    by_post, comb, jumps = tabs
    movers, regular = act[0], act[1]
    n_mov = movers[0]
    if n_mov == 0 or nw == 0:
        for k in range(jumps.shape[0]):
            if (nw >> k) & 1:
                reg = _next_fixed(jumps[k], reg)
        return reg
    n_num = by_post.shape[0]
    q = min(64 // n_num, width)
    mask = (1 << q) - 1
    nib, top_bit = np.int64(0), np.int64(0)  # the lanes' low q bits, the lanes' top bits
    for lane in range((n_num + 1) // 2):
        nib |= np.int64(mask) << (2 * q * lane)
        top_bit |= np.int64(1) << (2 * q * lane + 2 * q - 1)
    lim, also = scratch[0], scratch[1]
    lim_even, lim_odd, on_even, on_odd = np.int64(0), np.int64(0), np.int64(0), np.int64(0)
    for m in range(n_mov):
        n = movers[m + 1]
        also_zero = False  # a post with a regularization term moves where the trace reads 0 too
        for i in range(1, regular[0] + 1):
            also_zero = also_zero or regular[i] == n
        also[m] = also_zero
        lim[m] = _limit(post[0, n], post[1, n], post[2, n], post[3, n] != 0, t_max, lr_p, lr_r, width, frac, q)
        if lim[m] >= 0:  # its lane: the bound, and the top bit kept
            lane = np.int64(2 * q * (n >> 1))
            if n & 1:
                lim_odd |= lim[m] << lane
                on_odd |= np.int64(1) << (lane + 2 * q - 1)
            else:
                lim_even |= lim[m] << lane
                on_even |= np.int64(1) << (lane + 2 * q - 1)
    lim_even |= top_bit
    lim_odd |= top_bit
    m6 = CHUNK_MASK
    for k in range(nw):
        i = k if dense else reads[1, k]
        c0, c1, c2 = reg & m6, (reg >> 6) & m6, (reg >> 12) & m6
        c3, c4, c5 = (reg >> 18) & m6, (reg >> 24) & m6, (reg >> 30) & m6
        top = ((comb[0, c0, 1] ^ comb[1, c1, 1]) ^ (comb[2, c2, 1] ^ comb[3, c3, 1])) ^ (
            comb[4, c4, 1] ^ comb[5, c5, 1]
        )
        nxt = ((comb[0, c0, 0] ^ comb[1, c1, 0]) ^ (comb[2, c2, 0] ^ comb[3, c3, 0])) ^ (
            comb[4, c4, 0] ^ comb[5, c5, 0]
        )
        hit = (((lim_even - (top & nib)) & on_even) | ((lim_odd - ((top >> q) & nib)) & on_odd)) != 0
        if hit:  # some post's number may be within its bound
            t = reads[0, i]
            for m in range(n_mov):
                n = movers[m + 1]
                if (top >> (q * n)) & mask > lim[m]:
                    continue  # its number exceeds any of its totals: no update
                lh, wregi, wregs, on = post[0, n], post[1, n], post[2, n], post[3, n] != 0
                tab = by_post[n]
                rnd = np.int64(0)
                for c in range(BY_POST_CHUNKS):
                    rnd ^= np.int64(tab[c, (reg >> (CHUNK_BITS * c)) & CHUNK_MASK])
                p = _hidden_p(lh, t, wregi, wregs, width, frac)
                if stoch_fires(p, lr_p, lr_r, rnd, width, on and (t != 0 or also[m] != 0)):
                    col = lo + n
                    new = stoch_step(w[i, col], p, lr_p, lr_r, rnd, width, on, w_bits)
                    w[i, col] = 0 if recurrent and i == col else new
        reg = nxt
    return reg


@kernel
def _limit(lh, wregi, wregs, on, t_max, lr_p, lr_r, width, frac, q):
    """The top ``q`` bits of a bound on ``stoch_update``'s total of one post over trace reads
    ``0 .. t_max`` (a number whose top bits exceed it cannot fire): -1 when the post cannot
    fire, ``2**q - 1`` (every word checked) when ``p`` could wrap or be forced to
    ``-2**(width-1)`` (:func:`_hidden_p`). Otherwise ``|p| <= (|lh| t m >> frac) + wregi``
    (``m = max(wregs, 2**frac)``) with no wrap: ``|lh| t m`` and ``wregi >= 0`` below
    ``2**(width-2)``, so a product ``pe >= 0`` scales below ``2**(width-1)`` (bit
    ``width - 1`` clear) and a ``pe < 0`` leaves ``ps < 0``."""
    if not on:
        return -1
    quarter = 1 << (width - 2)
    m = max(wregs, 1 << frac)
    a = abs(lh) * t_max * m
    if wregi < 0 or wregi >= quarter or a >= quarter:
        return (1 << q) - 1
    ub = (a >> frac) + wregi
    tot = min(ub << lr_p, (1 << width) - 1) >> lr_r
    return tot >> (width - q)


@kernel
def _next_fixed(tab, reg):
    """:func:`lfsr_next` with tables of :data:`BY_POST_CHUNKS` rows (:func:`_pad_next`), written
    out as a tree: the register chain of a block's words is a chain of dependent steps, and a
    loop of unknown length would be compiled into gathers, whose latency that chain pays."""
    m = CHUNK_MASK
    return ((tab[0, reg & m] ^ tab[1, (reg >> 6) & m]) ^ (tab[2, (reg >> 12) & m] ^ tab[3, (reg >> 18) & m])) ^ (
        tab[4, (reg >> 24) & m] ^ tab[5, (reg >> 30) & m]
    )


@kernel
def _pad_next(tab_next):
    """Next-register tables ``[chunk, value]`` padded with zero rows to :data:`BY_POST_CHUNKS`."""
    if tab_next.shape[0] > BY_POST_CHUNKS:
        raise ValueError("a weight LFSR wider than the compiled draw's 36 bits")
    out = np.zeros((BY_POST_CHUNKS, tab_next.shape[1]), tab_next.dtype)
    out[: tab_next.shape[0]] = tab_next
    return out


@kernel
def _role_tables(tab_words, tab_next, width, n_words):
    """A hidden role's weight LFSR tables as :func:`_role_words` reads them: the word tables by
    post (:func:`_by_post`); per chunk and value the next register and the top bits of every
    number (``[chunk, value, 2]``: one cache line for both; :func:`_pad_next`,
    :func:`_top_table`); and the registers after ``2**k`` draws, ``[k, chunk, value]`` for
    ``2**k <= n_words`` (an advance by ``m`` draws is linear: the ``m``-draw table applied to the
    ``m``-draw table's rows gives the ``2m``-draw one)."""
    nxt = _pad_next(tab_next)
    top = _top_table(tab_words, width)
    comb = np.empty(nxt.shape + (2,), np.int64)
    comb[:, :, 0] = nxt
    comb[:, :, 1] = top
    n_jumps = 1
    while (1 << n_jumps) <= n_words:
        n_jumps += 1
    jumps = np.empty((n_jumps,) + nxt.shape, np.int64)
    jumps[0] = nxt
    for k in range(1, n_jumps):
        for c in range(nxt.shape[0]):
            for v in range(nxt.shape[1]):
                jumps[k, c, v] = _next_fixed(jumps[k - 1], jumps[k - 1, c, v])
    return _by_post(tab_words), comb, jumps


@kernel
def _tables_by_post(words, nexts, r_hid_bits, n_words):
    """The input and recurrent weight LFSRs' tables (:func:`_role_tables`), as one flat tuple
    (input, recurrent; a tuple of tuples cannot cross into a ``prange`` loop)."""
    by_i, comb_i, jumps_i = _role_tables(words[T_WI], nexts[T_WI], r_hid_bits, n_words)
    by_r, comb_r, jumps_r = _role_tables(words[T_WR], nexts[T_WR], r_hid_bits, n_words)
    return by_i, comb_i, jumps_i, by_r, comb_r, jumps_r


@kernel
def _top_table(tab_words, width):
    """Per chunk and value the top ``q = min(64 // numbers, width)`` bits of each number of an
    LFSR draw's ``width``-bit words, number ``n`` at bit ``q * n`` of one integer, padded to
    :data:`BY_POST_CHUNKS` rows (GF(2)-linear like the words: a draw's top bits are the XOR of
    its chunks' rows; :func:`_role_words`)."""
    n_c, n_v, n_n = tab_words.shape
    if n_c > BY_POST_CHUNKS or n_n > 64:
        raise ValueError("a weight LFSR wider than the compiled draw's 36 bits, or more than 64 numbers per draw")
    q = min(64 // n_n, width)
    out = np.zeros((BY_POST_CHUNKS, n_v), np.int64)
    for c in range(n_c):
        for v in range(n_v):
            acc = np.int64(0)
            for n in range(n_n):
                acc |= ((np.int64(tab_words[c, v, n]) >> (width - q)) & ((1 << q) - 1)) << (q * n)
            out[c, v] = acc
    return out


@kernel
def _by_post(tab_words):
    """LFSR word tables ``[chunk, value, number]`` as ``[number, chunk, value]``: the rows one
    post's number reads, together (:func:`_role_words`)."""
    n_c, n_v, n_n = tab_words.shape
    if n_c > BY_POST_CHUNKS:
        raise ValueError("a weight LFSR wider than the compiled draw's 36 bits")
    out = np.zeros((n_n, BY_POST_CHUNKS, n_v), tab_words.dtype)  # chunks past the register: 0, drawing 0
    for c in range(n_c):
        for v in range(n_v):
            for n in range(n_n):
                out[n, c, v] = tab_words[c, v, n]
    return out


@parallel_kernel
def run_core(r, words, nexts, lfsr, u, ti, tr, to, z, oneur, winp, wrec, wout, x, tar, valid, do_eprop, recs):
    """``x.shape[0]`` steps of every trial (``prange``): per step the events, the neuron update
    and, where ``valid`` (a target), the learning phase. State ``[batch, ...]`` in place:
    membranes ``u``, traces ``ti``/``tr``/``to`` and spikes ``z`` per neuron slot, readouts
    ``oneur`` ``[batch, 16]``, weights in SRAM layout ``winp[b, pre, post]``, ``wrec``,
    ``wout[b, pre, out]``, LFSR registers ``lfsr[b, L_*]``. ``recs``: ``(z, u, oneur, winp,
    wrec, wout, ti, tr, to)`` per step, each ``[steps, batch, ...]`` or an empty array (not
    recorded)."""
    tabs = _tables_by_post(words, nexts, r[R_HID_BITS], max(winp.shape[1], wrec.shape[1]))
    for b in prange(u.shape[0]):
        _run_trial(b, r, words, nexts, tabs, lfsr, u, ti, tr, to, z, oneur, winp, wrec, wout, x, tar, valid,
                   do_eprop, recs)  # fmt: skip


@kernel
def run_core_serial(r, words, nexts, lfsr, u, ti, tr, to, z, oneur, winp, wrec, wout, x, tar, valid, do_eprop, recs):
    """:func:`run_core` on the calling thread (one trial: no thread pool to wake)."""
    tabs = _tables_by_post(words, nexts, r[R_HID_BITS], max(winp.shape[1], wrec.shape[1]))
    for b in range(u.shape[0]):
        _run_trial(b, r, words, nexts, tabs, lfsr, u, ti, tr, to, z, oneur, winp, wrec, wout, x, tar, valid,
                   do_eprop, recs)  # fmt: skip


@kernel
def _run_trial(b, r, words, nexts, tabs, lfsr, u, ti, tr, to, z, oneur, winp, wrec, wout, x, tar, valid, do_eprop,
               recs):  # fmt: skip
    """Trial ``b`` of :func:`run_core`."""
    block = r[R_BLOCK]
    buf = np.empty(max(block, oneur.shape[1]), np.int64)
    err = np.zeros(oneur.shape[1], np.int64)
    L = np.zeros(block, np.int64)
    h = np.zeros(block, np.int64)
    treg = np.zeros(block, np.int64)
    act = np.zeros((2, 2, block + 1), np.int64)
    post = np.zeros((2, 4, block), np.int64)
    reads = np.zeros((2, 2, max(winp.shape[1], wrec.shape[1])), np.int64)  # per role (_reads)
    scratch = np.zeros((2, block), np.int64)  # per moving post (_role_words)
    out_tabs = (words[T_WO], nexts[T_WO])
    role_tabs = ((tabs[0], tabs[1], tabs[2]), (tabs[3], tabs[4], tabs[5]))
    # the trial's views, once (not per step: each view counts a reference)
    regs, ub, tib, trb, tob, zb, ob = lfsr[b], u[b], ti[b], tr[b], to[b], z[b], oneur[b]
    wib, wrb, wob, xb, tarb = winp[b], wrec[b], wout[b], x[:, b], tar[:, b]
    for t in range(x.shape[0]):
        _prop(xb[t], zb, ub, tib, trb, tob, ob, wib, wrb, wob, r, do_eprop)
        _step(ub, tib, trb, tob, zb, ob, r, words, nexts, regs, buf)
        if do_eprop and valid[t, b]:
            _errors(ob, tarb[t], r, err)
            _eprop(ub, tib, trb, tob, wib, wrb, wob, err, r, do_eprop, out_tabs, regs, L, h, treg, act, post,
                   role_tabs, reads, scratch)  # fmt: skip
        _record(recs, t, b, zb, ub, ob, wib, wrb, wob, tib, trb, tob, r)


@kernel
def _record(recs, t, b, z, u, oneur, winp, wrec, wout, ti, tr, to, r):
    """Step ``t`` of trial ``b`` into the recordings that are not empty (program neurons only)."""
    n_in, n_rec, n_out = recs[6].shape[2] if recs[6].size else 0, r[R_N_REC], r[R_N_OUT]
    if recs[0].size:
        for j in range(n_rec):
            recs[0][t, b, j] = z[j]
    if recs[1].size:
        for j in range(n_rec):
            recs[1][t, b, j] = u[j]
    if recs[2].size:
        for k in range(n_out):
            recs[2][t, b, k] = oneur[k]
    if recs[3].size:
        recs[3][t, b] = winp[: recs[3].shape[2], :n_rec]
    if recs[4].size:
        recs[4][t, b] = wrec[:, :n_rec]
    if recs[5].size:
        recs[5][t, b] = wout[:, :n_out]
    if recs[6].size:
        recs[6][t, b] = ti[:n_in]
    if recs[7].size:
        recs[7][t, b] = tr[:n_rec]
    if recs[8].size:
        recs[8][t, b] = to[:n_rec]
