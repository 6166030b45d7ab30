"""The learning engine's product floor on e-prop, measured per seed: can a rule term offset it?

loihi2's engine floors ``m * t * y2 >> 5`` (the hidden ``dw``'s product, wider than the 16-bit
accumulator) before adding it, which loses on average about half an accumulator unit (1/128
weight LSB) on every synapse-step whose product is nonzero, always downwards. This script runs
the first trial of ``examples/eprop_pattern_100.yaml`` (1000 steps, learning from the initial
weights) for each seed three times: lowered-fixed, lowered-fixed with exact products
(``learn_float=("products",)``: the shift divides exactly) and lowered-float; and reports per
hidden projection:

* the mean weight change (weight LSB per synapse) of each;
* the bias the floor causes (fixed minus exact products) and the share of synapse-steps whose
  product ``t * y2`` is nonzero (where the floor acts);
* what the offsets a rule could add would do. The smallest ``u0`` term (``2^-7 * u0``: one
  accumulator unit every step, on every synapse) adds ``steps / 128`` LSB per synapse; a
  per-presynaptic-spike term (``c * x0``) adds in proportion to the pre spikes, while the floor
  acts in proportion to the synapse's nonzero-product steps: the spread (coefficient of
  variation over synapses) of the ratio "floor steps per pre spike" says how far one ``c`` is
  from each synapse's need.

    python benchmarks/eprop_product_floor.py --seeds 0 1 2 3 4
    python benchmarks/eprop_product_floor.py --curve 2 --iterations 300   # seed 2: fixed vs exact products

``--curve SEED`` trains lowered-fixed and lowered-fixed with exact products for
``--iterations`` trials as ``check`` does and prints their NMSE (mean of the last 10): whether
removing the floor removes the stall.
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


def first_trial(prog, seed: int, **kw) -> tuple[Emulator, dict]:
    """Trial 0 of the check's frozen task for ``seed`` with learning, as ``check`` runs it."""
    tk = make("pattern-generation", seed=seed, n_in=100, n_out=1, n_rec=100)
    emu = Emulator(prog, seed=seed, **kw)
    w0 = {n: emu.plastic[n].engine.weights[0].astype(np.float64).copy() for n in HIDDEN}
    rec = emu.run(tk.steps, inputs={"in": tk.inputs, "out.error/target": tk.targets[:, 0, :]},
                  record=["t", "y2", "spikes"] if not kw else [], learn=True)  # fmt: skip
    rec["dw"] = {n: emu.plastic[n].engine.weights[0].astype(np.float64) - w0[n] for n in HIDDEN}
    return emu, rec


def measure(seed: int) -> dict:
    prog = nc.compile(load_network(MODEL), "loihi2", out=io.StringIO())
    _, fixed = first_trial(prog, seed)
    _, exact = first_trial(prog, seed, learn_float=("products",))
    _, flt = first_trial(prog, seed, learn_arithmetic="float")
    steps = fixed[f"{HIDDEN[0]}/t"].shape[0]
    out = {}
    for n in HIDDEN:
        t, y2 = fixed[f"{n}/t"][:, 0], fixed[f"{n}/y2"][:, 0]  # [steps, post, pre], [steps, post]
        nonzero = (t != 0) & (y2[:, :, None] != 0)
        per_syn = nonzero.sum(axis=0).astype(np.float64)  # floor steps per synapse
        pre_spikes = fixed[f"{n.split('->')[0]}/spikes"][:, 0].sum(axis=0).astype(np.float64)  # [pre]
        active = pre_spikes > 0
        ratio = per_syn[:, active] / pre_spikes[None, active]  # floor steps per pre spike
        out[n] = {
            "dw_fixed": float(fixed["dw"][n].mean()),
            "dw_products": float(exact["dw"][n].mean()),
            "dw_float": float(flt["dw"][n].mean()),
            "share_nonzero": float(nonzero.mean()),
            "u0_offset_lsb": steps / 128,
            "per_spike_cv": float(ratio.std() / ratio.mean()) if ratio.size and ratio.mean() > 0 else float("nan"),
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

    text = MODEL.read_text().replace("reg_rate_hz: 10.0}", f"reg_rate_hz: 10.0, floor_offset: {str(on).lower()}}}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        return load_network(f.name)
    finally:
        os.unlink(f.name)


def curve(seed: int, iterations: int, levels: list[str]) -> None:
    """The levels learning freely (as check's curves): NMSE, the mean of the last 10."""
    from neurocomp.analysis.check import _EpropRun, _score

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
          "in weight LSB; floor bias = fixed - exact products")  # fmt: skip
    hdr = f"{'seed':>4} {'projection':10} {'fixed':>7} {'products':>8} {'float':>7} {'bias':>7} {'nonzero':>8} " \
          f"{'u0 offset':>9} {'x0 CV':>6}"  # fmt: skip
    print(hdr)
    rows = []
    t0 = time.perf_counter()
    for s in args.seeds:
        r = measure(s)
        for n, v in r.items():
            bias = v["dw_fixed"] - v["dw_products"]
            rows.append((s, n, bias, v["share_nonzero"], v["per_spike_cv"]))
            line = f"{s:4d} {n:10} {v['dw_fixed']:7.2f} {v['dw_products']:8.2f} {v['dw_float']:7.2f} {bias:7.2f} "
            print(line + f"{100 * v['share_nonzero']:7.1f}% {v['u0_offset_lsb']:+9.2f} {v['per_spike_cv']:6.2f}",
                  flush=True)  # fmt: skip
    b = np.array([r[2] for r in rows])
    sh = np.array([r[3] for r in rows])
    cv = np.array([r[4] for r in rows])
    print(f"over seeds {args.seeds}: floor bias {b.mean():.2f} LSB per synapse per trial (range {b.min():.2f} .. "
          f"{b.max():.2f}); nonzero share {100 * sh.min():.0f}-{100 * sh.max():.0f} %; per-spike CV "
          f"{cv.min():.2f}-{cv.max():.2f}; {time.perf_counter() - t0:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
