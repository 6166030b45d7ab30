"""Attribution of the gap between the lowered-float and lowered-fixed learning levels: the
chip run repeated with one quantized quantity at a time switched back to float64
(``Emulator(..., learn_float=..., learn_rounding=...)``), on loihi2's e-prop.

Each knob is checked for what it promises: the default is the chip's run; the switched
quantity follows its exact float equation on recorded values while the others stay on the
chip's integer grid; all four switched is ``learn_arithmetic="float"``; round to nearest
stalls small updates that stochastic rounding keeps alive."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import LEARN_QUANTITIES, Emulator, EmulatorError
from tests.conftest import ROOT

STEPS = 150
PATTERN = ROOT / "examples" / "eprop_pattern.yaml"
YD = np.exp(-1 / 65535)  # graded y values pass once through the engine's y history (Lava's tau 65535)


def pattern(tmp_path=None, lr: float | None = None, floor_offset: bool = True):
    """``examples/eprop_pattern.yaml`` compiled for loihi2 (optionally with another ``lr``, or
    without the floor offset)."""
    path = PATTERN
    if lr is not None or not floor_offset:
        path = tmp_path / "pattern.yaml"
        text = PATTERN.read_text().replace("lr: 3.0e-3", f"lr: {3e-3 if lr is None else lr:g}")
        off = f"trace_impulse: 1.0, floor_offset: {str(floor_offset).lower()}}}"
        path.write_text(text.replace("trace_impulse: 1.0}", off))
    return nc.compile(nc.load_network(path), "loihi2", out=io.StringIO())


@pytest.fixture(scope="module")
def prog():
    return pattern()


def target(steps: int = STEPS) -> np.ndarray:
    return 0.4 * np.sin(2 * np.pi * np.arange(steps) / 150)[:, None]


def run(prog, steps: int = STEPS, record=("spikes", "v"), **knobs):
    emu = Emulator(prog, **knobs)
    rec = emu.run(steps, inputs={"out.error/target": target(steps)}, record=list(record), learn=True)
    return emu, rec


def integral(x) -> bool:
    return bool(np.array_equal(x, np.round(x)))


def scale(prod, prog) -> float:
    """A product's scale with the engine's width shift (e.g. t*y2: 9 + 7 + 4 - 15 = 5 bits)."""
    lrn = prog.profile.learning
    widths = lrn.params["factor_widths"]
    width = int(lrn.params["scale_mantissa_bits"]) + sum(int(widths[f.var]) for f in prod.factors)
    return prod.mantissa * 2.0 ** (prod.exponent - max(0, width - (lrn.accumulator_bits - 1)))


def test_default_knobs_are_the_chip_bit_for_bit(prog):
    """No knob, explicit defaults, and the profile's own rounding named: the same run, with
    the chip's integer learning state. (The chip path itself is checked bit for bit against
    Lava's LearningDense in test_lava_learning.)"""
    base, rec = run(prog)
    for knobs in ({"learn_float": (), "learn_rounding": None}, {"learn_rounding": "stochastic"}):
        emu, rec2 = run(prog, **knobs)
        assert all(np.array_equal(rec[k], rec2[k]) for k in rec)
        a, b = base.state, emu.state
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert all(base.state[f"{n}/{v}"].dtype == np.int64 for n in base.plastic for v in ("w", "t", "x1", "y2"))


def test_each_quantity_changes_the_learned_weights(prog):
    """Every quantity in float changes every projection's learned weights within 300 steps. Some
    reach a projection only through the spikes they change (the hidden rules read the carried tag
    ``d``, not the trace ``x1``; the readout's error is the error unit's integer in either form),
    which takes longer than the other tests' 150 steps."""
    base, _ = run(prog, steps=300)
    for q in LEARN_QUANTITIES:
        emu, _ = run(prog, steps=300, learn_float=(q,))
        changed = [n for n in emu.plastic if not np.array_equal(emu.state[f"{n}/w"], base.state[f"{n}/w"])]
        assert changed == list(emu.plastic), (q, changed)


