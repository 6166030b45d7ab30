"""Spiking RLS (Kim & Chow 2018, eLife 7:e37124): recursive least squares on the recurrent
synapses of a spiking network, so that each neuron's synaptic drive follows a target.

The float form follows the authors' example code (``chrismkkim/SpikeLearning``: SpikeLearn.jl,
run_train.jl, run_test.jl). Time is in the code's units (1 unit = 10 ms; ``dt = 0.1`` unit =
1 ms). ``N`` theta neurons (quadratic integrate-and-fire in phase form)::

    dtheta_i/dt = 1 - cos theta_i + (1 + cos theta_i) (u_i + I_ext,i)      RK4, spike when theta passes pi
    dr_j/dt     = -b r_j,  r_j += b at a spike of j                        (b = 1/2 per unit: tau_s = 20 ms)
    u_i         = sum_j W_ij r_j                                           (the synaptic drive)

Every ``learn_every`` steps inside the training window, for every neuron ``i`` over its plastic
inputs ``j in S_i`` (the nonzero entries of its initial row, ``K_i ~ p N`` of them)::

    k = P_i r,  c = 1 / (1 + r^T k),  P_i <- P_i - c k k^T,  e_i = W_i r - f_i(t),  W_i <- W_i - c e_i k

with ``P_i(0) = I / lambda`` and ``f_i`` neuron ``i``'s target drive. :func:`rls_update` is that
update for all neurons at once (inputs padded to ``K = max K_i`` with ``r = 0``, which leaves
the padded block of ``P`` at ``I / lambda`` and the padded weights at 0, so padding is exact).

Chips (:func:`lower`): RLS is not a sum of products (``P_i r`` mixes all of a neuron's
synapses) and keeps ``sum_i K_i^2 ~ p^2 N^3`` entries of ``P``.

* programmable cores (spinnaker2): the exact rule in the core's float32 (:class:`Rls` with
  ``dtype=float32``) where a neuron's ``P_i`` (packed symmetric, ``K(K+1)/2`` words) and its
  ``K`` weights fit the core's synaptic memory (``capacity.synaptic_memory_bits_per_core``);
* a sum-of-products engine with a graded third factor (loihi2): the LMS (delta) rule
  ``dw = -eta * y2 * x1`` (:class:`Lms`), with ``y2 = e_i`` the neuron's graded error and
  ``x1 = r_j`` the presynaptic trace, in the engine's widths (:class:`LmsFixedPoint`); or
  RLS on the host every ``learn_every`` steps writing the chip's weights
  (:class:`HostRls`, ``mode="host"``);
* anything else (loihi1: no graded factor; reckon: fixed-function e-prop; xylo: no
  learning): a named refusal.

The network dynamics stay float64 at every level (no chip has a theta neuron; what a chip's
precision costs is isolated in the learning path, as in RFLO's rate check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arith.rounding import round_to_int
from ..errors import Problem
from .base import LoweringError

# the example code's constants (SpikeLearn.jl); every one can be overridden in the task
B_SYN = 0.5  # 1/tau_s, per unit (tau_s = 2 units = 20 ms)
DT = 0.1  # units per step (1 ms)


# --------------------------------------------------------------------------- the network


def init_weights(n: int, p: float, g: float, rng: np.random.Generator) -> np.ndarray:
    """``g N(0,1) Bernoulli(p) / sqrt(N p)`` without autapses (genw_sparse.jl), ``[N, N]``."""
    w = rng.standard_normal((n, n)) * (rng.random((n, n)) < p)
    np.fill_diagonal(w, 0.0)
    return g * w / math.sqrt(n * p)


def plastic_inputs(w0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each neuron's plastic inputs (its row's nonzero entries), padded: ``idx [N, K]`` presynaptic
    indices (0 in the padding) and ``valid [N, K]`` bool, ``K = max_i K_i``."""
    nz = w0 != 0
    counts = nz.sum(axis=1)
    k = max(1, int(counts.max()))
    idx = np.zeros((len(w0), k), dtype=np.int64)
    valid = np.arange(k)[None, :] < counts[:, None]
    idx[valid] = np.nonzero(nz)[1]  # row-major: each row's columns in order
    return idx, valid


