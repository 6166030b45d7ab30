"""Differential tests of convolutions: the emulator against Lava 0.10.0's ``Conv``
(``PyConvModelFixed``) feeding ``LIF`` (``PyLifModelBitAcc``), exact integer equality of
``u``, ``v`` and the spikes on every step; and the convolutions Lava's Conv cannot run."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.backends import BackendError
from neurocomp.backends.lava import LavaBackend
from neurocomp.compiler.program import Program
from neurocomp.graph import conv_projection, pool_projection
from tests.lava_compare import assert_same, run_both

pytestmark = pytest.mark.lava

GEOMETRIES = [  # input_shape, C_out, kernel (x, y), stride, padding, groups
    ((6, 6, 1), 2, (3, 3), 1, 0, 1),
    ((7, 5, 2), 4, (3, 2), (2, 1), (1, 0), 2),
    ((5, 6, 3), 2, (2, 3), (1, 2), 1, 1),
]


def _network(ins, c_out, k, stride, padding, groups, seed=0) -> nc.Network:
    """A convolution of an input image onto LIF neurons, then 2x1 pooling of its output."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.1, 0.6, (c_out, *k, ins[2] // groups))
    conv = conv_projection("img", "s1", kernel, ins, stride, padding, groups, name="S1")
    out = conv.geometry.output_shape
    pool_x = 2 if out[0] >= 2 else 1
    c1 = ((out[0] - pool_x) // pool_x + 1) * out[1] * out[2]
    lif = nc.LIF(tau_mem_ms=10.0, tau_syn_ms=4.0, v_th=1.0)
    net = nc.Network(
        [
            nc.Population("img", int(np.prod(ins)), nc.SpikeInput()),
            nc.Population("s1", int(np.prod(out)), lif),
            nc.Population("c1", c1, dataclasses.replace(lif, v_th=0.6)),
        ]
    )
    net.add_projection(conv)
    net.add_projection(pool_projection("s1", "c1", out, (pool_x, 1), name="C1"))
    return net


@pytest.mark.parametrize("case", GEOMETRIES)
def test_conv_and_pool_match_lava(case):
    program = nc.compile(_network(*case), "loihi2", out=io.StringIO())
    n_in = program.population("img").size
    x = (np.random.default_rng(5).random((30, n_in)) < 0.35).astype(np.uint8)
    emu, lava = run_both(program, 30, inputs={"img": x})
    assert emu["s1/spikes"].sum() > 0 and emu["c1/spikes"].sum() > 0  # both layers spike: not vacuous
    assert int(np.abs(emu["s1/u"]).max()) > 0
    assert_same(emu, lava)


def test_weight_exponent_and_truncation_fold_into_lava_weights():
    """A kernel with a positive exponent and 6 weight bits (Dense would truncate two LSBs on
    its first step): Lava's Conv gets the emulator's truncated mantissas << exponent."""
    program = nc.compile(_network(*GEOMETRIES[0], seed=2), "loihi2", out=io.StringIO())
    pr = program.projection("S1")
    odd = pr.weights | 1  # every mantissa has LSBs the chip must drop
    pr6 = dataclasses.replace(pr, weights=odd, num_weight_bits=6, weight_exp=2, sign_mode="mixed")
    program = Program.from_parts(program.profile, list(program.populations), [pr6, program.projection("C1")])
    x = (np.random.default_rng(6).random((25, 36)) < 0.4).astype(np.uint8)
    emu, lava = run_both(program, 25, inputs={"img": x})
    assert emu["s1/spikes"].sum() > 0
    assert_same(emu, lava)


def test_conv_lava_cannot_run_is_named():
    program = nc.compile(_network(*GEOMETRIES[0]), "loihi2", out=io.StringIO())
    pr = program.projection("S1")
    for proj, message in [
        (dataclasses.replace(pr, weight_exp=-1), r"projection 'S1': weight_exp -1 < 0: Lava's Conv has no weight exp"),
        (dataclasses.replace(pr, delay_steps=2), r"projection 'S1': delay 2: Lava's Conv has no synaptic delay"),
    ]:
        p = Program.from_parts(program.profile, list(program.populations), [proj, program.projection("C1")])
        with pytest.raises(BackendError, match=message):
            LavaBackend(p)


def test_conv_sum_that_would_wrap_is_refused():
    """288 inputs of 255 << 7 sum to 9 400 320 > 2**23 - 1, where Lava's Conv wraps (the
    compiler refuses such kernels; a hand-edited Program reaches the backend)."""
    net = nc.Network([nc.Population("img", 288, nc.SpikeInput()), nc.Population("s", 1, nc.LIF(tau_mem_ms=20.0))])
    net.add_projection(conv_projection("img", "s", np.full((1, 6, 6, 8), 0.01), (6, 6, 8), name="S"))
    program = nc.compile(net, "loihi2", out=io.StringIO())
    pr = program.projection("S")
    assert pr.sign_mode == "excitatory"
    big = dataclasses.replace(pr, weights=np.full_like(pr.weights, 255), weight_exp=7, num_weight_bits=8)
    p = Program.from_parts(program.profile, list(program.populations), [big])
    with pytest.raises(BackendError, match=r"projection 'S': summed input reaches \[0, 9400320\]: Lava's Conv wraps"):
        LavaBackend(p)
