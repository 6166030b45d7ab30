"""``check`` for weight and node perturbation on ``perturbation-perceptron`` and
``volatile-perceptron`` (node or weight perturbation whose third factor is scaled by the VKF's
adaptive gain, :class:`~neurocomp.rules.volatility.RewardGain`, in each level's arithmetic).

The network is the task's (a linear readout, :mod:`neurocomp.tasks.perturbation`), so the
model named on the command line is the rule, ``np`` or ``wp``. It learns at the paper's
optimal rate with the task's ``sigma_eff`` (:func:`rule_params`). Levels, from ``W = 0`` on
the same trials and the same perturbations:

* a sum-of-products engine with graded third factors (loihi2), NP only:
  1. **reference**: :class:`~neurocomp.rules.perturbation.Perceptron`, float64, the rule as stated;
  2. **lowered-float**: :class:`~neurocomp.rules.perturbation.NpOnEngine`, the lowered rule on
     the engine in float arithmetic;
  3. **lowered-fixed**: the same in the engine's fixed arithmetic (the chip), with the
     engine's attribution rows (one learning quantity back in float, or round-to-nearest);
  WP is refused there, naming the per-synapse random numbers the engine lacks.
* programmable cores (spinnaker2), NP and WP: the reference; lowered-float, the same rule in
  float64 (the lowered code path is the rule's own); lowered-fixed, in float32, the cores'
  arithmetic. No attribution (float32 everywhere: nothing to switch one at a time).

Stages as :mod:`.check_rate`: teacher-forced alignment of each level's ``dW`` with the
reference's, learning curves (the task's error ``E`` before each trial's update), the
attribution, and the readouts' RMS difference between lowered-float and lowered-fixed after
learning in place of spike agreement. The closed-form curve of the paper (negligible
perturbations) is noted beside them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import Problem
from ..learning.engine import LEARN_QUANTITIES
from ..rules import perturbation as pt
from ..rules.volatility import RewardGain
from ..tasks import perturbation as task_mod
from .check import ATTRIBUTION_ROWS, CheckError, CheckReport, _attribution, _cos, _Progress, _rel, alignment_summary

TASKS = (task_mod.NAME, task_mod.VOLATILE_NAME)
RULES = pt.KINDS


def _pow2_at_least(x: float) -> float:
    return float(2.0 ** np.ceil(np.log2(x)))


# the task's inputs are sized for a 7-bit payload with offset 64 (loihi2's graded x1): a rule
# parameter chosen once, the same for every profile, so that the levels of a check compare
PAYLOAD_OFFSET = 64


def rule_params(cfg: Mapping[str, Any], kind: str, sigma_eff: float) -> dict[str, Any]:
    """The rule's parameters for the task ``cfg``: the optimal learning rate (times the task's
    ``lr_scale``, if any), the perturbation size for ``sigma_eff``, and the lowering's ranges (the
    inputs' largest value over a 7-bit payload, 5 standard deviations of the eligibility ``sum_t
    xi r_j``, 4 of ``dR`` at the largest expected error plus its mean ``-M sigma^2 / 2``)."""
    T, a2 = cfg["steps"], task_mod.alpha_squared(cfg)
    f = task_mod.basis(T, min(cfg["n_in"], T, cfg["n_task"] + 2))[: cfg["n_task"]]
    r_max = float(np.sqrt(T * a2) * np.abs(f).max())
    s = task_mod.perturbation_sigma(cfg, kind, sigma_eff)
    return {
        "lr": task_mod.optimal_lr(cfg, kind) * cfg.get("lr_scale", 1.0),
        "sigma": s,
        "input_lsb": _pow2_at_least(r_max / (PAYLOAD_OFFSET - 1)),
        "elig_max": 5 * sigma_eff * np.sqrt(T * a2),
        "reward_max": 4 * sigma_eff * np.sqrt(2 * task_mod.largest_error(cfg) / T) + cfg["n_out"] * sigma_eff**2 / 2,
    }


def weight_max(cfg: Mapping[str, Any], kind: str = "np") -> float:
    """The largest ``|W|`` the fixed weights must hold: the target weight (plus 4 ``w_jump``
    where the targets jump) plus 4 standard deviations of the weights' spread at the closed
    form's floor ``E_inf`` (``E_inf - E_opt = (alpha^2 / 2) M n_trial <dW^2>``). Narrower weights
    would clip that spread and so lower the fixed point's error below the float form's (with ``2
    w_opt``, loihi2's NP at sigma_eff 0.04 ended at E = 5.11 against the float's 5.93)."""
    s = task_mod.perturbation_sigma(cfg, kind, cfg["sigma_eff"])
    e_inf = task_mod.floor(cfg, kind, s)
    spread = np.sqrt(2 * max(e_inf - cfg["e_opt"], 0.0) / (task_mod.alpha_squared(cfg) * cfg["n_out"] * cfg["n_trial"]))
    jump = 4 * cfg["w_jump"] if cfg.get("block", 0) > 0 else 0.0
    return cfg["w_opt"] + jump + 4 * float(spread)


def make_level(level: str, kind: str, profile, cfg: Mapping[str, Any], seed: int, **over):
    """One level's learner (see the module docstring); ``over``: ``float_quantities`` or
    ``rounding`` of an attribution row."""
    p = rule_params(cfg, kind, cfg["sigma_eff"])
    sizes = (cfg["n_out"], cfg["n_in"])
    base = pt.RewardBaseline("paired")
    if level == "reference" or (profile.learning.kind == "programmable" and level == "lowered-float"):
        return pt.Perceptron(kind, *sizes, lr=p["lr"], sigma=p["sigma"], batch=cfg["batch"], baseline=base, seed=seed,
                             gain=make_gain(cfg, "float64"))  # fmt: skip
    if profile.learning.kind == "programmable":  # lowered-fixed: the cores' float32
        return pt.Perceptron(kind, *sizes, lr=p["lr"], sigma=p["sigma"], batch=cfg["batch"], baseline=base,
                             seed=seed, dtype=np.float32, gain=make_gain(cfg, "float32"))  # fmt: skip
    arith = "float" if level == "lowered-float" else "fixed"
    return pt.NpOnEngine(profile, *sizes, p, weight_max=weight_max(cfg), batch=cfg["batch"], seed=seed,
                         arithmetic=arith, gain=make_gain(cfg, "float64" if arith == "float" else "fixed"),
                         **over)  # fmt: skip


def make_gain(cfg: Mapping[str, Any], arithmetic: str) -> RewardGain | None:
    """The third factor's adaptive gain the task asks for (``gain = "vkf"``), one filter per
    network, in ``arithmetic``: ``"float64"``, ``"float32"`` (programmable cores) or ``"fixed"``
    (the reward unit's integers); None without one."""
    if cfg.get("gain", "none") == "none":
        return None
    kw = {"lam": cfg["gain_lambda"], "v0": cfg["gain_v0"], "sigma2": cfg["gain_sigma2"]}
    if arithmetic == "fixed":
        return RewardGain((cfg["batch"],), fixed=True, **kw)
    return RewardGain((cfg["batch"],), dtype=np.dtype(arithmetic), **kw)


def refusal(kind: str, profile) -> str | None:
    """Why ``kind`` has no lowered level on ``profile`` (None: it has)."""
    from ..rules import refusal as rule_refusal

    lrn = profile.learning
    if lrn.kind == "programmable":
        return None
    if lrn.kind == "sum_of_products" and kind == "np" and lrn.third_factor:
        return None
    return rule_refusal(kind, profile) or f"{profile.name}'s {lrn.kind} engine has no lowering of {kind}"


def check_perturbation(model: str, task: str, tk, *, profile: str, iterations: int, seed: int, align: int,
                       rows: Sequence[str], progress: bool | None) -> CheckReport:  # fmt: skip
    """The check of the module docstring; called by :func:`neurocomp.analysis.check.check`."""
    from ..profiles import load_profile

    kind = str(model)
    if kind not in RULES:
        raise CheckError([Problem("model", f"{task} defines its network (a linear readout); name the rule, "
                                  f"{' or '.join(map(repr, RULES))}, as the model, not {kind!r}")])  # fmt: skip
    prof = load_profile(profile)
    why = refusal(kind, prof)
    if why:
        raise CheckError([Problem("profile", f"{kind} cannot run on {profile}: {why}")])
    cfg = dict(tk.config)
    t_start = time.perf_counter()
    engine = prof.learning.kind == "sum_of_products"
    rows_attr: list[tuple[str, dict]] = []
    if engine:
        rows_attr = [(f"fixed, {q} in float", {"float_quantities": (q,)}) for q in rows if q in LEARN_QUANTITIES]
        if "nearest" in rows:
            rows_attr.append(("fixed, round-to-nearest", {"rounding": "nearest"}))
    bar = _Progress(align + iterations * (3 + len(rows_attr)), sys.stderr.isatty() if progress is None else progress)
    tail = max(1, min(100, iterations // 5 or 1))
    rep = CheckReport(
        config={
            "model": kind, "profile": profile, "task": task, "seed": seed, "iterations": iterations,
            "steps": tk.steps, "align": align, "tail": tail, "metric": tk.metric_name, "rule": kind,
            "params": {**cfg, **rule_params(cfg, kind, cfg["sigma_eff"])}, "dt_ms": None,
        }
    )  # fmt: skip
    fixed = make_level("lowered-fixed", kind, prof, cfg, seed)
    if engine:
        rep.notes += [
            "reference: Perceptron (float64, the rule as stated); lowered-float and lowered-fixed: NpOnEngine, the "
            f"lowered rule on {profile}'s engine in float and in fixed arithmetic",
            *fixed.notes,
        ]
    else:
        rep.notes.append(
            "reference and lowered-float: Perceptron in float64 (the rule runs as stated on programmable cores); "
            "lowered-fixed: the same in float32"
        )
        if rows:
            rep.notes.append("attribution: float32 throughout, no quantity to switch one at a time; not run")
    skipped = [r for r in rows if r not in ATTRIBUTION_ROWS]
    if skipped:
        rep.notes.append(f"attribution rows {', '.join(skipped)} do not apply here; not run")
    if task == task_mod.VOLATILE_NAME:
        rep.notes.append(
            f"targets jump every {cfg['block']} trials; the rate is {cfg['lr_scale']:g} x the optimal one, times "
            + ("the VKF's gain k = (w+v)/(w+v+sigma2) computed from each trial's reward by the unit that sends the "
               "third factor (float64; float32 on programmable cores; its integers with the error units' reciprocal "
               "table in lowered-fixed on an engine)" if cfg["gain"] == "vkf" else "1 (no gain)")
        )  # fmt: skip
    else:
        e_inf = task_mod.expected_error(cfg, kind, iterations)
        rep.notes.append(
            f"closed form (negligible perturbations, sigma_eff -> 0): E = {e_inf[-1]:.3f} after {iterations} trials "
            f"from E_0 = {e_inf[0]:.3f}; this check uses sigma_eff = {cfg['sigma_eff']:g}, whose perturbations add "
            "to the floor"
        )

    t0 = time.perf_counter()
    rep.alignment = _alignment(kind, prof, tk, cfg, seed, align, bar)
    rep.timing["alignment_s"] = time.perf_counter() - t0
    runs = {"reference": make_level("reference", kind, prof, cfg, seed),
            "lowered-float": make_level("lowered-float", kind, prof, cfg, seed), "lowered-fixed": fixed}  # fmt: skip
    runs.update({row: make_level("lowered-fixed", kind, prof, cfg, seed, **kw) for row, kw in rows_attr})
    m = tk.metric_name
    rep.timing["levels_s"] = {}
    for lv, net in runs.items():
        t0, curve = time.perf_counter(), []
        for k in range(iterations):
            x, y = _arrays(tk.sample(k))
            curve.append(float(np.mean(net.trial(x, y))))
            bar(f"{lv} {k + 1}/{iterations}")
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.curves[lv] = {"loss": curve, m: curve}
        rep.final[lv] = {m: float(np.mean(curve[-tail:])), "loss": float(np.mean(curve[-tail:])), "first": curve[0]}
    if rows_attr:
        rep.attribution = _attribution(rep.final, [r for r, _ in rows_attr], m)
    x, y = _arrays(tk.sample(iterations))
    d = (np.asarray(runs["lowered-float"].W) - np.asarray(runs["lowered-fixed"].W, np.float64)) @ x
    rep.spikes["readouts, lowered-float vs lowered-fixed (after learning)"] = {
        "rms_difference": float(np.sqrt(np.mean(d**2))),
        "target_rms": float(np.sqrt(np.mean(y**2))),
    }
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep


def _arrays(t) -> tuple[np.ndarray, np.ndarray]:
    """A task's inputs ``[B, N, T]`` and targets ``[B, M, T]``."""
    return np.asarray(t.inputs).transpose(1, 2, 0), np.asarray(t.targets).transpose(1, 2, 0)


def _alignment(kind: str, prof, tk, cfg, seed: int, align: int, bar) -> dict[str, Any]:
    """Teacher-forced: for each of the first ``align`` trials, lowered-float and lowered-fixed
    start from the reference's weights and learn one trial with the reference's perturbation;
    their ``dW`` against the reference's (cosine, relative norm error)."""
    ref = make_level("reference", kind, prof, cfg, seed)
    others = {lv: make_level(lv, kind, prof, cfg, seed) for lv in ("lowered-float", "lowered-fixed")}
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for k in range(align):
        x, y = _arrays(tk.sample(k))
        w0 = ref.W.copy()
        ref.trial(x, y)
        dw_ref = ref.W - w0
        for lv, net in others.items():
            net.set_weights(w0)
            start = np.array(net.W, np.float64)
            net.trial(x, y)
            d = np.asarray(net.W, np.float64) - start
            rows.setdefault(lv, {}).setdefault("W", []).append((_cos(d, dw_ref), _rel(d, dw_ref)))
        bar(f"alignment {k + 1}/{align}")
    return alignment_summary(align, rows)


def run(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots) -> CheckReport:
    """:func:`check_perturbation` with ``check``'s arguments (its registration point)."""
    from pathlib import Path

    from ..tasks import make
    from .check import _write, requested_rows

    rows = requested_rows(attribution, ATTRIBUTION_ROWS, task)
    if iterations < 1 or align < 0:
        raise CheckError([Problem("check", f"iterations must be >= 1 and align >= 0, got {iterations}, {align}")])
    try:
        tk = make(task, seed=seed, **({"steps": steps} if steps else {}))
    except ValueError as exc:
        raise CheckError([Problem("task", str(exc))]) from None
    rep = check_perturbation(str(model), task, tk, profile=profile, iterations=iterations, seed=seed, align=align,
                             rows=rows, progress=progress)  # fmt: skip
    if out is not None:
        _write(rep, Path(out), plots)
    return rep
