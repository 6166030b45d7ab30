"""``balanced-bistable``: a 2-D bistable system for a balanced network with a nonlinear basis
to learn (Alemi et al. 2018; learning-rules.md §2.10's acceptance test).

The system ``dx/dt = F(x) + c(t)`` with ``F(x) = k [x1 - x1^3/a^2, x1^2/a - x2]``
(:func:`neurocomp.rules.balanced_basis.bistable`: a double well in ``x1`` with stable points
``±a`` that drives ``x2`` quadratically), Euler steps of ``dt`` s from ``x = 0`` (where the network starts) at the
start of each phase, driven by Ornstein-Uhlenbeck noise (correlation time ``tau_c``, standard
deviation ``c_amplitude``) that switches ``x1`` between the wells about once every 2 s.

One trial is phases back to back (:func:`neurocomp.rules.balanced_basis.phase_steps`): with
``fast_steps > 0`` the fast (voltage) rule's, learning the fast weights from the resets (else
they are the derivation's); the rule's (``slow_steps`` in
``slow_stages`` stages, the rate decaying from ``eta_slow`` with time constant ``anneal_s``:
:func:`~neurocomp.rules.balanced.stage_rates`) and the test (``test_steps``: feedback off, no
learning), each with its own input. ``inputs [T, 1, 2]``: ``c``; ``targets [T, 1, 2]``: ``x``;
the mask is the test phase. Metric ``error``: RMS of ``x - xh`` over the RMS of ``x`` in the
test (lower is better). ``config`` carries the network's constants, which the rule reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .balanced_oscillator import ou_input
from .base import Task

NAME = "balanced-bistable"

DEFAULTS: dict[str, Any] = {
    "n": 36,  # LIF neurons (with the 64 basis units, 100 neurons)
    "basis_side": 8,  # basis units on a side x side grid of centres
    "basis_lo": (-2.5, -0.5),  # the grid's corners (the states span about ±2.5 in x1, -0.5..4.5 in x2)
    "basis_hi": (2.5, 4.5),
    "basis_width": 0.8,  # the tuning's standard deviation (0.71 between centres)
    "basis_amp": 4.0,  # the tuning's peak
    "d_norm": 0.1,  # length of each decoder column
    "lam": 10.0,  # 1/s: the leak of V and the decay of r
    "mu": 1e-4,  # quadratic cost (the resets' margin)
    "K": 100.0,  # 1/s: the error feedback's gain while learning
    "fast_steps": 0,  # > 0: a phase of the fast (voltage) rule first, from the resets; 0: the derivation's fast weights
    "beta": 1.8,  # the fast rule's voltage gain (neurocomp.rules.balanced)
    "eta_fast": 0.02,  # the fast rule's rate per spike
    "wf_bound": 0.02,  # |fast weight| bound, 2 d_norm^2
    "eta_slow": 1.0,  # the rule's rate (per s) at its start, decaying as 1 / (1 + t / anneal_s)
    "anneal_s": 20.0,  # s
    "slow_stages": 6,  # piecewise-constant stages of that rate (a chip's host loads one rule per stage)
    "dt": 1e-3,  # s per step
    "k": 5.0,  # 1/s: the system's rate
    "a": 1.5,  # the wells at x1 = ±a
    "tau_c": 0.1,  # s: the input's correlation time
    "c_amplitude": 6.0,  # the input's standard deviation
    "slow_steps": 120_000,
    "test_steps": 10_000,
    "delete_fraction": 0.25,  # of the neurons, for the robustness test
    # the loihi2 engine's ranges (model units over the 9-bit weights and 7-bit graded values)
    "w_range": 0.25,  # the learned weights stay within ±0.18 (the least-squares ideal reaches 2.2)
    "fb_range": 8.0,  # coarse (a typical feedback current of 0.5 is 8 levels) so that the rule runs every 8-32 steps
    "phi_range": 4.0,  # = basis_amp: the tuning's peak is the top level
    "error_units": True,  # learn Theta (W = D^T Theta) on J error units: the rule's changes stay in the span of D^T
    "theta_range": 4.0,  # Theta's range (|W| <= 0.2 with |D_i| = 0.1)
    "err_range": 32.0,  # the error units' K e (about 20 at the start; a finer grid needs epochs beyond 63 steps)
    "epoch_steps": 32,  # the engine rule's epoch (about): few stochastic roundings of the weights
    "error_copies": 2,  # copies of the error units (the second learns -Theta), epochs T -+ 1; the neurons get the mean
}


def integrate(c: np.ndarray, k: float, a: float, dt: float) -> np.ndarray:
    """``x [T, 2]``: Euler steps of ``dx/dt = F(x) + c`` from 0 (row i after step i)."""
    from ..rules.balanced_basis import bistable

    x = np.zeros(2)
    out = np.empty_like(c)
    for i in range(len(c)):
        x = x + dt * (bistable(x, k, a) + c[i])
        out[i] = x
    return out


def make(seed: int = 0, **overrides: Any) -> Task:
    """The ``balanced-bistable`` task (one trial of three phases); see the module docstring."""
    from ..rules.balanced import rel_error
    from ..rules.balanced_basis import phase_steps

    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    if (int(cfg["n"]) < 4 or int(cfg["basis_side"]) < 1 or int(cfg["slow_stages"]) < 1 or float(cfg["dt"]) <= 0
            or int(cfg["fast_steps"]) < 0 or min(phase_steps(cfg)) < 1):  # fmt: skip
        raise ValueError(f"{NAME}: need n >= 4, basis_side >= 1, slow_stages >= 1, dt > 0, fast_steps >= 0 and "
                         "every phase at least one step")  # fmt: skip
    if not 0 <= float(cfg["delete_fraction"]) < 1:
        raise ValueError(f"{NAME}: delete_fraction {cfg['delete_fraction']} is outside [0, 1)")
    if int(cfg["epoch_steps"]) < 1 or not float(cfg["eta_slow"]) > 0:
        raise ValueError(f"{NAME}: epoch_steps {cfg['epoch_steps']} must be >= 1 and eta_slow {cfg['eta_slow']} > 0")
    if int(cfg["error_copies"]) < 1:
        raise ValueError(f"{NAME}: error_copies = {cfg['error_copies']} must be >= 1")
    dt, k, a = float(cfg["dt"]), float(cfg["k"]), float(cfg["a"])
    steps = phase_steps(cfg)
    first = 20 - (int(cfg["fast_steps"]) > 0)  # the learning stages and test keep their streams
    rngs = [np.random.default_rng([seed, first + i]) for i in range(len(steps))]
    amp, tau = float(cfg["c_amplitude"]), float(cfg["tau_c"])
    cs = [ou_input(s, dt, tau, amp, g) for s, g in zip(steps, rngs, strict=True)]
    xs = [integrate(c, k, a, dt) for c in cs]
    c, x = np.concatenate(cs), np.concatenate(xs)
    test = steps[-1]
    mask = np.zeros((len(c), 1))
    mask[-test:] = 1.0

    def error(outputs: np.ndarray, targets: np.ndarray) -> float:
        return rel_error(outputs[-test:, 0], targets[-test:, 0])

    return Task(name=NAME, seed=int(seed), inputs=c[:, None], targets=x[:, None], metric_name="error", metric=error,
                mask=mask, dt_ms=dt * 1e3, config=cfg)  # fmt: skip
