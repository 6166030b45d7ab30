"""e-prop's ``floor_offset`` on loihi2's engine (``rules.eprop._floor_offset``): the dither the
hidden neuron sends in ``y1`` and the ``dw`` term ``2^-7*u0*sgn(t)*y1`` offset, on average, what
the engine's floor of the weight update's product ``-6*2^-7*u0*t*y2`` takes.

The derivation the tests check against (Lava's applier, ``loihi2-fixed-point.md`` §5.5): the
product ``-6*t*y2`` is 4 + 9 + 7 = 20 bits wide, 5 more than the accumulator's 15, so the
engine adds ``floor(-6*t*y2 / 32)`` accumulator units (1/128 weight LSB each) and loses
``(-6*t*y2 mod 32) / 32`` of one. ``-6*t*y2 mod 32 = 2 * (-3*t*y2 mod 16)``, and ``-3`` is
invertible modulo 16, so where ``t*y2`` is uniform modulo 16 the residue is uniform over
0, 2, ..., 30 and the mean loss is ``15/32`` of a unit per synapse-step. The offset adds one
unit (``floor(32 * sgn(t) / 32)``) on 15 of every 32 steps where ``y2 != 0`` and ``t > 0``.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.errors import NeurocompError
from neurocomp.graph.io import load_network
from neurocomp.learning.engine import SumOfProductsEngine
from neurocomp.learning.quantities import floor_loss, floor_offset
from tests.conftest import ROOT

LOIHI2 = nc.load_profile("loihi2")
MODEL = ROOT / "examples" / "eprop_pattern_100.yaml"


def _compiled(text: str | None = None):
    net = load_network(MODEL) if text is None else _net(text)
    return nc.compile(net, "loihi2", out=io.StringIO())


def _net(text: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "net.yaml"
        path.write_text(text)
        return load_network(path)


def _hidden_rule(prog, name: str = "in->rec"):
    return next(p for p in prog.projections if p.name == name).learning


def test_floor_loss_is_the_floors_mean_over_a_period():
    # the mean of (m*x mod 2^s) / 2^s over x = 0 .. 2^s - 1, enumerated
    for m in (-6, -5, 3, 4, -8, 7):
        for s in (3, 5):
            count, period = floor_loss(m, s)
            mean = sum((m * x) % 2**s for x in range(2**s)) / 2**s / 2**s
            assert math.isclose(count / period, mean), (m, s, count, period, mean)
    assert floor_loss(-6, 5) == (15, 32)  # the derivation above


def test_dither_sends_count_of_every_period_steps_where_the_product_is_nonzero():
    value, count, period = 32, 15, 32
    j = np.arange(7)
    of = np.array([3, -1, 0, 5, 2, 0, -7])
    for t0 in (0, 5, 1000):
        sent = np.array([floor_offset(t, j, of, value, count, period) for t in range(t0, t0 + period)])
        assert set(np.unique(sent)) <= {0, value}
        assert (sent.sum(axis=0) == np.where(of != 0, value * count, 0)).all()  # any window of a period
        # spread evenly: never more than ceil(period / count) steps between two sends
        on = sent[:, 0] > 0
        gaps = np.diff(np.flatnonzero(np.concatenate([on, on])))
        assert gaps.max() <= -(-period // count)


def test_the_lowering_adds_the_offset_and_states_it():
    prog = _compiled()
    rule = _hidden_rule(prog)
    assert str(rule.dw) == "-6*2^-7*u0*t*y2 + 2^-7*u0*sgn(t)*y1"
    assert dict(rule.graded["y1"]) == {"source": "floor_offset", "of": "y2", "value": 32, "count": 15, "period": 32}
    # the readout's x1*y2 is shifted by 3: floor_loss(-6, 3) = 3/8 of a unit of 2^-6; its tag
    # holds the previous epoch's x1, so sgn(t) marks where x1 (and the product) can be nonzero
    readout = _hidden_rule(prog, "rec->out")
    assert str(readout.dw) == "-6*2^-6*u0*x1*y2 + 2^-6*u0*sgn(t)*y1" and str(readout.dt) == "u0*x1 - u0*t"
    assert dict(readout.graded["y1"]) == {"source": "floor_offset", "of": "y2", "value": 32, "count": 3, "period": 8}
    notes = [n for r in prog.pass_log for n in r.get("notes", ()) if "floor_offset" in n]
    assert any("15 of 32 steps" in n for n in notes) and any("3 of 8 steps" in n for n in notes)
    text = MODEL.read_text()
    assert "reg_rate_hz: 10.0}" in text  # else the replacement below would leave the offset on
    off = _compiled(text.replace("reg_rate_hz: 10.0}", "reg_rate_hz: 10.0, floor_offset: false}"))
    assert str(_hidden_rule(off).dw) == "-6*2^-7*u0*t*y2" and "y1" not in _hidden_rule(off).graded
    with pytest.raises(NeurocompError, match="floor_offset must be true or false, got 'yes'"):
        _compiled(MODEL.read_text().replace("reg_rate_hz: 10.0}", "reg_rate_hz: 10.0, floor_offset: 'yes'}"))
    # at t_epoch 2 the engine learns on even steps only: a per-step dither would give each neuron
    # the same phases at every epoch (a biased share), so the lowering sends none and says so
    epochs = _compiled(text.replace("reg_rate_hz: 10.0}", "reg_rate_hz: 10.0, t_epoch: 2}"))
    assert "y1" not in _hidden_rule(epochs).graded and "sgn" not in str(_hidden_rule(epochs).dw)
    notes = [n for r in epochs.pass_log for n in r.get("notes", ()) if "floor_offset" in n]
    assert any("none at t_epoch 2" in n for n in notes)


def _drift(rule, offset: bool, steps: int = 1024, seed: int = 0) -> tuple[float, float]:
    """The hidden rule on the engine with its tag held (no dt): per synapse-step, the mean
    weight change of the chip (floored products, the dither as the lowering asks for it in
    ``y1``) minus that of exact products (no dither: nothing to offset), in accumulator units.
    Both engines round with the same random numbers, so the difference is the floor's bias
    and the offset's, with little rounding noise. Returns it and its standard error."""
    rng = np.random.default_rng(seed)
    n_post, n_pre = 16, 24
    t = 2 * rng.integers(0, 16, (1, n_post, n_pre)) + 1  # odd: t*y2 mod 16 uniform with y2
    src = rule.graded["y1"] if offset else None
    rule = dataclasses.replace(rule, dt=None, dd=None, graded={"y1": {"source": "input"}, "y2": {"source": "input"}})
    w0 = np.zeros((n_post, n_pre), np.int64)
    chip = SumOfProductsEngine(rule, w0, engine=LOIHI2.learning)
    exact = SumOfProductsEngine(rule, w0, engine=LOIHI2.learning, float_quantities=("products",))
    for eng in (chip, exact):
        arrays, rngs = eng.get_state()
        eng.set_state({**arrays, "t": t.copy()}, rngs)
    none = np.zeros((1, n_pre), bool)
    j = np.arange(n_post)
    per_step = []
    for k in range(1, steps + 1):
        y2 = rng.integers(-64, 64, (1, n_post))  # 8 whole periods of 16: t*y2 mod 16 uniform
        y1 = np.zeros((1, n_post)) if src is None else floor_offset(k, j, y2, src["value"], src["count"], src["period"])
        before = chip.weights.astype(np.float64) - exact.weights
        for eng, y in ((chip, y1), (exact, np.zeros((1, n_post)))):
            eng.spikes(k, none, np.zeros((1, n_post), bool), {"y1": y, "y2": y2})
            eng.learn(k)
        per_step.append(((chip.weights - exact.weights) - before).mean() * 128)
    per_step = np.array(per_step)
    return float(per_step.mean()), float(per_step.std() / np.sqrt(steps))


