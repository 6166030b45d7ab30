"""Pass ``quantize``: the discretized float network becomes the chip's integers.

Fixed-point chips. Each non-input population gets a voltage scale ``S = 2**scale_exp``
(integer units per model unit), the largest power of two such that

* its threshold fits the threshold mantissa (``v_th * S <= max_mantissa << shift``) and
  leaves ``headroom_bits`` of the voltage range above it for overshoot (a readout instead
  keeps ``readout_headroom_bits`` above its largest input weight);
* the largest positive and negative weight of every incoming projection fits the weight
  mantissa at the largest exponent (``|w| * S <= max_mantissa * 2**(exponent_max + input_shift)``);
* its bias fits the bias mantissa at the largest bias exponent.

A power of two keeps binary fractions exact. Then, per projection (per post neuron where the
profile allows per-channel exponents), the weight exponent is the smallest that holds the
largest weight without clipping, which keeps the most mantissa bits; mantissas are rounded by
the compile option's rounding mode. On a chip whose mixed-sign weights lose their LSB
(Loihi), mixed mantissas are rounded to even values, so the chip's own truncation changes
nothing and the loss shows up in this report. Decays come from ``discretize``.

Float chips (``arithmetic: float32``): weights get the profile's integer mantissa with a
power-of-two scale per projection or channel; thresholds, biases and decays are float32.

Every parameter gets a :class:`ParamStats` row. Zeroed weights above
``max_zeroed_fraction`` warn (or fail with ``strict``), as do clipped values.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ...arith.rounding import round_to_int
from ...errors import Problem
from ...graph import ALIF, LI, LIF, GatedTheta, Projection, SpikeInput
from ...graph.conv import ConvProjection
from ...graph.weights import SparseWeights, row_pointers
from ...kernels.gated import CHIP_REGISTERS, NONZERO_CONSTANTS, chip_constants, model_constants
from ...profiles import Profile
from ..context import PassContext
from ..errors import QuantizationError
from ..ir import (
    DiscreteNetwork,
    DiscretePopulation,
    ParamStats,
    QConv,
    QPopulation,
    QProjection,
    QuantizedNetwork,
    QuantReport,
    StatsAccumulator,
)
from .drc import state_range_warnings

_CHUNK = 1 << 20  # weights per chunk: bounds the float temporaries of large projections


def ceil_log2(r: float) -> int:
    """The smallest integer ``e`` with ``r <= 2**e`` (exact at powers of two), for r > 0."""
    e = math.ceil(math.log2(r))
    if 2.0 ** (e - 1) >= r:
        e -= 1
    elif 2.0**e < r:
        e += 1
    return e


def _weight_limits(prof: Profile, sign_mode: str) -> tuple[int, int, int]:
    """``(lo, hi, step)`` of usable mantissas: the profile's range under ``sign_mode``,
    restricted to multiples of 2 when the chip drops the LSB of mixed-sign weights."""
    w = prof.formats.weight
    lo, hi = w.mantissa_range(sign_mode)  # type: ignore[arg-type]
    if w.mixed_sign_drops_lsb and sign_mode == "mixed":
        return lo + (lo % 2), hi - (hi % 2), 2
    return lo, hi, 1


def _sign_mode(prof: Profile, proj: Projection) -> str:
    return "mixed" if prof.formats.weight.encoding == "twos_complement" else proj.inferred_sign_mode()


def _values(proj: Projection) -> np.ndarray:
    w = proj.weights
    return w.values if isinstance(w, SparseWeights) else w


def _exponent_for(pos: np.ndarray, neg: np.ndarray, lo: int, hi: int, emin: int, emax: int) -> np.ndarray:
    """Smallest exponent per entry of ``pos``/``neg`` (largest positive, most negative target
    value) that holds both in ``[lo, hi]``, clamped to the profile's exponent range."""
    need = np.zeros(np.shape(pos))
    with np.errstate(divide="ignore"):
        r = np.maximum(np.where(pos > 0, pos / max(hi, 1), 0.0), np.where(neg < 0, neg / min(lo, -1), 0.0))
    flat = need.reshape(-1)
    for i, v in enumerate(np.asarray(r).reshape(-1)):
        flat[i] = ceil_log2(v) if v > 0 else emin
    return np.clip(need, emin, emax).astype(np.int64)


