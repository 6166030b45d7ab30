"""neurocomp: a compiler and bit-accurate emulator for spiking neural networks with
on-chip learning.

Describe a network once (:mod:`neurocomp.graph`), pick a chip profile
(:func:`load_profile`), and compile, emulate and check it.
"""

from ._version import __version__
from .analysis import check  # noqa: E402  (after the compiler it uses)
from .compiler import Program, compile
from .errors import ModelError, NeurocompError, Problem, ProfileError
from .graph import (
    ALIF,
    LI,
    LIF,
    Network,
    Population,
    Projection,
    RuleSpec,
    SparseWeights,
    SpikeInput,
    init_weights,
    load_network,
    save_network,
)
from .profiles import Profile, list_profiles, load_profile
from .rules import LOWERINGS as _LOWERINGS  # noqa: F401  (importing the rules registers them with the compiler)

__all__ = [
    "check",
    "ALIF",
    "LI",
    "LIF",
    "ModelError",
    "Network",
    "NeurocompError",
    "Population",
    "Problem",
    "Profile",
    "Program",
    "ProfileError",
    "Projection",
    "RuleSpec",
    "SparseWeights",
    "SpikeInput",
    "__version__",
    "compile",
    "init_weights",
    "list_profiles",
    "load_network",
    "load_profile",
    "save_network",
    "from_nir",
    "to_nir",
]


def __getattr__(name: str):
    # NIR import/export needs the optional `nir` package: imported on first use only.
    if name in ("from_nir", "to_nir"):
        from .graph import nir as _nir_io

        return getattr(_nir_io, name)
    raise AttributeError(f"module 'neurocomp' has no attribute {name!r}")
