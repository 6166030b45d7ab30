"""Synaptic delivery: the input that one step's spikes cause, added to the post neurons' rings.

A projection is split into groups of equal delay (see :mod:`neurocomp.emulator.synapses`).
A group is per-pre index lists (``K_LISTS``: CSR by pre neuron, the synapses of a
sparse projection or the nonzero weights of a sparse-ish dense one), dense rows (``K_ROWS``:
``[pre, post]``, each pre neuron's weights contiguous), or narrow dense rows (``K_NARROW``:
int8 or int16 rows, ``G_WBITS``, summed in an int16 or int32 accumulator, ``G_ACC`` bits, with
SIMD adds over contiguous post neurons; a fixed-point strategy for projections dense enough
that adding a whole row beats scattering its nonzero weights), or compact lists (``K_COMPACT``:
a fixed-point list group whose rows fit 16-bit offsets, 3 bytes per synapse instead of 6, see
:func:`_compact`). Delivery is event driven: only the rows of pre neurons that spiked are read.

Groups are rows of an int64 table (columns ``G_*``) over concatenated arrays: ``indptr``
(int64) and ``idx`` (int32), ``w`` and ``dense`` (fixed point: the chip's mantissas, int16 or
float32; float chips: float32 weights in model units), ``exps`` (float64, the exponent per
post neuron) and ``gscale`` (float64 per group: ``2**(exp + input_shift)`` for ``E_DIRECT``,
else the chip's input shift ``2**input_shift``). A narrow group's rows are its mantissas
divided by ``2**G_WSHIFT``, the power of two they all share (Loihi's mixed-sign weights are
even), stored as raw int8 or int16 bytes inside ``dense`` from byte ``G_DENSE * itemsize`` and
read through a view (so ``dense`` keeps one dtype and no kernel is compiled twice for it); its
sum is multiplied back by ``2**G_WSHIFT`` (for ``E_DIRECT``, in ``gscale``); its accumulator is
the trial's scratch ``acc`` viewed as int16 or int32, and ``acc64`` viewed as int32 lists the
spiking pre neurons (of compact groups too). Integer addition wraps
modulo ``2**G_ACC``, so the sum is exact whatever the order when its bound (largest weight
times fan-in times spike count) is below ``2**(G_ACC - 1)``. Spikes and rings are flat:
the pre spikes ``[batch, pre]`` at ``G_PRE``, the post ring ``[slots, batch, post]`` at
``G_POST``. How the summed weights reach the ring (``G_EMODE``):

* ``E_DIRECT``: fixed point, a non-negative scalar exponent: each weight times
  ``2**(exp + input_shift)`` is added to the float64 ring at once (integers, exact below 2**53);
* ``E_SHIFT``: fixed point, the sum is shifted by the exponent and rounded as the chip's
  shift rounds (``G_ROUND``: floor, toward zero, nearest), then scaled by the input shift;
* ``E_EXACT``: fixed point with non-integer payloads (learning attribution): the sum times
  ``2**exp`` exactly;
* ``E_F32``: float chips, dense: the float32 sum in pre order, then added to the ring;
* ``E_F64``: float chips, sparse: the float64 sum in pre order, added to the float32 ring in
  float64 and rounded once.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import kernel

G_PRE, G_NPRE, G_POST, G_NPOST, G_SLOTS, G_SHIFT, G_KIND, G_PTR, G_IDX, G_DENSE, G_EXP, G_EMODE, G_ROUND = range(13)
G_WSHIFT, G_ACC, G_WBITS = 13, 14, 15
G_COLS = 16
K_LISTS, K_ROWS, K_NARROW, K_COMPACT = 0, 1, 2, 3
E_DIRECT, E_SHIFT, E_EXACT, E_F32, E_F64 = range(5)
RD_FLOOR, RD_TRUNC, RD_NEAREST = range(3)
SHIFT_ROUNDINGS = {"floor": RD_FLOOR, "toward_zero": RD_TRUNC, "nearest": RD_NEAREST}
_AHEAD = 2  # spiking pre neurons whose lists are prefetched ahead of the one delivered
_AHEAD_ROWS = 4  # the same for compact rows (listed up front: a deeper prefetch costs no scan)
_LINE = 16  # synapses per prefetch (a 64-byte line of int32 indices)
_FETCH_SYNAPSES = 1 << 18  # a group with more synapses prefetches its lists (they would not stay in L2)
_FETCH_BYTES = 1 << 20  # a compact group with more bytes prefetches its rows
_BYTES_LINE = 64


def weighted(s, w):
    """A weight times the spike ``s``: the weight itself for a spike flag, else count times weight."""
    return s * w


@overload(weighted, inline="always")
def _weighted(s, w):
    if isinstance(s, types.Boolean):
        return lambda s, w: w
    return lambda s, w: s * w


def weighted_int(s, w):
    """A weight times the spike ``s`` in integer arithmetic: the weight itself for a spike
    flag, else the integer count times the weight (a count held in float64 is exact)."""
    return s * w


@overload(weighted_int, inline="always")
def _weighted_int(s, w):
    if isinstance(s, types.Boolean):
        return lambda s, w: w
    return lambda s, w: np.int64(s) * w


@kernel
def shift_round(x, e, rounding):
    """``x * 2**e`` rounded as the chip's shift rounds (exact for ``e >= 0``)."""
    y = x * 2.0**e
    if e >= 0:
        return y
    if rounding == RD_FLOOR:
        return np.floor(y)
    if rounding == RD_TRUNC:
        return np.trunc(y)
    return np.copysign(np.floor(np.abs(y) + 0.5), y)


