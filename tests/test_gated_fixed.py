"""The gated theta neuron on loihi2: the fixed arithmetic of ``kernels/gated.py`` (a microcode
neuron: polynomial cosine and gate ramp, phases in turns, floored products) against the float
one, each with a tolerance derived from the profile's formats; the loihi2 Program and its
emulator."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest

from neurocomp.analysis.deploy import chip_model
from neurocomp.compiler import compile
from neurocomp.compiler.errors import DRCError, QuantizationError
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator, EmulatorError
from neurocomp.graph import load_network
from neurocomp.kernels.gated import (
    chip_constants,
    cos_phase,
    fixed_arith,
    float_arith,
    gate_charges,
    model_constants,
    run_gated,
)
from neurocomp.profiles import load_profile

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "gated_delayed_xor.yaml"
STATE = load_profile("loihi2").neuron_models["GatedTheta"].state
LSB = 2.0 ** -STATE["f"].frac_bits  # the polynomials' grid
# cos: the fit's 1.7e-5, the floor of z^2 times the polynomial's slope (<= 4.94) and three
# Horner floors of one LSB each
COS_TOL = 1.7e-5 + 4.94 * LSB + 3 * LSB
# G: the floor of u = phi/width (the ramp's slope is <= 2), the sine's fit (2.6e-7), its z^2 and
# Horner floors (slope <= 0.83) and the product's floor
G_TOL = 2 * LSB + 2.6e-7 + 0.83 * LSB + 4 * LSB


def test_polynomial_cosine_is_within_its_stated_error():
    fx, cc = fixed_arith(STATE)
    th = np.arange(-3 * 2**16, 3 * 2**16 + 1, 5) / 2.0**16  # phases in turns, three turns either side
    err = max(abs(cos_phase(t, fx, cc, 1.0, 0.5) - math.cos(2 * math.pi * t)) for t in th)
    assert err <= COS_TOL


@pytest.mark.parametrize("width_rad", [0.3, 1.0, 2 * math.pi])
def test_gate_integral_is_within_its_stated_error(width_rad):
    fx, cc = fixed_arith(STATE)
    winv = chip_constants({"width": width_rad}, STATE)["width"]  # 1/turn, on its register
    th = np.arange(-2 * 2**16, 2 * 2**16 + 1, 3) / 2.0**16
    g_fix, g_flt = np.empty_like(th), np.empty_like(th)
    gate_charges(th, np.full_like(th, winv), True, g_fix, fx, cc)
    gate_charges(th * 2 * math.pi, np.full_like(th, 2 * math.pi / winv), True, g_flt, *float_arith(np.float64))
    assert np.abs(g_fix - g_flt).max() <= G_TOL
    assert np.all(np.diff(g_fix) >= 0)  # the charge never flows back as the phase advances


def _step_inputs(seed: int, n: int = 12, n_in: int = 2, nb: int = 3):
    """A random network on dyadic weights (the same in both arithmetics), its constants as the
    chip realizes them (model units) and the chip's registers."""
    rng = np.random.default_rng(seed)
    w = {k: np.round(rng.normal(0, sd, shape) * 64) / 64 for k, sd, shape in
         (("in", 1.0, (n, n_in)), ("rec", 3.0, (n, n)), ("out", 3.0, (1, n)))}  # fmt: skip
    alpha = math.exp(-1 / 50)
    consts = {"eps": 1 / 20, "alpha": alpha, "beta": 1 - alpha, "width": 1.0, "bias": -0.1}
    chip = chip_constants(consts, STATE)
    real = model_constants(chip)
    th0 = np.round(rng.uniform(-3 * math.pi, 3 * math.pi, (nb, n)) / (2 * math.pi) * 2**16) / 2**16  # turns
    s0 = np.round(rng.uniform(0, 0.03, (nb, n)) * 2**20) / 2**20
    x = np.round(rng.normal(0, 1, (1, nb, n_in)) * 2**16) / 2**16
    return w, real, chip, th0, s0, x


