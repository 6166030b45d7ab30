"""Fuzz tests (hypothesis) of everything a user hands neurocomp: model files, profile files,
Program files and command-line arguments. For each: the exit code is 0 or 2 (never 1, never
a traceback), every example finishes within a bound, and an existing output file is either
replaced completely or left untouched. Examples are few and small so that the whole file
stays well under a minute."""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurocomp as nc
from neurocomp.cli import main
from neurocomp.compiler import Program
from neurocomp.graph import network_from_dict
from tests.conftest import ROOT

FUZZ = settings(
    max_examples=40,
    deadline=timedelta(seconds=20),  # the bound on one example (a loaded machine is slow)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples every run: a failure reproduces
)

# values a careless or hostile file or command line may hold
ODD = st.one_of(
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 1e9, -1e9, 1e308, 1e-320, 0.5, True, False, None, "", "x"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "file", "init", "rule"]), st.integers(-2, 2), max_size=2),
)

MODEL = {
    "neurocomp": 1,
    "name": "fuzz",
    "populations": [
        {"name": "in", "size": 4, "neuron": {"model": "SpikeInput", "rate_hz": 20.0, "seed": 1}},
        {"name": "rec", "size": 3, "neuron": {"model": "LIF", "tau_mem_ms": 20.0, "tau_syn_ms": 5.0, "v_th": 1.0}},
        {"name": "out", "size": 2, "neuron": {"model": "LI", "tau_mem_ms": 10.0}},
    ],
    "projections": [
        {"pre": "in", "post": "rec", "weights": {"init": "normal", "std": 0.3, "seed": 2}, "delay_steps": 1},
        {
            "pre": "rec",
            "post": "out",
            "weights": [[0.1, 0.2, 0.3], [0.0, -0.1, 0.2]],
            "plasticity": {"rule": "stdp", "params": {"lr": 0.01}},
        },
    ],
}


def _paths(doc, prefix=()):
    """Every path (tuple of keys and indices) into a nested document (a lowered learning rule's
    engine program is left alone: its fields are checked only for finiteness on load)."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "learning" and isinstance(v, dict):
                continue
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw, doc):
    """``doc`` with 1 to 3 of its values replaced, deleted, or given an unknown sibling."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
        if action == "replace":
            parent[path[-1]] = draw(ODD)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent["bogus_key"] = draw(ODD)
    return doc


