"""The neuron update's uniform path (a population whose neurons share their leak factors and
bias reads them once per step, not per neuron) records the same bits as the per-neuron path,
and a population whose biases differ takes the per-neuron path."""

from __future__ import annotations

import numpy as np

import neurocomp as nc
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator
from neurocomp.kernels import neurons as kn

N, STEPS = 64, 120


def _program(bias, recurrent: bool = True) -> Program:
    pop = QPopulation.lif("rec", N, du=300, dv=200, vth=60, bias_mant=bias, bias_exp=6)
    projs = []
    if recurrent:
        w = np.random.default_rng(0).integers(-60, 61, (N, N)) * 2
        projs.append(QProjection.from_mantissas("rec->rec", "rec", "rec", w))
    return Program.from_parts(nc.load_profile("loihi2"), [pop], projs, name="uniform")


def _run(prog: Program, uniform: int | None = None):
    emu = Emulator(prog, batch=2)
    if uniform is not None:
        emu._pop_table[:, kn.P_UNIFORM] = uniform
    return emu, emu.run(STEPS, record=["spikes", "u", "v"])


def test_uniform_path_equals_per_neuron_path():
    prog = _program(bias=40)
    emu, got = _run(prog)
    assert emu._pop_table[0, kn.P_UNIFORM] == 1
    _, want = _run(prog, uniform=0)
    assert got["rec/spikes"].any() and not got["rec/spikes"].all()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_differing_biases_take_the_per_neuron_path():
    """Without synapses each neuron follows its own bias: the even neurons (bias 0) stay at
    rest and the odd ones (bias 40) trace exactly a uniform population of bias 40."""
    emu, got = _run(_program(np.tile([0, 40], N // 2), recurrent=False))
    assert emu._pop_table[0, kn.P_UNIFORM] == 0
    _, ref = _run(_program(40, recurrent=False))
    assert ref["rec/spikes"].any()
    for key in ("rec/spikes", "rec/u", "rec/v"):
        np.testing.assert_array_equal(got[key][:, :, 1::2], ref[key][:, :, 1::2], err_msg=key)
        assert not got[key][:, :, 0::2].any(), key
