"""Rate RFLO (Murray 2019; :mod:`neurocomp.rules.rflo` states the rule) with its learning path
in a chip's fixed-point formats: :class:`RfloRateFixed` is :class:`~neurocomp.reference.rflo.RfloRate`
(the float64 reference) with weights, feedback, signals and traces in the widths of
:class:`RfloFixedPoint`, read from a profile, each switchable back to float
(:data:`QUANTITIES`) to attribute a gap. ``check`` runs it as the lowered-float and
lowered-fixed levels of a rate network (:mod:`neurocomp.analysis.check_rate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .rflo import RfloRate

QUANTITIES = ("weights", "feedback", "signal", "traces")


def _pow2_at_least(x: float) -> float:
    """The smallest power of two >= ``x`` (``x > 0``)."""
    return 2.0 ** math.ceil(math.log2(x))


@dataclass(frozen=True)
class RfloFixedPoint:
    """The fixed-point formats of rate RFLO's learning path (all signed two's complement,
    values ``m * lsb`` with ``lsb = range / 2^(bits-1)``).

    ``weight_bits``: stored width of ``W``, ``W_in``, ``W_out``; ``weight_drop_lsb``: mixed-sign
    weights keep even mantissas only (one bit less resolution); ``weight_range``: ``|w| <
    weight_range`` (a power of two, fixed when the network is built, as a compiled weight
    exponent is; large enough for the trained weights, not only the initial ones).
    ``trace_bits``: width of the eligibility traces ``p``, ``q`` over ``|p| < 1`` (``|tanh'| <=
    1`` and ``|h| < 1`` bound them by 1).
    ``signal_bits``: width of the error ``eps`` (for ``W_out``) and the learning signal ``B eps``,
    each over the power of two that holds its largest value at the start of training
    (``max |y*|`` and ``max_i sum_k |B_ik| max |y*|``).
    ``feedback_bits``: width of ``B`` over the power of two that holds ``max |B|``.
    ``rounding``: ``"stochastic"`` or ``"nearest"``, for every rounding in the learning path
    (updates, traces, signals); initial weights and ``B`` round to nearest.
    ``quantize``: which of :data:`QUANTITIES` are in fixed point; the others stay float64
    (for attributing a gap to one quantity).
    """

    weight_bits: int = 9
    weight_drop_lsb: bool = True
    weight_range: float = 2.0
    trace_bits: int = 9
    signal_bits: int = 8
    feedback_bits: int = 8
    rounding: str = "stochastic"
    quantize: frozenset[str] = field(default_factory=lambda: frozenset(QUANTITIES))

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantize", frozenset(self.quantize))
        if not self.quantize <= set(QUANTITIES):
            raise ValueError(f"quantize: unknown {sorted(self.quantize - set(QUANTITIES))} (known: {QUANTITIES})")
        if self.rounding not in ("stochastic", "nearest"):
            raise ValueError(f"rounding must be 'stochastic' or 'nearest', got {self.rounding!r}")
        if self.weight_range <= 0 or _pow2_at_least(self.weight_range) != self.weight_range:
            raise ValueError(f"weight_range must be a power of two, got {self.weight_range}")

    @classmethod
    def from_profile(cls, profile: Any, **overrides: Any) -> RfloFixedPoint:
        """The widths of ``profile``'s learning engine (loihi2: 9-bit ``w`` with mixed-sign
        weights keeping even mantissas, the 9-bit tag ``t`` for ``p``, a graded third factor of
        7 trace bits plus a sign for the signals, 8-bit feedback weights as the e-prop lowering
        uses, stochastic rounding when the engine has it)."""
        lrn = profile.learning
        if lrn.kind != "sum_of_products":
            raise ValueError(f"{profile.name}: RFLO's fixed-point model reads a sum_of_products engine, not {lrn.kind}")
        widths = dict(lrn.synaptic_variable_bits)
        kw: dict[str, Any] = {
            "weight_bits": int(widths["w"]),
            "weight_drop_lsb": bool(profile.formats.weight.mixed_sign_drops_lsb),
            "trace_bits": int(widths["t"]),
            "signal_bits": int(lrn.params["trace_bits"]) + 1,
            "rounding": "stochastic" if lrn.stochastic_rounding else "nearest",
        }
        return cls(**{**kw, **overrides})

    def describe(self) -> str:
        """One line: the formats in use."""
        q = self.quantize
        w = f"{self.weight_bits - self.weight_drop_lsb}-bit weights in +-{self.weight_range:g}"
        parts = [
            w if "weights" in q else "float weights",
            f"{self.feedback_bits}-bit B" if "feedback" in q else "float B",
            f"{self.signal_bits}-bit error and learning signal" if "signal" in q else "float signals",
            f"{self.trace_bits}-bit traces" if "traces" in q else "float traces",
        ]
        return ", ".join(parts) + f"; {self.rounding} rounding"


class RfloRateFixed(RfloRate):
    """:class:`RfloRate` with its learning path in fixed point (:class:`RfloFixedPoint`).

    What it models: the values a chip's learning engine holds for RFLO (weights, eligibility
    traces, error and learning signal, feedback weights) in the given widths, rounded each time
    they change (traces every step, weights at each update); the rate dynamics (``u``, ``h``,
    ``tanh``) stay float64, because a chip runs the spiking version of the network, whose
    arithmetic the emulator models (this class isolates what the learning path's precision
    costs). The learning rate multiplies in float and the per-trial sum of increments is
    exact before its one rounding into the weights (on loihi2 a trial-end sum needs a second
    tag, ``d``; ``online=True`` rounds every step's increment instead).

    ``target_max``: the largest ``|y*|`` of the task, which fixes the signal formats.
    ``rounding_seed``: seed of the stochastic rounding. ``clipped``: how many weight or trace
    values saturated so far.
    """

    traces_per_step = True

    def __init__(
        self,
        *args: Any,
        fixed: RfloFixedPoint | None = None,
        target_max: float = 1.0,
        rounding_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fixed = fixed if fixed is not None else RfloFixedPoint()
        # SFC64: twice as fast as the default PCG64 for the float32 draws of stochastic rounding,
        # which dominate the cost of rounding every trace every step
        self.rng = np.random.Generator(np.random.SFC64(rounding_seed))
        self.clipped = 0
        f, q = self.fixed, self.fixed.quantize
        self.traces_per_step = "traces" in q
        if "feedback" in q:  # one power of two per network, as each would be compiled alone
            r = np.array([_pow2_at_least(m) for m in np.abs(self.B).max(axis=(1, 2))])[:, None, None]
            self.B = self.nearest(self.B, r, f.feedback_bits)
        if "weights" in q:
            self.weight_lsb = self._lsb(f.weight_range, f.weight_bits) * (2 if f.weight_drop_lsb else 1)
            w = (self.W, self.W_in, self.W_out)
            self.W, self.W_in, self.W_out = (
                self.nearest(m, f.weight_range, f.weight_bits, f.weight_drop_lsb) for m in w
            )
        # error and learning-signal ranges: their largest values at the start (y = 0)
        self.err_lsb = self._lsb(_pow2_at_least(target_max), f.signal_bits)
        lmax = np.abs(self.B).sum(axis=2).max(axis=1) * target_max  # per network
        self.sig_lsb = np.array([self._lsb(_pow2_at_least(m), f.signal_bits) for m in lmax])[:, None]
        self.trace_lsb = self._lsb(1.0, f.trace_bits)

    @staticmethod
    def _lsb(rng: float | np.ndarray, bits: int) -> float | np.ndarray:
        return rng / 2.0 ** (bits - 1)

    def nearest(self, x: np.ndarray, rng: float | np.ndarray, bits: int, drop_lsb: bool = False) -> np.ndarray:
        """``x`` rounded to the nearest point of the ``bits``-bit grid over ``[-rng, rng)`` (every
        other point with ``drop_lsb``), halves away from zero, saturated (model units)."""
        lsb = self._lsb(rng, bits) * (2 if drop_lsb else 1)
        top = 2.0 ** (bits - 1 - drop_lsb)
        m = np.sign(x) * np.floor(np.abs(x) / lsb + 0.5)
        return np.clip(m, -top, top - 1) * lsb

    def _round(self, x: np.ndarray, lsb: float | np.ndarray, top: float) -> np.ndarray:
        """``x`` (modified in place and returned) on the grid ``lsb`` (a power of two, so the
        scaling is exact), rounded by the spec's mode and saturated to ``[-top, top - 1]``
        LSBs."""
        x /= lsb
        if self.fixed.rounding == "stochastic":
            # floor(x + U), U ~ U[0, 1): up with probability equal to the fractional part
            # (float32 draws: probabilities resolved to 2^-24, at half the cost of float64)
            x += self.rng.random(x.shape, dtype=np.float32)
            np.floor(x, out=x)
        else:  # half away from zero, as neurocomp.arith.rounding's "nearest"
            np.copysign(np.floor(np.abs(x) + 0.5), x, out=x)
        if x.max() > top - 1 or x.min() < -top:  # two reductions; the count only when needed
            self.clipped += int(np.count_nonzero((x < -top) | (x > top - 1)))
            np.clip(x, -top, top - 1, out=x)
        x *= lsb
        return x

    def _trace(self, p: np.ndarray) -> np.ndarray:
        if "traces" not in self.fixed.quantize:
            return p
        return self._round(p, self.trace_lsb, 2.0 ** (self.fixed.trace_bits - 1))

    def _signal(self, s: np.ndarray, which: str) -> np.ndarray:
        if "signal" not in self.fixed.quantize:
            return s
        # [..., batch, n]: the learning signal's LSB is per network ([batch, 1])
        lsb = self.err_lsb if which == "error" else self.sig_lsb
        return self._round(s, lsb, 2.0 ** (self.fixed.signal_bits - 1))

    def _apply(self, inc, T: int) -> None:
        if "weights" not in self.fixed.quantize:
            super()._apply(inc, T)
            return
        top = 2.0 ** (self.fixed.weight_bits - 1 - self.fixed.weight_drop_lsb)
        for name, lr, i in (("W", self.lr_rec, inc[0]), ("W_in", self.lr_in, inc[1]), ("W_out", self.lr_out, inc[2])):
            if lr != 0.0:
                setattr(self, name, self._round(getattr(self, name) + lr / T * i, self.weight_lsb, top))


__all__ = ["QUANTITIES", "RfloFixedPoint", "RfloRate", "RfloRateFixed"]
