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
  round-to-nearest instead of stochastic rounding; each row's metric and its absolute
  difference from lowered-fixed (in the metric's units: a share of a gap near zero would say
  nothing). :func:`attribution_over_seeds` gives the mean and spread of the differences over
  several seeds' reports.
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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write, atomic_write_text
from ..errors import NeurocompError, Problem
from ..learning.engine import LEARN_QUANTITIES
from ..reference.conventions import Conventions
from ..reference.eprop import EpropParams, RecurrentSNN, Sgd

RATE_TASKS = ("rflo-periodic",)  # tasks whose network is a rate network (neurocomp.analysis.check_rate)

SUPPORTED_RULES = ("eprop", "stdp", "rstdp", "custom")
# the attribution rows: a learning quantity back in float64 (see learning.engine), or round-to-nearest
ATTRIBUTION_ROWS = (*LEARN_QUANTITIES, "nearest")
# what each row switches (for `check --help` and the report)
ATTRIBUTION_HELP = {
    "weights": "weights in float64: no accumulator width, no rounding onto the weight grid",
    "traces": "spike traces x1 x2 y1 y2 y3 with exact decays and impulses, no saturation",
    "graded": "graded third factors (learning signal, pseudo-derivative, error, reward) unquantized",
    "tags": "the synaptic tags t and d in float64, no range clip",
    "products": "products wider than the accumulator divided exactly instead of floor-shifted",
    "nearest": "round-to-nearest instead of the chip's stochastic rounding",
}
assert set(ATTRIBUTION_HELP) == set(ATTRIBUTION_ROWS)
# RFLO's rate check (rflo-periodic) switches its fixed-point model's quantities instead: weights,
# traces and nearest as above, and these
RATE_ONLY_ROWS = {
    "feedback": "RFLO (rflo-periodic): the random feedback weights B in float64",
    "signal": "RFLO (rflo-periodic): the error and the learning signal in float64",
}


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
    weights: dict[str, dict[str, list]] = field(default_factory=dict)  # final weights per level (spiking rules)
    # per emulated level and plastic projection: its weights at the range's edge after each trial
    saturation: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

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
            **({"weights": self.weights} if self.weights else {}),
            **({"saturation": self.saturation} if self.saturation else {}),
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
            gone = f"; diverged at iteration {f['diverged_at']}" if "diverged_at" in f else ""
            lines.append(f"  {level:15s} {f[m]:9.4f}   {ratio}   (first {f['first']:.4f}{gone})")
        lines += ["", f"alignment with the reference's update (teacher-forced, first {c['align']} updates):"]
        for level, per in self.alignment.get("levels", {}).items():
            parts = [f"{p}: cos {v['cosine_mean']:.3f}, rel.err {v['relative_error_mean']:.2f}" for p, v in per.items()]
            lines.append(f"  {level:15s} " + "; ".join(parts))
        if self.attribution:
            lines += ["", *format_attribution(self.attribution, m, c.get("higher_is_better", False))]
        lines += format_saturation(self.saturation)
        for name, s in self.spikes.items():
            if "rms_difference" in s:  # a rate network: its outputs compared instead
                lines.append(f"\n{name}: RMS difference {s['rms_difference']:.4f} (target RMS {s['target_rms']:.4f})")
                continue
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


def saturation_stats(counts: Sequence[int], synapses: int) -> dict[str, Any]:
    """A projection's weights at the range's edge, from ``counts`` (one per iteration, after
    its trial): the last, the peak and its iteration, and how many iterations had any."""
    c = np.asarray(counts, dtype=np.int64)
    peak = int(c.argmax()) if c.size else 0
    return {"synapses": synapses, "final": int(c[-1]) if c.size else 0, "peak": int(c.max(initial=0)),
            "peak_iteration": peak, "iterations_with_any": int((c > 0).sum()), "iterations": int(c.size)}  # fmt: skip


