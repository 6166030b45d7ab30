"""The ``neurocomp`` command line.

Exit codes: 0 success; 2 invalid input (a model or profile with problems, a missing or
unreadable file, an output that cannot be written, bad arguments, more memory than the
limit); 1 an unexpected internal error (a bug: the traceback is printed); 130 interrupted
(SIGINT) and 143 terminated (SIGTERM), with any half-written output removed.
Every number on the command line is checked for range and finiteness before anything runs,
and every output is written atomically (see :mod:`neurocomp._atomic`).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from ._atomic import OutputError, atomic_savez, atomic_write_text, output_target
from ._resources import ResourceError, emulator_bytes, parse_size, require_memory, set_memory_limit
from ._version import __version__
from .errors import NeurocompError, Problem

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class _Terminated(BaseException):
    """SIGTERM, raised as an exception so that a half-written output is cleaned up."""


def _raise_terminated(signum, frame):
    raise _Terminated()


class UsageError(NeurocompError, ValueError):
    """Arguments that do not fit together, or an input file that cannot be used."""

    kind = "usage"


# -- argument types: each checks range and finiteness, so argparse reports a bad value (exit 2) --


def _int(lo: int, hi: int | None = None):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is out of range ({lo}..{hi if hi is not None else ''})")
        return v

    parse.__name__ = "integer"
    return parse


def _float(lo: float, hi: float = math.inf, lo_open: bool = False):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if v < lo or (lo_open and v == lo) or v > hi:
            low = f"> {lo:g}" if lo_open else f">= {lo:g}"
            raise argparse.ArgumentTypeError(
                f"{v:g} is out of range (must be {low}" + (f" and <= {hi:g})" if hi < math.inf else ")")
            )
        return v

    parse.__name__ = "number"
    return parse


def _size(text: str) -> int | None:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_SEED = _int(0, 2**63 - 1)
_STEPS = _int(1, 2**40)
_BATCH = _int(1, 2**31 - 1)

_DESCRIPTION = """\
neurocomp compiles spiking neural networks (with on-chip learning) for neuromorphic chip
profiles, emulates them bit-accurately, and checks learning on the chip against float.

common tasks:
  neurocomp profiles                  list the chip profiles and their key limits
  neurocomp profiles show loihi2      everything one profile says, with sources
  neurocomp validate model.yaml       check a model file; prints every problem or OK
  neurocomp compile model.yaml --profile loihi2 -o model.ncp
                                      compile for a chip: quantization report, placement, energy
                                      (MODEL may be a NIR graph, model.nir)
  neurocomp export model.yaml -o model.nir
                                      write a model as a NIR graph for other frameworks
  neurocomp inspect model.ncp         summarize a compiled program
  neurocomp run model.ncp --steps 1000 --record spikes,v --out rec.npz
                                      emulate it bit-accurately (or --backend lava)
  neurocomp check model.yaml --profile loihi2 --task pattern-generation
                                      the main job: the learning rule on the chip (lowered-fixed)
                                      against lowered-float and the float reference, with attribution
  neurocomp sweep spec.yaml --out DIR run compile -> emulate -> check over a grid, on Dask
