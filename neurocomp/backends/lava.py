"""Run a loihi2 Program in Lava (lava-nc 0.10.0) under its fixed-point process models.

Lava's ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc`` are the public reference of
Loihi 2's integer semantics, so this backend is how the emulator is validated: the same
Program must give the same integers, bit for bit. Populations become ``LIF``, projections
``Dense`` / ``Sparse`` (or ``DelayDense`` with delays), inputs ``RingBuffer``s, and
``Monitor``s record ``u``, ``v`` and spikes. Lava has no batch: trials run one after
another. Lava has no fixed-point ALIF, leaky readout or refractory LIF; programs with them
are refused with the construct named.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from ..compiler.program import Program
from ..emulator.inputs import input_rasters
from ..errors import Problem
from .errors import BackendError, BackendUnavailable

_INSTALL = (
    "Lava is not installed. Install neurocomp's Lava extra (CPython 3.10 only): "
    "pip install 'neurocomp[lava]', or use the project environment (make test)"
)


def _lava():
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import DelayDense, Dense
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIF
        from lava.proc.monitor.process import Monitor
        from lava.proc.sparse.process import Sparse
        from lava.utils.weightutils import SignMode
    except ImportError as exc:  # pragma: no cover - exercised on Python 3.11 without Lava
        raise BackendUnavailable([Problem("lava backend", f"{_INSTALL} ({exc})")]) from None
    return {
        "RunSteps": RunSteps,
        "Loihi2SimCfg": Loihi2SimCfg,
        "Dense": Dense,
        "DelayDense": DelayDense,
        "Sparse": Sparse,
        "RingBuffer": RingBuffer,
        "LIF": LIF,
        "Monitor": Monitor,
        "SignMode": SignMode,
    }


def lava_available() -> bool:
    try:
        _lava()
    except BackendUnavailable:
        return False
    return True


class LavaBackend:
    """``LavaBackend(program).run(steps, inputs, record)``, with the emulator's arguments and
    recording format (``{"<population>/<var>": [steps, batch, neurons]}``)."""

    def __init__(self, program: Program):
        self.program = program
        problems = []
        if program.profile.validation_backend != "lava":
            problems.append(
                Problem(
                    "program",
                    f"compiled for {program.profile.name}, whose semantics Lava does not "
                    f"model (only profiles validated by Lava, e.g. loihi2)",
                )
            )
        for p in program.populations:
            if p.model not in ("LIF", "SpikeInput"):
                problems.append(Problem(f"population {p.name!r}", f"{p.model} has no fixed-point model in Lava 0.10.0"))
            elif p.model == "LIF" and p.params.get("refractory", 0):
                problems.append(Problem(f"population {p.name!r}", "Lava 0.10.0 has no fixed-point refractory LIF"))
            elif p.model == "LIF" and p.params.get("reset") != "zero":
                problems.append(Problem(f"population {p.name!r}", "Lava's LIF only resets v to zero"))
        for pr in program.projections:
            if not isinstance(pr.weight_exp, (int, np.integer)):
                problems.append(
                    Problem(f"projection {pr.name!r}", "Lava's Dense has one weight exponent per projection")
                )
        if problems:
            raise BackendError(problems, header="this program cannot run in Lava")
        self.lava = _lava()

    def run(
        self,
        steps: int,
        inputs: Mapping[str, np.ndarray] | None = None,
        batch: int = 1,
        record: tuple[str, ...] | list[str] = ("spikes",),
        final: tuple[str, ...] = (),
    ) -> dict[str, np.ndarray]:
        """Run ``steps`` steps per trial. ``record``: variables monitored on every step
        (Lava's Monitor readout moves one value at a time through its channels, about
        70 us per value, so record only what is needed). ``final``: variables (``v``, ``u``)
        read once after the run, returned as ``<population>/final_<var>`` shaped
        ``[batch, neurons]``. Afterwards ``run_seconds`` holds the time of Lava's run phase
        alone (without building, start-up or readout)."""
        for var in record:
            if var not in ("spikes", "v", "u"):
                raise BackendError([Problem("record", f"Lava backend records spikes, v and u, not {var!r}")])
        rasters = input_rasters(self.program, steps, batch, inputs or {})
        out: dict[str, np.ndarray] = {}
        self.run_seconds = 0.0
        for b in range(batch):
            trial = self._run_trial(steps, {k: v[:, b, :] for k, v in rasters.items()}, record, final)
            for key, arr in trial.items():
                if key not in out:
                    shape = (batch, arr.shape[0]) if arr.ndim == 1 else (steps, batch, arr.shape[1])
                    out[key] = np.zeros(shape, dtype=arr.dtype)
                if arr.ndim == 1:
                    out[key][b] = arr
                else:
                    out[key][:, b, :] = arr
        return out

    def _connected_parts(self) -> list[list[str]]:
        """Neuron populations grouped with everything they connect to (inputs join a part
        through their projections; an input without projections needs no run)."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(p.name for p in self.program.populations if p.model != "SpikeInput")
        g.add_edges_from((pr.pre, pr.post) for pr in self.program.projections)
        order = [p.name for p in self.program.populations]
        return sorted((sorted(c, key=order.index) for c in nx.connected_components(g)), key=lambda c: order.index(c[0]))

    def _run_trial(self, steps: int, rasters: Mapping[str, np.ndarray], record, final=()) -> dict[str, np.ndarray]:
        L = self.lava
        procs = {}
        for p in self.program.populations:
            if p.model == "SpikeInput":
                # RingBuffer sends column (t-1) % length at step t: our row t-1
                procs[p.name] = L["RingBuffer"](data=np.ascontiguousarray(rasters[p.name].T.astype(np.int32)))
            else:
                prm = p.params
                procs[p.name] = L["LIF"](
                    shape=(p.size,),
                    du=int(prm["current_decay"]),
                    dv=int(prm["voltage_decay"]),
                    vth=int(prm["threshold"]),
                    bias_mant=np.broadcast_to(np.asarray(prm["bias_mant"], dtype=np.int32), (p.size,)).copy(),
                    bias_exp=np.broadcast_to(np.asarray(prm["bias_exp"], dtype=np.int32), (p.size,)).copy(),
                    u=0,
                    v=0,
                    name=p.name,
                )
        sign = {
            "mixed": L["SignMode"].MIXED,
            "excitatory": L["SignMode"].EXCITATORY,
            "inhibitory": L["SignMode"].INHIBITORY,
        }
        for pr in self.program.projections:
            kwargs = dict(
                weight_exp=int(pr.weight_exp), num_weight_bits=int(pr.num_weight_bits), sign_mode=sign[pr.sign_mode]
            )
            w = pr.dense_mantissas().astype(np.int32)
            if pr.max_delay > 0:
                delays = np.asarray(pr.delay_steps)
                if delays.ndim and pr.is_sparse:
                    dense_d = np.zeros(pr.shape, dtype=np.int64)
                    dense_d[pr.rows, pr.cols] = delays
                    delays = dense_d
                conn = L["DelayDense"](weights=w, delays=delays if delays.ndim else int(delays), **kwargs)
            elif pr.is_sparse:
                from scipy.sparse import csr_matrix  # a Lava dependency

                conn = L["Sparse"](
                    weights=csr_matrix((pr.weights.astype(np.int32), (pr.rows, pr.cols)), shape=pr.shape), **kwargs
                )
            else:
                conn = L["Dense"](weights=w, **kwargs)
            procs[pr.pre].s_out.connect(conn.s_in)
            conn.a_out.connect(procs[pr.post].a_in)
        monitors = []
        for p in self.program.populations:
            if p.model == "SpikeInput":
                continue
            for var in record:
                mon = L["Monitor"]()
                target = {"spikes": procs[p.name].s_out, "v": procs[p.name].v, "u": procs[p.name].u}[var]
                mon.probe(target=target, num_steps=steps)
                monitors.append((p.name, var, mon, target))
        out = {}
        # Lava compiles and runs only the processes connected to the one it is asked to run,
        # so each connected part of the network is run on its own.
        for part in self._connected_parts():
            anchor = procs[part[0]]
            try:
                t0 = time.perf_counter()
                anchor.run(condition=L["RunSteps"](num_steps=steps), run_cfg=L["Loihi2SimCfg"](select_tag="fixed_pt"))
                self.run_seconds += time.perf_counter() - t0
                for name in part:
                    if self.program.population(name).model != "SpikeInput":
                        for var in final:
                            value = {"v": procs[name].v, "u": procs[name].u}[var].get()
                            out[f"{name}/final_{var}"] = np.asarray(value).astype(np.int64).reshape(-1)
                for name, var, mon, target in monitors:
                    if name not in part:
                        continue
                    series = mon.get_data()[procs[name].name][target.name]
                    dtype = np.uint8 if var == "spikes" else np.int32
                    out[f"{name}/{var}"] = np.asarray(series).reshape(steps, -1).astype(dtype)
            finally:
                anchor.stop()
        for p in self.program.populations:
            if p.model == "SpikeInput" and "spikes" in record:
                out[f"{p.name}/spikes"] = rasters[p.name].astype(np.uint8)
        return out
