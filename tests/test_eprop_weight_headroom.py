"""The learned weights' range on a fixed-point engine: e-prop's projections get headroom above
their initial weights (the quantizer fits the range to those), the compile log states it and
its cost in resolution, and learned weights at the range's edge are counted and reported."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.graph.io import load_network

from .conftest import ROOT

MODEL = ROOT / "examples" / "eprop_pattern.yaml"
LEARNED = ("in->rec", "rec->rec", "rec->out")


def _notes(prog) -> str:
    return "\n".join(n for r in prog.pass_log for n in r.get("notes", []))


def test_learned_projections_get_weight_headroom_and_the_log_says_what_it_costs():
    """By default every e-prop projection's range is at least twice its largest initial weight
    (``WEIGHT_HEADROOM_BITS`` above the exponent the quantizer fits to them, fewer where the
    profile's largest exponent stops it, which the log says; without it the largest initial
    mantissa lies above half the range and the learned weights saturate right there);
    ``weight_headroom_bits`` 0 gives the quantizer's exponents back, ``readout_headroom_bits``
    overrides the readout's, and the log names bits and resolution per projection."""
    from neurocomp.learning.programmable import WEIGHT_HEADROOM_BITS

    net = load_network(ROOT / "examples" / "eprop_pattern_100.yaml")
    wide = nc.compile(net, "loihi2", out=io.StringIO())
    tight = nc.compile(net.with_rule_params(weight_headroom_bits=0), "loihi2", out=io.StringIO())
    wf = wide.profile.formats.weight
    hi = wf.mantissa_range("mixed")[1]
    notes = _notes(wide)
    for name in LEARNED:
        a, b = tight.projection(name), wide.projection(name)
        bits = min(WEIGHT_HEADROOM_BITS, wf.exponent_max - a.weight_exp)
        assert bits >= 1 and np.abs(a.weights).max() > hi // 2, name  # the quantizer's fit: no room to grow 2x
        assert b.weight_exp == a.weight_exp + bits and np.abs(b.weights).max() <= hi // 2**bits + 1, name
        assert f"{name} (" in notes and f"-> {b.weight_exp} (weight_headroom_bits {bits})" in notes, name
        assert f"per LSB, {bits} bit(s) coarser" in notes, name
        if bits < WEIGHT_HEADROOM_BITS:
            assert f"{name} (hidden): weight_headroom_bits {WEIGHT_HEADROOM_BITS} (default) reduced to {bits}" in notes
    assert "weight_headroom_bits" not in _notes(tight)
    ro = nc.compile(net.with_rule_params(readout_headroom_bits=3), "loihi2", out=io.StringIO())
    assert ro.projection("rec->out").weight_exp == tight.projection("rec->out").weight_exp + 3
    assert ro.projection("rec->rec").weight_exp == wide.projection("rec->rec").weight_exp
    with pytest.raises(nc.NeurocompError, match="weight_headroom_bits 30: weight exponent"):
        nc.compile(net.with_rule_params(weight_headroom_bits=30), "loihi2", out=io.StringIO())


@pytest.mark.parametrize("arithmetic", ["chip", "float"])
def test_weights_pushed_past_the_range_are_counted_not_hidden(arithmetic):
    """With a learning rate 1000x the example's, one trial drives weights into the range's
    edge: the emulator's count equals the synapses whose weights lie within one LSB of the
    largest magnitude (counted here from the weights themselves), and is positive for every
    learned projection; at the compiled weights none is."""
    net = load_network(MODEL).with_rule_params(lr=3.0)
    prog = nc.compile(net, "loihi2", out=io.StringIO())
    emu = Emulator(prog, learn_arithmetic=arithmetic)
    assert all(int(c[0]) == 0 for c, _ in emu.weights_at_edge().values())
    steps = 250
    rng = np.random.default_rng(0)
    target = np.sin(np.arange(steps) / 10.0)[:, None, None] * np.ones((1, 1, 1))
    x = (rng.random((steps, 1, 20)) < 0.05).astype(np.int8)
    emu.run(steps, inputs={"in": x, "out.error/target": target[:, 0, :]}, learn=True)
    lo, hi = prog.profile.formats.weight.mantissa_range("mixed")
    counts = emu.weights_at_edge()
    for name in LEARNED:
        w = emu.get_weights(name)[0]
        count, synapses = counts[name]
        assert synapses == w.size
        assert int(count[0]) == int(((w > hi - 1) | (w < lo + 1)).sum()) > 0, name
