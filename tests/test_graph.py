"""The model IR: neuron models, weights and initializers, and the Network container."""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pytest

import neurocomp as nc
from neurocomp.graph import validate_network
from tests.conftest import ROOT

# -- neuron models ------------------------------------------------------------------------


def test_lif_reports_every_problem_at_once():
    with pytest.raises(nc.ModelError) as info:
        nc.LIF(tau_mem_ms=-5.0, tau_syn_ms=0.0, v_th=0.0, reset="half", refractory_steps=-1)
    text = str(info.value)
    assert len(info.value.problems) == 5
    for fragment in (
        "tau_mem_ms",
        "tau_syn_ms",
        "v_th: the threshold must be > 0",
        "reset: 'half'",
        "refractory_steps",
    ):
        assert fragment in text


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"tau_mem_ms": float("nan")}, "tau_mem_ms: must be finite"),
        ({"tau_mem_ms": 10.0, "v_th": -1.0}, "v_th: the threshold must be > 0"),
        ({"tau_mem_ms": 10.0, "v_reset": 2.0, "v_th": 1.0}, "must be below the threshold"),
        ({"tau_mem_ms": 10.0, "bias": float("inf")}, "bias: must be finite"),
        ({"tau_mem_ms": "20"}, "tau_mem_ms: expected a number"),
    ],
)
def test_lif_single_problems(kwargs, fragment):
    with pytest.raises(nc.ModelError, match=fragment):
        nc.LIF(**kwargs)


def test_alif_checks_its_own_fields_and_inherits_lif_checks():
    with pytest.raises(nc.ModelError) as info:
        nc.ALIF(tau_mem_ms=20.0, v_th=-1.0, tau_adapt_ms=-3.0, beta=-0.5)
    msgs = [p.message for p in info.value.problems]
    assert any(m.startswith("v_th") for m in msgs)
    assert any(m.startswith("tau_adapt_ms") for m in msgs)
    assert any(m.startswith("beta") for m in msgs)


def test_li_and_spike_input_checks():
    with pytest.raises(nc.ModelError, match="tau_mem_ms"):
        nc.LI(tau_mem_ms=0.0)
    with pytest.raises(nc.ModelError, match="needs a seed"):
        nc.SpikeInput(rate_hz=10.0)
    with pytest.raises(nc.ModelError, match="rate_hz: must be >= 0"):
        nc.SpikeInput(rate_hz=-1.0, seed=1)
    assert nc.SpikeInput(rate_hz=5.0, seed=0).poisson and not nc.SpikeInput().poisson


