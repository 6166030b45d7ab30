"""e-prop (Bellec et al. 2020) lowered onto a sum-of-products engine with graded third
factors (Loihi 2).

The float rule (paper conventions, ``eprop.md`` §1): hidden LIF neurons ``j``, inputs or
hidden neurons ``i``, a leaky readout ``y_k``::

    z_bar_i <- alpha * z_bar_i + z_i                          presynaptic trace (alpha: membrane decay)
    psi_j    = gamma / v_th * h(v_j, v_th, v_th)              pseudo-derivative (h: quantities.pseudo_derivative)
    e_ji     = psi_j * z_bar_i                                  eligibility
    e_bar_ji <- kappa * e_bar_ji + (1 - kappa) * e_ji           readout filter (kappa: readout decay)
    L_j      = sum_k B_jk (y_k - y*_k)                          learning signal (regression)
    dW_ji    = -lr * L_j * e_bar_ji                             hidden weights, every step
    dW_kj    = -lr * (y_k - y*_k) * z_out_j,   z_out_j <- kappa z_out_j + (1 - kappa) z_j

The lowering (one graph-level step for the whole network, since it adds elements):

* a population ``<readout>.error`` of graded error units ``e_k = (v_k - target_k) >> s``
  (8-bit payload; the target is the run's input ``<readout>.error/target``, model units);
* a static projection ``<readout>.error-><hidden>`` holding the feedback matrix ``B``
  (random ``N(0, 1/n_hidden)``, or symmetric: the initial readout weights transposed), which
  delivers ``L_j`` to the hidden neurons' learning-signal port one step later;
* on each projection into a hidden population (three-factor rule, ``t_epoch`` 1): the post
  neuron sends ``y3 = 127 * h(v, v_th, v_th)`` (pseudo-derivative, pre-reset v)
  and ``y2 = L >> s_L`` (learning signal); the tag holds the filtered eligibility::

      dt = 2^-(k+a) * u0 * x1 * y3 - 2^-k * u0 * t       (x1: z_bar with impulse I, tau of the membrane)
      dw = -c_w * u0 * t * y2 + 2^e * u0 * sgn(t) * y1    (the second term: ``floor_offset``)

  the rule parameter ``floor_offset`` (default true) has the neuron send in ``y1`` a dither
  that offsets, on average, the engine's floor of ``t * y2`` (:func:`_floor_offset`);

  under e-prop, hidden LIF neurons that reset to zero (at ``t_epoch`` 1) take the eligibility
  vector that restarts at their own spike instead of ``z_bar``, held per synapse in the tag ``d``
  (:func:`_zero_reset_rules`; RFLO keeps its filtered trace, which has no reset);

* on the readout projection: ``y2 = e_k`` from the error unit, ``x1`` the presynaptic trace
  with the readout's time constant, ``dw = -c_o * u0 * x1 * y2`` (with ``floor_offset``, plus
  its offset term and ``dt = u0*x1 - u0*t``: the tag keeps the last epoch's ``x1`` for ``sgn(t)``).

Approximations, each noted in the compile log where it is made:
  - ``kappa`` becomes ``1 - 2^-k`` (the tag's decay is a power of two);
  - ``gamma / v_th``, the trace impulse, the 7-bit scalings of psi and L, the error shift and
    ``lr`` all fold into ``c_w`` and ``c_o``, each rounded to ``m * 2^e``;
  - the tag keeps ``F(x1 * y3) / (8 * 2^a)`` as a 9-bit integer (``a`` bits of headroom), the
    traces are 7-bit, psi and L 7-bit, the error 8-bit; all round stochastically or floor;
  - the engine floors the products wider than its accumulator (``t * y2``: 5 bits, on average
    15/32 of a unit per nonzero product, always downwards); ``floor_offset`` cancels that mean,
    not each product's loss;
  - the learning signal reaches the hidden neurons one step after the error it comes from;
  - the update is applied every step (online e-prop), not summed over a trial; with the rule
    parameter ``t_epoch`` T > 1 (a power of two) once every T steps, T times the epoch's last
    step's update, every filter decaying by its T-step factor (a T-fold subsample of the
    eligibility and the learning signal; ALIF adaptation beyond about 128 steps needs it);
  - symmetric feedback uses the readout weights as compiled, not as they learn;
  - firing-rate regularization adds ``reg * (r - r0)`` to the learning signal in the neuron,
    ``r`` the running rate of :mod:`neurocomp.learning.quantities` in its integer form
    (:func:`rate_bits` fraction bits, a ``2**-shift`` decay from ``reg_tau_ms``, default 1 s).
ALIF hidden neurons add the adaptation eligibility in the tag ``d`` (see :func:`_alif_rules`).

Classification (``loss: ce``): the error units compute ``e_k = softmax(y)_k - onehot_k`` over
the readout units in integers (:func:`~neurocomp.learning.quantities.ce_error_fixed`: a
max-subtracted base-2 exponential from a 64-entry Q15 table and a shift, the sum normalized to
an 8-bit mantissa and inverted by a 128-entry table, no division; within 2 payload LSB of the
exact softmax), ``P = 127`` per 1.0 of error (``Eq = 1/P``); the float level
(``learn_arithmetic="float"``) computes the exact softmax. Targets are one-hot rows of
``<readout>.error/target``; a NaN row is a step without a target (error 0: no learning), for
either loss.

Adaptive feedback (Bellec's adaptive e-prop, ``B_jk`` takes ``W_out_kj``'s update): ``B``
becomes a plastic projection whose rule mirrors the readout's (:func:`_adaptive_rule`: the
error as a graded pre-synaptic ``x1 = e + 64``, the hidden neuron's spike trace as ``y1``);
the error units are then 7-bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._frozen import thaw
from ..compiler.ir import QPopulation, QProjection, QuantizedNetwork
from ..errors import Problem
from ..learning.expr import parse
from ..learning.programmable import (  # noqa: F401  (EpropExact: the rule's exact form)
    WEIGHT_HEADROOM_BITS,
    EpropExact,
    EpropParams,
    ProgrammableEprop,
)
from ..learning.quantities import RATE_TAU_MS, ce_error_params, feedback_matrix, floor_loss, rate_shift
from ..learning.rule import EngineRule, Trace
from .base import LoweringContext, LoweringError, literal, scale_literal, steps

DEFAULTS = EpropParams.defaults()  # the hyperparameters and their defaults, defined once (EpropParams)
ERROR_BITS = 8  # the error units' graded payload (signed): the lowering's choice, a register of the units


@dataclass(frozen=True)
class _Widths:
    """The engine widths the lowering's scales depend on, read from the profile: the largest
    graded (trace) value, the largest tag value, and the factor by which the engine divides
    each kind of product (its width beyond the accumulator, e.g. 7 + 7 + 4 - 15 = 3 bits)."""

    y_top: int  # 2**trace_bits - 1
    tag_max: int  # largest t
    xy: float  # a trace times a trace (x1*y3, x1*y2)
    ty: float  # the tag times a trace (t*y2)
    yd: float  # a trace times d (y3*d)

    @classmethod
    def of(cls, lrn) -> _Widths:
        def div(*names: str) -> float:
            return 2.0 ** lrn.product_shift(*names)

        tb = int(lrn.params["trace_bits"])
        tag = int(lrn.synaptic_variable_bits["t"]) - 1
        return cls(2**tb - 1, 2**tag - 1, div("x1", "y3"), div("t", "y2"), div("y3", "d"))


def rate_bits(profile) -> int:
    """Fraction bits of the neuron's rate trace: as many as its state register holds. At one
    spike per step ``r`` reaches ``2**bits``, so a signed register of ``voltage.bits`` (24 on
    loihi2) allows ``bits = voltage.bits - 2`` (22). The floor decay cannot lower ``r`` below
    ``2**shift``, i.e. it misreads rates below ``2**(shift - bits)`` per step (0.24 Hz at 1 ms
    on loihi2 with the default 1 s time constant, shift 10); with 16 bits that was 15.6 Hz, above usual targets, and the
    regularization pushed every rate down."""
    return int(profile.formats.voltage.bits) - 2


def _regularization(pr: Mapping[str, Any], Lq: float, dt_ms: float, bits: int) -> dict:
    """The graded learning signal's rate term: ``L += reg * (f - f_target)`` with ``f`` the
    neuron's rate per step, kept as a trace ``r`` with ``bits`` fraction bits (:func:`rate_bits`);
    in y2 units the term is ``c * (r - r0)`` with ``c = reg / (Lq * 2^bits)`` and
    ``r0 = f_target * 2^bits``; ``r`` decays by ``2**-shift`` per step,
    :func:`~neurocomp.learning.quantities.rate_shift` of the rule's ``reg_tau_ms``."""
    if not pr["reg"]:
        return {}
    return {
        "reg": float(pr["reg"]) / (Lq * 2**bits),
        "rate_target": float(pr["reg_rate_hz"]) * dt_ms / 1000 * 2**bits,
        "rate_shift": rate_shift(float(pr["reg_tau_ms"]), dt_ms),
        "rate_bits": bits,
    }


