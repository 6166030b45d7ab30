"""Logic programs in Hopfield networks: an offline weight compiler (Wan Abdullah's method, as
used by Sathasivam, arXiv 0804.4075), its Hebbian variant, and the pairwise network a chip runs.

Not a learning rule of a chip's engine, so it is not in ``LOWERINGS``/``PARAMS``: the weights are
computed once, off chip, from the program, and the result is an ordinary static
:class:`~neurocomp.graph.Network` (:func:`sequential_network`, :func:`spiking_network`) that
``neurocomp.compile`` takes for any profile. A graph builder reads better than a lowering here
because there is nothing to lower per engine: what differs between chips (weight bits, decays)
is the compiler's business.

**Clauses and cost.** Atoms are bipolar neurons ``S = +1`` (true) or ``-1`` (false). A Horn
clause ``A <- B, C`` is the disjunction ``A or not B or not C``; it is false only when every
literal is false, so its cost is the product of the literals' falseness::

    cost(A <- B, C) = (1 - S_A)/2 * (1 + S_B)/2 * (1 + S_C)/2

and the program's cost is the number of violated clauses. Clauses have 1 to 3 literals (a fact
``A <-``, a goal ``<- C``, 2- and 3-literal rules).

**Wan Abdullah.** Matching the expanded cost to the third-order Hopfield energy::

    E(S) = -1/3 sum_ijk J3_ijk S_i S_j S_k - 1/2 sum_ij J2_ij S_i S_j - sum_i J1_i S_i

(sums over ordered tuples of distinct indices, ``J`` symmetric) gives, for a monomial
``c * prod_{i in T} S_i`` of the cost, ``J_T = -c / (|T| - 1)!``: for ``A <- B, C``
``J3_ABC = 1/16``, ``J2_AB = J2_AC = 1/8``, ``J2_BC = -1/8``, ``J1_A = 1/8``, ``J1_B = J1_C = -1/8``.
Then ``cost(S) = E(S) + offset`` on every assignment.

**Hebbian.** Each clause is learnt as the unlearning of its one falsifying event ``e`` (``e = -1``
for the head, ``+1`` for a body atom): ``dJ^(m)_{i1..im} = -lambda(n, m) e_i1 ... e_im`` over the
ordered ``m``-tuples of the clause's distinct literal positions, ``m = 1..n`` (``n`` literals),
with ``lambda(n, m) = 2^-n / (m - 1)!``. With these rates it equals Wan Abdullah's weights on
every program whose clauses have no repeated atom (tested). Where it differs, exactly: (1) a
clause that repeats an atom (``A <- B, B``, the tautology ``A <- A``): Wan Abdullah reduces
``S_B^2 = 1``, Hebbian learning puts the product on a self-coupling that a Hopfield network
does not have (:func:`hebbian` refuses such clauses); (2) a single rate per order, independent
of the clause length ``n`` (the textbook form ``dJ^(m) = lambda_m prod (2V - 1)``; the paper's
exact normalisation is from memory, not checked against its text), equals Wan Abdullah only up to
the factor ``2^-n`` and so only when every clause has the same length.

**Pairwise form for chips** (:func:`pairwise`). Chips have pairwise synapses only. With binary
states ``x = (S + 1)/2`` the cost is a multilinear polynomial in ``x``; each cubic monomial
``a x_i x_j x_k`` becomes quadratic with one auxiliary binary neuron ``w`` (minimum over ``w``):

* ``a < 0`` (Freedman-Drineas / Kolmogorov-Zabih): ``a x_i x_j x_k = min_w a w (x_i + x_j + x_k - 2)``
* ``a > 0`` (Ishikawa 2011): ``a x_i x_j x_k = min_w a [w (1 - x_i - x_j - x_k) + x_i x_j + x_i x_k + x_j x_k]``

so ``min_aux E2(x, aux) = cost(x)`` on every assignment of the atoms (tested by enumeration).
``E2 = -1/2 x^T W x - b^T x + c`` with ``W`` symmetric, zero diagonal; aux neurons couple to
atoms only. A Hopfield relaxation of the pairwise network descends ``E2``; its global minima are
the satisfying assignments (cost 0) when the program is satisfiable.

**Spiking attractor.** :func:`sequential_network` runs the paper's relaxation (one atom at a
time, the order chosen by the host) with pairwise synapses only, equal to :func:`relax_sequential`.
:func:`spiking_network` realises ``x_i(t+1) = [sum_j W_ij x_j(t) + b_i > 0]``
with LIF neurons that forget their membrane every step (a spike is "true"): ``W`` as recurrent
weights, ``b`` as weights from an always-on neuron, the initial state set by a cue input. All
neurons update at once (the chip's time step), so the dynamics are the parallel (Little) form of
the Hopfield network: its fixed points are the asynchronous network's, but it can also end in a
2-cycle, which the relaxation reports as not converged (and does, often: see the benchmark).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import NeurocompError, Problem

MAX_LITERALS = 3


class LogicProgramError(NeurocompError, ValueError):
    """A clause the compiler cannot use (named, with the value and the limit)."""

    kind = "logic program error"


@dataclass(frozen=True)
class Clause:
    """A Horn clause ``head <- body``: ``head`` an atom or ``None`` (a goal clause), ``body`` atoms."""

    head: str | None
    body: tuple[str, ...] = ()

    @property
    def literals(self) -> tuple[tuple[str, int], ...]:
        """``(atom, e)`` per literal, ``e`` the atom's bipolar value that makes the literal false."""
        head = () if self.head is None else ((self.head, -1),)
        return head + tuple((b, +1) for b in self.body)

    def satisfied(self, truth: dict[str, bool]) -> bool:
        return (self.head is not None and truth[self.head]) or any(not truth[b] for b in self.body)

    def __str__(self) -> str:
        return f"{self.head or ''} <- {', '.join(self.body)}".strip()


