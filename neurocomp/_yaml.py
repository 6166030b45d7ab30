"""YAML reading shared by the model and profile loaders.

PyYAML's safe loader is made stricter and safer here:

* two equal keys in one mapping are an error (PyYAML silently keeps the last, which hides
  a mistake in a model or a chip profile);
* ``1e-3`` is a number, as in YAML 1.2 and JSON (YAML 1.1, which PyYAML follows, needs a
  dot: ``1.0e-3``, and reads ``1e-3`` as a string);
* nesting deeper than :data:`MAX_DEPTH` and aliases that expand to more than
  :data:`MAX_EXPANDED_NODES` nodes (a "billion laughs" file) are refused before anything
  is built from them;
* the text must be UTF-8; a bad byte is reported with its offset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

MAX_DEPTH = 64  # nesting levels of a document (with aliases expanded); models use about 6
MAX_EXPANDED_NODES = 2_000_000  # nodes of a document with aliases expanded (a 1000 x 1000 inline matrix is 1e6)


class YamlError(ValueError):
    """A file that is not valid YAML; the message names the file, line and column."""


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        # the composer recurses once per level: bound it before Python's stack is
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node):
        _check_expansion(node)
        return super().construct_document(node)


# YAML 1.2's floats without a dot (1e-3, 2E+5), which YAML 1.1 reads as strings
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand beyond MAX_EXPANDED_NODES nodes or MAX_DEPTH
    levels. Sizes and depths are memoized per node, iteratively (an alias chain can be
    deeper than Python's stack)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        kids = _children(node)
        if not done:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            continue
        size[id(node)] = 1 + sum(size[id(k)] for k in kids)
        depth[id(node)] = 1 + max((depth[id(k)] for k in kids), default=0)
        if size[id(node)] > MAX_EXPANDED_NODES or depth[id(node)] > MAX_DEPTH:
            what = (
                f"expands to more than {MAX_EXPANDED_NODES} nodes"
                if size[id(node)] > MAX_EXPANDED_NODES
                else f"nests more than {MAX_DEPTH} levels deep"
            )
            raise yaml.composer.ComposerError(None, None, f"aliases: the document {what}", node.start_mark)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    return []


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
        if path.is_dir():
            raise YamlError(f"{path}: is a directory, not a YAML file")
        data = path.read_bytes()
    except OSError as exc:
        raise YamlError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return parse_yaml(decode_utf8(data, str(path)), str(path))


def decode_utf8(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped); :class:`YamlError` naming
    the offset of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlError(
            f"{name}: not UTF-8 text: byte 0x{data[exc.start]:02x} at byte offset {exc.start} ({exc.reason})"
        ) from None


def parse_yaml(text: str, name: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:  # a guard above should have caught it; never a traceback
        raise YamlError(f"{name}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(f"{where}: invalid YAML: {problem}") from exc


def dump_yaml(data: Any) -> str:
    """Block-style YAML with keys in insertion order (floats written with repr, so exact)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
