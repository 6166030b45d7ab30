"""The neuron update of LIF, ALIF and LI populations: one template, two arithmetics.

The template is :func:`update_population`. Its arithmetic is chosen by its arguments: the
states' dtype selects at compile time the few operations that differ (:func:`leak`,
:func:`in_range`, :func:`settle`), and ``mode`` the profile's roundings and overflow at run
time; so the fixed and the float paths are two compiled instances of this one definition:

* fixed point: every state is an integer of the chip held exactly in float64 (products of a
  state, at most 32 bits, and a decay factor, at most 16 bits, stay far below 2**53); a leak
  is one multiply by the exact factor ``k / 2**n`` and the profile's rounding; overflow
  (wrap, Lava's one-time wrap of ``u``, saturation) and the two's complement register the
  chip computes in (Lava: int32) are applied per profile;
* float: the states, factors, thresholds and inputs are float32 arrays and every rounding
  and overflow mode is ``NONE``, so the same expressions run in float32 (no fastmath: each
  operation rounds as numpy's does, in the same order).

Layout. Every population's ``[batch, n]`` state is a contiguous block at ``P_BOFF`` of each
row of ``st`` (rows ``S_*``: ``u``, ``v``, ``a``, refractory counter, ``v_pre``, ``th_pre``)
and of ``spikes``; its input ring ``[slots, batch, n]`` is a block of the flat ``ring``.
``pop`` is an int64 table with one row per population (columns ``P_*``), ``thr`` its
constants in the state's dtype (columns ``T_*``), ``nconst`` the per-neuron leak factors and
bias (rows ``C_*``, ``[row, neurons]``, offset ``P_NOFF``; the u and v leak factors and bias
read once per step when ``P_UNIFORM`` says they are equal over the population). ``mode`` holds
the arithmetic
(indices ``M_*``), ``lims`` the integer ranges ``[var, lo/hi]`` of ``u``, ``v``, ``a``, and
``rnd`` a step's rounding numbers ``[u/v/a, flat]`` (read by stochastic roundings only).
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from . import kernel

# population table columns
P_KIND, P_BOFF, P_N, P_NOFF, P_ROFF, P_SLOTS, P_RESET, P_REFR, P_KEEP, P_RBITS, P_UNIFORM = range(11)
P_COLS = 11
KIND_LIF, KIND_ALIF, KIND_LI = 0, 1, 2
# columns of the per-population constants in the state's dtype (no mixed-type arithmetic on float32)
T_TH, T_BETA, T_ONE, T_CAP = range(4)
T_COLS = 4
# mode indices
M_BITSHIFT, M_ROUND_U, M_ROUND_V, M_ROUND_A, M_MIN_STEP, M_FRAC_BITS = range(6)
M_OVF_U, M_OVF_V, M_OVF_A, M_BITS_U, M_BITS_V, M_BITS_A, M_REG_U, M_REG_V, M_REG_A = range(6, 15)
M_GE, M_STRICT = 15, 16
M_LEN = 17
# rows of the state array and of the per-neuron constants
S_U, S_V, S_A, S_REFR, S_VPRE, S_THPRE = range(6)
S_ROWS = 6
C_FU, C_FV, C_FA, C_BIAS = range(4)
C_ROWS = 4
# rounding of a leak
R_NONE, R_TRUNC, R_FLOOR, R_NEAREST, R_STOCHASTIC, R_LFSR = range(6)
ROUNDINGS = {"toward_zero": R_TRUNC, "floor": R_FLOOR, "nearest": R_NEAREST, "stochastic": R_STOCHASTIC}
# overflow
O_NONE, O_SATURATE, O_WRAP, O_WRAP_ONCE = range(4)
OVERFLOWS = {"saturate": O_SATURATE, "wrap": O_WRAP, "wrap_once": O_WRAP_ONCE}
# the error record of a strict run: found, population, variable (0 u, 1 v, 2 a), trial, neuron, value
E_FOUND, E_POP, E_VAR, E_TRIAL, E_NEURON, E_VALUE = range(6)


def spike_value(arr, n):
    """The spike of count ``n`` as ``arr`` holds it: a flag in a bool array, else the count."""
    return n


@overload(spike_value, inline="always")
def _spike_value(arr, n):
    if isinstance(arr.dtype, types.Boolean):
        return lambda arr, n: n != 0
    return lambda arr, n: n


def leak(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits):
    """One step of leak (compiled as :func:`_leak_fixed` for float64 states, a plain product
    for float32 states)."""


def _leak_fixed(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits):
    """One step of leak of ``x`` with factor ``f`` (``k / 2**n``, or ``2**-code`` for a
    ``bitshift`` decay ``x - round(x >> code)`` moving by at least ``min_step``). Roundings:
    ``R_NONE`` the product in the state's dtype (float chips), ``R_TRUNC`` toward zero,
    ``R_FLOOR``, ``R_NEAREST`` (half away from zero), ``R_STOCHASTIC`` up when the uniform
    ``r`` is below the fraction, ``R_LFSR`` (ReckOn) up when the dropped ``frac_bits`` (their
    top ``rand_bits``) are >= the LFSR number ``r`` and the floor is nonzero (of the integer
    part of ``x``, as the chip holds it; ``r = inf`` keeps ``x``: a leak of 1 that draws nothing)."""
    y = x * f
    if rounding == R_NONE:
        return y
    if rounding == R_LFSR:
        if r == np.inf:
            return x
        y = np.trunc(x) * f
        q = np.floor(y)
        frac = (y - q) * 2.0**frac_bits  # the dropped bits, an exact integer
        if rand_bits < frac_bits:
            frac = np.floor(frac * 2.0 ** (rand_bits - frac_bits))
        return q + 1.0 if (frac >= r and q != 0.0) else q
    if rounding == R_TRUNC:
        y = np.trunc(y)
    elif rounding == R_FLOOR:
        y = np.floor(y)
    elif rounding == R_NEAREST:
        y = np.copysign(np.floor(np.abs(y) + 0.5), y)
    else:  # R_STOCHASTIC
        lo = np.floor(y)
        y = lo + 1.0 if r < y - lo else lo
    if not bitshift:
        return y
    if x != 0.0 and abs(y) < min_step:  # XyloSim: a nonzero state moves by at least min_step
        y = np.copysign(float(min_step), x)
    return x - y


@kernel
def out_of_range(x, ovf, bits, lo, hi):
    """Whether ``x`` needs the overflow handling of its format (what strict mode refuses):
    Lava's one-time wrap acts on ``x > 2**(bits-1)`` or ``x <= -2**(bits-1)``."""
    if ovf == O_NONE:
        return False
    if ovf == O_WRAP_ONCE:
        half = 2.0 ** (bits - 1)
        return x > half or x <= -half
    return x < lo or x > hi