def eprop_params(proj: QProjection, problems: list[Problem], defaults: Mapping[str, Any] = DEFAULTS) -> dict:
    """The projection's e-prop parameters completed with ``defaults``; unknown and missing
    ones are appended to ``problems``."""
    p = thaw(proj.plasticity.params)  # type: ignore[union-attr]
    where = f"projection {proj.name!r}"
    for k in p:
        if k not in defaults:
            problems.append(Problem(where, f"eprop: unknown parameter {k!r} (known: {', '.join(defaults)})"))
    out = {k: p.get(k, v) for k, v in defaults.items()}
    if out["lr"] is ...:
        problems.append(Problem(where, "eprop: parameter 'lr' is required"))
    T = out.get("t_epoch", 1)
    if not isinstance(T, int) or isinstance(T, bool) or T < 1 or T & (T - 1):
        problems.append(Problem(where, f"eprop: t_epoch must be a power of two >= 1 (steps per epoch), got {T!r}"))
    for key in ("weight_headroom_bits", "readout_headroom_bits"):
        h = out.get(key)
        if h is None:  # the role's default (WEIGHT_HEADROOM_BITS)
            continue
        if not isinstance(h, int) or isinstance(h, bool):  # < 0: a finer LSB (see _weight_headroom)
            problems.append(Problem(where, f"eprop: {key} must be an integer, got {h!r}"))
    if not isinstance(out.get("floor_offset", True), bool):
        problems.append(Problem(where, f"eprop: floor_offset must be true or false, got {out['floor_offset']!r}"))
    if out.get("update", "online") not in ("online", "trial"):
        problems.append(Problem(where, f"eprop: update must be 'online' or 'trial', got {out['update']!r}"))
    if out.get("optimizer", "sgd") not in ("sgd", "adam"):
        problems.append(Problem(where, f"eprop: optimizer must be 'sgd' or 'adam', got {out['optimizer']!r}"))
    elif out.get("optimizer", "sgd") == "adam" and out.get("update", "online") != "trial":
        problems.append(Problem(where, "eprop: optimizer 'adam' needs update 'trial' (a step per minibatch)"))
    tau = out.get("reg_tau_ms", RATE_TAU_MS)
    if not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        problems.append(Problem(where, f"eprop: reg_tau_ms must be a finite number of ms > 0, got {tau!r}"))
    return out


def _alif_rules(pop, gamma: float, theta: float, k: int, a: int, ctx: LoweringContext, T: int = 1):
    """The ALIF form: the adaptation eligibility ``eps`` lives in the tag ``d``, in units
    ``2^b`` times those of ``t`` (``F(x1*y3) / (8 * 2^a)``); per epoch of ``T`` steps::

        dd = T 2^-(a+b) * u0*x1*y3 - (1 - rho^T) * u0*d - T c3 * u0*y3*d   eps <- psi z_bar + (rho - psi beta) eps
        dt = 2^-(k+a) * u0*x1*y3 - 2^(b-k) * c3 * u0*y3*d - 2^-k * u0*t    e = psi (z_bar - beta eps)

    with ``c3 = 32 * beta * gamma / (127 * v_th)`` (y3 * d is shifted by 5); ``b`` is the
    smallest that makes the eligibility's ``beta`` term representable. The engine's smallest
    scale, 2^-7 per epoch, bounds ``1 - rho^T``: at ``T = 1`` adaptation time constants beyond
    about 128 steps cannot be represented (an error that names the ``t_epoch`` which can).
    ``d`` saturates at 255 (a 9-bit unsigned tag)."""
    lrn = ctx.profile.learning
    wd = _Widths.of(lrn)
    rho = float(pop.decays["adapt"].factor)
    beta = float(pop.neuron.beta)
    smallest = 2.0**lrn.exponent_min
    per = "per step" if T == 1 else f"per epoch of t_epoch {T} steps"
    decay = "1 - rho" if T == 1 else f"1 - rho^{T}"
    try:
        c2 = scale_literal(1.0 - rho**T, ctx, f"eprop ALIF adaptation decay {decay}")
    except LoweringError:
        fit = next((2**j for j in range(lrn.epoch_bits or 6) if 1.0 - rho ** (2**j) >= smallest * 2 / 3), None)
        hint = f"; with t_epoch {fit} (a rule parameter: learn once per {fit} steps) it can" if fit else ""
        raise ctx.fail(
            f"eprop on ALIF population {pop.name!r}: the adaptation eligibility decays by {decay} = {1 - rho**T:.3g} "
            f"{per} (tau_adapt {pop.neuron.tau_adapt_ms:g} ms), below the engine's smallest scale {smallest:g}: "
            f"{ctx.profile.name} cannot represent adaptation beyond about {T / smallest:.0f} steps at t_epoch {T}{hint}"
        ) from None
    c3_exact = wd.yd * beta * gamma / (wd.y_top * theta)
    cf0 = 2.0**-k * c3_exact  # the beta term of dt at b = 0
    lt = T.bit_length() - 1  # log2(T)
    b = max(0, math.ceil(math.log2(4 * smallest / cf0))) if cf0 > 0 else 0
    b = min(b, -lrn.exponent_min - a + lt)  # dd's increment 2^(lt-a-b) stays representable
    c3 = scale_literal(T * c3_exact, ctx, "eprop ALIF beta * psi scale")
    cf = scale_literal(cf0 * 2.0**b, ctx, "eprop ALIF eligibility scale")
    ctx.note(f"eprop ALIF: eps in tag d at 2^{b} times the tag t's units")
    dd = f"{literal(1, lt - (a + b))}*u0*x1*y3 - {literal(*c2)}*u0*d - {literal(*c3)}*u0*y3*d"
    dt = f"{literal(1, -(k + a))}*u0*x1*y3 - {literal(*cf)}*u0*y3*d - {literal(1, -k)}*u0*t"
    return dt, dd


