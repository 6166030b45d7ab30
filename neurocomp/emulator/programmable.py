"""Learning rules on programmable cores (SpiNNaker 2): the exact rule in the core's
arithmetic (float32), with the weights held as float32 learning state in model units; in
float64 for the lowered-float level of a rule check (``learn_arithmetic="float"``: the
learner and the weights, on the same float32 dynamics).

:class:`ProgrammableSynapses` delivers through the current weights; :class:`EpropLearner`
runs :class:`~neurocomp.rules.eprop.EpropExact` over a hidden population's projections and
its readout once per step, after the neurons updated. Both run compiled
(:mod:`neurocomp.kernels.eprop`), with the results of their numpy forms bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..compiler.ir import QProjection
from ..kernels.eprop import deliver
from ..learning.quantities import RATE_TAU_MS, rate_decay
from ..profiles import Profile
from ..rules.eprop import EpropExact
from .plastic import LearnedSynapses


class ProgrammableSynapses(LearnedSynapses):
    """A plastic dense projection on a programmable core: weights in model units (float32, the
    core's format; float64 for the lowered-float level)."""

    def __init__(self, proj: QProjection, latency: int, profile: Profile, batch: int, dtype=np.float32):
        super().__init__(proj, latency, batch, proj.effective(), dtype, dtype)

    @property
    def weight_unit(self) -> float:
        return 1.0  # the weights are held in model units

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int) -> None:
        """The spikes through the current weights (compiled; summed in the weights' dtype, in
        numpy's order, then added to the post neurons' input in its own dtype)."""
        w = self.engine.weights
        slot = ring[(t + self.latency + self.max_delay) % ring.shape[0]]
        deliver(w, spikes.astype(w.dtype), 16 // w.itemsize, slot)


class EpropLearner:
    """Exact e-prop over the projections of one hidden population and its readout."""

    def __init__(
        self, syns: list[ProgrammableSynapses], pops: Mapping[str, Any], batch: int, dt_ms: float, dtype=np.float32
    ):
        self.syns = syns
        self.dtype = dtype
        out = next(s for s in syns if s.rule.role == "output")
        self.out, self.readout, self.hidden = out, out.post, out.pre
        self.hid = [s for s in syns if s.rule.role == "hidden"]
        prm = dict(out.rule.params)
        hp, rp = pops[self.hidden].q.params, pops[self.readout].q.params
        self.alif = pops[self.hidden].q.model == "ALIF"
        self.rule = EpropExact(
            lr=float(prm["lr"]),
            gamma=float(prm["dampening"]),
            feedback=prm["feedback"],
            loss=prm["loss"],
            reg=float(prm["reg"]),
            reg_rate_per_step=float(prm["reg_rate_hz"]) * dt_ms / 1000,
            rate_decay=rate_decay(float(prm.get("reg_tau_ms", RATE_TAU_MS)), dt_ms),  # (older Programs: 1 s)
            alpha=float(hp["voltage_decay"]),
            kappa=float(rp["voltage_decay"]),
            v_th=float(hp["threshold"]),
            beta=float(hp.get("beta", 0.0)) if self.alif else 0.0,
            rho=float(hp.get("adapt_decay", 0.0)) if self.alif else 0.0,
            dtype=dtype,
            filter_e=out.rule.source != "rflo",  # RFLO: the eligibility unfiltered
        )
        n_h, n_out = pops[self.hidden].q.size, pops[self.readout].q.size
        if prm["feedback"] == "symmetric":
            B = out.engine.weights[0].T
        else:  # random (and the start of adaptive): N(0, 1/n_hidden), seeded
            B = np.random.default_rng(int(prm.get("seed", 0))).standard_normal((n_h, n_out)) / np.sqrt(n_h)
        self._B0 = B
        self.batch = batch
        self.pres = {s.name: pops[s.pre].q.size for s in self.hid}
        self.reset()

    def reset(self, keep: bool = False) -> None:
        B = self.state["B"] if keep and self.rule.feedback == "adaptive" else self._B0
        self.state = self.rule.init(self.batch, len(self._B0), self.pres, self._B0.shape[1], B)

    def step(self, pops: Mapping[str, Any], target) -> None:
        h = pops[self.hidden].state
        self.rule.step(
            self.state,
            {s.name: s.engine.state["w"] for s in self.hid},
            self.out.engine.state["w"],
            h.get("v_pre", h["v"]),
            h.get("a") if self.alif else None,
            h["spikes"],
            pops[self.readout].state["v"],
            None if target is None else np.asarray(target, dtype=self.dtype),
            {s.name: pops[s.pre].state["spikes"] for s in self.hid},
            recurrent={s.name for s in self.hid if s.pre == self.hidden},
        )
