"""Balanced spiking networks that learn a linear dynamical system (Bourdoukan & Deneve 2015,
NeurIPS 28: 982-990): fast recurrent weights learn E/I balance with a voltage-based rule, slow
recurrent weights learn the dynamics with a current-based Hebbian rule while the network's own
error is fed back as a feed-forward input.

The network (an efficient balanced network, EBN; time in s, Euler steps of ``dt``): ``N`` LIF
neurons with decoder ``D [J, N]`` (columns of norm ``d_norm``), filtered spike trains
``r`` (``dr/dt = -lam r + o``, a spike adds 1) and readout ``xh = D r``::

    dV/dt = -lam V + D^T c + Os r + K D^T e (feedback on)  + Of o,   e = x - xh
    a neuron spikes when V_i > T_i = (|D_i|^2 + mu) / 2: the one furthest above threshold, at
    most ``spikes_per_step`` per step (the task's 1, as in Boerlin et al. 2013; 0: a cascade,
    each spike's fast input applied at once, as in continuous time)

For the target ``dx/dt = A x + c`` the derivation (V = D^T e - mu r) gives the weights the rules
should find: ``Of = -D^T D - mu I`` and ``Os = D^T (A + lam I) D + mu lam I``
(:func:`ideal_weights`; the tests check that the ideal network tracks ``x``).

The rules (learning-rules.md §2.9 marks their form [mem]; the paper's text and code were not
available, so the constants here are ours and :func:`fast_update`'s fixed point was measured):

* fast, at a spike of ``j``, for ``i != j`` (the reset ``Of_jj`` is the neuron's, fixed)::

      dOf_ij = -eta_f (beta (V_i + mu r_i) + Of_ij)          V_i: just before j's spike acts

  Its fixed point is ``Of_ij = -beta E[V_i | j spikes]``. In the ideal network ``E[V_i | j]``
  is about ``D_i^T D_j / 2``, so ``beta = 2`` is the ideal; but then a neuron opposite to ``j``
  (``V_i = -T``) lands exactly on its threshold after the jump and the network can ping-pong,
  so ``beta = 1.8`` (measured over 100 s, seeds 0-2: the learned ``Of`` is 0.93-0.97 of
  ``-D^T D``, correlation 0.995). The weights are bounded by ``±bound`` (the task's
  ``wf_bound``, on loihi2 the engine's weight range), 0.9 ``d_norm^2``: under ``2 T``, the
  jump that would lift a neuron just reset (at ``-T``) back over its threshold; without it a few
  learned weights between opposite neurons exceed ``2 T``, and with a bound of ``2 d_norm^2``
  seeds 1 and 2 reach 0.55 and 1.25 instead of 0.031 and 0.081 (everything else as the task's).
* slow, every step, with the feedback on::

      dOs_ij = eta_s dt (K D^T e)_i r_j                        (error-feedback current x r)

The training protocol (:class:`Balanced`): the fast rule alone, feedback off, slow weights
at ``mu lam I`` (the network then codes the leaky integral of ``c``); then the slow rule with the
feedback on and the fast weights frozen (learning both at once with the feedback on diverged:
the feedback current enters V, which is the fast rule's factor), its rate decaying in
piecewise-constant stages (:func:`stage_rates`); then the test: feedback off, no learning.
Between the fast and slow phases the host fits the readout decoder (:meth:`Balanced.fit_readout`):
learned fast weights fall short of ``-D^T D``, so the network codes its signal along a decoder
shorter than ``D``; the readout and the error fed back (``K D^T (x - D_fit r)``) use the fitted one.
With one spike per step the engine's one voltage per step is the voltage before that spike
(with a cascade, the engine's fast rule learned 0.025 of ``-D^T D`` and the network ran away).

Chips (:func:`lower`):

* spinnaker2 (programmable cores): the exact rules in float32 (:class:`FloatLearner`);
* loihi2 (sum-of-products engine with graded post traces): the fast rule as
  ``dw = Cv*x0*y2 + Cr*x0*y1 + Cw*x0*w`` with the membrane voltage sent by the neuron as the
  graded ``y2`` (and its own ``r`` as ``y1``) (:func:`lower_engine`); the slow rule is
  :mod:`.balanced_basis`'s rule with a linear basis, ``Phi = r`` (:func:`lower_slow_engine`,
  :class:`SlowEngineLearner`, one definition for both): ``dw = Cs*u0*y3*x1`` once per epoch
  of about 32 steps, ``x1`` the ``r`` of ``N`` relay units as graded pre spikes on even
  levels and ``Cs = 4*2^E`` (the product's width shift exact), ``y3`` the feedback averaged
  over the epoch, learning ``Theta`` on ``J`` error units (``Os = D^T Theta + mu lam I``: the
  float rule's changes lie along ``D^T``, rounding would add changes outside it that nothing
  restores), on the task's ``error_copies`` copies of them (:func:`copy_staggers`: the second
  learns ``-Theta``, so the engine's one random number per epoch rounds the copies apart, and the
  neurons receive their mean). The earlier form (``x1`` the presynaptic trace of ``r``, one step's feedback per
  epoch of up to 32 steps, the weights on the neurons) ran away in fixed point (autonomous
  error 1.07-1.09) and missed in float64 (0.16-1.0); the precision
  of each factor is in the notes;
* loihi1: refused, its post traces are spike traces and cannot carry the membrane voltage;
  reckon (fixed-function e-prop) and xylo (no learning): refused.

The network dynamics are float64 at every level (what a chip's precision costs is isolated in
the learning path and in the weights the network runs with), as in :mod:`.rls`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..arith.rounding import round_to_int
from ..errors import Problem
from .base import LoweringError

# --------------------------------------------------------------------------- the network


def decoder(n: int, j: int, norm: float, rng: np.random.Generator) -> np.ndarray:
    """``D [j, n]``: random directions (uniform angles in 2-D, normalized Gaussians otherwise)
    of length ``norm``."""
    if j == 2:
        a = rng.uniform(0, 2 * np.pi, n)
        d = np.vstack([np.cos(a), np.sin(a)])
    else:
        d = rng.standard_normal((j, n))
        d /= np.linalg.norm(d, axis=0)
    return norm * d


def ideal_weights(D: np.ndarray, A: np.ndarray, lam: float, mu: float) -> tuple[np.ndarray, np.ndarray]:
    """The derivation's ``(Of, Os)``: ``-D^T D - mu I`` and ``D^T (A + lam I) D + mu lam I``."""
    n = D.shape[1]
    of = -D.T @ D - mu * np.eye(n)
    os_ = D.T @ (A + lam * np.eye(len(A))) @ D + mu * lam * np.eye(n)
    return of, os_


