"""The bit-accurate emulator: steps a compiled Program in the chip's arithmetic.

One engine serves every profile. Fixed-point profiles run on int64 state with the
profile's decays, shifts and overflow; float profiles run in float32. A step ``t``
(1-based, as Lava counts) does, in order:

1. spike inputs emit their step-``t`` spikes (row ``t - 1`` of a given array, as Lava's
   RingBuffer sends column ``(t - 1) % length`` at step ``t``; or a frozen Poisson draw);
   projections with zero latency deliver them at once;
2. every neuron population reads the input that arrived for step ``t`` and updates:
   ``u <- decay(u) + (a << input_shift)`` (overflow per profile), ``v <- decay(v) + u +
   bias`` (overflow per profile), spike if ``v`` exceeds the threshold, reset;
3. every projection accumulates the step-``t`` spikes of its pre population and schedules
   them for step ``t + latency + delay`` (latency: the profile's synaptic delay, 1 on Loihi).

This is the order of Lava's fixed-point LIF and Dense models (reference semantics for
loihi2); see the profile for each chip's formats.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..arith.fixed import OverflowDetected, decay, overflow
from ..compiler.ir import QPopulation
from ..compiler.program import Program
from ..errors import NeurocompError, Problem
from .inputs import poisson_step
from .synapses import Synapses

RECORDABLE = ("spikes", "v", "u", "a")


class EmulatorError(NeurocompError, ValueError):
    kind = "emulator"


class EmulatorOverflowError(EmulatorError, ArithmeticError):
    """A state left its range in ``strict`` mode."""

    kind = "overflow"


@dataclass
class _Population:
    q: QPopulation
    kind: str  # input | lif | alif | li
    state: dict[str, np.ndarray] = field(default_factory=dict)
    const: dict[str, Any] = field(default_factory=dict)  # per-step constants, in state units


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to continue a run bit for bit: the step counter, every state and
    in-flight input, and the state of every random generator."""

    t: int
    arrays: Mapping[str, np.ndarray]
    rng_states: Mapping[str, Any]
    program_fingerprint: str

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        meta = {"t": self.t, "rng_states": self.rng_states, "program_fingerprint": self.program_fingerprint}
        np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **self.arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Checkpoint:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
        return cls(meta["t"], arrays, meta["rng_states"], meta["program_fingerprint"])


