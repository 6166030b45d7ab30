"""Bourdoukan & Deneve's balanced network (neurocomp.rules.balanced): the derivation's weights
against the network, the rules against their formulas, the lowerings and refusals, the task."""

from __future__ import annotations

import numpy as np
import pytest

from neurocomp.profiles import load_profile
from neurocomp.rules.balanced import (
    Balanced,
    FloatLearner,
    Phase,
    copy_staggers,
    cv_isi,
    cv_rescaled,
    fast_update,
    ideal_weights,
    leaky_integral,
    lower,
    lower_engine,
    lower_slow_engine,
    rel_error,
    slow_params,
    slow_update,
)
from neurocomp.rules.base import LoweringError
from neurocomp.tasks import make


def small_task(**kw):
    return make("balanced-oscillator", seed=0, fast_steps=10, slow_steps=30, test_steps=3000, readout_fit_steps=0, **kw)


def test_ideal_weights_track_the_oscillator():
    # the derivation (V = D^T e - mu r): with Of = -D^T D - mu I and Os = D^T (A + lam I) D + mu lam I the
    # network codes x with no feedback and no learning. 0.05: a spike moves xh by |D| = 0.1 against an RMS of
    # about 1.9, so the coding error is a few percent (0.015-0.016 measured over 10 s for seeds 0-1)
    tk = small_task()
    b = Balanced(tk, 0)
    of, os_ = ideal_weights(b.D, b.A, float(tk.config["lam"]), float(tk.config["mu"]))
    out = b.test(FloatLearner(of, os_, 0.0, 0.0, 0.0, float(tk.config["dt"])))
    assert out["error"] < 0.05
    # and without the slow weights it does not: the dynamics live in Os
    bad = b.test(FloatLearner(of, np.zeros_like(os_), 0.0, 0.0, 0.0, float(tk.config["dt"])))
    assert bad["error"] > 0.5


def test_fitted_readout_reads_fast_weights_short_of_the_ideal():
    # learned fast weights settle short of -D^T D (0.93-0.97 of it); with 0.9 of it off the diagonal the network
    # codes the leaky integral y of c as about 0.9 D r, so D misreads it by about 10 %. The readout fitted on the
    # fast phase's input must read a fresh input (the test phase's) with at most 0.7 of D's error (0.057 vs 0.116
    # measured over 3 s); the ideal network's own coding error is 0.06 at this size (y is small for 3 s from 0)
    tk = make("balanced-oscillator", seed=0, fast_steps=3000, readout_fit_steps=3000, slow_steps=30, test_steps=3000)
    b = Balanced(tk, 0)
    lam, dt = float(tk.config["lam"]), float(tk.config["dt"])
    of, _ = ideal_weights(b.D, b.A, lam, float(tk.config["mu"]))
    ln = FloatLearner(np.where(np.eye(b.n, dtype=bool), of, 0.9 * of), b.ws0, 0.0, 0.0, 0.0, dt)
    c = b.segments[-1][0]
    y = leaky_integral(c, lam, dt)
    err_d = rel_error(b.net.run(Phase(False, False, False), c, y, ln)[0], y)
    fitted = b.fit_readout(ln)
    assert b.net.readout is fitted and fitted.shape == b.D.shape
    err_fit = rel_error(b.net.run(Phase(False, False, False), c, y, ln)[0], y)
    assert err_fit < 0.7 * err_d
    with pytest.raises(ValueError, match="readout_fit_steps"):
        make("balanced-oscillator", fast_steps=100, readout_fit_steps=101)


def test_fast_update_formula():
    rng = np.random.default_rng(1)
    w, v, r = rng.standard_normal(6), rng.standard_normal(6), rng.random(6)
    d = fast_update(w, v, r, 2, 0.1, 1.8, 0.01)
    expect = -0.1 * (1.8 * (v + 0.01 * r) + w)  # the rule as written in the module docstring
    expect[2] = 0.0  # the reset is the neuron's own, not learned
    np.testing.assert_allclose(d, expect, rtol=1e-15)


def test_slow_update_is_feedback_current_times_rate():
    fb, r = np.array([1.0, -2.0]), np.array([0.5, 3.0, 0.0])
    np.testing.assert_array_equal(slow_update(fb, r, 0.3, 1e-3), 0.3e-3 * fb[:, None] * r[None, :])


