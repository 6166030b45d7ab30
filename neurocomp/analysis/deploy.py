"""``check --deploy``: what a network trained in float loses when it runs on a chip.

The model (typically :func:`neurocomp.analysis.train.train`'s output) runs without learning on
held-out trials of its task: the task drawn with seed ``HELD_OUT + seed``, which no training
seed below ``HELD_OUT`` draws. Per chip, three levels of the same network on the same
trials, each scored with the task's metric:

1. **float**: the float64 model (:func:`neurocomp.analysis.train.float_model`) in the chip's
   conventions, the trained weights as they are;
2. **float, chip weights**: the same float64 dynamics with the compiled Program's weights (the
   chip's mantissas times their unit, in model units): the weights' quantization alone;
3. **chip**: the emulator on the compiled Program, bit-exact to the chip's arithmetic.

The attribution splits the gap: ``weights`` is level 2 minus level 1 (the weight grid:
mantissa bits, exponents, clipping), ``neuron arithmetic`` is level 3 minus level 2 (the
fixed-point states, decays and thresholds, and the chip's ordering of the updates). A chip
that refuses the model (a design-rule violation: a time constant, a reset mode, a size)
gets its refusal, naming the limit, in place of numbers.

A gated theta network (:class:`~neurocomp.graph.GatedTheta`, Huh & Sejnowski) takes the same
path: its float model is :class:`~neurocomp.reference.gated.GatedNet`, the task's inputs are
currents, and the emulator runs the Program with the discrete model's kernel
(:class:`~neurocomp.emulator.gated.GatedEmulator`); a chip whose neurons have no gate refuses
it with :meth:`GatedTheta.chip_refusal <neurocomp.graph.GatedTheta.chip_refusal>`.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write_text
from ..errors import NeurocompError, Problem

HELD_OUT = 1_000_003  # the test trials' seed offset (training seeds are below it)
LEVELS = ("float", "float, chip weights", "chip")


class DeployError(NeurocompError, ValueError):
    kind = "check --deploy"


@dataclass
class DeployReport:
    """Per chip: ``levels`` (the metric of each of :data:`LEVELS`), ``attribution`` (the
    gap's parts) or ``refused`` (the chip's reasons)."""

    config: dict[str, Any]
    chips: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "chips": self.chips, "files": self.files}

    def summary(self) -> str:
        c, m = self.config, self.config["metric"]
        better = "higher" if c["higher_is_better"] else "lower"
        lines = [
            f"neurocomp check --deploy: {c['model']}, task {c['task']} ({c['trials']} held-out trials, seed "
            f"{c['test_seed']}); {m}, {better} is better; attribution: how much worse each part makes it",
        ]
        for chip, r in self.chips.items():
            if "refused" in r:
                lines += [f"  {chip:11s} refused:"] + [f"    - {why}" for why in r["refused"]]
                continue
            lv = r["levels"]
            lines.append(f"  {chip:11s} float {lv['float']:.4f}   chip {lv['chip']:.4f}   "
                         f"(float with the chip's weights {lv['float, chip weights']:.4f})")  # fmt: skip
            lines.append(f"  {'':11s} attribution: weights {r['attribution']['weights']:+.4f}, "
                         f"neuron arithmetic {r['attribution']['neuron arithmetic']:+.4f}")  # fmt: skip
        if self.files:
            lines.append("wrote " + ", ".join(self.files))
        return "\n".join(lines)


def deploy_check(
    model: Any,
    task: str,
    profiles: tuple[str, ...] = ("loihi2", "spinnaker2"),
    trials: int = 64,
    seed: int = 0,
    out: str | os.PathLike | None = None,
) -> DeployReport:
    """Score ``model`` (a model YAML or a Network) on ``trials`` held-out trials of ``task`` in
    float and on each of ``profiles`` (see the module docstring). Writes ``deploy.json`` and
    ``deploy.txt`` to the directory ``out`` when given."""
    from ..graph.io import load_network

    net = static(load_network(model) if isinstance(model, (str, os.PathLike)) else model)
    if trials < 1:
        raise DeployError([Problem("trials", f"must be >= 1, got {trials}")])
    tk = _held_out(task, seed, trials)
    rep = DeployReport(
        config={
            "model": str(model) if isinstance(model, (str, os.PathLike)) else net.name,
            "task": task,
            "trials": tk.batch,
            "test_seed": HELD_OUT + seed,
            "metric": tk.metric_name,
            "higher_is_better": tk.higher_is_better,
            "levels": list(LEVELS),
        }
    )
    for prof in profiles:
        rep.chips[prof] = _chip(net, prof, tk, seed)
    if out is not None:
        rep.files += _write(rep, Path(out))
    return rep


def static(net):
    """``net`` without its learning rules: deployment does not learn, so a rule the chip cannot
    run (or only with other settings) must not stop the deployed network from compiling."""
    from ..graph import Network

    projs = [replace(p, plasticity=None) for p in net.projections]
    return Network(net.populations, projs, name=net.name, description=net.description)


def _held_out(task: str, seed: int, trials: int):
    from ..tasks import TASKS, make

    if task not in TASKS:
        raise DeployError([Problem("task", f"unknown task {task!r} (known: {', '.join(sorted(TASKS))})")])
    try:
        return make(task, seed=HELD_OUT + seed, batch=trials)
    except ValueError:  # a task with frozen trials (no batch parameter)
        return make(task, seed=HELD_OUT + seed)


def _chip(net, profile: str, tk, seed: int) -> dict[str, Any]:
    """One chip's levels and attribution, or its refusal (the compiler's: a profile that does
    not load or a model without a float form is the user's error and propagates)."""
    from ..compiler import compile
    from ..profiles import load_profile

    prof = load_profile(profile)
    try:
        prog = compile(net, prof, out=io.StringIO())
    except NeurocompError as exc:
        return {"refused": [f"{p.where}: {p.message}" for p in exc.problems] or [str(exc)]}
    fm, qm, prog = chip_model(net, prof, prog)
    x = np.asarray(tk.inputs)
    levels = {"float": tk.score(fm.forward(x).y), "float, chip weights": tk.score(qm.forward(x).y)}
    levels["chip"] = tk.score(emulated_readout(prog, _input(net), _readout(net), x, seed))
    sign = -1.0 if tk.higher_is_better else 1.0  # attribution in "how much worse" units
    return {
        "levels": levels,
        "attribution": {
            "weights": sign * (levels["float, chip weights"] - levels["float"]),
            "neuron arithmetic": sign * (levels["chip"] - levels["float, chip weights"]),
        },
    }


