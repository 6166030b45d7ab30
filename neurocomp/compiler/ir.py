"""The compiler's intermediate representations, from the float network to the placed,
quantized network. Each stage is a separate frozen object that keeps a link to the stage
it came from; no pass changes its input.

``Network`` (float, continuous time)
  -> ``DiscreteNetwork``  (float, per-step decays chosen in the profile's representation)
  -> ``QuantizedNetwork`` (the chip's integers, with a quantization report)
  -> ``PlacedNetwork``    (plus the mapping of neuron blocks to cores and chips)
  -> ``Program``          (the saved artifact, see :mod:`neurocomp.compiler.program`)

Every stage has ``dump()`` (readable text, for ``--dump-ir-after``) and ``verify()``
(invariants that must hold after the pass that made it; a violation is a compiler bug).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._frozen import FrozenDict
from ..arith.decay import DecayChoice
from ..graph import Network, Projection, RuleSpec
from ..graph.conv import ConvGeometry
from ..graph.neurons import NeuronModel
from ..learning.programmable import ProgrammableEprop
from ..learning.reckon import ReckonLearning
from ..learning.rule import EngineRule
from ..profiles import Profile
from .registers import Registers, registers

# -- discretized -------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscretePopulation:
    """A population at a fixed ``dt``: its float neuron plus the decays the chip realizes.

    ``decays`` maps ``current`` (synaptic current), ``voltage`` (membrane) and ``adapt``
    (ALIF adaptation) to their :class:`DecayChoice`; a ``current`` decay with factor 0
    stands for delta synapses.
    """

    name: str
    size: int
    neuron: NeuronModel
    decays: Mapping[str, DecayChoice] = field(default_factory=FrozenDict)

    @property
    def model(self) -> str:
        return self.neuron.model


@dataclass(frozen=True, eq=False)
class DiscreteNetwork:
    """The float network at time step ``dt_ms`` for ``profile``; projections are unchanged
    (delays are already in steps)."""

    source: Network
    profile: Profile
    dt_ms: float
    populations: tuple[DiscretePopulation, ...]

    @property
    def projections(self) -> tuple[Projection, ...]:
        return self.source.projections

    def population(self, name: str) -> DiscretePopulation:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def verify(self) -> list[str]:
        out = []
        if [p.name for p in self.populations] != [p.name for p in self.source.populations]:
            out.append("discretized populations differ from the source network's")
        for p in self.populations:
            for role, d in p.decays.items():
                if not 0.0 <= d.factor <= 1.0 + 1e-12 and self.profile.formats.decay.representation != "multiplier":
                    out.append(f"population {p.name!r}: {role} decay factor {d.factor} outside [0, 1]")
        return out

    def dump(self) -> str:
        lines = [f"DiscreteNetwork {self.source.name!r} for {self.profile.name}, dt = {self.dt_ms:g} ms"]
        for p in self.populations:
            parts = []
            for role, d in p.decays.items():
                tau = "delta" if d.tau_ms is None else f"tau {d.tau_ms:g} ms"
                code = "" if d.code is None else f" code {d.code}"
                parts.append(f"{role}: {tau} -> factor {d.factor:.6g}{code} (exact {d.exact:.6g})")
            lines.append(f"  population {p.name} [{p.size} x {p.model}]" + ("" if parts else " (input)"))
            lines += [f"    {x}" for x in parts]
        for pr in self.projections:
            lines.append(f"  projection {pr.name}: {pr.pre} -> {pr.post} {pr.shape}, delay <= {pr.max_delay}")
        return "\n".join(lines)


# -- quantized ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamStats:
    """Quantization loss of one parameter of one element.

    Errors compare the realized value (dequantized to model units) with the float value;
    relative errors are over the nonzero float values. ``clipped``: values outside the
    representable range; ``zeroed``: nonzero values that became zero.
    """

    element: str
    param: str
    count: int
    min: float
    max: float
    mean_abs_error: float
    max_abs_error: float
    mean_rel_error: float
    max_rel_error: float
    clipped: int = 0
    zeroed: int = 0
    nonzero: int = 0

    @staticmethod
    def compare(element: str, param: str, exact: np.ndarray, realized: np.ndarray, clipped: int = 0) -> ParamStats:
        acc = StatsAccumulator()
        acc.add(exact, realized, clipped)
        return acc.result(element, param)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StatsAccumulator:
    """Builds a :class:`ParamStats` from chunks, so that large projections are measured
    without whole-array temporaries."""

    def __init__(self) -> None:
        self.n = self.nonzero = self.zeroed = self.clipped = 0
        self.lo, self.hi = math.inf, -math.inf
        self.sum_abs = self.max_abs = self.sum_rel = self.max_rel = 0.0

    def add(self, exact: np.ndarray, realized: np.ndarray, clipped: int = 0) -> None:
        x = np.asarray(exact, dtype=np.float64).ravel()
        q = np.asarray(realized, dtype=np.float64).ravel()
        self.clipped += int(clipped)
        if x.size == 0:
            return
        err = np.abs(q - x)
        nz = x != 0
        rel = err[nz] / np.abs(x[nz])
        self.n += x.size
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        self.sum_abs += float(err.sum())
        self.max_abs = max(self.max_abs, float(err.max()))
        if rel.size:
            self.sum_rel += float(rel.sum())
            self.max_rel = max(self.max_rel, float(rel.max()))
        self.nonzero += int(np.count_nonzero(nz))
        self.zeroed += int(np.count_nonzero(nz & (q == 0)))

    def result(self, element: str, param: str) -> ParamStats:
        if self.n == 0:
            return ParamStats(element, param, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, self.clipped)
        return ParamStats(
            element,
            param,
            self.n,
            self.lo,
            self.hi,
            self.sum_abs / self.n,
            self.max_abs,
            self.sum_rel / self.nonzero if self.nonzero else 0.0,
            self.max_rel,
            self.clipped,
            self.zeroed,
            self.nonzero,
        )


@dataclass(frozen=True)
class QuantReport:
    """Per-parameter quantization statistics and the warnings they raised."""

    stats: tuple[ParamStats, ...]
    warnings: tuple[str, ...] = ()

    def table(self) -> str:
        head = (
            f"{'element':<24} {'param':<14} {'n':>8} {'min':>10} {'max':>10} {'max abs err':>12}"
            f" {'mean rel':>9} {'max rel':>9} {'clipped':>7} {'zeroed':>7}"
        )
        rows = [head, "-" * len(head)]
        for s in self.stats:
            rows.append(
                f"{s.element:<24} {s.param:<14} {s.count:>8} {s.min:>10.4g} {s.max:>10.4g} {s.max_abs_error:>12.3g}"
                f" {s.mean_rel_error:>9.2%} {s.max_rel_error:>9.2%} {s.clipped:>7} {s.zeroed:>7}"
            )
        rows += [f"warning: {w}" for w in self.warnings]
        return "\n".join(rows)


@dataclass(frozen=True)
class QPopulation:
    """A population in the chip's formats.

    ``scale_exp``: the population's voltage scale, ``S = 2**scale_exp`` integer units per
    model unit (1 for float chips). ``params``: the registers of its neuron model
    (:mod:`neurocomp.compiler.registers`: integer registers for fixed-point chips
    (``current_decay``, ``voltage_decay``, ``adapt_decay``, ``threshold`` mantissa,
    ``bias_mant``, ``bias_exp``, ``beta`` mantissa, ``refractory``) or float32 values for
    float chips, plus ``reset`` and, for inputs, ``rate_hz`` and ``seed``); given as a
    mapping, they are checked and typed here (an unknown or missing field is a
    :class:`~neurocomp.compiler.registers.RegisterError` naming it).
    """

    name: str
    size: int
    model: str
    spiking: bool
    scale_exp: int
    params: Registers

    def __post_init__(self) -> None:
        if not isinstance(self.params, Registers):
            object.__setattr__(self, "params", registers(self.model, self.params, f"population {self.name!r}"))

    @classmethod
    def lif(
        cls,
        name: str,
        size: int,
        *,
        du: int,
        dv: int,
        vth: int,
        bias_mant=0,
        bias_exp=0,
        reset: str = "zero",
        refractory: int = 0,
    ) -> QPopulation:
        """A LIF population given by its registers (Lava's names: ``du``, ``dv``, ``vth``,
        ``bias_mant``, ``bias_exp``; the biases may be per neuron)."""
        return cls(
            name,
            size,
            "LIF",
            True,
            0,
            FrozenDict(
                current_decay=int(du),
                voltage_decay=int(dv),
                threshold=int(vth),
                reset=reset,
                refractory=int(refractory),
                bias_mant=_scalar_or_tuple(bias_mant),
                bias_exp=_scalar_or_tuple(bias_exp),
            ),
        )

    @classmethod
    def spike_input(cls, name: str, size: int, rate_hz: float | None = None, seed: int | None = None) -> QPopulation:
        return cls(name, size, "SpikeInput", True, 0, FrozenDict(rate_hz=rate_hz, seed=seed))

    @classmethod
    def error_unit(
        cls, name: str, readout: str, size: int, scale_exp: int, shift: int, bits: int = 8, **ce: Any
    ) -> QPopulation:
        """Graded error units ``e_k = (v_k - target_k) >> shift`` of a leaky readout, saturated
        to ``bits`` signed bits (the payload of a graded spike), added by e-prop's lowering.
        ``scale_exp`` is the readout's voltage scale, in which the target is given. ``ce``: the
        parameters of a softmax cross-entropy unit instead (``loss="ce"`` and its integer
        tables, see :func:`neurocomp.learning.quantities.ce_error_params`): ``e_k = softmax(y)_k -
        target_k`` over the readout units."""
        prm = dict(readout=readout, shift=int(shift), bits=int(bits))
        prm.update(ce)
        return cls(name, size, "ErrorUnit", False, scale_exp, FrozenDict(prm))


def _scalar_or_tuple(x):
    a = np.asarray(x)
    return int(a) if a.ndim == 0 else tuple(int(v) for v in a.ravel())


@dataclass(frozen=True, eq=False)
class QConv:
    """A compiled convolution: its geometry and the kernel's integer mantissas
    (``geometry.kernel_shape``), shared by every synapse of the projection's expansion
    (``QProjection.weights`` is ``mantissas.ravel()[geometry.expand()[2]]``)."""

    geometry: ConvGeometry
    mantissas: np.ndarray

    def to_dict(self, put) -> dict[str, Any]:
        return {**self.geometry.to_dict(), "kernel_shape": list(self.geometry.kernel_shape),
                "mantissas": put(np.ascontiguousarray(self.mantissas))}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, get) -> QConv | None:
        if d is None:
            return None
        g = ConvGeometry(tuple(d["input_shape"]), tuple(d["kernel_shape"]), tuple(d["stride"]),
                         tuple(d["padding"]), int(d["groups"]))  # fmt: skip
        return cls(g, np.asarray(get(d["mantissas"])))


@dataclass(frozen=True, eq=False)
class QProjection:
    """A projection in the chip's formats.

    ``weights``: integer mantissas, ``[post, pre]`` (int32) when dense, the stored values
    (aligned with ``rows``/``cols``) when sparse. The effective input is
    ``mantissa * 2**weight_exp`` (then ``<< input_shift`` on chips that have one);
    ``weight_exp`` is an int, or one per post neuron (int array) where the profile allows.
    ``sign_mode`` and ``num_weight_bits`` are what Lava's Dense takes. ``float_scale``
    converts the effective input back to model units of the post population. ``port``: the
    post neuron's synaptic current it feeds (``"syn"``, or ``"syn2"`` on chips with two).
    """

    name: str
    pre: str
    post: str
    shape: tuple[int, int]
    weights: np.ndarray
    rows: np.ndarray | None
    cols: np.ndarray | None
    weight_exp: int | np.ndarray
    sign_mode: str
    num_weight_bits: int
    delay_steps: int | np.ndarray
    plasticity: RuleSpec | None
    float_scale: float
    # the rule as the chip's learning engine runs it (lower_learning): an EngineRule for a
    # sum-of-products engine, a ReckonLearning for ReckOn's fixed-function e-prop, a
    # ProgrammableEprop for the exact rule on programmable cores
    learning: EngineRule | ReckonLearning | ProgrammableEprop | None = None
    port: str = "syn"
    conv: QConv | None = None  # a convolution: its geometry and shared kernel (the weights are its expansion)

    @classmethod
    def from_mantissas(
        cls,
        name: str,
        pre: str,
        post: str,
        weights,
        *,
        weight_exp: int = 0,
        sign_mode: str | None = None,
        num_weight_bits: int = 8,
        delay_steps=0,
        port: str = "syn",
    ) -> QProjection:
        """A dense projection given by its integer weights, as Lava's Dense takes them
        (``sign_mode=None`` infers it as Lava does: all >= 0 excitatory, all <= 0 inhibitory);
        ``port``: the post neuron's synaptic current (``"syn"`` or ``"syn2"``)."""
        w = np.asarray(weights, dtype=np.int32)
        if sign_mode is None:
            sign_mode = "excitatory" if w.min(initial=0) >= 0 else "inhibitory" if w.max(initial=0) <= 0 else "mixed"
        d = delay_steps if np.ndim(delay_steps) == 0 else np.asarray(delay_steps, dtype=np.int64)
        return cls(
            name,
            pre,
            post,
            tuple(w.shape),
            w,
            None,
            None,
            int(weight_exp),
            sign_mode,
            int(num_weight_bits),
            int(d) if np.ndim(d) == 0 else d,
            None,
            1.0,
            port=port,
        )

    @property
    def is_sparse(self) -> bool:
        return self.rows is not None

    @property
    def n_synapses(self) -> int:
        return int(self.weights.size)

    @property
    def max_delay(self) -> int:
        d = self.delay_steps
        return int(d) if isinstance(d, int) else int(np.max(d, initial=0))

    def dense_mantissas(self) -> np.ndarray:
        if not self.is_sparse:
            return self.weights
        out = np.zeros(self.shape, dtype=self.weights.dtype)
        out[self.rows, self.cols] = self.weights
        return out

    def effective(self) -> np.ndarray:
        """Dequantized weights in model units (dense ``[post, pre]``), for reports and checks."""
        m = self.dense_mantissas().astype(np.float64)
        e = self.weight_exp
        return m * np.exp2(e if isinstance(e, int) else np.asarray(e, dtype=np.float64)[:, None]) * self.float_scale


