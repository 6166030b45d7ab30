"""The gated theta neuron's fixed registers on loihi2: their declared overflow (the phase wraps
past 128 turns), exact bits against a scalar model written here, the rounding direction on
hand-computed steps, the formats checked at profile load, and step constants that quantize to 0."""

from __future__ import annotations

import dataclasses
import io
import math
from fractions import Fraction

import numpy as np
import pytest

from neurocomp.analysis.deploy import chip_model
from neurocomp.compiler import compile
from neurocomp.compiler.errors import QuantizationError
from neurocomp.emulator import Emulator, EmulatorOverflowError
from neurocomp.errors import ProfileError
from neurocomp.graph import load_network
from neurocomp.kernels import gated as kg
from neurocomp.profiles import load_profile

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "gated_delayed_xor.yaml"
LOIHI2 = ROOT / "hardware_profiles" / "loihi2.yaml"
STATE = load_profile("loihi2").neuron_models["GatedTheta"].state
HALF = Fraction(1, 2)


class ScalarNeuron:
    """An independent re-implementation of the fixed neuron (one neuron, input ``x + bias``, a
    readout of weight 1, no recurrence), as a test oracle: exact rationals, each product
    floored onto its format's grid and brought into range as the format's ``overflow`` says."""

    def __init__(self, state, regs, kappa):
        self.st, self.r, self.kappa = state, {k: Fraction(v) for k, v in regs.items()}, Fraction(kappa)
        sc = 2 ** state["f"].frac_bits  # the polynomials' coefficients, to nearest on f's grid
        self.cos = [Fraction(round(c * sc), sc) for c in kg.COS_POLY]
        self.sin = [Fraction(round(c * sc), sc) for c in kg.SIN_POLY]
        self.span = Fraction(2 ** state["theta"].bits, 2 ** state["theta"].frac_bits)  # turns the phase holds
        self.wraps = state["theta"].overflow == "wrap"

    def fl(self, x, name):
        f = self.st[name]
        m, lo, hi = math.floor(x * 2**f.frac_bits), -(2 ** (f.bits - 1)), 2 ** (f.bits - 1) - 1
        m = (m - lo) % 2**f.bits + lo if f.overflow == "wrap" else min(max(m, lo), hi)
        return Fraction(m, 2**f.frac_bits)

    def horner(self, w, c):
        p = c[3]
        for j in (2, 1, 0):
            p = self.fl(p * w, "f") + c[j]
        return p

    def cosine(self, th):  # cos(2 pi th) of a phase in turns, folded onto a quarter turn
        z = abs(2 * (th - math.floor(th)) - 1)
        return (
            self.horner(self.fl((1 - z) ** 2, "f"), self.cos)
            if z > HALF
            else -self.horner(self.fl(z * z, "f"), self.cos)
        )

    def gate(self, th):  # G: the zone count plus the raised-cosine gate's ramp (width's reciprocal in r)
        k = math.floor(th)
        u = min(max(self.fl((th - HALF - k) * self.r["width"], "f"), -HALF), HALF)
        z = min(abs(2 * u), 1 - abs(2 * u))
        p = self.fl(z * self.horner(self.fl(z * z, "f"), self.sin), "f")
        return k + u + HALF + (p if u >= 0 else -p)

    def modspan(self, d):
        return d - self.span * math.floor(d / self.span + HALF) if self.wraps else d

    def run(self, x):
        """Per step: phase (turns), s, I, y and zone passages, from the rest phase 0."""
        r, th, s, y, out = self.r, Fraction(0), Fraction(0), Fraction(0), []
        g = self.gate(th)
        for xt in x:
            i = self.fl(Fraction(xt) + r["bias"], "I")
            c = self.cosine(th)
            th_n = self.fl(th + self.fl(r["eps"] * ((1 - c) + self.fl((1 + c) * i, "I")), "theta"), "theta")
            g_n = self.gate(th_n)
            s = self.fl(self.fl(r["alpha"] * s, "s") + self.fl(r["beta"] * self.modspan(g_n - g), "s"), "s")
            y = self.fl(self.fl(self.kappa * y, "y") + self.fl((1 - self.kappa) * s, "y"), "y")
            out.append((th_n, s, i, y, self.modspan(math.floor(th_n - HALF) - math.floor(th - HALF))))
            th, g = th_n, g_n
        return out


def _with_theta(**kw):
    return {**STATE, "theta": dataclasses.replace(STATE["theta"], **kw)}


