"""Presynaptic-dependent scaling and synaptic scaling (neurocomp.rules.scaling, Buonomano 2005):
the float form against a hand derivation, the lowering onto loihi2's engine against the trace
arithmetic it stands for, the learning on psd-timing, and where the rules are refused."""

from __future__ import annotations

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.analysis import check_scaling
from neurocomp.errors import NeurocompError
from neurocomp.profiles import load_profile
from neurocomp.rules import scaling as sc
from neurocomp.tasks import make
from neurocomp.tasks import timing_code as tc


def test_float_form_against_a_hand_derivation() -> None:
    """Three cells, all connected, cell 2 silent, cells 0 and 1 firing 2 and 1 spikes each
    trial. After n trials A_i = c_i (1 - (1 - 1/tau)^n) (a geometric series). PSD adds lr A_j
    (A_goal - A_i): a silent presynaptic cell's outputs never change, cell 2's inputs from 0 and
    1 rise. SS multiplies each row by 1 + lr (A_goal - A_i): every input of a cell alike."""
    mask = ~np.eye(3, dtype=bool)
    spikes = np.zeros((10, 3))
    spikes[[1, 5], 0] = 1
    spikes[3, 1] = 1
    c, lr, tau = np.array([2.0, 1.0, 0.0]), 0.01, 4.0
    W0 = 0.5 * mask
    psd = sc.Homeostasis("psd", mask, lr=lr, w_max=10.0, tau_a=tau)
    ss = sc.Homeostasis("ss", mask, lr=lr, w_max=10.0, tau_a=tau)
    Wp, Ws, expect_p, expect_s = W0, W0, W0.copy(), W0.copy()
    for n in range(1, 4):
        Wp, Ws = psd.update(Wp, spikes), ss.update(Ws, spikes)
        a = c * (1 - (1 - 1 / tau) ** n)
        for i in range(3):
            for j in range(3):
                if i != j:
                    expect_p[i, j] += lr * a[j] * (1 - a[i])
                    expect_s[i, j] *= 1 + lr * (1 - a[i])
    np.testing.assert_allclose(psd.abar, a, rtol=1e-13)  # float64 rounding of a few operations
    np.testing.assert_allclose(Wp, expect_p, rtol=1e-13)
    np.testing.assert_allclose(Ws, expect_s, rtol=1e-13)
    assert np.all(Wp[:, 2][:2] == 0.5)  # the silent cell's outputs
    assert Wp[2, 0] > Wp[2, 1] > 0.5  # the silent cell's inputs grow, more from the busier cell


def test_bounds_hold() -> None:
    mask = np.array([[False, True], [True, False]])
    h = sc.Homeostasis("psd", mask, lr=1.0, w_max=0.7)
    spikes = np.zeros((5, 2))
    spikes[0, 0] = 1  # cell 1 silent: its input from 0 grows to the bound; cell 0 fires 1 = goal after 1 trial
    W = 0.5 * mask
    for _ in range(20):
        W = h.update(W, spikes)
    assert W[1, 0] == 0.7 and W[0, 1] >= 0.0 and W[0, 0] == 0


def test_lowered_psd_counts_spikes_in_the_tags_as_the_float_average() -> None:
    """On loihi2's engine in float arithmetic, the tags count 16 per spike and decay by 1/tau_A
    after each trial's update, so the value dw reads after trial n is 16 tau_A A_n, the float
    rule's average (a geometric series here); the update is -c t (d - C) / 128 (t*d shifted by
    7, an exact division in float) on every existing synapse, none absent."""
    prof = load_profile("loihi2")
    mask = np.array([[False, True], [True, False]])
    p = {"lr": 0.05, "w_max": 1.0, "trial_steps": 320, "tau_a": 4.0, "tag_impulse": 16}
    eng = sc.HomeostasisOnEngine("psd", prof, mask, p, arithmetic="float")
    prod = eng.rule.dw.products[0]
    c, goal = prod.mantissa * 2.0**prod.exponent, -prod.factors[1].const
    assert goal == 64 and eng.rule.t_epoch * 2**6 == 320  # the shortest epoch: 5 steps, u6
    ref = sc.Homeostasis("psd", mask, lr=0.05, w_max=1.0, tau_a=4.0)
    spikes = np.zeros((320, 2), bool)
    spikes[[10, 200], 0] = True  # two spikes of cell 0 per trial, in different epochs
    spikes[100, 1] = True
    W = 0.3 * mask
    eng.set_weights(W)
    for _ in range(3):
        before = eng.W.copy()
        eng.update(W, spikes)
        ref.update(W, spikes)
        a = 64 * ref.abar  # the counts dw read: 16 tau_A A_n
        dw = np.array([[0, a[1] * (a[0] - goal)], [a[0] * (a[1] - goal), 0]])
        np.testing.assert_allclose(eng.W - before, eng.weight_lsb * c * dw / 128, rtol=1e-12)
    # the float rule's own step, for the record: lr A_j (1 - A_i) = -(lr / s^2) a_j (a_i - C)
    assert c == pytest.approx(-128 * 0.05 / (64**2 * eng.weight_lsb), rel=0.07)  # c rounded to m 2^e


