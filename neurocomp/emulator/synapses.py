"""Delivery of spikes through one projection of a Program.

Each projection is split into groups of equal delay (Lava's DelayDense accumulates and
shifts each delay slot separately, and so does this). A group accumulates the weights of
the pre neurons that spiked (times their spike counts), applies the weight exponent, and
adds the result to the post population's input for step ``t + latency + delay``.

Accumulation is exact. Delivery is the compiled kernel of :mod:`neurocomp.kernels.delivery`:
event driven (only the weights of pre neurons that spiked are read), from per-pre index
lists (a sparse projection, or a dense one with few nonzero weights) or dense rows. The
weights are held as the chip's mantissas (int16, or float32: exact below 2**24) and summed
in float64, exact below 2**53; ``max|mantissa| * max fan-in * max spikes per step`` times
``2**weight_exp`` times the input shift is checked against that bound when the emulator is
built. A negative (or per-channel) exponent shifts the group's sum as the chip's shift
rounds, before the input shift; a non-negative one is a power of two applied per weight.
A fixed-point group at least 1/32 dense is delivered as narrow rows: int8 rows (int16 when
a mantissa needs it) added whole (SIMD) into an int16 or int32 accumulator whose range holds
that bound, then scaled or shifted as above; the same integers, so the same bits.
Float chips sum float32 weights (exponent and scale folded in) in pre order.
"""

from __future__ import annotations

import numpy as np

from ..compiler.chip_weights import chip_mantissas
from ..compiler.ir import QProjection
from ..graph.weights import count_indices
from ..kernels import delivery as kd
from ..profiles import Profile

_FLOAT32_EXACT = 2**24
_FLOAT64_EXACT = 2**53
_LIST_FRACTION = 0.35  # a dense group with fewer nonzero weights is delivered from per-pre index lists
# Narrow rows (fixed point): a slot of a whole int16 row costs 1/50 (in isolation) to 1/20 (in the
# emulator, loaded machine) of one synapse scattered from a list (N=1000, AVX-512), so a group at
# least this dense adds rows ...
_NARROW_FRACTION = 1 / 32
_NARROW_SLOTS = 1 << 25  # ... unless its dense rows would exceed this many weights (32-64 MiB)
_ACC_BITS = (16, 32)  # the narrow accumulators, narrowest first
# narrow rows' widths, narrowest first: int8 halves the bytes a spike reads and converts (N=1000:
# row adds 1.6x faster than int16)
_ROW_BITS = (8, 16)
_ALIGN = 64  # bytes: each group's rows start on a cache line
# a fixed-point list group is stored as compact rows (3 bytes per synapse) when they fit; False
# keeps the per-pre index lists (int32 index, int16 or float32 weight: 6 or 8 bytes)
_COMPACT_LISTS = True


