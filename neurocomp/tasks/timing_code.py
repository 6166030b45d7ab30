"""``psd-timing``: a recurrent E/I network driven from near silence to a sparse code for time by
homeostatic plasticity of its E->E synapses (Buonomano, J Neurophysiol 94:2275, 2005;
``learning-rules.md`` §2.4; the rules in :mod:`neurocomp.rules.scaling`).

The network (our sizes and constants: the paper's could not be read, ``learning-rules.md``
§4 item 3): ``n_e`` excitatory and ``n_i`` inhibitory leaky integrators with a slow excitatory
synaptic current (``tau_syn_ms``, NMDA-like: a near-threshold input fires late), one step per
ms::

    I <- I exp(-1/tau) + W s              v <- v exp(-1/tau_m) + (I_E - I_I) / tau_m
    spike when v >= 1 + a (then v <- 0, a <- a + adapt);  a <- a exp(-1/tau_adapt)

E currents (onto E and I cells) decay with ``tau_syn_ms``, I currents with ``tau_inh_ms``.
E->E synapses (``p_ee``) start weak (``w0``) and are plastic; E->I and I->E (``p_ei``,
``p_ie``) are fixed. Each trial (``steps`` ms) starts from rest; at its first step ``n_stim``
fixed E cells are made to fire (the brief stimulus). Without learning the activity dies at
the stimulated cells. A trial's record: the spikes of every E cell ``[steps, n_e]``. The
constants were chosen by a small search (seed 0) for a network whose learned latencies span
more than 100 ms: with faster currents (``tau_m_ms`` 50, ``tau_syn_ms`` 150) PSD recruits as
many cells but their latencies spread over half the time.

Scores of a trial (:func:`summary`): mean spikes per E cell, the fraction of E cells that
fired (recruited), the most spikes of one cell, and the spread of first-spike latencies (5th
to 95th percentile, ms). Targets (issue 17): mean within 10 % of ``A_goal``, more than 90 %
recruited, at most 3 spikes per cell, latencies spanning more than 100 ms; the plain
synaptic scaling control unstable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "psd-timing"

DEFAULTS: dict[str, Any] = {
    "n_e": 200,
    "n_i": 50,
    "p_ee": 0.065,
    "p_ei": 0.2,  # E -> I
    "p_ie": 0.2,  # I -> E
    "w0": 0.1,  # initial E->E weight (the activity then dies at the stimulated cells)
    "w_ei": 0.3,
    "w_ie": 0.3,
    "tau_m_ms": 100.0,
    "tau_syn_ms": 300.0,  # E currents (slow, NMDA-like)
    "tau_inh_ms": 20.0,
    "adapt": 1.0,  # threshold increase per spike (keeps a cell to a spike or two per trial)
    "tau_adapt_ms": 200.0,
    "n_stim": 5,
    "steps": 640,  # ms per trial (a multiple of a learning epoch: 40 * 2^4 on loihi2)
}


class TimingNetwork:
    """The network of the module docstring for task config ``cfg`` and connectivity seed
    ``seed`` (float64). ``trial(W)`` runs one trial with E->E weights ``W`` ``[n_e, n_e]``
    (post, pre) and returns the E spikes ``[steps, n_e]`` (bool)."""

    def __init__(self, cfg, seed: int) -> None:
        self.cfg = cfg
        rng = np.random.default_rng([seed, 17])
        ne, ni = cfg["n_e"], cfg["n_i"]
        self.mask = rng.random((ne, ne)) < cfg["p_ee"]
        np.fill_diagonal(self.mask, False)
        self.w_ei = cfg["w_ei"] * (rng.random((ni, ne)) < cfg["p_ei"])
        self.w_ie = cfg["w_ie"] * (rng.random((ne, ni)) < cfg["p_ie"])
        self.stim = np.sort(rng.choice(ne, cfg["n_stim"], replace=False))

    def initial_weights(self) -> np.ndarray:
        return self.cfg["w0"] * self.mask

    def trial(self, W: np.ndarray) -> np.ndarray:
        c, ne, ni = self.cfg, self.cfg["n_e"], self.cfg["n_i"]
        am, ae, ai, aa = (np.exp(-1.0 / c[k]) for k in ("tau_m_ms", "tau_syn_ms", "tau_inh_ms", "tau_adapt_ms"))
        v, ie, vi, ii, inh, th = np.zeros(ne), np.zeros(ne), np.zeros(ni), np.zeros(ni), np.zeros(ne), np.zeros(ne)
        s_e, s_i = np.zeros(ne), np.zeros(ni)
        out = np.zeros((c["steps"], ne), bool)
        for t in range(c["steps"]):
            ie = ie * ae + W @ s_e
            ii = ii * ae + self.w_ei @ s_e  # the I cells' excitatory current
            inh = inh * ai + self.w_ie @ s_i
            v = v * am + (ie - inh) / c["tau_m_ms"]
            vi = vi * am + ii / c["tau_m_ms"]
            if t == 0:
                v[self.stim] = np.inf  # the stimulus
            th *= aa
            fired, s_i = v >= 1.0 + th, (vi >= 1.0)
            v[fired], vi[s_i] = 0.0, 0.0
            th[fired] += c["adapt"]
            s_e, s_i = fired.astype(float), s_i.astype(float)
            out[t] = fired
        return out


def summary(spikes: np.ndarray) -> dict[str, float]:
    """A trial's scores (module docstring) from its E spikes ``[steps, n_e]``."""
    counts = spikes.sum(axis=0)
    fired = counts > 0
    first = spikes[:, fired].argmax(axis=0)
    span = float(np.percentile(first, 95) - np.percentile(first, 5)) if first.size > 1 else 0.0
    return {"mean": float(counts.mean()), "recruited": float(fired.mean()), "max": int(counts.max()),
            "latency_span_ms": span}  # fmt: skip


def make(seed: int = 0, **overrides: Any) -> Task:
    """The task for ``seed`` (its connectivity and stimulated cells). ``inputs`` ``[steps, 1,
    n_e]``: the stimulus (1 at step 0 on the stimulated cells); the config carries the rest.
    The metric scores recorded spikes against the activity target by :func:`summary`'s mean."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    for k in ("n_e", "n_i", "n_stim", "steps"):
        cfg[k] = int(cfg[k])
    if not 1 <= cfg["n_stim"] <= cfg["n_e"] or cfg["steps"] < 1 or cfg["n_i"] < 0:
        raise ValueError(f"{NAME}: need 1 <= n_stim <= n_e, steps >= 1, n_i >= 0, got {cfg}")
    net = TimingNetwork(cfg, int(seed))
    x = np.zeros((cfg["steps"], 1, cfg["n_e"]))
    x[0, 0, net.stim] = 1.0
    y = np.zeros((cfg["steps"], 1, cfg["n_e"]))

    def metric(outputs: np.ndarray, targets: np.ndarray) -> float:
        return summary(np.asarray(outputs)[:, 0] > 0)["mean"]

    return Task(NAME, int(seed), x, y, "spikes_per_cell", metric, dt_ms=1.0, config=cfg)