@dataclass
class Phase:
    """One pass of the network over ``c [T, J]`` with target ``x [T, J]``: which rules learn,
    whether the error is fed back, and the slow rule's rate."""

    fast: bool
    slow: bool
    feedback: bool
    eta_slow: float = 0.0


class BalancedNet:
    """The EBN's float64 dynamics (see the module docstring), stepping with a learner's weights.

    ``run(phase, c, x, learner)`` returns ``xh [T, J]`` and the spikes ``(step, neuron)``. The
    slow weights act on :meth:`presyn` of ``r`` (``r`` itself here; a basis of the readout in
    :mod:`.balanced_basis`), and the learner's ``after_step`` gets it at the step's end."""

    def __init__(self, D: np.ndarray, lam: float, mu: float, K: float, dt: float, spikes_per_step: int = 0):
        self.D, self.lam, self.mu, self.K, self.dt = D, float(lam), float(mu), float(K), float(dt)
        self.cap = int(spikes_per_step) or 4 * D.shape[1]  # 0: a cascade (4 N: longer is a ping-pong, stop the step)
        self.T = (np.sum(D * D, axis=0) + mu) / 2
        self.n = D.shape[1]
        self.readout = D  # the readout decoder (and the error's): D, or one fitted to the learned fast weights

    def run(self, phase: Phase, c: np.ndarray, x: np.ndarray, learner: Any) -> tuple[np.ndarray, np.ndarray]:
        D, dt, decay = self.D, self.dt, 1 - self.lam * self.dt
        V, r = np.zeros(self.n), np.zeros(self.n)
        xh = np.empty_like(x)
        spikes: list[tuple[int, int]] = []
        ff = c @ D  # D^T c for every step
        R = self.readout
        for i in range(len(c)):
            e = x[i] - R @ r
            fb = self.K * (D.T @ e) if phase.feedback else 0.0
            V = decay * V + dt * (ff[i] + learner.ws @ self.presyn(r) + fb)
            r *= decay
            v_step = V.copy()
            fired = np.zeros(self.n, dtype=bool)
            for _ in range(self.cap):
                j = int(np.argmax(V - self.T))
                if V[j] <= self.T[j]:
                    break
                v_pre = V.copy()
                V += learner.wf[:, j]
                r[j] += 1
                fired[j] = True
                spikes.append((i, j))
                if phase.fast:
                    learner.on_spike(j, v_pre, r)
            learner.after_step(i, phase, fired, v_step, r, fb, self.presyn(r))
            xh[i] = R @ r
        return xh, np.array(spikes, dtype=np.int64).reshape(-1, 2)

    def presyn(self, r: np.ndarray) -> np.ndarray:
        """What the slow weights multiply: the filtered spike trains ``r``."""
        return r


# --------------------------------------------------------------------------- the rules


def fast_update(wf_col: np.ndarray, v_pre: np.ndarray, r: np.ndarray, j: int, eta: float, beta: float,
                mu: float) -> np.ndarray:  # fmt: skip
    """The fast rule's change of column ``j`` (the spiking neuron's outputs), 0 at ``i = j``."""
    d = -eta * (beta * (v_pre + mu * r) + wf_col)
    d[j] = 0
    return d


def slow_update(fb: np.ndarray, r: np.ndarray, eta: float, dt: float) -> np.ndarray:
    """The slow rule's change: ``eta dt fb r^T`` with ``fb = K D^T e`` the feedback current."""
    return eta * dt * np.outer(fb, r)


class FloatLearner:
    """Both rules in ``dtype`` (float64: the reference; float32: a programmable core's FPU).
    ``wf``/``ws``: the fast and slow weights the network delivers with (float64 views)."""

    def __init__(self, wf0: np.ndarray, ws0: np.ndarray, eta_fast: float, beta: float, mu: float, dt: float,
                 bound: float = np.inf, dtype=np.float64):  # fmt: skip
        self.dtype = np.dtype(dtype)
        self.bound = self.dtype.type(bound)
        self._wf, self._ws = wf0.astype(self.dtype), ws0.astype(self.dtype)
        self.eta_f, self.beta, self.mu, self.dt = eta_fast, beta, mu, dt
        self.wf, self.ws = self._wf.astype(np.float64), self._ws.astype(np.float64)

    def on_spike(self, j: int, v_pre: np.ndarray, r: np.ndarray) -> None:
        t = self.dtype.type
        col = fast_update(self._wf[:, j], v_pre.astype(self.dtype), r.astype(self.dtype), j, t(self.eta_f),
                          t(self.beta), t(self.mu))  # fmt: skip
        new = np.clip(self._wf[:, j] + col.astype(self.dtype), -self.bound, self.bound)
        new[j] = self._wf[j, j]  # the reset
        self._wf[:, j] = new
        self.wf[:, j] = new

    def after_step(self, i: int, phase: Phase, fired: np.ndarray, v: np.ndarray, r: np.ndarray, fb,
                   pre: np.ndarray) -> None:  # fmt: skip
        """The slow rule, with ``pre`` (the network's :meth:`BalancedNet.presyn`) as its presynaptic factor."""
        if phase.slow and phase.feedback:
            t = self.dtype.type
            self._ws += slow_update(np.asarray(fb, self.dtype), pre.astype(self.dtype), t(phase.eta_slow), t(self.dt))
            self.ws = self._ws.astype(np.float64)


