"""The internal layer graph: node base classes and the DAG that holds them.

Nodes carry the single-sample shape of their output. Every engine adds one leading batch axis,
so a tensor flowing through the graph has shape ``(B, *node.out_shape)``. The forward pass of
this graph is the project's single reference semantics: every engine must agree with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import ClassVar

import numpy as np

from ..errors import EngineError, GraphError

Shape = tuple[int, ...]


class Node:
    """A node of the layer graph.

    Subclasses set ``kind`` (``"linear"``, ``"activation"`` or ``"nonlinear"``) and ``op``
    (a short display name such as ``"Dense"``). ``source`` keeps the name of the layer or ONNX
    node this node came from, so messages and per-layer reports use the user's names.
    """

    kind: ClassVar[str] = "node"
    op: ClassVar[str] = "Node"

    def __init__(self, name: str, inputs: Iterable[str], source: str | None = None):
        self.name = name
        self.inputs = tuple(inputs)
        self.source = source or name
        self.in_shapes: tuple[Shape, ...] = ()
        self.out_shape: Shape = ()

    def bind(self, in_shapes: tuple[Shape, ...]) -> None:
        """Check the input shapes, derive the output shape, precompute shape-dependent data."""
        self.in_shapes = tuple(tuple(int(d) for d in s) for s in in_shapes)
        self.out_shape = tuple(int(d) for d in self.infer_shape(*self.in_shapes))
        self.out_size = math.prod(self.out_shape)

    def infer_shape(self, *in_shapes: Shape) -> Shape:
        raise NotImplementedError

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        """Value of the node on a batch: each ``xs[i]`` has shape ``(B, *in_shapes[i])``."""
        raise NotImplementedError

    def params(self) -> int:
        """Number of stored parameters (for the layer table)."""
        return 0

    def describe(self) -> str:
        """Short human-readable attributes for tables."""
        return ""

    def fail(self, message: str) -> GraphError:
        return GraphError(f"{self.op} node '{self.source}': {message}")

    def __repr__(self) -> str:
        extra = self.describe()
        extra = f" {extra}" if extra else ""
        return f"<{self.op} '{self.name}' {self.in_shapes}->{self.out_shape}{extra}>"


class LinearNode(Node):
    """An affine map ``y = L(x_1, ..., x_k) + bias`` of its inputs.

    ``linear`` applies the homogeneous part L, ``abs_linear`` applies the same map with every
    coefficient replaced by its absolute value (for interval propagation), ``backward`` applies
    the transpose of L to a batch of row vectors, and ``bias`` (broadcastable to ``out_shape``,
    or None) is the constant part.
    """

    kind = "linear"
    #: True when every coefficient of L is >= 0 (then ``abs_linear`` is ``linear``).
    nonnegative: ClassVar[bool] = False
    bias: np.ndarray | None = None

    def linear(self, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def abs_linear(self, *xs: np.ndarray) -> np.ndarray:
        if self.nonnegative:
            return self.linear(*xs)
        raise NotImplementedError

    def backward(self, a: np.ndarray) -> list[np.ndarray]:
        """Transpose of L: ``a`` has shape ``(M, *out_shape)``; returns ``(M, *in_shape_i)``."""
        raise NotImplementedError

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        y = self.linear(*xs)
        return y if self.bias is None else y + self.bias

    def interval(
        self, los: list[np.ndarray], his: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact output bounds over the box of inputs ``[los[i], his[i]]``, in centre/radius
        form: ``L(c) + bias -/+ |L|(r)``, two passes of the map."""
        mid = self.forward(*((lo + hi) / 2 for lo, hi in zip(los, his, strict=True)))
        rad = self.abs_linear(*((hi - lo) / 2 for lo, hi in zip(los, his, strict=True)))
        return mid - rad, mid + rad

    def backward_sparse(
        self, a: np.ndarray, idx: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """``backward`` and ``bias_term`` of row vectors that are zero outside the flat output
        entries ``idx``; ``a`` has shape ``(M, len(idx))``. Nodes with a cheaper way (Dense)
        override this."""
        full = np.zeros((a.shape[0], self.out_size))
        full[:, idx] = a
        full = full.reshape(a.shape[0], *self.out_shape)
        return self.backward(full), self.bias_term(full)

    def backward_rows(self, idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """``backward_sparse`` of the unit rows of the flat output entries ``idx``: the rows of
        the map, ``(len(idx), *in_shape_i)`` per input, and the bias entries ``(len(idx),)``.
        Nodes that hold their map's rows (Dense) override this."""
        return self.backward_sparse(np.eye(idx.size), idx)

    def bias_term(self, a: np.ndarray) -> np.ndarray:
        """``<a_m, bias>`` for each row m of ``a`` (shape ``(M, *out_shape)``) -> ``(M,)``."""
        if self.bias is None:
            return np.zeros(a.shape[0])
        flat = self.__dict__.get("_flat_bias")
        if flat is None or flat.size != self.out_size:
            flat = np.broadcast_to(self.bias, self.out_shape).reshape(-1).copy()
            self._flat_bias = flat
        return a.reshape(a.shape[0], -1) @ flat


class ActivationNode(Node):
    """An elementwise function of one input; ``interval`` maps input bounds to output bounds."""

    kind = "activation"
    #: True when the function is nondecreasing, so ``interval(l, u) = (f(l), f(u))``.
    monotone: ClassVar[bool] = True
    #: True when the function is piecewise linear (exact MILP encodings exist).
    piecewise_linear: ClassVar[bool] = False

    def infer_shape(self, *in_shapes: Shape) -> Shape:
        return in_shapes[0]

    def value(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """A (sub)gradient of the function at x, elementwise."""
        raise NotImplementedError

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        return self.value(xs[0])

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.monotone:
            return self.value(lo), self.value(hi)
        raise NotImplementedError


class NonlinearNode(Node):
    """A node that is neither affine nor elementwise (max pooling, softmax, ...)."""

    kind = "nonlinear"

    def vjp(self, xs: list[np.ndarray], y: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
        """Vector-Jacobian product: gradients w.r.t. the inputs given ``g`` on the output."""
        raise NotImplementedError

    def interval(
        self, los: list[np.ndarray], his: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sound output bounds from input bounds (interval arithmetic)."""
        raise NotImplementedError


class Graph:
    """A DAG of nodes with one input tensor and one output tensor.

    ``nodes`` is kept in topological order. Shapes are checked and derived when the graph is
    built, so an inconsistent graph never reaches an engine.
    """

    def __init__(
        self,
        input_name: str,
        input_shape: Iterable[int],
        nodes: Iterable[Node],
        output: str,
        name: str = "model",
    ):
        self.name = name
        self.input_name = input_name
        self.input_shape: Shape = tuple(int(d) for d in input_shape)
        if any(d <= 0 for d in self.input_shape):
            raise GraphError(
                f"input '{input_name}' has a non-positive dimension: {self.input_shape}"
            )
        self.output = output
        self.nodes: dict[str, Node] = {}
        self.shapes: dict[str, Shape] = {input_name: self.input_shape}
        by_name: dict[str, Node] = {}
        for node in nodes:
            if node.name in by_name or node.name == input_name:
                raise GraphError(f"two nodes are named '{node.name}'")
            by_name[node.name] = node
        for node in self._toposort(by_name):
            try:
                node.bind(tuple(self.shapes[i] for i in node.inputs))
            except GraphError:
                raise
            except (ValueError, IndexError) as exc:
                raise node.fail(
                    f"inputs of shape {[self.shapes[i] for i in node.inputs]}: {exc}"
                ) from exc
            self.nodes[node.name] = node
            self.shapes[node.name] = node.out_shape
        if output not in self.shapes:
            raise GraphError(f"output '{output}' is not produced by any node")
        self._prune_unused()

    def _toposort(self, by_name: dict[str, Node]) -> list[Node]:
        order: list[Node] = []
        state: dict[str, int] = {}  # 1 = visiting, 2 = done

        def visit(name: str) -> None:
            if name == self.input_name or state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise GraphError(f"the graph has a cycle through node '{name}'")
            if name not in by_name:
                raise GraphError(f"tensor '{name}' is used but never produced")
            state[name] = 1
            for dep in by_name[name].inputs:
                visit(dep)
            state[name] = 2
            order.append(by_name[name])

        for name in by_name:
            visit(name)
        return order

    def _prune_unused(self) -> None:
        needed = {self.output}
        for node in reversed(list(self.nodes.values())):
            if node.name in needed:
                needed.update(node.inputs)
        self.nodes = {k: v for k, v in self.nodes.items() if k in needed}
        self.shapes = {k: v for k, v in self.shapes.items() if k in needed or k == self.input_name}

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.output]

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def output_size(self) -> int:
        return math.prod(self.output_shape)

    def output_indices(self, outputs=None) -> list[int]:
        """Flat output indices an engine's ``outputs=`` selects (None: all), checked."""
        n = self.output_size
        if outputs is None:
            return list(range(n))
        chosen = [int(j) for j in np.atleast_1d(outputs)]
        if any(not 0 <= j < n for j in chosen):
            raise EngineError(f"outputs {chosen} out of range for {n} output(s)")
        return chosen

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def consumers(self) -> dict[str, list[str]]:
        """For each tensor, the nodes that read it."""
        out: dict[str, list[str]] = {name: [] for name in self.shapes}
        for node in self.nodes.values():
            for i in node.inputs:
                out[i].append(node.name)
        return out

    def forward(self, x: np.ndarray, *, all_values: bool = False):
        """Run a batch ``x`` of shape ``(B, *input_shape)`` (or one sample) through the graph.

        Returns the output batch ``(B, *output_shape)``, or with ``all_values`` a dict of every
        tensor's value. A single sample (no batch axis) gives a single output.
        """
        x = np.asarray(x, dtype=np.float64)
        single = x.shape == self.input_shape
        if single:
            x = x[None]
        elif x.shape[1:] != self.input_shape:
            raise GraphError(
                f"forward expects shape {self.input_shape} or (B, *{self.input_shape}), "
                f"got {x.shape}"
            )
        values: dict[str, np.ndarray] = {self.input_name: x}
        last_use = {} if all_values else self.last_uses()
        for node in self.nodes.values():
            values[node.name] = node.forward(*(values[i] for i in node.inputs))
            for name in last_use.get(node.name, ()):
                del values[name]  # free intermediate tensors as soon as possible
        if all_values:
            return values
        y = values[self.output]
        return y[0] if single else y

    def last_uses(self) -> dict[str, list[str]]:
        """For each node, the tensors (other than the output) read for the last time there."""
        last: dict[str, str] = {}
        for node in self.nodes.values():
            for i in node.inputs:
                last[i] = node.name
        out: dict[str, list[str]] = {}
        for tensor, node in last.items():
            if tensor != self.output:
                out.setdefault(node, []).append(tensor)
        return out

    def value_and_grad(self, x: np.ndarray, cotangent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outputs of a batch ``x`` (B, *input_shape) and the gradient of ``sum(cotangent * y)``
        with respect to x, per sample: ``(y (B, *output_shape), grad (B, *input_shape))``.

        Gradients come from the nodes themselves (transposes, activation derivatives, max
        pooling's winning cell, softmax's Jacobian), so no autodiff framework is needed.
        """
        values = self.forward(x, all_values=True)
        grads: dict[str, np.ndarray] = {
            self.output: np.broadcast_to(cotangent, values[self.output].shape)
        }
        for node in reversed(list(self.nodes.values())):
            g = grads.pop(node.name, None)
            if g is None:
                continue
            if node.kind == "linear":
                parts = node.backward(g)
            elif node.kind == "activation":
                parts = [g * node.derivative(values[node.inputs[0]])]
            else:
                parts = node.vjp([values[i] for i in node.inputs], values[node.name], g)
            for name, part in zip(node.inputs, parts, strict=True):
                grads[name] = grads[name] + part if name in grads else part
        grad = grads.get(self.input_name, np.zeros_like(x))
        return values[self.output], grad

    def summary(self) -> list[dict]:
        """One row per node: name, op, kind, inputs, output shape, parameter count."""
        return [
            {
                "name": n.source,
                "op": n.op,
                "kind": n.kind,
                "inputs": list(n.inputs),
                "shape": list(n.out_shape),
                "params": n.params(),
                "attrs": n.describe(),
            }
            for n in self.nodes.values()
        ]

    def __repr__(self) -> str:
        return (
            f"<Graph '{self.name}': {len(self.nodes)} nodes, input {self.input_shape} "
            f"-> output {self.output_shape}>"
        )
