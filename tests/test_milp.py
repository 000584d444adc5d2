"""The MILP engine: exact ranges against brute force over activation patterns, witnesses,
objectives, refusals and relaxations, time limits, ``solve_range`` and an ACAS Xu reference."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from random_graphs import random_mlp
from scipy.optimize import linprog

import nnrange
from nnrange import Box
from nnrange.engines import ENGINES, crown, milp, regions
from nnrange.engines.ibp import interval_bounds
from nnrange.errors import EngineError
from nnrange.graph import (
    Clip,
    Conv,
    Dense,
    Graph,
    LeakyRelu,
    MaxPool,
    Relu,
    Reshape,
    Sigmoid,
    Window,
)
from nnrange.milp import Encoding, HighsSolver, linear_matrices
from nnrange.result import Status

TOL = 1e-6


# ---------------------------------------------------------------- tiny networks
def _dense(rng, name, src, n_in, n_out):
    return Dense(
        name, [src], rng.normal(size=(n_in, n_out)) / np.sqrt(n_in), rng.normal(size=n_out) * 0.3
    )


def relu_net(rng, n_in=2, hidden=(5, 4), n_out=2, act=lambda n, i: Relu(n, [i])):
    nodes, src, width = [], "x", n_in
    for k, h in enumerate(hidden):
        nodes += [_dense(rng, f"d{k}", src, width, h), act(f"a{k}", f"d{k}")]
        src, width = f"a{k}", h
    nodes.append(_dense(rng, "out", src, width, n_out))
    return Graph("x", (n_in,), nodes, "out")


def maxpool_net(rng):
    """Dense -> ReLU -> (2 channels x 3) -> max pool (kernel 2, stride 2, one padding cell in
    front, so one window holds a padding cell) -> flatten -> Dense."""
    window = Window((2,), (2,), (1,), (1,), (0,))
    nodes = [
        _dense(rng, "d0", "x", 3, 6),
        Relu("r0", ["d0"]),
        Reshape("s0", ["r0"], (2, 3)),
        MaxPool("p0", ["s0"], window),
        Reshape("f0", ["p0"], (4,)),
        _dense(rng, "out", "f0", 4, 2),
    ]
    return Graph("x", (3,), nodes, "out")


NETS = {
    "relu": lambda rng: relu_net(rng),
    "leaky": lambda rng: relu_net(rng, 3, (4, 4), 2, lambda n, i: LeakyRelu(n, [i], 0.1)),
    "leaky_concave": lambda rng: relu_net(rng, 2, (5,), 2, lambda n, i: LeakyRelu(n, [i], 1.7)),
    "clip": lambda rng: relu_net(rng, 2, (4, 3), 2, lambda n, i: Clip(n, [i], -0.5, 0.7)),
    "relu6": lambda rng: relu_net(rng, 2, (5, 3), 2, lambda n, i: Clip(n, [i], 0.0, 0.8)),
    "maxpool": maxpool_net,
}


# ---------------------------------------------------------------- brute force
def _options(node, lo, hi, z_shape):
    """Per neuron (flat), the activation pieces its input interval allows."""
    lo, hi = lo.reshape(-1), hi.reshape(-1)
    if isinstance(node, (Relu, LeakyRelu)):
        return [
            [True] if l_ >= 0 else [False] if u <= 0 else [False, True]
            for l_, u in zip(lo, hi, strict=True)
        ]
    if isinstance(node, Clip):
        out = []
        for l_, u in zip(lo, hi, strict=True):
            pieces = [0] if l_ < node.low else []
            if u > node.low and l_ < node.high:
                pieces.append(1)
            if u > node.high:
                pieces.append(2)
            out.append(pieces or [1])
        return out
    # max pooling: per window, the cells that can win (padding cells never do)
    lw = np.stack(node.windows(lo.reshape(1, *z_shape)))[:, 0].reshape(
        len(node.windows(lo.reshape(1, *z_shape))), -1
    )
    uw = np.stack(node.windows(hi.reshape(1, *z_shape)))[:, 0].reshape(lw.shape)
    return [
        [k for k in range(lw.shape[0]) if np.isfinite(lw[k, j]) and uw[k, j] >= lw[:, j].max()]
        for j in range(lw.shape[1])
    ]


def _pattern_array(node, choice, z_shape):
    if isinstance(node, (Relu, LeakyRelu)):
        return np.array(choice, dtype=bool).reshape(z_shape)
    if isinstance(node, Clip):
        return np.array(choice, dtype=int).reshape(z_shape)
    cf_out = np.stack(node.windows(np.zeros((1, *z_shape))))[:, 0].shape[1:]
    return np.array(choice, dtype=int).reshape(cf_out)


def _feasible(region, lo, hi):
    res = linprog(
        np.zeros(lo.size),
        A_ub=region.G if region.G.size else None,
        b_ub=region.h if region.G.size else None,
        bounds=np.stack([lo, hi], axis=1),
        method="highs",
    )
    return res.status == 0


def brute_force(graph: Graph, lo, hi, c, minmax: bool = False):
    """Max and min of ``c . f(x)`` over the box: every activation pattern the interval bounds
    allow, pruned layer by layer by LP feasibility, then one LP per full pattern. With
    ``minmax``, the min of ``max_i f_i(x)`` instead (one LP ``min t, f_i <= t`` per pattern)."""
    lo, hi = np.asarray(lo, float).reshape(-1), np.asarray(hi, float).reshape(-1)
    ib = interval_bounds(
        graph, lo.reshape(1, *graph.input_shape), hi.reshape(1, *graph.input_shape)
    )
    nonlinear = [n for n in graph if n.kind != "linear"]
    centre = (lo + hi) / 2
    best = [-np.inf, np.inf]

    def prefix(node):
        return Graph(graph.input_name, graph.input_shape, list(graph), node.name)

    def visit(k, pattern):
        if k == len(nonlinear):
            region = regions.linear_region(graph, centre, pattern)
            if minmax:
                x = regions.region_minmax(region, lo, hi)
                if x is not None:
                    best[1] = min(best[1], float((region.A @ x + region.b).max()))
                return
            for sign in (1.0, -1.0):
                x = regions.region_optimum(region, lo, hi, sign * (c @ region.A))
                if x is not None:
                    v = float(c @ (region.A @ x + region.b))
                    best[0 if sign > 0 else 1] = (max if sign > 0 else min)(
                        best[0 if sign > 0 else 1], v
                    )
            return
        node = nonlinear[k]
        z_shape = graph.shapes[node.inputs[0]]
        l_, u_ = ib[node.inputs[0]]
        opts = _options(node, l_[0], u_[0], z_shape)
        sub = prefix(node)
        for choice in itertools.product(*opts):
            p = {**pattern, node.name: _pattern_array(node, choice, z_shape)}
            if _feasible(regions.linear_region(sub, centre, p), lo, hi):
                visit(k + 1, p)

    visit(0, {})
    return best[0], best[1]


def _box(rng, graph, width=1.0):
    centre = rng.normal(size=graph.input_shape) * 0.3
    return centre - width / 2, centre + width / 2


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", sorted(NETS))
def test_matches_brute_force(kind, seed):
    rng = np.random.default_rng(100 * seed + len(kind))
    graph = NETS[kind](rng)
    lo, hi = _box(rng, graph)
    r = milp.run(graph, Box.from_bounds(lo, hi, graph.input_shape))
    assert r.status == Status.OK
    assert r.info["milp"]["boxes"][0]["binaries"] > 0  # not a single linear piece
    for j in range(graph.output_size):
        c = np.eye(graph.output_size)[j]
        top, bottom = brute_force(graph, lo, hi, c)
        assert abs(r.upper[j] - top) <= TOL, (kind, j, r.upper[j], top)
        assert abs(r.lower[j] - bottom) <= TOL, (kind, j, r.lower[j], bottom)
        assert abs(r.inner_upper[j] - top) <= TOL and abs(r.inner_lower[j] - bottom) <= TOL
    assert r.exact.all()


def test_objective_difference_matches_brute_force():
    rng = np.random.default_rng(7)
    graph = relu_net(rng, 2, (5, 5), 3)
    lo, hi = _box(rng, graph)
    c = np.array([[1.0, -1.0, 0.0], [0.0, 2.0, 1.0]])
    r = milp.run(graph, Box.from_bounds(lo, hi, graph.input_shape), objective=c)
    assert r.upper.shape == (2,)
    for k in range(2):
        top, bottom = brute_force(graph, lo, hi, c[k])
        assert abs(r.upper[k] - top) <= TOL and abs(r.lower[k] - bottom) <= TOL
    # the rows are bounded jointly: tighter than combining per-output ranges
    per = milp.run(graph, Box.from_bounds(lo, hi, graph.input_shape))
    assert r.upper[0] <= per.upper[0] - per.lower[1] + 1e-9


def test_witnesses_give_their_values():
    rng = np.random.default_rng(3)
    graph = relu_net(rng, 3, (8, 6), 3)
    lo, hi = _box(rng, graph, 2.0)
    r = milp.run(graph, Box.from_bounds(lo, hi, graph.input_shape))
    for wit, inner in ((r.witness_upper, r.inner_upper), (r.witness_lower, r.inner_lower)):
        assert np.all(wit >= lo) and np.all(wit <= hi)
        got = np.diag(graph.forward(wit).reshape(graph.output_size, -1))
        np.testing.assert_array_equal(got, inner)
    assert r.exact.all()
    assert r.info["witness_mismatch"] == []
    assert r.info["milp"]["boxes"][0]["binaries"] > 0  # the box really needs binaries


def test_witness_mismatch_is_reported(monkeypatch):
    """A solver optimum whose input does not reproduce it is reported, never hidden."""
    from nnrange.milp import Encoding

    rng = np.random.default_rng(3)
    graph = relu_net(rng, 3, (8, 6), 3)
    lo, hi = _box(rng, graph, 2.0)
    honest = Encoding.input_of
    monkeypatch.setattr(
        Encoding,
        "input_of",
        lambda self, cols: (honest(self, cols) + lo) / 2,  # a wrong input
    )
    with pytest.warns(RuntimeWarning, match="disagree with the forward pass"):
        r = milp.run(graph, Box.from_bounds(lo, hi, graph.input_shape), start=False)
    bad = r.info["witness_mismatch"]
    assert bad and {"box", "output", "sense", "solver", "forward"} <= set(bad[0])
    got = np.diag(graph.forward(r.witness_upper).reshape(graph.output_size, -1))
    np.testing.assert_array_equal(got, r.inner_upper)  # inner bounds stay attained values


def test_point_box_is_the_forward_value():
    rng = np.random.default_rng(4)
    graph = maxpool_net(rng)
    x = rng.normal(size=3)
    r = milp.run(graph, Box.from_bounds(x, x, graph.input_shape))
    y = graph.forward(x[None])[0]
    np.testing.assert_allclose(r.lower, y, atol=1e-9)
    np.testing.assert_allclose(r.upper, y, atol=1e-9)
    assert r.exact.all()


def test_outputs_subset_keeps_crown_bounds_elsewhere():
    rng = np.random.default_rng(5)
    graph = relu_net(rng, 2, (6, 6), 3)
    box = Box.from_bounds(*_box(rng, graph, 2.0), graph.input_shape)
    r = milp.run(graph, box, outputs=[1])
    c = crown.run(graph, box)
    full = milp.run(graph, box)
    np.testing.assert_allclose(r.upper[[0, 2]], c.upper[[0, 2]])
    assert abs(r.upper[1] - full.upper[1]) <= TOL and abs(r.lower[1] - full.lower[1]) <= TOL
    assert {s["output"] for s in r.info["milp"]["boxes"][0]["solves"]} == {1}


def test_cbc_agrees_with_highs():
    rng = np.random.default_rng(6)
    graph = relu_net(rng, 2, (6, 5), 2)
    box = Box.from_bounds(*_box(rng, graph, 2.0), graph.input_shape)
    h = milp.run(graph, box, start=False)
    c = milp.run(graph, box, solver="cbc", start=False)
    assert c.info["milp"]["solver"] == "cbc"
    np.testing.assert_allclose(c.upper, h.upper, atol=TOL)
    np.testing.assert_allclose(c.lower, h.lower, atol=TOL)
    assert c.exact.all()


def test_lp_tightening_changes_nothing_but_speed():
    rng = np.random.default_rng(8)
    graph = relu_net(rng, 3, (10, 10), 2)
    box = Box.from_bounds(*_box(rng, graph, 2.0), graph.input_shape)
    a = milp.run(graph, box, tighten="lp")
    b = milp.run(graph, box, tighten=None)
    np.testing.assert_allclose(a.upper, b.upper, atol=TOL)
    np.testing.assert_allclose(a.lower, b.lower, atol=TOL)
    info_a, info_b = a.info["milp"]["boxes"][0], b.info["milp"]["boxes"][0]
    assert info_a["binaries"] <= info_b["binaries"]
    assert info_a["tighten"]["lps"] > 0


@pytest.mark.parametrize("kind", sorted(NETS))
def test_compact_encoding_solves_the_same_programs(kind):
    """Neurons no relaxation needs keep no columns in compact mode (they are substituted
    out): the MILP optima must not change; the LP relaxation, which loses those neurons'
    bounds, may only get looser."""
    rng = np.random.default_rng(11)
    graph = NETS[kind](rng)
    lo, hi = _box(rng, graph, 1.5)
    state, _ = crown.compute_state(graph, lo[None], hi[None])
    bounds = {k: (v[0][0], v[1][0]) for k, v in state.bounds.items()}
    encs = [Encoding(graph, lo, hi, bounds, compact=c) for c in (True, False)]
    assert encs[0].model.n_cols <= encs[1].model.n_cols
    if kind == "relu":
        assert encs[0].model.n_cols < encs[1].model.n_cols
    for j in range(graph.output_size):
        for sign in (1.0, -1.0):
            values = []
            for enc, integer in itertools.product(encs, (False, True)):
                cost, offset = enc.objective(sign * np.eye(graph.output_size)[j])
                out = HighsSolver(enc.model, integer=integer).solve(cost, offset)
                assert out.status == "optimal"
                values.append(out.value)
            lp_c, mip_c, lp_f, mip_f = values
            assert lp_c <= lp_f + TOL and abs(mip_c - mip_f) <= TOL, (kind, j, values)


def test_linear_matrices_reproduce_a_conv():
    rng = np.random.default_rng(9)
    window = Window((2, 2), (2, 1), (1, 1), (1, 0), (0, 1))
    conv = Conv("c", ["x"], rng.normal(size=(4, 1, 2, 2)), rng.normal(size=4), window, groups=2)
    g = Graph("x", (2, 4, 3), [conv], "c")
    mats, const = linear_matrices(g.nodes["c"])
    x = rng.normal(size=(5, 2, 4, 3))
    np.testing.assert_allclose(
        (mats[0] @ x.reshape(5, -1).T).T + const, g.forward(x).reshape(5, -1)
    )


# ---------------------------------------------------------------- refusals and relaxations
def test_refuses_sigmoid_with_a_clear_message():
    graph = random_mlp(np.random.default_rng(0), ["sigmoid"])
    box = Box.from_bounds(-1, 1, graph.input_shape)
    with pytest.raises(EngineError, match=r"'sigmoid\d+' \(Sigmoid\).*relaxed=True"):
        milp.run(graph, box)
    with pytest.raises(EngineError, match="Sigmoid"):
        nnrange.bounds(graph, -1, 1, method="mip")
    assert ENGINES["milp"].supports(graph) is not None
    assert ENGINES["milp"].supports(relu_net(np.random.default_rng(0))) is None


def test_relaxed_sigmoid_is_sound():
    rng = np.random.default_rng(11)
    graph = random_mlp(rng, ["sigmoid", "relu", "tanh"], n_in=3)
    lo, hi = -np.ones(3), np.ones(3)
    box = Box.from_bounds(lo, hi, graph.input_shape)
    r = milp.run(graph, box, relaxed=True)
    assert r.info["milp"]["exact_encoding"] is False
    ys = graph.forward(rng.uniform(lo, hi, size=(4000, 3))).reshape(4000, -1)
    assert np.all(ys <= r.upper + 1e-9) and np.all(ys >= r.lower - 1e-9)
    c = crown.run(graph, box)
    assert np.all(r.upper <= c.upper + 1e-12) and np.all(r.lower >= c.lower - 1e-12)
    r.check(strict=True)


# ---------------------------------------------------------------- limits
def _hard_net():
    rng = np.random.default_rng(12)
    return relu_net(rng, 5, (40, 40, 40), 3)


def test_time_limit_gives_sound_bounds_and_timeout():
    graph = _hard_net()
    lo, hi = -np.ones(5), np.ones(5)
    box = Box.from_bounds(lo, hi, graph.input_shape)
    r = milp.run(graph, box, solve_time_limit=0.02, tighten=None)
    assert r.status == Status.TIMEOUT
    assert any(s["status"] == "timeout" for s in r.info["milp"]["boxes"][0]["solves"])
    ys = graph.forward(np.random.default_rng(0).uniform(lo, hi, size=(5000, 5)))
    assert np.all(ys <= r.upper + 1e-9) and np.all(ys >= r.lower - 1e-9)
    c = crown.run(graph, box)
    assert np.all(r.upper <= c.upper) and np.all(r.lower >= c.lower)
    r.check(strict=True)


def test_run_time_limit_and_progress():
    graph = _hard_net()
    box = Box.from_bounds(-1, 1, graph.input_shape)
    events = []
    r = milp.run(graph, box, time_limit=0.0, progress=events.append, outputs=[0, 2])
    assert r.status == Status.TIMEOUT
    assert [e["remaining"] for e in events] == [3, 2, 1, 0]
    assert [(e["output"], e["sense"]) for e in events][:2] == [(0, "max"), (0, "min")]
    # no time: the bounds of the CROWN state the MILP is built from (both slope sets on every
    # layer), still sound
    c = crown.run(graph, box, two_slopes=True)
    np.testing.assert_allclose(r.upper, c.upper)
    r.check(strict=True)


# ---------------------------------------------------------------- solve_range (branch and bound)
def test_solve_range_and_cutoff():
    rng = np.random.default_rng(13)
    graph = relu_net(rng, 2, (6, 6), 2)
    lo, hi = _box(rng, graph, 2.0)
    c = np.array([1.0, -0.5])
    top, bottom = brute_force(graph, lo, hi, c)
    res = milp.solve_range(graph, lo, hi, c, "max")
    assert res.status == Status.OK and abs(res.bound - top) <= TOL
    assert abs(float(c @ graph.forward(res.x[None])[0]) - res.value) <= 1e-12
    assert abs(res.value - top) <= TOL
    low = milp.solve_range(graph, lo, hi, c, "min")
    assert abs(low.bound - bottom) <= TOL
    # a cutoff above the maximum: nothing better exists, the bound is the cutoff
    cut = milp.solve_range(graph, lo, hi, c, "max", cutoff=top + 0.01)
    assert cut.status == Status.OK and cut.bound == top + 0.01
    # a cutoff below it: the search still finds the maximum
    below = milp.solve_range(graph, lo, hi, c, "max", cutoff=top - 0.05)
    assert abs(below.bound - top) <= TOL and below.value >= top - 0.05
    # bounds handed in by the caller (as branch and bound would) give the same answer
    state, _ = crown.compute_state(graph, lo[None], hi[None])
    pre = {n: state.bounds[n] for n in ("d0", "d1")}
    again = milp.solve_range(graph, lo, hi, c, "max", pre_bounds=pre)
    assert abs(again.bound - top) <= TOL


def _minmax_case(seed: int):
    """A small ReLU net, a box, the brute-force minimum of its largest output, CROWN's state
    and the hidden layers' bounds."""
    rng = np.random.default_rng(40 + seed)
    graph = relu_net(rng, 2, (6, 5), 3)
    lo, hi = _box(rng, graph, 2.0)
    _, exact = brute_force(graph, lo, hi, None, minmax=True)
    state, _ = crown.compute_state(graph, lo[None], hi[None])
    pre = {n: (state.bounds[n][0][0], state.bounds[n][1][0]) for n in ("d0", "d1")}
    return graph, lo, hi, exact, state, pre


