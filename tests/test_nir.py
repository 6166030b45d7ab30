"""NIR import and export (neurocomp.graph.nir): the mapping of NIR's continuous-time nodes
onto the IR, checked against an independent integration of NIR's equations; round trips
YAML -> NIR -> YAML and NIR -> neurocomp -> NIR; refusals; the command line."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.cli import main
from neurocomp.graph import load_network, save_network
from neurocomp.reference import Reference
from tests.conftest import ROOT

nir = pytest.importorskip("nir")
from neurocomp.graph.nir import NirError, from_nir, load_nir, save_nir, to_nir  # noqa: E402

EXAMPLE = ROOT / "examples" / "nir" / "snn_cubalif.nir"
REL = 1e-12  # a value mapped there and back passes through a few products and quotients: a few ulp


def _full(n, v):
    return np.full(n, float(v))


def _cuba(n, ts, tm, th, r=1.0, w_in=1.0, leak=0.0):
    return nir.CubaLIF(
        tau_syn=_full(n, ts),
        tau_mem=_full(n, tm),
        r=_full(n, r),
        v_leak=_full(n, leak),
        v_threshold=_full(n, th),
        v_reset=np.zeros(n),
        w_in=_full(n, w_in),
    )


# -- the mapping against NIR's equations ------------------------------------------------------

DT_MS = 0.25
N_IN, N_H, N_O = 8, 10, 3


def _two_layer_graph(seed: int = 3) -> nir.NIRGraph:
    """Input -> Affine -> CubaLIF -> Affine -> CubaLIF, r and w_in not 1 so their folding counts."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([N_IN])),
            "fc1": nir.Affine(rng.normal(5, 2, (N_H, N_IN)), np.zeros(N_H)),
            "lif1": _cuba(N_H, 5e-3, 10e-3, 1.0, r=2.0, w_in=1.5),
            "fc2": nir.Affine(rng.normal(8, 3, (N_O, N_H)), np.zeros(N_O)),
            "lif2": _cuba(N_O, 4e-3, 8e-3, 1.0, r=1.5, w_in=0.8),
            "output": nir.Output(np.array([N_O])),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    )


def _volleys(steps: int, seed: int = 5) -> np.ndarray:
    """Input volleys every 25 ms: each neuron of the next layer crosses its threshold steeply, so
    a crossing time is well conditioned (a slow, grazing approach would make it ill-posed)."""
    rng = np.random.default_rng(seed)
    raster = np.zeros((steps, N_IN), np.uint8)
    for k in range(10, steps, 100):
        raster[k] = rng.random(N_IN) < 0.6
    return raster


def _oracle(g: nir.NIRGraph, raster: np.ndarray, dt: float, substeps: int = 16):
    """Independent oracle (test only): NIR's CubaLIF equations integrated with RK4 at h = dt/16.

    ``tau_syn dI/dt = -I + w_in W S``, ``tau_mem dv/dt = v_leak - v + r I``; a spike is a
    Dirac of charge ``dt`` (I jumps by ``w_in W dt / tau_syn``); a neuron spikes at the first
    fine step where ``v > v_threshold``, resets to ``v_reset``, and its spike reaches the next
    layer at once. Input row ``i`` is the event at time ``(i + 1) dt``. Returns the spike times
    per layer as ``[(t, neuron)]`` and ``v`` at the step boundaries ``[steps, n]``.
    """
    layers = [(g.nodes["fc1"], g.nodes["lif1"]), (g.nodes["fc2"], g.nodes["lif2"])]
    cur = [np.zeros(n.tau_mem.size) for _, n in layers]
    mem = [np.zeros(n.tau_mem.size) for _, n in layers]
    h = dt / substeps
    spikes: list[list[tuple[float, int]]] = [[] for _ in layers]
    vs = [np.zeros((raster.shape[0], n.tau_mem.size)) for _, n in layers]

    def f(i, v, n):
        return -i / n.tau_syn, (n.v_leak - v + n.r * i) / n.tau_mem

    pending: list[np.ndarray | None] = [None, None]
    for step in range(1, raster.shape[0] + 1):
        pending[0] = raster[step - 2].astype(float) if step >= 2 else None
        for k in range(substeps):
            t = (step - 1) * dt + k * h
            for li, (aff, n) in enumerate(layers):
                if pending[li] is not None:
                    cur[li] = cur[li] + n.w_in * (aff.weight @ pending[li]) * dt / n.tau_syn
                    pending[li] = None
            for li, (_, n) in enumerate(layers):
                i, v = cur[li], mem[li]
                k1 = f(i, v, n)
                k2 = f(i + h / 2 * k1[0], v + h / 2 * k1[1], n)
                k3 = f(i + h / 2 * k2[0], v + h / 2 * k2[1], n)
                k4 = f(i + h * k3[0], v + h * k3[1], n)
                cur[li] = i + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
                mem[li] = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
                z = mem[li] > n.v_threshold
                mem[li] = np.where(z, n.v_reset, mem[li])
                if z.any():
                    if li + 1 < len(layers):
                        pending[li + 1] = z.astype(float)
                    spikes[li] += [(t + h, int(j)) for j in np.nonzero(z)[0]]
        for li in range(len(layers)):
            vs[li][step - 1] = mem[li]
    return spikes, vs


