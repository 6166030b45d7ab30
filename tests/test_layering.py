"""The package layering holds: no neurocomp module imports from a layer above its own, and no
private name (``_x``) is imported from another package.

The layers, bottom to top (a module may import its own layer and those below):

* the shared helpers: ``errors`` and the top-level private modules (``_frozen``, ``_yaml``, ...);
* ``kernels``: compiled numba kernels over plain arrays, with ``learning.quantities`` (the
  learning quantities defined once as kernels: it imports only ``kernels``);
* ``arith``: number formats and integer arithmetic;
* ``profiles``: chip profiles (data);
* ``learning``: the learning-engine IR and engines, and the rules' registry
  (``learning.lowering``) that the compiler and the graph look rules up in;
* ``graph``: the float network;
* ``compiler``: passes and the compiled IR (``Program``);
* ``emulator``: runs a Program;
* ``rules``: one module per rule, its float form and lowerings (which build compiled IR);
  importing it registers the rules with ``learning.lowering``;
* ``reference``: the float simulations (of the rules' float forms);
* ``backends``, ``tasks``, ``analysis``, ``sweep``, then the entry points (``cli``, the package).

Imports inside functions count as much as module-level ones: a lazy import still makes the
lower layer depend on the upper one. ``if TYPE_CHECKING:`` imports count too. Nor is a private
attribute that another package defines read through an object (``syn.engine._plans``): what a
package offers the others is public.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import neurocomp

ROOT = Path(neurocomp.__file__).parent

LAYERS = [
    {"errors", "_frozen", "_yaml", "_atomic", "_resources", "_version"},
    {"kernels", "learning.quantities"},
    {"arith"},
    {"profiles"},
    {"learning"},
    {"graph"},
    {"compiler"},
    {"emulator"},
    {"rules"},
    {"reference"},
    {"backends"},
    {"tasks"},
    {"analysis"},
    {"sweep"},
    {"cli", "__init__", "__main__"},
]


def _unit(module: str) -> str:
    """The layering unit of a dotted module name below ``neurocomp``: a module listed in
    :data:`LAYERS` itself (``learning.quantities``), else its top-level package or module."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        name = ".".join(parts[:k])
        if any(name in layer for layer in LAYERS):
            return name
    raise AssertionError(f"neurocomp.{module} is in no layer of LAYERS: add it")


def _layer(module: str) -> int:
    unit = _unit(module)
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _modules():
    """``(dotted name below neurocomp, is a package __init__, parsed tree)`` of every module."""
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), is_pkg, ast.parse(path.read_text(), filename=str(path))


def _imports(module: str, is_pkg: bool, tree: ast.AST):
    """``(imported module below neurocomp, imported names, line)`` for every import of a
    neurocomp module in ``tree`` (relative imports resolved)."""
    here = module.split(".") if is_pkg and module != "__init__" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("neurocomp."):
                    yield alias.name.removeprefix("neurocomp."), [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1] if node.level > 1 else here
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("neurocomp"):
                target = node.module.removeprefix("neurocomp").lstrip(".")
            else:
                continue
            names = [a.name for a in node.names]
            if not target:  # ``from neurocomp import x`` / ``from . import x`` at the top
                for n in names:
                    yield n, [], node.lineno
            elif not node.module and node.level:  # ``from . import x``: submodules of the package
                for n in names:
                    yield f"{target}.{n}", [], node.lineno
            else:
                yield target, names, node.lineno


def _top(module: str) -> str:
    return module.split(".")[0]


def _all_imports():
    for module, is_pkg, tree in _modules():
        for target, names, line in _imports(module, is_pkg, tree):
            yield module, target, names, line


def test_every_module_is_in_a_layer():
    for module, _, _ in _modules():
        _layer(module)


