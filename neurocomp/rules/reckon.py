"""e-prop as ReckOn's fixed-function learning engine runs it (Frenkel & Indiveri 2022;
``eprop.md`` §3a, from the chip's ``srnn.v``).

ReckOn approximates e-prop structurally: presynaptic-only traces (``e_ji ~ h_j * trace_i``,
no per-synapse filtering), a 5-level step pseudo-derivative, symmetric feedback through the
output weights, and stochastic +-1 LSB weight updates, applied only on steps where the
target is valid. All of it is integer arithmetic on the chip's register widths:

* traces (12-bit input and recurrent, 10-bit output), per step:
  ``trace <- sat(round_s(trace * alpha) + spike * (imp << FP_LOC))`` with ``alpha`` in 1.15
  (``kappa`` in 1.7 for the output trace), ``imp`` 8 (input, recurrent) or 2 (output),
  ``round_s`` stochastic rounding of the 15 (7) fraction bits against a random integer;
* pseudo-derivative ``h_j`` (5-bit signed): ``H_0`` below ``THR_H_0``, ..., ``H_4`` at or
  above ``THR_H_3`` of the membrane ``v_j`` (16-bit);
* learning signal ``L_j = sat16(((sum_k e_k * W_out_kj) << LEARN_SIG_SCALE) >> 12)``;
* ``p_ji = L_j * (trace_i >> FP_LOC) * h_j``, minus the additive regularization
  ``(trace_rec_j - F0) << K_P`` where the post neuron's trace exceeds ``F0``;
* output ``p_kj = e_k * trace_out_j``;
* update: ``W_ji += sign(p)`` where ``(|p| << LR_P) >> LR_R`` exceeds a 32-bit random
  number, unless the weight would leave its 8-bit range.

The random numbers are inputs to these functions. On the chip they come from a 32-bit LFSR
whose polynomial is not published here; a caller draws them from a seeded generator, so the
arithmetic is the chip's and the random stream is a documented stand-in. (The mapping of
e-prop's hyperparameters onto these registers and the emulator's use of this engine are
are below: :func:`lower_network` and the emulator's ``ReckonLearner``.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .eprop import DEFAULTS as EPROP_DEFAULTS
from .eprop import eprop_params

W_MIN, W_MAX = -128, 127  # 8-bit two's-complement weights


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
    regul_f0: int = 160
    regul_k_p: int = 10
    regularize: bool = True

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def decay_trace(trace: np.ndarray, factor: int, frac_bits: int, rand: np.ndarray) -> np.ndarray:
    """``round_s(trace * factor / 2**frac_bits)``: stochastic rounding, up when the
    ``frac_bits``-bit fraction exceeds ``rand`` (integers in ``[0, 2**frac_bits)``)."""
    p = trace.astype(np.int64) * factor
    q = p >> frac_bits
    return q + ((p & ((1 << frac_bits) - 1)) > rand)


def update_trace(trace, spikes, factor: int, frac_bits: int, impulse: int, bits: int, rand) -> np.ndarray:
    """One step of a presynaptic trace: decay, then the spike's impulse, saturated to ``bits``."""
    t = decay_trace(trace, factor, frac_bits, rand) + spikes.astype(np.int64) * impulse
    return np.minimum(t, (1 << bits) - 1)


def pseudo_derivative(v: np.ndarray, reg: ReckonRegisters) -> np.ndarray:
    """The 5-level step ``h_j`` of the membrane ``v_j``."""
    levels = np.searchsorted(np.asarray(reg.thr_h), v, side="right")  # 0..4: how many thresholds v reaches
    return np.asarray(reg.h_values, dtype=np.int64)[levels]


