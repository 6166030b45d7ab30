"""On-chip training of a gated theta network with its forward rule lowered onto loihi2's
learning engine (:mod:`neurocomp.rules.gated_engine`): the fixed-point GatedTheta neuron
(:class:`~neurocomp.emulator.gated.GatedEmulator`) and the engine
(:class:`~neurocomp.learning.engine.SumOfProductsEngine`) run step by step, the weights the
neurons see being the engine's ``w`` at every step (learning is online, within the trial).

Everything runs on the chip (the fully-on-engine variant): the neurons send the graded
factors (:meth:`GatedNet.post_factors` of their own phase, current and the readout's error
through the current ``W_out``), the engine keeps the tag and the weights; the host only
loads trials. ``arithmetic="float"`` is the lowered rule in float (the engine's float
arithmetic and the factors' unrounded codes, the same neuron), which separates the engine's
fixed-point loss from the rule's own. Scales come from the float network's ranges on
calibration trials (:func:`measure_ranges`); the learning rate from a stated weight step per
trial (``step``: the RMS of the float rule's update per trial, in model units).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..compiler import compile
from ..emulator import Emulator
from ..errors import Problem
from ..learning.engine import SumOfProductsEngine
from ..learning.lowering import LoweringContext, LoweringError
from ..profiles import load_profile
from ..reference.gated import GatedNet
from ..rules.gated_engine import GatedScales, choose_scales, gated_rule, rate_unit
from ..tasks import make

MATRICES = ("W_in", "W_rec", "W_out")
LAYER = {"W_in": "w_in", "W_rec": "w_rec", "W_out": "w_out"}  # GatedLayer's names


@dataclass
class ChipTraining:
    """Held-out error before and after on-chip training, each iteration's training error,
    the scales, the lowering's notes, the fraction of tag values held at the tag's rails over
    the last iteration and the CPU seconds (``time.process_time``)."""

    error_before: float
    error_after: float
    history: list[float]
    scales: dict[str, GatedScales]
    notes: list[str] = field(default_factory=list)
    tag_rail: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    raised: dict[str, float] = field(default_factory=dict)  # engine mode: the rate raised to the smallest held
    host_reads: float = 0.0  # host mode: the fraction of tag rows read per step
    error_val: float | None = None  # on ``val_trials`` validation trials after training (None: not scored)


def _dy(y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The per-trial error ``y - y*`` (0 where unlabelled): what the readout neuron computes."""
    return np.where(np.isnan(target), 0.0, y - np.nan_to_num(target))


def measure_ranges(m: GatedNet, x: np.ndarray, target: np.ndarray, tag_quantile: float) -> dict[str, dict]:
    """Per matrix, the largest ``|value|`` of each factor on float trials ``x`` (the tag: its
    ``tag_quantile`` quantile over synapses and steps where ``y3`` reads it), and the RMS of
    the float rule's update per trial (``dw = -sum y3 t``, the readout's ``-sum err s``)."""
    tr = m.forward(x)
    y1, y2, y3, err = m.post_factors(tr.theta[:-1], tr.I, tr.theta[1:], _dy(tr.y, target))
    zone = y3 != 0
    out = {}
    for name, pre in (("W_in", tr.x), ("W_rec", tr.s[:-1])):
        tag = np.zeros((x.shape[1], m.n_rec, pre.shape[2]))
        dw, seen = np.zeros((m.n_rec, pre.shape[2])), []
        for t in range(x.shape[0]):
            tag = tag + y1[t][:, :, None] * tag + y2[t][:, :, None] * pre[t][:, None, :]
            seen.append(np.abs(tag[zone[t]]).ravel())
            dw -= np.einsum("bn,bnj->nj", y3[t], tag)
        seen = np.concatenate(seen)
        if seen.size == 0:  # no neuron reached its gate zone: y3 never reads a tag, whose range is then unknown
            raise LoweringError([Problem(f"rule 'gated', {name}", f"no neuron entered its gate zone on the "
                                         f"{x.shape[1]} calibration trials, so the tag's range cannot be measured "
                                         "(train the network in float first: neurocomp train --method engine)")])
        ranges = {"y1": np.abs(y1).max(), "y2": y2.max(), "y3": np.abs(y3).max(), "x1": np.abs(pre).max(),
                  "t": np.quantile(seen, tag_quantile)}  # fmt: skip
        out[name] = {"ranges": ranges, "rms": float(np.sqrt(np.mean((dw / x.shape[1]) ** 2)))}
    dw = -np.einsum("tbo,tbn->on", err, tr.s[1:]) / x.shape[1]
    out["W_out"] = {"ranges": {"y3": np.abs(err).max(), "x1": tr.s[1:].max()}, "rms": float(np.sqrt(np.mean(dw**2)))}
    return out


