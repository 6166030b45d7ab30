"""Synaptic weight containers and seeded initializers.

Weight matrices are indexed ``[post, pre]`` (shape ``(post.size, pre.size)``), as in
Lava's Dense process and in e-prop's ``W_ji``. Values are float64 in model units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._frozen import readonly_array

INIT_KINDS = ("normal", "uniform", "glorot", "constant")
_BLOCK_ROWS = 256  # initializers draw row blocks of this size; part of their definition


@dataclass(frozen=True, eq=False)
class SparseWeights:
    """A sparse ``[post, pre]`` weight matrix in canonical COO form.

    ``rows`` are post-synaptic indices, ``cols`` pre-synaptic indices (int32, or int64 for
    dimensions of 2**31 or more), sorted row-major without duplicates; ``values`` are float64. Explicit zeros are kept
    (a stored synapse of weight 0 is still a synapse, e.g. for a plastic projection).
    """

    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if getattr(self, "_trusted", False):
            return
        shape = tuple(int(s) for s in self.shape)
        index = np.int32 if max(shape) < 2**31 else np.int64  # half the memory for any realistic network
        rows = np.asarray(self.rows).ravel()
        cols = np.asarray(self.cols).ravel()
        if np.iscomplexobj(self.values):  # float64 would silently drop the imaginary part
            raise ValueError("sparse weights: values must be real numbers, got complex values")
        values = np.asarray(self.values, dtype=np.float64).ravel()
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"sparse weights: shape must be two sizes >= 1, got {self.shape!r}")
        if not (len(rows) == len(cols) == len(values)):
            raise ValueError(
                f"sparse weights: rows, cols and values differ in length ({len(rows)}, {len(cols)}, {len(values)})"
            )
        if len(rows) and (rows.min() < 0 or rows.max() >= shape[0] or cols.min() < 0 or cols.max() >= shape[1]):
            raise ValueError(f"sparse weights: an index lies outside the shape {shape}")
        if not _is_canonical(rows, cols):
            flat = rows.astype(np.int64) * shape[1] + cols
            order = np.argsort(flat, kind="stable")
            rows, cols, values, flat = rows[order], cols[order], values[order], flat[order]
            if np.any(flat[1:] == flat[:-1]):
                i = int(np.nonzero(flat[1:] == flat[:-1])[0][0])
                raise ValueError(f"sparse weights: duplicate entry at [post={rows[i]}, pre={cols[i]}]")
            del flat
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "rows", readonly_array(rows, index))
        object.__setattr__(self, "cols", readonly_array(cols, index))
        object.__setattr__(self, "values", readonly_array(values, np.float64))

    @classmethod
    def _canonical(
        cls, shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, values: np.ndarray
    ) -> SparseWeights:
        """Wrap arrays that are already canonical (sorted row-major, unique, in range, right
        dtypes) without checking or copying them; they become read-only. For neurocomp's own
        initializers, which build them that way, so that a 1e8-synapse matrix is not copied."""
        obj = cls.__new__(cls)
        for a in (rows, cols, values):
            a.setflags(write=False)
        object.__setattr__(obj, "_trusted", True)
        for name, v in (("shape", tuple(shape)), ("rows", rows), ("cols", cols), ("values", values)):
            object.__setattr__(obj, name, v)
        return obj

    def __getstate__(self):
        return {k: getattr(self, k) for k in ("shape", "rows", "cols", "values")}

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)

    @property
    def nnz(self) -> int:
        return len(self.values)

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=np.float64)
        out[self.rows, self.cols] = self.values
        return out

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> SparseWeights:
        dense = np.asarray(dense, dtype=np.float64)
        rows, cols = np.nonzero(dense)
        return cls(dense.shape, rows, cols, dense[rows, cols])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseWeights):
            return NotImplemented
        return (
            self.shape == other.shape
            and np.array_equal(self.rows, other.rows)
            and np.array_equal(self.cols, other.cols)
            and np.array_equal(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SparseWeights(shape={self.shape}, nnz={self.nnz})"


Weights = np.ndarray | SparseWeights

_CHUNK = 1 << 22  # entries per chunk for whole-array checks (bounds temporary memory)


def row_pointers(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """CSR row pointers (int64, length ``n_rows + 1``) of sorted row indices: row ``j``'s
    entries are ``indptr[j]:indptr[j + 1]``. Avoids ``bincount``'s int64 copy of ``rows``."""
    return np.searchsorted(rows, np.arange(n_rows + 1, dtype=rows.dtype), side="left").astype(np.int64)


