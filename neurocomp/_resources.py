"""Memory guards: estimate what a step will allocate and refuse it before allocating.

A model of 10^9 neurons or a 200 000 x 200 000 dense projection would otherwise grow until
the operating system kills the process. Each guard adds up its estimates (bytes, named by
the population or projection they belong to) and raises :class:`ResourceError` when the
total exceeds the limit: the memory the machine has available now (``MemAvailable``), or
the limit set with :func:`set_memory_limit` (the CLI's ``--max-memory``) or the
environment variable ``NEUROCOMP_MAX_MEMORY`` (``"64G"``, ``"512M"``, bytes; ``"0"`` or
``"none"`` switches the guard off). Estimates are lower bounds of the arrays' sizes, not
of Python's overheads: a refusal is certain to be right, an acceptance is not a promise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .errors import NeurocompError, Problem

ENV_VAR = "NEUROCOMP_MAX_MEMORY"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_limit: int | None | str = "auto"  # bytes, None (no guard) or "auto" (the environment, else MemAvailable)


class ResourceError(NeurocompError, ValueError):
    """A model or run needs more memory than the limit."""

    kind = "resource"


def parse_size(text: str) -> int | None:
    """``"64G"``, ``"1.5G"``, ``"512M"``, ``"1000000"`` (bytes; K, M, G, T are powers of 1024,
    an optional trailing ``B`` or ``iB`` is allowed) -> bytes; ``"0"`` or ``"none"`` -> None.
    Raises ``ValueError`` for anything else."""
    s = str(text).strip().upper()
    if s in ("0", "NONE", "OFF"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", s)
    if not m:
        raise ValueError(f"not a memory size: {text!r} (examples: 64G, 512M, 1000000)")
    n = float(m.group(1)) * _UNITS[m.group(2)]
    if n < 1 or n > 2**62:
        raise ValueError(f"memory size {text!r} is out of range")
    return int(n)


def set_memory_limit(limit: int | str | None) -> None:
    """Set the limit for this process: bytes, a size string, None (no guard) or ``"auto"``."""
    global _limit
    _limit = "auto" if limit == "auto" else parse_size(limit) if isinstance(limit, str) else limit


def available_memory() -> int | None:
    """The memory the machine can give now (``MemAvailable`` on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit() -> tuple[int | None, str]:
    """The limit in bytes (None: no guard) and where it comes from."""
    if _limit != "auto":
        return _limit, "--max-memory"  # type: ignore[return-value]
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return parse_size(env), ENV_VAR
        except ValueError as exc:
            raise ResourceError([Problem(ENV_VAR, str(exc))]) from None
    return available_memory(), "the memory available on this machine"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def require_memory(items: Iterable[tuple[str, float]], doing: str) -> None:
    """Refuse ``doing`` when the estimates ``items`` (``(where, bytes)``) add up to more
    than :func:`memory_limit`, naming the largest items and the total."""
    items = [(w, float(b)) for w, b in items if b > 0]
    total = sum(b for _, b in items)
    limit, source = memory_limit()
    if limit is None or total <= limit:
        return
    biggest = sorted(items, key=lambda x: -x[1])[:5]
    problems = [Problem(w, f"needs about {fmt_bytes(b)}") for w, b in biggest]
    header = (
        f"{doing} needs about {fmt_bytes(total)} of memory, more than {fmt_bytes(limit)} ({source}); "
        "make the model smaller, or raise the limit with --max-memory SIZE (or $NEUROCOMP_MAX_MEMORY)"
    )
    raise ResourceError(problems, header=header)


def weights_init_bytes(spec: dict, n_post: int, n_pre: int) -> float:
    """What drawing a seeded weight initializer (:func:`neurocomp.graph.weights.init_weights`)
    allocates: row, column and value per expected synapse (int64 while drawn, float64
    values), plus the dense float64 matrix when ``format`` is dense."""
    try:
        density = float(spec.get("density", 1.0))
        band = spec.get("bandwidth")
        width = n_pre if band is None else min(n_pre, 2 * int(band) + 1)
    except (TypeError, ValueError, OverflowError):
        return 0.0  # a malformed spec is reported by the loader
    if not 0 < density <= 1:
        return 0.0
    nnz = float(n_post) * width * density
    dense = 8.0 * n_post * n_pre if spec.get("format", "dense") == "dense" else 0.0
    return 24.0 * nnz + dense


def emulator_bytes(
    populations: Iterable[tuple[str, int]],
    projections: Iterable[tuple[str, int, bool]],
    batch: int,
    steps: int,
    n_recorded: int,
) -> list[tuple[str, float]]:
    """Estimates for running a Program: per population, about 8 float64 state arrays per
    trial and the recording (``n_recorded`` variables, at least 1 byte each per step, trial
    and neuron); per projection, its weights held as float64 (``synapses`` stored entries;
    ``dense`` marks a dense matrix, which the emulator also keeps transposed)."""
    out = []
    for name, size in populations:
        out.append((f"population {name!r}", 8.0 * 8 * batch * size + 1.0 * n_recorded * steps * batch * size))
    for name, synapses, dense in projections:
        out.append((f"projection {name!r}", (16.0 if dense else 20.0) * synapses))
    return out
