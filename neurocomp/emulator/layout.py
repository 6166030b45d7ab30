"""The emulator's flat memory layout: every population's state as a block of one array.

The compiled kernels (:mod:`neurocomp.kernels`) see the whole network as a few flat arrays
and int64 tables. A population of ``n`` neurons owns the block ``[off, off + batch * n)`` of
each state array (``u``, ``v``, ``a``, ``refractory``, ``v_pre``, ``th_pre``, spikes), read
as ``[batch, n]``, and a block ``[slots, batch, n]`` of the input ring. The emulator's
``Population.state`` entries are views of these blocks, so the numpy code of the learning
engines reads and writes the same memory as the kernels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..kernels import delivery as kd
from ..kernels import neurons as kn
from .synapses import pack_dense

NEURON_KINDS = {"lif": kn.KIND_LIF, "alif": kn.KIND_ALIF, "li": kn.KIND_LI}
# the rows of the state array (:mod:`neurocomp.kernels.neurons`) by variable name
STATE_ROWS = {"u": kn.S_U, "v": kn.S_V, "a": kn.S_A, "refractory": kn.S_REFR, "v_pre": kn.S_VPRE, "th_pre": kn.S_THPRE}


@dataclass
class Blocks:
    """Offsets of the populations (inputs and neurons, not error units) in the flat arrays:
    ``state[name]`` of the ``[batch, n]`` block, ``ring[name]`` of the ``[slots, batch, n]``
    block, ``neuron[name]`` of the per-neuron constants; totals ``n_state``, ``n_ring``, ``n_neuron``."""

    state: dict[str, int]
    ring: dict[str, int]
    neuron: dict[str, int]
    n_state: int
    n_ring: int
    n_neuron: int

    @classmethod
    def of(cls, sizes: Mapping[str, int], slots: Mapping[str, int], kinds: Mapping[str, str], batch: int) -> Blocks:
        state, ring, neuron = {}, {}, {}
        s = r = m = 0
        for name, n in sizes.items():
            if kinds[name] == "error":
                continue
            state[name], neuron[name] = s, m
            s, m = s + batch * n, m + n
            if kinds[name] != "input":
                ring[name] = r
                r += slots[name] * batch * n
        return cls(state, ring, neuron, max(s, 1), max(r, 1), max(m, 1))


def neuron_table(pops, blocks: Blocks, slots: Mapping[str, int], rand_bits: Mapping[str, int]) -> np.ndarray:
    """The int64 population table of :mod:`neurocomp.kernels.neurons`, one row per neuron
    population (LIF, ALIF, LI) in program order."""
    rows = []
    for name, p in pops.items():
        if p.kind not in NEURON_KINDS:
            continue
        row = np.zeros(kn.P_COLS, dtype=np.int64)
        row[kn.P_KIND] = NEURON_KINDS[p.kind]
        row[kn.P_BOFF], row[kn.P_N], row[kn.P_NOFF] = blocks.state[name], p.q.size, blocks.neuron[name]
        row[kn.P_ROFF], row[kn.P_SLOTS] = blocks.ring[name], slots[name]
        row[kn.P_RESET] = 1 if p.q.params.get("reset") == "subtract" else 0
        row[kn.P_REFR] = int(p.q.params.get("refractory", 0) or 0) if p.kind != "li" else 0
        row[kn.P_KEEP] = 1 if p.const.get("keep_v_pre") else 0
        row[kn.P_RBITS] = rand_bits.get(name, 0)
        # the same leak factors and bias for every neuron: the kernel holds them in registers
        consts = [np.asarray(p.const.get(k, 0.0)) for k in ("leak_u", "leak_v", "bias")]
        row[kn.P_UNIFORM] = p.q.size > 0 and all(c.ndim == 0 or (c == c.flat[0]).all() for c in consts)
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(-1, kn.P_COLS)


def neuron_constants(pops, blocks: Blocks, dtype, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """``thr`` (per population: threshold, adaptation jump, 1, the cap on spikes per step) and
    ``nconst`` (per neuron: the leak factors of u, v, a and the bias), in the state's dtype, from
    each population's constants (``const``: ``threshold``, ``beta``, ``bias``, ``leak_u``,
    ``leak_v``, ``leak_a``, scalars or per neuron)."""
    thr = []
    nconst = np.zeros((kn.C_ROWS, blocks.n_neuron), dtype=dtype)
    for name, p in pops.items():
        if p.kind not in NEURON_KINDS:
            continue
        c, o, n = p.const, blocks.neuron[name], p.q.size
        thr.append([c.get("threshold", 0.0), c.get("beta", 0.0), 1.0, cap])
        for row, src in ((kn.C_FU, "leak_u"), (kn.C_FV, "leak_v"), (kn.C_FA, "leak_a"), (kn.C_BIAS, "bias")):
            nconst[row, o : o + n] = np.broadcast_to(np.asarray(c.get(src, 0.0), dtype=np.float64), (n,))
    return np.array(thr, dtype=dtype).reshape(-1, kn.T_COLS), nconst


def delivery_tables(syns: Sequence, blocks: Blocks, slots: Mapping[str, int]) -> tuple[list, dict[str, np.ndarray]]:
    """The whole network's delivery: the groups of static projections ``syns`` with the flat
    offsets of their pre spikes and post rings, as two tables (zero-latency groups, delivered
    before the neuron update, and the rest) with their scales, over concatenated arrays."""
    tables: list[list[np.ndarray]] = [[], []]
    scales: list[list[np.ndarray]] = [[], []]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("indptr", "idx", "w", "exps")}
    used = dict.fromkeys(parts, 0)
    cols = {"indptr": kd.G_PTR, "idx": kd.G_IDX, "exps": kd.G_EXP}
    dense: list[tuple[np.ndarray, int, np.ndarray, bool]] = []  # (table, group, rows, raw)
    for syn in syns:
        t = syn.table.copy()
        t[:, kd.G_PRE], t[:, kd.G_POST], t[:, kd.G_SLOTS] = (
            blocks.state[syn.pre],
            blocks.ring[syn.post],
            slots[syn.post],
        )
        for key, col in cols.items():
            t[:, col] += used[key]
        for key in parts:
            arr = syn.arrays[key]
            parts[key].append(arr)
            used[key] += arr.size
        dense += [(t, g, rows, raw) for g, rows, raw in syn.dense_parts]
        phase = 0 if syn.latency + syn.max_delay == 0 else 1
        tables[phase].append(t)
        scales[phase].append(syn.gscale)
    wdt = np.result_type(*[s.weight_dtype for s in syns]) if syns else np.int16  # int16 unless one needs float32
    dtypes = {"indptr": np.int64, "idx": np.int32, "w": wdt, "exps": np.float64}
    arrays = {k: np.concatenate(v).astype(dtypes[k]) if v else np.zeros(1, dtypes[k]) for k, v in parts.items()}
    arrays["dense"], starts = pack_dense([(rows, raw) for _, _, rows, raw in dense], wdt)
    for (t, g, _, _), start in zip(dense, starts, strict=True):
        t[g, kd.G_DENSE] = start
    out = [
        (
            np.concatenate(tables[ph]) if tables[ph] else np.zeros((0, kd.G_COLS), np.int64),
            np.concatenate(scales[ph]) if scales[ph] else np.zeros(1),
        )
        for ph in (0, 1)
    ]
    return out, arrays


class StateViews(dict):
    """A population's states by name. The arrays it starts with (views of the flat arrays, and
    ports bound into the step's plan) are written in place: ``state["v"] = x`` copies ``x``
    into the memory the kernels read (replacing the array would leave them on the old one);
    other keys are set as in a dict."""

    def __init__(self, views: Mapping[str, np.ndarray]):
        super().__init__(views)
        self.bound = frozenset(views)

    def __setitem__(self, key: str, value) -> None:
        if key in self.bound:
            self[key][...] = value
        else:
            super().__setitem__(key, value)


def block_view(flat: np.ndarray, off: int, shape: tuple[int, ...]) -> np.ndarray:
    """The block at ``off`` of a flat array as an array of ``shape`` (a view: writes reach ``flat``)."""
    return flat[off : off + int(np.prod(shape))].reshape(shape)
