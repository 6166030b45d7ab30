"""Learning rules: one module per rule, each with its hyperparameters, its exact float form
and its lowering onto each kind of learning engine.

``lower(name, params, ctx)`` dispatches on the rule's name and the profile's engine kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..learning.rule import EngineRule
from . import custom, eprop, reckon, rflo, rstdp, stdp
from .base import LoweringContext, LoweringError

# rule name -> engine kind -> lowering
LOWERINGS = {
    "custom": {"sum_of_products": custom.lower},
    "stdp": {"sum_of_products": stdp.lower},
    "rstdp": {"sum_of_products": rstdp.lower},
    # e-prop lowers the whole network at once (it adds error units and feedback):
    # eprop.lower_network, called by the lower_learning pass
    "eprop": {"sum_of_products": None, "eprop_fixed": None, "programmable": None},
    "rflo": {"sum_of_products": None, "programmable": None},
}

# rules that train a whole network of their own rather than a projection: why a model file cannot name them
NETWORK_RULES = {
    "rls": "rls (Kim & Chow's spiking RLS) trains its own theta-neuron network against per-neuron target "
    "drives, not a projection: run it with `neurocomp check rls --task kimchow-rls` or neurocomp.rules.rls",
}

# rule name -> its parameters and their defaults (``...``: required); rflo takes e-prop's
PARAMS = {
    "custom": custom.DEFAULTS,
    "stdp": stdp.DEFAULTS,
    "rstdp": rstdp.DEFAULTS,
    "eprop": eprop.DEFAULTS,
    "rflo": eprop.DEFAULTS,
}


def lower(name: str, params: Mapping[str, Any], ctx: LoweringContext) -> EngineRule | None:
    """The engine form of rule ``name`` on ``ctx.profile``, or None if neurocomp has no
    lowering for this engine kind yet (the caller reports that)."""
    by_kind = LOWERINGS.get(name)
    if by_kind is None:
        raise ctx.fail(f"unknown learning rule {name!r} (known: {', '.join(LOWERINGS)})")
    fn = by_kind.get(ctx.profile.learning.kind)
    return None if fn is None else fn(params, ctx)


__all__ = [
    "LOWERINGS", "NETWORK_RULES", "PARAMS", "LoweringContext", "LoweringError", "eprop", "lower", "reckon", "rflo",
]  # fmt: skip