def population_scale_exp(pop: DiscretePopulation, incoming: list[Projection], prof: Profile, ctx: PassContext) -> int:
    """``log2`` of the population's voltage scale (see the module docstring)."""
    f = prof.formats
    opts = ctx.options
    n = pop.neuron
    limits: dict[str, float] = {}
    vbits = f.voltage.bits
    if isinstance(n, LIF):
        th_hi = f.threshold.mantissa_range()[1]  # type: ignore[union-attr]
        limits["threshold mantissa"] = (
            math.log2(th_hi) + f.threshold.exponent_max + f.threshold.shift - math.log2(n.v_th)
        )  # type: ignore[union-attr]
        limits["voltage headroom"] = vbits - 1 - opts.headroom_bits - math.log2(n.v_th)
    else:
        wmax = max((float(np.max(np.abs(_values(p)), initial=0.0)) for p in incoming), default=0.0) or 1.0
        limits["voltage headroom"] = vbits - 1 - opts.readout_headroom_bits - math.log2(wmax)
    emax = f.weight.exponent_max
    for p in incoming:
        v = _values(p)
        lo, hi, _ = _weight_limits(prof, _sign_mode(prof, p))
        pos, neg = float(np.max(v, initial=0.0)), float(np.min(v, initial=0.0))
        if pos > 0:
            limits[f"weights of {p.name}"] = min(
                limits.get(f"weights of {p.name}", math.inf), math.log2(hi) + emax + f.input_shift - math.log2(pos)
            )
        if neg < 0:
            limits[f"weights of {p.name}"] = min(
                limits.get(f"weights of {p.name}", math.inf), math.log2(-lo) + emax + f.input_shift - math.log2(-neg)
            )
    bias = getattr(n, "bias", 0.0)
    if bias and f.bias is not None:
        limits["bias mantissa"] = (
            math.log2(f.bias.mantissa_range()[1]) + f.bias.exponent_max + f.bias.shift - math.log2(abs(bias))
        )
    binding = min(limits, key=limits.get)  # type: ignore[arg-type]
    scale_exp = math.floor(limits[binding])
    ctx.note(f"population {pop.name!r}: voltage scale 2^{scale_exp} (bound by {binding})")
    return scale_exp