def _zero_reset_rules(lw: _Lowering, hpop, k: int, a: int, ctx: LoweringContext) -> tuple[str, str]:
    """The LIF eligibility of a neuron that resets to zero: ``dv_j^{t+1}/dv_j^t = alpha (1 -
    z_j^t)``, so each synapse's eligibility vector restarts at its post neuron's spike
    (``eps_ji <- alpha (1 - z_j) eps_ji + z_i``, ``eprop.md`` §1.2) where the shared trace
    ``z_bar_i`` of a subtractive reset does not (on the example that trace made the hidden
    updates 3x the gradient's norm at cosine 0.6, and lowered-float ran away). The tag ``d``
    holds the carry ``alpha (1 - z_j) eps_ji`` (what the next step starts from) at ``D`` LSB
    per spike; each step, with every rule reading the old ``d``::

        dd = D*x0 - c*u0*d - y0*(d + D)                   d <- (1 - y0) ((1 - c) d + D x0)
        dt = c1*u0*y3*d + c1*x0*y3*(d + D) - c1*x0*y3*d - 2^-k*u0*t
                                                          t += 2^-k (psi (d + D x0) / D - t)  (tag units)

    ``c``: ``1 - alpha`` rounded to ``m * 2^e``; the spike of step ``t`` enters the carry
    without that step's decay (``alpha`` on the newest spike rounded to 1). A post spike
    takes ``d + D`` off, and the engine saturates ``d`` at 0 (from ``-c d``). ``x0*y3`` alone
    is 11 bits wide and the engine would not shift it: the ``(d + D)`` form gives it ``y3*d``'s
    width shift, so ``c1`` is the same representable scale. ``D`` is the largest power of two
    that keeps ``c1`` within the engine's scales and twice the typical trace in ``d``'s range."""
    lrn, wd = lw.lrn, lw.wd
    alpha = float(hpop.decays["voltage"].factor)
    d_top = 2 ** int(lrn.synaptic_variable_bits["d"] - 1) - 1
    ratio = wd.yd * lw.I / wd.xy * 2.0 ** -(k + a)  # c1 at D = 1
    j = min(math.floor(math.log2(ratio / 2.0**lrn.exponent_min)),
            math.floor(math.log2(d_top * lw.I / (2 * lw.x1_typ))))  # fmt: skip
    D = 2 ** max(0, j)
    c = scale_literal(1.0 - alpha, ctx, "eprop eligibility decay 1 - alpha")
    c1 = scale_literal(ratio / D, ctx, "eprop eligibility scale")
    ctx.note(f"eprop: reset to zero: the eligibility vector restarts at the post spike (tag d, {D} per spike)")
    dd = f"{D}*x0 - {literal(*c)}*u0*d - y0*(d + {D})"
    dt = f"{literal(*c1)}*u0*y3*d + {literal(*c1)}*x0*y3*(d + {D}) - {literal(*c1)}*x0*y3*d - {literal(1, -k)}*u0*t"
    return dt, dd


LOSSES = ("mse", "ce")
FEEDBACKS = ("random", "symmetric", "adaptive")
ADAPTIVE_SEED = 2  # the readout rule's rng_seed with adaptive feedback: B's (0) y streams are its x streams


def _adaptive_rule(pr, ctx: LoweringContext, Eq, kappa, I, tau_ms, wd: _Widths, offset: int, T: int = 1) -> EngineRule:
    """The rule of an adaptive feedback projection ``B`` (Bellec's adaptive e-prop: ``B_jk``
    takes ``W_out_kj``'s update). ``W_out`` learns ``dw = c_o * u0 * x1 * y2`` with ``x1`` the
    hidden neuron's spike trace and ``y2`` the graded error ``e_k`` of its post (readout) neuron.
    For ``B`` the roles swap: the error unit is the pre neuron and the hidden neuron the post.
    Lava's engine takes a graded pre-synaptic value only as a spike payload written into
    ``x1`` (``LearningDense(graded_spike_cfg=OVERWRITE)``, an unsigned 7-bit trace), so the
    error unit sends ``e + 64`` (``e`` 7-bit signed: the lowering narrows the error units to
    7 bits) and the rule reads ``(x1 - 64)``; the hidden neuron's spike trace is ``B``'s post
    trace ``y1`` with ``W_out``'s ``x1`` impulse and tau::

        dw = c_B * u0 * (x1 - 64) * y1          (shifted by 3, as x1*y2)

    With ``B``'s LSB equal to ``W_out``'s (model units), ``c_B = c_o``, and the rule seeds make
    ``B``'s y-trace random numbers those of ``W_out``'s x trace, so from identical states the
    two updates are the same integers, transposed. Where they still differ: each graded value
    decays through the engine's tau-65535 history (Lava's three-factor y traces; the same tau
    for ``B``'s graded x1), which drops an LSB with probability ``|value| / 65535`` per step,
    with independent random numbers for ``e`` in ``W_out`` and for ``e + 64`` in ``B``; and
    where ``B`` needs a coarser LSB than ``W_out`` (a larger initial B), ``c_B = c_o *
    LSB_W / LSB_B`` and the stochastic rounding to B's grid differs by less than one B LSB."""
    lrn = ctx.profile.learning
    c_b = scale_literal(-wd.xy * pr["lr"] * Eq * (1 - kappa) / (I * ctx.weight_lsb) * T, ctx, "eprop adaptive B scale")
    return EngineRule(
        dw=parse(f"{literal(*c_b)}*u0*(x1 - {offset})*y1", "dw", lrn),
        traces={"y1": Trace(I, steps(tau_ms, ctx, "readout tau"))},
        pre_graded={"x1": {"source": "pre", "offset": offset}},
        rng_seed=0,
        source="eprop",
        t_epoch=T,
    )


