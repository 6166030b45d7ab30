"""On-chip learning without Lava: the sum-of-products engine in the emulator (batches,
shared weights, resumable runs, seeded randomness), the lowerings of STDP and R-STDP against
their float rules, the compile-time checks of plastic projections, Program round trips and
the ``run --learn`` command line.

Reference semantics: ``loihi2-fixed-point.md`` section 5 (Lava 0.10.0's learning engine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import re

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.cli import main
from neurocomp.compiler import Program
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.emulator import Emulator, EmulatorError
from neurocomp.emulator.emulator import Checkpoint
from neurocomp.errors import NeurocompError
from neurocomp.learning.engine import SumOfProductsEngine
from neurocomp.learning.rule import EngineRule, Trace
from neurocomp.rules.stdp import StdpFloat
from tests.conftest import EXAMPLES, ROOT

LOIHI2 = nc.load_profile("loihi2")
ENGINE = LOIHI2.learning
# Lava's ConnVarRandom: seed 2, hard-coded; one draw at construction, one per learning phase
CONN_SEED = 2
LEARNING_RECORD = ["spikes", "w", "t", "d", "x1", "x2", "y1", "y2"]


def _custom_rule(t_epoch: int = 1, rng_seed: int = 5) -> EngineRule:
    """An STDP-like rule with tags (eligibility) and a ``d`` update, fractional impulses
    (stochastic impulse rounding) and short time constants (stochastic decay rounding), so
    that every random stream of the engine matters."""
    return EngineRule.from_strings(
        dw="2^-2*y0*x1 - 3*2^-3*x0*y1 + 2^-5*u1*t",
        dt="y0*x1 - x0*y2 - 2^-2*u1*t",
        dd="2^-3*y0*x2",
        engine=ENGINE,
        traces={"x1": Trace(12.6, 4), "x2": Trace(7.3, 3), "y1": Trace(10.3, 6), "y2": Trace(9.0, 2)},
        t_epoch=t_epoch,
        rng_seed=rng_seed,
    )


def _custom_program(rule: EngineRule, rate_hz: float | None = None) -> Program:
    """4 inputs -> 3 LIF (delta-like current: du = 4095), mixed-sign weights."""
    src = QPopulation.spike_input("in", 4, rate_hz=rate_hz, seed=3 if rate_hz else None)
    out = QPopulation.lif("out", 3, du=4095, dv=1024, vth=60)
    w = np.random.default_rng(1).integers(-40, 120, (3, 4))
    proj = QProjection.from_mantissas("in->out", "in", "out", w)
    assert proj.sign_mode == "mixed"
    return Program.from_parts("loihi2", [src, out], [dataclasses.replace(proj, learning=rule)])


def _raster(steps: int, batch: int, n: int, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, batch, n)) < p).astype(np.uint8)


def _compile(net: nc.Network, profile="loihi2", **options) -> Program:
    return nc.compile(net, profile, out=io.StringIO(), **options)


def _notes(program: Program, pass_name: str = "lower_learning") -> list[str]:
    return [n for r in program.pass_log if r["name"] == pass_name for n in r["notes"]]


# -- 1. batches: independent trials --------------------------------------------------------


@pytest.mark.parametrize("t_epoch", [1, 3])
def test_batch_trials_learn_as_if_run_alone(t_epoch: int) -> None:
    prog = _custom_program(_custom_rule(t_epoch))
    steps = 45  # 45 or 15 learning phases
    raster = _raster(steps, 3, 4, 0.3, seed=0)
    rec = Emulator(prog, batch=3, learn_mode="independent").run(steps, {"in": raster}, LEARNING_RECORD, learn=True)
    # the trials differ, so a mix-up of trials would show
    w_final = rec["in->out/w"][-1]
    assert not np.array_equal(w_final[0], w_final[1]) and not np.array_equal(w_final[1], w_final[2])
    assert rec["out/spikes"].sum() > 20 and np.any(rec["in->out/t"] != 0) and np.any(rec["in->out/d"] != 0)
    for b in range(3):
        alone = Emulator(prog).run(steps, {"in": raster[:, b : b + 1]}, LEARNING_RECORD, learn=True)
        assert alone.keys() == rec.keys()
        for key, arr in alone.items():
            np.testing.assert_array_equal(rec[key][:, b], arr[:, 0], err_msg=f"{key}, trial {b}")


def test_plastic_delivery_without_learning_equals_static_delivery() -> None:
    """The example model (sparse, delay 2, excitatory): with ``learn=False`` a plastic
    projection delivers exactly as the static one does; with learning, synapses that do not
    exist stay 0 and the existing ones move."""
    net = nc.load_network(EXAMPLES / "stdp_feedforward.yaml")
    plastic = _compile(net)
    proj = plastic.projections[0]
    assert proj.learning is not None and proj.is_sparse and proj.delay_steps == 2
    static = dataclasses.replace(plastic, projections=(dataclasses.replace(proj, learning=None, plasticity=None),))
    a = Emulator(plastic, batch=2).run(120, record=["spikes", "v"])
    b = Emulator(static, batch=2).run(120, record=["spikes", "v"])
    assert a["exc/spikes"].sum() > 10
    for key in b:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    emu = Emulator(plastic)
    emu.run(120, learn=True)
    w = emu.plastic[proj.name].engine.weights[0]
    absent = np.ones(proj.shape, bool)
    absent[proj.rows, proj.cols] = False
    assert np.all(w[absent] == 0)
    assert np.any(w[proj.rows, proj.cols] != proj.weights)


def test_emulator_learns_with_the_engine_on_its_own_spikes() -> None:
    """The emulator feeds a plastic projection's engine the pre and post spikes of the same
    step (Lava's s_in and s_in_bap) starting from the chip's initial weights (mixed signs:
    the LSB floored, as Lava's LearningDense truncates on its first step)."""
    rule = _custom_rule(3)
    prog = _custom_program(rule)
    raster = _raster(45, 1, 4, 0.3, seed=7)
    rec = Emulator(prog).run(45, {"in": raster}, ["spikes", "w", "t"], learn=True)
    w0 = prog.projections[0].weights.astype(np.int64)
    assert np.any(w0 % 2)
    eng = SumOfProductsEngine(rule, (w0 >> 1) << 1, engine=ENGINE, sign_mode="mixed")
    for t in range(1, 46):
        eng.spikes(t, rec["in/spikes"][t - 1], rec["out/spikes"][t - 1])
        eng.learn(t)
        np.testing.assert_array_equal(eng.weights, rec["in->out/w"][t - 1], err_msg=f"step {t}")
        np.testing.assert_array_equal(eng.state["t"], rec["in->out/t"][t - 1], err_msg=f"step {t}")


def test_delivery_uses_the_weights_before_this_steps_learning() -> None:
    """``dw = 7*2^3*x0``: +56 per pre spike. Pre spikes at steps 1 and 3 arrive at steps 2
    and 4 (u = a << 6 with du = 4095) carrying the weight before the learning of their step:
    20, then 76."""
    rule = EngineRule.from_strings(dw="7*2^3*x0", engine=ENGINE)
    src, out = QPopulation.spike_input("in", 1), QPopulation.lif("out", 1, du=4095, dv=0, vth=100_000)
    proj = dataclasses.replace(QProjection.from_mantissas("p", "in", "out", [[20]]), learning=rule)
    prog = Program.from_parts("loihi2", [src, out], [proj])
    spikes = np.array([[1], [0], [1], [0], [0]])
    rec = Emulator(prog).run(5, {"in": spikes}, ["u", "w"], learn=True)
    assert rec["p/w"][:, 0, 0, 0].tolist() == [76, 76, 132, 132, 132]
    assert rec["out/u"][:, 0, 0].tolist() == [0, 20 << 6, 0, 76 << 6, 0]


# -- 2. shared weights ---------------------------------------------------------------------


def test_shared_mode_with_one_trial_is_independent_mode() -> None:
    prog = _custom_program(_custom_rule(3))
    raster = _raster(45, 1, 4, 0.3, seed=1)
    a = Emulator(prog, learn_mode="shared").run(45, {"in": raster}, LEARNING_RECORD, learn=True)
    b = Emulator(prog, learn_mode="independent").run(45, {"in": raster}, LEARNING_RECORD, learn=True)
    assert not np.array_equal(a["in->out/w"][0], a["in->out/w"][-1])
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_float_shared_mode_adds_every_trials_update() -> None:
    """Two identical trials in shared mode change the weights by exactly twice one trial's
    change, every epoch (float engine, driven directly with a fixed raster)."""
    rule = _custom_rule(1)  # dw reads tags, not w: each trial's change adds, whatever the weights
    w0 = np.random.default_rng(4).integers(-100, 100, (3, 4))
    shared = SumOfProductsEngine(rule, w0, engine=ENGINE, batch=2, learn_mode="shared", arithmetic="float")
    single = SumOfProductsEngine(rule, w0, engine=ENGINE, batch=1, arithmetic="float")
    pre, post = _raster(40, 1, 4, 0.3, seed=2), _raster(40, 1, 3, 0.3, seed=3)
    changed = 0
    for t in range(1, 41):
        ws, w1 = shared.weights.copy(), single.weights.copy()
        shared.spikes(t, np.repeat(pre[t - 1], 2, axis=0), np.repeat(post[t - 1], 2, axis=0))
        single.spikes(t, pre[t - 1], post[t - 1])
        assert shared.learn(t) and single.learn(t)
        d_shared, d_single = shared.weights - ws, single.weights - w1
        # Each weight update is one float64 addition, and recovering the change by a
        # subtraction adds one more rounding: each change is off by at most ~2 ulp of the
        # weights (|w| < 2**9, ulp ~ 1e-13). A tolerance of 1e-12 x the weight scale is far
        # above that, and far below any real error: a mean instead of a sum, or one trial
        # dropped, is off by a whole update (>= 2**-5 here when nonzero).
        scale = max(1.0, float(np.abs(shared.weights).max()))
        np.testing.assert_allclose(d_shared, 2 * d_single, rtol=0, atol=1e-12 * scale, err_msg=f"step {t}")
        changed += int(np.count_nonzero(np.abs(d_single) > 2**-6))
    assert changed > 20  # the rule really changed the weights


def test_fixed_shared_mode_sums_the_trials_in_one_accumulator() -> None:
    """1x1 synapse, rule ``dw = 2^-1*y0*x1 - 5*2^-3*x0``, x1 impulse 6 (an integer, so no
    impulse rounding; the trace starts at 0, so no decay rounding), w = 10. Step 1, one epoch:

    * trial A: pre and post spike. x1 at the post spike = 6. Products in the 16-bit
      accumulator (the weight sits at 2**7): ``1*6 << (-1+7) = 384`` and ``-5 << (-3+7) = -80``;
    * trial B: pre spikes only: ``0`` and ``-80``.

    Independent: A: ``(1280 + 304)/128 = 12.375``, B: ``(1280 - 80)/128 = 9.375``, each rounded
    stochastically with the epoch's one random number r (up if r < 0.375). Shared: ``(1280 +
    384 - 80 - 80)/128 = 11.75``: one rounding of the sum (up if r < 0.75)."""
    rule = EngineRule.from_strings(dw="2^-1*y0*x1 - 5*2^-3*x0", engine=ENGINE, traces={"x1": Trace(6, 4)})
    r = np.random.default_rng(CONN_SEED).random(2)[1]  # the draw of the first learning phase
    pre, post = np.array([[1], [1]]), np.array([[1], [0]])
    res = {}
    for mode in ("shared", "independent"):
        eng = SumOfProductsEngine(rule, np.array([[10]]), engine=ENGINE, batch=2, learn_mode=mode)
        eng.spikes(1, pre, post)
        assert eng.learn(1)
        assert eng.conn_random.value == r
        res[mode] = eng.weights[:, 0, 0].tolist()
    assert res["independent"] == [12 + (r < 0.375), 9 + (r < 0.375)]
    assert res["shared"] == [11 + (r < 0.75)]
    # r = 0.298...: stochastic rounding differs from rounding to nearest here (13 and 10, not
    # 12 and 9), and the shared update (+2) is not the sum of the rounded per-trial ones (+3 + 0)
    assert 0.25 <= r < 0.375
    assert res["independent"] == [13, 10] and res["shared"] == [12]


def test_fixed_trace_epoch_by_hand() -> None:
    """One 2-step epoch of ``dw = y0*x1`` (x1: impulse 10.3, tau 4), derived from the
    reference (section 5.4/5.6) with the random streams drawn here: pre spikes at steps 1 and
    2, post at step 2.

    * step 2 is the pre neuron's second spike in the epoch: its impulse is added at once,
      with random 0: 10 + (0 < 77) = 11 (77 = round(0.3 * 256));
    * learning: h[0] = 11, h[1] = decay(h[0]), h[2] = decay(h[1]) + impulse of the last spike
      (tx = 2), where decay(h) = floor(f*h) + (r_dec < frac(f*h)) and the impulse is
      10 + (r_imp < 77), with the x streams' values after 1 + 2*2 draws;
    * ``dw`` reads x1 at the post spike (ty = 2), ``dt = u0*x1`` the trace at the end of the
      epoch (also h[2] here): one product ``x1 << 7`` each, no rounding.

    Seed 25 makes every rounding rule visible: r_dec = 0.002 and r_imp = 50 give 11 -> 9 -> 8,
    + 11 = 19; decays rounded down would give 6 + 11, rounded to nearest 7 + 11, and rounding
    the impulse up with the nominal probability 0.3 (50/128 > 0.3: down) 8 + 10."""
    seed = 25
    traces = {"x1": Trace(10.3, 4)}
    rule = EngineRule.from_strings(dw="y0*x1", dt="u0*x1", engine=ENGINE, traces=traces, t_epoch=2, rng_seed=seed)
    eng = SumOfProductsEngine(rule, np.array([[0]]), engine=ENGINE)
    eng.spikes(1, np.array([[1]]), np.array([[0]]))
    assert not eng.learn(1) and eng.state["x1"].tolist() == [[0]]
    eng.spikes(2, np.array([[1]]), np.array([[1]]))
    assert eng.state["x1"].tolist() == [[11]]
    assert eng.learn(2)
    rng_dec, rng_imp = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    r_dec = [rng_dec.random(1)[0] for _ in range(5)][-1]  # one draw at a time, as Lava draws
    r_imp = [rng_imp.integers(0, 128, size=1)[0] for _ in range(5)][-1]
    f = np.exp(-1 / 4)

    def decay(h: int) -> int:
        y = f * h
        return int(np.floor(y)) + int(r_dec < y % 1)

    h2 = min(127, decay(decay(11)) + 10 + int(r_imp < 77))
    assert (r_dec < 0.01, r_imp, h2) == (True, 50, 19)
    assert eng.state["x1"].tolist() == [[h2]]
    assert eng.weights.tolist() == [[[h2]]] and eng.state["t"].tolist() == [[[h2]]]


# -- 3. resuming a learning run --------------------------------------------------------------


def _rstdp_net() -> nc.Network:
    n = nc.Network(name="rstdp")
    n.add(nc.Population("in", 2, nc.SpikeInput()), nc.Population("out", 1, nc.LIF(tau_mem_ms=10.0, v_th=1.0)))
    params = {"lr": 0.05, "lr_reward": 0.05, "tau_elig_ms": 50.0}
    n.add(nc.Projection("in", "out", np.array([[1.2, 0.3]]), name="p", plasticity=nc.RuleSpec("rstdp", params)))
    return n


def _rstdp_raster(steps: int) -> np.ndarray:
    """Input 0 at steps 1, 21, ... drives the post neuron to spike one step later (causal);
    input 1 at steps 6, 26, ... comes after the post spike (anti-causal) and is too weak to
    make it spike."""
    raster = np.zeros((steps, 2), np.uint8)
    raster[::20, 0] = 1
    raster[5::20, 1] = 1
    return raster


def _resume_case(kind: str):
    """(program, inputs for 60 steps, record)"""
    if kind == "custom":  # Poisson input: the input generator's stream is checkpointed too
        return _custom_program(_custom_rule(3), rate_hz=300.0), {}, LEARNING_RECORD
    if kind == "rstdp-loihi1":  # the reward trace and its spike time are state too
        reward = (np.arange(60) % 20 >= 8).astype(float)
        return _compile(_rstdp_net(), "loihi1"), {"in": _rstdp_raster(60), "p/r0": reward}, ["spikes", "w", "t", "r1"]
    prog = _compile(_rstdp_net())
    reward = np.where(np.arange(60) % 20 >= 8, 6.0, -4.0)[:, None]
    inputs = {"in": _rstdp_raster(60), "p/y2": reward}
    return prog, inputs, ["spikes", "v", "w", "t", "x1", "y1", "y2"]


def _part(inputs, start, stop):
    return {k: v[start:stop] for k, v in inputs.items()}


@pytest.mark.parametrize("kind", ["custom", "rstdp", "rstdp-loihi1"])
@pytest.mark.parametrize("split", [30, 31])  # at an epoch boundary (t_epoch 3) and inside an epoch
def test_learning_runs_resume_bit_for_bit(kind: str, split: int, tmp_path) -> None:
    prog, inputs, record = _resume_case(kind)
    one = Emulator(prog)
    whole = one.run(60, inputs, record, learn=True)
    assert whole["out/spikes"].sum() >= 3
    w_key = f"{prog.projections[0].name}/w"
    assert not np.array_equal(whole[w_key][-1], prog.projections[0].dense_mantissas()[None])

    chunked = Emulator(prog)
    parts = [chunked.run(10, _part(inputs, i, i + 10), record, learn=True) for i in range(0, 60, 10)]

    first = Emulator(prog)
    head = first.run(split, _part(inputs, 0, split), record, learn=True)
    path = first.checkpoint().save(tmp_path / "ckpt.npz")
    resumed = Emulator(prog)  # a new emulator, restored from disk
    resumed.restore(Checkpoint.load(path))
    assert resumed.t == split
    tail = resumed.run(60 - split, _part(inputs, split, 60), record, learn=True)

    for key, arr in whole.items():
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), arr, err_msg=f"chunked {key}")
        np.testing.assert_array_equal(np.concatenate([head[key], tail[key]]), arr, err_msg=f"resumed {key}")
    final = one.state
    for emu in (chunked, resumed):
        assert emu.state.keys() == final.keys()
        for key, arr in final.items():  # tags, traces, spike times, neuron traces, neuron states
            np.testing.assert_array_equal(emu.state[key], arr, err_msg=key)


