"""e-prop on spinnaker2's programmable cores with several hidden populations: the learner
splits into one exact rule per hidden population. Oracle: the same network with the hidden
populations merged into one (their union, the weights rearranged into one matrix), whose
single learner is the pre-existing, separately tested path; the weights each learns over a
trial must agree."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.compiler import compile
from neurocomp.emulator import Emulator

PARAMS = {"lr": 3.0e-3, "feedback": "random", "dampening": 0.3, "seed": 5}
N_IN, NA, NB, T = 12, 7, 5, 200


def _nets():
    rng = np.random.default_rng(0)
    w_in = rng.normal(0, 0.3, (NA + NB, N_IN))
    w_rec = rng.normal(0, 0.1, (NA + NB, NA + NB))
    np.fill_diagonal(w_rec, 0.0)
    w_out = rng.normal(0, 0.05, (2, NA + NB))
    # multiples of 2^-7 (|w| < 1): exact in any of the chip's weight formats, so that the union's
    # and the parts' initial weights are the same numbers whatever exponent each projection gets
    w_in, w_rec, w_out = (np.round(w * 128) / 128 for w in (w_in, w_rec, w_out))
    lif = nc.LIF(tau_mem_ms=30.0, v_th=0.6, reset="zero")
    rule = nc.RuleSpec("eprop", PARAMS)
    inp, out = nc.Population("in", N_IN, nc.SpikeInput()), nc.Population("out", 2, nc.LI(tau_mem_ms=30.0))
    union = nc.Network(name="union")
    union.add(inp, nc.Population("h", NA + NB, lif), out)
    union.add(nc.Projection("in", "h", w_in, plasticity=rule), nc.Projection("h", "h", w_rec, plasticity=rule),
              nc.Projection("h", "out", w_out, plasticity=rule))  # fmt: skip
    split = nc.Network(name="split")
    split.add(inp, nc.Population("a", NA, lif), nc.Population("b", NB, lif), out)
    blocks = {"a": slice(0, NA), "b": slice(NA, NA + NB)}
    for post, r in blocks.items():
        split.add(nc.Projection("in", post, w_in[r], plasticity=rule))
        for pre, c in blocks.items():
            split.add(nc.Projection(pre, post, w_rec[r, c], plasticity=rule))
    for pre, c in blocks.items():
        split.add(nc.Projection(pre, "out", w_out[:, c], plasticity=rule))
    return union, split, blocks


def _learn(net, x, target):
    emu = Emulator(compile(net, "spinnaker2", out=io.StringIO()), learn_arithmetic="float")
    emu.run(T, inputs={"in": x, "out/target": target}, learn=True)
    return {n: syn.engine.weights[0].astype(np.float64) for n, syn in emu.plastic.items()}


def test_several_hidden_populations_learn_as_their_union():
    rng = np.random.default_rng(1)
    x = (rng.random((T, N_IN)) < 0.05).astype(np.uint8)
    target = np.stack([np.sin(np.arange(T) / 20), np.cos(np.arange(T) / 30)], axis=1)
    union, split, blocks = _nets()
    wu, ws = _learn(union, x, target), _learn(split, x, target)
    got = {
        "in->h": np.vstack([ws["in->a"], ws["in->b"]]),
        "h->h": np.block([[ws["a->a"], ws["b->a"]], [ws["a->b"], ws["b->b"]]]),
        "h->out": np.hstack([ws["a->out"], ws["b->out"]]),
    }
    w0 = {p.name: p.weights for p in union.projections}
    for name, w in got.items():
        assert np.abs(wu[name] - w0[name]).max() > 1e-4, name  # it learned something
        # float32 dynamics summed over the projections in another order: 1e-5 of the weights' scale
        np.testing.assert_allclose(w, wu[name], atol=1e-5 * np.abs(w0[name]).max(), err_msg=name)


def test_evidence_accumulation_model_compiles_for_spinnaker2():
    from neurocomp.graph.io import load_network

    from .conftest import ROOT

    prog = compile(load_network(ROOT / "examples" / "eprop_evidence.yaml"), "spinnaker2",
                   out=io.StringIO())  # fmt: skip
    emu = Emulator(prog)
    assert {p.hidden for p in next(iter(emu._learners.values())).parts} == {"lif", "alif"}


def test_a_hidden_population_without_a_readout_projection_is_refused():
    _, split, _ = _nets()
    net = nc.Network(split.populations, [p for p in split.projections if p.name != "b->out"], name="no-b-out")
    with pytest.raises(nc.NeurocompError, match=r"\['b'\] have no learned projection onto 'out'"):
        compile(net, "spinnaker2", out=io.StringIO())
