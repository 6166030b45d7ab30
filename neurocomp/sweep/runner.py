"""Running a sweep on Dask, storing each cell's result as it finishes, and the results table.

Layout of the output directory::

    OUT/cells/<key>.json    one result per cell (see :func:`~neurocomp.sweep.cell.run_cell`)
    OUT/results.parquet     the tidy table, one row per cell (results.csv without pyarrow)
    OUT/sweep.json          the spec's name, axes, code version and the cells' keys
    OUT/report/*.png        plots (:mod:`neurocomp.sweep.report`)

Every cell is one Dask task keyed by the cell's hash, carrying the cell's network and profile.
The driver (this process) writes the results, not the workers, so a remote cluster needs
neither the spec's files nor a shared file system (only neurocomp installed). A rerun skips the
cells whose result file exists (a cell that raised is done too, unless ``retry_failed``); a
cell whose worker died is rerun by Dask on another worker (the nanny replaces the dead one),
and one that kills every worker it runs on is recorded as ``"crashed"`` and retried on a rerun.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import atomic_write, atomic_write_text
from ..errors import Problem
from .cell import run_cell
from .spec import MEASURES, Cell, SweepError, SweepSpec, load_spec

DONE = ("ok", "error")  # statuses a rerun skips ("crashed" cells are retried)


@dataclass
class SweepResult:
    spec: SweepSpec
    out: Path
    records: list[dict[str, Any]]  # one per cell, in the spec's order
    ran: int  # cells run by this call (the others were done already)
    table: Path
    wall_s: float

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] != "ok"]


def _dask():
    """``distributed``, or the named error saying which extra to install (pandas is needed too)."""
    try:
        import distributed
        import pandas  # noqa: F401
    except ImportError:
        raise SweepError(
            [Problem("sweep", "needs dask.distributed: pip install 'neurocomp[sweep]' (dask[distributed], pandas)")]
        ) from None
    return distributed


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` so that readers see the old file or the whole new one:
    a temporary file in the same directory, flushed to disk, then renamed over ``path``."""
    atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default, allow_nan=True))


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    raise TypeError(type(o).__name__)


def read_record(out: Path, key: str) -> dict[str, Any] | None:
    p = out / "cells" / f"{key}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):  # absent, or not ours to trust: the cell is run again
        return None


