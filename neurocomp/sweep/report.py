"""Plots and a summary of a finished sweep.

* ``metric_vs_<x>.png``: the final metric of lowered-fixed (solid) and lowered-float (dashed)
  against the x axis, one line per combination of the other axes (mean over seeds, each seed
  a dot);
* ``ratio_vs_<x>.png``: lowered-fixed / lowered-float against the x axis, with the 1.5x line;
* ``pareto.png``: the metric against synaptic memory and against energy per step, every
  configuration a point, the Pareto front (no other point both smaller and more accurate) joined;
* ``summary.md``: the mean and spread over seeds per configuration, and the failed cells.

The x axis is the spec's ``report: {x: AXIS}``, else the first axis whose labels are all
numbers, else the first axis. Axes are linear and start at zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SweepView:
    """What a report needs of a sweep (from its spec, or from ``OUT/sweep.json`` afterwards)."""

    name: str
    axes: tuple[str, ...]
    report: Mapping[str, Any]


RATIO_TARGET = 1.5  # the project's target: lowered-fixed within 1.5x of lowered-float


def _configs(records: Sequence[dict[str, Any]], spec: SweepView, x: str) -> dict[tuple, dict[Any, list[dict]]]:
    """(labels of the other non-seed axes) -> x label -> the ok records of those cells."""
    others = [a for a in spec.axes if a not in (x, "seed")]
    groups: dict[tuple, dict[Any, list[dict]]] = {}
    for rec in records:
        key = tuple(rec["labels"][a] for a in others)
        groups.setdefault(key, {}).setdefault(rec["labels"][x], [])
        if rec["status"] == "ok":
            groups[key][rec["labels"][x]].append(rec)
    return groups


def _x_axis(spec: SweepView, records: Sequence[dict[str, Any]]) -> str:
    x = spec.report.get("x")
    if x in spec.axes and x != "seed":
        return x
    axes = [a for a in spec.axes if a != "seed"]
    numeric = [a for a in axes if all(_is_num(r["labels"][a]) for r in records)]
    return (numeric or axes or ["seed"])[0]


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _name(spec: SweepView, key: tuple, x: str) -> str:
    others = [a for a in spec.axes if a not in (x, "seed")]
    return ", ".join(f"{a} {v}" for a, v in zip(others, key, strict=True)) or "all cells"


def _get(rec: dict, group: str, col: str) -> float:
    v = rec["measures"][group].get(col)
    return float("nan") if v is None else float(v)


def write_report(records: Sequence[dict[str, Any]], spec: SweepView, out: Path) -> list[Path]:
    """Write the plots and ``summary.md`` of a sweep into ``out``; returns the files written.
    Without matplotlib only the summary is written."""
    out.mkdir(parents=True, exist_ok=True)
    x = _x_axis(spec, records)
    files = [_summary(records, spec, x, out / "summary.md")]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return files
    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        return files
    metric = ok[0]["measures"]["final"]["metric"]
    groups = _configs(records, spec, x)
    files.append(_metric_plot(plt, groups, spec, x, metric, out))
    files.append(_ratio_plot(plt, groups, spec, x, out))
    files.append(_pareto_plot(plt, groups, spec, x, metric, out))
    return files


def _positions(labels: list) -> tuple[np.ndarray, list | None]:
    """Numeric labels are their own x; others sit at 1, 2, ... with their names as ticks."""
    if all(_is_num(v) for v in labels):
        return np.asarray(labels, dtype=float), None
    return np.arange(1, len(labels) + 1, dtype=float), [str(v) for v in labels]


def _finish(ax, title: str, xlabel: str, ylabel: str, ticks: list | None, xs: np.ndarray) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ticks is not None:
        ax.set_xticks(xs, ticks)
    lim = ax.dataLim  # linear axes from zero, with room beyond the largest point
    ax.set_xlim(0, 1.06 * lim.x1 if np.isfinite(lim.x1) and lim.x1 > 0 else 1)
    ax.set_ylim(0, 1.08 * lim.y1 if np.isfinite(lim.y1) and lim.y1 > 0 else 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _metric_plot(plt, groups, spec: SweepView, x: str, metric: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ticks = np.zeros(0), None
    for i, (key, by_x) in enumerate(groups.items()):
        labels = list(by_x)
        xs, ticks = _positions(labels)
        color = f"C{i % 10}"
        for level, style in (("lowered_fixed", "-"), ("lowered_float", "--")):
            col = f"{metric}_{level}"
            ys = [[_get(r, "final", col) for r in by_x[lab]] for lab in labels]
            mean = [np.mean(v) if v else np.nan for v in ys]
            name = f"{_name(spec, key, x)}: {level.replace('_', '-')}"
            ax.plot(xs, mean, style, color=color, marker="o" if style == "-" else None, label=name)
            if style == "-":
                for xv, v in zip(xs, ys, strict=True):
                    ax.plot([xv] * len(v), v, ".", color=color, alpha=0.4)
    _finish(ax, f"{spec.name}: final {metric} (mean over seeds; dots: seeds)", x, f"final {metric}", ticks, xs)
    failed = _failed_note(groups, spec, x)
    if failed:
        fig.text(0.01, 0.01, failed, fontsize=7, color="tab:red")
    fig.tight_layout(rect=(0, 0.04 if failed else 0, 1, 1))
    path = out / f"{metric}_vs_{x}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _failed_note(groups, spec: SweepView, x: str) -> str:
    """Which points are missing because their cells failed (the reasons are in summary.md)."""
    gone = [
        f"{_name(spec, key, x)}, {x} {label}"
        for key, by_x in groups.items()
        for label, recs in by_x.items()
        if not recs
    ]
    return ("no result (every seed failed, see summary.md): " + "; ".join(gone)) if gone else ""


def _ratio_plot(plt, groups, spec: SweepView, x: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ticks = np.zeros(0), None
    for i, (key, by_x) in enumerate(groups.items()):
        labels = list(by_x)
        xs, ticks = _positions(labels)
        ys = [[_get(r, "ratio", "ratio_fixed_float") for r in by_x[lab]] for lab in labels]
        ax.plot(xs, [np.mean(v) if v else np.nan for v in ys], "-o", color=f"C{i % 10}", label=_name(spec, key, x))
    ax.axhline(RATIO_TARGET, color="k", ls=":", lw=1, label=f"target {RATIO_TARGET}x")
    _finish(ax, f"{spec.name}: lowered-fixed / lowered-float (mean over seeds)", x, "fixed / float", ticks, xs)
    failed = _failed_note(groups, spec, x)
    if failed:
        fig.text(0.01, 0.01, failed, fontsize=7, color="tab:red")
    fig.tight_layout(rect=(0, 0.04 if failed else 0, 1, 1))
    path = out / f"ratio_vs_{x}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto_front(cost: Sequence[float], err: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both (smaller or equal cost and error,
    one of them strictly), sorted by cost."""
    pts = [(c, e, i) for i, (c, e) in enumerate(zip(cost, err, strict=True)) if np.isfinite(c) and np.isfinite(e)]
    front = [i for c, e, i in pts if not any(c2 <= c and e2 <= e and (c2 < c or e2 < e) for c2, e2, _ in pts)]
    return sorted(front, key=lambda i: (cost[i], err[i]))


