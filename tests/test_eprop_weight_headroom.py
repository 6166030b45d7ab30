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


def test_learned_projections_get_weight_headroom_and_the_log_says_what_it_costs(tmp_path, monkeypatch):
    """With role defaults of 0 / 1 / 1 bits (the shipped defaults are 0: the chip's resolution
    first, README) the recurrent and readout projections' ranges are at least twice their
    largest initial weight (one bit above the exponent the quantizer fits to them, which
    leaves the largest initial mantissa above half the range: learned weights saturate right
    there), the input projections' are not widened (their role's default, 0); the log states
    each projection's bits and resolution; ``weight_headroom_bits`` overrides every role's,
    ``readout_headroom_bits`` the readout's; a default the profile's largest exponent stops is
    reduced and said, a requested one refused by name."""
    from neurocomp.learning.programmable import WEIGHT_HEADROOM_BITS

    # the shipped defaults: no headroom (lowered-fixed lost more than lowered-float gained)
    assert WEIGHT_HEADROOM_BITS == {"input": 0, "recurrent": 0, "readout": 0}
    default = nc.compile(load_network(ROOT / "examples" / "eprop_pattern_100.yaml"), "loihi2", out=io.StringIO())
    for role, bits in {"input": 0, "recurrent": 1, "readout": 1}.items():  # the same dict object eprop reads
        monkeypatch.setitem(WEIGHT_HEADROOM_BITS, role, bits)
    net = load_network(ROOT / "examples" / "eprop_pattern_100.yaml")
    wide = nc.compile(net, "loihi2", out=io.StringIO())
    tight = nc.compile(net.with_rule_params(weight_headroom_bits=0), "loihi2", out=io.StringIO())
    hi = wide.profile.formats.weight.mantissa_range("mixed")[1]
    notes = _notes(wide)
    for name, role in zip(LEARNED, ("input", "recurrent", "readout"), strict=True):
        a, b = tight.projection(name), wide.projection(name)
        bits = WEIGHT_HEADROOM_BITS[role]
        assert np.abs(a.weights).max() > hi // 2, name  # the quantizer's fit: no room to grow 2x
        assert b.weight_exp == a.weight_exp + bits and np.abs(b.weights).max() <= hi // 2**bits + 1, name
        assert f"{name} ({role}): weight_headroom_bits {bits} (the default for {role} projections)" in notes
        if bits:
            assert f"{name} ({role}): weight exponent {a.weight_exp} -> {b.weight_exp} (weight_headroom_bits " \
                   f"{bits}): learned weights up to" in notes and f"per LSB, {bits} bit(s) coarser" in notes
    assert WEIGHT_HEADROOM_BITS["recurrent"] >= 1 and WEIGHT_HEADROOM_BITS["readout"] >= 1
    assert "(the default for" not in _notes(tight)
    for name in LEARNED:  # shipped defaults of 0: the quantizer's fit, as with the explicit 0
        assert default.projection(name).weight_exp == tight.projection(name).weight_exp, name
    ro = nc.compile(net.with_rule_params(readout_headroom_bits=3), "loihi2", out=io.StringIO())
    assert ro.projection("rec->out").weight_exp == tight.projection("rec->out").weight_exp + 3
    assert ro.projection("rec->rec").weight_exp == wide.projection("rec->rec").weight_exp
    with pytest.raises(nc.NeurocompError, match="weight_headroom_bits 30: weight exponent"):
        nc.compile(net.with_rule_params(weight_headroom_bits=30), "loihi2", out=io.StringIO())
    # recurrent weights that already need loihi2's largest exponent: the default cannot be had
    big = tmp_path / "big.yaml"
    big.write_text(MODEL.read_text().replace("std: 0.1, seed: 3", "std: 0.5, seed: 3"))
    prog = nc.compile(load_network(big), "loihi2", out=io.StringIO())
    assert prog.projection("rec->rec").weight_exp == prog.profile.formats.weight.exponent_max
    assert "rec->rec (recurrent): weight_headroom_bits 1 (default) reduced to 0" in _notes(prog)


# lr chosen so that one trial reaches every learned projection's edge in that arithmetic: with the
# product floor offset (the default) the chip's hidden weights no longer drift down, so 10 leaves
# its in->rec off the edge, while 30 leaves the float engine's off it
@pytest.mark.parametrize("arithmetic, lr", [("chip", 30.0), ("float", 10.0)])
def test_weights_pushed_past_the_range_are_counted_not_hidden(arithmetic, lr):
    """With a learning rate thousands of times the example's, one trial drives weights into the
    range's edge: the emulator's count equals the synapses whose weights lie within one LSB of
    the largest magnitude (counted here from the weights themselves), and is positive for every
    learned projection; at the compiled weights none is."""
    net = load_network(MODEL).with_rule_params(lr=lr)
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


def test_negative_weight_headroom_gives_a_finer_lsb_and_counts_the_saturated_initial_weights():
    """``weight_headroom_bits`` -1: every hidden projection's exponent one lower (half the LSB),
    its mantissas twice the quantizer's, those beyond the range at its (even: loihi2 drops a mixed
    sign's LSB) limit, and the compile log counts them; an exponent below the profile's smallest
    is refused by name."""
    net = load_network(ROOT / "examples" / "eprop_pattern_100.yaml").with_rule_params(readout_headroom_bits=0)
    tight = nc.compile(net.with_rule_params(weight_headroom_bits=0), "loihi2", out=io.StringIO())
    fine = nc.compile(net.with_rule_params(weight_headroom_bits=-1), "loihi2", out=io.StringIO())
    lo, hi = fine.profile.formats.weight.mantissa_range("mixed")
    lo, hi = lo + lo % 2, hi - hi % 2  # -256, 254: the even mantissas loihi2 keeps in mixed sign mode
    notes = _notes(fine)
    for name in ("in->rec", "rec->rec"):
        a, b = tight.projection(name), fine.projection(name)
        assert b.weight_exp == a.weight_exp - 1, name
        doubled = 2 * a.weights.astype(np.int64)
        beyond = int(((doubled < lo) | (doubled > hi)).sum())
        assert beyond > 0, name  # the quantizer fits the largest initial weight: it saturates
        np.testing.assert_array_equal(b.weights, np.clip(doubled, lo, hi), err_msg=name)
        assert f"per LSB, 1 bit(s) finer, {beyond} initial weight(s) saturated" in notes, name
    assert fine.projection("rec->out").weight_exp == tight.projection("rec->out").weight_exp  # readout's own
    with pytest.raises(nc.NeurocompError, match="weight_headroom_bits -30: weight exponent .* below"):
        nc.compile(net.with_rule_params(weight_headroom_bits=-30), "loihi2", out=io.StringIO())
