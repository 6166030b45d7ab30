"""NIR import and export: :func:`from_nir` turns a NIR graph into a :class:`Network`,
:func:`to_nir` turns a Network into a NIR graph; :func:`load_nir` and :func:`save_nir` read
and write ``.nir`` files. Needs the ``nir`` package (``pip install 'neurocomp[nir]'``).

**Semantics.** NIR declares continuous-time dynamics and no time step; the user's ``dt``
maps them onto the IR's per-step form. A NIR spike is an event of one step's charge: the
spike train is ``S(t) = dt * sum_k delta(t - t_k)``, the continuum limit of a 0/1 signal
sampled every ``dt``. This is the convention of the snnTorch and lava-dl exporters (``r =
tau/dt`` makes one step add its input unscaled; ``w_in = tau_syn/dt`` makes a spike raise
the synaptic current by its weight), so their files mean what their authors trained. A
spike emitted at IR step ``n`` is the event at time ``n * dt``; the IR's one-step synaptic
latency is then exact, not an approximation: between events the IR is the exact solution of
the linear dynamics sampled at the step boundaries. What remains discrete is the threshold
test (a crossing is seen at the next step boundary, and the reset happens there).

**The mapping** (``dv = exp(-dt/tau_mem)``, ``du = exp(-dt/tau_syn)``; times converted with
``time_unit_ms``, NIR files being in seconds):

============  ================================================================================
NIR node      neurocomp population, and the factor ``g`` that multiplies its input weights
============  ================================================================================
Input         ``SpikeInput`` of ``prod(shape)`` neurons
LIF           ``LIF(tau_mem=tau)``, delta synapses; ``g = r * dt/tau * dv``
CubaLIF       ``LIF(tau_mem, tau_syn)``; ``g = w_in * dt/tau_syn * r * c`` with ``c =
              tau_syn/(tau_syn - tau_mem) * (du - dv)`` (the exact weight of the current
              in one step of ``v``; ``dt/tau_mem * dv`` when the two are equal)
LI / CubaLI   ``LI``, as LIF / CubaLIF
IF            ``LIF`` without leak (``tau_mem = 1e12 dt``, see :data:`NO_LEAK_STEPS`); ``g = r * dt``
I             ``LI`` without leak; ``g = r * dt``
Threshold     a memoryless ``LIF`` (``tau_mem = 1e-12 dt``: ``v`` is this step's input) with
              ``v_th = threshold``; ``g = 1`` (its input is read as a per-step value)
Affine,       a projection's weights: the chain of linear nodes between two populations is
Linear,       multiplied out (``Scale`` rows, ``Flatten`` is the identity on the flat vector)
Scale,        and multiplied by the post population's ``g``. An ``Affine`` bias ``b`` is a
Flatten       constant input: it joins the post population's bias
Delay         ``delay_steps = delay/dt`` (rounded; uniform, or per element next to a population)
Output        nothing (the populations that feed it are the outputs)
============  ================================================================================

The leak and the biases become the IR's per-step bias ``(1 - dv) * (v_leak + r * b)``
(``r * w_in * b`` for CubaLIF/CubaLI), exact as a steady drive. Every mapping that is not
exact is noted in ``notes`` (as the compiler notes quantization losses): a ``v_leak != 0``
or an ``Affine`` bias folded into the bias (on a CubaLIF the bias then acts on ``v`` at
once instead of rising with ``tau_syn``), ``w_in`` and ``r`` folded into the weights, a
delay rounded to the step, a name changed to a valid population name. A node neurocomp
cannot represent (``Conv1d``, ``Conv2d``, ``SumPool2d``, ``AvgPool2d``: no convolution in
the IR yet; a nested ``NIRGraph``; parameters that differ between the neurons of one node,
since a population shares one neuron model) is refused, and every such node is listed at
once in one :class:`NirError`.

**What NIR cannot say** travels in node metadata, under the key ``"neurocomp"`` as a JSON
string: a projection's learning rule (:class:`~neurocomp.graph.RuleSpec`, so plasticity
survives a round trip), its name, sign mode and sparsity pattern; a population's name,
subtractive reset, refractory period, ALIF adaptation and Poisson rate; the graph's ``dt``,
name and description. NIR's documentation says no backend may rely on metadata, so
:func:`to_nir` notes each feature that other consumers will not see. Export uses ``r =
tau/dt`` and ``w_in = tau_syn/dt``, so the exported weights are close to the IR's.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, NeurocompError, Problem
from .network import Network, Population
from .neurons import ALIF, LI, LIF, SpikeInput
from .projection import Projection, RuleSpec
from .weights import SparseWeights

NO_LEAK_STEPS = 1e12
"""``tau_mem / dt`` of a population without leak (NIR ``IF`` and ``I``): the decay per
step is ``1 - 1e-12``, which every chip's decay format rounds to no decay at all."""
MEMORYLESS_STEPS = 1e-12
"""``tau_mem / dt`` of a memoryless population (NIR ``Threshold``): ``exp(-1e12) == 0``."""
META = "neurocomp"
SECONDS_MS = 1000.0
_REFUSED = {
    "Conv1d": "convolutions are not in neurocomp's IR yet",
    "Conv2d": "convolutions are not in neurocomp's IR yet",
    "SumPool2d": "pooling (a convolution) is not in neurocomp's IR yet",
    "AvgPool2d": "pooling (a convolution) is not in neurocomp's IR yet",
    "NIRGraph": "nested NIR graphs are not supported; flatten the graph first",
}
_LINKS = ("Affine", "Linear", "Scale", "Flatten", "Delay")
_POPS = ("Input", "LIF", "CubaLIF", "LI", "CubaLI", "IF", "I", "Threshold")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class NirError(NeurocompError, ValueError):
    """A NIR graph neurocomp cannot represent, or a network NIR cannot (each problem names
    the node or element and its type), or the ``nir`` package is missing."""

    kind = "nir"