_ATOM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_clause(text: str) -> Clause:
    """``"A <- B, C"`` (also ``"A <-"``: a fact, ``"<- C"``: a goal) as a :class:`Clause`."""
    head, sep, body = text.partition("<-")
    atoms = [a.strip() for a in body.split(",")] if body.strip() else []
    head = head.strip() or None
    bad = [a for a in ([head] if head else []) + atoms if not _ATOM.match(a)]
    if not sep or bad:
        why = "expected 'head <- body1, body2'" if not sep else f"atoms must be identifiers, got {bad}"
        raise LogicProgramError([Problem(f"clause {text!r}", why)])
    return Clause(head, tuple(atoms))


class LogicProgram:
    """Horn clauses of 1..3 literals over atoms, in first-appearance order (the neuron order)."""

    def __init__(self, clauses: Iterable[Clause | str]):
        self.clauses = tuple(parse_clause(c) if isinstance(c, str) else c for c in clauses)
        problems = [
            Problem(f"clause {i} ({c})", f"has {len(c.literals)} literals; the compiler takes 1 to {MAX_LITERALS}")
            for i, c in enumerate(self.clauses)
            if not 1 <= len(c.literals) <= MAX_LITERALS
        ]
        if not self.clauses:
            problems.append(Problem("logic program", "has no clauses"))
        if problems:
            raise LogicProgramError(problems)
        self.atoms = tuple(dict.fromkeys(a for c in self.clauses for a, _ in c.literals))
        self.index = {a: i for i, a in enumerate(self.atoms)}

    def violated(self, S: np.ndarray) -> np.ndarray:
        """The number of violated clauses for bipolar states ``S`` ``[..., n_atoms]`` (by truth tables)."""
        S = np.asarray(S)
        out = np.zeros(S.shape[:-1], dtype=np.int64)
        for c in self.clauses:
            false = np.ones(S.shape[:-1], dtype=bool)
            for atom, e in c.literals:
                false &= S[..., self.index[atom]] == e
            out += false
        return out

    def __len__(self) -> int:
        return len(self.clauses)


@dataclass(frozen=True, eq=False)
class HopfieldWeights:
    """Third-order Hopfield weights over bipolar atoms: ``J1 [n]``, ``J2 [n, n]`` and ``J3 [n, n, n]``
    (fully symmetric, zero wherever an index repeats), with ``cost(S) = energy(S) + offset``.
    Dense (``J3`` holds ``n^3`` float64): meant for programs of up to a few hundred atoms."""

    atoms: tuple[str, ...]
    J1: np.ndarray
    J2: np.ndarray
    J3: np.ndarray
    offset: float

    def energy(self, S: np.ndarray) -> np.ndarray:
        """``E(S)`` for bipolar states ``S`` ``[..., n]`` (dimensionless, the cost's units)."""
        S = np.asarray(S, dtype=np.float64)
        e3 = np.einsum("ijk,...i,...j,...k->...", self.J3, S, S, S)
        e2 = np.einsum("ij,...i,...j->...", self.J2, S, S)
        return -e3 / 3 - e2 / 2 - S @ self.J1

    def field(self, S: np.ndarray) -> np.ndarray:
        """The local field ``h_i = sum_jk J3_ijk S_j S_k + sum_j J2_ij S_j + J1_i``, ``E = -h_i S_i + ...``."""
        S = np.asarray(S, dtype=np.float64)
        return np.einsum("ijk,...j,...k->...i", self.J3, S, S) + S @ self.J2 + self.J1


