"""The YAML + npz model format: exact round trips and complete error reports."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import neurocomp as nc
from tests.conftest import EXAMPLES


def _write(tmp_path, text: str, name: str = "model.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("inline_max", [0, 64, 10_000])
def test_round_trip_is_exact(small_net, tmp_path, inline_max):
    # inline_max=0 puts every array in the .npz, 10_000 puts every array inline in the YAML.
    path = nc.save_network(small_net, tmp_path / "net.yaml", inline_max=inline_max)
    back = nc.load_network(path)
    assert back == small_net
    assert (tmp_path / "net.npz").exists() == (inline_max == 0)
    for a, b in zip(small_net.projections, back.projections, strict=True):
        assert type(a.weights) is type(b.weights)
        assert np.asarray(a.delay_steps).dtype.kind == np.asarray(b.delay_steps).dtype.kind == "i"


def test_round_trip_of_saved_file_is_a_fixed_point(small_net, tmp_path):
    p1 = nc.save_network(small_net, tmp_path / "a.yaml", inline_max=0)
    p2 = nc.save_network(nc.load_network(p1), tmp_path / "b.yaml", inline_max=0)
    assert p1.read_text().replace("a.npz", "b.npz") == p2.read_text()


def test_equality_detects_a_one_ulp_change(small_net, tmp_path):
    proj = small_net.projection("in->rec")
    w = proj.dense_weights()
    w[0, 0] = np.nextafter(w[0, 0], np.inf)
    other = nc.Network(
        small_net.populations,
        [nc.Projection("in", "rec", w) if p.name == "in->rec" else p for p in small_net.projections],
        name=small_net.name,
        description=small_net.description,
    )
    assert other != small_net


@settings(max_examples=40, deadline=None)
@given(
    w=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 6)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
    ),
    inline=st.booleans(),
)
def test_round_trip_any_finite_weights(tmp_path_factory, w, inline):
    d = tmp_path_factory.mktemp("rt")
    net = nc.Network(
        [nc.Population("a", w.shape[1], nc.SpikeInput()), nc.Population("b", w.shape[0], nc.LIF(tau_mem_ms=3.0))],
        [nc.Projection("a", "b", w)],
    )
    back = nc.load_network(nc.save_network(net, d / "m.yaml", inline_max=10_000 if inline else 0))
    assert np.array_equal(back.projection("a->b").weights, w)  # bit-exact, signed zeros aside
    assert np.array_equal(np.signbit(back.projection("a->b").weights), np.signbit(w))


def test_examples_load():
    names = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert names, "no example models found"
    for path in EXAMPLES.glob("*.yaml"):
        net = nc.load_network(path)
        assert net.n_neurons > 0 and net.projections


def test_weights_from_files_and_initializers(tmp_path):
    dense = np.arange(12.0).reshape(3, 4) / 7
    np.save(tmp_path / "w.npy", dense)
    np.savez(
        tmp_path / "arrays.npz",
        **{
            "m": dense,
            "s/rows": np.array([0, 2]),
            "s/cols": np.array([1, 3]),
            "s/values": np.array([0.5, -0.25]),
            "s/shape": np.array([3, 4]),
        },
    )
    path = _write(
        tmp_path,
        """
        populations:
          - {name: a, size: 4, neuron: {model: SpikeInput}}
          - {name: b, size: 3, neuron: {model: LIF, tau_mem_ms: 10}}
        projections:
          - {name: npy, pre: a, post: b, weights: {file: w.npy}}
          - {name: npz, pre: a, post: b, weights: {file: arrays.npz, key: m}}
          - {name: sparse, pre: a, post: b, weights: {file: arrays.npz, key: s, format: sparse}}
          - {name: init, pre: a, post: b, weights: {init: normal, std: 1.0, seed: 5}}
          - {name: inline, pre: a, post: b, weights: [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]}
    """,
    )
    net = nc.load_network(path)
    assert np.array_equal(net.projection("npy").weights, dense)
    assert np.array_equal(net.projection("npz").weights, dense)
    assert net.projection("sparse").weights == nc.SparseWeights((3, 4), [0, 2], [1, 3], [0.5, -0.25])
    assert np.array_equal(
        net.projection("init").weights, nc.init_weights({"init": "normal", "std": 1.0, "seed": 5}, 3, 4)
    )
    assert net.projection("inline").weights[2, 3] == 12.0


# -- validation errors: every kind, and all of them at once -----------------------------------

BROKEN = """
    name: broken
    populations:
      - {name: in, size: 3, neuron: {model: SpikeInput}}
      - {name: rec, size: 2, neuron: {model: LIF, tau_mem_ms: -20, v_th: 0}}
      - {name: rec, size: 4, neuron: {model: LIF, tau_mem_ms: 20}}
      - {name: ro, size: 1, neuron: {model: Izhikevich}}
    projections:
      - {pre: in, post: rec, weights: [[1, 2], [3, 4]]}
      - {pre: in, post: nowhere, weights: [[1, 2, 3]]}
      - {name: nan, pre: in, post: rec, weights: [[1, .nan, 3], [4, 5, 6]]}
      - {name: dup, pre: in, post: rec, weights: [[1, 2, 3], [4, 5, 6]]}
      - {name: dup, pre: in, post: rec, weights: [[1, 2, 3], [4, 5, 6]]}
      - {name: badinit, pre: in, post: rec, weights: {init: normal, std: 1}}
