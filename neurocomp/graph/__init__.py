"""The model IR: the float network a user describes, in physical units."""

from .io import load_network, network_from_dict, save_network
from .network import Network, Population
from .neurons import ALIF, LI, LIF, NEURON_MODELS, NeuronModel, SpikeInput
from .projection import Projection, RuleSpec
from .validate import validate_network
from .weights import SparseWeights, init_weights

__all__ = [
    "ALIF",
    "LI",
    "LIF",
    "NEURON_MODELS",
    "Network",
    "NeuronModel",
    "Population",
    "Projection",
    "RuleSpec",
    "SparseWeights",
    "SpikeInput",
    "init_weights",
    "load_network",
    "network_from_dict",
    "save_network",
    "validate_network",
]
