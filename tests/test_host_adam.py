"""The host's Adam step between minibatches (``neurocomp.learning.host.HostAdam``) against Adam
written out here: the gradient read from the copies' mean change, the bias-corrected step, the
stochastic rounding of an engine's mantissas (and its weight range), float32 weights on a
programmable core, and determinism."""

from __future__ import annotations

import io

import numpy as np
import pytest

from neurocomp.compiler import compile
from neurocomp.emulator import Emulator
from neurocomp.graph.io import load_network
from neurocomp.learning.host import HostAdam

from .conftest import ROOT

K = 4  # trials per minibatch: the emulator's copies


def _emu(profile: str) -> Emulator:
    net = load_network(ROOT / "examples" / "eprop_evidence.yaml")
    params = {"t_epoch": 16, "readout_headroom_bits": 3} if profile == "loihi2" else {}
    prog = compile(net.with_rule_params(**params), profile, out=io.StringIO())
    return Emulator(prog, batch=K, seed=0)


def _adam_oracle(w0, grads, lr):
    """Test oracle, written independently of HostAdam: Adam (Kingma & Ba 2015, Algorithm 1) in
    float64 from zero moments over the gradients ``grads`` in order; returns each step's weights."""
    m = v = 0.0
    w, out = w0, []
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        out.append(w)
    return out


def _move_copies(emu, rng, lo_hi=(-6, 7)):
    """Every copy's weights moved by its own random integer change (what K trials of the engine's
    online rule leave); returns the change of the copies' mean per projection, in weight units."""
    mean = {}
    for name, syn in emu.plastic.items():
        w = syn.engine.state["w"]
        delta = rng.integers(*lo_hi, size=w.shape)
        if np.issubdtype(w.dtype, np.floating):
            delta = delta * np.float32(0.01)
        w0 = w[0].copy()
        w[...] = (w0 + delta).astype(w.dtype)
        mean[name] = (w.astype(np.float64) - w0.astype(np.float64)).mean(axis=0)
    return mean


def test_host_adam_on_engine_mantissas_is_adam_with_stochastic_rounding():
    emu = _emu("loihi2")
    names = list(emu.plastic)
    lr, lr_engine = 0.01, {n: 0.04 for n in names}
    adam = HostAdam(emu, lr, seed=3)
    rng = np.random.default_rng(11)
    w_start = {n: emu.plastic[n].engine.state["w"][0].astype(np.float64) for n in names}
    unit = {n: np.asarray(emu.plastic[n].weight_unit, np.float64) for n in names}
    grads = {n: [] for n in names}
    ups, near, total = 0, 0, 0
    for step in range(3):
        w0 = {n: emu.plastic[n].engine.state["w"][0].astype(np.float64) for n in names}
        moved = _move_copies(emu, rng)
        res = adam.step(emu, lr_engine)
        for n in names:
            g = -moved[n] * unit[n] / lr_engine[n]  # the gradient in model units the mean change implies
            np.testing.assert_allclose(res.grad[n], g, rtol=1e-12, atol=0)  # float64, one rounding apart
            grads[n].append(g)
            # the ideal float64 weights: Adam from the start over this run's gradients, in mantissas.
            # Each step starts from the previous step's *rounded* weights w0, so take Adam's step
            # only (the oracle's last weights minus its previous ones) from this w0.
            path = _adam_oracle(w_start[n] * unit[n], grads[n], lr)
            prev = w_start[n] * unit[n] if step == 0 else path[-2]
            target = w0[n] + (path[-1] - prev) / unit[n]
            w = emu.plastic[n].engine.state["w"]
            for k in range(1, K):  # every copy holds the new weights
                np.testing.assert_array_equal(w[k], w[0])
            lo, hi = emu.plastic[n].engine.weight_range
            assert w.min() >= lo and w.max() <= hi
            inside = (target > lo + 1) & (target < hi - 1)
            got = w[0].astype(np.float64)[inside]
            fl = np.floor(target[inside])
            # stochastic rounding: each weight is the floor of Adam's target or one above it
            assert np.all((got == fl) | (got == fl + 1)), n
            frac = target[inside] - fl
            mid = (frac > 0.1) & (frac < 0.4)  # round-to-nearest would always round these down
            ups += int(np.count_nonzero(got[mid] == fl[mid] + 1))
            near += float(frac[mid].sum())
            total += int(np.count_nonzero(mid))
    # the count rounded up is a sum of Bernoulli(frac): mean sum(frac), variance below total / 4;
    # 6 standard deviations keep a correct implementation passing (probability < 1e-8) while
    # deterministic rounding (0 up) fails by hundreds of deviations
    assert total > 1000
    assert abs(ups - near) < 6 * np.sqrt(total / 4), (ups, near, total)


