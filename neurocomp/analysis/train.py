"""``train``: a model's weights trained in float64, off chip, for deployment (``neurocomp train``).

The network is the e-prop architecture that :meth:`RecurrentSNN.from_network` reads (spike
inputs -> LIF/ALIF populations -> one LI readout), or a gated theta network that
:meth:`GatedNet.from_network <neurocomp.reference.gated.GatedNet.from_network>` reads (current
inputs -> GatedTheta populations -> one LI readout; ``bptt`` is then its exact gradient,
``eprop`` e-prop with its two eligibility traces, ``forward`` the single-trace approximation
of ``learning-rules.md`` §2.8 and ``engine`` e-prop reduced to what loihi2's engine holds,
:meth:`GatedNet.engine_rule <neurocomp.reference.gated.GatedNet.engine_rule>`); every
projection of it is trained, plastic or not. The dynamics are the chip's discrete-time conventions
(:meth:`~neurocomp.reference.conventions.Conventions.chip`, the profile's latencies when one
is given), so that the trained weights mean on the chip what they meant in training and the
float-to-chip gap ``check --deploy`` reports is quantization alone.

Each iteration draws the task's batch ``k`` (``task.sample(k)``; a frozen task gives the same
trials every time), runs the float64 forward pass, takes the gradient (``bptt``: BPTT through
the reference, :meth:`RecurrentSNN.bptt`; ``eprop``: e-prop with random feedback,
:meth:`RecurrentSNN.eprop`) and an Adam step, with the learning rate times ``lr_decay`` every
``lr_decay_every`` iterations (the LSNN tutorial's schedule). Training stops early when the
task metric, averaged over the last ``STOP_WINDOW`` iterations, is below ``stop_at``.

Determinism: the trials are a function of ``(seed, k)``, the feedback ``B`` of ``seed``, and a
checkpoint holds the weights, ``B``, Adam's moments and the history; a run resumed from a
checkpoint ends with the same bits as one that never stopped.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_savez, atomic_write_text
from ..errors import NeurocompError, Problem
from ..reference.conventions import Conventions
from ..reference.eprop import Adam, EpropParams, RecurrentSNN
from ..reference.gated import GatedNet, is_gated

METHODS = ("bptt", "eprop", "forward", "engine")  # forward, engine: the gated network's approximations
STOP_WINDOW = 5  # iterations averaged for the stopping rule (one batch's metric jumps)
# the loss each supported task trains with (others: give `loss`)
TASK_LOSS = {"pattern-generation": "mse", "evidence-accumulation": "ce", "store-recall": "ce", "delayed-xor": "mse"}


class TrainError(NeurocompError, ValueError):
    kind = "train"


@dataclass(frozen=True)
class TrainConfig:
    """The trainer's settings. ``lr``: Adam's step size; ``lr_decay`` / ``lr_decay_every``:
    the schedule (0: constant); ``reg`` / ``reg_rate_hz``: rate regularization toward a target
    rate (:class:`EpropParams`); ``dampening``: the pseudo-derivative's gamma; ``stop_at``:
    the metric under which training stops (None: never); ``batch``: trials per iteration (None:
    the task's); ``checkpoint_every``: iterations between checkpoints (0: only at the end);
    ``rewiring``: DEEP R's connectivity of the input and recurrent weights (a fraction; None:
    dense); ``dale``: with rewiring, the fraction of excitatory recurrent neurons under Dale's
    law (None: each synapse's sign drawn on its own); ``task_params``: the task's overrides."""

    method: str = "bptt"
    iterations: int = 200
    lr: float = 1e-2
    lr_decay: float = 1.0
    lr_decay_every: int = 0
    loss: str | None = None
    reg: float = 0.0
    reg_rate_hz: float = 10.0
    dampening: float = 0.3
    stop_at: float | None = None
    batch: int | None = None
    seed: int = 0
    checkpoint_every: int = 0
    rewiring: float | None = None
    dale: float | None = None
    task_params: Mapping[str, Any] = field(default_factory=dict)  # the task generator's overrides

    def problems(self) -> list[Problem]:
        out = []
        if self.method not in METHODS:
            out.append(Problem("method", f"{self.method!r} is not one of {', '.join(METHODS)}"))
        if self.iterations < 1:
            out.append(Problem("iterations", f"must be >= 1, got {self.iterations}"))
        if not self.lr > 0 or not 0 < self.lr_decay <= 1:
            out.append(Problem("lr", f"lr must be > 0 and 0 < lr_decay <= 1, got {self.lr}, {self.lr_decay}"))
        if self.lr_decay_every < 0 or self.checkpoint_every < 0:
            out.append(Problem("schedule", "lr_decay_every and checkpoint_every must be >= 0"))
        if self.batch is not None and self.batch < 1:
            out.append(Problem("batch", f"must be >= 1, got {self.batch}"))
        if self.rewiring is not None and not 0 < self.rewiring <= 1:
            out.append(Problem("rewiring", f"the connectivity must be in (0, 1], got {self.rewiring}"))
        if self.dale is not None and (self.rewiring is None or not 0 <= self.dale <= 1):
            out.append(Problem("dale", f"needs rewiring and a fraction in [0, 1], got {self.dale}"))
        return out


@dataclass
class TrainResult:
    """What :func:`train` did: the trained network, its float model, and per-iteration
    ``loss`` and ``metric`` (of the batch before that iteration's update)."""

    network: Any
    model: RecurrentSNN
    config: TrainConfig
    task: str
    metric_name: str
    history: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        h, m = self.history, self.metric_name
        n = len(h["loss"])
        tail = float(np.mean(h["metric"][-STOP_WINDOW:]))
        lines = [
            f"neurocomp train: {self.network.name} on {self.task} with {self.config.method} "
            f"(seed {self.config.seed}), {n} iterations{' (stopped: target reached)' if self.stopped_early else ''}",
            f"  {m}: first {h['metric'][0]:.4f}, mean of the last {min(n, STOP_WINDOW)} {tail:.4f}",
            f"  loss: first {h['loss'][0]:.4f}, last {h['loss'][-1]:.4f}",
        ]
        if self.files:
            lines.append("wrote " + ", ".join(self.files))
        return "\n".join(lines)


def _task(task: str, seed: int, batch: int | None, params: Mapping[str, Any]):
    from ..tasks import make

    kw: dict[str, Any] = {**params, **({} if batch is None else {"batch": batch})}
    try:
        return make(task, seed=seed, **kw)
    except (ValueError, TypeError) as exc:
        raise TrainError([Problem("task", str(exc))]) from None


def trial(tk, k: int):
    """Iteration ``k``'s task, inputs and targets (NaN outside the task's mask)."""
    t = tk.sample(k) if tk.sample is not None else tk
    tg = np.array(t.targets)
    if t.mask is not None:
        tg[np.asarray(t.mask) == 0] = np.nan
    return t, np.asarray(t.inputs), tg


def float_model(net, profile=None) -> RecurrentSNN:
    """The float64 model of ``net`` in ``profile``'s conventions (its latencies; 1 without);
    a network of gated theta neurons is a :class:`~neurocomp.reference.gated.GatedNet` (1 ms
    steps)."""
    from ..profiles import load_profile

    if is_gated(net):
        return GatedNet.from_network(net, 1.0)
    prof = load_profile(profile) if isinstance(profile, str) else profile
    return RecurrentSNN.from_network(net, 1.0, Conventions.chip(prof))


def train(
    model: Any,
    task: str,
    config: TrainConfig | None = None,
    out: str | os.PathLike | None = None,
    profile: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` (a model YAML path or a Network) on ``task`` in float64 (see the module
    docstring). ``out``: where to write the trained model YAML (plus ``.npz`` for large
    arrays and ``<stem>.train.json``, the history). ``profile``: whose latencies the
    conventions take. ``checkpoint``: an ``.npz`` written every ``checkpoint_every``
    iterations and at the end; with ``resume`` training continues from it."""
    from ..graph.io import load_network

    cfg = config or TrainConfig()
    net = load_network(model) if isinstance(model, (str, os.PathLike)) else model
    loss = cfg.loss or TASK_LOSS.get(task)
    problems = cfg.problems()
    if loss is None:
        problems.append(Problem("loss", f"task {task!r} has no default loss; give mse or ce"))
    if resume and checkpoint is None:
        problems.append(Problem("resume", "needs a checkpoint to resume from"))
    if problems:
        raise TrainError(problems)
    m = float_model(net, profile)
    if is_gated(net):
        _gated_problems(cfg, loss)
    elif cfg.method in ("forward", "engine"):
        raise TrainError([Problem("method", f"{cfg.method!r} is a GatedTheta network's approximation; use bptt or "
                                            "eprop")])  # fmt: skip
    tk = _task(task, cfg.seed, cfg.batch, cfg.task_params)
    if tk.n_in != m.n_in or tk.n_out != m.n_out:
        raise TrainError([Problem("model", f"{task} has {tk.n_in} inputs and {tk.n_out} outputs; the model has "
                                           f"{m.n_in} and {m.n_out}")])  # fmt: skip
    if isinstance(m, GatedNet) and tk.dt_ms != m.dt_ms:
        raise TrainError([Problem("task", f"{task}'s step is {tk.dt_ms} ms; the GatedTheta model's is {m.dt_ms} ms")])
    p = EpropParams(lr=cfg.lr, loss=loss, dampening=cfg.dampening, reg=cfg.reg, reg_rate_hz=cfg.reg_rate_hz,
                    seed=cfg.seed)  # fmt: skip
    B = m.random_feedback(cfg.seed)
    opt = Adam(cfg.lr)
    rw = DeepR(m, cfg.rewiring, cfg.dale, cfg.seed) if cfg.rewiring is not None else None
    hist: dict[str, list[float]] = {"loss": [], "metric": []}
    if resume:
        _load_checkpoint(Path(checkpoint), m, B, opt, hist)
    bar = _bar(cfg.iterations - len(hist["loss"]), progress)
    stopped = _stopped(hist, cfg)
    while len(hist["loss"]) < cfg.iterations and not stopped:
        k = len(hist["loss"])
        _step(m, tk, k, p, cfg, B, opt, hist)
        if rw is not None:
            rw.rewire(m, opt, k)
        bar(f"{tk.metric_name} {hist['metric'][-1]:.3f}")
        stopped = _stopped(hist, cfg)
        if checkpoint is not None and cfg.checkpoint_every and (k + 1) % cfg.checkpoint_every == 0:
            _save_checkpoint(Path(checkpoint), m, B, opt, hist)
    res = TrainResult(trained_network(net, m, sparse=rw is not None), m, cfg, task, tk.metric_name, hist, stopped)
    if checkpoint is not None:
        res.files.append(str(_save_checkpoint(Path(checkpoint), m, B, opt, hist)))
    if out is not None:
        res.files += _write(res, Path(out))
    return res


def _gated_problems(cfg: TrainConfig, loss: str) -> None:
    """What a gated theta network cannot be trained with (``bptt``: its exact gradient;
    ``eprop``: :meth:`GatedNet.eprop`; ``forward``: :meth:`GatedNet.forward_approx`; ``engine``:
    :meth:`GatedNet.engine_rule`)."""
    out = []
    if loss != "mse":
        out.append(Problem("loss", f"{loss!r}: a GatedTheta network's readout trains with mse"))
    if cfg.rewiring is not None or cfg.reg:
        out.append(Problem("rewiring", "DEEP R and rate regularization are e-prop network options, not GatedTheta's"))
    if out:
        raise TrainError(out)


def _step(m: RecurrentSNN, tk, k: int, p: EpropParams, cfg: TrainConfig, B, opt: Adam, hist) -> None:
    """One iteration: forward, loss and metric, gradient, Adam step (in place)."""
    t, x, tg = trial(tk, k)
    tr = m.forward(x, gamma=p.dampening)
    hist["loss"].append(m.loss(tr, tg, p))
    hist["metric"].append(t.score(tr.y))
    if cfg.method == "bptt":
        g = m.bptt(tr, tg, p)
    elif isinstance(m, GatedNet):  # causal approximations, with symmetric feedback O^T
        rule = {"eprop": m.eprop, "forward": m.forward_approx, "engine": m.engine_rule}[cfg.method]
        g = rule(tr, tg)
    else:
        g = m.eprop(tr, tg, p, B)
    opt.lr = cfg.lr * cfg.lr_decay ** (k // cfg.lr_decay_every) if cfg.lr_decay_every else cfg.lr
    for name, d in opt.step(g).items():
        getattr(m, name)[...] += d


def _stopped(hist, cfg: TrainConfig) -> bool:
    h = hist["metric"]
    return cfg.stop_at is not None and len(h) >= STOP_WINDOW and float(np.mean(h[-STOP_WINDOW:])) < cfg.stop_at


def trained_network(net, m: RecurrentSNN, sparse: bool = False):
    """``net`` with every trained projection's weights replaced by ``m``'s (``sparse``: the
    input and recurrent ones as sparse matrices of their nonzero weights, after DEEP R)."""
    from ..graph import Network
    from ..graph.weights import SparseWeights

    projs = []
    for pr in net.projections:
        if pr.name in m.blocks:
            w = m.projection_weights(pr.name).copy()
            if isinstance(pr.weights, SparseWeights):  # the same synapses, new values
                sw = pr.weights
                w = SparseWeights(sw.shape, sw.rows, sw.cols, w[sw.rows, sw.cols])
            elif sparse and m.blocks[pr.name][0] != "W_out":
                w = SparseWeights.from_dense(w)
            pr = replace(pr, weights=w, sign_mode=None)
        projs.append(pr)
    return Network(net.populations, projs, name=net.name, description=net.description)


def _write(res: TrainResult, out: Path) -> list[str]:
    from ..graph.io import save_network

    path = save_network(res.network, out)
    hist = out.with_name(out.stem + ".train.json")
    doc = {"task": res.task, "metric": res.metric_name, "config": asdict(res.config),
           "stopped_early": res.stopped_early, "history": res.history}  # fmt: skip
    atomic_write_text(hist, json.dumps(doc, indent=1) + "\n")
    return [str(path), str(hist)]


def _save_checkpoint(path: Path, m: RecurrentSNN, B, opt: Adam, hist) -> Path:
    arrays = {k: v for k, v in m.weights().items()}
    arrays["B"] = B
    arrays["adam_t"] = np.array(opt.t)
    for k in m.weights():
        arrays[f"adam_m/{k}"] = opt.m.get(k, np.zeros_like(arrays[k]))
        arrays[f"adam_v/{k}"] = opt.v.get(k, np.zeros_like(arrays[k]))
    arrays["mask_in"], arrays["mask_rec"] = m.mask_in, m.mask_rec  # DEEP R changes them
    arrays["loss"] = np.array(hist["loss"])
    arrays["metric"] = np.array(hist["metric"])
    return atomic_savez(path, arrays)


def _load_checkpoint(path: Path, m: RecurrentSNN, B, opt: Adam, hist) -> None:
    try:
        with np.load(path) as z:
            for k, w in m.weights().items():
                if z[k].shape != w.shape:
                    raise TrainError([Problem(str(path), f"{k} has shape {z[k].shape}; the model's is {w.shape}")])
                w[...] = z[k]
                opt.m[k], opt.v[k] = z[f"adam_m/{k}"].copy(), z[f"adam_v/{k}"].copy()
            B[...] = z["B"]
            m.mask_in[...], m.mask_rec[...] = z["mask_in"], z["mask_rec"]
            opt.t = int(z["adam_t"])
            hist["loss"] += z["loss"].tolist()
            hist["metric"] += z["metric"].tolist()
    except (OSError, KeyError, ValueError) as exc:
        if isinstance(exc, TrainError):
            raise
        raise TrainError([Problem(str(path), f"not a checkpoint of this model ({exc})")]) from None


def _bar(total: int, progress: bool | None):
    from .check import _Progress

    return _Progress(max(total, 1), sys.stderr.isatty() if progress is None else progress, label="train")


class DeepR:
    """DEEP R rewiring (Bellec, Kappel, Maass & Legenstein 2018, at temperature 0 and without
    the L1 term, as the LSNN tutorial runs it) of ``W_in`` and ``W_rec``: each potential synapse
    has a fixed sign; a fraction ``connectivity`` of them is active. After every update an
    active synapse whose weight crossed to the wrong sign goes dormant (weight 0), and as many
    dormant ones, drawn at random, become active with weight 0, so the connectivity stays
    fixed. Signs: per presynaptic recurrent neuron under Dale's law (``dale``: the excitatory
    fraction), otherwise per synapse, drawn at random. The model's masks hold the active set."""

    def __init__(self, m: RecurrentSNN, connectivity: float, dale: float | None, seed: int):
        rng = np.random.default_rng([seed, 0xDEE9])
        self.seed = seed
        self.allowed = {"W_in": m.mask_in > 0, "W_rec": m.mask_rec > 0}
        self.sign = {"W_in": rng.choice([-1.0, 1.0], m.W_in.shape)}
        if dale is None:
            self.sign["W_rec"] = rng.choice([-1.0, 1.0], m.W_rec.shape)
        else:
            exc = rng.permutation(m.n_rec) < round(dale * m.n_rec)
            self.sign["W_rec"] = np.broadcast_to(np.where(exc, 1.0, -1.0), m.W_rec.shape).copy()
        for name, mask in (("W_in", m.mask_in), ("W_rec", m.mask_rec)):
            ok = self.allowed[name]
            active = ok & (rng.random(ok.shape) < connectivity)
            w = getattr(m, name)
            w[...] = np.where(active, self.sign[name] * np.abs(w), 0.0)
            mask[...] = active

    def rewire(self, m: RecurrentSNN, opt: Adam, k: int) -> None:
        """After iteration ``k``'s update: retire the synapses that changed sign, revive as many."""
        rng = np.random.default_rng([self.seed, 0xDEE9, k])
        for name, mask in (("W_in", m.mask_in), ("W_rec", m.mask_rec)):
            w, s = getattr(m, name), self.sign[name]
            active = mask > 0
            dead = active & (w * s < 0)
            active &= ~dead
            pool = np.flatnonzero(self.allowed[name] & ~active & ~dead)
            born = rng.choice(pool, min(int(dead.sum()), pool.size), replace=False)
            active.flat[born] = True
            w[~active] = 0.0  # dormant synapses, and the newborn, start from 0
            w.flat[born] = 0.0
            for mom in (opt.m, opt.v):  # a newborn synapse has no history
                if name in mom:
                    mom[name].flat[born] = 0.0
            mask[...] = active