def _lags(oracle_spikes, sim_spikes: np.ndarray, dt: float) -> list[np.ndarray]:
    """Per neuron, (simulated - oracle) spike times in steps; asserts equal spike counts.
    ``sim_spikes[n - 1]`` is step ``n``, the event at time ``n dt``."""
    out = []
    for j in range(sim_spikes.shape[1]):
        want = np.array(sorted(t for t, jj in oracle_spikes if jj == j))
        got = (np.nonzero(sim_spikes[:, j])[0] + 1) * dt
        assert got.size == want.size, f"neuron {j}: {got.size} spikes, the equations give {want.size}"
        out.append((got - want) / dt)
    return out


@pytest.fixture(scope="module")
def oracle_run():
    g = _two_layer_graph()
    steps = 800
    raster = _volleys(steps)
    spikes, vs = _oracle(g, raster, DT_MS * 1e-3)
    return g, raster, spikes, vs


def _check_against_oracle(rec, spikes, vs):
    dt = DT_MS * 1e-3
    # 1. Between events the IR is the exact sampled solution: before a neuron's first spike its
    #    membrane at every step boundary equals the equations' (RK4 at h = dt/16 errs ~1e-13).
    v1 = rec["lif1/v"][:, 0, :]
    for j in range(N_H):
        first = min([t for t, jj in spikes[0] if jj == j] + [np.inf])
        n = int(min(first / dt, v1.shape[0]))
        np.testing.assert_allclose(v1[: n - 1, j], vs[0][: n - 1, j], rtol=0, atol=1e-9)
    assert sum(len(s) for s in spikes) > 40, "the run must have spikes in both layers to test them"
    # 2. Layer 1: each spike is the equations' spike seen at the next step boundary (0..1 step
    #    late; + h for the oracle's own detection on its fine grid).
    for lag in _lags(spikes[0], rec["lif1/spikes"][:, 0, :], dt):
        assert np.all((lag >= -1 / 16) & (lag <= 1 + 1 / 16)), lag
    # 3. Layer 2 receives layer 1's spikes up to a step late, adds its own step of detection, and a
    #    burst's later spikes lag the reset at the step boundary: same spikes, <= 4 steps (1 ms) late.
    for lag in _lags(spikes[1], rec["lif2/spikes"][:, 0, :], dt):
        assert np.all((lag >= -1 / 16) & (lag <= 4)), lag


def test_cubalif_reference_gives_the_spikes_of_nirs_equations(oracle_run):
    g, raster, spikes, vs = oracle_run
    net = from_nir(g, DT_MS)
    rec = Reference(net, DT_MS).run(raster.shape[0], inputs={"input": raster}, record=["spikes", "v"])
    _check_against_oracle(rec, spikes, vs)


