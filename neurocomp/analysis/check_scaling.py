"""``check`` for presynaptic-dependent scaling (``psd``) and synaptic scaling (``ss``) on
``psd-timing``.

The network is the task's (:class:`~neurocomp.tasks.timing_code.TimingNetwork`), so the model
named on the command line is the rule. Levels, from the same weak weights on the same network,
on a sum-of-products engine (loihi1, loihi2):

1. **reference**: :class:`~neurocomp.rules.scaling.Homeostasis`, float64, the rule as stated;
2. **lowered-float**: :class:`~neurocomp.rules.scaling.HomeostasisOnEngine`, the lowered rule
   (spike counts in the tags as activity averages, one update per trial) on the engine in float
   arithmetic;
3. **lowered-fixed**: the same in the engine's fixed arithmetic, with the engine's attribution
   rows (one learning quantity back in float, or round-to-nearest).

On programmable cores (spinnaker2) the rule runs as stated: reference and lowered-float in
float64, lowered-fixed in float32 (no attribution).

The network's dynamics run in float64 from each level's weights (this isolates the learning
path, as the other rate checks do). An iteration is one trial; the metric is the mean number of
spikes per E cell in the trial, and each level's last trials (the tail) are scored against the task's
targets (recruited cells, most spikes of a cell, latency spread) in the notes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np

from ..errors import Problem
from ..learning.engine import LEARN_QUANTITIES
from ..rules import scaling as sc
from ..tasks import timing_code as task_mod
from .check import ATTRIBUTION_ROWS, CheckError, CheckReport, _attribution, _Progress

TASKS = (task_mod.NAME,)
# the rule's parameters on psd-timing (benchmarks/psd_timing.py trains with these too)
PARAMS = {"lr": 0.05, "w_max": 1.0, "a_goal": 1.0, "tau_a": 4.0, "tag_impulse": 16}


def make_level(level: str, kind: str, profile, net, cfg, seed: int, **over):
    """One level's learner (module docstring); ``over``: an attribution row's engine options."""
    p = {**PARAMS, "trial_steps": cfg["steps"]}
    kw = dict(lr=p["lr"], w_max=p["w_max"], a_goal=p["a_goal"], tau_a=p["tau_a"])
    cores = profile is not None and profile.learning.kind == "programmable"
    if level == "reference" or (cores and level == "lowered-float"):
        return sc.Homeostasis(kind, net.mask, **kw)
    if cores:  # lowered-fixed: the cores' float32
        return sc.Homeostasis(kind, net.mask, dtype=np.float32, **kw)
    arith = "float" if level == "lowered-float" else "fixed"
    return sc.HomeostasisOnEngine(kind, profile, net.mask, p, seed=seed, arithmetic=arith, **over)


def train(learner, net, trials: int, bar, label: str) -> tuple[list[dict], np.ndarray]:
    """``trials`` trials of learning from the network's initial weights: each trial's
    :func:`~neurocomp.tasks.timing_code.summary` and the weights after the last."""
    W = net.initial_weights()
    if isinstance(learner, sc.HomeostasisOnEngine):
        learner.set_weights(W)
        W = learner.W
    out = []
    for k in range(trials):
        s = net.trial(W)
        out.append(task_mod.summary(s))
        W = learner.update(W, s)
        bar(f"{label} {k + 1}/{trials}")
    return out, W


def check_scaling(model: str, task: str, tk, *, profile: str, iterations: int, seed: int, rows: Sequence[str],
                  progress: bool | None) -> CheckReport:  # fmt: skip
    from ..profiles import load_profile
    from ..rules import refusal

    kind = str(model)
    if kind not in sc.KINDS:
        raise CheckError([Problem("model", f"{task} defines its network (E/I cells); name the rule, "
                                  f"{' or '.join(map(repr, sc.KINDS))}, as the model, not {kind!r}")])  # fmt: skip
    prof = load_profile(profile)
    cores = prof.learning.kind == "programmable"
    if not cores and prof.learning.kind != "sum_of_products":
        why = refusal(kind, prof) or f"{profile}'s {prof.learning.kind} engine has no lowering of {kind}"
        raise CheckError([Problem("profile", f"{kind} cannot run on {profile}: {why}")])
    cfg = dict(tk.config)
    net = task_mod.TimingNetwork(cfg, seed)
    t_start = time.perf_counter()
    rows_attr = [] if cores else [(f"fixed, {q} in float", {"float_quantities": (q,)}) for q in rows
                                  if q in LEARN_QUANTITIES]  # fmt: skip
    if "nearest" in rows and not cores:
        rows_attr.append(("fixed, round-to-nearest", {"rounding": "nearest"}))
    bar = _Progress(iterations * (3 + len(rows_attr)), sys.stderr.isatty() if progress is None else progress)
    tail = max(1, min(20, iterations // 5 or 1))
    rep = CheckReport(
        config={
            "model": kind, "profile": profile, "task": task, "seed": seed, "iterations": iterations,
            "steps": cfg["steps"], "align": 0, "tail": tail, "metric": tk.metric_name, "rule": kind,
            "params": {**cfg, **PARAMS}, "dt_ms": 1.0,
        }
    )  # fmt: skip
    fixed = make_level("lowered-fixed", kind, prof, net, cfg, seed)
    rep.notes += [
        f"reference and lowered-float: Homeostasis (float64, the rule as stated); lowered-fixed: the same in float32, "
        f"the arithmetic of {profile}'s programmable cores; the network in float64; no attribution"
        if cores else
        f"reference: Homeostasis (float64, the rule as stated); lowered-float and lowered-fixed: HomeostasisOnEngine, "
        f"the lowered rule on {profile}'s engine in float and fixed arithmetic; the network in float64",
        *getattr(fixed, "notes", []),
        "targets (issue 17): mean spikes per E cell within 10% of a_goal = 1, > 90% recruited, max <= 3, "
        "latency spread > 100 ms; ss (the control) unstable",
    ]
    runs = {lv: make_level(lv, kind, prof, net, cfg, seed) for lv in ("reference", "lowered-float")}
    runs["lowered-fixed"] = fixed
    runs.update({row: make_level("lowered-fixed", kind, prof, net, cfg, seed, **kw) for row, kw in rows_attr})
    m = tk.metric_name
    rep.timing["levels_s"] = {}
    for lv, learner in runs.items():
        t0 = time.perf_counter()
        h, _ = train(learner, net, iterations, bar, lv)
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        mean = [r["mean"] for r in h]
        loss = [abs(x - PARAMS["a_goal"]) for x in mean]
        rep.curves[lv] = {"loss": loss, m: mean}
        rep.final[lv] = {m: float(np.mean(mean[-tail:])), "loss": float(np.mean(loss[-tail:])), "first": mean[0]}
        last = h[-tail:]
        rep.notes.append(
            f"{lv}: over the last {tail} trials {np.mean([r['recruited'] for r in last]):.0%} of E cells recruited, "
            f"at most {max(r['max'] for r in last)} spikes per cell, latency spread "
            f"{np.mean([r['latency_span_ms'] for r in last]):.0f} ms"
        )
    if rows_attr:
        rep.attribution = _attribution(rep.final, [r for r, _ in rows_attr], m)
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep


def run(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots) -> CheckReport:
    """:func:`check_scaling` with ``check``'s arguments (its registration point)."""
    from pathlib import Path

    from ..tasks import make
    from .check import _write, requested_rows

    rows = requested_rows(attribution, ATTRIBUTION_ROWS, task)
    if iterations < 1:
        raise CheckError([Problem("check", f"iterations must be >= 1, got {iterations}")])
    if steps is not None:
        raise CheckError([Problem("check", f"{task} sets its trial length (steps = {task_mod.DEFAULTS['steps']})")])
    rep = check_scaling(str(model), task, make(task, seed=seed), profile=profile, iterations=iterations, seed=seed,
                        rows=rows, progress=progress)  # fmt: skip
    if out is not None:
        _write(rep, Path(out), plots)
    return rep