class ThetaNetwork:
    """Kim & Chow's theta-neuron network (float64), stepped as run_train.jl/run_test.jl do.

    ``theta``: phases (rad, never wrapped, as in the example code); ``r``: filtered spike trains
    (per unit); ``u = W r``: the synaptic drives. ``step`` returns the spikes of the step (bool).
    """

    def __init__(self, theta0: np.ndarray, b: float = B_SYN, dt: float = DT):
        self.theta = np.array(theta0, dtype=np.float64)
        self.r = np.zeros_like(self.theta)
        self.b, self.dt = float(b), float(dt)
        x = -self.b * self.dt  # RK4 of dr/dt = -b r is a fixed factor per step
        self.r_decay = 1 + x + x * x / 2 + x**3 / 6 + x**4 / 24

    def _dtheta(self, th: np.ndarray, drive: np.ndarray) -> np.ndarray:
        c = np.cos(th)
        return self.dt * (1 - c + drive * (1 + c))

    def step(self, drive: np.ndarray) -> np.ndarray:
        """One RK4 step of the phases under ``drive = u + I_ext``; a spike where the phase
        passes the next odd multiple of pi; ``r`` decays and takes ``b`` per spike."""
        th = self.theta
        k1 = self._dtheta(th, drive)
        k2 = self._dtheta(th + k1 / 2, drive)
        k3 = self._dtheta(th + k2 / 2, drive)
        k4 = self._dtheta(th + k3, drive)
        d = (k1 + 2 * k2 + 2 * k3 + k4) / 6
        spikes = (d > 0) & (d > np.mod(np.pi - np.mod(th, 2 * np.pi), 2 * np.pi))
        self.theta = th + d
        self.r = self.r * self.r_decay + self.b * spikes
        return spikes


# --------------------------------------------------------------------------- the learners


def rls_update(P: np.ndarray, w: np.ndarray, r: np.ndarray, f: np.ndarray) -> None:
    """One RLS step for every neuron at once, in place, in the arrays' dtype.

    ``P [N, K, K]``: inverse correlation matrices; ``w [N, K]``: plastic weights; ``r [N, K]``:
    each neuron's presynaptic ``r`` (0 in the padding); ``f [N]``: the target drives."""
    k = np.matmul(P, r[:, :, None])[:, :, 0]
    c = 1 / (1 + np.einsum("nk,nk->n", r, k))
    e = np.einsum("nk,nk->n", w, r) - f
    P -= (c[:, None, None] * k[:, :, None]) * k[:, None, :]
    w -= (c * e)[:, None] * k


class Rls:
    """Exact RLS (:func:`rls_update`) with ``P``, the weights and the products in ``dtype``
    (float64: the reference; float32: a programmable core's FPU). ``lam``: ``lambda`` (P(0) = I/lambda)."""

    def __init__(self, w: np.ndarray, valid: np.ndarray, lam: float, dtype=np.float64):
        n, k = w.shape
        self.dtype = np.dtype(dtype)
        self.w = w.astype(self.dtype)
        self.P = np.broadcast_to(np.eye(k, dtype=self.dtype) / self.dtype.type(lam), (n, k, k)).copy()

    def weights(self) -> np.ndarray:
        """The weights the network delivers with (float64 view of the learned ones)."""
        return self.w.astype(np.float64)

    def update(self, r: np.ndarray, f: np.ndarray) -> None:
        rls_update(self.P, self.w, r.astype(self.dtype), f.astype(self.dtype))


class HostRls(Rls):
    """Host-assisted RLS: the host runs float64 RLS on shadow weights every ``learn_every``
    steps and writes them, rounded to nearest onto the chip's weight grid (``lsb``, ``±top``
    LSBs), into the chip, which delivers with the rounded weights."""

    def __init__(self, w: np.ndarray, valid: np.ndarray, lam: float, lsb: float, top: int):
        super().__init__(w, valid, lam)
        self.lsb, self.top = float(lsb), int(top)
        self.clipped = 0

    def weights(self) -> np.ndarray:
        m = round_to_int(self.w / self.lsb, "nearest")
        self.clipped += int(np.count_nonzero((m < -self.top) | (m > self.top - 1)))
        return np.clip(m, -self.top, self.top - 1) * self.lsb


