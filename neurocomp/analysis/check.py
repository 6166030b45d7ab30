"""``check``: how far a learning rule on a chip drifts from its float rule, and why.

Three levels of the same rule run on the same task, inputs and initial weights
(``design/architecture.md``, "The three levels of a learning rule"):

1. **reference**: the rule as the paper defines it, float64 (:mod:`neurocomp.reference`),
   with the chip's discrete-time conventions (:meth:`Conventions.chip`) so that the
   dynamics are the chip's up to quantization; BPTT alongside where the model allows;
2. **lowered-float**: the compiled Program's lowered rule (traces, tags, epochs, graded
   third factors) with its learning engine in float64 (``learn_arithmetic="float"``);
3. **lowered-fixed**: the same Program in the chip's arithmetic: what the chip would do.

The report has four parts:

* **alignment**: teacher-forced. For each of the first ``align`` updates, every level starts
  from the reference's current weights (the fixed level from them quantized), runs one
  trial with learning, and its weight change per projection is compared with the
  reference's (cosine similarity and relative norm error). The reference then takes its own
  step, so the comparison never drifts with the levels' trajectories.
* **learning curves**: each level learns freely for ``iterations`` trials; loss and task
  metric per iteration, and the final metric's ratio to the reference's.
* **attribution**: the lowered-fixed run repeated with one quantized quantity at a time
  switched back to float (weights, traces, graded third factors, tags) and with
  round-to-nearest instead of stochastic rounding; the share of the fixed-to-float gap each
  row closes.
* **spike agreement**: per-neuron rate error and spike-time coincidence (within +-2 steps),
  between the reference's float64 dynamics and the chip's at the initial weights, and between
  lowered-float and lowered-fixed after learning.

Iteration ``k`` of every level is the same trial (the task's frozen input, or its sample
``k``). A weight is compared in model units (``mantissa * 2**weight_exp * scale``).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write, atomic_write_text
from ..errors import NeurocompError, Problem
from ..learning.engine import LEARN_QUANTITIES
from ..reference.conventions import Conventions
from ..reference.eprop import EpropParams, RecurrentSNN, Sgd

SUPPORTED_RULES = ("eprop",)
# the attribution rows: a learning quantity back in float64 (see learning.engine), or round-to-nearest
ATTRIBUTION_ROWS = (*LEARN_QUANTITIES, "nearest")


class CheckError(NeurocompError, ValueError):
    kind = "check"


@dataclass
class CheckReport:
    """What :func:`check` measured (``to_dict`` is ``report.json``)."""

    config: dict[str, Any]
    alignment: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    attribution: list[dict[str, Any]] = field(default_factory=list)
    spikes: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    raster: tuple | None = field(default=None, repr=False)  # (spikes, readout, target) of the last fixed trial

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "alignment": self.alignment,
            "curves": self.curves,
            "final": self.final,
            "attribution": self.attribution,
            "spikes": self.spikes,
            "timing": self.timing,
            "notes": self.notes,
            "files": self.files,
        }

    def summary(self) -> str:
        """A one-screen text summary."""
        c = self.config
        m = c["metric"]
        lines = [
            f"neurocomp check: {c['model']} on {c['profile']}, task {c['task']} (seed {c['seed']}, "
            f"{c['iterations']} iterations of {c['steps']} steps)",
            "",
            f"learning curves ({m}, mean of the last {c['tail']} iterations; ratio to the reference):",
        ]
        ref = self.final.get("reference", {}).get(m)
        for level, f in self.final.items():
            ratio = f"{f[m] / ref:6.2f}x" if ref else "     -"
            lines.append(f"  {level:15s} {f[m]:9.4f}   {ratio}   (first {f['first']:.4f})")
        lines += ["", f"alignment with the reference's update (teacher-forced, first {c['align']} updates):"]
        for level, per in self.alignment.get("levels", {}).items():
            parts = [f"{p}: cos {v['cosine_mean']:.3f}, rel.err {v['relative_error_mean']:.2f}" for p, v in per.items()]
            lines.append(f"  {level:15s} " + "; ".join(parts))
        if self.attribution:
            lines += ["", "attribution (lowered-fixed with one quantity back in float):"]
            for row in self.attribution:
                gap = "" if row.get("gap_closed") is None else f"  closes {100 * row['gap_closed']:5.0f}% of the gap"
                lines.append(f"  {row['row']:34s} {row[m]:9.4f}{gap}")
        for name, s in self.spikes.items():
            lines.append(
                f"\nspikes, {name}: rate error {s['rate_error_hz_mean']:.2f} Hz mean "
                f"({s['rate_error_hz_max']:.2f} max) over {s['neurons']} neurons, "
                f"spike-time coincidence {100 * s['coincidence']:.0f}%"
            )
        if self.notes:
            lines += [""] + [f"note: {n}" for n in self.notes]
        if self.files:
            lines += ["", "wrote " + ", ".join(self.files)]
        return "\n".join(lines)


# -- levels ------------------------------------------------------------------------------------
class _Reference:
    """The reference level: :class:`RecurrentSNN` learning with e-prop's online form (every
    step's update applied at once, as the chip does; ``method="online"``), or by SGD on each
    trial's summed gradient (``"eprop"``, ``"bptt"``)."""

    def __init__(self, net, dt_ms: float, profile, params: EpropParams, method: str = "online"):
        self.model = RecurrentSNN.from_network(net, dt_ms, Conventions.chip(profile), rule="eprop")
        self.p = params
        self.method = method
        self.B = self.model.random_feedback(params.seed)  # the lowering draws B the same way
        # The lowering (like Bellec's tutorial) filters the eligibility and the readout's
        # presynaptic trace with (1 - kappa); on the chip's readout, which has no (1 - kappa)
        # input scale, that is the exact gradient times (1 - kappa). The reference takes the
        # same factor so that "lr" means the same step size at every level.
        self.opt = Sgd(params.lr * (1.0 - self.model.kappa))

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.model.projection_weights_all().items()}

    def update(self, x: np.ndarray, target: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, Any]:
        """The weight change one trial would make (per projection), the outputs and the trace."""
        m = self.model
        if self.method == "online":  # e-prop applying every step's update at once, like the chip
            tr, dw = m.copy().run_online(x, target, self.p, self.B, self.opt.lr)  # the caller applies dw
            return m.projection_grads(dw), tr.y, tr
        tr = m.forward(x, gamma=self.p.dampening)
        if self.method == "bptt":
            g = m.bptt(tr, target, self.p)
        else:
            fb = m.W_out.T if self.p.feedback == "symmetric" else self.B
            g = m.eprop(tr, target, self.p, fb)
        step = self.opt.step(g)
        return m.projection_grads(step), tr.y, tr

    def apply(self, dw: Mapping[str, np.ndarray]) -> None:
        for name, d in dw.items():
            mat, rows, cols = self.model.blocks[name]
            getattr(self.model, mat)[rows, cols] += d
            if mat == "W_out" and self.p.feedback == "adaptive" and self.method != "online":
                self.B[cols, rows] += d.T  # adaptive e-prop: B takes W_out's update


