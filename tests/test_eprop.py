"""e-prop lowered onto loihi2's learning engine: the graph it adds, the update it computes
(checked against the lowering's stated equations), its fixed-point arithmetic against its
float form, and what it refuses."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.compiler.errors import CompileError
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator
from tests.conftest import ROOT

EPROP = {"lr": 3e-3, "feedback": "random", "dampening": 0.3, "seed": 5, "trace_impulse": 1.0}


def small_net(n_in=8, n_rec=20, n_out=2, seed=0, feedback="random", hidden="LIF", eprop=None) -> nc.Network:
    """A random small e-prop network: Poisson inputs -> recurrent LIF -> leaky readouts."""
    params = {**EPROP, "feedback": feedback, **(eprop or {})}
    rule = nc.RuleSpec("eprop", params)
    neuron = (
        nc.LIF(tau_mem_ms=20.0, v_th=0.5, reset="zero")
        if hidden == "LIF"
        else nc.ALIF(tau_mem_ms=20.0, v_th=0.5, tau_adapt_ms=200.0, beta=0.1)
    )
    net = nc.Network(name="eprop-small")
    net.add(nc.Population("in", n_in, nc.SpikeInput(rate_hz=60.0, seed=seed + 1)))
    net.add(nc.Population("rec", n_rec, neuron))
    net.add(nc.Population("out", n_out, nc.LI(tau_mem_ms=20.0)))

    def w(std, s, post, pre, **kw):
        return nc.init_weights(
            {"init": "normal", "std": std, "seed": s, **kw}, post, pre, recurrent="exclude_self" in kw
        )

    net.add(nc.Projection("in", "rec", w(0.4, seed + 2, n_rec, n_in), plasticity=rule))
    net.add(nc.Projection("rec", "rec", w(0.1, seed + 3, n_rec, n_rec, exclude_self=True), plasticity=rule))
    net.add(nc.Projection("rec", "out", w(0.2, seed + 4, n_out, n_rec), plasticity=rule))
    return net


def compile_small(**kw) -> Program:
    return nc.compile(small_net(**kw), "loihi2", out=io.StringIO())


def target(steps: int, n_out: int = 2) -> np.ndarray:
    t = np.arange(steps)[:, None]
    return 0.3 * np.sin(2 * np.pi * t / 100 + np.arange(n_out)[None, :])


def test_lowering_adds_error_units_and_feedback():
    prog = compile_small()
    err = prog.population("out.error")
    assert err.model == "ErrorUnit" and err.size == 2 and err.params["readout"] == "out"
    fb = prog.projection("out.error->rec")
    assert fb.shape == (20, 2) and fb.plasticity is None and fb.learning is None
    assert np.abs(fb.weights).max() <= 254 and (fb.weights % 2 == 0).all()  # 9-bit, even: Lava keeps them
    for name in ("in->rec", "rec->rec"):
        rule = prog.projection(name).learning
        assert rule.post_traces == "graded" and rule.source == "eprop"
        assert rule.graded["y2"]["source"] == "learning_signal" and rule.graded["y3"]["source"] == "pseudo_derivative"
        dw = str(rule.dw).split(" + ")[0]  # then the floor offset (tests/test_eprop_floor_offset.py)
        assert dw.endswith("*u0*t*y2") and dw.startswith("-")  # gradient descent
    readout = prog.projection("rec->out").learning
    assert readout.graded["y2"] == {"source": "error", "unit": "out.error"}
    notes = [n for r in prog.pass_log if r["name"] == "lower_learning" for n in r["notes"]]
    assert any("kappa" in n and "2^-" in n for n in notes), notes  # each approximation is noted
    assert any("learning signal y2 = L >>" in n for n in notes), notes


def test_program_round_trip_keeps_the_lowering(tmp_path):
    prog = compile_small()
    path = prog.save(tmp_path / "eprop.ncp")
    again = Program.load(path)
    assert again.population("out.error").params == prog.population("out.error").params
    for pr in prog.projections:
        a, b = pr.learning, again.projection(pr.name).learning
        assert (a is None) == (b is None) and (a is None or a.to_dict() == b.to_dict())
    steps = 60
    runs = []
    for p in (prog, again):
        emu = Emulator(p)
        emu.run(steps, inputs={"out.error/target": target(steps)}, learn=True)
        runs.append(emu.state)
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_one_epoch_float_update_equals_the_stated_equations():
    """A 20-neuron network learning in float (the lowered rule without its rounding): every
    step's change of w, t and d equals the lowering's equations evaluated on the recorded
    spikes and graded signals (hand-computed here from those equations; the neurons reset to
    zero, so the eligibility vector restarts at the post spike: ``_zero_reset_rules``)."""
    prog = compile_small()
    steps = 80
    emu = Emulator(prog, learn_arithmetic="float")
    rec = emu.run(
        steps,
        inputs={"out.error/target": target(steps)},
        record=["spikes", "w", "t", "d", "y2", "y3"],
        learn=True,
    )
    k_ok = 0
    for name in ("in->rec", "rec->rec"):
        rule = prog.projection(name).learning
        # -c_w * u0 * t * y2, shifted by 5 (9 + 7 + 4 - 15 bits); then the floor offset's term,
        # whose y1 is 0 in float (no floor to offset: tests/test_eprop_floor_offset.py)
        pw, _ = rule.dw.products
        products = [*rule.dt.products, *rule.dd.products]
        by = {(p.dependency, tuple((f.var, f.const) for f in p.factors)): p for p in products}
        scale = lambda p, shift=0: p.mantissa * 2.0 ** (p.exponent - shift)  # noqa: E731
        c_w = scale(pw, 5)
        D = scale(by[("x0", ())])  # the carry's LSB per spike
        c_e = scale(by[("u", (("y3", 0), ("d", 0)))], 5)  # y3 * d shifted by 5 (7 + 9 + 4 - 15)
        assert scale(by[("x0", (("y3", 0), ("d", int(D))))], 5) == c_e  # the step's spike: y3 * (d + D)
        assert scale(by[("x0", (("y3", 0), ("d", 0)))], 5) == -c_e
        c_t = scale(by[("u", (("t", 0),))])  # u0 * t: 9 + 4 bits, no shift
        c_d = scale(by[("u", (("d", 0),))])  # the carry's decay, -(1 - alpha) rounded
        assert scale(by[("y0", (("d", int(D)),))]) == -1  # a post spike takes d + D off
        w, t, d = rec[f"{name}/w"][:, 0], rec[f"{name}/t"][:, 0], rec[f"{name}/d"][:, 0]
        x0 = rec[f"{name.split('->')[0]}/spikes"][:, 0].astype(float)[:, None, :]
        y0 = rec["rec/spikes"][:, 0].astype(float)[:, :, None]
        y2, y3 = rec[f"{name}/y2"][:, 0], rec[f"{name}/y3"][:, 0]
        # graded y values are read through the engine's y-trace history, which decays them by
        # exp(-1/65535) per step (Lava's three-factor rule sets the y taus to 65535)
        yd = np.exp(-1 / 65535)
        for s in range(1, steps):
            dw = c_w * t[s - 1] * yd * y2[s][:, None]  # every rule sees the tag before its update
            dt = c_e * (d[s - 1] + D * x0[s]) * yd * y3[s][:, None] + c_t * t[s - 1]
            d_new = np.maximum(0, d[s - 1] + D * x0[s] + c_d * d[s - 1] - y0[s] * (d[s - 1] + D))  # d >= 0
            # same float64 algebra in another order: agreement to rounding error
            np.testing.assert_allclose(w[s] - w[s - 1], dw, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(t[s] - t[s - 1], dt, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(d[s], d_new, rtol=1e-9, atol=1e-9)
            k_ok += int(np.abs(dw).max() > 0)
    assert k_ok > 20  # the updates are not trivially zero
    # the learning signal is B times the error of the step before, in y2 units
    fb = prog.projection("out.error->rec")
    s_L = prog.projection("in->rec").learning.graded["y2"]["shift"]
    err_steps = Emulator(prog, learn_arithmetic="float").run(
        steps, inputs={"out.error/target": target(steps)}, record=["spikes"], learn=True
    )["out.error/spikes"][:, 0]
    in_shift = 2**prog.profile.formats.input_shift
    expected = (err_steps[:-1] @ fb.weights.T.astype(float)) * in_shift * 2.0**-s_L
    np.testing.assert_allclose(rec["in->rec/y2"][1:, 0], expected, rtol=1e-12, atol=1e-12)


def test_fixed_update_aligns_with_float_update():
    """Teacher forcing: one run, whose chip learning drives the dynamics, and a float shadow
    learner that sees exactly the same spikes and graded signals. Seed 0, 100 steps after a
    100-step warm-up. Bound 0.9: the fixed engine's roundings of traces, tag and weights are
    stochastic and unbiased, but it floors each product shifted by its width (the x1*y3 and
    t*y2 products lose half an LSB per step on average) and psi, L and the error are 7-8 bit,
    so the directions agree closely but not exactly (measured 0.92-0.99 per projection with
    the subtractive reset's eligibility; 0.86 overall since the eligibility restarts at the
    reset to zero, the products' floor drifting it: README, "loihi2 with the eligibility
    restarted at the reset to zero"; bound 0.8). At
    the quantizer's weight exponents: the default weight headroom (one bit on the recurrent and
    readout weights) costs that bit of resolution, and the cosine falls to 0.85 (README,
    "Weight headroom for learned projections")."""
    prog = compile_small(seed=0, eprop={"weight_headroom_bits": 0})
    emu = Emulator(prog)
    warm = 100
    emu.run(warm, inputs={"out.error/target": target(warm)})
    shadow = emu.attach_shadow("float")
    w0 = {n: s.engine.weights.copy() for n, s in emu.plastic.items()}
    emu.run(100, inputs={"out.error/target": target(100)}, learn=True)
    fixed = np.concatenate([(s.engine.weights - w0[n]).ravel() for n, s in emu.plastic.items()])
    flt = np.concatenate([(shadow[n].engine.weights - w0[n]).ravel() for n in emu.plastic])
    cos = fixed @ flt / (np.linalg.norm(fixed) * np.linalg.norm(flt))
    assert np.linalg.norm(fixed) > 10  # tens of weight LSBs moved: a real update
    assert cos >= 0.8, cos


def test_training_on_the_chip_reduces_the_loss():
    prog = nc.compile(nc.load_network(ROOT / "examples" / "eprop_pattern.yaml"), "loihi2", out=io.StringIO())
    steps = 300
    tgt = 0.4 * np.sin(2 * np.pi * np.arange(steps) / 150)[:, None]
    emu = Emulator(prog)
    scale = 2.0 ** prog.population("out").scale_exp
    losses = []
    for _ in range(8):
        emu.reset(keep_weights=True)
        rec = emu.run(steps, inputs={"out.error/target": tgt}, record=["v"], learn=True)
        losses.append(float(np.mean((rec["out/v"][:, 0] / scale - tgt) ** 2)))
    # the example's readout starts small (so the first loss is near the target's own power,
    # 0.08, that of a silent readout); measured 0.110 -> 0.057 over the 8 trials
    assert losses[-1] < 0.6 * losses[0] and losses[-1] < 0.8 * float(np.mean(tgt**2)), losses


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"hidden": "ALIF"}, "cannot represent adaptation beyond about 128 steps"),
        ({"eprop": {"loss": "hinge"}}, "eprop loss 'hinge': one of 'mse', 'ce'"),
        ({"feedback": "transposed"}, "eprop feedback 'transposed': one of 'random', 'symmetric', 'adaptive'"),
        # 1/127 per LSB: a finer error (at the quantizer's exponent: the default headroom is dropped and said)
        ({"eprop": {"loss": "ce", "lr": 3e-3}}, "eprop readout scale = -0.00472"),
        ({"eprop": {"bogus": 1}}, "eprop: unknown parameter 'bogus'"),
        ({"eprop": {"lr": 1e-7}}, "eprop (readout|weight) scale"),  # both too small: the first one lowered
    ],
)
def test_what_the_lowering_refuses(kw, message):
    with pytest.raises(CompileError, match=message):
        compile_small(**kw)


def test_all_eprop_projections_share_loss_and_feedback():
    net = small_net()
    nets = nc.Network(name="mixed")
    for p in net.populations:
        nets.add(p)
    for pr in net.projections:
        if pr.name == "rec->out":
            pr = nc.Projection(pr.pre, pr.post, pr.weights, plasticity=nc.RuleSpec("eprop", {**EPROP, "loss": "ce"}))
        nets.add(pr)
    with pytest.raises(CompileError) as info:
        nc.compile(nets, "loihi2", out=io.StringIO())
    assert "eprop loss 'ce' differs from 'mse' of projection 'in->rec'" in str(info.value)


def test_loihi1_and_xylo_refuse_eprop_naming_the_missing_feature():
    with pytest.raises(nc.NeurocompError, match="loihi1 has no graded third factor"):
        nc.compile(small_net(), "loihi1", out=io.StringIO())
    with pytest.raises(nc.NeurocompError, match="xylo has no on-chip learning"):
        nc.compile(small_net(), "xylo", out=io.StringIO())


# -- ReckOn: the same e-prop on a fixed-function engine --------------------------------------------
def reckon_program(lr=3e-4, feedback="symmetric"):
    net = small_net(n_in=10, n_rec=30, n_out=1, eprop={"lr": lr, "feedback": feedback})
    return nc.compile(net, "reckon", out=io.StringIO())


def test_reckon_lowering_sets_registers_and_refuses_random_feedback():
    prog = reckon_program()
    roles = {pr.name: pr.learning.role for pr in prog.projections}
    assert roles == {"in->rec": "input", "rec->rec": "recurrent", "rec->out": "output"}
    reg = prog.projection("in->rec").learning.registers
    th = prog.population("rec").params["threshold"]
    assert reg.thr_h == tuple(round(f * th) for f in (0.25, 0.5, 0.75, 1.25))
    assert 0 < reg.lr_p < 32
    notes = [n for r in prog.pass_log if r["name"] == "lower_learning" for n in r["notes"]]
    assert any("rounded to a power of two" in n for n in notes), notes
    with pytest.raises(CompileError, match="reckon's learning signal is symmetric"):
        reckon_program(feedback="random")


def test_reckon_program_round_trip_and_resume(tmp_path):
    prog = reckon_program()
    again = Program.load(prog.save(tmp_path / "r.ncp"))
    assert again.projection("rec->rec").learning == prog.projection("rec->rec").learning
    steps = 80
    tgt = target(steps, 1)
    one = Emulator(again)
    one.run(steps, inputs={"out/target": tgt}, learn=True)
    two = Emulator(prog)
    two.run(30, inputs={"out/target": tgt[:30]}, learn=True)
    ckpt = two.checkpoint()
    ckpt.save(tmp_path / "c.npz")
    three = Emulator(prog)
    three.restore(type(ckpt).load(tmp_path / "c.npz"))
    three.run(steps - 30, inputs={"out/target": tgt[30:]}, learn=True)
    a, b = one.state, three.state
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["rec->out/w"][0], prog.projection("rec->out").weights)  # it learned


def test_reckon_training_reduces_the_loss_and_skips_steps_without_target():
    prog = reckon_program()
    steps = 300
    tgt = 0.4 * np.sin(2 * np.pi * np.arange(steps) / 150)[:, None]
    emu = Emulator(prog)
    scale = 2.0 ** prog.population("out").scale_exp
    losses = []
    for _ in range(6):
        emu.reset(keep_weights=True)
        rec = emu.run(steps, inputs={"out/target": tgt}, record=["v"], learn=True)
        losses.append(float(np.mean((rec["out/v"][:, 0] / scale - tgt) ** 2)))
    assert losses[-1] < 0.6 * losses[0], losses
    # no valid target (NaN: TARGET_VALID low): the weights do not move
    w = {n: s.engine.weights.copy() for n, s in emu.plastic.items()}
    emu.run(50, inputs={"out/target": np.full((50, 1), np.nan)}, learn=True)
    assert all(np.array_equal(w[n], s.engine.weights) for n, s in emu.plastic.items())


# -- SpiNNaker 2: the exact rule on programmable cores ---------------------------------------------
def spinnaker_program(feedback="random", hidden="LIF", loss="mse", lr=3e-4):
    net = small_net(n_in=10, n_rec=30, n_out=2, hidden=hidden, eprop={"lr": lr, "feedback": feedback, "loss": loss})
    return nc.compile(net, "spinnaker2", out=io.StringIO())


def loop_reference(rule, st, w, w_out, v, a, z, y, target, pre_spikes, recurrent):
    """EpropExact's step written synapse by synapse from its docstring's equations (float64)."""
    bsz, n_h = v.shape
    n_out = y.shape[1]
    A = rule.v_th + (a if a is not None else 0)
    psi = rule.gamma / rule.v_th * np.maximum(0, 1 - np.abs(v - A) / rule.v_th)
    if rule.loss == "ce":
        p = np.exp(y - y.max(axis=1, keepdims=True))
        err = p / p.sum(axis=1, keepdims=True) - target
    else:
        err = y - target
    L = np.zeros((bsz, n_h))
    f = rule.rate_decay * st["f"] + (1 - rule.rate_decay) * z  # the running rate with this step's spikes
    for b in range(bsz):
        for j in range(n_h):
            L[b, j] = sum(st["B"][b, j, k] * err[b, k] for k in range(n_out))
            if rule.reg:
                L[b, j] += rule.reg * (f[b, j] - rule.f_target)
    for name, wp in w.items():
        # the eligibility vector of synapse (j, i): the shared trace z_bar_i, or (reset to zero) its own
        zero = rule.zero_reset
        ev = st[f"{name}/eps_v"] if zero else st[f"{name}/z_bar"]
        for b in range(bsz):
            for j in range(n_h):
                for i in range(ev.shape[-1]):
                    x = ev[b, j, i] if zero else ev[b, i]
                    if rule.beta:
                        eps = st[f"{name}/eps"][b, j, i]
                        e = psi[b, j] * (x - rule.beta * eps)
                        st[f"{name}/eps"][b, j, i] = psi[b, j] * x + (rule.rho - psi[b, j] * rule.beta) * eps
                    else:
                        e = psi[b, j] * x
                    eb = rule.kappa * st[f"{name}/e_bar"][b, j, i] + (1 - rule.kappa) * e
                    st[f"{name}/e_bar"][b, j, i] = eb
                    if not (name in recurrent and i == j):
                        wp[b, j, i] -= rule.lr * L[b, j] * eb
        if zero:  # dv_j/dv_j of the previous step is alpha (1 - z_j): the vector restarts at the reset
            for b in range(bsz):
                for j in range(n_h):
                    ev[b, j] = rule.alpha * (1 - z[b, j]) * ev[b, j] + pre_spikes[name][b]
        else:
            st[f"{name}/z_bar"] = rule.alpha * ev + pre_spikes[name]
    st["z_out"] = rule.kappa * st["z_out"] + (1 - rule.kappa) * z
    st["f"] = rule.rate_decay * st["f"] + (1 - rule.rate_decay) * z
    for b in range(bsz):
        for k in range(n_out):
            for j in range(n_h):
                d = rule.lr * err[b, k] * st["z_out"][b, j]
                w_out[b, k, j] -= d
                if rule.feedback == "adaptive":
                    st["B"][b, j, k] -= d
    if rule.feedback == "symmetric":
        st["B"] = np.swapaxes(w_out, 1, 2).copy()


@pytest.mark.parametrize(
    ("alif", "loss", "feedback", "zero_reset"),
    [(False, "mse", "random", False), (True, "ce", "adaptive", False), (True, "mse", "symmetric", False),
     (False, "mse", "random", True), (True, "ce", "random", True)],
)  # fmt: skip
def test_exact_eprop_step_matches_a_synapse_by_synapse_loop(alif, loss, feedback, zero_reset):
    from neurocomp.learning.programmable import EpropExact

    rng = np.random.default_rng(3)
    bsz, n_h, n_in, n_out = 2, 4, 3, 2
    rule = EpropExact(lr=0.01, gamma=0.3, feedback=feedback, loss=loss, reg=0.5 if alif else 0.0,
                      reg_rate_per_step=0.01, rate_decay=0.999, alpha=0.95, kappa=0.9, v_th=0.6,
                      beta=0.07 if alif else 0.0, rho=0.99 if alif else 0.0, dtype=np.float64,
                      zero_reset=zero_reset)  # fmt: skip
    B = rng.standard_normal((n_h, n_out))
    st = rule.init(bsz, n_h, {"in->h": n_in, "h->h": n_h}, n_out, B)
    w = {"in->h": rng.standard_normal((bsz, n_h, n_in)), "h->h": rng.standard_normal((bsz, n_h, n_h))}
    w_out = rng.standard_normal((bsz, n_out, n_h))
    ref_st = {k: v.copy() for k, v in st.items()}
    ref_w = {k: v.copy() for k, v in w.items()}
    ref_out = w_out.copy()
    for _ in range(6):
        v = rng.uniform(0, 1.2, (bsz, n_h))
        a = rng.uniform(0, 0.2, (bsz, n_h)) if alif else None
        z = (rng.random((bsz, n_h)) < 0.3).astype(float)
        y = rng.standard_normal((bsz, n_out))
        tgt = np.eye(n_out)[rng.integers(0, n_out, bsz)] if loss == "ce" else rng.standard_normal((bsz, n_out))
        pre = {"in->h": (rng.random((bsz, n_in)) < 0.4).astype(float), "h->h": z}
        rule.step(st, w, w_out, v, a, z, y, tgt, pre, recurrent={"h->h"})
        loop_reference(rule, ref_st, ref_w, ref_out, v, a, z, y, tgt, pre, {"h->h"})
        # same float64 arithmetic in another order: agreement to rounding error
        for k in w:
            np.testing.assert_allclose(w[k], ref_w[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w_out, ref_out, rtol=1e-12, atol=1e-12)
        for k in st:
            np.testing.assert_allclose(st[k], ref_st[k], rtol=1e-12, atol=1e-12)
    assert (
        np.abs(w["h->h"][:, np.arange(n_h), np.arange(n_h)] - ref_w["h->h"][:, np.arange(n_h), np.arange(n_h)]).max()
        == 0
    )


def test_spinnaker2_runs_exact_eprop_and_learns():
    prog = spinnaker_program()
    assert {pr.learning.role for pr in prog.projections} == {"hidden", "output"}
    steps = 300
    tgt = target(steps)
    emu = Emulator(prog)
    losses = []
    for _ in range(6):
        emu.reset(keep_weights=True)
        rec = emu.run(steps, inputs={"out/target": tgt}, record=["v"], learn=True)
        losses.append(float(np.mean((rec["out/v"][:, 0] - tgt) ** 2)))
    assert losses[-1] < 0.5 * losses[0], losses


def test_spinnaker2_lowered_float_is_the_rule_in_float64_on_the_same_dynamics():
    """learn_arithmetic="float" on a programmable core: the learner and the weights in float64
    (the lowered-float level of a rule check), the neurons still float32. Over one short trial
    its weight change matches the float32 core's to float32 rounding (1e-3 of the change: the
    spike trains agree, so only the learner's roundings differ), without being identical."""
    prog = spinnaker_program()
    steps = 100
    tgt = target(steps)
    dw = {}
    for arith in ("chip", "float"):
        emu = Emulator(prog, learn_arithmetic=arith)
        w0 = {n: s.engine.weights.astype(np.float64).copy() for n, s in emu.plastic.items()}
        emu.run(steps, inputs={"out/target": tgt}, learn=True)
        assert {s.engine.weights.dtype for s in emu.plastic.values()} == {
            np.dtype(np.float32 if arith == "chip" else np.float64)
        }
        dw[arith] = {n: s.engine.weights.astype(np.float64) - w0[n] for n, s in emu.plastic.items()}
    for n in dw["chip"]:
        a, b = dw["chip"][n], dw["float"][n]
        assert np.abs(b).max() > 0, n
        assert np.abs(a - b).max() <= 1e-3 * np.abs(b).max(), n
    assert any(not np.array_equal(dw["chip"][n], dw["float"][n]) for n in dw["chip"])


