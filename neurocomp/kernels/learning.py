"""Kernels of the sum-of-products learning engine (Loihi 1/2) and of delivery through
plastic weights. The semantics are documented in :mod:`neurocomp.learning.engine`; these
are its compiled form for the two homogeneous arithmetics: the chip's (every learning
quantity an ``int64``) and float (every one a ``float64``). The arithmetic is chosen by the
dtype of the state arrays: the few operations that differ (:func:`_impulse`,
:func:`_decay`, :func:`_start`, :func:`_finish`, :func:`_final`, ...) are overloaded on
it, so each kernel is one template with two instances.

A rule reaches the kernels as bytecode built once per engine (``_compile_rule`` in the
engine): per product a row of integers ``[target, dependency, mantissa, exponent shift e,
width shift s, factor count, (var, const, sgn, width) per factor]`` (columns ``P_*``) and a
float scale ``mantissa * 2**(exponent - s)`` for the float arithmetic; per synaptic
variable a row ``[first product, end, accumulator shift, lo, hi, sign saturation, rounding
constant k, whether the float value is clipped]`` (columns ``V_*``). :func:`learn_phase`
interprets it; :mod:`neurocomp.kernels.learning_rules` writes it out as a kernel per rule.

Random numbers are not drawn here: the engine's streams (Lava's ``TraceRandom`` and
``ConnVarRandom``) hand in the one value each that a phase uses."""

from __future__ import annotations

import numpy as np
from numba import get_thread_id
from numba.core import types
from numba.extending import overload

from . import kernel, parallel_kernel, prange

# factor variable codes
F_X0, F_Y0, F_X1, F_X2, F_Y1, F_Y2, F_Y3, F_R1, F_W, F_T, F_D = range(11)
FACTOR_CODES = dict(zip(("x0", "y0", "x1", "x2", "y1", "y2", "y3", "r1", "w", "t", "d"), range(11), strict=True))
DEP_CODES = {"x0": 0, "y0": 1, "u": 2}
# columns of a product row, and of a variable row
P_TARGET, P_DEP, P_MANT, P_EXP, P_SHIFT, P_NF, P_FACTORS = range(7)
V_START, V_END, V_SHIFT, V_LO, V_HI, V_SIGN, V_K, V_CLIP = range(8)
SIGN_NONE, SIGN_NONNEG, SIGN_NONPOS = 0, 1, 2


def _is_int(x) -> bool:
    return isinstance(x, types.Integer | types.Boolean)


# -- the operations that differ between the arithmetics --------------------------------------


def _impulse(v, iint, ifrac, imp, rnd, nearest, half, top):
    """A trace ``v`` plus one spike's impulse (see ``SumOfProductsEngine._add_impulse``)."""


@overload(_impulse, jit_options={"cache": True})
def _impulse_impl(v, iint, ifrac, imp, rnd, nearest, half, top):
    if _is_int(v):

        def fixed(v, iint, ifrac, imp, rnd, nearest, half, top):
            # the 8-bit fraction rounds up stochastically against one integer draw, or from a half
            up = ifrac >= half if nearest else rnd < ifrac
            return min(max(v + iint + up, 0), top)

        return fixed
    return lambda v, iint, ifrac, imp, rnd, nearest, half, top: v + imp


def _decay(v, f, rnd, nearest):
    """``v * f`` rounded onto the trace's integer grid (stochastically against ``rnd``), or exact."""


@overload(_decay, jit_options={"cache": True})
def _decay_impl(v, f, rnd, nearest):
    if _is_int(v):

        def fixed(v, f, rnd, nearest):
            y = v * f
            fl = np.floor(y)
            frac = y - fl  # exact: numpy's remainder y % 1.0 (in [0, 1) for negative y too), without its division
            up = frac >= 0.5 if nearest else rnd < frac
            return np.int64(fl + up)

        return fixed
    return lambda v, f, rnd, nearest: v * f


def _clip_factor(v, lo, hi):
    """A chip factor is clipped to its width; a float one is read as it is."""


@overload(_clip_factor, jit_options={"cache": True}, inline="always")
def _clip_factor_impl(v, lo, hi):
    if _is_int(v):
        return lambda v, lo, hi: min(max(v, lo), hi)
    return lambda v, lo, hi: v


# -- the spike phase -------------------------------------------------------------------------