def count_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(idx, minlength=n)`` in chunks, so a large int32 index array is never
    widened to int64 all at once."""
    out = np.zeros(n, dtype=np.int64)
    for a in range(0, len(idx), _CHUNK):
        out += np.bincount(idx[a : a + _CHUNK], minlength=n)
    return out


def _is_canonical(rows: np.ndarray, cols: np.ndarray) -> bool:
    """Sorted row-major with no duplicates, checked chunk by chunk to bound temporaries."""
    n = len(rows)
    for a in range(0, max(n - 1, 0), _CHUNK):
        b = min(a + _CHUNK, n - 1)
        r0, r1 = rows[a:b], rows[a + 1 : b + 1]
        c0, c1 = cols[a:b], cols[a + 1 : b + 1]
        if not np.all((r1 > r0) | ((r1 == r0) & (c1 > c0))):
            return False
    return True


def weight_values(w: Weights) -> np.ndarray:
    """The stored values: all entries of a dense matrix, the nonzeros of a sparse one."""
    return w.values if isinstance(w, SparseWeights) else w.ravel()


def weight_shape(w: Weights) -> tuple[int, ...]:
    return w.shape if isinstance(w, SparseWeights) else tuple(w.shape)


def init_weights(spec: Mapping[str, Any], n_post: int, n_pre: int, recurrent: bool = False) -> Weights:
    """Draw a weight matrix from a seeded initializer spec.

    Spec keys: ``init`` (``normal``: ``mean``, ``std``; ``uniform``: ``low``, ``high``;
    ``glorot``: ``gain``, ``distribution`` normal|uniform; ``constant``: ``value``),
    ``seed`` (required), ``density`` in (0, 1] (each synapse exists with that probability),
    ``format`` dense|sparse, ``exclude_self`` (no autapses; recurrent projections only) and
    ``bandwidth`` (local connectivity: post neuron ``j`` connects only to pre neurons within
    ``bandwidth`` of ``j * n_pre / n_post``, wrapping around as on a ring).

    Glorot uses the expected fans: ``std = gain * sqrt(2 / (fan_in + fan_out))`` with
    ``fan_in = density * n_pre`` and ``fan_out = density * n_post`` (over the band, if any).
    Draws go block by block of 256 rows (mask, then values), so the result depends only on
    the spec and the shape, not on ``format``. Raises ``ValueError`` listing bad keys.
    """
    problems = check_init_spec(spec, recurrent)
    if problems:
        raise ValueError("; ".join(problems))
    kind = spec["init"]
    density = float(spec.get("density", 1.0))
    rng = np.random.default_rng(int(spec["seed"]))
    band = spec.get("bandwidth")
    width = n_pre if band is None else min(n_pre, 2 * int(band) + 1)
    if kind == "glorot":
        gain = float(spec.get("gain", 1.0))
        fan = density * width * (1 + n_post / n_pre)  # expected fan-in plus expected fan-out
        dist = spec.get("distribution", "normal")
        scale = gain * math.sqrt((6.0 if dist == "uniform" else 2.0) / fan)
    index = np.int32 if max(n_post, n_pre) < 2**31 else np.int64
    exclude_self = bool(spec.get("exclude_self", False))
    rows_out, cols_out, vals_out = [], [], []
    for r0 in range(0, n_post, _BLOCK_ROWS):
        nr = min(_BLOCK_ROWS, n_post - r0)
        rr, cc = np.divmod(_bernoulli_positions(rng, nr * width, density), width)
        rr += r0
        if width < n_pre:  # offsets -band..band around the post neuron's position, on a ring
            centre = (rr * n_pre) // n_post
            cc = (centre - int(band) + cc) % n_pre
            order = np.lexsort((cc, rr))  # keep each row's columns sorted (canonical COO)
            rr, cc = rr[order], cc[order]
        k = len(rr)
        if kind == "normal":
            v = rng.normal(float(spec.get("mean", 0.0)), float(spec["std"]), size=k)
        elif kind == "uniform":
            v = rng.uniform(float(spec["low"]), float(spec["high"]), size=k)
        elif kind == "glorot":
            v = rng.uniform(-scale, scale, size=k) if dist == "uniform" else rng.normal(0.0, scale, size=k)
        else:
            v = np.full(k, float(spec["value"]))
        if exclude_self:  # drawn, then dropped, so the draws do not depend on this option
            keep = rr != cc
            rr, cc, v = rr[keep], cc[keep], v[keep]
        rows_out.append(rr.astype(index))
        cols_out.append(cc.astype(index))
        vals_out.append(v)
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, index)
    del rows_out
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, index)
    del cols_out
    vals = np.concatenate(vals_out) if vals_out else np.zeros(0)
    del vals_out
    if spec.get("format", "dense") == "sparse":
        return SparseWeights._canonical((n_post, n_pre), rows, cols, vals)
    dense = np.zeros((n_post, n_pre))
    dense[rows, cols] = vals
    return dense


def _bernoulli_positions(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Sorted positions in ``range(n)`` where independent Bernoulli(p) trials succeed.

    The gaps between successes are geometric, so drawing them costs O(successes) rather
    than O(n): this is what makes sparse initializers of 1e6-neuron networks cheap.
    """
    if p >= 1.0:
        return np.arange(n, dtype=np.int64)
    out = []
    last = -1
    while True:
        m = max(16, int((n - 1 - last) * p * 1.05) + 16)
        pos = last + np.cumsum(rng.geometric(p, size=m))
        out.append(pos[pos < n])
        if pos[-1] >= n:
            break
        last = int(pos[-1])
    return np.concatenate(out).astype(np.int64)


