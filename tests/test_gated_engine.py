"""The gated network's forward rule lowered onto loihi2's engine (``neurocomp.rules.gated_engine``):
the engine's products against the rule written out here in model units, and its named refusals."""

from __future__ import annotations

import numpy as np
import pytest

from neurocomp.learning.engine import SumOfProductsEngine
from neurocomp.learning.lowering import LoweringContext, LoweringError
from neurocomp.profiles import load_profile
from neurocomp.rules.gated_engine import choose_scales, gated_rule, rate_unit

from .test_gated import _small

PROFILE = load_profile("loihi2")
LRN = PROFILE.learning


def _factors():
    """The small network's trace: y1, y2, y3 ``[T, batch, n]``, the input currents and a tag range."""
    net, x, tg = _small()
    tr = net.forward(x)
    dy = np.where(np.isnan(tg), 0.0, tr.y - np.nan_to_num(tg))
    y1, y2, y3, _ = net.post_factors(tr.theta[:-1], tr.I, tr.theta[1:], dy)
    return y1, y2, y3, tr.x


def _oracle(y1, y2, y3, x1, lr):
    """The rule in model units: t += y1 t + y2 x1; dw -= lr y3(t) t(t + 1), summed over the
    trials (the engine reads y3 one step late, so the last step's y3 is not applied)."""
    tag = np.zeros((x1.shape[1], y1.shape[2], x1.shape[2]))
    dw = np.zeros(tag.shape[1:])
    for t in range(x1.shape[0]):
        tag = tag + y1[t][:, :, None] * tag + y2[t][:, :, None] * x1[t][:, None, :]
        if t + 1 < x1.shape[0]:
            dw -= lr * np.einsum("bn,bnj->nj", y3[t], tag)
    return tag, dw


def test_the_lowered_rule_in_float_is_the_rule():
    # the engine's float arithmetic with the unrounded codes: the tag times its LSB and the weight
    # change times the weight's LSB are the rule's, so every constant (y1's, y2 x1's over the tag's
    # LSB, the rate's) and every offset and sign are right. Tolerance 5e-3 of the largest value
    # (measured 1.8e-3): the engine decays each graded trace by exp(-1/65535) per step (Lava's
    # tau), which moves an offset-encoded factor by 64/65535 codes, and the tag compounds it
    y1, y2, y3, x = _factors()
    ranges = {"y1": np.abs(y1).max(), "y2": y2.max(), "y3": np.abs(y3).max(), "x1": np.abs(x).max(), "t": 1.0}
    sc = choose_scales(ranges, 1.0, LRN, 2.0, signed_x1=True)
    lr = 3 * 2.0**LRN.exponent_min * rate_unit(sc, LRN)  # held exactly: -3*2^-7
    rule = gated_rule(sc, lr, LoweringContext("W_in", PROFILE, 1.0, sc.w))
    nb, n, m = x.shape[1], y1.shape[2], x.shape[2]
    eng = SumOfProductsEngine(rule, np.zeros((n, m), np.int64), engine=LRN, batch=nb, learn_mode="shared",
                              arithmetic="float")  # fmt: skip
    late = np.zeros((nb, n))
    for t in range(x.shape[0]):
        graded = {"y1": sc.code("y1", y1[t], LRN, True), "y2": sc.code("y2", y2[t], LRN, True),
                  "y3": sc.code("y3", late, LRN, True)}  # fmt: skip
        eng.spikes(t + 1, np.zeros((nb, m), bool), np.zeros((nb, n), bool), graded, sc.payload(x[t], LRN, True))
        eng.learn(t + 1)
        late = y3[t]
    tag, dw = _oracle(y1, y2, y3, x, lr)
    assert np.abs(dw).max() > 0 and np.abs(eng.weights).max() < 255  # the change is nonzero and within w's range
    np.testing.assert_allclose(eng.state["t"] * sc.t, tag, rtol=0, atol=5e-3 * np.abs(tag).max())
    np.testing.assert_allclose(eng.weights[0] * sc.w, dw, rtol=0, atol=5e-3 * np.abs(dw).max())


def test_a_rate_below_the_engines_smallest_constant_is_a_named_error():
    y1, y2, y3, x = _factors()
    ranges = {"y1": np.abs(y1).max(), "y2": y2.max(), "y3": np.abs(y3).max(), "x1": np.abs(x).max(), "t": 1.0}
    sc = choose_scales(ranges, 1.0, LRN, 2.0, signed_x1=True)
    lr = 0.25 * 2.0**LRN.exponent_min * rate_unit(sc, LRN)
    with pytest.raises(LoweringError, match=r"projection 'W_in': learning rate = .* outside what the engine"):
        gated_rule(sc, lr, LoweringContext("W_in", PROFILE, 1.0, sc.w))


@pytest.mark.slow
def test_on_chip_training_keeps_a_float_trained_network_accurate(tmp_path):
    # fine-tuning on loihi2 (host-assisted, the fixed engine and neuron) from the float-trained
    # engine rule: 30 batches of 16 trials reach 98.4 % on seed 0 (from 94.9 % deployed); the
    # update with the wrong sign falls to 55.9 % (measured with the readout off the grid), which
    # the bound 90 % rejects
    from neurocomp.analysis.gated_chip import train_on_chip
    from neurocomp.analysis.train import TrainConfig, train
    from neurocomp.graph import load_network

    from .conftest import ROOT

    out = tmp_path / "engine.yaml"
    cfg = TrainConfig(method="engine", iterations=300, lr=1e-2, batch=32, seed=0)
    train(ROOT / "examples" / "gated_delayed_xor.yaml", "delayed-xor", cfg, out=out, progress=False)
    r = train_on_chip(load_network(out), arithmetic="fixed", mode="host", iterations=30, batch=16, step=1e-3)
    assert r.error_after <= 0.10, r


def test_a_graded_code_s_value_is_its_value_on_the_grid():
    # the host reads y3 back from the code the neuron sends: offset-encoded about 2**(bits-1), so the
    # value is (code - offset) * LSB; a value on the grid comes back exactly, one off the grid to within
    # half an LSB, and a value beyond the 7-bit range at its rail (derived here from the profile's bits)
    y1, y2, y3, x1 = _factors()
    ranges = {"y1": np.abs(y1).max(), "y2": y2.max(), "y3": np.abs(y3).max(), "x1": np.abs(x1).max(), "t": 1.0}
    sc = choose_scales(ranges, 1.0, LRN, 2.0, True)
    top = 2 ** (int(LRN.params["trace_bits"]) - 1) - 1
    on_grid = np.arange(-top, top + 1) * sc.y3
    np.testing.assert_array_equal(sc.value("y3", sc.code("y3", on_grid, LRN), LRN), on_grid)
    v = np.array([0.3, -2.6, 5.49]) * sc.y3
    assert np.all(np.abs(sc.value("y3", sc.code("y3", v, LRN), LRN) - v) <= sc.y3 / 2)
    assert sc.value("y3", sc.code("y3", np.array([1e9]), LRN), LRN)[0] == top * sc.y3


def test_a_network_that_never_reaches_its_gate_zone_is_a_named_error():
    # an untrained example: no neuron passes through its gate zone on the calibration trials, so no
    # tag is ever read and its range cannot be measured; a named error, not an empty quantile
    from neurocomp.analysis.gated_chip import train_on_chip
    from neurocomp.graph import load_network

    from .conftest import ROOT

    net = load_network(ROOT / "examples" / "gated_delayed_xor.yaml")
    with pytest.raises(LoweringError, match="no neuron entered its gate zone"):
        train_on_chip(net, iterations=1, batch=2, trials=2)
