"""Online e-prop's trial, compiled: the kernels of :meth:`~neurocomp.reference.eprop.RecurrentSNN.run_online`.

Independent of the emulator on purpose (the float64 reference is the check of it).

A trial runs in one kernel call (:func:`steps`) except at the labelled steps of the
cross-entropy loss, whose error the caller computes with the one softmax
(:func:`~neurocomp.learning.quantities.softmax_error`, numpy's ``exp``) before the kernel
resumes. Every operation is the one :meth:`RecurrentSNN.eprop_online` writes, in its order,
except the matrix-vector products of the inputs and the readout, which sum each row in the
order of its columns (BLAS sums in blocks: the two differ by float64 rounding), and the rate
regularizer, which the online form adds to every step's learning signal (the trial form: its
gradient on the unfiltered eligibility).

Arguments are tuples of arrays, unpacked by position:

* ``cfg``: ``(lr, reg, f0, ce, feedback, recurrent_latency, s_y, rate_decay)`` (``feedback``
  the index in ``FEEDBACKS``: 0 random, 1 symmetric, 2 adaptive; ``f0`` the target rate per
  step; ``rate_decay`` the running rate's, :func:`~neurocomp.learning.quantities.rate_decay`);
* ``w``: ``(W_in, mask_in, W_in * mask_in, W_rec, mask_rec, W_rec * mask_rec, W_out, B)``,
  updated in place (the masked copies kept equal);
* ``neurons``: :func:`.neuron.step`'s constants and ``[1, n]`` state;
* ``elig``: ``(lo, gamma, alpha, rho, beta, cad, zero, v_th, s_v, s_y, kappa, eps_v, eps_a,
  hist, e_bar)``, the per-synapse arrays ``[n_rec, n_in + n_rec]`` (``hist``: the ``e`` of
  the last ``lo + 1`` steps, ``lo`` the readout latency);
* ``rec``: the recordings ``(V, Z, a, A, psi, zr, y)``, ``[T, n]``;
* ``sums``: ``(y, z_bar, running rate, refractory mask)`` of the current step (the running
  rate :func:`~neurocomp.learning.quantities.running_rate`, spikes per step).
"""

from __future__ import annotations

import numpy as np

from ..kernels import kernel
from ..learning.quantities import pseudo_derivative, rate_regularization, running_rate
from . import neuron

# positions in cfg
LR, REG, F0, CE, FEEDBACK, REC_LATENCY, S_Y, RATE_DECAY = range(8)


@kernel
def steps(t, err, cfg, valid, tg, x, w, neurons, elig, rec, sums):
    """The trial from step ``t`` (with ``t < 0``: first the learning of step ``-1 - t`` with
    the caller's ``err``) to its end, or to a labelled step of the ce loss: returns that
    step, or ``T``. ``valid`` ``[T]``: steps with a target ``tg`` ``[T, n_out]``; ``x``
    ``[T, n_in]``: the inputs as they reach the neurons."""
    T = x.shape[0]
    if t < 0:
        t = -1 - t
        _learn(t, err, True, cfg, T, x[t], w, elig, rec, sums)
        t += 1
    while t < T:
        _forward(t, cfg, x[t], w, neurons, elig, rec, sums)
        if valid[t] and cfg[CE]:
            return t
        err = rec[6][t] - tg[t] if valid[t] else np.zeros(tg.shape[1])
        _learn(t, err, valid[t] or cfg[REG] != 0.0, cfg, T, x[t], w, elig, rec, sums)
        t += 1
    return T


@kernel
def _forward(t, cfg, x, w, neurons, elig, rec, sums):
    """Step ``t``'s dynamics: the recurrent neurons (:func:`.neuron.step`) on the scaled
    inputs, the readout ``y`` and its filter of ``z``, the running rate; recorded."""
    k, v, u, a, z, refr, th, v_post = neurons
    V, Z, Aa, A, _, ZR, Y = rec
    y, zf, f, blocked = sums
    lr_rec, s_y, lo, kappa, s_v = cfg[REC_LATENCY], cfg[S_Y], elig[0], elig[10], elig[8]
    n = v.shape[1]
    zr = Z[t - lr_rec] if t >= lr_rec else np.zeros(n)
    for j in range(n):
        blocked[j] = 1.0 if refr[0, j] > 0.0 else 0.0
    drive, syn = s_v * _matvec(w[2], x), s_v * _matvec(w[5], zr)
    neuron.step(k, v, u, a, z, refr, drive.reshape(1, n), syn.reshape(1, n), -1.0, th, v_post)
    V[t], Z[t], Aa[t], A[t], ZR[t] = v[0], z[0], a[0], th[0], zr
    z_in = Z[t - lo] if t >= lo else np.zeros(n)
    W_out = w[6]
    for c in range(y.shape[0]):
        acc = 0.0
        for j in range(n):
            if z_in[j] != 0.0:
                acc += s_y * W_out[c, j] * z_in[j]
        y[c] = kappa * y[c] + acc
    for j in range(n):
        zf[j] = kappa * zf[j] + s_y * z_in[j]
        f[j] = running_rate(f[j], z[0, j], cfg[RATE_DECAY])
    Y[t] = y