@kernel
def bring_in_range(x, ovf, bits, lo, hi, reg):
    """``x`` as the chip keeps it: first wrapped into its ``reg``-bit two's complement register
    (0: no register; Lava computes ``u`` and ``v`` in int32), then the format's overflow:
    saturate, wrap modulo ``2**bits``, or Lava's single +-``2**bits`` correction."""
    if reg > 0:
        span = 2.0**reg
        x = x - span * np.floor((x + 0.5 * span) / span)
    if ovf == O_NONE or not out_of_range(x, ovf, bits, lo, hi):
        return x
    if ovf == O_SATURATE:
        return min(max(x, lo), hi)
    if ovf == O_WRAP:
        span = 2.0**bits
        return (x - lo) - span * np.floor((x - lo) / span) + lo
    half = 2.0 ** (bits - 1)
    return x - 2.0 * half if x > half else x + 2.0 * half


@kernel
def _note(err, p, var, b, i, x):
    """Record the first out-of-range value of ``var`` (strict mode), in trial-major order."""
    if err[var, E_FOUND] == 0:
        err[var, E_FOUND] = 1
        err[var, E_POP] = p
        err[var, E_VAR] = var
        err[var, E_TRIAL] = b
        err[var, E_NEURON] = i
        err[var, E_VALUE] = np.int64(x)


def _float_product(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits):
    return x * f  # float chips: the exact decay's product, rounded once in the state's dtype


@overload(leak)
def _leak(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits):
    return _float_product if x.bitwidth == 32 else _leak_fixed


def in_range(x, lo, hi):
    """Whether ``x`` lies in ``[lo, hi]``: nothing to wrap, saturate or report (float32
    states: always)."""


@overload(in_range, inline="always")
def _in_range(x, lo, hi):
    if x.bitwidth == 32:
        return lambda x, lo, hi: True
    # both comparisons, not a chained (short-circuit) one: its branch's variables trip numba's
    # SSA check (NumbaIRAssumptionWarning) once inlined; the result is the same, NaN included
    return lambda x, lo, hi: (x >= lo) & (x <= hi)


def settle(x, ovf, bits, lo, hi, reg):
    """``x``, outside ``[lo, hi]``, brought into range (:func:`bring_in_range`); float32
    states have no integer range and pass unchanged."""


@overload(settle)
def _settle(x, ovf, bits, lo, hi, reg):
    if x.bitwidth == 32:
        return lambda x, ovf, bits, lo, hi, reg: x
    return lambda x, ovf, bits, lo, hi, reg: bring_in_range(x, ovf, bits, lo, hi, reg)