@pytest.mark.parametrize("seed", range(3))
def test_solve_minmax_matches_brute_force(seed):
    """The minimum over the box of the largest output: exact, with a witness, and decided
    against a level through the LP or a cutoff without losing soundness."""
    graph, lo, hi, exact, state, pre = _minmax_case(seed)
    res = milp.solve_minmax(graph, lo, hi, pre)
    assert res.status == Status.OK
    assert res.bound <= exact + 1e-9 and abs(res.bound - exact) <= TOL
    assert abs(float(graph.forward(res.x[None]).max()) - res.value) <= 1e-12
    assert abs(res.value - exact) <= TOL
    for level in (exact - 0.05, exact + 0.05):
        decided = milp.solve_minmax(graph, lo, hi, pre, enough=level)
        assert decided.bound <= exact + 1e-9  # sound either way
        if level < exact:
            assert decided.bound > level  # proved above the level


@pytest.mark.parametrize("seed", range(3))
def test_solve_minmax_tightens_only_when_the_plain_relaxation_falls_short(seed, monkeypatch):
    """With a level to beat, the LP relaxation over the given bounds comes first: a level far
    below the minimum is proved without one tightening LP; one just below it (which the plain
    relaxation cannot reach on these boxes) still gets tightened and proved, and stays sound."""
    graph, lo, hi, exact, state, pre = _minmax_case(seed)
    crown_low = float(crown.output_bounds(state)[0].max())
    lps = []
    real = milp.LpTightener.__call__
    monkeypatch.setattr(milp.LpTightener, "__call__", lambda *a: lps.append(1) or real(*a))
    easy = milp.solve_minmax(graph, lo, hi, pre, enough=crown_low - 1.0)
    assert easy.bound > crown_low - 1.0 and easy.bound <= exact + 1e-9 and not lps
    plain = milp.solve_minmax(graph, lo, hi, pre, tighten=False, max_binaries=0)
    assert plain.bound < exact - 1e-3  # the relaxation alone leaves a gap here
    level = max(plain.bound, exact - 1e-3)
    hard = milp.solve_minmax(graph, lo, hi, pre, enough=level)
    assert lps and level < hard.bound <= exact + 1e-9


