"""Projections (weighted, delayed connections between populations) and rule placeholders."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._frozen import FrozenDict, freeze, readonly_array, thaw
from ..errors import ModelError, Problem
from .weights import SparseWeights, Weights, weight_shape, weight_values

SignMode = Literal["mixed", "excitatory", "inhibitory"]
SIGN_MODES: tuple[str, ...] = ("mixed", "excitatory", "inhibitory")
PORTS: tuple[str, ...] = ("syn", "syn2")  # the post neuron's synaptic current (tau_syn_ms, tau_syn2_ms)


@dataclass(frozen=True)
class RuleSpec:
    """A named learning rule with its hyperparameters.

    At this level it is a placeholder: the rule's meaning (its float form and its lowering
    onto each learning engine) lives in ``neurocomp.rules``. ``params`` holds plain YAML
    values (numbers, strings, lists, mappings) and is stored read-only.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ModelError([Problem("plasticity", f"rule: expected a non-empty name, got {self.name!r}")])
        if not isinstance(self.params, Mapping):
            raise ModelError([Problem(f"rule {self.name!r}", f"params: expected a mapping, got {self.params!r}")])
        object.__setattr__(self, "params", freeze(dict(self.params)))

    def to_dict(self) -> dict:
        return {"rule": self.name, "params": thaw(self.params)}


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from population ``pre`` to population ``post``.

    ``weights``: ``[post, pre]`` float64 matrix (dense ``ndarray`` or :class:`SparseWeights`)
    in model units. ``delay_steps``: extra axonal delay in time steps, on top of the one-step
    latency every projection has (a spike at step ``t`` reaches ``post`` at
    ``t + 1 + delay_steps``); an ``int`` or an integer array with one entry per stored
    synapse (the weight matrix's shape when dense, ``nnz`` when sparse).
    ``sign_mode``: ``None`` to infer it from the weights, or a mode the weights must obey.
    ``plasticity``: the learning rule of a plastic projection. ``name`` defaults to
    ``"pre->post"``. ``port``: the post neuron's synaptic current the projection feeds,
    ``"syn"`` (``tau_syn_ms``, the default) or ``"syn2"`` (a LIF's ``tau_syn2_ms``, on chips
    with two synaptic currents such as Xylo).
    """

    pre: str
    post: str
    weights: Weights
    delay_steps: int | np.ndarray = 0
    sign_mode: SignMode | None = None
    plasticity: RuleSpec | None = None
    name: str = ""
    port: str = "syn"

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"{self.pre}->{self.post}")
        problems: list[str] = []
        w = self.weights
        if not isinstance(w, SparseWeights):
            try:
                if np.iscomplexobj(w):  # float64 would silently drop the imaginary part
                    raise TypeError("complex values")
                w = readonly_array(w, np.float64)
            except (TypeError, ValueError) as exc:
                problems.append(f"weights: not a numeric matrix ({exc})")
                w = None
            if w is not None and w.ndim != 2:
                problems.append(f"weights: expected a 2-D [post, pre] matrix, got shape {w.shape}")
            object.__setattr__(self, "weights", w)
        if w is not None and (not isinstance(w, np.ndarray) or w.ndim == 2):
            problems += _weight_value_problems(w)
            problems += self._delay_problems(w)
            problems += self._sign_problems(w)
        if self.sign_mode is not None and self.sign_mode not in SIGN_MODES:
            problems.append(f"sign_mode: {self.sign_mode!r} is not one of {', '.join(SIGN_MODES)}")
        if self.port not in PORTS:
            problems.append(f"port: {self.port!r} is not one of {', '.join(PORTS)}")
        if self.plasticity is not None and not isinstance(self.plasticity, RuleSpec):
            problems.append(f"plasticity: expected a RuleSpec, got {self.plasticity!r}")
        for label, v in (("pre", self.pre), ("post", self.post), ("name", self.name)):
            if not isinstance(v, str) or not v:
                problems.append(f"{label}: expected a non-empty name, got {v!r}")
        if problems:
            raise ModelError([Problem(f"projection {self.name!r}", p) for p in problems])

    def _delay_problems(self, w: Weights) -> list[str]:
        d = self.delay_steps
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            if d < 0:
                return [f"delay_steps: must be >= 0, got {d}"]
            object.__setattr__(self, "delay_steps", int(d))
            return []
        arr = np.asarray(d)
        if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
            return [f"delay_steps: expected an integer or an integer array, got dtype {arr.dtype}"]
        want = (w.nnz,) if isinstance(w, SparseWeights) else w.shape
        if arr.shape != want:
            return [f"delay_steps: shape {arr.shape} does not match the synapses {want}"]
        if arr.size and arr.min() < 0:
            return [f"delay_steps: must be >= 0, found {int(arr.min())}"]
        object.__setattr__(self, "delay_steps", readonly_array(arr, np.int64))
        return []

    def _sign_problems(self, w: Weights) -> list[str]:
        vals = weight_values(w)
        if self.sign_mode == "excitatory" and vals.size and vals.min() < 0:
            return [f"sign_mode 'excitatory' but {int((vals < 0).sum())} weights are negative (min {vals.min():g})"]
        if self.sign_mode == "inhibitory" and vals.size and vals.max() > 0:
            return [f"sign_mode 'inhibitory' but {int((vals > 0).sum())} weights are positive (max {vals.max():g})"]
        return []

    @property
    def shape(self) -> tuple[int, int]:
        """``(post.size, pre.size)``."""
        return weight_shape(self.weights)  # type: ignore[return-value]

    @property
    def is_sparse(self) -> bool:
        return isinstance(self.weights, SparseWeights)

    @property
    def n_synapses(self) -> int:
        """Stored synapses: every entry of a dense matrix, the stored entries of a sparse one."""
        return weight_values(self.weights).size

    @property
    def max_delay(self) -> int:
        d = self.delay_steps
        return int(d) if isinstance(d, int) else int(d.max(initial=0))

    def dense_weights(self) -> np.ndarray:
        w = self.weights
        return w.to_dense() if isinstance(w, SparseWeights) else np.array(w)

    def inferred_sign_mode(self) -> SignMode:
        """The given sign mode, or the one the weights imply (all >= 0: excitatory;
        all <= 0 and some < 0: inhibitory; else mixed)."""
        if self.sign_mode is not None:
            return self.sign_mode
        vals = weight_values(self.weights)
        if vals.size == 0 or vals.min() >= 0:
            return "excitatory"
        if vals.max() <= 0:
            return "inhibitory"
        return "mixed"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Projection):
            return NotImplemented
        if (self.name, self.pre, self.post, self.sign_mode, self.plasticity, self.port) != (
            other.name,
            other.pre,
            other.post,
            other.sign_mode,
            other.plasticity,
            other.port,
        ):
            return False
        if type(self.weights) is not type(other.weights):
            return False
        same_w = (
            self.weights == other.weights
            if isinstance(self.weights, SparseWeights)
            else np.array_equal(self.weights, other.weights)
        )
        return same_w and np.array_equal(np.asarray(self.delay_steps), np.asarray(other.delay_steps))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kind = "sparse" if self.is_sparse else "dense"
        rule = f", plasticity={self.plasticity.name!r}" if self.plasticity else ""
        port = f", port={self.port!r}" if self.port != "syn" else ""
        return f"Projection({self.name!r}, {kind} {self.shape}, delay_steps={self.max_delay}{rule}{port})"


def _weight_value_problems(w: Weights) -> list[str]:
    vals = weight_values(w)
    bad = ~np.isfinite(vals)
    if not bad.any():
        return []
    n = int(bad.sum())
    kind = "NaN" if np.isnan(vals[bad]).any() else "infinite"
    if isinstance(w, SparseWeights):
        i = int(np.nonzero(bad)[0][0])
        first = (int(w.rows[i]), int(w.cols[i]))
    else:
        first = tuple(int(x) for x in np.argwhere(~np.isfinite(w))[0])
    return [f"weights: {n} {kind} value{'s' if n > 1 else ''} (first at [post={first[0]}, pre={first[1]}])"]


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
