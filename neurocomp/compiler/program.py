"""The compiled Program and its file format (``.ncp``).

An ``.ncp`` file is a zip holding ``manifest.json`` and one ``.npy`` member per integer
array. The manifest records the format version, the neurocomp version, the profile's
name and content hash, ``dt``, the compile options, the pass log, every population's
registers, every projection's metadata, the placement and the quantization report, and a
SHA-256 checksum per array. :meth:`Program.load` refuses a file that is truncated or
corrupted, that a newer format wrote, or whose profile differs from the installed one; a file
of an older format it upgrades (:data:`MIGRATIONS`), saying in the Program's warnings what the
upgrade added.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_write
from .._frozen import freeze, thaw
from ..errors import NeurocompError, Problem, ProfileError
from ..graph import RuleSpec
from ..graph.weights import row_pointers
from ..learning.programmable import ProgrammableEprop
from ..learning.reckon import ReckonLearning
from ..learning.rule import EngineRule
from ..profiles import Profile, load_profile
from .errors import ProgramError
from .ir import Block, ParamStats, Placement, QConv, QPopulation, QProjection, QuantReport
from .program_check import manifest_problems

FORMAT = "neurocomp-program"
FORMAT_VERSION = 2  # 2: a rate-regularized graded learning signal carries its rate trace's rate_bits
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member dates keep the archive independent of when it was written


def _narrow(a: np.ndarray) -> np.ndarray:
    """``a`` in the narrowest signed integer type that holds its values (for storage)."""
    if a.size == 0:
        return a.astype(np.int8)
    lo, hi = int(a.min()), int(a.max())
    for t in (np.int8, np.int16, np.int32, np.int64):
        if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return a.astype(t, copy=False)
    return a


def _v1_to_v2(manifest: dict) -> list[str]:
    """Format 1 to 2: format 1 stored no ``rate_bits`` with a rate-regularized graded learning
    signal (``reg``), whose rate trace then had 16 fraction bits; format 2 stores them. Adds
    ``rate_bits: 16`` where it is missing; returns what it added."""
    added = []
    for p in manifest["projections"]:
        graded = (p.get("learning") or {}).get("graded") or {}
        for y, src in sorted(graded.items()):
            if isinstance(src, dict) and src.get("reg") and "rate_bits" not in src:
                src["rate_bits"] = 16  # what format 1's emulator used
                added.append(f"projection {p['name']!r}: {y} rate_bits 16")
    return added


# format -> the upgrade of its manifest to the next format (in place), returning what it added
MIGRATIONS = {1: _v1_to_v2}


def _migrate(manifest: dict, where: str) -> list[str]:
    """Upgrade ``manifest`` of an older format to :data:`FORMAT_VERSION` step by step, in place;
    a warning per upgrade that added something (a named error for a format with no upgrade)."""
    notes = []
    version = manifest["format_version"]
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProgramError([Problem(where, f"program format {version} has no upgrade to {FORMAT_VERSION}")])
        added = step(manifest)
        if added:
            notes.append(f"program format {version} upgraded to {version + 1}: added " + "; ".join(added))
        version += 1
    manifest["format_version"] = version
    manifest["warnings"] = list(manifest.get("warnings", [])) + notes
    return notes


def _learning_from_dict(d):
    """A projection's lowered learning rule, by engine kind."""
    if d is None:
        return None
    if d.get("engine") == "eprop_fixed":
        return ReckonLearning.from_dict(d)
    if d.get("engine") == "programmable":
        return ProgrammableEprop.from_dict(d)
    return EngineRule.from_dict(d)


