"""Sweeps: compile -> emulate -> check over chips, bit widths, roundings, rule parameters and
seeds, one Dask task per cell, on a LocalCluster or an existing cluster.

    from neurocomp.sweep import load_spec, run_sweep
    result = run_sweep("examples/sweeps/eprop_bits.yaml", "sweep-out")

Dask and pandas are the ``sweep`` extra (``pip install 'neurocomp[sweep]'``); this package
imports without them and says so when a sweep is run (:class:`SweepError`).
"""

from .cell import run_cell
from .runner import SweepResult, read_record, read_table, run_sweep, table_rows, write_table
from .spec import MEASURES, Cell, SweepError, SweepSpec, code_version, derive_seed, load_spec

__all__ = [
    "MEASURES",
    "Cell",
    "SweepError",
    "SweepResult",
    "SweepSpec",
    "code_version",
    "derive_seed",
    "load_spec",
    "read_record",
    "read_table",
    "run_cell",
    "run_sweep",
    "table_rows",
    "write_table",
]
