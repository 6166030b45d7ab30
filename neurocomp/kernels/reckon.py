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
N_REGISTERS = 55
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
    for i in range(max(n_in, n_rec)):
        xi = i < x.size and x[i] != 0
        zi = i < n_rec and z[i] != 0
        if not (xi or zi):
            continue
        if zi:
            for k in range(n_out):
                oneur[k] = sat(oneur[k] + (wout[i, k] << r[R_FP_WOUT]), r[R_V_BITS])
        for j in range(n_post):
            a = (winp[i, j] << r[R_FP_WINP]) if xi else 0
            c = (wrec[i, j] << r[R_FP_WREC]) if zi else 0
            u[j] = sat(u[j] + sat(a + c, r[R_V_BITS]), r[R_V_BITS])
        if xi and do_eprop & 1:
            ti[i] = min(ti[i] + r[R_IMP_INP], (1 << r[R_BITS_TINP]) - 1)
            if i >= n_rec and i < n_post:  # an input past NUM_REC in the last word: the EVT pass
                ti[i] = min(ti[i] + r[R_IMP_INP], (1 << r[R_BITS_TINP]) - 1)  # and the SUPP cycle both add
        if zi and do_eprop & 2:
            tr[i] = min(tr[i] + r[R_IMP_REC], (1 << r[R_BITS_TREC]) - 1)
        if zi and do_eprop & 4:
            to[i] = min(to[i] + r[R_IMP_OUT], (1 << r[R_BITS_TOUT]) - 1)
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
    for w in range(n_max // 2):  # a word is written on an odd cycle <= NUM_RECOUT
        rm0 = _number(words, nexts, T_MEM, regs, L_MEM0, buf) if leaky else 0
        rm1 = _number(words, nexts, T_MEM, regs, L_MEM1, buf) if leaky else 0
        ri0 = _number(words, nexts, T_TI, regs, L_TI0, buf)
        ri1 = _number(words, nexts, T_TI, regs, L_TI1, buf)
        rr0 = _number(words, nexts, T_TR, regs, L_TR0, buf)
        rr1 = _number(words, nexts, T_TR, regs, L_TR1, buf)
        ro0 = _number(words, nexts, T_TO, regs, L_TO0, buf)
        ro1 = _number(words, nexts, T_TO, regs, L_TO1, buf)
        for n in range(2):
            s = 2 * w + n
            v = u[s]
            lk = _leak(v, alpha, r[R_ALPHA_FRAC], rm1 if n else rm0, leaky, r[R_V_BITS])
            if v >= thr:
                z[s] = 1
                u[s] = 0 if r[R_RST_ZERO] else wrap(lk - thr, r[R_V_BITS])
            else:
                z[s] = 0
                u[s] = lk
            ti[s] = _leak(ti[s], alpha, r[R_ALPHA_FRAC], ri1 if n else ri0, leaky, wi)
            tr[s] = _leak(tr[s], alpha, r[R_ALPHA_FRAC], rr1 if n else rr0, leaky, wr)
            to[s] = _leak(to[s], kappa, r[R_KAPPA_FRAC], ro1 if n else ro0, kleaky, wo)
    for c in range(min(oneur.size, n_max)):  # one readout per STEP cycle
        ro = _number(words, nexts, T_RO, regs, L_RO, buf) if kleaky else 0
        if c < r[R_N_OUT]:
            oneur[c] = _leak(oneur[c], kappa, r[R_KAPPA_FRAC], ro, kleaky, r[R_V_BITS])


@kernel
def _errors(oneur, tar, r, err):
    """The output errors ``e_k = sat16(target - y_k)`` (``output_act_err``): ``y`` the readout
    after this step's leak, through the hard sigmoid unless ``NO_OUT_ACT``; the target is the
    16-bit regression value, or 2048 for the label's output and 0 for the others."""
    err[:] = 0
    for k in range(r[R_N_OUT]):
        vo = oneur[k]
        y = vo
        if r[R_OUT_ACT]:
            y = 2048 if vo > 2047 else (0 if vo < -2048 else (vo + 2048) >> 1)
        yt = tar[k] if r[R_REGRESSION] else (2048 if tar[0] == k else 0)
        err[k] = sat(yt - y, r[R_ERR_BITS])


@kernel
def stoch_fires(p, lr_p, lr_r, rand, width, enable):
    """Whether ``stoch_update`` writes its byte (``~no_change``; an overflow still writes)."""
    tot = min(abs(p) << lr_p, (1 << width) - 1) >> lr_r
    return enable and p != 0 and (p == -(1 << (width - 1)) or tot >= rand)


@kernel
def _eprop(u, ti, tr, to, winp, wrec, wout, err, r, do_eprop, words, nexts, regs, buf, L, h, treg, act, post):
    """The learning phase (``EPROP``) of a step with a target: block by block of 16 post
    neurons, first each post's pseudo-derivative, regularization term, learning signal (from
    ``W_out`` before its update) and output weights (one draw per post whose output trace reads
    nonzero), then pre neuron by pre neuron one draw per written input and recurrent word."""
    n_in, n_rec = r[R_N_IN], r[R_N_REC]
    n_neur = max(n_in, n_rec)
    last_even = (n_neur - 1) & ~1  # posts beyond NUM_NEUR read the last word the phase read
    mode = r[R_REGUL_MODE]
    block = r[R_BLOCK]
    for bl in range((n_rec - 1) // block + 1):
        treg_zero = True
        for n in range(block):
            p = bl * block + n
            rs = p if p < n_neur else last_even | (p & 1)
            h[n] = 0
            for i in range(5):  # the priority chain of THR_H_0..3
                if i == 4 or u[rs] < r[R_THR_H + i]:
                    h[n] = r[R_H + i]
                    break
            treg[n] = max((tr[rs] >> r[R_FP_TREC]) - r[R_F0], 0) if mode else 0
            treg_zero = treg_zero and treg[n] == 0
            L[n] = 0
            if p >= n_rec:
                continue
            if do_eprop & 3:
                s = 0
                for k in range(r[R_N_OUT]):
                    s += err[k] * wout[p, k]
                L[n] = sat((s << r[R_SIG_SCALE]) >> 12, r[R_SIG_BITS])
            t = to[rs] >> r[R_FP_TOUT]
            if do_eprop & 4 and t != 0:
                _number(words, nexts, T_WO, regs, L_WO, buf)
                width = r[R_OUT_BITS]
                for k in range(wout.shape[1]):
                    pk = wrap(err[k] * t, width)
                    wout[p, k] = stoch_step(wout[p, k], pk, r[R_LR_P_WOUT], r[R_LR_R_WOUT], buf[k], width, True)
        if do_eprop == 4:
            continue
        _movers(L, h, treg, r[R_REGUL_W] & 1, r[R_K_INP_P], r[R_K_INP_R], r, act[0], post[0])
        _movers(L, h, treg, r[R_REGUL_W] & 2, r[R_K_REC_P], r[R_K_REC_R], r, act[1], post[1])
        for i in range(n_neur):
            if do_eprop & 1 and i < n_in:
                _pre_word(winp[i, bl * block : (bl + 1) * block], -1, ti[i] >> r[R_FP_TINP], treg_zero, act[0],
                          post[0], r[R_LR_P_WINP], r[R_LR_R_WINP], r[R_HID_BITS], words[T_WI], nexts[T_WI], regs,
                          L_WI)  # fmt: skip
            if do_eprop & 2 and i < n_rec:
                a = i - bl * block  # the autapse's post in this block, if there
                _pre_word(wrec[i, bl * block : (bl + 1) * block], a if 0 <= a < block else -1, tr[i] >> r[R_FP_TREC],
                          treg_zero, act[1], post[1], r[R_LR_P_WREC], r[R_LR_R_WREC], r[R_HID_BITS], words[T_WR],
                          nexts[T_WR], regs, L_WR)  # fmt: skip


@kernel
def _movers(L, h, treg, reg_w, k_p, k_r, r, act, post):
    """The posts of a block whose ``p`` can be nonzero: ``act[0, 0]`` of them with a nonzero trace
    read, in ``act[0, 1:]`` (a nonzero ``L * h``, or an additive regularization term), and
    ``act[1, 0]`` with a zero one, in ``act[1, 1:]`` (the regularization term only); and each
    post's part of ``p`` that does not depend on the pre neuron, ``post[:, n]``: ``L * h``, the
    additive term, the multiplicative factor (``srnn.v``'s ``prob_wregs``) and the enable."""
    mode = r[R_REGUL_MODE]
    act[0, 0] = 0
    act[1, 0] = 0
    for n in range(L.size):
        post[0, n] = L[n] * h[n]
        post[1, n] = wrap(((treg[n] << k_p) & 0xFFFFFFFF) >> k_r, 32) if (mode & 2) and reg_w else 0
        post[2, n] = 16
        if (mode & 1) and r[R_REGUL_W] != 0:
            m = treg[n] >> r[R_K_MUL]
            post[2, n] = 0 if m >> 4 else 16 - (m & 15)
        post[3, n] = h[n] != 0 or (mode != 0 and reg_w != 0)
        reg = (mode & 2) != 0 and reg_w != 0 and treg[n] != 0
        if reg or (L[n] != 0 and h[n] != 0):
            act[0, 0] += 1
            act[0, act[0, 0]] = n
        if reg:
            act[1, 0] += 1
            act[1, act[1, 0]] = n


@kernel
def _hidden_p(lh, t, wregi, wregs):
    """The 32-bit ``p`` of an input or recurrent synapse from its post's parts (:func:`_movers`)
    and the pre trace as read (``srnn.v``'s ``prob_winp``: the product ``L * t * h`` scaled by
    the multiplicative factor, minus the additive term, forced to ``-2**31`` where that is
    >= 0 while bit 31 of the scaled product is set)."""
    pe = wrap(lh * t, 32)
    pk = pe * 16 if pe < 0 else pe * wregs
    ps = wrap(wrap(pk >> 4, 32) - wregi, 32)
    return -(1 << 31) if ps >= 0 and (pk >> 31) & 1 else ps


@kernel
def _pre_word(row, autapse, t, treg_zero, act, post, lr_p, lr_r, width, tab_words, tab_next, regs, col):
    """One pre neuron's SRAM word of a block (its 16 posts' weights ``row``): written, with one
    draw, unless its trace reads 0 and no post of the block has a regularization term. Only
    the posts of ``act`` (:func:`_movers`) are updated, each with its own number of the draw
    (the others keep their weight); ``autapse``: the post that is the pre neuron itself
    (recurrent; -1: none), written as 0 when its update fires."""
    if t == 0 and treg_zero:
        return
    reg = regs[col]
    movers = act[0] if t != 0 else act[1]
    for m in range(1, movers[0] + 1):
        n = movers[m]
        rnd = 0
        for c in range(tab_words.shape[0]):  # number n of the draw from reg
            rnd ^= tab_words[c, (reg >> (CHUNK_BITS * c)) & CHUNK_MASK, n]
        p = _hidden_p(post[0, n], t, post[1, n], post[2, n])
        on = post[3, n] != 0
        new = stoch_step(row[n], p, lr_p, lr_r, rnd, width, on)
        row[n] = 0 if n == autapse and stoch_fires(p, lr_p, lr_r, rnd, width, on) else new
    regs[col] = lfsr_next(tab_next, reg)


@parallel_kernel
def run_core(r, words, nexts, lfsr, u, ti, tr, to, z, oneur, winp, wrec, wout, x, tar, valid, do_eprop, recs):
    """``x.shape[0]`` steps of every trial (``prange``): per step the events, the neuron update
    and, where ``valid`` (a target), the learning phase. State ``[batch, ...]`` in place:
    membranes ``u``, traces ``ti``/``tr``/``to`` and spikes ``z`` per neuron slot, readouts
    ``oneur`` ``[batch, 16]``, weights in SRAM layout ``winp[b, pre, post]``, ``wrec``,
    ``wout[b, pre, out]``, LFSR registers ``lfsr[b, L_*]``. ``recs``: ``(z, u, oneur, winp,
    wrec, wout, ti, tr, to)`` per step, each ``[steps, batch, ...]`` or an empty array (not
    recorded)."""
    for b in prange(u.shape[0]):
        block = r[R_BLOCK]
        buf = np.empty(max(block, oneur.shape[1]), np.int64)
        err = np.zeros(oneur.shape[1], np.int64)
        L = np.zeros(block, np.int64)
        h = np.zeros(block, np.int64)
        treg = np.zeros(block, np.int64)
        act = np.zeros((2, 2, block + 1), np.int64)
        post = np.zeros((2, 4, block), np.int64)
        regs = lfsr[b]
        for t in range(x.shape[0]):
            _prop(x[t, b], z[b], u[b], ti[b], tr[b], to[b], oneur[b], winp[b], wrec[b], wout[b], r, do_eprop)
            _step(u[b], ti[b], tr[b], to[b], z[b], oneur[b], r, words, nexts, regs, buf)
            if do_eprop and valid[t, b]:
                _errors(oneur[b], tar[t, b], r, err)
                _eprop(u[b], ti[b], tr[b], to[b], winp[b], wrec[b], wout[b], err, r, do_eprop, words, nexts, regs,
                       buf, L, h, treg, act, post)  # fmt: skip
            _record(recs, t, b, z[b], u[b], oneur[b], winp[b], wrec[b], wout[b], ti[b], tr[b], to[b], r)


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
