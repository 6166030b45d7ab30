"""``hopfield-logic``: relax a Hopfield network compiled from a logic program (Sathasivam,
arXiv 0804.4075; weights by :mod:`neurocomp.rules.hopfield_logic`) from random initial states.

The program is ``n_clauses`` random Horn clauses of 2 or 3 literals over ``n_atoms`` atoms,
satisfiable by construction (:func:`~neurocomp.rules.hopfield_logic.random_program`, drawn from
the seed). Each of the ``batch`` trials starts the atoms at a random state (also from the seed),
set by the ``cue`` input at step 1 (row 0), and runs ``steps`` steps.

The outputs scored are the atoms' spikes ``[T, batch, n_atoms]`` (1 = true). The metric is the
paper's global-minimum ratio: the fraction of trials whose atoms end at a fixed point (the last
two steps agree; a 2-cycle of the parallel dynamics is a failure) that violates no clause (cost 0,
the global minimum of a satisfiable program). The targets hold no information (zeros); the
program is in ``config["clauses"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..rules import hopfield_logic as hl
from .base import Task

NAME = "hopfield-logic"

DEFAULTS: dict[str, Any] = {
    "n_atoms": 10,
    "n_clauses": 20,
    "goal_fraction": 0.25,  # clauses without a head, "<- B, C"
    "batch": 100,  # relaxations
    "steps": 30,  # time steps per relaxation (parallel updates)
    "dt_ms": 1.0,
}


def global_minimum_ratio(program: hl.LogicProgram, atoms: np.ndarray) -> float:
    """The fraction of trials that end at a fixed point with no violated clause; ``atoms``
    ``[T, batch, n_atoms]`` 0/1 (T >= 2)."""
    last, prev = atoms[-1], atoms[-2]
    fixed = np.all(last == prev, axis=-1)
    satisfied = program.violated(2 * last.astype(np.int64) - 1) == 0
    return float(np.mean(fixed & satisfied))


def program_of(task: Task) -> hl.LogicProgram:
    return hl.LogicProgram(task.config["clauses"])


def make(seed: int = 0, **overrides: Any) -> Task:
    """The task: inputs the cue spikes ``[steps, batch, 2 n_atoms]``, metric
    ``global_minimum_ratio`` (higher is better). ``overrides`` replace keys of :data:`DEFAULTS`."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    if int(cfg["steps"]) < 4 or int(cfg["batch"]) < 1:
        raise ValueError(f"{NAME}: steps must be >= 4 (cue, bias, two states) and batch >= 1")
    rng = np.random.default_rng(seed)
    program = hl.random_program(int(cfg["n_atoms"]), int(cfg["n_clauses"]), rng, float(cfg["goal_fraction"]))
    n, batch, steps = len(program.atoms), int(cfg["batch"]), int(cfg["steps"])
    x0 = rng.integers(0, 2, (batch, n))
    cfg["clauses"] = tuple(str(c) for c in program.clauses)
    cfg["x0"] = x0.tolist()
    return Task(
        name=NAME,
        seed=int(seed),
        inputs=hl.cue_spikes(x0, steps),
        targets=np.zeros((steps, batch, n)),
        metric_name="global_minimum_ratio",
        metric=lambda outputs, _targets: global_minimum_ratio(program, outputs),
        dt_ms=float(cfg["dt_ms"]),
        config=cfg,
        higher_is_better=True,
    )
