"""The emulator without Lava: golden values from Lava's fixed-point models, a scalar
pure-Python reference for LIF, ALIF and LI, overflow semantics, batching, checkpoints and
the accumulation paths."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurocomp as nc
from neurocomp.arith.fixed import OverflowDetected, decay, overflow
from neurocomp.compiler import Program
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.emulator import Emulator, EmulatorError, EmulatorOverflowError
from tests.conftest import EXAMPLES, ROOT
from tests.lava_compare import assert_table_6_1, table_6_1_program

LOIHI2 = nc.load_profile("loihi2")


def test_lava_worked_table_exactly():
    assert_table_6_1(Emulator(table_6_1_program()).run(10, record=["spikes", "v", "u"]), 10)


def test_integer_semantics_from_the_lava_reference():
    f = LOIHI2.formats
    # decays round toward zero: -37 * 3584 = -132608, and -132608 / 4096 gives -32, not -33
    assert decay(np.array([-37]), f.decay, 512, "voltage").tolist() == [-32]
    # du = 0 still decays (Lava's +1 on the current decay): 640 -> 639
    assert decay(np.array([640]), f.decay, 0, "current").tolist() == [639]
    # the current's one-shot correction: 6 528 000 << 6 becomes 401 014 784, still out of range
    assert overflow(np.array([6_528_000 << 6]), f.current).tolist() == [401_014_784]
    assert overflow(np.array([2**23, -(2**23)]), f.current).tolist() == [2**23, 2**23]
    # the voltage saturates symmetrically at +-(2^23 - 1)
    assert overflow(np.array([2**24, -(2**24)]), f.voltage).tolist() == [2**23 - 1, -(2**23 - 1)]
    # loihi1's current wraps for real (24-bit two's complement)
    assert overflow(np.array([2**23 + 5]), nc.load_profile("loihi1").formats.current).tolist() == [-(2**23) + 5]
    with pytest.raises(OverflowDetected):
        overflow(np.array([0, 2**24]), f.voltage, strict=True)


# -- a scalar reference of one layer, in pure Python ints -------------------------------------


def _trunc_div(p: int, bits: int) -> int:
    return -((-p) >> bits) if p < 0 else p >> bits


def _scalar_layer(pop: QPopulation, w: list[list[int]], w_exp: int, spikes: np.ndarray, steps: int):
    """LIF / ALIF / LI of the loihi2 profile, one neuron at a time, driven by input spikes
    through integer weights (delivered one step later). Written from the profile's
    definition: 12-bit decays toward zero (+1 on the current), input and threshold << 6,
    the current's one-shot +-2^24 correction, the voltage clipped to +-(2^23 - 1), ALIF's
    threshold raised by its adaptation a (beta << 6 per spike, decaying like the voltage)."""
    prm = pop.params
    n = pop.size
    u, v, a = [0] * n, [0] * n, [0] * n
    pending = [0] * n
    out = {"u": [], "v": [], "a": [], "spikes": []}
    vmax = 2**23 - 1
    for t in range(steps):
        arrived, pending = pending, [0] * n
        s_row = [0] * n
        for j in range(n):
            uj = _trunc_div(u[j] * (4096 - prm["current_decay"] - 1), 12) + (arrived[j] << 6)
            if uj > 2**23:
                uj -= 2**24
            elif uj <= -(2**23):
                uj += 2**24
            bias = prm["bias_mant"] << prm["bias_exp"]
            vj = max(-vmax, min(vmax, _trunc_div(v[j] * (4096 - prm["voltage_decay"]), 12) + uj + bias))
            u[j] = uj
            if pop.model != "LI":
                th = prm["threshold"] << 6
                if pop.model == "ALIF":
                    a[j] = max(-vmax - 1, min(vmax, _trunc_div(a[j] * (4096 - prm["adapt_decay"]), 12)))
                    th += a[j]
                if vj > th:
                    s_row[j] = 1
                    vj = vj - (prm["threshold"] << 6) if prm["reset"] == "subtract" else 0
                    if pop.model == "ALIF":
                        a[j] += prm["beta"] << 6
            v[j] = vj
        # this step's input spikes arrive next step
        acc = [sum(w[j][i] for i in range(len(w[j])) if spikes[t, i]) for j in range(n)]
        pending = [(x << w_exp) if w_exp >= 0 else (x >> -w_exp) for x in acc]
        for key, val in (("u", u), ("v", v), ("a", a), ("spikes", s_row)):
            out[key].append(list(val))
    return {k: np.array(x) for k, x in out.items()}


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    model=st.sampled_from(["LIF", "ALIF", "LI"]),
    n=st.integers(1, 6),
    n_in=st.integers(1, 5),
    du=st.one_of(st.sampled_from([0, 4095]), st.integers(0, 4095)),
    dv=st.one_of(st.sampled_from([0, 4095]), st.integers(0, 4095)),
    da=st.integers(0, 4095),
    vth=st.integers(1, 3000),
    beta=st.integers(0, 500),
    bias=st.tuples(st.integers(-4096, 4095), st.integers(0, 7)),
    reset=st.sampled_from(["zero", "subtract"]),
    w_exp=st.integers(-4, 7),
    seed=st.integers(0, 2**16),
)
def test_vectorized_update_equals_scalar_reference(model, n, n_in, du, dv, da, vth, beta, bias, reset, w_exp, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (n, n_in)) * 2  # even: mixed-sign mantissas as the chip holds them
    steps = 60
    spikes = (rng.random((steps, n_in)) < 0.3).astype(np.int64)
    params = dict(current_decay=du, voltage_decay=dv, bias_mant=bias[0], bias_exp=bias[1])
    if model != "LI":
        params.update(threshold=vth, reset=reset, refractory=0)
    if model == "ALIF":
        params.update(adapt_decay=da, beta=beta)
    pop = QPopulation("p", n, model, model != "LI", 0, params)
    prog = Program.from_parts(
        LOIHI2,
        [QPopulation.spike_input("in", n_in), pop],
        [QProjection.from_mantissas("in->p", "in", "p", w, weight_exp=w_exp, sign_mode="mixed")],
    )
    got = Emulator(prog).run(steps, inputs={"in": spikes}, record=["spikes", "v", "u", "a"])
    want = _scalar_layer(pop, w.tolist(), w_exp, spikes, steps)
    np.testing.assert_array_equal(got["p/u"][:, 0], want["u"])
    np.testing.assert_array_equal(got["p/v"][:, 0], want["v"])
    if model != "LI":
        np.testing.assert_array_equal(got["p/spikes"][:, 0], want["spikes"])
    if model == "ALIF":
        np.testing.assert_array_equal(got["p/a"][:, 0], want["a"])


# -- runs, batches, checkpoints ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ei_program():
    return nc.compile(nc.load_network(EXAMPLES / "recurrent_ei.yaml"), "loihi2", out=io.StringIO())


def test_split_runs_and_checkpoints_give_the_same_bits(ei_program, tmp_path):
    full = Emulator(ei_program).run(1000, record=["spikes", "v", "u"])
    emu = Emulator(ei_program)
    parts = [emu.run(100, record=["spikes", "v", "u"]) for _ in range(10)]
    for key in full:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), full[key])
    # checkpoint at step 400, save it, and continue in a new process
    emu = Emulator(ei_program)
    emu.run(400)
    ckpt_path = emu.checkpoint().save(tmp_path / "ckpt.npz")
    prog_path = ei_program.save(tmp_path / "prog.ncp")
    code = (
        "import sys, numpy as np\n"
        "from neurocomp.compiler import Program\n"
        "from neurocomp.emulator import Emulator, Checkpoint\n"
        f"emu = Emulator(Program.load({str(prog_path)!r}))\n"
        f"emu.restore(Checkpoint.load({str(ckpt_path)!r}))\n"
        "r = emu.run(600, record=['spikes', 'v'])\n"
        f"np.savez({str(tmp_path / 'rest.npz')!r}, **{{k.replace('/', '.'): v for k, v in r.items()}})\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "rest.npz") as rest:
        for key in ("exc/spikes", "exc/v", "inh/spikes", "inh/v"):
            np.testing.assert_array_equal(rest[key.replace("/", ".")], full[key][400:])


def test_restore_rejects_a_checkpoint_of_another_shape(ei_program):
    ckpt = Emulator(ei_program, batch=2).checkpoint()
    with pytest.raises(EmulatorError, match="batch differs"):
        Emulator(ei_program, batch=3).restore(ckpt)


def test_trial_of_a_batch_equals_the_trial_alone():
    prog = table_6_1_program()
    net_in = QPopulation.spike_input("in", 4)
    prog = Program.from_parts(
        "loihi2",
        [net_in, *prog.populations],
        [QProjection.from_mantissas("in->A", "in", "A", np.full((3, 4), 40)), *prog.projections],
    )
    rng = np.random.default_rng(3)
    spikes = (rng.random((80, 5, 4)) < 0.3).astype(np.int64)
    batched = Emulator(prog, batch=5).run(80, inputs={"in": spikes}, record=["spikes", "v"])
    for b in (0, 3):
        alone = Emulator(prog).run(80, inputs={"in": spikes[:, b]}, record=["spikes", "v"])
        for key in alone:
            np.testing.assert_array_equal(batched[key][:, b], alone[key][:, 0])


def test_poisson_inputs_are_frozen_and_independent_across_trials(ei_program):
    r = Emulator(ei_program, batch=3).run(50)
    assert r["in/spikes"].sum() > 0
    assert not np.array_equal(r["in/spikes"][:, 0], r["in/spikes"][:, 2])  # independent draws per trial
    # trial 0 of a batch draws what a single trial draws, and the draws are frozen (same every run)
    np.testing.assert_array_equal(Emulator(ei_program).run(50)["in/spikes"][:, 0], r["in/spikes"][:, 0])
    np.testing.assert_array_equal(Emulator(ei_program, batch=3).run(50)["in/spikes"], r["in/spikes"])


def test_strict_mode_names_the_overflow():
    pop = QPopulation.lif("big", 2, du=4095, dv=0, vth=131071, bias_mant=4095, bias_exp=7)
    prog = Program.from_parts("loihi2", [pop], [])
    Emulator(prog).run(40)  # saturates silently, as the chip does
    # no leak (dv = 0), bias 4095 << 7 = 524160 per step: 16 steps reach 8386560, just below the
    # threshold 131071 << 6 = 8388544; step 17 makes 17 * 524160 = 8910720 > 2^23 - 1
    with pytest.raises(
        EmulatorOverflowError,
        match=r"population 'big': v overflow at step 17, neuron 0, trial 0: "
        r"value 8910720 outside \[-8388607, 8388607\]",
    ):
        Emulator(prog, strict=True).run(40)


def test_bad_inputs_are_reported():
    prog = Program.from_parts(
        "loihi2",
        [QPopulation.spike_input("in", 3), QPopulation.lif("x", 1, du=0, dv=0, vth=1)],
        [QProjection.from_mantissas("in->x", "in", "x", [[1, 1, 1]])],
    )
    with pytest.raises(EmulatorError, match="has no rate and no spike array"):
        Emulator(prog).run(5)
    with pytest.raises(EmulatorError, match=r"shape \(5, 2\); expected \[5, 1, 3\] or \[5, 3\]"):
        Emulator(prog).run(5, inputs={"in": np.zeros((5, 2))})
    with pytest.raises(EmulatorError, match="unknown variable 'q'"):
        Emulator(prog).run(5, inputs={"in": np.zeros((5, 3))}, record=["q"])


# -- accumulation paths -------------------------------------------------------------------------


@pytest.mark.parametrize("density", [0.01, 0.5])  # below and above the event-driven threshold
def test_event_driven_and_matmul_accumulation_are_exact(density):
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, (30, 200)) * 2
    prog = Program.from_parts(
        "loihi2",
        [QPopulation.spike_input("in", 200), QPopulation.lif("x", 30, du=4095, dv=4095, vth=2**17 - 1)],
        [QProjection.from_mantissas("in->x", "in", "x", w, weight_exp=-3)],
    )
    spikes = (rng.random((20, 200)) < density).astype(np.int64)
    u = Emulator(prog).run(20, inputs={"in": spikes}, record=["u"])["x/u"][:, 0]
    # du = 4095: u is exactly the input of the step, (W @ s of the previous step) >> 3, times 64
    want = ((spikes[:-1] @ w.T) >> 3) << 6
    np.testing.assert_array_equal(u[1:], want)


def test_float32_exactness_bound_is_checked():
    from neurocomp.emulator.synapses import Synapses

    small = QProjection.from_mantissas("a", "p", "q", np.full((2, 4096), 254))
    big = QProjection.from_mantissas("b", "p", "q", np.full((2, 70000), 254))
    assert Synapses(small, 1, LOIHI2, 1).exact_float32  # 254 * 4096 < 2^24
    assert not Synapses(big, 1, LOIHI2, 1).exact_float32  # 254 * 70000 > 2^24: float64 instead


def test_sparse_and_dense_projections_agree(ei_program):
    import dataclasses

    dense = dataclasses.replace(
        ei_program,
        projections=tuple(
            dataclasses.replace(
                p,
                weights=p.dense_mantissas(),
                rows=None,
                cols=None,
                delay_steps=p.delay_steps if np.ndim(p.delay_steps) == 0 else 0,
            )
            for p in ei_program.projections
        ),
    )
    a = Emulator(ei_program).run(200, record=["spikes", "v"])
    b = Emulator(dense).run(200, record=["spikes", "v"])
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# -- other profiles -----------------------------------------------------------------------------


def test_xylo_multiple_spikes_and_minimum_decay_step():
    xylo = nc.load_profile("xylo")
    f = xylo.formats
    # bit-shift decay with dash 4: 100 - (100 >> 4) = 94; 1 - max(1 >> 4, 1) = 0 (the minimum step)
    assert decay(np.array([100, 1, -1]), f.decay, 4, "voltage").tolist() == [94, 0, 0]
    pop = QPopulation(
        "h",
        1,
        "LIF",
        True,
        0,
        dict(
            current_decay=0, voltage_decay=15, threshold=100, reset="subtract", refractory=0, bias_mant=530, bias_exp=0
        ),
    )
    r = Emulator(Program.from_parts(xylo, [pop], [])).run(1, record=["spikes", "v"])
    # v = 530 >= 100: five spikes in one step, and v keeps 30
    assert (int(r["h/spikes"][0, 0, 0]), int(r["h/v"][0, 0, 0])) == (5, 30)


def test_float_profile_runs_in_float32(ei_program):
    prog = nc.compile(nc.load_network(EXAMPLES / "recurrent_ei.yaml"), "spinnaker2", out=io.StringIO())
    r = Emulator(prog).run(100, record=["spikes", "v"])
    assert r["exc/v"].dtype == np.float32
    assert r["exc/spikes"].sum() > 0
    again = Emulator(prog).run(100, record=["spikes", "v"])
    np.testing.assert_array_equal(r["exc/v"], again["exc/v"])


@pytest.mark.parametrize("refractory", [0, 1, 3, 64])
def test_loihi1_refractory_periods_against_a_scalar_model(refractory):
    """Loihi 1's integer refractory period (1..64 steps; nengo-loihi's emulator and brian2-loihi
    define it): after a spike the compartment's voltage stays at its reset value 0 and it
    cannot spike for ``refractory`` steps, while its current keeps decaying and integrating
    input; then it runs freely. Scalar model written out here, in Python ints: 12-bit decays
    toward zero (the current's register + 1), input and threshold << 6, the current wrapping
    at 24 bits, the voltage saturating at +-(2^23 - 1)."""
    rng = np.random.default_rng(refractory)
    n, n_in, steps, w_exp = 3, 4, 300, 0
    w = rng.integers(0, 128, (n, n_in)) * 2  # even mantissas (mixed sign mode drops the LSB)
    spikes = (rng.random((steps, n_in)) < 0.3).astype(np.int64)
    du, dv, vth, bias = 700, 300, 40, [900, 400, 0]
    pop = QPopulation.lif("p", n, du=du, dv=dv, vth=vth, bias_mant=bias, bias_exp=0)
    pop = QPopulation("p", n, "LIF", True, 0, {**pop.params, "reset": "zero", "refractory": refractory})
    prog = Program.from_parts(
        "loihi1",
        [QPopulation.spike_input("in", n_in), pop],
        [QProjection.from_mantissas("in->p", "in", "p", w, weight_exp=w_exp, sign_mode="mixed")],
    )
    got = Emulator(prog).run(steps, inputs={"in": spikes}, record=["spikes", "v", "u"])
    u, v, refr, pending = [0] * n, [0] * n, [0] * n, [0] * n
    want = {"u": [], "v": [], "spikes": []}
    for t in range(steps):
        arrived = pending
        s_row = [0] * n
        for j in range(n):
            uj = _trunc_div(u[j] * (4096 - du - 1), 12) + (arrived[j] << 6)
            uj = (uj + 2**23) % 2**24 - 2**23  # 24-bit two's complement
            vj = max(-(2**23 - 1), min(2**23 - 1, _trunc_div(v[j] * (4096 - dv), 12) + uj + bias[j]))
            if refr[j] > 0:  # refractory: the voltage stays where the reset left it, no spike
                vj, refr[j] = v[j], refr[j] - 1
            elif vj > vth << 6:
                s_row[j], vj, refr[j] = 1, 0, refractory
            u[j], v[j] = uj, vj
        pending = [sum(int(w[j, i]) for i in range(n_in) if spikes[t, i]) << w_exp for j in range(n)]
        for key, val in (("u", u), ("v", v), ("spikes", s_row)):
            want[key].append(list(val))
    for key in ("u", "v", "spikes"):
        np.testing.assert_array_equal(got[f"p/{key}"][:, 0], np.array(want[key]), err_msg=key)
    isi = np.diff(np.flatnonzero(np.array(want["spikes"])[:, 0]))
    assert isi.size >= 3 and isi.min() > refractory  # the case is exercised: silent for `refractory` steps
