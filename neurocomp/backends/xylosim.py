"""Run a xylo Program in SynSense's XyloSim (``xylosim.v2.XyloLayer``, PyPI ``xylosim``,
the simulator Rockpool's ``XyloSim`` wraps), for validation: the emulator must equal it bit
for bit (tests/test_xylo.py).

The Program is loaded as the chip holds it: int8 weight mantissas with one left shift per
matrix (input, recurrent, readout), int16 thresholds and biases, 4-bit ``dash`` decays.
What XyloSim cannot hold is refused by name (:class:`~.errors.BackendError`): everything
the emulator's layer refuses (:meth:`neurocomp.emulator.xylo.XyloLayer.of`), projections of
one matrix whose exponents no single shift serves, and registers outside their widths.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..compiler.program import Program
from ..errors import NeurocompError, Problem
from .errors import BackendError, BackendUnavailable, unrecordable

RECORDABLE = ("spikes", "v", "u", "u2")


def _xylosim():
    try:
        from xylosim import v2
    except ImportError as exc:
        raise BackendUnavailable(
            [Problem("xylosim", f"not installed ({exc}); pip install 'neurocomp[xylo]' (or xylosim==0.1.3)")]
        ) from None
    return v2


def xylosim_available() -> bool:
    try:
        _xylosim()
    except BackendUnavailable:
        return False
    return True


class XylosimBackend:
    """``XylosimBackend(program).run(steps, inputs, batch, record)`` with the emulator's
    arguments and recording format (``{"<population>/<var>": [steps, batch, neurons]}``;
    ``u`` and ``u2`` are the synaptic currents, an input population's ``spikes`` the events
    per step as given)."""

    def __init__(self, program: Program):
        from ..emulator.xylo import XyloLayer

        self.program = program
        prof = program.profile
        if prof.validation_backend != "xylosim":
            raise BackendError(
                [Problem("program", f"compiled for {prof.name}; XyloSim models Xylo (profiles validated by xylosim)")],
                header="this program cannot run in XyloSim",
            )
        try:
            self.layer = XyloLayer.of(program)
        except NeurocompError as exc:
            raise BackendError(exc.problems, header="this program cannot run in XyloSim") from None
        problems = self._register_problems()
        self.weights = {}
        for part in ("in", "rec", "out"):
            m, shift, bad = self._matrix(part)
            problems += bad
            self.weights[part] = (m, shift)
        if problems:
            raise BackendError(problems, header="this program cannot run in XyloSim")
        self.v2 = _xylosim()

    def _register_problems(self) -> list[Problem]:
        """Thresholds and biases are int16, dashes 4-bit in XyloSim."""
        lo, hi = self.program.profile.formats.voltage.int_range()
        top = 2**self.program.profile.formats.decay.bits - 1
        L, kx = self.layer, _kx()
        checks = [
            ("threshold", L.hid[kx.H_TH], lo, hi), ("bias", L.hid[kx.H_BIAS], lo, hi),
            ("bias", L.out[kx.O_BIAS], lo, hi),
            ("dash", np.concatenate([L.hid[:3].ravel(), L.out[:2].ravel()]), 0, top),
        ]  # fmt: skip
        return [
            Problem("program", f"{name} {int(v[(v < a) | (v > b)][0])} outside XyloSim's range [{a}, {b}]")
            for name, v, a, b in checks
            if ((v < a) | (v > b)).any()
        ]

    def _matrix(self, part: str) -> tuple[np.ndarray, int, list[Problem]]:
        """The int8 mantissas of one matrix (``[pre, post, port]``; readout ``[pre, post]``)
        and its shift: the smallest exponent of its projections, the others' mantissas
        shifted up to it (refused where that leaves int8)."""
        L, prog = self.layer, self.program
        kind = {n: "in" for n in L.inputs} | {n: "hid" for n in L.hidden} | {n: "out" for n in L.readouts}
        pre_kind, post_kind = {"in": ("in", "hid"), "rec": ("hid", "hid"), "out": ("hid", "out")}[part]
        projs = [pr for pr in prog.projections if (kind[pr.pre], kind[pr.post]) == (pre_kind, post_kind)]
        full = {"in": L.w_in, "rec": L.w_rec, "out": L.w_out}[part]
        exps = [int(np.min(np.asarray(pr.weight_exp))) for pr in projs]
        shift = min(exps, default=0)
        m = full >> shift
        problems = []
        i8 = np.iinfo(np.int8)  # XyloSim's own weight storage, whatever the profile's mantissa width
        if (m << shift != full).any() or m.min(initial=0) < i8.min or m.max(initial=0) > i8.max:
            names = ", ".join(pr.name for pr in projs)
            problems.append(
                Problem(
                    f"projections {names}",
                    f"exponents {sorted(set(exps))}: XyloSim holds int8 weights with one shift per {part} matrix, "
                    "and no single shift holds these weights",
                )
            )
        if shift > prog.profile.formats.weight.exponent_max:
            problems.append(Problem(f"{part} weights", f"shift {shift} beyond the profile's exponent_max"))
        return m, shift, problems

    def _layer(self, keep: list):
        """A fresh ``XyloLayer``. Its constructor keeps pointers to the synapse objects
        without owning them, so they are kept alive in ``keep`` while it runs."""
        v2, L, kx = self.v2, self.layer, _kx()
        n_in, n, n_out = L.sizes
        syn = v2.XyloSynapse
        (win, s_in), (wrec, s_rec), (wout, s_out) = self.weights["in"], self.weights["rec"], self.weights["out"]

        def rows(w):  # [pre, post, port] -> per pre neuron its synapses
            nz = [zip(*np.nonzero(w[i]), strict=True) for i in range(w.shape[0])]
            return [[syn(int(j), int(k), int(w[i, j, k])) for j, k in pairs] for i, pairs in enumerate(nz)]

        syn_in, syn_rec = rows(win), rows(wrec)
        syn_out = [[syn(int(o), 0, int(wout[i, o])) for o in np.nonzero(wout[i])[0]] for i in range(n)]
        kw = dict(
            synapses_in=syn_in, synapses_rec=syn_rec, synapses_out=syn_out, aliases=[[] for _ in range(n)],
            threshold=L.hid[kx.H_TH].tolist(), threshold_out=L.out[kx.O_TH].tolist(),
            has_bias=bool(L.hid[kx.H_BIAS].any() or L.out[kx.O_BIAS].any()),
            bias=L.hid[kx.H_BIAS].tolist(), bias_out=L.out[kx.O_BIAS].tolist(),
            weight_shift_inp=s_in, weight_shift_rec=s_rec, weight_shift_out=s_out,
            dash_mem=L.hid[kx.H_DMEM].tolist(), dash_mem_out=L.out[kx.O_DMEM].tolist(),
            dash_syns=L.hid[[kx.H_DASH1, kx.H_DASH2]].T.tolist(), dash_syns_out=[[int(d)] for d in L.out[kx.O_DASH]],
            name="neurocomp",
        )  # fmt: skip
        keep.append(kw)
        return v2.XyloLayer(**kw)

    def run(
        self,
        steps: int,
        inputs: Mapping[str, np.ndarray] | None = None,
        batch: int = 1,
        record: tuple[str, ...] | list[str] = ("spikes",),
    ) -> dict[str, np.ndarray]:
        """Run ``steps`` steps of each of ``batch`` trials (a fresh layer per trial). ``inputs``:
        spike counts per input population, ``[steps, batch, n]`` or ``[steps, n]``; Poisson
        inputs draw the emulator's frozen spikes."""
        from ..emulator.inputs import PoissonSource, spike_counts

        bad = unrecordable(record, RECORDABLE, "XyloSim")
        if bad:
            raise BackendError(bad)
        prog, L = self.program, self.layer
        n_in, n, n_out = L.sizes
        problems: list[Problem] = []
        events = np.zeros((steps, batch, n_in), np.int64)
        top = prog.profile.time.max_spikes_per_step
        for name, off in L.inputs.items():
            q = prog.population(name)
            if name in (inputs or {}):
                a = spike_counts(inputs[name], steps, batch, q.size, top, f"input {name!r}", problems)
            elif q.params.get("rate_hz") is not None:
                a = PoissonSource.of(q.params, prog.dt_ms, q.size, batch, f"input {name!r}").raster(steps)
            else:
                problems.append(Problem(f"input {name!r}", "no spikes given and no rate_hz"))
                continue
            if a is not None:
                events[:, :, off : off + q.size] = a[:steps]
        if problems:
            raise BackendError(problems)
        rec = {k: np.zeros((steps, batch, *s), np.int64) for k, s in (("s", (n,)), ("u", (n, 2)), ("v", (n,)))}
        rec |= {k: np.zeros((steps, batch, n_out), np.int64) for k in ("so", "uo", "vo")}
        for b in range(batch):
            keep: list = []
            layer = self._layer(keep)
            out = layer.evolve(events[:, b].tolist())
            if steps:
                rec["s"][:, b] = np.array(layer.rec_recurrent_spikes).reshape(steps, n)
                rec["u"][:, b, :, 0] = np.array(layer.rec_i_syn).reshape(n, steps).T
                rec["u"][:, b, :, 1] = np.array(layer.rec_i_syn2).reshape(n, steps).T
                rec["v"][:, b] = np.array(layer.rec_v_mem).reshape(n, steps).T
                rec["so"][:, b] = np.array(out).reshape(steps, n_out)
                rec["uo"][:, b] = np.array(layer.rec_i_syn_out).reshape(n_out, steps).T
                rec["vo"][:, b] = np.array(layer.rec_v_mem_out).reshape(n_out, steps).T
            del layer
        cap = prog.profile.time.max_input_events_per_step or top
        return self._recordings(record, np.minimum(events, cap), rec)

    def _recordings(self, record, events, rec) -> dict[str, np.ndarray]:
        L, out = self.layer, {}
        for name, q in ((q.name, q) for q in self.program.populations):
            if name in L.inputs:
                o = L.inputs[name]
                arrays = {"spikes": events[:, :, o : o + q.size]}
            elif name in L.hidden:
                sl = slice(L.hidden[name], L.hidden[name] + q.size)
                u = rec["u"][:, :, sl]
                arrays = {"spikes": rec["s"][:, :, sl], "u": u[..., 0], "u2": u[..., 1], "v": rec["v"][:, :, sl]}
            else:
                sl = slice(L.readouts[name], L.readouts[name] + q.size)
                arrays = {"spikes": rec["so"][:, :, sl], "u": rec["uo"][:, :, sl], "v": rec["vo"][:, :, sl]}
            for var in record:
                if var in arrays:
                    out[f"{name}/{var}"] = np.ascontiguousarray(arrays[var], dtype=np.int32)
        return out


def _kx():
    from ..kernels import xylo

    return xylo
