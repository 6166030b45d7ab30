"""Oja's rule: Hebbian learning with a decay that keeps the weight vector at unit length.

Float rule (Oja 1982), for pre activities ``x`` and post activities ``y`` (model units)::

    dw_ij = lr * (x_i * y_j - w_ij * y_j**2)

With a linear neuron ``y = w . x`` on inputs of covariance ``C`` it converges to the unit
principal eigenvector of ``C`` (up to sign). A spiking network reads ``x`` and ``y`` as
exponential spike traces (1 per spike, decaying with ``tau_pre_ms`` / ``tau_post_ms``; the
convention every level uses: a trace decays, then takes the step's spikes, then is read),
applied every step (:class:`OjaFloat`).

Lowering onto a sum-of-products engine (Loihi 1/2), every epoch of one step::

    x1: impulse I, tau tau_pre/dt;  y1: impulse I, tau tau_post/dt;  t_epoch 1
    dw = c_hebb * u0 * x1 * y1 - c_decay * u0 * w * y1 * y1
    c_hebb = 2**s1 * lr / (I**2 * weight_lsb),   c_decay = 2**s2 * lr / I**2

(``x1 = I x``, ``y1 = I y``, ``w`` in mantissas; ``s1``, ``s2`` the engine's width shifts of
the two products, :meth:`~neurocomp.profiles.profile.Learning.product_shift`). Approximations
(noted at compile time): the scales rounded to ``m * 2**e``; taus to whole steps; 7-bit traces
(saturating at 127: keep ``I`` times the largest expected trace below it); the two products
floored by their width shifts; the update rounded stochastically to a weight LSB.
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
    "tau_pre_ms": 20.0,
    "tau_post_ms": 20.0,
    "trace_impulse": 16.0,  # engine trace LSBs per spike
}


def oja_dw(w: np.ndarray, x: np.ndarray, y: np.ndarray, lr: float) -> np.ndarray:
    """Oja's update ``lr * (x y - w y**2)`` of ``w`` ``[..., post, pre]`` for pre activities
    ``x`` ``[..., pre]`` and post activities ``y`` ``[..., post]``."""
    x, y = np.asarray(x)[..., None, :], np.asarray(y)[..., :, None]
    return lr * (x * y - w * y * y)


@dataclass
class OjaFloat:
    """The float rule on spike traces, batched over trials (state ``[batch, n]``)."""

    lr: float
    tau_pre_ms: float = 20.0
    tau_post_ms: float = 20.0
    dt_ms: float = 1.0

    def init(self, batch: int, n_post: int, n_pre: int) -> dict[str, np.ndarray]:
        return {"x": np.zeros((batch, n_pre)), "y": np.zeros((batch, n_post))}

    def step(self, state: dict[str, np.ndarray], pre: np.ndarray, post: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Advance the traces by one step and return ``dw`` ``[batch, post, pre]`` for weights ``w``."""
        state["x"] = state["x"] * np.exp(-self.dt_ms / self.tau_pre_ms) + pre
        state["y"] = state["y"] * np.exp(-self.dt_ms / self.tau_post_ms) + post
        return oja_dw(w, state["x"], state["y"], self.lr)


def lower(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, "oja")
    lrn = ctx.profile.learning
    imp = float(p["trace_impulse"])
    if not p["lr"] > 0:
        raise ctx.fail(f"oja: lr must be > 0, got {p['lr']!r}")
    s_hebb, s_decay = lrn.product_shift("x1", "y1"), lrn.product_shift("w", "y1", "y1")
    c_hebb = scale_literal(2**s_hebb * p["lr"] / (imp**2 * ctx.weight_lsb), ctx, "oja Hebbian scale")
    c_decay = scale_literal(-(2**s_decay) * p["lr"] / imp**2, ctx, "oja decay scale")
    dw = f"{literal(*c_hebb)}*u0*x1*y1 + {literal(*c_decay)}*u0*w*y1*y1".replace("+ -", "- ")
    rule = EngineRule(
        dw=parse(dw, "dw", lrn),
        traces={
            "x1": Trace(imp, steps(p["tau_pre_ms"], ctx, "oja tau_pre")),
            "y1": Trace(imp, steps(p["tau_post_ms"], ctx, "oja tau_post")),
        },
        rng_seed=ctx.seed,
        source="oja",
    )
    ctx.note(f"oja lowered to dw = {rule.dw}")
    return rule
