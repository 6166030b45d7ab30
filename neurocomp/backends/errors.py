from __future__ import annotations

from collections.abc import Mapping

from ..errors import NeurocompError, Problem


class BackendError(NeurocompError, ValueError):
    """The backend cannot run this program (an unsupported construct is named)."""

    kind = "backend"


class BackendUnavailable(BackendError, ImportError):
    """The simulator behind a backend is not installed."""

    kind = "backend"


def unrecordable(record, recordable, backend: str, why: Mapping[str, str] | None = None) -> list[Problem]:
    """A problem for each variable of ``record`` that ``backend`` cannot record, naming what it
    can (``recordable``); ``why``: the reason for a variable it records only in other runs."""
    known, why = ", ".join(recordable), why or {}
    return [
        Problem("record", f"variable {v!r} cannot be recorded from {backend} (recordable: {known}){why.get(v, '')}")
        for v in record
        if v not in recordable
    ]
