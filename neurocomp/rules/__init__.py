"""Learning rules: one module per rule, each with its hyperparameters, its exact float form
and its lowering onto each kind of learning engine.

Importing this package registers every rule with the compiler
(:func:`neurocomp.learning.lowering.register_rules`); ``lower(name, params, ctx)`` dispatches on
the rule's name and the profile's engine kind.
"""

from __future__ import annotations

from ..learning.lowering import lower, register_rules
from . import (
    contrastive,
    custom,
    eprop,
    gated_engine,
    oja,
    perturbation,
    reckon,
    rflo,
    rstdp,
    scaling,
    stdp,
    volatility,
)
from .base import LoweringContext, LoweringError

# rule name -> engine kind -> lowering
LOWERINGS = {
    "custom": {"sum_of_products": custom.lower},
    "stdp": {"sum_of_products": stdp.lower},
    "rstdp": {"sum_of_products": rstdp.lower},
    "oja": {"sum_of_products": oja.lower},
    # e-prop lowers the whole network at once (it adds error units and feedback):
    # eprop.lower_network, called by the lower_learning pass
    "eprop": {"sum_of_products": None, "eprop_fixed": None, "programmable": None},
    "rflo": {"sum_of_products": None, "programmable": None},
    "np": {"sum_of_products": perturbation.lower_np},
    "wp": {"sum_of_products": perturbation.lower_wp},  # refuses: no per-synapse random numbers
    "chl": {"sum_of_products": contrastive.lower_chl},
    "vkf": {"sum_of_products": volatility.lower_vkf},
    "psd": {"sum_of_products": scaling.lower_psd},
    "ss": {"sum_of_products": scaling.lower_ss},
    # a gated theta network's forward rule: its scales come from the float network's measured ranges,
    # so the on-chip trainer lowers it (neurocomp.analysis.gated_chip), not compile
    "gated": {"sum_of_products": None},
}

# rules that train a whole network of their own rather than a projection: why a model file cannot name them
NETWORK_RULES = {
    "rls": "rls (Kim & Chow's spiking RLS) trains its own theta-neuron network against per-neuron target "
    "drives, not a projection: run it with `neurocomp check rls --task kimchow-rls` or neurocomp.rules.rls",
    "balanced": "balanced (Bourdoukan & Deneve's balanced network) trains the fast and slow weights of its own "
    "network with error feedback, not one projection: run it with `neurocomp check balanced --task "
    "balanced-oscillator` or neurocomp.rules.balanced",
    "balanced-basis": "balanced-basis (Alemi et al.'s balanced network with a nonlinear basis) trains the slow "
    "weights from its basis population into its own network with error feedback, not one projection: run it with "
    "`neurocomp check balanced-basis --task balanced-bistable` or neurocomp.rules.balanced_basis",
}

# rule name -> its parameters and their defaults (``...``: required); rflo takes e-prop's
PARAMS = {
    "custom": custom.DEFAULTS,
    "stdp": stdp.DEFAULTS,
    "rstdp": rstdp.DEFAULTS,
    "oja": oja.DEFAULTS,
    "eprop": eprop.DEFAULTS,
    "rflo": eprop.DEFAULTS,
    "np": perturbation.DEFAULTS,
    "wp": perturbation.DEFAULTS,
    "chl": contrastive.DEFAULTS,
    "vkf": volatility.DEFAULTS,
    "psd": scaling.DEFAULTS,
    "ss": scaling.DEFAULTS,
    "gated": gated_engine.DEFAULTS,
}


# (rule, engine kind) -> why the rule cannot run there, for the compile error
REFUSALS = {
    ("wp", "sum_of_products"): perturbation.REFUSALS[("wp", "sum_of_products")],
    ("np", "programmable"): perturbation.PROGRAMMABLE,
    ("wp", "programmable"): perturbation.PROGRAMMABLE,
    ("np", "eprop_fixed"): perturbation.FIXED_FUNCTION,
    ("wp", "eprop_fixed"): perturbation.FIXED_FUNCTION,
    ("chl", "programmable"): contrastive.REFUSALS["programmable"],
    ("chl", "eprop_fixed"): contrastive.REFUSALS["eprop_fixed"],
    ("vkf", "programmable"): volatility.REFUSALS["programmable"],
    ("vkf", "eprop_fixed"): volatility.REFUSALS["eprop_fixed"],
    **{(k, kind): scaling.REFUSALS[kind] for k in scaling.KINDS for kind in ("programmable", "eprop_fixed")},
}


def refusal(name: str, profile) -> str | None:
    """Why rule ``name`` cannot run on ``profile``'s engine, where neurocomp knows a reason
    beyond the engine's list of rules (None: no particular reason)."""
    lrn = profile.learning
    if lrn.kind == "sum_of_products" and not lrn.third_factor:
        if name == "np":
            return perturbation.REFUSALS[("np", "sum_of_products", "no_third_factor")]
        if name == "chl":
            return contrastive.REFUSALS["no_third_factor"]
        if name == "vkf":
            return volatility.REFUSALS["no_third_factor"]
    return REFUSALS.get((name, lrn.kind))


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

register_rules(LOWERINGS, PARAMS, NETWORK_LOWERINGS, refusal, NETWORK_RULES)

__all__ = [
    "LOWERINGS",
    "NETWORK_LOWERINGS",
    "NETWORK_RULES",
    "PARAMS",
    "REFUSALS",
    "LoweringContext",
    "LoweringError",
    "eprop",
    "lower",
    "perturbation",
    "reckon",
    "refusal",
    "rflo",
]
