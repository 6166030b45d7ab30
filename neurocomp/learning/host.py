"""A host in the loop: Adam on the minibatch update of a chip whose engine learns online.

A sum-of-products engine (loihi2) writes its weights every epoch; it has no optimizer state and
no minibatch. :class:`HostAdam` gives it both from the host, once per minibatch: the ``K``
trials of a minibatch run at once, one copy of the weights each (the emulator's batch), with the
chip's own online rule at the lr the rule was compiled with; the host then reads every copy,
takes their mean change as the minibatch's gradient, runs Adam and writes the new weights back
to every copy. A programmable core (spinnaker2) runs the same optimizer on the cores instead
(``update: trial``, :func:`~neurocomp.learning.programmable.apply_trial_update`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .programmable import ADAM


@dataclass(frozen=True)
class HostStep:
    """What one :meth:`HostAdam.step` did: ``grad`` per projection ``[post, pre]`` (model units
    per unit lr, float64), and ``saturated``: how many synapses' new mantissas fell outside the
    engine's weight range and were set to its limit (the engine saturates its own updates the
    same way; 0 for float weights)."""

    grad: dict[str, np.ndarray]
    saturated: dict[str, int]


class HostAdam:
    """Adam (Kingma & Ba 2015; beta1 0.9, beta2 0.999, eps 1e-8, ``programmable.ADAM``) run by
    the host on the mean update of a minibatch of trials, in float64.

    Reads, for every plastic projection ``name`` of ``emu`` (an :class:`~neurocomp.emulator.Emulator`
    whose batch holds the minibatch's trials): the copies' weights ``emu.plastic[name].engine.state["w"]``
    ``[K, post, pre]`` (engine mantissas, or float32 on a programmable core) and their unit
    ``weight_unit`` (model units per mantissa). With ``w0`` the weights every copy started the
    minibatch from and ``lr_engine[name]`` the lr the projection's online rule was compiled with,
    the gradient in model units is ``g = -(mean_k w[k] - w0) * weight_unit / lr_engine`` (the
    online rule's summed update over each trial is ``-lr`` times its gradient, up to the weights'
    drift within the trial). Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``step = -lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.

    Writes ``w0 + step / weight_unit`` into every copy. Fixed-point mantissas are rounded
    **stochastically** (``floor(x + u)``, ``u`` uniform in [0, 1) from the host's generator
    seeded by ``seed``: a step below one LSB moves the weight by one LSB with its fraction as
    probability, so the mean is kept) and saturated at the engine's weight range
    (:attr:`~neurocomp.learning.engine.SumOfProductsEngine.weight_range`; counted in the returned
    :class:`HostStep`). float32 weights take the float64 result rounded to nearest. The written
    weights are the next minibatch's ``w0``.

    ``masters=True`` (mixed precision): the host keeps float64 master weights ``W`` (mantissa
    units, starting at the copies' weights) and takes Adam's step on them, ``W <- clip(W + step
    / weight_unit)`` to the engine's range; the copies get ``W`` rounded to nearest, and the
    gradient is read against what was written. Steps below an LSB then add up in ``W`` instead
    of each being rounded (stochastic rounding keeps their mean but adds a random walk of up to
    half an LSB per step and synapse). The rounding of the written weights is not accumulated.

    ``centre_rows=True``: before Adam, each post neuron's mean of ``g`` over its synapses in the
    projection (the synapses that exist, for a sparse one) is subtracted from that row,
    ``g_ij <- g_ij - mean_i' g_ij'``. This removes an error of the engine's estimate that is one
    value per post neuron, the same in every copy, and with it the rule's true row means (e.g.
    most of the rate regularization's push). Measured on loihi2 at ``t_epoch`` 16 (evidence
    accumulation, ``benchmarks/eprop_evidence_gradient.py --rows``): at the small size 70 % of the
    error's squared norm into the LIF neurons lies in row means, against at most 11 % of the
    lowered rule's own gradient; at the full size the rule's own share is 16-40 % and the
    option does not lower the error rate.

    Host state: ``m``, ``v``, ``w0`` (and ``W``) per synapse (float64) and the step count ``t``.
    Same ``emu`` state, ``seed`` and sequence of calls: the same bits."""

    def __init__(
        self, emu, lr: float, seed: int | np.random.Generator = 0, masters: bool = False, centre_rows: bool = False
    ) -> None:
        self.lr = float(lr)
        self.b1, self.b2, self.eps = ADAM
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.w0 = {n: s.engine.state["w"][0].astype(np.float64) for n, s in emu.plastic.items()}
        self.masters = {n: w.copy() for n, w in self.w0.items()} if masters else None
        self.centre_rows = centre_rows

    def step(self, emu, lr_engine: Mapping[str, float]) -> HostStep:
        """One minibatch's end: read the copies, Adam, write ``w0 + step`` to every copy."""
        missing = sorted(set(self.w0) - set(lr_engine))
        if missing:
            raise KeyError(f"HostAdam.step: no engine lr for projection(s) {missing}")
        self.t += 1
        c1, c2 = 1.0 - self.b1**self.t, 1.0 - self.b2**self.t
        grads, saturated = {}, {}
        for name, syn in emu.plastic.items():
            w = syn.engine.state["w"]
            unit = np.asarray(syn.weight_unit, np.float64)
            g = -(w.astype(np.float64).mean(axis=0) - self.w0[name]) * unit / float(lr_engine[name])
            if self.centre_rows:
                g = _centred_rows(g, getattr(syn.engine, "mask", None))  # (a programmable core: dense)
            m = self.m[name] = self.b1 * self.m.get(name, 0.0) + (1.0 - self.b1) * g
            v = self.v[name] = self.b2 * self.v.get(name, 0.0) + (1.0 - self.b2) * g * g
            base = self.w0[name] if self.masters is None else self.masters[name]
            new = base - self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps) / unit
            fixed = not np.issubdtype(w.dtype, np.floating)
            saturated[name] = 0
            if fixed:  # an engine's mantissas: the engine's range (stochastic rounding without masters)
                lo, hi = syn.engine.weight_range
                if self.masters is None:
                    new = np.floor(new + self.rng.random(new.shape))
                saturated[name] = int(np.count_nonzero((new < lo) | (new > hi)))
                new = np.clip(new, lo, hi)
            if self.masters is not None:
                self.masters[name] = new
                new = np.round(new) if fixed else new
            w[...] = new.astype(w.dtype)
            self.w0[name] = w[0].astype(np.float64)
            grads[name] = g
        return HostStep(grads, saturated)


def _centred_rows(g: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``g`` ``[post, pre]`` minus each row's mean over the synapses that exist (``mask``; None:
    all); a synapse that does not exist stays 0."""
    if mask is None:
        return g - g.mean(axis=1, keepdims=True)
    n = np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return np.where(mask, g - (g * mask).sum(axis=1, keepdims=True) / n, 0.0)