def test_float_weights_add_each_update_exactly(prog):
    """``weights``: each step's dw on a hidden projection is ``c_w * t * Y`` exactly, with the
    tag ``t`` still the chip's integer and ``Y`` the integer the y history read (y2, or one
    LSB off: the chip's tau-65535 rounding); the synaptic input reads the float weights."""
    emu, rec = run(prog, record=("w", "t", "y2", "x1"), learn_float=("weights",))
    for name in ("in->rec", "rec->rec"):
        # the gradient's product; the floor offset's sends y1 = 0 with float weights (no floor)
        p = prog.projection(name).learning.dw.products[0]
        w, t, y2 = rec[f"{name}/w"][:, 0], rec[f"{name}/t"][:, 0], rec[f"{name}/y2"][:, 0]
        assert integral(t) and integral(y2) and integral(rec[f"{name}/x1"])
        assert not integral(w)
        moved = 0
        for s in range(1, STEPS):
            dw = w[s] - w[s - 1]
            on = t[s - 1] != 0
            Y = dw[on] / (scale(p, prog) * t[s - 1][on])
            np.testing.assert_allclose(Y, np.round(Y), atol=1e-9)  # an integer multiple: no rounding of dw
            y = np.broadcast_to(y2[s][:, None], on.shape)[on]
            # (a post spike clips the history's graded values to the trace range [0, 127], as in Lava)
            assert np.all((np.abs(np.round(Y) - y) <= 1) | ((Y == 0) & (y < 0)))
            assert np.all(dw[~on] == 0)
            moved += int(on.sum())
        assert moved > 100
    syn = emu.plastic["in->rec"]  # delivery reads the float weights, the exponent applied exactly
    ring = np.zeros((syn.latency + syn.max_delay + 1, 1, syn.n_post))
    syn.deliver(np.ones((1, syn.n_pre), bool), ring, 0)
    w = syn.engine.weights[0]
    assert not integral(w)
    np.testing.assert_array_equal(
        ring.sum(axis=0)[0], w.sum(axis=1) * 2.0**syn.exp * 2**prog.profile.formats.input_shift
    )
    assert emu.state["rec/u"].dtype == np.float64  # the states as held (non-integer input could reach them)


def test_float_traces_decay_exactly(prog):
    """``traces``: x1 follows ``x1 <- exp(-1/tau) x1 + I * spike`` in float64 (no 7-bit
    rounding); tags, weights and the graded y values stay integers."""
    _, rec = run(prog, record=("spikes", "x1", "t", "w", "y3"), learn_float=("traces",))
    for name, pre in (("in->rec", "in"), ("rec->rec", "rec")):
        tr = prog.projection(name).learning.traces["x1"]
        x1, z = rec[f"{name}/x1"][:, 0], rec[f"{pre}/spikes"][:, 0]
        assert not integral(x1)
        expected = x1[:-1] * np.exp(-1 / tr.tau) + tr.impulse * z[1:]
        np.testing.assert_allclose(x1[1:], expected, rtol=1e-12, atol=0)
        assert integral(rec[f"{name}/t"]) and integral(rec[f"{name}/w"]) and integral(rec[f"{name}/y3"])


def test_float_graded_factors_are_unquantized(prog):
    """``graded``: the error payload is ``(v - target) * 2**-shift`` unrounded, the learning
    signal is ``B`` times it unrounded (7-bit on the chip), the pseudo-derivative unrounded;
    traces, tags and weights stay integers."""
    _, rec = run(prog, record=("spikes", "v", "y2", "y3", "x1", "t", "w"), learn_float=("graded",))
    err_pop = prog.population("out.error")
    err = rec["out.error/spikes"][:, 0]
    v_out = rec["out/v"][:, 0]
    expected = (v_out - target() * 2.0**err_pop.scale_exp) * 2.0 ** -err_pop.params["shift"]
    np.testing.assert_allclose(err, expected, rtol=1e-12)
    assert not integral(err)
    fb = prog.projection("out.error->rec")
    s_L = prog.projection("in->rec").learning.graded["y2"]["shift"]
    ls = (err[:-1] @ fb.weights.T.astype(float)) * 2**prog.profile.formats.input_shift * 2.0**-s_L
    np.testing.assert_allclose(rec["in->rec/y2"][1:, 0], ls, rtol=1e-12, atol=1e-12)
    y3 = rec["in->rec/y3"]
    assert not integral(y3) and y3.min() >= 0 and y3.max() <= 127
    for name in ("in->rec", "rec->rec"):
        assert integral(rec[f"{name}/x1"]) and integral(rec[f"{name}/t"]) and integral(rec[f"{name}/w"])


