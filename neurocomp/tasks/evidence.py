"""``evidence-accumulation``: Bellec et al.'s store-and-recall cue task (``eprop.md`` §1.7;
``tutorial_evidence_accumulation_with_alif.py``, ``generate_click_task_data``).

40 inputs in 4 groups of 10 (left cues, right cues, recall, background noise). Each trial has
7 cues of 100 ms, one every 150 ms starting at 50 ms; a cue fires its group (left or right)
at 40 Hz. The side of each cue is drawn with probability 0.3/0.7, the majority side being
left or right with probability 1/2 per trial. After the cues, a delay, and then a 150 ms
recall window in which the recall group fires at 40 Hz; the noise group fires at 10 Hz
throughout. A trial is ``150 * 7 + 1200 = 2250`` steps of 1 ms. The network must answer, in
the recall window, which side had more cues: the targets are one-hot (left = class 0) in
the recall window and NaN elsewhere (no loss there); ``mask`` marks the window. The metric is
the error rate of ``argmax`` of the outputs averaged over the recall window.

Trials are drawn fresh each iteration: ``task.sample(k)`` is iteration ``k``'s batch, a
deterministic function of ``(seed, k)``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..graph import Network
from ..graph.io import network_from_dict
from .base import Task

NAME = "evidence-accumulation"

DEFAULTS: dict[str, Any] = {
    "batch": 64,
    "n_in": 40,
    "n_cues": 7,
    "t_cue": 100,
    "t_interval": 150,
    "t_delay": 1200,
    "recall": 150,
    "rate_hz": 40.0,
    "p_group": 0.3,
    "dt_ms": 1.0,
}


def error_rate(outputs: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of trials whose mean output over the labelled (non-NaN) steps points to
    the wrong class."""
    valid = ~np.isnan(targets).any(axis=2)  # [T, batch]
    w = valid[:, :, None]
    mean_out = (np.where(w, outputs, 0.0)).sum(axis=0) / np.maximum(w.sum(axis=0), 1)
    label = np.nan_to_num(targets).sum(axis=0).argmax(axis=1)
    return float(np.mean(mean_out.argmax(axis=1) != label))


