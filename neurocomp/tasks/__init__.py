"""Benchmark tasks: deterministic, seeded generators of inputs and targets.

``make(name, seed=0, **overrides)`` builds a :class:`~neurocomp.tasks.base.Task` from the
registry :data:`TASKS` (name -> generator ``f(seed=..., **overrides) -> Task``). A task
module adds itself here with one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    balanced_bistable,
    balanced_oscillator,
    contrastive_xor,
    delayed_xor,
    evidence,
    hopfield_logic,
    kimchow_rls,
    pattern_generation,
    perturbation,
    reward_choice,
    rflo_periodic,
    spike_pattern,
    store_recall,
    timing_code,
    volatile_reward,
)
from .base import Task, nmse

TASKS: dict[str, Callable[..., Task]] = {
    balanced_bistable.NAME: balanced_bistable.make,
    balanced_oscillator.NAME: balanced_oscillator.make,
    evidence.NAME: evidence.make,
    kimchow_rls.NAME: kimchow_rls.make,
    pattern_generation.NAME: pattern_generation.make,
    rflo_periodic.NAME: rflo_periodic.make,
    spike_pattern.NAME: spike_pattern.make,
    reward_choice.NAME: reward_choice.make,
    perturbation.NAME: perturbation.make,
    perturbation.VOLATILE_NAME: perturbation.make_volatile,
    contrastive_xor.NAME: contrastive_xor.make,
    volatile_reward.NAME: volatile_reward.make,
    hopfield_logic.NAME: hopfield_logic.make,
    timing_code.NAME: timing_code.make,
    store_recall.NAME: store_recall.make,
    delayed_xor.NAME: delayed_xor.make,
}


def make(name: str, seed: int = 0, **overrides: Any) -> Task:
    """The task ``name`` generated from ``seed`` with its parameters replaced by ``overrides``."""
    try:
        gen = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})") from None
    return gen(seed=seed, **overrides)


__all__ = ["TASKS", "Task", "make", "nmse"]
