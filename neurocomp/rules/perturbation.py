"""Weight perturbation (WP) and node perturbation (NP): reward-based learning of a linear
readout ``y(t) = W r(t)`` (Züge, Klos & Memmesheimer, PRX 13, 021006, 2023; the rules as in
the authors' exemplary code, ``learning-rules.md`` §2.5).

Each trial runs perturbed, and (``baseline="paired"``) unperturbed; the reward is ``R =
-(1/2T) sum_t ||y*(t) - y(t)||^2`` and ``dR = R - b`` (:mod:`neurocomp.rules.reward`: ``b`` the
unperturbed run's reward, or a running average)::

    WP: xi_ij ~ N(0, sigma^2) per weight and trial;   y = (W + xi) r;   dW = lr dR xi / sigma^2
    NP: xi_i(t) ~ N(0, sigma^2) per output and bin;   y = W r + xi;    dW = lr dR e / sigma^2,
        e_ij = sum_t xi_i(t) r_j(t)

:class:`Perceptron` is that float form (float64; float32 is the arithmetic of programmable
cores, where both rules run as stated). :class:`NpOnEngine` is NP as a sum-of-products
engine runs it (:func:`lower_np`), driven through :class:`~neurocomp.learning.engine.SumOfProductsEngine`
in its fixed (the chip) or float arithmetic.

Lowering NP onto a sum-of-products engine with graded third factors (Loihi 2), every step
(``t_epoch = 1``)::

    dt = c_e * u0 * (x1 - 64) * y2 - u0 * t * y1         (x1 - 64: r_j, the pre payload;
    dw = c_w * u0 * t * y3                                 y2: xi_i, the neuron's perturbation)

The tag accumulates the eligibility ``e_ij`` over the trial. After the trial one more step
brings the reward: ``y3 = dR`` broadcast to every post neuron, and ``y1 = 32``, which clears
the tag (``t * y1`` is shifted by 5, so the term is ``-t`` exactly) while ``dw`` reads it
(every target sees the tag before this step's update). Scales: the pre payload's unit
``input_lsb`` (1: a spike; a graded rate in a 7-bit payload with offset 64), ``y2``'s LSB the
power of two that holds ``4 sigma`` in 7 bits plus sign, the tag's LSB the one that holds
``elig_max`` in its 9 bits; ``c_e = 8 input_lsb lsb_xi / lsb_t`` (``x1 * y2`` is shifted by 3)
is then a power of two.

The reward product keeps all its bits. The engine floors ``c_w * t * y3`` after a 5-bit
width shift (9-bit tag, 7-bit factor, 4-bit mantissa over a 15-bit accumulator), and a floor
moves every active weight down by half the product's LSB on every reward step: a drift the
size of the gradient late in learning (it cost NP on loihi2 24 % more trials to ``E < 4.5``).
So ``c_w = 4 * 2^e`` (the mantissa supplies 2 of the 5 bits) and the reward is sent in steps
of 8 (``y3 = 8 k``, ``k`` in [-16, 15]: the other 3), which makes ``4 t y3 / 32 = t k`` exact.
``k``'s unit is not a power of two: it is set so that ``c_w = 32 lr lsb_R lsb_t / (sigma^2
lsb_w)`` (``lsb_R = lsb_k / 8``) equals ``4 * 2^e`` exactly with the smallest ``e`` whose ``k``
still holds ``reward_max``, so the learning rate is not rounded either (the reward unit
scales ``dR`` by any constant). The perturbation the neuron adds is the 8-bit ``y2`` it sends,
so the forward pass and the eligibility see the same ``xi``.

WP cannot lower onto a sum-of-products engine: it needs a fresh random number per synapse
per trial, and the engine has random streams per trace and one per epoch, none per synapse
(:data:`REFUSALS`). The scheme of ``learning-rules.md`` §2.5 (the host writes ``xi`` into the
tag, ``dw = +t`` before the perturbed run and ``dw = -t + c dR t`` after) costs ``2 M N`` host
writes per trial. On programmable cores (SpiNNaker 2) both rules run as stated, in float32.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._frozen import thaw
from ..learning.expr import parse
from ..learning.rule import EngineRule
from .base import LoweringContext, literal, require, scale_literal, tag_clear
from .reward import RewardBaseline

KINDS = ("wp", "np")

DEFAULTS = {
    "lr": ...,
    "sigma": ...,  # the perturbation's standard deviation (per weight for WP, per output and bin for NP)
    "baseline": "paired",  # or "running" (rules.reward)
    "tau_baseline": 10.0,  # trials, for a running baseline
    "input_lsb": 1.0,  # model units of one unit of the pre payload (NP lowering; 1: a spike)
    "elig_max": 8.0,  # the largest |e_ij| the tag must hold (NP lowering; model units)
    "reward_max": 0.0625,  # the largest |dR| the graded y3 must hold (NP lowering)
}

REFUSALS = {
    ("wp", "sum_of_products"): (
        "weight perturbation needs a fresh random number per synapse per trial (xi_ij), and the "
        "sum-of-products engine has no per-synapse random number generator (its random streams are per "
        "trace and one per epoch); writing xi from the host into the tag would cost 2*M*N writes per trial"
    ),
    ("np", "sum_of_products", "no_third_factor"): (
        "node perturbation needs graded third factors (the perturbation xi_i(t) as y2 and the reward dR as "
        "y3), which this engine lacks (its only reward input is a non-negative reward trace r1)"
    ),
}

PROGRAMMABLE = (
    "weight and node perturbation run on programmable cores as stated, in float32, in `neurocomp check` on the "
    "perturbation-perceptron task (a rate readout); the emulator has no programmable-core learner of them for a "
    "spiking network in this release"
)
FIXED_FUNCTION = "a fixed-function e-prop learner has no reward input and no perturbation source"


def pre_offset(lrn) -> int:
    """The graded x1 payload's offset: half the unsigned trace's range (loihi2's 7 bits: 64,
    ``r`` in [-64, 63] payload units)."""
    return 2 ** (int(lrn.params["trace_bits"]) - 1)


def _pow2_at_least(x: float) -> float:
    return 2.0 ** math.ceil(math.log2(x))


# -- the float form ---------------------------------------------------------------------------


def reward(y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``R = -(1/2T) sum_{i,t} (y*_i(t) - y_i(t))^2`` per network (``[B, M, T]`` -> ``[B]``)."""
    d = target - y
    return -0.5 * np.einsum("bmt,bmt->b", d, d) / y.shape[2]


