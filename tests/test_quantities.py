"""The shared learning quantities (neurocomp.learning.quantities) and their users."""

from __future__ import annotations

import numpy as np
import pytest

from neurocomp.kernels import kernel
from neurocomp.learning.quantities import (
    ce_error_exact,
    ce_error_fixed,
    ce_error_params,
    pseudo_derivative,
    rate_decay,
    rate_shift,
    running_rate,
    running_rate_fixed,
    softmax,
    softmax_error,
)
from neurocomp.rules.reckon import step_levels


@kernel
def _per_element(v, A, v_th):
    """pseudo_derivative called on scalars inside a kernel, into an array of v's dtype."""
    out = np.empty_like(v)
    for i in range(v.size):
        out[i] = pseudo_derivative(v[i], A[i], v_th)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pseudo_derivative_is_the_triangle_in_the_dtype_of_v_bit_for_bit(dtype):
    """The numpy expression the callers used before, in their dtype: equal bit for bit from
    Python (arrays, strided views, scalars) and inside a kernel (scalars)."""
    rng = np.random.default_rng(0)
    v = rng.normal(0.6, 0.6, (200, 50)).astype(dtype)
    A = (0.6 + 0.2 * rng.random((200, 50))).astype(dtype)
    th = dtype(0.6)
    want = np.maximum(dtype(0), dtype(1) - np.abs(v - A) / th)
    assert want.min() == 0 and want.max() > 0.99  # both sides of the triangle and its flat 0
    got = pseudo_derivative(v, A, th)
    assert got.dtype == dtype and np.array_equal(got, want)
    assert np.array_equal(pseudo_derivative(v[:, ::3], A[:, ::3], th), want[:, ::3])
    assert np.array_equal(pseudo_derivative(v, 0.6, 0.6), np.maximum(dtype(0), dtype(1) - np.abs(v - th) / th))
    assert np.array_equal(_per_element(v.ravel(), A.ravel(), th), want.ravel())
    assert _per_element(v.ravel(), A.ravel(), th).dtype == dtype


def test_pseudo_derivative_values():
    v = np.array([1.0, 0.5, 1.5, 0.0, 2.0, -1.0, 3.0])
    assert pseudo_derivative(v, 1.0, 1.0).tolist() == [1, 0.5, 0.5, 0, 0, 0, 0]


def test_softmax_error_is_dE_dy_of_the_cross_entropy():
    """softmax sums to 1, and softmax - onehot is the gradient of -log softmax(y)_label
    (central differences, step 1e-6: truncation ~1e-12, rounding ~1e-10 at this scale)."""
    rng = np.random.default_rng(1)
    y = rng.normal(0, 3, (5, 4))
    onehot = np.eye(4)[rng.integers(0, 4, 5)]
    np.testing.assert_allclose(softmax(y).sum(axis=-1), 1.0, rtol=1e-15)
    err = softmax_error(y, onehot)
    h = 1e-6
    for k in range(4):
        d = np.zeros(4)
        d[k] = h
        ce = [-(onehot * np.log(softmax(y + s * d))).sum(axis=-1) for s in (1, -1)]
        np.testing.assert_allclose((ce[0] - ce[1]) / (2 * h), err[:, k], atol=1e-8)
    assert softmax(np.array([1000.0, 0.0]))[0] == 1.0  # max-subtracted: no overflow


def test_ce_error_exact_and_fixed_are_the_one_softmax_error():
    """The error units' float level is P * softmax_error exactly; the integer form is within
    2 payload LSB of it (the tables' documented precision)."""
    rng = np.random.default_rng(2)
    scale_exp, pmax = 10, 127
    v = rng.integers(-4 * 2**scale_exp, 4 * 2**scale_exp, (50, 3))
    onehot = np.eye(3)[rng.integers(0, 3, 50)]
    valid = np.ones(50, bool)
    exact = ce_error_exact(v, onehot, valid, scale_exp, pmax)
    assert np.array_equal(exact, pmax * softmax_error(v * 2.0**-scale_exp, onehot))
    fixed = ce_error_fixed(v, onehot, valid, ce_error_params(scale_exp, 8))
    assert np.abs(fixed - exact).max() <= 2


def test_reckon_step_levels_are_the_triangle_averaged_over_each_segment():
    assert step_levels(15) == (0, 6, 9, 13, 8)  # the registers the ReckOn lowering writes (5-bit signed levels)
    # thresholds symmetric about v_th give symmetric levels; a segment past 2 v_th is 0
    assert step_levels(15, (0.5, 1.0, 1.5, 2.0)) == (0, 11, 11, 4, 0)


def test_running_rate_is_one_trace_from_tau_in_float_and_on_the_chip():
    """The running rate from its derivation: constant spikes ``z = 1`` from ``f = 0`` give
    ``f_n = 1 - d^n`` (a geometric sum), with ``d = exp(-dt / tau)``, so the time constant is
    ``tau`` in ms at any dt; the chip's integer form ``r <- r - floor(r / 2^s) + 2^(bits - s)``
    with ``2^s`` the power of two nearest to ``tau / dt`` steps follows ``1 - (1 - 2^-s)^n``
    in units of ``2^-bits``, above it by less than 2^s LSB (the floor removes less than the
    exact decay, by < 1 LSB a step, and the excess decays with the trace)."""
    for dt in (0.5, 1.0, 2.0):
        d = rate_decay(1000.0, dt)
        assert d == pytest.approx(np.exp(-dt / 1000.0), rel=1e-15)  # (libm and numpy exp: within an ulp)
        f, n = 0.0, int(1000 / dt)  # one time constant
        for _ in range(n):
            f = running_rate(f, 1.0, d)
        assert f == pytest.approx(1 - np.exp(-1.0), rel=1e-9)  # float64 rounding over n steps
    assert [rate_shift(1000.0, dt) for dt in (0.5, 1.0, 2.0)] == [11, 10, 9]  # 2048, 1024, 512 steps
    assert rate_shift(1.0, 1.0) == 1  # at least a halving per step
    bits, s = 22, rate_shift(1000.0, 1.0)
    r = np.zeros(1)
    for n in range(1, 3001):
        r = running_rate_fixed(r, np.ones(1), s, bits)
        assert r[0] == np.floor(r[0])  # integers stay integers
        exact = (1 - (1 - 2.0**-s) ** n) * 2**bits
        assert exact - 1e-6 <= r[0] < exact + 2**s
