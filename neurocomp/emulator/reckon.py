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
from .synapses import chip_mantissas

TRACE = {  # role -> (impulse base, register of its position, trace bits, decay fraction bits)
    "input": (8, "fp_loc_tinp", 12, 15),
    "recurrent": (8, "fp_loc_trec", 12, 15),
    "output": (2, "fp_loc_tout", 10, 7),
}


class _State:
    """The learning state of one projection, with the interface the emulator expects."""

    def __init__(self, w: np.ndarray, batch: int, n_pre: int):
        self._w0 = w
        self.batch, self.n_pre = batch, n_pre
        self.reset()

    def reset(self) -> None:
        self.state = {
            "w": np.broadcast_to(self._w0, (self.batch,) + self._w0.shape).astype(np.int64).copy(),
            "x1": np.zeros((self.batch, self.n_pre), np.int64),
        }

    @property
    def weights(self) -> np.ndarray:
        return self.state["w"]

    def get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {k: v.copy() for k, v in self.state.items()}, {}

    def set_state(self, arrays: Mapping[str, np.ndarray], rngs) -> None:
        for k, v in arrays.items():
            self.state[k] = v.astype(np.int64)


class ReckonSynapses:
    """A plastic projection on ReckOn: delivery with the current weights (8-bit, shifted by
    ``FP_LOC_W``), weights and presynaptic trace as state."""

    def __init__(self, proj: QProjection, latency: int, profile: Profile, batch: int):
        self.proj = proj
        self.name, self.pre, self.post = proj.name, proj.pre, proj.post
        self.n_post, self.n_pre = proj.shape
        self.latency = latency
        self.max_delay = int(proj.delay_steps)
        self.rule = proj.learning
        self.exp = int(proj.weight_exp)
        self.rounding = profile.formats.weight.exponent_rounding
        self.in_scale = float(2**profile.formats.input_shift)
        self.engine = _State(chip_mantissas(proj, profile), batch, self.n_pre)
        self.neuron_traces: dict[str, np.ndarray] = {}
        self.graded_inputs: tuple[str, ...] = ()

    def reset(self) -> None:
        self.engine.reset()

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int) -> None:
        if not spikes.any():
            return
        acc = np.einsum("bnm,bm->bn", self.engine.weights.astype(np.float64), spikes.astype(np.float64))
        ring[(t + self.latency + self.max_delay) % ring.shape[0]] += shift(acc, self.exp, self.rounding) * self.in_scale


class ReckonLearner:
    """The chip's learning step over the projections of one readout (see the module docstring)."""

    def __init__(self, syns: list[ReckonSynapses], pops: Mapping[str, Any]):
        self.by_role = {s.rule.role: s for s in syns}
        missing = {"input", "output"} - set(self.by_role)
        if missing:
            raise ValueError(f"reckon learning needs input and output projections; missing {sorted(missing)}")
        out = self.by_role["output"]
        self.readout, self.hidden = out.post, out.pre
        self.reg = out.rule.registers
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
            base, reg_name, bits, frac = TRACE[role]
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
            L = rk.learning_signal(err[b], w_out, self.reg)
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
