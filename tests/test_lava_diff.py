"""Differential tests: the emulator against Lava 0.10.0's fixed-point models, bit for bit.

Every comparison is exact integer equality of ``u``, ``v`` and the spikes on every step
(no tolerance): the Lava reference table, random networks (hypothesis), a 1000-neuron
recurrent network, a batch, a compiled program; and the constructs the Lava backend refuses.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import neurocomp as nc
from neurocomp.backends import BackendError
from neurocomp.backends.lava import LavaBackend
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator, EmulatorOverflowError
from tests.conftest import EXAMPLES
from tests.lava_compare import assert_same, assert_table_6_1, first_mismatch, run_both, table_6_1_program

pytestmark = pytest.mark.lava


LOIHI2 = nc.load_profile("loihi2")
RECORD = ["spikes", "v", "u"]
V_MAX = 2**23 - 1


# -- 1. the worked case of the reference (section 6.1), measured in Lava ---------------------


def test_reference_table_6_1_emulator_and_lava():
    program = table_6_1_program()
    assert program.projection("A->B").sign_mode == "mixed"
    emu, lava = run_both(program, 20)
    assert_table_6_1(emu, 20)
    assert_same(emu, lava)


# -- 2. random networks ------------------------------------------------------------------------

DECAY = st.one_of(st.sampled_from([0, 1, 4095]), st.integers(0, 4095))
VTH = st.one_of(st.sampled_from([0, 1, 2**17 - 1]), st.integers(0, 300), st.integers(0, 2**17 - 1))
BIAS_MANT = st.one_of(st.sampled_from([-4096, 0, 4095]), st.integers(-64, 64), st.integers(-4096, 4095))
BIAS_EXP = st.one_of(st.just(0), st.integers(0, 7))
WEIGHT_STYLES = ("any", "nonneg", "nonpos", "small", "near255")


@dataclass
class Case:
    """A random network, its input spikes and the number of steps; ``expect`` names an
    overflow the case was built to trigger (checked in the test)."""

    program: Program
    inputs: dict[str, np.ndarray]
    steps: int
    expect: str | None = None
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        lines = [f"Case(steps={self.steps}, expect={self.expect!r})"]
        for p in self.program.populations:
            lines.append(f"  {p.name} [{p.size} x {p.model}] {dict(p.params)}")
        for pr in self.program.projections:
            lines.append(
                f"  {pr.name}: sign {pr.sign_mode}, bits {pr.num_weight_bits}, exp {pr.weight_exp}, "
                f"delay {np.asarray(pr.delay_steps).tolist()}, weights {pr.weights.tolist()}"
            )
        for name, x in self.inputs.items():
            lines.append(f"  input {name}: {int(x.sum())} spikes, rows {x.astype(int).tolist()}")
        return "\n".join(lines)


def _weights(rng: np.random.Generator, style: str, density: float, shape: tuple[int, int]) -> np.ndarray:
    lo, hi = {"any": (-300, 300), "nonneg": (0, 300), "nonpos": (-300, 0), "small": (-20, 20), "near255": (240, 300)}[
        style
    ]
    w = rng.integers(lo, hi + 1, size=shape)
    return np.where(rng.random(shape) < density, w, 0)


@st.composite
def random_cases(draw) -> Case:
    n_pops = draw(st.integers(2, 4))
    n_inputs = draw(st.integers(1, min(2, n_pops - 1)))
    steps = draw(st.integers(20, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pops, inputs = [], {}
    for k in range(n_pops):
        size = draw(st.integers(1, 8))
        name = f"p{k}"
        if k < n_inputs:
            density = draw(st.one_of(st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.floats(0.0, 1.0)))
            inputs[name] = (rng.random((steps, size)) < density).astype(np.uint8)
            pops.append(QPopulation.spike_input(name, size))
            continue
        per_neuron = draw(st.booleans())
        bias_mant = draw(st.lists(BIAS_MANT, min_size=size, max_size=size) if per_neuron else BIAS_MANT)
        bias_exp = draw(st.lists(BIAS_EXP, min_size=size, max_size=size) if draw(st.booleans()) else BIAS_EXP)
        pops.append(
            QPopulation.lif(
                name, size, du=draw(DECAY), dv=draw(DECAY), vth=draw(VTH), bias_mant=bias_mant, bias_exp=bias_exp
            )
        )
    lif = list(range(n_inputs, n_pops))
    # Lava compiles only the processes connected to the one it runs, so keep the graph connected:
    # every input feeds the first LIF population, every other LIF population gets a feed-forward
    # projection from an earlier population; then extra ones, recurrent ones included.
    edges = [(i, lif[0]) for i in range(n_inputs)]
    edges += [(draw(st.integers(0, k - 1)), k) for k in lif[1:]]
    if draw(st.booleans()):
        k = draw(st.sampled_from(lif))
        edges.append((k, k))  # a population onto itself
    for _ in range(draw(st.integers(0, 2))):
        edges.append((draw(st.integers(0, n_pops - 1)), draw(st.sampled_from(lif))))
    projections = []
    for j, (pre, post) in enumerate(edges):
        shape = (pops[post].size, pops[pre].size)
        style = draw(st.sampled_from(WEIGHT_STYLES))
        density = draw(st.sampled_from([0.1, 0.5, 1.0, 1.0]))
        w = _weights(rng, style, density, shape)
        sign_mode = draw(st.sampled_from([None, "mixed", "excitatory", "inhibitory"]))
        delay_kind = draw(st.sampled_from(["zero", "scalar", "array"]))
        if delay_kind == "array":  # one delay per synapse
            delay = rng.integers(0, 6, size=shape)
        else:
            delay = 0 if delay_kind == "zero" else draw(st.integers(0, 5))
        projections.append(
            QProjection.from_mantissas(
                f"e{j}:{pops[pre].name}->{pops[post].name}",
                pops[pre].name,
                pops[post].name,
                w,
                weight_exp=draw(st.integers(-4, 7)),
                sign_mode=sign_mode,
                num_weight_bits=draw(st.integers(3, 8)),
                delay_steps=delay,
            )
        )
    return Case(Program.from_parts(LOIHI2, pops, projections, name="random"), inputs, steps)


def _u_wrap_case() -> Case:
    """Weights near 255 at weight_exp 7 from 8 spiking inputs: a = 8 * 255 << 7 per step and
    a << 6 = 16 711 680 > 2**23, so u takes the one-shot -2**24 correction. All weights are
    excitatory, so a negative u can only come from the wrap."""
    steps = 40
    inp = QPopulation.spike_input("in", 8)
    post = QPopulation.lif("big", 3, du=4095, dv=4095, vth=2**17 - 1, bias_mant=0, bias_exp=0)
    slow = QPopulation.lif("slow", 2, du=0, dv=0, vth=2**17 - 1, bias_mant=0, bias_exp=0)
    w = np.array([[255] * 8, [254] * 8, [250] * 7 + [0]])
    projections = [
        QProjection.from_mantissas("in->big", "in", "big", w, weight_exp=7, sign_mode="excitatory"),
        # du = 0 nearly keeps u: it grows by about 2**19 per step until it crosses 2**23 and wraps
        QProjection.from_mantissas("in->slow", "in", "slow", np.full((2, 8), 255), weight_exp=2, delay_steps=2),
    ]
    x = np.ones((steps, 8), dtype=np.uint8)
    x[10:13] = 0
    return Case(Program.from_parts(LOIHI2, [inp, post, slow], projections, name="u-wrap"), {"in": x}, steps, "u_wrap")


def _v_saturation_case() -> Case:
    """bias_mant -4096 << 7 = -524 288 per step with no leak (dv = 0) and at most 4 * 100 << 6
    of input: v reaches -(2**23 - 1) by step 17 and stays saturated. The second population
    climbs by 4095 << 7 per step past 2**23 - 1 (clipped), which is above vth << 6 =
    8 388 544, so it spikes and resets."""
    steps = 40
    inp = QPopulation.spike_input("in", 4)
    low = QPopulation.lif("low", 3, du=4095, dv=0, vth=2**17 - 1, bias_mant=[-4096, -4096, -3000], bias_exp=7)
    high = QPopulation.lif("high", 2, du=4095, dv=0, vth=2**17 - 1, bias_mant=4095, bias_exp=7)
    projections = [
        QProjection.from_mantissas("in->low", "in", "low", np.full((3, 4), 100), weight_exp=0),
        QProjection.from_mantissas("in->high", "in", "high", np.full((2, 4), 200), weight_exp=3, delay_steps=1),
        QProjection.from_mantissas("low->high", "low", "high", np.full((2, 3), -255), weight_exp=7),
    ]
    x = (np.random.default_rng(7).random((steps, 4)) < 0.5).astype(np.uint8)
    return Case(
        Program.from_parts(LOIHI2, [inp, low, high], projections, name="v-saturation"), {"in": x}, steps, "v_saturation"
    )


def _overflows(case: Case) -> set[str]:
    """The state (``u`` or ``v``) that first leaves its range, if any: the strict emulator
    raises at the first overflow instead of wrapping or saturating."""
    try:
        Emulator(case.program, strict=True).run(case.steps, inputs=case.inputs, record=["spikes"])
    except EmulatorOverflowError as exc:
        return {"u" if " u overflow" in str(exc) else "v" if " v overflow" in str(exc) else "?"}
    return set()


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(_u_wrap_case())
@example(_v_saturation_case())
@given(case=random_cases())
def test_random_networks_match_lava(case: Case):
    emu, lava = run_both(case.program, case.steps, inputs=case.inputs)
    for kind in sorted(_overflows(case)):
        event(f"first overflow: {kind}")
    lif_keys = [f"{p.name}/v" for p in case.program.populations if p.model == "LIF"]
    if any(np.abs(lava[k]).max() == V_MAX for k in lif_keys):
        event("|v| reached 2**23 - 1")
    assert_same(emu, lava)
    if case.expect == "u_wrap":
        u_big, u_slow = lava["big/u"][:, 0], lava["slow/u"][:, 0]
        # full decay: u = a << 6 each step, so with all-excitatory weights a negative u is the wrap
        assert (u_big < 0).any(), u_big
        assert u_big[1, 0] == 8 * 255 * 128 * 64 - 2**24  # 8 excitatory bits keep 255: u = 16 711 680 - 2**24
        # du = 0: u climbs, then changes sign in one step
        flips = np.flatnonzero((u_slow[:-1, 0] > 2**22) & (u_slow[1:, 0] < 0))
        assert flips.size, u_slow[:, 0]
        assert _overflows(case) == {"u"}
    if case.expect == "v_saturation":
        v_low, v_high = lava["low/v"][:, 0], lava["high/v"][:, 0]
        assert (v_low[16:, :2] == -V_MAX).all(), v_low
        assert lava["high/spikes"].any(), v_high  # its v overshoots 2**23 - 1, is clipped, spikes, resets
        assert "v" in _overflows(case)


def test_u_past_int32_wraps_as_lava_does():
    """Lava keeps u and v in int32: past 2**31 the sums wrap modulo 2**32 before the one-time
    +-2**24 correction of u and the clip of v (the loihi2 profile's ``register_bits: 32``).
    200 inputs of 255 << 7 add 417 792 000 to u per step and du = 0 keeps it, so u passes
    2**31 within a few steps; the emulator must equal Lava bit for bit, record u in a dtype
    that holds it, and strict mode must still stop at the first 24-bit overflow."""
    steps = 16
    inp = QPopulation.spike_input("in", 200)
    post = QPopulation.lif("big", 2, du=0, dv=0, vth=2**17 - 1, bias_mant=[0, -4096], bias_exp=7)
    w = np.full((2, 200), 255)
    proj = QProjection.from_mantissas("in->big", "in", "big", w, weight_exp=7, sign_mode="excitatory")
    program = Program.from_parts(LOIHI2, [inp, post], [proj], name="u-int32")
    x = np.ones((steps, 200), dtype=np.uint8)
    emu, lava = run_both(program, steps, inputs={"in": x})
    assert_same(emu, lava)
    u = lava["big/u"][:, 0, 0].astype(np.int64)
    assert (np.diff(u) < 0).any() and u.max() > 2**30, u  # it wrapped past 2**31, not only by 2**24
    emulator = Emulator(program)
    rec = emulator.run(steps, inputs={"in": x}, record=["u"])
    assert np.iinfo(rec["big/u"].dtype).max >= np.abs(rec["big/u"].astype(np.int64)).max()
    np.testing.assert_array_equal(rec["big/u"][-1], emulator.state["big/u"])  # the recording holds the state
    with pytest.raises(EmulatorOverflowError, match=r"'big'.*u overflow at step 2, neuron 0, trial 0: value 417792000"):
        Emulator(program, strict=True).run(steps, inputs={"in": x})


# -- 3. a large recurrent network --------------------------------------------------------------


def test_large_recurrent_network_1000_neurons_1000_steps():
    """The full spike raster and the final v; v is read once at the end, since Lava reads a
    Monitor out one value at a time (~70 us each): the raster alone is a million values."""
    rng = np.random.default_rng(1234)
    n, m, steps = 1000, 100, 1000
    inp = QPopulation.spike_input("in", m)
    rec = QPopulation.lif("rec", n, du=400, dv=300, vth=5000, bias_mant=rng.integers(0, 200, n), bias_exp=0)
    w_in = np.where(rng.random((n, m)) < 0.2, rng.integers(0, 120, (n, m)), 0)
    w_rec = np.where(rng.random((n, n)) < 0.1, rng.integers(-255, 256, (n, n)), 0)
    program = Program.from_parts(
        LOIHI2,
        [inp, rec],
        [
            QProjection.from_mantissas("in->rec", "in", "rec", w_in, weight_exp=0),
            QProjection.from_mantissas("rec->rec", "rec", "rec", w_rec, weight_exp=-3, sign_mode="mixed"),
        ],
        name="large",
    )
    x = (rng.random((steps, m)) < 0.05).astype(np.uint8)
    emulator = Emulator(program)
    emu = emulator.run(steps, inputs={"in": x}, record=["spikes"])
    lava = LavaBackend(program).run(steps, inputs={"in": x}, record=["spikes"], final=("v", "u"))
    rate = emu["rec/spikes"].mean()
    assert 0.01 < rate < 0.3, rate  # the network is neither silent nor saturated
    np.testing.assert_array_equal(emu["rec/spikes"], lava["rec/spikes"], err_msg=first_mismatch(emu, lava))
    np.testing.assert_array_equal(emulator.state["rec/v"][0], lava["rec/final_v"][0], err_msg="final-step v")
    np.testing.assert_array_equal(emulator.state["rec/u"][0], lava["rec/final_u"][0], err_msg="final-step u")


# -- 4. batch ----------------------------------------------------------------------------------


def test_batch_of_three_trials_matches_lava_trial_by_trial():
    rng = np.random.default_rng(5)
    steps, batch = 50, 3
    inp = QPopulation.spike_input("in", 5)
    hid = QPopulation.lif("hid", 6, du=600, dv=200, vth=80, bias_mant=rng.integers(-20, 40, 6), bias_exp=1)
    out = QPopulation.lif("out", 3, du=1000, dv=100, vth=150, bias_mant=0, bias_exp=0)
    projections = [
        QProjection.from_mantissas(
            "in->hid",
            "in",
            "hid",
            rng.integers(-100, 256, (6, 5)),
            weight_exp=0,
            delay_steps=rng.integers(0, 4, (6, 5)),
        ),
        QProjection.from_mantissas("hid->hid", "hid", "hid", rng.integers(-200, 200, (6, 6)), weight_exp=-1),
        QProjection.from_mantissas("hid->out", "hid", "out", rng.integers(0, 256, (3, 6)), delay_steps=2),
    ]
    program = Program.from_parts(LOIHI2, [inp, hid, out], projections, name="batch")
    x = np.stack([(rng.random((steps, 5)) < p).astype(np.uint8) for p in (0.1, 0.3, 0.6)], axis=1)
    assert x.shape == (steps, batch, 5)
    emu, lava = run_both(program, steps, inputs={"in": x}, batch=batch)
    assert not np.array_equal(emu["hid/v"][:, 0], emu["hid/v"][:, 2])  # the trials really differ
    assert_same(emu, lava)
    # and each trial equals the same trial run alone in the emulator
    alone = Emulator(program).run(steps, inputs={"in": x[:, 1]}, record=RECORD)
    for key, arr in alone.items():
        np.testing.assert_array_equal(emu[key][:, 1:2], arr, err_msg=key)


# -- 5. a compiled program ---------------------------------------------------------------------


def test_compiled_recurrent_ei_matches_lava():
    program = nc.compile(EXAMPLES / "recurrent_ei.yaml", "loihi2", out=io.StringIO())
    assert any(pr.is_sparse for pr in program.projections)
    assert any(pr.max_delay > 0 for pr in program.projections)
    assert any(p.params.get("rate_hz") for p in program.populations if p.model == "SpikeInput")
    emu, lava = run_both(program, 200)
    assert emu["exc/spikes"].any() and emu["inh/spikes"].any()
    assert_same(emu, lava)


# -- 6. what the Lava backend refuses ----------------------------------------------------------


def test_lava_backend_refuses_what_it_cannot_run():
    spinnaker = nc.compile(EXAMPLES / "evidence_accumulation.yaml", "spinnaker2", out=io.StringIO())
    assert any(p.model == "ALIF" for p in spinnaker.populations)
    with pytest.raises(BackendError) as info:
        LavaBackend(spinnaker)
    problems = {p.where: p.message for p in info.value.problems}
    assert "spinnaker2" in problems["program"]
    assert "ALIF" in problems["population 'alif'"]

    lif = QPopulation.lif("hid", 3, du=100, dv=100, vth=10)
    readout = dataclasses.replace(QPopulation.lif("out", 2, du=100, dv=100, vth=10), model="LI", spiking=False)
    program = Program.from_parts(
        LOIHI2,
        [QPopulation.spike_input("in", 2), lif, readout],
        [
            QProjection.from_mantissas("in->hid", "in", "hid", np.full((3, 2), 50)),
            QProjection.from_mantissas("hid->out", "hid", "out", np.full((2, 3), 50)),
        ],
    )
    Emulator(program).run(3, inputs={"in": np.ones((3, 2), dtype=np.uint8)})  # the emulator runs it
    with pytest.raises(BackendError) as info:
        LavaBackend(program)
    problems = {p.where: p.message for p in info.value.problems}
    assert list(problems) == ["population 'out'"]
    assert "LI " in problems["population 'out'"]


def test_populations_that_do_not_connect_each_run():
    """Lava runs only what is connected to the process it starts; the backend runs each part."""
    prog = Program.from_parts(
        "loihi2",
        [
            QPopulation.lif("A", 1, du=0, dv=0, vth=10, bias_mant=100),
            QPopulation.lif("B", 2, du=0, dv=0, vth=10, bias_mant=[100, 300]),
        ],
        [],
    )
    lava = LavaBackend(prog).run(5, record=["spikes", "v"])
    emu = Emulator(prog).run(5, record=["spikes", "v"])
    assert sorted(lava) == sorted(emu)
    for key in emu:
        np.testing.assert_array_equal(lava[key], emu[key])
    assert emu["B/spikes"].sum() > 0  # the case is not vacuous
