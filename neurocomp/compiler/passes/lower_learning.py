"""Pass ``lower_learning``: map each plastic projection's rule onto the chip's learning engine.

For a sum-of-products engine (Loihi 1/2) each rule's lowering (``neurocomp.rules``) turns
its hyperparameters into an :class:`~neurocomp.learning.rule.EngineRule`: rule strings over
the engine's traces, tags and epochs, with every approximation noted in the pass log.
e-prop and RFLO lower the whole network at once: on Loihi 2 they add error units and a
feedback projection; on ReckOn e-prop becomes register settings (``ReckonLearning``); on
programmable cores the exact rule runs (``ProgrammableEprop``). A rule the engine cannot run
fails here with the missing feature named; all plastic projections are checked before the
pass fails. A rule with no lowering for the engine yet (e.g. STDP on SpiNNaker 2) keeps its
specification and gets no engine rule; the emulator refuses to run its learning rather
than ignore it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...errors import Problem
from ...learning.lowering import LOWERINGS, NETWORK_LOWERINGS, LoweringContext, LoweringError, lower
from ..context import PassContext
from ..errors import CompileError
from ..ir import QuantizedNetwork

# rules whose lowering needs graded post-synaptic values (a third factor) from the neuron
THIRD_FACTOR_RULES = ("eprop", "rstdp", "rflo")


def lower_learning(net: QuantizedNetwork, ctx: PassContext) -> QuantizedNetwork:
    lrn = ctx.profile.learning
    problems: list[Problem] = []
    projections = []
    lowered, kept = [], []
    network_level = set()
    # e-prop and RFLO lower the whole network at once (they add error units and feedback)
    for rule in dict.fromkeys(r for _, r in NETWORK_LOWERINGS):
        fn = NETWORK_LOWERINGS.get((lrn.kind, rule))
        if fn is None or rule not in lrn.rules:
            continue
        notes: list[str] = []
        try:
            net = fn(net, ctx.profile, ctx.dt_ms, notes, ctx.options.firing_rate_hz, rule=rule)
        except LoweringError as exc:
            problems.extend(exc.problems)
        for n in notes:
            ctx.note(n)
        network_level |= {p.name for p in net.projections if p.plasticity is not None and p.plasticity.name == rule}
    for i, p in enumerate(net.projections):
        if p.plasticity is None:
            projections.append(p)
            continue
        if p.name in network_level:
            if p.learning is not None:
                lowered.append(f"{p.name} ({p.plasticity.name})")
            projections.append(p)
            continue
        rule = p.plasticity.name
        if lrn.kind == "none" or rule not in lrn.rules:
            why = ""
            if lrn.kind == "sum_of_products" and rule in THIRD_FACTOR_RULES and not lrn.third_factor:
                why = f": {ctx.profile.name} has no graded third factor"
            problems.append(
                Problem(
                    f"projection {p.name!r}",
                    f"learning rule {rule!r} cannot run on {ctx.profile.name} "
                    f"({lrn.kind} engine; it runs: {', '.join(lrn.rules) or 'nothing'}){why}",
                )
            )
            continue
        has_lowering = lrn.kind in LOWERINGS.get(rule, {})
        if has_lowering and (np.ndim(p.weight_exp) or np.ndim(p.delay_steps)):
            problems.append(
                Problem(
                    f"projection {p.name!r}",
                    "a plastic projection needs one weight exponent and one delay "
                    "(per-channel exponents or per-synapse delays are not learnable here)",
                )
            )
            continue
        lsb = float(np.max(np.exp2(np.asarray(p.weight_exp, dtype=np.float64))) * p.float_scale)
        lctx = LoweringContext(p.name, ctx.profile, ctx.dt_ms, lsb, seed=ctx.options.seed + i)
        try:
            engine_rule = lower(rule, p.plasticity.params, lctx)
            if engine_rule is not None:  # the rule as a whole, against the engine's limits
                bad = engine_rule.problems(ctx.profile.learning)
                if bad:
                    raise LoweringError([Problem(f"projection {p.name!r}", str(b)) for b in bad])
        except LoweringError as exc:
            problems.extend(exc.problems)
            continue
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:  # a parameter of the wrong kind
            problems.append(Problem(f"projection {p.name!r}", f"rule {rule!r}: bad parameters ({exc})"))
            continue
        for n in lctx.notes:
            ctx.note(n)
        if engine_rule is None:
            kept.append(f"{p.name} ({rule})")
            projections.append(p)
        else:
            lowered.append(f"{p.name} ({rule})")
            projections.append(replace(p, learning=engine_rule))
    if problems:
        raise CompileError(problems, header=f"{len(problems)} plastic projection(s) cannot be lowered")
    if lowered:
        ctx.note(f"lowered onto the {lrn.kind} engine: {', '.join(lowered)}")
    if kept:
        ctx.note(f"no {lrn.kind} lowering in this release (learning is not emulated): {', '.join(kept)}")
    if not lowered and not kept:
        ctx.note("no plastic projections")
    return replace(net, projections=tuple(projections))  # keeps any populations e-prop added