class _Quantizer:
    def __init__(self, net: DiscreteNetwork, ctx: PassContext):
        self.net, self.ctx, self.prof = net, ctx, ctx.profile
        self.stats: list[ParamStats] = []
        self.problems: list[Problem] = []  # strict-mode failures
        self.rounding = ctx.options.rounding

    def round(self, x: np.ndarray) -> np.ndarray:
        return round_to_int(x, self.rounding, self.ctx.rng)

    def loss(self, element: str, message: str) -> None:
        self.ctx.warn(f"{element}: {message}")
        self.problems.append(Problem(element, message))

    # -- populations -----------------------------------------------------------------
    def population(self, pop: DiscretePopulation, scale_exp: int) -> QPopulation:
        n, prof = pop.neuron, self.prof
        where = f"population {pop.name!r}"
        params: dict = {}
        if isinstance(n, SpikeInput):
            params = {"rate_hz": n.rate_hz, "seed": n.seed, "trials": n.trials}
            return QPopulation(pop.name, pop.size, n.model, True, 0, params)
        if isinstance(n, GatedTheta):
            return self.gated(pop, where)
        fixed = prof.arithmetic == "fixed"
        for role, d in pop.decays.items():
            realized = d.factor if fixed else float(np.float32(d.factor))
            params[f"{role}_decay"] = d.code if fixed else realized
            self.stats.append(ParamStats.compare(where, f"{role} decay", np.array([d.exact]), np.array([realized])))
        if isinstance(n, LIF):
            params["threshold"] = self.scaled(where, "threshold", n.v_th, scale_exp, prof.formats.threshold, fixed)
            params["reset"] = n.reset
            params["refractory"] = n.refractory_steps
        if isinstance(n, ALIF):
            params["beta"] = self.scaled(
                where, "beta", n.beta, scale_exp, prof.formats.threshold, fixed, allow_zero=True
            )
        if isinstance(n, (LIF, LI)):
            if prof.formats.bias is not None or not fixed:
                bias = self.bias(where, n.bias, scale_exp, fixed)
                params.update(bias)
        return QPopulation(pop.name, pop.size, n.model, n.spiking, scale_exp if fixed else 0, params)

    def gated(self, pop: DiscretePopulation, where: str) -> QPopulation:
        """A gated theta population: its step constants (:meth:`GatedTheta.step_constants`)
        rounded once to float32 on a float core, or (fixed, loihi2's microcode neuron) to
        nearest on their registers' grids (:func:`~neurocomp.kernels.gated.chip_constants`),
        stored in model units. A constant outside its register is a named error; one that
        becomes 0 is a quantization loss, and an error where the neuron cannot work without
        it (:data:`~neurocomp.kernels.gated.NONZERO_CONSTANTS`)."""
        n: GatedTheta = pop.neuron  # type: ignore[assignment]
        params: dict = {"zone_shape": n.zone_shape}
        consts = n.step_constants(self.net.dt_ms)
        if self.prof.arithmetic == "fixed":
            state = self.prof.neuron_models["GatedTheta"].state
            held = {}
            for k in consts:
                r = CHIP_REGISTERS[k][0]
                held[k] = f"{state[r].bits}-bit register {r!r} ({state[r].frac_bits} fraction bits)"
            chip = chip_constants(consts, state)
            bad = [k for k, v in chip.items() if v is None]
            if bad:  # not representable at all: an error in any mode
                raise QuantizationError([Problem(where, f"GatedTheta {k} {consts[k]:g} does not fit its {held[k]}")
                                         for k in bad])  # fmt: skip
            realized = model_constants(chip)
        else:
            held = dict.fromkeys(consts, "float32 register")
            realized = {k: float(np.float32(v)) for k, v in consts.items()}
        refused = []
        for name, value in consts.items():
            params[name] = realized[name]
            self.stats.append(ParamStats.compare(where, name, np.array([value]), np.array([params[name]])))
            if value != 0 and realized[name] == 0:
                msg = f"GatedTheta {name} {value:g} quantizes to 0 in its {held[name]}"
                if name in NONZERO_CONSTANTS:
                    refused.append(Problem(where, f"{msg}: {NONZERO_CONSTANTS[name]}"))
                else:
                    self.loss(where, msg)
        if refused:
            raise QuantizationError(refused)
        return QPopulation(pop.name, pop.size, n.model, n.spiking, 0, params)

    def scaled(self, where, name, value, scale_exp, fmt, fixed, allow_zero=False):
        """A threshold-like value: ``mantissa << shift == value * S`` (exponent fixed at its minimum)."""
        if not fixed:
            q = float(np.float32(value))
            self.stats.append(ParamStats.compare(where, name, np.array([value]), np.array([q])))
            return q
        shift = fmt.shift + fmt.exponent_min
        m = int(self.round(np.array([value * 2.0 ** (scale_exp - shift)]))[0])
        lo, hi = fmt.mantissa_range()
        clipped = int(not lo <= m <= hi)
        m = min(max(m, lo), hi)
        realized = m * 2.0 ** (shift - scale_exp)
        self.stats.append(ParamStats.compare(where, name, np.array([value]), np.array([realized]), clipped))
        if clipped:
            self.loss(where, f"{name} {value:g} does not fit the {fmt.mantissa_bits}-bit mantissa; clipped to {m}")
        if m == 0 and value != 0 and not allow_zero:
            self.loss(where, f"{name} {value:g} quantizes to 0 at scale 2^{scale_exp}")
        return m

    def bias(self, where, value, scale_exp, fixed) -> dict:
        if value == 0.0:
            return {"bias_mant": 0, "bias_exp": 0} if fixed else {"bias": 0.0}
        if not fixed:
            q = float(np.float32(value))
            self.stats.append(ParamStats.compare(where, "bias", np.array([value]), np.array([q])))
            return {"bias": q}
        fmt = self.prof.formats.bias
        lo, hi = fmt.mantissa_range()
        target = value * 2.0**scale_exp
        exp = fmt.exponent_min
        while exp < fmt.exponent_max and not lo <= target / 2.0 ** (exp + fmt.shift) <= hi:
            exp += 1
        m = int(self.round(np.array([target / 2.0 ** (exp + fmt.shift)]))[0])
        clipped = int(not lo <= m <= hi)
        m = min(max(m, lo), hi)
        realized = m * 2.0 ** (exp + fmt.shift - scale_exp)
        self.stats.append(ParamStats.compare(where, "bias", np.array([value]), np.array([realized]), clipped))
        if clipped:
            self.loss(where, f"bias {value:g} does not fit mantissa and exponent; clipped")
        if m == 0 and value != 0:
            self.loss(where, f"bias {value:g} quantizes to 0 at scale 2^{scale_exp}")
        return {"bias_mant": m, "bias_exp": exp}

    # -- projections -----------------------------------------------------------------
    def projection(self, proj: Projection, post_scale_exp: int, emin: int | None = None) -> QProjection:
        """``emin``: a floor on the weight exponent above the profile's (a convolution's)."""
        if isinstance(proj, ConvProjection):
            return self.conv(proj, post_scale_exp)
        prof = self.prof
        f = prof.formats
        fixed = prof.arithmetic == "fixed"
        where = f"projection {proj.name!r}"
        sign_mode = _sign_mode(prof, proj)
        lo, hi, step = _weight_limits(prof, sign_mode)
        shift = post_scale_exp - (f.input_shift if fixed else 0)  # mantissa * 2**exp == w * 2**shift
        w = proj.weights
        sparse = isinstance(w, SparseWeights)
        vals = (w.values if sparse else w).reshape(-1)
        n_post, n_pre = proj.shape
        e_lo = f.weight.exponent_min if emin is None else max(f.weight.exponent_min, emin)
        if f.weight.per_channel_exponent:
            if sparse:
                indptr = row_pointers(w.rows, n_post)
                counts, starts = np.diff(indptr), indptr[:-1]
                nonempty = counts > 0
                pos, neg = np.zeros(n_post), np.zeros(n_post)
                if vals.size:
                    pos[nonempty] = np.maximum.reduceat(vals, starts[nonempty])
                    neg[nonempty] = np.minimum.reduceat(vals, starts[nonempty])
                pos, neg = np.maximum(pos, 0.0), np.minimum(neg, 0.0)
            else:
                pos, neg = np.max(np.maximum(w, 0), axis=1), np.min(np.minimum(w, 0), axis=1)
            e = _exponent_for(pos * 2.0**shift, neg * 2.0**shift, lo, hi, e_lo, f.weight.exponent_max)
            weight_exp: int | np.ndarray = e
        else:
            pos, neg = float(np.max(vals, initial=0.0)), float(np.min(vals, initial=0.0))
            e_arr = _exponent_for(
                np.array(pos * 2.0**shift),
                np.array(neg * 2.0**shift),
                lo,
                hi,
                e_lo,
                f.weight.exponent_max,
            )
            weight_exp = int(e_arr)
        # Chunks bound the float temporaries (a 1e8-synapse projection would otherwise need GBs).
        m = np.empty(vals.size, dtype=np.int32)
        acc = StatsAccumulator()
        clipped = 0
        for a in range(0, vals.size, _CHUNK):
            b = min(a + _CHUNK, vals.size)
            if isinstance(weight_exp, int):
                e_c: int | np.ndarray = weight_exp
            else:
                e_c = weight_exp[w.rows[a:b]] if sparse else weight_exp[np.arange(a, b) // n_pre]
            unit = np.exp2(np.asarray(e_c, dtype=np.float64) - shift)  # model value of one mantissa LSB
            mc = self.round(vals[a:b] / (unit * step)) * step
            over = (mc < lo) | (mc > hi)
            n_over = int(np.count_nonzero(over))
            clipped += n_over
            if n_over:
                mc = np.clip(mc, lo, hi)
            m[a:b] = mc
            acc.add(vals[a:b], mc * unit, n_over)
        st = acc.result(where, "weights")
        self.stats.append(st)
        if clipped:
            self.loss(where, f"{clipped} weights outside the representable range were clipped")
        if st.nonzero and st.zeroed / st.nonzero > self.ctx.options.max_zeroed_fraction:
            smallest = step * 2.0 ** (int(np.min(weight_exp)) - shift) / 2
            self.loss(
                where,
                f"{st.zeroed} of {st.nonzero} nonzero weights ({st.zeroed / st.nonzero:.1%}) became 0 "
                f"(limit {self.ctx.options.max_zeroed_fraction:.1%}); the smallest survive at "
                f"|w| >= {smallest:.3g}",
            )
        return QProjection(
            name=proj.name,
            pre=proj.pre,
            post=proj.post,
            shape=proj.shape,
            weights=m if sparse else m.reshape(proj.shape),
            rows=w.rows if sparse else None,
            cols=w.cols if sparse else None,
            weight_exp=weight_exp,
            sign_mode=sign_mode,
            num_weight_bits=f.weight.mantissa_bits,
            delay_steps=proj.delay_steps,
            plasticity=proj.plasticity,
            float_scale=2.0**-shift,
            port=proj.port,
        )

    def conv(self, proj: ConvProjection, post_scale_exp: int) -> QProjection:
        """A convolution, quantized per kernel: the kernel (one row per output channel) is rounded
        once, so every position shares its mantissas (stochastic rounding too) and the report
        counts kernel weights; then it is expanded. A per-channel exponent is per kernel."""
        g, cc = proj.geometry, self.prof.capacity.convolution
        kmat = Projection(
            proj.pre, proj.post, proj.kernel.reshape(g.kernel_shape[0], -1), sign_mode=proj.sign_mode, name=proj.name
        )
        qk = self.projection(kmat, post_scale_exp, None if cc is None else cc.weight_exponent_min)
        rows, cols, kidx = g.expand()
        e = qk.weight_exp
        if not isinstance(e, int):  # per output channel; the channel is a post neuron's fastest index
            e = np.tile(e, g.n_post // g.kernel_shape[0])
        m = qk.weights.reshape(-1)[kidx]
        if cc is not None and cc.accumulator_bits is not None:
            self.conv_sum_limit(proj, rows, m * np.exp2(e if isinstance(e, int) else e[rows]), cc.accumulator_bits)
        w = proj.weights
        return replace(
            qk, shape=proj.shape, weights=m, rows=w.rows, cols=w.cols, weight_exp=e,
            delay_steps=proj.delay_steps, port=proj.port, conv=QConv(g, qk.weights.reshape(g.kernel_shape)),
        )  # fmt: skip

    def conv_sum_limit(self, proj: ConvProjection, rows: np.ndarray, w: np.ndarray, bits: int) -> None:
        """The chip's convolution sums wrap at ``bits`` signed bits, the emulator's do not: every
        possible sum (all pre neurons spiking, as often as a step allows) must fit."""
        n = proj.shape[0]
        k = self.prof.time.max_spikes_per_step
        hi = k * np.bincount(rows, np.maximum(w, 0), minlength=n).max(initial=0)
        lo = k * np.bincount(rows, np.minimum(w, 0), minlength=n).min(initial=0)
        if hi > 2 ** (bits - 1) - 1 or lo < -(2 ** (bits - 1)):
            raise QuantizationError(
                [
                    Problem(
                        f"projection {proj.name!r}",
                        f"summed input reaches [{lo:.0f}, {hi:.0f}], outside {self.prof.name}'s {bits}-bit "
                        f"convolution accumulator [{-(2 ** (bits - 1))}, {2 ** (bits - 1) - 1}]; "
                        "use smaller or fewer weights",
                    )
                ]
            )


PORT_DECAY = {"syn": "current", "syn2": "current2"}  # the decay (DiscretePopulation.decays) of each port


def compensate_input_decay(net: DiscreteNetwork, ctx: PassContext) -> tuple[Projection, ...]:
    """The projections whose weights the chip should hold. Where a step's input is added
    before the current decays (``time.current_update: add_then_decay``, Xylo), one input of
    ``w`` raises the current by ``w * a`` (``a`` the realized decay factor of the port's
    current), where the model's current jumps by ``w``; the weights are divided by ``a``, so
    that the chip's current follows the model's from the step of the input on. (A factor of
    0 loses every input; the DRC refuses it.)"""
    if ctx.profile.time.current_update != "add_then_decay":
        return net.projections
    out = []
    for proj in net.projections:
        post = net.population(proj.post)
        d = post.decays.get(PORT_DECAY[proj.port])
        if d is None or d.factor in (0.0, 1.0):
            out.append(proj)
            continue
        w = proj.weights
        if isinstance(proj, ConvProjection):  # the kernel is the convolution's parameter
            out.append(replace(proj, kernel=proj.kernel / d.factor, weights=None))
            ctx.note(f"projection {proj.name!r}: kernel / {d.factor:g} (the chip decays a step's input in that step)")
            continue
        w = replace(w, values=w.values / d.factor) if isinstance(w, SparseWeights) else w / d.factor
        ctx.note(f"projection {proj.name!r}: weights / {d.factor:g} (the chip decays a step's input in that step)")
        out.append(replace(proj, weights=w))
    return tuple(out)


def quantize(net: DiscreteNetwork, ctx: PassContext) -> QuantizedNetwork:
    q = _Quantizer(net, ctx)
    fixed = ctx.profile.arithmetic == "fixed"
    projections = compensate_input_decay(net, ctx) if fixed else net.projections
    scale_exp: dict[str, int] = {}
    for pop in net.populations:
        if isinstance(pop.neuron, SpikeInput):
            continue
        incoming = [p for p in projections if p.post == pop.name]
        scale_exp[pop.name] = population_scale_exp(pop, incoming, ctx.profile, ctx) if fixed else 0
    qpops = tuple(q.population(p, scale_exp.get(p.name, 0)) for p in net.populations)
    qprojs = tuple(q.projection(p, scale_exp[p.post]) for p in projections)
    qnet = QuantizedNetwork(net, qpops, qprojs, QuantReport(()))
    for w in state_range_warnings(qnet):  # the DRC's check that needs the integer weights
        ctx.warn(w)
    report = QuantReport(tuple(q.stats), tuple(w for w in ctx.warnings))
    if ctx.options.strict and q.problems:
        raise QuantizationError(
            q.problems,
            header=f"quantization for {ctx.profile.name} loses more than allowed "
            f"(strict mode; {len(q.problems)} problems)",
        )
    n_w = sum(s.count for s in q.stats if s.param == "weights")
    zeroed = sum(s.zeroed for s in q.stats if s.param == "weights")
    ctx.note(f"{n_w} weights quantized ({zeroed} zeroed), rounding {ctx.options.rounding}")
    return QuantizedNetwork(net, qpops, qprojs, report)
