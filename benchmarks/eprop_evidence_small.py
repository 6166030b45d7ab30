"""Evidence accumulation at a small size that still learns, on a chip's emulator: the loop of
``tests/test_evidence_training.py`` with one thing changed at a time (the README's table).

The example ``examples/eprop_evidence.yaml`` with 20 LIF + 20 ALIF (recurrent weights
N(0, 1/40)) on the task with 3 cues and a 300 ms delay (750 steps); 16 trials per update, each
on its own copy of the weights; every 10 updates the error on 128 held-out trials (seed 10 000).

    PYTHONPATH=. python benchmarks/eprop_evidence_small.py --chip spinnaker2 --adam 1e-2
    PYTHONPATH=. python benchmarks/eprop_evidence_small.py --chip loihi2 --adam 5e-3 --lr-engine 4e-2 \\
        [--learn-float weights,graded] [--learn-arithmetic float] [--weight-headroom-bits -2] [--masters] \\
        [--centre-rows]

spinnaker2 runs its own minibatch (``update: trial``, Adam at ``--adam``); loihi2 its online
engine at ``--lr-engine`` (readout x0.125, headroom 3 bits, ``t_epoch`` 16) with the host's Adam
(``neurocomp.learning.host.HostAdam``) at ``--adam`` after each minibatch. The network is
``neurocomp.tasks.evidence.small_network`` at ``SMALL_TASK``, the slow test's.
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

from neurocomp._yaml import read_yaml  # noqa: E402
from neurocomp.compiler import compile  # noqa: E402
from neurocomp.emulator import Emulator  # noqa: E402
from neurocomp.learning.host import HostAdam  # noqa: E402
from neurocomp.tasks import make  # noqa: E402
from neurocomp.tasks.evidence import SMALL_TASK, small_network, with_lr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
READOUT_LR = 0.125


def program(chip: str, adam: float, lr_engine: float, weight_headroom: int = 0, readout_lr: float = READOUT_LR,
            trace_impulse: float | None = None):
    net = small_network(read_yaml(ROOT / "examples" / "eprop_evidence.yaml"))
    if chip == "spinnaker2":
        return compile(net.with_rule_params(update="trial", optimizer="adam", lr=adam), chip, out=io.StringIO())
    extra = {} if trace_impulse is None else {"trace_impulse": trace_impulse}
    net = net.with_rule_params(t_epoch=16, readout_headroom_bits=3, weight_headroom_bits=weight_headroom, **extra)
    return compile(with_lr(net, lr_engine, readout_lr), chip, out=io.StringIO())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chip", default="loihi2", choices=("loihi2", "spinnaker2"))
    ap.add_argument("--adam", type=float, default=5e-3, help="Adam lr (cores: spinnaker2; host: loihi2)")
    ap.add_argument("--lr-engine", type=float, default=4e-2, help="loihi2: the online rule's lr")
    ap.add_argument("--updates", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--learn-float", default="", help="loihi2: learning quantities in float64 (Emulator learn_float)")
    ap.add_argument("--learn-arithmetic", default="chip", choices=("chip", "float"))
    ap.add_argument("--weight-headroom-bits", type=int, default=0,
                    help="loihi2: the hidden projections' weight headroom (< 0: a finer LSB)")
    ap.add_argument("--masters", action="store_true", help="loihi2: the host's Adam on float64 master weights")
    ap.add_argument("--centre-rows", action="store_true", help="loihi2: the host's gradient without its row means")
    ap.add_argument("--readout-lr", type=float, default=READOUT_LR, help="loihi2: the readout's engine lr factor")
    ap.add_argument("--trace-impulse", type=float, help="loihi2: the rule's trace_impulse (trace LSBs per spike)")
    ap.add_argument("--per-update", type=int, default=16, help="trials per update (one copy of the weights each)")
    ap.add_argument("--val-trials", type=int, default=128, help="held-out trials per validation")
    a = ap.parse_args(argv)
    prog = program(a.chip, a.adam, a.lr_engine, a.weight_headroom_bits, a.readout_lr, a.trace_impulse)
    kw = {"learn_arithmetic": a.learn_arithmetic}
    kw |= {"learn_float": tuple(a.learn_float.split(","))} if a.learn_float else {}
    task = make("evidence-accumulation", seed=a.seed, batch=a.per_update, **SMALL_TASK)
    val = make("evidence-accumulation", seed=10_000 + a.seed, batch=a.val_trials, **SMALL_TASK)
    emu = Emulator(prog, batch=a.per_update, seed=a.seed, **kw)
    judge = Emulator(prog, batch=a.val_trials, seed=a.seed, **kw)
    target = "out.error/target" if any(p.name == "out.error" for p in prog.populations) else "out/target"
    adam = None
    if a.chip == "loihi2":
        adam = HostAdam(emu, a.adam, seed=a.seed, masters=a.masters, centre_rows=a.centre_rows)
    lr = {n: a.lr_engine * (a.readout_lr if n.endswith("->out") else 1.0) for n in emu.plastic}
    print(f"evidence-accumulation (3 cues, 750 steps), 20 LIF + 20 ALIF on {a.chip}: Adam {a.adam:g}"
          + (f", engine lr {a.lr_engine:g}, learn_float {a.learn_float or '()'}, {a.learn_arithmetic}"
                                 f"{', float masters' if a.masters else ''}{', rows centred' if a.centre_rows else ''}"
             if adam else ""),
          flush=True)  # fmt: skip
    c0 = time.process_time()
    for it in range(a.updates):
        t = task.sample(it)
        emu.reset(keep_weights=True)
        emu.run(t.steps, inputs={"in": t.inputs, target: t.targets}, learn=True)
        if adam is not None:
            adam.step(emu, lr)
        if it % 10 == 0 or it == a.updates - 1:
            for n, syn in emu.plastic.items():
                judge.plastic[n].engine.state["w"][...] = syn.engine.state["w"][0]
            judge.reset(keep_weights=True)
            err = val.score(judge.run(val.steps, inputs={"in": val.inputs}, record=["v"])["out/v"].astype(np.float64))
            cpu = time.process_time() - c0
            print(f"  update {it:3d}: validation error {100 * err:.1f} % ({cpu:.1f} s CPU)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