def test_host_adam_with_float_masters_keeps_adams_path_and_writes_it_rounded():
    """masters=True: the host's float64 weights follow Adam from the start over the gradients read
    (no rounding carried from step to step), and every copy holds them rounded to nearest."""
    emu = _emu("loihi2")
    names = list(emu.plastic)
    lr, lr_engine = 0.01, {n: 0.04 for n in names}
    adam = HostAdam(emu, lr, seed=3, masters=True)
    rng = np.random.default_rng(11)
    w_start = {n: emu.plastic[n].engine.state["w"][0].astype(np.float64) for n in names}
    unit = {n: np.asarray(emu.plastic[n].weight_unit, np.float64) for n in names}
    grads = {n: [] for n in names}
    checked = 0
    for _ in range(3):
        moved = _move_copies(emu, rng)
        res = adam.step(emu, lr_engine)
        for n in names:
            # the mean change against the weights the host wrote, as without masters
            np.testing.assert_allclose(res.grad[n], -moved[n] * unit[n] / lr_engine[n], rtol=1e-12, atol=0)
            grads[n].append(res.grad[n])
            lo, hi = emu.plastic[n].engine.weight_range
            ideal = _adam_oracle(w_start[n] * unit[n], grads[n], lr)[-1] / unit[n]  # mantissas
            inside = (ideal > lo + 1) & (ideal < hi - 1)  # clear of the saturation
            # float64 over three steps of a few hundred LSB: 1e-9 LSB; carrying the rounded weights
            # from step to step (no masters) is off by up to 1.5 LSB
            np.testing.assert_allclose(adam.masters[n][inside], ideal[inside], rtol=0, atol=1e-9, err_msg=n)
            w = emu.plastic[n].engine.state["w"]
            for k in range(K):
                np.testing.assert_array_equal(w[k], np.round(adam.masters[n]), err_msg=n)
            checked += int(inside.sum())
    assert checked > 1000


def test_host_adam_first_step_has_the_bias_correction():
    """The first step of Adam moves every synapse with a nonzero gradient by lr (m_hat / sqrt(v_hat)
    = sign(g)); without the corrections it would be 0.1 / sqrt(0.001) = 3.16 lr."""
    emu = _emu("spinnaker2")  # float32 weights: no rounding between the host and the core
    names = list(emu.plastic)
    lr = 2e-3
    w0 = {n: emu.plastic[n].engine.state["w"][0].astype(np.float64) for n in names}
    adam = HostAdam(emu, lr, seed=0)  # w0: the weights before the minibatch
    moved = _move_copies(emu, np.random.default_rng(5))
    adam.step(emu, {n: 0.05 for n in names})
    checked = 0
    for n in names:
        unit = float(emu.plastic[n].weight_unit)
        step = (emu.plastic[n].engine.state["w"][0].astype(np.float64) - w0[n]) * unit
        g = -moved[n] * unit / 0.05
        on = np.abs(g) > 1e-3  # |g| >> eps: the step is lr to float64's precision
        expect = -lr * np.sign(g[on])
        # float32 weights near 0.1-1 keep ~1e-7 absolute: 1e-6 is 500 times below the 3.16 lr error
        np.testing.assert_allclose(step[on], expect, rtol=0, atol=1e-6, err_msg=n)
        np.testing.assert_array_equal(step[g == 0], 0.0)
        checked += int(on.sum())
    assert checked > 1000