def _drive(state, steps=800, drive=1.0, strict=False):
    """One tonic neuron (eps 1/2: about 0.2 turn per step) through ``run_gated``; its registers
    and the arrays, phases in turns."""
    alpha = math.exp(-1 / 50)
    regs = kg.chip_constants({"eps": 0.5, "alpha": alpha, "beta": 1 - alpha, "width": 1.0, "bias": 0.5}, state)
    fx, cc = kg.fixed_arith(state, strict)
    th, s = np.zeros((steps + 1, 1, 1)), np.zeros((steps + 1, 1, 1))
    cur, y = np.full((steps, 1, 1), np.nan), np.full((steps, 1, 1), np.nan)
    c = {k: np.full(1, v) for k, v in regs.items()}
    kg.run_gated(np.full((steps, 1, 1), drive), np.ones((1, 1)), np.zeros((1, 1)), np.ones((1, 1)), c["bias"],
                 c["eps"], c["alpha"], c["beta"], c["width"], True, 0.75, np.zeros(1), th, s, cur, y,
                 np.zeros((1, 1)), fx, cc)  # fmt: skip
    return regs, fx, th[:, 0, 0], s[1:, 0, 0], cur[:, 0, 0], y[:, 0, 0]


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_a_neuron_driven_past_128_turns_is_the_scalar_model_bit_for_bit(overflow):
    state = _with_theta(overflow=overflow)
    regs, fx, th, s, cur, y = _drive(state)
    ref = ScalarNeuron(state, regs, 0.75).run([1.0] * 800)
    for k, got in enumerate((th[1:], s, cur, y)):
        np.testing.assert_array_equal(got, [float(r[k]) for r in ref])
    n = np.array([r[4] for r in ref])
    hi = (2 ** (state["theta"].bits - 1) - 1) / 2 ** state["theta"].frac_bits
    if overflow == "wrap":
        assert th.min() < -hi / 2 and th.max() > hi / 2  # it did wrap, and went on
        assert n.sum() > hi and n.min() >= 0  # more passages than 128 turns hold, none negative
        span = 2 * np.pi * kg.theta_span(fx)  # the emulator's passages of the recorded (rad) phases
        np.testing.assert_array_equal(kg.passages(th * 2 * np.pi, span), n)
    else:
        assert th[-1] == hi and n[-100:].sum() == 0  # held at the top: no more passages


def test_a_strict_run_stops_at_the_phase_register_overflow():
    regs, fx, th, *_ = _drive(STATE, strict=True)
    ref = ScalarNeuron(STATE, regs, 0.75).run([1.0] * 800)  # wraps: the first wrap is the overflow
    t = next(k for k in range(1, 800) if ref[k][0] < ref[k - 1][0] - 1)
    unwrapped = (ref[t][0] + ScalarNeuron(STATE, regs, 0.75).span) * 2 ** STATE["theta"].frac_bits
    rec = fx[kg.FX_ERR :]
    assert rec[kg.E_FOUND] == 2 and rec[kg.E_FMT] == kg.FX_TH and rec[kg.E_STEP] == t
    assert rec[kg.E_VALUE] == unwrapped and (rec[kg.E_TRIAL], rec[kg.E_NEURON]) == (0, 0)
    np.testing.assert_array_equal(th[1 : t + 1], [float(r[0]) for r in ref[:t]])  # the steps before it


def test_the_emulator_counts_passages_across_the_wrap_and_strict_names_the_overflow():
    _, _, prog = chip_model(load_network(EXAMPLE), "loihi2")
    x = np.zeros((700, 1, 2))
    x[:, 0, 0] = 10.0  # tonic: some neurons pass 128 turns, no current leaves its register
    rec = Emulator(prog).run(700, inputs={"in": x}, record=["theta", "spikes"])
    turns = rec["rec/theta"] / (2 * np.pi)
    wrapped = np.any(np.diff(turns, axis=0) < -100, axis=0)[0]
    assert wrapped.any()
    spikes = rec["rec/spikes"][:, 0, wrapped]
    assert spikes.min() >= 0 and np.all(spikes.sum(axis=0) > 100)  # no -255 at the wrap
    with pytest.raises(EmulatorOverflowError, match=r"population 'rec': GatedTheta register 'theta' overflow at step"):
        (emu := Emulator(prog, strict=True)).run(700, inputs={"in": x})
    assert emu.t == 0 and np.array_equal(emu.state["rec/theta"], Emulator(prog).state["rec/theta"])  # not applied


