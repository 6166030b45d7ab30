"""Delivery through a plastic projection, and its on-chip learning.

A plastic projection keeps its weights as learning state (``SumOfProductsEngine``): they
change at the end of every epoch, so they are read each step instead of being baked into
the accumulation matrices of :class:`~neurocomp.emulator.synapses.Synapses`. Delivery is
otherwise the same: the sum over the pre neurons that spiked, the exponent shift (rounded as
the chip shifts), the input shift, one step of latency plus the projection's delay.
Lava's LearningDense delivers and learns in this order too: the step's input is computed
with the weights before this step's learning phase.

Attribution (``learn_float``, see :class:`~neurocomp.emulator.Emulator`): with ``"weights"``
in float64 the input is the exact ``sum(w) * 2**weight_exp`` (no rounding of the exponent
shift), so non-integer input enters the otherwise integer dynamics, whose states are float64
arrays and carry it as it is; ``"graded"`` leaves the pseudo-derivative and the learning
signal (with its rate term) unrounded and unsaturated; ``"traces"`` leaves a neuron's own
post trace unrounded and unsaturated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..arith.fixed import shift
from ..compiler.ir import QProjection
from ..kernels.learning import EXACT, ROUNDINGS, deliver_plastic
from ..learning.engine import LEARN_QUANTITIES, SumOfProductsEngine
from ..learning.quantities import (
    floor_offset,
    graded_fixed,
    pseudo_derivative,
    pseudo_derivative_fixed,
    running_rate,
    running_rate_fixed,
)
from ..profiles import Profile
from .synapses import chip_mantissas

LEARNING_VARS = ("w", "t", "d", "x1", "x2", "y1", "y2", "y3", "r1")


def mantissa_unit(proj: QProjection) -> np.ndarray:
    """Model units per weight mantissa LSB: ``2**weight_exp * float_scale``, a scalar or a
    column ``[post, 1]`` for per-row exponents (weights learned as chip mantissas)."""
    e = np.asarray(proj.weight_exp, dtype=np.float64)
    return np.exp2(e if e.ndim == 0 else e[:, None]) * float(proj.float_scale)


def chip_weight_matrix(proj: QProjection, profile: Profile) -> np.ndarray:
    """The projection's weights as the chip holds them, in model units, ``[post, pre]`` float64
    (a sparse projection's missing synapses 0)."""
    m, unit = chip_mantissas(proj, profile).astype(np.float64), mantissa_unit(proj)
    if not proj.is_sparse:
        return m * unit
    w = np.zeros(proj.shape)
    w[proj.rows, proj.cols] = m * (unit if np.ndim(unit) == 0 else unit[proj.rows, 0])
    return w


class PlasticSynapses:
    """Runtime form of a plastic projection with a scalar delay (a sparse one is held dense,
    with a mask of the synapses that exist). ``arithmetic``: ``"chip"`` or ``"float"`` (all of
    :data:`LEARN_QUANTITIES` in float64); ``learn_float``: those of them held in float64 in
    chip arithmetic; ``learn_rounding``: ``"stochastic"``, ``"nearest"`` or None (the profile's)
    for the engine's roundings."""

    def __init__(
        self,
        proj: QProjection,
        latency: int,
        profile: Profile,
        batch: int,
        learn_mode: str,
        arithmetic: str = "chip",
        learn_float=(),
        learn_rounding: str | None = None,
    ):
        self.proj = proj
        self.name, self.pre, self.post = proj.name, proj.pre, proj.post
        self.n_post, self.n_pre = proj.shape
        self.latency = latency
        self.max_delay = int(proj.delay_steps)
        self.rule = proj.learning
        self.fixed = profile.arithmetic == "fixed"
        # the learning engine's arithmetic: the chip's, or float64 on the same dynamics
        self.learn_fixed = self.fixed and arithmetic == "chip"
        # the quantities held in float64: the chosen ones on the chip, all of them otherwise
        self.learn_float = frozenset(learn_float) if self.learn_fixed else frozenset(LEARN_QUANTITIES)
        self.graded_fixed = "graded" not in self.learn_float
        self.traces_fixed = "traces" not in self.learn_float
        self.weights_fixed = "weights" not in self.learn_float
        self.rounding = profile.formats.weight.exponent_rounding
        self.exp = int(proj.weight_exp)
        self.in_scale = float(2**profile.formats.input_shift) if self.fixed else 1.0
        # delivery runs compiled on fixed chips: integer weights and spikes sum exactly in any
        # order; float weights or graded spikes (attribution, lowered-float) in the kernel's one
        # order, with the exponent's shift exact for float weights
        self._compiled = self.fixed and self.rounding in ROUNDINGS
        self._rounding = ROUNDINGS[self.rounding] if self.weights_fixed and self._compiled else EXACT
        # the chip truncates the initial weights as its static synapses do (Lava's LearningDense
        # calls truncate_weights on its first step); learned weights are not truncated again
        m = chip_mantissas(proj, profile, clip=False)  # Lava's LearningDense truncates; its first epoch clips
        mask = None
        if proj.is_sparse:
            dense = np.zeros(proj.shape, dtype=np.int64)
            dense[proj.rows, proj.cols] = m
            mask = np.zeros(proj.shape, dtype=bool)
            mask[proj.rows, proj.cols] = True
            m = dense
        self.engine = SumOfProductsEngine(
            self.rule,
            m,
            mask=mask,
            engine=profile.learning,
            sign_mode=proj.sign_mode,
            batch=batch,
            learn_mode=learn_mode,
            arithmetic="fixed" if self.learn_fixed else "float",
            float_quantities=self.learn_float if self.learn_fixed else (),
            rounding=learn_rounding,
        )
        self.graded_inputs = tuple(y for y, src in self.rule.graded.items() if src.get("source") == "input")
        if self.rule.uses_reward:  # Loihi 1's reward channel: spikes given as the input <projection>/r0
            self.graded_inputs += ("r0",)
        self._post_trace = {y: src for y, src in self.rule.graded.items() if src.get("source") == "post_trace"}
        self.reset()

    @property
    def weight_unit(self) -> np.ndarray:
        """Model units per unit of the learned weights (see :func:`mantissa_unit`)."""
        return mantissa_unit(self.proj)

    def reset(self) -> None:
        self.engine.reset()
        self.neuron_traces = {y: np.zeros((self.engine.batch, self.n_post)) for y in self._post_trace}
        if any(src.get("reg") for src in self.rule.graded.values()):  # the neuron's running rate
            self.neuron_traces["rate"] = np.zeros((self.engine.batch, self.n_post))

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int) -> None:
        """As :meth:`Synapses.deliver`, with the current weights (exact: integer sums below 2**53)."""
        slot = (t + self.latency + self.max_delay) % ring.shape[0]
        if self._compiled:
            deliver_plastic(self.engine.weights, spikes, ring[slot], self.exp, self._rounding, self.in_scale)
            return
        if not spikes.any():
            return
        w = self.engine.weights  # [1 or batch, post, pre]
        s = spikes.astype(np.float64)
        if w.shape[0] == 1 and s.shape[0] == 1:  # one trial: sum the columns of the pre neurons that spiked
            active = s[0].nonzero()[0]  # (a gather, not a BLAS call: small products thrash BLAS threads)
            cols = w[0][:, active]
            acc = (cols.sum(axis=1, dtype=np.float64) if spikes.dtype == bool else cols @ s[0, active])[None]
        elif w.shape[0] == 1:
            acc = s @ w[0].T.astype(np.float64)
        else:
            acc = np.einsum("bnm,bm->bn", w.astype(np.float64), s)
        if self.fixed and self.weights_fixed:
            acc = shift(acc, self.exp, self.rounding) * self.in_scale
        elif self.fixed:  # float weights: the exact input, not rounded by the exponent's shift
            acc = acc * 2.0**self.exp * self.in_scale
        ring[slot] += acc

    def learn(self, t: int, pre, post, given: Mapping[str, np.ndarray], pops: Mapping[str, Any]) -> None:
        """The learning engine's step ``t``: spikes and graded values, then the learning phase
        at the end of an epoch. ``pre``/``post``: the emulator's populations; ``given``: the
        graded inputs of this step, ``{y: [batch, post]}``; ``pops``: all populations (error
        units are read by name)."""
        spikes = post.state["spikes"]
        graded = dict(given)
        reward = graded.pop("r0", None)  # reward spikes [batch] (rules reading r1)
        pre_spikes, pre_values = pre.state["spikes"], None
        if self.rule.pre_graded:  # graded pre spikes: every pre neuron sends its payload every step
            pre_values = pre_spikes
            pre_spikes = np.ones(pre_spikes.shape, bool)
        for y, src in self.rule.graded.items():
            kind = src.get("source")
            if kind == "post_trace":
                graded[y] = self._neuron_trace(y, src, spikes)
            elif kind == "pseudo_derivative":
                graded[y] = self._pseudo_derivative(post)
            elif kind == "learning_signal":
                graded[y] = self._learning_signal(post, t, src)
            elif kind == "error":
                graded[y] = pops[src["unit"]].state["spikes"]
        for y, src in self.rule.graded.items():  # after the values they read
            if src.get("source") == "floor_offset":
                graded[y] = self._floor_offset(graded[src["of"]], t, src)
        graded = graded if self.rule.post_traces == "graded" else None
        self.engine.spikes(t, pre_spikes, spikes, graded, pre_values=pre_values, reward=reward)
        self.engine.learn(t)

    def _pseudo_derivative(self, post) -> np.ndarray:
        """e-prop's pseudo-derivative sent as a graded 7-bit value, ``top * h`` with ``h`` the
        triangle :func:`~neurocomp.learning.quantities.pseudo_derivative` of the membrane before
        its reset (``A``: the threshold the step used, adaptive for ALIF); the ``gamma / th``
        factor is folded into the rule's scale by the lowering. Fixed: the chip's integer form
        of the same triangle, ``round(top * max(0, th - |v - A|) / th)`` (to nearest, unbiased),
        as :func:`~neurocomp.learning.quantities.ce_error_fixed` is the softmax error's."""
        v = post.state.get("v_pre", post.state["v"])
        th = post.const["threshold"] if self.fixed else float(post.q.params["threshold"])
        A = post.state.get("th_pre", th)  # ALIF: the adaptive threshold of the step
        top = 2**self.engine.trace_bits - 1
        if self.graded_fixed:
            return pseudo_derivative_fixed(v, A, float(th), top)
        v = np.asarray(v, np.float64)
        return top * pseudo_derivative(v, np.asarray(A, np.float64), np.float64(th))

    def _floor_offset(self, of: np.ndarray, t: int, src: Mapping) -> np.ndarray:
        """The dither that offsets the engine's floor of a product
        (:func:`~neurocomp.learning.quantities.floor_offset`): 0 where the engine does not
        floor (float arithmetic, exact products), as there is nothing to offset."""
        if not self.engine.floors:
            return np.zeros(of.shape)
        j = np.arange(self.n_post)
        return floor_offset(t, j, of, int(src["value"]), int(src["count"]), int(src["period"])).astype(np.float64)

    def _learning_signal(self, post, t: int, src: Mapping) -> np.ndarray:
        """The learning signal that arrived at the post neurons for step ``t`` (the feedback
        projection's sum), shifted into a signed 7-bit graded value (rounded to nearest,
        saturated) on the chip; plus, with rate regularization, ``reg * (r - r0)`` where ``r``
        is the neuron's running rate (:func:`~neurocomp.learning.quantities.running_rate_fixed`)."""
        ring = post.state["ls"]
        ls = ring[t % ring.shape[0]] * 2.0 ** -int(src.get("shift", 0))
        if src.get("reg"):
            r = self.neuron_traces.get("rate", np.zeros_like(ls))
            shift, bits = int(src["rate_shift"]), int(src["rate_bits"])
            z = post.state["spikes"]
            if self.graded_fixed:
                r = running_rate_fixed(r, z, shift, bits)
            else:  # the same trace in float: rate r / 2**bits, the chip's decay 1 - 2**-shift
                r = running_rate(r * 2.0**-bits, z, 1.0 - 2.0**-shift) * 2.0**bits
            self.neuron_traces["rate"] = r
            ls = ls + float(src["reg"]) * (r - float(src["rate_target"]))
        if not self.graded_fixed:
            return ls
        return graded_fixed(ls, 2**self.engine.trace_bits)

    def _neuron_trace(self, y: str, src: Mapping, post: np.ndarray) -> np.ndarray:
        """A post-synaptic spike trace kept by the neuron and sent as a graded value (the
        pattern of Lava's R-STDP tutorial): ``y <- floor(y * exp(-1/tau)) + impulse * s``,
        saturated to the 7-bit trace range; float arithmetic keeps the exact value."""
        decay = np.exp(-1.0 / float(src["tau"]))
        v = self.neuron_traces[y] * decay
        if self.traces_fixed:
            v = np.floor(v)
        v = v + float(src["impulse"]) * post
        if self.traces_fixed:
            v = np.clip(v, 0, 2**self.engine.trace_bits - 1)
        self.neuron_traces[y] = v
        return v