@dataclass(frozen=True, eq=False)
class Program:
    """A network compiled for one chip profile: integer registers and weights, placement
    and reports. Build it with :func:`neurocomp.compile`; save and load it with
    :meth:`save` / :meth:`load`."""

    profile: Profile
    dt_ms: float
    network_name: str
    populations: tuple[QPopulation, ...]
    projections: tuple[QProjection, ...]
    placement: Placement
    report: QuantReport
    options: Mapping[str, Any] = field(default_factory=dict)
    pass_log: tuple[Mapping[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    neurocomp_version: str = ""

    @classmethod
    def from_parts(
        cls, profile: Profile | str, populations, projections, dt_ms: float = 1.0, name: str = "handmade"
    ) -> Program:
        """A Program assembled directly from integer populations and projections (hand-written
        chip configurations, tests against a chip's reference tables). It is not placed and
        has no quantization report."""
        from .._version import __version__

        prof = profile if isinstance(profile, Profile) else load_profile(profile)
        empty = np.zeros(0, dtype=np.int64)
        placement = Placement((), empty, empty, empty, empty, 0.0, 0.0, 0.0, 0.0, None, {})
        return cls(
            prof,
            dt_ms,
            name,
            tuple(populations),
            tuple(projections),
            placement,
            QuantReport(()),
            neurocomp_version=__version__,
        )

    def population(self, name: str) -> QPopulation:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(f"no population {name!r} in the program")

    def projection(self, name: str) -> QProjection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(f"no projection {name!r} in the program")

    def with_pass_log(self, log: tuple[Mapping[str, Any], ...]) -> Program:
        return replace(self, pass_log=log)

    def with_weights(self, weights: Mapping[str, np.ndarray], note: str = "learned weights") -> Program:
        """A new Program whose projections ``weights`` names carry the given integer
        mantissas (dense ``[post, pre]``; a sparse projection takes the values at its stored
        synapses). Used to save what on-chip learning produced; the rest is unchanged and the
        pass log records the change."""
        problems, projs = [], []
        for pr in self.projections:
            if pr.name not in weights:
                projs.append(pr)
                continue
            w = np.asarray(weights[pr.name])
            if w.shape != pr.shape or not np.array_equal(w, np.round(w)):
                problems.append(Problem(f"projection {pr.name!r}", f"weights must be integers shaped {pr.shape}"))
                continue
            new = w[pr.rows, pr.cols] if pr.is_sparse else w
            projs.append(replace(pr, weights=np.ascontiguousarray(new, dtype=np.int32)))
        unknown = [k for k in weights if not any(p.name == k for p in self.projections)]
        problems += [Problem(f"projection {k!r}", "is not in the program") for k in unknown]
        if problems:
            raise ProgramError(problems)
        entry = {
            "name": "with_weights",
            "seconds": 0.0,
            "peak_rss_mib": 0.0,
            "notes": [f"{note}: {', '.join(weights)}"],
        }
        return replace(self, projections=tuple(projs), pass_log=tuple(self.pass_log) + (entry,))

    # -- comparison ------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Program):
            return NotImplemented
        a, b = self._manifest_and_arrays(), other._manifest_and_arrays()
        strip = lambda m: {k: v for k, v in m.items() if k not in ("pass_log",)}  # noqa: E731
        return (
            strip(a[0]) == strip(b[0])
            and a[1].keys() == b[1].keys()
            and all(np.array_equal(a[1][k], b[1][k]) and a[1][k].dtype == b[1][k].dtype for k in a[1])
        )

    __hash__ = None  # type: ignore[assignment]

    # -- writing ---------------------------------------------------------------------
    def _manifest_and_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}

        def put(key: str, value: Any) -> Any:
            if isinstance(value, np.ndarray):
                arrays[key] = np.ascontiguousarray(value)
                return {"array": key}
            return value

        projs = []
        for i, pr in enumerate(self.projections):
            base = f"projections/{i}"
            # Stored compactly: mantissas in the narrowest integer type, sparse rows as CSR row
            # pointers; _from_manifest restores the in-memory form exactly.
            indptr = row_pointers(pr.rows, pr.shape[0]) if pr.is_sparse else None
            projs.append(
                {
                    "name": pr.name,
                    "pre": pr.pre,
                    "post": pr.post,
                    "shape": list(pr.shape),
                    "sparse": pr.is_sparse,
                    "sign_mode": pr.sign_mode,
                    "num_weight_bits": pr.num_weight_bits,
                    "float_scale": pr.float_scale,
                    "weights_dtype": str(pr.weights.dtype),
                    "weights": put(f"{base}/weights", _narrow(pr.weights)),
                    "rows_indptr": put(f"{base}/rows_indptr", _narrow(indptr)) if pr.is_sparse else None,
                    "index_dtype": str(pr.rows.dtype) if pr.is_sparse else None,
                    "cols": put(f"{base}/cols", pr.cols) if pr.is_sparse else None,
                    "weight_exp": put(f"{base}/weight_exp", pr.weight_exp),
                    "delay_steps": put(f"{base}/delay_steps", pr.delay_steps),
                    "plasticity": None if pr.plasticity is None else pr.plasticity.to_dict(),
                    "learning": None if pr.learning is None else pr.learning.to_dict(),
                    "port": pr.port,
                    "conv": None if pr.conv is None else pr.conv.to_dict(lambda a, k=f"{base}/kernel": put(k, a)),
                }
            )
        pl = self.placement
        for key in ("core_chip", "core_neurons", "core_memory_bits", "core_input_axons"):
            arrays[f"placement/{key}"] = getattr(pl, key)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "neurocomp_version": self.neurocomp_version,
            "profile": {"name": self.profile.name, "fingerprint": self.profile.fingerprint},
            "dt_ms": self.dt_ms,
            "network": self.network_name,
            "options": thaw(self.options),
            "populations": [
                {
                    "name": p.name,
                    "size": p.size,
                    "model": p.model,
                    "spiking": p.spiking,
                    "scale_exp": p.scale_exp,
                    "params": thaw(p.params),
                }
                for p in self.populations
            ],
            "projections": projs,
            "placement": {
                "blocks": [[b.population, b.start, b.stop, b.core] for b in pl.blocks],
                "traffic_total": pl.traffic_total,
                "traffic_cross_core": pl.traffic_cross_core,
                "traffic_cross_chip": pl.traffic_cross_chip,
                "traffic_cross_chip_greedy": pl.traffic_cross_chip_greedy,
                "energy_pj_per_step": pl.energy_pj_per_step,
                "energy_terms": dict(pl.energy_terms),
            },
            "report": {"stats": [s.to_dict() for s in self.report.stats], "warnings": list(self.report.warnings)},
            "warnings": list(self.warnings),
            "pass_log": [dict(r) for r in self.pass_log],
        }
        return manifest, arrays

    def save(self, path: str | os.PathLike) -> Path:
        """Write the program to ``path`` (conventionally ``*.ncp``)."""
        path = Path(path)
        manifest, arrays = self._manifest_and_arrays()
        blobs = {}
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            blobs[key] = buf.getvalue()
        manifest["arrays"] = {
            k: {"sha256": hashlib.sha256(b).hexdigest(), "dtype": str(arrays[k].dtype), "shape": list(arrays[k].shape)}
            for k, b in blobs.items()
        }
        # Arrays are stored uncompressed: deflate costs ~1 s per 15 MB and gains little on
        # already-narrow random integers. atomic_write: a crash never leaves half a program.
        def write(f) -> None:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
                z.writestr(
                    zipfile.ZipInfo("manifest.json", _ZIP_DATE),
                    json.dumps(manifest, indent=1, sort_keys=True),
                    compress_type=zipfile.ZIP_DEFLATED,
                )
                for key in sorted(blobs):
                    z.writestr(zipfile.ZipInfo(f"arrays/{key}.npy", _ZIP_DATE), blobs[key])

        atomic_write(path, write)
        return path

    # -- reading ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, profile: Profile | str | None = None) -> Program:
        """Read a program. ``profile`` (a Profile, name or path) overrides the installed
        profile of the same name; its content hash must match the one compiled against."""
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise ProgramError([Problem(where, "file not found")])
        try:
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
                if "manifest.json" not in names:
                    raise ProgramError([Problem(where, "not a neurocomp program (no manifest.json)")])
                manifest = json.loads(z.read("manifest.json"))
                if manifest.get("format") != FORMAT:
                    raise ProgramError([Problem(where, "not a neurocomp program (unknown format)")])
                version = manifest.get("format_version")
                if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                    raise ProgramError([Problem(where, f"malformed manifest (format_version {version!r})")])
                if version > FORMAT_VERSION:
                    raise ProgramError(
                        [
                            Problem(
                                where,
                                f"written in program format {version} by neurocomp "
                                f"{manifest.get('neurocomp_version', '?')}; this neurocomp "
                                f"reads format <= {FORMAT_VERSION}. Upgrade neurocomp.",
                            )
                        ]
                    )
                _migrate(manifest, where)
                arrays = {}
                for key, meta in manifest["arrays"].items():
                    member = f"arrays/{key}.npy"
                    if member not in names:
                        raise ProgramError([Problem(where, f"array {key!r} is missing (truncated file?)")])
                    blob = z.read(member)
                    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
                        raise ProgramError(
                            [Problem(where, f"array {key!r}: checksum mismatch (the file is corrupted)")]
                        )
                    arrays[key] = np.load(io.BytesIO(blob), allow_pickle=False)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ProgramError(
                [Problem(where, f"not a readable neurocomp program (truncated or corrupted: {exc})")]
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
            raise ProgramError([Problem(where, f"malformed manifest ({type(exc).__name__}: {exc})")]) from None
        try:
            prof = cls._profile_for(manifest, profile, where)
            problems = manifest_problems(manifest, arrays, prof)
            if problems:
                raise ProgramError(
                    problems, header=f"{where}: values out of range for {prof.name} ({len(problems)} problems)"
                )
            return cls._from_manifest(manifest, arrays, prof)
        except ProgramError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            raise ProgramError([Problem(where, f"malformed manifest (missing or bad {exc})")]) from None
        except NeurocompError as exc:  # a stored rule or register a constructor refuses
            raise ProgramError([Problem(where, f"malformed manifest: {p}") for p in exc.problems]) from None

    @staticmethod
    def _profile_for(manifest: dict, profile: Profile | str | None, where: str) -> Profile:
        want = manifest["profile"]
        try:
            prof = profile if isinstance(profile, Profile) else load_profile(profile or want["name"])
        except ProfileError as exc:
            raise ProgramError(
                [Problem(where, f"compiled for profile {want['name']!r}, which cannot be loaded: {exc}")]
            ) from None
        if prof.fingerprint != want["fingerprint"]:
            raise ProgramError(
                [
                    Problem(
                        where,
                        f"compiled for profile {want['name']!r} with hash "
                        f"{want['fingerprint'][:12]}, but the profile here ({prof.path}) has "
                        f"hash {prof.fingerprint[:12]}; recompile the model for this profile",
                    )
                ]
            )
        return prof

    @classmethod
    def _from_manifest(cls, m: dict, arrays: dict[str, np.ndarray], prof: Profile) -> Program:
        def get(v):
            return arrays[v["array"]] if isinstance(v, dict) and "array" in v else v

        pops = tuple(
            QPopulation(p["name"], p["size"], p["model"], p["spiking"], p["scale_exp"], freeze(p["params"]))
            for p in m["populations"]
        )
        projs = []
        for p in m["projections"]:
            rule = p["plasticity"]
            rows = None
            if p["sparse"]:
                indptr = get(p["rows_indptr"]).astype(np.int64)
                rows = np.repeat(np.arange(p["shape"][0]), np.diff(indptr)).astype(p["index_dtype"])
            projs.append(
                QProjection(
                    name=p["name"],
                    pre=p["pre"],
                    post=p["post"],
                    shape=tuple(p["shape"]),
                    weights=get(p["weights"]).astype(p["weights_dtype"]),
                    rows=rows,
                    cols=get(p["cols"]),
                    weight_exp=get(p["weight_exp"]),
                    sign_mode=p["sign_mode"],
                    num_weight_bits=p["num_weight_bits"],
                    delay_steps=get(p["delay_steps"]),
                    plasticity=None if rule is None else RuleSpec(rule["rule"], rule["params"]),
                    float_scale=p["float_scale"],
                    learning=_learning_from_dict(p.get("learning")),
                    port=p.get("port", "syn"),  # programs saved before two synaptic currents: the first
                    conv=QConv.from_dict(p.get("conv"), get),
                )
            )
        pl = m["placement"]
        placement = Placement(
            blocks=tuple(Block(*b) for b in pl["blocks"]),
            core_chip=arrays["placement/core_chip"],
            core_neurons=arrays["placement/core_neurons"],
            core_memory_bits=arrays["placement/core_memory_bits"],
            core_input_axons=arrays["placement/core_input_axons"],
            traffic_total=pl["traffic_total"],
            traffic_cross_core=pl["traffic_cross_core"],
            traffic_cross_chip=pl["traffic_cross_chip"],
            traffic_cross_chip_greedy=pl["traffic_cross_chip_greedy"],
            energy_pj_per_step=pl["energy_pj_per_step"],
            energy_terms=freeze(pl["energy_terms"]),
        )
        report = QuantReport(tuple(ParamStats(**s) for s in m["report"]["stats"]), tuple(m["report"]["warnings"]))
        return cls(
            prof,
            m["dt_ms"],
            m["network"],
            pops,
            tuple(projs),
            placement,
            report,
            freeze(m["options"]),
            tuple(freeze(r) for r in m["pass_log"]),
            tuple(m["warnings"]),
            m["neurocomp_version"],
        )

    # -- reading for people ----------------------------------------------------------
    def summary(self) -> str:
        p, pl = self.profile, self.placement
        n_neurons = sum(q.size for q in self.populations)
        n_syn = sum(q.n_synapses for q in self.projections)
        lines = [
            f"Program {self.network_name!r} for {p.name} ({p.title}), dt = {self.dt_ms:g} ms",
            f"  {len(self.populations)} populations ({n_neurons} neurons), {len(self.projections)} projections "
            f"({n_syn} synapses); compiled by neurocomp {self.neurocomp_version}",
            "populations:",
        ]
        for q in self.populations:
            params = ", ".join(f"{k}={v}" for k, v in q.params.items())
            scale = f" S=2^{q.scale_exp}" if q.model != "SpikeInput" and p.arithmetic == "fixed" else ""
            lines.append(f"  {q.name:<14} {q.size:>7} x {q.model:<10}{scale}  {params}")
        lines.append("projections:")
        for q in self.projections:
            e = (
                q.weight_exp
                if isinstance(q.weight_exp, int)
                else f"{int(np.min(q.weight_exp))}..{int(np.max(q.weight_exp))}"
            )
            rule = f"  plastic: {q.plasticity.name}" if q.plasticity else ""
            lines.append(
                f"  {q.name:<20} {q.shape[0]:>6}x{q.shape[1]:<6} {'sparse' if q.is_sparse else 'dense':<6} "
                f"{q.n_synapses:>9} syn  {q.sign_mode:<10} exp {e}  delay<={q.max_delay}{rule}"
            )
        lines.append(f"placement: {len(pl.blocks)} blocks on {pl.n_cores} cores, {pl.n_chips} chip(s)")
        cap = p.capacity
        if pl.n_cores:
            lines.append(
                f"  neurons/core max {int(pl.core_neurons.max())}/{cap.neurons_per_core} "
                f"({pl.core_neurons.max() / cap.neurons_per_core:.0%}); synaptic memory max "
                f"{int(pl.core_memory_bits.max())}/{cap.synaptic_memory_bits_per_core} bits "
                f"({pl.core_memory_bits.max() / cap.synaptic_memory_bits_per_core:.0%})"
            )
        rate = self.options.get("firing_rate_hz", "?")
        lines.append(
            f"  traffic at {rate} Hz: {pl.traffic_total:.4g} spikes/step, {pl.traffic_cross_core:.4g} "
            f"cross-core, {pl.traffic_cross_chip:.4g} cross-chip"
        )
        if pl.energy_pj_per_step is not None:
            est = " (estimate)" if p.is_estimate("energy") else ""
            lines.append(f"  energy ~ {pl.energy_pj_per_step / 1000:.4g} nJ/step{est}")
        else:
            lines.append(f"  energy: {p.name} publishes no per-operation figures")
        lines.append("quantization:")
        lines += ["  " + row for row in self.report.table().splitlines()]
        extra = [w for w in self.warnings if w not in self.report.warnings]
        lines += [f"warning: {w}" for w in extra]
        return "\n".join(lines)