@pytest.mark.slow
def test_psd_recruits_the_network_and_ss_does_not_settle() -> None:
    """psd-timing, seed 0, 300 trials (the benchmark's run), the issue's targets over the last 20
    trials: PSD takes the network from 5 stimulated cells to 1 +- 10 % spikes per E cell
    (measured 0.94), more than 90 % recruited (94 %), at most 3 spikes per cell (1), first-spike
    latencies spread over more than 100 ms (157); SS, the control, does not settle (bursts of
    up to 7 spikes per cell)."""

    def train(kind: str, trials: int, seed: int) -> list[dict]:
        cfg = make(tc.NAME, seed=seed).config
        net = tc.TimingNetwork(cfg, seed)
        learner = check_scaling.make_level("reference", kind, None, net, cfg, seed)
        return check_scaling.train(learner, net, trials, lambda _: None, kind)[0]

    h = train("psd", 300, 0)
    assert h[0]["mean"] == pytest.approx(5 / 200)
    last = h[-20:]
    assert np.mean([r["mean"] for r in last]) == pytest.approx(1.0, abs=0.1)
    assert np.mean([r["recruited"] for r in last]) > 0.9
    assert max(r["max"] for r in last) <= 3
    assert np.mean([r["latency_span_ms"] for r in last]) > 100
    s = train("ss", 300, 0)
    assert max(r["max"] for r in s[-100:]) > 3


def test_psd_learns_in_a_ci_sized_run() -> None:
    """40 trials of psd-timing from 5 stimulated cells (0.025 spikes per cell): PSD recruits
    more cells, one spike each, in float (measured 0.16 at trial 40) and on loihi2's engine in
    fixed point (measured 0.085; lowered-float 0.09); the outputs of cells that never fired keep
    their initial weight (float)."""
    tk = make(tc.NAME, seed=0)
    net = tc.TimingNetwork(tk.config, 0)
    quiet = lambda _: None  # noqa: E731  (no progress bar)
    ref = check_scaling.make_level("reference", "psd", None, net, tk.config, 0)
    h, W = check_scaling.train(ref, net, 40, quiet, "psd")
    assert h[0]["mean"] == 0.025 and h[-1]["mean"] > 0.1 and max(r["max"] for r in h) == 1
    silent = ref.abar == 0
    assert silent.any() and np.all(W[:, silent][net.mask[:, silent]] == tk.config["w0"])
    fixed = check_scaling.make_level("lowered-fixed", "psd", load_profile("loihi2"), net, tk.config, 0)
    f, _ = check_scaling.train(fixed, net, 40, quiet, "psd")
    assert f[-1]["mean"] > 0.05 and max(r["max"] for r in f) == 1


def _net(rule: str, trial_steps: int = 320) -> nc.Network:
    n = nc.Network(name=rule)
    n.add(nc.Population("e", 4, nc.LIF(tau_mem_ms=10.0, v_th=1.0)))
    W = np.full((4, 4), 0.1)
    np.fill_diagonal(W, 0)
    params = {"lr": 0.05, "w_max": 1.0, "tau_a": 4.0, "trial_steps": trial_steps}
    n.add(nc.Projection("e", "e", W, name="ee", plasticity=nc.RuleSpec(rule, params)))
    return n


@pytest.mark.parametrize(
    ("profile", "why"),
    [("reckon", "no homeostatic"), ("spinnaker2", "run on programmable cores as stated .* in float32")],
)
def test_where_the_rules_cannot_compile_the_error_says_why(profile: str, why: str) -> None:
    for rule in sc.KINDS:
        with pytest.raises(NeurocompError, match=why):
            nc.compile(_net(rule), profile)


def test_compiles_on_loihi_1_and_2_and_refuses_an_untimeable_trial() -> None:
    for prof in ("loihi1", "loihi2"):
        rule = next(p.learning for p in nc.compile(_net("psd"), prof).projections if p.learning is not None)
        assert rule.t_epoch == 5 and "u6" in str(rule.dw)  # 320 = 5 * 2^6
    with pytest.raises(NeurocompError, match="trial_steps = 321"):  # odd and above the 6-bit epoch
        nc.compile(_net("psd", 321), "loihi2")


def test_check_runs_psd_on_loihi2_and_refuses_elsewhere(tmp_path) -> None:
    from neurocomp.analysis.check import CheckError, check

    rep = check("psd", "loihi2", tc.NAME, iterations=3, attribution=("traces",), out=tmp_path, plots=False)
    assert set(rep.final) == {"reference", "lowered-float", "lowered-fixed", "fixed, traces in float"}
    assert rep.final["reference"]["first"] == pytest.approx(5 / 200)  # the stimulated cells alone
    assert any("u7: once per 640-step trial" in n for n in rep.notes)
    assert (tmp_path / "report.json").exists()
    rep = check("ss", "spinnaker2", tc.NAME, iterations=3, attribution=False, out=tmp_path / "s2", plots=False)
    assert set(rep.final) == {"reference", "lowered-float", "lowered-fixed"}  # float32 on the cores
    assert rep.final["lowered-fixed"]["first"] == rep.final["reference"]["first"]
    with pytest.raises(CheckError, match="no homeostatic"):
        check("psd", "reckon", tc.NAME, iterations=2)
    with pytest.raises(CheckError, match="name the rule"):
        check("stdp", "loihi2", tc.NAME, iterations=2)
