"""Mapping a time constant to a chip's per-step decay, as the profile represents it.

The exact per-step factor of ``tau dx/dt = -x`` at step ``dt`` is ``exp(-dt/tau)``; each
representation can hold only some factors, and :func:`choose_decay` picks the code whose
factor is closest to the exact one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .formats import DecayFormat


@dataclass(frozen=True)
class DecayChoice:
    """A decay as realized on a chip.

    ``exact``: ``exp(-dt/tau)``; ``code``: the register value (``None`` for ``exact``
    representations); ``factor``: the per-step factor the code realizes; ``clipped``: the
    closest code lay outside the register range, so the nearest end of the range is used.
    """

    tau_ms: float | None
    dt_ms: float
    exact: float
    code: int | None
    factor: float
    clipped: bool = False

    @property
    def realized_tau_ms(self) -> float:
        """The time constant the realized factor corresponds to (0: full decay, inf: none)."""
        if self.factor <= 0.0:
            return 0.0
        if self.factor >= 1.0:
            return math.inf
        return self.dt_ms / -math.log(self.factor)

    @property
    def abs_error(self) -> float:
        return abs(self.factor - self.exact)


def decay_factor(fmt: DecayFormat, code: int | None, role: str = "voltage") -> float:
    """The per-step factor a register ``code`` realizes (``role`` is ``current`` or ``voltage``,
    which matters for the offsets of a ``multiplicative`` decay)."""
    if fmt.representation == "exact":
        raise ValueError("an exact decay has no code")
    assert code is not None
    if fmt.representation == "multiplicative":
        offset = fmt.current_offset if role == "current" else fmt.voltage_offset
        return max(0.0, (2**fmt.bits - code - offset) / 2**fmt.bits)
    if fmt.representation == "multiplier":
        return code / 2 ** (fmt.bits - 1)
    if fmt.representation == "bitshift":
        return 1.0 - 2.0**-code
    raise ValueError(f"unknown decay representation {fmt.representation!r}")


def choose_decay(fmt: DecayFormat, tau_ms: float | None, dt_ms: float, role: str = "voltage") -> DecayChoice:
    """The code whose factor is closest to ``exp(-dt/tau)``. ``tau_ms=None`` means no state
    carried over between steps (factor 0: a delta synapse)."""
    exact = 0.0 if tau_ms is None else math.exp(-dt_ms / tau_ms)
    if fmt.representation == "exact":
        return DecayChoice(tau_ms, dt_ms, exact, None, exact)
    hi = 2**fmt.bits - 1
    if fmt.representation == "multiplicative":
        # factor = (2^B - code - offset) / 2^B is linear in code, so rounding gives the argmin
        offset = fmt.current_offset if role == "current" else fmt.voltage_offset
        code = math.floor(2**fmt.bits * (1.0 - exact) - offset + 0.5)
    elif fmt.representation == "multiplier":
        code = math.floor(exact * 2 ** (fmt.bits - 1) + 0.5)
    else:  # bitshift: 1 - 2^-dash is monotone in dash; search the small register range
        code = min(range(hi + 1), key=lambda d: abs(1.0 - 2.0**-d - exact))
    clipped = not 0 <= code <= hi
    code = min(max(code, 0), hi)
    return DecayChoice(tau_ms, dt_ms, exact, code, decay_factor(fmt, code, role), clipped)
