"""The float64 reference simulator (neurocomp.reference.Reference).

Trajectories of one- and two-neuron networks are written out by hand from the equations of
each convention (chip and Bellec); delays, batches, STDP/R-STDP and the refusals are checked
directly; and the chip conventions are compared with the emulator's float32 path on a
SpiNNaker 2 Program.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.reference import Conventions, Reference, ReferenceError

CHIP, BELLEC = Conventions.chip(), Conventions.bellec()


def _one(neuron, w=None, **proj) -> nc.Network:
    """One input neuron onto one neuron (weight ``w``; no projection when None)."""
    net = nc.Network(name="one")
    net.add(nc.Population("in", 1, nc.SpikeInput()), nc.Population("n", 1, neuron))
    if w is not None:
        net.add(nc.Projection("in", "n", np.array([[w]]), **proj))
    return net


def _run(net, conv, x, record=("spikes", "v"), steps=None, **kw):
    steps = steps or len(x)
    rec = Reference(net, 1.0, conv, **kw).run(steps, inputs={"in": np.asarray(x, float)}, record=list(record))
    return {k: v[:, 0] for k, v in rec.items()}  # trial 0


def _spikes_at(steps: int, *at: int) -> np.ndarray:
    """An input raster of ``steps`` rows with a spike at the given 1-based steps."""
    x = np.zeros((steps, 1))
    for t in at:
        x[t - 1, 0] = 1
    return x


# -- hand-computed trajectories: chip conventions ------------------------------------------


def test_chip_lif_delta_subtract():
    """Input latency 1, v_t = dv v_{t-1} + w s_{t-1}, immediate subtractive reset."""
    dv = math.exp(-1 / 10)
    net = _one(nc.LIF(tau_mem_ms=10.0, v_th=1.0, reset="subtract"), 0.6)
    rec = _run(net, CHIP, _spikes_at(6, 1, 2, 3))
    v3 = 0.6 * dv + 0.6 - 1.0  # crosses 1 at step 3, reset at once
    v4 = v3 * dv + 0.6
    want = [0.0, 0.6, v3, v4, v4 * dv, v4 * dv * dv]
    np.testing.assert_allclose(rec["n/v"][:, 0], want, rtol=1e-15, atol=1e-15)
    assert rec["n/spikes"][:, 0].tolist() == [0, 0, 1, 0, 0, 0]


def test_chip_lif_current_based():
    """u_t = du u_{t-1} + w s_{t-1}; v_t = dv v_{t-1} + u_t."""
    du, dv = math.exp(-1 / 5), math.exp(-1 / 20)
    net = _one(nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=10.0), 0.5)
    rec = _run(net, CHIP, _spikes_at(5, 1), record=("u", "v"))
    u = [0.0, 0.5, 0.5 * du, 0.5 * du**2, 0.5 * du**3]
    v = [0.0, 0.5, 0.5 * dv + 0.5 * du, (0.5 * dv + 0.5 * du) * dv + 0.5 * du**2]
    v.append(v[-1] * dv + 0.5 * du**3)
    np.testing.assert_allclose(rec["n/u"][:, 0], u, rtol=1e-15)
    np.testing.assert_allclose(rec["n/v"][:, 0], v, rtol=1e-15)


def test_chip_alif_bias_zero_reset():
    """Bias per step; A_t = v_th + beta rho a_{t-1}; a jumps at once after the test."""
    dv, rho = math.exp(-1 / 10), math.exp(-1 / 20)
    net = _one(nc.ALIF(tau_mem_ms=10.0, v_th=1.0, bias=0.6, tau_adapt_ms=20.0, beta=0.5))
    rec = _run(net, CHIP, np.zeros((6, 1)), record=("spikes", "v", "a", "th_pre"))
    v2 = 0.6 * dv + 0.6  # 1.14 > 1: spike, v -> 0, a -> 1
    v4 = v2  # 1.14 < 1 + 0.5 rho^2
    v5 = v4 * dv + 0.6  # 1.63 > 1 + 0.5 rho^3: spike
    assert v4 < 1 + 0.5 * rho**2 and v5 > 1 + 0.5 * rho**3
    np.testing.assert_allclose(rec["n/v"][:, 0], [0.6, 0.0, 0.6, v4, 0.0, 0.6], rtol=1e-15)
    assert rec["n/spikes"][:, 0].tolist() == [0, 1, 0, 0, 1, 0]
    a = [0.0, 1.0, rho, rho**2, rho**3 + 1, (rho**3 + 1) * rho]
    np.testing.assert_allclose(rec["n/a"][:, 0], a, rtol=1e-15)
    th = [1.0, 1.0, 1 + 0.5 * rho, 1 + 0.5 * rho**2, 1 + 0.5 * rho**3, 1 + 0.5 * (rho**3 + 1) * rho]
    np.testing.assert_allclose(rec["n/th_pre"][:, 0], th, rtol=1e-15)


def test_chip_refractory_holds_v():
    """R = 2: no spike and v held (bias not added) for the two steps after a spike."""
    dv = math.exp(-1 / 10)
    net = _one(nc.LIF(tau_mem_ms=10.0, v_th=1.0, bias=0.6, refractory_steps=2))
    rec = _run(net, CHIP, np.zeros((7, 1)))
    v2 = 0.6 * dv + 0.6
    assert v2 > 1
    np.testing.assert_allclose(rec["n/v"][:, 0], [0.6, 0.0, 0.0, 0.0, 0.6, 0.0, 0.0], rtol=1e-15)
    assert rec["n/spikes"][:, 0].tolist() == [0, 1, 0, 0, 0, 1, 0]


# -- hand-computed trajectories: Bellec's conventions ---------------------------------------


def test_bellec_lif_delta_subtract():
    """Same-step input scaled by 1 - alpha; the reset subtracts v_th from the next step, undecayed."""
    a = math.exp(-1 / 10)
    s = 1 - a
    net = _one(nc.LIF(tau_mem_ms=10.0, v_th=1.0, reset="subtract"), 8.0)
    rec = _run(net, BELLEC, _spikes_at(5, 1, 2))
    v1 = 8 * s  # 0.76
    v2 = a * v1 + 8 * s  # 1.45: spike, v kept this step
    v3 = a * v2 - 1.0
    want = [v1, v2, v3, a * v3, a * a * v3]
    np.testing.assert_allclose(rec["n/v"][:, 0], want, rtol=1e-14)
    assert rec["n/spikes"][:, 0].tolist() == [0, 1, 0, 0, 0]


def test_bellec_alif_adaptation_next_step():
    """a_t = rho a_{t-1} + z_{t-1}; the bias is not scaled by 1 - alpha; zero reset at once."""
    dv, rho = math.exp(-1 / 10), math.exp(-1 / 20)
    net = _one(nc.ALIF(tau_mem_ms=10.0, v_th=1.0, bias=0.6, tau_adapt_ms=20.0, beta=0.5))
    rec = _run(net, BELLEC, np.zeros((6, 1)), record=("spikes", "v", "a"))
    v4 = 0.6 * dv + 0.6  # 1.14 < A_4 = 1 + 0.5 rho
    v5 = v4 * dv + 0.6  # 1.63 > A_5 = 1 + 0.5 rho^2
    assert v4 < 1 + 0.5 * rho and v5 > 1 + 0.5 * rho**2
    np.testing.assert_allclose(rec["n/v"][:, 0], [0.6, 0.0, 0.6, v4, 0.0, 0.6], rtol=1e-15)
    assert rec["n/spikes"][:, 0].tolist() == [0, 1, 0, 0, 1, 0]
    np.testing.assert_allclose(rec["n/a"][:, 0], [0.0, 0.0, 1.0, rho, rho**2, rho**3 + 1], rtol=1e-15)


def test_bellec_refractory_masks_spikes_only():
    """R = 2 under Bellec: v integrates through the refractory steps; only spikes are masked."""
    dv = math.exp(-1 / 10)
    net = _one(nc.LIF(tau_mem_ms=10.0, v_th=1.0, bias=0.6, refractory_steps=2))
    rec = _run(net, BELLEC, np.zeros((5, 1)))
    v4 = 0.6 * dv + 0.6  # above threshold, but refractory
    np.testing.assert_allclose(rec["n/v"][:, 0], [0.6, 0.0, 0.6, v4, 0.0], rtol=1e-15)
    assert rec["n/spikes"][:, 0].tolist() == [0, 1, 0, 0, 1]


# -- delays --------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("conv", [CHIP, BELLEC], ids=["chip", "bellec"])
def test_per_synapse_delays(sparse, conv):
    """A spike at step 1 reaches post neuron j at step 1 + latency + delay_j."""
    delays = np.array([0, 2, 5])
    w = np.ones((3, 1))
    net = nc.Network(name="delays")
    net.add(nc.Population("in", 1, nc.SpikeInput()), nc.Population("n", 3, nc.LIF(tau_mem_ms=1e9, v_th=10.0)))
    weights = nc.SparseWeights.from_dense(w) if sparse else w
    net.add(nc.Projection("in", "n", weights, delay_steps=delays if sparse else delays[:, None]))
    steps = 9
    rec = Reference(net, 1.0, conv).run(steps, inputs={"in": _spikes_at(steps, 1)}, record=["v"])
    first = (rec["n/v"][:, 0] != 0).argmax(axis=0) + 1  # the first step each neuron holds input
    assert first.tolist() == (1 + conv.input_latency + delays).tolist()


@pytest.mark.parametrize("conv", [CHIP, BELLEC], ids=["chip", "bellec"])
def test_recurrent_and_readout_latency(conv):
    """A neuron's spike at t reaches a neuron at t + recurrent_latency + delay, a readout at
    t + readout_latency (Bellec: the same step)."""
    net = nc.Network(name="lat")
    net.add(
        nc.Population("in", 1, nc.SpikeInput()),
        nc.Population("a", 1, nc.LIF(tau_mem_ms=10.0, v_th=0.5)),
        nc.Population("b", 1, nc.LIF(tau_mem_ms=1e9, v_th=100.0)),
        nc.Population("out", 1, nc.LI(tau_mem_ms=1e9)),
    )
    net.add(
        nc.Projection("in", "a", np.array([[1e3]])),  # 'a' spikes as soon as the input arrives
        nc.Projection("a", "b", np.array([[1.0]]), delay_steps=3),
        nc.Projection("a", "out", np.array([[1.0]])),
    )
    steps = 10
    rec = Reference(net, 1.0, conv).run(steps, inputs={"in": _spikes_at(steps, 1)}, record=["spikes", "v"])
    t_a = int(rec["a/spikes"][:, 0, 0].argmax()) + 1
    assert t_a == 1 + conv.input_latency
    assert int((rec["b/v"][:, 0, 0] != 0).argmax()) + 1 == t_a + conv.recurrent_latency + 3
    assert int((rec["out/v"][:, 0, 0] != 0).argmax()) + 1 == t_a + conv.readout_latency


# -- batches, Poisson inputs ----------------------------------------------------------------


def _batch_net() -> nc.Network:
    rng = np.random.default_rng(4)
    net = nc.Network(name="batch")
    net.add(
        nc.Population("poisson", 15, nc.SpikeInput(rate_hz=40.0, seed=2, trials="shared")),  # alone = in a batch
        nc.Population("drive", 10, nc.SpikeInput()),
        nc.Population("rec", 25, nc.ALIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=0.8, reset="subtract", beta=0.1)),
        nc.Population("out", 2, nc.LI(tau_mem_ms=20.0)),
    )
    sparse = nc.init_weights({"init": "normal", "std": 0.3, "seed": 1, "density": 0.3, "format": "sparse"}, 25, 25)
    net.add(
        nc.Projection("poisson", "rec", rng.normal(0.2, 0.3, (25, 15))),
        nc.Projection(
            "drive", "rec", rng.uniform(0, 0.5, (25, 10)), plasticity=nc.RuleSpec("stdp", {"lr": 0.01, "a_minus": 1.2})
        ),
        nc.Projection("rec", "rec", sparse, delay_steps=np.random.default_rng(0).integers(0, 3, sparse.nnz)),
        nc.Projection("rec", "out", rng.normal(0, 0.3, (2, 25))),
    )
    return net


def test_batch_trial_equals_trial_alone():
    """Exact equality of every recorded value, learning included (each trial its own weights)."""
    net = _batch_net()
    steps, batch = 300, 3
    drive = (np.random.default_rng(9).random((steps, batch, 10)) < 0.1).astype(float)
    record = ["spikes", "v", "u", "a", "w", "x", "y"]
    together = Reference(net, 1.0, CHIP, batch=batch).run(steps, inputs={"drive": drive}, record=record, learn=True)
    assert together["rec/spikes"].sum() > 100
    for b in range(batch):
        alone = Reference(net, 1.0, CHIP).run(steps, inputs={"drive": drive[:, b : b + 1]}, record=record, learn=True)
        for key, arr in alone.items():
            assert np.array_equal(together[key][:, b : b + 1], arr), (key, b)
    assert not np.array_equal(together["drive->rec/w"][-1, 0], together["drive->rec/w"][-1, 1])


def test_run_in_pieces_equals_one_run():
    net = _batch_net()
    drive = (np.random.default_rng(9).random((200, 10)) < 0.1).astype(float)
    one = Reference(net).run(200, inputs={"drive": drive}, record=["v", "w"], learn=True)
    ref = Reference(net)
    parts = [
        ref.run(n, inputs={"drive": drive[a : a + n]}, record=["v", "w"], learn=True) for a, n in ((0, 70), (70, 130))
    ]
    for key in one:
        assert np.array_equal(one[key], np.concatenate([p[key] for p in parts])), key
    ref.reset()
    assert ref.t == 0 and not ref.state["rec/v"].any()


def test_poisson_inputs_are_the_emulators():
    """A rate-driven input emits the emulator's frozen Poisson spikes (same generator, same draws)."""
    net = _batch_net()
    prog = nc.compile(net, "loihi2", out=io.StringIO())
    drive = np.zeros((100, 10))
    emu = Emulator(prog, batch=2).run(100, inputs={"drive": drive}, record=["spikes"])
    ref = Reference(net, prog.dt_ms, Conventions.chip(prog.profile), batch=2).run(100, inputs={"drive": drive})
    assert emu["poisson/spikes"].sum() > 20
    assert np.array_equal(emu["poisson/spikes"], ref["poisson/spikes"])


