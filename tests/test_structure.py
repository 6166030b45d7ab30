"""The public seams the restructuring introduced: ``Emulator.get_weights`` / ``set_weights``
(weights set from outside reach the learning engine's next phase whole), the engine's product
shifts and required registers read from the profile, and the rules' registry."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import neurocomp as nc
from neurocomp.compiler.errors import ProgramError
from neurocomp.compiler.ir import QPopulation, QProjection
from neurocomp.compiler.program import FORMAT_VERSION, Program
from neurocomp.compiler.registers import REGISTERS, LifRegisters, RegisterError
from neurocomp.emulator import Emulator, EmulatorError
from neurocomp.errors import ProfileError
from neurocomp.learning.lowering import LOWERINGS, NETWORK_LOWERINGS, PARAMS
from neurocomp.learning.rule import EngineRule, Trace
from tests.test_profiles import loihi2_data, write_profile

LOIHI2 = nc.load_profile("loihi2")
STEPS = 12


def _plastic_program() -> Program:
    """``pre`` (3 inputs) -> plastic ``pre->post`` -> ``post`` (2 LIF): post 0 fires from its
    bias, post 1 never fires (no bias; its weights stay far below threshold), and pre 2 never
    gets a spike, so synapse (1, 2) has no nonzero product: an event-driven learning phase
    never visits it."""
    traces = {"x1": Trace(20.3, 8), "x2": Trace(0, 0), "y1": Trace(18.6, 6), "y2": Trace(0, 0), "y3": Trace(0, 0)}
    rule = EngineRule.from_strings(dw="2^-2*x1*y0 - 2^-2*y1*x0", engine=LOIHI2.learning, traces=traces, t_epoch=1)
    pre = QPopulation.spike_input("pre", 3)
    post = QPopulation.lif("post", 2, du=4095, dv=400, vth=100, bias_mant=[1000, 0], bias_exp=0)
    proj = QProjection.from_mantissas("pre->post", "pre", "post", [[40, 20, -10], [5, 6, 7]], weight_exp=-4)
    return Program.from_parts(LOIHI2, [pre, post], [dataclasses.replace(proj, learning=rule)])


def _pre_spikes() -> np.ndarray:
    x = np.zeros((STEPS, 3), dtype=np.int64)
    x[::2, 0] = 1
    x[1::3, 1] = 1
    return x


def test_set_weights_reaches_every_synapse_at_the_next_phase():
    """Weights set from outside are state set from outside: the next learning phase visits
    every synapse, so a weight beyond the chip's range is clipped there even where no
    product is nonzero (as Lava clips the initial weights in its first epoch). Written into
    the engine's arrays in place, the event-driven phase would skip that synapse and keep it."""
    emu = Emulator(_plastic_program())
    rec = emu.run(STEPS, inputs={"pre": _pre_spikes()}, record=["spikes"], learn=True)
    assert rec["post/spikes"][:, 0, 0].any() and not rec["post/spikes"][:, 0, 1].any()
    w = emu.get_weights("pre->post")
    assert w.shape == (1, 2, 3)
    lo, hi = LOIHI2.formats.weight.mantissa_range("mixed")
    w[0, 1, 2] = 4 * hi  # beyond the range, on the synapse no product reaches
    emu.set_weights("pre->post", w)
    got = emu.get_weights("pre->post")
    np.testing.assert_array_equal(got, w)  # as set, until the next phase
    got[0, 0, 0] = 0  # a copy: the emulator's weights do not change with it
    assert emu.get_weights("pre->post")[0, 0, 0] == w[0, 0, 0]
    emu.run(1, inputs={"pre": np.zeros((1, 3), dtype=np.int64)}, learn=True)
    after = emu.get_weights("pre->post")
    assert lo <= after[0, 1, 2] <= hi < w[0, 1, 2]
    assert after[0, 1, 1] == w[0, 1, 1]  # in range and never visited by a product: unchanged


def test_set_weights_takes_one_matrix_for_every_trial():
    emu = Emulator(_plastic_program(), batch=3)
    m = np.arange(6).reshape(2, 3)
    emu.set_weights("pre->post", m)
    np.testing.assert_array_equal(emu.get_weights("pre->post"), np.broadcast_to(m, (3, 2, 3)))