def _run(w, c, th0, s0, x, fixed):
    """One step of ``run_gated`` in one arithmetic; returns theta (rad), s, I and y."""
    nb, n = th0.shape
    fx, cc = fixed_arith(STATE) if fixed else float_arith(np.float64)
    th = np.empty((2, nb, n))
    s = np.empty_like(th)
    th[0], s[0] = (th0 if fixed else th0 * 2 * math.pi), s0
    cur, y = np.empty((1, nb, n)), np.empty((1, nb, 1))
    full = {k: np.full(n, v) for k, v in c.items()}
    kappa = 0.8125  # a 12-bit decay
    run_gated(x, w["in"], w["rec"], w["out"], full["bias"], full["eps"], full["alpha"], full["beta"], full["width"],
              True, kappa, np.zeros(1), th, s, cur, y, np.full((nb, 1), 0.25), fx, cc)  # fmt: skip
    return (th[1] * 2 * math.pi if fixed else th[1]), s[1], cur[0], y[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_fixed_step_is_the_float_step_within_its_rounding(seed):
    w, real, chip, th0, s0, x = _step_inputs(seed)
    th_f, s_f, i_f, y_f = _run(w, real, th0, s0, x, fixed=False)
    th_q, s_q, i_q, y_q = _run(w, chip, th0, s0, x, fixed=True)
    # I: one floor onto its grid (the weights and payloads are exact)
    assert np.abs(i_q - i_f).max() <= 2.0 ** -STATE["I"].frac_bits
    # theta (rad): the floor of the step (one phase LSB) plus eps times the cosine's error
    # through (1 - cos) + (1 + cos) I and the floor of (1 + cos) I
    eps = real["eps"]
    tol = 2 * math.pi * 2.0 ** -STATE["theta"].frac_bits + eps * (COS_TOL * (1 + np.abs(i_f).max()) + LSB)
    assert np.abs(th_q - th_f).max() <= tol
    # s: beta times G's error at both ends of the step (each phase also moved by <= tol, G's
    # slope <= 2/width per rad) and two floors of s's grid
    s_tol = real["beta"] * 2 * (G_TOL + 2 * tol / (2 * math.pi) * 2 * math.pi) + 2 * 2.0 ** -STATE["s"].frac_bits
    assert np.abs(s_q - s_f).max() <= s_tol
    assert np.abs(y_q - y_f).max() <= (1 - 0.8125) * np.abs(w["out"]).sum() * s_tol + 2 * 2.0 ** -STATE["y"].frac_bits


@pytest.mark.parametrize("drive", [0.15, 0.3, 0.8])
def test_fixed_neuron_fires_as_the_float_one(drive):
    # one neuron, constant input current, 400 steps: the same passages (spikes) in both
    # arithmetics; the phase drifts by at most the per-step bound times the steps
    w = {"in": np.array([[1.0]]), "rec": np.zeros((1, 1)), "out": np.zeros((1, 1))}
    alpha = math.exp(-1 / 50)
    consts = {"eps": 1 / 20, "alpha": alpha, "beta": 1 - alpha, "width": 1.0, "bias": -0.1}
    chip = chip_constants(consts, STATE)
    x = np.full((400, 1, 1), drive)
    runs = []
    for fixed, c in ((False, model_constants(chip)), (True, chip)):
        fx, cc = fixed_arith(STATE) if fixed else float_arith(np.float64)
        th = np.zeros((401, 1, 1))
        s = np.zeros_like(th)
        cur, y = np.empty((400, 1, 1)), np.empty((400, 1, 1))
        full = {k: np.full(1, v) for k, v in c.items()}
        run_gated(x, w["in"], w["rec"], w["out"], full["bias"], full["eps"], full["alpha"], full["beta"],
                  full["width"], True, 0.5, np.zeros(1), th, s, cur, y, np.zeros((1, 1)), fx, cc)  # fmt: skip
        runs.append(th[:, 0, 0] * (2 * math.pi if fixed else 1.0))
    spikes = [np.floor((r - math.pi) / (2 * math.pi))[-1] - np.floor((r[0] - math.pi) / (2 * math.pi)) for r in runs]
    assert spikes[0] == spikes[1] and spikes[0] >= 1
    assert abs(runs[1][-1] - runs[0][-1]) <= 400 * 3e-4  # ~3e-4 rad per step at most (the one-step bound)


def test_loihi2_compiles_and_runs_the_fixed_neuron(tmp_path):
    net = load_network(EXAMPLE)
    fm, qm, prog = chip_model(net, "loihi2")
    q = prog.population("rec")
    eps_turns = chip_constants({"eps": q.params["eps"]}, STATE)["eps"] * 2.0 ** STATE["c"].frac_bits
    assert eps_turns == round(eps_turns)  # the register holds an integer on its grid
    back = Program.load(prog.save(tmp_path / "g.ncp"))
    assert back.population("rec").params == q.params
    emu = Emulator(back, batch=2)
    assert emu.layer.fx.size  # the fixed arithmetic
    x = np.zeros((30, 2, 2))
    x[:, 0, 0] = 1.0
    rec = emu.run(30, inputs={"in": x}, record=["theta", "s", "v"])
    tr = qm.forward(x)
    # ten steps from the rest phase: the per-step bound, accumulated (the float model uses the
    # exact constants, whose rounding adds a little: eps to 2^-20 turns)
    assert np.abs(rec["rec/theta"][:10] - tr.theta[1:11]).max() <= 10 * 4e-4
    assert np.any(rec["rec/theta"][:10] != tr.theta[1:11])  # but not the float model's bits
    with pytest.raises(EmulatorError, match="graded payload's range"):
        emu.run(2, inputs={"in": np.full((2, 2, 2), 1e6)})


def test_a_width_whose_reciprocal_leaves_its_register_is_a_named_error(tmp_path):
    path = tmp_path / "narrow.yaml"
    path.write_text(EXAMPLE.read_text().replace("zone_width_rad: 1.0", "zone_width_rad: 0.5e-6"))
    with pytest.raises(QuantizationError, match=r"'rec'.*GatedTheta width 5e-07 does not fit its 24-bit register 'r'"):
        compile(load_network(path), "loihi2", out=io.StringIO())


@pytest.mark.parametrize("chip", ["loihi2", "spinnaker2"])
def test_learning_on_a_gated_network_is_refused_by_name(tmp_path, chip):
    # any rule on a gated projection: loihi2 names the forward rule and its trainer, spinnaker2 says off chip
    path = _plastic(tmp_path, "{rule: stdp, params: {lr: 0.01}}")
    why = "its forward rule 'gated'" if chip == "loihi2" else "trained off chip"
    with pytest.raises(DRCError, match=rf"projection 'rec->rec': plastic \('stdp'\): .*{why}"):
        compile(load_network(path), chip, out=io.StringIO())


def _plastic(tmp_path, plasticity: str):
    """The example with its recurrent projection plastic by ``plasticity`` (rule-string YAML)."""
    path = tmp_path / "plastic.yaml"
    old = "{init: normal, std: 3.873, seed: 2, exclude_self: true}}"
    assert old in EXAMPLE.read_text()
    path.write_text(EXAMPLE.read_text().replace(old, old[:-1] + f", plasticity: {plasticity}}}"))
    return path


def test_a_plastic_gated_projection_is_refused_naming_the_on_chip_trainer(tmp_path):
    # rule 'gated' (GatedNet.engine_rule on the engine) takes its scales from the float network's measured
    # ranges, so the on-chip trainer runs it from the static network: compile refuses it in a model, and names
    # the trainer where the engine runs it (loihi2), the missing engine where it does not (spinnaker2)
    path = _plastic(tmp_path, "{rule: gated}")
    for chip, says in (("loihi2", "gated_chip.train_on_chip"), ("spinnaker2", "trained off chip")):
        with pytest.raises(DRCError) as info:
            compile(load_network(path), chip, out=io.StringIO())
        assert any("gated_network_static" in p.message and says in p.message for p in info.value.problems), chip


def test_rule_gated_outside_a_gated_network_is_refused(tmp_path):
    # the forward rule reads the gated neuron's phase: on an LIF projection it has nothing to read
    src = (ROOT / "examples" / "stdp_pattern.yaml").read_text()
    stdp = re.findall(r"\{rule: stdp, params: \{[^}]*\}\}", src)
    assert len(stdp) == 1  # the edit applies once
    path = tmp_path / "lif_gated.yaml"
    path.write_text(src.replace(stdp[0], "{rule: gated}"))
    with pytest.raises(DRCError) as info:
        compile(load_network(path), "loihi2", out=io.StringIO())
    assert any("not a projection of a gated network" in p.message for p in info.value.problems)


def test_a_chip_without_learning_names_the_plastic_gated_projection_once(tmp_path):
    # xylo has no learning engine: learning_rule_supported names the projection; the gated rule adds nothing
    path = tmp_path / "plastic.yaml"
    old = "{init: normal, std: 3.873, seed: 2, exclude_self: true}}"
    path.write_text(EXAMPLE.read_text().replace(old, old[:-1] + ", plasticity: {rule: stdp, params: {lr: 0.01}}}"))
    with pytest.raises(DRCError) as info:
        compile(load_network(path), "xylo", out=io.StringIO())
    plastic = [p for p in info.value.problems if "rec->rec" in p.where and "plastic" in p.message]
    assert len(plastic) <= 1 and not any("trained off chip" in p.message for p in plastic), plastic