def run_sweep(
    spec: SweepSpec | str | os.PathLike,
    out: str | os.PathLike,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    retry_failed: bool = False,
    report: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every cell of ``spec`` not done yet in ``out`` on Dask and write the table and plots.

    The cluster: ``client`` (a ``distributed.Client``) if given, else the scheduler at
    ``scheduler`` (``tcp://host:8786``), else a ``LocalCluster`` with ``workers`` worker
    processes (default: one per core), one thread each. ``report``: where the plots go
    (default ``out/report``; ``False`` for none). ``log``: progress lines (default: stderr).
    """
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    _dask()  # before anything is written
    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    say = log or (lambda s: print(s, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    write_json_atomic(out / "sweep.json", _manifest(spec))
    todo = [c for c in spec.cells if not _done(read_record(out, c.key), retry_failed)]
    say(f"sweep {spec.name}: {len(spec.cells)} cells, {len(spec.cells) - len(todo)} done already, {len(todo)} to run")
    if todo:
        _run_on_dask(todo, out, spec.code_version, scheduler, workers, client, say)
    records = [read_record(out, c.key) for c in spec.cells]
    missing = [c.key for c, r in zip(spec.cells, records, strict=True) if r is None]
    if missing:  # every cell ends with a record (ok, error or crashed); none may vanish
        raise SweepError([Problem("sweep", f"no result for cells {missing}")])
    table = write_table(spec, records, out)
    wall = time.perf_counter() - t0
    result = SweepResult(spec, out, records, len(todo), table, wall)  # type: ignore[arg-type]
    if report is not False:
        from .report import SweepView, write_report

        view = SweepView(spec.name, spec.axes, spec.report)
        files = write_report(result.records, view, Path(report) if report else out / "report")
        say(f"wrote {table} and {len(files)} plots in {Path(report) if report else out / 'report'}")
    n_bad = len(result.failed)
    say(f"sweep {spec.name}: {len(todo)} cells run in {wall:.1f} s" + (f"; {n_bad} failed" if n_bad else ""))
    return result


def _done(rec: dict[str, Any] | None, retry_failed: bool) -> bool:
    return rec is not None and rec.get("status") in (("ok",) if retry_failed else DONE)


def _manifest(spec: SweepSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "spec": str(spec.path),
        "axes": list(spec.axes),
        "measures": list(spec.measures),
        "report": dict(spec.report),
        "code_version": spec.code_version,
        "cells": [c.key for c in spec.cells],
    }


def _run_on_dask(todo: list[Cell], out: Path, version: str, scheduler, workers, client, say) -> None:
    distributed = _dask()
    own = []  # what this call started, closed at the end
    if client is None:
        if scheduler:
            client = distributed.Client(scheduler)
        else:
            n = workers or os.cpu_count() or 1
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True)
            own.append(cluster)
            client = distributed.Client(cluster)
        own.insert(0, client)
    try:
        inputs = _Inputs()
        say(f"dask: {client.dashboard_link or client.scheduler.address} ({len(client.nthreads())} workers)")
        futures = {client.submit(run_cell, c, *inputs(c), key=f"cell-{c.key}", pure=False): c for c in todo}
        done = 0
        for fut in distributed.as_completed(futures):
            cell = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # the task never returned: its workers died (KilledWorker) or it was lost
                rec = {
                    "key": cell.key,
                    "labels": dict(cell.labels),
                    "status": "crashed",
                    "error": {"type": type(exc).__name__, "message": str(exc)},
                }
            rec["code_version"] = version
            write_json_atomic(out / "cells" / f"{cell.key}.json", rec)
            done += 1
            say(_progress_line(done, len(todo), cell, rec))
            fut.release()
    finally:
        for obj in own:
            obj.close()


class _Inputs:
    """A cell's network and profile, read here once each and shipped inside every task (not
    scattered: a task then carries all it needs and survives the loss of any worker)."""

    def __init__(self):
        self.nets: dict[str, Any] = {}
        self.profiles: dict[str, Any] = {}

    def __call__(self, cell: Cell) -> tuple[Any, Any]:
        from ..graph.io import load_network
        from ..profiles.loader import load_profile_with

        if cell.model not in self.nets:
            self.nets[cell.model] = load_network(cell.model)
        key = json.dumps([cell.profile, cell.overrides], sort_keys=True, default=str)
        if key not in self.profiles:
            self.profiles[key] = load_profile_with(cell.profile, cell.overrides)
        return self.nets[cell.model], self.profiles[key]


def _progress_line(done: int, total: int, cell: Cell, rec: dict[str, Any]) -> str:
    what = " ".join(f"{a}={v}" for a, v in cell.labels.items())
    if rec["status"] == "ok":
        f, r = rec["measures"]["final"], rec["measures"]["ratio"]["ratio_fixed_float"]
        res = f"ok, {f['metric']} lowered-fixed {f[f['metric'] + '_lowered_fixed']:.4g} ({r:.2f}x lowered-float)"
    else:
        res = f"{rec['status'].upper()}: {rec['error']['type']}: {rec['error']['message'].splitlines()[0][:100]}"
    wall = f" {rec['wall_s']:.1f} s" if "wall_s" in rec else ""
    return f"[{done}/{total}] {what}: {res}{wall}"


# -- the table -----------------------------------------------------------------------------------
def table_rows(spec: SweepSpec, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell: the axes' labels, the cell's settings, status, error and the measures
    the spec keeps (``measures``), in the spec's cell order."""
    keep = set(spec.measures) | {"final"}  # the metric itself is what a sweep is about
    rows = []
    for cell, rec in zip(spec.cells, records, strict=True):
        row: dict[str, Any] = {a: cell.labels[a] for a in spec.axes}
        row.update(profile=cell.profile, task=cell.task, iterations=cell.iterations, steps=cell.steps)
        row["status"] = rec["status"]
        err = rec.get("error") or {}
        row["error"] = f"{err['type']}: {' '.join(err['message'].split())}" if err else ""  # one line per cell
        for group, values in (rec.get("measures") or {}).items():
            if group in keep:
                row.update(values)
        if "wall" in keep:
            row["wall_s"] = rec.get("wall_s")
        row["key"] = cell.key
        rows.append(row)
    return rows


def write_table(spec: SweepSpec, records: list[dict[str, Any]], out: Path) -> Path:
    """``out/results.parquet`` (pyarrow) or ``out/results.csv``, written atomically."""
    import pandas as pd

    df = pd.DataFrame(table_rows(spec, records))
    for a in spec.axes:  # labels of mixed types (a list axis of ints and strings) as text for Parquet
        if df[a].map(type).nunique() > 1:
            df[a] = df[a].astype(str)
    try:
        import pyarrow  # noqa: F401

        path, write = out / "results.parquet", lambda f: df.to_parquet(f, index=False)
    except ImportError:
        path, write = out / "results.csv", lambda f: f.write(df.to_csv(index=False).encode("utf-8"))
    return atomic_write(path, write)


def read_table(out: str | os.PathLike):
    """The results table of the sweep in ``out`` as a pandas DataFrame."""
    import pandas as pd

    out = Path(out)
    if (out / "results.parquet").is_file():
        return pd.read_parquet(out / "results.parquet")
    if (out / "results.csv").is_file():
        return pd.read_csv(out / "results.csv", float_precision="round_trip")  # the floats' exact bits
    raise SweepError([Problem(str(out), "no results table (results.parquet or results.csv): run the sweep first")])


__all__ = ["MEASURES", "SweepResult", "read_record", "read_table", "run_sweep", "table_rows", "write_table"]
