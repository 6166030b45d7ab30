"""Convolution and pooling projections: the expansion against a direct convolution, YAML and
Program round-trips, named errors, the quantizer per kernel, the partitioner's shared-kernel
count, and the emulator's delivery (the expansion on the sparse path) in fixed and float."""

from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator
from neurocomp.graph import ConvProjection, conv_projection, pool_projection


def direct_conv(img: np.ndarray, kernel: np.ndarray, stride, padding, groups: int) -> np.ndarray:
    """Test oracle, an independent re-implementation: Lava's true convolution (kernel flipped)
    of an ``(X, Y, C_in)`` image, written as loops over output pixels."""
    co_n, kx, ky, cg = kernel.shape
    x = np.pad(img, ((padding[0],) * 2, (padding[1],) * 2, (0, 0)))
    xo = (x.shape[0] - kx) // stride[0] + 1
    yo = (x.shape[1] - ky) // stride[1] + 1
    out = np.zeros((xo, yo, co_n))
    flipped = kernel[:, ::-1, ::-1, :]
    for co in range(co_n):
        g = co // (co_n // groups)
        for i in range(xo):
            for j in range(yo):
                patch = x[i * stride[0] : i * stride[0] + kx, j * stride[1] : j * stride[1] + ky, g * cg : (g + 1) * cg]
                out[i, j, co] = np.sum(patch * flipped[co])
    return out


CASES = [  # input_shape, kernel_shape, stride, padding, groups
    ((6, 6, 1), (2, 3, 3, 1), (1, 1), (0, 0)),
    ((7, 5, 2), (4, 3, 2, 1), (2, 1), (1, 0), 2),
    ((5, 6, 3), (2, 2, 3, 3), (1, 2), (1, 1)),
    ((8, 8, 1), (1, 5, 5, 1), (3, 3), (2, 2)),
]


@pytest.mark.parametrize("case", CASES)
def test_expansion_is_the_convolution(case):
    ins, ks, stride, padding, *groups = case
    rng = np.random.default_rng(1)
    kernel = rng.integers(-9, 10, ks).astype(float)  # integers: every sum below is exact in float64
    proj = conv_projection("a", "b", kernel, ins, stride, padding, groups[0] if groups else 1, name="c")
    img = rng.integers(0, 2, ins).astype(float)
    got = np.zeros(proj.shape[0])
    w = proj.weights
    np.add.at(got, w.rows, w.values * img.ravel()[w.cols])
    want = direct_conv(img, kernel, stride, padding, groups[0] if groups else 1)
    assert proj.geometry.output_shape == want.shape
    np.testing.assert_array_equal(got, want.ravel())  # exact: small integers


def test_pool_sums_each_window_of_each_channel():
    img = np.arange(4 * 6 * 2, dtype=float).reshape(4, 6, 2)
    proj = pool_projection("a", "b", (4, 6, 2), (2, 3), weight=0.5)
    got = np.zeros(proj.shape[0])
    np.add.at(got, proj.weights.rows, proj.weights.values * img.ravel()[proj.weights.cols])
    want = 0.5 * img.reshape(2, 2, 2, 3, 2).sum(axis=(1, 3))
    np.testing.assert_array_equal(got, want.ravel())  # exact: halves of small integers


def hierarchy(kernel_scale: float = 0.5, seed: int = 0) -> nc.Network:
    """S1: two 3x3 kernels over a 6x6 image; C1: 2x2 pooling of each channel."""
    k = np.random.default_rng(seed).normal(0, kernel_scale, (2, 3, 3, 1))
    net = nc.Network(
        [
            nc.Population("img", 36, nc.SpikeInput()),
            nc.Population("s1", 32, nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=1.0)),
            nc.Population("c1", 8, nc.LIF(tau_mem_ms=20.0, tau_syn_ms=5.0, v_th=0.5)),
        ]
    )
    net.add_projection(conv_projection("img", "s1", k, (6, 6, 1), name="S1"))
    net.add_projection(pool_projection("s1", "c1", (4, 4, 2), 2, name="C1"))
    return net


def test_yaml_round_trip(tmp_path):
    net = hierarchy()
    path = tmp_path / "conv.yaml"
    nc.save_network(net, path)
    text = path.read_text()
    assert "conv:" in text and "weights:" not in text.split("projections:")[1]  # the kernel, not its expansion
    back = nc.load_network(path)
    for name in ("S1", "C1"):
        a, b = net.projection(name), back.projection(name)
        assert isinstance(b, ConvProjection) and b.geometry == a.geometry
        np.testing.assert_array_equal(b.kernel, a.kernel)  # exact: float64 written in full
        assert b == a


