"""``check`` for spiking RLS on ``kimchow-rls`` (Kim & Chow's theta-neuron network, the task's).

The model named on the command line is the rule: ``rls`` (learning on the chip) or
``rls-host`` (host-assisted: RLS on the host writing the chip's weights every update).
Levels, from the same network (:class:`neurocomp.rules.rls.KimChow`, seed ``seed``) on the
same trial, one iteration = one training loop, scored by a test run from fresh phases:

1. **reference**: :class:`~neurocomp.rules.rls.Rls` in float64, the example code's rule;
2. **lowered-float**: what the profile runs (:func:`neurocomp.rules.rls.lower`) in float64:
   exact RLS on programmable cores (equal to the reference), LMS on a sum-of-products engine,
   unrounded host RLS in host mode;
3. **lowered-fixed**: the same in the chip's arithmetic: RLS in float32 (spinnaker2), LMS on
   the sum-of-products engine in its fixed point (:class:`~neurocomp.rules.rls.EngineLms`),
   host RLS with the weights rounded onto the chip's grid.

Alignment is teacher-forced per update (:func:`_alignment`). Attribution (LMS only): the fixed
engine with one of its quantities back in float64 (``weights``, ``traces``, ``graded``: the
error ``y2``, ``products``), or round-to-nearest. The network dynamics are float64 at every
level (no chip has a theta neuron).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import NeurocompError, Problem
from .check import CheckError, CheckReport, _attribution, _cos, _Progress, _rel, alignment_summary, requested_rows

MODELS = ("rls", "rls-host")
# the LMS attribution rows: the engine's quantities (graded: the error y2) and its rounding
LMS_ROWS = ("weights", "traces", "graded", "products", "nearest")
LMS_ETA = 0.1  # stable for the |r|^2 of N <= 500 (at N = 200, 1 diverges)
WEIGHT_RANGE = 2.0  # the reference's trained weights stay below 1.6 at N = 200 and 500


def learner(level: str, low, kc, tk, prof, seed: int, **engine_kw):
    """The learner of ``level`` (``reference``, ``lowered-float``, ``lowered-fixed``, or an
    attribution row given by ``engine_kw``) for lowering ``low`` on network ``kc``."""
    from ..rules.rls import EngineLms, HostRls, Rls, chip_weight_grid

    cfg, w0, valid = tk.config, kc.wp0, kc.valid
    lam = float(cfg["lam"])
    if level == "reference" or (low.variant == "rls" and level == "lowered-float"):
        return Rls(w0, valid, lam)
    if low.dtype == "float32":
        return Rls(w0, valid, lam, dtype=np.float32)
    if low.dtype == "float64":  # host-assisted
        return HostRls(w0, valid, lam, *chip_weight_grid(prof, WEIGHT_RANGE))
    rule, sc, _ = lms_rule(prof, tk, seed)
    kw = {"arithmetic": "float"} if level == "lowered-float" else engine_kw
    return EngineLms(kc.w0, kc.w0 != 0, prof, rule, sc, kc.idx, kc.valid, **kw)


def lms_rule(prof, tk, seed: int):
    """:func:`~neurocomp.rules.rls.lower_lms` for the task: the error's range is the power of two
    above twice the largest target drive."""
    from ..rules.rls import lower_lms

    cfg = tk.config
    e_range = float(2.0 ** np.ceil(np.log2(2 * float(np.abs(tk.targets).max()))))
    return lower_lms(prof, float(cfg.get("lms_eta", LMS_ETA)), float(cfg["b"]), float(cfg["dt"]),
                     int(cfg["learn_every"]), weight_range=WEIGHT_RANGE, e_range=e_range, seed=seed)  # fmt: skip


TASKS = ("kimchow-rls",)


def run(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots) -> CheckReport:
    """:func:`neurocomp.analysis.check.check`'s entry for the tasks this module checks: the report,
    written to ``out`` when given."""
    from pathlib import Path

    from .check import ITERATIONS, _write

    rep = check_task(model, task, iterations, seed, align, attribution, steps, profile, progress,
                     default_iterations=iterations == ITERATIONS)  # fmt: skip
    if out is not None:
        _write(rep, Path(out), plots)
    return rep


def check_task(model: str, task: str, iterations: int, seed: int, align: int, attribution, steps, profile: str,
               progress: bool | None, default_iterations: bool) -> CheckReport:  # fmt: skip
    """:func:`neurocomp.analysis.check.check`'s entry for ``kimchow-rls``: check's default
    iteration count (trials of a trial-based task) becomes the task's ``loops``."""
    from ..tasks import make

    if steps is not None:
        raise CheckError([Problem("check", f"{task}'s trial has a fixed length (train_steps); --steps does not apply")])
    if iterations < 1 or align < 0:
        raise CheckError([Problem("check", f"iterations must be >= 1 and align >= 0, got {iterations}, {align}")])
    tk = make(task, seed=seed)
    rep = check_rls(str(model), task, tk, profile=profile, seed=seed, align=align, rows=attribution, progress=progress,
                    iterations=int(tk.config["loops"]) if default_iterations else iterations)  # fmt: skip
    if default_iterations:
        rep.notes.append(f"iterations: the task's {tk.config['loops']} loops (check's default counts trials)")
    return rep


