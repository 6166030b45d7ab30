"""The compiled learners of ReckOn and of programmable cores: bit for bit what their numpy
forms compute (float32 and float64, every variant), trials of a batch spread over the cores
equal to the trials run alone, and the compiled delivery summing as numpy's einsum does."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.kernels.eprop import PARALLEL_TRIALS
from neurocomp.kernels.eprop import deliver as programmable_deliver
from neurocomp.learning.programmable import EpropExact
from tests.test_eprop import small_net, target


def numpy_eprop_step(rule, st, w, w_out, v, a, z, y, target, pre_spikes, recurrent=()) -> None:
    """Test oracle, an independent copy: EpropExact.step as numpy computed it before it was
    compiled (the same expressions, so numpy 1's scalar casting rules apply as they did)."""
    d = rule.dtype
    th = d(rule.v_th)
    A = th + (a if a is not None else 0)
    psi = (d(rule.gamma) / th) * np.maximum(d(0), d(1) - np.abs(v - A) / th)
    valid = None if target is None else ~np.isnan(target).any(axis=-1)
    labelled = valid is not None and bool(valid.any())
    learn = labelled or bool(rule.reg)  # the rate term joins every step's learning signal
    if labelled:
        if rule.loss == "ce":
            p = np.exp(y - y.max(axis=-1, keepdims=True))
            err = p / p.sum(axis=-1, keepdims=True) - np.nan_to_num(target)
        else:
            err = y - np.nan_to_num(target)
        err = (err * valid[:, None]).astype(d)
        L = np.einsum("bjk,bk->bj", st["B"], err)
    elif learn:
        err = np.zeros((y.shape[0], st["B"].shape[2]), d)
        L = np.zeros(st["f"].shape, d)
    if rule.reg:  # with the running rate that includes this step's spikes
        f = d(rule.rate_decay) * st["f"] + (d(1) - d(rule.rate_decay)) * z.astype(d)
        L = L + d(rule.reg) * (f - d(rule.f_target))
    for name, wp in w.items():
        # [trial, post or 1, pre]: each synapse's eligibility vector (reset to zero) or the shared trace
        zb = st[f"{name}/eps_v"] if rule.zero_reset else st[f"{name}/z_bar"][:, None, :]
        if rule.beta:
            eps = st[f"{name}/eps"]
            e = psi[:, :, None] * (zb - d(rule.beta) * eps)
            st[f"{name}/eps"] = psi[:, :, None] * zb + (d(rule.rho) - psi[:, :, None] * d(rule.beta)) * eps
        else:
            e = psi[:, :, None] * zb
        k = d(rule.kappa) if rule.filter_e else d(0)
        st[f"{name}/e_bar"] = k * st[f"{name}/e_bar"] + (d(1) - k) * e
        if learn:
            dw = d(rule.lr) * L[:, :, None] * st[f"{name}/e_bar"]
            if name in recurrent:
                dw[:, np.arange(dw.shape[1]), np.arange(dw.shape[1])] = 0
            wp -= dw.astype(d)
        if rule.zero_reset:
            keep = (d(rule.alpha) * (d(1) - z.astype(d)))[:, :, None]
            st[f"{name}/eps_v"] = keep * zb + pre_spikes[name].astype(d)[:, None, :]
        else:
            st[f"{name}/z_bar"] = d(rule.alpha) * zb[:, 0] + pre_spikes[name].astype(d)
    st["z_out"] = d(rule.kappa) * st["z_out"] + (d(1) - d(rule.kappa)) * z.astype(d)
    st["f"] = d(rule.rate_decay) * st["f"] + (d(1) - d(rule.rate_decay)) * z.astype(d)
    if learn:
        dwo = d(rule.lr) * err[:, :, None] * st["z_out"][:, None, :]
        w_out -= dwo
        if rule.feedback == "adaptive":
            st["B"] -= np.swapaxes(dwo, 1, 2)
        elif rule.feedback == "symmetric":
            st["B"] = np.swapaxes(w_out, 1, 2).copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("alif", "loss", "feedback", "filter_e", "zero_reset"),
    [
        (False, "mse", "random", True, False),
        (True, "ce", "adaptive", True, False),
        (True, "mse", "symmetric", True, False),
        (False, "mse", "random", False, False),
        (False, "ce", "random", True, True),
        (True, "ce", "random", True, True),
    ],  # fmt: skip
)
@pytest.mark.parametrize("batch", [2, PARALLEL_TRIALS + 1])
def test_compiled_exact_eprop_equals_its_numpy_form(dtype, alif, loss, feedback, filter_e, zero_reset, batch):
    rng = np.random.default_rng(int(alif) + 2 * batch)
    n_h, n_in, n_out = 13, 7, 3
    rule = EpropExact(lr=0.01, gamma=0.3, feedback=feedback, loss=loss, reg=0.5, reg_rate_per_step=0.01,
                      rate_decay=0.999, alpha=0.95, kappa=0.9, v_th=0.6, beta=0.07 if alif else 0.0,
                      rho=0.99 if alif else 0.0, dtype=dtype, filter_e=filter_e, zero_reset=zero_reset)  # fmt: skip
    B = rng.standard_normal((n_h, n_out))
    st = rule.init(batch, n_h, {"in->h": n_in, "h->h": n_h}, n_out, B)
    w = {"in->h": rng.standard_normal((batch, n_h, n_in)).astype(dtype),
         "h->h": rng.standard_normal((batch, n_h, n_h)).astype(dtype)}  # fmt: skip
    w_out = rng.standard_normal((batch, n_out, n_h)).astype(dtype)
    ref_st, ref_w, ref_out = {k: v.copy() for k, v in st.items()}, {k: v.copy() for k, v in w.items()}, w_out.copy()
    w_in0 = w["in->h"].copy()
    for step in range(12):
        v = rng.uniform(0, 1.2, (batch, n_h)).astype(np.float32)  # the core's float32 neuron states
        a = rng.uniform(0, 0.2, (batch, n_h)).astype(np.float32) if alif else None
        z = rng.random((batch, n_h)) < 0.3
        y = rng.standard_normal((batch, n_out)).astype(np.float32)
        tgt = np.eye(n_out)[rng.integers(0, n_out, batch)] if loss == "ce" else rng.standard_normal((batch, n_out))
        tgt = tgt.astype(dtype)
        tgt[0] = np.nan  # a trial without a target this step
        pre = {"in->h": rng.random((batch, n_in)) < 0.4, "h->h": z}
        args = (v, a, z, y, None if step == 3 else tgt, pre)
        rule.step(st, w, w_out, *args, recurrent={"h->h"})
        numpy_eprop_step(rule, ref_st, ref_w, ref_out, *args, recurrent={"h->h"})
        for k in w:
            _same(w[k], ref_w[k], (k, step))
        _same(w_out, ref_out, step)
        for k in st:
            assert st[k].dtype == ref_st[k].dtype, (k, step)
            _same(st[k], ref_st[k], (k, step))
    assert not np.array_equal(w["in->h"], w_in0)  # the comparison covered real updates