@pytest.mark.parametrize("seed", range(2))
def test_split_box_matches_brute_force(seed):
    """Input splitting with MILP leaves reaches the exact range (to its gap) with witnesses."""
    rng = np.random.default_rng(70 + seed)
    graph = relu_net(rng, 2, (6, 5), 2)
    lo, hi = _box(rng, graph, 2.0)
    r = milp.run(graph, Box.from_bounds(lo, hi, graph.input_shape), split=True)
    info = r.info["milp"]["boxes"][0]
    assert r.status == Status.OK and info["split"] and info["pieces"] > 0
    for j in range(2):
        top, bottom = brute_force(graph, lo, hi, np.eye(2)[j])
        assert top - TOL <= r.upper[j] <= top + milp.SPLIT_ATOL + TOL
        assert bottom - milp.SPLIT_ATOL - TOL <= r.lower[j] <= bottom + TOL
        assert top - milp.SPLIT_ATOL - TOL <= r.inner_upper[j] <= top + TOL
        assert bottom - TOL <= r.inner_lower[j] <= bottom + milp.SPLIT_ATOL + TOL
    assert r.info["witness_mismatch"] == []


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("early", [True, False])
def test_split_leaf_policy_follows_the_unstable_count(seed, early, monkeypatch):
    """Split boxes with few unstable neurons solve leaves from the start and split by rank,
    wider ones solve only small leaves (from the start too) and split mixed; both reach the
    brute-force range."""
    from nnrange.engines import bab

    if not early:
        monkeypatch.setattr(milp, "EARLY_LEAVES_UNSTABLE", 0)
        monkeypatch.setattr(bab, "RANK_UNSTABLE", 0)
    seen, modes = [], []
    real = bab.minimize

    def spy(*args, **kwargs):
        seen.append(kwargs.get("leaves"))
        modes.append(kwargs.get("branching"))
        return real(*args, **kwargs)

    monkeypatch.setattr(bab, "minimize", spy)
    rng = np.random.default_rng(74 + seed)
    graph = relu_net(rng, 2, (7, 6), 1)
    lo, hi = _box(rng, graph, 2.0)
    r = milp.run(graph, Box.from_bounds(lo, hi, graph.input_shape), split=True)
    expected = bab.EARLY_LEAVES if early else bab.FINE_LEAVES
    assert seen and all(p == expected for p in seen)
    assert set(modes) == {"rank" if early else "mixed"}
    top, bottom = brute_force(graph, lo, hi, np.ones(1))
    assert r.status == Status.OK
    assert top - TOL <= r.upper[0] <= top + milp.SPLIT_ATOL + TOL
    assert bottom - milp.SPLIT_ATOL - TOL <= r.lower[0] <= bottom + TOL