# -- 4./5. the lowered STDP rule: float rule, float engine, fixed engine --------------------------

STDP_PARAMS = {"lr": 0.006, "a_plus": 1.0, "a_minus": 2.3, "tau_plus_ms": 20.0, "tau_minus_ms": 10.0}
STDP_STEPS = 2000
STDP_SEED = 0  # the input raster's seed (seeds 0..3 give cosines 0.979..0.987 in the fixed-vs-float test)


@functools.cache
def _stdp_case():
    """A dense, delay-free copy of ``stdp_feedforward.yaml`` (16 inputs, 8 LIF), compiled for
    loihi2, and the pre/post spike raster of a 2000-step run without learning (inputs: p =
    0.02 per step; the LIF fire at ~0.06 per step, so the traces stay below 70 of 127).
    LTD is wider than LTP in amplitude and narrower in time, so about half the synapses
    potentiate and half depress."""
    net = nc.Network(name="stdp-dense")
    lif = nc.LIF(tau_mem_ms=10.0, tau_syn_ms=5.0, v_th=1.0, reset="zero")
    net.add(nc.Population("in", 16, nc.SpikeInput()), nc.Population("exc", 8, lif))
    w = np.random.default_rng(11).uniform(0.0, 0.15, (8, 16))
    net.add(nc.Projection("in", "exc", w, sign_mode="excitatory", plasticity=nc.RuleSpec("stdp", STDP_PARAMS)))
    prog = _compile(net)
    raster = _raster(STDP_STEPS, 1, 16, 0.02, seed=STDP_SEED)[:, 0]
    rec = Emulator(prog).run(STDP_STEPS, {"in": raster}, ["spikes"])
    return prog, rec["in/spikes"][:, 0], rec["exc/spikes"][:, 0]