@pytest.mark.brian2
def test_cubalif_brian2_gives_the_spikes_of_nirs_equations(oracle_run):
    pytest.importorskip("brian2")
    from neurocomp.backends.brian2 import Brian2Backend

    g, raster, spikes, vs = oracle_run
    net = from_nir(g, DT_MS)
    rec = Brian2Backend(net, dt_ms=DT_MS).run(raster.shape[0], inputs={"input": raster}, record=["spikes", "v"])
    _check_against_oracle(rec, spikes, vs)
    ref = Reference(net, DT_MS).run(raster.shape[0], inputs={"input": raster}, record=["spikes"])
    np.testing.assert_array_equal(rec["lif1/spikes"], ref["lif1/spikes"])
    np.testing.assert_array_equal(rec["lif2/spikes"], ref["lif2/spikes"])


def test_lif_li_if_and_threshold_parameters_map_with_dt():
    dt_ms, dt = 0.5, 0.5e-3
    W = np.array([[0.5, -0.25], [1.0, 2.0]])
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "a": nir.Linear(W),
            "lif": nir.LIF(tau=_full(2, 0.02), r=_full(2, 3.0), v_leak=_full(2, 0.1), v_threshold=_full(2, 1.5)),
            "b": nir.Affine(W, np.array([0.2, 0.2])),
            "if": nir.IF(r=_full(2, 4.0), v_threshold=_full(2, 1.0)),
            "c": nir.Linear(W),
            "li": nir.LI(tau=_full(2, 0.01), r=_full(2, 1.0), v_leak=np.zeros(2)),
            "s": nir.Scale(np.array([2.0, -1.0])),
            "d": nir.Linear(W),
            "th": nir.Threshold(_full(2, 0.7)),
        },
        edges=[
            ("input", "a"),
            ("a", "lif"),
            ("input", "b"),
            ("b", "if"),
            ("lif", "c"),
            ("c", "li"),
            ("input", "s"),
            ("s", "d"),
            ("d", "th"),
        ],  # fmt: skip
        type_check=False,
    )
    notes: list[str] = []
    net = from_nir(g, dt_ms, notes=notes)
    lif, if_, li, th = (net.population(n).neuron for n in ("lif", "if", "li", "th"))
    dv = math.exp(-dt / 0.02)
    assert lif.tau_mem_ms == pytest.approx(20.0, rel=REL) and lif.tau_syn_ms is None and lif.v_th == 1.5
    assert lif.bias == pytest.approx((1 - dv) * 0.1, rel=REL)  # the leak as a steady per-step drive
    np.testing.assert_allclose(net.projection("a").dense_weights(), W * 3.0 * dt / 0.02 * dv, rtol=REL)
    assert if_.tau_mem_ms == pytest.approx(1e12 * dt_ms, rel=REL)  # no leak
    np.testing.assert_allclose(net.projection("b").dense_weights(), W * 4.0 * dt, rtol=REL)
    assert if_.bias == pytest.approx(4.0 * 0.2 * dt, rel=REL)
    assert isinstance(li, nc.LI) and li.tau_mem_ms == pytest.approx(10.0, rel=REL)
    assert math.exp(-dt_ms / th.tau_mem_ms) == 0.0 and th.v_th == 0.7  # memoryless
    np.testing.assert_allclose(net.projection("d").dense_weights(), W * [2.0, -1.0], rtol=0)  # Scale, then W
    assert any("'lif' (LIF): v_leak folded" in n for n in notes)
    assert any("'if' (IF): the Affine bias" in n for n in notes)
    assert any("'lif' (LIF): r folded" in n for n in notes)