def einsum_order_sum(w, s, lanes):
    """Test oracle, an independent re-implementation: ``sum_m w[b, n, m] * s[b, m]`` in the
    order numpy 1.26's einsum sums it on x86-64 (``lanes`` partial sums; blocks of 4 vectors
    added last to first, then one vector at a time; the lanes combined pairwise)."""
    out = np.zeros(w.shape[:2], w.dtype)
    zero = w.dtype.type(0)
    for b, n in np.ndindex(*w.shape[:2]):
        acc = [zero] * lanes
        terms = w[b, n] * s[b]
        full = terms.size - terms.size % (4 * lanes)
        for m0 in range(0, full, 4 * lanes):
            for lane in range(lanes):
                for u in (3, 2, 1, 0):
                    acc[lane] = terms[m0 + u * lanes + lane] + acc[lane]
        for m in range(full, terms.size):
            acc[m % lanes] = terms[m] + acc[m % lanes]
        out[b, n] = zero + ((acc[0] + acc[1]) + (acc[2] + acc[3]) if lanes == 4 else acc[0] + acc[1])
    return out


@pytest.mark.parametrize(
    "shape", [(1, 1, 100), (1, 100, 100), (3, 30, 10), (9, 5, 64), (2, 7, 1), (1, 2, 17), (4, 3, 131)]
)
@pytest.mark.parametrize(
    ("w_dtype", "out_dtype"), [(np.float32, np.float32), (np.float64, np.float64), (np.float64, np.float32)]
)
def test_programmable_delivery_sums_in_einsum_order(shape, w_dtype, out_dtype):
    """The compiled delivery against ``ring += sum(w * spikes)`` in numpy 1's einsum order,
    bit for bit, for sparse, dense and full spiking (the kernel skips the silent columns);
    with numpy 1 (the version whose results the kernel keeps) also against einsum itself."""
    rng = np.random.default_rng(shape[2])
    for rate in (0.05, 0.5, 1.0):
        w = rng.standard_normal(shape).astype(w_dtype)
        s = (rng.random((shape[0], shape[2])) < rate).astype(w_dtype)
        ring = rng.standard_normal(shape[:2]).astype(out_dtype)
        expected = ring.copy()
        expected += einsum_order_sum(w, s, 16 // w.itemsize)
        if np.__version__.startswith("1."):
            numpy_form = ring.copy()
            numpy_form += np.einsum("bnm,bm->bn", w, s)
            assert numpy_form.tobytes() == expected.tobytes()
        programmable_deliver(w, s, 16 // w.itemsize, ring)
        assert ring.tobytes() == expected.tobytes(), rate


def reckon_program() -> nc.Program:
    net = small_net(n_in=12, n_rec=40, n_out=2, feedback="symmetric", eprop={"lr": 3e-3, "reg": 1.0})
    return nc.compile(net, "reckon", out=io.StringIO())


def test_reckon_compiled_float_learner_equals_its_numpy_path():
    """ReckOn's all-float attribution level (compiled: the chip's loops in float64) against
    the numpy path that the attribution's mixed knobs take: weights, traces and LFSR
    registers equal after 80 steps with targets. (The chip's integer path is checked value
    by value in tests/test_reckon_rule.py.)"""
    knobs = ("weights", "traces", "graded")
    prog = reckon_program()
    steps = 80
    tgt = np.broadcast_to(target(steps)[:, None, :], (steps, 2, 2)).copy()
    tgt[::4, 1] = np.nan
    runs = []
    for compiled in (True, False):
        emu = Emulator(prog, batch=2, learn_float=knobs)
        learner = emu._learners["out"]
        if not compiled:
            learner.compiled = False  # the numpy path (trial by trial)
        emu.run(steps, inputs={"out/target": tgt}, learn=True)
        runs.append((emu.state, {r: v.copy() for r, v in emu._chip_random.regs.items()}))
    (a, ra), (b, rb) = runs
    assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert all(np.array_equal(ra[r], rb[r]) for r in ra)
    w0 = Emulator(prog, batch=2, learn_float=knobs).state
    assert all(not np.array_equal(a[f"{p}/w"], w0[f"{p}/w"]) for p in ("in->rec", "rec->rec", "rec->out"))


def _same(got: np.ndarray, want: np.ndarray, where) -> None:
    """Bit for bit under numpy 1, whose promotion rules the numpy form was written for. Under
    numpy 2 (NEP 50) the numpy form promotes some float32 intermediates of the float64 level to
    float64 where the kernel keeps numpy 1's float32, so the two differ by float32 rounding of
    those intermediates: within 1e-6 relative (float32's epsilon is 1.2e-7, a few roundings)."""
    if np.lib.NumpyVersion(np.__version__) < "2.0.0" or got.dtype != np.float64:
        assert got.tobytes() == want.tobytes(), where
    else:
        np.testing.assert_allclose(
            got, want, rtol=1e-6, atol=1e-6 * float(np.abs(want).max(initial=1.0)), err_msg=str(where)
        )


@pytest.mark.parametrize("profile", ["reckon", "spinnaker2"])
def test_learning_trials_spread_over_cores_equal_trials_run_alone(profile):
    """From PARALLEL_TRIALS trials with a target the learners spread the batch over the
    cores; each trial still equals the same trial run alone."""
    net = small_net(n_in=10, n_rec=20, n_out=2, feedback="symmetric", eprop={"lr": 3e-3})
    prog = nc.compile(net, profile, out=io.StringIO())
    steps, batch = 60, PARALLEL_TRIALS + 1
    tgt = np.stack([target(steps) * (1 + 0.1 * b) for b in range(batch)], axis=1)
    # given spikes: a batch's Poisson trials draw independent streams, a lone trial only the first
    spikes = (np.random.default_rng(3).random((steps, batch, 10)) < 0.05).astype(np.int64)
    emu = Emulator(prog, batch=batch)
    emu.run(steps, inputs={"out/target": tgt, "in": spikes}, learn=True)
    many = emu.state
    for b in (0, batch - 1):
        one = Emulator(prog)
        one.run(steps, inputs={"out/target": tgt[:, b : b + 1], "in": spikes[:, b : b + 1]}, learn=True)
        for k, v in one.state.items():
            axis = 1 if k.endswith("/input") else 0  # the input rings are [slots, trials, neurons]
            assert np.take(v, 0, axis).tobytes() == np.take(many[k], b, axis).tobytes(), (k, b)
    assert not np.array_equal(many["rec->out/w"][0], many["rec->out/w"][batch - 1])  # the trials differ
