"""Steps per second of the emulator and of Lava (fixed_pt, CPU) on the same loihi2 Program,
measured in one process, with the ratio.

Cases (issue 13 targets in brackets, printed beside the results as MET or MISSED):
  (a) recurrent LIF, N = 1000, 10%-dense mixed-sign weights, ~6% firing per step  [>= 50x Lava]
  (b) the same at N = 4000
  (c) a batch of 64 trials of (a): throughput per trial (over the cores)         [>= 200x Lava]
  (d) a sparse N = 100 000 network, 100 synapses per neuron (emulator only): synaptic
      events per second, and cost per event relative to (a)                         [within 2x]
  (e) pair STDP on a dense plastic 1000 x 1000 projection (Lava's LearningDense), ~6% of
      the pre and post neurons firing per step; final u and v identical             [>= 50x Lava]

A static network runs in one compiled call per chunk of steps (no Python per step); a
batch runs its trials in parallel over the cores.

Lava's time is its run phase alone (no start-up, no Monitor: Lava reads a Monitor out one
value at a time, ~70 us per value, which would dwarf the run). The emulator's time includes
recording every spike. In (a) and (b) the final u and v of every neuron are checked to be
identical in both, so the speed is that of a bit-exact run.

    python benchmarks/emulator_vs_lava.py [--steps 1000] [--repeat 3] [--no-lava]
    python benchmarks/emulator_vs_lava.py --event-cost 5   # (a) and (d) alone, 5 rounds

``--event-cost N`` runs only (a) and (d), in turn, N times, and prints each round's cost per
event (d)/(a) in CPU time with the median and the largest: on a loaded machine one round
says little about a ratio that depends on the cache the other processes leave.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np

import neurocomp as nc
from neurocomp.emulator import Emulator

TARGETS = {"(a)": 50.0, "(c)": 200.0, "(e)": 50.0}  # x Lava's steps per second
EVENT_COST_RATIO = 2.0  # (d) per synaptic event within this factor of (a)


def recurrent_program(n: int, density: float = 0.1, seed: int = 0, sparse: bool = False, bandwidth=None):
    """LIF neurons (tau_m 20 ms, tau_syn 5 ms) with a constant drive and random mixed-sign
    recurrent weights, set so that about 6% of the neurons fire per step. Mean and spread of
    the weights scale with the expected fan-in, so every size sees the same input statistics."""
    net = nc.Network(name=f"bench-{n}")
    net.add(nc.Population("rec", n, nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=1.0, bias=0.06)))
    fan_in = density * (n if bandwidth is None else 2 * bandwidth + 1)
    spec = {
        "init": "normal",
        "std": 0.05 * (100 / fan_in) ** 0.5,
        "mean": -0.007 * 100 / fan_in,
        "density": density,
        "seed": seed,
        "exclude_self": True,
        "format": "sparse" if sparse else "dense",
    }
    if bandwidth is not None:
        spec["bandwidth"] = bandwidth
    net.add(nc.Projection("rec", "rec", nc.init_weights(spec, n, n, recurrent=True)))
    return nc.compile(net, "loihi2", out=io.StringIO())


def time_emulator(program, steps: int, batch: int = 1, repeat: int = 1) -> tuple[float, dict, dict, float]:
    """Seconds for ``steps`` steps (spikes recorded; the fastest of ``repeat`` runs from the
    same start, the least disturbed by other processes), the recording, the final state, and
    the CPU seconds of the fastest run (of all threads)."""
    emu = Emulator(program, batch=batch)
    emu.run(10)  # warm-up (allocations, BLAS threads)
    best, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        emu.reset()
        c0, t0 = time.process_time(), time.perf_counter()
        rec = emu.run(steps, record=["spikes"])
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, rec, emu.state, cpu


def time_lava(program, steps: int, repeat: int = 1) -> tuple[float, dict]:
    """Seconds of Lava's run phase for ``steps`` steps (the fastest of ``repeat`` runs; no
    Monitor: reading one out costs ~70 us per value in Lava, far more than the run), and the
    final u and v."""
    from neurocomp.backends.lava import LavaBackend

    best = float("inf")
    for _ in range(repeat):
        backend = LavaBackend(program)
        final = backend.run(steps, record=[], final=("u", "v"))
        best = min(best, backend.run_seconds)
    return best, final


def stdp_program(n: int = 1000, seed: int = 0):
    """``n`` spike inputs -> dense plastic pair STDP -> ``n`` LIF (excitatory). Each LIF's
    weights are uniform up to its own scale, set so that about 6% of them fire per step
    from inputs firing at 6%."""
    net = nc.Network(name=f"stdp-{n}")
    net.add(nc.Population("in", n, nc.SpikeInput()))
    net.add(nc.Population("exc", n, nc.LIF(tau_mem_ms=10.0, tau_syn_ms=1.0, v_th=1.0, reset="zero")))
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 0.002, (n, n)) * rng.uniform(0.65, 1.05, (n, 1))
    params = {"lr": 0.006, "a_plus": 1.0, "a_minus": 1.2, "tau_plus_ms": 20.0, "tau_minus_ms": 20.0}
    net.add(nc.Projection("in", "exc", w, sign_mode="excitatory", plasticity=nc.RuleSpec("stdp", params)))
    return nc.compile(net, "loihi2", out=io.StringIO())


def case_stdp(steps: int, lava_steps: int, no_lava: bool):
    """(e): emulator and Lava steps/s of learning with pair STDP, and the post firing rate;
    the post neurons' u and v after ``lava_steps`` steps are checked to be identical."""
    from neurocomp.backends.lava import LavaBackend

    prog = stdp_program()
    raster = (np.random.default_rng(1).random((steps, 1000)) < 0.06).astype(np.uint8)
    emu = Emulator(prog)
    emu.run(5, {"in": raster[:5]}, learn=True)  # warm-up: kernels, allocations
    emu.reset()
    t0 = time.perf_counter()
    rec = emu.run(steps, {"in": raster}, record=["spikes"], learn=True)
    emu_s = time.perf_counter() - t0
    lava = None
    if not no_lava:  # (no per-step readout of the weights: Lava reads a Var out slowly)
        backend = LavaBackend(prog)
        final = backend.run(lava_steps, inputs={"in": raster[:lava_steps]}, record=[], final=("u", "v"), learn=True)
        lava = lava_steps / backend.run_seconds
        check = Emulator(prog)
        check.run(lava_steps, {"in": raster[:lava_steps]}, learn=True)
        for var in ("u", "v"):  # the learned weights drive u, then v
            assert np.array_equal(check.state[f"exc/{var}"][0], final[f"exc/final_{var}"][0]), f"(e) disagrees: {var}"
    return steps / emu_s, lava, rec["exc/spikes"].mean()


