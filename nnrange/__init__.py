"""nnrange: proven outer bounds and attained inner bounds of a neural network's outputs.

>>> import nnrange
>>> r = nnrange.bounds("models/mlp.onnx", lo=0.0, hi=1.0)
>>> r.lower, r.upper, r.inner_lower, r.inner_upper, r.exact
"""

from .allocator import tune_malloc
from .api import bounds
from .box import Box
from .errors import (
    BoxError,
    EngineError,
    GraphError,
    ModelLoadError,
    NNRangeError,
    SpecError,
    UnsoundBoundError,
    UnsupportedOperatorError,
)
from .graph import Graph
from .loaders import load
from .result import BoundsResult, Status

__version__ = "0.1.0"

tune_malloc()

__all__ = [
    "BoundsResult",
    "Box",
    "BoxError",
    "EngineError",
    "Graph",
    "GraphError",
    "ModelLoadError",
    "NNRangeError",
    "SpecError",
    "Status",
    "UnsoundBoundError",
    "UnsupportedOperatorError",
    "bounds",
    "load",
]
