"""Logic programs in Hopfield networks: weights checked against brute-force enumeration of the
clause cost, the auxiliary-neuron construction against the third-order energy on every
assignment, and the spiking network on the chips against the float reference, exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator
from neurocomp.reference.simulator import Reference
from neurocomp.rules import hopfield_logic as hl
from neurocomp.tasks import hopfield_logic as task_mod
from neurocomp.tasks import make


def _bipolar(n: int) -> np.ndarray:
    return np.array(list(itertools.product([-1, 1], repeat=n)), dtype=np.int64)


def _programs():
    """Hand-written programs (facts, goals, rules of 2 and 3 literals) and random ones."""
    yield hl.LogicProgram(["C <- A, B", "D <- B", "<- C"])  # the paper's example
    yield hl.LogicProgram(["A <-", "B <- A", "C <- A, B", "<- C, D", "D <- E", "E <- B"])
    for seed in range(6):
        yield hl.random_program(6, 5 + 2 * seed, np.random.default_rng(seed))


def test_wan_abdullah_weights_of_one_rule():
    # A <- B, C: cost (1 - S_A)(1 + S_B)(1 + S_C)/8, matched term by term to the energy
    w = hl.wan_abdullah(hl.LogicProgram(["A <- B, C"]))
    assert w.atoms == ("A", "B", "C")
    np.testing.assert_array_equal(w.J1, [1 / 8, -1 / 8, -1 / 8])
    np.testing.assert_array_equal(w.J2, [[0, 1 / 8, 1 / 8], [1 / 8, 0, -1 / 8], [1 / 8, -1 / 8, 0]])
    for perm in itertools.permutations(range(3)):
        assert w.J3[perm] == 1 / 16
    assert w.offset == 1 / 8
    assert np.count_nonzero(w.J3) == 6  # no entry with a repeated index


@pytest.mark.parametrize("program", list(_programs()), ids=lambda p: f"{len(p.atoms)}atoms-{len(p)}clauses")
def test_energy_is_clause_cost_on_every_assignment(program):
    S = _bipolar(len(program.atoms))
    cost = program.violated(S)  # truth tables, independent of the polynomial
    for weights in (hl.wan_abdullah(program), hl.hebbian(program)):
        # dyadic rationals summed in float64: exact
        np.testing.assert_array_equal(weights.energy(S) + weights.offset, cost)


@pytest.mark.parametrize("program", list(_programs()), ids=lambda p: f"{len(p.atoms)}atoms-{len(p)}clauses")
def test_hebbian_equals_wan_abdullah(program):
    wa, he = hl.wan_abdullah(program), hl.hebbian(program)
    for a, b in ((wa.J1, he.J1), (wa.J2, he.J2), (wa.J3, he.J3)):
        np.testing.assert_array_equal(a, b)  # sums of dyadic rationals: exact in float64
    assert wa.offset == he.offset


def test_repeated_atom_where_hebbian_differs():
    program = hl.LogicProgram(["A <- B, B", "C <- C"])
    w = hl.wan_abdullah(program)  # S_B^2 = 1: the clause is A <- B; C <- C costs nothing
    S = _bipolar(3)
    np.testing.assert_array_equal(w.energy(S) + w.offset, program.violated(S))
    assert np.all(w.J3 == 0) and w.J1[program.index["C"]] == 0
    with pytest.raises(hl.LogicProgramError, match="repeats an atom"):
        hl.hebbian(program)


@pytest.mark.parametrize("program", list(_programs()), ids=lambda p: f"{len(p.atoms)}atoms-{len(p)}clauses")
def test_auxiliary_neurons_reproduce_third_order_energy(program):
    weights = hl.wan_abdullah(program)
    pw = hl.pairwise(weights)
    n, m = pw.n_atoms, pw.n_aux
    assert m == np.count_nonzero(weights.J3) // 6  # one auxiliary neuron per cubic term
    assert np.array_equal(pw.W, pw.W.T) and not np.any(np.diag(pw.W))
    assert not np.any(pw.W[n:, n:])  # auxiliary neurons couple to atoms only
    assert n + m <= 18  # small enough to enumerate
    X = np.array(list(itertools.product([0, 1], repeat=n + m)), dtype=np.float64)
    E2 = pw.energy(X).reshape(2**n, 2**m)  # atoms are the leading bits: one row per atom assignment
    atoms = X[:: 2**m, :n]
    third_order = weights.energy(2 * atoms - 1) + weights.offset
    np.testing.assert_array_equal(E2.min(axis=1), third_order)  # dyadic: exact


def test_bad_clauses_are_named():
    with pytest.raises(hl.LogicProgramError, match=r"clause 0 \(A <- B, C, D\).*4 literals.*1 to 3"):
        hl.LogicProgram(["A <- B, C, D"])
    with pytest.raises(hl.LogicProgramError, match="expected 'head <- body1, body2'"):
        hl.parse_clause("A and B")
    with pytest.raises(hl.LogicProgramError, match="self_coupling"):
        hl.spiking_network(hl.pairwise(hl.wan_abdullah(hl.LogicProgram(["A <- B"]))), self_coupling=-1)


def _parallel_oracle(pw: hl.PairwiseHopfield, x0: np.ndarray, steps: int, d: int) -> np.ndarray:
    """Test oracle, an independent re-implementation of the spiking network's dynamics: atoms
    and aux ``x(t) = [s W x(t-1) + d x(t-1) + s b [t >= 2] >= 1]``, cued at step 2 (index 1)."""
    s = hl.integer_scale(pw)
    W, b = pw.W * s + d * np.eye(len(pw.b)), pw.b * s
    n = pw.n_atoms
    out = np.zeros((steps, x0.shape[0], len(b)), dtype=np.uint8)
    for t in range(1, steps):
        drive = out[t - 1] @ W.T + (b if t >= 2 else 0)
        out[t] = drive >= 1
        if t == 1:
            out[t, :, :n] = x0
    return out


def test_parallel_relaxation_float_and_chips():
    task = make("hopfield-logic", seed=3, n_atoms=8, n_clauses=12, batch=16, steps=20, schedule="parallel")
    program = task_mod.program_of(task)
    pw = hl.pairwise(hl.wan_abdullah(program))
    net = hl.spiking_network(pw)
    cue = {"cue": task.inputs.astype(np.uint8)}
    ref = Reference(net, batch=task.batch).run(task.steps, inputs=cue, record=["spikes"])
    oracle = _parallel_oracle(pw, np.asarray(task.config["x0"]), task.steps, d=1)
    np.testing.assert_array_equal(ref["atoms/spikes"], oracle[:, :, : pw.n_atoms])
    np.testing.assert_array_equal(ref["aux/spikes"], oracle[:, :, pw.n_atoms :])
    for profile in ("loihi2", "spinnaker2"):
        rec = Emulator(nc.compile(net, profile), batch=task.batch).run(task.steps, inputs=cue, record=["spikes"])
        for pop in ("atoms", "aux"):
            np.testing.assert_array_equal(rec[f"{pop}/spikes"], ref[f"{pop}/spikes"], err_msg=f"{profile} {pop}")
    # a fixed point of the spiking run is one of the asynchronous rule (no neuron wants to flip)
    last = np.concatenate([ref["atoms/spikes"][-1], ref["aux/spikes"][-1]], axis=1).astype(np.float64)
    fixed = np.all(oracle[-1] == oracle[-2], axis=1)
    h = last @ pw.W.T + pw.b
    assert fixed.any()
    wants_flip = ((h > 0) & (last == 0)) | ((h < 0) & (last == 1))
    assert not wants_flip[fixed].any()
    ratio = task.score(ref["atoms/spikes"])
    satisfied = program.violated(2 * ref["atoms/spikes"][-1].astype(np.int64) - 1) == 0
    assert ratio == np.mean(satisfied & fixed)


def test_task_is_deterministic_and_satisfiable():
    a, b = make("hopfield-logic", seed=5), make("hopfield-logic", seed=5)
    assert a.config["clauses"] == b.config["clauses"] and np.array_equal(a.inputs, b.inputs)
    program = task_mod.program_of(a)
    assert len(program) == a.config["n_clauses"]
    assert program.violated(_bipolar(len(program.atoms))).min() == 0  # the planted assignment exists
    # the paper's relaxation on a satisfied start stays there (a global minimum is stable)
    S = _bipolar(len(program.atoms))
    sat = S[program.violated(S) == 0][0].astype(np.float64)
    orders = np.asarray(a.config["orders"][0])
    out, converged = hl.relax_async_third_order(hl.wan_abdullah(program), sat, orders)
    assert converged and program.violated(out) == 0
    x, converged = hl.relax_sequential(hl.pairwise(hl.wan_abdullah(program)), (sat + 1) / 2, orders)
    assert converged and np.array_equal(2 * x - 1, sat)


def test_sequential_relaxation_float_and_chips():
    task = make("hopfield-logic", seed=2, n_atoms=8, n_clauses=14, batch=12, sweeps=3)
    program = task_mod.program_of(task)
    pw = hl.pairwise(hl.wan_abdullah(program))
    x0, orders = np.asarray(task.config["x0"]), np.asarray(task.config["orders"])
    final = [hl.relax_sequential(pw, x, o) for x, o in zip(x0, orders, strict=True)]
    net, inputs = task_mod.network_of(task), task_mod.inputs_of(task)
    assert {p.name for p in net.populations} >= {"atoms", "aux", "prop", "gate", "enable"}
    ref = Reference(net, batch=task.batch).run(task.steps, inputs=inputs, record=["spikes"])["atoms/spikes"]
    # the spiking schedule is the float sequential relaxation: the same final state in every trial
    np.testing.assert_array_equal(ref[-1], np.array([x for x, _ in final]))
    # the cue sets the state, and the first enabled atom updates two steps after its enable spike
    first = hl.relax_sequential(pw, x0[0], orders[0][:1, :1])[0]
    np.testing.assert_array_equal(ref[hl.SEQ_FIRST + 2, 0], first)
    np.testing.assert_array_equal(ref[1, 0], x0[0])  # the cue
    for profile in ("loihi2", "spinnaker2"):
        rec = Emulator(nc.compile(net, profile), batch=task.batch).run(task.steps, inputs=inputs, record=["spikes"])
        np.testing.assert_array_equal(rec["atoms/spikes"], ref, err_msg=profile)
    expected = np.mean([c and program.violated(2 * x - 1) == 0 for x, c in final])
    assert task.score(ref) == expected
