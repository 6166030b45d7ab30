"""The programmable core's compiled e-prop synapse step at sizes where its row loops run
vectorized (rows of 40 and 37 synapses: whole SIMD blocks and a remainder, float32 and
float64), bit for bit its numpy form, for each of its cases (LIF and ALIF, learning on and
off, recurrent rows with their autapse), in batches spread over the cores and alone."""

from __future__ import annotations

import numpy as np
import pytest

from neurocomp.kernels.eprop import PARALLEL_TRIALS
from neurocomp.learning.programmable import EpropExact
from tests.test_chip_learner_kernels import _same, numpy_eprop_step


def _rule(alif: bool, dtype) -> EpropExact:
    return EpropExact(lr=0.01, gamma=0.3, feedback="random", loss="mse", reg=0.5, reg_rate_per_step=0.01,
                      rate_decay=0.999, alpha=0.95, kappa=0.9, v_th=0.6, beta=0.07 if alif else 0.0,
                      rho=0.99 if alif else 0.0, dtype=dtype)  # fmt: skip


def _run(rule: EpropExact, trials, n_h: int, n_in: int, steps: int, compiled: bool) -> tuple[dict, dict, np.ndarray]:
    """``steps`` learner steps of a batch of the ``trials`` on seeded random neuron states,
    compiled (:meth:`EpropExact.step`) or by the numpy oracle; trial ``b``'s inputs and initial
    weights depend only on ``b``."""
    d, n_out = rule.dtype, 1
    st = rule.init(len(trials), n_h, {"in->h": n_in, "h->h": n_h}, n_out, np.linspace(-1, 1, n_h)[:, None])
    rngs = [np.random.default_rng(100 + b) for b in trials]
    w = {"in->h": np.stack([r.standard_normal((n_h, n_in)) for r in rngs]).astype(d),
         "h->h": np.stack([r.standard_normal((n_h, n_h)) for r in rngs]).astype(d)}  # fmt: skip
    w_out = np.stack([r.standard_normal((n_out, n_h)) for r in rngs]).astype(d)
    for step in range(steps):
        v = np.stack([r.uniform(0, 1.2, n_h) for r in rngs]).astype(np.float32)
        a = np.stack([r.uniform(0, 0.2, n_h) for r in rngs]).astype(np.float32) if rule.beta else None
        z = np.stack([r.random(n_h) < 0.3 for r in rngs])
        y = np.stack([r.standard_normal(n_out) for r in rngs]).astype(np.float32)
        tgt = np.stack([r.standard_normal(n_out) for r in rngs]).astype(d)
        pre = {"in->h": np.stack([r.random(n_in) < 0.4 for r in rngs]), "h->h": z}
        args = (v, a, z, y, None if step == 2 else tgt, pre)  # step 2: no target, no learning
        (rule.step if compiled else lambda *x, **k: numpy_eprop_step(rule, *x, **k))(
            st, w, w_out, *args, recurrent={"h->h"}
        )
    return st, w, w_out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alif", [False, True])
def test_vectorized_synapse_step_equals_numpy_form_and_trials_alone(dtype, alif):
    rule = _rule(alif, dtype)
    n_h, n_in, steps = 37, 40, 6
    trials = range(PARALLEL_TRIALS + 1)
    st, w, w_out = _run(rule, trials, n_h, n_in, steps, compiled=True)
    ref_st, ref_w, ref_out = _run(rule, trials, n_h, n_in, steps, compiled=False)
    for k in w:
        _same(w[k], ref_w[k], k)
    _same(w_out, ref_out, "w_out")
    for k in st:
        _same(st[k], ref_st[k], k)
    w0 = _run(rule, trials, n_h, n_in, 0, compiled=True)[1]
    assert not np.array_equal(w["in->h"], w0["in->h"])  # the comparison covered real updates
    # the batch spread over the cores equals each trial run alone (trial b's inputs depend only on b)
    for b in (0, trials[-1]):
        one_st, one_w, one_out = _run(rule, [b], n_h, n_in, steps, compiled=True)
        for k in w:
            assert one_w[k][0].tobytes() == w[k][b].tobytes(), (k, b)
        assert one_out[0].tobytes() == w_out[b].tobytes(), b
        for k in st:
            assert one_st[k][0].tobytes() == st[k][b].tobytes(), (k, b)
