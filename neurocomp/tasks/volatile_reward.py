"""``volatile-reward``: predict a reward in stable and volatile blocks (the setting where an
adaptive learning rate pays; Piray & Daw 2021, ``learning-rules.md`` §2.11).

Each of ``runs`` independent sequences: a hidden mean ``x`` (``x_1 = 0``) that steps by
``sqrt(vol) N(0, 1)`` per trial, ``vol`` alternating between ``vol_low`` and ``vol_high`` every
``block`` trials (stable first), and the reward ``R = x + sqrt(stc) N(0, 1)``. Inputs ``[n,
runs, 1]``: the rewards; targets ``[n, runs, 1]``: the hidden means. A predictor makes its
prediction before each reward; the metric, ``mse``, is the mean squared difference between the
predictions and the hidden means over all trials and runs.

``lambda``, ``v0``, ``sigma2``, ``error_max`` and ``weight_max`` are the ``vkf`` rule's settings
for this task (volatility learning rate, initial volatility, the known stochasticity, the
largest gain-scaled error and the largest weight a chip must hold).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "volatile-reward"

DEFAULTS: dict[str, Any] = {
    "runs": 64,
    "trials": 400,
    "block": 100,
    "vol_low": 0.0,
    "vol_high": 9.0,
    "stc": 1.0,
    "lambda": 0.3,
    "v0": 1.0,
    "sigma2": 1.0,
    "error_max": 16.0,
    "weight_max": 128.0,
}


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((np.asarray(outputs) - np.asarray(targets)) ** 2))


def make(seed: int = 0, **overrides: Any) -> Task:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    runs, n, block = int(cfg["runs"]), int(cfg["trials"]), int(cfg["block"])
    if min(runs, n, block) < 1 or min(cfg["vol_low"], cfg["vol_high"]) < 0 or cfg["stc"] < 0:
        raise ValueError(f"{NAME}: need runs, trials, block >= 1 and vol_low, vol_high, stc >= 0, got {cfg}")
    rng = np.random.default_rng(seed)
    vol = np.where((np.arange(n) // block) % 2 == 0, cfg["vol_low"], cfg["vol_high"])
    x = np.zeros((n, runs))
    x[1:] = np.cumsum(np.sqrt(vol[1:, None]) * rng.standard_normal((n - 1, runs)), axis=0)
    r = x + np.sqrt(cfg["stc"]) * rng.standard_normal((n, runs))
    return Task(NAME, int(seed), r[:, :, None], x[:, :, None], "mse", mse, dt_ms=None, config=cfg)
