"""The layer graph: every linear node's transpose and |.| map agree with its materialised matrix,
window geometry matches hand-computed sizes, bad graphs are refused with names."""

from __future__ import annotations

import numpy as np
import pytest
from random_graphs import random_cnn, random_mlp

from nnrange.errors import GraphError
from nnrange.graph import (
    Affine,
    AvgPool,
    Concat,
    Conv,
    Dense,
    Graph,
    MaxPool,
    Pad,
    Relu,
    Reshape,
    Softmax,
    Sum,
    Transpose,
    Window,
)
from nnrange.graph.window import ceil_mode_extra, same_padding


def _matrix(node, shapes):
    """Materialise the homogeneous part of a linear node column by column."""
    node.bind(tuple(shapes))
    sizes = [int(np.prod(s)) for s in shapes]
    cols = []
    for k, (s, n) in enumerate(zip(shapes, sizes, strict=True)):
        eye = np.eye(n).reshape(n, *s)
        xs = [eye if j == k else np.zeros((n, *shapes[j])) for j in range(len(shapes))]
        cols.append(node.linear(*xs).reshape(n, -1).T)
    return np.concatenate(cols, axis=1)


def _check_linear(node, shapes):
    m = _matrix(node, shapes)
    n_out = m.shape[0]
    eye_out = np.eye(n_out).reshape(n_out, *node.out_shape)
    back = np.concatenate([g.reshape(n_out, -1) for g in node.backward(eye_out)], axis=1)
    np.testing.assert_allclose(back, m, atol=1e-12)
    sizes = [int(np.prod(s)) for s in shapes]
    abs_cols = []
    for k, (s, n) in enumerate(zip(shapes, sizes, strict=True)):
        eye = np.eye(n).reshape(n, *s)
        xs = [eye if j == k else np.zeros((n, *shapes[j])) for j in range(len(shapes))]
        abs_cols.append(node.abs_linear(*xs).reshape(n, -1).T)
    np.testing.assert_allclose(np.concatenate(abs_cols, axis=1), np.abs(m), atol=1e-12)
    # forward = linear + bias, checked on a random point
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(3, *s)) for s in shapes]
    flat = np.concatenate([x.reshape(3, -1) for x in xs], axis=1)
    bias = node.forward(*(np.zeros((1, *s)) for s in shapes)).reshape(-1)
    np.testing.assert_allclose(node.forward(*xs).reshape(3, -1), flat @ m.T + bias, atol=1e-12)
    # bias_term is <a, bias>
    a = rng.normal(size=(4, *node.out_shape))
    np.testing.assert_allclose(node.bias_term(a), a.reshape(4, -1) @ bias, atol=1e-12)


rng0 = np.random.default_rng(7)
LINEAR_CASES = [
    (Dense("d", ["x"], rng0.normal(size=(4, 3)), rng0.normal(size=3)), [(2, 4)]),
    (
        Conv(
            "c",
            ["x"],
            rng0.normal(size=(4, 2, 3, 2)),
            rng0.normal(size=4),
            Window((3, 2), (2, 1), (1, 2), (1, 0), (2, 1)),
            groups=2,
        ),
        [(4, 6, 5)],
    ),
    (
        Conv(
            "c",
            ["x"],
            rng0.normal(size=(3, 2, 2)),
            None,
            Window((2,), (1,), (1,), (0,), (1,)),
            channels_last=True,
        ),
        [(1, 5, 2)],
    ),
    (
        Conv(
            "c",
            ["x"],
            rng0.normal(size=(2, 1, 2, 2, 2)),
            rng0.normal(size=2),
            Window((2, 2, 2), (1, 2, 1), (1, 1, 1), (1, 0, 0), (0, 1, 1)),
        ),
        [(1, 3, 4, 3)],
    ),
    (
        AvgPool(
            "a",
            ["x"],
            Window((2, 2), (2, 2), (1, 1), (1, 0), (1, 1)),
            count_include_pad=False,
            ceil_mode=True,
        ),
        [(1, 2, 5, 5)],
    ),
    (
        AvgPool(
            "a",
            ["x"],
            Window((3,), (2,), (1,), (1,), (1,)),
            count_include_pad=True,
            channels_last=True,
        ),
        [(6, 2)],
    ),
    (Affine("f", ["x"], rng0.normal(size=(3, 1)), rng0.normal(size=(1, 4))), [(3, 4)]),
    (Affine("f", ["x"], rng0.normal(size=(2, 3)), None), [(3,)]),  # broadcasts the input up
    (Sum("s", ["x", "y"], [1.0, -2.0]), [(2, 3), (3,)]),
    (Reshape("r", ["x"], (6, 2)), [(3, 4)]),
    (Transpose("t", ["x"], (2, 0, 1)), [(2, 3, 4)]),
    (Pad("p", ["x"], [1, -1], [0, 2], value=0.5), [(3, 4)]),
    (Concat("c", ["x", "y"], 1), [(2, 3), (2, 2)]),
]


@pytest.mark.parametrize("node,shapes", LINEAR_CASES, ids=lambda v: getattr(v, "op", None))
def test_linear_node_transpose_and_abs_match_matrix(node, shapes):
    _check_linear(node, shapes)