def _trials(rng: np.random.Generator, cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nb, n_in, n_cues = cfg["batch"], cfg["n_in"], cfg["n_cues"]
    t_cue, t_int, recall = cfg["t_cue"], cfg["t_interval"], cfg["recall"]
    T = t_int * n_cues + cfg["t_delay"]
    ch = n_in // 4
    f0 = cfg["rate_hz"] * cfg["dt_ms"] / 1000.0
    p_left = np.where(rng.random(nb) < 0.5, cfg["p_group"], 1 - cfg["p_group"])
    cues = (rng.random((nb, n_cues)) >= p_left[:, None]).astype(int)  # 0 left, 1 right
    prob = np.zeros((T, nb, n_in))
    silence = t_int - t_cue
    for k in range(n_cues):
        t0 = silence + k * t_int
        for side in (0, 1):
            trials = cues[:, k] == side
            prob[t0 : t0 + t_cue, trials, side * ch : (side + 1) * ch] = f0
    prob[T - recall :, :, 2 * ch : 3 * ch] = f0
    prob[:, :, 3 * ch :] = f0 / 4
    x = (rng.random(prob.shape) < prob).astype(np.float64)
    label = (cues.sum(axis=1) > n_cues // 2).astype(int)
    y = np.full((T, nb, 2), np.nan)
    y[T - recall :] = 0.0
    y[T - recall :, np.arange(nb), label] = 1.0
    mask = np.zeros((T, nb))
    mask[T - recall :] = 1.0
    return x, y, mask


def make(seed: int = 0, **overrides: Any) -> Task:
    """Iteration 0's batch for ``seed``; ``sample(k)`` gives iteration ``k``'s."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}

    def sample(k: int) -> Task:
        x, y, mask = _trials(np.random.default_rng([seed, k]), cfg)
        return Task(
            NAME, seed, x, y, "error_rate", error_rate, mask=mask, dt_ms=cfg["dt_ms"], config=cfg, sample=sample
        )

    return sample(0)


def bellec_model(seed: int = 0, n_lif: int = 50, n_alif: int = 50, n_in: int = 40, n_out: int = 2):
    """The tutorial's LSNN: 50 LIF + 50 ALIF (tau_v 20 ms, tau_a 2000 ms, v_th 0.6,
    ``beta = 1.7 (1 - rho) / (1 - alpha)`` for ALIF, 5-step refractoriness), a readout with
    tau 20 ms. Conventions: ``EligALIF``'s (no input scaling, reset by ``v_th`` in the next
    step, inputs and readout in the same step). Its readout here has no ``1 - kappa`` factor, so
    ``W_out`` is drawn ``(1 - kappa)`` times the tutorial's ``N(0, 1/n_rec)`` (the same
    outputs). Weights ``N(0, 1/fan_in)``; random feedback ``B ~ N(0, 1)``. Returns
    ``(model, B)``."""
    from ..reference.conventions import Conventions
    from ..reference.eprop import RecurrentSNN

    rng = np.random.default_rng(seed)
    n = n_lif + n_alif
    alpha, rho, kappa = np.exp(-1 / 20), np.exp(-1 / 2000), np.exp(-1 / 20)
    beta = np.r_[np.zeros(n_lif), np.full(n_alif, 1.7 * (1 - rho) / (1 - alpha))]
    w_rec = rng.standard_normal((n, n)) / np.sqrt(n)
    np.fill_diagonal(w_rec, 0.0)
    model = RecurrentSNN(
        rng.standard_normal((n, n_in)) / np.sqrt(n_in),
        w_rec,
        (1 - kappa) * rng.standard_normal((n_out, n)) / np.sqrt(n),
        alpha=alpha,
        v_th=0.6,
        beta=beta,
        rho=np.r_[np.zeros(n_lif), np.full(n_alif, rho)],
        kappa=kappa,
        conventions=Conventions("none", "next_step", 0, 1, 0, name="bellec-eligalif"),
        n_ref=5,
    )
    return model, rng.standard_normal((n, n_out))


SMALL_TASK: dict[str, Any] = {"n_cues": 3, "t_delay": 300}
"""The task at the small size: 3 cues and a 300 ms delay, 750 steps a trial (the default: 2250)."""


def small_network(spec: Mapping[str, Any], n_hidden: int = 20) -> Network:
    """The e-prop evidence network of ``spec`` (a network's dict with hidden populations ``lif``
    and ``alif``, e.g. ``examples/eprop_evidence.yaml`` read) at a size that still learns
    :data:`SMALL_TASK`: ``n_hidden`` LIF and as many ALIF, the recurrent weights drawn
    ``N(0, 1 / (2 n_hidden))`` (fan-in scaled as the example's 50 + 50). ``spec`` is not changed."""
    d = copy.deepcopy(dict(spec))
    for p in d["populations"]:
        if p["name"] in ("lif", "alif"):
            p["size"] = n_hidden
    for p in d["projections"]:
        if p["pre"] in ("lif", "alif") and p["post"] in ("lif", "alif"):
            p["weights"]["std"] = float(1 / np.sqrt(2 * n_hidden))
    return network_from_dict(d)


def with_lr(net: Network, lr: float, readout_factor: float, readout: str = "out") -> Network:
    """``net`` with every plastic projection's ``lr`` set to ``lr``, the readout's (onto
    ``readout``) to ``lr * readout_factor``."""

    def rule(p):
        f = readout_factor if p.post == readout else 1.0
        return replace(p.plasticity, params={**p.plasticity.params, "lr": lr * f})

    projs = [p if p.plasticity is None else replace(p, plasticity=rule(p)) for p in net.projections]
    return Network(net.populations, projs, name=net.name, description=net.description)
