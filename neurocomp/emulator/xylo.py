"""The emulator on a Xylo layer: a Program mapped onto XyloSim's one layer and run in its
integer arithmetic (:mod:`neurocomp.kernels.xylo`).

Profiles with ``time.saturation: per_add`` (Xylo) run here: :class:`~.emulator.Emulator`
returns a :class:`XyloEmulator` for them. Saturating after every synaptic add makes the
order of the adds part of the result, so the whole layer is one structure in the chip's
order: the spike inputs are the input channels (populations in program order), the LIF
populations the hidden neurons, the LI populations the readout neurons. What the layer
cannot hold is refused by name (:meth:`XyloLayer.of`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..compiler.ir import QProjection
from ..compiler.program import Program
from ..errors import Problem
from ..kernels import announce_compile, call_parallel
from ..kernels import xylo as kx
from .emulator import Emulator, EmulatorError

XYLO_RECORDABLE = ("spikes", "v", "u", "u2")
_PORT = {"syn": 0, "syn2": 1}


class InputClipWarning(UserWarning):
    """More input events in one step than a Xylo input channel delivers: the excess is dropped."""


@dataclass(frozen=True)
class XyloLayer:
    """A Program as one Xylo layer: the populations of each part with their offsets, the
    effective integer weights (``mantissa << exponent``) ``w_in[Nin, N, 2]``,
    ``w_rec[N, N, 2]`` (``[pre, post, port]``) and ``w_out[N, No]``, the parameter tables of
    :mod:`neurocomp.kernels.xylo` and its ``caps``."""

    inputs: dict[str, int]
    hidden: dict[str, int]
    readouts: dict[str, int]
    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    hid: np.ndarray
    out: np.ndarray
    caps: np.ndarray

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.w_in.shape[0], self.w_rec.shape[0], self.w_out.shape[1]

    @classmethod
    def of(cls, program: Program) -> XyloLayer:
        """The layer of ``program``, or an :class:`EmulatorError` listing everything it holds
        that the layer cannot: models other than SpikeInput, LIF (subtractive reset, no
        refractory period) and LI, and projections other than input -> LIF, LIF -> LIF and
        LIF -> LI without delay or learning, one per (pre, post, port)."""
        prof = program.profile
        problems = _timing_problems(prof)
        parts: dict[str, dict[str, int]] = {"SpikeInput": {}, "LIF": {}, "LI": {}}
        size = {"SpikeInput": 0, "LIF": 0, "LI": 0}
        for q in program.populations:
            where = f"population {q.name!r}"
            if q.model not in parts:
                problems.append(Problem(where, f"{q.model}: a Xylo layer has spike inputs, LIF and LI neurons"))
                continue
            if q.model == "LIF" and q.params.get("reset") != "subtract":
                problems.append(Problem(where, f"reset {q.params.get('reset')!r}: Xylo's LIF resets by subtraction"))
            if q.model == "LIF" and np.any(np.asarray(q.params.get("refractory", 0)) != 0):
                problems.append(Problem(where, "Xylo's LIF has no refractory period"))
            parts[q.model][q.name] = size[q.model]
            size[q.model] += q.size
        n_in, n, n_out = size["SpikeInput"], size["LIF"], size["LI"]
        w_in, w_rec, w_out = (np.zeros(s, np.int64) for s in ((n_in, n, 2), (n, n, 2), (n, n_out)))
        seen: set[tuple[str, str, str]] = set()
        for pr in program.projections:
            problems += _place(pr, parts, seen, w_in, w_rec, w_out)
        if problems:
            raise EmulatorError(problems, header=f"this program does not fit one {prof.name} layer")
        return cls(
            parts["SpikeInput"], parts["LIF"], parts["LI"], w_in, w_rec, w_out,
            _hidden_table(program, parts["LIF"], n), _readout_table(program, parts["LI"], n_out), _caps(prof),
        )  # fmt: skip


def _timing_problems(prof) -> list[Problem]:
    """The layer engine runs XyloSim's timing and arithmetic; a profile that says otherwise is refused."""
    t, f = prof.time, prof.formats
    want = {
        "time.current_update": (t.current_update, "add_then_decay"),
        "time.input_delay_steps": (t.input_delay_steps, 0),
        "time.synaptic_delay_steps": (t.synaptic_delay_steps, 1),
        "time.threshold": (t.threshold, "greater_equal"),
        "formats.decay.representation": (f.decay.representation, "bitshift"),
        "formats.decay.rounding": (f.decay.rounding, "floor"),
        "formats.current.overflow": (f.current.overflow, "saturate"),
        "formats.voltage.overflow": (f.voltage.overflow, "saturate"),
        "formats.voltage.bits": (f.voltage.bits, f.current.bits),
    }
    return [
        Problem(f"profile {prof.name!r}", f"{key} is {got!r}; the per-add layer engine (XyloSim's) needs {need!r}")
        for key, (got, need) in want.items()
        if got != need
    ]