def test_delays_map_to_steps_and_rounding_is_noted():
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "pre_d": nir.Delay(np.array([0.001, 0.002])),  # per input neuron
            "w": nir.Linear(np.ones((3, 2))),
            "post_d": nir.Delay(np.array([0.0, 0.0005, 0.0013])),  # per post neuron; 1.3 ms rounds
            "lif": nir.LIF(tau=_full(3, 0.01), r=_full(3, 1.0), v_leak=np.zeros(3), v_threshold=_full(3, 1.0)),
        },
        edges=[("input", "pre_d"), ("pre_d", "w"), ("w", "post_d"), ("post_d", "lif")],
    )
    notes: list[str] = []
    net = from_nir(g, 0.5, notes=notes)
    np.testing.assert_array_equal(net.projection("w").delay_steps, [[2, 4], [3, 5], [5, 7]])
    assert any("delay rounded" in n and "0.2 ms" in n for n in notes)


# -- refusals --------------------------------------------------------------------------------


def test_every_unrepresentable_node_is_refused_at_once():
    lif = nir.LIF(tau=_full(4, 0.01), r=_full(4, 1.0), v_leak=np.zeros(4), v_threshold=_full(4, 1.0))
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([1, 4, 4])),
            "conv": nir.Conv2d((4, 4), np.ones((1, 1, 3, 3)), 1, 1, 1, 1, np.zeros(1)),
            "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
            "conv1": nir.Conv1d(4, np.ones((1, 1, 3)), 1, 1, 1, 1, np.zeros(1)),
            "sub": nir.NIRGraph(  # a nested graph is inlined, so its nodes are named G.k
                nodes={
                    "input": nir.Input(np.array([4])),
                    "avg": nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                    "lif": lif,
                },
                edges=[("input", "avg"), ("avg", "lif")],
                type_check=False,
            ),
            "flat": nir.Flatten({"input": np.array([1, 2, 2])}),
        },
        edges=[("input", "conv"), ("conv", "pool"), ("pool", "flat"), ("flat", "sub"), ("input", "conv1")],
        type_check=False,
    )
    with pytest.raises(NirError) as exc:
        from_nir(g, 1.0)
    where = {p.where for p in exc.value.problems}
    assert where == {
        "node 'conv' (Conv2d)",
        "node 'pool' (SumPool2d)",
        "node 'conv1' (Conv1d)",
        "node 'sub.avg' (AvgPool2d)",
    }
    assert "convolution" in str(exc.value)


def test_a_nested_recurrent_graph_is_inlined():
    """snnTorch writes a recurrent layer (RSynaptic, RLeaky) as a subgraph whose CubaLIF feeds
    itself through a Linear; edges into and out of the subgraph reach its Input and Output."""
    n = 3
    w_rec = np.array([[0.0, 0.5, -0.5], [0.2, 0.0, 0.1], [0.3, -0.1, 0.0]])
    rsyn = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([n])),
            "lif": _cuba(n, 0.005, 0.01, 1.0),
            "w_rec": nir.Linear(w_rec),
            "output": nir.Output(np.array([n])),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    w_in = np.arange(6.0).reshape(n, 2)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "fc": nir.Linear(w_in),
            "rsyn": rsyn,
            "fc2": nir.Linear(np.ones((1, n))),
            "li": nir.LI(tau=_full(1, 0.02), r=_full(1, 1.0), v_leak=np.zeros(1)),
            "output": nir.Output(np.array([1])),
        },
        edges=[("input", "fc"), ("fc", "rsyn"), ("rsyn", "fc2"), ("fc2", "li"), ("li", "output")],
    )
    net = from_nir(g, 1.0)
    assert [p.name for p in net.populations] == ["input", "rsyn.lif", "li"]
    assert [(p.name, p.pre, p.post) for p in net.projections] == [
        ("fc", "input", "rsyn.lif"),
        ("rsyn.w_rec", "rsyn.lif", "rsyn.lif"),
        ("fc2", "rsyn.lif", "li"),
    ]
    ratio = net.projection("rsyn.w_rec").dense_weights()[0, 1] / 0.5  # the CubaLIF's gain
    np.testing.assert_allclose(net.projection("rsyn.w_rec").dense_weights(), w_rec * ratio, rtol=REL)
    np.testing.assert_allclose(net.projection("fc").dense_weights(), w_in * ratio, rtol=REL)


