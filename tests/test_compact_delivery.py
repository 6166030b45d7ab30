"""Compact list delivery (a row per pre neuron: its first target, uint16 offsets, int8 or int16
mantissas) equals the per-pre index lists it replaces, bit for bit: random
sparse networks, exponents of both signs, per-synapse delays, batches, int16 weights, rows
that wrap around the post population; and the packing itself
decodes to the synapses it was given."""

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

STEPS, BATCH, N = 40, 3, 120


def _decode(ptr, data, n_pre, n_post, bits):
    """The synapses ``(pre, post, weight)`` of compact rows, read back in Python (a test oracle
    written from the format's description, independent of the kernel)."""
    out = []
    wb = bits // 8
    for i in range(n_pre):
        row = data[ptr[i] : ptr[i + 1]]
        if row.size == 0:
            continue
        m = (row.size - 4) // (2 + wb)
        base = int(row[:4].view("<i4")[0])
        offs = row[4 : 4 + 2 * m].view("<u2").astype(np.int64)
        ws = row[4 + 2 * m : 4 + (2 + wb) * m].view(f"<i{wb}").astype(np.int64)
        assert row.size == 4 + (2 + wb) * m + (m * wb) % 2 and not row[4 + (2 + wb) * m :].any()  # even, zero pad
        assert ws.size == m and (np.diff(offs) >= 0).all()  # sorted: the kernel's wrap test reads the last
        out += [(i, (base + o) % n_post, w) for o, w in zip(offs, ws, strict=True)]
    return sorted(out)


@pytest.mark.parametrize("n_post, bits", [(50, 8), (300, 16), (70_000, 8)])
def test_compact_rows_decode_to_their_synapses(n_post, bits):
    """Random synapses (repeats included), and rows whose targets straddle the end of the
    population (circular windows): the rows decode to the same multiset of synapses."""
    rng = np.random.default_rng(n_post)
    n_pre, k = 40, 400
    pre = rng.integers(0, n_pre, k)
    span = min(n_post, 2**16 - 1)
    post = (rng.integers(0, n_post, k // 2), (n_post - 5 + rng.integers(0, span, k - k // 2)) % n_post)
    post = np.concatenate(post)
    w = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), k)
    if n_post > 2**16:  # wide rows do not fit: keep one window per row
        post = (pre * 1000 + rng.integers(0, 60_000, k)) % n_post
    ptr, data = sy.compact_rows(pre, post, w, n_pre, n_post, bits)
    assert ptr.size == n_pre + 1 and ptr[-1] == data.size
    assert _decode(ptr, data, n_pre, n_post, bits) == sorted(zip(pre.tolist(), post.tolist(), w.tolist(), strict=True))
    if n_post > 2**16:
        spread = np.arange(0, n_post, 4000)  # no gap above 4 000: the row spans 66 000 targets
        assert sy.compact_rows(0 * spread, spread, 1 + 0 * spread, 1, n_post, bits) is None


def _program(profile: str, seed: int, weight_exp: int, delays: bool, top=255, signed=True, n_in=60, dens=0.05):
    """Spike inputs and a recurrent LIF population; both projections sparse (index lists of
    random synapses, some repeated)."""
    rng = np.random.default_rng(seed)
    inp = QPopulation.spike_input("in", n_in)
    rec = QPopulation.lif("rec", N, du=300, dv=200, vth=2000, bias_mant=10, bias_exp=3)

    def sparse(name, pre, n_pre, d):
        k = int(dens * N * n_pre)
        r, c = rng.integers(0, N, k), rng.integers(0, n_pre, k)
        w = rng.integers(-top, top + 1, k) if signed else -rng.integers(0, top + 1, k)
        dense = QProjection.from_mantissas(name, pre, "rec", np.ones((N, n_pre), np.int64), weight_exp=weight_exp)
        delay = rng.integers(0, 4, k) if d else 0
        return dataclasses.replace(dense, weights=w.astype(np.int32), rows=r, cols=c, delay_steps=delay)

    projs = [sparse("in->rec", "in", n_in, delays), sparse("rec->rec", "rec", N, False)]
    return Program.from_parts(nc.load_profile(profile), [inp, rec], projs, name=f"compact-{seed}")


def _kinds(emu: Emulator) -> set[int]:
    return {int(k) for s in emu.synapses for k in s.table[:, kd.G_KIND]}


def _run(prog, monkeypatch, compact: bool, strict=False, rate=0.2, steps=STEPS, **patch):
    rng = np.random.default_rng(1)
    inputs = {"in": (rng.random((steps, BATCH, prog.populations[0].size)) < rate).astype(np.uint8)}
    patch = {"_NARROW_FRACTION": np.inf, **patch}  # these groups are dense enough for narrow rows otherwise
    with monkeypatch.context() as m:
        m.setattr(sy, "_COMPACT_LISTS", compact)
        for k, v in patch.items():
            m.setattr(sy, k, v)
        emu = Emulator(prog, batch=BATCH, strict=strict)
    return emu, emu.run(steps, inputs, record=["spikes", "u", "v"])


