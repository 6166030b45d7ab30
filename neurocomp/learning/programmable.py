"""e-prop on a programmable core (SpiNNaker 2): the exact rule in the core's number format
(:class:`EpropExact`, also the float reference's rule) and each plastic projection's part in
it (:class:`ProgrammableEprop`, the compiled IR that ``rules.eprop.lower_programmable`` emits)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

import numpy as np

from ..errors import NeurocompError, Problem
from ..kernels.eprop import hidden_step, output_step, over_trials, sliced
from .quantities import RATE_TAU_MS, pseudo_derivative, rate_regularization, running_rate, softmax_error


# -- the exact rule (programmable cores, and the float reference) ---------------------------------
class EpropExact:
    """e-prop as the paper defines it (module docstring, plus ALIF and classification), on
    arrays of any float dtype: float32 on a programmable core (SpiNNaker 2), float64 for the
    reference. One hidden population ``H`` (LIF or ALIF), its input projections, one readout.

    Per step, after the neurons updated (``v`` before the reset, spikes ``z``):

    * ``psi_j = gamma / v_th * h(v_j, A_j, v_th)``, ``A_j = v_th + a_j`` (ALIF);
    * ``e_ji = psi_j * (z_bar_i - beta * eps_ji)``, ``eps_ji <- psi_j * z_bar_i + (rho - psi_j * beta) * eps_ji``
      (``eps`` only for ALIF), where ``z_bar_i`` is the presynaptic trace of the spikes that
      have reached ``j`` (one step of latency); with ``zero_reset`` (hidden neurons that reset
      to zero) each synapse's own eligibility vector ``eps_v_ji`` takes its place: the
      derivative of ``v_j`` with the spikes' gradient stopped, ``dv_j^{t+1}/dv_j^t = alpha (1 -
      z_j^t)``, which restarts at the reset (with a subtractive reset it is ``z_bar_i``);
    * ``e_bar <- kappa * e_bar + (1 - kappa) * e``;
    * error ``err_k = y_k - y*_k`` (mse) or ``softmax(y)_k - y*_k`` (ce, one-hot targets);
    * ``L_j = sum_k B_jk err_k + reg * (f_j - f_target)`` on every step (``err`` 0 without a
      target; ``f_j``: the running rate of :func:`~neurocomp.learning.quantities.running_rate`
      with this step's spikes, per step, its decay ``rate_decay``): the online learning signal
      of :mod:`~neurocomp.learning.quantities`;
    * ``W_ji -= lr_ji * L_j * e_bar_ji`` (no autapses; ``lr_ji`` the projection's own, ``lr_of``, else
      ``lr``), ``W_out_kj -= lr * err_k * z_out_j`` (``lr``: the readout projection's) with
      ``z_out <- kappa z_out + (1 - kappa) z``; adaptive feedback: ``B_jk`` takes ``W_out_kj``'s update;
    * then ``z_bar <- alpha * z_bar + z_pre`` (``eps_v <- alpha (1 - z_j) eps_v + z_pre``).
    """

    def __init__(
        self,
        *,
        lr,
        gamma,
        feedback,
        loss,
        reg,
        reg_rate_per_step,
        rate_decay,
        alpha,
        kappa,
        v_th,
        beta,
        rho,
        dtype,
        filter_e=True,
        lr_of=None,
        zero_reset=False,
    ):
        self.zero_reset = zero_reset  # per-synapse eligibility vectors (one float per synapse more)
        self.filter_e = filter_e  # False: RFLO's spiking form (the eligibility is used unfiltered)
        self.lr, self.gamma, self.feedback, self.loss = lr, gamma, feedback, loss
        self.lr_of = dict(lr_of or {})  # a hidden projection's own lr, where it differs from the readout's
        self.reg, self.f_target, self.rate_decay = reg, reg_rate_per_step, rate_decay
        self.alpha, self.kappa, self.v_th, self.beta, self.rho = alpha, kappa, v_th, beta, rho
        self.dtype = dtype

    def init(self, batch: int, n_hidden: int, pres: Mapping[str, int], n_out: int, B: np.ndarray) -> dict:
        d = self.dtype
        st = {"B": np.broadcast_to(np.asarray(B, d), (batch, n_hidden, n_out)).copy()}
        st["z_out"] = np.zeros((batch, n_hidden), d)
        st["f"] = np.zeros((batch, n_hidden), d)
        for name, n in pres.items():
            if self.zero_reset:
                st[f"{name}/eps_v"] = np.zeros((batch, n_hidden, n), d)
            else:
                st[f"{name}/z_bar"] = np.zeros((batch, n), d)
            st[f"{name}/e_bar"] = np.zeros((batch, n_hidden, n), d)
            if self.beta:
                st[f"{name}/eps"] = np.zeros((batch, n_hidden, n), d)
        return st

    def step(self, st: dict, w, w_out, v, a, z, y, target, pre_spikes, recurrent=()) -> None:
        """One step. ``w``: hidden projections' weights ``[batch, H, pre]`` (updated in place),
        ``w_out`` ``[batch, out, H]``; ``v``/``a``/``z`` of the hidden neurons; ``y`` the readout;
        ``target`` ``[batch, out]`` (NaN rows: no learning this step); ``pre_spikes`` per
        projection; ``recurrent``: names of projections from H onto itself (no autapses)."""
        d = self.dtype
        th = d(self.v_th)
        A = th + (a if a is not None else 0)
        psi = (d(self.gamma) / th) * pseudo_derivative(v, A, th)
        valid = None if target is None else ~np.isnan(target).any(axis=-1)
        labelled = valid is not None and bool(valid.any())
        learn = labelled or bool(self.reg)  # the rate term is part of every step's learning signal
        if labelled:
            if self.loss == "ce":
                err = softmax_error(y, np.nan_to_num(target))
            else:
                err = y - np.nan_to_num(target)
            err = (err * valid[:, None]).astype(d)
            L = np.einsum("bjk,bk->bj", st["B"], err)
        elif learn:
            err = np.zeros((y.shape[0], st["B"].shape[2]), d)
            L = np.zeros(st["f"].shape, d)
        if self.reg:  # with the running rate including this step's spikes (output_step stores it)
            f = running_rate(st["f"], z.astype(d), d(self.rate_decay))
            L = L + rate_regularization(f, d(self.f_target), d(self.reg))
        k = d(self.kappa) if self.filter_e else d(0)
        decay_eps = d(self.rho) - psi * d(self.beta) if self.beta else np.zeros((0, 0), d)
        z_post = z.astype(d) if self.zero_reset else np.zeros((0, 0), d)
        calls = []
        for name, wp in w.items():  # compiled: the synapses' eligibility, its filter, the update, the trace
            arr = {x: np.ascontiguousarray(st[f"{name}/{x}"])
                   for x in ("z_bar", "eps_v", "e_bar", "eps") if f"{name}/{x}" in st}  # fmt: skip
            zb = arr["eps_v"] if self.zero_reset else arr["z_bar"][:, None, :]  # [trial, post or 1, pre]
            args = (wp, zb, arr["e_bar"], arr.get("eps", np.zeros((0, 0, 0), d)), psi,
                    L if learn else np.zeros((0, 0), d), pre_spikes[name].astype(d), k, d(1) - k,
                    d(self.lr_of.get(name, self.lr)), d(self.beta), decay_eps, d(self.alpha), learn,
                    name in recurrent, z_post)  # fmt: skip
            calls.append(sliced(hidden_step, args, v.shape[0]))
            st.update({f"{name}/{x}": a for x, a in arr.items()})
        # every projection's trials in one hand-over to the cores (each trial's projections are independent)
        over_trials(lambda lo, hi: [call(lo, hi) for call in calls], v.shape[0])
        for var in ("z_out", "f", "B"):  # updated in place by the kernel
            st[var] = np.ascontiguousarray(st[var])
        # the readout trace, the running rate f (learning.quantities.running_rate), the readout weights and B
        output_step(w_out, st["z_out"], st["f"], z.astype(d), err if learn else np.zeros((0, 0), d), st["B"],
                    d(self.kappa), d(1) - d(self.kappa), d(self.rate_decay), d(self.lr), learn,
                    self.feedback == "adaptive", self.feedback == "symmetric")  # fmt: skip


# learned weights' range above their initial weights' on a fixed-point engine, in bits, by the
# projection's role (the quantizer fits the range to the initial weights). Measured on loihi2's
# pattern generation over 2000 iterations (README, "Weight headroom for learned projections"):
# 1 bit on the recurrent and readout weights keeps lowered-float from diverging on 2 of 3 seeds
# but makes lowered-fixed, the chip, worse on 2 of 3 (mean NMSE 0.22 against 0.15), so no bit is
# the default: the chip's resolution first; `weight_headroom_bits` asks for the range.
WEIGHT_HEADROOM_BITS = {"input": 0, "recurrent": 0, "readout": 0}
ADAM = (0.9, 0.999, 1e-8)  # Adam's beta1, beta2, eps (Kingma & Ba 2015; reference.eprop.Adam's)


def apply_trial_update(w: np.ndarray, acc: np.ndarray, opt: dict, lr: float, optimizer: str) -> np.ndarray:
    """The end of a minibatch (e-prop's ``update: trial``) for one projection, in the arrays'
    dtype (float32 on the core): the trials' buffers ``acc`` ``[trial, post, pre]`` (each the
    sum of its trial's updates at lr 1 for ``adam``, at ``lr`` for ``sgd``, the weights held
    fixed) are added in trial order and divided by the trial count; ``sgd`` adds that mean to
    the weights, ``adam`` takes ``g = -mean`` as the gradient: ``m <- b1 m + (1 - b1) g``,
    ``v <- b2 v + (1 - b2) g^2``, ``w <- w - lr (m / c1) / (sqrt(v / c2) + eps)`` with the bias
    corrections ``c1 = 1 - b1^t``, ``c2 = 1 - b2^t`` rounded once to the dtype (``opt``: ``m``,
    ``v`` ``[post, pre]`` and the step count ``t`` ``[1]``, updated in place). Every copy
    ``w[trial]`` takes the result and ``acc`` is zeroed. Returns the mean."""
    d = acc.dtype.type
    mean = acc[0].copy()
    for b in range(1, acc.shape[0]):
        mean = mean + acc[b]
    mean = mean / d(acc.shape[0])
    if optimizer == "sgd":
        new = w[0] + mean
    else:
        b1, b2, eps = (d(x) for x in ADAM)
        opt["t"] += d(1)
        t = int(opt["t"][0])
        g = -mean
        opt["m"][...] = b1 * opt["m"] + (d(1) - b1) * g
        opt["v"][...] = b2 * opt["v"] + (d(1) - b2) * (g * g)
        c1, c2 = d(1 - ADAM[0] ** t), d(1 - ADAM[1] ** t)
        new = w[0] - d(lr) * (opt["m"] / c1) / (np.sqrt(opt["v"] / c2) + eps)
    w[...] = new
    acc[...] = d(0)
    return mean


class HyperparameterError(NeurocompError, ValueError):
    """A compiled e-prop projection's hyperparameters do not fit :class:`EpropParams`."""

    kind = "e-prop hyperparameters"


@dataclass(frozen=True, kw_only=True)
class EpropParams(Mapping):
    """e-prop's hyperparameters (also RFLO's), the one list of them: the rule's defaults
    (``rules.eprop.DEFAULTS``) are read from these fields, and a programmable core's compiled
    projection holds one. Read-only mapping of its fields, so ``params["lr"]`` reads as before.

    ``lr`` learning rate (model units per unit error x eligibility); ``feedback`` random,
    symmetric or adaptive; ``dampening`` the pseudo-derivative's gamma; ``loss`` mse or ce;
    ``reg`` rate regularization's strength, ``reg_rate_hz`` its target (Hz) and ``reg_tau_ms``
    its running rate's time constant (ms); ``seed`` of the random feedback; ``trace_impulse``
    and ``error_range`` (the sum-of-products lowering's trace impulse and error-unit range);
    ``t_epoch`` steps per learning epoch on a sum-of-products engine (a power of two);
    ``weight_headroom_bits``: on a fixed-point engine, the learned weights' exponent that many
    bits above the one their initial weights need, so that they can grow ``2**bits``-fold
    (their initial mantissas lose as many bits; negative: a finer LSB, the initial weights
    beyond the narrower range saturated and counted in the compile log; a programmable core
    ignores it; None: by the projection's role, :data:`WEIGHT_HEADROOM_BITS`); ``readout_headroom_bits`` the same for
    the projections onto the readout, over ``weight_headroom_bits``; ``update``
    ``online`` (every step's update applied at once) or ``trial`` (a programmable core's
    minibatch: the updates accumulate with the weights fixed and the run's trials' mean is
    applied at its end, :func:`apply_trial_update`); ``optimizer`` of a ``trial`` update:
    ``sgd`` (``lr`` times the e-prop update) or ``adam`` (``lr`` Adam's step size);
    ``floor_offset``: on a sum-of-products engine, the hidden neurons send a dither that offsets
    the engine's floor of the weight update's product (``rules.eprop``; a programmable core
    ignores it)."""

    lr: float
    feedback: str = "random"
    dampening: float = 0.3
    loss: str = "mse"
    reg: float = 0.0
    reg_rate_hz: float = 10.0
    reg_tau_ms: float = RATE_TAU_MS
    seed: int = 0
    trace_impulse: float = 16.0
    error_range: float = 2.0
    t_epoch: int = 1
    weight_headroom_bits: int | None = None
    readout_headroom_bits: int | None = None
    update: str = "online"
    optimizer: str = "sgd"
    floor_offset: bool = True

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Field -> default (``...``: required)."""
        return {f.name: (... if f.default is MISSING else f.default) for f in fields(cls)}

    @classmethod
    def of(cls, params: Mapping[str, Any], where: str = "e-prop") -> EpropParams:
        """From a mapping (a rule's parameters, a Program's manifest); an unknown or missing
        field is a :class:`HyperparameterError` naming it. Fields a Program saved before they
        existed take their defaults."""
        names = {f.name for f in fields(cls)}
        problems = [Problem(where, f"unknown hyperparameter {k!r}") for k in sorted(set(params) - names)]
        problems += [Problem(where, f"hyperparameter {k!r} is required") for k, v in cls.defaults().items()
                     if v is ... and (k not in params or params[k] is ...)]  # fmt: skip
        if problems:
            raise HyperparameterError(problems)
        return cls(**{k: v for k, v in params.items() if v is not ...})

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


@dataclass(frozen=True)
class ProgrammableEprop:
    """A plastic projection's part in e-prop on a programmable core: ``role`` ``hidden`` or
    ``output``; the rule's hyperparameters (:class:`EpropParams`; a mapping is converted);
    ``readout`` and ``hidden`` population names."""

    params: EpropParams
    role: str
    readout: str
    hidden: str
    source: str = "eprop"

    def __post_init__(self) -> None:
        if not isinstance(self.params, EpropParams):
            object.__setattr__(self, "params", EpropParams.of(self.params, f"{self.source} ({self.role})"))

    def to_dict(self) -> dict:
        return {"engine": "programmable", "params": dict(self.params), "role": self.role,
                "readout": self.readout, "hidden": self.hidden, "source": self.source}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProgrammableEprop:
        return cls(dict(d["params"]), d["role"], d["readout"], d["hidden"], d.get("source", "eprop"))
