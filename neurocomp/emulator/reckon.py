"""ReckOn's fixed-function e-prop in the emulator.

The three plastic projections of a ReckOn network (inputs -> recurrent, recurrent ->
recurrent, recurrent -> readout) hold their weights as state, as any plastic projection
does, plus their presynaptic trace ``x1`` (ReckOn keeps traces per presynaptic neuron
only). :class:`ReckonLearner` runs the chip's learning step across them with the arithmetic
of :mod:`neurocomp.rules.reckon`: traces every step; on steps with a target, the error,
the learning signal, the pseudo-derivative and the stochastic +-1 LSB updates.

Random numbers come from the emulator's seeded generator in a fixed order each step (trace
roundings of the input, recurrent and output traces, then the update comparisons of the
input, recurrent and output weights); the chip's LFSR is not modelled (see the rule module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..arith.fixed import shift
from ..compiler.ir import QProjection
from ..profiles import Profile
from ..rules import reckon as rk
from .plastic import LearnedSynapses
from .synapses import chip_mantissas

TRACE = {  # role -> (impulse base, register of its position, decay fraction bits); widths: the profile
    "input": (8, "fp_loc_tinp", 15),
    "recurrent": (8, "fp_loc_trec", 15),
    "output": (2, "fp_loc_tout", 7),
}


class ReckonSynapses(LearnedSynapses):
    """A plastic projection on ReckOn: delivery with the current weights (8-bit, shifted by
    ``FP_LOC_W``), weights and presynaptic trace ``x1`` as state."""

    def __init__(self, proj: QProjection, latency: int, profile: Profile, batch: int):
        # integer sums of 8-bit weights over a 512 fan-in are exact in float64
        super().__init__(proj, latency, batch, chip_mantissas(proj, profile), np.int64, np.float64, ("x1",))
        self.exp = int(proj.weight_exp)
        self.rounding = profile.formats.weight.exponent_rounding
        self.in_scale = float(2**profile.formats.input_shift)

    def _to_input(self, acc: np.ndarray) -> np.ndarray:
        return shift(acc, self.exp, self.rounding) * self.in_scale


class ReckonLearner:
    """The chip's learning step over the projections of one readout (see the module docstring)."""

    def __init__(self, syns: list[ReckonSynapses], pops: Mapping[str, Any], profile: Profile):
        self.by_role = {s.rule.role: s for s in syns}
        missing = {"input", "output"} - set(self.by_role)
        if missing:
            raise ValueError(f"reckon learning needs input and output projections; missing {sorted(missing)}")
        out = self.by_role["output"]
        self.readout, self.hidden = out.post, out.pre
        self.reg = out.rule.registers
        self.trace_bits = profile.learning.params["trace_bits"]  # per role: input, recurrent, output
        self.ls_bits = int(profile.learning.params["learning_signal_bits"])
        self.scale = 2.0 ** pops[self.readout].q.scale_exp
        # trace decays: the recurrent neurons' alpha (1.15) for input and recurrent traces,
        # the readout's kappa for the output trace, in ReckOn's 1.7 format
        self.factors = {
            "input": int(pops[self.hidden].q.params["voltage_decay"]),
            "recurrent": int(pops[self.hidden].q.params["voltage_decay"]),
            "output": int(round(int(pops[self.readout].q.params["voltage_decay"]) / 2**8)),
        }

    def step(self, pops: Mapping[str, Any], target, rng: np.random.Generator) -> None:
        """Traces of step ``t``, then (with a target) the weight updates."""
        for role in ("input", "recurrent", "output"):
            syn = self.by_role.get(role)
            if syn is None:
                continue
            base, reg_name, frac = TRACE[role]
            bits = int(self.trace_bits[role])
            x = syn.engine.state["x1"]
            rand = rng.integers(0, 2**frac, x.shape)
            spikes = pops[syn.pre].state["spikes"]
            imp = base << getattr(syn.rule.registers, reg_name)
            syn.engine.state["x1"] = rk.update_trace(x, spikes, self.factors[role], frac, imp, bits, rand)
        if target is None:
            return
        tgt = np.asarray(target, dtype=np.float64)
        valid = ~np.isnan(tgt).any(axis=-1)  # per trial: TARGET_VALID
        if not valid.any():
            return
        v_out = pops[self.readout].state["v"]
        err = np.clip(np.round(np.nan_to_num(tgt) * self.scale) - v_out, -(2**15), 2**15 - 1).astype(np.int64)
        v_hid = pops[self.hidden].state.get("v_pre", pops[self.hidden].state["v"]).astype(np.int64)
        out = self.by_role["output"]
        rec = self.by_role.get("recurrent")
        trace_rec_post = rec.engine.state["x1"] if rec is not None else np.zeros_like(v_hid)
        draws = {
            role: rng.integers(0, 2**32, self.by_role[role].engine.weights.shape)
            for role in ("input", "recurrent", "output")
            if role in self.by_role
        }
        for b in np.flatnonzero(valid):
            w_out = out.engine.state["w"][b]
            L = rk.learning_signal(err[b], w_out, self.reg, self.ls_bits)
            h = rk.pseudo_derivative(v_hid[b], self.reg)
            for role in ("input", "recurrent"):
                syn = self.by_role.get(role)
                if syn is None:
                    continue
                reg = syn.rule.registers
                fp = reg.fp_loc_tinp if role == "input" else reg.fp_loc_trec
                syn.engine.state["w"][b] = rk.hidden_update(
                    syn.engine.state["w"][b],
                    syn.engine.state["x1"][b],
                    fp,
                    L,
                    h,
                    trace_rec_post[b],
                    reg,
                    draws[role][b],
                )
            out.engine.state["w"][b] = rk.output_update(
                w_out, err[b], out.engine.state["x1"][b], out.rule.registers, draws["output"][b]
            )
