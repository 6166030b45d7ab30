"""The hidden-layer e-prop lowering on loihi2 against e-prop's equations written out here, in
model units, from the paper (Bellec et al. 2020, eq. (24)-(26); ``eprop.md`` section 1) and
the approximations the lowering states in its module docstring — not from the compiled rule.

With the learning engine in float64 (``learn_arithmetic="float"``) nothing is rounded but the
rule's constant scale ``c_w = m * 2**e``, so every step's update must be e-prop's to float
rounding, up to one constant factor per projection (the rounding of ``lr`` into ``c_w``):

    psi_j(s)    = gamma / v_th * y3_j(s) / 127                 the pseudo-derivative the neuron sends
    eps_ji(s)   = c_ji(s-1) + z_i(s)                           the eligibility vector (z_i: pre spikes)
    c_ji(s)     = (1 - z_j(s)) (alpha' c_ji(s-1) + z_i(s))   its carry: restarts at j's reset to zero
                  alpha' = 1 - round((1 - alpha) 2^7) 2^-7      (dv_j(s+1)/dv_j(s) = alpha (1 - z_j(s))),
                                                                1 - alpha at the engine's finest scale,
                                                                the newest spike not yet decayed
    ebar_ji(s)  = (1 - 2^-k) ebar_ji(s-1) + 2^-k psi_j(s) eps_ji(s),   1 - 2^-k ~ kappa = exp(-dt / tau_out)
    L_j(s)      = sum_k B_jk (y_k(s-1) - y*_k(s-1))            one step late (the feedback synapse)
    dW_ji(s)    = -lr * L_j(s) * ebar_ji(s-1)                  the tag before its update

(``y3`` and ``y2`` reach the rule through the engine's y history with Lava's tau 65535: one
factor ``exp(-1/65535)`` each.) The tag ``t`` must be ``ebar`` in a fixed unit, and ``dW``
must be ``r`` times the line above with one ``r`` per projection, ``|r - 1| <= 1/8`` (the
lowering picks the tag scale so that ``c_w`` keeps a mantissa of at least 4).
"""

from __future__ import annotations

import io
import math

import numpy as np

import neurocomp as nc
from neurocomp.emulator import Emulator
from tests.test_eprop import EPROP, small_net, target

STEPS = 120
YD = math.exp(-1 / 65535)  # the engine's y-history decay of a graded value (Lava's tau 65535)


def run_float(net: nc.Network):
    prog = nc.compile(net, "loihi2", out=io.StringIO())
    emu = Emulator(prog, learn_arithmetic="float")
    rec = emu.run(
        STEPS,
        inputs={"out.error/target": target(STEPS)},
        record=["w", "t", "y3", "v", "spikes"],
        learn=True,
    )
    return prog, emu, rec


def proportional(got: np.ndarray, expected: np.ndarray) -> float:
    """The one factor ``r`` with ``got = r * expected``, asserted to 1e-9 of the largest value:
    float64 algebra in two orders, and ``got`` a difference of two weights some 2^8 units large
    (2^8 * 2^-52 ~ 6e-14 absolute), agrees far closer than that."""
    big = np.abs(expected) > 1e-3 * np.abs(expected).max()
    r = float(np.median(got[big] / expected[big]))
    np.testing.assert_allclose(got, r * expected, rtol=1e-9, atol=1e-9 * np.abs(got).max())
    return r


def check_hidden(prog, emu, rec, name: str, lr: float, gamma: float, v_th: float, tau_mem_ms: float = 20.0) -> dict:
    """Check projection ``name`` (into the hidden population ``rec``) against the equations of
    the module docstring; returns the measured tag unit and rate factor."""
    tau_out_ms = 20.0  # the readout's time constant (small_net)
    kappa = math.exp(-prog.dt_ms / tau_out_ms)
    k = round(-math.log2(1 - kappa))  # "kappa becomes 1 - 2^-k" (the tag decays by a power of two)
    out = prog.population("out")
    y = rec["out/v"][:, 0, :].astype(np.float64) / 2.0**out.scale_exp  # readout in model units
    err = y - target(STEPS)
    fb = prog.projection("out.error->rec")
    B = fb.weights.astype(np.float64) * fb.float_scale  # [hidden, out] in model units
    psi = gamma / v_th * rec[f"{name}/y3"][:, 0].astype(np.float64) * YD / 127  # [steps, post]
    z_pre = rec[f"{name.split('->')[0]}/spikes"][:, 0].astype(np.float64)  # [steps, pre]
    z_post = rec["rec/spikes"][:, 0].astype(np.float64)  # [steps, post]
    alpha = 1 - round((1 - math.exp(-prog.dt_ms / tau_mem_ms)) * 2**7) * 2.0**-7
    W = rec[f"{name}/w"][:, 0].astype(np.float64) * emu.plastic[name].weight_unit  # [steps, post, pre]
    tag = rec[f"{name}/t"][:, 0].astype(np.float64)
    ebar = np.zeros_like(tag)
    carry = np.zeros(tag.shape[1:])
    for s in range(1, STEPS):
        eps = carry + z_pre[s][None, :]
        carry = (1 - z_post[s])[:, None] * (alpha * carry + z_pre[s][None, :])
        ebar[s] = (1 - 2.0**-k) * ebar[s - 1] + 2.0**-k * psi[s][:, None] * eps
    L = np.zeros_like(psi)
    L[1:] = err[:-1] @ B.T * YD  # L_j(s) from the error of step s - 1
    unit = proportional(tag, ebar)  # the tag holds ebar in one fixed unit
    dW = W[1:] - W[:-1]
    pred = -lr * L[1:, :, None] * ebar[:-1]
    assert (np.abs(pred) > 1e-3 * np.abs(pred).max()).sum() > 1000  # many synapse-steps learn
    r = proportional(dW, pred)
    return {"unit": unit, "r": r}