def _drive(rule: EngineRule, arithmetic: str, pre: np.ndarray, post: np.ndarray) -> tuple[np.ndarray, float]:
    """The engine on a fixed raster, from zero weights in mixed sign mode (no saturation):
    the total change in weight mantissas, and the largest trace value seen."""
    eng = SumOfProductsEngine(rule, np.zeros((post.shape[1], pre.shape[1]), int), engine=ENGINE, arithmetic=arithmetic)
    top = 0.0
    for t in range(1, len(pre) + 1):
        eng.spikes(t, pre[t - 1][None], post[t - 1][None])
        assert eng.learn(t)
        top = max(top, float(eng.state["x1"].max()), float(eng.state["y1"].max()))
    return eng.weights[0].astype(np.float64), top


@functools.cache
def _float_engine_dw():
    prog, pre, post = _stdp_case()
    return _drive(prog.projections[0].learning, "float", pre, post)


def test_lowered_stdp_in_float_is_the_float_rule() -> None:
    prog, pre, post = _stdp_case()
    proj = prog.projections[0]
    rule = proj.learning
    assert post.sum() > 200 and pre.sum() > 200
    # the lowering: dw = c+ * y0*x1 - c- * x0*y1, impulse 16, taus in steps
    assert rule.traces["x1"] == Trace(16.0, 20) and rule.traces["y1"] == Trace(16.0, 10) and rule.t_epoch == 1
    # taus are converted to steps at the program's dt
    half = _compile(_plastic_net("stdp", STDP_PARAMS), dt_ms=0.5).projections[0].learning
    assert half.traces["x1"].tau == 40 and half.traces["y1"].tau == 20
    (ltp, ltd) = rule.dw.products
    assert (ltp.dependency, [f.var for f in ltp.factors]) == ("y0", ["x1"])
    assert (ltd.dependency, [f.var for f in ltd.factors]) == ("x0", ["y1"])
    lsb = 2.0**proj.weight_exp * proj.float_scale
    c_exact = [STDP_PARAMS["lr"] * STDP_PARAMS[a] / (16.0 * lsb) for a in ("a_plus", "a_minus")]
    c_rounded = [ltp.mantissa * 2.0**ltp.exponent, -ltd.mantissa * 2.0**ltd.exponent]
    ratio = [r / e for r, e in zip(c_rounded, c_exact, strict=True)]
    assert all(abs(q - 1) <= 0.25 for q in ratio) and ratio[0] != ratio[1]  # the two rates round differently

    dw_engine, _ = _float_engine_dw()
    f = StdpFloat(
        STDP_PARAMS["lr"],
        a_plus=STDP_PARAMS["a_plus"] * ratio[0],
        a_minus=STDP_PARAMS["a_minus"] * ratio[1],
        tau_plus_ms=STDP_PARAMS["tau_plus_ms"],
        tau_minus_ms=STDP_PARAMS["tau_minus_ms"],
        dt_ms=prog.dt_ms,
    )
    state = f.init(1, *proj.shape)
    dw_rule = np.zeros(proj.shape)
    for t in range(STDP_STEPS):
        dw_rule += f.step(state, pre[t][None].astype(float), post[t][None].astype(float))[0]
    assert np.abs(dw_rule).max() > 0 and (dw_rule > 0).any() and (dw_rule < 0).any()
    # Same algebra in float64: the engine's trace is exactly 16x the rule's (a power of two),
    # the decay factors are the same doubles (exp(-1/20), exp(-1/10)), and only the order
    # of the multiplications and of the 2000 additions differs: ~1e-16 per operation, ~1e-13
    # accumulated. 1e-9 of the largest change leaves room for that and nothing else: a tau
    # off by one step or the impulse not divided out is off by percents.
    scale = float(np.abs(dw_rule).max())
    np.testing.assert_allclose(dw_engine * lsb, dw_rule, rtol=1e-9, atol=1e-9 * scale)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_fixed_engine_follows_the_float_engine() -> None:
    """7-bit traces with stochastic decay rounding and the weight update rounded stochastically
    to one LSB are unbiased, so over ~2000 updates of up to a few LSB each the fixed engine's
    total change points where the float engine's does: cosine similarity >= 0.9 (measured
    0.979-0.987 over input seeds 0..3; the residual is rounding noise, which grows like the
    square root of the number of updates while the change itself grows linearly). The bound
    is meaningful: about half the synapses depress, and the same raster with the LTD term's
    sign flipped scores 0.1-0.25 (a flipped dw scores -0.98)."""
    prog, pre, post = _stdp_case()
    rule = prog.projections[0].learning
    dw_float, top_float = _float_engine_dw()
    dw_fixed, top_fixed = _drive(rule, "fixed", pre, post)
    # preconditions: the float traces never pass the 7-bit range the fixed ones saturate at,
    # and the fixed weights never reach the 9-bit clip, so both see the same rule
    assert top_float < 127 and top_fixed < 127
    assert np.abs(dw_fixed).max() < 255
    assert (dw_float > 0).any() and (dw_float < 0).any()
    assert _cosine(dw_fixed, dw_float) >= 0.9
    assert not np.array_equal(dw_fixed, np.round(dw_float))  # the fixed engine really is another arithmetic
    ltp, ltd = rule.dw.products
    flipped = dataclasses.replace(rule.dw, products=(ltp, dataclasses.replace(ltd, mantissa=-ltd.mantissa)))
    dw_flipped, _ = _drive(dataclasses.replace(rule, dw=flipped), "float", pre, post)
    assert _cosine(dw_fixed, dw_flipped) < 0.9


