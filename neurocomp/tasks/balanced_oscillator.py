"""``balanced-oscillator``: a 2-D damped oscillator for a balanced spiking network to learn
(Bourdoukan & Deneve 2015; learning-rules.md §2.9's acceptance test).

The system ``dx/dt = A x + c(t)``, ``A = [[-a, -w], [w, -a]]`` (``a`` = ``damping`` per s,
``w = 2 pi freq_hz``), Euler steps of ``dt`` s from ``x = 0`` at the start of each phase,
driven by ``c``: Ornstein-Uhlenbeck noise per dimension (correlation time ``tau_c``, standard
deviation ``c_amplitude``), which keeps the oscillator ringing at an RMS of about 1.9.

One trial is phases back to back (:func:`neurocomp.rules.balanced.phase_steps`): the fast
rule's (``fast_steps``), the slow rule's (``slow_steps`` in ``slow_stages`` stages, the rate
decaying from ``eta_slow`` with time constant ``anneal_s``:
:func:`~neurocomp.rules.balanced.stage_rates`) and the test (``test_steps``: feedback off, no
learning), each with its own input. ``inputs [T, 1, 2]``: ``c``; ``targets [T, 1, 2]``: ``x``;
the mask is the test phase. Metric ``error``: RMS of ``x - xh`` over the RMS of ``x`` in the
test (lower is better; the target is < 0.1). ``config`` carries the network's constants, which the rule reads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Task

NAME = "balanced-oscillator"

DEFAULTS: dict[str, Any] = {
    "n": 40,  # LIF neurons
    "d_norm": 0.1,  # length of each decoder column
    "lam": 10.0,  # 1/s: the leak of V and the decay of r
    "mu": 1e-4,  # quadratic cost (the resets' margin)
    "spikes_per_step": 1,  # the network's: the neuron furthest above threshold (0: a cascade within the step)
    "K": 100.0,  # 1/s: the error feedback's gain during the slow phase
    "beta": 1.8,  # the fast rule's voltage gain (see neurocomp.rules.balanced)
    "eta_fast": 0.02,  # the fast rule's rate per spike
    "wf_bound": 0.009,  # |fast weight| bound: 0.9 d_norm^2, below 2 T (a pair of opposite neurons cannot ping-pong)
    "eta_slow": 0.15,  # the slow rule's rate (per s) at its start, decaying as 1 / (1 + t / anneal_s)
    "anneal_s": 20.0,  # s
    "slow_stages": 6,  # piecewise-constant stages of that rate (a chip's host loads one rule per stage)
    "dt": 1e-3,  # s per step
    "freq_hz": 1.0,  # the oscillator
    "damping": 1.0,  # 1/s
    "tau_c": 0.05,  # s: the input's correlation time
    "c_amplitude": 8.0,  # the input's standard deviation
    "fast_steps": 100_000,
    "readout_fit_steps": 20_000,  # the fast phase's last steps, rerun to fit the readout (0: the derivation's D)
    "slow_steps": 360_000,
    "test_steps": 10_000,
    # the loihi2 engine's ranges (model units over the 9-bit weights and 7-bit graded values)
    "wf_range": 0.009,  # = wf_bound: the engine's weight range is the bound
    "v_range": 0.02,
    "r_range": 16.0,  # r: the fast rule's y1 and the slow rule's x1 (graded pre spikes of N relay units)
    "error_units": True,  # the slow rule learns Theta (Os = D^T Theta + mu lam I) on J error units
    "theta_range": 2.0,  # Theta's range (the ideal (A + lam I) D reaches 1.1; the learned ones 1.2-1.7)
    "err_range": 64.0,  # the error units' K e (about 12 at the start; finer needs epochs beyond 63 steps at the end)
    "epoch_steps": 32,  # the slow rule's epoch (about): few stochastic roundings of Theta
    "error_copies": 2,  # copies of the error units (the second learns -Theta), epochs T -+ 1; the neurons get the mean
    "ws_range": 0.25,  # error_units False: the slow weights on the neurons (the ideal's largest is 0.11)
    "fb_range": 4.0,  # error_units False: the neurons' K D^T e
}


def ou_input(steps: int, dt: float, tau: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """``[steps, 2]`` Ornstein-Uhlenbeck noise of correlation time ``tau`` and standard
    deviation ``amplitude`` (Euler, from 0)."""
    z = np.zeros(2)
    out = np.empty((steps, 2))
    xi = rng.standard_normal((steps, 2)) * math.sqrt(2 * dt / tau)
    for i in range(steps):
        z = z - dt * z / tau + xi[i]
        out[i] = z
    return amplitude * out


def oscillate(c: np.ndarray, A: np.ndarray, dt: float) -> np.ndarray:
    """``x [T, 2]``: Euler steps of ``dx/dt = A x + c`` from 0 (row i after step i)."""
    x = np.zeros(2)
    out = np.empty_like(c)
    for i in range(len(c)):
        x = x + dt * (A @ x + c[i])
        out[i] = x
    return out


def make(seed: int = 0, **overrides: Any) -> Task:
    """The ``balanced-oscillator`` task (one trial of four phases); see the module docstring."""
    from ..rules.balanced import phase_steps, rel_error, system_matrix

    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    if int(cfg["n"]) < 2 or int(cfg["slow_stages"]) < 1 or float(cfg["dt"]) <= 0 or min(phase_steps(cfg)) < 1:
        raise ValueError(f"{NAME}: need n >= 2, dt > 0, slow_stages >= 1 and every phase at least one step")
    if int(cfg["error_copies"]) < 1:
        raise ValueError(f"{NAME}: error_copies = {cfg['error_copies']} must be >= 1")
    if not 0 <= int(cfg["readout_fit_steps"]) <= int(cfg["fast_steps"]):
        raise ValueError(f"{NAME}: readout_fit_steps = {cfg['readout_fit_steps']} must be within [0, fast_steps = "
                         f"{cfg['fast_steps']}] (the readout is fitted on the fast phase's input)")  # fmt: skip
    A, dt = system_matrix(cfg), float(cfg["dt"])
    rngs = [np.random.default_rng([seed, 10 + k]) for k in range(len(phase_steps(cfg)))]
    amp, tau = float(cfg["c_amplitude"]), float(cfg["tau_c"])
    cs = [ou_input(s, dt, tau, amp, g) for s, g in zip(phase_steps(cfg), rngs, strict=True)]
    xs = [oscillate(c, A, dt) for c in cs]
    c, x = np.concatenate(cs), np.concatenate(xs)
    test = phase_steps(cfg)[-1]
    mask = np.zeros((len(c), 1))
    mask[-test:] = 1.0

    def error(outputs: np.ndarray, targets: np.ndarray) -> float:
        return rel_error(outputs[-test:, 0], targets[-test:, 0])

    return Task(name=NAME, seed=int(seed), inputs=c[:, None], targets=x[:, None], metric_name="error", metric=error,
                mask=mask, dt_ms=dt * 1e3, config=cfg)  # fmt: skip
