"""Whole-network checks: each returns every problem it finds instead of raising.

Element-local checks (a time constant <= 0, a NaN weight) run in the dataclasses'
``__post_init__``; the checks here need more than one element (an unknown population, a
weight matrix whose shape does not match the populations it joins).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import Problem
from ..learning.lowering import LOWERINGS, NETWORK_RULES, PARAMS, param_problems
from .projection import Projection, RuleSpec

if TYPE_CHECKING:
    from .network import Network


def projection_problems(net: Network, proj: Projection) -> list[Problem]:
    """Problems that keep ``proj`` from joining ``net``."""
    where = f"projection {proj.name!r}"
    out: list[Problem] = []
    if net.has_projection(proj.name):
        out.append(Problem(where, "duplicate name: a projection with this name exists"))
    missing = False
    for role, name in (("pre", proj.pre), ("post", proj.post)):
        if not net.has_population(name):
            out.append(Problem(where, f"{role}: unknown population {name!r}"))
            missing = True
    if missing:
        return out
    pre, post = net.population(proj.pre), net.population(proj.post)
    want = (post.size, pre.size)
    geometry = getattr(proj, "geometry", None)  # a convolution: say which image shape disagrees
    if proj.shape != want and geometry is not None:
        for role, pop, shape in (("input", pre, geometry.input_shape), ("output", post, geometry.output_shape)):
            if pop.size != int(np.prod(shape)):
                out.append(
                    Problem(
                        where,
                        f"conv: {role} image {shape} has {int(np.prod(shape))} neurons, "
                        f"population {pop.name!r} has {pop.size}",
                    )  # fmt: skip
                )
    elif proj.shape != want:
        out.append(
            Problem(
                where,
                f"weights: shape {proj.shape} does not match [post, pre] = ({post.name}: {post.size}, "
                f"{pre.name}: {pre.size})",
            )
        )
    if post.is_input:
        out.append(Problem(where, f"post: population {post.name!r} is a SpikeInput and cannot receive synapses"))
    if not pre.neuron.spiking:
        out.append(Problem(where, f"pre: population {pre.name!r} ({pre.neuron.model}) does not spike"))
    return out


def rule_problems(spec: RuleSpec) -> list[str]:
    """What is wrong with a learning rule whatever the chip: an unknown rule, unknown or
    missing parameters, non-finite numbers, time constants <= 0 (``compile`` reports the
    same; this lets ``validate`` report them without a profile)."""
    if spec.name in NETWORK_RULES:
        return [NETWORK_RULES[spec.name]]
    if spec.name not in LOWERINGS:
        return [f"unknown learning rule {spec.name!r} (known: {', '.join(LOWERINGS)})"]
    defaults = PARAMS.get(spec.name)
    return [] if defaults is None else param_problems(spec.params, defaults, spec.name)


def validate_network(net: Network) -> list[Problem]:
    """Re-check every projection of ``net`` against its populations (used after passes
    that rebuild a network). Returns the problems; an empty list means valid."""
    out: list[Problem] = []
    for proj in net.projections:
        out += [p for p in projection_problems(_Without(net, proj.name), proj)]
    return out


class _Without:
    """``net`` as seen by a projection that is not yet in it (so it is not its own duplicate)."""

    def __init__(self, net: Network, name: str):
        self._net, self._name = net, name

    def has_projection(self, name: str) -> bool:
        return name != self._name and self._net.has_projection(name)

    def __getattr__(self, attr):
        return getattr(self._net, attr)
