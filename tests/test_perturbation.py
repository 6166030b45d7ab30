"""Weight and node perturbation (neurocomp.rules.perturbation) against the closed-form learning
curves of Züge, Klos & Memmesheimer (PRX 2023), their lowering onto loihi2's engine, the
named refusals, and the shared reward baseline (neurocomp.rules.reward)."""

from __future__ import annotations

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.analysis.check import CheckError, check
from neurocomp.analysis.check_perturbation import make_level, rule_params
from neurocomp.emulator import Emulator
from neurocomp.errors import NeurocompError
from neurocomp.profiles import load_profile
from neurocomp.rules.perturbation import NpOnEngine, Perceptron
from neurocomp.rules.reward import RewardBaseline
from neurocomp.tasks import make
from neurocomp.tasks import perturbation as P


def _arrays(t):
    return t.inputs.transpose(1, 2, 0), t.targets.transpose(1, 2, 0)


def _curve(net, tk, trials: int) -> np.ndarray:
    return np.array([net.trial(*_arrays(tk.sample(k))).mean() for k in range(trials)])


def _smooth(e: np.ndarray, w: int = 101) -> np.ndarray:
    """Centered moving average (edges padded with the end values): the expected curve's
    estimate from a few runs whose per-trial error varies with the trial's subtask."""
    p = w // 2
    return np.convolve(np.r_[np.full(p, e[0]), e, np.full(p, e[-1])], np.ones(w) / w, mode="valid")


# -- the task ----------------------------------------------------------------------------------


def test_task_starts_at_e0_and_its_best_weights_leave_e_opt() -> None:
    tk = make(P.NAME, seed=3, batch=2)
    cfg = tk.config
    assert P.initial_error(cfg) == pytest.approx(7.0, abs=1e-12)  # 10 * 10 * 10 * 0.01 / 2 + 2
    w_star = np.zeros((2, cfg["n_out"], cfg["n_in"]))
    w_star[:, :, : cfg["n_task"]] = cfg["w_opt"]
    for k in range(3):  # orthonormal inputs: only rounding separates E from E_0 and E_opt (1e-9)
        x, y = _arrays(tk.sample(k))
        assert tk.score(np.zeros_like(tk.targets)) == pytest.approx(7.0, abs=1e-9)
        assert tk.sample(k).score((w_star @ x).transpose(2, 0, 1)) == pytest.approx(cfg["e_opt"], abs=1e-9)
        assert np.count_nonzero(np.abs(x).sum(axis=2)) == 2 * cfg["n_trial"]  # n_trial inputs on per network


def test_task_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n_trial <= n_task"):
        make(P.NAME, n_trial=60)
    with pytest.raises(ValueError, match="e_opt"):
        make(P.NAME, steps=40, e_opt=2.0)


# -- the float form against the closed form ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "trials", "thresholds"),
    [("wp", 4300, (5.0, 4.5, 3.0)), ("np", 1500, (5.5, 5.0))],  # NP's shallow approach to 4: thresholds above
)
def test_learning_curves_match_the_closed_form(kind: str, trials: int, thresholds) -> None:
    """Multiple subtasks at the optimal rate and negligible perturbations: trials to each
    threshold within +-15% of the paper's closed form (the issue's target), and NP's floor at
    2 E_opt (WP goes on towards E_opt)."""
    tk = make(P.NAME, seed=1, batch=8)
    cfg = tk.config
    net = Perceptron(kind, cfg["n_out"], cfg["n_in"], lr=P.optimal_lr(cfg, kind),
                     sigma=P.perturbation_sigma(cfg, kind, 1e-10), batch=8, seed=1)  # fmt: skip
    e = _smooth(_curve(net, tk, trials))
    theory = P.expected_error(cfg, kind, trials)
    for h in thresholds:
        assert P.trials_to(e, h) == pytest.approx(P.trials_to(theory, h), rel=0.15), h
    if kind == "np":  # the closed form ends at 4.16 here, on its way to 2 E_opt = 4
        assert e[-100:].mean() == pytest.approx(theory[-1], rel=0.05)
        assert P.trials_to(e, 3.9) is None
    else:
        assert e[-100:].mean() < 3.0


