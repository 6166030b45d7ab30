"""Differential tests of on-chip learning: the emulator against Lava 0.10.0's fixed-point
learning engine (``LearningDense`` run by ``PyLearningDenseModelBitApproximate``), bit for bit.

Every comparison is exact integer equality, on every step, of the spikes, ``u`` and ``v`` of
both populations and the whole learning state of the plastic projection: weights, tag ``t``,
``d``, pre traces ``x1 x2`` and post traces ``y1 y2 y3``. Cases: the reference's worked
example (section 6.2, its table included), STDP and R-STDP as lowered by neurocomp, rules
that use ``w``, ``t``, ``d``, ``u_k``, ``sgn`` and constants, a fixed set of random rules, a
batch; what the backend refuses; and that the learning run's neurons are Lava's own LIF.
Each case checks that it is not vacuous: both populations spike and the weights change.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.backends import BackendError
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator
from neurocomp.learning.rule import EngineRule, Trace
from neurocomp.rules import rstdp, stdp
from neurocomp.rules.base import LoweringContext
from tests import lava_compare
from tests.conftest import EXAMPLES
from tests.lava_compare import assert_same

pytest.importorskip("lava")
from neurocomp.backends.lava import LavaBackend  # noqa: E402

pytestmark = pytest.mark.lava

LOIHI2 = nc.load_profile("loihi2")
ENGINE = LOIHI2.learning
LEARN_VARS = ["w", "t", "d", "x1", "x2", "y1", "y2", "y3"]
RECORD = ["spikes", "v", "u", *LEARN_VARS]
PROJ = "pre->post"

# the traces of the reference's section 6.2
TRACES_6_2 = {
    "x1": Trace(20.3, 8),
    "x2": Trace(7.75, 15),
    "y1": Trace(18.6, 6),
    "y2": Trace(9.5, 20),
    "y3": Trace(0, 0),
}
RULES_6_2 = {
    "r0": "2^-2*x1*y0 - 2^-2*y1*x0",
    "r1": "2^-2*x1*y0 - 3*2^-3*y1*x0 - 2^-5*u0*w + 2^-1*x1*y1*y0",
    "r2": "2^-3*x1*y0 - 2^-3*y1*x0 + 2^-4*x2*y2*y0 - 2^-4*(w-64)*u0",
}
W0_6_2 = [[37, 10, -21], [-3, 51, 17]]


# -- helpers ---------------------------------------------------------------------------------


def assert_learns(rec: dict[str, np.ndarray], pre: str = "pre", post: str = "post", proj: str = PROJ) -> None:
    """The case is not vacuous: both populations spike and the weights change."""
    assert rec[f"{pre}/spikes"].any(), "the pre population never spikes"
    assert rec[f"{post}/spikes"].any(), "the post population never spikes"
    w = rec[f"{proj}/w"]
    assert (w != w[:1]).any(), "the weights never change"


# every learning comparison records the whole learning state and learns
run_both = functools.partial(lava_compare.run_both, record=RECORD, learn=True)


def plastic(name, pre, post, weights, rule: EngineRule, **kw) -> QProjection:
    return dataclasses.replace(QProjection.from_mantissas(name, pre, post, weights, **kw), learning=rule)


def rule_6_2(dw: str, t_epoch: int, seed: int = 42) -> EngineRule:
    return EngineRule.from_strings(dw=dw, engine=ENGINE, traces=TRACES_6_2, t_epoch=t_epoch, rng_seed=seed)


# -- 1. the reference's worked example (section 6.2) -------------------------------------------

# steps 1-5 of r0 (t_epoch 1, seed 42) as measured in Lava: pre spikes, post spikes, x1, y1, w
TABLE_6_2 = {
    1: ([0, 0, 0], [0, 0], [0, 0, 0], [0, 0], [[36, 10, -22], [-4, 50, 16]]),
    2: ([0, 1, 0], [0, 0], [0, 21, 0], [0, 0], [[36, 10, -22], [-4, 50, 16]]),
    3: ([1, 0, 0], [1, 1], [21, 18, 0], [19, 19], [[37, 15, -22], [-3, 55, 16]]),
    4: ([0, 1, 1], [1, 0], [19, 37, 21], [35, 16], [[42, 15, -26], [-3, 51, 12]]),
    5: ([0, 0, 0], [0, 1], [17, 33, 19], [29, 32], [[42, 15, -26], [1, 59, 17]]),
}


def test_reference_table_6_2_first_steps():
    """The table's spike trains replayed: pre spikes from an input, post spikes forced by a
    strong static drive one step earlier (the plastic weights, at weight_exp -4, stay far
    below the post threshold). Learning sees only the spikes, so the table's traces and
    weights must come out, and then 40 more steps of random spikes must match Lava."""
    steps = 45
    rng = np.random.default_rng(0)
    x = (rng.random((steps, 3)) < 0.3).astype(np.uint8)
    drive = (rng.random((steps, 2)) < 0.3).astype(np.uint8)
    x[:5] = [TABLE_6_2[t][0] for t in range(1, 6)]
    drive[:5] = [[0, 0]] + [TABLE_6_2[t][1] for t in range(3, 6)] + [[0, 0]]  # post spikes one step later
    program = Program.from_parts(
        LOIHI2,
        [
            QPopulation.spike_input("pre", 3),
            QPopulation.spike_input("drive", 2),
            QPopulation.lif("post", 2, du=4095, dv=4095, vth=200),
        ],
        [
            plastic(PROJ, "pre", "post", W0_6_2, rule_6_2(RULES_6_2["r0"], 1), weight_exp=-4),
            QProjection.from_mantissas("drive->post", "drive", "post", [[255, 0], [0, 255]], weight_exp=2),
        ],
    )
    emu, lava = run_both(program, steps, inputs={"pre": x, "drive": drive})
    for rec, who in ((emu, "emulator"), (lava, "Lava")):
        for t, (s_pre, s_post, x1, y1, w) in TABLE_6_2.items():
            got = (
                rec["pre/spikes"][t - 1, 0].tolist(),
                rec["post/spikes"][t - 1, 0].tolist(),
                rec[f"{PROJ}/x1"][t - 1, 0].tolist(),
                rec[f"{PROJ}/y1"][t - 1, 0].tolist(),
                rec[f"{PROJ}/w"][t - 1, 0].tolist(),
            )
            assert got == (s_pre, s_post, x1, y1, w), f"{who}, step {t}: {got}"
    assert_learns(emu)
    assert_same(emu, lava)


def _network_6_2(rule: EngineRule, steps: int, seed: int = 3):
    """Pre LIF(3) -> LearningDense(2x3, W0 of section 6.2) -> post LIF(2). Both sides fire
    from their biases and get random input spikes (pre from an input population, post from
    a static drive), with full current decay so that input makes a spike now or not at
    all: about one spike in five steps per neuron, irregular."""
    rng = np.random.default_rng(seed)
    pops = [
        QPopulation.spike_input("in", 3),
        QPopulation.spike_input("drive", 2),
        QPopulation.lif("pre", 3, du=4095, dv=300, vth=10, bias_mant=[100, 60, 40], bias_exp=[0, 1, 2]),
        QPopulation.lif("post", 2, du=4095, dv=400, vth=100, bias_mant=[300, 200], bias_exp=0),
    ]
    projections = [
        plastic(PROJ, "pre", "post", W0_6_2, rule, weight_exp=-3),
        QProjection.from_mantissas("in->pre", "in", "pre", np.diag([8, 8, 8]), weight_exp=0),
        QProjection.from_mantissas("drive->post", "drive", "post", [[60, 20], [10, 70]], weight_exp=0),
    ]
    inputs = {
        "in": (rng.random((steps, 3)) < 0.15).astype(np.uint8),
        "drive": (rng.random((steps, 2)) < 0.25).astype(np.uint8),
    }
    return Program.from_parts(LOIHI2, pops, projections, name="ref-6.2"), inputs


@pytest.mark.parametrize("t_epoch", [1, 2, 4, 7])
@pytest.mark.parametrize("name", sorted(RULES_6_2))
def test_reference_rules_6_2(name, t_epoch):
    steps = 90
    program, inputs = _network_6_2(rule_6_2(RULES_6_2[name], t_epoch), steps)
    emu, lava = run_both(program, steps, inputs=inputs)
    assert_learns(emu)
    assert (emu["pre/spikes"].sum(axis=0) > 10).all() and (emu["post/spikes"].sum(axis=0) > 10).all(), "rare spikes"
    assert_same(emu, lava, f"rule {name}, t_epoch {t_epoch}")


# -- a small network for the other cases --------------------------------------------------------


def network(
    rule: EngineRule,
    steps: int,
    *,
    seed: int = 0,
    n_pre: int = 3,
    n_post: int = 2,
    sign_mode: str = "mixed",
    weight_exp: int = -3,
    num_weight_bits: int = 8,
    pre_is_input: bool = False,
    batch: int | None = None,
):
    """``pre`` -> plastic ``pre->post`` -> ``post``, both sides spiking irregularly about one
    step in five: a LIF ``pre`` fires from its bias plus input spikes (or ``pre`` is itself a
    spike input), ``post`` from its bias and a random static drive, whatever the plastic
    weights do. ``batch``: inputs ``[steps, batch, n]``, different in every trial."""
    rng = np.random.default_rng(seed)
    lo, hi = {"mixed": (-120, 120), "excitatory": (0, 200), "inhibitory": (-200, 0)}[sign_mode]
    w0 = rng.integers(lo, hi + 1, size=(n_post, n_pre))
    shape = (steps, n_pre) if batch is None else (steps, batch, n_pre)
    dshape = (steps, n_post) if batch is None else (steps, batch, n_post)
    post = QPopulation.lif(
        "post", n_post, du=4095, dv=400, vth=100, bias_mant=rng.integers(200, 320, n_post), bias_exp=0
    )
    pops = [QPopulation.spike_input("drive", n_post), post]
    projections = [
        plastic(
            PROJ, "pre", "post", w0, rule, weight_exp=weight_exp, sign_mode=sign_mode, num_weight_bits=num_weight_bits
        ),
        QProjection.from_mantissas("drive->post", "drive", "post", np.diag(rng.integers(80, 110, n_post))),
    ]
    inputs = {"drive": (rng.random(dshape) < 0.25).astype(np.uint8)}
    if pre_is_input:
        pops.insert(0, QPopulation.spike_input("pre", n_pre))
        inputs["pre"] = (rng.random(shape) < 0.2).astype(np.uint8)
    else:
        pre = QPopulation.lif("pre", n_pre, du=4095, dv=300, vth=10, bias_mant=rng.integers(40, 110, n_pre), bias_exp=1)
        pops[:0] = [QPopulation.spike_input("in", n_pre), pre]
        projections.append(QProjection.from_mantissas("in->pre", "in", "pre", np.diag(np.full(n_pre, 8))))
        inputs["in"] = (rng.random(shape) < 0.15).astype(np.uint8)
    return Program.from_parts(LOIHI2, pops, projections, name="plastic"), inputs


def reward_signal(steps: int, n_post: int, seed: int = 0, batch: int | None = None) -> np.ndarray:
    """A graded third factor that changes sign: positive, then negative, then random blocks."""
    rng = np.random.default_rng(seed)
    shape = (steps, n_post) if batch is None else (steps, batch, n_post)
    r = np.zeros(shape)
    a, b = steps // 3, 2 * steps // 3
    r[:a] = rng.integers(10, 30, shape[1:])
    r[a:b] = -rng.integers(10, 30, shape[1:])
    for start in range(b, steps, 5):
        r[start : start + 5] = rng.integers(-40, 41, shape[1:])
    return r


# -- 2. STDP and R-STDP as neurocomp lowers them --------------------------------------------------


def _ctx(seed: int = 5) -> LoweringContext:
    return LoweringContext(projection=PROJ, profile=LOIHI2, dt_ms=1.0, weight_lsb=1 / 256, seed=seed)


@pytest.mark.parametrize("sign_mode", ["mixed", "excitatory"])
def test_stdp_lowered_matches_lava(sign_mode):
    params = {"lr": 1 / 64, "a_plus": 1.0, "a_minus": 1.5, "tau_plus_ms": 20.0, "tau_minus_ms": 12.0}
    rule = stdp.lower(params, _ctx())
    assert [(p.dependency, p.mantissa * 2.0**p.exponent) for p in rule.dw.products] == [("y0", 0.25), ("x0", -0.375)]
    steps = 80
    program, inputs = network(rule, steps, seed=11, n_pre=4, n_post=2, sign_mode=sign_mode)
    emu, lava = run_both(program, steps, inputs=inputs)
    assert_learns(emu)
    assert_same(emu, lava, f"stdp, {sign_mode}")


@pytest.mark.parametrize("t_epoch", [1, 3])
def test_rstdp_lowered_matches_lava(t_epoch):
    """Three factors: the post neuron sends its spike trace as y1 (impulse 16, tau 20) and
    the reward, a graded input that changes sign, as y2; dt builds the eligibility tag and
    dw = u0*t*y2 turns it into weight change."""
    params = {"lr": 1 / 64, "lr_reward": 1 / 32, "tau_elig_ms": 8.0, "tau_plus_ms": 20.0, "tau_minus_ms": 20.0}
    rule = dataclasses.replace(rstdp.lower(params, _ctx(9)), t_epoch=t_epoch)
    assert [(p.dependency, [f.var for f in p.factors]) for p in rule.dw.products] == [("u", ["t", "y2"])]
    assert rule.post_traces == "graded" and rule.graded["y1"]["source"] == "post_trace"
    steps = 90
    program, inputs = network(rule, steps, seed=12, n_pre=4, n_post=3)
    reward = reward_signal(steps, 3, seed=1)
    emu, lava = run_both(program, steps, inputs={**inputs, f"{PROJ}/y2": reward})
    assert_learns(emu)
    t = emu[f"{PROJ}/t"]
    assert (t > 0).any() and (t < 0).any(), "the eligibility takes both signs"
    np.testing.assert_array_equal(emu[f"{PROJ}/y2"][:, 0], reward.astype(np.int64))  # y2 is the reward, as sent
    assert emu[f"{PROJ}/y1"].max() > 0
    # y1 from the post spikes by the R-STDP tutorial's neuron trace (Lava's
    # tutorial_three_factor_learning: decay by exp(-1/tau), floored, plus impulse * spike,
    # within the 7-bit trace range), written out here: the backend's own y1 is a copy of the
    # emulator's, so Lava agreeing with the emulator would not catch an error in both
    src, post = rule.graded["y1"], emu["post/spikes"][:, 0]
    y, want = np.zeros(post.shape[1]), []
    for s in post:
        y = np.clip(np.floor(y * math.exp(-1.0 / float(src["tau"]))) + float(src["impulse"]) * s, 0, 127)
        want.append(y)
    np.testing.assert_array_equal(emu[f"{PROJ}/y1"][:, 0], np.array(want))
    assert_same(emu, lava, f"rstdp, t_epoch {t_epoch}")


def test_compiled_stdp_example_matches_lava():
    """The compiler's own lowering of examples/models/stdp_feedforward.yaml (20 Poisson
    inputs onto 10 LIF, excitatory, weight_exp 6). Lava's LearningDense has no delay and no
    sparse form, so the plastic projection is made dense with delay 0 first; absent synapses
    then learn too, in both runners alike."""
    program = nc.compile(EXAMPLES / "stdp_feedforward.yaml", "loihi2", out=io.StringIO())
    (pr,) = program.projections
    assert pr.learning is not None and pr.learning.source == "stdp" and pr.is_sparse and pr.max_delay == 2
    with pytest.raises(BackendError) as info:
        LavaBackend(program).run(5, learn=True)
    assert {"LearningSparse", "delay"} <= set(
        " ".join(p.message for p in info.value.problems).replace(",", " ").split()
    )
    dense = dataclasses.replace(pr, weights=pr.dense_mantissas(), rows=None, cols=None, delay_steps=0)
    program = dataclasses.replace(program, projections=(dense,))
    steps = 120
    record = ["spikes", "v", "w", "x1", "y1"]
    emu, lava = run_both(program, steps, record=record)
    assert_learns(emu, pre="in", post="exc", proj="in->exc")
    assert_same(emu, lava, "compiled stdp")


# -- 3. rules that read w, the tag, d, u_k, sgn and constants ------------------------------------

HANDWRITTEN = [
    # the tag as an eligibility trace (decaying every other epoch), turned into weight by a y2
    # trace and by sgn(w)
    dict(
        dt="2^-1*x1*y0 - 2^-1*y1*x0 - 2^-2*u1*t",
        dw="2^-3*u1*t*y2 + 2^-4*u1*sgn(w)*t",
        t_epoch=3,
        sign_mode="mixed",
    ),
    # a weight-dependent term pulling towards 64, and d as a slow counter read by dw
    dict(
        dw="2^-2*x1*y0*y1 - 3*2^-3*y1*x0 - 2^-5*u2*(w-64) + 2^-4*u2*d*sgn(w-32)",
        dd="4*x0*y0 + x1*y0 - 2^-3*u2*d",
        t_epoch=2,
        sign_mode="excitatory",
    ),
    # everything at once: w, t and d in dw, dt and dd, constants on w and t, u3 at t_epoch 4
    dict(
        dw="-2^-3*x2*x0*w + 2^-2*y1*y0*sgn(t) + 2^-6*u3*(w-64)*(t+16)",
        dt="x1*y0 - y1*x0 - 2^-3*u3*t",
        dd="2*y0*x0*x1 - 2^-1*u3*d",
        t_epoch=4,
        sign_mode="mixed",
    ),
    # e-prop's eligibility at a reset to zero (rules/eprop.py): d the carry, restarted by a post
    # spike that takes d + 4 off (d saturates at 0), x0*y3*(d + 4) - x0*y3*d the newest spike
    dict(
        dw="2^-4*u0*t*y2",
        dt="u0*y3*d + x0*y3*(d + 4) - x0*y3*d - 2^-2*u0*t",
        dd="4*x0 - 3*2^-7*u0*d - y0*(d + 4)",
        t_epoch=1,
        sign_mode="mixed",
    ),
    # e-prop with its floor offset's term (rules/eprop.py _floor_offset): sgn(t)*y1 shifted by 5 as
    # t*y2 (the mantissa 7 so that the post traces here, below 32, reach a unit)
    dict(
        dw="-6*2^-7*u0*t*y2 + 7*2^-7*u0*sgn(t)*y1",
        dt="u0*y3*d + x0*y3*(d + 4) - x0*y3*d - 2^-2*u0*t",
        dd="4*x0 - 3*2^-7*u0*d - y0*(d + 4)",
        t_epoch=1,
        sign_mode="mixed",
    ),
    # inhibitory weights: sgn(w) is -1 or 0, the accumulator saturates at 0 from below
    dict(
        dw="2^-2*sgn(w)*x1*y0 - 2^-3*y1*x0 + 2^-4*u0*(w+100)",
        dt="x0*y1 - y0*x2",
        t_epoch=5,
        sign_mode="inhibitory",
    ),
]
TRACES_MIXED = {
    "x1": Trace(20.3, 8),
    "x2": Trace(12.6, 3.5),
    "y1": Trace(18.6, 6),
    "y2": Trace(25.25, 40),
    "y3": Trace(5.5, 0),
}


@pytest.mark.parametrize("case", range(len(HANDWRITTEN)))
def test_rules_with_synaptic_variables_match_lava(case):
    spec = dict(HANDWRITTEN[case])
    t_epoch, sign_mode = spec.pop("t_epoch"), spec.pop("sign_mode")
    rule = EngineRule.from_strings(engine=ENGINE, traces=TRACES_MIXED, t_epoch=t_epoch, rng_seed=100 + case, **spec)
    steps = 96
    program, inputs = network(rule, steps, seed=20 + case, n_pre=3, n_post=2, sign_mode=sign_mode)
    emu, lava = run_both(program, steps, inputs=inputs)
    assert_learns(emu)
    for target, var in (("dt", "t"), ("dd", "d")):
        if target in spec:
            assert (emu[f"{PROJ}/{var}"] != 0).any(), f"{var} never moves"
    assert_same(emu, lava, f"case {case}: {spec}, t_epoch {t_epoch}, {sign_mode}")


# -- 4. random rules ------------------------------------------------------------------------------

FACTOR_VARS = ("x1", "x2", "y1", "y2", "y3", "w", "t", "d")
TAUS = (0, 1, 2, 3.5, 5, 8, 12.7, 20, 40, 100)


@dataclass
class RandomCase:
    """One random rule on a random small network; ``describe`` is what a failure prints."""

    index: int
    strings: dict[str, str]
    rule: EngineRule
    sign_mode: str
    n_pre: int
    n_post: int
    steps: int
    pre_is_input: bool
    weight_exp: int
    num_weight_bits: int
    graded_inputs: dict[str, np.ndarray] = field(default_factory=dict)

    def build(self) -> tuple[Program, dict[str, np.ndarray]]:
        """The network and all its inputs (spikes and graded values)."""
        program, inputs = network(
            self.rule,
            self.steps,
            seed=1000 + self.index,
            n_pre=self.n_pre,
            n_post=self.n_post,
            sign_mode=self.sign_mode,
            weight_exp=self.weight_exp,
            num_weight_bits=self.num_weight_bits,
            pre_is_input=self.pre_is_input,
        )
        return program, {**inputs, **self.graded_inputs}

    def vacuous(self) -> bool:
        """Whether the emulator shows nothing to compare: a side that never spikes, or
        weights that never move."""
        program, inputs = self.build()
        rec = Emulator(program).run(self.steps, inputs=inputs, record=["spikes", "w"], learn=True)
        w = rec[f"{PROJ}/w"]
        return not (rec["pre/spikes"].any() and rec["post/spikes"].any() and (w != w[:1]).any())

    def describe(self) -> str:
        r = self.rule
        traces = {k: (t.impulse, t.tau) for k, t in r.traces.items()}
        return (
            f"random case {self.index}: {self.strings}; t_epoch {r.t_epoch}, seed {r.rng_seed}, "
            f"post_traces {r.post_traces}, graded {dict(r.graded)}, traces {traces}; {self.sign_mode}, "
            f"{self.n_pre}->{self.n_post}, {self.steps} steps, weight_exp {self.weight_exp}, "
            f"bits {self.num_weight_bits}, pre {'input' if self.pre_is_input else 'LIF'}"
        )


def _random_product(rng: np.random.Generator, k: int, variables: list[str]) -> str:
    """``[-]m*2^e*dep*f1*f2*f3`` in random order: up to three factors among ``variables``
    (sometimes ``(v ± c)``, ``sgn(v ± c)`` for w, t, d, or the other spike dependency),
    mantissa -8..7 (not 0), exponent -7..8 (mostly small)."""
    dep = str(rng.choice(["x0", "y0", f"u{k}"]))
    factors = []
    for _ in range(int(rng.integers(0, 4))):
        if rng.random() < 0.08 and dep in ("x0", "y0"):
            factors.append("y0" if dep == "x0" else "x0")
            continue
        var = str(rng.choice(variables))
        c = int(rng.integers(-100, 101)) if rng.random() < 0.25 else 0
        inner = var if c == 0 else f"{var} {'+' if c > 0 else '-'} {abs(c)}"
        if var in "wtd" and rng.random() < 0.3:
            factors.append(f"sgn({inner})")
        else:
            factors.append(inner if c == 0 else f"({inner})")
    m = int(rng.choice([v for v in range(-8, 8) if v]))
    e = int(rng.integers(-7, 9)) if rng.random() < 0.1 else int(rng.integers(-7, 2))
    scale = f"{abs(m)}*2^{e}" if abs(m) != 1 else f"2^{e}"
    terms = [scale, dep, *factors]
    rng.shuffle(terms)
    return ("- " if m < 0 else "+ ") + "*".join(terms)


def _random_expr(rng: np.random.Generator, k: int, variables: list[str]) -> str:
    text = " ".join(_random_product(rng, k, variables) for _ in range(int(rng.integers(1, 4))))
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _random_trace(rng: np.random.Generator) -> Trace:
    impulse = 0.0 if rng.random() < 0.1 else round(float(rng.uniform(0, 40)), int(rng.integers(0, 3)))
    return Trace(impulse, float(rng.choice(TAUS)))


N_RANDOM = 60


@functools.cache
def random_cases(n: int = N_RANDOM, seed: int = 2024) -> list[RandomCase]:
    """``n`` random cases from a seeded generator (a fixed set): random dw, sometimes dt and
    dd; random traces; t_epoch 1-5; sign modes mixed/excitatory/inhibitory (case 0
    excitatory, case 1 inhibitory); a quarter three-factor, with graded inputs that change
    sign and neuron traces. A draw the parser refuses, or that the emulator shows to be
    vacuous (the weights never move, e.g. a rule whose every product reads a zero trace),
    is drawn again, so that every case tests something."""
    rng = np.random.default_rng(seed)
    cases: list[RandomCase] = []
    while len(cases) < n:
        i = len(cases)
        k = int(rng.integers(0, 4))
        targets = ["dw"] + [t for t in ("dt", "dd") if rng.random() < 0.4]
        traces = {name: _random_trace(rng) for name in ("x1", "x2", "y1", "y2", "y3")}
        steps = int(rng.integers(30, 61))
        n_post = int(rng.integers(1, 5))
        kw = dict(traces=traces, t_epoch=int(rng.integers(1, 6)), rng_seed=int(rng.integers(0, 2**20)))
        graded_inputs = {}
        ys = ["y1", "y2", "y3"]
        if rng.random() < 0.25:
            graded = {}
            for y in map(str, rng.permutation(ys)[: int(rng.integers(1, 4))]):
                if rng.random() < 0.5:
                    graded[y] = {"source": "input"}
                    graded_inputs[f"{PROJ}/{y}"] = reward_signal(steps, n_post, seed=int(rng.integers(0, 1000)))
                else:
                    impulse, tau = float(rng.integers(4, 40)), float(rng.choice(TAUS[1:]))
                    graded[y] = {"source": "post_trace", "impulse": impulse, "tau": tau}
            kw.update(post_traces="graded", graded=graded)
            ys = sorted(graded)  # the other y are 0
        # t and d are read only where a rule moves them (they start at 0)
        variables = ["x1", "x2", *ys, "w"] + [v for t, v in (("dt", "t"), ("dd", "d")) if t in targets]
        strings = {t: _random_expr(rng, k, variables) for t in targets}
        try:
            rule = EngineRule.from_strings(engine=ENGINE, **strings, **kw)
        except nc.NeurocompError:  # a string the parser refuses (e.g. a bracket constant too large): draw again
            continue
        sign_mode = (
            "excitatory"
            if i == 0
            else "inhibitory"
            if i == 1
            else str(rng.choice(["mixed", "excitatory", "inhibitory"]))
        )
        cases.append(
            RandomCase(
                i,
                strings,
                rule,
                sign_mode,
                n_pre=int(rng.integers(2, 7)),
                n_post=n_post,
                steps=steps,
                pre_is_input=bool(rng.random() < 0.3),
                weight_exp=int(rng.integers(-4, -1)),
                num_weight_bits=int(rng.integers(6, 9)),
                graded_inputs=graded_inputs,
            )
        )
        if cases[-1].vacuous():
            cases.pop()
    return cases


def test_random_cases_cover_the_engine():
    """The fixed set reaches what it is meant to: every factor, sgn, constants, u_k with
    k >= 1, dt and dd, three-factor rules with both graded sources, every sign mode and
    epoch length, zero taus and fractional impulses."""
    text = " ".join(s for c in random_cases() for s in c.strings.values())
    for token in (*FACTOR_VARS, "sgn(", " + ", " - ", "u1", "u2", "u3"):
        assert token in text, token
    assert any("dt" in c.strings for c in random_cases()) and any("dd" in c.strings for c in random_cases())
    sources = {src["source"] for c in random_cases() for src in c.rule.graded.values()}
    assert sources == {"input", "post_trace"}
    assert {c.sign_mode for c in random_cases()} == {"mixed", "excitatory", "inhibitory"}
    assert {c.rule.t_epoch for c in random_cases()} == {1, 2, 3, 4, 5}
    assert any(t.tau == 0 for c in random_cases() for t in c.rule.traces.values())
    assert any(t.impulse % 1 for c in random_cases() for t in c.rule.traces.values())


@pytest.mark.parametrize("index", range(N_RANDOM))
def test_random_rule_matches_lava(index: int):
    case = random_cases()[index]
    program, inputs = case.build()
    emu, lava = run_both(program, case.steps, inputs=inputs)
    assert_learns(emu)
    assert_same(emu, lava, case.describe())


# -- 5. a batch -----------------------------------------------------------------------------------


def test_batch_independent_trials_match_lava_trial_by_trial():
    """``Emulator(batch=3, learn_mode="independent")``: trial b learns on its own, so it must
    equal Lava run with trial b's inputs alone (the backend runs one Lava network per trial).
    R-STDP, with different spikes, drive and reward in every trial."""
    params = {"lr": 1 / 64, "lr_reward": 1 / 32, "tau_elig_ms": 8.0, "tau_plus_ms": 20.0, "tau_minus_ms": 20.0}
    rule = dataclasses.replace(rstdp.lower(params, _ctx(3)), t_epoch=2)
    steps, batch = 60, 3
    program, inputs = network(rule, steps, seed=31, n_pre=3, n_post=2, batch=batch)
    inputs[f"{PROJ}/y2"] = reward_signal(steps, 2, seed=4, batch=batch)
    emu, lava = run_both(program, steps, inputs=inputs, batch=batch)
    w = emu[f"{PROJ}/w"]
    assert w.shape == (steps, batch, 2, 3)
    assert not np.array_equal(w[:, 0], w[:, 1]) and not np.array_equal(w[:, 1], w[:, 2]), "the trials really differ"
    for b in range(batch):
        assert_learns({k: v[:, b : b + 1] for k, v in emu.items()})
    assert_same(emu, lava, "batch")


# -- 6. what the backend refuses, and static runs ---------------------------------------------------


def _two_layer(rule: EngineRule, **plastic_kw) -> Program:
    return Program.from_parts(
        LOIHI2,
        [QPopulation.spike_input("pre", 3), QPopulation.lif("post", 2, du=4095, dv=400, vth=100, bias_mant=200)],
        [plastic(PROJ, "pre", "post", np.full((2, 3), 40), rule, **plastic_kw)],
    )


def test_lava_backend_refuses_what_learning_dense_cannot_run():
    stdp_rule = rule_6_2(RULES_6_2["r0"], 1)
    with pytest.raises(BackendError) as info:
        LavaBackend(_two_layer(stdp_rule, delay_steps=2)).run(5, inputs={"pre": np.ones((5, 3))}, learn=True)
    assert "no synaptic delay" in info.value.problems[0].message
    sparse = dataclasses.replace(
        _two_layer(stdp_rule).projections[0],
        weights=np.array([40, 40], dtype=np.int32),
        rows=np.array([0, 1]),
        cols=np.array([0, 2]),
    )
    with pytest.raises(BackendError) as info:
        LavaBackend(dataclasses.replace(_two_layer(stdp_rule), projections=(sparse,))).run(5, learn=True)
    assert "LearningSparse" in info.value.problems[0].message
    eprop_like = EngineRule.from_strings(
        dw="u0*t*y2", engine=ENGINE, post_traces="graded", graded={"y2": {"source": "pseudo_derivative"}}
    )
    with pytest.raises(BackendError) as info:
        LavaBackend(_two_layer(eprop_like)).run(5, learn=True)
    assert "pseudo_derivative" in info.value.problems[0].message
    # e-prop's floor offset: LearningDense runs its dw term (HANDWRITTEN), the neuron cannot send its dither
    dither = {"source": "floor_offset", "of": "y2", "value": 32, "count": 15, "period": 32}
    offset_rule = EngineRule.from_strings(dw="u0*t*y2 + 2^-7*u0*sgn(t)*y1", engine=ENGINE, post_traces="graded",
                                          graded={"y1": dither, "y2": {"source": "input"}})  # fmt: skip
    with pytest.raises(BackendError) as info:
        LavaBackend(_two_layer(offset_rule)).run(5, learn=True)
    assert "graded y1 from 'floor_offset'" in info.value.problems[0].message
    # two three-factor projections onto one population would need two sets of y ports
    program = _two_layer(eprop_like)
    second = dataclasses.replace(program.projections[0], name="pre->post 2")
    with pytest.raises(BackendError) as info:
        LavaBackend(dataclasses.replace(program, projections=(*program.projections, second))).run(5, learn=True)
    assert "several three-factor projections" in str(info.value)
    with pytest.raises(BackendError, match="learn=True"):
        LavaBackend(_two_layer(stdp_rule)).run(5, inputs={"pre": np.ones((5, 3))}, record=["w"])


def test_plastic_projection_without_learning_is_static():
    """``learn=False`` (the default, as in the emulator): the plastic projection is an
    ordinary Dense and the weights stay the chip's truncated mantissas."""
    program = _two_layer(rule_6_2(RULES_6_2["r0"], 1))
    x = (np.random.default_rng(0).random((30, 3)) < 0.4).astype(np.uint8)
    emu = Emulator(program).run(30, inputs={"pre": x}, record=["spikes", "v", "u"])
    lava = LavaBackend(program).run(30, inputs={"pre": x}, record=["spikes", "v", "u"])
    assert emu["post/spikes"].any()
    assert_same(emu, lava)


