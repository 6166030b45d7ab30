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
  ``x1 = r_j`` the presynaptic trace, on the engine itself (:func:`lower_lms`,
  :class:`EngineLms`: the emulator's bit-accurate sum-of-products engine); or
  RLS on the host every ``learn_every`` steps writing the chip's weights
  (:class:`HostRls`, ``mode="host"``);
* anything else (loihi1: no graded factor; reckon: fixed-function e-prop; xylo: no
  learning): a named refusal.

The network dynamics stay float64 at every level (no chip has a theta neuron; what a chip's
precision costs is isolated in the learning path, as in RFLO's rate check).
"""

from __future__ import annotations

import math
import time
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
    (float64: the reference; float32: a programmable core's FPU). ``lam``: ``lambda`` (P(0) =
    I/lambda); ``valid`` is not needed (padded inputs stay 0), only taken as every learner's is."""

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


def chip_weight_grid(profile: Any, weight_range: float) -> tuple[float, int]:
    """The grid of weights written into a chip's synapses over ``±weight_range``: the LSB and
    the number of LSBs a side (loihi2: 9-bit mixed-sign mantissas keep even values, 2/128
    over ±2)."""
    f = profile.formats.weight
    bits = int(f.mantissa_bits) - (1 if f.mixed_sign_drops_lsb else 0)
    return weight_range / 2.0**bits, 2**bits


class HostRls(Rls):
    """Host-assisted RLS: the host runs float64 RLS on shadow weights every ``learn_every``
    steps and writes them, rounded to nearest onto the chip's weight grid (``lsb``, ``±top``
    LSBs, :func:`chip_weight_grid`), into the chip, which delivers with the rounded weights."""

    def __init__(self, w: np.ndarray, valid: np.ndarray, lam: float, lsb: float, top: int):
        super().__init__(w, valid, lam)
        self.lsb, self.top = float(lsb), int(top)
        self.clipped = 0

    def weights(self) -> np.ndarray:
        m = round_to_int(self.w / self.lsb, "nearest")
        self.clipped += int(np.count_nonzero((m < -self.top) | (m > self.top - 1)))
        return np.clip(m, -self.top, self.top - 1) * self.lsb


class Lms:
    """The LMS (delta) rule's float form, ``dw_ij = -eta e_i r_j``, ``e_i = W_i r - f_i``: what
    :func:`lower_lms` puts on a sum-of-products engine (:class:`EngineLms`)."""

    def __init__(self, w: np.ndarray, valid: np.ndarray, eta: float):
        self.eta, self.valid = float(eta), valid
        self.w = np.array(w, dtype=np.float64)

    def weights(self) -> np.ndarray:
        return self.w

    def update(self, r: np.ndarray, f: np.ndarray) -> None:
        e = np.einsum("nk,nk->n", self.w, r) - f
        self.w = self.w - self.eta * e[:, None] * r * self.valid


@dataclass(frozen=True)
class LmsScales:
    """How the LMS rule's model quantities map onto the engine's integers: ``x1 = r / r_lsb``
    (a spike adds ``impulse = b / r_lsb``), ``y2 = e / e_lsb`` (the neuron sends it rounded to
    nearest, within ``±y_top``), weights ``w / w_lsb`` (9-bit mantissas on loihi2)."""

    w_lsb: float
    r_lsb: float
    e_lsb: float
    impulse: float
    y_top: int
    tau_steps: float


def lower_lms(profile: Any, eta: float, b: float, dt: float, learn_every: int, *, weight_range: float = 2.0,
              r_top: float = 1.0, e_range: float = 4.0, seed: int = 0) -> tuple[Any, LmsScales, list[str]]:  # fmt: skip
    """LMS as a sum-of-products rule (``dw = C * u0 * x1 * y2``, one epoch per update) on
    ``profile``'s engine, its scales, and the notes of what was rounded.

    ``x1`` is the presynaptic trace of ``r`` (impulse ``I``, ``tau = 1 / (b dt)`` steps) over
    ``[0, r_top]`` in the trace's bits; ``y2`` the graded error over ``±e_range``; weights in
    ``±weight_range``. ``C = -eta * e_lsb * r_lsb / w_lsb`` times the engine's division of an
    ``x1 * y2`` product (its width beyond the accumulator), rounded to ``m * 2^e``."""
    from ..learning.rule import EngineRule, Trace
    from .base import LoweringContext, literal, scale_literal
    from .eprop import _Widths

    lrn = profile.learning
    top = 2 ** int(lrn.params["trace_bits"]) - 1
    w_lsb = weight_range / 2.0 ** (int(lrn.synaptic_variable_bits["w"]) - 1)
    sc = LmsScales(w_lsb=w_lsb, r_lsb=r_top / top, e_lsb=e_range / top, impulse=b * top / r_top, y_top=top,
                   tau_steps=1 / (b * dt))  # fmt: skip
    ctx = LoweringContext("rls", profile, dt_ms=dt * 10, weight_lsb=w_lsb, seed=seed, kind="rule")
    c = scale_literal(-eta * sc.e_lsb * sc.r_lsb / w_lsb * _Widths.of(lrn).xy, ctx, "LMS weight scale C")
    rule = EngineRule.from_strings(
        dw=f"{literal(*c)}*u0*x1*y2", engine=lrn, traces={"x1": Trace(sc.impulse, sc.tau_steps)},
        t_epoch=int(learn_every), rng_seed=int(seed), post_traces="graded", graded={"y2": {"source": "input"}},
        source="rls-lms",
    )  # fmt: skip
    ctx.note(f"x1 = r in [0, {r_top:g}] (impulse {sc.impulse:g}), y2 = error in ±{e_range:g} "
             f"({top} levels a side), weights in ±{weight_range:g} ({w_lsb:g} per LSB)")  # fmt: skip
    return rule, sc, ctx.notes


class EngineLms:
    """LMS on a sum-of-products engine (:class:`~neurocomp.learning.engine.SumOfProductsEngine`,
    loihi2's fixed point or the same engine in float64): the presynaptic traces follow the
    network's spikes every step, the neurons send their error as the graded ``y2``, and the
    engine updates the weights at each epoch's end (every ``learn_every`` steps).

    ``arithmetic``, ``float_quantities`` and ``rounding`` are the engine's (attribution)."""

    def __init__(self, w0: np.ndarray, mask: np.ndarray, profile: Any, rule: Any, scales: LmsScales,
                 idx: np.ndarray, valid: np.ndarray, **engine_kw: Any):  # fmt: skip
        from ..learning.engine import SumOfProductsEngine

        self.sc, self.idx, self.valid = scales, idx, valid
        m = round_to_int(w0 / scales.w_lsb, "nearest")
        if profile.formats.weight.mixed_sign_drops_lsb:  # mixed-sign initial weights are truncated (even)
            m = (m >> 1) << 1
        self.engine = SumOfProductsEngine(rule, m, engine=profile.learning, mask=mask, **engine_kw)

    def weights(self) -> np.ndarray:
        w = self.engine.weights[0]
        rows = np.arange(len(w))[:, None]
        return np.where(self.valid, w[rows, self.idx] * self.sc.w_lsb, 0.0)

    def step(self, t: int, spikes: np.ndarray, error: np.ndarray | None) -> bool:
        """Step ``t`` (1-based, counted over the whole run): the spikes, and the neurons' error
        (None outside the training window: y2 = 0, nothing learned). True if the weights changed."""
        y2 = np.zeros(len(spikes)) if error is None else error / self.sc.e_lsb
        if self.engine.var_fixed["y2"]:  # the neuron sends an integer
            y2 = np.clip(round_to_int(y2, "nearest"), -self.sc.y_top, self.sc.y_top)
        self.engine.spikes(t, spikes[None], spikes[None], {"y2": y2[None]})
        return self.engine.learn(t) and error is not None


# --------------------------------------------------------------------------- training


class KimChow:
    """One network for a ``kimchow-rls`` task, drawn from ``seed``: the initial weights, each
    neuron's plastic inputs, and the initial phases of the training and the test runs.

    :meth:`train` runs loops of the trial with a learner (:class:`Rls`, :class:`HostRls`,
    :class:`Lms` updating every ``learn_every`` steps in the window, as run_train.jl does, or
    :class:`EngineLms` stepping with the network; the state carries over from loop to loop);
    :meth:`test` runs the trial from fresh phases with the learner's weights and returns the
    drives. ``seconds``: wall time of the dynamics and of the learner's updates so far (the
    host's share in host-assisted mode)."""

    def __init__(self, task: Any, seed: int = 0):
        cfg = task.config
        self.cfg, self.n = cfg, int(cfg["n"])
        rng = np.random.default_rng([seed, 3])
        self.w0 = init_weights(self.n, float(cfg["p"]), float(cfg["g"]), rng)
        self.theta_train, self.theta_test = 2 * np.pi * rng.random(self.n), 2 * np.pi * rng.random(self.n)
        self.idx, self.valid = plastic_inputs(self.w0)
        self.rows = np.broadcast_to(np.arange(self.n)[:, None], self.idx.shape)  # the post of each idx entry
        self.wp0 = np.where(self.valid, self.w0[self.rows, self.idx], 0.0)
        self.ext, self.f = np.asarray(task.inputs)[:, 0], np.asarray(task.targets)[:, 0]
        self.net: ThetaNetwork | None = None
        self.seconds = {"dynamics": 0.0, "learning": 0.0}
        self.updates = 0  # weight updates so far
        self.t = 0  # training steps so far (an engine's clock)

    @property
    def k_max(self) -> int:
        return self.idx.shape[1]

    def dense(self, wp: np.ndarray) -> np.ndarray:
        """The ``[N, N]`` recurrent matrix holding the plastic weights ``wp [N, K]``."""
        w = np.zeros((self.n, self.n))
        w[self.rows[self.valid], self.idx[self.valid]] = wp[self.valid]
        return w

    def _run(self, net: ThetaNetwork, w: np.ndarray, learner: Any = None, record: bool = False) -> np.ndarray | None:
        """One pass over the trial. As run_train.jl: the drive of step ``i`` is ``W r`` from the
        end of step ``i - 1``, computed before that step's update. An exact learner updates every
        ``learn_every`` steps in the window from its second step on; an engine learner
        (``step``) sees every step's spikes and, in the window, the neurons' errors."""
        cfg, t0 = self.cfg, time.perf_counter()
        every, off, steps = int(cfg["learn_every"]), int(cfg["stim_off"]), len(self.f)
        out = np.empty((steps, self.n)) if record else None
        learning = 0.0
        u = w @ net.r
        for i in range(1, steps + 1):  # 1-based steps, as the example code
            spikes = net.step(u + self.ext[i - 1])
            u = w @ net.r
            if record:
                out[i - 1] = u
            if learner is None:
                continue
            t1, window = time.perf_counter(), i > off + 1
            if hasattr(learner, "step"):
                changed = learner.step(self.t + i, spikes, u - self.f[i - 1] if window else None)
            elif changed := window and i % every == 0:
                learner.update(np.where(self.valid, net.r[self.idx], 0.0), self.f[i - 1])
            if changed:
                w = self.dense(learner.weights())
                self.updates += 1
            learning += time.perf_counter() - t1
        if learner is not None:
            self.t += steps
        self.seconds["learning"] += learning
        self.seconds["dynamics"] += time.perf_counter() - t0 - learning
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


__all__ = ["B_SYN", "DT", "EngineLms", "HostRls", "KimChow", "Lms", "LmsScales", "Rls", "RlsLowering", "ThetaNetwork",
           "chip_weight_grid", "init_weights", "lower", "lower_lms", "max_inputs", "plastic_inputs",
           "rls_update"]  # fmt: skip
