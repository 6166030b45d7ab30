"""The YAML model format (with ``.npz`` for large arrays): ``load_network`` / ``save_network``.

A model file::

    neurocomp: 1                      # format version
    name: demo
    populations:
      - {name: in,  size: 100, neuron: {model: SpikeInput, rate_hz: 50, seed: 1}}
      - {name: rec, size: 100, neuron: {model: LIF, tau_mem_ms: 20, v_th: 0.6, reset: subtract}}
    projections:
      - pre: in
        post: rec
        weights: {init: normal, std: 0.1, seed: 1, density: 0.5}   # or a nested list, or
        delay_steps: 0                                             # {file: w.npz, key: w}
        plasticity: {rule: eprop, params: {lr: 0.001}}

Weights are given inline (a ``[post][pre]`` nested list, or ``{sparse: {shape, rows,
cols, values}}``), from a file (``{file: PATH, key: KEY}``, ``.npz`` or ``.npy``, relative
to the YAML file; a sparse matrix is stored as ``KEY/rows``, ``KEY/cols``, ``KEY/values``,
``KEY/shape``), or by a seeded initializer (see :func:`neurocomp.graph.weights.init_weights`).

Loading collects every problem in the file and raises one :class:`ModelError`.
``save_network`` writes arrays of more than ``inline_max`` entries to ``<stem>.npz``
beside the YAML; ``load_network(save_network(net, p)) == net`` exactly.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_savez, atomic_write_text, output_target
from .._resources import require_memory, weights_init_bytes
from .._yaml import YamlError, dump_yaml, read_yaml
from ..errors import ModelError, Problem
from .conv import ConvProjection, conv_from_dict
from .network import Network, Population
from .neurons import NEURON_MODELS, NeuronModel
from .projection import Projection, RuleSpec
from .validate import rule_problems
from .weights import SparseWeights, init_weights

FORMAT_VERSION = 1
_TOP_KEYS = {"neurocomp", "name", "description", "populations", "projections"}
_POP_KEYS = {"name", "size", "neuron"}
_PROJ_KEYS = {"name", "pre", "post", "weights", "delay_steps", "sign_mode", "plasticity", "port", "conv", "pool"}


class _Arrays:
    """Reads ``{file, key}`` references relative to the model file, caching open files."""

    def __init__(self, base: Path):
        self.base = base
        self._open: dict[Path, Any] = {}

    def get(self, ref: Mapping[str, Any], suffix: str = "") -> np.ndarray:
        path = Path(str(ref["file"]))
        path = path if path.is_absolute() else self.base / path
        if path not in self._open:
            if not path.is_file():
                raise ValueError(f"array file {path} not found")
            try:
                self._open[path] = np.load(path, allow_pickle=False)
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise ValueError(f"cannot read array file {path}: {exc}") from None
        data = self._open[path]
        if isinstance(data, np.ndarray):
            if suffix:
                raise ValueError(f"{path} is a single .npy array; a sparse matrix needs an .npz file")
            return data
        key = str(ref.get("key", "")) + suffix
        if key not in data.files:
            raise ValueError(f"key {key!r} not in {path} (has: {', '.join(data.files[:10])})")
        return data[key]

    def close(self) -> None:
        for f in self._open.values():
            if hasattr(f, "close"):
                f.close()


def load_network(path: str | os.PathLike) -> Network:
    """Read a model file. Raises :class:`ModelError` listing every problem in it."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except YamlError as exc:
        raise ModelError([Problem("", str(exc))]) from None
    arrays = _Arrays(path.parent)
    try:
        return network_from_dict(data, arrays, where=str(path))
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, IndexError, RecursionError) as exc:
        if isinstance(exc, ModelError):
            raise
        # a safety net: the element checks should have named it more precisely
        raise ModelError([Problem(str(path), f"malformed model ({type(exc).__name__}: {exc})")]) from None
    finally:
        arrays.close()


