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

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import Problem
from .balanced import (
    BalancedNet,
    FloatLearner,
    Phase,
    SlowEngineLearner,
    SlowScales,
    cv2_isi,
    cv_isi,
    decoder,
    lower_slow_engine,
    rel_error,
    stage_rates,
)
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


def _refuse_learned_fast(profile: Any, p: dict) -> None:
    """The engine's form keeps the derivation's fast weights: a named refusal of ``fast_steps > 0``."""
    if int(p.get("fast_steps", 0)) > 0:
        raise LoweringError([Problem(f"rule 'balanced-basis' on {profile.name}", (
            f"fast_steps = {p['fast_steps']}: the engine's form keeps the derivation's fast weights; learned fast "
            "weights run in float (set fast_steps to 0)"))])  # fmt: skip


def lower_engine(profile: Any, p: dict, eta: float, *, seed: int = 0, factored: bool = False,
                 ) -> tuple[Any, SlowScales, list[str]]:  # fmt: skip
    """The rule ``dw = Cs*u0*y3*x1`` on ``profile``'s engine for rate ``eta``, the basis outputs
    as ``x1``: :func:`.balanced.lower_slow_engine` (``p``: the task's config, with ``w_range``,
    ``fb_range``, ``phi_range``, ``epoch_steps``; ``theta_range``, ``err_range`` where
    ``factored``), after a named refusal of learned fast weights (before a check's first level)."""
    _refuse_learned_fast(profile, p)
    return lower_slow_engine(profile, p, eta, seed=seed, factored=factored, name="balanced-basis")


class BasisEngineLearner(SlowEngineLearner):
    """The rule on a sum-of-products engine (:class:`.balanced.SlowEngineLearner`), the basis
    units' outputs as the graded pre spikes, the fast weights the derivation's (fixed)."""

    def __init__(self, wf: np.ndarray, w0: np.ndarray, profile: Any, p: dict, seed: int = 0,
                 D: np.ndarray | None = None, **engine_kw: Any):  # fmt: skip
        _refuse_learned_fast(profile, p)
        super().__init__(wf, w0, profile, p, seed, D=D, name="balanced-basis", **engine_kw)


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


__all__ = ["Basis", "BasisBalanced", "BasisEngineLearner", "BasisLowering", "BasisNet", "bistable",
           "ideal_readout", "lower", "lower_engine"]  # fmt: skip
