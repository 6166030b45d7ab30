"""Scaffolding of the checks whose task defines the network (:mod:`.check_contrastive`,
:mod:`.check_volatility`): the model named on the command line is the rule; the rule runs as
stated on programmable cores, or lowered on a sum-of-products engine with graded third factors;
the attribution rows are the engine's (none on the cores, float32 everywhere)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import Problem
from ..learning.engine import LEARN_QUANTITIES
from .check import ATTRIBUTION_ROWS, CheckError, CheckReport, _write, requested_rows


def rule_profile(rule: str, model: str, task: str, profile: str, defines: str):
    """``(profile, cores)``: the loaded ``profile`` and whether its engine is programmable
    cores, once ``model`` names ``rule`` (``task`` defines ``defines``, the network) and the
    profile can run it; a :class:`CheckError` naming the model or the profile otherwise."""
    from ..profiles import load_profile
    from ..rules import refusal

    if str(model) != rule:
        raise CheckError([Problem("model", f"{task} defines {defines}; name the rule, {rule!r}, as the model, "
                                  f"not {str(model)!r}")])  # fmt: skip
    prof = load_profile(profile)
    lrn = prof.learning
    cores = lrn.kind == "programmable"
    if not cores and (lrn.kind != "sum_of_products" or not lrn.third_factor):
        why = refusal(rule, prof) or f"{profile}'s {lrn.kind} engine has no lowering of {rule}"
        raise CheckError([Problem("profile", f"{rule} cannot run on {profile}: {why}")])
    return prof, cores


def engine_rows(rows: Sequence[str], cores: bool) -> list[tuple[str, dict]]:
    """The attribution rows asked for in ``rows``, each ``(name, engine options)``: one
    learning quantity back in float, or round-to-nearest; none on programmable cores."""
    if cores:
        return []
    out: list[tuple[str, dict]] = [(f"fixed, {q} in float", {"float_quantities": (q,)}) for q in rows
                                   if q in LEARN_QUANTITIES]  # fmt: skip
    if "nearest" in rows:
        out.append(("fixed, round-to-nearest", {"rounding": "nearest"}))
    return out


def attribution_rows(task: str, rows) -> list[str]:
    """``check``'s ``attribution`` argument as the rows of the engine's table."""
    return requested_rows(rows, ATTRIBUTION_ROWS, task)


def written(rep: CheckReport, out, plots) -> CheckReport:
    """``rep``, written to ``out`` (with ``plots``) when ``out`` is given."""
    if out is not None:
        _write(rep, Path(out), plots)
    return rep
