"""Gated-synapse theta networks (Huh & Sejnowski 2018) and their exact gradient.

Source: D. Huh and T. J. Sejnowski, "Gradient descent for spiking neural networks", NeurIPS
2018 (arXiv 1706.04698). Used from it: the gated synapse ``tau_s ds/dt = -s + g(v) dv/dt``
with ``g >= 0`` of unit integral on an active zone around threshold (the paper's eq. 2 and
Fig. 1: ``g = 1/width`` in the zone, ``int s dt = 1`` per crossing), the theta/QIF neuron
``dv/dt = f(v, I)``, ``I = W s + U i(t) + I0``, ``o = O s`` and the delayed-memory XOR task.
Not recovered from the text, so chosen here: the time constants, the zone's width, the raised
cosine gate (C1, so that the discrete model is smooth), the discretization below and the
network sizes (``learning-rules.md`` §2.8 marks them [mem]).

**The discrete model** (forward Euler for the phase; step ``dt``; ``eps = dt/tau_v``,
``alpha = exp(-dt/tau_s)``, ``G`` the gate's antiderivative, ``G' = g``, ``G(theta + 2 pi) =
G(theta) + 1``)::

    I_t         = U x_t + W s_t + I0
    theta_{t+1} = theta_t + eps ((1 - cos theta_t) + (1 + cos theta_t) I_t)
    s_{t+1}     = alpha s_t + (1 - alpha)/dt (G(theta_{t+1}) - G(theta_t))
    y_t         = kappa y_{t-1} + (1 - kappa) (O s_{t+1} + b)

The charge a step injects is the gate's integral over the phase the step covered, so a
passage through the zone gives exactly unit charge (``sum_t s_t dt = 1``) at any ``dt``, even
when one step jumps across the whole zone; ``y`` is the readout LI population's discretized
``tau dy/dt = -y + O s + b`` (``kappa = exp(-dt/tau)``; ``o = O s`` as ``tau -> 0``).

**The exact gradient.** Every map above is differentiable (C1 in ``theta`` with the cosine
gate), so the gradient of the discrete loss is the adjoint of this recursion, written out by
hand in :meth:`GatedNet.backward` (BPTT in float64): it is the gradient of the very function
the forward pass computes, not a surrogate, and finite differences check it
(``tests/test_gated.py``). The adjoint of the phase carries ``1 + eps sin theta (1 - I)``
(``df/dtheta``) and the gate terms ``g(theta_{t+1})``, ``-g(theta_t)`` of the charge.

Inputs ``x`` are currents (the task's analog waveforms), ``[T, batch, n_in]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ModelError, Problem
from ..kernels.gated import float_arith, gate_charges, passages, run_gated
from .blocks import dense_blocks

TWO_PI = 2.0 * math.pi
VARIANTS = ("exact", "no_dfdtheta", "no_gate_at_start")  # GatedNet.backward's; only "exact" is right


def gate_integral(theta: np.ndarray, width: np.ndarray, shape: str) -> np.ndarray:
    """``G(theta)``: the gate's integral from a reference phase, the number of zone passages
    plus the fraction of the current one (``G(theta + 2 pi) = G(theta) + 1``; zones centred
    on ``pi + 2 pi k``). :func:`neurocomp.kernels.gated.gate_charge`, in ``theta``'s dtype."""
    dt = np.float32 if np.asarray(theta).dtype == np.float32 else np.float64
    th, w = (np.array(a, dt) for a in np.broadcast_arrays(theta, width))  # contiguous copies
    out = np.empty_like(th)
    gate_charges(th.ravel(), w.ravel(), shape == "cosine", out.ravel(), *float_arith(dt))
    return out


def gate(theta: np.ndarray, width: np.ndarray, shape: str) -> np.ndarray:
    """``g(theta) = G'(theta)`` in 1/rad: 0 outside the active zone."""
    phi = theta - math.pi - TWO_PI * np.round((theta - math.pi) / TWO_PI)
    inside = np.abs(phi) < width / 2
    if shape == "cosine":
        return np.where(inside, (1.0 + np.cos(TWO_PI * phi / width)) / width, 0.0)
    return np.where(inside, 1.0 / width, 0.0)