# -- plasticity -----------------------------------------------------------------------------


def _stdp_net(rule: str, params: dict) -> nc.Network:
    """'pre' -> 'n' (plastic, weight 0); 'drive' makes 'n' spike one step after each drive spike."""
    net = nc.Network(name="stdp")
    net.add(
        nc.Population("pre", 1, nc.SpikeInput()),
        nc.Population("drive", 1, nc.SpikeInput()),
        nc.Population("n", 1, nc.LIF(tau_mem_ms=10.0, v_th=1.0)),
    )
    net.add(
        nc.Projection("pre", "n", np.zeros((1, 1)), plasticity=nc.RuleSpec(rule, params)),
        nc.Projection("drive", "n", np.array([[2.0]])),
    )
    return net


def test_stdp_pairs_by_hand():
    """Pre at 3, post at 6: +lr a+ e^-3/tau+; pre at 8: -lr a- e^-2/tau-; pre and post at 10: both
    terms, each trace including its own spike of the step."""
    net = _stdp_net("stdp", {"lr": 0.1, "a_plus": 1.0, "a_minus": 0.5, "tau_plus_ms": 10.0, "tau_minus_ms": 20.0})
    steps = 11
    pre, drive = _spikes_at(steps, 3, 8, 10), _spikes_at(steps, 5, 9)
    rec = Reference(net).run(steps, inputs={"pre": pre, "drive": drive}, record=["spikes", "w", "x", "y"], learn=True)
    assert np.nonzero(rec["n/spikes"][:, 0, 0])[0].tolist() == [5, 9]  # steps 6 and 10
    w = rec["pre->n/w"][:, 0, 0, 0]
    dw6 = 0.1 * math.exp(-3 / 10)
    dw8 = -0.1 * 0.5 * math.exp(-2 / 20)
    x10 = (math.exp(-5 / 10) + 1) * math.exp(-2 / 10) + 1
    y10 = math.exp(-4 / 20) + 1
    dw10 = 0.1 * (x10 - 0.5 * y10)
    want = np.cumsum([0, 0, 0, 0, 0, dw6, 0, dw8, 0, dw10, 0])
    np.testing.assert_allclose(w, want, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(rec["pre->n/x"][9, 0, 0], x10, rtol=1e-15)
    np.testing.assert_allclose(rec["pre->n/y"][9, 0, 0], y10, rtol=1e-15)


def test_rstdp_reward_reads_eligibility():
    """The pairing at step 6 goes into e; a reward of 2 at step 8 adds lr_reward * 2 * e_7."""
    params = {"lr": 0.1, "lr_reward": 0.5, "tau_plus_ms": 10.0, "tau_minus_ms": 20.0, "tau_elig_ms": 50.0}
    net = _stdp_net("rstdp", params)
    steps = 9
    reward = np.zeros((steps, 1))
    reward[7] = 2.0
    inputs = {"pre": _spikes_at(steps, 3), "drive": _spikes_at(steps, 5), "pre->n/reward": reward}
    rec = Reference(net).run(steps, inputs=inputs, record=["w", "e"], learn=True)
    e6 = 0.1 * math.exp(-3 / 10)
    e7 = e6 * (1 - 1 / 50)
    np.testing.assert_allclose(rec["pre->n/e"][6, 0, 0, 0], e7, rtol=1e-15)
    w = rec["pre->n/w"][:, 0, 0, 0]
    np.testing.assert_allclose(w, [0] * 7 + [0.5 * 2 * e7] * 2, rtol=1e-15)


def test_shared_learning_sums_trials():
    net = _batch_net()
    drive = (np.random.default_rng(9).random((100, 2, 10)) < 0.1).astype(float)
    ind = Reference(net, batch=2).run(100, inputs={"drive": drive}, record=["w"], learn=True)
    shared = Reference(net, batch=2, learn_mode="shared").run(100, inputs={"drive": drive}, record=["w"], learn=True)
    assert shared["drive->rec/w"].shape == (100, 1, 25, 10)
    # the first step's updates (same weights in both) add up
    w0 = net.projection("drive->rec").weights
    np.testing.assert_allclose(shared["drive->rec/w"][0, 0] - w0, (ind["drive->rec/w"][0] - w0).sum(0), atol=1e-15)


# -- the emulator's float path (SpiNNaker 2: float32) ----------------------------------------


def _representable(a):
    """Multiples of 2^-6 below 127 * 2^-6: exact in SpiNNaker 2's int8 weights at any
    per-channel exponent, so the Program holds exactly the float network's weights."""
    return np.clip(np.round(np.asarray(a) * 64) / 64, -1.96875, 1.96875)


def _float_chip_net() -> nc.Network:
    rng = np.random.default_rng(0)
    sw = nc.init_weights(
        {"init": "normal", "std": 0.1, "seed": 3, "density": 0.2, "format": "sparse", "exclude_self": True},
        40,
        40,
        True,
    )
    sw = nc.SparseWeights(sw.shape, sw.rows, sw.cols, _representable(sw.values))
    net = nc.Network(name="float-chip")
    net.add(
        nc.Population("in", 20, nc.SpikeInput(rate_hz=40.0, seed=5)),
        nc.Population(
            "lif",
            40,
            nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=1.05, reset="subtract", bias=0.01, refractory_steps=2),
        ),
        nc.Population("alif", 30, nc.ALIF(tau_mem_ms=15.0, v_th=0.55, reset="zero", tau_adapt_ms=200.0, beta=0.25)),
        nc.Population("out", 3, nc.LI(tau_mem_ms=15.0, tau_syn_ms=3.0)),
    )
    net.add(
        nc.Projection("in", "lif", _representable(rng.normal(0.05, 0.2, (40, 20)))),
        nc.Projection("in", "alif", _representable(rng.normal(0.1, 0.2, (30, 20)))),
        nc.Projection("lif", "alif", _representable(rng.normal(0, 0.2, (30, 40))), delay_steps=2),
        nc.Projection("alif", "lif", _representable(rng.normal(0, 0.2, (40, 30))), delay_steps=1),
        nc.Projection("lif", "lif", sw, delay_steps=rng.integers(0, 4, sw.nnz)),
        nc.Projection("alif", "out", _representable(rng.normal(0, 0.2, (3, 30)))),
    )
    return net


