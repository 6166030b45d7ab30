"""Compiled online e-prop (RecurrentSNN.run_online) against an independent numpy oracle.

The oracle below is a test-only re-implementation (numpy, one step per loop iteration, BLAS
matrix-vector products), written from the module docstring's equations: the compiled trial
must give the same spikes, and weights and traces equal to float64 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurocomp.reference import Conventions
from neurocomp.reference.eprop import EpropParams, RecurrentSNN

# The compiled products sum each row in the order of its columns, BLAS in its own blocked
# order: the two differ by a few ulp per product, which the trial accumulates over 80 steps
# and ~80 updates; 1e-12 of the largest value (~4500 ulp of it), far below any change of the
# dynamics (values near 0 after a cancellation are compared to that scale, not their own).
RTOL = 1e-12


def _oracle(m: RecurrentSNN, x, target, p: EpropParams, B, lr):
    """Test-only oracle: online e-prop in numpy, step by step (no code shared with the model)."""
    T, n, n_in = x.shape[0], m.n_rec, m.n_in
    c = m.conventions
    nxt = c.reset_timing == "next_step"
    s_v = 1.0 - m.alpha if c.input_scale == "one_minus_alpha" else np.ones(n)
    s_y = 1.0 - m.kappa if c.input_scale == "one_minus_alpha" else 1.0
    r = m.v_th if nxt else m.alpha * m.v_th
    cad = np.where(m.beta != 0, 1.0 if nxt else m.rho, 0.0)
    xin = np.zeros_like(x[:, 0])
    xin[c.input_latency :] = x[: T - c.input_latency, 0] if c.input_latency else x[:, 0]
    v, a, z, refr, y, zf, f = (np.zeros(n) for _ in range(7))
    d = np.exp(-1.0 / p.reg_tau_ms)  # the running rate's decay at 1 ms steps: f <- d f + (1 - d) z
    y = np.zeros(m.n_out)
    eps_v, eps_a, e_bar = (np.zeros((n, n_in + n)) for _ in range(3))
    es, Z, PSI, Y = [], np.zeros((T, n)), np.zeros((T, n)), np.zeros((T, m.n_out))
    valid = ~np.isnan(target[:, 0]).any(axis=1)
    tg = np.nan_to_num(target[:, 0])
    W0 = {k: getattr(m, k).copy() for k in ("W_in", "W_rec", "W_out")}
    for t in range(T):
        zr = Z[t - c.recurrent_latency] if t >= c.recurrent_latency else np.zeros(n)
        keep = np.where(m.zero_reset, 1.0 - z, 1.0)
        u = s_v * ((m.W_in * m.mask_in) @ xin[t]) + s_v * ((m.W_rec * m.mask_rec) @ zr)
        v = m.alpha * keep * v - np.where(m.zero_reset, 0.0, r) * z + u
        a = m.rho * a + cad * z
        A = m.v_th + m.beta * a
        blocked = refr > 0
        z = np.where(blocked, 0.0, (v > A) * 1.0)
        refr = np.where(z > 0, m.n_ref, np.maximum(refr - 1, 0))
        psi = np.where(blocked, 0.0, p.dampening / m.v_th * np.maximum(0, 1 - np.abs(v - A) / m.v_th))
        pre = np.concatenate([xin[t], zr])
        if t:
            eps_a = (cad * PSI[t - 1])[:, None] * eps_v + (m.rho - cad * m.beta * PSI[t - 1])[:, None] * eps_a
            eps_v = (m.alpha * keep)[:, None] * eps_v
        eps_v = eps_v + s_v[:, None] * pre[None, :]
        e = psi[:, None] * (eps_v - m.beta[:, None] * eps_a)
        es.append(e)
        lo = c.readout_latency
        e_bar = m.kappa * e_bar + (s_y * es[t - lo] if t >= lo else 0.0)
        z_in = Z[t - lo] if t >= lo and lo else (z if not lo else np.zeros(n))
        y = m.kappa * y + s_y * (m.W_out @ z_in)
        zf = m.kappa * zf + s_y * z_in
        Z[t], PSI[t], Y[t] = z, psi, y
        f = d * f + (1 - d) * z
        R = p.reg * (f - p.reg_rate_hz / 1000.0)  # the rate term of every step's learning signal
        if not (valid[t] or p.reg):
            continue
        err = np.zeros(m.n_out)
        if valid[t] and p.loss == "ce":
            q = np.exp(y - y.max())
            err = q / q.sum() - tg[t]  # each labelled step's error, not averaged over them
        elif valid[t]:
            err = y - tg[t]
        L = (m.W_out.T if p.feedback == "symmetric" else B) @ err + R
        dW = -lr * (L[:, None] * e_bar)
        m.W_in += dW[:, :n_in] * m.mask_in
        m.W_rec += dW[:, n_in:] * m.mask_rec
        d_out = -lr * np.outer(err, zf)
        m.W_out += d_out
        if p.feedback == "adaptive":
            B += d_out.T
    return Z, PSI, Y, {k: getattr(m, k) - W0[k] for k in W0}


def _net(conv: Conventions, zero_reset: bool, n_ref: int) -> RecurrentSNN:
    """3 inputs, 3 LIF + 3 ALIF, 2 readouts; weights large enough that every neuron spikes."""
    rng = np.random.default_rng(1)
    gain = 1 / (1 - np.exp(-1 / 20)) if conv.input_scale == "one_minus_alpha" else 1.0
    return RecurrentSNN(
        gain * rng.normal(0, 1.0, (6, 3)), gain * rng.normal(0, 0.3, (6, 6)), rng.normal(0, 0.5, (2, 6)),
        alpha=np.exp(-1 / 20), v_th=0.62, beta=np.r_[np.zeros(3), np.full(3, 0.07)],
        rho=np.r_[np.zeros(3), np.full(3, np.exp(-1 / 500))], kappa=np.exp(-1 / 20), conventions=conv,
        zero_reset=zero_reset, n_ref=n_ref,
    )  # fmt: skip


CASES = [("chip", False, 0), ("chip", True, 0), ("bellec", False, 0), ("bellec", True, 2)]


@pytest.mark.parametrize("conv,zero_reset,n_ref", CASES)
@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("feedback,reg", [("random", 0.0), ("symmetric", 0.5), ("adaptive", 0.5)])
def test_compiled_online_eprop_equals_the_numpy_oracle(conv, zero_reset, n_ref, loss, feedback, reg):
    conventions = {"chip": Conventions.chip(), "bellec": Conventions.bellec()}[conv]
    rng = np.random.default_rng(100)
    T = 80
    x = (rng.random((T, 1, 3)) < 0.3).astype(float)
    if loss == "ce":  # one-hot labels on the second half only (the kernel stops at each of them)
        target = np.full((T, 1, 2), np.nan)
        target[T // 2 :, 0] = [1.0, 0.0]
    else:
        target = rng.normal(0, 1, (T, 1, 2))
        target[::7] = np.nan
    # reg / T: the per-step rate term at the size of the trial form's reg (a larger one moves the
    # weights so far within the trial that the two summation orders' rounding grows past RTOL)
    p = EpropParams(lr=1e-2, loss=loss, feedback=feedback, reg=reg / T, reg_rate_hz=20.0, dampening=0.3)
    model = _net(conventions, zero_reset, n_ref)
    B = model.random_feedback(3)
    oracle = model.copy()
    Z, PSI, Y, dw_oracle = _oracle(oracle, x, target, p, B.copy(), 1e-2)
    tr, dw = model.copy().run_online(x, target, p, B.copy(), 1e-2)
    assert Z.sum() > 20  # the neurons spike: the dynamics are exercised
    assert np.array_equal(tr.z[:, 0], Z)
    np.testing.assert_allclose(tr.psi[:, 0], PSI, rtol=0, atol=RTOL * np.abs(PSI).max())
    np.testing.assert_allclose(tr.y[:, 0], Y, rtol=0, atol=RTOL * np.abs(Y).max())
    for k in dw:  # dw = W_end - W_0: its rounding is at the scale of the weights (or of dw)
        assert np.abs(dw[k]).max() > 0, k
        scale = max(np.abs(getattr(model, k)).max(), np.abs(dw_oracle[k]).max())
        np.testing.assert_allclose(dw[k], dw_oracle[k], rtol=0, atol=RTOL * scale, err_msg=k)
