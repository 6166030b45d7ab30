"""The bit-accurate emulator of compiled Programs."""

from ..learning.engine import LEARN_QUANTITIES
from .emulator import RECORDABLE, Checkpoint, Emulator, EmulatorError, EmulatorOverflowError
from .programmable import NonFiniteWeightsError

__all__ = [
    "LEARN_QUANTITIES",
    "RECORDABLE",
    "Checkpoint",
    "Emulator",
    "EmulatorError",
    "EmulatorOverflowError",
    "NonFiniteWeightsError",
]
