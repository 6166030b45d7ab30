"""Errors raised while compiling."""

from __future__ import annotations

from ..errors import NeurocompError


class CompileError(NeurocompError, ValueError):
    """The network cannot be compiled for the profile."""

    kind = "compile"


class DRCError(CompileError):
    """The design-rule check found violations (all of them are listed)."""

    kind = "design-rule"


class QuantizationError(CompileError):
    """Quantization lost more than allowed (``strict`` mode)."""

    kind = "quantization"


class PartitionError(CompileError):
    """The network does not fit the chip system."""

    kind = "partition"


class ProgramError(NeurocompError, ValueError):
    """A Program file cannot be loaded (truncated, corrupted, newer format, other profile)."""

    kind = "program"


class InternalCompilerError(NeurocompError, RuntimeError):
    """The IR failed verification after a pass: a bug in neurocomp, not in the model."""

    kind = "internal"
