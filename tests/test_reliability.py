"""Bad input gets a named error (exit 2), outputs are never clobbered or half-written, nothing
hangs: one test (or a few) per finding of issue 15, each of which failed before its fix."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import neurocomp as nc
from neurocomp._yaml import YamlError, parse_yaml, read_yaml
from neurocomp.cli import main
from neurocomp.compiler import Program
from neurocomp.compiler.errors import ProgramError
from neurocomp.emulator import Emulator, EmulatorError
from neurocomp.emulator.emulator import Checkpoint, EmulatorOverflowError
from tests.conftest import EXAMPLES, ROOT

EI = EXAMPLES / "recurrent_ei.yaml"


def cli(capsys, *args) -> tuple[int, str, str]:
    """``neurocomp ARGS`` in-process: (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ei_ncp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prog") / "ei.ncp"
    nc.compile(EI, "loihi2", out=io.StringIO()).save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- 1. `compile -o` never replaces a device, FIFO or directory; writes through symlinks ---------------


def test_compile_output_refuses_a_fifo_and_a_directory(tmp_path, capsys):
    fifo, folder = tmp_path / "fifo", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    for target, what in ((fifo, "FIFO"), (folder, "directory")):
        code, _, err = cli(capsys, "compile", EI, "--profile", "loihi2", "-q", "-o", target)
        assert code == 2 and what in err, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and folder.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "folder"]  # no temporary file left


def test_compile_output_refuses_a_device(tmp_path, capsys):
    dev = tmp_path / "null"
    try:  # a device node of our own: the test never points at /dev/null itself
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    code, _, err = cli(capsys, "compile", EI, "--profile", "loihi2", "-q", "-o", dev)
    assert code == 2 and "character device" in err
    assert stat.S_ISCHR(os.stat(dev).st_mode)


def test_compile_output_writes_through_a_symlink(tmp_path, capsys):
    target = tmp_path / "real.ncp"
    target.write_bytes(b"old")
    link = tmp_path / "link.ncp"
    link.symlink_to(target.name)
    code, _, _ = cli(capsys, "compile", EI, "--profile", "loihi2", "-q", "-o", link)
    assert code == 0
    assert link.is_symlink() and os.readlink(link) == "real.ncp"
    assert Program.load(target).network_name == "recurrent-ei"


def test_atomic_writer_keeps_mode_and_leaves_nothing_on_failure(tmp_path):
    from neurocomp._atomic import OutputError, atomic_write, atomic_write_bytes

    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(os.stat(path).st_mode) == 0o640
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "f.bin", b"x")


# -- 2. `run --out` is atomic, even when the process is killed while it saves ------------------------


