"""The default `neurocomp check` from a cold and then a warm kernel cache (issue 13: < 3 min cold).

Runs `neurocomp check examples/eprop_pattern.yaml --profile loihi2 --task pattern-generation`
(or the arguments given after `--`) twice in fresh processes that share two empty cache folders
(`NUMBA_CACHE_DIR`, `NEUROCOMP_KERNEL_CACHE`): the first run compiles every kernel, the second
must find them all on disk. Prints each run's wall clock and CPU seconds (the child's and its
workers'), the kernels numba compiled (a compile is a cache miss: the second run must show none)
and, for the cold run, the CPU seconds of compiling per module (exclusive of the kernels it calls;
a generated module is named by its prefix). CPU seconds are the measure on a loaded machine.

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
import json, sys, threading, time
from numba.core import event

stats, local = [], threading.local()

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
        stats.append((fn.__module__, fn.__qualname__, total - inner))

event.register("numba:compile", Compiles())
from neurocomp.cli import main
try:
    code = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as fh:
        json.dump(stats, fh)
sys.exit(code)
"""


def run(args: list[str], env: dict, stats_path: str) -> tuple[float, float, list]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-c", CHILD, stats_path, *args, "--out", out], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(stats_path) as fh:
        return wall, cpu, json.load(fh)


def per_module(stats: list) -> list[tuple[str, int, float]]:
    rows: dict[str, list] = {}
    for mod, _, cpu in stats:
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
    env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(root, "numba"),
               NEUROCOMP_KERNEL_CACHE=os.path.join(root, "rules"), NEUROCOMP_QUIET_JIT="")  # fmt: skip
    print(f"neurocomp {' '.join(args)}; caches in {root}; load average {os.getloadavg()[0]:.1f}")
    for name in ("warm",) if a.warm_only else ("cold", "warm"):
        wall, cpu, stats = run(args, env, os.path.join(root, f"{name}.json"))
        modules = {m for m, _, _ in stats if m.startswith("neurocomp_")}
        print(f"{name}: {wall:6.1f} s wall, {cpu:6.1f} s CPU; {len(stats)} kernels compiled "
              f"({sum(c for *_, c in stats):.1f} s CPU), {len(modules)} generated modules")  # fmt: skip
        if stats:
            for mod, n, c in per_module(stats):
                print(f"    {c:7.1f} s CPU  {n:3d} kernels  {mod}")
        if name == "cold" and os.environ.get("CHECK_COLD_DETAIL"):
            for mod, fn, c in sorted(stats, key=lambda r: -r[2])[:40]:
                print(f"    {c:7.1f} s  {mod}.{fn}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
