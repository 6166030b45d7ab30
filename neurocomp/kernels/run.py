"""Many steps of a static network in one compiled call.

A run with nothing to do in Python between steps (no plastic projection, error unit or
learner) is one call per chunk of steps: the inputs of the chunk are given up front, each
step runs the emulator's order (inputs, zero-latency delivery, the neuron update of
:mod:`.neurons`, delivery of :mod:`.delivery`), and the recorded variables are copied into
preallocated ``[steps, flat]`` arrays. The arrays and tables are those of the per-step path.
"""

from __future__ import annotations

from . import kernel
from .delivery import deliver_groups
from .neurons import spike_value, update_neurons

# input table columns: flat offset of the population's spikes, its batch * size, its column in the inputs
I_OFF, I_LEN, I_COL = range(3)


@kernel
def _record(s, flags, spikes, u, v, a, rec_s, rec_u, rec_v, rec_a):
    """Copy the flat state after step ``s`` of the chunk into the recordings ``flags`` selects
    (spikes, u, v, a); the values are integers (fixed) or float32 and convert exactly."""
    if flags[0]:
        for k in range(spikes.shape[0]):
            rec_s[s, k] = spikes[k]
    if flags[1]:
        for k in range(u.shape[0]):
            rec_u[s, k] = u[k]
    if flags[2]:
        for k in range(v.shape[0]):
            rec_v[s, k] = v[k]
    if flags[3]:
        for k in range(a.shape[0]):
            rec_a[s, k] = a[k]


@kernel
def run_steps(
    t0,
    steps,
    batch,
    inputs,
    in_table,
    u,
    v,
    a,
    refr,
    spikes,
    v_pre,
    th_pre,
    ring,
    pop,
    thr,
    fu,
    fv,
    fa,
    bias,
    mode,
    lims,
    ru,
    rv,
    ra,
    err,
    g1,
    s1,
    g2,
    s2,
    indptr,
    idx,
    w,
    dense,
    exps,
    acc,
    acc64,
    flags,
    rec_s,
    rec_u,
    rec_v,
    rec_a,
):
    """Steps ``t0 + 1 .. t0 + steps``: input spikes from ``inputs[s]`` (columns ``in_table``),
    delivery of the zero-latency groups ``g1`` (scales ``s1``), the neuron update, delivery of
    the groups ``g2``, recording at row ``s``. Rounding numbers: row ``s`` of ``ru``/``rv``/``ra``
    when they have a row per step, else row 0. Returns the number of steps done; fewer when a
    strict run overflowed, with ``err`` filled (the failing step is the next one)."""
    per_step = ru.shape[0] > 1
    for s in range(steps):
        t = t0 + s + 1
        for q in range(in_table.shape[0]):
            o, n, c = in_table[q, I_OFF], in_table[q, I_LEN], in_table[q, I_COL]
            for k in range(n):
                spikes[o + k] = spike_value(spikes, inputs[s, c + k])
        deliver_groups(t, batch, g1, s1, indptr, idx, w, dense, exps, spikes, ring, acc, acc64)
        p = update_neurons(
            t,
            s if per_step else 0,
            batch,
            u,
            v,
            a,
            refr,
            spikes,
            v_pre,
            th_pre,
            ring,
            pop,
            thr,
            fu,
            fv,
            fa,
            bias,
            mode,
            lims,
            ru,
            rv,
            ra,
            err,
        )
        if p >= 0:
            return s
        deliver_groups(t, batch, g2, s2, indptr, idx, w, dense, exps, spikes, ring, acc, acc64)
        _record(s, flags, spikes, u, v, a, rec_s, rec_u, rec_v, rec_a)
    return steps
