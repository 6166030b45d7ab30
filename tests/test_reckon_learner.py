"""ReckOn's learning phase in the emulator's chip run (the compiled core) against an independent
oracle: ``srnn.v``'s ``EPROP`` phase written out below in plain Python integers, one synapse at a
time, with the weight LFSRs transliterated from the Verilog (:class:`tests.test_reckon_rule.RefLfsr`).

The emulator runs random small Programs (random registers, every regularization mode) for a few
steps; the oracle reads each step's membranes, readouts and traces from the recording (the
learning phase does not change them) and the weights before the step, and must produce the
recorded weights after it, bit for bit, its weight LFSRs chained from the profile's seeds over
the whole run. This is the fast check of the hidden (input and recurrent) learner; the RTL
itself (``tests/test_reckon_rtl.py``, Icarus Verilog) is the slow one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator
from tests.test_reckon_rtl import random_program, random_samples
from tests.test_reckon_rule import RefLfsr, ref_h, ref_L, ref_stoch_update, s32

PROFILE = nc.load_profile("reckon")
ONE = 2048  # srnn.v's output_act_err: the hard sigmoid's 1.0 and a class label's target


def sat(x: int, bits: int) -> int:
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))


def chip_registers(prog: nc.Program) -> dict:
    """The SPI registers the EPROP phase reads: the shared ones from the output projection,
    each hidden role's learning rate and regularization (REGUL_W bit 0 input, bit 1 recurrent;
    REGUL_MODE the regularizing roles' modes)."""
    roles = {pr.learning.role: pr.learning.registers for pr in prog.projections}
    out, inp, rec = roles["output"], roles["input"], roles["recurrent"]
    return {
        "out": out, "inp": inp, "rec": rec,
        "regul_w": int(inp.regularize) | 2 * int(rec.regularize),
        "mode": (inp.regul_mode if inp.regularize else 0) | (rec.regul_mode if rec.regularize else 0),
        "scale": 2.0 ** prog.population("out").scale_exp,
    }  # fmt: skip


def errors(oneur: list[int], target, spi: dict) -> list[int]:
    """output_act_err: ``e_k = sat16(yt - y)``, ``y`` the readout (through the hard sigmoid unless
    NO_OUT_ACT), ``yt`` the host's 16-bit target or the class label's 2048."""
    reg = spi["out"]
    label = int(np.argmax(target))
    e = []
    for k, vo in enumerate(oneur):
        y = vo if not reg.out_act else ONE if vo > ONE - 1 else 0 if vo < -ONE else (vo + ONE) >> 1
        yt = sat(round(float(target[k]) * spi["scale"]), 16) if reg.regression else ONE * (label == k)
        e.append(sat(yt - y, 16))
    return e


def hidden_prob(L: int, t: int, h: int, treg: int, spi: dict, role: str) -> tuple[int, bool]:
    """``prob_winp`` / ``prob_wrec`` of one synapse and its ``stoch_update`` enable (srnn.v, line by line)."""
    reg, bit = (spi["inp"], 1) if role == "input" else (spi["rec"], 2)
    mode, regul_w, mul_frac = spi["mode"], spi["regul_w"], 4
    pe = s32(L * t * h) if h else 0  # prob_e: 32-bit
    wregi = s32(((treg << reg.regul_k_p) & 0xFFFFFFFF) >> reg.regul_k_r) if mode & 2 and regul_w & bit else 0
    mul = mode & 1 and regul_w  # the multiplicative factor reads REGUL_W as a whole
    wregm = treg >> spi["out"].regul_k_mul if mul else 0
    wregs = 16 if not mul else 0 if wregm >> mul_frac else 16 - (wregm & 15)
    pk = pe * 16 if pe < 0 else pe * wregs  # prob_k: 37-bit
    ps = s32(s32(pk >> mul_frac) - wregi)  # prob_k[35:4] - prob_wreg
    p = -(2**31) if ps >= 0 and (pk >> 31) & 1 else ps
    return p, h != 0 or (mode != 0 and bool(regul_w & bit))


