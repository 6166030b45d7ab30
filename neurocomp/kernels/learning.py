"""Kernels of the sum-of-products learning engine (Loihi 1/2) and of delivery through
plastic weights. The semantics are documented in :mod:`neurocomp.learning.engine`; these
are its compiled form for the two homogeneous arithmetics: the chip's (every learning
quantity an ``int64``) and float (every one a ``float64``). The arithmetic is chosen by the
dtype of the state arrays: the few operations that differ (:func:`_impulse`,
:func:`_decay`, :func:`_product`, :func:`_update`) are overloaded on it, so each kernel is
one template with two instances.

A rule reaches the kernels as "bytecode" built once per engine (:func:`compile_rule` in
the engine): per product a row of ``PRODUCT`` integers ``[target, dependency, mantissa,
exponent shift e, width shift s, factor count, (var, const, sgn, width) per factor]`` and a
float scale ``mantissa * 2**(exponent - s)`` for the float arithmetic; per synaptic variable
a row of ``VAR`` integers ``[first product, end, accumulator shift, lo, hi, sign
saturation, rounding constant k, whether the float value is clipped]``.

Random numbers are not drawn here: the engine's streams (Lava's ``TraceRandom`` and
``ConnVarRandom``) hand in the one value each that a phase uses.
"""

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
            frac = y % 1.0  # numpy's remainder: in [0, 1) for negative y too
            up = frac >= 0.5 if nearest else rnd < frac
            return np.int64(np.floor(y) + up)

        return fixed
    return lambda v, f, rnd, nearest: v * f


def _product(proto, code, p, scale, factors, nf):
    """One product's value from its factor values; ``proto`` is a state value (its type
    picks the arithmetic). Fixed: the factors' product, floor-shifted by the excess width,
    shifted by the exponent, clipped to the accumulator. Float: the scale times the factors,
    in the chip's order of multiplication."""


@overload(_product, jit_options={"cache": True})
def _product_impl(proto, code, p, scale, factors, nf):
    if _is_int(proto):

        def fixed(proto, code, p, scale, factors, nf):
            m = code[p, P_MANT]
            for f in range(nf):
                m *= factors[f]
            return (m >> code[p, P_SHIFT]) << code[p, P_EXP]

        return fixed

    def flt(proto, code, p, scale, factors, nf):
        m = scale[p]
        for f in range(nf):
            m = m * factors[f]
        return m

    return flt


def _clip_factor(v, lo, hi):
    """A chip factor is clipped to its width; a float one is read as it is."""


@overload(_clip_factor, jit_options={"cache": True})
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
    ``rnd``: (decay float, impulse integer), the one pair of the phase."""
    T1, B, K, n = h.shape
    for k in range(K):
        st = states[k]
        for b in range(B):
            for i in range(n):
                v = st[b, i]
                h[0, b, k, i] = v
                ts = t_r[b, 0] if k == k_r else tspk[b, i]
                for s in range(1, T1):
                    if not live[k]:
                        v = 0 * v
                    else:
                        v = _decay(v, factor[k], rnd[0], nearest) if decay[k] else 0 * v
                        if ts == s:
                            v = _impulse(v, int(imp[k, 0]), imp[k, 1], imp[k, 2], int(rnd[1]), nearest, half, top)
                    h[s, b, k, i] = v
                if write_back[k]:
                    st[b, i] = h[T1 - 1, b, k, i]


# -- the learning phase ----------------------------------------------------------------------
# Row by row (one post neuron): a product is evaluated for all the row's visited columns at
# once, with the dispatch on its dependency and factor codes outside the loops over columns.


@kernel
def _term(p, b, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, u, out):
    """Product ``p`` of trial ``b`` at post neuron ``i`` and the
    pre neurons ``js[:nj]``, into ``out[:nj]``; returns False (``out`` untouched) when its
    dependency is 0 for the whole row."""
    dep = code[p, P_DEP]
    if (dep == 2 and u == 0) or (dep == 1 and ty[b, i] == 0):
        return False
    ts = T if dep == 2 else ty[b, i]  # the step the traces are read at (x0: per column)
    _start(out, nj, code[p, P_MANT], scale[p])
    if dep == 0:
        for jj in range(nj):
            if tx[b, js[jj]] == 0:
                out[jj] = 0
    for f in range(code[p, P_NF]):
        c = code[p, P_FACTORS + 4 * f]
        const = code[p, P_FACTORS + 4 * f + 1]
        sgn = code[p, P_FACTORS + 4 * f + 2]
        lo = -(1 << code[p, P_FACTORS + 4 * f + 3])
        hi = -lo - 1
        if c == F_X0:
            for jj in range(nj):
                out[jj] *= _clip_factor((tx[b, js[jj]] > 0) + const, lo, hi)
        elif c == F_Y0:
            v = _clip_factor((ty[b, i] > 0) + const, lo, hi)
            for jj in range(nj):
                out[jj] *= v
        elif c <= F_X2:
            for jj in range(nj):
                j = js[jj]
                out[jj] *= _clip_factor(hx[tx[b, j] if dep == 0 else ts, b, c - F_X1, j] + const, lo, hi)
        elif c <= F_R1:
            if dep == 0:  # a post trace at each pre neuron's spike
                for jj in range(nj):
                    out[jj] *= _clip_factor(hy[tx[b, js[jj]], b, c - F_Y1, i] + const, lo, hi)
            else:
                v = _clip_factor(hy[ts, b, c - F_Y1, i] + const, lo, hi)
                for jj in range(nj):
                    out[jj] *= v
        else:
            A = W if c == F_W else Tg if c == F_T else D
            a = b if A.shape[0] > 1 else 0  # (shared weights: one set)
            for jj in range(nj):
                v = A[a, i, js[jj]] + const
                out[jj] *= _clip_factor(np.sign(v) if sgn else v, lo, hi)
    _finish(out, nj, code[p, P_SHIFT], code[p, P_EXP])
    return True


def _start(out, nj, mant, scale):
    """A product's first factor: the mantissa (fixed) or the whole scale (float)."""


