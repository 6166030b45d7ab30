"""Backends that run a network in an external simulator, for validation and comparison.
Each imports its simulator lazily and says which extra to install when it is missing."""

from .errors import BackendError, BackendUnavailable

__all__ = ["BackendError", "BackendUnavailable"]