def test_repeated_input_floor_grows_with_the_perturbation_as_the_closed_form_says() -> None:
    """Repeated input (N_trial = N_task = 50) with finite perturbations (sigma_eff 0.04): the
    closed form's floor includes NP's extra error from its T-fold perturbation dimension; the
    learned error after 1500 trials within 10% of it (noise of 4 runs over 200 trials)."""
    tk = make(P.NAME, seed=2, batch=4, n_trial=50)
    cfg = tk.config
    for kind in ("wp", "np"):
        s = P.perturbation_sigma(cfg, kind, 0.04)
        net = Perceptron(kind, 10, 100, lr=P.optimal_lr(cfg, kind), sigma=s, batch=4, seed=2)
        e = _curve(net, tk, 1500)
        assert e[-200:].mean() == pytest.approx(P.expected_error(cfg, kind, 1500, sigma=s)[-1], rel=0.10), kind


def test_float32_arithmetic_follows_float64() -> None:
    """Programmable cores run the rule in float32: on the same perturbations its weights stay
    within float32's rounding of float64's after 50 trials (relative 1e-4: ~1e-7 per operation,
    compounded over the trials' updates)."""
    tk = make(P.NAME, seed=0)
    kw = dict(lr=P.optimal_lr(tk.config, "wp"), sigma=P.perturbation_sigma(tk.config, "wp", 0.04), seed=4)
    a, b = Perceptron("wp", 10, 100, **kw), Perceptron("wp", 10, 100, dtype=np.float32, **kw)
    _curve(a, tk, 50), _curve(b, tk, 50)
    assert b.W.dtype == np.float32
    np.testing.assert_allclose(b.W, a.W, rtol=0, atol=1e-4 * np.abs(a.W).max())


# -- the reward baseline -----------------------------------------------------------------------


def test_reward_baseline_paired_and_running() -> None:
    assert RewardBaseline("paired").delta(np.array([1.0, -2.0]), np.array([0.5, -1.0])).tolist() == [0.5, -1.0]
    with pytest.raises(ValueError, match="unperturbed"):
        RewardBaseline("paired").delta(np.array([1.0]))
    run = RewardBaseline("running", tau=4.0)
    # b starts at the first reward; then b <- b + (R - b) / 4, read before each update
    assert [float(run.delta(np.array([r]))[0]) for r in (1.0, 3.0, 3.0)] == [0.0, 2.0, 1.5]
    with pytest.raises(ValueError, match="baseline"):
        RewardBaseline("mean")


# -- NP on loihi2's engine ---------------------------------------------------------------------