# -- 6. lowerings and design rules ------------------------------------------------------------


def _plastic_net(rule: str, params: dict, reset: str = "zero") -> nc.Network:
    n = nc.Network(name="plastic")
    n.add(nc.Population("in", 3, nc.SpikeInput()), nc.Population("out", 2, nc.LIF(tau_mem_ms=10.0, reset=reset)))
    n.add(nc.Projection("in", "out", np.full((2, 3), 0.3), name="ff", plasticity=nc.RuleSpec(rule, params)))
    return n


def _compile_error(net: nc.Network, profile="loihi2", **options) -> str:
    with pytest.raises(NeurocompError) as info:
        _compile(net, profile, **options)
    return str(info.value)


def test_rstdp_on_loihi1_uses_the_reward_trace(tmp_path) -> None:
    """Loihi 1 has no graded third factor but a reward trace r1 per learning rule: R-STDP lowers
    onto it (the reward as spikes of the projection's reward channel); without r1 the lowering
    names both missing features; a graded three-factor rule is still refused there, and r1 does
    not exist on loihi2."""
    rstdp = _plastic_net("rstdp", {"lr": 0.01, "lr_reward": 0.1})
    prog = _compile(rstdp, "loihi1")
    rule = prog.projections[0].learning
    assert rule.post_traces == "spikes" and rule.uses_reward
    assert str(rule.dw).endswith("*u0*t*r1") and rule.traces["r1"] == Trace(64.0, 0)
    assert rule.traces["y1"].impulse == 16.0  # the engine's own post trace of the post spikes
    assert any("reward trace r1" in n and "'ff/r0'" in n for n in _notes(prog)), _notes(prog)
    # a loihi1 whose engine lacked the reward trace: both missing features are named
    text = (ROOT / "hardware_profiles" / "loihi1.yaml").read_text()
    assert "third_factor: false" in text
    text, n = re.subn(r"^(  variables: \[.*), r1(, .*\])", r"\1\2", text, flags=re.M)
    assert n == 1
    path = tmp_path / "loihi1.yaml"  # a profile's file is named after it
    path.write_text(text.replace(", r1]", "]").replace("learning.variables, ", ""))
    msg = _compile_error(rstdp, nc.load_profile(path))
    assert "cannot be lowered" in msg and "'ff'" in msg
    assert "rstdp needs a graded third factor (the reward as y2) or a reward trace (r1)" in msg
    # a hand-written three-factor rule: the same gap, named by the rule check
    custom = _plastic_net("custom", {"dw": "u0*t*y2", "post_traces": "graded", "graded": {"y2": {"source": "input"}}})
    msg = _compile_error(custom, "loihi1")
    assert "'ff'" in msg and "third factor" in msg
    msg = _compile_error(_plastic_net("custom", {"dw": "u0*t*r1"}), "loihi2")
    assert "'ff'" in msg and "variable 'r1'" in msg and "is not available" in msg


