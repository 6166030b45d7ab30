"""A population larger than the neuron update's block (``kn._BLOCK`` neurons per pass)
records the same bits as the same neurons split into populations of at most one block each
(uniform and per-neuron constants), and a strict run names an overflowing neuron of a later
block by its index in the whole population."""

from __future__ import annotations

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator, EmulatorOverflowError
from neurocomp.kernels import neurons as kn

N_IN, STEPS, BATCH = 40, 60, 2
N = 2 * kn._BLOCK + kn._BLOCK // 2  # two whole blocks and a partial one


def _program(sizes, bias, vth=600) -> Program:
    """Spike inputs driving LIF neurons with biases ``bias``, held as populations of ``sizes``."""
    w = np.random.default_rng(0).integers(-100, 101, (N, N_IN)) * 2
    pops, projs, start = [QPopulation.spike_input("in", N_IN)], [], 0
    for k, n in enumerate(sizes):
        part = slice(start, start + n)
        b = tuple(int(x) for x in bias[part]) if np.ndim(bias) else bias
        pops.append(QPopulation.lif(f"r{k}", n, du=300, dv=200, vth=vth, bias_mant=b, bias_exp=6))
        projs.append(QProjection.from_mantissas(f"in->r{k}", "in", f"r{k}", w[part]))
        start += n
    return Program.from_parts(nc.load_profile("loihi2"), pops, projs, name="blocks")


def _run(prog: Program, strict: bool = False) -> dict[str, np.ndarray]:
    raster = (np.random.default_rng(1).random((STEPS, BATCH, N_IN)) < 0.2).astype(np.uint8)
    rec = Emulator(prog, batch=BATCH, strict=strict).run(STEPS, {"in": raster}, record=["spikes", "u", "v"])
    names = [p.name for p in prog.populations if p.name != "in"]
    return {var: np.concatenate([rec[f"{n}/{var}"] for n in names], axis=2) for var in ("spikes", "u", "v")}


@pytest.mark.parametrize("uniform", [True, False])
def test_one_population_in_blocks_equals_populations_of_one_block(uniform):
    bias = 30 if uniform else np.random.default_rng(2).integers(0, 60, N)
    got = _run(_program([N], bias))
    want = _run(_program([kn._BLOCK, kn._BLOCK, N - 2 * kn._BLOCK], bias))
    assert got["spikes"][:, :, 2 * kn._BLOCK :].any()  # the last block fired
    for var in want:
        np.testing.assert_array_equal(got[var], want[var], err_msg=var)


def test_strict_names_the_neuron_of_a_later_block():
    """Only neuron ``j`` (third block) has a bias; its threshold out of reach, its v leaves
    the 24-bit range: the error names neuron j, not its index within the block."""
    j = 2 * kn._BLOCK + 100
    bias = np.zeros(N, np.int64)
    bias[j] = 8000  # v -> 8000 * 2**6 / (1 - 0.951) > 2**23
    with pytest.raises(EmulatorOverflowError, match=f"v overflow at step \\d+, neuron {j}, trial 0"):
        _run(_program([N], bias, vth=131071), strict=True)