@overload(_start, jit_options={"cache": True})
def _start_impl(out, nj, mant, scale):
    if isinstance(out.dtype, types.Integer):

        def fixed(out, nj, mant, scale):
            out[:nj] = mant

        return fixed

    def flt(out, nj, mant, scale):
        out[:nj] = scale

    return flt


def _finish(out, nj, s, e):
    """Fixed: the floor shift by the excess width, then the exponent's shift; float: nothing."""


@overload(_finish, jit_options={"cache": True})
def _finish_impl(out, nj, s, e):
    if isinstance(out.dtype, types.Integer):

        def fixed(out, nj, s, e):
            for jj in range(nj):
                out[jj] = (out[jj] >> s) << e

        return fixed
    return lambda out, nj, s, e: None


def _update(var, b0, b1, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, vinfo, lim, u, zero_clips, buf, new):
    """The new values of synaptic variable ``var`` (of trial ``b0``; of all trials
    ``b0..b1-1`` together for shared weights) at row ``i``, columns ``js[:nj]``,
    into ``new[:nj]``. ``buf``: ``[4, pre]`` scratch."""


@overload(_update, jit_options={"cache": True})
def _update_impl(var, b0, b1, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, vinfo, lim, u, zero_clips, buf, new):
    if isinstance(buf.dtype, types.Integer):

        def fixed(
            var, b0, b1, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, vinfo, lim, u, zero_clips, buf, new
        ):
            A = W if var == 0 else Tg if var == 1 else D
            a = b0 if A.shape[0] > 1 else 0
            shift = vinfo[var, V_SHIFT]
            term, acc = buf[0], buf[1]
            for jj in range(nj):
                acc[jj] = A[a, i, js[jj]] << shift  # saturated only when a product is added
            for p in range(vinfo[var, V_START], vinfo[var, V_END]):
                for b in range(b0, b1):  # shared weights: every trial's product, in trial order
                    if _term(p, b, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, u, term):
                        for jj in range(nj):
                            m = min(max(term[jj], lim[0]), lim[1])
                            acc[jj] = min(max(acc[jj] + m, lim[0]), lim[1])
                    elif zero_clips[var]:  # a zero product still saturates the accumulator
                        for jj in range(nj):
                            acc[jj] = min(max(acc[jj], lim[0]), lim[1])
            sign, k = vinfo[var, V_SIGN], vinfo[var, V_K]
            lo, hi = vinfo[var, V_LO], vinfo[var, V_HI]
            for jj in range(nj):
                x = acc[jj]
                if sign == SIGN_NONNEG:
                    x = max(x, 0)
                elif sign == SIGN_NONPOS:
                    x = min(x, 0)
                x = (x + (1 << shift) - 1 - k) >> shift  # the epoch's rounding
                new[jj] = min(max(x, lo), hi)

        return fixed

    def flt(var, b0, b1, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, vinfo, lim, u, zero_clips, buf, new):
        A = W if var == 0 else Tg if var == 1 else D
        a = b0 if A.shape[0] > 1 else 0
        term, delta, total = buf[0], buf[1], buf[2]
        for b in range(b0, b1):  # each trial's sum of products; shared weights add them in trial order
            delta[:nj] = 0.0
            for p in range(vinfo[var, V_START], vinfo[var, V_END]):
                # (a product whose dependency is 0 is +-0: it changes no sum that starts at +0)
                if _term(p, b, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, u, term):
                    for jj in range(nj):
                        delta[jj] += term[jj]
            if b == b0:
                total[:nj] = delta[:nj]
            else:
                for jj in range(nj):
                    total[jj] += delta[jj]
        sign, clip = vinfo[var, V_SIGN], vinfo[var, V_CLIP]
        lo, hi = vinfo[var, V_LO], vinfo[var, V_HI]
        for jj in range(nj):
            x = A[a, i, js[jj]] + total[jj]
            if sign == SIGN_NONNEG:
                x = x if x >= 0.0 else 0.0
            elif sign == SIGN_NONPOS:
                x = x if x <= 0.0 else 0.0
            if clip:
                x = min(max(x, lo), hi)
            new[jj] = x

    return flt


