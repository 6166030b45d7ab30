"""``check`` for spike-timing rules (STDP, R-STDP, custom rule strings): the three levels of
the rule on a spiking task, in stages.

Levels (the same trials, inputs and initial weights):

1. **reference**: the rule's float form on the float64 reference simulator
   (:class:`neurocomp.reference.simulator.Reference` with the chip's conventions, learning
   with :class:`~neurocomp.rules.stdp.StdpFloat` / :class:`~neurocomp.rules.rstdp.RstdpFloat`).
   A ``custom`` rule is written in the engine's own terms and has no other float form: its
   reference is the engine's rule in float64 (the emulator with ``learn_arithmetic="float"``),
   the same as lowered-float (the report says so);
2. **lowered-float**: the compiled Program, its learning engine in float64;
3. **lowered-fixed**: the chip's arithmetic.

Stages, each a function of the levels: :func:`_alignment` (teacher-forced: each level from
the reference's current weights for one trial, its weight change against the reference's),
:func:`_curves` (each level learning freely; the task metric on the plastic projections'
post spikes), the attribution rows (lowered-fixed with one quantity back in float, see
:mod:`neurocomp.analysis.check`) and :func:`_spike_stage` (reference vs lowered-fixed at the
initial weights, lowered-float vs lowered-fixed after learning).

A rule reading a reward (R-STDP, or a custom rule with a graded ``input``) gets the task's
reward (:data:`REWARDS`): the reference as ``<projection>/reward``, the emulator as the
graded input the lowering reads (``<projection>/y2`` on loihi2).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import Problem
from ..tasks import reward_choice
from .check import (
    ATTRIBUTION_ROWS,
    CheckError,
    CheckReport,
    _attribution,
    _cos,
    _ModelUnitWeights,
    _Progress,
    _rel,
    alignment_summary,
    spike_agreement,
)

SPIKING_RULES = ("stdp", "rstdp", "custom")
# tasks that define a reward: task name -> rewards(task) [T, batch, n_out]
REWARDS: dict[str, Callable[[Any], np.ndarray]] = {reward_choice.NAME: reward_choice.rewards}


class _RefLevel:
    """The reference simulator learning with the rule's float form."""

    def __init__(self, net, dt_ms: float, profile, names: Sequence[str]):
        from ..reference.conventions import Conventions
        from ..reference.simulator import Reference

        self.sim = Reference(net, dt_ms, Conventions.chip(profile))
        self.names = list(names)

    def weights(self) -> dict[str, np.ndarray]:
        return {n: self.sim.plastic[n].w[0].copy() for n in self.names}

    def set_weights(self, w: Mapping[str, np.ndarray]) -> None:
        for n in self.names:
            self.sim.plastic[n].w[...] = w[n]

    def trial(self, inputs: Mapping[str, np.ndarray], steps: int, post: str, learn: bool = True) -> np.ndarray:
        self.sim.reset(keep_weights=True)
        return self.sim.run(steps, inputs=inputs, record=["spikes"], learn=learn)[f"{post}/spikes"]


class _EmuLevel(_ModelUnitWeights):
    """The emulator on the compiled Program (weights compared in model units)."""

    def __init__(self, prog, names: Sequence[str], **kwargs):
        from ..emulator import Emulator

        self.emu = Emulator(prog, **kwargs)
        self.names = list(names)
        self.unit = {n: self.emu.plastic[n].weight_unit for n in self.names}

    def trial(self, inputs: Mapping[str, np.ndarray], steps: int, post: str, learn: bool = True) -> np.ndarray:
        self.emu.reset(keep_weights=True)
        return self.emu.run(steps, inputs=inputs, record=["spikes"], learn=learn)[f"{post}/spikes"]