RSTDP1 = {"lr": 0.01, "lr_reward": 0.125, "tau_elig_ms": 128.0, "a_minus": 1.0}  # 2^-7 decay, c_w = 2^-4: exact


def test_rstdp_on_loihi1_in_float_is_the_float_rule() -> None:
    """The lowered rule's float engine on a random raster with random reward spikes equals the
    float R-STDP rule with the reward R_j = r0 (every post neuron), the lowering's rounded
    rates and the same raster, to rounding error (as the STDP test above)."""
    from neurocomp.rules.rstdp import RstdpFloat

    prog = _compile(_plastic_net("rstdp", RSTDP1), "loihi1")
    proj = prog.projections[0]
    rule = proj.learning
    lsb = 2.0**proj.weight_exp * proj.float_scale
    ltp, ltd, decay = sorted(rule.dt.products, key=lambda p: (p.dependency, p.mantissa))[::-1]
    assert [f.var for f in decay.factors] == ["t"] and decay.mantissa * 2.0**decay.exponent == -(2**-7)
    (pw,) = rule.dw.products
    assert pw.mantissa * 2.0 ** (pw.exponent - 5) * 64 == RSTDP1["lr_reward"]  # shifted by 5, r1 = 64 per spike
    ratio = [
        p.mantissa * 2.0**p.exponent * 16.0 * lsb / (RSTDP1["lr"] * a)
        for p, a in ((ltp, 1.0), (ltd, -RSTDP1["a_minus"]))
    ]
    steps, rng = 400, np.random.default_rng(2)
    pre = (rng.random((steps, 3)) < 0.1).astype(np.int64)
    post = (rng.random((steps, 2)) < 0.1).astype(np.int64)
    reward = (rng.random(steps) < 0.15).astype(np.int64)
    eng = SumOfProductsEngine(
        rule, np.zeros((2, 3), int), engine=nc.load_profile("loihi1").learning, arithmetic="float"
    )
    f = RstdpFloat(RSTDP1["lr"], a_plus=ratio[0], a_minus=RSTDP1["a_minus"] * ratio[1], lr_reward=RSTDP1["lr_reward"],
                   tau_elig_ms=128.0, dt_ms=prog.dt_ms, tau_plus_ms=20.0, tau_minus_ms=20.0)  # fmt: skip
    state = f.init(1, 2, 3)
    dw_rule = np.zeros((2, 3))
    for t in range(1, steps + 1):
        eng.spikes(t, pre[t - 1][None], post[t - 1][None], reward=reward[t - 1 : t])
        eng.learn(t)
        assert eng.state["r1"][0, 0] == 64.0 * reward[t - 1]  # tau 0: this step's reward only
        dw_rule += f.step(state, pre[t - 1][None].astype(float), post[t - 1][None].astype(float), reward[t - 1])[0]
    scale = float(np.abs(dw_rule).max())
    assert scale > 0 and (dw_rule > 0).any() and (dw_rule < 0).any()
    np.testing.assert_allclose(eng.weights[0] * lsb, dw_rule, rtol=1e-9, atol=1e-9 * scale)