def test_yaml_pool_entry(tmp_path):
    path = tmp_path / "pool.yaml"
    path.write_text(
        "neurocomp: 1\nname: p\npopulations:\n  - {name: a, size: 16, neuron: {model: SpikeInput}}\n"
        "  - {name: b, size: 4, neuron: {model: LIF, tau_mem_ms: 10}}\n"
        "projections:\n  - {name: P, pre: a, post: b, pool: {input_shape: [4, 4, 1], size: 2, weight: 0.25}}\n"
    )
    pr = nc.load_network(path).projection("P")
    assert pr.geometry.output_shape == (2, 2, 1) and pr.weights.nnz == 16
    assert set(pr.weights.values.tolist()) == {0.25}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"stride": 0}, "projection 'S1': stride: (0, 0) must be >= 1"),
        ({"padding": (0, -1)}, "projection 'S1': padding: (0, -1) must be >= 0"),
        ({"groups": 3}, "groups: 3 does not divide the 1 input and 2 output channels"),
        ({"input_shape": (2, 6, 1)}, "kernel: 3 pixels along x exceed the padded input's 2"),
    ],
)
def test_bad_geometry_is_named(kw, message):
    args = {"input_shape": (6, 6, 1), **kw}
    with pytest.raises(nc.ModelError, match=r".*".join(map(_esc, message.split("(")))):
        conv_projection("img", "s1", np.ones((2, 3, 3, 1)), name="S1", **args)


def _esc(s: str) -> str:
    return re.escape(s)


def test_wrong_population_size_names_the_image():
    net = nc.Network([nc.Population("img", 36, nc.SpikeInput()), nc.Population("s1", 30, nc.LIF(tau_mem_ms=20.0))])
    with pytest.raises(nc.ModelError, match=r"projection 'S1': conv: output image \(4, 4, 2\) has 32 neurons, "
                       r"population 's1' has 30"):  # fmt: skip
        net.add_projection(conv_projection("img", "s1", np.ones((2, 3, 3, 1)), (6, 6, 1), name="S1"))


def test_a_conv_refuses_weights_and_plasticity_but_survives_replace():
    c = conv_projection("img", "s1", np.ones((2, 3, 3, 1)), (6, 6, 1), name="S1")
    assert dataclasses.replace(c, name="T").weights.nnz == c.weights.nnz  # replace hands back the expansion
    with pytest.raises(nc.ModelError, match="a convolution's weights are its kernel's expansion"):
        dataclasses.replace(c, weights=nc.SparseWeights(c.shape, c.weights.rows, c.weights.cols, c.weights.values * 2))
    with pytest.raises(nc.ModelError, match="plasticity: rule 'stdp' on a shared kernel is not supported"):
        conv_projection("img", "s1", np.ones((2, 3, 3, 1)), (6, 6, 1), name="S1", plasticity=nc.RuleSpec("stdp", {}))


def test_yaml_bad_conv_entry_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "neurocomp: 1\nname: p\npopulations:\n  - {name: a, size: 16, neuron: {model: SpikeInput}}\n"
        "  - {name: b, size: 4, neuron: {model: LIF, tau_mem_ms: 10}}\n"
        "projections:\n  - {name: P, pre: a, post: b, conv: {input_shape: [4, 4, 1], kernel: [[[[1]]]], sride: 2}}\n"
    )
    with pytest.raises(nc.ModelError, match=r"projection 'P'.*conv: unknown keys \['sride'\]"):
        nc.load_network(path)


# -- compiled: quantizer per kernel, partitioner, emulator delivery ---------------------------


def _compile(net, profile):
    return nc.compile(net, profile, out=io.StringIO())


@pytest.mark.parametrize("profile", ["loihi2", "spinnaker2"])
def test_quantizer_rounds_the_kernel_once(profile):
    program = _compile(hierarchy(), profile)
    pr = program.projection("S1")
    g = pr.conv.geometry
    assert pr.conv.mantissas.shape == g.kernel_shape
    rows, cols, kidx = g.expand()
    np.testing.assert_array_equal(pr.weights, pr.conv.mantissas.ravel()[kidx])  # every position shares the kernel
    np.testing.assert_array_equal(pr.rows, rows)
    e = np.asarray(pr.weight_exp)
    if e.ndim:  # spinnaker2: one exponent per kernel (output channel), the same at every position
        assert e.shape == (g.n_post,)
        np.testing.assert_array_equal(e.reshape(-1, g.kernel_shape[0]), np.broadcast_to(e[:2], (16, 2)))
    else:
        assert e >= 0  # loihi2's Conv has no weight exponent: only exact left shifts fold into its weights
    assert program.projection("C1").conv.mantissas.shape == (2, 2, 2, 1)