def check_rls(model: str, task: str, tk, *, profile: str, iterations: int, seed: int, align: int,
              rows: Sequence[str] | bool, progress: bool | None) -> CheckReport:  # fmt: skip
    """Spiking RLS's check (see the module docstring)."""
    from ..profiles import load_profile
    from ..rules.rls import KimChow, lower

    if model not in MODELS:
        raise CheckError([Problem("model", f"{task} defines its network (Kim & Chow's theta neurons); name the "
                                  f"rule, {' or '.join(map(repr, MODELS))}, as the model, not {model!r}")])  # fmt: skip
    prof = load_profile(profile)
    t_start = time.perf_counter()
    kc = KimChow(tk, seed)
    try:
        low = lower(prof, kc.n, kc.k_max, float(tk.config["p"]), "host" if model == "rls-host" else "chip")
    except NeurocompError as exc:
        raise CheckError(exc.problems) from None
    rows = requested_rows(rows, LMS_ROWS, task)
    if low.variant != "lms":
        rows = ()
    rows_attr = [(f"fixed, {q} in float", {"float_quantities": (q,)}) for q in rows if q != "nearest"]
    if "nearest" in rows:
        rows_attr.append(("fixed, round-to-nearest", {"rounding": "nearest"}))
    levels = ["reference", "lowered-float", "lowered-fixed", *(r for r, _ in rows_attr)]
    bar = _Progress(align + iterations * len(levels), sys.stderr.isatty() if progress is None else progress)
    rep = CheckReport(config={
        "model": model, "profile": profile, "task": task, "seed": seed, "iterations": iterations,
        "steps": tk.steps, "align": align, "tail": 1, "metric": tk.metric_name, "rule": "rls",
        "variant": low.variant, "params": dict(tk.config), "dt_ms": tk.dt_ms,
    })  # fmt: skip
    rep.notes += [
        *low.notes,
        "one iteration is one training loop over the trial; the metric (mean Pearson r of drive and target, higher "
        "is better) is scored by a test run from fresh phases",
        "the theta-neuron dynamics are float64 at every level: the levels differ in the learning path",
    ]
    if low.variant == "lms":
        rule, _, notes = lms_rule(prof, tk, seed)
        rep.notes += [f"lowered: dw = {rule.dw} (eta {tk.config.get('lms_eta', LMS_ETA)})", *notes]
    t0 = time.perf_counter()
    rep.alignment = _alignment(tk, seed, prof, low, align, bar)
    rep.timing["alignment_s"] = time.perf_counter() - t0
    over = dict(rows_attr)
    rep.timing["levels_s"], rep.timing["learning_share"] = {}, {}
    last = {}
    for lv in levels:
        t0, net = time.perf_counter(), KimChow(tk, seed)
        ln = learner(lv, low, net, tk, prof, seed, **over.get(lv, {}))
        curve = []
        for k in range(iterations):
            net.train(ln, 1)
            last[lv] = net.test(ln.weights())
            curve.append(tk.score(last[lv][:, None]))
            bar(f"{lv} {k + 1}/{iterations}")
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.timing["learning_share"][lv] = net.seconds["learning"] / max(1e-12, sum(net.seconds.values()))
        rep.curves[lv] = {tk.metric_name: curve}
        rep.final[lv] = {tk.metric_name: curve[-1], "first": curve[0]}
    if rows_attr:
        rep.attribution = _attribution(rep.final, [r for r, _ in rows_attr], tk.metric_name)
    off = int(tk.config["stim_off"])
    d = (last["lowered-float"] - last["lowered-fixed"])[off:]
    rep.spikes["drives, lowered-float vs lowered-fixed (test run after learning)"] = {
        "rms_difference": float(np.sqrt(np.mean(d**2))),
        "target_rms": float(np.sqrt(np.mean(np.asarray(tk.targets)[off:] ** 2))),
    }
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep


