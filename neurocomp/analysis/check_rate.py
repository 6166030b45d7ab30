"""``check`` for RFLO on ``rflo-periodic``: Murray's rate network, the rule at three levels.

The network is the task's (50 tanh rate units, :mod:`neurocomp.tasks.rflo_periodic`), so
the model named on the command line is the rule, ``rflo``. Levels, from the same initial
weights (``init_weights(seed)``) on the same trials:

1. **reference**: :class:`neurocomp.reference.rflo.RfloRate`, float64, the rule as stated;
2. **lowered-float**: :class:`neurocomp.reference.rflo_fixed.RfloRateFixed` with nothing quantized
   (the lowered code path in float64);
3. **lowered-fixed**: the same class with ``profile``'s learning-engine widths
   (:meth:`RfloFixedPoint.from_profile`: weights, feedback B, error and learning signal,
   eligibility traces; stochastic rounding where the engine has it). The rate dynamics stay
   float64 (a chip runs the spiking form, which the e-prop check covers): this isolates the
   learning path's precision.

Stages: :func:`_alignment` (teacher-forced: each level from the reference's weights for one
trial, its ``dW`` and ``dW_out`` against the reference's), the learning curves, the
attribution (lowered-fixed with one of :data:`RATE_ROWS` back in float, or round-to-nearest)
and, in place of spike agreement (a rate network has no spikes), the agreement of the
outputs ``y`` of lowered-float and lowered-fixed on the last trial (RMS difference).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import Problem
from .check import CheckError, CheckReport, _attribution, _cos, _Progress, _rel, alignment_summary

RATE_TASKS = ("rflo-periodic",)
# RFLO's attribution rows: the quantities of RfloFixedPoint, and the rounding
RATE_ROWS = ("weights", "feedback", "signal", "traces", "nearest")
_MATRICES = ("W", "W_out")  # the learned matrices (rflo-periodic freezes W_in: lr_in 0)


def _make(kind: str, tk, seed: int, profile, **over):
    from ..reference.rflo import RfloRate
    from ..reference.rflo_fixed import QUANTITIES, RfloFixedPoint, RfloRateFixed

    cfg = tk.config
    kw = dict(tau=cfg["tau"], lr_in=cfg["lr_in"], lr_rec=cfg["lr_rec"], lr_out=cfg["lr_out"], g=cfg["g"], h0=cfg["h0"])
    sizes = (cfg["n_in"], cfg["n_rec"], cfg["n_out"])
    if kind == "reference":
        return RfloRate(*sizes, seed=seed, **kw)
    if kind == "lowered-float":
        over = {"quantize": ()}
    elif "float_q" in over:
        back = over.pop("float_q")
        over = {"quantize": tuple(q for q in QUANTITIES if q != back)}
    spec = RfloFixedPoint.from_profile(profile, **over)
    return RfloRateFixed(*sizes, seed=seed, fixed=spec, target_max=float(np.abs(tk.targets).max()),
                         rounding_seed=seed, **kw)  # fmt: skip


def _set_weights(net, w: dict[str, np.ndarray]) -> None:
    """Start ``net`` from ``w`` (onto its weight grid when its weights are quantized)."""
    q = getattr(net, "fixed", None)
    for name in _MATRICES:
        m = np.array(w[name])
        if q is not None and "weights" in q.quantize:
            m = net.nearest(m, q.weight_range, q.weight_bits, q.weight_drop_lsb)
        setattr(net, name, m)


def _weights(net) -> dict[str, np.ndarray]:
    return {name: getattr(net, name).copy() for name in _MATRICES}


def check_rate(model: str, task: str, tk, *, profile: str, iterations: int, seed: int, align: int,
               rows: Sequence[str], progress: bool | None) -> CheckReport:  # fmt: skip
    """RFLO's check (see the module docstring); called by :func:`neurocomp.analysis.check.check`."""
    from ..profiles import load_profile

    if str(model) != "rflo":
        raise CheckError([Problem("model", f"{task} defines its network (Murray's rate network); name the rule, "
                                  f"'rflo', as the model, not {str(model)!r}")])  # fmt: skip
    prof = load_profile(profile)
    if prof.learning.kind != "sum_of_products":
        raise CheckError([Problem("profile", f"RFLO's fixed-point model reads a sum-of-products engine's widths; "
                                  f"{profile}'s engine is {prof.learning.kind}")])  # fmt: skip
    t_start = time.perf_counter()
    x, y = np.asarray(tk.inputs)[:, 0], np.asarray(tk.targets)[:, 0]
    rows_attr = [(f"fixed, {q} in float", {"float_q": q}) for q in rows if q in RATE_ROWS and q != "nearest"]
    if "nearest" in rows:
        rows_attr.append(("fixed, round-to-nearest", {"rounding": "nearest"}))
    bar = _Progress(align + iterations * (3 + len(rows_attr)), sys.stderr.isatty() if progress is None else progress)
    tail = max(1, min(10, iterations // 5 or 1))
    rep = CheckReport(
        config={
            "model": "rflo", "profile": profile, "task": task, "seed": seed, "iterations": iterations,
            "steps": tk.steps, "align": align, "tail": tail, "metric": tk.metric_name, "rule": "rflo",
            "params": dict(tk.config), "dt_ms": None,
        }
    )  # fmt: skip
    fixed = _make("lowered-fixed", tk, seed, prof)
    rep.notes += [
        "reference: RfloRate (float64, the rule as stated); lowered-float: RfloRateFixed with nothing quantized",
        f"lowered-fixed: RfloRateFixed with {profile}'s widths ({fixed.fixed.describe()}); rate dynamics in float64",
        "a rate network has no spikes: spike agreement is replaced by the outputs' RMS difference",
    ]
    skipped = [r for r in rows if r not in RATE_ROWS]
    if skipped:
        rep.notes.append(f"attribution: RFLO's fixed-point model has no {', '.join(skipped)} to switch; not run")

    t0 = time.perf_counter()
    rep.alignment = _alignment(tk, seed, prof, align, x, y, bar)
    rep.timing["alignment_s"] = time.perf_counter() - t0
    runs = {"reference": _make("reference", tk, seed, prof), "lowered-float": _make("lowered-float", tk, seed, prof),
            "lowered-fixed": fixed}  # fmt: skip
    runs.update({row: _make(row, tk, seed, prof, **kw) for row, kw in rows_attr})
    m, last = tk.metric_name, {}
    rep.timing["levels_s"] = {}
    for lv, net in runs.items():
        t0, curve = time.perf_counter(), []
        for k in range(iterations):
            out = net.trial(x, y)
            curve.append(tk.score(out[:, 0]))
            bar(f"{lv} {k + 1}/{iterations}")
        last[lv] = net.trial(x, y, learn=False)[:, 0]
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.curves[lv] = {"loss": curve, m: curve}
        rep.final[lv] = {m: float(np.mean(curve[-tail:])), "loss": float(np.mean(curve[-tail:])), "first": curve[0]}
    if rows_attr:
        rep.attribution = _attribution(rep.final, [r for r, _ in rows_attr], m)
    d = last["lowered-float"] - last["lowered-fixed"]
    rep.spikes["outputs, lowered-float vs lowered-fixed (after learning)"] = {
        "rms_difference": float(np.sqrt(np.mean(d**2))),
        "target_rms": float(np.sqrt(np.mean(y**2))),
    }
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep


def _alignment(tk, seed: int, prof, align: int, x, y, bar) -> dict[str, Any]:
    """Teacher-forced: for each of the first ``align`` trials, lowered-float and lowered-fixed
    start from the reference's weights and learn one trial; their ``dW``, ``dW_out`` against
    the reference's (cosine, relative norm error). The reference keeps its own step."""
    ref = _make("reference", tk, seed, prof)
    others = {lv: _make(lv, tk, seed, prof) for lv in ("lowered-float", "lowered-fixed")}
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for k in range(align):
        w0 = _weights(ref)
        ref.trial(x, y)
        dw_ref = {n: getattr(ref, n) - w0[n] for n in _MATRICES}
        for lv, net in others.items():
            _set_weights(net, w0)
            start = _weights(net)
            net.trial(x, y)
            for n in _MATRICES:
                d = getattr(net, n) - start[n]
                rows.setdefault(lv, {}).setdefault(n, []).append((_cos(d, dw_ref[n]), _rel(d, dw_ref[n])))
        bar(f"alignment {k + 1}/{align}")
    return alignment_summary(align, rows)
