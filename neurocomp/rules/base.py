"""What every rule's lowering gets, and the helpers they share.

A lowering turns a rule's hyperparameters (model units: weights as in the float network,
times in ms) into an :class:`~neurocomp.learning.rule.EngineRule`. Everything it has to
approximate (a learning rate rounded to ``m * 2**e``, a time constant rounded to whole
steps) is recorded as a note, so the compile log says what the chip will really do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import NeurocompError, Problem
from ..profiles import Profile


class LoweringError(NeurocompError, ValueError):
    kind = "lowering"


@dataclass
class LoweringContext:
    """One plastic projection being lowered: its name, the profile, the step (ms), the
    model units per weight-mantissa LSB (``2**weight_exp * float_scale``), and the notes the
    lowering leaves for the compile log."""

    projection: str
    profile: Profile
    dt_ms: float
    weight_lsb: float
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    kind: str = "projection"  # what ``projection`` names (a population, for per-population choices)

    @property
    def where(self) -> str:
        return f"{self.kind} {self.projection!r}"

    def note(self, text: str) -> None:
        self.notes.append(f"{self.where}: {text}")

    def fail(self, *messages: str) -> LoweringError:
        return LoweringError([Problem(self.where, m) for m in messages])


def require(params: Mapping[str, Any], defaults: Mapping[str, Any], ctx: LoweringContext, rule: str) -> dict:
    """``params`` completed with ``defaults``; unknown keys and missing required ones
    (default ``...``) are reported together."""
    problems = param_problems(params, defaults, rule)
    if problems:
        raise ctx.fail(*problems)
    return {k: params.get(k, v) for k, v in defaults.items()}


def param_problems(params: Mapping[str, Any], defaults: Mapping[str, Any], rule: str) -> list[str]:
    """What is wrong with a rule's ``params`` against its ``defaults``: unknown keys, missing
    required ones (default ``...``), numbers that are not finite, times and impulses <= 0.
    Needs no profile, so ``validate`` reports these as well as ``compile``."""
    problems = [f"{rule}: unknown parameter {k!r} (known: {', '.join(defaults)})" for k in params if k not in defaults]
    out = {k: params.get(k, v) for k, v in defaults.items()}
    problems += [f"{rule}: parameter {k!r} is required" for k, v in out.items() if v is ...]
    for k, v in out.items():  # numbers must be finite numbers; times and impulses positive
        d = defaults[k]  # required parameters (default ...) are numbers too
        if v is ... or (d is not ... and (not isinstance(d, (int, float)) or isinstance(d, bool))):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            problems.append(f"{rule}: parameter {k!r} must be a finite number, got {v!r}")
        elif (k.startswith("tau") or k.endswith("impulse")) and v <= 0:
            problems.append(f"{rule}: parameter {k!r} must be > 0, got {v!r}")
    return problems


def scale_literal(value: float, ctx: LoweringContext, what: str) -> tuple[int, int]:
    """The engine's closest ``m * 2**e`` to ``value`` (mantissa and exponent within the
    profile's limits). A value the engine cannot come within 50% of is an error; any
    rounding is noted with its relative error."""
    lrn = ctx.profile.learning
    m_lo, m_hi = lrn.mantissa_min, lrn.mantissa_max
    e_lo, e_hi = lrn.exponent_min, lrn.exponent_max
    if value == 0:
        return 0, 0
    best = None
    for e in range(e_lo, e_hi + 1):
        m = max(m_lo, min(m_hi, round(value / 2.0**e)))
        err = abs(m * 2.0**e - value)
        if m != 0 and (best is None or err < best[0] - 1e-15):
            best = (err, m, e)
    smallest, largest = 2.0**e_lo, max(abs(m_lo), m_hi) * 2.0**e_hi
    if best is None or best[0] / abs(value) > 0.5:
        raise ctx.fail(
            f"{what} = {value:.4g} (in engine units) is outside what the engine can scale by: "
            f"{smallest:g} .. {largest:g} (m*2^e with m in [{m_lo}, {m_hi}], e in [{e_lo}, {e_hi}])"
        )
    err, m, e = best
    rel = err / abs(value)
    if rel > 1e-12:
        ctx.note(f"{what} {value:.6g} rounded to {m}*2^{e} = {m * 2.0**e:.6g} (relative error {rel:.1%})")
    return m, e


def literal(m: int, e: int) -> str:
    """``m*2^e`` in rule-string syntax (a factor, ``1`` omitted)."""
    if e == 0:
        return f"{m}"
    return f"2^{e}" if m == 1 else f"{m}*2^{e}"


def steps(tau_ms: float, ctx: LoweringContext, what: str) -> int:
    """A time constant in whole steps (the engine's trace decay register), noted if rounded."""
    exact = tau_ms / ctx.dt_ms
    n = max(1, round(exact))
    if not math.isclose(n, exact, rel_tol=1e-9):
        ctx.note(f"{what} {tau_ms:.4g} ms = {exact:.4g} steps, rounded to {n}")
    return n