@pytest.mark.parametrize(
    ("name", "weights", "message"),
    [
        ("pre->post", np.zeros((2, 2)), "weights of shape (2, 2), expected (1, 2, 3)"),
        ("nope", np.zeros((2, 3)), "is not a projection of the program"),
    ],
)
def test_set_weights_names_what_is_wrong(name, weights, message):
    emu = Emulator(_plastic_program())
    with pytest.raises(EmulatorError) as info:
        emu.set_weights(name, weights)
    assert f"projection {name!r}" in str(info.value) and message in str(info.value)


def test_get_weights_refuses_a_static_projection():
    pre = QPopulation.spike_input("pre", 3)
    post = QPopulation.lif("post", 2, du=4095, dv=400, vth=100, bias_mant=0, bias_exp=0)
    proj = QProjection.from_mantissas("pre->post", "pre", "post", np.ones((2, 3), dtype=np.int64), weight_exp=0)
    emu = Emulator(Program.from_parts(LOIHI2, [pre, post], [proj]))
    with pytest.raises(EmulatorError, match="is static"):
        emu.get_weights("pre->post")


def test_product_shift_is_the_engines_width_beyond_the_accumulator():
    lrn = LOIHI2.learning  # 4-bit scale mantissa, 16-bit accumulator (15 magnitude bits)
    assert lrn.product_shift("t", "y2") == 4 + 9 + 7 - 15 == 5
    assert lrn.product_shift("x1", "y3") == 4 + 7 + 7 - 15 == 3
    assert lrn.product_shift("x0", "y0") == 0  # narrower than the accumulator: not shifted
    assert nc.load_profile("loihi1").learning.product_shift("t", "r1") == 5


@pytest.mark.parametrize("key", ["trace_bits", "factor_widths", "conn_random_seed"])
def test_a_sum_of_products_profile_must_give_its_registers(tmp_path, key):
    data = loihi2_data()
    del data["learning"]["params"][key]
    with pytest.raises(ProfileError, match=f"params.{key} is required"):
        nc.load_profile(write_profile(tmp_path, data))


def test_the_rules_register_with_the_compiler():
    """Importing neurocomp fills the registry the compiler and the graph read (they never
    import the rules); every rule has its parameters, and the whole-network lowerings name
    rules the registry knows."""
    assert {"custom", "stdp", "rstdp", "eprop", "rflo"} <= set(LOWERINGS)
    assert set(LOWERINGS) == set(PARAMS)
    assert {rule for _, rule in NETWORK_LOWERINGS} <= set(LOWERINGS)


# -- typed registers -------------------------------------------------------------------------------

DATA = Path(__file__).parent / "data"
MAIN_PROGRAMS = sorted(DATA.glob("main-*.ncp"))  # saved by neurocomp before the registers were typed
# the profiles those Programs were compiled against (a Program names its profile by content hash, and
# the installed profiles have changed since)
MAIN_PROFILES = DATA / "main-profiles"


def _with_new_defaults(learning):
    """A saved projection's learning IR as it is written back: e-prop hyperparameters and ReckOn
    registers added since it was saved (``t_epoch``; ``regul_mode`` and the other registers the
    RTL comparison added) take their defaults."""
    from neurocomp.learning.programmable import EpropParams
    from neurocomp.learning.reckon import ReckonRegisters

    if learning and learning.get("engine") == "programmable":
        defaults = {k: v for k, v in EpropParams.defaults().items() if v is not ...}
        return {**learning, "params": {**defaults, **learning["params"]}}
    if learning and learning.get("engine") == "eprop_fixed":
        return {**learning, "registers": {**ReckonRegisters().to_dict(), **learning["registers"]}}
    return learning