def network_from_dict(data: Any, arrays: _Arrays | None = None, where: str = "<model>") -> Network:
    """Build a :class:`Network` from a parsed model document, collecting all problems."""
    arrays = arrays or _Arrays(Path.cwd())
    if not isinstance(data, Mapping):
        raise ModelError([Problem(where, "a model file must be a YAML mapping")])
    problems: list[Problem] = []
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(Problem(where, f"{key}: unknown top-level key (known: {', '.join(sorted(_TOP_KEYS))})"))
    version = data.get("neurocomp", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        problems.append(
            Problem(where, f"neurocomp: format version {version!r} is not supported (this is {FORMAT_VERSION})")
        )
    name = data.get("name", Path(where).stem)
    pops_raw = _list_of(data, "populations", where, problems)
    projs_raw = _list_of(data, "projections", where, problems)

    # Names are tracked as declared, separately from the populations that are valid, so a
    # duplicate is found even when one copy is invalid, and a projection onto an invalid
    # population is not misreported as naming an unknown one.
    declared: dict[str, int | None] = {}
    pops: list[Population] = []
    for i, raw in enumerate(pops_raw):
        pname = raw.get("name") if isinstance(raw, Mapping) else None
        if isinstance(pname, str) and pname in declared:
            problems.append(Problem(f"population {pname!r}", f"duplicate name (populations[{i}])"))
            continue
        pop = _guarded(_population, f"populations[{i}]", problems, raw, i, arrays, problems)
        if isinstance(pname, str):
            size = raw.get("size")
            declared[pname] = size if isinstance(size, int) and not isinstance(size, bool) else None
        if pop is not None:
            pops.append(pop)
    require_memory(_init_estimates(projs_raw, declared), f"loading model {where}")
    valid = {p.name for p in pops}
    projs: list[Projection] = []
    seen_proj: set[str] = set()
    for i, raw in enumerate(projs_raw):
        proj = _guarded(_projection, f"projections[{i}]", problems, raw, i, declared, arrays, problems)
        if proj is None:
            continue
        if proj.name in seen_proj:
            problems.append(Problem(f"projection {proj.name!r}", f"duplicate name (projections[{i}])"))
            continue
        seen_proj.add(proj.name)
        if all(n in valid or n not in declared for n in (proj.pre, proj.post)):
            projs.append(proj)  # the Network checks it against its populations
        elif declared[proj.post] is not None and declared[proj.pre] is not None:
            want = (declared[proj.post], declared[proj.pre])
            if proj.shape != want:
                problems.append(
                    Problem(
                        f"projection {proj.name!r}", f"weights: shape {proj.shape} does not match [post, pre] = {want}"
                    )
                )
    try:
        net = Network(pops, projs, name=str(name), description=str(data.get("description", "")))
    except ModelError as exc:
        problems += exc.problems
        net = None
    if problems:
        raise ModelError(problems, header=f"invalid model {where} ({len(problems)} problem{'s' * (len(problems) > 1)})")
    return net  # type: ignore[return-value]


def _init_estimates(projs_raw: list, sizes: Mapping[str, int | None]) -> list[tuple[str, float]]:
    """Memory estimates of the projections drawn by seeded initializers (before drawing)."""
    out = []
    for raw in projs_raw:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("weights"), Mapping):
            continue
        spec = raw["weights"]
        post, pre = raw.get("post"), raw.get("pre")
        if not isinstance(post, str) or not isinstance(pre, str):
            continue  # reported by the projection's checks
        n_post, n_pre = sizes.get(post), sizes.get(pre)
        if "init" in spec and isinstance(n_post, int) and isinstance(n_pre, int):
            name = raw.get("name") or f"{raw.get('pre')}->{raw.get('post')}"
            out.append((f"projection {name!r}", weights_init_bytes(spec, n_post, n_pre)))
    return out


