"""Sweep specs: loading and checking them, and expanding them into cells.

A spec (YAML) names a model, the settings every cell shares, and axes; the cells are the
product of the axes' values, each run for every seed. Settings of a cell:

* ``profile``, ``task``, ``iterations``, ``steps`` (steps per trial; null: the task's);
* ``rule.<param>``: a parameter of the model's learning rule (e.g. ``rule.lr``);
* any other dotted key: an override of the profile's YAML (``formats.weight.mantissa_bits``),
  checked against the profile schema like a profile file.

An axis is a list of values of one setting (``profile: [loihi2, spinnaker2]``) or a mapping
from a label to settings that change together (``8: {formats.weight.mantissa_bits: 8, ...}``).
``seeds`` is a list of seeds or a count ``n``: then seed ``r`` is derived from the spec's
``seed`` (see :func:`derive_seed`), so a cell's seed, and hence its result, does not depend on
where or in which order it runs. A cell's key hashes its inputs and the code version.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._yaml import YamlError, read_yaml
from ..errors import NeurocompError, Problem

SPEC_VERSION = 1
SETTINGS = ("profile", "task", "iterations", "steps")
CHECK_OPTIONS = {"align": 0, "bptt": False}  # check's work per cell beyond the learning curves
TOP_KEYS = {"sweep", "name", "description", "model", "seed", "seeds", "axes", "check", "measures", "report", *SETTINGS}
MEASURES = ("final", "ratio", "spikes", "compile", "wall")
"""Groups of table columns: final metric per level, fixed/float ratio, spike agreement, compile
report numbers (cores, synaptic memory, utilization, energy), wall time."""


class SweepError(NeurocompError, ValueError):
    kind = "sweep"


@dataclass(frozen=True)
class Cell:
    """One compile -> emulate -> check run; plain data, so that Dask ships it to any worker."""

    key: str  # hash of the inputs and the code version (the result file's name)
    labels: Mapping[str, Any]  # axis -> label, in axis order, then "seed"
    model: str  # absolute path of the model file
    profile: str
    overrides: Mapping[str, Any]  # dotted profile keys -> values
    rule_params: Mapping[str, Any]
    task: str
    iterations: int
    steps: int | None
    seed: int
    check: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepSpec:
    name: str
    path: Path
    cells: tuple[Cell, ...]
    axes: tuple[str, ...]  # axis names, "seed" last
    measures: tuple[str, ...]
    report: Mapping[str, Any]
    code_version: str


def derive_seed(base: int, replicate: int) -> int:
    """The seed of replicate ``replicate`` of a spec with ``seed: base``: the first 31-bit word
    of numpy's ``SeedSequence([base, replicate])`` (independent streams, reproducible anywhere)."""
    return int(np.random.SeedSequence([base, replicate]).generate_state(1, np.uint32)[0] >> 1)


def code_version() -> str:
    """``<version>+<hash>``: the package version and a hash of its Python sources, so that a
    result computed by different code is not taken for a done cell."""
    from .._version import __version__

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def _file_hash(path: Path) -> str:
    """The model file and its array file (``<stem>.npz``, where large arrays live) if any."""
    h = hashlib.sha256(path.read_bytes())
    npz = path.with_suffix(".npz")
    if npz.is_file():
        h.update(npz.read_bytes())
    return h.hexdigest()


def load_spec(path: str | os.PathLike, version: str | None = None) -> SweepSpec:
    """Read and check a spec file and expand it into cells. Raises :class:`SweepError` listing
    every problem (each with its key); a profile override is checked against the profile schema."""
    path = Path(path)
    if not path.is_file():
        raise SweepError([Problem(str(path), "sweep spec not found")])
    try:
        data = read_yaml(path)
    except YamlError as exc:
        raise SweepError([Problem("", str(exc))]) from None
    return expand(data, path, version or code_version())


