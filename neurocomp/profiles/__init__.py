"""Chip profiles: frozen, schema-checked descriptions of a chip's arithmetic and limits."""

from ..arith.formats import DecayFormat, Formats, ScaledFormat, StateFormat, TraceFormat, WeightFormat
from .loader import PROFILE_PATH_ENV, list_profiles, load_profile, profile_dirs
from .profile import (
    Capacity,
    Energy,
    LearningEngine,
    LfsrSource,
    NeuronModelSupport,
    Profile,
    Source,
    SynapseEncoding,
    TimeSemantics,
)
from .table import profile_summary, profiles_table

__all__ = [
    "PROFILE_PATH_ENV",
    "Capacity",
    "DecayFormat",
    "Energy",
    "Formats",
    "LearningEngine",
    "LfsrSource",
    "NeuronModelSupport",
    "Profile",
    "ScaledFormat",
    "Source",
    "StateFormat",
    "SynapseEncoding",
    "TimeSemantics",
    "TraceFormat",
    "WeightFormat",
    "list_profiles",
    "load_profile",
    "profile_dirs",
    "profile_summary",
    "profiles_table",
]
