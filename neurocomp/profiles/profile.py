"""The chip profile: every number format, timing rule, capacity limit, learning-engine
feature and energy figure of one chip, as frozen data.

Profiles are read from ``hardware_profiles/<name>.yaml`` by :func:`neurocomp.load_profile`.
Code that needs a bit width, rounding mode or limit reads it from here, never from a
constant of its own. Field docs give the unit; "bits" always counts the sign bit unless
the field says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._frozen import FrozenDict
from ..arith.formats import (  # the number formats live below both arith and profiles
    Formats,
    NeuronModelName,
    ResetMode,
    StateFormat,
)
from ..kernels.gated import state_problems as gated_state_problems


def _ge(v: float) -> dict:
    return {"ge": v}


UpdatePhase = Literal["receive", "bias", "threshold", "current", "voltage", "adapt", "spike", "reset", "send"]


@dataclass(frozen=True, kw_only=True)
class TimeSemantics:
    """What one time step means on the chip.

    ``synaptic_delay_steps``: the latency every projection has (a spike at step ``t`` reaches
    the post-synaptic current at ``t + synaptic_delay_steps``); a projection's own
    ``delay_steps`` adds to it. ``update_order``: the phases of a neuron update, in order.
    ``threshold``: ``greater`` spikes on ``v > th``, ``greater_equal`` on ``v >= th``.
    ``max_spikes_per_step``: spikes one neuron can emit in one step (Xylo: 31).
    ``input_delay_steps``: the latency of projections from external inputs when it differs
    from ``synaptic_delay_steps`` (XyloSim delivers input spikes in the same step).
    ``current_update``: ``decay_then_add`` (``u <- decay(u) + in``, Lava) or
    ``add_then_decay`` (``u <- decay(u + in)``, XyloSim: one input of ``w`` raises ``u`` by
    ``w * (1 - 2**-dash)``, which the quantizer compensates). ``saturation``: ``per_state``
    (each state brought into range once per step) or ``per_add`` (XyloSim: after every
    synaptic add, input channels then recurrent neurons in order, and the membrane increment
    separately from the membrane; run by the layer engine :mod:`neurocomp.emulator.xylo`).
    ``max_input_events_per_step``: events one input channel delivers per step (Xylo: 15;
    more are clipped, with a warning); ``None``: as many as ``max_spikes_per_step``.
    """

    default_dt_ms: float = field(metadata={"gt": 0})
    synaptic_delay_steps: int = field(metadata=_ge(0))
    input_delay_steps: int | None = field(default=None, metadata=_ge(0))
    update_order: tuple[UpdatePhase, ...]
    threshold: Literal["greater", "greater_equal"]
    max_spikes_per_step: int = field(default=1, metadata=_ge(1))
    current_update: Literal["decay_then_add", "add_then_decay"] = "decay_then_add"
    saturation: Literal["per_state", "per_add"] = "per_state"
    max_input_events_per_step: int | None = field(default=None, metadata=_ge(1))


@dataclass(frozen=True, kw_only=True)
class NeuronModelSupport:
    """How the chip runs one neuron model.

    ``implementation``: ``native`` (a built-in model; for loihi2 one Lava has a fixed-point
    process model for), ``programmable`` (microcode or core software), ``fixed_function``.
    ``state``: the formats of the model's state variables where they differ from the
    profile's ``formats`` (e.g. ``a`` for an ALIF adaptation variable).
    ``synaptic_states``: synaptic currents per neuron (Xylo hidden neurons: 2).
    """

    implementation: Literal["native", "programmable", "fixed_function"]
    reset_modes: tuple[ResetMode, ...] = ()
    refractory_max_steps: int = field(default=0, metadata=_ge(0))
    synaptic_current: bool = True
    synaptic_states: int = field(default=1, metadata=_ge(1))
    state: Mapping[str, StateFormat] = field(default_factory=FrozenDict)
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class SynapseEncoding:
    """Bits one stored synapse costs in the core's synaptic memory (used to count memory)."""

    weight_bits: int = field(metadata=_ge(1))
    delay_bits: int = field(default=0, metadata=_ge(0))
    index_bits: int = field(default=0, metadata=_ge(0))
    tag_bits: int = field(default=0, metadata=_ge(0))
    dense: bool = False  # True: a dense row costs weight bits for every (pre, post) pair

    @property
    def sparse_bits(self) -> int:
        return self.weight_bits + self.delay_bits + self.index_bits + self.tag_bits