def format_saturation(sat: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """Lines of the report on the learned weights at their range's edge (levels without any: one line)."""
    if not sat:
        return []
    lines = ["", "learned weights within one LSB of the weight range's edge (largest magnitude; after each trial):"]
    for level, per in sat.items():
        hit = {n: s for n, s in per.items() if s["peak"]}
        if not hit:
            lines.append(f"  {level:15s} none")
            continue
        parts = [f"{n}: {s['final']} of {s['synapses']} at the end, peak {s['peak']} (iteration "
                 f"{s['peak_iteration']}), in {s['iterations_with_any']} of {s['iterations']} iterations"
                 for n, s in hit.items()]  # fmt: skip
        lines.append(f"  {level:15s} " + "; ".join(parts))
    return lines


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


class _ModelUnitWeights:
    """The learned weights of an emulator level in model units (``self.emu``, ``self.names``,
    ``self.unit``: model units per learned-weight unit, per projection)."""

    def weights(self) -> dict[str, np.ndarray]:
        return {n: self.emu.plastic[n].engine.weights[0].astype(np.float64) * self.unit[n] for n in self.names}

    def set_weights(self, w: Mapping[str, np.ndarray]) -> None:
        for n in self.names:
            eng = self.emu.plastic[n].engine
            m = np.asarray(w[n], np.float64) / self.unit[n]
            if eng.state["w"].dtype.kind in "iu":  # chip mantissas: the nearest representable weights
                m = np.round(m)
            self.emu.set_weights(n, m)


class _Emulated(_ModelUnitWeights):
    """A lowered level: the emulator on the Program, learning on every trial."""

    def __init__(self, prog, names: list[str], inp: str, readout: str, target_key: str, **kwargs):
        from ..emulator import Emulator

        self.prog, self.names, self.input, self.readout, self.target_key = prog, names, inp, readout, target_key
        self.emu = Emulator(prog, **kwargs)
        self.scale = 2.0 ** prog.population(readout).scale_exp
        self.unit = {n: self.emu.plastic[n].weight_unit for n in names}  # model units per learned-weight unit

    def trial(self, x: np.ndarray, target: np.ndarray, record: tuple[str, ...] = ("v",)) -> dict[str, np.ndarray]:
        self.emu.reset(keep_weights=True)
        inputs = {self.input: x, self.target_key: target[:, 0, :]}
        return self.output(self.emu.run(x.shape[0], inputs=inputs, record=list(record), learn=True))

    def output(self, rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A run's recordings with the readout ``y`` in model units added."""
        rec["y"] = rec[f"{self.readout}/v"][:, :1, :].astype(np.float64) / self.scale
        return rec


# -- helpers -----------------------------------------------------------------------------------
def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float((a * b).sum() / (na * nb)) if na > 0 and nb > 0 else float("nan")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float("nan")


def alignment_summary(updates: int, rows: dict[str, dict[str, list[tuple[float, float]]]]) -> dict:
    """The report's alignment block from ``rows[level][projection]``: one ``(cosine, relative
    error)`` pair per teacher-forced update, with their means (NaN where a level has none)."""

    def mean(x: list[float]) -> float:
        return float(np.nanmean(x)) if x else float("nan")

    return {
        "updates": updates,
        "levels": {
            lv: {
                n: {
                    "cosine": [c for c, _ in v],
                    "relative_error": [r for _, r in v],
                    "cosine_mean": mean([c for c, _ in v]),
                    "relative_error_mean": mean([r for _, r in v]),
                }
                for n, v in per.items()
            }
            for lv, per in rows.items()
        },
    }


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


def format_attribution(rows: Sequence[Mapping[str, Any]], m: str, higher_is_better: bool = False) -> list[str]:
    """The attribution table as text lines (a header, one line per row, then a note on each
    row worse than the chip: :func:`attribution_worse_notes`)."""
    head = f"attribution (lowered-fixed with one quantity back in float; {m}, and its difference from lowered-fixed):"
    return [head] + [_attribution_line(r, m) for r in rows] + attribution_worse_notes(rows, m, higher_is_better)


WORSE_MARGIN = 0.25  # one seed: a row flagged as worse than the chip by this share of lowered-fixed's metric


def attribution_worse_notes(rows: Sequence[Mapping[str, Any]], m: str, higher_is_better: bool = False) -> list[str]:
    """A note per quantity-in-float row that is worse than lowered-fixed beyond the seeds'
    spread (its mean difference above the difference's standard deviation; one seed: by more
    than ``WORSE_MARGIN`` of lowered-fixed's metric), then one line on what such a row can
    mean: the quantity in float beside the roundings left, not the chip less one error."""
    fixed = next((r for r in rows if r["row"].startswith("all quantized")), None)
    if fixed is None:
        return []
    notes = []
    for r in rows:
        if not (r["row"].startswith("fixed, ") and r["row"].endswith(" in float")):
            continue
        worse = -r["difference"] if higher_is_better else r["difference"]
        several = r.get("seeds", 1) > 1
        if worse > (r["difference_std"] if several else WORSE_MARGIN * abs(fixed[m])):
            beyond = "beyond the seeds' spread" if several else f"by more than {WORSE_MARGIN:.0%}, one seed"
            notes.append(f"  note: {r['row']} is worse than lowered-fixed ({r['difference']:+.4f}, {beyond})")
    if notes:
        notes.append(
            "  (a row holds one quantity in float64 beside the chip's other roundings: not the chip less one error. "
            "The engine still floors every product onto its accumulator's grid, and a float value is seldom "
            "exactly 0 (a float tag never decays to 0), so the floor hits more products; "
            "Emulator(program, learn_float=(quantity, 'products')) leaves the floor out, and exact products also "
            "drop what a rule adds to offset it, e-prop's floor_offset)"
        )
    return notes


def _attribution_line(row: Mapping[str, Any], m: str) -> str:
    """One row: the metric (mean +- std over seeds when there are several) and its absolute
    difference from lowered-fixed (negative: the row is better than the chip)."""
    if "std" in row:
        return (
            f"  {row['row']:34s} {row[m]:9.4f} +- {row['std']:.4f}   "
            f"difference {row['difference']:+9.4f} +- {row['difference_std']:.4f}  ({row['seeds']} seeds)"
        )
    return f"  {row['row']:34s} {row[m]:9.4f}   difference {row['difference']:+9.4f}"


def attribution_over_seeds(reports: Sequence[CheckReport]) -> list[dict[str, Any]]:
    """The attribution rows of several runs of the same check with different seeds: per row,
    the metric's mean and standard deviation (ddof 1) and the mean and standard deviation of
    its difference from that seed's lowered-fixed. Rows run for every seed only."""
    if not reports:
        return []
    m = reports[0].config["metric"]
    names = [r["row"] for r in reports[0].attribution]
    out = []
    for name in names:
        per = [next((r for r in rep.attribution if r["row"] == name), None) for rep in reports]
        if any(r is None for r in per):
            continue
        v = np.array([r[m] for r in per])
        d = np.array([r["difference"] for r in per])
        ddof = 1 if len(per) > 1 else 0
        out.append(
            {
                "row": name,
                m: float(v.mean()),
                "std": float(v.std(ddof=ddof)),
                "difference": float(d.mean()),
                "difference_std": float(d.std(ddof=ddof)),
                "seeds": len(per),
            }
        )
    return out


class _Progress:
    """Progress of a long check on stderr: a bar redrawn in place on a terminal, otherwise (a
    log, ``make demo``) one line per tenth of the work."""

    def __init__(self, total: int, enabled: bool, tty: bool | None = None, label: str = "check"):
        self.total, self.done, self.enabled, self.t0, self.label = total, 0, enabled, time.perf_counter(), label
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.printed = 0  # tenths printed (lines mode)

    def __call__(self, what: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        frac = self.done / self.total
        el = time.perf_counter() - self.t0
        eta = el / frac - el if frac else 0.0
        if self.tty:
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r[{bar:30s}] {100 * frac:3.0f}% {what[:40]:40s} {el:5.0f}s, ~{eta:4.0f}s left")
            if self.done >= self.total:
                sys.stderr.write("\n")
        elif int(10 * frac) > self.printed or self.done >= self.total:
            self.printed = int(10 * frac)
            sys.stderr.write(f"  {self.label}: {100 * frac:3.0f}% ({what}), {el:.0f} s, ~{eta:.0f} s left\n")
        sys.stderr.flush()


# -- check -------------------------------------------------------------------------------------
# Long enough to learn: on examples/eprop_pattern.yaml (20 in, 30 LIF, lr 3e-3) the reference's
# NMSE, mean of the last 10 iterations, after 100 / 160 / 200 / 300 iterations: 0.25 / 0.16 /
# 0.12 / 0.079 (seed 0), 0.20 / 0.11 / 0.082 / 0.066 (seed 1), 0.079 / 0.070 / 0.065 / 0.056 (seed 2).
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
    workers: int | None = None,
) -> CheckReport:
    """Check the learning rule of ``model`` (a path to a model YAML or a Network) on
    ``profile`` with ``task``: e-prop here (see the module docstring); STDP, R-STDP and custom
    rules in :mod:`.check_spiking`; RFLO on ``rflo-periodic`` (``model="rflo"``: the task
    defines the rate network) in :mod:`.check_rate`; tasks that define their own network (the
    model names the rule: np, wp, chl, vkf, rls) in the modules :func:`_task_network_check` names.
    Writes ``report.json``, ``summary.txt`` and PNG plots to ``out`` when given.
    ``attribution``: True (every row of :data:`ATTRIBUTION_ROWS`), False, or the rows to run
    (``("nearest",)``: only the round-to-nearest run). ``iterations``: trials each level learns
    (:data:`ITERATIONS` by default: enough for the reference to learn the example).
    ``workers``: threads the learning curves' levels run on (default: one per core; the
    results do not depend on it). See the module docstring for what is measured.

    The e-prop check in steps: the inputs checked (:func:`_checked_rules`), the Program
    compiled, the run's task and levels (:class:`_EpropRun`), then the four stages:
    :func:`_stage_alignment`, :func:`_stage_initial_spikes`, :func:`_stage_curves` (which
    also runs the attribution rows, summarized by :func:`_attribution`) and
    :func:`_stage_final_spikes`."""
    from ..compiler import compile
    from ..tasks import TASKS

    t_start = time.perf_counter()
    if task not in TASKS:
        raise CheckError([Problem("task", f"unknown task {task!r} (known: {', '.join(sorted(TASKS))})")])
    task_check = _task_network_check(task)
    if task_check is not None:  # the task defines the network; the model names the rule
        return task_check(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots)
    net, rules, rows = _checked_rules(model, attribution, iterations, align, steps)
    prog = compile(net, profile, out=io.StringIO())
    if "eprop" not in rules:  # the spike-timing family (STDP, R-STDP, custom rule strings)
        return _check_spiking(net, prog, model, profile, task, iterations, seed, align, rows, steps, progress, out,
                              plots, t_start)  # fmt: skip
    if rules != {"eprop"}:
        raise CheckError([Problem("model", f"check runs one rule family at a time; this model mixes {sorted(rules)}")])
    run = _EpropRun.of(net, prog, task, seed, steps)
    rows_attr, attribution_note = _attribution_runs(prog, rows, profile)
    bar = _Progress(align + iterations * (3 + int(bptt) + len(rows_attr)) + 1,
                    sys.stderr.isatty() if progress is None else progress)  # fmt: skip
    rep = run.report(model, profile, task, iterations, align, attribution_note)
    _stage_compile(rep, run, bptt, rows_attr)
    _stage_alignment(rep, run, align, bptt, bar)
    _stage_initial_spikes(rep, run, bar)
    last = _stage_curves(rep, run, iterations, bptt, rows_attr, bar, workers or os.cpu_count() or 1)
    if rows_attr:
        rep.attribution = _attribution(rep.final, [row for row, _ in rows_attr], run.tk.metric_name)
    _stage_final_spikes(rep, run, last, iterations)
    rep.timing["total_s"] = time.perf_counter() - t_start
    if out is not None:
        _write(rep, Path(out), plots)
    return rep


def requested_rows(attribution, valid: Sequence[str], task: str) -> tuple[str, ...]:
    """The attribution rows ``attribution`` asks for (True: all of ``valid``; False/None: none),
    or a :class:`CheckError` naming any row ``task``'s check does not have."""
    rows = tuple(valid) if attribution is True else tuple(attribution or ())
    unknown = sorted(set(rows) - set(valid))
    if unknown:
        raise CheckError(
            [Problem("check", f"unknown attribution rows {unknown} for {task} (valid: {', '.join(valid)})")]
        )
    return rows


def _task_network_check(task: str):
    """The check of a task that defines its own network (the model argument names only the
    rule): Murray's rate network (:mod:`.check_rate`), the perceptron of the perturbation rules,
    contrastive XOR, the volatile-reward task, Kim & Chow's RLS network, Buonomano's timing
    network, Bourdoukan & Deneve's balanced network and Alemi et al.'s basis network; None for
    tasks whose network the model file gives."""
    from . import (
        check_balanced,
        check_basis,
        check_contrastive,
        check_perturbation,
        check_rls,
        check_scaling,
        check_volatility,
    )

    if task in RATE_TASKS:
        return _check_rate
    for mod in (
        check_perturbation,
        check_contrastive,
        check_volatility,
        check_rls,
        check_scaling,
        check_balanced,
        check_basis,
    ):
        if task in mod.TASKS:
            return mod.run
    return None


def _checked_rules(model, attribution, iterations: int, align: int, steps: int | None):
    """The network, its set of rule names and the attribution rows asked for; every argument
    the check cannot run is a :class:`CheckError`."""
    from ..graph.io import load_network

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
    return net, rules, rows


@dataclass
class _EpropRun:
    """What every stage of an e-prop check shares: the network and its Program, the task,
    the input and readout populations, the plastic projections, the rule's parameters."""

    net: Any
    prog: Any
    tk: Any
    inp: str
    readout: str
    names: list[str]
    hidden: list[str]
    target_key: str
    params: EpropParams
    seed: int

    @classmethod
    def of(cls, net, prog, task: str, seed: int, steps: int | None) -> _EpropRun:
        from ..graph import LI, SpikeInput
        from ..tasks import make

        ins = [p for p in net.populations if isinstance(p.neuron, SpikeInput)]
        outs = [p for p in net.populations if isinstance(p.neuron, LI)]
        if len(ins) != 1:
            found = f"found {len(ins)}"
            raise CheckError([Problem("model", f"check feeds the task to one spike-input population, {found}")])
        inp, ro = ins[0], outs[0]
        plastic = [p for p in net.projections if p.plasticity is not None and p.plasticity.name == "eprop"]
        params = EpropParams.from_mapping(dict(plastic[0].plasticity.params))
        overrides: dict[str, Any] = {"n_in": inp.size}
        if task == "pattern-generation":
            n_rec = sum(p.size for p in net.populations if p.neuron.model in ("LIF", "ALIF"))
            overrides.update(n_out=ro.size, n_rec=n_rec)
            if steps:
                overrides["steps"] = steps
        elif task == "evidence-accumulation":
            overrides["batch"] = 1
        tk = make(task, seed=seed, **overrides)
        if tk.n_out != ro.size:
            raise CheckError([Problem("task", f"{task} has {tk.n_out} outputs; the readout {ro.name!r} has {ro.size}")])
        has_error_units = any(q.name == f"{ro.name}.error" for q in prog.populations)
        target_key = f"{ro.name}.error/target" if has_error_units else f"{ro.name}/target"
        hidden = [p.name for p in net.populations if p.neuron.model in ("LIF", "ALIF")]
        return cls(net, prog, tk, inp.name, ro.name, [p.name for p in plastic], hidden, target_key, params, seed)

    @property
    def dt(self) -> float:
        return self.prog.dt_ms

    def trial_data(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Iteration ``k``'s inputs and targets (NaN outside the task's mask)."""
        t = self.tk.sample(k) if self.tk.sample is not None else self.tk
        tg = np.array(t.targets)
        if t.mask is not None:
            tg[np.asarray(t.mask) == 0] = np.nan
        return np.asarray(t.inputs), tg

    def emulated(self, **kw) -> _Emulated:
        return _Emulated(self.prog, self.names, self.inp, self.readout, self.target_key, seed=self.seed, **kw)

    def reference(self, method: str = "online") -> _Reference:
        return _Reference(self.net, self.dt, self.prog.profile, self.params, method=method)

    def report(self, model, profile: str, task: str, iterations: int, align: int, note: str | None) -> CheckReport:
        """An empty report with the run's configuration, ``note`` and the levels' notes."""
        rep = CheckReport(
            config={
                "model": str(model) if isinstance(model, (str, os.PathLike)) else self.net.name,
                "profile": profile,
                "task": task,
                "seed": self.seed,
                "iterations": iterations,
                "steps": self.tk.steps,
                "align": align,
                "tail": _tail(iterations),
                "metric": self.tk.metric_name,
                "rule": "eprop",
                "params": {k: getattr(self.params, k) for k in EpropParams.__dataclass_fields__},
                "dt_ms": self.dt,
            }
        )
        rep.notes += [note] if note else []
        rep.notes += [
            "reference: float64 online e-prop (per-synapse traces, every step's update applied at once, "
            "lr * (1 - kappa): the lowering's normalization of the readout filter) with the chip's conventions",
            "bptt: float64 BPTT, the trial's summed gradient applied at its end with the same step size",
            "lowered-float / lowered-fixed: the emulator on the compiled Program, learning online within each trial",
        ]
        return rep


def _tail(iterations: int) -> int:
    """Iterations averaged for a level's final metric (one trial's metric jumps)."""
    return max(1, min(10, iterations // 5 or 1))


def _attribution_runs(prog, rows: Sequence[str], profile: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """(row, the emulator's switches) for the rows asked for that the chip's learning engine
    has, and a note naming the rows it has not."""
    takes = {
        "sum_of_products": set(ATTRIBUTION_ROWS),
        "eprop_fixed": {"weights", "traces", "graded", "nearest"},  # ReckOn: no tags, no products
    }.get(prog.profile.learning.kind, set())  # programmable cores run the exact rule: nothing to switch
    runs: list[tuple[str, dict[str, Any]]] = [
        (f"fixed, {q} in float", {"learn_float": (q,)}) for q in LEARN_QUANTITIES if q in rows and q in takes
    ]
    if "nearest" in rows and "nearest" in takes:
        runs.append(("fixed, round-to-nearest", {"learn_rounding": "nearest"}))
    skipped = [r for r in rows if r not in takes]
    note = (
        f"attribution: {profile}'s learning engine has no {', '.join(skipped)} to switch; those rows are not run"
        if skipped
        else None
    )
    return runs, note


def _stage_compile(rep: CheckReport, run: _EpropRun, bptt: bool, rows_attr: Sequence[tuple[str, dict[str, Any]]],
                   workers: int | None = None) -> None:  # fmt: skip
    """When numba's on-disk cache lacks an emulated level's kernels (the first run after an
    install or a change of the kernels, a new model or profile): every level's first trial
    run in worker processes on every core, to compile the kernels side by side (see
    :func:`neurocomp.kernels.warm`). The stages then load them from disk; no result changes."""
    from ..emulator.fused import fused_kernel
    from ..kernels import on_disk, warm

    t0 = time.perf_counter()
    levels: dict[str, dict[str, Any]] = {}  # one level per kernel: levels that share one compile it once
    for kw in [{}, {"learn_arithmetic": "float"}, *(kw for _, kw in rows_attr)]:
        k = fused_kernel(run.emulated(**kw).emu)
        if k is not None and not on_disk(k):
            levels.setdefault(k.__module__, kw)
    if not levels:
        return

    def level(kw: dict[str, Any]) -> Callable[[], Any]:
        return lambda: run.emulated(**kw).trial(*run.trial_data(0), record=("v", "spikes"))

    def reference(method: str) -> Callable[[], Any]:
        return lambda: run.reference(method).update(*run.trial_data(0))

    def static() -> Any:  # the initial spikes' run, without learning
        x, tg = run.trial_data(0)
        run.emulated().emu.run(run.tk.steps, inputs={run.inp: x, run.target_key: tg[:, 0, :]}, record=["spikes"])

    # the chip's level first (it compiles the kernels that every level shares), beside it the
    # kernels of no level (the run without learning, the references), then the other levels
    first, *others = [level(kw) for kw in levels.values()]
    jobs = [first, static, reference("online"), *([reference("bptt")] if bptt else []), *others]
    if warm(jobs, workers):
        rep.timing["compile_s"] = time.perf_counter() - t0


def _stage_alignment(rep: CheckReport, run: _EpropRun, align: int, bptt: bool, bar: _Progress) -> None:
    """Teacher-forced: for each of the first ``align`` updates every level (and BPTT) starts
    from the reference's weights; its update's cosine and relative error against the
    reference's, per projection. The reference then takes its own step."""
    t0 = time.perf_counter()
    ref = run.reference()
    levels = {"lowered-float": run.emulated(learn_arithmetic="float"), "lowered-fixed": run.emulated()}
    bp = run.reference("bptt") if bptt else None
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for k in range(align):
        x, tg = run.trial_data(k)
        w0 = ref.weights()
        dw_ref, _, _ = ref.update(x, tg)
        compare = {}
        for lv, em in levels.items():
            em.set_weights(w0)
            start = em.weights()
            em.trial(x, tg)
            compare[lv] = {n: em.weights()[n] - start[n] for n in run.names}
        if bp is not None:
            bp.model = ref.model.copy()
            compare["bptt"] = bp.update(x, tg)[0]
        for lv, dws in compare.items():
            for n in run.names:
                rows.setdefault(lv, {}).setdefault(n, []).append((_cos(dws[n], dw_ref[n]), _rel(dws[n], dw_ref[n])))
        ref.apply(dw_ref)
        bar(f"alignment {k + 1}/{align}")
    rep.alignment = alignment_summary(align, rows)
    rep.timing["alignment_s"] = time.perf_counter() - t0


def _hidden_spikes(run: _EpropRun, rec: Mapping[str, np.ndarray]) -> np.ndarray:
    """Trial 0's spikes of every hidden population side by side, ``[steps, neurons]``."""
    return np.concatenate([rec[f"{h}/spikes"][:, 0, :] for h in run.hidden], axis=1)


def _stage_initial_spikes(rep: CheckReport, run: _EpropRun, bar: _Progress) -> None:
    """Spike agreement at the initial weights: the float64 reference dynamics against the chip's."""
    x0, tg0 = run.trial_data(0)
    tr0 = run.reference().model.forward(x0, gamma=run.params.dampening)
    chip0 = run.emulated()
    rec0 = chip0.emu.run(run.tk.steps, inputs={run.inp: x0, run.target_key: tg0[:, 0, :]}, record=["spikes"])
    rep.spikes["reference vs lowered-fixed (initial weights)"] = spike_agreement(
        tr0.z[:, 0, :], _hidden_spikes(run, rec0), run.dt
    )
    bar("spike agreement")


def _stage_curves(rep: CheckReport, run: _EpropRun, iterations: int, bptt: bool,
                  rows_attr: Sequence[tuple[str, dict[str, Any]]], bar: _Progress,
                  workers: int = 1) -> dict[str, dict]:  # fmt: skip
    """Every level (the reference, BPTT, lowered-float, lowered-fixed and the attribution
    rows) learning freely for ``iterations`` trials: loss and metric per iteration, the mean
    of the last few as the final values, the levels on ``workers`` threads. Returns the two
    lowered levels' last recordings."""
    t0 = time.perf_counter()
    tk = run.tk

    from ..emulator import NonFiniteWeightsError
    from ..emulator.programmable import nonfinite_problems

    diverged: dict[str, tuple[int, str]] = {}  # level -> (the iteration that left weights inf or NaN, why)

    def stop(level: str, k: int, err: NeurocompError) -> None:
        diverged[level] = (k, f"{level} stopped at iteration {k}, its weights no longer finite: {err}")

    def step_ref(r: _Reference, level: str) -> Callable[[int], tuple[float, float]]:
        def go(k: int) -> tuple[float, float]:
            if level in diverged:
                return float("nan"), float("nan")
            x, tg = run.trial_data(k)
            dw, y, _ = r.update(x, tg)
            r.apply(dw)
            bad = nonfinite_problems(r.weights(), f"after iteration {k}")
            if bad:
                stop(level, k, NonFiniteWeightsError(list(bad.values()), tuple(bad)))
            return _loss(y, tg), _score(tk, k, y)

        return go

    edges: dict[str, dict[str, list[int]]] = {}  # level -> projection -> weights at the edge per iteration
    synapses: dict[str, int] = {}

    def step_emu(e: _Emulated, level: str, keep: dict | None = None) -> Callable[[int], tuple[float, float]]:
        def go(k: int) -> tuple[float, float]:
            if level in diverged:  # the chip would run on silent (NaN membranes never spike): not emulated
                return float("nan"), float("nan")
            x, tg = run.trial_data(k)
            try:
                rec = e.trial(x, tg, record=("v", "spikes"))
            except NonFiniteWeightsError as exc:
                stop(level, k, exc)
                rec = e.output(exc.recording)
            if keep is not None:
                keep["rec"] = rec
            for n, (count, size) in e.emu.weights_at_edge().items():
                edges.setdefault(level, {}).setdefault(n, []).append(int(count[0]))
                synapses[n] = size
            return _loss(rec["y"], tg), _score(tk, k, rec["y"])

        return go

    last_rec: dict[str, dict] = {"lowered-float": {}, "lowered-fixed": {}}
    runs: dict[str, Callable[[int], tuple[float, float]]] = {"reference": step_ref(run.reference(), "reference")}
    if bptt:
        runs["bptt"] = step_ref(run.reference("bptt"), "bptt")
    runs["lowered-float"] = step_emu(run.emulated(learn_arithmetic="float"), "lowered-float", last_rec["lowered-float"])
    runs["lowered-fixed"] = step_emu(run.emulated(), "lowered-fixed", last_rec["lowered-fixed"])
    for row, kw in rows_attr:
        runs[row] = step_emu(run.emulated(**kw), row)
    tail = _tail(iterations)
    rep.timing["levels_s"], rep.timing["levels_cpu_s"] = {}, {}
    lock = threading.Lock()

    def level_curve(level: str) -> tuple[list[float], list[float], float, float]:
        loss, metric = [], []
        t_level, c_level = time.perf_counter(), time.thread_time()
        for k in range(iterations):
            lo, me = runs[level](k)
            loss.append(lo)
            metric.append(me)
            with lock:
                bar(f"{level} {k + 1}/{iterations}")
        return loss, metric, time.perf_counter() - t_level, time.thread_time() - c_level

    # the levels are independent (each its own state and random streams): they run side by side
    # on threads. The emulated levels' compiled trials release the GIL, the references' numpy
    # mostly holds it: BPTT (the longest) first and the reference last, each beside emulated levels
    order = [lv for lv in runs if lv == "bptt"] + [lv for lv in runs if lv not in ("bptt", "reference")]
    order.append("reference")
    with ThreadPoolExecutor(max(1, min(workers, len(runs)))) as pool:
        done = dict(zip(order, pool.map(level_curve, order), strict=True))
    for level in runs:
        loss, metric, wall, cpu = done[level]
        rep.timing["levels_s"][level] = wall  # seconds for all iterations (wall clock, levels side by side)
        rep.timing["levels_cpu_s"][level] = cpu  # the level's own CPU seconds
        rep.curves[level] = {"loss": loss, tk.metric_name: metric}
        rep.final[level] = {
            tk.metric_name: float(np.mean(metric[-tail:])),  # NaN for a level that diverged
            "loss": float(np.mean(loss[-tail:])),
            "first": metric[0],
        }
        if level in diverged:  # noted in the levels' order (they finish in any order)
            rep.final[level]["diverged_at"], why = diverged[level]
            rep.notes.append(why)
    rep.saturation = {lv: {n: saturation_stats(c, synapses[n]) for n, c in per.items()}
                      for lv in runs if (per := edges.get(lv))}  # fmt: skip
    rep.timing["curves_s"] = time.perf_counter() - t0
    return last_rec



def _stage_final_spikes(rep: CheckReport, run: _EpropRun, last: Mapping[str, dict], iterations: int) -> None:
    """Spike agreement between lowered-float and lowered-fixed on the last iteration, and the
    raster of lowered-fixed's last trial."""
    a, b = last["lowered-float"].get("rec"), last["lowered-fixed"].get("rec")
    if a and b:
        sb = _hidden_spikes(run, b)
        rep.spikes["lowered-float vs lowered-fixed (last iteration)"] = spike_agreement(_hidden_spikes(run, a), sb,
                                                                                         run.dt)  # fmt: skip
        rep.raster = (sb, b["y"][:, 0, :], run.trial_data(iterations - 1)[1][:, 0, :])


def _check_rate(model, task, iterations, seed, align, attribution, steps, profile, progress, out, plots):
    from ..tasks import make
    from .check_rate import RATE_ROWS, check_rate

    rows = requested_rows(attribution, RATE_ROWS, task)
    if iterations < 1 or align < 0:
        raise CheckError([Problem("check", f"iterations must be >= 1 and align >= 0, got {iterations}, {align}")])
    tk = make(task, seed=seed, **({"steps": steps} if steps else {}))
    rep = check_rate(str(model), task, tk, profile=profile, iterations=iterations, seed=seed, align=align, rows=rows,
                     progress=progress)  # fmt: skip
    if out is not None:
        _write(rep, Path(out), plots)
    return rep


def _check_spiking(net, prog, model, profile, task, iterations, seed, align, rows, steps, progress, out, plots,
                   t_start) -> CheckReport:  # fmt: skip
    from ..tasks import make
    from .check_spiking import check_spiking

    try:
        tk = make(task, seed=seed, **({"steps": steps} if steps else {}))
    except ValueError as exc:
        raise CheckError([Problem("task", str(exc))]) from None
    name = str(model) if isinstance(model, (str, os.PathLike)) else net.name
    rep = check_spiking(net, prog, task, tk, model_name=name, profile=profile, iterations=iterations, seed=seed,
                        align=align, rows=rows, progress=progress)  # fmt: skip
    rep.timing["total_s"] = time.perf_counter() - t_start
    if out is not None:
        _write(rep, Path(out), plots)
    return rep


def _attribution(final: Mapping[str, Mapping[str, float]], rows: Sequence[str], m: str) -> list[dict[str, Any]]:
    """The attribution table: lowered-fixed, each row, lowered-float; each with its final
    metric and its absolute difference from lowered-fixed."""
    fixed = final["lowered-fixed"][m]
    names = ["all quantized (lowered-fixed)", *rows, "all float (lowered-float)"]
    levels = ["lowered-fixed", *rows, "lowered-float"]
    pairs = zip(names, levels, strict=True)
    return [{"row": n, m: final[lv][m], "difference": final[lv][m] - fixed} for n, lv in pairs]


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


# one colour and hatch per level, the same in every plot
_STYLE = {
    "reference": ("tab:gray", ""),
    "bptt": ("tab:purple", "xx"),
    "lowered-float": ("tab:blue", "//"),
    "lowered-fixed": ("tab:red", ".."),
}
_DASH = {"reference": "--", "bptt": ":", "lowered-float": "-", "lowered-fixed": "-"}  # reference and BPTT start equal


def _save(fig, out: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_write(out / name, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return name


def _plots(rep: CheckReport, out: Path) -> list[str]:
    """The report's PNGs. Every plot has a title, labelled axes, a legend, and linear axes
    from zero (cosines: from -1 to 1, with zero marked), so that lengths compare."""
    import matplotlib

    matplotlib.use("Agg")
    files = [_plot_curves(rep, out), _plot_alignment(rep, out)]
    if rep.attribution:
        files.append(plot_attribution(rep.attribution, rep.config, out))
    if rep.raster is not None:
        files.append(_plot_raster(rep, out))
    return [f for f in files if f]


def _title(rep_config: Mapping[str, Any], what: str) -> str:
    c = rep_config
    seed = f"seeds {c['seed']}" if "," in str(c["seed"]) else f"seed {c['seed']}"
    return f"{what}\n{Path(str(c['model'])).stem} on {c['profile']}, task {c['task']}, {seed}"


def _plot_curves(rep: CheckReport, out: Path) -> str:
    import matplotlib.pyplot as plt

    m = rep.config["metric"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    top = 0.0
    for level, (colour, _) in _STYLE.items():
        if level in rep.curves:
            y = np.asarray(rep.curves[level][m], np.float64)
            x = np.arange(1, len(y) + 1)
            ax.plot(x, y, ls=_DASH[level], marker="o" if len(y) < 20 else None, ms=3, color=colour, label=level,
                    lw=2 if level.startswith("lowered") else 1.5)  # fmt: skip
            top = max(top, float(np.nanmax(y)) if np.isfinite(y).any() else 0.0)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("iteration (one trial each)")
    ax.set_ylabel(f"{m} per iteration (lower is better)")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.05 * top if top > 0 else 1.0)
    ax.set_title(_title(rep.config, "learning curves of the three levels"))
    ax.legend()
    return _save(fig, out, "learning_curves.png")


def _plot_alignment(rep: CheckReport, out: Path) -> str:
    """Grouped bars: per projection, each level's mean cosine with the reference's update,
    side by side (never overlapping), with the range over the updates as error bars."""
    import matplotlib.pyplot as plt

    levels = rep.alignment.get("levels", {})
    projections = sorted({n for per in levels.values() for n in per})
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 * len(projections) + 2), 4.2))
    width = 0.8 / max(1, len(levels))
    for i, (lv, per) in enumerate(levels.items()):
        colour, hatch = _STYLE.get(lv, ("tab:green", "--"))
        xs = np.arange(len(projections)) + (i - (len(levels) - 1) / 2) * width
        mean = np.array([per[n]["cosine_mean"] if n in per else np.nan for n in projections])
        lo = np.array([np.nanmin(per[n]["cosine"]) if n in per else np.nan for n in projections])
        hi = np.array([np.nanmax(per[n]["cosine"]) if n in per else np.nan for n in projections])
        ax.bar(xs, mean, width, color=colour, hatch=hatch, edgecolor="black", lw=0.6, label=lv,
               yerr=[mean - lo, hi - mean], capsize=3)  # fmt: skip
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(projections)), projections)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("projection")
    ax.set_ylabel("cosine with the reference's update")
    n = rep.alignment.get("updates", 0)
    ax.set_title(_title(rep.config, f"update alignment (teacher-forced, mean and range of {n} updates)"))
    if levels:
        ax.legend(fontsize=8)
    return _save(fig, out, "alignment.png")


