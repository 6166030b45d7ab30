"""e-prop's float64 reference and hand-written BPTT for recurrent LIF/ALIF networks.

Independent of the emulator and of the rules' lowerings on purpose: it is their float check.
The neurons' step is :func:`neurocomp.reference.neuron.step` (shared with
:class:`~neurocomp.reference.simulator.Reference`); the pseudo-derivative and the softmax
error come from :mod:`neurocomp.learning.quantities`.

The architecture is e-prop's: spike inputs -> a recurrent layer of LIF and ALIF neurons ->
one leaky readout (LI). :class:`RecurrentSNN` holds the weights and the per-neuron
constants; its discrete-time conventions (input scaling, reset timing, latencies) are a
:class:`~neurocomp.reference.conventions.Conventions`. Per step ``t`` (``s_v``, ``s_y``: the
input scales, 1 or one minus the decay; ``x``: inputs ``input_latency`` steps ago; ``zr``:
recurrent spikes ``recurrent_latency`` steps ago)::

    v_t = alpha v_{t-1} - r z_{t-1} + s_v (W_in x + W_rec zr)      subtractive reset, r = v_th or alpha v_th
    v_t = alpha (1 - z_{t-1}) v_{t-1} + s_v (...)                   reset to zero
    a_t = rho a_{t-1} + c z_{t-1}                                   c = 1 (next-step) or rho (immediate)
    A_t = v_th + beta a_t;   z_t = H(v_t - A_t), masked for n_ref steps after a spike
    psi_t = gamma / v_th h(v_t, A_t, v_th)                         (0 while refractory)
    y_t = kappa y_{t-1} + s_y W_out z_{t - readout_latency}

``h``: the pseudo-derivative's triangle, :func:`~neurocomp.learning.quantities.pseudo_derivative`.

Loss: mse ``E = mean_b 0.5 sum_t |y - y*|^2``, or ce ``E = mean_b sum_{t labelled} -y* . log softmax(y)``
(summed over the labelled steps, not averaged: every level applies each labelled step's error
``softmax(y) - y*`` as it comes, so ``lr`` means one step size everywhere; Bellec's mean over
the 150-step window is this loss over 150); steps whose target is NaN carry no loss. Rate
regularization (trial form, :meth:`RecurrentSNN.eprop` and BPTT) ``0.5 reg sum_j (f_j - f0)^2``,
``f_j`` the mean spike count per step over time and batch. The online form
(:meth:`RecurrentSNN.run_online`, the chips) adds ``reg (f_j^t - f0)`` to the learning signal
of every step instead, ``f_j^t`` the running rate: see :mod:`neurocomp.learning.quantities`.

Gradients (all float64):

* :meth:`RecurrentSNN.eprop_online` is e-prop as the paper defines it: per-synapse
  eligibility vectors (``eps_v``, and ``eps_a`` for ALIF), the eligibility
  ``e = psi (eps_v - beta eps_a)``, its readout filter ``e_bar`` (kappa, with ``s_y`` and the
  readout latency), the learning signal ``L = B err`` and ``g = sum_t L_t e_bar_t`` plus the
  regularizer's ``R_j sum_t e_t``. ``O(T n_rec n_pre)`` memory per step.
* :meth:`RecurrentSNN.eprop` computes the same sum through the adjoint of the eligibility
  recursion (``eprop-baselines.md`` §1: "exactly equivalent adjoint filter"): one backward
  pass over ``[batch, n_rec]`` vectors instead of ``[batch, n_rec, n_pre]`` traces. The two
  agree to rounding (a test checks 1e-12).
* :meth:`RecurrentSNN.bptt` is backpropagation through time written out by hand, with the
  same pseudo-derivative, optionally with the recurrent spike path and/or the reset path
  stopped. With both stopped and ``B = W_out^T`` it equals e-prop (symmetric) exactly; the
  adaptation path through the neuron's own spikes is always kept, as e-prop keeps it.

``spike="smooth"`` replaces the step by ``z = gamma S((v - A) / v_th)`` whose derivative is
exactly ``psi`` (``S``: the integral of the triangle), which makes the network smooth for
finite-difference checks of BPTT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import ModelError, Problem
from ..learning.quantities import RATE_TAU_MS, feedback_matrix, pseudo_derivative, rate_decay, softmax, softmax_error
from . import neuron, online
from .blocks import dense_blocks
from .conventions import Conventions

FEEDBACKS = ("random", "symmetric", "adaptive")
LOSSES = ("mse", "ce")


@dataclass(frozen=True)
class EpropParams:
    """e-prop's hyperparameters (``eprop.md`` §1.3–1.6).

    ``lr``: learning rate (plain gradient descent unless an optimizer is given to
    :meth:`RecurrentSNN.train`). ``feedback``: random (``B`` fixed), symmetric (``B = W_out^T``
    at every step) or adaptive (``B`` random, learning with ``W_out``'s update). ``loss``:
    mse or ce. ``dampening``: gamma of the pseudo-derivative. ``reg``: rate regularization
    strength, ``reg_rate_hz`` its target; ``reg_tau_ms`` the time constant of the online form's
    running rate (:func:`~neurocomp.learning.quantities.running_rate`; the trial gradients
    use the trial's mean rate, the rate of the regularizer's loss). ``seed``: of the random
    ``B ~ N(0, 1/n_rec)``."""

    lr: float
    feedback: str = "random"
    loss: str = "mse"
    dampening: float = 0.3
    reg: float = 0.0
    reg_rate_hz: float = 10.0
    reg_tau_ms: float = RATE_TAU_MS
    seed: int = 0

    def __post_init__(self) -> None:
        bad = []
        if self.feedback not in FEEDBACKS:
            bad.append(f"feedback: {self.feedback!r} is not one of {', '.join(FEEDBACKS)}")
        if self.loss not in LOSSES:
            bad.append(f"loss: {self.loss!r} is not one of {', '.join(LOSSES)}")
        if not isinstance(self.reg_tau_ms, (int, float)) or not self.reg_tau_ms > 0:
            bad.append(f"reg_tau_ms: must be a number of ms > 0, got {self.reg_tau_ms!r}")
        for k in ("lr", "dampening", "reg", "reg_rate_hz", "reg_tau_ms"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                bad.append(f"{k}: must be a finite number >= 0, got {v!r}")
        if bad:
            raise ModelError([Problem("eprop parameters", b) for b in bad])

    @classmethod
    def from_mapping(cls, p: Mapping[str, Any]) -> EpropParams:
        """From a rule's YAML parameters (keys the reference does not use are ignored)."""
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in p.items() if k in keys})


