"""ReckOn's e-prop engine and its random numbers against scalar references written with
Python integers, one value at a time, straight from the chip's RTL (github ChFrenkel/ReckOn:
``src/lfsr/*.v`` for the LFSRs, ``src/srnn.v`` for the arithmetic and the order in which the
controller visits neurons, words and synapses). Bit for bit, on random states and registers."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.arith.lfsr import Lfsr, is_maximal_length
from neurocomp.emulator import Emulator
from neurocomp.errors import ProfileError
from neurocomp.rules import reckon
from neurocomp.rules.reckon import ReckonRegisters
from tests.conftest import ROOT


# -- the LFSRs, transliterated from the Verilog (register bit j = d[j]; out[i] = y[i]) ------------
def _bits(v: int, n: int) -> list[int]:
    return [(v >> j) & 1 for j in range(n)]


def _val(b: list[int]) -> int:
    return sum(x << j for j, x in enumerate(b))


def rtl_winp_wrec(reg: int) -> tuple[list[int], int]:
    """lfsr_winp_wrec.v: x_k = x_ka ^ x_kb; y0..y2 = d0..d2, y_{k+3} = x_k; x_ka = y_k (k <= 21)
    or y_{k-22}; x_kb = d_{k+3} (k <= 21) or y_k; next d0..d2 = x509..x511, d_{k+3} = y_{490+k}."""
    d = _bits(reg, 25)
    y, x = [0] * 512, [0] * 512
    y[0], y[1], y[2] = d[0], d[1], d[2]
    for k in range(512):
        x[k] = (y[k] if k <= 21 else y[k - 22]) ^ (d[k + 3] if k <= 21 else y[k])
        if k + 3 < 512:
            y[k + 3] = x[k]
    return y, _val([x[509], x[510], x[511]] + [y[490 + k] for k in range(22)])


def rtl_wout(reg: int) -> tuple[list[int], int]:
    """lfsr_wout.v: y0 = d0, y_{k+1} = x_k; x_ka = y_k (k <= 20) or y_{k-21}; x_kb = d_{k+1}
    (k <= 20) or y_k; next d0 = x447, d_{k+1} = y_{427+k}."""
    d = _bits(reg, 22)
    y, x = [0] * 448, [0] * 448
    y[0] = d[0]
    for k in range(448):
        x[k] = (y[k] if k <= 20 else y[k - 21]) ^ (d[k + 1] if k <= 20 else y[k])
        if k + 1 < 448:
            y[k + 1] = x[k]
    return y, _val([x[447]] + [y[427 + k] for k in range(21)])


def rtl_neur_stochround(reg: int) -> tuple[list[int], int]:
    """lfsr_neur_stochround.v: y0 = d0, x_k = y_k ^ d_{k+1}, y_{k+1} = x_k (k < 14),
    x14 = y0 ^ y14; next d0 = x14, d_k = y_k."""
    d = _bits(reg, 15)
    y = [0] * 15
    y[0] = d[0]
    for k in range(14):
        y[k + 1] = y[k] ^ d[k + 1]
    return y, _val([y[0] ^ y[14]] + y[1:])


def rtl_oneur_stochround(reg: int) -> tuple[list[int], int]:
    """lfsr_oneur_stochround.v: y0 = d0, x_k = y_k ^ d_{2k+1}, y_{k+1} = x_k; next d0 = x6,
    d_{2k+1} = d_{2k+2}, d_{2k+2} = y_k."""
    d = _bits(reg, 15)
    y, x = [0] * 7, [0] * 7
    y[0] = d[0]
    for k in range(7):
        x[k] = y[k] ^ d[2 * k + 1]
        if k < 6:
            y[k + 1] = x[k]
    nxt = [0] * 15
    nxt[0] = x[6]
    for k in range(7):
        nxt[2 * k + 1], nxt[2 * k + 2] = d[2 * k + 2], y[k]
    return y, _val(nxt)


RTL = {"weights_input": rtl_winp_wrec, "weights_recurrent": rtl_winp_wrec, "weights_output": rtl_wout,
       "membrane": rtl_neur_stochround, "trace_input": rtl_neur_stochround, "trace_recurrent": rtl_neur_stochround,
       "readout": rtl_oneur_stochround, "trace_output": rtl_oneur_stochround}  # fmt: skip
WORD = {"weights_input": 32, "weights_recurrent": 32, "weights_output": 28, "readout": 7, "trace_output": 7}


class RefLfsr:
    """One LFSR instance as a Python int, drawing words of ``w`` bits (LSB first)."""

    def __init__(self, role: str, reg: int):
        self.role, self.reg, self.w = role, int(reg), WORD.get(role, 15)

    def draw(self) -> list[int]:
        y, self.reg = RTL[self.role](self.reg)
        return [_val(y[m * self.w : (m + 1) * self.w]) for m in range(len(y) // self.w)]


PROFILE = nc.load_profile("reckon")


@pytest.mark.parametrize("name", sorted(PROFILE.random_sources))
def test_lfsr_matches_the_verilog(name):
    src = PROFILE.random_sources[name]
    gen = Lfsr.from_source(src)
    rng = np.random.default_rng(len(name))
    for seed in (*src.seeds, *src.reset, int(rng.integers(1, 2**src.bits))):
        ref = RefLfsr(src.role, seed)
        expected = [ref.draw() for _ in range(40)]
        words, reg = gen.draw(np.array([seed, seed]), 40)
        assert words.tolist() == [expected, expected]
        assert reg.tolist() == [ref.reg, ref.reg]


@pytest.mark.parametrize("bits", [3, 4, 5, 6, 7])
def test_maximal_length_check_agrees_with_brute_force(bits):
    for t in range(1, bits):
        # the period of s[n] = s[n - (L - t)] ^ s[n - L], from a window of L bits holding one 1
        start = [1] + [0] * (bits - 1)
        state, period = start, 0
        while True:
            state = state[1:] + [state[t] ^ state[0]]  # window[t] is s[n - L + t], window[0] s[n - L]
            period += 1
            if state == start or period > 2**bits:
                break
        assert is_maximal_length(bits, t) == (period == 2**bits - 1), (bits, t, period)


# -- srnn.v's arithmetic, one value at a time ----------------------------------------------------
def s32(x: int, bits: int = 32) -> int:
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def ref_round(x: int, factor: int, frac_bits: int, rand: int, rand_bits: int) -> int:
    """srnn.v: lkst = step[.. : frac] + (step[frac-1:0] >= rand && |step[.. : frac]); the 7-bit
    readout number is compared with the top 7 fraction bits."""
    p = x * factor
    q = p >> frac_bits
    frac = p - (q << frac_bits)
    if rand_bits < frac_bits:
        frac >>= frac_bits - rand_bits
    return q + (1 if frac >= rand and q != 0 else 0)


def ref_h(v: int, reg: ReckonRegisters) -> int:
    for thr, h in zip(reg.thr_h, reg.h_values[:4], strict=True):
        if v < thr:
            return h
    return reg.h_values[4]


def ref_L(err: list[int], w_out_col: list[int], reg: ReckonRegisters) -> int:
    psum = sum(e * w for e, w in zip(err, w_out_col, strict=True))
    v = (psum << reg.learn_sig_scale) >> 12
    return max(-(2**15), min(2**15 - 1, v))


def ref_stoch_update(w: int, prob: int, en: bool, lr_p: int, lr_r: int, rnd: int, width: int) -> int:
    """srnn.v's stoch_update, line by line."""
    prob_0 = prob == 0 or not en
    prob_m = prob == -(1 << (width - 1))
    lrp = abs(prob) << lr_p
    tot = ((1 << width) - 1 if lrp >> width else lrp) >> lr_r
    if prob_0 or not (prob_m or tot >= rnd):
        return w
    new = w - 1 if prob < 0 else w + 1
    return w if not -128 <= new <= 127 else new


