"""The fused run's event-driven learning phase (``learn_live`` of a rule kernel,
neurocomp/kernels/learning_rules.py: rows whose products are all 0 are passed over) against the
rule kernel's ``learn`` that visits every row, bit for bit, on states built to have such rows
(tags 0 along a row, post traces 0), rows at Lava's lower clip (-257: not the identity), full and
event-driven passes, batches and masks. The fused trial as a whole is held to the step-by-step
path in test_fused_learning."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.kernels import learning as K
from neurocomp.learning.engine import SumOfProductsEngine
from neurocomp.learning.rule import EngineRule, Trace

ENGINE = nc.load_profile("loihi2").learning
TRACES = {"x1": Trace(12.6, 4), "x2": Trace(7.3, 3), "y1": Trace(10.3, 6), "y2": Trace(9.0, 2), "y3": Trace(5.5, 9)}
RULES = {
    # e-prop's shape: a tag from pre trace times pseudo-derivative, decaying; weights from tag times signal
    "eprop": {"dw": "-6*2^-5*u0*t*y2", "dt": "2^-3*u0*x1*y3 - 2^-2*u0*t", "t_epoch": 1},
    # y0 and u products, tags driven to the clip, sgn of a variable, d read by t
    "mixed": {"dw": "2^-2*y0*x1 + 2^-5*u0*t", "dt": "-7*2^4*u0*t*y1 + y0*x1*2^-1 - u0*sgn(d)*y2",
              "dd": "2^-3*u0*y3*d", "t_epoch": 2},
    # an x0 product: in a one-step epoch its post trace is read at the epoch's step, a row constant (row test)
    "stdp": {"dw": "2^-2*x1*y0 - 2^-2*y1*x0", "t_epoch": 1},
}  # fmt: skip


def _kernels(name: str, batch: int, mask):
    rule = EngineRule.from_strings(**RULES[name], engine=ENGINE, traces=TRACES, rng_seed=7)
    eng = SumOfProductsEngine(rule, np.zeros((9, 11), np.int64), engine=ENGINE, batch=batch, mask=mask)
    learn = eng._rule_kernels[0]
    live = sys.modules[learn.__module__].learn_live
    return eng, learn, live


CASES = [("eprop", 1, False), ("eprop", 3, True), ("mixed", 2, False), ("stdp", 2, False)]


@pytest.mark.parametrize("name, batch, masked", CASES)
def test_learn_live_equals_learn(name, batch, masked):
    rng = np.random.default_rng(4)
    n, m = 9, 11
    mask = rng.random((n, m)) < 0.7 if masked else None
    eng, learn, learn_live = _kernels(name, batch, mask)
    tested = "live[1, b, i]" in inspect.getsource(learn_live.py_func)  # (the rule has a row test on t)
    assert tested == (name != "stdp")
    maskarr = np.zeros((0, 0), np.bool_) if mask is None else mask
    W = rng.integers(-256, 256, (batch, n, m))
    Tg = np.where(rng.random((batch, n, m)) < 0.3, rng.integers(-256, 256, (batch, n, m)), 0)
    Tg[:, :4] = 0  # rows without tags
    Tg[0, 5, 2] = -257  # a row at the clip: a phase without products moves it
    D = rng.integers(0, 3, (batch, n, m)) * (rng.random((batch, n, m)) < 0.5)
    if mask is not None:
        W, Tg, D = (np.where(mask, a, 0) for a in (W, Tg, D))
    a = [W.copy(), Tg.copy(), D.copy()]
    b = [W.copy(), Tg.copy(), D.copy()]
    unsafe_a = (a[1] < -256).sum(axis=2)
    unsafe_b = unsafe_a.copy()
    live = np.ones((3, batch, n), np.bool_)
    K.rows_live(b[0], b[1], b[2], live)
    skippable = 0
    for phase in range(40):
        T = int(eng.rule.t_epoch)
        hx = rng.integers(0, 128, (T + 1, batch, 2, m)) * (rng.random((T + 1, batch, 2, m)) < 0.5)
        hy = rng.integers(-128, 128, (T + 1, batch, 4, n)) * (rng.random((T + 1, batch, 4, n)) < 0.15)
        tx = rng.integers(0, T + 1, (batch, m)) * (rng.random((batch, m)) < 0.2)
        ty = rng.integers(0, T + 1, (batch, n)) * (rng.random((batch, n)) < 0.2)
        u, full = phase % 3 != 2, phase % 4 != 3
        kw, kt, kd = (int(k) for k in rng.integers(0, 128, 3))
        deps = eng._deps
        quiet = (hy[T, :, 2] == 0) & ~(b[1] != 0).any(axis=2)  # (eprop) rows without products
        skippable += int(quiet.sum())
        for arrs, unsafe, extra in ((a, unsafe_a, ()), (b, unsafe_b, (live, phase > 0))):
            plan = (unsafe, np.zeros(n, np.bool_), np.zeros(m, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32))
            fn = learn_live if extra else learn
            fn(*arrs, hx, hy, tx, ty, int(u), kw, kt, kd, full, deps, plan, maskarr, *extra)
        for k in range(3):
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{'wtd'[k]} after phase {phase}")
        np.testing.assert_array_equal(unsafe_a, unsafe_b)
        if tested:  # a row flagged all 0 is all 0
            assert not ((b[1] != 0).any(axis=2) & ~live[1]).any()
    assert skippable > 20  # rows the event-driven pass can leave out did occur
    assert (a[0] != W).any() and (name == "stdp" or (a[1] != Tg).any())  # it learned
