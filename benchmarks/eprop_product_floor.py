"""The learning engine's product floor on e-prop, and the rule's ``floor_offset`` against it.

loihi2's engine floors ``-6 * t * y2 >> 5`` (the hidden ``dw``'s product, wider than the 16-bit
accumulator) before adding it, which loses 15/32 of an accumulator unit (1/128 weight LSB) on
average on every synapse-step whose product is nonzero, always downwards. The rule parameter
``floor_offset`` (default on) has the hidden neuron send ``y1 = 32`` where its ``y2 != 0`` on 15
of every 32 steps and adds ``2^-7 * u0 * sgn(t) * y1`` to ``dw``: one unit where it is sent and
the tag is nonzero, on average the floor's loss where the floor acts (``rules.eprop``; the
readout's ``x1 * y2``, shifted by 3, gets the same on 3 of 8 steps). This script runs the
first trial of ``examples/eprop_pattern_100.yaml`` (1000 steps, learning from
the initial weights) for each seed: lowered-fixed without the offset, with it, with exact
products (``learn_float=("products",)``: the shift divides exactly, no offset) and
lowered-float; and reports per hidden projection the mean weight change (weight LSB per
synapse) of each, with what the floor took and what the offset added, summed from the
recorded tags and graded values (LSB per synapse).

    python benchmarks/eprop_product_floor.py --seeds 0 1 2 3 4
    python benchmarks/eprop_product_floor.py --curve 2 --iterations 300   # seed 2: NMSE per level

``--curve SEED`` trains the ``--levels`` (default: lowered-fixed with and without the offset,
and lowered-float) for ``--iterations`` trials as ``check`` does and prints their NMSE (mean
of the last 10) every 50 iterations.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import neurocomp as nc  # noqa: E402
from neurocomp.emulator import Emulator  # noqa: E402
from neurocomp.graph.io import load_network  # noqa: E402
from neurocomp.tasks import make  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "eprop_pattern_100.yaml"
HIDDEN = ("in->rec", "rec->rec")


def first_trial(prog, seed: int, record: tuple[str, ...] = (), **kw) -> dict:
    """Trial 0 of the check's frozen task for ``seed`` with learning, as ``check`` runs it;
    ``rec["dw"]``: each hidden projection's weight change (mantissas)."""
    tk = make("pattern-generation", seed=seed, n_in=100, n_out=1, n_rec=100)
    emu = Emulator(prog, seed=seed, **kw)
    w0 = {n: emu.plastic[n].engine.weights[0].astype(np.float64).copy() for n in HIDDEN}
    rec = emu.run(tk.steps, inputs={"in": tk.inputs, "out.error/target": tk.targets[:, 0, :]},
                  record=list(record), learn=True)  # fmt: skip
    rec["dw"] = {n: emu.plastic[n].engine.weights[0].astype(np.float64) - w0[n] for n in HIDDEN}
    return rec