def _nir():
    try:
        import nir
    except ImportError:
        raise NirError(
            [Problem("nir", "the 'nir' package is not installed: pip install 'neurocomp[nir]' (or pip install nir)")]
        ) from None
    return nir


# -- import ---------------------------------------------------------------------------------


@dataclass
class _Path:
    """The linear map from population ``pre`` to node ``post``: ``y = M s + b``, each
    synapse delayed by ``delay + pre_delay[j] + post_delay[i]`` (in NIR time units)."""

    pre: str
    M: np.ndarray
    b: np.ndarray
    delay: float = 0.0
    pre_delay: np.ndarray | None = None
    post_delay: np.ndarray | None = None
    weight_nodes: list[str] = field(default_factory=list)
    last_link: str | None = None  # None: nothing but the pre population so far


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _meta(node) -> dict:
    raw = (getattr(node, "metadata", None) or {}).get(META)
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf8")
    try:
        out = json.loads(str(raw))
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _size(node) -> int | None:
    for types in (getattr(node, "output_type", None), getattr(node, "input_type", None)):
        shape = next(iter(types.values()), None) if isinstance(types, dict) and types else None
        if shape is not None:
            return int(np.prod(np.asarray(shape, dtype=np.int64))) if np.size(shape) else 1
    return None


def from_nir(
    graph,
    dt_ms: float,
    *,
    time_unit_ms: float = SECONDS_MS,
    notes: list[str] | None = None,
    name: str | None = None,
) -> Network:
    """The :class:`Network` of NIR graph ``graph`` at time step ``dt_ms`` (see the module
    docstring for the mapping). ``time_unit_ms``: ms per NIR time unit (1000: seconds, what
    snnTorch, Norse and Rockpool write). ``notes``: a list that receives one line per loss of
    the mapping. Raises :class:`NirError` listing every node it cannot represent."""
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        raise NirError([Problem("nir", f"expected a nir.NIRGraph, got {type(graph).__name__}")])
    if not (isinstance(dt_ms, (int, float)) and math.isfinite(dt_ms) and dt_ms > 0):
        raise NirError([Problem("nir", f"dt_ms must be a finite time > 0 ms, got {dt_ms!r}")])
    notes = notes if notes is not None else []
    dt = dt_ms / time_unit_ms  # the step in NIR time units
    problems: list[Problem] = []
    kinds = {key: type(node).__name__ for key, node in graph.nodes.items()}
    for key, kind in kinds.items():
        if kind in _REFUSED:
            problems.append(Problem(f"node {key!r} ({kind})", _REFUSED[kind]))
        elif kind not in _LINKS + _POPS + ("Output",):
            problems.append(Problem(f"node {key!r} ({kind})", "this NIR node type is not supported"))
    if problems:
        raise NirError(problems, header=f"the NIR graph has {len(problems)} node(s) neurocomp cannot represent")

    succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        if a in succ and b in graph.nodes:
            succ[a].append(b)
    pop_keys = [k for k, kind in kinds.items() if kind in _POPS]
    names = _population_names(graph, pop_keys, notes)
    paths = {q: [] for q in pop_keys}  # post population -> paths into it
    for p in pop_keys:
        size = _size(graph.nodes[p]) if kinds[p] == "Input" else _neuron_size(graph.nodes[p])
        if size is None:
            problems.append(Problem(f"node {p!r} ({kinds[p]})", "its shape is not known"))
            continue
        start = _Path(p, np.eye(size), np.zeros(size))
        _walk(graph, kinds, succ, p, start, paths, problems, dt, notes, set())
    pops: list[Population] = []
    for key in pop_keys:
        pop = _population(graph.nodes[key], kinds[key], key, names[key], paths[key], dt, time_unit_ms, notes, problems)
        if pop is not None:
            pops.append(pop)
    projs = _projections(graph, kinds, pop_keys, names, paths, dt, time_unit_ms, notes, problems)
    if problems:
        raise NirError(problems, header=f"the NIR graph cannot be imported ({len(problems)} problem(s))")
    gmeta = _meta(graph)
    pops, projs = _ordered(pops, gmeta.get("populations")), _ordered(projs, gmeta.get("projections"))
    try:
        return Network(
            pops,
            projs,
            name=name or str(gmeta.get("name", "nir")),
            description=str(gmeta.get("description", "")),
        )
    except ModelError as exc:
        raise NirError(exc.problems, header="the NIR graph maps onto an invalid network") from None


