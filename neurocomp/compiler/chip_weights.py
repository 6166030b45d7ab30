"""The weights of a compiled projection as the chip holds them (the emulator's synapses, the
DRC's input-range estimate and the learning engines all start from these)."""

from __future__ import annotations

import numpy as np

from ..profiles import Profile
from .ir import QProjection


def chip_mantissas(proj: QProjection, profile: Profile, clip: bool = True) -> np.ndarray:
    """The mantissas as the chip holds them: clipped to the sign mode's range, then with the
    ``mantissa_bits - num_weight_bits`` LSBs (one more for mixed signs where the chip drops
    it) floored away, as Lava's Dense does on its first step. A compiled Program is already
    in this form; hand-built or learned weights may not be. ``clip=False``: truncation only,
    as Lava's LearningDense does (its first learning phase clips)."""
    w = profile.formats.weight
    m = proj.weights.astype(np.int64)
    if w.encoding != "sign_mode":
        lo, hi = w.mantissa_range("mixed")
        return np.clip(m, lo, hi)
    mode = proj.sign_mode
    lo, hi = w.mantissa_range(mode)  # type: ignore[arg-type]
    k = w.mantissa_bits - proj.num_weight_bits + (1 if (mode == "mixed" and w.mixed_sign_drops_lsb) else 0)
    if clip:
        m = np.clip(m, lo, hi)
    if k <= 0:
        return m
    if mode == "inhibitory":  # Lava truncates the magnitude: -((-w >> k) << k)
        return -((-m >> k) << k)
    return (m >> k) << k
