"""Arithmetic shared by the compiler, the emulator and the float reference: rounding
modes, shifts, overflow handling and the mapping of time constants to a chip's decays.

Everything here is driven by a profile's formats; nothing hard-codes a chip.
"""

from .decay import DecayChoice, choose_decay, decay_factor
from .rounding import round_to_int, shift_right

__all__ = ["DecayChoice", "choose_decay", "decay_factor", "round_to_int", "shift_right"]
