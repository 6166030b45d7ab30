"""The float64 reference simulator: the float :class:`~neurocomp.graph.Network` stepped in
discrete time with no quantization, batched over independent trials.

Independent of the emulator's neuron and synapse code on purpose: it is the float check of
the emulator (it shares only the frozen Poisson draw, so that both see the same spikes).

Every time constant becomes its exact per-step decay ``exp(-dt/tau)`` (``dv``, ``du``,
``rho``); voltages, thresholds, weights and biases are the model's own float64 values. The
discrete-time conventions are a :class:`~neurocomp.reference.conventions.Conventions`
(``Conventions.chip()`` by default: the emulator's order). A step ``t`` (1-based, as the
emulator counts) does, in order:

1. spike inputs emit their step-``t`` spikes: row ``t - 1`` of a given array, or a frozen
   Poisson draw from the population's ``rate_hz`` and ``seed``, drawn exactly as the emulator
   draws it (:class:`neurocomp.graph.inputs.PoissonSource`: one stream per trial derived
   from the seed, or one shared with ``trials: shared``), so both see the same spikes;
2. projections from inputs whose total delay (latency + ``delay_steps``) is 0 deliver them;
3. every spiking population (LIF, ALIF) reads the input that arrived for step ``t`` and
   updates (``s`` = 1, or ``1 - dv`` with ``input_scale="one_minus_alpha"``)::

       u_t = du * u_{t-1} + s * input_t          (du = 0: delta synapses, tau_syn_ms None)
       v_t = dv * v_{t-1} + u_t + bias           (bias per step, not scaled by s)
       a_t = rho * a_{t-1}     (ALIF; + z_{t-1} with reset_timing "next_step")
       A_t = v_th + beta * a_t (ALIF; v_th for LIF)
       z_t = v_t > A_t         (strictly greater; never while refractory)

   (the neurons' step is :func:`neurocomp.reference.neuron.step`, shared with e-prop's
   reference; it applies a reset that acts at once in the next step's update, as
   ``dv v - dv v_th``: the same numbers up to rounding) then the reset: ``"zero"`` sets
   ``v_t = v_reset`` at once (under either timing);
   ``"subtract"`` removes ``v_th`` from ``v_t`` at once (``"immediate"``) or from
   ``v_{t+1}``, undecayed (``"next_step"``). An ALIF's ``a`` jumps by 1 at once
   (``"immediate"``) or in the next step. Refractoriness (``refractory_steps`` R: no spike
   in the R steps after one) follows the reset timing, as the two codes it models do:
   ``"immediate"`` holds ``v`` (the chip's, as the emulator does; ``u`` and ``a`` keep
   evolving), ``"next_step"`` lets ``v`` integrate and only masks the spikes (Bellec's
   ``EligALIF``; the e-prop reference does the same);
4. spiking populations' step-``t`` spikes reach leaky readouts (LI) through projections
   of total delay 0 (``readout_latency`` 0), and every LI updates as ``u`` and ``v`` above;
5. every other projection accumulates the step-``t`` spikes of its pre population with its
   current weights and schedules them for step ``t + latency + delay_steps`` (latency:
   ``input_latency`` from a SpikeInput, ``readout_latency`` onto an LI, else
   ``recurrent_latency``);
6. with ``learn=True``, plastic projections with an STDP or R-STDP rule take the step's pre
   and post spikes (pre spikes when emitted, not when they arrive) and update their
   weights, with the rules' float forms :class:`~neurocomp.rules.stdp.StdpFloat` and
   :class:`~neurocomp.rules.rstdp.RstdpFloat` (the one definition of each rule). The
   step's input was accumulated with the weights before the update, as on the chip.

With the chip conventions this is the emulator's float path in float64 and with exact
decays. Zero total delay between two spiking populations is refused (it would need an
update order inside the step).

Sums of synaptic input are formed in a fixed order that does not depend on the batch
(``np.bincount`` over the active synapses, pre neuron by pre neuron), so trial ``b`` of a
batch gives exactly the numbers of the same trial run alone.

Recordings use the emulator's keys and shapes: ``"<population>/<var>"`` ``[steps, batch,
n]`` for ``spikes`` (uint8), ``v``, ``u``, ``a`` and the reference's extras ``v_pre`` (the
membrane before the threshold test and reset) and ``th_pre`` (the threshold ``A_t`` it was
compared with); ``"<projection>/<var>"`` ``[steps, trials, ...]`` for ``w`` (``[post,
pre]``, dense; 0 where a sparse projection has no synapse) and the rule's state ``x``,
``y`` (traces) and ``e`` (R-STDP eligibility). Units: ``a`` counts spikes (it jumps by 1;
the threshold moves by ``beta * a``), whereas the emulator's ``a`` is ``beta * a`` in
voltage units; the rest are model units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import NeurocompError, Problem
from ..graph import ALIF, LI, LIF, Network, SpikeInput
from ..graph.inputs import PoissonSource, per_trial, unfed_inputs
from ..graph.weights import SparseWeights
from ..rules import rstdp as _rstdp
from ..rules import stdp as _stdp
from ..rules.base import LoweringContext, require
from ..rules.rstdp import RstdpFloat
from ..rules.stdp import StdpFloat
from . import neuron
from .conventions import Conventions

POPULATION_VARS = ("spikes", "v", "u", "a", "v_pre", "th_pre")
PROJECTION_VARS = ("w", "x", "y", "e")
RECORDABLE = POPULATION_VARS + PROJECTION_VARS
RULES = ("stdp", "rstdp")  # the plastic rules this simulator runs


_ONE_CURRENT = "the float reference models one synaptic current per neuron (tau_syn_ms), not tau_syn2_ms"

class ReferenceError(NeurocompError, ValueError):
    """The reference simulator cannot run this network or these inputs (each problem located)."""

    kind = "reference"


@dataclass
class _Pop:
    name: str
    size: int
    kind: str  # input | lif | alif | li
    neuron: Any
    const: dict[str, Any] = field(default_factory=dict)
    state: dict[str, np.ndarray] = field(default_factory=dict)
    work: dict[str, np.ndarray] = field(default_factory=dict)  # the step's arrays (some are state's)


@dataclass
class _Group:
    """The synapses of one projection that share one total delay (steps from emission to
    the step whose update reads them), in CSC order by pre neuron."""

    delay: int
    indptr: np.ndarray  # [n_pre + 1]
    post: np.ndarray  # post index of each synapse
    pre: np.ndarray  # pre index of each synapse
    values: np.ndarray | None  # static weights; None for a plastic projection (read each step)


class _Proj:
    """One projection at run time: its delay groups, and its rule when it learns."""

    def __init__(self, proj, latency: int, batch: int, learn_mode: str, rule):
        self.name, self.pre, self.post = proj.name, proj.pre, proj.post
        self.n_post, self.n_pre = proj.shape
        w = proj.weights
        if isinstance(w, SparseWeights):
            rows, cols, vals = w.rows.astype(np.int64), w.cols.astype(np.int64), w.values
        else:  # every entry of a dense matrix is a synapse (zeros included, as on the chip)
            rows, cols = np.divmod(np.arange(w.size, dtype=np.int64), self.n_pre)
            vals = w.reshape(-1)
        delays = np.broadcast_to(np.asarray(proj.delay_steps, dtype=np.int64).reshape(-1), vals.shape) + latency
        self.rule = rule
        self.plastic = rule is not None
        self.groups: list[_Group] = []
        for d in np.unique(delays):
            sel = delays == d
            r, c, v = rows[sel], cols[sel], vals[sel]
            order = np.lexsort((r, c))  # by pre, then post: the summation order
            r, c, v = r[order], c[order], v[order]
            indptr = np.searchsorted(c, np.arange(self.n_pre + 1))
            self.groups.append(_Group(int(d), indptr, r, c, None if self.plastic else v.astype(np.float64)))
        self.max_delay = max((g.delay for g in self.groups), default=0)
        if self.plastic:
            self.mask = np.zeros(proj.shape, bool)
            self.mask[rows, cols] = True
            self.w0 = np.zeros(proj.shape)
            self.w0[rows, cols] = vals
            self.trials = batch if learn_mode == "independent" else 1
            self.learn_mode = learn_mode
        self.batch = batch
        self.reset()

    def reset(self, keep_weights: bool = False) -> None:
        if not self.plastic:
            return
        if not keep_weights:
            self.w = np.repeat(self.w0[None], self.trials, axis=0)
        self.rule_state = self.rule.init(self.batch, self.n_post, self.n_pre)

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int, delay: int | None = None) -> None:
        """Add the input that ``spikes`` ([batch, pre] counts, step ``t``) cause to ``ring``
        (slots x batch x post); only the groups of total delay ``delay`` if given, else all
        groups of delay > 0."""
        b_idx, pre_idx = np.nonzero(spikes)
        if b_idx.size == 0:
            return
        counts = spikes[b_idx, pre_idx].astype(np.float64)
        for g in self.groups:
            if (g.delay != delay) if delay is not None else g.delay == 0:
                continue
            n_syn = g.indptr[pre_idx + 1] - g.indptr[pre_idx]
            total = int(n_syn.sum())
            if total == 0:
                continue
            # the synapses of every (trial, pre neuron) that spiked, pre neuron by pre neuron
            starts = np.repeat(g.indptr[pre_idx] - np.concatenate([[0], np.cumsum(n_syn)[:-1]]), n_syn)
            seg = starts + np.arange(total)
            trial = np.repeat(b_idx, n_syn)
            if g.values is not None:
                w = g.values[seg]
            else:  # plastic: this step's weights of each trial (or the shared ones)
                w = self.w[trial if self.trials > 1 else 0, g.post[seg], g.pre[seg]]
            w = w * np.repeat(counts, n_syn)
            acc = np.bincount(trial * self.n_post + g.post[seg], weights=w, minlength=self.batch * self.n_post)
            ring[(t + g.delay) % ring.shape[0]] += acc.reshape(self.batch, self.n_post)

    def learn(self, pre: np.ndarray, post: np.ndarray, reward: np.ndarray | None) -> None:
        pre, post = pre.astype(np.float64), post.astype(np.float64)
        if isinstance(self.rule, RstdpFloat):
            dw = self.rule.step(self.rule_state, pre, post, reward)
        else:
            dw = self.rule.step(self.rule_state, pre, post)
        dw = dw * self.mask  # a sparse projection learns only on the synapses it has
        if self.trials == 1 and self.batch > 1:  # shared weights: every trial's update added to one set
            dw = dw.sum(axis=0, keepdims=True)
        self.w += dw


def float_rule(proj, dt_ms: float):
    """The float form of a plastic projection's rule (``None`` for a rule this simulator does
    not run), its parameters checked as the lowering checks them (unknown keys, required
    ones, finite, positive times)."""
    spec = proj.plasticity
    if spec is None or spec.name not in RULES:
        return None
    ctx = LoweringContext(proj.name, None, dt_ms, 1.0)  # type: ignore[arg-type]  # only for the checks
    module = _stdp if spec.name == "stdp" else _rstdp
    p = require(dict(spec.params), module.DEFAULTS, ctx, spec.name)
    p.pop("trace_impulse")  # the engine's trace scale; the float rule has none
    cls = StdpFloat if spec.name == "stdp" else RstdpFloat
    return cls(dt_ms=dt_ms, **p)


class Reference:
    """Run a float Network in float64: ``Reference(net, dt_ms, conventions, batch).run(steps,
    inputs, record, learn)``. See the module docstring for the step and the conventions.

    ``dt_ms``: the time step (ms). ``conventions``: default ``Conventions.chip()`` (the
    emulator's order, latency 1). ``batch``: independent trials run together; trial ``b``
    equals the same trial run alone. ``seed``: for parity with the Emulator; nothing here
    draws from it (Poisson inputs use their population's own seed, as on the emulator).
    ``learn_mode``: with a batch, ``"independent"`` (each trial learns its own weights) or
    ``"shared"`` (one set of weights, every trial's update added to it).
    """

    def __init__(
        self,
        network: Network,
        dt_ms: float = 1.0,
        conventions: Conventions | None = None,
        batch: int = 1,
        seed: int = 0,
        learn_mode: str = "independent",
    ):
        problems = []
        if not (isinstance(dt_ms, (int, float)) and math.isfinite(dt_ms) and dt_ms > 0):
            problems.append(Problem("reference", f"dt_ms must be a finite time > 0 ms, got {dt_ms!r}"))
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            problems.append(Problem("reference", f"batch must be an integer >= 1, got {batch!r}"))
        if learn_mode not in ("independent", "shared"):
            problems.append(Problem("reference", f"learn_mode must be 'independent' or 'shared', got {learn_mode!r}"))
        if problems:
            raise ReferenceError(problems)
        self.network = network
        self.dt_ms = float(dt_ms)
        self.conventions = conventions or Conventions.chip()
        self.batch = batch
        self.seed = seed
        self.learn_mode = learn_mode
        c = self.conventions
        self.pops: dict[str, _Pop] = {}
        for p in network.populations:
            kind = {SpikeInput: "input", ALIF: "alif", LIF: "lif", LI: "li"}.get(type(p.neuron))
            if kind is None:
                problems.append(Problem(f"population {p.name!r}", f"neuron model {p.neuron.model} is not supported"))
                continue
            self.pops[p.name] = _Pop(p.name, p.size, kind, p.neuron, self._constants(p, kind))
        self.projs: list[_Proj] = []
        self._rules_not_run: list[tuple[str, str]] = []
        for pr in network.projections:
            pre, post = self.pops.get(pr.pre), self.pops.get(pr.post)
            if pre is None or post is None:
                continue
            if pre.kind == "input":
                lat = c.input_latency
            elif post.kind == "li":
                lat = c.readout_latency
            else:
                lat = c.recurrent_latency
            if pr.port != "syn":
                problems.append(Problem(f"projection {pr.name!r}", f"port {pr.port!r}: {_ONE_CURRENT}"))
                continue
            if pre.kind != "input" and post.kind != "li" and lat + int(np.min(pr.delay_steps)) == 0:
                problems.append(
                    Problem(
                        f"projection {pr.name!r}",
                        f"total delay 0 between spiking populations (recurrent_latency {lat} and delay_steps 0) "
                        "would need an update order inside the step; give it a latency or delay of at least 1",
                    )
                )
                continue
            try:
                rule = float_rule(pr, self.dt_ms)
            except NeurocompError as exc:
                problems += exc.problems
                continue
            if pr.plasticity is not None and rule is None:
                self._rules_not_run.append((pr.name, pr.plasticity.name))
            self.projs.append(_Proj(pr, lat, batch, learn_mode, rule))
        if problems:
            raise ReferenceError(problems, header=f"the reference cannot run network {network.name!r}")
        self.plastic = {p.name: p for p in self.projs if p.plastic}
        self._slots = {
            name: 1 + max([pr.max_delay for pr in self.projs if pr.post == name], default=0) for name in self.pops
        }
        self.reset()

    def _constants(self, p, kind: str) -> dict[str, Any]:
        """Per-step constants of a population: the step's (:func:`.neuron.constants`, exact
        decays), the input scale and the bias."""
        if kind == "input":
            return {}
        dt, n, c = self.dt_ms, p.neuron, self.conventions
        dv = math.exp(-dt / n.tau_mem_ms)
        kw: dict[str, Any] = {"du": 0.0 if n.tau_syn_ms is None else math.exp(-dt / n.tau_syn_ms)}
        if kind in ("lif", "alif"):
            kw.update(v_th=float(n.v_th), zero=n.reset == "zero", v_reset=float(n.v_reset))
            kw.update(next_step=c.reset_timing == "next_step", n_ref=int(n.refractory_steps))
            kw.update(hold=c.reset_timing == "immediate")  # the chip's refractoriness holds v
        if kind == "alif":
            kw.update(rho=math.exp(-dt / n.tau_adapt_ms), beta=float(n.beta))
        return {
            "k": neuron.constants(p.size, dv, **kw),
            "scale": 1.0 - dv if c.input_scale == "one_minus_alpha" else 1.0,
            "bias": np.full((self.batch, p.size), float(n.bias)),
        }

    # -- state ---------------------------------------------------------------------------
    def reset(self, keep_weights: bool = False) -> None:
        """Every state to rest (zero) and the step counter to 0; Poisson inputs restart from
        their seeds. ``keep_weights``: plastic projections keep what they learned (their
        traces restart)."""
        b = self.batch
        for p in self.pops.values():
            zero = np.zeros((b, p.size))
            p.state = {"spikes": zero.copy()}
            if p.kind != "input":
                p.state.update(u=zero.copy(), v=zero.copy(), input=np.zeros((self._slots[p.name], b, p.size)))
                p.work = {k: zero.copy() for k in ("v", "a", "refr", "th")}
            if p.kind in ("lif", "alif"):
                p.state.update({k: zero.copy() for k in ("refractory", "v_pre", "th_pre")})
                p.work.update(v=p.state["v_pre"], refr=p.state["refractory"], th=p.state["th_pre"])
            else:  # an LI does not reset: its membrane is the step's
                p.work["v"] = p.state.get("v")
            if p.kind == "alif":
                p.state["a"] = zero.copy()
        for pr in self.projs:
            pr.reset(keep_weights)
        self._input_rngs = {  # the emulator's Poisson streams (inputs.PoissonSource)
            name: PoissonSource.of(p.neuron.__dict__, self.dt_ms, p.size, self.batch, f"input {name!r}")
            for name, p in self.pops.items()
            if p.kind == "input" and p.neuron.poisson
        }
        self.t = 0

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of every state, keyed ``<population>/<var>`` and ``<projection>/<var>``."""
        out = {f"{n}/{k}": v.copy() for n, p in self.pops.items() for k, v in p.state.items() if k != "input"}
        for pr in self.plastic.values():
            out[f"{pr.name}/w"] = pr.w.copy()
            out.update({f"{pr.name}/{k}": v.copy() for k, v in pr.rule_state.items()})
        return out

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        steps: int,
        inputs: Mapping[str, np.ndarray] | None = None,
        record: tuple[str, ...] | list[str] = ("spikes",),
        learn: bool = False,
    ) -> dict[str, np.ndarray]:
        """Run ``steps`` steps from the current state. ``inputs``: input population name ->
        spikes ``[steps, batch, n]`` or ``[steps, n]`` (row ``i`` is emitted at step ``t + i +
        1``), and ``<projection>/reward`` -> the reward of an R-STDP projection ``[steps,
        batch, post]`` or ``[steps, post]``. ``record``: variables from
        :data:`RECORDABLE`. Returns ``{"<population>/<var>": [steps, batch, n]}`` and
        ``{"<projection>/<var>": [steps, trials, ...]}``."""
        if learn and self._rules_not_run:
            raise ReferenceError(
                [
                    Problem(f"projection {name!r}", f"rule {rule!r} is not run by this simulator (it runs {RULES})")
                    for name, rule in self._rules_not_run
                ]
            )
        bad = [v for v in record if v not in RECORDABLE]
        if bad:
            raise ReferenceError(
                [Problem("record", f"unknown variable {v!r} (known: {', '.join(RECORDABLE)})") for v in bad]
            )
        given = self._check_inputs(inputs or {}, steps)
        out: dict[str, np.ndarray] = {}
        sinks = []
        for name, p in self.pops.items():
            for var in record:
                if var in p.state:
                    arr = np.zeros((steps, self.batch, p.size), np.uint8 if var == "spikes" else np.float64)
                    out[f"{name}/{var}"] = arr
                    sinks.append((arr, p.state, var))
        for name, pr in self.plastic.items():
            for var in record:
                if var == "w":
                    out[f"{name}/w"] = np.zeros((steps,) + pr.w.shape)
                elif var in pr.rule_state:
                    out[f"{name}/{var}"] = np.zeros((steps,) + pr.rule_state[var].shape)
        for i in range(steps):
            self.step({k: v[i] for k, v in given.items()}, learn=learn)
            for arr, st, var in sinks:
                arr[i] = st[var]
            for name, pr in self.plastic.items():
                for var in record:
                    if f"{name}/{var}" in out:
                        out[f"{name}/{var}"][i] = pr.w if var == "w" else pr.rule_state[var]
        return out

    def _check_inputs(self, inputs: Mapping[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
        problems, given = [], {}
        for key, arr in inputs.items():
            proj, _, var = key.rpartition("/")
            if var == "reward" and proj in self.plastic and isinstance(self.plastic[proj].rule, RstdpFloat):
                n, where = self.plastic[proj].n_post, f"input {key!r}"
            elif key in self.pops and self.pops[key].kind == "input":
                n, where = self.pops[key].size, f"input {key!r}"
            else:
                problems.append(
                    Problem(f"input {key!r}", "is not an input population or an R-STDP projection's '<name>/reward'")
                )
                continue
            a = per_trial(arr, steps, self.batch, n, where, problems)
            if a is None:
                continue
            if var != "reward" and a.size and (a.min() < 0 or not np.all(a == np.round(a))):
                problems.append(Problem(where, "spike counts must be integers >= 0"))
                continue
            given[key] = a
        problems += unfed_inputs({name: p.kind for name, p in self.pops.items()}, given, self._input_rngs)
        if problems:
            raise ReferenceError(problems)
        return given

    def step(self, inputs: Mapping[str, np.ndarray] | None = None, learn: bool = False) -> None:
        """Advance one step (see the module docstring for the order)."""
        t = self.t + 1
        inputs = inputs or {}
        for name, p in self.pops.items():
            if p.kind != "input":
                continue
            if name in inputs:
                p.state["spikes"] = np.asarray(inputs[name], dtype=np.float64).copy()
            else:  # frozen Poisson: the emulator's draws, per trial or shared
                p.state["spikes"] = self._input_rngs[name].step().astype(np.float64)
        for pr in self.projs:  # inputs with total delay 0 act in this step
            if self.pops[pr.pre].kind == "input":
                pr.deliver(self.pops[pr.pre].state["spikes"], self.pops[pr.post].state["input"], t, delay=0)
        for p in self.pops.values():
            if p.kind in ("lif", "alif"):
                self._update(p, t)
        for pr in self.projs:  # spikes of this step reach readouts with total delay 0
            if self.pops[pr.pre].kind != "input":
                pr.deliver(self.pops[pr.pre].state["spikes"], self.pops[pr.post].state["input"], t, delay=0)
        for p in self.pops.values():
            if p.kind == "li":
                self._update(p, t)
        for pr in self.projs:
            pr.deliver(self.pops[pr.pre].state["spikes"], self.pops[pr.post].state["input"], t)
        if learn:
            for name, pr in self.plastic.items():
                reward = inputs.get(f"{name}/reward")
                pr.learn(self.pops[pr.pre].state["spikes"], self.pops[pr.post].state["spikes"], reward)
        self.t = t

    def _update(self, p: _Pop, t: int) -> None:
        """Step ``t`` of a LIF, ALIF or LI population (:func:`.neuron.step`)."""
        st, c, w = p.state, p.const, p.work
        ring = st["input"]
        slot = t % ring.shape[0]
        x = ring[slot] * c["scale"]
        ring[slot] = 0.0
        neuron.step(c["k"], w["v"], st["u"], w["a"], st["spikes"], w["refr"], x, c["bias"], -1.0, w["th"], st["v"])
        if p.kind == "alif":  # a as the chip shows it: with this step's jump when it acts at once
            st["a"] = w["a"] + st["spikes"] if self.conventions.reset_timing == "immediate" else w["a"].copy()
