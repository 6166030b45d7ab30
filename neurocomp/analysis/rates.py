"""Firing rates of two runs of the same network compared population by population: the
"how far does fixed point drift from float dynamics" picture (an emulated Program against
the float network in the reference or in Brian2), or any two recordings in the emulator's
format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PopulationRates:
    """One population's rates in two runs. Rates in Hz (spikes per second of model time),
    averaged over neurons, steps and trials; ``rel_error`` = ``|a - b| / b`` (0 when both
    are 0, ``inf`` when only ``b`` is); per neuron: the RMS and the largest ``|a - b|`` of
    the neurons' own rates (Hz), and the correlation of the two rate vectors (NaN when
    either is constant)."""

    population: str
    size: int
    rate_a_hz: float
    rate_b_hz: float
    abs_error_hz: float
    rel_error: float
    neuron_rms_error_hz: float
    neuron_max_error_hz: float
    neuron_correlation: float


@dataclass(frozen=True)
class RateReport:
    """Per-population rate errors of run ``a`` against run ``b`` (the reference side)."""

    label_a: str
    label_b: str
    dt_ms: float
    steps: int
    trials: int
    rows: tuple[PopulationRates, ...]

    @property
    def max_rel_error(self) -> float:
        """The largest relative error of a population's mean rate."""
        return max((r.rel_error for r in self.rows), default=0.0)

    def row(self, population: str) -> PopulationRates:
        for r in self.rows:
            if r.population == population:
                return r
        raise KeyError(
            f"no population {population!r} in the report (have: {', '.join(r.population for r in self.rows)})"
        )

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "rows"}, "rows": [asdict(r) for r in self.rows]}

    def format(self) -> str:
        """A text table, one line per population."""
        a, b = self.label_a, self.label_b
        head = (
            f"firing rates, {a} vs {b}: {self.steps} steps of {self.dt_ms:g} ms x {self.trials} trial(s)\n"
            f"{'population':<14} {'n':>6} {a + ' Hz':>13} {b + ' Hz':>13} {'error Hz':>9} {'rel':>7} "
            f"{'neuron rms':>10} {'max':>8} {'corr':>6}"
        )
        lines = [head]
        for r in self.rows:
            rel = "inf" if math.isinf(r.rel_error) else f"{r.rel_error:.1%}"
            corr = "-" if math.isnan(r.neuron_correlation) else f"{r.neuron_correlation:.3f}"
            lines.append(
                f"{r.population:<14} {r.size:>6} {r.rate_a_hz:>13.2f} {r.rate_b_hz:>13.2f} {r.abs_error_hz:>9.2f} "
                f"{rel:>7} {r.neuron_rms_error_hz:>10.2f} {r.neuron_max_error_hz:>8.2f} {corr:>6}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def neuron_rates_hz(spikes: np.ndarray, dt_ms: float) -> np.ndarray:
    """Each neuron's rate (Hz) from spikes ``[steps, batch, n]``, averaged over trials."""
    s = np.asarray(spikes, dtype=np.float64)
    return s.sum(axis=(0, 1)) / (s.shape[0] * s.shape[1] * dt_ms / 1000.0)


def rate_report(
    rec_a: Mapping[str, np.ndarray],
    rec_b: Mapping[str, np.ndarray],
    dt_ms: float,
    labels: tuple[str, str] = ("emulator", "brian2"),
    populations: Sequence[str] | None = None,
) -> RateReport:
    """Compare the spikes of two recordings (``"<population>/spikes"`` ``[steps, batch, n]``,
    as the emulator, the reference and the backends return them) population by population.
    ``populations``: which to compare (default: every population recorded in both that
    spiked in either run; inputs are included if recorded). ``dt_ms``: the step of both runs.
    Raises ``ValueError`` naming a population whose recordings differ in shape."""
    names = populations
    if names is None:
        names = [
            k[: -len("/spikes")]
            for k in rec_a
            if k.endswith("/spikes") and k in rec_b and (np.any(rec_a[k]) or np.any(rec_b[k]))
        ]
    rows = []
    steps = trials = 0
    for name in names:
        key = f"{name}/spikes"
        if key not in rec_a or key not in rec_b:
            raise ValueError(f"population {name!r}: spikes not recorded in both runs")
        sa, sb = np.asarray(rec_a[key]), np.asarray(rec_b[key])
        if sa.shape != sb.shape or sa.ndim != 3:
            raise ValueError(f"population {name!r}: spike recordings of shape {sa.shape} and {sb.shape} differ")
        steps, trials = sa.shape[0], sa.shape[1]
        ra, rb = neuron_rates_hz(sa, dt_ms), neuron_rates_hz(sb, dt_ms)
        ma, mb = float(ra.mean()), float(rb.mean())
        diff = ra - rb
        rel = 0.0 if ma == mb else (abs(ma - mb) / mb if mb > 0 else math.inf)
        corr = float(np.corrcoef(ra, rb)[0, 1]) if ra.std() > 0 and rb.std() > 0 else math.nan
        rows.append(
            PopulationRates(
                name,
                sa.shape[2],
                ma,
                mb,
                abs(ma - mb),
                rel,
                float(np.sqrt(np.mean(diff**2))),
                float(np.abs(diff).max(initial=0.0)),
                corr,
            )
        )
    return RateReport(labels[0], labels[1], float(dt_ms), steps, trials, tuple(rows))
