"""The fused learning run (neurocomp/emulator/fused.py, neurocomp/kernels/trial.py: a
Program's whole learning run in one compiled call) against the step-by-step path, bit for
bit: recordings, every learning state (weights, tags, traces, spike times), the random
streams' states, the neurons' states and the rate traces, over consecutive runs (one that
ends mid-epoch), batches (trials on threads), round to nearest, the float learning
arithmetic (lowered-float) and each attribution knob (a quantity in float64). The step-by-step path is
itself held to Lava (test_lava_learning) and to the engine's numpy form (test_learning_kernels)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator, fused
from neurocomp.graph.io import load_network
from neurocomp.tasks import make

ROOT = Path(__file__).resolve().parents[1]


def _eprop_program():
    net = load_network(ROOT / "examples" / "eprop_pattern.yaml")  # 20 in, 30 LIF, 1 readout, rate regularization off
    return nc.compile(net, "loihi2", out=io.StringIO())


def _spiking_program():
    """Pair STDP on a dense projection; a custom rule with tags, decimated ``u`` products and
    4-step epochs on a sparse (masked) recurrent one; a rule reading a graded input ``y2``."""
    net = nc.Network(name="stdp-fused")
    net.add(nc.Population("in", 40, nc.SpikeInput()))
    net.add(nc.Population("exc", 30, nc.LIF(tau_mem_ms=10.0, tau_syn_ms=1.0, v_th=1.0, reset="zero")))
    net.add(nc.Population("side", 10, nc.LIF(tau_mem_ms=10.0, v_th=1.0, reset="zero")))
    rng = np.random.default_rng(0)
    params = {"lr": 0.01, "a_plus": 1.0, "a_minus": 1.2, "tau_plus_ms": 20.0, "tau_minus_ms": 15.0}
    dense = rng.uniform(0.0, 0.08, (30, 40))
    net.add(nc.Projection("in", "exc", dense, sign_mode="excitatory", plasticity=nc.RuleSpec("stdp", params)))
    spec = {"init": "uniform", "low": -0.1, "high": 0.1, "seed": 2, "density": 0.3, "format": "sparse"}
    traces = {"x1": {"impulse": 20, "tau": 8}, "x2": {"impulse": 9, "tau": 3}, "y1": {"impulse": 14, "tau": 6}}
    tags = {"dw": "2^-2*x1*y0 - 2^-2*y1*x0 + 2^-5*u1*t", "dt": "y0*x1 - x0*x2 - 2^-2*u1*t", "dd": "2^-3*y0*x2",
            "traces": traces, "t_epoch": 4}  # fmt: skip
    net.add(
        nc.Projection(
            "exc", "exc", nc.init_weights(spec, 30, 30, recurrent=True), plasticity=nc.RuleSpec("custom", tags)
        )
    )
    graded = {"dw": "2^-2*x1*y2*u0 - 2^-4*x0*y2", "traces": traces, "post_traces": "graded",
              "graded": {"y2": {"source": "input"}}}  # fmt: skip
    net.add(nc.Projection("in", "side", rng.uniform(0.0, 0.1, (10, 40)), plasticity=nc.RuleSpec("custom", graded)))
    return nc.compile(net, "loihi2", out=io.StringIO())


def _runs(prog, monkeypatch, enabled: bool, batch: int, trials, record, **kw):
    """``trials``: a list of (inputs, steps); each a run after ``reset(keep_weights=True)``."""
    monkeypatch.setattr(fused, "ENABLED", enabled)
    emu = Emulator(prog, batch=batch, seed=3, **kw)
    recs = []
    for inputs, steps, keep in trials:
        if keep:
            emu.reset(keep_weights=True)
        recs.append(emu.run(steps, inputs=inputs, record=record, learn=True))
    assert (getattr(emu, "_fused_learning", None) is not None) == enabled  # the path under test ran
    learning = {n: s.engine.get_state() for n, s in emu.plastic.items()}
    traces = {n: dict(s.neuron_traces) for n, s in emu.plastic.items()}
    return recs, learning, traces, emu.state


def _assert_same(a, b) -> None:
    recs_a, learn_a, traces_a, state_a = a
    recs_b, learn_b, traces_b, state_b = b
    for ra, rb in zip(recs_a, recs_b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            np.testing.assert_array_equal(ra[k], rb[k], err_msg=k)
    for name in learn_a:
        arrays_a, rngs_a = learn_a[name]
        arrays_b, rngs_b = learn_b[name]
        for k in arrays_a:
            np.testing.assert_array_equal(arrays_a[k], arrays_b[k], err_msg=f"{name}/{k}")
            assert arrays_a[k].dtype == arrays_b[k].dtype
        assert repr(rngs_a) == repr(rngs_b)  # the random streams stand at the same draw
        for k in traces_a[name]:
            np.testing.assert_array_equal(traces_a[name][k], traces_b[name][k], err_msg=f"{name} trace {k}")
    for k in state_a:
        np.testing.assert_array_equal(state_a[k], state_b[k], err_msg=k)


@pytest.mark.parametrize(
    "batch, knobs",
    [
        (1, {}),
        (2, {"learn_rounding": "nearest"}),
        # lowered-float: the same generated trial in float64, the same operations in the same
        # order as step by step, so equal bit for bit too (no tolerance)
        (1, {"learn_arithmetic": "float"}),
        (2, {"learn_arithmetic": "float"}),
        # the attribution rows: one quantity in float64, the rest the chip's
        *[(1, {"learn_float": (q,)}) for q in ("weights", "traces", "graded", "tags", "products")],
        (2, {"learn_float": ("graded",), "learn_rounding": "nearest"}),
    ],
)
def test_eprop_fused_equals_step_by_step(monkeypatch, batch, knobs):
    prog = _eprop_program()
    tk = make("pattern-generation", seed=0, n_in=20, n_out=1, n_rec=30, steps=150)
    x, tg = np.asarray(tk.inputs), np.asarray(tk.targets)
    x = np.concatenate([x, x[::-1]], axis=1)[:, :batch]  # a second trial with other spikes
    tg = np.repeat(tg, batch, axis=1)
    tg[100:110, -1] = np.nan  # steps without a target in the last trial: errors of 0
    inputs = {"in": x, "out.error/target": tg}
    trials = [(inputs, 150, False), (inputs, 150, True), ({k: v[:70] for k, v in inputs.items()}, 70, True)]
    step = _runs(prog, monkeypatch, False, batch, trials, ["v", "u", "spikes"], **knobs)
    fast = _runs(prog, monkeypatch, True, batch, trials, ["v", "u", "spikes"], **knobs)
    _assert_same(step, fast)
    w0 = prog.projection("rec->out").weights
    assert not np.array_equal(fast[1]["rec->out"][0]["w"][0], w0)  # it learned


def test_spiking_rules_fused_equal_step_by_step(monkeypatch):
    prog = _spiking_program()
    rng = np.random.default_rng(1)
    raster = (rng.random((130, 40)) < 0.15).astype(np.uint8)
    y2 = rng.integers(-20, 20, (130, 10)).astype(np.float64)
    inputs = {"in": raster, "in->side/y2": y2}
    # 97 steps then 33: the first run ends mid-epoch (the custom rule's epochs are 4 steps)
    trials = [({k: v[:97] for k, v in inputs.items()}, 97, False), ({k: v[97:] for k, v in inputs.items()}, 33, False)]
    step = _runs(prog, monkeypatch, False, 1, trials, ["spikes", "v"])
    fast = _runs(prog, monkeypatch, True, 1, trials, ["spikes", "v"])
    _assert_same(step, fast)
    assert fast[0][0]["exc/spikes"].any()  # the post neurons fire: y0 products ran
    assert not np.array_equal(fast[1]["exc->exc"][0]["t"], 0)  # the tags moved


def test_what_the_fused_run_does_not_take_runs_step_by_step(monkeypatch):
    """A run the fused kernel does not take (here: a recorded learning variable) goes step by step."""
    emu = Emulator(_eprop_program(), learn_float=("tags",))
    tk = make("pattern-generation", seed=0, n_in=20, n_out=1, n_rec=30, steps=20)
    emu.run(20, inputs={"in": tk.inputs, "out.error/target": tk.targets[:, 0, :]}, record=["w"], learn=True)
    assert getattr(emu, "_fused_learning", None) is None
