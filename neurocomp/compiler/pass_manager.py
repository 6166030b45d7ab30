"""Running the pipeline: each pass is named, timed, logged and followed by verification
of the IR it produced (MLIR style); the IR can be printed after any pass."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ..errors import Problem
from .context import PassContext
from .errors import InternalCompilerError


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Any, PassContext], Any]
    description: str


@dataclass(frozen=True)
class PassRecord:
    """One line of the pass log: what the pass did and what it cost.

    ``peak_rss_mib``: the process's peak resident memory when the pass ended (monotone over
    the pipeline, so a jump marks the pass that raised it)."""

    name: str
    seconds: float
    peak_rss_mib: float
    notes: tuple[str, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 6),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB elsewhere


class PassManager:
    """Runs ``passes`` in order on an IR, verifying after each."""

    def __init__(self, passes: tuple[Pass, ...], out: TextIO | None = None):
        self.passes = passes
        self.out = out or sys.stdout
        self.log: list[PassRecord] = []

    def run(self, ir: Any, ctx: PassContext) -> Any:
        dump = set(ctx.options.dump_ir_after)
        for p in self.passes:
            n_notes, n_warn = len(ctx.notes), len(ctx.warnings)
            t0 = time.perf_counter()
            result = p.run(ir, ctx)
            seconds = time.perf_counter() - t0
            self._verify(p.name, result)
            self.log.append(
                PassRecord(p.name, seconds, peak_rss_mib(), tuple(ctx.notes[n_notes:]), tuple(ctx.warnings[n_warn:]))
            )
            if p.name in dump or "all" in dump:
                print(f"// ----- IR after {p.name} -----", file=self.out)
                print(result.dump() if hasattr(result, "dump") else repr(result), file=self.out)
            ir = result
        if ctx.options.time_passes:
            print(self.timing_table(), file=self.out)
        return ir

    @staticmethod
    def _verify(name: str, ir: Any) -> None:
        verify = getattr(ir, "verify", None)
        problems = verify() if verify is not None else []
        if problems:
            raise InternalCompilerError(
                [Problem(f"after pass {name!r}", p) for p in problems],
                header=f"IR verification failed after pass {name!r} (a neurocomp bug; please report it)",
            )

    def timing_table(self) -> str:
        total = sum(r.seconds for r in self.log) or 1.0
        lines = [f"{'pass':<16} {'seconds':>9} {'share':>6} {'peak RSS MiB':>13}"]
        for r in self.log:
            lines.append(f"{r.name:<16} {r.seconds:>9.3f} {r.seconds / total:>6.1%} {r.peak_rss_mib:>13.1f}")
        lines.append(f"{'total':<16} {total:>9.3f}")
        return "\n".join(lines)
