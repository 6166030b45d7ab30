"""The main job, end to end: load and validate every example model, compile each one for
every chip profile, show what the compiler reports (quantization loss, placement, energy)
and refuses (every design-rule violation at once), then emulate a compiled program and run
the same program in Lava to show that they agree bit for bit.

Run it with ``make demo`` (which sets up .venv first) or ``python examples/demo.py``.
Compiled programs go to ``out/demo/`` (inspect them with ``neurocomp inspect``).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import neurocomp as nc
from neurocomp.compiler import CompileError, compile
from neurocomp.profiles import profiles_table

ROOT = Path(__file__).resolve().parent
MODELS = ROOT / "models"
OUT = ROOT.parent / "out" / "demo"


def _row(name: str, cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip([name, *cells], widths, strict=True))


def main() -> int:
    print(f"neurocomp {nc.__version__}\n")
    print("== 1. Models")
    nets = {}
    for path in sorted(MODELS.glob("*.yaml")):
        try:
            nets[path.stem] = nc.load_network(path)
        except nc.ModelError as exc:
            print(f"INVALID {path.name}\n{exc}\n")
            return 1
        print(f"OK {path.name}: {nets[path.stem]!r}")

    profiles = [nc.load_profile(n) for n in nc.list_profiles()]
    print("\n== 2. Chip profiles (neurocomp profiles show NAME for details)")
    print(profiles_table(profiles))

    print("\n== 3. Compile every model for every profile")
    print("   OK: cores/chips, energy per step at 10 Hz, worst mean relative weight error, weights zeroed;")
    print("   DRC: the number of design rules the model breaks on that chip")
    OUT.mkdir(parents=True, exist_ok=True)
    widths = [24] + [30] * len(profiles)
    print(_row("model", [p.name for p in profiles], widths))
    programs, refusals = {}, {}
    for stem, net in nets.items():
        cells = []
        for prof in profiles:
            try:
                prog = compile(net, prof, out=io.StringIO())
            except CompileError as exc:
                refusals[(stem, prof.name)] = exc
                cells.append(f"DRC: {len(exc.problems)} violation(s)")
                continue
            programs[(stem, prof.name)] = prog
            prog.save(OUT / f"{stem}.{prof.name}.ncp")
            pl = prog.placement
            weights = [s for s in prog.report.stats if s.param == "weights"]
            rel = max((s.mean_rel_error for s in weights), default=0.0)
            zeroed = sum(s.zeroed for s in weights)
            energy = "-" if pl.energy_pj_per_step is None else f"{pl.energy_pj_per_step / 1e3:.3g}nJ"
            cells.append(f"OK {pl.n_cores}c/{pl.n_chips}ch {energy} {rel:.1%} z{zeroed}")
        print(_row(stem, cells, widths))

    print("\n== 4. The report for recurrent_ei on loihi2 (neurocomp inspect out/demo/recurrent_ei.loihi2.ncp)")
    print(programs[("recurrent_ei", "loihi2")].summary())

    multi = programs.get(("multichip_sparse", "loihi2"))
    if multi is not None:
        pl = multi.placement
        print(
            f"\n== 5. multichip_sparse on loihi2 needs {pl.n_cores} cores on {pl.n_chips} chips; partitioning "
            f"keeps cross-chip traffic at {pl.traffic_cross_chip:.4g} of {pl.traffic_total:.4g} spikes/step "
            f"(greedy placement alone: {pl.traffic_cross_chip_greedy:.4g})"
        )

    print("\n== 6. drc_violations on loihi2 is refused, with every violation listed")
    print(refusals[("drc_violations", "loihi2")])

    print("\n== 7. Emulate recurrent_ei on loihi2, and run the same Program in Lava")
    ok = emulate_and_compare(programs[("recurrent_ei", "loihi2")], steps=200)
    print(f"\nPrograms written to {OUT}")
    return 0 if ok else 1


def emulate_and_compare(program, steps: int) -> bool:
    """Run ``program`` on the emulator and in Lava; report whether every u, v and spike agrees."""
    import time

    import numpy as np

    from neurocomp.backends.lava import LavaBackend, lava_available
    from neurocomp.emulator import Emulator

    t0 = time.perf_counter()
    emu = Emulator(program).run(steps, record=["spikes", "v", "u"])
    t_emu = time.perf_counter() - t0
    rates = ", ".join(f"{k.split('/')[0]} {v.mean():.1%}" for k, v in emu.items() if k.endswith("/spikes"))
    print(f"emulator: {steps} steps in {t_emu:.3f} s; firing per step: {rates}")
    if not lava_available():
        print("Lava is not installed in this environment (pip install 'neurocomp[lava]'); comparison skipped")
        return True
    t0 = time.perf_counter()
    lava = LavaBackend(program).run(steps, record=["spikes", "v", "u"])
    t_lava = time.perf_counter() - t0
    mismatched = [k for k in lava if not np.array_equal(lava[k], emu[k])]
    n_values = sum(v.size for v in lava.values())
    print(f"Lava (fixed_pt): {steps} steps in {t_lava:.2f} s")
    if mismatched:
        print(f"MISMATCH between the emulator and Lava in: {', '.join(mismatched)}")
        return False
    print(
        f"emulator and Lava agree bit for bit on all {n_values} recorded values (u, v and spikes of every neuron "
        f"at every step)"
    )
    return True


if __name__ == "__main__":
    sys.exit(main())