def test_float32_learner_follows_float64():
    # one slow stage of 30 steps: float32 accumulates rounding of ~1e-7 relative per step; 1e-4 bounds it
    tk = small_task(slow_stages=1)
    b = Balanced(tk, 0)
    cfg = tk.config
    args = (b.wf0, b.ws0, float(cfg["eta_fast"]), float(cfg["beta"]), float(cfg["mu"]), float(cfg["dt"]))
    l64, l32 = FloatLearner(*args), FloatLearner(*args, dtype=np.float32)
    for ln in (l64, l32):
        b.net.run(Phase(True, True, True, 0.3), *b.segments[1], ln)
    assert np.abs(l64.ws - b.ws0).max() > 0  # it learned
    np.testing.assert_allclose(l32.ws, l64.ws, atol=1e-4 * np.abs(l64.ws).max())


def test_lowerings_and_refusals():
    assert lower(load_profile("loihi2"), 40).variant == "engine"
    assert lower(load_profile("spinnaker2"), 40).variant == "float32"
    with pytest.raises(LoweringError, match="membrane voltage V as a learning factor"):
        lower(load_profile("loihi1"), 40)
    with pytest.raises(LoweringError, match="no learning engine"):
        lower(load_profile("xylo"), 40)
    with pytest.raises(LoweringError, match="fixed-function e-prop"):
        lower(load_profile("reckon"), 40)
    # graded post traces without graded pre spikes: the slow rule's relay units are what is missing
    import dataclasses

    l2 = load_profile("loihi2")
    params = {k: v for k, v in l2.learning.params.items() if k != "graded_pre_spikes"}
    no_pre = dataclasses.replace(l2, learning=dataclasses.replace(l2.learning, params=params))
    with pytest.raises(LoweringError, match="relay units as graded pre spikes"):
        lower(no_pre, 40)


def test_engine_rules_state_their_precision():
    from neurocomp.tasks.balanced_oscillator import DEFAULTS

    cfg, prof = dict(DEFAULTS), load_profile("loihi2")
    fast, sc, notes = lower_engine(prof, cfg, 0.3)
    assert "x0*y2" in str(fast.dw) and "x0*w" in str(fast.dw)  # V as the graded y2, the decay through w
    # the slow rule is the basis network's with r as x1 (graded pre spikes of relay units) and Theta on error units
    slow, _, slow_notes = lower_slow_engine(prof, slow_params(cfg), 0.3, factored=True)
    assert "u0*y3*x1" in str(slow.dw) and "x1" in slow.pre_graded and slow.t_epoch > 1
    assert any("relay units" in n and "K e (the error units')" in n for n in notes)
    assert fast.post_traces == "graded" and set(fast.graded) == {"y1", "y2"}
    assert any("127 levels a side" in n and "threshold" in n for n in notes)
    # the fixed point of dw = Cv*x0*y2 + Cw*x0*w (each product divided by its width shift) is w = -beta V in model
    # units: the voltage's scale follows the rounded constants (rounded independently, beta fell to 1.65)
    lrn = prof.learning
    c = {p.factors[0].var: p.mantissa * 2.0**p.exponent for p in fast.dw.products}
    gain = (c["y2"] / 2.0 ** lrn.product_shift("x0", "y2")) / (c["w"] / 2.0 ** lrn.product_shift("x0", "w"))
    assert gain * sc.wf_lsb / sc.v_lsb == pytest.approx(float(cfg["beta"]), rel=1e-12)


def _one_slow_run(b, prof, eta, steps, **engine_kw):
    """The task network's engine learner through ``steps`` steps of a slow phase at rate ``eta`` (fast weights: the
    resets), with each step's feedback current and presynaptic r recorded."""
    ln = b.engine_learner(prof, 0, **engine_kw)
    seen, step = [], ln.after_step

    def record(i, phase, fired, v, r, fb, pre):
        seen.append((np.array(fb, dtype=float), np.array(pre, dtype=float), ln.ws.copy()))
        step(i, phase, fired, v, r, fb, pre)

    ln.after_step = record
    c, x = b.segments[1]
    b.net.run(Phase(False, True, True, eta), c[:steps], x[:steps], ln)
    return ln, seen


