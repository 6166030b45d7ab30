"""Rounding of real values to integers, and integer right shifts, by named mode.

Modes (the profile's ``Rounding``): ``nearest`` (half away from zero, so the result does
not depend on the sign), ``floor``, ``toward_zero`` and ``stochastic`` (up with
probability equal to the fractional part; needs a ``numpy.random.Generator``).
"""

from __future__ import annotations

import numpy as np


def round_to_int(x: np.ndarray | float, mode: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Round ``x`` to integers (returned as int64) with ``mode``."""
    x = np.asarray(x, dtype=np.float64)
    if mode == "nearest":
        out = np.sign(x) * np.floor(np.abs(x) + 0.5)
    elif mode == "floor":
        out = np.floor(x)
    elif mode == "toward_zero":
        out = np.trunc(x)
    elif mode == "stochastic":
        if rng is None:
            raise ValueError("stochastic rounding needs a seeded numpy Generator")
        lo = np.floor(x)
        out = lo + (rng.random(x.shape) < (x - lo))
    else:
        raise ValueError(f"unknown rounding mode {mode!r}")
    return out.astype(np.int64)


def shift_right(x: np.ndarray, n: int, mode: str) -> np.ndarray:
    """``x / 2**n`` for integer arrays, rounded by ``mode`` (``floor``: arithmetic shift;
    ``toward_zero``: sign-magnitude shift, as Loihi's decays). ``n <= 0`` shifts left."""
    x = np.asarray(x, dtype=np.int64)
    if n <= 0:
        return x << -n
    if mode == "floor":
        return x >> n
    if mode == "toward_zero":
        return np.sign(x) * (np.abs(x) >> n)
    if mode == "nearest":
        return np.sign(x) * ((np.abs(x) + (1 << (n - 1))) >> n)
    raise ValueError(f"shift_right: unsupported rounding mode {mode!r}")