_SAVER = """
import sys, numpy as np
from neurocomp._atomic import atomic_savez
big = {f"a{i}": np.full(2_000_000, i, dtype=np.int64) for i in range(12)}  # ~190 MB: saving takes a while
print("ready", flush=True)
atomic_savez(sys.argv[1], big)
print("saved", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_process_killed_while_saving_leaves_the_old_file(tmp_path, sig):
    """A real subprocess is killed once its temporary file exists (mid-save): the old file is
    intact, and after SIGINT (KeyboardInterrupt: cleanup runs) no temporary file is left."""
    out = tmp_path / "rec.npz"
    np.savez(out, old=np.arange(5))
    before = out.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(out)], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 60
    while not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]:
        assert time.monotonic() < deadline and proc.poll() is None, "never saw the save in progress"
        time.sleep(0.001)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0  # it was killed before it finished
    assert out.read_bytes() == before
    leftovers = [p for p in os.listdir(tmp_path) if p != "rec.npz"]
    if sig == signal.SIGINT:
        assert leftovers == []
    else:  # only SIGKILL, which allows no cleanup, can leave the hidden temporary file
        assert all(p.startswith(".rec.npz.") and p.endswith(".tmp") for p in leftovers)


def test_an_interrupt_masked_by_the_writers_cleanup_still_stops_the_write(tmp_path):
    """numpy 2's savez closes its zip in a `finally` and raises ValueError over the signal
    that stopped it mid-write; the interrupt must reach the caller (so the CLI exits 130 or
    143, not 1 with a traceback), with the old file intact and no temporary file left."""
    from neurocomp._atomic import atomic_write

    out = tmp_path / "rec.npz"
    out.write_bytes(b"old")

    def write(f):
        try:
            f.write(b"half")
            raise KeyboardInterrupt
        finally:
            raise ValueError("Can't close the ZIP file while there is an open writing handle on it")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(out, write)
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == ["rec.npz"]

    def fails(f):  # an ordinary error with no interrupt behind it stays what it is
        raise ValueError("bad data")

    with pytest.raises(ValueError, match="bad data"):
        atomic_write(out, fails)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cli_run_stopped_while_saving_keeps_the_old_recording(tmp_path, sig, code):
    """`neurocomp run` in a real subprocess, stopped once its recording is being written
    (~300 MB: 200 000 neurons x 100 steps of v and u): the old recording is untouched, no
    temporary file is left, and the exit code says why."""
    from neurocomp.compiler.ir import QPopulation

    prog = tmp_path / "wide.ncp"
    pop = QPopulation.lif("wide", 200_000, du=0, dv=100, vth=131071, bias_mant=3, bias_exp=0)
    Program.from_parts("loihi2", [pop], []).save(prog)
    out = tmp_path / "rec.npz"
    np.savez(out, old=np.arange(5))
    before = out.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "neurocomp", "run", str(prog), "--steps", "100", "--record", "v,u", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    deadline = time.monotonic() + 600  # a cold kernel cache on a loaded machine compiles first
    while not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.001)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["rec.npz", "wide.ncp"]


def test_run_out_replaces_a_recording_completely(tmp_path, capsys, ei_ncp):
    out = tmp_path / "rec.npz"
    np.savez(out, stale=np.zeros(3))
    code, _, _ = cli(capsys, "run", ei_ncp, "--steps", 5, "--out", out)
    assert code == 0
    with np.load(out) as z:
        assert "stale" not in z.files and "exc/spikes" in z.files
    assert os.listdir(tmp_path) == ["rec.npz"]


def test_checkpoint_save_is_atomic(tmp_path, ei_ncp):
    emu = Emulator(Program.load(ei_ncp))
    emu.run(3)
    ck = tmp_path / "ck.npz"
    emu.checkpoint().save(ck)
    assert Checkpoint.load(ck).t == 3
    with pytest.raises(nc.NeurocompError, match="is a directory"):
        emu.checkpoint().save(tmp_path)  # a directory is refused, not replaced


# -- 3. spike inputs are checked; batch trials of a rate input are independent -----------------------


def _driven() -> Program:
    net = nc.Network(name="driven")
    net.add(nc.Population("in", 3, nc.SpikeInput()), nc.Population("n", 2, nc.LIF(tau_mem_ms=10.0)))
    net.add(nc.Projection("in", "n", np.full((2, 3), 0.5)))
    return nc.compile(net, "loihi2", out=io.StringIO())


@pytest.mark.parametrize("bad", [np.nan, 0.3, -1.0, 2.0])
def test_spike_inputs_must_be_whole_counts_in_range(bad):
    x = np.zeros((4, 3))
    x[1, 0] = bad
    with pytest.raises(EmulatorError, match="input 'in'"):
        Emulator(_driven()).run(4, inputs={"in": x})
    Emulator(_driven()).run(4, inputs={"in": np.ones((4, 3))})  # whole counts in range are taken


def test_cli_refuses_a_nan_spike_input(tmp_path, capsys):
    prog_path = tmp_path / "driven.ncp"
    _driven().save(prog_path)
    x = np.zeros((4, 3))
    x[0, 0] = np.nan
    np.savez(tmp_path / "in.npz", **{"in/spikes": x})
    code, _, err = cli(
        capsys, "run", prog_path, "--steps", 4, "--input", tmp_path / "in.npz", "--out", tmp_path / "r.npz"
    )
    assert code == 2 and "whole numbers" in err and "nan" in err
    assert not (tmp_path / "r.npz").exists()


def _rate_net(trials: str) -> nc.Network:
    net = nc.Network(name="rates")
    net.add(
        nc.Population("in", 20, nc.SpikeInput(rate_hz=100.0, seed=4, trials=trials)),
        nc.Population("n", 3, nc.LIF(tau_mem_ms=10.0, v_th=0.5)),
    )
    net.add(nc.Projection("in", "n", np.full((3, 20), 0.1)))
    return net


def test_batch_trials_of_a_rate_input_are_independent_unless_shared():
    from neurocomp.reference import Conventions, Reference

    prog = nc.compile(_rate_net("independent"), "loihi2", out=io.StringIO())
    rec = Emulator(prog, batch=8).run(60)["in/spikes"]
    assert rec.sum() > 0
    assert all(not np.array_equal(rec[:, 0], rec[:, b]) for b in range(1, 8))
    single = Emulator(prog).run(60)["in/spikes"]
    np.testing.assert_array_equal(single[:, 0], rec[:, 0])  # trial 0 draws what a single trial draws
    # the reference simulator draws the very same spikes, trial by trial
    ref = Reference(_rate_net("independent"), prog.dt_ms, Conventions.chip(prog.profile), batch=8).run(60)["in/spikes"]
    np.testing.assert_array_equal(ref.astype(np.int64), rec.astype(np.int64))
    shared = nc.compile(_rate_net("shared"), "loihi2", out=io.StringIO())
    rec_s = Emulator(shared, batch=8).run(60)["in/spikes"]
    assert all(np.array_equal(rec_s[:, 0], rec_s[:, b]) for b in range(8))
    np.testing.assert_array_equal(rec_s[:, 0], rec[:, 0])


def test_independent_trials_resume_from_a_checkpoint(tmp_path):
    prog = nc.compile(_rate_net("independent"), "loihi2", out=io.StringIO())
    whole = Emulator(prog, batch=3).run(40)["in/spikes"]
    emu = Emulator(prog, batch=3)
    first = emu.run(15)["in/spikes"]
    emu.checkpoint().save(tmp_path / "ck.npz")
    again = Emulator(prog, batch=3)
    again.restore(Checkpoint.load(tmp_path / "ck.npz"))
    np.testing.assert_array_equal(np.concatenate([first, again.run(25)["in/spikes"]]), whole)


# -- 4. size guards: memory, YAML aliases, nesting, encoding --------------------------------------


HUGE_POP = """\
neurocomp: 1
populations:
  - {name: in, size: 1000000000, neuron: {model: SpikeInput, rate_hz: 5.0, seed: 1}}
  - {name: rec, size: 10, neuron: {model: LIF, tau_mem_ms: 20.0}}
