"""An adaptive learning rate from volatility and stochasticity (Piray & Daw, Nat Commun 12:
5887, 2021; ``learning-rules.md`` §2.11), and its use as the gain of a three-factor rule.

A Kalman filter tracks a hidden value ``x`` (a random walk of variance ``v`` per trial, the
volatility) from outcomes ``o = x + noise`` (variance ``u``, the stochasticity); its learning
rate is::

    k = (w + v) / (w + v + u)        m <- m + k (o - m)        w <- u (w + v) / (w + v + u)

* :func:`particle_filter`: the paper's model, the float reference: ``v`` and ``u`` inferred by
  a particle filter (100 particles per run, multiplicative Beta diffusion of their inverses with
  ``lambda_v = lambda_s = 0.1``, a Kalman filter per particle, systematic resampling below half
  the effective particles), ported from the authors' MATLAB (``payampiray/
  stochasticity_volatility_learning``: ``pf_core.m``, ``pf_correct.m``, ``sim_2x2.m``) with
  numpy's random numbers. Off-chip only: 100 particles of Beta-distributed diffusion per unit.
* :class:`Vkf`: the deterministic volatile Kalman filter (Piray & Daw 2020,
  ``payampiray/VKF/vkf.m``, eqs. 9-13), stochasticity ``sigma2`` known, volatility learned::

      k = (w + v) / (w + v + sigma2);  m <- m + k d;  w <- (1 - k)(w + v)
      v <- v + lambda ((m - m_pre)^2 + w + w_pre - 2 (1 - k) w_pre - v)

  :class:`VkfFixed` is the same filter as a neuron's microcode would run it: ``w``, ``v``,
  ``sigma2`` and the error in integers with ``FRAC`` fraction bits, the gain from a 128-entry
  reciprocal table of the divisor normalized to 8 bits (the softmax cross-entropy error units'
  division, :func:`neurocomp.learning.quantities.lut_divide`, one table machinery for both),
  every product rounded.
* :class:`RewardGain`: the VKF as the adaptive gain of a reward rule's broadcast third factor
  (node perturbation's ``dR``, ``volatile-perceptron``), computed by the unit that sends it from
  each trial's reward; float64, float32 or the unit's integers (:class:`VkfFixed`).

As a learning rule (``vkf``): the weight ``m`` of a synapse from an always-on input predicts a
reward; the post neuron keeps ``w`` and ``v``, computes ``k`` and sends the gain-scaled error
``k (R - m)`` as the graded third factor ``y3``; on a sum-of-products engine with graded
third factors (Loihi 2) ``dw = c u0 x1 y3`` (``x1`` the input's payload, the x1 trace's largest
value for an always-on rate, 127 on loihi2; ``c = 8 lsb_y3 / (127 lsb_w)`` rounded to ``m 2^e``, noted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._frozen import thaw
from ..learning.expr import parse
from ..learning.quantities import lut_divide, recip_lut
from ..learning.rule import EngineRule
from .base import LoweringContext, literal, require, scale_literal

PF_DEFAULTS = {"nparticles": 100, "x0_unc": 100.0, "lambda_v": 0.1, "lambda_s": 0.1, "v0": 1.0, "s0": 2.0}
DEFAULTS = {"lambda": 0.1, "v0": 1.0, "sigma2": 1.0, "error_max": 8.0}  # error_max: the largest |k d| y3 holds
REFUSALS = {
    "no_third_factor": "the VKF gain is sent as a graded third factor (y3 = k d), which this engine lacks",
    "programmable": (
        "the VKF gain runs on programmable cores as stated (the filter and the prediction in float32) in `neurocomp "
        "check` on the volatile-reward task; the emulator has no programmable-core learner of it in this release"
    ),
    "eprop_fixed": "a fixed-function e-prop learner has no reward input",
}
FRAC = 10  # fraction bits of the neuron's VKF registers
K_ONE = 2**15  # the gain in Q15
RECIP_LUT = recip_lut(K_ONE)  # the error units' reciprocal table, for k in Q15


# -- the particle filter (float reference) ----------------------------------------------------


def random_walk(rng: np.random.Generator, n: int, runs: int, vol: float, stc: float) -> tuple[np.ndarray, np.ndarray]:
    """``(outcomes, hidden)`` ``[n, runs]``: ``x_1 = 0``, ``x_t = x_{t-1} + sqrt(vol) N(0,1)``,
    ``o_t = x_t + sqrt(stc) N(0,1)`` (``sim_2x2.m``'s ``timeseries``)."""
    x = np.zeros((n, runs))
    x[1:] = np.cumsum(np.sqrt(vol) * rng.standard_normal((n - 1, runs)), axis=0)
    return x + np.sqrt(stc) * rng.standard_normal((n, runs)), x


def particle_filter(outcomes: np.ndarray, rng: np.random.Generator, **params: Any) -> dict[str, np.ndarray]:
    """The paper's particle filter over ``outcomes`` ``[n, runs]`` (each run its own filter);
    returns the estimated volatility, stochasticity, learning rate and prediction ``[n, runs]``.
    ``params``: :data:`PF_DEFAULTS`."""
    p = {**PF_DEFAULTS, **params}
    n, runs = outcomes.shape
    P = int(p["nparticles"])
    z = np.full((runs, P), 1.0 / p["v0"])  # particles of 1/v and 1/u (the prior is a point)
    y = np.full((runs, P), 1.0 / p["s0"])
    wt = np.full((runs, P), 1.0 / P)
    m, w = np.zeros((runs, P)), np.full((runs, P), float(p["x0_unc"]))
    out = {k: np.empty((n, runs)) for k in ("vol", "stc", "lr", "val")}
    tiny = np.finfo(float).eps
    for t in range(n):
        for arr, lam in ((z, p["lambda_v"]), (y, p["lambda_s"])):  # multiplicative Beta diffusion
            eta = 1 - lam
            nu = 0.5 / (1 - eta)
            arr *= (rng.beta(eta * nu, (1 - eta) * nu, arr.shape) + tiny) / eta
        out["vol"][t] = 1.0 / np.sum(wt * z, axis=1)
        out["stc"][t] = 1.0 / np.sum(wt * y, axis=1)
        v, u, o = 1.0 / z, 1.0 / y, outcomes[t][:, None]
        s2 = w + v + u
        lik = np.exp(-0.5 * (o - m) ** 2 / s2) / np.sqrt(2 * np.pi * s2) + tiny
        wt = wt * lik
        wt /= wt.sum(axis=1, keepdims=True)
        low = 1.0 / np.sum(wt**2, axis=1) < 0.5 * P
        if low.any():  # systematic resampling of the runs whose effective particles fell below P/2
            idx = _systematic(wt[low], rng)
            rows = np.nonzero(low)[0][:, None]
            z[low], y[low], m[low], w[low] = z[rows, idx], y[rows, idx], m[rows, idx], w[rows, idx]
            v[low], u[low] = v[rows, idx], u[rows, idx]
            wt[low] = 1.0 / P
        k = (w + v) / (w + v + u)
        m = m + k * (o - m)
        w = u / (w + v + u) * (w + v)
        out["val"][t], out["lr"][t] = np.sum(wt * m, axis=1), np.sum(wt * k, axis=1)
    return out


def _systematic(wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Systematic resampling per row: the particle index at ``u0 + i / P`` of the cumulative
    weights (``u0 ~ U[0, 1/P)``, one per row)."""
    rows, P = wt.shape
    edges = np.minimum(np.cumsum(wt, axis=1), 1.0)
    edges[:, -1] = 1.0
    pos = rng.random((rows, 1)) / P + np.arange(P) / P
    off = np.arange(rows)[:, None] * 2.0  # rows apart, so one searchsorted serves them all
    idx = np.searchsorted((edges + off).ravel(), (pos + off).ravel(), side="right").reshape(rows, P)
    return np.minimum(idx - np.arange(rows)[:, None] * P, P - 1)


# -- the deterministic VKF --------------------------------------------------------------------


class Vkf:
    """The volatile Kalman filter (float64), ``shape`` independent filters. :meth:`gain`
    gives ``k`` for the current state; :meth:`update` takes the error ``d = o - m`` the
    prediction made and the step ``k d`` the prediction took. ``dtype``: float64, or float32 (a
    programmable core's arithmetic)."""

    def __init__(self, shape, *, lam: float = 0.1, v0: float = 1.0, sigma2: float = 1.0, dtype=np.float64):
        f = np.dtype(dtype).type
        self.lam, self.sigma2 = f(lam), f(sigma2)
        self.w = np.full(shape, sigma2, dtype)  # w0 = sigma2, as vkf.m
        self.v = np.full(shape, v0, dtype)

    def gain(self) -> np.ndarray:
        return (self.w + self.v) / (self.w + self.v + self.sigma2)

    def update(self, k: np.ndarray, step: np.ndarray) -> None:
        wpre = self.w
        self.w = (1 - k) * (self.w + self.v)
        self.v = self.v + self.lam * (step**2 + self.w + wpre - 2 * (1 - k) * wpre - self.v)


def _rshift_round(x: np.ndarray, s) -> np.ndarray:
    """``x / 2**s`` rounded to nearest (halves up), in integers."""
    return (x + (np.int64(1) << (np.asarray(s) - 1))) >> s


class VkfFixed(Vkf):
    """:class:`Vkf` in a neuron's integers: ``w``, ``v``, ``sigma2`` and the step with ``FRAC``
    fraction bits (the step's square needs ``2 (FRAC + 5)`` = 30 bits for steps below 32: 32-bit
    microcode arithmetic; int64 here), ``k`` in Q15 divided as the softmax cross-entropy error
    units divide (:func:`~neurocomp.learning.quantities.lut_divide` with :data:`RECIP_LUT`:
    ``(w+v) / (w+v+sigma2)`` with the divisor truncated to an 8-bit mantissa, ``k`` at most
    0.8% high), ``lambda`` in Q15; products rounded to nearest."""

    def __init__(self, shape, *, lam: float = 0.1, v0: float = 1.0, sigma2: float = 1.0):
        one = 2**FRAC
        self.lam_q, self.sigma2_q = round(lam * K_ONE), round(sigma2 * one)
        self.w = np.full(shape, self.sigma2_q, np.int64)
        self.v = np.full(shape, round(v0 * one), np.int64)

    def gain(self) -> np.ndarray:
        """``k`` as a float (``k_q / 2^15``)."""
        return self.gain_q() / K_ONE

    def gain_q(self) -> np.ndarray:
        s = self.w + self.v
        return np.minimum(lut_divide(s, s + self.sigma2_q, RECIP_LUT), K_ONE)

    def update(self, k: np.ndarray, step: np.ndarray) -> None:
        """``k``: the gain used (float, ``k_q / 2^15``); ``step``: ``k d`` in model units."""
        kq = np.round(np.asarray(k) * K_ONE).astype(np.int64)
        st = np.round(np.asarray(step) * 2**FRAC).astype(np.int64)
        wpre = self.w
        self.w = _rshift_round((K_ONE - kq) * (self.w + self.v), 15)
        wcov = _rshift_round((K_ONE - kq) * wpre, 15)
        dv = _rshift_round(st * st, FRAC) + self.w + wpre - 2 * wcov - self.v
        self.v = np.maximum(self.v + _rshift_round(self.lam_q * dv, 15), 1)  # v stays a variance


# -- the adaptive gain of a reward rule's third factor ------------------------------------------


class RewardGain:
    """The VKF as the adaptive gain of a reward rule's broadcast third factor, in the unit that
    computes that factor (the reward/error unit): each trial it observes the reward ``R`` its
    network earned, tracks it (``m <- m + k (R - m)``, the VKF's own prediction), and returns
    the filter's learning rate ``k`` after that update, by which the unit multiplies the factor
    it broadcasts (node perturbation: ``y3 = k dR``). A change of the task makes the reward jump,
    the filter's volatility rises and ``k`` nears 1 (learn at the rule's full rate); while the
    reward only fluctuates (``sigma2``, its known per-trial variance) ``k`` falls (learn slowly,
    averaging the rule's noise out).

    ``shape``: one filter per network; ``lam``, ``v0``, ``sigma2``: :class:`Vkf`'s (reward
    units). ``fixed``: the unit's integers (:class:`VkfFixed`, ``m`` and ``R`` with ``FRAC``
    fraction bits, ``k`` in Q15 from the shared reciprocal table), else float64 (or ``dtype``)."""

    def __init__(self, shape, *, lam: float, v0: float, sigma2: float, fixed: bool = False, dtype=np.float64):
        self.fixed = bool(fixed)
        if self.fixed:
            self.filter: Vkf = VkfFixed(shape, lam=lam, v0=v0, sigma2=sigma2)
            self.m = np.zeros(shape, np.int64)
        else:
            self.filter = Vkf(shape, lam=lam, v0=v0, sigma2=sigma2, dtype=dtype)
            self.m = np.zeros(shape, dtype)

    def observe(self, reward: np.ndarray) -> np.ndarray:
        """Track this trial's ``reward`` and return the gain ``k`` (float; ``k_q / 2^15`` exactly
        where fixed) for this trial's third factor."""
        if not self.fixed:
            r = np.asarray(reward, self.m.dtype)
            k = self.filter.gain()
            step = k * (r - self.m)
            self.m = self.m + step
            self.filter.update(k, step)
            return self.filter.gain()
        f = self.filter
        rq = np.round(np.asarray(reward, np.float64) * 2**FRAC).astype(np.int64)
        kq = f.gain_q()
        step = _rshift_round(kq * (rq - self.m), 15)
        self.m = self.m + step
        f.update(kq / K_ONE, step / 2**FRAC)  # both exact: update re-derives the same integers
        return f.gain_q() / K_ONE


# -- the rule on a chip ------------------------------------------------------------------------


def rate_max(engine) -> int:
    """The always-on input's payload: the largest value of the x1 trace (``2**trace_bits - 1``)."""
    return 2 ** int(engine.params["trace_bits"]) - 1


def lower_vkf(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, "vkf")
    lrn = ctx.profile.learning
    if not lrn.third_factor:
        raise ctx.fail(REFUSALS["no_third_factor"])
    if not 0 < p["lambda"] < 1 or p["v0"] <= 0 or p["sigma2"] <= 0 or p["error_max"] <= 0:
        raise ctx.fail(f"vkf: need 0 < lambda < 1 and v0, sigma2, error_max > 0, got {p}")
    lsb_y3 = y3_lsb(p, ctx)
    x1 = rate_max(lrn)
    g = 2 ** lrn.product_shift("x1", "y3")  # the low bits the engine drops from x1 * y3 (loihi2: 8)
    c = scale_literal(g * lsb_y3 / (x1 * ctx.weight_lsb), ctx, f"vkf scale ({g} lsb_y3 / ({x1} lsb_w))")
    rule = EngineRule(
        dw=parse(f"{literal(*c)}*u0*x1*y3", "dw", lrn),
        t_epoch=1,
        rng_seed=ctx.seed,
        post_traces="graded",
        graded={"y3": {"source": "input"}},
        pre_graded={"x1": {"source": "pre", "offset": 0}},
        source="vkf",
    )
    ctx.note(f"vkf lowered to dw = {rule.dw}; input '{ctx.projection}/y3' (k d, {lsb_y3:.3g} per LSB)")
    return rule


def y3_lsb(p: Mapping[str, Any], ctx: LoweringContext) -> float:
    yb = int(ctx.profile.learning.params["factor_widths"]["y3"])
    return float(2.0 ** np.ceil(np.log2(p["error_max"] / (2**yb - 1))))


class VkfOnEngine:
    """The ``vkf`` rule for ``runs`` independent predictors: the post neuron's filter
    (:class:`VkfFixed` where the engine's graded values are fixed, :class:`Vkf` where float),
    the gain-scaled error ``y3 = k d`` rounded to its grid, and the weight ``m`` on the engine
    (``dw = c u0 x1 y3``, an always-on input of the x1 trace's largest payload). ``weight_max``: the largest
    ``|m|`` (fixes ``lsb_w``). ``fixed_rate``: a fixed ``k`` instead of the filter's (the
    baseline the gain must beat)."""

    def __init__(self, profile, runs: int, params: Mapping[str, Any], *, weight_max: float, seed: int = 0,
                 arithmetic: str = "fixed", float_quantities: Iterable[str] = (), rounding: str | None = None,
                 fixed_rate: float | None = None):  # fmt: skip
        from ..learning.engine import SumOfProductsEngine

        wb = int(profile.learning.synaptic_variable_bits["w"]) - 1
        lsb = float(2.0 ** np.ceil(np.log2(weight_max / (2**wb - 1))))
        ctx = LoweringContext("predictor", profile, 1.0, lsb, seed=seed)
        p = require(thaw(params), DEFAULTS, ctx, "vkf")
        self.rule, self.notes, self.weight_lsb = lower_vkf(p, ctx), ctx.notes, lsb
        self.lsb_y3, self.fixed_rate = y3_lsb(p, ctx), fixed_rate
        self.engine = SumOfProductsEngine(self.rule, np.zeros((1, 1), np.int64), engine=profile.learning, batch=runs,
                                          arithmetic=arithmetic, float_quantities=float_quantities,
                                          rounding=rounding)  # fmt: skip
        self.fixed = self.engine.var_fixed["y3"]
        kind = VkfFixed if self.fixed else Vkf
        self.filter = kind((runs,), lam=p["lambda"], v0=p["v0"], sigma2=p["sigma2"])
        self.top = 2 ** int(profile.learning.params["factor_widths"]["y3"])
        self.step = 0

    @property
    def prediction(self) -> np.ndarray:
        return self.engine.weights[:, 0, 0] * self.weight_lsb

    def trial(self, reward: np.ndarray) -> np.ndarray:
        """Predict, then learn from ``reward`` ``[runs]``; returns the prediction made."""
        m = self.prediction
        k = np.full(m.shape, self.fixed_rate) if self.fixed_rate is not None else self.filter.gain()
        y3 = k * (reward - m) / self.lsb_y3
        if self.fixed:
            y3 = np.clip(np.floor(y3 + 0.5), -self.top, self.top - 1)
        self.step += 1
        runs = m.shape[0]
        pre = np.full((runs, 1), rate_max(self.engine.engine))
        self.engine.spikes(self.step, np.zeros((runs, 1), bool), np.zeros((runs, 1), bool), {"y3": y3[:, None]},
                           pre_values=pre)  # fmt: skip
        self.engine.learn(self.step)
        self.filter.update(k, y3 * self.lsb_y3)
        return m


class VkfPredictor:
    """The rule as stated: ``m <- m + k (R - m)`` with the VKF's ``k`` (or a fixed rate), in
    ``dtype`` (float64; float32 is a programmable core's arithmetic: rewards rounded to it)."""

    def __init__(self, runs: int, params: Mapping[str, Any] | None = None, fixed_rate: float | None = None,
                 dtype=np.float64):  # fmt: skip
        p = {**DEFAULTS, **(params or {})}
        self.dtype = np.dtype(dtype)
        self.filter = Vkf((runs,), lam=p["lambda"], v0=p["v0"], sigma2=p["sigma2"], dtype=self.dtype)
        self.m, self.fixed_rate = np.zeros(runs, self.dtype), fixed_rate

    @property
    def prediction(self) -> np.ndarray:
        return self.m

    def trial(self, reward: np.ndarray) -> np.ndarray:
        m = self.m.copy()
        k = np.full(m.shape, self.fixed_rate, self.dtype) if self.fixed_rate is not None else self.filter.gain()
        step = k * (np.asarray(reward, self.dtype) - m)
        self.m = m + step
        self.filter.update(k, step)
        return m


__all__ = [
    "DEFAULTS", "PF_DEFAULTS", "REFUSALS", "RewardGain", "Vkf", "VkfFixed", "VkfOnEngine",
    "VkfPredictor", "lower_vkf", "particle_filter", "random_walk",
]  # fmt: skip