def test_boxes_with_many_unstable_neurons_are_split(monkeypatch):
    rng = np.random.default_rng(72)
    graph = relu_net(rng, 2, (6, 5), 2)
    box = Box.from_bounds(*_box(rng, graph, 2.0), graph.input_shape)
    assert "split" not in milp.run(graph, box).info["milp"]["boxes"][0]
    monkeypatch.setattr(milp, "SPLIT_BINARIES", 0)
    assert milp.run(graph, box).info["milp"]["boxes"][0]["split"]
    assert "split" not in milp.run(graph, box, split=False).info["milp"]["boxes"][0]


def test_split_refuses_many_inputs_and_smooth_nets():
    rng = np.random.default_rng(73)
    graph = relu_net(rng, 80, (6,), 2)
    box = Box.from_bounds(-np.ones(80), np.ones(80), graph.input_shape)
    with pytest.raises(EngineError, match="at most 64 input values.*has 80"):
        milp.run(graph, box, split=True)
    smooth = relu_net(rng, 2, (4,), 1, act=lambda n, i: Sigmoid(n, [i]))
    small = Box.from_bounds(-np.ones(2), np.ones(2), smooth.input_shape)
    with pytest.raises(EngineError, match="piecewise-linear network and relaxed=False"):
        milp.run(smooth, small, split=True, relaxed=True)