@dataclass
class GatedTrace:
    """One forward pass: ``theta`` and ``s`` ``[T + 1, batch, n_rec]`` (the states before each
    step and after the last), ``I`` ``[T, batch, n_rec]`` (each step's input current) and the
    readout ``y`` ``[T, batch, n_out]``."""

    x: np.ndarray
    theta: np.ndarray
    s: np.ndarray
    I: np.ndarray  # noqa: E741 (the paper's name)
    y: np.ndarray

    @property
    def spikes(self) -> np.ndarray:
        """Zone passages per step ``[T, batch, n_rec]`` (integers: passages of ``pi`` mod 2 pi)."""
        return passages(self.theta)


@dataclass
class GatedNet:
    """Weights and per-neuron constants of a gated theta network (float64 unless ``dtype``).

    ``W_in`` ``[n_rec, n_in]`` (U), ``W_rec`` ``[n_rec, n_rec]`` (W, in ms), ``W_out``
    ``[n_out, n_rec]`` (O, in ms); ``eps = dt/tau_v``, ``alpha = exp(-dt/tau_s)``, ``width``
    (rad), ``bias`` (I0), ``theta0`` (rad) per neuron; ``kappa``, ``b_out`` of the readout.
    ``blocks``: projection name -> (matrix, rows, cols), as :class:`RecurrentSNN`'s.
    ``backward_variant``: ``"exact"``; ``"no_dfdtheta"`` (the phase's own Jacobian dropped) and
    ``"no_gate_at_start"`` (the charge's dependence on the step's start phase dropped) are wrong
    on purpose, to show that the finite-difference test catches a wrong gradient."""

    W_in: np.ndarray
    W_rec: np.ndarray
    W_out: np.ndarray
    eps: np.ndarray
    alpha: np.ndarray
    width: np.ndarray
    bias: np.ndarray
    theta0: np.ndarray
    kappa: float
    b_out: np.ndarray
    shape: str = "cosine"
    dt_ms: float = 1.0
    mask_in: np.ndarray | None = None
    mask_rec: np.ndarray | None = None
    blocks: Mapping[str, tuple[str, slice, slice]] = field(default_factory=dict)
    backward_variant: str = "exact"
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        if self.backward_variant not in VARIANTS:
            raise ValueError(f"backward_variant: {self.backward_variant!r} is not one of {', '.join(VARIANTS)}")
        if self.mask_in is None:
            self.mask_in = np.ones_like(self.W_in)
        if self.mask_rec is None:
            self.mask_rec = np.ones_like(self.W_rec)

    @property
    def n_in(self) -> int:
        return self.W_in.shape[1]

    @property
    def n_rec(self) -> int:
        return self.W_rec.shape[0]

    @property
    def n_out(self) -> int:
        return self.W_out.shape[0]

    def weights(self) -> dict[str, np.ndarray]:
        return {"W_in": self.W_in, "W_rec": self.W_rec, "W_out": self.W_out}

    def copy(self) -> GatedNet:
        return replace(self, W_in=self.W_in.copy(), W_rec=self.W_rec.copy(), W_out=self.W_out.copy())

    def random_feedback(self, seed: int) -> np.ndarray:
        """Random feedback ``B`` ``[n_rec, n_out]`` (the trainer's interface; the exact gradient
        does not use it)."""
        return np.random.default_rng([seed, 0xFB]).standard_normal((self.n_rec, self.n_out)) / math.sqrt(self.n_rec)

    # -- forward ------------------------------------------------------------------------------
    def forward(self, x: np.ndarray, **_: Any) -> GatedTrace:
        """Run the discrete model on currents ``x`` ``[T, batch, n_in]`` (``dtype``'s
        arithmetic: float64, or float32 as a programmable core runs it), with
        :func:`neurocomp.kernels.gated.run_gated`, the emulator's kernel."""
        dt = self.dtype
        x = np.ascontiguousarray(x, dt)
        T, nb = x.shape[:2]
        th = np.empty((T + 1, nb, self.n_rec), dt)
        s = np.empty_like(th)
        th[0], s[0] = self.theta0.astype(dt), 0
        cur = np.empty((T, nb, self.n_rec), dt)
        y = np.empty((T, nb, self.n_out), dt)
        run_gated(
            x, *(np.ascontiguousarray(a, dt) for a in (self.W_in, self.W_rec, self.W_out, self.bias, self.eps,
                                                       self.alpha, (1 - self.alpha) / self.dt_ms, self.width)),
            self.shape == "cosine", dt(self.kappa), self.b_out.astype(dt), th, s, cur, y,
            np.zeros((nb, self.n_out), dt), *float_arith(dt),
        )  # fmt: skip
        return GatedTrace(x, th, s, cur, y)

    # -- loss ---------------------------------------------------------------------------------
    @staticmethod
    def error(y: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
        """``(dL/dy, L)`` of the mean squared error over the labelled entries (``target`` NaN
        elsewhere): ``L = sum (y - y*)^2 / (2 n_labelled)``."""
        target = np.asarray(target, np.float64)
        if target.shape != y.shape:
            raise ValueError(f"targets: expected shape {y.shape}, got {target.shape}")
        valid = ~np.isnan(target)
        n = max(int(valid.sum()), 1)
        d = np.where(valid, y - np.nan_to_num(target), 0.0)
        return d / n, float(0.5 * (d**2).sum() / n)

    def loss(self, tr: GatedTrace, target: np.ndarray, p: Any = None) -> float:
        return self.error(tr.y, target)[1]

    # -- the exact gradient -------------------------------------------------------------------
    def backward(self, tr: GatedTrace, dy: np.ndarray) -> dict[str, np.ndarray]:
        """``dL/d(W_in, W_rec, W_out)`` given ``dL/dy`` ``[T, batch, n_out]``: the adjoint of
        the discrete model (module docstring), float64."""
        T = dy.shape[0]
        w = self.width
        ybar = np.empty_like(dy)  # the readout's total adjoint, through its leak
        acc = np.zeros(dy.shape[1:])
        for t in range(T - 1, -1, -1):
            acc = dy[t] + self.kappa * acc
            ybar[t] = acc
        ybar *= 1.0 - self.kappa
        s_in = ybar @ self.W_out  # dL/ds_{t+1} through y_t, [T, batch, n_rec]
        beta = (1 - self.alpha) / self.dt_ms
        keep_jac = self.backward_variant != "no_dfdtheta"
        keep_gate_lo = self.backward_variant != "no_gate_at_start"
        g_next = gate(tr.theta[T], w, self.shape)
        a_s = s_in[T - 1]  # total adjoint of s_{t+1}
        a_th = np.zeros_like(a_s)  # adjoint of theta_{t+1} from the steps after t
        dW_in, dW_rec = np.zeros_like(self.W_in), np.zeros_like(self.W_rec)
        for t in range(T - 1, -1, -1):
            th = tr.theta[t]
            qbar = beta * a_s  # dL/d(G_{t+1} - G_t)
            a_thn = a_th + qbar * g_next  # the total adjoint of theta_{t+1}
            cs, sn = np.cos(th), np.sin(th)
            Ibar = a_thn * self.eps * (1.0 + cs)
            g_now = gate(th, w, self.shape)
            jac = 1.0 + self.eps * sn * (1.0 - tr.I[t]) if keep_jac else 1.0
            a_th = a_thn * jac - (qbar * g_now if keep_gate_lo else 0.0)
            dW_in += Ibar.T @ tr.x[t]
            dW_rec += Ibar.T @ tr.s[t]
            a_s = self.alpha * a_s + Ibar @ self.W_rec + (s_in[t - 1] if t > 0 else 0.0)
            g_next = g_now
        dW_out = np.einsum("tbo,tbn->on", ybar, tr.s[1:])
        return {"W_in": dW_in * self.mask_in, "W_rec": dW_rec * self.mask_rec, "W_out": dW_out}

    def bptt(self, tr: GatedTrace, target: np.ndarray, p: Any = None) -> dict[str, np.ndarray]:
        """The exact gradient of :meth:`loss` (the trainer's interface)."""
        return self.backward(tr, self.error(tr.y, target)[0])

    # -- forward (causal) approximations --------------------------------------------------------
    def _learning_signal(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ybar, y3)``: the readout's adjoint through its leak and ``y3 = ybar O``, the
        learning signal reaching ``s_{t+1}`` (equal to filtering the eligibility forward with
        the readout's leak and weighting it by ``O^T dL/dy_t``, as an online learner does)."""
        ybar = np.empty_like(dy)
        acc = np.zeros(dy.shape[1:])
        for t in range(dy.shape[0] - 1, -1, -1):
            acc = dy[t] + self.kappa * acc
            ybar[t] = acc
        ybar *= 1.0 - self.kappa
        return ybar, ybar @ self.W_out

    def eprop(self, tr: GatedTrace, target: np.ndarray) -> dict[str, np.ndarray]:
        """e-prop for the gated neuron: the gradient with each neuron's own state carried
        forward exactly and the propagation through other neurons dropped (Bellec et al. 2020's
        factorization). Two eligibility traces per synapse, of the phase and of the charge::

            e_theta(t+1) = (1 + eps sin theta_t (1 - I_t)) e_theta(t) + eps (1 + cos theta_t) x1_j(t)
            e_s(t+1)     = alpha e_s(t) + beta (g(theta_{t+1}) e_theta(t+1) - g(theta_t) e_theta(t))
            dw_ij        = sum_t y3_i(t) e_s,ij(t+1)

        ``x1`` the presynaptic input or ``s_j``; causal and local but for ``y3`` (the output
        error through ``O^T``, symmetric feedback). ``W_out``'s gradient is exact."""
        dy, _ = self.error(tr.y, target)
        ybar, y3 = self._learning_signal(dy)
        beta = (1 - self.alpha) / self.dt_ms
        pre = np.concatenate([tr.x, tr.s[:-1]], axis=2)  # [T, batch, n_in + n_rec]
        nb, P = pre.shape[1], pre.shape[2]
        e_th = np.zeros((nb, self.n_rec, P))
        e_s = np.zeros_like(e_th)
        grad = np.zeros((self.n_rec, P))
        g_now = gate(tr.theta[0], self.width, self.shape)
        for t in range(dy.shape[0]):
            th = tr.theta[t]
            g_next = gate(tr.theta[t + 1], self.width, self.shape)
            jac = 1.0 + self.eps * np.sin(th) * (1.0 - tr.I[t])
            e_new = jac[:, :, None] * e_th + (self.eps * (1.0 + np.cos(th)))[:, :, None] * pre[t][:, None, :]
            e_s = self.alpha[:, None] * e_s + beta[:, None] * (g_next[:, :, None] * e_new - g_now[:, :, None] * e_th)
            e_th, g_now = e_new, g_next
            grad += np.einsum("bn,bnp->np", y3[t], e_s)
        return {
            "W_in": grad[:, : self.n_in] * self.mask_in,
            "W_rec": grad[:, self.n_in :] * self.mask_rec,
            "W_out": np.einsum("tbo,tbn->on", ybar, tr.s[1:]),
        }

    def engine_factors(self, tr: GatedTrace, target: np.ndarray) -> tuple[np.ndarray, ...]:
        """The graded post factors of :meth:`engine_rule` on a trace and its targets
        (:meth:`post_factors` with the loss's ``dL/dy``)."""
        dy, _ = self.error(tr.y, target)
        return self.post_factors(tr.theta[:-1], tr.I, tr.theta[1:], dy)

    def post_factors(self, theta, I, theta_next, dy) -> tuple[np.ndarray, ...]:  # noqa: E741 (the paper's name)
        """The graded post factors of :meth:`engine_rule`, ``[..., n_rec]`` each, from the
        phases before and after steps ``theta``, ``theta_next`` (rad), their input currents
        ``I`` and the readout's ``dy = dL/dy`` ``[..., n_out]``: ``y1 = eps sin theta_t (1 -
        I_t)`` (the phase's Jacobian less 1), ``y2 = eps (1 + cos theta_t)``
        (``dtheta_{t+1}/dI_t``), ``y3 = beta g(theta_{t+1}) (O^T err_t)``; and the readout's
        error ``err = (1 - kappa) dL/dy`` (the readout's input gain, which ``y3`` passes back
        through ``O^T`` as :meth:`eprop`'s learning signal does)."""
        err = (1.0 - self.kappa) * dy
        beta = (1 - self.alpha) / self.dt_ms
        y1 = self.eps * np.sin(theta) * (1.0 - I)
        y2 = self.eps * (1.0 + np.cos(theta))
        y3 = beta * gate(theta_next, self.width, self.shape) * (err @ self.W_out)
        return y1, y2, y3, err

    def engine_rule(self, tr: GatedTrace, target: np.ndarray) -> dict[str, np.ndarray]:
        """The forward rule reduced to what a sum-of-products engine holds: three graded
        post factors (:meth:`engine_factors`) and one tag, e-prop's phase trace::

            t_ij(t+1) = t_ij(t) + y1_i(t) t_ij(t) + y2_i(t) x1_j(t)
            dw_ij     = sum_t y3_i(t) t_ij(t+1)

        ``x1`` the presynaptic input or ``s_j``. Against :meth:`eprop` it drops two things:
        the charge trace's low-pass part (e-prop's ``e_s = beta (g e_theta - m)``, ``m`` the
        ``tau_s`` average of ``g e_theta``; here ``e_s = beta g e_theta``) and the readout's
        leak on the error (``y3`` and ``W_out``'s ``err`` use ``dL/dy_t`` of the same step).
        ``W_out``: ``sum_t err_t s_{t+1}``. Computed in closed form: ``dw_ij = sum_t y2_i(t)
        x1_j(t) r_i(t)`` with ``r(t) = y3(t) + (1 + y1(t + 1)) r(t + 1)``."""
        y1, y2, y3, err = self.engine_factors(tr, target)
        r = np.empty_like(y3)
        acc = np.zeros(y3.shape[1:])
        for t in range(y3.shape[0] - 1, -1, -1):
            acc = y3[t] + ((1.0 + y1[t + 1]) * acc if t + 1 < y3.shape[0] else 0.0)
            r[t] = acc
        return self._local_grads(r * y2, tr, err)

    def forward_approx(self, tr: GatedTrace, target: np.ndarray) -> dict[str, np.ndarray]:
        """The causal approximation of ``learning-rules.md`` §2.8 ("Mapping"): per synapse an
        eligibility trace ``e_ij(t) = alpha e_ij(t-1) + y2_i(t) x1_j(t)`` (``dt = y2*x1 - t/tau_s``),
        ``y2_i = beta g(theta_{t+1}) eps (1 + cos theta_t)`` (``ds_{t+1}/dI_t``, the gate on
        ``df/dI``), ``x1_j`` the presynaptic ``s_j`` (or input), and ``dw_ij = sum_t y3_i(t) e_ij(t)``
        with ``y3 = O^T dL/do`` through the readout's leak (e-prop's filtered eligibility). It
        drops what the exact gradient has and a chip cannot carry forward: the propagation
        through other neurons, the phase's own memory (``df/dtheta``) and the gate at the
        step's start phase. Computed in closed form (the same sums as the online traces);
        ``W_out``'s gradient is exact (it is local)."""
        dy, _ = self.error(tr.y, target)
        T = dy.shape[0]
        ybar, y3 = self._learning_signal(dy)
        beta = (1 - self.alpha) / self.dt_ms
        y2 = beta * gate(tr.theta[1:], self.width, self.shape) * self.eps * (1.0 + np.cos(tr.theta[:-1]))
        r = np.empty_like(y3)  # sum over t' >= t of alpha^(t'-t) y3(t'): the trace's future weight
        acc = np.zeros(y3.shape[1:])
        for t in range(T - 1, -1, -1):
            acc = y3[t] + self.alpha * acc
            r[t] = acc
        return self._local_grads(r * y2, tr, ybar)

    def _local_grads(self, f: np.ndarray, tr: GatedTrace, err: np.ndarray) -> dict[str, np.ndarray]:
        """A forward rule's gradients: ``dw_ij = sum_t f_i(t) x1_j(t)`` (``f`` ``[T, batch, n]``,
        ``x1`` the input or the presynaptic ``s``), and the readout's ``sum_t err_t s_{t+1}``."""
        return {
            "W_in": np.einsum("tbn,tbi->ni", f, tr.x) * self.mask_in,
            "W_rec": np.einsum("tbn,tbj->nj", f, tr.s[:-1]) * self.mask_rec,
            "W_out": np.einsum("tbo,tbn->on", err, tr.s[1:]),
        }

    # -- from a network -----------------------------------------------------------------------
    @classmethod
    def from_network(cls, net, dt_ms: float = 1.0, dtype: Any = np.float64) -> GatedNet:
        """The gated network of a float :class:`~neurocomp.graph.Network`: its input
        populations (``SpikeInput``, driven with currents), its ``GatedTheta`` populations
        (concatenated in declaration order, one gate shape) and one ``LI`` readout; dense
        projections without delays."""
        from ..graph import LI, GatedTheta, SpikeInput

        problems: list[Problem] = []
        ins = [p for p in net.populations if isinstance(p.neuron, SpikeInput)]
        recs = [p for p in net.populations if isinstance(p.neuron, GatedTheta)]
        outs = [p for p in net.populations if isinstance(p.neuron, LI)]
        if len(outs) != 1 or not recs or not ins:
            problems.append(Problem("network", f"a gated network needs input, GatedTheta and one LI readout "
                                               f"population; found {len(ins)}, {len(recs)}, {len(outs)}"))  # fmt: skip
        shapes = {p.neuron.zone_shape for p in recs}
        if len(shapes) > 1:
            problems.append(Problem("network", f"one gate shape per network, found {sorted(shapes)}"))
        if problems:
            raise ModelError(problems)
        ro = outs[0]
        d = dense_blocks(net, ins, recs, ro, "the gated network")
        W_in, W_rec, W_out, m_in, m_rec, blocks = d.W_in, d.W_rec, d.W_out, d.m_in, d.m_rec, d.blocks

        consts = [p.neuron.step_constants(dt_ms) for p in recs]

        def per_neuron(key: str) -> np.ndarray:
            return np.concatenate([np.full(p.size, c[key], np.float64) for p, c in zip(recs, consts, strict=True)])

        return cls(
            W_in, W_rec, W_out, eps=per_neuron("eps"), alpha=per_neuron("alpha"), width=per_neuron("width"),
            bias=per_neuron("bias"), theta0=per_neuron("theta0"), kappa=math.exp(-dt_ms / ro.neuron.tau_mem_ms),
            b_out=np.full(ro.size, float(ro.neuron.bias)), shape=shapes.pop(), dt_ms=dt_ms, mask_in=m_in,
            mask_rec=m_rec, blocks=blocks, dtype=dtype,
        )

    def projection_weights(self, name: str) -> np.ndarray:
        """The ``[post, pre]`` block of projection ``name``."""
        mat, rows, cols = self.blocks[name]
        return getattr(self, mat)[rows, cols]


def is_gated(net) -> bool:
    """Whether ``net`` has gated theta neurons (and so trains and deploys as a :class:`GatedNet`)."""
    return any(p.neuron.model == "GatedTheta" for p in net.populations)