def _guarded(build, where: str, problems: list[Problem], *args):
    """``build(*args)``, with a malformed value the element checks did not foresee (a list
    where a name belongs, a number too large to convert) reported as a problem, not raised."""
    try:
        return build(*args)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, IndexError) as exc:
        problems.append(Problem(where, f"malformed value ({type(exc).__name__}: {exc})"))
        return None


def _list_of(data: Mapping, key: str, where: str, problems: list[Problem]) -> list:
    value = data.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(where, f"{key}: expected a list, got {type(value).__name__}"))
        return []
    return value


def _population(raw: Any, i: int, arrays: _Arrays, problems: list[Problem]) -> Population | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(f"populations[{i}]", f"expected a mapping, got {raw!r}"))
        return None
    where = f"population {raw.get('name', f'#{i}')!r}"
    ok = True
    for key in raw:
        if key not in _POP_KEYS:
            problems.append(Problem(where, f"{key}: unknown key (known: {', '.join(sorted(_POP_KEYS))})"))
            ok = False
    for key in ("name", "size", "neuron"):
        if key not in raw:
            problems.append(Problem(where, f"{key}: required key is missing"))
            ok = False
    neuron = _neuron(raw.get("neuron"), where, problems) if "neuron" in raw else None
    if not ok or neuron is None:
        return None
    try:
        return Population(raw["name"], raw["size"], neuron)
    except ModelError as exc:
        problems += exc.problems
        return None


def _neuron(raw: Any, where: str, problems: list[Problem]) -> NeuronModel | None:
    if not isinstance(raw, Mapping) or "model" not in raw:
        problems.append(Problem(where, f"neuron: expected a mapping with a 'model' key, got {raw!r}"))
        return None
    cls = NEURON_MODELS.get(raw["model"]) if isinstance(raw["model"], str) else None
    if cls is None:
        problems.append(
            Problem(where, f"neuron.model: unknown model {raw['model']!r} (known: {', '.join(NEURON_MODELS)})")
        )
        return None
    kwargs = {k: v for k, v in raw.items() if k != "model"}
    allowed = set(cls.__dataclass_fields__)
    unknown = [k for k in kwargs if k not in allowed]
    for k in unknown:
        problems.append(Problem(where, f"neuron.{k}: unknown parameter for {cls.model} (known: {', '.join(allowed)})"))
    if unknown:
        return None
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required parameter is missing
        problems.append(Problem(where, f"neuron: {exc}".replace("__init__() ", "")))
    except ModelError as exc:
        problems += [Problem(where, f"neuron.{p.message}") for p in exc.problems]
    return None


def _projection(
    raw: Any, i: int, sizes: dict[str, int | None], arrays: _Arrays, problems: list[Problem]
) -> Projection | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(f"projections[{i}]", f"expected a mapping, got {raw!r}"))
        return None
    name = raw.get("name") or f"{raw.get('pre', '?')}->{raw.get('post', '?')}"
    where = f"projection {name!r}"
    before = len(problems)
    for key in raw:
        if key not in _PROJ_KEYS:
            problems.append(Problem(where, f"{key}: unknown key (known: {', '.join(sorted(_PROJ_KEYS))})"))
    shared = [k for k in ("conv", "pool", "weights") if k in raw]
    for key in ("pre", "post"):
        if key not in raw:
            problems.append(Problem(where, f"{key}: required key is missing"))
    if len(shared) != 1:
        problems.append(Problem(where, f"expected exactly one of weights, conv or pool, got {shared or 'none'}"))
    if len(problems) > before:
        return None
    pre, post = raw["pre"], raw["post"]
    unknown = [(role, n) for role, n in (("pre", pre), ("post", post)) if n not in sizes]
    for role, n in unknown:
        problems.append(Problem(where, f"{role}: unknown population {n!r}"))
    if shared[0] != "weights":
        return None if unknown else _conv(raw, pre, post, arrays, where, problems)
    weights = _weights(raw["weights"], sizes.get(post), sizes.get(pre), pre == post, arrays, where, problems)
    delay = raw.get("delay_steps", 0)
    if isinstance(delay, (list, Mapping)):
        try:
            delay = np.asarray(arrays.get(delay) if isinstance(delay, Mapping) else delay)
        except ValueError as exc:
            problems.append(Problem(where, f"delay_steps: {exc}"))
            return None
    plasticity = None
    if raw.get("plasticity") is not None:
        plasticity = _rule(raw["plasticity"], where, problems)
        if plasticity is None:
            return None
    if weights is None or unknown:
        return None
    try:
        name, port = raw.get("name", ""), raw.get("port", "syn")
        return Projection(pre, post, weights, delay, raw.get("sign_mode"), plasticity, name=name, port=port)
    except ModelError as exc:
        problems += exc.problems
        return None