"""


def test_every_problem_of_a_model_is_reported_at_once(tmp_path):
    path = _write(tmp_path, BROKEN)
    with pytest.raises(nc.ModelError) as info:
        nc.load_network(path)
    text = str(info.value)
    expected = [
        "population 'rec': neuron.tau_mem_ms: a time constant must be > 0 ms, got -20",  # negative time constant
        "population 'rec': neuron.v_th: the threshold must be > 0, got 0",  # threshold <= 0
        "population 'rec': duplicate name (populations[2])",  # duplicate name
        "population 'ro': neuron.model: unknown model 'Izhikevich'",
        "projection 'in->rec': weights: shape (2, 2) does not match",  # shape mismatch
        "projection 'in->nowhere': post: unknown population 'nowhere'",  # unknown population
        "projection 'nan': weights: 1 NaN value (first at [post=0, pre=1])",  # NaN weight
        "projection 'dup': duplicate name",
        "projection 'badinit': weights: seed: required",
    ]
    for fragment in expected:
        assert fragment in text, fragment
    assert len(info.value.problems) == len(expected)
    assert str(path) in text


def test_unknown_keys_are_reported_with_their_place(tmp_path):
    path = _write(
        tmp_path,
        """
        populations:
          - {name: a, size: 2, neuron: {model: LIF, tau_mem_ms: 5, tau_mem: 3}, colour: red}
        projections: []
        extras: 1
    """,
    )
    with pytest.raises(nc.ModelError) as info:
        nc.load_network(path)
    text = str(info.value)
    assert "extras: unknown top-level key" in text
    assert "population 'a': colour: unknown key" in text


def test_yaml_syntax_and_duplicate_keys_name_the_line(tmp_path):
    bad = _write(tmp_path, "populations: [\n  {name: a,\n", "bad.yaml")
    with pytest.raises(nc.ModelError, match=r"bad\.yaml:\d+:\d+: invalid YAML"):
        nc.load_network(bad)
    dup = _write(tmp_path, "name: a\nname: b\n", "dup.yaml")
    with pytest.raises(nc.ModelError, match=r"dup\.yaml:2:1: .*duplicate key 'name' \(first at line 1\)"):
        nc.load_network(dup)


def test_missing_files_are_model_errors(tmp_path):
    with pytest.raises(nc.ModelError, match="cannot read file"):
        nc.load_network(tmp_path / "absent.yaml")
    path = _write(
        tmp_path,
        """
        populations:
          - {name: a, size: 2, neuron: {model: SpikeInput}}
          - {name: b, size: 2, neuron: {model: LI, tau_mem_ms: 5}}
        projections:
          - {pre: a, post: b, weights: {file: nothere.npz, key: w}}
    """,
    )
    with pytest.raises(nc.ModelError, match="nothere.npz not found"):
        nc.load_network(path)


def test_unsupported_format_version(tmp_path):
    path = _write(tmp_path, "neurocomp: 2\npopulations: []\n")
    with pytest.raises(nc.ModelError, match="format version 2 is not supported"):
        nc.load_network(path)
