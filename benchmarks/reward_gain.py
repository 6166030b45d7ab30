"""The VKF (Piray & Daw) as the adaptive gain of node perturbation's third factor, against NP at
fixed learning rates, on ``volatile-perceptron``: in float, on spinnaker2's cores and on loihi2.

``volatile-perceptron`` is the multiple-subtask perceptron of ``perturbation-perceptron`` whose
target weights are drawn anew every ``block`` trials (``w_opt + w_jump N(0, 1)``), so the error
jumps to ~12 and the rule relearns (the task's defaults: T = 50 bins, 10 of 20 inputs per trial,
blocks of 1 200 trials). A fixed rate trades speed against the floor it leaves: at
NP's optimal rate ``eta_opt`` it relearns fastest but to ``2 E_opt``, below it more slowly to a
lower floor. The adaptive gain scales the broadcast ``dR`` by the VKF's learning rate ``k =
(w+v)/(w+v+sigma2)``, computed each trial from the unperturbed reward by the unit that sends the
third factor (:class:`neurocomp.rules.volatility.RewardGain`): a jump makes the reward jump, the
volatility ``v`` and so ``k`` rise toward 1 (learn at ``eta_opt``); as the reward settles ``k``
falls (learn slowly, to a lower floor).

Each row trains ``--runs`` perceptrons from ``W = 0`` for ``--blocks`` blocks at ``sigma_eff``
0.004 and prints the mean error over all trials and runs. Rows: ``fixed c`` (``lr = c eta_opt``,
no gain) for each ``c`` of the grid, and ``vkf`` (``lr = eta_opt``, times ``k``). Levels (those
of ``neurocomp check``): ``float`` (float64, the rule as stated), ``spinnaker2`` (float32 on the
cores, the filter too), ``loihi2`` (NP lowered onto the engine in fixed point, the filter in the
reward unit's integers, dividing with the softmax cross-entropy error units' reciprocal table).

Target (issue 17 item 4): the adaptive gain's mean error below the best fixed rate's of the grid,
in float and lowered (each level's best fixed rate measured at that level).

    PYTHONPATH=. python benchmarks/reward_gain.py                       # all levels
    PYTHONPATH=. python benchmarks/reward_gain.py --levels float --runs 8
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

GRID = (0.25, 0.4, 0.55, 0.7, 1.0)
LEVELS = {"float": ("reference", "loihi2"), "spinnaker2": ("lowered-fixed", "spinnaker2"),
          "loihi2": ("lowered-fixed", "loihi2")}  # fmt: skip


def mean_error(level: str, c: float | None, runs: int, blocks: int, seed: int) -> tuple[float, float, list]:
    """Mean error over all trials and runs, its standard error over the runs, and each run's
    mean, of NP at ``lr = c eta_opt`` (``c`` None: ``eta_opt`` times the VKF's gain) at ``level``."""
    from neurocomp.analysis.check_perturbation import make_level
    from neurocomp.profiles import load_profile
    from neurocomp.tasks import make
    from neurocomp.tasks import perturbation as P

    lv, profile = LEVELS[level]
    over = {"gain": "none", "lr_scale": c} if c is not None else {"gain": "vkf", "lr_scale": 1.0}
    tk = make(P.VOLATILE_NAME, seed=seed, batch=runs, **over)
    net = make_level(lv, "np", load_profile(profile), tk.config, seed)
    n = blocks * tk.config["block"]
    e = np.empty((n, runs))
    for k in range(n):
        t = tk.sample(k)
        e[k] = net.trial(t.inputs.transpose(1, 2, 0), t.targets.transpose(1, 2, 0))
    per_run = e.mean(axis=0)
    se = float(per_run.std(ddof=1) / np.sqrt(runs)) if runs > 1 else float("nan")
    return float(per_run.mean()), se, per_run.tolist()


def run_level(level: str, grid, runs: int, blocks: int, seed: int) -> dict:
    """``grid``: fixed rates ``c`` and/or ``"vkf"``; the verdict needs both."""
    t0 = time.perf_counter()
    fixed = {c: mean_error(level, c, runs, blocks, seed) for c in grid if c != "vkf"}
    vkf = mean_error(level, None, runs, blocks, seed) if "vkf" in grid else None
    best = min(fixed, key=lambda c: fixed[c][0]) if fixed else None
    ratio = vkf[0] / fixed[best][0] if vkf and fixed else None
    # the runs share targets, subtasks and perturbations: the difference is paired per run
    diff = np.subtract(vkf[2], fixed[best][2]) if ratio is not None else np.zeros(0)
    paired = (float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))) if len(diff) > 1 else None
    return {"level": level, "fixed": fixed, "vkf": vkf, "best_c": best, "ratio": ratio, "paired": paired,
            "wall_s": time.perf_counter() - t0}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default=",".join(LEVELS))
    ap.add_argument("--runs", type=int, default=8, help="independent perceptrons (default 8)")
    ap.add_argument("--blocks", type=int, default=3, help="blocks of targets (default 3)")
    ap.add_argument("--grid", default=",".join(map(str, GRID)) + ",vkf",
                    help="fixed rates c (lr = c eta_opt) and/or vkf (the adaptive gain)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from neurocomp.tasks.perturbation import VOLATILE_DEFAULTS as D

    grid = tuple(c if c == "vkf" else float(c) for c in a.grid.split(","))
    print(f"volatile-perceptron: NP, block {D['block']}, w_jump {D['w_jump']}, sigma_eff {D['sigma_eff']}; VKF lambda "
          f"{D['gain_lambda']}, v0 {D['gain_v0']}, sigma2 {D['gain_sigma2']}; {a.runs} runs x {a.blocks} blocks, seed "
          f"{a.seed}; {platform.python_version()} (machine shared, loaded)")  # fmt: skip
    print("target: mean error with the VKF gain below the best fixed rate's (ratio < 1), in float and lowered")
    out = []
    for level in a.levels.split(","):
        r = run_level(level, grid, a.runs, a.blocks, a.seed)
        out.append(r)
        rows = ", ".join(f"c={c:g}: {m:.3f} +- {se:.3f}" for c, (m, se, _) in r["fixed"].items())
        line = f"{level:10s} fixed {rows or '-'}"
        if r["vkf"]:
            line += f"; vkf {r['vkf'][0]:.3f} +- {r['vkf'][1]:.3f}"
        if r["ratio"] is not None:
            line += (f"; vkf / best fixed (c={r['best_c']:g}): {r['ratio']:.3f} (target < 1: "
                     f"{'met' if r['ratio'] < 1 else 'MISSED'}); paired difference {r['paired'][0]:+.3f} +- "
                     f"{r['paired'][1]:.3f}")  # fmt: skip
        print(f"{line}; {r['wall_s']:.0f} s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()
