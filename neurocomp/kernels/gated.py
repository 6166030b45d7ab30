"""The gated theta network's step (Huh & Sejnowski 2018): one template, two arithmetics.

:func:`run_gated` is the one definition of the discrete model that
:class:`~neurocomp.reference.gated.GatedNet` documents; the float64 reference (training) and
the emulator (a spinnaker2 Program's float32 neurons) both call it, so the two differ only in
the dtype of the arrays they pass. Every constant is taken in that dtype (``pi`` included),
so a float32 run rounds every operation to float32 as the core's single-precision FPU does
(no fastmath, no fused multiply-add; a core's libm may round the cosine or sine differently
in the last bit). Sums run in a fixed order: over the inputs, then the recurrent charges,
then the bias.

**Fixed point** (loihi2's microcode neuron, :data:`FX_LEN` formats in ``fx``; an empty ``fx``
is the float arithmetic): the same template in float64 holding the chip's numbers exactly (dyadic
values on each register's grid). The phase is in turns (``pi`` is ``1/2``), so the zone count
``k`` is the phase's integer part and ``eps`` is in turns per step; the neuron has no cosine or
sine, so :func:`cos_phase` and the raised-cosine ramp are the polynomials :data:`COS_POLY`,
:data:`SIN_POLY` (Horner's rule, a multiply and a shift per term); the zone's width is its
reciprocal (no divider: ``width`` holds ``1/width`` in 1/turn); every product is floored onto its
register's grid (an arithmetic shift) and brought into its range as the format's ``overflow``
says (:func:`grid`): saturated, or wrapped modulo ``2**bits``. A wrapping phase register holds
the phase modulo ``2**(bits - frac_bits)`` turns, a whole number of zones, so the gate's charge
is unchanged and the zone count's difference is taken modulo the same span (:func:`zone_step`).
A strict run records the first value that leaves its range (:data:`FX_ERR`) and stops.
"""

from __future__ import annotations

import numpy as np

from . import kernel
from .neurons import O_NONE, O_WRAP, OVERFLOWS


def passages(theta: np.ndarray, span: float = 0.0) -> np.ndarray:
    """Zone passages per step from phases ``[T + 1, ...]`` (rad): crossings of ``pi`` (mod
    2 pi), the gated neuron's spikes, ``[T, ...]`` (float64 integers). ``span`` (rad, a
    multiple of 2 pi): the phases wrap modulo it (:func:`theta_span`), so each step's count is
    taken modulo ``span / 2 pi`` into ``[-span/4 pi, span/4 pi)``; 0: they do not wrap."""
    d = np.diff(np.floor((np.asarray(theta, np.float64) - np.pi) / (2 * np.pi)), axis=0)
    if span:
        n = round(span / (2 * np.pi))
        d -= n * np.floor(d / n + 0.5)
    return d


# the fixed formats: format k's 2**frac_bits in fx[4 k], its range in fx[4 k + 1], fx[4 k + 2] (model
# units), its overflow in fx[4 k + 3] (kernels.neurons' O_SATURATE or O_WRAP; O_NONE: strict)
FX_TH, FX_F, FX_I, FX_S, FX_Y = range(5)  # phase (turns), polynomials, current, charge, readout
FX_LEN = 20
# a strict run's record after the formats: found (0, 1: in grid, 2: located), format, value (its
# integer units, before the saturation the run continued with), step, trial, neuron
FX_ERR = FX_LEN
E_FOUND, E_FMT, E_VALUE, E_STEP, E_TRIAL, E_NEURON = range(6)
E_LEN = 6
# least-squares fits on |z| <= 1/2 (a quarter turn): cos(pi z) = sum_k COS_POLY[k] z^(2k) (max
# error 1.7e-5) and sin(pi z)/(2 pi) = z sum_k SIN_POLY[k] z^(2k) (max error 2.6e-7); the other
# quarter folds onto it (cos(pi z) = -cos(pi (1 - z)), sin(pi z) = sin(pi (1 - z)))
COS_POLY = (0.99999528, -4.93412033, 4.04361923, -1.22933704)
SIN_POLY = (0.49999874, -0.82239307, 0.40471113, -0.08867447)
FORMATS = ("theta", "f", "I", "s", "y")  # fx's formats in FX_* order (a profile's GatedTheta state)


