"""RFLO (Murray 2019, eLife 8:e43299): random feedback and local online learning.

Rate version (the paper's; ``eprop.md`` §4), per time step with ``tau`` in steps::

    u    = W h + W_in x
    h   <- h + (-h + tanh(u)) / tau
    y    = W_out h,    err = y* - y
    p_ij <- (1 - 1/tau) p_ij + tanh'(u_i) h_j(prev) / tau       (q_ik likewise with x_k)
    dW_ij = lr_rec * (B err)_i p_ij,  dW_in likewise with q,  dW_out = lr_out * err h^T

with ``B`` fixed and random (``N(0, 1/n_out)``). :class:`RfloRate` runs it batched, online
(updates every step) or accumulated over a trial and applied at its end.

Spiking version (random e-prop without readout filtering): ``e_ji = psi_j * z_bar_i`` used
directly, ``dW_ji = -lr * L_j * e_ji``, ``L = B err`` with B random. It lowers like e-prop
(:mod:`neurocomp.rules.eprop`) with the eligibility filter removed: on loihi2 the tag holds
``x1 * y3`` of the step (``dt = 2^-a * u0 * x1 * y3 - u0 * t``); on programmable cores the
exact form runs; ReckOn's learning signal is symmetric, so RFLO's random feedback does not
map onto it (the DRC says so); loihi1 has no graded third factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RfloRate:
    """Murray's rate network with RFLO, batched over trials (``[batch, ...]`` states)."""

    n_in: int
    n_rec: int
    n_out: int
    tau: float = 10.0
    lr_in: float = 0.0
    lr_rec: float = 0.03
    lr_out: float = 0.03
    seed: int = 0
    g: float = 1.5  # recurrent gain of the initial weights

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.W = self.g * rng.standard_normal((self.n_rec, self.n_rec)) / np.sqrt(self.n_rec)
        self.W_in = rng.standard_normal((self.n_rec, self.n_in)) / np.sqrt(max(self.n_in, 1))
        self.W_out = rng.standard_normal((self.n_out, self.n_rec)) / np.sqrt(self.n_rec)
        self.B = rng.standard_normal((self.n_rec, self.n_out)) / np.sqrt(self.n_out)

    def trial(self, x: np.ndarray, target: np.ndarray, learn: bool = True, online: bool = False) -> np.ndarray:
        """Run one trial of ``T`` steps (``x`` ``[T, n_in]``, ``target`` ``[T, n_out]``); with
        ``learn``, apply RFLO's updates (accumulated and applied at the end, as the reference
        notebook does, or every step with ``online``). Returns the outputs ``[T, n_out]``."""
        T = x.shape[0]
        h = np.zeros(self.n_rec)
        p = np.zeros((self.n_rec, self.n_rec))
        q = np.zeros((self.n_rec, self.n_in))
        dW, dW_in, dW_out = np.zeros_like(self.W), np.zeros_like(self.W_in), np.zeros_like(self.W_out)
        ys = np.zeros((T, self.n_out))
        for t in range(T):
            u = self.W @ h + self.W_in @ x[t]
            h_prev = h
            h = h + (-h + np.tanh(u)) / self.tau
            y = self.W_out @ h
            ys[t] = y
            if not learn:
                continue
            err = target[t] - y
            d = (1 - np.tanh(u) ** 2) / self.tau
            p = (1 - 1 / self.tau) * p + np.outer(d, h_prev)
            q = (1 - 1 / self.tau) * q + np.outer(d, x[t])
            sig = self.B @ err
            inc = (
                self.lr_rec / T * sig[:, None] * p,
                self.lr_in / T * sig[:, None] * q,
                self.lr_out / T * np.outer(err, h),
            )
            if online:
                self.W += inc[0]
                self.W_in += inc[1]
                self.W_out += inc[2]
            else:
                dW += inc[0]
                dW_in += inc[1]
                dW_out += inc[2]
        if learn and not online:
            self.W += dW
            self.W_in += dW_in
            self.W_out += dW_out
        return ys
