"""Chip profiles as data (one YAML file per chip).

This folder is installed as the package ``neurocomp.hardware_profiles`` so that the
profiles ship with a wheel; it holds no code.
"""
