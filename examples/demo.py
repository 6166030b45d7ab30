"""The main job, end to end: load and validate every example model, compile each one for
every chip profile, show what the compiler reports (quantization loss, placement, energy)
and refuses (every design-rule violation at once), then emulate a compiled program and run
the same program in Lava to show that they agree bit for bit, train a small e-prop network
with the chip's own learning engine (loihi2), printing the loss as it falls, and finally
check that on-chip rule against its float reference (``neurocomp check``): update
alignment, learning curves, error attribution and spike agreement, as a summary; last, the
models written for xylo (emulator against SynSense's XyloSim) and reckon (on-chip e-prop).

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

    print("\n== 8. On-chip STDP on loihi2: the emulator's learning engine and Lava's LearningDense, step by step")
    ok = learning_matches_lava(steps=150) and ok

    print("\n== 9. On-chip e-prop on loihi2 (examples/eprop_pattern.yaml): what the lowering did, then training")
    ok = train_eprop_on_chip(iterations=12, steps=500) and ok

    print("\n== 10. The main job: check on-chip e-prop (loihi2) against the float reference")
    print("  (neurocomp check examples/eprop_pattern.yaml --profile loihi2 --task pattern-generation; short run)")
    rep = nc.check(ROOT / "eprop_pattern.yaml", "loihi2", "pattern-generation", iterations=3, align=2, steps=500,
                   out=OUT / "check", progress=True)  # fmt: skip
    print("  " + rep.summary().replace("\n", "\n  "))

    print("\n== 11. Models written for xylo and reckon, each on its own chip")
    ok = xylo_and_reckon(programs) and ok
    print(f"\nPrograms written to {OUT}")
    return 0 if ok else 1


def xylo_and_reckon(programs) -> bool:
    """xylo_keywords on xylo: the emulator against SynSense's XyloSim, every value of every
    step; reckon_pattern on reckon: a few trials of the chip's own e-prop."""
    import numpy as np

    from neurocomp.backends.xylosim import XylosimBackend, xylosim_available
    from neurocomp.emulator import Emulator

    xylo, steps, rec = programs[("xylo_keywords", "xylo")], 300, ["spikes", "v", "u", "u2"]
    emu = Emulator(xylo).run(steps, record=rec)
    print(f"  xylo_keywords on xylo: hidden firing {emu['hidden/spikes'].mean():.1%} per step (emulator)")
    if not xylosim_available():
        print("  XyloSim is not installed (pip install 'neurocomp[xylo]'); comparison skipped")
    else:
        sim = XylosimBackend(xylo).run(steps, record=rec)
        bad = [k for k in sim if not np.array_equal(sim[k], emu[k])]
        if bad:
            print(f"  MISMATCH between the emulator and XyloSim in: {', '.join(bad)}")
            return False
        n = sum(v.size for v in sim.values())
        print(f"  XyloSim (xylosim.v2.XyloLayer): all {n} values (spikes, v, both currents) agree bit for bit")
    reckon = programs[("reckon_pattern", "reckon")]
    emu_r = Emulator(reckon)
    target = 0.5 * np.sin(np.arange(500) / 40.0)[:, None]
    w0 = emu_r.state["rec->out/w"].copy()
    for _ in range(3):  # trials of 500 steps; the weights are kept, the states reset
        emu_r.reset(keep_weights=True)
        out = emu_r.run(500, inputs={"out/target": target}, record=["spikes"], learn=True)
    moved = int(np.abs(emu_r.state["rec->out/w"] - w0).sum())
    print(f"  reckon_pattern on reckon: rec firing {out['rec/spikes'].mean():.1%} per step; 3 trials of on-chip "
          f"e-prop moved the readout weights by {moved} LSBs")  # fmt: skip
    return True