def test_chip_conventions_match_the_emulators_float_path():
    """SpiNNaker 2's emulator runs the same steps in float32, with float32 decays.

    Tolerance: every value agrees to ``TOL * (1 + |value|)`` with ``TOL = 2e-5``. float32
    rounds each operation to 2^-24 (6e-8) relative and its decay factors differ from
    exp(-dt/tau) by as much; a state remembers about tau/dt = 20 steps of such errors, a few
    operations each, so about 20 * 3 * 6e-8 = 4e-6 relative is expected (4e-6 is measured
    here), and 2e-5 leaves a factor 5. Spikes agree exactly up to the first step at which
    some membrane lies within that tolerance of its threshold (where float32 may decide
    the other way); the comparison stops there, and the test requires that to be late, if
    it happens at all."""
    tol = 2e-5
    net = _float_chip_net()
    prog = nc.compile(net, "spinnaker2", out=io.StringIO())
    assert prog.profile.arithmetic == "float32"
    steps, batch = 500, 2
    emu = Emulator(prog, batch=batch).run(steps, record=["spikes", "v", "u", "a"])
    ref = Reference(net, prog.dt_ms, Conventions.chip(prog.profile), batch=batch).run(
        steps, record=["spikes", "v", "u", "a", "v_pre", "th_pre"]
    )
    near = np.zeros(steps, bool)
    for p in ("lif", "alif"):
        margin = np.abs(ref[f"{p}/v_pre"] - ref[f"{p}/th_pre"])
        near |= (margin < tol * (1 + np.abs(ref[f"{p}/th_pre"]))).any(axis=(1, 2))
    stop = int(near.argmax()) if near.any() else steps
    assert stop > steps // 2, f"a membrane within tolerance of threshold at step {stop + 1}"
    for p in ("lif", "alif"):
        assert ref[f"{p}/spikes"][:stop].sum() > 100
        assert np.array_equal(emu[f"{p}/spikes"][:stop], ref[f"{p}/spikes"][:stop]), p
    # the emulator keeps the adaptation as beta * a, in voltage units
    pairs = [(emu[k], ref[k]) for k in ("lif/v", "lif/u", "alif/v", "alif/u", "out/v", "out/u")]
    pairs.append((emu["alif/a"], 0.25 * ref["alif/a"]))
    for e, r in pairs:
        e, r = e[:stop].astype(np.float64), r[:stop]
        assert (np.abs(e - r) <= tol * (1 + np.abs(r))).all(), np.abs(e - r).max()