def test_engine_slow_rule_is_the_float_rule_sampled_per_epoch():
    # Independent derivation: the slow rule's float form dOs = eta dt (K D^T e) r^T, summed over one epoch of T
    # steps as the engine samples it (the feedback averaged over the epoch, r of the learning step from the relay
    # units), is eta dt T mean(K D^T e) r_T^T; the engine (float arithmetic) learns Theta on the error units with
    # Cs = (Cs / (T one)) T steps' worth and delivers D^T Theta beside the neurons' own mu lam I. Its graded values
    # decay over the epoch at Lava's tau of 65535 steps (as in test_balanced_basis). Nothing may change before the
    # learning step. Within 1e-12: float64 sums of T products and a least-squares solve of full rank. One copy of
    # the error units (the derivation is one rule's epoch; the copies have their own test below).
    tk = make("balanced-oscillator", seed=0, fast_steps=10, slow_steps=400, slow_stages=1, test_steps=10,
              readout_fit_steps=0, error_copies=1)
    cfg, prof = dict(tk.config), load_profile("loihi2")
    b = Balanced(tk, 0)
    eta = 0.5
    rule, sc, _ = lower_slow_engine(prof, slow_params(cfg), eta, factored=True)
    T = rule.t_epoch
    ln, seen = _one_slow_run(b, prof, eta, T, arithmetic="float")
    assert ln.slow.D is b.D  # the task's error units
    assert all(np.array_equal(w, b.ws0) for _, _, w in seen)  # no change before the epoch's end
    cs = rule.dw.products[0].mantissa * 2.0 ** rule.dw.products[0].exponent
    one = eta * cfg["dt"] * sc.fb_lsb * sc.phi_lsb / sc.w_lsb * 2.0 ** prof.learning.product_shift("y3", "x1")
    fb = np.mean([f for f, _, _ in seen], axis=0)
    r_T = seen[-1][1]
    assert np.abs(fb).max() > 0 and r_T.max() > 0  # the network fed back and spiked
    expect = b.ws0 + np.exp(-2 * T / 65535) * (cs / one) * eta * cfg["dt"] * np.outer(fb, r_T)
    np.testing.assert_allclose(ln.ws, expect, rtol=1e-12, atol=1e-15)


def test_engine_slow_rule_fixed_point_is_exact_and_stays_in_the_decoder_span():
    # loihi2's fixed point on the task network over three epochs (the lowering's two fixes for the run-away):
    # Cs = 4*2^E and r on even levels make every product Cs*y3*x1 a multiple of the width shift, so the engine equals
    # the one whose products are divided exactly, bit for bit (the floor's bias was a drift on every synapse); and
    # learning Theta on the error units keeps Os - mu lam I in the span of D^T whatever the rounding (nothing
    # restores a component outside it: the float rule only ever changes Os along D^T e)
    tk = make("balanced-oscillator", seed=0, fast_steps=10, slow_steps=400, slow_stages=1, test_steps=10,
              readout_fit_steps=0)
    prof = load_profile("loihi2")
    eta = 1.0  # the first stage's rate is 0.06: a faster one moves Theta further in three epochs
    T = lower_slow_engine(prof, slow_params(dict(tk.config)), eta, factored=True)[0].t_epoch
    fixed, _ = _one_slow_run(Balanced(tk, 0), prof, eta, 3 * T)
    exact, _ = _one_slow_run(Balanced(tk, 0), prof, eta, 3 * T, float_quantities=("products",))
    b = Balanced(tk, 0)
    dw = fixed.ws - b.ws0
    assert np.abs(fixed.slow.engine.weights[0]).max() >= 10  # it learned: Theta moved by 10 LSBs or more
    np.testing.assert_array_equal(fixed.ws, exact.ws)
    q = np.linalg.qr(b.D.T)[0]
    assert np.linalg.norm(dw - q @ (q.T @ dw)) < 1e-12 * np.linalg.norm(dw)