def eprop(st: dict, w: dict, target, spi: dict, lfsr: dict) -> None:
    """One EPROP phase of one trial: ``w`` (lists of Python ints ``[post][pre]``) in place."""
    out = spi["out"]
    n_in, n_rec, n_out = len(st["ti"]), len(st["tr"]), len(st["oneur"])
    err = errors(st["oneur"], target, spi)
    for blk in range(-(-n_rec // 16)):
        posts = list(range(16 * blk, min(16 * blk + 16, n_rec)))
        L, h, treg = {}, {}, {}
        for j in posts:  # buf16: each post's pseudo-derivative, regularization trace and learning signal
            h[j] = ref_h(st["u"][j], out)
            treg[j] = max((st["tr"][j] >> out.fp_loc_trec) - out.regul_f0, 0) if spi["mode"] else 0
            L[j] = ref_L(err, [w["output"][k][j] for k in range(n_out)], out)  # W_out before its update
            t_out = st["to"][j] >> out.fp_loc_tout
            if t_out:  # the post's output word: one draw
                nums = lfsr["weights_output"].draw()
                for k in range(n_out):
                    p = s32(err[k] * t_out, 28)
                    w["output"][k][j] = ref_stoch_update(w["output"][k][j], p, True, out.lr_p_out, out.lr_r_out,
                                                         nums[k], 28)  # fmt: skip
        reg_zero = all(treg[j] == 0 for j in posts)
        for i in range(max(n_in, n_rec)):  # pre by pre: the input word, then the recurrent word
            for role, trace, fp, reg in (("input", st["ti"], out.fp_loc_tinp, spi["inp"]),
                                         ("recurrent", st["tr"], out.fp_loc_trec, spi["rec"])):  # fmt: skip
                if i >= len(trace):
                    continue
                t = trace[i] >> fp
                if t == 0 and reg_zero:
                    continue  # the word is skipped: not written, no draw
                nums = lfsr[f"weights_{role}"].draw()
                for n, j in enumerate(posts):
                    p, en = hidden_prob(L[j], t, h[j], treg[j], spi, role)
                    old = w[role][j][i]
                    w[role][j][i] = ref_stoch_update(old, p, en, reg.lr_p, reg.lr_r, nums[n], 32)
                    fires = ref_stoch_update(0, p, en, reg.lr_p, reg.lr_r, nums[n], 32) != 0  # from 0: +-1 iff it fires
                    if role == "recurrent" and i == j and fires:
                        w[role][j][i] = 0  # the written autapse byte is 0 (srnn.v's wrec_data_i_eprop)


KEYS = {"input": "in->rec/w", "recurrent": "rec->rec/w", "output": "rec->out/w"}


def regularized(prog: nc.Program) -> nc.Program:
    """``prog`` with strong regularization: the input role additive and multiplicative from a
    recurrent trace read of 1 up (F0 = 0), the recurrent role not regularized (its updates still
    take the multiplicative factor: srnn.v reads REGUL_W as a whole there)."""
    projs = []
    for pr in prog.projections:
        regs = dataclasses.replace(pr.learning.registers, regul_mode=3, regularize=pr.learning.role == "input",
                                   regul_f0=0, regul_k_p=10, regul_k_r=0, regul_k_mul=2)  # fmt: skip
        projs.append(dataclasses.replace(pr, learning=dataclasses.replace(pr.learning, registers=regs)))
    return dataclasses.replace(prog, projections=tuple(projs))


def check_run(seed: int, sizes: tuple[int, int, int], steps: int, batch: int, regularize: bool = False) -> dict:
    """One random Program run on the emulator (learning), every trial and step against the oracle;
    returns how many hidden weights the oracle moved and the mode."""
    prog, info = random_program(seed, sizes)
    if regularize:
        prog, info = regularized(prog), {**info, "mode": "regularized"}
    samples = random_samples(seed, prog, batch, steps)
    x = np.stack([s["in"] for s in samples], axis=1)
    tgt = np.stack([s["out/target"] for s in samples], axis=1)
    emu = Emulator(prog, batch=batch)
    w0 = {role: emu.state[key].copy() for role, key in KEYS.items()}
    rec = emu.run(steps, {"in": x, "out/target": tgt}, record=("v", "w", "x1"), learn=True)
    spi = chip_registers(prog)
    moved = 0
    for b in range(batch):
        lfsr = {f"weights_{r}": RefLfsr(f"weights_{r}", PROFILE.random_sources[f"weights_{r}"].seeds[0]) for r in KEYS}
        w = {role: w0[role][b].astype(int).tolist() for role in KEYS}
        for t in range(steps):
            before = {role: np.array(w[role]) for role in ("input", "recurrent")}
            if not np.isnan(tgt[t, b]).any():
                st = {"u": rec["rec/v"][t, b], "oneur": rec["out/v"][t, b], "ti": rec["in->rec/x1"][t, b],
                      "tr": rec["rec->rec/x1"][t, b], "to": rec["rec->out/x1"][t, b]}  # fmt: skip
                eprop({k: [int(v) for v in a] for k, a in st.items()}, w, tgt[t, b], spi, lfsr)
            for role, key in KEYS.items():
                got, want = rec[key][t, b], np.array(w[role])
                bad = np.argwhere(got != want)
                assert bad.size == 0, (
                    f"seed {seed} {info}, trial {b}, step {t}, {key}: {len(bad)} weights differ, first [post, "
                    f"pre] {bad[0].tolist()}: emulator {got[tuple(bad[0])]}, oracle {want[tuple(bad[0])]}"
                )
            moved += sum(int((before[role] != np.array(w[role])).sum()) for role in before)
    return {"moved": moved, "mode": info["mode"]}


@pytest.mark.parametrize(("sizes", "seeds"), [((12, 32, 2), range(6)), ((20, 18, 3), range(6, 12))])
def test_hidden_learner_equals_the_oracle(sizes, seeds):
    """Random Programs over two SRAM blocks of posts (the second partial with 18 posts), a batch of
    two trials (the compiled core's threads) and single trials: every weight after every step
    equals the oracle's."""
    covered = [check_run(s, sizes, steps=12, batch=2 if s % 2 else 1) for s in seeds]
    assert sum(c["moved"] > 0 for c in covered) >= 4, covered  # real hidden updates were compared


def test_regularized_hidden_learner_equals_the_oracle():
    """Strong additive and multiplicative regularization (every recurrent trace that reads nonzero
    has a term): its updates, where ``L * h`` is 0 too, equal the oracle's."""
    covered = [check_run(s, (12, 32, 2), steps=12, batch=1, regularize=True) for s in range(3)]
    assert all(c["moved"] > 0 for c in covered), covered
