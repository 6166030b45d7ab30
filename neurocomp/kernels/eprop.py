"""Exact e-prop on a programmable core (:class:`neurocomp.learning.programmable.EpropExact`), compiled:
the per-synapse part of a step of each hidden projection (eligibility, its readout filter,
the weight update, the presynaptic trace), the readout's part (its trace, the running rate,
the readout weights, the feedback), and the plastic delivery.

One template for both arithmetics: float32 arrays and scalars (the core's format) or float64
(the lowered-float level). Every scalar comes in the arrays' dtype and the kernels have no
float literals, so numba computes in that dtype as numpy does (a float64 literal would
promote a float32 product to float64). Each value is computed by the same operations in the
same order as the numpy form, with fastmath off (no fused multiply-add), so the results are
numpy's bit for bit: the learning step has no sums over synapses, and the delivery sums in
numpy's einsum order (:func:`deliver`). The error, the learning signal and the
pseudo-derivative stay in numpy (:meth:`EpropExact.step`). Batches are spread over the cores
trial by trial (:func:`over_trials`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..learning.quantities import running_rate
from . import kernel

# Trials from which a learner's step spreads its batch over the cores (here and in
# :mod:`.reckon`): below, handing work to threads costs more than it saves.
PARALLEL_TRIALS = 8
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_pool: list[ThreadPoolExecutor] = []


def over_trials(call: Callable[[int, int], None], batch: int) -> None:
    """``call(lo, hi)`` on chunks of the trials ``0 .. batch - 1``, one per core on threads
    when the batch is large enough (the kernels release the GIL; the trials are independent,
    so the result does not depend on the chunks). Python threads rather than ``prange``:
    numba's OpenMP workers spin while they wait, which on a loaded machine made the step
    several times slower than one thread."""
    cores = min(CORES, batch)
    if batch < PARALLEL_TRIALS or cores < 2:
        call(0, batch)
        return
    if not _pool:
        _pool.append(ThreadPoolExecutor(CORES, thread_name_prefix="neurocomp-trials"))
    edges = [batch * c // cores for c in range(cores + 1)]
    for job in [_pool[0].submit(call, edges[c], edges[c + 1]) for c in range(cores)]:
        job.result()


def sliced(fn: Callable, args: tuple, batch: int) -> Callable[[int, int], None]:
    """``(lo, hi) -> fn(*args)`` with every array argument cut to the trials ``lo .. hi - 1``
    (views along the first axis, so in-place updates land in the full arrays; empty
    placeholders stay empty); the whole batch is passed as it is."""

    def call(lo: int, hi: int) -> None:
        if lo == 0 and hi == batch:
            fn(*args)
        else:
            fn(*(a[lo:hi] if isinstance(a, np.ndarray) else a for a in args))

    return call


# The row loops, one per case, each inlined whole: a loop with no branch in it vectorizes
# (one with the cases' branches inside ran about 6 times slower).


@kernel(inline="always")
def _filter(eb, z, p, k, omk):
    for i in range(z.shape[0]):
        eb[i] = k * eb[i] + omk * (p * z[i])


@kernel(inline="always")
def _filter_learn(eb, wr, z, p, k, omk, c):
    for i in range(z.shape[0]):
        eb[i] = k * eb[i] + omk * (p * z[i])
        wr[i] = wr[i] - c * eb[i]  # the stored (rounded) e_bar, as in two passes


@kernel(inline="always")
def _filter_alif(eb, ep, z, p, beta, de, k, omk):
    for i in range(z.shape[0]):
        e = p * (z[i] - beta * ep[i])
        ep[i] = p * z[i] + de * ep[i]
        eb[i] = k * eb[i] + omk * e


@kernel(inline="always")
def _update(wr, eb, c):
    for i in range(eb.shape[0]):
        wr[i] = wr[i] - c * eb[i]


@kernel
def _lif_rows(w, zb, e_bar, psi, L, k, omk, lr, learn, recurrent):
    """The synapses of LIF neurons: per post neuron ``j`` of trial ``b``, its eligibility
    filter and (with ``learn``) its weights in one pass over the row. ``zb`` ``[trial, 1 or
    post, pre]``: the presynaptic trace shared by the rows, or each synapse's own."""
    n_b, n_h = psi.shape
    r = zb.shape[1]  # 1: shared; n_h: per synapse (row j % r)
    if not learn:
        for b in range(n_b):
            for j in range(n_h):
                _filter(e_bar[b, j], zb[b, j % r], psi[b, j], k, omk)
        return
    for b in range(n_b):
        for j in range(n_h):
            keep = w[b, j, j] if recurrent else lr
            _filter_learn(e_bar[b, j], w[b, j], zb[b, j % r], psi[b, j], k, omk, lr * L[b, j])
            if recurrent:
                w[b, j, j] = keep  # autapses stay absent (their update is 0)


@kernel
def _alif_rows(w, zb, e_bar, eps, psi, L, k, omk, lr, beta, decay_eps, learn, recurrent):
    """The synapses of ALIF neurons: the adaptation eligibility ``eps`` too, then the weights."""
    n_b, n_h = psi.shape
    r = zb.shape[1]
    for b in range(n_b):
        for j in range(n_h):
            _filter_alif(e_bar[b, j], eps[b, j], zb[b, j % r], psi[b, j], beta, decay_eps[b, j], k, omk)
    if not learn:
        return
    for b in range(n_b):
        for j in range(n_h):
            keep = w[b, j, j] if recurrent else lr
            _update(w[b, j], e_bar[b, j], lr * L[b, j])
            if recurrent:
                w[b, j, j] = keep


