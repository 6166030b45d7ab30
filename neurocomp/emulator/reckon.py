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

**The chip's run** (:class:`ReckonCore`, exact against the RTL): every ReckOn Program runs
as the chip runs it, a whole run per compiled call (:func:`neurocomp.kernels.reckon.run_core`),
with the chip's tick mapping, event order, saturation, spike/leak/reset order and learning
phase; see :class:`ReckonCore`. :class:`ReckonChip` is the Program's chip image (its SPI
registers and SRAM layout), which the RTL backend (:mod:`neurocomp.backends.reckon_rtl`)
programs into the Verilog.

**Attribution** runs (``learn_float``, ``learn_rounding="nearest"``) keep the step-by-step
path below: the emulator's generic neuron step (delivery, then leak, spike and reset) with
:class:`ReckonLearner` after it (traces: decay, then this step's impulse; the error reads the
readout of this step; the pseudo-derivative reads ``v`` before the reset):
the chip's arithmetic in the emulator's step order, not the chip's timing.

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
from ..kernels import call_parallel
from ..kernels import reckon as kr
from ..kernels.eprop import over_trials
from ..learning import reckon as rk
from ..profiles import Profile
from .plastic import LearnedSynapses
from .synapses import chip_mantissas

TRACE = {"input": "fp_loc_tinp", "recurrent": "fp_loc_trec", "output": "fp_loc_tout"}  # role -> its FP_LOC register
PAIRED = ("membrane", "trace_input", "trace_recurrent", "trace_output")  # one number per SRAM word
ROLES = PAIRED + ("readout", "weights_input", "weights_recurrent", "weights_output")
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
        # srnn.v leaks one output neuron per STEP cycle, on the cycles of its output slots
        self.n_readout_draws = min(int(profile.capacity.output_neurons), n_max)
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
        self.widths = rk.ChipWidths.of(profile)
        self.ls_bits = self.widths.signal
        self.scale = 2.0 ** pops[self.readout].q.scale_exp
        # trace decays: the recurrent neurons' alpha (1.15) for input and recurrent traces,
        # the readout's kappa for the output trace, in ReckOn's 1.7 format (KAPPA's bits)
        w = self.widths
        self.factors = {
            "input": int(pops[self.hidden].q.params["voltage_decay"]),
            "recurrent": int(pops[self.hidden].q.params["voltage_decay"]),
            "output": int(round(int(pops[self.readout].q.params["voltage_decay"]) / 2 ** (w.decay - w.readout_leak))),
        }
        self.frac = {"input": w.decay - 1, "recurrent": w.decay - 1, "output": w.readout_leak - 1}

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
            top = 2 ** (self.widths.error - 1)
            err = np.clip(np.round(np.nan_to_num(tgt) * self.scale) - v_out, -top, top - 1).astype(np.int64)
        v_hid = pops[self.hidden].state.get("v_pre", pops[self.hidden].state["v"]).astype(np.int64)
        if self.compiled:
            self._update_compiled(valid, err, v_hid, chip)
            return
        for b in np.flatnonzero(valid):
            self._update(int(b), err[b], v_hid[b], chip)

    def _trace(self, role: str, spikes: np.ndarray, chip: ReckonRandom) -> None:
        """One step of a role's presynaptic traces, in place (compiled)."""
        syn = self.by_role[role]
        frac = self.frac[role]
        imp = self.widths.impulse[role] << getattr(syn.rule.registers, TRACE[role])
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
                L[b] = rk.float_learning_signal(err[b], w_out[b], reg, self.widths)
        else:  # computed by the kernel
            L = np.empty(v.shape, np.int64)
        t_rec = rec.engine.state["x1"] if rec is not None else np.zeros(v.shape, L.dtype)
        hid = tuple(self._role_args(r, chip) for r in ("input", "recurrent") if r in self.by_role)
        oreg = out.rule.registers
        scale = 2.0 ** (oreg.lr_p_out - oreg.lr_r_out - self.widths.output)
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
        scale = 2.0 ** (r.lr_p - r.lr_r - self.widths.hidden)
        return (syn.engine.state["w"], syn.engine.state["x1"], fp, r.lr_p, r.lr_r,
                chip.gens[f"weights_{role}"].chunk_tables, role == "recurrent", scale, bool(r.regularize),
                r.fp_loc_trec, r.regul_f0, r.regul_k_p)  # fmt: skip

    def _chip_args(self) -> tuple:
        """The output registers the kernel reads: pseudo-derivative, learning signal, regularization
        (rebuilt when the registers are replaced)."""
        r = self.reg
        if self._chip_cache[0] is not r:
            w = self.widths
            args = (np.asarray(r.thr_h, np.int64), np.asarray(r.h_values, np.int64), r.learn_sig_scale, w.signal_shift,
                    self.ls_bits, bool(r.regularize), r.fp_loc_trec, r.regul_f0, w.weight, w.hidden, w.output, w.block,
                    w.mul_frac)  # fmt: skip
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
            L = rk.float_learning_signal(err, w_out, reg, self.widths, exact=self.float_graded)
        else:
            L = rk.learning_signal(err, w_out, reg, self.widths)  # from W_out before its update
        h = rk.pseudo_derivative(v, reg)
        trace_rec_post = rec.engine.state["x1"][b] if rec is not None else np.zeros(n_hid, np.int64)
        # output weights: one draw per hidden neuron whose shifted output trace is nonzero
        t_out = out.engine.state["x1"][b]
        rows = np.flatnonzero(rk.read_trace(t_out, out.rule.registers.fp_loc_tout) != 0)
        rand_out = np.zeros((n_out, n_hid), np.int64)
        if rows.size:
            rand_out[:, rows] = chip.weight_numbers("weights_output", b, rows.size)[:, :n_out].T
        # input and recurrent weights: one draw per written word (pre i, block of 16 post neurons)
        wd = self.widths
        block = wd.block
        n_blocks = -(-n_hid // block)
        reg_zero = np.ones(n_blocks, bool)
        if reg.regularize:
            over = np.zeros(n_blocks * block)
            over[:n_hid] = np.maximum(rk.read_trace(trace_rec_post, reg.fp_loc_trec) - reg.regul_f0, 0)
            reg_zero = ~(over.reshape(n_blocks, block) != 0).any(axis=1)
        for role in ("input", "recurrent"):
            syn = self.by_role.get(role)
            if syn is None:
                continue
            regs = syn.rule.registers
            fp = regs.fp_loc_tinp if role == "input" else regs.fp_loc_trec
            trace_pre = syn.engine.state["x1"][b]
            drawn = ~((rk.read_trace(trace_pre, fp) == 0)[None, :] & reg_zero[:, None])  # [block, pre], in draw order
            rand = np.zeros((n_blocks * block, trace_pre.size), np.int64)
            blk, pre = np.nonzero(drawn)
            if blk.size:
                nums = chip.weight_numbers(f"weights_{role}", b, blk.size)  # [draws, 16]
                rand[blk[:, None] * block + np.arange(block), pre[:, None]] = nums
            w = syn.engine.state["w"][b]
            if self.nearest:  # round to nearest: a step where the update is at least half an LSB
                rand[...] = 1 << (wd.hidden - 1)
            # a mix of knobs makes L float (float weights or error) or the traces: p is float64
            p, enable = rk.float_prob(trace_pre, fp, L, h, trace_rec_post, regs)
            new = rk.float_step(w, p, regs.lr_p, regs.lr_r, rand[:n_hid], wd.hidden, wd.weight, enable)
            written = drawn[np.arange(n_hid) // block]  # [post, pre]: only the words written change
            new = np.where(written, new, w)
            if role == "recurrent":  # a written recurrent word sets its autapse to 0 (srnn.v)
                diag = np.arange(n_hid)
                new[diag[written[diag, diag]], diag[written[diag, diag]]] = 0
            syn.engine.state["w"][b] = new
        if self.nearest:
            rand_out[...] = 1 << (wd.output - 1)
        oreg = out.rule.registers
        p = rk.float_output_prob(err, t_out, oreg, wd.output)  # integer p where only the weights are float
        out.engine.state["w"][b] = rk.float_step(w_out, p, oreg.lr_p_out, oreg.lr_r_out, rand_out, wd.output, wd.weight)


# -- the whole core, as the chip runs it ---------------------------------------------------------
# SPI configuration registers (src/spi_slave.v: name -> address), as src/tbench.sv programs them
SPI_ADDRESSES = {
    "EN_CONF": 0, "GET_TAR_REQ_OUT": 3, "RST_MODE": 8, "DO_EPROP": 9, "LOCAL_TICK": 10, "ERROR_HALT": 11,
    "FP_LOC_WINP": 12, "FP_LOC_WREC": 13, "FP_LOC_WOUT": 14, "FP_LOC_TINP": 15, "FP_LOC_TREC": 16, "FP_LOC_TOUT": 17,
    "LEARN_SIG_SCALE": 18, "REGUL_MODE": 19, "REGUL_W": 20, "EN_STOCH_ROUND": 21, "SRAM_SPEEDMODE": 22,
    "TIMING_MODE": 23, "REGRESSION": 25, "SINGLE_LABEL": 26, "NO_OUT_ACT": 27, "SEND_PER_TIMESTEP": 30,
    "SEND_LABEL_ONLY": 31, "NOISE_EN": 32, "FORCE_TRACES": 33, "CYCLES_PER_TICK": 64, "KAPPA": 69,
    "THR_H_0": 70, "THR_H_1": 71, "THR_H_2": 72, "THR_H_3": 73, "H_0": 74, "H_1": 75, "H_2": 76, "H_3": 77, "H_4": 78,
    "LR_R_WINP": 79, "LR_P_WINP": 80, "LR_R_WREC": 81, "LR_P_WREC": 82, "LR_R_WOUT": 83, "LR_P_WOUT": 84,
    "SEED_INP": 85, "SEED_REC": 86, "SEED_OUT": 87, "SEED_STRND_NEUR": 88, "SEED_STRND_ONEUR": 89,
    "SEED_STRND_TINP": 90, "SEED_STRND_TREC": 91, "SEED_STRND_TOUT": 92, "SEED_NOISE_NEUR": 93,
    "NUM_INP_NEUR": 94, "NUM_REC_NEUR": 95, "NUM_OUT_NEUR": 96, "REGUL_F0": 98, "REGUL_K_INP_R": 99,
    "REGUL_K_INP_P": 100, "REGUL_K_REC_R": 101, "REGUL_K_REC_P": 102, "REGUL_K_MUL": 103, "NOISE_STR": 104,
}  # fmt: skip
ALPHA_CONF_ADDRESS = 65  # 128 bits over 65..68: per neuron word, the leak's top nibble is 8 (set) or 7
SEEDS = {  # SPI seed register -> LFSR role (paired roles: instance 1 in the upper 15 bits)
    "SEED_INP": "weights_input", "SEED_REC": "weights_recurrent", "SEED_OUT": "weights_output",
    "SEED_STRND_NEUR": "membrane", "SEED_STRND_ONEUR": "readout", "SEED_STRND_TINP": "trace_input",
    "SEED_STRND_TREC": "trace_recurrent", "SEED_STRND_TOUT": "trace_output",
}  # fmt: skip
# the kernel's LFSR columns (kr.L_*): role and instance
LFSR_COLUMNS = (("membrane", 0), ("membrane", 1), ("readout", 0), ("trace_input", 0), ("trace_input", 1),
                ("trace_recurrent", 0), ("trace_recurrent", 1), ("trace_output", 0), ("trace_output", 1),
                ("weights_input", 0), ("weights_recurrent", 0), ("weights_output", 0))  # fmt: skip
TABLE_ROLES = ("membrane", "readout", "trace_input", "trace_recurrent", "trace_output", "weights_input",
               "weights_recurrent", "weights_output")  # kr.T_*  # fmt: skip
DO_EPROP_BITS = {"input": 1, "recurrent": 2, "output": 4}


class ReckonShapeError(ValueError):
    """A Program that is not one ReckOn core (the reason is the message)."""


class ReckonChip:
    """The chip image of a ReckOn Program: its SPI registers, its dimensions and its weights in
    the SRAMs' layout (``srnn.v``: 16 posts of 8-bit weights per 128-bit word).

    One core: the input channels (one ``SpikeInput`` population), the recurrent LIF neurons
    (one population) and up to 16 leaky-integrator readouts (one ``LI`` population);
    projections inputs -> recurrent, recurrent -> recurrent and recurrent -> readout, all
    plastic (ReckOn's e-prop) or all static. Tick mapping and padding: see :class:`ReckonCore`."""

    def __init__(self, program):
        prof = program.profile
        pops = {q.model: [p for p in program.populations if p.model == q.model] for q in program.populations}
        if sorted(pops) not in (["LIF", "SpikeInput"], ["LI", "LIF", "SpikeInput"]) or any(
            len(v) != 1 for v in pops.values()
        ):
            raise ReckonShapeError("reckon's core: one SpikeInput, one LIF and at most one LI population")
        self.inp, self.hid = pops["SpikeInput"][0], pops["LIF"][0]
        self.out = pops["LI"][0] if "LI" in pops else None
        ends = {(self.inp.name, self.hid.name): "input", (self.hid.name, self.hid.name): "recurrent"}
        if self.out is not None:
            ends[(self.hid.name, self.out.name)] = "output"
        self.proj = {}
        for pr in program.projections:
            role = ends.get((pr.pre, pr.post))
            if role is None or role in self.proj:
                raise ReckonShapeError(f"projection {pr.name!r} is not one of reckon's three weight memories")
            self.proj[role] = pr
        if "input" not in self.proj:
            raise ReckonShapeError("reckon's core needs the projection inputs -> recurrent")
        learning = [pr.learning for pr in self.proj.values()]
        if any(isinstance(x, rk.ReckonLearning) for x in learning) and not all(
            isinstance(x, rk.ReckonLearning) for x in learning
        ):
            raise ReckonShapeError("reckon learns with all three weight memories or none")
        self.learns = all(isinstance(x, rk.ReckonLearning) for x in learning) and "output" in self.proj
        self.n_in, self.n_rec = self.inp.size, self.hid.size
        self.n_out = self.out.size if self.out is not None else 0
        n_max = max(self.n_in, self.n_rec, self.n_out)
        # srnn.v writes a neuron word on the odd STEP cycles up to NUM_RECOUT = n_max - 1: with an odd
        # n_max the last word would never be stepped, so the image adds phantom input channels (which
        # never fire) up to an even count
        self.n_in_chip = self.n_in if n_max % 2 == 0 else n_max + 1
        self.profile = prof
        self.n_out_chip = int(prof.capacity.output_neurons)  # readout slots (one per STEP cycle 0..15)
        self.params = self._chip_params()
        block = self.params["posts_per_word"]
        self.n_post = block * ((self.n_rec - 1) // block + 1)  # posts in whole SRAM words
        self.spi = self._registers()
        self.vector = self._vector()
        self.learn_bits = sum(DO_EPROP_BITS[r] for r in self.proj) if self.learns else 0
        self.scale = 2.0 ** self.out.scale_exp if self.out is not None else 1.0

    # -- registers
    CHIP_PARAMS = ("update_prob_bits", "posts_per_word", "readout_leak_bits", "error_bits", "leak_top_nibble",
                   "trace_bits", "learning_signal_bits", "target_bits", "trace_impulse", "learning_signal_shift",
                   "hard_sigmoid_one", "regul_mul_frac_bits")  # fmt: skip

    def _chip_params(self) -> dict[str, Any]:
        """The chip constants the core needs from the profile's ``learning.params`` (required keys)."""
        from ..errors import Problem
        from .emulator import EmulatorError

        params = self.profile.learning.params
        missing = [k for k in self.CHIP_PARAMS if k not in params]
        if missing:
            raise EmulatorError([Problem(f"profile {self.profile.name!r}", f"learning.params lacks {missing}")])
        out = {k: params[k] for k in self.CHIP_PARAMS}
        draw = Lfsr.from_source(next(s for s in self.profile.random_sources.values() if s.role == "weights_input"))
        if draw.words_per_draw != out["posts_per_word"] or self.profile.formats.weight.mantissa_bits != 8:
            raise EmulatorError([Problem(f"profile {self.profile.name!r}", "posts_per_word must equal the weight "
                                         "LFSR's numbers per draw, and weights are 8-bit")])  # fmt: skip
        return out

    def _registers(self) -> dict[str, int]:
        """Every SPI register the core reads (src/spi_slave.v names), from the Program and the
        lowered learning registers; control registers as src/tbench.sv sets them."""
        from ..errors import Problem
        from .emulator import EmulatorError

        prof, hid = self.profile, self.hid.params
        alpha, kappa = int(hid["voltage_decay"]), self._kappa()
        one = 1 << (prof.formats.decay.bits - 1)
        lo, hi = (int(n) << (prof.formats.decay.bits - 4) for n in self.params["leak_top_nibble"])
        hi += (1 << (prof.formats.decay.bits - 4)) - 1
        if not lo <= alpha <= hi:
            top = self.params["leak_top_nibble"]
            msg = f"reckon's is {lo:#x}..{hi:#x} (a 12-bit register under a nibble of {top[0]} or {top[-1]})"
            msg = f"leak {alpha / one:.4f} (code {alpha}): {msg}"
            raise EmulatorError([Problem(f"population {self.hid.name!r}", msg)])
        thr = int(hid["threshold"])
        if not 1 <= thr <= 2 ** (prof.formats.voltage.bits - 1) - 1:
            top = 2 ** (prof.formats.voltage.bits - 1) - 1
            raise EmulatorError([Problem(f"population {self.hid.name!r}", f"threshold {thr} outside 1 .. {top}")])
        reg = {
            "RST_MODE": int(hid.get("reset", "zero") == "zero"), "LOCAL_TICK": 0, "ERROR_HALT": 1,
            "EN_STOCH_ROUND": 1, "SRAM_SPEEDMODE": 0, "TIMING_MODE": 0, "SINGLE_LABEL": 0, "SEND_PER_TIMESTEP": 0,
            "SEND_LABEL_ONLY": 1, "NOISE_EN": 0, "FORCE_TRACES": 0, "CYCLES_PER_TICK": 0, "NOISE_STR": 0,
            "SEED_NOISE_NEUR": 0xFF0, "KAPPA": kappa, "GET_TAR_REQ_OUT": 1,
            "NUM_INP_NEUR": self.n_in_chip - 1, "NUM_REC_NEUR": self.n_rec - 1, "NUM_OUT_NEUR": max(self.n_out, 1) - 1,
        }  # fmt: skip
        for role, name in (("input", "WINP"), ("recurrent", "WREC"), ("output", "WOUT")):
            pr = self.proj.get(role)
            reg[f"FP_LOC_{name}"] = int(pr.weight_exp) if pr is not None else 0
        reg.update(self._learning_registers())
        self.alpha, self.thr = alpha, thr
        return reg

    def _kappa(self) -> int:
        """The readouts' 8-bit leak KAPPA (1.7) from their compiled 16-bit decay (1.15)."""
        bits = int(self.params["readout_leak_bits"])
        if self.out is None:
            return 1 << (bits - 1)
        return int(round(int(self.out.params["voltage_decay"]) / 2 ** (self.profile.formats.decay.bits - bits)))

    def _learning_registers(self) -> dict[str, int]:
        """The learning registers: the output projection's for the shared ones, each role's
        own learning rate and regularization."""
        out = self.proj.get("output")
        base = out.learning.registers if self.learns else rk.ReckonRegisters()
        reg = {
            "FP_LOC_TINP": base.fp_loc_tinp, "FP_LOC_TREC": base.fp_loc_trec, "FP_LOC_TOUT": base.fp_loc_tout,
            "LEARN_SIG_SCALE": base.learn_sig_scale, "REGUL_F0": base.regul_f0, "REGUL_K_MUL": base.regul_k_mul,
            "REGRESSION": int(base.regression), "NO_OUT_ACT": int(not base.out_act),
            "LR_R_WOUT": base.lr_r_out, "LR_P_WOUT": base.lr_p_out,
        }  # fmt: skip
        reg.update({f"THR_H_{i}": int(v) for i, v in enumerate(base.thr_h)})
        reg.update({f"H_{i}": int(v) for i, v in enumerate(base.h_values)})
        regul_w, mode = 0, 0
        for role, tag, bit in (("input", "INP", 1), ("recurrent", "REC", 2)):
            r = self.proj[role].learning.registers if self.learns and role in self.proj else rk.ReckonRegisters()
            name = "WINP" if role == "input" else "WREC"
            reg[f"LR_R_{name}"], reg[f"LR_P_{name}"] = r.lr_r, r.lr_p
            reg[f"REGUL_K_{tag}_R"], reg[f"REGUL_K_{tag}_P"] = r.regul_k_r, r.regul_k_p
            if self.learns and role in self.proj and r.regularize:
                regul_w |= bit
                mode |= r.regul_mode
        if mode & 6 == 6:
            from ..errors import Problem
            from .emulator import EmulatorError

            msg = "bits 2 and 1 together make the chip learn without a target, which the emulator does not model"
            raise EmulatorError([Problem(f"projection {out.name!r}", f"REGUL_MODE {mode:#05b}: {msg}")])
        reg["REGUL_W"], reg["REGUL_MODE"] = regul_w, mode
        return reg

    def _vector(self) -> np.ndarray:
        """The kernel's register vector (:data:`neurocomp.kernels.reckon` ``R_*``)."""
        s, prof = self.spi, self.profile
        tb, imp = prof.learning.params["trace_bits"], self.params["trace_impulse"]
        v = np.zeros(kr.N_REGISTERS, np.int64)
        vals = {
            kr.R_N_IN: self.n_in_chip, kr.R_N_REC: self.n_rec, kr.R_N_OUT: self.n_out,
            kr.R_FP_WINP: s["FP_LOC_WINP"], kr.R_FP_WREC: s["FP_LOC_WREC"], kr.R_FP_WOUT: s["FP_LOC_WOUT"],
            kr.R_FP_TINP: s["FP_LOC_TINP"], kr.R_FP_TREC: s["FP_LOC_TREC"], kr.R_FP_TOUT: s["FP_LOC_TOUT"],
            kr.R_SIG_SCALE: s["LEARN_SIG_SCALE"], kr.R_SIG_BITS: int(prof.learning.params["learning_signal_bits"]),
            kr.R_REGUL_MODE: s["REGUL_MODE"], kr.R_REGUL_W: s["REGUL_W"], kr.R_RST_ZERO: s["RST_MODE"],
            kr.R_REGRESSION: s["REGRESSION"], kr.R_OUT_ACT: 1 - s["NO_OUT_ACT"], kr.R_ALPHA: self.alpha,
            kr.R_KAPPA: s["KAPPA"], kr.R_THR: self.thr, kr.R_F0: s["REGUL_F0"],
            kr.R_LR_R_WINP: s["LR_R_WINP"], kr.R_LR_P_WINP: s["LR_P_WINP"], kr.R_LR_R_WREC: s["LR_R_WREC"],
            kr.R_LR_P_WREC: s["LR_P_WREC"], kr.R_LR_R_WOUT: s["LR_R_WOUT"], kr.R_LR_P_WOUT: s["LR_P_WOUT"],
            kr.R_K_INP_R: s["REGUL_K_INP_R"], kr.R_K_INP_P: s["REGUL_K_INP_P"], kr.R_K_REC_R: s["REGUL_K_REC_R"],
            kr.R_K_REC_P: s["REGUL_K_REC_P"], kr.R_K_MUL: s["REGUL_K_MUL"],
            kr.R_BITS_TINP: int(tb["input"]), kr.R_BITS_TREC: int(tb["recurrent"]), kr.R_BITS_TOUT: int(tb["output"]),
            kr.R_IMP_INP: imp["input"] << s["FP_LOC_TINP"], kr.R_IMP_REC: imp["recurrent"] << s["FP_LOC_TREC"],
            kr.R_IMP_OUT: imp["output"] << s["FP_LOC_TOUT"], kr.R_W_BITS: prof.formats.weight.mantissa_bits,
            kr.R_ALPHA_ONE: 1 << (prof.formats.decay.bits - 1),
            kr.R_KAPPA_ONE: 1 << (int(self.params["readout_leak_bits"]) - 1),
            kr.R_HID_BITS: int(self.params["update_prob_bits"]["hidden"]),
            kr.R_OUT_BITS: int(self.params["update_prob_bits"]["output"]),
            kr.R_ERR_BITS: int(self.params["error_bits"]), kr.R_BLOCK: int(self.params["posts_per_word"]),
            kr.R_V_BITS: prof.formats.voltage.bits, kr.R_ALPHA_FRAC: prof.formats.decay.bits - 1,
            kr.R_KAPPA_FRAC: int(self.params["readout_leak_bits"]) - 1,
            kr.R_SIG_SHIFT: int(self.params["learning_signal_shift"]),
            kr.R_SIGMOID_ONE: int(self.params["hard_sigmoid_one"]),
            kr.R_MUL_FRAC: int(self.params["regul_mul_frac_bits"]),
        }  # fmt: skip
        for i, val in vals.items():
            v[i] = val
        v[kr.R_THR_H : kr.R_THR_H + 4] = [s[f"THR_H_{i}"] for i in range(4)]
        v[kr.R_H : kr.R_H + 5] = [s[f"H_{i}"] for i in range(5)]
        return v

    # -- weights in SRAM layout
    def sram(self, weights: Mapping[str, np.ndarray], batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``winp[b, pre, post]``, ``wrec[b, pre, post]`` and ``wout[b, pre, out]`` (int64, padded
        with zeros to whole words) from ``{role: [batch, post, pre]}`` weights."""
        winp = np.zeros((batch, self.n_in_chip, self.n_post), np.int64)
        wrec = np.zeros((batch, self.n_rec, self.n_post), np.int64)
        wout = np.zeros((batch, self.n_rec, self.n_out_chip), np.int64)
        if "input" in weights:
            winp[:, : self.n_in, : self.n_rec] = np.swapaxes(weights["input"], 1, 2)
        if "recurrent" in weights:
            wrec[:, :, : self.n_rec] = np.swapaxes(weights["recurrent"], 1, 2)
        if "output" in weights:
            wout[:, :, : self.n_out] = np.swapaxes(weights["output"], 1, 2)
        return winp, wrec, wout

    def targets(self, target, steps: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Per step and trial: the 16-bit targets the host sends (regression: ``round(target *
        2**scale_exp)`` saturated; classification: the one-hot row's label in entry 0) and
        whether one is valid (TARGET_VALID: no NaN in the row)."""
        tar = np.zeros((steps, b, self.n_out_chip), np.int64)
        if target is None:
            return tar, np.zeros((steps, b), bool)
        t = np.asarray(target, np.float64)[:steps]
        t = np.broadcast_to(t, (steps, b, t.shape[-1]))
        valid = ~np.isnan(t).any(axis=-1)
        t = np.nan_to_num(t)
        n = t.shape[-1]
        if self.spi["REGRESSION"]:
            top = 2 ** (int(self.params["target_bits"]) - 1)
            tar[..., :n] = np.clip(np.round(t * self.scale), -top, top - 1)
        else:
            tar[..., 0] = np.argmax(t, axis=-1)
        return tar, valid

    def neuron_words(self) -> int:
        """Neuron SRAM words the core uses (two neurons each)."""
        return max(self.n_in_chip, self.n_rec, self.n_out) // 2


class ReckonCore:
    """A ReckOn Program run as the chip runs it (:func:`neurocomp.kernels.reckon.run_core`, a
    whole run per compiled call, the trials of a batch in parallel), exact against the RTL.

    **Tick mapping.** The chip steps on its ``TIME_TICK`` input. A sample (one trial) of ``T``
    emulator steps is ``T + 2`` ticks with ``SAMPLE`` high until the last: tick 1 starts the
    sample and updates nothing; tick ``t + 1`` is emulator step ``t``; the last tick (``SAMPLE``
    low) ends it. The inputs of step ``t`` are the AER events sent after tick ``t - 1`` (before
    tick ``t``), integrated in the event phase that follows tick ``t``; the neuron update of step
    ``t`` is tick ``t + 1``'s ``STEP`` phase, and its learning (a valid target of step ``t``) that
    tick's ``EPROP`` phase. The state after step ``t`` is the chip's after that phase. The last
    tick runs one more ``STEP`` (its rounding numbers drawn) whose result the chip discards:
    :meth:`end_sample` (called by ``Emulator.reset(keep_weights=True)``) draws them.

    **Per step** (srnn.v): the events, pre neuron by pre neuron in index order, input and
    recurrent weight of the same index summed, then added to each membrane with 16-bit
    saturation (one add per pre neuron: saturation order matters near the rails); the readouts
    add the output weights of each spiking neuron the same way. Then ``STEP``: a neuron spikes
    where its membrane (after the events, before the leak) is >= the threshold; the membrane
    leaks with stochastic rounding and is reset (to 0, or by subtracting the threshold from the
    leaked value); the readouts leak; the traces decay (a trace's impulse, added in the event
    phase, is decayed once before the learning reads it). Then ``EPROP``: the error reads the
    readout after its leak; the pseudo-derivative reads the membrane after the leak and reset.

    State between runs lives in the emulator's usual places (``v``, ``spikes``, the plastic
    projections' ``w`` and ``x1``, the LFSR registers), so checkpoints, ``set_weights`` and
    recordings are unchanged; neuron slots and weights the image adds (padding to whole SRAM
    words) hold zeros that the chip keeps at zero."""

    def __init__(self, chip: ReckonChip, chip_random: ReckonRandom):
        self.chip = chip
        self.rand = chip_random
        self.words = tuple(chip_random.tables[r][0] for r in TABLE_ROLES)
        self.nexts = tuple(chip_random.tables[r][1] for r in TABLE_ROLES)
        n_max = max(chip.n_in_chip, chip.n_rec, chip.n_out)
        self.slots = 2 * (n_max // 2)

    # -- LFSR registers between the emulator's dict and the kernel's columns
    def _lfsr_in(self) -> np.ndarray:
        regs = self.rand.regs
        return np.ascontiguousarray(np.stack([regs[role][:, i] for role, i in LFSR_COLUMNS], axis=1), np.int64)

    def _lfsr_out(self, cols: np.ndarray) -> None:
        for c, (role, i) in enumerate(LFSR_COLUMNS):
            self.rand.regs[role][:, i] = cols[:, c]

    def end_sample(self) -> None:
        """The last tick of a sample (``SAMPLE`` low): a ``STEP`` whose result is discarded; its
        rounding numbers advance the LFSRs (the membrane pair unless the leak is 1, the readout's
        unless KAPPA is 1)."""
        r, words = self.chip.vector, self.slots // 2
        n_max = max(self.chip.n_in_chip, self.chip.n_rec, self.chip.n_out)
        draws = {"trace_input": words, "trace_recurrent": words, "trace_output": words,
                 "membrane": words if r[kr.R_ALPHA] != r[kr.R_ALPHA_ONE] else 0,
                 "readout": min(self.chip.n_out_chip, n_max) if r[kr.R_KAPPA] != r[kr.R_KAPPA_ONE] else 0}  # fmt: skip
        for role, n in draws.items():
            self.rand.regs[role] = self.rand.gens[role].advance(self.rand.regs[role], n)

    # -- a run
    def run(self, emu, steps: int, given: Mapping[str, np.ndarray], record, learn: bool) -> dict[str, np.ndarray]:
        """``steps`` steps of every trial; returns the recordings the emulator's ``run`` returns."""
        chip, b = self.chip, emu.batch
        hid, out, inp = chip.hid.name, chip.out.name if chip.out is not None else None, chip.inp.name
        u, z = (np.zeros((b, self.slots), np.int64) for _ in range(2))
        u[:, : chip.n_rec] = emu.pops[hid].state["v"]
        z[:, : chip.n_rec] = emu.pops[hid].state["spikes"]
        oneur = np.zeros((b, chip.n_out_chip), np.int64)
        if out is not None:
            oneur[:, : chip.n_out] = emu.pops[out].state["v"]
        traces = [np.zeros((b, self.slots), np.int64) for _ in range(3)]
        weights = {}
        for k, role in enumerate(("input", "recurrent", "output")):
            pr = chip.proj.get(role)
            if pr is None:
                continue
            syn = emu.plastic.get(pr.name)
            if syn is not None:
                weights[role] = syn.engine.state["w"]
                x1 = syn.engine.state["x1"]
                traces[k][:, : x1.shape[1]] = x1
            else:
                weights[role] = np.broadcast_to(chip_mantissas(pr, emu.profile), (b,) + pr.weights.shape)
        winp, wrec, wout = chip.sram(weights, b)
        x = np.zeros((steps, b, chip.n_in), np.uint8)
        x[...] = emu._input_chunk(inp, emu.pops[inp], given, 0, steps)
        tar, valid = chip.targets(given.get(f"{out}/target"), steps, b)
        do_eprop = chip.learn_bits if learn else 0
        recs = self._recordings(emu, record, steps)
        lfsr = self._lfsr_in()
        core = kr.run_core if b > 1 else kr.run_core_serial  # one trial: no thread pool to wake
        call_parallel(core, chip.vector, self.words, self.nexts, lfsr, u, *traces, z, oneur, winp, wrec, wout, x,
                      tar, valid, do_eprop, tuple(recs.values()))  # fmt: skip
        self._lfsr_out(lfsr)
        emu.pops[hid].state["v"][...] = u[:, : chip.n_rec]
        emu.pops[hid].state["spikes"][...] = z[:, : chip.n_rec]
        emu.pops[inp].state["spikes"][...] = x[-1] if steps else emu.pops[inp].state["spikes"]
        if out is not None:
            emu.pops[out].state["v"][...] = oneur[:, : chip.n_out]
        self._store(emu, winp, wrec, wout, traces)
        emu.t += steps
        return self._outputs(emu, recs, x, record)

    def _recordings(self, emu, record, steps: int) -> dict[str, np.ndarray]:
        """The kernel's recording arrays (``z, u, oneur, winp, wrec, wout, ti, tr, to``; empty where
        not recorded): spikes as uint8 and membranes in the emulator's recording dtype (what
        ``run`` returns, with no copy), weights and traces int64."""
        chip, b = self.chip, emu.batch
        want = {
            "z": "spikes" in record, "u": "v" in record, "o": "v" in record and chip.out is not None,
            "wi": "w" in record and "input" in chip.proj and chip.proj["input"].name in emu.plastic,
            "wr": "w" in record and "recurrent" in chip.proj and chip.proj["recurrent"].name in emu.plastic,
            "wo": "w" in record and "output" in chip.proj and chip.proj["output"].name in emu.plastic,
            "ti": "x1" in record and "input" in chip.proj and chip.proj["input"].name in emu.plastic,
            "tr": "x1" in record and "recurrent" in chip.proj and chip.proj["recurrent"].name in emu.plastic,
            "to": "x1" in record and "output" in chip.proj and chip.proj["output"].name in emu.plastic,
        }  # fmt: skip
        shapes = {"z": (chip.n_rec,), "u": (chip.n_rec,), "o": (chip.n_out,), "wi": (chip.n_in, chip.n_rec),
                  "wr": (chip.n_rec, chip.n_rec), "wo": (chip.n_rec, chip.n_out), "ti": (chip.n_in,),
                  "tr": (chip.n_rec,), "to": (chip.n_rec,)}  # fmt: skip
        rec = emu._record_dtype()
        dtypes = {"z": np.uint8, "u": rec, "o": rec}
        return {k: np.zeros((steps, b) + shapes[k] if want[k] else (0, 0) + (1,) * len(shapes[k]),
                            dtypes.get(k, np.int64)) for k in shapes}  # fmt: skip

    def _store(self, emu, winp, wrec, wout, traces) -> None:
        """The learned weights and traces back into the plastic projections' state."""
        chip = self.chip
        arrays = {"input": (winp[:, : chip.n_in, : chip.n_rec], traces[0][:, : chip.n_in]),
                  "recurrent": (wrec[:, :, : chip.n_rec], traces[1][:, : chip.n_rec]),
                  "output": (wout[:, :, : chip.n_out], traces[2][:, : chip.n_rec])}  # fmt: skip
        for role, (w, x1) in arrays.items():
            pr = chip.proj.get(role)
            syn = emu.plastic.get(pr.name) if pr is not None else None
            if syn is None:
                continue
            syn.engine.state["w"] = np.ascontiguousarray(np.swapaxes(w, 1, 2))
            syn.engine.state["x1"] = np.ascontiguousarray(x1)

    def _outputs(self, emu, recs, x, record) -> dict[str, np.ndarray]:
        """``{"<population>/<variable>": [steps, batch, n]}`` and ``{"<projection>/<variable>": ...}``
        as the emulator's ``run`` returns them."""
        chip, out = self.chip, {}
        rec_dtype = emu._record_dtype()
        if "spikes" in record:
            out[f"{chip.inp.name}/spikes"] = x.copy()
            out[f"{chip.hid.name}/spikes"] = recs["z"]
            if chip.out is not None:
                out[f"{chip.out.name}/spikes"] = np.zeros(recs["o"].shape[:2] + (chip.n_out,), np.uint8)
        if "v" in record:
            out[f"{chip.hid.name}/v"] = recs["u"]
            if chip.out is not None:
                out[f"{chip.out.name}/v"] = recs["o"]
        if "u" in record:
            for p in (chip.hid, chip.out):
                if p is not None:
                    out[f"{p.name}/u"] = np.zeros((x.shape[0], emu.batch, p.size), rec_dtype)
        for role, w, tr in (("input", "wi", "ti"), ("recurrent", "wr", "tr"), ("output", "wo", "to")):
            pr = chip.proj.get(role)
            if pr is None or pr.name not in emu.plastic:
                continue
            if recs[w].size:
                out[f"{pr.name}/w"] = np.ascontiguousarray(np.swapaxes(recs[w], 2, 3))
            if recs[tr].size:
                out[f"{pr.name}/x1"] = recs[tr]
        return out
