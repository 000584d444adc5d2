"""Loaders: turn a model (path, ONNX proto, Keras model, or Graph) into a layer graph."""

from __future__ import annotations

import os

from ..errors import ModelLoadError
from ..graph import Graph
from ..graph.simplify import simplify as _simplify

_ONNX_SUFFIXES = {".onnx"}
_KERAS_SUFFIXES = {".keras", ".h5", ".hdf5"}


def load(model, *, input_shape=None, output: str | None = None, simplify: bool = True) -> Graph:
    """Load ``model`` into nnrange's layer graph.

    ``model`` may be a path to an ``.onnx``, ``.keras`` or ``.h5`` file, an ``onnx.ModelProto``,
    an in-memory Keras model, or an already loaded ``Graph`` (returned as is).
    ``input_shape`` fixes symbolic input dimensions (ONNX); ``output`` picks one of several
    ONNX outputs. ``simplify`` folds bias adds, BatchNorm and other constant affine steps into
    the Dense/Conv node before them (same function, fewer nodes).
    """
    if isinstance(model, Graph):
        return model
    graph = _convert(model, input_shape, output)
    return _simplify(graph) if simplify else graph


def _convert(model, input_shape, output) -> Graph:
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        suffix = os.path.splitext(path)[1].lower()
        if not os.path.exists(path):
            raise ModelLoadError(f"{path}: file not found")
        if os.path.isdir(path):
            raise ModelLoadError(
                f"{path}: is a directory; give an .onnx, .keras or .h5 file "
                "(TensorFlow SavedModel folders are not supported: export to .keras or ONNX)"
            )
        if suffix in _ONNX_SUFFIXES:
            from .onnx import load_onnx

            return load_onnx(path, input_shape=input_shape, output=output)
        if suffix in _KERAS_SUFFIXES:
            from .keras import load_keras

            return load_keras(path, input_shape=input_shape)
        raise ModelLoadError(
            f"{path}: unknown model file type '{suffix}'; nnrange reads .onnx, .keras and .h5 files"
        )
    module = type(model).__module__
    # a user's subclass of a Keras model keeps a Keras class among its bases
    keras_class = any(
        c.__module__.startswith(("keras", "tf_keras", "tensorflow")) for c in type(model).__mro__
    )
    if module.startswith("onnx"):
        from .onnx import load_onnx

        return load_onnx(model, input_shape=input_shape, output=output)
    if keras_class:
        from .keras import load_keras

        return load_keras(model, input_shape=input_shape)
    raise ModelLoadError(
        f"cannot load an object of type {type(model).__name__}: give a path to an .onnx/.keras/"
        ".h5 file, an onnx.ModelProto, a Keras model, or an nnrange Graph"
    )
