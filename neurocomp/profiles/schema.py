"""Build frozen dataclasses from parsed YAML, collecting every schema problem.

The schema *is* the dataclass: field types come from the annotations, bounds from
``field(metadata={"ge": ..., "le": ...})``, and cross-field rules from an optional
``_problems(self) -> list[str]`` method. Unknown keys, missing keys, wrong types and
out-of-range values are all reported with their dotted key path, and nothing is raised
until the whole document has been read.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from .._frozen import FrozenDict, freeze
from ..errors import Problem

_MISSING = object()


def build(cls: type, data: Any, path: str, problems: list[Problem], where: str = "") -> Any:
    """Convert ``data`` (parsed YAML) into an instance of ``cls``.

    Problems are appended to ``problems`` as ``Problem(where, "<path>: message")``; the
    return value is ``None`` when the value could not be built.
    """
    return _convert(cls, data, path, problems, where)


def _report(problems: list[Problem], where: str, path: str, msg: str) -> None:
    problems.append(Problem(where, f"{path}: {msg}" if path else msg))


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (dict, Mapping, FrozenDict) or tp is FrozenDict:
        args = typing.get_args(tp)
        return f"mapping of {_type_name(args[1])}" if args else "mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, path: str, problems: list[Problem], where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path, problems, where)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            _report(problems, where, path, f"must not be null (expected {_type_name(tp)})")
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path, problems, where)
        for a in non_none:  # first alternative that converts cleanly
            trial: list[Problem] = []
            out = _convert(a, value, path, trial, where)
            if not trial:
                return out
        _report(problems, where, path, f"expected {_type_name(tp)}, got {value!r}")
        return None
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            _report(problems, where, path, f"{value!r} is not one of {', '.join(map(repr, choices))}")
            return None
        return value
    if origin is tuple:
        (item_tp, *_rest) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            _report(problems, where, path, f"expected a list, got {value!r}")
            return None
        return tuple(_convert(item_tp, v, f"{path}[{i}]", problems, where) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is FrozenDict or origin is FrozenDict:
        args = typing.get_args(tp)
        val_tp = args[1] if args else Any
        if not isinstance(value, Mapping):
            _report(problems, where, path, f"expected a mapping, got {value!r}")
            return None
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                _report(problems, where, path, f"key {k!r} must be a string")
                continue
            out[k] = freeze(v) if val_tp is Any else _convert(val_tp, v, f"{path}.{k}", problems, where)
        return FrozenDict(out)
    if tp is Any:
        return freeze(value)
    if tp is bool:
        if not isinstance(value, bool):
            _report(problems, where, path, f"expected true or false, got {value!r}")
            return None
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _report(problems, where, path, f"expected an integer, got {value!r}")
            return None
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _report(problems, where, path, f"expected a number, got {value!r}")
            return None
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _report(problems, where, path, f"expected a string, got {value!r}")
            return None
        return value
    raise TypeError(f"schema: unsupported annotation {tp!r} at {path}")  # a bug in the schema, not the data


def _check_bounds(f: dataclasses.Field, value: Any, path: str, problems: list[Problem], where: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    md = f.metadata
    if "ge" in md and value < md["ge"]:
        _report(problems, where, path, f"{value} is below the minimum {md['ge']}")
    if "gt" in md and value <= md["gt"]:
        _report(problems, where, path, f"{value} must be greater than {md['gt']}")
    if "le" in md and value > md["le"]:
        _report(problems, where, path, f"{value} is above the maximum {md['le']}")


def _build_dataclass(cls: type, value: Any, path: str, problems: list[Problem], where: str) -> Any:
    if not isinstance(value, Mapping):
        _report(problems, where, path, f"expected a mapping, got {value!r}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")}
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            _report(problems, where, _join(path, str(key)), f"unknown key (known keys: {known})")
    kwargs: dict[str, Any] = {}
    ok = True
    for name, f in fields.items():
        sub = _join(path, name)
        raw = value.get(name, _MISSING)
        if raw is _MISSING:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                _report(problems, where, sub, "required key is missing")
                ok = False
            continue
        before = len(problems)
        conv = _convert(hints[name], raw, sub, problems, where)
        if len(problems) > before:
            ok = False
            continue
        _check_bounds(f, conv, sub, problems, where)
        kwargs[name] = conv
    if not ok:
        return None
    obj = cls(**kwargs)
    check = getattr(obj, "_problems", None)
    if check is not None:
        for msg in check():
            _report(problems, where, path, msg)
    return obj


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def numeric_leaves(data: Any, path: str = "") -> list[str]:
    """Dotted paths of every numeric (int/float, not bool) leaf in a parsed YAML tree."""
    out: list[str] = []
    if isinstance(data, Mapping):
        for k, v in data.items():
            out += numeric_leaves(v, _join(path, str(k)))
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            out += numeric_leaves(v, f"{path}[{i}]")
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out.append(path)
    return out


def path_exists(data: Any, dotted: str) -> bool:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True
