"""The main job, end to end: load and validate every example model, print each one, and
print the chip profiles they can be compiled for.

Run it with ``make demo`` (which sets up .venv first) or ``python examples/demo.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import neurocomp as nc
from neurocomp.profiles import profiles_table

MODELS = Path(__file__).parent / "models"


def main() -> int:
    print(f"neurocomp {nc.__version__}\n")
    failed = 0
    for path in sorted(MODELS.glob("*.yaml")):
        try:
            net = nc.load_network(path)
        except nc.ModelError as exc:
            failed += 1
            print(f"INVALID {path.name}\n{exc}\n")
            continue
        print(f"OK {path.name}")
        print(net.summary(), end="\n\n")
    print("Chip profiles (neurocomp profiles show NAME for details):")
    print(profiles_table([nc.load_profile(name) for name in nc.list_profiles()]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