def test_float_tags_update_exactly(prog):
    """``tags``: the example's LIF neurons reset to zero, so the tag ``t`` is fed by the carried
    eligibility ``d`` (``dt = c1*y3*d + c1*x0*y3*(d + D) - c1*x0*y3*d - 2^-k*t``): in float the two
    ``x0`` products cancel to ``c1*D*x0*y3``, so each step ``t`` moves by exactly ``c1*(Ya*d +
    Yb*D*x0) - 2^-k*t`` with ``d`` the previous step's tag, ``x0`` this step's pre spike and ``Ya``,
    ``Yb`` the integer the y history read (y3 or one LSB below); t and d leave the integer grid,
    x1 and w stay on it."""
    _, rec = run(prog, record=("t", "d", "x1", "y3", "w", "spikes"), learn_float=("tags",))
    for name in ("in->rec", "rec->rec"):
        rule, pre = prog.projection(name).learning, prog.projection(name).pre
        decay = next(p for p in rule.dt.products if [f.var for f in p.factors] == ["t"])
        inject = next(p for p in rule.dt.products if p.mantissa > 0)
        impulse = next(p for p in rule.dd.products if not p.factors)  # dd's D*x0
        D = impulse.mantissa * 2.0**impulse.exponent
        t, d, y3 = rec[f"{name}/t"][:, 0], rec[f"{name}/d"][:, 0], rec[f"{name}/y3"][:, 0]
        x0 = rec[f"{pre}/spikes"][:, 0]
        assert not integral(t) and not integral(d) and integral(rec[f"{name}/x1"]) and integral(rec[f"{name}/w"])
        for s in range(1, STEPS):
            rest = (t[s] - t[s - 1] - scale(decay, prog) * t[s - 1]) / scale(inject, prog)
            X = np.broadcast_to(D * x0[s][None, :], rest.shape)
            Y = np.broadcast_to(y3[s][:, None], rest.shape)
            ok = np.zeros(rest.shape, bool)
            for a in (0, -1):
                for b in (0, -1):
                    ok |= np.abs(rest - ((Y + a) * d[s - 1] + (Y + b) * X)) < 1e-6
            assert ok.all(), (name, s, int((~ok).sum()))


def test_all_four_in_float_is_the_float_arithmetic(prog):
    """Exactly equal: ``learn_arithmetic="float"`` is implemented as the chip engine with
    every quantity switched."""
    a, ra = run(prog, record=("spikes", "v", "w", "t", "x1", "y2", "y3"), learn_arithmetic="float")
    b, rb = run(prog, record=("spikes", "v", "w", "t", "x1", "y2", "y3"), learn_float=LEARN_QUANTITIES)
    assert ra.keys() == rb.keys() and all(np.array_equal(ra[k], rb[k]) for k in ra)
    sa, sb = a.state, b.state
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)
    base, _ = run(prog)
    assert not np.array_equal(sa["in->rec/w"], base.state["in->rec/w"])


def test_round_to_nearest_stalls_small_updates(tmp_path):
    """At the smallest learning rate the engine's scales still represent (half the example's),
    a hidden weight's update per step is below half an LSB: stochastic rounding moves it now
    and then, round to nearest almost never."""
    prog = pattern(tmp_path, lr=1.5e-3)
    counts = {}
    for rounding in ("stochastic", "nearest"):
        emu = Emulator(prog, learn_rounding=rounding)
        w0 = {n: s.engine.weights.copy() for n, s in emu.plastic.items()}
        emu.run(200, inputs={"out.error/target": target(200)}, learn=True)
        counts[rounding] = {n: int((s.engine.weights != w0[n]).sum()) for n, s in emu.plastic.items()}
    hidden = {r: c["in->rec"] + c["rec->rec"] for r, c in counts.items()}
    # 22 of the 1500 hidden weights moved in the measured run (40 before the eligibility restarted at
    # a reset to zero, which leaves fewer synapses with a live tag): a floor of 10 still tells
    # "now and then" from "never"
    assert hidden["stochastic"] >= 10, counts
    assert hidden["nearest"] <= hidden["stochastic"] / 4, counts
    assert counts["nearest"]["rec->out"] < counts["stochastic"]["rec->out"], counts


def resumed_states(prog, target_key: str, knobs, tmp_path):
    """The state after 80 learning steps run at once, and after 30 steps, a checkpoint saved
    to disk, a new emulator restored from it and 50 more steps."""
    one = Emulator(prog, **knobs)
    one.run(80, inputs={target_key: target(80)}, learn=True)
    two = Emulator(prog, **knobs)
    two.run(30, inputs={target_key: target(80)[:30]}, learn=True)
    ckpt = two.checkpoint()
    ckpt.save(tmp_path / "c.npz")
    three = Emulator(prog, **knobs)
    three.restore(type(ckpt).load(tmp_path / "c.npz"))
    three.run(50, inputs={target_key: target(80)[30:]}, learn=True)
    return one.state, three.state


