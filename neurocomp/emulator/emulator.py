"""The bit-accurate emulator: steps a compiled Program in the chip's arithmetic.

One engine serves every profile. Fixed-point profiles run on integer state with the
profile's decays, shifts, overflow and registers (Lava: u and v computed in int32); the
integers are held exactly in float64 arrays (see :mod:`neurocomp.arith.fixed` for why that
is exact), and every bound that exactness needs is checked when the emulator is built.
Float profiles run in float32. The neuron update and delivery are compiled kernels
(:mod:`neurocomp.kernels`) over a flat layout of the states (:mod:`.layout`); a run with
nothing to do in Python between steps (no plastic projection or error unit) is one kernel
call per chunk of steps. ``Emulator.state``, checkpoints and recordings give integers as
integers. A step ``t`` (1-based, as Lava counts) does, in order:

1. spike inputs emit their step-``t`` spikes (row ``t - 1`` of a given array, as Lava's
   RingBuffer sends column ``(t - 1) % length`` at step ``t``; or a frozen Poisson draw);
   projections with zero latency deliver them at once;
2. every neuron population reads the input that arrived for step ``t`` and updates:
   ``u <- decay(u) + (a << input_shift)`` (overflow per profile; the shift is applied as
   the input is delivered), ``v <- decay(v) + u + bias`` (overflow per profile), spike if
   ``v`` exceeds the threshold, reset; then error units (e-prop) read their readouts;
3. every projection accumulates the step-``t`` spikes of its pre population with its
   current weights and schedules them for step ``t + latency + delay`` (latency: the
   profile's synaptic delay, 1 on Loihi); feedback from error units goes to the post
   neurons' learning-signal port instead of ``u``;
4. with ``learn=True``, the learning engines of plastic projections take the step's pre
   and post spikes (and graded third factors), and learn at the end of an epoch.

This is the order of Lava's fixed-point LIF, Dense and LearningDense models (reference
semantics for loihi2); see the profile for each chip's formats. Chips that saturate after
every synaptic add (``time.saturation: per_add``, Xylo) run on their layer engine instead
(:mod:`.xylo`): ``Emulator(program)`` returns a :class:`~.xylo.XyloEmulator` for them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_savez
from .._resources import emulator_bytes, require_memory
from ..arith.fixed import decay_multiplier, exact_in_float64
from ..compiler.ir import QPopulation
from ..compiler.program import Program
from ..errors import NeurocompError, Problem
from ..graph.inputs import PoissonSource, graded_values, per_trial, spike_counts, unfed_inputs
from ..kernels import announce_compile, call_parallel
from ..kernels import errors as ke
from ..kernels import neurons as kn
from ..kernels import run as kr
from ..learning.engine import LEARN_QUANTITIES, SumOfProductsEngine
from ..learning.programmable import ProgrammableEprop
from ..learning.quantities import ce_error_exact, ce_error_fixed
from ..learning.reckon import ReckonLearning
from ..learning.rule import EngineRule
from . import layout as lay
from .fused import fused_learning
from .plastic import LEARNING_VARS, PlasticSynapses
from .programmable import EpropLearner, NonFiniteWeightsError, ProgrammableSynapses
from .reckon import ReckonChip, ReckonCore, ReckonLearner, ReckonRandom, ReckonShapeError, ReckonSynapses
from .synapses import Synapses

RECORDABLE = ("spikes", "v", "u", "u2", "a") + LEARNING_VARS  # u2: a second synaptic current (Xylo)


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
        meta = {"t": self.t, "rng_states": self.rng_states, "program_fingerprint": self.program_fingerprint}
        arrays = {"__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **self.arrays}
        return atomic_savez(path, arrays)  # a crash while saving keeps the previous checkpoint

    @classmethod
    def load(cls, path: str | os.PathLike) -> Checkpoint:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
        return cls(meta["t"], arrays, meta["rng_states"], meta["program_fingerprint"])


POPULATION_KINDS = {"SpikeInput": "input", "LIF": "lif", "ALIF": "alif", "LI": "li", "ErrorUnit": "error"}


def _checked_options(program, batch, learn_mode, learn_arithmetic, learn_float, learn_rounding) -> frozenset[str]:
    """Refuse bad options (and a batch that does not fit in memory) before anything is
    allocated; returns ``learn_float`` as a set."""
    if batch < 1:
        raise EmulatorError([Problem("emulator", f"batch must be >= 1, got {batch}")])
    pops = [(q.name, q.size) for q in program.populations]  # refuse before allocating the batch's state
    projs = [(pr.name, pr.n_synapses, not pr.is_sparse) for pr in program.projections]
    require_memory(emulator_bytes(pops, projs, batch, 0, 0), f"emulating {program.network_name!r} x {batch}")
    if learn_arithmetic not in ("chip", "float"):
        raise EmulatorError(
            [Problem("emulator", f"learn_arithmetic must be 'chip' or 'float', got {learn_arithmetic!r}")]
        )
    if learn_mode not in ("independent", "shared"):
        raise EmulatorError([Problem("emulator", f"learn_mode must be 'independent' or 'shared', got {learn_mode!r}")])
    learn_float = frozenset([learn_float] if isinstance(learn_float, str) else learn_float)
    if learn_float - set(LEARN_QUANTITIES):
        unknown = sorted(learn_float - set(LEARN_QUANTITIES))
        raise EmulatorError(
            [Problem("emulator", f"learn_float: unknown quantities {unknown} (valid: {', '.join(LEARN_QUANTITIES)})")]
        )
    if learn_rounding not in (None, "stochastic", "nearest"):
        raise EmulatorError(
            [Problem("emulator", f"learn_rounding must be None, 'stochastic' or 'nearest', got {learn_rounding!r}")]
        )
    return learn_float


# the learning IR's type -> the runtime form of its projections ``make(emulator, projection, latency)``
PLASTIC_SYNAPSES = {
    EngineRule: lambda emu, pr, lat: PlasticSynapses(
        pr, lat, emu.profile, emu.batch, emu.learn_mode, emu.learn_arithmetic, emu.learn_float, emu.learn_rounding
    ),
    ReckonLearning: lambda emu, pr, lat: ReckonSynapses(pr, lat, emu.profile, emu.batch, emu.learn_float),
    ProgrammableEprop: lambda emu, pr, lat: ProgrammableSynapses(pr, lat, emu.profile, emu.batch, emu._learn_dtype),
}

# synapses driven by one learner per readout -> (``make(emulator, synapses)``, what refuses shared learning)
LEARNERS = {
    ReckonSynapses: (
        lambda emu, syns: ReckonLearner(syns, emu.pops, emu.profile, emu.learn_float, emu.learn_rounding),
        "reckon's fixed-function learning",
    ),
    ProgrammableSynapses: (
        lambda emu, syns: EpropLearner(syns, emu.pops, emu.batch, emu.program.dt_ms, emu._learn_dtype),
        "e-prop on programmable cores",
    ),
}


class Emulator:
    """Run a Program: ``Emulator(program, batch=B, seed=S).run(steps, inputs, record)``.

    ``batch``: independent trials run together (trial ``b`` equals the same trial run alone).
    ``seed``: seeds the chip's own randomness (stochastic rounding). ``strict``: raise on the
    first overflow (naming population, neuron, trial, step and value) instead of wrapping or
    saturating as the profile says. ``learn_mode``: for plastic projections in a batch,
    ``"independent"`` (each trial learns its own weights) or ``"shared"`` (one set of weights,
    every trial's update added to it). Learning runs when ``run(..., learn=True)``.
    ``learn_arithmetic``: ``"chip"`` runs the learning engine in the profile's arithmetic;
    ``"float"`` runs the same lowered rule in float64 on the same dynamics (the lowered-float
    level of a rule check); it is exactly ``"chip"`` with every one of
    :data:`LEARN_QUANTITIES` in ``learn_float``.

    Attribution of the gap between the two (the lowered-fixed run repeated with quantities
    switched back to float64, the others as the chip has them):

    ``learn_float``: a subset of :data:`LEARN_QUANTITIES` (a single name is accepted too):

    * ``"weights"``: plastic weights in float64 (loihi2: 9-bit mantissas); an update is
      added exactly, with no 16-bit accumulator and no rounding to the weight's LSB, then
      saturated to the weight format's range by sign mode, as the chip's weights are. The
      synaptic input reads the float weights with the exponent applied exactly, so the
      (otherwise integer) neuron states receive non-integer input; they are float64 arrays
      and carry it unchanged, and ``state``, checkpoints and recordings then give them as
      float64;
    * ``"traces"``: pre and post spike traces (x1, x2; y1..y3 when they are spike traces,
      also a trace the neuron keeps and sends, as R-STDP's y1) with exact ``exp(-1/tau)``
      decays and impulses, unsaturated (loihi2: 7-bit, stochastically rounded);
    * ``"graded"``: the graded third factors unquantized: the pseudo-derivative and the
      learning signal (7-bit on loihi2, with its rate-regularization trace), the error units'
      payload (8-bit, with the target rounded to the readout's integer units) and hence the
      feedback sum, and graded inputs such as a reward;
    * ``"tags"``: the tags ``t`` and ``d`` in float64, updated exactly and unsaturated (9-bit);
    * ``"products"``: the engine's products divided exactly by their width shift instead of
      floor-shifted (loihi2: a product wider than the 16-bit accumulator loses its low bits,
      which biases it downwards), with the variables still rounded onto their grid.

    ``learn_rounding``: None (the profile's: stochastic on loihi2 and reckon), or
    ``"stochastic"`` or ``"nearest"`` for every stochastic rounding of the learning engine:
    trace decays and impulse fractions and the synaptic variables' rounding onto their grid
    (loihi2, with Lava's ConnVarRandom draw), the trace decays and +-1 LSB weight steps
    (reckon). Nearest rounds halves up; the random streams advance as before, so nothing
    else changes. It acts on the quantities still in fixed point.

    ReckOn's engine takes ``"weights"``, ``"traces"`` and ``"graded"`` (its error and learning
    signal) and ``learn_rounding``; it has no tags and no sum of products (its ``"float"`` is
    those three).
    Programmable cores run the exact rule in their own float format and take none of these.
    A knob an engine cannot honour is an error naming it; with the defaults (``()`` and
    None) every run is the chip's, bit for bit.
    """

    def __new__(cls, program: Program, *args, **kwargs):
        # chips that saturate after every synaptic add run on their layer engine (Xylo)
        if cls is Emulator and program.profile.time.saturation == "per_add":
            from .xylo import XyloEmulator

            cls = XyloEmulator
        # gated theta networks run as the discrete model on a float core's software (spinnaker2)
        if cls is Emulator and any(q.model == "GatedTheta" for q in program.populations):
            from .gated import GatedEmulator

            cls = GatedEmulator
        return super().__new__(cls)

    def __init__(
        self,
        program: Program,
        batch: int = 1,
        seed: int = 0,
        strict: bool = False,
        learn_mode: str = "independent",
        learn_arithmetic: str = "chip",
        learn_float: Iterable[str] = (),
        learn_rounding: str | None = None,
    ):
        learn_float = _checked_options(program, batch, learn_mode, learn_arithmetic, learn_float, learn_rounding)
        self.learn_mode = learn_mode
        self.learn_arithmetic = learn_arithmetic
        # the quantities the learning holds in float64 ("float": all of them)
        self.learn_float = frozenset(LEARN_QUANTITIES) if learn_arithmetic == "float" else learn_float
        self.learn_rounding = learn_rounding
        self.program = program
        self.profile = prof = program.profile
        self.batch = batch
        self.seed = seed
        self.strict = strict
        self.fixed = prof.arithmetic == "fixed"
        self._dtype = np.float64 if self.fixed else np.float32
        # programmable cores' learners: float32 as on the core, float64 for the lowered-float level
        self._learn_dtype = np.float64 if learn_arithmetic == "float" else np.float32
        self._one_spike = prof.time.max_spikes_per_step == 1
        self.t = 0
        self.rng = np.random.default_rng(seed)
        # graded float (attribution): the error units send unquantized errors
        self._graded_float = self.fixed and "graded" in self.learn_float
        self._build_populations()
        self._chip_random = self._make_chip_random(batch, seed) if prof.random_sources else None
        self._build_synapses()
        self._check_learn_knobs(learn_float, learn_rounding)
        # float weights or errors feed non-integer values into the fixed-point states
        self._float_states = self.fixed and bool(self.plastic) and bool(self.learn_float & {"weights", "graded"})
        self._build_learners()
        # graded feedback (from error units) goes to a population's learning-signal port, not to u
        self._feedback = {s.name for s in self.synapses if self.pops[s.pre].kind == "error"}
        self._keep_membrane_before_reset()
        self.shadow: dict[str, PlasticSynapses] = {}
        self._unlowered = [
            (pr.name, pr.plasticity.name) for pr in program.projections if pr.plasticity and pr.learning is None
        ]
        self._slots = {
            name: 1 + max([s.latency + s.max_delay for s in self.synapses if s.post == name], default=0)
            for name in self.pops
        }
        self._input_rngs = self._poisson_sources()
        self._core = self._make_core()
        self._build_layout()
        self.reset()

    # -- building ----------------------------------------------------------------------
    def _build_populations(self) -> None:
        self.pops: dict[str, _Population] = {}
        for q in self.program.populations:
            self.pops[q.name] = _Population(q, POPULATION_KINDS[q.model], const=self._constants(q))

    def _latency(self, pr) -> int:
        """The profile's synaptic delay (its input delay for projections from spike inputs)."""
        t = self.profile.time
        if self.pops[pr.pre].kind == "input" and t.input_delay_steps is not None:
            return t.input_delay_steps
        return t.synaptic_delay_steps

    def _build_synapses(self) -> None:
        """Each projection's runtime form: by its learning IR's type (:data:`PLASTIC_SYNAPSES`),
        graded delivery from error units, or static spikes."""
        prof = self.profile
        self.synapses: list = []
        for pr in self.program.projections:
            lat = self._latency(pr)
            if pr.learning is not None:
                make = PLASTIC_SYNAPSES.get(type(pr.learning))
                if make is None:
                    raise EmulatorError(
                        [Problem(f"projection {pr.name!r}", f"no emulator for learning {type(pr.learning).__name__}")]
                    )
                self.synapses.append(make(self, pr, lat))
            elif self.pops[pr.pre].kind == "error":  # graded payloads of up to `bits` signed bits
                bits = self.pops[pr.pre].q.params["bits"]
                self.synapses.append(Synapses(pr, lat, prof, 2 ** (bits - 1), graded=True))
                if self._graded_float:  # unquantized errors: delivered exactly
                    self.synapses[-1].carry_float()
            else:
                self.synapses.append(Synapses(pr, lat, prof, prof.time.max_spikes_per_step))
        self.plastic = {s.name: s for s in self.synapses if type(s) is not Synapses}

    def _build_learners(self) -> None:
        """The learners that drive several projections together (:data:`LEARNERS`): one per
        readout, whose target drives its projections; they read the hidden membrane before
        its reset."""
        self._learners: dict[str, Any] = {}
        for cls, (make, what) in LEARNERS.items():
            syns = [s for s in self.synapses if isinstance(s, cls)]
            if syns and self.learn_mode != "independent":
                raise EmulatorError([Problem("emulator", f"{what} runs independent trials")])
            for readout in sorted({s.rule.readout for s in syns}):
                learner = make(self, [s for s in syns if s.rule.readout == readout])
                self._learners[readout] = learner
                self.pops[learner.hidden].const["keep_v_pre"] = True

    def _keep_membrane_before_reset(self) -> None:
        for syn in self.plastic.values():  # the pseudo-derivative reads v before the reset
            if isinstance(syn, PlasticSynapses) and any(
                src.get("source") == "pseudo_derivative" for src in syn.rule.graded.values()
            ):
                self.pops[syn.post].const["keep_v_pre"] = True

    def _poisson_sources(self) -> dict[str, PoissonSource]:
        """Poisson inputs: one stream per trial (or one shared), see :class:`PoissonSource`."""
        try:
            return {
                name: PoissonSource.of(p.q.params, self.program.dt_ms, p.q.size, self.batch, f"input {name!r}")
                for name, p in self.pops.items()
                if p.kind == "input" and p.q.params.get("rate_hz") is not None
            }
        except NeurocompError as exc:
            raise EmulatorError(exc.problems) from None

    def _make_core(self) -> ReckonCore | None:
        """A ReckOn Program runs as the chip runs it (:class:`~neurocomp.emulator.reckon.ReckonCore`,
        exact against the RTL); the attribution knobs (float quantities, nearest rounding) keep the
        step-by-step learner of :class:`~neurocomp.emulator.reckon.ReckonLearner`."""
        if self._chip_random is None or self.learn_float or self.learn_rounding == "nearest":
            return None
        try:
            chip = ReckonChip(self.program)
        except ReckonShapeError:
            return None
        if self.strict:
            msg = "strict: reckon saturates its membranes once per pre neuron, as the chip does; there is no overflow"
            raise EmulatorError([Problem(f"program {self.program.network_name!r}", msg + " to stop at")])
        return ReckonCore(chip, self._chip_random)

    def _make_chip_random(self, batch: int, seed: int) -> ReckonRandom:
        """The chip's LFSRs (ReckOn), laid out over the core's neurons in program order."""
        try:
            return self._chip_lfsrs(batch, seed)
        except ValueError as exc:
            raise EmulatorError([Problem(f"profile {self.profile.name!r}", str(exc))]) from None

    def _chip_lfsrs(self, batch: int, seed: int) -> ReckonRandom:
        kinds = {name: p.kind for name, p in self.pops.items()}
        sizes = {
            "hidden": [(n, p.q.size) for n, p in self.pops.items() if kinds[n] in ("lif", "alif")],
            "input": sum(p.q.size for n, p in self.pops.items() if kinds[n] == "input"),
            "output": [(n, p.q.size) for n, p in self.pops.items() if kinds[n] == "li"],
        }
        hidden = [n for n in self.pops if kinds[n] in ("lif", "alif")]
        leaks = {n: int(np.max(self.pops[n].q.params["voltage_decay"])) for n in hidden}
        return ReckonRandom(self.profile, batch, seed, sizes, leaks)

    def _check_learn_knobs(self, learn_float: frozenset[str], learn_rounding: str | None) -> None:
        """Refuse attribution knobs the program's learning engines cannot honour, naming them."""
        prog = sorted(n for n, s in self.plastic.items() if isinstance(s, ProgrammableSynapses))
        reckon = sorted(n for n, s in self.plastic.items() if isinstance(s, ReckonSynapses))
        problems = []
        if prog and (learn_float or learn_rounding):
            knobs = [f"learn_float {sorted(learn_float)}"] * bool(learn_float)
            knobs += [f"learn_rounding {learn_rounding!r}"] * bool(learn_rounding)
            problems.append(
                Problem(
                    f"projections {prog}",
                    f"{' and '.join(knobs)}: {self.profile.name}'s programmable cores run the exact rule in "
                    "their own float format; there is no quantized quantity or rounding to switch",
                )
            )
        for q, what in (("tags", "tags (t, d)"), ("products", "sum-of-products engine")):
            if reckon and q in learn_float:
                problems.append(
                    Problem(
                        f"projections {reckon}",
                        f"learn_float {q!r}: reckon's fixed-function e-prop has no {what}; "
                        "it takes 'weights', 'traces' and 'graded'",
                    )
                )
        if problems:
            raise EmulatorError(problems)

    # -- layout ------------------------------------------------------------------------
    def _build_layout(self) -> None:
        """The flat layout of every population's state, the neuron kernel's tables and the
        whole-network delivery tables (see :mod:`.layout`), built once the populations'
        constants are final."""
        two = [pr.name for pr in self.program.projections if pr.port != "syn"]
        if two:
            msg = f"port 'syn2': {self.profile.name}'s emulator has one synaptic current per neuron"
            raise EmulatorError([Problem(f"projections {two}", msg)])
        sizes = {n: p.q.size for n, p in self.pops.items()}
        kinds = {n: p.kind for n, p in self.pops.items()}
        self._blocks = lay.Blocks.of(sizes, self._slots, kinds, self.batch)
        rand_bits = {}
        if self._chip_random is not None:
            for name, p in self.pops.items():
                if p.kind in lay.NEURON_KINDS:
                    rand_bits[name] = self._chip_random.gens["readout" if p.kind == "li" else "membrane"].word_bits
        self._pop_table = lay.neuron_table(self.pops, self._blocks, self._slots, rand_bits)
        cap = self.profile.time.max_spikes_per_step if self.fixed else 1
        self._thr, self._nconst = lay.neuron_constants(self.pops, self._blocks, self._dtype, cap)
        self._mode, self._lims = self._arithmetic()
        drawn = {kn.R_STOCHASTIC, kn.R_LFSR}
        self._rounding_draws = any(int(self._mode[m]) in drawn for m in (kn.M_ROUND_U, kn.M_ROUND_V, kn.M_ROUND_A))
        self._err = np.zeros((3, 6), dtype=np.int64)
        self._block_table = np.array(
            [[self._blocks.state[n], p.q.size] for n, p in self.pops.items() if p.kind != "error"], dtype=np.int64
        ).reshape(-1, 2)
        static = [s for s in self.synapses if type(s) is Synapses and s.name not in self._feedback]
        # the whole run in one kernel call needs every projection static and nothing in Python between steps
        errors = any(p.kind == "error" for p in self.pops.values())
        self._fused = len(static) == len(self.synapses) and not errors and not self._float_states
        self._groups, self._group_arrays = lay.delivery_tables(static if self._fused else [], self._blocks, self._slots)

    def _arithmetic(self) -> tuple[np.ndarray, np.ndarray]:
        """The neuron kernel's ``mode`` (roundings, overflow, registers, threshold test,
        strictness) and ``lims`` (integer ranges of u, v, a) for this profile."""
        mode = np.zeros(kn.M_LEN, dtype=np.int64)
        lims = np.zeros((3, 2))
        mode[kn.M_GE] = self.profile.time.threshold == "greater_equal"
        mode[kn.M_STRICT] = self.strict
        if not self.fixed:  # float32: every rounding and overflow NONE
            return mode, lims
        f = self.profile.formats
        d = f.decay
        lfsr = d.rounding == "stochastic" and d.stochastic_rule == "lfsr"
        rnd = kn.ROUNDINGS[d.rounding]
        mode[kn.M_ROUND_U] = kn.R_NONE if lfsr else rnd  # no synaptic current: u leaks to 0 exactly
        mode[kn.M_ROUND_V] = kn.R_LFSR if lfsr else rnd
        mode[kn.M_ROUND_A] = rnd
        mode[kn.M_BITSHIFT] = d.representation == "bitshift"
        mode[kn.M_MIN_STEP] = d.min_step
        mode[kn.M_FRAC_BITS] = decay_multiplier(d, 0)[1] if d.representation != "bitshift" else 0
        fmt_a = (
            self.profile.neuron_models["ALIF"].state.get("a", f.voltage)
            if "ALIF" in self.profile.neuron_models
            else f.voltage
        )
        for var, fmt in enumerate((f.current, f.voltage, fmt_a)):
            mode[kn.M_OVF_U + var] = kn.OVERFLOWS[fmt.overflow]
            mode[kn.M_BITS_U + var] = fmt.bits
            mode[kn.M_REG_U + var] = fmt.register_bits
            lims[var] = fmt.int_range()
        self._formats = (f.current, f.voltage, fmt_a)
        return mode, lims

    def _allocate(self) -> None:
        """Fresh zero states: the flat arrays of :mod:`.layout` and each population's views."""
        dt, b, blk = self._dtype, self.batch, self._blocks
        spike_dt = bool if self._one_spike else dt  # a flag where one spike per step is the most
        self._st = np.zeros((kn.S_ROWS, blk.n_state), dt)
        self._spikes = np.zeros(blk.n_state, spike_dt)
        self._ring = np.zeros(blk.n_ring, dt)
        for name, p in self.pops.items():
            n = p.q.size
            if p.kind == "error":
                p.state = {"spikes": np.zeros((b, n), dt)}  # the graded payload e_k
                continue
            off = blk.state[name]
            views = {"spikes": lay.block_view(self._spikes, off, (b, n))}
            if p.kind != "input":
                names = ["u", "v"] + ["a"] * (p.kind == "alif") + ["refractory"] * (p.kind in ("lif", "alif"))
                if p.const.get("keep_v_pre"):  # the membrane before the reset, read by pseudo-derivatives
                    names += ["v_pre"] + ["th_pre"] * (p.kind == "alif")
                views.update({var: lay.block_view(self._st[lay.STATE_ROWS[var]], off, (b, n)) for var in names})
                views["input"] = lay.block_view(self._ring, blk.ring[name], (self._slots[name], b, n))
                if any(syn.post == name for syn in self.synapses if syn.name in self._feedback):
                    views["ls"] = np.zeros((self._slots[name], b, n), dt)  # learning-signal port
            p.state = lay.StateViews(views)
        self._no_draws = np.zeros((1, 3, blk.n_state))  # rounding numbers where no rounding draws
        self._plan()

    def _plan(self) -> None:
        """What a step touches, bound once per allocation (the Python loop of a learning run
        walks these lists, not the whole program): input populations, learning-signal ports,
        projections delivering before (zero latency) and after the neuron update with their
        target rings, error units, and the neuron kernel's arguments."""
        pops = self.pops
        self._inputs_plan = [(name, p) for name, p in pops.items() if p.kind == "input"]
        self._ls_ports = [p.state["ls"] for p in pops.values() if "ls" in p.state]
        self._errors_plan = [(name, p) for name, p in pops.items() if p.kind == "error"]
        port = {s.name: "ls" if s.name in self._feedback else "input" for s in self.synapses}
        deliveries = [(s, pops[s.pre], pops[s.post].state[port[s.name]]) for s in self.synapses]
        self._deliver_first = [d for d in deliveries if d[0].latency + d[0].max_delay == 0]
        self._deliver_after = [d for d in deliveries if d[0].latency + d[0].max_delay > 0]
        self._neuron_args = (self._st, self._spikes, self._ring, self._pop_table, self._thr, self._nconst)

    # -- state -------------------------------------------------------------------------
    def reset(self, keep_weights: bool = False) -> None:
        """Zero every state (the initial state of a compiled Program) and restart at step 0.
        ``keep_weights``: plastic projections keep the weights they learned and their random
        streams continue (a new trial of training on a chip that keeps running); their tags,
        traces and the neuron states restart. (ReckOn: the sample's closing tick draws its
        rounding numbers, see :class:`~neurocomp.emulator.reckon.ReckonCore`.)"""
        if getattr(self, "_core", None) is not None and keep_weights and self.t > 0:
            self._core.end_sample()
        self._allocate()
        for syn in getattr(self, "plastic", {}).values():
            arrays, rngs = syn.engine.get_state()
            syn.reset()
            if keep_weights:
                syn.engine.set_state({"w": arrays["w"]}, rngs)
        for learner in getattr(self, "_learners", {}).values():
            if isinstance(learner, EpropLearner):
                learner.reset(keep=keep_weights)
        if self._chip_random is not None and not keep_weights:  # kept weights: the chip keeps running
            self._chip_random.reset()
        self.t = 0
        self.rng = np.random.default_rng(self.seed)
        for source in self._input_rngs.values():
            source.reset()

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of every state array, keyed ``<population>/<variable>``: int64 for the
        integers of a fixed-point chip, spike counts and refractory counters; float32 for
        the states of a float chip."""
        out = {f"{n}/{k}": self._external(k, v, p.kind) for n, p in self.pops.items() for k, v in p.state.items()}
        for name, syn in self.plastic.items():  # learning state: weights, tags, traces, spike times
            out.update({f"{name}/{k}": v.copy() for k, v in syn.engine.state.items()})
            out.update({f"{name}/neuron_{k}": v.copy() for k, v in syn.neuron_traces.items()})
        for readout, learner in self._learners.items():  # exact e-prop's traces and eligibilities
            if isinstance(learner, EpropLearner):
                out.update({f"{readout}/learner:{k}": v.copy() for k, v in learner.state.items()})
        return out

    def get_weights(self, projection: str) -> np.ndarray:
        """A copy of a plastic projection's current weights, ``[trials or 1, post, pre]`` (one
        set with ``learn_mode="shared"``), in the units its learning engine holds them: chip
        mantissas (integers) in the chip's arithmetic, float64 where ``learn_float`` has
        ``"weights"``, the core's float on programmable cores (``weight_unit`` of the
        projection's synapses converts to model units)."""
        return self._plastic(projection).engine.weights.copy()

    def weights_at_edge(self) -> dict[str, tuple[np.ndarray, int]]:
        """Per plastic projection on a sum-of-products engine: ``(count, synapses)``, ``count``
        ``[trials or 1]`` the synapses whose weight lies within one LSB of the largest
        magnitude of its range now (:meth:`~neurocomp.learning.engine.SumOfProductsEngine.at_edge`: learning
        clipped it, or loses any push past it), ``synapses`` the projection's count. Read
        between runs: saturation at the weight range is reported, not hidden."""
        out = {}
        for name, syn in self.plastic.items():
            eng = getattr(syn, "engine", None)
            if isinstance(eng, SumOfProductsEngine):
                n = int(eng.mask.sum()) if eng.mask is not None else int(np.prod(eng.weights.shape[1:]))
                out[name] = (eng.at_edge(), n)
        return out

    def set_weights(self, projection: str, weights) -> None:
        """Replace a plastic projection's weights: units and shape as :meth:`get_weights`, or
        ``[post, pre]`` for every trial; cast to the engine's dtype (integers truncate: round
        first). The engine takes them as state set from outside, so its next learning phase
        visits every synapse (nothing cached about the old weights is reused), as after
        :meth:`reset`."""
        syn = self._plastic(projection)
        have = syn.engine.weights.shape
        w = np.asarray(weights)
        if w.shape == have[1:]:
            w = np.broadcast_to(w, have)
        if w.shape != have:
            raise EmulatorError([Problem(f"projection {projection!r}", f"weights of shape {w.shape}, expected {have}")])
        syn.engine.set_state({"w": w}, None)

    @property
    def reckon_core(self) -> ReckonCore | None:
        """The ReckOn core this Program runs on as the chip (its image ``.chip`` and LFSRs
        ``.rand``), or None (another profile, or a learning-attribution run)."""
        return self._core

    def run_inputs(self, inputs: Mapping[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
        """``inputs`` checked as :meth:`run` checks them (a named error otherwise), with each
        input population's spikes for the next ``steps`` steps, ``[steps, batch, size]``: the
        given ones, or its frozen Poisson draws (drawn here, as the run would draw them)."""
        given = self._check_inputs(dict(inputs), steps)
        for name, p in self.pops.items():
            if p.kind == "input":
                given[name] = self._input_chunk(name, p, given, 0, steps)
        return given

    def _plastic(self, projection: str):
        if projection not in self.plastic:
            what = "is static (its weights are compiled into the Program)"
            if not any(pr.name == projection for pr in self.program.projections):
                what = "is not a projection of the program"
            raise EmulatorError([Problem(f"projection {projection!r}", f"{what}; plastic: {sorted(self.plastic)}")])
        return self.plastic[projection]

    def _external(self, var: str, arr: np.ndarray, kind: str = "") -> np.ndarray:
        if self._float_states and arr.dtype != bool and var != "refractory" and (var != "spikes" or kind == "error"):
            return arr.copy()  # attribution: float weights or errors make these non-integer (float64 as held)
        if self.fixed or var in ("spikes", "refractory") or arr.dtype == bool:
            return arr.astype(np.int64)
        return arr.copy()

    def checkpoint(self) -> Checkpoint:
        rngs = {
            "__chip__": self.rng.bit_generator.state,
            **{n: r.state for n, r in self._input_rngs.items()},
            **{f"__learn__/{n}": syn.engine.get_state()[1] for n, syn in self.plastic.items()},
        }
        if self._chip_random is not None:  # the chip's LFSR registers, per trial
            rngs["__lfsr__"] = self._chip_random.get_state()
        return Checkpoint(self.t, self.state, json.loads(json.dumps(rngs)), self.program.profile.fingerprint)

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from ``ckpt``. Every array is checked against this emulator's states
        (names and shapes) before anything is written, so a refused checkpoint changes nothing."""
        if ckpt.program_fingerprint != self.program.profile.fingerprint:
            raise EmulatorError([Problem("checkpoint", "was taken with another profile")])
        current = self.state
        problems = [
            Problem("checkpoint", f"state {k!r} does not belong to this program")
            for k in ckpt.arrays
            if k not in current
        ]
        problems += [
            Problem(
                "checkpoint",
                f"state {k!r} has shape {a.shape}, expected {current[k].shape} (batch differs? learn_mode?)",
            )
            for k, a in ckpt.arrays.items()
            if k in current and a.shape != current[k].shape
        ]
        problems += [Problem("checkpoint", f"state {k!r} is missing") for k in current if k not in ckpt.arrays]
        if self._chip_random is not None:
            lfsr = ckpt.rng_states.get("__lfsr__")
            want = {role: r.shape for role, r in self._chip_random.regs.items()}
            got = {role: np.shape(v) for role, v in (lfsr or {}).items()}
            if got != want:
                problems.append(Problem("checkpoint", f"LFSR registers {got or 'missing'}, expected {want}"))
        if problems:
            raise EmulatorError(problems, header="checkpoint does not fit this emulator")
        for key, arr in ckpt.arrays.items():
            name, var = key.split("/", 1)
            if var.startswith("learner:") and isinstance(self._learners.get(name), EpropLearner):
                self._learners[name].state[var[len("learner:") :]] = arr.astype(self._learn_dtype)
                continue
            if name in self.plastic:
                self._restore_learning(self.plastic[name], var, arr)
                continue
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
            self.pops[name].state[var][...] = arr  # in place: the state is a view of the flat layout
        self.t = ckpt.t
        self.rng.bit_generator.state = ckpt.rng_states["__chip__"]
        for n, r in self._input_rngs.items():
            r.state = ckpt.rng_states[n]
        for n, syn in self.plastic.items():
            syn.engine.set_state({}, ckpt.rng_states[f"__learn__/{n}"])
        if self._chip_random is not None:
            self._chip_random.set_state(ckpt.rng_states["__lfsr__"])

    def attach_shadow(
        self, arithmetic: str = "float", learn_float: Iterable[str] = (), learn_rounding: str | None = None
    ) -> dict[str, PlasticSynapses]:
        """Shadow learners: a second copy of every plastic projection's learning engine, in
        ``arithmetic`` (``"float"`` or ``"chip"``, with ``learn_float`` and ``learn_rounding``
        as for the emulator), that learns from exactly the same spikes and graded signals as
        the running one but never feeds back into the dynamics. Comparing their weight changes
        with the running engine's isolates the learning arithmetic (the teacher-forced
        alignment of a rule check). Starts from the current weights. (The graded values a
        shadow reads are those the running emulator computes: the error units' payload is the
        running emulator's.)"""
        if self._learners:
            raise EmulatorError([Problem("emulator", "shadow learners are for sum-of-products engines")])
        self.shadow = {}
        for name, syn in self.plastic.items():
            args = (syn.proj, syn.latency, self.profile, self.batch, self.learn_mode)
            sh = PlasticSynapses(*args, arithmetic, learn_float, learn_rounding)
            sh.engine.state["w"] = syn.engine.weights.astype(sh.engine.state["w"].dtype)
            self.shadow[name] = sh
        return self.shadow

    @staticmethod
    def _restore_learning(syn: PlasticSynapses, var: str, arr: np.ndarray) -> None:
        if var.startswith("neuron_") and var[7:] in syn.neuron_traces:
            syn.neuron_traces[var[7:]] = arr.astype(np.float64)
        elif var in syn.engine.state:
            syn.engine.set_state({var: arr}, None)
        else:
            raise EmulatorError([Problem("checkpoint", f"state {syn.name}/{var} does not belong to this program")])

    # -- running ----------------------------------------------------------------------
    def run(
        self,
        steps: int,
        inputs: Mapping[str, np.ndarray] | None = None,
        record: tuple[str, ...] | list[str] = ("spikes",),
        learn: bool = False,
    ) -> dict[str, np.ndarray]:
        """Run ``steps`` steps. ``inputs`` maps input populations to spike arrays shaped
        ``[steps, batch, neurons]`` or ``[steps, neurons]`` (shared by all trials); row ``i``
        is emitted at step ``t + i + 1``; and ``<projection>/<y>`` to the graded values a
        three-factor rule reads as ``y`` (``[steps, batch, post]`` or ``[steps, post]``);
        ``<projection>/r0`` to the reward spikes of a rule that reads Loihi 1's reward trace
        (0 or 1, ``[steps, batch]`` or ``[steps]``); ``<readout>.error/target`` to e-prop's
        targets (model units; one-hot rows for a cross-entropy loss; a NaN row: no target).
        ``record`` picks variables from ``spikes``, ``v``, ``u``, ``a`` (populations) and
        ``w``, ``t``, ``d``, ``x1`` ... ``y3``, ``r1`` (plastic projections). ``learn``: run the
        on-chip learning of plastic projections. Returns ``{"<population>/<variable>":
        [steps, batch, neurons]}`` and ``{"<projection>/<variable>": [steps, trials, ...]}``."""
        if learn and self._unlowered:
            raise EmulatorError(
                [
                    Problem(
                        f"projection {name!r}",
                        f"rule {rule!r} has no lowering onto {self.profile.name}'s {self.profile.learning.kind} "
                        "engine in this release, so its on-chip learning cannot be emulated",
                    )
                    for name, rule in self._unlowered
                ]
            )
        given = self._check_inputs(inputs or {}, steps)
        for var in record:
            if var not in RECORDABLE:
                raise EmulatorError([Problem("record", f"unknown variable {var!r} (known: {', '.join(RECORDABLE)})")])
        if "u2" in record:  # the layer engines' (Xylo) second current; this engine has one
            raise EmulatorError([Problem("record", f"'u2': {self.profile.name}'s neurons have one synaptic current")])
        rec_dtype = self._record_dtype()
        if self._core is not None:
            announce_compile()
            for name, p in self._inputs_plan:  # frozen Poisson inputs, as step by step
                if name not in given:
                    given[name] = self._input_chunk(name, p, {}, 0, steps)
            return self._core.run(self, steps, given, record, learn)
        if self._fused:
            return self._run_fused(steps, given, record, rec_dtype)
        fused = fused_learning(self, steps, record, given) if learn else None
        if fused is not None:  # a learning run in one compiled call (see .fused)
            announce_compile()
            return fused.run(steps, given, record, rec_dtype)
        out: dict[str, np.ndarray] = {}
        for name, p in self.pops.items():
            for var in record:
                if var in p.state:
                    one_bit = var == "spikes" and self._one_spike and p.kind != "error"  # error units: graded
                    dtype = np.uint8 if one_bit else rec_dtype
                    out[f"{name}/{var}"] = np.zeros((steps, self.batch, p.q.size), dtype=dtype)
        sinks = [(arr, self.pops[key.split("/")[0]].state, key.split("/")[1]) for key, arr in out.items()]
        for name, syn in self.plastic.items():
            for var in record:
                if var in syn.engine.state:
                    arr = np.zeros((steps,) + syn.engine.state[var].shape, dtype=syn.engine.state[var].dtype)
                    out[f"{name}/{var}"] = arr
                    sinks.append((arr, syn.engine.state, var))
        for name, p in self._inputs_plan:  # frozen Poisson inputs drawn up front: the same numbers in the same order
            if name not in given:
                given[name] = self._input_chunk(name, p, {}, 0, steps)
        for i in range(steps):
            self.step({k: v[i] for k, v in given.items()}, learn=learn)
            for arr, st, var in sinks:
                arr[i] = st[var]  # exact: integers held in float64 convert exactly
        if learn:  # e-prop's update 'trial': the run's trials are the minibatch, applied now
            for learner in self._learners.values():
                if isinstance(learner, EpropLearner):
                    try:
                        learner.end_run(self.t)
                    except NonFiniteWeightsError as exc:  # the run's recordings go with the error
                        exc.recording = out
                        raise
        return out

    def _record_dtype(self):
        """The dtype of recorded states: float64 when attribution makes them non-integer, float32
        on float chips, else the narrowest integer that holds every value a state can take
        (int32 unless a state's reachable range is wider: Lava's one-time wrap without a
        32-bit register leaves values beyond 2**31 in place)."""
        if self._float_states:
            return np.float64
        if not self.fixed:
            return np.float32
        widest = 0
        for fmt in self._formats:
            reach = fmt.register_bits or (64 if fmt.overflow == "wrap_once" else fmt.bits)
            widest = max(widest, reach)
        return np.int32 if widest <= 32 else np.int64

    def _run_fused(self, steps: int, given: Mapping[str, np.ndarray], record, rec_dtype) -> dict[str, np.ndarray]:
        """``steps`` steps of a static network in compiled chunks (:func:`neurocomp.kernels.run.run_steps`):
        the inputs of a chunk (given arrays, frozen Poisson spikes drawn from the same generators
        in the same order as step by step) and its rounding numbers prepared up front, the
        recorded variables written into ``[steps, flat]`` arrays returned as per-population views."""
        announce_compile()
        b, blk = self.batch, self._blocks
        flags = np.array([var in record for var in ("spikes", "u", "v", "a")], dtype=np.int64)
        spike_rec = np.uint8 if self._one_spike else rec_dtype
        # the kernel writes every recorded row whole (every population block of every trial), so
        # np.empty: numpy asks huge pages for it, where np.zeros' fresh pages fault in 4 KiB at a
        # time (N = 1e5: about 40 us per recorded step, ten times the copy)
        recs = [
            np.empty((steps, blk.n_state) if flags[i] else (1, 1), dtype=spike_rec if i == 0 else rec_dtype)
            for i in range(4)
        ]
        inputs = [(name, p) for name, p in self.pops.items() if p.kind == "input"]
        cols = np.cumsum([0] + [b * p.q.size for _, p in inputs])  # each input's first column in a chunk
        rows = [[blk.state[name], p.q.size, cols[i]] for i, (name, p) in enumerate(inputs)]
        in_table = np.array(rows, dtype=np.int64).reshape(-1, 3)
        width = max(int(cols[-1]), 1)
        chunk = max(1, min(steps, (1 << 22) // (width + (3 * blk.n_state if self._rounding_draws else 0))))
        (g1, s1), (g2, s2) = self._groups
        ga = self._group_arrays
        acc, acc64 = np.zeros((b, blk.n_state), self._dtype), np.zeros((b, blk.n_state))
        kernel = kr.run_steps if self.strict else kr.run_trials_parallel if b > 1 else kr.run_trials
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            buf = np.zeros((n, width), dtype=self._dtype)
            for (name, p), (_, size, col) in zip(inputs, in_table.tolist(), strict=True):
                buf[:, col : col + b * size] = self._input_chunk(name, p, given, done, n).reshape(n, b * size)
            rnd = self._draws(n, advance=True) if self._rounding_draws else self._no_draws
            self._err[...] = 0
            rows = [r[done : done + n] if flags[i] else r for i, r in enumerate(recs)]
            ran = call_parallel(
                kernel, self.t, n, b, buf, in_table, self._st, self._spikes, self._ring, self._pop_table, self._thr,
                self._nconst, self._mode, self._lims, rnd, self._err, g1, s1, g2, s2, ga["indptr"], ga["idx"],
                ga["w"], ga["dense"], ga["exps"], acc, acc64, self._block_table, flags, *rows,
            )  # fmt: skip
            if ran is not None and ran < n:  # a strict run's first overflow
                self.t += ran
                self._raise_overflow(self.t + 1)
            self.t += n
            done += n
        out = {}
        for name, p in self.pops.items():
            for i, var in enumerate(("spikes", "u", "v", "a")):
                if flags[i] and var in p.state:
                    off = blk.state[name]
                    out[f"{name}/{var}"] = recs[i][:, off : off + b * p.q.size].reshape(steps, b, p.q.size)
        return out

    def _input_chunk(self, name: str, p: _Population, given, start: int, n: int) -> np.ndarray:
        """Spikes of input ``name`` for steps ``start + 1 .. start + n`` of this run, ``[n, batch, size]``:
        the given rows, or its frozen Poisson draws (one stream per trial, or one shared)."""
        if name in given:
            return given[name][start : start + n]
        return self._input_rngs[name].raster(n)

    def _check_inputs(self, inputs: Mapping[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
        problems, given = [], {}
        for name, arr in inputs.items():
            proj, _, y = name.rpartition("/")
            if y == "target" and proj in self.pops and (self.pops[proj].kind == "error" or proj in self._learners):
                n = self.pops[proj].q.size
                a = per_trial(arr, steps, self.batch, n, f"input {name!r}", problems, np.float64)
                if a is None:
                    continue
                bad = self._target_problem(proj, a[:steps])
                if np.isinf(a[:steps]).any():  # NaN means "no target"; an infinity is a mistake
                    bad = "targets must be finite numbers or NaN (no target), got an infinity"
                if bad:
                    problems.append(Problem(f"input {name!r}", bad))
                    continue
                given[name] = a
                continue
            if proj in self.plastic:
                syn = self.plastic[proj]
                if y not in syn.graded_inputs:
                    problems.append(
                        Problem(f"input {name!r}", f"projection {proj!r} reads graded inputs {list(syn.graded_inputs)}")
                    )
                    continue
                if y == "r0":  # reward spikes of the projection's reward channel (Loihi 1): [steps(, batch)]
                    a, bad = self._reward_input(np.asarray(arr, dtype=np.float64), steps)
                    if bad:
                        problems.append(Problem(f"input {name!r}", bad))
                    else:
                        given[name] = a
                    continue
                bounds = self._graded_bounds()
                a = graded_values(arr, steps, self.batch, syn.n_post, bounds, f"input {name!r}", problems)
                if a is None:
                    continue
                given[name] = a
                continue
            p = self.pops.get(name)
            if p is None or p.kind != "input":
                problems.append(Problem(f"input {name!r}", "is not an input population of the program"))
                continue
            top = self.profile.time.max_spikes_per_step
            a = spike_counts(arr, steps, self.batch, p.q.size, top, f"input {name!r}", problems)
            if a is None:
                continue
            given[name] = a
        problems += unfed_inputs({name: p.kind for name, p in self.pops.items()}, given, self._input_rngs)
        if problems:
            raise EmulatorError(problems)
        return given

    def _graded_bounds(self) -> tuple[int, int] | None:
        """Graded inputs of a fixed-point chip are integers within the neuron's state (the
        voltage format) that sends them; float chips and float attribution take any finite value."""
        if not self.fixed or self._float_states:
            return None
        bits = self.profile.formats.voltage.bits
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def step(self, inputs: Mapping[str, np.ndarray] | None = None, learn: bool = False) -> None:
        """Advance one step (see the module docstring for the order); ``learn`` runs the
        learning engines of plastic projections after delivery."""
        announce_compile()
        t = self.t + 1
        inputs = inputs or {}
        if self._core is not None:
            given = {k: np.asarray(v, np.float64)[None] for k, v in inputs.items()}
            self.run(1, given, (), learn)
            return
        if self._chip_random is not None:  # this step's rounding numbers from the chip's LFSRs
            self._chip_random.begin_step()
        for ls in self._ls_ports:  # the learning signal of the last step has been read
            ls[self.t % ls.shape[0]] = 0
        for name, p in self._inputs_plan:
            if name in inputs:
                s = np.asarray(inputs[name], dtype=self._dtype)
            else:  # frozen Poisson: one draw per step and trial (or one shared by all trials)
                s = self._input_rngs[name].step()
            p.state["spikes"][...] = s
        for syn, pre, ring in self._deliver_first:  # zero-latency input projections arrive this step
            syn.deliver(pre.state["spikes"], ring, t)
        self._update_neurons(t)
        for name, p in self._errors_plan:  # error units read their readout after it updated
            self._update_error(name, p, inputs.get(f"{name}/target"))
        for syn, pre, ring in self._deliver_after:
            syn.deliver(pre.state["spikes"], ring, t)
        if learn:
            self._learn(t, inputs)
        self.t = t

    def _learn(self, t: int, inputs: Mapping[str, np.ndarray]) -> None:
        """The learning engines' step ``t``: plastic projections, learners, shadow learners."""
        for name, syn in self.plastic.items():
            if not isinstance(syn, PlasticSynapses):
                continue
            graded = {y: inputs[f"{name}/{y}"] for y in syn.graded_inputs if f"{name}/{y}" in inputs}
            syn.learn(t, self.pops[syn.pre], self.pops[syn.post], graded, self.pops)
        for readout, learner in self._learners.items():
            if isinstance(learner, EpropLearner):
                learner.step(self.pops, inputs.get(f"{readout}/target"))
            else:
                learner.step(self.pops, inputs.get(f"{readout}/target"), self._chip_random)
        for name, syn in self.shadow.items():
            graded = {y: inputs[f"{name}/{y}"] for y in syn.graded_inputs if f"{name}/{y}" in inputs}
            syn.learn(t, self.pops[syn.pre], self.pops[syn.post], graded, self.pops)

    # -- neuron updates ------------------------------------------------------------------
    def _update_neurons(self, t: int) -> None:
        """Step ``t`` of every neuron population: one call of the compiled template
        (:func:`neurocomp.kernels.neurons.update_neurons`) on the flat states."""
        rnd = self._draws(1) if self._rounding_draws else self._no_draws
        if self.strict:
            self._err[...] = 0
        failed = kn.update_neurons(t, self.batch, *self._neuron_args, self._mode, self._lims, rnd[0], self._err)
        if failed >= 0:
            self._raise_overflow(t)

    def _raise_overflow(self, t: int) -> None:
        """The named error of a strict run: the first overflow of step ``t`` (population order;
        within a population u, then v, then a; trial-major), from the kernel's record."""
        var = int(kn.strict_failure(self._err))
        e = self._err[var]
        name = [n for n, p in self.pops.items() if p.kind in lay.NEURON_KINDS][e[kn.E_POP]]
        lo, hi = self._formats[var].int_range()
        raise EmulatorOverflowError(
            [
                Problem(
                    f"population {name!r}",
                    f"{'uva'[var]} overflow at step {t}, neuron {e[kn.E_NEURON]}, trial {e[kn.E_TRIAL]}: value "
                    f"{e[kn.E_VALUE]} outside [{lo}, {hi}]",
                )
            ]
        )

    def _draws(self, n: int, advance: bool = False) -> np.ndarray:
        """The rounding numbers of ``n`` steps, ``[n, u/v/a, flat]``; ``advance``: the chip's
        LFSRs step once per step first (a step-by-step run advances them at its start)."""
        draws = np.zeros((n, 3, self._blocks.n_state))
        for i in range(n):
            if advance and self._chip_random is not None:
                self._chip_random.begin_step()
            self._fill_draws(*draws[i])
        return draws

    def _fill_draws(self, ru: np.ndarray, rv: np.ndarray, ra: np.ndarray) -> None:
        """This step's rounding numbers of every neuron population into the flat rows: the
        chip's LFSR numbers (ReckOn: ``membrane`` for LIF, ``readout`` for LI; a leak of exactly 1
        draws nothing: ``inf``), or one uniform draw of ``self.rng`` per element of each
        stochastic leak, in the order population, u, v, a."""
        lfsr = self._mode[kn.M_ROUND_V] == kn.R_LFSR
        b = self.batch
        for name, p in self.pops.items():
            if p.kind not in lay.NEURON_KINDS:
                continue
            off, n = self._blocks.state[name], p.q.size
            sl = slice(off, off + b * n)
            if lfsr:
                if p.kind != "li" and float(p.const["leak_v"]) == 1.0:
                    rv[sl] = np.inf
                else:
                    role = "readout" if p.kind == "li" else "membrane"
                    rv[sl] = self._chip_random.numbers(role, self._chip_random.offsets[name], n).ravel()
                continue
            for arr, var in ((ru, kn.M_ROUND_U), (rv, kn.M_ROUND_V), (ra, kn.M_ROUND_A)):
                if self._mode[var] == kn.R_STOCHASTIC and (var != kn.M_ROUND_A or p.kind == "alif"):
                    arr[sl] = self.rng.random((b, n)).ravel()

    def _constants(self, q: QPopulation) -> dict[str, Any]:
        """The neuron kernel's constants of population ``q`` in state units: ``bias``,
        ``threshold`` and ``beta``, and each leak's factor ``leak_u``, ``leak_v``, ``leak_a``
        (scalars or per neuron). Fixed point: registers turned into integers once (Lava
        recomputes the bias every step, but it only changes if the registers do, and a
        Program's registers are fixed), with a check that every intermediate is exact in
        float64. Float: the parameters as float32."""
        prm = q.params
        out: dict[str, Any] = {"bias": 0.0}
        if q.model in ("SpikeInput", "ErrorUnit"):
            return out
        if not self.fixed:
            out.update(bias=prm.get("bias", 0.0), leak_u=prm["current_decay"], leak_v=prm["voltage_decay"])
            out.update(threshold=prm.get("threshold", 0.0), beta=prm.get("beta", 0.0), leak_a=prm.get("adapt_decay", 0))
            return out
        f = self.profile.formats
        if "bias_mant" in prm:
            m = np.asarray(prm["bias_mant"], dtype=np.int64)
            e = np.asarray(prm["bias_exp"], dtype=np.int64) + (f.bias.shift if f.bias else 0)
            bias = np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))
            out["bias"] = bias.astype(np.float64) if bias.ndim else float(bias)
        out["leak_u"] = self._leak_factor(prm["current_decay"], "current", q)
        out["leak_v"] = self._leak_factor(prm["voltage_decay"], "voltage", q)
        if "threshold" in prm:
            th_shift = f.threshold.shift + f.threshold.exponent_min
            out["threshold"] = float(int(prm["threshold"]) << th_shift)
            out["beta"] = float(int(prm.get("beta", 0)) << th_shift)
        fmts = [f.current, f.voltage]
        if q.model == "ALIF":
            fmts.append(self.profile.neuron_models["ALIF"].state.get("a", f.voltage))
            out["leak_a"] = self._leak_factor(prm["adapt_decay"], "voltage", q, "adapt")
        widest = max(max(fmt.bits, fmt.register_bits) for fmt in fmts)
        if not exact_in_float64(2 ** (widest + f.decay.bits + 1)):
            raise EmulatorError(
                [Problem(f"population {q.name!r}", f"{widest}-bit states times {f.decay.bits}-bit decays exceed 2**53")]
            )
        return out

    def _leak_factor(self, code, role: str, q: QPopulation, state: str = "v"):
        """The factor of a fixed decay register: ``k / 2**n`` (multiplicative, multiplier), or
        ``2**-code`` (bit shift), exact in float64; the kernel multiplies and rounds. Stochastic
        rounding with the chip's LFSRs rounds only scalar voltage leaks (a leak to 0, ReckOn's
        absent synaptic current, needs no rounding)."""
        d = self.profile.formats.decay
        if d.representation == "bitshift":
            return np.exp2(-np.asarray(code, dtype=np.float64))
        if d.representation not in ("multiplicative", "multiplier"):
            msg = f"decay: no integer form for representation {d.representation!r}"
            raise EmulatorError([Problem(f"population {q.name!r}", msg)])
        k, n = decay_multiplier(d, code, role)
        if (
            d.rounding == "stochastic"
            and d.stochastic_rule == "lfsr"
            and (np.ndim(k) or role == "current" or state != "v")
        ):
            if np.ndim(k) == 0 and float(k) == 0:
                return 0.0
            msg = f"{role} leak: the chip's LFSRs round only scalar voltage leaks"
            raise EmulatorError([Problem(f"population {q.name!r}", msg)])
        return k * 2.0**-n

    def _update_error(self, name: str, p: _Population, target) -> None:
        """``e = (v_readout - target + half) >> shift``, saturated to the payload's signed bits. The
        target (model units, ``[batch, n]``) arrives as the host sends it: in the readout's
        integer voltage units (``round(target * 2**scale_exp)``); no target means 0; a row with
        NaN (a trial without a target this step) gives an error of 0 (no learning). Softmax
        cross-entropy units (``loss: ce``) compute ``softmax(y) - onehot(target)`` instead (see
        :meth:`_ce_error`)."""
        prm = p.q.params
        v = self.pops[prm["readout"]].state["v"]
        if prm.get("loss") == "ce":
            p.state["spikes"] = self._ce_error(p, v, target)
            return
        has = target is not None
        tgt = np.ascontiguousarray(target, dtype=np.float64) if has else v
        out = np.empty_like(v)
        if self._graded_float:  # attribution: the exact error (target not rounded, no rounding, no saturation)
            se = p.q.scale_exp
            ke.error_exact(v, tgt, has, 2.0**se, 2.0**-se, 2.0 ** -prm["shift"], out)
        elif self.fixed:  # a fresh array each step: learning engines may keep the previous one
            lim = 2.0 ** (prm["bits"] - 1)
            ke.error_fixed(v, tgt, has, 2.0**p.q.scale_exp, 2.0 ** -prm["shift"], lim, out)
        else:
            ke.error_float(v, tgt, has, out)
        p.state["spikes"] = out

    def _ce_error(self, p: _Population, v: np.ndarray, target) -> np.ndarray:
        """The payload of softmax cross-entropy error units, ``P * (softmax(y) - onehot)`` over
        the readout units (``P = 2**(bits-1) - 1``): in the units' integer arithmetic
        (:func:`~neurocomp.learning.quantities.ce_error_fixed`), or exactly at the float level (errors
        unquantized: ``learn_arithmetic="float"``, or a float chip). No target, or a NaN row:
        an error of 0 (no learning)."""
        prm = p.q.params
        if target is None:
            onehot, valid = np.zeros(v.shape), np.zeros(v.shape[0], bool)
        else:
            t = np.broadcast_to(np.asarray(target, dtype=np.float64), v.shape)
            valid = ~np.isnan(t).any(axis=-1)
            onehot = np.nan_to_num(t)
        if not self.fixed or getattr(self, "_graded_float", False):
            scale = p.q.scale_exp if self.fixed else 0
            return ce_error_exact(v, onehot, valid, scale, int(prm["payload_max"])).astype(v.dtype)
        return ce_error_fixed(v, onehot, valid, prm).astype(v.dtype)

    def _target_problem(self, pop: str, a: np.ndarray) -> str | None:
        """Softmax cross-entropy targets must be one-hot rows or NaN rows: the first that is not."""
        p = self.pops[pop]
        if p.kind != "error" or p.q.params.get("loss") != "ce":
            return None
        nan = np.isnan(a)
        ok = nan.all(axis=-1) | (~nan.any(axis=-1) & ((a == 0) | (a == 1)).all(axis=-1) & (a.sum(axis=-1) == 1))
        if ok.all():
            return None
        step, trial = (int(i) for i in np.argwhere(~ok)[0])
        return (
            f"softmax cross-entropy targets are one-hot rows (one 1, the rest 0) or NaN rows (no target); "
            f"step {step}, trial {trial} is {a[step, trial].tolist()}"
        )

    def _reward_input(self, a: np.ndarray, steps: int) -> tuple[np.ndarray, str | None]:
        """Reward spikes ``[steps]`` or ``[steps, batch]`` (0 or 1: one reward channel per
        projection, as Loihi 1's learning rules have) as ``[steps, batch]``."""
        if a.ndim == 1:
            a = np.broadcast_to(a[:, None], (a.shape[0], self.batch))
        if a.ndim == 3 and a.shape[2:] == (1,):
            a = a[..., 0]
        if a.ndim != 2 or a.shape[1] != self.batch or a.shape[0] < steps:
            return a, f"shape {a.shape}; expected [{steps}] or [{steps}, {self.batch}] (reward spikes, one per trial)"
        bad = ~((a[:steps] == 0) | (a[:steps] == 1))
        if bad.any():
            step, trial = (int(i) for i in np.argwhere(bad)[0])
            return a, (
                f"reward spikes are 0 or 1 per step (the reward trace r1 adds its impulse per spike; a reward "
                f"is non-negative on loihi1); step {step}, trial {trial} is {a[step, trial]}"
            )
        return a, None
