"""Accuracy analysis: the three levels of a learning rule compared, error attribution, reports and plots."""

from .check import CheckError, CheckReport, attribution_over_seeds, check, spike_agreement

__all__ = ["CheckError", "CheckReport", "attribution_over_seeds", "check", "spike_agreement"]
