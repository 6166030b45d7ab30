"""Sweeps on Dask: spec checking, a 2-worker LocalCluster sweep equal to the same cells run
serially, a worker killed mid-sweep, and resume.

The grid is small (e-prop pattern example, 200-step trials, 2 iterations per level) so that a
cell takes about a second; the cluster tests share one LocalCluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import textwrap
from pathlib import Path

import pytest

from neurocomp.cli import main
from neurocomp.sweep import SweepError, derive_seed, load_spec, read_record, read_table, run_cell, run_sweep

try:  # Lava sets multiprocessing's start method when imported and raises if it is set already, as
    # a LocalCluster leaves it: imported first, the Lava tests that run after these still work
    import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
except ImportError:
    pass

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "eprop_pattern.yaml"

SPEC = f"""\
sweep: 1
name: test-grid
model: {MODEL}
profile: loihi2
task: pattern-generation
iterations: 2
steps: 200
seeds: [3, 4]
axes:
  weight_bits:
    6: {{formats.weight.mantissa_bits: 6, learning.synaptic_variable_bits.w: 7,
        capacity.synapse_encoding.weight_bits: 7}}
    8: {{formats.weight.mantissa_bits: 8}}
  rounding:
    nearest: {{learning.stochastic_rounding: false}}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("spec") / "grid.yaml", SPEC)


@pytest.fixture(scope="module")
def serial(spec_file) -> dict[str, dict]:
    """Every cell run in this process, one after the other, as JSON text round-trips it."""
    return {c.key: json.loads(json.dumps(run_cell(c))) for c in load_spec(spec_file).cells}


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc:
        with distributed.Client(lc) as c:
            yield c


def result_bits(rec: dict) -> str:
    """What must not depend on where a cell ran: everything but its times and worker."""
    kept = {k: rec[k] for k in ("key", "labels", "cell", "status", "measures", "curves")}
    kept["measures"] = {g: v for g, v in rec["measures"].items() if g != "wall"}
    assert set(kept["measures"]) == {"final", "ratio", "spikes", "compile"}
    return json.dumps(kept, sort_keys=True)


# -- the spec -------------------------------------------------------------------------------------
def test_spec_expands_axes_and_seeds(spec_file):
    s = load_spec(spec_file)
    assert s.axes == ("weight_bits", "rounding", "seed")
    assert [dict(c.labels) for c in s.cells] == [
        {"weight_bits": b, "rounding": "nearest", "seed": sd} for b in (6, 8) for sd in (3, 4)
    ]
    six = s.cells[0]
    assert six.overrides == {
        "formats.weight.mantissa_bits": 6,
        "learning.synaptic_variable_bits.w": 7,
        "capacity.synapse_encoding.weight_bits": 7,
        "learning.stochastic_rounding": False,
    }
    assert (six.iterations, six.steps, six.seed, six.task) == (2, 200, 3, "pattern-generation")
    assert len({c.key for c in s.cells}) == 4
    # the key hashes the inputs and the code version: same spec, same keys; other code, other keys
    assert [c.key for c in load_spec(spec_file).cells] == [c.key for c in s.cells]
    other = load_spec(spec_file, version="0.0.0+other")
    assert not {c.key for c in other.cells} & {c.key for c in s.cells}


def test_shipped_example_spec():
    from neurocomp import load_profile
    from neurocomp.profiles.loader import load_profile_with

    s = load_spec(ROOT / "examples" / "sweeps" / "eprop_bits.yaml")
    assert len(s.cells) == 5 * 2 * 3 and s.axes == ("weight_bits", "rounding", "seed")
    assert sorted({c.labels["weight_bits"] for c in s.cells}) == [4, 5, 6, 7, 8]
    assert len({c.seed for c in s.cells}) == 3
    by = {(c.labels["weight_bits"], c.labels["rounding"]): c for c in s.cells}
    # 8 bits, stochastic rounding: loihi2 itself; 5 bits: every stored weight narrower
    assert load_profile_with("loihi2", by[8, "stochastic"].overrides) == load_profile("loihi2")
    p5 = load_profile_with("loihi2", by[5, "nearest"].overrides)
    assert p5.formats.weight.mantissa_bits == 5 and p5.learning.synaptic_variable_bits["w"] == 6
    assert p5.capacity.synapse_encoding.weight_bits == 6 and p5.learning.stochastic_rounding is False


