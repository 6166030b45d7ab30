"""``store-recall``: the LSNN tutorial's store-and-recall task (Bellec et al. 2018;
``learning-rules.md`` §2.3; LSNN-official ``bin/tutorial_storerecall_utils.py``).

A trial is a sentence of ``seq_len`` characters, each held for ``tau_char`` steps of 1 ms.
100 inputs in 4 groups of 25 (value 0, value 1, store, recall) fire at ``rate_hz`` while
their character is shown. Every character is a bit (value 0 or 1) unless it is a store or a
recall: after a recall (and at the start) a store comes with probability ``p_signal`` per
character, after a store a recall with the same probability (the tutorial's
``1 / (1 + seq_delay)``, seq_delay 6). Sentences are redrawn until they are valid: at least
one store, bit and recall, the first store before the first recall, a bit after every store,
stores and recalls alternating. At a store the value groups show the next character's bit
together with the store group, and with probability 1/2 the next character's bit is then
inverted (so the stored bit must be taken at the store, not read later).

The target, in each recall character, is the bit shown with the last store (one-hot over 2
outputs; NaN elsewhere, ``mask`` marks the recall characters). The metric is the tutorial's
recall error: the fraction of recalls whose output, averaged over the character's
``tau_char`` steps, points to the wrong bit. ``task.sample(k)`` is iteration ``k``'s batch.

Differences from the tutorial, by design: the loss of the trainers here is cross-entropy per
labelled step (the tutorial's is on the character's mean output), and the draws use numpy's
``Generator`` seeded by ``(seed, k)``, not the tutorial's global ``RandomState``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "store-recall"

DEFAULTS: dict[str, Any] = {
    "batch": 128,
    "n_in": 100,
    "seq_len": 12,
    "tau_char": 200,
    "rate_hz": 50.0,
    "p_signal": 1.0 / 7.0,
    "dt_ms": 1.0,
}
STORE, RECALL = 2, 3  # character codes; 0 and 1 are the bits


def _valid(seq: np.ndarray) -> bool:
    """The tutorial's validity test of one sentence."""
    stores, recalls = np.flatnonzero(seq == STORE), np.flatnonzero(seq == RECALL)
    if not len(stores) or not len(recalls) or not (seq < STORE).any():
        return False
    if recalls[0] < stores[0] or recalls[-1] < stores[-1]:
        return False
    if any(s == len(seq) - 1 or seq[s + 1] >= STORE for s in stores):
        return False
    events = sorted([(int(s), STORE) for s in stores] + [(int(r), RECALL) for r in recalls])
    return all(a[1] != b[1] for a, b in zip(events[:-1], events[1:], strict=True))  # stores and recalls alternate


def _sentence(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    while True:
        seq = rng.integers(0, 2, n)
        last = RECALL
        for t in range(n):
            if rng.random() < p:
                seq[t] = last = STORE if last == RECALL else RECALL
        if _valid(seq):
            return seq


def _trials(rng: np.random.Generator, cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nb, n_in, L, tc = cfg["batch"], cfg["n_in"], cfg["seq_len"], cfg["tau_char"]
    seqs = np.stack([_sentence(rng, L, cfg["p_signal"]) for _ in range(nb)])  # [batch, L]
    shown = np.zeros((nb, L, 4))  # the groups active in each character
    stored = np.zeros(nb, int)
    y = np.full((L, nb, 2), np.nan)
    for b in range(nb):
        seq = seqs[b]
        for c in range(L):
            if seq[c] == STORE:
                stored[b] = seq[c + 1]
                shown[b, c, [seq[c + 1], STORE]] = 1.0
            elif seq[c] == RECALL:
                shown[b, c, RECALL] = 1.0
                y[c, b] = np.eye(2)[stored[b]]
            elif c > 0 and seqs[b, c - 1] == STORE and rng.random() < 0.5:
                shown[b, c, 1 - seq[c]] = 1.0  # the distractor: the stored bit inverted
            else:
                shown[b, c, seq[c]] = 1.0
    group = np.repeat(np.arange(4), [len(g) for g in np.array_split(np.arange(n_in), 4)])  # each input's group
    p = np.float32(cfg["rate_hz"] * cfg["dt_ms"] / 1000.0)
    x = np.empty((L * tc, nb, n_in))
    for c in range(L):  # one character at a time: float32 draws keep the memory and time down
        on = shown[:, c, group].astype(bool)  # [batch, n_in]
        x[c * tc : (c + 1) * tc] = on & (rng.random((tc, nb, n_in), dtype=np.float32) < p)
    targets = np.repeat(y, tc, axis=0)
    mask = (~np.isnan(targets).any(axis=2)).astype(np.float64)
    return x, targets, mask


def recall_error(tau_char: int):
    """The metric: the fraction of recall characters (labelled windows of ``tau_char`` steps)
    whose mean output points to the wrong bit."""

    def metric(outputs: np.ndarray, targets: np.ndarray) -> float:
        T, nb, n_out = targets.shape
        L = T // tau_char
        mean_out = outputs[: L * tau_char].reshape(L, tau_char, nb, n_out).mean(axis=1)
        tg = targets[: L * tau_char : tau_char]  # [L, batch, n_out]: a character's target is constant
        labelled = ~np.isnan(tg).any(axis=2)
        wrong = mean_out.argmax(axis=2) != np.nan_to_num(tg).argmax(axis=2)
        return float(wrong[labelled].mean()) if labelled.any() else 0.0

    return metric


def make(seed: int = 0, **overrides: Any) -> Task:
    """Iteration 0's batch for ``seed``; ``sample(k)`` gives iteration ``k``'s."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    if cfg["seq_len"] < 4 or cfg["n_in"] < 4 or cfg["batch"] < 1 or cfg["tau_char"] < 1:
        raise ValueError(f"{NAME}: seq_len >= 4, n_in >= 4, batch >= 1 and tau_char >= 1 are required")
    metric = recall_error(int(cfg["tau_char"]))

    def sample(k: int) -> Task:
        x, y, mask = _trials(np.random.default_rng([seed, k]), cfg)
        return Task(NAME, seed, x, y, "recall_error", metric, mask=mask, dt_ms=cfg["dt_ms"], config=cfg, sample=sample)

    return sample(0)