def expand(data: Any, path: Path, version: str) -> SweepSpec:
    where = path.name
    problems: list[Problem] = []

    def bad(key: str, msg: str) -> None:
        problems.append(Problem(where, f"{key}: {msg}" if key else msg))

    if not isinstance(data, Mapping):
        raise SweepError([Problem(where, "a sweep spec must be a YAML mapping")])
    for k in data:
        if k not in TOP_KEYS:
            bad(str(k), f"unknown key (known keys: {', '.join(sorted(TOP_KEYS))})")
    if data.get("sweep") != SPEC_VERSION:
        bad("sweep", f"must be {SPEC_VERSION} (the spec format's version), got {data.get('sweep')!r}")
    model = _model(data.get("model"), path, bad)
    base = {k: data[k] for k in SETTINGS if k in data}
    base.setdefault("steps", None)
    seeds = _seeds(data.get("seeds", 1), data.get("seed", 0), bad)
    check = {**CHECK_OPTIONS, **_mapping(data.get("check", {}), "check", bad)}
    for k in set(check) - set(CHECK_OPTIONS):
        bad(f"check.{k}", f"unknown option (known: {', '.join(CHECK_OPTIONS)})")
    measures = data.get("measures", list(MEASURES))
    if not isinstance(measures, list) or not set(measures) <= set(MEASURES):
        bad("measures", f"a list of {', '.join(MEASURES)}; got {measures!r}")
        measures = list(MEASURES)
    if isinstance(check.get("align"), bool) or not isinstance(check.get("align"), int) or check["align"] < 0:
        bad("check.align", f"teacher-forced updates compared, an integer >= 0; got {check.get('align')!r}")
    if not isinstance(check.get("bptt"), bool):
        bad("check.bptt", f"true or false, got {check.get('bptt')!r}")
    axes = _axes(data.get("axes", {}), bad)
    report = _mapping(data.get("report", {}), "report", bad)
    if "x" in report and report["x"] not in axes:
        bad("report.x", f"{report['x']!r} is not an axis (axes: {', '.join(axes)})")
    if problems:
        raise SweepError(problems, header=f"invalid sweep spec {path}")

    cells: list[Cell] = []
    model_hash = _file_hash(model)
    profiles: dict[str, Any] = {}  # checked once per distinct profile and overrides
    names = list(axes)
    for combo in itertools.product(*(axes[a].items() for a in names)):
        settings: dict[str, Any] = dict(base)
        for _label, values in combo:
            settings.update(values)
        labels = {a: label for a, (label, _) in zip(names, combo, strict=True)}
        cell = _settings(settings, labels, path.parent, bad)
        if cell is None:
            continue
        prof_key = json.dumps([cell["profile"], cell["overrides"]], sort_keys=True, default=str)
        if prof_key not in profiles:
            profiles[prof_key] = _profile(cell["profile"], cell["overrides"], labels, bad)
        prof = profiles[prof_key]
        if prof is None:
            continue
        for seed in seeds:
            inputs = {**cell, "seed": seed, "check": check}
            digest = {**inputs, "model": model_hash, "profile_fingerprint": prof.fingerprint, "code": version}
            key = hashlib.sha256(json.dumps(digest, sort_keys=True, default=str).encode()).hexdigest()[:24]
            cells.append(Cell(key=key, labels={**labels, "seed": seed}, model=str(model), **inputs))
    _check_rule_params(cells, bad)
    if problems:
        raise SweepError(problems, header=f"invalid sweep spec {path}")
    return SweepSpec(
        name=str(data.get("name") or path.stem),
        path=path,
        cells=tuple(cells),
        axes=(*names, "seed"),
        measures=tuple(measures),
        report=report,
        code_version=version,
    )


def _mapping(v: Any, key: str, bad) -> dict:
    if not isinstance(v, Mapping):
        bad(key, f"expected a mapping, got {v!r}")
        return {}
    return dict(v)


def _model(v: Any, spec: Path, bad) -> Path:
    if not isinstance(v, str):
        bad("model", f"the model file (a path relative to the spec), got {v!r}")
        return spec
    p = (spec.parent / v).resolve()
    if not p.is_file():
        bad("model", f"{v!r}: no such file (looked at {p})")
        return p
    from ..graph.io import load_network

    try:  # a broken model is the spec's problem, found before any cell runs
        load_network(p)
    except NeurocompError as exc:
        bad("model", str(exc))
    return p


