"""Branch and bound: exact on hand-computed networks, sound when stopped early, identical with
several workers, exact ranges within 1e-4 of the independent ACAS Xu reference, and verify()
matches published VNN-COMP answers with counterexamples checked by ONNX Runtime."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnxruntime as ort
import pytest
from random_graphs import random_box, random_mlp
from test_sampling import _abs_net

import nnrange
from nnrange import Box
from nnrange.engines import bab, crown, sampling
from nnrange.result import Status
from nnrange.spec.vnnlib import parse_vnnlib
from nnrange.verify import Verdict, verify


def test_exact_range_of_hand_computed_network():
    # y = -|x0 - 0.3| on [-1, 1]^2: range [-1.3, 0]
    r = nnrange.bounds(_abs_net(), [-1, -1], [1, 1], method="bab", atol=1e-6)
    assert r.lower[0] == pytest.approx(-1.3, abs=1e-6)
    assert r.upper[0] == pytest.approx(0.0, abs=1e-6)
    assert r.exact.all() and r.status is Status.OK


def test_minimize_takes_the_max_of_rows():
    # g = max(y, -y - 1) = max(-|x0-0.3|, |x0-0.3| - 1): smallest where |x0 - 0.3| = 0.5 -> -0.5
    s = bab.minimize(_abs_net(), [-1, -1], [1, 1], [[1.0], [-1.0]], [0.0, 1.0], atol=1e-5)
    assert s.status is Status.OK
    assert -0.5 - 1e-12 <= s.lower <= -0.5 + 1e-5 and -0.5 <= s.value <= -0.5 + 1e-5


@pytest.mark.parametrize("seed", range(4))
def test_stopped_early_is_still_sound(seed):
    rng = np.random.default_rng(seed)
    g = random_mlp(rng, activations=["relu", "tanh"], n_in=3)
    lo, hi = random_box(rng, g, width=2.0)
    r = nnrange.bounds(g, lo, hi, method="bab", max_pieces=4, atol=1e-9, inner=False)
    assert r.status is Status.TIMEOUT
    box = Box.from_bounds(lo, hi, g.input_shape)
    vals = sampling.evaluate(g, sampling.candidate_points(box, 2000, 64, rng))[0]
    assert np.all(vals >= r.lower - 1e-9) and np.all(vals <= r.upper + 1e-9)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("tighten", [True, False])
def test_exact_leaves_decide_a_max_of_rows_soundly(seed, tighten, monkeypatch):
    """With leaf solves from the start, the search proves a level just below the exact minimum
    of the largest output (brute force over activation patterns) and never claims more."""
    from test_milp import brute_force, relu_net

    rng = np.random.default_rng(60 + seed)
    g = relu_net(rng, 2, (6, 5), 3)
    lo, hi = -np.ones(2), np.ones(2)
    _, exact = brute_force(g, lo, hi, None, minmax=True)
    eye = np.eye(3)
    now = bab.Leaves(after=0.0, tighten=tighten)
    s = bab.minimize(g, lo, hi, eye, np.zeros(3), target=exact - 1e-3, time_limit=60, leaves=now)
    assert s.status is Status.OK and exact - 1e-3 < s.lower <= exact + 1e-9
    s = bab.minimize(g, lo, hi, eye, np.zeros(3), atol=1e-6, time_limit=60, leaves=now)
    assert s.lower <= exact + 1e-9 and abs(s.value - exact) <= 1e-5


def test_a_failing_leaf_solver_warns_and_the_search_goes_on(monkeypatch):
    from test_milp import relu_net

    def broken(*args, **kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(bab.milp, "solve_minmax", broken)
    g = relu_net(np.random.default_rng(61), 2, (6, 5), 3)
    now = bab.Leaves(after=0.0)
    with pytest.warns(RuntimeWarning, match="leaf solves stopped.*solver crashed"):
        s = bab.minimize(g, -np.ones(2), np.ones(2), np.eye(3), np.zeros(3), atol=1e-6, leaves=now)
    assert s.status is Status.OK and s.lower <= s.value <= s.lower + 1e-6


def test_workers_give_identical_results():
    g = random_mlp(np.random.default_rng(3), activations=["relu"], n_in=3)
    opts = {"method": "bab", "max_pieces": 40, "inner": False, "time_limit": 600}
    one = nnrange.bounds(g, -1, 1, workers=1, **opts)
    two = nnrange.bounds(g, -1, 1, workers=2, **opts)
    np.testing.assert_array_equal(one.lower, two.lower)
    np.testing.assert_array_equal(one.upper, two.upper)
    np.testing.assert_array_equal(one.inner_upper, two.inner_upper)


def test_verify_hand_computed_properties():
    net = _abs_net()
    head = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)"
    box = "(assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= X_1 -1))(assert (<= X_1 1))"
    holds = verify(net, parse_vnnlib(head + box + "(assert (>= Y_0 0.01))"))
    assert holds.verdict is Verdict.HOLDS
    bad = verify(net, parse_vnnlib(head + box + "(assert (>= Y_0 -0.01))"))
    assert bad.verdict is Verdict.VIOLATED
    assert net.forward(bad.counterexample[None])[0, 0] >= -0.01
    assert np.all(np.abs(bad.counterexample) <= 1)


# ---------------------------------------------------------------- shared benchmarks
def _exact_cases(bench, boxes):
    data = json.loads((bench / "reference" / "acasxu_exact.json").read_text())
    return [r for r in data["records"] if r["net"] == "ACASXU_run2a_1_1" and r["box_id"] in boxes]


def test_exact_ranges_match_reference_on_acasxu(bench):
    # these boxes close in well under a second per output; benchmarks/bab_exact.py runs all
    cases = _exact_cases(bench, {"prop_4", "prop_5"})
    assert cases
    graph = nnrange.load(bench / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    for c in cases:
        r = nnrange.bounds(
            graph,
            c["box_lo"],
            c["box_hi"],
            method="bab",
            outputs=[c["output"]],
            atol=1e-4,
            time_limit=60,
            inner=False,
        )
        j = c["output"]
        assert r.status is Status.OK
        slack = 1e-4 + 1e-6  # the reference is exact to a MIP gap of 1e-6
        assert abs(r.lower[j] - c["min"]) <= slack and abs(r.upper[j] - c["max"]) <= slack
        assert r.lower[j] <= c["min"] + 1e-9 and r.upper[j] >= c["max"] - 1e-9  # sound


def _answers(bench):
    with open(bench / "acasxu" / "vnncomp2021_answers.csv") as f:
        return {(r["onnx"], r["vnnlib"]): r["answer"] for r in csv.DictReader(f)}


@pytest.mark.parametrize(
    "net,prop",
    # 1_9 prop_7: the counterexample sits in a tiny region on the box's faces (on-face samples
    # and the LP over their linear region find it; uniform samples and the bounds did not)
    [("1_1", 1), ("2_1", 2), ("3_1", 3), ("1_7", 4), ("2_4", 4), ("1_9", 3), ("1_9", 7)],
)
def test_verify_matches_published_acasxu_answers(bench, net, prop):
    onnx_path = bench / "acasxu" / f"ACASXU_run2a_{net}_batch_2000.onnx"
    prop_path = bench / "acasxu" / f"prop_{prop}.vnnlib"
    r = verify(onnx_path, prop_path, timeout=60)
    assert r.verdict.value == _answers(bench)[(onnx_path.name, prop_path.name)]
    if r.verdict is Verdict.VIOLATED:
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        y = sess.run(None, {name: r.counterexample.astype(np.float32).reshape(1, 1, 1, 5)})[0]
        spec = nnrange.spec.vnnlib.load_vnnlib(prop_path)
        assert spec.is_unsafe(y.reshape(-1).astype(np.float64))


def test_verify_with_workers_decides_the_same():
    # a pair that the short first round cannot settle goes to the process pool
    net = _abs_net()
    head = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)"
    box = "(assert (>= X_0 -1))(assert (<= X_0 1))(assert (>= X_1 -1))(assert (<= X_1 1))"
    prop = parse_vnnlib(head + box + "(assert (>= Y_0 0.000001))")
    one = verify(net, prop, workers=1, first_try=0.0)
    two = verify(net, prop, workers=2, first_try=0.0)
    assert one.verdict is two.verdict is Verdict.HOLDS


def test_strong_branching_is_exact_on_hand_computed_network():
    for sign, expected in ((1.0, -1.3), (-1.0, 0.0)):  # min y, then min -y = -max y
        s = bab.minimize(_abs_net(), [-1, -1], [1, 1], [[sign]], atol=1e-6, branching="strong")
        assert s.status is Status.OK
        assert expected - 1e-6 <= s.lower <= expected + 1e-12 and abs(s.value - expected) <= 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_branching_modes_against_the_milp_optimum(seed):
    # an independent exact answer: the MILP's proven optimum of the first output. Rank
    # and mixed branching reach it; strong branching stays sound when stopped (alone it can
    # stall on some boxes, which is why verify() runs it side by side with rank branching)
    rng = np.random.default_rng(seed)
    g = random_mlp(rng, activations=["relu"], n_in=3, softmax=False)
    lo, hi = random_box(rng, g, width=2.0)
    exact = nnrange.bounds(g, lo, hi, method="milp", outputs=[0], inner=False)
    assert exact.exact[0]
    w = np.zeros((1, g.output_size))
    w[0, 0] = 1.0
    for mode, limit in (("rank", 120), ("mixed", 120), ("strong", 3)):
        s = bab.minimize(g, lo, hi, w, atol=1e-6, branching=mode, time_limit=limit)
        assert s.lower <= exact.lower[0] + 1e-6 and s.value >= exact.lower[0] - 1e-6
        if mode != "strong":
            assert s.status is Status.OK and s.value - exact.lower[0] <= 2e-6


def test_unknown_branching_mode_is_refused():
    with pytest.raises(ValueError, match="branching must be one of"):
        bab.minimize(_abs_net(), [-1, -1], [1, 1], [[1.0]], branching="widest")


def test_leaf_budget_follows_how_often_leaves_prove_their_piece():
    leaves = bab.Leaves(share=0.5, max_share=0.9)
    assert leaves.budget(10.0, 0, 0) == pytest.approx(5.0)  # no evidence: the base share
    assert leaves.budget(10.0, 98, 98) == pytest.approx(9.0)  # all proved: capped at 0.9
    assert leaves.budget(10.0, 98, 0) == pytest.approx(0.5)  # none proved: a tenth of 0.5
    assert leaves.budget(10.0, 8, 6) == pytest.approx(7.0)  # rate (1+6)/(2+8) = 0.7


def test_bounds_passes_the_leaf_policy_to_every_search(monkeypatch):
    from test_milp import relu_net

    seen = []
    real = bab.minimize

    def spy(*args, **kwargs):
        seen.append(kwargs["leaves"])
        return real(*args, **kwargs)

    monkeypatch.setattr(bab, "minimize", spy)
    g = relu_net(np.random.default_rng(62), 2, (6, 5), 2)
    policy = bab.Leaves(unstable=0)
    nnrange.bounds(g, -np.ones(2), np.ones(2), method="bab", leaves=policy, inner=False)
    assert seen and all(p is policy for p in seen)


def _whole_box_solves(monkeypatch, lo, hi) -> list:
    """Spy on ``milp.solve_minmax``: the results of its calls on the whole box ``[lo, hi]``."""
    seen = []
    real = bab.milp.solve_minmax

    def spy(graph, p_lo, p_hi, *args, **kwargs):
        res = real(graph, p_lo, p_hi, *args, **kwargs)
        if np.array_equal(np.ravel(p_lo), lo) and np.array_equal(np.ravel(p_hi), hi):
            seen.append(res)
        return res

    monkeypatch.setattr(bab.milp, "solve_minmax", spy)
    return seen


@pytest.mark.parametrize("seed", range(3))
def test_a_delayed_whole_box_solve_closes_the_range(seed, monkeypatch):
    """Input splitting that has not closed after ``root_after`` seconds solves the whole box
    once (one MILP): the search ends at the brute-force optimum, its bound never above it."""
    from test_milp import brute_force, relu_net

    rng = np.random.default_rng(80 + seed)
    g = relu_net(rng, 3, (6, 5), 1)
    lo, hi = -np.ones(3), np.ones(3)
    _, exact = brute_force(g, lo, hi, np.ones(1))
    seen = _whole_box_solves(monkeypatch, lo, hi)
    now = bab.Leaves(unstable=0, root=0.9, root_after=1e-9, root_unstable=None, root_binaries=None)
    s = bab.minimize(g, lo, hi, np.ones((1, 1)), atol=1e-6, branching="rank", leaves=now, batch=1)
    assert len(seen) == 1 and seen[0].status is Status.OK
    assert s.status is Status.OK and s.lower <= exact + 1e-9 and abs(s.value - exact) <= 1e-6


def test_the_whole_box_solve_is_skipped_on_wide_boxes(monkeypatch):
    # too many unstable neurons under CROWN: no solve; too many binaries after LP tightening:
    # only the LP relaxation, whose bound is sound but not the optimum
    from test_milp import brute_force, relu_net

    g = relu_net(np.random.default_rng(81), 3, (6, 5), 1)
    lo, hi = -np.ones(3), np.ones(3)
    _, exact = brute_force(g, lo, hi, np.ones(1))
    seen = _whole_box_solves(monkeypatch, lo, hi)
    wide = bab.Leaves(unstable=0, root=0.9, root_after=1e-9, root_unstable=0)
    s = bab.minimize(g, lo, hi, np.ones((1, 1)), atol=1e-6, leaves=wide, batch=1)
    assert not seen and s.status is Status.OK and abs(s.value - exact) <= 1e-6
    r = bab.milp.solve_minmax(g, lo, hi, bab.milp._bounds_for(g, lo, hi, None)[0], max_binaries=0)
    assert r.status is Status.TIMEOUT and r.bound <= exact + 1e-9


# ---------------------------------------------------------------- ReLU splitting
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("leaves", [bab.Leaves(unstable=0, root=0.0), bab.RELU_LEAVES])
def test_relu_splitting_reaches_the_brute_force_optimum(seed, leaves):
    """Splitting ReLUs alone (no exact leaves; pieces with every neuron decided are affine, an
    LP settles them), or after an exact solve of the whole box whose LP-tightened neuron bounds
    the pieces inherit, with exact leaves, closes the gap to the optimum over all activation
    patterns and never claims more."""
    from test_milp import brute_force, relu_net

    rng = np.random.default_rng(70 + seed)
    g = relu_net(rng, 3, (6, 5), 2)
    lo, hi = -np.ones(3), np.ones(3)
    c = np.array([1.0, -0.5])
    top, bottom = brute_force(g, lo, hi, c)
    for sign, exact in ((1.0, bottom), (-1.0, -top)):  # min c.y, then min -c.y = -max c.y
        s = bab.minimize(g, lo, hi, sign * c[None], atol=1e-7, branching="relu", leaves=leaves)
        assert s.status is Status.OK
        assert s.lower <= exact + 1e-9 and abs(s.value - exact) <= 1e-6
        assert sign * float(c @ g.forward(s.witness[None])[0]) == pytest.approx(s.value)


@pytest.mark.parametrize("seed", range(4))
def test_relu_splitting_with_split_multipliers_reaches_the_brute_force_optimum(seed, monkeypatch):
    """Open pieces refined by alpha-CROWN with beta-CROWN's split multipliers from the first
    batch on (not after 2 s): still never more than the optimum, and the gap closes."""
    from test_milp import brute_force, relu_net

    calls = []
    optimize = bab.alpha_crown.optimize

    def counted(*args, split_signs=None, **kwargs):
        calls.append(split_signs is not None and any(np.any(v) for v in split_signs.values()))
        return optimize(*args, split_signs=split_signs, **kwargs)

    monkeypatch.setattr(bab, "ALPHA_AFTER", 0.0)
    monkeypatch.setattr(bab.alpha_crown, "optimize", counted)
    rng = np.random.default_rng(90 + seed)
    g = relu_net(rng, 3, (6, 5), 2)
    lo, hi = -np.ones(3), np.ones(3)
    c = np.array([1.0, -0.5])
    top, bottom = brute_force(g, lo, hi, c)
    for sign, exact in ((1.0, bottom), (-1.0, -top)):
        s = bab.minimize(
            g, lo, hi, sign * c[None], atol=1e-7, branching="relu", leaves=bab.Leaves(0, root=0)
        )
        assert s.status is Status.OK
        assert s.lower <= exact + 1e-9 and abs(s.value - exact) <= 1e-6
    assert any(calls)  # the multipliers were in play


@pytest.mark.parametrize("seed", range(8))
def test_alpha_lower_with_split_multipliers_holds_on_the_piece(seed):
    # a ReLU-split piece as minimize makes it (the signs of a few neurons at a sample point,
    # carried as their bounds): the refined lower bound of g holds at every sample in the piece
    from test_milp import relu_net

    from nnrange.graph import with_objective

    rng = np.random.default_rng(seed)
    g = relu_net(rng, 3, (6, 5), 2)
    obj = with_objective(g, rng.normal(size=(1, 2)), np.zeros(1))
    lo, hi = -np.ones((1, 3)), np.ones((1, 3))
    pts = rng.uniform(lo, hi, size=(20000, 3))
    vals = obj.forward(pts, all_values=True)
    known, inside = {}, np.ones(len(pts), dtype=bool)
    for src in ("d0", "d1"):
        low = np.full((1, vals[src].shape[1]), -np.inf)
        high = np.full((1, vals[src].shape[1]), np.inf)
        for j in rng.choice(vals[src].shape[1], size=2, replace=False):
            active = vals[src][0, j] >= 0
            (low if active else high)[0, j] = 0.0
            inside &= (vals[src][:, j] >= 0) if active else (vals[src][:, j] <= 0)
        known[src] = (low, high)
    state, _ = crown.compute_state(obj, lo, hi, prior=known, two_slopes=False)
    plain = bab._alpha_lower(obj, state, np.array([0]), 1, 0)  # CROWN's
    split = bab._alpha_lower(obj, state, np.array([0]), 1, 20, relu=True)
    g_in = vals[obj.output][inside, 0]
    assert inside.any() and np.all(g_in >= split[0] - 1e-9) and split[0] >= plain[0] - 1e-12


def test_root_bounds_are_computed_once_per_box_and_read_only(monkeypatch):
    from test_milp import relu_net

    g = relu_net(np.random.default_rng(5), 3, (6, 5), 2)
    lo, hi = -np.ones((1, 3)), np.ones((1, 3))
    runs = []
    compute = bab.crown.compute_state
    monkeypatch.setattr(
        bab.crown,
        "compute_state",
        lambda *a, **k: runs.append(k.get("refine") is not None) or compute(*a, **k),
    )
    first = bab._root_bounds(g, lo, hi, deadline=np.inf)
    again = bab._root_bounds(g, lo.copy(), hi.copy(), deadline=np.inf)
    assert again is first and runs == [True]
    assert all(not a.flags.writeable for pair in first.values() for a in pair)
    bab._root_bounds(g, lo, 0.5 * hi, deadline=np.inf)  # another box: computed anew
    assert runs == [True, True]
    cut = bab._root_bounds(g, lo, hi, deadline=0.0)  # cut short: CROWN's, not kept for later
    assert bab._root_bounds(g, lo, hi, deadline=np.inf) is not cut and runs == [True] * 4


@pytest.mark.parametrize("seed", range(3))
def test_relu_splitting_stopped_early_is_sound(seed):
    rng = np.random.default_rng(seed)
    g = random_mlp(rng, activations=["relu"], n_in=4, softmax=False)
    lo, hi = random_box(rng, g, width=2.0)
    r = nnrange.bounds(
        g, lo, hi, method="bab", branching="relu", max_pieces=6, atol=1e-9, inner=False
    )
    box = Box.from_bounds(lo, hi, g.input_shape)
    vals = sampling.evaluate(g, sampling.candidate_points(box, 2000, 64, rng))[0]
    assert np.all(vals >= r.lower - 1e-9) and np.all(vals <= r.upper + 1e-9)


def test_relu_splitting_decides_properties_on_many_inputs():
    # 80 inputs: "auto" splits ReLUs; the property's level just below / above the exact minimum
    # (a MILP's proven optimum) is proved / violated
    from test_milp import relu_net

    g = relu_net(np.random.default_rng(80), 80, (8, 6), 1)
    lo, hi = -0.05 * np.ones(80), 0.05 * np.ones(80)
    assert bab.choose_branching(g, "auto") == "relu"
    exact = nnrange.bounds(g, lo, hi, method="milp", inner=False)
    assert exact.exact[0]
    w = np.ones((1, 1))
    proved = bab.minimize(g, lo, hi, w, target=exact.lower[0] - 1e-3, time_limit=60)
    assert proved.lower > exact.lower[0] - 1e-3
    found = bab.minimize(g, lo, hi, w, target=exact.lower[0] + 1e-3, time_limit=60)
    assert found.value <= exact.lower[0] + 1e-3
    assert g.forward(found.witness[None])[0, 0] == pytest.approx(found.value)


def test_auto_branching_splits_inputs_on_few_inputs_or_other_activations():
    from test_milp import relu_net

    assert bab.choose_branching(relu_net(np.random.default_rng(0), 3), "auto") == "rank"
    assert bab.choose_branching(relu_net(np.random.default_rng(0), 3), "auto", "mixed") == "mixed"
    wide_tanh = random_mlp(np.random.default_rng(1), activations=["tanh"], n_in=70)
    assert bab.choose_branching(wide_tanh, "auto") == "rank"
    with pytest.raises(nnrange.errors.EngineError, match="branching='relu'.*input-splitting"):
        bab.choose_branching(wide_tanh, "relu")


def test_relu_splitting_of_an_affine_network_is_one_lp():
    from test_milp import relu_net

    g = relu_net(np.random.default_rng(81), 70, (), 1)  # Dense only
    assert bab.choose_branching(g, "auto") == "rank"  # nothing to split but inputs
    lo, hi = -np.ones(70), np.ones(70)
    w = g.nodes["out"].weight[:, 0]
    exact = g.nodes["out"].bias[0] - np.abs(w).sum()
    s = bab.minimize(g, lo, hi, np.ones((1, 1)), branching="relu", atol=1e-9)
    assert (
        s.status is Status.OK
        and s.lower == pytest.approx(exact)
        and s.value == pytest.approx(exact)
    )


def test_verify_shares_workers_among_pairs_with_relu_splitting():
    from test_milp import relu_net

    from nnrange.verify import _portfolio

    wide = relu_net(np.random.default_rng(0), 80, (4,), 2)
    assert _portfolio(wide, 2, 9) == {"relu": 1}  # the pairs keep both workers busy
    assert _portfolio(wide, 4, 2) == {"relu": 2}  # fewer pairs than workers: cut the boxes
    small = relu_net(np.random.default_rng(0), 3, (4,), 2)
    assert _portfolio(small, 4, 9) == {"rank": 2, "strong": 2}


def test_a_failing_whole_box_solve_warns_and_relu_splitting_goes_on(monkeypatch):
    from test_milp import brute_force, relu_net

    def broken(*args, **kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(bab.milp, "solve_minmax", broken)
    g = relu_net(np.random.default_rng(71), 3, (6, 5), 1)
    lo, hi = -np.ones(3), np.ones(3)
    _, exact = brute_force(g, lo, hi, np.ones(1))
    with pytest.warns(RuntimeWarning, match="leaf solves stopped.*solver crashed"):
        s = bab.minimize(g, lo, hi, np.ones((1, 1)), atol=1e-7, branching="relu")
    assert s.status is Status.OK and s.lower <= exact + 1e-9 and abs(s.value - exact) <= 1e-6


def test_ranges_pick_rank_or_mixed_branching_per_box(monkeypatch):
    # "auto" output ranges: rank splitting on boxes CROWN leaves with few unstable neurons,
    # rank alternated with strong branching (mixed) on wider ones, decided box by box
    from test_milp import relu_net

    g = relu_net(np.random.default_rng(5), 3)
    monkeypatch.setattr(bab, "RANK_UNSTABLE", 3)
    wide_lo, wide_hi = -10 * np.ones(3), 10 * np.ones(3)
    point = np.full(3, 0.3)
    assert bab._range_branching(g, point, point) == "rank"  # a point leaves nothing unstable
    assert bab._range_branching(g, wide_lo, wide_hi) == "mixed"
    seen = []
    monkeypatch.setattr(
        bab,
        "_one",
        lambda args, t: (
            seen.append(args[4]["branching"]) or bab.Search(0.0, 0.0, args[1], Status.OK, 1, 0, 0.0)
        ),
    )
    box = Box.from_bounds(np.stack([point, wide_lo]), np.stack([point, wide_hi]), (3,))
    bab.run(g, box, outputs=[0], workers=1)
    assert seen == ["rank", "rank", "mixed", "mixed"]  # min and max of output 0 per box
    bab.run(g, box, outputs=[0], workers=1, branching="strong")  # a forced mode stands
    assert seen[4:] == ["strong"] * 4


@pytest.mark.parametrize("seed", range(4))
def test_alpha_refinement_of_pieces_is_sound_and_never_looser_than_crown(seed):
    """The optimised output slopes bound every row of every piece at least as tightly as
    CROWN's own slopes, and never above a sampled value of g on the piece."""
    rng = np.random.default_rng(70 + seed)
    g = random_mlp(rng, activations=["relu", "leaky_relu", "tanh"], n_in=3)
    lo, hi = random_box(rng, g, width=2.0)
    weight = rng.normal(size=(2, g.output_size))
    obj = nnrange.graph.with_objective(g, weight, np.zeros(2))
    # 8 pieces: the box halved along every dimension
    corner = np.array(np.meshgrid(*[[0, 1]] * 3, indexing="ij")).reshape(3, -1).T
    mid = (lo + hi) / 2
    p_lo = np.where(corner == 0, lo, mid).reshape(8, -1)
    p_hi = np.where(corner == 0, mid, hi).reshape(8, -1)
    crown_lb, _, _, known, state = bab._bound(obj, p_lo, p_hi, hi - lo)
    sel = np.array([5, 0, 7, 2, 3, 1, 6, 4])  # refined in another order than bounded
    alpha_lb = bab._alpha_lower(obj, state, sel, 2, steps=10)[np.argsort(sel)]
    # CROWN's own back-substitution on the same intermediate bounds (no interval intersection;
    # bab's pieces use the adaptive slopes only)
    state, _ = crown.compute_state(obj, p_lo, p_hi, prior=known, two_slopes=False)
    up, _, _ = crown.backward_upper(state, obj.output, crown.MINUS, entries=np.arange(2))
    assert np.all(alpha_lb >= (-up).max(axis=1) - 1e-9)
    for i in sel:
        box = Box.from_bounds(p_lo[i], p_hi[i], g.input_shape)
        x = sampling.candidate_points(box, 500, 32, rng)[0]
        vals = obj.forward(x).reshape(len(x), -1).max(axis=1)
        assert np.all(vals >= alpha_lb[i] - 1e-9)
    assert np.all(crown_lb >= (-up).max(axis=1) - 1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_searches_with_alpha_refinement_from_the_start_stay_exact(seed, monkeypatch):
    """With the alpha refinement on from the first batch, a max-of-rows search still reaches
    the brute-force minimum and proves nothing above it, and a property just below it holds."""
    from test_milp import brute_force, relu_net

    monkeypatch.setattr(bab, "ALPHA_AFTER", 0.0)
    rng = np.random.default_rng(80 + seed)
    g = relu_net(rng, 2, (6, 5), 3)
    lo, hi = -np.ones(2), np.ones(2)
    _, exact = brute_force(g, lo, hi, None, minmax=True)
    eye = np.eye(3)
    none = bab.Leaves(unstable=0, root=0.0)  # splitting and alpha only
    s = bab.minimize(g, lo, hi, eye, np.zeros(3), atol=1e-6, time_limit=60, leaves=none)
    assert s.status is Status.OK
    assert s.lower <= exact + 1e-9 and abs(s.value - exact) <= 1e-5
    s = bab.minimize(g, lo, hi, eye, np.zeros(3), target=exact - 1e-3, leaves=none)
    assert s.status is Status.OK and exact - 1e-3 < s.lower <= exact + 1e-9


def test_time_left_by_closed_searches_goes_to_open_ones(monkeypatch):
    # six searches (3 outputs x 2 directions); the first stops open on its share, the others
    # close at once: it runs again with what they left and keeps the better bound and value
    from test_milp import relu_net

    g = relu_net(np.random.default_rng(3), 2, (4,), 3)
    calls = []

    def fake(args, time_limit):
        w = args[3]
        first = bool(w[0, 0] > 0)  # the minimum of output 0
        calls.append((first, time_limit))
        again = sum(c[0] for c in calls) > 1
        if first and not again:
            return bab.Search(-5.0, 1.0, np.zeros(2), Status.TIMEOUT, 10, 4, time_limit)
        lower = 0.99 if first else -1.0
        value = 0.995 if first else -1.0
        return bab.Search(lower, value, np.zeros(2), Status.OK, 3, 0, 0.01)

    monkeypatch.setattr(bab, "_one", fake)
    r = bab.run(g, Box.from_bounds(-np.ones(2), np.ones(2), (2,)), atol=0.1, time_limit=12.0)
    shares = [t for first, t in calls if first]
    assert len(shares) == 2 and shares[0] == pytest.approx(2.0, abs=0.1) and shares[1] > 10
    assert r.status is Status.OK and r.lower[0] == pytest.approx(0.99)
