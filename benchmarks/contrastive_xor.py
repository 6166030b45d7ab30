"""Contrastive Hebbian learning (Baldi & Pineda 1991) on XOR (``chl-xor``): the float rule,
the lowered rule on loihi2's engine in fixed point, the weight symmetry, and the checks of
the float form (finite differences of the contrast, the oscillation form).

    python benchmarks/contrastive_xor.py                 # seeds 0-9, 300 epochs
    python benchmarks/contrastive_xor.py --seeds 0,1 --epochs 200

Per seed and level: the first epoch after which XOR is answered 4 of 4 and stays so to the
end, and the weight pairs with ``W_ij != W_ji`` at the end. Levels: ``float`` (the rule,
float64), ``loihi2`` (lowered, the engine's fixed arithmetic: 8-bit weights over +-8, stochastic
rounding with one random number per epoch), ``loihi2-nearest`` (round-to-nearest).

Targets (issue 17): dW = -lr dJ/dW by finite differences; XOR 4 of 4 in float and in fixed
point on loihi2; the oscillation form matches the two-phase form; the symmetry kept under
stochastic rounding.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def learn(level: str, seed: int, epochs: int) -> tuple[int | None, int, float]:
    from neurocomp.analysis.check_contrastive import asymmetry, epoch, make_level
    from neurocomp.profiles import load_profile
    from neurocomp.tasks import make

    tk = make("chl-xor", seed=seed)
    over = {"rounding": "nearest"} if level == "loihi2-nearest" else {}
    net = make_level("reference" if level == "float" else "lowered-fixed", load_profile("loihi2"), tk.config, seed,
                     **over)  # fmt: skip
    t0 = time.perf_counter()
    errs = [epoch(net, tk)[0] for _ in range(epochs)]
    wrong = [k for k, e in enumerate(errs) if e > 0]
    solved = None if errs[-1] > 0 else (wrong[-1] + 1 if wrong else 0)
    return solved, asymmetry(net)[0], time.perf_counter() - t0


def float_form_checks() -> tuple[float, dict[int, float]]:
    """The largest relative error of dW against -lr dJ/dW (central differences, step 1e-5) over
    every pair of a 3-3-2 network, and the oscillation form's relative error per phase length."""
    from neurocomp.rules.contrastive import Contrastive

    net = Contrastive(3, 3, 2, lr=0.7, seed=3, init_std=0.5, tol=1e-14)
    x, y = np.array([0.2, 0.9, 0.5]), np.array([0.3, 0.8])
    dw, W, worst = net.delta(*net.phases(x, y)), net.W.copy(), 0.0
    for i, j in zip(*np.nonzero(np.triu(net.mask)), strict=True):
        E = np.zeros_like(W)
        E[i, j] = E[j, i] = 1e-5
        g = -net.lr * (net.contrast(x, y, W + E) - net.contrast(x, y, W - E)) / 2e-5
        worst = max(worst, abs(g - dw[i, j]) / abs(dw[i, j]))
    osc = {P: float(np.abs(net.oscillation(x, y, P) - dw).max() / np.abs(dw).max()) for P in (100, 1000, 10_000)}
    return worst, osc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default=",".join(map(str, range(10))))
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--levels", default="float,loihi2,loihi2-nearest")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"chl-xor: 2-2-1 (+bias), lr 0.5, clamps 0.1/0.9, {a.epochs} epochs, seeds {a.seeds}; "
          f"{platform.python_version()} (machine shared, loaded)")  # fmt: skip
    fd, osc = float_form_checks()
    print(f"finite differences: largest relative error of dW against -lr dJ/dW: {fd:.2e} (target: equal)")
    per = ", ".join(f"P={P}: {e:.2e}" for P, e in osc.items())
    print(f"oscillation form vs two-phase, relative error by phase length: {per} (target: matches; transient ~ tau/P)")
    for level in a.levels.split(","):
        res = [learn(level, s, a.epochs) for s in seeds]
        solved = [r[0] for r in res]
        ok = sum(s is not None for s in solved)
        asym = sum(r[1] > 0 for r in res)
        print(f"{level:15s} XOR 4/4 (and kept) on {ok}/{len(seeds)} seeds, from epoch {solved}; "
              f"asymmetric networks {asym}/{len(seeds)} (pairs {[r[1] for r in res]}); "
              f"{np.mean([r[2] for r in res]):.1f} s per seed", flush=True)  # fmt: skip
    print("targets: XOR 4/4 in float and on loihi2 (fixed); symmetric weights under stochastic rounding")


if __name__ == "__main__":
    main()