class ChipLearner:
    """The neuron and one engine per weight matrix, trained trial batch by trial batch.
    ``mode``: ``"engine"`` (the engine applies ``dw`` every step; a learning rate below the
    smallest its constant holds is raised to it, and noted) or ``"host"`` (the engine keeps
    the tags; the host reads the tag rows of neurons whose ``y3`` is nonzero, sums the update
    in float64 with the readout's, and writes the weights, rounded to the engine's grid,
    after each batch)."""

    def __init__(self, net, profile: str, arithmetic: str, mode: str, batch: int, step: float, headroom: float,
                 tag_quantile: float, calib: tuple[np.ndarray, np.ndarray]):  # fmt: skip
        self.prog = compile(net, profile, out=None)
        self.lrn = load_profile(profile).learning
        self.m = GatedNet.from_network(net, 1.0)
        self.exact, self.host = arithmetic == "float", mode == "host"
        self.emu = Emulator(self.prog, batch=batch)
        self.layer0 = self.emu.layer
        self.inp = next(iter(self.layer0.inputs))
        meas = measure_ranges(self.m, *calib, tag_quantile)
        self.scales, self.engines, self.notes, self.lr, self.raised = {}, {}, [], {}, {}
        self.w = {}
        for name in MATRICES:
            w0 = getattr(self.layer0, LAYER[name]).astype(np.float64)
            sc = choose_scales(meas[name]["ranges"], np.abs(w0).max(), self.lrn, headroom, name == "W_in")
            self.scales[name], lr = sc, step / meas[name]["rms"]
            lo = 2.0**self.lrn.exponent_min * rate_unit(sc, self.lrn)  # the engine's smallest rate
            self.raised[name] = 1.0 if self.host else max(1.0, lo / lr)
            self.lr[name] = lr * self.raised[name]
            self.w[name] = np.round(w0 / sc.w) * sc.w  # on the learning grid (the headroom's LSB)
            if self.host and name == "W_out":
                continue  # the readout learns on the host
            ctx = LoweringContext(name, self.prog.profile, 1.0, sc.w)
            rule = gated_rule(sc, None if self.host else self.lr[name], ctx)
            self.notes += ctx.notes
            self.engines[name] = SumOfProductsEngine(
                rule, np.round(w0 / sc.w).astype(np.int64), engine=self.lrn, batch=batch, learn_mode="shared",
                arithmetic="float" if self.exact else "fixed", mask=self._mask(name),
            )  # fmt: skip

    def layer_with(self, w: dict[str, np.ndarray]) -> Any:
        """The emulator's gated layer with weight matrices ``w`` (model units) in its dtype."""
        return replace(self.layer0, **{LAYER[k]: v.astype(self.layer0.dtype) for k, v in w.items()})

    def _mask(self, name: str) -> np.ndarray | None:
        return {"W_in": self.m.mask_in, "W_rec": self.m.mask_rec}.get(name)

    def weights(self) -> dict[str, np.ndarray]:
        """The weights the neurons see, model units: the engine's ``w`` times its LSB, the
        host's readout weights on the same grid (in the float arithmetic: as the host holds them)."""
        out = {k: e.weights[0] * self.scales[k].w for k, e in self.engines.items()}
        return {k: out[k] if k in out else self._on_grid(k, w) * self.scales[k].w for k, w in self.w.items()}

    def _on_grid(self, name: str, w: np.ndarray) -> np.ndarray:
        """Host weights ``w`` in units of the engine's LSB: rounded (fixed), or exact (float)."""
        m = w / self.scales[name].w
        return m if self.exact else np.round(m)

    def _code(self, name: str, f: str, v: np.ndarray) -> np.ndarray:
        return self.scales[name].code(f, v, self.lrn, self.exact)

    def run(self, x: np.ndarray, target: np.ndarray, learn: bool) -> np.ndarray:
        """Run trials ``x`` ``[T, batch, n_in]`` (learning online if ``learn``); the readout
        ``y`` ``[T, batch, n_out]``."""
        emu, T = self.emu, x.shape[0]
        emu.reset()
        for e in self.engines.values():  # a new trial: traces and tags from 0, the weights kept
            arrays, _ = e.get_state()
            e.set_state({k: np.zeros_like(v) for k, v in arrays.items() if k != "w"}, None)
        gated = list(self.layer0.gated)
        th = np.concatenate([emu.state[f"{g}/theta"] for g in gated], axis=1)
        s = np.zeros_like(th)
        ys = np.empty((T, x.shape[1], self.layer0.w_out.shape[0]))
        y3_late = np.zeros_like(th)
        self.rail, self.reads = {"W_in": 0.0, "W_rec": 0.0}, 0.0
        self.dw = {k: np.zeros_like(v) for k, v in self.w.items()}
        for t in range(T):
            w = self.weights()
            emu.layer = self.layer_with(w)
            rec = emu.run(1, {self.inp: x[t : t + 1]}, record=("theta", "I", "s", "v"))
            th_next = np.concatenate([rec[f"{g}/theta"][0] for g in gated], axis=1)
            s_next = np.concatenate([rec[f"{g}/s"][0] for g in gated], axis=1)
            cur = np.concatenate([rec[f"{g}/I"][0] for g in gated], axis=1)
            ys[t] = rec[f"{self.layer0.readout}/v"][0] / self.layer0.v_scale
            if learn:
                self.m.W_out = w["W_out"]  # the neurons' y3 through the current readout weights
                y1, y2, y3, err = self.m.post_factors(th, cur, th_next, _dy(ys[t], target[t]))
                self._learn(t + 1, y1, y2, y3_late, err, {"W_in": x[t], "W_rec": s, "W_out": s_next})
                y3_late = y3
            th, s = th_next, s_next
        if learn and self.host:
            self._write_weights()
        return ys

    def _learn(self, k: int, y1, y2, y3_late, err, pre) -> None:
        """Engine step ``k``: the hidden engines get ``y1 y2`` of this step and ``y3`` of the
        step before (the tag they read is the one this step writes), the readout's its error."""
        nb = y1.shape[0]
        top = 2 ** (int(self.lrn.synaptic_variable_bits["t"]) - 1) - 1
        for name, e in self.engines.items():
            graded = ({"y3": self._code(name, "y3", err)} if name == "W_out" else
                      {f: self._code(name, f, v) for f, v in (("y1", y1), ("y2", y2), ("y3", y3_late))})  # fmt: skip
            payload = self.scales[name].payload(pre[name], self.lrn, self.exact)
            e.spikes(k, np.zeros((nb, e.n_pre), bool), np.zeros((nb, e.n_post), bool), graded, payload)
            e.learn(k)
            if name == "W_out":
                continue
            if not self.exact:
                self.rail[name] += float(np.mean(np.abs(e.state["t"]) >= top))
            if self.host:  # the host reads the rows whose y3 is nonzero, y3 as the neuron sends it
                sc = self.scales[name]
                y3 = sc.value("y3", graded["y3"], self.lrn)
                read = y3 != 0
                self.reads += float(read.mean()) / len(self.engines)
                self.dw[name] -= self.lr[name] * np.einsum("bn,bnj->nj", y3, e.state["t"] * sc.t)
        if self.host:
            self.dw["W_out"] -= self.lr["W_out"] * np.einsum("bo,bn->on", err, pre["W_out"])

    def _write_weights(self) -> None:
        """The host's step: its float weights, then the engine's (rounded, within ``w``'s range)."""
        hi = 2 ** (int(self.lrn.synaptic_variable_bits["w"]) - 1)
        for name, d in self.dw.items():
            sc = self.scales[name]
            self.w[name] = np.clip(self.w[name] + d, -hi * sc.w, (hi - 1) * sc.w)
            if name in self.engines:
                self.engines[name].set_state({"w": self._on_grid(name, self.w[name])[None]}, None)