def test_derived_seeds_depend_on_the_spec_only(tmp_path):
    text = SPEC.replace("seeds: [3, 4]", "seeds: 3\nseed: 7")
    s = load_spec(write(tmp_path / "a.yaml", text))
    seeds = [c.seed for c in s.cells[:3]]
    assert seeds == [derive_seed(7, r) for r in range(3)]
    assert len(set(seeds)) == 3 and all(0 <= x < 2**31 for x in seeds)
    assert derive_seed(7, 0) != derive_seed(8, 0)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("profile: loihi2", "profile: loihi9"), "no such profile"),
        (("task: pattern-generation", "task: juggling"), "task: 'juggling' is not a task"),
        (("mantissa_bits: 6,", "mantissa_bits: 0,"), "formats.weight.mantissa_bits: 0 is below the minimum 1"),
        (("mantissa_bits: 6,", "mantisa_bits: 6,"), "formats.weight.mantisa_bits: unknown key"),
        (("stochastic_rounding: false", "stochastic_rounding: maybe"), "learning.stochastic_rounding: expected true"),
        (("learning.stochastic_rounding: false", "name.first: x"), "name.first: not a key of a profile mapping"),
        (("iterations: 2", "iterations: 0"), "iterations: an integer >= 1, got 0"),
        (("seeds: [3, 4]", "seeds: [3, 3]"), "repeated seeds"),
        (("name: test-grid", "nmae: test-grid"), "nmae: unknown key"),
        (("name: test-grid", "name: g\nreport: {x: bits}"), "report.x: 'bits' is not an axis"),
        ((f"model: {MODEL}", "model: nowhere.yaml"), "'nowhere.yaml': no such file"),
        ((f"model: {MODEL}", f"model: {ROOT / 'hardware_profiles' / 'xylo.yaml'}"), "model: invalid model"),
        (("  rounding:\n", "  rule.lrate: [0.1]\n  rounding:\n"), "rule parameters ['lrate'] are not e-prop's"),
        (("  rounding:\n", "  lr: [0.1]\n  rounding:\n"), "lr: unknown key"),  # a rule parameter is rule.lr
        (("  rounding:\n", "  bits:\n    8: {formats.weight.mantissa_bits: 8}\n  rounding:\n"), "both set"),
    ],
)
def test_bad_spec_is_a_named_error(tmp_path, change, named):
    old, new = change
    assert old in SPEC
    text = SPEC.replace(old, new)
    with pytest.raises(SweepError) as e:
        load_spec(write(tmp_path / "bad.yaml", text))
    assert named in str(e.value)


def test_cli_bad_spec_exits_2(tmp_path, capsys):
    bad = write(tmp_path / "bad.yaml", SPEC.replace("iterations: 2", "iterations: -1"))
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "iterations: an integer >= 1, got -1" in capsys.readouterr().err
    assert main(["sweep", str(bad)]) == 2  # no --out
    assert main(["sweep", "--report", str(tmp_path)]) == 2  # not a sweep's directory


