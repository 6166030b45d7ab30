"""Unfolded Fibonacci LFSRs: the pseudo-random sources of a chip's stochastic rounding and
stochastic weight updates (ReckOn's ``src/lfsr/*.v``, instantiated in ``srnn.v``).

A Fibonacci LFSR with taps ``[L, L - a]`` produces the bit sequence

    s[n] = s[n - a] ^ s[n - L]            (feedback polynomial x^L + x^(L-a) + 1)

Unfolded by a factor ``K`` (the "outputs" of one draw), one enabled clock cycle yields ``K``
consecutive sequence bits ``out[0..K-1] = s[N..N+K-1]`` (``out[0]`` is the earliest; a
``w``-bit random number ``m`` of the draw is ``out[w*m .. w*m + w - 1]``, least significant
bit first, as ``srnn.v`` slices ``rand[32*n+31:32*n]``), and the ``L``-bit register holds the
sequence bits the next cycle needs. Where each register bit sits in the sequence depends on
how the generator laid the unfolded circuit out; with ``N`` the first bit of the next draw:

* ``window`` (``K >= L``; ReckOn's weight-update and 15-bit rounding LFSRs): register bit
  ``j`` holds ``s[N + j]`` for ``j < a`` and ``s[N + j - L]`` for ``j >= a``;
* ``chained`` (``L = 2K + 1``, ``a = 1``; ReckOn's 7-bit rounding LFSRs, whose delays span
  two draws): bit 0 holds ``s[N]``, bit ``2k + 1`` holds ``s[N - 2K + k]`` and bit ``2k + 2``
  holds ``s[N - K + k]``.

A seed is a register value (what the chip's SPI ``SEED`` registers load). Everything is
linear over GF(2): a draw's words and the next register are the XOR of those of the
register's set bits, which :class:`Lfsr` precomputes from the bitwise description above
(:meth:`Lfsr.step_bits`) for every value of each 6-bit chunk of the register, so that a
compiled draw (:func:`neurocomp.kernels.reckon.lfsr_draw`) is one table row per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from ..kernels.reckon import CHUNK_BITS, lfsr_draw

LAYOUTS = ("window", "chained")


def register_offsets(bits: int, a: int, outputs: int, layout: str) -> list[int]:
    """Sequence position of each register bit, relative to the first bit of the next draw."""
    if layout == "window":
        return [j if j < a else j - bits for j in range(bits)]
    if layout == "chained":
        k = outputs
        off = [0] * bits
        for i in range(k):
            off[2 * i + 1] = i - 2 * k
            off[2 * i + 2] = i - k
        return off
    raise ValueError(f"unknown LFSR layout {layout!r} (known: {', '.join(LAYOUTS)})")


def layout_problems(bits: int, taps: tuple[int, ...], outputs: int, word_bits: int, layout: str) -> list[str]:
    """What makes an LFSR description unusable (checked by the profile schema)."""
    out = []
    if len(taps) != 2 or taps[0] != bits or not 0 < taps[1] < bits:
        out.append(f"taps {list(taps)}: expected [bits, t] with 0 < t < bits = {bits} (a trinomial x^L + x^t + 1)")
        return out
    a = bits - taps[1]
    if outputs % word_bits:
        out.append(f"outputs {outputs} is not a whole number of {word_bits}-bit words")
    if layout == "window" and outputs < bits:
        out.append(f"layout 'window' needs outputs >= bits ({outputs} < {bits})")
    if layout == "chained" and (a != 1 or bits != 2 * outputs + 1):
        out.append(f"layout 'chained' needs taps [L, L-1] and L = 2 * outputs + 1 (L = {bits}, outputs {outputs})")
    if not out and not is_maximal_length(bits, taps[1]):
        out.append(
            f"taps {list(taps)} do not give a maximal-length sequence (x^{bits} + x^{taps[1]} + 1 is not primitive)"
        )
    return out


# -- maximal length: x^L + x^t + 1 primitive over GF(2) ------------------------------------------
def _polymulmod(a: int, b: int, mod: int, deg: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a >> deg & 1:
            a ^= mod
    return out


def _polypow(e: int, mod: int, deg: int) -> int:
    result, base = 1, 2  # the polynomial x
    while e:
        if e & 1:
            result = _polymulmod(result, base, mod, deg)
        base = _polymulmod(base, base, mod, deg)
        e >>= 1
    return result


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        if n % p == 0:
            out.append(p)
            while n % p == 0:
                n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def is_maximal_length(bits: int, t: int) -> bool:
    """Whether the sequence of ``x^bits + x^t + 1`` has period ``2**bits - 1``: ``x`` has that
    order modulo the polynomial (checked against every prime factor of the period)."""
    mod = (1 << bits) | (1 << t) | 1
    period = (1 << bits) - 1
    if _polypow(period, mod, bits) != 1:
        return False
    return all(_polypow(period // q, mod, bits) != 1 for q in _prime_factors(period))


# -- the generator ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lfsr:
    """One unfolded LFSR (see the module docstring): ``bits`` L, ``taps`` ``[L, L - a]``,
    ``outputs`` K bits per draw, cut into ``word_bits``-bit random numbers."""

    bits: int
    taps: tuple[int, int]
    outputs: int
    word_bits: int
    layout: str = "window"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_source(cls, src) -> Lfsr:
        """From a profile's ``random_sources`` entry (one shared, cached instance per description)."""
        return _lfsr(
            int(src.bits), (int(src.taps[0]), int(src.taps[1])), int(src.outputs), int(src.word_bits), src.layout
        )

    @property
    def words_per_draw(self) -> int:
        return self.outputs // self.word_bits

    # -- reference transition, bit by bit (builds the matrices; also the scalar definition)
    def step_bits(self, reg: int) -> tuple[list[int], int]:
        """One draw from register value ``reg``: ``(out bits, next register)``."""
        L, a, K = self.bits, self.bits - self.taps[1], self.outputs
        off = register_offsets(L, a, K, self.layout)
        seq = {o: (reg >> j) & 1 for j, o in enumerate(off)}
        for n in range(min(off) + L, K + max(off) + 1):
            seq[n] = seq[n - a] ^ seq[n - L]
        nxt = sum(seq[K + o] << j for j, o in enumerate(off))
        return [seq[i] for i in range(K)], nxt

    @cached_property
    def _unit(self) -> tuple[np.ndarray, np.ndarray]:
        """The draw of each unit register ``1 << j``: its random words ``[L, words]`` and its
        next register ``[L]``. Everything is linear over GF(2), so a draw from any register
        is the XOR of those of its set bits."""
        words, nxt = [], []
        for j in range(self.bits):
            out, n = self.step_bits(1 << j)
            words.append(self.pack(np.array(out)))
            nxt.append(n)
        return np.array(words, dtype=np.int64), np.array(nxt, dtype=np.int64)

    def _t_power(self, e: int) -> np.ndarray:
        """``T^e`` as the images of the unit registers ``[L]`` (cached)."""
        key = ("T", e)
        if key not in self._cache:
            if e == 1:
                self._cache[key] = self._unit[1]
            else:
                half = self._t_power(e // 2)
                m = self._apply(half, half)
                self._cache[key] = self._apply(self._unit[1], m) if e % 2 else m
        return self._cache[key]

    def _bits(self, regs: np.ndarray) -> np.ndarray:
        return (np.asarray(regs, dtype=np.int64)[..., None] >> np.arange(self.bits)) & 1

    def _apply(self, images: np.ndarray, regs: np.ndarray) -> np.ndarray:
        """The linear map given by the unit ``images`` ``[L]`` applied to registers ``regs``."""
        return np.bitwise_xor.reduce(self._bits(regs) * images, axis=-1)

    def pack(self, out_bits: np.ndarray) -> np.ndarray:
        """Output bits ``[..., K]`` -> random words ``[..., K / word_bits]`` (int64, LSB first)."""
        w = self.word_bits
        b = np.asarray(out_bits, dtype=np.int64).reshape(np.shape(out_bits)[:-1] + (self.words_per_draw, w))
        return (b << np.arange(w)).sum(axis=-1)

    # -- draws
    @cached_property
    def chunk_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The draw of every value of each :data:`CHUNK_BITS`-bit chunk of the register: its
        words ``[chunks, 2**CHUNK_BITS, words_per_draw]`` (uint32 when they fit) and its next
        register ``[chunks, 2**CHUNK_BITS]``. A draw from any register is the XOR of one row
        per chunk (what the compiled draw reads; small chunks keep the tables in L1 cache)."""
        n, size = -(-self.bits // CHUNK_BITS), 1 << CHUNK_BITS
        vals = np.arange(size, dtype=np.int64)
        words = np.zeros((n, size, self.words_per_draw), np.int64)
        nxt = np.zeros((n, size), np.int64)
        unit_words, unit_next = self._unit
        for j in range(self.bits):
            on = ((vals >> (j % CHUNK_BITS)) & 1).astype(bool)
            words[j // CHUNK_BITS, on] ^= unit_words[j]
            nxt[j // CHUNK_BITS, on] ^= unit_next[j]
        return words.astype(np.uint32) if self.word_bits <= 32 else words, nxt

    def draw(self, regs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` consecutive draws from each register in ``regs`` (any shape ``S``): the random
        words ``[*S, n, words_per_draw]`` and the registers after them ``[*S]``."""
        regs = np.asarray(regs, dtype=np.int64)
        after = regs.reshape(-1).copy()
        out = np.empty((after.size, n, self.words_per_draw), np.int64)
        lfsr_draw(*self.chunk_tables, after, out)
        return out.reshape(regs.shape + (n, self.words_per_draw)), after.reshape(regs.shape)

    def advance(self, regs: np.ndarray, n: int) -> np.ndarray:
        """The registers after ``n`` draws (without their outputs)."""
        regs = np.asarray(regs, dtype=np.int64)
        return regs.copy() if n == 0 else self._apply(self._t_power(n), regs)


@lru_cache(maxsize=32)
def _lfsr(bits: int, taps: tuple[int, int], outputs: int, word_bits: int, layout: str) -> Lfsr:
    return Lfsr(bits, taps, outputs, word_bits, layout)