@kernel
def spike_phase(xs, ys, tx, ty, tr, pre, post, reward, within, y_rnd, imp, nearest, half, top, has_r):
    """Impulses of the second and later spikes in the epoch (pre: random 0; post and reward:
    ``y_rnd``, the post side's impulse number), then the spike times. ``xs``: (x1, x2)
    ``[B, pre]``; ``ys``: (y1, y2, y3, r1) ``[B, post]`` (r1 a placeholder unless ``has_r``);
    ``imp``: ``[6, 3]`` integer part, 8-bit fraction and float impulse of x1 x2 y1 y2 y3 r1;
    ``reward``: ``[B]``."""
    B, m = tx.shape
    n = ty.shape[1]
    for b in range(B):
        for j in range(m):
            if pre[b, j] != 0:
                if tx[b, j] > 0:
                    for k in range(2):
                        xs[k][b, j] = _impulse(xs[k][b, j], int(imp[k, 0]), imp[k, 1], imp[k, 2], 0, nearest, half, top)
                tx[b, j] = within
        for i in range(n):
            if post[b, i] != 0:
                if ty[b, i] > 0:
                    for k in range(3):
                        q = k + 2
                        ys[k][b, i] = _impulse(
                            ys[k][b, i], int(imp[q, 0]), imp[q, 1], imp[q, 2], y_rnd, nearest, half, top
                        )
                ty[b, i] = within
        if has_r and reward[b] != 0:
            if tr[b, 0] > 0:
                for i in range(n):
                    ys[3][b, i] = _impulse(ys[3][b, i], int(imp[5, 0]), imp[5, 1], imp[5, 2], y_rnd, nearest, half, top)
            tr[b, 0] = within


# -- the epoch's trace histories ---------------------------------------------------------------


@kernel
def trace_history(h, states, tspk, t_r, k_r, live, decay, factor, imp, write_back, rnd, nearest, half, top):
    """``h[s]``: one side's traces ``[T+1, B, K, n]`` at within-epoch step ``s`` (``h[0]``
    the state now), each decayed ``s`` times with the impulse of the (last) spike at step
    ``s`` added; the rows ``write_back`` go back into ``states`` from ``h[T]``. ``tspk``
    ``[B, n]``: spike times; row ``k_r`` takes the reward's ``t_r [B, 1]`` instead. Traces
    that are not ``live`` stay 0; ``decay[k]`` False (tau 0) zeroes a trace every step.
    ``rnd``: (decay float, impulse integer), the one pair of the phase. A step's neurons are
    one loop (``h[s - 1]`` to ``h[s]``), which the compiler vectorizes."""
    T1, B, K, n = h.shape
    r_dec, r_imp = rnd[0], int(rnd[1])
    for k in range(K):
        st = states[k]
        on, dec, f, reward = live[k], decay[k], factor[k], k == k_r
        iint, ifrac, iflt = int(imp[k, 0]), imp[k, 1], imp[k, 2]
        for b in range(B):
            for i in range(n):
                h[0, b, k, i] = st[b, i]
            for s in range(1, T1):
                for i in range(n):
                    v = h[s - 1, b, k, i]
                    if not on:
                        v = 0 * v
                    else:
                        v = _decay(v, f, r_dec, nearest) if dec else 0 * v
                        if (t_r[b, 0] if reward else tspk[b, i]) == s:
                            v = _impulse(v, iint, ifrac, iflt, r_imp, nearest, half, top)
                    h[s, b, k, i] = v
            if write_back[k]:
                for i in range(n):
                    st[b, i] = h[T1 - 1, b, k, i]


# -- the learning phase ----------------------------------------------------------------------
# Over a flat list of the visited synapses (see :func:`_plan`): one loop over the list per
# product and factor, the dispatch on their codes outside it, the accumulators in buffers
# along the list. Arguments travel in tuples: syn = (w, t, d) ``[trials or 1, post, pre]``;
# hist = (hx, hy, tx, ty), the epoch's trace histories and spike times; rule = (code,
# scale, vinfo, lim, present, unsafe, zero_clips, defer), the bytecode, the accumulator's
# range, the rules present, the bound below which a phase without products is not the
# identity (see the engine), the variables that can start below the accumulator's range and
# those a later rule reads; visit = (vi, vj, count, x_start, r_end), see :func:`_plan`.


