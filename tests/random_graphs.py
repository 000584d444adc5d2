"""Random layer graphs of every supported node kind, for property-based engine tests.

Each builder takes a numpy Generator and returns a ``Graph``; weights are scaled so that
intermediate values stay O(1) and every activation sees both of its regimes.
"""

from __future__ import annotations

import numpy as np

from nnrange.graph import (
    Affine,
    AvgPool,
    Clip,
    Concat,
    Conv,
    Dense,
    Elu,
    Graph,
    LeakyRelu,
    MaxPool,
    Pad,
    Relu,
    Reshape,
    Sigmoid,
    Softmax,
    Softplus,
    Sum,
    Tanh,
    Transpose,
    Window,
)

ACTIVATIONS = {
    "relu": lambda n, i: Relu(n, [i]),
    "leaky_relu": lambda n, i: LeakyRelu(n, [i], 0.1),
    "leaky_relu_concave": lambda n, i: LeakyRelu(n, [i], 1.7),
    "sigmoid": lambda n, i: Sigmoid(n, [i]),
    "tanh": lambda n, i: Tanh(n, [i]),
    "softplus": lambda n, i: Softplus(n, [i]),
    "elu": lambda n, i: Elu(n, [i], 0.8),
    "clip": lambda n, i: Clip(n, [i], -0.5, 0.7),
    "relu6": lambda n, i: Clip(n, [i], 0.0, 6.0),
}


class _Builder:
    def __init__(self, rng, input_shape):
        self.rng = rng
        self.nodes = []
        self.shapes = {"x": tuple(input_shape)}
        self.k = 0

    def add(self, node):
        node.bind(tuple(self.shapes[i] for i in node.inputs))
        self.nodes.append(node)
        self.shapes[node.name] = node.out_shape
        return node.name

    def name(self, base):
        self.k += 1
        return f"{base}{self.k}"

    def dense(self, x, n_out, bias=True):
        n_in = self.shapes[x][-1]
        w = self.rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
        b = self.rng.normal(size=n_out) * 0.3 if bias else None
        return self.add(Dense(self.name("dense"), [x], w, b))

    def act(self, x, kind):
        return self.add(ACTIVATIONS[kind](self.name(kind), x))

    def graph(self, out):
        return Graph("x", self.shapes["x"], self.nodes, out, name="random")


def random_mlp(
    rng, activations=None, n_in=None, residual=None, concat=None, softmax=None, hidden_softmax=False
):
    """Dense layers with random activations, optional BatchNorm-like affine, residual Add,
    Concat of two branches and a final softmax; ``hidden_softmax``: at least two hidden layers,
    each but the last followed by a softmax (a node with no linear relaxation mid-network)."""
    n_in = n_in or int(rng.integers(1, 6))
    acts = activations or list(ACTIVATIONS)
    b = _Builder(rng, (n_in,))
    x = "x"
    layers = int(rng.integers(2, 4)) if hidden_softmax else int(rng.integers(1, 4))
    for layer in range(layers):
        if hidden_softmax and layer > 0:
            x = b.add(Softmax(b.name("softmax"), [x], -1))
        width = int(rng.integers(2, 8))
        h = b.act(b.dense(x, width), acts[int(rng.integers(len(acts)))])
        if rng.random() < 0.3:
            h = b.add(
                Affine(
                    b.name("bn"), [h], rng.uniform(-1.5, 1.5, width), rng.normal(size=width) * 0.2
                )
            )
        if residual if residual is not None else rng.random() < 0.3:
            skip = b.dense(x, width)
            h = b.add(Sum(b.name("add"), [h, skip], [1.0, float(rng.choice([1.0, -1.0]))]))
        if concat if concat is not None else rng.random() < 0.3:
            other = b.act(b.dense(x, 3), acts[int(rng.integers(len(acts)))])
            h = b.add(Concat(b.name("concat"), [h, other], -1))
        x = h
    out = b.dense(x, int(rng.integers(1, 4)))
    if softmax if softmax is not None else rng.random() < 0.2:
        out = b.add(Softmax(b.name("softmax"), [out], -1))
    return b.graph(out)