class Emulator:
    """Run a Program: ``Emulator(program, batch=B, seed=S).run(steps, inputs, record)``.

    ``batch``: independent trials run together (trial ``b`` equals the same trial run alone).
    ``seed``: seeds the chip's own randomness (stochastic rounding). ``strict``: raise on the
    first overflow (naming population, neuron, trial, step and value) instead of wrapping or
    saturating as the profile says.
    """

    def __init__(self, program: Program, batch: int = 1, seed: int = 0, strict: bool = False):
        if batch < 1:
            raise EmulatorError([Problem("emulator", f"batch must be >= 1, got {batch}")])
        self.program = program
        self.profile = prof = program.profile
        self.batch = batch
        self.seed = seed
        self.strict = strict
        self.fixed = prof.arithmetic == "fixed"
        self.t = 0
        self.rng = np.random.default_rng(seed)
        self.pops: dict[str, _Population] = {}
        for q in program.populations:
            kind = {"SpikeInput": "input", "LIF": "lif", "ALIF": "alif", "LI": "li"}[q.model]
            self.pops[q.name] = _Population(q, kind, const=self._constants(q) if self.fixed else {})
        max_spikes = prof.time.max_spikes_per_step
        self.synapses: list[Synapses] = []
        for pr in program.projections:
            pre_is_input = self.pops[pr.pre].kind == "input"
            lat = prof.time.synaptic_delay_steps
            if pre_is_input and prof.time.input_delay_steps is not None:
                lat = prof.time.input_delay_steps
            self.synapses.append(Synapses(pr, lat, prof, max_spikes))
        self._slots = {
            name: 1 + max([s.latency + s.max_delay for s in self.synapses if s.post == name], default=0)
            for name in self.pops
        }
        self._input_rngs = {
            name: np.random.default_rng(p.q.params["seed"])
            for name, p in self.pops.items()
            if p.kind == "input" and p.q.params.get("rate_hz") is not None
        }
        self.reset()

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero every state (the initial state of a compiled Program) and restart at step 0."""
        dt = np.int64 if self.fixed else np.float32
        b = self.batch
        for name, p in self.pops.items():
            n = p.q.size
            p.state = {"spikes": np.zeros((b, n), dtype=np.int64)}
            if p.kind != "input":
                p.state.update(
                    u=np.zeros((b, n), dt), v=np.zeros((b, n), dt), input=np.zeros((self._slots[name], b, n), dt)
                )
            if p.kind == "alif":
                p.state["a"] = np.zeros((b, n), dt)
            if p.kind in ("lif", "alif"):
                p.state["refractory"] = np.zeros((b, n), dtype=np.int64)
        self.t = 0
        self.rng = np.random.default_rng(self.seed)
        for name in self._input_rngs:
            self._input_rngs[name] = np.random.default_rng(self.pops[name].q.params["seed"])

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of every state array, keyed ``<population>/<variable>``."""
        return {f"{n}/{k}": v.copy() for n, p in self.pops.items() for k, v in p.state.items()}

    def checkpoint(self) -> Checkpoint:
        rngs = {
            "__chip__": self.rng.bit_generator.state,
            **{n: r.bit_generator.state for n, r in self._input_rngs.items()},
        }
        return Checkpoint(self.t, self.state, json.loads(json.dumps(rngs)), self.program.profile.fingerprint)

    def restore(self, ckpt: Checkpoint) -> None:
        if ckpt.program_fingerprint != self.program.profile.fingerprint:
            raise EmulatorError([Problem("checkpoint", "was taken with another profile")])
        for key, arr in ckpt.arrays.items():
            name, var = key.split("/", 1)
            if name not in self.pops or var not in self.pops[name].state:
                raise EmulatorError([Problem("checkpoint", f"state {key!r} does not belong to this program")])
            if arr.shape != self.pops[name].state[var].shape:
                raise EmulatorError(
                    [
                        Problem(
                            "checkpoint",
                            f"state {key!r} has shape {arr.shape}, expected "
                            f"{self.pops[name].state[var].shape} (batch differs?)",
                        )
                    ]
                )
            self.pops[name].state[var] = arr.copy()
        self.t = ckpt.t
        self.rng.bit_generator.state = ckpt.rng_states["__chip__"]
        for n, r in self._input_rngs.items():
            r.bit_generator.state = ckpt.rng_states[n]

    # -- running ----------------------------------------------------------------------
    def run(
        self,
        steps: int,
        inputs: Mapping[str, np.ndarray] | None = None,
        record: tuple[str, ...] | list[str] = ("spikes",),
    ) -> dict[str, np.ndarray]:
        """Run ``steps`` steps. ``inputs`` maps input populations to spike arrays shaped
        ``[steps, batch, neurons]`` or ``[steps, neurons]`` (shared by all trials); row ``i``
        is emitted at step ``t + i + 1``. ``record`` picks variables from ``spikes``, ``v``,
        ``u``, ``a``. Returns ``{"<population>/<variable>": [steps, batch, neurons]}``."""
        given = self._check_inputs(inputs or {}, steps)
        for var in record:
            if var not in RECORDABLE:
                raise EmulatorError([Problem("record", f"unknown variable {var!r} (known: {', '.join(RECORDABLE)})")])
        out: dict[str, np.ndarray] = {}
        rec_dtype = np.int32 if self.fixed else np.float32
        for name, p in self.pops.items():
            for var in record:
                if var in p.state:
                    dtype = np.uint8 if var == "spikes" and self.profile.time.max_spikes_per_step == 1 else rec_dtype
                    out[f"{name}/{var}"] = np.zeros((steps, self.batch, p.q.size), dtype=dtype)
        for i in range(steps):
            self.step({k: v[i] for k, v in given.items()})
            for key, arr in out.items():
                name, var = key.split("/")
                arr[i] = self.pops[name].state[var]
        return out

    def _check_inputs(self, inputs: Mapping[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
        problems, given = [], {}
        for name, arr in inputs.items():
            p = self.pops.get(name)
            if p is None or p.kind != "input":
                problems.append(Problem(f"input {name!r}", "is not an input population of the program"))
                continue
            a = np.asarray(arr)
            if a.ndim == 2:
                a = np.broadcast_to(a[:, None, :], (a.shape[0], self.batch, a.shape[1]))
            if a.ndim != 3 or a.shape[1:] != (self.batch, p.q.size) or a.shape[0] < steps:
                problems.append(
                    Problem(
                        f"input {name!r}",
                        f"shape {np.shape(arr)}; expected [{steps}, {self.batch}, {p.q.size}] or [{steps}, {p.q.size}]",
                    )
                )
                continue
            if a.size and (a.min() < 0 or a.max() > self.profile.time.max_spikes_per_step):
                problems.append(
                    Problem(f"input {name!r}", f"spike counts must lie in 0..{self.profile.time.max_spikes_per_step}")
                )
                continue
            given[name] = a
        for name, p in self.pops.items():
            if p.kind == "input" and name not in given and name not in self._input_rngs:
                problems.append(Problem(f"input {name!r}", "has no rate and no spike array was given"))
        if problems:
            raise EmulatorError(problems)
        return given

    def step(self, inputs: Mapping[str, np.ndarray] | None = None) -> None:
        """Advance one step (see the module docstring for the order)."""
        t = self.t + 1
        inputs = inputs or {}
        for name, p in self.pops.items():
            if p.kind != "input":
                continue
            if name in inputs:
                s = np.asarray(inputs[name], dtype=np.int64)
                p.state["spikes"] = np.broadcast_to(s, (self.batch, p.q.size)).copy()
            else:  # frozen Poisson: one draw per step, shared by all trials
                draw = poisson_step(self._input_rngs[name], p.q.params["rate_hz"], self.program.dt_ms, p.q.size)
                p.state["spikes"] = np.broadcast_to(draw, (self.batch, p.q.size)).copy()
        for syn in self.synapses:  # zero-latency input projections arrive this step
            if syn.latency + syn.max_delay == 0:
                syn.deliver(self.pops[syn.pre].state["spikes"], self.pops[syn.post].state["input"], t)
        for name, p in self.pops.items():
            if p.kind != "input":
                self._update(name, p, t)
        for syn in self.synapses:
            if syn.latency + syn.max_delay > 0:
                syn.deliver(self.pops[syn.pre].state["spikes"], self.pops[syn.post].state["input"], t)
        self.t = t

    # -- neuron updates ------------------------------------------------------------------
    def _constants(self, q: QPopulation) -> dict[str, Any]:
        """Registers turned into state units once (Lava recomputes the bias every step, but
        it only changes if the registers do, and a Program's registers are fixed)."""
        f = self.profile.formats
        prm = q.params
        out: dict[str, Any] = {"bias": np.int64(0)}
        if "bias_mant" in prm:
            m = np.asarray(prm["bias_mant"], dtype=np.int64)
            e = np.asarray(prm["bias_exp"], dtype=np.int64) + (f.bias.shift if f.bias else 0)
            out["bias"] = np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))
        if "threshold" in prm:
            th_shift = f.threshold.shift + f.threshold.exponent_min
            out["threshold"] = np.int64(prm["threshold"]) << th_shift
            out["beta"] = np.int64(prm.get("beta", 0)) << th_shift
        return out

    def _update(self, name: str, p: _Population, t: int) -> None:
        ring = p.state["input"]
        slot = t % ring.shape[0]
        a = ring[slot].copy()  # the input that arrived for step t; the slot is reused for t + slots
        ring[slot] = 0
        if self.fixed:
            self._update_fixed(name, p, a, t)
        else:
            self._update_float(p, a)

    def _checked(self, x: np.ndarray, fmt, name: str, var: str, t: int) -> np.ndarray:
        try:
            return overflow(x, fmt, self.strict)
        except OverflowDetected as exc:
            trial, neuron = exc.index
            raise EmulatorOverflowError(
                [
                    Problem(
                        f"population {name!r}",
                        f"{var} overflow at step {t}, neuron {neuron}, trial {trial}: value "
                        f"{exc.value} outside [{exc.lo}, {exc.hi}]",
                    )
                ]
            ) from None

    def _update_fixed(self, name: str, p: _Population, a: np.ndarray, t: int) -> None:
        f = self.profile.formats
        st, prm = p.state, p.q.params
        u = decay(st["u"], f.decay, prm["current_decay"], "current", self.rng) + (a << f.input_shift)
        u = self._checked(u, f.current, name, "u", t)
        c = p.const
        v = decay(st["v"], f.decay, prm["voltage_decay"], "voltage", self.rng) + u + c["bias"]
        v = self._checked(v, f.voltage, name, "v", t)
        st["u"] = u
        if p.kind == "li":
            st["v"] = v
            return
        th = c["threshold"]
        if p.kind == "alif":
            adapt_fmt = self.profile.neuron_models["ALIF"].state.get("a", f.voltage)
            a_st = self._checked(
                decay(st["a"], f.decay, prm["adapt_decay"], "voltage", self.rng), adapt_fmt, name, "a", t
            )
            th = th + a_st
        refr = st["refractory"]
        has_refr = bool(prm.get("refractory", 0))
        if has_refr:
            frozen = refr > 0
            v = np.where(frozen, st["v"], v)  # a refractory neuron's v does not move (u still integrates)
        n = self._spike_counts(v, th)
        if has_refr:
            n[frozen] = 0
        if prm["reset"] == "subtract":
            v = v - n * c["threshold"]  # e-prop resets by v_th, not by the adaptive threshold
        else:
            v = np.where(n > 0, 0, v)
        if prm.get("refractory", 0):
            refr = np.where(n > 0, prm["refractory"], np.maximum(refr - 1, 0))
        st["refractory"] = refr
        if p.kind == "alif":
            st["a"] = a_st + n * c["beta"]
        st["v"] = v
        st["spikes"] = n

    def _spike_counts(self, v: np.ndarray, th) -> np.ndarray:
        tm = self.profile.time
        fired = v > th if tm.threshold == "greater" else v >= th
        if tm.max_spikes_per_step == 1:
            return fired.astype(np.int64)
        # several spikes per step (Xylo): while v >= th and under the cap, spike and subtract
        return np.where(fired, np.minimum(tm.max_spikes_per_step, v // np.maximum(th, 1)), 0).astype(np.int64)

    def _update_float(self, p: _Population, a: np.ndarray) -> None:
        st, prm = p.state, p.q.params
        f32 = np.float32
        u = st["u"] * f32(prm["current_decay"]) + a.astype(f32)
        v = st["v"] * f32(prm["voltage_decay"]) + u + f32(prm.get("bias", 0.0))
        st["u"] = u
        if p.kind == "li":
            st["v"] = v
            return
        th = f32(prm["threshold"])
        thr = th
        if p.kind == "alif":
            a_st = st["a"] * f32(prm["adapt_decay"])
            thr = th + a_st
        refr = st["refractory"]
        frozen = refr > 0
        v = np.where(frozen, st["v"], v)
        fired = (v > thr) & ~frozen
        n = fired.astype(np.int64)
        v = v - fired * th if prm["reset"] == "subtract" else np.where(fired, f32(0.0), v)
        if prm.get("refractory", 0):
            refr = np.where(fired, prm["refractory"], np.maximum(refr - 1, 0))
        st["refractory"] = refr
        if p.kind == "alif":
            st["a"] = a_st + fired * f32(prm["beta"])
        st["v"] = v.astype(f32)
        st["spikes"] = n