"""


def _cmd_profiles(args: argparse.Namespace) -> int:
    from .profiles import list_profiles, load_profile, profile_summary, profiles_table

    if args.action == "show":
        if not args.name:
            print("neurocomp profiles show: give a profile name or a YAML path", file=sys.stderr)
            return EXIT_INVALID
        print(profile_summary(load_profile(args.name)))
        return EXIT_OK
    profiles, problems = [], []
    for name in list_profiles():
        try:
            profiles.append(load_profile(name))
        except NeurocompError as exc:  # one broken user profile must not hide the others
            problems.append(str(exc))
    print(profiles_table(profiles))
    for p in problems:
        print(p, file=sys.stderr)
    return EXIT_INVALID if problems else EXIT_OK


def _load_model(path: str, dt_ms: float | None = None, fallback_dt_ms: float = 1.0):
    """A model file: neurocomp YAML, or a NIR graph (``.nir``) imported at ``dt_ms`` (else the
    step stored in the file, else ``fallback_dt_ms``); the losses of the NIR mapping are printed."""
    if not str(path).endswith(".nir"):
        from .graph import load_network

        return load_network(path)
    from .graph.nir import format_notes, load_nir

    notes: list[str] = []
    net = load_nir(path, dt_ms, fallback_dt_ms=fallback_dt_ms, notes=notes)
    if notes:
        print(format_notes(notes))
    return net


def _cmd_validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.models:
        try:
            net = _load_model(path)
        except NeurocompError as exc:
            status = EXIT_INVALID
            print(f"INVALID {path}")
            if isinstance(exc, ResourceError):
                print(f"  {exc.header}")
            for p in exc.problems:
                print(f"  - {p}")
            continue
        print(f"OK {path}: {net!r}")
        if args.verbose:
            print(net.summary())
    return status


def _cmd_compile(args: argparse.Namespace) -> int:
    from .compiler import compile
    from .profiles import load_profile

    output_target(args.output)  # refuse a directory, device or missing folder before compiling
    model, dt = args.model, args.dt
    if str(model).endswith(".nir"):  # imported at the step it is compiled for: --dt, the file's, the profile's
        from .graph.nir import stored_dt_ms

        dt = dt if dt is not None else stored_dt_ms(model) or load_profile(args.profile).time.default_dt_ms
    net = _load_model(model, dt)
    require_memory(_network_bytes(net), f"compiling {args.model}")
    program = compile(
        net,
        args.profile,
        dt_ms=dt,
        rounding=args.rounding,
        seed=args.seed,
        strict=args.strict,
        max_zeroed_fraction=args.max_zeroed,
        firing_rate_hz=args.firing_rate,
        dump_ir_after=tuple(args.dump_ir_after),
        time_passes=args.time_passes,
    )
    out = program.save(args.output)
    if not args.quiet:
        print(program.summary())
    print(f"wrote {out}" + (f" ({len(program.warnings)} warnings)" if program.warnings else ""))
    return EXIT_OK


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .compiler import Program

    program = Program.load(args.program)
    print(program.summary())
    if args.cores:
        print(program.placement.utilization(program.profile))
    if args.passes:
        for r in program.pass_log:
            print(f"{r['name']:<16} {r['seconds']:>9.3f}s  peak {r['peak_rss_mib']:.0f} MiB  " + "; ".join(r["notes"]))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from .compiler import Program
    from .emulator import RECORDABLE

    if args.backend == "brian2":  # the float network, not a Program
        return _run_brian2(args)
    for out in (args.out, args.save_learned):
        if out:
            output_target(out)  # before a long run, not after it
    program = Program.load(args.program)
    record = _record_list(args.record)
    inputs = {}
    for key, arr in _read_inputs(args.input).items():
        name, _, var = key.rpartition("/")
        if var == "spikes" and name:
            inputs[name] = arr
        elif var in ("y1", "y2", "y3", "target") and name:  # graded third factors; e-prop's targets
            inputs[key] = arr
        else:
            print(
                f"neurocomp run: input key {key!r} is not '<population>/spikes' or '<projection>/y1..y3'",
                file=sys.stderr,
            )
            return EXIT_INVALID
    _check_record(program, record, args.backend)
    _require_run_memory(program, args)
    if (args.save_learned or args.snapshot_every) and args.backend != "emulator":
        print("neurocomp run: --save-learned and --snapshot-every run on the emulator", file=sys.stderr)
        return EXIT_INVALID
    if args.save_learned and not args.learn:
        print("neurocomp run: --save-learned needs --learn", file=sys.stderr)
        return EXIT_INVALID
    if args.snapshot_every and not any(pr.learning is not None for pr in program.projections):
        print("neurocomp run: --snapshot-every records plastic weights, and the program has none", file=sys.stderr)
        return EXIT_INVALID
    if args.backend == "reckon-rtl":
        from .backends.reckon_rtl import run_program

        rec = run_program(program, args.steps, inputs, record, args.learn, args.batch, args.seed, args.rtl)
    elif args.backend == "lava":
        from .backends.lava import LavaBackend

        rec = LavaBackend(program).run(args.steps, inputs=inputs, batch=args.batch, record=record, learn=args.learn)
    elif args.backend == "xylosim":
        from .backends.xylosim import XylosimBackend

        rec = XylosimBackend(program).run(args.steps, inputs=inputs, batch=args.batch, record=record)
    else:
        from .emulator import Emulator

        bad = [r for r in record if r not in RECORDABLE]
        if bad:
            print(f"neurocomp run: cannot record {bad} (recordable: {', '.join(RECORDABLE)})", file=sys.stderr)
            return EXIT_INVALID
        emu = Emulator(program, batch=args.batch, seed=args.seed, strict=args.strict, learn_mode=args.learn_mode)
        rec = _run_with_progress(emu, args.steps, inputs, record, args.learn, args.snapshot_every or 0)
        if args.save_learned:
            learned = {name: syn.engine.weights[0] for name, syn in emu.plastic.items()}
            program.with_weights(learned, f"weights learned on the emulator over {args.steps} steps, trial 0").save(
                args.save_learned
            )
            print(f"saved the learned weights of {', '.join(learned) or 'no projection'} to {args.save_learned}")
            for name, w in learned.items():  # Lava's Dense drops a mixed-sign weight's LSB when it loads
                pr = program.projection(name)
                odd = int(np.count_nonzero(np.asarray(w) % 2)) if pr.sign_mode == "mixed" else 0
                if odd and program.profile.formats.weight.mixed_sign_drops_lsb:
                    print(
                        f"note: {odd} learned weights of mixed-sign {name!r} are odd; "
                        "the chip floors them to even when it loads the program"
                    )
    atomic_savez(args.out, rec)
    spikes = {k: int(v.sum()) for k, v in rec.items() if k.endswith("/spikes")}
    per = ", ".join(f"{k.split('/')[0]} {n}" for k, n in spikes.items())
    print(f"ran {args.steps} steps x {args.batch} trial(s) on {args.backend}; spikes: {per}; wrote {args.out}")
    return EXIT_OK


def _run_brian2(args: argparse.Namespace) -> int:
    """``run MODEL.yaml --backend brian2``: the float network in Brian2 (see neurocomp.backends.brian2)."""

    from .backends.brian2 import Brian2Backend

    if args.program.endswith(".ncp"):
        print("neurocomp run: --backend brian2 runs the float model: give MODEL.yaml, not a Program", file=sys.stderr)
        return EXIT_INVALID
    if args.save_learned or args.snapshot_every:
        print("neurocomp run: --save-learned and --snapshot-every run on the emulator", file=sys.stderr)
        return EXIT_INVALID
    output_target(args.out)
    record = _record_list(args.record)
    raw = _read_inputs(args.input)
    bad = [k for k in raw if not k.endswith("/spikes")]
    if bad:
        print(f"neurocomp run: input keys {bad} are not '<population>/spikes'", file=sys.stderr)
        return EXIT_INVALID
    inputs = {k.rpartition("/")[0]: v for k, v in raw.items()}
    net = _load_model(args.program, args.dt)
    pops = [(p.name, p.size) for p in net.populations]
    projs = [(pr.name, pr.n_synapses, not pr.is_sparse) for pr in net.projections]
    require_memory(emulator_bytes(pops, projs, args.batch, args.steps, 8 * len(record)), "this run")
    backend = Brian2Backend(net, dt_ms=args.dt, codegen=args.codegen)
    rec = backend.run(args.steps, inputs=inputs, record=record, batch=args.batch, learn=args.learn)
    atomic_savez(args.out, rec)
    spikes = ", ".join(f"{k.split('/')[0]} {int(v.sum())}" for k, v in rec.items() if k.endswith("/spikes"))
    print(
        f"ran {args.steps} steps x {args.batch} trial(s) on brian2 ({args.codegen}); spikes: {spikes}; wrote {args.out}"
    )
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    """``export MODEL.yaml -o MODEL.nir``: the network as a NIR graph (see neurocomp.graph.nir)."""
    from .graph import load_network
    from .graph.nir import format_notes, save_nir

    if not str(args.output).endswith(".nir"):
        print(f"neurocomp export: the output must be a .nir file, got {args.output!r}", file=sys.stderr)
        return EXIT_INVALID
    notes: list[str] = []
    out = save_nir(load_network(args.model), args.output, args.dt, notes=notes)
    if notes:
        print(format_notes(notes))
    print(f"wrote {out} (dt {args.dt:g} ms)")
    return EXIT_OK


def _record_list(text: str) -> list[str]:
    record = [r.strip() for r in text.split(",") if r.strip()]
    if not record:
        raise UsageError([Problem("--record", f"names no variable: {text!r}")])
    return record


def _read_inputs(path: str | None) -> dict:
    """The arrays of an input ``.npz`` (no pickles), or a named error."""
    import zipfile

    import numpy as np

    if not path:
        return {}
    try:
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):
            raise ValueError("a single .npy array; inputs are an .npz with one key per input")
        with z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UsageError([Problem(f"--input {path}", "file not found")]) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError([Problem(f"--input {path}", f"not a readable .npz of arrays ({exc})")]) from None


def _check_record(program, record: list[str], backend: str) -> None:
    """Every recorded variable must exist somewhere in the program (``w`` needs a plastic
    projection), so a recording never silently lacks what was asked for."""
    from .emulator import RECORDABLE
    from .emulator.plastic import LEARNING_VARS

    problems = []
    plastic = [pr.name for pr in program.projections if pr.learning is not None]
    for var in record:
        if backend == "emulator" and var not in RECORDABLE:
            continue  # the emulator's own message lists what it records
        if var in LEARNING_VARS and not plastic:
            problems.append(
                Problem("--record", f"{var!r} is a learning variable, and the program has no plastic projection")
            )
        elif var == "a" and not any(p.model == "ALIF" for p in program.populations):
            problems.append(Problem("--record", "'a' is the adaptation of ALIF neurons, and the program has none"))
        elif var == "u2" and getattr(program.profile.neuron_models.get("LIF"), "synaptic_states", 1) < 2:
            msg = f"'u2' is a second synaptic current, and {program.profile.name} has none"
            problems.append(Problem("--record", msg))
    if problems:
        raise UsageError(problems)


def _network_bytes(net) -> list[tuple[str, float]]:
    """What compiling ``net`` holds: the float weights plus integer copies (about 3x the
    float64 weights) and the registers of every neuron."""
    out = [(f"population {p.name!r}", 64.0 * p.size) for p in net.populations]
    out += [(f"projection {pr.name!r}", 24.0 * pr.n_synapses) for pr in net.projections]
    return out


def _require_run_memory(program, args: argparse.Namespace) -> None:
    record = _record_list(args.record)
    rec_bytes = sum(1 if v == "spikes" else 8 for v in record)
    pops = [(p.name, p.size) for p in program.populations]
    projs = [(pr.name, pr.n_synapses, not pr.is_sparse) for pr in program.projections]
    items = emulator_bytes(pops, projs, args.batch, args.steps, rec_bytes)
    if args.snapshot_every:
        snaps = args.steps // args.snapshot_every + 1
        items += [
            (f"projection {pr.name!r} (snapshots)", 8.0 * snaps * args.batch * pr.shape[0] * pr.shape[1])
            for pr in program.projections
            if pr.learning is not None
        ]
    require_memory(items, f"running {args.steps} steps x {args.batch} trial(s)")


def _run_with_progress(emu, steps: int, inputs, record, learn: bool = False, snapshot_every: int = 0):
    """Run in chunks (chunked runs give the same bits), with a progress bar on a terminal.
    With ``snapshot_every`` K, the weights of plastic projections are recorded after every
    K steps (keys ``<projection>/w_snapshots`` ``[snapshots, trials, post, pre]`` and
    ``<projection>/w_snapshot_steps``)."""
    import numpy as np

    tty = sys.stdout.isatty() and steps >= 2000
    chunk = snapshot_every if snapshot_every > 0 else (max(100, steps // 50) if tty else steps)
    parts, snaps, at = [], {name: [] for name in emu.plastic}, []
    for start in range(0, steps, chunk):
        n = min(chunk, steps - start)
        part_inputs = {k: np.asarray(v)[start : start + n] for k, v in inputs.items()}
        parts.append(emu.run(n, inputs=part_inputs, record=record, learn=learn))
        done = start + n
        if snapshot_every > 0:
            at.append(emu.t)
            for name, syn in emu.plastic.items():
                snaps[name].append(syn.engine.weights.copy())
        if tty:
            bar = "#" * (30 * done // steps)
            print(f"\r[{bar:<30}] {done}/{steps} steps", end="", flush=True)
    if tty:
        print()
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if snapshot_every > 0:
        for name, s in snaps.items():
            out[f"{name}/w_snapshots"] = np.stack(s)
            out[f"{name}/w_snapshot_steps"] = np.asarray(at)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurocomp", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"neurocomp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_options()
    for add in _COMMANDS:
        add(sub, common)
    return parser


def _common_options() -> argparse.ArgumentParser:
    """The options every command that does work takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--max-memory",
        type=_size,
        default=argparse.SUPPRESS,
        metavar="SIZE",
        help="refuse work estimated to need more memory than SIZE (e.g. 16G; 'none' to switch the guard off; "
        "default: the memory available now, or $NEUROCOMP_MAX_MEMORY)",
    )
    return common


