"""``chl-xor``: XOR learned by contrastive Hebbian learning (Baldi & Pineda 1991; the 2-h-1
network of ``learning-rules.md`` §2.6).

The four patterns of XOR, one trial each: inputs ``[1, 4, 2]`` (a single settled state per
pattern, so one "step"), targets ``[1, 4, 1]``, the values the output is clamped to (0.1 for
XOR's 0, 0.9 for its 1: the logistic reaches them, so the weights settle; with 0 and 1 they
grow without end and the answer flickers). The network is the rule's
(:class:`neurocomp.rules.contrastive.Contrastive`: 2 inputs, a bias, ``n_hidden`` hidden and
one output logistic unit, every pair connected but the clamped ones); the metric,
``pattern_error``, is the fraction of patterns whose free-phase output is on the wrong side of
1/2 (0: XOR learned, 4 of 4). An iteration is one pass over the four patterns, each learned in
turn. The patterns do not depend on the seed; the seed draws the initial weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "chl-xor"

DEFAULTS: dict[str, Any] = {
    "n_hidden": 2,
    "lr": 0.5,
    "init_std": 1.0,  # initial weights N(0, init_std^2) per pair
    "weight_max": 8.0,  # the largest |W| a fixed-point network must hold (XOR's weights reach 4-7)
    "target_low": 0.1,  # the output's clamp for XOR's 0
    "target_high": 0.9,  # and for its 1
}

PATTERNS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
LABELS = np.array([0.0, 1.0, 1.0, 0.0])


def pattern_error(outputs: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of patterns whose output is on the wrong side of 1/2."""
    return float(np.mean((np.asarray(outputs) > 0.5) != (np.asarray(targets) > 0.5)))


def make(seed: int = 0, **overrides: Any) -> Task:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    if int(cfg["n_hidden"]) < 1 or not cfg["lr"] > 0 or not cfg["weight_max"] > 0:
        raise ValueError(f"{NAME}: need n_hidden >= 1, lr > 0 and weight_max > 0, got {cfg}")
    if not 0 <= cfg["target_low"] < 0.5 < cfg["target_high"] <= 1:
        raise ValueError(f"{NAME}: need 0 <= target_low < 0.5 < target_high <= 1, got {cfg}")
    cfg["n_hidden"] = int(cfg["n_hidden"])
    y = np.where(LABELS > 0.5, cfg["target_high"], cfg["target_low"])
    return Task(NAME, int(seed), PATTERNS[None], y[None, :, None], "pattern_error", pattern_error, dt_ms=None,
                config=cfg)  # fmt: skip