@intrinsic
def prefetch(typingctx, arr, i):
    """Ask the CPU to fetch the cache line of ``arr[i]`` (LLVM's ``prefetch``: a hint, no
    effect on the result; ``i`` must lie within ``arr``)."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p] + [ir.IntType(32)] * 3)
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
        i32 = ir.IntType(32)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])  # read, keep, data
        return context.get_dummy_value()

    return types.void(arr, i), codegen


@kernel(inline="always")
def _next_spike(spikes, s0, j, npre):
    """The first pre neuron after ``j`` that spiked (``npre`` if none)."""
    j += 1
    while j < npre and spikes[s0 + j] == 0:
        j += 1
    return j


@kernel(inline="always")
def _fetch_list(spikes, s0, j, npre, indptr, p0, q0, idx, w):
    """Prefetch the list of the spiking pre neuron ``j`` (a list of a large projection is
    rarely in the cache: its synapses are read once per spike); nothing when ``j = npre``."""
    if j < npre:
        hi = q0 + indptr[p0 + j + 1]
        for q in range(q0 + indptr[p0 + j], hi, _LINE):
            prefetch(idx, q)
            prefetch(w, q)


@kernel(inline="always")
def _lists(spikes, s0, i0, npre, indptr, p0, q0, idx, w, out, base, scale, add_scale):
    """``out[base + idx] += s * w (* scale when add_scale)`` over the list of every pre neuron
    ``i >= i0`` that spiked, in pre order (the mode's branches out of the loop). When the
    lists outgrow the caches, the list of the spiking neuron ``_AHEAD`` spikes later is
    prefetched meanwhile."""
    ahead = i0 - 1 if indptr[p0 + npre] - indptr[p0] > _FETCH_SYNAPSES else npre
    for _ in range(_AHEAD if ahead < npre else 0):
        ahead = _next_spike(spikes, s0, ahead, npre)
        _fetch_list(spikes, s0, ahead, npre, indptr, p0, q0, idx, w)
    for i in range(i0, npre):
        s = spikes[s0 + i]
        if s != 0:
            ahead = _next_spike(spikes, s0, ahead, npre) if ahead < npre else npre
            _fetch_list(spikes, s0, ahead, npre, indptr, p0, q0, idx, w)
            lo, hi = q0 + indptr[p0 + i], q0 + indptr[p0 + i + 1]
            if add_scale:
                for q in range(lo, hi):
                    out[base + idx[q]] += weighted(s, w[q]) * scale
            else:
                for q in range(lo, hi):
                    out[base + idx[q]] += weighted(s, w[q])


@kernel(inline="always")
def _compact_add(s, b, offs, o0, ws, w0, m, npost, out, base, scale):
    """``out[base + t] += s * w * scale`` for the ``m`` targets ``t = b + offs[o0 + q]`` (less
    ``npost`` past the last post neuron: a row's targets lie in a window of 2**16 that may wrap
    around the post population) and weights ``ws[w0 + q]`` of one compact row. Indices are
    unsigned where they can be (no negative-index wraparound per synapse) and the arrays are
    whole: a slice per row would cost two atomic reference counts each."""
    one = np.uint64(1)
    if b + offs[o0 + np.uint64(m) - one] < npost:  # no wrap: offsets sorted, the last is the largest
        t0 = np.uint64(base + b)
        for q in range(m):
            u = np.uint64(q)
            out[t0 + offs[o0 + u]] += weighted(s, ws[w0 + u]) * scale
    else:
        for q in range(m):
            u = np.uint64(q)
            t = b + np.int64(offs[o0 + u])
            t -= npost if t >= npost else 0
            out[base + t] += weighted(s, ws[w0 + u]) * scale


@kernel(inline="always")
def _spiking(spikes, s0, i0, i1, lst):
    """List the pre neurons ``i0 <= i < i1`` that spiked in ``lst`` (branch free: no
    misprediction per spike) and return their number."""
    k = 0
    for i in range(i0, i1):
        lst[k] = i
        k += spikes[s0 + i] != 0
    return k


@kernel(inline="always")
def _fetch_row(rows, indptr, p0, i):
    """Prefetch the compact row of pre neuron ``i``."""
    for q in range(indptr[p0 + i], indptr[p0 + i + 1], _BYTES_LINE):
        prefetch(rows, q)


@kernel
def _compact_rows(spikes, s0, lst, k, ahead, indptr, p0, rows, r16, ws, npost, out, base, scale):
    """:func:`_compact_add` over the rows of the ``k`` spiking pre neurons listed in ``lst``,
    in order, prefetching the row ``ahead`` places later. ``r16`` and ``ws`` are ``rows`` viewed
    whole as uint16 and as the weights' type (int8 or int16): a row of ``m`` synapses is its
    first target (int32, as two uint16), ``m`` uint16 offsets, then ``m`` weights."""
    one, two, wb = np.uint64(1), np.uint64(2), ws.itemsize
    for j in range(min(ahead, k)):
        _fetch_row(rows, indptr, p0, lst[j])
    for j in range(k):
        if j + ahead < k:
            _fetch_row(rows, indptr, p0, lst[j + ahead])
        i = lst[j]
        lo, hi = indptr[p0 + i], indptr[p0 + i + 1]
        if hi > lo:
            h = np.uint64(lo >> 1)  # the row's first uint16
            b = np.int64(r16[h]) | (np.int64(r16[h + one]) << 16)
            m = (hi - lo - 4) // (2 + wb)
            w0 = np.uint64((lo + 4 + 2 * m) // wb)
            _compact_add(spikes[s0 + i], b, r16, h + two, ws, w0, m, npost, out, base, scale)


@kernel
def _compact(spikes, s0, i0, npre, npost, indptr, p0, rows, wbits, out, base, scale, lst):
    """``out[base + t] += s * w * scale`` over the compact row of every pre neuron ``i >= i0``
    that spiked, in pre order; row ``i`` is ``rows[indptr[p0 + i] : indptr[p0 + i + 1]]`` (raw
    bytes, empty without synapses). A synapse is 3 bytes (a uint16 offset from the row's first
    target and an int8 mantissa divided by the group's common power of two; 4 with int16
    weights) where an index list takes 6, and a row is one contiguous run of bytes, so a spike
    reads half the cache lines. Rows have even lengths (a zero byte pads an odd one), so all
    are read through whole-array views (:func:`_compact_rows`). The spiking neurons are listed
    first in ``lst`` (int32 scratch, any length: in chunks of its size); when the rows outgrow
    the caches, the row of the spiking neuron ``_AHEAD_ROWS`` places later in the list is
    prefetched meanwhile (at N = 1e5 the rows come from memory)."""
    ahead = _AHEAD_ROWS if indptr[p0 + npre] - indptr[p0] > _FETCH_BYTES else 0
    r16 = rows[: rows.shape[0] & ~1].view(np.uint16)
    while i0 < npre:
        i1 = min(npre, i0 + lst.shape[0])
        k = _spiking(spikes, s0, i0, i1, lst)
        if wbits == 8:
            _compact_rows(spikes, s0, lst, k, ahead, indptr, p0, rows, r16, rows.view(np.int8), npost, out, base, scale)
        else:
            _compact_rows(spikes, s0, lst, k, ahead, indptr, p0, rows, r16, r16.view(np.int16), npost, out, base, scale)
        i0 = i1


@kernel(inline="always")
def _rows(spikes, s0, i0, npre, dense, d0, npost, out, base, scale, add_scale):
    """``out[base + j] += s * dense[i, j] (* scale when add_scale)`` for every pre neuron
    ``i >= i0`` that spiked."""
    for i in range(i0, npre):
        s = spikes[s0 + i]
        if s != 0:
            r0 = d0 + i * npost
            if add_scale:
                for j in range(npost):
                    out[base + j] += weighted(s, dense[r0 + j]) * scale
            else:
                for j in range(npost):
                    out[base + j] += weighted(s, dense[r0 + j])


@kernel(inline="always")
def _narrow_add(s, row, a):
    """``a += s * row`` over contiguous slices (indices the compiler sees are non-negative), in
    the accumulator's integer type: SIMD adds that wrap, exact when the true sum fits."""
    for j in range(a.shape[0]):
        a[j] += weighted_int(s, row[j])


@kernel(inline="always")
def _narrow_add4(s0, r0, s1, r1, s2, r2, s3, r3, a):
    """``a += s0 * r0 + s1 * r1 + s2 * r2 + s3 * r3``: four rows per pass, so the accumulator is
    loaded and stored once for four rows (the adds wrap in its type: the same sum modulo
    ``2**bits``, so exact whenever the true sum fits)."""
    for j in range(a.shape[0]):
        a[j] += weighted_int(s0, r0[j]) + weighted_int(s1, r1[j]) + weighted_int(s2, r2[j]) + weighted_int(s3, r3[j])


@kernel
def _narrow_sum(spikes, s0, i0, npre, rows, r0, npost, acc, lst):
    """``acc[j] = sum_i s_i * rows[r0 + i * npost + j]`` over the pre neurons ``i >= i0`` that
    spiked. The spiking neurons are listed first, branch free, in ``lst`` (int32 scratch of at
    least ``npre``; else found while adding), then their rows are added four at a time (at
    N=1000 and 6.5% firing, 2.5x faster than adding each row as its neuron is found)."""
    a = acc[:npost]
    a[:] = 0
    if lst.shape[0] < npre:
        for i in range(i0, npre):
            s = spikes[s0 + i]
            if s != 0:
                _narrow_add(s, rows[r0 + i * npost : r0 + (i + 1) * npost], a)
        return
    k = _spiking(spikes, s0, i0, npre, lst)
    q = 0
    while q + 4 <= k:
        j0, j1, j2, j3 = lst[q], lst[q + 1], lst[q + 2], lst[q + 3]
        _narrow_add4(
            spikes[s0 + j0], rows[r0 + j0 * npost : r0 + (j0 + 1) * npost],
            spikes[s0 + j1], rows[r0 + j1 * npost : r0 + (j1 + 1) * npost],
            spikes[s0 + j2], rows[r0 + j2 * npost : r0 + (j2 + 1) * npost],
            spikes[s0 + j3], rows[r0 + j3 * npost : r0 + (j3 + 1) * npost], a,
        )  # fmt: skip
        q += 4
    for p in range(q, k):
        i = lst[p]
        _narrow_add(spikes[s0 + i], rows[r0 + i * npost : r0 + (i + 1) * npost], a)


@kernel(inline="always")
def _narrow_flush(g, b, groups, gscale, exps, ring, slot_off, acc):
    """Add a narrow group's integer sum ``acc`` of trial ``b`` to the ring slot: times the
    group's scale (``E_DIRECT``), or times ``2**G_WSHIFT`` and shifted as the chip's shift
    rounds (``E_SHIFT``); exact, as :func:`_flush` on the same sum."""
    npost, e0, rnd, scale = groups[g, G_NPOST], groups[g, G_EXP], groups[g, G_ROUND], gscale[g]
    base = slot_off + b * npost
    out, a = ring[base : base + npost], acc[:npost]  # slices: indices the compiler sees are non-negative
    if groups[g, G_EMODE] == E_DIRECT:
        for j in range(npost):
            out[j] += a[j] * scale
    else:
        unit, e = 2.0 ** groups[g, G_WSHIFT], exps[e0 : e0 + npost]
        for j in range(npost):
            out[j] += shift_round(a[j] * unit, e[j], rnd) * scale


@kernel(inline="always")
def _narrow(g, b, groups, gscale, dense, exps, spikes, s0, i0, ring, slot_off, acc, lst):
    """Deliver narrow group ``g`` (trial ``b``, first spiking pre neuron ``i0``) through ``acc``,
    a scratch row of at least ``G_NPOST`` int16 or int32 values; its rows are the int8 or int16
    values (``G_WBITS``) stored from byte ``G_DENSE * dense.itemsize`` of ``dense``."""
    npre, npost = groups[g, G_NPRE], groups[g, G_NPOST]
    start = groups[g, G_DENSE] * dense.itemsize
    if groups[g, G_WBITS] == 8:
        _narrow_sum(spikes, s0, i0, npre, dense.view(np.int8), start, npost, acc, lst)
    else:
        _narrow_sum(spikes, s0, i0, npre, dense.view(np.int16), start // 2, npost, acc, lst)
    _narrow_flush(g, b, groups, gscale, exps, ring, slot_off, acc)


@kernel(inline="always")
def _flush(g, b, groups, gscale, exps, ring, slot_off, acc, acc64):
    """Add the accumulated sum of trial ``b`` to the ring slot, as the group's mode says."""
    emode, npost = groups[g, G_EMODE], groups[g, G_NPOST]
    e0, rnd, scale = groups[g, G_EXP], groups[g, G_ROUND], gscale[g]
    base = slot_off + b * npost
    for j in range(npost):
        if emode == E_SHIFT:
            ring[base + j] += shift_round(acc[j], exps[e0 + j], rnd) * scale
        elif emode == E_EXACT:
            ring[base + j] += acc[j] * 2.0 ** exps[e0 + j] * scale
        elif emode == E_F64:
            ring[base + j] = ring[base + j] + acc64[j]
        else:
            ring[base + j] += acc[j]


@kernel(inline="always")
def deliver_group(g, t, b, batch, groups, gscale, indptr, idx, w, dense, exps, spikes, ring, acc, acc64):
    """Deliver the step-``t`` spikes of trial ``b`` through group ``g`` to its post ring slot
    ``t + G_SHIFT``. ``acc`` (the state's dtype) and ``acc64`` (float64) are this trial's
    scratch, at least the post size, cleared only when a pre neuron spiked."""
    npre, npost, emode = groups[g, G_NPRE], groups[g, G_NPOST], groups[g, G_EMODE]
    slot_off = groups[g, G_POST] + ((t + groups[g, G_SHIFT]) % groups[g, G_SLOTS]) * batch * npost
    s0 = groups[g, G_PRE] + b * npre
    kind, p0, q0, d0 = groups[g, G_KIND], groups[g, G_PTR], groups[g, G_IDX], groups[g, G_DENSE]
    lists = kind == K_LISTS
    if kind == K_COMPACT:  # the group's rows: raw bytes from byte G_DENSE * itemsize of ``dense``
        rows = dense.view(np.uint8)[d0 * dense.itemsize :]
        if emode == E_DIRECT:  # gscale holds 2**G_WSHIFT too
            _compact(spikes, s0, 0, npre, npost, indptr, p0, rows, groups[g, G_WBITS], ring, slot_off + b * npost,
                     gscale[g], acc64.view(np.int32))  # fmt: skip
            return
        i0 = 0
        while i0 < npre and spikes[s0 + i0] == 0:
            i0 += 1
        if i0 == npre:
            return
        acc[:npost] = 0.0  # the sum of mantissas (the stored weights times 2**G_WSHIFT), exact
        _compact(spikes, s0, i0, npre, npost, indptr, p0, rows, groups[g, G_WBITS], acc, 0,
                 2.0 ** groups[g, G_WSHIFT], acc64.view(np.int32))  # fmt: skip
        _flush(g, b, groups, gscale, exps, ring, slot_off, acc, acc64)
        return
    if emode == E_DIRECT and kind != K_NARROW:
        base, scale = slot_off + b * npost, gscale[g]
        if lists:
            _lists(spikes, s0, 0, npre, indptr, p0, q0, idx, w, ring, base, scale, True)
        else:
            _rows(spikes, s0, 0, npre, dense, d0, npost, ring, base, scale, True)
        return
    i0 = 0
    while i0 < npre and spikes[s0 + i0] == 0:
        i0 += 1
    if i0 == npre:  # nothing to add (not even a zero: a float ring keeps the sign of its zeros)
        return
    if kind == K_NARROW:  # the trial's scratch (float64 for fixed point) reread as integers
        lst = acc64.view(np.int32)
        if groups[g, G_ACC] == 16:
            _narrow(g, b, groups, gscale, dense, exps, spikes, s0, i0, ring, slot_off, acc.view(np.int16), lst)
        else:
            _narrow(g, b, groups, gscale, dense, exps, spikes, s0, i0, ring, slot_off, acc.view(np.int32), lst)
        return
    if emode == E_F64:
        acc64[:npost] = 0.0
        if lists:
            _lists(spikes, s0, i0, npre, indptr, p0, q0, idx, w, acc64, 0, 1.0, False)
        else:
            _rows(spikes, s0, i0, npre, dense, d0, npost, acc64, 0, 1.0, False)
    else:
        acc[:npost] = 0.0  # a literal zero: a narrow group may have left integer bits (a NaN as float) here
        if lists:
            _lists(spikes, s0, i0, npre, indptr, p0, q0, idx, w, acc, 0, 1.0, False)
        else:
            _rows(spikes, s0, i0, npre, dense, d0, npost, acc, 0, 1.0, False)
    _flush(g, b, groups, gscale, exps, ring, slot_off, acc, acc64)


@kernel
def deliver_groups(t, batch, groups, gscale, indptr, idx, w, dense, exps, spikes, ring, acc, acc64):
    """:func:`deliver_group` for every row of ``groups`` in order, each over all trials
    (``acc``, ``acc64``: ``[batch, post]`` scratch)."""
    for g in range(groups.shape[0]):
        for b in range(batch):
            deliver_group(g, t, b, batch, groups, gscale, indptr, idx, w, dense, exps, spikes, ring, acc[b], acc64[b])


@kernel(inline="always")
def deliver_trial(t, b, batch, groups, gscale, indptr, idx, w, dense, exps, spikes, ring, acc, acc64):
    """:func:`deliver_group` for every row of ``groups``, trial ``b`` alone."""
    for g in range(groups.shape[0]):
        deliver_group(g, t, b, batch, groups, gscale, indptr, idx, w, dense, exps, spikes, ring, acc[b], acc64[b])
