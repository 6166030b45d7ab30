"""ReckOn in the emulator: its LFSRs, and its fixed-function e-prop.

**Random numbers.** Every stochastic decision of the chip reads one of its LFSRs (the
profile's ``random_sources``; :mod:`neurocomp.arith.lfsr`), which :class:`ReckonRandom`
holds as state: one register per LFSR instance and trial, all trials seeded alike, so trial
``b`` of a batch draws what the same trial run alone draws. The emulator's ``seed`` 0 takes
the profile's seeds (the published testbench's ``SPI_SEED_*``); another seed derives other
nonzero seeds from it. Checkpoints carry the registers. The draws follow ``srnn.v``:

* every step (the ``STEP`` phase walks the neuron SRAM, two neurons per 128-bit word, over
  ``max(recurrent, input, output)`` neurons): each of the paired rounding LFSRs
  (``membrane``, ``trace_input``, ``trace_recurrent``, ``trace_output``) gives one number per
  word, instance 0 to the word's even neuron, instance 1 to the odd one (neuron ``i``: word
  ``i // 2``); the ``membrane`` LFSRs skip words whose leak is exactly 1.0. The ``readout``
  LFSR gives one 7-bit number per cycle of the first 16 cycles (output ``k``: number ``k``);
* on a step with a target (``EPROP`` phase), for one trial: the ``weights_output`` LFSR gives
  one draw (16 numbers of 28 bits, output ``k``: number ``k``) for each hidden neuron ``j`` in
  order whose ``trace_out_j >> FP_LOC_TOUT`` is nonzero; then block by block of 16 hidden
  neurons, pre neuron by pre neuron, the ``weights_input`` and ``weights_recurrent`` LFSRs
  give one draw (16 numbers of 32 bits, the block's neuron ``n``: number ``n``) for each SRAM
  word written, i.e. unless the pre trace ``>> FP_LOC`` is 0 and no neuron of the block has a
  regularization term. Words where every ``h_j`` is 0 are written (unchanged), so they draw.

The draws, the traces, the EPROP phase and the delivery run compiled
(:mod:`neurocomp.kernels.reckon`), trial by trial as above; a batch's trials may run on
several cores at once, each with its own registers.

This model's approximations (the rest is the chip's arithmetic, :mod:`neurocomp.rules.reckon`):
the trace LFSRs advance every step as on the chip, but traces and updates follow the
emulator's step order (neurons, delivery, then traces: decay, then this step's spike
impulse; ``srnn.v`` adds the impulse of step ``t`` during step ``t + 1`` before its decay);
an odd neuron count is treated as if the last word were full (``srnn.v``'s loop skips it);
the readout's leak uses the compiled 16-bit factor and compares its top 7 fraction bits
with the 7-bit number (the chip's ``KAPPA`` has 7 fraction bits: exact when the compiled
factor is a multiple of 256).

**Learning.** The plastic projections of a ReckOn network (inputs -> recurrent, recurrent ->
recurrent, recurrent -> readout) hold their weights as state, as any plastic projection
does, plus their presynaptic trace ``x1``. :class:`ReckonLearner` runs the chip's learning
step across them: traces every step; on steps with a target, the error, the learning
signal, the pseudo-derivative and the stochastic +-1 LSB updates.

**Attribution** (the emulator's ``learn_float`` and ``learn_rounding``): ``"weights"`` holds
the 8-bit weights in float64, adds the update the lowered learning rate stands for instead
of a stochastic +-1 LSB step, saturates to the 8-bit range, and delivers through the float
weights exactly (the neurons' LFSR-rounded leak then takes their integer part each step);
``"traces"`` holds the 12/10-bit traces in float64 (exact decay and impulse, read exactly
instead of ``>> FP_LOC``); ``"graded"`` computes the 16-bit error and learning signal in
float64 (no rounding of the target, no saturation). The 5-level pseudo-derivative is the
lowered rule's own shape and stays. ``learn_rounding="nearest"`` rounds the traces' decay
to nearest and steps a weight where the update is at least half an LSB (the LFSRs still
advance, so nothing else changes; the neurons' leak keeps its stochastic rounding). An
operand in float64 makes the update's product float64 too: no 32- or 28-bit wrap, no
bit-27 quirk; a word is written (and draws) where the trace read is nonzero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..arith.fixed import shift
from ..arith.lfsr import Lfsr
from ..compiler.ir import QProjection
from ..kernels import reckon as kr
from ..kernels.eprop import over_trials
from ..learning import reckon as rk
from ..profiles import Profile
from .plastic import LearnedSynapses
from .synapses import chip_mantissas

TRACE = {  # role -> (impulse base, register of its position, decay fraction bits); widths: the profile
    "input": (8, "fp_loc_tinp", 15),
    "recurrent": (8, "fp_loc_trec", 15),
    "output": (2, "fp_loc_tout", 7),
}
PAIRED = ("membrane", "trace_input", "trace_recurrent", "trace_output")  # one number per SRAM word
READOUT_CYCLES = 16  # srnn.v leaks one output neuron per STEP cycle, cycles 0..15
ROLES = PAIRED + ("readout", "weights_input", "weights_recurrent", "weights_output")
BLOCK = kr.BLOCK  # post neurons per weight SRAM word (128 bits of 8-bit weights)
WEIGHT_ROLES = ("weights_input", "weights_recurrent", "weights_output")  # the kernel's register order


class ReckonRandom:
    """The chip's LFSR registers, per trial (see the module docstring for the draw order).

    ``sizes``: ``{"hidden": [LIF population sizes], "input": n, "output": [LI sizes]}`` in
    program order, which fixes each neuron's index in the core. ``leaks``: the voltage decay
    code of each hidden population (words with a leak of exactly 1.0 do not draw)."""

    def __init__(self, profile: Profile, batch: int, seed: int, sizes: Mapping[str, Any], leaks: Mapping[str, int]):
        self.batch = batch
        self.gens: dict[str, Lfsr] = {}
        self.seeds: dict[str, np.ndarray] = {}
        by_role = {src.role: name for name, src in profile.random_sources.items()}
        unknown = sorted(set(by_role) - set(ROLES))
        if unknown:
            raise ValueError(f"{profile.name}: random sources with roles {unknown} have no schedule (known: {ROLES})")
        missing = sorted(set(ROLES) - set(by_role))
        if missing:
            raise ValueError(f"{profile.name}: random_sources lack the roles {missing}")
        for role, name in by_role.items():
            src = profile.random_sources[name]
            self.gens[role] = Lfsr.from_source(src)
            seeds = np.asarray(src.seeds, dtype=np.int64)
            if seed:  # other nonzero seeds, derived from the emulator's seed and the source's name
                rng = np.random.default_rng([int(seed), *name.encode()])
                seeds = rng.integers(1, 2**src.bits, size=seeds.shape, dtype=np.int64)
            self.seeds[role] = seeds
        self.tables = {role: gen.chunk_tables for role, gen in self.gens.items()}  # what the compiled draws read
        self._where: dict[tuple, tuple] = {}
        for role in PAIRED:
            if self.seeds[role].size != 2:
                raise ValueError(f"{profile.name}: random source {by_role[role]!r} needs 2 instances (even, odd)")
        self.offsets: dict[str, int] = {}
        hidden = list(sizes["hidden"])
        self.n_hidden = sum(n for _, n in hidden)
        off = 0
        for name, n in hidden:
            self.offsets[name] = off
            off += n
        off = 0
        for name, n in sizes["output"]:
            self.offsets[name] = off
            off += n
        n_max = max(self.n_hidden, int(sizes["input"]), off, 1)
        self.n_words = (n_max + 1) // 2
        self.n_readout_draws = min(READOUT_CYCLES, n_max)
        # per word: does the membrane LFSR advance (a leak other than 1.0); words beyond the
        # hidden neurons hold the last hidden population's leak
        full = 2 ** (profile.formats.decay.bits - 1)
        word_leak = np.full(self.n_words, int(leaks[hidden[-1][0]]) if hidden else full)
        for name, n in hidden:
            o = self.offsets[name]
            word_leak[o // 2 : (o + n + 1) // 2] = int(leaks[name])
        self.membrane_draws = np.cumsum(word_leak != full) - 1  # word -> draw index (-1: none yet)
        self.n_membrane_draws = int((word_leak != full).sum())
        self.step_draws = {  # draws per step and role, in the order begin_step takes them
            **{role: self.n_words for role in PAIRED if role != "membrane"},
            "membrane": self.n_membrane_draws,
            "readout": self.n_readout_draws,
        }
        self.reset()

    def reset(self) -> None:
        """Re-seed every register (a chip reset followed by programming the seeds)."""
        self.regs = {role: np.broadcast_to(s, (self.batch, s.size)).copy() for role, s in self.seeds.items()}
        self.words: dict[str, np.ndarray] = {}

    def get_state(self) -> dict:
        return {role: r.tolist() for role, r in self.regs.items()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        regs = {role: np.array(state[role], dtype=np.int64) for role in self.regs}
        for role, r in regs.items():
            if r.shape != self.regs[role].shape:
                raise ValueError(f"LFSR registers {role!r} have shape {r.shape}, expected {self.regs[role].shape}")
        self.regs = regs
        self.words = {}

    def begin_step(self) -> None:
        """The fixed draws of one step (``STEP`` phase): rounding numbers for every neuron,
        ``words[role]`` ``[batch, instances, draws]`` (readout: ``[batch, draws]``), in one
        compiled call; the registers advance in place."""
        jobs = []
        for role, n in self.step_draws.items():
            regs, tables = self.regs[role], self.tables[role]
            if not regs.flags.c_contiguous or regs.dtype != np.int64:  # registers set from outside
                regs = self.regs[role] = np.ascontiguousarray(regs, np.int64)
            out = np.empty((regs.size, n, tables[0].shape[2]), np.int64)
            jobs.append((*tables, regs.reshape(-1), out))  # a view of the registers
            self.words[role] = out[:, :, 0].reshape(regs.shape + (n,))  # the step's roles draw one number each
        kr.lfsr_draw_all(tuple(jobs))
        self.words["readout"] = self.words["readout"][:, 0]

    def numbers(self, role: str, first: int, n: int) -> np.ndarray:
        """This step's rounding numbers of neurons ``first .. first + n - 1`` of a paired role
        (``[batch, n]``), or of outputs (``readout``)."""
        if role == "readout":
            return self.words["readout"][:, first : first + n]
        idx = np.arange(first, first + n)
        word = idx // 2
        if role == "membrane":
            word = self.membrane_draws[word]
        return self.words[role][:, idx % 2, word]

    def leak(self, pop: str, kind: str, x: np.ndarray, factor: int, frac_bits: int) -> np.ndarray:
        """A leak ``x * factor / 2**frac_bits`` rounded with this step's numbers (the chip's
        rule: up when the dropped fraction is >= the number and the floor is nonzero)."""
        role = "readout" if kind == "li" else "membrane"
        if role == "membrane" and factor == 2**frac_bits:
            return x  # a leak of exactly 1.0: nothing to round, and the chip draws nothing
        words = self.words[role] if role == "membrane" else self.words[role][:, None, :]
        parity, word = self._numbered(role, self.offsets[pop], x.shape[-1], words.shape[-1])
        if word is None:  # more neurons than numbers: the numpy form (which names the mismatch)
            rand = self.numbers(role, self.offsets[pop], x.shape[-1])
            return rk.decay_trace(x, factor, frac_bits, rand, self.gens[role].word_bits).astype(np.float64)
        out = np.empty(x.shape)
        kr.leak(x, int(factor), int(frac_bits), words, parity, word, self.gens[role].word_bits, out)
        return out

    def _numbered(self, role: str, first: int, n: int, size: int) -> tuple:
        """Where :meth:`numbers` finds each neuron's number: its LFSR instance and draw (cached)."""
        key = (role, first, n, size)
        if key not in self._where:
            idx = np.arange(first, first + n)
            parity, word = (np.zeros(n, np.int64), idx) if role == "readout" else (idx % 2, idx // 2)
            if role == "membrane":
                word = self.membrane_draws[word]
            word = np.where(word < 0, word + size, word)  # numpy's reading of index -1: the last draw
            self._where[key] = (parity, word if n == 0 or word.max() < size else None)
        return self._where[key]

    def weight_numbers(self, role: str, trial: int, n: int) -> np.ndarray:
        """``n`` draws for one trial's weight updates: ``[n, numbers per draw]``."""
        gen = self.gens[role]
        words, reg = gen.draw(self.regs[role][trial : trial + 1, 0], n)
        self.regs[role][trial, 0] = reg[0]
        return words[0]


class ReckonSynapses(LearnedSynapses):
    """A plastic projection on ReckOn: delivery with the current weights (8-bit, shifted by
    ``FP_LOC_W``), weights and presynaptic trace ``x1`` as state."""

    def __init__(self, proj: QProjection, latency: int, profile: Profile, batch: int, learn_float=()):
        # integer sums of 8-bit weights over a 512 fan-in are exact in float64
        dtypes = {k: np.float64 for k, q in (("w", "weights"), ("x1", "traces")) if q in learn_float}
        w0 = chip_mantissas(proj, profile)
        super().__init__(proj, latency, batch, w0, np.int64, np.float64, ("x1",), dtypes=dtypes)
        self.float_weights = "weights" in learn_float
        self.exp = int(proj.weight_exp)
        self.rounding = profile.formats.weight.exponent_rounding
        self.in_scale = float(2**profile.formats.input_shift)

    def _to_input(self, acc: np.ndarray) -> np.ndarray:
        if self.float_weights:  # attribution: the float weights' exact input
            return acc * 2.0**self.exp * self.in_scale
        return shift(acc, self.exp, self.rounding) * self.in_scale

    def deliver(self, spikes: np.ndarray, ring: np.ndarray, t: int) -> None:
        if self.float_weights or self.rounding != "floor":  # attribution (float sums in numpy's order), or
            return super().deliver(spikes, ring, t)  # a rounding the kernel does not take
        slot = ring[(t + self.latency + self.max_delay) % ring.shape[0]]
        kr.deliver(self.engine.weights, spikes, 2.0**self.exp, self.in_scale, slot)


class ReckonLearner:
    """The chip's learning step over the projections of one readout (see the module docstring).
    ``learn_float``: the quantities in float64 (``weights`` is the synapses' own);
    ``rounding``: ``"stochastic"``, ``"nearest"`` or None (the profile's)."""

    def __init__(
        self, syns: list[ReckonSynapses], pops: Mapping[str, Any], profile: Profile, learn_float=(), rounding=None
    ):
        self.float_traces = "traces" in learn_float
        self.float_graded = "graded" in learn_float
        # compiled: the chip's arithmetic, or every quantity in float64; other mixes run in numpy
        knobs = set(learn_float) & {"weights", "traces", "graded"}
        self.exact = knobs == {"weights", "traces", "graded"}
        self.compiled = self.exact or not knobs
        self.nearest = (rounding or ("stochastic" if profile.learning.stochastic_rounding else "nearest")) == "nearest"
        self.by_role = {s.rule.role: s for s in syns}
        missing = {"input", "output"} - set(self.by_role)
        if missing:
            raise ValueError(f"reckon learning needs input and output projections; missing {sorted(missing)}")
        out = self.by_role["output"]
        self.readout, self.hidden = out.post, out.pre
        self.reg = out.rule.registers
        self._chip_cache: tuple = (None, ())
        self.trace_bits = profile.learning.params["trace_bits"]  # per role: input, recurrent, output
        self.ls_bits = int(profile.learning.params["learning_signal_bits"])
        self.scale = 2.0 ** pops[self.readout].q.scale_exp
        # trace decays: the recurrent neurons' alpha (1.15) for input and recurrent traces,
        # the readout's kappa for the output trace, in ReckOn's 1.7 format
        self.factors = {
            "input": int(pops[self.hidden].q.params["voltage_decay"]),
            "recurrent": int(pops[self.hidden].q.params["voltage_decay"]),
            "output": int(round(int(pops[self.readout].q.params["voltage_decay"]) / 2**8)),
        }

    def step(self, pops: Mapping[str, Any], target, chip: ReckonRandom) -> None:
        """Traces of step ``t`` (rounded with this step's numbers), then (with a target) the
        weight updates, each trial with its own weight LFSRs."""
        for role in ("input", "recurrent", "output"):
            if role in self.by_role:
                self._trace(role, pops[self.by_role[role].pre].state["spikes"], chip)
        if target is None:
            return
        tgt = np.asarray(target, dtype=np.float64)
        valid = ~np.isnan(tgt).any(axis=-1)  # per trial: TARGET_VALID
        if not valid.any():
            return
        v_out = pops[self.readout].state["v"]
        if self.float_graded:  # attribution: the exact error (target not rounded, not saturated)
            err = np.nan_to_num(tgt) * self.scale - v_out
        else:
            err = np.clip(np.round(np.nan_to_num(tgt) * self.scale) - v_out, -(2**15), 2**15 - 1).astype(np.int64)
        v_hid = pops[self.hidden].state.get("v_pre", pops[self.hidden].state["v"]).astype(np.int64)
        if self.compiled:
            self._update_compiled(valid, err, v_hid, chip)
            return
        for b in np.flatnonzero(valid):
            self._update(int(b), err[b], v_hid[b], chip)

    def _trace(self, role: str, spikes: np.ndarray, chip: ReckonRandom) -> None:
        """One step of a role's presynaptic traces, in place (compiled)."""
        syn = self.by_role[role]
        base, reg_name, frac = TRACE[role]
        imp = base << getattr(syn.rule.registers, reg_name)
        st = syn.engine.state
        if self.float_traces:
            x = np.ascontiguousarray(st["x1"], np.float64)
            kr.float_trace_step(x, spikes, self.factors[role] / 2.0**frac, float(imp))
        else:
            src = f"trace_{role}"
            first = chip.offsets.get(syn.pre, 0)  # input channels and hidden neurons count from 0
            x = np.ascontiguousarray(st["x1"], np.int64)
            top = (1 << int(self.trace_bits[role])) - 1
            words = chip.words[src]
            kr.trace_step(x, spikes, self.factors[role], frac, imp, top, words, first, chip.gens[src].word_bits,
                          self.nearest)  # fmt: skip
        st["x1"] = x

    def _update_compiled(self, valid: np.ndarray, err: np.ndarray, v: np.ndarray, chip: ReckonRandom) -> None:
        """Every valid trial's EPROP phase in one kernel call, the chip's integers or all in
        float64 (the same loops; see :mod:`neurocomp.kernels.reckon`)."""
        out, rec, reg = self.by_role["output"], self.by_role.get("recurrent"), self.reg
        w_out = out.engine.state["w"]
        if self.exact:  # the float learning signal, trial by trial in numpy's order (a sum over outputs)
            L = np.zeros(v.shape)
            for b in np.flatnonzero(valid):
                L[b] = rk.float_learning_signal(err[b], w_out[b], reg, self.ls_bits)
        else:  # computed by the kernel
            L = np.empty(v.shape, np.int64)
        t_rec = rec.engine.state["x1"] if rec is not None else np.zeros(v.shape, L.dtype)
        hid = tuple(self._role_args(r, chip) for r in ("input", "recurrent") if r in self.by_role)
        oreg = out.rule.registers
        scale = 2.0 ** (oreg.lr_p_out - oreg.lr_r_out - rk.OUTPUT_PROB_BITS)
        out_args = (w_out, out.engine.state["x1"], oreg.fp_loc_tout, oreg.lr_p_out, oreg.lr_r_out,
                    chip.gens["weights_output"].chunk_tables, scale)  # fmt: skip
        for r in WEIGHT_ROLES:  # advanced in place by the kernel
            if not chip.regs[r].flags.c_contiguous or chip.regs[r].dtype != np.int64:
                chip.regs[r] = np.ascontiguousarray(chip.regs[r], np.int64)
        regs = tuple(chip.regs[r] for r in WEIGHT_ROLES)
        args = (hid, out_args, self._chip_args(), np.ascontiguousarray(err), v, L, t_rec, regs, self.nearest)

        def trials(lo: int, hi: int) -> None:  # the valid trials among lo .. hi - 1
            kr.learn_step(np.where((np.arange(valid.size) >= lo) & (np.arange(valid.size) < hi), valid, False), *args)

        over_trials(trials, valid.size)

    def _role_args(self, role: str, chip: ReckonRandom) -> tuple:
        """The kernel's arguments for the input or recurrent weights (see ``learn_step``)."""
        syn = self.by_role[role]
        r = syn.rule.registers
        fp = r.fp_loc_tinp if role == "input" else r.fp_loc_trec
        scale = 2.0 ** (r.lr_p - r.lr_r - rk.HIDDEN_PROB_BITS)
        return (syn.engine.state["w"], syn.engine.state["x1"], fp, r.lr_p, r.lr_r,
                chip.gens[f"weights_{role}"].chunk_tables, role == "recurrent", scale, bool(r.regularize),
                r.fp_loc_trec, r.regul_f0, r.regul_k_p)  # fmt: skip

    def _chip_args(self) -> tuple:
        """The output registers the kernel reads: pseudo-derivative, learning signal, regularization
        (rebuilt when the registers are replaced)."""
        r = self.reg
        if self._chip_cache[0] is not r:
            args = (np.asarray(r.thr_h, np.int64), np.asarray(r.h_values, np.int64), r.learn_sig_scale, self.ls_bits,
                    bool(r.regularize), r.fp_loc_trec, r.regul_f0)  # fmt: skip
            self._chip_cache = (r, args)
        return self._chip_cache[1]

    def _update(self, b: int, err: np.ndarray, v: np.ndarray, chip: ReckonRandom) -> None:
        """One trial's EPROP phase with some quantities in float64 and others not (attribution;
        in numpy), drawing from the weight LFSRs in the chip's order."""
        out = self.by_role["output"]
        rec = self.by_role.get("recurrent")
        reg = self.reg
        w_out = out.engine.state["w"][b]
        n_out, n_hid = w_out.shape
        if err.dtype.kind == "f" or w_out.dtype.kind == "f":  # attribution: float error or weights
            L = rk.float_learning_signal(err, w_out, reg, self.ls_bits, exact=self.float_graded)
        else:
            L = rk.learning_signal(err, w_out, reg, self.ls_bits)  # from W_out before its update
        h = rk.pseudo_derivative(v, reg)
        trace_rec_post = rec.engine.state["x1"][b] if rec is not None else np.zeros(n_hid, np.int64)
        # output weights: one draw per hidden neuron whose shifted output trace is nonzero
        t_out = out.engine.state["x1"][b]
        rows = np.flatnonzero(rk.read_trace(t_out, out.rule.registers.fp_loc_tout) != 0)
        rand_out = np.zeros((n_out, n_hid), np.int64)
        if rows.size:
            rand_out[:, rows] = chip.weight_numbers("weights_output", b, rows.size)[:, :n_out].T
        # input and recurrent weights: one draw per written word (pre i, block of 16 post neurons)
        n_blocks = -(-n_hid // BLOCK)
        reg_zero = np.ones(n_blocks, bool)
        if reg.regularize:
            over = np.zeros(n_blocks * BLOCK)
            over[:n_hid] = np.maximum(rk.read_trace(trace_rec_post, reg.fp_loc_trec) - reg.regul_f0, 0)
            reg_zero = ~(over.reshape(n_blocks, BLOCK) != 0).any(axis=1)
        for role in ("input", "recurrent"):
            syn = self.by_role.get(role)
            if syn is None:
                continue
            regs = syn.rule.registers
            fp = regs.fp_loc_tinp if role == "input" else regs.fp_loc_trec
            trace_pre = syn.engine.state["x1"][b]
            drawn = ~((rk.read_trace(trace_pre, fp) == 0)[None, :] & reg_zero[:, None])  # [block, pre], in draw order
            rand = np.zeros((n_blocks * BLOCK, trace_pre.size), np.int64)
            blk, pre = np.nonzero(drawn)
            if blk.size:
                nums = chip.weight_numbers(f"weights_{role}", b, blk.size)  # [draws, 16]
                rand[blk[:, None] * BLOCK + np.arange(BLOCK), pre[:, None]] = nums
            w = syn.engine.state["w"][b]
            if self.nearest:  # round to nearest: a step where the update is at least half an LSB
                rand[...] = 1 << (rk.HIDDEN_PROB_BITS - 1)
            # a mix of knobs makes L float (float weights or error) or the traces: p is float64
            p, enable = rk.float_prob(trace_pre, fp, L, h, trace_rec_post, regs)
            new = rk.float_step(w, p, regs.lr_p, regs.lr_r, rand[:n_hid], rk.HIDDEN_PROB_BITS, enable)
            written = drawn[np.arange(n_hid) // BLOCK]  # [post, pre]: only the words written change
            new = np.where(written, new, w)
            if role == "recurrent":  # a written recurrent word sets its autapse to 0 (srnn.v)
                diag = np.arange(n_hid)
                new[diag[written[diag, diag]], diag[written[diag, diag]]] = 0
            syn.engine.state["w"][b] = new
        if self.nearest:
            rand_out[...] = 1 << (rk.OUTPUT_PROB_BITS - 1)
        oreg = out.rule.registers
        p = rk.float_output_prob(err, t_out, oreg)  # integer p where only the weights are float
        out.engine.state["w"][b] = rk.float_step(w_out, p, oreg.lr_p_out, oreg.lr_r_out, rand_out, rk.OUTPUT_PROB_BITS)