def test_np_on_engine_in_float_is_the_rule_scaled_by_the_rounded_constant() -> None:
    """The lowered rule in the engine's float arithmetic takes the float form's step on the same
    perturbation, times c_w's rounding to m*2^e (c_e is a power of two: exact). The graded
    values' tau-65535 decay inside the engine (Lava's) leaves a relative 1e-4, and its decay of
    the payload offset 64 leaves every silent input ~1e-3 payload units: 1e-5 of the largest
    step."""
    prof = load_profile("loihi2")
    tk = make(P.NAME, seed=5, batch=2)
    cfg = tk.config
    p = rule_params(cfg, "np", 0.04)
    ref = Perceptron("np", 10, 100, lr=p["lr"], sigma=p["sigma"], batch=2, seed=9)
    eng = NpOnEngine(prof, 10, 100, p, weight_max=0.2, batch=2, seed=9, arithmetic="float")
    sc, c_w = eng.scales, eng.rule.dw.products[0]
    exact = 32 * p["lr"] * sc.reward * sc.tag / (p["sigma"] ** 2 * sc.weight)
    rounded = c_w.mantissa * 2.0**c_w.exponent
    w0 = np.random.default_rng(0).normal(0, 0.03, (2, 10, 100))
    ref.set_weights(w0), eng.set_weights(w0)
    x, y = _arrays(tk.sample(0))
    ref.trial(x, y), eng.trial(x, y)
    want = (ref.W - w0) * rounded / exact
    np.testing.assert_allclose(eng.W - w0, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    # the reward step cleared the tag (tens of LSBs), up to y1's tau-65535 decay (1.5e-5 of it)
    assert np.abs(eng.engine.state["t"]).max() < 1e-2


def test_np_fixed_point_on_loihi2_learns_as_its_float_lowering() -> None:
    """The chip's arithmetic learns as the lowered rule in float: after 250 trials of 2 networks
    (task's sigma_eff 0.004) the float form, the lowered float and the fixed point all fell below
    6.5 from 7 (closed form: 5.93), and fixed point is within 0.6 of float (measured over two
    seeds: 0.19 and 0.38 worse; the attribution of `neurocomp check` says which quantity)."""
    prof = load_profile("loihi2")
    tk = make(P.NAME, seed=6, batch=2)
    e = {lv: _curve(make_level(lv, "np", prof, tk.config, 6), tk, 250)[-50:].mean()
         for lv in ("reference", "lowered-float", "lowered-fixed")}  # fmt: skip
    assert max(e.values()) < 6.5
    assert abs(e["lowered-float"] - e["reference"]) < 0.2  # the same rule: only c_w's 2% rounding
    assert e["lowered-fixed"] - e["lowered-float"] < 0.6


def _np_net(rule: str = "np") -> nc.Network:
    n = nc.Network(name=rule)
    n.add(nc.Population("in", 2, nc.SpikeInput()), nc.Population("out", 1, nc.LIF(tau_mem_ms=10.0, v_th=5.0)))
    params = {"lr": 1e-3, "sigma": 0.04, "elig_max": 2.0, "reward_max": 0.05}
    n.add(nc.Projection("in", "out", np.array([[0.5, 0.25]]), name="p", plasticity=nc.RuleSpec(rule, params)))
    return n


def test_compiled_np_learns_in_the_emulator_from_its_graded_inputs() -> None:
    """A compiled NP projection on loihi2 in the emulator (float learning arithmetic): the tag
    collects c_e * s_j * y2 / 8 over the trial (a spike is the payload 1), and the reward step
    (y3 = dR, y1 = 32) moves w by c_w * t * y3 / 32 and clears the tag; the input that never
    spiked keeps its weight."""
    prog = nc.compile(_np_net(), "loihi2")
    rule = next(p.learning for p in prog.projections if p.learning is not None)
    c_e = [p for p in rule.dt.products if p.factors[0].var == "x1"][0]
    c_w = rule.dw.products[0]
    T = 20
    spikes = np.zeros((T + 2, 2))
    spikes[2:T:3, 0] = 1  # input 0 spikes every third step; input 1 never
    y2 = np.zeros((T + 2, 1))
    y2[:T, 0] = np.arange(T) % 7 - 3.0  # the perturbation the neuron sends
    y3, y1 = np.zeros((T + 2, 1)), np.zeros((T + 2, 1))
    y3[T], y1[T] = 40.0, 32.0
    emu = Emulator(prog, learn_arithmetic="float")
    rec = emu.run(T + 2, {"in": spikes, "p/y1": y1, "p/y2": y2, "p/y3": y3}, ["w", "t", "x1", "y2"], learn=True)
    x1 = rec["p/x1"][:, 0, 0] - 64  # the payload the engine saw at each step (its own alignment)
    tag = np.cumsum(c_e.mantissa * 2.0**c_e.exponent * x1 * rec["p/y2"][:, 0, 0] / 8)
    w = rec["p/w"][:, 0, 0]
    reward_step = int(np.nonzero(np.diff(w[:, 0]))[0][0]) + 1
    expect = c_w.mantissa * 2.0**c_w.exponent * tag[reward_step - 1] * 40 / 32
    assert tag[reward_step - 1] != 0
    assert w[reward_step, 0] - w[reward_step - 1, 0] == pytest.approx(expect, rel=1e-4)  # tau-65535 decay
    # the silent input's weight: moved only by the payload offset's tau-65535 decay (~1e-3 units)
    assert w[-1, 1] == pytest.approx(w[0, 1], abs=1e-3)
    np.testing.assert_allclose(rec["p/t"][-1, 0, 0], 0.0, atol=1e-4)  # cleared, up to y1's tau-65535 decay


@pytest.mark.parametrize(
    ("rule", "profile", "why"),
    [
        ("wp", "loihi2", "no per-synapse random number generator"),
        ("np", "loihi1", "needs graded third factors"),
        ("np", "spinnaker2", "run on programmable cores as stated, in float32"),
        ("wp", "reckon", "no reward input"),
        ("np", "xylo", "no on-chip learning"),
    ],
)
def test_where_the_rules_cannot_compile_the_error_says_why(rule: str, profile: str, why: str) -> None:
    with pytest.raises(NeurocompError, match=why):
        nc.compile(_np_net(rule), profile)


def test_check_runs_np_on_loihi2_and_refuses_wp_by_name(tmp_path) -> None:
    rep = check("np", "loihi2", P.NAME, iterations=4, align=1, attribution=("tags",), out=tmp_path, plots=False)
    assert set(rep.final) == {"reference", "lowered-float", "lowered-fixed", "fixed, tags in float"}
    assert rep.alignment["levels"]["lowered-float"]["W"]["cosine_mean"] > 0.999  # the same rule, c_w rounded
    assert (tmp_path / "report.json").exists()
    with pytest.raises(CheckError, match="per-synapse random number"):
        check("wp", "loihi2", P.NAME, iterations=2)
    rep = check("wp", "spinnaker2", P.NAME, iterations=3, align=1, attribution=False)
    assert rep.final["lowered-fixed"]["error"] == pytest.approx(rep.final["reference"]["error"], rel=1e-5)


def test_a_running_reward_baseline_learns_as_the_paired_one_at_a_small_rate() -> None:
    """Without the unperturbed run (dR = R minus a running average over 5 trials, Fiete & Seung):
    at a tenth of the optimal rate, where the reward changes slowly against the baseline's lag,
    NP learns as with the paired baseline (repeated input, sigma_eff 0.04; after 1000 trials of
    4 networks both fell from 7 below 5.9, within 0.15 of each other: measured 5.86 and 5.85 at
    700-800 trials). At the optimal rate the baseline's lag outweighs the perturbation's reward
    signal and learning diverges: the paired baseline is the one for the paper's rates."""
    tk = make(P.NAME, seed=3, batch=4, n_trial=50)
    e = {}
    for mode in ("paired", "running"):
        net = Perceptron("np", 10, 100, lr=P.optimal_lr(tk.config, "np") / 10, sigma=0.04, batch=4, seed=3,
                         baseline=RewardBaseline(mode, tau=5.0))  # fmt: skip
        e[mode] = _curve(net, tk, 1000)[-100:].mean()
    assert max(e.values()) < 5.9
    assert abs(e["running"] - e["paired"]) < 0.15


def test_np_reward_product_keeps_its_bits() -> None:
    """The engine floors a product after its width shift (t*y3: 9 + 7 bits and a 4-bit mantissa
    over a 15-bit accumulator, shifted by 5). The lowering sends the reward in steps with
    mantissa * step a multiple of 2^5, so the floor drops only zero bits (the floor's half-LSB
    drift per trial cost NP on loihi2 24 % more trials), and picks the reward's unit so that c_w
    is exactly the learning rate's constant (no rounding note)."""
    prof = load_profile("loihi2")
    cfg = make(P.NAME, seed=0).config
    p = rule_params(cfg, "np", 0.004)
    eng = NpOnEngine(prof, 10, 100, p, weight_max=0.2)
    prm = prof.learning.params
    shift = prm["scale_mantissa_bits"] + prm["factor_widths"]["t"] + prm["factor_widths"]["y3"] - 15
    c_w, sc = eng.rule.dw.products[0], eng.scales
    assert (c_w.mantissa * sc.reward_step) % 2**shift == 0
    exact = 32 * p["lr"] * sc.reward * sc.tag / (p["sigma"] ** 2 * sc.weight)
    assert c_w.mantissa * 2.0**c_w.exponent == pytest.approx(exact, rel=1e-12)
    assert not any("reward scale" in n and "rounded" in n for n in eng.notes)
    assert any("multiples of 8" in n for n in eng.notes)
    # the reward the engine sees is on that grid and holds reward_max
    assert 15 * sc.reward_step * sc.reward >= p["reward_max"]
