"""A learning rule as a sum-of-products learning engine runs it (Loihi 1/2, Lava).

:class:`EngineRule` is what the ``lower_learning`` pass produces for a plastic projection on
a ``sum_of_products`` engine, whatever rule it came from (STDP, R-STDP, e-prop, or rule
strings written by hand): the ``dw``/``dt``/``dd`` expressions, five traces with their
impulses and time constants, the epoch length, the seed of the engine's random streams,
and where the post-synaptic traces come from (``post_traces="spikes"``: y1..y3 are traces
of the post neuron's spikes, Lava's 2-factor rule; ``"graded"``: the post neuron sends
y1..y3 as graded values every step, Lava's 3-factor rule, described by ``graded``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._frozen import FrozenDict, freeze, thaw
from ..errors import Problem, ProfileError
from .expr import Expr, RuleSyntaxError, parse

TRACE_NAMES = ("x1", "x2", "y1", "y2", "y3")
REWARD_TRACE = "r1"  # Loihi 1's reward trace: one per learning rule, driven by reward spikes
TARGETS = ("dw", "dt", "dd")
# the profile key of the decay a sum-of-products engine gives the traces a neuron writes (graded
# y1..y3, graded x1): a property of the chip, not of the rule (Lava's Loihi3FLearningRule fixes it)
GRADED_TAU_KEY = "graded_trace_tau"


@dataclass(frozen=True)
class Trace:
    """A synaptic trace: ``impulse`` added per spike (in trace LSBs; fractional part kept to
    the engine's ``impulse_fraction_bits``), decay ``exp(-1/tau)`` per step (``tau`` in steps;
    0 zeroes the trace every step, as Lava's fixed-point model does)."""

    impulse: float = 0.0
    tau: float = 0.0


@dataclass(frozen=True)
class EngineRule:
    """A rule in the engine's own terms (see the module docstring).

    ``graded`` maps ``y1``/``y2``/``y3`` to the graded source that feeds it when
    ``post_traces == "graded"``: ``{"source": "input"}`` (a value per post neuron and step,
    given as the run's input ``<projection>/<y>``) or ``{"source": "post_trace", "impulse":
    I, "tau": steps}`` (the post neuron's own spike trace). Unlisted graded traces stay 0.

    ``pre_graded``: ``{"x1": {"source": "pre", "offset": c}}`` makes ``x1`` a graded
    pre-synaptic value: every step each pre neuron sends its graded payload plus ``c`` (an
    unsigned 7-bit value on Loihi 2) and the engine overwrites ``x1`` with it (Lava's
    ``LearningDense(graded_spike_cfg=OVERWRITE)``); ``x1``'s impulse is then 0, as for graded
    post traces. A rule reads the signed value as ``(x1 - c)``.

    The traces a neuron writes (:attr:`graded_traces`) have impulse 0 and decay with
    ``graded_tau``, whatever ``traces`` says of them: the engine's own decay, the profile's
    ``learning.params.graded_trace_tau`` (loihi2: 65535, Lava's), which :meth:`on_engine`
    sets. The ``lower_learning`` pass binds every rule it lowers, and the engine and the Lava
    backend bind a rule built by hand; until then ``graded_tau`` is 0 (unset). A saved Program
    holds it in its graded traces' ``tau``.

    A rule that reads ``r1`` uses the reward trace of Loihi 1's engine (one per learning
    rule, so one per projection and trial): reward spikes, given as the run's input
    ``<projection>/r0`` (0 or 1 per step), add ``traces["r1"].impulse`` and it decays with
    ``traces["r1"].tau`` like the other traces.
    """

    dw: Expr | None = None
    dt: Expr | None = None
    dd: Expr | None = None
    traces: Mapping[str, Trace] = field(default_factory=FrozenDict)
    t_epoch: int = 1
    rng_seed: int = 0
    post_traces: str = "spikes"
    graded: Mapping[str, str] = field(default_factory=FrozenDict)
    source: str = "custom"  # the rule it was lowered from, for reports
    pre_graded: Mapping[str, Any] = field(default_factory=FrozenDict)
    graded_tau: float = 0  # the decay of the graded traces (steps): the profile's, set by on_engine

    def __post_init__(self) -> None:
        traces = {name: self.traces.get(name, Trace()) for name in TRACE_NAMES}
        if REWARD_TRACE in self.traces or any(REWARD_TRACE in e.variables for e in self.expressions.values()):
            traces[REWARD_TRACE] = self.traces.get(REWARD_TRACE, Trace())
        for name in self.graded_traces:  # written by a neuron: no impulse, the engine's decay
            traces[name] = Trace(0.0, self.graded_tau)
        object.__setattr__(self, "traces", FrozenDict(traces))
        object.__setattr__(self, "graded", freeze(dict(self.graded)))
        object.__setattr__(self, "pre_graded", freeze(dict(self.pre_graded)))

    @property
    def graded_traces(self) -> tuple[str, ...]:
        """The traces a neuron writes every step rather than spikes driving them: y1..y3 with
        graded post traces (Lava's 3-factor rule), x1 with graded pre-synaptic spikes."""
        return (("y1", "y2", "y3") if self.post_traces == "graded" else ()) + (
            ("x1",) if "x1" in self.pre_graded else ()
        )

    def on_engine(self, engine) -> EngineRule:
        """This rule with the decay of its graded traces set to ``engine``'s (a profile's
        ``LearningEngine``: ``params.graded_trace_tau``) if it is still unset (0). A profile
        without the key is a named error when a graded trace needs it."""
        if not self.graded_traces or self.graded_tau != 0:
            return self
        tau = engine.params.get(GRADED_TAU_KEY)  # (required here: checked below, not defaulted)
        if tau is None:
            raise ProfileError(
                [Problem("profile learning (sum_of_products)",
                         f"missing params.{GRADED_TAU_KEY}, required by the graded traces "
                         f"{list(self.graded_traces)} of the rule")]
            )  # fmt: skip
        return replace(self, graded_tau=tau)

    @property
    def uses_reward(self) -> bool:
        """Whether the rule reads Loihi 1's reward trace ``r1``."""
        return REWARD_TRACE in self.traces

    @property
    def expressions(self) -> dict[str, Expr]:
        return {k: getattr(self, k) for k in TARGETS if getattr(self, k) is not None}

    @property
    def decimate(self) -> int | None:
        ks = {e.decimate for e in self.expressions.values() if e.decimate is not None}
        return ks.pop() if ks else None

    @classmethod
    def from_strings(
        cls,
        *,
        dw: str | None = None,
        dt: str | None = None,
        dd: str | None = None,
        engine=None,
        **kw: Any,
    ) -> EngineRule:
        """Parse rule strings (checked against ``engine``, a profile's ``LearningEngine``)
        and check the whole rule; every problem is reported at once."""
        problems: list[Problem] = []
        exprs: dict[str, Expr] = {}
        for target, text in (("dw", dw), ("dt", dt), ("dd", dd)):
            if text is None:
                continue
            try:
                exprs[target] = parse(text, target, engine)
            except RuleSyntaxError as exc:
                problems.extend(exc.problems)
        traces = kw.pop("traces", {})
        rule = None
        if not problems:
            rule = cls(**exprs, traces={k: v if isinstance(v, Trace) else Trace(**v) for k, v in traces.items()}, **kw)
            problems = rule.problems(engine)
        if problems:
            raise RuleSyntaxError(problems, header="learning rule cannot run on this engine")
        return rule  # type: ignore[return-value]

    def problems(self, engine=None) -> list[Problem]:
        """Everything about this rule that ``engine`` (or the rule itself) cannot take."""
        out: list[Problem] = []
        if not self.expressions:
            out.append(Problem("learning rule", "needs at least one of dw, dt, dd"))
        ks = {e.decimate for e in self.expressions.values() if e.decimate is not None}
        if len(ks) > 1:
            out.append(Problem("learning rule", f"u_k with different k across dw/dt/dd: {sorted(ks)}"))
        if self.post_traces not in ("spikes", "graded"):
            out.append(Problem("learning rule", f"post_traces must be 'spikes' or 'graded', got {self.post_traces!r}"))
        for y, src in self.graded.items():
            if y not in ("y1", "y2", "y3"):
                out.append(Problem("learning rule", f"graded source for {y!r}: only y1, y2, y3 can be graded"))
            if not isinstance(src, Mapping) or "source" not in src:
                out.append(Problem("learning rule", f"graded source for {y}: expected {{source: ...}}, got {src!r}"))
            if self.post_traces != "graded":
                out.append(Problem("learning rule", f"graded source for {y} needs post_traces: graded"))
        for name, tr in self.traces.items():
            if tr.impulse < 0 or tr.tau < 0:
                out.append(Problem(f"trace {name}", f"impulse {tr.impulse} and tau {tr.tau} must be >= 0"))
        for x, src in self.pre_graded.items():
            if x != "x1":
                out.append(Problem("learning rule", f"graded pre-synaptic {x!r}: only x1 can be graded"))
            elif (
                not isinstance(src, Mapping) or src.get("source") != "pre" or not isinstance(src.get("offset", 0), int)
            ):
                out.append(Problem("learning rule", f"graded x1: expected {{source: pre, offset: int}}, got {src!r}"))
        if not isinstance(self.t_epoch, int) or self.t_epoch < 1:
            out.append(Problem("learning rule", f"t_epoch must be an integer >= 1, got {self.t_epoch!r}"))
        if engine is not None:
            if engine.kind != "sum_of_products":
                out.append(Problem("learning rule", f"the {engine.kind} engine does not run sum-of-products rules"))
            elif engine.epoch_bits is not None and self.t_epoch >= 2**engine.epoch_bits:
                out.append(
                    Problem(
                        "learning rule", f"t_epoch {self.t_epoch} exceeds the engine's {engine.epoch_bits}-bit epoch"
                    )
                )
            if self.post_traces == "graded" and not engine.third_factor:
                out.append(
                    Problem(
                        "learning rule", "needs graded post traces (a third factor), which this engine does not have"
                    )
                )
            tb = int(engine.params["trace_bits"]) if engine.kind == "sum_of_products" else None  # (required there)
            for name, tr in self.traces.items():
                if tb is not None and tr.impulse >= 2**tb:
                    out.append(
                        Problem(f"trace {name}", f"impulse {tr.impulse} exceeds the {tb}-bit trace (max {2**tb - 1})")
                    )
            if self.pre_graded and not engine.params.get("graded_pre_spikes"):
                out.append(
                    Problem(
                        "learning rule", "needs graded pre-synaptic spikes (x1 overwritten), which this engine lacks"
                    )
                )
            for x, src in self.pre_graded.items():
                off = src.get("offset", 0) if isinstance(src, Mapping) else 0
                if isinstance(off, int) and not 0 <= off < 2**tb:
                    out.append(Problem("learning rule", f"graded {x} offset {off} outside the {tb}-bit trace"))
            tau = engine.params.get(GRADED_TAU_KEY)  # (None: on_engine names it where it is needed)
            if self.graded_traces and tau is not None and self.graded_tau not in (0, tau):
                out.append(
                    Problem("learning rule", f"graded traces decay with tau {self.graded_tau}, "
                            f"but this engine's is {tau} (learning.params.{GRADED_TAU_KEY})")
                )  # fmt: skip
            if self.uses_reward and REWARD_TRACE not in engine.variables:
                out.append(
                    Problem("learning rule", f"reads the reward trace {REWARD_TRACE}, which this engine does not have")
                )
        return out

    # -- serialization ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            **{k: str(e) for k, e in self.expressions.items()},
            "traces": {k: {"impulse": t.impulse, "tau": t.tau} for k, t in self.traces.items()},
            "t_epoch": self.t_epoch,
            "rng_seed": self.rng_seed,
            "post_traces": self.post_traces,
            "graded": thaw(self.graded),
            "source": self.source,
            **({"pre_graded": thaw(self.pre_graded)} if self.pre_graded else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EngineRule:
        exprs = {k: parse(d[k], k) for k in TARGETS if d.get(k) is not None}
        return cls(
            **exprs,
            traces={k: Trace(**v) for k, v in d.get("traces", {}).items()},
            t_epoch=int(d.get("t_epoch", 1)),
            rng_seed=int(d.get("rng_seed", 0)),
            post_traces=d.get("post_traces", "spikes"),
            graded=dict(d.get("graded", {})),
            source=d.get("source", "custom"),
            pre_graded=dict(d.get("pre_graded", {})),
            graded_tau=_saved_graded_tau(d),
        )


def _saved_graded_tau(d: Mapping[str, Any]) -> float:
    """The graded traces' decay a saved rule holds (in their ``tau``; 0: unset)."""
    graded = "y1" if d.get("post_traces") == "graded" else "x1" if "x1" in d.get("pre_graded", {}) else None
    return d["traces"][graded]["tau"] if graded in d.get("traces", {}) else 0
