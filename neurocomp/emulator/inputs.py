"""Spike inputs: given arrays and frozen Poisson sources, shared by the emulator and the
backends so that every runner feeds a Program the same spikes."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..compiler.program import Program
from ..errors import NeurocompError, Problem


def per_trial(arr, steps: int, batch: int, n: int, where: str, problems: list[Problem], dtype=None):
    """``arr`` as a ``[steps or more, batch, n]`` array (a ``[steps, n]`` array is shared by
    every trial, as a read-only broadcast view); ``None``, with a problem naming ``where``
    appended to ``problems``, when its shape fits neither form."""
    a = np.asarray(arr, dtype=dtype)
    if a.ndim == 2:
        a = np.broadcast_to(a[:, None, :], (a.shape[0], batch, a.shape[1]))
    if a.ndim != 3 or a.shape[0] < steps or a.shape[1:] != (batch, n):
        problems.append(Problem(where, f"shape {np.shape(arr)}; expected [{steps}, {batch}, {n}] or [{steps}, {n}]"))
        return None
    return a


def unfed(name: str) -> Problem:
    """The problem of an input population with neither a given spike array nor a rate."""
    return Problem(f"input {name!r}", "has no rate and no spike array was given")


def unfed_inputs(kinds: Mapping[str, str], given: Mapping, seeded: Mapping) -> list[Problem]:
    """:func:`unfed` for each input population (``kinds[name] == "input"``) that is neither
    ``given`` nor ``seeded`` (a Poisson source)."""
    return [unfed(name) for name, kind in kinds.items() if kind == "input" and name not in given and name not in seeded]


def poisson_step(rng: np.random.Generator, rate_hz: float, dt_ms: float, n: int) -> np.ndarray:
    """One step of a frozen Poisson source: ``n`` uniform draws, spike where below
    ``rate * dt``. Successive calls on one generator give the same numbers as one call for
    many steps, which is what makes a run resumable and the backends agree."""
    return (rng.random(n) < rate_hz * dt_ms / 1000.0).astype(np.int64)


def poisson_steps(rng: np.random.Generator, rate_hz: float, dt_ms: float, n: int, steps: int) -> np.ndarray:
    """``steps`` successive :func:`poisson_step` draws at once, ``[steps, n]``: the same
    numbers (one uniform per element, row after row from one generator)."""
    return (rng.random((steps, n)) < rate_hz * dt_ms / 1000.0).astype(np.int64)


def input_rasters(program: Program, steps: int, batch: int, given: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``[steps, batch, n]`` spike counts for every input population of ``program``, from
    ``given`` arrays (``[steps, batch, n]`` or ``[steps, n]``) or its Poisson rate and seed
    (the same spikes in every trial), starting at step 1."""
    out, problems = {}, []
    for p in program.populations:
        if p.model != "SpikeInput":
            continue
        if p.name in given:
            a = per_trial(given[p.name], steps, batch, p.size, f"input {p.name!r}", problems)
            if a is None:
                continue
            out[p.name] = np.asarray(a[:steps], dtype=np.int64)
        elif p.params.get("rate_hz") is not None:
            rng = np.random.default_rng(p.params["seed"])
            raster = np.stack([poisson_step(rng, p.params["rate_hz"], program.dt_ms, p.size) for _ in range(steps)])
            out[p.name] = np.broadcast_to(raster[:, None, :], (steps, batch, p.size)).copy()
        else:
            problems.append(unfed(p.name))
    unknown = [k for k in given if k not in out and not any(p.name == k for p in program.populations)]
    problems += [Problem(f"input {k!r}", "is not a population of the program") for k in unknown]
    if problems:
        raise NeurocompError(problems, header="bad inputs")
    return out
