"""Nonlinear dynamics in an efficient balanced network (Alemi, Machens, Deneve & Slotine 2018,
AAAI: 588-595; arXiv 1705.08026): :mod:`.balanced`'s network, whose slow recurrent input goes
through a fixed nonlinear basis of the readout, learned from the fed-back error.

The target is ``dx/dt = F(x) + c(t)``. The network is :class:`~.balanced.BalancedNet`
(``N`` LIF neurons, decoder ``D``, ``r``, ``xh = D r``, fast weights ``Of``) with the slow
current ``W Phi`` instead of ``Os r``::

    dV/dt = -lam V + D^T c + W Phi(xh) + K D^T e (feedback on) + Of o,      e = x - xh
    Phi_k(xh) = amp exp(-|xh - C_k|^2 / (2 width^2))      k = 1..M (a basis population, fixed)

The basis is a population of ``M`` units with Gaussian tuning to the readout ``xh``, which
they receive from the network's spikes (``xh = D r``: synapses with the readout's time
constant): their graded outputs are what the slow synapses multiply (learning-rules.md §2.10: "a basis
population whose traces feed x1"). With ``V = D^T e - mu r`` the derivation asks
``W Phi(x) = D^T (F(x) + lam x)``: the ideal ``W = D^T Theta`` with ``Theta`` the least-squares
fit of ``F(x) + lam x`` on ``Phi(x)`` (:func:`ideal_readout`; the tests check that this network
tracks ``x``).

The rule (learning-rules.md §2.10 marks it [mem]; the paper's text was not available, its
abstract and §2.10 were used: "a rule that depends solely on presynaptic inputs and error
feedback"), every step with the feedback on::

    dW_kj = eta dt (K D^T e)_k Phi_j                  (error-feedback current x basis output)

which is :func:`.balanced.slow_update` with ``Phi`` as the presynaptic factor. The fast
weights are the derivation's ``-D^T D - mu I`` (Alemi et al. take them as given), or, with the
task's ``fast_steps > 0``, learned first from the resets by :mod:`.balanced`'s voltage rule
(float only). Robustness: :meth:`BasisBalanced.delete` removes a
seeded 25 % of the neurons (their decoder columns, fast and slow weights) and the rest run on.

Chips (:func:`lower`): spinnaker2 runs the basis and the rule in float32 on its cores; loihi2
runs the rule on the sum-of-products engine as ``dw = Cs*u0*y3*x1`` once per epoch of about
32 steps: ``y3`` the neuron's feedback current averaged over the epoch (graded post value),
``x1`` the basis unit's output as a graded pre-synaptic spike (7 bits unsigned, even levels,
Lava's ``graded_spike_cfg=OVERWRITE``), so that the product's width shift is exact
(:func:`lower_engine`, :class:`BasisEngineLearner`). With the task's ``error_units`` (its
default) the engine learns ``Theta`` on ``J`` error units carrying ``K e``, which reach the
neurons through fixed ``D^T``: the rule's float form only ever changes ``W`` along ``D^T``, and
rounding each neuron's ``y3`` and weight would add changes outside that span that nothing
restores; loihi1 refuses (no graded factors: its
traces are spike traces), reckon and xylo refuse. The network dynamics are float64 at every
level, as in :mod:`.balanced`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arith.rounding import round_to_int
from ..errors import Problem
from .balanced import BalancedNet, FloatLearner, Phase, cv2_isi, cv_isi, decoder, rel_error, stage_rates
from .balanced import phase_steps as balanced_phase_steps
from .base import LoweringError

# --------------------------------------------------------------------------- the basis


@dataclass(frozen=True)
class Basis:
    """``M`` units with Gaussian tuning to the readout: ``Phi_k(xh) = amp exp(-|xh - C_k|^2 /
    (2 width^2))``, centres ``C [M, J]`` on a grid (local tuning keeps the units' covariance
    well conditioned, so the rule converges in all of them: rectified-linear units with random
    directions and offsets fit as well by least squares but the rule, a gradient descent,
    reached 0.17-0.49 of the target's RMS where these reach 0.09, measured offline)."""

    C: np.ndarray
    width: float
    amp: float

    @classmethod
    def grid(cls, side: int, lo: tuple[float, float], hi: tuple[float, float], width: float, amp: float) -> Basis:
        """``side x side`` centres evenly over the box ``lo``..``hi`` (2-D)."""
        g = np.meshgrid(np.linspace(lo[0], hi[0], side), np.linspace(lo[1], hi[1], side))
        return cls(np.stack([g[0].ravel(), g[1].ravel()], axis=1), float(width), float(amp))

    def __call__(self, xh: np.ndarray) -> np.ndarray:
        d2 = np.sum((xh[..., None, :] - self.C) ** 2, axis=-1)
        return self.amp * np.exp(-d2 / (2 * self.width**2))


def ideal_readout(basis: Basis, fx: np.ndarray, x: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """``Theta [J, M]``: the (ridge) least-squares fit of ``fx [T, J]`` (``F(x) + lam x``) on
    ``Phi(x)`` over the states ``x [T, J]``."""
    phi = basis(x)
    a = phi.T @ phi + ridge * len(x) * np.eye(phi.shape[1])
    return np.linalg.solve(a, phi.T @ fx).T


class BasisNet(BalancedNet):
    """:class:`~.balanced.BalancedNet` whose slow weights act on ``Phi(D r)``."""

    def __init__(self, D: np.ndarray, basis: Basis, lam: float, mu: float, K: float, dt: float):
        super().__init__(D, lam, mu, K, dt)
        self.basis = basis

    def presyn(self, r: np.ndarray) -> np.ndarray:
        return self.basis(self.D @ r)


# --------------------------------------------------------------------------- the task's network


def bistable(x: np.ndarray, k: float, a: float) -> np.ndarray:
    """The target's ``F(x)`` for ``x [..., 2]``: a double well in ``x1`` (stable at ``±a``)
    driving ``x2`` quadratically: ``k [x1 - x1^3/a^2, x1^2/a - x2]`` (1/s)."""
    x1, x2 = x[..., 0], x[..., 1]
    return k * np.stack([x1 - x1**3 / a**2, x1**2 / a - x2], axis=-1)


def phase_steps(cfg: Any) -> tuple[int, ...]:
    """Steps of the fast rule's phase (where ``fast_steps`` is positive), of each learning stage
    and of the test (:func:`neurocomp.rules.balanced.phase_steps` without an empty fast phase)."""
    steps = balanced_phase_steps(cfg)
    return steps if steps[0] > 0 else steps[1:]


class BasisBalanced:
    """One network for a ``balanced-bistable`` task, drawn from ``seed``: the decoder, the
    basis, the fast weights (the derivation's; with ``fast_steps > 0`` the resets only, the
    rest learned first by :mod:`.balanced`'s voltage rule), the slow weights (0), the phases
    of the task's input (the fast phase, the learning stages at the task's decaying rates,
    then the test).
    :meth:`train` runs the learning phases, :meth:`test` the test (feedback off, no learning),
    :meth:`delete` the network without a seeded fraction of its neurons."""

    def __init__(self, task: Any, seed: int = 0):
        cfg = self.cfg = task.config
        self.n = int(cfg["n"])
        rng = np.random.default_rng([seed, 7])
        self.D = decoder(self.n, 2, float(cfg["d_norm"]), rng)
        side = int(cfg["basis_side"])
        self.m = side * side
        self.basis = Basis.grid(side, tuple(cfg["basis_lo"]), tuple(cfg["basis_hi"]), float(cfg["basis_width"]),
                                float(cfg["basis_amp"]))  # fmt: skip
        self.lam, self.mu = float(cfg["lam"]), float(cfg["mu"])
        self.net = BasisNet(self.D, self.basis, self.lam, self.mu, float(cfg["K"]), float(cfg["dt"]))
        self.fast = int(cfg["fast_steps"]) > 0
        if self.fast:  # the resets; the fast rule learns the rest
            self.wf0 = np.diag(-np.sum(self.D * self.D, axis=0) - self.mu)
        else:
            self.wf0 = -self.D.T @ self.D - self.mu * np.eye(self.n)
        self.w0 = np.zeros((self.n, self.m))
        c, x = np.asarray(task.inputs)[:, 0], np.asarray(task.targets)[:, 0]
        bounds = np.cumsum([0, *phase_steps(cfg)])
        self.segments = [(c[a:b], x[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        fast = [Phase(True, False, False)] if self.fast else []
        self.phases = [*fast, *(Phase(False, True, True, eta) for eta in stage_rates(cfg))]

    def fx(self, x: np.ndarray) -> np.ndarray:
        """``F(x) + lam x``: what ``W Phi`` should carry."""
        return bistable(x, float(self.cfg["k"]), float(self.cfg["a"])) + self.lam * x

    def ideal_w(self) -> np.ndarray:
        """The derivation's ``W = D^T Theta``, ``Theta`` fitted over the training phases' states."""
        x = np.concatenate([s[1] for s in self.segments[:-1]])
        return self.D.T @ ideal_readout(self.basis, self.fx(x), x)

    def learner(self, dtype=np.float64, wf: np.ndarray | None = None, w: np.ndarray | None = None) -> FloatLearner:
        """The float rules (``dtype``: float64, or float32 on programmable cores): the slow one,
        and the fast one (``eta_fast``, ``beta``, ``|w| <= wf_bound``) in the fast phase."""
        cfg = self.cfg
        wf = self.wf0 if wf is None else wf
        return FloatLearner(wf, self.w0 if w is None else w, float(cfg["eta_fast"]), float(cfg["beta"]), self.mu,
                            float(cfg["dt"]), bound=float(cfg["wf_bound"]), dtype=dtype)  # fmt: skip

    def engine_learner(self, profile: Any, seed: int = 0, **engine_kw: Any) -> BasisEngineLearner:
        """The rule on ``profile``'s engine (:class:`BasisEngineLearner`), through the error units
        where the task's ``error_units`` asks."""
        D = self.D if self.cfg["error_units"] else None
        return BasisEngineLearner(self.wf0, self.w0, profile, dict(self.cfg), seed, D=D, **engine_kw)

    def train(self, learner: Any, phases: tuple[int, ...] | None = None) -> None:
        """The learning stages ``phases`` (indices into :attr:`phases`; default: all)."""
        for k in range(len(self.phases)) if phases is None else phases:
            self.net.run(self.phases[k], *self.segments[k], learner)

    def test(self, learner: Any, feedback: bool = False, net: BasisNet | None = None) -> dict:
        """The test phase with ``net`` (default: the whole network): readout, error, CV of ISI, rate."""
        net = self.net if net is None else net
        c, x = self.segments[-1]
        xh, spikes = net.run(Phase(False, False, feedback), c, x, learner)
        dur = len(c) * float(self.cfg["dt"])
        return {"xh": xh, "error": rel_error(xh, x), "cv_isi": cv_isi(spikes, net.n),
                "cv2_isi": cv2_isi(spikes, net.n), "rate_hz": len(spikes) / dur / net.n}  # fmt: skip

    def delete(self, learner: Any, fraction: float, seed: int) -> tuple[BasisNet, FloatLearner]:
        """The network without ``round(fraction N)`` neurons chosen from ``seed``: its decoder
        columns, fast weights and slow weights removed (the basis reads the remaining
        readout); the weights in float64, fixed."""
        drop = np.random.default_rng([seed, 25]).choice(self.n, round(fraction * self.n), replace=False)
        keep = np.setdiff1d(np.arange(self.n), drop)
        net = BasisNet(self.D[:, keep], self.basis, self.lam, self.mu, self.net.K, self.net.dt)
        ln = FloatLearner(learner.wf[np.ix_(keep, keep)], learner.ws[keep], 0.0, 0.0, self.mu, self.net.dt)
        return net, ln


# --------------------------------------------------------------------------- the engine (loihi2)


@dataclass(frozen=True)
class BasisScales:
    """Model quantity per engine LSB: the slow weights, the feedback current (``y3``) and the
    basis output (``x1``, unsigned); ``y_top``: the graded values' largest magnitude;
    ``phi_step``: the levels between two values the basis units send (``x1`` a multiple of it)."""

    w_lsb: float
    fb_lsb: float
    phi_lsb: float
    y_top: int
    phi_step: int


def lower_engine(profile: Any, p: dict, eta: float, *, seed: int = 0, factored: bool = False,
                 ) -> tuple[Any, BasisScales, list[str]]:  # fmt: skip
    """The rule ``dw = Cs*u0*y3*x1`` on ``profile``'s engine for rate ``eta``: ``(rule,
    scales, notes)``. ``p``: the task's config (``dt``, ranges ``w_range``, ``fb_range``,
    ``phi_range``, the epoch's target length ``epoch_steps``). ``factored``: the rule learns
    ``Theta`` (``W = D^T Theta``) on ``J`` error units, ``y3`` their error ``K e`` (ranges
    ``theta_range``, ``err_range``) instead of ``W`` on the neurons with ``y3 = K D^T e``.

    The rule runs once every ``t_epoch`` steps with ``y3`` the neurons' feedback current
    averaged over the epoch and ``x1`` the basis output of its last step, ``Cs`` that many
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
    """
    from ..learning.rule import EngineRule
    from .base import LoweringContext, literal

    if int(p.get("fast_steps", 0)) > 0:  # refused before any level of a check runs
        raise LoweringError([Problem(f"rule 'balanced-basis' on {profile.name}", (
            f"fast_steps = {p['fast_steps']}: the engine's form keeps the derivation's fast weights; learned fast "
            "weights run in float (set fast_steps to 0)"))])  # fmt: skip
    lrn = profile.learning
    top = 2 ** int(lrn.params["trace_bits"]) - 1
    wbits = int(lrn.synaptic_variable_bits["w"]) - 1
    shift = lrn.product_shift("y3", "x1")
    w_range, fb_range = (p["theta_range"], p["err_range"]) if factored else (p["w_range"], p["fb_range"])
    sc = BasisScales(w_lsb=w_range / 2.0**wbits, fb_lsb=fb_range / top, phi_lsb=p["phi_range"] / top, y_top=top,
                     phi_step=2 ** max(0, shift - 2))  # fmt: skip
    ctx = LoweringContext("balanced-basis", profile, dt_ms=p["dt"] * 1e3, weight_lsb=sc.w_lsb, seed=seed, kind="rule")
    one = eta * p["dt"] * sc.fb_lsb * sc.phi_lsb / sc.w_lsb * 2.0**shift  # one step's Cs
    longest = 2 ** int(lrn.epoch_bits) - 1
    e = round(math.log2(float(p["epoch_steps"]) * one / 4))
    while e > lrn.exponent_min and 4 * 2.0**e / one > longest:
        e -= 1
    e = max(e, lrn.exponent_min)
    epoch = round(4 * 2.0**e / one)
    if not 1 <= epoch <= longest:
        raise ctx.fail(f"rule (eta {eta:g}): one step's Cs = {one:.4g} needs an epoch of {4 * 2.0**e / one:.3g} steps "
                       f"for Cs = 4*2^{e}, outside 1..{longest} (the engine's {lrn.epoch_bits}-bit epoch)")  # fmt: skip
    ctx.note(f"rule (eta {eta:g}): every {epoch} steps, Cs = 4*2^{e} (the rate within "
             f"{abs(4 * 2.0**e / (epoch * one) - 1):.1%})")  # fmt: skip
    rule = EngineRule.from_strings(
        dw=f"{literal(4, e)}*u0*y3*x1", engine=lrn, t_epoch=epoch, rng_seed=int(seed), post_traces="graded",
        graded={"y3": {"source": "input"}}, pre_graded={"x1": {"source": "pre", "offset": 0}},
        source="balanced-basis",
    )  # fmt: skip
    y3, w = ("K e (the error units')", "Theta") if factored else ("K D^T e (the neurons')", "slow weights")
    ctx.note(f"x1 = Phi (graded pre spikes, multiples of {sc.phi_step} of {top} levels over [0, {p['phi_range']:g}], "
             f"{sc.phi_lsb:.3g} per level: Cs*y3*x1 a multiple of 2^{shift}), y3 = {y3} averaged over the epoch "
             f"over ±{fb_range:g} ({sc.fb_lsb:.3g}), {w} over ±{w_range:g} ({sc.w_lsb:.3g} per LSB)")
    return rule, sc, ctx.notes


class BasisEngineLearner:
    """The rule on a sum-of-products engine (loihi2's fixed point, or float64 with
    ``arithmetic="float"``): the neurons send their feedback current averaged over the epoch
    as ``y3`` (an accumulator in the neuron, cleared at each learning step; with ``D``, the
    ``J`` error units send their ``K e`` and the engine learns ``Theta``, delivered as
    ``D^T Theta``), the basis units
    their outputs as graded pre spikes (each rounded to nearest on its grid, within ``[0,
    y_top]``, where the engine is fixed); the fast weights are fixed (float64, the neurons'
    own). A phase with a new rate loads the rule of that rate, keeping the weights."""

    def __init__(self, wf: np.ndarray, w0: np.ndarray, profile: Any, p: dict, seed: int = 0,
                 D: np.ndarray | None = None, **engine_kw: Any):  # fmt: skip
        self.profile, self.p, self.seed, self.kw, self.D = profile, p, seed, engine_kw, D
        self.wf = np.asarray(wf, np.float64)
        _, self.sc, _ = lower_engine(profile, p, float(p["eta_slow"]), seed=seed, factored=D is not None)
        if D is not None:  # Theta from W = D^T Theta (least squares: exact for W in the span of D^T)
            w0 = np.linalg.lstsq(D.T, np.asarray(w0, np.float64), rcond=None)[0]
        m = round_to_int(np.asarray(w0) / self.sc.w_lsb, "nearest")
        if profile.formats.weight.mixed_sign_drops_lsb:  # mixed-sign weights hold even mantissas
            m = (m >> 1) << 1
        self._w_m, self.engine, self._eta, self.t = m, None, None, 0
        self._fb_sum, self._fb_n = 0.0, 0
        self.ws = self._deliver(m)

    def _deliver(self, m: np.ndarray) -> np.ndarray:
        """The slow weights the neurons see: the engine's, or ``D^T Theta`` through the error units."""
        w = np.asarray(m, np.float64) * self.sc.w_lsb
        return w if self.D is None else self.D.T @ w

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
            w = self._w_m if self.engine is None else self.engine.weights[0]
            rule, _, _ = lower_engine(self.profile, self.p, phase.eta_slow, seed=self.seed, factored=self.D is not None)
            self.engine = SumOfProductsEngine(rule, w, engine=self.profile.learning, **self.kw)
            self._eta, self.t, self._fb_sum, self._fb_n = phase.eta_slow, 0, 0.0, 0
        self.t += 1
        fb = np.asarray(fb, np.float64)
        if self.D is not None:  # the error units' K e (fb = K D^T e, D^T of full column rank: exact)
            fb = np.linalg.lstsq(self.D.T, fb, rcond=None)[0]
        self._fb_sum, self._fb_n = self._fb_sum + fb, self._fb_n + 1
        none = np.zeros((1, len(pre)), bool)
        self.engine.spikes(self.t, none, np.zeros((1, len(fb)), bool),
                           {"y3": self._graded(self._fb_sum / self._fb_n, self.sc.fb_lsb, -self.sc.y_top)},
                           pre_values=self._graded(pre, self.sc.phi_lsb, 0, self.sc.phi_step))  # fmt: skip
        if self.engine.learn(self.t):
            self.ws = self._deliver(self.engine.weights[0])
            self._fb_sum, self._fb_n = 0.0, 0


# --------------------------------------------------------------------------- the chips


@dataclass(frozen=True)
class BasisLowering:
    """What a chip runs: ``variant`` ``"float32"`` (programmable cores) or ``"engine"``."""

    profile: str
    variant: str
    notes: tuple[str, ...]


def lower(profile: Any, n: int, m: int) -> BasisLowering:
    """Which form of the rule ``profile`` runs for ``n`` neurons and ``m`` basis units, or a
    :class:`LoweringError` naming why none does."""
    kind, name, lrn = profile.learning.kind, profile.name, profile.learning
    where = f"rule 'balanced-basis' on {name}"
    if kind == "programmable":
        return BasisLowering(name, "float32", (
            f"the basis ({m} units with Gaussian tuning) and the rule in float32 on the cores",))  # fmt: skip
    if kind == "sum_of_products" and lrn.third_factor and lrn.params.get("graded_pre_spikes"):
        return BasisLowering(name, "engine", (
            f"rule: dw = Cs*u0*y3*x1, the feedback current (or the error units' K e: the task's error_units) as "
            f"the graded y3, the {m} basis units' outputs as graded pre spikes into x1; the fast weights fixed in "
            "the neurons",))  # fmt: skip
    why = {
        "sum_of_products": "the rule multiplies the feedback current (a graded post factor) by the basis output "
        "(a graded pre value), and its traces are spike traces",
        "eprop_fixed": "its engine is a fixed-function e-prop, which has no rule for a basis projection",
        "none": "it has no learning engine",
    }.get(kind, f"its engine is {kind}")
    raise LoweringError([Problem(where, f"{name} cannot run the basis network's rule: {why}")])


__all__ = ["Basis", "BasisBalanced", "BasisEngineLearner", "BasisLowering", "BasisNet", "BasisScales", "bistable",
           "ideal_readout", "lower", "lower_engine"]  # fmt: skip