@dataclass(frozen=True)
class LmsFixedPoint:
    """The formats of the LMS rule on a sum-of-products engine (signed values ``m * lsb``).

    ``weight_bits`` over ``±weight_range`` (a power of two; mixed-sign weights keep even
    mantissas when ``weight_drop_lsb``); ``trace_bits`` (unsigned) for ``x1 = r_j`` over
    ``[0, trace_range)``; ``signal_bits`` (signed) for the error ``y2 = e_i`` over
    ``±signal_range``; ``rounding`` of the weight updates and the traces/signals
    (``"stochastic"`` or ``"nearest"``). ``quantize``: which of weights, traces, signal are
    in fixed point (the others float64, for attribution).
    """

    weight_bits: int = 9
    weight_drop_lsb: bool = True
    weight_range: float = 2.0
    trace_bits: int = 7
    trace_range: float = 2.0
    signal_bits: int = 8
    signal_range: float = 2.0
    rounding: str = "stochastic"
    quantize: frozenset = frozenset({"weights", "traces", "signal"})

    @classmethod
    def from_profile(cls, profile: Any, **overrides: Any) -> LmsFixedPoint:
        """The widths of ``profile``'s engine: ``w``'s stored width, the 7-bit traces for
        ``x1``, a graded third factor of the trace width plus a sign for ``y2``, stochastic
        rounding where the engine has it."""
        lrn = profile.learning
        kw: dict[str, Any] = {
            "weight_bits": int(lrn.synaptic_variable_bits["w"]),
            "weight_drop_lsb": bool(profile.formats.weight.mixed_sign_drops_lsb),
            "trace_bits": int(lrn.params["trace_bits"]),
            "signal_bits": int(lrn.params["trace_bits"]) + 1,
            "rounding": "stochastic" if lrn.stochastic_rounding else "nearest",
        }
        kw.update(overrides)
        if "quantize" in kw:
            kw["quantize"] = frozenset(kw["quantize"])
        return cls(**kw)

    @property
    def weight_lsb(self) -> float:
        return self.weight_range / 2.0 ** (self.weight_bits - 1) * (2 if self.weight_drop_lsb else 1)

    @property
    def weight_top(self) -> int:
        return 2 ** (self.weight_bits - 1 - self.weight_drop_lsb)

    def describe(self) -> str:
        q = self.quantize
        return ", ".join([
            f"{self.weight_bits - self.weight_drop_lsb}-bit weights in ±{self.weight_range:g}" if "weights" in q
            else "float weights",
            f"{self.trace_bits}-bit x1 = r in [0, {self.trace_range:g})" if "traces" in q else "float traces",
            f"{self.signal_bits}-bit y2 = error in ±{self.signal_range:g}" if "signal" in q else "float error",
        ]) + f"; {self.rounding} rounding"  # fmt: skip


class Lms:
    """The LMS (delta) rule ``dw_ij = -eta e_i r_j`` (the loihi2 lowering: ``dw = -eta y2 x1``),
    in float64 or, with ``fixed``, in the engine's formats (:class:`LmsFixedPoint`)."""

    def __init__(self, w: np.ndarray, valid: np.ndarray, eta: float, fixed: LmsFixedPoint | None = None,
                 seed: int = 0):  # fmt: skip
        self.eta, self.fixed, self.valid = float(eta), fixed, valid
        self.rng = np.random.default_rng(seed)
        self.clipped = 0
        self.w = np.array(w, dtype=np.float64)
        if self._q("weights"):
            self.w = self._grid(self.w, fixed.weight_lsb, -fixed.weight_top, fixed.weight_top - 1, "nearest")

    def _q(self, what: str) -> bool:
        return self.fixed is not None and what in self.fixed.quantize

    def _grid(self, x: np.ndarray, lsb: float, lo: int, hi: int, mode: str | None = None) -> np.ndarray:
        m = round_to_int(x / lsb, mode or self.fixed.rounding, self.rng)
        self.clipped += int(np.count_nonzero((m < lo) | (m > hi)))
        return np.clip(m, lo, hi) * lsb

    def weights(self) -> np.ndarray:
        return self.w

    def update(self, r: np.ndarray, f: np.ndarray) -> None:
        fx = self.fixed
        e = np.einsum("nk,nk->n", self.w, r) - f
        if self._q("traces"):
            r = self._grid(r, fx.trace_range / 2.0**fx.trace_bits, 0, 2**fx.trace_bits - 1)
        if self._q("signal"):
            top = 2 ** (fx.signal_bits - 1)
            e = self._grid(e, fx.signal_range / top, -top, top - 1)
        w = self.w - self.eta * e[:, None] * r * self.valid
        if self._q("weights"):
            w = self._grid(w, fx.weight_lsb, -fx.weight_top, fx.weight_top - 1)
        self.w = w


