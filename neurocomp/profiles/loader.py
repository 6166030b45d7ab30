"""Finding, loading and checking chip profiles."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .._yaml import YamlError, read_yaml
from ..errors import Problem, ProfileError
from .profile import Profile
from .schema import build, numeric_leaves, path_exists

PROFILE_PATH_ENV = "NEUROCOMP_PROFILE_PATH"
"""Extra folders (``os.pathsep``-separated) searched for ``<name>.yaml`` before the built-ins."""


def profile_dirs() -> list[Path]:
    """Folders searched for profiles, in order: ``$NEUROCOMP_PROFILE_PATH``, then the built-ins."""
    extra = [Path(p) for p in os.environ.get(PROFILE_PATH_ENV, "").split(os.pathsep) if p]
    return [*extra, _builtin_dir()]


def _builtin_dir() -> Path:
    try:  # installed (wheel or editable): the folder is the package neurocomp.hardware_profiles
        return Path(str(resources.files("neurocomp.hardware_profiles")))
    except ModuleNotFoundError:  # a plain source checkout on sys.path
        return Path(__file__).resolve().parents[2] / "hardware_profiles"


def list_profiles() -> list[str]:
    """Names of all profiles found, sorted; an earlier folder shadows a later one."""
    names: set[str] = set()
    for d in profile_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def find_profile(name: str) -> Path:
    for d in profile_dirs():
        candidate = d / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    raise ProfileError([Problem(f"profile {name!r}", f"no such profile (available: {', '.join(list_profiles())})")])


def load_profile(name_or_path: str | os.PathLike) -> Profile:
    """Load a profile by name (``"loihi2"``) or from a YAML file path.

    Raises :class:`ProfileError` listing every schema problem, each with the file and key.
    """
    text = os.fspath(name_or_path)
    is_path = text.endswith((".yaml", ".yml")) or os.sep in text
    path = Path(text) if is_path else find_profile(text)
    if not path.is_file():
        raise ProfileError([Problem(str(path), "profile file not found")])
    stat = path.stat()
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> Profile:
    return _load_file(Path(path))


def load_profile_with(name_or_path: str | os.PathLike, overrides: Mapping[str, Any]) -> Profile:
    """A profile with some of its keys replaced, checked exactly as a profile file is.

    ``overrides``: dotted keys of the profile's YAML and their new values, e.g.
    ``{"formats.weight.mantissa_bits": 6, "learning.stochastic_rounding": False}``. The result
    has the base profile's name and a fingerprint of its own (of the merged document).
    Raises :class:`ProfileError` naming the key for a schema problem or a key that does not fit.
    """
    text = os.fspath(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) or os.sep in text else find_profile(text)
    data = _read(path)
    where = f"{path.name} (overridden)"
    problems = []
    for key, value in overrides.items():
        node, parts = data, str(key).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not all(parts):
            problems.append(Problem(where, f"{key}: not a key of a profile mapping"))
            continue
        node[parts[-1]] = copy.deepcopy(value)
    if problems:
        raise ProfileError(problems, header=f"invalid overrides of profile {path}")
    return _from_data(data, path, where, " with the overrides " + ", ".join(f"{k}={v!r}" for k, v in overrides.items()))


def _read(path: Path) -> Any:
    try:
        return read_yaml(path)
    except YamlError as exc:
        raise ProfileError([Problem("", str(exc))]) from None


def _load_file(path: Path) -> Profile:
    return _from_data(_read(path), path, path.name)


def _from_data(data: Any, path: Path, where: str, what: str = "") -> Profile:
    if not isinstance(data, dict):
        raise ProfileError([Problem(where, "a profile must be a YAML mapping")])
    problems: list[Problem] = []
    try:
        profile = build(Profile, data, "", problems, where)
        problems += _check_provenance(data, where)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, IndexError, RecursionError) as exc:
        # a safety net: the schema's checks should have named it more precisely
        raise ProfileError([Problem(where, f"malformed profile ({type(exc).__name__}: {exc})")]) from None
    if isinstance(data.get("name"), str) and data["name"] != path.stem:
        problems.append(Problem(where, f"name: {data['name']!r} does not match the file name {path.stem!r}"))
    if problems or profile is None:
        raise ProfileError(problems, header=f"invalid profile {path}{what}")
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return _with_internal(profile, str(path), fingerprint)


def _with_internal(profile: Profile, path: str, fingerprint: str) -> Profile:
    object.__setattr__(profile, "path", path)  # loader-owned fields, set once before anyone sees it
    object.__setattr__(profile, "fingerprint", fingerprint)
    return profile


def _check_provenance(data: dict, where: str) -> list[Problem]:
    """Every number needs a source whose ``covers`` prefixes its key; estimates must exist."""
    problems = []
    sources = data.get("sources") or []
    if not isinstance(sources, list):
        return [Problem(where, f"sources: expected a list, got {type(sources).__name__}")]
    covers = [
        c
        for s in sources
        if isinstance(s, dict) and isinstance(s.get("covers") or [], list)
        for c in (s.get("covers") or [])
        if isinstance(c, str)
    ]
    for c in covers:
        if not path_exists(data, c):
            problems.append(Problem(where, f"sources: covers {c!r}, which is not a key of this profile"))
    for e in data.get("estimates") or []:
        if isinstance(e, str) and not path_exists(data, e):
            problems.append(Problem(where, f"estimates: {e!r} is not a key of this profile"))
    exempt = ("schema", "sources", "estimates")
    for leaf in numeric_leaves(data):
        if leaf.split(".")[0].split("[")[0] in exempt:
            continue
        if not any(leaf == c or leaf.startswith(c + ".") or leaf.startswith(c + "[") for c in covers):
            problems.append(Problem(where, f"{leaf}: no entry in sources covers this number"))
    return problems
