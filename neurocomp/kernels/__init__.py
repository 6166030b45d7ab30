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
:mod:`.reckon` (ReckOn's learner), :mod:`.eprop` (e-prop on programmable cores),
:mod:`.gated` (the gated theta network, reference and emulator).

Compiling is the cold run's cost, and numba compiles under a process-wide lock: work that
needs many kernels at once (a check's levels) fills the cache from worker processes first
(:func:`warm`), one per core, and then loads them.
"""

from __future__ import annotations

import glob
import hashlib
import os
import sys
from collections.abc import Callable, Sequence

import numba

__all__ = ["kernel", "parallel_kernel", "prange", "announce_compile", "cache_dir", "call_parallel", "on_disk", "warm"]

prange = numba.prange
_announced = False
_HERE = os.path.dirname(os.path.abspath(__file__))
_STAMP = "neurocomp-kernels.sha256"
WARM_TIMEOUT_S = 1800.0  # a warming worker's seconds at most (a stuck one is stopped)


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


def call_parallel(fn: Callable, *args):
    """``fn(*args)`` for a :func:`parallel_kernel`, leaving multiprocessing's start method as
    it was: numba's threading layer asks for it when it starts (which fixes it to the
    platform default), and a library that sets it later (Lava does on import) would then fail."""
    import multiprocessing

    unset = multiprocessing.get_start_method(allow_none=True) is None
    try:
        return fn(*args)
    finally:
        ctx = getattr(multiprocessing.context, "_default_context", None)
        if unset and ctx is not None and hasattr(ctx, "_actual_context"):
            ctx._actual_context = None


def _sources() -> list[str]:
    return sorted(glob.glob(os.path.join(_HERE, "*.py")))


def cache_dir() -> str:
    """The directory numba caches this package's kernels in: the one its own locators pick
    for these sources (``NUMBA_CACHE_DIR`` when set, else ``__pycache__`` next to them when
    writable, else the user-wide cache)."""
    from numba.core import caching

    def probe():  # a stand-in function: the locators read only its first line number
        pass

    src = os.path.join(_HERE, "neurons.py")
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)  # renamed across versions
    for cls in getattr(impl, "_locator_classes", ()):
        try:
            loc = cls.from_function(probe, src)
        except Exception:  # a locator that does not apply here
            loc = None
        if loc is not None:
            return loc.get_cache_path()
    return os.path.join(_HERE, "__pycache__")


def _cached_files(path: str) -> list[str]:
    stems = {os.path.splitext(os.path.basename(f))[0] for f in _sources()}
    files = glob.glob(os.path.join(path, "*.nbi")) + glob.glob(os.path.join(path, "*.nbc"))
    return [f for f in files if os.path.basename(f).split(".")[0] in stems]


def drop_stale_cache() -> None:
    """Numba invalidates a cached kernel only when its own source file changes, not when a
    kernel it calls (in another module of this package) does. So the cache carries a digest
    of every source of this package; a different digest empties it. Never fails: at worst
    numba recompiles."""
    try:
        _drop_stale_cache()
    except Exception:  # noqa: BLE001 (a cache problem must not stop an import)
        pass


def _drop_stale_cache() -> None:
    sha = hashlib.sha256()
    for f in _sources():
        with open(f, "rb") as fh:
            sha.update(fh.read())
    digest = sha.hexdigest()
    path = cache_dir()
    stamp = os.path.join(path, _STAMP)
    try:
        with open(stamp) as fh:
            if fh.read().strip() == digest:
                return
    except OSError:
        pass
    try:
        for f in _cached_files(path):
            os.remove(f)
        os.makedirs(path, exist_ok=True)
        with open(stamp, "w") as fh:
            fh.write(digest)
    except OSError:  # a read-only cache: numba compiles in memory
        pass


def on_disk(dispatcher) -> bool:
    """Whether numba's on-disk cache holds ``dispatcher`` (a :func:`kernel`) compiled for
    some argument types, from its current source; False when that cannot be told."""
    try:
        return bool(dispatcher._cache._cache_file._load_index())  # (numba's own index, stamped with the source)
    except Exception:  # noqa: BLE001 (another numba's internals: say "not cached")
        return False


def warm(jobs: Sequence[Callable[[], object]], workers: int | None = None, stream=None) -> bool:
    """Run ``jobs`` in worker processes, ``workers`` at a time (default: one per core), each
    job once, to fill numba's on-disk cache with the kernels they call before this process
    calls them. Numba compiles under a process-wide lock, so threads compile one kernel at a
    time; processes compile side by side. A job's results are discarded: what this process
    computes afterwards is the same with or without the warming (a kernel a job did not
    cache is compiled on its first call here). The workers are forked (they share this
    process's state as it is now; no thread of this process may be compiling), so this runs
    only where fork exists; returns whether it ran. Prints the one-time compile note first."""
    import multiprocessing

    n = min(len(jobs), workers or os.cpu_count() or 1)
    if n < 1 or "fork" not in multiprocessing.get_all_start_methods():
        return False
    announce_compile(stream, cold=True)
    ctx = multiprocessing.get_context("fork")
    lock, taken = ctx.Lock(), ctx.Value("i", 0, lock=False)
    procs = [ctx.Process(target=_worker, args=(jobs, lock, taken), daemon=True) for _ in range(n)]
    for f in (sys.stdout, sys.stderr):  # (a worker flushes its copy of these buffers when it ends)
        f.flush()
    for p in procs:
        p.start()
    for p in procs:
        p.join(WARM_TIMEOUT_S)
        if p.is_alive():  # (a stuck worker: what it did not cache is compiled in the caller)
            p.kill()
            p.join()
    return True


def _worker(jobs, lock, taken) -> None:
    """A warming process: jobs in turn from the shared counter ``taken`` until none is left."""
    _serialize_cache_writes(lock)
    while True:
        with lock:
            k = taken.value
            taken.value = k + 1
        if k >= len(jobs):
            return
        try:
            jobs[k]()
        except Exception:  # noqa: BLE001 (a failed warming only means compiling later, in the caller)
            pass


def _serialize_cache_writes(lock) -> None:
    """Numba adds an entry to a kernel's cache index by reading the index, then writing it
    back with the entry: two processes adding entries to one kernel's index at once could
    lose one, or give two signatures one data file. The workers take turns."""
    from numba.core import caching

    cls = getattr(caching, "IndexDataCacheFile", None)
    save = getattr(cls, "save", None)
    if save is None or getattr(save, "_serialized", False):
        return

    def locked(self, key, data):
        with lock:
            return save(self, key, data)

    locked._serialized = True
    cls.save = locked


def announce_compile(stream=None, cold: bool | None = None) -> None:
    """Say once per process, before the first kernel call, that the kernels are being
    compiled when ``cold`` or (None) when numba's on-disk cache for this package is empty
    (the first run after an install or a change of the kernels). A warm cache prints nothing."""
    global _announced
    if _announced or os.environ.get("NEUROCOMP_QUIET_JIT"):
        return
    _announced = True
    if cold or (cold is None and not _cached_files(cache_dir())):
        print("compiling kernels (first run only; cached on disk afterwards)...", file=stream or sys.stderr, flush=True)


drop_stale_cache()
