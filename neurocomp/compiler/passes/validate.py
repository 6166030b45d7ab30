"""Pass ``validate``: the model checks of the graph package, on the whole network."""

from __future__ import annotations

from ...errors import ModelError
from ...graph import Network, validate_network
from ..context import PassContext


def validate(net: Network, ctx: PassContext) -> Network:
    """Re-check every element of ``net``; raise one :class:`ModelError` listing all problems."""
    if not isinstance(net, Network):
        raise TypeError(f"compile expects a neurocomp Network, got {type(net).__name__}")
    problems = validate_network(net)
    if problems:
        raise ModelError(problems, header=f"invalid network {net.name!r}")
    ctx.note(
        f"{len(net.populations)} populations, {net.n_neurons} neurons, {len(net.projections)} projections, "
        f"{net.n_synapses} synapses"
    )
    return net
