"""The Xylo layer (SYNS61201) in XyloSim's integer arithmetic, many steps per call.

One layer holds ``Nin`` input channels, ``N`` hidden LIF neurons with two synaptic
currents each and ``No`` readout neurons with one. All states are int16 of the profile's
formats, held in int64 arrays. Weights are the effective integers ``mantissa << shift``.
A step ``t`` (as ``xylosim.v2.XyloLayer.evolve`` does it, measured on random networks):

1. every hidden current ``k`` adds, saturating after each add, the input events of step
   ``t`` (at most ``C_IN_CAP`` per channel) channel by channel, then the spikes of step
   ``t - 1`` of the hidden neurons in order (``count * w``: every event of one pre neuron
   has the same sign, so it equals one saturating add per event); each readout current
   adds the hidden spikes of step ``t - 1`` the same way;
2. each current decays, ``I <- I - step(I, dash)``: ``step = I >> dash`` (arithmetic shift),
   at least ``C_MIN_STEP`` in magnitude while ``I != 0`` (so ``dash = 0`` empties it);
3. the membrane: ``dv = sat(I1 + I2 - step(v, dash_mem))`` summed wide, then
   ``dv = sat(dv + bias)``, ``v = sat(v + dv)``; ``-step`` is negated in int16 (it wraps
   at ``-32768``, which only ``v = -32768`` with ``dash_mem = 0`` reaches);
4. hidden: ``while v >= th`` and under ``C_SPIKE_CAP`` spikes: spike, ``v <- v - th``
   wrapped in int16 (a negative threshold raises ``v`` until it wraps below it);
   readouts: at most one spike, the same reset.
"""

from __future__ import annotations

import numpy as np

from . import kernel, parallel_kernel, prange

# rows of the hidden and readout parameter tables
H_DASH1, H_DASH2, H_DMEM, H_TH, H_BIAS = range(5)
O_DASH, O_DMEM, O_TH, O_BIAS = range(4)
# entries of ``caps``
C_IN_CAP, C_SPIKE_CAP, C_MIN_STEP, C_LO, C_HI = range(5)
# recording flags: spikes, currents, v
F_SPIKES, F_U, F_V = range(3)


@kernel(inline="always")
def _sat(x, lo, hi):
    return min(max(x, lo), hi)


@kernel(inline="always")
def _wrap(x, lo, hi):
    """``x`` in the two's complement register ``[lo, hi]``."""
    span = hi - lo + 1
    return (x - lo) % span + lo


@kernel(inline="always")
def _step(x, dash, min_step):
    """The decay step ``x >> dash``, at least ``min_step`` in magnitude while ``x != 0``."""
    s = x >> dash
    if x != 0 and abs(s) < min_step:
        s = min_step if x > 0 else -min_step
    return s


@kernel(inline="always")
def _membrane(v, drive, dash, bias, caps):
    """``v`` after one step with summed synaptic ``drive`` (before the spikes)."""
    lo, hi = caps[C_LO], caps[C_HI]
    dv = _sat(drive + _wrap(-_step(v, dash, caps[C_MIN_STEP]), lo, hi), lo, hi)
    dv = _sat(dv + bias, lo, hi)
    return _sat(v + dv, lo, hi)


