"""Contrastive Hebbian learning (neurocomp.rules.contrastive): the rule against finite
differences of its contrast function, the oscillation form against the two-phase form, XOR in
float and on loihi2's engine, weight symmetry under stochastic rounding, the lowering in the
emulator and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.analysis.check import check
from neurocomp.analysis.check_contrastive import asymmetry, epoch, make_level
from neurocomp.emulator import Emulator
from neurocomp.errors import NeurocompError
from neurocomp.profiles import load_profile
from neurocomp.rules.contrastive import Contrastive
from neurocomp.tasks import contrastive_xor as X
from neurocomp.tasks import make


def _net(seed: int = 3) -> tuple[Contrastive, np.ndarray, np.ndarray]:
    """3 inputs, 3 hidden, 2 outputs, weights small enough for one fixed point per phase."""
    net = Contrastive(3, 3, 2, lr=0.7, seed=seed, init_std=0.5, tol=1e-14)
    return net, np.array([0.2, 0.9, 0.5]), np.array([0.3, 0.8])


def test_the_update_is_minus_lr_times_the_contrast_gradient() -> None:
    """dW_ij = -lr dJ/dW_ij for every connected pair (both entries moved together), J by central
    differences of the settled energies: step 1e-5, truncation ~1e-10 relative, settling to
    1e-14 (the energy is stationary at a fixed point, so it enters squared): 1e-6 is safe."""
    net, x, y = _net()
    vf, vc = net.phases(x, y)
    dw = net.delta(vf, vc)
    eps, W = 1e-5, net.W.copy()
    pairs = list(zip(*np.nonzero(np.triu(net.mask)), strict=True))
    assert len(pairs) == 36 - 6  # 9 units, the 4 clamped ones (3 inputs and the bias) unconnected
    for i, j in pairs:
        E = np.zeros_like(W)
        E[i, j] = E[j, i] = eps
        grad = (net.contrast(x, y, W + E) - net.contrast(x, y, W - E)) / (2 * eps)
        assert -net.lr * grad == pytest.approx(dw[i, j], rel=1e-6, abs=1e-12), (i, j)


def test_the_oscillation_form_is_the_two_phase_form_up_to_its_transients() -> None:
    """Over one free-then-clamped cycle the oscillation form's change differs from the two-phase
    rule only by the clamped phase's settling transient, a share ~tau/P of it: below 0.5% at
    P = 1000 steps (tau 10), and four times larger at P = 250 (within 10%)."""
    net, x, y = _net()
    dw = net.delta(*net.phases(x, y))
    err = {P: np.abs(net.oscillation(x, y, P) - dw).max() / np.abs(dw).max() for P in (250, 1000)}
    assert err[1000] < 0.005
    assert err[250] / err[1000] == pytest.approx(4.0, rel=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_is_learned_in_float(seed: int) -> None:
    tk = make(X.NAME, seed=seed)
    net = make_level("reference", None, tk.config, seed)
    errs = [epoch(net, tk)[0] for _ in range(150)]
    assert errs[0] > 0 and errs[-10:] == [0.0] * 10  # 4 of 4, and it stays


@pytest.mark.parametrize("seed", [0, 1])
def test_xor_is_learned_on_loihi2_and_the_weights_stay_symmetric(seed: int) -> None:
    """In the chip's arithmetic (8-bit weights over +-8, stochastic rounding): XOR 4 of 4 after
    150 epochs, and W_ij == W_ji exactly: both synapses of a pair get the same product and the
    engine rounds every synapse with the epoch's one random number."""
    tk = make(X.NAME, seed=seed)
    net = make_level("lowered-fixed", load_profile("loihi2"), tk.config, seed)
    errs = [epoch(net, tk)[0] for _ in range(150)]
    assert errs[-10:] == [0.0] * 10
    w = net.engine.weights[0]
    assert w.dtype.kind == "i" and np.array_equal(w, w.T)


def test_symmetry_needs_the_shared_rounding() -> None:
    """Test oracle: the reference's own updates rounded onto the same weight grid with an
    independent random number per synapse (what a per-synapse stochastic rounding would do)
    break the symmetry within a few epochs, where the engine's shared number (above) keeps it."""
    tk = make(X.NAME, seed=0)
    net = make_level("reference", None, tk.config, 0)
    rng, lsb = np.random.default_rng(0), 2.0**-5
    W = np.round(net.W / lsb) * lsb
    for _ in range(5):
        for p in range(4):
            net.W = W
            vf, vc = net.phases(tk.inputs[0, p], tk.targets[0, p])
            W = W + np.floor(net.delta(vf, vc) / lsb + rng.random(W.shape)) * lsb
    assert asymmetry(net)[0] > 0


