"""Presynaptic-dependent scaling (Buonomano 2005) against plain synaptic scaling on
``psd-timing``: from near silence to a sparse code for time, in float and on loihi2's engine.

Each variant trains the task's E->E weights for ``--trials`` trials from ``w0`` and prints,
over the last 20 trials, the mean spikes per E cell per trial, the fraction of E cells
recruited, the most spikes of one cell in a trial and the first-spike latency spread (5th to
95th percentile), beside the targets of issue 17 (no paper number exists: the reference's
proposal, ``learning-rules.md`` §2.4). The SS control's instability is its swing: the
largest minus the smallest mean over the last 100 trials, or bursts of more than 3 spikes per cell.

    python benchmarks/psd_timing.py                                # all variants
    python benchmarks/psd_timing.py --variants psd-float --trials 200

Variants: ``psd-float``, ``ss-float`` (:class:`neurocomp.rules.scaling.Homeostasis`, float64);
``psd-loihi2``, ``ss-loihi2`` (the lowered rule on loihi2's engine in its fixed arithmetic,
:class:`~neurocomp.rules.scaling.HomeostasisOnEngine`; the network's dynamics in float64 from
the engine's weights).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

VARIANTS = {"psd-float": ("psd", None), "ss-float": ("ss", None), "psd-loihi2": ("psd", "loihi2"),
            "ss-loihi2": ("ss", "loihi2")}  # fmt: skip


def train(kind: str, where: str | None, trials: int, seed: int) -> list[dict]:
    """Per-trial summaries of ``trials`` trials of learning (the learners of ``neurocomp check``)."""
    from neurocomp.analysis.check_scaling import make_level
    from neurocomp.analysis.check_scaling import train as run_trials
    from neurocomp.profiles import load_profile
    from neurocomp.tasks import make
    from neurocomp.tasks import timing_code as tc

    cfg = make(tc.NAME, seed=seed).config
    net = tc.TimingNetwork(cfg, seed)
    level = "reference" if where is None else "lowered-fixed"
    learner = make_level(level, kind, load_profile(where or "loihi2"), net, cfg, seed)
    return run_trials(learner, net, trials, lambda _: None, kind)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from neurocomp.analysis.check_scaling import PARAMS
    from neurocomp.tasks import timing_code as tc

    print(f"psd-timing {tc.DEFAULTS}, seed {a.seed}, {a.trials} trials; rule {PARAMS}")
    print("targets: mean spikes per E cell per trial within 10% of A_goal = 1; > 90% recruited; max <= 3; "
          "latency spread > 100 ms; SS unstable")  # fmt: skip
    for name in a.variants.split(","):
        kind, where = VARIANTS[name]
        t0 = time.perf_counter()
        h = train(kind, where, a.trials, a.seed)
        last = h[-20:]
        mean = float(np.mean([r["mean"] for r in last]))
        rec = float(np.mean([r["recruited"] for r in last]))
        mx = max(r["max"] for r in last)
        span = float(np.mean([r["latency_span_ms"] for r in last]))
        means = [r["mean"] for r in h[-100:]]
        met = abs(mean - 1) <= 0.1, rec > 0.9, mx <= 3, span > 100
        names = ("mean", "recruited", "max", "span")
        verdict = ", ".join(f"{k} {'met' if m else 'MISSED'}" for k, m in zip(names, met, strict=True))
        if kind == "ss":  # the control's target is instability: bursts, or a mean that does not settle
            unstable = mx > 3 or max(means) - min(means) > 0.2
            verdict = f"control {'unstable: met' if unstable else 'stable: MISSED'}"
        print(f"{name:11s}: mean {mean:.2f}, recruited {rec:.0%}, max {mx}, latency spread {span:.0f} ms, swing of "
              f"the mean over the last 100 trials {max(means) - min(means):.2f}; {verdict} "
              f"({time.perf_counter() - t0:.0f} s, machine loaded)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