@kernel
def _learn(t, err, learn, cfg, T, x, w, elig, rec, sums):
    """Step ``t``'s eligibility and, with ``learn``, its update, one pass over the synapses
    ``j, i`` (``i``: the inputs ``x``, then the recurrent spikes): ``psi_j`` (0 while
    refractory), ``eps_a <- cad psi_prev eps_v + (rho - cad beta psi_prev) eps_a`` (ALIF),
    ``eps_v <- alpha keep eps_v + s_v pre`` (``keep`` 0 after a zero reset), ``e = psi (eps_v
    - beta eps_a)``, ``e_bar <- kappa e_bar + s_y e_{t - lo}``; then ``W -= lr L e_bar``
    (masked; ``L = B err + reg (f - f0)``, ``W_out^T`` for ``B`` with symmetric feedback, ``f``
    the running rate: :func:`~neurocomp.learning.quantities.rate_regularization`), ``W_out -=
    lr err z_bar`` and, with adaptive feedback, ``B`` too."""
    lr, reg, f0, feedback = cfg[LR], cfg[REG], cfg[F0], cfg[FEEDBACK]
    W_in, mask_in, w_in, W_rec, mask_rec, w_rec, W_out, B = w
    lo, gamma, alpha, rho, beta, cad, zero, v_th, s_v, s_y, kappa, eps_v, eps_a, hist, e_bar = elig
    V, Z, _, A, PSI, ZR, _ = rec
    zf, f, blocked = sums[1], sums[2], sums[3]
    n, n_in = eps_v.shape[0], W_in.shape[1]
    e, e_in = hist[t % hist.shape[0]], hist[(t - lo) % hist.shape[0]]
    z_prev, psi_prev = (Z[t - 1], PSI[t - 1]) if t else (np.zeros(n), np.zeros(n))
    for j in range(n):
        p = 0.0 if blocked[j] != 0.0 else (gamma / v_th[j]) * pseudo_derivative(V[t, j], A[t, j], v_th[j])
        PSI[t, j] = p
        keep = alpha[j] * (1.0 - z_prev[j] if zero[j] != 0.0 else 1.0)
        ca, cb = cad[j] * psi_prev[j], rho[j] - cad[j] * beta[j] * psi_prev[j]
        L = 0.0
        for c in range(err.shape[0]):
            L += (W_out[c, j] if feedback == 1 else B[j, c]) * err[c]
        if reg != 0.0:  # the rate regularizer's term of the learning signal, every step
            L += rate_regularization(f[j], f0, reg)
        row = (p, keep, ca, cb, beta[j], s_v[j], kappa, s_y, L, -lr, learn)
        _row(row, x, 0, eps_v[j], eps_a[j], e[j], e_in[j], e_bar[j], W_in[j], mask_in[j], w_in[j])
        _row(row, ZR[t], n_in, eps_v[j], eps_a[j], e[j], e_in[j], e_bar[j], W_rec[j], mask_rec[j], w_rec[j])
    if learn:
        for c in range(err.shape[0]):
            for j in range(n):
                d = -lr * (err[c] * zf[j])
                W_out[c, j] += d
                if feedback == 2:
                    B[j, c] += d


@kernel
def _row(row, pre, o, eps_v, eps_a, e, e_in, e_bar, W, mask, w):
    """:func:`_learn` for the synapses ``o .. o + len(pre)`` of one neuron: presynaptic
    ``pre``, weights ``W`` (``w`` their masked copy). ``row``: the neuron's ``psi``, ``alpha
    keep``, ``cad psi_prev``, ``rho - cad beta psi_prev``, ``beta``, ``s_v``, then ``kappa``,
    ``s_y``, ``L``, ``-lr`` and whether to learn. (At ``t = 0`` the
    traces are 0, so decaying them changes nothing; ``hist`` holds 0 for ``t < lo``.)"""
    p, keep, ca, cb, beta, s_v, kappa, s_y, L, neg_lr, learn = row
    adapt = beta != 0.0  # a LIF's eps_a is only ever multiplied by beta = 0: not kept
    for i in range(pre.shape[0]):
        k = o + i
        ev = eps_v[k]
        if adapt:
            eps_a[k] = ca * ev + cb * eps_a[k]
        ev = keep * ev + s_v * pre[i]
        eps_v[k] = ev
        ej = p * (ev - beta * eps_a[k]) if adapt else p * ev
        e[k] = ej
        eb = kappa * e_bar[k] + s_y * e_in[k]
        e_bar[k] = eb
        if learn:
            d = neg_lr * (L * eb)
            W[i] += d * mask[i]
            w[i] = W[i] * mask[i]


@kernel
def _matvec(W, x):
    """``W @ x``, each row summed in the order of its columns (zero entries of ``x`` skipped:
    adding ``W x = 0`` changes no sum)."""
    out = np.zeros(W.shape[0])
    for i in range(x.shape[0]):
        if x[i] != 0.0:
            for j in range(W.shape[0]):
                out[j] += W[j, i] * x[i]
    return out