def test_programs_saved_before_typed_registers_still_load(tmp_path):
    """Programs written by the main branch of 2026-12-07 (format 1: ``params`` a JSON object)
    load into typed registers and write back the same manifest in the current format (their
    upgrade adds nothing: none has a rate-regularized learning signal)."""
    assert len(MAIN_PROGRAMS) == 4
    kinds = set()
    for path in MAIN_PROGRAMS:
        profile = MAIN_PROFILES / f"{json.loads(zipfile.ZipFile(path).read('manifest.json'))['profile']['name']}.yaml"
        prog = Program.load(path, profile=profile)
        for q in prog.populations:
            assert type(q.params) is REGISTERS[q.model], (path.name, q.name)
            kinds.add(q.model)
        prog.save(tmp_path / path.name)
        again = Program.load(tmp_path / path.name, profile=profile)
        assert again == prog
        assert not any("upgraded" in w for w in prog.warnings), path.name
        with zipfile.ZipFile(path) as a, zipfile.ZipFile(tmp_path / path.name) as b:
            old, new = (json.loads(z.read("manifest.json")) for z in (a, b))
        assert old["format_version"] == 1 and new["format_version"] == FORMAT_VERSION  # upgraded, nothing added
        assert old["populations"] == new["populations"], path.name
        assert [_with_new_defaults(p["learning"]) for p in old["projections"]] == [
            p["learning"] for p in new["projections"]
        ]
    assert kinds == {"SpikeInput", "LIF", "LI", "ErrorUnit"}


def test_registers_name_an_unknown_or_missing_field():
    good = dict(current_decay=1, voltage_decay=2, threshold=3, reset="zero", refractory=0)
    q = QPopulation("p", 2, "LIF", True, 0, good)
    assert isinstance(q.params, LifRegisters) and q.params.threshold == 3 and q.params == good
    assert "bias" not in q.params and q.params.get("bias") is None  # absent, as in the dict it came from
    bad = {**good, "treshold": 3}
    del bad["threshold"]
    with pytest.raises(RegisterError) as info:
        QPopulation("p", 2, "LIF", True, 0, bad)
    msg = str(info.value)
    assert "population 'p': LIF registers: unknown field 'treshold'" in msg
    assert "population 'p': LIF registers: field 'threshold' is required" in msg
    with pytest.raises(RegisterError, match="unknown neuron model 'Izhikevich'"):
        QPopulation("p", 2, "Izhikevich", True, 0, good)


def test_a_program_with_a_misspelt_register_is_refused_naming_it(tmp_path):
    src = tmp_path / "in.ncp"
    loihi2 = MAIN_PROFILES / "loihi2.yaml"
    Program.load(DATA / "main-stdp-loihi2.ncp", profile=loihi2).save(src)
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(members["manifest.json"])
    lif = next(p for p in manifest["populations"] if p["model"] == "LIF")
    lif["params"]["refractory_steps"] = lif["params"]["refractory"]
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "bad.ncp", "w") as z:
        for n, blob in members.items():
            z.writestr(n, blob)
    with pytest.raises(ProgramError, match="unknown field 'refractory_steps'"):
        Program.load(tmp_path / "bad.ncp", profile=loihi2)


def test_programmable_eprop_hyperparameters_are_typed_and_named():
    """A programmable core's e-prop projection holds typed hyperparameters: a misspelt or
    missing one is refused naming it, and one a Program saved before it existed (t_epoch, added
    after format 1 Programs were written) takes its default."""
    from neurocomp.learning.programmable import EpropParams, HyperparameterError, ProgrammableEprop
    from neurocomp.rules import eprop

    assert eprop.DEFAULTS == EpropParams.defaults()  # the rule's defaults are these fields
    with pytest.raises(HyperparameterError, match="unknown hyperparameter 'learning_rate'"):
        ProgrammableEprop({"lr": 1e-3, "learning_rate": 1e-3}, "hidden", "out", "rec")
    with pytest.raises(HyperparameterError, match="hyperparameter 'lr' is required"):
        ProgrammableEprop({"loss": "mse"}, "hidden", "out", "rec")
    old = {"engine": "programmable", "params": {"lr": 2e-3, "feedback": "symmetric"}, "role": "output",
           "readout": "out", "hidden": "rec"}  # fmt: skip
    pe = ProgrammableEprop.from_dict(old)
    assert isinstance(pe.params, EpropParams) and pe.params["t_epoch"] == 1 and pe.params.feedback == "symmetric"
    assert ProgrammableEprop.from_dict(pe.to_dict()) == pe