def fixed_arith(state, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(fx, cc)`` of the fixed arithmetic from the :data:`FORMATS` in ``state`` (name ->
    a format with ``bits``, ``frac_bits`` and ``overflow``): each one's ``2**frac_bits``,
    two's-complement range and overflow, and the polynomials' coefficients rounded to nearest
    on ``f``'s grid. ``strict``: every overflow is recorded (fx's :data:`FX_ERR` tail) and stops
    the run."""
    fx = np.zeros(FX_LEN + (E_LEN if strict else 0))
    for k, name in enumerate(FORMATS):
        f = state[name]
        sc = 2.0**f.frac_bits
        ovf = O_NONE if strict else OVERFLOWS[f.overflow]
        fx[4 * k : 4 * k + 4] = sc, -(2.0 ** (f.bits - 1)) / sc, (2.0 ** (f.bits - 1) - 1) / sc, ovf
    sc = fx[4 * FX_F]
    return fx, np.round(np.array(COS_POLY + SIN_POLY) * sc) / sc


# a wrapping phase register's span must be at least 2**MIN_SPAN_BITS turns (a step moves the phase
# by less than one turn, so a span of 4 leaves the zone count's step unambiguous modulo the span)
MIN_SPAN_BITS = 2
REGISTERS = (*FORMATS, "c", "r")  # every format the fixed neuron reads (c, r: chip_constants' registers)


def state_problems(state) -> list[str]:
    """Why ``state`` (a profile's ``GatedTheta.state``) cannot hold the fixed neuron: a missing
    :data:`REGISTERS` format, a float one, or an overflow other than saturate and wrap."""
    out = []
    for name in REGISTERS:
        f = state.get(name)
        if f is None:
            out.append(f"{name}: missing (the fixed GatedTheta neuron's registers: {', '.join(REGISTERS)})")
        elif f.kind != "int":
            out.append(f"{name}: kind {f.kind!r}; the fixed GatedTheta neuron's registers are int")
        elif f.overflow not in ("saturate", "wrap"):
            out.append(f"{name}: overflow {f.overflow!r}; the fixed GatedTheta neuron saturates or wraps")
        elif name == "theta" and f.overflow == "wrap" and f.bits - f.frac_bits < MIN_SPAN_BITS:
            # the zone count's step is taken modulo the span: it must hold more than twice a step's passages
            out.append(f"theta: a wrapping phase register of {f.bits} bits with {f.frac_bits} fraction bits holds "
                       f"{2.0 ** (f.bits - f.frac_bits):g} turns; at least {2**MIN_SPAN_BITS} turns "
                       f"(bits - frac_bits >= {MIN_SPAN_BITS}) so that a step's passages are counted right")
    return out


def on_grid(x: float, fmt) -> float | None:
    """``x`` rounded to nearest on ``fmt``'s grid (``bits``, ``frac_bits``), or None when it
    leaves the format's range."""
    m = round(x * 2.0**fmt.frac_bits)
    return m / 2.0**fmt.frac_bits if -(2 ** (fmt.bits - 1)) <= m < 2 ** (fmt.bits - 1) else None


# the step constants the neuron cannot work without, and why (a compile that rounds one to 0 refuses it)
NONZERO_CONSTANTS = {"eps": "the phase would never move (eps = dt/tau_v; shorten tau_v_ms)",
                     "beta": "the neuron would send no charge (beta = (1 - alpha)/dt; shorten tau_s_ms)"}  # fmt: skip

# the fixed neuron's step-constant registers: format, and the register's value per model unit
# (phases in turns; ``width`` is held as its reciprocal, 2 pi / width per turn)
CHIP_REGISTERS = {"eps": ("c", 1 / (2 * np.pi)), "alpha": ("c", 1.0), "beta": ("c", 1.0), "width": ("r", None),
                  "bias": ("I", 1.0), "theta0": ("theta", 1 / (2 * np.pi))}  # fmt: skip


def chip_constants(consts, state) -> dict[str, float | None]:
    """The fixed registers (:data:`CHIP_REGISTERS`) of step constants given in model units
    (``GatedTheta.step_constants``' names), each on its format's grid; None: out of its range."""
    out = {}
    for name, value in consts.items():
        fmt, per = CHIP_REGISTERS[name]
        out[name] = on_grid(2 * np.pi / value if per is None else value * per, state[fmt])
    return out


def model_constants(chip) -> dict[str, float]:
    """:func:`chip_constants`' registers back in model units (the values the chip realizes)."""
    return {k: 2 * np.pi / v if CHIP_REGISTERS[k][1] is None else v / CHIP_REGISTERS[k][1] for k, v in chip.items()}


def float_arith(dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(fx, cc)`` of the float arithmetic in ``dtype``: empty."""
    return np.empty(0, dtype), np.empty(0, dtype)


@kernel(inline="always")
def grid(x, fx, k):
    """``x`` floored onto format ``k``'s grid and brought into its range by its overflow
    (saturate; wrap modulo ``2**bits``; strict: the first such value recorded in fx's
    :data:`FX_ERR` tail, then saturated); ``x`` itself in the float arithmetic (``fx`` empty)."""
    if fx.shape[0] == 0:
        return x
    sc, lo, hi, ovf = fx[4 * k], fx[4 * k + 1], fx[4 * k + 2], fx[4 * k + 3]
    q = np.floor(x * sc) / sc
    if lo <= q <= hi:
        return q
    if ovf == O_WRAP:  # (no literal here: a float32 run stays in float32)
        span = -(lo + lo)
        return q - span * np.floor((q - lo) / span)
    if ovf == O_NONE and fx[FX_ERR + E_FOUND] == 0:
        fx[FX_ERR + E_FOUND], fx[FX_ERR + E_FMT], fx[FX_ERR + E_VALUE] = 1, k, q * sc
    return min(max(q, lo), hi)


def theta_span(fx: np.ndarray) -> float:
    """The span (turns) a wrapping phase register holds, ``2**(bits - frac_bits)``; 0: the
    phase does not wrap (float, saturating, strict)."""
    if fx.shape[0] == 0 or fx[4 * FX_TH + 3] != O_WRAP:
        return 0.0
    return float(-2 * fx[4 * FX_TH + 1])


@kernel(inline="always")
def zone_step(dg, fx):
    """The change ``dg`` of the zone count ``G`` over a step; with a wrapping phase register,
    modulo its span ``2 |lo|`` into ``[lo, -lo)`` (a step moves the phase far less than that)."""
    if fx.shape[0] == 0 or fx[4 * FX_TH + 3] != O_WRAP:
        return dg
    lo = fx[4 * FX_TH + 1]
    return dg + (lo + lo) * np.floor((dg - lo) / -(lo + lo))


@kernel(inline="always")
def stopped(fx, t, b, i):
    """Whether a strict run stops here: an overflow :func:`grid` recorded, now located (step
    ``t``, trial ``b``, neuron ``i``)."""
    if fx.shape[0] <= FX_LEN or fx[FX_ERR + E_FOUND] != 1:
        return False
    fx[FX_ERR + E_FOUND], fx[FX_ERR + E_STEP], fx[FX_ERR + E_TRIAL], fx[FX_ERR + E_NEURON] = 2, t, b, i
    return True


@kernel(inline="always")
def _horner(w, cc, o, fx):
    p = cc[o + 3]
    for j in range(2, -1, -1):
        p = grid(p * w, fx, FX_F) + cc[o + j]
    return p


@kernel(inline="always")
def cos_phase(theta, fx, cc, one, half):
    """``cos theta`` (rad); fixed: ``cos 2 pi theta`` of a phase in turns, by :data:`COS_POLY`.
    ``one``, ``half``: 1 and 1/2 in the arithmetic's dtype (as every constant here)."""
    if fx.shape[0] == 0:
        return np.cos(theta)
    z = abs((one + one) * (theta - np.floor(theta)) - one)  # cos(2 pi theta) = -cos(pi z)
    if z > half:
        return _horner(grid((one - z) * (one - z), fx, FX_F), cc, 0, fx)
    return -_horner(grid(z * z, fx, FX_F), cc, 0, fx)


@kernel(inline="always")
def sine_ramp(u, two_pi, fx, cc, one, half):
    """``sin(2 pi u)/(2 pi)`` for ``|u| <= 1/2``; fixed: by :data:`SIN_POLY`."""
    if fx.shape[0] == 0:
        return np.sin(two_pi * u) / two_pi
    z = abs((one + one) * u)
    if z > half:
        z = one - z
    p = grid(z * _horner(grid(z * z, fx, FX_F), cc, 4, fx), fx, FX_F)
    return p if u >= 0 else -p


@kernel(inline="always")
def in_zone(phi, width, fx):
    """``phi / width``; fixed: ``width`` holds the reciprocal (no divider), the product floored."""
    if fx.shape[0] == 0:
        return phi / width
    return grid(phi * width, fx, FX_F)


@kernel(inline="always")
def gate_charge(theta, width, cosine, pi, two_pi, half, fx, cc):
    """``G(theta)``: passages of the active zone (centred on ``pi + 2 pi k``, ``width`` rad)
    plus the fraction of the current one; ``cosine``: the raised-cosine gate's integral, else
    the rectangular gate's. All arguments in one dtype (fixed: turns, ``pi = 1/2``)."""
    k = np.floor((theta - pi) / two_pi + half)  # the nearest zone
    u = min(max(in_zone(theta - pi - two_pi * k, width, fx), -half), half)
    ramp = u + half
    if cosine:
        ramp = ramp + sine_ramp(u, two_pi, fx, cc, half + half, half)
    return k + ramp


@kernel
def gate_charges(theta, width, cosine, out, fx, cc):
    """``out[i] = G(theta[i])`` (:func:`gate_charge`) over flat arrays of one dtype."""
    c = theta.dtype.type
    pi = c(0.5) if fx.shape[0] else c(np.pi)
    for i in range(theta.shape[0]):
        out[i] = gate_charge(theta[i], width[i], cosine, pi, c(2.0) * pi, c(0.5), fx, cc)


@kernel
def run_gated(x, w_in, w_rec, w_out, bias, eps, alpha, beta, width, cosine, kappa, b_out, th, s, cur, y, y0, fx, cc):
    """Run ``T = x.shape[0]`` steps of the discrete model, for every trial::

        I_t         = U x_t + W s_t + I0
        theta_{t+1} = theta_t + eps ((1 - cos theta_t) + (1 + cos theta_t) I_t)
        s_{t+1}     = alpha s_t + beta (G(theta_{t+1}) - G(theta_t))
        y_t         = kappa y_{t-1} + (1 - kappa) (O s_{t+1} + b)

    ``x`` ``[T, batch, n_in]`` input currents; ``w_in`` ``[n, n_in]``, ``w_rec`` ``[n, n]``
    (ms), ``w_out`` ``[n_out, n]`` (ms); per neuron ``bias`` (I0), ``eps = dt/tau_v``,
    ``alpha = exp(-dt/tau_s)``, ``beta = (1 - alpha)/dt`` (1/ms), ``width`` (rad); the readout's
    ``kappa`` and ``b_out``. ``th`` and ``s`` ``[T + 1, batch, n]`` hold the initial state in
    row 0 and receive each step's result; ``cur`` ``[T, batch, n]`` receives ``I``, ``y``
    ``[T, batch, n_out]`` the readout, ``y0`` ``[batch, n_out]`` is its state before the run.
    Every array and scalar in one dtype (float64 or float32). ``fx``, ``cc``: empty (float), or
    the fixed formats and polynomial coefficients (module docstring: phases in turns, ``eps``
    in turns per step, ``width`` its reciprocal in 1/turn). A strict ``fx`` returns at the
    first overflow (trial-major order), located in its :data:`FX_ERR` tail; the arrays hold
    the steps before it."""
    c = th.dtype.type
    pi, one, half = c(0.5) if fx.shape[0] else c(np.pi), c(1.0), c(0.5)
    two_pi = c(2.0) * pi
    T, nb, n = x.shape[0], x.shape[1], w_rec.shape[0]
    g = np.empty(n, th.dtype)
    for b in range(nb):
        for i in range(n):
            g[i] = gate_charge(th[0, b, i], width[i], cosine, pi, two_pi, half, fx, cc)
        yk = y0[b].copy()
        for t in range(T):
            for i in range(n):
                acc = c(0.0)
                for k in range(x.shape[2]):
                    acc += w_in[i, k] * x[t, b, k]
                for j in range(n):
                    acc += w_rec[i, j] * s[t, b, j]
                cur[t, b, i] = grid(acc + bias[i], fx, FX_I)
                if stopped(fx, t, b, i):
                    return
            for i in range(n):
                th_i, cs = th[t, b, i], cos_phase(th[t, b, i], fx, cc, one, half)
                step = grid(eps[i] * ((one - cs) + grid((one + cs) * cur[t, b, i], fx, FX_I)), fx, FX_TH)
                th_n = grid(th_i + step, fx, FX_TH)  # the phase register's overflow (a sum on its grid)
                g_n = gate_charge(th_n, width[i], cosine, pi, two_pi, half, fx, cc)
                charge = grid(beta[i] * zone_step(g_n - g[i], fx), fx, FX_S)
                s[t + 1, b, i] = grid(grid(alpha[i] * s[t, b, i], fx, FX_S) + charge, fx, FX_S)
                th[t + 1, b, i] = th_n
                g[i] = g_n
                if stopped(fx, t, b, i):
                    return
            for o in range(w_out.shape[0]):
                acc = c(0.0)
                for i in range(n):
                    acc += w_out[o, i] * s[t + 1, b, i]
                yk[o] = grid(grid(kappa * yk[o], fx, FX_Y) + grid((one - kappa) * (acc + b_out[o]), fx, FX_Y), fx, FX_Y)
                y[t, b, o] = yk[o]
                if stopped(fx, t, b, o):
                    return