def _start(proto, mant, scale):
    """A product's first factor: the mantissa (fixed) or the whole scale (float)."""


@overload(_start, jit_options={"cache": True}, inline="always")
def _start_impl(proto, mant, scale):
    if _is_int(proto):
        return lambda proto, mant, scale: mant
    return lambda proto, mant, scale: scale


def _finish(m, s, e):
    """Fixed: the floor shift by the excess width, then the exponent's shift; float: nothing."""


@overload(_finish, jit_options={"cache": True}, inline="always")
def _finish_impl(m, s, e):
    if _is_int(m):
        return lambda m, s, e: (m >> s) << e
    return lambda m, s, e: m


def _init(S, shift):
    """The accumulator before the products: ``S`` in its top bits (fixed); float: unused."""


@overload(_init, jit_options={"cache": True}, inline="always")
def _init_impl(S, shift):
    if _is_int(S):
        return lambda S, shift: S << shift
    return lambda S, shift: S


def _is_fixed(a):
    """Whether an array holds the chip's integers (a compile-time constant)."""


@overload(_is_fixed, jit_options={"cache": True}, inline="always")
def _is_fixed_impl(a):
    fixed = isinstance(a.dtype, types.Integer)
    return lambda a: fixed


def _final(S, acc, sums, k, n, vinfo, var):
    """The new value of variable ``var`` (old value ``S``). Fixed: from the accumulator
    ``acc``, the sign saturation, the epoch's rounding onto the variable's grid, its range.
    Float: ``S`` plus the trials' sums ``sums[:n, k]`` added in trial order, the sign
    saturation and (weights) the range."""


@overload(_final, jit_options={"cache": True}, inline="always")
def _final_impl(S, acc, sums, k, n, vinfo, var):
    if _is_int(S):

        def fixed(S, acc, sums, k, n, vinfo, var):
            sign, shift, r = vinfo[var, V_SIGN], vinfo[var, V_SHIFT], vinfo[var, V_K]
            x = max(acc, 0) if sign == SIGN_NONNEG else min(acc, 0) if sign == SIGN_NONPOS else acc
            x = (x + (1 << shift) - 1 - r) >> shift  # q rounds up when frac(q) * 2**shift > r
            return min(max(x, vinfo[var, V_LO]), vinfo[var, V_HI])

        return fixed

    def flt(S, acc, sums, k, n, vinfo, var):
        total = sums[0, k]
        for q in range(1, n):
            total += sums[q, k]
        x = S + total
        sign = vinfo[var, V_SIGN]
        if sign == SIGN_NONNEG:
            x = x if x >= 0.0 else 0.0
        elif sign == SIGN_NONPOS:
            x = x if x <= 0.0 else 0.0
        return min(max(x, vinfo[var, V_LO]), vinfo[var, V_HI]) if vinfo[var, V_CLIP] else x

    return flt


@kernel
def _term(p, b, syn, hist, rule, u, visit, k0, k1, off, out):
    """Product ``p`` of trial ``b`` at the visited synapses ``k0`` to ``k1 - 1``, into
    ``out[k - off]`` (0, or +-0 in float, where its dependency is 0: a sum that starts at +0
    does not see it)."""
    hx, hy, tx, ty = hist
    code, scale = rule[0], rule[1]
    vi, vj = visit[0], visit[1]
    dep = code[p, P_DEP]
    T = hx.shape[0] - 1
    first = _start(out[0], code[p, P_MANT], scale[p])
    for k in range(k0, k1):
        on = u != 0 if dep == 2 else ty[b, vi[k]] > 0 if dep == 1 else tx[b, vj[k]] > 0
        out[k - off] = first if on else 0 * first
    for f in range(code[p, P_NF]):
        c = code[p, P_FACTORS + 4 * f]
        const = code[p, P_FACTORS + 4 * f + 1]
        sgn = code[p, P_FACTORS + 4 * f + 2]
        hi = (1 << code[p, P_FACTORS + 4 * f + 3]) - 1
        if c == F_X0 or c == F_Y0:
            for k in range(k0, k1):
                v = (tx[b, vj[k]] > 0 if c == F_X0 else ty[b, vi[k]] > 0) + const
                out[k - off] *= _clip_factor(v, -hi - 1, hi)
        elif c <= F_R1:  # a trace at the step the dependency selects
            h = hx if c <= F_X2 else hy
            row = c - F_X1 if c <= F_X2 else c - F_Y1
            for k in range(k0, k1):
                i, j = vi[k], vj[k]
                ts = T if dep == 2 else ty[b, i] if dep == 1 else tx[b, j]
                out[k - off] *= _clip_factor(h[ts, b, row, j if c <= F_X2 else i] + const, -hi - 1, hi)
        else:
            A = syn[c - F_W]
            a = b if A.shape[0] > 1 else 0  # (shared weights: one set)
            for k in range(k0, k1):
                v = A[a, vi[k], vj[k]] + const
                out[k - off] *= _clip_factor(np.sign(v) if sgn else v, -hi - 1, hi)
    s, e = code[p, P_SHIFT], code[p, P_EXP]
    for k in range(k0, k1):
        out[k - off] = _finish(out[k - off], s, e)


