"""The discrete-time conventions of a float simulation, as explicit parameters.

A LIF network in discrete time is not defined by its ODE alone: where the input is scaled,
when the reset acts and where the one-step delays sit all change the trajectory. Two
conventions matter here, and every float simulation in neurocomp takes one of them.

``Conventions.chip(profile)``: what the bit-accurate emulator and the loihi2 lowering do
(Lava's fixed-point LIF and Dense), step ``t``::

    u_t = du * u_{t-1} + sum_i w_i s_i(t - latency)       (du = 0: delta synapses)
    v_t = dv * v_{t-1} + u_t + bias
    z_t = v_t > v_th;  then v_t <- 0 (reset "zero") or v_t - v_th (reset "subtract")

The reset acts at once, so the next step decays it: a subtractive reset removes
``dv * v_th`` from ``v_{t+1}``. Every projection, from inputs and from neurons alike, has the
profile's synaptic latency (1 step on Loihi: a spike at ``t`` reaches ``u`` at ``t + 1``).

``Conventions.bellec()``: Bellec et al.'s e-prop code (``eprop.md`` §1.2, §1.9;
``eprop-baselines.md`` §1), with delta synapses::

    v_t = alpha * v_{t-1} + (1 - alpha) * (W_in x_t + W_rec z_{t-1}) - v_th * z_{t-1}
    z_t = v_t > v_th

and the readout ``y_t = kappa y_{t-1} + (1 - kappa) W_out z_t``. The input of every population
is scaled by one minus its decay (``input_scale="one_minus_alpha"``), the reset subtracts
``v_th`` from the next step's voltage without decay (``reset_timing="next_step"``, which
applies to subtractive resets only), external inputs and the readout's input act in the same
step (latency 0) and recurrent spikes one step later (latency 1).

Mapping of one onto the other for the loihi2 lowering: the chip's ``v_th`` and weights are
the float model's (no ``1 - alpha``: a Bellec network maps onto the chip with its weights
multiplied by ``1 - alpha``); the chip resets immediately (a factor ``alpha`` on the reset);
the chip's inputs arrive one step later than Bellec's, which shifts the whole trajectory by
one step relative to the input and target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

InputScale = Literal["none", "one_minus_alpha"]
ResetTiming = Literal["immediate", "next_step"]


@dataclass(frozen=True)
class Conventions:
    """Discrete-time conventions of a float simulation (see the module docstring).

    ``input_scale``: ``"none"`` (a weight of 1 moves ``v`` by 1) or ``"one_minus_alpha"``
    (synaptic input times ``1 - alpha``, alpha the membrane decay per step).
    ``reset_timing``: ``"immediate"`` (reset in the spiking step, decayed with ``v``) or
    ``"next_step"`` (``v_th`` subtracted from the next step's ``v``, undecayed; subtractive
    reset only).
    ``input_latency`` / ``recurrent_latency`` / ``readout_latency``: steps from a spike of an
    external input / of a neuron to its effect on a spiking population's current / on a
    leaky readout (LI) (a projection's own ``delay_steps`` add to these).

    ALIF adaptation follows ``reset_timing`` too: ``"next_step"`` is the paper's
    ``a_t = rho a_{t-1} + z_{t-1}``; ``"immediate"`` adds the spike at once, so it decays with
    the state: ``a_t = rho (a_{t-1} + z_{t-1})`` (the emulator's order).
    """

    input_scale: InputScale = "none"
    reset_timing: ResetTiming = "immediate"
    input_latency: int = 1
    recurrent_latency: int = 1
    readout_latency: int = 1
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.input_scale not in ("none", "one_minus_alpha"):
            raise ValueError(f"input_scale: {self.input_scale!r} is not 'none' or 'one_minus_alpha'")
        if self.reset_timing not in ("immediate", "next_step"):
            raise ValueError(f"reset_timing: {self.reset_timing!r} is not 'immediate' or 'next_step'")
        for k in ("input_latency", "recurrent_latency", "readout_latency"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{k}: must be an integer >= 0, got {v!r}")

    @classmethod
    def chip(cls, profile=None) -> Conventions:
        """The emulator's conventions for ``profile`` (its synaptic latency; 1 without one)."""
        lat = 1 if profile is None else int(profile.time.synaptic_delay_steps)
        inp = lat
        if profile is not None and getattr(profile.time, "input_delay_steps", None) is not None:
            inp = int(profile.time.input_delay_steps)
        return cls("none", "immediate", inp, lat, lat, name="chip" if profile is None else f"chip:{profile.name}")

    @classmethod
    def bellec(cls) -> Conventions:
        """Bellec et al. 2020's reference code (tutorial_pattern_generation.py, models.py)."""
        return cls("one_minus_alpha", "next_step", 0, 1, 0, name="bellec")
