"""One cell of a sweep: compile the model for the (overridden) profile, run ``check``, keep the measures.

:func:`run_cell` never raises for a problem of the cell itself: the error is recorded in the
result, so that one failing cell does not stop a sweep. Everything it returns except the
times (``wall_s``, ``measures["wall"]``) and ``worker`` is a function of the cell alone.
"""

from __future__ import annotations

import io
import os
import socket
import time
import traceback
from typing import Any

from .spec import Cell


def run_cell(cell: Cell, network: Any = None, profile: Any = None) -> dict[str, Any]:
    """The result record of ``cell``: ``status`` ``"ok"`` with ``measures`` (grouped as
    :data:`~neurocomp.sweep.spec.MEASURES`: ``final`` metric per level, ``ratio`` fixed/float,
    ``spikes`` agreement, ``compile`` report numbers, ``wall`` times in s) and ``curves`` (the
    metric per iteration and level), or ``"error"`` with ``error`` (type, message, traceback).

    ``network`` and ``profile``: the cell's model and (overridden) profile when the caller has
    them (the sweep ships them with the task, so a worker needs neither file); by default they
    are read from ``cell.model`` and ``cell.profile`` with ``cell.overrides``."""
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"key": cell.key, "labels": dict(cell.labels), "cell": _cell_dict(cell)}
    try:
        rec["measures"], rec["curves"] = _measure(cell, network, profile)
        rec["status"] = "ok"
    except Exception as exc:  # recorded, and the sweep goes on (a worker that dies is Dask's to handle)
        rec["status"] = "error"
        rec["error"] = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
    rec["wall_s"] = time.perf_counter() - t0
    rec["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return rec


def _cell_dict(cell: Cell) -> dict[str, Any]:
    return {
        "model": cell.model,
        "profile": cell.profile,
        "overrides": dict(cell.overrides),
        "rule_params": dict(cell.rule_params),
        "task": cell.task,
        "iterations": cell.iterations,
        "steps": cell.steps,
        "seed": cell.seed,
        "check": dict(cell.check),
    }


def _measure(cell: Cell, net: Any, prof: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from ..analysis.check import check
    from ..compiler import compile
    from ..graph.io import load_network
    from ..profiles.loader import load_profile_with

    net = load_network(cell.model) if net is None else net
    if cell.rule_params:
        net = net.with_rule_params(**cell.rule_params)
    prof = load_profile_with(cell.profile, cell.overrides) if prof is None else prof
    t0 = time.perf_counter()
    prog = compile(net, prof, out=io.StringIO())
    compile_s = time.perf_counter() - t0
    rep = check(
        net,
        prof,
        cell.task,
        iterations=cell.iterations,
        seed=cell.seed,
        steps=cell.steps,
        align=int(cell.check.get("align", 0)),
        attribution=False,  # a rounding or a float quantity is an axis of the sweep, not a row of each cell
        bptt=bool(cell.check.get("bptt", False)),
        plots=False,
        progress=False,
    )
    m = rep.config["metric"]
    final = {"metric": m, **{f"{m}_{_col(level)}": f[m] for level, f in rep.final.items()}}
    fx, fl = rep.final["lowered-fixed"][m], rep.final["lowered-float"][m]
    spikes = {}
    for name, col in (("reference vs lowered-fixed (initial weights)", "initial"),
                      ("lowered-float vs lowered-fixed (last iteration)", "learned")):  # fmt: skip
        s = rep.spikes.get(name)
        if s is not None:
            spikes[f"coincidence_{col}"] = s["coincidence"]
            spikes[f"rate_error_hz_{col}"] = s["rate_error_hz_mean"]
    out = {
        "final": final,
        "ratio": {"ratio_fixed_float": fx / fl if fl else float("nan")},
        "spikes": spikes,
        "compile": _compile_numbers(prog),
        "wall": {"compile_s": compile_s, "check_s": rep.timing["total_s"]},
    }
    curves = {lv: c[m] for lv, c in rep.curves.items()}
    return out, curves


def _col(level: str) -> str:
    return level.replace("-", "_").replace(" ", "_").replace(",", "")


def _compile_numbers(prog) -> dict[str, Any]:
    """Placement and estimates of the compiled Program (the compile report's numbers)."""
    pl, cap = prog.placement, prog.profile.capacity
    out: dict[str, Any] = {
        "cores": pl.n_cores,
        "chips": pl.n_chips,
        "synapses": int(sum(q.n_synapses for q in prog.projections)),
        "synaptic_memory_bits": int(pl.core_memory_bits.sum()) if pl.n_cores else 0,
        "energy_pj_per_step": pl.energy_pj_per_step,
        "traffic_spikes_per_step": pl.traffic_total,
    }
    if pl.n_cores:
        out["neuron_utilization_max"] = float(pl.core_neurons.max() / cap.neurons_per_core)
        out["memory_utilization_max"] = float(pl.core_memory_bits.max() / cap.synaptic_memory_bits_per_core)
    return out
