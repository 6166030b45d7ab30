"""``reward-choice``: a two-way choice learned from reward, with R-STDP (the reward-gated
eligibility of Izhikevich, Cerebral Cortex 2007, and Fremaux & Gerstner 2016, at CI size).

``n_in`` inputs in two cue groups (``0 .. n_in//2 - 1``: cue A, the rest: cue B) and two
output neurons (choice A, choice B). A trial shows ``n_cues`` cues of ``t_cue`` steps, one
every ``t_cue + t_gap`` steps, each cue A or B with probability 1/2: the cue's group fires at
``rate_hz``, the other group and the gaps at ``noise_hz``. At the last step of each cue the
reward arrives, per output neuron: +1 for the neuron of the cue's side, -1 for the other
(:func:`rewards`); R-STDP turns each neuron's recent pre-before-post pairings (its
eligibility) into weight change by it, so each output comes to prefer its cue.

The outputs scored are the output neurons' spikes ``[T, batch, 2]``. The targets are one-hot
(the correct choice) in each cue window and NaN elsewhere; ``mask`` marks the windows. The
metric, ``choice_error``, is the fraction of cues whose choice (the output with more spikes
in the window; a tie is half an error) is wrong.

Trials are drawn fresh each iteration: ``task.sample(k)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "reward-choice"

DEFAULTS: dict[str, Any] = {
    "batch": 1,
    "n_in": 20,
    "n_cues": 8,
    "t_cue": 50,
    "t_gap": 30,
    "rate_hz": 50.0,
    "noise_hz": 5.0,
    "dt_ms": 1.0,
}


def _windows(targets: np.ndarray, b: int) -> list[tuple[int, int, int]]:
    """``(start, stop, label)`` of each labelled window of trial ``b``."""
    lab = ~np.isnan(np.asarray(targets)[:, b, 0])
    d = np.diff(np.r_[0, lab.astype(int), 0])
    starts, stops = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    return [(a, z, int(np.argmax(targets[a, b]))) for a, z in zip(starts, stops, strict=True)]


def choice_error(outputs: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of cue windows (over all trials) whose output with more spikes is not the
    target's class; a tie counts 1/2."""
    s = np.asarray(outputs, np.float64)
    errs = []
    for b in range(s.shape[1]):
        for a, z, label in _windows(targets, b):
            c = s[a:z, b].sum(axis=0)
            errs.append(0.5 if c[0] == c[1] else float(np.argmax(c) != label))
    return float(np.mean(errs))


def rewards(task: Task) -> np.ndarray:
    """The reward of each step and output neuron ``[T, batch, 2]``: at the last step of a cue
    window, +1 to the correct choice's neuron and -1 to the other; 0 elsewhere."""
    r = np.zeros(task.targets.shape)
    for b in range(task.batch):
        for _, z, label in _windows(task.targets, b):
            r[z - 1, b] = -1.0
            r[z - 1, b, label] = 1.0
    return r


def make(seed: int = 0, **overrides: Any) -> Task:
    """Iteration 0's trials for ``seed``; ``sample(k)`` gives iteration ``k``'s."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    nb, n_in, n_cues = int(cfg["batch"]), int(cfg["n_in"]), int(cfg["n_cues"])
    t_cue, t_gap = int(cfg["t_cue"]), int(cfg["t_gap"])
    if n_in < 2 or n_cues < 1 or t_cue < 1 or t_gap < 0:
        raise ValueError(f"{NAME}: need n_in >= 2, n_cues >= 1, t_cue >= 1, t_gap >= 0, got {cfg}")
    T, half = n_cues * (t_cue + t_gap), n_in // 2
    to_p = cfg["dt_ms"] / 1000.0

    def sample(k: int) -> Task:
        rng = np.random.default_rng([seed, k])
        side = rng.integers(0, 2, (nb, n_cues))
        p = np.full((T, nb, n_in), cfg["noise_hz"] * to_p)
        y = np.full((T, nb, 2), np.nan)
        mask = np.zeros((T, nb))
        for c in range(n_cues):
            a = t_gap + c * (t_cue + t_gap)
            for b in range(nb):
                grp = slice(0, half) if side[b, c] == 0 else slice(half, n_in)
                p[a : a + t_cue, b, grp] = cfg["rate_hz"] * to_p
                y[a : a + t_cue, b] = 0.0
                y[a : a + t_cue, b, side[b, c]] = 1.0
                mask[a : a + t_cue, b] = 1.0
        x = (rng.random(p.shape) < p).astype(np.float64)
        return Task(NAME, seed, x, y, "choice_error", choice_error, mask=mask, dt_ms=cfg["dt_ms"], config=cfg,
                    sample=sample)  # fmt: skip

    return sample(0)
