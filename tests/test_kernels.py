"""The compiled kernels' arithmetic against the numpy definitions of :mod:`neurocomp.arith.fixed`
(decays, roundings, overflow, shifts), element by element, and the compile announcement."""

from __future__ import annotations

import io
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurocomp as nc
from neurocomp import kernels
from neurocomp.arith.fixed import decay, overflow, shift
from neurocomp.arith.formats import DecayFormat, StateFormat
from neurocomp.emulator import Emulator
from neurocomp.kernels import delivery as kd
from neurocomp.kernels import neurons as kn

STATE = st.integers(-(2**31), 2**31 - 1)

RECURRENT_EI = Path(__file__).resolve().parents[1] / "examples" / "models" / "recurrent_ei.yaml"


@numba.njit
def leak(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits):
    """:func:`neurocomp.kernels.neurons.leak` (an overload: callable from compiled code only)."""
    return kn.leak(x, f, rounding, bitshift, min_step, r, frac_bits, rand_bits)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=STATE, code=st.integers(0, 4095), rounding=st.sampled_from(["toward_zero", "floor", "nearest"]))
def test_multiplicative_leak_equals_the_numpy_decay(x, code, rounding):
    fmt = DecayFormat(representation="multiplicative", bits=12, rounding=rounding, current_offset=1)
    factor = (4096 - code - 1) / 4096
    got = leak(float(x), factor, kn.ROUNDINGS[rounding], False, 0, 0.0, 12, 12)
    assert got == decay(np.array([float(x)]), fmt, code, "current")[0]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=st.integers(-(2**15), 2**15 - 1), code=st.integers(0, 15))
def test_bitshift_leak_with_minimum_step_equals_the_numpy_decay(x, code):
    fmt = DecayFormat(representation="bitshift", bits=4, rounding="floor", min_step=1)
    got = leak(float(x), 2.0**-code, kn.R_FLOOR, True, 1, 0.0, 0, 0)
    assert got == decay(np.array([float(x)]), fmt, code)[0]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=st.integers(-(2**34), 2**34), kind=st.sampled_from(["wrap", "wrap_once", "saturate"]), sym=st.booleans())
def test_overflow_equals_the_numpy_overflow(x, kind, sym):
    fmt = StateFormat(bits=24, overflow=kind, symmetric=sym)
    lo, hi = fmt.int_range()
    got = kn.bring_in_range(float(x), kn.OVERFLOWS[kind], 24, float(lo), float(hi), 0)
    assert got == overflow(np.array([float(x)]), fmt)[0]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=st.integers(-(2**40), 2**40))
def test_register_wraps_modulo_2_32_into_int32(x):
    got = kn.bring_in_range(float(x), kn.O_SATURATE, 32, -(2.0**40), 2.0**40, 32)
    assert got == float(np.array([x], dtype=np.int64).astype(np.int32)[0])  # numpy's int32 cast wraps


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=st.integers(-(2**40), 2**40), e=st.integers(-8, 7), rounding=st.sampled_from(["floor", "toward_zero"]))
def test_exponent_shift_rounds_as_the_numpy_shift(x, e, rounding):
    got = kd.shift_round(float(x), float(e), kd.SHIFT_ROUNDINGS[rounding])
    assert got == shift(np.array([float(x)]), e, rounding)[0]


def test_announce_compile_prints_once_and_only_on_a_cold_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROCOMP_QUIET_JIT", raising=False)
    monkeypatch.setattr(kernels, "cache_dir", lambda: str(tmp_path))  # an empty cache
    monkeypatch.setattr(kernels, "_announced", False)
    out = io.StringIO()
    kernels.announce_compile(out)
    kernels.announce_compile(out)
    assert out.getvalue().count("compiling kernels") == 1
    (tmp_path / "neurons.update_neurons-1.py310.nbi").write_bytes(b"")  # a warm cache
    monkeypatch.setattr(kernels, "_announced", False)
    warm = io.StringIO()
    kernels.announce_compile(warm)
    assert warm.getvalue() == ""


@pytest.mark.parametrize("profile", ["loihi2", "spinnaker2"])
def test_a_fused_run_equals_the_step_by_step_run(profile):
    """The whole run in one kernel call (static network) and one step at a time give the same bits."""
    net = nc.load_network(RECURRENT_EI)
    prog = nc.compile(net, profile, out=io.StringIO())
    whole = Emulator(prog, batch=2).run(60, record=["spikes", "v", "u"])
    emu = Emulator(prog, batch=2)
    for i in range(60):
        emu.step()
        for key in whole:
            pop, var = key.split("/")
            np.testing.assert_array_equal(whole[key][i], emu.pops[pop].state[var], err_msg=f"{key} step {i + 1}")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=st.integers(-(2**15), 2**15 - 1), k=st.integers(0, 2**15 - 1), r=st.integers(0, 2**15 - 1))
def test_lfsr_leak_rounds_as_reckons_decay_trace(x, k, r):
    from neurocomp.rules.reckon import decay_trace

    rand = r >> 3  # a 12-bit LFSR number against the top 12 of 15 fraction bits
    got = leak(float(x), k * 2.0**-15, kn.R_LFSR, False, 0, float(rand), 15, 12)
    assert got == float(decay_trace(np.array([x]), k, 15, np.array([rand]), 12)[0])


def test_a_parallel_batch_leaves_the_multiprocessing_start_method_alone():
    """numba's threading layer fixes the start method when it starts; Lava sets it on import."""
    import multiprocessing

    before = multiprocessing.get_start_method(allow_none=True)
    prog = nc.compile(nc.load_network(RECURRENT_EI), "loihi2", out=io.StringIO())
    Emulator(prog, batch=3).run(5)
    assert multiprocessing.get_start_method(allow_none=True) == before


def test_recordings_hold_every_value_a_state_can_take():
    """Without Lava's 32-bit register, the one-time wrap leaves u beyond 2**31: recorded in
    int64, equal to the state (never a silently wrapped -2147483648)."""
    import dataclasses

    from neurocomp.compiler.ir import QPopulation, QProjection
    from neurocomp.compiler.program import Program

    loihi2 = nc.load_profile("loihi2")
    current = dataclasses.replace(loihi2.formats.current, register_bits=0)
    prof = dataclasses.replace(loihi2, formats=dataclasses.replace(loihi2.formats, current=current))
    inp = QPopulation.spike_input("in", 200)
    post = QPopulation.lif("big", 1, du=0, dv=0, vth=2**17 - 1, bias_mant=0, bias_exp=0)
    proj = QProjection.from_mantissas("in->big", "in", "big", np.full((1, 200), 255), weight_exp=7)
    prog = Program.from_parts(prof, [inp, post], [proj], name="no-register")
    emu = Emulator(prog)
    rec = emu.run(12, inputs={"in": np.ones((12, 200), dtype=np.uint8)}, record=["u"])
    assert rec["big/u"].dtype == np.int64
    assert rec["big/u"].max() > 2**31  # past int32, as the profile says (no register wraps it)
    np.testing.assert_array_equal(rec["big/u"][-1], emu.state["big/u"])
    with_register = Emulator(Program.from_parts(loihi2, [inp, post], [proj], name="register"))
    assert (
        with_register.run(2, inputs={"in": np.ones((2, 200), dtype=np.uint8)}, record=["u"])["big/u"].dtype == np.int32
    )