def test_without_dask_a_named_error(spec_file, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    with pytest.raises(SweepError, match=r"neurocomp\[sweep\]"):
        run_sweep(spec_file, tmp_path / "out", report=False, log=lambda s: None)


def test_a_failing_cell_is_recorded(tmp_path):
    s = load_spec(write(tmp_path / "s.yaml", SPEC.replace("mantissa_bits: 6,", "mantissa_bits: 4,")))
    rec = run_cell(s.cells[0])  # 4-bit weights: e-prop's learning rate is below what the engine can scale by
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "CompileError"
    assert "outside what the engine can scale by" in rec["error"]["message"]
    assert "measures" not in rec


# -- on the cluster -------------------------------------------------------------------------------
def test_cluster_sweep_equals_serial_bit_for_bit(spec_file, serial, client, tmp_path):
    res = run_sweep(spec_file, tmp_path / "out", client=client, log=lambda s: None)
    assert res.ran == 4 and not res.failed
    assert {r["key"]: result_bits(r) for r in res.records} == {k: result_bits(r) for k, r in serial.items()}
    # it ran on the cluster's worker processes, not here
    assert {r["worker"].split(":")[1] for r in res.records} <= {str(p) for p in client.run(os.getpid).values()}
    # the table: one row per cell, the axes' labels and the measures
    df = read_table(tmp_path / "out")
    assert list(df["weight_bits"]) == [6, 6, 8, 8] and list(df["seed"]) == [3, 4, 3, 4]
    assert list(df["nmse_lowered_fixed"]) == [serial[k]["measures"]["final"]["nmse_lowered_fixed"] for k in df["key"]]
    # 7-bit stored weights take less synaptic memory than 9-bit ones: the override reached the compiler
    mem = list(df["synaptic_memory_bits"])
    assert mem[0] == mem[1] < mem[2] == mem[3]
    report = tmp_path / "out" / "report"
    files = ["nmse_vs_weight_bits.png", "pareto.png", "ratio_vs_weight_bits.png", "summary.md"]
    assert sorted(p.name for p in report.iterdir()) == files
    shutil.rmtree(report)
    assert main(["sweep", "--report", str(tmp_path / "out")]) == 0  # redrawn from the finished sweep
    assert sorted(p.name for p in report.iterdir()) == files
    assert "| 6 | nearest | 2/2 |" in (report / "summary.md").read_text()


def test_resume_skips_done_cells(spec_file, serial, client, tmp_path):
    out = tmp_path / "out"
    first = run_sweep(spec_file, out, client=client, report=False, log=lambda s: None)
    keys = [r["key"] for r in first.records]
    cells = out / "cells"
    stamp = {k: (cells / f"{k}.json").stat().st_mtime_ns for k in keys}
    crashed = {"key": keys[0], "labels": {}, "status": "crashed", "error": {"type": "KilledWorker", "message": ""}}
    (cells / f"{keys[0]}.json").write_text(json.dumps(crashed))  # its workers died: retried
    (cells / f"{keys[1]}.json").unlink()  # lost
    (cells / f"{keys[2]}.json").write_text('{"key": "trunc')  # not a result (a crash mid-write elsewhere)
    (cells / f".{keys[3]}.json.123.tmp").write_text("{")  # a temporary file left by a killed driver
    # (as `--scheduler ADDRESS`: this call connects to the running cluster itself)
    again = run_sweep(spec_file, out, scheduler=client.scheduler.address, report=False, log=lambda s: None)
    assert again.ran == 3
    assert (cells / f"{keys[3]}.json").stat().st_mtime_ns == stamp[keys[3]]  # untouched
    assert {r["key"]: result_bits(r) for r in again.records} == {k: result_bits(r) for k, r in serial.items()}
    third = run_sweep(spec_file, out, client=client, report=False, log=lambda s: None)
    assert third.ran == 0


def test_failed_cell_is_recorded_and_the_sweep_goes_on(client, tmp_path):
    text = SPEC.replace("mantissa_bits: 6,", "mantissa_bits: 4,").replace("seeds: [3, 4]", "seeds: [3]")
    spec, out = write(tmp_path / "s.yaml", text), tmp_path / "out"
    res = run_sweep(spec, out, client=client, report=False, log=lambda s: None)
    assert [r["status"] for r in res.records] == ["error", "ok"]  # 4 bits: e-prop's step is too small
    df = read_table(out)
    assert list(df["status"]) == ["error", "ok"] and df["error"][0].startswith("CompileError: ")
    assert run_sweep(spec, out, client=client, report=False, log=lambda s: None).ran == 0  # an error is done
    assert run_sweep(spec, out, client=client, report=False, retry_failed=True, log=lambda s: None).ran == 1


def test_worker_killed_mid_sweep(spec_file, serial, tmp_path):
    """SIGKILL one of two workers while it runs a cell: the nanny starts a new worker, the
    scheduler reruns the cell, and the sweep completes with every cell, equal to serial."""
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "out"
    killed: list[str] = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc:
        with distributed.Client(lc) as c:

            def kill_once(line: str) -> None:
                if killed or not line.startswith("[1/"):
                    return
                pids = c.run(os.getpid)
                for addr, tasks in c.processing().items():
                    running = [t.removeprefix("cell-") for t in tasks]
                    if running and not (out / "cells" / f"{running[0]}.json").exists():
                        os.kill(pids[addr], signal.SIGKILL)
                        killed.append(running[0])
                        return

            res = run_sweep(spec_file, out, client=c, report=False, log=kill_once)
    assert killed, "no worker was running a cell after the first result"
    assert res.ran == 4 and not res.failed
    assert read_record(out, killed[0])["status"] == "ok"
    assert {r["key"]: result_bits(r) for r in res.records} == {k: result_bits(r) for k, r in serial.items()}