def check_same(name: str, state: dict, final: dict) -> None:
    for var in ("u", "v"):
        lava = final[f"rec/final_{var}"][0]
        emu = state[f"rec/{var}"][0]
        assert np.array_equal(lava, emu), f"emulator and Lava disagree on {name}: final {var}"


def synapses_per_neuron(prog) -> float:
    """The recurrent projection's stored synapses per neuron: its nonzero weights (a weight whose
    mantissa rounds to 0 delivers nothing), counted alike for dense (a) and sparse (d)."""
    return np.count_nonzero(prog.projections[0].weights) / prog.populations[0].size


def event_cost(prog_a, prog_d, steps: int, rep: int) -> tuple[float, float, float, float]:
    """CPU seconds per synaptic event of (a) and of (d) (spikes x synapses per neuron), and
    their CPU seconds per step: one round of the (d)/(a) comparison."""
    _, rec_a, _, cpu_a = time_emulator(prog_a, steps, repeat=rep)
    _, rec_d, _, cpu_d = time_emulator(prog_d, steps, repeat=rep)
    per_a = cpu_a / (rec_a["rec/spikes"].sum() * synapses_per_neuron(prog_a))
    per_d = cpu_d / (rec_d["rec/spikes"].sum() * synapses_per_neuron(prog_d))
    return per_a, per_d, cpu_a / steps, cpu_d / steps


