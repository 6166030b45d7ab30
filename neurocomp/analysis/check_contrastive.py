"""``check`` for contrastive Hebbian learning on ``chl-xor``.

The network is the rule's (:class:`~neurocomp.rules.contrastive.Contrastive`, sized by the
task), so the model named on the command line is the rule, ``chl``. Levels, from the same
initial weights (the fixed level from them rounded to its grid), on a sum-of-products engine
with graded third factors (loihi2):

1. **reference**: :class:`~neurocomp.rules.contrastive.Contrastive`, float64, the rule as stated;
2. **lowered-float**: :class:`~neurocomp.rules.contrastive.ContrastiveOnEngine`, the lowered
   rule on the engine in float arithmetic;
3. **lowered-fixed**: the same in the engine's fixed arithmetic, with the engine's attribution
   rows (one learning quantity back in float, or round-to-nearest).

On programmable cores (spinnaker2) the rule runs as stated: reference and lowered-float in
float64, lowered-fixed in float32, the cores' arithmetic (no attribution).

The settling stays float64 at every level (a chip runs the spiking network; this isolates the
learning path, as the RFLO rate check does). Beside the stages of :mod:`.check_rate` (the
free-phase outputs' RMS difference in place of spike agreement) the report notes each level's
weight symmetry after learning: the pairs with ``W_ij != W_ji`` and the largest difference.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import Problem
from ..rules import contrastive as chl
from ..tasks import contrastive_xor as task_mod
from .check import CheckError, CheckReport, _attribution, _cos, _Progress, _rel, alignment_summary
from .check_task_rule import attribution_rows, engine_rows, rule_profile, written

TASKS = (task_mod.NAME,)


def make_level(level: str, profile, cfg, seed: int, **over):
    """One level's network (see the module docstring); ``over``: an attribution row's engine
    options."""
    kw = dict(lr=cfg["lr"], seed=seed, init_std=cfg["init_std"])
    if level == "reference" or (profile.learning.kind == "programmable" and level == "lowered-float"):
        return chl.Contrastive(2, cfg["n_hidden"], 1, **kw)
    if profile.learning.kind == "programmable":  # lowered-fixed: the cores' float32
        return chl.Contrastive(2, cfg["n_hidden"], 1, dtype=np.float32, **kw)
    arith = "float" if level == "lowered-float" else "fixed"
    return chl.ContrastiveOnEngine(profile, 2, cfg["n_hidden"], 1, weight_max=cfg["weight_max"], arithmetic=arith,
                                   **kw, **over)  # fmt: skip


def epoch(net, tk) -> tuple[float, float]:
    """One pass over the patterns, each learned in turn; then the task's metric and the mean
    squared error of the free phase's outputs."""
    x, y = tk.inputs[0], tk.targets[0]
    for p in range(x.shape[0]):
        net.trial(x[p], y[p])
    out = np.array([net.predict(x[p]) for p in range(x.shape[0])])
    return tk.score(out[None]), float(np.mean((out - y) ** 2))


def asymmetry(net) -> tuple[int, float]:
    """The pairs with ``W_ij != W_ji`` and the largest ``|W_ij - W_ji|`` (model units)."""
    d = np.abs(net.W - net.W.T)
    return int(np.count_nonzero(np.triu(d) > 0)), float(d.max())


