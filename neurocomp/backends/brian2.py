"""Run a float Network in Brian2 (2.9), step for step as the float reference runs it.

Brian2 is the float simulator neuroscientists trust; this backend is how neurocomp's float
dynamics and STDP are validated against an independent code. It translates the float
:class:`~neurocomp.graph.Network` (not a compiled Program) into Brian2 ``NeuronGroup``\\ s,
``SpikeGeneratorGroup``\\ s and ``Synapses``, with Brian2's exact integration of the linear
decays, its thresholds, resets, refractoriness, synaptic delays and event-driven STDP
traces, and returns recordings in the emulator's format. The step semantics are those of
:class:`neurocomp.reference.Reference` under the same
:class:`~neurocomp.reference.conventions.Conventions`; the tests require both to agree to
1e-9.

How the discrete-time conventions map onto Brian2's schedule. Every object runs on one
explicit ``Clock`` of ``dt``; Brian2 step ``k`` (time ``k * dt``) is neurocomp step
``t = k + 1``. Within a step Brian2 runs, in this order:

``start``
    spike inputs (``SpikeGeneratorGroup``, ``when="start"``) emit their step-``t`` spikes.
``before_groups``
    projections from inputs with total delay 0 (``input_latency`` 0, delay 0) deliver.
``groups``
    LIF/ALIF state updaters integrate ``dv/dt = -v/tau_mem``, ``du/dt = -u/tau_syn`` and
    ``da/dt = -a/tau_adapt`` exactly over ``dt`` (Brian2's ``exact`` method: the decays
    ``exp(-dt/tau)``); then one ``run_regularly`` operation does the discrete part: ``u +=
    s * a_in`` (``a_in``: the input that arrived for this step; ``s`` = 1 or ``1 - dv``),
    ``v += u + bias`` (the per-step bias; not while refractory under the chip's
    refractoriness), and under ``reset_timing="next_step"`` the pending reset ``v -= v_th *
    zp`` and adaptation ``a += zp`` (``zp``: spiked last step). Delta synapses (no
    ``tau_syn_ms``) set ``u = s * a_in`` instead.
``thresholds``
    ``v > v_th`` (ALIF: ``v > v_th + beta * a``), with Brian2's refractoriness masking it.
``after_thresholds``
    projections from spiking populations onto leaky readouts with total delay 0
    (``readout_latency`` 0) deliver.
``before_synapses``
    leaky readouts (LI) integrate and take their input, as above: after the spiking
    populations, so a zero-latency readout sees this step's spikes.
``synapses``
    every other projection delivers: ``a_in_post += w`` with Brian2 delay
    ``latency + delay_steps - 1`` steps, so the input reaches the update of step ``t +
    latency + delay_steps`` (the ``- 1``: delivery happens after this step's update, into
    the accumulator the next update reads); then STDP's pre and post pathways.
``resets``
    ``"zero"``: ``v = v_reset``; ``"subtract"``: ``v -= v_th`` (``"immediate"``) or ``zp =
    1`` (``"next_step"``, applied by the next update, undecayed); ALIF ``a += 1`` at once or
    through ``zp``.
``end``
    state monitors record ``v``, ``u``, ``a`` and ``w`` after the reset, as the emulator
    records; ``v_pre`` and ``th_pre`` are recorded in ``before_thresholds``.

Refractoriness (``refractory_steps`` R): Brian2's ``refractory=(R + 1) * dt``, because Brian2
counts the spike's own step (``timestep(t - lastspike) >= R + 1`` is the first step allowed
to spike again). Under ``"immediate"`` (the chip's) ``v`` is held with ``(unless
refractory)`` and the bias and input are not added; under ``"next_step"`` (Bellec's) ``v``
integrates and only the spike is masked.

Plastic projections (pair STDP, ``learn=True``): weights change while spikes are in
flight, and neurocomp (as the chip) reads a weight when the spike is sent, Brian2 when it
arrives. So a plastic projection delivers with Brian2 delay 0 into a per-population delay
line ``dl_1 .. dl_K`` that the post update shifts into ``a_in`` one slot per step: the
same arrival step, with the weight of the emission step. The rule is
:class:`~neurocomp.rules.stdp.StdpFloat` (its parameters are read through the same
function as the reference): event-driven traces ``x`` (pre) and ``y`` (post), each
decayed exactly to the current step then incremented by 1; the pre pathway (Brian2 delay 0,
emission time) adds ``-lr a_minus y`` and the post pathway ``lr a_plus x``, with ``x``
already holding a same-step pre spike; the post pathway also adds the same-step pair's
``-lr a_minus`` that the pre pathway could not see (``tpre`` marks the step of the last pre
spike).

Batches: trial ``b`` is a copy of the network (neuron ``b * n + j``, synapses only within a
copy), so all trials run in one Brian2 run. Each :meth:`Brian2Backend.run` builds a fresh
Brian2 ``Network`` from rest: nothing is shared between runs, and Brian2's global state
(``defaultclock``, the magic network, the code-generation target preference, which is set
for the build and run and then restored) is left as it was.

Not supported (a :class:`~neurocomp.backends.BackendError` names each): rules other than
``stdp`` with ``learn=True``, a plastic projection with per-synapse delays, zero total delay
between spiking populations, more than one spike per step on an input, and recording the
traces of a rule (Brian2 updates event-driven traces only at events).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping

import numpy as np

from ..errors import NeurocompError, Problem
from ..graph import ALIF, LI, LIF, Network, SpikeInput
from ..graph.inputs import PoissonSource, spike_counts, unfed
from ..graph.weights import SparseWeights
from ..reference.conventions import Conventions
from ..reference.simulator import float_rule
from .errors import BackendError, BackendUnavailable, unrecordable

_INSTALL = "Brian2 is not installed. Install neurocomp's Brian2 extra: pip install 'neurocomp[brian2]'"
CODEGEN_TARGETS = ("numpy", "cython")
POPULATION_VARS = ("spikes", "v", "u", "a", "v_pre", "th_pre")
RECORDABLE = POPULATION_VARS + ("w",)


def _brian2():
    try:
        import brian2
    except ImportError as exc:
        raise BackendUnavailable([Problem("brian2 backend", f"{_INSTALL} ({exc})")]) from None
    return brian2


def brian2_available() -> bool:
    try:
        _brian2()
    except BackendUnavailable:
        return False
    return True


@contextlib.contextmanager
def _codegen_target(b2, target: str) -> Iterator[None]:
    """Brian2 reads its code-generation target from a global preference when it builds and
    runs; set it for this backend only and put the previous value back."""
    old = b2.prefs.codegen.target
    b2.prefs.codegen.target = target
    try:
        yield
    finally:
        b2.prefs.codegen.target = old


class Brian2Backend:
    """``Brian2Backend(network, dt_ms, conventions, codegen).run(steps, inputs, record, batch,
    learn)``: the float network in Brian2, recordings in the emulator's format
    (``{"<population>/<var>": [steps, batch, n]}``, ``{"<projection>/w": [steps, batch,
    post, pre]}``). See the module docstring for how each convention maps.

    ``dt_ms``: the time step (ms). ``conventions``: default ``Conventions.chip()``.
    ``codegen``: Brian2's code-generation target, ``"numpy"`` (default: no compilation, fast
    start-up) or ``"cython"`` (compiled; a slow first build, cached on disk by Brian2).
    After a run, ``timings`` holds ``build_s`` (objects, code generation and compilation:
    a run of 0 steps) and ``run_s`` (Brian2's run of the steps alone).
    """

    def __init__(
        self,
        network: Network,
        dt_ms: float = 1.0,
        conventions: Conventions | None = None,
        codegen: str = "numpy",
    ):
        self.b2 = _brian2()
        problems = []
        if codegen not in CODEGEN_TARGETS:
            problems.append(
                Problem("brian2 backend", f"codegen {codegen!r} is not one of {', '.join(CODEGEN_TARGETS)}")
            )
        if not (isinstance(dt_ms, (int, float)) and math.isfinite(dt_ms) and dt_ms > 0):
            problems.append(Problem("brian2 backend", f"dt_ms must be a finite time > 0 ms, got {dt_ms!r}"))
        self.network = network
        self.dt_ms = float(dt_ms)
        self.conventions = conventions or Conventions.chip()
        self.codegen = codegen
        self.timings: dict[str, float] = {}
        kinds = {SpikeInput: "input", ALIF: "alif", LIF: "lif", LI: "li"}
        self.kinds: dict[str, str] = {}
        for p in network.populations:
            kind = kinds.get(type(p.neuron))
            if kind is None:
                problems.append(Problem(f"population {p.name!r}", f"neuron model {p.neuron.model} is not supported"))
            else:
                self.kinds[p.name] = kind
        self.latency: dict[str, int] = {}
        self.rules: dict[str, object] = {}
        self._unsupported_learning: list[Problem] = []
        c = self.conventions
        for pr in network.projections:
            pre, post = self.kinds.get(pr.pre), self.kinds.get(pr.post)
            if pre is None or post is None:
                continue
            lat = c.input_latency if pre == "input" else c.readout_latency if post == "li" else c.recurrent_latency
            self.latency[pr.name] = lat
            if pr.port != "syn":
                problems.append(Problem(f"projection {pr.name!r}", f"port {pr.port!r}: the backend has one current"))
            if pre != "input" and post != "li" and lat + int(np.min(pr.delay_steps)) == 0:
                problems.append(
                    Problem(
                        f"projection {pr.name!r}",
                        f"total delay 0 between spiking populations (recurrent_latency {lat}, delay_steps 0) is "
                        "not supported: it would need an update order inside the step",
                    )
                )
            if pr.plasticity is None:
                continue
            if pr.plasticity.name != "stdp":
                self._unsupported_learning.append(
                    Problem(
                        f"projection {pr.name!r}",
                        f"rule {pr.plasticity.name!r}: the Brian2 backend runs pair STDP ('stdp') only",
                    )
                )
                continue
            if np.ndim(pr.delay_steps):
                self._unsupported_learning.append(
                    Problem(
                        f"projection {pr.name!r}",
                        "a plastic projection with per-synapse delays is not supported (give one delay_steps)",
                    )
                )
                continue
            try:
                self.rules[pr.name] = float_rule(pr, self.dt_ms)
            except NeurocompError as exc:
                problems += exc.problems
        if problems:
            raise BackendError(problems, header=f"the Brian2 backend cannot run network {network.name!r}")

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        steps: int,
        inputs: Mapping[str, np.ndarray] | None = None,
        record: tuple[str, ...] | list[str] = ("spikes",),
        batch: int = 1,
        learn: bool = False,
    ) -> dict[str, np.ndarray]:
        """Run ``steps`` steps from rest, ``batch`` independent trials. ``inputs``: input
        population -> spikes ``[steps, batch, n]`` or ``[steps, n]`` (0 or 1 per step; inputs
        with a rate need none and get the emulator's frozen Poisson spikes). ``record``:
        ``spikes``, ``v``, ``u``, ``a``, ``v_pre``, ``th_pre`` and, with ``learn=True``, ``w``.
        ``learn``: run the STDP of plastic projections (otherwise their weights are static)."""
        b2 = self.b2
        problems = unrecordable(record, RECORDABLE, "Brian2")
        if learn:
            problems += self._unsupported_learning
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            problems.append(Problem("brian2 backend", f"batch must be an integer >= 1, got {batch!r}"))
        if problems:
            raise BackendError(problems)
        rasters = self._rasters(inputs or {}, steps, batch)
        with _codegen_target(b2, self.codegen):
            t0 = time.perf_counter()
            net, monitors = self._build(rasters, steps, batch, record, learn)
            net.run(0 * b2.second, namespace={})  # code generation (and compilation) only
            t1 = time.perf_counter()
            net.run(steps * self._clock.dt, namespace={})
            t2 = time.perf_counter()
        self.timings = {"build_s": t1 - t0, "run_s": t2 - t1}
        out = self._collect(monitors, steps, batch)
        if "spikes" in record:
            for p in self.network.populations:
                if self.kinds[p.name] == "li":
                    out[f"{p.name}/spikes"] = np.zeros((steps, batch, p.size), np.uint8)
        return {k: v for k, v in out.items() if k.rpartition("/")[2] in record}

    def _rasters(self, inputs: Mapping[str, np.ndarray], steps: int, batch: int) -> dict[str, np.ndarray]:
        problems, out = [], {}
        for key in inputs:
            if self.kinds.get(key) != "input":
                problems.append(Problem(f"input {key!r}", "is not an input population of the network"))
        for p in self.network.populations:
            if self.kinds.get(p.name) != "input":
                continue
            if p.name in inputs:  # Brian2's SpikeGeneratorGroup sends at most one spike per step
                a = spike_counts(inputs[p.name], steps, batch, p.size, 1, f"input {p.name!r}", problems)
                if a is not None:
                    out[p.name] = a[:steps].astype(bool)
            elif p.neuron.poisson:  # the emulator's frozen draws, per trial or shared
                try:
                    src = PoissonSource.of(p.neuron.__dict__, self.dt_ms, p.size, batch, f"input {p.name!r}")
                except NeurocompError as exc:
                    problems += exc.problems
                    continue
                out[p.name] = src.raster(steps).astype(bool)
            else:
                problems.append(unfed(p.name))
        if problems:
            raise BackendError(problems)
        return out

    def _build(self, rasters, steps: int, batch: int, record, learn: bool):
        b2 = self.b2
        clock = self._clock = b2.Clock(dt=self.dt_ms * b2.ms, name="neurocomp_clock*")
        line = self._delay_lines(learn)
        objects: list = []
        groups: dict[str, object] = {}
        for p in self.network.populations:
            N = p.size * batch
            if self.kinds[p.name] == "input":
                groups[p.name] = self._input_group(p.name, rasters[p.name].reshape(steps, N), clock)
                objects.append(groups[p.name])
            else:
                groups[p.name], update = self._neuron_group(p, N, clock, line[p.name])
                objects += [groups[p.name], update]
        syn_records = {}
        for pr in self.network.projections:
            S, rec_w = self._synapses(pr, groups, clock, batch, learn, line)
            objects.append(S)
            if rec_w is not None and "w" in record:
                syn_records[pr.name] = rec_w
        monitors = self._monitors(groups, syn_records, record, clock)
        objects += [m[0] if isinstance(m, tuple) else m for m in monitors.values()]
        return b2.Network(*objects, name="neurocomp_network*"), monitors

    def _delay_lines(self, learn: bool) -> dict[str, int]:
        """The longest delay line each population needs (plastic projections deliver into it)."""
        line = {name: 0 for name in self.kinds}
        for pr in self.network.projections:
            if learn and pr.name in self.rules:
                line[pr.post] = max(line[pr.post], self._brian_delay(pr, int(pr.delay_steps)))
        return line

    def _input_group(self, name: str, raster: np.ndarray, clock):
        """A spike input replaying ``raster`` ``[steps, neurons x batch]``."""
        k_idx, idx = np.nonzero(raster)
        return self.b2.SpikeGeneratorGroup(
            raster.shape[1], idx, k_idx * clock.dt, clock=clock, when="start", sorted=True, name=f"{_ident(name)}*"
        )

    def _neuron_group(self, p, N: int, clock, line: int):
        """A neuron population (the model of :meth:`_neuron_model`) and its per-step update."""
        eqs, code, ns, kw = self._neuron_model(p, clock, line)
        # the input consumed; the delay line moves one slot toward it
        shift = [f"a_in = {'dl_1' if line else '0'}"]
        shift += [f"dl_{i} = dl_{i + 1}" for i in range(1, line)]
        shift += [f"dl_{line} = 0"] if line else []
        g = self.b2.NeuronGroup(
            N, "\n".join(eqs), method="exact", clock=clock, namespace=ns, name=f"{_ident(p.name)}*", **kw
        )
        when = "before_synapses" if self.kinds[p.name] == "li" else "groups"
        g.state_updater.when = when
        op = g.run_regularly("\n".join(code + shift), when=when, order=1, name=f"{g.name}_update")
        return g, op

    def _neuron_model(self, p, clock, line: int) -> tuple[list[str], list[str], dict, dict]:
        """The equations, the per-step update code, the namespace and the threshold, reset and
        refractoriness of population ``p`` under the conventions (see the module docstring)."""
        ms, c, kind, nm = self.b2.ms, self.conventions, self.kinds[p.name], p.neuron
        next_step = c.reset_timing == "next_step"
        refr = kind != "li" and nm.refractory_steps > 0
        hold = refr and not next_step  # the chip's refractoriness holds v
        ns = {"tau_m": nm.tau_mem_ms * ms, "bias": float(nm.bias)}
        ns["s_in"] = 1.0 - math.exp(-self.dt_ms / nm.tau_mem_ms) if c.input_scale == "one_minus_alpha" else 1.0
        eqs = [f"dv/dt = -v / tau_m : 1{' (unless refractory)' if hold else ''}", "a_in : 1"]
        eqs += [f"dl_{i} : 1" for i in range(1, line + 1)]
        if nm.tau_syn_ms is not None:
            ns["tau_s"] = nm.tau_syn_ms * ms
            eqs.append("du/dt = -u / tau_s : 1")
            code = ["u = u + s_in * a_in"]
        else:
            eqs.append("u : 1")
            code = ["u = s_in * a_in"]
        code.append("v = v + (u + bias) * int(not_refractory)" if hold else "v = v + u + bias")
        if kind == "li":
            return eqs, code, ns, {}
        ns.update(v_th=float(nm.v_th), v_reset=float(nm.v_reset))
        eqs.append("zp : 1")
        threshold = "v > v_th"
        reset = ["v = v_reset"] if nm.reset == "zero" else ["zp = 1"] if next_step else ["v = v - v_th"]
        if next_step and nm.reset == "subtract":
            code.append("v = v - v_th * zp")
        if kind == "alif":
            ns.update(tau_a=nm.tau_adapt_ms * ms, beta=float(nm.beta))
            eqs.append("da/dt = -a / tau_a : 1")
            threshold = "v > v_th + beta * a"
            if next_step:
                code.append("a = a + zp")
                reset.append("zp = 1")
            else:
                reset.append("a = a + 1")
        if next_step:
            code.append("zp = 0")
        kw = {"threshold": threshold, "reset": "\n".join(dict.fromkeys(reset))}
        if refr:
            kw["refractory"] = (nm.refractory_steps + 1) * clock.dt
        return eqs, code, ns, kw

    def _monitors(self, groups, syn_records, record, clock) -> dict[str, object]:
        """Monitors of the recorded variables: spikes, the states after the step, the states
        before the threshold (``v_pre``, ``th_pre``) and plastic weights."""
        b2 = self.b2
        monitors: dict[str, object] = {}
        for p in self.network.populations:
            g, kind = groups[p.name], self.kinds[p.name]
            if "spikes" in record and kind != "li":  # a readout never spikes: zeros, as on the emulator
                monitors[f"{p.name}/spikes"] = b2.SpikeMonitor(g, name=f"{g.name}_spikes")
            if kind == "input":
                continue
            for var in ("v", "u") + (("a",) if kind == "alif" else ()):
                if var in record:
                    monitors[f"{p.name}/{var}"] = b2.StateMonitor(
                        g, var, record=True, when="end", clock=clock, name=f"{g.name}_mon_{var}"
                    )
            if kind != "li" and ({"v_pre", "th_pre"} & set(record)):
                pre_vars = ["v"] + (["a"] if kind == "alif" else [])
                monitors[f"{p.name}/@pre"] = b2.StateMonitor(
                    g, pre_vars, record=True, when="before_thresholds", clock=clock, name=f"{g.name}_mon_pre"
                )
        for name, (S, rows, cols) in syn_records.items():
            monitors[f"{name}/w"] = (
                b2.StateMonitor(S, "w", record=True, when="end", clock=clock, name=f"{S.name}_mon_w"),
                rows,
                cols,
            )
        return monitors

    def _brian_delay(self, pr, delay: np.ndarray | int):
        """Brian2 delay in steps of a synapse with ``delay`` steps (see the module docstring):
        total delay minus 1 in the ``synapses`` slot, the total delay itself in an early slot."""
        total = self.latency[pr.name] + np.asarray(delay)
        return total - (0 if self._early(pr) else 1)

    def _early(self, pr) -> bool:
        """Whether ``pr`` delivers before the post update of the step (some synapse has total
        delay 0: an input with input_latency 0, or a readout with readout_latency 0)."""
        return self.latency[pr.name] + int(np.min(pr.delay_steps)) == 0

    def _synapses(self, pr, groups, clock, batch: int, learn: bool, line: Mapping[str, int]):
        b2 = self.b2
        n_post, n_pre = pr.shape
        w = pr.weights
        if isinstance(w, SparseWeights):
            rows, cols, vals = w.rows.astype(np.int64), w.cols.astype(np.int64), w.values
        else:
            rows, cols = np.divmod(np.arange(w.size, dtype=np.int64), n_pre)
            vals = w.reshape(-1)
        delay = np.broadcast_to(np.asarray(pr.delay_steps, dtype=np.int64).reshape(-1), vals.shape)
        offs = np.arange(batch, dtype=np.int64)[:, None]
        i = (offs * n_pre + cols[None, :]).reshape(-1)
        j = (offs * n_post + rows[None, :]).reshape(-1)
        pre_g, post_g = groups[pr.pre], groups[pr.post]
        early = self._early(pr)
        name = f"{_ident(pr.name)}*"
        plastic = learn and pr.name in self.rules
        if not plastic:
            S = b2.Synapses(pre_g, post_g, "w : 1", on_pre="a_in_post += w", clock=clock, name=name)
            S.connect(i=i, j=j)
            S.w = np.tile(vals, batch)
            S.delay = np.tile(self._brian_delay(pr, delay), batch) * clock.dt
            if early:
                S.pre.when = "before_groups" if self.kinds[pr.pre] == "input" else "after_thresholds"
            return S, None
        rule = self.rules[pr.name]
        d = int(self._brian_delay(pr, int(pr.delay_steps)))
        target = "a_in_post" if d == 0 else f"dl_{d}_post"
        ns = {
            "tau_plus": rule.tau_plus_ms * b2.ms,
            "tau_minus": rule.tau_minus_ms * b2.ms,
            "eta_plus": rule.lr * rule.a_plus,
            "eta_minus": rule.lr * rule.a_minus,
        }
        model = """w : 1
                   dx/dt = -x / tau_plus : 1 (event-driven)
                   dy/dt = -y / tau_minus : 1 (event-driven)
                   tpre : second"""
        S = b2.Synapses(
            pre_g,
            post_g,
            model,
            on_pre={"transmit": f"{target} += w", "learn": "x += 1\nw = w - eta_minus * y\ntpre = t"},
            on_post="y += 1\nw = w + eta_plus * x - eta_minus * int(abs(t - tpre) < 0.5 * dt)",
            clock=clock,
            namespace=ns,
            name=name,
        )
        S.connect(i=i, j=j)
        S.w = np.tile(vals, batch)
        S.tpre = -1 * b2.second  # no pre spike yet
        # the weight is read when the spike is sent (delay 0), before this step's learning
        S.transmit.delay = 0 * b2.ms
        S.learn.delay = 0 * b2.ms
        S.transmit.order, S.learn.order, S.post.order = -3, -2, 1
        if early:
            S.transmit.when = "before_groups" if self.kinds[pr.pre] == "input" else "after_thresholds"
        return S, (S, rows, cols)

    def _collect(self, monitors: Mapping[str, object], steps: int, batch: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        dt = float(self._clock.dt)
        for key, mon in monitors.items():
            name, var = key.split("/", 1)
            if var == "spikes":
                n = self.network.population(name).size
                arr = np.zeros((steps, batch * n), np.uint8)
                k = np.round(np.asarray(mon.t[:] / self.b2.second) / dt).astype(np.int64)
                arr[k, np.asarray(mon.i[:])] = 1
                out[key] = arr.reshape(steps, batch, n)
            elif var == "w":
                m, rows, cols = mon
                n_post, n_pre = self.network.projection(name).shape
                vals = np.asarray(m.w[:]).T.reshape(steps, batch, -1)  # [steps, batch, synapses]
                arr = np.zeros((steps, batch, n_post, n_pre))
                arr[:, :, rows, cols] = vals
                out[key] = arr
            elif var == "@pre":
                p = self.network.population(name)
                v = np.asarray(mon.v[:]).T.reshape(steps, batch, p.size)
                out[f"{name}/v_pre"] = v
                th = np.full(v.shape, float(p.neuron.v_th))
                if self.kinds[name] == "alif":
                    th = th + float(p.neuron.beta) * np.asarray(mon.a[:]).T.reshape(steps, batch, p.size)
                out[f"{name}/th_pre"] = th
            else:
                n = self.network.population(name).size
                out[key] = np.asarray(getattr(mon, var)[:]).T.reshape(steps, batch, n)
        return out


def _ident(name: str) -> str:
    """A Brian2 object name from a neurocomp name (letters, digits and ``_`` only)."""
    s = "".join(ch if ch.isalnum() else "_" for ch in name)
    return s if s[:1].isalpha() else f"p_{s}"