@dataclass
class Trace:
    """One forward pass, ``[T, batch, n]`` arrays: ``xin`` and ``zr`` are the inputs and
    recurrent spikes as they reach ``v`` (latencies applied, unscaled), ``v`` before the
    reset, ``A`` the threshold used, ``psi`` the pseudo-derivative, ``y`` the readout."""

    xin: np.ndarray
    zr: np.ndarray
    v: np.ndarray
    a: np.ndarray
    A: np.ndarray
    z: np.ndarray
    psi: np.ndarray
    y: np.ndarray


@dataclass
class RecurrentSNN:
    """Weights and constants of an e-prop network (float64 arrays).

    ``W_in`` ``[n_rec, n_in]``, ``W_rec`` ``[n_rec, n_rec]``, ``W_out`` ``[n_out, n_rec]`` in
    model units (a weight of 1 moves ``v`` by ``1 / s_v``); ``alpha``, ``rho`` per-step decays
    and ``v_th``, ``beta`` (model voltage units; 0 for LIF), ``n_ref`` (steps) and
    ``zero_reset`` per recurrent neuron; ``kappa``: the readout's decay. ``mask_in`` /
    ``mask_rec``: which entries are synapses (absent blocks and autapses are 0 and stay 0)."""

    W_in: np.ndarray
    W_rec: np.ndarray
    W_out: np.ndarray
    alpha: np.ndarray
    v_th: np.ndarray
    beta: np.ndarray
    rho: np.ndarray
    kappa: float
    conventions: Conventions = field(default_factory=Conventions.bellec)
    n_ref: np.ndarray | None = None
    zero_reset: np.ndarray | None = None
    mask_in: np.ndarray | None = None
    mask_rec: np.ndarray | None = None
    blocks: Mapping[str, tuple[str, slice, slice]] = field(default_factory=dict)  # projection -> (matrix, rows, cols)
    dt_ms: float = 1.0

    def __post_init__(self) -> None:
        n = self.n_rec
        f = np.float64
        self.W_in, self.W_rec, self.W_out = (np.array(w, f) for w in (self.W_in, self.W_rec, self.W_out))
        self.alpha, self.v_th, self.beta, self.rho = (
            np.broadcast_to(np.asarray(x, f), (n,)).copy() for x in (self.alpha, self.v_th, self.beta, self.rho)
        )
        self.n_ref = np.zeros(n, np.int64) if self.n_ref is None else np.broadcast_to(self.n_ref, (n,)).astype(int)
        zr = np.zeros(n, bool) if self.zero_reset is None else np.broadcast_to(self.zero_reset, (n,)).astype(bool)
        self.zero_reset = zr
        if self.mask_rec is None:
            self.mask_rec = 1.0 - np.eye(n)
        if self.mask_in is None:
            self.mask_in = np.ones_like(self.W_in)
        c = self.conventions
        if c.recurrent_latency < 1:
            msg = "recurrent_latency must be >= 1 (a spike cannot feed back at once)"
            raise ModelError([Problem("conventions", msg)])
        if (self.n_ref > 0).any() and c.reset_timing == "immediate":
            raise ModelError(
                [
                    Problem(
                        "refractoriness",
                        "the reference models Bellec's refractoriness (spikes and psi masked, v integrating); "
                        "the chip's (v held) is not modelled: use refractory_steps 0 with chip conventions",
                    )
                ]
            )

    # -- shapes and derived constants ------------------------------------------------------
    @property
    def n_in(self) -> int:
        return self.W_in.shape[1]

    @property
    def n_rec(self) -> int:
        return self.W_rec.shape[0]

    @property
    def n_out(self) -> int:
        return self.W_out.shape[0]

    def _scales(self) -> tuple[np.ndarray, float]:
        if self.conventions.input_scale == "one_minus_alpha":
            return 1.0 - self.alpha, 1.0 - self.kappa
        return np.ones(self.n_rec), 1.0

    def _reset_consts(self) -> tuple[np.ndarray, np.ndarray]:
        """``r`` (the subtractive reset's size in the next step's v) and ``c`` (the adaptation
        increment as seen in the next step's a)."""
        if self.conventions.reset_timing == "next_step":
            return self.v_th.copy(), np.ones(self.n_rec)
        return self.alpha * self.v_th, self.rho.copy()

    def weights(self) -> dict[str, np.ndarray]:
        return {"W_in": self.W_in, "W_rec": self.W_rec, "W_out": self.W_out}

    def copy(self) -> RecurrentSNN:
        return replace(self, W_in=self.W_in.copy(), W_rec=self.W_rec.copy(), W_out=self.W_out.copy())

    def random_feedback(self, seed: int) -> np.ndarray:
        """``B ~ N(0, 1/n_rec)`` ``[n_rec, n_out]`` from ``seed`` (Bellec's tutorial scaling): the
        one draw of :func:`~neurocomp.learning.quantities.feedback_matrix` over the recurrent
        neurons (hidden populations in declaration order, as the chips draw it)."""
        return feedback_matrix(seed, [self.n_rec], self.n_out)[0]

    # -- one step of the neurons (shared by forward and run_online) -----------------------
    def _neurons(self, batch: int) -> SimpleNamespace:
        """The recurrent neurons' constants (:func:`.neuron.constants`) and state at rest,
        ``[batch, n_rec]`` arrays for :func:`.neuron.step`."""
        n = self.n_rec
        k = neuron.constants(
            n, self.alpha, v_th=self.v_th, zero=self.zero_reset, next_step=self.conventions.reset_timing == "next_step",
            beta=self.beta, rho=self.rho, n_ref=self.n_ref,
        )  # fmt: skip
        zero = np.zeros((batch, n))
        st = {name: zero.copy() for name in ("v", "u", "a", "z", "refr", "th", "v_post", "no_input")}
        return SimpleNamespace(k=k, has_ref=bool((self.n_ref > 0).any()), **st)

    @staticmethod
    def _advance(st: SimpleNamespace, drive, rec, smooth: bool = False, gamma: float = 0.3) -> np.ndarray | None:
        """One step of the recurrent neurons in place (:func:`.neuron.step`, no bias): the
        scaled inputs ``drive`` and ``rec`` (None: none yet). Returns which neurons were
        refractory (None without refractoriness)."""
        blocked = st.refr > 0 if st.has_ref else None
        rec = st.no_input if rec is None else rec
        neuron.step(st.k, st.v, st.u, st.a, st.z, st.refr, drive, rec, gamma if smooth else -1.0, st.th, st.v_post)
        return blocked

    def _eligibility(self, lo: int, gamma: float) -> tuple:
        """:func:`.online.steps`' ``elig``: the constants of the eligibility and its
        per-synapse state at rest, ``[n_rec, n_in + n_rec]`` (``e`` of the last ``lo + 1``
        steps in ``hist``)."""
        n, P = self.n_rec, self.n_in + self.n_rec
        s_v, s_y = self._scales()
        consts = (lo, float(gamma), self.alpha, self.rho, self.beta, self._reset_consts()[1],
                  self.zero_reset.astype(np.float64), self.v_th, s_v, float(s_y), float(self.kappa))  # fmt: skip
        return consts + (np.zeros((n, P)), np.zeros((n, P)), np.zeros((lo + 1, n, P)), np.zeros((n, P)))

    @staticmethod
    def _psi(v, thr, v_th, gamma: float):
        """The pseudo-derivative ``gamma / v_th h(v, A, v_th)`` (``h``:
        :func:`~neurocomp.learning.quantities.pseudo_derivative`, the triangle)."""
        return (gamma / v_th) * pseudo_derivative(v, thr, v_th)

    # -- forward --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, spike: str = "step", gamma: float = 0.3) -> Trace:
        """Run the network on inputs ``x`` ``[T, batch, n_in]`` (spikes, 0/1 or float)."""
        x = np.asarray(x, np.float64)
        if x.ndim != 3 or x.shape[2] != self.n_in:
            raise ValueError(f"inputs: expected [T, batch, {self.n_in}], got shape {x.shape}")
        T, nb, n = x.shape[0], x.shape[1], self.n_rec
        c = self.conventions
        li, lr, lo = c.input_latency, c.recurrent_latency, c.readout_latency
        s_v, s_y = self._scales()
        st = self._neurons(nb)
        win = (self.W_in * self.mask_in).T * s_v  # [n_in, n_rec], scaled once
        wrec = (self.W_rec * self.mask_rec).T * s_v
        wout = self.W_out.T * s_y
        V, Z, Aa, A = (np.zeros((T, nb, n)) for _ in range(4))
        blocked = np.zeros((T, nb, n), bool) if st.has_ref else None
        xin = np.zeros_like(x)
        xin[li:] = x[: T - li] if li else x
        drive = xin @ win  # [T, nb, n]: the input part of every step in one product
        # The loop holds only what depends on the previous step; psi, the readout and the
        # shifted copies are computed on whole arrays afterwards.
        for t in range(T):
            rec = Z[t - lr] @ wrec if t >= lr else None
            b = self._advance(st, drive[t], rec, spike == "smooth", gamma)
            if st.has_ref:
                blocked[t] = b
            V[t], Z[t], Aa[t], A[t] = st.v, st.z, st.a, st.th
        psi = self._psi(V, A, self.v_th, gamma)
        if st.has_ref:
            psi[blocked] = 0.0
        zr = np.zeros((T, nb, n))
        zr[lr:] = Z[: T - lr]
        y = np.zeros((T, nb, self.n_out))
        dy_in = np.zeros((T, nb, self.n_out))
        dy_in[lo:] = Z[: T - lo] @ wout
        yk = np.zeros((nb, self.n_out))
        for t in range(T):
            yk = self.kappa * yk + dy_in[t]
            y[t] = yk
        return Trace(xin, zr, V, Aa, A, Z, psi, y)

    # -- loss -------------------------------------------------------------------------------
    def error(self, y: np.ndarray, target: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
        """``(dE/dy, per-trial loss)``: ``dE/dy`` ``[T, batch, n_out]`` (0 where the target is
        NaN) for the mean over the batch of each trial's loss."""
        target = np.asarray(target, np.float64)
        if target.shape != y.shape:
            raise ValueError(f"targets: expected shape {y.shape}, got {target.shape}")
        valid = ~np.isnan(target).any(axis=2)  # [T, batch]
        tg = np.nan_to_num(target)
        nb = y.shape[1]
        if loss == "ce":  # summed over the labelled steps, as an online chip applies each step's error
            p = softmax(y)
            err = (p - tg) * (valid / nb)[:, :, None]
            logp = np.log(np.maximum(p, 1e-300))
            per_trial = -((tg * logp).sum(axis=2) * valid).sum(axis=0)
        else:
            d = (y - tg) * valid[:, :, None]
            err = d / nb
            per_trial = 0.5 * (d**2).sum(axis=(0, 2))
        return err, per_trial

    def _reg(self, tr: Trace, p: EpropParams) -> tuple[np.ndarray, float]:
        """``dE_reg/dz`` (the same for every step and trial) and the regularizer's value."""
        if not p.reg:
            return np.zeros(self.n_rec), 0.0
        T, nb = tr.z.shape[:2]
        f = tr.z.mean(axis=(0, 1))
        f0 = p.reg_rate_hz * self.dt_ms / 1000.0
        return p.reg * (f - f0) / (T * nb), 0.5 * p.reg * float(((f - f0) ** 2).sum())

    # -- gradients --------------------------------------------------------------------------
    def _readout_adjoint(self, err: np.ndarray) -> np.ndarray:
        """``dE/dy`` through the readout's leak: ``d_t = err_t + kappa d_{t+1}``."""
        d = np.empty_like(err)
        acc = np.zeros(err.shape[1:])
        for t in range(err.shape[0] - 1, -1, -1):
            acc = err[t] + self.kappa * acc
            d[t] = acc
        return d

    def _out_grad(self, tr: Trace, dy: np.ndarray) -> np.ndarray:
        lo = self.conventions.readout_latency
        s_y = self._scales()[1]
        T = tr.z.shape[0]
        k = dy.shape[2]
        return s_y * (dy[lo:].reshape(-1, k).T @ tr.z[: T - lo].reshape(-1, tr.z.shape[2]))

    def backward(
        self,
        tr: Trace,
        dy: np.ndarray,
        readout: np.ndarray,
        R: np.ndarray,
        stop_recurrent: bool,
        stop_reset: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Adjoint pass over the recurrent layer: ``(gW_in, gW_rec)``. ``dy`` = dE/dy_t (total),
        ``readout`` ``[n_out, n_rec]`` the matrix that carries it back to the spikes (W_out for
        BPTT, B^T for e-prop), ``R`` the regularizer's dE/dz. See the module docstring."""
        T, nb, n = tr.z.shape
        c = self.conventions
        lr, lo = c.recurrent_latency, c.readout_latency
        s_v, s_y = self._scales()
        r, cad = self._reset_consts()
        alpha, rho, beta = self.alpha, self.rho, self.beta
        wrec = (self.W_rec * self.mask_rec) * s_v  # [n_rec(post), n_rec(pre)]
        q = np.zeros((T, nb, n))
        q[: T - lo] = s_y * dy[lo:] @ readout
        q += R  # dE/dz_t through the readout and the regularizer: known before the loop
        zero = self.zero_reset
        alif = bool(beta.any())
        dv = np.zeros((T + 1, nb, n))
        psi = tr.psi
        if stop_recurrent and stop_reset and not alif and not zero.any():
            # LIF e-prop's case: dv_t = psi_t q_t + alpha dv_{t+1}, two operations a step
            dv[:T] = psi * q
            for t in range(T - 2, -1, -1):
                dv[t] += alpha * dv[t + 1]
        else:
            da = np.zeros((nb, n))
            for t in range(T - 1, -1, -1):
                dz = q[t]
                if t + 1 < T:
                    if alif:
                        dz = dz + cad * da
                    if not stop_reset:
                        dz = dz - np.where(zero, alpha * tr.v[t], r) * dv[t + 1]
                if not stop_recurrent and t + lr < T:
                    dz = dz + dv[t + lr] @ wrec
                keep = alpha * np.where(zero, 1.0 - tr.z[t], 1.0) if zero.any() else alpha
                dv[t] = psi[t] * dz + keep * dv[t + 1]
                if alif:
                    da = rho * da - beta * psi[t] * dz
        dv2 = dv[:T].reshape(T * nb, n)
        g_in = (dv2.T @ tr.xin.reshape(T * nb, -1)) * s_v[:, None] * self.mask_in
        g_rec = (dv2.T @ tr.zr.reshape(T * nb, n)) * s_v[:, None] * self.mask_rec
        return g_in, g_rec

    def bptt(
        self,
        tr: Trace,
        target: np.ndarray,
        p: EpropParams,
        stop_recurrent: bool = False,
        stop_reset: bool = False,
    ) -> dict[str, np.ndarray]:
        """BPTT gradients ``{W_in, W_rec, W_out}`` of the loss (and regularizer) with the
        pseudo-derivative as the spike's derivative; ``stop_*`` cut those paths."""
        err, _ = self.error(tr.y, target, p.loss)
        dy = self._readout_adjoint(err)
        R, _ = self._reg(tr, p)
        g_in, g_rec = self.backward(tr, dy, self.W_out, R, stop_recurrent, stop_reset)
        return {"W_in": g_in, "W_rec": g_rec, "W_out": self._out_grad(tr, dy)}

    def eprop(self, tr: Trace, target: np.ndarray, p: EpropParams, B: np.ndarray) -> dict[str, np.ndarray]:
        """e-prop's gradients with feedback ``B`` ``[n_rec, n_out]`` (adjoint form; equal to
        :meth:`eprop_online`)."""
        err, _ = self.error(tr.y, target, p.loss)
        dy = self._readout_adjoint(err)
        R, _ = self._reg(tr, p)
        g_in, g_rec = self.backward(tr, dy, np.asarray(B).T, R, stop_recurrent=True, stop_reset=True)
        return {"W_in": g_in, "W_rec": g_rec, "W_out": self._out_grad(tr, dy)}

    def eprop_online(self, tr: Trace, target: np.ndarray, p: EpropParams, B: np.ndarray) -> dict[str, np.ndarray]:
        """e-prop with explicit per-synapse eligibility traces, step by step (the paper's
        form; see the module docstring). Memory ``[batch, n_rec, n_in + n_rec]``."""
        T, nb, n = tr.z.shape
        c = self.conventions
        lo = c.readout_latency
        s_v, s_y = self._scales()
        _, cad = self._reset_consts()
        err, _ = self.error(tr.y, target, p.loss)
        R, _ = self._reg(tr, p)
        L = err @ np.asarray(B).T  # [T, nb, n_rec]
        pre = np.concatenate([tr.xin, tr.zr], axis=2)  # [T, nb, P]
        P = pre.shape[2]
        eps_v = np.zeros((nb, n, P))
        eps_a = np.zeros((nb, n, P))
        e_bar = np.zeros((nb, n, P))
        g = np.zeros((n, P))
        e_sum = np.zeros((nb, n, P))
        hist: list[np.ndarray] = []  # e of the last `lo` steps (the readout sees z lo steps late)
        alpha, rho, beta = self.alpha[None, :, None], self.rho[None, :, None], self.beta[None, :, None]
        cad3 = cad[None, :, None]
        for t in range(T):
            if t > 0:
                psi_prev = tr.psi[t - 1][:, :, None]
                eps_a = cad3 * psi_prev * eps_v + (rho - cad3 * beta * psi_prev) * eps_a
                keep = np.where(self.zero_reset[None, :], 1.0 - tr.z[t - 1], 1.0)[:, :, None]
                eps_v = alpha * keep * eps_v
            eps_v = eps_v + (s_v[None, :, None] * pre[t][:, None, :])
            e = tr.psi[t][:, :, None] * (eps_v - beta * eps_a)
            e_sum += e
            hist.append(e)
            e_in = hist.pop(0) if len(hist) > lo else 0.0
            e_bar = self.kappa * e_bar + s_y * e_in
            g += np.einsum("bj,bji->ji", L[t], e_bar)
        g += np.einsum("j,bji->ji", R, e_sum)
        dy = self._readout_adjoint(err)
        return {
            "W_in": g[:, : self.n_in] * self.mask_in,
            "W_rec": g[:, self.n_in :] * self.mask_rec,
            "W_out": self._out_grad(tr, dy),
        }

    def run_online(
        self, x: np.ndarray, target: np.ndarray, p: EpropParams, B: np.ndarray, lr: float
    ) -> tuple[Trace, dict[str, np.ndarray]]:
        """One trial of online e-prop: the forward dynamics with the per-synapse traces of
        :meth:`eprop_online`, and every step's update ``-lr L_t e_bar_t`` (and the
        readout's ``-lr err_t z_bar_t``) applied at once, so that step ``t + 1`` runs on the
        new weights (the paper's online form, the rule every chip level runs: ``L_t = B err_t
        + reg (f_t - f0)`` on every step, ``f_t`` the running rate of
        :func:`~neurocomp.learning.quantities.running_rate` including step ``t``'s spikes, from
        0 at the trial's start, with ``reg_tau_ms``; ``err_t`` is each labelled step's error, not
        divided by their number). Batch 1. Updates the weights in place; returns the trace and the
        total change per matrix. Symmetric feedback reads the current ``W_out``."""
        x = np.asarray(x, np.float64)
        target = np.asarray(target, np.float64)
        T, nb, n = x.shape[0], x.shape[1], self.n_rec
        if nb != 1:
            raise ValueError("run_online runs one trial at a time (batch 1)")
        c = self.conventions
        li, lo = c.input_latency, c.readout_latency
        st = self._neurons(1)
        W0 = {k: v.copy() for k, v in self.weights().items()}
        xin = np.zeros_like(x)
        xin[li:] = x[: T - li] if li else x
        rec = tuple(np.zeros((T, n)) for _ in range(6)) + (np.zeros((T, self.n_out)),)  # V Z a A psi zr y
        valid = ~np.isnan(target).any(axis=2)[:, 0]
        tg = np.nan_to_num(target)[:, 0, :]
        w = (self.W_in, self.mask_in, self.W_in * self.mask_in, self.W_rec, self.mask_rec, self.W_rec * self.mask_rec,
             self.W_out, B)  # fmt: skip
        cfg = (float(lr), float(p.reg), p.reg_rate_hz * self.dt_ms / 1000.0, p.loss == "ce",
               FEEDBACKS.index(p.feedback), c.recurrent_latency, float(self._scales()[1]),
               rate_decay(p.reg_tau_ms, self.dt_ms))  # fmt: skip
        neurons = (st.k, st.v, st.u, st.a, st.z, st.refr, st.th, st.v_post)
        sums = (np.zeros(self.n_out), np.zeros(n), np.zeros(n), np.zeros(n))  # y, z_bar, running rate, refractory
        t, err, xs, elig = 0, np.zeros(self.n_out), np.ascontiguousarray(xin[:, 0]), self._eligibility(lo, p.dampening)
        while t < T:
            t = online.steps(t, err, cfg, valid, tg, xs, w, neurons, elig, rec, sums)
            if t < T:  # a labelled step of the ce loss: its error from the one softmax, then on
                err = softmax_error(rec[6][t], tg[t])
                t = -1 - t  # resume with step t's learning
        V, Z, Aa, A, PSI, zr_all, y_all = (r[:, None, :] for r in rec)
        tr = Trace(xin, zr_all, V, Aa, A, Z, PSI, y_all)
        return tr, {k: getattr(self, k) - W0[k] for k in W0}

    # -- training ---------------------------------------------------------------------------
    def loss(self, tr: Trace, target: np.ndarray, p: EpropParams) -> float:
        """The task loss (mean over trials), without the regularizer."""
        return float(self.error(tr.y, target, p.loss)[1].mean())

    def train(
        self,
        x: np.ndarray | Any,
        target: np.ndarray | Any,
        p: EpropParams,
        iterations: int,
        method: str = "eprop",
        optimizer: str = "sgd",
        B: np.ndarray | None = None,
        callback=None,
    ) -> dict[str, list]:
        """Train in place for ``iterations`` (``method``: ``eprop`` or ``bptt``; ``optimizer``:
        ``sgd`` (plain gradient descent, Bellec's pattern generation) or ``adam``). ``x`` and
        ``target`` are arrays (the same every iteration, frozen input) or callables of the
        iteration giving them. ``callback(it, model, trace, loss)`` runs after each forward
        pass. Returns ``{"loss": [...]}`` (the loss of the forward pass before each update,
        so entry 0 is the untrained network)."""
        if method not in ("eprop", "bptt"):
            raise ValueError(f"method: {method!r} is not 'eprop' or 'bptt'")
        B = self.random_feedback(p.seed) if B is None else np.array(B, np.float64)
        opt = Adam(p.lr) if optimizer == "adam" else Sgd(p.lr)
        hist: dict[str, list] = {"loss": []}
        for it in range(iterations):
            xi = x(it) if callable(x) else x
            ti = target(it) if callable(target) else target
            tr = self.forward(xi, gamma=p.dampening)
            lossv = self.loss(tr, ti, p)
            hist["loss"].append(lossv)
            if callback is not None:
                callback(it, self, tr, lossv)
            if method == "bptt":
                g = self.bptt(tr, ti, p)
            else:
                fb = self.W_out.T if p.feedback == "symmetric" else B
                g = self.eprop(tr, ti, p, fb)
            steps = opt.step(g)
            self.W_in += steps["W_in"]
            self.W_rec += steps["W_rec"]
            self.W_out += steps["W_out"]
            if p.feedback == "adaptive":
                B += steps["W_out"].T  # B takes W_out's update (Bellec's adaptive e-prop)
        return hist

    # -- from a network -----------------------------------------------------------------------
    @classmethod
    def from_network(
        cls, net, dt_ms: float = 1.0, conventions: Conventions | None = None, rule: str | None = None
    ) -> RecurrentSNN:
        """The e-prop architecture of a float :class:`~neurocomp.graph.Network`: its spike
        inputs, its LIF/ALIF populations (concatenated in declaration order) and its one LI
        readout, with exact decays ``exp(-dt/tau)``. ``rule``: only projections with this
        plasticity rule (and static ones) are taken (all when ``None``). Projections must be
        dense, without extra delays, and delta-synapse (no ``tau_syn``)."""
        from ..graph import ALIF, LI, LIF, SpikeInput

        conventions = conventions or Conventions.chip()
        problems: list[Problem] = []
        ins = [p for p in net.populations if isinstance(p.neuron, SpikeInput)]
        recs = [p for p in net.populations if isinstance(p.neuron, LIF)]
        outs = [p for p in net.populations if isinstance(p.neuron, LI)]
        if len(outs) != 1:
            problems.append(Problem("network", f"e-prop's reference needs one LI readout, found {len(outs)}"))
        if not recs:
            problems.append(Problem("network", "e-prop's reference needs LIF or ALIF populations"))
        for pop in recs + outs:
            if pop.neuron.tau_syn_ms is not None:
                problems.append(
                    Problem(f"population {pop.name!r}", "e-prop's reference models delta synapses (tau_syn_ms None)")
                )
            if pop.neuron.bias:
                problems.append(Problem(f"population {pop.name!r}", "e-prop's reference has no bias"))
        if problems:
            raise ModelError(problems)
        ro = outs[0]
        d = dense_blocks(net, ins, recs, ro, "e-prop's reference", rule)
        W_in, W_rec, W_out, m_in, m_rec, blocks = d.W_in, d.W_rec, d.W_out, d.m_in, d.m_rec, d.blocks
        np.fill_diagonal(m_rec, 0.0)  # no autapses: e-prop masks them (eprop.md §1.9)
        W_rec *= m_rec

        def per_neuron(f) -> np.ndarray:
            return np.concatenate([np.full(p.size, f(p.neuron), np.float64) for p in recs])

        def decay(tau: float) -> float:
            return math.exp(-dt_ms / tau)

        n_ref = np.concatenate([np.full(p.size, p.neuron.refractory_steps) for p in recs])
        return cls(
            W_in,
            W_rec,
            W_out,
            alpha=per_neuron(lambda n: decay(n.tau_mem_ms)),
            v_th=per_neuron(lambda n: n.v_th),
            beta=per_neuron(lambda n: n.beta if isinstance(n, ALIF) else 0.0),
            rho=per_neuron(lambda n: decay(n.tau_adapt_ms) if isinstance(n, ALIF) else 0.0),
            kappa=decay(ro.neuron.tau_mem_ms),
            conventions=conventions,
            n_ref=n_ref,
            zero_reset=np.concatenate([np.full(p.size, p.neuron.reset == "zero") for p in recs]),
            mask_in=m_in,
            mask_rec=m_rec,
            blocks=blocks,
            dt_ms=dt_ms,
        )

    def projection_weights(self, name: str) -> np.ndarray:
        """The ``[post, pre]`` block of projection ``name``."""
        mat, rows, cols = self.blocks[name]
        return getattr(self, mat)[rows, cols]

    def projection_weights_all(self) -> dict[str, np.ndarray]:
        """Every projection's ``[post, pre]`` block (copies)."""
        return {name: self.projection_weights(name).copy() for name in self.blocks}

    def projection_grads(self, g: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A gradient dict split per projection."""
        return {name: g[mat][rows, cols] for name, (mat, rows, cols) in self.blocks.items()}


class Sgd:
    """Plain gradient descent: ``step = -lr * g``."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, g: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: -self.lr * v for k, v in g.items()}


class Adam:
    """Adam (Kingma & Ba 2015) with the usual defaults (beta1 0.9, beta2 0.999, eps 1e-8)."""

    def __init__(self, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, g: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.t += 1
        out = {}
        for k, gk in g.items():
            m = self.m[k] = self.b1 * self.m.get(k, 0.0) + (1 - self.b1) * gk
            v = self.v[k] = self.b2 * self.v.get(k, 0.0) + (1 - self.b2) * gk * gk
            mh, vh = m / (1 - self.b1**self.t), v / (1 - self.b2**self.t)
            out[k] = -self.lr * mh / (np.sqrt(vh) + self.eps)
        return out
