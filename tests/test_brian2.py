"""The Brian2 backend against the float64 reference, and the fixed-point emulator against
Brian2's float rates. Every test runs real Brian2 (numpy code generation).

Tolerances. The reference and Brian2 compute the same float64 steps, but Brian2 forms its
decays from times in seconds (``exp(-0.001 s / 0.02 s)`` against ``exp(-1 ms / 20 ms)``,
which may differ in the last bit) and sums synaptic input in another order, so the two
differ by rounding: about 1e-15 relative per step, measured below 1e-13 after 500 steps.
States must agree to 1e-9 relative (of ``max(|value|, v_th)``: the threshold is the voltage
scale), weights to 1e-9. A spike can differ only where a membrane lies within 1e-9 of its
threshold; the comparison finds the first step at which any neuron in either run is that
close, excludes those neurons at that step, and stops comparing after it (from then on the
runs may rightly part).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.analysis.rates import rate_report
from neurocomp.backends import BackendError
from neurocomp.emulator import Emulator
from neurocomp.reference import Conventions, Reference

b2 = pytest.importorskip("brian2")
from neurocomp.backends.brian2 import Brian2Backend  # noqa: E402

pytestmark = pytest.mark.brian2

CHIP, BELLEC = Conventions.chip(), Conventions.bellec()
NEAR = 1e-9  # a membrane this close to its threshold may spike in one run and not the other
REL = 1e-9
RECORD = ["spikes", "v", "u", "a", "v_pre", "th_pre"]


def compare(ref: dict, other: dict, net: nc.Network) -> int:
    """Assert that two recordings agree (see the module docstring); returns the number of
    steps compared in full (all of them unless some membrane came within NEAR of threshold)."""
    steps = next(iter(ref.values())).shape[0]
    spiking = [p for p in net.populations if isinstance(p.neuron, nc.LIF)]
    near = {}
    for p in spiking:
        th = np.abs(ref[f"{p.name}/th_pre"])
        near[p.name] = (np.abs(ref[f"{p.name}/v_pre"] - ref[f"{p.name}/th_pre"]) < NEAR * th) | (
            np.abs(other[f"{p.name}/v_pre"] - other[f"{p.name}/th_pre"]) < NEAR * th
        )
    any_near = np.zeros(steps, bool)
    for m in near.values():
        any_near |= m.any(axis=(1, 2))
    stop = int(any_near.argmax()) if any_near.any() else steps
    for p in spiking:
        r, o = ref[f"{p.name}/spikes"], other[f"{p.name}/spikes"]
        assert np.array_equal(r[:stop], o[:stop]), f"{p.name}: spikes differ before step {stop + 1}"
        if stop < steps:  # the near-threshold step: every other neuron must still agree
            keep = ~near[p.name][stop]
            assert np.array_equal(r[stop][keep], o[stop][keep]), f"{p.name}: spikes differ at step {stop + 1}"
    for key, r in ref.items():
        name, var = key.split("/")
        if var == "spikes" or key not in other:
            continue
        pop = net.population(name)
        scale = np.maximum(np.abs(r[:stop]), getattr(pop.neuron, "v_th", 1.0))
        err = np.abs(other[key][:stop] - r[:stop]) / scale
        assert err.max(initial=0.0) <= REL, f"{key}: relative error {err.max():.3g} > {REL:g}"
    return stop


def _inputs(n: int, steps: int, rate: float, seed: int, batch: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, batch, n)) < rate).astype(np.float64)


def lif5(gain: float = 1.0) -> nc.Network:
    """5 LIF neurons, delta synapses, subtractive reset, bias, dense recurrent weights (times ``gain``)."""
    rng = np.random.default_rng(1)
    net = nc.Network(name="lif5")
    net.add(
        nc.Population("in", 8, nc.SpikeInput()),
        nc.Population("rec", 5, nc.LIF(tau_mem_ms=20.0, v_th=0.7, reset="subtract", bias=0.01)),
    )
    net.add(
        nc.Projection("in", "rec", gain * rng.normal(0.3, 0.3, (5, 8))),
        nc.Projection("rec", "rec", gain * rng.normal(0.0, 0.3, (5, 5))),
    )
    return net


def lif50(gain: float = 1.0) -> nc.Network:
    """50 current-based LIF (zero reset, 3 refractory steps), sparse recurrent weights with
    per-synapse delays 0..4, and a current-based leaky readout (weights times ``gain``)."""
    rng = np.random.default_rng(2)
    sparse = nc.init_weights(
        {"init": "normal", "std": 0.25 * gain, "seed": 5, "density": 0.2, "format": "sparse", "exclude_self": True},
        50,
        50,
        True,
    )
    net = nc.Network(name="lif50")
    net.add(
        nc.Population("in", 20, nc.SpikeInput()),
        nc.Population("rec", 50, nc.LIF(tau_mem_ms=15.0, tau_syn_ms=4.0, v_th=1.0, reset="zero", refractory_steps=3)),
        nc.Population("out", 3, nc.LI(tau_mem_ms=20.0, tau_syn_ms=5.0)),
    )
    net.add(
        nc.Projection("in", "rec", gain * rng.normal(0.12, 0.3, (50, 20))),
        nc.Projection("rec", "rec", sparse, delay_steps=rng.integers(0, 5, sparse.nnz)),
        nc.Projection("rec", "out", gain * rng.normal(0.0, 0.2, (3, 50)), delay_steps=2),
    )
    return net


def alif200(gain: float = 1.0) -> nc.Network:
    """100 LIF + 100 ALIF (an LSNN: subtractive reset, 2 refractory steps), sparse recurrent
    projections between them with delays, and a leaky readout (weights times ``gain``)."""
    rng = np.random.default_rng(3)
    net = nc.Network(name="alif200")
    lif = nc.LIF(tau_mem_ms=20.0, v_th=0.6, reset="subtract", refractory_steps=2)
    alif = nc.ALIF(tau_mem_ms=20.0, v_th=0.6, reset="subtract", refractory_steps=2, tau_adapt_ms=200.0, beta=0.05)
    net.add(
        nc.Population("in", 40, nc.SpikeInput()),
        nc.Population("lif", 100, lif),
        nc.Population("alif", 100, alif),
        nc.Population("out", 2, nc.LI(tau_mem_ms=20.0)),
    )

    def sparse(seed, n_post, n_pre, recurrent=False):
        spec = {"init": "normal", "std": 0.15 * gain, "seed": seed, "density": 0.15, "format": "sparse"}
        return nc.init_weights({**spec, "exclude_self": recurrent}, n_post, n_pre, recurrent)

    net.add(
        nc.Projection("in", "lif", gain * rng.normal(0.06, 0.2, (100, 40))),
        nc.Projection("in", "alif", gain * rng.normal(0.06, 0.2, (100, 40))),
        nc.Projection("lif", "lif", sparse(1, 100, 100, True)),
        nc.Projection("lif", "alif", sparse(2, 100, 100), delay_steps=1),
        nc.Projection("alif", "lif", sparse(3, 100, 100), delay_steps=3),
        nc.Projection("alif", "alif", sparse(4, 100, 100, True)),
        nc.Projection("lif", "out", gain * rng.normal(0, 0.1, (2, 100))),
        nc.Projection("alif", "out", gain * rng.normal(0, 0.1, (2, 100))),
    )
    return net


BELLEC_GAIN = 1 / (1 - math.exp(-1 / 20))  # Bellec scales inputs by 1 - alpha; this undoes it (tau_mem 20 ms)


@pytest.mark.parametrize(
    "build, conv, batch",
    [(lif5, CHIP, 1), (lif50, CHIP, 2), (lif50, BELLEC, 1), (alif200, CHIP, 1), (alif200, BELLEC, 2)],
    ids=["lif5-chip", "lif50-chip-batch2", "lif50-bellec", "alif200-chip", "alif200-bellec-batch2"],
)
def test_deterministic_networks_match_the_reference(build, conv, batch):
    """500 steps of fixed input spikes: identical spikes (near-threshold steps excluded, see
    the module docstring), states to 1e-9 relative."""
    net = build(BELLEC_GAIN if conv is BELLEC else 1.0)
    steps = 500
    x = _inputs(net.population("in").size, steps, 0.02, seed=7, batch=batch)
    ref = Reference(net, 1.0, conv, batch=batch).run(steps, inputs={"in": x}, record=RECORD)
    got = Brian2Backend(net, 1.0, conv).run(steps, inputs={"in": x}, record=RECORD, batch=batch)
    assert sorted(got) == sorted(ref) and all(got[k].shape == ref[k].shape for k in ref)
    compared = compare(ref, got, net)
    assert compared == steps, f"a membrane came within {NEAR:g} of threshold at step {compared + 1}"
    rates = {p.name: float(ref[f"{p.name}/spikes"].mean()) for p in net.populations if isinstance(p.neuron, nc.LIF)}
    assert all(0.01 < r < 0.3 for r in rates.values()), rates  # spikes per neuron and step


def test_near_threshold_is_detected_and_excluded():
    """A membrane exactly at its threshold (v = w = v_th; no spike: the test is strict) is
    found, and the comparison stops there."""
    net = nc.Network(name="tie")
    net.add(nc.Population("in", 1, nc.SpikeInput()), nc.Population("n", 1, nc.LIF(tau_mem_ms=10.0, v_th=0.5)))
    net.add(nc.Projection("in", "n", np.array([[0.5]])))
    x = np.zeros((6, 1))
    x[2] = 1
    ref = Reference(net).run(6, inputs={"in": x}, record=RECORD)
    got = Brian2Backend(net).run(6, inputs={"in": x}, record=RECORD)
    assert ref["n/v_pre"][3, 0, 0] == 0.5 and not ref["n/spikes"].any()
    assert compare(ref, got, net) == 3  # the tie at step 4 (index 3)


@pytest.mark.parametrize("conv", [CHIP, BELLEC], ids=["chip", "bellec"])
def test_stdp_weight_trajectories(conv):
    """Pair STDP on a small network (a sparse input projection with a delay, a dense recurrent
    one), two trials learning their own weights: weights to 1e-9 at every step."""
    rng = np.random.default_rng(4)
    net = nc.Network(name="stdp")
    net.add(
        nc.Population("in", 20, nc.SpikeInput(rate_hz=30.0, seed=3)),
        nc.Population("n", 8, nc.LIF(tau_mem_ms=10.0, tau_syn_ms=5.0, v_th=1.0, reset="zero")),
    )
    stdp = {"lr": 0.01, "a_plus": 1.0, "a_minus": 1.1, "tau_plus_ms": 15.0, "tau_minus_ms": 25.0}
    w_in = nc.init_weights(
        {"init": "uniform", "low": 0, "high": 0.8, "density": 0.6, "format": "sparse", "seed": 2}, 8, 20
    )
    net.add(
        nc.Projection("in", "n", w_in, delay_steps=2, plasticity=nc.RuleSpec("stdp", stdp)),
        nc.Projection("n", "n", rng.normal(0, 0.3, (8, 8)), plasticity=nc.RuleSpec("stdp", {"lr": 0.005})),
    )
    steps = 500
    ref = Reference(net, 1.0, conv, batch=2).run(steps, record=["spikes", "w"], learn=True)
    got = Brian2Backend(net, 1.0, conv).run(steps, record=["spikes", "w"], batch=2, learn=True)
    assert ref["n/spikes"].sum() > 50
    for key in ("in->n/w", "n->n/w"):
        assert got[key].shape == ref[key].shape == (steps, 2) + net.projection(key[:-2]).shape
        assert np.abs(ref[key][-1] - ref[key][0]).max() > 0.02  # the weights did move
        assert np.abs(got[key] - ref[key]).max() <= 1e-9, key
    assert np.array_equal(got["n/spikes"], ref["n/spikes"])


# -- the quantization view -----------------------------------------------------------------


def standard_ei(seed: int = 0) -> nc.Network:
    """The standard network of the quantization view: 100 Poisson inputs (10 Hz) drive 400
    excitatory and 100 inhibitory current-based LIF neurons (10% sparse, delays 1-2 steps),
    which fire at about 15 and 40 Hz."""

    def sparse(lo, hi, s, n_post, n_pre, recurrent=False):
        spec = {"init": "uniform", "low": lo, "high": hi, "density": 0.1, "format": "sparse", "seed": seed + s}
        return nc.init_weights({**spec, "exclude_self": recurrent}, n_post, n_pre, recurrent)

    net = nc.Network(name="standard-ei")
    net.add(
        nc.Population("in", 100, nc.SpikeInput(rate_hz=10.0, seed=seed + 1)),
        nc.Population("exc", 400, nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=1.0, reset="zero")),
        nc.Population("inh", 100, nc.LIF(tau_mem_ms=10.0, tau_syn_ms=5.0, v_th=1.0, reset="zero")),
    )
    net.add(
        nc.Projection("in", "exc", sparse(0, 0.25, 2, 400, 100), sign_mode="excitatory"),
        nc.Projection("in", "inh", sparse(0, 0.25, 3, 100, 100), sign_mode="excitatory"),
        nc.Projection("exc", "exc", sparse(0, 0.05, 4, 400, 400, True), sign_mode="excitatory", delay_steps=1),
        nc.Projection("exc", "inh", sparse(0, 0.08, 5, 100, 400), sign_mode="excitatory", delay_steps=1),
        nc.Projection("inh", "exc", sparse(-0.25, 0, 6, 400, 100), sign_mode="inhibitory", delay_steps=2),
        nc.Projection("inh", "inh", sparse(-0.2, 0, 7, 100, 100, True), sign_mode="inhibitory", delay_steps=2),
    )
    return net


def test_quantization_view_loihi2_rates_within_bound():
    """The loihi2 Program's emulated rates against Brian2's float rates, per population.

    Bound: the mean rate of every population within 10%, and the neurons' rates correlated
    above 0.95. Measured on seeds 0-3: 0.3-4.9% (exc) and below 1% (inh), correlation
    0.98-0.99. The drift comes from 8-bit weights, 12-bit decays truncated toward zero each
    step, and the membrane saturating at -4 v_th under inhibition (the compiler leaves 2
    bits above the threshold); the float runs agree with each other exactly."""
    net = standard_ei()
    prog = nc.compile(net, "loihi2", out=io.StringIO())
    steps = 1000
    emu = Emulator(prog).run(steps, record=["spikes"])
    conv = Conventions.chip(prog.profile)
    got = Brian2Backend(net, prog.dt_ms, conv).run(steps, record=["spikes"])
    report = rate_report(emu, got, prog.dt_ms, labels=("emulator", "brian2"))
    print(report)
    assert [r.population for r in report.rows] == ["in", "exc", "inh"]
    assert report.row("in").rel_error == 0  # the same frozen Poisson spikes
    for pop in ("exc", "inh"):
        r = report.row(pop)
        assert 5 < r.rate_b_hz < 100, r
        assert r.rel_error <= 0.10, report.format()
        assert r.neuron_correlation > 0.95, report.format()


def test_rate_report_numbers():
    """Hand-checked rates, errors and the table."""
    a = {"p/spikes": np.zeros((100, 2, 2)), "q/spikes": np.zeros((100, 2, 1))}
    b = {"p/spikes": np.zeros((100, 2, 2)), "q/spikes": np.zeros((100, 2, 1))}
    a["p/spikes"][:10, :, 0] = 1  # neuron 0: 10 spikes in 100 ms = 100 Hz; neuron 1 silent
    b["p/spikes"][:5, :, 0] = 1  # 50 Hz
    b["p/spikes"][:5, :, 1] = 1
    rep = rate_report(a, b, dt_ms=1.0, labels=("x", "y"))
    assert [r.population for r in rep.rows] == ["p"]  # q never spiked
    r = rep.row("p")
    assert (r.rate_a_hz, r.rate_b_hz, r.abs_error_hz, r.rel_error) == (50.0, 50.0, 0.0, 0.0)
    assert r.neuron_max_error_hz == 50.0 and math.isclose(r.neuron_rms_error_hz, 50.0)
    assert "p" in rep.format() and rep.max_rel_error == 0.0
    with pytest.raises(ValueError, match="population 'p'"):
        rate_report(a, {"p/spikes": np.zeros((50, 2, 2))}, 1.0)


# -- API, refusals, Brian2's global state, CLI ----------------------------------------------


def test_refusals_name_the_construct():
    net = nc.Network(name="bad")
    net.add(
        nc.Population("in", 2, nc.SpikeInput()),
        nc.Population("a", 2, nc.LIF(tau_mem_ms=10.0)),
        nc.Population("b", 2, nc.LIF(tau_mem_ms=10.0)),
    )
    net.add(
        nc.Projection("in", "a", np.ones((2, 2)), plasticity=nc.RuleSpec("rstdp", {"lr": 0.1, "lr_reward": 1.0})),
        nc.Projection("a", "b", np.ones((2, 2)), delay_steps=np.array([[0, 1], [1, 1]])),
        nc.Projection(
            "b", "a", np.ones((2, 2)), plasticity=nc.RuleSpec("stdp", {"lr": 0.1}), delay_steps=np.ones((2, 2), int)
        ),
    )
    with pytest.raises(BackendError, match=r"projection 'a->b'.*total delay 0"):
        Brian2Backend(net, conventions=Conventions(recurrent_latency=0))
    backend = Brian2Backend(net)
    with pytest.raises(BackendError) as exc:
        backend.run(5, inputs={"in": np.zeros((5, 2))}, learn=True)
    text = str(exc.value)
    assert (
        "projection 'in->a': rule 'rstdp'" in text
        and "projection 'b->a': a plastic projection with per-synapse" in text
    )
    with pytest.raises(BackendError, match="variable 'x' cannot be recorded"):
        backend.run(5, inputs={"in": np.zeros((5, 2))}, record=["x"])
    with pytest.raises(BackendError, match=r"input 'in'.*0 or 1 per step"):
        backend.run(2, inputs={"in": np.full((2, 2), 2.0)})
    with pytest.raises(BackendError, match="codegen 'c\\+\\+'"):
        Brian2Backend(net, codegen="c++")


def test_missing_brian2_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "brian2", None)  # makes `import brian2` raise ImportError
    from neurocomp.backends import BackendUnavailable

    with pytest.raises(BackendUnavailable, match=r"pip install 'neurocomp\[brian2\]'"):
        Brian2Backend(lif5())


def test_no_global_state_leaks():
    """An explicit Network and Clock: defaultclock, the magic network and the codegen target
    preference are as before; two runs of one backend give the same result."""
    dt_before, target_before = b2.defaultclock.dt, b2.prefs.codegen.target
    net = lif5()
    x = _inputs(8, 50, 0.1, seed=1)
    backend = Brian2Backend(net, dt_ms=0.5)
    first = backend.run(50, inputs={"in": x}, record=["v"])
    second = backend.run(50, inputs={"in": x}, record=["v"])
    assert np.array_equal(first["rec/v"], second["rec/v"])
    assert b2.defaultclock.dt == dt_before and b2.prefs.codegen.target == target_before
    assert len(b2.magic_network.objects) == 0
    assert set(backend.timings) == {"build_s", "run_s"}
    ref = Reference(net, dt_ms=0.5).run(50, inputs={"in": x}, record=["v"])
    np.testing.assert_allclose(first["rec/v"], ref["rec/v"], rtol=1e-9, atol=1e-12)


def test_cli_run_model_on_brian2(tmp_path):
    from neurocomp.cli import main

    net = lif5()
    model = tmp_path / "lif5.yaml"
    nc.save_network(net, model)
    x = _inputs(8, 40, 0.1, seed=2)
    np.savez(tmp_path / "in.npz", **{"in/spikes": x})
    out = tmp_path / "rec.npz"
    args = ["run", str(model), "--backend", "brian2", "--steps", "40", "--input", str(tmp_path / "in.npz")]
    assert main(args + ["--record", "spikes,v", "--out", str(out)]) == 0
    ref = Reference(net).run(40, inputs={"in": x}, record=["spikes", "v"])
    with np.load(out) as rec:
        assert np.array_equal(rec["rec/spikes"], ref["rec/spikes"])
        np.testing.assert_allclose(rec["rec/v"], ref["rec/v"], rtol=1e-9, atol=1e-12)
    assert main(["run", str(tmp_path / "x.ncp"), "--backend", "brian2", "--steps", "5", "--out", str(out)]) == 2


@pytest.mark.slow
def test_cython_codegen_matches_numpy():
    """Brian2's cython target (compiled on first use, then cached) gives the numpy target's run."""
    net = lif50()
    x = _inputs(20, 200, 0.05, seed=3)
    a = Brian2Backend(net, codegen="numpy").run(200, inputs={"in": x}, record=["spikes", "v"])
    b = Brian2Backend(net, codegen="cython").run(200, inputs={"in": x}, record=["spikes", "v"])
    assert np.array_equal(a["rec/spikes"], b["rec/spikes"])
    np.testing.assert_allclose(a["rec/v"], b["rec/v"], rtol=1e-12, atol=1e-14)
