"""The interface between the learning rules and the compiler: what a rule's lowering gets
(:class:`LoweringContext`), how it fails (:class:`LoweringError`), and the registry the
``lower_learning`` pass and the graph's validation look rules up in.

The rules (:mod:`neurocomp.rules`, one module per rule) sit above the compiler, since their
whole-network lowerings build compiled IR; they fill this registry when ``neurocomp`` is
imported (:func:`register_rules`), so the compiler and the graph never import them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import NeurocompError, Problem
from ..profiles import Profile
from .rule import EngineRule

# rule name -> engine kind -> per-projection lowering ``fn(params, ctx) -> EngineRule`` (None: the
# rule lowers the whole network on that engine kind)
LOWERINGS: dict[str, dict[str, Callable | None]] = {}
# rule name -> its parameters and their defaults (``...``: required)
PARAMS: dict[str, Mapping[str, Any]] = {}
# (engine kind, rule name) -> whole-network lowering ``fn(net, profile, dt_ms, notes, rate_hz, rule)``,
# for rules that add elements (e-prop's error units and feedback) or map onto a fixed-function engine
NETWORK_LOWERINGS: dict[tuple[str, str], Callable] = {}
# ``fn(rule name, profile) -> str | None``: why a rule cannot run on a profile's engine, where the
# rules know a reason beyond the engine's list of rules (the DRC adds it to its refusal)
_REFUSAL: list[Callable[[str, Profile], str | None]] = []
# rules that train a whole network of their own rather than a projection (Kim & Chow's RLS):
# rule name -> why a model file cannot name it, and what to run instead
NETWORK_RULES: dict[str, str] = {}


def register_rules(
    lowerings: Mapping[str, Mapping[str, Callable | None]],
    params: Mapping[str, Mapping[str, Any]],
    network_lowerings: Mapping[tuple[str, str], Callable],
    refusal: Callable[[str, Profile], str | None] | None = None,
    network_rules: Mapping[str, str] | None = None,
) -> None:
    """Make rules known to the compiler (called by :mod:`neurocomp.rules` on import)."""
    LOWERINGS.update({k: dict(v) for k, v in lowerings.items()})
    PARAMS.update(params)
    NETWORK_LOWERINGS.update(network_lowerings)
    if refusal is not None:
        _REFUSAL[:] = [refusal]
    NETWORK_RULES.update(network_rules or {})


def refusal(name: str, profile: Profile) -> str | None:
    """Why rule ``name`` cannot run on ``profile``'s engine, where the rules know a reason
    (None: no particular reason)."""
    return _REFUSAL[0](name, profile) if _REFUSAL else None


def lower(name: str, params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule | None:
    """The engine form of rule ``name`` on ``ctx.profile``, or None if neurocomp has no
    lowering for this engine kind yet (the caller reports that)."""
    by_kind = LOWERINGS.get(name)
    if by_kind is None:
        raise ctx.fail(f"unknown learning rule {name!r} (known: {', '.join(LOWERINGS)})")
    fn = by_kind.get(ctx.profile.learning.kind)
    return None if fn is None else fn(params, ctx)


class LoweringError(NeurocompError, ValueError):
    kind = "lowering"


@dataclass
class LoweringContext:
    """One plastic projection being lowered: its name, the profile, the step (ms), the
    model units per weight-mantissa LSB (``2**weight_exp * float_scale``), and the notes the
    lowering leaves for the compile log."""

    projection: str
    profile: Profile
    dt_ms: float
    weight_lsb: float
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    kind: str = "projection"  # what ``projection`` names (a population, for per-population choices)

    @property
    def where(self) -> str:
        return f"{self.kind} {self.projection!r}"

    def note(self, text: str) -> None:
        self.notes.append(f"{self.where}: {text}")

    def fail(self, *messages: str) -> LoweringError:
        return LoweringError([Problem(self.where, m) for m in messages])


def param_problems(params: Mapping[str, Any], defaults: Mapping[str, Any], rule: str) -> list[str]:
    """What is wrong with a rule's ``params`` against its ``defaults``: unknown keys, missing
    required ones (default ``...``), numbers that are not finite, times and impulses <= 0.
    Needs no profile, so ``validate`` reports these as well as ``compile``."""
    problems = [f"{rule}: unknown parameter {k!r} (known: {', '.join(defaults)})" for k in params if k not in defaults]
    out = {k: params.get(k, v) for k, v in defaults.items()}
    problems += [f"{rule}: parameter {k!r} is required" for k, v in out.items() if v is ...]
    for k, v in out.items():  # numbers must be finite numbers; times and impulses positive
        d = defaults[k]  # required parameters (default ...) are numbers too
        if v is ... or (d is not ... and (not isinstance(d, (int, float)) or isinstance(d, bool))):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            problems.append(f"{rule}: parameter {k!r} must be a finite number, got {v!r}")
        elif (k.startswith("tau") or k.endswith("impulse")) and v <= 0:
            problems.append(f"{rule}: parameter {k!r} must be > 0, got {v!r}")
    return problems
