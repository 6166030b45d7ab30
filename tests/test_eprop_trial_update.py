"""e-prop's minibatch on a programmable core (``update: trial``): the weights held during a run,
the run's trials' buffers averaged in trial order and applied by SGD or Adam at its end, each
trial of a batch the same as run alone; the optimizer step against its definition written out
here element by element; loihi2's refusal."""

from __future__ import annotations

import io

import numpy as np
import pytest

from neurocomp.compiler import compile
from neurocomp.emulator import Emulator
from neurocomp.errors import NeurocompError
from neurocomp.graph.io import load_network
from neurocomp.learning.programmable import apply_trial_update

from .conftest import ROOT

STEPS, LABELLED = 60, 20


def _net(**params):
    net = load_network(ROOT / "examples" / "eprop_evidence.yaml")
    return net.with_rule_params(**params)


def _inputs(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Poisson-like input spikes and a one-hot target on the last LABELLED steps (NaN before)."""
    rng = np.random.default_rng(seed)
    x = (rng.random((STEPS, batch, 40)) < 0.08).astype(np.float32)
    target = np.full((STEPS, batch, 2), np.nan, np.float32)
    cls = rng.integers(0, 2, batch)
    target[-LABELLED:] = np.eye(2, dtype=np.float32)[cls]
    return {"in": x, "out/target": target}


def _adam_oracle(w, g, lr, steps_done):
    """Test oracle, written independently of apply_trial_update: Adam's first step from zero
    moments, element by element in float32 (m = (1 - b1) g, v = (1 - b2) g^2, corrections
    1 - b^t rounded once to float32)."""
    f = np.float32
    out = np.empty_like(w)
    t = steps_done + 1
    c1, c2 = f(1 - 0.9**t), f(1 - 0.999**t)
    for idx in np.ndindex(w.shape):
        m = f(0.9) * f(0) + (f(1) - f(0.9)) * g[idx]
        v = f(0.999) * f(0) + (f(1) - f(0.999)) * (g[idx] * g[idx])
        out[idx] = w[idx] - f(lr) * (m / c1) / (np.sqrt(v / c2) + f(1e-8))
    return out


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_trial_update_holds_the_weights_and_applies_the_mean_of_trials_run_alone(optimizer):
    prog = compile(_net(update="trial", optimizer=optimizer, lr=5e-3), "spinnaker2", out=io.StringIO())
    notes = [n for r in prog.pass_log if r["name"] == "lower_learning" for n in r["notes"]]
    assert any("update 'trial' (a minibatch) on spinnaker2" in n for n in notes)  # the mapping, in the compile log
    inputs = _inputs(3)
    emu = Emulator(prog, batch=3, seed=0)
    w0 = {n: s.engine.state["w"][0].copy() for n, s in emu.plastic.items()}
    rec = emu.run(STEPS, inputs=inputs, record=["spikes", "v"], learn=True)
    # the weights do not move during the run: the same dynamics as without learning, bit for bit
    static = Emulator(prog, batch=3, seed=0).run(STEPS, inputs=inputs, record=["spikes", "v"], learn=False)
    for key in ("lif/spikes", "alif/spikes", "lif/v", "alif/v", "out/v"):
        np.testing.assert_array_equal(rec[key], static[key], err_msg=key)
    # each trial's buffer as that trial alone gives it (batch 1: the mean is the buffer)
    alone = []
    for b in range(3):
        one = Emulator(prog, batch=1, seed=0)
        one.run(STEPS, inputs={k: v[:, b : b + 1] for k, v in inputs.items()}, learn=True)
        alone.append(one._learners["out"].last_update)
    got = emu._learners["out"].last_update
    assert set(got) == set(w0)
    moved = 0
    for name, syn in emu.plastic.items():
        mean = ((alone[0][name] + alone[1][name]) + alone[2][name]) / np.float32(3)  # trial order, then / K
        np.testing.assert_array_equal(got[name], mean, err_msg=name)
        w = syn.engine.state["w"]
        for b in range(1, 3):  # every copy took the same step
            np.testing.assert_array_equal(w[b], w[0], err_msg=name)
        if optimizer == "sgd":  # the buffer holds lr times the update: added as it is
            want = w0[name] + mean
        else:  # the buffer holds the update at lr 1, i.e. minus the gradient
            want = _adam_oracle(w0[name], -mean, 5e-3, 0)
        np.testing.assert_array_equal(w[0], want, err_msg=name)
        moved += int((w[0] != w0[name]).sum())
    assert moved > 1000  # the labelled steps and the rate term reached most synapses


def test_apply_trial_update_adam_steps_against_the_written_out_definition():
    rng = np.random.default_rng(5)
    f = np.float32
    w = np.broadcast_to(rng.standard_normal((4, 5)).astype(f), (3, 4, 5)).copy()
    opt = {"m": np.zeros((4, 5), f), "v": np.zeros((4, 5), f), "t": np.zeros(1, f)}
    m_ref, v_ref, w_ref = np.zeros((4, 5), f), np.zeros((4, 5), f), w[0].copy()
    for t in (1, 2, 3):
        acc = rng.standard_normal((3, 4, 5)).astype(f) * f(1e-2)
        mean = apply_trial_update(w, acc.copy(), opt, 1e-3, "adam")
        for idx in np.ndindex(4, 5):  # test oracle: Kingma & Ba's step for one synapse, float32
            g = -(((acc[0][idx] + acc[1][idx]) + acc[2][idx]) / f(3))
            m_ref[idx] = f(0.9) * m_ref[idx] + (f(1) - f(0.9)) * g
            v_ref[idx] = f(0.999) * v_ref[idx] + (f(1) - f(0.999)) * (g * g)
            mh, vh = m_ref[idx] / f(1 - 0.9**t), v_ref[idx] / f(1 - 0.999**t)
            w_ref[idx] = w_ref[idx] - f(1e-3) * mh / (np.sqrt(vh) + f(1e-8))
        assert mean.dtype == f and opt["t"][0] == t
        np.testing.assert_array_equal(opt["m"], m_ref)
        np.testing.assert_array_equal(opt["v"], v_ref)
        for b in range(3):
            np.testing.assert_array_equal(w[b], w_ref)


def test_trial_update_state_survives_a_checkpoint():
    prog = compile(_net(update="trial", optimizer="adam", lr=5e-3), "spinnaker2", out=io.StringIO())
    a, b = Emulator(prog, batch=2, seed=0), Emulator(prog, batch=2, seed=0)
    for emu in (a, b):
        emu.run(STEPS, inputs=_inputs(2, 1), learn=True)
    b.restore(a.checkpoint())  # Adam's moments and step count go with the weights
    for emu in (a, b):
        emu.reset(keep_weights=True)
        emu.run(STEPS, inputs=_inputs(2, 2), learn=True)
    for name in a.plastic:
        np.testing.assert_array_equal(a.plastic[name].engine.state["w"], b.plastic[name].engine.state["w"])
    assert a._learners["out"].state["lif:lif->out/adam_t"][0] == 2


def test_loihi2_refuses_a_trial_update_and_adam_needs_one():
    with pytest.raises(NeurocompError, match=r"eprop update 'trial': loihi2's learning engine"):
        compile(_net(update="trial", t_epoch=16), "loihi2", out=io.StringIO())
    with pytest.raises(NeurocompError, match=r"optimizer 'adam' needs update 'trial'"):
        compile(_net(optimizer="adam"), "spinnaker2", out=io.StringIO())
