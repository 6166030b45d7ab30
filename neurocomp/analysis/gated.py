"""Exact gradients for spiking networks (Huh & Sejnowski 2018): training off chip, deployment.

The model is :class:`~neurocomp.graph.GatedTheta` (the theta neuron with a gated synapse) and
its float64 reference :class:`~neurocomp.reference.gated.GatedNet`, whose hand-written adjoint
is the exact gradient of the discrete model. Training is ``neurocomp train --task delayed-xor``
(:func:`neurocomp.analysis.train.train` dispatches on the model); the gradient is non-local and
non-causal (it runs backward in time), so it is float and off chip only. Not a rule of a chip's
learning engine, so not in ``LOWERINGS``.

**Deployment** (:func:`deploy_levels`, what ``check --deploy`` reports for a gated network):

* chips with programmable neurons in float32 (spinnaker2): the gate is a neuron feature of the
  core's software. What runs is the reference's discrete model in float32 (every state, the
  cosine, the gate's integral and the products in numpy's float32; a core's libm may round the
  cosine differently in the last bit) with the chip's weights: the int8 mantissas and per-row
  power-of-two scales that ``compile`` gives the same network with LIF stand-ins for the gated
  populations (on spinnaker2 the weight formats do not depend on the post neuron's parameters;
  ``tests/test_gated.py`` checks it). The emulator has no GatedTheta kernel and a Program
  cannot hold one, so ``compile`` itself refuses the model; this level is the reference in the
  chip's arithmetic, not the emulator.
* fixed-function chips (loihi2, loihi1, reckon, xylo): refused, with
  :meth:`GatedTheta.chip_refusal <neurocomp.graph.GatedTheta.chip_refusal>` (the DRC's reason too).
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import NeurocompError


def deploys(profile) -> bool:
    """Whether ``check --deploy`` runs a gated network on ``profile``: programmable neurons in float32."""
    from ..graph import GatedTheta

    return GatedTheta.programmable_on(profile)


def stand_in(net):
    """``net`` with each GatedTheta population replaced by a LIF of the same size (tau_mem =
    tau_v): the network whose compile gives the chip's weight formats of ``net``'s projections."""
    from ..graph import LIF, GatedTheta, Network

    pops = [replace(p, neuron=LIF(tau_mem_ms=p.neuron.tau_v_ms)) if isinstance(p.neuron, GatedTheta) else p
            for p in net.populations]  # fmt: skip
    return Network(tuple(pops), net.projections, name=net.name, description=net.description)


def chip_model(net, profile):
    """``(float64 model, the same with the chip's weights)``: the weights as ``compile`` stores
    them on ``profile`` (model units)."""
    from ..analysis.deploy import chip_weights
    from ..compiler import compile
    from ..reference.gated import GatedNet

    fm = GatedNet.from_network(net, 1.0)
    prog = compile(stand_in(net), profile, out=io.StringIO())
    qm = fm.copy()
    for name, w in chip_weights(prog).items():
        mat, rows, cols = qm.blocks[name]
        getattr(qm, mat)[rows, cols] = w
    return fm, qm


def deploy_levels(net, profile, tk) -> dict[str, Any]:
    """``check --deploy``'s levels for a gated network on ``profile``, or its refusal."""
    from ..graph import GatedTheta

    if not deploys(profile):
        return {"refused": [GatedTheta.chip_refusal(profile)]}
    try:
        fm, qm = chip_model(net, profile)
    except NeurocompError as exc:
        return {"refused": [f"{p.where}: {p.message}" for p in exc.problems] or [str(exc)]}
    x = np.asarray(tk.inputs)
    levels = {"float": tk.score(fm.forward(x).y), "float, chip weights": tk.score(qm.forward(x).y)}
    levels["chip"] = tk.score(replace(qm, dtype=np.float32).forward(x).y.astype(np.float64))
    sign = -1.0 if tk.higher_is_better else 1.0
    return {
        "levels": levels,
        "attribution": {
            "weights": sign * (levels["float, chip weights"] - levels["float"]),
            "neuron arithmetic": sign * (levels["chip"] - levels["float, chip weights"]),
        },
        "runs": "the reference's discrete model in float32 with the chip's int8 weights (no emulator kernel)",
    }
