"""The range check of a Program file's manifest and arrays, run by :meth:`Program.load`.

Checksums catch damaged bytes; this catches values that are well-formed but wrong, as a
hand-edited manifest can have: a negative threshold, a decay of 1e9, dt NaN, a weight
exponent of 1e6, arrays whose shapes do not match the populations they join. Every value
is checked against the profile's formats and limits, and every problem is listed at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import Problem
from ..graph.neurons import GATE_SHAPES
from ..profiles import Profile

_MODELS = ("SpikeInput", "LIF", "ALIF", "LI", "ErrorUnit", "GatedTheta")
_SIGN_MODES = ("mixed", "excitatory", "inhibitory")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _nonfinite(value: Any, path: str) -> list[str]:
    """Paths of the NaN or infinite numbers anywhere in a JSON value."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _nonfinite(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nonfinite(v, f"{path}[{i}]")]
    return []


def _in_range(x: Any, lo: float, hi: float, integer: bool) -> str | None:
    """None if every value of ``x`` (a number or an array) is finite and in ``lo..hi`` (and
    whole where ``integer``), else what is wrong."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return f"expected numbers, got {x!r}"[:200]
    if a.size == 0:
        return None
    if not np.isfinite(a).all():
        return "is not finite"
    if integer and (a != np.round(a)).any():
        return f"must be an integer, got {a[a != np.round(a)].flat[0]!r}"
    if a.min() < lo or a.max() > hi:
        bad = a.min() if a.min() < lo else a.max()
        return f"{bad:g} is outside {lo:g}..{hi:g}"
    return None


def manifest_problems(m: dict, arrays: Mapping[str, np.ndarray], prof: Profile) -> list[Problem]:
    """Every problem of manifest ``m`` with ``arrays`` against ``prof`` (empty: loadable)."""
    out: list[Problem] = []
    dt = m.get("dt_ms")
    if not _is_num(dt) or not math.isfinite(dt) or dt <= 0:
        out.append(Problem("manifest", f"dt_ms must be a finite number > 0, got {dt!r}"))
    sizes: dict[str, int] = {}
    models: dict[str, str] = {}
    pops = m.get("populations")
    if not isinstance(pops, list):
        return out + [Problem("manifest", "populations: expected a list")]
    for i, p in enumerate(pops):
        out += _population_problems(p, i, prof, sizes, models, dt if _is_num(dt) else None)
    projs = m.get("projections")
    if not isinstance(projs, list):
        return out + [Problem("manifest", "projections: expected a list")]
    for i, p in enumerate(projs):
        out += _projection_problems(p, i, prof, sizes, arrays)
    return out + [Problem("manifest", msg) for msg in _record_problems(m)]


def _record_problems(m: dict) -> list[str]:
    """The descriptive parts (placement figures, reports, logs) have the types a summary reads."""
    out = []
    for key in ("network", "neurocomp_version"):
        if not isinstance(m.get(key), str):
            out.append(f"{key}: expected a string, got {m.get(key)!r}")
    for key in ("options",):
        if not isinstance(m.get(key), Mapping):
            out.append(f"{key}: expected a mapping")
    for key in ("warnings",):
        if not (isinstance(m.get(key), list) and all(isinstance(w, str) for w in m[key])):
            out.append(f"{key}: expected a list of strings")
    pl = m.get("placement")
    if not isinstance(pl, Mapping):
        return out + ["placement: expected a mapping"]
    for key in ("traffic_total", "traffic_cross_core", "traffic_cross_chip", "traffic_cross_chip_greedy"):
        v = pl.get(key)
        if not _is_num(v) or not math.isfinite(v) or v < 0:
            out.append(f"placement.{key}: expected a finite number >= 0, got {v!r}")
    e = pl.get("energy_pj_per_step")
    if e is not None and (not _is_num(e) or not math.isfinite(e)):
        out.append(f"placement.energy_pj_per_step: expected a finite number or null, got {e!r}")
    if not isinstance(pl.get("energy_terms"), Mapping):
        out.append("placement.energy_terms: expected a mapping")
    blocks = pl.get("blocks")
    if not isinstance(blocks, list) or not all(
        isinstance(b, list) and len(b) == 4 and isinstance(b[0], str) and all(_is_int(x) for x in b[1:]) for b in blocks
    ):
        out.append("placement.blocks: expected a list of [population, start, stop, core]")
    log = m.get("pass_log")
    if not isinstance(log, list) or not all(
        isinstance(r, Mapping)
        and isinstance(r.get("name"), str)
        and _is_num(r.get("seconds"))
        and _is_num(r.get("peak_rss_mib"))
        and isinstance(r.get("notes"), list)
        for r in log
    ):
        out.append("pass_log: expected a list of {name, seconds, peak_rss_mib, notes}")
    rep = m.get("report")
    if not (
        isinstance(rep, Mapping)
        and isinstance(rep.get("stats"), list)
        and all(_stats_ok(x) for x in rep["stats"])
        and isinstance(rep.get("warnings"), list)
        and all(isinstance(w, str) for w in rep["warnings"])
    ):
        out.append("report: expected {stats: [quantization statistics], warnings: [strings]}")
    return out


def _stats_ok(x: Any) -> bool:
    """One quantization statistic (see ParamStats): names, counts and (possibly NaN) errors."""
    from .ir import ParamStats

    fields = ParamStats.__dataclass_fields__
    if not isinstance(x, Mapping) or set(x) - set(fields) or not isinstance(x.get("element"), str):
        return False
    if not isinstance(x.get("param"), str):
        return False
    ints = ("count", "clipped", "zeroed", "nonzero")
    return all(_is_int(x[k]) for k in ints if k in x) and all(
        _is_num(x.get(k)) for k in fields if k not in ints and k not in ("element", "param")
    )


def _population_problems(p: Any, i: int, prof: Profile, sizes: dict, models: dict, dt: float | None) -> list[Problem]:
    if not isinstance(p, Mapping):
        return [Problem(f"populations[{i}]", "expected a mapping")]
    name = p.get("name")
    where = f"population {name!r}"
    out = []
    if not isinstance(name, str) or not name:
        return [Problem(f"populations[{i}]", f"name must be a non-empty string, got {name!r}")]
    if name in sizes:
        out.append(Problem(where, "duplicate name"))
    size, model, params = p.get("size"), p.get("model"), p.get("params")
    if not _is_int(size) or size < 1:
        out.append(Problem(where, f"size must be an integer >= 1, got {size!r}"))
        size = None
    if model not in _MODELS:
        out.append(Problem(where, f"model {model!r} is not one of {', '.join(_MODELS)}"))
    if not _is_int(p.get("scale_exp")) or not -64 <= p["scale_exp"] <= 64:
        out.append(Problem(where, f"scale_exp must be an integer in -64..64, got {p.get('scale_exp')!r}"))
    if not isinstance(params, Mapping):
        return out + [Problem(where, "params: expected a mapping")]
    sizes[name], models[name] = size, model
    out += [Problem(where, f"params{path[6:]} is not finite") for path in _nonfinite(dict(params), "params")]
    if model == "SpikeInput":
        out += [Problem(where, msg) for msg in _input_problems(params, dt)]
    elif model in ("LIF", "ALIF", "LI"):
        need = _REGISTERS[model] + (("bias_mant", "bias_exp") if fixed_bias(prof) else ())
        missing = [k for k in need if k not in params]
        if missing:
            return out + [Problem(where, f"params: missing registers {', '.join(missing)}")]
        out += [Problem(where, msg) for msg in _register_problems(params, prof, size)]
    elif model == "ErrorUnit":
        if (
            not isinstance(params.get("readout"), str)
            or not _is_int(params.get("bits"))
            or not _is_int(params.get("shift"))
        ):
            out.append(Problem(where, "params: an error unit needs readout (a name), bits and shift (integers)"))
        elif not 2 <= params["bits"] <= 32 or not -64 <= params["shift"] <= 64:
            out.append(Problem(where, f"params: bits {params['bits']} or shift {params['shift']} out of range"))
    elif model == "GatedTheta":
        out += [Problem(where, msg) for msg in _gated_problems(params, prof)]
    return out


# the zone's width is stored as a float32 register: 2 pi rounds up to 6.2831855
_WIDTH_MAX = float(np.float32(2 * math.pi))


def _gated_problems(params: Mapping, prof: Profile) -> list[str]:
    """A gated theta population: on a chip whose profile lists it, with step constants in range."""
    if "GatedTheta" not in prof.neuron_models:
        return [f"{prof.name} has no GatedTheta neurons"]
    limits = {"eps": (0.0, math.inf), "alpha": (0.0, 1.0), "beta": (0.0, math.inf), "width": (0.0, _WIDTH_MAX)}
    out = [f"{k} must be a number in ({lo:g}, {hi:g}], got {params.get(k)!r}" for k, (lo, hi) in limits.items()
           if not _is_num(params.get(k)) or not lo < params[k] <= hi]  # fmt: skip
    out += [f"{k} must be a number, got {params.get(k)!r}" for k in ("bias", "theta0") if not _is_num(params.get(k))]
    if params.get("zone_shape") not in GATE_SHAPES:
        out.append(f"zone_shape must be one of {', '.join(GATE_SHAPES)}, got {params.get('zone_shape')!r}")
    return out


_REGISTERS = {
    "LIF": ("current_decay", "voltage_decay", "threshold", "reset", "refractory"),
    "ALIF": ("current_decay", "voltage_decay", "threshold", "reset", "refractory", "adapt_decay", "beta"),
    "LI": ("current_decay", "voltage_decay"),
}


def fixed_bias(prof: Profile) -> bool:
    """A fixed-point chip with a bias register stores it as mantissa and exponent."""
    return prof.arithmetic == "fixed" and prof.formats.bias is not None


def _input_problems(params: Mapping, dt: float | None) -> list[str]:
    rate, seed = params.get("rate_hz"), params.get("seed")
    out = []
    if rate is not None:
        if not _is_num(rate) or not math.isfinite(rate) or rate < 0:
            out.append(f"rate_hz must be a finite number >= 0, got {rate!r}")
        elif dt is not None and rate * dt / 1000.0 > 1:
            out.append(f"rate_hz {rate:g} is more than one spike per step at dt = {dt:g} ms")
        if not _is_int(seed) or seed < 0:
            out.append(f"seed must be an integer >= 0, got {seed!r}")
    if params.get("trials", "independent") not in ("independent", "shared"):
        out.append(f"trials must be 'independent' or 'shared', got {params.get('trials')!r}")
    return out


def _register_problems(params: Mapping, prof: Profile, size: int | None) -> list[str]:
    """Decays, threshold, bias and refractory period against the profile's formats (per
    neuron arrays must have one entry per neuron)."""
    f = prof.formats
    fixed = prof.arithmetic == "fixed"
    out = []

    def check(key: str, lo: float, hi: float, integer: bool) -> None:
        if key not in params:
            return
        v = params[key]
        if isinstance(v, list) and size is not None and len(v) not in (1, size):
            out.append(f"{key} has {len(v)} entries for {size} neurons")
            return
        bad = _in_range(v, lo, hi, integer)
        if bad:
            out.append(f"{key}: {bad}")

    for key in ("current_decay", "voltage_decay"):
        if fixed and f.decay.representation != "exact":
            check(key, 0, 2**f.decay.bits, True)
        else:
            check(key, 0.0, 1.0, False)
    if fixed and f.threshold is not None:
        lo, hi = f.threshold.mantissa_range()
        check("threshold", max(lo, 0), hi, True)
    else:
        check("threshold", 0.0, math.inf, False)
    if fixed and f.bias is not None:
        check("bias_mant", *f.bias.mantissa_range(), True)
        check("bias_exp", f.bias.exponent_min, f.bias.exponent_max, True)
    check("refractory", 0, 2**31 - 1, True)
    if "reset" in params and params["reset"] not in ("zero", "subtract"):
        out.append(f"reset must be 'zero' or 'subtract', got {params['reset']!r}")
    return out


def _projection_problems(p: Any, i: int, prof: Profile, sizes: dict, arrays: Mapping) -> list[Problem]:
    if not isinstance(p, Mapping):
        return [Problem(f"projections[{i}]", "expected a mapping")]
    where = f"projection {p.get('name')!r}"
    out: list[str] = [f"{path} is not finite" for path in _nonfinite(p.get("learning"), "learning")]

    def arr(key: str) -> np.ndarray | None:
        v = p.get(key)
        return arrays.get(v["array"]) if isinstance(v, Mapping) and "array" in v else None

    if not isinstance(p.get("name"), str) or not p["name"]:
        out.append(f"name must be a non-empty string, got {p.get('name')!r}")
    for role in ("pre", "post"):
        if not isinstance(p.get(role), str) or p[role] not in sizes:
            out.append(f"{role}: unknown population {p.get(role)!r}")
    if not isinstance(p.get("sparse"), bool):
        out.append(f"sparse must be true or false, got {p.get('sparse')!r}")
    rule = p.get("plasticity")
    if rule is not None and not (
        isinstance(rule, Mapping) and isinstance(rule.get("rule"), str) and isinstance(rule.get("params"), Mapping)
    ):
        out.append(f"plasticity must be null or {{rule, params}}, got {rule!r}"[:200])
    for key in ("weights_dtype",) + (("index_dtype",) if p.get("sparse") else ()):
        if p.get(key) not in ("int8", "int16", "int32", "int64"):
            out.append(f"{key} must name a signed integer type, got {p.get(key)!r}")
    shape = p.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(s) and s >= 1 for s in shape)):
        return [Problem(where, m) for m in out + [f"shape must be two integers >= 1, got {shape!r}"]]
    n_post, n_pre = shape
    want = (sizes.get(p.get("post")), sizes.get(p.get("pre")))
    if None not in want and tuple(shape) != want:
        out.append(f"shape {tuple(shape)} does not match [post, pre] = {want}")
    sign = p.get("sign_mode")
    if sign not in _SIGN_MODES:
        out.append(f"sign_mode {sign!r} is not one of {', '.join(_SIGN_MODES)}")
        sign = "mixed"
    wf = prof.formats.weight
    nwb = p.get("num_weight_bits")
    if not _is_int(nwb) or not 1 <= nwb <= wf.mantissa_bits:
        out.append(f"num_weight_bits must be an integer in 1..{wf.mantissa_bits}, got {nwb!r}")
    fs = p.get("float_scale")
    if not _is_num(fs) or not math.isfinite(fs) or fs <= 0:
        out.append(f"float_scale must be a finite number > 0, got {fs!r}")
    w = arr("weights")
    if w is None:
        out.append("weights: missing array")
    elif p.get("sparse"):
        indptr, cols = arr("rows_indptr"), arr("cols")
        if indptr is None or cols is None:
            out.append("a sparse projection needs rows_indptr and cols arrays")
        elif indptr.shape != (n_post + 1,) or cols.shape != w.shape or w.ndim != 1:
            out.append(
                f"sparse arrays: rows_indptr {indptr.shape}, cols {cols.shape} and weights {w.shape} "
                f"do not fit {n_post} rows and {w.size} synapses"
            )
        elif indptr[0] != 0 or indptr[-1] != w.size or (np.diff(indptr.astype(np.int64)) < 0).any():
            out.append("rows_indptr is not a row-pointer array (0, non-decreasing, ending at the synapse count)")
        elif cols.size and (cols.min() < 0 or cols.max() >= n_pre):
            out.append(f"cols: an index lies outside 0..{n_pre - 1}")
    elif w.shape != (n_post, n_pre):
        out.append(f"weights: shape {w.shape} does not match {tuple(shape)}")
    if w is not None:
        lo, hi = wf.mantissa_range(sign if wf.encoding == "sign_mode" else "mixed")
        bad = _in_range(w, lo, hi, True)
        if bad:
            out.append(f"weights ({sign}): {bad}")
    e = arr("weight_exp") if isinstance(p.get("weight_exp"), Mapping) else p.get("weight_exp")
    bad = _in_range(e, wf.exponent_min, wf.exponent_max, True) if e is not None else "is missing"
    if bad:
        out.append(f"weight_exp: one per-channel exponent per post neuron ({n_post}) expected, got {np.shape(e)}")
    elif np.ndim(e) and np.shape(e) != (n_post,):
        out.append(
            f"weight_exp: per-channel exponents must have one entry per post neuron ({n_post}), got {np.shape(e)}"
        )
    d = arr("delay_steps") if isinstance(p.get("delay_steps"), Mapping) else p.get("delay_steps")
    bad = _in_range(d, 0, prof.capacity.max_delay_steps, True) if d is not None else "is missing"
    if bad:
        out.append(f"delay_steps: {bad}")
    elif np.ndim(d) and w is not None and np.shape(d) != w.shape:
        out.append(f"delay_steps: shape {np.shape(d)} does not match the synapses {w.shape}")
    return [Problem(where, m) for m in out]
