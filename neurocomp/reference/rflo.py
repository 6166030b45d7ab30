"""RFLO's float reference: Murray's rate network and its exact learning rule (float64).

Murray 2019 (eLife 8:e43299), "Local online learning in recurrent networks with random
feedback"; the equations and the initialization of the author's notebook
(``murray-lab/rflo-learning/RFLO_Example.ipynb``; ``eprop.md`` §4, ``learning-rules.md`` §2.1).
Time is counted in steps; ``tau`` is in steps. A trial starts from ``h^0 = h0`` (every unit)
and runs steps ``t = 1..T``::

    u^t   = W h^(t-1) + W_in x^t
    h^t   = h^(t-1) + (-h^(t-1) + tanh(u^t)) / tau
    y^t   = W_out h^t,             eps^t = y*^t - y^t          (loss 1/(2T) sum_t |eps^t|^2)
    p^t   = (1 - 1/tau) p^(t-1) + tanh'(u^t) h^(t-1)^T / tau   (p^0 = 0; eligibility of W)
    q^t   = (1 - 1/tau) q^(t-1) + tanh'(u^t) x^t^T / tau       (q^0 = 0; eligibility of W_in)
    L^t   = B eps^t                                            (B fixed and random)
    dW    = lr_rec / T * sum_t L^t (.) p^t     (row i scaled by L_i^t)
    dW_in = lr_in  / T * sum_t L^t (.) q^t
    dW_out = lr_out / T * sum_t eps^t h^t^T

The sums are applied at the end of the trial (the notebook's default) or, with
``online=True``, each step's term is applied at once (the next step uses the new weights).

Where this differs from the notebook, and why:

* ``tanh'(u) = 1 - tanh(u)^2`` exactly; the notebook uses ``1/cosh(10 tanh(u/10))^2``, the
  same function to within 1e-3 relative for ``|u| < 1.2``, written that way to avoid overflow
  in ``cosh`` (``1 - tanh^2`` has no overflow).
* ``q`` uses ``x^t``, the input that enters ``u^t`` (the paper's equation); the notebook
  uses ``x^(t-1)``. The ``rflo-periodic`` task has zero input and ``lr_in = 0``, so this
  changes nothing there.
* A trial is ``T`` full steps after ``h^0``; the notebook runs ``T - 1`` steps and counts a
  fixed ``y^0 = 0`` against ``y*^0 = 0`` in its loss.

RTRL would add the nonlocal term ``tanh'(u_i) sum_k W_ik p_kj / tau`` to ``p`` (and use
``W_out^T`` in place of ``B``); RFLO drops it, which makes the rule local.

Batched: ``seed`` may be a sequence, one independent network per seed (weights
``[batch, ...]``), all trained on the same or on per-network inputs. Weights are indexed
``[post, pre]`` like everywhere in neurocomp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def init_weights(
    n_in: int, n_rec: int, n_out: int, seed: int, g: float = 1.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The notebook's initialization, drawn in its order from ``default_rng(seed)``:
    ``W_in ~ 0.1 (U[0,1) - 1)`` (in [-0.1, 0), as the notebook has it), ``W ~ N(0, g^2/n_rec)``,
    ``W_out ~ 0.1 U[-1, 1) / sqrt(n_rec)``, ``B ~ N(0, 1/n_out)``. Returns
    ``(W_in [n_rec, n_in], W [n_rec, n_rec], W_out [n_out, n_rec], B [n_rec, n_out])``."""
    rng = np.random.default_rng(seed)
    w_in = 0.1 * (rng.random((n_rec, n_in)) - 1.0)
    w = g * rng.standard_normal((n_rec, n_rec)) / np.sqrt(n_rec)
    w_out = 0.1 * (2.0 * rng.random((n_out, n_rec)) - 1.0) / np.sqrt(n_rec)
    b = rng.standard_normal((n_rec, n_out)) / np.sqrt(n_out)
    return w_in, w, w_out, b


def dtanh(u: np.ndarray) -> np.ndarray:
    """``tanh'(u) = 1 - tanh(u)^2``."""
    return 1.0 - np.tanh(u) ** 2