def cli(capsys, *args) -> tuple[int, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out + err


def assert_clean_exit(code, text, ok=(0, 2)):
    assert code in ok, text
    assert "Traceback" not in text and "internal error" not in text, text


# -- the model loader -----------------------------------------------------------------------


@FUZZ
@given(doc=mutated(MODEL))
def test_fuzz_model_loader(tmp_path, capsys, doc):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, text = cli(capsys, "validate", "--max-memory", "512M", path)
    assert_clean_exit(code, text)


@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzz_model_loader_bytes(tmp_path, capsys, data):
    path = tmp_path / "m.yaml"
    path.write_bytes(yaml.safe_dump(MODEL).encode()[: len(data)] + data)
    code, text = cli(capsys, "validate", path)
    assert_clean_exit(code, text)


# -- the profile loader ---------------------------------------------------------------------

LOIHI2 = yaml.safe_load((ROOT / "hardware_profiles" / "loihi2.yaml").read_text())


@FUZZ
@given(doc=mutated(LOIHI2))
def test_fuzz_profile_loader(tmp_path, capsys, doc):
    path = tmp_path / "chip.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, text = cli(capsys, "profiles", "show", path)
    assert_clean_exit(code, text)


# -- Program.load ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def program_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "p.ncp"
    nc.compile(network_from_dict(MODEL), "loihi2", out=io.StringIO()).save(path)
    return path


def _manifest(path: Path) -> tuple[dict, dict]:
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    return json.loads(members.pop("manifest.json")), members


@FUZZ
@given(data=st.data())
def test_fuzz_program_load(tmp_path, capsys, program_file, data):
    manifest, members = _manifest(program_file)
    keep = {k: manifest[k] for k in ("format", "format_version", "arrays", "profile")}
    edited = data.draw(mutated({k: v for k, v in manifest.items() if k not in keep}))
    path = tmp_path / "p.ncp"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("manifest.json", json.dumps({**edited, **keep}))
        for n, b in members.items():
            z.writestr(n, b)
    code, text = cli(capsys, "inspect", path)
    assert_clean_exit(code, text)
    if code == 0:  # a Program that loads also runs (or refuses its inputs by name)
        code, text = cli(capsys, "run", path, "--steps", 3, "--record", "spikes,v", "--out", tmp_path / "r.npz")
        assert_clean_exit(code, text)


# -- the command line -----------------------------------------------------------------------

ODD_NUMBERS = st.sampled_from(
    ["0", "-1", "1", "3", "nan", "inf", "-inf", "1e9", "2.5", "abc", "", "99999999999999999999"]
)
NUMBERS = st.one_of(st.sampled_from(["1", "2", "3", "0.5"]), ODD_NUMBERS)  # half of them valid: reach deeper


@st.composite
def run_args(draw):
    args = ["--steps", draw(st.one_of(NUMBERS, st.sampled_from(["2", "7"])))]
    for opt, values in (
        ("--batch", st.one_of(NUMBERS, st.sampled_from(["2"]))),
        ("--seed", NUMBERS),
        ("--record", st.sampled_from(["spikes", "v,u", "w", "spikes,,", ",", "bogus", "a"])),
        ("--snapshot-every", NUMBERS),
        ("--learn-mode", st.sampled_from(["independent", "shared", "x"])),
        ("--max-memory", st.sampled_from(["1G", "10", "none", "-5", "x"])),
        ("--backend", st.sampled_from(["emulator", "emulator", "nope"])),
    ):
        if draw(st.integers(0, 2)) == 0:
            args += [opt, draw(values)]
    if draw(st.booleans()):
        args += ["--input", draw(st.sampled_from(["missing", "npy", "garbage", "nan", "badkey", "ok"]))]
    for flag in ("--learn", "--strict"):
        if draw(st.booleans()):
            args.append(flag)
    return args


def _input_file(kind: str, folder: Path) -> Path:
    """An --input file of one kind (the program's one input population 'in' has 4 neurons)."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{kind}.npz"
    if kind == "npy":
        path = folder / "x.npy"
        np.save(path, np.zeros((7, 4)))
    elif kind == "garbage":
        path.write_bytes(b"PK not a zip")
    elif kind == "nan":
        np.savez(path, **{"in/spikes": np.full((7, 4), np.nan)})
    elif kind == "badkey":
        np.savez(path, **{"nowhere/spikes": np.zeros((7, 4))})
    elif kind == "ok":
        np.savez(path, **{"in/spikes": (np.arange(28).reshape(7, 4) % 3 == 0).astype(np.uint8)})
    return path


@FUZZ
@given(args=run_args())
def test_fuzz_cli_run(tmp_path, capsys, program_file, args):
    out = tmp_path / "rec.npz"
    np.savez(out, old=np.arange(3))
    before = out.read_bytes()
    if "--input" in args:
        i = args.index("--input") + 1
        args = args[:i] + [_input_file(args[i], tmp_path / "inputs")] + args[i + 1 :]
    code, text = cli(capsys, "run", program_file, *args, "--out", out)
    assert_clean_exit(code, text)
    if code == 0:  # replaced completely
        with np.load(out) as z:
            assert "old" not in z.files and z.files
    else:  # untouched
        assert out.read_bytes() == before
    assert [p for p in os.listdir(tmp_path) if p != "inputs"] == ["rec.npz"]


@st.composite
def compile_args(draw):
    args = ["--profile", draw(st.sampled_from(["loihi2", "loihi1", "spinnaker2", "xylo", "nope"]))]
    for opt, values in (
        ("--dt", NUMBERS),
        ("--seed", NUMBERS),
        ("--max-zeroed", NUMBERS),
        ("--firing-rate", NUMBERS),
        ("--rounding", st.sampled_from(["nearest", "floor", "stochastic", "up"])),
        ("--dump-ir-after", st.sampled_from(["drc", "emit", "nope"])),
    ):
        if draw(st.integers(0, 2)) == 0:
            args += [opt, draw(values)]
    for flag in ("--strict", "-q", "--time-passes"):
        if draw(st.booleans()):
            args.append(flag)
    return args


@FUZZ
@given(args=compile_args())
def test_fuzz_cli_compile(tmp_path, capsys, args):
    model = tmp_path / "m.yaml"
    model.write_text(yaml.safe_dump(MODEL))
    out = tmp_path / "p.ncp"
    out.write_bytes(b"previous contents")
    code, text = cli(capsys, "compile", model, *args, "-o", out)
    assert_clean_exit(code, text)
    if code == 0:
        assert Program.load(out).network_name == "fuzz"
    else:
        assert out.read_bytes() == b"previous contents"
    assert sorted(os.listdir(tmp_path)) == ["m.yaml", "p.ncp"]
