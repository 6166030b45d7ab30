"""A second opinion on the compiler's xylo integers: Rockpool's per-channel quantizer
(``rockpool.transform.quantize_methods.channel_quantize``, Rockpool 3.1.0, pure numpy) on
the same float weights as neurocomp's ``quantize`` pass, for ``examples/models/xylo_keywords.yaml``.

Printed per quantizer: the mean relative error of each hidden neuron's incoming weights in
units of its threshold (what sets the dynamics), the largest mantissa used, the shift, and
the current jump per unit weight that the chip's add-then-decay order leaves (neurocomp
divides the weights by it; Rockpool does not, so its currents jump by ``w * (1 - 2**-dash)``).

Rockpool is not a dependency of neurocomp (it is AGPL-3.0); install it to run this:

    pip install rockpool==3.1.0 && python benchmarks/xylo_vs_rockpool_quantizer.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

import neurocomp as nc

MODEL = Path(__file__).resolve().parents[1] / "examples" / "models" / "xylo_keywords.yaml"


def _rel(eff: np.ndarray, exact: np.ndarray) -> float:
    nz = exact != 0
    return float(np.mean(np.abs(eff[nz] - exact[nz]) / np.abs(exact[nz])))


def main() -> int:
    try:
        from rockpool.transform.quantize_methods import channel_quantize
    except ImportError:
        print("rockpool is not installed: pip install rockpool==3.1.0", file=sys.stderr)
        return 2
    net = nc.load_network(MODEL)
    prog = nc.compile(net, "xylo", out=io.StringIO())
    w = {pr.name: pr.dense_weights().T for pr in net.projections}  # float, [pre, post]
    n_in, n = w["in->hidden"].shape
    n_out = w["hidden->out"].shape[1]
    w_in, w_rec = np.zeros((n_in, n, 2)), np.zeros((n, n, 2))
    w_in[:, :, 0], w_rec[:, :, 1] = w["in->hidden"], w["hidden->hidden"]  # the model's ports
    h, o = prog.population("hidden").params, prog.population("out").params
    q = channel_quantize(
        w_in, w_rec, w["hidden->out"], np.ones(n), np.ones(n_out),
        np.full(n, h["voltage_decay"]), np.full(n_out, o["voltage_decay"]), np.full(n, h["current_decay"]),
        np.full(n, h["current2_decay"]), np.full(n_out, o["current_decay"]),
    )  # fmt: skip
    jump = {0: 1 - 2.0 ** -h["current_decay"], 1: 1 - 2.0 ** -h["current2_decay"]}
    print(f"{MODEL.name}: hidden weights in units of the threshold, mean relative error against the float model")
    print(f"{'quantizer':<28} {'in (syn)':>9} {'rec (syn2)':>11} {'max |m| in, rec':>16} {'shift in, rec':>14}")
    th = q["threshold"][None, :]
    rp = (_rel(q["weights_in"][:, :, 0] / th, w_in[:, :, 0]), _rel(q["weights_rec"][:, :, 1] / th, w_rec[:, :, 1]))
    big = (int(np.abs(q["weights_in"]).max()), int(np.abs(q["weights_rec"]).max()))
    print(f"{'rockpool channel_quantize':<28} {rp[0]:>9.2%} {rp[1]:>11.2%} {str(big):>16} {'(0, 0)':>14}")
    ours, big, shifts = [], [], []
    for name, port, exact in (("in->hidden", 0, w_in[:, :, 0]), ("hidden->hidden", 1, w_rec[:, :, 1])):
        pr = prog.projection(name)
        eff = (pr.dense_mantissas() * 2.0**pr.weight_exp).T / h["threshold"] * jump[port]
        ours.append(_rel(eff, exact))
        big.append(int(np.abs(pr.weights).max()))
        shifts.append(int(pr.weight_exp))
    print(f"{'neurocomp quantize':<28} {ours[0]:>9.2%} {ours[1]:>11.2%} {str(tuple(big)):>16} {str(tuple(shifts)):>14}")
    print(
        f"thresholds: rockpool {len(np.unique(q['threshold']))} distinct values in "
        f"[{q['threshold'].min()}, {q['threshold'].max()}]; neurocomp one, {h['threshold']} (a power-of-two scale)"
    )
    print(
        f"current jump per unit weight from the add-then-decay order: {jump[0]:.4f} (syn), {jump[1]:.4f} (syn2); "
        "neurocomp's weights are divided by it, Rockpool's are not"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
