"""Rounding of real values to integers by named mode (integer shifts and decays are in
:mod:`neurocomp.arith.fixed`).

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