def test_window_geometry_hand_computed():
    # 7 inputs, kernel 3, stride 2, pads 1/1 -> floor((9 - 3) / 2) + 1 = 4 outputs
    assert Window((3,), (2,), (1,), (1,), (1,)).output_spatial((7,)) == (4,)
    # dilation 2 makes the extent 5: floor((7 - 5) / 1) + 1 = 3
    assert Window((3,), (1,), (2,), (0,), (0,)).output_spatial((7,)) == (3,)
    # TensorFlow 'same': 5 inputs, kernel 4, stride 2 -> 3 outputs, total pad 3 split 1/2
    assert same_padding((5,), (4,), (2,), (1,)) == ((1,), (2,))
    assert same_padding((5,), (4,), (2,), (1,), extra_at_end=False) == ((2,), (1,))
    # ceil mode: 5 inputs, kernel 2, stride 2 -> ceil(3/2)+1 = 3 outputs, needs 1 extra cell
    assert ceil_mode_extra((5,), Window((2,), (2,), (1,), (0,), (0,))) == (1,)


def test_avgpool_divisors_hand_computed():
    # 1-D, kernel 2, stride 2, pad 1 at the start, input [1, 2, 3]: windows (pad,1) (2,3)
    x = np.array([[[1.0, 2.0, 3.0]]])
    incl = AvgPool("a", ["x"], Window((2,), (2,), (1,), (1,), (0,)), count_include_pad=True)
    excl = AvgPool("a", ["x"], Window((2,), (2,), (1,), (1,), (0,)), count_include_pad=False)
    for n in (incl, excl):
        n.bind(((1, 3),))
    np.testing.assert_allclose(incl.forward(x), [[[0.5, 2.5]]])
    np.testing.assert_allclose(excl.forward(x), [[[1.0, 2.5]]])


def test_maxpool_and_softmax_forward_hand_computed():
    mp = MaxPool("m", ["x"], Window((2,), (2,), (1,), (0,), (0,)), ceil_mode=True)
    mp.bind(((1, 5),))
    np.testing.assert_allclose(
        mp.forward(np.array([[[1.0, -2.0, 0.5, 3.0, -1.0]]])), [[[1.0, 3.0, -1.0]]]
    )
    sm = Softmax("s", ["x"], -1)
    sm.bind(((2,),))
    np.testing.assert_allclose(sm.forward(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])
    lo, hi = sm.interval([np.array([[0.0, 0.0]])], [np.array([[np.log(3.0), 0.0]])])
    # y0 ranges from e^0/(e^0+e^0) = 0.5 to 3/(3+1) = 0.75
    np.testing.assert_allclose(lo[0, 0], 0.5)
    np.testing.assert_allclose(hi[0, 0], 0.75)


def test_graph_dag_forward_and_pruning():
    nodes = [
        Dense("a", ["x"], np.array([[1.0, -1.0]]), None),
        Relu("r", ["a"]),
        Sum("s", ["r", "a"], [1.0, 1.0]),
        Dense("unused", ["x"], np.ones((1, 3)), None),
    ]
    g = Graph("x", (1,), nodes, "s")
    assert "unused" not in g.nodes
    # x = 2: a = [2, -2], r = [2, 0], s = [4, -2]
    np.testing.assert_allclose(g.forward(np.array([2.0])), [4.0, -2.0])


def test_graph_errors_name_the_node():
    with pytest.raises(GraphError, match="'d'.*3 features"):
        Graph("x", (4,), [Dense("d", ["x"], np.ones((3, 2)))], "d")
    with pytest.raises(GraphError, match="never produced"):
        Graph("x", (4,), [Relu("r", ["missing"])], "r")
    with pytest.raises(GraphError, match="cycle"):
        Graph("x", (2,), [Sum("a", ["x", "b"]), Relu("b", ["a"])], "b")


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_build_and_run_batched(seed):
    rng = np.random.default_rng(seed)
    for g in (random_mlp(rng), random_cnn(rng)):
        x = rng.normal(size=(5, *g.input_shape))
        y = g.forward(x)
        assert y.shape == (5, *g.output_shape)
        np.testing.assert_allclose(g.forward(x[2]), y[2])


@pytest.mark.parametrize("node,shapes", LINEAR_CASES, ids=lambda v: getattr(v, "op", None))
def test_backward_sparse_matches_dense_backward(node, shapes):
    node.bind(tuple(shapes))
    rng = np.random.default_rng(3)
    idx = np.sort(rng.choice(node.out_size, size=max(1, node.out_size // 3), replace=False))
    a = rng.normal(size=(4, idx.size))
    full = np.zeros((4, node.out_size))
    full[:, idx] = a
    full = full.reshape(4, *node.out_shape)
    grads, bias = node.backward_sparse(a, idx)
    for g_sparse, g_full in zip(grads, node.backward(full), strict=True):
        np.testing.assert_allclose(g_sparse, g_full, atol=1e-12)
    np.testing.assert_allclose(bias, node.bias_term(full), atol=1e-12)


def test_dense_backward_sparse_with_leading_axes_falls_back():
    node = Dense("d", ["x"], np.arange(6.0).reshape(3, 2), np.array([1.0, -1.0]))
    node.bind(((2, 3),))
    a = np.array([[1.0, 2.0]])
    idx = np.array([1, 2])
    full = np.zeros((1, 4))
    full[:, idx] = a
    grads, bias = node.backward_sparse(a, idx)
    np.testing.assert_allclose(grads[0], node.backward(full.reshape(1, 2, 2))[0])
    np.testing.assert_allclose(bias, node.bias_term(full.reshape(1, 2, 2)))