def test_rstdp_on_loihi1_reward_spikes_move_weights_by_causality() -> None:
    """The R-STDP case below on loihi1: trial 0 without reward, trial 1 with reward spikes at
    steps 9-18 (after one causal and one anti-causal pairing). Reward spikes must be 0 or 1."""
    prog = _compile(_rstdp_net(), "loihi1")
    steps = 40
    reward = np.zeros((steps, 2))
    reward[8:18, 1] = 1
    emu = Emulator(prog, batch=2)
    rec = emu.run(steps, {"in": _rstdp_raster(steps), "p/r0": reward}, ["spikes", "w", "t", "r1"], learn=True)
    w0 = prog.projections[0].dense_mantissas()[0]
    w = rec["p/w"][-1, :, 0]
    tags = rec["p/t"][:, 0, 0]
    assert tags[7, 0] > 0 and tags[7, 1] < 0  # causal: positive eligibility, anti-causal: negative
    np.testing.assert_array_equal(rec["p/r1"][:, :, 0], 64 * reward)  # the reward trace holds the step's spike
    np.testing.assert_array_equal(rec["p/w"][:, 0, 0], np.broadcast_to(w0, (steps, 2)))  # no reward: no change
    assert w[1, 0] > w0[0] and w[1, 1] < w0[1]  # reward: causal grows, anti-causal shrinks
    for bad in (np.full(steps, 2), np.full(steps, -1)):  # one spike per step; no negative reward on loihi1
        with pytest.raises(EmulatorError, match=r"input 'p/r0': reward spikes are 0 or 1 per step.*step 0"):
            Emulator(prog).run(steps, {"in": _rstdp_raster(steps), "p/r0": bad}, learn=True)
    with pytest.raises(EmulatorError, match=r"input 'p/y2': projection 'p' reads graded inputs \['r0'\]"):
        Emulator(prog).run(steps, {"in": _rstdp_raster(steps), "p/y2": reward[:, :1]}, learn=True)


def test_no_learning_engine_names_the_rule() -> None:
    msg = _compile_error(_plastic_net("stdp", {"lr": 0.01}, reset="subtract"), "xylo")
    assert "'ff'" in msg and "'stdp'" in msg and "no on-chip learning" in msg
    assert "reset" not in msg  # the network is otherwise fine for xylo: this is the only problem


def test_stdp_parameter_problems_are_reported_together() -> None:
    msg = _compile_error(_plastic_net("stdp", {"a_plus": 1.0, "tua_plus_ms": 20.0}))
    assert "unknown parameter 'tua_plus_ms'" in msg and "tau_plus_ms" in msg  # with the known ones
    assert "parameter 'lr' is required" in msg


@pytest.mark.parametrize("lr", [1e-9, 1e-6])  # 1e-9 rounds to m = 0 at every exponent
def test_learning_rate_below_the_engines_range_fails(lr: float) -> None:
    net = _plastic_net("stdp", {"lr": lr})
    q = _compile(_plastic_net("stdp", {"lr": 0.01})).projections[0]  # the same weights, so the same LSB
    c = lr / (16.0 * 2.0**q.weight_exp * q.float_scale)  # the scale the lowering needs
    msg = _compile_error(net)
    assert "'ff'" in msg and "potentiation scale" in msg and f"{c:.4g}" in msg
    e_lo, e_hi = ENGINE.exponent_min, ENGINE.exponent_max
    assert f"{2.0**e_lo:g} .. " in msg and f"m in [{ENGINE.mantissa_min}, {ENGINE.mantissa_max}]" in msg
    assert f"e in [{e_lo}, {e_hi}]" in msg


def test_rounded_learning_rate_is_in_the_compile_notes() -> None:
    params = {"lr": 0.01, "a_plus": 1.0, "a_minus": 0.3}
    prog = _compile(_plastic_net("stdp", params))
    q = prog.projections[0]
    lsb = 2.0**q.weight_exp * q.float_scale
    notes = "\n".join(_notes(prog))
    for what, a, product in (
        ("potentiation", 1.0, q.learning.dw.products[0]),
        ("depression", 0.3, q.learning.dw.products[1]),
    ):
        c = params["lr"] * a / (16.0 * lsb)
        # the engine's closest m*2^e, found here by brute force
        best = min(abs(m * 2.0**e - c) for m in range(-8, 8) for e in range(-7, 9))
        assert abs(abs(product.mantissa) * 2.0**product.exponent - c) == pytest.approx(best, abs=1e-15)
        rel = best / c
        assert rel > 1e-3  # this rate really needs rounding
        shown = c if what == "potentiation" else -c  # the depression term's scale is negative
        assert f"stdp {what} scale {shown:.6g} rounded to" in notes
        assert f"relative error {rel:.1%}" in notes


