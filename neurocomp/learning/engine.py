"""The sum-of-products learning engine (Loihi 1/2), batched, in fixed or float arithmetic.

One object per plastic projection holds its synaptic variables (``w``, tag ``t``, ``d``),
the pre traces ``x1 x2``, the post traces ``y1 y2 y3``, the within-epoch spike times
``tx ty`` and the engine's random streams, and runs the two phases of a step:

* :meth:`SumOfProductsEngine.spikes` (every step): impulses for a neuron's second and later
  spikes in the epoch, the spike times, and (three-factor rules) the graded post traces;
* :meth:`SumOfProductsEngine.learn` (when ``t % t_epoch == 0``): the trace histories over
  the epoch, then ``dw``/``dt``/``dd``, then the reset of the spike times.

``arithmetic="fixed"`` is the chip: Lava 0.10.0's ``LearningConnectionModelBitApproximate``
(reference ``loihi2-fixed-point.md`` §5.4-5.6), with 7-bit traces updated by stochastic
rounding, the products shifted by their factor widths into a 16-bit accumulator, one shared
random number per epoch for rounding the synaptic variables, and Lava's PRNG streams and
seeds. ``arithmetic="float"`` is the same engine structure in float64: exact decays and impulses,
no rounding, no saturation but the weights' range; a product's width shift is an exact division (Lava's
``LearningConnectionModelFloat`` leaves it out, which makes it 2**s times its fixed model).
Both are the *lowered* rule; the rule's own float form lives in ``neurocomp.rules``.

Between the two, ``float_quantities`` switches single quantities of the fixed engine back to
float64 (the attribution of a rule check: which quantization causes the gap), each one of
:data:`LEARN_QUANTITIES`:

* ``"weights"``: ``w`` in float64; ``dw`` is added exactly (no 16-bit accumulator, no
  rounding to the 9-bit grid), then saturated to the weight range by sign mode
  (mixed ``[-256, 255]``, excitatory ``[0, 255]``, inhibitory ``[-255, 0]``, mantissa units);
* ``"tags"``: ``t`` and ``d`` in float64; their updates are added exactly, with no range
  clip (``d`` keeps its sign constraint ``d >= 0``: it is an unsigned variable);
* ``"traces"``: the spike traces ``x1 x2`` (and ``y1 y2 y3`` when the post neurons send
  spikes, or a spike trace of their own as a graded value) decay by the exact
  ``exp(-1/tau)`` and add the exact impulse, with no 7-bit saturation;
* ``"graded"``: the other graded post traces (three-factor rules: learning signal,
  pseudo-derivative, error, reward) hold the values the neurons send unquantized, and decay
  exactly over the epoch's history (the profile's ``graded_trace_tau``: Lava's 65535);
* ``"products"``: a product wider than the accumulator is divided by ``2**s`` exactly instead
  of floor-shifted, and accumulated in float64; the variable is then rounded onto its grid
  as the chip rounds it (stochastically, with the epoch's random number). The floor biases
  every such product downwards by half an accumulator LSB on average; this removes only
  that (e-prop's ``t*y2`` and ``x1*y3`` lose 5 and 3 bits to it on loihi2).

A product whose factors include a float quantity, updating a variable that is still fixed,
is computed in float64, floored onto the accumulator's grid (the chip's width shift) and
accumulated as the chip does; a float factor is not clipped to its factor width. (So a float
quantity can make a row worse than the chip: a float tag never decays to exactly 0, and the floor
then takes up to a unit from nearly every product instead of the few an integer tag leaves
nonzero. With ``"products"`` too, such a product is divided exactly.) With all
four quantities in float the engine is the ``"float"`` arithmetic above, which is how that
arithmetic is implemented. ``rounding`` (``"stochastic"`` or ``"nearest"``; default: the
profile's ``stochastic_rounding``) picks how the fixed quantities round: trace decays and
impulse fractions, and the synaptic variables onto their grid. Round to nearest rounds
halves up; the random streams advance as they always do, so switching it changes nothing
else.

Two inputs beyond Lava's (see :class:`~neurocomp.learning.rule.EngineRule`): Loihi 1's reward
trace ``r1``, one per rule and trial, a post-side trace driven by the reward spikes of the
rule's reinforcement channel (its impulse added as a post trace's is, its decay rounded with
the post side's random numbers: Loihi 1's own rounding of it is not published); and a graded
pre-synaptic ``x1`` that the pre neurons' payloads overwrite every step, as Lava's
``LearningDense`` does with graded spikes in ``OVERWRITE`` mode.

Widths, bounds and seeds come from the profile's ``learning`` section. Batches: each trial
has its own traces and tags; ``learn_mode="independent"`` gives each trial its own weights,
``"shared"`` one set of weights to which every trial's update is added (the trials' products
enter the one accumulator in trial order). All trials see the same random numbers, so trial
``b`` of a batch equals the same trial run alone.

The chip arithmetic (every quantity an integer) and the float arithmetic (every quantity a
float) run compiled (:mod:`neurocomp.kernels.learning`): the rule is turned into flat
arrays (bytecode) once per engine, and its learning phase into a kernel of its own
(:mod:`neurocomp.kernels.learning_rules`; the bytecode's interpreter where none can be
written). A mix of the two arithmetics (the attribution knobs) runs compiled too, in the
rule's own kernel, when each side's traces are of one kind (else the numpy form of the same
phases): the kernel then runs the numpy form's operations per synapse in its order, so the
two are equal bit for bit, floats included. The compiled learning phase is event-driven and
exact: a synapse is visited only where a product can be nonzero (an ``x0`` product in the
columns of pre neurons that spiked in the epoch, a ``y0`` product in the rows of post
neurons that spiked, ``u`` products everywhere in their epochs). Elsewhere every product is 0, and the phase leaves a
variable ``S`` as it is: the accumulator ``S << shift`` plus nothing rounds back to ``S``
(``(S * 2**shift + 2**shift - 1 - k) >> shift = S`` for ``0 <= k < 2**shift``), the sign
saturation and the range clip keep a value within its range, and a float sum of zeros is
``+0``. The one exception: a zero product still saturates the accumulator, which changes
a value whose ``S << shift`` lies below the accumulator's range (the tag ``t = -257`` on
loihi2: Lava clips ``t`` at ``-2**8 - 1``); rows holding such a value are visited whole.
The first phase after the state was set from outside (``reset``, ``set_state``) visits
every synapse (Lava clips the initial weights in its first epoch).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..errors import Problem, ProfileError
from ..kernels import learning as K
from ..kernels.learning_rules import rule_kernels
from ..profiles.profile import LearningEngine
from .expr import Expr, Factor, Product
from .rule import EngineRule

X_TRACES = ("x1", "x2")
LEARN_QUANTITIES = ("weights", "traces", "graded", "tags", "products")
ROUNDINGS = ("stochastic", "nearest")


def _clip(x, lo, hi):
    """``np.clip`` without its Python-level overhead (called several times per product)."""
    return np.minimum(np.maximum(x, lo), hi)


Y_TRACES = ("y1", "y2", "y3")
R_TRACES = ("r1",)  # Loihi 1's reward trace (see EngineRule)
SYN_VARS = ("w", "t", "d")
_TARGET_VAR = {"dw": "w", "dt": "t", "dd": "d"}


class _Stream:
    """One random stream of Lava's, drawn in blocks. numpy's generators fill an array one draw
    at a time, so a block of ``k`` draws holds the numbers of ``k`` single draws; the state is
    reported (and restored) as if the draws so far had been made one at a time."""

    BLOCK = 1024

    def __init__(self, seed: int, draw):
        self.rng = np.random.default_rng(seed)
        self._draw = draw  # (generator, count) -> array
        self._refill()

    def _refill(self) -> None:
        self._start = self.rng.bit_generator.state
        self._buf = self._draw(self.rng, self.BLOCK)
        self._i = 0

    def next(self):
        if self._i == self.BLOCK:
            self._refill()
        v = self._buf[self._i]
        self._i += 1
        return v

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` draws at once (the numbers ``n`` calls of :meth:`next` return)."""
        parts, need = [], n
        while need:
            if self._i == self.BLOCK:
                self._refill()
            k = min(need, self.BLOCK - self._i)
            parts.append(self._buf[self._i : self._i + k])
            self._i += k
            need -= k
        return np.concatenate(parts) if parts else self._buf[:0].copy()

    @property
    def state(self) -> dict:
        g = np.random.default_rng()
        g.bit_generator.state = self._start
        self._draw(g, self._i)
        return g.bit_generator.state

    @state.setter
    def state(self, s: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = s
        self._refill()


class _TraceRandom:
    """Lava's ``TraceRandom``: a float stream for decay rounding and an integer stream
    (``0 .. 2**trace_bits - 1``) for impulse rounding, one value each, advanced together."""

    def __init__(self, seed_decay: int, seed_impulse: int, trace_bits: int):
        self.bits = trace_bits
        self._decay = _Stream(seed_decay, lambda g, n: g.random(n))
        self._impulse = _Stream(seed_impulse, lambda g, n: g.integers(0, 2**trace_bits, size=n, dtype=int))
        self.advance()

    def advance(self) -> None:
        self.decay = self._decay.next()
        self.impulse = self._impulse.next()

    def take(self, n: int) -> np.ndarray:
        """``n`` advances at once: ``[n, 2]`` (decay float, impulse integer) per advance, the
        last one left current (a fused run's numbers, drawn before it)."""
        out = np.empty((n, 2))
        out[:, 0], out[:, 1] = self._decay.take(n), self._impulse.take(n)
        if n:
            self.decay, self.impulse = self._decay._buf[self._decay._i - 1], self._impulse._buf[self._impulse._i - 1]
        return out

    def get_state(self) -> dict:
        return {
            "decay_rng": self._decay.state,
            "impulse_rng": self._impulse.state,
            "decay": float(self.decay),
            "impulse": int(self.impulse),
        }

    def set_state(self, s: Mapping[str, Any]) -> None:
        self._decay.state = s["decay_rng"]
        self._impulse.state = s["impulse_rng"]
        self.decay, self.impulse = np.float64(s["decay"]), np.int64(s["impulse"])


class _ConnRandom:
    """Lava's ``ConnVarRandom``: one uniform number per epoch for rounding w, t and d."""

    def __init__(self, seed: int):
        self._stream = _Stream(seed, lambda g, n: g.random(n))
        self.advance()

    def advance(self) -> None:
        self.value = self._stream.next()

    def take(self, n: int) -> np.ndarray:
        """``n`` advances at once: their values, the last one left current."""
        out = self._stream.take(n)
        if n:
            self.value = out[-1]
        return out

    def get_state(self) -> dict:
        return {"rng": self._stream.state, "value": float(self.value)}

    def set_state(self, s: Mapping[str, Any]) -> None:
        self._stream.state = s["rng"]
        self.value = np.float64(s["value"])


@dataclass(frozen=True)
class FusedPlan:
    """What a fused trial kernel (``emulator.fused``) reads of a compiled engine: the rule
    kernel's module, the flags that shape the generated code, and the plan arrays, shared
    with the engine (not copied), in the order the trial kernel takes them."""

    rule_module: str  # the generated module holding the rule's learn/learn_live
    has_u: bool  # a product reads u (the decimated epoch flag)
    always_full: bool  # every phase visits every synapse
    decimate: int | None  # u's decimation exponent, None without u
    side_dtypes: tuple[str, str]  # (x side, y side) trace dtypes: int64 or float64
    value_shifts: np.ndarray  # [3] the w, t, d rounding shifts (bits)
    arrays: tuple  # (unsafe counts, mask, deps, impulse table, *x plan, *y plan)


class SumOfProductsEngine:
    rule_kernels = True  # each rule's learning phase as a kernel of its own (False: the bytecode interpreter)

    """Learning state and phases of one plastic projection (see the module docstring).

    ``weights``: the initial weight mantissas ``[post, pre]`` (integers as the chip holds
    them). ``sign_mode``: ``mixed``, ``excitatory`` or ``inhibitory`` (bounds the weights).
    ``mask``: ``[post, pre]`` flags of the synapses that exist (sparse projections; Lava's
    LearningSparse updates only those); absent synapses keep w, t and d at 0.
    ``float_quantities``: names from :data:`LEARN_QUANTITIES` held in float64 although
    ``arithmetic="fixed"``; ``rounding``: ``"stochastic"``, ``"nearest"`` or None (the
    profile's); see the module docstring. ``compiled``: False runs the numpy form of the
    phases even where kernels exist (the tests compare the two); None: the kernels where
    they exist.

    State arrays may be replaced (``set_state``) but not edited in place between learning
    phases: the event-driven phase trusts values it has itself written (see the module
    docstring).
    """

    def __init__(
        self,
        rule: EngineRule,
        weights: np.ndarray,
        *,
        engine: LearningEngine,
        sign_mode: str = "mixed",
        batch: int = 1,
        learn_mode: str = "independent",
        arithmetic: str = "fixed",
        mask: np.ndarray | None = None,
        float_quantities: Iterable[str] = (),
        rounding: str | None = None,
        compiled: bool | None = None,
    ):
        self._check_modes(learn_mode, arithmetic, rounding, engine)
        self.rule = rule.on_engine(engine)  # a rule built by hand gets the engine's graded-trace decay
        self.engine = engine
        self.sign_mode = sign_mode
        self.batch = batch
        self.learn_mode = learn_mode
        self.fixed = arithmetic == "fixed"
        floats = self._float_quantities(float_quantities)
        if rounding is None:
            rounding = "stochastic" if engine.stochastic_rounding else "nearest"
        self.float_quantities = frozenset(floats)
        self.exact_products = "products" in floats
        self.nearest = rounding == "nearest"
        self.var_fixed = self._variable_kinds(floats)
        self.n_post, self.n_pre = weights.shape
        self._read_profile(engine)
        self._check_bounds()
        self._trace_constants()
        self._w0 = np.asarray(weights)
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        self._bounds: dict[Product, int] = {}
        self._plans: dict[tuple[str, ...], tuple] = {}
        # the two homogeneous arithmetics run compiled, and so does a mix of fixed and float
        # quantities (attribution) whose traces are of one kind per side, with the rule's own
        # kernel; other mixes run the numpy form of the same phases below
        homogeneous = not floats or floats == set(LEARN_QUANTITIES)
        sides = [{self.var_fixed[k] for k in side} for side in (X_TRACES, Y_TRACES + self._r)]
        mixable = self.rule_kernels and learn_mode == "independent" and all(len(kinds) == 1 for kinds in sides)
        self.compiled = (homogeneous or mixable) if compiled is None else compiled and (homogeneous or mixable)
        self._ints = not floats  # every quantity an integer (the chip), else a float or a mix
        self._side_dtypes = [np.int64 if kinds == {True} else np.float64 for kinds in sides]
        if self.compiled:
            self._compile_rule()
            self.compiled = homogeneous or self._rule_kernels is not None
        self.reset()

    @staticmethod
    def _check_modes(learn_mode: str, arithmetic: str, rounding: str | None, engine: LearningEngine) -> None:
        if learn_mode not in ("independent", "shared"):
            raise ValueError(f"learn_mode must be 'independent' or 'shared', got {learn_mode!r}")
        if arithmetic not in ("fixed", "float"):
            raise ValueError(f"arithmetic must be 'fixed' or 'float', got {arithmetic!r}")
        if rounding is not None and rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS} or None, got {rounding!r}")

    def _float_quantities(self, float_quantities: Iterable[str]) -> set[str]:
        """The quantities held in float64: the chosen ones in fixed arithmetic, all in float."""
        floats = set(float_quantities) if self.fixed else set(LEARN_QUANTITIES)
        if floats - set(LEARN_QUANTITIES):
            raise ValueError(
                f"unknown learning quantities {sorted(floats - set(LEARN_QUANTITIES))} "
                f"(valid: {', '.join(LEARN_QUANTITIES)})"
            )
        return floats

    def _variable_kinds(self, floats: set[str]) -> dict[str, bool]:
        """Per variable: held in the chip's integers (True), or float64 (attribution). A
        graded y is a third factor unless the neuron sends a spike trace of its own in it
        (R-STDP's y1)."""
        rule = self.rule
        kind = {"w": "weights", "t": "tags", "d": "tags", **{k: "traces" for k in X_TRACES}}
        for k in Y_TRACES:
            graded = rule.post_traces == "graded" and rule.graded.get(k, {}).get("source") != "post_trace"
            kind[k] = "graded" if graded else "traces"
        if "x1" in rule.pre_graded:  # the pre neurons' graded payload (adaptive e-prop's error)
            kind["x1"] = "graded"
        self._r = R_TRACES if rule.uses_reward else ()  # Loihi 1's reward trace, where the rule reads it
        kind.update({k: "traces" for k in self._r})
        return {k: q not in floats for k, q in kind.items()}

    def _read_profile(self, engine: LearningEngine) -> None:
        """The engine's widths, bounds and seed from the profile's ``learning`` section (every
        one required: a profile that lacks one is an error naming it, not a silent default)."""
        prm = engine.params
        required = ("trace_bits", "impulse_fraction_bits", "factor_widths", "scale_mantissa_bits", "conn_random_seed")
        missing = [f"params.{k}" for k in required if k not in prm]
        missing += [f"synaptic_variable_bits.{v}" for v in SYN_VARS if v not in engine.synaptic_variable_bits]
        missing += [k for k in ("accumulator_bits", "exponent_min") if getattr(engine, k) is None]
        if missing:
            raise ProfileError(
                [Problem("profile learning (sum_of_products)", f"missing {k}, required by the learning engine")
                 for k in missing]
            )  # fmt: skip
        self.trace_bits = int(prm["trace_bits"])
        self.frac_bits = int(prm["impulse_fraction_bits"])
        self.widths = {k: int(v) for k, v in prm["factor_widths"].items()}
        self.mant_bits = int(prm["scale_mantissa_bits"])
        self.acc_bits = int(engine.accumulator_bits) - 1  # magnitude bits of the signed accumulator
        self.var_bits = {v: int(engine.synaptic_variable_bits[v]) - 1 for v in SYN_VARS}
        self.conn_seed = int(prm["conn_random_seed"])
        self.exp_min = int(engine.exponent_min)

    def _trace_constants(self) -> None:
        """Impulses (Lava's integer and 8-bit fraction), time constants and decay factors of
        the rule's traces, and the traces that are live (can be nonzero or are read)."""
        rule = self.rule
        tr = rule.traces
        self.impulse = {k: float(tr[k].impulse) for k in X_TRACES + Y_TRACES + self._r}
        self.tau = {k: float(tr[k].tau) for k in X_TRACES + Y_TRACES + self._r}
        # Lava splits an impulse into an integer and 8 fractional bits (rounded to nearest)
        self.imp_int = {k: int(np.floor(v)) for k, v in self.impulse.items()}
        self.imp_frac = {k: int(np.round((v - np.floor(v)) * 2**self.frac_bits)) for k, v in self.impulse.items()}
        # exp(-1/tau) computed as Lava computes it (one vectorized call per side), so the
        # float64 factors, and so every stochastic rounding decision, are the same
        self.decay_factor: dict[str, float] = {}
        for side in (X_TRACES, Y_TRACES):
            taus = np.array([self.tau[k] for k in side])
            factors = np.exp(-1 / taus[taus != 0][:, np.newaxis])[:, 0]
            for k, f in zip([k for k in side if self.tau[k] != 0], factors, strict=True):
                self.decay_factor[k] = f
        for k in self._r:  # (Lava has no reward trace: the same formula, on its own)
            if self.tau[k] != 0:
                self.decay_factor[k] = float(np.exp(-1 / self.tau[k]))
        # traces whose values can be nonzero or are read by a rule; the others stay exactly 0
        # (tau 0 zeroes them, impulse 0 adds nothing; with graded post traces the neuron's
        # values are read through the history), so their history is not computed
        used = {f.var for e in rule.expressions.values() for p in e.products for f in p.factors}
        self._live = {
            k
            for k in X_TRACES + Y_TRACES
            if k in used or (self.impulse[k] > 0 and not (k in Y_TRACES and rule.post_traces == "graded"))
        } | set(self._r)

    def _compile_rule(self) -> None:
        """The rule as the kernels read it (see :mod:`neurocomp.kernels.learning`)."""
        prods = [(target, p) for target, e in self.rule.expressions.items() for p in e.products]
        nf = max([len(p.factors) for _, p in prods] + [1])
        code = np.zeros((len(prods), K.P_FACTORS + 4 * nf), np.int64)
        scale = np.zeros(len(prods))
        vinfo = np.zeros((3, 8), np.int64)
        lim_lo, lim_hi = -(2**self.acc_bits) - 1, 2**self.acc_bits - 1  # Lava's lower clip is -2**15 - 1
        # a variable below `unsafe` changes in a learning phase without products: its
        # accumulator S << shift lies below the accumulator's range, which a (zero) product's
        # saturation then clips (tag t = -257 on loihi2); such rows are always visited
        unsafe = np.full(3, -np.inf)
        self._always_full = False
        for v, var in enumerate(SYN_VARS):
            lo, hi = self._var_range(var)
            shift = self.acc_bits - self.var_bits[var]
            sign = K.SIGN_NONNEG if var == "d" or (var == "w" and self.sign_mode == "excitatory") else K.SIGN_NONE
            sign = K.SIGN_NONPOS if var == "w" and self.sign_mode == "inhibitory" else sign
            vinfo[v] = [0, 0, shift, lo, hi, sign, 0, var == "w"]
            if self.var_fixed[var]:
                unsafe[v] = max(lo, -(-lim_lo >> shift))  # ceil(lim_lo / 2**shift)
                self._always_full |= hi << shift > lim_hi  # (no profile has one: a safe fallback)
        self._present = np.array([f"d{v}" in self.rule.expressions for v in SYN_VARS])
        # a variable whose old values a later rule reads (order w, t, d) is written at the end
        reads = [{f.var for p in e.products for f in p.factors} for e in self.rule.expressions.values()]
        order = [_TARGET_VAR[k] for k in self.rule.expressions]
        self._defer = np.array([v in order and any(v in r for r in reads[order.index(v) + 1 :]) for v in SYN_VARS])
        for row, (target, p) in enumerate(prods):
            v = SYN_VARS.index(_TARGET_VAR[target])
            if not vinfo[v, K.V_END]:
                vinfo[v, K.V_START] = row
            vinfo[v, K.V_END] = row + 1
            width = self.mant_bits + sum(self.widths[f.var] for f in p.factors)
            s = max(0, width - self.acc_bits)
            code[row, : K.P_FACTORS] = [v, K.DEP_CODES[p.dependency], p.mantissa, p.exponent - self.exp_min, s, 0]
            code[row, K.P_NF] = len(p.factors)
            for f, fac in enumerate(p.factors):
                code[row, K.P_FACTORS + 4 * f : K.P_FACTORS + 4 * f + 4] = [
                    K.FACTOR_CODES[fac.var],
                    fac.const,
                    fac.sgn,
                    self.widths[fac.var],
                ]
            scale[row] = p.mantissa * 2.0 ** (p.exponent - s)
        self._code, self._scale, self._vinfo, self._unsafe = code, scale, vinfo, unsafe
        self._zero_clips = unsafe > vinfo[:, K.V_LO]  # (there a zero product saturates the accumulator)
        self._lim = np.array([lim_lo, lim_hi], np.int64)
        self._decimate = self.rule.decimate  # (a property that walks the rule: read once)
        deps = {p.dependency for _, p in prods}
        self._deps = np.array(["x0" in deps, "y0" in deps])
        self._has_u = "u" in deps
        names = X_TRACES + Y_TRACES + R_TRACES
        imp = [(self.imp_int.get(k, 0), self.imp_frac.get(k, 0), self.impulse.get(k, 0.0)) for k in names]
        self._imp = np.array(imp, np.float64)  # [6, 3]
        self._x_plan = self._side_plan(X_TRACES, write_back=(True, True))
        graded = self.rule.post_traces == "graded"
        self._y_plan = self._side_plan(Y_TRACES + R_TRACES, write_back=(not graded,) * 3 + (bool(self._r),))
        spec = {
            "code": code,
            "scale": scale,
            "vinfo": vinfo,
            "lim": self._lim,
            "present": self._present,
            "unsafe": unsafe,
            "zero_clips": self._zero_clips,
            "shared": self.learn_mode == "shared",
            "fixed": self._ints,
            "masked": self.mask is not None,
            # per variable and per factor code: held in the chip's integers (else float64)
            "var_fixed": tuple(self.var_fixed[v] for v in SYN_VARS),
            "factor_fixed": tuple(self.var_fixed.get(k, True) for k in K.FACTOR_CODES),
            "exact": self.exact_products,
            "nearest": self.nearest,
            "t_epoch": int(self.rule.t_epoch),  # (one step: traces read at the epoch's step, not gathered)
        }
        self._rule_kernels = rule_kernels(spec) if self.rule_kernels else None

    def _side_plan(self, names: tuple[str, ...], write_back: tuple[bool, ...]):
        """One side's trace parameters for :func:`~neurocomp.kernels.learning.trace_history`."""
        live = np.array([k in self._live for k in names])
        decay = np.array([k in self.decay_factor for k in names])
        factor = np.array([self.decay_factor.get(k, 0.0) for k in names])
        imp = np.array([self._imp[(X_TRACES + Y_TRACES + R_TRACES).index(k)] for k in names])
        return live, decay, factor, imp, np.array(write_back)

    def _check_bounds(self) -> None:
        """Lava multiplies a product's factors in int32; the rule's factor count (limited by
        the profile) must keep that product exact, which the int64 arithmetic here assumes."""
        for target, expr in self.rule.expressions.items():
            for i, p in enumerate(expr.products, 1):
                bits = sum(self.widths[f.var] for f in p.factors) + self.mant_bits - 1
                if bits >= 31:
                    raise ValueError(f"rule {target}, product {i}: a {bits + 1}-bit product overflows Lava's int32")

    # -- state -----------------------------------------------------------------------
    def reset(self) -> None:
        dt = {k: np.int64 if fixed else np.float64 for k, fixed in self.var_fixed.items()}
        b, n, m = self.batch, self.n_post, self.n_pre
        bw = b if self.learn_mode == "independent" else 1
        w0 = self._w0.astype(dt["w"])
        self.state: dict[str, np.ndarray] = {
            "w": np.broadcast_to(w0, (bw, n, m)).copy(),
            "t": np.zeros((b, n, m), dt["t"]),
            "d": np.zeros((b, n, m), dt["d"]),
            **{k: np.zeros((b, m), dt[k]) for k in X_TRACES},
            **{k: np.zeros((b, n), dt[k]) for k in Y_TRACES},
            "tx": np.zeros((b, m), np.int64),
            "ty": np.zeros((b, n), np.int64),
        }
        for k in self._r:  # one reward trace per trial, held per post neuron (all equal) to broadcast
            self.state[k] = np.zeros((b, n), dt[k])
            self.state["tr"] = np.zeros((b, 1), np.int64)  # within-epoch time of the last reward spike
        if self.compiled:
            self._buffers()
        seed = int(self.rule.rng_seed)
        self.x_random = _TraceRandom(seed, seed + 1, self.trace_bits)
        self.y_random = _TraceRandom(seed + 2, seed + 3, self.trace_bits)
        self.conn_random = _ConnRandom(self.conn_seed)

    def _buffers(self) -> None:
        """The kernels' scratch: trace histories, the visit plan, accumulators."""
        b, n, m, T = self.batch, self.n_post, self.n_pre, self.rule.t_epoch
        dt = self.state["w"].dtype
        self._hx = np.zeros((T + 1, b, 2, m), self._side_dtypes[0])
        self._hy = np.zeros((T + 1, b, 4, n), self._side_dtypes[1])  # y1 y2 y3 and the reward trace r1
        if not self._r:  # placeholders of the reward trace and its spike time
            self._r_none, self._tr_none = np.zeros((b, n), self._side_dtypes[1]), np.zeros((b, 1), np.int64)
        # unsafe counts [trials, post], visited rows [post], spiking columns [pre], visited synapses
        self._plan = (np.zeros((b, n), np.int64), np.zeros(n, bool), np.zeros(m, np.int64)) + (
            np.zeros(n * m, np.int32),
            np.zeros(n * m, np.int32),
        )
        shared = self.learn_mode == "shared"
        self._parallel = not shared and b > 1 and b * n * m >= K.PARALLEL_SYNAPSES
        threads = numba.config.NUMBA_NUM_THREADS if self._parallel else 1
        sums = b if shared and not self._ints else 1  # float shared weights: a sum per trial
        c = K.CHUNK  # per thread: a product along a chunk of the visit list, accumulators, old values, sums
        self._scratch = (
            np.zeros((threads, 3, c), dt),
            np.zeros((threads, sums, c) if not self._ints else (threads, 1, 1)),
            np.zeros((threads, 3, b, c), dt),  # new values, written back after the chunk's last rule
        )
        self._verified = None  # the (w, t, d) arrays known to lie in their ranges
        self._no_reward, self._pair = np.zeros(b), np.zeros(2)  # (per-step arguments, allocated once)
        self._mask = np.zeros((0, 0), bool) if self.mask is None else np.ascontiguousarray(self.mask)

    def get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        rngs = {"x": self.x_random.get_state(), "y": self.y_random.get_state(), "conn": self.conn_random.get_state()}
        return {k: v.copy() for k, v in self.state.items()}, rngs

    def set_state(self, arrays: Mapping[str, np.ndarray], rngs: Mapping[str, Any] | None) -> None:
        """Restore arrays (any subset) and, unless ``rngs`` is None, the random streams."""
        for k, v in arrays.items():
            if v.shape != self.state[k].shape:
                raise ValueError(f"learning state {k!r} has shape {v.shape}, expected {self.state[k].shape}")
            self.state[k] = v.astype(self.state[k].dtype)
        if rngs is None:
            return
        self.x_random.set_state(rngs["x"])
        self.y_random.set_state(rngs["y"])
        self.conn_random.set_state(rngs["conn"])

    @property
    def weights(self) -> np.ndarray:
        """``[trials or 1, post, pre]``: the current weights."""
        return self.state["w"]

    def at_edge(self) -> np.ndarray:
        """``[trials or 1]``: how many synapses' weights lie within one LSB of the largest
        magnitude of the weight range (both ends in mixed sign mode, the one away from zero
        otherwise): where learning clipped them, or loses any further push outward. The same
        test in fixed arithmetic (the weight is at the edge) and in float (the float engine
        clips to the same range; the next update moves a clipped weight off it by a fraction
        of an LSB)."""
        lo, hi = self._var_range("w")
        w = self.state["w"]
        edge = np.zeros(w.shape, dtype=bool)
        if self.sign_mode != "inhibitory":
            edge |= w > hi - 1
        if self.sign_mode != "excitatory":
            edge |= w < lo + 1
        if self.mask is not None:  # a sparse projection held dense: only the synapses that exist
            edge &= self.mask
        return edge.reshape(w.shape[0], -1).sum(axis=1)

    @property
    def weight_range(self) -> tuple[int, int]:
        """``(lo, hi)``: the mantissas the weights are saturated to after each learning phase
        (the sign mode's and ``synaptic_variable_bits.w``'s range)."""
        return self._var_range("w")

    @property
    def floors(self) -> bool:
        """Whether the weight update's products are floored (the chip's fixed weights, the
        width shift not exact): what a floor offset (``rules.eprop``) offsets."""
        return self.var_fixed["w"] and not self.exact_products

    @property
    def fusable(self) -> bool:
        """Its learning phase can run inside a fused trial kernel: a compiled rule kernel,
        and no reward trace (Loihi 1's, which the trial kernel does not carry)."""
        return self.compiled and self._rule_kernels is not None and not self._r

    def fused_plan(self) -> FusedPlan:
        """The compiled plan a fused trial kernel takes (see :class:`FusedPlan`)."""
        if not self.fusable:
            raise ValueError("this engine has no compiled rule kernel to fuse")
        return FusedPlan(
            rule_module=self._rule_kernels[0].__module__,
            has_u=self._has_u,
            always_full=self._always_full,
            decimate=self._decimate,
            side_dtypes=tuple(np.dtype(d).name for d in self._side_dtypes),
            value_shifts=self._vinfo[:, K.V_SHIFT],
            arrays=(self._plan[0], self._mask, self._deps, self._imp, *self._x_plan, *self._y_plan),
        )

    def in_range(self) -> bool:
        """Whether the state's (w, t, d) arrays are those the last phase left, so known to lie
        in their ranges; if not (state set from outside), recount the values below each
        variable's unsafe bound first."""
        st = self.state
        arrays = (st["w"], st["t"], st["d"])
        verified = self._verified is not None and all(a is b for a, b in zip(arrays, self._verified, strict=True))
        if not verified:
            self._count_unsafe(arrays)
        return verified

    def mark_in_range(self) -> None:
        """The state's (w, t, d) arrays were left by a learning phase run elsewhere (a fused
        trial kernel) and lie in their ranges."""
        st = self.state
        self._verified = (st["w"], st["t"], st["d"])

    # -- every step ------------------------------------------------------------------
    def _within_epoch(self, t: int) -> int:
        k = t % self.rule.t_epoch
        return k if k else self.rule.t_epoch

    def _add_impulse(self, values: np.ndarray, name: str, random) -> np.ndarray:
        if not self.var_fixed[name]:
            return values + self.impulse[name]
        if self.nearest:  # the 8-bit fraction rounds up from one half
            up = self.imp_frac[name] >= 2 ** (self.frac_bits - 1)
        else:
            # stochastic rounding of the fraction against ONE integer draw in [0, 128) compared
            # with a fraction in 256ths: Lava rounds up with probability min(frac, 128)/128
            up = random < self.imp_frac[name]
        new = values + self.imp_int[name] + up
        return _clip(new, 0, 2**self.trace_bits - 1)

    def spikes(
        self,
        t: int,
        pre: np.ndarray,
        post: np.ndarray,
        graded: Mapping[str, np.ndarray] | None = None,
        pre_values: np.ndarray | None = None,
        reward: np.ndarray | None = None,
    ) -> None:
        """Step ``t`` (1-based): ``pre`` ``[batch, pre]`` and ``post`` ``[batch, post]`` spike
        flags of this step; ``graded``: y1..y3 values ``[batch, post]`` sent by the post
        neurons this step (three-factor rules); ``pre_values``: the pre neurons' graded
        payloads ``[batch, pre]`` (rules with ``pre_graded`` x1: ``x1 <- payload + offset``);
        ``reward``: reward spikes ``[batch]`` (0/1) of the projection's reward channel (rules
        reading Loihi 1's reward trace ``r1``), handled as the post traces' spikes are."""
        if self.compiled:
            return self._spikes_compiled(t, pre, post, graded, pre_values, reward)
        st = self.state
        pre = pre.astype(bool)
        post = post.astype(bool)
        within = self._within_epoch(t)
        # a second or later pre spike in the epoch adds its impulse now, with random 0
        multi = (st["tx"] > 0) & pre
        if multi.any():
            for k in X_TRACES:
                st[k] = np.where(multi, self._add_impulse(st[k], k, 0), st[k])
        st["tx"][pre] = within
        self.x_random.advance()
        self.y_random.advance()
        multi_y = (st["ty"] > 0) & post
        if multi_y.any():
            for k in Y_TRACES:
                st[k] = np.where(multi_y, self._add_impulse(st[k], k, self.y_random.impulse), st[k])
        st["ty"][post] = within
        if self.rule.post_traces == "graded":  # the neuron's values overwrite y1..y3 (not clipped)
            graded = graded or {}
            for k in Y_TRACES:
                v = graded.get(k)
                st[k] = np.zeros_like(st[k]) if v is None else np.broadcast_to(v, st[k].shape).astype(st[k].dtype)
        for k in self._r:  # reward spikes: a second or later one in the epoch adds its impulse now
            r = np.zeros((self.batch, 1), bool) if reward is None else np.reshape(reward, (-1, 1)).astype(bool)
            r = np.broadcast_to(r, st["tr"].shape)
            multi_r = np.broadcast_to((st["tr"] > 0) & r, st[k].shape)
            if multi_r.any():
                st[k] = np.where(multi_r, self._add_impulse(st[k], k, self.y_random.impulse), st[k])
            st["tr"][r] = within
        src = self.rule.pre_graded.get("x1")
        if src is not None:  # graded pre spikes overwrite x1 (Lava's OVERWRITE mode; not clipped)
            v = 0 if pre_values is None else pre_values
            st["x1"] = (np.broadcast_to(v, st["x1"].shape) + int(src.get("offset", 0))).astype(st["x1"].dtype)
        self.x_random.advance()
        self.y_random.advance()

    def _spikes_compiled(self, t, pre, post, graded, pre_values, reward) -> None:
        st = self.state
        shape = st["tx"].shape
        pre = pre if pre.shape == shape else np.broadcast_to(pre, shape)
        post = post if post.shape == st["ty"].shape else np.broadcast_to(post, st["ty"].shape)
        r = self._no_reward if reward is None else np.broadcast_to(np.reshape(reward, -1), (self.batch,))
        self.x_random.advance()
        self.y_random.advance()
        xs, ys, tr = self._traces()
        half = 2 ** (self.frac_bits - 1)
        top = 2**self.trace_bits - 1
        K.spike_phase(
            xs,
            ys,
            st["tx"],
            st["ty"],
            tr,
            pre,
            post,
            r,
            self._within_epoch(t),
            int(self.y_random.impulse),
            self._imp,
            self.nearest,
            half,
            top,
            bool(self._r),
        )
        if self.rule.post_traces == "graded":  # the neuron's values overwrite y1..y3 (not clipped)
            graded = graded or {}
            for k in Y_TRACES:
                v = graded.get(k)
                if v is None:
                    st[k].fill(0)
                else:
                    st[k][...] = v  # (a float value into an integer trace truncates, as astype does)
        src = self.rule.pre_graded.get("x1")
        if src is not None:  # graded pre spikes overwrite x1 (Lava's OVERWRITE mode; not clipped)
            st["x1"][...] = (0 if pre_values is None else pre_values) + int(src.get("offset", 0))
        self.x_random.advance()
        self.y_random.advance()

    def _traces(self):
        """The trace arrays as the kernels take them: (x1, x2), (y1, y2, y3, r1), tr."""
        st = self.state
        if self._r:
            return (st["x1"], st["x2"]), (st["y1"], st["y2"], st["y3"], st["r1"]), st["tr"]
        return (st["x1"], st["x2"]), (st["y1"], st["y2"], st["y3"], self._r_none), self._tr_none

    # -- learning phase ----------------------------------------------------------------
    def learn(self, t: int) -> bool:
        """Run the learning phase if step ``t`` ends an epoch; returns whether it ran."""
        T = self.rule.t_epoch
        if t % T:
            return False
        self.conn_random.advance()
        if self.compiled:
            self._learn_compiled(t)
            return True
        st = self.state
        hx = self._history(X_TRACES, st["tx"], self.x_random)  # [T+1, B, 2, pre]
        hy = self._history(Y_TRACES, st["ty"], self.y_random)  # [T+1, B, 3, post]
        for i, k in enumerate(X_TRACES):
            st[k] = hx[-1, :, i].copy()
        if self.rule.post_traces == "spikes":
            for i, k in enumerate(Y_TRACES):
                st[k] = hy[-1, :, i].copy()
        hr = None
        if self._r:  # the reward trace's history, with the post side's random numbers
            hr = self._history(self._r, np.broadcast_to(st["tr"], st["r1"].shape), self.y_random)
            st["r1"] = hr[-1, :, 0].copy()
            st["tr"][...] = 0
        args = _Args(self, hx, hy, t, hr)
        new = {}
        for target, expr in self.rule.expressions.items():  # all rules see the pre-update w, t, d
            var = _TARGET_VAR[target]
            new[var] = self._apply(var, expr, args)
            if self.mask is not None:
                new[var] = np.where(self.mask, new[var], st[var])
        st.update(new)
        st["tx"][...] = 0
        st["ty"][...] = 0
        return True

    def _learn_compiled(self, t: int) -> None:
        st = self.state
        xs, ys, tr = self._traces()
        half = 2 ** (self.frac_bits - 1)
        top = 2**self.trace_bits - 1
        for h, states, tspk, k_r, plan, rnd in (
            (self._hx, xs, st["tx"], -1, self._x_plan, self.x_random),
            (self._hy, ys, st["ty"], 3, self._y_plan, self.y_random),
        ):
            live, decay, factor, imp, back = plan
            pair = self._pair
            pair[0], pair[1] = rnd.decay, rnd.impulse
            K.trace_history(h, states, tspk, tr, k_r, live, decay, factor, imp, back, pair, self.nearest, half, top)
        v = self._vinfo
        for i in range(3):  # the epoch's rounding constant (see _apply)
            shift = v[i, K.V_SHIFT]
            v[i, K.V_K] = 2 ** (shift - 1) - 1 if self.nearest else math.floor(self.conn_random.value * 2**shift)
        k = self._decimate
        u = 0 if k is None else int(int(t / self.rule.t_epoch) % 2**k == 0)
        arrays = (st["w"], st["t"], st["d"])
        verified = self.in_range()
        full = not verified or (self._has_u and u == 1) or self._always_full
        rule = (self._code, self._scale, v, self._lim, self._present, self._unsafe, self._zero_clips, self._defer)
        hist = (self._hx, self._hy, st["tx"], st["ty"])
        if self._rule_kernels is not None:  # the rule's own kernel (see kernels.learning_rules)
            kernel = self._rule_kernels[1 if self._parallel else 0]
            ks = v[:, K.V_K] if not self.exact_products else (self.conn_random.value,) * 3  # (exact: the number)
            kernel(*arrays, *hist, u, ks[0], ks[1], ks[2], full, self._deps, self._plan, self._mask)
        else:  # the interpreter of the rule's bytecode
            kernel = K.learn_phase_parallel if self._parallel else K.learn_phase
            kernel(
                arrays,
                hist,
                rule,
                u,
                self.learn_mode == "shared",
                full,
                self._deps,
                self._plan,
                self._mask,
                self._scratch,
            )
        self._verified = arrays
        st["tx"][...] = 0
        st["ty"][...] = 0
        tr[...] = 0

    def _count_unsafe(self, arrays) -> None:
        """Per trial and row, the values below their variable's ``unsafe`` bound (state set
        from outside; afterwards the kernel keeps the count)."""
        counts = self._plan[0]
        counts[...] = 0
        for v, a in enumerate(arrays):
            if self._present[v] and np.isfinite(self._unsafe[v]):
                below = a < self._unsafe[v]
                counts[: a.shape[0]] += (below if self.mask is None else below & self.mask).sum(axis=2)

    def _history(self, names: tuple[str, ...], tspk: np.ndarray, rnd: _TraceRandom) -> np.ndarray:
        """Trace values at each step of the epoch: ``h[0]`` now, ``h[k]`` decayed ``k`` times
        with the impulses of the (last) spikes at within-epoch step ``k`` added."""
        T = self.rule.t_epoch
        st = self.state
        h0 = np.stack([st[k] for k in names], axis=1)  # [B, n_traces, n]
        h = np.zeros((T + 1,) + h0.shape, dtype=h0.dtype)  # traces that are not live stay 0
        h[0] = h0
        fixed, fixed_f, exact, exact_f, live = self._history_plan(names)
        for k in range(1, T + 1):
            prev, cur = h[k - 1], h[k]
            if fixed:  # stochastic (or nearest) rounding of the decayed value, all such traces at once
                y = prev[:, fixed] * fixed_f
                frac = y % 1
                up = frac >= 0.5 if self.nearest else rnd.decay < frac
                cur[:, fixed] = np.floor(y) + up
            if exact:
                cur[:, exact] = prev[:, exact] * exact_f
            spk = tspk == k
            if spk.any():
                for i, name in live:
                    cur[:, i] = np.where(spk, self._add_impulse(cur[:, i], name, rnd.impulse), cur[:, i])
        return h

    def _history_plan(self, names: tuple[str, ...]):
        """For one side's traces: the indices (and decay factors ``[k, 1]``) of the live traces
        that decay with rounding and of those that decay exactly, and the live ``(index, name)``
        pairs. Traces with tau 0 are zeroed (Lava's fixed model; its float one gives NaN)."""
        plan = self._plans.get(names)
        if plan is None:
            live = [(i, n) for i, n in enumerate(names) if n in self._live]
            fixed = [i for i, n in live if n in self.decay_factor and self.var_fixed[n]]
            exact = [i for i, n in live if n in self.decay_factor and not self.var_fixed[n]]

            def col(idx: list[int]) -> np.ndarray:
                return np.array([self.decay_factor[names[i]] for i in idx]).reshape(-1, 1)

            plan = (fixed, col(fixed), exact, col(exact), live)
            self._plans[names] = plan
        return plan

    def _apply(self, var: str, expr: Expr, args: _Args) -> np.ndarray:
        S = self.state[var]
        if not self.var_fixed[var]:
            delta = sum(self._product_float(p, args) for p in expr.products)
            if var == "w" and self.learn_mode == "shared":
                delta = delta.sum(axis=0, keepdims=True)
            new = self._saturate_sign(var, S + delta)
            # float weights keep the weight format's range (a limit of the chip's synapse, not
            # a quantization); float tags are unbounded
            return self._clip_var("w", new) if var == "w" else new
        shift = self.acc_bits - self.var_bits[var]  # 15 - 8 = 7: S sits in the accumulator's top bits
        lim_lo, lim_hi = -(2**self.acc_bits) - 1, 2**self.acc_bits - 1  # Lava's lower clip is -2**15 - 1
        if self.exact_products:
            return self._apply_exact_products(var, expr, args, S, shift, lim_lo, lim_hi)
        acc = S << shift  # a new array; saturated in place after each product
        for p in expr.products:
            m = self._product_fixed(p, args)
            if self._product_bound(p) > lim_hi or any(not self.var_fixed.get(f.var, True) for f in p.factors):
                # (a product of fixed factors that always fits the accumulator needs no clip)
                m = _clip(m, lim_lo, lim_hi)
            acc = self._accumulate(var, acc, m, lim_lo, lim_hi)
        acc = self._saturate_sign(var, acc)
        # rounding to the variable's grid with the epoch's one random number (drawn in either
        # case, so the stream stays aligned with the chip's): q = acc / 2**shift rounds up when
        # r < frac(q), i.e. when the integer f = acc mod 2**shift exceeds k = floor(r * 2**shift)
        # (exact: a power-of-two scaling), i.e. floor(q) + [f > k] = (acc + 2**shift - 1 - k) >> shift.
        # Round to nearest (halves up) is k = 2**(shift - 1) - 1.
        k = 2 ** (shift - 1) - 1 if self.nearest else int(np.floor(self.conn_random.value * 2**shift))
        acc += 2**shift - 1 - k
        acc >>= shift
        return self._clip_var(var, acc, out=acc)

    def _apply_exact_products(self, var, expr: Expr, args: _Args, S, shift: int, lim_lo: int, lim_hi: int):
        """The fixed update with every product's width shift exact (``"products"``): the
        accumulator in float64 with the chip's saturations, then the chip's rounding."""
        acc = S.astype(np.float64) * 2.0**shift
        for p in expr.products:
            m = _clip(self._product_fixed(p, args, exact=True), lim_lo, lim_hi)
            acc = self._accumulate(var, acc, m, lim_lo, lim_hi)
        q = self._saturate_sign(var, acc) * 2.0**-shift
        frac = q % 1
        up = frac >= 0.5 if self.nearest else self.conn_random.value < frac
        return self._clip_var(var, np.floor(q).astype(np.int64) + up)

    def _accumulate(self, var: str, acc: np.ndarray, m: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """``acc + m`` saturated to ``[lo, hi]`` (in place where the shapes allow). Shared
        weights: every trial's update enters the one accumulator, in trial order."""
        if var == "w" and self.learn_mode == "shared":
            m = np.broadcast_to(m, (self.batch, self.n_post, self.n_pre))
            for b in range(m.shape[0]):
                acc = _clip(acc + m[b : b + 1], lo, hi)
            return acc
        acc = np.add(acc, m, out=acc) if acc.shape == np.broadcast_shapes(acc.shape, m.shape) else acc + m
        np.maximum(acc, lo, out=acc)
        return np.minimum(acc, hi, out=acc)

    def _product_bound(self, p: Product) -> int:
        """The largest magnitude a fixed product can take (factors at their clipped widths)."""
        b = self._bounds.get(p)
        if b is None:
            width = self.mant_bits + sum(self.widths[f.var] for f in p.factors)
            mag = abs(int(p.mantissa)) * 2 ** sum(self.widths[f.var] for f in p.factors)
            b = (mag >> max(0, width - self.acc_bits)) << (p.exponent - self.exp_min)
            self._bounds[p] = b
        return b

    def _product_fixed(self, p: Product, args: _Args, exact: bool = False) -> np.ndarray:
        """A product in accumulator units: the factors clipped to their widths, the width shift
        a floor (``exact``: an exact division, float64), then the exponent's shift."""
        dep = args.dependency(p)
        width = self.mant_bits
        vals = []
        for f in p.factors:
            w = self.widths[f.var]
            width += w
            v = args.factor(f, p.dependency)
            # a float quantity (attribution) is read unsaturated; the chip's factors are clipped
            # to their width (a synaptic variable whose range lies within it needs no clip)
            if self.var_fixed.get(f.var, True):
                if not (f.var in SYN_VARS and not f.sgn and self._within_width(f.var, f.const, w)):
                    v = _clip(v, -(2**w), 2**w - 1)
            vals.append(v)
        if any(np.asarray(v).dtype.kind == "f" for v in vals):
            m = dep
            for v in vals:  # a float factor: the chip's order of multiplication, for the float64 roundings
                m = m * v
            m = m * p.mantissa
        else:  # integers: exact in any order, so the per-neuron factors are multiplied first
            small = dep * p.mantissa
            big = None
            for v in vals:
                if np.ndim(v) == 3 and v.shape[1] > 1 and v.shape[2] > 1:
                    big = v if big is None else big * v
                else:
                    small = small * v
            m = small if big is None else big * small
        s = max(0, width - self.acc_bits)
        e = p.exponent - self.exp_min  # Lava stores s_exp = e + 7 and shifts by it
        if exact:
            m = m * 2.0 ** (e - s)
        else:
            if np.asarray(m).dtype.kind == "f":  # a float factor: the accumulator's integer grid still floors it
                m = np.floor(m * 2.0**-s).astype(np.int64)
            elif s:
                m = m >> s  # floor shift by the excess width
            if e:
                m = m << e
        return m if np.ndim(m) == 3 else np.broadcast_to(m, (self.batch, self.n_post, self.n_pre))  # u*literal: an int

    def _within_width(self, var: str, const: int, w: int) -> bool:
        """Whether a synaptic variable plus ``const`` always lies within a ``w``-bit factor."""
        lo, hi = self._var_range(var)
        return -(2**w) <= lo + const and hi + const <= 2**w - 1

    def _product_float(self, p: Product, args: _Args) -> np.ndarray:
        # The engine's width shift is kept, as an exact division: the float level is then the
        # same rule as the fixed one without its rounding. (Lava's float model omits the shift,
        # so it is 2**s times its own fixed model for products wider than the accumulator.)
        width = self.mant_bits + sum(self.widths[f.var] for f in p.factors)
        m = args.dependency(p) * (p.mantissa * 2.0 ** (p.exponent - max(0, width - self.acc_bits)))
        for f in p.factors:
            m = m * args.factor(f, p.dependency)
        return np.broadcast_to(m, (self.batch, self.n_post, self.n_pre))

    def _saturate_sign(self, var: str, x: np.ndarray) -> np.ndarray:
        if var == "w":
            if self.sign_mode == "excitatory":
                return np.maximum(0, x)
            if self.sign_mode == "inhibitory":
                return np.minimum(0, x)
            return x
        if var == "d":
            return np.maximum(0, x)
        return x

    def _var_range(self, var: str) -> tuple[int, int]:
        """The range a synaptic variable is clipped to after each learning phase."""
        n = self.var_bits[var]
        if var == "w":  # Lava's clip_weights(sign_mode, 8 bits)
            lo = {"mixed": -(2**n), "excitatory": 0, "inhibitory": -(2**n - 1)}[self.sign_mode]
            return lo, 0 if self.sign_mode == "inhibitory" else 2**n - 1
        if var == "d":
            return 0, 2**n - 1
        return -(2**n) - 1, 2**n - 1  # tag t: Lava clips at -(2**8) - 1 (sic)

    def _clip_var(self, var: str, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``x`` clipped to the variable's range (into ``out`` when given: the fixed path's own array)."""
        lo, hi = self._var_range(var)
        if out is None:
            return _clip(x, lo, hi)
        np.maximum(x, lo, out=out)
        return np.minimum(out, hi, out=out)


class _Args:
    """The values a product reads in one learning phase: dependencies, the traces at the
    time each dependency selects, and the synaptic variables before the update. Arrays are
    shaped to broadcast to ``[batch, post, pre]``."""

    def __init__(self, eng: SumOfProductsEngine, hx: np.ndarray, hy: np.ndarray, t: int, hr=None):
        self.eng, self.hx, self.hy, self.hr = eng, hx, hy, hr
        st = eng.state
        self.tx, self.ty = st["tx"], st["ty"]
        self.x0 = (self.tx > 0)[:, None, :].astype(np.int64)
        self.y0 = (self.ty > 0)[:, :, None].astype(np.int64)
        k = eng.rule.decimate
        T = eng.rule.t_epoch
        self.u = 0 if k is None else int(int(t / T) % 2**k == 0)
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def dependency(self, p: Product):
        return {"x0": self.x0, "y0": self.y0, "u": self.u}[p.dependency]

    def factor(self, f: Factor, dep: str):
        if f.var in ("x0", "y0"):
            v = getattr(self, f.var) + f.const
        elif f.var in SYN_VARS:
            v = self.eng.state[f.var]
            v = v + f.const if f.const else v  # (read only: no copy is needed)
            if f.sgn:
                v = np.sign(v)
        else:
            v = self.trace(f.var, dep) + f.const
        return v

    def trace(self, name: str, dep: str) -> np.ndarray:
        key = (name, dep)
        if key in self._cache:
            return self._cache[key]
        is_x = name in X_TRACES
        h = self.hx if is_x else self.hy  # [T+1, B, k, n]
        if name in R_TRACES:  # the reward trace: a post-side trace, equal for every post neuron
            h, i = self.hr, 0
        else:
            i = (X_TRACES if is_x else Y_TRACES).index(name)
        hi = np.moveaxis(h[:, :, i], 0, -1)  # [B, n, T+1]
        if dep == "u":
            v = h[-1, :, i]
            out = v[:, None, :] if is_x else v[:, :, None]
        elif (dep == "x0") == is_x:  # a trace of the dependency's own side, at its own spike: [B, n]
            tsp = self.tx if is_x else self.ty
            v = np.take_along_axis(hi, tsp[:, :, None], axis=2)[:, :, 0]
            out = v[:, None, :] if is_x else v[:, :, None]
        elif is_x:  # pre trace at each post neuron's spike time: [B, post, pre]
            out = np.take_along_axis(hi[:, None, :, :], self.ty[:, :, None, None], axis=3)[..., 0]
        else:  # post trace at each pre neuron's spike time: [B, post, pre]
            out = np.take_along_axis(hi[:, :, None, :], self.tx[:, None, :, None], axis=3)[..., 0]
        self._cache[key] = out
        return out
