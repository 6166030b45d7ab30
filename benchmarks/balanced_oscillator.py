"""Bourdoukan & Deneve's balanced network learning a 2-D damped oscillator
(``balanced-oscillator``): the float reference and each chip's form against the target.

Every variant trains the same network (seed ``--seed``: decoder, inputs) through the task's
phases (the fast rule alone; the host fits the readout decoder to the learned fast weights;
then the slow rule with the error fed back), then runs the test phase with the feedback off
and scores the readout against the system's state.

    python benchmarks/balanced_oscillator.py                          # float, spinnaker2, loihi2
    python benchmarks/balanced_oscillator.py --variants float --seeds 0,1,2

Variants: ``float`` (float64 rules), ``spinnaker2`` (the rules in float32 on the cores),
``loihi2`` (the rules on the sum-of-products engine in its fixed point: V as the graded y2;
the slow rule as balanced-basis's with a linear basis, ``r`` from relay units into x1 and
``Theta`` on the error units), ``loihi2-float`` (the same engine in float64). The network's
dynamics are float64 in every variant (see :mod:`neurocomp.rules.balanced`).
Target (learning-rules.md §2.9): N = 20-50, autonomous error < 10% of the signal's RMS, CV of
the ISIs about 1.
"""

from __future__ import annotations

import argparse
import platform
import time

TARGET = 0.1


def learner(variant: str, b, cfg: dict, seed: int):
    """The learner of ``variant`` for network ``b`` and the lowering's notes."""
    import numpy as np

    from neurocomp.profiles import load_profile
    from neurocomp.rules.balanced import lower, lower_engine

    if variant == "float":
        return b.learner(), ()
    prof = load_profile(variant.split("-")[0])
    low = lower(prof, b.n)
    if low.variant == "float32":
        return b.learner(np.float32), low.notes
    notes = lower_engine(prof, cfg, float(cfg["eta_slow"]), seed=seed)[2]
    kw = {"arithmetic": "float"} if variant.endswith("-float") else {}
    return b.engine_learner(prof, seed, **kw), (*low.notes, *notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--variants", default="float,spinnaker2,loihi2")
    ap.add_argument("--n", type=int, default=None, help="neurons (default: the task's 40)")
    ap.add_argument("--error-copies", type=int, default=None,
                    help="copies of the error units on loihi2, each with its own epoch (default: the task's)")
    args = ap.parse_args(argv)

    import numpy as np

    from neurocomp.rules.balanced import Balanced
    from neurocomp.tasks import make

    print("balanced-oscillator: Bourdoukan & Deneve 2015, a 2-D damped oscillator")
    print(f"  target: autonomous error < {TARGET} of the signal's RMS, CV of ISI about 1")
    print(f"  machine: {platform.processor() or platform.machine()}, Python {platform.python_version()} "
          "(CPU times of this process)")  # fmt: skip
    for seed in (int(s) for s in args.seeds.split(",")):
        over = {k: v for k, v in (("n", args.n), ("error_copies", args.error_copies)) if v is not None}
        tk = make("balanced-oscillator", seed=seed, **over)
        cfg = dict(tk.config)
        for v in args.variants.split(","):
            b = Balanced(tk, seed)
            ln, notes = learner(v.strip(), b, cfg, seed)
            t0 = time.process_time()
            b.train(ln)
            cpu = time.process_time() - t0
            auto, fb = b.test(ln), b.test(ln, feedback=True)
            ok = "meets" if auto["error"] < TARGET else "misses"
            fit = float(np.sum(b.net.readout * b.D) / np.sum(b.D * b.D))  # the fitted readout's length along D
            print(f"seed {seed} {v:<13} autonomous error {auto['error']:.3f} ({ok} < {TARGET}); with feedback "
                  f"{fb['error']:.3f}; CV of ISI {auto['cv_isi']:.2f} (local CV2 {auto['cv2_isi']:.2f}, rescaled "
                  f"{auto['cv_rescaled']:.2f}); "
                  f"{auto['rate_hz']:.1f} Hz; readout {fit:.3f} D; N = {b.n}; training CPU {cpu:.0f} s",
                  flush=True)  # fmt: skip
            for note in notes:
                print(f"{'':<20}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
