"""``hopfield-logic``: relax a Hopfield network compiled from a logic program (Sathasivam,
arXiv 0804.4075; weights by :mod:`neurocomp.rules.hopfield_logic`) from random initial states.

The program is ``n_clauses`` random Horn clauses of 2 or 3 literals over ``n_atoms`` atoms,
satisfiable by construction (:func:`~neurocomp.rules.hopfield_logic.random_program`, drawn from
the seed). Each of the ``batch`` trials starts the atoms at a random state (also from the seed),
set by the ``cue`` input at step 1 (row 0).

``schedule``: ``"sequential"`` (the paper's: one atom at a time in a random order per sweep,
``sweeps`` sweeps, :func:`~neurocomp.rules.hopfield_logic.sequential_network`; inputs ``cue``
then ``enable``, ``[T, batch, 3 n_atoms]``) or ``"parallel"`` (every neuron each step, ``steps``
steps, :func:`~neurocomp.rules.hopfield_logic.spiking_network`; inputs ``cue``). Split the inputs
with :func:`inputs_of`.

The outputs scored are the atoms' spikes ``[T, batch, n_atoms]`` (1 = true). The metric is the
paper's global-minimum ratio: the fraction of trials whose atoms end at a fixed point (unchanged
over the last ``config["settle_rows"]`` steps: the last sweep, or the last two steps of the
parallel run, where a 2-cycle is a failure) that violates no clause (cost 0, the global minimum of
a satisfiable program). The targets hold no information (zeros); the program is in
``config["clauses"]``, the initial states in ``config["x0"]``, the update orders in
``config["orders"]``.
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
    "schedule": "sequential",  # or "parallel"
    "sweeps": 5,  # sequential: updates of every atom, in a fresh random order each
    "steps": 30,  # parallel: time steps per relaxation
    "dt_ms": 1.0,
}


def global_minimum_ratio(program: hl.LogicProgram, atoms: np.ndarray, settle_rows: int = 2) -> float:
    """The fraction of trials that end at a fixed point (the same state in the last
    ``settle_rows`` steps) with no violated clause; ``atoms`` ``[T, batch, n_atoms]`` 0/1."""
    last = atoms[-1]
    fixed = np.all(atoms[-settle_rows:] == last, axis=(0, 2))
    satisfied = program.violated(2 * last.astype(np.int64) - 1) == 0
    return float(np.mean(fixed & satisfied))


def program_of(task: Task) -> hl.LogicProgram:
    return hl.LogicProgram(task.config["clauses"])


def inputs_of(task: Task) -> dict[str, np.ndarray]:
    """The task's inputs by input population (``cue``, and ``enable`` when sequential), uint8."""
    spikes = task.inputs.astype(np.uint8)
    n = len(task.config["x0"][0])
    out = {"cue": spikes[:, :, : 2 * n]}
    if task.config["schedule"] == "sequential":
        out["enable"] = spikes[:, :, 2 * n :]
    return out


def network_of(task: Task, weights: str = "wan_abdullah"):
    """The spiking network the task's schedule runs, from the program's ``weights``
    (``"wan_abdullah"`` or ``"hebbian"``)."""
    program = program_of(task)
    pw = hl.pairwise(hl.wan_abdullah(program) if weights == "wan_abdullah" else hl.hebbian(program))
    return hl.sequential_network(pw) if task.config["schedule"] == "sequential" else hl.spiking_network(pw)


def make(seed: int = 0, **overrides: Any) -> Task:
    """The task: inputs the cue spikes ``[steps, batch, 2 n_atoms]``, metric
    ``global_minimum_ratio`` (higher is better). ``overrides`` replace keys of :data:`DEFAULTS`."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{NAME}: unknown parameter(s) {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    cfg = {**DEFAULTS, **overrides}
    if cfg["schedule"] not in ("sequential", "parallel"):
        raise ValueError(f"{NAME}: schedule must be 'sequential' or 'parallel', got {cfg['schedule']!r}")
    if int(cfg["steps"]) < 4 or int(cfg["batch"]) < 1 or int(cfg["sweeps"]) < 2:
        raise ValueError(f"{NAME}: steps must be >= 4 (cue, bias, two states), sweeps >= 2 and batch >= 1")
    rng = np.random.default_rng(seed)
    program = hl.random_program(int(cfg["n_atoms"]), int(cfg["n_clauses"]), rng, float(cfg["goal_fraction"]))
    n, batch, sweeps = len(program.atoms), int(cfg["batch"]), int(cfg["sweeps"])
    x0 = rng.integers(0, 2, (batch, n))
    cfg["clauses"] = tuple(str(c) for c in program.clauses)
    cfg["x0"] = x0.tolist()
    if cfg["schedule"] == "sequential":
        orders = np.array([[rng.permutation(n) for _ in range(sweeps)] for _ in range(batch)])
        enable = hl.enable_spikes(orders)
        steps = enable.shape[0]
        inputs = np.concatenate([hl.cue_spikes(x0, steps), enable], axis=2)
        cfg["orders"] = orders.tolist()
        cfg["settle_rows"] = hl.SEQ_PERIOD * n + 1
    else:
        steps = int(cfg["steps"])
        inputs = hl.cue_spikes(x0, steps)
        cfg["settle_rows"] = 2
    settle = int(cfg["settle_rows"])
    return Task(
        name=NAME,
        seed=int(seed),
        inputs=inputs,
        targets=np.zeros((steps, batch, n)),
        metric_name="global_minimum_ratio",
        metric=lambda outputs, _targets: global_minimum_ratio(program, outputs, settle),
        dt_ms=float(cfg["dt_ms"]),
        config=cfg,
        higher_is_better=True,
    )