class Perceptron:
    """``batch`` independent linear readouts ``W`` ``[B, M, N]`` learning by WP or NP.

    ``kind``: ``"wp"`` or ``"np"``; ``lr``, ``sigma``: as in the module docstring;
    ``baseline``: a :class:`RewardBaseline`; ``dtype``: float64 (the rule as stated) or
    float32 (a programmable core's arithmetic: weights, perturbations and rewards in float32).
    ``seed``: the perturbations' random stream. ``gain``: an adaptive gain of the third factor
    (:class:`neurocomp.rules.volatility.RewardGain`, fed the unperturbed reward each trial: ``dW
    = lr k dR ...``), or None (``k = 1``)."""

    def __init__(self, kind: str, n_out: int, n_in: int, *, lr: float, sigma: float, batch: int = 1,
                 baseline: RewardBaseline | None = None, seed: int = 0, dtype=np.float64, gain=None):  # fmt: skip
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.lr, self.sigma, self.dtype = kind, lr, sigma, np.dtype(dtype)
        self.baseline = baseline if baseline is not None else RewardBaseline()
        self.W = np.zeros((batch, n_out, n_in), self.dtype)
        self.rng = np.random.default_rng(seed)
        self.gain = gain

    def set_weights(self, W: np.ndarray) -> None:
        self.W = np.array(W, self.dtype)

    def _normal(self, shape) -> np.ndarray:
        # drawn in float64 whatever the arithmetic, so that every level sees the same perturbations
        return self.rng.standard_normal(shape).astype(self.dtype, copy=False)

    def trial(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """One trial: inputs ``x`` ``[B, N, T]``, target ``[B, M, T]``. Returns the error ``-R``
        of the weights before the update (the unperturbed run's) per network."""
        x, target = x.astype(self.dtype, copy=False), target.astype(self.dtype, copy=False)
        y0 = self.W @ x
        r0 = reward(y0, target)
        s = self.dtype.type(self.sigma)
        if self.kind == "wp":
            xi = s * self._normal(self.W.shape)
            r = reward(y0 + xi @ x, target)
        else:
            xi = s * self._normal(target.shape)
            r = reward(y0 + xi, target)
        d = self.baseline.delta(r, r0).astype(self.dtype)
        if self.gain is not None:
            d = d * self.gain.observe(r0).astype(self.dtype)
        c = self.dtype.type(self.lr) / (s * s) * d[:, None, None]
        self.W += c * (xi if self.kind == "wp" else xi @ x.transpose(0, 2, 1))
        return -r0


# -- the lowering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpScales:
    """Model units per LSB of each engine quantity of lowered NP (see the module docstring),
    and the reward product's constant ``c_w = mantissa * 2^exponent``."""

    weight: float  # w
    input: float  # x1 - 64, the pre payload
    xi: float  # y2
    tag: float  # t
    reward: float  # y3 (sent in multiples of reward_step)
    reward_step: int  # y3 = reward_step * k: the low bits the reward product's width shift drops
    mantissa: int  # of c_w
    exponent: int  # of c_w


def _reward_grid(lrn) -> tuple[int, int]:
    """``(m, step)``: the largest power-of-two mantissa ``m`` and the step of ``y3`` that make
    ``m * t * y3`` a multiple of the product's width shift ``2^s`` (loihi2: ``s = 4 + 9 + 7 -
    15 = 5``, ``m = 4``, ``step = 8``)."""
    prm = lrn.params
    fw = prm["factor_widths"]
    s = max(0, int(prm["scale_mantissa_bits"]) + int(fw["t"]) + int(fw["y3"]) - (int(lrn.accumulator_bits) - 1))
    a = min(s, int(math.log2(lrn.mantissa_max)))
    return 2**a, 2 ** (s - a)


def np_scales(p: Mapping[str, Any], ctx: LoweringContext) -> NpScales:
    """The LSBs of lowered NP: the weight's from the compiled projection, the perturbation's and
    the tag's the powers of two that hold ``4 sigma`` and ``elig_max``, the reward's the one
    that makes ``c_w = m 2^e`` exact with the smallest ``e`` whose ``y3`` holds ``reward_max``."""
    lrn = ctx.profile.learning
    yb = int(lrn.params["factor_widths"]["y2"])
    tb = int(lrn.synaptic_variable_bits["t"]) - 1
    xi = _pow2_at_least(4 * p["sigma"] / (2**yb - 1))
    tag = _pow2_at_least(p["elig_max"] / (2**tb - 1))
    m, step = _reward_grid(lrn)
    k_max = (2**yb - 1) // step
    g = 2 ** lrn.product_shift("t", "y3")  # the low bits the engine drops from t * y3 (loihi2: 32)
    per_e = p["sigma"] ** 2 * ctx.weight_lsb / (g * p["lr"] * tag)  # lsb_R = m 2^e per_e
    e = max(lrn.exponent_min, math.ceil(math.log2(p["reward_max"] / (step * k_max) / (m * per_e))))
    if e > lrn.exponent_max:
        raise ctx.fail(
            f"np: the reward scale c_w = {g} lr lsb_R lsb_t / (sigma^2 lsb_w) would need 2^{e} > 2^{lrn.exponent_max} "
            f"to hold reward_max = {p['reward_max']:.4g} in y3 (lr {p['lr']:.4g}, sigma {p['sigma']:.4g}): "
            "lower reward_max or raise lr"
        )
    return NpScales(weight=ctx.weight_lsb, input=float(p["input_lsb"]), xi=xi, tag=tag, reward=m * 2.0**e * per_e,
                    reward_step=step, mantissa=m, exponent=e)  # fmt: skip


def lower_np(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, "np")
    lrn = ctx.profile.learning
    if not lrn.third_factor:
        raise ctx.fail(REFUSALS[("np", "sum_of_products", "no_third_factor")])
    if p["baseline"] not in ("paired", "running"):
        raise ctx.fail(f"np: baseline must be 'paired' or 'running', got {p['baseline']!r}")
    for k in ("lr", "sigma", "input_lsb", "elig_max", "reward_max"):
        if p[k] <= 0:
            raise ctx.fail(f"np: parameter {k!r} must be > 0, got {p[k]!r}")
    sc = np_scales(p, ctx)
    g, offset = 2 ** lrn.product_shift("x1", "y2"), pre_offset(lrn)  # (loihi2: 8, 64)
    c_e = scale_literal(g * sc.input * sc.xi / sc.tag, ctx, f"np eligibility scale ({g} input_lsb lsb_xi / lsb_t)")
    rule = EngineRule(
        dt=parse(f"{literal(*c_e)}*u0*(x1 - {offset})*y2 - u0*t*y1", "dt", lrn),
        dw=parse(f"{literal(sc.mantissa, sc.exponent)}*u0*t*y3", "dw", lrn),
        t_epoch=1,
        rng_seed=ctx.seed,
        post_traces="graded",
        graded={y: {"source": "input"} for y in ("y1", "y2", "y3")},
        pre_graded={"x1": {"source": "pre", "offset": offset}},
        source="np",
    )
    ctx.note(
        f"np lowered to dt = {rule.dt}; dw = {rule.dw}; inputs '{ctx.projection}/y2' (the perturbation, "
        f"{sc.xi:.3g} per LSB), '{ctx.projection}/y3' (dR at the reward step, {sc.reward:.3g} per LSB, sent in "
        f"multiples of {sc.reward_step}: then the engine's floor of t*y3 after its width shift drops only zero bits, "
        f"no drift) and '{ctx.projection}/y1' ({tag_clear(lrn)} at the reward step: clears the tag, "
        f"{sc.tag:.3g} per LSB)"
    )
    return rule


def lower_wp(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    require(thaw(params), DEFAULTS, ctx, "wp")
    raise ctx.fail(REFUSALS[("wp", "sum_of_products")])


# -- NP on the engine --------------------------------------------------------------------------


class NpOnEngine:
    """Lowered NP on a sum-of-products engine, for ``batch`` independent linear readouts.

    The learning path is the engine's (:class:`SumOfProductsEngine` with :func:`lower_np`'s
    rule): the tag, the weights and the graded values in its fixed arithmetic, or float
    (``arithmetic``), or fixed with some ``float_quantities`` (attribution). The readout
    ``y = W r + xi`` is computed from the engine's weights (``w * lsb_w``) and the inputs and
    perturbations the engine sees: the 7-bit payload ``r`` and the 8-bit ``y2`` where those are
    fixed (nearest rounding, saturated), the exact values where they are float. ``dR`` is
    rounded to ``y3``'s grid the same way.

    ``params``: the rule's (:data:`DEFAULTS`); ``weight_max``: the largest ``|W|`` the weights
    must hold (fixes ``lsb_w``, a power of two, as a compiled weight exponent would). ``gain``:
    as :class:`Perceptron`'s, computed by the unit that sends ``y3`` (its integer filter where
    ``y3`` is fixed): ``y3`` carries ``k dR``, rounded to its grid.
    """

    def __init__(self, profile, n_out: int, n_in: int, params: Mapping[str, Any], *, weight_max: float,
                 batch: int = 1, seed: int = 0, arithmetic: str = "fixed", float_quantities: Iterable[str] = (),
                 rounding: str | None = None, gain=None):  # fmt: skip
        from ..learning.engine import SumOfProductsEngine

        self.gain = gain
        wb = int(profile.learning.synaptic_variable_bits["w"]) - 1
        ctx = LoweringContext("readout", profile, 1.0, _pow2_at_least(weight_max / (2**wb - 1)), seed=seed)
        p = require(thaw(params), DEFAULTS, ctx, "np")
        self.rule = lower_np(p, ctx)
        self.notes = ctx.notes
        self.scales = np_scales(p, ctx)
        self.lr, self.sigma = float(p["lr"]), float(p["sigma"])
        self.baseline = RewardBaseline(p["baseline"], float(p["tau_baseline"]))
        self.engine = SumOfProductsEngine(self.rule, np.zeros((n_out, n_in), np.int64), engine=profile.learning,
                                          batch=batch, arithmetic=arithmetic, float_quantities=float_quantities,
                                          rounding=rounding)  # fmt: skip
        self.rng = np.random.default_rng(seed)
        self._shape = (batch, n_out, n_in)
        self.step = 0
        fixed = self.engine.var_fixed
        self.fixed_input, self.fixed_xi, self.fixed_reward = fixed["x1"], fixed["y2"], fixed["y3"]
        self.yb = int(profile.learning.params["factor_widths"]["y2"])

    @property
    def W(self) -> np.ndarray:
        """The weights in model units ``[B, M, N]``."""
        return np.broadcast_to(self.engine.weights * self.scales.weight, self._shape)

    def set_weights(self, W: np.ndarray) -> None:
        """Start from ``W`` (model units, ``[B, M, N]``): the nearest weight mantissas where the
        weights are fixed (saturated to their range), ``W / lsb_w`` where they are float."""
        eng = self.engine
        w = W / self.scales.weight
        if eng.var_fixed["w"]:
            top = 2 ** (int(eng.engine.synaptic_variable_bits["w"]) - 1)
            w = np.clip(np.copysign(np.floor(np.abs(w) + 0.5), w), -top, top - 1)
        eng.set_state({"w": np.broadcast_to(w, eng.state["w"].shape)}, None)

    def _grid(self, v: np.ndarray, lsb: float, lo: int, hi: int, fixed: bool) -> np.ndarray:
        """``v`` in LSBs: rounded to nearest (halves away from zero) and saturated if fixed."""
        u = v / lsb
        return np.clip(np.copysign(np.floor(np.abs(u) + 0.5), u), lo, hi) if fixed else u

    def trial(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """As :meth:`Perceptron.trial`."""
        B, M, T = target.shape
        top = 2**self.yb
        off = pre_offset(self.engine.engine)
        xq = self._grid(x, self.scales.input, -off, off - 1, self.fixed_input)  # [B, N, T]
        xiq = self._grid(self.sigma * self.rng.standard_normal(target.shape), self.scales.xi, -top, top - 1,
                         self.fixed_xi)  # fmt: skip
        W = self.W
        y0 = W @ (xq * self.scales.input)
        r0 = reward(y0, target)
        r = reward(y0 + xiq * self.scales.xi, target)
        step = self.scales.reward_step  # y3 = step * k, k rounded to nearest and saturated (the reward unit's)
        dr = self.baseline.delta(r, r0)
        if self.gain is not None:
            dr = self.gain.observe(r0) * dr
        d = step * self._grid(dr, step * self.scales.reward, -top // step, (top - 1) // step, self.fixed_reward)
        eng, none = self.engine, np.zeros((B, x.shape[1]), bool)
        post = np.zeros((B, M), bool)
        for t in range(T):
            self.step += 1
            eng.spikes(self.step, none, post, {"y2": xiq[:, :, t]}, pre_values=xq[:, :, t])
            eng.learn(self.step)
        self.step += 1  # the reward step: dw = c_w t dR, and the tag cleared
        graded = {"y3": np.repeat(d[:, None], M, axis=1), "y1": np.full((B, M), tag_clear(eng.engine))}
        eng.spikes(self.step, none, post, graded, pre_values=np.zeros((B, x.shape[1])))
        eng.learn(self.step)
        return -r0


__all__ = [
    "DEFAULTS",
    "KINDS",
    "REFUSALS",
    "FIXED_FUNCTION",
    "PROGRAMMABLE",
    "NpOnEngine",
    "NpScales",
    "Perceptron",
    "lower_np",
    "lower_wp",
    "reward",
]
