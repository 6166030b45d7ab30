"""ReckOn e-prop training speed: the tutorial's pattern-generation network (100 inputs, 100
LIF, one readout, 1000 steps per trial) learning on the ``reckon`` profile, one trial and a
batch of 64, as the emulator runs it (:class:`neurocomp.emulator.reckon.ReckonCore`: a whole
trial per compiled call, the trials of a batch in parallel) and step by step (the generic
per-step path with the chip's learner, which the attribution knobs use), in one run.

Target (issue 13): >= 10 trial iterations per second for one trial, >= 80 trial-iterations
per second with a batch of 64.

    python benchmarks/reckon_speed.py [--iterations 20] [--batch 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.graph.io import load_network

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "eprop_pattern_100.yaml"


def program() -> nc.Program:
    net = load_network(MODEL).with_rule_params(feedback="symmetric")  # ReckOn's feedback is symmetric
    return nc.compile(net, "reckon", out=io.StringIO())


def rate(prog: nc.Program, batch: int, iterations: int, core: bool, steps: int = 1000) -> tuple[float, float]:
    """Trial-iterations per second of wall time and of CPU time (this process, all threads: on a
    loaded machine the CPU figure is the one that compares): ``iterations`` trials of ``steps``
    steps after one warm-up."""
    emu = Emulator(prog, batch=batch)
    if not core:
        emu._core = None  # the step-by-step path
    out = prog.populations[-1].name
    tgt = 0.3 * np.sin(2 * np.pi * np.arange(steps) / 250)[:, None]
    emu.run(steps, {f"{out}/target": tgt}, record=(), learn=True)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        emu.reset(keep_weights=True)
        emu.run(steps, {f"{out}/target": tgt}, record=(), learn=True)
    n = batch * iterations
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    prog = program()
    res = {
        "core_single": rate(prog, 1, args.iterations, True),
        "core_batch": rate(prog, args.batch, max(2, args.iterations // 10), True),
        "step_single": rate(prog, 1, max(1, args.iterations // 10), False),
    }
    print("reckon e-prop pattern, 100-100-1, 1000 steps per trial (trial-iterations per second: wall, CPU)")
    for key, what in (("core_single", "one trial, whole trial per call (target 10)"),
                      ("core_batch", f"batch {args.batch}, whole trial per call (target 80)"),
                      ("step_single", "one trial, step by step")):  # fmt: skip
        print(f"  {what:<48} {res[key][0]:8.2f} {res[key][1]:8.2f}")
    print(f"  whole trial per call / step by step (CPU): {res['core_single'][1] / res['step_single'][1]:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
