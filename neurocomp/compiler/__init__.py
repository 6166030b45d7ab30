"""The compiler: ``compile(network, profile, **options) -> Program``.

The pipeline is ``validate -> discretize -> drc -> quantize -> lower_learning ->
partition -> emit``; each pass is a pure function from one IR to the next
(:mod:`neurocomp.compiler.ir`), verified after it runs.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from ..graph import Network, load_network
from ..profiles import Profile, load_profile
from .context import PassContext
from .errors import CompileError, DRCError, InternalCompilerError, PartitionError, ProgramError, QuantizationError
from .options import PASS_NAMES, CompileOptions
from .pass_manager import Pass, PassManager, PassRecord
from .passes import discretize, drc, emit, lower_learning, partition, quantize, validate
from .program import Program

PIPELINE: tuple[Pass, ...] = (
    Pass("validate", validate, "re-check the model"),
    Pass("discretize", discretize, "time constants to per-step decays at dt"),
    Pass("drc", drc, "design-rule check against the profile"),
    Pass("quantize", quantize, "weights, thresholds, biases to the chip's integers"),
    Pass("lower_learning", lower_learning, "learning rules onto the chip's learning engine"),
    Pass("partition", partition, "blocks onto cores and chips"),
    Pass("emit", emit, "package the Program"),
)
assert tuple(p.name for p in PIPELINE) == PASS_NAMES


def compile(  # noqa: A001 - the verb users expect
    network: Network | str | os.PathLike,
    profile: Profile | str | os.PathLike,
    out: TextIO | None = None,
    **options: Any,
) -> Program:
    """Compile ``network`` (a Network or a model file) for ``profile`` (a Profile, a name or
    a profile file). ``options`` are the fields of :class:`CompileOptions`.

    Raises :class:`~neurocomp.ModelError` (invalid model), :class:`DRCError` (every design
    rule violated), :class:`QuantizationError` (strict mode) or :class:`PartitionError`.
    """
    net = network if isinstance(network, Network) else load_network(network)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    ctx = PassContext(prof, CompileOptions(**options))
    pm = PassManager(PIPELINE, out=out or sys.stdout)
    program = pm.run(net, ctx)
    return program.with_pass_log(tuple(r.to_dict() for r in pm.log))


__all__ = [
    "PIPELINE",
    "CompileError",
    "CompileOptions",
    "DRCError",
    "InternalCompilerError",
    "PartitionError",
    "Pass",
    "PassManager",
    "PassRecord",
    "Program",
    "ProgramError",
    "QuantizationError",
    "compile",
]
