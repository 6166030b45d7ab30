"""The float64 neuron step of the two references (:class:`~neurocomp.reference.simulator.Reference`
and :class:`~neurocomp.reference.eprop.RecurrentSNN`): LIF, ALIF and LI, one definition.

Independent of the emulator on purpose: the references are the float check of it.

The step carries the membrane *before* its reset (``v``) and the last step's spikes
(``z``); the reset of step ``t - 1`` acts at the start of step ``t``, in the form its
conventions give it (:class:`~neurocomp.reference.conventions.Conventions`). Per neuron
(columns ``j`` of the constants, :func:`constants`), a step does::

    u_t = du u_{t-1} + x_t                                  (du = 0: delta synapses)
    v_t = dv (1 - z_{t-1} zero) v_{t-1} - r z_{t-1} + dv v_reset zero z_{t-1} + u_t + x2_t
    a_t = rho a_{t-1} + cad z_{t-1};   A_t = v_th + beta a_t
    z_t = v_t > A_t, 0 while refractory (the R steps after a spike)

``zero``: 1 for a reset to ``v_reset``; ``r``: the subtractive reset as the next step sees it
(``dv v_th`` when it acts at once, ``v_th`` when it acts in the next step, undecayed; 0 for a
zero reset); ``cad``: the adaptation increment as the next step sees it (``rho`` or 1; 0 for
a LIF). ``x2`` is a second input added after ``u`` (the bias, or the recurrent input of
e-prop's network, kept apart so that the sum's rounding is the caller's). With ``hold``
(the chip's refractoriness) a refractory neuron's ``v`` keeps its reset value, undecayed,
while ``u`` and ``a`` evolve. An LI is the step with ``v_th = inf``. ``smooth >= 0`` replaces
the spike by ``smooth * S((v - A) / v_th)`` (``S``: the integral of the triangle), whose
derivative is the pseudo-derivative (finite-difference checks of BPTT).
"""

from __future__ import annotations

import numpy as np

from ..kernels import kernel

# rows of the constants matrix [N_CONSTANTS, n] (one column per neuron)
DV, DU, V_TH, V_RESET, ZERO, R, R_NOW, VR, BETA, RHO, CAD, N_REF, HOLD = range(13)
N_CONSTANTS = 13


def constants(
    n: int,
    dv,
    v_th=np.inf,
    du=0.0,
    zero=False,
    v_reset=0.0,
    next_step: bool = False,
    beta=0.0,
    rho=0.0,
    n_ref=0,
    hold: bool = False,
) -> np.ndarray:
    """The ``[N_CONSTANTS, n]`` float64 constants of ``n`` neurons (scalars or ``[n]``
    arrays): decays ``dv``, ``du`` and ``rho`` per step, ``v_th`` and ``v_reset`` (model
    voltage units; ``v_th`` inf: an LI), ``zero`` (reset to ``v_reset``, else subtract
    ``v_th``), ``next_step`` (the subtractive reset and the adaptation's jump act in the next
    step, else at once), ``beta`` (0: no adaptation), ``n_ref`` (refractory steps), ``hold``
    (the chip's refractoriness: ``v`` held)."""
    k = np.zeros((N_CONSTANTS, n))
    k[DV], k[DU], k[V_TH], k[BETA], k[N_REF] = dv, du, v_th, beta, n_ref
    zero = np.broadcast_to(np.asarray(zero, bool), (n,)) & np.isfinite(k[V_TH])  # an LI does not reset
    k[ZERO], k[V_RESET] = zero, np.where(zero, v_reset, 0.0)
    v_th_sub = np.where(zero | ~np.isfinite(k[V_TH]), 0.0, k[V_TH])  # the subtractive reset's size
    k[R] = v_th_sub if next_step else k[DV] * v_th_sub
    k[R_NOW] = 0.0 if next_step else v_th_sub  # what the step's own reset removes at once
    k[VR] = k[DV] * k[V_RESET]
    alif = k[BETA] != 0.0
    k[RHO] = np.where(alif, rho, 0.0)
    k[CAD] = np.where(alif, 1.0 if next_step else k[RHO], 0.0)
    k[HOLD] = float(hold)
    return k


@kernel
def step(k, v, u, a, z, refr, x, x2, smooth, th, v_post):
    """One step of ``[batch, n]`` neurons in place (module docstring): reads ``v``, ``u``,
    ``a``, ``z``, ``refr`` (refractory steps left) of the last step and the inputs ``x``,
    ``x2``; leaves this step's ``v`` (before the reset), ``u``, ``a`` (before the spike's
    jump), ``z`` and ``refr``, the threshold ``th`` it used and ``v_post`` (after the part of
    the reset that acts at once: the membrane a chip would show)."""
    for b in range(v.shape[0]):
        for j in range(v.shape[1]):
            zp, zero = z[b, j], k[ZERO, j]
            u[b, j] = k[DU, j] * u[b, j] + x[b, j]
            held = k[HOLD, j] != 0.0 and refr[b, j] > 0.0
            if held:  # the reset value, undecayed; no input
                vj = (1.0 - zp * zero) * v[b, j] - k[R_NOW, j] * zp + (zp * zero) * k[V_RESET, j]
            else:
                vj = k[DV, j] * (1.0 - zp * zero) * v[b, j] - k[R, j] * zp + k[VR, j] * zp + u[b, j] + x2[b, j]
            aj = k[RHO, j] * a[b, j] + k[CAD, j] * zp
            thj = k[V_TH, j] + k[BETA, j] * aj
            if smooth >= 0.0:
                zj = smooth * _smooth_step((vj - thj) * (1.0 / k[V_TH, j]))
            else:
                zj = 1.0 if vj > thj else 0.0
            if refr[b, j] > 0.0:
                zj = 0.0
            refr[b, j] = k[N_REF, j] if zj > 0.0 else max(refr[b, j] - 1.0, 0.0)
            v[b, j], a[b, j], z[b, j], th[b, j] = vj, aj, zj, thj
            v_post[b, j] = k[V_RESET, j] if zero != 0.0 and zj > 0.0 else vj - k[R_NOW, j] * zj


@kernel
def _smooth_step(x):
    """The integral of the triangle ``max(0, 1 - |x|)`` from -1: 0 below -1, 1 above 1."""
    c = min(max(x, -1.0), 1.0)
    return 0.5 * ((c + 1.0) * (c + 1.0)) if c < 0.0 else 1.0 - 0.5 * ((1.0 - c) * (1.0 - c))
