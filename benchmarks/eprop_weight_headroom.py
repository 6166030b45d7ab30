"""One lowered level of e-prop pattern generation on loihi2, per iteration: the NMSE (mean of
the last 10), the hidden rate and each learned projection's largest weight and weights within
one LSB of its range's edge, for a choice of weight headroom per projection.

``examples/eprop_pattern_100.yaml`` compiled for loihi2 with ``weight_headroom_bits`` per
projection (``--headroom 'in->rec=0,rec->rec=1,rec->out=1'``; default: the rule's defaults),
trained alone on the check's frozen task (the trials ``neurocomp check`` gives its levels).
Used to choose the default headroom (README, "Weight headroom for learned projections")::

    PYTHONPATH=. python benchmarks/eprop_weight_headroom.py --seed 1 --iterations 150 --level float
    PYTHONPATH=. python benchmarks/eprop_weight_headroom.py --seed 2 --iterations 200 --level fixed \\
        --headroom 'in->rec=0,rec->rec=0,rec->out=0'
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurocomp.analysis.check import _EpropRun, _score
from neurocomp.compiler import compile as compile_net
from neurocomp.graph.io import load_network
from neurocomp.graph.network import Network

MODEL = Path(__file__).resolve().parents[1] / "examples" / "eprop_pattern_100.yaml"


def network(headroom: dict[str, int]) -> Network:
    """The example with ``weight_headroom_bits`` set on the projections named in ``headroom``."""
    net = load_network(MODEL)
    def widened(p):
        params = {**p.plasticity.params, "weight_headroom_bits": headroom[p.name]}
        return replace(p, plasticity=replace(p.plasticity, params=params))

    projs = [widened(p) if p.name in headroom else p for p in net.projections]
    return Network(net.populations, projs, name=net.name, description=net.description)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--level", choices=("float", "fixed"), default="float", help="lowered-float or lowered-fixed")
    ap.add_argument("--headroom", default="", help="projection=bits,... (weight_headroom_bits per projection)")
    ap.add_argument("--every", type=int, default=10, help="print every this many iterations")
    args = ap.parse_args(argv)
    headroom = {k: int(v) for k, v in (kv.split("=") for kv in args.headroom.split(",") if kv)}
    net = network(headroom)
    prog = compile_net(net, "loihi2", out=io.StringIO())
    for n in (n for r in prog.pass_log for n in r.get("notes", []) if "headroom" in n):
        print(n)
    run = _EpropRun.of(net, prog, "pattern-generation", args.seed, None)
    level = run.emulated(**({"learn_arithmetic": "float"} if args.level == "float" else {}))
    hidden = run.hidden[0]
    nmse: list[float] = []
    c0 = time.process_time()
    for k in range(args.iterations):
        x, tg = run.trial_data(k)
        rec = level.trial(x, tg, record=("v", "spikes"))
        nmse.append(_score(run.tk, k, rec["y"]))
        if k % args.every and k != args.iterations - 1:
            continue
        rate = float(rec[f"{hidden}/spikes"][:, 0, :].mean()) * 1000 / run.dt
        edge = level.emu.weights_at_edge()
        parts = [f"{n}: max {float(np.abs(level.weights()[n]).max()):.3g} edge {int(edge[n][0][0])}" for n in run.names]
        print(f"it {k:4d} NMSE {nmse[-1]:9.4f} (last 10: {np.mean(nmse[-10:]):.4f}) rate {rate:6.1f} Hz | "
              + "; ".join(parts), flush=True)  # fmt: skip
    print(f"lowered-{args.level}: {args.iterations} iterations, {time.process_time() - c0:.1f} s of CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