def check_spiking(net, prog, task: str, tk, *, model_name: str, profile: str, iterations: int, seed: int,
                  align: int, rows: Sequence[str], progress: bool | None) -> CheckReport:  # fmt: skip
    """The spike-timing family's check (see the module docstring); called by
    :func:`neurocomp.analysis.check.check`, which has validated the arguments."""
    t_start = time.perf_counter()
    plastic = [p for p in net.projections if p.plasticity is not None]
    kinds = {p.plasticity.name for p in plastic}
    names = [p.name for p in plastic]
    posts = {p.post for p in plastic}
    if len(posts) != 1:
        raise CheckError([Problem("model", f"check scores one post population; the plastic projections reach {posts}")])
    post = posts.pop()
    ins = [p.pre for p in plastic]
    reward_fn = REWARDS.get(task)
    reads_reward = {p.name for p in plastic if p.plasticity.name == "rstdp" or _custom_reads_input(p)}
    if reads_reward and reward_fn is None:
        raise CheckError([Problem("task", f"{', '.join(sorted(reads_reward))} learn from a reward; {task!r} has "
                                  f"none (tasks with a reward: {', '.join(REWARDS)})")])  # fmt: skip
    if reads_reward and not prog.profile.learning.third_factor:
        raise CheckError([Problem("profile", f"{profile}'s engine takes one non-negative reward channel per rule; "
                                  f"{task}'s reward is signed and per neuron (use loihi2)")])  # fmt: skip
    n_post = next(p.size for p in net.populations if p.name == post)
    if tk.n_out != n_post:
        raise CheckError([Problem("task", f"{task} scores {tk.n_out} outputs; population {post!r} has {n_post}")])
    graded_key = {p.name: _reward_input(prog, p.name) for p in plastic if p.name in reads_reward}
    custom = "custom" in kinds
    T = tk.steps

    def trial_data(k: int, level: str) -> dict[str, np.ndarray]:
        t = tk.sample(k) if tk.sample is not None else tk
        x = np.asarray(t.inputs)
        inputs = {pre: x for pre in set(ins)}
        if reads_reward:
            r = reward_fn(t)
            for n in reads_reward:
                inputs[f"{n}/reward" if level == "reference" and not custom else f"{n}/{graded_key[n]}"] = r
        return inputs

    def target(k: int):
        return tk.sample(k) if tk.sample is not None else tk

    def level(kind: str, **kw):
        if kind == "reference" and not custom:
            return _RefLevel(net, prog.dt_ms, prog.profile, names)
        if kind == "reference":
            kw = {"learn_arithmetic": "float"}
        return _EmuLevel(prog, names, seed=seed, **kw)

    takes = set(ATTRIBUTION_ROWS) if prog.profile.learning.kind == "sum_of_products" else set()
    rows_attr = [(f"fixed, {q} in float", {"learn_float": (q,)}) for q in rows if q != "nearest" and q in takes]
    if "nearest" in rows and "nearest" in takes:
        rows_attr.append(("fixed, round-to-nearest", {"learn_rounding": "nearest"}))
    n_work = align + iterations * (3 + len(rows_attr)) + 1
    bar = _Progress(n_work, sys.stderr.isatty() if progress is None else progress)
    tail = max(1, min(10, iterations // 5 or 1))
    rep = CheckReport(
        config={
            "model": model_name, "profile": profile, "task": task, "seed": seed, "iterations": iterations,
            "steps": T, "align": align, "tail": tail, "metric": tk.metric_name, "rule": ",".join(sorted(kinds)),
            "params": {p.name: dict(p.plasticity.params) for p in plastic}, "dt_ms": prog.dt_ms,
        }
    )  # fmt: skip
    rep.notes.append(
        "reference: the engine's rule in float64 (a custom rule has no other float form; it equals lowered-float)"
        if custom
        else "reference: the rule's float form (neurocomp.rules StdpFloat/RstdpFloat) on the float64 reference "
        "simulator with the chip's conventions"
    )
    skipped = [r for r in rows if r not in takes]
    if skipped:
        rep.notes.append(f"attribution: {profile}'s learning engine has no {', '.join(skipped)} to switch; not run")

    t0 = time.perf_counter()
    rep.alignment = _alignment(level, names, align, trial_data, T, post, bar)
    rep.timing["alignment_s"] = time.perf_counter() - t0
    rep.spikes["reference vs lowered-fixed (initial weights)"] = spike_agreement(
        level("reference").trial(trial_data(0, "reference"), T, post, learn=False)[:, 0, :],
        level("lowered-fixed").trial(trial_data(0, "emulator"), T, post, learn=False)[:, 0, :],
        prog.dt_ms,
    )
    bar("spike agreement")
    t0 = time.perf_counter()
    runs = {"reference": level("reference"), "lowered-float": level("lowered-float", learn_arithmetic="float"),
            "lowered-fixed": level("lowered-fixed")}  # fmt: skip
    runs.update({row: level(row, **kw) for row, kw in rows_attr})
    last = _curves(rep, runs, iterations, trial_data, target, T, post, tail, bar)
    rep.timing["curves_s"] = time.perf_counter() - t0
    if rows_attr:
        rep.attribution = _attribution(rep.final, [r for r, _ in rows_attr], tk.metric_name)
    rep.spikes["lowered-float vs lowered-fixed (last iteration)"] = spike_agreement(
        last["lowered-float"][:, 0, :], last["lowered-fixed"][:, 0, :], prog.dt_ms
    )
    rep.weights = {lv: {n: w.tolist() for n, w in runs[lv].weights().items()} for lv in ("reference", "lowered-fixed")}
    rep.timing["total_s"] = time.perf_counter() - t_start
    return rep


def _custom_reads_input(p) -> bool:
    graded = dict(p.plasticity.params).get("graded") or {}
    return p.plasticity.name == "custom" and any(dict(v).get("source") == "input" for v in graded.values())


def _reward_input(prog, name: str) -> str:
    """The graded input that carries the reward to projection ``name``'s engine."""
    rule = next(p for p in prog.projections if p.name == name).learning
    keys = [y for y, src in rule.graded.items() if src.get("source") == "input"]
    return keys[0] if keys else "y2"


def _alignment(level, names, align: int, trial_data, T: int, post: str, bar) -> dict[str, Any]:
    """Teacher-forced: for each of the first ``align`` trials every level starts from the
    reference's weights (the fixed level from them rounded onto its grid) and learns one
    trial; its weight change per projection against the reference's (cosine, relative norm
    error). The reference then keeps its own change, so the comparison does not drift."""
    ref = level("reference")
    others = {
        "lowered-float": level("lowered-float", learn_arithmetic="float"),
        "lowered-fixed": level("lowered-fixed"),
    }
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for k in range(align):
        w0 = ref.weights()
        ref.trial(trial_data(k, "reference"), T, post)
        dw_ref = {n: ref.weights()[n] - w0[n] for n in names}
        for lv, em in others.items():
            em.set_weights(w0)
            start = em.weights()
            em.trial(trial_data(k, "emulator"), T, post)
            end = em.weights()
            for n in names:
                rows.setdefault(lv, {}).setdefault(n, []).append(
                    (_cos(end[n] - start[n], dw_ref[n]), _rel(end[n] - start[n], dw_ref[n]))
                )
        bar(f"alignment {k + 1}/{align}")
    return alignment_summary(align, rows)


def _curves(rep: CheckReport, runs, iterations: int, trial_data, target, T: int, post: str, tail: int, bar):
    """Each level learns freely; per iteration the task metric on the post spikes (``loss``
    is the same number: spike-timing rules have no loss of their own). Returns each level's
    last post spikes."""
    m = rep.config["metric"]
    last: dict[str, np.ndarray] = {}
    rep.timing["levels_s"] = {}
    for lv, run in runs.items():
        t0, metric = time.perf_counter(), []
        kind = "reference" if lv == "reference" else "emulator"
        for k in range(iterations):
            spikes = run.trial(trial_data(k, kind), T, post)
            metric.append(target(k).score(spikes.astype(np.float64)))
            last[lv] = spikes
            bar(f"{lv} {k + 1}/{iterations}")
        rep.timing["levels_s"][lv] = time.perf_counter() - t0
        rep.curves[lv] = {"loss": metric, m: metric}
        rep.final[lv] = {m: float(np.mean(metric[-tail:])), "loss": float(np.mean(metric[-tail:])), "first": metric[0]}
    return last
