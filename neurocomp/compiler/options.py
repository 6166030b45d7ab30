"""Options of one compilation (the CLI flags map onto these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import Problem
from .errors import CompileError

PASS_NAMES = ("validate", "discretize", "drc", "quantize", "lower_learning", "partition", "emit")


@dataclass(frozen=True)
class CompileOptions:
    """Options of :func:`neurocomp.compile`.

    ``dt_ms``: time step in ms (``None``: the profile's default). ``rounding``: how real
    values are rounded to mantissas (``stochastic`` draws from ``seed``). ``strict``: fail
    on any quantization loss that would otherwise only be reported (values clipped,
    thresholds or biases that do not fit, more than ``max_zeroed_fraction`` of a
    projection's nonzero weights becoming zero). ``headroom_bits``: bits of the voltage
    range kept above a threshold for overshoot; ``readout_headroom_bits``: the same for
    non-spiking readouts, in units of their largest input weight. ``firing_rate_hz``: the
    rate assumed by the traffic and energy estimates. ``dump_ir_after``: pass names after
    which the IR is printed; ``time_passes``: print a timing table.
    """

    dt_ms: float | None = None
    rounding: Literal["nearest", "floor", "stochastic"] = "nearest"
    seed: int = 0
    strict: bool = False
    max_zeroed_fraction: float = 0.05
    headroom_bits: int = 2
    readout_headroom_bits: int = 8
    firing_rate_hz: float = 10.0
    dump_ir_after: tuple[str, ...] = field(default_factory=tuple)
    time_passes: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.dt_ms is not None and not (self.dt_ms > 0):
            problems.append(f"dt_ms: must be > 0, got {self.dt_ms!r}")
        if self.rounding not in ("nearest", "floor", "stochastic"):
            problems.append(f"rounding: {self.rounding!r} is not one of nearest, floor, stochastic")
        if not 0.0 <= self.max_zeroed_fraction <= 1.0:
            problems.append(f"max_zeroed_fraction: must be in [0, 1], got {self.max_zeroed_fraction!r}")
        if self.headroom_bits < 0 or self.readout_headroom_bits < 0:
            problems.append("headroom_bits and readout_headroom_bits must be >= 0")
        if self.firing_rate_hz < 0:
            problems.append(f"firing_rate_hz: must be >= 0, got {self.firing_rate_hz!r}")
        object.__setattr__(self, "dump_ir_after", tuple(self.dump_ir_after))
        for name in self.dump_ir_after:
            if name not in PASS_NAMES and name != "all":
                problems.append(f"dump_ir_after: unknown pass {name!r} (passes: {', '.join(PASS_NAMES)}, all)")
        if problems:
            raise CompileError([Problem("compile options", p) for p in problems])