def _conv(raw: Mapping, pre: str, post: str, arrays: _Arrays, where: str, problems: list[Problem]):
    """A convolution or pooling entry (see :func:`neurocomp.graph.conv.conv_from_dict`)."""
    kw = {k: raw[k] for k in ("name", "delay_steps", "sign_mode", "port") if k in raw}
    if raw.get("plasticity") is not None:
        kw["plasticity"] = _rule(raw["plasticity"], where, problems)
    try:
        return conv_from_dict(raw, pre, post, lambda ref: np.asarray(arrays.get(ref), dtype=np.float64), **kw)
    except ModelError as exc:
        problems += exc.problems
    except (ValueError, TypeError, KeyError) as exc:
        problems.append(Problem(where, f"{'pool' if 'pool' in raw else 'conv'}: {exc}"))
    return None


def _rule(raw: Any, where: str, problems: list[Problem]) -> RuleSpec | None:
    if not isinstance(raw, Mapping) or "rule" not in raw:
        problems.append(Problem(where, f"plasticity: expected {{rule: NAME, params: {{...}}}}, got {raw!r}"))
        return None
    extra = [k for k in raw if k not in ("rule", "params")]
    if extra:
        problems.append(Problem(where, f"plasticity: unknown keys {extra} (known: rule, params)"))
        return None
    try:
        spec = RuleSpec(raw["rule"], raw.get("params") or {})
    except ModelError as exc:
        problems += [Problem(where, p.message) for p in exc.problems]
        return None
    bad = rule_problems(spec)
    problems += [Problem(where, f"plasticity: {m}") for m in bad]
    return None if bad else spec


def _weights(
    raw: Any,
    n_post: int | None,
    n_pre: int | None,
    recurrent: bool,
    arrays: _Arrays,
    where: str,
    problems: list[Problem],
):
    try:
        if isinstance(raw, list):
            arr = np.asarray(raw, dtype=np.float64)
            if arr.ndim != 2:
                raise ValueError(f"an inline matrix must be a list of rows, got {arr.ndim}-D")
            return arr
        if not isinstance(raw, Mapping):
            raise ValueError(f"expected a nested list, {{init: ...}}, {{file: ...}} or {{sparse: ...}}, got {raw!r}")
        if "init" in raw:
            if n_post is None or n_pre is None:
                return None  # the size is unknown: the population is unknown or its size invalid (reported)
            return init_weights(raw, n_post, n_pre, recurrent=recurrent)
        if "sparse" in raw:
            s = raw["sparse"]
            if not isinstance(s, Mapping) or set(s) != {"shape", "rows", "cols", "values"}:
                raise ValueError("sparse: expected a mapping with shape, rows, cols and values")
            return SparseWeights(tuple(s["shape"]), s["rows"], s["cols"], s["values"])
        if "file" in raw:
            extra = [k for k in raw if k not in ("file", "key", "format")]
            if extra:
                raise ValueError(f"unknown keys {extra} for a file reference (known: file, key, format)")
            if raw.get("format", "dense") == "sparse":
                shape = arrays.get(raw, "/shape")
                return SparseWeights(
                    tuple(int(x) for x in shape),
                    arrays.get(raw, "/rows"),
                    arrays.get(raw, "/cols"),
                    arrays.get(raw, "/values"),
                )
            arr = np.asarray(arrays.get(raw), dtype=np.float64)
            if arr.ndim != 2:
                raise ValueError(f"array {raw.get('key', '')!r} is {arr.ndim}-D; weights must be 2-D [post, pre]")
            return arr
        raise ValueError(f"expected one of init, file or sparse keys, got {sorted(raw)}")
    except (ValueError, TypeError) as exc:
        problems.append(Problem(where, f"weights: {exc}"))
        return None


