"""The emulator on a gated theta network: a Program with GatedTheta populations (Huh &
Sejnowski's gated synapse as a neuron feature of a float core's software, spinnaker2) run
with :func:`neurocomp.kernels.gated.run_gated`, the discrete model's one definition; on
loihi2 the same kernel in its fixed arithmetic (the microcode neuron of the profile's
``GatedTheta`` formats: polynomial cosine, phases in turns, every product floored).

:class:`~.emulator.Emulator` returns a :class:`GatedEmulator` for such a Program. The network
is one structure, as the discrete model has it: input populations (``SpikeInput``) driven
with analog currents (the task's waveforms, applied in the step they are given for), the
gated populations (concatenated in program order), one ``LI`` readout without a synaptic
current. Weights are the compiled ones as the chip holds them (the int8 mantissas times
their per-row power-of-two unit, or loihi2's), everything runs in float32 (float cores) or on
the fixed formats' grids (loihi2: inputs are graded payloads on the current's grid, rounded to
nearest; the readout is part of the program, with the LI's 12-bit decay). The readout's ``v``
is recorded as the chip holds it, model units times ``2**scale_exp``. Timing and the readout follow
the discrete model: the charge ``s`` reaches the gated neurons in the next step (the
profile's one-step synaptic delay) and the readout in the same step, whose input gain is
``1 - kappa`` (the normalized leak the trained readout weights assume). What the structure
cannot hold is refused by name (:meth:`GatedLayer.of`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..arith.decay import decay_factor
from ..compiler.program import Program
from ..errors import Problem
from ..kernels.gated import (
    E_FMT,
    E_FOUND,
    E_NEURON,
    E_STEP,
    E_TRIAL,
    E_VALUE,
    FORMATS,
    FX_ERR,
    FX_I,
    FX_Y,
    chip_constants,
    fixed_arith,
    float_arith,
    passages,
    run_gated,
    theta_span,
)
from .emulator import Emulator, EmulatorError, EmulatorOverflowError
from .plastic import chip_weight_matrix

GATED_RECORDABLE = ("theta", "s", "I", "spikes", "v")
_CONSTS = ("bias", "eps", "alpha", "beta", "width")
# the Emulator's learning options at their defaults (read from it: a gated network takes no other)
_LEARN_DEFAULTS = {k: p.default for k, p in inspect.signature(Emulator.__init__).parameters.items()
                   if k.startswith("learn_")}  # fmt: skip


@dataclass(frozen=True)
class GatedLayer:
    """A Program as the gated network: offsets of the input and gated populations, the
    readout's name, the weights ``w_in`` ``[n, n_in]``, ``w_rec`` ``[n, n]``, ``w_out``
    ``[n_out, n]`` (model units), the per-neuron constants (``consts[name]``, ``[n]``), the
    initial phases ``theta0``, the readout's ``kappa`` and bias ``b_out``, all in the
    arithmetic's dtype (float32, or float64 holding the fixed registers: turns, ``width`` as
    1/turn); the kernel's ``fx``, ``cc`` and the readout's recording scale ``v_scale``."""

    inputs: dict[str, int]
    gated: dict[str, int]
    readout: str
    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    consts: dict[str, np.ndarray]
    theta0: np.ndarray
    cosine: bool
    kappa: np.floating
    b_out: np.ndarray
    fx: np.ndarray
    cc: np.ndarray
    v_scale: float

    @classmethod
    def of(cls, program: Program, strict: bool = False) -> GatedLayer:
        """The layer of ``program``, or an :class:`EmulatorError` naming everything the gated
        network cannot hold: models other than SpikeInput, GatedTheta and one LI readout
        without a synaptic current, mixed gate shapes, and projections other than input ->
        gated, gated -> gated and gated -> readout without delay or learning. ``strict``:
        the fixed arithmetic records its first overflow (:func:`~neurocomp.kernels.gated.fixed_arith`)."""
        problems: list[Problem] = []
        offs: dict[str, dict[str, int]] = {"SpikeInput": {}, "GatedTheta": {}, "LI": {}}
        size = dict.fromkeys(offs, 0)
        for q in program.populations:
            where = f"population {q.name!r}"
            if q.model not in offs:
                problems.append(Problem(where, f"{q.model}: a gated network has inputs, GatedTheta and one LI readout"))
                continue
            if q.model == "LI" and _decay(program, q, "current") != 0.0:
                problems.append(Problem(where, "the gated network's readout integrates s directly (no tau_syn_ms)"))
            offs[q.model][q.name] = size[q.model]
            size[q.model] += q.size
        gq = [program.population(n) for n in offs["GatedTheta"]]
        shapes = sorted({q.params["zone_shape"] for q in gq})
        if len(shapes) > 1:
            problems.append(Problem("network", f"one gate shape per network, found {shapes}"))
        if len(offs["LI"]) != 1:
            problems.append(Problem("network", f"a gated network has one LI readout, found {len(offs['LI'])}"))
        n_in, n = size["SpikeInput"], size["GatedTheta"]
        n_out = size["LI"] if len(offs["LI"]) == 1 else 0
        mats = {("SpikeInput", "GatedTheta"): np.zeros((n, n_in)), ("GatedTheta", "GatedTheta"): np.zeros((n, n)),
                ("GatedTheta", "LI"): np.zeros((n_out, n))}  # fmt: skip
        for pr in program.projections:
            problems += _place(program, pr, offs, mats)
        if problems:
            raise EmulatorError(problems)
        ro = program.population(next(iter(offs["LI"])))

        fixed = program.profile.arithmetic == "fixed"
        dt = np.float64 if fixed else np.float32
        if fixed:  # the registers in chip units (turns, 1/turn), exact on their grids
            state = program.profile.neuron_models["GatedTheta"].state
            fx, cc = fixed_arith(state, strict)
            regs = [chip_constants({k: q.params[k] for k in (*_CONSTS, "theta0")}, state) for q in gq]
            b_out = float(ro.params["bias_mant"]) * 2.0 ** (int(ro.params["bias_exp"]) - ro.scale_exp)
        else:
            fx, cc = float_arith(dt)
            regs = [{k: q.params[k] for k in (*_CONSTS, "theta0")} for q in gq]
            b_out = ro.params.get("bias", 0.0)

        def per_neuron(key: str) -> np.ndarray:
            return np.concatenate([np.full(q.size, r[key], dt) for q, r in zip(gq, regs, strict=True)])

        w_in, w_rec, w_out = (m.astype(dt) for m in mats.values())
        return cls(
            offs["SpikeInput"], offs["GatedTheta"], ro.name, w_in, w_rec, w_out,
            {k: per_neuron(k) for k in _CONSTS}, per_neuron("theta0"), shapes[0] == "cosine",
            dt(_decay(program, ro, "voltage")), np.full(ro.size, b_out, dt), fx.astype(dt), cc.astype(dt),
            2.0**ro.scale_exp,
        )  # fmt: skip

    @property
    def dtype(self):
        return self.theta0.dtype


def _decay(program: Program, q, role: str) -> float:
    """The readout's ``role`` decay factor: the float register, or the fixed code's factor."""
    v = q.params[f"{role}_decay"]
    return float(v) if program.profile.arithmetic != "fixed" else decay_factor(program.profile.formats.decay, v, role)


def _place(program: Program, pr, offs, mats) -> list[Problem]:
    """Put projection ``pr``'s weights (as the chip holds them, model units, float64 until
    the one cast to float32) into its block, or say why it does not fit."""
    where = f"projection {pr.name!r}"
    pre = next((m for m, d in offs.items() if pr.pre in d), None)
    post = next((m for m, d in offs.items() if pr.post in d), None)
    if (pre, post) not in mats:
        return [Problem(where, f"{pre} -> {post}: a gated network has input -> gated, gated -> gated and "
                               "gated -> readout projections")]  # fmt: skip
    out = []
    if np.any(np.asarray(pr.delay_steps) != 0):
        out.append(Problem(where, "delays: the gated network's charge arrives in the next step; no further delay"))
    if pr.plasticity is not None:
        msg = "a gated network runs static; rule 'gated' trains with neurocomp.analysis.gated_chip.train_on_chip"
        out.append(Problem(where, f"{pr.plasticity.name}: {msg}"))
    if out:
        return out
    r0, c0 = offs[post][pr.post], offs[pre][pr.pre]
    mats[pre, post][r0 : r0 + pr.shape[0], c0 : c0 + pr.shape[1]] += chip_weight_matrix(pr, program.profile)
    return []


class GatedEmulator(Emulator):
    """:class:`~.emulator.Emulator` for a gated theta network (made by ``Emulator(program)``
    when the Program has GatedTheta populations). ``run`` takes input currents (float, as the
    task gives them) and records ``theta``, ``s``, ``I`` and ``spikes`` (zone passages per
    step) of the gated populations and ``v`` of the readout, ``[steps, batch, neurons]``
    in the arithmetic's dtype (``theta`` in rad, spikes int32). No learning. The fixed formats
    saturate or wrap as the profile says (a wrapping phase is recorded wrapped, its passages
    counted modulo the register's span); ``strict`` (fixed arithmetic only) raises
    :class:`~.emulator.EmulatorOverflowError` at the first value that leaves its register,
    and the run that met it is not applied."""

    def __init__(self, program: Program, batch: int = 1, seed: int = 0, strict: bool = False, **learn):
        bad = [k for k, v in learn.items() if _LEARN_DEFAULTS.get(k, ()) != (tuple(v) if k == "learn_float" else v)]
        problems = [Problem("emulator", f"{', '.join(bad)}: a gated network runs without learning")] if bad else []
        if strict and program.profile.arithmetic != "fixed":
            problems.insert(0, Problem("emulator", f"strict: {program.profile.name}'s GatedTheta neuron is "
                                                   f"{program.profile.arithmetic}, with no register to overflow"))
        if problems:
            raise EmulatorError(problems)
        self.program, self.profile, self.batch, self.seed, self.strict = program, program.profile, batch, seed, strict
        self.plastic: dict = {}  # nothing learns (the Emulator's interface)
        self._core = None  # not a ReckOn core
        self.layer = GatedLayer.of(program, strict)
        self.reset()

    def reset(self, keep_weights: bool = False) -> None:
        L, b = self.layer, self.batch
        self.t = 0
        self._th = np.repeat(L.theta0[None], b, axis=0)
        self._s = np.zeros_like(self._th)
        self._y = np.zeros((b, L.w_out.shape[0]), L.dtype)

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The phase and charge of each gated population and the readout's ``v`` ``[batch, n]``."""
        out = {f"{self.layer.readout}/v": self._y * self.layer.v_scale}
        for name, o in self.layer.gated.items():
            sl = slice(o, o + self.program.population(name).size)
            out |= {f"{name}/theta": self._rad(self._th[:, sl]), f"{name}/s": self._s[:, sl].copy()}
        return out

    def step(self, inputs: Mapping[str, np.ndarray] | None = None, learn: bool = False) -> None:
        """Advance one step; ``inputs`` maps input populations to ``[batch, n]`` or ``[n]`` currents."""
        self.run(1, {k: np.asarray(v)[None] for k, v in (inputs or {}).items()}, record=())

    def run(self, steps: int, inputs=None, record=("spikes",), learn: bool = False) -> dict[str, np.ndarray]:
        """Run ``steps`` steps on ``inputs``: every input population's currents, ``[steps,
        batch, n]`` or ``[steps, n]`` (shared by all trials)."""
        bad = [v for v in record if v not in GATED_RECORDABLE]
        if bad or learn:
            msg = f"cannot record {bad} (recordable: {', '.join(GATED_RECORDABLE)})" if bad else "no on-chip learning"
            raise EmulatorError([Problem("record" if bad else "learn", msg)])
        L, b = self.layer, self.batch
        x = self._currents(inputs or {}, steps)
        th = np.empty((steps + 1, b, L.theta0.size), L.dtype)
        s = np.empty_like(th)
        th[0], s[0] = self._th, self._s
        cur = np.empty((steps, b, L.theta0.size), L.dtype)
        y = np.empty((steps, b, L.w_out.shape[0]), L.dtype)
        c = L.consts
        L.fx[FX_ERR:] = 0  # a strict run's record
        run_gated(
            x, L.w_in, L.w_rec, L.w_out, c["bias"], c["eps"], c["alpha"], c["beta"], c["width"], L.cosine, L.kappa,
            L.b_out, th, s, cur, y, self._y, L.fx, L.cc,
        )  # fmt: skip
        if self.strict and L.fx[FX_ERR + E_FOUND]:
            self._raise_overflow()
        self._th, self._s = th[-1].copy(), s[-1].copy()
        if steps:
            self._y = y[-1].copy()
        self.t += steps
        return self._recordings(record, th, s, cur, y)

    def _raise_overflow(self):
        """The named error of a strict run's first overflow (the kernel's record in ``fx``)."""
        rec = self.layer.fx[FX_ERR:].astype(np.int64)
        reg, i = FORMATS[rec[E_FMT]], int(rec[E_NEURON])
        lo, hi = self.profile.neuron_models["GatedTheta"].state[reg].int_range()
        if rec[E_FMT] == FX_Y:
            where = f"population {self.layer.readout!r}"
        else:  # the gated population that holds neuron i
            name = max((o, n) for n, o in self.layer.gated.items() if o <= i)[1]
            where, i = f"population {name!r}", i - self.layer.gated[name]
        msg = (f"GatedTheta register {reg!r} overflow at step {self.t + rec[E_STEP] + 1}, neuron {i}, "
               f"trial {rec[E_TRIAL]}: value {rec[E_VALUE]} outside [{lo}, {hi}] "
               "(strict; the run is not applied)")  # fmt: skip
        raise EmulatorOverflowError([Problem(where, msg)])

    def _rad(self, th: np.ndarray) -> np.ndarray:
        """Phases in rad (the fixed registers hold turns)."""
        return th * (2 * np.pi) if self.layer.fx.size else th.copy()

    def _unsupported(self, what: str):
        msg = f"{what}: not available for a gated network (it runs, steps, resets and reports its state)"
        raise EmulatorError([Problem("emulator", msg)])

    def get_weights(self, projection: str) -> np.ndarray:
        self._unsupported(f"get_weights({projection!r})")

    def set_weights(self, projection: str, weights) -> None:
        self._unsupported(f"set_weights({projection!r})")

    def weights_at_edge(self):
        self._unsupported("weights_at_edge")

    def checkpoint(self):
        self._unsupported("checkpoint")

    def restore(self, ckpt) -> None:
        self._unsupported("restore")

    def run_inputs(self, inputs, steps: int):
        self._unsupported("run_inputs")

    def attach_shadow(self, *args, **kwargs):
        self._unsupported("attach_shadow")

    def _currents(self, given: Mapping[str, np.ndarray], steps: int) -> np.ndarray:
        """``[steps, batch, n_in]`` currents from the given ones, each checked by name (fixed:
        the graded payloads, rounded to nearest on the current's grid; one outside its range is
        named)."""
        L, b = self.layer, self.batch
        x = np.zeros((steps, b, L.w_in.shape[1]), L.dtype)
        problems = [Problem(f"inputs[{k!r}]", "not an input population of the gated network")
                    for k in given if k not in L.inputs]  # fmt: skip
        for name, o in L.inputs.items():
            n = self.program.population(name).size
            if name not in given:
                problems.append(Problem(f"inputs[{name!r}]", "missing: the gated network's inputs are currents"))
                continue
            a = np.asarray(given[name], np.float64)
            if a.shape not in ((steps, b, n), (steps, n)) or not np.all(np.isfinite(a)):
                problems.append(Problem(f"inputs[{name!r}]", f"expected finite currents [{steps}, {b}, {n}] or "
                                                             f"[{steps}, {n}], got shape {a.shape}"))  # fmt: skip
                continue
            if L.fx.size:  # the graded payload: the current's grid
                sc, lo, hi = L.fx[4 * FX_I : 4 * FX_I + 3]
                a = np.round(a * sc) / sc
                if a.size and not lo <= a.min() <= a.max() <= hi:
                    msg = f"currents in [{a.min():g}, {a.max():g}] leave the graded payload's range [{lo:g}, {hi:g}]"
                    problems.append(Problem(f"inputs[{name!r}]", msg))
                    continue
            x[:, :, o : o + n] = a if a.ndim == 3 else a[:, None]
        if problems:
            raise EmulatorError(problems)
        return x

    def _recordings(self, record, th, s, cur, y) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if "v" in record:
            out[f"{self.layer.readout}/v"] = y * y.dtype.type(self.layer.v_scale)
        for name, o in self.layer.gated.items():
            sl = slice(o, o + self.program.population(name).size)
            rad = self._rad(th[:, :, sl])
            arrays = {"theta": rad[1:], "s": s[1:, :, sl], "I": cur[:, :, sl]}
            if "spikes" in record:  # passages of pi (mod 2 pi) per step
                arrays["spikes"] = passages(rad, 2 * np.pi * theta_span(self.layer.fx)).astype(np.int32)
            out |= {f"{name}/{v}": np.ascontiguousarray(arrays[v]) for v in record if v in arrays}
        return out