def test_host_adam_is_deterministic_and_names_a_missing_lr():
    runs = []
    for _ in range(2):
        emu = _emu("loihi2")
        adam = HostAdam(emu, 0.01, seed=7)
        rng = np.random.default_rng(2)
        for _ in range(2):
            _move_copies(emu, rng)
            adam.step(emu, {n: 0.04 for n in emu.plastic})
        runs.append({n: s.engine.state["w"].copy() for n, s in emu.plastic.items()})
    for n in runs[0]:
        np.testing.assert_array_equal(runs[0][n], runs[1][n], err_msg=n)
    with pytest.raises(KeyError, match="no engine lr"):
        adam.step(emu, {})


def test_host_adam_centre_rows_steps_on_the_gradient_without_its_row_means():
    """centre_rows=True: the gradient Adam takes is the copies' gradient minus each post neuron's
    mean over its row (written out here), and Adam's first step (lr times its sign) follows it."""
    emu = _emu("loihi2")
    names = list(emu.plastic)
    lr, lr_engine = 0.01, {n: 0.04 for n in names}
    adam = HostAdam(emu, lr, seed=3, masters=True, centre_rows=True)
    w0 = {n: emu.plastic[n].engine.state["w"][0].astype(np.float64) for n in names}
    rng = np.random.default_rng(4)
    offset = {}  # every row moved by one offset of its own (what centring removes) ...
    for n, syn in emu.plastic.items():
        w = syn.engine.state["w"]
        offset[n] = rng.integers(-3, 4, size=(w.shape[1], 1))
        w[...] += offset[n].astype(w.dtype)
    moved = _move_copies(emu, rng)  # ... and every copy by its own random changes
    res = adam.step(emu, lr_engine)
    checked = 0
    for n in names:
        syn = emu.plastic[n]
        unit = np.asarray(syn.weight_unit, np.float64)
        g = -(moved[n] + offset[n]) * unit / lr_engine[n]  # the gradient the copies' mean change gives
        expect = g - g.mean(axis=1, keepdims=True)
        scale = np.abs(g).max()  # float64 sums of a few hundred terms: 1e-12 relative
        np.testing.assert_allclose(res.grad[n], expect, rtol=0, atol=1e-12 * scale, err_msg=n)
        lo, hi = syn.engine.weight_range
        ideal = w0[n] - lr * np.sign(expect) / unit  # Adam's first step, in mantissas
        on = (np.abs(expect) > 1e-3) & (ideal > lo + 1) & (ideal < hi - 1)
        # Adam's first step is lr |g| / (|g| + eps): within 1e-5 lr of lr where |g| > 1e-3
        np.testing.assert_allclose(adam.masters[n][on], ideal[on], rtol=0, atol=1e-5 * lr / unit.min(), err_msg=n)
        checked += int(on.sum())
    assert checked > 1000


def test_host_adam_centre_rows_of_a_sparse_projection_averages_its_synapses_only():
    """A sparse projection (held dense with the engine's ``mask`` of the synapses that exist):
    each row's mean is over its existing synapses, and a synapse that does not exist gets 0."""
    emu = _emu("loihi2")
    name = "in->lif"
    eng = emu.plastic[name].engine
    mask = np.random.default_rng(8).random(eng.weights.shape[1:]) < 0.3
    eng.mask = mask  # the flags a sparse projection's engine holds (set before the host reads it)
    adam = HostAdam(emu, 0.01, seed=3, centre_rows=True)
    moved = _move_copies(emu, np.random.default_rng(9))
    res = adam.step(emu, {n: 0.04 for n in emu.plastic})
    g = -moved[name] * float(emu.plastic[name].weight_unit) / 0.04
    mean = np.array([g[i, mask[i]].mean() if mask[i].any() else 0.0 for i in range(g.shape[0])])
    expect = np.where(mask, g - mean[:, None], 0.0)
    np.testing.assert_allclose(res.grad[name], expect, rtol=0, atol=1e-12 * np.abs(g).max())