def _sum_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_t a[t] b[t]^T`` per network: ``[T, batch, m]`` and ``[T, batch, n]`` ->
    ``[batch, m, n]``."""
    return np.matmul(a.transpose(1, 2, 0), b.transpose(1, 0, 2))


@dataclass(eq=False)  # weights are arrays: compare them explicitly
class RfloRate:
    """Murray's rate network trained with RFLO, batched over independent networks.

    ``n_in``, ``n_rec``, ``n_out``: sizes. ``tau``: time constant in steps. ``lr_in``,
    ``lr_rec``, ``lr_out``: learning rates of ``W_in``, ``W``, ``W_out`` (dimensionless; the
    update is divided by the trial length ``T``). ``seed``: one int (one network) or a
    sequence (one network per seed). ``g``: gain of the initial recurrent weights. ``h0``:
    the initial rate of every unit at the start of each trial.

    State after construction: ``W [batch, n_rec, n_rec]``, ``W_in [batch, n_rec, n_in]``,
    ``W_out [batch, n_out, n_rec]``, ``B [batch, n_rec, n_out]`` (float64; assign to them to
    start from other weights).
    """

    n_in: int
    n_rec: int
    n_out: int
    tau: float = 10.0
    lr_in: float = 0.0
    lr_rec: float = 0.03
    lr_out: float = 0.03
    seed: int | Sequence[int] = 0
    g: float = 1.5
    h0: float = 0.1
    W: np.ndarray = field(init=False, repr=False)
    W_in: np.ndarray = field(init=False, repr=False)
    W_out: np.ndarray = field(init=False, repr=False)
    B: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tau < 1.0:
            raise ValueError(f"tau must be >= 1 step, got {self.tau}")
        seeds = [self.seed] if np.isscalar(self.seed) else list(self.seed)
        drawn = [init_weights(self.n_in, self.n_rec, self.n_out, int(s), self.g) for s in seeds]
        self.W_in, self.W, self.W_out, self.B = (np.stack(m) for m in zip(*drawn, strict=True))

    @property
    def batch(self) -> int:
        """The number of independent networks."""
        return self.W.shape[0]

    # -- inputs ---------------------------------------------------------------------------

    def _per_network(self, a: np.ndarray, n: int, what: str) -> np.ndarray:
        """``[T, n]`` (shared by every network) or ``[T, batch, n]`` -> ``[T, batch, n]``."""
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 2:
            a = np.broadcast_to(a[:, None, :], (a.shape[0], self.batch, a.shape[1]))
        if a.ndim != 3 or a.shape[1:] != (self.batch, n):
            raise ValueError(f"{what} must be [T, {n}] or [T, {self.batch}, {n}], got {a.shape}")
        return a

    # -- one trial ------------------------------------------------------------------------

    def trial(self, x: np.ndarray, target: np.ndarray, learn: bool = True, online: bool = False) -> np.ndarray:
        """Run one trial of ``T`` steps from ``h0``: ``x`` ``[T, n_in]`` or
        ``[T, batch, n_in]``, ``target`` likewise with ``n_out``. With ``learn``, apply RFLO's
        updates (summed and applied at the end, or each step with ``online``). Returns the
        outputs ``y`` ``[T, batch, n_out]`` (the outputs before this trial's updates, except
        what ``online`` changed within the trial)."""
        x = self._per_network(x, self.n_in, "x")
        target = self._per_network(target, self.n_out, "target")
        if x.shape[0] != target.shape[0]:
            raise ValueError(f"x has {x.shape[0]} steps, target {target.shape[0]}")
        if learn and (online or self.traces_per_step):
            return self._trial_steps(x, target, online=online)
        return self._trial_filtered(x, target, learn)

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network over one trial with the current (constant) weights: ``h^0 .. h^T``
        ``[T + 1, batch, N]``, ``tanh(u^1) .. tanh(u^T)`` ``[T, batch, N]`` and ``y^1 .. y^T``
        ``[T, batch, n_out]``."""
        T, nb, n = x.shape[0], self.batch, self.n_rec
        # Time-major storage: the state of step t is one contiguous [b, N] block, which numpy's
        # batched matmul needs to reach BLAS (3x faster than a strided view).
        drive = np.einsum("bik,tbk->tbi", self.W_in, x)  # W_in x^t for every step at once
        hs = np.empty((T + 1, nb, n))
        z = np.empty((T, nb, n))
        hs[0] = self.h0
        wh = np.empty((nb, n, 1))
        for t in range(T):
            h = hs[t]
            np.matmul(self.W, h[:, :, None], out=wh)
            u = np.add(wh[:, :, 0], drive[t], out=z[t])
            np.tanh(u, out=u)
            np.add(h, (u - h) / self.tau, out=hs[t + 1])
        y = np.matmul(hs[1:].transpose(1, 0, 2), self.W_out.transpose(0, 2, 1)).transpose(1, 0, 2)
        return hs, z, y

    def _errors(self, y: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The error for ``W_out``'s delta rule and the learning signal ``L = B eps``, each
        through :meth:`_signal` (``[..., batch, n_out]`` and ``[..., batch, N]``)."""
        err = target - y
        sig = self._signal(np.matmul(err[..., None, :], self.B.transpose(0, 2, 1))[..., 0, :], "learning")
        return self._signal(err, "error"), sig

    def _trial_filtered(self, x: np.ndarray, target: np.ndarray, learn: bool) -> np.ndarray:
        """Trial-end updates in closed form. The weights are constant within the trial, so
        the forward pass runs alone and the eligibility sums are rewritten without the
        ``[N, N]`` trace per step::

            sum_t L_i^t p_ij^t = 1/tau sum_k tanh'(u_i^k) R_i^k h_j^(k-1),
            R^k = sum_(t >= k) (1 - 1/tau)^(t-k) L^t        (L filtered backwards in time)

        which is one matrix product over time. Equal to :meth:`_trial_steps` up to float
        rounding (the tests check 1e-12)."""
        hs, z, y = self._forward(x)
        if not learn:
            return y
        T = x.shape[0]
        err, sig = self._errors(y, target)
        # R^k = sum_{t>=k} a^(t-k) L^t as one product with the upper-triangular [T, T] filter
        back = (self._backward_filter(T) @ sig.reshape(T, -1)).reshape(sig.shape)  # R^k, [T, b, N]
        g = ((1.0 - z**2) * back / self.tau).transpose(1, 2, 0)  # tanh'(u_i^k) R_i^k / tau, [b, N, T]
        dW = np.matmul(g, hs[:-1].transpose(1, 0, 2))  # sums over time as [b, N, T] @ [b, T, N]
        dW_in = np.matmul(g, x.transpose(1, 0, 2)) if self.lr_in != 0.0 else np.zeros_like(self.W_in)
        self._apply((dW, dW_in, _sum_outer(err, hs[1:])), T)
        return y

    def _backward_filter(self, T: int) -> np.ndarray:
        """``F[k, t] = (1 - 1/tau)^(t - k)`` for ``t >= k``, else 0 (``[T, T]``, cached)."""
        cache = self.__dict__.setdefault("_filters", {})
        if (T, self.tau) not in cache:
            lag = np.arange(T)[None, :] - np.arange(T)[:, None]
            cache[(T, self.tau)] = np.where(lag >= 0, (1.0 - 1.0 / self.tau) ** np.maximum(lag, 0), 0.0)
        return cache[(T, self.tau)]

    def _trial_steps(self, x: np.ndarray, target: np.ndarray, online: bool) -> np.ndarray:
        """The equations step by step, with the ``[batch, N, N]`` eligibility traces.

        With trial-end updates the weights are constant within the trial, so the forward pass
        and the signals come first and the traces are then formed step by step; ``online``
        interleaves them, each step using the weights the previous one left. ``q`` is formed
        only when ``lr_in != 0`` (it is multiplied by ``lr_in``).

        The hooks :meth:`_trace` (a new trace value), :meth:`_signal` (an error or learning
        signal) and :meth:`_apply` (a weight update) are the identity here; a fixed-point model
        overrides them to round to its formats, so there is one definition of the rule."""
        T, nb, n = x.shape[0], self.batch, self.n_rec
        a = 1.0 - 1.0 / self.tau
        p = np.zeros((nb, n, n))
        q = np.zeros((nb, n, self.n_in))
        tmp = np.empty_like(p)
        if not online:
            hs, z, ys = self._forward(x)
            err, sig = self._errors(ys, target)
            d = (1.0 - z**2) / self.tau  # tanh'(u^t) / tau
            acc_w, acc_in = np.zeros_like(self.W), np.zeros_like(self.W_in)
            for t in range(T):
                p *= a
                p += np.multiply(d[t][:, :, None], hs[t][:, None, :], out=tmp)
                p = self._trace(p)
                acc_w += np.multiply(sig[t][:, :, None], p, out=tmp)
                if self.lr_in != 0.0:
                    q = self._trace(a * q + d[t][:, :, None] * x[t][:, None, :])
                    acc_in += sig[t][:, :, None] * q
            self._apply((acc_w, acc_in, _sum_outer(err, hs[1:])), T)
            return ys
        h = np.full((nb, n), self.h0)
        ys = np.empty((T, nb, self.n_out))
        for t in range(T):
            u = np.matmul(self.W, h[:, :, None])[:, :, 0] + np.matmul(self.W_in, x[t][:, :, None])[:, :, 0]
            z = np.tanh(u)
            h_prev, h = h, h + (z - h) / self.tau
            ys[t] = np.matmul(self.W_out, h[:, :, None])[:, :, 0]
            err, sig = self._errors(ys[t], target[t])
            d = (1.0 - z**2) / self.tau
            p *= a
            p += np.multiply(d[:, :, None], h_prev[:, None, :], out=tmp)
            p = self._trace(p)
            if self.lr_in != 0.0:
                q = self._trace(a * q + d[:, :, None] * x[t][:, None, :])
            inc = (np.multiply(sig[:, :, None], p, out=tmp), sig[:, :, None] * q, err[:, :, None] * h[:, None, :])
            self._apply(inc, T)
        return ys

    # Hooks of a fixed-point model (identity in the float reference). `_signal` rounds the
    # error ("error", [..., batch, n_out]) or the learning signal ("learning", [..., batch,
    # n_rec]), `_trace` a new eligibility-trace value (both may round their argument in place:
    # the callers pass arrays of their own), `_apply` adds the (summed) increments to the
    # weights. A model that rounds traces sets `traces_per_step = True`: the closed form of
    # trial-end updates never forms the traces.
    traces_per_step = False

    def _trace(self, p: np.ndarray) -> np.ndarray:
        return p

    def _signal(self, s: np.ndarray, which: str) -> np.ndarray:
        return s

    def _apply(self, inc: Sequence[np.ndarray], T: int) -> None:
        """Add ``lr / T * inc`` to ``(W, W_in, W_out)``."""
        self.W += self.lr_rec / T * inc[0]
        self.W_in += self.lr_in / T * inc[1]
        self.W_out += self.lr_out / T * inc[2]

    # -- training -------------------------------------------------------------------------

    def train(
        self, x: np.ndarray, target: np.ndarray, trials: int, online: bool = False, stepwise: bool = False
    ) -> np.ndarray:
        """Train on the same trial ``trials`` times; returns the normalized error
        ``mean(eps^2) / var(y*)`` of every trial (measured during it, before its trial-end
        update) ``[trials, batch]``. ``stepwise`` forms the traces step by step even for
        trial-end updates, where the closed form would do (slower; for checks)."""
        target3 = self._per_network(target, self.n_out, "target")
        var = np.var(target3, axis=(0, 2))  # per network
        out = np.empty((trials, self.batch))
        for i in range(trials):
            if stepwise:
                y = self._trial_steps(self._per_network(x, self.n_in, "x"), target3, online=online)
            else:
                y = self.trial(x, target3, online=online)
            out[i] = np.mean((y - target3) ** 2, axis=(0, 2)) / var
        return out