# --------------------------------------------------------------------------- the engine (loihi2)


@dataclass(frozen=True)
class EngineScales:
    """The fast rule's model quantity per engine LSB: its weights, the voltage (``y2``) and
    the neuron's ``r`` (``y1``); ``y_top``: the graded values' largest magnitude (7 bits)."""

    wf_lsb: float
    v_lsb: float
    r_lsb: float
    y_top: int


def lower_engine(profile: Any, p: dict, eta_slow: float, *, seed: int = 0) -> tuple[Any, EngineScales, list[str]]:
    """The fast rule on ``profile``'s sum-of-products engine: ``(rule, scales, notes)``, the
    notes with the slow rule's (:func:`lower_slow_engine` at ``eta_slow``, its presynaptic
    factor ``r``: :func:`slow_params`). ``p``: the task's config (``d_norm``, ``lam``, ``mu``,
    ``beta``, ``eta_fast``, ``dt``, the ranges ``wf_range``, ``v_range``, ``r_range`` and the
    slow rule's). Each constant is ``value * (model LSBs per engine LSB) * (the product's width
    division)``, rounded to ``m * 2^e`` (noted)."""
    from ..learning.rule import EngineRule
    from .base import LoweringContext, literal, scale_literal

    lrn = profile.learning
    top = 2 ** int(lrn.params["trace_bits"]) - 1
    wbits = int(lrn.synaptic_variable_bits["w"]) - 1
    sc = EngineScales(wf_lsb=p["wf_range"] / 2.0**wbits, v_lsb=p["v_range"] / top, r_lsb=p["r_range"] / top, y_top=top)
    ctx = LoweringContext("balanced", profile, dt_ms=p["dt"] * 1e3, weight_lsb=sc.wf_lsb, seed=seed, kind="rule")

    def div(*names: str) -> float:
        return 2.0 ** lrn.product_shift(*names)

    beta, mu = p["beta"], p["mu"]
    # the rounded constants set the fixed point's gain, -beta = Cv*v_lsb / (Cw*wf_lsb) (per model unit): rounded
    # independently it fell from 1.8 to 1.65; instead the voltage's scale v_lsb follows the rounded constants
    cw = scale_literal(-p["eta_fast"] * div("x0", "w"), ctx, "fast rule: decay term Cw (the rate)")
    eta = -cw[0] * 2.0 ** cw[1] / div("x0", "w")
    want = -eta * beta * sc.v_lsb / sc.wf_lsb * div("x0", "y2")
    cv = scale_literal(want, ctx, "fast rule: voltage term Cv")
    sc = replace(sc, v_lsb=sc.v_lsb * cv[0] * 2.0 ** cv[1] / want)
    ctx.note(f"fast rule: V is sent at {sc.v_lsb:.4g} per level (±{sc.v_lsb * top:.3g}) so that Cv/Cw keeps beta = "
             f"{beta:g} exactly")  # fmt: skip
    cr = scale_literal(-eta * beta * mu * sc.r_lsb / sc.wf_lsb * div("x0", "y1"), ctx, "fast rule: rate term Cr")
    terms = [f"{literal(*cv)}*x0*y2", f"{literal(*cw)}*x0*w"]
    if cr[0]:
        terms.insert(1, f"{literal(*cr)}*x0*y1")
    else:
        ctx.note(f"fast rule: the mu r term ({-eta * beta * mu:.3g} r per spike) is below the engine's smallest "
                 "constant and is left out")  # fmt: skip
    g_in = {"source": "input"}
    fast = EngineRule.from_strings(dw=" + ".join(terms).replace("+ -", "- "), engine=lrn, t_epoch=1,
                                   rng_seed=int(seed), post_traces="graded", graded={"y1": g_in, "y2": g_in},
                                   source="balanced-fast")  # fmt: skip
    ctx.note(f"y2 = V over ±{sc.v_lsb * top:.3g} ({top} levels a side, {sc.v_lsb:.3g} per level; threshold "
             f"{(p['d_norm'] ** 2 + mu) / 2 / sc.v_lsb:.1f} levels), y1 = r over [0, {p['r_range']:g}]; fast weights "
             f"over ±{p['wf_range']:g} ({sc.wf_lsb:.3g} per LSB)")  # fmt: skip
    notes = lower_slow_engine(profile, slow_params(p), eta_slow, seed=seed, factored=bool(p["error_units"]),
                              pre="r (N relay units, one per neuron, fed by its spikes with r's time constant)")[2]
    return fast, sc, [*ctx.notes, *notes]


def slow_params(p: dict) -> dict:
    """The oscillator's config as :func:`lower_slow_engine` reads it: the presynaptic factor is
    ``r`` (``phi_range`` = ``r_range``), the slow weights' range ``w_range`` = ``ws_range``."""
    return {**p, "phi_range": p["r_range"], "w_range": p["ws_range"]}


@dataclass(frozen=True)
class SlowScales:
    """The slow rule's model quantity per engine LSB: the slow weights (or ``Theta``), the
    feedback current (``y3``) and the presynaptic factor (``x1``, unsigned); ``y_top``: the
    graded values' largest magnitude; ``phi_step``: the levels between two values the
    presynaptic units send (``x1`` a multiple of it)."""

    w_lsb: float
    fb_lsb: float
    phi_lsb: float
    y_top: int
    phi_step: int


