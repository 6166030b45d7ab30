"""The compiler passes, in pipeline order. Each is a pure function ``(ir, ctx) -> ir``."""

from .discretize import discretize
from .drc import DRC_RULES, drc
from .emit import emit
from .lower_learning import lower_learning
from .partition import partition
from .quantize import quantize
from .validate import validate

__all__ = ["DRC_RULES", "discretize", "drc", "emit", "lower_learning", "partition", "quantize", "validate"]
