"""Why `check`'s "tags in float" and "graded in float" rows are worse than the chip on e-prop.

Attribution holds one quantity of the learning engine in float64 and leaves the chip's other
roundings. One of them is the floor of every product wider than the accumulator (e-prop's
hidden ``dw = -6*2^-7*u0*t*y2``: 5 bits on loihi2), which takes up to one accumulator unit
(1/128 weight LSB) from each nonzero product, always downwards; the rule's ``floor_offset``
gives back 15/32 of a unit on average where the neuron sends it (``rules.eprop``). An integer
tag decays to exactly 0, so the product is 0 on most synapse-steps and nothing is floored
there. A float tag never reaches 0: its tail, far below one tag LSB, makes nearly every
product nonzero, and each is floored to -1 (learning signal ``y2 > 0``) or 0 (``y2 < 0``),
with the offset on top. The result is a change of about half a unit per step on almost every
synapse, of the sign of ``-y2`` and unrelated to its eligibility: row-wide, per neuron.

This script prints, for the first trial of ``examples/eprop_pattern.yaml`` (seed 0, as
``check`` runs it), the share of synapse-steps whose ``t*y2`` product is nonzero, what the
floor took and the offset gave back (weight LSB per synapse), and the RMS over synapses of
their sum (and of its row means); then, with ``--iterations N``, every ``--levels`` learning
freely as ``check``'s curves do (NMSE, mean of the last 10), including the rows with a
quantity and the products both in float, which leave the floor out::

    python benchmarks/eprop_attribution_floor.py --iterations 200
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import neurocomp as nc  # noqa: E402
from neurocomp.analysis.check import _EpropRun, _score  # noqa: E402
from neurocomp.emulator import Emulator  # noqa: E402
from neurocomp.graph.io import load_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "eprop_pattern.yaml"
HIDDEN = ("in->rec", "rec->rec")
LEVELS = {  # label -> emulator options
    "lowered-fixed": {},
    "lowered-float": {"learn_arithmetic": "float"},
    "tags": {"learn_float": ("tags",)},
    "graded": {"learn_float": ("graded",)},
    "products": {"learn_float": ("products",)},
    "tags+products": {"learn_float": ("tags", "products")},
    "graded+products": {"learn_float": ("graded", "products")},
    "tags+graded": {"learn_float": ("tags", "graded")},
}


def floor_accounting(run: _EpropRun, kw: dict) -> dict:
    """Per hidden projection, over trial 0: the share of synapse-steps with a nonzero ``t*y2``
    product, the floor's and the offset's change (weight LSB per synapse) and the RMS over
    synapses of their sum and of its row means."""
    emu = Emulator(run.prog, seed=run.seed, **kw)
    x, tg = run.trial_data(0)
    rec = emu.run(x.shape[0], inputs={run.inp: x, run.target_key: tg[:, 0, :]}, record=["t", "y1", "y2"], learn=True)
    out = {}
    for n in HIDDEN:
        eng = emu.plastic[n].engine
        p = run.prog.projection(n).learning.dw.products[0]  # -6*2^-7*u0*t*y2
        s = max(0, eng.mant_bits + sum(eng.widths[f.var] for f in p.factors) - eng.acc_bits)
        lsb = 2.0 ** (eng.acc_bits - eng.var_bits["w"] - (p.exponent - eng.exp_min))  # floor units per weight LSB
        t = rec[f"{n}/t"][:, 0].astype(np.float64)
        y1, y2 = (rec[f"{n}/{y}"][:, 0, :, None].astype(np.float64) for y in ("y1", "y2"))
        m = p.mantissa * t * y2 * 2.0**-s  # the product before the floor, in floor units
        floor = (np.floor(m) - m).sum(axis=0) / lsb
        offset = (np.sign(t) * y1 / float(np.max(y1, initial=1))).sum(axis=0) / lsb  # one unit where sent
        net = floor + offset
        out[n] = {
            "nonzero": float((m != 0).mean()),
            "floor": float(floor.mean()),
            "offset": float(offset.mean()),
            "rms": float(np.sqrt((net**2).mean())),
            "row_rms": float(np.sqrt((net.mean(axis=-1) ** 2).mean())),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=0, help="train the levels this many trials (0: only trial 0)")
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    net = load_network(MODEL)
    prog = nc.compile(net, "loihi2", out=io.StringIO())
    run = _EpropRun.of(net, prog, "pattern-generation", args.seed, None)
    print(f"trial 0 of {MODEL.name}, seed {args.seed}: the hidden dw's product t*y2, its floor (weight LSB/synapse)")
    for level in ("lowered-fixed", "tags", "graded"):
        for n, r in floor_accounting(run, LEVELS[level]).items():
            print(f"  {level:14s} {n:9s} nonzero {r['nonzero']:.3f} of synapse-steps; floor {r['floor']:+.3f}, "
                  f"offset {r['offset']:+.3f}, net {r['floor'] + r['offset']:+.3f}; "
                  f"RMS of the net {r['rms']:.3f} (row means {r['row_rms']:.3f})")  # fmt: skip
    for level in args.levels if args.iterations else ():
        em, nmse, t0 = run.emulated(**LEVELS[level]), [], time.process_time()
        for k in range(args.iterations):
            x, tg = run.trial_data(k)
            nmse.append(_score(run.tk, k, em.trial(x, tg)["y"]))
        print(f"{level:16s} NMSE {np.mean(nmse[-10:]):.3f} after {args.iterations} iterations "
              f"({time.process_time() - t0:.0f} s CPU)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