class WeightState:
    """The learning state of a projection whose learner is not a ``SumOfProductsEngine``
    (ReckOn's, a programmable core's): weights ``[trials, post, pre]`` and optional per-pre
    traces, with the interface the emulator expects of an engine. ``dtypes``: per-variable
    dtypes instead of ``dtype`` (float64 weights or traces of a learning-attribution run)."""

    def __init__(self, w: np.ndarray, batch: int, dtype, traces: tuple[str, ...] = (), dtypes=None):
        self._w0, self.batch, self.dtype, self.traces = w, batch, dtype, traces
        self.dtypes = {k: (dtypes or {}).get(k, dtype) for k in ("w", *traces)}
        self.reset()

    def reset(self) -> None:
        w = np.broadcast_to(self._w0, (self.batch,) + self._w0.shape).astype(self.dtypes["w"]).copy()
        n = self._w0.shape[1]
        self.state = {"w": w, **{k: np.zeros((self.batch, n), self.dtypes[k]) for k in self.traces}}

    @property
    def weights(self) -> np.ndarray:
        return self.state["w"]

    def get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {k: v.copy() for k, v in self.state.items()}, {}

    def set_state(self, arrays: Mapping[str, np.ndarray], rngs) -> None:
        for k, v in arrays.items():
            self.state[k] = v.astype(self.dtypes.get(k, self.dtype))


