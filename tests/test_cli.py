"""The ``neurocomp`` command line, run in-process through ``neurocomp.cli.main`` (plus one run of
the installed console script). Exit codes: 0 success, 2 invalid input."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import neurocomp as nc
from neurocomp.cli import main
from neurocomp.profiles import PROFILE_PATH_ENV

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
PATTERN = MODELS / "pattern_generation.yaml"
LOIHI2_YAML = ROOT / "hardware_profiles" / "loihi2.yaml"
BUILTINS = ["loihi1", "loihi2", "reckon", "spinnaker2", "xylo"]

# An unknown population in a projection and a negative time constant. The weights are inline so
# the projection is checked even though its 'pre' population does not exist.
INVALID_MODEL = """\
neurocomp: 1
name: broken
populations:
  - {name: in, size: 3, neuron: {model: SpikeInput, rate_hz: 10.0, seed: 1}}
  - {name: rec, size: 2, neuron: {model: LIF, tau_mem_ms: -5.0, v_th: 1.0}}
  - {name: out, size: 2, neuron: {model: LI, tau_mem_ms: 10.0}}
projections:
  - {pre: ghost, post: out, weights: [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]}
"""


@pytest.fixture(autouse=True)
def _no_user_profiles(monkeypatch):
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)


@pytest.fixture
def invalid_model(tmp_path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(INVALID_MODEL)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_names(out: str) -> list[str]:
    """First-column names of the profile rows of a ``profiles`` table."""
    return [line.split()[0] for line in out.splitlines()[2:] if line.strip() and not line.startswith("*")]


# --- profiles ------------------------------------------------------------------------------------


def test_profiles_lists_all_builtins(capsys):
    code, out, err = run(capsys, "profiles")
    assert code == 0
    assert table_names(out) == BUILTINS
    assert "* estimate" in out
    assert err == ""


def test_profiles_list_is_the_default_action(capsys):
    assert run(capsys, "profiles", "list") == run(capsys, "profiles")


def test_profiles_show_loihi2(capsys):
    code, out, err = run(capsys, "profiles", "show", "loihi2")
    assert code == 0
    assert nc.load_profile("loihi2").title in out
    assert "wrap_once" in out
    assert err == ""


@pytest.mark.parametrize("name", BUILTINS)
def test_profiles_show_every_builtin(capsys, name):
    code, out, _ = run(capsys, "profiles", "show", name)
    assert code == 0
    assert f"[{name}]" in out


def test_profiles_show_unknown_name(capsys):
    code, out, err = run(capsys, "profiles", "show", "nope")
    assert code == 2
    assert out == ""
    assert "nope" in err
    for name in BUILTINS:
        assert name in err


def test_profiles_show_path(capsys):
    code, out, _ = run(capsys, "profiles", "show", LOIHI2_YAML)
    assert code == 0
    assert "[loihi2]" in out


def test_profiles_show_without_name(capsys):
    code, out, err = run(capsys, "profiles", "show")
    assert code == 2
    assert "give a profile name" in err


def test_profiles_show_invalid_profile_file(capsys, tmp_path):
    data = yaml.safe_load(LOIHI2_YAML.read_text())
    data["formats"]["decay"]["bits"] = 0
    data["formats"]["voltage"]["overflow"] = "explode"
    path = tmp_path / "loihi2.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, err = run(capsys, "profiles", "show", path)
    assert code == 2
    assert out == ""
    assert "formats.decay.bits" in err and "formats.voltage.overflow" in err


def test_profiles_with_a_broken_user_profile(capsys, tmp_path, monkeypatch):
    """One broken user profile fails the command but does not hide the others."""
    data = yaml.safe_load(LOIHI2_YAML.read_text())
    data["name"] = "broken"
    data["formats"]["current"]["bits"] = "24"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    code, out, err = run(capsys, "profiles")
    assert code == 2
    assert table_names(out) == BUILTINS
    assert "broken.yaml" in err
    assert "formats.current.bits" in err


def test_profiles_with_a_user_profile(capsys, tmp_path, monkeypatch):
    data = yaml.safe_load(LOIHI2_YAML.read_text())
    data["name"] = "mychip"
    (tmp_path / "mychip.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    code, out, _ = run(capsys, "profiles")
    assert code == 0
    assert table_names(out) == sorted([*BUILTINS, "mychip"])


def test_profiles_show_complex_yaml_key(capsys, tmp_path):
    path = tmp_path / "complex.yaml"
    path.write_text("? [a, b]\n: 1\n")
    code, _, err = run(capsys, "profiles", "show", path)
    assert code == 2
    assert "complex.yaml" in err


# --- validate ------------------------------------------------------------------------------------


def test_validate_example_model(capsys):
    code, out, err = run(capsys, "validate", PATTERN)
    assert code == 0
    assert out.startswith(f"OK {PATTERN}")
    assert err == ""


def test_validate_all_example_models(capsys):
    models = sorted(MODELS.glob("*.yaml"))
    assert len(models) >= 3
    code, out, _ = run(capsys, "validate", *models)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["OK"] * len(models)


def test_validate_invalid_model_prints_every_problem(capsys, invalid_model):
    code, out, _ = run(capsys, "validate", invalid_model)
    assert code == 2
    lines = out.splitlines()
    assert lines[0] == f"INVALID {invalid_model}"
    problems = [line for line in lines[1:] if line.startswith("  - ")]
    assert any("tau_mem_ms" in p and "-5.0" in p for p in problems), out
    assert any("unknown population 'ghost'" in p for p in problems), out
    assert len(problems) == len(lines) - 1  # nothing but problems after the header


def test_validate_reports_unknown_population_with_initialised_weights(capsys, tmp_path):
    path = tmp_path / "ghost.yaml"
    path.write_text(
        "neurocomp: 1\nname: ghost\npopulations:\n"
        "  - {name: rec, size: 2, neuron: {model: LIF, tau_mem_ms: 5.0, v_th: 1.0}}\n"
        "projections:\n  - {pre: ghost, post: rec, weights: {init: normal, std: 0.1, seed: 1}}\n"
    )
    code, out, _ = run(capsys, "validate", path)
    assert code == 2
    assert "unknown population 'ghost'" in out


def test_validate_missing_file(capsys, tmp_path):
    missing = tmp_path / "absent.yaml"
    code, out, _ = run(capsys, "validate", missing)
    assert code == 2
    assert f"INVALID {missing}" in out
    assert "cannot read file" in out


def test_validate_invalid_yaml_names_line_and_column(capsys, tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("neurocomp: 1\npopulations: [\n  {name: a\n")
    code, out, _ = run(capsys, "validate", path)
    assert code == 2
    assert f"{path}:" in out and "invalid YAML" in out


def test_validate_several_files_one_invalid(capsys, invalid_model):
    code, out, _ = run(capsys, "validate", invalid_model, PATTERN)
    assert code == 2
    assert f"INVALID {invalid_model}" in out
    assert f"OK {PATTERN}" in out  # the invalid file does not stop the others


def test_validate_verbose_prints_summary(capsys):
    code, out, _ = run(capsys, "validate", "-v", PATTERN)
    assert code == 0
    summary = nc.load_network(PATTERN).summary()
    assert summary in out
    assert "populations:" in out and "projections:" in out


def test_validate_without_verbose_prints_one_line(capsys):
    _, out, _ = run(capsys, "validate", PATTERN)
    assert len(out.splitlines()) == 1


def test_validate_without_files_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


# --- top level -----------------------------------------------------------------------------------


def test_no_subcommand_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 2
    assert out.startswith("usage: neurocomp")
    assert "profiles" in out and "validate" in out


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "usage: neurocomp" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"neurocomp {nc.__version__}"


def test_version_matches_installed_metadata():
    assert nc.__version__ == importlib.metadata.version("neurocomp")


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compile-everything"])
    assert info.value.code == 2


# --- the installed console script --------------------------------------------------------------


def test_console_script(invalid_model):
    script = Path(sys.executable).parent / "neurocomp"
    assert script.is_file(), f"console script not installed at {script}"
    ok = subprocess.run([str(script), "profiles"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "loihi2" in ok.stdout
    bad = subprocess.run([str(script), "validate", str(invalid_model)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, bad.stderr
    assert f"INVALID {invalid_model}" in bad.stdout
