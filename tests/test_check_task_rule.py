"""The checks whose task defines the network (chl, vkf) refuse, by name, a model that is not
their rule and a profile whose engine cannot run it; they build only the asked-for rows."""

from __future__ import annotations

import pytest

from neurocomp.analysis.check import CheckError, check
from neurocomp.analysis.check_task_rule import engine_rows


@pytest.mark.parametrize(
    ("rule", "task", "defines"),
    [("chl", "chl-xor", "its network (a symmetric 2-h-1 network)"), ("vkf", "volatile-reward", "its predictor")],
)
def test_a_model_other_than_the_rule_is_refused_by_name(rule, task, defines, tmp_path):
    with pytest.raises(CheckError) as exc:
        check("eprop", "loihi2", task, iterations=1, attribution=False, out=tmp_path, plots=False)
    [p] = exc.value.problems
    assert p.where == "model"
    assert p.message == f"{task} defines {defines}; name the rule, {rule!r}, as the model, not 'eprop'"


@pytest.mark.parametrize(("rule", "task"), [("chl", "chl-xor"), ("vkf", "volatile-reward")])
def test_a_profile_without_graded_third_factors_is_refused_by_name(rule, task, tmp_path):
    with pytest.raises(CheckError) as exc:
        check(rule, "loihi1", task, iterations=1, attribution=False, out=tmp_path, plots=False)
    [p] = exc.value.problems
    assert p.where == "profile" and p.message.startswith(f"{rule} cannot run on loihi1: ")


def test_engine_rows_are_the_asked_learning_quantities_and_nearest_and_none_on_cores():
    assert engine_rows(["weights", "not-a-quantity", "nearest"], cores=False) == [
        ("fixed, weights in float", {"float_quantities": ("weights",)}),
        ("fixed, round-to-nearest", {"rounding": "nearest"}),
    ]
    assert engine_rows(["weights", "nearest"], cores=True) == []
