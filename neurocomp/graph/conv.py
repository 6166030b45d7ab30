"""Convolution and pooling projections: one small kernel shared by every output position.

Layout and arithmetic are Lava's (``lava.proc.conv``): a population of a convolution holds an
image of shape ``(X, Y, C)`` (width, height, channels) flattened row-major, neuron
``x*Y*C + y*C + c``; the kernel has shape ``(C_out, KX, KY, C_in/groups)``, and the operation is a
true convolution (the kernel flipped, as ``scipy.signal.convolve2d``), with zero padding, a
stride and channel groups::

    out[xo, yo, co] = sum_{kx, ky, ci} in[xo*sx + kx - px, yo*sy + ky - py, g*Cg + ci]
                                       * K[co, KX-1-kx, KY-1-ky, ci]     (g = co // (C_out/groups))

A :class:`ConvProjection` is a :class:`~neurocomp.graph.projection.Projection` whose ``weights``
are the kernel's expansion to a sparse ``[post, pre]`` matrix (computed, never given), so every
consumer that knows only projections (the float reference, the emulator's sparse delivery, the
DRC's fan-in counts) runs it unchanged; the kernel and geometry ride along for the passes that
care (the quantizer rounds the kernel once, the partitioner counts it once where the chip stores
it once, the Lava backend runs it as ``Conv``). Pooling is a fixed-weight convolution with one
group per channel (:func:`pool_projection`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._frozen import readonly_array
from ..errors import ModelError, Problem
from .projection import Projection
from .weights import SparseWeights


def _pair(v: Any, label: str, minimum: int, problems: list[str]) -> tuple[int, int]:
    """An int or a pair of ints (x, y), each >= ``minimum``."""
    vals = [v, v] if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else list(np.ravel(v))
    ok = len(vals) == 2 and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in vals)
    if not ok:
        problems.append(f"{label}: expected an integer or two (x, y), got {v!r}")
        return (minimum, minimum)
    if min(vals) < minimum:
        problems.append(f"{label}: {tuple(int(x) for x in vals)} must be >= {minimum}")
    return int(vals[0]), int(vals[1])


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of a convolution. ``input_shape``: ``(X, Y, C_in)``; ``kernel_shape``:
    ``(C_out, KX, KY, C_in/groups)``; ``stride`` and ``padding``: ``(x, y)`` in pixels."""

    input_shape: tuple[int, int, int]
    kernel_shape: tuple[int, int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1

    @classmethod
    def build(cls, input_shape, kernel_shape, stride=1, padding=0, groups=1, where: str = "conv") -> ConvGeometry:
        """Checked construction; a bad value is a :class:`ModelError` naming ``where``, the
        value and its limit."""
        problems: list[str] = []
        ins = tuple(int(x) for x in np.ravel(input_shape)) if np.ndim(input_shape) else ()
        if len(ins) != 3 or min(ins, default=0) < 1:
            problems.append(f"input_shape: expected three sizes (X, Y, C) >= 1, got {input_shape!r}")
            ins = (1, 1, 1)
        ks = tuple(int(x) for x in kernel_shape)
        if len(ks) != 4 or min(ks, default=0) < 1:
            problems.append(f"kernel: expected shape (C_out, KX, KY, C_in/groups) of sizes >= 1, got {kernel_shape}")
            ks = (1, 1, 1, 1)
        st = _pair(stride, "stride", 1, problems)
        pad = _pair(padding, "padding", 0, problems)
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            problems.append(f"groups: expected an integer >= 1, got {groups!r}")
            groups = 1
        g = int(groups)
        if ins[2] % g or ks[0] % g:
            problems.append(f"groups: {g} does not divide the {ins[2]} input and {ks[0]} output channels")
        elif ks[3] != ins[2] // g:
            problems.append(
                f"kernel: {ks[3]} input channels per group, but the input has {ins[2]} channels in {g} group(s)"
            )
        for axis, n, k, p in (("x", ins[0], ks[1], pad[0]), ("y", ins[1], ks[2], pad[1])):
            if k > n + 2 * p:
                problems.append(f"kernel: {k} pixels along {axis} exceed the padded input's {n + 2 * p}")
        if problems:
            raise ModelError([Problem(where, p) for p in problems])
        return cls(ins, ks, st, pad, g)  # type: ignore[arg-type]

    @property
    def output_shape(self) -> tuple[int, int, int]:
        (x, y, _), (co, kx, ky, _) = self.input_shape, self.kernel_shape
        return ((x + 2 * self.padding[0] - kx) // self.stride[0] + 1,
                (y + 2 * self.padding[1] - ky) // self.stride[1] + 1, co)  # fmt: skip

    @property
    def n_pre(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_post(self) -> int:
        return int(np.prod(self.output_shape))

    def expand(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, kidx)``: every synapse's post and pre neuron and the flat index of
        its kernel entry, in canonical (row-major, post then pre) order."""
        (X, Y, C), (Co, KX, KY, Cg) = self.input_shape, self.kernel_shape
        Xo, Yo, _ = self.output_shape
        xo, yo, co, kx, ky, ci = np.meshgrid(*(np.arange(n) for n in (Xo, Yo, Co, KX, KY, Cg)), indexing="ij")
        xi = xo * self.stride[0] + kx - self.padding[0]
        yi = yo * self.stride[1] + ky - self.padding[1]
        ok = (xi >= 0) & (xi < X) & (yi >= 0) & (yi < Y)
        xo, yo, co, kx, ky, ci, xi, yi = (a[ok] for a in (xo, yo, co, kx, ky, ci, xi, yi))
        group = co // (Co // self.groups)
        rows = (xo * Yo + yo) * Co + co
        cols = (xi * Y + yi) * C + group * Cg + ci
        kidx = ((co * KX + (KX - 1 - kx)) * KY + (KY - 1 - ky)) * Cg + ci  # the flip of a true convolution
        order = np.lexsort((cols, rows))
        return rows[order], cols[order], kidx[order]

    def sparse(self, kernel: np.ndarray) -> SparseWeights:
        """The kernel expanded to a sparse ``[post, pre]`` matrix (explicit zeros kept)."""
        rows, cols, kidx = self.expand()
        return SparseWeights((self.n_post, self.n_pre), rows, cols, np.asarray(kernel, np.float64).ravel()[kidx])

    def to_dict(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "stride": list(self.stride),
                "padding": list(self.padding), "groups": self.groups}  # fmt: skip


@dataclass(frozen=True, eq=False)
class ConvProjection(Projection):
    """A convolution: ``kernel`` (float64 ``(C_out, KX, KY, C_in/groups)``, model units) and
    ``geometry``; ``weights`` must be left ``None``: they are the kernel's expansion. Synapses
    share weights, so a convolution is static (no ``plasticity``) and has one scalar delay."""

    kernel: np.ndarray | None = None
    geometry: ConvGeometry | None = None

    def __post_init__(self) -> None:
        where = f"projection {self.name or f'{self.pre}->{self.post}'!r}"
        k = np.asarray(self.kernel, dtype=np.float64) if self.kernel is not None else None
        problems = []
        if k is None or self.geometry is None:
            problems.append("conv: a kernel and a geometry are required")
        elif k.shape != self.geometry.kernel_shape:
            problems.append(f"kernel: shape {k.shape} differs from the geometry's {self.geometry.kernel_shape}")
        elif not np.all(np.isfinite(k)):
            problems.append(f"kernel: {int((~np.isfinite(k)).sum())} values are not finite")
        elif self.weights is not None and not _is_expansion(self.weights, self.geometry.sparse(k)):
            # dataclasses.replace hands the expansion back: accept it, refuse anything else
            problems.append("weights: a convolution's weights are its kernel's expansion; give the kernel only")
        if self.plasticity is not None:
            problems.append(
                f"plasticity: rule {self.plasticity.name!r} on a shared kernel is not supported "
                "(learn on a dense projection, then convolve with the result)"
            )
        if not isinstance(self.delay_steps, (int, np.integer)) or isinstance(self.delay_steps, bool):
            problems.append(f"delay_steps: a convolution has one delay for all synapses, got {self.delay_steps!r}")
        if problems:
            raise ModelError([Problem(where, p) for p in problems])
        object.__setattr__(self, "kernel", readonly_array(k, np.float64))
        object.__setattr__(self, "weights", self.geometry.sparse(k))
        super().__post_init__()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConvProjection) and self.geometry != other.geometry:
            return False
        if isinstance(other, Projection) and isinstance(other, ConvProjection) != isinstance(self, ConvProjection):
            return False
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        g = self.geometry
        return (
            f"ConvProjection({self.name!r}, {g.input_shape} -> {g.output_shape}, kernel {g.kernel_shape}, "
            f"stride {g.stride}, padding {g.padding}, groups {g.groups})"
        )


def _is_expansion(w, expected: SparseWeights) -> bool:
    return (
        isinstance(w, SparseWeights)
        and w.shape == expected.shape
        and np.array_equal(w.rows, expected.rows)
        and np.array_equal(w.cols, expected.cols)
        and np.array_equal(w.values, expected.values)
    )


def conv_projection(
    pre: str, post: str, kernel, input_shape, stride=1, padding=0, groups: int = 1, **kw
) -> ConvProjection:
    """A convolution of ``pre`` (an image ``input_shape = (X, Y, C_in)``) with ``kernel``
    (``(C_out, KX, KY, C_in/groups)``) onto ``post``; ``kw``: the other
    :class:`~neurocomp.graph.projection.Projection` fields (``name``, ``delay_steps``, ``sign_mode``,
    ``port``)."""
    k = np.asarray(kernel, dtype=np.float64)
    where = f"projection {kw.get('name') or f'{pre}->{post}'!r}"
    if k.ndim != 4:
        raise ModelError([Problem(where, f"kernel: expected 4 dimensions (C_out, KX, KY, C_in/groups), got {k.shape}")])
    geom = ConvGeometry.build(input_shape, k.shape, stride, padding, groups, where)
    return ConvProjection(pre, post, None, kernel=k, geometry=geom, **kw)  # type: ignore[arg-type]


def pool_projection(pre: str, post: str, input_shape, size, stride=None, weight: float = 1.0, **kw) -> ConvProjection:
    """Sum pooling over ``size`` (int or (x, y)) windows of each channel, every weight
    ``weight`` (model units); ``stride`` defaults to ``size`` (non-overlapping windows). With
    a threshold below ``weight`` the post neuron fires when any input of its window does: a
    spiking max."""
    c = int(np.ravel(input_shape)[-1]) if np.size(input_shape) == 3 else 1
    sx, sy = (size, size) if np.ndim(size) == 0 else tuple(size)
    kernel = np.full((c, int(sx), int(sy), 1), float(weight))
    return conv_projection(pre, post, kernel, input_shape, size if stride is None else stride, 0, c, **kw)


def conv_from_dict(raw: Mapping, pre: str, post: str, get_array: Callable[[Any], np.ndarray], **kw) -> ConvProjection:
    """A convolution (``conv: {input_shape, kernel, stride, padding, groups}``) or a pooling
    (``pool: {input_shape, size, stride, weight}``) from a model file's projection entry;
    ``get_array`` reads a ``{file, key}`` reference."""
    if "pool" in raw:
        p = raw["pool"]
        _known(p, {"input_shape", "size", "stride", "weight"}, "pool")
        return pool_projection(pre, post, p["input_shape"], p["size"], p.get("stride"), p.get("weight", 1.0), **kw)
    c = raw["conv"]
    _known(c, {"input_shape", "kernel", "stride", "padding", "groups"}, "conv")
    k = c["kernel"]
    kernel = get_array(k) if isinstance(k, Mapping) else np.asarray(k, dtype=np.float64)
    return conv_projection(
        pre, post, kernel, c["input_shape"], c.get("stride", 1), c.get("padding", 0), c.get("groups", 1), **kw
    )


def _known(d: Any, keys: set[str], label: str) -> None:
    if not isinstance(d, Mapping):
        raise ValueError(f"{label}: expected a mapping, got {d!r}")
    extra = sorted(set(d) - keys)
    if extra:
        raise ValueError(f"{label}: unknown keys {extra} (known: {', '.join(sorted(keys))})")
    if "input_shape" not in d or (label == "conv" and "kernel" not in d) or (label == "pool" and "size" not in d):
        need = "input_shape and kernel" if label == "conv" else "input_shape and size"
        raise ValueError(f"{label}: {need} are required")