def test_program_round_trip_keeps_the_kernel(tmp_path):
    program = _compile(hierarchy(), "loihi2")
    program.save(tmp_path / "p")
    back = Program.load(tmp_path / "p")
    a, b = program.projection("S1"), back.projection("S1")
    assert b.conv.geometry == a.conv.geometry
    np.testing.assert_array_equal(b.conv.mantissas, a.conv.mantissas)
    np.testing.assert_array_equal(b.weights, a.weights)


def _memory_bits(program: Program) -> int:
    return int(program.placement.core_memory_bits.sum())


def _expanded(net: nc.Network) -> nc.Network:
    """The same network with every convolution replaced by a plain sparse projection of its expansion."""
    projs = [nc.Projection(p.pre, p.post, p.weights, name=p.name) for p in net.projections]
    return nc.Network(list(net.populations), projs)


def test_partitioner_counts_a_shared_kernel_once_on_loihi2():
    net = hierarchy()
    enc = nc.load_profile("loihi2").capacity.synapse_encoding
    shared, expanded = _compile(net, "loihi2"), _compile(_expanded(net), "loihi2")
    assert [b.population for b in shared.placement.blocks] == ["s1", "c1"]  # one block each: one kernel each
    assert _memory_bits(shared) == (2 * 3 * 3 * 1 + 2 * 2 * 2 * 1) * enc.weight_bits  # S1's and C1's kernels
    n_syn = net.projection("S1").weights.nnz + net.projection("C1").weights.nnz
    assert _memory_bits(expanded) == n_syn * enc.sparse_bits
    # where the chip has no convolutional connectivity the convolution is its expansion
    assert nc.load_profile("spinnaker2").capacity.convolution is None
    assert _memory_bits(_compile(net, "spinnaker2")) == _memory_bits(_compile(_expanded(net), "spinnaker2"))


@pytest.mark.parametrize("profile", ["loihi2", "spinnaker2"])  # fixed and float32 arithmetic
def test_emulator_delivers_the_convolution(profile):
    """The conv program against the same program whose S1 is a dense matrix built from the
    oracle (each input pixel's impulse response): identical spikes and states."""
    program = _compile(hierarchy(), profile)
    pr = program.projection("S1")
    g = pr.conv.geometry
    cols = []
    for i in range(g.n_pre):
        img = np.zeros(g.n_pre)
        img[i] = 1.0
        cols.append(direct_conv(img.reshape(g.input_shape), pr.conv.mantissas.astype(float), g.stride, g.padding, 1))
    dense = np.stack([c.ravel() for c in cols], axis=1).astype(pr.weights.dtype)
    oracle = dataclasses.replace(pr, weights=dense, rows=None, cols=None, conv=None)
    other = Program.from_parts(program.profile, list(program.populations), [oracle, program.projection("C1")])
    x = (np.random.default_rng(3).random((40, 36)) < 0.3).astype(np.uint8)
    rec = ["spikes", "v", "u"]
    a = Emulator(program).run(40, inputs={"img": x}, record=rec)
    b = Emulator(other).run(40, inputs={"img": x}, record=rec)
    assert a["s1/spikes"].sum() > 0 and a["c1/spikes"].sum() > 0  # the comparison is not vacuous
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # exact: the same integers / float32 ops


def test_accumulator_limit_is_named():
    """288 inputs of weight ~255 << 7 sum to ~9.4e6 > 2**23 - 1: Lava's Conv would wrap."""
    net = nc.Network([nc.Population("img", 288, nc.SpikeInput()), nc.Population("s", 1, nc.LIF(tau_mem_ms=20.0))])
    net.add_projection(conv_projection("img", "s", np.full((1, 6, 6, 8), 500.0), (6, 6, 8), name="S"))
    with pytest.raises(nc.NeurocompError, match=r"projection 'S': summed input reaches \[0, (\d+)\], outside "
                       r"loihi2's 24-bit convolution accumulator \[-8388608, 8388607\]") as info:  # fmt: skip
        _compile(net, "loihi2")
    top = int(re.search(r"reaches \[0, (\d+)\]", str(info.value)).group(1))
    assert top > 2**23 - 1 and top % (288 * 128) == 0  # 288 equal weights, each a mantissa << 7
