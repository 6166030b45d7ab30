"""The bit-accurate emulator of compiled Programs."""

from .emulator import RECORDABLE, Checkpoint, Emulator, EmulatorError, EmulatorOverflowError

__all__ = ["RECORDABLE", "Checkpoint", "Emulator", "EmulatorError", "EmulatorOverflowError"]
