"""The internal layer graph (IR) every loader produces and every engine consumes."""

from .activations import Clip, Elu, LeakyRelu, Relu, Sigmoid, Softplus, Tanh
from .core import ActivationNode, Graph, LinearNode, Node, NonlinearNode
from .linear import Affine, AvgPool, Concat, Conv, Dense, Pad, Reshape, Sum, Transpose
from .nonlinear import MaxPool, Softmax
from .objective import with_objective
from .window import Window

__all__ = [
    "ActivationNode",
    "Affine",
    "AvgPool",
    "Clip",
    "Concat",
    "Conv",
    "Dense",
    "Elu",
    "Graph",
    "LeakyRelu",
    "LinearNode",
    "MaxPool",
    "Node",
    "NonlinearNode",
    "Pad",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Sum",
    "Tanh",
    "Transpose",
    "Window",
    "with_objective",
]
