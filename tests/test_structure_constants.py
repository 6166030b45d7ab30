"""Chip constants come from the profile: the decay a sum-of-products engine gives the traces a
neuron writes (graded y1..y3, graded x1) is ``learning.params.graded_trace_tau`` (loihi2:
Lava's 65535), read by the lowering and by the engine, required where a graded trace needs it,
and a Program saved before the key existed still runs bit for bit with the profile it was
compiled against."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.compiler.program import Program
from neurocomp.emulator import Emulator
from neurocomp.errors import ProfileError
from neurocomp.learning.rule import EngineRule, Trace
from neurocomp.profiles.loader import load_profile_with

DATA = Path(__file__).parent / "data"
OLD_EPROP = DATA / "main-eprop-loihi2.ncp"  # compiled by main before graded_trace_tau was a profile key
OLD_LOIHI2 = DATA / "main-profiles" / "loihi2.yaml"
LOIHI2 = nc.load_profile("loihi2")
GRADED = dict(dw="2^-2*u0*x1*y2", post_traces="graded", graded={"y2": {"source": "input"}})


def _without_key(tmp_path):
    """loihi2 without ``learning.params.graded_trace_tau`` (a profile file of its own)."""
    text = Path(LOIHI2.path).read_text()
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("graded_trace_tau:"))
    end = start + 1
    while lines[end].lstrip().startswith("#"):  # the key's comment runs on below it
        end += 1
    path = tmp_path / "loihi2.yaml"
    path.write_text("".join(lines[:start] + lines[end:]))
    return nc.load_profile(path)


def test_a_graded_trace_decays_with_the_profiles_tau():
    rule = EngineRule.from_strings(engine=LOIHI2.learning, traces={"x1": Trace(4, 10)}, **GRADED)
    assert [rule.traces[y].tau for y in ("y1", "y2", "y3")] == [0, 0, 0]  # unset until bound to an engine
    bound = rule.on_engine(LOIHI2.learning)
    assert [bound.traces[y].tau for y in ("y1", "y2", "y3")] == [LOIHI2.learning.params["graded_trace_tau"]] * 3
    assert bound.traces["x1"] == Trace(4, 10)  # a spike trace keeps its own
    other = load_profile_with("loihi2", {"learning.params.graded_trace_tau": 4095})
    assert rule.on_engine(other.learning).traces["y2"].tau == 4095  # read from the profile, not a constant
    pre = EngineRule.from_strings(dw="u0*(x1 - 3)*y1", traces={"y1": Trace(2, 5)},
                                  pre_graded={"x1": {"source": "pre", "offset": 3}})  # fmt: skip
    assert pre.on_engine(other.learning).traces["x1"] == Trace(0.0, 4095)  # a graded x1 as well
    assert bound.on_engine(other.learning) is bound  # a bound rule keeps the tau it was lowered with


def test_the_lowering_binds_graded_traces_to_the_profile(tmp_path):
    """``lower_learning`` writes the profile's tau into every graded trace of the Program."""
    net = nc.Network(name="graded")
    net.add(nc.Population("in", 3, nc.SpikeInput()))
    net.add(nc.Population("out", 2, nc.LIF(tau_mem_ms=10.0, v_th=1.0, reset="zero")))
    net.add(nc.Projection("in", "out", np.full((2, 3), 0.05), plasticity=nc.RuleSpec("custom", GRADED)))
    for tau in (65535, 4095):
        prof = load_profile_with("loihi2", {"learning.params.graded_trace_tau": tau})
        rule = nc.compile(net, prof, out=io.StringIO()).projections[0].learning
        assert [rule.traces[y].tau for y in ("y1", "y2", "y3")] == [tau] * 3


def test_a_profile_without_the_key_is_refused_naming_it_only_where_a_graded_trace_needs_it(tmp_path):
    prof = _without_key(tmp_path)
    rule = EngineRule.from_strings(engine=prof.learning, **GRADED)
    with pytest.raises(ProfileError, match="missing params.graded_trace_tau"):
        rule.on_engine(prof.learning)
    with pytest.raises(ProfileError, match="missing params.graded_trace_tau"):
        Emulator(Program.from_parts(prof, *_one_projection(rule)))
    stdp = EngineRule.from_strings(dw="2^-2*x1*y0", engine=prof.learning, traces={"x1": Trace(10, 8)})
    assert stdp.on_engine(prof.learning) is stdp  # spike traces only: the key is not needed
    assert "graded_trace_tau" not in nc.load_profile("loihi1").learning.params  # loihi1 has no graded traces