def test_hidden_lowering_is_eprop_written_out():
    net = small_net(seed=0)
    prog, emu, rec = run_float(net)
    for name in ("in->rec", "rec->rec"):
        got = check_hidden(prog, emu, rec, name, EPROP["lr"], EPROP["dampening"], 0.5)
        assert got["unit"] > 0
        assert abs(got["r"] - 1) <= 1 / 8, got  # lr rounded into c_w's mantissa of >= 4


def test_hidden_lowering_at_another_learning_rate_and_seed():
    """The same equations at lr 1e-2 (another c_w and tag scale) on another draw."""
    net = small_net(seed=3, eprop={"lr": 1e-2})
    prog, emu, rec = run_float(net)
    for name in ("in->rec", "rec->rec"):
        got = check_hidden(prog, emu, rec, name, 1e-2, EPROP["dampening"], 0.5)
        assert abs(got["r"] - 1) <= 1 / 8, got


# -- t_epoch: learning once per epoch (long ALIF adaptation on loihi2) -----------------------------
def test_long_adaptation_lowers_with_the_t_epoch_the_refusal_names():
    """tau_a 2 s: 1 - rho = 2^-11 per step is below the engine's 2^-7, so t_epoch 1 is refused
    naming t_epoch 16, where the adaptation eligibility's decay per epoch is 1 - rho^16."""
    from neurocomp.compiler.errors import CompileError
    from tests.test_eprop import alif_net

    net = alif_net(2000.0)
    try:
        nc.compile(net, "loihi2", out=io.StringIO())
        raise AssertionError("tau_a 2 s lowered at t_epoch 1")
    except CompileError as exc:
        assert "with t_epoch 16" in str(exc), str(exc)
    prog = nc.compile(net.with_rule_params(t_epoch=16), "loihi2", out=io.StringIO())
    # the neuron's adaptation decays like Lava's dv: a <- a * (4096 - adapt_decay) / 4096 (12 bits)
    rho = 1 - prog.population("rec").params["adapt_decay"] / 2**12
    for name in ("in->rec", "rec->rec", "rec->out"):
        assert prog.projection(name).learning.t_epoch == 16
    (decay,) = [p for p in prog.projection("in->rec").learning.dd.products if [f.var for f in p.factors] == ["d"]]
    # u0*d is 9 + 4 bits: no width shift; its scale is 1 - rho^16 rounded to m * 2^e
    np.testing.assert_allclose(-decay.mantissa * 2.0**decay.exponent, 1 - rho**16, rtol=0.01)


def test_t_epoch_learns_only_at_the_end_of_each_epoch():
    prog = nc.compile(small_net(seed=0, eprop={"t_epoch": 4}), "loihi2", out=io.StringIO())
    rec = Emulator(prog).run(80, inputs={"out.error/target": target(80)}, record=["w"], learn=True)
    w = rec["in->rec/w"][:, 0]
    changed = np.flatnonzero(np.abs(np.diff(w, axis=0)).sum(axis=(1, 2)) > 0) + 1
    assert len(changed) >= 5 and len(set(changed % 4)) == 1, changed  # one phase: once every 4 steps


def test_t_epoch_must_be_a_power_of_two_shared_by_all_projections():
    from neurocomp.compiler.errors import CompileError

    for bad in (3, 0):
        try:
            nc.compile(small_net(eprop={"t_epoch": bad}), "loihi2", out=io.StringIO())
            raise AssertionError(f"t_epoch {bad} lowered")
        except CompileError as exc:
            assert "t_epoch must be a power of two" in str(exc), str(exc)
    net = small_net()
    mixed = nc.Network(name="mixed")
    for p in net.populations:
        mixed.add(p)
    for i, pr in enumerate(net.projections):
        if i == 0:
            pr = nc.Projection(pr.pre, pr.post, pr.weights, plasticity=nc.RuleSpec("eprop", {**EPROP, "t_epoch": 2}))
        mixed.add(pr)
    try:
        nc.compile(mixed, "loihi2", out=io.StringIO())
        raise AssertionError("mixed t_epoch lowered")
    except CompileError as exc:
        assert "eprop t_epoch" in str(exc) and "share it" in str(exc), str(exc)
