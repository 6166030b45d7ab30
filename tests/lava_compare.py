"""Comparing the emulator with Lava 0.10.0, shared by the differential tests: running a Program
on both, exact equality of every recorded array with the first mismatch located, and the
worked example of Lava's fixed-point LIF and Dense (``loihi2-fixed-point.md`` section 6.1),
defined once. Lava is imported only by :func:`run_both`, so the Lava-free tests can use the
table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator

RECORD = ("spikes", "v", "u")


def first_mismatch(emu: Mapping[str, np.ndarray], lava: Mapping[str, np.ndarray]) -> str:
    """The earliest step at which any recorded variable differs (exactly: no cast), located
    precisely: ``[step, trial, index...]`` arrays, keys and shapes both runs share."""
    best = None
    for key in sorted(emu):
        if key not in lava or np.shape(emu[key]) != np.shape(lava[key]):
            continue
        diff = np.argwhere(np.asarray(emu[key]) != np.asarray(lava[key]))
        if diff.size and (best is None or diff[0][0] < best[0]):
            best = (int(diff[0][0]), key, tuple(int(i) for i in diff[0]))
    if best is None:
        return "no mismatch"
    step, key, idx = best
    return (
        f"first mismatch at step {step + 1} (1-based), {key} [trial, index] {list(idx[1:])}: "
        f"emulator {emu[key][idx]!r}, Lava {lava[key][idx]!r}"
    )


def assert_same(emu: Mapping[str, np.ndarray], lava: Mapping[str, np.ndarray], what: str = "") -> None:
    """Exact equality of every recorded array: same keys, same shapes, same values."""
    assert sorted(emu) == sorted(lava), what
    for key in sorted(emu):
        assert np.shape(emu[key]) == np.shape(lava[key]), f"{what} {key}: {np.shape(emu[key])} vs {np.shape(lava[key])}"
    where = first_mismatch(emu, lava)
    assert where == "no mismatch", f"{what}\n{where}"


def run_both(
    program: Program, steps: int, inputs=None, batch: int = 1, record: Sequence[str] = RECORD, learn: bool = False
):
    """The same run on the emulator and on Lava: ``(emulator, lava)`` recordings. With
    ``learn``, each trial learns its own weights on both."""
    from neurocomp.backends.lava import LavaBackend

    emu = Emulator(program, batch=batch, learn_mode="independent")
    ours = emu.run(steps, inputs=inputs, record=list(record), learn=learn)
    theirs = LavaBackend(program).run(steps, inputs=inputs, batch=batch, record=list(record), learn=learn)
    return ours, theirs


# -- the worked case of the reference (section 6.1), measured in Lava ---------------------------


def table_6_1_program() -> Program:
    """Two LIF populations A (3 neurons, biases only) and B (2) joined by a mixed-sign Dense."""
    a = QPopulation.lif("A", 3, du=410, dv=205, vth=10, bias_mant=[300, 170, 90], bias_exp=[0, 1, 2])
    b = QPopulation.lif("B", 2, du=1024, dv=512, vth=100, bias_mant=[-20, 5], bias_exp=0)
    w = QProjection.from_mantissas("A->B", "A", "B", [[37, -51, 128], [-3, 255, 17]], weight_exp=-2)
    return Program.from_parts("loihi2", [a, b], [w])


# step: (vA, sA, uB, vB, sB), recorded after the reset; uA stays 0 (A has no input)
TABLE_6_1 = {
    1: ([300, 340, 360], [0, 0, 0], [0, 0], [-20, 5], [0, 0]),
    2: ([584, 0, 0], [0, 1, 1], [0, 0], [-37, 9], [0, 0]),
    3: ([0, 340, 360], [1, 0, 0], [1216, 4288], [1164, 4300], [0, 0]),
    4: ([300, 0, 0], [0, 1, 1], [1487, 3150], [2485, 0], [0, 1]),
    5: ([584, 340, 360], [0, 0, 0], [2330, 6649], [4484, 0], [0, 1]),
    6: ([0, 0, 0], [1, 1, 1], [1746, 4985], [5649, 4990], [0, 0]),
    7: ([300, 340, 360], [0, 0, 0], [3101, 7961], [0, 0], [1, 1]),
    8: ([584, 0, 0], [0, 1, 1], [2324, 5968], [2304, 5973], [0, 0]),
    9: ([0, 340, 360], [1, 0, 0], [2958, 8762], [4954, 0], [0, 1]),
    10: ([300, 0, 0], [0, 1, 1], [2793, 6505], [0, 0], [1, 1]),
    11: ([584, 340, 360], [0, 0, 0], [3310, 9165], [3290, 0], [0, 1]),
    12: ([0, 0, 0], [1, 1, 1], [2481, 6871], [5339, 0], [0, 1]),
    13: ([300, 340, 360], [0, 0, 0], [3652, 9375], [0, 0], [1, 1]),
    14: ([584, 0, 0], [0, 1, 1], [2738, 7028], [2718, 0], [0, 1]),
    15: ([0, 340, 360], [1, 0, 0], [3268, 9557], [5626, 0], [0, 1]),
    16: ([300, 0, 0], [0, 1, 1], [3026, 7101], [0, 0], [1, 1]),
    17: ([584, 340, 360], [0, 0, 0], [3484, 9612], [3464, 0], [0, 1]),
    18: ([0, 0, 0], [1, 1, 1], [2612, 7206], [5623, 0], [0, 1]),
    19: ([300, 340, 360], [0, 0, 0], [3750, 9626], [0, 0], [1, 1]),
    20: ([584, 0, 0], [0, 1, 1], [2811, 7217], [2791, 0], [0, 1]),
}
TABLE_6_1_COLUMNS = {"A/v": 0, "A/spikes": 1, "B/u": 2, "B/v": 3, "B/spikes": 4}


def assert_table_6_1(rec: Mapping[str, np.ndarray], steps: int, who: str = "emulator") -> None:
    """``rec`` (trial 0 of :func:`table_6_1_program`'s run) holds the table's first ``steps`` rows."""
    assert len(rec["A/v"]) == steps <= len(TABLE_6_1), (len(rec["A/v"]), steps)
    for key, col in TABLE_6_1_COLUMNS.items():
        expected = np.array([TABLE_6_1[t][col] for t in range(1, steps + 1)])
        np.testing.assert_array_equal(rec[key][:steps, 0], expected, err_msg=f"{who} {key} vs the table")
    np.testing.assert_array_equal(rec["A/u"][:steps], 0)