@kernel
def _variable(var, g, b0, b1, syn, hist, rule, u, visit, c0, c1, buf, sums, new, direct, unsafe_rows):
    """New values of variable ``var`` (set ``g`` of it) at the visited synapses ``c0`` to
    ``c1 - 1`` from the products of trials ``b0`` to ``b1 - 1`` (several: shared weights):
    into the state when ``direct`` (no later rule reads its old values; counting the values
    below ``unsafe`` per row), else into ``new[k - c0]``. Scratch: ``buf [3, chunk]``,
    ``sums [trials, chunk]`` (float).

    A product is evaluated where it can be nonzero: ``y0`` ones in the rows part of the
    visit list, ``x0`` ones in the spiking columns (see :func:`_plan`); elsewhere adding its
    0 changes nothing, unless the variable can start below the accumulator's range
    (``zero_clips``), where the first product saturates it: then everywhere."""
    code, vinfo, lim, unsafe, zero_clips = rule[0], rule[2], rule[3], rule[5], rule[6]
    vi, vj, x_start, r_end = visit[0], visit[1], visit[3], visit[4]
    A = syn[var]
    a = g if A.shape[0] > 1 else 0
    fixed = _is_fixed(A)
    term, acc, old = buf[0], buf[1], buf[2]
    shift = vinfo[var, V_SHIFT]
    for k in range(c0, c1):
        old[k - c0] = A[a, vi[k], vj[k]]
        acc[k - c0] = _init(old[k - c0], shift)  # saturated only when a product is added
    if not fixed:
        sums[: b1 - b0, : c1 - c0] = 0.0
    for p in range(vinfo[var, V_START], vinfo[var, V_END]):
        dep = code[p, P_DEP]
        k0 = c0 if dep != 0 or zero_clips[var] else max(c0, x_start)
        k1 = min(c1, r_end) if dep == 1 and not zero_clips[var] else c1
        for b in range(b0, b1):  # shared weights: every trial's product, in trial order
            if k0 >= k1:
                break
            _term(p, b, syn, hist, rule, u, visit, k0, k1, c0, term)
            if fixed:
                for k in range(k0 - c0, k1 - c0):
                    acc[k] = min(max(acc[k] + min(max(term[k], lim[0]), lim[1]), lim[0]), lim[1])
            else:
                for k in range(k0 - c0, k1 - c0):
                    sums[b - b0, k] += term[k]
    bound = unsafe[var]
    for k in range(c0, c1):
        x = _final(old[k - c0], acc[k - c0], sums, k - c0, b1 - b0, vinfo, var)
        if direct:
            i = vi[k]
            unsafe_rows[g, i] += int(x < bound) - int(old[k - c0] < bound)
            A[a, i, vj[k]] = x
        else:
            new[k - c0] = x


CHUNK = 2048  # visited synapses per round of all the rules (its buffers stay in the CPU's cache)