@dataclass(frozen=True)
class _Lowering:
    """What every role's lowering shares: the profile and its widths, the step, the rule's
    common parameters (first projection's: they agree), the readout filter ``kappa = 1 - 2^-k``
    per epoch of ``T`` steps, the tag-scale bounds and the error units' scale ``Eq``."""

    prof: Any
    wd: _Widths
    dt_ms: float
    rule: str
    first: Mapping[str, Any]
    I: float  # x1 impulse (trace LSBs per spike)
    gamma: float  # pseudo-derivative dampening
    kappa: float  # the readout's decay per step
    T: int  # t_epoch
    k: int  # the tag's filter 2^-k per epoch
    x1_typ: float  # the largest trace usually reached
    a_fit: int  # tag scale at which that trace times the largest y3 fits the tag
    a_max: int  # the largest tag scale whose dt term the engine represents
    bits: int  # the error units' payload bits
    pmax: int  # the payload's largest value
    Eq: float  # model units per error LSB

    @property
    def lrn(self):
        return self.prof.learning

    @property
    def adaptive(self) -> bool:
        return self.first["feedback"] == "adaptive"

    @property
    def tau_out_ms(self) -> float:
        """The readout's time constant (W_out's x1 trace)."""
        return -self.dt_ms / math.log(self.kappa) if 0 < self.kappa < 1 else self.dt_ms


def lower_network(
    net: QuantizedNetwork, ctx_profile, dt_ms: float, notes: list[str], rate_hz: float = 10.0, rule: str = "eprop"
) -> QuantizedNetwork:
    """Lower every e-prop projection of ``net`` (sum-of-products engine with graded third
    factors); returns the network with the error units, the feedback projections and each
    projection's engine rule added. Every problem is collected before failing.

    In steps: the projections checked (:func:`_checked_eprop`), the shared scales
    (:func:`_shared_scales`), the error units (:func:`_error_units`), then one helper per
    projection role: the feedback ``B`` onto each hidden population (:func:`_feedback`), the
    projections into it (:func:`_hidden_rule`) and those onto the readout (:func:`_readout_rule`)."""
    eprop = [p for p in net.projections if p.plasticity is not None and p.plasticity.name == rule]
    if not eprop:
        return net
    params, readout, hidden = _checked_eprop(net, eprop, ctx_profile, rule)
    pops = {p.name: p for p in net.populations}
    lw = _shared_scales(net, ctx_profile, dt_ms, rule, params[eprop[0].name], readout, hidden, rate_hz, notes)
    err_pop, lw = _error_units(lw, pops[readout], notes)
    new_projs: list[QProjection] = []
    rules: dict[str, EngineRule] = {}
    # every learned projection's range widened first: the rules' weight scales use its LSB
    roles = {p.name: "readout" if p.post == readout else "recurrent" if p.pre in hidden else "input" for p in eprop}
    widened = {p.name: _weight_headroom(p, params[p.name], roles[p.name], ctx_profile, notes) for p in eprop}
    original = {p.name: p for p in eprop}

    def fitted(p: QProjection, make):  # the rule at the widened LSB, or a default headroom dropped
        try:
            return widened[p.name], make(widened[p.name])
        except LoweringError:
            q = original[p.name]
            if widened[p.name] is q or headroom_bits(params[p.name], roles[p.name])[2]:
                raise
            notes.append(f"eprop: {p.name} ({roles[p.name]}): default weight headroom dropped: the rule's scale at "
                         "the coarser weight LSB is below what the engine represents")  # fmt: skip
            widened[p.name] = q
            return q, make(q)

    for p in eprop:
        if p.post == readout:
            _, rules[p.name] = fitted(p, lambda q: _readout_rule(lw, q, params[q.name], err_pop.name, notes))
    eprop = [widened[p.name] for p in eprop]
    read_proj = {p.pre: p for p in eprop if p.post == readout}
    order = [p.name for p in net.populations if p.name in hidden]  # B's rows: declaration order
    drawn = feedback_matrix(int(lw.first["seed"]), [pops[h].size for h in order], pops[readout].size)
    blocks = dict(zip(order, drawn, strict=True))
    for h in hidden:
        fb_proj, Lq, s_L = _feedback(lw, h, blocks[h], err_pop, read_proj, params, notes)
        new_projs.append(fb_proj)
        hpop = net.source.population(h)  # the float network's: its threshold, decays, ALIF's beta
        tau_steps = _pre_trace_steps(lw, hpop, notes)
        for p in eprop:
            if p.post == h:
                _, rules[p.name] = fitted(
                    p, lambda q: _hidden_rule(lw, q, hpop, tau_steps, params[q.name], Lq, s_L, notes)  # noqa: B023
                )
    projections = tuple(
        replace(widened.get(p.name, p), learning=rules[p.name]) if p.name in rules else p for p in net.projections
    )
    return replace(net, populations=net.populations + (err_pop,), projections=projections + tuple(new_projs))


def _checked_eprop(net: QuantizedNetwork, eprop: list[QProjection], prof, rule: str):
    """The projections' parameters, the readout and the hidden populations; every problem
    the lowering cannot take, collected into one :class:`LoweringError`."""
    lrn = prof.learning
    problems: list[Problem] = []
    params = {p.name: eprop_params(p, problems) for p in eprop}
    pops = {p.name: p for p in net.populations}
    if rule == "rflo":  # RFLO: random feedback by definition
        for p in eprop:
            if params[p.name]["feedback"] not in ("random",):
                problems.append(Problem(f"projection {p.name!r}", "rflo uses random feedback"))
    if not lrn.third_factor:
        problems += [
            Problem(f"projection {p.name!r}", f"eprop needs graded third factors (psi and L); {prof.name} has none")
            for p in eprop
        ]
    readouts = sorted({p.post for p in eprop if pops[p.post].model == "LI"})
    hidden = sorted({p.post for p in eprop if pops[p.post].model != "LI"})
    if len(readouts) != 1:
        problems.append(Problem("eprop", f"needs exactly one plastic leaky readout (LI) population, found {readouts}"))
    for h in hidden:
        if pops[h].model not in ("LIF", "ALIF"):
            problems.append(Problem(f"population {h!r}", f"eprop on {pops[h].model} neurons is not lowered"))
    for p in eprop:
        pr = params[p.name]
        if pr["loss"] not in LOSSES:
            problems.append(
                Problem(f"projection {p.name!r}", f"eprop loss {pr['loss']!r}: one of {', '.join(map(repr, LOSSES))}")
            )
        if pr["feedback"] not in FEEDBACKS:
            problems.append(
                Problem(
                    f"projection {p.name!r}",
                    f"eprop feedback {pr['feedback']!r}: one of {', '.join(map(repr, FEEDBACKS))}",
                )
            )
        for key in ("loss", "feedback", "t_epoch"):  # one error unit, B and epoch per readout: all agree
            if pr[key] != params[eprop[0].name][key]:
                problems.append(
                    Problem(
                        f"projection {p.name!r}",
                        f"eprop {key} {pr[key]!r} differs from {params[eprop[0].name][key]!r} of "
                        f"projection {eprop[0].name!r}; all e-prop projections of a network share it",
                    )
                )
        if np.ndim(p.weight_exp) or np.ndim(p.delay_steps) or p.is_sparse:
            problems.append(Problem(f"projection {p.name!r}", "eprop needs a dense projection with one exponent"))
        if pr["update"] != "online":  # the engine writes w each epoch; nothing holds a trial's sum for a host step
            problems.append(Problem(f"projection {p.name!r}", f"eprop update {pr['update']!r}: {prof.name}'s "
                                    "learning engine applies every epoch's update ('online'); 'trial' needs a "
                                    "programmable core"))  # fmt: skip
    if problems:
        raise LoweringError(problems, header="e-prop cannot be lowered")
    return params, readouts[0], hidden