# --------------------------------------------------------------------------- training


class KimChow:
    """One network for a ``kimchow-rls`` task, drawn from ``seed``: the initial weights, each
    neuron's plastic inputs, and the initial phases of the training and the test runs.

    :meth:`train` runs loops of the trial with a learner (:class:`Rls`, :class:`HostRls`,
    :class:`Lms`) updating every ``learn_every`` steps in the window, as run_train.jl does (the
    state carries over from loop to loop); :meth:`test` runs the trial from fresh phases with
    the learner's weights and returns the drives. ``seconds``: wall time of the dynamics and of
    the learner's updates so far (the host's share in host-assisted mode)."""

    def __init__(self, task: Any, seed: int = 0):
        import time

        self._clock = time.perf_counter
        cfg = task.config
        self.cfg, self.n = cfg, int(cfg["n"])
        rng = np.random.default_rng([seed, 3])
        self.w0 = init_weights(self.n, float(cfg["p"]), float(cfg["g"]), rng)
        self.theta_train, self.theta_test = 2 * np.pi * rng.random(self.n), 2 * np.pi * rng.random(self.n)
        self.idx, self.valid = plastic_inputs(self.w0)
        self._rows = np.broadcast_to(np.arange(self.n)[:, None], self.idx.shape)
        self.wp0 = np.where(self.valid, self.w0[self._rows, self.idx], 0.0)
        self.ext, self.f = np.asarray(task.inputs)[:, 0], np.asarray(task.targets)[:, 0]
        self.net: ThetaNetwork | None = None
        self.seconds = {"dynamics": 0.0, "learning": 0.0}
        self.updates = 0

    @property
    def k_max(self) -> int:
        return self.idx.shape[1]

    def dense(self, wp: np.ndarray) -> np.ndarray:
        """The ``[N, N]`` recurrent matrix holding the plastic weights ``wp [N, K]``."""
        w = np.zeros((self.n, self.n))
        w[self._rows[self.valid], self.idx[self.valid]] = wp[self.valid]
        return w

    def _run(self, net: ThetaNetwork, w: np.ndarray, learner: Any = None, record: bool = False) -> np.ndarray | None:
        cfg, t0 = self.cfg, self._clock()
        every, off = int(cfg["learn_every"]), int(cfg["stim_off"])
        out = np.empty((len(self.f), self.n)) if record else None
        learning = 0.0
        u = w @ net.r
        for i in range(1, len(self.f) + 1):  # 1-based steps, as the example code
            net.step(u + self.ext[i - 1])
            if learner is not None and i > off + 1 and i % every == 0:
                t1 = self._clock()
                learner.update(np.where(self.valid, net.r[self.idx], 0.0), self.f[i - 1])
                w = self.dense(learner.weights())
                self.updates += 1
                learning += self._clock() - t1
            u = w @ net.r
            if record:
                out[i - 1] = u
        self.seconds["learning"] += learning
        self.seconds["dynamics"] += self._clock() - t0 - learning
        return out

    def train(self, learner: Any, loops: int = 1) -> None:
        """``loops`` passes over the trial with ``learner`` learning (continuing the state)."""
        if self.net is None:
            self.net = ThetaNetwork(self.theta_train, float(self.cfg["b"]), float(self.cfg["dt"]))
        for _ in range(loops):
            self._run(self.net, self.dense(learner.weights()), learner)

    def test(self, wp: np.ndarray) -> np.ndarray:
        """The drives ``u [T, N]`` of a run from the test phases with weights ``wp [N, K]``."""
        net = ThetaNetwork(self.theta_test, float(self.cfg["b"]), float(self.cfg["dt"]))
        return self._run(net, self.dense(wp), record=True)


# --------------------------------------------------------------------------- the chips


def p_words(k: int) -> int:
    """Words of one neuron's ``P`` stored packed symmetric (``P - c k k^T`` stays symmetric)."""
    return k * (k + 1) // 2


@dataclass(frozen=True)
class RlsLowering:
    """What runs on a chip: ``variant`` (``"rls"``: exact, ``"lms"``), ``dtype`` of the
    learning path, and the notes (memory, cores, what is approximated)."""

    profile: str
    variant: str
    dtype: str
    notes: tuple[str, ...]
    max_inputs: int | None = None  # largest K whose P fits a core (programmable)


