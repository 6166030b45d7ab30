"""Integer arithmetic of a chip, as its profile describes it: decays, overflow and shifts.

The integers are carried in float64 arrays. Every integer of magnitude below 2**53 is
exactly representable there, and so are the results of the operations used here: sums and
products of such integers that stay below 2**53, multiplication by a power of two, and
``floor``/``trunc``/``mod``. The widest intermediate of the profiles here is a 24-bit state
times a 13-bit decay factor (< 2**37); the emulator checks its bounds when it is built
(:func:`exact_in_float64`). Float64 rather than int64 because numpy's float kernels are
several times faster on a batch (no ``sign``/``abs``/shift temporaries), with identical
results. Integer arrays are accepted as input; results are float64 holding integers.
"""

from __future__ import annotations

import numpy as np

from .formats import DecayFormat, StateFormat

FLOAT64_EXACT = 2**53


def exact_in_float64(bound: int) -> bool:
    """Whether integers up to ``bound`` in magnitude are exact in float64."""
    return bound < FLOAT64_EXACT


class OverflowDetected(ArithmeticError):
    """An integer left its range in strict mode; ``index`` locates the first element."""

    def __init__(self, value: int, lo: int, hi: int, index: tuple[int, ...]):
        self.value, self.lo, self.hi, self.index = value, lo, hi, index
        super().__init__(f"value {value} outside [{lo}, {hi}]")


def decay_multiplier(fmt: DecayFormat, code, role: str = "voltage") -> tuple[np.ndarray | float, int]:
    """The integer factor of one step of leak and the power of two it is divided by:
    ``multiplicative`` (Loihi) ``(2**B - code - offset, B)``; ``multiplier`` ``(code, B - 1)``."""
    b = fmt.bits
    if fmt.representation == "multiplicative":
        offset = fmt.current_offset if role == "current" else fmt.voltage_offset
        return 2**b - np.asarray(code, dtype=np.float64) - offset, b
    if fmt.representation == "multiplier":
        return np.asarray(code, dtype=np.float64), b - 1
    raise ValueError(f"decay: {fmt.representation!r} has no multiplier")


def decay(x: np.ndarray, fmt: DecayFormat, code, role: str = "voltage", rng: np.random.Generator | None = None):
    """One step of leak ``x <- x * factor(code)`` in the profile's representation and rounding.

    ``multiplicative`` (Loihi): ``x * (2**B - code - offset)``, then divided by ``2**B`` with
    ``rounding`` (``toward_zero`` is Lava's ``sign(p) * (|p| >> 12)``). ``multiplier``:
    ``x * code / 2**(B-1)``. ``bitshift``: ``x - (x >> code)``, the step at least
    ``min_step`` in magnitude while ``x != 0``. ``code`` may be a scalar or an array.
    """
    if fmt.representation in ("multiplicative", "multiplier"):
        k, n = decay_multiplier(fmt, code, role)
        # x * k < 2**53 and the power-of-two scale is exact, so y is the exact quotient
        return round_scaled(x * (k * 2.0**-n), fmt.rounding, rng)
    if fmt.representation == "bitshift":
        step = round_scaled(x * np.exp2(-np.asarray(code, dtype=np.float64)), fmt.rounding, rng)
        if fmt.min_step:
            small = (x != 0) & (np.abs(step) < fmt.min_step)
            step = np.where(small, np.sign(x) * fmt.min_step, step)
        return x - step
    raise ValueError(f"decay: no integer form for representation {fmt.representation!r}")


def round_scaled(y: np.ndarray, rounding: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Round the exact quotient ``y = p / 2**n`` of an integer ``p`` to an integer:
    ``toward_zero`` (sign-magnitude shift, Lava's decays), ``floor`` (arithmetic shift:
    -1/2 -> -1), ``nearest`` (half away from zero) or ``stochastic`` (up with probability
    equal to the fraction, one uniform draw from ``rng`` per element)."""
    if rounding == "toward_zero":
        return np.trunc(y)
    if rounding == "floor":
        return np.floor(y)
    if rounding == "nearest":
        return np.copysign(np.floor(np.abs(y) + 0.5), y)
    if rounding == "stochastic":
        if rng is None:
            raise ValueError("stochastic rounding needs a random generator")
        lo = np.floor(y)
        return lo + (rng.random(np.shape(y)) < (y - lo))
    raise ValueError(f"unknown rounding {rounding!r}")


def overflow(x: np.ndarray, fmt: StateFormat, strict: bool = False, inplace: bool = False) -> np.ndarray:
    """Bring ``x`` back into ``fmt``'s range as the profile says (``wrap``, ``wrap_once``,
    ``saturate``); with ``strict``, raise :class:`OverflowDetected` instead. ``inplace``
    lets saturation overwrite ``x`` (a float64 ``x`` the caller owns)."""
    lo, hi = fmt.int_range()
    if x.size == 0:
        return x
    if fmt.overflow == "saturate" and not strict and inplace:  # one pass each way, no reductions
        np.minimum(x, hi, out=x)
        return np.maximum(x, lo, out=x)
    x_min, x_max = x.min(), x.max()  # two reductions: the common in-range case builds no masks
    if fmt.overflow == "wrap_once":
        # Lava's u: one correction, applied when u > 2^(b-1) or u <= -2^(b-1) (not [lo, hi]).
        half = 2 ** (fmt.bits - 1)
        if -half < x_min and x_max <= half:
            return x
        over, under = x > half, x <= -half
        if strict and (over.any() or under.any()):
            _raise_first(x, over | under, lo, hi)
        return x - (2 * half) * over + (2 * half) * under
    if lo <= x_min and x_max <= hi:
        return x
    bad = (x < lo) | (x > hi)
    if strict:
        _raise_first(x, bad, lo, hi)
    if fmt.overflow == "saturate":
        return np.clip(x, lo, hi)
    span = 2**fmt.bits
    return np.mod(x - lo, span) + lo  # wrap into [lo, hi] (two's complement)


def _raise_first(x: np.ndarray, bad: np.ndarray, lo: int, hi: int) -> None:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise OverflowDetected(int(x[idx]), lo, hi, idx)


def shift(x: np.ndarray, n, rounding: str = "floor") -> np.ndarray:
    """``x * 2**n`` for an integer exponent ``n`` (scalar or broadcastable array): exact
    for ``n >= 0``, rounded by ``rounding`` for ``n < 0`` (``floor`` is an arithmetic
    right shift)."""
    n = np.asarray(n)
    if n.ndim == 0 and n >= 0:
        return x * float(2 ** int(n))
    scaled = x * np.exp2(n.astype(np.float64))
    if n.ndim == 0:
        return round_scaled(scaled, rounding)
    return np.where(n >= 0, scaled, round_scaled(scaled, rounding))
