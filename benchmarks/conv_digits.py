"""Position-invariant digits (Leibo & Poggio's HMAX S1 -> C1): accuracy in float and on the chips.

Task ``digits-shifted`` (:mod:`neurocomp.tasks.digits`): scikit-learn's 8x8 digits pasted at a
random position of a 12x12 canvas (25 positions), rate-coded; training and test images
disjoint, every image at its own random position. S1: 6 principal components of 3x3 patches
learned with Oja's rule (Sanger's deflation), each as an ON and an OFF kernel (12 channels),
a convolution; C1: 4x4 pooling with stride 3 (3x3 positions per channel); readout: 10 leaky
integrators, weights by ridge regression on the float run's C1 spike counts. The same Network
is then run in the float64 reference simulator and compiled for each chip and run in the
emulator (Lava's ``Conv`` equals the emulator's loihi2 convolution bit for bit,
tests/test_lava_conv.py).

Target (issue 19, item 5): position-invariant classification on a small image set an installed
package ships, in float and on loihi2, with the accuracy of each. Chance is 10%; a linear
readout of the raw shifted pixels is printed for contrast (what the hierarchy adds).

    PYTHONPATH=. python benchmarks/conv_digits.py [--seed 0] [--n-test 597] [--save MODEL.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import neurocomp as nc
from neurocomp.tasks import digits as task


def pixel_baseline(cfg: task.Config, data: task.Data) -> float:
    """Ridge on the raw spike counts of the canvas (no S1/C1): the same readout fit, for contrast."""
    w = task.fit_readout(data.train_x.sum(axis=0).astype(np.float64), data.train_y, cfg.ridge)
    return float(np.mean(np.argmax(data.test_x.sum(axis=0) @ w.T, axis=1) == data.test_y))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-test", type=int, default=597, help="test digits (the rest of the 1797 train)")
    ap.add_argument("--profiles", nargs="+", default=["loihi2", "spinnaker2", "loihi1"])
    ap.add_argument("--save", metavar="MODEL.yaml", help="also write the trained network (a model file)")
    args = ap.parse_args()
    cfg = dataclasses.replace(task.Config(), n_test=args.n_test, n_train=1797 - args.n_test)
    data = task.make_data(cfg, args.seed)
    t0 = time.perf_counter()
    kernels, readout = task.train(cfg, data, args.seed)
    print(f"trained in {time.perf_counter() - t0:.0f} s: {len(data.train_y)} training trials "
          f"({cfg.n_train} images x {cfg.train_shifts} positions), {cfg.steps} steps each")  # fmt: skip
    net = task.network(cfg, kernels, readout)
    if args.save:
        print(f"wrote {nc.save_network(net, args.save)}")
    rows = [("pixels, ridge (no hierarchy; float counts)", pixel_baseline(cfg, data))]
    rows.append(("float64 reference", task.evaluate(net, cfg, data, None)))
    for prof in args.profiles:
        rows.append((f"{prof} (emulator)", task.evaluate(net, cfg, data, prof)))
    print(f"\nposition-invariant digits, {len(data.test_y)} test digits at random positions of a "
          f"{cfg.canvas}x{cfg.canvas} canvas, seed {args.seed}")  # fmt: skip
    print("target (issue 19): accuracy in float and on loihi2, each reported; chance 0.100\n")
    print("| level | test accuracy |\n|---|---:|")
    for name, acc in rows:
        print(f"| {name} | {acc:.3f} |")


if __name__ == "__main__":
    main()
