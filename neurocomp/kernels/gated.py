"""The gated theta network's step (Huh & Sejnowski 2018): one template, two arithmetics.

:func:`run_gated` is the one definition of the discrete model that
:class:`~neurocomp.reference.gated.GatedNet` documents; the float64 reference (training) and
the emulator (a spinnaker2 Program's float32 neurons) both call it, so the two differ only in
the dtype of the arrays they pass. Every constant is taken in that dtype (``pi`` included),
so a float32 run rounds every operation to float32 as the core's single-precision FPU does
(no fastmath, no fused multiply-add; a core's libm may round the cosine or sine differently
in the last bit). Sums run in a fixed order: over the inputs, then the recurrent charges,
then the bias.
"""

from __future__ import annotations

import numpy as np

from . import kernel


def passages(theta: np.ndarray) -> np.ndarray:
    """Zone passages per step from phases ``[T + 1, ...]`` (rad): crossings of ``pi`` (mod
    2 pi), the gated neuron's spikes, ``[T, ...]`` (float64 integers)."""
    return np.diff(np.floor((np.asarray(theta, np.float64) - np.pi) / (2 * np.pi)), axis=0)


@kernel(inline="always")
def gate_charge(theta, width, cosine, pi, two_pi, half):
    """``G(theta)``: passages of the active zone (centred on ``pi + 2 pi k``, ``width`` rad)
    plus the fraction of the current one; ``cosine``: the raised-cosine gate's integral, else
    the rectangular gate's. All arguments in one dtype."""
    k = np.floor((theta - pi) / two_pi + half)  # the nearest zone
    u = min(max((theta - pi - two_pi * k) / width, -half), half)
    ramp = u + half
    if cosine:
        ramp = ramp + np.sin(two_pi * u) / two_pi
    return k + ramp


@kernel
def gate_charges(theta, width, cosine, out):
    """``out[i] = G(theta[i])`` (:func:`gate_charge`) over flat arrays of one dtype."""
    c = theta.dtype.type
    pi = c(np.pi)
    for i in range(theta.shape[0]):
        out[i] = gate_charge(theta[i], width[i], cosine, pi, c(2.0) * pi, c(0.5))


@kernel
def run_gated(x, w_in, w_rec, w_out, bias, eps, alpha, beta, width, cosine, kappa, b_out, th, s, cur, y, y0):
    """Run ``T = x.shape[0]`` steps of the discrete model, for every trial::

        I_t         = U x_t + W s_t + I0
        theta_{t+1} = theta_t + eps ((1 - cos theta_t) + (1 + cos theta_t) I_t)
        s_{t+1}     = alpha s_t + beta (G(theta_{t+1}) - G(theta_t))
        y_t         = kappa y_{t-1} + (1 - kappa) (O s_{t+1} + b)

    ``x`` ``[T, batch, n_in]`` input currents; ``w_in`` ``[n, n_in]``, ``w_rec`` ``[n, n]``
    (ms), ``w_out`` ``[n_out, n]`` (ms); per neuron ``bias`` (I0), ``eps = dt/tau_v``,
    ``alpha = exp(-dt/tau_s)``, ``beta = (1 - alpha)/dt`` (1/ms), ``width`` (rad); the readout's
    ``kappa`` and ``b_out``. ``th`` and ``s`` ``[T + 1, batch, n]`` hold the initial state in
    row 0 and receive each step's result; ``cur`` ``[T, batch, n]`` receives ``I``, ``y``
    ``[T, batch, n_out]`` the readout, ``y0`` ``[batch, n_out]`` is its state before the run.
    Every array and scalar in one dtype (float64 or float32)."""
    c = th.dtype.type
    pi, one, half = c(np.pi), c(1.0), c(0.5)
    two_pi = c(2.0) * pi
    T, nb, n = x.shape[0], x.shape[1], w_rec.shape[0]
    g = np.empty(n, th.dtype)
    for b in range(nb):
        for i in range(n):
            g[i] = gate_charge(th[0, b, i], width[i], cosine, pi, two_pi, half)
        yk = y0[b].copy()
        for t in range(T):
            for i in range(n):
                acc = c(0.0)
                for k in range(x.shape[2]):
                    acc += w_in[i, k] * x[t, b, k]
                for j in range(n):
                    acc += w_rec[i, j] * s[t, b, j]
                cur[t, b, i] = acc + bias[i]
            for i in range(n):
                th_i, cs = th[t, b, i], np.cos(th[t, b, i])
                th_n = th_i + eps[i] * ((one - cs) + (one + cs) * cur[t, b, i])
                g_n = gate_charge(th_n, width[i], cosine, pi, two_pi, half)
                s[t + 1, b, i] = alpha[i] * s[t, b, i] + beta[i] * (g_n - g[i])
                th[t + 1, b, i] = th_n
                g[i] = g_n
            for o in range(w_out.shape[0]):
                acc = c(0.0)
                for i in range(n):
                    acc += w_out[o, i] * s[t + 1, b, i]
                yk[o] = kappa * yk[o] + (one - kappa) * (acc + b_out[o])
                y[t, b, o] = yk[o]
