"""What the gated network's forward rule needs of loihi2's learning engine: the range its phase
trace needs against the tag's bits, and its per-step weight change against the accumulator's
grid (why the lowering, ``neurocomp.rules.gated_engine``, sums the update on the host).

The rule is :meth:`GatedNet.engine_rule` (e-prop reduced to three graded post factors and the
phase trace in one tag). The network is trained with it in float64 (``--method engine``,
seed 0, or ``--model`` for a trained one); then, on 32 fresh trials, the phase trace ``t`` is
run step by step over every synapse and compared with a tag of the profile's width scaled to
hold its largest value, and the float training's step (Adam: about ``--lr`` per weight and
iteration) spread over one iteration's steps and trials is compared with the accumulator's
grid in units of the compiled weights' LSB. Widths come from ``hardware_profiles/loihi2.yaml``.

    PYTHONPATH=. python benchmarks/gated_engine_range.py [--model TRAINED.yaml] [--iterations 300]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from neurocomp.analysis.deploy import chip_weights
from neurocomp.analysis.train import TrainConfig, train
from neurocomp.compiler import compile
from neurocomp.graph.io import load_network
from neurocomp.profiles import load_profile
from neurocomp.reference.gated import GatedNet, gate
from neurocomp.tasks import make

MODEL = Path(__file__).resolve().parents[1] / "examples" / "gated_delayed_xor.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a trained gated model (default: train the example with the engine rule)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-2, help="Adam's step size of the float training")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(a.model) if a.model else Path(tmp) / "engine.yaml"
        if not a.model:
            cfg = TrainConfig(method="engine", iterations=a.iterations, batch=32, lr=a.lr, seed=0)
            print(train(MODEL, "delayed-xor", cfg, out=path, progress=False).summary(), flush=True)
        net = load_network(path)
    lrn = load_profile("loihi2").learning
    tag_max = 2 ** (lrn.synaptic_variable_bits["t"] - 1) - 1
    grid = 2.0 ** -(lrn.accumulator_bits - lrn.synaptic_variable_bits["w"])  # of a weight LSB
    m = GatedNet.from_network(net, 1.0)
    tk = make("delayed-xor", seed=11, batch=32)
    x, tg = np.asarray(tk.inputs), np.asarray(tk.targets)
    tr = m.forward(x)
    y1, y2, y3, _ = m.engine_factors(tr, tg)
    zone = gate(tr.theta[1:], m.width, m.shape) > 0  # where y3 reads the tag
    pre = np.concatenate([tr.x, tr.s[:-1]], axis=2)
    groups = {"inputs": slice(0, m.n_in), "recurrent": slice(m.n_in, None)}
    tag = np.zeros((x.shape[1], m.n_rec, pre.shape[2]))
    seen = {k: [] for k in groups}
    for t in range(x.shape[0]):
        tag = tag + y1[t][:, :, None] * tag + y2[t][:, :, None] * pre[t][:, None, :]
        for k, sl in groups.items():
            v = np.abs(tag[:, :, sl])
            seen[k].append((v.ravel(), v[zone[t]].ravel(), (np.abs(y3[t])[zone[t]][:, None] * v[zone[t]]).ravel()))
    prog = compile(net, "loihi2", out=io.StringIO())
    w = chip_weights(prog)
    print(f"phase trace on {x.shape[1]} trials of {x.shape[0]} steps; a {lrn.synaptic_variable_bits['t']}-bit tag "
          f"scaled to its largest value:")  # fmt: skip
    for (k, _), name in zip(groups.items(), ("in->rec", "rec->rec"), strict=True):
        allv, inz, contrib = (np.concatenate([s[i] for s in seen[k]]) for i in range(3))
        lsb = allv.max() / tag_max
        below = inz < lsb
        wl = np.diff(np.unique(np.abs(w[name]))).min()  # the compiled weights' LSB (model units)
        per_step = a.lr / (x.shape[0] * x.shape[1]) / wl
        share = contrib[below].sum() / contrib.sum()
        print(f"  {k:9s} largest {allv.max():.3g}, median {np.median(allv):.2g}; below one LSB: "
              f"{np.mean(allv < lsb):.1%} (in the zone {below.mean():.1%}, carrying {share:.0%} of sum |y3 t|)")
        print(f"  {'':9s} weight change per step and trial {per_step:.2g} LSB of {name} ({wl:g}); accumulator grid "
              f"{grid:.2g} LSB: {grid / per_step:.0f} times larger")  # fmt: skip


if __name__ == "__main__":
    main()
