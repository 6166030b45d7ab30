"""The emulator's ReckOn against ReckOn's own RTL (github ChFrenkel/ReckOn, under Icarus
Verilog, :mod:`neurocomp.backends.reckon_rtl`): random small Programs, inference and learning,
regression and classification, several samples in a row on one chip, odd neuron counts,
every regularization mode. Equality is exact: every membrane, spike, readout, trace and weight
of every step.

The RTL is found beside the project (``../shared/vendor/reckon-rtl``) or at
``$NEUROCOMP_RECKON_RTL``; without it or without ``iverilog`` these tests skip, saying how to
get them. Icarus is slow (a few hundred clock cycles per step): the default set is small
Programs and short samples; ``-m slow`` adds larger ones.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.backends import reckon_rtl
from neurocomp.emulator import Emulator

BESIDE = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "reckon-rtl"  # ../shared beside the checkout
RTL = os.environ.get(reckon_rtl.RTL_ENV) or str(BESIDE)
HAVE_RTL = (Path(RTL) / "src" / "reckon.v").is_file()
NEEDS_ICARUS = pytest.mark.skipif(
    reckon_rtl.icarus() is None, reason=f"Icarus Verilog not found: {reckon_rtl.INSTALL} (CI's .ci/run does)"
)
NEEDS_COPY = pytest.mark.skipif(
    not HAVE_RTL,
    reason=f"ReckOn's RTL not found at {RTL}: set {reckon_rtl.RTL_ENV} to a copy of github.com/ChFrenkel/ReckOn",
)


def needs_rtl(fn):
    return NEEDS_ICARUS(NEEDS_COPY(fn))


RECORD = ("spikes", "v", "w", "x1")


def random_program(seed: int, sizes: tuple[int, int, int] | None = None) -> tuple[nc.Program, dict]:
    """A random ReckOn Program with random chip registers; returns it and how it was drawn."""
    rng = np.random.default_rng(seed)
    n_in, n_rec, n_out = sizes or (int(rng.integers(2, 10)), int(rng.integers(3, 14)), int(rng.integers(1, 4)))
    lr = float(10 ** rng.uniform(-4, -2))
    rule = nc.RuleSpec("eprop", {"lr": lr, "feedback": "symmetric", "dampening": 0.3})
    tau = float(rng.choice([10.0, 20.0, 40.0, 1e9]))  # 1e9: a leak of exactly 1 (its LFSR does not draw)
    net = nc.Network(name=f"reckon-rtl-{seed}")
    net.add(
        nc.Population("in", n_in, nc.SpikeInput()),
        nc.Population("rec", n_rec, nc.LIF(tau_mem_ms=tau, v_th=float(rng.uniform(0.3, 1.0)),
                                          reset=str(rng.choice(["zero", "subtract"])))),  # fmt: skip
        nc.Population("out", n_out, nc.LI(tau_mem_ms=float(rng.choice([20.0, 1e9])))),
    )

    def w(std, post, pre):
        return rng.normal(0, std, (post, pre))

    net.add(
        nc.Projection("in", "rec", w(rng.uniform(0.2, 1.0), n_rec, n_in), plasticity=rule),
        nc.Projection("rec", "rec", w(rng.uniform(0.05, 0.4), n_rec, n_rec), plasticity=rule),
        nc.Projection("rec", "out", w(rng.uniform(0.1, 0.5), n_out, n_rec), plasticity=rule),
    )
    prog = nc.compile(net, "reckon", out=io.StringIO())
    mode = int(rng.choice([0, 1, 2, 3, 4, 5]))  # off, multiplicative, additive, both; 4, 5: with bit 2
    regression = bool(rng.integers(0, 2))
    shared = {
        "fp_loc_tinp": int(rng.integers(0, 8)), "fp_loc_trec": int(rng.integers(0, 8)),
        "fp_loc_tout": int(rng.integers(0, 8)), "learn_sig_scale": int(rng.integers(0, 16)),
        "thr_h": tuple(int(v) for v in np.sort(rng.integers(-800, 3000, 4))),
        "h_values": tuple(int(v) for v in rng.integers(-16, 16, 5)), "regul_f0": int(rng.integers(0, 40)),
        "regression": regression, "out_act": bool(rng.integers(0, 2)) or not regression,
        "regul_mode": mode, "regul_k_mul": int(rng.integers(0, 6)),
    }  # fmt: skip
    projs = []
    for pr in prog.projections:
        regs = dataclasses.replace(
            pr.learning.registers, **shared, lr_p=int(rng.integers(4, 20)), lr_r=int(rng.integers(0, 4)),
            lr_p_out=int(rng.integers(6, 22)), lr_r_out=int(rng.integers(0, 4)), regularize=mode != 0 and
            bool(rng.integers(0, 2)) or pr.learning.role == "input" and mode != 0,
            regul_k_p=int(rng.integers(0, 14)), regul_k_r=int(rng.integers(0, 4)),
        )  # fmt: skip
        w = np.clip(np.round(rng.normal(0, 40, pr.weights.shape)), -128, 127).astype(pr.weights.dtype)
        projs.append(dataclasses.replace(pr, learning=dataclasses.replace(pr.learning, registers=regs), weights=w))
    prog = dataclasses.replace(prog, projections=tuple(projs))
    return prog, {"sizes": (n_in, n_rec, n_out), "regression": regression, "mode": mode}


def random_samples(seed: int, prog: nc.Program, n_samples: int, steps: int) -> list[dict]:
    """Input rasters and targets of ``n_samples`` samples (some steps without a target)."""
    rng = np.random.default_rng(seed + 1000)
    n_in, n_out = prog.population("in").size, prog.population("out").size
    regression = prog.projection("rec->out").learning.registers.regression
    out = []
    for _ in range(n_samples):
        x = (rng.random((steps, n_in)) < rng.uniform(0.1, 0.6)).astype(np.uint8)
        if regression:
            t = rng.uniform(-40, 40, (steps, n_out))
        else:
            t = np.eye(n_out)[rng.integers(0, n_out, steps)]
        t[rng.random(steps) < 0.2] = np.nan
        out.append({"in": x, "out/target": t})
    return out


def emulate(prog: nc.Program, samples: list[dict], learn: list[bool], seed: int = 0) -> list[dict]:
    """The samples one after the other on one emulator (a new sample: ``reset(keep_weights=True)``)."""
    emu = Emulator(prog, seed=seed)
    out = []
    for i, s in enumerate(samples):
        if i:
            emu.reset(keep_weights=True)
        out.append(emu.run(s["in"].shape[0], s, record=RECORD, learn=learn[i]))
    return out


def assert_equal_runs(emulated: list[dict], rtl: list[dict], where: str) -> None:
    for i, (e, r) in enumerate(zip(emulated, rtl, strict=True)):
        keys = sorted(k for k in r if k in e)
        assert keys, where
        for k in keys:
            a, b = np.asarray(e[k], np.int64), r[k]
            bad = np.argwhere(a != b)
            assert a.shape == b.shape and bad.size == 0, (
                f"{where}, sample {i}, {k}: {len(bad)} values differ, first at {bad[0].tolist()}: "
                f"emulator {a[tuple(bad[0])]}, RTL {b[tuple(bad[0])]}"
                if a.shape == b.shape
                else f"{where}, {k}: shapes {a.shape} and {b.shape}"
            )


def differential(seeds, steps: int, n_samples: int = 2, sizes=None) -> dict:
    """Every seed's Program on the emulator and on the RTL (all in one simulation): ``n_samples``
    learning samples, then one without learning (the learned weights, as tbench.sv tests after
    training); asserts exact equality and returns what the runs covered."""
    jobs, emulated, labels = [], [], []
    covered = {"learned": 0, "regression": 0, "classification": 0, "odd": 0, "modes": set(), "spikes": 0}
    for seed in seeds:
        prog, info = random_program(seed, sizes)
        samples = random_samples(seed, prog, n_samples + 1, steps)
        learn = [True] * n_samples + [False]
        jobs.append((reckon_rtl.ReckonRTL(prog, RTL), samples, learn, RECORD, 1))
        emulated.append(emulate(prog, samples, learn))
        labels.append(f"seed {seed} {info}")
        last = emulated[-1][n_samples - 1]
        covered["learned"] += any(
            not np.array_equal(last[f"{pr.name}/w"][-1, 0], pr.weights) for pr in prog.projections
        )
        covered["regression" if info["regression"] else "classification"] += 1
        covered["odd"] += any(n % 2 for n in info["sizes"])
        covered["modes"].add(info["mode"])
        covered["spikes"] += int(last["rec/spikes"].sum() > 0)
    for label, e, r in zip(labels, emulated, reckon_rtl.run_many(jobs), strict=True):
        assert_equal_runs(e, r, label)
    return covered


@needs_rtl
def test_random_programs_equal_the_rtl():
    """30 random small Programs, each with two learning samples and one without learning in a
    row on one chip (5 steps each): the emulator equals the RTL in every recorded value."""
    covered = differential(range(30), steps=5)
    assert covered["learned"] >= 20, covered  # the comparison covered real learning
    assert covered["regression"] >= 8 and covered["classification"] >= 8, covered
    assert covered["odd"] >= 8 and covered["modes"] == {0, 1, 2, 3, 4, 5} and covered["spikes"] >= 20, covered


@needs_rtl
@pytest.mark.slow
def test_larger_programs_and_longer_samples_equal_the_rtl():
    """Programs across two and three SRAM blocks of 16 neurons, three samples of 30 steps."""
    differential(range(100, 108), steps=30, n_samples=3, sizes=None)
    differential(range(200, 204), steps=25, n_samples=2, sizes=(21, 37, 5))


@needs_rtl
def test_batch_trials_are_separate_chips():
    """A batch of two trials on the RTL (two chips) equals the emulator's batch."""
    prog, _ = random_program(7)
    samples = random_samples(7, prog, 1, 8)
    x = np.stack([samples[0]["in"], 1 - samples[0]["in"]], axis=1)
    t = np.stack([samples[0]["out/target"]] * 2, axis=1)
    emu = Emulator(prog, batch=2)
    e = emu.run(8, {"in": x, "out/target": t}, record=RECORD, learn=True)
    r = reckon_rtl.ReckonRTL(prog, RTL).run([{"in": x, "out/target": t}], learn=True, record=RECORD, batch=2)[0]
    assert_equal_runs([e], [r], "batch of 2")
    assert not np.array_equal(e["rec/v"][:, 0], e["rec/v"][:, 1])


