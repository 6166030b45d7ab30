"""Program format versions: an older format loads through its explicit upgrade (which the
Program's warnings name) and runs as the format it was upgraded to; a newer format is refused,
by the CLI with exit code 2."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.compiler.program import FORMAT_VERSION, Program
from neurocomp.emulator import Emulator
from tests.test_eprop import compile_small, target

REGULARIZED = ("in->rec", "rec->rec")  # the projections whose graded learning signal has a rate term


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """``src`` with its manifest changed by ``edit(manifest)`` (the arrays as they are)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "manifest.json":
                manifest = json.loads(data)
                edit(manifest)
                data = json.dumps(manifest).encode()
            zout.writestr(info, data)
    return dst


def _rate_bits(manifest: dict, bits: int | None) -> None:
    """Set (or, with None, drop) the rate trace's bits of every regularized graded signal."""
    for p in manifest["projections"]:
        y2 = ((p.get("learning") or {}).get("graded") or {}).get("y2") or {}
        if y2.get("reg"):
            if bits is None:
                del y2["rate_bits"]
            else:
                y2["rate_bits"] = bits


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A loihi2 e-prop Program with rate regularization, saved in the current format."""
    prog = compile_small(seed=0, eprop={"reg": 30.0, "reg_rate_hz": 5.0})
    graded = [p.name for p in prog.projections if p.learning is not None and p.learning.graded.get("y2", {}).get("reg")]
    assert graded == list(REGULARIZED)
    return prog.save(tmp_path_factory.mktemp("migration") / "reg.ncp")


def _train(prog: Program) -> dict[str, np.ndarray]:
    emu = Emulator(prog)
    rec = emu.run(200, inputs={"out.error/target": target(200)}, record=["spikes", "w"], learn=True)
    return {**rec, **{f"{n}/final": emu.get_weights(n) for n in ("in->rec", "rec->rec", "rec->out")}}


def test_format_1_loads_through_its_upgrade_and_runs_as_format_2(saved, tmp_path):
    """A format-1 file (no ``rate_bits``: its rate trace had 16 fraction bits) loads with
    ``rate_bits`` 16 added, says so, and trains bit for bit as the same Program written in
    format 2 with ``rate_bits`` 16."""

    def as_format_1(m: dict) -> None:
        m["format_version"] = 1
        _rate_bits(m, None)

    old = Program.load(_rewrite(saved, tmp_path / "v1.ncp", as_format_1))
    explicit = Program.load(_rewrite(saved, tmp_path / "v2.ncp", lambda m: _rate_bits(m, 16)))
    for name in REGULARIZED:
        assert old.projection(name).learning.graded["y2"]["rate_bits"] == 16
    upgrade = [w for w in old.warnings if "upgraded" in w]
    assert len(upgrade) == 1 and all(f"projection {n!r}: y2 rate_bits 16" in upgrade[0] for n in REGULARIZED)
    assert "format 1 upgraded to 2" in upgrade[0]
    assert not any("upgraded" in w for w in explicit.warnings)
    a, b = _train(old), _train(explicit)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # the rate trace's width matters (so the equality above would catch a wrong upgrade)
    current = _train(Program.load(saved))
    assert any(not np.array_equal(current[k], a[k]) for k in a if k.endswith("/w"))
    # saved again, it is a format-2 file that loads without an upgrade
    again = old.save(tmp_path / "again.ncp")
    with zipfile.ZipFile(again) as z:
        assert json.loads(z.read("manifest.json"))["format_version"] == FORMAT_VERSION


def test_a_newer_format_is_refused_with_exit_code_2(saved, tmp_path, capsys):
    newer = _rewrite(saved, tmp_path / "newer.ncp", lambda m: m.update(format_version=FORMAT_VERSION + 1))
    code = main(["inspect", str(newer)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"program format {FORMAT_VERSION + 1}" in err and "Upgrade neurocomp" in err
    assert "Traceback" not in err