def lower_slow_engine(profile: Any, p: dict, eta: float, *, seed: int = 0, factored: bool = False,
                      name: str = "balanced", pre: str = "Phi",
                      stagger: int = 0) -> tuple[Any, SlowScales, list[str]]:  # fmt: skip
    """The slow rule ``dw = Cs*u0*y3*x1`` on ``profile``'s engine for rate ``eta``: ``(rule,
    scales, notes)``, for a presynaptic factor ``x1`` sent as graded pre spikes by units of its
    own (``pre`` names it: the basis outputs ``Phi`` of :mod:`.balanced_basis`, or ``r``, the
    linear basis of the oscillator). ``p``: the task's config (``dt``, ranges ``w_range``,
    ``fb_range``, ``phi_range``, the epoch's target length ``epoch_steps``). ``factored``: the
    rule learns ``Theta`` (``W = D^T Theta``) on ``J`` error units, ``y3`` their error ``K e``
    (ranges ``theta_range``, ``err_range``) instead of ``W`` on the neurons with ``y3 = K D^T e``.

    The rule runs once every ``t_epoch`` steps with ``y3`` the neurons' feedback current
    averaged over the epoch and ``x1`` the presynaptic value of its last step, ``Cs`` that many
    steps' worth. Two choices keep the fixed point unbiased and its noise small:

    * the product ``Cs*y3*x1`` loses its low ``s`` bits to a floor (the engine's width shift),
      biased by half an accumulator LSB per epoch on every active synapse (against the rule's
      small mean change, a drift that the feedback must hold off); ``Cs = 4 * 2^E`` and ``x1``
      a multiple of ``2^(s - 2)`` (``phi_step``) make every product a multiple of ``2^s``:
      the shift is exact;
    * each epoch's change is rounded stochastically onto the 9-bit weights (a random walk of
      about half an LSB per epoch); long epochs (about ``epoch_steps``, at most the engine's
      ``epoch_bits``) make few roundings: the rate sets ``E`` and the epoch ``t_epoch =
      round(Cs / one step's Cs)`` (the rate is then exact within ``1 / (2 t_epoch)``).

    ``stagger``: steps added to the epoch (a copy of the error units, :func:`copy_staggers`).
    """
    from ..learning.rule import EngineRule
    from .base import LoweringContext, literal

    lrn = profile.learning
    top = 2 ** int(lrn.params["trace_bits"]) - 1
    wbits = int(lrn.synaptic_variable_bits["w"]) - 1
    shift = lrn.product_shift("y3", "x1")
    w_range, fb_range = (p["theta_range"], p["err_range"]) if factored else (p["w_range"], p["fb_range"])
    sc = SlowScales(w_lsb=w_range / 2.0**wbits, fb_lsb=fb_range / top, phi_lsb=p["phi_range"] / top, y_top=top,
                    phi_step=2 ** max(0, shift - 2))  # fmt: skip
    ctx = LoweringContext(name, profile, dt_ms=p["dt"] * 1e3, weight_lsb=sc.w_lsb, seed=seed, kind="rule")
    one = eta * p["dt"] * sc.fb_lsb * sc.phi_lsb / sc.w_lsb * 2.0**shift  # one step's Cs
    longest = 2 ** int(lrn.epoch_bits) - 1
    copies = copy_staggers(int(p.get("error_copies", 1))) if factored else (0,)
    # E from the target epoch, lowered until every copy's staggered epoch fits the engine's
    e = round(math.log2(float(p["epoch_steps"]) * one / 4))
    while e > lrn.exponent_min and 4 * 2.0**e / one + max(copies) > longest:
        e -= 1
    e = max(e, lrn.exponent_min)
    base = round(4 * 2.0**e / one)
    epoch = base + int(stagger)
    if not 1 <= base + min(copies) <= base + max(copies) <= longest:
        raise ctx.fail(f"rule (eta {eta:g}): one step's Cs = {one:.4g} needs epochs of "
                       f"{', '.join(str(base + g) for g in copies)} steps for Cs = 4*2^{e}, outside 1..{longest} "
                       f"(the engine's {lrn.epoch_bits}-bit epoch)")  # fmt: skip
    ctx.note(f"slow rule (eta {eta:g}): every {epoch} steps, Cs = 4*2^{e} (the rate within "
             f"{abs(4 * 2.0**e / (epoch * one) - 1):.1%})")  # fmt: skip
    if len(copies) > 1:
        rate = np.mean([4 * 2.0**e / ((base + g) * one) for g in copies])
        ctx.note(f"slow rule: Theta on {len(copies)} copies of the error units, each a learning connection with "
                 f"an epoch of {', '.join(str(base + g) for g in copies)} steps (their mean rate within "
                 f"{abs(rate - 1):.1%}), every other one learning -Theta from -K e and projecting through -D^T; the "
                 "neurons receive the copies' mean Theta. The engine rounds the changes against one random number per "
                 "epoch shared by a connection's synapses (the same stream in every connection): the negated copies "
                 "round at other numbers, the staggered epochs at other times")  # fmt: skip
    rule = EngineRule.from_strings(
        dw=f"{literal(4, e)}*u0*y3*x1", engine=lrn, t_epoch=epoch, rng_seed=int(seed), post_traces="graded",
        graded={"y3": {"source": "input"}}, pre_graded={"x1": {"source": "pre", "offset": 0}}, source=name,
    )  # fmt: skip
    y3, w = ("K e (the error units')", "Theta") if factored else ("K D^T e (the neurons')", "slow weights")
    ctx.note(f"x1 = {pre} (graded pre spikes, multiples of {sc.phi_step} of {top} levels over [0, {p['phi_range']:g}], "
             f"{sc.phi_lsb:.3g} per level: Cs*y3*x1 a multiple of 2^{shift}), y3 = {y3} averaged over the epoch "
             f"over ±{fb_range:g} ({sc.fb_lsb:.3g}), {w} over ±{w_range:g} ({sc.w_lsb:.3g} per LSB)")
    return rule, sc, ctx.notes