def train_on_chip(net, task: str = "delayed-xor", profile: str = "loihi2", *, arithmetic: str = "fixed",
                  mode: str = "host", iterations: int = 40, batch: int = 16, step: float = 1e-3, seed: int = 0,
                  trials: int = 256, headroom: float = 2.0, tag_quantile: float = 0.999,
                  val_trials: int = 0) -> ChipTraining:  # fmt: skip
    """Train ``net`` (a float-trained gated network: fine-tuning from it) on ``profile``'s
    engine for ``iterations`` batches of ``batch`` trials, online; score it on ``trials``
    held-out trials (seed ``1000003 + seed``, as ``check --deploy``) before and after, and on
    ``val_trials`` validation trials of their own (seed ``2000003 + seed``) after: the trials a
    choice of ``step`` may be made on, apart from the held-out ones that report it."""
    t0 = time.process_time()
    tk = make(task, seed=7919 + seed, batch=32)
    calib = (np.asarray(tk.inputs), np.asarray(tk.targets))
    lr = ChipLearner(net, profile, arithmetic, mode, batch, step, headroom, tag_quantile, calib)
    held = make(task, seed=1000003 + seed, batch=trials)
    hx = np.asarray(held.inputs)
    before = _score(lr, held, hx)
    hist, rail, reads = [], {}, []
    for k in range(iterations):
        tr = make(task, seed=(seed + 1) * 100003 + k, batch=batch)
        y = lr.run(np.asarray(tr.inputs), np.asarray(tr.targets), learn=True)
        hist.append(float(tr.score(y)))
        rail, reads = {n: v / hx.shape[0] for n, v in lr.rail.items()}, reads + [lr.reads / hx.shape[0]]
    after = _score(lr, held, hx)
    val = None
    if val_trials:
        vt = make(task, seed=2000003 + seed, batch=val_trials)
        val = _score(lr, vt, np.asarray(vt.inputs))
    return ChipTraining(before, after, hist, lr.scales, lr.notes, rail, time.process_time() - t0,
                        raised=lr.raised, host_reads=float(np.mean(reads)) if reads else 0.0,
                        error_val=val)  # fmt: skip


def _score(lr: ChipLearner, task, x: np.ndarray) -> float:
    """The task's error on held-out trials ``x``, the learned weights fixed (one run)."""
    emu = Emulator(lr.prog, batch=x.shape[1])
    emu.layer = lr.layer_with(lr.weights())
    rec = emu.run(x.shape[0], {lr.inp: x}, record=("v",))
    return float(task.score(rec[f"{lr.layer0.readout}/v"] / lr.layer0.v_scale))
