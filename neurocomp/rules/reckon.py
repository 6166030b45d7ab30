"""e-prop as ReckOn's fixed-function learning engine runs it (Frenkel & Indiveri 2022;
``eprop.md`` §3a; the chip's RTL, github ChFrenkel/ReckOn ``src/srnn.v``).

ReckOn approximates e-prop structurally: presynaptic-only traces (``e_ji ~ h_j * trace_i``,
no per-synapse filtering), a 5-level step pseudo-derivative, symmetric feedback through the
output weights, and stochastic +-1 LSB weight updates, applied only on steps where the
target is valid. All of it is integer arithmetic on the chip's register widths, as
``srnn.v`` computes it:

* traces (12-bit input and recurrent, 10-bit output; unsigned), per step:
  ``trace <- sat(round_s(trace * alpha) + spike * (imp << FP_LOC))`` with ``alpha`` in 1.15
  (``kappa`` in 1.7 for the output trace), ``imp`` 8 (input, recurrent) or 2 (output).
  ``round_s`` adds 1 to the floor when the dropped fraction bits are >= a random number from
  the chip's LFSR *and* the floor is nonzero (``srnn.v``: ``trace_step[14:0] >= rand &&
  |trace_step[26:15]``);
* pseudo-derivative ``h_j`` (5-bit signed): ``H_i`` for the first ``i`` with ``v_j <
  THR_H_i`` (a priority chain, so unsorted thresholds behave as the chip's), ``H_4`` if none;
* learning signal ``L_j = sat16(((sum_k e_k * W_out_kj) << LEARN_SIG_SCALE) >> 12)``
  (``e_k``: 16-bit errors, ``W_out``: 8-bit weights before this step's update);
* input and recurrent weights, per synapse (32-bit signed arithmetic that wraps):
  ``p_ji = L_j * (trace_i >> FP_LOC) * h_j`` (0 where ``h_j = 0``), minus the additive
  regularization ``((trace_rec_j >> FP_LOC_TREC) - F0)+ << K_P``; then, as the RTL does,
  ``p`` is forced to ``-2**31`` where ``p - reg >= 0`` while bit 27 of ``L * trace * h`` is set
  (``srnn.v`` tests bit 31 of the product shifted left by 4, i.e. bit 27: a quirk of the
  chip, reproduced because it is the chip's arithmetic);
* output weights: ``p_kj = e_k * (trace_out_j >> FP_LOC_TOUT)`` (28 bits);
* update (``stoch_update``, ``W`` = 32 or 28 bits): ``|p| << LR_P`` saturated to ``W`` bits,
  then ``>> LR_R``; the weight moves by ``sign(p)`` when that is >= a ``W``-bit random
  number (or ``p = -2**(W-1)``), and ``p != 0``, unless the 8-bit weight would overflow. The
  autapse ``W_jj`` of a written recurrent word is written as 0 where its update fires (an
  overflowing step included).

The random numbers come from the chip's LFSRs (:mod:`neurocomp.arith.lfsr`, the profile's
``random_sources``), drawn as the chip's controller draws them; see
:mod:`neurocomp.emulator.reckon` for the order. Each quantity is defined once, value by
value, in :mod:`neurocomp.kernels.reckon` (compiled; the emulator's learning step runs it);
the array functions here apply those definitions elementwise and take the random numbers
as inputs, and the float64 forms below serve the learning-attribution runs. (The mapping of
e-prop's hyperparameters onto these registers is :func:`lower_network`.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..kernels import reckon as kr
from ..learning.quantities import pseudo_derivative as triangle
from .eprop import DEFAULTS as EPROP_DEFAULTS
from .eprop import eprop_params

W_MIN, W_MAX = kr.W_MIN, kr.W_MAX  # 8-bit two's-complement weights
HIDDEN_PROB_BITS = kr.HIDDEN_WIDTH  # stoch_update WIDTH_IN of the input and recurrent weights
OUTPUT_PROB_BITS = kr.OUTPUT_WIDTH  # ... of the output weights


@dataclass(frozen=True)
class ReckonRegisters:
    """ReckOn's learning configuration (SPI registers of ``srnn.v``)."""

    fp_loc_tinp: int = 3  # input trace impulse 8 << FP_LOC_TINP; p reads trace >> FP_LOC_TINP
    fp_loc_trec: int = 4
    fp_loc_tout: int = 6
    thr_h: tuple[int, int, int, int] = (205, 205, 205, 205)  # 16-bit membrane thresholds
    h_values: tuple[int, int, int, int, int] = (0, 0, 0, 0, 1)  # 5-bit signed levels
    learn_sig_scale: int = 5
    lr_p: int = 8  # input and recurrent: |p| << LR_P >> LR_R against a 32-bit random number
    lr_r: int = 0
    lr_p_out: int = 14
    lr_r_out: int = 0
    regul_f0: int = 160  # compared with trace_rec >> FP_LOC_TREC
    regul_k_p: int = 10  # additive term ((trace_rec >> FP_LOC_TREC) - F0)+ << K_P >> K_R
    regularize: bool = True
    regul_mode: int = 2  # REGUL_MODE when regularizing: bit 1 additive, bit 0 multiplicative (bits 2..1 = 11: no)
    regul_k_r: int = 0
    regul_k_mul: int = 0  # multiplicative: p * (16 - (reg >> K_MUL)) / 16, 0 from 16 up
    regression: bool = True  # REGRESSION: 16-bit targets; else a class label (target 2048 for it, 0 others)
    out_act: bool = False  # not NO_OUT_ACT: the error reads the readout through the hard sigmoid

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to ``bits`` bits (Verilog's truncation)."""
    x = np.asarray(x, dtype=np.int64)
    return _elementwise(kr.wrap_array, x, bits)


def _elementwise(fn, *args):
    """A compiled elementwise kernel ``fn(*args, out)`` over the broadcast shape of the array
    arguments (passed flat; scalars as they are): an int64 array of that shape."""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    shaped = np.broadcast_arrays(*arrays)
    flat = iter([np.ascontiguousarray(a).reshape(-1) for a in shaped])
    out = np.empty(shaped[0].shape, np.int64)
    fn(*[next(flat) if isinstance(a, np.ndarray) else a for a in args], out.reshape(-1))
    return out


def decay_trace(trace, factor: int, frac_bits: int, rand, rand_bits: int | None = None) -> np.ndarray:
    """``round_s(trace * factor / 2**frac_bits)`` with the chip's stochastic rounding: up by one
    when the dropped ``frac_bits`` (their top ``rand_bits`` when the random number is narrower)
    are >= ``rand`` and the floor is nonzero. ``rand=None``: round to nearest instead, halves
    up (a learning-attribution run; no random number and no condition on the floor)."""
    x = np.asarray(trace, dtype=np.int64)
    r = np.zeros(x.shape, np.int64) if rand is None else np.asarray(rand, dtype=np.int64)
    bits = frac_bits if rand_bits is None else int(rand_bits)
    return _elementwise(kr.decay_round_array, x, int(factor), int(frac_bits), r, bits, rand is None)


def pseudo_derivative(v: np.ndarray, reg: ReckonRegisters) -> np.ndarray:
    """The 5-level step ``h_j`` of the membrane ``v_j``: ``H_i`` for the first threshold
    ``THR_H_i`` that ``v`` is below, ``H_4`` if none. The chip's own function of its
    registers (``srnn.v``), whatever they hold; the lowering fills them with e-prop's
    triangle quantized (:func:`step_levels`)."""
    v = np.ascontiguousarray(v, dtype=np.int64)
    out = np.empty(v.shape, np.int64)
    kr.level_array(v.reshape(-1), np.asarray(reg.thr_h, np.int64), np.asarray(reg.h_values, np.int64), out.reshape(-1))
    return out


def learning_signal(err: np.ndarray, w_out: np.ndarray, reg: ReckonRegisters, bits: int = 16) -> np.ndarray:
    """``L_j`` from the output errors ``e_k`` (16-bit) and weights ``W_out[k, j]`` (8-bit),
    saturated to ``bits`` (the profile's ``learning_signal_bits``)."""
    w = np.ascontiguousarray(w_out, dtype=np.int64)
    out = np.empty(w.shape[1], np.int64)
    kr.learning_signal_array(np.ascontiguousarray(err, dtype=np.int64), w, reg.learn_sig_scale, bits, out)
    return out


def stochastic_step(w, p, lr_p: int, lr_r: int, rand, width: int = HIDDEN_PROB_BITS, enable=True) -> np.ndarray:
    """``srnn.v``'s ``stoch_update``: ``p`` a ``width``-bit signed value, ``rand`` a ``width``-bit
    random number. ``W += sign(p)`` where ``p != 0`` (and ``enable``) and either
    ``min(|p| << lr_p, 2**width - 1) >> lr_r >= rand`` or ``p = -2**(width-1)``; no change when
    the 8-bit weight would overflow."""
    w, p, rand = (np.asarray(a, dtype=np.int64) for a in (w, p, rand))
    on = np.asarray(enable, dtype=bool)
    return _elementwise(kr.stoch_step_array, w, p, int(lr_p), int(lr_r), rand, int(width), on)


# -- attribution: quantities in float64 (the emulator's ``learn_float``) ---------------------------
# The chip's steps above with one operand in float64; where every operand is an integer they
# are not used, so the chip's arithmetic stays as it is. Float values carry no register width:
# no saturation, no wrap, and none of the integer-width quirks (bit 27).
def read_trace(trace, fp_loc: int) -> np.ndarray:
    """``trace >> FP_LOC`` as the chip reads a trace; a float64 trace is read exactly."""
    t = np.asarray(trace)
    return t / 2.0**fp_loc if t.dtype.kind == "f" else t.astype(np.int64) >> fp_loc


def float_learning_signal(err, w_out, reg: ReckonRegisters, bits: int = 16, exact: bool = True) -> np.ndarray:
    """``L_j`` with float operands: ``exact`` (the learning signal in float64) is
    ``(e @ W_out) * 2**(LEARN_SIG_SCALE - 12)``; otherwise the chip's floor and ``bits``
    saturation of that product (float weights, integer learning signal)."""
    psum = np.asarray(err, np.float64) @ np.asarray(w_out, np.float64) * 2.0 ** (reg.learn_sig_scale - 12)
    return psum if exact else np.clip(np.floor(psum), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def float_prob(trace_pre, fp_loc: int, L, h, trace_rec_post, reg: ReckonRegisters) -> tuple[np.ndarray, np.ndarray]:
    """The input and recurrent synapses' ``p`` in float64 (a trace or the learning signal in float):
    ``p = L * read(trace_i) * h_j - max(0, read(trace_rec_j) - F0) * 2**K_P``, no 32-bit wrap."""
    h = np.asarray(h, np.float64)
    prod = np.asarray(L, np.float64)[:, None] * read_trace(trace_pre, fp_loc)[None, :] * h[:, None]
    over = np.maximum(read_trace(trace_rec_post, reg.fp_loc_trec) - reg.regul_f0, 0) * 2.0**reg.regul_k_p
    p = prod - over[:, None] if reg.regularize else prod
    enable = np.broadcast_to((h != 0)[:, None] | reg.regularize, p.shape)
    return p, enable


def float_output_prob(err, trace_out, reg: ReckonRegisters) -> np.ndarray:
    """The output synapses' ``p_kj = e_k * read(trace_out_j)``: the chip's 28-bit value when
    both are integers, float64 otherwise."""
    e, t = np.asarray(err), np.asarray(trace_out)
    if e.dtype.kind == "f" or t.dtype.kind == "f":
        return e.astype(np.float64)[:, None] * read_trace(t, reg.fp_loc_tout)[None, :]
    return _wrap(e.astype(np.int64)[:, None] * read_trace(t, reg.fp_loc_tout)[None, :], OUTPUT_PROB_BITS)


def float_step(w, p, lr_p: int, lr_r: int, rand, width: int = HIDDEN_PROB_BITS, enable=True) -> np.ndarray:
    """:func:`stochastic_step` with float64 weights or ``p``. Float weights add the update
    the lowering's learning rate stands for, ``p * 2**(lr_p - lr_r - width)`` LSB (which the
    chip's +-1 LSB step equals on average below one LSB), saturated to the 8-bit range; the
    chip's forced step (an integer ``p = -2**(width-1)``) stays -1 LSB. Integer weights with
    a float ``p`` step by ``sign(p)`` where ``min(|p| * 2**lr_p, 2**width - 1) / 2**lr_r >=
    rand``, as the chip compares. Integer weights and ``p``: :func:`stochastic_step`."""
    w, p = np.asarray(w), np.asarray(p)
    if w.dtype.kind != "f" and p.dtype.kind != "f":
        return stochastic_step(w, p, lr_p, lr_r, rand, width, enable)
    on = np.asarray(enable, dtype=bool)
    if w.dtype.kind == "f":
        forced = (p == -(1 << (width - 1))) if p.dtype.kind != "f" else np.zeros(p.shape, bool)
        dw = np.where(forced, -1.0, p * 2.0 ** (lr_p - lr_r - width))
        return np.clip(w + np.where(on, dw, 0.0), W_MIN, W_MAX)
    tot = np.minimum(np.abs(p) * 2.0**lr_p, 2.0**width - 1) / 2.0**lr_r
    change = (tot >= np.asarray(rand)) & (p != 0) & on
    new = w + np.sign(p).astype(np.int64) * change
    return np.where((new < W_MIN) | (new > W_MAX), w, new)  # no change on overflow


# -- lowering -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReckonLearning:
    """A plastic projection's part in ReckOn's e-prop: ``role`` is ``input`` (inputs ->
    recurrent), ``recurrent`` or ``output`` (recurrent -> readout); ``readout`` names the
    readout population whose target drives the learning (input ``<readout>/target``)."""

    registers: ReckonRegisters
    role: str
    readout: str
    source: str = "eprop"

    def to_dict(self) -> dict:
        return {"engine": "eprop_fixed", "registers": self.registers.to_dict(), "role": self.role,
                "readout": self.readout, "source": self.source}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReckonLearning:
        r = dict(d["registers"])
        r["thr_h"], r["h_values"] = tuple(r["thr_h"]), tuple(r["h_values"])
        return cls(ReckonRegisters(**r), d["role"], d["readout"], d.get("source", "eprop"))


# e-prop's parameters; ReckOn's learning signal goes through W_out, so feedback is symmetric
DEFAULTS = {**EPROP_DEFAULTS, "feedback": "symmetric"}

# 5-level pseudo-derivative: e-prop's triangle quantized at compile time (step_levels), thresholds
# at these fractions of v_th, levels in units of 1/H_FULL of the triangle's peak
H_FRACTIONS = (0.25, 0.5, 0.75, 1.25)
H_FULL = 15


def step_levels(fractions: tuple[float, ...] = H_FRACTIONS, full: int = H_FULL) -> tuple[int, ...]:
    """The levels ``H_0..H_4`` of ReckOn's step pseudo-derivative for thresholds at
    ``fractions`` of ``v_th``: e-prop's triangle (:func:`~neurocomp.learning.quantities.pseudo_derivative`,
    in units of ``v_th``) averaged over each segment between thresholds, the last segment as
    wide as the one before it, times ``full``, rounded half up; ``H_0`` (below the lowest
    threshold: a membrane near rest) is 0. With the defaults: (0, 6, 9, 13, 8).

    (:func:`pseudo_derivative` is the chip's function of its registers, a priority
    chain of comparisons that the chip evaluates whatever the registers hold; these are the
    values the lowering writes into them.)"""
    f = list(fractions) + [2 * fractions[-1] - fractions[-2]]
    levels = [0]
    for a, b in zip(f[:-1], f[1:], strict=True):
        pts = sorted({a, b} | {k for k in (0.0, 1.0, 2.0) if a < k < b})  # the triangle's kinks inside
        h = [float(triangle(x, 1.0, 1.0)) for x in pts]
        area = sum((h[i] + h[i + 1]) / 2 * (pts[i + 1] - pts[i]) for i in range(len(pts) - 1))
        levels.append(math.floor(full * area / (b - a) + 0.5))
    return tuple(levels)


def lower_network(net, profile, dt_ms: float, notes: list[str]):
    """Map every e-prop projection of ``net`` onto ReckOn's registers; returns the network
    with each projection's :class:`ReckonLearning`. Every problem is collected first."""
    from dataclasses import replace

    eprop = [p for p in net.projections if p.plasticity is not None and p.plasticity.name == "eprop"]
    if not eprop:
        return net
    pops = {p.name: p for p in net.populations}
    params = _eprop_params(eprop)
    readout, hidden = _core_roles(eprop, pops)
    theta = int(pops[hidden].params["threshold"])  # integer v units
    thr = tuple(int(round(f * theta)) for f in H_FRACTIONS)
    levels = step_levels()
    learning = {}
    for p in eprop:
        role = "output" if p.post == readout else ("recurrent" if p.pre == hidden else "input")
        lr_p = _lr_shift(p, role, params, eprop, net, pops, readout, hidden, notes)
        reg = ReckonRegisters(
            thr_h=thr,
            h_values=levels,
            learn_sig_scale=LEARN_SIG_SCALE,
            lr_p=lr_p if role != "output" else ReckonRegisters.lr_p,
            lr_p_out=lr_p if role == "output" else ReckonRegisters.lr_p_out,
            lr_r=0,
            lr_r_out=0,
            regularize=bool(params[p.name]["reg"]),
        )
        learning[p.name] = ReckonLearning(reg, role, readout)
        _note_regularization(p, role, reg, params[p.name], notes)
    notes.append(
        f"eprop on reckon: pseudo-derivative levels {levels} at v = {thr} (v_th = {theta}); presynaptic "
        "traces only; symmetric feedback; stochastic +-1 LSB updates on steps with a target"
    )
    return replace(
        net, projections=tuple(replace(p, learning=learning.get(p.name, p.learning)) for p in net.projections)
    )


LEARN_SIG_SCALE = 5  # the learning signal's scale register the lowering writes (its learning rate absorbs it)


def _eprop_params(eprop) -> dict[str, dict]:
    """Each e-prop projection's parameters; symmetric feedback and the mse loss are required."""
    from ..errors import Problem
    from .base import LoweringError

    problems: list[Problem] = []
    params = {}
    for p in eprop:
        prm = eprop_params(p, problems, DEFAULTS)
        if prm["feedback"] != "symmetric":
            msg = f"eprop feedback {prm['feedback']!r}: reckon's learning signal is symmetric (W_out^T) only"
            problems.append(Problem(f"projection {p.name!r}", msg))
        if prm["loss"] != "mse":
            problems.append(Problem(f"projection {p.name!r}", "eprop on reckon: only the regression (mse) loss"))
        params[p.name] = prm
    if problems:
        raise LoweringError(problems, header="e-prop cannot be lowered onto reckon")
    return params


def _core_roles(eprop, pops) -> tuple[str, str]:
    """The one readout and the one recurrent layer the projections learn into."""
    from ..errors import Problem
    from .base import LoweringError

    readouts = sorted({p.post for p in eprop if pops[p.post].model == "LI"})
    hidden = sorted({p.post for p in eprop if pops[p.post].model != "LI"})
    if len(readouts) != 1 or len(hidden) != 1:
        msg = f"reckon learns one recurrent layer and one readout; found {hidden} -> {readouts}"
        raise LoweringError([Problem("eprop", msg)], header="e-prop cannot be lowered onto reckon")
    return readouts[0], hidden[0]


def _lr_shift(p, role, params, eprop, net, pops, readout: str, hidden: str, notes: list[str]) -> int:
    """The learning-rate shift ``LR_P`` that makes the chip's expected step equal e-prop's
    ``lr`` times its update (in the projection's weight units), rounded to a power of two."""
    from ..errors import Problem
    from .base import LoweringError

    lsb = float(2.0**p.weight_exp * p.float_scale)
    lr = float(params[p.name]["lr"])
    out_scale = 2.0 ** pops[readout].scale_exp
    if role == "output":
        # p = e_int * (trace_out >> FP_LOC_TOUT), e_int = err * out_scale, trace_out =
        # (2 << FP_LOC_TOUT) * z_bar; dW (model) = lsb * p * 2^(LR_P - 28) (a 28-bit random
        # number) should be lr * err * z_bar
        unit = out_scale * 2 * 2.0 ** (HIDDEN_PROB_BITS - OUTPUT_PROB_BITS)
    else:
        w_out = next(q for q in eprop if q.pre == hidden and q.post == readout)
        out_lsb = float(2.0**w_out.weight_exp * w_out.float_scale)
        gamma = float(params[eprop[0].name]["dampening"])
        theta_model = float(net.source.population(hidden).neuron.v_th)
        # p = L_int * (trace >> FP_LOC) * h, with L_int = err * out_scale * (B / out_lsb) * 2^(s - 12),
        # trace >> FP_LOC = 8 * z_bar and psi = (gamma / v_th) * h / 15
        unit = out_scale / out_lsb * 2.0 ** (LEARN_SIG_SCALE - 12) * 8 * H_FULL * theta_model / gamma
    shift = 32 + math.log2(lr / (lsb * unit))
    lr_p = int(round(shift))
    if not 0 <= lr_p <= 31:
        msg = f"eprop learning rate {lr:g} needs LR_P {shift:.1f}, outside 0..31"
        raise LoweringError([Problem(f"projection {p.name!r}", msg)])
    if abs(lr_p - shift) > 1e-9:
        notes.append(
            f"eprop on reckon: {p.name}: learning rate {lr:g} rounded to a power of two "
            f"(LR_P {lr_p}, factor {2 ** (lr_p - shift):.3g})"
        )
    return lr_p


def _note_regularization(p, role: str, reg: ReckonRegisters, prm: Mapping[str, Any], notes: list[str]) -> None:
    """The strength and target rate are not mapped onto REGUL_K_P / REGUL_F0 (yet): say so."""
    if prm["reg"] and role != "output":
        notes.append(
            f"eprop on reckon: {p.name}: rate regularization runs with the chip's registers "
            f"(REGUL_F0 {reg.regul_f0}, REGUL_K_P {reg.regul_k_p}), not with the model's reg "
            f"{prm['reg']:g} towards {prm['reg_rate_hz']:g} Hz"
        )
