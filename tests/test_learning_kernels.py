"""The compiled learning engine against its numpy form, bit for bit: the compiled phases
(neurocomp/kernels/learning.py, the rule kernels of learning_rules.py and the bytecode
interpreter) are event-driven (they visit only the synapses whose
products can be nonzero), the numpy form computes every synapse; both must give the same
integers (chip) and the same floats (float arithmetic) on every step, with the same random
streams. Lava itself is compared in test_lava_learning; this covers what Lava cannot run
(batches, shared weights, masks, the float arithmetic, round to nearest) and the edge of
the event-driven shortcut (a tag at the accumulator's lower bound). Also: plastic delivery
compiled equals its numpy form."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.learning.engine import SumOfProductsEngine
from neurocomp.learning.rule import EngineRule, Trace
from tests.conftest import EXAMPLES

ENGINE = nc.load_profile("loihi2").learning
TRACES = {"x1": Trace(12.6, 4), "x2": Trace(7.3, 3), "y1": Trace(10.3, 6), "y2": Trace(9.0, 2), "y3": Trace(5.5, 9)}

# every kind of product: x0, y0 and u_k dependencies, x0/y0 factors, traces, w t d with
# constants and sgn, wide products (floor-shifted), big ones (saturating the accumulator)
RULES = {
    "stdp": {"dw": "2^-2*x1*y0 - 2^-2*y1*x0"},
    "tags": {"dw": "2^-2*y0*x1 - 3*2^-3*x0*y1 + 2^-5*u1*t", "dt": "y0*x1 - x0*y2 - 2^-2*u1*t", "dd": "2^-3*y0*x2"},
    "syn-vars": {
        "dw": "x0*(w-64)*y1*2^-6 - u0*sgn(w+3) + y0*x0*x2",
        "dt": "4*y0*x1*y2*2^-4 - 2*u0*(t+5)*2^-3",
        "dd": "x0*sgn(d-5)*y3 + u0*2^-2*d",
    },
    # drives t to Lava's lower clip -257, where a phase without products is not the identity
    "tag-floor": {"dw": "u2*t*2^-4 + y0*x1", "dt": "-7*2^4*x0*y1 + y0*x1*2^-1"},
    # e-prop's eligibility restarted at the post spike (rules/eprop.py, _zero_reset_rules): x0, y0
    # and u products on every synapse each step, post traces read at the pre spike's step
    "restart": {
        "dw": "-6*2^-5*u0*t*y2",
        "dt": "2^-3*u0*y3*d + 2^-3*x0*y3*(d + 4) - 2^-3*x0*y3*d - 2^-2*u0*t",
        "dd": "4*x0 - 2^-2*u0*d - y0*(d + 4)",
    },
}


def engine(name: str, t_epoch: int, compiled, **kw) -> SumOfProductsEngine:
    rule = EngineRule.from_strings(**RULES[name], engine=ENGINE, traces=TRACES, t_epoch=t_epoch, rng_seed=7)
    w0 = np.random.default_rng(3).integers(-200, 200, (5, 7))
    if kw.get("sign_mode") == "excitatory":
        w0 = np.abs(w0)
    if "mask" in kw:
        w0 = np.where(kw["mask"], w0, 0)
    return SumOfProductsEngine(rule, w0, engine=ENGINE, compiled=compiled, **kw)


def drive_both(name: str, t_epoch: int, steps: int = 120, **kw) -> dict[str, list]:
    """Both forms on the same random spikes; asserts equal state after every step and equal
    random streams at the end; returns the compiled form's state history."""
    a, b = engine(name, t_epoch, None, **kw), engine(name, t_epoch, False, **kw)
    assert a.compiled and not b.compiled
    rng = np.random.default_rng(11)
    shape_pre, shape_post = (a.batch, a.n_pre), (a.batch, a.n_post)
    history: dict[str, list] = {k: [] for k in a.state}
    for t in range(1, steps + 1):
        pre, post = rng.random(shape_pre) < 0.15, rng.random(shape_post) < 0.15
        for eng in (a, b):
            eng.spikes(t, pre, post)
            eng.learn(t)
        for k, v in a.state.items():
            assert v.dtype == b.state[k].dtype and np.array_equal(v, b.state[k]), f"{name}: {k} at step {t}"
            history[k].append(v.copy())
    assert a.get_state()[1] == b.get_state()[1]
    return history


