"""Pair-based STDP with exponential traces (all-to-all pairing).

Float rule, per step of ``dt`` (the convention every level uses: a trace decays, then takes
the spikes of the step, then is read, so a pre and a post spike in the same step see each
other)::

    x_i <- x_i * exp(-dt/tau_plus)  + pre_i          (pre trace, 1 per spike)
    y_j <- y_j * exp(-dt/tau_minus) + post_j         (post trace)
    dw_ij = lr * (a_plus * x_i * post_j - a_minus * y_j * pre_i)     (model weight units)

Lowering onto a sum-of-products engine (Loihi 1/2)::

    x1: impulse I, tau tau_plus/dt;  y1: impulse I, tau tau_minus/dt;  t_epoch 1
    dw = c_plus * y0 * x1 - c_minus * x0 * y1,   c = lr * a / (I * weight_lsb)

Approximations (noted at compile time): ``c`` rounded to ``m * 2**e``; tau rounded to whole
steps; 7-bit traces with stochastic rounding of decays and impulses; the update rounded
stochastically to a weight LSB; weights bounded by the sign mode's 8-bit range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._frozen import thaw
from ..learning.expr import parse
from ..learning.rule import EngineRule, Trace
from .base import LoweringContext, literal, require, scale_literal, steps

DEFAULTS = {
    "lr": ...,
    "a_plus": 1.0,
    "a_minus": 1.0,
    "tau_plus_ms": 20.0,
    "tau_minus_ms": 20.0,
    "trace_impulse": 16.0,  # engine trace LSBs per spike (Lava's STDPLoihi default)
}


@dataclass
class StdpFloat:
    """The float rule on ``[post, pre]`` weights, batched over trials (state ``[batch, n]``)."""

    lr: float
    a_plus: float = 1.0
    a_minus: float = 1.0
    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    dt_ms: float = 1.0

    def init(self, batch: int, n_post: int, n_pre: int) -> dict[str, np.ndarray]:
        return {"x": np.zeros((batch, n_pre)), "y": np.zeros((batch, n_post))}

    def step(self, state: dict[str, np.ndarray], pre: np.ndarray, post: np.ndarray) -> np.ndarray:
        """Advance the traces by one step and return ``dw`` ``[batch, post, pre]``."""
        state["x"] = state["x"] * np.exp(-self.dt_ms / self.tau_plus_ms) + pre
        state["y"] = state["y"] * np.exp(-self.dt_ms / self.tau_minus_ms) + post
        ltp = self.a_plus * post[:, :, None] * state["x"][:, None, :]
        ltd = self.a_minus * state["y"][:, :, None] * pre[:, None, :]
        return self.lr * (ltp - ltd)


def lower(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, "stdp")
    imp = float(p["trace_impulse"])
    c_plus = scale_literal(p["lr"] * p["a_plus"] / (imp * ctx.weight_lsb), ctx, "stdp potentiation scale")
    c_minus = scale_literal(-p["lr"] * p["a_minus"] / (imp * ctx.weight_lsb), ctx, "stdp depression scale")
    terms = []
    if c_plus[0]:
        terms.append(f"{literal(*c_plus)}*y0*x1")
    if c_minus[0]:
        terms.append(f"{literal(*c_minus)}*x0*y1")
    if not terms:
        raise ctx.fail("stdp: a_plus and a_minus are both 0: nothing to learn")
    dw = " + ".join(terms).replace("+ -", "- ")
    rule = EngineRule(
        dw=parse(dw, "dw", ctx.profile.learning),
        traces={
            "x1": Trace(imp, steps(p["tau_plus_ms"], ctx, "stdp tau_plus")),
            "y1": Trace(imp, steps(p["tau_minus_ms"], ctx, "stdp tau_minus")),
        },
        rng_seed=ctx.seed,
        source="stdp",
    )
    ctx.note(f"stdp lowered to dw = {rule.dw}")
    return rule
