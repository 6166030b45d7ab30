"""A learning run in one compiled call per run (:mod:`neurocomp.kernels.trial`).

:func:`fused_learning` says whether a learning run of an :class:`~neurocomp.emulator.Emulator`
can run fused and returns its :class:`FusedLearning` (built once per emulator): the chip's
sum-of-products engine in the chip's arithmetic (every learning quantity an integer), in
float (``learn_arithmetic="float"``: every one a float64, the lowered-float level) or a mix
of the two (``learn_float``, the attribution knobs, where the engine compiles it: each
side's traces of one kind), all from the same generated source; independent trials, static
projections, error units with a mean squared error and their feedback, and graded glue from
pseudo-derivatives, learning signals (with their rate trace), errors, floor offsets and graded
inputs.
Anything else (a mix that the engine runs in numpy, shared weights, reward channels, graded
pre spikes, traces kept by the neuron, softmax errors, strict runs, learners of other
engines, recorded learning variables) runs step by step, with the same results.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np

from ..kernels import delivery as kd
from ..kernels import trial as kt
from . import layout as lay
from .plastic import PlasticSynapses
from .synapses import Synapses

_GLUE = {"pseudo_derivative": kt.G_PSEUDO, "learning_signal": kt.G_SIGNAL, "error": kt.G_ERROR,
         "floor_offset": kt.G_OFFSET}
ENABLED = True  # False: every learning run step by step (the tests compare the two)
MAX_DRAWS = 1 << 23  # neuron rounding numbers (float64) a fused run draws up front at most


def fused_learning(emu, steps: int, record, given) -> FusedLearning | None:
    """The emulator's fused learning run, or None when this run must go step by step."""
    if not ENABLED or _refusal(emu, steps, record, given) is not None:
        return None
    fused = getattr(emu, "_fused_learning", None)
    if fused is None:
        fused = FusedLearning(emu)
        emu._fused_learning = fused
    return fused if fused.kernel() is not None else None


def fused_kernel(emu) -> Any:
    """The kernel of ``emu``'s fused learning run (as its runs would call it), without
    compiling it: None when no cache directory is writable. Whether a given run can take
    it is :func:`fused_learning`'s question; a warm-up asks which kernels there are. None
    also when no run of ``emu`` could run fused (see :func:`_refusal`)."""
    plastic = [s for s in emu.synapses if isinstance(s, PlasticSynapses)]
    if not emu.fixed or emu.learn_mode != "independent" or not all(_engine_fits(s) for s in plastic):
        return None
    fused = getattr(emu, "_fused_learning", None)
    if fused is None:
        fused = emu._fused_learning = FusedLearning(emu)
    return fused.kernel()


def _refusal(emu, steps: int, record, given) -> str | None:
    """Why a learning run of ``emu`` over ``steps`` recording ``record`` with the inputs
    ``given`` cannot run fused (None: it can)."""
    if not emu.fixed or emu.strict or emu.learn_mode != "independent":
        return "float chip, strict or shared weights"
    if emu._learners or emu.shadow or emu._chip_random is not None:
        return "learners of other engines, shadow learners or the chip's LFSRs"
    if any(s.latency + s.max_delay == 0 for s in emu.synapses if s.name in emu._feedback):
        return "feedback without latency (delivered before the error units update)"
    if emu._rounding_draws and steps * 3 * emu._blocks.n_state > MAX_DRAWS:
        return "the run's neuron rounding numbers would not fit in memory at once"
    if any(var not in ("spikes", "u", "v", "a") for var in record):
        return "recorded learning variables"
    errors = [p for p in emu.pops.values() if p.kind == "error"]
    if any(p.q.params.get("loss") == "ce" for p in errors):
        return "softmax errors"
    if any(f"{p.q.name}/target" not in given for p in errors):
        return "error units without targets"
    for syn in emu.synapses:
        if type(syn) is Synapses:
            continue
        if not isinstance(syn, PlasticSynapses) or not _engine_fits(syn):
            return f"projection {syn.name!r}"
    return None