def _shared_scales(net, prof, dt_ms: float, rule: str, first, R: str, hidden, rate_hz: float, notes) -> _Lowering:
    """The readout filter per epoch and the tag-scale bounds (error scale still unset)."""
    lrn = prof.learning
    disc = net.source
    wd = _Widths.of(lrn)
    I = float(first["trace_impulse"])
    # readout filter kappa = 1 - 2^-k (the tag decays by a power of two); RFLO has no filter
    # on the eligibility: k = 0 makes the tag the step's x1*y3 (dt = ... - u0*t)
    kappa = float(disc.population(R).decays["voltage"].factor)
    # t_epoch T > 1: the engine learns once every T steps from the epoch's last step's traces and
    # graded values, T times that step's update (the epoch's sum approximated by T times its
    # last term); the filter decays by kappa^T per epoch
    T = int(first["t_epoch"])
    if T > 1:
        notes.append(
            f"{rule}: t_epoch {T}: the engine learns once every {T} steps from the values of the epoch's last step, "
            f"{T} times that step's update (an approximation of the sum over the epoch); filters decay per epoch"
        )
    kappa_e = kappa**T  # the readout filter over one epoch
    k = 0 if rule == "rflo" else max(1, round(-math.log2(max(1.0 - kappa_e, 1e-12))))
    if k > -lrn.exponent_min:
        raise LoweringError(
            [Problem(f"population {R!r}", f"readout decay {kappa:.5f} needs 2^-{k}, below 2^{lrn.exponent_min}")]
        )
    if rule == "eprop" and 2.0**-k != 1.0 - kappa_e:
        per = "" if T == 1 else f"^{T} (per epoch)"
        notes.append(f"eprop: readout filter kappa{per} {kappa_e:.5f} realized as 1 - 2^-{k} = {1 - 2.0**-k:.5f}")
    # tag scale: t holds F(x1*y3) / (8 * 2^a). The largest a trace usually reaches (twice
    # that of a neuron firing at the compile's firing-rate estimate) times the largest y3
    # should still fit the 9-bit tag (a >= a_fit). A smaller a gives the tag more resolution
    # but needs a finer weight scale c_w (proportional to 2^a); each projection takes the
    # smallest a whose c_w the engine still represents with a mantissa of at least 4.
    tau_in = max(
        (-1.0 / math.log(f) for f in (disc.population(h).decays["voltage"].factor for h in hidden) if 0 < f < 1),
        default=1.0,
    )
    x1_typ = 2 * I * (1 + rate_hz * dt_ms / 1000 * tau_in)
    a_fit = math.ceil(math.log2(x1_typ * wd.y_top / (wd.xy * wd.tag_max)))
    a_max = -lrn.exponent_min - k  # the dt scale 2^-(k+a) must stay representable
    # adaptive feedback: B reads the error as its graded pre-synaptic trace x1 = e + 64, so the
    # error must fit the unsigned trace's bits as a signed value (loihi2: 7; see _adaptive_rule)
    bits = int(lrn.params["trace_bits"]) if first["feedback"] == "adaptive" else ERROR_BITS
    gamma = float(first["dampening"])
    return _Lowering(prof, wd, dt_ms, rule, first, I, gamma, kappa, T, k, x1_typ, a_fit, a_max, bits,
                     2 ** (bits - 1) - 1, math.nan)  # fmt: skip


def _error_units(lw: _Lowering, ro: QPopulation, notes: list[str]) -> tuple[QPopulation, _Lowering]:
    """The readout's error units (graded, ``lw.bits`` wide) and ``lw`` with their scale ``Eq``
    (model units per error LSB)."""
    R, bits, pmax = ro.name, lw.bits, lw.pmax
    if lw.first["loss"] == "ce":
        # e = softmax(y) - onehot(target) in integers (ce_error_fixed); an error of 1.0 -> pmax
        Eq = 1.0 / pmax
        err_pop = QPopulation.error_unit(
            f"{R}.error", R, ro.size, ro.scale_exp, 0, bits, **ce_error_params(ro.scale_exp, bits)
        )
        notes.append(
            f"eprop: error units {err_pop.name} = softmax(y) - onehot(target) over {ro.size} readouts in integers "
            f"(base-2 exponential: 64-entry Q15 table and a shift; sum normalized to 8 bits, 128-entry reciprocal "
            f"table; within 2 LSB of the exact softmax), {pmax} per 1.0, {bits}-bit"
        )
    else:
        # error units: e = (v - target) >> s_e, an error of error_range model units -> the full payload
        err_range = float(lw.first["error_range"])
        s_e = max(0, math.ceil(math.log2(err_range * 2.0**ro.scale_exp / pmax)))
        Eq = 2.0**s_e / 2.0**ro.scale_exp  # model units per error LSB
        err_pop = QPopulation.error_unit(f"{R}.error", R, ro.size, ro.scale_exp, s_e, bits)
        notes.append(
            f"eprop: error units {err_pop.name} = (v - target) >> {s_e} ({Eq:.3g} model units per LSB, {bits}-bit)"
        )
    return err_pop, replace(lw, Eq=Eq)


