"""Human-readable summaries of profiles (the ``neurocomp profiles`` table)."""

from __future__ import annotations

from .profile import Profile


def _fmt_int(n: int | None) -> str:
    return "-" if n is None else str(n)


def _weight(p: Profile) -> str:
    w = p.formats.weight
    bits = w.mantissa_bits + (1 if w.encoding == "sign_mode" else 0)
    return f"{bits}b e[{w.exponent_min},{w.exponent_max}]"


def _state(p: Profile) -> str:
    v = p.formats.voltage
    return f"{v.bits}b float" if v.kind == "float" else f"{v.bits}b {v.overflow}"


def _state_fmt(s) -> str:
    if s.kind == "float":
        return f"{s.bits}-bit float"
    frac = f" ({s.frac_bits} fractional)" if s.frac_bits else ""
    return f"{s.bits}-bit int{frac}, overflow {s.overflow}"


def _scaled(s, absent: str) -> str:
    if s is None:
        return absent
    text = f"{s.mantissa_bits}-bit {'signed' if s.signed else 'unsigned'} mantissa"
    if s.exponent_min != s.exponent_max:
        text += f", exponent {s.exponent_min}..{s.exponent_max}"
    return text + (f" << {s.shift}" if s.shift else "")


def profile_row(p: Profile) -> dict[str, str]:
    c = p.capacity
    e = p.energy.pj_per_synaptic_op
    return {
        "profile": p.name,
        "arith": p.arithmetic,
        "chips x cores x neurons": f"{c.chips} x {c.cores_per_chip} x {c.neurons_per_core}",
        "weights": _weight(p),
        "v": _state(p),
        "decay": f"{p.formats.decay.representation}/{p.formats.decay.bits}b",
        "fan-in": _fmt_int(c.fan_in_per_neuron),
        "max delay": str(c.max_delay_steps),
        "learning": p.learning.kind,
        "pJ/SOP": "-" if e is None else (f"{e:g}" + ("*" if p.is_estimate("energy.pj_per_synaptic_op") else "")),
    }


def profiles_table(profiles: list[Profile]) -> str:
    """A fixed-width table of the key limits of ``profiles`` (``*`` marks an estimate)."""
    rows = [profile_row(p) for p in profiles]
    if not rows:
        return "(no profiles found)"
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    line = "  ".join(c.ljust(widths[c]) for c in cols)
    out = [line, "  ".join("-" * widths[c] for c in cols)]
    out += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    if any(r["pJ/SOP"].endswith("*") for r in rows):
        out.append("* estimate")
    return "\n".join(out)


def profile_summary(p: Profile) -> str:
    """A multi-line description of one profile, every section with its numbers."""
    f, t, c, lrn = p.formats, p.time, p.capacity, p.learning
    w = f.weight
    est = lambda key: " (estimate)" if p.is_estimate(key) else ""  # noqa: E731
    lines = [
        f"{p.title}  [{p.name}]",
        p.description.strip(),
        "",
        f"arithmetic        {p.arithmetic}"
        + (f"; must match {p.validation_backend} bit for bit" if p.validation_backend else ""),
        f"default dt        {t.default_dt_ms:g} ms",
        "formats",
        f"  weight          {w.mantissa_bits}-bit mantissa ({w.encoding}), exponent {w.exponent_min}..{w.exponent_max},"
        f" sign modes {', '.join(w.sign_modes)}" + ("; mixed sign drops the LSB" if w.mixed_sign_drops_lsb else ""),
        f"  input shift     << {f.input_shift}",
        f"  current         {_state_fmt(f.current)}",
        f"  voltage         {_state_fmt(f.voltage)}",
        f"  decay           {f.decay.representation}, {f.decay.bits} bits, rounding {f.decay.rounding}"
        + (
            f", offsets u+{f.decay.current_offset} v+{f.decay.voltage_offset}"
            if f.decay.current_offset or f.decay.voltage_offset
            else ""
        ),
        "  threshold       " + _scaled(f.threshold, "in the state format"),
        "  bias            " + _scaled(f.bias, "in the state format" if f.voltage.kind == "float" else "none"),
    ]
    if f.trace:
        lines.append(
            f"  trace           {f.trace.bits}-bit, impulse fraction {f.trace.impulse_fraction_bits} bits,"
            f" decay rounding {f.trace.decay_rounding}"
        )
    lines += [
        "time",
        f"  synaptic delay  {t.synaptic_delay_steps} step(s); threshold test '{t.threshold}';"
        f" max {t.max_spikes_per_step} spike(s)/step",
        f"  update order    {' -> '.join(t.update_order)}",
        "neuron models",
    ]
    for name, m in p.neuron_models.items():
        resets = ", ".join(m.reset_modes) or "none"
        lines.append(f"  {name:<15} {m.implementation}; reset {resets}; refractory <= {m.refractory_max_steps}")
    lines += [
        "capacity",
        f"  chips x cores   {c.chips} x {c.cores_per_chip}{est('capacity.chips')}",
        f"  neurons/core    {c.neurons_per_core}{est('capacity.neurons_per_core')}",
        f"  synaptic memory {c.synaptic_memory_bits_per_core} bits/core{est('capacity.synaptic_memory_bits_per_core')}",
        f"  fan-in/out      {_fmt_int(c.fan_in_per_neuron)} / {_fmt_int(c.fan_out_per_neuron)} per neuron",
        f"  max delay       {c.max_delay_steps} steps",
    ]
    if c.input_channels or c.output_neurons:
        lines.append(
            f"  I/O             {_fmt_int(c.input_channels)} input channels, "
            f"{_fmt_int(c.output_neurons)} output neurons"
        )
    lines += [
        "learning",
        f"  engine          {lrn.kind}" + (f"; rules: {', '.join(lrn.rules)}" if lrn.rules else ""),
    ]
    if lrn.kind == "sum_of_products":
        lines.append(
            f"  scale           m in [{lrn.mantissa_min},{lrn.mantissa_max}], "
            f"e in [{lrn.exponent_min},{lrn.exponent_max}]; accumulator {lrn.accumulator_bits} bits"
        )
    if p.random_sources:  # the chip's own pseudo-random generators
        lines.append("random sources")
        for name, r in p.random_sources.items():
            seeds = ", ".join(f"{v:#x}" for v in r.seeds)
            lines.append(
                f"  {name:<17} {r.bits}-bit LFSR, taps {list(r.taps)}, {r.outputs} bits per draw "
                f"({r.outputs // r.word_bits} x {r.word_bits}-bit), seeds {seeds}"
            )
    en = p.energy
    vals = [
        ("synaptic op", en.pj_per_synaptic_op),
        ("neuron update", en.pj_per_neuron_update),
        ("synaptic update", en.pj_per_synaptic_update),
        ("spike routed", en.pj_per_spike_routed),
    ]
    lines.append("energy (pJ)" + est("energy"))
    lines += [f"  {k:<15} {'unpublished' if v is None else f'{v:g}'}" for k, v in vals]
    lines.append("sources")
    lines += [f"  [{s.id}] {' '.join(s.ref.split())}" for s in p.sources]
    if p.estimates:
        lines.append(f"estimates: {', '.join(p.estimates)}")
    if p.notes:
        lines += ["notes", "  " + " ".join(p.notes.split())]
    return "\n".join(lines)
