"""Compile time and peak memory per pass for synthetic sparse networks on loihi2.

Each size runs in a fresh process (so peak RSS belongs to that size alone): N LIF neurons
with about 100 recurrent synapses each, local on a ring (bandwidth 1000, density 0.05, so
a core's distinct inputs stay within loihi2's 4096 input axons), plus a sparse input
projection from 1000 Poisson sources. Building the network is timed separately from
compiling it.

    python benchmarks/compile_scaling.py                 # N = 1e3, 1e4, 1e5, 1e6
    python benchmarks/compile_scaling.py --sizes 1000 10000

Target (issue): 1e6 neurons / 1e8 synapses compile in under 60 s with peak memory under
6 GiB on a 2-core machine, with cost growing linearly in the number of synapses.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time

PASSES = ("validate", "discretize", "drc", "quantize", "lower_learning", "partition", "emit")


def build(n: int):
    import neurocomp as nc

    net = nc.Network(name=f"scaling-{n}")
    net.add(
        nc.Population("in", 1000, nc.SpikeInput(rate_hz=5.0, seed=1)),
        nc.Population("rec", n, nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=1.0)),
    )
    rec = {
        "init": "normal",
        "std": 0.05,
        "density": 0.05,
        "bandwidth": 1000,
        "format": "sparse",
        "seed": 3,
        "exclude_self": True,
    }
    inp = {"init": "uniform", "low": 0.0, "high": 0.3, "density": 0.5, "bandwidth": 2, "format": "sparse", "seed": 2}
    net.add(
        nc.Projection("in", "rec", nc.init_weights(inp, n, 1000), sign_mode="excitatory"),
        nc.Projection("rec", "rec", nc.init_weights(rec, n, n, recurrent=True)),
    )
    return net


def one(n: int) -> dict:
    from neurocomp.compiler import compile
    from neurocomp.compiler.pass_manager import peak_rss_mib

    t0 = time.perf_counter()
    net = build(n)
    t_build = time.perf_counter() - t0
    rss_build = peak_rss_mib()
    t0 = time.perf_counter()
    prog = compile(net, "loihi2", out=io.StringIO())
    t_compile = time.perf_counter() - t0
    return {
        "n": n,
        "synapses": net.n_synapses,
        "build_s": t_build,
        "build_peak_mib": rss_build,
        "compile_s": t_compile,
        "passes": {r["name"]: [r["seconds"], r["peak_rss_mib"]] for r in prog.pass_log},
        "peak_mib": peak_rss_mib(),
        "cores": prog.placement.n_cores,
        "chips": prog.placement.n_chips,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return 0
    rows = []
    for n in args.sizes:
        res = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return 1
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    head = f"{'N':>9} {'synapses':>11} {'build s':>8} " + " ".join(f"{p[:9]:>9}" for p in PASSES)
    head += f" {'compile s':>9} {'us/syn':>7} {'peak MiB':>9} {'cores':>6} {'chips':>5}"
    print("compile for loihi2: seconds per pass")
    print(head)
    for r in rows:
        passes = " ".join(f"{r['passes'][p][0]:>9.3f}" for p in PASSES)
        print(
            f"{r['n']:>9} {r['synapses']:>11} {r['build_s']:>8.2f} {passes} {r['compile_s']:>9.2f} "
            f"{1e6 * r['compile_s'] / r['synapses']:>7.3f} {r['peak_mib']:>9.0f} {r['cores']:>6} {r['chips']:>5}"
        )
    print("\npeak RSS (MiB) at the end of each pass (monotone within a run; the build's peak comes first)")
    print(f"{'N':>9} {'build':>8} " + " ".join(f"{p[:9]:>9}" for p in PASSES))
    for r in rows:
        print(f"{r['n']:>9} {r['build_peak_mib']:>8.0f} " + " ".join(f"{r['passes'][p][1]:>9.0f}" for p in PASSES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