def test_neuron_models_are_frozen():
    n = nc.LIF(tau_mem_ms=20.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.v_th = 2.0  # type: ignore[misc]


def test_only_li_does_not_spike():
    assert not nc.LI(tau_mem_ms=1.0).spiking
    assert nc.LIF(tau_mem_ms=1.0).spiking and nc.ALIF(tau_mem_ms=1.0).spiking and nc.SpikeInput().spiking


# -- weights --------------------------------------------------------------------------------


def test_initializer_is_deterministic_and_seed_dependent():
    spec = {"init": "normal", "std": 0.5, "seed": 4, "density": 0.3}
    a, b = nc.init_weights(spec, 50, 40), nc.init_weights(spec, 50, 40)
    c = nc.init_weights({**spec, "seed": 5}, 50, 40)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dense_and_sparse_formats_draw_the_same_matrix():
    # The block-wise draw makes the matrix independent of the storage format; >256 rows
    # exercises more than one block.
    spec = {"init": "uniform", "low": -1.0, "high": 2.0, "seed": 9, "density": 0.2}
    dense = nc.init_weights(spec, 300, 70)
    sparse = nc.init_weights({**spec, "format": "sparse"}, 300, 70)
    assert isinstance(sparse, nc.SparseWeights)
    assert np.array_equal(sparse.to_dense(), dense)
    assert sparse.nnz == np.count_nonzero(dense)


def test_initializer_statistics():
    # 200k samples: the sample std of N(0, 0.2) is within 1% of 0.2 with overwhelming probability
    # (relative standard error ~ 1/sqrt(2n) = 0.16%), and density 0.25 within 0.01 (se 0.001).
    w = nc.init_weights({"init": "normal", "mean": 0.0, "std": 0.2, "seed": 0, "density": 0.25}, 400, 2000)
    nz = w[w != 0]
    assert abs(nz.size / w.size - 0.25) < 0.01
    assert abs(nz.std() - 0.2) / 0.2 < 0.01
    g = nc.init_weights({"init": "glorot", "seed": 1}, 300, 500)
    assert abs(g.std() - np.sqrt(2.0 / 800)) / np.sqrt(2.0 / 800) < 0.01
    u = nc.init_weights({"init": "glorot", "distribution": "uniform", "gain": 2.0, "seed": 1}, 300, 500)
    assert np.abs(u).max() <= 2.0 * np.sqrt(6.0 / 800)


def test_exclude_self_removes_the_diagonal():
    w = nc.init_weights({"init": "constant", "value": 1.0, "seed": 0, "exclude_self": True}, 30, 30, recurrent=True)
    assert np.all(np.diag(w) == 0) and np.count_nonzero(w) == 30 * 29


def test_initializer_spec_errors_are_all_reported():
    with pytest.raises(ValueError) as info:
        nc.init_weights({"init": "normal", "density": 1.5, "colour": "red", "exclude_self": True}, 3, 4)
    text = str(info.value)
    for fragment in (
        "std: required",
        "seed: required",
        "density: must be in (0, 1]",
        "colour: unknown key",
        "exclude_self: only applies",
    ):
        assert fragment in text
    with pytest.raises(ValueError, match="init: 'xavier'"):
        nc.init_weights({"init": "xavier", "seed": 0}, 2, 2)


def test_sparse_weights_are_canonical_and_checked():
    a = nc.SparseWeights((3, 4), [2, 0, 1], [1, 3, 0], [0.5, -1.0, 2.0])
    b = nc.SparseWeights((3, 4), [0, 1, 2], [3, 0, 1], [-1.0, 2.0, 0.5])
    assert a == b and list(a.rows) == [0, 1, 2]
    with pytest.raises(ValueError, match="duplicate entry"):
        nc.SparseWeights((3, 4), [1, 1], [2, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="outside the shape"):
        nc.SparseWeights((3, 4), [3], [0], [1.0])
    with pytest.raises(ValueError, match="differ in length"):
        nc.SparseWeights((3, 4), [0, 1], [0], [1.0])
    with pytest.raises(ValueError):
        a.values[0] = 3.0  # read-only storage


# -- projections ------------------------------------------------------------------------------


def test_projection_reports_nan_with_its_position():
    w = np.zeros((3, 4))
    w[1, 2] = np.nan
    w[2, 3] = np.nan
    with pytest.raises(nc.ModelError, match=r"2 NaN values \(first at \[post=1, pre=2\]\)"):
        nc.Projection("a", "b", w)


def test_projection_weights_are_copied_and_read_only():
    w = np.ones((2, 2))
    p = nc.Projection("a", "b", w)
    w[0, 0] = 5.0
    assert p.weights[0, 0] == 1.0
    with pytest.raises(ValueError):
        p.weights[0, 0] = 2.0


def test_projection_sign_mode_and_delay_checks():
    with pytest.raises(nc.ModelError, match="sign_mode 'excitatory' but 1 weights are negative"):
        nc.Projection("a", "b", np.array([[1.0, -1.0]]), sign_mode="excitatory")
    with pytest.raises(nc.ModelError, match="delay_steps: must be >= 0"):
        nc.Projection("a", "b", np.ones((1, 2)), delay_steps=-1)
    with pytest.raises(nc.ModelError, match="does not match the synapses"):
        nc.Projection("a", "b", np.ones((2, 2)), delay_steps=np.zeros((3, 2), int))
    with pytest.raises(nc.ModelError, match="sign_mode: 'both'"):
        nc.Projection("a", "b", np.ones((1, 1)), sign_mode="both")  # type: ignore[arg-type]
    assert nc.Projection("a", "b", np.array([[0.0, -1.0]])).inferred_sign_mode() == "inhibitory"
    assert nc.Projection("a", "b", np.array([[1.0, -1.0]])).inferred_sign_mode() == "mixed"


def test_rule_spec_params_are_read_only():
    r = nc.RuleSpec("stdp", {"lr": 0.1, "taus": [1, 2]})
    with pytest.raises(TypeError):
        r.params["lr"] = 0.2  # type: ignore[index]
    assert r.params["taus"] == (1, 2)
    assert r == nc.RuleSpec("stdp", {"taus": [1, 2], "lr": 0.1})


# -- network --------------------------------------------------------------------------------


def test_network_collects_every_cross_element_problem():
    pops = [
        nc.Population("a", 3, nc.SpikeInput()),
        nc.Population("b", 2, nc.LIF(tau_mem_ms=10.0)),
        nc.Population("b", 5, nc.LIF(tau_mem_ms=10.0)),  # duplicate population
        nc.Population("r", 1, nc.LI(tau_mem_ms=10.0)),
    ]
    projs = [
        nc.Projection("a", "b", np.ones((2, 4))),  # shape mismatch
        nc.Projection("a", "ghost", np.ones((2, 3))),  # unknown population
        nc.Projection("b", "a", np.ones((3, 2))),  # into a SpikeInput
        nc.Projection("r", "b", np.ones((2, 1))),  # from a non-spiking LI
        nc.Projection("a", "b", np.ones((2, 3)), name="x"),
        nc.Projection("a", "b", np.ones((2, 3)), name="x"),  # duplicate projection
    ]
    with pytest.raises(nc.ModelError) as info:
        nc.Network(pops, projs, name="broken")
    text = str(info.value)
    assert len(info.value.problems) == 6
    for fragment in (
        "population 'b': duplicate name",
        "shape (2, 4) does not match",
        "unknown population 'ghost'",
        "is a SpikeInput and cannot receive",
        "does not spike",
        "projection 'x': duplicate name",
    ):
        assert fragment in text


def test_network_queries(small_net):
    assert [p.name for p in small_net.populations] == ["in", "drive", "rec", "lif", "out"]
    assert small_net.n_neurons == 25
    assert {p.name for p in small_net.projections_to("rec")} == {"in->rec", "rec->rec"}
    assert {p.name for p in small_net.projections_from("rec")} == {"rec->rec", "rec->lif"}
    assert small_net.projection("lif-out").plasticity.name == "stdp"
    with pytest.raises(KeyError, match="no population 'zzz'"):
        small_net.population("zzz")
    assert validate_network(small_net) == []


def test_graph_view_is_read_only(small_net):
    g = small_net.graph
    assert g.number_of_edges() == 5
    with pytest.raises(nx.NetworkXError, match="Frozen graph"):
        g.add_node("intruder")


def test_add_rejects_one_bad_element_and_keeps_the_network_unchanged(small_net):
    before = small_net.projections
    with pytest.raises(nc.ModelError, match="unknown population"):
        small_net.add_projection(nc.Projection("in", "nowhere", np.ones((1, 6))))
    assert small_net.projections == before


def test_with_rule_params_copies_the_network_with_the_rules_params_replaced():
    net = nc.load_network(ROOT / "examples" / "eprop_pattern.yaml")
    sym = net.with_rule_params(feedback="symmetric", lr=1e-3)
    for old, new in zip(net.projections, sym.projections, strict=True):
        assert new.plasticity.params == {**old.plasticity.params, "feedback": "symmetric", "lr": 1e-3}
        assert old.plasticity.params["feedback"] == "random"  # the original is unchanged
        np.testing.assert_array_equal(new.weights, old.weights)
    assert [p.name for p in sym.populations] == [p.name for p in net.populations] and sym.name == net.name
