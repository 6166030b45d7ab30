"""A compiled Program's spike inputs as whole rasters (the form the Lava backend feeds), from
given arrays and the Poisson sources of :mod:`neurocomp.graph.inputs`: the spikes the emulator
draws step by step, at once."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..compiler.program import Program
from ..errors import NeurocompError, Problem
from ..graph.inputs import PoissonSource, spike_counts, unfed


def input_rasters(
    program: Program, steps: int, batch: int, given: Mapping[str, np.ndarray], max_count: int | None = None
) -> dict[str, np.ndarray]:
    """``[steps, batch, n]`` spike counts for every input population of ``program``, from
    ``given`` arrays (``[steps, batch, n]`` or ``[steps, n]``; counts up to ``max_count``,
    by default the profile's most spikes per step) or its Poisson source, starting at step 1."""
    out, problems = {}, []
    top = program.profile.time.max_spikes_per_step if max_count is None else max_count
    for p in program.populations:
        if p.model != "SpikeInput":
            continue
        if p.name in given:
            a = spike_counts(given[p.name], steps, batch, p.size, top, f"input {p.name!r}", problems)
            if a is not None:
                out[p.name] = np.asarray(a[:steps], dtype=np.int64)
        elif p.params.get("rate_hz") is not None:
            try:
                out[p.name] = PoissonSource.of(p.params, program.dt_ms, p.size, batch, f"input {p.name!r}").raster(
                    steps
                )
            except NeurocompError as exc:
                problems += exc.problems
        else:
            problems.append(unfed(p.name))
    unknown = [k for k in given if k not in out and not any(p.name == k for p in program.populations)]
    problems += [Problem(f"input {k!r}", "is not a population of the program") for k in unknown]
    if problems:
        raise NeurocompError(problems, header="bad inputs")
    return out
