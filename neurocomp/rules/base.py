"""What every rule's lowering gets, and the helpers they share.

A lowering turns a rule's hyperparameters (model units: weights as in the float network,
times in ms) into an :class:`~neurocomp.learning.rule.EngineRule`. Everything it has to
approximate (a learning rate rounded to ``m * 2**e``, a time constant rounded to whole
steps) is recorded as a note, so the compile log says what the chip will really do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..learning.lowering import LoweringContext, LoweringError, param_problems  # noqa: F401  (the rules import them here)


def tag_clear(lrn) -> int:
    """The graded ``y1`` that moves a tag into ``dw`` and clears it in one step (NP's reward
    step, CHL's apply step): ``2**s`` for the engine's shift ``s`` of ``t * y1``, so that
    ``t * y1 >> s = t`` (loihi2: 32, ``s = 4 + 9 + 7 - 15 = 5``)."""
    return 2 ** lrn.product_shift("t", "y1")


def require(params: Mapping[str, Any], defaults: Mapping[str, Any], ctx: LoweringContext, rule: str) -> dict:
    """``params`` completed with ``defaults``; unknown keys and missing required ones
    (default ``...``) are reported together."""
    problems = param_problems(params, defaults, rule)
    if problems:
        raise ctx.fail(*problems)
    return {k: params.get(k, v) for k, v in defaults.items()}


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
