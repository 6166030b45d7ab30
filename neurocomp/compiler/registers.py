"""A compiled population's registers, typed per neuron model.

``QPopulation.params`` holds one of these: a frozen dataclass with one named field per
register, so that a misspelt or missing register fails where the population is built, naming
the field, instead of where an emulator or backend first reads it. Each is also a read-only
mapping of the registers it holds (a field left out is absent, not None), so code that reads
``params["threshold"]`` or ``params.get("rate_hz")`` and a Program's manifest (``params`` as
a JSON object) see exactly the registers the compiler wrote.

Values are in the chip's formats: integer codes and mantissas on fixed-point chips (decays in
the profile's decay representation, ``threshold`` and ``beta`` mantissas, ``bias_mant`` and
``bias_exp``, per neuron where a tuple), float32 values on float chips (``bias`` instead of
the mantissa and exponent). A chip without a bias has none of the three.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from ..errors import NeurocompError, Problem


class RegisterError(NeurocompError, ValueError):
    """A population's registers do not fit its neuron model."""

    kind = "registers"


class _Absent(enum.Enum):
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent.ABSENT  # a register the population does not have

Scalar = int | float
PerNeuron = int | float | tuple[int, ...]


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class Registers(Mapping):
    """Base of the register sets: the mapping of the fields present, in field order."""

    def _present(self) -> Iterator[str]:
        return (f.name for f in fields(self) if getattr(self, f.name) is not ABSENT)

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, ABSENT) if key in self._names() else ABSENT
        if value is ABSENT:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return self._present()

    def __len__(self) -> int:
        return sum(1 for _ in self._present())

    def __hash__(self) -> int:
        return hash(tuple(self.items()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.items())})"

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class InputRegisters(Registers):
    """A spike input: a Poisson source's rate (Hz, None: spikes given at run time), its seed,
    and ``trials`` (``independent`` draws per trial, or ``shared``)."""

    rate_hz: float | None | _Absent = ABSENT
    seed: int | None | _Absent = ABSENT
    trials: str | _Absent = ABSENT


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class LiRegisters(Registers):
    """A leaky integrator (readout): current and voltage decays and its bias."""

    current_decay: Scalar
    voltage_decay: Scalar
    bias_mant: PerNeuron | _Absent = ABSENT
    bias_exp: PerNeuron | _Absent = ABSENT
    bias: float | _Absent = ABSENT


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class LifRegisters(Registers):
    """A LIF neuron: decays, threshold mantissa, reset (``zero`` or ``subtract``),
    refractory steps and its bias."""

    current_decay: Scalar
    voltage_decay: Scalar
    threshold: Scalar
    reset: str
    refractory: int
    bias_mant: PerNeuron | _Absent = ABSENT
    bias_exp: PerNeuron | _Absent = ABSENT
    bias: float | _Absent = ABSENT
    # the second synaptic current's decay (port syn2; chips with two currents, e.g. Xylo)
    current2_decay: Scalar | _Absent = ABSENT


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class AlifRegisters(Registers):
    """An adaptive LIF neuron: a LIF's registers plus the adaptation's decay and its
    threshold increment ``beta`` (a threshold mantissa)."""

    current_decay: Scalar
    voltage_decay: Scalar
    adapt_decay: Scalar
    threshold: Scalar
    reset: str
    refractory: int
    beta: Scalar
    bias_mant: PerNeuron | _Absent = ABSENT
    bias_exp: PerNeuron | _Absent = ABSENT
    bias: float | _Absent = ABSENT


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class ErrorUnitRegisters(Registers):
    """e-prop's graded error units of a readout: ``e = (v - target) >> shift`` saturated to
    ``bits`` signed bits, or with ``loss = "ce"`` the softmax cross-entropy error from its
    integer tables (:func:`neurocomp.learning.quantities.ce_error_params`)."""

    readout: str
    shift: int
    bits: int
    loss: str | _Absent = ABSENT
    exp_frac_bits: int | _Absent = ABSENT
    exp_mult: int | _Absent = ABSENT
    exp_shift: int | _Absent = ABSENT
    exp_lut: tuple[int, ...] | _Absent = ABSENT
    recip_bits: int | _Absent = ABSENT
    recip_lut: tuple[int, ...] | _Absent = ABSENT
    payload_max: int | _Absent = ABSENT


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class GatedThetaRegisters(Registers):
    """A gated theta neuron's step constants (:meth:`neurocomp.graph.GatedTheta.step_constants`)
    as the chip realizes them, in model units: float32 values on a float core, the values of
    the fixed registers on loihi2 (:func:`neurocomp.kernels.gated.chip_constants`): ``eps =
    dt/tau_v``, ``alpha = exp(-dt/tau_s)``, ``beta = (1 - alpha)/dt`` (1/ms), the zone's
    ``width`` (rad) and ``zone_shape``, the bias ``I0`` and the initial phase ``theta0`` (rad)."""

    zone_shape: str
    eps: float
    alpha: float
    beta: float
    width: float
    bias: float
    theta0: float


# neuron model -> its registers
REGISTERS: dict[str, type[Registers]] = {
    "SpikeInput": InputRegisters,
    "LI": LiRegisters,
    "LIF": LifRegisters,
    "ALIF": AlifRegisters,
    "ErrorUnit": ErrorUnitRegisters,
    "GatedTheta": GatedThetaRegisters,
}


def registers(model: str, values: Mapping[str, Any], where: str) -> Registers:
    """The registers of a ``model`` population from a mapping of register names to values
    (as a Program's manifest stores them); every unknown or missing field is named."""
    cls = REGISTERS.get(model)
    if cls is None:
        raise RegisterError([Problem(where, f"unknown neuron model {model!r} (known: {', '.join(REGISTERS)})")])
    if isinstance(values, cls):
        return values
    names = cls._names()
    problems = [
        Problem(where, f"{model} registers: unknown field {k!r} (fields: {', '.join(names)})")
        for k in values
        if k not in names
    ]
    problems += [
        Problem(where, f"{model} registers: field {f.name!r} is required")
        for f in fields(cls)
        if f.default is MISSING and f.name not in values
    ]
    if problems:
        raise RegisterError(problems)
    return cls(**values)
