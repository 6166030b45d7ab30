"""The compiled Program artifact: saving, loading, refusing damaged files, and the summary."""

from __future__ import annotations

import io
import json
import operator
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from neurocomp.compiler import Program, ProgramError, compile
from neurocomp.compiler.program import FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[1]
RECURRENT_EI = ROOT / "examples" / "models" / "recurrent_ei.yaml"
LOIHI2_YAML = ROOT / "hardware_profiles" / "loihi2.yaml"
PROJECTION_META = operator.attrgetter("pre", "post", "shape", "sign_mode", "num_weight_bits", "float_scale")


def compile_ei(profile: str) -> Program:
    return compile(RECURRENT_EI, profile, out=io.StringIO())


@pytest.fixture(scope="module", params=["loihi2", "spinnaker2"])
def program(request) -> Program:
    return compile_ei(request.param)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """recurrent_ei compiled for loihi2 and saved; tests copy or rewrite it, never change it."""
    return compile_ei("loihi2").save(tmp_path_factory.mktemp("saved") / "ei.ncp")


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def rewrite(src: Path, dst: Path, change) -> Path:
    """Copy the zip ``src`` to ``dst`` member by member; ``change(name, data)`` returns the new data or None
    to leave the member out."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info, data)
    return dst


def edit_manifest(edit):
    def change(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        edit(manifest)
        return json.dumps(manifest).encode()

    return change


def load_error(path, **kwargs) -> str:
    with pytest.raises(ProgramError) as info:
        Program.load(path, **kwargs)
    return str(info.value)


# -- round trip ------------------------------------------------------------------------------


def assert_same_array_or_int(a, b, what: str) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), what
        assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
        assert np.array_equal(a, b), what
    else:
        assert type(a) is type(b) and a == b, f"{what}: {a!r} != {b!r}"


def test_save_load_round_trip_is_equal(program, tmp_path):
    loaded = Program.load(program.save(tmp_path / "ei.ncp"))
    assert loaded == program
    assert loaded.profile.name == program.profile.name
    assert loaded.dt_ms == program.dt_ms


def test_round_trip_keeps_every_projection_array_and_dtype(program, tmp_path):
    loaded = Program.load(program.save(tmp_path / "ei.ncp"))
    assert [p.name for p in loaded.projections] == [p.name for p in program.projections]
    for a, b in zip(program.projections, loaded.projections, strict=True):
        for field in ("weights", "rows", "cols", "weight_exp", "delay_steps"):
            assert_same_array_or_int(getattr(a, field), getattr(b, field), f"{a.name}.{field}")
        assert PROJECTION_META(a) == PROJECTION_META(b)


def test_round_trip_keeps_population_params(program, tmp_path):
    loaded = Program.load(program.save(tmp_path / "ei.ncp"))
    assert loaded.populations == program.populations
    for a, b in zip(program.populations, loaded.populations, strict=True):
        assert dict(a.params) == dict(b.params)


def test_recompiling_gives_identical_arrays(tmp_path):
    first = compile_ei("loihi2").save(tmp_path / "first.ncp")
    second = compile_ei("loihi2").save(tmp_path / "second.ncp")
    assert Program.load(first) == Program.load(second)
    a, b = members(first), members(second)
    assert a.keys() == b.keys()
    arrays = [name for name in a if name.startswith("arrays/") and name.endswith(".npy")]
    assert arrays
    for name in arrays:
        assert a[name] == b[name], name

    def without_timing(raw: bytes) -> dict:
        manifest = json.loads(raw)
        for record in manifest["pass_log"]:
            del record["seconds"], record["peak_rss_mib"]
        return manifest

    assert without_timing(a["manifest.json"]) == without_timing(b["manifest.json"])


def test_saving_one_program_twice_is_byte_identical(tmp_path):
    program = compile_ei("loihi2")
    assert program.save(tmp_path / "a.ncp").read_bytes() == program.save(tmp_path / "b.ncp").read_bytes()


# -- damaged files ---------------------------------------------------------------------------


def test_truncated_file_is_refused(saved, tmp_path):
    data = saved.read_bytes()
    path = tmp_path / "half.ncp"
    path.write_bytes(data[: len(data) // 2])
    message = load_error(path)
    assert "truncated" in message or "corrupted" in message


def flip_first_data_byte(data: bytes) -> bytes:
    """``data`` (an .npy file) with one bit of its first array byte flipped; the header stays valid."""
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    read_header(f)
    offset = f.tell()
    assert offset < len(data), "the array has no data to corrupt"
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def test_flipped_bit_in_an_array_is_a_checksum_mismatch(saved, tmp_path):
    target = "arrays/projections/0/weights.npy"
    path = rewrite(saved, tmp_path / "flipped.ncp", lambda n, d: flip_first_data_byte(d) if n == target else d)
    assert members(path)["manifest.json"] == members(saved)["manifest.json"]
    message = load_error(path)
    assert "checksum mismatch" in message
    assert "projections/0/weights" in message


def test_flipped_bit_in_place_is_refused(saved, tmp_path):
    # without rebuilding the zip, the member's CRC no longer matches either
    data = bytearray(saved.read_bytes())
    blob = members(saved)["arrays/projections/0/weights.npy"]
    at = bytes(data).index(blob) + len(blob) - 1
    data[at] ^= 0x01
    path = tmp_path / "flipped.ncp"
    path.write_bytes(bytes(data))
    message = load_error(path)
    assert "corrupted" in message or "checksum" in message


def test_newer_format_asks_to_upgrade(saved, tmp_path):
    path = rewrite(saved, tmp_path / "newer.ncp", edit_manifest(lambda m: m.update(format_version=FORMAT_VERSION + 1)))
    message = load_error(path)
    assert "upgrade" in message.lower()
    assert str(FORMAT_VERSION + 1) in message


def test_changed_profile_asks_to_recompile(saved, tmp_path):
    text = LOIHI2_YAML.read_text()
    assert "pj_per_synaptic_op: 23.6" in text
    changed = tmp_path / "loihi2.yaml"  # the loader wants the file stem to be the profile's name
    changed.write_text(text.replace("pj_per_synaptic_op: 23.6", "pj_per_synaptic_op: 24.6"))
    message = load_error(saved, profile=str(changed))
    assert "recompile" in message


def test_unchanged_profile_copy_loads(saved, tmp_path):
    copy = tmp_path / "copy" / "loihi2.yaml"
    copy.parent.mkdir()
    copy.write_text(LOIHI2_YAML.read_text())
    assert Program.load(saved, profile=str(copy)) == Program.load(saved)


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "noise.ncp"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    load_error(path)


def test_zip_without_manifest_is_refused(saved, tmp_path):
    path = rewrite(saved, tmp_path / "no-manifest.ncp", lambda n, d: None if n == "manifest.json" else d)
    assert "manifest" in load_error(path)


def test_missing_array_member_is_named(saved, tmp_path):
    target = "arrays/projections/1/cols.npy"
    path = rewrite(saved, tmp_path / "missing.ncp", lambda n, d: None if n == target else d)
    assert "projections/1/cols" in load_error(path)


@pytest.mark.parametrize("key", ["profile", "populations"])
def test_manifest_missing_a_section_is_refused(saved, tmp_path, key):
    path = rewrite(saved, tmp_path / "partial.ncp", edit_manifest(lambda m: m.pop(key)))
    assert "manifest" in load_error(path)


def test_nonexistent_path_is_refused(tmp_path):
    assert "not found" in load_error(tmp_path / "nothing-here.ncp")


def test_directory_is_refused(tmp_path):
    assert os.path.isdir(tmp_path)
    load_error(tmp_path)


# -- summary ---------------------------------------------------------------------------------


def test_summary_names_profile_elements_placement_and_quantization(program):
    text = program.summary()
    assert program.profile.name in text
    for p in program.populations:
        assert p.name in text
    for p in program.projections:
        assert p.name in text
    assert "placement" in text
    assert "quantization" in text