def learning_signal(err: np.ndarray, w_out: np.ndarray, reg: ReckonRegisters, bits: int = 16) -> np.ndarray:
    """``L_j`` from the output errors ``e_k`` (16-bit) and weights ``W_out[k, j]`` (8-bit),
    saturated to ``bits`` (the profile's ``learning_signal_bits``)."""
    psum = err.astype(np.int64) @ w_out.astype(np.int64)
    return np.clip((psum << reg.learn_sig_scale) >> 12, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def stochastic_step(w: np.ndarray, p: np.ndarray, lr_p: int, lr_r: int, rand: np.ndarray) -> np.ndarray:
    """``W += sign(p)`` where ``(|p| << lr_p) >> lr_r > rand`` (32-bit), kept in 8 bits."""
    fire = ((np.abs(p) << lr_p) >> lr_r) > rand
    new = w + np.sign(p) * fire
    return np.where((new < W_MIN) | (new > W_MAX), w, new)  # no change on overflow


def hidden_update(w, trace_pre, fp_loc: int, L, h, trace_rec_post, reg: ReckonRegisters, rand) -> np.ndarray:
    """The update of input or recurrent weights ``w[j, i]`` for one valid step."""
    p = L[:, None] * (trace_pre[None, :] >> fp_loc) * h[:, None]
    if reg.regularize:
        over = np.maximum(trace_rec_post - reg.regul_f0, 0)
        p = p - (over << reg.regul_k_p)[:, None]
    return stochastic_step(w, p, reg.lr_p, reg.lr_r, rand)


def output_update(w_out, err, trace_out, reg: ReckonRegisters, rand) -> np.ndarray:
    """The update of output weights ``w_out[k, j]`` for one valid step."""
    p = err[:, None].astype(np.int64) * trace_out[None, :]
    return stochastic_step(w_out, p, reg.lr_p_out, reg.lr_r_out, rand)


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

# 5-level pseudo-derivative: thresholds at these fractions of v_th, levels ~ 15 * psi_hat at
# the middle of each segment (psi_hat = max(0, 1 - |v - v_th| / v_th), a triangle peaking at v_th)
H_FRACTIONS = (0.25, 0.5, 0.75, 1.25)
H_LEVELS = (0, 6, 9, 13, 8)
H_FULL = 15


def lower_network(net, profile, dt_ms: float, notes: list[str]):
    """Map every e-prop projection of ``net`` onto ReckOn's registers; returns the network
    with each projection's :class:`ReckonLearning`. Every problem is collected first."""
    from dataclasses import replace

    from ..errors import Problem
    from .base import LoweringError

    eprop = [p for p in net.projections if p.plasticity is not None and p.plasticity.name == "eprop"]
    if not eprop:
        return net
    pops = {p.name: p for p in net.populations}
    problems: list[Problem] = []
    params = {}
    for p in eprop:
        prm = eprop_params(p, problems, DEFAULTS)
        if prm["feedback"] != "symmetric":
            problems.append(
                Problem(
                    f"projection {p.name!r}",
                    f"eprop feedback {prm['feedback']!r}: reckon's learning signal is symmetric (W_out^T) only",
                )
            )
        if prm["loss"] != "mse":
            problems.append(Problem(f"projection {p.name!r}", "eprop on reckon: only the regression (mse) loss"))
        params[p.name] = prm
    readouts = sorted({p.post for p in eprop if pops[p.post].model == "LI"})
    hidden = sorted({p.post for p in eprop if pops[p.post].model != "LI"})
    if len(readouts) != 1 or len(hidden) != 1:
        problems.append(
            Problem("eprop", f"reckon learns one recurrent layer and one readout; found {hidden} -> {readouts}")
        )
    if problems:
        raise LoweringError(problems, header="e-prop cannot be lowered onto reckon")
    R, H = readouts[0], hidden[0]
    first = params[eprop[0].name]
    theta = int(pops[H].params["threshold"])  # integer v units
    thr = tuple(int(round(f * theta)) for f in H_FRACTIONS)
    gamma = float(first["dampening"])
    learn_sig_scale = 5
    disc = net.source
    theta_model = float(disc.population(H).neuron.v_th)
    out_scale = 2.0 ** pops[R].scale_exp
    learning = {}
    for p in eprop:
        role = "output" if p.post == R else ("recurrent" if p.pre == H else "input")
        lsb = float(2.0**p.weight_exp * p.float_scale)
        lr = float(params[p.name]["lr"])
        if role == "output":
            # p = e_int * trace_out, e_int = err * out_scale, trace_out = (2 << FP_LOC_TOUT) * z_bar;
            # dW (model) = lsb * p * 2^(LR_P - 32) should be lr * err * z_bar
            unit = out_scale * (2 << ReckonRegisters.fp_loc_tout)
        else:
            w_out = next(q for q in eprop if q.pre == H and q.post == R)
            out_lsb = float(2.0**w_out.weight_exp * w_out.float_scale)
            # p = L_int * (trace >> FP_LOC) * h, with L_int = err * out_scale * (B / out_lsb) * 2^(s - 12),
            # trace >> FP_LOC = 8 * z_bar and psi = (gamma / v_th) * h / 15
            unit = out_scale / out_lsb * 2.0 ** (learn_sig_scale - 12) * 8 * H_FULL * theta_model / gamma
        shift = 32 + math.log2(lr / (lsb * unit))
        lr_p = int(round(shift))
        if not 0 <= lr_p <= 31:
            raise LoweringError(
                [Problem(f"projection {p.name!r}", f"eprop learning rate {lr:g} needs LR_P {shift:.1f}, outside 0..31")]
            )
        if abs(lr_p - shift) > 1e-9:
            notes.append(
                f"eprop on reckon: {p.name}: learning rate {lr:g} rounded to a power of two "
                f"(LR_P {lr_p}, factor {2 ** (lr_p - shift):.3g})"
            )
        reg = ReckonRegisters(
            thr_h=thr,
            h_values=H_LEVELS,
            learn_sig_scale=learn_sig_scale,
            lr_p=lr_p if role != "output" else ReckonRegisters.lr_p,
            lr_p_out=lr_p if role == "output" else ReckonRegisters.lr_p_out,
            lr_r=0,
            lr_r_out=0,
            regularize=bool(params[p.name]["reg"]),
        )
        learning[p.name] = ReckonLearning(reg, role, R)
    notes.append(
        f"eprop on reckon: pseudo-derivative levels {H_LEVELS} at v = {thr} (v_th = {theta}); presynaptic "
        "traces only; symmetric feedback; stochastic +-1 LSB updates on steps with a target"
    )
    return replace(
        net, projections=tuple(replace(p, learning=learning.get(p.name, p.learning)) for p in net.projections)
    )
