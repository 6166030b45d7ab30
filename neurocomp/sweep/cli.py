"""``neurocomp sweep``: the command behind the CLI's subcommand (kept here, out of the shared cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import Problem
from .runner import read_record, run_sweep
from .spec import SweepError


def sweep_command(
    spec: str | None, out: str | None, scheduler: str | None, workers: int | None, report: str | None, retry: bool
) -> int:
    if spec is None:
        if not report:
            raise SweepError([Problem("sweep", "give a SPEC.yaml (with --out DIR), or --report DIR: a finished sweep")])
        files = report_from_dir(Path(report))
        print("wrote " + ", ".join(str(f) for f in files))
        return 0
    if not out:
        raise SweepError([Problem("sweep", "--out DIR: where the results go")])
    if workers is not None and workers < 1:
        raise SweepError([Problem("sweep", f"--workers: at least 1, got {workers}")])
    res = run_sweep(spec, out, scheduler=scheduler, workers=workers, retry_failed=retry, report=report)
    print(f"{res.table}: {len(res.records)} cells, {len(res.records) - len(res.failed)} ok, {len(res.failed)} failed")
    return 0


def report_from_dir(out: Path) -> list[Path]:
    """Redraw the plots of the finished sweep in ``out`` into ``out/report``."""
    from .report import SweepView, write_report

    try:
        man = json.loads((out / "sweep.json").read_text())
    except (OSError, ValueError):
        raise SweepError([Problem(str(out), "not a sweep's output directory (no readable sweep.json)")]) from None
    records = [read_record(out, k) for k in man["cells"]]
    missing = sum(r is None for r in records)
    if missing:
        raise SweepError([Problem(str(out), f"{missing} of {len(records)} cells have no result: finish the sweep")])
    return write_report(records, SweepView(man["name"], tuple(man["axes"]), man.get("report", {})), out / "report")