@kernel(inline="always")
def _leak_all(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits):
    """``x[i] <- leak(x[i])`` in place (:func:`leak`); the deterministic multiplicative cases
    as branch-free loops the compiler vectorizes."""
    if rounding == R_NONE:
        for i in range(x.shape[0]):
            x[i] = x[i] * f[i]
    elif rounding == R_TRUNC and not bitshift:
        for i in range(x.shape[0]):
            x[i] = np.trunc(x[i] * f[i])
    elif rounding == R_FLOOR and not bitshift:
        for i in range(x.shape[0]):
            x[i] = np.floor(x[i] * f[i])
    else:
        for i in range(x.shape[0]):
            x[i] = leak(x[i], f[i], rounding, bitshift, min_step, r[i], frac_bits, rand_bits)


@kernel(inline="always")
def _leak_add(x, f, inp, bias, clear, uniform, rounding, bitshift, min_step, r, frac_bits, rand_bits, lo, hi):
    """``x[i] <- (leak(x[i]) + inp[i]) (+ bias[i])`` in place, and ``inp[i] <- 0`` when ``clear``
    (the input slot read); ``bias`` empty: none; ``uniform``: every ``f[i]`` and ``bias[i]`` is
    ``f[0]`` and ``bias[0]`` (the same values, held in registers instead of read per neuron).
    Returns whether every result lies in ``[lo, hi]`` (:func:`in_range`). The deterministic
    multiplicative leaks run as one branch-free pass (the same operations per element as
    :func:`_leak_all` followed by the additions; one pass over memory instead of three); other
    leaks take :func:`_leak_all`."""
    n, zero = x.shape[0], inp.dtype.type(0)
    if n == 0:  # (f[0] below would read past an empty population's slice)
        return True
    plain = rounding == R_NONE or ((rounding == R_TRUNC or rounding == R_FLOOR) and not bitshift)
    if not plain:
        _leak_all(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits)
    has_bias = bias.shape[0] > 0
    f0, b0 = f[0], bias[0] if has_bias else zero
    ok = True
    for i in range(n):
        y, fi = x[i], f0 if uniform else f[i]
        if rounding == R_TRUNC and not bitshift:
            y = np.trunc(y * fi)
        elif rounding == R_FLOOR and not bitshift:
            y = np.floor(y * fi)
        elif rounding == R_NONE:
            y = y * fi
        y = y + inp[i]
        if has_bias:
            y = y + (b0 if uniform else bias[i])
        if clear:
            inp[i] = zero
        x[i] = y
        ok &= in_range(y, lo, hi)
    return ok


@kernel(inline="always")
def _settle_all(x, var, p, b, mode, lims, err):
    """Bring every element of ``x`` (variable ``var``: 0 u, 1 v, 2 a) into range; in strict
    mode note the first that leaves it in ``err`` instead (and keep it). One vectorizable
    pass when all are in range, the common case."""
    lo, hi = lims[var, 0], lims[var, 1]
    bad = False
    for i in range(x.shape[0]):
        bad |= not in_range(x[i], lo, hi)
    if not bad:
        return
    ovf, bits, reg = mode[M_OVF_U + var], mode[M_BITS_U + var], mode[M_REG_U + var]
    strict = mode[M_STRICT] != 0
    if ovf == O_SATURATE and not strict:  # the common overflow (a saturated v): a clip, wrapped first if needed
        half = 2.0 ** (reg - 1) if reg > 0 else np.inf
        for i in range(x.shape[0]):
            y = x[i]
            if not -half <= y < half:
                y = settle(y, O_NONE, bits, lo, hi, reg)
            x[i] = min(max(y, lo), hi)
        return
    for i in range(x.shape[0]):
        if in_range(x[i], lo, hi):
            continue
        if strict and out_of_range(x[i], ovf, bits, lo, hi):
            _note(err, p, var, b, i, x[i])
        else:
            x[i] = settle(x[i], ovf, bits, lo, hi, reg)


@kernel(inline="always")
def _fire_lif(v, spikes, th0, ge, subtract, one):
    """The spikes and reset of plain LIF neurons (no refractory period, one spike per step,
    nothing kept for a learner): :func:`update_population`'s last stage as a branch-free loop."""
    zero = one - one
    for i in range(v.shape[0]):
        vk = v[i]
        fired = (vk >= th0) if ge else (vk > th0)
        v[i] = ((vk - th0) if subtract else zero) if fired else vk
        spikes[i] = spike_value(spikes, one if fired else zero)


