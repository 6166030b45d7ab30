from __future__ import annotations

from ..errors import NeurocompError


class BackendError(NeurocompError, ValueError):
    """The backend cannot run this program (an unsupported construct is named)."""

    kind = "backend"


class BackendUnavailable(BackendError, ImportError):
    """The simulator behind a backend is not installed."""

    kind = "backend"
