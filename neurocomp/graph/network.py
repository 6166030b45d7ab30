"""The float network: named populations and projections over a networkx multigraph."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import networkx as nx

from ..errors import ModelError, Problem
from .neurons import NeuronModel, SpikeInput
from .projection import Projection

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Population:
    """``size`` neurons that share one neuron model. ``name`` starts with a letter or
    ``_`` and may contain letters, digits, ``_``, ``.`` and ``-``."""

    name: str
    size: int
    neuron: NeuronModel

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.name, str) or not _NAME.match(self.name) or "->" in self.name:
            problems.append(f"name: {self.name!r} is not a valid population name (letters, digits, _ . -)")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            problems.append(f"size: must be an integer >= 1, got {self.size!r}")
        if not isinstance(self.neuron, NeuronModel):
            problems.append(f"neuron: expected a neuron model (LIF, ALIF, LI, SpikeInput), got {self.neuron!r}")
        if problems:
            raise ModelError([Problem(f"population {self.name!r}", p) for p in problems])

    @property
    def is_input(self) -> bool:
        return isinstance(self.neuron, SpikeInput)


class Network:
    """A spiking network: populations (nodes) and projections (edges, several allowed
    between the same pair) of a ``networkx.MultiDiGraph``, keyed by name.

    The payloads are frozen; the container only grows. ``Network(populations=...,
    projections=...)`` checks everything and raises one :class:`ModelError` with every
    problem; :meth:`add_population` and :meth:`add_projection` check one element at a time.
    """

    def __init__(
        self,
        populations: Iterable[Population] = (),
        projections: Iterable[Projection] = (),
        name: str = "network",
        description: str = "",
    ):
        self.name = name
        self.description = description
        self._graph = nx.MultiDiGraph()
        self._projections: dict[str, Projection] = {}
        problems: list[Problem] = []
        for pop in populations:
            problems += self._try_add_population(pop)
        for proj in projections:
            problems += self._try_add_projection(proj)
        if problems:
            raise ModelError(problems, header=f"invalid network {name!r}")

    # -- building -------------------------------------------------------------------------
    def add_population(self, population: Population) -> Population:
        problems = self._try_add_population(population)
        if problems:
            raise ModelError(problems)
        return population

    def add_projection(self, projection: Projection) -> Projection:
        problems = self._try_add_projection(projection)
        if problems:
            raise ModelError(problems)
        return projection

    def add(self, *items: Population | Projection) -> Network:
        """Add populations and projections in order; returns ``self`` for chaining."""
        for item in items:
            if isinstance(item, Population):
                self.add_population(item)
            elif isinstance(item, Projection):
                self.add_projection(item)
            else:
                raise TypeError(f"cannot add {item!r} to a Network")
        return self

    def _try_add_population(self, pop: Population) -> list[Problem]:
        if pop.name in self._graph:
            return [Problem(f"population {pop.name!r}", "duplicate name: a population with this name exists")]
        self._graph.add_node(pop.name, population=pop)
        return []

    def _try_add_projection(self, proj: Projection) -> list[Problem]:
        from .validate import projection_problems

        problems = projection_problems(self, proj)
        if not problems:
            self._graph.add_edge(proj.pre, proj.post, key=proj.name, projection=proj)
            self._projections[proj.name] = proj
        return problems

    # -- queries ---------------------------------------------------------------------------
    @property
    def graph(self) -> nx.MultiDiGraph:
        """A read-only view of the topology (node attr ``population``, edge attr ``projection``)."""
        return self._graph.copy(as_view=True)

    @property
    def populations(self) -> tuple[Population, ...]:
        return tuple(d["population"] for _, d in self._graph.nodes(data=True))

    @property
    def projections(self) -> tuple[Projection, ...]:
        return tuple(self._projections.values())

    def population(self, name: str) -> Population:
        try:
            return self._graph.nodes[name]["population"]
        except KeyError:
            raise KeyError(f"no population {name!r} (have: {', '.join(self._graph.nodes)})") from None

    def projection(self, name: str) -> Projection:
        try:
            return self._projections[name]
        except KeyError:
            raise KeyError(f"no projection {name!r} (have: {', '.join(self._projections)})") from None

    def has_population(self, name: str) -> bool:
        return name in self._graph

    def has_projection(self, name: str) -> bool:
        return name in self._projections

    def projections_to(self, post: str) -> list[Projection]:
        return [d["projection"] for _, _, d in self._graph.in_edges(post, data=True)]

    def projections_from(self, pre: str) -> list[Projection]:
        return [d["projection"] for _, _, d in self._graph.out_edges(pre, data=True)]

    def with_rule_params(self, **params) -> Network:
        """A copy in which every plastic projection's rule takes ``params`` over its own (for
        example ``feedback="symmetric"`` for a chip that has no other); this one is unchanged."""
        projs = [
            p
            if p.plasticity is None
            else replace(p, plasticity=replace(p.plasticity, params={**p.plasticity.params, **params}))
            for p in self.projections
        ]
        return Network(self.populations, projs, name=self.name, description=self.description)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def n_synapses(self) -> int:
        return sum(p.n_synapses for p in self.projections)

    def __iter__(self) -> Iterator[Population]:
        return iter(self.populations)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return (
            self.name == other.name
            and self.description == other.description
            and self.populations == other.populations
            and self.projections == other.projections
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Network({self.name!r}: {len(self.populations)} populations, {self.n_neurons} neurons, "
            f"{len(self.projections)} projections, {self.n_synapses} synapses)"
        )

    def summary(self) -> str:
        """A readable table of populations and projections."""
        lines = [repr(self)]
        if self.description:
            lines.append("  " + " ".join(self.description.split()))
        lines.append("  populations:")
        for p in self.populations:
            params = ", ".join(f"{k}={v}" for k, v in p.neuron.to_dict().items() if k != "model" and v is not None)
            lines.append(f"    {p.name:<12} {p.size:>6} x {p.neuron.model:<10} {params}")
        lines.append("  projections:")
        for pr in self.projections:
            kind = "sparse" if pr.is_sparse else "dense"
            rule = f"  plastic: {pr.plasticity.name}" if pr.plasticity else ""
            lines.append(
                f"    {pr.name:<20} {pr.shape[0]:>5}x{pr.shape[1]:<5} {kind:<6} {pr.n_synapses:>8} syn"
                f"  delay<={pr.max_delay}  {pr.inferred_sign_mode()}{rule}"
            )
        return "\n".join(lines)
