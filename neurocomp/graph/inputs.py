"""Spike inputs: given arrays and frozen Poisson sources, shared by the emulator, the
reference simulator and the backends so that every runner feeds a network the same spikes
(here, in ``graph``, below all of them; :func:`neurocomp.emulator.inputs.input_rasters` reads a
compiled Program's inputs with these).

A Poisson source (a ``SpikeInput`` with ``rate_hz``) draws from generators derived from
its ``seed``: trial 0 from ``default_rng(seed)``, trial ``b > 0`` from the independent
stream ``SeedSequence(seed, spawn_key=(b,))``, so the trials of a batch are independent
and a trial's spikes do not depend on the batch size (trial 0 is what a single trial
draws). With ``trials: shared`` every trial gets trial 0's spikes (a frozen input pattern).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

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


def spike_counts(arr, steps: int, batch: int, n: int, max_count: int, where: str, problems: list[Problem]):
    """A given spike array as ``[steps or more, batch, n]`` int64 counts (a ``[steps, n]``
    array shared by every trial), or ``None`` with a problem naming ``where``: spikes are
    whole numbers from 0 to ``max_count`` (1 on a chip that sends one spike per step); a
    NaN, a 0.3 or a string is refused, never rounded."""
    try:
        a = np.asarray(arr)
    except (ValueError, TypeError) as exc:
        problems.append(Problem(where, f"not an array of spike counts ({exc})"))
        return None
    if a.dtype.kind not in "biuf":
        problems.append(Problem(where, f"spike counts must be integers, got dtype {a.dtype}"))
        return None
    a = per_trial(a, steps, batch, n, where, problems)
    if a is None:
        return None
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            problems.append(
                Problem(
                    where,
                    f"spike counts must be whole numbers, got {a[idx].item()!r} at [step, trial, neuron] = {list(idx)}",
                )
            )
            return None
    if a.size and (a.min() < 0 or a.max() > max_count):
        bad_v = (a.min() if a.min() < 0 else a.max()).item()  # a Python number: numpy 2's repr names its type
        allowed = "0 or 1" if max_count == 1 else f"0..{max_count}"
        problems.append(Problem(where, f"spike counts must be {allowed} per step, got {bad_v!r}"))
        return None
    return a.astype(np.int64, copy=False)


def graded_values(
    arr, steps: int, batch: int, n: int, bounds: tuple[int, int] | None, where: str, problems: list[Problem]
):
    """Graded input values as ``[steps or more, batch, n]`` float64, or ``None`` with a
    problem: finite numbers; with ``bounds`` (a fixed-point chip) integers within them."""
    try:
        a = per_trial(np.asarray(arr, dtype=np.float64), steps, batch, n, where, problems)
    except (ValueError, TypeError) as exc:
        problems.append(Problem(where, f"not an array of numbers ({exc})"))
        return None
    if a is None:
        return None
    head = a[:steps]
    if not np.isfinite(head).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(head))[0])
        problems.append(
            Problem(where, f"graded values must be finite, got {head[idx]!r} at [step, trial, post] = {list(idx)}")
        )
        return None
    if bounds is not None and head.size:
        lo, hi = bounds
        if (head != np.round(head)).any() or head.min() < lo or head.max() > hi:
            problems.append(Problem(where, f"graded values on this chip are integers in {lo}..{hi}"))
            return None
    return a


class PoissonSource:
    """The frozen Poisson spikes of one input population over ``batch`` trials (see the
    module docstring for the streams). ``step()`` gives one step's ``[batch, n]`` int64
    spikes; ``raster(steps)`` many steps at once, the same numbers; ``state`` is the
    generators' state (JSON-able, for checkpoints)."""

    def __init__(self, rate_hz: float, dt_ms: float, n: int, seed: int, batch: int = 1, shared: bool = False):
        p = float(rate_hz) * float(dt_ms) / 1000.0
        if not (np.isfinite(p) and 0 <= p <= 1):
            raise NeurocompError(
                [
                    Problem(
                        "input",
                        f"rate {rate_hz!r} Hz at dt = {dt_ms!r} ms is {p:.4g} spikes per step; a Poisson input "
                        "sends at most one spike per step (rate_hz * dt_ms / 1000 <= 1)",
                    )
                ]
            )
        self.rate_hz, self.dt_ms, self.n, self.seed, self.batch, self.shared = rate_hz, dt_ms, n, seed, batch, shared
        self.reset()

    @classmethod
    def of(cls, params, dt_ms: float, n: int, batch: int, where: str = "input") -> PoissonSource:
        """From a ``SpikeInput``'s fields or a Program's registers (``rate_hz``, ``seed``,
        ``trials``: ``"independent"``, the default, or ``"shared"``)."""
        try:
            return cls(params["rate_hz"], dt_ms, n, params["seed"], batch, params.get("trials") == "shared")
        except NeurocompError as exc:
            raise NeurocompError([Problem(where, p.message) for p in exc.problems]) from None

    def reset(self) -> None:
        """Restart every stream at its first draw."""
        k = 1 if self.shared else self.batch
        self._rngs = [np.random.default_rng(self.seed)] + [
            np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(b,))) for b in range(1, k)
        ]

    def step(self) -> np.ndarray:
        draws = [poisson_step(r, self.rate_hz, self.dt_ms, self.n) for r in self._rngs]
        if self.shared:
            return np.broadcast_to(draws[0], (self.batch, self.n)).copy()
        return np.stack(draws)

    def raster(self, steps: int) -> np.ndarray:
        """``[steps, batch, n]`` spikes: ``steps`` calls of :meth:`step` (each stream's draws
        taken at once, :func:`poisson_steps`: the same numbers)."""
        draws = np.stack([poisson_steps(r, self.rate_hz, self.dt_ms, self.n, steps) for r in self._rngs], axis=1)
        return np.broadcast_to(draws, (steps, self.batch, self.n)).copy() if self.shared else draws

    @property
    def state(self) -> list:
        return [r.bit_generator.state for r in self._rngs]

    @state.setter
    def state(self, value) -> None:
        states = [value] if isinstance(value, Mapping) else list(value)  # one dict: a single stream
        if len(states) != len(self._rngs):
            raise NeurocompError(
                [Problem("checkpoint", f"has {len(states)} Poisson streams for an input with {len(self._rngs)}")]
            )
        for r, st in zip(self._rngs, states, strict=True):
            r.bit_generator.state = st


def poisson_step(rng: np.random.Generator, rate_hz: float, dt_ms: float, n: int) -> np.ndarray:
    """One step of a frozen Poisson source: ``n`` uniform draws, spike where below
    ``rate * dt``. Successive calls on one generator give the same numbers as one call for
    many steps, which is what makes a run resumable and the backends agree."""
    return (rng.random(n) < rate_hz * dt_ms / 1000.0).astype(np.int64)


def poisson_steps(rng: np.random.Generator, rate_hz: float, dt_ms: float, n: int, steps: int) -> np.ndarray:
    """``steps`` successive :func:`poisson_step` draws at once, ``[steps, n]``: the same
    numbers (one uniform per element, row after row from one generator)."""
    return (rng.random((steps, n)) < rate_hz * dt_ms / 1000.0).astype(np.int64)