def test_custom_rule_syntax_error_names_the_column() -> None:
    msg = _compile_error(_plastic_net("custom", {"dw": "2^-2*x0*q1"}))
    assert "'ff'" in msg and "'q1'" in msg and "column 9" in msg


# -- 7. Program round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["stdp", "rstdp", "rstdp-loihi1"])
def test_learning_rules_survive_save_and_load(kind: str, tmp_path) -> None:
    if kind == "stdp":
        prog = _compile(nc.load_network(EXAMPLES / "stdp_feedforward.yaml"))
        inputs, name = {}, prog.projections[0].name
    elif kind == "rstdp-loihi1":
        prog = _compile(_rstdp_net(), "loihi1")
        inputs, name = {"in": _rstdp_raster(60), "p/r0": (np.arange(60) % 20 >= 8).astype(float)}, "p"
        assert prog.projections[0].learning.traces["r1"] == Trace(64.0, 0)
    else:
        prog = _compile(_rstdp_net())
        inputs, name = {"in": _rstdp_raster(60), "p/y2": np.full((60, 1), 5.0)}, "p"
        rule = prog.projections[0].learning
        assert rule.post_traces == "graded"
        assert rule.graded["y1"]["source"] == "post_trace" and rule.graded["y2"]["source"] == "input"
    loaded = Program.load(prog.save(tmp_path / "p.ncp"))
    assert loaded == prog
    for a, b in zip(prog.projections, loaded.projections, strict=True):
        assert (a.learning is None) == (b.learning is None)
        if a.learning is not None:
            assert b.learning.to_dict() == a.learning.to_dict()
            assert b.learning == a.learning
    ra = Emulator(prog).run(60, inputs, ["spikes", "v", "w", "t", "x1", "y1"], learn=True)
    rb = Emulator(loaded).run(60, inputs, ["spikes", "v", "w", "t", "x1", "y1"], learn=True)
    assert not np.array_equal(ra[f"{name}/w"][0], ra[f"{name}/w"][-1])
    for key in ra:
        np.testing.assert_array_equal(ra[key], rb[key], err_msg=key)


# -- 8. R-STDP in the emulator ---------------------------------------------------------------


def test_rstdp_reward_moves_weights_by_causality() -> None:
    """Trials: reward 0, +10, -10, given at steps 9-18 (after one causal pairing of input 0 and
    one anti-causal pairing of input 1). ``dw = c * u0 * t * y2``: no reward, no change."""
    prog = _compile(_rstdp_net())
    steps = 40
    reward = np.zeros((steps, 3, 1))
    reward[8:18, 1] = 10.0
    reward[8:18, 2] = -10.0
    rec = Emulator(prog, batch=3).run(
        steps, {"in": _rstdp_raster(steps), "p/y2": reward}, ["spikes", "w", "t"], learn=True
    )
    w0 = prog.projections[0].dense_mantissas()[0]
    w = rec["p/w"][-1, :, 0]  # [trial, pre]
    post = rec["out/spikes"][:, :, 0]
    assert post[1].all() and post[21].all()  # the post neuron fires one step after input 0 (steps 2, 22)
    assert post.sum() == 6
    tags = rec["p/t"][:, 0, 0]  # eligibility in trial 0
    assert tags[7, 0] > 0 and tags[7, 1] < 0  # causal: positive, anti-causal: negative
    np.testing.assert_array_equal(rec["p/w"][:, 0, 0], np.broadcast_to(w0, (steps, 2)))  # no reward: w never moves
    assert w[1, 0] > w0[0] and w[1, 1] < w0[1]  # positive reward: causal grows, anti-causal shrinks
    assert w[2, 0] < w0[0] and w[2, 1] > w0[1]  # negative reward: the opposite
    np.testing.assert_array_equal(rec["p/w"][:8, 1:, 0], np.broadcast_to(w0, (8, 2, 2)))  # nothing before the reward


# -- 9. rules without a lowering ----------------------------------------------------------------


def test_unlowered_rules_refuse_to_learn_but_still_run() -> None:
    """SpiNNaker 2 accepts STDP and R-STDP (its cores are programmable), but neurocomp has no
    lowering of them onto its cores: the Program keeps the rule specifications, and the
    emulator refuses to learn rather than silently run without learning."""
    net = _plastic_net("stdp", {"lr": 1e-3})
    net.add(nc.Population("out2", 2, nc.LIF(tau_mem_ms=10.0)))
    rstdp = nc.RuleSpec("rstdp", {"lr": 1e-3, "lr_reward": 1e-2})
    net.add(nc.Projection("in", "out2", np.full((2, 3), 0.3), name="ff2", plasticity=rstdp))
    prog = _compile(net, "spinnaker2")
    assert [(p.name, p.plasticity.name, p.learning) for p in prog.projections] == [
        ("ff", "stdp", None),
        ("ff2", "rstdp", None),
    ]
    assert any("no programmable lowering" in n and "ff (stdp)" in n and "ff2 (rstdp)" in n for n in _notes(prog))
    emu = Emulator(prog)
    inputs = {"in": _raster(30, 1, 3, 0.5, seed=0)[:, 0]}
    with pytest.raises(EmulatorError) as info:
        emu.run(30, inputs, learn=True)
    msg = str(info.value)
    assert "projection 'ff': rule 'stdp'" in msg and "projection 'ff2': rule 'rstdp'" in msg and "spinnaker2" in msg
    assert emu.t == 0  # refused before any step
    rec = emu.run(30, inputs, record=["spikes"])
    assert emu.t == 30 and rec["out/spikes"].shape == (30, 1, 2) and rec["out/spikes"].sum() > 0


