"""Learning rules: one module per rule, each with its hyperparameters, its exact float form
and its lowering onto each kind of learning engine.

Importing this package registers every rule with the compiler
(:func:`neurocomp.learning.lowering.register_rules`); ``lower(name, params, ctx)`` dispatches on
the rule's name and the profile's engine kind.
"""

from __future__ import annotations

from ..learning.lowering import lower, register_rules
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

# rule name -> its parameters and their defaults (``...``: required); rflo takes e-prop's
PARAMS = {
    "custom": custom.DEFAULTS,
    "stdp": stdp.DEFAULTS,
    "rstdp": rstdp.DEFAULTS,
    "eprop": eprop.DEFAULTS,
    "rflo": eprop.DEFAULTS,
}


def _reckon_network(net, profile, dt_ms: float, notes: list[str], rate_hz: float, rule: str):
    return reckon.lower_network(net, profile, dt_ms, notes)  # ReckOn's registers need no rate or rule name


# (engine kind, rule) -> whole-network lowering ``fn(net, profile, dt_ms, notes, rate_hz, rule)``
NETWORK_LOWERINGS = {
    ("sum_of_products", "eprop"): eprop.lower_network,
    ("sum_of_products", "rflo"): eprop.lower_network,
    ("eprop_fixed", "eprop"): _reckon_network,  # ReckOn: registers of a fixed-function e-prop
    ("programmable", "eprop"): eprop.lower_programmable,  # the exact rule on the cores
    ("programmable", "rflo"): eprop.lower_programmable,
}

register_rules(LOWERINGS, PARAMS, NETWORK_LOWERINGS)

__all__ = [
    "LOWERINGS",
    "NETWORK_LOWERINGS",
    "PARAMS",
    "LoweringContext",
    "LoweringError",
    "eprop",
    "lower",
    "reckon",
    "rflo",
]