def max_inputs(profile: Any, word_bits: int = 32) -> int:
    """The largest ``K`` with ``P`` (packed) and ``K`` weights in one core's synaptic memory."""
    bits = int(profile.capacity.synaptic_memory_bits_per_core)
    k = int(math.isqrt(2 * bits // word_bits))
    while (p_words(k) + k) * word_bits > bits:
        k -= 1
    return k


def refusal_text(n: int, p: float) -> str:
    """Why RLS is not a chip's learning rule: the P memory and the non-local ``P r``."""
    return (f"RLS keeps a K_i x K_i matrix P_i per neuron: sum_i K_i^2 ~ p^2 N^3 = {p * p * n**3:,.0f} entries "
            f"for N = {n}, p = {p:g} (weights: p N^2 = {p * n * n:,.0f}), and its update is not a sum of products "
            "(k = P_i r mixes all of a neuron's synapses)")  # fmt: skip


def lower(profile: Any, n: int, k_max: int, p: float, mode: str = "chip") -> RlsLowering:
    """Which form of spiking RLS ``profile`` runs for ``n`` neurons with at most ``k_max``
    plastic inputs each, or a :class:`LoweringError` naming why none does. ``mode``:
    ``"chip"`` (learning on the chip) or ``"host"`` (RLS on the host, the chip's weights
    written every update)."""
    kind, name = profile.learning.kind, profile.name
    where = f"rule 'rls' on {name}"
    if mode not in ("chip", "host"):
        raise LoweringError([Problem(where, f"mode must be 'chip' or 'host', got {mode!r}")])
    if mode == "host":
        if profile.arithmetic != "fixed" or "w" not in profile.learning.synaptic_variable_bits:
            msg = f"host-assisted RLS writes a fixed-point engine's weights; {name}'s learning engine is {kind}"
            raise LoweringError([Problem(where, msg + " (run RLS on its cores instead)")])
        return RlsLowering(name, "rls", "float64", (
            "host-assisted: float64 RLS on the host, weights rounded to nearest onto the chip's grid and written "
            "every update; the chip delivers with them",))  # fmt: skip
    if kind == "programmable":
        kmax = max_inputs(profile)
        cap = profile.capacity
        per_core = min(cap.neurons_per_core, cap.synaptic_memory_bits_per_core // (32 * (p_words(k_max) + k_max)))
        if k_max > kmax or per_core < 1:
            raise LoweringError([Problem(where, f"a neuron has K = {k_max} plastic inputs; its P (K(K+1)/2 float32 "
                f"words, packed) and weights fit a core's {cap.synaptic_memory_bits_per_core} synaptic-memory bits "
                f"only for K <= {kmax} (capacity.synaptic_memory_bits_per_core)")])  # fmt: skip
        cores = -(-n // per_core)
        if cores > cap.chips * cap.cores_per_chip:
            raise LoweringError([Problem(where, f"{n} neurons at {per_core} per core need {cores} cores; "
                                         f"{name} has {cap.chips * cap.cores_per_chip}")])  # fmt: skip
        return RlsLowering(name, "rls", "float32", (
            f"exact RLS in float32 on the cores: P packed symmetric, {per_core} neuron(s) per core (K <= {k_max}; "
            f"limit K <= {kmax} from capacity.synaptic_memory_bits_per_core = {cap.synaptic_memory_bits_per_core}), "
            f"{cores} cores",
            f"each neuron needs its target drive f_i(t) as input: {n} target streams",
        ), kmax)  # fmt: skip
    if kind == "sum_of_products" and profile.learning.third_factor:
        return RlsLowering(name, "lms", "fixed", (
            refusal_text(n, p) + ": lowered to LMS dw = -eta * y2 * x1 (y2 = e_i, the neuron's graded error; "
            "x1 = r_j, the presynaptic trace)",
            f"each neuron needs its target drive f_i(t) to form e_i: {n} target streams",
        ))  # fmt: skip
    why = {
        "sum_of_products": "its engine has no graded third factor to carry the error e_i, so LMS does not map either",
        "eprop_fixed": "its engine is a fixed-function e-prop",
        "none": "it has no learning engine",
    }.get(kind, f"its engine is {kind}")
    raise LoweringError([Problem(where, f"{refusal_text(n, p)}; {name}: {why}")])


__all__ = ["B_SYN", "DT", "HostRls", "Lms", "LmsFixedPoint", "Rls", "RlsLowering", "ThetaNetwork", "init_weights",
           "lower", "max_inputs", "plastic_inputs", "rls_update"]  # fmt: skip
