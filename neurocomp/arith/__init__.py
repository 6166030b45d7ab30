"""Arithmetic shared by the compiler, the emulator and the float reference: rounding
modes, shifts, overflow handling and the mapping of time constants to a chip's decays.

Everything here is driven by a profile's formats; nothing hard-codes a chip.
"""

from .decay import DecayChoice, choose_decay, decay_factor
from .fixed import OverflowDetected, decay, exact_in_float64, overflow, round_scaled, shift
from .rounding import round_to_int

__all__ = [
    "DecayChoice",
    "OverflowDetected",
    "choose_decay",
    "decay",
    "decay_factor",
    "exact_in_float64",
    "overflow",
    "round_scaled",
    "round_to_int",
    "shift",
]