# -- 10. the command line -------------------------------------------------------------------------


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


def test_cli_run_learn_saves_snapshots_and_learned_program(tmp_path, capsys) -> None:
    model = EXAMPLES / "stdp_feedforward.yaml"
    ncp, learned, rec = tmp_path / "m.ncp", tmp_path / "learned.ncp", tmp_path / "rec.npz"
    assert _cli("compile", model, "--profile", "loihi2", "-o", ncp, "-q")[0] == 0
    code, out = _cli(
        "run", ncp, "--steps", 100, "--batch", 2, "--learn", "--save-learned", learned,
        "--snapshot-every", 30, "--out", rec, "--record", "spikes,w",
    )  # fmt: skip
    assert code == 0, out
    assert f"saved the learned weights of in->exc to {learned}" in out
    prog = Program.load(ncp)
    proj = prog.projections[0]
    emu = Emulator(prog, batch=2)
    ref = emu.run(100, record=["spikes", "w"], learn=True)
    final = emu.plastic[proj.name].engine.weights
    with np.load(rec) as z:
        snaps, at = z["in->exc/w_snapshots"], z["in->exc/w_snapshot_steps"]
        np.testing.assert_array_equal(z["in->exc/w"], ref["in->exc/w"])
    assert snaps.shape == (4, 2) + proj.shape and at.tolist() == [30, 60, 90, 100]
    for i, step in enumerate(at):
        np.testing.assert_array_equal(snaps[i], ref["in->exc/w"][step - 1])
    np.testing.assert_array_equal(snaps[-1], final)
    assert not np.array_equal(final[0], proj.dense_mantissas())

    saved = Program.load(learned)
    sp = saved.projections[0]
    assert sp.is_sparse and np.array_equal(sp.rows, proj.rows) and np.array_equal(sp.cols, proj.cols)
    np.testing.assert_array_equal(sp.weights, final[0][proj.rows, proj.cols])
    np.testing.assert_array_equal(sp.dense_mantissas(), final[0])
    assert sp.learning.to_dict() == proj.learning.to_dict()
    assert saved.pass_log[-1]["name"] == "with_weights"

    capsys.readouterr()
    assert main(["run", str(ncp), "--steps", "5", "--save-learned", str(tmp_path / "x.ncp"), "--out", str(rec)]) == 2
    assert "--save-learned needs --learn" in capsys.readouterr().err
    assert not (tmp_path / "x.ncp").exists()


# -- 11. the engine's random streams ----------------------------------------------------------------


def test_learning_randomness_comes_from_the_rules_seeded_streams() -> None:
    """The rule's ``rng_seed`` seeds the trace streams (Lava: seed .. seed + 3); the weight
    rounding stream has Lava's fixed seed (checked in the shared-mode test above)."""
    raster = _raster(60, 1, 4, 0.3, seed=5)
    prog = _custom_program(_custom_rule(3, rng_seed=5))

    def learned(program: Program) -> dict[str, np.ndarray]:
        return Emulator(program, seed=0).run(60, {"in": raster}, ["w", "t", "x1"], learn=True)

    a, b = learned(prog), learned(prog)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    c = learned(_custom_program(_custom_rule(3, rng_seed=6)))
    assert not np.array_equal(a["in->out/x1"], c["in->out/x1"])  # trace rounding uses the rule's streams
    assert not np.array_equal(a["in->out/w"][-1], c["in->out/w"][-1])


@pytest.mark.parametrize(
    ("rule", "params", "expected"),
    [
        ("rstdp", {"lr": 0.01, "lr_reward": 0.1, "tau_elig_ms": 0.0}, "'tau_elig_ms' must be > 0"),
        ("stdp", {"lr": 0.01, "trace_impulse": 0.0}, "'trace_impulse' must be > 0"),
        ("stdp", {"lr": float("nan")}, "'lr' must be a finite number"),
        ("stdp", {"lr": "0.01"}, "'lr' must be a finite number"),
        ("stdp", {"lr": 0.01, "tau_plus_ms": -20.0}, "'tau_plus_ms' must be > 0"),
        ("stdp", {"lr": 0.01, "trace_impulse": 200.0}, "exceeds the 7-bit trace"),
        ("custom", {"dw": "x0*y1", "rng_seed": "abc"}, "rng_seed must be an integer"),
        ("custom", {"dw": "x0*y1", "t_epoch": 2.5}, "t_epoch must be an integer"),
        ("custom", {"dw": "x0*y1", "traces": [1, 2]}, "traces must map x1..y3"),
    ],
)
def test_bad_rule_parameters_are_compile_errors_naming_them(rule, params, expected) -> None:
    """Bad values are refused with the parameter named (no crash, no silent fix)."""
    msg = _compile_error(_plastic_net(rule, params))
    assert expected in msg and "'ff'" in msg, msg


def test_block_drawn_streams_are_the_single_draw_streams() -> None:
    """The engine draws its random streams in blocks; the numbers and the reported state must
    be those of one draw per step (Lava's order), across a block boundary and after a restore."""
    from neurocomp.learning.engine import _Stream, _TraceRandom

    n = _Stream.BLOCK + 37
    rnd = _TraceRandom(11, 12, trace_bits=7)
    dec, imp = np.random.default_rng(11), np.random.default_rng(12)
    for k in range(n):
        assert rnd.decay == dec.random(1)[0] and rnd.impulse == imp.integers(0, 128, 1)[0], k
        if k in (0, 5, _Stream.BLOCK - 1, _Stream.BLOCK + 3):
            s = rnd.get_state()
            assert s["decay_rng"] == dec.bit_generator.state and s["impulse_rng"] == imp.bit_generator.state
            again = _TraceRandom(0, 0, trace_bits=7)
            again.set_state(s)
            again.advance()
            copy_dec, copy_imp = np.random.default_rng(), np.random.default_rng()
            copy_dec.bit_generator.state, copy_imp.bit_generator.state = s["decay_rng"], s["impulse_rng"]
            assert again.decay == copy_dec.random(1)[0] and again.impulse == copy_imp.integers(0, 128, 1)[0]
        rnd.advance()
