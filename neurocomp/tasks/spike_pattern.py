"""``spike-pattern``: detect a repeating spike-timing pattern hidden in noise, with STDP
(after Masquelier, Guyonneau & Thorpe, PLoS ONE 2008, "Spike timing dependent plasticity
finds the start of repeating patterns in continuous spike trains", at CI size).

``n_in`` inputs fire Poisson background spikes at ``rate_hz``. Half of them (the pattern
afferents, inputs ``0 .. n_in // 2 - 1``) also take part in a frozen pattern: each fires
once at its own fixed offset (drawn once from ``seed``) within a ``span``-step window. The
pattern is shown at ``onsets`` every ``every`` steps (first at ``every // 2``); background
spikes of the pattern afferents are silenced inside the windows so that the pattern is the
same every time. Pair STDP with depression slightly stronger than potentiation strengthens
the pattern afferents (they fire just before the post spike every presentation) and weakens
the others (uncorrelated pairings depress on average).

The outputs scored are the post neurons' spikes ``[T, batch, n_out]`` (0/1). The targets are 1
in each detection window (from the onset to ``detect`` steps after it) and 0 elsewhere. The
metric, ``detection_error``, is per output neuron the mean of the miss rate (presentations
with no spike in their detection window) and the false-alarm share (spikes outside every
window, of all its spikes), averaged over the outputs: 0 is a perfect detector, 0.5 a silent
neuron, about 0.4 one that fires at every step (with the defaults, 80 % of the steps are
outside the windows).

Trials are drawn fresh each iteration (new background, same pattern): ``task.sample(k)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "spike-pattern"

DEFAULTS: dict[str, Any] = {
    "batch": 1,
    "n_in": 20,
    "n_out": 1,
    "steps": 600,
    "every": 100,  # steps between onsets
    "span": 10,  # steps over which the pattern's spikes are spread
    "detect": 20,  # steps after an onset in which a post spike counts as a detection
    "rate_hz": 10.0,
    "dt_ms": 1.0,
}


def windows(targets: np.ndarray) -> list[tuple[int, int]]:
    """The ``(start, stop)`` steps of the labelled windows (targets of trial 0 > 0)."""
    on = np.r_[0, (np.asarray(targets)[:, 0, 0] > 0).astype(int), 0]
    d = np.diff(on)
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist(), strict=True))


def detection_error(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean over trials and output neurons of ``(miss rate + false-alarm share) / 2``."""
    s = np.asarray(outputs) > 0
    inside = np.asarray(targets) > 0
    errs = []
    for b in range(s.shape[1]):
        for j in range(s.shape[2]):
            wins = windows(targets[:, b : b + 1, j : j + 1])
            miss = np.mean([not s[a:z, b, j].any() for a, z in wins]) if wins else 0.0
            total = s[:, b, j].sum()
            fa = (s[:, b, j] & ~inside[:, b, j]).sum() / total if total else 0.0
            errs.append(0.5 * (miss + fa))
    return float(np.mean(errs))


def make(seed: int = 0, **overrides: Any) -> Task:
    """Iteration 0's trials for ``seed``; ``sample(k)`` gives iteration ``k``'s."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    T, n_in, nb = int(cfg["steps"]), int(cfg["n_in"]), int(cfg["batch"])
    every, span, detect = int(cfg["every"]), int(cfg["span"]), int(cfg["detect"])
    if not (1 <= span <= detect <= every and n_in >= 2 and T >= every):
        raise ValueError(f"{NAME}: need 1 <= span <= detect <= every <= steps and n_in >= 2, got {cfg}")
    n_pat = n_in // 2
    offsets = np.random.default_rng([seed, 2**31]).integers(0, span, n_pat)  # the frozen pattern
    onsets = np.arange(every // 2, T - detect + 1, every)
    y = np.zeros((T, nb, int(cfg["n_out"])))
    for t0 in onsets:
        y[t0 : t0 + detect] = 1.0

    def sample(k: int) -> Task:
        rng = np.random.default_rng([seed, k])
        x = (rng.random((T, nb, n_in)) < cfg["rate_hz"] * cfg["dt_ms"] / 1000.0).astype(np.float64)
        for t0 in onsets:
            x[t0 : t0 + span, :, :n_pat] = 0.0
            x[t0 + offsets, :, np.arange(n_pat)] = 1.0
        return Task(NAME, seed, x, y, "detection_error", detection_error, dt_ms=cfg["dt_ms"], config=cfg,
                    sample=sample)  # fmt: skip

    return sample(0)
