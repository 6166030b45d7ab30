"""Pass ``partition``: split populations into core-sized blocks and place them on cores
and chips.

1. **Split.** Each placed population is cut into consecutive blocks that fit one core:
   at most ``neurons_per_core`` neurons, at most ``synaptic_memory_bits_per_core`` of
   incoming synapses (each stored synapse costs the profile's synapse encoding:
   weight + delay + index + tag bits, or ``weight_bits * n_pre`` per row for dense
   encodings), and at most ``input_axons_per_core`` distinct pre-synaptic neurons. A
   convolution costs its kernel once per block (``weight_bits`` per kernel entry) on a chip
   that stores convolutions as shared kernels (``capacity.convolution.shared_weights``);
   elsewhere it is its expansion, one stored synapse per connection.
2. **Traffic.** Between blocks, a spike of a pre neuron is sent once to every block it has
   synapses in, so the traffic from block a to block b is the number of distinct neurons
   of a with a synapse in b, times the firing probability per step.
3. **Greedy placement.** Blocks are packed in order (populations in breadth-first order
   from the inputs over the population graph, so connected blocks sit close) into cores,
   and cores into chips.
4. **Refinement.** Blocks move between chips while a move lowers the traffic that crosses
   chips and the target chip has room, best gain first, for a few rounds.

The cost is linear in the number of stored synapses (plus a blocks x blocks traffic matrix).
External inputs are not placed: their spikes come from the host or the chip's input ports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ...errors import Problem
from ...graph.weights import row_pointers
from ...profiles import Profile
from ..context import PassContext
from ..errors import PartitionError
from ..ir import Block, PlacedNetwork, Placement, QProjection, QuantizedNetwork, occupies_core

_REFINE_ROUNDS = 4


def stored_rows(proj: QProjection) -> np.ndarray:
    """Stored synapses per post neuron (sparse entries; dense nonzeros, or all if plastic)."""
    if proj.is_sparse:
        return np.diff(row_pointers(proj.rows, proj.shape[0]))
    if proj.plasticity is not None:
        return np.full(proj.shape[0], proj.shape[1], dtype=np.int64)
    return np.count_nonzero(proj.weights, axis=1)


class _Inputs:
    """The stored synapses onto one population, with CSR row pointers computed once, and
    the distinct pre-synaptic neurons of each block cached (they are needed for the axon
    limit, the block's input axons and the traffic)."""

    def __init__(self, projs: list[QProjection]):
        self.projs = projs
        self.indptr = [row_pointers(p.rows, p.shape[0]) if p.is_sparse else None for p in projs]
        self._marks = [np.zeros(p.shape[1], dtype=bool) for p in projs]
        self._cache: dict[tuple[int, int], list[np.ndarray]] = {}

    def distinct(self, start: int, stop: int) -> list[np.ndarray]:
        """Per projection, the sorted distinct pre indices with a synapse onto ``start:stop``."""
        key = (start, stop)
        if key not in self._cache:
            self._cache[key] = [self._distinct(k, start, stop) for k in range(len(self.projs))]
        return self._cache[key]

    def _distinct(self, k: int, start: int, stop: int) -> np.ndarray:
        p = self.projs[k]
        if p.is_sparse:
            cols = p.cols[self.indptr[k][start] : self.indptr[k][stop]]
            if len(cols) * 32 < p.shape[1]:  # few entries: sorting them is cheaper than a pass over n_pre
                return np.unique(cols)
            mark = self._marks[k]
            mark[cols] = True
            out = np.flatnonzero(mark)
            mark[out] = False
            return out
        if p.plasticity is not None:
            return np.arange(p.shape[1])
        return np.flatnonzero(np.any(p.weights[start:stop] != 0, axis=0))

    def axons(self, start: int, stop: int) -> int:
        return sum(len(c) for c in self.distinct(start, stop))


def _placed_populations(net: QuantizedNetwork, prof: Profile) -> list[str]:
    return [p.name for p in net.populations if occupies_core(p, prof)]


def _population_order(net: QuantizedNetwork, placed: list[str]) -> list[str]:
    """Breadth-first from the inputs over the population graph, then anything left."""
    g = nx.DiGraph()
    g.add_nodes_from(p.name for p in net.populations)
    g.add_edges_from((pr.pre, pr.post) for pr in net.projections)
    sources = [p.name for p in net.populations if p.model == "SpikeInput"] or placed[:1]
    order: list[str] = []
    for s in sources:
        for n in [s, *(v for _, v in nx.bfs_edges(g, s))]:
            if n in placed and n not in order:
                order.append(n)
    return order + [n for n in placed if n not in order]


def _split(
    name: str, size: int, row_bits: np.ndarray, inputs: _Inputs, prof: Profile, reserve: int = 0
) -> list[tuple[int, int]]:
    """``reserve``: bits every block needs besides its rows (the shared kernels it receives)."""
    cap = prof.capacity
    mem = cap.synaptic_memory_bits_per_core - reserve
    cum = np.concatenate([[0], np.cumsum(row_bits)])
    if mem < 0:
        raise PartitionError(
            [
                Problem(
                    f"population {name!r}",
                    f"its kernels need {reserve} bits, more than a {prof.name} core's {mem + reserve}",
                )
            ]
        )
    if np.any(row_bits > mem):
        j = int(np.argmax(row_bits))
        raise PartitionError(
            [
                Problem(
                    f"population {name!r}",
                    f"neuron {j} needs {int(row_bits[j])} bits of synapses, more than a {prof.name} core's {mem}",
                )
            ]
        )
    blocks, start = [], 0
    while start < size:
        k_mem = int(np.searchsorted(cum, cum[start] + mem, side="right")) - 1 - start
        stop = start + max(1, min(cap.neurons_per_core, k_mem, size - start))
        limit = cap.input_axons_per_core
        if limit is not None and stop - start > 1 and inputs.axons(start, stop) > limit:
            # distinct inputs only grow with the block: binary-search the longest block that fits
            lo, hi = start + 1, stop - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if inputs.axons(start, mid) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            stop = lo
        if limit is not None and inputs.axons(start, stop) > limit:
            raise PartitionError(
                [
                    Problem(
                        f"population {name!r}",
                        f"neuron {start} alone has "
                        f"{inputs.axons(start, stop)} distinct inputs, more "
                        f"than a {prof.name} core's "
                        f"{cap.input_axons_per_core} input axons",
                    )
                ]
            )
        blocks.append((start, stop))
        start = stop
    return blocks


def partition(net: QuantizedNetwork, ctx: PassContext) -> PlacedNetwork:
    prof = ctx.profile
    placed = _population_order(net, _placed_populations(net, prof))
    incoming = {n: [pr for pr in net.projections if pr.post == n] for n in placed}
    inputs = {n: _Inputs(incoming[n]) for n in placed}
    blk = _split_all(net, placed, incoming, inputs, prof)  # 1.
    traffic, input_traffic = _traffic(net, ctx, blk, incoming, inputs)  # 2.
    cores = _greedy(blk, prof, ctx)  # 3.
    greedy_cross = cores.cross_chip(traffic)
    moves = _refine(cores, blk, traffic, prof)  # 4.
    placement = _placement(net, ctx, blk, cores, traffic, input_traffic, greedy_cross)
    ctx.note(
        f"{len(blk.blocks)} blocks on {placement.n_cores} cores, {placement.n_chips} chips; spikes/step at "
        f"{ctx.options.firing_rate_hz:g} Hz: {placement.traffic_total:.4g} total, "
        f"{placement.traffic_cross_core:.4g} cross-core, {placement.traffic_cross_chip:.4g} cross-chip "
        f"(greedy {greedy_cross:.4g}, {moves} refinement moves)"
    )
    return PlacedNetwork(net, placement)


@dataclass
class _Blocks:
    """The split: each block ``(population, first, end)`` with its synaptic bits and input
    axons; per population its first block and the blocks' first neurons."""

    placed: list[str]
    sizes: dict[str, int]
    blocks: list[tuple[str, int, int]] = field(default_factory=list)
    bits: list[int] = field(default_factory=list)
    axons: list[int] = field(default_factory=list)
    first: dict[str, int] = field(default_factory=dict)
    starts: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Cores:
    """A placement in progress: the core of each block, and per core its neurons, synaptic
    bits, input axons and chip."""

    core_of: np.ndarray
    neurons: np.ndarray
    bits: np.ndarray
    axons: np.ndarray
    chip: np.ndarray

    def cross_chip(self, traffic: np.ndarray) -> float:
        chip = self.chip[self.core_of]
        return float(traffic[chip[:, None] != chip[None, :]].sum())


def shared_kernels(prof: Profile) -> bool:
    """Whether the chip stores a convolution's kernel once per core (its convolutional
    connectivity) rather than one synapse per connection."""
    conv = prof.capacity.convolution
    return conv is not None and conv.shared_weights


def _split_all(net: QuantizedNetwork, placed: list[str], incoming, inputs, prof: Profile) -> _Blocks:
    """1. Every placed population cut into blocks that fit one core (:func:`_split`)."""
    enc = prof.capacity.synapse_encoding
    blk = _Blocks(placed, {p.name: p.size for p in net.populations})
    for name in placed:
        row_bits = np.zeros(blk.sizes[name], dtype=np.int64)
        kernel_bits = 0
        for pr in incoming[name]:
            if pr.conv is not None and shared_kernels(prof):
                kernel_bits += pr.conv.mantissas.size * enc.weight_bits
            elif enc.dense:
                row_bits += enc.weight_bits * pr.shape[1]
            else:
                row_bits += stored_rows(pr) * enc.sparse_bits
        spans = _split(name, blk.sizes[name], row_bits, inputs[name], prof, kernel_bits)
        blk.first[name] = len(blk.blocks)
        blk.starts[name] = np.array([a for a, _ in spans], dtype=np.int64)
        cum = np.concatenate([[0], np.cumsum(row_bits)])
        for a, b in spans:
            blk.blocks.append((name, a, b))
            blk.bits.append(int(cum[b] - cum[a]) + kernel_bits)
            blk.axons.append(inputs[name].axons(a, b))
    return blk


def _traffic(net: QuantizedNetwork, ctx: PassContext, blk: _Blocks, incoming, inputs) -> tuple[np.ndarray, float]:
    """2. Spikes per step between blocks (distinct pre neurons per destination block, times
    the firing probability) and from external inputs."""
    p_spike = ctx.options.firing_rate_hz * ctx.dt_ms / 1000.0
    nb = len(blk.blocks)
    traffic = np.zeros((nb, nb))
    input_traffic = 0.0
    for post in blk.placed:
        bounds = [*blk.starts[post][1:], blk.sizes[post]]
        for j, pr in enumerate(incoming[post]):
            pre_placed = pr.pre in blk.first
            for k, (a, b) in enumerate(zip(blk.starts[post], bounds, strict=True)):
                cols = inputs[post].distinct(int(a), int(b))[j]
                dst = blk.first[post] + k
                if pre_placed:
                    src = np.searchsorted(blk.starts[pr.pre], cols, side="right") - 1
                    counts = np.bincount(src, minlength=len(blk.starts[pr.pre]))
                    traffic[blk.first[pr.pre] : blk.first[pr.pre] + len(counts), dst] += counts * p_spike
                else:
                    input_traffic += len(cols) * _input_rate(net, pr.pre, ctx) * ctx.dt_ms / 1000.0
    return traffic, input_traffic


def _greedy(blk: _Blocks, prof: Profile, ctx: PassContext) -> _Cores:
    """3. Greedy packing in locality order; if that does not fit, first-fit decreasing."""
    blocks, block_bits, block_axons = blk.blocks, blk.bits, blk.axons
    nb = len(blocks)
    try:
        core_of, cn, cb, ca = _pack(range(nb), blocks, block_bits, block_axons, prof, locality=True)
    except PartitionError:
        big_first = sorted(
            range(nb), key=lambda i: (block_axons[i], block_bits[i], blocks[i][2] - blocks[i][1]), reverse=True
        )
        core_of, cn, cb, ca = _pack(big_first, blocks, block_bits, block_axons, prof, locality=False)
        ctx.note("locality-ordered packing did not fit; used first-fit decreasing")
    core_chip = np.arange(len(cn)) // prof.capacity.cores_per_chip
    return _Cores(core_of, *(np.array(x, dtype=np.int64) for x in (cn, cb, ca)), core_chip)


def _refine(cores: _Cores, blk: _Blocks, traffic: np.ndarray, prof: Profile) -> int:
    """4. Move blocks between chips, best gain first, while capacity allows; drop the cores
    that emptied. Returns the number of moves."""
    n_cores = len(cores.neurons)
    n_chips = int(cores.chip.max()) + 1 if n_cores else 0
    if n_chips <= 1:
        return 0
    nb = len(blk.blocks)
    sym = traffic + traffic.T
    cn, cb, ca, core_of, core_chip = cores.neurons, cores.bits, cores.axons, cores.core_of, cores.chip
    moves = 0
    for _ in range(_REFINE_ROUNDS):
        chip = core_chip[core_of]
        to_chip = np.zeros((nb, n_chips))
        for c in range(n_chips):
            to_chip[:, c] = sym[:, chip == c].sum(axis=1)
        gain = to_chip - to_chip[np.arange(nb), chip][:, None]
        moved_now = 0
        for i in np.argsort(-gain.max(axis=1)):
            d = int(np.argmax(gain[i]))
            if gain[i, d] <= 1e-12 or d == chip[i]:
                continue
            n = blk.blocks[i][2] - blk.blocks[i][1]
            on_d = np.flatnonzero(core_chip == d)
            ok = on_d[_room(cn[on_d], cb[on_d], ca[on_d], n, blk.bits[i], blk.axons[i], prof)]
            if not len(ok):
                continue
            c_new, c_old = ok[0], core_of[i]
            cn[c_old] -= n
            cb[c_old] -= blk.bits[i]
            ca[c_old] -= blk.axons[i]
            cn[c_new] += n
            cb[c_new] += blk.bits[i]
            ca[c_new] += blk.axons[i]
            core_of[i] = c_new
            # the moved block's neighbours now see it on chip d
            gain[:, chip[i]] -= sym[:, i]
            gain[:, d] += sym[:, i]
            chip[i] = d
            gain[i] = -np.inf
            moved_now += 1
        moves += moved_now
        if not moved_now:
            break
    # drop cores a refinement emptied, keeping the order
    used = np.flatnonzero(cn > 0)
    remap = -np.ones(n_cores, dtype=np.int64)
    remap[used] = np.arange(len(used))
    cores.core_of = remap[core_of]
    cores.chip = core_chip[used]
    cores.neurons, cores.bits, cores.axons = cn[used], cb[used], ca[used]
    return moves


def _placement(net, ctx: PassContext, blk: _Blocks, cores: _Cores, traffic, input_traffic: float, greedy_cross):
    """The placement record: blocks on cores, per-core use, traffic and the energy estimate."""
    chip = cores.chip[cores.core_of]
    core_of = cores.core_of
    total_traffic = float(traffic.sum()) + input_traffic
    energy, terms = _energy(net, ctx.profile, blk.placed, blk.sizes, total_traffic, ctx)
    return Placement(
        blocks=tuple(Block(n, a, b, int(core_of[i])) for i, (n, a, b) in enumerate(blk.blocks)),
        core_chip=np.asarray(cores.chip, dtype=np.int64),
        core_neurons=np.asarray(cores.neurons, dtype=np.int64),
        core_memory_bits=np.asarray(cores.bits, dtype=np.int64),
        core_input_axons=np.asarray(cores.axons, dtype=np.int64),
        traffic_total=total_traffic,
        traffic_cross_core=float(traffic[core_of[:, None] != core_of[None, :]].sum()),
        traffic_cross_chip=float(traffic[chip[:, None] != chip[None, :]].sum()),
        traffic_cross_chip_greedy=greedy_cross,
        energy_pj_per_step=energy,
        energy_terms=terms,
    )


def _pack(order, blocks, block_bits, block_axons, prof: Profile, locality: bool):
    """Place blocks on cores in ``order``. With ``locality``: the newest core if the block
    fits there (neighbours stay together), else the first core with room on the newest
    core's chip, else the first with room anywhere, else a new core. Without: first fit.
    Returns the core of each block and the per-core neurons, bits and input axons."""
    cap = prof.capacity
    max_cores = cap.chips * cap.cores_per_chip
    cn, cb, ca = (np.zeros(max_cores, dtype=np.int64) for _ in range(3))
    core_of = np.zeros(len(blocks), dtype=np.int64)
    opened = 0
    for i in order:
        n, bits, ax = blocks[i][2] - blocks[i][1], block_bits[i], block_axons[i]
        room = _room(cn[:opened], cb[:opened], ca[:opened], n, bits, ax, prof)
        chip_start = ((opened - 1) // cap.cores_per_chip) * cap.cores_per_chip if opened else 0
        on_chip = np.flatnonzero(room[chip_start:]) if locality else []
        anywhere = np.flatnonzero(room)
        if locality and opened and room[opened - 1]:
            c = opened - 1
        elif len(on_chip):
            c = chip_start + int(on_chip[0])
        elif len(anywhere):
            c = int(anywhere[0])
        elif opened < max_cores:
            c, opened = opened, opened + 1
        else:
            raise PartitionError(
                [
                    Problem(
                        "network",
                        f"does not fit {prof.name}'s {cap.chips} chips x {cap.cores_per_chip} cores "
                        f"({len(blocks)} blocks; no core has room for block {i})",
                    )
                ]
            )
        core_of[i] = c
        cn[c] += n
        cb[c] += bits
        ca[c] += ax
    return core_of, cn[:opened], cb[:opened], ca[:opened]


def _room(
    neurons: np.ndarray, bits: np.ndarray, axons: np.ndarray, n: int, b: int, a: int, prof: Profile
) -> np.ndarray:
    """Which cores (given their current neurons, synaptic bits and input axons) can take a
    block of ``n`` neurons, ``b`` bits and ``a`` axons within the profile's core limits."""
    cap = prof.capacity
    ok = (neurons + n <= cap.neurons_per_core) & (bits + b <= cap.synaptic_memory_bits_per_core)
    if cap.input_axons_per_core is not None:
        ok &= axons + a <= cap.input_axons_per_core
    return ok


def _input_rate(net: QuantizedNetwork, name: str, ctx: PassContext) -> float:
    p = net.population(name)
    rate = p.params.get("rate_hz") if p.model == "SpikeInput" else None
    return float(rate) if rate is not None else ctx.options.firing_rate_hz


def _energy(net, prof, placed, sizes, traffic, ctx) -> tuple[float | None, dict[str, float]]:
    """Energy per step: neuron updates + synaptic ops (every stored synapse of a spiking
    pre neuron) + routed spikes, from the profile's pJ figures."""
    e = prof.energy
    dt_s = ctx.dt_ms / 1000.0
    syn_ops = sum(int(stored_rows(pr).sum()) * _input_rate(net, pr.pre, ctx) * dt_s for pr in net.projections)
    counts = {
        "neuron updates": float(sum(sizes[n] for n in placed)),
        "synaptic ops": float(syn_ops),
        "spikes routed": float(traffic),
    }
    figures = {
        "neuron updates": e.pj_per_neuron_update,
        "synaptic ops": e.pj_per_synaptic_op,
        "spikes routed": e.pj_per_spike_routed,
    }
    terms = {k: counts[k] * v for k, v in figures.items() if v is not None}
    terms.update({f"{k} (count)": v for k, v in counts.items()})
    if all(v is None for v in figures.values()):
        return None, terms
    return float(sum(counts[k] * v for k, v in figures.items() if v is not None)), terms
