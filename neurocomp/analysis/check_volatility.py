"""``check`` for the VKF gain (``vkf``, Piray & Daw) on ``volatile-reward``.

The predictor is the task's (one weight per run, :mod:`neurocomp.tasks.volatile_reward`), so the
model named on the command line is the rule, ``vkf``. Levels, on the same rewards, on a
sum-of-products engine with graded third factors (loihi2):

1. **reference**: :class:`~neurocomp.rules.volatility.VkfPredictor`, float64, the rule as stated;
2. **lowered-float**: :class:`~neurocomp.rules.volatility.VkfOnEngine` in float: the weight on
   the engine in float, the filter in float64;
3. **lowered-fixed**: the same with the engine's fixed arithmetic and the neuron's integer filter
   (:class:`~neurocomp.rules.volatility.VkfFixed`, its reciprocal table), with the engine's
   attribution rows (``graded`` puts the filter back in float as well).

On programmable cores (spinnaker2) the rule runs as stated: reference and lowered-float in
float64, lowered-fixed in float32, the cores' arithmetic (no attribution).

An iteration is one trial (one reward per run); the metric is the squared prediction error
against the hidden mean, averaged over the runs, and its final value is the mean over every
trial (the blocks alternate, so no tail stands for the whole). Two more rows: the best fixed
learning rate of a grid, in float (``VkfPredictor(fixed_rate=...)``) and lowered-fixed: the
baselines the adaptive gain must beat. There is no teacher-forced alignment: the gain's state
is the filter's, compared through the curves.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np

from ..errors import Problem
from ..rules import volatility as vk
from ..tasks import volatile_reward as task_mod
from .check import CheckError, CheckReport, _attribution, _Progress
from .check_task_rule import attribution_rows, engine_rows, rule_profile, written

TASKS = (task_mod.NAME,)
RATES = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))  # the fixed learning rates tried


def params(cfg) -> dict:
    return {k: cfg[k] for k in vk.DEFAULTS}


def make_level(level: str, profile, cfg, seed: int, fixed_rate: float | None = None, **over):
    runs = int(cfg["runs"])
    if level == "reference" or (profile.learning.kind == "programmable" and level == "lowered-float"):
        return vk.VkfPredictor(runs, params(cfg), fixed_rate=fixed_rate)
    if profile.learning.kind == "programmable":  # lowered-fixed: the cores' float32
        return vk.VkfPredictor(runs, params(cfg), fixed_rate=fixed_rate, dtype=np.float32)
    arith = "float" if level == "lowered-float" else "fixed"
    return vk.VkfOnEngine(profile, runs, params(cfg), weight_max=cfg["weight_max"], seed=seed, arithmetic=arith,
                          fixed_rate=fixed_rate, **over)  # fmt: skip


def curve(net, tk) -> np.ndarray:
    """The squared prediction error of each trial, averaged over the runs."""
    r, x = tk.inputs[:, :, 0], tk.targets[:, :, 0]
    return np.array([np.mean((net.trial(r[t]) - x[t]) ** 2) for t in range(r.shape[0])])


def best_fixed_rate(tk) -> tuple[float, float]:
    """The grid's best fixed learning rate in float, and its error."""
    errs = {a: float(curve(vk.VkfPredictor(int(tk.config["runs"]), fixed_rate=a), tk).mean()) for a in RATES}
    a = min(errs, key=errs.get)
    return float(a), errs[a]


def check_volatility(model: str, task: str, tk, *, profile: str, seed: int, rows: Sequence[str],
                     progress: bool | None) -> CheckReport:  # fmt: skip
    """The check of the module docstring; called by :func:`neurocomp.analysis.check.check`."""
    prof, cores = rule_profile("vkf", model, task, profile, "its predictor")
    cfg = dict(tk.config)
    t_start = time.perf_counter()
    rows_attr = engine_rows(rows, cores)
    bar = _Progress(5 + len(rows_attr), sys.stderr.isatty() if progress is None else progress)
    n = tk.steps
    rep = CheckReport(
        config={
            "model": "vkf", "profile": profile, "task": task, "seed": seed, "iterations": n, "steps": 1, "align": 0,
            "tail": n, "metric": tk.metric_name, "rule": "vkf", "params": cfg, "dt_ms": None,
        }
    )  # fmt: skip
    fixed = make_level("lowered-fixed", prof, cfg, seed)
    if cores:
        rep.notes.append(
            "reference and lowered-float: VkfPredictor (float64, the rule as stated); lowered-fixed: the same in "
            f"float32, the arithmetic of {profile}'s programmable cores (filter and prediction); no attribution"
        )
    else:
        rep.notes += [
            "reference: VkfPredictor (float64); lowered-float and lowered-fixed: VkfOnEngine (the weight on "
            f"{profile}'s engine; the filter in float64, or in the neuron's integers with its reciprocal table)",
            *fixed.notes,
        ]
    rate, _ = best_fixed_rate(tk)
    bar("best fixed rate")
    runs = {lv: make_level(lv, prof, cfg, seed) for lv in ("reference", "lowered-float")}
    runs["lowered-fixed"] = fixed
    for lv, base in (("reference", "float"), ("lowered-fixed", "lowered-fixed")):
        runs[f"fixed rate {rate:g}, {base}"] = make_level(lv, prof, cfg, seed, fixed_rate=rate)
    runs.update({row: make_level("lowered-fixed", prof, cfg, seed, **kw) for row, kw in rows_attr})
    m = tk.metric_name
    rep.timing["levels_s"] = {}
    for lv, net in runs.items():
        t0 = time.perf_counter()
        c = curve(net, tk)
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.curves[lv] = {"loss": c.tolist(), m: c.tolist()}
        rep.final[lv] = {m: float(c.mean()), "loss": float(c.mean()), "first": float(c[0])}
        bar(lv)
    if rows_attr:
        rep.attribution = _attribution(rep.final, [r for r, _ in rows_attr], m)
    for lv, base in (("reference", "float"), ("lowered-fixed", "lowered-fixed")):
        gain, best = rep.final[lv][m], rep.final[f"fixed rate {rate:g}, {base}"][m]
        rep.notes.append(f"{lv}: the adaptive gain's error is {gain / best:.3f}x the best fixed rate's ({rate:g})")
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep


def run(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots) -> CheckReport:
    """:func:`check_volatility` with ``check``'s arguments (``iterations`` and ``steps``: the
    task's trials)."""
    from ..tasks import make

    rows = attribution_rows(task, attribution)
    if iterations < 1:
        raise CheckError([Problem("check", f"iterations must be >= 1, got {iterations}")])
    rep = check_volatility(str(model), task, make(task, seed=seed, trials=iterations), profile=profile, seed=seed,
                           rows=rows, progress=progress)  # fmt: skip
    return written(rep, out, plots)