def copy_staggers(k: int) -> tuple[int, ...]:
    """The epoch offsets (steps) of ``k`` copies of the error units: ``0`` for one copy, else
    the ``k`` nonzero integers nearest 0 with their mean 0 (``k`` even) or ``0`` among them (odd).

    The engine rounds every synapse's change onto the 9-bit weights stochastically against one
    random number ``u`` per epoch (Lava's ``ConnVarRandom``, the same seed in every learning
    connection): a change of a fraction ``f`` of an LSB rounds up when ``u < f``. Copies of one
    rule with one stream would round alike, so every other copy learns ``-Theta`` from ``-K e``
    (its synapses round down when ``u > 1 - f``: other epochs) and reaches the neurons through
    ``-D^T``, and each copy's epoch has its own length (it uses the stream's numbers at other
    times, on other changes). The neurons receive the copies' mean."""
    if k < 1:
        raise ValueError(f"error_copies must be >= 1, got {k}")
    return tuple(o for o in range(-(k // 2), k // 2 + 1) if o or k % 2)


def _weight_mantissas(w: np.ndarray, lsb: float, profile: Any) -> np.ndarray:
    """Weights (model units) as the engine's mantissas of ``lsb``, rounded to nearest; even where
    the profile's mixed-sign weights drop their LSB."""
    m = round_to_int(w / lsb, "nearest")
    if profile.formats.weight.mixed_sign_drops_lsb:
        m = (m >> 1) << 1
    return m


class SlowEngineLearner:
    """The slow rule on a sum-of-products engine (loihi2's fixed point, or float64 with
    ``arithmetic="float"``; :func:`lower_slow_engine`): the neurons send their feedback current
    averaged over the epoch as ``y3`` (an accumulator in the neuron, cleared at each learning
    step; with ``D``, the ``J`` error units send their ``K e`` and the engine learns ``Theta``,
    delivered as ``D^T Theta``), the presynaptic units their values (the network's
    :meth:`BalancedNet.presyn`) as graded pre spikes (each rounded to nearest on its grid,
    within ``[0, y_top]``, where the engine is fixed). ``ws_fixed``: slow weights that are the
    neurons' own (the oscillator's ``mu lam I``), delivered beside the engine's; the fast
    weights ``wf`` are fixed. A phase with a new rate loads the rule of that rate, keeping the
    weights. ``name`` names the rule in the lowering's notes."""

    def __init__(self, wf: np.ndarray, w0: np.ndarray, profile: Any, p: dict, seed: int = 0,
                 D: np.ndarray | None = None, ws_fixed: np.ndarray | None = None, name: str = "balanced",
                 **engine_kw: Any):  # fmt: skip
        self.profile, self.p, self.seed, self.kw, self.D, self.name = profile, p, seed, engine_kw, D, name
        self.wf, self.ws_fixed = np.asarray(wf, np.float64), ws_fixed
        self.staggers = copy_staggers(int(p.get("error_copies", 1))) if D is not None else (0,)
        self.signs = tuple(1 - 2 * (c % 2) for c in range(len(self.staggers)))  # every other copy learns -Theta
        _, self.sc, _ = self._lower(float(p["eta_slow"]))
        if D is not None:  # Theta from W = D^T Theta (least squares: exact for W in the span of D^T)
            w0 = np.linalg.lstsq(D.T, np.asarray(w0, np.float64), rcond=None)[0]
        m = _weight_mantissas(np.asarray(w0), self.sc.w_lsb, profile)
        self._w_m, self.engines, self._eta, self.t = m, [], None, 0
        self._fb_sum, self._fb_n = [0.0] * len(self.staggers), [0] * len(self.staggers)
        self.ws = self._deliver([m])

    @property
    def engine(self) -> Any:
        """The first copy's engine (None before the slow phase)."""
        return self.engines[0] if self.engines else None

    def _lower(self, eta: float, stagger: int = 0) -> tuple[Any, SlowScales, list[str]]:
        return lower_slow_engine(self.profile, self.p, eta, seed=self.seed, factored=self.D is not None, name=self.name,
                                 stagger=stagger)  # fmt: skip

    def _deliver(self, ms: list[np.ndarray]) -> np.ndarray:
        """The slow weights the neurons see: the engine's, or ``D^T Theta`` through the error
        units (the copies' mean ``Theta``), with the neurons' own ``ws_fixed``."""
        if len(ms) == 1:
            m = ms[0]
        else:  # the copies that learn -Theta project onto the neurons through -D^T
            m = sum(g * np.asarray(w, np.float64) for g, w in zip(self.signs, ms, strict=True)) / len(ms)
        w = np.asarray(m, np.float64) * self.sc.w_lsb
        w = w if self.D is None else self.D.T @ w
        return w if self.ws_fixed is None else w + self.ws_fixed

    def on_spike(self, j: int, v_pre: np.ndarray, r: np.ndarray) -> None:
        """Nothing: the fast weights are fixed."""

    def _graded(self, value: np.ndarray, lsb: float, lo: int, step: int = 1) -> np.ndarray:
        y = value / lsb
        if self.engine.var_fixed["y3"]:  # the neurons send integers (multiples of step)
            y = np.clip(round_to_int(y / step, "nearest") * step, lo, self.sc.y_top - self.sc.y_top % step)
        return y[None]

    def after_step(self, i: int, phase: Phase, fired: np.ndarray, v: np.ndarray, r: np.ndarray, fb,
                   pre: np.ndarray) -> None:  # fmt: skip
        from ..learning.engine import SumOfProductsEngine

        if not (phase.slow and phase.feedback):
            return
        if self._eta != phase.eta_slow:  # the host loads the rule of this rate
            ws = [g * self._w_m for g in self.signs] if not self.engines else [e.weights[0] for e in self.engines]
            self.engines = [SumOfProductsEngine(self._lower(phase.eta_slow, g)[0], w, engine=self.profile.learning,
                                                **self.kw) for g, w in zip(self.staggers, ws, strict=True)]  # fmt: skip
            self._eta, self.t = phase.eta_slow, 0
            self._fb_sum, self._fb_n = [0.0] * len(self.staggers), [0] * len(self.staggers)
        self.t += 1
        fb = np.asarray(fb, np.float64)
        if self.D is not None:  # the error units' K e (fb = K D^T e, D^T of full column rank: exact)
            fb = np.linalg.lstsq(self.D.T, fb, rcond=None)[0]
        none, x1 = np.zeros((1, len(pre)), bool), self._graded(pre, self.sc.phi_lsb, 0, self.sc.phi_step)
        learned = False
        for c, eng in enumerate(self.engines):  # each copy averages the feedback over its own epoch
            self._fb_sum[c], self._fb_n[c] = self._fb_sum[c] + fb, self._fb_n[c] + 1
            eng.spikes(self.t, none, np.zeros((1, len(fb)), bool),
                       {"y3": self._graded(self.signs[c] * self._fb_sum[c] / self._fb_n[c], self.sc.fb_lsb,
                                           -self.sc.y_top)},
                       pre_values=x1)  # fmt: skip
            if eng.learn(self.t):
                learned, self._fb_sum[c], self._fb_n[c] = True, 0.0, 0
        if learned:
            self.ws = self._deliver([e.weights[0] for e in self.engines])


class EngineLearner:
    """Both rules on a sum-of-products engine (:class:`~neurocomp.learning.engine.SumOfProductsEngine`:
    loihi2's fixed point, or the same engine in float64 with ``arithmetic="float"``). The fast
    rule learns every step (``t_epoch = 1``) from ``V`` (``y2``) and ``r`` (``y1``), which the
    neurons send rounded to nearest within ``±y_top``; its resets (``Of_jj``) are the neurons'
    own and stay outside the engine. The slow rule is :class:`SlowEngineLearner` with ``r`` as
    its presynaptic factor (the linear basis: ``N`` relay units send ``r`` as graded pre
    spikes), on the task's ``J`` error units where its ``error_units`` asks (``D``), the slow
    ``mu lam I`` the neurons' own; it starts from the fast weights the fast phase left."""

    def __init__(self, wf0: np.ndarray, ws0: np.ndarray, profile: Any, fast_rule: Any, scales: EngineScales,
                 p: dict, seed: int = 0, D: np.ndarray | None = None, **engine_kw: Any):  # fmt: skip
        from ..learning.engine import SumOfProductsEngine

        self.profile, self.sc = profile, scales
        n = len(wf0)
        self.diag_f, diag_s = np.diag(np.diag(wf0)), np.diag(np.diag(ws0))
        off = ~np.eye(n, dtype=bool)
        m = _weight_mantissas(np.where(off, wf0, 0.0), scales.wf_lsb, profile)
        self.fast = SumOfProductsEngine(fast_rule, m, engine=profile.learning, mask=off, **engine_kw)
        self.t_fast = 0
        self.wf = self._fast_weights()
        self.slow = SlowEngineLearner(self.wf, ws0 - diag_s, profile, slow_params(p), seed, D=D, ws_fixed=diag_s,
                                      **engine_kw)  # fmt: skip
        self.ws = self.slow.ws

    def _fast_weights(self) -> np.ndarray:
        return np.asarray(self.fast.weights[0] * self.sc.wf_lsb + self.diag_f, np.float64)

    def _graded(self, name: str, value: np.ndarray, lsb: float) -> np.ndarray:
        y = value / lsb
        if self.fast.var_fixed[name]:  # the neuron sends an integer
            y = np.clip(round_to_int(y, "nearest"), -self.sc.y_top, self.sc.y_top)
        return y[None]

    def on_spike(self, j: int, v_pre: np.ndarray, r: np.ndarray) -> None:
        """Nothing: the engine learns from the step's spikes at the step's end."""

    def after_step(self, i: int, phase: Phase, fired: np.ndarray, v: np.ndarray, r: np.ndarray, fb,
                   pre: np.ndarray) -> None:  # fmt: skip
        if phase.fast:
            self.t_fast += 1
            g = {"y1": self._graded("y1", r, self.sc.r_lsb), "y2": self._graded("y2", v, self.sc.v_lsb)}
            self.fast.spikes(self.t_fast, fired[None], fired[None], g)
            if self.fast.learn(self.t_fast):
                self.wf = self.slow.wf = self._fast_weights()
        self.slow.after_step(i, phase, fired, v, r, fb, pre)
        self.ws = self.slow.ws


# --------------------------------------------------------------------------- training


def cv_isi(spikes: np.ndarray, n: int, min_spikes: int = 4) -> float:
    """Mean over neurons with at least ``min_spikes`` spikes of std/mean of their ISIs."""
    cvs = []
    for j in range(n):
        t = spikes[spikes[:, 1] == j, 0]
        isi = np.diff(t)
        if len(t) >= min_spikes and isi.mean() > 0:  # (several spikes in one step: ISIs of 0)
            cvs.append(isi.std() / isi.mean())
    return float(np.mean(cvs)) if cvs else float("nan")


def cv2_isi(spikes: np.ndarray, n: int, min_spikes: int = 4) -> float:
    """Mean over neurons with at least ``min_spikes`` spikes of the local CV of their ISIs
    (Holt et al. 1996: ``2 |I_k+1 - I_k| / (I_k+1 + I_k)`` averaged over consecutive pairs; 1
    for a Poisson train whatever its rate's modulation, which :func:`cv_isi` counts as
    irregularity: a neuron of this network fires while the signal points along its decoder)."""
    out = []
    for j in range(n):
        isi = np.diff(spikes[spikes[:, 1] == j, 0])
        a, b = isi[:-1], isi[1:]
        ok = a + b > 0
        if len(isi) + 1 >= min_spikes and ok.any():
            out.append(np.mean(2 * np.abs(b[ok] - a[ok]) / (a[ok] + b[ok])))
    return float(np.mean(out)) if out else float("nan")


def cv_rescaled(spikes: np.ndarray, n: int, x: np.ndarray, bins: int = 12, min_spikes: int = 4) -> float:
    """Mean over neurons with at least ``min_spikes`` spikes of the CV of their ISIs in rescaled
    time (the time-rescaling theorem, Brown et al. 2002): each neuron's rate as a function of the
    signal's direction (``x [steps, 2]``'s angle in ``bins`` sectors, spikes per step of the
    sector over the run), time measured as the integral of that rate. 1 for a Poisson train
    whose rate follows the signal's direction (where :func:`cv_isi` counts the modulation as
    irregularity), below 1 for a train more regular than Poisson given its tuning."""
    sector = ((np.arctan2(x[:, 1], x[:, 0]) + np.pi) / (2 * np.pi) * bins).astype(np.int64) % bins
    steps = np.bincount(sector, minlength=bins)
    out = []
    for j in range(n):
        t = spikes[spikes[:, 1] == j, 0].astype(np.int64)
        if len(t) < min_spikes:
            continue
        rate = np.bincount(sector[t], minlength=bins) / np.maximum(steps, 1)
        clock = np.concatenate([[0.0], np.cumsum(rate[sector])])  # the rate's integral before each step
        isi = np.diff(clock[t])
        if isi.mean() > 0:
            out.append(isi.std() / isi.mean())
    return float(np.mean(out)) if out else float("nan")


class Balanced:
    """One network for a ``balanced-oscillator`` task, drawn from ``seed``: the decoder, the
    system matrix, the initial weights (off-diagonal fast weights 0, the resets; slow weights
    ``mu lam I``), and the phases of the task's input (the fast phase, the slow stages at
    :func:`stage_rates`, the test). :meth:`train` runs the learning phases with a learner,
    :meth:`test` the test phase with the feedback off."""

    def __init__(self, task: Any, seed: int = 0):
        cfg = self.cfg = task.config
        self.n = int(cfg["n"])
        rng = np.random.default_rng([seed, 5])
        self.D = decoder(self.n, 2, float(cfg["d_norm"]), rng)
        self.A = system_matrix(cfg)
        lam, mu = float(cfg["lam"]), float(cfg["mu"])
        self.net = BalancedNet(self.D, lam, mu, float(cfg["K"]), float(cfg["dt"]), int(cfg["spikes_per_step"]))
        self.wf0 = np.diag(-np.sum(self.D * self.D, axis=0) - mu)
        self.ws0 = mu * lam * np.eye(self.n)
        c, x = np.asarray(task.inputs)[:, 0], np.asarray(task.targets)[:, 0]
        bounds = np.cumsum([0, *phase_steps(cfg)])
        self.segments = [(c[a:b], x[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.phases = [Phase(True, False, False), *(Phase(False, True, True, eta) for eta in stage_rates(cfg))]

    def learner(self, dtype=np.float64) -> FloatLearner:
        """Both rules in ``dtype`` (float64, or float32 on programmable cores)."""
        cfg = self.cfg
        return FloatLearner(self.wf0, self.ws0, float(cfg["eta_fast"]), float(cfg["beta"]), float(cfg["mu"]),
                            float(cfg["dt"]), float(cfg["wf_bound"]), dtype=dtype)  # fmt: skip

    def engine_learner(self, profile: Any, seed: int = 0, **engine_kw: Any) -> EngineLearner:
        """Both rules on ``profile``'s engine (:class:`EngineLearner`), the slow one through the
        error units where the task's ``error_units`` asks."""
        cfg = dict(self.cfg)
        fast, sc, _ = lower_engine(profile, cfg, float(cfg["eta_slow"]), seed=seed)
        D = self.D if cfg["error_units"] else None
        return EngineLearner(self.wf0, self.ws0, profile, fast, sc, cfg, seed, D=D, **engine_kw)

    def train(self, learner: Any, phases: tuple[int, ...] | None = None) -> None:
        """The learning phases ``phases`` (indices into :attr:`phases`; default: all); after
        the fast phase, the host fits the readout (:meth:`fit_readout`) if the task asks."""
        for k in range(len(self.phases)) if phases is None else phases:
            self.net.run(self.phases[k], *self.segments[k], learner)
            if k == 0 and int(self.cfg["readout_fit_steps"]):
                self.fit_readout(learner)

    def fit_readout(self, learner: Any) -> np.ndarray:
        """Set the network's readout (and error) decoder to the one its learned fast weights
        imply: the least-squares decoder of what the fast phase's network codes, the leaky
        integral ``y`` of ``c`` (``dy/dt = -lam y + c``), from its ``r``, over the last
        ``readout_fit_steps`` steps of the fast phase's input with learning off (Boerlin et
        al. 2013's optimal decoder; a host computation). Learned fast weights of ``s D^T D``
        make the network code ``y`` as ``s D r``, so the derivation's ``D`` misreads it, and
        the feedback ``K D^T e`` then pushes against the balance. Returns the decoder ``[2, N]``."""
        c = self.segments[0][0][-int(self.cfg["readout_fit_steps"]):]
        y = leaky_integral(c, self.net.lam, self.net.dt)
        rec = _Recorder(learner)
        self.net.run(Phase(False, False, False), c, y, rec)
        self.net.readout = np.linalg.lstsq(np.array(rec.r), y, rcond=None)[0].T
        return self.net.readout

    def test(self, learner: Any, feedback: bool = False) -> dict:
        """The test phase (no learning): the readout, its error against the target, the CV of
        the ISIs (plain, local and rescaled by the rate's tuning to the signal's direction) and
        the mean rate."""
        c, x = self.segments[-1]
        xh, spikes = self.net.run(Phase(False, False, feedback), c, x, learner)
        dur = len(c) * float(self.cfg["dt"])
        return {"xh": xh, "error": rel_error(xh, x), "cv_isi": cv_isi(spikes, self.n),
                "cv2_isi": cv2_isi(spikes, self.n), "cv_rescaled": cv_rescaled(spikes, self.n, x),
                "rate_hz": len(spikes) / dur / self.n}  # fmt: skip


class _Recorder:
    """Runs the network with ``learner``'s weights, learning nothing, and records ``r`` each step."""

    def __init__(self, learner: Any):
        self.wf, self.ws, self.r = learner.wf, learner.ws, []

    def on_spike(self, j: int, v_pre: np.ndarray, r: np.ndarray) -> None:
        """Nothing: no learning."""

    def after_step(self, i, phase, fired, v, r, fb, pre) -> None:  # noqa: ANN001 (BalancedNet's learner call)
        self.r.append(r.copy())


def leaky_integral(c: np.ndarray, lam: float, dt: float) -> np.ndarray:
    """``y [T, J]``: Euler steps of ``dy/dt = -lam y + c`` from 0, as the network's ``r`` decays."""
    y, out = np.zeros(c.shape[1]), np.empty_like(c)
    for i, ci in enumerate(c):
        y = (1 - lam * dt) * y + dt * ci
        out[i] = y
    return out


def system_matrix(cfg: Any) -> np.ndarray:
    """The damped oscillator ``A = [[-a, -w], [w, -a]]`` (``a = damping``, ``w = 2 pi f``)."""
    a, w = float(cfg["damping"]), 2 * np.pi * float(cfg["freq_hz"])
    return np.array([[-a, -w], [w, -a]])


def phase_steps(cfg: Any) -> tuple[int, ...]:
    """Steps of the fast phase, of each of the ``slow_stages`` slow stages (``slow_steps``
    split evenly, the remainder in the last) and of the test."""
    s, k = int(cfg["slow_steps"]), int(cfg["slow_stages"])
    return (int(cfg["fast_steps"]), *([s // k] * (k - 1)), s - (k - 1) * (s // k), int(cfg["test_steps"]))


def stage_rates(cfg: Any) -> tuple[float, ...]:
    """The slow rule's rate in each stage of the task's slow phase (:func:`annealed_rates`)."""
    return annealed_rates(float(cfg["eta_slow"]), float(cfg["anneal_s"]), phase_steps(cfg)[1:-1], float(cfg["dt"]))


def annealed_rates(eta: float, anneal_s: float, steps: Any, dt: float) -> tuple[float, ...]:
    """``eta / (1 + t / anneal_s)`` at the middle of each stage of ``steps`` (``t`` in s from
    the first stage's start): a decaying rate, piecewise constant so that a chip's host loads
    one rule per stage. (A constant rate leaves the learned system as noisy as the rate allows;
    a decaying one averages the error current's noise away.)"""
    steps = np.asarray(steps, dtype=float)
    mids = (np.cumsum(steps) - steps / 2) * dt
    return tuple(eta / (1 + t / anneal_s) for t in mids)


def rel_error(xh: np.ndarray, x: np.ndarray) -> float:
    """RMS of ``x - xh`` over the RMS of ``x``."""
    return float(np.sqrt(np.mean((x - xh) ** 2) / np.mean(x**2)))


# --------------------------------------------------------------------------- the chips


@dataclass(frozen=True)
class BalancedLowering:
    """What a chip runs: ``variant`` (``"float32"``: the exact rules on programmable cores;
    ``"engine"``: the sum-of-products rules) and the notes."""

    profile: str
    variant: str
    notes: tuple[str, ...]


def lower(profile: Any, n: int) -> BalancedLowering:
    """Which form of the two rules ``profile`` runs for ``n`` neurons, or a
    :class:`LoweringError` naming why none does."""
    kind, name, lrn = profile.learning.kind, profile.name, profile.learning
    where = f"rule 'balanced' on {name}"
    if kind == "programmable":
        return BalancedLowering(name, "float32", (
            "exact rules in float32 on the cores: the fast rule reads V, the slow rule the feedback current, both "
            "held by the core's neuron program",))  # fmt: skip
    if kind == "sum_of_products" and lrn.third_factor and lrn.params.get("graded_pre_spikes"):
        return BalancedLowering(name, "engine", (
            "fast rule: dw = Cv*x0*y2 (+ Cr*x0*y1) + Cw*x0*w, the membrane voltage V sent by the neuron as the "
            "graded y2 (as e-prop's pseudo-derivative is); the resets stay in the neurons. Slow rule: balanced-basis's "
            "with a linear basis, dw = Cs*u0*y3*x1 on Theta at the error units (Os = D^T Theta + mu lam I; the "
            f"task's error_units), their K e averaged over the epoch as the graded y3, r from {n} relay units as "
            "graded pre spikes into x1",))  # fmt: skip
    why = {
        "sum_of_products": "the fast rule needs the membrane voltage V as a learning factor, and its post-synaptic "
        "traces are spike traces (no graded third factor to carry V)",
        "eprop_fixed": "its engine is a fixed-function e-prop, which has no rule for fast and slow weights",
        "none": "it has no learning engine",
    }.get(kind, f"its engine is {kind}")
    if kind == "sum_of_products" and lrn.third_factor:  # graded post traces, but no graded pre spikes
        why = "the slow rule's presynaptic factor r comes from relay units as graded pre spikes, which its engine lacks"
    raise LoweringError([Problem(where, f"{name} cannot run the balanced network's rules: {why}")])


__all__ = ["Balanced", "BalancedLowering", "BalancedNet", "EngineLearner", "EngineScales", "FloatLearner", "Phase",
           "SlowEngineLearner", "SlowScales", "annealed_rates", "copy_staggers", "cv2_isi", "cv_isi", "cv_rescaled",
           "decoder", "fast_update",
           "ideal_weights", "leaky_integral", "lower", "lower_engine", "lower_slow_engine", "phase_steps", "rel_error",
           "slow_params", "slow_update", "stage_rates", "system_matrix"]  # fmt: skip