def _engine_fits(syn: PlasticSynapses) -> bool:
    eng, rule = syn.engine, syn.rule
    if not (eng.fusable and syn._compiled):
        return False
    if rule.pre_graded or eng.learn_mode != "independent":
        return False
    sources = {src.get("source") for src in rule.graded.values()}
    return sources <= {"pseudo_derivative", "learning_signal", "error", "input", "floor_offset"}


class FusedLearning:
    """The fused run of one emulator: the kernel of its Program's structure (constants in
    place) and the tables that do not change between runs; every state array is passed anew
    each run (a reset allocates new ones)."""

    def __init__(self, emu):
        self.emu = emu
        static = [s for s in emu.synapses if type(s) is Synapses and s.name not in emu._feedback]
        self.groups, self.group_arrays = lay.delivery_tables(static, emu._blocks, emu._slots)
        self.errors = [name for name, p in emu.pops.items() if p.kind == "error"]
        self.feedback = [s for s in emu.synapses if s.name in emu._feedback]
        self.plastic = [s for s in emu.synapses if isinstance(s, PlasticSynapses)]
        self._kernel = False  # built at the first run

    def kernel(self) -> Any:
        """The run's kernel (None when no cache directory is writable)."""
        if self._kernel is False:
            self._kernel = kt.trial_kernel(self._spec())
        return self._kernel

    def _spec(self) -> dict[str, Any]:
        emu = self.emu
        errors = []
        for name in self.errors:
            prm = emu.pops[name].q.params
            scale = 2.0 ** emu.pops[name].q.scale_exp
            lim = 2.0 ** (prm["bits"] - 1)
            errors.append({"has": True, "scale": scale, "shift": 2.0 ** -prm["shift"], "lim": lim})
        return {
            "exact_errors": emu._graded_float,
            "errors": errors,
            "feedback": [self.errors.index(s.pre) for s in self.feedback],
            "plastic": [self._plastic_spec(s) for s in self.plastic],
            "ls_ports": len(emu._ls_ports),
        }

    def _plastic_spec(self, syn: PlasticSynapses) -> dict[str, Any]:
        eng, rule, post = syn.engine, syn.rule, self.emu.pops[syn.post]
        plan = eng.fused_plan()
        top = 2**eng.trace_bits - 1
        glue = []
        inputs = [y for y in syn.graded_inputs if y != "r0"]
        for y in ("y1", "y2", "y3"):
            src = rule.graded.get(y, {})
            kind = _GLUE.get(src.get("source"), kt.G_INPUT if y in inputs else kt.G_NONE)
            prm: dict[str, Any] = {"top": top}
            if kind == kt.G_PSEUDO:
                prm.update(th=float(post.const["threshold"]), alif=post.kind == "alif")
            elif kind == kt.G_SIGNAL:
                prm.update(scale=2.0 ** -int(src.get("shift", 0)), reg=float(src.get("reg") or 0.0), top=top + 1)
                if prm["reg"]:
                    prm.update(rate_shift=int(src["rate_shift"]), rate_bits=int(src["rate_bits"]))
                    prm["rate_target"] = float(src["rate_target"])
            elif kind == kt.G_ERROR:
                prm["unit"] = self.errors.index(src["unit"])
            elif kind == kt.G_INPUT:
                prm["input"] = inputs.index(y)
            elif kind == kt.G_OFFSET:
                prm.update({k: int(src[k]) for k in ("value", "count", "period")}, of=src["of"], on=eng.floors)
            glue.append((kind, prm))
        return {
            "rule": plan.rule_module,
            "T": int(rule.t_epoch),
            "m": syn.n_pre,
            "n": syn.n_post,
            "slot": syn.latency + syn.max_delay,
            "first": syn.latency + syn.max_delay == 0,
            "exp": syn.exp,
            "rounding": syn._rounding,
            "in_scale": syn.in_scale,
            "half": 2 ** (eng.frac_bits - 1),
            "top": top,
            "has_u": plan.has_u,
            "always_full": plan.always_full,
            "decimate": plan.decimate,
            "graded": rule.post_traces == "graded",
            "glue": glue,
            "float_glue": not syn.graded_fixed,
            "dtypes": plan.side_dtypes,
        }

    # -- a run -------------------------------------------------------------------------
    def run(self, steps: int, given, record, rec_dtype) -> dict[str, np.ndarray]:
        """``steps`` learning steps of every trial (as ``Emulator.run`` with ``learn=True``)."""
        emu = self.emu
        b, blk = emu.batch, emu._blocks
        t0 = emu.t
        flags = np.array([var in record for var in ("spikes", "u", "v", "a")], dtype=np.int64)
        spike_rec = np.uint8 if emu._one_spike else rec_dtype
        recs = [
            np.zeros((steps, blk.n_state) if flags[i] else (1, 1), dtype=spike_rec if i == 0 else rec_dtype)
            for i in range(4)
        ]
        net = self._net(steps, given, flags, recs)
        errs, pays, erecs = self._errors(steps, given, "spikes" in record, rec_dtype)
        fbs = tuple(self._feedback(s, pays) for s in self.feedback)
        plastic = tuple(self._plastic(s, t0, steps, given, pays) for s in self.plastic)
        args = (t0, steps, b, net, tuple(emu._ls_ports), errs, fbs, plastic)
        kernel = self.kernel()
        threads = min(b, numba.config.NUMBA_NUM_THREADS)
        if threads > 1:  # disjoint trials on threads (the kernel releases the GIL)
            cuts = np.linspace(0, b, threads + 1).astype(int)
            with ThreadPoolExecutor(threads) as pool:
                for f in [pool.submit(kernel, lo, hi, *args) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]:
                    f.result()
        else:
            kernel(0, b, *args)
        for name, pay in zip(self.errors, pays, strict=True):
            emu.pops[name].state["spikes"] = pay
        for syn in self.plastic:
            syn.engine.mark_in_range()
        emu.t = t0 + steps
        out = {}
        for name, p in emu.pops.items():
            if name in erecs:  # (error units have no block in the flat state)
                out[f"{name}/spikes"] = erecs[name]
                continue
            for i, var in enumerate(("spikes", "u", "v", "a")):
                if flags[i] and var in p.state:
                    off = blk.state[name]
                    out[f"{name}/{var}"] = recs[i][:, off : off + b * p.q.size].reshape(steps, b, p.q.size)
        return out

    def _net(self, steps, given, flags, recs) -> tuple:
        """The network's arrays (as :func:`neurocomp.kernels.run.run_trials` takes them)."""
        emu = self.emu
        b, blk = emu.batch, emu._blocks
        inputs = [(name, p) for name, p in emu.pops.items() if p.kind == "input"]
        cols = np.cumsum([0] + [b * p.q.size for _, p in inputs])
        rows = [[blk.state[name], p.q.size, cols[i]] for i, (name, p) in enumerate(inputs)]
        in_table = np.array(rows, dtype=np.int64).reshape(-1, 3)
        buf = np.zeros((steps, max(int(cols[-1]), 1)), dtype=emu._dtype)
        for (name, p), (_, size, col) in zip(inputs, in_table.tolist(), strict=True):
            buf[:, col : col + b * size] = emu._input_chunk(name, p, given, 0, steps).reshape(steps, b * size)
        rnd = emu._draws(steps) if emu._rounding_draws else emu._no_draws
        (g1, s1), (g2, s2) = self.groups
        ga = self.group_arrays
        acc, acc64 = np.zeros((b, blk.n_state), emu._dtype), np.zeros((b, blk.n_state))
        return (
            buf, in_table, emu._st, emu._spikes, emu._ring, emu._pop_table, emu._thr, emu._nconst, emu._mode,
            emu._lims, rnd, emu._err, g1, s1, g2, s2, ga["indptr"], ga["idx"], ga["w"], ga["dense"], ga["exps"],
            acc, acc64, emu._block_table, flags, *recs,
        )  # fmt: skip

    def _errors(self, steps, given, record: bool, rec_dtype) -> tuple[tuple, list[np.ndarray], dict]:
        """Per error unit: its payload (a new array, as each step makes one), the readout's
        ``v``, the targets and the payload's recording (``[steps, batch, n]``, when ``record``)."""
        emu, errs, pays, recs = self.emu, [], [], {}
        for name in self.errors:
            p = emu.pops[name]
            v = emu.pops[p.q.params["readout"]].state["v"]
            pay = np.zeros((emu.batch, p.q.size), emu._dtype)
            tgt = np.ascontiguousarray(given[f"{name}/target"][:steps], dtype=np.float64)
            rec = np.zeros((steps, emu.batch, p.q.size) if record else (0, 1, 1), rec_dtype)
            if record:
                recs[name] = rec
            errs.append((pay, v, tgt, rec))
            pays.append(pay)
        return tuple(errs), pays, recs

    def _feedback(self, syn: Synapses, pays: list[np.ndarray]) -> tuple:
        ls = self.emu.pops[syn.post].state["ls"]
        table = syn.table.copy()
        table[:, kd.G_SLOTS] = ls.shape[0]
        a = syn.arrays
        pay = pays[self.errors.index(syn.pre)]
        acc, acc64 = np.zeros((self.emu.batch, syn.n_post), ls.dtype), np.zeros((self.emu.batch, syn.n_post))
        return (table, syn.gscale, a["indptr"], a["idx"], a["w"], a["dense"], a["exps"], pay.reshape(-1),
                ls.reshape(-1), acc, acc64)  # fmt: skip

    def _plastic(self, syn: PlasticSynapses, t0: int, steps: int, given, pays) -> tuple:
        """One plastic projection's arrays, with the engine's random numbers of the run drawn."""
        emu, eng = self.emu, syn.engine
        st = eng.state
        pre, post = emu.pops[syn.pre], emu.pops[syn.post]
        arrays = (st["w"], st["t"], st["d"])
        verified = eng.in_range()
        plan = eng.fused_plan()
        xr, yr = eng.x_random.take(2 * steps), eng.y_random.take(2 * steps)
        T = eng.rule.t_epoch
        ends = (t0 + steps) // T - t0 // T  # epochs ending in this run
        conn = eng.conn_random.take(ends)
        shifts = plan.value_shifts
        kc = np.zeros((max(ends, 1), 3), np.float64 if eng.exact_products else np.int64)
        for v in range(3):
            s = int(shifts[v])
            if eng.exact_products:  # (the rule kernel rounds with the epoch's number itself)
                kc[:ends, v] = conn
            else:
                kc[:ends, v] = 2 ** (s - 1) - 1 if eng.nearest else [math.floor(c * 2**s) for c in conn]
        inputs = [y for y in syn.graded_inputs if y != "r0"]
        graded = np.zeros((max(len(inputs), 1), steps if inputs else 1, emu.batch, syn.n_post))
        for i, y in enumerate(inputs):
            g = given.get(f"{syn.name}/{y}")
            graded[i] = 0.0 if g is None else g[:steps]
        dummy2, dummy3 = np.zeros((1, 1)), np.zeros((1, 1, 1))
        return (
            *arrays, st["x1"], st["x2"], st["y1"], st["y2"], st["y3"], st["tx"], st["ty"], *plan.arrays,
            pre.state["spikes"], post.state["spikes"], post.state["input"], xr, yr, kc,
            np.array([not verified, eng.nearest]),
            post.state.get("v_pre", post.state["v"]), post.state.get("th_pre", dummy2), post.state.get("ls", dummy3),
            syn.neuron_traces.get("rate", dummy2), graded,
        )  # fmt: skip
