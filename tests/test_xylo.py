"""Xylo: the emulator's layer engine against SynSense's XyloSim (``xylosim.v2.XyloLayer``),
exact on spikes, v and both synaptic currents at every step; and the compiler's side of
Xylo (two synaptic currents, the input-decay compensation, the refusals)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurocomp as nc
from neurocomp.cli import main
from neurocomp.compiler import CompileError
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator, EmulatorError
from neurocomp.emulator.xylo import InputClipWarning, XyloEmulator

XYLO = nc.load_profile("xylo")
RECORD = ["spikes", "v", "u", "u2"]
needs_xylosim = pytest.mark.xylo


def _xylosim():
    pytest.importorskip("xylosim")
    from neurocomp.backends.xylosim import XylosimBackend

    return XylosimBackend


def _lif(name, n, du, dv, th, bias=0, du2=0) -> QPopulation:
    prm = dict(current_decay=du, current2_decay=du2, voltage_decay=dv, threshold=th, reset="subtract", refractory=0)
    return QPopulation(name, n, "LIF", True, 0, dict(prm, bias_mant=bias, bias_exp=0))


def _li(name, n, du, dv, bias=0) -> QPopulation:
    return QPopulation(name, n, "LI", False, 0, dict(current_decay=du, voltage_decay=dv, bias_mant=bias, bias_exp=0))


def _emulate(program, steps, inputs, batch=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputClipWarning)  # counts above 15 are part of what is tested
        return Emulator(program, batch=batch).run(steps, inputs, record=RECORD)


def _assert_equal(emu, sim):
    assert emu.keys() == sim.keys()
    for key in emu:
        diff = np.argwhere(emu[key] != sim[key])
        assert diff.size == 0, f"{key}: first difference at [step, trial, neuron] {diff[0].tolist()}"


# -- registers: random layers built with Program.from_parts --------------------------------


def _per_neuron(draw, n, values):
    return np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.int64)


THRESHOLDS = st.one_of(
    st.integers(1, 3000),  # the usual: a few spikes per step at most
    st.integers(-40, 0),  # zero and negative: up to 31 spikes, v raised until it wraps
    st.integers(-32768, 32767),  # anywhere in int16
)


@st.composite
def register_layers(draw):
    """A Xylo layer from registers: 1-2 input and hidden populations (their order is the
    chip's add order), 0-2 readouts, int8 weights with a shift per matrix, both ports, every
    dash value 0..15, thresholds and biases across int16, input counts 0..31."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    big = draw(st.booleans())  # large weights and shifts: saturation in both directions
    ins = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    hid = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    outs = draw(st.lists(st.integers(1, 2), min_size=0, max_size=2))
    dash = st.integers(0, 15)
    pops = [QPopulation(f"in{i}", n, "SpikeInput", True, 0, {}) for i, n in enumerate(ins)]
    for i, n in enumerate(hid):
        th = _per_neuron(draw, n, THRESHOLDS)
        bias = _per_neuron(draw, n, st.integers(-32768, 32767) if big else st.integers(-300, 300))
        bias = bias * draw(st.booleans())
        d = [_per_neuron(draw, n, dash) for _ in range(3)]
        pops.append(_lif(f"h{i}", n, d[0], d[1], th, bias, d[2]))
    for i, n in enumerate(outs):
        bias = _per_neuron(draw, n, st.integers(-300, 300)) * draw(st.booleans())
        pops.append(_li(f"o{i}", n, _per_neuron(draw, n, dash), _per_neuron(draw, n, dash), bias))
    shifts = [draw(st.integers(0, 7 if big else 3)) for _ in range(3)]
    projs = []

    def add(pre, post, n_post, n_pre, shift, port="syn"):
        w = rng.integers(-128, 128, (n_post, n_pre)) * (rng.random((n_post, n_pre)) < 0.7)
        projs.append(QProjection.from_mantissas(f"{pre}->{post}:{port}", pre, post, w, weight_exp=shift, port=port))

    for i, ni in enumerate(ins):
        for j, nh in enumerate(hid):
            for port in draw(st.sampled_from([("syn",), ("syn2",), ("syn", "syn2")])):
                add(f"in{i}", f"h{j}", nh, ni, shifts[0], port)
    for i, ni in enumerate(hid):
        for j, nh in enumerate(hid):
            for port in draw(st.sampled_from([(), ("syn",), ("syn2",), ("syn", "syn2")])):  # recurrence
                add(f"h{i}", f"h{j}", nh, ni, shifts[1], port)
        for j, no in enumerate(outs):
            add(f"h{i}", f"o{j}", no, ni, shifts[2])
    steps = draw(st.integers(1, 30))
    inputs = {}
    for i, n in enumerate(ins):
        counts = rng.integers(0, 32, (steps, n)) * (rng.random((steps, n)) < draw(st.sampled_from([0.2, 0.6])))
        inputs[f"in{i}"] = counts  # 0..31: XyloSim clips above 15, as the emulator does
    return Program.from_parts(XYLO, pops, projs), steps, inputs


@needs_xylosim
@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(register_layers())
def test_register_layers_equal_xylosim(layer):
    program, steps, inputs = layer
    sim = _xylosim()(program).run(steps, inputs, record=RECORD)
    _assert_equal(_emulate(program, steps, inputs), sim)


# -- compiled networks ---------------------------------------------------------------------


@st.composite
def xylo_networks(draw):
    """A float network within Xylo's rules (subtractive reset, no delays, synaptic time
    constants of at least a step, fan-out <= 64), optionally with a second synaptic current
    on the recurrence, a bias and readouts."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_in, n_h, n_o = draw(st.integers(1, 16)), draw(st.integers(1, 24)), draw(st.integers(0, 4))
    two = draw(st.booleans())
    tau = st.sampled_from([1.0, 2.0, 4.0, 10.0, 50.0])
    lif = nc.LIF(
        tau_mem_ms=draw(tau), tau_syn_ms=draw(tau), tau_syn2_ms=draw(tau) if two else None, v_th=1.0,
        reset="subtract", bias=draw(st.sampled_from([0.0, 0.01, -0.02])),
    )  # fmt: skip
    net = nc.Network(name="xylo-random")
    net.add(nc.Population("in", n_in, nc.SpikeInput()), nc.Population("h", n_h, lif))
    scale = draw(st.sampled_from([0.1, 0.5, 2.0]))
    net.add(nc.Projection("in", "h", rng.normal(0, scale, (n_h, n_in))))
    if draw(st.booleans()):
        net.add(nc.Projection("h", "h", rng.normal(0, scale / 2, (n_h, n_h)), port="syn2" if two else "syn"))
    if n_o:
        net.add(nc.Population("out", n_o, nc.LI(tau_mem_ms=draw(tau), tau_syn_ms=draw(tau))))
        net.add(nc.Projection("h", "out", rng.normal(0, 0.5, (n_o, n_h))))
    steps = draw(st.integers(5, 60))
    inputs = {"in": rng.integers(0, 3, (steps, 2, n_in)) * (rng.random((steps, 2, n_in)) < 0.3)}
    return net, steps, inputs


@needs_xylosim
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xylo_networks())
def test_compiled_networks_equal_xylosim(case):
    net, steps, inputs = case
    program = nc.compile(net, "xylo", out=io.StringIO())
    sim = _xylosim()(program).run(steps, inputs, batch=2, record=RECORD)
    _assert_equal(_emulate(program, steps, inputs, batch=2), sim)


@needs_xylosim
def test_example_model_equals_xylosim():
    program = nc.compile(nc.load_network(nc_examples() / "xylo_keywords.yaml"), "xylo", out=io.StringIO())
    sim = _xylosim()(program).run(200, batch=2, record=RECORD)  # frozen Poisson inputs, drawn alike
    emu = _emulate(program, 200, {}, batch=2)
    _assert_equal(emu, sim)
    assert emu["hidden/spikes"].sum() > 0 and np.abs(emu["hidden/u2"]).sum() > 0  # both currents carry input


def nc_examples():
    from tests.conftest import EXAMPLES

    return EXAMPLES


# -- the semantics, one at a time ----------------------------------------------------------


def _one_neuron(du=2, dv=4, th=30000, w=100, n_out=0, bias=0):
    pops = [QPopulation("in", 1, "SpikeInput", True, 0, {}), _lif("h", 1, du, dv, th, bias)]
    projs = [QProjection.from_mantissas("in->h", "in", "h", [[w]])]
    if n_out:
        pops.append(_li("o", 1, 15, 15))  # slow: its current and membrane keep nearly all they get
        projs.append(QProjection.from_mantissas("h->o", "h", "o", [[127]], weight_exp=7))
    return Program.from_parts(XYLO, pops, projs)


def test_input_is_added_before_the_current_decays():
    # the case: one event of w = 100 with dash_syn = 2 gives 75, 57, 43 (100 - 25, 75 - 18, 57 - 14)
    rec = Emulator(_one_neuron()).run(3, {"in": [[1], [0], [0]]}, record=["u"])
    assert rec["h/u"][:, 0, 0].tolist() == [75, 57, 43]
    # dash 0 empties the current in the step its input arrives: the neuron never sees it
    rec = Emulator(_one_neuron(du=0)).run(3, {"in": [[1], [0], [0]]}, record=["u", "v"])
    assert rec["h/u"].tolist() == rec["h/v"].tolist() == [[[0]]] * 3


def test_input_events_are_clipped_to_15_with_a_warning_and_refused_above_31():
    prog = _one_neuron(du=15, w=1)  # dash 15: the current keeps the count (minus the minimum step of 1)
    with pytest.warns(InputClipWarning, match=r"input 'in': 1 counts above xylo's 15 .*first 20 at step 0"):
        clipped = Emulator(prog).run(1, {"in": [[20]]}, record=["u", "spikes"])
    assert clipped["h/u"][0, 0, 0] == 15 - 1 and clipped["in/spikes"][0, 0, 0] == 15
    with pytest.raises(EmulatorError, match=r"spike counts must be 0\.\.31 per step, got 32"):
        Emulator(prog).run(1, {"in": [[32]]})


def test_readout_spikes_when_its_membrane_saturates_and_subtracts_the_largest_int16():
    prog = _one_neuron(th=1, w=127, n_out=1)  # hidden spikes 31 times a step; readout input 31 * 127 << 7
    rec = Emulator(prog).run(4, {"in": [[15]] * 4}, record=["spikes", "v"])
    assert rec["h/spikes"][:, 0, 0].tolist() == [31] * 4
    # the readout hears step t - 1: its current saturates at 32767 and decays by 1 to 32766; v = 32766;
    # then v + (32766 - 1) saturates at 32767 >= 32767: a spike, and v - 32767 = 0
    assert rec["o/v"][:, 0, 0].tolist() == [0, 32766, 0, 32766]
    assert rec["o/spikes"][:, 0, 0].tolist() == [0, 0, 1, 0]


def test_negative_threshold_raises_v_until_it_wraps():
    # th = -10000, v = 0: spike, v = 10000, 20000, 30000, then 40000 wraps to -25536 < th: 4 spikes
    rec = Emulator(_one_neuron(th=-10000, w=0)).run(1, {"in": [[0]]}, record=["spikes", "v"])
    assert (rec["h/spikes"][0, 0, 0], rec["h/v"][0, 0, 0]) == (4, 40000 - 65536)


def test_checkpoint_step_and_batch_are_consistent():
    prog = _one_neuron(th=300, w=90, n_out=1)
    x = np.random.default_rng(0).integers(0, 4, (20, 3, 1))
    whole = Emulator(prog, batch=3).run(20, {"in": x}, record=RECORD)
    emu = Emulator(prog, batch=3)
    assert isinstance(emu, XyloEmulator)
    emu.run(8, {"in": x[:8]})
    ckpt = emu.checkpoint()
    again = Emulator(prog, batch=3)
    again.restore(ckpt)
    for i in range(8, 20):
        again.step({"in": x[i]})
    for var in ("spikes", "v", "u", "u2"):
        np.testing.assert_array_equal(again.state[f"h/{var}"], whole[f"h/{var}"][-1])
    alone = Emulator(prog).run(20, {"in": x[:, 1]}, record=RECORD)
    for key in alone:
        np.testing.assert_array_equal(alone[key][:, 0], whole[key][:, 1])


def test_layer_refuses_what_xylo_cannot_hold():
    pops = [QPopulation("in", 1, "SpikeInput", True, 0, {}), _lif("h", 1, 2, 4, 100), _li("o", 1, 1, 1)]
    projs = [
        QProjection.from_mantissas("d", "in", "h", [[1]], delay_steps=2),
        QProjection.from_mantissas("io", "in", "o", [[1]]),
        QProjection.from_mantissas("p2", "h", "o", [[1]], port="syn2"),
    ]
    with pytest.raises(EmulatorError) as exc:
        Emulator(Program.from_parts(XYLO, pops, projs))
    msg = str(exc.value)
    assert "'d': Xylo has no synaptic delays" in msg
    assert "'io': SpikeInput -> LI" in msg
    assert "'p2': port 'syn2': readout neurons have one synaptic current" in msg


def test_generic_emulator_refuses_the_second_port():
    lif = QPopulation.lif("h", 1, du=0, dv=0, vth=10)
    prog = Program.from_parts(
        "loihi2",
        [QPopulation("in", 1, "SpikeInput", True, 0, {}), lif],
        [QProjection.from_mantissas("a", "in", "h", [[1]], port="syn2")],
    )
    with pytest.raises(EmulatorError, match=r"port 'syn2': loihi2's emulator has one synaptic current"):
        Emulator(prog)


# -- the compiler --------------------------------------------------------------------------


def _net(lif: nc.LIF, port="syn", w=0.5) -> nc.Network:
    net = nc.Network(name="x")
    net.add(nc.Population("in", 1, nc.SpikeInput()), nc.Population("h", 1, lif))
    net.add(nc.Projection("in", "h", np.array([[w]]), port=port))
    return net


def test_compiler_refuses_a_current_that_loses_its_input():
    with pytest.raises(CompileError, match=r"no tau_syn_ms \(delta synapses\) gives port 'syn' the decay code 0"):
        nc.compile(_net(nc.LIF(tau_mem_ms=10.0, reset="subtract")), "xylo", out=io.StringIO())


def test_second_port_is_refused_by_name_where_there_is_none():
    two = nc.LIF(tau_mem_ms=10.0, tau_syn_ms=5.0, tau_syn2_ms=20.0, reset="zero")
    with pytest.raises(CompileError) as exc:
        nc.compile(_net(two, port="syn2"), "loihi2", out=io.StringIO())
    msg = str(exc.value)
    assert "tau_syn2_ms 20: loihi2's LIF has one synaptic current" in msg
    assert "port 'syn2': loihi2's neurons have one synaptic current" in msg
    one = nc.LIF(tau_mem_ms=10.0, tau_syn_ms=5.0, reset="subtract")
    with pytest.raises(CompileError, match=r"port 'syn2': post population 'h' has no second synaptic current"):
        nc.compile(_net(one, port="syn2"), "xylo", out=io.StringIO())


@pytest.mark.parametrize("port", ["syn", "syn2"])
def test_quantizer_compensates_the_decay_of_the_inputs_own_step(port, tmp_path):
    # tau 4 ms at 1 ms: dash 2, a = 0.75. The model's current jumps by w at the input; the chip's
    # by (m << e) * a, so m << e must be w * S / a (to the mantissa's rounding: 1 LSB << e).
    lif = nc.LIF(tau_mem_ms=10.0, tau_syn_ms=4.0, tau_syn2_ms=4.0, v_th=1.0, reset="subtract")
    prog = nc.compile(_net(lif, port), "xylo", out=io.StringIO())
    pr, S = prog.projection("in->h"), 2.0 ** prog.population("h").scale_exp
    assert pr.port == port
    assert abs(int(pr.weights[0, 0]) * 2**pr.weight_exp - 0.5 * S / 0.75) <= 2**pr.weight_exp / 2
    rec = Emulator(prog).run(1, {"in": [[1]]}, record=["u", "u2"])
    got = rec["h/u" if port == "syn" else "h/u2"][0, 0, 0] / S
    assert abs(got - 0.5) <= 2**pr.weight_exp / S  # one mantissa LSB: the rounding above, decayed
    prog.save(tmp_path / "p.ncp")
    assert Program.load(tmp_path / "p.ncp").projection("in->h").port == port


def test_network_yaml_keeps_the_second_current(tmp_path):
    lif = nc.LIF(tau_mem_ms=10.0, tau_syn_ms=4.0, tau_syn2_ms=16.0, reset="subtract")
    nc.save_network(_net(lif, "syn2"), tmp_path / "n.yaml")
    back = nc.load_network(tmp_path / "n.yaml")
    assert back.projections[0].port == "syn2" and back.population("h").neuron.tau_syn2_ms == 16.0


# -- the backend and the CLI ---------------------------------------------------------------


@needs_xylosim
def test_cli_runs_a_program_in_xylosim(tmp_path, capsys):
    _xylosim()
    src = nc_examples() / "xylo_keywords.yaml"
    assert main(["compile", str(src), "--profile", "xylo", "-o", str(tmp_path / "p.ncp")]) == 0
    out_sim, out_emu = tmp_path / "sim.npz", tmp_path / "emu.npz"
    args = ["run", str(tmp_path / "p.ncp"), "--steps", "50", "--record", "spikes,v,u,u2"]
    assert main([*args, "--backend", "xylosim", "--out", str(out_sim)]) == 0
    assert main([*args, "--out", str(out_emu)]) == 0
    with np.load(out_sim) as a, np.load(out_emu) as b:
        assert sorted(a.files) == sorted(b.files) and "hidden/u2" in a.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


@needs_xylosim
def test_backend_refuses_other_chips_and_unshared_shifts(tmp_path, capsys):
    from neurocomp.backends import BackendError

    backend = _xylosim()
    loihi = Program.from_parts("loihi2", [QPopulation("in", 1, "SpikeInput", True, 0, {})], [])
    with pytest.raises(BackendError, match="XyloSim models Xylo"):
        backend(loihi)
    pops = [QPopulation("in", 2, "SpikeInput", True, 0, {}), _lif("h", 1, 2, 4, 100), _lif("g", 1, 2, 4, 100)]
    projs = [
        QProjection.from_mantissas("a", "in", "h", [[100, 1]], weight_exp=0),
        QProjection.from_mantissas("b", "in", "g", [[100, 1]], weight_exp=3),
    ]
    with pytest.raises(BackendError, match=r"projections a, b.*exponents \[0, 3\].*one shift per in matrix"):
        backend(Program.from_parts(XYLO, pops, projs))
    loihi.save(tmp_path / "l.ncp")
    code = main(["run", str(tmp_path / "l.ncp"), "--steps", "2", "--backend", "xylosim", "--out", str(tmp_path / "o")])
    assert code == 2 and "XyloSim models Xylo" in capsys.readouterr().err


def test_float_reference_refuses_the_second_port_instead_of_dropping_it():
    from neurocomp.reference.simulator import Reference, ReferenceError

    lif = nc.LIF(tau_mem_ms=10.0, tau_syn_ms=4.0, tau_syn2_ms=16.0, reset="subtract")
    with pytest.raises(ReferenceError, match=r"port 'syn2': the float reference models one synaptic current"):
        Reference(_net(lif, "syn2"))


def test_u2_is_refused_where_there_is_one_current(tmp_path, capsys):
    prog = Program.from_parts(
        "loihi2",
        [QPopulation("in", 1, "SpikeInput", True, 0, {}), QPopulation.lif("h", 1, du=0, dv=0, vth=10)],
        [QProjection.from_mantissas("a", "in", "h", [[1]])],
    )
    with pytest.raises(EmulatorError, match=r"'u2': loihi2's neurons have one synaptic current"):
        Emulator(prog).run(1, {"in": [[1]]}, record=["u2"])
    prog.save(tmp_path / "p.ncp")
    code = main(["run", str(tmp_path / "p.ncp"), "--steps", "1", "--record", "u2", "--out", str(tmp_path / "o.npz")])
    assert code == 2 and "'u2' is a second synaptic current, and loihi2 has none" in capsys.readouterr().err