def test_knobs_resume_bit_for_bit(prog, tmp_path):
    knobs = {"learn_float": ("weights", "graded"), "learn_rounding": "nearest"}
    a, b = resumed_states(prog, "out.error/target", knobs, tmp_path)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_knobs_are_errors_naming_the_valid_ones(prog):
    valid = "\\(valid: weights, traces, graded, tags, products\\)"
    with pytest.raises(EmulatorError, match=f"unknown quantities \\['weight'\\] {valid}"):
        Emulator(prog, learn_float=("weight",))
    with pytest.raises(EmulatorError, match="learn_rounding must be None, 'stochastic' or 'nearest'"):
        Emulator(prog, learn_rounding="floor")
    assert Emulator(prog, learn_float="tags").learn_float == {"tags"}  # one name alone is one quantity


def eprop_net(feedback: str, lr: float, n_in: int = 10, n_rec: int = 30) -> nc.Network:
    """Poisson inputs -> recurrent LIF -> one leaky readout, every projection learning by e-prop."""
    rule = nc.RuleSpec("eprop", {"lr": lr, "feedback": feedback, "dampening": 0.3, "trace_impulse": 1.0})
    net = nc.Network(name="eprop-attribution")
    net.add(
        nc.Population("in", n_in, nc.SpikeInput(rate_hz=60.0, seed=1)),
        nc.Population("rec", n_rec, nc.LIF(tau_mem_ms=20.0, v_th=0.5, reset="zero")),
        nc.Population("out", 1, nc.LI(tau_mem_ms=20.0)),
    )

    def w(std, seed, post, pre, **kw):
        return nc.init_weights(
            {"init": "normal", "std": std, "seed": seed, **kw}, post, pre, recurrent="exclude_self" in kw
        )

    net.add(
        nc.Projection("in", "rec", w(0.4, 2, n_rec, n_in), plasticity=rule),
        nc.Projection("rec", "rec", w(0.1, 3, n_rec, n_rec, exclude_self=True), plasticity=rule),
        nc.Projection("rec", "out", w(0.2, 4, 1, n_rec), plasticity=rule),
    )
    return net


def test_programmable_cores_refuse_the_knobs():
    p = nc.compile(eprop_net("random", 3e-4, n_in=4, n_rec=6), "spinnaker2", out=io.StringIO())
    with pytest.raises(EmulatorError, match="learn_float \\['weights'\\].*programmable cores run the exact rule"):
        Emulator(p, learn_float=("weights",))
    with pytest.raises(EmulatorError, match="learn_rounding 'nearest'"):
        Emulator(p, learn_rounding="nearest")


# -- ReckOn: weights, traces and graded (its error and learning signal); no tags -----------------------
RECKON_QUANTITIES = ("weights", "traces", "graded")


@pytest.fixture(scope="module")
def reckon():
    return nc.compile(eprop_net("symmetric", 3e-4), "reckon", out=io.StringIO())


def run_reckon(prog, steps: int = STEPS, record=("spikes", "v", "x1", "w"), **knobs):
    emu = Emulator(prog, **knobs)
    rec = emu.run(steps, inputs={"out/target": target(steps)}, record=list(record), learn=True)
    return emu, rec


def test_reckon_defaults_are_the_chip_and_float_is_its_three_quantities(reckon):
    base, rec = run_reckon(reckon)
    for knobs in ({"learn_float": (), "learn_rounding": None}, {"learn_rounding": "stochastic"}):
        emu, rec2 = run_reckon(reckon, **knobs)
        assert all(np.array_equal(rec[k], rec2[k]) for k in rec)
        assert all(np.array_equal(base.state[k], emu.state[k]) for k in base.state)
    a, _ = run_reckon(reckon, learn_arithmetic="float")
    b, _ = run_reckon(reckon, learn_float=RECKON_QUANTITIES)
    assert all(np.array_equal(a.state[k], b.state[k]) for k in a.state)
    for q in RECKON_QUANTITIES:  # each one changes what is learned
        emu, _ = run_reckon(reckon, learn_float=(q,))
        assert any(not np.array_equal(emu.state[f"{n}/w"], base.state[f"{n}/w"]) for n in emu.plastic), q
    with pytest.raises(EmulatorError, match="reckon's fixed-function e-prop has no tags"):
        Emulator(reckon, learn_float=("tags",))