def ref_hidden_prob(L: int, trace: int, fp: int, h: int, trace_rec_post: int, reg: ReckonRegisters) -> int:
    prob_e = s32(L * (trace >> fp) * h) if h else 0
    reg_term = 0
    if reg.regularize:
        f0 = (trace_rec_post >> reg.fp_loc_trec) - reg.regul_f0
        reg_term = s32(max(f0, 0) << reg.regul_k_p)
    prob_s = s32(prob_e - reg_term)
    prob_k = prob_e << 4  # srnn.v tests bit 31 of this 37-bit product
    return -(2**31) if prob_s >= 0 and (prob_k >> 31) & 1 else prob_s


# -- the whole learning step of one trial, in the controller's order --------------------------------
def reckon_program(n_in=10, n_rec=30, n_out=2, seed=0) -> nc.Program:
    from tests.test_eprop import small_net

    net = small_net(n_in=n_in, n_rec=n_rec, n_out=n_out, seed=seed, feedback="symmetric", eprop={"lr": 3e-4})
    return nc.compile(net, "reckon", out=io.StringIO())


def ref_step(st: dict, regs: dict, lfsr: dict, target, n_max: int) -> None:
    """One emulator step's learning of one trial from the states in ``st`` (Python ints,
    updated in place): the traces (rounded with the paired trace LFSRs, one number per SRAM
    word), the rounding LFSRs of the neurons, then with a target the EPROP phase."""
    n_words = (n_max + 1) // 2  # neuron i reads word i // 2 of the LFSR of its parity
    paired = {
        role: [[g.draw()[0] for _ in range(n_words)] for g in lfsr[role]]
        for role in ("trace_input", "trace_recurrent", "trace_output", "membrane")
    }
    for _ in range(min(16, n_max)):
        lfsr["readout"][0].draw()
    spec = {  # role: (trace, spikes, factor, frac, impulse, bits, lfsr, rand bits)
        "input": ("x_in", "z_in", st["alpha"], 15, 8 << regs["input"].fp_loc_tinp, 12, "trace_input", 15),
        "recurrent": ("x_rec", "z_rec", st["alpha"], 15, 8 << regs["recurrent"].fp_loc_trec, 12, "trace_recurrent", 15),
        "output": ("x_out", "z_rec", st["kappa"], 7, 2 << regs["output"].fp_loc_tout, 10, "trace_output", 7),
    }
    for tr, z, factor, frac, imp, bits, role, rb in spec.values():
        for i in range(len(st[tr])):
            r = paired[role][i % 2][i // 2]
            st[tr][i] = min(ref_round(st[tr][i], factor, frac, r, rb) + st[z][i] * imp, 2**bits - 1)
    if target is None:
        return
    reg = regs["output"]
    n_out, n_hid, n_in = len(st["w_out"]), len(st["w_rec"]), len(st["w_in"][0])
    err = [max(-(2**15), min(2**15 - 1, round(target[k] * st["scale"]) - st["v_out"][k])) for k in range(n_out)]
    L = [ref_L(err, [st["w_out"][k][j] for k in range(n_out)], reg) for j in range(n_hid)]
    h = [ref_h(v, reg) for v in st["v_hid"]]
    treg = [max((t >> reg.fp_loc_trec) - reg.regul_f0, 0) if reg.regularize else 0 for t in st["x_rec"]]
    for blk in range(-(-n_hid // 16)):
        post = [j for j in range(16 * blk, 16 * blk + 16) if j < n_hid]
        for j in post:  # buf16 phase: the output weights of each hidden neuron of the block
            t_out = st["x_out"][j] >> reg.fp_loc_tout
            if t_out:
                nums = lfsr["weights_output"][0].draw()
                for k in range(n_out):
                    p = s32(err[k] * t_out, 28)
                    st["w_out"][k][j] = ref_stoch_update(
                        st["w_out"][k][j], p, True, reg.lr_p_out, reg.lr_r_out, nums[k], 28
                    )
        reg_zero = all(treg[j] == 0 for j in post)
        for i in range(max(n_in, n_hid)):  # then pre neuron by pre neuron: an input word, a recurrent word
            for role, w, trace, fp, n_pre in (
                ("input", st["w_in"], st["x_in"], regs["input"].fp_loc_tinp, n_in),
                ("recurrent", st["w_rec"], st["x_rec"], regs["recurrent"].fp_loc_trec, n_hid),
            ):
                if i >= n_pre or ((trace[i] >> fp) == 0 and reg_zero):
                    continue  # the word is not written: no draw
                nums = lfsr[f"weights_{role}"][0].draw()
                r = regs[role]
                for n, j in enumerate(post):
                    p = ref_hidden_prob(L[j], trace[i], fp, h[j], st["x_rec"][j], r)
                    w[j][i] = ref_stoch_update(w[j][i], p, h[j] != 0 or r.regularize, r.lr_p, r.lr_r, nums[n], 32)
                    if role == "recurrent" and i == j:
                        w[j][i] = 0


def random_registers(rng, base: ReckonRegisters) -> ReckonRegisters:
    thr = [int(x) for x in rng.integers(-600, 600, 4)]  # unsorted on purpose: a priority chain
    return dataclasses.replace(
        base,
        fp_loc_tinp=int(rng.integers(0, 6)),
        fp_loc_trec=int(rng.integers(0, 6)),
        fp_loc_tout=int(rng.integers(0, 5)),
        thr_h=tuple(thr),
        h_values=tuple(int(x) for x in rng.integers(-16, 16, 5)),
        learn_sig_scale=int(rng.integers(0, 12)),
        lr_p=int(rng.integers(8, 24)),
        lr_r=int(rng.integers(0, 6)),
        lr_p_out=int(rng.integers(8, 24)),
        lr_r_out=int(rng.integers(0, 6)),
        regul_f0=int(rng.integers(0, 300)),
        regul_k_p=int(rng.integers(0, 28)),
        regularize=bool(rng.integers(0, 2)),
    )


@pytest.mark.parametrize("seed", range(12))
def test_learning_step_matches_the_scalar_reference(seed):
    """Random states, registers and targets in two trials (the second without a target on
    odd seeds): traces, the pseudo-derivative, the learning signal, every weight update and
    every LFSR register after the step equal the scalar reference, bit for bit."""
    rng = np.random.default_rng(seed)
    n_in, n_rec, n_out = 10 + seed % 3, 19 + seed, 2
    prog = reckon_program(n_in, n_rec, n_out)
    emu = Emulator(prog, batch=2, seed=seed % 2)
    learner = emu._learners["out"]
    syn = {role: learner.by_role[role] for role in ("input", "recurrent", "output")}
    regs = {role: random_registers(rng, s.rule.registers) for role, s in syn.items()}
    for role, s in syn.items():
        s.rule = dataclasses.replace(s.rule, registers=regs[role])
    learner.reg = regs["output"]
    chip = emu._chip_random
    for role in chip.regs:  # random LFSR registers (nonzero), per trial
        chip.regs[role] = rng.integers(1, 2 ** chip.gens[role].bits, chip.regs[role].shape)
    scale = learner.scale
    st = {}
    for b in range(2):
        st[b] = {
            "w_in": rng.integers(-128, 128, (n_rec, n_in)),
            "w_rec": rng.integers(-128, 128, (n_rec, n_rec)),
            "w_out": rng.integers(-128, 128, (n_out, n_rec)),
            "x_in": rng.integers(0, 4096, n_in) * (rng.random(n_in) < 0.7),
            "x_rec": rng.integers(0, 4096, n_rec) * (rng.random(n_rec) < 0.7),
            "x_out": rng.integers(0, 1024, n_rec) * (rng.random(n_rec) < 0.7),
            "z_in": (rng.random(n_in) < 0.3).astype(int),
            "z_rec": (rng.random(n_rec) < 0.3).astype(int),
            "v_hid": rng.integers(-700, 700, n_rec),
            "v_out": rng.integers(-3000, 3000, n_out),
        }
        st[b]["w_in"][0, 0], st[b]["w_out"][0, 1] = 127, -128  # at the edges: overflowing steps are dropped
    for key, (syn_role, var) in {"w_in": ("input", "w"), "w_rec": ("recurrent", "w"), "w_out": ("output", "w"),
                                 "x_in": ("input", "x1"), "x_rec": ("recurrent", "x1"),
                                 "x_out": ("output", "x1")}.items():  # fmt: skip
        syn[syn_role].engine.state[var] = np.stack([st[b][key] for b in range(2)]).astype(np.int64)
    emu.pops["in"].state["spikes"] = np.stack([st[b]["z_in"] for b in range(2)]).astype(bool)
    emu.pops["rec"].state["spikes"] = np.stack([st[b]["z_rec"] for b in range(2)]).astype(bool)
    emu.pops["rec"].state["v_pre"] = np.stack([st[b]["v_hid"] for b in range(2)]).astype(float)
    emu.pops["out"].state["v"] = np.stack([st[b]["v_out"] for b in range(2)]).astype(float)
    target = rng.uniform(-2, 2, (2, n_out))
    if seed % 2:
        target[1] = np.nan
    lfsr = {b: {role: [RefLfsr(role, r) for r in chip.regs[role][b]] for role in chip.regs} for b in range(2)}
    chip.begin_step()
    learner.step(emu.pops, target, chip)
    alpha = int(prog.population("rec").params["voltage_decay"])
    kappa = round(int(prog.population("out").params["voltage_decay"]) / 256)
    for b in range(2):
        ref = {
            k: [list(map(int, row)) for row in v] if np.ndim(v) == 2 else list(map(int, v)) for k, v in st[b].items()
        }
        ref.update(alpha=alpha, kappa=kappa, scale=scale)
        tgt = None if np.isnan(target[b]).any() else target[b]
        ref_step(ref, regs, lfsr[b], tgt, max(n_in, n_rec, n_out))
        for key, (role, var) in {"w_in": ("input", "w"), "w_rec": ("recurrent", "w"), "w_out": ("output", "w"),
                                 "x_in": ("input", "x1"), "x_rec": ("recurrent", "x1"),
                                 "x_out": ("output", "x1")}.items():  # fmt: skip
            np.testing.assert_array_equal(syn[role].engine.state[var][b], np.array(ref[key]), err_msg=f"{key} {b}")
        for role, gens in lfsr[b].items():
            assert chip.regs[role][b].tolist() == [g.reg for g in gens], (role, b)
    moved = [not np.array_equal(syn[r].engine.state["w"][0], st[0][k]) for r, k in
             (("input", "w_in"), ("recurrent", "w_rec"), ("output", "w_out"))]  # fmt: skip
    assert sum(moved) >= 2, moved  # the comparison covered real updates


def test_membrane_and_readout_leaks_round_with_the_neuron_lfsrs():
    """One step without input: a neuron spikes where its membrane (before the leak) reaches the
    threshold and resets to 0; the others leak with the number of their SRAM word from the LFSR
    of their parity; each readout leaks with its 8-bit KAPPA and its cycle's 7-bit number."""
    prog = reckon_program(n_in=7, n_rec=21, n_out=3)
    emu = Emulator(prog, seed=3)
    rng = np.random.default_rng(1)
    v0 = rng.integers(-20000, 20000, 21)
    o0 = rng.integers(-20000, 20000, 3)
    emu.pops["rec"].state["v"] = v0[None].astype(float)
    emu.pops["out"].state["v"] = o0[None].astype(float)
    regs = {role: [RefLfsr(role, r) for r in emu._chip_random.regs[role][0]] for role in ("membrane", "readout")}
    emu.step({"in": np.zeros((1, 7))})
    alpha = int(prog.population("rec").params["voltage_decay"])
    kappa = round(int(prog.population("out").params["voltage_decay"]) / 2**8)
    mem = [[g.draw()[0] for _ in range(11)] for g in regs["membrane"]]  # 22 neuron slots (21 padded): 11 words
    out = [regs["readout"][0].draw()[0] for _ in range(16)]
    th = prog.population("rec").params["threshold"]
    for i in range(21):
        v = ref_round(int(v0[i]), alpha, 15, mem[i % 2][i // 2], 15)
        assert emu.state["rec/v"][0, i] == (0 if v0[i] >= th else v)  # reset to zero on a spike
        assert emu.state["rec/spikes"][0, i] == (v0[i] >= th)
    for k in range(3):
        assert emu.state["out/v"][0, k] == ref_round(int(o0[k]), kappa, 7, out[k], 7)


# -- state: batches, checkpoints, seeds -----------------------------------------------------------
def _run(prog, batch, raster, tgt, steps, **kw):
    emu = Emulator(prog, batch=batch, **kw)
    rec = emu.run(steps, {"in": raster, "out/target": tgt}, record=["spikes", "v"], learn=True)
    return emu, rec


def test_trial_of_a_batch_equals_the_trial_run_alone():
    prog = reckon_program()
    steps = 60
    rng = np.random.default_rng(4)
    raster = (rng.random((steps, 3, 10)) < 0.25).astype(np.int64)
    tgt = rng.uniform(-0.5, 0.5, (steps, 3, 2))
    tgt[:20, 1] = np.nan  # trial 1 learns only from step 21: its LFSRs draw differently
    emu, rec = _run(prog, 3, raster, tgt, steps)
    lfsr = emu.checkpoint().rng_states["__lfsr__"]
    assert lfsr["weights_input"][0] != lfsr["weights_input"][1]  # the trials' registers did part
    for b in range(3):
        one, alone = _run(prog, 1, raster[:, b : b + 1], tgt[:, b : b + 1], steps)
        for key, arr in alone.items():
            np.testing.assert_array_equal(rec[key][:, b], arr[:, 0], err_msg=key)
        for k, v in one.state.items():
            ring = k.endswith(("/input", "/ls"))  # [slots, trials, neurons]
            np.testing.assert_array_equal(emu.state[k][:, b] if ring else emu.state[k][b], v[:, 0] if ring else v[0], k)
        assert {r: v[b] for r, v in lfsr.items()} == {
            r: v[0] for r, v in one.checkpoint().rng_states["__lfsr__"].items()
        }


def test_checkpoint_restores_the_lfsrs_bit_for_bit(tmp_path):
    prog = reckon_program()
    steps = 50
    rng = np.random.default_rng(5)
    raster = (rng.random((steps, 2, 10)) < 0.25).astype(np.int64)
    tgt = rng.uniform(-0.5, 0.5, (steps, 2, 2))
    whole, _ = _run(prog, 2, raster, tgt, steps)
    part, _ = _run(prog, 2, raster[:20], tgt[:20], 20)
    part.checkpoint().save(tmp_path / "r.ckpt.npz")
    again = Emulator(prog, batch=2)
    again.restore(type(part.checkpoint()).load(tmp_path / "r.ckpt.npz"))
    again.run(steps - 20, {"in": raster[20:], "out/target": tgt[20:]}, learn=True)
    assert again.checkpoint().rng_states["__lfsr__"] == whole.checkpoint().rng_states["__lfsr__"]
    assert all(np.array_equal(again.state[k], whole.state[k]) for k in whole.state)
    # a checkpoint without the registers, or of another batch, is refused before anything changes
    bad = part.checkpoint()
    bad = dataclasses.replace(bad, rng_states={k: v for k, v in bad.rng_states.items() if k != "__lfsr__"})
    with pytest.raises(nc.NeurocompError, match="LFSR registers"):
        Emulator(prog, batch=2).restore(bad)


def test_seeds_come_from_the_profile_or_from_the_emulator_seed():
    prog = reckon_program()
    regs0 = Emulator(prog, batch=2).checkpoint().rng_states["__lfsr__"]
    for name, src in PROFILE.random_sources.items():
        assert regs0[src.role] == [list(src.seeds)] * 2, name
    regs7 = Emulator(prog, seed=7).checkpoint().rng_states["__lfsr__"]
    assert regs7 == Emulator(prog, seed=7).checkpoint().rng_states["__lfsr__"]  # deterministic
    assert all(regs7[r] != regs0[r][:1] for r in regs7) and all(0 < v < 2**25 for r in regs7 for v in regs7[r][0])
    emu = Emulator(prog)
    emu.run(5, {"out/target": np.full((5, 2), 0.1)}, learn=True)
    moved = emu.checkpoint().rng_states["__lfsr__"]
    emu.reset(keep_weights=True)  # a new sample on a chip that keeps running: the LFSRs go on,
    after = emu.checkpoint().rng_states["__lfsr__"]  # the rounding ones by the sample's closing STEP
    for role, regs in moved.items():
        gen = emu._chip_random.gens[role]
        draws = 0 if role.startswith("weights") else 16 if role == "readout" else 15  # 30 neurons: 15 words
        assert after[role] == gen.advance(np.array(regs), draws).tolist(), role
    emu.reset()  # a full reset re-seeds them
    assert emu.checkpoint().rng_states["__lfsr__"] == {r: v[:1] for r, v in regs0.items()}


# -- the profile's description of the LFSRs is checked ------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("taps: [25, 22]", None),
        ("taps: [25, 21]", "not primitive"),
        ("taps: [24, 22]", "expected [bits, t]"),
        ("seeds: [0x00F0F0]", None),
        ("seeds: [0x0]", "0 locks the LFSR"),
        ("seeds: [0x2000000]", "a 25-bit register value"),
        ("outputs: 500", "whole number of 32-bit words"),
        ("layout: chained", "layout 'chained' needs"),
    ],
)
def test_profile_checks_its_lfsrs(tmp_path, change, message):
    text = (ROOT / "hardware_profiles" / "reckon.yaml").read_text()
    line = "{role: weights_input, bits: 25, taps: [25, 22], outputs: 512, word_bits: 32, layout: window,"
    assert line in text
    key = change.split(":")[0]
    old = {"taps": "taps: [25, 22]", "seeds": "seeds: [0x00F0F0]", "outputs": "outputs: 512",
           "layout": "layout: window"}[key]  # fmt: skip
    start = text.index(line)
    end = text.index("}", start)
    text = text[:start] + text[start:end].replace(old, change) + text[end:]
    path = tmp_path / "reckon.yaml"
    path.write_text(text)
    if message is None:
        nc.load_profile(path)
        return
    with pytest.raises(ProfileError) as info:
        nc.load_profile(path)
    assert "random_sources.weights_input" in str(info.value) and message in str(info.value)


def test_lfsr_rounding_needs_random_sources(tmp_path):
    text = (ROOT / "hardware_profiles" / "reckon.yaml").read_text()
    text = text[: text.index("random_sources:")] + text[text.index("\nsources:") :]  # no LFSRs listed
    path = tmp_path / "reckon.yaml"
    path.write_text(text.replace("covers: [random_sources]", "covers: []"))
    with pytest.raises(ProfileError, match="stochastic_rule 'lfsr' needs random_sources"):
        nc.load_profile(path)


def test_update_helpers_match_the_scalar_reference():
    """The vectorized helpers on random values, against the one-value references above."""
    rng = np.random.default_rng(11)
    reg = random_registers(rng, ReckonRegisters())
    v = rng.integers(-700, 700, 200)
    assert reckon.pseudo_derivative(v, reg).tolist() == [ref_h(int(x), reg) for x in v]
    w = rng.integers(-128, 128, 500)
    p = rng.integers(-(2**31), 2**31, 500)
    p[:5] = [0, -(2**31), 2**31 - 1, 1, -1]
    rnd = rng.integers(0, 2**32, 500)
    rnd[:10] = 0
    rnd[10:60] = np.minimum(np.abs(p[10:60]) << 5, 2**32 - 1) >> 3  # equal to the scaled |p|: >= fires, > would not
    en = rng.random(500) < 0.8
    en[10:60] = True
    new = reckon.stochastic_step(w, p, 5, 3, rnd, 32, en, 8)  # the 8-bit weights of ref_stoch_update
    assert new.tolist() == [
        ref_stoch_update(int(a), int(b), bool(e), 5, 3, int(r), 32) for a, b, e, r in zip(w, p, en, rnd, strict=True)
    ]
    x = rng.integers(0, 4096, 300)
    rand = rng.integers(0, 2**15, 300)
    x[:4], rand[:4] = [1, 1, 2, 0], [0, 2**15 - 1, 0, 0]  # a floor of 0 is never rounded up; 2 * 0.998 is
    got = reckon.decay_trace(x, 32700, 15, rand, 15)
    assert got.tolist() == [ref_round(int(a), 32700, 15, int(r), 15) for a, r in zip(x, rand, strict=True)]
    assert reckon.pseudo_derivative(np.array([-5, 0, 204, 205, 300]), ReckonRegisters()).tolist() == [0, 0, 0, 1, 1]


def test_profile_summary_lists_the_lfsrs():
    from neurocomp.profiles import profile_summary

    text = profile_summary(PROFILE)
    assert "random sources" in text
    assert "weights_input     25-bit LFSR, taps [25, 22], 512 bits per draw (16 x 32-bit), seeds 0xf0f0" in text
    assert "membrane          15-bit LFSR, taps [15, 14], 15 bits per draw (1 x 15-bit), seeds 0x73f3, 0x7e7f" in text
    assert "random sources" not in profile_summary(nc.load_profile("loihi2"))


def test_regularization_that_reckon_does_not_map_is_said_in_the_pass_log():
    """ReckOn regularizes with its own REGUL_F0 / REGUL_K_P registers; the model's strength and
    target rate are not mapped onto them, and the compiler must say so rather than drop them."""
    from neurocomp.graph.io import load_network

    net = load_network(ROOT / "examples" / "eprop_pattern_100.yaml")
    prog = nc.compile(net.with_rule_params(feedback="symmetric"), "reckon", out=io.StringIO())  # its only feedback
    notes = [n for r in prog.pass_log for n in r["notes"] if "REGUL_F0" in n]
    assert {n.split(":")[1].strip() for n in notes} == {"in->rec", "rec->rec"}
    assert all("reg 0.01 towards 10 Hz" in n for n in notes)


def test_minibatch_update_is_refused_by_name():
    """ReckOn applies each stochastic update as it comes: e-prop's ``update: trial`` (and so
    Adam) has nowhere to hold a trial's sum, so the lowering refuses it for every projection
    rather than running online updates under a minibatch's name."""
    from neurocomp.graph.io import load_network

    net = load_network(ROOT / "examples" / "eprop_pattern_100.yaml")
    with pytest.raises(nc.NeurocompError) as info:
        nc.compile(net.with_rule_params(feedback="symmetric", update="trial"), "reckon", out=io.StringIO())
    text = str(info.value)
    for proj in ("in->rec", "rec->rec", "rec->out"):
        assert f"projection {proj!r}" in text
    assert "eprop update 'trial'" in text and "'online') only" in text