class _Emulated:
    """A lowered level: the emulator on the Program, learning on every trial."""

    def __init__(self, prog, names: list[str], inp: str, readout: str, target_key: str, **kwargs):
        from ..emulator import Emulator

        self.prog, self.names, self.input, self.readout, self.target_key = prog, names, inp, readout, target_key
        self.emu = Emulator(prog, **kwargs)
        self.scale = 2.0 ** prog.population(readout).scale_exp
        self.unit = {n: self.emu.plastic[n].weight_unit for n in names}  # model units per learned-weight unit

    def weights(self) -> dict[str, np.ndarray]:
        return {n: self.emu.plastic[n].engine.weights[0].astype(np.float64) * self.unit[n] for n in self.names}

    def set_weights(self, w: Mapping[str, np.ndarray]) -> None:
        for n in self.names:
            eng = self.emu.plastic[n].engine
            m = np.asarray(w[n], np.float64) / self.unit[n]
            if eng.state["w"].dtype.kind in "iu":  # chip mantissas: the nearest representable weights
                m = np.round(m)
            eng.state["w"][...] = m

    def trial(self, x: np.ndarray, target: np.ndarray, record: tuple[str, ...] = ("v",)) -> dict[str, np.ndarray]:
        self.emu.reset(keep_weights=True)
        inputs = {self.input: x, self.target_key: target[:, 0, :]}
        rec = self.emu.run(x.shape[0], inputs=inputs, record=list(record), learn=True)
        rec["y"] = rec[f"{self.readout}/v"][:, :1, :].astype(np.float64) / self.scale
        return rec


