"""The CLI's compile and run flags end to end (``neurocomp.cli.main`` in-process): each flag's
effect is checked against a value derived in the test, or, for ``run --backend lava``,
against Lava."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.compiler import Program
from neurocomp.profiles import PROFILE_PATH_ENV

# 4 spike inputs onto 3 LIF; three weights are far below the weight LSB (they round to 0)
TINY = """neurocomp: 1
name: tiny
populations:
  - {name: in, size: 4, neuron: {model: SpikeInput}}
  - {name: p, size: 3, neuron: {model: LIF, tau_mem_ms: 20.0, tau_syn_ms: 5.0, v_th: 1.0, reset: zero}}
projections:
  - pre: in
    post: p
    weights: [[0.4131, -0.2702, 0.0003, 0.8777], [-0.0009, 0.6543, 0.3331, -0.1119], [0.9001, 0.0002, -0.5555, 0.2468]]
"""
W = np.array([[0.4131, -0.2702, 0.0003, 0.8777], [-0.0009, 0.6543, 0.3331, -0.1119], [0.9001, 0.0002, -0.5555, 0.2468]])


@pytest.fixture(autouse=True)
def _no_user_profiles(monkeypatch):
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _compile(capsys, tmp_path, model, *flags, name="x.ncp"):
    path = tmp_path / name
    code, out, err = run(capsys, "compile", model, "--profile", "loihi2", "-o", path, *flags)
    return code, out, err, path


@pytest.mark.parametrize("rounding", ["nearest", "floor", "stochastic"])
def test_compile_rounding_puts_each_weight_on_the_grid_as_named(rounding, tiny, tmp_path, capsys):
    """A mixed-sign loihi2 weight has even mantissas (the sign takes the LSB), so in LSB
    units ``x = w / (2^exp * scale)`` the mantissa is ``2 * round(x / 2)`` (nearest),
    ``2 * floor(x / 2)`` (floor), or one of those two grid points (stochastic, the same with
    the same --seed)."""
    code, _, err, path = _compile(capsys, tmp_path, tiny, "--rounding", rounding, "-q")
    assert code == 0, err
    pr = Program.load(path).projections[0]
    x = W / (2.0**pr.weight_exp * pr.float_scale)
    m = pr.dense_mantissas()
    lo = 2 * np.floor(x / 2)
    if rounding == "nearest":
        np.testing.assert_array_equal(m, 2 * np.round(x / 2))
    elif rounding == "floor":
        np.testing.assert_array_equal(m, lo)
    else:
        assert ((m == lo) | (m == lo + 2)).all()
        assert (m != 2 * np.round(x / 2)).any()  # not nearest in disguise (seed 0: 5 of 12 differ)
        _, _, _, again = _compile(capsys, tmp_path, tiny, "--rounding", rounding, "-q", name="y.ncp")
        np.testing.assert_array_equal(Program.load(again).projections[0].dense_mantissas(), m)


def test_compile_max_zeroed_and_strict(tiny, tmp_path, capsys):
    """Three of the twelve weights are below one mantissa step of 2 LSB (``|x| < 1``: they
    round to 0): 25 %. Above --max-zeroed that warns, and with --strict fails with exit 2
    naming the projection and writes nothing; at a limit above 25 % it compiles."""
    code, out, err, path = _compile(capsys, tmp_path, tiny)
    assert code == 0, err
    pr = Program.load(path).projections[0]
    pr_lsb = 2.0**pr.weight_exp * pr.float_scale
    zeroed = int((np.abs(W / pr_lsb) < 1).sum())
    assert zeroed == 3 and "3 of 12 nonzero weights (25.0%) became 0 (limit 5.0%)" in out
    code, out, err, path = _compile(capsys, tmp_path, tiny, "--strict", "--max-zeroed", "0.2", name="s.ncp")
    assert code == 2 and "'in->p'" in err + out and not path.exists()
    code, out, err, path = _compile(capsys, tmp_path, tiny, "--strict", "--max-zeroed", "0.26", name="t.ncp")
    assert code == 0 and path.exists(), err
    code, out, err, _ = _compile(capsys, tmp_path, tiny, "--max-zeroed", "1.5", name="u.ncp")
    assert code == 2 and "--max-zeroed: 1.5 is out of range" in err  # a fraction above 1: a usage error, named


def test_compile_firing_rate_scales_traffic_and_energy(tiny, tmp_path, capsys):
    """The traffic estimate is the spike sources' count times the rate times dt (4 inputs at
    r Hz and 1 ms: 0.004 r spikes per step); the energy is affine in the rate (a static part
    plus a cost per spike), so equal steps of the rate give equal steps of energy."""
    energy = {}
    for hz in (10, 20, 30):
        code, out, err, _ = _compile(capsys, tmp_path, tiny, "--firing-rate", hz, name=f"r{hz}.ncp")
        assert code == 0, err
        assert f"traffic at {hz:.1f} Hz: {4 * hz / 1000:.2f} spikes/step" in out
        energy[hz] = float(out.split("energy ~ ")[1].split()[0])
    assert energy[20] > energy[10]
    assert energy[30] - energy[20] == pytest.approx(energy[20] - energy[10], abs=2e-4)  # printed to 1e-4 nJ


def test_compile_dt_sets_the_decays(tiny, tmp_path, capsys):
    """loihi2's 12-bit decays: ``(4096 - code) / 4096 ~ exp(-dt / tau)``, the current's register
    one higher than its code (the chip adds 1), so ``code_v = round(4096 (1 - exp(-dt / tau_m)))``
    and ``code_u = round(4096 (1 - exp(-dt / tau_syn)) - 1)``."""
    for dt in (1.0, 0.5):
        code, _, err, path = _compile(capsys, tmp_path, tiny, "--dt", dt, "-q", name=f"dt{dt}.ncp")
        assert code == 0, err
        prog = Program.load(path)
        prm = prog.population("p").params
        assert prog.dt_ms == dt
        assert prm["voltage_decay"] == math.floor(4096 * (1 - math.exp(-dt / 20.0)) + 0.5)
        assert prm["current_decay"] == math.floor(4096 * (1 - math.exp(-dt / 5.0)) - 1 + 0.5)
    code, out, err, _ = _compile(capsys, tmp_path, tiny, "--dt", "-1", name="bad.ncp")
    assert code == 2 and "--dt: -1 is out of range" in err


def _program(capsys, tmp_path, tiny) -> object:
    code, _, err, path = _compile(capsys, tmp_path, tiny, "-q", name="run.ncp")
    assert code == 0, err
    return path


@pytest.mark.lava
def test_run_with_input_on_the_emulator_equals_lava(tiny, tmp_path, capsys):
    """Plain ``run`` with ``--input`` on the emulator and on Lava, the second simulator: the same
    spikes, v and u, bit for bit; and the input drives the network (spikes occur)."""
    pytest.importorskip("lava")
    prog = _program(capsys, tmp_path, tiny)
    rng = np.random.default_rng(0)
    spikes = rng.random((40, 4)) < 0.3
    np.savez(tmp_path / "in.npz", **{"in/spikes": spikes})
    recs = {}
    for backend in ("emulator", "lava"):
        out = tmp_path / f"{backend}.npz"
        code, _, err = run(capsys, "run", prog, "--steps", 40, "--input", tmp_path / "in.npz", "--backend", backend,
                           "--record", "spikes,v,u", "--out", out)  # fmt: skip
        assert code == 0, err
        recs[backend] = dict(np.load(out))
    for k in ("p/spikes", "p/v", "p/u"):
        np.testing.assert_array_equal(recs["emulator"][k], recs["lava"][k], err_msg=k)
    assert recs["emulator"]["p/spikes"].sum() > 0


def test_run_strict_stops_at_the_overflow_that_plain_run_saturates(tiny, tmp_path, capsys):
    """Every input spiking every step drives neuron 0's current to ``sum_i m_i 2^(exp + 6) /
    (1 - 0.819)``, past the 24-bit current register: --strict stops with exit 2 naming it;
    without --strict the run completes (the chip wraps or saturates)."""
    prog = _program(capsys, tmp_path, tiny)
    pr = Program.load(prog).projections[0]
    drive = pr.dense_mantissas()[0].sum() * 2.0 ** (pr.weight_exp + 6)
    assert drive / (741 / 4096) > 2**23  # the derivation: the steady current exceeds the register
    np.savez(tmp_path / "all.npz", **{"in/spikes": np.ones((60, 4), bool)})
    args = ("run", prog, "--steps", 60, "--input", tmp_path / "all.npz", "--record", "u")
    code, _, err = run(capsys, *args, "--out", tmp_path / "a.npz")
    assert code == 0, err
    code, out, err = run(capsys, *args, "--out", tmp_path / "b.npz", "--strict")
    assert code == 2 and "overflow" in err + out and "'p'" in err + out
    assert not (tmp_path / "b.npz").exists()