def measure(seed: int) -> dict:
    """Per hidden projection: the mean weight change of each level (weight LSB per synapse),
    the floor's loss in the run without the offset and the offset's gain in the run with it."""
    progs = {on: nc.compile(with_offset(on), "loihi2", out=io.StringIO()) for on in (False, True)}
    fixed = first_trial(progs[False], seed, record=("t", "y2"))
    offset = first_trial(progs[True], seed, record=("t", "y1"))
    exact = first_trial(progs[False], seed, learn_float=("products",))
    flt = first_trial(progs[False], seed, learn_arithmetic="float")
    out = {}
    for n in HIDDEN:
        t, y2 = fixed[f"{n}/t"][:, 0].astype(np.int64), fixed[f"{n}/y2"][:, 0].astype(np.int64)
        x = -6 * t * y2[:, :, None]  # the product the engine floors by 5 bits: it loses x mod 32 of 32
        syn = t[0].size
        t1, y1 = offset[f"{n}/t"][:, 0].astype(np.int64), offset[f"{n}/y1"][:, 0].astype(np.int64)
        out[n] = {
            "fixed": float(fixed["dw"][n].mean()),
            "offset": float(offset["dw"][n].mean()),
            "products": float(exact["dw"][n].mean()),
            "float": float(flt["dw"][n].mean()),
            "floor": -float((x % 32).sum()) / 32 / 128 / syn,
            "gain": float((np.sign(t1) * y1[:, :, None] // 32).sum()) / 128 / syn,
            "nonzero": float((x != 0).mean()),
        }
    return out


LEVELS = {  # --curve's levels: (label, the rule's floor_offset, emulator options)
    "offset": ("lowered-fixed, floor offset", True, {}),
    "fixed": ("lowered-fixed, no offset", False, {}),
    "products": ("lowered-fixed, exact products", False, {"learn_float": ("products",)}),
    "float": ("lowered-float", True, {"learn_arithmetic": "float"}),
}


def with_offset(on: bool):
    """The example with every e-prop projection's ``floor_offset`` set to ``on``."""
    import tempfile

    text = MODEL.read_text()
    assert "reg_rate_hz: 10.0}" in text, "the example's rule parameters changed: the offset would not be set"
    text = text.replace("reg_rate_hz: 10.0}", f"reg_rate_hz: 10.0, floor_offset: {str(on).lower()}}}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        return load_network(f.name)
    finally:
        os.unlink(f.name)


def curve(seed: int, iterations: int, levels: list[str]) -> None:
    """The levels learning freely (as check's curves): NMSE, the mean of the last 10."""
    from eprop_pattern_chips import TARGET_RATIO  # (this script's folder is on the path)

    from neurocomp.analysis.check import _EpropRun, _score

    final = {}
    for level in levels:
        label, on, kw = LEVELS[level]
        net = with_offset(on)
        prog = nc.compile(net, "loihi2", out=io.StringIO())
        run = _EpropRun.of(net, prog, "pattern-generation", seed, None)
        em, nmse, t0 = run.emulated(**kw), [], time.process_time()
        for k in range(iterations):
            x, tg = run.trial_data(k)
            nmse.append(_score(run.tk, k, em.trial(x, tg)["y"]))
            if (k + 1) % 50 == 0:
                print(f"  seed {seed} {label}: iteration {k + 1}, NMSE (last 10) {np.mean(nmse[-10:]):.4f} "
                      f"({time.process_time() - t0:.0f} s CPU)", flush=True)  # fmt: skip
        print(f"seed {seed} {label}: NMSE {np.mean(nmse[-10:]):.4f} (+-{np.std(nmse[-10:]):.4f}) after {iterations}",
              flush=True)  # fmt: skip
        final[level] = float(np.mean(nmse[-10:]))
    for level in (lv for lv in levels if lv != "float" and "float" in final):
        ratio = final[level] / final["float"]
        print(f"seed {seed} {LEVELS[level][0]} / lowered-float: {ratio:.2f}x, target <= {TARGET_RATIO}x: "
              f"{'MET' if ratio <= TARGET_RATIO else 'MISSED'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--curve", type=int, help="train this seed's levels (--levels) freely")
    ap.add_argument("--levels", nargs="+", choices=list(LEVELS), default=["offset", "fixed", "float"])
    ap.add_argument("--iterations", type=int, default=300)
    args = ap.parse_args(argv)
    if args.curve is not None:
        curve(args.curve, args.iterations, args.levels)
        return 0
    print("first trial of examples/eprop_pattern_100.yaml on loihi2 (1000 steps), mean weight change per synapse "
          "in weight LSB; floor: what the floor of t*y2 took (no offset), gain: what the offset added")  # fmt: skip
    print(f"{'seed':>4} {'projection':10} {'fixed':>7} {'offset':>7} {'products':>8} {'float':>7} {'floor':>7} "
          f"{'gain':>7} {'nonzero':>8}")  # fmt: skip
    rows = []
    t0 = time.process_time()
    for s in args.seeds:
        for n, v in measure(s).items():
            rows.append(v)
            print(f"{s:4d} {n:10} {v['fixed']:7.3f} {v['offset']:7.3f} {v['products']:8.3f} {v['float']:7.3f} "
                  f"{v['floor']:7.3f} {v['gain']:7.3f} {100 * v['nonzero']:7.1f}%", flush=True)  # fmt: skip
    gap = {k: np.array([abs(r[k] - r["float"]) for r in rows]) for k in ("fixed", "offset", "products")}
    print(f"over seeds {args.seeds}: |level - float| mean " + ", ".join(f"{k} {v.mean():.3f}" for k, v in gap.items())
          + f" LSB per synapse per trial; {time.process_time() - t0:.0f} s CPU")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
