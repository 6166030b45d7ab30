"""Reward-modulated STDP: the STDP pairing goes into an eligibility trace (the tag), and a
reward signal turns the eligibility into weight change.

Float rule, per step (STDP traces as in :mod:`neurocomp.rules.stdp`; ``R_j`` the reward
delivered to post neuron ``j`` this step)::

    w_ij <- w_ij + lr_reward * R_j * e_ij                         (the eligibility so far)
    e_ij <- e_ij * (1 - dt/tau_elig) + lr * (a_plus * x_i * post_j - a_minus * y_j * pre_i)

Lowering onto a sum-of-products engine with a graded third factor (Loihi 2; Lava's
``RewardModulatedSTDP`` with the tutorial's R-STDP neuron): the post neuron sends its spike
trace as y1 and the reward as y2 (a graded input ``<projection>/y2``, integers)::

    dt = c_plus * y0 * x1 - c_minus * x0 * y1 - 2^-k * u0 * t
    dw = c_w * u0 * t * y2

``t`` holds the eligibility in weight LSBs. Approximations (noted at compile time): the
eligibility decay ``dt/tau_elig`` becomes a power of two ``2^-k``; ``c_w = 2^s * lr_reward``
(the engine shifts a tag x trace product right by ``s``, the profile's
:meth:`~neurocomp.profiles.LearningEngine.product_shift`: 5 on loihi2) is rounded to
``m * 2**e``; the tag is a 9-bit integer; plus those of STDP.

Lowering onto Loihi 1, whose engine has no graded post traces but a reward trace ``r1`` per
learning rule, fed by reward spikes on the rule's reinforcement channel (NxSDK's
``r1Impulse``, ``r1TimeConstant``, ``learningRule.reinforcementChannel``): ``y1`` is the
engine's own post trace of the post spikes (a two-factor trace, as STDP's), and::

    dw = c_w * u0 * t * r1          r1: impulse 64 per reward spike, tau 0 (this step's reward)

with ``c_w = 2^s * lr_reward / 64`` (``s`` = 5 on loihi1). The reward is the run's input
``<projection>/r0``: a spike (reward 1) or none (0) per step and trial, one channel for the
whole projection, so ``R_j`` is the same for every post neuron and non-negative (a
punishment would need a second rule on other synapses). The float rule with ``R_j = r0`` for
every ``j`` is what the lowering approximates. The trace's 7-bit width and its rounding are
assumed to be those of the other traces (unpublished; with tau 0 and an integer impulse nothing is rounded).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._frozen import thaw
from ..learning.expr import parse
from ..learning.rule import EngineRule, Trace
from .base import LoweringContext, literal, require, scale_literal, steps
from .stdp import StdpFloat

DEFAULTS = {
    "lr": ...,
    "lr_reward": ...,
    "a_plus": 1.0,
    "a_minus": 1.0,
    "tau_plus_ms": 20.0,
    "tau_minus_ms": 20.0,
    "tau_elig_ms": 100.0,
    "trace_impulse": 16.0,
}


@dataclass
class RstdpFloat(StdpFloat):
    """The float rule (state adds the eligibility ``e`` ``[batch, post, pre]``)."""

    lr_reward: float = 1.0
    tau_elig_ms: float = 100.0

    def init(self, batch: int, n_post: int, n_pre: int) -> dict[str, np.ndarray]:
        return {**super().init(batch, n_post, n_pre), "e": np.zeros((batch, n_post, n_pre))}

    def step(self, state: dict[str, np.ndarray], pre: np.ndarray, post: np.ndarray, reward=None) -> np.ndarray:
        """Advance one step; returns ``dw``, which reads the eligibility before this step's
        pairing (as the engine's ``dw`` reads the tag before ``dt`` updates it)."""
        r = np.zeros(post.shape) if reward is None else np.broadcast_to(reward, post.shape)
        dw = self.lr_reward * r[:, :, None] * state["e"]
        pairing = super().step(state, pre, post)
        state["e"] = state["e"] * (1 - self.dt_ms / self.tau_elig_ms) + pairing
        return dw


REWARD_IMPULSE = 64  # r1 per reward spike (Loihi 1): a power of two keeps c_w = lr_reward / 2 exact


def lower(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, "rstdp")
    lrn = ctx.profile.learning
    reward_trace = not lrn.third_factor and "r1" in lrn.variables
    if not lrn.third_factor and not reward_trace:
        raise ctx.fail(
            f"rstdp needs a graded third factor (the reward as y2) or a reward trace (r1); "
            f"{ctx.profile.name} has neither"
        )
    imp = float(p["trace_impulse"])
    c_plus = scale_literal(p["lr"] * p["a_plus"] / (imp * ctx.weight_lsb), ctx, "rstdp potentiation scale")
    c_minus = scale_literal(-p["lr"] * p["a_minus"] / (imp * ctx.weight_lsb), ctx, "rstdp depression scale")
    decay = ctx.dt_ms / p["tau_elig_ms"]
    k = round(-math.log2(decay))
    if not lrn.exponent_min <= -k <= lrn.exponent_max:
        raise ctx.fail(
            f"rstdp: eligibility decay dt/tau_elig = {decay:.3g} per step needs 2^-{k}; "
            f"the engine's exponents are {lrn.exponent_min}..{lrn.exponent_max}"
        )
    if 2.0**-k != decay:
        ctx.note(f"rstdp eligibility decay {decay:.4g} per step rounded to 2^-{k} = {2.0**-k:.4g}")
    dt_terms = [f"{literal(*c_plus)}*y0*x1", f"{literal(*c_minus)}*x0*y1", f"-2^{-k}*u0*t"]
    dt = parse(" + ".join(dt_terms).replace("+ -", "- "), "dt", lrn)
    tau_minus = steps(p["tau_minus_ms"], ctx, "rstdp tau_minus")
    if reward_trace:
        shift = lrn.product_shift("t", "r1")  # loihi1: 9 + 7 + 4 bits, shifted by 5 as t * y2
        what = f"rstdp reward scale ({2**shift} * lr_reward / {REWARD_IMPULSE})"
        c_w = scale_literal(2**shift * p["lr_reward"] / REWARD_IMPULSE, ctx, what)
        rule = EngineRule(
            dt=dt,
            dw=parse(f"{literal(*c_w)}*u0*t*r1", "dw", lrn),
            traces={
                "x1": Trace(imp, steps(p["tau_plus_ms"], ctx, "rstdp tau_plus")),
                "y1": Trace(imp, tau_minus),
                "r1": Trace(REWARD_IMPULSE, 0),
            },
            rng_seed=ctx.seed,
            source="rstdp",
        )
        ctx.note(
            f"rstdp lowered to dt = {rule.dt}; dw = {rule.dw}; the reward is the reward trace r1 of the rule's "
            f"reinforcement channel: spikes as input '{ctx.projection}/r0' (0/1 per step, one channel for the "
            f"projection: the same non-negative reward for every post neuron), impulse {REWARD_IMPULSE}, tau 0"
        )
        return rule
    shift = lrn.product_shift("t", "y2")  # the engine's shift of a tag x trace product (loihi2: 5)
    c_w = scale_literal(2**shift * p["lr_reward"], ctx, f"rstdp reward scale ({2**shift} * lr_reward)")
    rule = EngineRule(
        dt=dt,
        dw=parse(f"{literal(*c_w)}*u0*t*y2", "dw", lrn),
        traces={"x1": Trace(imp, steps(p["tau_plus_ms"], ctx, "rstdp tau_plus"))},
        rng_seed=ctx.seed,
        post_traces="graded",
        graded={
            "y1": {"source": "post_trace", "impulse": imp, "tau": tau_minus},
            "y2": {"source": "input"},
        },
        source="rstdp",
    )
    ctx.note(f"rstdp lowered to dt = {rule.dt}; dw = {rule.dw}; reward as graded input '{ctx.projection}/y2'")
    return rule