def test_scalar_parameters_take_the_size_of_the_layer():
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([1, 2])),
            "flat": nir.Flatten({"input": np.array([1, 2])}, start_dim=0),
            "fc": nir.Linear(np.ones((5, 2))),
            "lif": nir.LIF(tau=np.array(0.01), r=np.array(1.0), v_leak=np.array(0.0), v_threshold=np.array(1.0)),
        },
        edges=[("input", "flat"), ("flat", "fc"), ("fc", "lif")],
        type_check=False,
    )
    net = from_nir(g, 1.0)
    assert (net.population("input").size, net.population("lif").size) == (2, 5)


def test_biases_that_differ_between_neurons_come_from_an_always_on_input():
    """A per-neuron Affine bias (nn.Linear's default) and leak: weights from one input that
    fires every step; the membranes settle where NIR's equations put them, v_leak + r b."""
    b = np.array([0.1, -0.2, 0.3])
    leak = np.array([0.0, 0.05, 0.0])
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "fc": nir.Affine(np.ones((3, 2)), b),
            "lif": nir.LIF(tau=_full(3, 0.01), r=_full(3, 2.0), v_leak=leak, v_threshold=_full(3, 10.0)),
            "fc2": nir.Affine(np.ones((3, 2)), b),
            "cuba": nir.CubaLIF(
                tau_syn=_full(3, 0.005),
                tau_mem=_full(3, 0.01),
                r=_full(3, 2.0),
                v_leak=leak,
                v_threshold=_full(3, 10.0),
                w_in=_full(3, 0.5),
            ),  # fmt: skip
        },
        edges=[("input", "fc"), ("fc", "lif"), ("input", "fc2"), ("fc2", "cuba")],
    )
    notes: list[str] = []
    net = from_nir(g, 0.5, notes=notes)
    assert net.population("bias").neuron.rate_hz * 0.5 / 1000 >= 1.0  # fires in every step
    assert net.population("lif").neuron.bias == 0.0
    assert {p.name for p in net.projections} >= {"lif.bias", "cuba.bias"}
    assert any("'lif': biases differ" in n for n in notes)
    steps = 600  # 300 ms: 30 membrane time constants, settled to e^-30
    rec = Reference(net, 0.5).run(steps, inputs={"input": np.zeros((steps, 2), np.uint8)}, record=["v"])
    # the float reference in float64: rounding only (the per-step drive sums 600 times)
    np.testing.assert_allclose(rec["lif/v"][-1, 0], leak + 2.0 * b, rtol=1e-9)
    np.testing.assert_allclose(rec["cuba/v"][-1, 0], leak + 2.0 * 0.5 * b, rtol=1e-9)


def test_per_neuron_parameters_and_linear_readouts_are_refused_by_name():
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "w1": nir.Linear(np.ones((2, 2))),
            "lif": nir.LIF(tau=np.array([0.01, 0.02]), r=_full(2, 1.0), v_leak=np.zeros(2), v_threshold=_full(2, 1.0)),
            "w2": nir.Linear(np.ones((2, 2))),
            "cuba": nir.CubaLIF(
                tau_syn=_full(2, 0.005),
                tau_mem=_full(2, 0.01),
                r=_full(2, 1.0),
                v_leak=np.zeros(2),
                v_threshold=np.array([1.0, 2.0]),
            ),  # fmt: skip
            "w3": nir.Linear(np.ones((2, 2))),
            "li": nir.LI(tau=_full(2, 0.01), r=_full(2, 1.0), v_leak=np.zeros(2)),
            "w4": nir.Linear(np.ones((2, 2))),
            "output": nir.Output(np.array([2])),
        },
        edges=[
            ("input", "w1"),
            ("w1", "lif"),
            ("input", "w2"),
            ("w2", "cuba"),
            ("cuba", "w3"),
            ("w3", "li"),
            ("cuba", "w4"),
            ("w4", "output"),
        ],  # fmt: skip
    )
    with pytest.raises(NirError) as exc:
        from_nir(g, 1.0)
    msgs = [str(p) for p in exc.value.problems]
    assert any(m.startswith("node 'lif' (LIF): tau_mem: differs") for m in msgs), msgs
    assert any(m.startswith("node 'cuba' (CubaLIF): v_th: differs") for m in msgs), msgs
    assert any(m.startswith("node 'w4' (Linear): feeds an Output") for m in msgs), msgs