def test_reckon_float_weights_take_the_rules_update(reckon):
    """``weights``: the readout weights move by ``e_k * (trace_j >> FP_LOC_TOUT) * 2**(LR_P -
    LR_R - 28)`` LSB each step (the mean of the chip's +-1 LSB step), from the chip's integer
    error and trace; the input reads the float weights, so the readout's membrane is no longer
    an integer."""
    _, rec = run_reckon(reckon, learn_float=("weights",))
    reg = reckon.projection("rec->out").learning.registers
    w, x1 = rec["rec->out/w"][:, 0, 0], rec["rec->out/x1"][:, 0]
    assert integral(x1) and not integral(w)
    scale = 2.0 ** reckon.population("out").scale_exp
    # the chip's 16-bit error register takes the integer part of the (now non-integer) readout
    err = np.clip(np.round(target() * scale) - rec["out/v"][:, 0], -(2**15), 2**15 - 1).astype(np.int64)[:, 0]
    step = err[1:, None] * (x1[1:].astype(np.int64) >> reg.fp_loc_tout) * 2.0 ** (reg.lr_p_out - reg.lr_r_out - 28)
    np.testing.assert_allclose(w[1:], np.clip(w[:-1] + step, -128, 127), rtol=1e-12, atol=1e-12)
    assert np.abs(step).max() > 0 and not integral(rec["out/v"])


def test_reckon_float_traces_decay_exactly(reckon):
    """``traces``: ``x <- x * alpha / 2**15 + (8 << FP_LOC_TINP) * spike`` in float64, unsaturated."""
    _, rec = run_reckon(reckon, learn_float=("traces",))
    reg = reckon.projection("in->rec").learning.registers
    alpha = int(reckon.population("rec").params["voltage_decay"])
    x1, z = rec["in->rec/x1"][:, 0], rec["in/spikes"][:, 0]
    assert not integral(x1) and integral(rec["in->rec/w"])
    np.testing.assert_allclose(x1[1:], x1[:-1] * alpha / 2**15 + (8 << reg.fp_loc_tinp) * z[1:], rtol=1e-12)


def test_reckon_round_to_nearest_stalls_small_updates(reckon):
    counts = {}
    for rounding in ("stochastic", "nearest"):
        emu = Emulator(reckon, learn_rounding=rounding)
        w0 = {n: s.engine.weights.copy() for n, s in emu.plastic.items()}
        emu.run(200, inputs={"out/target": target(200)}, learn=True)
        counts[rounding] = sum(
            int((s.engine.weights != w0[n]).sum()) for n, s in emu.plastic.items() if n != "rec->out"
        )
    assert counts["stochastic"] >= 40 and counts["nearest"] <= counts["stochastic"] / 4, counts


def test_reckon_knobs_resume_bit_for_bit(reckon, tmp_path):
    knobs = {"learn_float": ("weights", "traces"), "learn_rounding": "nearest"}
    a, b = resumed_states(reckon, "out/target", knobs, tmp_path)
    assert all(np.array_equal(a[k], b[k]) for k in a) and a["in->rec/w"].dtype == np.float64


def test_exact_products_remove_the_floor_of_wide_products_only(tmp_path):
    """``products``: the width shift divides exactly instead of flooring. A rule whose products
    all fit the 16-bit accumulator (STDP's x1*y0 and y1*x0: 7 + 1 + 4 bits) runs bit for bit
    as the chip; on e-prop without the floor offset (t*y2 and x1*y3 lose 5 and 3 bits) the
    floor's downward bias is gone, so the hidden weights end higher than the chip's (a sign
    test over 150 steps, as the two runs' spikes drift apart)."""
    prog = pattern(tmp_path, floor_offset=False)
    stdp = nc.compile(nc.load_network(ROOT / "examples" / "models" / "stdp_feedforward.yaml"), "loihi2",
                      out=io.StringIO())  # fmt: skip
    a, b = Emulator(stdp), Emulator(stdp, learn_float=("products",))
    w0 = {k: v.copy() for k, v in a.state.items() if k.endswith("/w")}
    a.run(300, learn=True)
    b.run(300, learn=True)
    assert any(not np.array_equal(a.state[k], w0[k]) for k in w0)  # it learned
    assert a.state.keys() == b.state.keys() and all(np.array_equal(a.state[k], b.state[k]) for k in a.state)
    base, _ = run(prog)
    exact, _ = run(prog, learn_float=("products",))
    for name in ("in->rec", "rec->rec"):
        assert exact.state[f"{name}/w"].dtype == np.int64  # still the chip's weight grid
        assert exact.state[f"{name}/w"].mean() > base.state[f"{name}/w"].mean(), name