def _chl_net() -> nc.Network:
    n = nc.Network(name="chl")
    n.add(nc.Population("in", 2, nc.SpikeInput()), nc.Population("out", 1, nc.LIF(tau_mem_ms=10.0, v_th=5.0)))
    n.add(nc.Projection("in", "out", np.array([[0.5, -0.25]]), name="p", plasticity=nc.RuleSpec("chl", {"lr": 1e-4})))
    return n


def test_compiled_chl_sums_both_phases_in_the_tag_and_applies_it() -> None:
    """The compiled rule in the emulator (float learning arithmetic): the tag collects x1 * y2 / 64
    (a spike is the payload 1; y2 = s V_i), the apply step (y1 = 32) moves w by c_w * t and
    clears the tag; the silent input's weight stays (up to the payload's tau-65535 decay)."""
    prog = nc.compile(_chl_net(), "loihi2")
    rule = next(p.learning for p in prog.projections if p.learning is not None)
    c_w = rule.dw.products[0]
    T = 12
    spikes, y2, y1 = np.zeros((T, 2)), np.zeros((T, 1)), np.zeros((T, 1))
    spikes[1:8, 0] = 1  # input 0 sends 1 through both phases, input 1 nothing
    y2[1:4, 0], y2[5:8, 0] = -30.0, 50.0  # free phase, then clamped: s V_i
    y1[9, 0] = 32.0
    rec = Emulator(prog, learn_arithmetic="float").run(
        T, {"in": spikes, "p/y1": y1, "p/y2": y2}, ["w", "t", "x1", "y2"], learn=True
    )
    tag = np.cumsum(rec["p/x1"][:, 0, 0] * rec["p/y2"][:, 0, 0] / 64)
    w = rec["p/w"][:, 0, 0]
    k = int(np.nonzero(np.diff(w[:, 0]))[0][0]) + 1  # the apply step
    assert tag[k - 1] != 0
    assert w[k, 0] - w[k - 1, 0] == pytest.approx(c_w.mantissa * 2.0**c_w.exponent * tag[k - 1], rel=1e-4)
    assert w[-1, 1] == pytest.approx(w[0, 1], abs=1e-3)
    np.testing.assert_allclose(rec["p/t"][-1, 0, 0], 0.0, atol=1e-4)


@pytest.mark.parametrize(
    ("profile", "why"),
    [
        ("loihi1", "phase sign as a graded third factor"),
        ("spinnaker2", "runs on programmable cores as stated, in float32, in `neurocomp check`"),
        ("reckon", "no phase input"),
        ("xylo", "no on-chip learning"),
    ],
)
def test_where_chl_cannot_compile_the_error_says_why(profile: str, why: str) -> None:
    with pytest.raises(NeurocompError, match=why):
        nc.compile(_chl_net(), profile)


def test_check_runs_chl_on_loihi2(tmp_path) -> None:
    rep = check("chl", "loihi2", X.NAME, iterations=3, align=1, attribution=("graded",), out=tmp_path, plots=False)
    assert set(rep.final) == {"reference", "lowered-float", "lowered-fixed", "fixed, graded in float"}
    assert rep.alignment["levels"]["lowered-float"]["W"]["cosine_mean"] > 0.999  # the same rule, c_w rounded 1.6%
    assert any("lowered-fixed: 0 weight pairs with W_ij != W_ji" in n for n in rep.notes)


def test_check_runs_chl_on_spinnaker2_in_float32(tmp_path) -> None:
    """Programmable cores run the rule as stated in float32: XOR learned by every level in 150
    epochs (seed 0 keeps 4/4 from epoch 131 at every level), the float32 weights exactly
    symmetric (the same float32 product for both synapses of a pair) and within 1e-3 of
    float64's (float32 rounding of the settling, 1e-6 convergence, over 600 updates)."""
    rep = check("chl", "spinnaker2", X.NAME, iterations=150, align=1, attribution=False, out=tmp_path, plots=False)
    assert set(rep.final) == {"reference", "lowered-float", "lowered-fixed"}
    assert all(rep.final[lv]["pattern_error"] == 0 for lv in rep.final)
    assert any("lowered-fixed: 0 weight pairs with W_ij != W_ji" in n for n in rep.notes)

    prof, tk = load_profile("spinnaker2"), make(X.NAME, seed=0)
    a, b = (make_level(lv, prof, tk.config, 0) for lv in ("reference", "lowered-fixed"))
    for _ in range(150):
        epoch(a, tk), epoch(b, tk)
    assert b.W.dtype == np.float32
    np.testing.assert_allclose(b.W, a.W, rtol=0, atol=1e-3)
