"""``check`` for Bourdoukan & Deneve's balanced network on ``balanced-oscillator`` (the task's
network; the model named on the command line is the rule, ``balanced``).

Levels, from the same network (:class:`neurocomp.rules.balanced.Balanced`, seed ``seed``)
through the task's fixed phases (the fast rule; the host's fit of the readout decoder to the
level's learned fast weights; then the slow rule in stages of decaying rate):

1. **reference**: both rules in float64;
2. **lowered-float**: what the profile runs (:func:`neurocomp.rules.balanced.lower`) in
   float64: the rules themselves on programmable cores, the sum-of-products engine's rules
   in float64 on loihi2;
3. **lowered-fixed**: the same in the chip's arithmetic: float32 on the cores, the engine's
   fixed point (V as a 7-bit graded y2) on loihi2.

Each level's curve is the test phase's autonomous error (feedback off) after each slow stage;
the CV of the ISIs and the error with the feedback on are in ``final``. The network dynamics
are float64 at every level.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import NeurocompError, Problem
from .check import CheckError, CheckReport, _Progress

MODELS = ("balanced",)
TASKS = ("balanced-oscillator",)


def learner(level: str, low, b, prof, seed: int):
    """The learner of ``level`` for lowering ``low`` on network ``b``."""
    if level == "reference" or (low.variant == "float32" and level == "lowered-float"):
        return b.learner()
    if low.variant == "float32":
        return b.learner(np.float32)
    return b.engine_learner(prof, seed, **({"arithmetic": "float"} if level == "lowered-float" else {}))


def run(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots) -> CheckReport:
    """:func:`neurocomp.analysis.check.check`'s entry for ``balanced-oscillator``."""
    from pathlib import Path

    from ..tasks import make
    from .check import ITERATIONS, _write

    if steps is not None or iterations != ITERATIONS:
        raise CheckError([Problem("check", f"{task}'s protocol has fixed phases (fast_steps, slow_steps, "
                                  "test_steps); --steps and --iterations do not apply")])  # fmt: skip
    rep = check_balanced(str(model), task, make(task, seed=seed), profile=profile, seed=seed, progress=progress)
    if out is not None:
        _write(rep, Path(out), plots)
    return rep


def check_balanced(model: str, task: str, tk, *, profile: str, seed: int, progress: bool | None) -> CheckReport:
    """The balanced network's check (see the module docstring)."""
    from ..profiles import load_profile
    from ..rules.balanced import Balanced, lower, lower_engine

    if model not in MODELS:
        raise CheckError([Problem("model", f"{task} defines its network (a balanced LIF network); name the rule, "
                                  f"'balanced', as the model, not {model!r}")])  # fmt: skip
    prof = load_profile(profile)
    cfg = dict(tk.config)
    t_start = time.perf_counter()
    try:
        low = lower(prof, int(cfg["n"]))
    except NeurocompError as exc:
        raise CheckError(exc.problems) from None
    levels = ("reference", "lowered-float", "lowered-fixed")
    bar = _Progress(len(levels), sys.stderr.isatty() if progress is None else progress)
    rep = CheckReport(config={
        "model": model, "profile": profile, "task": task, "seed": seed, "iterations": int(cfg["slow_stages"]),
        "steps": tk.steps,
        "align": 0, "tail": 1, "metric": tk.metric_name, "rule": "balanced", "variant": low.variant, "params": cfg,
        "dt_ms": tk.dt_ms,
    })  # fmt: skip
    rep.notes += [
        *low.notes,
        "one iteration is one slow stage (the fast phase comes first); the metric is the test phase's autonomous "
        "error (feedback off, lower is better)",
        "the network's dynamics are float64 at every level: the levels differ in the learning path",
    ]
    if low.variant == "engine":
        rep.notes += lower_engine(prof, cfg, float(cfg["eta_slow"]), seed=seed)[2]
    rep.timing["levels_s"] = {}
    last = {}
    for lv in levels:
        t0, b = time.perf_counter(), Balanced(tk, seed)
        ln = learner(lv, low, b, prof, seed)
        b.train(ln, (0,))
        curve = []
        for k in range(1, len(b.phases)):
            b.train(ln, (k,))
            curve.append(b.test(ln)["error"])
        auto, fb = b.test(ln), b.test(ln, feedback=True)
        bar(lv)
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.curves[lv] = {tk.metric_name: curve}
        rep.final[lv] = {tk.metric_name: auto["error"], "first": curve[0], "cv_isi": auto["cv_isi"],
                         "cv2_isi": auto["cv2_isi"], "rate_hz": auto["rate_hz"],
                         "error_with_feedback": fb["error"]}  # fmt: skip
        last[lv] = auto["xh"]
    d = last["lowered-float"] - last["lowered-fixed"]
    rep.spikes["readout, lowered-float vs lowered-fixed (test phase)"] = {
        "rms_difference": float(np.sqrt(np.mean(d**2))),
        "target_rms": float(np.sqrt(np.mean(np.asarray(tk.targets)[-len(d):] ** 2))),
    }
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep
