"""Contrastive Hebbian learning (Baldi & Pineda, Neural Comput 3:526, 1991; ``learning-rules.md``
§2.6): a network with symmetric weights settles twice, without the teacher (free) and with
the outputs clamped to the target (clamped), and each weight follows the difference of the
two phases' correlations::

    dW_ij = lr * ((V_i V_j)^clamped - (V_i V_j)^free)

Units are additive (Hopfield) units, ``V = f(u)`` with the logistic ``f``, ``u = W V``; the
inputs, and a bias unit at ``V = 1``, are clamped in both phases. With symmetric ``W`` the
settled states minimize the energy ``E(V) = -1/2 V^T W V + sum_i [V_i log V_i + (1 - V_i)
log(1 - V_i)]`` (the sum over the units that settle), and the rule is gradient descent on the
contrast ``J = E(V^clamped) - E(V^free)``: ``dW_ij = -lr dJ/dW_ij`` for each symmetric pair
(the pair's two entries move together). The exact equations of the paper could not be read
(only its abstract); this is the standard deterministic-Boltzmann (CHL) form the abstract
describes, with hard clamping.

The oscillation form (the paper's conjecture about brain rhythms): the teacher switches on
and off, ``s(t) = +1`` clamped, ``-1`` free, the units follow ``tau du/dt = -u + W V``, and
``dW/dt = lr s(t) V V^T / P`` with ``P`` the phase length; over a cycle whose phases are
long against ``tau`` it is the two-phase rule (:meth:`Contrastive.oscillation`).

Lowering onto a sum-of-products engine with graded third factors (Loihi 2): the phase sign
goes into the post neuron's graded value, ``y2 = s V_i``, and the pre neuron's rate is its
payload, ``x1 = V_j`` (both in units of ``rate_lsb``: 1/127 for a 7-bit rate, 1 for a spike).
The tag sums both phases, and a third step applies and clears it (``y1 = 32``, as node
perturbation's reward step)::

    dt = c_e * u0 * x1 * y2 - u0 * t * y1              dw = c_w * u0 * t * y1

``c_e`` is ``2^-3`` (a phase adds at most ``127^2 / 8 / 8 = 252`` to the 9-bit tag); ``c_w =
lr * lsb_t / lsb_w`` with ``lsb_t = 64 rate_lsb^2`` is rounded to ``m 2^e`` (noted). The
oscillation form lowers to the same rule: the tag integrates ``s(t) x1 y2`` over the phases.

Symmetry. ``W_ij`` and ``W_ji`` are two synapses; they stay equal only if their updates round
alike. The engine rounds every synaptic variable with one random number per epoch (Lava's
``ConnVarRandom``), shared by all synapses, and the two synapses' products ``x1_j y2_i`` and
``x1_i y2_j`` are equal when the payload and the graded value of a unit carry the same
integer: so stochastic rounding itself keeps the symmetry, with no extra cost (independent
random numbers per synapse would not; ``tests/test_contrastive.py`` shows both). One thing
does split a pair, rarely: the engine decays graded values with tau 65535 (Lava's), dropping an
LSB now and then, and the pre payload and the post value drop on different random streams
(measured: 2 of 10 XOR networks end with 2 unequal pairs; none with round-to-nearest or with
the graded values in float).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._frozen import thaw
from ..learning.expr import parse
from ..learning.rule import EngineRule
from .base import LoweringContext, literal, require, scale_literal, tag_clear

DEFAULTS = {
    "lr": ...,
    "rate_lsb": 1.0,  # model units of one unit of the rate payload (x1) and of y2 (1: a spike; 1/127: a 7-bit rate)
}
REFUSALS = {
    "no_third_factor": (
        "contrastive Hebbian learning needs the phase sign as a graded third factor (y2 = s V_i), which this "
        "engine lacks"
    ),
    "programmable": (
        "contrastive Hebbian learning runs on programmable cores as stated, in float32, in `neurocomp check` on the "
        "chl-xor task (a rate network); the emulator has no programmable-core learner of it for a spiking network in "
        "this release"
    ),
    "eprop_fixed": "a fixed-function e-prop learner has no phase input and no symmetric recurrent learning",
}
C_E = (1, -3)  # c_e = 2^-3 (a choice: two phases of 7-bit x1 * y2 fit loihi2's 9-bit tag); the tag keeps x1 * y2 / 64


def _logistic(u: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-u))


class Contrastive:
    """A symmetric network of ``n_in`` inputs, a bias unit, ``n_hidden`` hidden and ``n_out``
    output logistic units, learning by contrastive Hebbian learning (float64).

    Unit order: inputs, bias, hidden, outputs. Every pair of units is connected except two
    clamped units (inputs and bias) and a unit with itself; ``W`` ``[N, N]`` starts symmetric,
    ``N(0, init_std^2)`` per pair. ``tol``: the settling's convergence (largest change of a rate
    in one iteration; default 1e-10 in float64, 1e-6 in float32). ``dtype``: float64 (the rule
    as stated) or float32 (a programmable core's arithmetic: weights, rates, settling and
    updates in float32; the initial weights drawn in float64 and rounded)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, lr: float, seed: int = 0, init_std: float = 1.0,
                 tol: float | None = None, max_iter: int = 20_000, dtype=np.float64):  # fmt: skip
        self.dtype = np.dtype(dtype)
        if tol is None:
            tol = 1e-10 if self.dtype == np.float64 else 1e-6  # a few float32 ulps of a rate near 1
        self.n_clamp, self.n_out, self.tol, self.max_iter = n_in + 1, n_out, tol, max_iter
        self.lr = self.dtype.type(lr)
        n = n_in + 1 + n_hidden + n_out
        self.mask = np.ones((n, n), self.dtype)
        self.mask[: self.n_clamp, : self.n_clamp] = 0
        np.fill_diagonal(self.mask, 0)
        w = np.random.default_rng(seed).normal(0.0, init_std, (n, n))
        self.W = ((np.triu(w, 1) + np.triu(w, 1).T) * self.mask).astype(self.dtype)

    @property
    def n(self) -> int:
        return self.mask.shape[0]

    def set_weights(self, W: np.ndarray) -> None:
        self.W = np.array(W, self.dtype)

    def start(self, x: np.ndarray) -> np.ndarray:
        """The state a phase starts from: inputs ``x``, bias 1, every other unit at 1/2."""
        return np.r_[x, 1.0, np.full(self.n - self.n_clamp, 0.5)].astype(self.dtype)

    def settle(self, V: np.ndarray, clamp_out: bool, W: np.ndarray | None = None) -> np.ndarray:
        """The fixed point ``V_i = f((W V)_i)`` of the units that settle, reached by the damped
        iteration ``V <- (V + f(W V)) / 2`` from ``V`` (the clamped units keep their values)."""
        W = self.W if W is None else W
        free = np.arange(self.n) >= self.n_clamp
        if clamp_out:
            free[-self.n_out :] = False
        V = V.copy()
        for _ in range(self.max_iter):
            new = self.dtype.type(0.5) * (V[free] + _logistic(W[free] @ V))
            change = np.abs(new - V[free]).max()
            V[free] = new
            if change < self.tol:
                return V
        raise RuntimeError(f"the network did not settle within {self.max_iter} iterations (last change {change:.3g})")

    def phases(self, x: np.ndarray, target: np.ndarray, W: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The free and the clamped fixed points (the clamped phase starts from the free one)."""
        vf = self.settle(self.start(x), False, W)
        vc = vf.copy()
        vc[-self.n_out :] = target
        return vf, self.settle(vc, True, W)

    def delta(self, vf: np.ndarray, vc: np.ndarray) -> np.ndarray:
        """``lr * (V V^T clamped - V V^T free)`` on the connected pairs."""
        return self.lr * (np.outer(vc, vc) - np.outer(vf, vf)) * self.mask

    def trial(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Learn one pattern; returns the free phase's outputs (before the update)."""
        vf, vc = self.phases(x, target)
        self.W += self.delta(vf, vc)
        return vf[-self.n_out :]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.settle(self.start(x), False)[-self.n_out :]

    def energy(self, V: np.ndarray, W: np.ndarray | None = None) -> float:
        """``E(V)`` of the module docstring (the entropy terms of every non-clamped unit)."""
        W = self.W if W is None else W
        v = V[self.n_clamp :]
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0 = 0 (a unit clamped to 0 or 1)
            ent = np.where(v > 0, v * np.log(v), 0.0) + np.where(v < 1, (1 - v) * np.log1p(-v), 0.0)
        return float(-0.5 * V @ W @ V + np.sum(ent))

    def contrast(self, x: np.ndarray, target: np.ndarray, W: np.ndarray | None = None) -> float:
        """``J = E(V^clamped) - E(V^free)``."""
        vf, vc = self.phases(x, target, W)
        return self.energy(vc, W) - self.energy(vf, W)

    def oscillation(self, x: np.ndarray, target: np.ndarray, phase_steps: int, tau: float = 10.0,
                    cycles: int = 1) -> np.ndarray:  # fmt: skip
        """The weight change of the oscillation form over ``cycles`` free-then-clamped cycles of
        ``phase_steps`` steps per phase (Euler steps of ``du = (-u + W V) / tau``, from the free
        fixed point), without applying it."""
        vf = self.settle(self.start(x), False)
        u = np.zeros(self.n)  # the clamped units' u is never read
        u[self.n_clamp :] = np.log(vf[self.n_clamp :] / (1 - vf[self.n_clamp :]))
        dW = np.zeros_like(self.W)
        for _ in range(cycles):
            for s in (-1.0, 1.0):
                for _ in range(phase_steps):
                    V = _logistic(u)
                    V[: self.n_clamp] = vf[: self.n_clamp]
                    if s > 0:
                        V[-self.n_out :] = target
                    dW += s * np.outer(V, V)
                    u = u + (-u + self.W @ V) / tau
        return self.lr * dW * self.mask / phase_steps


# -- the lowering ------------------------------------------------------------------------------


def tag_lsb(rate_lsb: float, lrn) -> float:
    """Model units of ``V_i V_j`` per tag LSB: ``c_e x1 y2 / 2**s`` for the engine's shift ``s``
    of ``x1 * y2`` (loihi2: ``2^-3 x1 y2 / 8``, 64 ``rate_lsb**2``)."""
    return 2 ** lrn.product_shift("x1", "y2") / 2.0 ** C_E[1] / C_E[0] * rate_lsb**2


def lower_chl(params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule:
    p = require(thaw(params), DEFAULTS, ctx, "chl")
    lrn = ctx.profile.learning
    if not lrn.third_factor:
        raise ctx.fail(REFUSALS["no_third_factor"])
    if p["rate_lsb"] <= 0:
        raise ctx.fail(f"chl: parameter 'rate_lsb' must be > 0, got {p['rate_lsb']!r}")
    c_w = scale_literal(p["lr"] * tag_lsb(p["rate_lsb"], lrn) / ctx.weight_lsb, ctx, "chl scale (lr lsb_t / lsb_w)")
    rule = EngineRule(
        dt=parse(f"{literal(*C_E)}*u0*x1*y2 - u0*t*y1", "dt", lrn),
        dw=parse(f"{literal(*c_w)}*u0*t*y1", "dw", lrn),
        t_epoch=1,
        rng_seed=ctx.seed,
        post_traces="graded",
        graded={y: {"source": "input"} for y in ("y1", "y2")},
        pre_graded={"x1": {"source": "pre", "offset": 0}},
        source="chl",
    )
    ctx.note(
        f"chl lowered to dt = {rule.dt}; dw = {rule.dw}; input '{ctx.projection}/y2' (s V_i: the phase sign times "
        f"the post rate) each phase step, '{ctx.projection}/y1' ({tag_clear(lrn)} at the apply step: applies and "
        "clears the tag)"
    )
    return rule


class ContrastiveOnEngine(Contrastive):
    """:class:`Contrastive` with its learning path on a sum-of-products engine: the weights,
    the tag and the rates the engine reads in its fixed arithmetic (or float, or fixed with
    ``float_quantities``); the settling in float64 from the engine's weights (``w * lsb_w``).
    Each pattern takes three engine steps: free (``y2 = -V_i``), clamped (``y2 = +V_i``), apply.
    Rates reach the engine as integers of the x1 trace's bits (loihi2: 7, ``round(127 V)``,
    ``rate_lsb = 1/127``) where
    the graded quantities are fixed, exactly where float. ``weight_max``: the largest ``|W|``
    (fixes ``lsb_w``, a power of two)."""

    def __init__(self, profile, n_in: int, n_hidden: int, n_out: int, *, lr: float, weight_max: float,
                 seed: int = 0, arithmetic: str = "fixed", float_quantities: Iterable[str] = (),
                 rounding: str | None = None, **kw: Any):  # fmt: skip
        from ..learning.engine import SumOfProductsEngine

        super().__init__(n_in, n_hidden, n_out, lr=lr, seed=seed, **kw)
        wb = int(profile.learning.synaptic_variable_bits["w"]) - 1
        lsb = 2.0 ** np.ceil(np.log2(weight_max / (2**wb - 1)))
        ctx = LoweringContext("network", profile, 1.0, float(lsb), seed=seed)
        self.rate_max = 2 ** int(profile.learning.params["trace_bits"]) - 1  # a rate of 1 in the x1 trace's bits
        self.rule = lower_chl({"lr": lr, "rate_lsb": 1.0 / self.rate_max}, ctx)
        self.notes, self.weight_lsb = ctx.notes, float(lsb)
        self.engine = SumOfProductsEngine(self.rule, np.zeros((self.n, self.n), np.int64), engine=profile.learning,
                                          arithmetic=arithmetic, mask=self.mask.astype(bool),
                                          float_quantities=float_quantities, rounding=rounding)  # fmt: skip
        self.set_weights(self._W)
        self.step = 0
        self.fixed_rates = self.engine.var_fixed["y2"]

    def set_weights(self, W: np.ndarray) -> None:
        """Start from ``W`` (model units): the nearest mantissas where the weights are fixed."""
        eng, w = self.engine, W / self.weight_lsb
        if eng.var_fixed["w"]:
            top = 2 ** (int(eng.engine.synaptic_variable_bits["w"]) - 1)
            w = np.clip(np.copysign(np.floor(np.abs(w) + 0.5), w), -top, top - 1)
        eng.set_state({"w": w[None] * self.mask}, None)

    @property
    def W(self) -> np.ndarray:
        eng = getattr(self, "engine", None)
        return self._W if eng is None else eng.weights[0] * self.weight_lsb

    @W.setter
    def W(self, value: np.ndarray) -> None:
        self._W = value

    def _rates(self, V: np.ndarray) -> np.ndarray:
        r = V * self.rate_max
        return np.floor(r + 0.5) if self.fixed_rates else r

    def _engine_step(self, pre: np.ndarray, graded: dict) -> None:
        self.step += 1
        n = self.n
        self.engine.spikes(self.step, np.zeros((1, n), bool), np.zeros((1, n), bool), graded, pre_values=pre[None])
        self.engine.learn(self.step)

    def trial(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        vf, vc = self.phases(x, target)
        for v, s in ((vf, -1.0), (vc, 1.0)):
            r = self._rates(v)
            self._engine_step(r, {"y2": (s * r)[None]})
        self._engine_step(np.zeros(self.n), {"y1": np.full((1, self.n), tag_clear(self.engine.engine))})
        return vf[-self.n_out :]


__all__ = ["DEFAULTS", "REFUSALS", "Contrastive", "ContrastiveOnEngine", "lower_chl", "tag_lsb"]
