"""``delayed-xor``: the delayed-memory XOR task (Huh & Sejnowski 2018; ``learning-rules.md`` §2.8,
the spec of Salaj et al. 2021's ``tutorial_temporalXOR_utils.py``).

A trial, on two analog input channels (currents, not spikes):

* channel 0: two pulses of sign ``p1, p2 = +-1``, Gaussian-shaped (a normal density from its
  1st to its 99th percentile, scaled to peak 1), of ``pulse_ms`` each (drawn in the range,
  per pulse), the first starting at ``start_ms``, the second ``gap_ms`` (drawn) after the
  first one ends;
* channel 1: the go cue, a pulse of ``cue_ms``, ``cue_delay_ms`` after the second pulse ends.

The target is the XOR of the two signs, ``+1`` when ``p1 != p2`` and ``-1`` otherwise, in the
response window of ``window_ms`` from the go cue's onset (NaN elsewhere; ``mask`` marks it).
The metric, ``error_rate``, is the fraction of trials whose output averaged over the window
has the wrong sign (accuracy = 1 - error_rate). Every trial of a batch has the same length, the
longest the ranges allow. ``task.sample(k)`` is iteration ``k``'s batch (seeded by
``(seed, k)``).

Differences from Salaj et al.'s generator, by design: durations are drawn uniformly in ms
(theirs: a fixed pulse length and a geometric delay in steps of 10 ms), the cue delay is its
own parameter, no trial omits the second pulse, and the target is one signed output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "delayed-xor"

DEFAULTS: dict[str, Any] = {
    "batch": 64,
    "dt_ms": 1.0,
    "start_ms": 10.0,
    "pulse_ms": (30.0, 50.0),
    "gap_ms": (100.0, 170.0),
    "cue_delay_ms": 50.0,
    "cue_ms": 30.0,
    "window_ms": 60.0,
    "amplitude": 1.0,
}


def pulse(n: int) -> np.ndarray:
    """A Gaussian-shaped pulse of ``n`` steps, 0 at its ends and 1 at its peak."""
    if n < 2:
        return np.ones(n)
    z = np.linspace(-2.3263478740408408, 2.3263478740408408, n)  # the 1st and 99th percentiles
    g = np.exp(-0.5 * z * z)
    return (g - g.min()) / (g.max() - g.min())


def _range(v: Any) -> tuple[float, float]:
    lo, hi = (v, v) if np.isscalar(v) else tuple(v)
    return float(lo), float(hi)


def _steps(ms: float, dt: float) -> int:
    return int(round(ms / dt))


def length_steps(cfg: dict[str, Any]) -> int:
    """Steps per trial: the longest trial the ranges allow."""
    dt = cfg["dt_ms"]
    ms = cfg["start_ms"] + 2 * _range(cfg["pulse_ms"])[1] + _range(cfg["gap_ms"])[1] + cfg["cue_delay_ms"]
    return _steps(ms, dt) + max(_steps(cfg["window_ms"], dt), _steps(cfg["cue_ms"], dt))


def _trials(rng: np.random.Generator, cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nb, dt, T = cfg["batch"], cfg["dt_ms"], length_steps(cfg)
    (plo, phi), (glo, ghi) = _range(cfg["pulse_ms"]), _range(cfg["gap_ms"])
    x = np.zeros((T, nb, 2))
    y = np.full((T, nb, 1), np.nan)
    signs = rng.choice([-1.0, 1.0], (nb, 2))
    for b in range(nb):
        d1, d2 = (_steps(rng.uniform(plo, phi), dt) for _ in range(2))
        gap = _steps(rng.uniform(glo, ghi), dt)
        t1 = _steps(cfg["start_ms"], dt)
        t2 = t1 + d1 + gap
        cue = t2 + d2 + _steps(cfg["cue_delay_ms"], dt)
        x[t1 : t1 + d1, b, 0] = signs[b, 0] * pulse(d1)
        x[t2 : t2 + d2, b, 0] = signs[b, 1] * pulse(d2)
        nc = _steps(cfg["cue_ms"], dt)
        x[cue : cue + nc, b, 1] = pulse(nc)
        y[cue : cue + _steps(cfg["window_ms"], dt), b, 0] = 1.0 if signs[b, 0] != signs[b, 1] else -1.0
    x *= cfg["amplitude"]
    mask = (~np.isnan(y[..., 0])).astype(np.float64)
    return x, y, mask


def error_rate(outputs: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of trials whose mean output over the labelled window has the wrong sign."""
    lab = ~np.isnan(targets[..., 0])  # [T, batch]
    n = lab.sum(axis=0)
    mean_out = np.where(lab, outputs[..., 0], 0.0).sum(axis=0) / np.maximum(n, 1)
    want = np.nanmax(targets[..., 0], axis=0)
    return float(np.mean(np.sign(mean_out) != want))


def make(seed: int = 0, **overrides: Any) -> Task:
    """Iteration 0's batch for ``seed``; ``sample(k)`` gives iteration ``k``'s."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    problems = []
    if not isinstance(cfg["batch"], int) or cfg["batch"] < 1:
        problems.append(f"batch must be an integer >= 1, got {cfg['batch']!r}")
    if not cfg["dt_ms"] > 0:
        problems.append(f"dt_ms must be > 0, got {cfg['dt_ms']!r}")
    for k in ("pulse_ms", "gap_ms"):
        lo, hi = _range(cfg[k])
        if not 0 < lo <= hi:
            problems.append(f"{k} must be a range 0 < lo <= hi (ms), got {cfg[k]!r}")
    for k in ("start_ms", "cue_delay_ms"):
        if cfg[k] < 0:
            problems.append(f"{k} must be >= 0 ms, got {cfg[k]!r}")
    for k in ("cue_ms", "window_ms"):
        if not cfg[k] >= cfg["dt_ms"]:
            problems.append(f"{k} must be at least one step ({cfg['dt_ms']} ms), got {cfg[k]!r}")
    if problems:
        raise ValueError(f"{NAME}: " + "; ".join(problems))

    def sample(k: int) -> Task:
        x, y, mask = _trials(np.random.default_rng([seed, k]), cfg)
        return Task(NAME, seed, x, y, "error_rate", error_rate, mask=mask, dt_ms=cfg["dt_ms"], config=cfg,
                    sample=sample)  # fmt: skip

    return sample(0)