@kernel(inline="always")
def _one_step(x, b, w_in, w_rec, w_out, hid, out, caps, cur, v, s, cur_o, v_o, s_o):
    """Step of trial ``b`` with input events ``x[Nin]`` (already clipped)."""
    lo, hi, ms = caps[C_LO], caps[C_HI], caps[C_MIN_STEP]
    n_in, n, n_out = w_in.shape[0], w_rec.shape[0], w_out.shape[1]
    for i in range(n_in):  # inputs, channel by channel
        c = x[i]
        if c == 0:
            continue
        for j in range(n):
            for k in range(2):
                cur[b, j, k] = _sat(cur[b, j, k] + c * w_in[i, j, k], lo, hi)
    for i in range(n):  # the hidden spikes of the previous step, neuron by neuron
        c = s[b, i]
        if c == 0:
            continue
        for j in range(n):
            for k in range(2):
                cur[b, j, k] = _sat(cur[b, j, k] + c * w_rec[i, j, k], lo, hi)
        for o in range(n_out):
            cur_o[b, o] = _sat(cur_o[b, o] + c * w_out[i, o], lo, hi)
    for j in range(n):
        cur[b, j, 0] -= _step(cur[b, j, 0], hid[H_DASH1, j], ms)
        cur[b, j, 1] -= _step(cur[b, j, 1], hid[H_DASH2, j], ms)
        vj = _membrane(v[b, j], cur[b, j, 0] + cur[b, j, 1], hid[H_DMEM, j], hid[H_BIAS, j], caps)
        th, cnt = hid[H_TH, j], 0
        while vj >= th and cnt < caps[C_SPIKE_CAP]:
            cnt += 1
            vj = _wrap(vj - th, lo, hi)
        v[b, j] = vj
        s[b, j] = cnt
    for o in range(n_out):
        cur_o[b, o] -= _step(cur_o[b, o], out[O_DASH, o], ms)
        vo = _membrane(v_o[b, o], cur_o[b, o], out[O_DMEM, o], out[O_BIAS, o], caps)
        s_o[b, o] = 0
        if vo >= out[O_TH, o]:
            s_o[b, o] = 1
            vo = _wrap(vo - out[O_TH, o], lo, hi)
        v_o[b, o] = vo


@kernel(inline="always")
def _trial(b, inp, w_in, w_rec, w_out, hid, out, caps, cur, v, s, cur_o, v_o, s_o, flags, r_s, r_u, r_v, r_so, r_uo,
           r_vo):  # fmt: skip
    x = np.zeros(inp.shape[2], dtype=np.int64)
    for t in range(inp.shape[0]):
        for i in range(x.shape[0]):
            x[i] = min(inp[t, b, i], caps[C_IN_CAP])
        _one_step(x, b, w_in, w_rec, w_out, hid, out, caps, cur, v, s, cur_o, v_o, s_o)
        if flags[F_SPIKES]:
            r_s[t, b, :] = s[b, :]
            r_so[t, b, :] = s_o[b, :]
        if flags[F_U]:
            r_u[t, b, :, :] = cur[b, :, :]
            r_uo[t, b, :] = cur_o[b, :]
        if flags[F_V]:
            r_v[t, b, :] = v[b, :]
            r_vo[t, b, :] = v_o[b, :]


@kernel
def run_layer(inp, w_in, w_rec, w_out, hid, out, caps, cur, v, s, cur_o, v_o, s_o, flags, r_s, r_u, r_v, r_so, r_uo,
              r_vo):  # fmt: skip
    """``inp.shape[0]`` steps of every trial of the layer (``inp[step, trial, channel]``: input
    events); states ``cur[trial, N, 2]``, ``v``, ``s`` (spike counts) ``[trial, N]`` and
    ``cur_o``, ``v_o``, ``s_o`` ``[trial, No]`` in place; the recordings ``r_*``
    ``[steps, trial, ...]`` that ``flags`` selects are written after each step."""
    for b in range(inp.shape[1]):
        _trial(b, inp, w_in, w_rec, w_out, hid, out, caps, cur, v, s, cur_o, v_o, s_o, flags, r_s, r_u, r_v, r_so,
               r_uo, r_vo)  # fmt: skip


@parallel_kernel
def run_layer_parallel(inp, w_in, w_rec, w_out, hid, out, caps, cur, v, s, cur_o, v_o, s_o, flags, r_s, r_u, r_v,
                       r_so, r_uo, r_vo):  # fmt: skip
    """:func:`run_layer` with the trials spread over the cores (each writes only its own rows)."""
    for b in prange(inp.shape[1]):
        _trial(b, inp, w_in, w_rec, w_out, hid, out, caps, cur, v, s, cur_o, v_o, s_o, flags, r_s, r_u, r_v, r_so,
               r_uo, r_vo)  # fmt: skip
