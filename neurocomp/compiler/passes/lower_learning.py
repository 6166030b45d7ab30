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

from ...errors import Problem, ProfileError
from ...learning.lowering import LOWERINGS, NETWORK_LOWERINGS, LoweringContext, LoweringError, lower
from ...learning.rule import EngineRule
from ..context import PassContext
from ..errors import CompileError
from ..ir import QuantizedNetwork

# rules whose lowering needs graded post-synaptic values (a third factor) from the neuron
THIRD_FACTOR_RULES = ("eprop", "rstdp", "rflo")


def lower_learning(net: QuantizedNetwork, ctx: PassContext) -> QuantizedNetwork:
    problems: list[Problem] = []
    net, network_level = _lower_networks(net, ctx, problems)
    projections, lowered, kept = [], [], []
    for i, p in enumerate(net.projections):
        if p.plasticity is None or p.name in network_level:
            if p.plasticity is not None and p.learning is not None:
                lowered.append(f"{p.name} ({p.plasticity.name})")
            projections.append(p)
            continue
        ok, engine_rule = _lower_projection(p, i, ctx, problems)
        if not ok:
            continue
        (kept if engine_rule is None else lowered).append(f"{p.name} ({p.plasticity.name})")
        projections.append(p if engine_rule is None else replace(p, learning=engine_rule))
    projections = _on_engine(projections, ctx, problems)
    if problems:
        raise CompileError(problems, header=f"{len(problems)} plastic projection(s) cannot be lowered")
    _summary(ctx, lowered, kept)
    return replace(net, projections=tuple(projections))  # keeps any populations e-prop added


def _on_engine(projections: list, ctx: PassContext, problems: list[Problem]) -> list:
    """Every lowered sum-of-products rule with the engine's decay of its graded traces (the
    profile's ``learning.params.graded_trace_tau``; see ``EngineRule.on_engine``)."""
    out = []
    for p in projections:
        if isinstance(p.learning, EngineRule):
            try:
                p = replace(p, learning=p.learning.on_engine(ctx.profile.learning))
            except ProfileError as exc:
                problems.extend(Problem(f"projection {p.name!r}", f"{b.where}: {b.message}") for b in exc.problems)
        out.append(p)
    return out


def _lower_networks(net: QuantizedNetwork, ctx: PassContext, problems: list[Problem]):
    """The rules that lower the whole network at once (e-prop and RFLO add error units and
    feedback); returns the network and the names of the projections they lowered."""
    lrn = ctx.profile.learning
    network_level = set()
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
    return net, network_level


def _lower_projection(p, i: int, ctx: PassContext, problems: list[Problem]):
    """One plastic projection's rule on the engine: ``(True, EngineRule)``, ``(True, None)``
    when neurocomp has no lowering for the engine yet, or ``(False, None)`` with the reasons
    appended to ``problems``."""
    lrn, rule, where = ctx.profile.learning, p.plasticity.name, f"projection {p.name!r}"
    if lrn.kind == "none" or rule not in lrn.rules:
        why = ""
        if lrn.kind == "sum_of_products" and rule in THIRD_FACTOR_RULES and not lrn.third_factor:
            why = f": {ctx.profile.name} has no graded third factor"
        problems.append(
            Problem(
                where,
                f"learning rule {rule!r} cannot run on {ctx.profile.name} "
                f"({lrn.kind} engine; it runs: {', '.join(lrn.rules) or 'nothing'}){why}",
            )
        )
        return False, None
    if lrn.kind in LOWERINGS.get(rule, {}) and (np.ndim(p.weight_exp) or np.ndim(p.delay_steps)):
        problems.append(
            Problem(
                where,
                "a plastic projection needs one weight exponent and one delay "
                "(per-channel exponents or per-synapse delays are not learnable here)",
            )
        )
        return False, None
    lsb = float(np.max(np.exp2(np.asarray(p.weight_exp, dtype=np.float64))) * p.float_scale)
    lctx = LoweringContext(p.name, ctx.profile, ctx.dt_ms, lsb, seed=ctx.options.seed + i)
    try:
        engine_rule = lower(rule, p.plasticity.params, lctx)
        if engine_rule is not None:  # the rule as a whole, against the engine's limits
            bad = engine_rule.problems(ctx.profile.learning)
            if bad:
                raise LoweringError([Problem(where, str(b)) for b in bad])
    except LoweringError as exc:
        problems.extend(exc.problems)
        return False, None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:  # a parameter of the wrong kind
        problems.append(Problem(where, f"rule {rule!r}: bad parameters ({exc})"))
        return False, None
    for n in lctx.notes:
        ctx.note(n)
    return True, engine_rule


def _summary(ctx: PassContext, lowered: list[str], kept: list[str]) -> None:
    kind = ctx.profile.learning.kind
    if lowered:
        ctx.note(f"lowered onto the {kind} engine: {', '.join(lowered)}")
    if kept:
        ctx.note(f"no {kind} lowering in this release (learning is not emulated): {', '.join(kept)}")
    if not lowered and not kept:
        ctx.note("no plastic projections")