def event_cost_rounds(rounds: int, steps: int, rep: int) -> int:
    """``--event-cost``: (a) and (d) alone, ``rounds`` times in turn; each round's ratio, then
    the median and the largest against the target."""
    prog_a, prog_d = recurrent_program(1000), sparse_program()
    ratios = []
    for r in range(rounds):
        per_a, per_d, step_a, step_d = event_cost(prog_a, prog_d, steps, rep)
        ratios.append(per_d / per_a)
        print(
            f"round {r + 1}: CPU (a) {step_a * 1e6:.2f} us per step ({per_a * 1e9:.2f} ns per event), (d) "
            f"{step_d * 1e6:.0f} us ({per_d * 1e9:.2f} ns); (d)/(a) {ratios[-1]:.2f}; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    med, top = float(np.median(ratios)), max(ratios)
    verdict = "MET" if top <= EVENT_COST_RATIO else "MISSED"
    print(f"cost per event (d)/(a), CPU, {rounds} rounds: median {med:.2f}, largest {top:.2f}; "
          f"target within {EVENT_COST_RATIO:g}x in every round {verdict}")  # fmt: skip
    return 0


def sparse_program():
    """(d): N = 100 000, 5% of a band of 2 001 around each neuron (100 synapses per neuron)."""
    return recurrent_program(100_000, density=0.05, sparse=True, bandwidth=1000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--no-lava", action="store_true", help="skip Lava (emulator numbers only)")
    ap.add_argument("--lava-stdp-steps", type=int, default=50, help="steps of Lava's (slow) LearningDense in (e)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of (a)-(d) each; the fastest counts")
    ap.add_argument("--event-cost", type=int, default=0, metavar="N", help="only (a) and (d), N rounds in turn")
    args = ap.parse_args()
    steps, rep = args.steps, args.repeat
    if args.event_cost > 0:
        return event_cost_rounds(args.event_cost, steps, rep)
    rows = []
    load0 = os.getloadavg()[0]

    prog_a = recurrent_program(1000)
    emu_a, rec_a, state_a, cpu_a = time_emulator(prog_a, steps, repeat=rep)
    rate_a = rec_a["rec/spikes"].mean()
    events_a = rec_a["rec/spikes"].sum() * synapses_per_neuron(prog_a)
    lava_a = None
    if not args.no_lava:
        lava_a, final = time_lava(prog_a, steps, rep)
        check_same("(a)", state_a, final)
    rows.append(("(a) N=1000, 10% dense", steps / emu_a, None if lava_a is None else steps / lava_a, rate_a))

    prog_b = recurrent_program(4000)
    emu_b, rec_b, state_b, _ = time_emulator(prog_b, steps, repeat=rep)
    lava_b = None
    if not args.no_lava:
        lava_b, final = time_lava(prog_b, steps, rep)
        check_same("(b)", state_b, final)
    rows.append(
        ("(b) N=4000, 10% dense", steps / emu_b, None if lava_b is None else steps / lava_b, rec_b["rec/spikes"].mean())
    )

    emu_c, rec_c, _, cpu_c = time_emulator(prog_a, steps, batch=64, repeat=rep)
    rows.append(
        (
            "(c) batch 64 of (a), per trial",
            64 * steps / emu_c,
            None if lava_a is None else steps / lava_a,
            rec_c["rec/spikes"].mean(),
        )
    )

    prog_d = sparse_program()
    emu_d, rec_d, _, cpu_d = time_emulator(prog_d, steps, repeat=rep)
    events_d = rec_d["rec/spikes"].sum() * synapses_per_neuron(prog_d)
    rows.append(("(d) N=100000 sparse, 100 syn/neuron", steps / emu_d, None, rec_d["rec/spikes"].mean()))

    stdp_emu, stdp_lava, stdp_rate = case_stdp(steps, args.lava_stdp_steps, args.no_lava)
    rows.append(("(e) pair STDP 1000x1000 dense plastic", stdp_emu, stdp_lava, stdp_rate))

    print(
        f"emulator vs Lava 0.10.0 (fixed_pt run phase), {steps} steps, fastest of {rep} runs; "
        f"final u and v identical in (a), (b) and (e); load average {load0:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)"
    )
    print(f"{'case':<38} {'emulator steps/s':>17} {'Lava steps/s':>13} {'ratio':>7} {'firing/step':>12}  target")
    for name, e, lv, rate in rows:
        ratio = "-" if lv is None else f"{e / lv:.1f}x"
        lava_s = "-" if lv is None else f"{lv:.0f}"
        want = TARGETS.get(name[:3])
        verdict = "" if want is None or lv is None else f">= {want:g}x {'MET' if e / lv >= want else 'MISSED'}"
        print(f"{name:<38} {e:>17.0f} {lava_s:>13} {ratio:>7} {rate:>11.1%}  {verdict}")
    ns_a = emu_a / events_a * 1e9
    ns_d = emu_d / events_d * 1e9
    print(
        f"\nsynaptic events per second: (a) {events_a / emu_a:.3g}, (d) {events_d / emu_d:.3g}; "
        f"cost per event (d)/(a) = {ns_d / ns_a:.2f} ({ns_d:.1f} ns vs {ns_a:.1f} ns); "
        f"target within {EVENT_COST_RATIO:g}x {'MET' if ns_d / ns_a <= EVENT_COST_RATIO else 'MISSED'}"
    )
    cpu_ns_a, cpu_ns_d = cpu_a / events_a * 1e9, cpu_d / events_d * 1e9
    print(
        f"CPU time (one thread; a loaded machine stretches wall time, not this): (a) {cpu_a / steps * 1e6:.1f} us "
        f"per step, (d) {cpu_d / steps * 1e6:.0f} us; cost per event (d)/(a) = {cpu_ns_d / cpu_ns_a:.2f} "
        f"({cpu_ns_d:.1f} ns vs {cpu_ns_a:.1f} ns); (c) {cpu_c / steps / 64 * 1e6:.2f} us per trial-step "
        "(all threads)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