def _feedback(lw: _Lowering, h: str, B_random: np.ndarray, err_pop: QPopulation, read_proj: Mapping[str, QProjection],
              params: Mapping[str, Mapping[str, Any]], notes: list[str]) -> tuple[QProjection, float, int]:  # fmt: skip
    """The feedback projection ``<readout>.error -> h`` holding ``B`` (random: ``B_random``, h's
    rows of :func:`~neurocomp.learning.quantities.feedback_matrix`; symmetric or adaptive;
    plastic when adaptive), the model units per learning-signal LSB ``Lq`` and the learning
    signal's shift ``s_L``."""
    prof, wd, first = lw.prof, lw.wd, lw.first
    fb = first["feedback"]
    if fb in ("symmetric", "adaptive") and h not in read_proj:
        raise LoweringError([Problem(f"population {h!r}", f"{fb} feedback needs a readout projection from it")])
    if fb == "symmetric":
        B = read_proj[h].effective().T  # [n_h, n_out]
    else:
        B = B_random
    wf = prof.formats.weight  # B in the chip's mixed-sign format: even mantissas where the chip drops the LSB
    step = 2 if wf.mixed_sign_drops_lsb else 1
    b_top = wf.mantissa_range("mixed")[1] // step * step
    b_exp = math.ceil(math.log2(max(np.abs(B).max(), 1e-30) / b_top))
    if fb == "adaptive":
        # B takes W_out's updates: with W_out's LSB (model units) the two updates are the same
        # integers (see _adaptive_rule); a coarser B (which W_out's LSB cannot hold) rounds them
        w_lsb = float(2.0 ** read_proj[h].weight_exp * read_proj[h].float_scale)
        b_exp = max(b_exp, math.ceil(math.log2(w_lsb) - 1e-9))
    Bm = (step * np.round(B / 2.0**b_exp / step)).astype(np.int32)
    R = err_pop.params["readout"]
    fb_name = f"{R}.error->{h}"
    fb_proj = QProjection.from_mantissas(
        fb_name, err_pop.name, h, Bm, sign_mode="mixed", num_weight_bits=wf.mantissa_bits
    )
    # B in model units is Bm * 2^b_exp (what float_scale records; the chip sums Bm * e unshifted)
    fb_proj = replace(fb_proj, float_scale=2.0**b_exp)
    if fb == "adaptive":
        rp = read_proj[h]
        bctx = LoweringContext(fb_name, prof, lw.dt_ms, 2.0**b_exp, seed=0)
        fb_rule = _adaptive_rule(params[rp.name], bctx, lw.Eq, lw.kappa, lw.I, lw.tau_out_ms, wd,
                                 2 ** (lw.bits - 1), lw.T)  # fmt: skip
        bad = fb_rule.problems(prof.learning)
        if bad:
            raise LoweringError([Problem(f"projection {fb_name!r}", f"adaptive feedback: {b.message}") for b in bad])
        fb_proj = replace(fb_proj, learning=fb_rule)
        notes.extend(bctx.notes)
        notes.append(f"eprop: {fb_name} (adaptive feedback): dw = {fb_proj.learning.dw}; B's LSB 2^{b_exp}")
    # the feedback sum arrives in u-like units (<< input_shift): L_model = ls * B_lsb * Eq / in_shift
    in_shift = 2.0**prof.formats.input_shift
    ls_unit = 2.0**b_exp * lw.Eq / in_shift
    # y2 = ring >> s_L: the largest possible |sum_k B_jk e_k| still fits the 7-bit graded value
    l_max = float(np.abs(Bm).sum(axis=1).max()) * lw.pmax * in_shift
    s_L = max(0, math.ceil(math.log2(max(l_max / wd.y_top, 1.0))))
    Lq = 2.0**s_L * ls_unit  # model units per y2 LSB
    notes.append(
        f"eprop: feedback {fb} B -> {h}: {wf.mantissa_bits}-bit, learning signal y2 = L >> {s_L} ({Lq:.3g} per LSB)"
    )
    return fb_proj, Lq, s_L


def _pre_trace_steps(lw: _Lowering, hpop, notes: list[str]) -> int:
    """The presynaptic trace's time constant in steps: the hidden population's membrane's."""
    alpha = float(hpop.decays["voltage"].factor)
    hctx = LoweringContext(hpop.name, lw.prof, lw.dt_ms, 1.0, kind="population")
    tau_steps = steps(-lw.dt_ms / math.log(alpha), hctx, "eprop presynaptic trace tau") if 0 < alpha < 1 else 1
    notes.extend(hctx.notes)
    return tau_steps


def _hidden_rule(lw: _Lowering, p: QProjection, hpop, tau_steps: int, pr: Mapping[str, Any], Lq: float, s_L: int,
                 notes: list[str]) -> EngineRule:  # fmt: skip
    """The three-factor rule of a projection into the hidden population ``hpop`` (the float
    network's): the filtered eligibility in the tag ``t`` (ALIF: the adaptation eligibility in
    ``d``), ``dw = c_w * u0 * t * y2`` with the learning signal ``y2`` and psi ``y3`` (plus, with
    ``floor_offset``, the term and graded ``y1`` of :func:`_floor_offset`)."""
    prof, wd, lrn, k, T = lw.prof, lw.wd, lw.lrn, lw.k, lw.T
    theta = float(hpop.neuron.v_th)
    ctx = LoweringContext(p.name, prof, lw.dt_ms, float(2.0**p.weight_exp * p.float_scale), seed=0)
    c_w0 = wd.ty * pr["lr"] * Lq * lw.gamma * wd.xy / (theta * wd.y_top * lw.I) / ctx.weight_lsb * T  # c_w at a = 0
    a = max(lw.a_fit, math.ceil(math.log2(4 * 2.0**lrn.exponent_min / c_w0)) if c_w0 > 0 else lw.a_fit)
    a = max(-k - lrn.exponent_max, min(lw.a_max, a))
    E = lw.gamma * wd.xy * 2.0**a / (theta * wd.y_top * lw.I)  # model eligibility per tag LSB
    ctx.note(f"eprop tag scale 2^{a}: t = F(x1*y3) / {wd.xy * 2.0**a:g} (traces up to ~{lw.x1_typ:.3g} assumed)")
    c_w = scale_literal(-wd.ty * pr["lr"] * Lq * E / ctx.weight_lsb * T, ctx, "eprop weight scale")
    dt_text = f"{literal(1, -(k + a))}*u0*x1*y3 - {literal(1, -k)}*u0*t"
    dd_text = None
    if hpop.neuron.model == "ALIF":
        dt_text, dd_text = _alif_rules(hpop, lw.gamma, theta, k, a, ctx, T)
    elif hpop.neuron.reset == "zero" and T == 1 and lw.rule == "eprop":  # RFLO: Murray's filtered trace, no reset
        dt_text, dd_text = _zero_reset_rules(lw, hpop, k, a, ctx)
    elif hpop.neuron.reset == "zero" and lw.rule == "eprop":
        ctx.note(f"eprop: t_epoch {T}: the eligibility keeps the subtractive reset's z_bar (no restart at "
                 "the reset to zero, which needs a step per spike)")  # fmt: skip
    dw_text = f"{literal(*c_w)}*u0*t*y2"
    graded = {
        "y2": {"source": "learning_signal", "shift": s_L, **_regularization(pr, Lq, lw.dt_ms, rate_bits(prof))},
        "y3": {"source": "pseudo_derivative"},
    }
    offset = None
    if hpop.neuron.model == "ALIF" and pr["floor_offset"]:
        ctx.note("eprop: floor_offset: none on ALIF neurons (their tag takes both signs)")
    elif hpop.neuron.model != "ALIF":  # the tag t >= 0
        offset = _floor_offset(lrn, c_w, ("t", "y2"), pr, ctx)
    if offset is not None:
        dw_text += offset[0]
        graded["y1"] = offset[1]
    rule = EngineRule(
        dt=parse(dt_text, "dt", lrn),
        dd=None if dd_text is None else parse(dd_text, "dd", lrn),
        dw=parse(dw_text, "dw", lrn),
        traces={"x1": Trace(lw.I, tau_steps)},
        post_traces="graded",
        graded=graded,
        source=lw.rule,
        t_epoch=T,
    )
    notes.extend(ctx.notes)
    notes.append(f"{lw.rule}: {p.name}: dt = {rule.dt}; dw = {rule.dw}")
    if pr["reg"]:
        sh, bits = rule.graded["y2"]["rate_shift"], rule.graded["y2"]["rate_bits"]
        notes.append(
            f"{lw.rule}: {p.name}: firing-rate regularization: the neuron adds reg * (rate - target) to L, "
            f"its rate a spike trace r <- r - (r >> {sh}) + z << {bits - sh} "
            f"({bits} fraction bits, tau {2**sh} steps for reg_tau_ms {float(pr['reg_tau_ms']):g})"
        )
    return rule


