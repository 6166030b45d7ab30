"""ReckOn's RTL as a validation backend: a ReckOn Program run on the chip's own Verilog
(github ChFrenkel/ReckOn, Frenkel & Indiveri 2022, Solderpad license) under Icarus Verilog.

The project does not ship the Verilog: :func:`rtl_dir` finds an unmodified copy from the
``rtl`` argument (``--rtl`` on the command line) or the environment variable
``NEUROCOMP_RECKON_RTL``, a folder holding ``src/reckon.v``. The testbench
(``reckon_tb.v``, beside this module) drives the chip's pins as the published ``tbench.sv``
does: every register over SPI (the Program's chip image,
:class:`neurocomp.emulator.reckon.ReckonChip`), the weight and neuron SRAMs over SPI
multi-writes, then per sample ``SAMPLE``, AER input events, ``TIME_TICK``, ``TARGET_VALID``
and the target bytes the chip requests, and the output handshake that ends a sample. The
tick mapping is :class:`neurocomp.emulator.reckon.ReckonCore`'s. After every step it records
the membranes, spikes and readouts (and, on request, the traces and the three weight
memories) from the chip's registers and SRAMs, which this module returns in the emulator's
``[steps, batch, n]`` format (weights ``[steps, batch, post, pre]``).

Each trial of a batch is its own chip (one simulation each, seeded alike); the samples of
one call run one after the other on the same chip, which keeps its weights and LFSRs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import Problem
from .errors import BackendError, BackendUnavailable

RTL_ENV = "NEUROCOMP_RECKON_RTL"
SOURCES = ("reckon.v", "srnn.v", "spi_slave.v", "fifo.v", "lfsr/lfsr_winp_wrec.v", "lfsr/lfsr_wout.v",
           "lfsr/lfsr_neur_stochround.v", "lfsr/lfsr_oneur_stochround.v", "lfsr/lfsr_noise_neur.v")  # fmt: skip
TESTBENCH = Path(__file__).with_name("reckon_tb.v")
INSTALL = "install Icarus Verilog (Debian/Ubuntu: apt-get install iverilog)"
# testbench commands (reckon_tb.v)
SPI, SPI_WORD, EVENT, VALID, TARGET_BYTE, SAMPLE, TICK, DIMS, END, RESET, SPI_CLOCKED = range(1, 12)
# SPI address headers {read, 3-bit target, 12-bit count, 16-bit address} (src/spi_slave.v)
MEM = {"config": 0, "neurons": 1, "winp": 3, "wrec": 4, "wout": 5}


def rtl_dir(rtl: str | os.PathLike | None = None) -> Path:
    """The folder of ReckOn's RTL: ``rtl``, else ``$NEUROCOMP_RECKON_RTL``; it must hold ``src/reckon.v``."""
    where = rtl if rtl is not None else os.environ.get(RTL_ENV)
    if not where:
        raise BackendUnavailable(
            [Problem("backend 'reckon-rtl'", f"no RTL: pass --rtl DIR or set {RTL_ENV} to a copy of "
                     "github.com/ChFrenkel/ReckOn (a folder holding src/reckon.v)")]  # fmt: skip
        )
    path = Path(where).expanduser().resolve()
    missing = [s for s in SOURCES if not (path / "src" / s).is_file()]
    if missing:
        raise BackendUnavailable(
            [Problem("backend 'reckon-rtl'", f"{path} lacks src/{missing[0]} (expected ReckOn's RTL folder)")]
        )
    return path


def icarus() -> tuple[str, str] | None:
    """The ``iverilog`` and ``vvp`` executables, or None."""
    iv, vvp = shutil.which("iverilog"), shutil.which("vvp")
    return (iv, vvp) if iv and vvp else None


