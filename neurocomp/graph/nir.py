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
NIRGraph      inlined: node ``k`` of subgraph ``G`` becomes ``G.k`` (NIR's address for it), and
              the subgraph's Input and Output pass the signal through (snnTorch writes a
              recurrent layer this way)
Output        nothing (the populations that feed it are the outputs)
============  ================================================================================

Scalar neuron parameters take the size of the layer that feeds them. The leak and the
biases become the IR's per-step bias ``(1 - dv) * (v_leak + r * b)`` (``r * w_in * b`` for
CubaLIF/CubaLI), exact as a steady drive; when it differs between the neurons of a node (a
per-neuron ``Affine`` bias, ``nn.Linear``'s default), it arrives instead as weights from one
added input, ``bias``, that fires in every step (its drive starts one step late; onto a
CubaLIF it passes through the synaptic current, exact in the steady state). Every mapping
that is not exact is noted in ``notes`` (as the compiler notes quantization losses): a
``v_leak != 0`` or an ``Affine`` bias folded into the bias (on a CubaLIF the bias then acts on
``v`` at once instead of rising with ``tau_syn``), ``w_in`` and ``r`` folded into the weights,
a delay rounded to the step, a name changed to a valid population name. A node neurocomp
cannot represent (``Conv1d``, ``Conv2d``, ``SumPool2d``, ``AvgPool2d``: no convolution in
the IR yet; time constants, thresholds or resets that differ between the neurons of one
node, since a population shares one neuron model; a linear node feeding an ``Output``
directly) is refused, and every such node is listed at once in one :class:`NirError`.

**What NIR cannot say** travels in node metadata, under the key ``"neurocomp"`` as a JSON
string: a projection's learning rule (:class:`~neurocomp.graph.RuleSpec`, so plasticity
survives a round trip), its name, sign mode and sparsity pattern; a population's name,
subtractive reset, refractory period, ALIF adaptation and Poisson rate; the graph's ``dt``,
name and description. NIR's documentation says no backend may rely on metadata, so
:func:`to_nir` notes each feature that other consumers will not see. Export uses ``r =
tau/dt`` and ``w_in = tau_syn/dt``, so the exported weights are close to the IR's.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write_bytes
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
}
_LINKS = ("Affine", "Linear", "Scale", "Flatten", "Delay", "Port", "Identity")
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
    post: str = ""  # the population it reaches, once it does


@dataclass
class _Flat:
    """A NIR graph with its nested graphs inlined: node ``k`` of subgraph ``G`` is ``G.k``
    (NIR's own address for it), and a subgraph's Input and Output nodes pass signals through."""

    nodes: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    succ: dict[str, list[str]] = field(default_factory=dict)


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