def _ordered(items: list, order: Any) -> list:
    """``items`` in the order neurocomp wrote them (an HDF5 file lists its nodes by name)."""
    if not isinstance(order, list):
        return items
    rank = {name: i for i, name in enumerate(order)}
    return sorted(items, key=lambda x: rank.get(x.name, len(rank)))


def _population_names(graph, keys: list[str], notes: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in keys:
        want = _meta(graph.nodes[key]).get("population", key)
        name = want if _NAME.match(want) and "->" not in want else "n_" + re.sub(r"[^A-Za-z0-9_.\-]", "_", want)
        while name in out.values():
            name += "_"
        if name != key:
            notes.append(f"node {key!r}: population named {name!r}")
        out[key] = name
    return out


def _neuron_size(node) -> int | None:
    kind = type(node).__name__
    field_ = {"Threshold": "threshold", "LI": "tau", "LIF": "tau", "I": "r", "IF": "r"}.get(kind, "tau_mem")
    return int(np.size(getattr(node, field_))) if hasattr(node, field_) else _size(node)


def _walk(graph, kinds, succ, key, path: _Path, paths, problems, dt, notes, seen: set) -> None:
    """Follow the edges out of ``key`` through linear nodes, recording each path that
    reaches a population."""
    for nxt in succ[key]:
        kind = kinds[nxt]
        where = f"node {nxt!r} ({kind})"
        if kind == "Output":
            if path.last_link is not None:
                problems.append(
                    Problem(
                        f"node {path.last_link!r} ({kinds[path.last_link]})",
                        "feeds an Output without a neuron in between: neurocomp has no linear readout "
                        "(end the graph with an LI or CubaLI)",
                    )
                )
            continue
        if kind in _POPS:
            if kind == "Input":
                problems.append(Problem(where, "an Input node cannot receive edges"))
            else:
                paths[nxt].append(path)
            continue
        if nxt in seen:
            problems.append(Problem(where, "a loop of linear nodes with no population in it"))
            continue
        try:
            step = _link(graph.nodes[nxt], kind, nxt, path, dt, notes)
        except NirError as exc:
            problems += exc.problems
            continue
        _walk(graph, kinds, succ, nxt, step, paths, problems, dt, notes, seen | {nxt})


def _link(node, kind: str, key: str, p: _Path, dt: float, notes: list[str]) -> _Path:
    where = f"node {key!r} ({kind})"
    n = p.M.shape[0]
    if kind == "Flatten":
        return _Path(**{**p.__dict__, "last_link": key})
    if kind == "Delay":
        d = _arr(node.delay).reshape(-1)
        if d.size == 0 or d.min() < 0 or not np.isfinite(d).all():
            raise NirError([Problem(where, f"delay: must be finite and >= 0, got {d}")])
        if np.all(d == d[0]):
            return _Path(**{**p.__dict__, "delay": p.delay + float(d[0]), "last_link": key})
        if d.size != n:
            raise NirError([Problem(where, f"delay: {d.size} values for a signal of {n}")])
        if p.last_link is None:  # right after the pre population: one delay per pre neuron
            return _Path(**{**p.__dict__, "pre_delay": d, "last_link": key})
        return _Path(**{**p.__dict__, "post_delay": d, "last_link": key})
    if p.post_delay is not None:
        raise NirError(
            [Problem(where, "follows a per-element Delay: a delay per element must sit next to a population")]
        )
    if kind == "Scale":
        s = np.broadcast_to(_arr(node.scale).reshape(-1), (n,))
        M, b = s[:, None] * p.M, s * p.b
    else:
        W = _arr(node.weight)
        if W.ndim != 2 or W.shape[1] != n:
            raise NirError([Problem(where, f"weight: shape {W.shape} does not take a signal of {n} elements")])
        bias = np.broadcast_to(_arr(node.bias).reshape(-1), (W.shape[0],)) if kind == "Affine" else 0.0
        M, b = W @ p.M, W @ p.b + bias
    return _Path(p.pre, M, b, p.delay, p.pre_delay, None, p.weight_nodes + [key], key)


def _uniform(values: dict[str, np.ndarray], where: str, problems: list[Problem]) -> dict[str, float] | None:
    """The single value of each per-neuron parameter, or ``None`` (with a problem) when the
    neurons of the node differ: a population shares one neuron model."""
    out, ok = {}, True
    for k, v in values.items():
        v = _arr(v).reshape(-1)
        if v.size == 0:
            continue
        scale = max(float(np.max(np.abs(v))), 1e-300)
        if float(np.ptp(v)) > 1e-12 * scale:  # products of per-neuron factors round differently
            problems.append(
                Problem(
                    where,
                    f"{k}: differs between the node's neurons ({v.min():g} .. {v.max():g}); "
                    "a neurocomp population shares one value",
                )
            )
            ok = False
        else:
            out[k] = float(v[0])
    return out if ok else None


def _decays(tau: float, dt: float) -> float:
    return math.exp(-dt / tau)


def _cuba_c(tau_syn: float, tau_mem: float, dt: float) -> float:
    """The weight of the synaptic current in one step of ``v`` (exact integration of
    ``tau_mem dv/dt = -v + I`` with ``I`` decaying by ``tau_syn``), per unit ``I``."""
    k = dt * (1.0 / tau_mem - 1.0 / tau_syn)
    ratio = math.expm1(k) / k if k != 0 else 1.0
    return dt / tau_mem * math.exp(-dt / tau_mem) * ratio


def _gain(node, kind: str, dt: float) -> np.ndarray:
    """The factor ``g`` per neuron by which a NIR weight becomes an IR weight."""
    if kind in ("LIF", "LI"):
        tau = _arr(node.tau)
        return _arr(node.r) * dt / tau * np.exp(-dt / tau)
    if kind in ("CubaLIF", "CubaLI"):
        ts, tm = _arr(node.tau_syn), _arr(node.tau_mem)
        ts, tm = np.broadcast_arrays(ts, tm)
        c = np.array([_cuba_c(a, b, dt) for a, b in zip(ts.reshape(-1), tm.reshape(-1), strict=True)]).reshape(ts.shape)
        return _arr(node.w_in) * dt / ts * _arr(node.r) * c
    if kind in ("IF", "I"):
        return _arr(node.r) * dt
    return np.ones(1)  # Threshold


def _population(node, kind, key, name, paths, dt, unit, notes, problems) -> Population | None:
    where = f"node {key!r} ({kind})"
    meta = _meta(node)
    if kind == "Input":
        extra = {k: meta[k] for k in ("rate_hz", "seed") if k in meta}
        try:
            return Population(name, _size(node) or 1, SpikeInput(**extra))
        except ModelError as exc:
            problems += [Problem(where, p.message) for p in exc.problems]
            return None
    size = _neuron_size(node)
    for field_ in ("tau", "tau_mem", "tau_syn"):
        if hasattr(node, field_):
            t = _arr(getattr(node, field_))
            if not (np.isfinite(t).all() and (t > 0).all()):
                problems.append(Problem(where, f"{field_}: a time constant must be finite and > 0, got {t.min():g}"))
                return None
    b = np.zeros(size)  # the constant input of the biases of every path into this node
    for p in paths:
        b = b + p.b
    rb = b * np.broadcast_to(_arr(getattr(node, "r", 1.0)), (size,))
    if kind in ("CubaLIF", "CubaLI"):
        rb = rb * np.broadcast_to(_arr(node.w_in), (size,))
    leak = np.broadcast_to(_arr(getattr(node, "v_leak", 0.0)), (size,))
    if np.any(leak != 0):
        notes.append(f"{where}: v_leak folded into the per-step bias (1 - dv) * v_leak")
    if np.any(b != 0):
        lag = " (it acts on v at once, not through the synaptic current)" if kind.startswith("Cuba") else ""
        notes.append(f"{where}: the Affine bias feeds the population's per-step bias{lag}")
    if np.any(_arr(getattr(node, "r", 1.0)) != 1) or (kind.startswith("Cuba") and np.any(_arr(node.w_in) != 1)):
        notes.append(f"{where}: r{' and w_in' if kind.startswith('Cuba') else ''} folded into the input weights")
    vals: dict[str, Any] = {}
    if kind in ("LIF", "LI"):
        vals["tau_mem"] = node.tau
    elif kind in ("CubaLIF", "CubaLI"):
        vals["tau_mem"], vals["tau_syn"] = node.tau_mem, node.tau_syn
    if kind in ("LIF", "CubaLIF", "IF"):
        vals["v_th"], vals["v_reset"] = node.v_threshold, node.v_reset
    if kind == "Threshold":
        vals["v_th"] = node.threshold
    u = _uniform(vals, where, problems)
    if u is None:
        return None
    tau_mem = u["tau_mem"] if "tau_mem" in u else (NO_LEAK_STEPS if kind in ("IF", "I") else MEMORYLESS_STEPS) * dt
    dv = _decays(tau_mem, dt)
    if kind == "Threshold":
        drive = b  # v is this step's input
    elif kind in ("IF", "I"):
        drive = rb * dt  # dv/dt = r * b, no leak
    else:
        drive = (1 - dv) * (leak + rb)  # the exact steady drive over one step
    bias = _uniform({"bias": drive}, where, problems)
    if bias is None:
        return None
    common = {"tau_mem_ms": tau_mem * unit, "bias": bias["bias"] if drive.size else 0.0}
    if "tau_syn" in u:
        common["tau_syn_ms"] = u["tau_syn"] * unit
    try:
        if kind in ("LI", "CubaLI", "I"):
            return Population(name, size, LI(**common))
        spiking = {"v_th": u["v_th"], "v_reset": u.get("v_reset", 0.0)}
        for k in ("reset", "refractory_steps"):
            if k in meta:
                spiking[k] = meta[k]
        if "alif" in meta:
            return Population(name, size, ALIF(**common, **spiking, **meta["alif"]))
        return Population(name, size, LIF(**common, **spiking))
    except (ModelError, TypeError) as exc:
        msgs = [p.message for p in exc.problems] if isinstance(exc, ModelError) else [str(exc)]
        problems += [Problem(where, m) for m in msgs]
        return None


def _projections(graph, kinds, pop_keys, names, paths, dt, unit, notes, problems) -> list[Projection]:
    order = {k: i for i, k in enumerate(graph.nodes)}
    items = []
    for post in pop_keys:
        if kinds[post] == "Input":
            continue
        g = np.broadcast_to(_gain(graph.nodes[post], kinds[post], dt).reshape(-1), (_neuron_size(graph.nodes[post]),))
        for p in paths[post]:
            first = p.weight_nodes[0] if p.weight_nodes else post
            items.append((order[first], post, p, g))
    items.sort(key=lambda t: t[0])
    out: list[Projection] = []
    used: set[str] = set()
    for _, post, p, g in items:
        where = " -> ".join([p.pre, *p.weight_nodes, post])
        meta = _meta(graph.nodes[p.weight_nodes[0]]) if len(p.weight_nodes) == 1 else {}
        if p.M.shape[0] != g.size:
            problems.append(Problem(f"path {where}", f"a signal of {p.M.shape[0]} elements into {g.size} neurons"))
            continue
        M = g[:, None] * p.M
        delay = p.delay + np.zeros(M.shape)
        if p.pre_delay is not None:
            delay = delay + p.pre_delay[None, :]
        if p.post_delay is not None:
            delay = delay + p.post_delay[:, None]
        steps = delay / dt
        rounded = np.round(steps)
        if np.any(np.abs(steps - rounded) > 1e-9):
            notes.append(
                f"path {where}: delay rounded to whole steps of {dt * unit:g} ms "
                f"(largest change {np.max(np.abs(steps - rounded)) * dt * unit:g} ms)"
            )
        rounded = rounded.astype(np.int64)
        delay_steps: int | np.ndarray = int(rounded.flat[0]) if np.all(rounded == rounded.flat[0]) else rounded
        weights: Any = M
        if "synapses" in meta:
            rows, cols = (np.asarray(x, dtype=np.int64) for x in meta["synapses"])
            weights = SparseWeights(M.shape, rows, cols, M[rows, cols])
            if isinstance(delay_steps, np.ndarray):
                delay_steps = delay_steps[rows, cols]
        name = meta.get("name") or (p.weight_nodes[0] if len(p.weight_nodes) == 1 else f"{names[p.pre]}->{names[post]}")
        while name in used:
            name += "'"
        used.add(name)
        rule = None
        if meta.get("plasticity"):
            try:
                rule = RuleSpec(meta["plasticity"]["rule"], meta["plasticity"].get("params") or {})
            except (ModelError, KeyError, TypeError) as exc:
                problems.append(Problem(f"path {where}", f"plasticity metadata: {exc}"))
                continue
        try:
            out.append(
                Projection(names[p.pre], names[post], weights, delay_steps, meta.get("sign_mode"), rule, name=name)
            )
        except ModelError as exc:
            problems += [Problem(f"path {where}", p_.message) for p_ in exc.problems]
    return out


# -- export ---------------------------------------------------------------------------------


def to_nir(
    network: Network,
    dt_ms: float,
    *,
    time_unit_ms: float = SECONDS_MS,
    notes: list[str] | None = None,
):
    """The NIR graph of ``network`` at time step ``dt_ms`` (the inverse of :func:`from_nir`:
    ``from_nir(to_nir(net, dt), dt)`` equals ``net`` up to float rounding). ``notes``
    receives one line per feature that only neurocomp will read back (stored in metadata).
    Raises :class:`NirError` for what NIR cannot express at all (delays per synapse that are
    neither per pre nor per post neuron)."""
    nir = _nir()
    notes = notes if notes is not None else []
    dt = dt_ms / time_unit_ms
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    problems: list[Problem] = []
    gains: dict[str, np.ndarray] = {}
    extra_bias: dict[str, float] = {}
    for pop in network.populations:
        node, g, b = _export_population(nir, pop, dt, time_unit_ms, notes)
        nodes[pop.name] = node
        gains[pop.name] = g
        if b:
            extra_bias[pop.name] = b
    for pr in network.projections:
        key = pr.name if pr.name not in nodes else f"{pr.name}.w"
        W = pr.dense_weights() / gains[pr.post][:, None]
        bias = np.zeros(W.shape[0])
        if pr.post in extra_bias:  # a bias NIR's neuron cannot hold goes to the first projection's Affine
            bias[:] = extra_bias.pop(pr.post)
        meta: dict[str, Any] = {"name": pr.name}
        if pr.sign_mode is not None:
            meta["sign_mode"] = pr.sign_mode
        if pr.is_sparse:
            meta["synapses"] = [pr.weights.rows.tolist(), pr.weights.cols.tolist()]
            notes.append(f"projection {pr.name!r}: sparse; NIR stores it dense (absent synapses as weight 0)")
        if pr.plasticity is not None:
            meta["plasticity"] = pr.plasticity.to_dict()
            notes.append(
                f"projection {pr.name!r}: learning rule {pr.plasticity.name!r} kept in metadata (NIR has no plasticity)"
            )
        nodes[key] = nir.Affine(weight=W, bias=bias, metadata={META: json.dumps(meta)})
        try:
            pre_d, post_d = _split_delays(pr)
        except NirError as exc:
            problems += exc.problems
            continue
        chain = [pr.pre]
        if pre_d is not None:
            nodes[f"{key}.delay_pre"] = nir.Delay(pre_d * dt)
            chain.append(f"{key}.delay_pre")
        chain.append(key)
        if post_d is not None:
            nodes[f"{key}.delay"] = nir.Delay(post_d * dt)
            chain.append(f"{key}.delay")
        chain.append(pr.post)
        edges += list(zip(chain[:-1], chain[1:], strict=False))
    for post, b in extra_bias.items():
        problems.append(Problem(f"population {post!r}", f"bias {b:g} without leak needs an incoming projection in NIR"))
    if problems:
        raise NirError(problems, header=f"network {network.name!r} cannot be written as NIR")
    sources = {pr.pre for pr in network.projections}
    sinks = [p.name for p in network.populations if p.name not in sources and not p.is_input]
    for s in sinks:
        key = "output" if len(sinks) == 1 and "output" not in nodes else f"{s}.output"
        nodes[key] = nir.Output(output_type={"output": np.array([network.population(s).size])})
        edges.append((s, key))
    gmeta = {
        "dt_ms": dt_ms,
        "name": network.name,
        "description": network.description,
        "populations": [p.name for p in network.populations],
        "projections": [p.name for p in network.projections],
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={META: json.dumps(gmeta)}, type_check=False)


def _split_delays(pr: Projection) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The projection's delays as one Delay per pre neuron, or one per post neuron."""
    d = pr.delay_steps
    n_post, n_pre = pr.shape
    if isinstance(d, int):
        return None, (np.full(n_post, float(d)) if d else None)
    full = np.full(pr.shape, -1, dtype=np.int64)
    if pr.is_sparse:
        full[pr.weights.rows, pr.weights.cols] = d
    else:
        full = np.asarray(d)
    known = full >= 0
    by_post = [np.unique(full[i][known[i]]) for i in range(n_post)]
    if all(u.size <= 1 for u in by_post):
        return None, np.array([float(u[0]) if u.size else 0.0 for u in by_post])
    by_pre = [np.unique(full[:, j][known[:, j]]) for j in range(n_pre)]
    if all(u.size <= 1 for u in by_pre):
        return np.array([float(u[0]) if u.size else 0.0 for u in by_pre]), None
    raise NirError(
        [
            Problem(
                f"projection {pr.name!r}",
                "delay_steps: NIR delays a signal, so the delays of a projection must depend on the pre neuron "
                "alone or on the post neuron alone; these depend on both",
            )
        ]
    )


def _export_population(nir, pop: Population, dt: float, unit: float, notes: list[str]):
    """The NIR node of ``pop``, the gain its incoming weights were multiplied by on import,
    and a bias that must go to an Affine (no-leak and memoryless populations)."""
    n, size = pop.neuron, pop.size
    where = f"population {pop.name!r}"
    full = lambda v: np.full(size, float(v))  # noqa: E731
    meta: dict[str, Any] = {"population": pop.name}
    if isinstance(n, SpikeInput):
        if n.poisson:
            meta.update(rate_hz=n.rate_hz, seed=n.seed)
            notes.append(f"{where}: Poisson rate {n.rate_hz:g} Hz kept in metadata (a NIR Input has no rate)")
        return nir.Input(input_type={"input": np.array([size])}, metadata={META: json.dumps(meta)}), np.ones(1), 0.0
    tau = n.tau_mem_ms / unit
    dv = math.exp(-dt / tau)
    if isinstance(n, LIF):
        if n.reset != "zero":
            meta["reset"] = n.reset
            notes.append(f"{where}: reset {n.reset!r} kept in metadata (NIR resets to v_reset)")
        if n.refractory_steps:
            meta["refractory_steps"] = n.refractory_steps
            notes.append(f"{where}: refractory period kept in metadata (NIR has none)")
        if isinstance(n, ALIF):
            meta["alif"] = {"tau_adapt_ms": n.tau_adapt_ms, "beta": n.beta}
            notes.append(f"{where}: ALIF adaptation kept in metadata (NIR has no adaptive threshold)")
    md = {META: json.dumps(meta)}
    no_leak = tau >= NO_LEAK_STEPS * dt * (1 - 1e-9)
    if isinstance(n, LIF) and tau <= MEMORYLESS_STEPS * dt * (1 + 1e-9) and n.tau_syn_ms is None:
        return nir.Threshold(full(n.v_th), metadata=md), np.ones(size), n.bias
    if no_leak and n.tau_syn_ms is None:  # IF / I with r = 1/dt: g = 1
        if isinstance(n, LIF):
            node = nir.IF(r=full(1 / dt), v_threshold=full(n.v_th), v_reset=full(n.v_reset), metadata=md)
        else:
            node = nir.I(r=full(1 / dt), metadata=md)
        return node, np.ones(size), n.bias
    v_leak = full(n.bias / (1 - dv))
    if n.tau_syn_ms is None:  # r = tau/dt: g = dv
        kw = {"tau": full(tau), "r": full(tau / dt), "v_leak": v_leak}
        g = np.full(size, dv)
        node = (
            nir.LIF(**kw, v_threshold=full(n.v_th), v_reset=full(n.v_reset), metadata=md)
            if isinstance(n, LIF)
            else nir.LI(**kw, metadata=md)
        )
        return node, g, 0.0
    ts = n.tau_syn_ms / unit  # r = tau_mem/dt, w_in = tau_syn/dt: g = tau_mem * c / dt
    kw = {"tau_syn": full(ts), "tau_mem": full(tau), "r": full(tau / dt), "v_leak": v_leak, "w_in": full(ts / dt)}
    g = np.full(size, tau * _cuba_c(ts, tau, dt) / dt)
    if isinstance(n, LIF):
        return nir.CubaLIF(**kw, v_threshold=full(n.v_th), v_reset=full(n.v_reset), metadata=md), g, 0.0
    return nir.CubaLI(**kw, metadata=md), g, 0.0


# -- files ----------------------------------------------------------------------------------


def load_nir(
    path: str | os.PathLike,
    dt_ms: float | None = None,
    *,
    time_unit_ms: float = SECONDS_MS,
    fallback_dt_ms: float | None = None,
    notes: list[str] | None = None,
) -> Network:
    """Read a ``.nir`` file into a Network. ``dt_ms``: the time step; ``None`` takes the one
    neurocomp wrote into the file, else ``fallback_dt_ms`` (noted), else refuses the file."""
    path = Path(path)
    graph = _read(path)
    if dt_ms is None:
        dt_ms = _meta(graph).get("dt_ms")
        if dt_ms is None and fallback_dt_ms is not None:
            dt_ms = fallback_dt_ms
            if notes is not None:
                notes.append(f"{path}: NIR has no time step and none was given; imported at {dt_ms:g} ms")
        if dt_ms is None:
            raise NirError([Problem(str(path), "NIR has no time step: give one (dt_ms, or --dt on the command line)")])
    name = _meta(graph).get("name", path.stem)
    return from_nir(graph, float(dt_ms), time_unit_ms=time_unit_ms, notes=notes, name=name)


def stored_dt_ms(path: str | os.PathLike) -> float | None:
    """The time step neurocomp wrote into a ``.nir`` file, or ``None`` (another tool wrote it)."""
    graph = _read(Path(path))
    dt = _meta(graph).get("dt_ms")
    return None if dt is None else float(dt)


def _read(path: Path):
    nir = _nir()
    if not path.is_file():
        raise NirError([Problem(str(path), "file not found")])
    try:
        return nir.read(str(path), type_check=False)
    except Exception as exc:  # h5py and nir raise many types for a malformed file
        raise NirError([Problem(str(path), f"cannot read the NIR file: {exc}")]) from None


def save_nir(
    network: Network,
    path: str | os.PathLike,
    dt_ms: float,
    *,
    time_unit_ms: float = SECONDS_MS,
    notes: list[str] | None = None,
) -> Path:
    """Write ``network`` as a ``.nir`` file (HDF5, via ``nir.write``); returns the path."""
    nir = _nir()
    graph = to_nir(network, dt_ms, time_unit_ms=time_unit_ms, notes=notes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), graph)
    return path


def format_notes(notes: Iterable[str]) -> str:
    """The notes as lines ``note: ...`` (as the CLI prints them)."""
    return "\n".join(f"note: {n}" for n in notes)


__all__ = ["NirError", "from_nir", "load_nir", "save_nir", "to_nir", "NO_LEAK_STEPS", "MEMORYLESS_STEPS"]