def test_the_offset_cancels_the_floors_mean_loss():
    rule = _hidden_rule(_compiled())
    bias, se = _drift(rule, offset=False)
    # without the offset: the floor's 15/32 of a unit per synapse-step (the derivation above)
    assert abs(bias + 15 / 32) < max(4 * se, 0.03), (bias, se)
    # with it: the dither adds 15/32 where y2 != 0 (127 of 128 values), cancelling it to
    # 15/32/128 = 0.004; an offset that is off or of the wrong sign is -15/32 or -30/32
    bias, se = _drift(rule, offset=True)
    assert abs(bias) < max(4 * se, 0.03), (bias, se)


def test_the_float_levels_send_no_offset():
    # lowered-float and exact products have no floor to offset: the dither is 0, and the
    # first trial's weights equal those of the rule without the offset term
    from neurocomp.emulator import Emulator
    from neurocomp.tasks import make

    on = _compiled()
    text = MODEL.read_text()
    assert "reg_rate_hz: 10.0}" in text  # else the replacement below would leave the offset on
    off = _compiled(text.replace("reg_rate_hz: 10.0}", "reg_rate_hz: 10.0, floor_offset: false}"))
    tk = make("pattern-generation", seed=0, n_in=100, n_out=1, n_rec=100)
    inputs = {"in": tk.inputs[:200], "out.error/target": tk.targets[:200, 0, :]}
    for kw in ({"learn_arithmetic": "float"}, {"learn_float": ("products",)}):
        w = []
        for prog in (on, off):
            emu = Emulator(prog, seed=0, **kw)
            start = {n: emu.plastic[n].engine.weights.copy() for n in ("in->rec", "rec->rec", "rec->out")}
            emu.run(200, inputs=inputs, learn=True)
            w.append({n: emu.plastic[n].engine.weights.copy() for n in start})
            # the comparison means something only if the trial learned
            assert all((w[-1][n] != start[n]).any() for n in start), kw
        assert all((w[0][n] == w[1][n]).all() for n in w[0]), kw



def test_an_offset_beyond_the_graded_range_is_a_named_error():
    # a profile whose graded values are narrower than the offset's unit (2^5 here) cannot send
    # it: y1 would saturate and the term lose its unit, so the lowering refuses by name
    from neurocomp.learning.lowering import LoweringContext
    from neurocomp.rules.base import LoweringError
    from neurocomp.rules.eprop import _floor_offset

    ctx = LoweringContext("in->rec", LOIHI2, 1.0, 1.0)
    assert _floor_offset(LOIHI2.learning, (-6, -7), ("t", "y2"), {"floor_offset": True}, ctx) is not None
    narrow = dataclasses.replace(LOIHI2.learning, params={**LOIHI2.learning.params, "trace_bits": 5})
    with pytest.raises(LoweringError, match=r"'in->rec'.*y1 = 32, beyond the 5-bit graded range \(max 31\)"):
        _floor_offset(narrow, (-6, -7), ("t", "y2"), {"floor_offset": True}, ctx)
