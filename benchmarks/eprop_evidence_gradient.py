"""What loihi2's fixed point does to one minibatch's gradient on evidence accumulation: the
host's gradient estimate (:class:`neurocomp.learning.host.HostAdam`'s ``g``, the copies' mean
weight change over a trial divided by the engine's lr) at each level, from the same weights on
the same trials, against the lowered rule in float64 at a small lr (the drift-free reference).

The network and task are ``eprop_evidence_small.py``'s (20 LIF + 20 ALIF, 3 cues, 750 steps,
``t_epoch`` 16, readout headroom 3 bits). For every plastic projection it prints the cosine of
each level's gradient with the reference and the ratio of their norms. Noise that is
independent between the trials of a minibatch shrinks as ``--per-update`` grows and the
cosine rises towards the float level's; an error that is the same in every copy (a bias, or
rounding with random numbers the copies share) does not.

    PYTHONPATH=. python benchmarks/eprop_evidence_gradient.py --per-update 64 --weight-headroom-bits -2 \\
        --lr-engine 1e-2 --readout-lr 1 --levels float,fixed,weights,traces,graded,tags,products

A level is ``float`` (``learn_arithmetic="float"`` at the engine's lr), ``fixed`` (the chip),
or a ``+``-joined set of learning quantities run in float64 (``Emulator(learn_float=...)``).

``--rows`` adds, per level, the row means (one per post neuron, over its synapses): the share of
the squared norm of the level's error (its gradient minus the reference) that lies in them, and
the cosine of the level's gradient with those row means removed (``HostAdam(centre_rows=True)``);
the reference's own share is printed first.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neurocomp._yaml import read_yaml  # noqa: E402
from neurocomp.compiler import compile  # noqa: E402
from neurocomp.emulator import Emulator  # noqa: E402
from neurocomp.graph.io import load_network  # noqa: E402
from neurocomp.tasks import make  # noqa: E402
from neurocomp.tasks.evidence import SMALL_TASK, small_network, with_lr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def gradient(net, level: str, lr: float, readout_lr: float, trials, start=None) -> dict[str, np.ndarray]:
    """The host's gradient (model units per unit lr) of one minibatch at ``level``, from the
    compiled weights or ``start`` (mantissas per projection, e.g. a checkpoint's)."""
    prog = compile(with_lr(net, lr, readout_lr), "loihi2", out=io.StringIO())
    kw = {"learn_arithmetic": "float"} if level == "float" else {}
    kw |= {"learn_float": tuple(level.split("+"))} if level not in ("float", "fixed") else {}
    emu = Emulator(prog, batch=trials.inputs.shape[1], seed=0, **kw)
    for n, w in (start or {}).items():
        emu.plastic[n].engine.state["w"][...] = w[:1]
    w0 = {n: s.engine.state["w"][0].astype(np.float64) for n, s in emu.plastic.items()}
    emu.run(trials.steps, inputs={"in": trials.inputs, "out.error/target": trials.targets}, learn=True)
    out = {}
    for n, s in emu.plastic.items():
        lr_n = lr * (readout_lr if n.endswith("->out") else 1.0)
        out[n] = -(s.engine.state["w"].astype(np.float64).mean(axis=0) - w0[n]) * np.asarray(s.weight_unit) / lr_n
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.ravel(), b.ravel()
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-300))


def _row_share(a: np.ndarray) -> float:
    """The share of ``a``'s squared norm in its row means (``[post, pre]``: one per post neuron)."""
    return float(np.sum(a.mean(axis=1) ** 2) * a.shape[1] / (np.sum(a**2) + 1e-300))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-update", type=int, default=16, help="trials of the minibatch (one copy each)")
    ap.add_argument("--weight-headroom-bits", type=int, default=-2)
    ap.add_argument("--lr-engine", type=float, default=1e-2)
    ap.add_argument("--readout-lr", type=float, default=1.0, help="the readout's engine lr factor")
    ap.add_argument("--trace-impulse", type=float, help="the rule's trace_impulse (default: the rule's)")
    ap.add_argument("--ref-lr", type=float, default=1.25e-3,
                    help="the reference's engine lr (small: little drift; at the default impulse the readout's "
                    "scale is then the engine's smallest, 2^-7)")
    ap.add_argument("--reg", type=float, help="the rule's rate regularization (default: the example's)")
    ap.add_argument("--seed", type=int, default=5, help="the task seed of the minibatch")
    ap.add_argument("--levels", default="float,fixed,weights,traces,graded,tags,products")
    ap.add_argument("--full", action="store_true", help="the example's network and task (50 + 50, 2250 steps)")
    ap.add_argument("--weights", help="an .npz of eprop_evidence.py --save (--full) to start from")
    ap.add_argument("--rows", action="store_true", help="also the row means' share and the row-centred cosine")
    a = ap.parse_args(argv)
    if a.weights and not a.full:  # a checkpoint of eprop_evidence.py holds the full-size network's weights
        ap.error("--weights starts from a full-size checkpoint: it needs --full")
    example = ROOT / "examples" / "eprop_evidence.yaml"
    net = load_network(example) if a.full else small_network(read_yaml(example))
    start = None
    if a.weights:
        with np.load(a.weights) as f:
            start = {k: f[k] for k in f.files if k != "__updates__"}
    extra = {"trace_impulse": a.trace_impulse} if a.trace_impulse else {}
    extra |= {} if a.reg is None else {"reg": a.reg}
    hr = a.weight_headroom_bits
    net = net.with_rule_params(t_epoch=16, readout_headroom_bits=3, weight_headroom_bits=hr, **extra)
    trials = make("evidence-accumulation", seed=a.seed, batch=a.per_update, **({} if a.full else SMALL_TASK))
    ref = gradient(net, "float", a.ref_lr, 1.0, trials, start)
    imp = "".join(f", {k} {v:g}" for k, v in extra.items())
    size = ("full size" if a.full else "small size") + (f" from {a.weights}" if a.weights else "")
    print(f"{size}, minibatch of {a.per_update} trials, engine lr {a.lr_engine:g} (readout x{a.readout_lr:g}), "
          f"hidden headroom {hr} bits{imp}: cosine"
          f" / norm ratio against the lowered rule in float64 at lr {a.ref_lr:g}")  # fmt: skip
    print("level | " + " | ".join(ref))
    if a.rows:
        print("reference, row means' share of its norm^2 | " + " | ".join(f"{_row_share(r):.2f}" for r in ref.values()))
    for level in a.levels.split(","):
        g = gradient(net, level, a.lr_engine, a.readout_lr, trials, start)
        cells = []
        for n, r in ref.items():
            x, y = r.ravel(), g[n].ravel()
            cells.append(f"{_cosine(r, g[n]):.2f} / {np.linalg.norm(y) / (np.linalg.norm(x) + 1e-300):.2f}")
        print(f"{level} | " + " | ".join(cells), flush=True)
        if a.rows:
            cells = [f"{_row_share(g[n] - r):.2f} / {_cosine(r, g[n] - g[n].mean(axis=1, keepdims=True)):.2f}"
                     for n, r in ref.items()]  # fmt: skip
            print(f"{level}: error's row-mean share / centred cosine | " + " | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