_INIT_KEYS = {
    "normal": {"std"},
    "uniform": {"low", "high"},
    "glorot": set(),
    "constant": {"value"},
}
_OPTIONAL = {
    "normal": {"mean"},
    "uniform": set(),
    "glorot": {"gain", "distribution"},
    "constant": set(),
}
_COMMON = {"init", "seed", "density", "format", "exclude_self", "bandwidth"}


def check_init_spec(spec: Mapping[str, Any], recurrent: bool) -> list[str]:
    """Every problem of an initializer spec, as messages naming the key."""
    kind = spec.get("init")
    if kind not in INIT_KINDS:
        return [f"init: {kind!r} is not one of {', '.join(INIT_KINDS)}"]
    out = []
    allowed = _COMMON | _INIT_KEYS[kind] | _OPTIONAL[kind]
    for key in spec:
        if key not in allowed:
            out.append(f"{key}: unknown key for init {kind!r} (allowed: {', '.join(sorted(allowed))})")
    for key in sorted(_INIT_KEYS[kind]):
        if key not in spec:
            out.append(f"{key}: required for init {kind!r}")
    seed = spec.get("seed")
    if seed is None:
        out.append("seed: required, so that the weights are reproducible")
    elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        out.append(f"seed: must be an integer >= 0, got {seed!r}")
    for key in ("mean", "std", "low", "high", "gain", "value", "density"):
        v = spec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            out.append(f"{key}: expected a finite number, got {v!r}")
    d = spec.get("density", 1.0)
    if isinstance(d, (int, float)) and not isinstance(d, bool) and not (0 < d <= 1):
        out.append(f"density: must be in (0, 1], got {d!r}")
    s = spec.get("std")
    if isinstance(s, (int, float)) and not isinstance(s, bool) and s < 0:
        out.append(f"std: must be >= 0, got {s!r}")
    lo, hi = spec.get("low"), spec.get("high")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
        out.append(f"low: {lo!r} is above high {hi!r}")
    if spec.get("format", "dense") not in ("dense", "sparse"):
        out.append(f"format: {spec.get('format')!r} is not one of dense, sparse")
    if spec.get("distribution", "normal") not in ("normal", "uniform"):
        out.append(f"distribution: {spec.get('distribution')!r} is not one of normal, uniform")
    b = spec.get("bandwidth")
    if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 0):
        out.append(f"bandwidth: must be an integer >= 0, got {b!r}")
    if spec.get("exclude_self", False) and not recurrent:
        out.append("exclude_self: only applies to a projection from a population onto itself")
    return out
