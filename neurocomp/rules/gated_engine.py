"""The gated theta network's forward rule (``GatedNet.engine_rule``) lowered onto a
sum-of-products engine with graded post traces (loihi2).

The rule, in model units (``x1`` the presynaptic input current or charge ``s_j``)::

    t_ij(t+1) = t_ij(t) + y1_i(t) t_ij(t) + y2_i(t) x1_j(t)
    w_ij     += -lr y3_i(t) t_ij(t+1)

and the readout's ``w_oi += -lr err_o(t) s_i(t+1)``. On the engine every quantity is an
integer code times a power-of-two LSB chosen from measured ranges (:func:`choose_scales`):
``y1`` and ``y3`` (signed) and a signed ``x1`` travel offset-encoded in the unsigned graded
traces (``code = v / LSB + 2**(trace_bits - 1)``), ``y2`` and the charge unsigned, the tag
is ``t`` (``synaptic_variable_bits["t"]``, saturating) and the weight the engine's ``w``
mantissa. The engine computes every variable from the pre-update ones, so the post neuron
sends ``y3`` one step late (``dw`` at step ``t + 1`` reads ``y3(t)`` with the tag ``t(t+1)``
it has just written); learning runs every step (``t_epoch`` 1: the tag is a recursion that
an epoch would sample, not sum). A scale the engine cannot express is a
:class:`~neurocomp.learning.lowering.LoweringError` naming the projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..learning.expr import parse
from ..learning.rule import EngineRule
from .base import LoweringContext, literal, scale_literal

# rule "gated": its parameters (the on-chip trainer's, neurocomp.analysis.gated_chip): the RMS weight
# step per trial (model units), "host" or "engine", the weights' headroom, the tag range's quantile
DEFAULTS = {"step": 1e-3, "mode": "host", "headroom": 2.0, "tag_quantile": 0.999}


@dataclass(frozen=True)
class GatedScales:
    """One projection's LSBs in model units (powers of two): the graded factors ``y1 y2 y3``
    (a readout projection: ``y3`` is the error, no tag), the presynaptic value ``x1``, the
    tag ``t`` (phase-trace units: rad per unit of ``x1``; None for the readout) and the
    weight ``w``; ``signed_x1``: ``x1`` is offset-encoded (input currents)."""

    y1: float | None
    y2: float | None
    y3: float
    x1: float
    t: float | None
    w: float
    signed_x1: bool

    def code(self, name: str, v: np.ndarray, lrn, exact: bool = False) -> np.ndarray:
        """The graded code of value ``v`` (model units) of factor ``name``: rounded to nearest
        and saturated to the trace's bits (``exact``: the unrounded, unsaturated code, the
        lowered rule in float)."""
        top, off = _trace_range(lrn, self._signed(name))
        c = np.asarray(v, np.float64) / getattr(self, name) + off
        return c if exact else np.clip(np.round(c), off - (top if off else 0), off + top)

    def value(self, name: str, c: np.ndarray, lrn) -> np.ndarray:
        """The value (model units) of factor ``name``'s graded code ``c``: :meth:`code`'s inverse
        on its grid (the offset taken off, times the LSB)."""
        return (np.asarray(c, np.float64) - _trace_range(lrn, self._signed(name))[1]) * getattr(self, name)

    def _signed(self, name: str) -> bool:
        """Whether factor ``name`` travels offset-encoded: ``y1``, ``y3``, and a signed ``x1``."""
        return name == "y1" or name == "y3" or (name == "x1" and self.signed_x1)

    def payload(self, v: np.ndarray, lrn, exact: bool = False) -> np.ndarray:
        """``x1``'s graded payload: its code less the offset the engine adds back on arrival."""
        return self.code("x1", v, lrn, exact) - _trace_range(lrn, self.signed_x1)[1]


def _trace_range(lrn, signed: bool) -> tuple[int, int]:
    """``(largest magnitude, offset)`` of a graded trace: unsigned ``2**bits - 1`` and offset
    0, or offset-encoded ``2**(bits - 1) - 1`` about ``2**(bits - 1)``."""
    bits = int(lrn.params["trace_bits"])
    return (2 ** (bits - 1) - 1, 2 ** (bits - 1)) if signed else (2**bits - 1, 0)


def lsb_for(value: float, top: int) -> float:
    """The smallest power of two whose ``top`` multiples reach ``value`` (> 0)."""
    return 2.0 ** math.ceil(math.log2(value / top))


