"""Pass ``drc``: the design-rule check.

Each rule is a small named function ``rule(net, profile) -> list[Violation]`` that reads
its limits from the profile. All rules run; if any reports a violation, the pass raises
one :class:`DRCError` listing every violation, each naming the element, the value and the
limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...errors import Problem
from ...graph import ALIF, LI, LIF, Projection, SpikeInput
from ...graph.weights import SparseWeights, count_indices, row_pointers
from ...learning.lowering import refusal
from ...profiles import Profile
from ..chip_weights import chip_mantissas
from ..context import PassContext
from ..errors import DRCError
from ..ir import DiscreteNetwork, QuantizedNetwork


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str
    message: str

    def problem(self) -> Problem:
        return Problem(self.where, f"{self.message} [{self.rule}]")


Rule = Callable[[DiscreteNetwork, Profile], list[Violation]]


def stored_per_row(proj: Projection) -> np.ndarray:
    """Synapses stored per post neuron: a sparse matrix's entries; a dense matrix's nonzeros
    (all entries if plastic, since a zero weight can grow)."""
    w = proj.weights
    if isinstance(w, SparseWeights):
        return np.diff(row_pointers(w.rows, w.shape[0]))
    if proj.plasticity is not None:
        return np.full(w.shape[0], w.shape[1], dtype=np.int64)
    return np.count_nonzero(w, axis=1)


def stored_per_col(proj: Projection) -> np.ndarray:
    w = proj.weights
    if isinstance(w, SparseWeights):
        return count_indices(w.cols, w.shape[1])
    if proj.plasticity is not None:
        return np.full(w.shape[1], w.shape[0], dtype=np.int64)
    return np.count_nonzero(w, axis=0)


def _pop(name: str) -> str:
    return f"population {name!r}"


def _proj(name: str) -> str:
    return f"projection {name!r}"


# -- rules -------------------------------------------------------------------------------


def neuron_model_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    def why(p) -> str:
        extra = p.neuron.chip_refusal(prof) if hasattr(p.neuron, "chip_refusal") else ""
        known = ", ".join(prof.neuron_models)
        return f"neuron model {p.model} is not supported by {prof.name} (supported: {known})" + (
            f": {extra}" if extra else ""
        )

    return [Violation("neuron_model_supported", _pop(p.name), why(p)) for p in net.populations
            if p.model not in prof.neuron_models]  # fmt: skip


def reset_mode_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    out = []
    for p in net.populations:
        n, m = p.neuron, prof.neuron_models.get(p.model)
        if m is None or not isinstance(n, LIF):
            continue
        if n.reset not in m.reset_modes:
            out.append(
                Violation(
                    "reset_mode_supported",
                    _pop(p.name),
                    f"reset {n.reset!r} is not supported by {prof.name}'s {p.model} "
                    f"(supported: {', '.join(m.reset_modes) or 'none'})",
                )
            )
        if n.reset == "zero" and n.v_reset != 0.0 and m.implementation != "programmable":
            out.append(
                Violation(
                    "reset_mode_supported",
                    _pop(p.name),
                    f"v_reset {n.v_reset:g}: {prof.name}'s {p.model} resets to 0 exactly",
                )
            )
    return out


def refractory_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    out = []
    for p in net.populations:
        m = prof.neuron_models.get(p.model)
        if m is not None and isinstance(p.neuron, LIF) and p.neuron.refractory_steps > m.refractory_max_steps:
            out.append(
                Violation(
                    "refractory_supported",
                    _pop(p.name),
                    f"refractory_steps {p.neuron.refractory_steps} exceeds {prof.name}'s limit "
                    f"{m.refractory_max_steps} for {p.model}",
                )
            )
    return out


def synaptic_current_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    out = []
    for p in net.populations:
        m = prof.neuron_models.get(p.model)
        if (
            m is not None
            and isinstance(p.neuron, (LIF, LI))
            and p.neuron.tau_syn_ms is not None
            and not m.synaptic_current
        ):
            out.append(
                Violation(
                    "synaptic_current_supported",
                    _pop(p.name),
                    f"tau_syn_ms {p.neuron.tau_syn_ms:g}: {prof.name}'s {p.model} has no synaptic "
                    f"current (delta synapses only; set tau_syn_ms to null)",
                )
            )
    return out


def synaptic_ports_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    """A second synaptic current (``tau_syn2_ms``, projections with ``port: syn2``) needs a
    chip whose LIF has two, and a post LIF that has one."""
    out = []
    lif = prof.neuron_models.get("LIF")
    two = lif is not None and lif.synaptic_states >= 2
    for p in net.populations:
        tau2 = getattr(p.neuron, "tau_syn2_ms", None)
        if tau2 is not None and (not two or p.model != "LIF"):
            where = f"{prof.name}'s LIF has one synaptic current" if not two else f"{p.model} has one synaptic current"
            out.append(Violation("synaptic_ports_supported", _pop(p.name), f"tau_syn2_ms {tau2:g}: {where}"))
    for pr in net.projections:
        if pr.port == "syn":
            continue
        post = net.population(pr.post)
        if not two:
            why = f"{prof.name}'s neurons have one synaptic current"
        elif getattr(post.neuron, "tau_syn2_ms", None) is None:
            why = f"post population {pr.post!r} has no second synaptic current (set its tau_syn2_ms)"
        else:
            continue
        out.append(Violation("synaptic_ports_supported", _proj(pr.name), f"port {pr.port!r}: {why}"))
    return out


def input_survives_current_decay(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    """Where a step's input is added to the synaptic current before it decays (Xylo), a
    decay factor of 0 (``dash_syn = 0``: no ``tau_syn_ms``, or one much shorter than ``dt``)
    empties the current in the step its input arrives, so the neuron never sees any input."""
    if prof.time.current_update != "add_then_decay":
        return []
    out = []
    for p in net.populations:
        for role, port in (("current", "syn"), ("current2", "syn2")):
            d = p.decays.get(role)
            fed = any(pr.post == p.name and pr.port == port for pr in net.projections)
            if d is None or d.factor != 0.0 or not fed:
                continue
            tau = getattr(p.neuron, "tau_syn_ms" if port == "syn" else "tau_syn2_ms")
            given = "no tau_syn_ms (delta synapses)" if tau is None else f"tau {tau:g} ms"
            out.append(
                Violation(
                    "input_survives_current_decay",
                    _pop(p.name),
                    f"{given} gives port {port!r} the decay code {d.code}, a factor of 0; {prof.name} adds a "
                    f"step's input to the synaptic current before decaying it, so every input would be lost "
                    f"(set a synaptic time constant of at least {net.dt_ms:g} ms, one step)",
                )
            )
    return out


def bias_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    if prof.formats.bias is not None or prof.formats.voltage.kind == "float":
        return []
    return [
        Violation("bias_supported", _pop(p.name), f"bias {p.neuron.bias:g}: {prof.name} has no neuron bias")
        for p in net.populations
        if isinstance(p.neuron, (LIF, LI)) and p.neuron.bias != 0.0
    ]


def delay_within_limit(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    lim = prof.capacity.max_delay_steps
    return [
        Violation("delay_within_limit", _proj(pr.name), f"delay {pr.max_delay} steps exceeds {prof.name}'s limit {lim}")
        for pr in net.projections
        if pr.max_delay > lim
    ]


def sign_mode_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    modes = prof.formats.weight.sign_modes
    out = []
    for pr in net.projections:
        mode = pr.inferred_sign_mode()
        if prof.formats.weight.encoding == "twos_complement":
            continue  # every two's-complement weight carries its own sign
        if mode not in modes:
            hint = " (split it into an excitatory and an inhibitory projection)" if mode == "mixed" else ""
            out.append(
                Violation(
                    "sign_mode_supported",
                    _proj(pr.name),
                    f"sign mode {mode!r} is not supported by {prof.name} (supported: {', '.join(modes)}){hint}",
                )
            )
    return out


def _per_neuron_limit(net: DiscreteNetwork, limit: int | None, incoming: bool, rule: str, prof: Profile):
    if limit is None:
        return []
    out = []
    for pop in net.populations:
        projs = [pr for pr in net.projections if (pr.post if incoming else pr.pre) == pop.name]
        if not projs:
            continue
        counts = sum(stored_per_row(pr) if incoming else stored_per_col(pr) for pr in projs)
        worst = int(np.argmax(counts))
        if counts[worst] > limit:
            n_over = int(np.count_nonzero(counts > limit))
            kind = "fan-in" if incoming else "fan-out"
            out.append(
                Violation(
                    rule,
                    _pop(pop.name),
                    f"{kind} {int(counts[worst])} (neuron {worst}; {n_over} neurons over) exceeds "
                    f"{prof.name} limit {limit} (via {', '.join(pr.name for pr in projs)})",
                )
            )
    return out


def fan_in_within_limit(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    return _per_neuron_limit(net, prof.capacity.fan_in_per_neuron, True, "fan_in_within_limit", prof)


def fan_out_within_limit(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    return _per_neuron_limit(net, prof.capacity.fan_out_per_neuron, False, "fan_out_within_limit", prof)


def learning_rule_supported(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    lrn = prof.learning
    out = []
    for pr in net.projections:
        if pr.plasticity is None:
            continue
        rule = pr.plasticity.name
        if lrn.kind == "none":
            out.append(
                Violation(
                    "learning_rule_supported",
                    _proj(pr.name),
                    f"plastic ({rule!r}), but {prof.name} has no on-chip learning (inference only)",
                )
            )
        elif rule not in lrn.rules:
            # name the missing engine feature where there is one
            why = ""
            if lrn.kind == "sum_of_products" and rule in ("eprop", "rstdp", "rflo") and not lrn.third_factor:
                why = f"; {prof.name} has no graded third factor"
            elif lrn.kind == "eprop_fixed" and rule == "rflo":
                why = f"; RFLO needs random feedback, and {prof.name}'s learning signal is symmetric (W_out^T)"
            why = f"; {reason}" if (reason := refusal(rule, prof)) else why
            out.append(
                Violation(
                    "learning_rule_supported",
                    _proj(pr.name),
                    f"learning rule {rule!r} cannot run on {prof.name}'s {lrn.kind} engine "
                    f"(it runs: {', '.join(lrn.rules) or 'none'}){why}",
                )
            )
    return out


def io_ports_within_limit(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    cap = prof.capacity
    out = []
    n_in = sum(p.size for p in net.populations if isinstance(p.neuron, SpikeInput))
    if cap.input_channels is not None and n_in > cap.input_channels:
        out.append(
            Violation(
                "io_ports_within_limit",
                "network",
                f"{n_in} input neurons exceed {prof.name}'s {cap.input_channels} input channels",
            )
        )
    n_out = sum(p.size for p in net.populations if isinstance(p.neuron, LI))
    if cap.output_neurons is not None and n_out > cap.output_neurons:
        out.append(
            Violation(
                "io_ports_within_limit",
                "network",
                f"{n_out} readout neurons exceed {prof.name}'s {cap.output_neurons} output neurons",
            )
        )
    return out


def neuron_capacity(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    cap = prof.capacity
    placed = sum(p.size for p in net.populations if not isinstance(p.neuron, SpikeInput))
    if cap.input_channels is not None or cap.output_neurons is not None:  # fixed I/O ports: count hidden only
        placed = sum(p.size for p in net.populations if isinstance(p.neuron, (LIF, ALIF)))
    if placed > cap.neurons_total:
        return [
            Violation(
                "neuron_capacity",
                "network",
                f"{placed} neurons exceed {prof.name}'s {cap.neurons_total} "
                f"({cap.chips} chips x {cap.cores_per_chip} cores x {cap.neurons_per_core})",
            )
        ]
    return []


def input_rate_within_limit(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    """A Poisson input draws one Bernoulli spike per step: above one spike per step its rate
    cannot be met (5 kHz at 1 ms would silently fire every step at 1 kHz)."""
    out = []
    for p in net.populations:
        rate = getattr(p.neuron, "rate_hz", None)
        if isinstance(p.neuron, SpikeInput) and rate is not None and rate * net.dt_ms / 1000.0 > 1:
            out.append(
                Violation(
                    "input_rate_within_limit",
                    _pop(p.name),
                    f"rate {rate:g} Hz at dt = {net.dt_ms:g} ms is {rate * net.dt_ms / 1000:.3g} spikes per step; "
                    f"a Poisson input sends at most one per step (limit {1000 / net.dt_ms:g} Hz)",
                )
            )
    return out


def state_range_warnings(qnet: QuantizedNetwork) -> list[str]:
    """Post populations whose input in one step can leave the current's range: fan-in times
    the largest weight (in state units, with the exponent and the input shift, every pre
    neuron sending its most spikes). Lava keeps ``u`` in 32 bits (and wraps past 2^31), the
    chip in 24, so past 2^23 the emulator, which follows Lava, and the chip can part
    (sustained input with a slow current decay can get there too; ``strict`` runs stop at
    the first overflow)."""
    prof = qnet.profile
    if prof.arithmetic != "fixed" or prof.formats.current is None:
        return []
    if prof.time.saturation == "per_add":  # the emulator saturates every add, as the chip does (Xylo)
        return []
    kinds = {p.name: p.model for p in qnet.populations}
    shift = 2.0**prof.formats.input_shift
    spikes = prof.time.max_spikes_per_step
    worst: dict[str, np.ndarray] = {}
    for pr in qnet.projections:
        if kinds.get(pr.pre) == "ErrorUnit":  # graded feedback goes to the learning-signal port, not u
            continue
        m = np.abs(chip_mantissas(pr, prof)).astype(np.float64)
        rows = np.bincount(pr.rows, m, minlength=pr.shape[0]) if pr.is_sparse else m.sum(axis=1)
        per_post = rows * spikes * np.exp2(np.asarray(pr.weight_exp, dtype=np.float64)) * shift
        worst[pr.post] = worst.get(pr.post, 0.0) + per_post
    top = 2.0 ** (prof.formats.current.bits - 1) - 1
    out = []
    for name, a in worst.items():
        a = np.broadcast_to(a, (qnet.population(name).size,))
        if a.max(initial=0) > top:
            out.append(
                f"population {name!r}: one step's input can reach {a.max():.4g} in state units (fan-in x max |weight| "
                f"of neuron {int(a.argmax())}) if every input spikes at once, beyond the chip's "
                f"{prof.formats.current.bits}-bit current range (+-{top:.0f}); Lava and the emulator keep u "
                "in 32 bits, so there they can differ from the chip (run with strict to stop at the first overflow)"
            )
    return out


def gated_network_static(net: DiscreteNetwork, prof: Profile) -> list[Violation]:
    """A gated theta network compiles static: it is trained off chip (``neurocomp train``), or
    on a sum-of-products engine with graded third factors by its lowered forward rule ``gated``
    (``GatedNet.engine_rule``), which ``neurocomp.analysis.gated_chip.train_on_chip`` runs from
    the static network (the rule's scales come from the float network's measured ranges, so no
    Program carries it). A plastic projection of a gated network is refused, naming why, and so
    is rule ``gated`` on any other projection."""
    gated = {p.name for p in net.populations if p.model == "GatedTheta"}
    lrn = prof.learning
    if lrn.kind == "none":  # no learning at all: learning_rule_supported names it once
        return []
    runs = lrn.kind == "sum_of_products" and lrn.third_factor and "gated" in lrn.rules
    why = "a gated theta network is trained off chip (neurocomp train) and deployed static"
    if runs:
        why += (f"; on {prof.name}'s engine its forward rule 'gated' (GatedNet.engine_rule: the phase trace in the "
                "tag, three graded post factors) is trained by neurocomp.analysis.gated_chip.train_on_chip from "
                "the static network, not from a compiled rule")  # fmt: skip
    elif lrn.kind == "sum_of_products":
        has = "does not run" if lrn.third_factor else "lacks"
        why += (f"; its forward rule (GatedNet.engine_rule, rule 'gated') needs the tag and three graded post "
                f"factors, which {prof.name}'s engine {has}")  # fmt: skip
    out = []
    for pr in net.projections:
        if pr.plasticity is None:
            continue
        if {pr.pre, pr.post} & gated:
            out.append(Violation("gated_network_static", _proj(pr.name), f"plastic ({pr.plasticity.name!r}): {why}"))
        elif pr.plasticity.name == "gated":
            out.append(Violation("gated_network_static", _proj(pr.name),
                                 f"rule 'gated' is the gated theta network's forward rule; {pr.pre!r} -> "
                                 f"{pr.post!r} is not a projection of a gated network"))  # fmt: skip
    return out


DRC_RULES: tuple[Rule, ...] = (
    neuron_model_supported,
    reset_mode_supported,
    refractory_supported,
    synaptic_current_supported,
    synaptic_ports_supported,
    input_survives_current_decay,
    bias_supported,
    delay_within_limit,
    sign_mode_supported,
    fan_in_within_limit,
    fan_out_within_limit,
    learning_rule_supported,
    gated_network_static,
    io_ports_within_limit,
    neuron_capacity,
    input_rate_within_limit,
)
"""The design rules, in the order they are reported."""


def check_design_rules(net: DiscreteNetwork, prof: Profile, rules: tuple[Rule, ...] = DRC_RULES) -> list[Violation]:
    """Run every rule; return all violations (empty: the network passes)."""
    return [v for rule in rules for v in rule(net, prof)]


def drc(net: DiscreteNetwork, ctx: PassContext) -> DiscreteNetwork:
    violations = check_design_rules(net, ctx.profile)
    if violations:
        raise DRCError(
            [v.problem() for v in violations],
            header=f"{len(violations)} design-rule violation{'s' * (len(violations) > 1)} for {ctx.profile.name}",
        )
    ctx.note(f"{len(DRC_RULES)} rules passed")
    return net