def _place(pr: QProjection, parts, seen, w_in, w_rec, w_out) -> list[Problem]:
    """Write projection ``pr``'s effective weights into its matrix, or say why it has none."""
    where = f"projection {pr.name!r}"
    kind = {name: model for model, names in parts.items() for name in names}
    pre, post = kind.get(pr.pre), kind.get(pr.post)
    if pre is None or post is None:
        return []  # its population was refused already
    bad = []
    if pr.max_delay > 0:
        bad.append("Xylo has no synaptic delays")
    if pr.plasticity is not None or pr.learning is not None:
        bad.append("Xylo has no on-chip learning")
    if np.min(np.asarray(pr.weight_exp)) < 0:
        bad.append(f"weight exponent {int(np.min(np.asarray(pr.weight_exp)))}: Xylo shifts weights left only")
    if (pre, post) not in (("SpikeInput", "LIF"), ("LIF", "LIF"), ("LIF", "LI")):
        bad.append(f"{pre} -> {post}: a Xylo layer connects inputs to LIF, LIF to LIF and LIF to LI")
    elif post == "LI" and pr.port != "syn":
        bad.append(f"port {pr.port!r}: readout neurons have one synaptic current")
    key = (pr.pre, pr.post, pr.port)
    if key in seen:
        bad.append(f"a second projection from {pr.pre!r} to {pr.post!r} on port {pr.port!r}: the chip holds one weight")
    if bad:
        return [Problem(where, b) for b in bad]
    seen.add(key)
    e = np.asarray(pr.weight_exp, dtype=np.int64)
    w = pr.dense_mantissas().astype(np.int64) << (e[:, None] if e.ndim else e)  # [post, pre]
    a, b = parts[pre][pr.pre], parts[post][pr.post]
    n_post, n_pre = pr.shape
    if post == "LI":
        w_out[a : a + n_pre, b : b + n_post] = w.T
    else:
        target = w_in if pre == "SpikeInput" else w_rec
        target[a : a + n_pre, b : b + n_post, _PORT[pr.port]] = w.T
    return []


def _ints(q, key: str, default=0) -> np.ndarray:
    return np.broadcast_to(np.asarray(q.params.get(key, default), dtype=np.int64), (q.size,))


def _bias(q, prof) -> np.ndarray:
    """The bias in state units: ``bias_mant << (bias_exp + shift)`` (or ``>>`` for a negative one)."""
    m = _ints(q, "bias_mant")
    e = _ints(q, "bias_exp") + (prof.formats.bias.shift if prof.formats.bias else 0)
    return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))


def _hidden_table(program: Program, offsets: Mapping[str, int], n: int) -> np.ndarray:
    prof = program.profile
    th_shift = prof.formats.threshold.shift + prof.formats.threshold.exponent_min
    hid = np.zeros((5, n), np.int64)
    for name, off in offsets.items():
        q = program.population(name)
        sl = slice(off, off + q.size)
        hid[kx.H_DASH1, sl] = _ints(q, "current_decay")
        hid[kx.H_DASH2, sl] = _ints(q, "current2_decay")  # no second current: nothing ever reaches it
        hid[kx.H_DMEM, sl] = _ints(q, "voltage_decay")
        hid[kx.H_TH, sl] = _ints(q, "threshold") << th_shift
        hid[kx.H_BIAS, sl] = _bias(q, prof)
    return hid