@dataclass(frozen=True, eq=False)
class QuantizedNetwork:
    source: DiscreteNetwork
    populations: tuple[QPopulation, ...]
    projections: tuple[QProjection, ...]
    report: QuantReport

    @property
    def profile(self) -> Profile:
        return self.source.profile

    def population(self, name: str) -> QPopulation:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def verify(self) -> list[str]:
        """Every integer lies in the range the profile gives it."""
        out: list[str] = []
        f = self.profile.formats
        if self.profile.arithmetic != "fixed":
            return out
        for pr in self.projections:
            lo, hi = f.weight.mantissa_range(pr.sign_mode)  # type: ignore[arg-type]
            if pr.weights.size and (pr.weights.min() < lo or pr.weights.max() > hi):
                out.append(f"projection {pr.name!r}: mantissa outside [{lo}, {hi}]")
            e = np.asarray(pr.weight_exp)
            if e.size and (e.min() < f.weight.exponent_min or e.max() > f.weight.exponent_max):
                out.append(f"projection {pr.name!r}: weight_exp outside the profile's range")
            if f.weight.mixed_sign_drops_lsb and pr.sign_mode == "mixed" and np.any(pr.weights % 2):
                out.append(f"projection {pr.name!r}: a mixed-sign mantissa is odd, but the chip drops that LSB")
        for p in self.populations:
            th = p.params.get("threshold")
            if th is not None and f.threshold is not None:
                lo, hi = f.threshold.mantissa_range()
                if not lo <= th <= hi:
                    out.append(f"population {p.name!r}: threshold mantissa {th} outside [{lo}, {hi}]")
            b = p.params.get("bias_mant")
            if b is not None and f.bias is not None:
                lo, hi = f.bias.mantissa_range()
                if not lo <= b <= hi:
                    out.append(f"population {p.name!r}: bias mantissa {b} outside [{lo}, {hi}]")
        return out

    def dump(self) -> str:
        lines = [f"QuantizedNetwork {self.source.source.name!r} for {self.profile.name}"]
        for p in self.populations:
            params = ", ".join(f"{k}={v}" for k, v in p.params.items())
            lines.append(f"  population {p.name} [{p.size} x {p.model}] S=2^{p.scale_exp}: {params}")
        for pr in self.projections:
            e = (
                pr.weight_exp
                if isinstance(pr.weight_exp, int)
                else f"per-channel {np.min(pr.weight_exp)}..{np.max(pr.weight_exp)}"
            )
            w = pr.weights
            rng = f"[{int(w.min())}, {int(w.max())}]" if w.size else "[]"
            kind = "sparse" if pr.is_sparse else "dense"
            lines.append(
                f"  projection {pr.name}: {kind} {pr.shape} mantissa {rng} exp {e} sign {pr.sign_mode}"
                f" bits {pr.num_weight_bits} delay<={pr.max_delay}"
                + (f" rule {pr.plasticity.name}" if pr.plasticity else "")
            )
        return "\n".join(lines)


