"""``check`` for the balanced network with a nonlinear basis (Alemi et al. 2018) on
``balanced-bistable`` (the task's network; the model named on the command line is the rule,
``balanced-basis``).

Levels, from the same network (:class:`neurocomp.rules.balanced_basis.BasisBalanced`, seed
``seed``) through the task's learning stages:

1. **reference**: the rule in float64;
2. **lowered-float**: what the profile runs (:func:`neurocomp.rules.balanced_basis.lower`) in
   float64: the rule itself on programmable cores, the engine's rule in float64 on loihi2;
3. **lowered-fixed**: the same in the chip's arithmetic: float32 on the cores, the engine's
   fixed point (the epoch's mean feedback current as a 7-bit graded y3, the basis as graded
   pre spikes on even 7-bit levels) on loihi2.

Each level's curve is the test phase's autonomous error (feedback off) after each learning
stage; ``final`` adds the error after deleting the task's ``delete_fraction`` of the neurons,
the error with the feedback on and the CV of the ISIs. The network dynamics are float64 at
every level.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import NeurocompError, Problem
from .check import CheckError, CheckReport, _Progress

MODELS = ("balanced-basis",)
TASKS = ("balanced-bistable",)


def learner(level: str, low, b, cfg: dict, prof, seed: int):
    """The learner of ``level`` for lowering ``low`` on network ``b``."""
    if level == "reference" or (low.variant == "float32" and level == "lowered-float"):
        return b.learner()
    if low.variant == "float32":
        return b.learner(np.float32)
    kw = {"arithmetic": "float"} if level == "lowered-float" else {}
    return b.engine_learner(prof, seed, **kw)


def run(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots) -> CheckReport:
    """:func:`neurocomp.analysis.check.check`'s entry for ``balanced-bistable``."""
    from pathlib import Path

    from ..tasks import make
    from .check import ITERATIONS, _write

    if steps is not None or iterations != ITERATIONS:
        raise CheckError([Problem("check", f"{task}'s protocol has fixed phases (slow_steps, test_steps); "
                                  "--steps and --iterations do not apply")])  # fmt: skip
    rep = check_basis(str(model), task, make(task, seed=seed), profile=profile, seed=seed, progress=progress)
    if out is not None:
        _write(rep, Path(out), plots)
    return rep


def check_basis(model: str, task: str, tk, *, profile: str, seed: int, progress: bool | None) -> CheckReport:
    """The basis network's check (see the module docstring)."""
    from ..profiles import load_profile
    from ..rules.balanced_basis import BasisBalanced, lower, lower_engine

    if model not in MODELS:
        why = (f"{task} defines its network (a balanced LIF network with a basis population); name the rule, "
               f"'balanced-basis', as the model, not {model!r}")  # fmt: skip
        raise CheckError([Problem("model", why)])
    prof = load_profile(profile)
    cfg = dict(tk.config)
    t_start = time.perf_counter()
    try:
        low = lower(prof, int(cfg["n"]), int(cfg["basis_side"]) ** 2)
    except NeurocompError as exc:
        raise CheckError(exc.problems) from None
    levels = ("reference", "lowered-float", "lowered-fixed")
    bar = _Progress(len(levels), sys.stderr.isatty() if progress is None else progress)
    rep = CheckReport(config={
        "model": model, "profile": profile, "task": task, "seed": seed, "iterations": int(cfg["slow_stages"]),
        "steps": tk.steps,
        "align": 0, "tail": 1, "metric": tk.metric_name, "rule": "balanced-basis", "variant": low.variant,
        "params": cfg, "dt_ms": tk.dt_ms,
    })  # fmt: skip
    rep.notes += [
        *low.notes,
        "one iteration is one learning stage; the metric is the test phase's autonomous error (feedback off, lower "
        "is better); 'deleted' is the same after removing a seeded delete_fraction of the neurons",
        "the network's dynamics are float64 at every level: the levels differ in the learning path",
    ]
    if low.variant == "engine":
        rep.notes += lower_engine(prof, cfg, float(cfg["eta_slow"]), seed=seed, factored=bool(cfg["error_units"]))[2]
    rep.timing["levels_s"] = {}
    last = {}
    frac = float(cfg["delete_fraction"])
    for lv in levels:
        t0, b = time.perf_counter(), BasisBalanced(tk, seed)
        ln = learner(lv, low, b, cfg, prof, seed)
        curve = []
        for k in range(len(b.phases)):
            b.train(ln, (k,))
            curve.append(b.test(ln)["error"])
        auto, fb = b.test(ln), b.test(ln, feedback=True)
        net, ld = b.delete(ln, frac, seed)
        gone = b.test(ld, net=net)
        bar(lv)
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.curves[lv] = {tk.metric_name: curve}
        rep.final[lv] = {tk.metric_name: auto["error"], "first": curve[0], "deleted": gone["error"],
                         "cv_isi": auto["cv_isi"], "cv2_isi": auto["cv2_isi"], "rate_hz": auto["rate_hz"],
                         "error_with_feedback": fb["error"]}  # fmt: skip
        last[lv] = auto["xh"]
    d = last["lowered-float"] - last["lowered-fixed"]
    rep.spikes["readout, lowered-float vs lowered-fixed (test phase)"] = {
        "rms_difference": float(np.sqrt(np.mean(d**2))),
        "target_rms": float(np.sqrt(np.mean(np.asarray(tk.targets)[-len(d) :] ** 2))),
    }
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep
