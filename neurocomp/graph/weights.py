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

    ``rows`` are post-synaptic indices, ``cols`` pre-synaptic indices, both int64 and
    sorted row-major without duplicates; ``values`` are float64. Explicit zeros are kept
    (a stored synapse of weight 0 is still a synapse, e.g. for a plastic projection).
    """

    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        rows = np.asarray(self.rows).astype(np.int64, copy=False).ravel()
        cols = np.asarray(self.cols).astype(np.int64, copy=False).ravel()
        values = np.asarray(self.values, dtype=np.float64).ravel()
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"sparse weights: shape must be two sizes >= 1, got {self.shape!r}")
        if not (len(rows) == len(cols) == len(values)):
            raise ValueError(
                f"sparse weights: rows, cols and values differ in length ({len(rows)}, {len(cols)}, {len(values)})"
            )
        if len(rows) and (rows.min() < 0 or rows.max() >= shape[0] or cols.min() < 0 or cols.max() >= shape[1]):
            raise ValueError(f"sparse weights: an index lies outside the shape {shape}")
        order = np.lexsort((cols, rows))
        rows, cols, values = rows[order], cols[order], values[order]
        flat = rows * shape[1] + cols
        if len(flat) > 1 and np.any(flat[1:] == flat[:-1]):
            i = int(np.nonzero(flat[1:] == flat[:-1])[0][0])
            raise ValueError(f"sparse weights: duplicate entry at [post={rows[i]}, pre={cols[i]}]")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "rows", readonly_array(rows, np.int64))
        object.__setattr__(self, "cols", readonly_array(cols, np.int64))
        object.__setattr__(self, "values", readonly_array(values, np.float64))

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
    ``format`` dense|sparse, and ``exclude_self`` (no autapses; recurrent projections only).

    Glorot uses the expected fan: ``std = gain * sqrt(2 / (density * (n_pre + n_post)))``.
    Draws go block by block of 256 rows (mask, then values), so the result depends only on
    the spec and the shape, not on ``format``. Raises ``ValueError`` listing bad keys.
    """
    problems = check_init_spec(spec, recurrent)
    if problems:
        raise ValueError("; ".join(problems))
    kind = spec["init"]
    density = float(spec.get("density", 1.0))
    rng = np.random.default_rng(int(spec["seed"]))
    if kind == "glorot":
        gain = float(spec.get("gain", 1.0))
        fan = density * (n_pre + n_post)
        dist = spec.get("distribution", "normal")
        scale = gain * math.sqrt((6.0 if dist == "uniform" else 2.0) / fan)
    rows_out, cols_out, vals_out = [], [], []
    for r0 in range(0, n_post, _BLOCK_ROWS):
        nr = min(_BLOCK_ROWS, n_post - r0)
        if density >= 1.0:
            rr, cc = np.divmod(np.arange(nr * n_pre, dtype=np.int64), n_pre)
        else:
            rr, cc = np.nonzero(rng.random((nr, n_pre)) < density)
        k = len(rr)
        if kind == "normal":
            v = rng.normal(float(spec.get("mean", 0.0)), float(spec["std"]), size=k)
        elif kind == "uniform":
            v = rng.uniform(float(spec["low"]), float(spec["high"]), size=k)
        elif kind == "glorot":
            v = rng.uniform(-scale, scale, size=k) if dist == "uniform" else rng.normal(0.0, scale, size=k)
        else:
            v = np.full(k, float(spec["value"]))
        rows_out.append(rr + r0)
        cols_out.append(cc)
        vals_out.append(v)
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, np.int64)
    vals = np.concatenate(vals_out) if vals_out else np.zeros(0)
    if spec.get("exclude_self", False):
        keep = rows != cols
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    if spec.get("format", "dense") == "sparse":
        return SparseWeights((n_post, n_pre), rows, cols, vals)
    dense = np.zeros((n_post, n_pre))
    dense[rows, cols] = vals
    return dense


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
_COMMON = {"init", "seed", "density", "format", "exclude_self"}


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
    if spec.get("exclude_self", False) and not recurrent:
        out.append("exclude_self: only applies to a projection from a population onto itself")
    return out
