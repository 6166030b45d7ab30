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
  :func:`neurocomp.rules.eprop.ce_error_fixed` is the same quantity in the error units'
  integer arithmetic.
* the **running rate** of rate regularization, ``f <- d f + (1 - d) z`` (spikes per step,
  ``d = exp(-dt / tau)``, ``tau`` the rule's ``reg_tau_ms``): :func:`rate_decay` and
  :func:`running_rate` in float, :func:`rate_shift` and :func:`running_rate_fixed` the chip's
  integer form of the same trace (``d = 1 - 2**-shift``, ``2**shift`` the nearest power of two
  to ``tau / dt`` steps). Every level (the online reference, a programmable core, the learning
  engine's neuron) keeps this one trace.
"""

from __future__ import annotations

import math

import numpy as np
from numba.core import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from ..kernels import kernel

__all__ = ["graded_fixed", "pseudo_derivative", "pseudo_derivative_fixed", "rate_decay", "rate_shift", "running_rate",
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
