"""The number formats of a chip's state, weights, decays and traces, as frozen data: the
part of a profile that the arithmetic (:mod:`neurocomp.arith`) computes with. The profile
(:mod:`neurocomp.profiles.profile`) holds one :class:`Formats`; these definitions live here,
below both, so that ``arith`` and ``profiles`` do not import each other. Field docs give the
unit; "bits" always counts the sign bit unless the field says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Rounding = Literal["toward_zero", "floor", "nearest", "stochastic"]
Overflow = Literal["wrap", "wrap_once", "saturate"]
"""How an out-of-range integer is brought back in range.

``wrap``: modulo 2**bits into the signed range. ``saturate``: clip to the range.
``wrap_once``: one correction of +-2**bits, as the current of Lava's ``PyLifModelBitAcc``:
a value ``> 2**(bits-1)`` loses ``2**bits`` and one ``<= -2**(bits-1)`` gains it, once (a
value that overshoots by more than ``2**bits`` stays out of range). In every mode,
``strict`` emulation raises instead.
"""
StochasticRule = Literal["uniform", "lfsr"]
"""How ``stochastic`` rounding of ``p / 2**n`` decides to round up.

``uniform``: up with probability equal to the dropped fraction (one uniform draw from the
emulator's seeded generator per element, ``u < fraction``). ``lfsr``: as ReckOn's ``srnn.v``
rounds its leaks and trace decays: up when the dropped fraction bits are at least a random
integer from the chip's LFSR (``frac >= rand``; with a ``w``-bit random and ``w < n``, the top
``w`` fraction bits are compared) and the kept integer part is nonzero (the RTL's
``|leak[30:15]`` term: a value that decays below 1 is never rounded back up).
"""
SignMode = Literal["mixed", "excitatory", "inhibitory"]
NeuronModelName = Literal["LIF", "ALIF", "LI", "SpikeInput", "GatedTheta"]
ResetMode = Literal["zero", "subtract"]


def _ge(v: float) -> dict:
    return {"ge": v}


@dataclass(frozen=True, kw_only=True)
class WeightFormat:
    """Synaptic weight encoding: an integer mantissa and a shared binary exponent.

    ``encoding = "sign_mode"`` (Loihi): ``mantissa_bits`` is the magnitude width and the
    sign comes from the projection's sign mode, so a mixed matrix spans
    ``[-2**bits, 2**bits - 1]`` and loses ``mixed_sign_drops_lsb`` LSBs; excitatory spans
    ``[0, 2**bits - 1]``, inhibitory ``[-(2**bits - 1), 0]``.
    ``encoding = "twos_complement"``: ``mantissa_bits`` includes the sign,
    ``[-2**(bits-1), 2**(bits-1) - 1]`` for every projection.
    The effective weight is ``mantissa * 2**exponent`` with
    ``exponent_min <= exponent <= exponent_max``; a negative exponent is a right shift of
    the summed input rounded by ``exponent_rounding``.
    """

    mantissa_bits: int = field(metadata=_ge(1))
    encoding: Literal["sign_mode", "twos_complement"]
    exponent_min: int
    exponent_max: int
    exponent_rounding: Rounding
    sign_modes: tuple[SignMode, ...]
    mixed_sign_drops_lsb: bool = False
    per_channel_exponent: bool = False

    def mantissa_range(self, sign_mode: SignMode = "mixed") -> tuple[int, int]:
        """Inclusive integer range of the mantissa under ``sign_mode``."""
        b = self.mantissa_bits
        if self.encoding == "twos_complement":
            return -(2 ** (b - 1)), 2 ** (b - 1) - 1
        return {"mixed": (-(2**b), 2**b - 1), "excitatory": (0, 2**b - 1), "inhibitory": (-(2**b - 1), 0)}[sign_mode]

    def _problems(self) -> list[str]:
        out = []
        if self.exponent_min > self.exponent_max:
            out.append(f"exponent_min {self.exponent_min} > exponent_max {self.exponent_max}")
        if not self.sign_modes:
            out.append("sign_modes must list at least one mode")
        return out


@dataclass(frozen=True, kw_only=True)
class StateFormat:
    """A state variable (current, voltage, adaptation): ``bits`` wide, two's complement
    when ``kind = "int"`` (``frac_bits`` of them fractional), or an IEEE float of ``bits``
    (32 or 64) when ``kind = "float"``. ``overflow`` applies to integer states only;
    ``symmetric`` limits the range to ``+-(2**(bits-1) - 1)`` (Lava clips v that way).
    ``register_bits``: the width of the two's complement register the state's update is
    computed in, when wider than ``bits`` (Lava: int32): a sum that leaves it wraps modulo
    ``2**register_bits`` before ``overflow`` applies (0: no such register)."""

    bits: int = field(metadata={"ge": 2, "le": 64})
    kind: Literal["int", "float"] = "int"
    frac_bits: int = field(default=0, metadata=_ge(0))
    overflow: Overflow = "saturate"
    symmetric: bool = False
    register_bits: int = field(default=0, metadata={"ge": 0, "le": 64})

    def int_range(self) -> tuple[int, int]:
        """Inclusive range of an integer state: ``[-2**(bits-1), 2**(bits-1) - 1]``, or
        ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` when ``symmetric``."""
        hi = 2 ** (self.bits - 1) - 1
        return (-hi if self.symmetric else -hi - 1), hi

    def _problems(self) -> list[str]:
        if self.kind == "float" and self.bits not in (16, 32, 64):
            return [f"a float state must be 16, 32 or 64 bits, not {self.bits}"]
        if self.frac_bits >= self.bits:
            return [f"frac_bits {self.frac_bits} must be below bits {self.bits}"]
        if self.register_bits and self.register_bits < self.bits:
            return [f"register_bits {self.register_bits} must be 0 or at least bits {self.bits}"]
        return []


@dataclass(frozen=True, kw_only=True)
class DecayFormat:
    """How a leak ``x <- x * exp(-dt/tau)`` is computed per step.

    * ``multiplicative``: a ``bits``-wide unsigned decay ``d`` and
      ``x <- round(x * (2**bits - d - offset) / 2**bits)``; ``current_offset`` and
      ``voltage_offset`` are the chip's fixed extra decrement (Loihi: 1 on the current).
    * ``multiplier``: a ``bits``-wide fixed-point factor ``alpha`` (``bits - 1`` fractional
      bits) and ``x <- round(x * alpha)``.
    * ``bitshift``: ``x <- x - round(x / 2**dash)`` with a ``bits``-wide ``dash``.
    * ``exact``: ``x <- x * exp(-dt/tau)`` in the state's own (float) arithmetic.

    ``rounding`` is applied to the product; for negative states ``toward_zero``
    (sign-magnitude) and ``floor`` (arithmetic shift) differ by one LSB. ``min_step``: a
    nonzero state always moves toward zero by at least this much per step (XyloSim: 1).
    ``stochastic_rule``: how ``stochastic`` rounding decides (see :data:`StochasticRule`).
    """

    representation: Literal["multiplicative", "multiplier", "bitshift", "exact"]
    bits: int = field(metadata={"ge": 1, "le": 64})
    rounding: Rounding
    current_offset: int = 0
    voltage_offset: int = 0
    min_step: int = field(default=0, metadata=_ge(0))
    stochastic_rule: StochasticRule = "uniform"


@dataclass(frozen=True, kw_only=True)
class ScaledFormat:
    """A parameter stored as ``mantissa << (exponent + shift)`` (threshold, bias).

    ``mantissa_bits`` counts the sign bit when ``signed``. ``shift`` is a fixed left shift
    the chip applies (Loihi: ``vth << 6``); ``exponent_min..exponent_max`` is the range
    of the programmable exponent (0..0 when there is none)."""

    mantissa_bits: int = field(metadata={"ge": 1, "le": 64})
    signed: bool
    exponent_min: int = 0
    exponent_max: int = 0
    shift: int = 0

    def mantissa_range(self) -> tuple[int, int]:
        b = self.mantissa_bits
        return (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if self.signed else (0, 2**b - 1)

    def _problems(self) -> list[str]:
        if self.exponent_min > self.exponent_max:
            return [f"exponent_min {self.exponent_min} > exponent_max {self.exponent_max}"]
        return []


@dataclass(frozen=True, kw_only=True)
class TraceFormat:
    """A spike trace: ``bits`` wide (unsigned unless ``signed``), impulses with
    ``impulse_fraction_bits`` fractional bits, decays rounded by ``decay_rounding``
    (``stochastic_rule`` as for :class:`DecayFormat`)."""

    bits: int = field(metadata={"ge": 1, "le": 64})
    signed: bool = False
    impulse_fraction_bits: int = field(default=0, metadata=_ge(0))
    decay_rounding: Rounding = "floor"
    stochastic_rule: StochasticRule = "uniform"


@dataclass(frozen=True, kw_only=True)
class Formats:
    """The chip's numeric formats.

    ``input_shift``: the summed synaptic input is shifted left by this many bits before it
    is added to the current (Loihi: ``a << 6``), so weights and thresholds share a scale.
    """

    weight: WeightFormat
    current: StateFormat
    voltage: StateFormat
    decay: DecayFormat
    threshold: ScaledFormat | None = None  # None: stored in the state format (float chips)
    bias: ScaledFormat | None = None  # None: the chip has no bias
    trace: TraceFormat | None = None
    input_shift: int = field(default=0, metadata=_ge(0))

    def _problems(self) -> list[str]:
        if self.current.kind == "int" and self.threshold is None:
            return ["threshold: required when the state is integer"]
        return []