@dataclass(frozen=True, kw_only=True)
class ConvConnectivity:
    """How the chip holds a convolution (a kernel shared by every output position).

    ``shared_weights``: the kernel is stored once per core that holds post neurons of the
    convolution (else it is expanded, one stored synapse per connection).
    ``weight_exponent_min``: the smallest weight exponent of a kernel (Lava's ``Conv`` ignores
    ``weight_exp``, so the exponent is folded into its integer weights: only exact left shifts).
    ``accumulator_bits``: the signed width the summed input wraps at (the DRC keeps every
    possible sum inside it, so the wrap never happens).
    """

    shared_weights: bool
    weight_exponent_min: int | None = None
    accumulator_bits: int | None = field(default=None, metadata=_ge(2))


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """Capacity limits. ``None`` means the chip has no such limit (or it is unpublished,
    which the profile's notes then say).

    ``chips``: chips in the largest system the profile targets. Fan-in and fan-out are per
    neuron (distinct pre- or post-synaptic neurons), axon counts per core.
    ``input_channels`` / ``output_neurons`` are for chips with fixed I/O ports (Xylo, ReckOn).
    """

    chips: int = field(metadata=_ge(1))
    cores_per_chip: int = field(metadata=_ge(1))
    neurons_per_core: int = field(metadata=_ge(1))
    synaptic_memory_bits_per_core: int = field(metadata=_ge(1))
    synapse_encoding: SynapseEncoding
    max_delay_steps: int = field(metadata=_ge(0))
    fan_in_per_neuron: int | None = None
    fan_out_per_neuron: int | None = None
    input_axons_per_core: int | None = None
    output_axons_per_core: int | None = None
    input_channels: int | None = None
    output_neurons: int | None = None
    convolution: ConvConnectivity | None = None  # None: convolutions are expanded like any projection

    @property
    def neurons_total(self) -> int:
        return self.chips * self.cores_per_chip * self.neurons_per_core


EngineKind = Literal["sum_of_products", "eprop_fixed", "programmable", "none"]


# the registers of a sum-of-products engine its emulation and the rule parser read (``LearningEngine.params``)
SUM_OF_PRODUCTS_PARAMS = (
    "factor_widths",
    "scale_mantissa_bits",
    "trace_bits",
    "impulse_fraction_bits",
    "conn_random_seed",
    "constant_bits",
    "max_factors_per_product",
)


@dataclass(frozen=True, kw_only=True)
class LearningEngine:
    """The on-chip learning engine.

    ``sum_of_products`` (Loihi): rules ``dz = sum m*2^e * dependency * prod(factor + c)``
    over ``variables``; ``mantissa_*``/``exponent_*`` bound the per-product scale,
    ``accumulator_bits`` is the signed update accumulator, ``epoch_bits`` bounds the
    learning epoch (``t_epoch < 2**epoch_bits``), ``synaptic_variable_bits`` the stored
    width of w, t and d. ``eprop_fixed`` (ReckOn): a fixed-function e-prop with registers
    in ``params``. ``programmable``: any rule in the core's arithmetic. ``none``: no learning.
    ``rules``: the learning rules neurocomp can lower onto this engine.
    """

    kind: EngineKind
    rules: tuple[str, ...] = ()
    stochastic_rounding: bool = False
    variables: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    synaptic_variable_bits: Mapping[str, int] = field(default_factory=FrozenDict)
    mantissa_min: int | None = None
    mantissa_max: int | None = None
    exponent_min: int | None = None
    exponent_max: int | None = None
    accumulator_bits: int | None = None
    epoch_bits: int | None = None
    third_factor: bool = False
    params: Mapping[str, Any] = field(default_factory=FrozenDict)  # engine-specific registers

    def _problems(self) -> list[str]:
        out = []
        if self.kind == "none" and self.rules:
            out.append(f"a learning engine of kind 'none' cannot list rules {list(self.rules)}")
        if self.kind == "sum_of_products":
            for key in ("mantissa_min", "mantissa_max", "exponent_min", "exponent_max", "accumulator_bits"):
                if getattr(self, key) is None:
                    out.append(f"{key} is required for a sum_of_products engine")
            out += [f"params.{k} is required for a sum_of_products engine" for k in SUM_OF_PRODUCTS_PARAMS
                    if k not in self.params]  # fmt: skip
            missing = [v for v in ("w", "t", "d") if v not in self.synaptic_variable_bits]
            if missing:
                out.append(f"synaptic_variable_bits: {missing} required for a sum_of_products engine")
        return out

    def product_shift(self, *factors: str) -> int:
        """The low bits a sum-of-products engine drops from a product of ``factors``: its
        width (the scale's mantissa bits plus each factor's width, ``params.factor_widths``)
        beyond the accumulator's magnitude bits (loihi2: t * y2 is 4 + 9 + 7 = 20 bits, 5 more
        than 15, so the product is shifted right by 5)."""
        widths = self.params["factor_widths"]
        width = int(self.params["scale_mantissa_bits"]) + sum(int(widths[f]) for f in factors)
        return max(0, width - (int(self.accumulator_bits) - 1))


