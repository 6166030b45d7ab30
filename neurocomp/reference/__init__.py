"""Float64 reference: the float network and each learning rule in its exact form, and BPTT
gradients for comparison (no quantization anywhere)."""

from .conventions import Conventions
from .simulator import Reference, ReferenceError

__all__ = ["Conventions", "Reference", "ReferenceError"]
