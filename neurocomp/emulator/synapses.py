"""Delivery of spikes through one projection of a Program.

Each projection is split into groups of equal delay (Lava's DelayDense accumulates and
shifts each delay slot separately, and so does this). A group accumulates the weights of
the pre neurons that spiked (times their spike counts), applies the weight exponent, and
adds the result to the post population's input for step ``t + latency + delay``.

Accumulation is exact. Integer sums are computed in floating point only where that is
provably exact: float32 when ``max|mantissa| * max fan-in * max spikes per step < 2**24``
(for loihi2's 9-bit weights and fan-in <= 4096, 2**8 * 2**12 = 2**20), else float64
(exact below 2**53); the bound is checked when the emulator is built. The sum is then
scaled by ``2**weight_exp`` in float64 (exact while the bound times ``2**weight_exp``
stays below 2**53, also checked) and rounded as the chip's shift rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.fixed import shift
from ..compiler.ir import QProjection
from ..graph.weights import count_indices
from ..profiles import Profile

_FLOAT32_EXACT = 2**24
_FLOAT64_EXACT = 2**53
_EVENT_FRACTION = 0.25  # below this fraction of active pre neurons, gather their rows instead of a full matmul


def chip_mantissas(proj: QProjection, profile: Profile, clip: bool = True) -> np.ndarray:
    """The mantissas as the chip holds them: clipped to the sign mode's range, then with the
    ``mantissa_bits - num_weight_bits`` LSBs (one more for mixed signs where the chip drops
    it) floored away, as Lava's Dense does on its first step. A compiled Program is already
    in this form; hand-built or learned weights may not be. ``clip=False``: truncation only,
    as Lava's LearningDense does (its first learning phase clips)."""
    w = profile.formats.weight
    m = proj.weights.astype(np.int64)
    if w.encoding != "sign_mode":
        lo, hi = w.mantissa_range("mixed")
        return np.clip(m, lo, hi)
    mode = proj.sign_mode
    lo, hi = w.mantissa_range(mode)  # type: ignore[arg-type]
    k = w.mantissa_bits - proj.num_weight_bits + (1 if (mode == "mixed" and w.mixed_sign_drops_lsb) else 0)
    if clip:
        m = np.clip(m, lo, hi)
    if k <= 0:
        return m
    if mode == "inhibitory":  # Lava truncates the magnitude: -((-w >> k) << k)
        return -((-m >> k) << k)
    return (m >> k) << k


@dataclass
class _Group:
    delay: int
    dense: np.ndarray | None  # [post, pre] in the accumulation dtype
    indptr: np.ndarray | None  # sparse: CSC by pre neuron
    post_idx: np.ndarray | None
    values: np.ndarray | None


