"""The examples and the demo run as a user would run them, and the core stays light."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def _run(args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_demo_runs_and_shows_models_and_profiles(tmp_path):
    res = _run([str(ROOT / "examples" / "demo.py")], tmp_path)
    assert res.returncode == 0, res.stderr
    for fragment in ("OK pattern_generation.yaml", "OK evidence_accumulation.yaml", "loihi2", "xylo", "pJ/SOP",
                     "alignment with the reference's update", "attribution"):  # fmt: skip
        assert fragment in res.stdout


def test_quickstart_runs(tmp_path):
    res = _run([str(ROOT / "examples" / "quickstart.py")], tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "quickstart.yaml").exists()
    assert "quickstart" in res.stdout


def test_core_import_does_not_load_optional_simulators():
    # Lava and Brian2 are imported lazily by their backends; importing the core must not pull them in.
    code = (
        "import sys, neurocomp; neurocomp.load_profile('loihi2'); "
        "print(sorted(m for m in ('lava', 'brian2') if m in sys.modules))"
    )
    res = _run(["-c", code], ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
