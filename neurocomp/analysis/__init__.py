"""Accuracy analysis: the three levels of a learning rule compared, error attribution, reports and plots."""