@kernel
def _traces(zb, spikes, alpha, z_post):
    """``zb <- alpha * zb + spikes``; with ``z_post`` (per-synapse ``zb``) row ``j`` decays by
    ``alpha * (1 - z_j)``: 0 after the post neuron's reset to zero (``alpha - alpha * z``, exact
    for ``z`` in {0, 1}, needs no float literal)."""
    for b in range(zb.shape[0]):
        for j in range(zb.shape[1]):
            keep = alpha if z_post.size == 0 else alpha - alpha * z_post[b, j]
            for i in range(zb.shape[2]):
                zb[b, j, i] = keep * zb[b, j, i] + spikes[b, i]


@kernel
def hidden_step(w, zb, e_bar, eps, psi, L, spikes, k, omk, lr, beta, decay_eps, alpha, learn, recurrent, z_post):
    """One step of the synapses ``[trial, post j, pre i]`` of one hidden projection, in place:

    * ``e = psi_j * (zb_ji - beta * eps_ji)`` and ``eps <- psi_j * zb_ji + decay_eps_j * eps``
      (ALIF: ``eps`` nonempty; ``decay_eps = rho - psi * beta``), else ``e = psi_j * zb_ji``;
    * ``e_bar <- k * e_bar + omk * e`` (``omk = 1 - k``, rounded once as numpy rounds it);
    * with ``learn``: ``w -= (lr * L_j) * e_bar`` except autapses of a ``recurrent`` projection;
    * then ``zb <- alpha * zb + spikes`` (``spikes`` in the dtype), with ``z_post`` (the post
      neurons' spikes of this step, nonempty when they reset to zero) ``alpha * (1 - z_j)``.

    ``zb`` ``[trial, 1, pre]`` is the presynaptic trace ``z_bar_i`` shared by the rows; ``[trial,
    post, pre]`` the eligibility vector ``eps_v_ji`` of each synapse, which restarts at the post
    neuron's reset to zero. ``psi`` and ``decay_eps`` come in their own dtype (numpy 1's scalar
    rules give float32 from float32 neuron states even at the float level); a product with them
    takes the wider type, as in numpy."""
    if eps.size > 0:
        _alif_rows(w, zb, e_bar, eps, psi, L, k, omk, lr, beta, decay_eps, learn, recurrent)
    else:
        _lif_rows(w, zb, e_bar, psi, L, k, omk, lr, learn, recurrent)
    _traces(zb, spikes, alpha, z_post)


@kernel
def output_step(w_out, z_out, f, z, err, B, kappa, omk, f_decay, lr, learn, adaptive, symmetric):
    """The readout's part of a step, in place: ``z_out <- kappa * z_out + omk * z``, the running
    rate ``f <- f_decay * f + (1 - f_decay) * z`` (:func:`~neurocomp.learning.quantities.running_rate`),
    and with ``learn`` ``W_out[k, j] -= (lr * err_k) * z_out_j``, which adaptive feedback also
    subtracts from ``B[j, k]``; symmetric feedback then copies ``W_out`` into ``B`` (transposed)."""
    n_b, n_out, n_h = w_out.shape
    for b in range(n_b):
        for j in range(n_h):
            z_out[b, j] = kappa * z_out[b, j] + omk * z[b, j]
            f[b, j] = running_rate(f[b, j], z[b, j], f_decay)
        if not learn:
            continue
        for k in range(n_out):
            c = lr * err[b, k]
            for j in range(n_h):
                d = c * z_out[b, j]
                w_out[b, k, j] = w_out[b, k, j] - d
                if adaptive:
                    B[b, j, k] = B[b, j, k] - d
                elif symmetric:
                    B[b, j, k] = w_out[b, k, j]


@kernel
def deliver(w, spikes, lanes, out):
    """``out[b, n] += sum_m w[b, n, m] * spikes[b, m]`` in the weights' dtype, summed in the
    order numpy's ``einsum`` sums it (numpy 1.26 on x86-64: ``lanes`` = 16 bytes of partial
    sums, i.e. 4 float32 or 2 float64; blocks of 4 vectors added last to first, then one
    vector at a time; the lanes combined pairwise), so that the result equals the numpy
    form's bit for bit. Only the spiking columns are visited: a zero term leaves a partial
    sum unchanged (no sum here is ever -0). Each partial sum gets its terms in that order; the
    loop runs over the post neurons innermost (a spiking column's weights at once)."""
    n_b, n_post, n_pre = w.shape
    order = np.empty(n_pre, np.int64)  # the spiking columns, lane by lane in summation order
    start = np.zeros(lanes + 1, np.int64)
    acc = np.empty((lanes, n_post), w.dtype)
    zero = w.dtype.type(0)
    block = 4 * lanes
    full = n_pre - n_pre % block
    for b in range(n_b):
        k = 0
        for lane in range(lanes):
            start[lane] = k
            for m0 in range(0, full, block):
                for u in range(3, -1, -1):
                    m = m0 + u * lanes + lane
                    if spikes[b, m]:
                        order[k] = m
                        k += 1
            for m in range(full + lane, n_pre, lanes):
                if spikes[b, m]:
                    order[k] = m
                    k += 1
        start[lanes] = k
        if k == 0:
            continue
        wb = w[b]
        for lane in range(lanes):  # each lane's partial sums of all post neurons, column by column
            a = acc[lane]
            a[:] = zero
            for q in range(start[lane], start[lane + 1]):
                m = order[q]
                s = spikes[b, m]
                for n in range(n_post):
                    a[n] = wb[n, m] * s + a[n]
        for n in range(n_post):
            total = acc[0, n] + acc[1, n]
            if lanes == 4:
                total = (acc[0, n] + acc[1, n]) + (acc[2, n] + acc[3, n])
            out[b, n] = out[b, n] + (zero + total)