def _readout_table(program: Program, offsets: Mapping[str, int], n_out: int) -> np.ndarray:
    """Readouts (LI) have the largest voltage as threshold: they spike when v saturates."""
    prof = program.profile
    out = np.zeros((4, n_out), np.int64)
    for name, off in offsets.items():
        q = program.population(name)
        sl = slice(off, off + q.size)
        out[kx.O_DASH, sl] = _ints(q, "current_decay")
        out[kx.O_DMEM, sl] = _ints(q, "voltage_decay")
        out[kx.O_TH, sl] = prof.formats.voltage.int_range()[1]
        out[kx.O_BIAS, sl] = _bias(q, prof)
    return out


def _caps(prof) -> np.ndarray:
    caps = np.zeros(5, np.int64)
    t = prof.time
    caps[kx.C_IN_CAP] = t.max_input_events_per_step or t.max_spikes_per_step
    caps[kx.C_SPIKE_CAP] = t.max_spikes_per_step
    caps[kx.C_MIN_STEP] = prof.formats.decay.min_step
    caps[kx.C_LO], caps[kx.C_HI] = prof.formats.current.int_range()
    return caps


class XyloEmulator(Emulator):
    """:class:`~.emulator.Emulator` for a Xylo layer (made by ``Emulator(program)`` when the
    profile saturates per add). Same interface; records ``spikes``, ``v``, ``u`` (the first
    synaptic current; a readout's only one) and ``u2`` (the hidden neurons' second), as
    ``[steps, batch, neurons]`` int32. Input counts above the profile's
    ``max_input_events_per_step`` (15) are clipped as the chip does, with an
    :class:`InputClipWarning`; above ``max_spikes_per_step`` (31) they are refused. There is
    no learning and no strict mode: saturation is part of the chip's arithmetic."""

    def __init__(self, program: Program, batch: int = 1, seed: int = 0, strict: bool = False, *args, **kwargs):
        if strict:
            msg = f"strict mode stops at an overflow; {program.profile.name} saturates after every add by design"
            raise EmulatorError([Problem("emulator", msg)])
        super().__init__(program, batch, seed, False, *args, **kwargs)

    # -- layout and state ------------------------------------------------------------------
    def _constants(self, q) -> dict:
        return {}  # the layer's tables hold the registers (per neuron, as XyloSim takes them)

    def _build_layout(self) -> None:
        self.layer = XyloLayer.of(self.program)
        f = self.profile.formats
        self._formats = (f.current, f.voltage, f.voltage)
        self._fused = False

    def _allocate(self) -> None:
        b = self.batch
        n_in, n, n_out = self.layer.sizes
        self._cur = np.zeros((b, n, 2), np.int64)  # [trial, neuron, port]
        self._v, self._s = np.zeros((b, n), np.int64), np.zeros((b, n), np.int64)
        self._cur_o, self._v_o, self._s_o = (np.zeros((b, n_out), np.int64) for _ in range(3))
        self._events = np.zeros((b, n_in), np.int64)  # the input events of the last step, as delivered
        for name, p in self.pops.items():
            sz = p.q.size
            if p.kind == "input":
                o = self.layer.inputs[name]
                p.state = {"spikes": self._events[:, o : o + sz]}
            elif p.kind == "lif":
                o = self.layer.hidden[name]
                sl = slice(o, o + sz)
                cur = self._cur[:, sl]
                p.state = {"spikes": self._s[:, sl], "u": cur[..., 0], "u2": cur[..., 1], "v": self._v[:, sl]}
            else:
                o = self.layer.readouts[name]
                sl = slice(o, o + sz)
                p.state = {"spikes": self._s_o[:, sl], "u": self._cur_o[:, sl], "v": self._v_o[:, sl]}

    # -- running ----------------------------------------------------------------------------
    def step(self, inputs: Mapping[str, np.ndarray] | None = None, learn: bool = False) -> None:
        """Advance one step; ``inputs`` maps input populations to ``[batch, n]`` or ``[n]`` counts."""
        self.run(1, {k: np.asarray(v)[None] for k, v in (inputs or {}).items()}, record=())

    def run(self, steps: int, inputs=None, record=("spikes",), learn: bool = False) -> dict[str, np.ndarray]:
        """Run ``steps`` steps (see :meth:`Emulator.run`); ``learn`` has nothing to do on Xylo."""
        bad = [v for v in record if v not in XYLO_RECORDABLE]
        if bad:
            msg = f"cannot record {bad} on {self.profile.name} (recordable: {', '.join(XYLO_RECORDABLE)})"
            raise EmulatorError([Problem("record", msg)])
        given = self._check_inputs(inputs or {}, steps)
        inp = self._input_events(given, steps)
        b = self.batch
        n_in, n, n_out = self.layer.sizes
        flags = np.array([v in record for v in ("spikes", "u", "v")], np.int64)

        def rec(flag: int, *shape: int) -> np.ndarray:
            return np.zeros((steps if flags[flag] else 1, b, *shape), np.int64)  # one unused row if not recorded

        rs, ru, rv = rec(kx.F_SPIKES, n), rec(kx.F_U, n, 2), rec(kx.F_V, n)
        rso, ruo, rvo = rec(kx.F_SPIKES, n_out), rec(kx.F_U, n_out), rec(kx.F_V, n_out)
        L = self.layer
        announce_compile()
        kernel = kx.run_layer_parallel if b > 1 else kx.run_layer
        call_parallel(
            kernel, inp, L.w_in, L.w_rec, L.w_out, L.hid, L.out, L.caps, self._cur, self._v, self._s, self._cur_o,
            self._v_o, self._s_o, flags, rs, ru, rv, rso, ruo, rvo,
        )  # fmt: skip
        if steps:
            self._events[...] = inp[-1]
        self.t += steps
        return self._recordings(record, inp, (rs, ru, rv), (rso, ruo, rvo))

    def _input_events(self, given: Mapping[str, np.ndarray], steps: int) -> np.ndarray:
        """``[steps, batch, Nin]`` input events as the chip delivers them: given counts (or the
        frozen Poisson draws), clipped to the profile's events per channel per step."""
        cap = int(self.layer.caps[kx.C_IN_CAP])
        inp = np.zeros((steps, self.batch, self.layer.sizes[0]), np.int64)
        for name, o in self.layer.inputs.items():
            p = self.pops[name]
            a = np.asarray(self._input_chunk(name, p, given, 0, steps), dtype=np.int64)
            over = a > cap
            if over.any():
                s, tr, ch = (int(i) for i in np.argwhere(over)[0])
                warnings.warn(
                    f"input {name!r}: {int(over.sum())} counts above {self.profile.name}'s {cap} events per channel "
                    f"per step clipped to {cap} (first {int(a[s, tr, ch])} at step {s}, trial {tr}, neuron {ch})",
                    InputClipWarning,
                    stacklevel=3,
                )
            inp[:, :, o : o + p.q.size] = np.minimum(a, cap)
        return inp

    def _recordings(self, record, inp, hidden, readout) -> dict[str, np.ndarray]:
        rs, ru, rv = hidden
        rso, ruo, rvo = readout
        out: dict[str, np.ndarray] = {}
        for name, p in self.pops.items():
            if p.kind == "input":
                o = self.layer.inputs[name]
                arrays = {"spikes": inp[:, :, o : o + p.q.size]}
            elif p.kind == "lif":
                o = self.layer.hidden[name]
                sl = slice(o, o + p.q.size)
                arrays = {"spikes": rs[:, :, sl], "u": ru[:, :, sl, 0], "u2": ru[:, :, sl, 1], "v": rv[:, :, sl]}
            else:
                o = self.layer.readouts[name]
                sl = slice(o, o + p.q.size)
                arrays = {"spikes": rso[:, :, sl], "u": ruo[:, :, sl], "v": rvo[:, :, sl]}
            for var in record:
                if var in arrays:
                    out[f"{name}/{var}"] = np.ascontiguousarray(arrays[var], dtype=np.int32)
        return out
