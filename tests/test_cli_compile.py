"""``neurocomp compile`` and ``neurocomp inspect``, run in-process through ``neurocomp.cli.main``."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurocomp.cli import main
from neurocomp.compiler import Program
from neurocomp.compiler.options import PASS_NAMES
from neurocomp.profiles import PROFILE_PATH_ENV

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
RECURRENT_EI = MODELS / "recurrent_ei.yaml"
DRC_VIOLATIONS = MODELS / "drc_violations.yaml"


@pytest.fixture(autouse=True)
def _no_user_profiles(monkeypatch):
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def compiled(tmp_path, capsys) -> Path:
    path = tmp_path / "x.ncp"
    code, _, err = run(capsys, "compile", RECURRENT_EI, "--profile", "loihi2", "-o", path, "-q")
    assert code == 0, err
    return path


def test_compile_writes_a_loadable_program(tmp_path, capsys):
    path = tmp_path / "x.ncp"
    code, out, err = run(capsys, "compile", RECURRENT_EI, "--profile", "loihi2", "-o", path)
    assert code == 0, err
    assert path.is_file()
    program = Program.load(path)
    assert program.profile.name == "loihi2"
    assert "placement" in out and "quantization" in out
    assert f"wrote {path}" in out


def test_compile_quiet_prints_no_summary(tmp_path, capsys):
    path = tmp_path / "x.ncp"
    code, out, _ = run(capsys, "compile", RECURRENT_EI, "--profile", "loihi2", "-o", path, "-q")
    assert code == 0
    assert path.is_file()
    assert "placement" not in out and "quantization" not in out
    assert "wrote" in out


def test_compile_dump_ir_after_quantize(tmp_path, capsys):
    code, out, _ = run(
        capsys,
        "compile",
        RECURRENT_EI,
        "--profile",
        "loihi2",
        "-o",
        tmp_path / "x.ncp",
        "-q",
        "--dump-ir-after",
        "quantize",
    )
    assert code == 0
    assert "IR after quantize" in out
    assert "QuantizedNetwork" in out
    assert "IR after partition" not in out


def test_compile_time_passes_names_every_pass(tmp_path, capsys):
    code, out, _ = run(
        capsys, "compile", RECURRENT_EI, "--profile", "loihi2", "-o", tmp_path / "x.ncp", "-q", "--time-passes"
    )
    assert code == 0
    for name in PASS_NAMES:
        assert name in out, name


def test_compile_design_rule_violations_lists_all_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "bad.ncp"
    code, _, err = run(capsys, "compile", DRC_VIOLATIONS, "--profile", "loihi2", "-o", path)
    assert code == 2
    for rule in (
        "reset_mode_supported",
        "refractory_supported",
        "delay_within_limit",
        "fan_in_within_limit",
        "input_rate_within_limit",
    ):
        assert rule in err, rule
    assert "5 design-rule violations" in err
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_compile_unknown_profile_fails(tmp_path, capsys):
    path = tmp_path / "x.ncp"
    code, _, err = run(capsys, "compile", RECURRENT_EI, "--profile", "nope", "-o", path)
    assert code == 2
    assert "nope" in err
    assert not path.exists()


def test_inspect_summarizes_the_program(compiled, capsys):
    code, out, _ = run(capsys, "inspect", compiled)
    assert code == 0
    assert "loihi2" in out
    for name in ("in", "exc", "inh", "exc->inh"):
        assert name in out


def test_inspect_cores_and_passes(compiled, capsys):
    code, out, _ = run(capsys, "inspect", compiled, "--cores", "--passes")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["core", "chip"])
    assert lines[header + 1].split()[:2] == ["0", "0"]  # core 0 on chip 0
    assert "/8192" in lines[header + 1]
    for name in PASS_NAMES:
        assert any(line.startswith(name + " ") for line in lines), name


def test_inspect_corrupted_file_fails_with_reason(compiled, capsys):
    data = compiled.read_bytes()
    compiled.write_bytes(data[: len(data) // 2])
    code, out, err = run(capsys, "inspect", compiled)
    assert code == 2
    assert "truncated" in err or "corrupted" in err
    assert str(compiled) in err
    assert out == ""