def _floor_offset(lrn, c: tuple[int, int], factors: tuple[str, str], pr: Mapping[str, Any], ctx: LoweringContext):
    """The rule parameter ``floor_offset``: the dw term and the graded ``y1`` that offset the
    engine's floor of the weight update ``c * u0 * f * y2`` (``m f y2 >> s``, ``s`` its width
    beyond the accumulator: 5 for ``t * y2`` on loihi2, 3 for ``x1 * y2``; it loses on average
    ``(2^s - g) / 2^(s+1)`` of a unit of ``2^e``, ``g = gcd(m, 2^s)``, on every synapse-step
    whose product is nonzero, always downwards; measured on the example it is most of
    lowered-fixed's drift). The neuron sends ``y1 = 2^r`` (``r`` the shift of the
    offset's own product ``t * y1``: 32 on loihi2) where its ``y2 != 0``, on ``count`` of every
    ``period`` steps (:func:`~neurocomp.learning.quantities.floor_offset`), and
    ``+2^e * u0 * sgn(t) * y1`` (shifted by ``r``) adds one unit of ``2^e`` then where the
    tag is nonzero: on average the floor's loss, where it acts. ``sgn(t)`` needs a tag that is
    nonzero where ``f`` is and never negative (the caller's). None: no offset, also at
    ``t_epoch`` > 1, where the dither's phase (the step) would give each neuron the same
    phases at every epoch and so a biased share of ``count / period``."""
    m, e = c
    s = lrn.product_shift(*factors)
    if not pr["floor_offset"] or m == 0 or s == 0:
        return None
    if int(pr.get("t_epoch", 1)) > 1:
        ctx.note(f"eprop: floor_offset: none at t_epoch {pr['t_epoch']} (the dither is per step, the engine per epoch)")
        return None
    count, period = floor_loss(m, s)
    if count == 0:  # the floor loses nothing (m a multiple of 2^s)
        return None
    value, top = 2 ** lrn.product_shift("t", "y1"), 2 ** int(lrn.params["trace_bits"]) - 1
    if value > top:  # y1 would saturate: the term could not add its unit
        bits = lrn.params["trace_bits"]
        why = f"eprop: floor_offset needs y1 = {value}, beyond the {bits}-bit graded range (max {top})"
        raise LoweringError([Problem(f"projection {ctx.projection!r}", f"{why}; set floor_offset: false")])
    prod = "*".join(factors)
    ctx.note(f"eprop: floor_offset: the neuron sends y1 = {value} where y2 != 0 on {count} of {period} steps; dw adds "
             f"{literal(1, e)}*u0*sgn(t)*y1, on average the {count}/{period} unit the floor of {prod} takes")
    src = {"source": "floor_offset", "of": "y2", "value": value, "count": count, "period": period}
    return f" + {literal(1, e)}*u0*sgn(t)*y1", src


def headroom_bits(pr: Mapping[str, Any], role: str) -> tuple[int, str, bool]:
    """A learned projection's weight headroom in bits, the parameter that sets it and whether
    it was given: ``readout_headroom_bits`` for the readout's projections when given, else
    ``weight_headroom_bits``, else the default of the projection's ``role`` (``input``,
    ``recurrent``: from a hidden population, ``readout``; :data:`WEIGHT_HEADROOM_BITS`)."""
    if role == "readout" and pr.get("readout_headroom_bits") is not None:
        return int(pr["readout_headroom_bits"]), "readout_headroom_bits", True
    if pr.get("weight_headroom_bits") is not None:
        return int(pr["weight_headroom_bits"]), "weight_headroom_bits", True
    return WEIGHT_HEADROOM_BITS[role], "weight_headroom_bits", False