@pytest.mark.parametrize(("hidden", "loss", "feedback"), [("ALIF", "ce", "adaptive"), ("LIF", "mse", "symmetric")])
def test_spinnaker2_accepts_alif_ce_and_all_feedbacks_and_resumes(tmp_path, hidden, loss, feedback):
    prog = spinnaker_program(feedback=feedback, hidden=hidden, loss=loss)
    again = Program.load(prog.save(tmp_path / "s.ncp"))
    steps = 60
    tgt = np.eye(2)[(np.arange(steps) // 30) % 2] if loss == "ce" else target(steps)
    one = Emulator(again)
    one.run(steps, inputs={"out/target": tgt}, learn=True)
    two = Emulator(prog)
    two.run(20, inputs={"out/target": tgt[:20]}, learn=True)
    ckpt = two.checkpoint()
    three = Emulator(prog)
    three.restore(ckpt)
    three.run(steps - 20, inputs={"out/target": tgt[20:]}, learn=True)
    a, b = one.state, three.state
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.allclose(a["rec->out/w"][0], prog.projection("rec->out").effective())


def test_rate_regularization_on_loihi2_lowers_the_rates():
    """With reg > 0 the neurons add reg * (rate - target) to their learning signal; towards a
    5 Hz target the trained network fires less than the same training without it."""
    final = {}
    for reg in (0.0, 30.0):
        prog = compile_small(seed=0, eprop={"reg": reg, "reg_rate_hz": 5.0})
        emu = Emulator(prog)
        for _ in range(5):
            emu.reset(keep_weights=True)
            rec = emu.run(300, inputs={"out.error/target": target(300)}, record=["spikes"], learn=True)
        final[reg] = rec["rec/spikes"].mean()
        if reg:
            src = prog.projection("in->rec").learning.graded["y2"]
            assert src["reg"] > 0 and src["rate_target"] == pytest.approx(0.005 * 2 ** src["rate_bits"])
            assert "in->rec/neuron_rate" in emu.state  # the running rate is state (checkpointed)
    assert final[30.0] < 0.95 * final[0.0], final


def alif_net(tau_adapt_ms: float) -> nc.Network:
    net = small_net(hidden="ALIF")
    rec = net.population("rec")
    net2 = nc.Network(name="eprop-alif")
    for p in net.populations:
        if p.name == "rec":
            p = nc.Population("rec", rec.size, nc.ALIF(tau_mem_ms=20.0, v_th=0.5, tau_adapt_ms=tau_adapt_ms, beta=0.1))
        net2.add(p)
    for pr in net.projections:
        net2.add(pr)
    return net2


def test_alif_eprop_on_loihi2_follows_its_stated_equations():
    """ALIF: the adaptation eligibility in tag d. In float learning, every step's change of d
    and t equals the lowering's equations on the recorded traces (1e-9, as for LIF)."""
    prog = nc.compile(alif_net(50.0), "loihi2", out=io.StringIO())
    rule = prog.projection("in->rec").learning
    assert rule.dd is not None and "u0*y3*d" in str(rule.dt)
    steps = 80
    rec = Emulator(prog, learn_arithmetic="float").run(
        steps, inputs={"out.error/target": target(steps)}, record=["t", "d", "x1", "y3"], learn=True
    )
    t, d = rec["in->rec/t"][:, 0], rec["in->rec/d"][:, 0]
    x1, y3 = rec["in->rec/x1"][:, 0], rec["in->rec/y3"][:, 0]
    yd = np.exp(-1 / 65535)  # graded y values pass through the engine's y history (tau 65535)

    def scale(p):  # the product's scale with its width shift: x1*y3 by 3, y3*d by 5, d or t by 0
        shift = {("x1", "y3"): 3, ("y3", "d"): 5}.get(tuple(f.var for f in p.factors), 0)
        return p.mantissa * 2.0 ** (p.exponent - shift)

    def value(p, s):
        vars_ = tuple(f.var for f in p.factors)
        return {
            ("x1", "y3"): x1[s][None, :] * yd * y3[s][:, None],
            ("y3", "d"): yd * y3[s][:, None] * d[s - 1],
            ("d",): d[s - 1],
            ("t",): t[s - 1],
        }[vars_]

    moved = 0
    for s in range(1, steps):
        dd = sum(scale(p) * value(p, s) for p in rule.dd.products)
        dt = sum(scale(p) * value(p, s) for p in rule.dt.products)
        np.testing.assert_allclose(d[s], np.maximum(d[s - 1] + dd, 0), rtol=1e-9, atol=1e-9)  # d >= 0 (Lava)
        np.testing.assert_allclose(t[s] - t[s - 1], dt, rtol=1e-9, atol=1e-9)
        moved += int(np.abs(dd).max() > 0)
    assert moved > 20


def test_alif_eprop_refuses_adaptation_longer_than_the_engine_can_decay():
    with pytest.raises(CompileError, match=r"cannot represent adaptation beyond about 128 steps"):
        nc.compile(alif_net(2000.0), "loihi2", out=io.StringIO())


# -- loihi2: softmax cross-entropy in the error units ------------------------------------------------
def ref_ce_payload(v: list[int], onehot: list[int], scale_exp: int, bits: int) -> list[int]:
    """The error units' softmax cross-entropy, one readout at a time with Python integers, from
    the equations stated in ``rules/eprop.py`` (max-subtracted base-2 exponential from a 64-entry
    Q15 table and a shift; the sum normalized to 8 bits; a 128-entry reciprocal table)."""
    shift = max(0, scale_exp - 6 + 15)
    mult = round(math.log2(math.e) * 2.0 ** (6 + shift - scale_exp))
    lut = [round(2**15 * 2 ** (-f / 64)) for f in range(64)]
    P = 2 ** (bits - 1) - 1
    recip = [round(P * 2**15 / (128 + i)) for i in range(128)]
    top = max(v)
    E = [lut[t % 64] >> (t // 64) for t in (((top - x) * mult) >> shift for x in v)]
    S = sum(E)
    n = S.bit_length() - 8
    r = recip[(S >> n) - 128]
    return [min((e * r + (1 << (n + 14))) >> (n + 15), P) - P * o for e, o in zip(E, onehot, strict=True)]


def ce_program(lr=1e-2, feedback="random", **kw) -> Program:
    return compile_small(feedback=feedback, eprop={"loss": "ce", "lr": lr}, **kw)


def test_ce_error_units_match_an_integer_reference():
    from neurocomp.learning.quantities import ce_error_exact, ce_error_fixed, ce_error_params

    prog = ce_program()
    err = prog.population("out.error")
    assert err.params["loss"] == "ce" and err.params["payload_max"] == 127 and err.params["bits"] == 8
    rng = np.random.default_rng(7)
    worst = []
    for scale_exp, bits, n in ((err.scale_exp, 8, 2), (6, 8, 3), (10, 7, 5), (13, 8, 10), (16, 7, 16)):
        prm = ce_error_params(scale_exp, bits) if (scale_exp, bits) != (err.scale_exp, 8) else err.params
        v = (rng.normal(0, 2, (300, n)) * 2**scale_exp).astype(np.int64)
        v[:5] = rng.integers(-50, 50, (5, n))  # near-equal outputs
        v[5] = 0  # all equal
        onehot = np.eye(n, dtype=np.int64)[rng.integers(0, n, 300)]
        valid = rng.random(300) < 0.9
        got = ce_error_fixed(v, onehot, valid, prm)
        for b in range(300):
            ref = ref_ce_payload(v[b].tolist(), onehot[b].tolist(), scale_exp, bits) if valid[b] else [0] * n
            assert got[b].tolist() == ref, (scale_exp, bits, n, b)
        exact = ce_error_exact(v, onehot, valid, scale_exp, 2 ** (bits - 1) - 1)
        worst.append(float(np.abs(got - exact).max()))
        soft = np.exp(v / 2.0**scale_exp - (v / 2.0**scale_exp).max(1, keepdims=True))
        np.testing.assert_allclose(
            exact[valid], ((2 ** (bits - 1) - 1) * (soft / soft.sum(1, keepdims=True) - onehot))[valid]
        )
    assert max(worst) <= 2.0, (
        worst
    )  # the stated precision: within 2 payload LSB (measured 1.33 over 2e5 random readouts)


def test_ce_error_units_in_the_emulator_chip_and_float_levels():
    """The error units' payload each step, from the readout's voltages: on the chip the integer
    softmax written out in :func:`ref_ce_payload` (not ce_error_fixed, which the emulator
    calls), at the float level ``P (softmax(v / 2^S) - onehot)`` written out here; NaN target
    rows give 0 (no learning), as with the mse units."""
    prog = ce_program()
    steps = 40
    tgt = np.eye(2)[(np.arange(steps) // 10) % 2]
    tgt[:8] = np.nan
    err = prog.population("out.error")
    for arith in ("chip", "float"):
        emu = Emulator(prog, learn_arithmetic=arith)
        for t in range(steps):
            emu.step({"out.error/target": tgt[t][None]}, learn=True)
            v = emu.pops["out"].state["v"]
            e = emu.pops["out.error"].state["spikes"]
            if t < 8:
                assert not e.any()
                continue
            onehot = tgt[t].astype(np.int64)
            if arith == "chip":
                want = ref_ce_payload([int(x) for x in v[0]], onehot.tolist(), err.scale_exp, 8)
                assert e[0].tolist() == want, f"chip step {t}"
            else:
                y = v[0] * 2.0**-err.scale_exp
                p = np.exp(y - y.max())
                # float64, a different order of operations than the code's: rounding-level (1e-12)
                np.testing.assert_allclose(e[0], 127 * (p / p.sum() - onehot), rtol=0, atol=1e-12 * 127)
    mse = compile_small()
    rec = Emulator(mse).run(20, {"out.error/target": np.full((20, 2), np.nan)}, record=["spikes"], learn=True)
    assert not rec["out.error/spikes"].any()  # NaN rows: no error, no learning


@pytest.mark.parametrize(
    ("row", "message"),
    [([1.0, 1.0], "step 3, trial 1 is \\[1.0, 1.0\\]"), ([0.5, 0.5], "step 3, trial 1"), ([np.nan, 1.0], "step 3")],
)
def test_ce_targets_must_be_one_hot_or_nan(row, message):
    prog = ce_program()
    tgt = np.tile(np.array([1.0, 0.0]), (10, 2, 1))
    tgt[3, 1] = row
    with pytest.raises(nc.NeurocompError, match="input 'out.error/target': softmax cross-entropy targets are one-hot"):
        Emulator(prog, batch=2).run(10, {"out.error/target": tgt}, learn=True)
    with pytest.raises(nc.NeurocompError, match=message):
        Emulator(prog, batch=2).run(10, {"out.error/target": tgt}, learn=True)


def _class_trials(steps: int, seed: int, n_in: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Two trials: class 0 drives the first half of the inputs (80 Hz, the rest 10 Hz), class 1
    the second half; the target (one-hot) covers the second half of the trial."""
    rng = np.random.default_rng(seed)
    half = n_in // 2
    x = np.zeros((steps, 2, n_in), np.int64)
    for c in range(2):
        rate = np.where((np.arange(n_in) < half) == (c == 0), 0.08, 0.01)
        x[:, c] = rng.random((steps, n_in)) < rate
    tgt = np.full((steps, 2, 2), np.nan)
    tgt[steps // 2 :] = np.eye(2)
    return x, tgt


def test_ce_training_on_loihi2_reduces_the_loss():
    """A two-class task (which half of the inputs fires), two trials per iteration with shared
    weights: the cross-entropy on four held-out trial pairs (learning off) falls below half of
    its initial value and the classes are told apart (measured 0.43 -> 0.05, accuracy 0.79 -> 1.0)."""
    prog = ce_program(lr=1e-2)
    steps = 100
    scale = 2.0 ** prog.population("out").scale_exp
    emu = Emulator(prog, batch=2, learn_mode="shared")

    def held_out() -> tuple[float, float]:
        losses, correct = [], []
        for s in range(100, 104):
            x, tgt = _class_trials(steps, s)
            emu.reset(keep_weights=True)
            y = emu.run(steps, {"in": x, "out.error/target": tgt}, record=["v"])["out/v"][steps // 2 :] / scale
            p = np.exp(y - y.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            losses.append(-np.log(p[:, [0, 1], [0, 1]]).mean())
            correct.append((p.argmax(-1) == [0, 1]).mean())
        return float(np.mean(losses)), float(np.mean(correct))

    before = held_out()
    for it in range(15):
        x, tgt = _class_trials(steps, it)
        emu.reset(keep_weights=True)
        emu.run(steps, {"in": x, "out.error/target": tgt}, learn=True)
    after = held_out()
    assert after[0] < 0.5 * before[0] and after[1] >= 0.95, (before, after)


# -- loihi2: adaptive feedback (B learns with W_out's update) --------------------------------------
def test_adaptive_feedback_lowering(tmp_path):
    prog = compile_small(feedback="adaptive")
    assert prog.population("out.error").params["bits"] == 7  # e + 64 must fit B's 7-bit graded x1
    fb = prog.projection("out.error->rec")
    rule, ro = fb.learning, prog.projection("rec->out").learning
    assert rule.pre_graded["x1"] == {"source": "pre", "offset": 64} and rule.post_traces == "spikes"
    assert str(rule.dw).endswith("*u0*(x1 - 64)*y1") and rule.traces["y1"] == ro.traces["x1"]
    assert rule.dw.products[0].mantissa == ro.dw.products[0].mantissa  # the same scale: B's LSB is W_out's
    assert rule.dw.products[0].exponent == ro.dw.products[0].exponent
    assert (ro.rng_seed, rule.rng_seed) == (2, 0)  # B's y streams (seeds 2, 3) are W_out's x streams
    again = Program.load(prog.save(tmp_path / "adaptive.ncp"))
    assert again.projection("out.error->rec").learning == rule
    text = (ROOT / "hardware_profiles" / "loihi2.yaml").read_text()  # an engine without graded pre spikes
    assert "    graded_pre_spikes: true" in text
    (tmp_path / "loihi2.yaml").write_text(text.replace("    graded_pre_spikes: true", "    graded_pre_spikes: false"))
    with pytest.raises(CompileError, match="needs graded pre-synaptic spikes"):
        nc.compile(small_net(feedback="adaptive"), nc.load_profile(tmp_path / "loihi2.yaml"), out=io.StringIO())


def _adaptive_updates(prog: Program, arith: str, steps: int = 300):
    """Per step: B's change [steps, hidden, out] and W_out's change transposed, in model units,
    and the recorded traces."""
    emu = Emulator(prog, learn_arithmetic=arith)
    rec = emu.run(steps, {"out.error/target": target(steps)}, record=["w", "x1", "y1"], learn=True)
    fb, ro = prog.projection("out.error->rec"), prog.projection("rec->out")
    lsb_b = 2.0**fb.weight_exp * fb.float_scale
    lsb_w = 2.0**ro.weight_exp * ro.float_scale
    dB = np.diff(rec["out.error->rec/w"][:, 0].astype(float), axis=0) * lsb_b
    dW = np.swapaxes(np.diff(rec["rec->out/w"][:, 0].astype(float), axis=0), 1, 2) * lsb_w
    return dB, dW, rec, lsb_b


def test_adaptive_feedback_update_is_the_transposed_readout_update():
    """From identical states (one run: B and W_out see the same spikes, errors and random
    numbers), B's update is W_out's transposed. Chip: the same integers (B's LSB is W_out's and
    the rule seeds align the trace roundings), except where a graded factor drops an LSB in the
    engine's tau-65535 history (independently for e in W_out and e + 64 in B; probability
    |value|/65535 per step; none in this run). Float: exact, up to the offset's own decay in that
    history, 64 * (1 - exp(-1/65535)) error units, which the test subtracts."""
    # at the quantizer's exponents (a readout weight headroom bit halves how many updates reach an LSB)
    prog = compile_small(feedback="adaptive", eprop={"weight_headroom_bits": 0})
    dB, dW, rec, lsb = _adaptive_updates(prog, "chip")
    moved = (dB != 0) | (dW != 0)
    assert moved.sum() > 100
    np.testing.assert_array_equal(rec["out.error->rec/y1"], rec["rec->out/x1"])  # the same trace, bit for bit
    assert (dB == dW)[moved].mean() >= 0.99, (dB == dW)[moved].mean()  # measured: 1.0
    assert np.abs(dB - dW).max() <= lsb * 8  # a lost error LSB moves one update by c * y1 / 8 < 8 LSB
    dBf, dWf, recf, _ = _adaptive_updates(prog, "float")
    (p,) = prog.projection("out.error->rec").learning.dw.products
    c = p.mantissa * 2.0 ** (p.exponent - 3) * lsb  # the product's scale, with its width shift, in model units
    offset_decay = -64 * (1 - np.exp(-1 / 65535))
    y1 = recf["out.error->rec/y1"][1:, 0].astype(float)  # [steps, hidden]
    np.testing.assert_allclose(dBf, dWf + c * offset_decay * y1[:, :, None], rtol=1e-9, atol=1e-12)
    assert np.abs(dWf).max() > 0


def test_adaptive_feedback_with_a_coarser_b_rounds_within_one_lsb():
    """A readout with small weights has a fine LSB that B's random initial values do not fit:
    B gets a coarser LSB (noted) and a proportionally smaller scale; its update then differs
    from W_out's by less than one of its own LSBs (the stochastic rounding to the coarser grid
    uses the same random number)."""
    net = small_net(feedback="adaptive")
    nets = nc.Network(name="coarse")
    for pop in net.populations:
        nets.add(pop)
    for pr in net.projections:
        if pr.name == "rec->out":
            pr = nc.Projection(pr.pre, pr.post, pr.weights * 0.1, plasticity=pr.plasticity)
        nets.add(pr)
    prog = nc.compile(nets, "loihi2", out=io.StringIO())
    fb, ro = prog.projection("out.error->rec"), prog.projection("rec->out")
    assert 2.0**fb.weight_exp * fb.float_scale > 2.0**ro.weight_exp * ro.float_scale  # B is coarser
    dB, dW, _, lsb = _adaptive_updates(prog, "chip")
    assert np.abs(dW).max() > 0
    assert np.abs(dB - dW).max() < lsb * (1 + 1e-9)


@pytest.mark.parametrize("hz", [2.0, 5.0, 20.0, 100.0])
def test_the_chips_rate_trace_reads_the_rate(hz):
    """The regularization compares the neuron's running rate with its target: the chip's
    trace (floor decay) must follow the exact trace to within 0.5 Hz at 1 ms steps (its floor
    loses under 1 LSB per step, under 2^shift LSB over a time constant: 0.24 Hz on loihi2), and the
    exact trace averages to the rate. With 16 fraction bits the floor held every rate at
    >= 15.6 Hz, which drove all rates down under a 10 Hz target."""
    from neurocomp.learning.quantities import RATE_TAU_MS, rate_shift, running_rate, running_rate_fixed
    from neurocomp.profiles import load_profile
    from neurocomp.rules.eprop import rate_bits

    loihi2 = load_profile("loihi2")
    RATE_BITS = rate_bits(loihi2)
    shift = rate_shift(RATE_TAU_MS, 1.0)
    assert shift == 10  # 1 s at 1 ms steps: 2**10 = 1024 steps, the nearest power of two to 1000

    period = int(round(1000 / hz))
    steps = 20 * period + 12_000  # > 10 time constants of 1024 steps, then whole periods
    fixed, exact = np.zeros(1), np.zeros(1)
    tail_fixed, tail_exact = [], []
    for t in range(steps):
        z = np.array([float(t % period == 0)])
        fixed = running_rate_fixed(fixed, z, shift, RATE_BITS)
        exact = running_rate(exact * 2.0**-RATE_BITS, z, 1 - 2.0**-shift) * 2.0**RATE_BITS
        if t >= steps - 10 * period:
            tail_fixed.append(fixed[0])
            tail_exact.append(exact[0])
    hz_per_lsb = 1000 / 2**RATE_BITS
    assert np.max(np.abs(np.subtract(tail_fixed, tail_exact))) * hz_per_lsb < 0.5
    # the exact trace's mean over whole periods is the rate (2 %: its ripple is not symmetric)
    assert np.mean(tail_exact) * hz_per_lsb == pytest.approx(hz, rel=0.02)
    assert max(tail_fixed) < 2 ** (loihi2.formats.voltage.bits - 1)  # fits the signed neuron register
