"""Learning rules on programmable cores (SpiNNaker 2): the exact rule in the core's
arithmetic (float32), with the weights held as float32 learning state in model units; in
float64 for the lowered-float level of a rule check (``learn_arithmetic="float"``: the
learner and the weights, on the same float32 dynamics).

:class:`ProgrammableSynapses` delivers through the current weights; :class:`EpropLearner`
runs :class:`~neurocomp.learning.programmable.EpropExact` over each hidden population's projections and
its readout once per step, after the neurons updated. Both run compiled
(:mod:`neurocomp.kernels.eprop`), with the results of their numpy forms bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

from ..compiler.ir import QProjection
from ..errors import NeurocompError, Problem
from ..kernels.eprop import deliver
from ..learning.programmable import EpropExact, apply_trial_update
from ..learning.quantities import RATE_TAU_MS, feedback_matrix, rate_decay
from ..profiles import Profile
from .plastic import LearnedSynapses


class NonFiniteWeightsError(NeurocompError, ArithmeticError):
    """A learning run left a projection's weights inf or NaN: the core's float format
    overflowed (float32: beyond 3.4e38; an inf weight's next update then gives NaN). On the
    chip the run would go on: a NaN membrane never passes the threshold test, so the network
    falls silent and the NaN stays. The emulator stops at the end of that run instead, naming
    each projection; ``recording`` holds the run's recordings (as :meth:`Emulator.run`
    returns them), ``projections`` the names."""

    kind = "learning"

    def __init__(self, problems, projections: tuple[str, ...] = (), recording: dict | None = None):
        super().__init__(problems)
        self.projections = projections
        self.recording = recording


def nonfinite_problems(weights: Mapping[str, np.ndarray], when: str) -> dict[str, Problem]:
    """Projection name -> a :class:`Problem`, for each projection of ``weights`` (name ->
    ``[trial, post, pre]`` or ``[post, pre]``) with a weight that is not finite: how many, the
    first and its value, and the largest finite magnitude left; ``when`` says after what."""
    problems = {}
    for name, w in weights.items():
        bad = ~np.isfinite(w)
        if not bad.any():
            continue
        first = tuple(int(x) for x in np.argwhere(bad)[0])
        at = ", ".join(f"{axis} {i}" for axis, i in zip(("trial", "post", "pre")[-w.ndim :], first, strict=True))
        finite = np.abs(w[~bad])
        left = f"; the largest finite |w| is {finite.max():.3g}" if finite.size else ""
        problems[name] = Problem(
            f"projection {name!r}",
            f"{int(bad.sum())} of {w.size} learned weights are not finite {when} (first: {at}: {w[first]}){left}; "
            f"the {w.dtype} weights overflowed",
        )
    return problems


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


class _HiddenPart:
    """Exact e-prop over one hidden population's input projections and its projection onto the
    readout (one :class:`EpropExact`)."""

    def __init__(self, out, hid, pops: Mapping[str, Any], batch: int, dt_ms: float, dtype, B: np.ndarray):
        self.out, self.readout, self.hidden, self.hid = out, out.post, out.pre, hid
        prm = dict(out.rule.params)
        hp, rp = pops[self.hidden].q.params, pops[self.readout].q.params
        self.alif = pops[self.hidden].q.model == "ALIF"
        # update 'trial': the steps' updates go into buffers (the weights fixed), applied by end_run;
        # with Adam the buffers take the update at lr 1 (the gradient) and the lr is Adam's step
        self.trial, self.optimizer = prm.get("update", "online") == "trial", prm.get("optimizer", "sgd")
        self.lrs = {s.name: float(s.rule.params["lr"]) for s in [*hid, out]}
        adam = self.optimizer == "adam"
        self.rule = EpropExact(
            lr=1.0 if adam else float(prm["lr"]),
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
            lr_of={} if adam else {s.name: self.lrs[s.name] for s in hid},  # each projection's lr (readout's: lr)
            zero_reset=hp.get("reset", "zero") != "subtract",  # the eligibility vector restarts at the reset
        )
        self._B0 = out.engine.weights[0].T if prm["feedback"] == "symmetric" else B
        self.batch = batch
        self.pres = {s.name: pops[s.pre].q.size for s in hid}
        self.reset()

    def reset(self, keep: bool = False) -> None:
        B = self.state["B"] if keep and self.rule.feedback == "adaptive" else self._B0
        old = getattr(self, "state", {})
        self.state = self.rule.init(self.batch, len(self._B0), self.pres, self._B0.shape[1], B)
        if self.trial:  # the minibatch's buffers and Adam's moments outlive a trial (with the weights)
            d = self.rule.dtype
            for s in [*self.hid, self.out]:
                shape = s.engine.state["w"].shape
                for var, shp in (("acc", shape), ("adam_m", shape[1:]), ("adam_v", shape[1:]), ("adam_t", (1,))):
                    key = f"{s.name}/{var}"
                    self.state[key] = old[key] if keep and key in old else np.zeros(shp, d)

    def end_run(self) -> dict[str, np.ndarray]:
        """update 'trial': the run's trials' buffers applied to every copy of the weights
        (:func:`~neurocomp.learning.programmable.apply_trial_update`); returns each projection's
        mean buffer."""
        if not self.trial:
            return {}
        st, means = self.state, {}
        for s in [*self.hid, self.out]:
            opt = {x: st[f"{s.name}/adam_{x}"] for x in ("m", "v", "t")}
            means[s.name] = apply_trial_update(s.engine.state["w"], st[f"{s.name}/acc"], opt, self.lrs[s.name],
                                               self.optimizer)  # fmt: skip
        return means

    def step(self, pops: Mapping[str, Any], target) -> None:
        h = pops[self.hidden].state
        if self.trial:  # the buffers take the update; the weights stay as the trial started
            w = {s.name: self.state[f"{s.name}/acc"] for s in self.hid}
            w_out = self.state[f"{self.out.name}/acc"]
        else:
            w = {s.name: s.engine.state["w"] for s in self.hid}
            w_out = self.out.engine.state["w"]
        self.rule.step(
            self.state,
            w,
            w_out,
            h.get("v_pre", h["v"]),
            h.get("a") if self.alif else None,
            h["spikes"],
            pops[self.readout].state["v"],
            target,
            {s.name: pops[s.pre].state["spikes"] for s in self.hid},
            recurrent={s.name for s in self.hid if s.pre == self.hidden},
        )


class _PartsState(MutableMapping):
    """The learning state of several hidden parts as one mapping, keyed ``<hidden>:<variable>``
    (reads and writes go to the parts' own dicts, so checkpoints restore into them)."""

    def __init__(self, parts: list[_HiddenPart]):
        self._parts = {p.hidden: p for p in parts}

    def _split(self, key: str) -> tuple[dict, str]:
        hidden, var = key.split(":", 1)
        return self._parts[hidden].state, var

    def __getitem__(self, key: str) -> np.ndarray:
        st, var = self._split(key)
        return st[var]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        st, var = self._split(key)
        st[var] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("the learning state's variables cannot be removed")

    def __iter__(self):
        return (f"{h}:{k}" for h, p in self._parts.items() for k in p.state)

    def __len__(self) -> int:
        return sum(len(p.state) for p in self._parts.values())


class EpropLearner:
    """Exact e-prop for one readout, over every hidden population that projects onto it.

    Several hidden populations (e.g. a LIF and an ALIF one) decompose exactly into one
    :class:`EpropExact` per population: a hidden neuron's eligibility, learning signal
    ``L_j = sum_k B_jk err_k`` and readout weights depend only on its own state, its inputs and
    the shared readout's error; a projection between two hidden populations is one of the
    post population's inputs (its pre spikes arrive with the recurrent latency, as from
    itself, but without the no-autapse mask). Random feedback ``B`` is drawn once for all hidden
    neurons (:func:`~neurocomp.learning.quantities.feedback_matrix`: ``N(0, 1/n_hidden)``, hidden
    populations in declaration order, seeded) and split by rows,
    as a single population of their union would draw it. One hidden population keeps the
    state's plain keys; several key it ``<hidden>:<variable>``."""

    def __init__(
        self, syns: list[ProgrammableSynapses], pops: Mapping[str, Any], batch: int, dt_ms: float, dtype=np.float32
    ):
        self.syns, self.dtype = syns, dtype
        order = list(pops)  # the hidden populations in declaration order: B's rows (feedback_matrix)
        outs = sorted((s for s in syns if s.rule.role == "output"), key=lambda s: order.index(s.pre))
        self.readout = outs[0].post
        sizes = [pops[o.pre].q.size for o in outs]
        prm = dict(outs[0].rule.params)
        B = np.vstack(feedback_matrix(int(prm.get("seed", 0)), sizes, pops[self.readout].q.size))
        rows = np.cumsum([0, *sizes])
        self.parts = [
            _HiddenPart(
                o,
                [s for s in syns if s.rule.role == "hidden" and s.post == o.pre],
                pops,
                batch,
                dt_ms,
                dtype,
                B[rows[i] : rows[i + 1]],
            )  # fmt: skip
            for i, o in enumerate(outs)
        ]
        self.hidden = self.parts[0].hidden  # the emulator marks it; every part's is marked here
        for part in self.parts:
            pops[part.hidden].const["keep_v_pre"] = True
        self.batch = batch
        self.last_update: dict[str, np.ndarray] = {}
        self.state: MutableMapping[str, np.ndarray] = (
            self.parts[0].state if len(self.parts) == 1 else _PartsState(self.parts)
        )

    def reset(self, keep: bool = False) -> None:
        for part in self.parts:
            part.reset(keep)
        if len(self.parts) == 1:
            self.state = self.parts[0].state

    def step(self, pops: Mapping[str, Any], target) -> None:
        t = None if target is None else np.asarray(target, dtype=self.dtype)
        for part in self.parts:
            part.step(pops, t)

    def end_run(self, t: int = 0) -> dict[str, np.ndarray]:
        """The end of a learning run (the emulator at step ``t``): update 'trial' applies the
        minibatch (each part's :meth:`_HiddenPart.end_run`); returns the projections' mean
        buffers (empty when online), also kept as ``last_update``. Weights that are no longer
        finite raise :class:`NonFiniteWeightsError` naming their projections (once per run: a
        check per step would cost more than the step's own update)."""
        self.last_update = {k: v for part in self.parts for k, v in part.end_run().items()}
        problems = nonfinite_problems({s.name: s.engine.state["w"] for s in self.syns}, f"after the run to step {t}")
        if problems:
            raise NonFiniteWeightsError(list(problems.values()), tuple(problems))
        return self.last_update
