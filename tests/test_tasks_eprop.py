"""The e-prop tasks: deterministic generators with the stated structure."""

from __future__ import annotations

import numpy as np
import pytest

from neurocomp.tasks import make
from neurocomp.tasks.evidence import error_rate


def test_evidence_accumulation_structure_and_labels():
    task = make("evidence-accumulation", seed=3, batch=16)
    T = 150 * 7 + 1200
    assert task.inputs.shape == (T, 16, 40) and task.targets.shape == (T, 16, 2)
    x = task.inputs
    # cues: 7 windows of 100 steps starting at 50, one every 150; left/right groups silent outside them
    in_cue = np.zeros(T, bool)
    for k in range(7):
        in_cue[50 + 150 * k : 150 + 150 * k] = True
    assert x[~in_cue, :, :20].sum() == 0
    assert x[: T - 150, :, 20:30].sum() == 0 and x[T - 150 :, :, 20:30].sum() > 0  # recall group
    # the label is the side with more cues (counted from the spikes of each cue window)
    counts = np.stack(
        [
            [
                x[50 + 150 * k : 150 + 150 * k, b, :10].sum() < x[50 + 150 * k : 150 + 150 * k, b, 10:20].sum()
                for k in range(7)
            ]
            for b in range(16)
        ]
    )
    label = np.nan_to_num(task.targets[-1]).argmax(axis=1)
    np.testing.assert_array_equal(label, (counts.sum(axis=1) > 3).astype(int))
    assert np.isnan(task.targets[: T - 150]).all() and (task.mask[T - 150 :] == 1).all()


def test_evidence_accumulation_is_deterministic_per_seed_and_iteration():
    a, b = make("evidence-accumulation", seed=1, batch=4), make("evidence-accumulation", seed=1, batch=4)
    np.testing.assert_array_equal(a.sample(5).inputs, b.sample(5).inputs)
    assert not np.array_equal(a.sample(5).inputs, a.sample(6).inputs)


def test_error_rate_counts_wrong_answers():
    tg = np.full((4, 2, 2), np.nan)
    tg[2:, 0] = [1, 0]
    tg[2:, 1] = [0, 1]
    out = np.zeros((4, 2, 2))
    out[2:, :, 0] = 1.0  # both trials answer class 0
    assert error_rate(out, tg) == 0.5


def test_pattern_generation_target_shape():
    task = make("pattern-generation", seed=0)
    y = task.targets[:, 0, 0]
    assert task.inputs.shape == (1000, 1, 100) and y[0] == 0 and np.abs(y).max() == pytest.approx(1.0)
    assert 0.03 < task.inputs.mean() < 0.07  # 50 Hz at 1 ms steps