def _one_projection(rule):
    from neurocomp.compiler.ir import QPopulation, QProjection

    pre = QPopulation.spike_input("pre", 3)
    post = QPopulation.lif("post", 2, du=4095, dv=400, vth=100, bias_mant=[1000, 0], bias_exp=0)
    proj = QProjection.from_mantissas("pre->post", "pre", "post", [[40, 20, -10], [5, 6, 7]], weight_exp=-4)
    return [pre, post], [dataclasses.replace(proj, learning=rule)]


def _run_eprop(prog: Program) -> dict[str, np.ndarray]:
    steps = 60
    t = np.arange(steps)[:, None]
    target = np.hstack([np.sin(2 * np.pi * t / 30), np.cos(2 * np.pi * t / 20)]) * 0.5
    rng = np.random.default_rng(3)
    spikes = (rng.random((steps, 4)) < 0.2).astype(np.int64)
    return Emulator(prog).run(steps, inputs={"in": spikes, "out.error/target": target},
                              record=["spikes", "w", "t", "y2"], learn=True)  # fmt: skip


def test_a_program_saved_before_the_key_runs_the_same_bits():
    """main's e-prop Program holds its graded taus (65535) and runs with the profile it was
    compiled against, which lacks the key; its rules with the taus unset and bound again from
    the installed profile run the same bits (the manifest did not change: no format upgrade)."""
    assert "graded_trace_tau" not in nc.load_profile(OLD_LOIHI2).learning.params
    old = Program.load(OLD_EPROP, profile=OLD_LOIHI2)
    with zipfile.ZipFile(OLD_EPROP) as z:
        manifest = json.loads(z.read("manifest.json"))
    graded = [p for p in old.projections if isinstance(p.learning, EngineRule) and p.learning.graded_traces]
    assert len(graded) == 3
    tau = LOIHI2.learning.params["graded_trace_tau"]
    for p in graded:
        assert {p.learning.traces[y].tau for y in p.learning.graded_traces} == {tau}
        saved = next(q for q in manifest["projections"] if q["name"] == p.name)["learning"]
        assert p.learning.to_dict() == saved  # written back as saved
    unset = [dataclasses.replace(p, learning=dataclasses.replace(p.learning, graded_tau=0)) if p in graded else p
             for p in old.projections]  # fmt: skip
    rebound = dataclasses.replace(old, profile=LOIHI2, projections=tuple(unset))
    assert all(rebound.projections[i].learning.traces["y2"].tau == 0 for i, p in enumerate(old.projections)
               if p in graded)  # fmt: skip
    a, b = _run_eprop(old), _run_eprop(rebound)
    assert a["rec/spikes"].any() and np.abs(a["rec->out/w"][-1] - a["rec->out/w"][0]).sum() > 0  # it learned
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("key", ["constant_bits", "max_factors_per_product"])
def test_the_rule_parsers_limits_are_required_of_a_sum_of_products_profile(tmp_path, key):
    from tests.test_profiles import loihi2_data, write_profile

    data = loihi2_data()
    del data["learning"]["params"][key]
    with pytest.raises(ProfileError, match=f"params.{key} is required"):
        nc.load_profile(write_profile(tmp_path, data))


def test_lowered_scales_follow_the_engines_product_shift():
    """The scales the lowerings compensate an engine's width shift with (psd's ``2^s lr``, the
    tag-clearing ``y1 = 2^s`` of np and chl) come from the profile: one more accumulator bit
    halves them."""
    from neurocomp.learning.lowering import LoweringContext, lower

    wide = load_profile_with("loihi2", {"learning.accumulator_bits": 17})
    cases = {  # rule: params, the note's text, the number on loihi2 (t * d: 7 bits, t * y1: 5) and one bit wider
        "psd": ({"lr": 0.01, "w_max": 1.0, "trial_steps": 64}, "psd scale ({} lr", 128, 64),
        "np": ({"lr": 0.05, "sigma": 0.1}, "/y1' ({} at the reward step", 32, 16),
        "chl": ({"lr": 0.05, "rate_lsb": 1 / 127}, "/y1' ({} at the apply step", 32, 16),
    }
    for rule, (params, text, narrow, wider) in cases.items():
        for prof, value in ((LOIHI2, narrow), (wide, wider)):
            ctx = LoweringContext("p", prof, 1.0, 2.0**-6, seed=0)
            assert lower(rule, params, ctx) is not None
            assert any(text.format(value) in n for n in ctx.notes), (rule, prof.learning.accumulator_bits, ctx.notes)