def _pareto_plot(plt, groups, spec: SweepView, x: str, metric: str, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    col = f"{metric}_lowered_fixed"
    for ax, (cost_col, what) in zip(
        axes,
        (("synaptic_memory_bits", "synaptic memory (bits)"), ("energy_pj_per_step", "energy (pJ per step)")),
        strict=True,
    ):
        cost, err = [], []
        for i, (key, by_x) in enumerate(groups.items()):
            pts = [(np.mean([_get(r, "compile", cost_col) for r in rs]), np.mean([_get(r, "final", col) for r in rs]))
                   for rs in by_x.values() if rs]  # fmt: skip
            if pts:
                ax.plot(*zip(*pts, strict=True), "o", color=f"C{i % 10}", label=_name(spec, key, x))
                cost += [p[0] for p in pts]
                err += [p[1] for p in pts]
        front = pareto_front(cost, err)
        if front:
            ax.plot([cost[i] for i in front], [err[i] for i in front], "k-", lw=1, label="Pareto front")
        title = f"{metric} (lowered-fixed) against {what.split(' (')[0]}"
        _finish(ax, title, what, f"final {metric}", None, np.zeros(0))
    fig.suptitle(f"{spec.name}: accuracy against cost (each point a configuration, mean over seeds)")
    fig.tight_layout()
    path = out / "pareto.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _summary(records: Sequence[dict[str, Any]], spec: SweepView, x: str, path: Path) -> Path:
    ok = [r for r in records if r["status"] == "ok"]
    metric = ok[0]["measures"]["final"]["metric"] if ok else "metric"
    axes = [a for a in spec.axes if a != "seed"]
    cols = [f"{metric}_reference", f"{metric}_lowered_float", f"{metric}_lowered_fixed"]
    levels = [c.replace(f"{metric}_", f"{metric} ").replace("_", "-") for c in cols]
    head = [*axes, "cells ok", *levels, "fixed/float", "synaptic memory (bits)"]
    lines = [f"# sweep {spec.name}", "", "Mean +- standard deviation over seeds.", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups: dict[tuple, list[tuple[Any, dict]]] = {}
    for rec in records:
        groups.setdefault(tuple(rec["labels"][a] for a in axes), []).append(rec)
    for key, members in groups.items():
        good = [r for r in members if r["status"] == "ok"]
        cells = [f"{len(good)}/{len(members)}"]
        for c in cols:
            cells.append(_mean_sd([_get(r, "final", c) for r in good]))
        cells.append(_mean_sd([_get(r, "ratio", "ratio_fixed_float") for r in good], ".2f"))
        cells.append(_mean_sd([_get(r, "compile", "synaptic_memory_bits") for r in good], ".0f", sd=False))
        lines.append("| " + " | ".join([*map(str, key), *cells]) + " |")
    bad = [r for r in records if r["status"] != "ok"]
    if bad:
        lines += ["", "Failed cells:", ""]
        for r in bad:
            what = ", ".join(f"{a}={v}" for a, v in r["labels"].items())
            msg = " ".join(r["error"]["message"].split())[:300]
            lines.append(f"- {what}: {r['status']}: {r['error']['type']}: {msg}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _mean_sd(v: list[float], fmt: str = ".4f", sd: bool = True) -> str:
    if not v:
        return "-"
    m = format(float(np.mean(v)), fmt)
    return f"{m} +- {format(float(np.std(v)), fmt)}" if sd and len(v) > 1 else m