def test_error_unit_copies_learn_with_staggered_epochs_and_deliver_their_mean():
    # error_copies = 2: two learning connections onto two copies of the error units, with epochs T - 1 and T + 1
    # (T the one copy's), the second learning -Theta from -K e, so the engine's one random number per epoch (the
    # same stream in every connection) rounds their changes apart; the neurons receive D^T (the copies' mean Theta,
    # the second's negated) beside mu lam I
    assert copy_staggers(1) == (0,) and copy_staggers(2) == (-1, 1) and copy_staggers(3) == (-1, 0, 1)
    kw = dict(fast_steps=10, slow_steps=400, slow_stages=1, test_steps=10, readout_fit_steps=0)
    tk = make("balanced-oscillator", seed=0, error_copies=2, **kw)
    prof = load_profile("loihi2")
    eta = 1.0
    T = lower_slow_engine(prof, slow_params(dict(tk.config)), eta, factored=True)[0].t_epoch
    b = Balanced(tk, 0)
    ln, _ = _one_slow_run(b, prof, eta, 6 * T)
    assert [e.rule.t_epoch for e in ln.slow.engines] == [T - 1, T + 1]
    th = [e.weights[0].astype(float) for e in ln.slow.engines]
    assert min(np.abs(t).max() for t in th) >= 10  # both learned
    assert np.corrcoef(th[0].ravel(), th[1].ravel())[0, 1] < -0.5  # the second learned -Theta (+0.7 without)
    assert np.abs(th[0] + th[1]).sum() > 0  # their changes were rounded apart
    w_lsb = float(tk.config["theta_range"]) / 2 ** (prof.learning.synaptic_variable_bits["w"] - 1)
    np.testing.assert_allclose(ln.ws, b.D.T @ ((th[0] - th[1]) / 2 * w_lsb) + b.ws0, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="error_copies"):
        make("balanced-oscillator", error_copies=0)


def test_staggered_epochs_all_fit_the_engine_s_epoch():
    # a target epoch at the engine's longest (63 steps) must not leave the +1 copy at 64: the exponent E is chosen
    # so that every copy's epoch fits; over a range of rates each copy lowers, inside 1..63, one step apart from T
    tk = make("balanced-oscillator", seed=0, epoch_steps=63, error_copies=2)
    cfg, prof = slow_params(dict(tk.config)), load_profile("loihi2")
    longest = 2 ** int(prof.learning.epoch_bits) - 1
    for eta in np.linspace(0.5, 1.0, 60):
        epochs = [lower_slow_engine(prof, cfg, eta, factored=True, stagger=g)[0].t_epoch for g in copy_staggers(2)]
        assert 1 <= epochs[0] and epochs[1] <= longest and epochs[1] - epochs[0] == 2


def test_rescaled_cv_is_one_for_a_poisson_train_tuned_to_the_signal():
    # independent trains: Bernoulli spikes per step (Poisson at 1 ms) at a rate tuned to the direction of a signal
    # rotating at 1 Hz, as this network's neurons are; their plain CV counts the modulation (about 3), their rescaled
    # CV is 1 within 0.1 (100 s, about 2500 spikes a neuron: the estimate's spread is a few percent, and the rate
    # is taken as constant within each of 12 sectors); a periodic train gated by the same tuning is far below 1
    rng = np.random.default_rng(0)
    ph = 2 * np.pi * np.arange(100_000) / 1000
    x = np.stack([np.cos(ph), np.sin(ph)], 1)
    lam = 0.08 * np.maximum(np.cos(ph[:, None] - np.array([0.0, 2.0])), 0)
    poisson = np.argwhere(rng.random(lam.shape) < lam)
    assert cv_isi(poisson, 2) > 2
    assert abs(cv_rescaled(poisson, 2, x) - 1) < 0.1
    gated = np.argwhere((lam[:, :1] > 0.04) & (np.arange(len(lam))[:, None] % 20 == 0))
    assert cv_rescaled(gated, 1, x) < 0.3


def test_task_phases_and_mask():
    tk = small_task()
    assert tk.inputs.shape == tk.targets.shape == (3040, 1, 2)
    assert tk.mask[:40].sum() == 0 and tk.mask[40:].all()
    again = small_task()
    np.testing.assert_array_equal(tk.inputs, again.inputs)
    with pytest.raises(ValueError, match="unknown parameter"):
        make("balanced-oscillator", nope=1)