def check_contrastive(model: str, task: str, tk, *, profile: str, iterations: int, seed: int, align: int,
                      rows: Sequence[str], progress: bool | None) -> CheckReport:  # fmt: skip
    """The check of the module docstring; called by :func:`neurocomp.analysis.check.check`."""
    prof, cores = rule_profile("chl", model, task, profile, "its network (a symmetric 2-h-1 network)")
    cfg = dict(tk.config)
    t_start = time.perf_counter()
    rows_attr = engine_rows(rows, cores)
    bar = _Progress(align + iterations * (3 + len(rows_attr)), sys.stderr.isatty() if progress is None else progress)
    tail = max(1, min(10, iterations // 5 or 1))
    rep = CheckReport(
        config={
            "model": "chl", "profile": profile, "task": task, "seed": seed, "iterations": iterations, "steps": 1,
            "align": align, "tail": tail, "metric": tk.metric_name, "rule": "chl", "params": cfg, "dt_ms": None,
        }
    )  # fmt: skip
    fixed = make_level("lowered-fixed", prof, cfg, seed)
    if cores:
        rep.notes.append(
            "reference and lowered-float: Contrastive (float64, the rule as stated); lowered-fixed: the same rule in "
            f"float32, the arithmetic of {profile}'s programmable cores (settling, weights and updates); no "
            "attribution (float32 everywhere)"
        )
    else:
        rep.notes += [
            "reference: Contrastive (float64, the rule as stated); lowered-float and lowered-fixed: "
            f"ContrastiveOnEngine, the lowered rule on {profile}'s engine in float and fixed arithmetic; the settling "
            "in float64",
            *fixed.notes,
        ]
    t0 = time.perf_counter()
    rep.alignment = _alignment(prof, tk, cfg, seed, align, bar)
    rep.timing["alignment_s"] = time.perf_counter() - t0
    runs = {"reference": make_level("reference", prof, cfg, seed),
            "lowered-float": make_level("lowered-float", prof, cfg, seed), "lowered-fixed": fixed}  # fmt: skip
    runs.update({row: make_level("lowered-fixed", prof, cfg, seed, **kw) for row, kw in rows_attr})
    m = tk.metric_name
    rep.timing["levels_s"] = {}
    for lv, net in runs.items():
        t0, curve, loss = time.perf_counter(), [], []
        for k in range(iterations):
            e, mse = epoch(net, tk)
            curve.append(e), loss.append(mse)
            bar(f"{lv} {k + 1}/{iterations}")
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.curves[lv] = {"loss": loss, m: curve}
        rep.final[lv] = {m: float(np.mean(curve[-tail:])), "loss": float(np.mean(loss[-tail:])), "first": curve[0]}
        pairs, worst = asymmetry(net)
        rep.notes.append(
            f"{lv}: {pairs} weight pairs with W_ij != W_ji after learning (largest difference {worst:.3g})"
        )
    if rows_attr:
        rep.attribution = _attribution(rep.final, [r for r, _ in rows_attr], m)
    x = tk.inputs[0]
    d = np.array([runs["lowered-float"].predict(p) - runs["lowered-fixed"].predict(p) for p in x])
    rep.spikes["free-phase outputs, lowered-float vs lowered-fixed (after learning)"] = {
        "rms_difference": float(np.sqrt(np.mean(d**2))),
        "target_rms": float(np.sqrt(np.mean(tk.targets**2))),
    }
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep


def _alignment(prof, tk, cfg, seed: int, align: int, bar) -> dict[str, Any]:
    """Teacher-forced: for each of the first ``align`` epochs, lowered-float and lowered-fixed
    start from the reference's weights and learn one epoch; their ``dW`` against the
    reference's (cosine, relative norm error)."""
    ref = make_level("reference", prof, cfg, seed)
    others = {lv: make_level(lv, prof, cfg, seed) for lv in ("lowered-float", "lowered-fixed")}
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for k in range(align):
        w0 = ref.W.copy()
        epoch(ref, tk)
        dw_ref = ref.W - w0
        for lv, net in others.items():
            net.set_weights(w0)
            start = net.W.copy()
            epoch(net, tk)
            rows.setdefault(lv, {}).setdefault("W", []).append(
                (_cos(net.W - start, dw_ref), _rel(net.W - start, dw_ref))
            )
        bar(f"alignment {k + 1}/{align}")
    return alignment_summary(align, rows)


def run(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots) -> CheckReport:
    """:func:`check_contrastive` with ``check``'s arguments (its registration point)."""
    from ..tasks import make

    rows = attribution_rows(task, attribution)
    if iterations < 1 or align < 0:
        raise CheckError([Problem("check", f"iterations must be >= 1 and align >= 0, got {iterations}, {align}")])
    if steps not in (None, 1):
        raise CheckError([Problem("check", f"{task} settles each pattern once: steps must be 1, got {steps}")])
    rep = check_contrastive(str(model), task, make(task, seed=seed), profile=profile, iterations=iterations, seed=seed,
                            align=align, rows=rows, progress=progress)  # fmt: skip
    return written(rep, out, plots)
