"""``custom``: rule strings for the sum-of-products engine, written by hand.

Parameters: ``dw``, ``dt``, ``dd`` (Lava's rule-string syntax), ``traces`` (``{x1: {impulse,
tau}, ...}``, tau in steps), ``t_epoch``, ``rng_seed``, ``post_traces`` (``spikes`` or
``graded``) and ``graded`` (``{y2: {source: input}}`` ...). Nothing is rescaled: the strings
act on weight mantissas and trace LSBs, as on the chip. On loihi1 a rule may read the reward
trace ``r1`` (``traces: {r1: {impulse, tau}}``; reward spikes are the run's input
``<projection>/r0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._frozen import thaw
from ..learning.expr import RuleSyntaxError
from ..learning.rule import EngineRule, Trace
from .base import LoweringContext, require

DEFAULTS = {
    "dw": None,
    "dt": None,
    "dd": None,
    "traces": {},
    "t_epoch": 1,
    "rng_seed": None,
    "post_traces": "spikes",
    "graded": {},
}


def lower(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, "custom")
    bad = [
        f"custom: {k} must be an integer, got {p[k]!r}"
        for k in ("t_epoch", "rng_seed")
        if p[k] is not None and (isinstance(p[k], bool) or not isinstance(p[k], int))
    ]
    if not isinstance(p["traces"], dict) or not all(isinstance(v, dict) for v in p["traces"].values()):
        bad.append(f"custom: traces must map x1..y3 to {{impulse, tau}}, got {p['traces']!r}")
    if bad:
        raise ctx.fail(*bad)
    try:
        traces = {k: Trace(**v) for k, v in p["traces"].items()}
        return EngineRule.from_strings(
            dw=p["dw"],
            dt=p["dt"],
            dd=p["dd"],
            engine=ctx.profile.learning,
            traces=traces,
            t_epoch=int(p["t_epoch"]),
            rng_seed=int(ctx.seed if p["rng_seed"] is None else p["rng_seed"]),
            post_traces=p["post_traces"],
            graded=p["graded"],
            source="custom",
        )
    except RuleSyntaxError as exc:
        raise ctx.fail(*[str(pr) for pr in exc.problems]) from None
    except TypeError as exc:
        raise ctx.fail(f"custom: traces must map x1..y3 to {{impulse, tau}}: {exc}") from None