@needs_rtl
def test_cli_runs_a_program_on_the_rtl_as_the_emulator_does(tmp_path):
    """``neurocomp run --backend reckon-rtl``: the recording equals the emulator's, learning included."""
    from neurocomp.cli import main

    prog, _ = random_program(3, (4, 5, 1))
    path = prog.save(tmp_path / "p.ncp")
    s = random_samples(3, prog, 1, 6)[0]
    np.savez(tmp_path / "in.npz", **{"in/spikes": s["in"], "out/target": s["out/target"]})
    recs = {}
    for backend in ("emulator", "reckon-rtl"):
        out = tmp_path / f"{backend}.npz"
        args = ["run", str(path), "--steps", "6", "--input", str(tmp_path / "in.npz"), "--record", "spikes,v",
                "--learn", "--out", str(out), "--backend", backend, "--rtl", RTL]  # fmt: skip
        assert main(args if backend != "emulator" else args[:-2]) == 0
        with np.load(out) as z:
            recs[backend] = {k: z[k] for k in z.files}
    assert sorted(recs["reckon-rtl"]) == ["out/v", "rec/spikes", "rec/v"]
    for k, v in recs["reckon-rtl"].items():
        np.testing.assert_array_equal(recs["emulator"][k].astype(np.int64), v, err_msg=k)


def test_cli_without_the_rtl_says_where_to_get_it(tmp_path, monkeypatch, capsys):
    from neurocomp.cli import main

    monkeypatch.delenv(reckon_rtl.RTL_ENV, raising=False)
    prog, _ = random_program(3, (4, 5, 1))
    path = prog.save(tmp_path / "p.ncp")
    code = main(["run", str(path), "--steps", "2", "--out", str(tmp_path / "r.npz"), "--backend", "reckon-rtl"])
    assert code == 2
    assert reckon_rtl.RTL_ENV in capsys.readouterr().err