projections:
  - {pre: in, post: rec, weights: {init: uniform, low: 0.0, high: 0.3, seed: 2}}
"""

HUGE_DENSE = """\
neurocomp: 1
populations:
  - {name: a, size: 200000, neuron: {model: LIF, tau_mem_ms: 20.0}}
projections:
  - {pre: a, post: a, weights: {init: normal, std: 0.1, seed: 2}}
"""


@pytest.mark.parametrize("text, where", [(HUGE_POP, "projection 'in->rec'"), (HUGE_DENSE, "projection 'a->a'")])
def test_a_model_too_big_for_memory_is_refused_before_allocating(tmp_path, capsys, text, where):
    path = _write(tmp_path / "big.yaml", text)
    t0 = time.perf_counter()
    code, out, _ = cli(capsys, "validate", "--max-memory", "4G", path)
    assert code == 2 and where in out and "GiB" in out and "--max-memory" in out
    assert time.perf_counter() - t0 < 10  # refused, not attempted (a wide bound for a loaded machine)


def test_max_memory_overrides_the_guard(tmp_path, capsys):
    text = HUGE_DENSE.replace("200000", "300")  # 300 x 300: about 2 MiB
    path = _write(tmp_path / "m.yaml", text)
    assert cli(capsys, "validate", "--max-memory", "1M", path)[0] == 2
    assert cli(capsys, "validate", "--max-memory", "1G", path)[0] == 0


def test_the_emulator_refuses_a_batch_too_big_for_memory(ei_ncp):
    from neurocomp._resources import ResourceError

    with pytest.raises(ResourceError, match=r"population 'exc': needs about 23\.3 TiB"):
        Emulator(Program.load(ei_ncp), batch=10**9)


def test_yaml_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    t0 = time.perf_counter()
    with pytest.raises(YamlError, match="expands to more than"):
        parse_yaml("\n".join(lines))
    assert time.perf_counter() - t0 < 5


def test_yaml_deep_nesting_and_bad_bytes_are_named(tmp_path, capsys):
    with pytest.raises(YamlError, match="nested more than"):
        parse_yaml("[" * 5000 + "]" * 5000)
    with pytest.raises(YamlError, match="nested more than"):
        parse_yaml("a:\n" + "".join("  " * i + "- \n" for i in range(1, 5000)))
    bad = tmp_path / "m.yaml"
    bad.write_bytes(b"neurocomp: 1\nname: caf\xe9\n")
    with pytest.raises(YamlError, match="byte 0xe9 at byte offset 22"):
        read_yaml(bad)
    code, out, _ = cli(capsys, "validate", bad)
    assert code == 2 and "not UTF-8" in out


# -- 5. Program.load checks every value against the profile and the shapes -------------------------


def _edit_manifest(src: Path, dst: Path, edit) -> Path:
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    m = json.loads(members["manifest.json"])
    edit(m)
    members["manifest.json"] = json.dumps(m).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return dst


def test_program_load_lists_every_out_of_range_value(tmp_path, ei_ncp):
    def edit(m):
        m["dt_ms"] = float("nan")
        pops = {p["name"]: p for p in m["populations"]}
        pops["exc"]["params"]["threshold"] = -5
        pops["inh"]["params"]["voltage_decay"] = 1e9
        m["projections"][0]["weight_exp"] = 1_000_000
        m["projections"][1]["shape"] = [7, 7]

    path = _edit_manifest(ei_ncp, tmp_path / "bad.ncp", edit)
    with pytest.raises(ProgramError) as info:
        Program.load(path)
    text = str(info.value)
    for fragment in ("dt_ms", "threshold: -5 is outside", "voltage_decay: 1e+09 is outside", "weight_exp", "(7, 7)"):
        assert fragment in text, fragment
    assert len(info.value.problems) >= 5


def test_cli_inspect_of_a_bad_manifest_exits_2(tmp_path, capsys, ei_ncp):
    path = _edit_manifest(ei_ncp, tmp_path / "bad.ncp", lambda m: m["populations"][0].update(size="many"))
    code, _, err = cli(capsys, "inspect", path)
    assert code == 2 and "size must be an integer" in err


# -- 6. ordinary argument errors exit 2, never 1 or a traceback -------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["run", "{ncp}", "--steps", "0", "--out", "{tmp}/r.npz"],
        ["run", "{ncp}", "--steps", "-5", "--out", "{tmp}/r.npz"],
        ["run", "{ncp}", "--steps", "5", "--seed", "-1", "--out", "{tmp}/r.npz"],
        ["run", "{ncp}", "--steps", "5", "--batch", "1e9", "--out", "{tmp}/r.npz"],
        ["run", "{ncp}", "--steps", "5", "--batch", "1000000000", "--out", "{tmp}/r.npz"],
        ["run", "{ncp}", "--steps", "5", "--out", "{tmp}/missing/r.npz"],
        ["run", "{ncp}", "--steps", "5", "--input", "{tmp}/none.npz", "--out", "{tmp}/r.npz"],
        ["check", str(EXAMPLES / "pattern_generation.yaml"), "--profile", "spinnaker2", "--task", "bogus"],
        ["compile", str(EI), "--profile", "loihi2", "-o", "{tmp}/missing/x.ncp"],
    ],
)
def test_argument_errors_exit_2(tmp_path, capsys, ei_ncp, args):
    argv = [a.format(ncp=ei_ncp, tmp=tmp_path) for a in args]
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err and err.strip()
    assert not (tmp_path / "r.npz").exists()


# -- 7. what was silently accepted ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["compile", str(EI), "--profile", "loihi2", "-o", "{tmp}/x.ncp", "--dt", "inf"], "finite"),
        (["compile", str(EI), "--profile", "loihi2", "-o", "{tmp}/x.ncp", "--firing-rate", "nan"], "finite"),
        (["run", "{ncp}", "--steps", "5", "--snapshot-every", "0", "--out", "{tmp}/r.npz"], "out of range"),
        (["run", "{ncp}", "--steps", "5", "--record", "w", "--out", "{tmp}/r.npz"], "no plastic projection"),
        (
            [
                "check",
                str(EXAMPLES / "pattern_generation.yaml"),
                "--profile",
                "loihi2",
                "--task",
                "pattern-generation",
                "--steps",
                "0",
                "--out",
                "{tmp}/c",
            ],
            "out of range",
        ),
    ],
)
def test_values_that_were_silently_accepted_exit_2(tmp_path, capsys, ei_ncp, args, fragment):
    code, _, err = cli(capsys, *[a.format(ncp=ei_ncp, tmp=tmp_path) for a in args])
    assert code == 2 and fragment in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_input_rate_above_one_spike_per_step_is_a_design_rule_violation():
    net = _rate_net("independent")
    net = nc.Network(
        [nc.Population("in", 20, nc.SpikeInput(rate_hz=5000.0, seed=1)), net.population("n")],
        list(net.projections),
    )
    with pytest.raises(
        nc.NeurocompError, match=r"5000 Hz .* at most one per step \(limit 1000 Hz\) \[input_rate_within_limit\]"
    ):
        nc.compile(net, "loihi2", out=io.StringIO())


def test_complex_weights_are_refused():
    with pytest.raises(nc.ModelError, match="complex"):
        nc.Projection("a", "b", np.array([[0.5 + 1j]]))
    with pytest.raises(ValueError, match="complex"):
        nc.SparseWeights((1, 1), [0], [0], np.array([1j]))


RULE_MODEL = """\
neurocomp: 1
populations:
  - {{name: in, size: 2, neuron: {{model: SpikeInput}}}}
  - {{name: out, size: 1, neuron: {{model: LIF, tau_mem_ms: 20.0}}}}