@kernel
def _row(
    i,
    js,
    nj,
    T,
    W,
    Tg,
    D,
    hx,
    hy,
    tx,
    ty,
    code,
    scale,
    vinfo,
    present,
    lim,
    u,
    shared,
    zero_clips,
    unsafe,
    recount,
    buf,
    new,
):
    """Every synaptic variable of row ``i`` at columns ``js[:nj]``, in every trial, from the
    old values (all three rules read them), then written back. Returns the change in the
    row's count of values below ``unsafe[var]`` (with ``recount``: the count of the new ones)."""
    B = Tg.shape[0]
    for var in range(3):
        if not present[var]:
            continue
        if var == 0 and shared:
            _update(
                0, 0, B, i, js, nj, T, W, Tg, D, hx, hy, tx, ty, code, scale, vinfo, lim, u, zero_clips, buf, new[0, 0]
            )
        else:
            for b in range(B):
                _update(
                    var,
                    b,
                    b + 1,
                    i,
                    js,
                    nj,
                    T,
                    W,
                    Tg,
                    D,
                    hx,
                    hy,
                    tx,
                    ty,
                    code,
                    scale,
                    vinfo,
                    lim,
                    u,
                    zero_clips,
                    buf,
                    new[var, b],
                )
    d_unsafe = 0
    for var in range(3):
        if not present[var]:
            continue
        A = W if var == 0 else Tg if var == 1 else D
        for b in range(A.shape[0]):
            for jj in range(nj):
                j = js[jj]
                if not recount:
                    d_unsafe -= A[b, i, j] < unsafe[var]
                A[b, i, j] = new[var, b, jj]
                d_unsafe += new[var, b, jj] < unsafe[var]
    return d_unsafe


@kernel
def _plan(tx, ty, full, deps, unsafe_rows, rows, cols):
    """Which synapses the learning phase visits: every one when ``full``; otherwise the rows
    of post neurons that spiked (if the rule has ``y0`` products, ``deps[1]``), the columns
    of pre neurons that spiked (``x0`` products, ``deps[0]``) and the rows holding a value
    below ``unsafe`` (see :func:`_row`). Elsewhere every product is 0 and the phase leaves
    the variables as they are. Fills ``rows [post]`` and ``cols [pre]``; returns the count
    of ``cols``."""
    B, m = tx.shape
    n_cols = 0
    for j in range(m):
        spiked = False
        for b in range(B):
            spiked |= tx[b, j] > 0
        if full or (deps[0] and spiked):
            cols[n_cols] = j
            n_cols += 1
    for i in range(ty.shape[1]):
        spiked = False
        for b in range(B):
            spiked |= ty[b, i] > 0
        rows[i] = full or (deps[1] and spiked) or unsafe_rows[i] > 0
    return n_cols


@kernel
def _visit(i, rows, cols, n_cols, mask, js):
    """The columns of row ``i`` to visit (the synapses that exist), into ``js``; their count."""
    masked = mask.shape[0] > 0
    nj = 0
    for c in range(js.shape[0] if rows[i] else n_cols):
        j = c if rows[i] else cols[c]
        if not masked or mask[i, j]:
            js[nj] = j
            nj += 1
    return nj


