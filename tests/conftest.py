"""Shared fixtures. Tests that need Lava or Brian2 carry the ``lava`` / ``brian2`` marker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neurocomp as nc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Every test starts without a profile path or memory limit from the environment, and
    leaves the memory limit as it found it."""
    from neurocomp._resources import set_memory_limit
    from neurocomp.profiles import PROFILE_PATH_ENV

    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)
    monkeypatch.delenv("NEUROCOMP_MAX_MEMORY", raising=False)
    yield
    set_memory_limit("auto")


@pytest.fixture
def small_net() -> nc.Network:
    """A network with every neuron model, dense and sparse weights, delays and a rule."""
    net = nc.Network(name="small", description="fixture")
    net.add(
        nc.Population("in", 6, nc.SpikeInput(rate_hz=30.0, seed=3)),
        nc.Population("drive", 4, nc.SpikeInput()),
        nc.Population(
            "rec",
            8,
            nc.ALIF(
                tau_mem_ms=20.0,
                tau_syn_ms=5.0,
                v_th=0.5,
                reset="subtract",
                tau_adapt_ms=300.0,
                beta=0.1,
                refractory_steps=2,
            ),
        ),
        nc.Population("lif", 5, nc.LIF(tau_mem_ms=10.0, v_th=1.0, bias=0.01)),
        nc.Population("out", 2, nc.LI(tau_mem_ms=25.0)),
    )
    rng = np.random.default_rng(0)
    net.add(
        nc.Projection("in", "rec", rng.normal(0, 0.3, (8, 6))),
        nc.Projection("drive", "lif", np.abs(rng.normal(0, 0.3, (5, 4))), sign_mode="excitatory"),
        nc.Projection(
            "rec",
            "rec",
            nc.init_weights(
                {"init": "normal", "std": 0.2, "seed": 1, "density": 0.4, "format": "sparse", "exclude_self": True},
                8,
                8,
                True,
            ),
            delay_steps=1,
            plasticity=nc.RuleSpec("eprop", {"lr": 1e-3, "feedback": "random"}),
        ),
        nc.Projection("rec", "lif", rng.normal(0, 0.2, (5, 8)), delay_steps=rng.integers(0, 4, (5, 8))),
        nc.Projection(
            "lif",
            "out",
            -np.abs(rng.normal(0, 0.2, (2, 5))),
            name="lif-out",
            plasticity=nc.RuleSpec("stdp", {"lr": 0.01, "a_plus": 1.0, "tau_plus_ms": 20.0, "tau_minus_ms": 20.0}),
        ),
    )
    return net