# -- placed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Neurons ``start:stop`` of a population, placed on ``core`` (a global core index)."""

    population: str
    start: int
    stop: int
    core: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, eq=False)
class Placement:
    """Blocks on cores, cores on chips, and the resulting load and traffic.

    Arrays are per used core (in order of global core index): ``core_chip``, ``core_neurons``,
    ``core_memory_bits``, ``core_input_axons``. Traffic is in spikes per step at the
    compile option's firing rate: ``traffic_total`` over all synapse-carrying spikes
    (one per destination core), ``traffic_cross_core`` of those leaving their core,
    ``traffic_cross_chip`` leaving their chip. ``energy_pj_per_step``: an estimate from
    the profile's energy figures (``None`` where it publishes none).
    """

    blocks: tuple[Block, ...]
    core_chip: np.ndarray
    core_neurons: np.ndarray
    core_memory_bits: np.ndarray
    core_input_axons: np.ndarray
    traffic_total: float
    traffic_cross_core: float
    traffic_cross_chip: float
    traffic_cross_chip_greedy: float
    energy_pj_per_step: float | None
    energy_terms: Mapping[str, float]

    @property
    def n_cores(self) -> int:
        return len(self.core_chip)

    @property
    def n_chips(self) -> int:
        return int(self.core_chip.max()) + 1 if len(self.core_chip) else 0

    def utilization(self, profile: Profile) -> str:
        c = profile.capacity
        lines = [f"{'core':>5} {'chip':>4} {'neurons':>15} {'synaptic memory':>24} {'input axons':>15}"]
        for i in range(self.n_cores):
            ax = "-" if c.input_axons_per_core is None else f"{self.core_input_axons[i]}/{c.input_axons_per_core}"
            lines.append(
                f"{i:>5} {self.core_chip[i]:>4} {self.core_neurons[i]:>7}/{c.neurons_per_core:<7}"
                f" {self.core_memory_bits[i]:>11}/{c.synaptic_memory_bits_per_core:<12} {ax:>15}"
            )
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class PlacedNetwork:
    quantized: QuantizedNetwork
    placement: Placement

    @property
    def profile(self) -> Profile:
        return self.quantized.profile

    def verify(self) -> list[str]:
        out = []
        cap = self.profile.capacity
        pl = self.placement
        if np.any(pl.core_neurons > cap.neurons_per_core):
            out.append("a core holds more neurons than the profile allows")
        if np.any(pl.core_memory_bits > cap.synaptic_memory_bits_per_core):
            out.append("a core uses more synaptic memory than the profile allows")
        if cap.input_axons_per_core is not None and np.any(pl.core_input_axons > cap.input_axons_per_core):
            out.append("a core has more input axons than the profile allows")
        if pl.n_chips > cap.chips or np.any(np.bincount(pl.core_chip) > cap.cores_per_chip):
            out.append("the placement uses more chips or cores than the profile has")
        covered: dict[str, int] = {}
        for b in pl.blocks:
            covered[b.population] = covered.get(b.population, 0) + b.size
        for p in self.quantized.populations:
            if occupies_core(p, self.profile) and covered.get(p.name, 0) != p.size:
                out.append(f"population {p.name!r}: blocks cover {covered.get(p.name, 0)} of {p.size} neurons")
        return out

    def dump(self) -> str:
        pl = self.placement
        lines = [f"PlacedNetwork: {len(pl.blocks)} blocks on {pl.n_cores} cores, {pl.n_chips} chips"]
        for b in pl.blocks[:50]:
            lines.append(f"  block {b.population}[{b.start}:{b.stop}] -> core {b.core} (chip {pl.core_chip[b.core]})")
        if len(pl.blocks) > 50:
            lines.append(f"  ... {len(pl.blocks) - 50} more blocks")
        return "\n".join(lines)


def occupies_core(pop: QPopulation, profile: Profile) -> bool:
    """Whether a population is placed on neuron cores: external inputs come from the host
    or input ports, and readouts use dedicated output neurons on chips that have them."""
    if pop.model == "SpikeInput":
        return False
    return pop.spiking or profile.capacity.output_neurons is None
