"""The sum-of-products engine reads its widths, bounds and seed from the profile: every
profile with such an engine has them, and a profile that lacks one is an error naming it
(no silent loihi2 default)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.errors import ProfileError
from neurocomp.learning.engine import SumOfProductsEngine
from neurocomp.learning.rule import EngineRule, Trace

TRACES = {"x1": Trace(12.0, 4), "y1": Trace(10.0, 6)}


def _engine(learning) -> SumOfProductsEngine:
    # the rule is made for the installed profile (whose loader already requires these keys);
    # the engine is then built on the given, possibly stripped, one
    rule = EngineRule.from_strings(
        dw="2^-2*x1*y0 - 2^-2*y1*x0", engine=nc.load_profile("loihi2").learning, traces=TRACES
    )
    return SumOfProductsEngine(rule, np.zeros((3, 4), np.int64), engine=learning)


@pytest.mark.parametrize("name", ["loihi1", "loihi2"])
def test_profiles_with_the_engine_have_its_keys(name):
    learning = nc.load_profile(name).learning
    assert learning.kind == "sum_of_products"
    eng = _engine(learning)
    assert eng.trace_bits == learning.params["trace_bits"]
    assert eng.acc_bits == learning.accumulator_bits - 1


@pytest.mark.parametrize("key", ["trace_bits", "impulse_fraction_bits", "factor_widths", "conn_random_seed"])
def test_a_missing_engine_key_is_named(key):
    learning = nc.load_profile("loihi2").learning
    params = {k: v for k, v in learning.params.items() if k != key}
    with pytest.raises(ProfileError, match=f"missing params.{key}"):
        _engine(dataclasses.replace(learning, params=params))


def test_a_missing_variable_width_is_named():
    learning = nc.load_profile("loihi2").learning
    bits = {k: v for k, v in learning.synaptic_variable_bits.items() if k != "t"}
    with pytest.raises(ProfileError, match="missing synaptic_variable_bits.t"):
        _engine(dataclasses.replace(learning, synaptic_variable_bits=bits))
