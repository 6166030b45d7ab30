"""numba's on-disk cache of the kernels across processes: a second process running the same
work compiles nothing (the cache keys, generated modules included, are stable across
processes), and :func:`neurocomp.kernels.warm` compiles in worker processes what the caller
then loads from disk."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

from neurocomp import kernels

ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
from neurocomp.kernels import kernel


@kernel
def twice(x):
    return 2.0 * x
'''

# a small default check (every emulated level fused, the reference, the static run), then the
# kernels that numba compiled in this process: a cache miss is a compile
CHECK = r"""
import io, json, sys
from numba.core import event

compiled = []

class Compiles(event.Listener):
    def on_start(self, ev):
        fn = ev.data["dispatcher"].py_func
        compiled.append(f"{fn.__module__}.{fn.__qualname__}")

    def on_end(self, ev):
        pass

event.register("numba:compile", Compiles())
from neurocomp.analysis.check import check

rep = check(sys.argv[1], iterations=2, align=1, steps=100, attribution=("nearest", "weights"), bptt=False, plots=False,
            progress=False)
print(json.dumps({"compiled": compiled, "final": rep.final}))
"""


def _probe(tmp_path: Path):
    path = tmp_path / "warm_probe.py"
    path.write_text(PROBE)
    spec = importlib.util.spec_from_file_location(f"warm_probe_{tmp_path.name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (numba's cache finds a kernel's globals by its module's name)
    spec.loader.exec_module(mod)
    return mod


def test_warm_compiles_in_a_worker_process_and_the_caller_loads_it(tmp_path):
    mod = _probe(tmp_path)  # a kernel in a new file: nothing cached
    assert not kernels.on_disk(mod.twice)
    note = io.StringIO()
    assert kernels.warm([lambda: mod.twice(1.5)], workers=1, stream=note)
    assert kernels.on_disk(mod.twice)
    assert mod.twice(1.5) == 3.0
    hits, misses = mod.twice.stats.cache_hits, mod.twice.stats.cache_misses
    assert sum(hits.values()) == 1 and sum(misses.values()) == 0  # loaded from disk, not compiled here


def test_a_failing_warm_job_leaves_the_caller_to_compile(tmp_path):
    mod = _probe(tmp_path)

    def fails():
        raise RuntimeError("a job that fails")

    assert kernels.warm([fails, fails], workers=2, stream=io.StringIO())
    assert not kernels.on_disk(mod.twice)
    assert mod.twice(2.0) == 4.0
    assert sum(mod.twice.stats.cache_misses.values()) == 1


def _check_in_a_process() -> dict:
    out = subprocess.run([sys.executable, "-c", CHECK, str(ROOT / "examples" / "eprop_pattern.yaml")], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def test_a_second_process_compiles_nothing():
    first = _check_in_a_process()  # compiles what the cache lacks (nothing when warm)
    second = _check_in_a_process()
    assert second["compiled"] == []
    assert second["final"] == first["final"]  # and the same results from the cached kernels
