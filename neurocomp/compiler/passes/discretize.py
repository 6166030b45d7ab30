"""Pass ``discretize``: time constants (ms) become per-step decays at ``dt``, in the
profile's decay representation, each the realizable decay closest to ``exp(-dt/tau)``."""

from __future__ import annotations

from ...arith.decay import choose_decay
from ...graph import ALIF, LI, LIF, Network
from ..context import PassContext
from ..ir import DiscreteNetwork, DiscretePopulation


def discretize(net: Network, ctx: PassContext) -> DiscreteNetwork:
    fmt = ctx.profile.formats.decay
    dt = ctx.dt_ms
    pops = []
    for pop in net.populations:
        n = pop.neuron
        decays = {}
        if isinstance(n, (LIF, LI)):
            decays["current"] = choose_decay(fmt, n.tau_syn_ms, dt, "current")
            decays["voltage"] = choose_decay(fmt, n.tau_mem_ms, dt, "voltage")
        if isinstance(n, LIF) and n.tau_syn2_ms is not None:  # the second synaptic current (port syn2)
            decays["current2"] = choose_decay(fmt, n.tau_syn2_ms, dt, "current")
        if isinstance(n, ALIF):
            decays["adapt"] = choose_decay(fmt, n.tau_adapt_ms, dt, "voltage")
        for role, d in decays.items():
            if d.clipped:
                ctx.warn(
                    f"population {pop.name!r}: {role} tau {d.tau_ms} ms at dt {dt:g} ms is outside what "
                    f"{ctx.profile.name}'s {fmt.bits}-bit decay can represent; using factor {d.factor:.6g} "
                    f"(exact {d.exact:.6g})"
                )
        pops.append(DiscretePopulation(pop.name, pop.size, n, decays))
    worst = max((d.abs_error for p in pops for d in p.decays.values()), default=0.0)
    ctx.note(f"dt = {dt:g} ms; {fmt.representation} decays, worst factor error {worst:.3g}")
    return DiscreteNetwork(net, ctx.profile, dt, tuple(pops))
