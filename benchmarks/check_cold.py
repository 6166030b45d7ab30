"""The default `neurocomp check` from a cold and then a warm kernel cache (issue 13: < 3 min cold).

Runs `neurocomp check examples/eprop_pattern.yaml --profile loihi2 --task pattern-generation`
(or the arguments given after `--`) twice in fresh processes that share two empty cache folders
(`NUMBA_CACHE_DIR`, `NEUROCOMP_KERNEL_CACHE`): the first run compiles every kernel, the second
must find them all on disk. Prints each run's wall clock and CPU seconds (the child's and its
warming workers'), the kernels numba compiled, in the check's process and in its warming
workers (a compile is a cache miss: the second run must show none), and the CPU seconds of
compiling per module (exclusive of the kernels it calls; a generated module is named by its
prefix). CPU seconds are the measure on a loaded machine.

    python benchmarks/check_cold.py [--keep DIR] [-- check args...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

DEFAULT = ["check", "examples/eprop_pattern.yaml", "--profile", "loihi2", "--task", "pattern-generation"]

# the child: a listener on numba's compile events (fired on cache misses only), then the CLI
CHILD = r"""
import json, os, sys, threading, time
from numba.core import event

local, log = threading.local(), open(sys.argv[1], "a")

class Compiles(event.Listener):
    def on_start(self, ev):
        stack = getattr(local, "stack", None) or []
        local.stack = stack
        stack.append([time.thread_time(), 0.0])

    def on_end(self, ev):
        t0, inner = local.stack.pop()
        total = time.thread_time() - t0
        if local.stack:
            local.stack[-1][1] += total
        fn = ev.data["dispatcher"].py_func
        # one line per compile, from this process or a warming worker forked from it
        log.write(json.dumps([fn.__module__, fn.__qualname__, total - inner, os.getpid()]) + "\n")
        log.flush()

event.register("numba:compile", Compiles())
from neurocomp.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run(args: list[str], env: dict, stats_path: str) -> tuple[float, float, list, int]:
    """Wall and CPU seconds (the child and its warming workers), the compiles ``(module,
    function, exclusive CPU s, pid)`` and the child's pid."""
    if os.path.exists(stats_path):
        os.remove(stats_path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, stats_path, *args, "--out", out], env=env,
                                stdout=subprocess.DEVNULL)  # fmt: skip
        if proc.wait():
            raise SystemExit(f"the check failed (exit code {proc.returncode})")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if not os.path.exists(stats_path):
        return wall, cpu, [], proc.pid
    with open(stats_path) as fh:
        return wall, cpu, [json.loads(line) for line in fh], proc.pid


def per_module(stats: list) -> list[tuple[str, int, float]]:
    rows: dict[str, list] = {}
    for mod, _, cpu, _ in stats:
        key = mod.rsplit("_", 1)[0] + "_*" if mod.startswith("neurocomp_") else mod
        r = rows.setdefault(key, [0, 0.0])
        r[0] += 1
        r[1] += cpu
    return sorted(((k, n, c) for k, (n, c) in rows.items()), key=lambda r: -r[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", help="use (and keep) this folder for the caches instead of a temporary one")
    ap.add_argument("--warm-only", action="store_true", help="skip the cold run (the caches in --keep are warm)")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = [x for x in a.rest if x != "--"] or DEFAULT
    root = a.keep or tempfile.mkdtemp(prefix="neurocomp-cold-")
    os.makedirs(root, exist_ok=True)
    env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(root, "numba"),
               NEUROCOMP_KERNEL_CACHE=os.path.join(root, "rules"), NEUROCOMP_QUIET_JIT="")  # fmt: skip
    print(f"neurocomp {' '.join(args)}; caches in {root}; load average {os.getloadavg()[0]:.1f}")
    for name in ("warm",) if a.warm_only else ("cold", "warm"):
        wall, cpu, stats, pid = run(args, env, os.path.join(root, f"{name}.jsonl"))
        modules = {m for m, *_ in stats if m.startswith("neurocomp_")}
        here = [r for r in stats if r[3] == pid]
        print(f"{name}: {wall:6.1f} s wall, {cpu:6.1f} s CPU; {len(stats)} kernels compiled "
              f"({sum(r[2] for r in stats):.1f} s CPU; {len(here)} of them, {sum(r[2] for r in here):.1f} s, in the "
              f"check's own process, the rest in {len({r[3] for r in stats} - {pid})} warming workers), "
              f"{len(modules)} generated modules")  # fmt: skip
        for mod, n, c in per_module(stats):
            print(f"    {c:7.1f} s CPU  {n:3d} kernels  {mod}")
        if name == "cold" and os.environ.get("CHECK_COLD_DETAIL"):
            for mod, fn, c, p in sorted(stats, key=lambda r: -r[2])[:40]:
                print(f"    {c:7.1f} s  {mod}.{fn}" + ("" if p == pid else " (worker)"))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
