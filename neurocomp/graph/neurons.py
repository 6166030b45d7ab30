"""Neuron models of the float network (continuous time, physical units).

Times are in milliseconds; voltages, thresholds and biases are in the model's own
dimensionless units (a weight of 1.0 moves the membrane by 1.0). The compiler turns these
into per-step decays at a chosen ``dt`` and then into a chip's integer formats; the same
definitions serve the float reference, the emulator and the backends.

Each model checks its own fields in ``__post_init__`` and raises one
:class:`~neurocomp.errors.ModelError` listing every problem it found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar, Literal

from ..errors import ModelError, Problem

ResetMode = Literal["zero", "subtract"]
RESET_MODES: tuple[str, ...] = ("zero", "subtract")


def _finite(name: str, v: object, out: list[str]) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        out.append(f"{name}: expected a number, got {v!r}")
        return False
    if not math.isfinite(v):
        out.append(f"{name}: must be finite, got {v!r}")
        return False
    return True


def _positive_time(name: str, v: object, out: list[str]) -> None:
    if _finite(name, v, out) and v <= 0:  # type: ignore[operator]
        out.append(f"{name}: a time constant must be > 0 ms, got {v!r}")


class NeuronModel:
    """Base of the neuron-model dataclasses (``model`` is the name used in YAML)."""

    model: ClassVar[str]
    spiking: ClassVar[bool] = True

    def _problems(self) -> list[str]:
        return []

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ModelError([Problem(f"{self.model} neuron", p) for p in problems])

    def to_dict(self) -> dict:
        """Plain values for YAML (``model`` first, fields in declaration order)."""
        return {"model": self.model, **{f.name: getattr(self, f.name) for f in fields(self)}}  # type: ignore[arg-type]


@dataclass(frozen=True)
class LIF(NeuronModel):
    """Leaky integrate-and-fire neuron, current-based when ``tau_syn_ms`` is set.

    ``tau_syn di/dt = -i + input`` (with ``tau_syn_ms=None`` the synapses are delta pulses
    that jump ``v`` directly) and ``tau_mem dv/dt = -v + i + bias``. ``tau_syn2_ms``: a second
    synaptic current ``i2`` (fed by projections with ``port: syn2``, added to ``i``), on chips
    with two (Xylo). A spike is emitted when
    ``v`` crosses ``v_th``; then ``v`` is set to ``v_reset`` (``reset="zero"``) or reduced by
    ``v_th`` (``reset="subtract"``), and the neuron is silent for ``refractory_steps`` steps.

    Units: ``tau_*_ms`` in ms; ``v_th``, ``v_reset`` and ``bias`` (per step) in model units.
    """

    model: ClassVar[str] = "LIF"

    tau_mem_ms: float
    tau_syn_ms: float | None = None
    v_th: float = 1.0
    v_reset: float = 0.0
    reset: ResetMode = "zero"
    bias: float = 0.0
    refractory_steps: int = 0
    tau_syn2_ms: float | None = None

    def _problems(self) -> list[str]:
        out: list[str] = []
        _positive_time("tau_mem_ms", self.tau_mem_ms, out)
        for name in ("tau_syn_ms", "tau_syn2_ms"):
            if getattr(self, name) is not None:
                _positive_time(name, getattr(self, name), out)
        th_ok = _finite("v_th", self.v_th, out) and self.v_th > 0
        if not th_ok and _finite("", self.v_th, []):
            out.append(f"v_th: the threshold must be > 0, got {self.v_th!r}")
        if _finite("v_reset", self.v_reset, out) and th_ok and self.v_reset >= self.v_th:
            out.append(f"v_reset: {self.v_reset!r} must be below the threshold v_th={self.v_th!r}")
        if self.reset not in RESET_MODES:
            out.append(f"reset: {self.reset!r} is not one of {', '.join(RESET_MODES)}")
        _finite("bias", self.bias, out)
        r = self.refractory_steps
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            out.append(f"refractory_steps: must be an integer >= 0, got {r!r}")
        return out


@dataclass(frozen=True)
class ALIF(LIF):
    """Adaptive LIF (LSNN / e-prop): the threshold rises by ``beta`` per unit of the
    adaptation variable ``a``, ``A = v_th + beta * a``, where ``a`` jumps by 1 at each
    spike and decays with ``tau_adapt_ms``. Reset still uses ``v_th`` (Bellec et al. 2020).

    Units: ``tau_adapt_ms`` in ms; ``beta`` in model voltage units per spike.
    """

    model: ClassVar[str] = "ALIF"

    tau_adapt_ms: float = 200.0
    beta: float = 0.07

    def _problems(self) -> list[str]:
        out = super()._problems()
        _positive_time("tau_adapt_ms", self.tau_adapt_ms, out)
        if _finite("beta", self.beta, out) and self.beta < 0:
            out.append(f"beta: the adaptation strength must be >= 0, got {self.beta!r}")
        return out


@dataclass(frozen=True)
class LI(NeuronModel):
    """Leaky integrator readout (no spikes): ``tau_mem dv/dt = -v + i + bias``, with a
    synaptic current of ``tau_syn_ms`` or delta synapses when it is ``None``.

    Units: ``tau_*_ms`` in ms; ``bias`` in model units per step.
    """

    model: ClassVar[str] = "LI"
    spiking: ClassVar[bool] = False

    tau_mem_ms: float
    tau_syn_ms: float | None = None
    bias: float = 0.0

    def _problems(self) -> list[str]:
        out: list[str] = []
        _positive_time("tau_mem_ms", self.tau_mem_ms, out)
        if self.tau_syn_ms is not None:
            _positive_time("tau_syn_ms", self.tau_syn_ms, out)
        _finite("bias", self.bias, out)
        return out


@dataclass(frozen=True)
class SpikeInput(NeuronModel):
    """A spike source. With ``rate_hz`` it fires as a Poisson process at that rate,
    drawn from ``seed`` (so the same seed gives the same spikes); without it, it is
    driven by spike arrays given at run time. ``trials``: in a batch, each trial draws its
    own spikes (``"independent"``, streams derived from ``seed``; trial 0 draws what a
    single run draws) or every trial gets the same frozen pattern (``"shared"``).

    Units: ``rate_hz`` in Hz (spikes per second of model time).
    """

    model: ClassVar[str] = "SpikeInput"

    rate_hz: float | None = None
    seed: int | None = None
    trials: Literal["independent", "shared"] = "independent"

    def _problems(self) -> list[str]:
        out: list[str] = []
        if self.rate_hz is not None:
            if _finite("rate_hz", self.rate_hz, out) and self.rate_hz < 0:
                out.append(f"rate_hz: must be >= 0 Hz, got {self.rate_hz!r}")
            if self.seed is None:
                out.append("seed: a Poisson source needs a seed so that its spikes are reproducible")
        if self.trials not in ("independent", "shared"):
            out.append(f"trials: must be 'independent' or 'shared', got {self.trials!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            out.append(f"seed: must be an integer >= 0, got {self.seed!r}")
        return out

    @property
    def poisson(self) -> bool:
        return self.rate_hz is not None


GATE_SHAPES: tuple[str, ...] = ("cosine", "rect")


@dataclass(frozen=True)
class GatedTheta(NeuronModel):
    """Theta neuron (the quadratic integrate-and-fire neuron in phase form, ``v = tan(theta/2)``)
    with a gated synapse (Huh & Sejnowski 2018)::

        tau_v dtheta/dt = (1 - cos theta) + (1 + cos theta) I
        tau_s ds/dt     = -s + g(theta) dtheta/dt
        I               = W s + U i(t) + bias

    ``theta`` is the phase in rad (never wrapped); the neuron "spikes" when ``theta`` passes
    ``pi`` (mod 2 pi), where ``dtheta/dt = 2/tau_v`` whatever ``I``. The gate ``g >= 0`` is
    2 pi-periodic, supported on the active zone ``|theta - pi| < zone_width_rad/2`` (mod 2 pi)
    and has unit integral over it, so each passage injects unit charge (``int s dt = 1``) and
    a partial excursion into the zone a graded one: the synaptic output ``s`` is a smooth
    function of the state, with no reset and no threshold. ``zone_shape``: ``"cosine"``
    (``g = (1 + cos(2 pi (theta - pi)/width))/width``, C1, the default) or ``"rect"``
    (``g = 1/width``, the paper's Fig. 1; its gradient is exact except at the zone's edges).

    Units: ``tau_v_ms``, ``tau_s_ms`` in ms; ``zone_width_rad`` in rad of phase, in (0, 2 pi];
    ``bias`` (``I0``) dimensionless (below 0: excitable, resting at
    ``theta = -arccos((1 + I0)/(1 - I0))``; above 0: tonic firing); ``s`` in 1/ms, so the
    weights onto ``I`` from ``s`` are in ms (charge).
    """

    model: ClassVar[str] = "GatedTheta"

    tau_v_ms: float = 5.0
    tau_s_ms: float = 20.0
    zone_width_rad: float = 1.0
    zone_shape: str = "cosine"
    bias: float = -0.1

    def _problems(self) -> list[str]:
        out: list[str] = []
        _positive_time("tau_v_ms", self.tau_v_ms, out)
        _positive_time("tau_s_ms", self.tau_s_ms, out)
        w = self.zone_width_rad
        if _finite("zone_width_rad", w, out) and not 0 < w <= 2 * math.pi:
            out.append(f"zone_width_rad: the active zone's width must be in (0, 2 pi] rad, got {w!r}")
        if self.zone_shape not in GATE_SHAPES:
            out.append(f"zone_shape: {self.zone_shape!r} is not one of {', '.join(GATE_SHAPES)}")
        _finite("bias", self.bias, out)
        return out

    def step_constants(self, dt_ms: float) -> dict[str, float]:
        """The discrete model's per-neuron constants at step ``dt_ms`` (float64): ``eps =
        dt/tau_v``, ``alpha = exp(-dt/tau_s)``, ``beta = (1 - alpha)/dt`` (1/ms), ``width``
        (rad), ``bias`` (I0) and the initial phase ``theta0`` (rad)."""
        alpha = math.exp(-dt_ms / self.tau_s_ms)
        return {"eps": dt_ms / self.tau_v_ms, "alpha": alpha, "beta": (1 - alpha) / dt_ms,
                "width": self.zone_width_rad, "bias": self.bias, "theta0": self.theta_rest}  # fmt: skip

    @classmethod
    def chip_refusal(cls, profile) -> str:
        """Why ``profile``'s chip compiles no Program of this model (the DRC's and ``check
        --deploy``'s refusal): it needs the phase's cosine and the gate's integral, which only
        a float core's software or a microcode neuron computes (spinnaker2's and loihi2's
        profiles list the model)."""
        models = ", ".join(k for k in profile.neuron_models if k != "SpikeInput")
        return (
            f"the gated synapse needs the gate g(theta) of the membrane phase, the theta neuron's cosine and a "
            f"graded synaptic output s; {profile.name}'s neuron models ({models}, {profile.arithmetic} "
            "arithmetic) have no gate nonlinearity on the membrane state"
        )

    @property
    def theta_rest(self) -> float:
        """The initial phase (rad): the stable fixed point of ``dtheta/dt`` for ``bias < 0``, else 0."""
        i0 = self.bias
        return -math.acos((1 + i0) / (1 - i0)) if i0 < 0 else 0.0


NEURON_MODELS: dict[str, type[NeuronModel]] = {m.model: m for m in (LIF, ALIF, LI, SpikeInput, GatedTheta)}
"""Neuron models by their YAML name."""
