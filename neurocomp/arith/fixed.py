"""Integer arithmetic of a chip, as its profile describes it: decays, overflow and shifts.

All functions work on int64 numpy arrays (wide enough for every intermediate product of the
profiles here: a 24-bit state times a 12-bit decay is below 2**37) and return int64.
"""

from __future__ import annotations

import numpy as np

from ..profiles.profile import DecayFormat, StateFormat


class OverflowDetected(ArithmeticError):
    """An integer left its range in strict mode; ``index`` locates the first element."""

    def __init__(self, value: int, lo: int, hi: int, index: tuple[int, ...]):
        self.value, self.lo, self.hi, self.index = value, lo, hi, index
        super().__init__(f"value {value} outside [{lo}, {hi}]")


def decay(x: np.ndarray, fmt: DecayFormat, code, role: str = "voltage", rng: np.random.Generator | None = None):
    """One step of leak ``x <- x * factor(code)`` in the profile's representation and rounding.

    ``multiplicative`` (Loihi): ``x * (2**B - code - offset)``, then divided by ``2**B`` with
    ``rounding`` (``toward_zero`` is Lava's ``sign(p) * (|p| >> 12)``). ``multiplier``:
    ``x * code / 2**(B-1)``. ``bitshift``: ``x - (x >> code)``, the step at least
    ``min_step`` in magnitude while ``x != 0``. ``code`` may be a scalar or an array.
    """
    b = fmt.bits
    if fmt.representation == "multiplicative":
        offset = fmt.current_offset if role == "current" else fmt.voltage_offset
        return _div_pow2(x * (2**b - np.asarray(code, dtype=np.int64) - offset), b, fmt.rounding, rng)
    if fmt.representation == "multiplier":
        return _div_pow2(x * np.asarray(code, dtype=np.int64), b - 1, fmt.rounding, rng)
    if fmt.representation == "bitshift":
        step = (
            x >> np.asarray(code, dtype=np.int64) if fmt.rounding == "floor" else _div_pow2(x, code, fmt.rounding, rng)
        )
        if fmt.min_step:
            small = (x != 0) & (np.abs(step) < fmt.min_step)
            step = np.where(small, np.sign(x) * fmt.min_step, step)
        return x - step
    raise ValueError(f"decay: no integer form for representation {fmt.representation!r}")


def _div_pow2(p: np.ndarray, n, rounding: str, rng: np.random.Generator | None) -> np.ndarray:
    if rounding == "toward_zero":
        return np.sign(p) * (np.abs(p) >> n)
    if rounding == "floor":
        return p >> n
    if rounding == "nearest":
        return np.sign(p) * ((np.abs(p) + (1 << (np.asarray(n) - 1))) >> n)
    if rounding == "stochastic":
        if rng is None:
            raise ValueError("stochastic rounding needs a random generator")
        lo = p >> n
        frac = (p - (lo << n)).astype(np.float64) / np.exp2(n)
        return lo + (rng.random(np.shape(p)) < frac)
    raise ValueError(f"unknown rounding {rounding!r}")


def overflow(x: np.ndarray, fmt: StateFormat, strict: bool = False) -> np.ndarray:
    """Bring ``x`` back into ``fmt``'s range as the profile says (``wrap``, ``wrap_once``,
    ``saturate``); with ``strict``, raise :class:`OverflowDetected` instead."""
    lo, hi = fmt.int_range()
    if x.size == 0:
        return x
    x_min, x_max = int(x.min()), int(x.max())  # two reductions: the common in-range case builds no masks
    if fmt.overflow == "wrap_once":
        # Lava's u: one correction, applied when u > 2^(b-1) or u <= -2^(b-1) (not [lo, hi]).
        half = 2 ** (fmt.bits - 1)
        if -half < x_min and x_max <= half:
            return x
        over, under = x > half, x <= -half
        if strict and (over.any() or under.any()):
            _raise_first(x, over | under, lo, hi)
        return np.where(over, x - 2 * half, np.where(under, x + 2 * half, x))
    if lo <= x_min and x_max <= hi:
        return x
    bad = (x < lo) | (x > hi)
    if strict:
        _raise_first(x, bad, lo, hi)
    if fmt.overflow == "saturate":
        return np.clip(x, lo, hi)
    span = 2**fmt.bits
    return (x - lo) % span + lo  # wrap into [lo, hi] (two's complement)


def _raise_first(x: np.ndarray, bad: np.ndarray, lo: int, hi: int) -> None:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise OverflowDetected(int(x[idx]), lo, hi, idx)


def shift(x: np.ndarray, n: int, rounding: str = "floor") -> np.ndarray:
    """``x * 2**n`` for an integer exponent: a left shift, or a right shift rounded by ``rounding``."""
    if n >= 0:
        return x << n
    return _div_pow2(x, -n, rounding, None)