CASES = [
    ("stdp", 1, {}),
    ("stdp", 1, {"sign_mode": "excitatory", "batch": 3}),
    ("stdp", 1, {"batch": 3, "learn_mode": "shared"}),
    ("stdp", 1, {"arithmetic": "float", "batch": 2, "learn_mode": "shared"}),
    ("tags", 1, {"batch": 2}),
    ("tags", 3, {"batch": 2, "learn_mode": "shared"}),
    ("tags", 3, {"rounding": "nearest"}),
    ("tags", 1, {"arithmetic": "float"}),
    ("syn-vars", 1, {"batch": 2}),
    ("syn-vars", 2, {"sign_mode": "inhibitory", "batch": 2, "learn_mode": "shared"}),
    ("syn-vars", 1, {"arithmetic": "float", "sign_mode": "excitatory"}),
    ("stdp", 1, {"mask": np.random.default_rng(5).random((5, 7)) < 0.5}),
    ("tags", 3, {"mask": np.random.default_rng(6).random((5, 7)) < 0.5, "batch": 2}),
    ("restart", 1, {"batch": 2}),  # one-step epochs: traces read at the epoch's step, along a row
    ("restart", 2, {}),  # longer ones: x0 products gather their post traces by spike time
    ("restart", 1, {"arithmetic": "float"}),
]


@pytest.mark.parametrize("name,t_epoch,kw", CASES, ids=[f"{n}-T{t}-{'-'.join(map(str, k))}" for n, t, k in CASES])
def test_compiled_engine_is_the_numpy_engine(name, t_epoch, kw):
    history = drive_both(name, t_epoch, **kw)
    w = np.array(history["w"])
    assert (w != w[:1]).any(), "the weights never change"
    if "mask" in kw:  # absent synapses stay 0
        assert not w[:, :, ~kw["mask"]].any()


@pytest.mark.parametrize("name,t_epoch,kw", CASES[::3], ids=[f"{n}-T{t}" for n, t, _ in CASES[::3]])
def test_bytecode_interpreter_is_the_numpy_engine(name, t_epoch, kw, monkeypatch):
    """The interpreter of the rule's bytecode (used where no rule kernel can be written)."""
    monkeypatch.setattr(SumOfProductsEngine, "rule_kernels", False)
    assert engine(name, t_epoch, None, **kw)._rule_kernels is None
    drive_both(name, t_epoch, steps=60, **kw)


def test_tags_at_lavas_lower_clip_match():
    """t reaches -257, where S << shift lies below the accumulator: the compiled phase must
    visit those rows even without spikes there (else t would stay at -257). A saturated tag
    rounds to -257 only when the epoch's random k is 127 (1 in 128 epochs), hence the length."""
    history = drive_both("tag-floor", 1, steps=1200, batch=2)
    t = np.array(history["t"])
    assert (t == -257).any(), "the case never reaches the clip"
    assert ((t[:-1] == -257) & (t[1:] != -257)).any(), "no tag ever leaves the clip"


def test_state_set_from_outside_is_learned_from_exactly():
    """After set_state with weights outside the range (Lava clips them in the first epoch)
    and tags at -257, the compiled phase still equals the numpy form."""
    a, b = engine("tags", 1, None), engine("tags", 1, False)
    rng = np.random.default_rng(2)
    w = rng.integers(-400, 400, a.state["w"].shape)
    t = np.where(rng.random(a.state["t"].shape) < 0.3, -257, 0)
    for eng in (a, b):
        eng.set_state({"w": w, "t": t}, None)
    for step in range(1, 6):
        pre, post = rng.random((1, 7)) < 0.1, rng.random((1, 5)) < 0.1
        for eng in (a, b):
            eng.spikes(step, pre, post)
            eng.learn(step)
        for k in a.state:
            assert np.array_equal(a.state[k], b.state[k]), (k, step)
    assert a.state["w"].max() <= 255 and a.state["w"].min() >= -256


def test_plastic_delivery_compiled_is_numpy_delivery():
    """The example's sparse, delayed plastic projection, batch 2, learning: the compiled
    delivery (columns of the pre neurons that spiked, exponent shift) equals numpy's."""
    program = nc.compile(nc.load_network(EXAMPLES / "stdp_feedforward.yaml"), "loihi2", out=io.StringIO())
    runs = []
    for compiled in (True, False):
        emu = Emulator(program, batch=2)
        for syn in emu.plastic.values():
            assert syn._compiled
            syn._compiled = compiled
        runs.append(emu.run(150, record=["spikes", "v", "w"], learn=True))
    assert runs[0]["exc/spikes"].sum() > 10
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)