def _flatten(graph, flat: _Flat, problems: list[Problem], prefix: str = "") -> tuple[list[str], list[str]]:
    """Add ``graph``'s nodes and edges to ``flat`` under ``prefix``; returns its Input and
    Output keys (the ports an edge into or out of the subgraph connects to)."""
    inputs, outputs, subs = [], [], {}
    for key, node in graph.nodes.items():
        full, kind = prefix + key, type(node).__name__
        if kind == "NIRGraph":
            subs[full] = _flatten(node, flat, problems, full + ".")
            continue
        if kind in ("Input", "Output") and prefix:
            (inputs if kind == "Input" else outputs).append(full)
            kind = "Port"
        elif kind in ("Input", "Output"):
            (inputs if kind == "Input" else outputs).append(full)
        if kind in _REFUSED:
            problems.append(Problem(f"node {full!r} ({kind})", _REFUSED[kind]))
        elif kind not in _LINKS + _POPS + ("Output", "Port", "Identity"):
            problems.append(Problem(f"node {full!r} ({kind})", "this NIR node type is not supported"))
        flat.nodes[full], flat.kinds[full] = node, kind
        flat.succ.setdefault(full, [])
    for a, b in graph.edges:
        srcs = subs[prefix + a][1] if prefix + a in subs else [prefix + a]
        dsts = subs[prefix + b][0] if prefix + b in subs else [prefix + b]
        for s in srcs:
            for d in dsts:
                if s in flat.nodes and d in flat.nodes:
                    flat.succ[s].append(d)
                else:
                    problems.append(Problem(f"edge {a!r} -> {b!r}", "names a node that is not in the graph"))
    return inputs, outputs


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
    flat = _Flat()
    _flatten(graph, flat, problems)
    if problems:
        raise NirError(problems, header=f"the NIR graph has {len(problems)} node(s) neurocomp cannot represent")
    pop_keys = [k for k, kind in flat.kinds.items() if kind in _POPS]
    names = _population_names(flat, pop_keys, notes)
    sizes, paths = _trace(flat, pop_keys, problems)
    pops: list[Population] = []
    bias_inputs: dict[str, np.ndarray] = {}  # population -> per-neuron drive through an always-on input
    for key in pop_keys:
        if key not in sizes:
            continue
        pop, drive = _population(flat, key, names[key], sizes[key], paths[key], dt, time_unit_ms, notes, problems)
        if pop is not None:
            pops.append(pop)
        if drive is not None:
            bias_inputs[names[key]] = drive
    projs = _projections(flat, pop_keys, names, sizes, paths, dt, time_unit_ms, notes, problems)
    if bias_inputs:
        pops, projs = _always_on(pops, projs, bias_inputs, dt_ms, notes)
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


def _trace(flat: _Flat, pop_keys: list[str], problems: list[Problem]):
    """Every path of linear nodes between two populations, and the size of every population.
    A neuron node whose parameters are scalars takes its size from the paths into it."""
    sizes: dict[str, int] = {}
    for k in pop_keys:
        n = _size(flat.nodes[k]) if flat.kinds[k] == "Input" else _param_size(flat.nodes[k])
        if n is not None and (n > 1 or flat.kinds[k] == "Input"):
            sizes[k] = n
    paths: dict[str, list[_Path]] = {q: [] for q in pop_keys}
    todo, done = [k for k in pop_keys if k in sizes], set()
    while True:
        while todo:
            p = todo.pop(0)
            done.add(p)
            found: list[_Path] = []
            _walk(flat, p, _Path(p, np.eye(sizes[p]), np.zeros(sizes[p])), found, problems, set())
            for path in found:
                q = path.post
                paths[q].append(path)
                if q not in sizes:
                    sizes[q] = path.M.shape[0]
                if q not in done and q not in todo:
                    todo.append(q)
        rest = [k for k in pop_keys if k not in done]
        if not rest:
            return sizes, paths
        sizes.setdefault(rest[0], 1)  # scalar parameters and nothing feeding it: one neuron
        todo.append(rest[0])


def _ordered(items: list, order: Any) -> list:
    """``items`` in the order neurocomp wrote them (an HDF5 file lists its nodes by name)."""
    if not isinstance(order, list):
        return items
    rank = {name: i for i, name in enumerate(order)}
    return sorted(items, key=lambda x: rank.get(x.name, len(rank)))