def test_no_import_goes_up_a_layer():
    upward = [
        f"neurocomp.{module}:{line} imports neurocomp.{target} (layer {_layer(target)} > {_layer(module)})"
        for module, target, _, line in _all_imports()
        if _layer(target) > _layer(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_private_name_crosses_packages():
    private = []
    for module, target, names, line in _all_imports():
        if _top(target) == _top(module) or _top(target).startswith("_"):  # the shared private helpers
            continue
        bad = [n for n in names if n.startswith("_")]
        bad += [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
        if bad:
            private.append(f"neurocomp.{module}:{line} imports {bad} from neurocomp.{target}")
    assert not private, "\n".join(private)


def _foreign_private_attributes(module: str, is_pkg: bool, tree: ast.AST):
    """``(alias.attribute, line)`` for every private attribute read through a name imported
    from another package (``from ..kernels import reckon as kr`` then ``kr._x``)."""
    foreign = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            targets = [t for t, _, _ in _imports(module, is_pkg, ast.Module(body=[node], type_ignores=[]))]
            if any(_top(t) != _top(module) and not _top(t).startswith("_") for t in targets):
                foreign |= {a.asname or a.name.split(".")[0] for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in foreign:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                yield f"{node.value.id}.{node.attr}", node.lineno


def test_no_private_attribute_of_another_package_is_read():
    private = [
        f"neurocomp.{module}:{line} reads {name}"
        for module, is_pkg, tree in _modules()
        for name, line in _foreign_private_attributes(module, is_pkg, tree)
    ]
    assert not private, "\n".join(private)


def test_the_private_attribute_check_sees_one():
    tree = ast.parse("from ..kernels import reckon as kr\nfrom . import layout\nkr._wrap(1)\nlayout._x\n")
    assert list(_foreign_private_attributes("emulator.reckon", False, tree)) == [("kr._wrap", 3)]


def test_the_checker_sees_an_upward_import():
    """The walk resolves relative imports: a lazy ``from ..rules import x`` in the compiler is
    found, at the right layers (the test above would pass vacuously otherwise)."""
    tree = ast.parse("def f():\n    from ...rules import eprop\n    from ..ir import QProjection\n")
    found = [(t, n) for t, n, _ in _imports("compiler.passes.lower_learning", False, tree)]
    assert found == [("rules", ["eprop"]), ("compiler.ir", ["QProjection"])]
    assert _layer("rules") > _layer("compiler.passes.lower_learning")
    assert _layer("learning.quantities") < _layer("learning.engine") == _layer("learning")


# private attributes of other libraries' objects that neurocomp reads, by (package, attribute):
# the kernels ask numba's dispatcher whether its on-disk cache index holds a kernel
THIRD_PARTY_PRIVATE = {("kernels", "_cache")}


def _private_definitions(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, assigned names and attributes,
    arguments and keywords (``_x`` but not ``__x__``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
    return {n for n in names if n.startswith("_") and not n.endswith("__")}


def _foreign_private_reads(modules):
    """``(module, line, attribute, packages that define it)`` for every private attribute read
    through an object other than ``self``/``cls`` that the reading module's package does not
    define but another package of neurocomp does (``modules``: ``(dotted name, tree)``)."""
    modules = list(modules)
    defined = defaultdict(set)
    for module, tree in modules:
        defined[_top(module)] |= _private_definitions(tree)
    for module, tree in modules:
        top = _top(module)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.endswith("__") or attr in defined[top]:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            owners = sorted(t for t, names in defined.items() if t != top and attr in names)
            if owners and (top, attr) not in THIRD_PARTY_PRIVATE:
                yield module, node.lineno, attr, owners


def test_no_private_attribute_another_package_defines_is_read_through_an_object():
    reads = [
        f"neurocomp.{module}:{line} reads .{attr}, private to {', '.join(owners)}"
        for module, line, attr, owners in _foreign_private_reads((m, t) for m, _, t in _modules())
    ]
    assert not reads, "\n".join(reads)


def test_the_object_check_sees_a_private_read():
    """A private attribute the engine defines, read by the emulator through an object (not a
    name it imported), is found; the package's own, ``self``'s and a dunder are not."""
    engine = ast.parse("class E:\n    def __init__(self):\n        self._plans = {}\n        self._own = 1\n")
    emulator = ast.parse("def f(syn, self):\n    self._own\n    syn.__dict__\n    _own = 2\n"
                         "    syn.engine._own\n    return syn.engine._plans\n")
    found = list(_foreign_private_reads([("learning.engine", engine), ("emulator.fused", emulator)]))
    assert found == [("emulator.fused", 6, "_plans", ["learning"])]


def test_the_checker_sees_a_private_name_imported_in_a_function():
    tree = ast.parse("def f():\n    from ..learning.engine import _Stream\n")
    found = [(t, n) for t, n, _ in _imports("emulator.fused", False, tree)]
    assert found == [("learning.engine", ["_Stream"])]
    assert _top("learning.engine") != _top("emulator.fused")
