"""``rflo-periodic``: Murray's periodic-output task (eLife 2019, Fig. 2; ``eprop.md`` §4).

A rate network of 50 tanh units with ``tau = 10`` steps, no input (one input channel held at
0), learns to produce, from the same initial state ``h0 = 0.1`` every trial, the periodic
output::

    y*(t) = sin(2 pi t / P) + 0.5 sin(4 pi t / P) + 0.25 sin(8 pi t / P),    P = 100 steps

over one period per trial (``T = P = 100`` steps, ``t = 1..T``, array index ``t - 1``;
``y*(T) = y*(0) = 0``). The configuration of the author's notebook
(``murray-lab/rflo-learning/RFLO_Example.ipynb``): recurrent gain 1.5, learning rates
``(W_in, W_rec, W_out) = (0, 0.03, 0.03)`` (inputs frozen), updates summed over a trial and
applied at its end, 10 000 trials. The metric is the normalized error
``mean((y - y*)^2) / var(y*)``; the target has zero mean over a period, so this is the
notebook's loss ``0.5 mean(err^2)`` divided by ``0.5 mean(y*^2) = 0.328``.

The trials themselves do not depend on the seed (zero input, fixed target); the seed is the
initialization seed of the network trained on them, and is carried in ``config``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task, nmse

NAME = "rflo-periodic"

# Murray's Fig. 2 configuration; every key can be overridden in make().
DEFAULTS: dict[str, Any] = {
    "n_in": 1,  # one input channel, held at `input_value`
    "n_rec": 50,  # rate units
    "n_out": 1,
    "tau": 10.0,  # steps
    "period": 100,  # steps
    "steps": 100,  # trial length in steps (one period)
    "amplitudes": (1.0, 0.5, 0.25),
    "harmonics": (1, 2, 4),  # multiples of the base frequency 1 / period
    "input_value": 0.0,
    "h0": 0.1,  # initial rate of every unit, each trial
    "g": 1.5,  # gain of the initial recurrent weights, N(0, g^2 / n_rec)
    "lr_in": 0.0,
    "lr_rec": 0.03,
    "lr_out": 0.03,
    "trials": 10_000,
    "online": False,  # False: updates summed over the trial and applied at its end
}


def target(steps: int, period: int, amplitudes=(1.0, 0.5, 0.25), harmonics=(1, 2, 4)) -> np.ndarray:
    """The target ``y*(t)`` for ``t = 1..steps`` (``[steps]``, dimensionless)."""
    t = np.arange(1, steps + 1, dtype=np.float64)
    return sum(a * np.sin(2 * np.pi * k * t / period) for a, k in zip(amplitudes, harmonics, strict=True))


def make(seed: int = 0, **overrides: Any) -> Task:
    """The ``rflo-periodic`` task (one trial, batch 1): inputs ``[T, 1, n_in]`` all
    ``input_value``, targets ``[T, 1, n_out]`` (the same signal on every output), metric
    ``nmse``. ``overrides`` replace keys of :data:`DEFAULTS`."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    if int(cfg["steps"]) < 1 or int(cfg["period"]) < 1 or float(cfg["tau"]) < 1.0:
        raise ValueError(f"{NAME}: steps and period must be >= 1 and tau >= 1 step")
    steps, n_in, n_out = int(cfg["steps"]), int(cfg["n_in"]), int(cfg["n_out"])
    y = target(steps, int(cfg["period"]), cfg["amplitudes"], cfg["harmonics"])
    return Task(
        name=NAME,
        seed=int(seed),
        inputs=np.full((steps, 1, n_in), float(cfg["input_value"])),
        targets=np.repeat(y[:, None, None], n_out, axis=2),
        metric_name="nmse",
        metric=nmse,
        dt_ms=None,  # time constants are in steps
        config=cfg,
    )
