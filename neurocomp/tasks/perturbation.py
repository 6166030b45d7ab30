"""``perturbation-perceptron``: a linear readout learning by weight or node perturbation (the
analytically tractable task of Züge, Klos & Memmesheimer, "Weight versus node perturbation
learning in temporally extended tasks", PRX 13, 021006, 2023, as set up in the authors'
exemplary code; ``learning-rules.md`` §2.5).

A linear readout ``y = W r`` of ``n_out`` (M) outputs from ``n_in`` (N) inputs over ``steps``
(T) time bins. The inputs are orthonormal smooth functions of time (a constant, then cosines
and sines of rising order, each with ``sum_t f(t)^2 = 1``), scaled by ``sqrt(T alpha^2)``,
``alpha^2 = N / n_trial``. Input ``j`` carries function ``j``. Of the first ``n_task``
(N_eff^task) inputs, each trial switches on ``n_trial`` (N_eff^trial) drawn at random; the
others are 0. The target is the realizable part ``W* r`` (``W*_ij = w_opt`` for ``j <
n_task``, else 0) plus, on every output, the unrealizable component ``sqrt(alpha_d^2 T)
f_{n_task+1}(t)`` with ``alpha_d^2 = 2 E_opt / M`` (a function no input carries), so the best
weights leave the error ``E_opt``. ``n_trial < n_task`` is the "multiple subtasks" case,
``n_trial = n_task`` "repeated input".

The metric is the paper's error, the negative reward: ``E = (1 / 2T) sum_{t,i} (y*_i(t) -
y_i(t))^2`` per trial, averaged over the batch. From ``W = 0`` it starts at ``E_0 = M n_trial
alpha^2 w_opt^2 / 2 + E_opt`` (7.0 with the defaults).

:func:`optimal_lr`, :func:`perturbation_sigma` and :func:`expected_error` are the paper's
optimal learning rates, equal-output-power perturbation sizes and closed-form learning curves
(the authors' ``predict_reward_multiple_subtasks`` and ``predict_reward_single_subtask``), the
independent check of the learning curves of :mod:`neurocomp.rules.perturbation`.

Trials are drawn fresh each iteration: ``task.sample(k)``; ``batch`` independent trials
(one per independently learning network) each iteration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Task

NAME = "perturbation-perceptron"

DEFAULTS: dict[str, Any] = {
    "batch": 1,
    "n_in": 100,  # N
    "n_out": 10,  # M
    "steps": 100,  # T
    "n_task": 50,  # N_eff^task: inputs any trial may use
    "n_trial": 10,  # N_eff^trial: inputs one trial uses (= n_task: repeated input)
    "e_opt": 2.0,  # the error the best weights leave (needs n_task + 2 <= steps)
    "w_opt": 0.1,  # the target weight of each used input
    # the perturbation's size at the outputs, for the rules learning the task: 0.04, the paper's finite size, leaves
    # NP near E = 6 here (its T = 100 bins multiply the perturbation power); 0.004 keeps the closed form
    "sigma_eff": 0.004,
}


VOLATILE_NAME = "volatile-perceptron"

# the volatile task: the target weights are drawn anew every ``block`` trials, so the rule must
# relearn from a jump in the error. NP there learns at ``lr_scale`` times its optimal rate,
# times the third factor's gain: the VKF's learning rate (``gain = "vkf"``), or 1 (``"none"``)
GAINS = ("vkf", "none")
VOLATILE_DEFAULTS: dict[str, Any] = {
    **DEFAULTS,
    # half the bins and 20 subtask inputs (of which each trial uses 10): NP relearns 2.5 times faster per trial
    # (a_NP = 1 - (10/20)/102) and a trial costs half, at the same E_opt, alpha^2 and jump size
    "steps": 50,
    "n_task": 20,
    "block": 1200,  # trials per block (about 6 of NP's time constants); each block draws new target weights
    "w_jump": 0.1,  # the new weights' spread around w_opt (each jump raises E by ~ M n_trial alpha^2 w_jump^2)
    "lr_scale": 1.0,  # the rule's learning rate over its optimal one
    "gain": "vkf",  # the third factor's gain: "vkf" (rules.volatility.RewardGain) or "none"
    "gain_lambda": 0.1,  # the VKF's volatility rate,
    "gain_v0": 1.0,  # its initial volatility,
    "gain_sigma2": 1.0,  # and the reward's per-trial variance it assumes (reward units^2)
}


def basis(steps: int, count: int) -> np.ndarray:
    """``[count, steps]``: a constant, then ``cos(k t)``, ``sin(k t)`` for ``k = 1, 2, ...``
    on ``t = 2 pi s / steps``, each normalized to ``sum_s f(s)^2 = 1`` (orthonormal while the
    order ``k < steps / 2``)."""
    if count > steps - 1 + steps % 2:
        raise ValueError(f"{NAME}: {count} orthonormal functions need more than {steps} steps")
    t = 2 * np.pi * np.arange(steps) / steps
    rows = []
    for i in range(count):
        order = (i + 1) // 2
        f = np.cos(order * t) if i % 2 == 0 else np.sin(order * t)
        rows.append(f / np.linalg.norm(f))
    return np.array(rows)


def alpha_squared(cfg) -> float:
    """``alpha^2 = N / N_eff^trial``: the strength of each active input (total input power
    independent of ``n_trial``)."""
    return cfg["n_in"] / cfg["n_trial"]


def initial_error(cfg) -> float:
    """``E_0``, the expected error of ``W = 0`` (``w_opt^2 + w_jump^2`` per active weight where
    the targets jump)."""
    w2 = cfg["w_opt"] ** 2 + (cfg["w_jump"] ** 2 if cfg.get("block", 0) > 0 else 0.0)
    return cfg["n_out"] * cfg["n_trial"] * alpha_squared(cfg) * w2 / 2 + cfg["e_opt"]


def largest_error(cfg) -> float:
    """The largest expected error a learner meets: ``E_0``, or just after a jump of the targets
    (``2 w_jump^2`` per active weight from the previous block's)."""
    if cfg.get("block", 0) <= 0:
        return initial_error(cfg)
    jump = cfg["n_out"] * cfg["n_trial"] * alpha_squared(cfg) * cfg["w_jump"] ** 2 + cfg["e_opt"]
    return max(initial_error(cfg), jump)


def optimal_lr(cfg, kind: str) -> float:
    """The paper's optimal learning rate: ``1 / ((M min(N_eff, N, T) + 2) alpha^2)`` with
    ``N_eff = n_task`` for weight perturbation (``"wp"``), ``n_trial`` for node perturbation."""
    n_eff = cfg["n_task"] if kind == "wp" else cfg["n_trial"]
    return 1.0 / ((cfg["n_out"] * min(n_eff, cfg["n_in"], cfg["steps"]) + 2) * alpha_squared(cfg))


def perturbation_sigma(cfg, kind: str, sigma_eff: float) -> float:
    """The perturbation's standard deviation for an effective (output) size ``sigma_eff``:
    ``sigma_eff`` per output and bin for NP, ``sigma_eff / sqrt(alpha^2 n_trial)`` per weight for
    WP (the same output perturbation power)."""
    return sigma_eff if kind == "np" else sigma_eff / np.sqrt(alpha_squared(cfg) * cfg["n_trial"])


def expected_error(cfg, kind: str, trials: int, lr: float | None = None, sigma: float = 0.0) -> np.ndarray:
    """The closed-form expected error ``E(t)`` before trial ``t = 0 .. trials - 1``.

    Multiple subtasks (``n_trial < n_task``), at the optimal rates: ``E_WP = E_inf + (E_0 -
    E_inf) a_WP^t`` with ``a_WP = 1 - (n_trial/n_task) / (M n_task + 2)`` and ``E_NP`` likewise
    with ``a_NP = 1 - (n_trial/n_task) / (M n_trial + 2)``. For negligible perturbations (the
    authors' ``predict_reward_multiple_subtasks``) ``E_inf`` is ``E_opt`` for WP and ``2 E_opt``
    for NP: NP learns faster but to twice the optimal error. A finite ``sigma`` raises ``E_inf``
    by ``D / (1 - a)``: the perturbation's own square, ``-(1/2T) sum (xi-part of y)^2`` (mean
    ``-M sigma_eff^2 / 2``), stays in ``dR`` beside the useful linear term and makes each update
    a random step of mean square ``lr^2 c^2 T alpha^2 / sigma^2`` per active weight (NP) or
    ``lr^2 c^2 / sigma^2`` per weight (WP); an input is active in a fraction ``n_trial /
    n_task`` of the trials, so ``D`` is the single-subtask formula's perturbation term ``b``
    (below) at ``N_eff = n_trial``, times ``n_trial / n_task`` for NP (whose inactive weights
    take no step). The leading terms, ``lr^2 alpha^4 M^3 n_trial T sigma^2 / 8`` (NP) and
    ``lr^2 alpha^6 M^3 n_trial^3 sigma^2 / 8`` (WP), are that step's (derived here, not in the
    authors' code; the lower-order terms are the single-subtask formula's). With the defaults
    and ``sigma_eff = 0.04``: NP's floor 4 + 1.97, WP's 2 + 0.20.

    Repeated input (``n_trial = n_task = N_eff``), at learning rate ``lr`` (default optimal)
    and perturbation size ``sigma`` (per weight for WP, per output and bin for NP): ``E = E_opt
    + (E_0 - E_opt - b/(1-a)) a^t + b/(1-a)`` with ``a = 1 - 2 lr alpha^2 + lr^2 alpha^4 (M N_eff
    + 2)`` and ``b`` the perturbations' own error floor (NP's also grows with ``E_opt``)."""
    e0, e_opt, t = initial_error(cfg), cfg["e_opt"], np.arange(trials)
    n_task, n_trial = cfg["n_task"], cfg["n_trial"]
    if n_trial < n_task:
        a = _multiple_subtasks_a(cfg, kind)
        e_inf = floor(cfg, kind, sigma)
        return e_inf + (e0 - e_inf) * a**t
    a, b = _single_subtask_ab(cfg, kind, optimal_lr(cfg, kind) if lr is None else lr, sigma)
    # the code's curves are rewards R = -E; b is a reward offset
    return e_opt + (e0 - e_opt + b / (1 - a)) * a**t - b / (1 - a)


def floor(cfg, kind: str, sigma: float = 0.0, lr: float | None = None) -> float:
    """The closed form's final error ``E_inf`` (:func:`expected_error`; multiple subtasks at the
    optimal rate, repeated input at ``lr``)."""
    e_opt, M, T, n_trial = cfg["e_opt"], cfg["n_out"], cfg["steps"], cfg["n_trial"]
    if n_trial < cfg["n_task"]:
        b = _sigma_term(kind, sigma, optimal_lr(cfg, kind), alpha_squared(cfg), M, n_trial, T)
        b *= 1.0 if kind == "wp" else n_trial / cfg["n_task"]  # WP perturbs every weight, NP only the active ones
        return (e_opt if kind == "wp" else 2 * e_opt) + b / (1 - _multiple_subtasks_a(cfg, kind))
    a, b = _single_subtask_ab(cfg, kind, optimal_lr(cfg, kind) if lr is None else lr, sigma)
    return e_opt - b / (1 - a)


def _multiple_subtasks_a(cfg, kind: str) -> float:
    n_eff = cfg["n_task"] if kind == "wp" else cfg["n_trial"]
    return 1 - (cfg["n_trial"] / cfg["n_task"]) / (cfg["n_out"] * n_eff + 2)


def _single_subtask_ab(cfg, kind: str, eta: float, sigma: float) -> tuple[float, float]:
    """The authors' ``predict_reward_single_subtask``'s ``a`` and ``b`` (``b`` a reward offset)."""
    M, T, n, a2 = cfg["n_out"], cfg["steps"], cfg["n_task"], alpha_squared(cfg)
    a = 1 - 2 * eta * a2 + eta**2 * a2**2 * (M * n + 2)
    b = -_sigma_term(kind, sigma, eta, a2, M, n, T)
    if kind != "wp":
        b -= eta**2 * a2**2 * M * n * cfg["e_opt"]  # (the code's + eta^2 alpha^4 M N R_opt, R_opt = -E_opt)
    return a, b


def _sigma_term(kind: str, sigma: float, eta: float, a2: float, M: int, n: int, T: int) -> float:
    """The error a perturbation of size ``sigma`` adds per trial (the authors' single-subtask
    ``-b`` without its ``E_opt`` part; ``sigma`` per weight for WP, per output and bin for NP)."""
    if kind == "wp":
        return 0.125 * sigma**2 * eta**2 * a2**3 * (M**3 * n**3 + 6 * M**2 * n**2 + 8 * M * n)
    return 0.125 * sigma**2 * eta**2 * a2**2 * (M**3 * n * T + 6 * M**2 * n + 8 * M * n / T)


def trials_to(curve: np.ndarray, threshold: float) -> int | None:
    """The first trial at which ``curve`` is below ``threshold`` (None: never)."""
    below = np.nonzero(np.asarray(curve) < threshold)[0]
    return int(below[0]) if below.size else None


def error(outputs: np.ndarray, targets: np.ndarray) -> float:
    """``E = (1/2T) sum_{t,i} (y*_i(t) - y_i(t))^2``, averaged over the batch."""
    d = np.asarray(outputs, np.float64) - np.asarray(targets, np.float64)
    return float(0.5 * np.sum(d**2) / (d.shape[0] * d.shape[1]))


def make(seed: int = 0, **overrides: Any) -> Task:
    """Iteration 0's trials for ``seed``; ``sample(k)`` gives iteration ``k``'s."""
    return _make(NAME, DEFAULTS, seed, overrides)


def make_volatile(seed: int = 0, **overrides: Any) -> Task:
    """``volatile-perceptron`` (:data:`VOLATILE_DEFAULTS`): iteration 0's trials for ``seed``."""
    return _make(VOLATILE_NAME, VOLATILE_DEFAULTS, seed, overrides)


def target_weights(cfg, seed: int, block: int) -> np.ndarray:
    """``W*`` ``[M, n_task]`` of ``block`` (always ``w_opt`` without blocks; with them ``w_opt +
    w_jump N(0, 1)`` per weight, drawn anew each block from ``(seed, block)``)."""
    M, n_task = cfg["n_out"], cfg["n_task"]
    w = np.full((M, n_task), float(cfg["w_opt"]))
    if cfg.get("block", 0) > 0:
        w += cfg["w_jump"] * np.random.default_rng([seed, 1, block]).standard_normal((M, n_task))
    return w


def _make(name: str, defaults: dict[str, Any], seed: int, overrides: dict[str, Any]) -> Task:
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {sorted(unknown)} (known: {', '.join(defaults)})")
    cfg = {**defaults, **overrides}
    for k in ("batch", "n_in", "n_out", "steps", "n_task", "n_trial", "block"):
        if k in cfg:
            cfg[k] = int(cfg[k])
    if "block" in cfg and (cfg["block"] < 1 or cfg["gain"] not in GAINS or cfg["lr_scale"] <= 0):
        raise ValueError(f"{name}: need block >= 1, lr_scale > 0 and gain one of {GAINS}, got {cfg}")
    nb, N, M, T, n_task, n_trial = (cfg[k] for k in ("batch", "n_in", "n_out", "steps", "n_task", "n_trial"))
    if min(nb, M, n_trial) < 1 or not n_trial <= n_task <= N:
        raise ValueError(f"{name}: need batch, n_out, n_trial >= 1 and n_trial <= n_task <= n_in, got {cfg}")
    e_opt = float(cfg["e_opt"])
    if e_opt < 0 or (e_opt > 0 and n_task + 2 > T):
        raise ValueError(f"{name}: e_opt must be >= 0, and > 0 only with n_task + 2 <= steps (got {cfg})")
    f = basis(T, min(N, T, n_task + 2))  # the inputs' functions, and the unrealizable one
    a2 = alpha_squared(cfg)
    irrep = np.sqrt(2 * e_opt / M * T) * f[n_task + 1] if e_opt > 0 else np.zeros(T)

    def sample(k: int) -> Task:
        rng = np.random.default_rng([seed, k])
        x = np.zeros((T, nb, N))
        for b in range(nb):
            on = rng.choice(n_task, size=n_trial, replace=False)
            x[:, b, on] = np.sqrt(T * a2) * f[on].T
        # the realizable target W* r, and the unrealizable component on every output
        w = target_weights(cfg, seed, k // cfg["block"] if cfg.get("block", 0) > 0 else 0)
        y = np.einsum("tbj,ij->tbi", x[:, :, :n_task], w) + irrep[:, None, None]
        return Task(name, seed, x, y, "error", error, dt_ms=None, config=cfg, sample=sample)

    return sample(0)