def test_check_runs_the_levels_on_loihi2():
    # a CI-sized protocol (the acceptance run is benchmarks/balanced_oscillator.py): the three levels run, the
    # engine's fixed point differs from its float64 form, and a non-balanced model name is refused
    from neurocomp.analysis.check import CheckError
    from neurocomp.analysis.check_balanced import check_balanced

    tk = make("balanced-oscillator", seed=0, fast_steps=100, slow_steps=150, slow_stages=2, test_steps=100,
              readout_fit_steps=100)
    rep = check_balanced("balanced", "balanced-oscillator", tk, profile="loihi2", seed=0, progress=False)
    assert set(rep.final) == {"reference", "lowered-float", "lowered-fixed"}
    assert all(np.isfinite(f["error"]) and len(rep.curves[lv]["error"]) == 2 for lv, f in rep.final.items())
    assert rep.config["variant"] == "engine"
    assert any("127 levels a side" in n for n in rep.notes)
    with pytest.raises(CheckError, match="name the rule"):
        check_balanced("eprop", "balanced-oscillator", tk, profile="loihi2", seed=0, progress=False)
    with pytest.raises(CheckError, match="membrane voltage"):
        check_balanced("balanced", "balanced-oscillator", tk, profile="loihi1", seed=0, progress=False)


def test_cli_check_refuses_named(tmp_path, capsys):
    from neurocomp.cli import main

    code = main(["check", "balanced", "--task", "balanced-oscillator", "--profile", "loihi1", "--out", str(tmp_path)])
    assert code == 2 and "membrane voltage V as a learning factor" in capsys.readouterr().err
    code = main(["check", "balanced", "--task", "balanced-oscillator", "--profile", "loihi2", "--iterations", "3"])
    assert code == 2 and "fixed phases" in capsys.readouterr().err


def test_a_model_file_naming_balanced_gets_a_named_problem(tmp_path, capsys):
    from neurocomp.cli import main

    model = tmp_path / "m.yaml"
    model.write_text(
        "neurocomp: 1\nname: t\npopulations:\n"
        "  - {name: in, size: 3, neuron: {model: SpikeInput, rate_hz: 10.0, seed: 1}}\n"
        "  - {name: rec, size: 2, neuron: {model: LIF, tau_mem_ms: 5.0, v_th: 1.0}}\n"
        "projections:\n"
        "  - {pre: in, post: rec, weights: [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], plasticity: {rule: balanced}}\n"
    )
    assert main(["validate", str(model)]) == 2
    out = capsys.readouterr()
    assert "projection 'in->rec'" in out.out + out.err and "check balanced --task" in out.out + out.err


@pytest.mark.slow
def test_float_protocol_meets_the_target_on_seed_1():
    # the acceptance protocol (benchmarks/balanced_oscillator.py) in float64 on a seed that ran away before the
    # readout fit, the 0.9 |D_i|^2 bound and the slower slow rate (with a 180-s slow phase and eta_slow 0.3,
    # reverting one of them missed: 0.161 without the fit, 0.552 with the bound at 2 |D_i|^2). 8 s of CPU
    tk = make("balanced-oscillator", seed=1)
    cfg = tk.config
    b = Balanced(tk, 1)
    ln = FloatLearner(b.wf0, b.ws0, float(cfg["eta_fast"]), float(cfg["beta"]), float(cfg["mu"]), float(cfg["dt"]),
                      float(cfg["wf_bound"]))  # fmt: skip
    b.train(ln)
    assert b.test(ln)["error"] < 0.1  # the target: autonomous error under 10 % of the signal's RMS


@pytest.mark.slow
def test_loihi2_fixed_point_meets_the_target_on_seed_1():
    # the acceptance protocol (benchmarks/balanced_oscillator.py) on loihi2's fixed point: the fast rule on the engine,
    # the slow rule as balanced-basis's with r as x1 and Theta on the error units. Before that lowering the fixed point
    # ran away on every seed (1.07-1.09); with it seed 1 reaches 0.062 (0.048 with another stochastic-rounding seed).
    # About 25 s of CPU
    tk = make("balanced-oscillator", seed=1)
    b = Balanced(tk, 1)
    ln = b.engine_learner(load_profile("loihi2"), 1)
    b.train(ln)
    assert b.test(ln)["error"] < 0.1  # the target: autonomous error under 10 % of the signal's RMS
