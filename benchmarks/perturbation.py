"""Weight and node perturbation on the multiple-subtask perceptron (``perturbation-perceptron``,
Züge, Klos & Memmesheimer, PRX 2023): learning curves against the paper's closed form, in
float and on the chips.

Each variant trains ``--runs`` independent perceptrons (one batch) from ``W = 0`` at the
paper's optimal learning rate and records the error ``E`` of every trial; the curve is their
mean, smoothed over a centred window of 101 trials (the per-trial error varies with the
trial's subtask). It prints, beside the closed form's values, the trials to ``E < 4.5``,
``E < 3`` and ``E < 2.2`` and the final error.

    python benchmarks/perturbation.py                   # all variants
    python benchmarks/perturbation.py --variants wp-float,np-float --runs 8

Variants (``sigma`` is ``sigma_eff``, the perturbation's size at the outputs: NP's noise per
output and bin, WP's ``sigma_eff / sqrt(alpha^2 N_trial)`` per weight, as in the authors' code):

* ``wp-float``, ``np-float``: :class:`neurocomp.rules.perturbation.Perceptron`, float64,
  negligible perturbations (``sigma`` 1e-10), as the closed form of the paper's code assumes;
* ``*-float-0.04``, ``wp-spinnaker2``, ``np-spinnaker2`` (float32, programmable cores),
  ``np-loihi2-0.04`` (lowered NP in loihi2's engine, fixed point): the paper's finite size 0.04;
* ``wp-spinnaker2-0.004``, ``np-float-0.004``, ``np-loihi2``: ``sigma`` 0.004.

The closed form each variant is compared with is the paper's at negligible ``sigma`` plus the
finite perturbation's floor (:func:`neurocomp.tasks.perturbation.expected_error`).

Targets (issue 17): trials to each threshold within +-15 % of the closed form; NP's floor near
2 E_opt = 4; WP reaches E < 3 in about 3.7 k trials (theory 4 040) while NP stays near 4; the same
in fixed point with sigma_eff = 0.04. The last clause cannot hold as written: at sigma_eff 0.04
the perturbation's own square ``-(1/2T) sum xi^2`` stays in ``dR`` and adds a random step to
every update; NP's floor rises to 5.97 (WP's to 2.21). The authors' own script (its loop ported
verbatim, seed 0, one run) measured the same: NP at 0.04 ends at E = 5.91, WP at 0.04 reaches
E < 3 after 4 198 trials and ends at 2.34; at 1e-10: WP 3 632 trials, NP 3.99. So "WP < 3 in
~3.7 k, NP near 4" is the negligible-sigma statement. The benchmark shows it in float at 1e-10
and on the chips at 0.004 (loihi2's NP, fixed point: floor 4.02; spinnaker2's WP), and at 0.04
the chips match the float form and its closed form. WP has no loihi2 variant: the engine has no
per-synapse random numbers (the compiler refuses it by name).

Run with the worktree on the path: ``PYTHONPATH=. python benchmarks/perturbation.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

THRESHOLDS = (4.5, 3.0, 2.2)
TOLERANCE = 0.15
VARIANTS = {  # name: (rule, where, sigma_eff, default trials)
    "wp-float": ("wp", "float64", 1e-10, 10_000),
    "np-float": ("np", "float64", 1e-10, 4_000),
    "wp-float-0.04": ("wp", "float64", 0.04, 10_000),
    "np-float-0.04": ("np", "float64", 0.04, 4_000),
    "wp-spinnaker2": ("wp", "spinnaker2", 0.04, 10_000),
    "np-spinnaker2": ("np", "spinnaker2", 0.04, 4_000),
    "np-loihi2-0.04": ("np", "loihi2", 0.04, 4_000),
    "wp-spinnaker2-0.004": ("wp", "spinnaker2", 0.004, 10_000),
    "np-float-0.004": ("np", "float64", 0.004, 4_000),
    "np-loihi2": ("np", "loihi2", 0.004, 4_000),
}


def smooth(e: np.ndarray, w: int = 101) -> np.ndarray:
    p = w // 2
    return np.convolve(np.r_[np.full(p, e[0]), e, np.full(p, e[-1])], np.ones(w) / w, mode="valid")


def run(name: str, runs: int, seed: int, trials: int | None) -> dict:
    from neurocomp.analysis.check_perturbation import make_level
    from neurocomp.profiles import load_profile
    from neurocomp.tasks import make
    from neurocomp.tasks import perturbation as P

    kind, where, sigma_eff, n = VARIANTS[name]
    n = trials or n
    tk = make(P.NAME, seed=seed, batch=runs, sigma_eff=sigma_eff)
    if where == "float64":
        net = make_level("reference", kind, load_profile("loihi2"), tk.config, seed)
    else:
        net = make_level("lowered-fixed", kind, load_profile(where), tk.config, seed)
    t0, e = time.perf_counter(), np.empty(n)
    for k in range(n):
        t = tk.sample(k)
        e[k] = net.trial(t.inputs.transpose(1, 2, 0), t.targets.transpose(1, 2, 0)).mean()
    wall = time.perf_counter() - t0
    s, theory = smooth(e), P.expected_error(tk.config, kind, n, sigma=P.perturbation_sigma(tk.config, kind, sigma_eff))
    return {
        "variant": name, "rule": kind, "where": where, "sigma_eff": sigma_eff, "runs": runs, "trials": n,
        "wall_s": wall, "trials_per_s": n / wall,
        "to": {h: P.trials_to(s, h) for h in THRESHOLDS},
        "theory_to": {h: P.trials_to(theory, h) for h in THRESHOLDS},
        "final": float(e[-200:].mean()), "theory_final": float(theory[-1]),
        "floor": P.floor(tk.config, kind, P.perturbation_sigma(tk.config, kind, sigma_eff)),
    }  # fmt: skip


def verdict(r: dict) -> str:
    """Whether every threshold the closed form (at the variant's sigma) reaches was reached
    within the tolerance and the ones it does not reach were not, and the final error is within
    the tolerance of the closed form's."""
    ok = abs(r["final"] - r["theory_final"]) <= TOLERANCE * r["theory_final"]
    for h, th in r["theory_to"].items():
        got = r["to"][h]
        ok &= (got is None) if th is None else (got is not None and abs(got - th) <= TOLERANCE * th)
    return "target met" if ok else "target MISSED"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--runs", type=int, default=8, help="independent perceptrons per variant (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=None, help="override every variant's trial count")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    print(f"perturbation-perceptron: M=10 N=100 T=100 N_task=50 N_trial=10 E_opt=2; {a.runs} runs, seed {a.seed}; "
          f"{platform.python_version()} on {platform.machine()} (wall times: machine shared, loaded)")  # fmt: skip
    print(f"targets: trials to E < {', '.join(map(str, THRESHOLDS))} within +-{TOLERANCE:.0%} of the closed form; "
          "NP's floor 2 E_opt = 4")  # fmt: skip
    out = []
    for name in a.variants.split(","):
        r = run(name, a.runs, a.seed, a.trials)
        out.append(r)
        to = ", ".join(f"E<{h}: {r['to'][h]} (theory {r['theory_to'][h]})" for h in THRESHOLDS)
        print(f"{name:15s} sigma {r['sigma_eff']:g}: {to}; final {r['final']:.2f} (theory {r['theory_final']:.2f}, "
              f"floor {r['floor']:g}); {r['trials_per_s']:.0f} trials/s; {verdict(r)}", flush=True)  # fmt: skip
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
