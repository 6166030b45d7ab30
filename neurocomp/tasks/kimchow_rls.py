"""``kimchow-rls``: target synaptic drives for spiking RLS (Kim & Chow 2018, eLife 7:e37124).

The example code's ``ratemodel`` target (``chrismkkim/SpikeLearning``, run_target.jl): every
neuron's target drive ``f_i(t)`` is unit ``i`` of a random rate network::

    f(t + dt) = (1 - dt b_rm) f(t) + dt b_rm M_rm phi(f(t)),   phi(x) = sqrt(max(x, 0)) / pi

with ``M_rm = g_rm N(0,1) Bernoulli(p) / sqrt(N p)`` (``g_rm = 5``, no autapses, each row's
nonzero entries shifted to zero mean), ``b_rm = 1/4`` per unit and ``f(0) ~ 0.2 U(0, 1)``. A
trial is ``train_time = 210`` units (2100 steps of ``dt = 0.1`` unit = 1 ms): a stimulus
``I_ext ~ 2 U(-1, 1)`` per neuron during units (100, 110], then the 100-unit (1 s) training
window (the mask), in which the drives are scored.

``inputs [T, 1, N]``: the stimulus of each step; ``targets [T, 1, N]``: ``f`` at each step
(step ``i``, 1-based, is time ``i dt``). Metric ``mean_r``: the mean over neurons of the
Pearson correlation between a neuron's drive and its target in the window (higher is better).
``config`` carries the network's constants (N, p, g, lambda, loops, ...) that the rule reads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Task

NAME = "kimchow-rls"

# SpikeLearn.jl's values, with N = 500 (learning-rules.md §2.7: the acceptance configuration)
DEFAULTS: dict[str, Any] = {
    "n": 500,  # neurons
    "p": 0.3,  # connection probability (the plastic inputs: each row's nonzero entries)
    "g": 1.0,  # gain of the initial recurrent weights
    "b": 0.5,  # 1/tau_s per unit
    "dt": 0.1,  # units per step (1 unit = 10 ms)
    "lam": 0.5,  # RLS lambda: P(0) = I / lambda
    "learn_every": 10,  # steps between updates (1 unit)
    "loops": 10,  # training loops over the trial
    "stim_on": 1000,  # steps: the stimulus is on during (stim_on, stim_off]
    "stim_off": 1100,
    "train_steps": 2100,  # the trial: the window (stim_off, train_steps] is trained and scored
    "stim_amplitude": 2.0,
    "g_rm": 5.0,  # the target rate network
    "b_rm": 0.25,
}


def pearson_rows(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``y [T, n]`` with the same column of ``t``."""
    yc, tc = y - y.mean(axis=0), t - t.mean(axis=0)
    den = np.sqrt((yc**2).sum(axis=0) * (tc**2).sum(axis=0))
    return np.where(den > 0, (yc * tc).sum(axis=0) / np.where(den > 0, den, 1.0), 0.0)


def rate_model_target(n: int, p: float, steps: int, dt: float, g_rm: float, b_rm: float,
                      rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """The ``ratemodel`` drives ``[steps, n]`` (row 0 is time ``dt``), from ``rng``."""
    m = rng.standard_normal((n, n)) * (rng.random((n, n)) < p)
    np.fill_diagonal(m, 0.0)
    m *= g_rm / math.sqrt(n * p)
    nz = m != 0
    m -= nz * (m.sum(axis=1, keepdims=True) / np.maximum(nz.sum(axis=1, keepdims=True), 1))
    f = np.empty((steps, n))
    f[0] = 0.2 * rng.random(n)
    for i in range(steps - 1):
        f[i + 1] = (1 - dt * b_rm) * f[i] + dt * b_rm * (m @ (np.sqrt(np.maximum(f[i], 0.0)) / np.pi))
    return f


def make(seed: int = 0, **overrides: Any) -> Task:
    """The ``kimchow-rls`` task (one trial, batch 1); see the module docstring."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    n, steps = int(cfg["n"]), int(cfg["train_steps"])
    if n < 2 or not 0 < float(cfg["p"]) <= 1 or not 0 <= cfg["stim_on"] <= cfg["stim_off"] < steps:
        raise ValueError(f"{NAME}: need n >= 2, 0 < p <= 1 and 0 <= stim_on <= stim_off < train_steps")
    # one stream per quantity, so that changing one (e.g. n) keeps the others' draws recognizable
    stim_rng, target_rng = (np.random.default_rng([seed, k]) for k in (1, 2))
    stim = float(cfg["stim_amplitude"]) * (2 * stim_rng.random(n) - 1)
    on, off = int(cfg["stim_on"]), int(cfg["stim_off"])
    inputs = np.zeros((steps, 1, n))
    inputs[on:off, 0] = stim  # steps on+1..off (1-based)
    f = rate_model_target(n, float(cfg["p"]), steps, float(cfg["dt"]), float(cfg["g_rm"]), float(cfg["b_rm"]),
                          target_rng)  # fmt: skip
    mask = np.zeros((steps, 1))
    mask[off:] = 1.0

    def mean_r(outputs: np.ndarray, targets: np.ndarray) -> float:
        return float(pearson_rows(outputs[off:, 0], targets[off:, 0]).mean())

    return Task(name=NAME, seed=int(seed), inputs=inputs, targets=f[:, None, :], metric_name="mean_r",
                metric=mean_r, mask=mask, dt_ms=float(cfg["dt"]) * 10.0, config=cfg,
                higher_is_better=True)  # fmt: skip
