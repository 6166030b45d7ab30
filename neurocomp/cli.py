"""The ``neurocomp`` command line.

Exit codes: 0 success; 2 invalid input (a model or profile with problems, a missing file,
bad arguments); 1 an unexpected internal error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import NeurocompError

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2

_DESCRIPTION = """\
neurocomp compiles spiking neural networks (with on-chip learning) for neuromorphic chip
profiles, emulates them bit-accurately, and checks learning on the chip against float.

common tasks:
  neurocomp profiles                  list the chip profiles and their key limits
  neurocomp profiles show loihi2      everything one profile says, with sources
  neurocomp validate model.yaml       check a model file; prints every problem or OK
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


def _cmd_validate(args: argparse.Namespace) -> int:
    from .graph import load_network

    status = EXIT_OK
    for path in args.models:
        try:
            net = load_network(path)
        except NeurocompError as exc:
            status = EXIT_INVALID
            print(f"INVALID {path}")
            for p in exc.problems:
                print(f"  - {p}")
            continue
        print(f"OK {path}: {net!r}")
        if args.verbose:
            print(net.summary())
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurocomp", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"neurocomp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "profiles",
        help="list chip profiles, or show one",
        description="List the chip profiles (built-in ones and any in $NEUROCOMP_PROFILE_PATH) with their key "
        "limits, or show everything one profile says. The table marks an estimated figure with '*'; "
        "'show' says '(estimate)'.",
    )
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list", help="list (default) or show")
    p.add_argument("name", nargs="?", help="profile name (e.g. loihi2) or path to a profile YAML, for 'show'")
    p.set_defaults(func=_cmd_profiles)

    p = sub.add_parser(
        "validate",
        help="check model files and print every problem",
        description="Load each model file and check it: unknown populations, shape mismatches, bad time "
        "constants, NaN weights, thresholds <= 0, duplicate names and more. Prints OK or every problem; "
        "exits 2 if any model is invalid.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL.yaml", help="model files")
    p.add_argument("-v", "--verbose", action="store_true", help="print a summary of each valid model")
    p.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INVALID
    try:
        return args.func(args)
    except NeurocompError as exc:
        print(f"neurocomp {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
