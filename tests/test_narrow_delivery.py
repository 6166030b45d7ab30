"""Narrow dense-row delivery (int16 rows summed in an int16 or int32 accumulator) equals the
index-list and float-row delivery it replaces, bit for bit: random networks, exponents of
both signs, per-synapse delays, sparse and dense projections, batches, and runs whose u
wraps and v saturates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import neurocomp as nc
import neurocomp.emulator.synapses as sy
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator
from neurocomp.kernels import delivery as kd

STEPS, BATCH = 40, 3


def _mantissas(rng, shape, density, top, signed=True):
    w = rng.integers(-top, top + 1, shape) if signed else -rng.integers(0, top + 1, shape)
    return np.where(rng.random(shape) < density, w, 0)


def _program(
    profile: str, seed: int, weight_exp: int, delays: bool, sparse: bool, top=255, signed=True, n_in=60, dens=0.3
):
    """Spike inputs and a recurrent LIF population, both projections random and dense enough
    for narrow rows; ``sparse``: the recurrent one as index lists of the same synapses."""
    rng = np.random.default_rng(seed)
    n = 90
    inp = QPopulation.spike_input("in", n_in)
    rec = QPopulation.lif("rec", n, du=300, dv=200, vth=2000, bias_mant=10, bias_exp=3)
    d_in = rng.integers(0, 4, (n, n_in)) if delays else 0
    w_in = _mantissas(rng, (n, n_in), dens, top, signed)
    p_in = QProjection.from_mantissas("in->rec", "in", "rec", w_in, weight_exp=weight_exp, delay_steps=d_in)
    w_rec = _mantissas(rng, (n, n), 0.1, top, signed)
    p_rec = QProjection.from_mantissas("rec->rec", "rec", "rec", w_rec, weight_exp=weight_exp)
    if sparse:
        r, c = np.nonzero(w_rec)
        p_rec = dataclasses.replace(p_rec, weights=w_rec[r, c].astype(np.int32), rows=r, cols=c)
    return Program.from_parts(nc.load_profile(profile), [inp, rec], [p_in, p_rec], name=f"narrow-{seed}")


def _kinds(emu: Emulator) -> set[int]:
    return {int(k) for s in emu.synapses for k in s.table[:, kd.G_KIND]}


def _both(prog: Program, monkeypatch, steps: int = STEPS, batch: int = BATCH, rate: float = 0.2, strict=False):
    """Recordings of the default emulator (narrow rows) and of one with narrow rows turned off."""
    rng = np.random.default_rng(1)
    inputs = {"in": (rng.random((steps, batch, prog.populations[0].size)) < rate).astype(np.uint8)}
    narrow = Emulator(prog, batch=batch, strict=strict)
    with monkeypatch.context() as m:
        m.setattr(sy, "_NARROW_FRACTION", np.inf)
        plain = Emulator(prog, batch=batch, strict=strict)
    assert kd.K_NARROW in _kinds(narrow) and kd.K_NARROW not in _kinds(plain)
    record = ["spikes", "u", "v"]
    return narrow, narrow.run(steps, inputs, record=record), plain.run(steps, inputs, record=record)


@pytest.mark.parametrize("profile", ["loihi2", "loihi1"])
@pytest.mark.parametrize("weight_exp", [-3, 0, 2])
@pytest.mark.parametrize("delays, sparse", [(False, False), (True, False), (False, True)])
def test_narrow_rows_equal_lists_and_rows(profile, weight_exp, delays, sparse, monkeypatch):
    prog = _program(profile, seed=10 + weight_exp + 7 * delays + 13 * sparse, weight_exp=weight_exp, delays=delays,
                    sparse=sparse)  # fmt: skip
    emu, got, want = _both(prog, monkeypatch)
    assert got["rec/spikes"].any()  # the recurrent rows carried spikes
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    mixed = emu.synapses[1]  # Loihi's mixed-sign mantissas are even: the rows hold them halved
    if prog.profile.formats.weight.mixed_sign_drops_lsb:
        assert (mixed.table[:, kd.G_WSHIFT] >= 1).all()


def test_a_step_by_step_run_delivers_narrow_rows_as_the_fused_run(monkeypatch):
    """The per-step path (Synapses.deliver) and the strict run take narrow rows too."""
    prog = _program("loihi2", seed=3, weight_exp=-1, delays=True, sparse=False)
    _, fused, _ = _both(prog, monkeypatch, steps=15)
    emu = Emulator(prog, batch=BATCH, strict=True)
    inputs = (np.random.default_rng(1).random((15, BATCH, 60)) < 0.2).astype(np.uint8)
    for i in range(15):
        emu.step({"in": inputs[i]})
        for var in ("u", "v"):
            np.testing.assert_array_equal(fused[f"rec/{var}"][i], emu.pops["rec"].state[var], err_msg=f"{var} {i}")


def test_wide_sums_take_the_32_bit_accumulator_and_overflow_as_before(monkeypatch):
    """Large inhibitory weights: the bound of a row sum needs 32 bits; u overflows (Lava's
    one-time +-2**24 correction) and v saturates, identically in both deliveries."""
    prog = _program("loihi2", seed=5, weight_exp=6, delays=False, sparse=False, signed=False, n_in=200, dens=1.0)
    emu, got, want = _both(prog, monkeypatch, rate=0.9)
    assert set(emu.synapses[0].table[:, kd.G_ACC]) == {32}
    lim = 2**23 - 1
    assert (got["rec/v"] == -lim).any()  # saturated
    assert got["rec/u"].min() < -(2**24)  # past the 24-bit range: the one-time wrap could not bring it back
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_narrow_rows_are_fixed_point_only():
    """Float chips keep their float32 rows and lists (summed in pre order, as they round)."""
    net = nc.Network(name="f")
    net.add(nc.Population("a", 50, nc.LIF(tau_mem_ms=20.0, bias=0.1)))
    w = np.random.default_rng(0).normal(0, 0.1, (50, 50))
    net.add(nc.Projection("a", "a", w))
    import io

    emu = Emulator(nc.compile(net, "spinnaker2", out=io.StringIO()))
    assert kd.K_NARROW not in _kinds(emu)


def test_a_list_group_after_a_narrow_group_starts_from_zero(monkeypatch):
    """A narrow group sums in the trial's float scratch reread as integers; a shifted list group
    delivered after it in the same step must not read those bits as a float (they can be a
    NaN, which once turned a silent projection's u into -2**31)."""
    rng = np.random.default_rng(5)
    inp = QPopulation.spike_input("in", 1)
    a = QPopulation.lif("a", 2, du=0, dv=0, vth=0, bias_mant=-4096, bias_exp=0)
    b = QPopulation.lif("b", 7, du=0, dv=0, vth=0, bias_mant=-4096, bias_exp=0)
    silent = QProjection.from_mantissas("in->a", "in", "a", np.zeros((2, 1), np.int64), weight_exp=-1)
    dense = QProjection.from_mantissas("in->b", "in", "b", np.array([[0], [3], [0], [-1], [0], [0], [-4]]) * 64)
    prog = Program.from_parts(nc.load_profile("loihi2"), [inp, a, b], [dense, silent], name="narrow-then-list")
    inputs = {"in": (rng.random((STEPS, 1, 1)) < 0.3).astype(np.uint8)}
    got = Emulator(prog).run(STEPS, inputs=inputs, record=["u", "v"])
    with monkeypatch.context() as m:
        m.setattr(sy, "_NARROW_FRACTION", np.inf)
        want = Emulator(prog).run(STEPS, inputs=inputs, record=["u", "v"])
    assert kd.K_NARROW in _kinds(Emulator(prog))
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def _narrow_widths(emu: Emulator) -> set[int]:
    return {int(r[kd.G_WBITS]) for s in emu.synapses for r in s.table if r[kd.G_KIND] == kd.K_NARROW}


@pytest.mark.parametrize("signed", [True, False])
def test_int8_rows_equal_int16_rows(signed, monkeypatch):
    """Rows whose (shifted) mantissas fit int8 are stored as int8 (Loihi's halved mixed-sign
    mantissas); a single-sign projection's up to 255 need int16. Either way the recordings
    equal those of int16 rows and of no narrow rows at all."""
    prog = _program("loihi2", seed=21 + signed, weight_exp=-2, delays=True, sparse=False, signed=signed, top=250)
    emu, got, want = _both(prog, monkeypatch)
    assert _narrow_widths(emu) == ({8} if signed else {16})
    with monkeypatch.context() as m:
        m.setattr(sy, "_ROW_BITS", (16,))
        wide = Emulator(prog, batch=BATCH)
    assert _narrow_widths(wide) == {16}
    inputs = {"in": (np.random.default_rng(1).random((STEPS, BATCH, 60)) < 0.2).astype(np.uint8)}
    got16 = wide.run(STEPS, inputs, record=["spikes", "u", "v"])
    assert got["rec/u"].any() and (got["rec/spikes"].any() or not signed)  # inhibitory only: no spikes
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        np.testing.assert_array_equal(got16[key], want[key], err_msg=key)


def test_narrow_rows_are_read_back_from_a_float32_weight_array(monkeypatch):
    """When the network's weights are held as float32 (a fixed-point chip with mantissas beyond
    int16), the narrow rows keep their integer bytes inside that array and are read back through
    a view: the same recordings."""
    prog = _program("loihi2", seed=4, weight_exp=1, delays=True, sparse=False, top=250)
    _, _, want = _both(prog, monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(sy, "weight_dtype", lambda mantissas, fixed: np.float32)
        emu = Emulator(prog, batch=BATCH)
    assert emu._group_arrays["dense"].dtype == np.float32 and _narrow_widths(emu) == {8}
    inputs = {"in": (np.random.default_rng(1).random((STEPS, BATCH, 60)) < 0.2).astype(np.uint8)}
    got = emu.run(STEPS, inputs, record=["spikes", "u", "v"])
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_pack_dense_keeps_raw_bytes_and_converts_values():
    """Raw parts keep their bytes (even a pattern that reads as a NaN in float32), value parts are
    converted; every part starts on a 64-byte line."""
    raw = np.array([-1, -128, 127, 0, 5], dtype=np.int8).repeat(4)  # 0xffffffff: a NaN as float32
    vals = np.array([1.0, -3.0, 250.0])
    arr, starts = sy.pack_dense([(vals, False), (raw, True), (vals, False)], np.float32)
    assert arr.dtype == np.float32 and starts == [0, 16, 32]
    np.testing.assert_array_equal(arr[:3], vals)
    np.testing.assert_array_equal(arr.view(np.int8)[64 : 64 + raw.size], raw)
    np.testing.assert_array_equal(arr[32:35], vals)
