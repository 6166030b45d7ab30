"""LSNN store-recall (Bellec et al. 2018): trained in float with BPTT and with e-prop, deployed.

The LSNN tutorial's network (``examples/lsnn_store_recall.yaml``: 100 inputs at 50 Hz, 10 LIF +
10 ALIF, tau_a 1200 ms) and hyperparameters (Adam, lr 0.01 times 0.3 every 100 iterations, at
most 200 iterations, stop when the recall error is low (``--stop-at``), rate regularization toward 10 Hz
with the tutorial's strength), trained by :func:`neurocomp.analysis.train.train` in float64 with the
chip's conventions; then ``check --deploy`` (:func:`neurocomp.analysis.deploy.deploy_check`)
scores each trained network on held-out trials in float and on loihi2 and spinnaker2.

Target (issue 19, ``learning-rules.md`` §2.3): recall error < 5 % in float with BPTT and with
e-prop; the deployed error reported per chip.

    PYTHONPATH=. nice -n 10 python benchmarks/lsnn_store_recall.py [--batch 64] [--trials 128] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # per-core figures; see benchmarks/README.md

from neurocomp.analysis.deploy import deploy_check
from neurocomp.analysis.train import TrainConfig, train

MODEL = Path(__file__).resolve().parents[1] / "examples" / "lsnn_store_recall.yaml"
TARGET = 0.05  # the tutorial's stopping criterion, the target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="trials per iteration (the tutorial's: 128)")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--trials", type=int, default=128, help="held-out trials of the deploy check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="bptt,eprop")
    ap.add_argument("--stop-at", type=float, default=0.03,
                    help="stop when the mean recall error of the last 5 training batches is below this (default 0.03: "
                    "the tutorial stops at 5 %% on a validation batch; 5 training batches are a noisier measure)")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in a.methods.split(","):
            cfg = TrainConfig(method=method, iterations=a.iterations, lr=0.01, lr_decay=0.3, lr_decay_every=100,
                              reg=0.02, reg_rate_hz=10.0, stop_at=a.stop_at, batch=a.batch, seed=a.seed)  # fmt: skip
            t0 = time.perf_counter()
            res = train(MODEL, "store-recall", cfg, out=Path(tmp) / f"{method}.yaml", progress=True)
            t_train = time.perf_counter() - t0
            print(res.summary(), f"\n  ({t_train:.0f} s wall, machine shared)", flush=True)
            rep = deploy_check(Path(tmp) / f"{method}.yaml", "store-recall", ("loihi2", "spinnaker2"), a.trials, a.seed)
            print(rep.summary(), flush=True)
            rows.append((method, len(res.history["loss"]), rep))
    print(f"\nLSNN store-recall, recall error on {a.trials} held-out trials (target: float < {TARGET:.0%}):")
    print(f"  {'method':7s} {'iters':>5s} {'float':>7s} {'loihi2':>8s} {'spinnaker2':>10s}  target met (float)")
    for method, its, rep in rows:
        ch = rep.chips
        fl = ch["spinnaker2"]["levels"]["float"] if "levels" in ch["spinnaker2"] else float("nan")

        def chip(c: str, ch=ch) -> str:
            return f"{ch[c]['levels']['chip']:.3f}" if "levels" in ch[c] else "refused"

        print(f"  {method:7s} {its:5d} {fl:7.3f} {chip('loihi2'):>8s} {chip('spinnaker2'):>10s}  {fl < TARGET}")


if __name__ == "__main__":
    main()