# ---------------------------------------------------------------- real networks
@pytest.mark.parametrize(
    ("net", "box_id", "outputs"), [("3_3", "prop_4", [4]), ("1_1", "prop_5", None)]
)
def test_acasxu_matches_reference(bench, net, box_id, outputs):
    """Against the independent exact reference (the full set, 1140 s, is
    benchmarks/milp_acasxu.py): one property 4 output, every property 5 output."""
    ref_path = bench / "reference" / "acasxu_exact.json"
    if not ref_path.exists():
        pytest.skip("reference/acasxu_exact.json absent")
    records = [
        r
        for r in json.loads(ref_path.read_text())["records"]
        if r["net"] == f"ACASXU_run2a_{net}" and r["box_id"] == box_id
    ]
    outs = outputs or [r["output"] for r in records]
    graph = nnrange.load(bench / "acasxu" / f"ACASXU_run2a_{net}_batch_2000.onnx")
    box = Box.from_bounds(records[0]["box_lo"], records[0]["box_hi"], graph.input_shape)
    r = milp.run(graph, box, outputs=outs, solve_time_limit=60)
    assert r.status == Status.OK
    for rec in (r_ for r_ in records if r_["output"] in outs):
        j = rec["output"]
        assert abs(r.lower[j] - rec["min"]) <= 1e-4 and abs(r.upper[j] - rec["max"]) <= 1e-4
        assert r.exact[j]
    assert r.info["witness_mismatch"] == []
    # the reference's own witnesses lie inside the proven range
    for x in (rec["argmin_x"], rec["argmax_x"]):
        y = graph.forward(np.reshape(x, graph.input_shape)[None]).reshape(-1)[4]
        assert r.lower[4] - 1e-9 <= y <= r.upper[4] + 1e-9


