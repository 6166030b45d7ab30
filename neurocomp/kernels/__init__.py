"""Compiled step kernels: the hot path of the emulator and the references.

Every kernel is a numba function compiled once per argument types and cached on disk
(``cache=True``), so a process pays the compilation only when the cache is cold (the first
``make test`` or ``make demo`` after a change). Kernels never use ``fastmath``: the fixed
path must be bit-exact and the float path must round as numpy does.

A model's update is written once, as a kernel template parametrized by its arithmetic
(the chip's integers held exactly in float64, or float), so the fixed and float paths are
two instances of one definition. Kernels run many steps per call over preallocated state
and recording arrays; Python only orchestrates.

Modules (one per family): :mod:`.neurons` (LIF, ALIF, LI updates), :mod:`.delivery` (dense,
sparse and delayed synaptic delivery), :mod:`.learning` (the sum-of-products engine),
:mod:`.reckon` (ReckOn's learner), :mod:`.eprop` (e-prop on programmable cores).
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable

import numba

__all__ = ["kernel", "parallel_kernel", "prange", "announce_compile"]

prange = numba.prange
_announced = False


def kernel(fn: Callable | None = None, **options):
    """``numba.njit`` with the project's options: cached on disk, no fastmath (exact
    rounding), numpy's error model (no Python exceptions on a division by zero), and the GIL
    released (``nogil``) so that batches can run on threads."""
    opts = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy", **options}
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def parallel_kernel(fn: Callable | None = None, **options):
    """:func:`kernel` with ``parallel=True``: loops written with :data:`prange` run over
    the machine's cores (used over the trials of a batch)."""
    return kernel(fn, parallel=True, **options)


def announce_compile(stream=None) -> None:
    """Say once per process, before the first kernel call, that the kernels are being
    compiled when numba's on-disk cache for this package is empty (the first run after
    an install or a change of the kernels). A warm cache prints nothing."""
    global _announced
    if _announced or os.environ.get("NEUROCOMP_QUIET_JIT"):
        return
    _announced = True
    here = os.path.dirname(os.path.abspath(__file__))
    cached = glob.glob(os.path.join(here, "__pycache__", "*.nbi"))
    if not cached:
        print("compiling kernels (first run only; cached on disk afterwards)...", file=stream or sys.stderr, flush=True)
