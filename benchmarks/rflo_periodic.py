"""RFLO on Murray's periodic-output task (``rflo-periodic``): the float reference against the
acceptance target, and a fixed-point version in loihi2's learning-engine widths.

Every variant trains one network per seed (all seeds batched in one run) for ``--trials``
trials with trial-end updates, then measures the normalized error ``mean((y - y*)^2) /
var(y*)`` on one more trial without learning.

    python benchmarks/rflo_periodic.py                       # float, fixed, fixed-nearest
    python benchmarks/rflo_periodic.py --variants float --trials 2000
    python benchmarks/rflo_periodic.py --json rflo.json

Variants:

* ``float``: :class:`neurocomp.reference.rflo.RfloRate`, float64, the exact rule.
* ``fixed``: :class:`neurocomp.reference.rflo_fixed.RfloRateFixed` with the profile's widths
  (loihi2: 8-bit weights over +-2, 9-bit eligibility traces over +-1, 8-bit error and
  learning signal, 8-bit feedback weights B, stochastic rounding of every update). The rate
  dynamics stay float64 (see the class for what is and is not modelled).
* ``fixed-nearest``: the same with round-to-nearest everywhere.
* ``fixed-weights``, ``fixed-traces``, ``fixed-signal``: one quantity in fixed point at a time
  (stochastic rounding), to attribute the gap.

Target (issue 6): float RFLO, 10 000 trials, normalized error < 0.01 on at least 4 of 5 seeds.
The fixed-point version is reported (learning-rules.md's aim for it: within 2x of float).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

TARGET = 0.01  # normalized error
TARGET_SEEDS = 4  # of 5


def run(variant: str, seeds: list[int], trials: int, profile: str, rounding_seed: int) -> dict:
    """Train ``variant`` for every seed at once; its configuration, wall time and errors."""
    import neurocomp as nc
    from neurocomp.reference.rflo import RfloRate
    from neurocomp.reference.rflo_fixed import QUANTITIES, RfloFixedPoint, RfloRateFixed
    from neurocomp.tasks import make

    task = make("rflo-periodic")
    cfg = task.config
    x, y = task.inputs[:, 0], task.targets[:, 0]
    kw = dict(tau=cfg["tau"], lr_in=cfg["lr_in"], lr_rec=cfg["lr_rec"], lr_out=cfg["lr_out"], g=cfg["g"], h0=cfg["h0"])
    sizes = (cfg["n_in"], cfg["n_rec"], cfg["n_out"])
    if variant == "float":
        net, desc = RfloRate(*sizes, seed=seeds, **kw), "float64"
    else:
        over: dict = {}
        if variant == "fixed-nearest":
            over["rounding"] = "nearest"
        elif variant.startswith("fixed-"):
            one = {"weights": ("weights", "feedback"), "traces": ("traces",), "signal": ("signal",)}[variant[6:]]
            assert set(one) <= set(QUANTITIES)
            over["quantize"] = one
        spec = RfloFixedPoint.from_profile(nc.load_profile(profile), **over)
        net = RfloRateFixed(
            *sizes, seed=seeds, fixed=spec, target_max=float(np.abs(y).max()), rounding_seed=rounding_seed, **kw
        )
        desc = f"{profile}: {spec.describe()}"
    t0 = time.perf_counter()
    curve = net.train(x, y, trials, online=bool(cfg["online"]))
    wall = time.perf_counter() - t0
    out = net.trial(x, y, learn=False)
    final = [float(task.metric(out[:, b : b + 1], task.targets)) for b in range(len(seeds))]
    checkpoints = {n: curve[n - 1].tolist() for n in (1, 100, 1000, trials) if n <= trials}
    return {
        "variant": variant,
        "formats": desc,
        "wall_s": wall,
        "ms_per_trial": 1e3 * wall / trials,
        "nmse": final,
        "curve": checkpoints,
        "clipped": int(getattr(net, "clipped", 0)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=None, help="trials per seed (default: the task's 10 000)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", default="float,fixed,fixed-nearest", help="comma-separated; see the module doc")
    ap.add_argument("--profile", default="loihi2", help="profile whose formats the fixed variants use")
    ap.add_argument("--rounding-seed", type=int, default=0, help="seed of the stochastic rounding")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    from neurocomp.tasks import make

    cfg = dict(make("rflo-periodic").config)
    trials = args.trials or int(cfg["trials"])
    print("rflo-periodic: Murray 2019 Fig. 2 (eprop.md section 4)")
    print(
        f"  {cfg['n_rec']} tanh rate units, tau = {cfg['tau']:g} steps, {cfg['n_in']} input held at "
        f"{cfg['input_value']:g}, {cfg['n_out']} output, h0 = {cfg['h0']:g}, gain {cfg['g']:g}"
    )
    print(
        f"  target sin + 0.5 sin(2.) + 0.25 sin(4.), period {cfg['period']} steps, trial {cfg['steps']} steps; "
        f"lr (in, rec, out) = ({cfg['lr_in']:g}, {cfg['lr_rec']:g}, {cfg['lr_out']:g}), "
        f"{'online' if cfg['online'] else 'trial-end'} updates, {trials} trials"
    )
    print(f"  seeds {args.seeds}; metric: normalized error mean((y - y*)^2) / var(y*) after training")
    print(f"  target: float < {TARGET} on at least {TARGET_SEEDS} of 5 seeds")
    print(f"  machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print()

    results = []
    for v in args.variants.split(","):
        r = run(v.strip(), args.seeds, trials, args.profile, args.rounding_seed)
        results.append(r)
        errs = "  ".join(f"{e:.2e}" for e in r["nmse"])
        print(f"{r['variant']:<14} {r['formats']}")
        print(f"{'':<14} wall {r['wall_s']:.1f} s ({r['ms_per_trial']:.2f} ms per trial, all seeds)")
        print(f"{'':<14} nmse per seed: {errs}   median {np.median(r['nmse']):.2e}")
        for n, c in r["curve"].items():
            print(f"{'':<14}   during trial {n:>5}: median {np.median(c):.2e}")
        if r["clipped"]:
            print(f"{'':<14} saturated values: {r['clipped']}")
        if r["variant"] == "float":
            ok = sum(e < TARGET for e in r["nmse"])
            if len(args.seeds) == 5 and trials >= int(cfg["trials"]):
                verdict = "PASS" if ok >= TARGET_SEEDS else "FAIL"
            else:
                verdict = "n/a (the target is for 5 seeds and the full trial count)"
            print(f"{'':<14} {ok} of {len(args.seeds)} seeds below {TARGET}: {verdict}")
        print(flush=True)

    ref = next((r for r in results if r["variant"] == "float"), None)
    if ref is not None and len(results) > 1:
        print("ratio to float, per seed (final normalized error)")
        for r in results:
            if r is ref:
                continue
            ratios = [a / b for a, b in zip(r["nmse"], ref["nmse"], strict=True)]
            print(
                f"  {r['variant']:<14} " + "  ".join(f"{q:6.2f}" for q in ratios) + f"   median {np.median(ratios):.2f}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg, "trials": trials, "seeds": args.seeds, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
