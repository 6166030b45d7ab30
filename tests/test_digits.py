"""Task digits-shifted: the shifted canvas, Oja's kernels against numpy's principal components,
and a small S1 -> C1 -> readout run well above chance in float and on loihi2."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurocomp.tasks import digits

pytest.importorskip("sklearn", reason="the digits extra (scikit-learn) is not installed")


def test_shift_pastes_each_digit_whole():
    images, _ = digits.load_digits()
    out = digits.shift(images[:50], 12, np.random.default_rng(0))
    assert out.shape == (50, 12, 12)
    np.testing.assert_array_equal(out.sum(axis=(1, 2)), images[:50].sum(axis=(1, 2)))  # exact: integers
    offsets = {tuple(np.argwhere(o > 0).min(axis=0)) for o in out}
    assert len(offsets) > 10  # many positions


def test_oja_kernels_are_the_principal_components():
    """Oja's rule with Sanger's deflation against numpy's eigendecomposition of the patch
    covariance: the leading components, unit length, in order. The 2nd and 3rd eigenvalues
    are within 2% of each other (the two edge orientations), so only their plane is defined."""
    images, _ = digits.load_digits()
    p = digits.patches(images[:200], 3)
    rng = np.random.default_rng(0)
    w = digits.oja_kernels(p[rng.permutation(len(p))[:3000]], 4, 3, 0.01, rng)
    vals, vecs = np.linalg.eigh(np.cov(p.T))
    vals, vecs = vals[::-1], vecs[:, ::-1]
    assert vals[1] - vals[2] < 0.02 * vals[1] and vals[2] > 1.2 * vals[3]  # the degenerate pair, then a gap
    # stochastic updates with a final step of 0.0033 over 3000 patches: ~1e-2 in angle
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=0.02)
    assert abs(w[0] @ vecs[:, 0]) > 0.99 and abs(w[3] @ vecs[:, 3]) > 0.98
    np.testing.assert_array_less(0.99, np.linalg.norm(w[1:3] @ vecs[:, 1:3], axis=1))  # in the pair's plane


def test_small_hierarchy_classifies_shifted_digits():
    cfg = dataclasses.replace(digits.Config(), n_train=250, n_test=120, train_shifts=1, steps=30, n_components=4)
    data = digits.make_data(cfg, 0)
    kernels, readout = digits.train(cfg, data, 0)
    assert kernels.shape == (8, 3, 3, 1)
    net = digits.network(cfg, kernels, readout)
    flt = digits.evaluate(net, cfg, data, None)
    chip = digits.evaluate(net, cfg, data, "loihi2")
    # 120 test digits: chance is 0.10, raw pixels ~0.3; the full benchmark reaches ~0.75 (benchmarks/conv_digits.py)
    assert flt > 0.3 and chip > 0.3, (flt, chip)  # measured 0.475 and 0.467
    assert abs(chip - flt) < 0.1, (flt, chip)  # quantization costs little here