def _seeds(v: Any, base: Any, bad) -> list[int]:
    if isinstance(base, bool) or not isinstance(base, int):
        bad("seed", f"an integer, got {base!r}")
        return [0]
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 1:
            bad("seeds", f"a count >= 1 or a list of seeds, got {v}")
            return [0]
        return [derive_seed(base, r) for r in range(v)]
    if isinstance(v, list) and v and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v):
        if len(set(v)) != len(v):
            bad("seeds", f"repeated seeds in {v}")
        return list(v)
    bad("seeds", f"a count >= 1 or a non-empty list of seeds >= 0, got {v!r}")
    return [0]


def _axes(v: Any, bad) -> dict[str, dict[Any, dict[str, Any]]]:
    """axis -> {label: settings}; a list axis ``k: [a, b]`` is ``{a: {k: a}, b: {k: b}}``."""
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    for axis, values in _mapping(v, "axes", bad).items():
        key = f"axes.{axis}"
        if axis in ("seed", "seeds"):
            bad(key, "seeds are given by the top-level 'seeds', not an axis")
        elif isinstance(values, list) and values:
            if len(set(map(repr, values))) != len(values):
                bad(key, f"repeated values in {values}")
            out[str(axis)] = {val: {str(axis): val} for val in values}
        elif isinstance(values, Mapping) and values:
            out[str(axis)] = {}
            for label, settings in values.items():
                if isinstance(settings, Mapping) and settings:
                    out[str(axis)][label] = {str(k): s for k, s in settings.items()}
                else:
                    bad(f"{key}.{label}", f"a non-empty mapping of settings, got {settings!r}")
        else:
            bad(key, f"a non-empty list of values or mapping of labels to settings, got {values!r}")
    sets = {a: {k for settings in labels.values() for k in settings} for a, labels in out.items()}
    for a, b in itertools.combinations(sets, 2):
        if sets[a] & sets[b]:
            bad("axes", f"axes {a!r} and {b!r} both set {', '.join(sorted(sets[a] & sets[b]))}")
    return out


def _settings(s: Mapping[str, Any], labels: Mapping[str, Any], here: Path, bad) -> dict[str, Any] | None:
    """Split one cell's merged settings into check's arguments, rule params and overrides."""
    from ..tasks import TASKS

    where = "cell " + ", ".join(f"{a}={v}" for a, v in labels.items()) if labels else "cells"
    out = {
        "profile": s.get("profile"),
        "task": s.get("task"),
        "iterations": s.get("iterations"),
        "steps": s.get("steps"),
        "overrides": {k: v for k, v in s.items() if k not in SETTINGS and not k.startswith("rule.")},
        "rule_params": {k[len("rule.") :]: v for k, v in s.items() if k.startswith("rule.")},
    }
    ok = True
    if not isinstance(out["profile"], str):
        bad(where, f"profile: a profile name or file, got {out['profile']!r}")
        ok = False
    elif out["profile"].endswith((".yaml", ".yml")):  # a profile file, relative to the spec
        out["profile"] = str((here / out["profile"]).resolve())
    if out["task"] not in TASKS:
        bad(where, f"task: {out['task']!r} is not a task (known: {', '.join(sorted(TASKS))})")
        ok = False
    for k, lo in (("iterations", 1), ("steps", 1)):
        v = out[k]
        if (v is not None or k == "iterations") and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
            bad(where, f"{k}: an integer >= {lo}, got {v!r}")
            ok = False
    return out if ok else None


def _profile(name: str, overrides: Mapping[str, Any], labels: Mapping[str, Any], bad) -> Any:
    from ..profiles.loader import load_profile_with

    try:
        return load_profile_with(name, overrides)
    except NeurocompError as exc:
        where = ", ".join(f"{a}={v}" for a, v in labels.items())
        bad(f"cell {where}" if where else "profile", str(exc))
        return None


def _check_rule_params(cells: list[Cell], bad) -> None:
    """``rule.<name>``: a parameter of e-prop (the rule ``check`` runs)."""
    from ..reference.eprop import EpropParams

    known = set(EpropParams.__dataclass_fields__)
    unknown = sorted({k for c in cells for k in c.rule_params} - known)
    if unknown:
        bad("axes", f"rule parameters {unknown} are not e-prop's (known: {', '.join(sorted(known))})")