def learning_matches_lava(steps: int) -> bool:
    """A dense STDP layer (the stdp_feedforward model without its delay, in dense form),
    learning in the emulator and in Lava: weights, traces and spikes compared every step."""
    import time

    import numpy as np

    from neurocomp.backends.lava import LavaBackend, lava_available
    from neurocomp.emulator import Emulator

    net = nc.Network(name="stdp-dense")
    net.add(nc.Population("in", 12, nc.SpikeInput(rate_hz=60.0, seed=7)))
    net.add(nc.Population("exc", 6, nc.LIF(tau_mem_ms=10.0, tau_syn_ms=5.0, v_th=1.0, reset="zero")))
    w = nc.init_weights({"init": "uniform", "low": 0.0, "high": 0.6, "seed": 11}, 6, 12)
    rule = nc.RuleSpec("stdp", {"lr": 0.002, "tau_plus_ms": 20.0, "tau_minus_ms": 20.0})
    net.add(nc.Projection("in", "exc", w, sign_mode="excitatory", plasticity=rule))
    prog = compile(net, "loihi2", out=io.StringIO())
    print(f"  lowered: dw = {prog.projection('in->exc').learning.dw}")
    record = ["spikes", "w", "x1", "y1"]
    emu = Emulator(prog).run(steps, record=record, learn=True)
    moved = int(np.abs(emu["in->exc/w"][-1] - emu["in->exc/w"][0]).sum())
    print(f"  emulator: {steps} steps; the weights moved by {moved} LSBs in total")
    if not lava_available():
        print("  Lava is not installed (pip install 'neurocomp[lava]'); comparison skipped")
        return True
    t0 = time.perf_counter()
    lava = LavaBackend(prog).run(steps, record=record, learn=True)
    bad = [k for k in lava if k in emu and not np.array_equal(lava[k], emu[k])]
    if bad or moved == 0:
        print(f"  MISMATCH between the emulator and Lava in: {', '.join(bad) or 'nothing learned'}")
        return False
    n = sum(v.size for k, v in lava.items() if k in emu)
    print(f"  Lava (LearningDense, fixed_pt) in {time.perf_counter() - t0:.1f} s: all {n} values agree bit for bit")
    return True


def train_eprop_on_chip(iterations: int, steps: int) -> bool:
    """Compile the e-prop example for loihi2 and train it on the emulated learning engine:
    each iteration is one trial of ``steps`` ms (weights kept, states reset). The float
    column is the same lowered rule in float64 on the same chip dynamics."""
    import time

    import numpy as np

    from neurocomp.emulator import Emulator

    prog = compile(nc.load_network(ROOT / "eprop_pattern.yaml"), "loihi2", out=io.StringIO())
    prog.save(OUT / "eprop_pattern.loihi2.ncp")
    for r in prog.pass_log:
        if r["name"] == "lower_learning":
            print("\n".join(f"  {n}" for n in r["notes"]))
    rng = np.random.default_rng(0)  # Bellec's target: a sum of sines, here 4 periods within a trial
    t = np.arange(steps)
    tgt = sum(rng.uniform(0.5, 2) * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi)) for p in (500, 250, 167, 100))
    tgt = (0.5 * tgt / np.abs(tgt).max())[:, None]
    scale = 2.0 ** prog.population("out").scale_exp
    runs = {"chip": Emulator(prog), "float": Emulator(prog, learn_arithmetic="float")}
    print(f"\n  {'iteration':>9}  {'MSE (chip learning)':>20}  {'MSE (float learning)':>21}")
    first = last = None
    t0 = time.perf_counter()
    for it in range(iterations):
        mse = {}
        for name, emu in runs.items():
            emu.reset(keep_weights=True)
            rec = emu.run(steps, inputs={"out.error/target": tgt}, record=["v"], learn=True)
            mse[name] = float(np.mean((rec["out/v"][:, 0] / scale - tgt) ** 2))
        first = mse["chip"] if first is None else first
        last = mse["chip"]
        print(f"  {it:>9}  {mse['chip']:>20.4f}  {mse['float']:>21.4f}")
    print(f"  {iterations} iterations x {steps} steps x 2 runs in {time.perf_counter() - t0:.1f} s")
    if last >= first:
        print("  the loss did not fall: on-chip learning FAILED")
        return False
    print(f"  on-chip e-prop: MSE {first:.4f} -> {last:.4f}")
    return True


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