def choose_scales(ranges: dict[str, float], w_max: float, lrn, headroom: float, signed_x1: bool) -> GatedScales:
    """LSBs from measured ranges ``ranges[name]`` (the largest ``|value|`` a factor takes, or
    the chosen quantile of the tag's; ``y1``/``t`` absent for a readout projection) and the
    profile's widths: each factor's code spans its range; the weight mantissa (``w``'s bits)
    holds ``headroom`` times the largest initial weight ``w_max``. The tag's LSB is the finer of
    its range's and the coarsest the engine's smallest constant allows for ``y2 x1`` (``2**e_min``
    after the product's shift): beyond that the tag saturates (the learner counts how often)."""

    def lsb(name: str, signed: bool) -> float | None:
        if name not in ranges:
            return None
        if name == "t":
            return lsb_for(ranges[name], 2 ** (int(lrn.synaptic_variable_bits["t"]) - 1) - 1)
        return lsb_for(ranges[name], _trace_range(lrn, signed)[0])

    w_top = 2 ** (int(lrn.synaptic_variable_bits["w"]) - 1) - 1
    y2, x1, t = lsb("y2", False), lsb("x1", signed_x1), lsb("t", True)
    if t is not None:  # y2 x1 in tag units needs a constant >= the engine's smallest: else a finer tag
        t = min(t, y2 * x1 * 2.0 ** (lrn.product_shift("y2", "x1") - lrn.exponent_min))
    return GatedScales(lsb("y1", True), y2, lsb("y3", True), x1, t, lsb_for(headroom * w_max, w_top), signed_x1)


def _factor(name: str, sc: GatedScales, lrn) -> str:
    """A factor in rule syntax, its offset subtracted."""
    off = _trace_range(lrn, True)[1]
    signed = name in ("y1", "y3") or (name == "x1" and sc.signed_x1)
    return f"({name} - {off})" if signed else name


def rate_unit(sc: GatedScales, lrn) -> float:
    """The learning rate (model units) that one unit of the ``dw`` constant stands for:
    ``dw``'s constant is ``lr / rate_unit``; the engine's smallest constant ``2**e_min`` makes
    ``2**e_min * rate_unit`` the smallest learning rate it holds."""
    f = ("y3", "x1") if sc.t is None else ("y3", "t")
    return sc.w / (sc.y3 * (sc.x1 if sc.t is None else sc.t) * 2.0 ** lrn.product_shift(*f))


def gated_rule(sc: GatedScales, lr: float | None, ctx: LoweringContext) -> EngineRule:
    """The engine rule of one projection with scales ``sc`` and learning rate ``lr`` (model
    units: ``dw = -lr y3 t`` per step): a hidden projection's tag and weight, or (``sc.t``
    None) the readout's ``dw = -lr err x1``; ``lr`` None: the tag alone (the host applies the
    update, reading the tags). The constants are ``m * 2**e`` times the engine's product
    shift ``s``: ``t * y1`` in tag units is ``LSB_y1 * 2**s``, ``y2 * x1`` ``LSB_y2 LSB_x1 /
    LSB_t * 2**s``, ``dw`` ``-lr`` over :func:`rate_unit`."""
    lrn = ctx.profile.learning
    x1, y3 = _factor("x1", sc, lrn), _factor("y3", sc, lrn)
    graded = {"source": "input"}
    pre = {"x1": {"source": "pre", "offset": _trace_range(lrn, sc.signed_x1)[1]}}
    dw = None
    if lr is not None:
        c3 = scale_literal(-lr / rate_unit(sc, lrn), ctx, "learning rate")
        dw = parse(f"{literal(*c3)}*u0*{y3}*{'t' if sc.t is not None else x1}", "dw", lrn)
    if sc.t is None:
        return EngineRule(dw=dw, post_traces="graded", graded={"y3": graded}, pre_graded=pre, source="gated")
    c1 = _exact(sc.y1 * 2.0 ** lrn.product_shift("y1", "t"), ctx, "y1 scale")
    c2 = _exact(sc.y2 * sc.x1 / sc.t * 2.0 ** lrn.product_shift("y2", "x1"), ctx, "y2 x1 scale")
    return EngineRule(
        dt=parse(f"{literal(*c1)}*u0*{_factor('y1', sc, lrn)}*t + {literal(*c2)}*u0*y2*{x1}", "dt", lrn), dw=dw,
        post_traces="graded", graded={k: graded for k in ("y1", "y2", "y3")}, pre_graded=pre, source="gated",
    )  # fmt: skip


def _exact(value: float, ctx: LoweringContext, what: str) -> tuple[int, int]:
    """A power-of-two scale the engine must hold exactly (a ratio of LSBs), else a named error."""
    m, e = scale_literal(value, ctx, what)
    if m * 2.0**e != value:
        raise ctx.fail(f"{what} = {value:.4g} is not m*2^e within the engine's limits: choose other LSBs")
    return m, e
