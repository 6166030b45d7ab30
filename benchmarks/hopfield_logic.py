"""Logic programs in Hopfield networks (Sathasivam; Wan Abdullah weights): the global-minimum ratio.

For random satisfiable programs of 2- and 3-literal Horn clauses (task ``hopfield-logic``), the
fraction of relaxations from random states that end at a satisfying assignment (the global
minimum), each relaxation with the same initial state and update order at every level:

* ``paper``: the third-order network, sequential updates, float (the paper's relaxation);
* ``float``: the pairwise network with auxiliary neurons, sequential, float (``relax_sequential``);
* ``float-spiking``: the spiking network (sequential schedule) in the float64 reference simulator;
* ``loihi2``, ``spinnaker2``: the same Network compiled for the chip, run in the emulator;
* ``parallel``: the spiking network with every neuron updating each step (loihi2), for contrast.

Target (issue 19): report it for float, loihi2 and spinnaker2 against the paper's measure, with
the numbers of clauses and neurons.

    PYTHONPATH=. python benchmarks/hopfield_logic.py [--batch 200] [--seeds 3] [--sweeps 5]
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


def run_case(n_atoms: int, n_clauses: int, seed: int, batch: int, sweeps: int) -> dict:
    task = make("hopfield-logic", seed=seed, n_atoms=n_atoms, n_clauses=n_clauses, batch=batch, sweeps=sweeps)
    program = task_mod.program_of(task)
    weights = hl.wan_abdullah(program)
    he = hl.hebbian(program)
    pw = hl.pairwise(weights)
    x0, orders = np.asarray(task.config["x0"]), np.asarray(task.config["orders"])
    out = {"atoms": len(program.atoms), "aux": pw.n_aux, "clauses": len(program)}
    out["hebbian_equal"] = all(
        np.array_equal(a, b) for a, b in zip((weights.J1, weights.J2, weights.J3), (he.J1, he.J2, he.J3), strict=True)
    )
    paper = [hl.relax_async_third_order(weights, 2.0 * x - 1, o) for x, o in zip(x0, orders, strict=True)]
    out["paper"] = np.mean([c and program.violated(S) == 0 for S, c in paper])
    flt = [hl.relax_sequential(pw, x, o) for x, o in zip(x0, orders, strict=True)]
    out["float"] = np.mean([c and program.violated(2 * x - 1) == 0 for x, c in flt])
    net, inputs = task_mod.network_of(task), task_mod.inputs_of(task)
    ref = Reference(net, batch=batch).run(task.steps, inputs=inputs, record=["spikes"])["atoms/spikes"]
    out["float-spiking"] = task.score(ref)
    out["levels_agree"] = bool(np.array_equal(ref[-1], np.array([x for x, _ in flt])))
    for prof in ("loihi2", "spinnaker2"):
        t0 = time.perf_counter()
        rec = Emulator(nc.compile(net, prof), batch=batch).run(task.steps, inputs=inputs, record=["spikes"])
        out[prof] = task.score(rec["atoms/spikes"])
        out["levels_agree"] &= bool(np.array_equal(rec["atoms/spikes"], ref))
        out[prof + "_s"] = time.perf_counter() - t0
    par = make("hopfield-logic", seed=seed, n_atoms=n_atoms, n_clauses=n_clauses, batch=batch, schedule="parallel")
    rec = Emulator(nc.compile(task_mod.network_of(par), "loihi2"), batch=batch).run(
        par.steps, inputs=task_mod.inputs_of(par), record=["spikes"]
    )
    out["parallel"] = par.score(rec["atoms/spikes"])
    out["steps"] = task.steps
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=200, help="relaxations per program")
    ap.add_argument("--seeds", type=int, default=3, help="random programs per size")
    ap.add_argument("--sweeps", type=int, default=5, help="sequential sweeps per relaxation")
    args = ap.parse_args()
    cols = ("paper", "float", "float-spiking", "loihi2", "spinnaker2", "parallel")
    print(f"global-minimum ratio, {args.batch} relaxations per program, {args.sweeps} sweeps,")
    print(f"mean over {args.seeds} random satisfiable programs per row (seeds 0..{args.seeds - 1})")
    print("| atoms | clauses | aux neurons | steps | " + " | ".join(cols) + " | chips == float | Hebbian == WA |")
    print("|---:|---:|---:|---:|" + "---:|" * len(cols) + "---|---|")
    for n_atoms, n_clauses in SIZES:
        rows = [run_case(n_atoms, n_clauses, seed, args.batch, args.sweeps) for seed in range(args.seeds)]
        mean = {c: np.mean([r[c] for r in rows]) for c in cols}
        aux = "/".join(str(r["aux"]) for r in rows)
        agree = all(r["levels_agree"] for r in rows)
        heb = all(r["hebbian_equal"] for r in rows)
        cells = " | ".join(f"{mean[c]:.3f}" for c in cols)
        print(f"| {n_atoms} | {n_clauses} | {aux} | {rows[0]['steps']} | {cells} | {agree} | {heb} |")


if __name__ == "__main__":
    main()
