"""``check`` for spiking RLS on ``kimchow-rls`` (Kim & Chow's theta-neuron network, the task's).

The model named on the command line is the rule: ``rls`` (learning on the chip) or
``rls-host`` (host-assisted: RLS on the host writing the chip's weights every update).
Levels, from the same network (:class:`neurocomp.rules.rls.KimChow`, seed ``seed``) on the
same trial, one iteration = one training loop, scored by a test run from fresh phases:

1. **reference**: :class:`~neurocomp.rules.rls.Rls` in float64, the example code's rule;
2. **lowered-float**: what the profile runs (:func:`neurocomp.rules.rls.lower`) in float64:
   exact RLS on programmable cores (equal to the reference), LMS on a sum-of-products engine,
   unrounded host RLS in host mode;
3. **lowered-fixed**: the same in the chip's arithmetic: RLS in float32 (spinnaker2), LMS in
   the engine's widths (:class:`~neurocomp.rules.rls.LmsFixedPoint`), host RLS with the
   weights rounded onto the chip's grid.

Alignment is teacher-forced per update: along the reference's first ``align`` updates, each
level starts from the reference's weights (and ``P``) and takes one update on the same
``r`` and targets; its ``dW`` is compared with the reference's. Attribution (LMS only): the
fixed level with weights, traces or the error signal back in float, or round-to-nearest.
The network dynamics are float64 at every level (no chip has a theta neuron).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import NeurocompError, Problem
from .check import CheckError, CheckReport, _attribution, _cos, _Progress, _rel, alignment_summary

TASK = "kimchow-rls"
MODELS = ("rls", "rls-host")
LMS_ROWS = ("weights", "traces", "signal", "nearest")
# the LMS learning rate: stable for |r|^2 of the N <= 500 networks (N = 200: 1 diverges, 0.3 learns)
LMS_ETA = 0.1


def _pow2_at_least(x: float) -> float:
    return 2.0 ** np.ceil(np.log2(max(x, 1e-12)))


def fixed_point(prof, tk, **over):
    """The LMS formats on ``prof`` with ranges fixed from the task: weights in ±2 (the trained
    weights of the reference stay below 2 at N = 200 and 500), ``x1 = r`` in [0, 1) and the
    error over the power of two above twice the largest target."""
    from ..rules.rls import LmsFixedPoint

    sig = float(_pow2_at_least(2 * float(np.abs(tk.targets).max())))
    return LmsFixedPoint.from_profile(prof, **{"weight_range": 2.0, "trace_range": 1.0, "signal_range": sig, **over})


def learner(level: str, low, kc, tk, prof, seed: int, **over):
    """The learner of ``level`` (``reference``, ``lowered-float``, ``lowered-fixed`` or an
    attribution row) for lowering ``low`` on network ``kc``."""
    from ..rules.rls import HostRls, Lms, Rls

    cfg, w0, valid = tk.config, kc.wp0, kc.valid
    lam = float(cfg["lam"])
    if level == "reference" or (low.variant == "rls" and level == "lowered-float"):
        return Rls(w0, valid, lam)
    if low.dtype == "float32":
        return Rls(w0, valid, lam, dtype=np.float32)
    spec = fixed_point(prof, tk)
    if low.dtype == "float64":  # host-assisted
        return HostRls(w0, valid, lam, spec.weight_lsb, spec.weight_top)
    eta = float(cfg.get("lms_eta", LMS_ETA))
    if level == "lowered-float":
        return Lms(w0, valid, eta)
    if "float_q" in over:
        over = {"quantize": tuple(q for q in ("weights", "traces", "signal") if q != over["float_q"])}
    return Lms(w0, valid, eta, fixed_point(prof, tk, **over), seed=seed)


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
    rows = LMS_ROWS if rows is True else tuple(rows or ())
    unknown = sorted(set(rows) - set(LMS_ROWS))
    if unknown:
        raise CheckError([Problem("check", f"unknown attribution rows {unknown} for {task} (valid: {LMS_ROWS})")])
    if low.variant != "lms":
        rows = ()
    rows_attr = [(f"fixed, {q} in float", {"float_q": q}) for q in rows if q != "nearest"]
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
        rep.notes.append(f"lowered-fixed: {fixed_point(prof, tk).describe()}; eta {tk.config.get('lms_eta', LMS_ETA)}")
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
    lowered-fixed start from its weights (and ``P``) and take one update on the same ``r`` and
    targets; their ``dW`` against the reference's (cosine, relative norm error)."""
    from ..rules.rls import KimChow, Rls

    kc = KimChow(tk, seed)
    ref = learner("reference", low, kc, tk, prof, seed)
    others = {lv: learner(lv, low, kc, tk, prof, seed) for lv in ("lowered-float", "lowered-fixed")}
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}

    def forced(r, f):
        """The reference's update; for its first ``align`` ones, each level's from the same state."""
        n = len(rows.get("lowered-fixed", {}).get("W", []))
        w0, P0 = ref.w.copy(), (ref.P.copy() if n < align else None)
        ref.update(r, f)
        if n >= align:
            return
        dw_ref = ref.w - w0
        for lv, other in others.items():
            if isinstance(other, Rls):
                other.P[...] = P0
            other.w = w0.astype(other.w.dtype)
            if getattr(other, "fixed", None) is not None and "weights" in other.fixed.quantize:
                fx = other.fixed
                other.w = other._grid(other.w, fx.weight_lsb, -fx.weight_top, fx.weight_top - 1, "nearest")
            start = other.w.astype(np.float64)
            other.update(r, f)
            dw = other.w.astype(np.float64) - start
            rows.setdefault(lv, {}).setdefault("W", []).append((_cos(dw, dw_ref), _rel(dw, dw_ref)))
        bar(f"alignment {n + 1}/{align}")

    probe = SimpleNamespace(weights=ref.weights, update=forced)  # the learner KimChow.train drives
    while align and len(rows.get("lowered-fixed", {}).get("W", [])) < align:
        kc.train(probe, 1)
    return alignment_summary(align, rows)