def test_delays_that_depend_on_pre_and_post_are_refused_on_export():
    net = nc.Network(
        [nc.Population("in", 2, nc.SpikeInput()), nc.Population("out", 2, nc.LIF(tau_mem_ms=10.0))],
        [nc.Projection("in", "out", np.ones((2, 2)), delay_steps=np.array([[0, 1], [1, 0]]))],
    )
    with pytest.raises(NirError, match=r"projection 'in->out': delay_steps"):
        to_nir(net, 1.0)


def test_the_core_imports_without_nir_and_names_the_missing_package():
    code = (
        "import sys; sys.modules['nir'] = None\n"
        "import neurocomp\n"
        "from neurocomp import from_nir\n"
        "from neurocomp.graph.nir import NirError\n"
        "try:\n    from_nir(None, 1.0)\nexcept NirError as e:\n    print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "pip install 'neurocomp[nir]'" in res.stdout


# -- round trips -----------------------------------------------------------------------------


def _rich_network() -> nc.Network:
    """Every neuron model and every IR feature NIR lacks (rules, subtractive reset, refractory
    period, ALIF, Poisson rate, sparse weights, sign mode, delays per pre and per post neuron)."""
    rng = np.random.default_rng(1)
    sparse = nc.init_weights({"init": "normal", "std": 0.3, "seed": 2, "density": 0.5, "format": "sparse"}, 6, 4)
    return nc.Network(
        [
            nc.Population("in", 4, nc.SpikeInput(rate_hz=20.0, seed=7)),
            nc.Population("drive", 3, nc.SpikeInput()),
            nc.Population("hid", 6, nc.LIF(tau_mem_ms=10.0, tau_syn_ms=5.0, v_th=1.0, bias=0.02)),
            nc.Population("sub", 5, nc.LIF(tau_mem_ms=8.0, v_th=0.8, reset="subtract", refractory_steps=2)),
            nc.Population("ad", 4, nc.ALIF(tau_mem_ms=20.0, tau_syn_ms=3.0, v_th=0.5, tau_adapt_ms=200.0, beta=0.1)),
            nc.Population("out", 2, nc.LI(tau_mem_ms=25.0, tau_syn_ms=4.0)),
            nc.Population("out2", 2, nc.LI(tau_mem_ms=15.0, bias=-0.01)),
        ],
        [
            nc.Projection(
                "in", "hid", sparse, sign_mode="mixed", plasticity=nc.RuleSpec("stdp", {"lr": 0.01, "a_plus": 1.0})
            ),
            nc.Projection("drive", "sub", np.abs(rng.normal(0, 0.5, (5, 3))), delay_steps=2, sign_mode="excitatory"),
            nc.Projection(
                "hid", "sub", rng.normal(0, 0.5, (5, 6)), delay_steps=np.repeat([[0], [1], [2], [3], [1]], 6, 1)
            ),
            nc.Projection("hid", "ad", rng.normal(0, 0.5, (4, 6)), delay_steps=np.repeat([[0, 1, 2, 0, 1, 3]], 4, 0)),
            nc.Projection(
                "ad",
                "ad",
                rng.normal(0, 0.2, (4, 4)),
                name="ad-rec",
                plasticity=nc.RuleSpec("eprop", {"lr": 1e-3, "feedback": "random"}),
            ),  # fmt: skip
            nc.Projection("sub", "out", rng.normal(0, 0.5, (2, 5))),
            nc.Projection("ad", "out2", rng.normal(0, 0.5, (2, 4))),
        ],
        name="rich",
        description="every feature",
    )


def _assert_same(a: nc.Network, b: nc.Network) -> None:
    assert (a.name, a.description) == (b.name, b.description)
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    for p, q in zip(a.populations, b.populations, strict=True):
        assert (type(p.neuron), p.size) == (type(q.neuron), q.size), p.name
        for k, v in p.neuron.to_dict().items():
            w = q.neuron.to_dict()[k]
            assert w == pytest.approx(v, rel=REL, abs=1e-15) if isinstance(v, float) else w == v, (p.name, k)
    assert [p.name for p in a.projections] == [p.name for p in b.projections]
    for p, q in zip(a.projections, b.projections, strict=True):
        assert (p.pre, p.post, p.sign_mode, p.plasticity, p.is_sparse) == (q.pre, q.post, q.sign_mode, q.plasticity,
                                                                          q.is_sparse), p.name  # fmt: skip
        np.testing.assert_allclose(q.dense_weights(), p.dense_weights(), rtol=REL, atol=1e-15, err_msg=p.name)
        np.testing.assert_array_equal(np.asarray(q.delay_steps), np.asarray(p.delay_steps), err_msg=p.name)
        if p.is_sparse:
            np.testing.assert_array_equal(q.weights.rows, p.weights.rows)
            np.testing.assert_array_equal(q.weights.cols, p.weights.cols)


def test_yaml_to_nir_to_yaml_round_trip(tmp_path):
    net = _rich_network()
    save_network(net, tmp_path / "rich.yaml")
    notes: list[str] = []
    save_nir(load_network(tmp_path / "rich.yaml"), tmp_path / "rich.nir", 0.5, notes=notes)
    back = load_nir(tmp_path / "rich.nir")  # the step neurocomp stored in the file
    save_network(back, tmp_path / "back.yaml")
    _assert_same(net, load_network(tmp_path / "back.yaml"))
    for fragment in ("'in->hid': learning rule 'stdp' kept in metadata", "'sub': reset 'subtract'",
                     "'ad': ALIF adaptation", "'in': Poisson rate", "'in->hid': sparse"):  # fmt: skip
        assert any(fragment in n for n in notes), fragment


@pytest.mark.parametrize("model", ["stdp_feedforward", "pattern_generation", "recurrent_ei", "evidence_accumulation"])
def test_example_models_survive_nir(model, tmp_path):
    net = load_network(ROOT / "examples" / "models" / f"{model}.yaml")
    save_nir(net, tmp_path / "m.nir", 1.0)
    _assert_same(net, load_nir(tmp_path / "m.nir"))


def test_nir_to_neurocomp_to_nir_round_trip(tmp_path):
    """A graph written in the export's conventions (r = tau/dt, w_in = tau_syn/dt) comes back
    with the same nodes and parameters; the file keeps neurocomp's order."""
    dt = 1e-3
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([3])),
            "fc1": nir.Affine(rng.normal(size=(4, 3)), np.zeros(4)),
            "cuba": _cuba(4, 5e-3, 10e-3, 1.0, r=10e-3 / dt, w_in=5e-3 / dt, leak=0.05),
            "fc2": nir.Affine(rng.normal(size=(2, 4)), np.zeros(2)),
            "lif": nir.LIF(tau=_full(2, 0.02), r=_full(2, 0.02 / dt), v_leak=np.zeros(2), v_threshold=_full(2, 0.5)),
            "fc3": nir.Affine(rng.normal(size=(2, 2)), np.zeros(2)),
            "cli": nir.CubaLI(
                tau_syn=_full(2, 2e-3),
                tau_mem=_full(2, 0.03),
                r=_full(2, 0.03 / dt),
                v_leak=np.zeros(2),
                w_in=_full(2, 2e-3 / dt),
            ),  # fmt: skip
            "output": nir.Output(np.array([2])),
        },
        edges=[
            ("input", "fc1"),
            ("fc1", "cuba"),
            ("cuba", "fc2"),
            ("fc2", "lif"),
            ("lif", "fc3"),
            ("fc3", "cli"),
            ("cli", "output"),
        ],  # fmt: skip
    )
    net = from_nir(g, 1.0)
    nir.write(tmp_path / "g.nir", to_nir(net, 1.0))
    h = nir.read(tmp_path / "g.nir")
    assert set(h.nodes) == set(g.nodes)
    assert sorted(h.edges) == sorted(g.edges)
    for key, node in g.nodes.items():
        other = h.nodes[key]
        assert type(other) is type(node), key
        for field in ("weight", "bias", "tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"):
            if hasattr(node, field):
                np.testing.assert_allclose(getattr(other, field), getattr(node, field), rtol=REL, atol=1e-15)
    _assert_same(net, from_nir(h, 1.0, name=net.name))


