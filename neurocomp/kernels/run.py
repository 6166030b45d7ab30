"""Many steps of a static network in one compiled call.

A run with nothing to do in Python between steps (no plastic projection, error unit or
learner) is one call per chunk of steps: the inputs of the chunk are given up front
(``inputs[step, column]``), each step runs the emulator's order (input spikes, zero-latency
delivery ``g1``, the neuron update of :mod:`.neurons`, delivery ``g2`` of :mod:`.delivery`),
and the recorded variables are copied into preallocated ``[steps, flat]`` arrays. The
arrays and tables are those of the per-step path.

Trials are independent, so a non-strict run goes trial by trial, all steps of one trial
at a time (:func:`run_trials`; over the cores with :func:`run_trials_parallel`). A strict
run goes step by step over all trials (:func:`run_steps`), so that it stops at the first
overflow in the order of the step-by-step path, with the same state.
"""

from __future__ import annotations

from . import kernel, parallel_kernel, prange
from .delivery import deliver_groups, deliver_trial
from .neurons import S_A, S_U, S_V, spike_value, update_neurons, update_trial

# input table columns: flat offset of the population's spikes, its size, its first column in ``inputs``
I_OFF, I_N, I_COL = range(3)
# block table columns (every population with spikes): flat offset, size
B_OFF, B_N = range(2)


@kernel(inline="always")
def _inputs(s, b, inputs, in_table, spikes):
    """Trial ``b``'s input spikes of step ``s`` of the chunk (columns ``I_COL + b * size``)."""
    for q in range(in_table.shape[0]):
        o, n, c = in_table[q, I_OFF] + b * in_table[q, I_N], in_table[q, I_N], in_table[q, I_COL] + b * in_table[q, I_N]
        for k in range(n):
            spikes[o + k] = spike_value(spikes, inputs[s, c + k])


@kernel(inline="always")
def _copy(dst, src):
    """``dst[:] = src`` elementwise (integers held in float64, or float32, convert exactly)."""
    for k in range(dst.shape[0]):
        dst[k] = src[k]


@kernel(inline="always")
def _record(s, b, blocks, flags, spikes, st, rec_s, rec_u, rec_v, rec_a):
    """Copy trial ``b``'s state after step ``s`` into the recordings ``flags`` selects (spikes,
    u, v, a), one contiguous copy per variable and population."""
    for q in range(blocks.shape[0]):
        n = blocks[q, B_N]
        o = blocks[q, B_OFF] + b * n
        if flags[0]:
            _copy(rec_s[s, o : o + n], spikes[o : o + n])
        if flags[1]:
            _copy(rec_u[s, o : o + n], st[S_U, o : o + n])
        if flags[2]:
            _copy(rec_v[s, o : o + n], st[S_V, o : o + n])
        if flags[3]:
            _copy(rec_a[s, o : o + n], st[S_A, o : o + n])


@kernel
def _trial(b, t0, steps, batch, inputs, in_table, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err, g1, s1, g2,
           s2, indptr, idx, w, dense, exps, acc, acc64, blocks, flags, rec_s, rec_u, rec_v, rec_a):  # fmt: skip
    """Steps ``t0 + 1 .. t0 + steps`` of trial ``b``. Rounding numbers: ``rnd[s]`` when there is
    a row per step, else ``rnd[0]``."""
    per_step = rnd.shape[0] > 1
    for s in range(steps):
        t = t0 + s + 1
        _inputs(s, b, inputs, in_table, spikes)
        deliver_trial(t, b, batch, g1, s1, indptr, idx, w, dense, exps, spikes, ring, acc, acc64)
        update_trial(t, b, batch, st, spikes, ring, pop, thr, nconst, mode, lims, rnd[s if per_step else 0], err)
        deliver_trial(t, b, batch, g2, s2, indptr, idx, w, dense, exps, spikes, ring, acc, acc64)
        _record(s, b, blocks, flags, spikes, st, rec_s, rec_u, rec_v, rec_a)


@kernel
def run_trials(t0, steps, batch, inputs, in_table, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err, g1, s1,
               g2, s2, indptr, idx, w, dense, exps, acc, acc64, blocks, flags, rec_s, rec_u, rec_v, rec_a):  # fmt: skip
    """Steps ``t0 + 1 .. t0 + steps`` of every trial, one trial after the other (not strict)."""
    for b in range(batch):
        _trial(b, t0, steps, batch, inputs, in_table, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err, g1, s1,
               g2, s2, indptr, idx, w, dense, exps, acc, acc64, blocks, flags, rec_s, rec_u, rec_v, rec_a)  # fmt: skip


@parallel_kernel
def run_trials_parallel(t0, steps, batch, inputs, in_table, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err,
                        g1, s1, g2, s2, indptr, idx, w, dense, exps, acc, acc64, blocks, flags, rec_s, rec_u, rec_v,
                        rec_a):  # fmt: skip
    """:func:`run_trials` with the trials spread over the cores (each writes only its own blocks)."""
    for b in prange(batch):
        _trial(b, t0, steps, batch, inputs, in_table, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err, g1, s1,
               g2, s2, indptr, idx, w, dense, exps, acc, acc64, blocks, flags, rec_s, rec_u, rec_v, rec_a)  # fmt: skip


@kernel
def run_steps(t0, steps, batch, inputs, in_table, st, spikes, ring, pop, thr, nconst, mode, lims, rnd, err, g1, s1, g2,
              s2, indptr, idx, w, dense, exps, acc, acc64, blocks, flags, rec_s, rec_u, rec_v, rec_a):  # fmt: skip
    """Steps ``t0 + 1 .. t0 + steps``, each over all trials in the step-by-step order. Returns
    the number of steps done: fewer when a strict run overflowed, with ``err`` filled (the
    failing step is the next one)."""
    per_step = rnd.shape[0] > 1
    for s in range(steps):
        t = t0 + s + 1
        for b in range(batch):
            _inputs(s, b, inputs, in_table, spikes)
        deliver_groups(t, batch, g1, s1, indptr, idx, w, dense, exps, spikes, ring, acc, acc64)
        if (
            update_neurons(t, batch, st, spikes, ring, pop, thr, nconst, mode, lims, rnd[s if per_step else 0], err)
            >= 0
        ):
            return s
        deliver_groups(t, batch, g2, s2, indptr, idx, w, dense, exps, spikes, ring, acc, acc64)
        for b in range(batch):
            _record(s, b, blocks, flags, spikes, st, rec_s, rec_u, rec_v, rec_a)
    return steps