@kernel
def learn_phase(
    W,
    Tg,
    D,
    hx,
    hy,
    tx,
    ty,
    mask,
    code,
    scale,
    vinfo,
    present,
    lim,
    u,
    shared,
    full,
    recount,
    deps,
    zero_clips,
    unsafe,
    unsafe_rows,
    rows,
    cols,
    js,
    buf,
    new,
):
    """The learning phase of one epoch over the synapses :func:`_plan` picks, updating ``W``,
    ``Tg``, ``D`` in place. ``mask [post, pre]`` (or ``[0, 0]``): the synapses that exist.
    ``recount``: count the values below ``unsafe`` afresh (a full pass over state set from
    outside). Scratch per thread (index 0 here): ``js [pre]``, ``buf [4, pre]``, ``new [3, B,
    pre]``. :func:`learn_phase_parallel` is the same over the rows on threads."""
    n_cols = _plan(tx, ty, full, deps, unsafe_rows, rows, cols)
    if recount:
        unsafe_rows[:] = 0
    T = hx.shape[0] - 1
    for i in range(ty.shape[1]):
        if rows[i] or n_cols:
            nj = _visit(i, rows, cols, n_cols, mask, js[0])
            unsafe_rows[i] += _row(
                i,
                js[0],
                nj,
                T,
                W,
                Tg,
                D,
                hx,
                hy,
                tx,
                ty,
                code,
                scale,
                vinfo,
                present,
                lim,
                u,
                shared,
                zero_clips,
                unsafe,
                recount,
                buf[0],
                new[0],
            )


@parallel_kernel
def learn_phase_parallel(
    W,
    Tg,
    D,
    hx,
    hy,
    tx,
    ty,
    mask,
    code,
    scale,
    vinfo,
    present,
    lim,
    u,
    shared,
    full,
    recount,
    deps,
    zero_clips,
    unsafe,
    unsafe_rows,
    rows,
    cols,
    js,
    buf,
    new,
):
    """:func:`learn_phase` with the rows spread over threads (large projections and batches)."""
    n_cols = _plan(tx, ty, full, deps, unsafe_rows, rows, cols)
    if recount:
        unsafe_rows[:] = 0
    T = hx.shape[0] - 1
    for i in prange(ty.shape[1]):
        if rows[i] or n_cols:
            tid = get_thread_id()
            nj = _visit(i, rows, cols, n_cols, mask, js[tid])
            unsafe_rows[i] += _row(
                i,
                js[tid],
                nj,
                T,
                W,
                Tg,
                D,
                hx,
                hy,
                tx,
                ty,
                code,
                scale,
                vinfo,
                present,
                lim,
                u,
                shared,
                zero_clips,
                unsafe,
                recount,
                buf[tid],
                new[tid],
            )


PARALLEL_SYNAPSES = 1 << 18  # a batch's synapses from which the rows are spread over threads


# -- delivery through plastic weights -----------------------------------------------------------

ROUNDINGS = {"floor": 0, "nearest": 1, "toward_zero": 2}


@kernel
def deliver_plastic(w, spikes, out, exp, rounding, in_scale):
    """``out[b] += shift(sum_j w[b, :, j] * spikes[b, j], exp) * in_scale`` over the pre
    neurons that spiked: integer weights, so the float64 sums are exact in any order; the
    exponent's shift rounds as ``neurocomp.arith.fixed.shift`` (``rounding``: ``ROUNDINGS``)."""
    B, m = spikes.shape
    n = w.shape[1]
    active = np.empty(m, np.int64)
    scale = 2.0**exp
    for b in range(B):
        k = 0
        for j in range(m):
            if spikes[b, j] != 0:
                active[k] = j
                k += 1
        if k == 0:
            continue
        wb = w[0] if w.shape[0] == 1 else w[b]
        for i in range(n):
            s = 0.0
            for c in range(k):
                j = active[c]
                s += wb[i, j] * np.float64(spikes[b, j])
            y = s * scale
            if exp < 0:
                if rounding == 0:
                    y = np.floor(y)
                elif rounding == 1:
                    y = np.copysign(np.floor(abs(y) + 0.5), y)
                else:
                    y = np.trunc(y)
            out[b, i] += y * in_scale