def chip_model(net, profile, prog=None):
    """``(float64 model, the same with the chip's weights, the Program)`` of ``net`` on
    ``profile`` (a name or a profile): the Program compiled for the chip (``prog``, if given,
    is that Program), the float model in its conventions
    (:func:`neurocomp.analysis.train.float_model`) and a copy holding the weights as the
    Program stores them (model units)."""
    from ..compiler import compile
    from ..profiles import load_profile
    from .train import float_model

    prof = load_profile(profile) if isinstance(profile, str) else profile
    prog = compile(net, prof, out=io.StringIO()) if prog is None else prog
    fm = float_model(net, prof)
    qm = fm.copy()
    for name, w in chip_weights(prog).items():
        mat, rows, cols = qm.blocks[name]
        getattr(qm, mat)[rows, cols] = w
    return fm, qm, prog


def chip_weights(prog) -> dict[str, np.ndarray]:
    """Every projection's weights as the chip holds them, in model units, ``[post, pre]``."""
    from ..emulator.plastic import chip_weight_matrix

    return {p.name: chip_weight_matrix(p, prog.profile) for p in prog.projections}


def emulated_readout(prog, inp: str, readout: str, x: np.ndarray, seed: int) -> np.ndarray:
    """The readout's voltage in model units ``[T, batch, n_out]``, the emulator on ``prog``
    with input spikes ``x`` ``[T, batch, n_in]`` (a gated network's: currents), no learning."""
    from ..emulator import Emulator

    emu = Emulator(prog, batch=x.shape[1], seed=seed)
    rec = emu.run(x.shape[0], inputs={inp: x}, record=["v"])
    return rec[f"{readout}/v"].astype(np.float64) / 2.0 ** prog.population(readout).scale_exp


def _input(net) -> str:
    ins = [p.name for p in net.populations if p.neuron.model == "SpikeInput"]
    if len(ins) != 1:
        raise DeployError([Problem("model", f"check --deploy feeds the task to one spike-input population, found "
                                            f"{len(ins)}")])  # fmt: skip
    return ins[0]


def _readout(net) -> str:
    return next(p.name for p in net.populations if p.neuron.model == "LI")


def _write(rep: DeployReport, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    j, t = out / "deploy.json", out / "deploy.txt"
    atomic_write_text(j, json.dumps(rep.to_dict(), indent=1) + "\n")
    atomic_write_text(t, rep.summary() + "\n")
    return [str(j), str(t)]
