"""The gated theta network on a chip: spinnaker2 compiles GatedTheta and the emulator runs the
Program; it equals the float32 reference with the chip's weights bit for bit. And e-prop's two
traces as a sum-of-products rule need five graded post factors (why the engine's rule is reduced)."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pytest

from neurocomp.analysis.deploy import chip_model
from neurocomp.compiler import compile
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator
from neurocomp.emulator.emulator import EmulatorError
from neurocomp.emulator.gated import GatedEmulator
from neurocomp.graph import load_network
from neurocomp.reference.gated import gate

from .conftest import ROOT
from .test_gated import _small

EXAMPLE = ROOT / "examples" / "gated_delayed_xor.yaml"


def _net(tmp_path, **edits):
    """The example with a random readout (its shipped one is zero) and ``edits`` to its text."""
    text = EXAMPLE.read_text().replace("init: constant, value: 0.0, seed: 3", "init: normal, std: 2.0, seed: 3")
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "net.yaml"
    path.write_text(text)
    return load_network(path)


def test_spinnaker2_compiles_the_step_constants_in_float32(tmp_path):
    prog = compile(_net(tmp_path), "spinnaker2", out=io.StringIO())
    q = prog.population("rec")
    # the example's tau_v 20 ms, tau_s 50 ms, width 1 rad, I0 -0.1 at dt 1 ms, each rounded once to float32
    alpha = math.exp(-1 / 50)
    want = {"eps": 1 / 20, "alpha": alpha, "beta": 1 - alpha, "width": 1.0, "bias": -0.1,
            "theta0": -math.acos(0.9 / 1.1)}  # fmt: skip
    assert q.model == "GatedTheta" and q.params["zone_shape"] == "cosine"
    for k, v in want.items():
        assert q.params[k] == float(np.float32(v)), k
    prog.save(tmp_path / "p")
    back = Program.load(tmp_path / "p")
    assert back.population("rec").params == q.params and back == prog


def test_the_widest_gate_survives_a_save(tmp_path):
    """A width of 2 pi (the graph's limit) rounds up in float32; the saved Program still loads."""
    prog = compile(_net(tmp_path, **{"zone_width_rad: 1.0": f"zone_width_rad: {2 * math.pi!r}"}), "spinnaker2",
                   out=io.StringIO())  # fmt: skip
    assert prog.population("rec").params["width"] > 2 * math.pi
    prog.save(tmp_path / "p")
    assert Program.load(tmp_path / "p") == prog


def test_emulator_equals_the_float32_reference_with_the_chip_weights(tmp_path):
    net = _net(tmp_path)
    fm, qm, prog = chip_model(net, "spinnaker2")
    assert np.any(qm.W_rec != fm.W_rec)  # int8 weights: the Program's, not the float ones
    x = np.random.default_rng(5).standard_normal((240, 3, 2)) * 2.0
    emu = Emulator(prog, batch=3)
    assert isinstance(emu, GatedEmulator)
    rec = ("theta", "s", "I", "spikes", "v")
    parts = [emu.run(100, {"in": x[:100]}, record=rec), emu.run(140, {"in": x[100:]}, record=rec)]
    got = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    tr = replace(qm, dtype=np.float32).forward(x)
    assert tr.spikes.sum() > 50  # the neurons pass the zone: gate and charge are exercised
    # exact: one kernel (kernels/gated.py) in float32 on the same weights, constants and
    # inputs, so every operation is the same in the same order, also across the two runs
    np.testing.assert_array_equal(got["rec/theta"], tr.theta[1:])
    np.testing.assert_array_equal(got["rec/s"], tr.s[1:])
    np.testing.assert_array_equal(got["rec/I"], tr.I)
    np.testing.assert_array_equal(got["rec/spikes"], tr.spikes)
    np.testing.assert_array_equal(got["out/v"], tr.y)
    emu.reset()
    again = emu.run(240, {"in": x}, record=["v"])["out/v"]
    np.testing.assert_array_equal(again, tr.y)  # reset: the same bits from the start


def test_emulator_refuses_by_name(tmp_path):
    prog = compile(_net(tmp_path), "spinnaker2", out=io.StringIO())
    emu = Emulator(prog, batch=2)
    with pytest.raises(EmulatorError, match=r"inputs\['in'\]: missing"):
        emu.run(5, {})
    with pytest.raises(EmulatorError, match=r"inputs\['in'\]: expected finite currents \[5, 2, 2\]"):
        emu.run(5, {"in": np.full((5, 2), np.nan)})
    with pytest.raises(EmulatorError, match="cannot record \\['u'\\]"):
        emu.run(5, {"in": np.zeros((5, 2))}, record=["u"])
    for call in (emu.checkpoint, emu.weights_at_edge, lambda: emu.get_weights("rec->rec"), lambda: emu.restore(None)):
        with pytest.raises(EmulatorError, match="not available for a gated network"):
            call()
    assert emu.reckon_core is None
    with pytest.raises(EmulatorError, match=r"strict: spinnaker2.s GatedTheta neuron is float32, with no register"):
        Emulator(prog, strict=True)
    delayed = _net(tmp_path, **{"exclude_self: true}}": "exclude_self: true}, delay_steps: 2}"})
    with pytest.raises(EmulatorError, match="projection 'rec->rec': delays"):
        Emulator(compile(delayed, "spinnaker2", out=io.StringIO()))


def test_eprop_as_an_engine_rule_needs_five_post_factors():
    # e-prop's two traces as a sum-of-products rule (phase trace in tag t, charge trace in tag
    # d; why GatedNet.engine_rule reduces it to three post factors): run that rule step by step,
    # tags updated from their old values as the engine does, and it gives GatedNet.eprop's gradient
    net, x, tg = _small()
    tr = net.forward(x)
    dy, _ = net.error(tr.y, tg)
    ybar, acc = np.empty_like(dy), np.zeros(dy.shape[1:])  # the readout's adjoint through its leak (oracle)
    for t in range(dy.shape[0] - 1, -1, -1):
        acc = dy[t] + net.kappa * acc
        ybar[t] = acc
    y3 = (1 - net.kappa) * ybar @ net.W_out
    beta = (1 - net.alpha) / net.dt_ms
    pre = np.concatenate([tr.x, tr.s[:-1]], axis=2)[:, :, None, :]  # x1 [T, batch, 1, pre]
    tag_t = np.zeros((x.shape[1], net.n_rec, pre.shape[3]))
    tag_d, dw = np.zeros_like(tag_t), np.zeros(tag_t.shape[1:])
    for t in range(x.shape[0]):
        th, g, g2 = tr.theta[t], gate(tr.theta[t], net.width, "cosine"), gate(tr.theta[t + 1], net.width, "cosine")
        jac = 1 + net.eps * np.sin(th) * (1 - tr.I[t])
        b = net.eps * (1 + np.cos(th))
        f = [jac - 1, b, beta * (g2 * jac - g), beta * g2 * b, y3[t]]  # the five post factors
        f = [v[:, :, None] for v in f]
        d_t = f[0] * tag_t + f[1] * pre[t]
        d_d = -(1 - net.alpha)[:, None] * tag_d + f[2] * tag_t + f[3] * pre[t]
        tag_t, tag_d = tag_t + d_t, tag_d + d_d
        dw += np.einsum("bnp,bnp->np", f[4], tag_d)
    ep = net.eprop(tr, tg)
    # float64 sums in another order: 1e-9 relative
    np.testing.assert_allclose(dw[:, : net.n_in], ep["W_in"], rtol=1e-9, atol=1e-12 * np.abs(ep["W_in"]).max())
    np.testing.assert_allclose(dw[:, net.n_in :], ep["W_rec"], rtol=1e-9, atol=1e-12 * np.abs(ep["W_rec"]).max())