def _population_names(flat: _Flat, keys: list[str], notes: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in keys:
        want = _meta(flat.nodes[key]).get("population", key)
        name = want if _NAME.match(want) and "->" not in want else "n_" + re.sub(r"[^A-Za-z0-9_.\-]", "_", want)
        while name in out.values():
            name += "_"
        if name != key:
            notes.append(f"node {key!r}: population named {name!r}")
        out[key] = name
    return out


def _param_size(node) -> int | None:
    kind = type(node).__name__
    field_ = {"Threshold": "threshold", "LI": "tau", "LIF": "tau", "I": "r", "IF": "r"}.get(kind, "tau_mem")
    return int(np.size(getattr(node, field_))) if hasattr(node, field_) else _size(node)


def _walk(flat: _Flat, key: str, path: _Path, found: list[_Path], problems: list[Problem], seen: set) -> None:
    """Follow the edges out of ``key`` through linear nodes; each path that reaches a
    population is appended to ``found`` (with ``post`` set)."""
    for nxt in flat.succ[key]:
        kind = flat.kinds[nxt]
        where = f"node {nxt!r} ({kind})"
        if kind == "Output":
            if path.last_link is not None:
                problems.append(
                    Problem(
                        f"node {path.last_link!r} ({flat.kinds[path.last_link]})",
                        "feeds an Output without a neuron in between: neurocomp has no linear readout "
                        "(end the graph with an LI or CubaLI)",
                    )
                )
            continue
        if kind in _POPS:
            if kind == "Input":
                problems.append(Problem(where, "an Input node cannot receive edges"))
            else:
                found.append(_Path(**{**path.__dict__, "post": nxt}))
            continue
        if nxt in seen:
            problems.append(Problem(where, "a loop of linear nodes with no population in it"))
            continue
        try:
            step = _link(flat.nodes[nxt], kind, nxt, path)
        except NirError as exc:
            problems += exc.problems
            continue
        _walk(flat, nxt, step, found, problems, seen | {nxt})


def _link(node, kind: str, key: str, p: _Path) -> _Path:
    """``p`` extended through linear node ``key``."""
    where = f"node {key!r} ({kind})"
    n = p.M.shape[0]
    if kind in ("Flatten", "Port", "Identity"):  # the identity on the flat signal
        return _Path(**{**p.__dict__, "last_link": key if kind != "Port" else p.last_link})
    if kind == "Delay":
        d = _arr(node.delay).reshape(-1)
        if d.size == 0 or not np.isfinite(d).all() or d.min() < 0:
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


def _uniform(values: dict[str, np.ndarray], where: str, problems: list[Problem] | None) -> dict[str, float] | None:
    """The single value of each per-neuron parameter, or ``None`` when the neurons of the node
    differ (with a problem, if ``problems`` is given: a population shares one neuron model)."""
    out, ok = {}, True
    for k, v in values.items():
        v = _arr(v).reshape(-1)
        if v.size == 0:
            continue
        scale = max(float(np.max(np.abs(v))), 1e-300)
        if float(np.ptp(v)) > 1e-12 * scale:  # products of per-neuron factors round differently
            if problems is not None:
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
        ts, tm = np.broadcast_arrays(_arr(node.tau_syn), _arr(node.tau_mem))
        flat = zip(ts.reshape(-1), tm.reshape(-1), strict=True)
        c = np.array([_cuba_c(a, b, dt) for a, b in flat]).reshape(ts.shape)
        return _arr(node.w_in) * dt / ts * _arr(node.r) * c
    if kind in ("IF", "I"):
        return _arr(node.r) * dt
    return np.ones(1)  # Threshold


def _population(flat: _Flat, key, name, size, paths, dt, unit, notes, problems):
    """The population of neuron node ``key`` and, when its constant drive differs between its
    neurons, that drive as a per-step synaptic input (else ``None``)."""
    node, kind = flat.nodes[key], flat.kinds[key]
    where = f"node {key!r} ({kind})"
    meta = _meta(node)
    if kind == "Input":
        extra = {k: meta[k] for k in ("rate_hz", "seed") if k in meta}
        try:
            return Population(name, size, SpikeInput(**extra)), None
        except ModelError as exc:
            problems += [Problem(where, p.message) for p in exc.problems]
            return None, None
    for field_ in ("tau", "tau_mem", "tau_syn"):
        if hasattr(node, field_):
            t = _arr(getattr(node, field_))
            if not (np.isfinite(t).all() and (t > 0).all()):
                problems.append(Problem(where, f"{field_}: a time constant must be finite and > 0, got {t.min():g}"))
                return None, None
    full = lambda v: np.broadcast_to(_arr(v).reshape(-1), (size,))  # noqa: E731
    b = np.zeros(size)  # the constant input of the biases of every path into this node
    for p in paths:
        b = b + p.b
    cuba = kind in ("CubaLIF", "CubaLI")
    rb = b * full(getattr(node, "r", 1.0)) * (full(node.w_in) if cuba else 1.0)
    leak = full(getattr(node, "v_leak", 0.0))
    if np.any(leak != 0):
        notes.append(f"{where}: v_leak folded into the per-step drive (1 - dv) * v_leak")
    if np.any(_arr(getattr(node, "r", 1.0)) != 1) or (cuba and np.any(_arr(node.w_in) != 1)):
        notes.append(f"{where}: r{' and w_in' if cuba else ''} folded into the input weights")
    vals: dict[str, Any] = {}
    if kind in ("LIF", "LI"):
        vals["tau_mem"] = node.tau
    elif cuba:
        vals["tau_mem"], vals["tau_syn"] = node.tau_mem, node.tau_syn
    if kind in ("LIF", "CubaLIF", "IF"):
        vals["v_th"], vals["v_reset"] = node.v_threshold, node.v_reset
    if kind == "Threshold":
        vals["v_th"] = node.threshold
    u = _uniform(vals, where, problems)
    if u is None:
        return None, None
    tau_mem = u["tau_mem"] if "tau_mem" in u else (NO_LEAK_STEPS if kind in ("IF", "I") else MEMORYLESS_STEPS) * dt
    dv = math.exp(-dt / tau_mem)
    drive, synaptic = _drives(kind, leak, rb, b, dv, u, dt)
    common = {"tau_mem_ms": tau_mem * unit, "bias": 0.0}
    if "tau_syn" in u:
        common["tau_syn_ms"] = u["tau_syn"] * unit
    one = _uniform({"bias": drive}, where, None)
    if one is not None:
        common["bias"] = one.get("bias", 0.0)
        if cuba and np.any(b != 0):
            notes.append(f"{where}: the Affine bias acts on v at once (the bias), not through the synaptic current")
        elif np.any(b != 0):
            notes.append(f"{where}: the Affine bias is the population's per-step bias")
    try:
        if kind in ("LI", "CubaLI", "I"):
            pop = Population(name, size, LI(**common))
        else:
            spiking = {"v_th": u["v_th"], "v_reset": u.get("v_reset", 0.0)}
            spiking.update({k: meta[k] for k in ("reset", "refractory_steps") if k in meta})
            cls_kw = meta.get("alif")
            pop = Population(name, size, ALIF(**common, **spiking, **cls_kw) if cls_kw else LIF(**common, **spiking))
    except (ModelError, TypeError) as exc:
        msgs = [p.message for p in exc.problems] if isinstance(exc, ModelError) else [str(exc)]
        problems += [Problem(where, m) for m in msgs]
        return None, None
    return pop, (None if one is not None else synaptic)


def _drives(kind, leak, rb, b, dv, u, dt) -> tuple[np.ndarray, np.ndarray]:
    """A node's constant drive per neuron, as a per-step bias on ``v`` and as the equivalent
    per-step synaptic input (what an always-on input must deliver when the bias differs
    between neurons). ``rb``: ``r * b`` (``r * w_in * b`` on a CubaLIF/CubaLI)."""
    if kind == "Threshold":
        return b, b  # v is this step's input
    if kind in ("IF", "I"):
        return rb * dt, rb * dt  # dv/dt = r * b, no leak
    drive = (1 - dv) * (leak + rb)  # the exact steady drive over one step
    if "tau_syn" not in u:
        return drive, drive
    # through the current: the steady state is exact, the drive rises with tau_syn (as NIR's
    # bias does; NIR's leak acts on v at once)
    return drive, (1 - math.exp(-dt / u["tau_syn"])) * drive


def _always_on(pops, projs, drives: dict[str, np.ndarray], dt_ms: float, notes: list[str]):
    """Per-neuron biases as synapses from one input that fires every step."""
    name = "bias"
    while name in {p.name for p in pops}:
        name += "_"
    rate = 1000.0 / dt_ms
    while rate * dt_ms / 1000.0 < 1.0:  # a spike in every step at dt_ms, whatever the rounding
        rate = float(np.nextafter(rate, np.inf))
    pops = [*pops, Population(name, 1, SpikeInput(rate_hz=rate, seed=0))]
    for post, x in drives.items():
        projs = [*projs, Projection(name, post, np.asarray(x, dtype=np.float64).reshape(-1, 1), name=f"{post}.bias")]
        notes.append(
            f"population {post!r}: biases differ between its neurons: they arrive as weights from {name!r}, an input "
            f"firing every step ({rate:g} Hz at {dt_ms:g} ms; the drive starts one step late)"
        )
    return pops, projs


def _projections(flat: _Flat, pop_keys, names, sizes, paths, dt, unit, notes, problems) -> list[Projection]:
    order = {k: i for i, k in enumerate(flat.nodes)}
    items = []
    for post in pop_keys:
        if flat.kinds[post] == "Input" or post not in sizes:
            continue
        g = np.broadcast_to(_gain(flat.nodes[post], flat.kinds[post], dt).reshape(-1), (sizes[post],))
        for p in paths[post]:
            first = p.weight_nodes[0] if p.weight_nodes else post
            items.append((order[first], post, p, g))
    items.sort(key=lambda t: t[0])
    out: list[Projection] = []
    used: set[str] = set()
    for _, post, p, g in items:
        where = " -> ".join([p.pre, *p.weight_nodes, post])
        mains = [k for k in p.weight_nodes if flat.kinds[k] in ("Affine", "Linear")]  # the weight matrix
        meta = _meta(flat.nodes[mains[0]]) if len(mains) == 1 else {}
        if p.M.shape[0] != g.size:
            problems.append(Problem(f"path {where}", f"a signal of {p.M.shape[0]} elements into {g.size} neurons"))
            continue
        M = g[:, None] * p.M
        delay_steps = _delay_steps(p, M.shape, dt, unit, where, notes)
        weights: Any = M
        if "synapses" in meta:
            rows, cols = (np.asarray(x, dtype=np.int64) for x in meta["synapses"])
            weights = SparseWeights(M.shape, rows, cols, M[rows, cols])
            if isinstance(delay_steps, np.ndarray):
                delay_steps = delay_steps[rows, cols]
        name = meta.get("name") or (mains[0] if len(mains) == 1 else f"{names[p.pre]}->{names[post]}")
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


def _delay_steps(p: _Path, shape, dt, unit, where, notes) -> int | np.ndarray:
    delay = p.delay + np.zeros(shape)
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
    return int(rounded.flat[0]) if np.all(rounded == rounded.flat[0]) else rounded


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
        if pr.port != "syn":  # NIR's CubaLIF has one synaptic current
            problems.append(Problem(f"projection {pr.name!r}", f"port {pr.port!r}: NIR's neurons have one current"))
            continue
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
    if n.model == "GatedTheta":  # no NIR primitive has a phase neuron with a gated graded output
        raise NirError([Problem(where, "GatedTheta (theta neuron with a gated synapse) has no NIR node")])
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
    buf = io.BytesIO()  # serialized in memory, then written through the one atomic output path
    nir.write(buf, graph)
    return atomic_write_bytes(path, buf.getvalue())


def format_notes(notes: Iterable[str]) -> str:
    """The notes as lines ``note: ...`` (as the CLI prints them)."""
    return "\n".join(f"note: {n}" for n in notes)


__all__ = ["NirError", "from_nir", "load_nir", "save_nir", "to_nir", "NO_LEAK_STEPS", "MEMORYLESS_STEPS"]