@kernel(inline="always")
def update_population(p, t, b, batch, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err):
    """Step ``t`` of population ``p`` (row of ``pop``) in trial ``b`` of ``batch``: read and
    clear its input slot, ``u <- leak(u) + in``, ``v <- leak(v) + u + bias``, (ALIF)
    ``a <- leak(a)`` and the threshold ``th + a``, refractory freeze, spikes (counts up to the
    cap), ``v_pre``, reset (zero, or subtract the base threshold), ``a += n * beta``. Each
    stage is one pass over the population (the same operations per neuron, in the same
    order, as one pass per neuron)."""
    kind, n, noff = pop[p, P_KIND], pop[p, P_N], pop[p, P_NOFF]
    k0 = pop[p, P_BOFF] + b * n
    r0 = pop[p, P_ROFF] + ((t % pop[p, P_SLOTS]) * batch + b) * n
    period, keep, subtract = pop[p, P_REFR], pop[p, P_KEEP], pop[p, P_RESET] == 1
    bshift, ms, fb, rb = mode[M_BITSHIFT], mode[M_MIN_STEP], mode[M_FRAC_BITS], pop[p, P_RBITS]
    th0, beta, one, cap = thr[p, T_TH], thr[p, T_BETA], thr[p, T_ONE], thr[p, T_CAP]  # the state's dtype
    zero = one - one
    u, v, a, refr = st[S_U, k0 : k0 + n], st[S_V, k0 : k0 + n], st[S_A, k0 : k0 + n], st[S_REFR, k0 : k0 + n]
    inp, bias = ring[r0 : r0 + n], nconst[C_BIAS, noff : noff + n]
    fu, ru = nconst[C_FU, noff : noff + n], rnd[0, k0 : k0 + n]
    uni = pop[p, P_UNIFORM] != 0
    if not _leak_add(u, fu, inp, bias[:0], True, uni, mode[M_ROUND_U], bshift, ms, ru, fb, rb, lims[0, 0], lims[0, 1]):
        _settle_all(u, 0, p, b, mode, lims, err)
    v_old = v.copy() if period > 0 else v[:0]  # a refractory neuron's v does not move (u still integrates)
    fv, rv = nconst[C_FV, noff : noff + n], rnd[1, k0 : k0 + n]
    if not _leak_add(v, fv, u, bias, False, uni, mode[M_ROUND_V], bshift, ms, rv, fb, rb, lims[1, 0], lims[1, 1]):
        _settle_all(v, 1, p, b, mode, lims, err)
    if kind == KIND_LI:
        return
    if kind == KIND_ALIF:
        _leak_all(a, nconst[C_FA, noff : noff + n], mode[M_ROUND_A], bshift, ms, rnd[2, k0 : k0 + n], fb, rb)
        _settle_all(a, 2, p, b, mode, lims, err)
    ge = mode[M_GE]
    if kind == KIND_LIF and period == 0 and not keep and cap <= one:
        _fire_lif(v, spikes[k0 : k0 + n], th0, ge, subtract, one)
        return
    for i in range(n):
        vk, th, ak = v[i], th0, zero
        if kind == KIND_ALIF:
            ak = a[i]
            th = th0 + ak
        frozen = period > 0 and refr[i] > 0
        if frozen:
            vk = v_old[i]
        fired = (vk >= th) if ge else (vk > th)
        cnt = zero
        if fired and not frozen:
            cnt = one
            if cap > one:  # Xylo: while v >= th and under the cap, spike and subtract
                cnt = min(cap, vk // max(th, one))
        if keep:  # what a pseudo-derivative reads: v before the reset, the threshold used
            st[S_VPRE, k0 + i] = vk
            st[S_THPRE, k0 + i] = th
        if period > 0:
            refr[i] = period if cnt > 0 else max(refr[i] - 1, 0)
        if cnt > 0:
            vk = vk - cnt * th0 if subtract else zero  # e-prop resets by v_th, not by the adaptive threshold
            if kind == KIND_ALIF:
                a[i] = ak + cnt * beta
        v[i] = vk
        spikes[k0 + i] = spike_value(spikes, cnt)


@kernel
def strict_failure(err):
    """The variable (0 u, 1 v, 2 a) whose first overflow a strict population step reports, or -1."""
    for var in range(3):
        if err[var, E_FOUND]:
            return var
    return -1


@kernel
def update_neurons(t, batch, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err):
    """Step ``t`` of every population of ``pop`` in order, each over all trials
    (:func:`update_population`). In strict mode, stops after the first population with an
    overflow, its ``err`` rows filled (the first overflow of u, then v, then a, trial-major),
    and returns that population's index; else -1."""
    for p in range(pop.shape[0]):
        for b in range(batch):
            update_population(p, t, b, batch, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err)
        if mode[M_STRICT] and strict_failure(err) >= 0:
            return p
    return -1


@kernel(inline="always")
def update_trial(t, b, batch, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err):
    """Step ``t`` of every population in trial ``b`` alone (trials are independent: a run
    over trials in parallel; not strict, whose first overflow is ordered across trials)."""
    for p in range(pop.shape[0]):
        update_population(p, t, b, batch, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err)