@kernel
def _trials(b_lo, b_hi, shared, syn, hist, rule, u, visit, unsafe_rows, buf, sums, new):
    """Every variable of trials ``b_lo`` to ``b_hi - 1`` (``shared``: the one set of weights
    from all of them) at the visited synapses, a chunk of the visit list at a time, in the
    order w, t, d: every rule reads the old values, so a variable read by a later rule
    (``defer``) is written back after the chunk's last rule. ``new [3, trials, chunk]``."""
    present, unsafe, defer = rule[4], rule[5], rule[7]
    vi, vj, nv = visit[0], visit[1], visit[2]
    for c0 in range(0, nv, CHUNK):
        c1 = min(c0 + CHUNK, nv)
        for var in range(3):
            if not present[var]:
                continue
            one = var == 0 and shared  # one set of weights from every trial
            for g in range(0 if one else b_lo, 1 if one else b_hi):
                b0, b1 = (b_lo, b_hi) if one else (g, g + 1)
                _variable(
                    var,
                    g,
                    b0,
                    b1,
                    syn,
                    hist,
                    rule,
                    u,
                    visit,
                    c0,
                    c1,
                    buf,
                    sums,
                    new[var, g],
                    not defer[var],
                    unsafe_rows,
                )
        for var in range(3):
            if present[var] and defer[var]:
                A = syn[var]
                for g in range(0 if var == 0 and shared else b_lo, 1 if var == 0 and shared else b_hi):
                    a = g if A.shape[0] > 1 else 0
                    for k in range(c0, c1):
                        i, j = vi[k], vj[k]
                        x = new[var, g, k - c0]
                        unsafe_rows[g, i] += int(x < unsafe[var]) - int(A[a, i, j] < unsafe[var])
                        A[a, i, j] = x


@kernel
def rows_cols(tx, ty, full, deps, unsafe_rows, rows, cols):
    """The rows and columns a learning phase visits (see :func:`_plan`): ``rows[i]`` (post
    neurons that spiked in some trial, with ``y0`` products, or holding a value below
    ``unsafe``; every row when ``full``) and the first ``n_cols`` entries of ``cols`` (pre
    neurons that spiked in some trial, with ``x0`` products; every column when ``full``).
    Returns ``n_cols``."""
    B, m = tx.shape
    n = ty.shape[1]
    n_cols = 0
    for j in range(m):
        spiking = False
        for b in range(B):
            spiking |= tx[b, j] > 0
        if full or (deps[0] and spiking):
            cols[n_cols] = j
            n_cols += 1
    for i in range(n):
        spiked = False
        unsafe = False
        for b in range(B):
            spiked |= ty[b, i] > 0
            unsafe |= unsafe_rows[b, i] > 0
        rows[i] = full or (deps[1] and spiked) or unsafe
    return n_cols


@kernel
def rows_live(W, Tg, D, live):
    """``live[v, b, i]``: whether row ``i`` of trial ``b`` of variable ``v`` (w, t, d; each
    ``[trials, post, pre]``) holds a value other than 0 (see ``learn_live`` in
    :mod:`neurocomp.kernels.learning_rules`)."""
    _row_any(W, live[0])
    _row_any(Tg, live[1])
    _row_any(D, live[2])


@kernel
def _row_any(A, out):
    B, n, m = A.shape
    for b in range(B):
        for i in range(n):
            nz = False
            for j in range(m):
                nz |= A[b, i, j] != 0
            out[b, i] = nz


@kernel
def _plan(tx, ty, full, deps, unsafe_rows, mask, rows, cols, vi, vj):
    """The synapses the learning phase visits: every one when ``full``; otherwise the rows
    of post neurons that spiked (if the rule has ``y0`` products, ``deps[1]``), the columns
    of pre neurons that spiked (``x0`` products, ``deps[0]``) and the rows holding a value
    below ``unsafe`` in some trial (``unsafe_rows [trials, post]``). Elsewhere every product
    is 0 and the phase leaves the variables as they are (``unsafe``: where it would not; see
    the engine). Only synapses in ``mask`` (if not empty) exist. Returns (vi, vj, count,
    x_start, r_end): the visited synapses ``(vi[k], vj[k])``, in three parts: the rows at
    the columns without spikes, the rows at the spiking columns (both row-major: memory
    order), then the spiking columns of the other rows (column-major: a constant stride,
    which the CPU prefetches); ``x_start`` and ``r_end`` are where the second part starts
    and the third. ``rows [post]``, ``cols [pre]``: scratch."""
    m = tx.shape[1]
    n = ty.shape[1]
    masked = mask.shape[0] > 0
    n_cols = rows_cols(tx, ty, full, deps, unsafe_rows, rows, cols)
    spiking = np.zeros(m, np.bool_)
    for c in range(n_cols):
        spiking[cols[c]] = True
    nv = 0
    for i in range(n):
        if rows[i]:
            for j in range(m):
                if not spiking[j] and (not masked or mask[i, j]):
                    vi[nv], vj[nv] = i, j
                    nv += 1
    x_start = nv
    for i in range(n):
        if rows[i]:
            for c in range(n_cols):
                if not masked or mask[i, cols[c]]:
                    vi[nv], vj[nv] = i, cols[c]
                    nv += 1
    r_end = nv
    for c in range(n_cols):
        j = cols[c]
        for i in range(n):
            if not rows[i] and (not masked or mask[i, j]):
                vi[nv], vj[nv] = i, j
                nv += 1
    return vi, vj, nv, x_start, r_end


