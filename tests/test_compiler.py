"""Compiler passes on small networks whose integers are worked out by hand (loihi2 unless
stated), the design-rule check, the quantization report and the pass manager."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.compiler import PIPELINE, CompileError, DRCError, PassManager, QuantizationError, compile
from neurocomp.compiler.context import PassContext
from neurocomp.compiler.ir import DiscreteNetwork, QuantizedNetwork
from neurocomp.compiler.options import CompileOptions
from tests.conftest import EXAMPLES


def _compile(net, profile="loihi2", **opts):
    return compile(net, profile, out=io.StringIO(), **opts)


def _run_until(net, profile, last, **opts):
    """Run the pipeline up to and including pass ``last``; return the IR it produced."""
    n = [p.name for p in PIPELINE].index(last) + 1
    ctx = PassContext(nc.load_profile(profile), CompileOptions(**opts))
    return PassManager(PIPELINE[:n], out=io.StringIO()).run(net, ctx)


def _pair(neuron, weights, sign_mode=None, pre_size=None):
    w = np.asarray(weights, dtype=float)
    net = nc.Network(
        [nc.Population("in", pre_size or w.shape[1], nc.SpikeInput()), nc.Population("rec", w.shape[0], neuron)]
    )
    net.add_projection(nc.Projection("in", "rec", w, sign_mode=sign_mode))
    return net


LIF_HAND = nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=1.0, bias=0.25)
W_HAND = [[0.5, -0.25], [0.125, 0.0]]


# -- discretize ---------------------------------------------------------------------------


def test_discretize_loihi2_decays_by_hand():
    # exp(-1/20) = 0.951229: 4096 * (1 - 0.951229) = 199.76 -> dv = 200; du carries Lava's +1 -> 199.
    # exp(-1/5) = 0.818731: 4096 * 0.181269 = 742.48 -> du = 742 - 1 = 741.
    d = _run_until(_pair(LIF_HAND, W_HAND), "loihi2", "discretize")
    assert isinstance(d, DiscreteNetwork)
    rec = d.population("rec")
    assert rec.decays["voltage"].code == 200
    assert rec.decays["current"].code == 741
    assert rec.decays["voltage"].factor == (4096 - 200) / 4096
    assert rec.decays["current"].factor == (4096 - 741 - 1) / 4096


def test_discretize_respects_dt_and_delta_synapses():
    # dt = 0.5 ms: exp(-0.5/20) = 0.975310 -> 4096 * 0.024690 = 101.13 -> dv 101
    net = _pair(nc.LIF(tau_mem_ms=20.0), [[0.5]])
    rec = _run_until(net, "loihi2", "discretize", dt_ms=0.5).population("rec")
    assert rec.decays["voltage"].code == 101
    assert rec.decays["current"].code == 4095 and rec.decays["current"].factor == 0.0  # delta synapse: u = a<<6


def test_discretize_other_representations():
    net = _pair(nc.LIF(tau_mem_ms=20.0), [[0.5]])
    # xylo bit shift: 1 - 2^-4 = 0.9375 is closer to 0.951229 than 1 - 2^-5 = 0.96875
    assert _run_until(net, "xylo", "discretize").population("rec").decays["voltage"].code == 4
    # reckon multiplier with 15 fractional bits: round(0.951229 * 32768) = 31170
    assert _run_until(net, "reckon", "discretize").population("rec").decays["voltage"].code == 31170
    # spinnaker2 keeps the exact factor
    assert _run_until(net, "spinnaker2", "discretize").population("rec").decays["voltage"].factor == np.exp(-1 / 20)


def test_unrepresentable_decay_warns():
    net = _pair(nc.LIF(tau_mem_ms=0.05), [[0.5]])  # exp(-20) needs a decay code above 4095
    prog = _compile(net)
    assert any("outside what loihi2's 12-bit decay can represent" in w for w in prog.warnings)


# -- quantize -----------------------------------------------------------------------------


def test_quantize_by_hand_mixed_weights_threshold_bias():
    # Limits on log2(S): threshold 17+6 bits -> 23.0; headroom 24-1-2 -> 21; weights: positive
    # log2(254)+7+6-log2(0.5) = 21.99, negative log2(256)+13+2 = 23; bias log2(4095)+7+2 = 20.9996.
    # So S = 2^20. vth = 2^20/64 = 16384. bias 0.25*2^20 = 262144 = 2048 << 7.
    # Weights times 2^(20-6): 8192, -4096, 2048 -> exponent ceil(log2(8192/254)) = 6 -> 128, -64, 32.
    q = _run_until(_pair(LIF_HAND, W_HAND), "loihi2", "quantize")
    assert isinstance(q, QuantizedNetwork)
    rec = q.population("rec")
    assert rec.scale_exp == 20
    assert rec.params["threshold"] == 16384
    assert (rec.params["bias_mant"], rec.params["bias_exp"]) == (2048, 7)
    assert (rec.params["voltage_decay"], rec.params["current_decay"]) == (200, 741)
    pr = q.projections[0]
    assert pr.sign_mode == "mixed" and pr.weight_exp == 6 and pr.num_weight_bits == 8
    assert pr.weights.tolist() == [[128, -64], [32, 0]]
    np.testing.assert_array_equal(pr.effective(), W_HAND)  # every value here is exact


def test_quantize_excitatory_rounding():
    # S = 2^21 (headroom binds); 0.3 * 2^15 = 9830.4 -> exponent 6 -> 153.6 -> 154 (nearest), 153 (floor)
    net = _pair(nc.LIF(tau_mem_ms=20.0), [[0.3]])
    q = _run_until(net, "loihi2", "quantize")
    pr = q.projections[0]
    assert q.population("rec").scale_exp == 21
    assert (pr.sign_mode, pr.weight_exp, int(pr.weights[0, 0])) == ("excitatory", 6, 154)
    assert int(_run_until(net, "loihi2", "quantize", rounding="floor").projections[0].weights[0, 0]) == 153


def test_mixed_mantissas_are_even_so_lava_truncation_is_a_no_op():
    rng = np.random.default_rng(5)
    net = _pair(nc.LIF(tau_mem_ms=10.0), rng.normal(0, 0.3, (20, 30)))
    w = _run_until(net, "loihi2", "quantize").projections[0].weights
    assert np.all(w % 2 == 0)
    assert np.array_equal((w >> 1) << 1, w)  # Lava's truncate_weights with k = 1


def test_stochastic_rounding_is_seeded():
    rng = np.random.default_rng(1)
    net = _pair(nc.LIF(tau_mem_ms=10.0), rng.uniform(0.01, 0.4, (10, 10)))
    a = _run_until(net, "loihi2", "quantize", rounding="stochastic", seed=3).projections[0].weights
    b = _run_until(net, "loihi2", "quantize", rounding="stochastic", seed=3).projections[0].weights
    c = _run_until(net, "loihi2", "quantize", rounding="stochastic", seed=4).projections[0].weights
    n = _run_until(net, "loihi2", "quantize").projections[0].weights
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.max(np.abs(a.astype(int) - n)) <= 1  # stochastic rounding moves at most one LSB from nearest


def test_quantization_report_rows_and_zeroing_warning():
    # 1.0 sets the exponent; 0.0005 is below half an LSB (2^6 / 2^15 / 2 ~ 0.00098) and becomes 0.
    net = _pair(nc.LIF(tau_mem_ms=20.0), [[1.0, 0.0005, 0.0005]])
    prog = _compile(net)
    st = next(s for s in prog.report.stats if s.param == "weights")
    assert (st.count, st.nonzero, st.zeroed, st.clipped) == (3, 3, 2, 0)
    assert st.max_rel_error == 1.0
    assert any("2 of 3 nonzero weights (66.7%) became 0" in w for w in prog.warnings)
    with pytest.raises(QuantizationError, match="became 0"):
        _compile(net, strict=True)
    assert not any("became 0" in w for w in _compile(net, max_zeroed_fraction=0.7).warnings)


def test_threshold_that_quantizes_to_zero_is_reported():
    # A tiny threshold with a huge weight: S is bound by the weight, vth * S / 64 rounds to 0.
    net = _pair(nc.LIF(tau_mem_ms=20.0, v_th=1e-9), [[1000.0]])
    with pytest.raises(QuantizationError, match="threshold 1e-09 quantizes to 0"):
        _compile(net, strict=True)


def test_float_chip_quantizes_weights_per_channel():
    w = np.array([[0.5, 0.25], [0.01, -0.02]])
    q = _run_until(_pair(nc.LIF(tau_mem_ms=20.0), w), "spinnaker2", "quantize")
    pr = q.projections[0]
    # per post neuron: 0.5/127 -> 2^-7 -> 64, 32; 0.02/128 -> 2^-12 -> 41, -82 (int8 mantissa)
    assert pr.weight_exp.tolist() == [-7, -12]
    assert pr.weights.tolist() == [[64, 32], [41, -82]]
    assert q.population("rec").params["threshold"] == np.float32(1.0)


def test_float_network_is_not_mutated(small_net, tmp_path):
    before = nc.save_network(small_net, tmp_path / "before.yaml")
    q = _run_until(small_net, "spinnaker2", "quantize")
    assert q.source.source is small_net  # the quantized network links back to its float source
    assert nc.load_network(before) == small_net


# -- DRC ------------------------------------------------------------------------------------


def test_drc_lists_every_violation_of_the_example():
    net = nc.load_network(EXAMPLES / "drc_violations.yaml")
    with pytest.raises(DRCError) as info:
        _compile(net)
    rules = [p.message.rsplit("[", 1)[1].rstrip("]") for p in info.value.problems]
    assert sorted(rules) == sorted(
        [
            "reset_mode_supported",
            "refractory_supported",
            "delay_within_limit",
            "fan_in_within_limit",
            "input_rate_within_limit",
        ]
    )
    text = str(info.value)
    assert "fan-in 5019" in text and "limit 4096" in text and "delay 80 steps exceeds loihi2's limit 63" in text


@pytest.mark.parametrize(
    "profile, neuron, weights, kwargs, fragment",
    [
        ("reckon", nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0), [[0.1]], {}, "has no synaptic current"),
        ("reckon", nc.LIF(tau_mem_ms=20.0, bias=0.1), [[0.1]], {}, "reckon has no neuron bias"),
        (
            "xylo",
            nc.LIF(tau_mem_ms=20.0, reset="subtract"),
            [[0.1]],
            {"plasticity": nc.RuleSpec("stdp")},
            "xylo has no on-chip learning",
        ),
        (
            "loihi1",
            nc.LIF(tau_mem_ms=20.0),
            [[0.1]],
            {"plasticity": nc.RuleSpec("eprop")},
            "learning rule 'eprop' cannot run on loihi1",
        ),
        ("loihi2", nc.ALIF(tau_mem_ms=20.0, v_reset=-0.5), [[0.1]], {}, None),  # programmable ALIF may reset anywhere
        ("loihi2", nc.LIF(tau_mem_ms=20.0, v_reset=-0.5), [[0.1]], {}, "resets to 0 exactly"),
    ],
)
def test_drc_rules(profile, neuron, weights, kwargs, fragment):
    net = nc.Network(
        [nc.Population("in", 1, nc.SpikeInput()), nc.Population("rec", 1, neuron)],
        [nc.Projection("in", "rec", np.array(weights), **kwargs)],
    )
    if fragment is None:
        _compile(net, profile)
    else:
        with pytest.raises(DRCError, match=fragment):
            _compile(net, profile)


def test_drc_capacity_and_io_ports():
    net = nc.Network(
        [nc.Population("in", 300, nc.SpikeInput()), nc.Population("rec", 300, nc.LIF(tau_mem_ms=20.0))],
        [nc.Projection("in", "rec", np.eye(300) * 0.1)],
    )
    with pytest.raises(DRCError) as info:
        _compile(net, "reckon")
    text = str(info.value)
    assert "300 input neurons exceed reckon's 256 input channels" in text
    assert "300 neurons exceed reckon's 256" in text


def test_drc_fan_out_counts_every_projection_from_a_population():
    net = nc.Network(
        [
            nc.Population("in", 2, nc.SpikeInput()),
            nc.Population("a", 40, nc.LIF(tau_mem_ms=20.0)),
            nc.Population("b", 40, nc.LIF(tau_mem_ms=20.0)),
        ],
        [nc.Projection("in", "a", np.full((40, 2), 0.1)), nc.Projection("in", "b", np.full((40, 2), 0.1))],
    )
    # xylo's fan-out limit is 64 per neuron: each input neuron reaches 80 neurons over two projections
    with pytest.raises(DRCError, match=r"fan-out 80 \(neuron 0; 2 neurons over\) exceeds xylo limit 64"):
        _compile(net, "xylo")


# -- pass manager ---------------------------------------------------------------------------


def test_pass_log_dump_and_timing(small_net):
    out = io.StringIO()
    net = nc.Network(
        [p for p in small_net.populations if p.name != "rec"],
        [p for p in small_net.projections if "rec" not in (p.pre, p.post)],
    )
    prog = compile(net, "loihi2", out=out, dump_ir_after=("discretize", "partition"), time_passes=True)
    text = out.getvalue()
    assert "// ----- IR after discretize -----" in text and "// ----- IR after partition -----" in text
    assert "IR after quantize" not in text
    assert [r["name"] for r in prog.pass_log] == [p.name for p in PIPELINE]
    for p in PIPELINE:
        assert p.name in text.split("IR after partition")[-1]  # the timing table lists every pass


def test_unknown_option_values_are_rejected():
    with pytest.raises(CompileError, match="unknown pass 'quantise'"):
        CompileOptions(dump_ir_after=("quantise",))
    with pytest.raises(CompileError, match="dt_ms: must be > 0"):
        CompileOptions(dt_ms=0.0)


def test_energy_estimate_by_hand():
    # 10 LIF neurons, one dense excitatory 10x5 projection from a 20 Hz input, 1 ms steps:
    # 10 updates x 52 pJ + (50 synapses x 0.02 spikes) x 23.6 pJ + (5 inputs x 0.02) x 1.7 pJ
    net = nc.Network(
        [
            nc.Population("in", 5, nc.SpikeInput(rate_hz=20.0, seed=0)),
            nc.Population("rec", 10, nc.LIF(tau_mem_ms=20.0)),
        ],
        [nc.Projection("in", "rec", np.full((10, 5), 0.1))],
    )
    pl = _compile(net).placement
    assert pl.energy_pj_per_step == pytest.approx(10 * 52.0 + 50 * 0.02 * 23.6 + 5 * 0.02 * 1.7, rel=1e-12)
