"""Oja's rule: the float form converges to the principal eigenvector (numpy's), the lowered
rule on the loihi2 engine in float arithmetic equals the float form on the same spikes, the
fixed engine equals Lava's learning engine bit for bit, and bad parameters are named."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.rules.oja import OjaFloat, oja_dw
from tests.lava_compare import assert_same, run_both


def test_float_form_finds_the_principal_eigenvector():
    """A linear neuron ``y = w . x`` on zero-mean inputs of a fixed covariance: Oja's rule
    converges to the unit eigenvector of the largest eigenvalue (computed by numpy)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    cov = q @ np.diag([3.0, 1.2, 0.8, 0.5, 0.3]) @ q.T  # eigenvectors the test never reads from q
    vals, vecs = np.linalg.eigh(cov)
    assert vals[-1] > 1.5 * vals[-2]  # a clear principal direction
    x = rng.multivariate_normal(np.zeros(5), cov, size=20000)
    w = rng.normal(0, 0.1, (1, 5))
    for k, xk in enumerate(x):
        lr = 0.02 / (1 + k / 2000)  # Robbins-Monro: decreasing steps, so the noise dies out
        w = w + oja_dw(w, xk, w @ xk, lr)
    v = vecs[:, -1]
    # the stochastic iteration's remaining noise after 20000 samples with lr ~ 2e-3 is ~1e-2 in angle
    assert abs(np.linalg.norm(w) - 1.0) < 0.02
    assert abs(float(w[0] @ v)) / np.linalg.norm(w) > 0.999


def _program(lr=2.0**-8, n_pre=6, n_post=2, seed=0):
    rng = np.random.default_rng(seed)
    net = nc.Network(
        [
            nc.Population("x", n_pre, nc.SpikeInput()),
            nc.Population("y", n_post, nc.LIF(tau_mem_ms=10.0, tau_syn_ms=2.0, v_th=0.3)),
        ]
    )
    w0 = rng.uniform(0.1, 0.3, (n_post, n_pre))
    rule = nc.RuleSpec("oja", {"lr": lr, "trace_impulse": 8.0})
    net.add_projection(nc.Projection("x", "y", w0, name="W", plasticity=rule))
    return nc.compile(net, "loihi2", out=io.StringIO())


def test_lowering_has_the_engine_width_shifts():
    """x1*y1 is 4 + 7 + 7 = 18 bits (shift 3), w*y1*y1 4 + 9 + 7 + 7 = 27 (shift 12): with
    I = 8, lr = 2**-8 and the weight LSB 2**(e - shift), both scales are powers of two."""
    pr = _program().projection("W")
    lsb = 2.0**pr.weight_exp * pr.float_scale
    hebb, decay = pr.learning.dw.products
    assert hebb.mantissa * 2.0**hebb.exponent == 2**3 * 2.0**-8 / (64 * lsb)
    assert decay.mantissa * 2.0**decay.exponent == -(2**12) * 2.0**-8 / 64
    assert [f.var for f in hebb.factors] == ["x1", "y1"] and [f.var for f in decay.factors] == ["w", "y1", "y1"]
    assert hebb.dependency == decay.dependency == "u"


def test_lowered_rule_in_float_equals_the_float_form():
    """The loihi2 engine in float arithmetic (exact traces, no rounding) against OjaFloat fed
    the same pre and post spikes: the same weights, step by step."""
    program = _program()
    pr = program.projection("W")
    lsb = 2.0**pr.weight_exp * pr.float_scale
    steps = 400
    x = (np.random.default_rng(1).random((steps, 6)) < 0.1).astype(np.uint8)
    rec = Emulator(program, learn_arithmetic="float").run(steps, inputs={"x": x}, record=["spikes", "w"], learn=True)
    post = rec["y/spikes"][:, 0].astype(float)
    assert post.sum() > 20  # the post neurons fire: the decay term acts
    rule = OjaFloat(lr=2.0**-8, tau_pre_ms=20.0, tau_post_ms=20.0)
    state = rule.init(1, 2, 6)
    w = pr.weights[None].astype(float) * lsb
    for t in range(steps):
        w = w + rule.step(state, x[t][None].astype(float), post[t][None], w)
        # the same float64 operations up to their order: a few ulps
        np.testing.assert_allclose(rec["W/w"][t, 0] * lsb, w[0], rtol=1e-12, atol=1e-15, err_msg=f"step {t}")
    assert np.abs(w - pr.weights * lsb).max() > 0.05  # the weights moved


@pytest.mark.lava
def test_fixed_engine_equals_lava():
    program = _program()
    x = (np.random.default_rng(2).random((60, 6)) < 0.15).astype(np.uint8)
    emu, lava = run_both(program, 60, inputs={"x": x}, record=("spikes", "v", "u", "w", "x1", "y1"), learn=True)
    assert emu["y/spikes"].sum() > 0
    assert not np.array_equal(emu["W/w"][0], emu["W/w"][-1])  # learning happened
    assert_same(emu, lava)


def test_bad_parameters_are_named():
    net = nc.Network([nc.Population("x", 2, nc.SpikeInput()), nc.Population("y", 1, nc.LIF(tau_mem_ms=10.0))])
    net.add_projection(nc.Projection("x", "y", [[0.1, 0.2]], name="W", plasticity=nc.RuleSpec("oja", {"lr": -1.0})))
    with pytest.raises(nc.NeurocompError, match=r"projection 'W'.*oja: lr must be > 0, got -1.0"):
        nc.compile(net, "loihi2", out=io.StringIO())
    net2 = nc.Network([nc.Population("x", 2, nc.SpikeInput()), nc.Population("y", 1, nc.LIF(tau_mem_ms=10.0))])
    net2.add_projection(nc.Projection("x", "y", [[0.1, 0.2]], name="W", plasticity=nc.RuleSpec("oja", {"eta": 1})))
    with pytest.raises(nc.NeurocompError, match=r"eta"):
        nc.compile(net2, "loihi2", out=io.StringIO())