@dataclass(frozen=True, kw_only=True)
class LfsrSource:
    """A pseudo-random source of the chip: an unfolded Fibonacci LFSR (see
    :mod:`neurocomp.arith.lfsr`). ``bits``: the register width L. ``taps``: ``[L, t]``, the
    recurrence ``s[n] = s[n - (L - t)] ^ s[n - L]`` (polynomial x^L + x^t + 1, which must be
    primitive: a maximal-length sequence). ``outputs``: sequence bits per draw (one enabled
    clock cycle), cut into ``word_bits``-bit random numbers, least significant bit first.
    ``layout``: where the register bits sit in the sequence (``window`` or ``chained``).
    ``seeds``: the register values the chip is programmed with, one per instance of the
    generator (ReckOn has one per neuron of a two-neuron SRAM word for its roundings).
    ``reset``: the register values after a hardware reset, before any seed is programmed.
    ``role``: what the chip draws from it (the emulator's schedule of draws is per role)."""

    role: str
    bits: int = field(metadata={"ge": 2, "le": 62})
    taps: tuple[int, ...]
    outputs: int = field(metadata=_ge(1))
    word_bits: int = field(metadata={"ge": 1, "le": 62})
    layout: Literal["window", "chained"] = "window"
    seeds: tuple[int, ...]
    reset: tuple[int, ...] = ()

    def _problems(self) -> list[str]:
        from ..arith.lfsr import layout_problems

        out = layout_problems(self.bits, self.taps, self.outputs, self.word_bits, self.layout)
        if not self.seeds:
            out.append("seeds: at least one seed (one per instance)")
        for name, values in (("seeds", self.seeds), ("reset", self.reset)):
            for i, v in enumerate(values):
                if not 0 < v < 2**self.bits:
                    out.append(
                        f"{name}[{i}] = {v:#x}: a {self.bits}-bit register value other than 0 (0 locks the LFSR)"
                    )
        if self.reset and len(self.reset) != len(self.seeds):
            out.append(f"reset: {len(self.reset)} values for {len(self.seeds)} instances")
        return out


@dataclass(frozen=True, kw_only=True)
class Energy:
    """Energy figures in picojoules, ``None`` where unpublished."""

    pj_per_synaptic_op: float | None = None
    pj_per_neuron_update: float | None = None
    pj_per_synaptic_update: float | None = None
    pj_per_spike_routed: float | None = None


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where numbers come from: ``covers`` lists dotted key prefixes of the profile."""

    id: str
    ref: str
    covers: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A chip profile. Build it with :func:`neurocomp.load_profile`, not by hand.

    ``arithmetic``: ``fixed`` (integer state, bit-accurate emulation) or ``float32``
    (the chip computes in single precision). ``estimates``: dotted keys whose values are
    estimates rather than published figures. ``validation_backend``: a simulator whose
    fixed-point models this profile's semantics must match bit for bit (loihi2: ``lava``).
    ``random_sources``: the chip's own pseudo-random generators by name (ReckOn's LFSRs);
    without them, stochastic roundings draw from the emulator's seeded generator.
    """

    schema: int
    name: str
    title: str
    description: str
    arithmetic: Literal["fixed", "float32"]
    formats: Formats
    time: TimeSemantics
    neuron_models: Mapping[str, NeuronModelSupport]
    capacity: Capacity
    learning: LearningEngine
    energy: Energy
    sources: tuple[Source, ...]
    random_sources: Mapping[str, LfsrSource] = field(default_factory=FrozenDict)
    estimates: tuple[str, ...] = ()
    validation_backend: str | None = None
    notes: str = ""
    # Set by the loader, not read from YAML.
    path: str = field(default="", compare=False, metadata={"internal": True})
    fingerprint: str = field(default="", compare=False, metadata={"internal": True})

    def _problems(self) -> list[str]:
        known = NeuronModelName.__args__  # type: ignore[attr-defined]
        out = [
            f"neuron_models.{m}: unknown neuron model (known: {', '.join(known)})"
            for m in self.neuron_models
            if m not in known
        ]
        lfsr_rules = [
            key
            for key, rule in (
                ("formats.decay", self.formats.decay.stochastic_rule),
                ("formats.trace", self.formats.trace.stochastic_rule if self.formats.trace else "uniform"),
            )
            if rule == "lfsr"
        ]
        if lfsr_rules and not self.random_sources:
            out.append(f"{', '.join(lfsr_rules)}: stochastic_rule 'lfsr' needs random_sources (the chip's LFSRs)")
        gated = self.neuron_models.get("GatedTheta")
        if gated is not None and self.arithmetic == "fixed":  # the microcode neuron's registers
            out += [f"neuron_models.GatedTheta.state.{msg}" for msg in gated_state_problems(gated.state)]
        return out

    def supports(self, model: str) -> bool:
        return model in self.neuron_models

    def is_estimate(self, key: str) -> bool:
        return any(key == e or key.startswith(e + ".") for e in self.estimates)