# -- writing ------------------------------------------------------------------------------


def save_network(net: Network, path: str | os.PathLike, inline_max: int = 64) -> Path:
    """Write ``net`` to ``path`` (YAML) plus ``<stem>.npz`` when an array has more than
    ``inline_max`` entries. Returns the YAML path. Floats are written exactly."""
    path = Path(path)
    npz_name = path.with_suffix(".npz").name
    arrays: dict[str, np.ndarray] = {}

    def put(key: str, arr: np.ndarray, as_list) -> Any:
        if arr.size <= inline_max:
            return as_list(arr)
        arrays[key] = arr
        return {"file": npz_name, "key": key}

    doc: dict[str, Any] = {"neurocomp": FORMAT_VERSION, "name": net.name}
    if net.description:
        doc["description"] = net.description
    doc["populations"] = [{"name": p.name, "size": p.size, "neuron": _neuron_dict(p.neuron)} for p in net.populations]
    projs = []
    for pr in net.projections:
        d: dict[str, Any] = {"name": pr.name, "pre": pr.pre, "post": pr.post}
        w = pr.weights
        key = f"projections/{pr.name}"
        if isinstance(pr, ConvProjection):
            d["conv"] = {**pr.geometry.to_dict(), "kernel": put(f"{key}/kernel", pr.kernel, lambda a: a.tolist())}
        elif isinstance(w, SparseWeights):
            if w.nnz <= inline_max:
                d["weights"] = {
                    "sparse": {
                        "shape": list(w.shape),
                        "rows": w.rows.tolist(),
                        "cols": w.cols.tolist(),
                        "values": w.values.tolist(),
                    }
                }
            else:
                for part, arr in (
                    ("rows", w.rows),
                    ("cols", w.cols),
                    ("values", w.values),
                    ("shape", np.asarray(w.shape, np.int64)),
                ):
                    arrays[f"{key}/weights/{part}"] = arr
                d["weights"] = {"file": npz_name, "key": f"{key}/weights", "format": "sparse"}
        else:
            d["weights"] = put(f"{key}/weights", w, lambda a: a.tolist())
        if isinstance(pr.delay_steps, np.ndarray):
            d["delay_steps"] = put(f"{key}/delay_steps", pr.delay_steps, lambda a: a.tolist())
        elif pr.delay_steps:
            d["delay_steps"] = pr.delay_steps
        if pr.sign_mode is not None:
            d["sign_mode"] = pr.sign_mode
        if pr.plasticity is not None:
            d["plasticity"] = pr.plasticity.to_dict()
        if pr.port != "syn":
            d["port"] = pr.port
        projs.append(d)
    doc["projections"] = projs
    npz = path.with_suffix(".npz")
    output_target(path)  # both targets checked before either is written
    output_target(npz)
    if arrays:  # the arrays first: the YAML that refers to them appears last
        atomic_savez(npz, arrays)
    atomic_write_text(path, dump_yaml(doc))
    if not arrays and npz.is_file():
        npz.unlink()  # a stale companion from an earlier save would be misleading
    return path


def _neuron_dict(n: NeuronModel) -> dict:
    return {k: v for k, v in n.to_dict().items() if v is not None}
