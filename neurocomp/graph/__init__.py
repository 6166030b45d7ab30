"""The model IR: the float network a user describes, in physical units."""

from .conv import ConvGeometry, ConvProjection, conv_projection, pool_projection
from .io import load_network, network_from_dict, save_network
from .network import Network, Population
from .neurons import ALIF, LI, LIF, NEURON_MODELS, GatedTheta, NeuronModel, SpikeInput
from .projection import Projection, RuleSpec
from .validate import validate_network
from .weights import SparseWeights, init_weights

__all__ = [
    "ALIF",
    "ConvGeometry",
    "ConvProjection",
    "GatedTheta",
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
    "conv_projection",
    "init_weights",
    "load_network",
    "network_from_dict",
    "pool_projection",
    "save_network",
    "validate_network",
]