@kernel
def learn_phase(syn, hist, rule, u, shared, full, deps, plan, mask, scratch):
    """The learning phase of one epoch over the synapses :func:`_plan` picks, updating ``syn``
    in place. ``mask [post, pre]`` (or ``[0, 0]``): the synapses that exist. ``plan``:
    (unsafe_rows ``[trials, post]``, rows ``[post]``, cols ``[pre]``, vi and vj ``[post *
    pre]``); ``scratch``: (buf ``[threads, 3, CHUNK]``, sums ``[threads, trials or 1,
    CHUNK]``, new ``[threads, 3, trials, CHUNK]``). :func:`learn_phase_parallel` runs
    independent trials on threads."""
    unsafe_rows, rows, cols, vi, vj = plan
    buf, sums, new = scratch
    visit = _plan(hist[2], hist[3], full, deps, unsafe_rows, mask, rows, cols, vi, vj)
    _trials(0, syn[1].shape[0], shared, syn, hist, rule, u, visit, unsafe_rows, buf[0], sums[0], new[0])


@parallel_kernel
def learn_phase_parallel(syn, hist, rule, u, shared, full, deps, plan, mask, scratch):
    """:func:`learn_phase` for independent trials, spread over threads."""
    unsafe_rows, rows, cols, vi, vj = plan
    buf, sums, new = scratch
    visit = _plan(hist[2], hist[3], full, deps, unsafe_rows, mask, rows, cols, vi, vj)
    for q in prange(syn[1].shape[0]):
        t = get_thread_id()
        b = np.int64(q)  # (a prange index can be unsigned, which would turn trial arithmetic into floats)
        _trials(b, b + 1, False, syn, hist, rule, u, visit, unsafe_rows, buf[t], sums[t], new[t])


PARALLEL_SYNAPSES = 1 << 18  # a batch's synapses from which independent trials run on threads


# -- delivery through plastic weights -----------------------------------------------------------

ROUNDINGS = {"floor": 0, "nearest": 1, "toward_zero": 2}
EXACT = 3  # float weights (attribution, lowered-float): the exponent's shift is an exact scaling


@kernel
def deliver_plastic(w, spikes, out, exp, rounding, in_scale):
    """``out[b] += shift(sum_j w[b, :, j] * spikes[b, j], exp) * in_scale`` over the pre
    neurons that spiked: integer weights, so the float64 sums are exact in any order; the
    exponent's shift rounds as ``neurocomp.arith.fixed.shift`` (``rounding``: ``ROUNDINGS``),
    or (``EXACT``: float weights) scales exactly. The columns are summed one after another, in
    pre order (a constant stride, which the CPU prefetches; float weights: the one order of
    the sum, in the step-by-step and the fused run alike)."""
    B, m = spikes.shape
    n = w.shape[1]
    acc = np.empty(n, np.float64)
    scale = 2.0**exp
    for b in range(B):
        wb = w[0] if w.shape[0] == 1 else w[b]
        acc[:] = 0.0
        any_spike = False
        for j in range(m):
            s = np.float64(spikes[b, j])
            if s != 0:
                any_spike = True
                for i in range(n):
                    acc[i] += wb[i, j] * s
        if not any_spike:
            continue
        for i in range(n):
            y = acc[i] * scale
            if exp < 0 and rounding != EXACT:
                if rounding == 0:
                    y = np.floor(y)
                elif rounding == 1:
                    y = np.copysign(np.floor(abs(y) + 0.5), y)
                else:
                    y = np.trunc(y)
            out[b, i] += y * in_scale