#: A 3-6-5-3 SELU net (from a QA fuzz run) on which HiGHS reports the LP relaxation "optimal"
#: without a primal solution; milp's LP shortcut then read a None bound and crashed.
_SELU_NET = [
    [
        [
            1.7420284748077393,
            4.039485454559326,
            2.442312717437744,
            -0.1888177990913391,
            -5.728019714355469,
            0.8957117199897766,
        ],
        [
            2.3672280311584473,
            0.48867684602737427,
            1.6692951917648315,
            -1.4148602485656738,
            -1.141432762145996,
            -2.82716703414917,
        ],
        [
            4.085700988769531,
            0.47518280148506165,
            -1.4774582386016846,
            -3.9955575466156006,
            -0.45992183685302734,
            4.3278937339782715,
        ],
    ],
    [
        1.3857649564743042,
        -2.1735646724700928,
        4.288485050201416,
        4.2855305671691895,
        2.942328453063965,
        2.366450548171997,
    ],
    [
        [
            3.4669554233551025,
            1.629777193069458,
            2.325002431869507,
            -2.340075969696045,
            4.498673439025879,
        ],
        [
            0.6935405731201172,
            6.072635650634766,
            -6.126743793487549,
            2.1162266731262207,
            2.9443845748901367,
        ],
        [
            -1.0287978649139404,
            1.3573329448699951,
            2.2449791431427,
            1.7321445941925049,
            -1.6189777851104736,
        ],
        [
            -0.4258134961128235,
            3.0571184158325195,
            3.8319602012634277,
            0.2969305217266083,
            0.23109742999076843,
        ],
        [
            0.6014890670776367,
            3.1129956245422363,
            -3.1621153354644775,
            -3.9871973991394043,
            0.3729448914527893,
        ],
        [
            -3.3195862770080566,
            -1.7613284587860107,
            0.2588872015476227,
            1.4475147724151611,
            -3.216275453567505,
        ],
    ],
    [
        2.4048163890838623,
        -5.321144104003906,
        1.6362481117248535,
        -4.7331953048706055,
        -3.824770212173462,
    ],
    [
        [1.9266657829284668, -1.2190866470336914, -2.3866748809814453],
        [-1.3343303203582764, 1.3950977325439453, -0.1621403843164444],
        [-0.0881483256816864, 3.1643292903900146, -2.149171829223633],
        [-1.4158010482788086, -1.56728994846344, 3.5067665576934814],
        [2.974216938018799, 3.861229658126831, -0.10125181823968887],
    ],
    [-0.4704076647758484, 2.558319091796875, -1.1832350492477417],
]