# -- refusals ----------------------------------------------------------------------------------


def test_refusals_name_the_construct():
    net = nc.Network(name="bad")
    net.add(
        nc.Population("a", 2, nc.LIF(tau_mem_ms=10.0)),
        nc.Population("b", 2, nc.LIF(tau_mem_ms=10.0)),
    )
    net.add(nc.Projection("a", "b", np.ones((2, 2))))
    with pytest.raises(ReferenceError, match=r"projection 'a->b'.*total delay 0"):
        Reference(net, conventions=Conventions(recurrent_latency=0))
    ref = Reference(net)
    with pytest.raises(ReferenceError, match="unknown variable 'q'"):
        ref.run(3, record=["q"])
    with pytest.raises(ReferenceError, match="batch must be"):
        Reference(net, batch=0)
    eprop = nc.Network(name="eprop")
    eprop.add(nc.Population("in", 2, nc.SpikeInput()), nc.Population("n", 2, nc.LIF(tau_mem_ms=10.0)))
    eprop.add(nc.Projection("in", "n", np.ones((2, 2)), plasticity=nc.RuleSpec("eprop", {"lr": 1e-3})))
    ref = Reference(eprop)
    ref.run(2, inputs={"in": np.zeros((2, 2))})  # static without learn
    with pytest.raises(ReferenceError, match=r"projection 'in->n'.*rule 'eprop'"):
        ref.run(2, inputs={"in": np.zeros((2, 2))}, learn=True)
    with pytest.raises(ReferenceError, match=r"input 'in'.*shape \(3, 5\)"):
        ref.run(2, inputs={"in": np.zeros((3, 5))})
    with pytest.raises(ReferenceError, match="input 'in': has no rate"):
        ref.run(2)
    bad_rule = _stdp_net("stdp", {"lr": 0.1, "tau_plus_ms": -1.0, "typo": 1})
    with pytest.raises(nc.NeurocompError, match="unknown parameter 'typo'"):
        Reference(bad_rule)