def build(rtl: Path) -> Path:
    """The compiled simulation of ``rtl`` with the testbench (cached by the sources' hash)."""
    tools = icarus()
    if tools is None:
        raise BackendUnavailable([Problem("backend 'reckon-rtl'", f"Icarus Verilog not found: {INSTALL}")])
    files = [rtl / "src" / s for s in SOURCES] + [TESTBENCH]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "neurocomp" / "reckon-rtl"
    out = cache / f"reckon-{digest}.vvp"
    if not out.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        cmd = [tools[0], "-g2012", "-o", str(tmp), "-s", "reckon_tb", *map(str, files)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise BackendError([Problem("backend 'reckon-rtl'", f"iverilog failed: {done.stderr.strip()[:2000]}")])
        os.replace(tmp, out)
    return out


class ReckonRTL:
    """Run a ReckOn Program on the RTL. ``seed``: the LFSR seeds, as the emulator's ``seed``
    (0: the published testbench's ``SPI_SEED_*``)."""

    def __init__(self, program, rtl: str | os.PathLike | None = None, seed: int = 0):
        from ..emulator.emulator import Emulator, EmulatorError
        from ..emulator.reckon import ReckonShapeError

        self.program = program
        self.rtl = rtl_dir(rtl)
        try:
            emu = Emulator(program, seed=seed)  # the chip image and the seeds, as the emulator has them
        except EmulatorError as exc:
            raise BackendError(exc.problems) from None
        if emu.reckon_core is None:
            try:
                from ..emulator.reckon import ReckonChip

                ReckonChip(program)
            except ReckonShapeError as exc:
                raise BackendError([Problem("backend 'reckon-rtl'", str(exc))]) from None
            raise BackendError([Problem("backend 'reckon-rtl'", f"profile {program.profile.name!r} is not reckon's")])
        self.chip = emu.reckon_core.chip
        self.seeds = emu.reckon_core.rand.seeds

    # -- configuration
    def configure(self, learn: bool) -> list[tuple[int, int, int]]:
        """The SPI commands that configure the chip, as src/tbench.sv: registers, seeds, then the
        weight SRAMs and the neuron SRAM in multi-writes."""
        from ..emulator.reckon import ALPHA_CONF_ADDRESS, SEEDS, SPI_ADDRESSES

        chip = self.chip
        cmds = [(SPI, _header("config", 1, 0), 1)]  # EN_CONF
        regs = dict(chip.spi, DO_EPROP=chip.learn_bits if learn else 0)
        for name, role in SEEDS.items():
            s = [int(v) for v in self.seeds[role]]
            regs[name] = s[0] | (s[1] << 15) if len(s) == 2 else s[0]
        for name, value in regs.items():
            mask = 0xFFFF if name.startswith(("THR_H", "H_")) else 0xFFFFFFFF
            cmds.append((SPI, _header("config", 1, SPI_ADDRESSES[name]), int(value) & mask))
        msb8 = chip.alpha >= 1 << 15  # the leak's top nibble: 8 (bit set) or 7
        conf = ((1 << chip.neuron_words()) - 1) if msb8 else 0
        for i in range(4):
            cmds.append((SPI, _header("config", 1, ALPHA_CONF_ADDRESS + i), (conf >> (32 * i)) & 0xFFFFFFFF))
        cmds += self._weights()
        word = ((chip.alpha & 0xFFF) << 116) | ((chip.thr & 0xFFFF) << 100)  # two neurons' state: zero
        n = chip.neuron_words()
        cmds.append((SPI_WORD, 0, _header("neurons", 4 * n, 0)))
        for _ in range(n):
            cmds += [(SPI_WORD, 0, (word >> (32 * c)) & 0xFFFFFFFF) for c in range(4)]
        cmds.append((SPI, _header("config", 1, 0), 0))
        return _clocked(cmds)

    def _weights(self, weights: Mapping[str, np.ndarray] | None = None) -> list[tuple[int, int, int]]:
        """Multi-writes of the three weight SRAMs: per pre neuron its whole posts' words."""
        from ..emulator.synapses import chip_mantissas

        chip = self.chip
        w = weights or {r: chip_mantissas(pr, self.program.profile)[None] for r, pr in chip.proj.items()}
        winp, wrec, wout = chip.sram(w, 1)
        cmds = []
        for mem, sram in (("winp", winp[0]), ("wrec", wrec[0]), ("wout", wout[0])):
            for i, row in enumerate(sram):
                b = (row.astype(np.int64) & 0xFF).reshape(-1, 4)
                chunks = (b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16 | b[:, 3] << 24).tolist()
                addr = i << 6 if mem != "wout" else i << 2  # {pre, block, chunk}; wout: {pre, chunk}
                cmds.append((SPI_WORD, 0, _header(mem, len(chunks), addr)))
                cmds += [(SPI_WORD, 0, c) for c in chunks]
        return cmds

    # -- samples
    def sample(self, x: np.ndarray, target: np.ndarray | None, learn: bool) -> list[tuple[int, int, int]]:
        """The commands of one sample: ``x`` ``[steps, n_in]`` input spikes, ``target``
        ``[steps, n_out]`` (model units; NaN rows: no target) or None."""
        steps = x.shape[0]
        tar, valid = self.chip.targets(None if target is None else target[:, None], steps, 1)
        cmds = [(SAMPLE, 1, 0)]
        for t in range(steps + 1):  # tick t + 1 runs step t and takes the events of step t + 1
            if t < steps:
                cmds += [(EVENT, int(i), 0) for i in np.flatnonzero(x[t])]
            on = t > 0 and learn and bool(valid[t - 1, 0])
            cmds.append((VALID, int(on), 0))
            if on:
                cmds += [(TARGET_BYTE, b, 0) for b in self._target_bytes(tar[t - 1, 0])]
            cmds.append((TICK, 0, 0))
        cmds += [(VALID, 0, 0), (SAMPLE, 0, 0), (TICK, 0, 0)]  # the closing tick
        return cmds

    def _target_bytes(self, tar: np.ndarray) -> list[int]:
        """The AER target bytes: regression, each output's 16 bits low byte first; classification, the label."""
        if not self.chip.spi["REGRESSION"]:
            return [int(tar[0]) & 0xF]
        out = []
        for k in range(max(self.chip.n_out, 1)):
            v = int(tar[k]) & 0xFFFF
            out += [v & 0xFF, v >> 8]
        return out

    # -- running
    def run(self, samples: Sequence[Mapping[str, np.ndarray]], learn=False, record: Sequence[str] = ("spikes",),
            batch: int = 1) -> list[dict[str, np.ndarray]]:  # fmt: skip
        """Run ``samples`` one after the other on one chip per trial (``learn``: one flag, or one
        per sample): each a mapping of the input
        population to spikes ``[steps, batch, n_in]`` (or ``[steps, n_in]``) and, with learning,
        ``<readout>/target`` (model units, NaN rows: no target). Returns one recording per
        sample, ``{"<population>/spikes|v": [steps, batch, n], "<projection>/w|x1": ...}``."""
        return run_many([(self, samples, learn, record, batch)])[0]

    def commands(self, samples, learn, record, b: int) -> tuple[list[tuple[int, int, int]], list[int]]:
        """Trial ``b``'s commands from a reset (configuration, then the samples) and the samples'
        lengths. ``learn``: one flag, or one per sample (a change rewrites DO_EPROP over SPI
        between samples, as tbench.sv does between training and testing)."""
        chip = self.chip
        inp, out = chip.inp.name, chip.out.name if chip.out is not None else None
        flags = chip.n_out | ("w" in record) << 16 | ("x1" in record) << 17
        modes = [bool(x) for x in learn] if isinstance(learn, (list, tuple)) else [bool(learn)] * len(samples)
        cmds = [(RESET, 0, 0), (DIMS, chip.n_in | chip.n_rec << 16, flags)] + self.configure(modes[0])
        lengths = []
        for i, s in enumerate(samples):
            if i and modes[i] != modes[i - 1]:
                do = chip.learn_bits if modes[i] else 0
                cmds += [(SPI, _header("config", 1, 0), 1), (SPI, _header("config", 1, 9), do),
                         (SPI, _header("config", 1, 0), 0)]  # fmt: skip
            x = _trial(s[inp], b)
            tgt = s.get(f"{out}/target") if out is not None else None
            cmds += self.sample(x, None if tgt is None else _trial(tgt, b), modes[i])
            lengths.append(x.shape[0])
        return cmds, lengths

    def _parse(self, text: str, lengths: list[int]) -> list[dict[str, np.ndarray]]:
        """The testbench's per-step records, cut into samples: ``[steps, n]`` arrays."""
        chip = self.chip
        steps: list[dict[str, list[int]]] = []
        for line in text.splitlines():
            key, *vals = line.split()
            if key == "S":
                steps.append({})
            elif key != "END":
                steps[-1][key] = [int(v) for v in vals]
        if len(steps) != sum(lengths):
            raise BackendError([Problem("backend 'reckon-rtl'", f"{len(steps)} steps recorded, {sum(lengths)} run")])
        readout = chip.out.name if chip.out else ""
        names = {"U": (chip.hid.name, "v"), "Z": (chip.hid.name, "spikes"), "O": (readout, "v")}
        shapes = {"WI": ("input", (chip.n_in, chip.n_rec)), "WR": ("recurrent", (chip.n_rec, chip.n_rec)),
                  "WO": ("output", (chip.n_rec, chip.n_out)), "TI": ("input", None), "TR": ("recurrent", None),
                  "TO": ("output", None)}  # fmt: skip
        out, start = [], 0
        for n in lengths:
            rec: dict[str, np.ndarray] = {}
            for key in steps[start]:
                arr = np.array([st[key] for st in steps[start : start + n]], np.int64)
                if key in names and names[key][0]:
                    rec["/".join(names[key])] = arr
                elif key in shapes and shapes[key][0] in chip.proj:
                    role, shape = shapes[key]
                    name = chip.proj[role].name
                    if shape is None:
                        rec[f"{name}/x1"] = arr
                    else:
                        rec[f"{name}/w"] = np.swapaxes(arr.reshape((n,) + shape), 1, 2)  # [steps, post, pre]
            out.append(rec)
            start += n
        return out


def run_many(jobs) -> list[list[dict[str, np.ndarray]]]:
    """Several runs in one simulation (one chip, reset and reprogrammed before each trial of
    each run): ``jobs`` of ``(ReckonRTL, samples, learn, record, batch)``; per job, what
    :meth:`ReckonRTL.run` returns."""
    cmds, cuts = [], []
    for rtl, samples, learn, record, batch in jobs:
        for b in range(batch):
            c, lengths = rtl.commands(samples, learn, record, b)
            cmds += c
            cuts.append((rtl, lengths))
    text = simulate(jobs[0][0].rtl, cmds + [(END, 0, 0)])
    parts = text.split("P\n")[1:]
    if len(parts) != len(cuts):
        raise BackendError([Problem("backend 'reckon-rtl'", f"{len(parts)} runs recorded, {len(cuts)} started")])
    trials = [rtl._parse(part, lengths) for part, (rtl, lengths) in zip(parts, cuts, strict=True)]
    out, k = [], 0
    for _, samples, _, _, batch in jobs:
        per = trials[k : k + batch]
        k += batch
        out.append([{k: np.stack([t[i][k] for t in per], axis=1) for k in per[0][i]} for i in range(len(samples))])
    return out


def simulate(rtl: Path, cmds: list[tuple[int, int, int]]) -> str:
    """Run the testbench on ``cmds``; its output text."""
    vvp = build(rtl)
    with tempfile.TemporaryDirectory(prefix="reckon-rtl-") as tmp:
        cmd_file, out_file = Path(tmp) / "cmds.txt", Path(tmp) / "out.txt"
        cmd_file.write_text("".join(f"{op} {a:x} {b:x}\n" for op, a, b in cmds))
        done = subprocess.run([icarus()[1], "-n", str(vvp), f"+cmd={cmd_file}", f"+out={out_file}"],
                              capture_output=True, text=True)  # fmt: skip
        text = out_file.read_text() if out_file.is_file() else ""
    if done.returncode or not text.endswith("END\n"):
        tail = (done.stdout + done.stderr)[-2000:]
        raise BackendError([Problem("backend 'reckon-rtl'", f"simulation failed: {tail}")])
    return text

def run_program(program, steps: int, inputs: Mapping[str, np.ndarray], record: Sequence[str], learn: bool,
                batch: int = 1, seed: int = 0, rtl=None) -> dict[str, np.ndarray]:  # fmt: skip
    """``neurocomp run --backend reckon-rtl``: one sample of ``steps`` steps per trial. ``inputs``:
    the input population's spikes (as the emulator takes them; a Poisson input without them draws
    the emulator's frozen spikes) and ``<readout>/target``."""
    from ..emulator.emulator import Emulator

    backend = ReckonRTL(program, rtl, seed)
    chip = backend.chip
    emu = Emulator(program, batch=batch, seed=seed)
    given = emu.run_inputs(inputs, steps)
    name = chip.inp.name
    sample = {name: given[name]}
    if chip.out is not None and f"{chip.out.name}/target" in given:
        sample[f"{chip.out.name}/target"] = given[f"{chip.out.name}/target"][:steps]
    bad = [r for r in record if r not in ("spikes", "v", "w", "x1")]
    if bad:
        raise BackendError([Problem("backend 'reckon-rtl'", f"cannot record {bad} (spikes, v, w, x1)")])
    return backend.run([sample], learn, record, batch)[0]


def _clocked(cmds: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The SPI commands with the clock run in the word after each one that writes an SRAM word
    or a seed (its PROG pulse is seen then; the testbench stops the clock otherwise)."""
    from ..emulator.reckon import SEEDS, SPI_ADDRESSES

    seeds = {SPI_ADDRESSES[name] for name in SEEDS}
    out, pending, multi = [], False, False
    for op, a, b in cmds:
        if op == SPI:
            out.append((SPI_CLOCKED if pending else SPI, a, b))
            pending = (a >> 28) & 7 != 0 or (a & 0xFFFF) in seeds
            multi = False
        else:  # a multi-write: its header, then data words that each write
            out.append((op, int(pending), b))
            pending, multi = multi, True
    return out


def _header(mem: str, count: int, addr: int) -> int:
    """An SPI write header: target memory, number of 32-bit words, first address."""
    return (MEM[mem] << 28) | (count << 16) | addr


def _trial(arr, b: int) -> np.ndarray:
    """Trial ``b`` of ``[steps, batch, n]`` (or the shared ``[steps, n]``)."""
    a = np.asarray(arr)
    return a[:, b] if a.ndim == 3 else a