# the attribution knobs: one quantity in float64, the rest the chip's (the rule kernel's mixed
# products: float factors unclipped, floored onto the accumulator's grid; exact products)
MIXED = [
    ("syn-vars", 1, {"float_quantities": ("weights",)}),
    ("syn-vars", 2, {"float_quantities": ("weights",), "sign_mode": "excitatory", "batch": 2}),
    ("syn-vars", 1, {"float_quantities": ("tags",), "batch": 2}),
    ("tags", 3, {"float_quantities": ("tags",), "mask": np.random.default_rng(6).random((5, 7)) < 0.5}),
    ("syn-vars", 1, {"float_quantities": ("traces",)}),
    ("tags", 1, {"float_quantities": ("traces",), "rounding": "nearest", "batch": 2}),
    ("syn-vars", 1, {"float_quantities": ("products",)}),
    ("tags", 2, {"float_quantities": ("products",), "rounding": "nearest"}),
    ("stdp", 1, {"float_quantities": ("graded",)}),
    # two knobs: a float tag's product under exact products is divided exactly, not floored
    ("tags", 1, {"float_quantities": ("tags", "products")}),
    ("restart", 1, {"float_quantities": ("tags", "products"), "batch": 2}),
]


@pytest.mark.parametrize("name,t_epoch,kw", MIXED, ids=[f"{n}-T{t}-{'-'.join(map(str, k))}" for n, t, k in MIXED])
def test_compiled_mixed_engine_is_the_numpy_engine(name, t_epoch, kw):
    """Exact equality here too, floats included: the rule kernel runs the numpy form's
    operations on each synapse in the same order."""
    history = drive_both(name, t_epoch, **kw)
    w = np.array(history["w"])
    assert (w != w[:1]).any(), "the weights never change"


def test_tags_at_lavas_lower_clip_with_exact_products():
    """Exact products keep Lava's lower clip of the tags (the accumulator saturates in float)."""
    history = drive_both("tag-floor", 1, steps=600, batch=2, float_quantities=("products",))
    assert (np.array(history["t"]) == -257).any(), "the case never reaches the clip"


def test_attribution_mix_runs_compiled_where_each_side_is_one_kind():
    """Both homogeneous arithmetics and the one-knob mixes run compiled; a mix whose pre side
    holds traces of two kinds (graded x1, spike-trace x2) runs the numpy form."""
    assert engine("stdp", 1, None).compiled
    assert engine("stdp", 1, None, arithmetic="float").compiled
    assert engine("stdp", 1, None, float_quantities=("weights",)).compiled
    graded_x1 = EngineRule.from_strings(
        dw="x1*y0", engine=ENGINE, traces=TRACES, pre_graded={"x1": {"source": "pre"}}, rng_seed=7
    )
    eng = SumOfProductsEngine(graded_x1, np.zeros((5, 7), int), engine=ENGINE, float_quantities=("graded",))
    assert not eng.compiled


@pytest.mark.parametrize("name", list(RULES))
def test_product_ranges_bound_every_chip_product(name):
    """The rule kernel leaves out a product's clip to the accumulator's range where the
    product's range lies within it. That range against every value the chip's product takes,
    enumerated here (each factor over every value it can have after its clip, the mantissa,
    the floor shift and the exponent's shift): the generator's range must be exactly it."""
    from neurocomp.kernels import learning as K
    from neurocomp.kernels.learning_rules import _product_range

    code = engine(name, 1, None)._code
    for row in code:
        values = np.array([int(row[K.P_MANT])], np.int64)
        for f in range(int(row[K.P_NF])):
            c, const, sgn, width = (int(x) for x in row[K.P_FACTORS + 4 * f : K.P_FACTORS + 4 * f + 4])
            if c in (K.F_X0, K.F_Y0):
                own = np.array([const, const + 1])
            elif sgn:
                own = np.array([-1, 0, 1])
            else:  # a trace or a synaptic variable: any integer, clipped
                own = np.arange(-(1 << width) - 3, (1 << width) + 3)
            own = np.unique(np.clip(own, -(1 << width), (1 << width) - 1))
            values = np.unique((values[:, None] * own[None, :]).ravel())
        values = (values >> int(row[K.P_SHIFT])) << int(row[K.P_EXP])
        assert _product_range(row) == (values.min(), values.max()), row
