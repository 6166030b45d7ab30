"""Presynaptic-dependent scaling (PSD; Buonomano, J Neurophysiol 94:2275, 2005) and plain
synaptic scaling (SS, the control): homeostatic rules applied after each trial ``n``
(``learning-rules.md`` §2.4)::

    A_i <- A_i + (A_i^n - A_i) / tau_A                     (A_i^n: spikes of cell i in trial n)
    PSD:  W_ij <- W_ij + lr * A_j * (A_goal - A_i)         bounded to [0, w_max]
    SS:   W_ij <- W_ij * (1 + lr * (A_goal - A_i))

Source: the paper's full text could not be read; these forms are the reference's
reconstruction from Liu & Buonomano 2009 and Liu 2011 (abstracts: SS "diagonal and linear in
activity", PSD "nondiagonal and nonlinear"), with ``A_goal`` about one spike per trial. PSD
scales a synapse by its presynaptic cell's activity: a silent cell's outputs do not grow, so
activity spreads from the active cells outward, one cell at a time.

Lowering onto a sum-of-products engine (Loihi 1 and 2; a two-factor rule: no third factor).
The running averages are kept, exactly, in the two tags of each synapse: ``t`` counts the
pre cell's spikes (``I`` LSBs each, the dependency ``x0``), ``d`` the post cell's (``y0``),
and once per trial, after ``dw`` has read them, both decay by ``1/tau_A``. The value ``dw``
reads at the end of trial ``n`` is then ``u_n = (1 - 1/tau_A) u_(n-1) + I A^n = s A_n`` with
``s = tau_A I``: the float rule's average, in integers. The update runs once per trial: the
epoch is ``steps / 2^k`` (the shortest the epoch register and ``u0``..``u9`` allow: see
:func:`epoch`) and the dependency ``u_k`` is 1 once every ``2^k`` epochs, at the trial's end::

    dt = I * x0 - (1/tau_A) * u_k * t              dd = I * y0 - (1/tau_A) * u_k * d
    PSD:  dw = -c * u_k * t * (d - C)        c = 2^7 lr / (s^2 lsb_w)   (t * d is shifted by 7 on loihi2)
    SS:   dw = -c * u_k * w * (d - C)        c = 2^7 lr / s             (w * d is shifted by 7; the
                                             profile's product_shift)

with ``C = s A_goal`` (an integer: ``s`` and ``A_goal`` are chosen so; noted if rounded) and
``c``, ``1/tau_A`` rounded to ``m 2^e`` (noted; exact for ``tau_A`` a power of two). The
bounds are the weights' own: an excitatory sign mode keeps ``w >= 0`` and the 8-bit
magnitude holds ``w_max`` at ``lsb_w = w_max / 255``. The tags saturate at 255 (``A`` at
``255 / s`` spikes per trial), and a dependency counts the epochs with a spike, so two
spikes of a cell within one epoch count once. A first lowering kept the averages in the
traces ``x1``, ``y1`` (decaying within the trial): a cell's single spike then counted from
0.82 to 1 of a spike by its latency, the rule lost its fixed point at one spike, and on
loihi2 the network never settled (measured: 45 % recruited, bursts of 7 spikes). Reckon's
fixed-function e-prop learner has no homeostatic rule, xylo no learning; programmable
cores run the float rule as stated, in float32 (``neurocomp check``; no emulator learner of it
for a compiled network in this release).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._frozen import thaw
from ..learning.expr import parse
from ..learning.rule import EngineRule
from .base import LoweringContext, literal, require, scale_literal

KINDS = ("psd", "ss")

DEFAULTS = {
    "lr": ...,  # alpha_W
    "a_goal": 1.0,  # target spikes per cell per trial
    "tau_a": 4.0,  # trials, the activity average's time constant (a power of two: the lowered decay is exact)
    "w_max": ...,  # the weights' upper bound (model units)
    "trial_steps": ...,  # steps per trial (the lowering updates once per trial)
    "tag_impulse": 16,  # tag LSBs per spike (lowering: the tags count spikes)
}

REFUSALS = {
    "programmable": (
        "presynaptic-dependent and synaptic scaling run on programmable cores as stated (a per-trial update from "
        "spike counts), in float32, in `neurocomp check` on the psd-timing task; the emulator has no "
        "programmable-core learner of them in this release"
    ),
    "eprop_fixed": "a fixed-function e-prop learner has no homeostatic (activity-average) rule",
}


class Homeostasis:
    """The float rule (module docstring) on weights ``[post, pre]`` of connections ``mask``.

    ``kind``: ``"psd"`` or ``"ss"``; ``lr``, ``a_goal``, ``tau_a``, ``w_max`` as there. The
    activity averages start at 0 (a silent network). ``dtype``: float64, or float32 (a
    programmable core's arithmetic: averages and weights in float32)."""

    def __init__(self, kind: str, mask: np.ndarray, *, lr: float, w_max: float, a_goal: float = 1.0,
                 tau_a: float = 4.0, dtype=np.float64):  # fmt: skip
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not (lr > 0 and w_max > 0 and a_goal > 0 and tau_a >= 1):
            raise ValueError(f"need lr, w_max, a_goal > 0 and tau_a >= 1, got {lr}, {w_max}, {a_goal}, {tau_a}")
        f = np.dtype(dtype).type
        self.kind, self.mask, self.dtype = kind, mask, np.dtype(dtype)
        self.lr, self.w_max, self.a_goal, self.tau_a = f(lr), f(w_max), f(a_goal), f(tau_a)
        self.abar = np.zeros(mask.shape[0], dtype)

    def update(self, W: np.ndarray, spikes: np.ndarray) -> np.ndarray:
        """The weights after a trial whose spikes were ``spikes`` ``[steps, n]``."""
        W = np.asarray(W, self.dtype)
        self.abar = self.abar + (spikes.sum(axis=0).astype(self.dtype) - self.abar) / self.tau_a
        err = self.a_goal - self.abar
        if self.kind == "psd":
            W = W + self.lr * np.outer(err, self.abar)
        else:
            W = W * (1 + self.lr * err)[:, None]
        return np.clip(W, 0, self.w_max) * self.mask


# -- the lowering ------------------------------------------------------------------------------


def epoch(trial_steps: int, ctx: LoweringContext) -> tuple[int, int]:
    """``(t_epoch, k)`` with ``t_epoch * 2^k = trial_steps``, ``t_epoch`` within the epoch
    register and ``k`` one digit (``u0``..``u9``), the shortest such epoch: a dependency (``x0``,
    ``y0``) flags an epoch with a spike, so two spikes of a cell count as one only within one
    short epoch."""
    top = 2 ** int(ctx.profile.learning.epoch_bits) - 1
    fits = [k for k in range(10) if trial_steps % 2**k == 0 and trial_steps // 2**k <= top]
    if not fits:
        raise ctx.fail(f"trial_steps = {trial_steps} is not an epoch of at most {top} steps times a power of two "
                       "(at most 2^9): the once-per-trial update cannot be timed")  # fmt: skip
    return trial_steps // 2 ** max(fits), max(fits)


def lower(kind: str, params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, kind)
    for k in ("lr", "a_goal", "w_max", "tag_impulse"):
        if not p[k] > 0:
            raise ctx.fail(f"{kind}: parameter {k!r} must be > 0, got {p[k]!r}")
    if not p["tau_a"] > 1:
        raise ctx.fail(f"{kind}: parameter 'tau_a' must be > 1 trial, got {p['tau_a']!r}")
    steps = int(p["trial_steps"])
    t_epoch, k = epoch(steps, ctx)
    imp = int(p["tag_impulse"])
    s = p["tau_a"] * imp
    goal = round(s * p["a_goal"])
    if goal != s * p["a_goal"]:
        ctx.note(f"{kind}: a_goal's count {s * p['a_goal']:.4g} rounded to {goal}")
    top = 2 ** (int(ctx.profile.learning.synaptic_variable_bits["t"]) - 1) - 1
    if not imp == p["tag_impulse"] or goal >= top:
        raise ctx.fail(f"{kind}: tag_impulse must be an integer and tau_a * tag_impulse * a_goal (the goal's count, "
                       f"{s * p['a_goal']:.4g}) below the tag's {top}")  # fmt: skip
    decay = scale_literal(1 / p["tau_a"], ctx, f"{kind} average's decay (1 / tau_a)")
    lrn = ctx.profile.learning
    if kind == "psd":
        g = 2 ** lrn.product_shift("t", "d")  # the low bits the engine drops from t * d (loihi2: 128)
        c = scale_literal(-g * p["lr"] / (s * s * ctx.weight_lsb), ctx, f"psd scale ({g} lr / (s^2 lsb_w))")
        dw = f"{literal(*c)}*u{k}*t*(d - {goal})"
    else:
        g = 2 ** lrn.product_shift("w", "d")
        c = scale_literal(-g * p["lr"] / s, ctx, f"ss scale ({g} lr / s)")
        dw = f"{literal(*c)}*u{k}*w*(d - {goal})"
    rule = EngineRule(
        dw=parse(dw, "dw", lrn),
        dt=parse(f"{imp}*x0 - {literal(*decay)}*u{k}*t", "dt", lrn),
        dd=parse(f"{imp}*y0 - {literal(*decay)}*u{k}*d", "dd", lrn),
        t_epoch=t_epoch,
        rng_seed=ctx.seed,
        source=kind,
    )
    ctx.note(
        f"{kind} lowered to dw = {rule.dw}; dt = {rule.dt}; dd = {rule.dd}; t_epoch = {t_epoch} (u{k}: once per "
        f"{steps}-step trial); activity averages in the tags ({s:g} LSBs per spike per trial, saturating at "
        f"{top / s:.2f}; two spikes of a cell in one {t_epoch}-step epoch count once); bounds: the weights' range, up "
        f"to {(2 ** (int(lrn.synaptic_variable_bits['w']) - 1) - 1) * ctx.weight_lsb:.4g} with an excitatory sign "
        f"mode (w_max {p['w_max']:g})"
    )
    return rule


def lower_psd(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    return lower("psd", params, ctx)


def lower_ss(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    return lower("ss", params, ctx)


class HomeostasisOnEngine:
    """The lowered rule on a sum-of-products engine for one plastic projection ``mask``
    ``[post, pre]`` whose pre and post cells are the same population (E->E): the engine sees
    the trial's spikes step by step and updates its weights once per trial; the weights it
    holds (``w * lsb_w``, ``lsb_w = w_max / 255``) drive the next trial.
    ``arithmetic``/``float_quantities``/``rounding`` as :class:`SumOfProductsEngine`."""

    def __init__(self, kind: str, profile, mask: np.ndarray, params: Mapping[str, Any], *, seed: int = 0,
                 arithmetic: str = "fixed", float_quantities: Iterable[str] = (),
                 rounding: str | None = None):  # fmt: skip
        from ..learning.engine import SumOfProductsEngine

        p = dict(params)
        wb = int(profile.learning.synaptic_variable_bits["w"]) - 1
        self.weight_lsb = float(p["w_max"]) / (2**wb - 1)
        ctx = LoweringContext("e_to_e", profile, 1.0, self.weight_lsb, seed=seed)
        self.rule = lower(kind, p, ctx)
        self.notes, self.mask = ctx.notes, mask
        self.engine = SumOfProductsEngine(self.rule, np.zeros(mask.shape, np.int64), engine=profile.learning,
                                          arithmetic=arithmetic, mask=mask, sign_mode="excitatory",
                                          float_quantities=float_quantities, rounding=rounding)  # fmt: skip
        self.step = 0

    def set_weights(self, W: np.ndarray) -> None:
        w = W / self.weight_lsb
        if self.engine.var_fixed["w"]:
            w = np.floor(w + 0.5)
        self.engine.set_state({"w": (w * self.mask)[None]}, None)

    @property
    def W(self) -> np.ndarray:
        return self.engine.weights[0] * self.weight_lsb

    def update(self, W: np.ndarray, spikes: np.ndarray) -> np.ndarray:
        """Feed a trial's spikes ``[steps, n]`` (the engine learns at its epochs); the weights after.
        ``W`` is not read (the engine holds the weights): the signature is :class:`Homeostasis`'s."""
        for s in spikes:
            self.step += 1
            self.engine.spikes(self.step, s[None], s[None])
            if self.step % self.rule.t_epoch == 0:
                self.engine.learn(self.step)
        return self.W


__all__ = ["DEFAULTS", "KINDS", "REFUSALS", "Homeostasis", "HomeostasisOnEngine", "lower", "lower_psd", "lower_ss"]