# -- the command line ------------------------------------------------------------------------


def test_cli_compiles_and_runs_the_shipped_nir_example(tmp_path, capsys):
    ncp, rec = tmp_path / "snn.ncp", tmp_path / "rec.npz"
    assert main(["compile", str(EXAMPLE), "--profile", "loihi2", "-o", str(ncp), "-q"]) == 0
    out = capsys.readouterr().out
    assert "note: node 'lif1' (CubaLIF): r and w_in folded into the input weights" in out
    inp = ROOT / "examples" / "nir" / "input.npz"
    assert main(["run", str(ncp), "--steps", "100", "--input", str(inp), "--out", str(rec)]) == 0
    with np.load(rec) as z:
        assert z["lif1/spikes"].sum() > 0


def test_cli_exports_validates_and_refuses(tmp_path, capsys):
    out = tmp_path / "stdp.nir"
    assert main(["export", str(ROOT / "examples" / "models" / "stdp_feedforward.yaml"), "-o", str(out)]) == 0
    assert "learning rule 'stdp' kept in metadata" in capsys.readouterr().out
    assert main(["validate", str(out)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([1, 4, 4])), "conv": nir.Conv2d((4, 4), np.ones((1, 1, 3, 3)), 1, 1, 1, 1,
               np.zeros(1))}, edges=[("input", "conv")], type_check=False,
    )  # fmt: skip
    nir.write(tmp_path / "bad.nir", bad)
    assert main(["compile", str(tmp_path / "bad.nir"), "--profile", "loihi2", "-o", str(tmp_path / "x.ncp")]) == 2
    assert "node 'conv' (Conv2d)" in capsys.readouterr().err