projections:
  - {{pre: in, post: out, weights: [[0.1, 0.2]], plasticity: {plasticity}}}
"""


@pytest.mark.parametrize(
    "plasticity, fragment",
    [
        ("{rule: hebbian, params: {lr: 0.1}}", "unknown learning rule 'hebbian'"),
        ("{rule: stdp, params: {lr: .nan}}", "'lr' must be a finite number"),
        ("{rule: stdp, params: {lr: 0.1, tua_plus_ms: 5}}", "unknown parameter 'tua_plus_ms'"),
        ("{rule: stdp, params: {lr: 0.1, tau_plus_ms: -5}}", "'tau_plus_ms' must be > 0"),
        ("{rule: eprop, params: {}}", "'lr' is required"),
    ],
)
def test_validate_checks_learning_rules(tmp_path, capsys, plasticity, fragment):
    path = _write(tmp_path / "m.yaml", RULE_MODEL.format(plasticity=plasticity))
    code, out, _ = cli(capsys, "validate", path)
    assert code == 2 and fragment in out, out


def test_yaml_1_1_floats_without_a_dot_are_numbers(tmp_path):
    path = _write(tmp_path / "m.yaml", RULE_MODEL.format(plasticity="{rule: stdp, params: {lr: 1e-3, a_plus: 2E+0}}"))
    net = nc.load_network(path)
    assert net.projections[0].plasticity.params["lr"] == 0.001
    assert parse_yaml("[1e3, -2.5e-1, 1e, e5, 1_0e1]") == [1000.0, -0.25, "1e", "e5", 100.0]


# -- 8. the Lava backend keeps sparse projections sparse ---------------------------------------------


@pytest.mark.lava
def test_lava_runs_a_200k_neuron_sparse_program_without_densifying():
    """A 200 000 x 200 000 sparse projection (dense: 149 GiB) with per-synapse delays runs in
    Lava's Sparse / DelaySparse and ends in the emulator's exact state."""
    pytest.importorskip("lava")
    from neurocomp._resources import set_memory_limit
    from neurocomp.backends.lava import LavaBackend
    from neurocomp.compiler.ir import QPopulation, QProjection

    n = 200_000
    rows = np.array([0, 3, 5, 77, 150_000, 199_999], np.int32)
    cols = np.array([0, 3, 1, 2, 0, 3], np.int32)
    w = np.array([200, 90, 0, 255, 120, 180], np.int32)  # an explicit zero weight stays a synapse
    delays = np.array([0, 1, 1, 2, 3, 0], np.int64)
    inp = QProjection("in->rec", "in", "rec", (n, 4), w, rows, cols, 0, "excitatory", 8, delays, None, 1.0)
    rec = QProjection(
        "rec->rec",
        "rec",
        "rec",
        (n, n),
        np.array([150, -200, 255], np.int32),
        np.array([0, 3, 77], np.int32),
        np.array([5, 199_999, 0], np.int32),
        0,
        "mixed",
        8,
        0,
        None,
        1.0,
    )
    pops = [QPopulation.spike_input("in", 4), QPopulation.lif("rec", n, du=0, dv=0, vth=131071)]
    prog = Program.from_parts("loihi2", pops, [inp, rec])
    x = np.zeros((12, 4), np.uint8)
    x[[0, 2, 5]] = 1
    x[7, 1] = 1
    set_memory_limit("2G")  # far below the dense matrices' 149 GiB
    lava = LavaBackend(prog).run(12, inputs={"in": x}, record=[], final=("v", "u"))
    emu = Emulator(prog)
    emu.run(12, inputs={"in": x})
    for var in ("v", "u"):
        np.testing.assert_array_equal(lava[f"rec/final_{var}"][0].astype(np.int64), emu.state[f"rec/{var}"][0])
    assert np.count_nonzero(emu.state["rec/v"]) >= 5


@pytest.mark.lava
def test_lava_refuses_a_dense_program_above_the_memory_limit():
    pytest.importorskip("lava")
    from neurocomp._resources import ResourceError, set_memory_limit
    from neurocomp.backends.lava import LavaBackend
    from neurocomp.compiler.ir import QPopulation, QProjection

    pops = [QPopulation.spike_input("in", 3000), QPopulation.lif("rec", 3000, du=0, dv=0, vth=100)]
    proj = QProjection.from_mantissas("in->rec", "in", "rec", np.ones((3000, 3000), np.int32))
    set_memory_limit("10M")
    with pytest.raises(ResourceError, match=r"projection 'in->rec': needs about 68\.7 MiB"):
        LavaBackend(Program.from_parts("loihi2", pops, [proj])).run(2, inputs={"in": np.zeros((2, 3000))})


# -- 9. the DRC warns where one step's input can leave the 24-bit current --------------------------


def test_drc_warns_when_fan_in_times_weight_leaves_the_current_range():
    def net(n_in: int) -> nc.Network:
        n = nc.Network(name="fanin")
        n.add(
            nc.Population("in", n_in, nc.SpikeInput()),
            nc.Population("out", 2, nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=1.0)),
        )
        n.add(nc.Projection("in", "out", np.full((2, n_in), 0.5)))
        return n

    big = nc.compile(net(2000), "loihi2", out=io.StringIO())
    hits = [w for w in big.warnings if "24-bit current range" in w]
    assert len(hits) == 1 and "population 'out'" in hits[0]
    # the warning is right: 2000 coincident spikes drive u past 2^23 (strict mode stops there)
    x = np.ones((3, 2000), np.uint8)
    with pytest.raises(EmulatorOverflowError):
        Emulator(big, strict=True).run(3, inputs={"in": x})
    small = nc.compile(net(4), "loihi2", out=io.StringIO())
    assert not [w for w in small.warnings if "24-bit current range" in w]