def plot_attribution(rows: Sequence[Mapping[str, Any]], config: Mapping[str, Any], out: Path,
                     name: str = "attribution.png") -> str:  # fmt: skip
    """Horizontal bars of each attribution row's final metric from zero, the two ends
    (lowered-fixed, lowered-float) in their level colours, the difference from lowered-fixed
    written at each bar; with several seeds, error bars of one standard deviation."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    m = config["metric"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.8))
    ys = np.arange(len(rows))
    vals = np.array([r[m] for r in rows], np.float64)
    err = np.array([r.get("std", 0.0) for r in rows], np.float64)
    kind = ["lowered-fixed" if "lowered-fixed" in r["row"] else "lowered-float" if "lowered-float" in r["row"]
            else "row" for r in rows]  # fmt: skip
    colours = {"lowered-fixed": "tab:red", "lowered-float": "tab:blue", "row": "tab:orange"}
    hatches = {"lowered-fixed": "..", "lowered-float": "//", "row": ""}
    legend = {
        "lowered-fixed": "lowered-fixed (all quantized)",
        "row": "one quantity back in float",
        "lowered-float": "lowered-float (all float)",
    }
    for k, label in legend.items():
        sel = [i for i, kk in enumerate(kind) if kk == k]
        if sel:
            ax.barh(ys[sel], vals[sel], xerr=err[sel] if err.any() else None, color=colours[k], hatch=hatches[k],
                    edgecolor="black", lw=0.6, label=label, capsize=3)  # fmt: skip
    top = float(np.nanmax(vals + err)) if np.isfinite(vals).any() else 1.0
    for y, r in zip(ys, rows, strict=True):
        ax.text(r[m] + r.get("std", 0.0) + 0.01 * top, y, f"{r['difference']:+.4f}", va="center", fontsize=8)
    ax.set_yticks(ys, [r["row"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.25 * top if top > 0 else 1.0)
    seeds = rows[0].get("seeds", 1) if rows else 1
    spread = f", mean +- std over {seeds} seeds" if seeds > 1 else ""
    ax.set_xlabel(f"final {m} (mean of the last {config.get('tail', '?')} iterations{spread})\n"
                  "number at each bar: difference from lowered-fixed")  # fmt: skip
    ax.set_ylabel("attribution row")
    ax.set_title(_title(config, "attribution: lowered-fixed with one quantity back in float"))
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, out, name)


def _plot_raster(rep: CheckReport, out: Path) -> str:
    import matplotlib.pyplot as plt

    spk, y, tg = rep.raster
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    t, n = np.nonzero(spk)
    a1.plot(t, n, "|", ms=3, color="k", label="spike")
    a1.set_ylabel("hidden neuron")
    a1.set_ylim(0, max(1, spk.shape[1]))
    a1.legend(loc="upper right", fontsize=8)
    a1.set_title(_title(rep.config, "lowered-fixed, last iteration: hidden spikes and readout"))
    for j in range(y.shape[1]):
        a2.plot(y[:, j], color=f"C{j}", label=f"readout {j}")
        a2.plot(tg[:, j], "--", color=f"C{j}", label=f"target {j}")
    a2.axhline(0.0, color="black", lw=0.6)
    a2.set_xlim(0, spk.shape[0])
    a2.set_xlabel("step")
    a2.set_ylabel("output (model units)")
    a2.legend(loc="upper right", fontsize=8, ncol=2)
    return _save(fig, out, "raster.png")
