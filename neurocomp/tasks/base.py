"""The common form of a benchmark task: inputs, targets and how outputs are scored.

Every task is a deterministic function of its seed (``make(name, seed=..., **overrides)`` in
:mod:`neurocomp.tasks`), so a run can be repeated exactly and the three levels of a learning
rule (reference, lowered-float, lowered-fixed) can be fed identical trials.

Array conventions, shared by every task:

* time is the first axis, then the batch of trials, then units: ``[T, batch, n]``;
* one entry of the time axis is one simulation step; ``dt_ms`` says how long a step is
  (``None`` for rate networks whose time constants are given in steps);
* inputs and targets are float64 in the model's own units (spike inputs are 0/1 counts
  per step, rates and target signals are dimensionless).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True, eq=False)
class Task:
    """One task instance: a batch of trials and the metric that scores a model's outputs.

    ``name``: the registry name (e.g. ``"rflo-periodic"``).
    ``seed``: the seed it was generated from.
    ``inputs``: ``[T, batch, n_in]`` float64, the input of each step (read-only).
    ``targets``: ``[T, batch, n_out]`` float64, the desired output of each step (read-only).
    ``metric_name``: what ``metric`` returns (e.g. ``"nmse"``, ``"error_rate"``).
    ``metric``: ``metric(outputs, targets) -> float`` with ``outputs`` shaped like ``targets``;
    lower is better unless ``higher_is_better``.
    ``mask``: ``[T, batch]`` weights of each step in the loss and the metric (1 where the
    target counts, 0 elsewhere, e.g. outside a recall window); ``None`` means every step.
    ``dt_ms``: the length of one step in ms, or ``None`` when time is counted in steps.
    ``config``: the generator's parameters after overrides (read-only), for reports.
    ``sample``: for tasks that draw fresh trials each iteration, ``sample(iteration)``
    returns the task for that iteration (same seed, so deterministic); ``None`` means the same
    trials every iteration.
    ``higher_is_better``: the direction of ``metric``.
    """

    name: str
    seed: int
    inputs: np.ndarray
    targets: np.ndarray
    metric_name: str
    metric: Metric
    mask: np.ndarray | None = None
    dt_ms: float | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    sample: Callable[[int], Task] | None = None
    higher_is_better: bool = False

    def __post_init__(self) -> None:
        # Frozen arrays and config: a Task is shared between levels and runs, so nobody may
        # change the trials under another's feet.
        for key in ("inputs", "targets", "mask"):
            value = getattr(self, key)
            if value is None:
                continue
            arr = np.array(value, dtype=np.float64)  # a private copy
            arr.setflags(write=False)
            object.__setattr__(self, key, arr)
        if self.inputs.ndim != 3 or self.targets.ndim != 3:
            raise ValueError(
                f"task {self.name!r}: inputs and targets must be [T, batch, n], "
                f"got {self.inputs.shape} and {self.targets.shape}"
            )
        if self.inputs.shape[:2] != self.targets.shape[:2]:
            raise ValueError(
                f"task {self.name!r}: inputs {self.inputs.shape} and targets {self.targets.shape} differ in [T, batch]"
            )
        if self.mask is not None and self.mask.shape != self.targets.shape[:2]:
            raise ValueError(f"task {self.name!r}: mask must be [T, batch] = {self.targets.shape[:2]}")
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    @property
    def steps(self) -> int:
        """T, the number of steps of a trial."""
        return self.targets.shape[0]

    @property
    def batch(self) -> int:
        """The number of trials."""
        return self.targets.shape[1]

    @property
    def n_in(self) -> int:
        return self.inputs.shape[2]

    @property
    def n_out(self) -> int:
        return self.targets.shape[2]

    def score(self, outputs: np.ndarray) -> float:
        """``metric(outputs, targets)``; ``outputs`` may omit the batch axis when it is 1."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if outputs.ndim == 2 and self.batch == 1:
            outputs = outputs[:, None, :]
        if outputs.shape != self.targets.shape:
            raise ValueError(f"task {self.name!r}: outputs {outputs.shape} != targets {self.targets.shape}")
        return float(self.metric(outputs, self.targets))


def nmse(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalized mean squared error: ``mean((y - y*)^2) / var(y*)``, over all steps, trials
    and outputs (with ``mask`` ``[T, batch]``, over the masked steps only). Dimensionless;
    0 is perfect, 1 is what the constant output ``mean(y*)`` scores."""
    y = np.asarray(outputs, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if mask is None:
        return float(np.mean((y - t) ** 2) / np.var(t))
    w = np.broadcast_to(np.asarray(mask, dtype=np.float64)[..., None], t.shape)
    mean_t = np.sum(w * t) / np.sum(w)
    return float(np.sum(w * (y - t) ** 2) / np.sum(w * (t - mean_t) ** 2))
