"""Pass ``lower_learning``: map each plastic projection's rule onto the chip's learning engine.

This release checks that the engine can run each rule and passes plastic projections
through with their rule specification; the lowering of each rule onto the engine's
traces, tags and epochs (``neurocomp.rules``) arrives with on-chip learning support.
"""

from __future__ import annotations

from ...errors import Problem
from ..context import PassContext
from ..errors import CompileError
from ..ir import QuantizedNetwork


def lower_learning(net: QuantizedNetwork, ctx: PassContext) -> QuantizedNetwork:
    lrn = ctx.profile.learning
    plastic = [p for p in net.projections if p.plasticity is not None]
    problems = [
        Problem(
            f"projection {p.name!r}",
            f"learning rule {p.plasticity.name!r} cannot run on {ctx.profile.name} "  # type: ignore[union-attr]
            f"({lrn.kind} engine; it runs: {', '.join(lrn.rules) or 'nothing'})",
        )
        for p in plastic
        if lrn.kind == "none" or p.plasticity.name not in lrn.rules  # type: ignore[union-attr]
    ]
    if problems:
        raise CompileError(problems, header=f"{len(problems)} plastic projection(s) cannot be lowered")
    if plastic:
        names = ", ".join(f"{p.name} ({p.plasticity.name})" for p in plastic)  # type: ignore[union-attr]
        ctx.note(f"{len(plastic)} plastic projection(s) kept with their rule for the {lrn.kind} engine: {names}")
    else:
        ctx.note("no plastic projections")
    return net