def _same(got, want):
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("profile", ["loihi2", "loihi1"])
@pytest.mark.parametrize("weight_exp", [-3, 0, 2])
@pytest.mark.parametrize("delays", [False, True])
def test_compact_rows_equal_index_lists(profile, weight_exp, delays, monkeypatch):
    prog = _program(profile, seed=30 + weight_exp + 7 * delays, weight_exp=weight_exp, delays=delays)
    emu, got = _run(prog, monkeypatch, compact=True)
    plain, want = _run(prog, monkeypatch, compact=False)
    assert _kinds(emu) == {kd.K_COMPACT} and _kinds(plain) == {kd.K_LISTS}
    assert got["rec/spikes"].any()  # the recurrent rows carried spikes
    _same(got, want)


def test_int16_weights(monkeypatch):
    """Int16 rows (the only width allowed here) record the same integers as index lists."""
    prog = _program("loihi2", seed=5, weight_exp=2, delays=True)
    emu, got = _run(prog, monkeypatch, compact=True, _ROW_BITS=(16,))
    _, want = _run(prog, monkeypatch, compact=False)
    assert {int(r[kd.G_WBITS]) for s in emu.synapses for r in s.table} == {16}
    assert got["rec/spikes"].any()
    _same(got, want)


def test_rows_that_wrap_and_wide_rows(monkeypatch):
    """A ring network whose rows straddle the population's end takes the wrap branch; with a
    post population beyond 2**16 and rows spread over it, the group keeps index lists."""
    n = 400
    pre = np.repeat(np.arange(n), 6)
    post = (pre + np.tile([-3, -2, -1, 1, 2, 3], n)) % n
    w = np.random.default_rng(2).integers(-120, 121, pre.size) * 2
    pop = QPopulation.lif("rec", n, du=300, dv=200, vth=100, bias_mant=2000, bias_exp=6)
    base = QProjection.from_mantissas("rec->rec", "rec", "rec", np.ones((n, n), np.int64))
    proj = dataclasses.replace(base, weights=w.astype(np.int32), rows=post, cols=pre)
    prog = Program.from_parts(nc.load_profile("loihi2"), [pop], [proj], name="ring")
    runs = []
    for compact in (True, False):
        with monkeypatch.context() as m:
            m.setattr(sy, "_COMPACT_LISTS", compact)
            emu = Emulator(prog, batch=2)
        runs.append(emu.run(60, record=["spikes", "u", "v"]))
        ptr = emu.synapses[0].arrays["indptr"]
        if compact:
            rows = emu.synapses[0].arrays["dense"].view(np.uint8)
            first = rows[ptr[n - 1] : ptr[n - 1] + 4].view("<i4")[0]
            assert first == n - 4  # the last neuron's row starts 3 before it and wraps to 0, 1, 2
    assert runs[0]["rec/spikes"][:, :, :3].any() and runs[0]["rec/spikes"][:, :, -3:].any()
    _same(*runs)
    wide = sy.compact_rows([0, 0, 0, 1], [0, 33_000, 66_000, 5], [1, 1, 1, 1], 2, 100_000, 8)
    assert wide is None  # gaps of 33 000, 33 000 and 34 000: no window of 2**16 holds the row


@pytest.mark.parametrize("scratch", [7, 4000])
def test_kernel_prefetching_rows_listed_in_chunks(scratch):
    """The compact kernel on rows beyond its prefetch threshold (the prefetching path), its
    spiking neurons listed in a scratch shorter than the population (in chunks) or as long:
    the sum np.add.at makes of the same synapses (an independent oracle)."""
    rng = np.random.default_rng(3)
    n_pre, n_post, k = 4000, 3000, 100
    pre = np.repeat(np.arange(n_pre), k)
    post = rng.integers(0, n_post, pre.size)
    w = rng.integers(-128, 128, pre.size)
    ptr, data = sy.compact_rows(pre, post, w, n_pre, n_post, 8)
    assert data.size > kd._FETCH_BYTES
    spikes = rng.random(n_pre) < 0.1
    out = np.zeros(n_post)
    kd._compact(spikes, 0, 0, n_pre, n_post, ptr, 0, data, 8, out, 0, 2.0, np.zeros(scratch, np.int32))
    want = np.zeros(n_post)
    hit = spikes[pre]
    np.add.at(want, post[hit], 2.0 * w[hit])
    np.testing.assert_array_equal(out, want)