def random_cnn(rng, nsp=None, activations=None, channels_last=None):
    """Conv (random strides, padding, dilation, groups) -> activation -> pooling -> pad/transpose
    -> flatten -> dense, in 1-D or 2-D, channels first or last."""
    nsp = nsp or int(rng.integers(1, 3))
    cl = bool(rng.random() < 0.5) if channels_last is None else channels_last
    acts = activations or list(ACTIVATIONS)
    c_in = int(rng.integers(1, 4))
    size = tuple(int(rng.integers(5, 9)) for _ in range(nsp))
    shape = (*size, c_in) if cl else (c_in, *size)
    b = _Builder(rng, shape)
    groups = int(rng.choice([g for g in (1, 2, 3) if c_in % g == 0]))
    c_out = groups * int(rng.integers(1, 3))
    k = tuple(int(rng.integers(1, 4)) for _ in range(nsp))
    window = Window(
        k,
        tuple(int(rng.integers(1, 3)) for _ in range(nsp)),
        tuple(int(rng.integers(1, 3)) for _ in range(nsp)),
        tuple(int(rng.integers(0, 2)) for _ in range(nsp)),
        tuple(int(rng.integers(0, 2)) for _ in range(nsp)),
    )
    w = rng.normal(size=(c_out, c_in // groups, *k)) / np.sqrt(c_in * np.prod(k))
    h = b.add(Conv(b.name("conv"), ["x"], w, rng.normal(size=c_out) * 0.2, window, groups, cl))
    h = b.act(h, acts[int(rng.integers(len(acts)))])
    sp = b.shapes[h][:-1] if cl else b.shapes[h][1:]
    pk = tuple(int(min(2, s)) for s in sp)
    pool_window = Window(pk, pk, (1,) * nsp, (0,) * nsp, (0,) * nsp)
    if rng.random() < 0.5:
        h = b.add(
            MaxPool(
                b.name("maxpool"),
                [h],
                pool_window,
                ceil_mode=bool(rng.random() < 0.5),
                channels_last=cl,
            )
        )
    else:
        h = b.add(
            AvgPool(
                b.name("avgpool"),
                [h],
                pool_window,
                count_include_pad=bool(rng.random() < 0.5),
                ceil_mode=bool(rng.random() < 0.5),
                channels_last=cl,
            )
        )
    if rng.random() < 0.5:
        nd = len(b.shapes[h])
        h = b.add(
            Pad(
                b.name("pad"),
                [h],
                [int(rng.integers(0, 2)) for _ in range(nd)],
                [int(rng.integers(0, 2)) for _ in range(nd)],
                float(rng.normal()),
            )
        )
    if rng.random() < 0.5:
        nd = len(b.shapes[h])
        h = b.add(Transpose(b.name("transpose"), [h], list(rng.permutation(nd))))
    h = b.add(Reshape(b.name("flatten"), [h], (int(np.prod(b.shapes[h])),)))
    h = b.act(b.dense(h, int(rng.integers(2, 6))), acts[int(rng.integers(len(acts)))])
    return b.graph(b.dense(h, int(rng.integers(1, 4))))


def random_graph(rng, family=None):
    family = family or ("mlp" if rng.random() < 0.5 else "cnn")
    return random_mlp(rng) if family == "mlp" else random_cnn(rng)


def random_box(rng, graph, width=None, fixed_fraction=0.0):
    """A random box over the graph input; ``fixed_fraction`` of the dimensions get lo == hi."""
    shape = graph.input_shape
    center = rng.normal(size=shape)
    radius = rng.uniform(0, width or 1.0, size=shape)
    radius[rng.random(shape) < fixed_fraction] = 0.0
    return center - radius, center + radius
