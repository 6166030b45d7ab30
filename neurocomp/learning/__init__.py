"""The learning-engine IR: sum-of-products expressions (Lava's rule strings), engine rules
with traces, tags and epochs, and the engine that runs them in fixed or float arithmetic."""

from .engine import LEARN_QUANTITIES, SumOfProductsEngine
from .expr import Expr, Factor, Product, RuleSyntaxError, format_expr, parse
from .rule import EngineRule, Trace

__all__ = [
    "LEARN_QUANTITIES",
    "EngineRule",
    "Expr",
    "Factor",
    "Product",
    "RuleSyntaxError",
    "SumOfProductsEngine",
    "Trace",
    "format_expr",
    "parse",
]
