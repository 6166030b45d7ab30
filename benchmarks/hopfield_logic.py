"""Logic programs in Hopfield networks (Sathasivam; Wan Abdullah weights): the global-minimum ratio.

For random satisfiable programs of 2- and 3-literal Horn clauses (task ``hopfield-logic``), the
fraction of relaxations from random states that end at a satisfying assignment (the global
minimum), for:

* ``paper``: the third-order network relaxed asynchronously in float (the paper's dynamics);
* ``pairwise``: the pairwise network with auxiliary neurons, asynchronous, float;
* ``float-spiking``: the spiking network (parallel updates) in the float64 reference simulator;
* ``loihi2``, ``spinnaker2``: the same Network compiled for the chip and run in the emulator.

Target (issue 19): report it for float, loihi2 and spinnaker2 against the paper's measure, with
the numbers of clauses and neurons. Sathasivam reports global-minimum ratios near 1 for Horn
clauses [abs: "Flatness of the energy landscape for Horn clauses"].

    python benchmarks/hopfield_logic.py [--batch 200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.reference.simulator import Reference
from neurocomp.rules import hopfield_logic as hl
from neurocomp.tasks import hopfield_logic as task_mod
from neurocomp.tasks import make

SIZES = ((10, 10), (10, 20), (20, 40), (30, 60))  # (atoms, clauses)


def async_ratio(program, weights, pw, x0, seed: int, third_order: bool) -> float:
    rng = np.random.default_rng(seed)
    ok = 0
    for x in x0:
        if third_order:
            S, conv = hl.relax_async_third_order(weights, 2.0 * x - 1, rng)
        else:
            xs, conv = hl.relax_async(pw.W, pw.b, np.concatenate([x, np.zeros(pw.n_aux)]), rng)
            S = 2 * xs[: pw.n_atoms] - 1
        ok += bool(conv and program.violated(S) == 0)
    return ok / len(x0)


def run_case(n_atoms: int, n_clauses: int, seed: int, batch: int) -> dict:
    task = make("hopfield-logic", seed=seed, n_atoms=n_atoms, n_clauses=n_clauses, batch=batch)
    program = task_mod.program_of(task)
    weights = hl.wan_abdullah(program)
    pw = hl.pairwise(weights)
    net = hl.spiking_network(pw)
    x0 = np.asarray(task.config["x0"])
    cue = {"cue": task.inputs.astype(np.uint8)}
    out = {"atoms": len(program.atoms), "aux": pw.n_aux, "clauses": len(program)}
    out["paper"] = async_ratio(program, weights, pw, x0, seed, third_order=True)
    out["pairwise"] = async_ratio(program, weights, pw, x0, seed, third_order=False)
    ref = Reference(net, batch=batch).run(task.steps, inputs=cue, record=["spikes"])["atoms/spikes"]
    out["float-spiking"] = task.score(ref)
    for prof in ("loihi2", "spinnaker2"):
        t0 = time.perf_counter()
        rec = Emulator(nc.compile(net, prof), batch=batch).run(task.steps, inputs=cue, record=["spikes"])
        out[prof] = task.score(rec["atoms/spikes"])
        out[prof + "_same_as_float"] = bool(np.array_equal(rec["atoms/spikes"], ref))
        out[prof + "_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=200, help="relaxations per program")
    ap.add_argument("--seeds", type=int, default=3, help="random programs per size")
    args = ap.parse_args()
    cols = ("paper", "pairwise", "float-spiking", "loihi2", "spinnaker2")
    print(f"global-minimum ratio, {args.batch} relaxations per program, mean over {args.seeds} programs per row")
    print("| atoms | clauses | aux neurons | " + " | ".join(cols) + " | chips == float spiking |")
    print("|---:|---:|---:|" + "---:|" * len(cols) + "---|")
    for n_atoms, n_clauses in SIZES:
        rows = [run_case(n_atoms, n_clauses, seed, args.batch) for seed in range(args.seeds)]
        mean = {c: np.mean([r[c] for r in rows]) for c in cols}
        aux = "/".join(str(r["aux"]) for r in rows)
        same = all(r["loihi2_same_as_float"] and r["spinnaker2_same_as_float"] for r in rows)
        print(f"| {n_atoms} | {n_clauses} | {aux} | " + " | ".join(f"{mean[c]:.3f}" for c in cols) + f" | {same} |")


if __name__ == "__main__":
    main()
