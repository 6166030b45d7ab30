"""Run a loihi2 Program in Lava (lava-nc 0.10.0) under its fixed-point process models.

Lava's ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc`` are the public reference of
Loihi 2's integer semantics, so this backend is how the emulator is validated: the same
Program must give the same integers, bit for bit. Populations become ``LIF``, projections
``Dense`` / ``Sparse`` (or ``DelayDense`` with delays), convolutions ``Conv``
(``PyConvModelFixed``: the weight exponent folded into its weights), inputs ``RingBuffer``s, and
``Monitor``s record ``u``, ``v`` and spikes. Lava has no batch: trials run one after
another. Lava has no fixed-point ALIF, leaky readout or refractory LIF; programs with them
are refused with the construct named.

On-chip learning (``run(..., learn=True)``): a plastic projection becomes a
``LearningDense`` run by ``PyLearningDenseModelBitApproximate`` (Lava's fixed-point learning
engine) with a ``Loihi2FLearningRule`` (post traces from the post neuron's spikes, fed back
on ``s_in_bap``) or a ``Loihi3FLearningRule`` (graded post traces). Lava's LIF sends no
graded y1..y3, so LIF populations then run as :class:`RecordingLIF`: Lava's LIF process with
the ports of Lava's ``LearningNeuronProcess``, whose model is ``PyLifModelBitAcc``'s own step
followed by sending the spikes (``s_out_bap``) and y1..y3 as the three-factor tutorial does.
Learning runs are stepped one step at a time and read the learning state with ``Var.get``
after each step (a Monitor per Var costs an OS process and ~70 us per value).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from .._resources import require_memory
from ..compiler.chip_weights import chip_mantissas
from ..compiler.program import Program
from ..emulator.inputs import input_rasters
from ..errors import Problem
from ..graph.inputs import per_trial
from .errors import BackendError, BackendUnavailable, unrecordable

_INSTALL = (
    "Lava is not installed. Install neurocomp's Lava extra (CPython 3.10 only): "
    "pip install 'neurocomp[lava]', or use the project environment (make test)"
)

POPULATION_VARS = ("spikes", "v", "u")
# the emulator's names of a plastic projection's learning state -> LearningDense Vars
LEARNING_VARS = {
    "w": "weights",
    "t": "tag_1",
    "d": "tag_2",
    "x1": "x1",
    "x2": "x2",
    "y1": "y1",
    "y2": "y2",
    "y3": "y3",
}
GRADED_SOURCES = ("input", "post_trace")


def _lava():
    try:
        from lava.magma.core.learning.learning_rule import Loihi2FLearningRule, Loihi3FLearningRule
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.models import PyLearningDenseModelBitApproximate
        from lava.proc.dense.process import DelayDense, Dense, LearningDense
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIF
        from lava.proc.monitor.process import Monitor
        from lava.proc.sparse.process import DelaySparse, Sparse
        from lava.utils.weightutils import SignMode
    except ImportError as exc:  # pragma: no cover - exercised on Python 3.11 without Lava
        raise BackendUnavailable([Problem("lava backend", f"{_INSTALL} ({exc})")]) from None
    return {
        "RunSteps": RunSteps,
        "Loihi2SimCfg": Loihi2SimCfg,
        "Conv": Conv,
        "Dense": Dense,
        "DelayDense": DelayDense,
        "Sparse": Sparse,
        "DelaySparse": DelaySparse,
        "LearningDense": LearningDense,
        "PyLearningDenseModelBitApproximate": PyLearningDenseModelBitApproximate,
        "Loihi2FLearningRule": Loihi2FLearningRule,
        "Loihi3FLearningRule": Loihi3FLearningRule,
        "RingBuffer": RingBuffer,
        "LIF": LIF,
        "Monitor": Monitor,
        "SignMode": SignMode,
        **_neuron_classes(LIF),
    }


_NEURON_CLASSES: dict[str, type] = {}


def _neuron_classes(LIF) -> dict[str, type]:
    """:class:`RecordingLIF` and its model, built once Lava is imported (Lava runs its
    process models in forked processes, so classes made here need no import path)."""
    if _NEURON_CLASSES:
        return _NEURON_CLASSES
    from lava.magma.core.model.py.ports import PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import OutPort
    from lava.magma.core.process.variable import Var
    from lava.proc.lif.models import PyLifModelBitAcc

    class RecordingLIF(LIF):
        """Lava's LIF with the output ports of Lava's ``LearningNeuronProcess``
        (``s_out_bap``, ``s_out_y1..3``) and a Var ``spiked`` holding the last step's spikes.
        ``y_sources`` (in ``proc_params``): ``{"y2": {"source": "input", "values": [steps, n]}
        | {"source": "post_trace", "impulse": I, "tau": tau, "top": 2**trace_bits - 1}}`` (unlisted y: 0); None: a
        population that feeds no three-factor rule and sends nothing on these ports."""

        def __init__(self, *, y_sources: Mapping | None = None, **kwargs):
            super().__init__(y_sources=None if y_sources is None else dict(y_sources), **kwargs)
            shape = kwargs["shape"]
            self.spiked = Var(shape=shape, init=0)
            self.s_out_bap = OutPort(shape=shape)
            self.s_out_y1 = OutPort(shape=shape)
            self.s_out_y2 = OutPort(shape=shape)
            self.s_out_y3 = OutPort(shape=shape)

    class PyRecordingLIFModel(PyLifModelBitAcc):
        """``PyLifModelBitAcc``'s step, unchanged, then: keep the spikes in ``spiked``, and
        for a three-factor post population send them as the BAP and y1..y3 (types of Lava's
        ``LearningNeuronModelFixed``). A ``post_trace`` source is the R-STDP tutorial's
        neuron trace exactly as the emulator keeps it (``PlasticSynapses._neuron_trace``):
        ``y <- clip(floor(y * exp(-1/tau)) + impulse * s, 0, top)`` in float64, sent
        truncated to an integer; an ``input`` source sends row ``t - 1`` of its array at
        step ``t``, as the emulator reads ``<projection>/<y>``."""

        spiked: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
        s_out_bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
        # (precision: Lava's type annotation, not applied by its Python models; _y_sources saturates
        # the values at the profile's trace_bits)
        s_out_y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
        s_out_y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
        s_out_y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)

        def __init__(self, proc_params):
            super().__init__(proc_params)
            self.y_sources = proc_params["y_sources"]  # None: not the post population of a 3-factor rule
            self.y_trace = {}

        def run_spk(self):
            super().run_spk()
            s = self.s_out_buff
            self.spiked[:] = s
            if self.y_sources is None:
                return
            self.s_out_bap.send(s)
            for y in ("y1", "y2", "y3"):
                src = self.y_sources.get(y)
                if src is None:
                    value = np.zeros(s.shape)
                elif src["source"] == "input":
                    rows = src["values"]
                    value = rows[self.time_step - 1] if self.time_step <= len(rows) else np.zeros(s.shape)
                else:
                    prev = self.y_trace.get(y, np.zeros(s.shape))
                    v = np.floor(prev * np.exp(-1.0 / float(src["tau"])))
                    value = self.y_trace[y] = np.clip(v + float(src["impulse"]) * s, 0, src["top"])
                getattr(self, f"s_out_{y}").send(np.asarray(value).astype(np.int32))

    # Lava's @implements refuses to re-target a subclass of a model; the marker is all it sets
    # (protocol, CPU requirement and the bit_accurate_loihi/fixed_pt tags are inherited)
    PyRecordingLIFModel.implements_process = RecordingLIF
    _NEURON_CLASSES.update(RecordingLIF=RecordingLIF, PyRecordingLIFModel=PyRecordingLIFModel)
    return _NEURON_CLASSES


def lava_available() -> bool:
    try:
        _lava()
    except BackendUnavailable:
        return False
    return True


class LavaBackend:
    """``LavaBackend(program).run(steps, inputs, record, learn=...)``, with the emulator's
    arguments and recording format (``{"<population>/<var>": [steps, batch, neurons]}``,
    and with ``learn=True`` ``{"<projection>/<var>": [steps, batch, ...]}`` for ``w``, ``t``,
    ``d`` (``[post, pre]``), ``x1``, ``x2`` (``[pre]``) and ``y1``..``y3`` (``[post]``))."""

    def __init__(self, program: Program):
        self.program = program
        problems = []
        if program.profile.validation_backend != "lava":
            problems.append(
                Problem(
                    "program",
                    f"compiled for {program.profile.name}, whose semantics Lava does not "
                    f"model (only profiles validated by Lava, e.g. loihi2)",
                )
            )
        for p in program.populations:
            if p.model not in ("LIF", "SpikeInput"):
                problems.append(Problem(f"population {p.name!r}", f"{p.model} has no fixed-point model in Lava 0.10.0"))
            elif p.model == "LIF" and p.params.get("refractory", 0):
                problems.append(Problem(f"population {p.name!r}", "Lava 0.10.0 has no fixed-point refractory LIF"))
            elif p.model == "LIF" and p.params.get("reset") != "zero":
                problems.append(Problem(f"population {p.name!r}", "Lava's LIF only resets v to zero"))
        for pr in program.projections:
            if not isinstance(pr.weight_exp, (int, np.integer)):
                problems.append(
                    Problem(f"projection {pr.name!r}", "Lava's Dense has one weight exponent per projection")
                )
            elif pr.conv is not None:
                problems += self._conv_problems(pr)
        if problems:
            raise BackendError(problems, header="this program cannot run in Lava")
        self.lava = _lava()

    def _conv_problems(self, pr) -> list[Problem]:
        """What Lava's ``Conv`` (``PyConvModelFixed``) cannot run exactly: it ignores
        ``weight_exp`` (so only a left shift can be folded into its weights), has no delay,
        and wraps its sum at the profile's accumulator width (the emulator does not)."""
        where, out = f"projection {pr.name!r}", []
        if pr.weight_exp < 0:
            out.append(Problem(where, f"weight_exp {pr.weight_exp} < 0: Lava's Conv has no weight exponent"))
        if pr.max_delay > 0:
            out.append(Problem(where, f"delay {pr.max_delay}: Lava's Conv has no synaptic delay"))
        cc = self.program.profile.capacity.convolution
        bits = 24 if cc is None or cc.accumulator_bits is None else cc.accumulator_bits
        w = chip_mantissas(pr, self.program.profile).astype(np.int64) << max(int(pr.weight_exp), 0)
        n = pr.shape[0]
        hi = int(np.bincount(pr.rows, np.maximum(w, 0), minlength=n).max(initial=0))  # exact: < 2**53
        lo = int(np.bincount(pr.rows, np.minimum(w, 0), minlength=n).min(initial=0))
        if hi >= 2 ** (bits - 1) or lo < -(2 ** (bits - 1)):
            out.append(Problem(where, f"summed input reaches [{lo}, {hi}]: Lava's Conv wraps it at {bits} bits"))
        return out

    def _conv(self, pr):
        """Lava's ``Conv`` with the kernel as the emulator holds it (``chip_mantissas`` of the
        expansion, gathered back into the kernel) times ``2**weight_exp``."""
        g = pr.conv.geometry
        m = chip_mantissas(pr, self.program.profile).astype(np.int64)
        _, _, kidx = g.expand()
        kernel = np.zeros(int(np.prod(g.kernel_shape)), dtype=np.int64)
        kernel[kidx] = m
        if not np.array_equal(kernel[kidx], m):
            raise BackendError([Problem(f"projection {pr.name!r}", "its synapses no longer share one kernel")])
        weight = (kernel << int(pr.weight_exp)).reshape(g.kernel_shape).astype(np.int32)
        return self.lava["Conv"](
            weight=weight, input_shape=g.input_shape, padding=g.padding, stride=g.stride, groups=g.groups
        )

    def _learning_problems(self) -> list[Problem]:
        """What Lava's LearningDense cannot run (checked when a run learns: without
        learning a plastic projection is an ordinary Dense, Sparse or DelayDense)."""
        problems = []
        three_factor: dict[str, list[str]] = {}
        for pr in self.program.projections:
            rule = pr.learning
            if rule is None:
                continue
            where = f"projection {pr.name!r}"
            if pr.is_sparse:
                problems.append(
                    Problem(
                        where,
                        "a sparse plastic projection needs Lava's LearningSparse, which this backend does not "
                        "drive (it fails for some rules in Lava 0.10.0, issue #851); make the projection dense",
                    )
                )
            if pr.max_delay > 0:
                problems.append(
                    Problem(where, "Lava's LearningDense has no synaptic delay (DelayDense does not learn)")
                )
            if rule.post_traces == "graded":
                three_factor.setdefault(pr.post, []).append(pr.name)
                for y, src in rule.graded.items():
                    if src.get("source") not in GRADED_SOURCES:
                        problems.append(
                            Problem(
                                where,
                                f"graded {y} from {src.get('source')!r}: the Lava post neuron sends only "
                                f"{' and '.join(GRADED_SOURCES)} values",
                            )
                        )
        for post, names in three_factor.items():
            if len(names) > 1:
                problems.append(
                    Problem(
                        f"population {post!r}",
                        f"is the post population of several three-factor projections ({', '.join(names)}); "
                        "a Lava neuron sends one set of y1..y3",
                    )
                )
        return problems

    def run(
        self,
        steps: int,
        inputs: Mapping[str, np.ndarray] | None = None,
        batch: int = 1,
        record: tuple[str, ...] | list[str] = ("spikes",),
        final: tuple[str, ...] = (),
        learn: bool = False,
    ) -> dict[str, np.ndarray]:
        """Run ``steps`` steps per trial. ``record``: variables read on every step (Lava's
        Monitor readout moves one value at a time through its channels, about 70 us per
        value, so record only what is needed); with ``learn=True`` also the learning state
        ``w t d x1 x2 y1 y2 y3`` of plastic projections. ``final``: variables (``v``, ``u``)
        read once after the run, returned as ``<population>/final_<var>`` shaped
        ``[batch, neurons]``. ``learn``: run plastic projections with Lava's learning engine
        (otherwise they are static); ``inputs`` then also takes the graded values
        ``<projection>/<y>`` (``[steps, batch, post]`` or ``[steps, post]``) of three-factor
        rules, as the emulator does. Afterwards ``run_seconds`` holds the time of Lava's run
        phase alone (without building, start-up or readout)."""
        plastic = [pr for pr in self.program.projections if pr.learning is not None] if learn else []
        known = POPULATION_VARS + (tuple(LEARNING_VARS) if plastic else ())
        why = dict.fromkeys(LEARNING_VARS, " (learning state needs learn=True and a plastic projection)")
        bad = unrecordable(record, known, "Lava", why)
        if bad:
            raise BackendError(bad)
        if learn:
            problems = self._learning_problems()
            if problems:
                raise BackendError(problems, header="this program cannot learn in Lava")
        require_memory(self._memory(steps, batch, record), f"running {self.program.network_name!r} in Lava")
        given = dict(inputs or {})
        # graded inputs are taken (and checked) whether or not this run learns, as the emulator does
        every_plastic = [pr for pr in self.program.projections if pr.learning is not None]
        graded = self._graded_inputs(given, every_plastic, steps, batch)
        rasters = input_rasters(self.program, steps, batch, given)
        out: dict[str, np.ndarray] = {}
        self.run_seconds = 0.0
        self.process_models: dict[str, str] = {}
        for b in range(batch):
            trial = self._run_trial(
                steps,
                {k: v[:, b, :] for k, v in rasters.items()},
                record,
                final,
                plastic,
                {k: v[:, b, :] for k, v in graded.items()},
            )
            for key, arr in trial.items():
                if arr.ndim == 1:  # a final value: [batch, neurons]
                    out.setdefault(key, np.zeros((batch, arr.shape[0]), dtype=arr.dtype))[b] = arr
                else:
                    out.setdefault(key, np.zeros((steps, batch) + arr.shape[1:], dtype=arr.dtype))[:, b] = arr
        return out

    @staticmethod
    def _graded_inputs(given: dict, plastic, steps: int, batch: int) -> dict[str, np.ndarray]:
        """Take the graded inputs ``<projection>/<y>`` out of ``given``: ``[steps, batch,
        post]`` float64 arrays (as the emulator reads them)."""
        out, problems = {}, []
        by_name = {pr.name: pr for pr in plastic}
        for key in [k for k in given if k.rpartition("/")[0] in by_name]:
            proj, _, y = key.rpartition("/")
            pr = by_name[proj]
            arr = given.pop(key)
            src = pr.learning.graded.get(y) if pr.learning.post_traces == "graded" else None
            if src is None or src.get("source") != "input":
                problems.append(Problem(f"input {key!r}", f"projection {proj!r} reads no graded input {y}"))
                continue
            a = per_trial(arr, steps, batch, pr.shape[0], f"input {key!r}", problems, np.float64)
            if a is None:
                continue
            out[key] = a[:steps]
        if problems:
            raise BackendError(problems, header="bad inputs")
        return out

    def _connected_parts(self) -> list[list[str]]:
        """Neuron populations grouped with everything they connect to (inputs join a part
        through their projections; an input without projections needs no run)."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(p.name for p in self.program.populations if p.model != "SpikeInput")
        g.add_edges_from((pr.pre, pr.post) for pr in self.program.projections)
        order = [p.name for p in self.program.populations]
        return sorted((sorted(c, key=order.index) for c in nx.connected_components(g)), key=lambda c: order.index(c[0]))

    def _learning_rule(self, rule):
        """The Lava rule object of an ``EngineRule``: the rule strings as our printer writes
        them (Lava's syntax), the traces' impulses and taus, epoch and seed."""
        L = self.lava
        rule = rule.on_engine(self.program.profile.learning)  # a hand-built rule: the engine's graded decay
        tr = rule.traces
        common = dict(
            dw=None if rule.dw is None else str(rule.dw),
            dt=None if rule.dt is None else str(rule.dt),
            dd=None if rule.dd is None else str(rule.dd),
            x1_impulse=tr["x1"].impulse,
            x1_tau=tr["x1"].tau,
            x2_impulse=tr["x2"].impulse,
            x2_tau=tr["x2"].tau,
            t_epoch=int(rule.t_epoch),
            rng_seed=int(rule.rng_seed),
        )
        if rule.post_traces == "graded":  # Lava sets y impulses 0 and taus 65535 (loihi2's graded_trace_tau)
            lava_tau = np.iinfo(np.uint16).max  # Loihi3FLearningRule's own, which it does not take as a parameter
            if any(tr[y].tau != lava_tau for y in ("y1", "y2", "y3")):
                raise BackendError([Problem("learning rule", f"graded y traces decay with tau {tr['y1'].tau}; "
                                            f"Lava's three-factor rule fixes {lava_tau}")])  # fmt: skip
            return L["Loihi3FLearningRule"](**common)
        ys = {f"{y}_{k}": getattr(tr[y], k) for y in ("y1", "y2", "y3") for k in ("impulse", "tau")}
        return L["Loihi2FLearningRule"](**common, **ys)

    def _y_sources(self, pr, graded: Mapping[str, np.ndarray], steps: int) -> dict:
        """What the post neuron of three-factor projection ``pr`` sends as y1..y3 (a neuron
        trace saturates at the engine's largest trace, ``2**trace_bits - 1``)."""
        top = 2 ** int(self.program.profile.learning.params["trace_bits"]) - 1
        out = {}
        for y, src in pr.learning.graded.items():
            if src["source"] == "input":
                values = graded.get(f"{pr.name}/{y}")
                out[y] = {"source": "input", "values": np.zeros((steps, pr.shape[0])) if values is None else values}
            else:
                out[y] = {
                    "source": "post_trace",
                    "impulse": float(src["impulse"]),
                    "tau": float(src["tau"]),
                    "top": top,
                }
        return out

    def _run_trial(
        self, steps: int, rasters: Mapping[str, np.ndarray], record, final=(), plastic=(), graded=None
    ) -> dict[str, np.ndarray]:
        L = self.lava
        plastic_names = {pr.name for pr in plastic}
        three_factor = {pr.post: pr for pr in plastic if pr.learning.post_traces == "graded"}
        procs = {}
        for p in self.program.populations:
            if p.model == "SpikeInput":
                # RingBuffer sends column (t-1) % length at step t: our row t-1
                procs[p.name] = L["RingBuffer"](data=np.ascontiguousarray(rasters[p.name].T.astype(np.int32)))
                continue
            prm = p.params
            kwargs = dict(
                shape=(p.size,),
                du=int(prm["current_decay"]),
                dv=int(prm["voltage_decay"]),
                vth=int(prm["threshold"]),
                bias_mant=np.broadcast_to(np.asarray(prm["bias_mant"], dtype=np.int32), (p.size,)).copy(),
                bias_exp=np.broadcast_to(np.asarray(prm["bias_exp"], dtype=np.int32), (p.size,)).copy(),
                u=0,
                v=0,
                name=p.name,
            )
            if plastic:
                pr3 = three_factor.get(p.name)
                y_sources = None if pr3 is None else self._y_sources(pr3, graded or {}, steps)
                procs[p.name] = L["RecordingLIF"](y_sources=y_sources, **kwargs)
            else:
                procs[p.name] = L["LIF"](**kwargs)
        sign = {
            "mixed": L["SignMode"].MIXED,
            "excitatory": L["SignMode"].EXCITATORY,
            "inhibitory": L["SignMode"].INHIBITORY,
        }
        learning_conns = {}
        for pr in self.program.projections:
            kwargs = dict(
                weight_exp=int(pr.weight_exp), num_weight_bits=int(pr.num_weight_bits), sign_mode=sign[pr.sign_mode]
            )
            # a sparse projection stays sparse (Sparse, DelaySparse): densifying 1e5 x 1e5 takes 37 GiB
            w = None if pr.is_sparse and pr.name not in plastic_names else pr.dense_mantissas().astype(np.int32)
            if pr.name in plastic_names:
                # PyLearningDenseModelBitApproximate reads weight_exp, num_weight_bits and
                # sign_mode from proc_params (a missing sign_mode would mean MIXED)
                conn = L["LearningDense"](
                    weights=w, learning_rule=self._learning_rule(pr.learning), name=pr.name, **kwargs
                )
                post = procs[pr.post]
                if pr.learning.post_traces == "graded":
                    post.s_out_bap.connect(conn.s_in_bap)
                    for y in pr.learning.graded:
                        getattr(post, f"s_out_{y}").connect(getattr(conn, f"s_in_{y}"))
                else:
                    post.s_out.connect(conn.s_in_bap)  # the back-propagating action potential
                learning_conns[pr.name] = conn
            elif pr.conv is not None:  # Lava's Conv takes and gives images (X, Y, C), row-major as ours
                conn = self._conv(pr)
                procs[pr.pre].s_out.reshape(pr.conv.geometry.input_shape).connect(conn.s_in)
                conn.a_out.reshape((pr.shape[0],)).connect(procs[pr.post].a_in)
                continue
            elif pr.is_sparse:
                conn = self._sparse(pr, kwargs)
            elif pr.max_delay > 0:
                delays = np.asarray(pr.delay_steps)
                conn = L["DelayDense"](weights=w, delays=delays if delays.ndim else int(delays), **kwargs)
            else:
                conn = L["Dense"](weights=w, **kwargs)
            procs[pr.pre].s_out.connect(conn.s_in)
            conn.a_out.connect(procs[pr.post].a_in)
        if plastic:
            out = self._run_stepped(steps, procs, learning_conns, record, final)
        else:
            out = self._run_monitored(steps, procs, record, final)
        for p in self.program.populations:
            if p.model == "SpikeInput" and "spikes" in record:
                out[f"{p.name}/spikes"] = rasters[p.name].astype(np.uint8)
        return out

    def _memory(self, steps: int, batch: int, record) -> list[tuple[str, float]]:
        """Estimates of what one run allocates: a dense projection's int32 weights twice (ours
        and the process's copy; four times with delays, which DelayDense also holds per
        synapse), a sparse one's CSR entries, and per population its recording over the batch."""
        out = []
        for pr in self.program.projections:
            dense = not pr.is_sparse or pr.learning is not None
            per = (16.0 if pr.max_delay else 8.0) if dense else 24.0
            out.append((f"projection {pr.name!r}", per * (pr.shape[0] * pr.shape[1] if dense else pr.n_synapses)))
        for p in self.program.populations:
            out.append((f"population {p.name!r}", 8.0 * p.size * (8 + steps * batch * len(record))))
        return out

    def _sparse(self, pr, kwargs):
        """Lava's Sparse, or DelaySparse with a delay per stored synapse (the same pattern)."""
        from scipy.sparse import csr_matrix  # a Lava dependency

        L = self.lava
        w = csr_matrix((pr.weights.astype(np.int32), (pr.rows, pr.cols)), shape=pr.shape)
        if pr.max_delay == 0:
            return L["Sparse"](weights=w, **kwargs)
        d = np.broadcast_to(np.asarray(pr.delay_steps, dtype=np.int64), (pr.n_synapses,))  # Lava wants int64
        delays = csr_matrix((d, (pr.rows, pr.cols)), shape=pr.shape)
        return L["DelaySparse"](weights=w, delays=delays, max_delay=int(d.max(initial=0)), **kwargs)

    def _run_monitored(self, steps: int, procs, record, final) -> dict[str, np.ndarray]:
        """One run per connected part, with a Monitor per recorded variable."""
        L = self.lava
        monitors = []
        for name, key, target, dtype in self._population_reads(procs, record, "s_out"):
            mon = L["Monitor"]()
            mon.probe(target=target, num_steps=steps)
            monitors.append((name, key, mon, target, dtype))
        out = {}
        # Lava compiles and runs only the processes connected to the one it is asked to run,
        # so each connected part of the network is run on its own.
        for part in self._connected_parts():
            anchor = procs[part[0]]
            try:
                t0 = time.perf_counter()
                anchor.run(condition=L["RunSteps"](num_steps=steps), run_cfg=L["Loihi2SimCfg"](select_tag="fixed_pt"))
                self.run_seconds += time.perf_counter() - t0
                out.update(self._read_final(part, procs, final))
                for name, key, mon, target, dtype in monitors:
                    if name not in part:
                        continue
                    series = mon.get_data()[procs[name].name][target.name]
                    out[key] = np.asarray(series).reshape(steps, -1).astype(dtype)
            finally:
                anchor.stop()
        return out

    def _population_reads(self, procs, record, spikes: str) -> list[tuple[str, str, object, type]]:
        """``(population, recording key, what to read, dtype)`` for each recorded neuron variable
        of each non-input population; ``spikes``: the process's spike output read (``s_out``, a
        port, for a Monitor; ``spiked``, a Var, when reading Vars step by step)."""
        attrs, dtypes = {"spikes": spikes, "v": "v", "u": "u"}, {"spikes": np.uint8, "v": np.int32, "u": np.int32}
        return [(p.name, f"{p.name}/{var}", getattr(procs[p.name], attrs[var]), dtypes[var])
                for p in self.program.populations if p.model != "SpikeInput"
                for var in record if var in POPULATION_VARS]  # fmt: skip

    def _read_final(self, part, procs, final) -> dict[str, np.ndarray]:
        out = {}
        for name in part:
            if self.program.population(name).model != "SpikeInput":
                for var in final:
                    value = {"v": procs[name].v, "u": procs[name].u}[var].get()
                    out[f"{name}/final_{var}"] = np.asarray(value).astype(np.int64).reshape(-1)
        return out

    def _run_stepped(self, steps: int, procs, conns, record, final) -> dict[str, np.ndarray]:
        """Run each connected part one step at a time and read the recorded Vars after each
        step (after its learning phase, as the emulator records), with Lava's fixed-point
        learning engine selected explicitly and checked to be the one that ran."""
        L = self.lava
        # Lava's compiler looks the exception map up by process instance (compiler_graphs.py,
        # _map_proc_to_model); it also spares the search of this package for process models
        models = {L["RecordingLIF"]: L["PyRecordingLIFModel"]}
        exceptions = {p: models[type(p)] for p in procs.values() if type(p) in models}
        exceptions.update({c: L["PyLearningDenseModelBitApproximate"] for c in conns.values()})
        cfg = L["Loihi2SimCfg"](select_tag="fixed_pt", exception_proc_model_map=exceptions)
        reads = self._population_reads(procs, record, "spiked")
        for pr in self.program.projections:
            if pr.name in conns:
                for var in record:
                    if var in LEARNING_VARS:
                        target = getattr(conns[pr.name], LEARNING_VARS[var])
                        reads.append((pr.post, f"{pr.name}/{var}", target, np.int64))
        out = {}
        for part in self._connected_parts():
            anchor = procs[part[0]]
            mine = [r for r in reads if r[0] in part]
            series = {key: [] for _, key, _, _ in mine}
            try:
                for i in range(steps):
                    t0 = time.perf_counter()
                    anchor.run(condition=L["RunSteps"](num_steps=1), run_cfg=cfg)
                    self.run_seconds += time.perf_counter() - t0
                    if i == 0:
                        self._check_models(part, procs, conns)
                    for _, key, target, _ in mine:
                        series[key].append(np.asarray(target.get()))
                out.update(self._read_final(part, procs, final))
            finally:
                anchor.stop()
            for _, key, _, dtype in mine:
                out[key] = np.stack(series[key]).astype(dtype)
        return out

    def _check_models(self, part, procs, conns) -> None:
        """The process models Lava chose are the bit-approximate learning engine and the
        bit-accurate LIF step (a different choice would make the comparison meaningless);
        they are kept in ``process_models`` (name -> model class name)."""
        L = self.lava
        expected = {}
        for pr in self.program.projections:
            if pr.name in conns and pr.post in part:
                expected[pr.name] = (conns[pr.name], L["PyLearningDenseModelBitApproximate"])
        for name in part:
            if self.program.population(name).model == "LIF":
                expected[name] = (procs[name], L["PyRecordingLIFModel"])
        wrong = []
        for name, (proc, model) in expected.items():
            self.process_models[name] = proc.model_class.__name__
            if proc.model_class is not model:
                wrong.append(f"{name}: {proc.model_class}")
        if wrong:
            raise BackendError([Problem("lava backend", f"unexpected process model {w}") for w in wrong])