@pytest.mark.parametrize("three_factor", [False, True])
def test_learning_neurons_are_lavas_lif(three_factor):
    """A rule that moves only the tag: the learning run (LIF populations as RecordingLIF,
    sending the BAP and, for three factors, y1..y3; the projection a LearningDense) must give
    the u, v and spikes of Lava's own LIF and Dense (``learn=False``), bit for bit; and the
    process models that ran are Lava's fixed-point learning engine and LIF step."""
    kw = {}
    if three_factor:
        kw = dict(
            post_traces="graded",
            graded={"y1": {"source": "post_trace", "impulse": 16, "tau": 20}, "y2": {"source": "input"}},
        )
    dt = "2^-2*x1*y0 - 2^-2*y1*x0 + 2^-3*u0*y2"
    rule = EngineRule.from_strings(dt=dt, engine=ENGINE, traces=TRACES_MIXED, t_epoch=2, rng_seed=1, **kw)
    steps = 60
    program, inputs = network(rule, steps, seed=41, n_pre=3, n_post=2)
    if three_factor:
        inputs[f"{PROJ}/y2"] = reward_signal(steps, 2)
    backend = LavaBackend(program)
    learned = backend.run(steps, inputs=inputs, record=["spikes", "v", "u", "w", "t"], learn=True)
    assert backend.process_models == {
        PROJ: "PyLearningDenseModelBitApproximate",
        "pre": "PyRecordingLIFModel",
        "post": "PyRecordingLIFModel",
    }
    static = LavaBackend(program).run(steps, inputs=inputs, record=["spikes", "v", "u"])
    w, t = learned[f"{PROJ}/w"], learned[f"{PROJ}/t"]
    assert (w == w[:1]).all() and (t != 0).any() and learned["post/spikes"].any()
    for key, arr in static.items():
        np.testing.assert_array_equal(learned[key], arr, err_msg=key)