class Synapses:
    """Runtime form of one projection: per-delay groups, ready to accumulate spikes."""

    def __init__(self, proj: QProjection, latency: int, profile: Profile, max_spikes: int):
        self.proj = proj
        self.name, self.pre, self.post = proj.name, proj.pre, proj.post
        self.n_post, self.n_pre = proj.shape
        self.latency = latency
        fixed = profile.arithmetic == "fixed"
        self.fixed = fixed
        self.rounding = profile.formats.weight.exponent_rounding
        m = chip_mantissas(proj, profile)
        if proj.is_sparse:
            rows, cols = proj.rows.astype(np.int64), proj.cols.astype(np.int64)
            fan_in = int(count_indices(proj.rows, self.n_post).max(initial=0))
        else:
            fan_in = int(np.count_nonzero(m, axis=1).max(initial=0))
        bound = int(np.abs(m).max(initial=0)) * max(fan_in, 1) * max_spikes
        self.exact_float32 = bound < _FLOAT32_EXACT
        dtype = np.float32 if self.exact_float32 else np.float64
        if not fixed:  # float chips: fold the exponent and scale into float32 weights (model units)
            e = np.asarray(proj.weight_exp, dtype=np.float64)
            scale = np.exp2(e) * proj.float_scale
            dtype = np.float32
        delays = np.asarray(proj.delay_steps)
        self.groups: list[_Group] = []
        for d in np.unique(delays) if delays.ndim else [int(delays)]:
            sel = (delays == d) if delays.ndim else None
            if proj.is_sparse:
                r, c, v = (rows, cols, m) if sel is None else (rows[sel], cols[sel], m[sel])
                vals = v.astype(np.float64)
                if not fixed:
                    vals = vals * (scale[r] if np.ndim(scale) else scale)
                order = np.argsort(c, kind="stable")
                indptr = np.searchsorted(c[order], np.arange(self.n_pre + 1))
                self.groups.append(_Group(int(d), None, indptr, r[order], vals[order].astype(dtype)))
            else:
                w = m if sel is None else np.where(sel, m, 0)
                w = w.astype(np.float64)
                if not fixed:
                    w = w * (scale[:, None] if np.ndim(scale) else scale)
                # stored [pre, post]: a spiking pre neuron's weights are one contiguous row
                self.groups.append(_Group(int(d), np.ascontiguousarray(w.T.astype(dtype)), None, None, None))
        # float chips: the exponent is folded into the weights above; per-channel exponents
        # (one per post neuron) broadcast over [batch, post]
        self.exp = np.asarray(proj.weight_exp if fixed else 0, dtype=np.int64)
        self.max_delay = max(g.delay for g in self.groups)
        # the ring holds input in state units: the chip's ``<< input_shift`` (Lava's a_in << 6)
        # is applied here, after the exponent's rounding, where it costs no extra pass
        self._in_scale = float(2**profile.formats.input_shift) if fixed else 1.0
        self._scale = float(2 ** int(self.exp)) * self._in_scale if self.exp.ndim == 0 and self.exp >= 0 else None
        self._exact = False  # see carry_float
        if fixed and bound * 2 ** max(int(self.exp.max(initial=0)), 0) * self._in_scale >= _FLOAT64_EXACT:
            raise ValueError(f"projection {self.name!r}: summed input {bound} * 2**exp is not exact in float64")

    def carry_float(self) -> None:
        """Deliver non-integer payloads (a learning-attribution run's unquantized errors)
        exactly: float64 weights, and the exponent applied as an exact power of two instead
        of the chip's rounded shift."""
        for g in self.groups:
            if g.dense is not None:
                g.dense = g.dense.astype(np.float64)
            if g.values is not None:
                g.values = g.values.astype(np.float64)
        self._exact = True

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int) -> None:
        """Add the input that ``spikes`` (batch x pre, counts) of step ``t`` cause to ``ring``
        (slots x batch x post, indexed by step modulo the number of slots), in the units of
        the post population's ``u`` (scaled by the chip's input shift)."""
        active = (spikes[0] if spikes.shape[0] == 1 else spikes.any(axis=0)).nonzero()[0]
        if active.size == 0:
            return
        n_slots = ring.shape[0]
        for g in self.groups:
            acc = self._accumulate(g, spikes, active)
            if self.fixed:  # exact integers (see the module docstring); the exponent shift rounds as the chip does
                if self._scale is not None:  # a non-negative scalar exponent: one exact multiply by a power of two
                    acc = acc * self._scale
                elif self._exact:
                    acc = acc * np.exp2(self.exp.astype(np.float64)) * self._in_scale
                else:
                    acc = shift(acc.astype(np.float64), self.exp, self.rounding) * self._in_scale
            ring[(t + self.latency + g.delay) % n_slots] += acc

    def _accumulate(self, g: _Group, spikes: np.ndarray, active: np.ndarray) -> np.ndarray:
        batch = spikes.shape[0]
        if g.dense is not None:  # g.dense is [pre, post]
            if active.size < _EVENT_FRACTION * self.n_pre:  # event-driven: only the rows of spiking neurons
                rows = g.dense[active]
                if batch == 1:
                    if spikes.dtype == bool:  # one spike each
                        return rows.sum(axis=0)[None, :]
                    return (spikes[0, active].astype(rows.dtype) @ rows)[None, :]
                return spikes[:, active].astype(g.dense.dtype) @ rows
            return spikes.astype(g.dense.dtype) @ g.dense
        # sparse: gather the outgoing synapses of every (trial, pre neuron) that spiked
        b_idx, pre_idx = np.nonzero(spikes[:, active])
        pre_idx = active[pre_idx]
        counts = g.indptr[pre_idx + 1] - g.indptr[pre_idx]
        total = int(counts.sum())
        if total == 0:
            return np.zeros((batch, self.n_post))
        starts = np.repeat(g.indptr[pre_idx] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        seg = starts + np.arange(total)
        targets = g.post_idx[seg] + np.repeat(b_idx * self.n_post, counts)
        w = g.values[seg].astype(np.float64) * np.repeat(spikes[b_idx, pre_idx], counts)
        return np.bincount(targets, weights=w, minlength=batch * self.n_post).reshape(batch, self.n_post)