def _add_profiles(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp profiles [list|show NAME]``."""
    p = sub.add_parser(
        "profiles",
        parents=[common],
        help="list chip profiles, or show one",
        description="List the chip profiles (built-in ones and any in $NEUROCOMP_PROFILE_PATH) with their key "
        "limits, or show everything one profile says. The table marks an estimated figure with '*'; "
        "'show' says '(estimate)'.",
    )
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list", help="list (default) or show")
    p.add_argument("name", nargs="?", help="profile name (e.g. loihi2) or path to a profile YAML, for 'show'")
    p.set_defaults(func=_cmd_profiles)


def _add_validate(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp validate MODEL.yaml...``."""
    p = sub.add_parser(
        "validate",
        parents=[common],
        help="check model files and print every problem",
        description="Load each model file and check it: unknown populations, shape mismatches, bad time "
        "constants, NaN weights, thresholds <= 0, duplicate names and more. Prints OK or every problem; "
        "exits 2 if any model is invalid.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL.yaml", help="model files")
    p.add_argument("-v", "--verbose", action="store_true", help="print a summary of each valid model")
    p.set_defaults(func=_cmd_validate)


def _add_compile(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp compile MODEL.yaml --profile P -o OUT.ncp``: the pipeline's options."""
    from .compiler.options import PASS_NAMES

    p = sub.add_parser(
        "compile",
        parents=[common],
        help="compile a model for a chip profile into a Program (.ncp)",
        description="Run the pipeline " + " -> ".join(PASS_NAMES) + " and write the Program. Prints the "
        "quantization report, placement and energy estimate. Exits 2 if the model is invalid, violates the "
        "profile's design rules (all violations are listed) or, with --strict, loses precision.",
    )
    p.add_argument("model", metavar="MODEL.yaml")
    p.add_argument("--profile", required=True, help="profile name (see `neurocomp profiles`) or profile YAML path")
    p.add_argument("-o", "--output", required=True, metavar="OUT.ncp", help="where to write the Program")
    p.add_argument(
        "--dt",
        type=_float(0, lo_open=True),
        default=None,
        metavar="MS",
        help="time step in ms (default: the profile's)",
    )
    p.add_argument(
        "--rounding",
        choices=["nearest", "floor", "stochastic"],
        default="nearest",
        help="rounding of weights, thresholds and biases (default: nearest)",
    )
    p.add_argument("--seed", type=_SEED, default=0, help="seed for stochastic rounding (default: 0)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail instead of warning when quantization clips values or zeroes too many weights",
    )
    p.add_argument(
        "--max-zeroed",
        type=_float(0, 1),
        default=0.05,
        metavar="FRACTION",
        help="warn (or fail with --strict) when more than this fraction of a projection's nonzero "
        "weights become 0 (default: 0.05)",
    )
    p.add_argument(
        "--firing-rate",
        type=_float(0),
        default=10.0,
        metavar="HZ",
        help="firing rate assumed by the traffic and energy estimates (default: 10)",
    )
    p.add_argument(
        "--dump-ir-after",
        action="append",
        default=[],
        metavar="PASS",
        choices=[*PASS_NAMES, "all"],
        help="print the IR after this pass (repeatable; 'all' for every pass)",
    )
    p.add_argument("--time-passes", action="store_true", help="print time and peak memory per pass")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the program summary")
    p.set_defaults(func=_cmd_compile)


def _add_inspect(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp inspect PROGRAM.ncp``."""
    p = sub.add_parser(
        "inspect",
        parents=[common],
        help="summarize a compiled Program",
        description="Print a Program's populations, projections, placement, utilization, energy estimate, "
        "quantization report and warnings.",
    )
    p.add_argument("program", metavar="PROGRAM.ncp")
    p.add_argument("--cores", action="store_true", help="also print the utilization of every core")
    p.add_argument("--passes", action="store_true", help="also print the pass log (time, memory, notes)")
    p.set_defaults(func=_cmd_inspect)


def _add_run(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp run PROGRAM.ncp --steps N --out REC.npz``: inputs, batch, learning, recording."""
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run a compiled Program on the emulator (or on Lava) and save the recording",
        description="Run a Program for --steps steps. Inputs: an .npz with keys '<input population>/spikes' "
        "shaped [steps, batch, neurons] or [steps, neurons] (inputs with a rate in the model need none). "
        "The recording .npz has keys '<population>/spikes', '/v', '/u', each [steps, batch, neurons]. "
        "With --learn, plastic projections learn on the chip's learning engine; graded third factors come "
        "from input keys '<projection>/y1..y3' shaped [steps, batch, post] or [steps, post].",
    )
    p.add_argument("program", metavar="PROGRAM.ncp|MODEL.yaml", help="a Program; a model file for --backend brian2")
    p.add_argument("--steps", type=_STEPS, required=True, help="steps to run (>= 1)")
    p.add_argument(
        "--backend",
        choices=["emulator", "lava", "xylosim", "brian2", "reckon-rtl"],
        default="emulator",
        help="emulator (default), lava (loihi2 programs; needs the lava extra), xylosim (xylo programs in "
        "SynSense's XyloSim; needs the xylo extra), brian2 (the float model MODEL.yaml in Brian2; needs the "
        "brian2 extra), or reckon-rtl (reckon programs on ReckOn's Verilog under Icarus; see --rtl)",
    )
    p.add_argument(
        "--rtl",
        metavar="DIR",
        help="reckon-rtl: a copy of github.com/ChFrenkel/ReckOn (default: $NEUROCOMP_RECKON_RTL)",
    )
    p.add_argument(
        "--dt", type=_float(0, lo_open=True), default=1.0, metavar="MS", help="brian2: the time step in ms (default 1)"
    )
    p.add_argument("--codegen", choices=["numpy", "cython"], default="numpy", help="brian2: code generation target")
    p.add_argument("--input", metavar="IN.npz", help="spike arrays for the input populations")
    p.add_argument(
        "--batch",
        type=_BATCH,
        default=1,
        help="independent trials run together (default 1); a Poisson input draws its own spikes in each "
        "trial unless the model gives it 'trials: shared'",
    )
    p.add_argument("--seed", type=_SEED, default=0, help="seed of the chip's own randomness (default 0)")
    p.add_argument("--strict", action="store_true", help="stop at the first overflow instead of wrapping/saturating")
    p.add_argument("--record", default="spikes", help="comma-separated variables: spikes,v,u (default: spikes)")
    p.add_argument("--out", required=True, metavar="REC.npz", help="where to write the recording")
    p.add_argument(
        "--learn", action="store_true", help="run the on-chip learning of plastic projections (emulator or Lava)"
    )
    p.add_argument(
        "--learn-mode",
        choices=["independent", "shared"],
        default="independent",
        help="with --batch: each trial learns its own weights (default), or all trials update one set",
    )
    p.add_argument("--save-learned", metavar="OUT.ncp", help="save a Program holding the learned weights (trial 0)")
    p.add_argument(
        "--snapshot-every",
        type=_int(1),
        default=None,
        metavar="K",
        help="record the plastic weights after every K steps ('<projection>/w_snapshots')",
    )
    p.set_defaults(func=_cmd_run)


def _add_export(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp export MODEL.yaml -o MODEL.nir``."""
    p = sub.add_parser(
        "export",
        help="write a model as a NIR graph (.nir) for other frameworks",
        description="Write MODEL.yaml as a NIR graph (HDF5, the Neuromorphic Intermediate Representation) at "
        "time step --dt. What NIR cannot express (learning rules, subtractive reset, refractoriness, ALIF, "
        "Poisson rates) is kept in node metadata for neurocomp and noted; other tools ignore it.",
    )
    p.add_argument("model", metavar="MODEL.yaml")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.nir", help="where to write the NIR graph")
    p.add_argument("--dt", type=_float(0, lo_open=True), default=1.0, metavar="MS", help="time step in ms (default 1)")
    p.set_defaults(func=_cmd_export)


def _add_check(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp check MODEL --profile P --task T``: levels, alignment, attribution."""
    p = sub.add_parser(
        "check",
        parents=[common],
        help="compare a learning rule on a chip with its float reference",
        description=(
            "Run the rule at three levels (float64 reference, lowered-float, lowered-fixed) from the same initial "
            "weights and inputs; report update alignment, learning curves (with BPTT), error attribution and spike "
            "agreement; write report.json, summary.txt and PNG plots to --out."
        ),
        epilog=_check_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model", help="model YAML with a plastic network ('rflo' for rflo-periodic, whose network is the task's)"
    )
    p.add_argument("--profile", required=True, help="chip profile name")
    p.add_argument("--task", required=True, help="task name (listed below)")
    p.add_argument(
        "--iterations",
        type=_int(1, 100_000),
        default=None,
        help="training iterations per level (default: check's ITERATIONS, 200: enough for the example to learn)",
    )
    p.add_argument("--seed", type=_SEED, default=0, help="task and emulator seed (default 0)")
    p.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2,...",
        help="run the check once per seed (OUT/seed-S each) and report the attribution's mean and spread over them",
    )
    p.add_argument("--align", type=_int(0, 100_000), default=3, help="teacher-forced updates compared (default 3)")
    p.add_argument("--steps", type=_STEPS, default=None, help="steps per trial (default: the task's)")
    p.add_argument("--no-attribution", action="store_true", help="skip the attribution runs")
    p.add_argument(
        "--attribution",
        default=None,
        help="comma-separated attribution rows to run (listed below; default: all)",
    )
    p.add_argument("--no-bptt", action="store_true", help="skip BPTT")
    p.add_argument("--out", default="check-out", help="output directory (default check-out)")
    p.add_argument(
        "--deploy",
        action="store_true",
        help="no learning: score the (trained) model on held-out trials in float and on each chip of --profile "
        "(comma-separated), with the gap split into weight quantization and neuron arithmetic",
    )
    p.add_argument("--trials", type=_BATCH, default=64, help="--deploy: held-out trials (default 64)")
    p.set_defaults(func=_cmd_check)


def _add_sweep(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp sweep SPEC.yaml --out DIR`` on Dask."""
    p = sub.add_parser(
        "sweep",
        help="run compile -> emulate -> check over a grid of chips, bit widths, roundings and seeds on Dask",
        description="Run every cell of a sweep spec (see examples/sweeps/) as a Dask task, on a LocalCluster with "
        "one worker process per core or on --scheduler. Each cell's result is written to OUT/cells/ as it finishes; "
        "a rerun skips the done cells. Writes the table OUT/results.parquet (results.csv without pyarrow) and plots "
        "in OUT/report. Without SPEC, --report DIR redraws the plots of the finished sweep in DIR.",
    )
    p.add_argument("spec", nargs="?", metavar="SPEC.yaml", help="the sweep spec")
    p.add_argument("--out", metavar="DIR", help="output directory (required with SPEC)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="LocalCluster workers (default: 1 per core)")
    p.add_argument("--report", metavar="DIR", help="where the plots go (default OUT/report); alone: the sweep to plot")
    p.add_argument("--retry-failed", action="store_true", help="rerun the cells that raised an error")
    p.set_defaults(func=_cmd_sweep)


def _add_train(sub, common: argparse.ArgumentParser) -> None:
    """``neurocomp train MODEL.yaml --task T -o TRAINED.yaml``: float64 training for deployment."""
    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model's weights in float (BPTT or e-prop, Adam) and write the trained model",
        description="Train every projection of MODEL.yaml (spike inputs -> LIF/ALIF -> one LI readout, or inputs -> "
        "GatedTheta -> one LI readout) on --task in float64 with the chip's discrete-time conventions, and write the "
        "trained model; then `compile` it and `check --deploy` it. For a GatedTheta network bptt is the exact "
        "gradient, eprop e-prop with its phase and charge traces, forward the single-trace approximation, engine "
        "e-prop reduced to the shape of loihi2's learning engine (three post factors, one tag; trained off chip: "
        "the engine's tag range cannot hold it, so compile refuses a plastic gated projection). The "
        "trials are drawn from --seed; a checkpoint resumes to the same bits.",
    )
    p.add_argument("model", metavar="MODEL.yaml")
    p.add_argument("--task", required=True, help="task name (as for check)")
    p.add_argument("-o", "--output", required=True, metavar="TRAINED.yaml", help="where to write the trained model")
    p.add_argument("--method", choices=("bptt", "eprop", "forward", "engine"), default="bptt",
                   help="bptt (default), eprop, or (GatedTheta) forward or engine")  # fmt: skip
    p.add_argument("--iterations", type=_int(1, 10**7), default=200, help="batches to train on (default 200)")
    p.add_argument("--batch", type=_BATCH, default=None, help="trials per batch (default: the task's)")
    p.add_argument("--lr", type=_float(0, lo_open=True), default=1e-2, help="Adam's step size (default 0.01)")
    p.add_argument("--lr-decay", type=_float(0, 1, lo_open=True), default=1.0, help="factor every --lr-decay-every")
    p.add_argument("--lr-decay-every", type=_int(0), default=0, metavar="N", help="iterations (default 0: never)")
    p.add_argument("--reg", type=_float(0), default=0.0, help="rate regularization strength (default 0)")
    p.add_argument("--reg-rate", type=_float(0), default=10.0, metavar="HZ", help="its target rate (default 10)")
    p.add_argument("--stop-at", type=float, default=None, metavar="M", help="stop when the metric is below M")
    p.add_argument("--profile", default=None, help="take this chip's latencies (default: 1 step, loihi2's)")
    p.add_argument("--seed", type=_SEED, default=0, help="seed of the trials and the feedback (default 0)")
    p.add_argument("--checkpoint", metavar="CKPT.npz", help="save the training state here")
    p.add_argument("--checkpoint-every", type=_int(0), default=10, metavar="N", help="iterations (default 10)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--rewiring", type=_float(0, 1, lo_open=True), default=None, metavar="C",
                   help="DEEP R: keep this fraction of input and recurrent synapses, signs fixed")  # fmt: skip
    p.add_argument("--dale", type=_float(0, 1), default=None, metavar="F",
                   help="with --rewiring: Dale's law, this fraction of recurrent neurons excitatory")  # fmt: skip
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from .analysis.train import TrainConfig, train

    cfg = TrainConfig(method=args.method, iterations=args.iterations, lr=args.lr, lr_decay=args.lr_decay,
                      lr_decay_every=args.lr_decay_every, reg=args.reg, reg_rate_hz=args.reg_rate,
                      stop_at=args.stop_at, batch=args.batch, seed=args.seed, checkpoint_every=args.checkpoint_every,
                      rewiring=args.rewiring, dale=args.dale)  # fmt: skip
    res = train(args.model, args.task, cfg, args.output, args.profile, args.checkpoint, args.resume)
    print(res.summary())
    return EXIT_OK


# the commands, in the order `neurocomp --help` lists them
_COMMANDS = (_add_profiles, _add_validate, _add_compile, _add_inspect, _add_run, _add_export, _add_train, _add_check,
             _add_sweep)  # fmt: skip


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep.cli import sweep_command

    return sweep_command(args.spec, args.out, args.scheduler, args.workers, args.report, args.retry_failed)


def _check_epilog() -> str:
    """The tasks and the attribution rows, for ``check --help``."""
    from .analysis.check import ATTRIBUTION_HELP, RATE_ONLY_ROWS
    from .tasks import TASKS

    lines = ["tasks (--task):"]
    for name, gen in sorted(TASKS.items()):
        doc = (sys.modules[gen.__module__].__doc__ or "").strip().splitlines()
        first = doc[0].split(":", 1)[-1].split(" (")[0].strip().replace("``", "") if doc else ""
        lines.append(f"  {name:24s} {first}")
    lines += ["", "attribution rows (--attribution; each is lowered-fixed with one thing changed):"]
    lines += [f"  {row:10s} {text}" for row, text in {**ATTRIBUTION_HELP, **RATE_ONLY_ROWS}.items()]
    lines += [
        "",
        "The attribution table gives each row's final metric and its absolute difference from lowered-fixed.",
    ]
    return "\n".join(lines)


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UsageError([Problem("--seeds", f"expected comma-separated integers, got {text!r}")]) from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError([Problem("--seeds", f"expected distinct seeds >= 0, got {text!r}")])
    return seeds


def _cmd_check(args: argparse.Namespace) -> int:
    from .analysis.check import attribution_over_seeds, check, format_attribution, plot_attribution
    from .tasks import TASKS

    if args.task not in TASKS:
        raise UsageError([Problem("--task", f"unknown task {args.task!r} (known: {', '.join(sorted(TASKS))})")])
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise OutputError([Problem(args.out, "exists and is not a directory; --out names a folder for the report")])
    if args.deploy:
        from .analysis.deploy import deploy_check

        profiles = tuple(x for x in args.profile.split(",") if x)
        print(deploy_check(args.model, args.task, profiles, args.trials, args.seed, args.out).summary())
        return EXIT_OK
    seeds = _parse_seeds(args.seeds)
    kw = dict(
        **({} if args.iterations is None else {"iterations": args.iterations}),
        align=args.align,
        attribution=False if args.no_attribution else (args.attribution.split(",") if args.attribution else True),
        bptt=not args.no_bptt,
        steps=args.steps,
    )
    if seeds is None:
        print(check(args.model, args.profile, args.task, seed=args.seed, out=args.out, **kw).summary())
        return EXIT_OK
    reports = []
    for s in seeds:
        print(f"-- seed {s}", flush=True)
        reports.append(check(args.model, args.profile, args.task, seed=s, out=Path(args.out) / f"seed-{s}", **kw))
        print(reports[-1].summary(), flush=True)
    rows = attribution_over_seeds(reports)
    if rows:
        m = reports[0].config["metric"]
        higher = reports[0].config.get("higher_is_better", False)
        text = "\n".join([f"over seeds {args.seeds}:", *format_attribution(rows, m, higher)])
        atomic_write_text(Path(args.out) / "attribution_seeds.txt", text + "\n")
        try:
            plot_attribution(rows, {**reports[0].config, "seed": args.seeds}, Path(args.out), "attribution_seeds.png")
        except ImportError:
            pass
        print("\n" + text)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INVALID
    set_memory_limit(getattr(args, "max_memory", "auto"))
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return args.func(args)
    except NeurocompError as exc:
        print(f"neurocomp {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except MemoryError:  # an allocation the estimates did not foresee: still the input's size
        print(f"neurocomp {args.command}: out of memory; make the model or run smaller", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print(f"neurocomp {args.command}: interrupted (no output was changed)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"neurocomp {args.command}: terminated (no output was changed)", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception:  # a bug in neurocomp: say so, with the traceback for the report
        traceback.print_exc()
        print(
            f"neurocomp {args.command}: internal error (a bug in neurocomp {__version__}; please report it "
            "with the traceback above)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        set_memory_limit("auto")
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
