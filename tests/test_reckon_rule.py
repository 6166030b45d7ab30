"""ReckOn's e-prop update rule (neurocomp.rules.reckon) against a scalar reference written
with Python integers, one synapse at a time, straight from the chip's description
(eprop.md §3a). Bit for bit, on random states and registers."""

from __future__ import annotations

import numpy as np
import pytest

from neurocomp.rules import reckon
from neurocomp.rules.reckon import ReckonRegisters


def ref_trace(trace: int, spike: int, factor: int, frac_bits: int, impulse: int, bits: int, rand: int) -> int:
    p = trace * factor
    q = p >> frac_bits  # Python's >> is a floor shift, as the chip's
    if p - (q << frac_bits) > rand:
        q += 1
    q += spike * impulse
    return min(q, 2**bits - 1)


def ref_h(v: int, reg: ReckonRegisters) -> int:
    level = 0
    for thr in reg.thr_h:
        if v >= thr:
            level += 1
    return reg.h_values[level]


def ref_L(err: list[int], w_out_col: list[int], reg: ReckonRegisters) -> int:
    psum = sum(e * w for e, w in zip(err, w_out_col, strict=True))
    v = (psum << reg.learn_sig_scale) >> 12
    return max(-(2**15), min(2**15 - 1, v))


def ref_step(w: int, p: int, lr_p: int, lr_r: int, rand: int) -> int:
    if ((abs(p) << lr_p) >> lr_r) > rand:
        new = w + (1 if p > 0 else -1)
        if -128 <= new <= 127:
            return new
    return w


def random_registers(rng) -> ReckonRegisters:
    thr = sorted(int(x) for x in rng.integers(-2000, 2000, 4))
    return ReckonRegisters(
        fp_loc_tinp=int(rng.integers(0, 6)),
        fp_loc_trec=int(rng.integers(0, 6)),
        fp_loc_tout=int(rng.integers(0, 4)),
        thr_h=tuple(thr),
        h_values=tuple(int(x) for x in rng.integers(-16, 16, 5)),
        learn_sig_scale=int(rng.integers(0, 8)),
        lr_p=int(rng.integers(12, 24)),  # large enough that some steps fire
        lr_r=int(rng.integers(0, 6)),
        lr_p_out=int(rng.integers(12, 24)),
        lr_r_out=int(rng.integers(0, 6)),
        regul_f0=int(rng.integers(0, 4095)),
        regul_k_p=int(rng.integers(0, 12)),
        regularize=bool(rng.integers(0, 2)),
    )


@pytest.mark.parametrize("seed", range(20))
def test_reckon_update_matches_scalar_reference(seed):
    rng = np.random.default_rng(seed)
    reg = random_registers(rng)
    n_pre, n_post, n_out = 7, 5, 3
    w = rng.integers(-128, 128, (n_post, n_pre))
    w[0, 0], w[1, 1] = 127, -128  # weights at the edges: overflowing steps must be dropped
    w_out = rng.integers(-128, 128, (n_out, n_post))
    trace_pre = rng.integers(0, 4096, n_pre)
    trace_rec = rng.integers(0, 4096, n_post)
    trace_out = rng.integers(0, 1024, n_post)
    v = rng.integers(-3000, 3000, n_post)
    err = rng.integers(-(2**15), 2**15, n_out)
    rand_w = rng.integers(0, 2**32, (n_post, n_pre))
    rand_o = rng.integers(0, 2**32, (n_out, n_post))

    L = reckon.learning_signal(err, w_out, reg)
    h = reckon.pseudo_derivative(v, reg)
    new_w = reckon.hidden_update(w, trace_pre, reg.fp_loc_tinp, L, h, trace_rec, reg, rand_w)
    new_out = reckon.output_update(w_out, err, trace_out, reg, rand_o)

    for j in range(n_post):
        assert int(h[j]) == ref_h(int(v[j]), reg)
        assert int(L[j]) == ref_L([int(e) for e in err], [int(x) for x in w_out[:, j]], reg)
        for i in range(n_pre):
            p = int(L[j]) * (int(trace_pre[i]) >> reg.fp_loc_tinp) * int(h[j])
            if reg.regularize and int(trace_rec[j]) > reg.regul_f0:
                p -= (int(trace_rec[j]) - reg.regul_f0) << reg.regul_k_p
            assert int(new_w[j, i]) == ref_step(int(w[j, i]), p, reg.lr_p, reg.lr_r, int(rand_w[j, i])), (j, i)
    for k in range(n_out):
        for j in range(n_post):
            p = int(err[k]) * int(trace_out[j])
            assert int(new_out[k, j]) == ref_step(int(w_out[k, j]), p, reg.lr_p_out, reg.lr_r_out, int(rand_o[k, j]))
    assert (new_w != w).any() and (new_out != w_out).any()  # the comparison covered real steps


@pytest.mark.parametrize("seed", range(10))
def test_reckon_traces_match_scalar_reference(seed):
    rng = np.random.default_rng(100 + seed)
    for factor, frac, imp, bits in ((int(rng.integers(28672, 32768)), 15, 8 << 3, 12), (121, 7, 2 << 6, 10)):
        trace = rng.integers(0, 2**bits, 50)
        spikes = rng.integers(0, 2, 50)
        rand = rng.integers(0, 2**frac, 50)
        new = reckon.update_trace(trace, spikes, factor, frac, imp, bits, rand)
        for i in range(50):
            ref = ref_trace(int(trace[i]), int(spikes[i]), factor, frac, imp, bits, int(rand[i]))
            assert int(new[i]) == ref


def test_testbench_pseudo_derivative_is_a_step_at_205():
    reg = ReckonRegisters()  # the navigation testbench: all thresholds 205, H_4 = 1
    h = reckon.pseudo_derivative(np.array([-5, 0, 204, 205, 300]), reg)
    assert h.tolist() == [0, 0, 0, 1, 1]