class LearnedSynapses:
    """Delivery through weights held as learning state (each trial its own), one step of
    latency plus a scalar delay; ``_to_input`` turns the summed weights into the post
    population's input units. The learner that changes the weights lives elsewhere."""

    def __init__(self, proj: QProjection, latency: int, batch: int, w0, dtype, sum_dtype, traces=(), dtypes=None):
        self.proj = proj
        self.name, self.pre, self.post = proj.name, proj.pre, proj.post
        self.n_post, self.n_pre = proj.shape
        self.latency = latency
        self.max_delay = int(proj.delay_steps)
        self.rule = proj.learning
        self.sum_dtype = sum_dtype
        self.engine = WeightState(w0, batch, dtype, traces, dtypes)
        self.neuron_traces: dict[str, np.ndarray] = {}
        self.graded_inputs: tuple[str, ...] = ()

    def reset(self) -> None:
        self.engine.reset()

    @property
    def weight_unit(self) -> np.ndarray:
        """Model units per unit of the learned weights: chip mantissas (see :func:`mantissa_unit`)."""
        return mantissa_unit(self.proj)

    def _to_input(self, acc: np.ndarray) -> np.ndarray:
        return acc

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int) -> None:
        if not spikes.any():
            return
        d = self.sum_dtype
        acc = np.einsum("bnm,bm->bn", self.engine.weights.astype(d, copy=False), spikes.astype(d))
        ring[(t + self.latency + self.max_delay) % ring.shape[0]] += self._to_input(acc)
