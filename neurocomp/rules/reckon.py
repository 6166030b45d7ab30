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
  (``e_k``: 16-bit errors, ``W_out``: 8-bit weights before this step's update; the 12 is the
  profile's ``learning_signal_shift``);
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
the array functions of :mod:`neurocomp.learning.reckon` (the engine: registers, arithmetic,
the compiled IR) apply those definitions elementwise and take the random numbers as inputs,
and its float64 forms serve the learning-attribution runs. This module maps e-prop's
hyperparameters onto the registers (:func:`lower_network`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..learning.quantities import pseudo_derivative as triangle
from ..learning.reckon import (  # noqa: F401  (ReckOn's engine: its registers and arithmetic)
    ChipWidths,
    ReckonLearning,
    ReckonRegisters,
    decay_trace,
    float_learning_signal,
    float_output_prob,
    float_prob,
    float_step,
    learning_signal,
    pseudo_derivative,
    read_trace,
    stochastic_step,
)
from .eprop import DEFAULTS as EPROP_DEFAULTS
from .eprop import eprop_params

DEFAULTS = {**EPROP_DEFAULTS, "feedback": "symmetric"}

# 5-level pseudo-derivative: e-prop's triangle quantized at compile time (step_levels), thresholds
# at these fractions of v_th, levels in units of 1/ChipWidths.h_full of the triangle's peak
H_FRACTIONS = (0.25, 0.5, 0.75, 1.25)


def step_levels(full: int, fractions: tuple[float, ...] = H_FRACTIONS) -> tuple[int, ...]:
    """The levels ``H_0..H_4`` of ReckOn's step pseudo-derivative for thresholds at
    ``fractions`` of ``v_th``: e-prop's triangle (:func:`~neurocomp.learning.quantities.pseudo_derivative`,
    in units of ``v_th``) averaged over each segment between thresholds, the last segment as
    wide as the one before it, times ``full``, rounded half up; ``H_0`` (below the lowest
    threshold: a membrane near rest) is 0. With reckon's ``full`` 15 (5-bit signed levels) and
    the default fractions: (0, 6, 9, 13, 8).

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
    widths = ChipWidths.of(profile)
    levels = step_levels(widths.h_full)
    learning = {}
    for p in eprop:
        role = "output" if p.post == readout else ("recurrent" if p.pre == hidden else "input")
        lr_p = _lr_shift(p, role, params, eprop, net, pops, (readout, hidden), widths, notes)
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
        if prm.get("update", "online") != "online":  # srnn.v writes each stochastic update as it comes
            msg = f"eprop update {prm['update']!r}: reckon applies every update as it comes ('online') only"
            problems.append(Problem(f"projection {p.name!r}", msg))
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


def _lr_shift(p, role, params, eprop, net, pops, layers: tuple[str, str], widths: ChipWidths, notes: list[str]) -> int:
    """The learning-rate shift ``LR_P`` that makes the chip's expected step equal e-prop's
    ``lr`` times its update (in the projection's weight units), rounded to a power of two
    (``layers``: the readout and the recurrent layer)."""
    from ..errors import Problem
    from .base import LoweringError

    readout, hidden = layers
    lsb = float(2.0**p.weight_exp * p.float_scale)
    lr = float(params[p.name]["lr"])
    out_scale = 2.0 ** pops[readout].scale_exp
    if role == "output":
        # p = e_int * (trace_out >> FP_LOC_TOUT), e_int = err * out_scale, trace_out =
        # (2 << FP_LOC_TOUT) * z_bar; dW (model) = lsb * p * 2^(LR_P - 28) (a 28-bit random
        # number) should be lr * err * z_bar
        unit = out_scale * widths.impulse["output"] * 2.0 ** (widths.hidden - widths.output)
    else:
        w_out = next(q for q in eprop if q.pre == hidden and q.post == readout)
        out_lsb = float(2.0**w_out.weight_exp * w_out.float_scale)
        gamma = float(params[eprop[0].name]["dampening"])
        theta_model = float(net.source.population(hidden).neuron.v_th)
        # p = L_int * (trace >> FP_LOC) * h, with L_int = err * out_scale * (B / out_lsb) * 2^(s - shift),
        # trace >> FP_LOC = 8 * z_bar and psi = (gamma / v_th) * h / h_full
        imp, h_full = widths.impulse[role], widths.h_full
        unit = out_scale / out_lsb * 2.0 ** (LEARN_SIG_SCALE - widths.signal_shift) * imp * h_full * theta_model / gamma
    shift = widths.hidden + math.log2(lr / (lsb * unit))  # LR_P against the input/recurrent 32-bit number
    lr_p = int(round(shift))
    if not 0 <= lr_p <= widths.lr_shift_max:
        msg = f"eprop learning rate {lr:g} needs LR_P {shift:.1f}, outside 0..{widths.lr_shift_max}"
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