def _alignment(tk, seed: int, prof, low, align: int, bar) -> dict[str, Any]:
    """Teacher-forced: along the reference's first ``align`` updates, lowered-float and
    lowered-fixed start from its weights and take one update on the same network state; their
    ``dW`` against the reference's (cosine, relative norm error). Exact learners start from the
    reference's ``P`` too and update on its ``r`` and targets; an engine's traces follow the
    reference's spikes all along, its weights are set to the reference's at each epoch's start
    and it receives the reference's errors."""
    from ..rules.rls import KimChow, Rls

    kc = KimChow(tk, seed)
    ref = learner("reference", low, kc, tk, prof, seed)
    others = {lv: learner(lv, low, kc, tk, prof, seed) for lv in ("lowered-float", "lowered-fixed")}
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {lv: {"W": []} for lv in others}
    every, off = int(tk.config["learn_every"]), int(tk.config["stim_off"])
    start: dict[str, np.ndarray] = {}

    def done() -> int:
        return len(rows["lowered-fixed"]["W"])

    def set_weights(other, w: np.ndarray) -> None:
        if hasattr(other, "engine"):
            m = np.zeros(other.engine.weights.shape[1:])
            m[kc.rows[kc.valid], kc.idx[kc.valid]] = w[kc.valid] / other.sc.w_lsb
            if other.engine.var_fixed["w"]:
                m = np.round(m)
            other.engine.set_state({"w": m[None]}, None)
        else:
            other.w = w.astype(other.w.dtype)

    def step(t: int, spikes: np.ndarray, error: np.ndarray | None) -> bool:
        i = t - kc.t
        if (t - 1) % every == 0 and done() < align:  # an epoch starts: the engines from the reference's weights
            for lv, other in others.items():
                if hasattr(other, "engine"):
                    set_weights(other, ref.w)
                    start[lv] = other.weights()
        for other in others.values():
            if hasattr(other, "engine"):
                other.step(t, spikes, error)
        if error is None or i % every or i <= off + 1:
            return False
        r, f = np.where(kc.valid, kc.net.r[kc.idx], 0.0), kc.f[i - 1]
        w0, P0 = ref.w.copy(), ref.P.copy()
        ref.update(r, f)
        if done() < align:
            dw_ref = ref.w - w0
            for lv, other in others.items():
                if not hasattr(other, "engine"):
                    if isinstance(other, Rls):
                        other.P[...] = P0
                    set_weights(other, w0)
                    start[lv] = other.weights()
                    other.update(r, f)
                dw = other.weights() - start[lv]
                rows[lv]["W"].append((_cos(dw, dw_ref), _rel(dw, dw_ref)))
            bar(f"alignment {done()}/{align}")
        return True

    probe = SimpleNamespace(weights=lambda: ref.weights(), step=step)  # drives KimChow.train step by step
    while done() < align:
        kc.train(probe, 1)
    return alignment_summary(align, rows)