@pytest.mark.brian2
def test_cli_runs_a_nir_file_in_brian2(tmp_path, capsys):
    pytest.importorskip("brian2")
    inp, rec = ROOT / "examples" / "nir" / "input.npz", tmp_path / "b2.npz"
    args = ["run", str(EXAMPLE), "--backend", "brian2", "--steps", "50", "--input", str(inp), "--out", str(rec)]
    assert main(args) == 0
    net = load_nir(EXAMPLE, 1.0)
    with np.load(inp) as z:
        ref = Reference(net, 1.0).run(50, inputs={"input": z["input/spikes"][:50]})
    with np.load(rec) as z:
        np.testing.assert_array_equal(z["lif1/spikes"], ref["lif1/spikes"])


def test_the_shipped_example_is_what_its_script_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_example", ROOT / "examples" / "nir" / "make_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    want, got = mod.graph(), nir.read(EXAMPLE)
    assert set(got.nodes) == set(want.nodes) and sorted(got.edges) == sorted(want.edges)
    for key in ("fc1", "fc2"):
        np.testing.assert_array_equal(got.nodes[key].weight, want.nodes[key].weight)
    with np.load(ROOT / "examples" / "nir" / "input.npz") as z:
        np.testing.assert_array_equal(z["input/spikes"], mod.input_spikes())
