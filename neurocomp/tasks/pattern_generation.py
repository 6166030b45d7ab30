"""``pattern-generation``: Bellec et al.'s e-prop tutorial task (``eprop.md`` §1.7,
``eprop-baselines.md`` §1).

100 frozen Poisson inputs (50 Hz: a spike with probability ``dt * 50 Hz`` per 1 ms step,
drawn once), 1000 steps, one output trained to a sum of 4 sines (periods 1000/500/333/200
ms, each spanning ``T // period`` whole cycles, amplitudes U(0.5, 2), phases U(0, 2 pi)),
shifted to start at 0 and scaled to max |.| = 1. The metric is the NMSE
(``mean (y - y*)^2 / var(y*)``).

Everything is drawn from ``numpy.random.RandomState(seed)`` in the tutorial's order (W_in,
W_rec, the input, the target's amplitudes then phases, W_out, B), so that
:func:`bellec_weights` gives the tutorial's initial network for the same seed: the
reference reproduces the baseline's loss at iteration 0 (111.025068067 for seed 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task, nmse

NAME = "pattern-generation"

DEFAULTS: dict[str, Any] = {
    "n_in": 100,
    "n_rec": 100,
    "n_out": 1,
    "steps": 1000,
    "dt_ms": 1.0,
    "rate_hz": 50.0,
    "periods_ms": (1000.0, 500.0, 333.0, 200.0),
}


def _draw(seed: int, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    rd = np.random.RandomState(seed)
    n_in, n_rec, n_out, T = cfg["n_in"], cfg["n_rec"], cfg["n_out"], cfg["steps"]
    out: dict[str, np.ndarray] = {}
    out["W_in"] = (rd.randn(n_in, n_rec) / np.sqrt(n_in)).T  # the tutorial stores [pre, post]
    w_rec = rd.randn(n_rec, n_rec) / np.sqrt(n_rec)
    np.fill_diagonal(w_rec, 0.0)
    out["W_rec"] = w_rec.T
    p = cfg["dt_ms"] * cfg["rate_hz"] / 1000.0
    out["x"] = (rd.rand(1, T, n_in) < p).astype(np.float64).transpose(1, 0, 2)  # [T, 1, n_in]
    targets = []
    for _ in range(n_out):
        periods = cfg["periods_ms"]
        w = rd.uniform(low=0.5, high=2, size=len(periods))
        ph = rd.uniform(low=0.0, high=np.pi * 2, size=len(periods))
        sig = sum(
            w[i] * np.sin(np.linspace(ph[i], np.pi * 2 * (T // (periods[i] / cfg["dt_ms"])) + ph[i], T))
            for i in range(len(periods))
        )
        sig = sig - sig[0]
        targets.append(sig / max(np.abs(sig).max(), 1e-6))
    out["y"] = np.stack(targets, axis=1)[:, None, :]  # [T, 1, n_out]
    out["W_out"] = (rd.randn(n_rec, n_out) / np.sqrt(n_rec)).T
    out["B"] = rd.randn(n_rec, n_out) / np.sqrt(n_rec)
    return out


def make(seed: int = 0, **overrides: Any) -> Task:
    """The task for ``seed`` (overrides: any key of :data:`DEFAULTS`)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    d = _draw(seed, cfg)
    return Task(NAME, seed, d["x"], d["y"], "nmse", nmse, dt_ms=cfg["dt_ms"], config=cfg)


def bellec_weights(seed: int = 0, **overrides: Any) -> dict[str, np.ndarray]:
    """The tutorial's initial ``W_in`` ``[n_rec, n_in]``, ``W_rec`` (diagonal 0), ``W_out``
    ``[n_out, n_rec]`` and random feedback ``B`` ``[n_rec, n_out]`` for ``seed``."""
    cfg = {**DEFAULTS, **overrides}
    d = _draw(seed, cfg)
    return {k: d[k] for k in ("W_in", "W_rec", "W_out", "B")}


def bellec_model(seed: int = 0, conventions=None, **overrides: Any):
    """The tutorial's network (LIF, tau_m = tau_out = 30 ms, v_th 0.03, subtractive reset,
    Bellec's conventions unless ``conventions`` is given) with its initial weights; returns
    ``(model, B)``."""
    from ..reference.conventions import Conventions
    from ..reference.eprop import RecurrentSNN

    cfg = {**DEFAULTS, **overrides}
    w = bellec_weights(seed, **overrides)
    decay = float(np.exp(-cfg["dt_ms"] / 30.0))
    model = RecurrentSNN(
        w["W_in"],
        w["W_rec"],
        w["W_out"],
        alpha=decay,
        v_th=0.03,
        beta=0.0,
        rho=0.0,
        kappa=decay,
        conventions=conventions or Conventions.bellec(),
        dt_ms=cfg["dt_ms"],
    )
    return model, w["B"]
