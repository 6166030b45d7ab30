"""Write ``snn_cubalif.nir``: a NIR graph laid out as snnTorch and Norse write one, built
with the ``nir`` package's own constructors (no neurocomp metadata), and ``input.npz``, a
spike raster for its input.

Layout ``input -> fc1 (Affine) -> lif1 (CubaLIF) -> fc2 (Affine) -> li (LI) -> output``, a
20-100-4 network. Parameters follow snnTorch's export conventions at dt = 1 ms: times in
seconds, ``r = tau_mem/dt`` and ``w_in = tau_syn/dt`` (so one spike raises the synaptic
current by its weight, and one step adds the current to the membrane unscaled).

Run from the repository root: ``python examples/nir/make_example.py``; then
``neurocomp compile examples/nir/snn_cubalif.nir --profile loihi2 -o snn.ncp`` and
``neurocomp run snn.ncp --steps 200 --input examples/nir/input.npz --out rec.npz``.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

HERE = Path(__file__).resolve().parent
DT = 1e-3  # s: the step the parameters were written for
N_IN, N_HID, N_OUT, STEPS = 20, 100, 4, 200


def graph(seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    tau_syn, tau_mem = np.full(N_HID, 5e-3), np.full(N_HID, 10e-3)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([N_IN])),
            "fc1": nir.Affine(weight=rng.normal(0.02, 0.06, (N_HID, N_IN)), bias=np.zeros(N_HID)),
            "lif1": nir.CubaLIF(
                tau_syn=tau_syn,
                tau_mem=tau_mem,
                r=tau_mem / DT,
                v_leak=np.zeros(N_HID),
                v_threshold=np.ones(N_HID),
                v_reset=np.zeros(N_HID),
                w_in=tau_syn / DT,
            ),
            "fc2": nir.Affine(weight=rng.normal(0.0, 0.3, (N_OUT, N_HID)), bias=np.zeros(N_OUT)),
            "li": nir.LI(tau=np.full(N_OUT, 20e-3), r=np.full(N_OUT, 20e-3 / DT), v_leak=np.zeros(N_OUT)),
            "output": nir.Output(output_type=np.array([N_OUT])),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "li"), ("li", "output")],
    )


def input_spikes(seed: int = 1) -> np.ndarray:
    """A 50 Hz Poisson raster ``[steps, neurons]`` at dt = 1 ms."""
    return (np.random.default_rng(seed).random((STEPS, N_IN)) < 0.05).astype(np.uint8)


if __name__ == "__main__":
    nir.write(HERE / "snn_cubalif.nir", graph())
    np.savez(HERE / "input.npz", **{"input/spikes": input_spikes()})
    print(f"wrote {HERE / 'snn_cubalif.nir'} and {HERE / 'input.npz'}")
