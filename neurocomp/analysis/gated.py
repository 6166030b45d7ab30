"""Exact gradients for spiking networks (Huh & Sejnowski 2018): training off chip, deployment.

The model is :class:`~neurocomp.graph.GatedTheta` (the theta neuron with a gated synapse) and
its float64 reference :class:`~neurocomp.reference.gated.GatedNet`, whose hand-written adjoint
is the exact gradient of the discrete model. Training is ``neurocomp train --task delayed-xor``
(:func:`neurocomp.analysis.train.train` dispatches on the model); the gradient is non-local and
non-causal (it runs backward in time), so it is float and off chip only. Not a rule of a chip's
learning engine, so not in ``LOWERINGS``.

**Deployment** (:func:`deploy_levels`, what ``check --deploy`` reports for a gated network):

* spinnaker2 (programmable neurons in float32): the gate is a neuron feature of the core's
  software. ``compile`` quantizes the weights as the chip stores them (int8 mantissas, per-row
  power-of-two scales) and rounds the step constants to float32; the emulator runs the Program
  (:class:`~neurocomp.emulator.gated.GatedEmulator`) with the discrete model's kernel
  (:func:`~neurocomp.kernels.gated.run_gated`) in float32. Levels: float64, float64 with the
  chip's weights, the emulator.
* the other chips: refused, with :meth:`GatedTheta.chip_refusal
  <neurocomp.graph.GatedTheta.chip_refusal>` (the DRC's reason; loihi2's names what its
  learning engine lacks for the forward approximation too).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..errors import NeurocompError


def chip_model(net, profile):
    """``(float64 model, the same with the chip's weights, the Program)``: the weights as
    ``compile`` stores them on ``profile`` (model units)."""
    from ..analysis.deploy import chip_weights
    from ..compiler import compile
    from ..reference.gated import GatedNet

    fm = GatedNet.from_network(net, 1.0)
    prog = compile(net, profile, out=io.StringIO())
    qm = fm.copy()
    for name, w in chip_weights(prog).items():
        mat, rows, cols = qm.blocks[name]
        getattr(qm, mat)[rows, cols] = w
    return fm, qm, prog


def emulated(prog, tk) -> np.ndarray:
    """The readout ``[T, batch, n_out]`` (float64 of the chip's float32) of the emulator on
    ``prog`` driven with the task's input currents."""
    from ..emulator import Emulator

    x = np.asarray(tk.inputs)
    inp = next(q.name for q in prog.populations if q.model == "SpikeInput")
    ro = next(q.name for q in prog.populations if q.model == "LI")
    emu = Emulator(prog, batch=x.shape[1])
    return emu.run(x.shape[0], inputs={inp: x}, record=["v"])[f"{ro}/v"].astype(np.float64)


def deploy_levels(net, profile, tk) -> dict[str, Any]:
    """``check --deploy``'s levels for a gated network on ``profile``, or its refusal."""
    try:
        fm, qm, prog = chip_model(net, profile)
    except NeurocompError as exc:
        return {"refused": [f"{p.where}: {p.message}" for p in exc.problems] or [str(exc)]}
    x = np.asarray(tk.inputs)
    levels = {"float": tk.score(fm.forward(x).y), "float, chip weights": tk.score(qm.forward(x).y)}
    levels["chip"] = tk.score(emulated(prog, tk))
    sign = -1.0 if tk.higher_is_better else 1.0
    return {
        "levels": levels,
        "attribution": {
            "weights": sign * (levels["float, chip weights"] - levels["float"]),
            "neuron arithmetic": sign * (levels["chip"] - levels["float, chip weights"]),
        },
    }