def test_lp_reported_optimal_without_a_solution_is_not_trusted():
    from onnx import TensorProto, helper, numpy_helper

    arrays = [np.array(a, dtype=np.float32) for a in _SELU_NET]
    nodes, inits, x = [], [], "x"
    for i in range(3):
        inits += [
            numpy_helper.from_array(arrays[2 * i], f"w{i}"),
            numpy_helper.from_array(arrays[2 * i + 1], f"b{i}"),
        ]
        out = "y" if i == 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"z{i}" if i < 2 else out]))
        if i < 2:
            nodes.append(helper.make_node("Selu", [f"z{i}"], [out]))
        x = out
    graph = helper.make_graph(
        nodes,
        "selu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    lo, hi = [-1.0, 0.5, -3.0], [1.0, 0.5, -3.0]
    crown_r = nnrange.bounds(model, lo, hi, method="crown", inner=False)
    r = nnrange.bounds(model, lo, hi, method="milp", relaxed=True, time_limit=30)
    # bounds() checks its sampled witnesses against them; never looser than CROWN, its start
    assert np.all(r.lower >= crown_r.lower - 1e-9) and np.all(r.upper <= crown_r.upper + 1e-9)


def test_objective_through_bounds_gets_inner_bounds_of_the_objective():
    # y = x on [0, 1]^3 and the row c = (1, -1, 0.5): c.y ranges over [-1, 1.5], attained at
    # (0, 1, 0) and (1, 0, 1). The inner search used to run on y itself: inner bounds of the
    # wrong functions (a self-check warning with one output, a reshape crash with three).
    g = Graph("x", (3,), [Dense("y", ["x"], np.eye(3))], "y")
    c = np.array([[1.0, -1.0, 0.5]])
    r = nnrange.bounds(g, 0, 1, method="milp", objective=c, strict=True)
    assert r.lower[0] == pytest.approx(-1.0) and r.upper[0] == pytest.approx(1.5)
    assert r.inner_lower[0] == pytest.approx(-1.0) and r.inner_upper[0] == pytest.approx(1.5)
    for w, v in ((r.witness_lower[0], -1.0), (r.witness_upper[0], 1.5)):
        assert (c @ g.forward(w.reshape(1, 3))[0])[0] == pytest.approx(v)
