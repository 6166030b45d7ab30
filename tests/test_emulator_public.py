"""The Emulator's public accessors that other packages use in place of its private state
(the ReckOn RTL backend reads the chip image and the run's inputs through them)."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator, EmulatorError
from tests.conftest import ROOT
from tests.test_reckon_rule import reckon_program


def ei_program() -> nc.Program:
    return nc.compile(nc.load_network(ROOT / "examples" / "models" / "recurrent_ei.yaml"), "loihi2", out=io.StringIO())


def test_run_inputs_are_the_spikes_the_run_uses():
    prog = ei_program()
    drawn = Emulator(prog, batch=2).run_inputs({}, 30)["in"]  # the frozen Poisson draws
    assert drawn.shape == (30, 2, prog.population("in").size) and drawn.sum() > 0
    np.testing.assert_array_equal(drawn, Emulator(prog, batch=2).run(30)["in/spikes"])
    given = np.zeros((30, prog.population("in").size), np.int64)
    np.testing.assert_array_equal(Emulator(prog).run_inputs({"in": given}, 30)["in"], given[:, None])
    with pytest.raises(EmulatorError, match=r"shape \(5, 2\)"):
        Emulator(prog).run_inputs({"in": np.zeros((5, 2))}, 5)


def test_reckon_core_is_the_chip_on_reckon_only():
    prog = reckon_program()
    core = Emulator(prog, seed=3).reckon_core
    assert core is not None and core.chip.n_rec == 30 and "weights_input" in core.rand.seeds
    assert Emulator(prog, learn_float=("weights",)).reckon_core is None  # attribution runs the learner, not the core
    assert Emulator(ei_program()).reckon_core is None
