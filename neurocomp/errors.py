"""Error types shared by the whole package.

Every user-facing error collects *all* the problems it found before it is raised, so a
user fixes a model or a profile in one pass instead of one error at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem, located by the element it concerns.

    ``where`` names the element (``"population 'rec'"``, ``"loihi2.yaml: formats.weight"``),
    ``message`` says what is wrong, with the value and the limit where there is one.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class NeurocompError(Exception):
    """Base class: an error with a list of problems."""

    kind = "error"

    def __init__(self, problems: Iterable[Problem | str], header: str | None = None):
        self.problems: tuple[Problem, ...] = tuple(
            p if isinstance(p, Problem) else Problem("", str(p)) for p in problems
        )
        self.header = header
        super().__init__(self._format())

    def _format(self) -> str:
        n = len(self.problems)
        head = self.header or f"{n} {self.kind} problem{'s' if n != 1 else ''}"
        if n == 1 and not self.header:
            return str(self.problems[0])
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class ModelError(NeurocompError, ValueError):
    """The network description is invalid."""

    kind = "model"


class ProfileError(NeurocompError, ValueError):
    """A chip profile is malformed or unknown."""

    kind = "profile"