class Synapses:
    """Runtime form of one static projection: per-delay groups as rows of a delivery table
    over flat arrays (see :mod:`neurocomp.kernels.delivery`), with the pre and post offsets 0;
    the emulator copies them into its whole-network table with its own offsets."""

    def __init__(self, proj: QProjection, latency: int, profile: Profile, max_spikes: int, graded: bool = False):
        self.proj = proj
        self.name, self.pre, self.post = proj.name, proj.pre, proj.post
        self.n_post, self.n_pre = proj.shape
        self.latency = latency
        self.fixed = profile.arithmetic == "fixed"
        self.rounding = profile.formats.weight.exponent_rounding
        self.mantissas = m = chip_mantissas(proj, profile)
        if proj.is_sparse:
            fan_in = int(count_indices(proj.rows, self.n_post).max(initial=0))
        else:
            fan_in = int(np.count_nonzero(m, axis=1).max(initial=0))
        bound = int(np.abs(m).max(initial=0)) * max(fan_in, 1) * max_spikes
        self._fan_spikes = max(fan_in, 1) * max_spikes
        self._graded = graded  # payloads, not spike counts: never narrow rows (see _narrow_bits)
        self.exact_float32 = bound < _FLOAT32_EXACT  # the sums would be exact even in float32
        # float chips: the exponent and scale folded into float32 weights (model units)
        self.exp = np.asarray(proj.weight_exp if self.fixed else 0, dtype=np.int64)
        delays = np.asarray(proj.delay_steps)
        self.delays = [int(d) for d in (np.unique(delays) if delays.ndim else [int(delays)])]
        self.max_delay = max(self.delays)
        # the ring holds input in state units: the chip's ``<< input_shift`` (Lava's a_in << 6)
        # is applied here, after the exponent's rounding, where it costs no extra pass
        self._in_scale = float(2**profile.formats.input_shift) if self.fixed else 1.0
        if self.fixed and bound * 2 ** max(int(self.exp.max(initial=0)), 0) * self._in_scale >= _FLOAT64_EXACT:
            raise ValueError(f"projection {self.name!r}: summed input {bound} * 2**exp is not exact in float64")
        self._build(exact=False)

    def carry_float(self) -> None:
        """Deliver non-integer payloads (a learning-attribution run's unquantized errors)
        exactly: the exponent applied as an exact power of two instead of the chip's rounded
        shift."""
        self._build(exact=True)

    def _build(self, exact: bool) -> None:
        """The delivery table and its arrays, one row per delay group."""
        proj, m = self.proj, self.mantissas
        if self.fixed:
            direct = not exact and self.exp.ndim == 0 and int(self.exp) >= 0
            emode = kd.E_DIRECT if direct else kd.E_EXACT if exact else kd.E_SHIFT
            # the weights stay mantissas; E_DIRECT multiplies each by 2**exp * 2**input_shift
            gscale = float(2 ** int(self.exp)) * self._in_scale if direct else self._in_scale
            scale = 1.0
        else:
            e = np.asarray(proj.weight_exp, dtype=np.float64)
            scale = np.exp2(e) * proj.float_scale
            emode = kd.E_F64 if proj.is_sparse else kd.E_F32
            gscale = 1.0
        delays = np.asarray(proj.delay_steps)
        rows, scales = [], []
        parts: dict[str, list[np.ndarray]] = {"indptr": [], "idx": [], "w": [], "exps": []}
        self.dense_parts: list[tuple[int, np.ndarray, bool]] = []  # (group, rows, stored as raw integers)
        for d in self.delays:
            sel = (delays == d) if delays.ndim else None
            if proj.is_sparse:
                r, c, v = proj.rows.astype(np.int64), proj.cols.astype(np.int64), m
                if sel is not None:
                    r, c, v = r[sel], c[sel], v[sel]
                vals = v.astype(np.float64) * (scale[r] if np.ndim(scale) else scale)
            else:
                w = (m if sel is None else np.where(sel, m, 0)).astype(np.float64)
                w = w * (scale[:, None] if np.ndim(scale) else scale)
                r, c = np.nonzero(w)
                vals = w[r, c]
            row = np.zeros(kd.G_COLS, dtype=np.int64)
            row[[kd.G_NPRE, kd.G_NPOST, kd.G_SHIFT, kd.G_EMODE]] = self.n_pre, self.n_post, self.latency + d, emode
            row[kd.G_ROUND] = kd.SHIFT_ROUNDINGS.get(self.rounding, kd.RD_FLOOR)
            row[[kd.G_PTR, kd.G_IDX, kd.G_EXP]] = [sum(a.size for a in parts[k]) for k in ("indptr", "idx", "exps")]
            narrow = self._narrow_bits(vals, emode)
            if narrow is not None:  # integer rows [pre, post], divided by their common power of two
                shift, row[kd.G_ACC] = narrow
                rows_int = np.zeros((self.n_pre, self.n_post), dtype=np.int64)
                np.add.at(rows_int, (c, r), vals.astype(np.int64) >> shift)  # a repeated synapse adds up
                narrow = None if np.abs(rows_int).max(initial=0) >= 2 ** (_ROW_BITS[-1] - 1) else narrow
            if narrow is not None:
                lo, hi = rows_int.min(initial=0), rows_int.max(initial=0)
                row[kd.G_WBITS] = next(b for b in _ROW_BITS if -(2 ** (b - 1)) <= lo and hi < 2 ** (b - 1))
                self.dense_parts.append((len(rows), rows_int.ravel().astype(f"int{row[kd.G_WBITS]}"), True))
                row[kd.G_KIND], row[kd.G_WSHIFT] = kd.K_NARROW, shift
                scales.append(gscale * 2.0**shift if emode == kd.E_DIRECT else gscale)
            elif (proj.is_sparse or r.size < _LIST_FRACTION * self.n_pre * self.n_post) and (
                packed := self._compact(r, c, vals, emode)
            ) is not None:
                row[kd.G_WSHIFT], row[kd.G_WBITS], ptr, data = packed
                parts["indptr"].append(ptr)
                self.dense_parts.append((len(rows), data, True))
                row[kd.G_KIND] = kd.K_COMPACT
                scales.append(gscale * 2.0 ** row[kd.G_WSHIFT] if emode == kd.E_DIRECT else gscale)
            elif proj.is_sparse or r.size < _LIST_FRACTION * self.n_pre * self.n_post:
                order = np.lexsort((r, c))  # by pre neuron, then post
                parts["indptr"].append(np.searchsorted(c[order], np.arange(self.n_pre + 1)))
                parts["idx"].append(r[order])
                parts["w"].append(vals[order])
                row[kd.G_KIND] = kd.K_LISTS
                scales.append(gscale)
            else:  # dense rows [pre, post]: a spiking pre neuron's weights are contiguous
                self.dense_parts.append((len(rows), w.T.ravel(), False))
                row[kd.G_KIND] = kd.K_ROWS
                scales.append(gscale)
            parts["exps"].append(np.broadcast_to(self.exp.astype(np.float64), (self.n_post,)))
            rows.append(row)
        self.table = np.array(rows, dtype=np.int64)
        self.weight_dtype = weight_dtype(self.mantissas, self.fixed)
        dtypes = {"indptr": np.int64, "idx": np.int32, "w": self.weight_dtype}
        self.arrays = {k: _cat(parts[k], dtypes.get(k, np.float64)) for k in parts}
        self.arrays["dense"], starts = pack_dense([(a, raw) for _, a, raw in self.dense_parts], self.weight_dtype)
        for (g, _, _), start in zip(self.dense_parts, starts, strict=True):
            self.table[g, kd.G_DENSE] = start
        self.gscale = np.array(scales, dtype=np.float64)

    def _narrow_bits(self, vals: np.ndarray, emode: int) -> tuple[int, int] | None:
        """``(shift, accumulator bits)`` when a group with nonzero mantissas ``vals`` is delivered
        as narrow rows (:data:`kd.K_NARROW`), else None: fixed point with integer spikes, dense
        enough that whole rows are cheaper than lists and small enough to hold them; ``shift``
        is the power of two every mantissa shares, and the accumulator is the narrowest whose
        range holds the largest possible sum."""
        slots = self.n_pre * self.n_post
        if self._graded or emode not in (kd.E_DIRECT, kd.E_SHIFT):
            return None
        if vals.size < _NARROW_FRACTION * slots or slots > _NARROW_SLOTS:
            return None
        mags = np.abs(vals).astype(np.int64)
        common = int(np.bitwise_or.reduce(mags)) if mags.size else 0
        shift = (common & -common).bit_length() - 1 if common else 0
        top = int(mags.max(initial=0)) >> shift
        bound = top * self._fan_spikes  # duplicates of a synapse count in the fan-in, so they fit too
        if top >= 2 ** (_ROW_BITS[-1] - 1):
            return None
        for bits in _ACC_BITS:
            if bound < 2 ** (bits - 1):
                return shift, bits
        return None

    def _compact(self, r: np.ndarray, c: np.ndarray, vals: np.ndarray, emode: int):
        """``(shift, weight bits, row pointers, row bytes)`` of a list group delivered as compact
        rows (:data:`kd.K_COMPACT`), else None. Fixed point with integer spikes (the sums are
        integers, exact in any order), mantissas ``vals`` that fit int16 once divided by their
        common power of two ``2**shift``, and every row's targets within a window of 2**16 post
        neurons (which may wrap around the population): a row is its first target (int32), the
        uint16 offsets of its targets from it (sorted), and its mantissas (int8, else int16)."""
        if not _COMPACT_LISTS or self._graded or emode not in (kd.E_DIRECT, kd.E_SHIFT) or r.size == 0:
            return None
        if np.any(vals != np.round(vals)):
            return None
        mags = np.abs(vals).astype(np.int64)
        common = int(np.bitwise_or.reduce(mags))
        shift = (common & -common).bit_length() - 1 if common else 0
        ints = vals.astype(np.int64) >> shift
        bits = next((b for b in _ROW_BITS if -(2 ** (b - 1)) <= ints.min() and ints.max() < 2 ** (b - 1)), None)
        if bits is None:
            return None
        rows = compact_rows(c, r, ints, self.n_pre, self.n_post, bits)
        if rows is None:
            return None
        return (shift, bits, *rows)

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int) -> None:
        """Add the input that ``spikes`` (batch x pre, counts) of step ``t`` cause to ``ring``
        (slots x batch x post, indexed by step modulo the number of slots), in the units of
        the post population's ``u`` (scaled by the chip's input shift)."""
        flat = ring.reshape(-1)
        if self.table[0, kd.G_SLOTS] != ring.shape[0]:
            self.table[:, kd.G_SLOTS] = ring.shape[0]
        acc, acc64 = self._scratch(spikes.shape[0], ring.dtype)
        a = self.arrays
        kd.deliver_groups(
            t, spikes.shape[0], self.table, self.gscale, a["indptr"], a["idx"], a["w"], a["dense"], a["exps"],
            np.ascontiguousarray(spikes).reshape(-1), flat, acc, acc64,
        )  # fmt: skip
        if not np.may_share_memory(flat, ring):  # a non-contiguous ring: write the copy back
            ring[...] = flat.reshape(ring.shape)

    def _scratch(self, batch: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Accumulators ``[batch, post]`` in the ring's dtype and in float64 (wide enough to hold a
        narrow group's list of spiking pre neurons as int32), kept between calls."""
        key = (batch, np.dtype(dtype))
        if getattr(self, "_acc_key", None) != key:
            wide = max(self.n_post, (self.n_pre + 1) // 2)
            self._acc_key, self._acc = key, (np.zeros((batch, self.n_post), dtype), np.zeros((batch, wide)))
        return self._acc


def compact_rows(pre, post, w, n_pre: int, n_post: int, bits: int):
    """Compact rows (:data:`kd.K_COMPACT`) of the synapses ``pre -> post`` with integer weights
    ``w`` (int8 or int16 values, ``bits``): ``(pointers, bytes)``, the byte range of pre neuron
    ``i``'s row being ``pointers[i] : pointers[i + 1]`` (empty without synapses; a row of ``m``
    synapses is ``4 + (2 + bits / 8) m`` bytes, and one zero byte more when that is odd), or None when a
    row's targets do not fit a window of 2**16 (the offsets would not fit uint16). Each row
    starts at the target after its largest circular gap, so a row near the end of the
    population may wrap around to its start; its offsets are sorted, so the last is the
    largest."""
    pre, post, w = (np.asarray(a, dtype=np.int64) for a in (pre, post, w))
    order = np.lexsort((post, pre))
    pre, post, w = pre[order], post[order], w[order]
    counts = np.bincount(pre, minlength=n_pre)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # index of each row's first synapse
    last = first + counts - 1
    nxt = np.arange(pre.size) + 1  # the next synapse of the row, circularly
    has = counts > 0
    nxt[last[has]] = first[has]
    gap = (post[nxt] - post) % n_post
    gap[last[has]] = post[first[has]] + n_post - post[last[has]]  # the wrap gap (a whole circle for one synapse)
    top = np.lexsort((-gap, pre))  # per row, the largest gap first (the lowest target of equals)
    start = post[nxt[top[first[has]]]]  # the target after it: the row's first
    base = np.zeros(n_pre, np.int64)
    base[has] = start
    off = (post - base[pre]) % n_post
    if off.size and off.max() >= 2**16:
        return None
    order = np.lexsort((off, pre))
    off, w = off[order], w[order]
    size = np.where(has, 4 + (2 + bits // 8) * counts, 0)
    size += size & 1  # even lengths: every row's offsets start on a 2-byte boundary (read as uint16)
    ptr = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
    data = np.zeros(int(ptr[-1]), np.uint8)
    at = ptr[:-1][has]
    data[at[:, None] + np.arange(4)] = base[has].astype("<i4").view(np.uint8).reshape(-1, 4)
    k = np.arange(pre.size) - first[pre]  # rank within the row
    row0 = ptr[pre] + 4
    o_at = row0 + 2 * k
    data[o_at], data[o_at + 1] = off.astype("<u2").view(np.uint8).reshape(-1, 2).T
    wb = bits // 8
    w_at = row0 + 2 * counts[pre] + wb * k
    wbytes = w.astype(f"<i{wb}").view(np.uint8).reshape(-1, wb)
    for j in range(wb):
        data[w_at + j] = wbytes[:, j]
    return ptr, data


def weight_dtype(mantissas: np.ndarray, fixed: bool):
    """The dtype delivery holds weights in: fixed point, the chip's mantissas, int16 when they
    fit (loihi2's 9-bit signed mantissas; half the memory of float32), else float32 (exact
    below 2**24); float chips, float32 weights in model units."""
    if fixed and int(np.abs(mantissas).max(initial=0)) <= np.iinfo(np.int16).max:
        return np.int16
    return np.float32


def pack_dense(parts: list[tuple[np.ndarray, bool]], dtype) -> tuple[np.ndarray, list[int]]:
    """The dense rows of delivery groups in one array of ``dtype`` (the weights' dtype) and the
    element offset where each part starts. A part is values (``raw`` False: converted to
    ``dtype``) or narrow rows (``raw`` True: int8 or int16 integers whose bytes are stored as
    they are, read back by the kernel through a view); each part starts on a cache line."""
    item = np.dtype(dtype).itemsize
    chunks, starts, used = [], [], 0
    for arr, raw in parts:
        data = np.ascontiguousarray(arr).view(np.uint8) if raw else np.asarray(arr).astype(dtype).view(np.uint8)
        data = np.concatenate([data, np.zeros(-data.size % _ALIGN, np.uint8)])
        starts.append(used // item)
        used += data.size
        chunks.append(data)
    if not chunks:
        return np.zeros(1, dtype=dtype), starts
    return np.concatenate(chunks).view(dtype), starts


def _cat(arrs: list[np.ndarray], dtype) -> np.ndarray:
    """The concatenation (one element if empty: numba needs a typed array)."""
    return np.concatenate(arrs).astype(dtype) if arrs else np.zeros(1, dtype=dtype)
