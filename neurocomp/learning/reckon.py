"""ReckOn's fixed-function e-prop engine (Frenkel & Indiveri 2022; the chip's RTL, github
ChFrenkel/ReckOn ``src/srnn.v``): its registers (:class:`ReckonRegisters`), a plastic
projection's part in it (:class:`ReckonLearning`, the compiled IR), and its integer arithmetic
applied elementwise to arrays (each quantity defined once, value by value, in
:mod:`neurocomp.kernels.reckon`), with the float64 forms the learning-attribution runs use.
:mod:`neurocomp.rules.reckon` states the equations and maps e-prop's hyperparameters onto
these registers (its ``lower_network``); :mod:`neurocomp.emulator.reckon` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..kernels import reckon as kr


@dataclass(frozen=True)
class ChipWidths:
    """ReckOn's widths, read from its profile (:meth:`of`; every key required): the weights'
    two's-complement bits, ``stoch_update``'s ``WIDTH_IN`` (the bits of ``p`` and of its random
    number) for the input/recurrent and the output weights, posts per weight SRAM word, the
    error, learning-signal and target bits, the bits of the neurons' leak (alpha) and of the
    readouts' (KAPPA), each trace role's impulse before its ``<< FP_LOC``, and ``srnn.v``'s own
    arithmetic constants: the learning signal's right shift (``>> 12``), the hard sigmoid's 1.0
    (2048: the output activation's top and a class label's target), and the fraction bits of the
    multiplicative regularization factor (``(16 - m) / 2**4``); the lowering's register widths:
    the signed pseudo-derivative levels ``H_i`` and the learning-rate shifts ``LR_P``."""

    weight: int
    hidden: int
    output: int
    block: int
    error: int
    signal: int
    target: int
    decay: int
    readout_leak: int
    impulse: Mapping[str, int]
    signal_shift: int
    sigmoid_one: int
    mul_frac: int
    h_bits: int
    lr_shift: int

    KEYS = ("update_prob_bits", "posts_per_word", "error_bits", "learning_signal_bits", "target_bits",
            "readout_leak_bits", "trace_impulse", "learning_signal_shift", "hard_sigmoid_one",
            "regul_mul_frac_bits", "pseudo_derivative_bits", "lr_shift_bits")  # fmt: skip

    @classmethod
    def of(cls, profile) -> ChipWidths:
        """The widths of ``profile`` (a named error that lists every missing ``learning.params`` key)."""
        from ..errors import Problem, ProfileError

        params = profile.learning.params
        missing = [k for k in cls.KEYS if k not in params]
        if missing:
            raise ProfileError([Problem(f"profile {profile.name!r}", f"learning.params lacks {missing}")])
        prob = params["update_prob_bits"]
        return cls(weight=int(profile.formats.weight.mantissa_bits), hidden=int(prob["hidden"]),
                   output=int(prob["output"]), block=int(params["posts_per_word"]), error=int(params["error_bits"]),
                   signal=int(params["learning_signal_bits"]), target=int(params["target_bits"]),
                   decay=int(profile.formats.decay.bits), readout_leak=int(params["readout_leak_bits"]),
                   impulse={k: int(v) for k, v in params["trace_impulse"].items()},
                   signal_shift=int(params["learning_signal_shift"]), sigmoid_one=int(params["hard_sigmoid_one"]),
                   mul_frac=int(params["regul_mul_frac_bits"]), h_bits=int(params["pseudo_derivative_bits"]),
                   lr_shift=int(params["lr_shift_bits"]))  # fmt: skip

    @property
    def h_full(self) -> int:
        """The largest pseudo-derivative level, ``2**(h_bits - 1) - 1`` (15: 5-bit signed)."""
        return 2 ** (self.h_bits - 1) - 1

    @property
    def lr_shift_max(self) -> int:
        """The largest ``LR_P`` / ``LR_R``, ``2**lr_shift - 1`` (31: 5 bits)."""
        return 2**self.lr_shift - 1


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


def learning_signal(err: np.ndarray, w_out: np.ndarray, reg: ReckonRegisters, widths: ChipWidths) -> np.ndarray:
    """``L_j`` from the output errors ``e_k`` (16-bit) and weights ``W_out[k, j]`` (8-bit):
    ``((sum_k e_k W_out[k, j]) << LEARN_SIG_SCALE) >> signal_shift`` saturated to ``widths.signal``."""
    w = np.ascontiguousarray(w_out, dtype=np.int64)
    out = np.empty(w.shape[1], np.int64)
    kr.learning_signal_array(np.ascontiguousarray(err, dtype=np.int64), w, reg.learn_sig_scale, widths.signal_shift,
                             widths.signal, out)  # fmt: skip
    return out


def stochastic_step(w, p, lr_p: int, lr_r: int, rand, width: int, enable, w_bits: int) -> np.ndarray:
    """``srnn.v``'s ``stoch_update``: ``p`` a ``width``-bit signed value, ``rand`` a ``width``-bit
    random number. ``W += sign(p)`` where ``p != 0`` (and ``enable``) and either
    ``min(|p| << lr_p, 2**width - 1) >> lr_r >= rand`` or ``p = -2**(width-1)``; no change when
    the ``w_bits``-bit weight (the profile's, :attr:`ChipWidths.weight`) would overflow."""
    w, p, rand = (np.asarray(a, dtype=np.int64) for a in (w, p, rand))
    on = np.asarray(enable, dtype=bool)
    return _elementwise(kr.stoch_step_array, w, p, int(lr_p), int(lr_r), rand, int(width), on, int(w_bits))


# -- attribution: quantities in float64 (the emulator's ``learn_float``) ---------------------------
# The chip's steps above with one operand in float64; where every operand is an integer they
# are not used, so the chip's arithmetic stays as it is. Float values carry no register width:
# no saturation, no wrap, and none of the integer-width quirks (bit 27).
def read_trace(trace, fp_loc: int) -> np.ndarray:
    """``trace >> FP_LOC`` as the chip reads a trace; a float64 trace is read exactly."""
    t = np.asarray(trace)
    return t / 2.0**fp_loc if t.dtype.kind == "f" else t.astype(np.int64) >> fp_loc


def float_learning_signal(err, w_out, reg: ReckonRegisters, widths: ChipWidths, exact: bool = True) -> np.ndarray:
    """``L_j`` with float operands: ``exact`` (the learning signal in float64) is
    ``(e @ W_out) * 2**(LEARN_SIG_SCALE - signal_shift)``; otherwise the chip's floor and
    ``widths.signal`` saturation of that product (float weights, integer learning signal)."""
    scale = 2.0 ** (reg.learn_sig_scale - widths.signal_shift)
    psum = np.asarray(err, np.float64) @ np.asarray(w_out, np.float64) * scale
    bits = widths.signal
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


def float_output_prob(err, trace_out, reg: ReckonRegisters, width: int) -> np.ndarray:
    """The output synapses' ``p_kj = e_k * read(trace_out_j)``: the chip's ``width``-bit value
    when both are integers, float64 otherwise."""
    e, t = np.asarray(err), np.asarray(trace_out)
    if e.dtype.kind == "f" or t.dtype.kind == "f":
        return e.astype(np.float64)[:, None] * read_trace(t, reg.fp_loc_tout)[None, :]
    return _wrap(e.astype(np.int64)[:, None] * read_trace(t, reg.fp_loc_tout)[None, :], width)


def float_step(w, p, lr_p: int, lr_r: int, rand, width: int, w_bits: int, enable=True) -> np.ndarray:
    """:func:`stochastic_step` with float64 weights or ``p``. Float weights add the update
    the lowering's learning rate stands for, ``p * 2**(lr_p - lr_r - width)`` LSB (which the
    chip's +-1 LSB step equals on average below one LSB), saturated to the ``w_bits`` range; the
    chip's forced step (an integer ``p = -2**(width-1)``) stays -1 LSB. Integer weights with
    a float ``p`` step by ``sign(p)`` where ``min(|p| * 2**lr_p, 2**width - 1) / 2**lr_r >=
    rand``, as the chip compares. Integer weights and ``p``: :func:`stochastic_step`."""
    w, p = np.asarray(w), np.asarray(p)
    if w.dtype.kind != "f" and p.dtype.kind != "f":
        return stochastic_step(w, p, lr_p, lr_r, rand, width, enable, w_bits)
    on = np.asarray(enable, dtype=bool)
    w_min, w_max = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    if w.dtype.kind == "f":
        forced = (p == -(1 << (width - 1))) if p.dtype.kind != "f" else np.zeros(p.shape, bool)
        dw = np.where(forced, -1.0, p * 2.0 ** (lr_p - lr_r - width))
        return np.clip(w + np.where(on, dw, 0.0), w_min, w_max)
    tot = np.minimum(np.abs(p) * 2.0**lr_p, 2.0**width - 1) / 2.0**lr_r
    change = (tot >= np.asarray(rand)) & (p != 0) & on
    new = w + np.sign(p).astype(np.int64) * change
    return np.where((new < w_min) | (new > w_max), w, new)  # no change on overflow


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