# -- helpers -----------------------------------------------------------------------------------
def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float((a * b).sum() / (na * nb)) if na > 0 and nb > 0 else float("nan")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float("nan")


def _loss(y: np.ndarray, target: np.ndarray) -> float:
    d = np.nan_to_num(y - target)
    return float(0.5 * (d**2).sum() / y.shape[1])


def spike_agreement(a: np.ndarray, b: np.ndarray, dt_ms: float, window: int = 2) -> dict[str, Any]:
    """Per-neuron rate error (Hz) and the fraction of spikes of ``a`` that ``b`` matches
    within ``window`` steps (and vice versa, averaged). ``a``, ``b``: ``[T, n]`` 0/1."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    T = a.shape[0]
    rate = lambda s: s.sum(axis=0) / (T * dt_ms / 1000.0)  # noqa: E731
    err = np.abs(rate(a) - rate(b))

    def near(s: np.ndarray) -> np.ndarray:
        out = s.copy()
        for k in range(1, window + 1):
            out[k:] += s[:-k]
            out[:-k] += s[k:]
        return out > 0

    hits = (a * near(b)).sum() + (b * near(a)).sum()
    total = a.sum() + b.sum()
    return {
        "neurons": int(a.shape[1]),
        "rate_error_hz_mean": float(err.mean()),
        "rate_error_hz_max": float(err.max()),
        "rate_error_hz": err.tolist(),
        "coincidence": float(hits / total) if total else 1.0,
        "window_steps": window,
    }


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.t0 = total, 0, enabled, time.perf_counter()

    def __call__(self, what: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        frac = self.done / self.total
        bar = "#" * int(30 * frac)
        el = time.perf_counter() - self.t0
        eta = el / frac - el if frac else 0.0
        sys.stderr.write(f"\r[{bar:30s}] {100 * frac:3.0f}% {what[:40]:40s} {el:5.0f}s, ~{eta:4.0f}s left")
        sys.stderr.flush()
        if self.done >= self.total:
            sys.stderr.write("\n")


# -- check -------------------------------------------------------------------------------------
# Long enough to learn: on examples/eprop_pattern.yaml (20 in, 30 LIF, lr 3e-3) the reference's
# NMSE, mean of the last 10 iterations, is 0.25 after 100 iterations, 0.16 after 160 and 0.12
# after 200 (seed 0).
ITERATIONS = 200


def check(
    model: Any,
    profile: str = "loihi2",
    task: str = "pattern-generation",
    iterations: int = ITERATIONS,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    align: int = 3,
    attribution: bool | Sequence[str] = True,
    bptt: bool = True,
    steps: int | None = None,
    progress: bool | None = None,
    plots: bool = True,
) -> CheckReport:
    """Check the e-prop rule of ``model`` (a path to a model YAML or a Network) on
    ``profile`` with ``task``; writes ``report.json``, ``summary.txt`` and PNG plots to
    ``out`` when given. ``attribution``: True (every row of :data:`ATTRIBUTION_ROWS`), False,
    or the rows to run (``("nearest",)``: only the round-to-nearest run). ``iterations``:
    trials each level learns (:data:`ITERATIONS` by default: enough for the reference to
    learn the example). See the module docstring for what is measured."""
    from ..compiler import compile
    from ..graph import LI, SpikeInput
    from ..graph.io import load_network
    from ..tasks import TASKS, make

    t_start = time.perf_counter()
    if task not in TASKS:
        raise CheckError([Problem("task", f"unknown task {task!r} (known: {', '.join(sorted(TASKS))})")])
    net = load_network(model) if isinstance(model, (str, os.PathLike)) else model
    rules = {p.plasticity.name for p in net.projections if p.plasticity is not None}
    if not rules:
        raise CheckError([Problem("model", "has no plastic projection: there is no learning rule to check")])
    unsupported = sorted(rules - set(SUPPORTED_RULES))
    if unsupported:
        raise CheckError(
            [Problem("model", f"check supports {', '.join(SUPPORTED_RULES)}; this model uses {', '.join(unsupported)}")]
        )
    rows = ATTRIBUTION_ROWS if attribution is True else tuple(attribution or ())
    unknown = sorted(set(rows) - set(ATTRIBUTION_ROWS))
    if unknown:
        raise CheckError(
            [Problem("check", f"unknown attribution rows {unknown} (valid: {', '.join(ATTRIBUTION_ROWS)})")]
        )
    if iterations < 1 or align < 0:
        raise CheckError([Problem("check", f"iterations must be >= 1 and align >= 0, got {iterations}, {align}")])
    if steps is not None and steps < 1:
        raise CheckError([Problem("check", f"steps must be >= 1 (or None for the task's), got {steps}")])
    prog = compile(net, profile, out=io.StringIO())
    dt = prog.dt_ms
    ins = [p for p in net.populations if isinstance(p.neuron, SpikeInput)]
    outs = [p for p in net.populations if isinstance(p.neuron, LI)]
    if len(ins) != 1:
        raise CheckError([Problem("model", f"check feeds the task to one spike-input population, found {len(ins)}")])
    inp, ro = ins[0], outs[0]
    plastic = [p for p in net.projections if p.plasticity is not None and p.plasticity.name == "eprop"]
    params = EpropParams.from_mapping(dict(plastic[0].plasticity.params))
    overrides: dict[str, Any] = {"n_in": inp.size}
    if task == "pattern-generation":
        overrides.update(n_out=ro.size, n_rec=sum(p.size for p in net.populations if p.neuron.model in ("LIF", "ALIF")))
        if steps:
            overrides["steps"] = steps
    elif task == "evidence-accumulation":
        overrides["batch"] = 1
    tk = make(task, seed=seed, **overrides)
    if tk.n_out != ro.size:
        raise CheckError([Problem("task", f"{task} has {tk.n_out} outputs; the readout {ro.name!r} has {ro.size}")])
    T = tk.steps
    names = [p.name for p in plastic]
    target_key = (
        f"{ro.name}.error/target"
        if any(q.name == f"{ro.name}.error" for q in prog.populations)
        else (f"{ro.name}/target")
    )

    def trial_data(k: int):
        t = tk.sample(k) if tk.sample is not None else tk
        tg = np.array(t.targets)
        if t.mask is not None:
            tg[np.asarray(t.mask) == 0] = np.nan
        return np.asarray(t.inputs), tg

    def emulated(**kw) -> _Emulated:
        return _Emulated(prog, names, inp.name, ro.name, target_key, seed=seed, **kw)

    # (row, the emulator's switches): the rows asked for that the chip's learning engine has
    takes = {
        "sum_of_products": set(ATTRIBUTION_ROWS),
        "eprop_fixed": {"weights", "traces", "graded", "nearest"},  # ReckOn: no tags, no products
    }.get(prog.profile.learning.kind, set())  # programmable cores run the exact rule: nothing to switch
    rows_attr: list[tuple[str, dict[str, Any]]] = [
        (f"fixed, {q} in float", {"learn_float": (q,)}) for q in LEARN_QUANTITIES if q in rows and q in takes
    ]
    if "nearest" in rows and "nearest" in takes:
        rows_attr.append(("fixed, round-to-nearest", {"learn_rounding": "nearest"}))
    skipped = [r for r in rows if r not in takes]
    attribution_note = (
        f"attribution: {profile}'s learning engine has no {', '.join(skipped)} to switch; those rows are not run"
        if skipped
        else None
    )
    attribution = bool(rows_attr)
    n_work = align + iterations * (3 + int(bptt) + len(rows_attr)) + 1
    bar = _Progress(n_work, sys.stderr.isatty() if progress is None else progress)
    tail = max(1, min(10, iterations // 5 or 1))
    rep = CheckReport(
        config={
            "model": str(model) if isinstance(model, (str, os.PathLike)) else net.name,
            "profile": profile,
            "task": task,
            "seed": seed,
            "iterations": iterations,
            "steps": T,
            "align": align,
            "tail": tail,
            "metric": tk.metric_name,
            "rule": "eprop",
            "params": {k: getattr(params, k) for k in EpropParams.__dataclass_fields__},
            "dt_ms": dt,
        }
    )
    if attribution_note:
        rep.notes.append(attribution_note)
    rep.notes += [
        "reference: float64 online e-prop (per-synapse traces, every step's update applied at once, "
        "lr * (1 - kappa): the lowering's normalization of the readout filter) with the chip's conventions",
        "bptt: float64 BPTT, the trial's summed gradient applied at its end with the same step size",
        "lowered-float / lowered-fixed: the emulator on the compiled Program, learning online within each trial",
    ]

    # -- alignment (teacher-forced) --
    t0 = time.perf_counter()
    ref = _Reference(net, dt, prog.profile, params)
    levels = {"lowered-float": emulated(learn_arithmetic="float"), "lowered-fixed": emulated()}
    if bptt:
        bp = _Reference(net, dt, prog.profile, params, method="bptt")
    align_rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for k in range(align):
        x, tg = trial_data(k)
        w0 = ref.weights()
        dw_ref, _, _ = ref.update(x, tg)
        compare = {}
        for lv, em in levels.items():
            em.set_weights(w0)
            start = em.weights()
            em.trial(x, tg)
            compare[lv] = {n: em.weights()[n] - start[n] for n in names}
        if bptt:
            bp.model = ref.model.copy()
            compare["bptt"] = bp.update(x, tg)[0]
        for lv, dws in compare.items():
            for n in names:
                align_rows.setdefault(lv, {}).setdefault(n, []).append(
                    (_cos(dws[n], dw_ref[n]), _rel(dws[n], dw_ref[n]))
                )
        ref.apply(dw_ref)
        bar(f"alignment {k + 1}/{align}")
    rep.alignment = {
        "updates": align,
        "levels": {
            lv: {
                n: {
                    "cosine": [c for c, _ in v],
                    "relative_error": [r for _, r in v],
                    "cosine_mean": float(np.nanmean([c for c, _ in v])),
                    "relative_error_mean": float(np.nanmean([r for _, r in v])),
                }
                for n, v in per.items()
            }
            for lv, per in align_rows.items()
        },
    }
    rep.timing["alignment_s"] = time.perf_counter() - t0

    # -- spike agreement at the initial weights: float64 reference dynamics vs the chip's --
    x0, tg0 = trial_data(0)
    fresh_ref = _Reference(net, dt, prog.profile, params)
    tr0 = fresh_ref.model.forward(x0, gamma=params.dampening)
    chip0 = emulated()
    rec0 = chip0.emu.run(T, inputs={inp.name: x0, target_key: tg0[:, 0, :]}, record=["spikes"])
    hidden = [p.name for p in net.populations if p.neuron.model in ("LIF", "ALIF")]
    chip_spk = np.concatenate([rec0[f"{h}/spikes"][:, 0, :] for h in hidden], axis=1)
    rep.spikes["reference vs lowered-fixed (initial weights)"] = spike_agreement(tr0.z[:, 0, :], chip_spk, dt)
    bar("spike agreement")

    # -- learning curves --
    t0 = time.perf_counter()
    runs: dict[str, Callable[[int], tuple[float, float]]] = {}
    ref_run = _Reference(net, dt, prog.profile, params)

    def step_ref(r: _Reference) -> Callable[[int], tuple[float, float]]:
        def go(k: int) -> tuple[float, float]:
            x, tg = trial_data(k)
            dw, y, _ = r.update(x, tg)
            r.apply(dw)
            return _loss(y, tg), _score(tk, k, y)

        return go

    def step_emu(e: _Emulated, keep: dict | None = None) -> Callable[[int], tuple[float, float]]:
        def go(k: int) -> tuple[float, float]:
            x, tg = trial_data(k)
            rec = e.trial(x, tg, record=("v", "spikes"))
            if keep is not None:
                keep["rec"] = rec
            return _loss(rec["y"], tg), _score(tk, k, rec["y"])

        return go

    last_rec: dict[str, dict] = {"lowered-float": {}, "lowered-fixed": {}}
    runs["reference"] = step_ref(ref_run)
    if bptt:
        runs["bptt"] = step_ref(_Reference(net, dt, prog.profile, params, method="bptt"))
    runs["lowered-float"] = step_emu(emulated(learn_arithmetic="float"), last_rec["lowered-float"])
    runs["lowered-fixed"] = step_emu(emulated(), last_rec["lowered-fixed"])
    if attribution:
        for row, kw in rows_attr:
            runs[row] = step_emu(emulated(**kw))
    rep.timing["levels_s"] = {}
    for level, go in runs.items():
        loss, metric = [], []
        t_level = time.perf_counter()
        for k in range(iterations):
            lo, me = go(k)
            loss.append(lo)
            metric.append(me)
            bar(f"{level} {k + 1}/{iterations}")
        rep.timing["levels_s"][level] = time.perf_counter() - t_level  # seconds for all iterations
        rep.curves[level] = {"loss": loss, tk.metric_name: metric}
        rep.final[level] = {
            tk.metric_name: float(np.mean(metric[-tail:])),
            "loss": float(np.mean(loss[-tail:])),
            "first": metric[0],
        }
    rep.timing["curves_s"] = time.perf_counter() - t0
    m = tk.metric_name
    if attribution:
        fixed, flt = rep.final["lowered-fixed"][m], rep.final["lowered-float"][m]
        gap = fixed - flt
        rep.attribution.append({"row": "all quantized (lowered-fixed)", m: fixed, "gap_closed": 0.0})
        for level in runs:
            if level.startswith("fixed, "):
                v = rep.final[level][m]
                closed = (fixed - v) / gap if abs(gap) > 1e-12 else None
                rep.attribution.append({"row": level, m: v, "gap_closed": closed})
        rep.attribution.append({"row": "all float (lowered-float)", m: flt, "gap_closed": 1.0})
    a, b = last_rec["lowered-float"].get("rec"), last_rec["lowered-fixed"].get("rec")
    if a and b:
        sa = np.concatenate([a[f"{h}/spikes"][:, 0, :] for h in hidden], axis=1)
        sb = np.concatenate([b[f"{h}/spikes"][:, 0, :] for h in hidden], axis=1)
        rep.spikes["lowered-float vs lowered-fixed (last iteration)"] = spike_agreement(sa, sb, dt)
        rep.raster = (sb, b["y"][:, 0, :], trial_data(iterations - 1)[1][:, 0, :])
    rep.timing["total_s"] = time.perf_counter() - t_start
    if out is not None:
        _write(rep, Path(out), plots)
    return rep


def _score(tk, k: int, y: np.ndarray) -> float:
    t = tk.sample(k) if tk.sample is not None else tk
    return t.score(y)


def _write(rep: CheckReport, out: Path, plots: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        try:
            rep.files += _plots(rep, out)
        except ImportError:
            rep.notes.append("matplotlib is not installed (pip install 'neurocomp[plots]'): no PNG plots")
    rep.files = ["report.json", "summary.txt"] + rep.files
    atomic_write_text(out / "report.json", json.dumps(rep.to_dict(), indent=1, default=_json_default))
    atomic_write_text(out / "summary.txt", rep.summary() + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def _plots(rep: CheckReport, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = rep.config["metric"]
    files = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for level in ("reference", "bptt", "lowered-float", "lowered-fixed"):
        if level in rep.curves:
            ax.plot(rep.curves[level][m], label=level, lw=2 if level.startswith("lowered") else 1.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel(m)
    ax.set_yscale("log")
    ax.set_title(f"{rep.config['task']} on {rep.config['profile']}: learning curves")
    ax.legend()
    fig.tight_layout()
    atomic_write(out / "learning_curves.png", lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    files.append("learning_curves.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    for lv, per in rep.alignment.get("levels", {}).items():
        cos = [c for v in per.values() for c in v["cosine"]]
        ax.hist(cos, bins=np.linspace(-1, 1, 41), alpha=0.6, label=lv)
    ax.set_xlabel("cosine similarity with the reference's update (per projection and update)")
    ax.set_ylabel("count")
    ax.legend()
    fig.tight_layout()
    atomic_write(out / "alignment.png", lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    files.append("alignment.png")

    if rep.attribution:
        fig, ax = plt.subplots(figsize=(7, 4))
        rows = rep.attribution
        ax.barh([r["row"] for r in rows], [r[m] for r in rows], color="tab:blue")
        ax.set_xlabel(f"final {m}")
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_title("attribution: one quantity back in float at a time")
        fig.tight_layout()
        atomic_write(out / "attribution.png", lambda f: fig.savefig(f, format="png", dpi=110))
        plt.close(fig)
        files.append("attribution.png")

    raster = rep.raster
    if raster is not None:
        spk, y, tg = raster
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
        t, n = np.nonzero(spk)
        a1.plot(t, n, "|", ms=3, color="k")
        a1.set_ylabel("neuron")
        a1.set_title("lowered-fixed, last iteration")
        a2.plot(y, label="readout")
        a2.plot(tg, "--", label="target")
        a2.set_xlabel("step")
        a2.legend()
        fig.tight_layout()
        atomic_write(out / "raster.png", lambda f: fig.savefig(f, format="png", dpi=110))
        plt.close(fig)
        files.append("raster.png")
    return files
