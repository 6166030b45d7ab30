"""The payload of e-prop's linear (mean squared error) error units, one call per step.

``e = clip(floor((v - round(target * 2**scale)) * 2**-shift + 0.5), -2**(bits-1), 2**(bits-1) - 1)``
in the readout's integer units (the half LSB rounds to nearest: a floor alone would bias
every error down), or ``v - target`` in float32 on a float chip. No target, or a trial whose
target row holds a NaN: an error of 0 (no learning)."""

from __future__ import annotations

import numpy as np

from . import kernel


@kernel
def _no_target(target, has_target, b) -> bool:
    """Whether trial ``b`` has no target this step (none given, or a NaN in its row)."""
    if not has_target:
        return False
    nan = False
    for i in range(target.shape[1]):
        nan |= np.isnan(target[b, i])
    return nan


@kernel
def error_fixed(v, target, has_target, scale, shift, lim, out):
    """``out[b, i]`` from the readout's ``v[b, i]`` (integers in float64) and ``target[b, i]``
    (model units); ``scale``/``shift`` are ``2**scale_exp`` and ``2**-shift``; ``lim`` is
    ``2**(bits-1)``."""
    for b in range(v.shape[0]):
        nan = _no_target(target, has_target, b)
        for i in range(v.shape[1]):
            if nan:
                out[b, i] = 0.0
                continue
            tgt = np.rint(target[b, i] * scale) if has_target else 0.0  # half to even, as numpy's round
            out[b, i] = min(max(np.floor((v[b, i] - tgt) * shift + 0.5), -lim), lim - 1.0)


@kernel
def error_float(v, target, has_target, out):
    """``out = v - target`` in float32 (0 for a trial with a NaN in its target row)."""
    for b in range(v.shape[0]):
        nan = _no_target(target, has_target, b)
        for i in range(v.shape[1]):
            if nan:
                out[b, i] = 0.0
            elif has_target:
                out[b, i] = v[b, i] - np.float32(target[b, i])
            else:
                out[b, i] = v[b, i]


@kernel
def error_exact(v, target, has_target, scale, inv_scale, shift, out):
    """The exact error of a fixed chip's error unit (attribution ``graded``, lowered-float):
    ``out = (v - target * scale) * shift``, the target not rounded, no rounding, no saturation;
    ``scale``/``inv_scale``/``shift`` are ``2**scale_exp``, ``2**-scale_exp`` and ``2**-shift``.
    A trial with a NaN in its target row reads the readout's own value (an error of 0)."""
    for b in range(v.shape[0]):
        nan = _no_target(target, has_target, b)
        for i in range(v.shape[1]):
            if not has_target:
                exact = 0.0
            elif nan:
                exact = (v[b, i] * inv_scale) * scale
            else:
                exact = target[b, i] * scale
            out[b, i] = (v[b, i] - exact) * shift