def _weight_headroom(p: QProjection, pr: Mapping[str, Any], role: str, prof, notes: list[str]) -> QProjection:
    """The learned projection with its weight exponent ``bits`` higher (:func:`headroom_bits`):
    the quantizer sizes the exponent to the initial weights, so without headroom a learned
    weight saturates at the initial weights' largest magnitude (Bellec's readout, ``N(0, 1/n)
    (1 - kappa)``, grows a few times past it; recurrent weights that push past it cap the
    network's inhibition and its rates run away). The mantissas are divided by ``2**bits``,
    rounded to nearest (to even values where the chip drops a mixed-sign LSB): the initial
    weights lose ``bits`` bits of resolution, which the compile log states. A requested
    headroom beyond the profile's largest exponent is an error; a default takes what fits
    and says so. Negative ``bits`` go the other way: a ``-bits`` finer LSB for weights that
    learn in steps near one LSB, the initial weights beyond the narrower range saturated at its
    limit and counted in the compile log (an exponent below the profile's smallest is an error)."""
    bits, key, given = headroom_bits(pr, role)
    wf = prof.formats.weight
    if not given:
        notes.append(f"eprop: {p.name} ({role}): {key} {bits} (the default for {role} projections)")
    if not bits:
        return p
    fits = wf.exponent_max - int(p.weight_exp)
    if int(p.weight_exp) + bits < wf.exponent_min:
        why = f"{int(p.weight_exp) + bits} below {prof.name}'s smallest, {wf.exponent_min}"
        raise LoweringError([Problem(f"projection {p.name!r}", f"eprop {key} {bits}: weight exponent {why}")])
    if bits > fits:
        if given:
            why = f"{int(p.weight_exp) + bits} above {prof.name}'s largest, {wf.exponent_max}"
            raise LoweringError([Problem(f"projection {p.name!r}", f"eprop {key} {bits}: weight exponent {why}")])
        notes.append(f"eprop: {p.name} ({role}): {key} {bits} (default) reduced to {fits}: weight exponent "
                     f"{p.weight_exp} is {fits} below {prof.name}'s largest")  # fmt: skip
        bits = fits
        if not bits:
            return p
    e = int(p.weight_exp) + bits
    step = 2 if wf.mixed_sign_drops_lsb and p.sign_mode == "mixed" else 1
    m = step * np.round(p.weights / (2.0**bits * step))
    lo, hi = wf.mantissa_range(p.sign_mode)
    lo, hi = -(-lo // step) * step, hi // step * step  # the representable ends (even with a dropped LSB)
    clipped = int(np.count_nonzero((m < lo) | (m > hi)))
    m = np.clip(m, lo, hi).astype(p.weights.dtype)
    lsb = 2.0**e * p.float_scale
    init = float(np.abs(p.weights).max()) * lsb / 2**bits
    coarser = f"{bits} bit(s) coarser" if bits > 0 else f"{-bits} bit(s) finer, {clipped} initial weight(s) saturated"
    notes.append(
        f"eprop: {p.name} ({role}): weight exponent {p.weight_exp} -> {e} ({key} {bits}): learned weights up to "
        f"{hi * lsb:.3g} model units, {hi * lsb / max(init, 1e-300):.2f}x the largest initial weight {init:.3g} "
        f"(the initial weights' exponent allowed {hi * lsb / 2**bits:.3g}); resolution {lsb:.3g} per LSB, "
        f"{coarser} ({int((m != 0).sum())} of {m.size} initial weights nonzero)"
    )
    return replace(p, weights=m, weight_exp=e)


def _readout_rule(lw: _Lowering, p: QProjection, pr: Mapping[str, Any], err_unit: str, notes: list[str]) -> EngineRule:
    """The rule of a projection onto the readout: ``dw = c_o * u0 * x1 * y2`` with ``x1`` the
    presynaptic trace at the readout's time constant and ``y2`` the error unit's graded error."""
    ctx = LoweringContext(p.name, lw.prof, lw.dt_ms, float(2.0**p.weight_exp * p.float_scale), seed=0)
    # dW = -lr * err * (1 - kappa) * x1 / I; the engine shifts x1*y2 by 3
    c_o = scale_literal(-lw.wd.xy * pr["lr"] * lw.Eq * (1 - lw.kappa) / (lw.I * ctx.weight_lsb) * lw.T, ctx,
                        "eprop readout scale")  # fmt: skip
    dw_text, dt_text = f"{literal(*c_o)}*u0*x1*y2", None
    graded = {"y2": {"source": "error", "unit": err_unit}}
    # the floor offset, with the tag holding the previous epoch's x1 (nonzero where x1 is, but
    # one epoch late: a trace that has just started or ended); adaptive feedback's B mirrors this
    # rule product for product, so it keeps the floor there
    offset = None if lw.adaptive else _floor_offset(lw.lrn, c_o, ("x1", "y2"), pr, ctx)
    if offset is not None:
        dw_text, dt_text = dw_text + offset[0], "u0*x1 - u0*t"
        graded["y1"] = offset[1]
    rule = EngineRule(
        dw=parse(dw_text, "dw", lw.lrn),
        dt=None if dt_text is None else parse(dt_text, "dt", lw.lrn),
        traces={"x1": Trace(lw.I, steps(lw.tau_out_ms, ctx, "readout tau"))},
        # adaptive feedback: B's post trace y1 draws the random numbers of this x1 (seeds 2, 3)
        rng_seed=ADAPTIVE_SEED if lw.adaptive else 0,
        post_traces="graded",
        graded=graded,
        source=lw.rule,
        t_epoch=lw.T,
    )
    notes.extend(ctx.notes)
    notes.append(f"eprop: {p.name} (readout): dw = {rule.dw}")
    return rule


def lower_programmable(
    net: QuantizedNetwork, profile, dt_ms: float, notes: list[str], rate_hz: float = 10.0, rule: str = "eprop"
) -> QuantizedNetwork:
    """e-prop on a programmable engine: the exact rule (:class:`EpropExact`) in the core's
    number format; nothing to approximate but the arithmetic. Checks the structure only."""
    eprop = [p for p in net.projections if p.plasticity is not None and p.plasticity.name == rule]
    if not eprop:
        return net
    problems: list[Problem] = []
    params = {p.name: eprop_params(p, problems) for p in eprop}
    if rule == "rflo":
        problems += [
            Problem(f"projection {p.name!r}", "rflo uses random feedback")
            for p in eprop
            if params[p.name]["feedback"] != "random"
        ]
    pops = {p.name: p for p in net.populations}
    readouts = sorted({p.post for p in eprop if pops[p.post].model == "LI"})
    hidden = sorted({p.post for p in eprop if pops[p.post].model != "LI"})
    if len(readouts) == 1 and not hidden:  # only the readout learns (a delta rule on its inputs)
        hidden = sorted({p.pre for p in eprop if p.post == readouts[0]})
    if len(readouts) != 1 or not hidden:
        problems.append(Problem("eprop", f"needs hidden populations and one readout; found {hidden} -> {readouts}"))
    elif missing := [h for h in hidden if not any(p.pre == h and p.post == readouts[0] for p in eprop)]:
        problems.append(
            Problem("eprop", f"hidden population(s) {missing} have no learned projection onto '{readouts[0]}'")
        )
    for p in eprop:
        pr = params[p.name]
        if pr["loss"] not in ("mse", "ce"):
            problems.append(Problem(f"projection {p.name!r}", f"eprop loss {pr['loss']!r}: mse or ce"))
        if pr["feedback"] not in ("random", "symmetric", "adaptive"):
            problems.append(
                Problem(f"projection {p.name!r}", f"eprop feedback {pr['feedback']!r}: random, symmetric or adaptive")
            )
        if p.is_sparse or np.ndim(p.delay_steps):
            problems.append(Problem(f"projection {p.name!r}", "eprop needs a dense projection with one delay"))
        if pr["update"] == "trial" and pr["feedback"] != "random":  # B would follow W_out only at the step
            problems.append(Problem(f"projection {p.name!r}", "eprop update 'trial' takes random feedback"))
        for key in ("update", "optimizer"):  # one step per minibatch for the whole learner
            if pr[key] != params[eprop[0].name][key]:
                problems.append(Problem(f"projection {p.name!r}", f"eprop {key} {pr[key]!r} differs from "
                                        f"{params[eprop[0].name][key]!r} of projection {eprop[0].name!r}"))  # fmt: skip
    if problems:
        raise LoweringError(problems, header="e-prop cannot be lowered")
    R = readouts[0]
    learning = {  # each projection belongs to one hidden population: its post's, or (onto R) its pre's
        p.name: ProgrammableEprop(
            {k: v for k, v in params[p.name].items() if v is not ...},
            "output" if p.post == R else "hidden",
            R,
            p.pre if p.post == R else p.post,
            source=rule,
        )
        for p in eprop
    }
    notes.append(f"{rule} on {profile.name}'s programmable cores: the exact rule in float32; target input '{R}/target'")
    if any(params[p.name]["t_epoch"] != 1 for p in eprop):
        notes.append(f"{rule}: t_epoch ignored on {profile.name}: the exact rule learns every step")
    first = params[eprop[0].name]
    if first["update"] == "trial":
        opt = ("Adam at each projection's lr (beta1 0.9, beta2 0.999, eps 1e-8; m and v per synapse in float32)"
               if first["optimizer"] == "adam" else "plain SGD (the buffer holds lr times the update)")  # fmt: skip
        notes.append(
            f"{rule}: update 'trial' (a minibatch) on {profile.name}: each trial runs on its own copy of the "
            "network (the emulator's batch = the minibatch: one copy per trial on its own cores), its updates "
            "summed into a float32 buffer per synapse with the weights fixed; at the end of the run the copies' "
            f"buffers are added in trial order, divided by the trial count and applied to every copy by {opt}"
        )
    return replace(
        net, projections=tuple(replace(p, learning=learning.get(p.name, p.learning)) for p in net.projections)
    )