def test_hand_computed_steps_floor_every_product():
    # from the rest phase 0 with I = -1: cos 0 is the polynomial's constant term (1 on f's grid),
    # so the phase moves by eps * (0 + (-2)), floored onto theta's grid; with the gate closed
    # (the phase stays inside +-0.4 turn), s and the readout only decay, each product floored
    f = {k: STATE[k].frac_bits for k in ("theta", "f", "I", "s", "y", "c")}
    assert round(kg.COS_POLY[0] * 2 ** f["f"]) == 2 ** f["f"]
    E = round(1 / 21 / (2 * math.pi) * 2 ** f["c"])  # eps 1/21 rad per step, in turns on c's grid
    A = round(math.exp(-1 / 50) * 2 ** f["c"])  # alpha
    th1 = (-2 * E * 2 ** f["theta"]) >> f["c"]  # Python's >> floors
    assert (2 * E * 2 ** f["theta"]) % 2 ** f["c"]  # a fraction to drop: ceiling would differ
    S, Y = [1001, -1001], [1001, -1001]  # s and y, in their LSBs, in two trials
    S_ref, Y_ref = [S], [Y]
    for _ in range(3):
        assert all(A * v % 2 ** f["c"] for v in S_ref[-1]) and all(13 * v % 16 for v in Y_ref[-1])
        S_ref.append([(A * v) >> f["c"] for v in S_ref[-1]])
        Y_ref.append([(13 * v) >> 4 for v in Y_ref[-1]])  # kappa 13/16
    fx, cc = kg.fixed_arith(STATE)
    th, s = np.zeros((4, 2, 1)), np.zeros((4, 2, 1))
    s[0, :, 0] = np.array(S) / 2 ** f["s"]
    cur, y = np.empty((3, 2, 1)), np.empty((3, 2, 1))
    one = np.ones(1)
    kg.run_gated(np.zeros((3, 2, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), -one, one * E / 2 ** f["c"],
                 one * A / 2 ** f["c"], one * 2.0**-10, one * 2 * math.pi, True, 13 / 16, np.zeros(1), th, s, cur, y,
                 np.array(Y, float)[:, None] / 2 ** f["y"], fx, cc)  # fmt: skip
    assert th[1, 0, 0] * 2 ** f["theta"] == th1 and np.all(cur == -1)
    np.testing.assert_array_equal(s[1:, :, 0] * 2 ** f["s"], S_ref[1:])
    np.testing.assert_array_equal(y[:, :, 0] * 2 ** f["y"], Y_ref[1:])


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (("      c: {bits: 24", None), r"neuron_models\.GatedTheta\.state\.c: missing"),
        (("overflow: wrap}", "overflow: wrap_once}"), r"neuron_models\.GatedTheta\.state\.theta: overflow 'wrap_once'"),
        # a wrapping phase of 2 turns would count a passage as -1 (the zone step modulo the span)
        (
            ("theta: {bits: 24, frac_bits: 16", "theta: {bits: 17, frac_bits: 16"),
            r"state\.theta: a wrapping phase .* 2 turns",
        ),
        (
            ("      s: {bits: 24,", "      s: {bits: 32, kind: float,"),
            r"neuron_models\.GatedTheta\.state\.s: kind 'float'",
        ),
    ],
)
def test_the_fixed_neuron_s_formats_are_checked_at_profile_load(tmp_path, edit, why):
    old, new = edit
    lines = LOIHI2.read_text().splitlines(keepends=True)
    hits = [k for k, line in enumerate(lines) if old in line]
    assert len(hits) == 1  # the edit applies to the GatedTheta entry, once
    k = hits[0]
    lines[k] = "" if new is None else lines[k].replace(old, new)
    (tmp_path / "loihi2.yaml").write_text("".join(lines))
    with pytest.raises(ProfileError, match=why):
        load_profile(tmp_path / "loihi2.yaml")


def _compile(tmp_path, old, new, **opts):
    path = tmp_path / "g.yaml"
    assert old in EXAMPLE.read_text()
    path.write_text(EXAMPLE.read_text().replace(old, new))
    return compile(load_network(path), "loihi2", out=io.StringIO(), **opts)


@pytest.mark.parametrize(("old", "new", "name"), [("tau_v_ms: 20.0", "tau_v_ms: 1.0e+7", "eps"),
                                                  ("tau_s_ms: 50.0", "tau_s_ms: 1.0e+7", "beta")])  # fmt: skip
def test_a_step_constant_the_neuron_needs_is_refused_where_it_quantizes_to_0(tmp_path, old, new, name):
    c = STATE["c"]
    with pytest.raises(QuantizationError, match=rf"'rec': GatedTheta {name} \S+ quantizes to 0 in its {c.bits}-bit "
                                                rf"register 'c' \({c.frac_bits} fraction bits\): the "):  # fmt: skip
        _compile(tmp_path, old, new)


def test_a_step_constant_that_quantizes_to_0_or_loses_precision_is_reported(tmp_path):
    # bias 1e-6 is below half an LSB of I; eps at 1.4 LSB of c keeps 1 LSB (dt 1 ms)
    lsb_c = 2.0 ** -STATE["c"].frac_bits
    tau_v = 1 / (1.4 * lsb_c * 2 * math.pi)
    prog = _compile(
        tmp_path,
        "tau_v_ms: 20.0, tau_s_ms: 50.0, zone_width_rad: 1.0, zone_shape: cosine, bias: -0.1",
        f"tau_v_ms: {tau_v!r}, tau_s_ms: 50.0, zone_width_rad: 1.0, zone_shape: cosine, bias: 1.0e-6",
    )
    rows = {s.param: s for s in prog.report.stats if s.element == "population 'rec'"}
    assert rows["bias"].zeroed == 1 and prog.population("rec").params["bias"] == 0.0
    assert any("GatedTheta bias 1e-06 quantizes to 0 in its 24-bit register 'I'" in w for w in prog.report.warnings)
    assert rows["eps"].max_rel_error == pytest.approx(0.4 / 1.4)
    with pytest.raises(QuantizationError, match=r"strict mode.*\n.*'rec': GatedTheta bias 1e-06 quantizes to 0"):
        _compile(tmp_path, "bias: -0.1", "bias: 1.0e-6", strict=True)
