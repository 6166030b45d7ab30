"""Alemi et al.'s balanced network with a nonlinear basis learning a 2-D bistable system
(``balanced-bistable``): the float reference and each chip's form, with the error after
deleting a quarter of the neurons.

Every variant trains the same network (seed ``--seed``: decoder, basis, inputs) through the
task's learning phases (the rule with the error fed back), runs the test phase with the
feedback off, then again without a seeded 25 % of the neurons, and scores the readout against
the system's state. The derivation's network (``W = D^T Theta``, ``Theta`` fitted by least
squares) is printed first: what the rule should approach.

    python benchmarks/balanced_basis.py                          # ideal, float, spinnaker2, loihi2
    python benchmarks/balanced_basis.py --variants float --seeds 0,1,2
    python benchmarks/balanced_basis.py --variants float --fast-steps 100000   # the fast weights learned

Variants: ``ideal`` (the derivation's weights, no learning), ``float`` (float64 rule),
``spinnaker2`` (the basis and the rule in float32 on the cores), ``loihi2`` (the engine's
fixed point: the feedback current as the graded y3, the basis as graded pre spikes into x1),
``loihi2-float`` (the same engine in float64). The network's dynamics are float64 in every
variant (see :mod:`neurocomp.rules.balanced_basis`). Target (learning-rules.md §2.10): N <= 100,
report the tracking error and the error after deleting 25 % of the neurons.
"""

from __future__ import annotations

import argparse
import platform
import time


def learner(variant: str, b, cfg: dict, seed: int):
    """The learner of ``variant`` for network ``b`` and the lowering's notes."""
    import numpy as np

    from neurocomp.profiles import load_profile
    from neurocomp.rules.balanced_basis import lower, lower_engine

    if variant == "ideal":
        return b.learner(w=b.ideal_w()), ()
    if variant == "float":
        return b.learner(), ()
    prof = load_profile(variant.split("-")[0])
    low = lower(prof, b.n, b.m)
    if low.variant == "float32":
        return b.learner(np.float32), low.notes
    kw = {"arithmetic": "float"} if variant.endswith("-float") else {}
    notes = lower_engine(prof, cfg, float(cfg["eta_slow"]), seed=seed, factored=bool(cfg["error_units"]))[2]
    return b.engine_learner(prof, seed, **kw), (*low.notes, *notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--variants", default="ideal,float,spinnaker2,loihi2")
    ap.add_argument("--n", type=int, default=None, help="neurons (default: the task's 36)")
    ap.add_argument("--fast-steps", type=int, default=None,
                    help="learn the fast weights first with the voltage rule for this many steps (float variants)")
    ap.add_argument("--error-copies", type=int, default=None,
                    help="copies of the error units on loihi2, each with its own epoch (default: the task's)")
    args = ap.parse_args(argv)

    import numpy as np

    from neurocomp.rules.balanced_basis import BasisBalanced
    from neurocomp.tasks import make

    print("balanced-bistable: Alemi et al. 2018, a 2-D bistable system through a basis of units with Gaussian tuning")
    print("  target: N <= 100; report the autonomous error (feedback off) and the error after deleting 25 % of "
          "the neurons")  # fmt: skip
    print(f"  machine: {platform.processor() or platform.machine()}, Python {platform.python_version()} "
          "(CPU times of this process)")  # fmt: skip
    for seed in (int(s) for s in args.seeds.split(",")):
        over = {k: v for k, v in (("n", args.n), ("fast_steps", args.fast_steps), ("error_copies", args.error_copies))
                if v is not None}  # fmt: skip
        tk = make("balanced-bistable", seed=seed, **over)
        cfg = dict(tk.config)
        for v in args.variants.split(","):
            b = BasisBalanced(tk, seed)
            ln, notes = learner(v.strip(), b, cfg, seed)
            t0 = time.process_time()
            if v != "ideal":
                b.train(ln)
            cpu = time.process_time() - t0
            auto, fb = b.test(ln), b.test(ln, feedback=True)
            net, ld = b.delete(ln, float(cfg["delete_fraction"]), seed)
            gone = b.test(ld, net=net)
            print(f"seed {seed} {v:<13} autonomous error {auto['error']:.3f}; after deleting "
                  f"{b.n - net.n} of {b.n} neurons {gone['error']:.3f}; with feedback {fb['error']:.3f}; CV of ISI "
                  f"{auto['cv_isi']:.2f} (local CV2 {auto['cv2_isi']:.2f}); {auto['rate_hz']:.1f} Hz; largest |W| "
                  f"{np.abs(ln.ws).max():.2f}; training CPU {cpu:.0f} s", flush=True)  # fmt: skip
            for note in notes:
                print(f"{'':<20}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
