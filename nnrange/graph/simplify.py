"""Fold what inference makes constant: elementwise affine nodes (bias adds, BatchNorm, Mul/Div by
constants) into the Dense or Conv node before them, and chains of affine nodes into one.

The result computes the same function (up to float64 rounding) with fewer nodes, which every
engine walks faster and which gives the symbolic engines fewer intermediate bounds to compute.
"""

from __future__ import annotations

import numpy as np

from .core import Graph, Node
from .linear import Affine, Conv, Dense, Reshape


def _per_axis(param: np.ndarray | None, out_shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """``param`` as a vector along ``axis`` of ``out_shape`` if it varies along no other axis."""
    if param is None:
        return None
    nd = len(out_shape)
    if param.ndim > nd:
        return None
    full = (1,) * (nd - param.ndim) + param.shape
    if any(d != 1 for i, d in enumerate(full) if i != axis % nd):
        return None
    return np.broadcast_to(param.reshape(-1), (out_shape[axis],)).astype(np.float64)


def _fuse(producer: Node, affine: Affine) -> Node | None:
    """One node computing ``affine(producer(x))``, or None when they do not fold."""
    if affine.out_shape != producer.out_shape:
        return None  # the affine broadcasts its input up: keep it separate
    if isinstance(producer, Affine):
        s1 = 1.0 if producer.scale is None else producer.scale
        b1 = 0.0 if producer.bias is None else producer.bias
        s2 = 1.0 if affine.scale is None else affine.scale
        b2 = 0.0 if affine.bias is None else affine.bias
        scale = None if producer.scale is None and affine.scale is None else np.asarray(s1 * s2)
        shift = None if producer.bias is None and affine.bias is None else np.asarray(b1 * s2 + b2)
        return Affine(
            affine.name, producer.inputs, scale, shift, source=producer.source, op=producer.op
        )
    if isinstance(producer, Dense):
        axis = -1
    elif isinstance(producer, Conv):
        axis = -1 if producer.channels_last else -producer.window.ndim - 1
    else:
        return None
    n = producer.out_shape[axis]
    scale = np.ones(n) if affine.scale is None else _per_axis(affine.scale, affine.out_shape, axis)
    shift = np.zeros(n) if affine.bias is None else _per_axis(affine.bias, affine.out_shape, axis)
    if scale is None or shift is None:
        return None
    bias = (
        np.zeros(n) if producer.bias is None else np.broadcast_to(producer.bias.reshape(-1), (n,))
    )
    new_bias = bias * scale + shift
    if isinstance(producer, Dense):
        return Dense(
            affine.name, producer.inputs, producer.weight * scale, new_bias, source=producer.source
        )
    weight = producer.weight * scale.reshape(-1, *(1,) * (producer.weight.ndim - 1))
    return Conv(
        affine.name,
        producer.inputs,
        weight,
        new_bias,
        producer.window,
        producer.groups,
        producer.channels_last,
        source=producer.source,
    )


def _absorb(affine: Affine, reshape: Reshape | None, dense: Dense) -> Dense | None:
    """``dense(reshape(affine(x)))`` as one Dense on ``reshape(x)`` (or on ``x``), when the
    affine's scale and shift are the same for every row the Dense multiplies; else None."""
    if affine.out_shape != affine.in_shapes[0]:
        return None
    shape = affine.out_shape
    n_in = dense.weight.shape[0]
    scale = np.broadcast_to(1.0 if affine.scale is None else affine.scale, shape)
    shift = np.broadcast_to(0.0 if affine.bias is None else affine.bias, shape)
    scale, shift = scale.reshape(-1, n_in), shift.reshape(-1, n_in)
    if (scale != scale[0]).any() or (shift != shift[0]).any():
        return None
    bias = np.zeros(dense.weight.shape[1]) if dense.bias is None else dense.bias
    return Dense(
        dense.name,
        (reshape.name if reshape is not None else affine.inputs[0],),
        dense.weight * scale[0][:, None],
        bias + shift[0] @ dense.weight,
        source=dense.source,
    )


def simplify(graph: Graph) -> Graph:
    """A graph computing the same function with affine chains folded and no-op reshapes removed.

    The nodes of ``graph`` are reused (and may be rewired); use only the returned graph.
    """
    nodes = dict(graph.nodes)
    renamed: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        consumers: dict[str, int] = {}
        for node in nodes.values():
            for i in node.inputs:
                consumers[i] = consumers.get(i, 0) + 1
        for name, node in list(nodes.items()):
            if name not in nodes:
                continue
            if (
                isinstance(node, Reshape)
                and node.out_shape == node.in_shapes[0]
                and name != graph.output
            ):
                renamed[name] = node.inputs[0]
                del nodes[name]
                changed = True
                break
            if isinstance(node, Dense):
                # an input normalisation (x - mean) / std before the first Dense, say
                src = nodes.get(node.inputs[0])
                reshape = src if isinstance(src, Reshape) else None
                affine = nodes.get(src.inputs[0]) if reshape is not None else src
                if (
                    isinstance(affine, Affine)
                    and len(affine.inputs) == 1
                    and all(
                        consumers.get(t.name, 0) == 1 and t.name != graph.output
                        for t in (affine, reshape)
                        if t is not None
                    )
                ):
                    fused = _absorb(affine, reshape, node)
                    if fused is not None:
                        fused.bind(node.in_shapes)
                        if reshape is not None:
                            reshape.inputs = affine.inputs
                        nodes[name] = fused
                        renamed[affine.name] = affine.inputs[0]
                        del nodes[affine.name]
                        changed = True
                        break
            if not isinstance(node, Affine) or len(node.inputs) != 1:
                continue
            src = node.inputs[0]
            producer = nodes.get(src)
            if producer is None or consumers.get(src, 0) != 1:
                continue
            fused = _fuse(producer, node)
            if fused is None:
                continue
            fused.bind(producer.in_shapes)  # so that it can fuse again
            nodes = {(name if k == src else k): v for k, v in nodes.items() if k != name}
            nodes[name] = fused
            changed = True
            break
        if changed:
            for node in nodes.values():
                node.inputs = tuple(_follow(renamed, i) for i in node.inputs)
    # rebuild in the original topological order of the survivors
    return Graph(
        graph.input_name,
        graph.input_shape,
        list(nodes.values()),
        _follow(renamed, graph.output),
        name=graph.name,
    )


def _follow(renamed: dict[str, str], name: str) -> str:
    while name in renamed:
        name = renamed[name]
    return name
