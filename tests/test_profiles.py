"""Chip profiles: the built-ins, loihi2's Lava semantics, immutability, schema and provenance checks,
YAML strictness, user profile folders, and the human-readable summaries.

"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
from pathlib import Path

import pytest
import yaml

import neurocomp as nc
from neurocomp import ProfileError, list_profiles, load_profile
from neurocomp.profiles import PROFILE_PATH_ENV, profile_dirs, profile_summary, profiles_table

ROOT = Path(__file__).resolve().parents[1]
PROFILE_DIR = ROOT / "hardware_profiles"
LOIHI2_YAML = PROFILE_DIR / "loihi2.yaml"
BUILTINS = ["loihi1", "loihi2", "reckon", "spinnaker2", "xylo"]


@pytest.fixture(autouse=True)
def _no_user_profiles(monkeypatch):
    """Tests see only the built-in profiles unless they set the variable themselves."""
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)


def loihi2_data() -> dict:
    """A fresh, modifiable parse of the built-in loihi2 profile."""
    return yaml.safe_load(LOIHI2_YAML.read_text())


def write_profile(folder: Path, data: dict, stem: str | None = None) -> Path:
    path = folder / f"{stem or data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def profile_error(path: Path | str) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return info.value


def set_key(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value


def numeric_keys(data, prefix: str = "") -> list[str]:
    """Dotted keys of the numeric leaves reachable through mappings only."""
    out = []
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out += numeric_keys(v, key)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(key)
    return out


# --- built-in profiles -------------------------------------------------------------------------


def test_list_profiles_contains_all_builtins():
    assert set(BUILTINS) <= set(list_profiles())
    assert list_profiles() == sorted(list_profiles())


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_profile_loads(name):
    p = load_profile(name)
    assert isinstance(p, nc.Profile)
    assert p.name == name
    assert Path(p.path).name == f"{name}.yaml"


def test_every_listed_profile_loads():
    for name in list_profiles():
        assert load_profile(name).name == name


def test_builtin_folder_is_the_hardware_profiles_folder():
    assert profile_dirs()[-1].resolve() == PROFILE_DIR.resolve()


# --- loihi2 carries Lava 0.10.0's fixed-point semantics -----------------------------------------


@pytest.fixture(scope="module")
def loihi2():
    return load_profile("loihi2")


def test_loihi2_weight_mantissa_range_per_sign_mode(loihi2):
    w = loihi2.formats.weight
    assert w.mantissa_range("mixed") == (-256, 255)
    assert w.mantissa_range("excitatory") == (0, 255)
    assert w.mantissa_range("inhibitory") == (-255, 0)
    assert w.mantissa_range() == (-256, 255)  # the default sign mode is mixed


def test_loihi2_weight_rounding_and_lsb(loihi2):
    w = loihi2.formats.weight
    assert w.mixed_sign_drops_lsb is True
    assert w.exponent_rounding == "floor"
    assert loihi2.formats.input_shift == 6


def test_loihi2_current_and_voltage(loihi2):
    u, v = loihi2.formats.current, loihi2.formats.voltage
    assert (u.kind, u.bits, u.overflow, u.frac_bits) == ("int", 24, "wrap_once", 0)
    assert (v.kind, v.bits, v.overflow, v.frac_bits) == ("int", 24, "saturate", 0)


def test_loihi2_decay(loihi2):
    d = loihi2.formats.decay
    assert d.representation == "multiplicative"
    assert d.bits == 12
    assert d.rounding == "toward_zero"
    assert (d.current_offset, d.voltage_offset) == (1, 0)


def test_loihi2_threshold(loihi2):
    th = loihi2.formats.threshold
    assert (th.mantissa_bits, th.signed, th.shift) == (17, False, 6)
    assert th.mantissa_range() == (0, 2**17 - 1)


def test_loihi2_bias(loihi2):
    b = loihi2.formats.bias
    assert (b.mantissa_bits, b.signed) == (13, True)
    assert (b.exponent_min, b.exponent_max) == (0, 7)
    assert b.mantissa_range() == (-4096, 4095)


def test_loihi2_time_and_delay(loihi2):
    assert loihi2.time.synaptic_delay_steps == 1
    assert loihi2.time.threshold == "greater"
    assert loihi2.capacity.max_delay_steps == 63


def test_loihi2_learning_engine(loihi2):
    lrn = loihi2.learning
    assert lrn.kind == "sum_of_products"
    assert (lrn.mantissa_min, lrn.mantissa_max) == (-8, 7)
    assert (lrn.exponent_min, lrn.exponent_max) == (-7, 8)
    assert lrn.accumulator_bits == 16


def test_loihi2_trace(loihi2):
    tr = loihi2.formats.trace
    assert tr.bits == 7
    assert tr.impulse_fraction_bits == 8


def test_loihi2_validation_backend(loihi2):
    assert loihi2.validation_backend == "lava"


@pytest.mark.lava
def test_loihi2_matches_lava_constants(loihi2):
    """Cross-check against the constants of the installed lava-nc itself."""
    lc = pytest.importorskip("lava.magma.core.learning.constants")
    lif_models = pytest.importorskip("lava.proc.lif.models")
    lif = lif_models.PyLifModelBitAcc({})
    f = loihi2.formats
    assert (f.decay.current_offset, f.decay.voltage_offset) == (lif.ds_offset, lif.dm_offset)
    assert f.current.bits == f.voltage.bits == lif.uv_bitwidth
    assert f.decay.bits == lif.decay_shift
    assert f.threshold.shift == lif.vth_shift
    assert f.input_shift == lif.act_shift
    lrn = loihi2.learning
    assert lrn.accumulator_bits == lc.W_ACCUMULATOR_S
    assert lrn.epoch_bits == lc.W_EPOCH_TIME
    assert f.trace.bits == lc.W_TRACE
    assert f.trace.impulse_fraction_bits == lc.W_TRACE_FRACTIONAL_PART
    assert lrn.params["scale_mantissa_bits"] == lc.W_S_MANT
    assert lrn.params["constant_bits"] == lc.W_CONST
    widths = {str(k): v for k, v in lc.FACTOR_TO_WIDTH_DICT.items()}
    assert {k: lrn.params["factor_widths"][k] for k in widths} == widths


@pytest.mark.lava
def test_loihi2_voltage_saturation_range_matches_lava(loihi2):
    lif = pytest.importorskip("lava.proc.lif.models").PyLifModelBitAcc({})
    assert loihi2.formats.voltage.int_range() == (-lif.max_uv_val + 1, lif.max_uv_val - 1)


# --- other profiles ------------------------------------------------------------------------------


def test_xylo_semantics():
    p = load_profile("xylo")
    assert p.learning.kind == "none"
    assert p.formats.decay.representation == "bitshift"
    assert p.formats.decay.min_step == 1
    assert p.time.max_spikes_per_step == 31
    assert p.time.input_delay_steps == 0


def test_reckon_learning_is_fixed_eprop():
    assert load_profile("reckon").learning.kind == "eprop_fixed"


def test_spinnaker2_is_float32():
    assert load_profile("spinnaker2").arithmetic == "float32"


# --- immutability, pickling, fingerprint -----------------------------------------------------------


def test_profile_is_frozen(loihi2):
    with pytest.raises(dataclasses.FrozenInstanceError):
        loihi2.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        loihi2.formats.weight.mantissa_bits = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    "get_mapping",
    [
        lambda p: p.neuron_models,
        lambda p: p.neuron_models["ALIF"].state,
        lambda p: p.learning.params,
        lambda p: p.learning.synaptic_variable_bits,
    ],
    ids=["neuron_models", "ALIF.state", "learning.params", "synaptic_variable_bits"],
)
def test_profile_mappings_are_read_only(loihi2, get_mapping):
    m = get_mapping(loihi2)
    key = next(iter(m))
    with pytest.raises(TypeError):
        m[key] = None
    with pytest.raises(TypeError):
        del m[key]
    with pytest.raises(TypeError):
        m.update({key: None})
    assert key in m


def test_nested_learning_params_are_read_only(tmp_path):
    p = load_profile(write_profile(tmp_path, loihi2_data()))  # a private copy: never mutate the cached one
    with pytest.raises(TypeError):
        p.learning.params["factor_widths"]["x1"] = 99


def test_profile_is_hashable(loihi2):
    assert hash(loihi2) == hash(pickle.loads(pickle.dumps(loihi2)))


@pytest.mark.parametrize("name", BUILTINS)
def test_profile_pickle_round_trip(name):
    p = load_profile(name)
    q = pickle.loads(pickle.dumps(p))
    assert q == p
    assert (q.path, q.fingerprint) == (p.path, p.fingerprint)  # compare=False fields survive too


@pytest.mark.parametrize("name", BUILTINS)
def test_fingerprint_is_64_hex(name):
    assert re.fullmatch(r"[0-9a-f]{64}", load_profile(name).fingerprint)


def test_fingerprint_is_equal_across_loads(loihi2):
    assert load_profile("loihi2").fingerprint == loihi2.fingerprint
    assert load_profile(LOIHI2_YAML).fingerprint == loihi2.fingerprint


def test_fingerprint_depends_on_content_not_path_or_formatting(tmp_path, loihi2):
    """A re-dumped copy (comments gone, another folder) has the same fingerprint."""
    copy = load_profile(write_profile(tmp_path, loihi2_data()))
    assert copy == loihi2
    assert copy.path != loihi2.path
    assert copy.fingerprint == loihi2.fingerprint


def test_fingerprint_changes_with_a_value(tmp_path, loihi2):
    data = loihi2_data()
    data["capacity"]["max_delay_steps"] = 62
    changed = load_profile(write_profile(tmp_path, data))
    assert changed != loihi2
    assert changed.fingerprint != loihi2.fingerprint


def test_distinct_profiles_have_distinct_fingerprints():
    assert len({load_profile(n).fingerprint for n in BUILTINS}) == len(BUILTINS)


# --- loading by name and by path ---------------------------------------------------------------------


def test_load_by_name_and_by_path_are_equal(loihi2):
    assert load_profile(LOIHI2_YAML) == loihi2
    assert load_profile(str(LOIHI2_YAML)) == loihi2


def test_load_relative_path(monkeypatch, loihi2):
    monkeypatch.chdir(PROFILE_DIR)
    assert load_profile("loihi2.yaml") == loihi2


def test_unknown_name_lists_available_profiles():
    exc = profile_error("nope")
    assert "nope" in str(exc)
    for name in BUILTINS:
        assert name in str(exc)


def test_missing_profile_file(tmp_path):
    exc = profile_error(tmp_path / "absent.yaml")
    assert "not found" in str(exc)


def test_non_mapping_profile(tmp_path):
    path = tmp_path / "listy.yaml"
    path.write_text("- 1\n- 2\n")
    assert "mapping" in str(profile_error(path))


# --- schema problems ---------------------------------------------------------------------------------


def test_dumped_copy_loads(tmp_path, loihi2):
    """Control for the tests below: an unmodified copy written by the helper is valid."""
    assert load_profile(write_profile(tmp_path, loihi2_data())) == loihi2


def test_malformed_profile_reports_every_problem(tmp_path):
    data = loihi2_data()
    data["formats"]["current"]["bits"] = "24"  # wrong type
    data["formats"]["weight"]["colour"] = "red"  # unknown key
    del data["time"]["threshold"]  # missing required key
    data["formats"]["voltage"]["overflow"] = "explode"  # bad enum value
    data["formats"]["decay"]["bits"] = 0  # below the minimum
    data["formats"]["weight"]["exponent_min"] = 8  # cross-field: > exponent_max (7)
    path = write_profile(tmp_path, data)

    exc = profile_error(path)
    text = str(exc)
    assert len(exc.problems) >= 6
    for key in (
        "formats.current.bits",
        "formats.weight.colour",
        "time.threshold",
        "formats.voltage.overflow",
        "formats.decay.bits",
        "formats.weight",
    ):
        assert key in text, key
    assert "'explode'" in text and "exponent_min 8 > exponent_max 7" in text
    assert str(path) in text  # the header names the full path
    assert all(p.where == "loihi2.yaml" for p in exc.problems)  # each problem names the file


@pytest.mark.parametrize("key", [k for k in numeric_keys(loihi2_data()) if not k.startswith("learning.params")])
def test_every_numeric_key_is_type_checked(tmp_path, key):
    """Any number replaced by a string is reported under its own dotted key."""
    data = loihi2_data()
    set_key(data, key, "oops")
    exc = profile_error(write_profile(tmp_path, data))
    assert any(p.message.startswith(f"{key}: ") and "'oops'" in p.message for p in exc.problems), str(exc)


@pytest.mark.parametrize("bad", [True, 24.0], ids=["bool", "float"])
def test_integer_field_rejects_bool_and_float(tmp_path, bad):
    data = loihi2_data()
    data["formats"]["current"]["bits"] = bad
    assert "formats.current.bits: expected an integer" in str(profile_error(write_profile(tmp_path, data)))


def test_upper_bound_is_checked(tmp_path):
    data = loihi2_data()
    data["formats"]["current"]["bits"] = 65
    assert "formats.current.bits: 65 is above the maximum 64" in str(profile_error(write_profile(tmp_path, data)))


def test_unknown_neuron_model_is_reported(tmp_path):
    data = loihi2_data()
    data["neuron_models"]["Izhikevich"] = {"implementation": "programmable"}
    assert "neuron_models.Izhikevich: unknown neuron model" in str(profile_error(write_profile(tmp_path, data)))


def test_learning_kind_none_with_rules_is_reported(tmp_path):
    data = loihi2_data()
    data["learning"] = {"kind": "none", "rules": ["stdp"]}
    assert "kind 'none' cannot list rules" in str(profile_error(write_profile(tmp_path, data)))


def test_missing_top_level_section_is_reported(tmp_path):
    data = loihi2_data()
    del data["capacity"]
    assert "capacity: required key is missing" in str(profile_error(write_profile(tmp_path, data)))


# --- provenance ----------------------------------------------------------------------------------


def test_uncovered_numbers_are_reported(tmp_path):
    data = loihi2_data()
    davies = next(s for s in data["sources"] if s["id"] == "davies2018")
    davies["covers"].remove("energy")
    exc = profile_error(write_profile(tmp_path, data))
    energy_keys = [f"energy.{k}" for k in data["energy"]]
    assert len(energy_keys) == 4
    expected = {f"{k}: no entry in sources covers this number" for k in energy_keys}
    assert {p.message for p in exc.problems} == expected  # exactly these, nothing else


def test_estimate_of_missing_key_is_reported(tmp_path):
    data = loihi2_data()
    data["estimates"].append("capacity.no_such_limit")
    exc = profile_error(write_profile(tmp_path, data))
    assert "estimates: 'capacity.no_such_limit' is not a key of this profile" in str(exc)


def test_covers_of_missing_key_is_reported(tmp_path):
    data = loihi2_data()
    data["sources"][0]["covers"].append("formats.no_such_format")
    exc = profile_error(write_profile(tmp_path, data))
    assert "covers 'formats.no_such_format', which is not a key of this profile" in str(exc)


def test_name_must_match_file_stem(tmp_path):
    exc = profile_error(write_profile(tmp_path, loihi2_data(), stem="renamed"))
    assert "'loihi2' does not match the file name 'renamed'" in str(exc)
    assert len(exc.problems) == 1


# --- YAML strictness -----------------------------------------------------------------------------


def test_invalid_yaml_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("schema: 1\nname: [broken\ntitle: x\n")
    text = str(profile_error(path))
    assert re.search(re.escape(str(path)) + r":\d+:\d+: invalid YAML", text), text


def test_duplicate_yaml_key_is_an_error(tmp_path):
    text = LOIHI2_YAML.read_text()
    assert "  input_shift: 6" in text
    path = tmp_path / "loihi2.yaml"
    path.write_text(text.replace("  input_shift: 6", "  input_shift: 6\n  input_shift: 7", 1))
    msg = str(profile_error(path))
    assert "duplicate key 'input_shift'" in msg
    assert re.search(re.escape(str(path)) + r":\d+:\d+", msg)


def test_yaml_merge_keys_are_supported(tmp_path, loihi2):
    text = LOIHI2_YAML.read_text()
    old_u = "  current:\n    bits: 24\n    overflow: wrap_once"
    old_v = "  voltage:\n    bits: 24\n    overflow: saturate"
    assert old_u in text and old_v in text
    text = text.replace(old_u, "  current: &u\n    bits: 24\n    overflow: wrap_once")
    text = text.replace(old_v, "  voltage:\n    <<: *u\n    overflow: saturate")
    path = tmp_path / "loihi2.yaml"
    path.write_text(text)
    assert load_profile(path) == loihi2


def test_unhashable_yaml_key_is_a_profile_error(tmp_path):
    path = tmp_path / "complex.yaml"
    path.write_text("? [a, b]\n: 1\n")
    profile_error(path)


def test_date_in_free_form_params_does_not_crash(tmp_path):
    path = write_profile(tmp_path, loihi2_data())
    path.write_text(path.read_text().replace("  params:\n", "  params:\n    revision: 2021-09-30\n", 1))
    assert load_profile(path).learning.params["revision"]


# --- user profile folders ------------------------------------------------------------------------


def test_user_profile_folder_adds_a_profile(tmp_path, monkeypatch):
    data = loihi2_data()
    data["name"] = "mychip"
    path = write_profile(tmp_path, data)
    assert path.name == "mychip.yaml"
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    assert "mychip" in list_profiles()
    assert set(BUILTINS) <= set(list_profiles())
    p = load_profile("mychip")
    assert p.name == "mychip"
    assert Path(p.path) == path.resolve()


def test_user_profile_shadows_builtin(tmp_path, monkeypatch):
    data = loihi2_data()
    data["title"] = "My patched Loihi 2"
    write_profile(tmp_path, data)
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    assert list_profiles().count("loihi2") == 1
    p = load_profile("loihi2")
    assert p.title == "My patched Loihi 2"
    assert Path(p.path).parent == tmp_path.resolve()


def test_first_user_folder_wins(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        data = loihi2_data()
        data["name"], data["title"] = "mychip", f"from {folder.name}"
        write_profile(folder, data)
    monkeypatch.setenv(PROFILE_PATH_ENV, os.pathsep.join(["", str(first), str(second)]))  # empty entry ignored
    assert profile_dirs()[:2] == [first, second]
    assert load_profile("mychip").title == "from a"


def test_user_profile_is_checked_like_a_builtin(tmp_path, monkeypatch):
    data = loihi2_data()
    data["name"] = "mychip"
    data["formats"]["decay"]["bits"] = 0
    write_profile(tmp_path, data)
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    assert "mychip.yaml: formats.decay.bits" in str(profile_error("mychip"))


# --- summaries -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtins():
    return [load_profile(n) for n in BUILTINS]


def test_profiles_table_lists_every_profile(builtins):
    rows = profiles_table(builtins).splitlines()
    assert rows[0].split()[0] == "profile"
    names = [r.split()[0] for r in rows[2 : 2 + len(builtins)]]
    assert names == BUILTINS


def test_profiles_table_stars_exactly_the_estimated_energy(builtins):
    rows = profiles_table(builtins).splitlines()
    for p in builtins:
        row = next(r for r in rows if r.split()[0] == p.name)
        assert row.rstrip().endswith("*") == p.is_estimate("energy.pj_per_synaptic_op"), row
    assert load_profile("loihi2").is_estimate("energy.pj_per_synaptic_op")  # so at least one '*'
    assert rows[-1] == "* estimate"


def test_profiles_table_without_estimates_has_no_legend():
    table = profiles_table([load_profile("xylo")])
    assert "xylo" in table
    assert "*" not in table


def test_profiles_table_empty():
    assert profiles_table([]) == "(no profiles found)"


@pytest.mark.parametrize("name", BUILTINS)
def test_profile_summary_names_the_profile_and_its_estimates(name):
    p = load_profile(name)
    text = profile_summary(p)
    assert text.splitlines()[0] == f"{p.title}  [{p.name}]"
    for key in p.estimates:
        assert key in text


def test_profile_summary_marks_estimated_sections(loihi2):
    """The summary marks estimates in words ('(estimate)'), not with the table's '*'."""
    text = profile_summary(loihi2)
    assert "energy (pJ) (estimate)" in text
    assert "1048576 bits/core (estimate)" in text
    assert "neurons/core    8192\n" in text  # a published figure carries no mark


def test_profile_summary_shows_loihi2_formats(loihi2):
    text = profile_summary(loihi2)
    assert "24-bit int, overflow wrap_once" in text
    assert "17-bit unsigned mantissa << 6" in text
    assert "must match lava bit for bit" in text
