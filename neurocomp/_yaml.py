"""YAML reading shared by the model and profile loaders.

PyYAML's safe loader silently keeps the last of two equal keys; for a model or a chip
profile that hides a mistake, so duplicate keys are an error here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlError(ValueError):
    """A file that is not valid YAML; the message names the file, line and column."""


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    # Only keys written in this mapping can be duplicates; keys merged in with `<<: *anchor`
    # may be overridden locally, as YAML intends.
    explicit = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
    seen: dict[Any, yaml.Node] = {}
    for key_node in explicit:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a scalar, not {type(key).__name__}", key_node.start_mark
            ) from None
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})", mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> Any:
    """Parse ``path``; raise :class:`YamlError` naming the file and position on bad syntax."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise YamlError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return parse_yaml(text, str(path))


def parse_yaml(text: str, name: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(f"{where}: invalid YAML: {problem}") from exc


def dump_yaml(data: Any) -> str:
    """Block-style YAML with keys in insertion order (floats written with repr, so exact)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
