"""The learning quantities that several rules and levels share, each defined once.

* :func:`pseudo_derivative`: e-prop's surrogate of the spike's derivative, the triangle
  ``max(0, 1 - |v - A| / v_th)`` (``eprop.md`` §1.1), before its ``gamma / v_th`` factor. A
  compiled kernel: it runs on numpy arrays or scalars from Python and inside other kernels,
  in the dtype of ``v`` (float32 on a programmable core, float64 in the references);
  :func:`pseudo_derivative_fixed` is the same triangle as a chip's neuron sends it (an
  integer, rounded to nearest), and :func:`graded_fixed` the rounding and saturation of a
  signed graded value (the learning signal) on such a chip.
* :func:`softmax_error`: the softmax cross-entropy's error ``softmax(y) - y*`` (``dE/dy``
  for a one-hot target), from :func:`softmax`, max-subtracted. numpy (its ``exp`` is not the compiled one's bit
  for bit, so the levels that must agree with each other call this one function);
  :func:`ce_error_fixed` is the same quantity in the error units' integer arithmetic
  (:func:`ce_error_params` its tables, :func:`ce_error_exact` its float level).
* the **running rate** of rate regularization, ``f <- d f + (1 - d) z`` (spikes per step,
  ``d = exp(-dt / tau)``, ``tau`` the rule's ``reg_tau_ms``): :func:`rate_decay` and
  :func:`running_rate` in float, :func:`rate_shift` and :func:`running_rate_fixed` the chip's
  integer form of the same trace (``d = 1 - 2**-shift``, ``2**shift`` the nearest power of two
  to ``tau / dt`` steps). Every level (the online reference, a programmable core, the learning
  engine's neuron) keeps this one trace, updated with the step's spikes before it is read.
* the **online learning signal** every level applies at every step ``t``:
  ``L_j^t = sum_k B_jk err_k^t + reg (f_j^t - f0)``, ``err^t`` the step's error (``y - y*``, or
  :func:`softmax_error` on a labelled step of the ce loss, not divided by the number of
  labelled steps; 0 on a step without target) and :func:`rate_regularization` the rate term
  (on every step, labelled or not); the update is ``dW_ji = -lr L_j^t e_bar_ji^t``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numba.core import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from ..kernels import kernel

__all__ = ["feedback_matrix", "floor_loss", "floor_offset", "graded_fixed", "pseudo_derivative",
           "pseudo_derivative_fixed", "rate_decay", "rate_regularization", "rate_shift", "running_rate",
           "running_rate_fixed", "softmax", "softmax_error"]


def _like(x, ref):
    """``x`` in the float dtype of ``ref`` (Python form; kernels use the overload below)."""
    dt = np.result_type(ref)
    return np.asarray(x, dt) if np.ndim(x) else dt.type(x)


@overload(_like)
def _like_kernel(x, ref):
    rdt = ref.dtype if isinstance(ref, types.Array) else ref
    dt = as_dtype(rdt)
    cast = dt.type
    if isinstance(x, types.Array):
        if x.dtype == rdt:
            return lambda x, ref: x
        return lambda x, ref: x.astype(dt)
    return lambda x, ref: cast(x)


@kernel
def pseudo_derivative(v, A, v_th):
    """``max(0, 1 - |v - A| / v_th)``: 1 at the threshold ``A`` (``v_th``, or the adaptive
    ``v_th + beta a`` of an ALIF), 0 beyond ``v_th`` from it; ``v``, ``A``, ``v_th`` in model
    voltage units (arrays broadcast, or scalars). Computed and returned in the dtype of ``v``
    (``A`` and ``v_th`` are cast to it), each operation rounded once, as numpy rounds it."""
    one = _like(1.0, v)
    return np.maximum(one - one, one - np.abs(v - _like(A, v)) / _like(v_th, v))


@kernel
def pseudo_derivative_fixed(v, A, v_th, top):
    """The pseudo-derivative as a chip's neuron sends it: the integer ``round(top * max(0,
    v_th - |v - A|) / v_th)`` (to nearest, unbiased; ``top = 2**trace_bits - 1``), the triangle
    of :func:`pseudo_derivative` in the neuron's integer units (``v``, ``A``, ``v_th``: integers
    held in float64; arrays or scalars). Float64."""
    return np.floor(top * np.maximum(0.0, v_th - np.abs(v - A)) / v_th + 0.5)


@kernel
def graded_fixed(x, top):
    """A graded value as a chip's neuron sends it in a signed ``log2(top) + 1``-bit payload:
    rounded to nearest (a floor would bias it down), saturated to ``[-top, top - 1]``."""
    return np.minimum(np.maximum(np.floor(x + 0.5), -top), top - 1)


@kernel
def floor_offset(t, j, of, value, count, period):
    """The dither a neuron ``j`` sends at step ``t`` to offset the learning engine's floor of a
    product ``m * f * of`` wider than the accumulator (``m * f * of >> s`` loses ``(m f of mod
    2^s) / 2^s`` of a unit, about a half on average, always downwards): ``value`` (``2^s``, one
    unit once the engine shifts the offset's own product by ``s``) on ``count`` of every
    ``period`` steps, spread evenly (a phase accumulator: the steps ``n = t + j`` where
    ``n * count mod period >= period - count``), where ``of != 0`` (the floor acts only on a
    nonzero product), else 0. Its mean, ``value * count / period``, is the floor's mean loss
    when the product is uniform modulo ``2^s`` (:func:`floor_loss`). Integers or arrays."""
    return value * ((((t + j) * count) % period >= period - count) & (of != 0))


def floor_loss(mantissa: int, shift: int) -> tuple[int, int]:
    """The mean loss of the engine's floor ``m * x >> shift`` over ``x`` uniform modulo
    ``2^shift``, as ``(count, period)`` of one unit: ``m x mod 2^shift`` takes the multiples of
    ``g = gcd(m, 2^shift)`` below ``2^shift`` equally often, so the mean is
    ``(2^shift - g) / 2`` units of ``2^-shift``, i.e. ``(2^shift - g) / 2^(shift + 1)`` of a unit
    (``m = -6``, ``shift = 5``: 15/32)."""
    g = math.gcd(abs(int(mantissa)), 2**shift)
    return (2**shift - g) // g, 2 ** (shift + 1) // g


def softmax(y: np.ndarray) -> np.ndarray:
    """``exp(y) / sum exp(y)`` over the last axis, in the dtype of ``y``, max-subtracted
    (every ``exp`` <= 1: no overflow)."""
    p = np.exp(y - y.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def softmax_error(y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``softmax(y) - target`` over the last axis: the softmax cross-entropy's ``dE/dy`` for
    one-hot (or probability) targets."""
    return softmax(y) - target


RATE_TAU_MS = 1000.0  # rate regularization's default time constant (``reg_tau_ms``): a ~1 s running rate


def rate_decay(tau_ms: float, dt_ms: float) -> float:
    """The running rate's decay per step, ``exp(-dt / tau)`` (``tau_ms``, ``dt_ms`` in ms)."""
    return math.exp(-float(dt_ms) / float(tau_ms))


def rate_shift(tau_ms: float, dt_ms: float) -> int:
    """The running rate's decay on a chip, as a right shift: ``d = 1 - 2**-shift`` with
    ``2**shift`` the power of two nearest to ``tau / dt`` steps (in log2), at least 1
    (``tau = 1000 ms`` at 1 ms: 10, i.e. 1024 steps)."""
    return max(1, round(math.log2(float(tau_ms) / float(dt_ms))))


@kernel
def running_rate(f, z, decay):
    """One step of the running rate in float: ``f <- decay f + (1 - decay) z`` (``f`` in spikes
    per step; ``z`` the step's spikes, 0 or 1; ``decay`` from :func:`rate_decay`, or
    ``1 - 2**-shift`` for a level that runs the chip's decay in float). In the dtype of ``f``."""
    d = _like(decay, f)
    return d * f + (_like(1.0, f) - d) * _like(z, f)


@kernel
def running_rate_fixed(r, z, shift, bits):
    """:func:`running_rate` in the chip's integer arithmetic: ``r`` the rate in units of
    ``2**-bits`` spikes per step, ``r <- r - (r >> shift) + (z << (bits - shift))`` (a floor
    shift). The floor cannot lower ``r`` below ``2**shift``: rates below ``2**(shift - bits)``
    per step read wrong, so ``bits`` must make that small. Integer-valued float64 arrays in and out."""
    return r - np.floor(r * 2.0**-shift) + z * 2.0 ** (bits - shift)


def feedback_matrix(seed: int, sizes: list[int] | tuple[int, ...], n_out: int) -> list[np.ndarray]:
    """Random e-prop feedback ``B ~ N(0, 1/n)`` ``[n, n_out]`` (Bellec's tutorial scaling), drawn
    once from ``seed`` for the union of the hidden populations (``sizes`` in the network's
    declaration order, ``n`` their sum) and split by rows: one block per population. Every level
    (the reference, a learning engine's feedback projections, a programmable core's learner)
    takes its ``B`` from here, so a hidden neuron gets the same feedback everywhere."""
    n = int(sum(sizes))
    B = np.random.default_rng(int(seed)).standard_normal((n, int(n_out))) / math.sqrt(n)
    edges = np.cumsum([0, *sizes])
    return [B[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


@kernel
def rate_regularization(f, f0, reg):
    """The rate regularizer's term of the online learning signal, ``reg * (f - f0)`` (``f`` the
    running rate and ``f0`` its target, spikes per step), added on every step; in the dtype of
    ``f``. (A chip's neuron computes the same in its integer units: ``rules.eprop``.)"""
    return _like(reg, f) * (f - _like(f0, f))


# -- softmax cross-entropy in the error units' integer arithmetic ------------------------------
CE_EXP_FRAC_BITS = 6  # the base-2 exponent is kept to 1/64 of an octave
CE_EXP_ONE = 15  # exp LUT entries are Q15: 2**15 is 1.0
CE_RECIP_BITS = 8  # the sum is normalized to an 8-bit mantissa before its reciprocal
CE_RECIP_FRAC = 15  # reciprocal LUT entries carry 15 fraction bits


def recip_lut(pmax: int) -> tuple[int, ...]:
    """The reciprocal table of the error units' integer divisions (:func:`lut_divide`):
    ``round(pmax * 2**15 / (128 + i))`` for the 128 8-bit mantissas ``128 + i``."""
    half = 2 ** (CE_RECIP_BITS - 1)
    return tuple(round(pmax * 2.0**CE_RECIP_FRAC / (half + i)) for i in range(half))


def lut_divide(num, den, lut) -> np.ndarray:
    """``pmax * num / den`` in integers, as the error units divide (``lut = recip_lut(pmax)``,
    ``den >= 1``): ``den`` normalized to an 8-bit mantissa ``m = den >> n`` (``n = bitlen(den) -
    8``, a left shift when negative), then ``(num * lut[m - 128] + 2**(n + 14)) >> (n + 15)``.
    The truncated mantissa makes the quotient up to 0.8% high; no division."""
    num, den = np.asarray(num, dtype=np.int64), np.asarray(den, dtype=np.int64)
    n = np.vectorize(lambda x: int(x).bit_length(), otypes=[np.int64])(den) - CE_RECIP_BITS
    m = np.where(n >= 0, den >> np.maximum(n, 0), den << np.maximum(-n, 0))
    r = np.asarray(lut, dtype=np.int64)[m - 2 ** (CE_RECIP_BITS - 1)]
    s = n + CE_RECIP_FRAC
    return (num * r + (np.int64(1) << (s - 1))) >> s


def ce_error_params(scale_exp: int, bits: int) -> dict:
    """The integer tables of a softmax cross-entropy error unit (:func:`ce_error_fixed`): the
    readout's voltages ``v`` are integers with ``2**scale_exp`` per model unit; the payload is
    ``bits``-bit signed with ``P = 2**(bits-1) - 1`` standing for an error of 1.0."""
    F = CE_EXP_FRAC_BITS
    shift = max(0, int(scale_exp) - F + 15)  # keeps ~16 significant bits in the multiplier
    mult = round(math.log2(math.e) * 2.0 ** (F + shift - int(scale_exp)))
    pmax = 2 ** (bits - 1) - 1
    return {
        "loss": "ce",
        "exp_frac_bits": F,
        "exp_mult": int(mult),
        "exp_shift": int(shift),
        "exp_lut": tuple(round(2.0**CE_EXP_ONE * 2.0 ** (-f / 2**F)) for f in range(2**F)),
        "recip_bits": CE_RECIP_BITS,
        "recip_lut": recip_lut(pmax),
        "payload_max": pmax,
    }


def ce_error_fixed(v, onehot, valid, prm: Mapping[str, Any]) -> np.ndarray:
    """``softmax(y) - onehot`` as the error units compute it in integers, ``[batch, n]`` payloads
    (rows where ``valid`` is False: 0, no learning): the integer form of
    :func:`~neurocomp.learning.quantities.softmax_error` (:func:`ce_error_exact` is its float
    level). Per trial, over the readout units ``k``:

    1. ``d_k = max_j v_j - v_k`` (>= 0): the max-subtracted softmax, so every exponential is <= 1;
    2. ``t_k = (d_k * exp_mult) >> exp_shift``: ``d_k * log2(e) / 2**scale_exp`` in units of
       ``2**-F`` (``F = exp_frac_bits`` = 6), floored;
    3. ``E_k = exp_lut[t_k mod 2**F] >> (t_k >> F)``: ``2**(-t_k / 2**F)`` in Q15 from a 64-entry
       table and a shift (``E`` of the largest unit is 32768);
    4. ``S = sum_k E_k``, normalized to an 8-bit mantissa ``m = S >> n`` (``n = bitlen(S) - 8``);
    5. ``q_k = (E_k * recip_lut[m - 128] + 2**(n + 14)) >> (n + 15)``, at most ``P``, with
       ``recip_lut[i] = round(P * 2**15 / (128 + i))``: ``P * E_k / S`` rounded;
    6. ``e_k = q_k - P * onehot_k``.

    Precision: step 2 floors the exponent to 1/64 octave (E up to 1.1% high), step 4 truncates
    S to 8 bits (1/S up to 0.8% high), step 5 rounds to the payload's LSB (``1/P``); all
    integer, no division. The payload is within 2 LSB of ``P * softmax`` (measured over random
    readouts: see the tests)."""
    v = np.asarray(v, dtype=np.int64)
    F = int(prm["exp_frac_bits"])
    d = v.max(axis=-1, keepdims=True) - v
    t = (d * int(prm["exp_mult"])) >> int(prm["exp_shift"])
    lut = np.asarray(prm["exp_lut"], dtype=np.int64)
    E = lut[t & (2**F - 1)] >> np.minimum(t >> F, 62)
    S = E.sum(axis=-1, keepdims=True)
    pmax = int(prm["payload_max"])
    q = np.minimum(lut_divide(E, S, prm["recip_lut"]), pmax)
    e = q - pmax * np.asarray(onehot, dtype=np.int64)
    return np.where(np.asarray(valid, dtype=bool)[..., None], e, 0)


def ce_error_exact(v, onehot, valid, scale_exp: int, pmax: int) -> np.ndarray:
    """The float level of :func:`ce_error_fixed`: ``P * (softmax(v / 2**scale_exp) - onehot)``
    (:func:`~neurocomp.learning.quantities.softmax_error`, the exact exponential and
    division; 0 where not ``valid``)."""
    y = np.asarray(v, dtype=np.float64) * 2.0**-scale_exp
    e = pmax * softmax_error(y, np.asarray(onehot, dtype=np.float64))
    return np.where(np.asarray(valid, dtype=bool)[..., None], e, 0.0)
