"""Learning that overflows is reported, not carried: spinnaker2's exact e-prop learner holds its
weights in float (float32 on the core, float64 at the lowered-float level); once an update
overflows, the weights are inf and then NaN, the membranes NaN, and the network falls silent
for good (a NaN never passes the threshold test). The emulator raises a named error at the end
of that run instead, naming each projection, and ``neurocomp.check`` stops that level there
and says so. The learning rate here (1e3 model units per unit error x eligibility, against
the example's 3e-3) overflows within one 200-step run at both precisions."""

from __future__ import annotations

import io

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.emulator import Emulator, NonFiniteWeightsError
from tests.test_eprop import small_net

T = 200


def _run(lr: float, arithmetic: str):
    prog = nc.compile(small_net(n_in=8, n_rec=12, n_out=1, seed=3, eprop={"lr": lr}), "spinnaker2", out=io.StringIO())
    emu = Emulator(prog, learn_arithmetic=arithmetic)
    x = (np.random.default_rng(4).random((T, 8)) < 0.1).astype(np.uint8)
    tg = np.sin(np.arange(T) / 10.0)[:, None]
    return emu, lambda: emu.run(T, inputs={"in": x, "out/target": tg}, record=["v", "spikes"], learn=True)


@pytest.mark.parametrize("arithmetic", ["chip", "float"])
def test_overflowing_weights_raise_a_named_error_with_the_runs_recordings(arithmetic):
    emu, run = _run(1e3, arithmetic)
    with pytest.raises(NonFiniteWeightsError) as info:
        run()
    err = info.value
    assert err.projections == ("in->rec", "rec->rec", "rec->out")
    dtype = "float32" if arithmetic == "chip" else "float64"
    assert f"projection 'rec->out': 12 of 12 learned weights are not finite after the run to step {T}" in str(err)
    assert f"the {dtype} weights overflowed" in str(err)
    assert err.recording["rec/spikes"].shape == (T, 1, 12)  # the run's recordings come with the error
    # the weights are left as the core has them (not clipped or zeroed), and the network fell silent
    assert not np.isfinite(emu.get_weights("rec->out")).any()
    assert err.recording["rec/spikes"][-20:].sum() == 0


def test_a_finite_run_raises_nothing():
    emu, run = _run(0.05, "chip")
    run()
    assert all(np.isfinite(emu.get_weights(n)).all() for n in emu.plastic)


def test_check_stops_a_level_whose_weights_overflow_and_says_so():
    net = small_net(n_in=8, n_rec=12, n_out=1, seed=3, eprop={"lr": 1e3})
    rep = nc.check(net, "spinnaker2", "pattern-generation", iterations=3, steps=T, align=0, attribution=False,
                   bptt=False, plots=False, progress=False)  # fmt: skip
    for level in ("lowered-float", "lowered-fixed"):
        assert rep.final[level]["diverged_at"] == 0
        assert np.isnan(rep.final[level]["nmse"])  # no number for a level that stopped
        assert np.isnan(rep.curves[level]["nmse"][1:]).all()
        assert any(n.startswith(f"{level} stopped at iteration 0") and "'rec->out'" in n for n in rep.notes)
    assert "diverged at iteration 0" in rep.summary()
