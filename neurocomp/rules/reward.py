"""The reward part of a three-factor rule: the reward prediction error ``dR = R - b`` that
multiplies an eligibility (``dw = lr * dR * e``), with its baseline ``b``.

Two baselines, one object (:class:`RewardBaseline`):

* ``"paired"``: ``b`` is the reward of an unperturbed run of the same trial (weight and node
  perturbation as Züge, Klos & Memmesheimer run them: each trial twice). ``delta(R, R0)``.
* ``"running"``: ``b`` is a running average of past rewards, ``b <- b + (R - b) / tau``
  (``tau`` in trials; Fiete & Seung, PRL 97:048104, 2006, for node perturbation; the usual
  baseline of R-STDP), read before this trial's reward updates it. ``delta(R)``; the first
  trial sees ``b = R`` (``dR = 0``: no reward expected, no error yet).

Rewards are arrays (one per independent network, or per network and output neuron); the
baseline keeps one value per entry. Used by :mod:`neurocomp.rules.perturbation`; a reward rule
with a baseline (R-STDP's ``R_j``) takes its ``dR`` from here rather than keeping its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BASELINES = ("paired", "running")


@dataclass
class RewardBaseline:
    """``mode``: one of :data:`BASELINES`; ``tau``: the running average's time constant in
    trials (``"running"`` only, ``>= 1``)."""

    mode: str = "paired"
    tau: float = 10.0
    value: np.ndarray | None = field(default=None, repr=False)  # the running baseline b

    def __post_init__(self) -> None:
        if self.mode not in BASELINES:
            raise ValueError(f"reward baseline must be one of {BASELINES}, got {self.mode!r}")
        if not self.tau >= 1:
            raise ValueError(f"reward baseline tau must be >= 1 trial, got {self.tau!r}")

    @property
    def needs_unperturbed_run(self) -> bool:
        return self.mode == "paired"

    def delta(self, reward: np.ndarray, unperturbed: np.ndarray | None = None) -> np.ndarray:
        """``dR = R - b`` for this trial; a running baseline then moves towards ``R``."""
        r = np.asarray(reward)
        if self.mode == "paired":
            if unperturbed is None:
                raise ValueError("a paired reward baseline needs the unperturbed run's reward")
            return r - unperturbed
        if self.value is None:
            self.value = r.copy()
        d = r - self.value
        self.value = self.value + d / self.tau
        return d


__all__ = ["BASELINES", "RewardBaseline"]
