"""Pass ``emit``: package the placed, quantized network as a :class:`Program`."""

from __future__ import annotations

import dataclasses

from ..._version import __version__
from ..context import PassContext
from ..ir import PlacedNetwork
from ..program import Program


def emit(net: PlacedNetwork, ctx: PassContext) -> Program:
    q = net.quantized
    opts = {k: v for k, v in dataclasses.asdict(ctx.options).items() if k not in ("dump_ir_after", "time_passes")}
    opts["dt_ms"] = ctx.dt_ms
    ctx.note(f"program with {len(q.populations)} populations and {len(q.projections)} projections")
    return Program(
        profile=ctx.profile,
        dt_ms=ctx.dt_ms,
        network_name=q.source.source.name,
        populations=q.populations,
        projections=q.projections,
        placement=net.placement,
        report=q.report,
        options=opts,
        warnings=tuple(ctx.warnings),
        neurocomp_version=__version__,
    )