def _bipolar_cost(program: LogicProgram) -> dict[frozenset, float]:
    """The cost as a multilinear polynomial in ``S``: monomial (a set of atom indices) -> coefficient."""
    poly: dict[frozenset, float] = {}
    for c in program.clauses:
        terms = {frozenset(): 1.0}
        for atom, e in c.literals:  # times (1 + e S_atom) / 2, with S^2 = 1
            i = program.index[atom]
            new: dict[frozenset, float] = {}
            for mono, coef in terms.items():
                for m2, c2 in ((mono, coef / 2), (mono ^ {i}, coef * e / 2)):
                    new[m2] = new.get(m2, 0.0) + c2
            terms = new
        for mono, coef in terms.items():
            poly[mono] = poly.get(mono, 0.0) + coef
    return poly


def _empty(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(n), np.zeros((n, n)), np.zeros((n, n, n))


def wan_abdullah(program: LogicProgram) -> HopfieldWeights:
    """Weights by matching the cost polynomial to the energy: ``J_T = -c_T / (|T| - 1)!``."""
    J = _empty(len(program.atoms))
    offset = 0.0
    for mono, coef in _bipolar_cost(program).items():
        if not mono:
            offset += coef
            continue
        value = -coef / math.factorial(len(mono) - 1)
        for idx in itertools.permutations(sorted(mono)):
            J[len(mono) - 1][idx] += value
    return HopfieldWeights(program.atoms, *J, offset=offset)


def hebbian(program: LogicProgram) -> HopfieldWeights:
    """Weights by unlearning each clause's falsifying event with the generalized Hebbian rule,
    ``dJ^(m) = -2^-n / (m-1)! * e x ... x e`` (outer products over the clause's literal positions)."""
    repeated = [
        Problem(f"clause {c}", "repeats an atom; Hebbian learning would need a self-coupling")
        for c in program.clauses
        if len({a for a, _ in c.literals}) < len(c.literals)
    ]
    if repeated:
        raise LogicProgramError(repeated)
    J = _empty(len(program.atoms))
    offset = 0.0
    for c in program.clauses:
        n = len(c.literals)
        offset += 2.0**-n
        for m in range(1, n + 1):
            rate = 2.0**-n / math.factorial(m - 1)
            for tup in itertools.permutations(c.literals, m):
                J[m - 1][tuple(program.index[a] for a, _ in tup)] -= rate * math.prod(e for _, e in tup)
    return HopfieldWeights(program.atoms, *J, offset=offset)


@dataclass(frozen=True, eq=False)
class PairwiseHopfield:
    """A binary Hopfield network ``E2(x) = -1/2 x^T W x - b^T x + c`` over ``x in {0, 1}``: the
    program's atoms (``x[:n_atoms]``, 1 = true) then one auxiliary neuron per cubic term.
    ``W`` ``[n, n]`` symmetric with zero diagonal, ``b`` ``[n]``, ``c``: the cost's units.
    ``triples[k]``: the atoms of auxiliary neuron ``k``."""

    atoms: tuple[str, ...]
    W: np.ndarray
    b: np.ndarray
    c: float
    triples: tuple[tuple[int, int, int], ...]

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)

    @property
    def n_aux(self) -> int:
        return len(self.triples)

    def energy(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return -0.5 * np.einsum("ij,...i,...j->...", self.W, x, x) - x @ self.b + self.c


def _binary_cost(weights: HopfieldWeights) -> dict[tuple[int, ...], float]:
    """The cost ``E(S) + offset`` in ``x = (S + 1)/2``: sorted index tuple -> coefficient."""
    n = len(weights.atoms)
    poly: dict[tuple[int, ...], float] = {(): weights.offset}
    # the energy's coefficient of prod_{i in T} S_i, over sets T
    bipolar = [((i,), -weights.J1[i]) for i in range(n)]
    bipolar += [((i, j), -weights.J2[i, j]) for i, j in itertools.combinations(range(n), 2)]
    bipolar += [((i, j, k), -2 * weights.J3[i, j, k]) for i, j, k in itertools.combinations(range(n), 3)]
    for mono, coef in bipolar:
        if coef == 0:
            continue
        for r in range(len(mono) + 1):  # prod (2 x - 1) = sum_U 2^|U| (-1)^(|T|-|U|) prod_U x
            for sub in itertools.combinations(mono, r):
                poly[sub] = poly.get(sub, 0.0) + coef * 2.0**r * (-1) ** (len(mono) - r)
    return poly


def pairwise(weights: HopfieldWeights) -> PairwiseHopfield:
    """The quadratic network with one auxiliary neuron per nonzero cubic term (see the module)."""
    n = len(weights.atoms)
    poly = _binary_cost(weights)
    cubic = [(m, a) for m, a in sorted(poly.items()) if len(m) == 3 and a != 0]
    N = n + len(cubic)
    Q = np.zeros((N, N))  # energy coefficient of x_i x_j, i < j
    lin = np.zeros(N)
    c = poly.get((), 0.0)
    for m, a in poly.items():
        if len(m) == 1:
            lin[m[0]] += a
        elif len(m) == 2:
            Q[m] += a
    for k, (m, a) in enumerate(cubic):
        w = n + k
        if a < 0:  # a w (x_i + x_j + x_k - 2)
            lin[w] += -2 * a
            for i in m:
                Q[i, w] += a
        else:  # a [w (1 - x_i - x_j - x_k) + x_i x_j + x_i x_k + x_j x_k]
            lin[w] += a
            for i in m:
                Q[i, w] -= a
            for i, j in itertools.combinations(m, 2):
                Q[i, j] += a
    W = -(Q + Q.T)
    return PairwiseHopfield(weights.atoms, W, -lin, c, tuple(m for m, _ in cubic))


def relax_async_third_order(weights: HopfieldWeights, S0: np.ndarray, orders: np.ndarray) -> tuple[np.ndarray, bool]:
    """The paper's relaxation on the third-order network: ``S_i = sign(h_i)`` one neuron at a time
    in ``orders`` ``[sweeps, n]`` (``h_i = 0`` keeps ``S_i``). Returns ``(S, converged)``:
    converged if the last sweep changed nothing."""
    S = np.array(S0, dtype=np.float64)
    changed = False
    for order in orders:
        changed = False
        for i in order:
            h = weights.field(S)[i]
            new = S[i] if h == 0 else (1.0 if h > 0 else -1.0)
            changed |= new != S[i]
            S[i] = new
    return S, not changed


def integer_scale(net: PairwiseHopfield) -> int:
    """The smallest power of two that makes every weight and bias an integer (they are dyadic)."""
    vals = np.concatenate([net.W.ravel(), net.b])
    for p in range(0, 31):
        if np.all(vals * 2**p == np.round(vals * 2**p)):
            return 2**p
    raise LogicProgramError([Problem("hopfield weights", "are not dyadic rationals with <= 30 fraction bits")])


def spiking_network(
    net: PairwiseHopfield, name: str = "hopfield_logic", self_coupling: int = 1, cue_weight: float | None = None
):
    """The pairwise network as LIF populations, one step per parallel update.

    Populations: ``cue`` (SpikeInput, ``2 n_atoms``: spike ``i`` sets atom ``i`` true, spike
    ``n_atoms + i`` false, in the step it arrives), ``one`` (a LIF that fires every step: the biases
    as weights), ``atoms`` and ``aux`` (LIF with ``tau_mem`` 0.01 ms, i.e. no memory at dt = 1 ms,
    delta synapses, ``v_th`` 0.5, reset to zero). Weights are ``W`` and ``b`` times
    :func:`integer_scale`, so the drive is an integer and ``v > 0.5`` is ``drive > 0``.
    ``self_coupling`` ``d`` (integer, in those scaled units) adds ``d x_i`` to neuron ``i``'s own
    drive: a neuron that is on stays on while ``drive >= 1 - d``, one that is off turns on at
    ``drive >= 1``. On binary states ``x_i^2 = x_i``, so it moves no energy minimum; ``d = 1`` is
    the asynchronous rule's "a zero field keeps the state", and it damps the 2-cycles of the
    parallel update (``d = 0``: the plain Little network).
    Every projection has the one-step latency, so the state of step ``t`` is computed from step
    ``t - 1``'s spikes, as in ``x(t) = [W x(t-1) + b > 0]``; ``one`` fires from step 1, so biases
    act from step 2 on (the cue should come at step 1 and the state is read from step 3).
    """
    from ..graph import LIF, Network, Population, Projection, SpikeInput

    s = integer_scale(net)
    n, m = net.n_atoms, net.n_aux
    if isinstance(self_coupling, bool) or not isinstance(self_coupling, int) or self_coupling < 0:
        why = f"self_coupling must be an integer >= 0, got {self_coupling!r}"
        raise LogicProgramError([Problem("spiking_network", why)])
    W, b = net.W * s + self_coupling * np.eye(n + m), net.b * s
    K = cue_weight if cue_weight is not None else float(np.abs(W).sum(axis=1).max() + np.abs(b).max() + 1)
    lif = LIF(tau_mem_ms=0.01, v_th=0.5, bias=0.0)
    g = Network(name=name, description="Hopfield network of a logic program (Wan Abdullah weights)")
    g.add(
        Population("cue", 2 * n, SpikeInput()),
        Population("one", 1, LIF(tau_mem_ms=0.01, v_th=0.5, bias=1.0)),
        Population("atoms", n, lif),
    )
    g.add(Projection("cue", "atoms", np.hstack([K * np.eye(n), -K * np.eye(n)])))
    g.add(Projection("one", "atoms", b[:n, None]))
    g.add(Projection("atoms", "atoms", W[:n, :n]))
    if m:
        g.add(Population("aux", m, lif))
        g.add(Projection("one", "aux", b[n:, None]))
        g.add(Projection("atoms", "aux", W[n:, :n]))
        g.add(Projection("aux", "atoms", W[:n, n:]))
        if self_coupling:
            g.add(Projection("aux", "aux", W[n:, n:]))
    return g


def cue_spikes(x0: np.ndarray, steps: int) -> np.ndarray:
    """Cue input ``[steps, batch, 2 n]`` that sets the atoms to ``x0`` ``[batch, n]`` (0/1) at step 2
    (row 0 is emitted at step 1 and arrives one step later)."""
    x0 = np.asarray(x0)
    out = np.zeros((steps, x0.shape[0], 2 * x0.shape[1]), dtype=np.uint8)
    out[0, :, : x0.shape[1]] = x0 == 1
    out[0, :, x0.shape[1] :] = x0 == 0
    return out


# Sequential (asynchronous) relaxation on a chip: one atom at a time, chosen by the host.
SEQ_PERIOD = 4  # steps per atom update: gate, state, auxiliary neurons, proposals
SEQ_FIRST = 3  # the first enable row (step 4): proposals are valid from step 4 on


def best_aux(net: PairwiseHopfield, x: np.ndarray) -> np.ndarray:
    """The auxiliary neurons' response to atoms ``x`` ``[..., n_atoms]``: ``[W_aux x + b_aux > 0]``."""
    n = net.n_atoms
    return (x @ net.W[n:, :n].T + net.b[n:] > 0).astype(np.float64)


def relax_sequential(net: PairwiseHopfield, x0: np.ndarray, orders: np.ndarray) -> tuple[np.ndarray, bool]:
    """The float form of :func:`sequential_network`: atoms updated one at a time in ``orders``
    ``[sweeps, n_atoms]`` (``x_i = [h_i > 0]``, ``h_i = 0`` keeps ``x_i``), the auxiliary neurons
    at their best response after each update. ``E2`` falls at every change, so it converges.
    Returns ``(x, converged)``: converged if the last sweep changed nothing."""
    n = net.n_atoms
    x = np.array(x0, dtype=np.float64)
    a = best_aux(net, x)
    changed = False
    for order in orders:
        changed = False
        for i in order:
            h = net.W[i, :n] @ x + net.W[i, n:] @ a + net.b[i]
            new = x[i] if h == 0 else float(h > 0)
            changed |= new != x[i]
            x[i] = new
            a = best_aux(net, x)
    return x, not changed


def sequential_network(net: PairwiseHopfield, name: str = "hopfield_logic_seq"):
    """The pairwise network as LIF populations that update one atom at a time, as the paper does.

    A parallel update of an attractor network can end in a 2-cycle; here the host chooses which
    atom updates (the ``enable`` input, one spike per update, :func:`enable_spikes`), and every
    synapse is pairwise:

    * ``prop`` (one per atom): ``p_i = [h_i + x_i >= 1]`` from the atoms, the auxiliary neurons
      and the always-on ``one`` (weights ``W``, ``b`` scaled to integers; ``+x_i``: a zero field
      keeps the state);
    * ``gate``: ``g_i = p_i and e_i`` (``v_th`` 1.5);
    * ``atoms``: ``x_i <- [x_i - e_i + 2 g_i > 0.5]``, i.e. ``x_i`` held by its self-synapse
      unless enabled, then ``p_i`` (the enable arrives one step later, beside the gate's spike);
    * ``aux``: ``[W_aux x + b_aux > 0]`` every step, always at its best response.

    An update takes :data:`SEQ_PERIOD` steps (gate, atom, aux, proposal). The dynamics are
    :func:`relax_sequential` exactly (tested)."""
    from ..graph import LIF, Network, Population, Projection, SpikeInput

    s = integer_scale(net)
    n, m = net.n_atoms, net.n_aux
    W, b = net.W * s, net.b * s
    eye = np.eye(n)
    K = float(np.abs(W).sum(axis=1).max() + np.abs(b).max() + 4)
    lif = LIF(tau_mem_ms=0.01, v_th=0.5)
    g = Network(name=name, description="Hopfield network of a logic program, sequential updates")
    g.add(
        Population("cue", 2 * n, SpikeInput()),
        Population("enable", n, SpikeInput()),
        Population("one", 1, LIF(tau_mem_ms=0.01, v_th=0.5, bias=1.0)),
        Population("atoms", n, lif),
        Population("prop", n, lif),
        Population("gate", n, LIF(tau_mem_ms=0.01, v_th=1.5)),
    )
    g.add(
        Projection("cue", "atoms", np.hstack([K * eye, -K * eye])),
        Projection("atoms", "atoms", eye),
        Projection("enable", "atoms", -eye, delay_steps=1),
        Projection("gate", "atoms", 2 * eye),
        Projection("atoms", "prop", W[:n, :n] + eye),
        Projection("one", "prop", b[:n, None]),
        Projection("prop", "gate", eye),
        Projection("enable", "gate", eye),
    )
    if m:
        g.add(Population("aux", m, lif))
        g.add(
            Projection("one", "aux", b[n:, None]),
            Projection("atoms", "aux", W[n:, :n]),
            Projection("aux", "prop", W[:n, n:]),
        )
    return g


def enable_spikes(orders: np.ndarray) -> np.ndarray:
    """The ``enable`` input ``[steps, batch, n]`` for update orders ``orders`` ``[batch, sweeps, n]``:
    update ``k`` of a trial is a spike in row ``SEQ_FIRST + SEQ_PERIOD k``; ``steps`` leaves room
    for the last update to reach the atoms and the auxiliary neurons."""
    orders = np.asarray(orders)
    batch, sweeps, n = orders.shape
    flat = orders.reshape(batch, sweeps * n)
    out = np.zeros((sequential_steps(sweeps, n), batch, n), dtype=np.uint8)
    rows = SEQ_FIRST + SEQ_PERIOD * np.arange(sweeps * n)
    out[rows[None, :], np.arange(batch)[:, None], flat] = 1
    return out


def sequential_steps(sweeps: int, n_atoms: int) -> int:
    """Steps of a sequential relaxation: the last update's atom state is in the last step."""
    return SEQ_FIRST + SEQ_PERIOD * (sweeps * n_atoms - 1) + 3


def random_program(n_atoms: int, n_clauses: int, rng: np.random.Generator, goal_fraction: float = 0.25) -> LogicProgram:
    """Random Horn clauses of 2 or 3 distinct atoms ``a0..`` (a rule ``head <- body`` or, with
    probability ``goal_fraction``, a goal ``<- body``), each kept only if a planted random
    assignment satisfies it, so the program is satisfiable (its global minimum cost is 0)."""
    planted = {f"a{i}": bool(v) for i, v in enumerate(rng.integers(0, 2, n_atoms))}
    clauses: list[Clause] = []
    while len(clauses) < n_clauses:
        atoms = [f"a{i}" for i in rng.choice(n_atoms, size=int(rng.integers(2, 4)), replace=False)]
        c = Clause(None, tuple(atoms)) if rng.random() < goal_fraction else Clause(atoms[0], tuple(atoms[1:]))
        if c.satisfied(planted):
            clauses.append(c)
    return LogicProgram(clauses)


__all__ = [
    "Clause",
    "HopfieldWeights",
    "LogicProgram",
    "LogicProgramError",
    "PairwiseHopfield",
    "cue_spikes",
    "hebbian",
    "integer_scale",
    "pairwise",
    "parse_clause",
    "random_program",
    "relax_async_third_order",
    "relax_sequential",
    "sequential_network",
    "enable_spikes",
    "sequential_steps",
    "best_aux",
    "spiking_network",
    "wan_abdullah",
]
