"""What a pass may read (profile, options) and write (notes and warnings for the log)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..profiles import Profile
from .options import CompileOptions


@dataclass
class PassContext:
    """Per-compilation context. Passes read ``profile``, ``options`` and ``dt_ms``, draw
    randomness only from ``rng`` (seeded from ``options.seed``), and report through
    :meth:`note` and :meth:`warn`; they keep no other state."""

    profile: Profile
    options: CompileOptions
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.options.seed)

    @property
    def dt_ms(self) -> float:
        return self.options.dt_ms if self.options.dt_ms is not None else self.profile.time.default_dt_ms

    def note(self, text: str) -> None:
        self.notes.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
