"""VNN-LIB parsing: boxes, output polytopes, disjunctions, and errors with line and column."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import benchmarks_dir

from nnrange import SpecError
from nnrange.spec import load_vnnlib, parse_vnnlib

HEAD = "".join(f"(declare-const {v} Real)\n" for v in ("X_0", "X_1", "Y_0", "Y_1"))


def test_box_and_single_output_constraint():
    p = parse_vnnlib(
        HEAD
        + """
        ; comment
        (assert (>= X_0 -1)) (assert (<= X_0 1.5))
        (assert (<= -2 X_1)) (assert (>= 3e-1 X_1))
        (assert (<= Y_0 Y_1))
    """
    )
    (case,) = p.cases
    np.testing.assert_array_equal(case.lo, [-1, -2])
    np.testing.assert_array_equal(case.hi, [1.5, 0.3])
    ((a, b),) = case.unsafe
    np.testing.assert_array_equal(a, [[1, -1]])  # y0 - y1 <= 0
    np.testing.assert_array_equal(b, [0])
    assert p.is_unsafe([0, 1]) and not p.is_unsafe([1, 0])


def test_linear_terms_and_disjunction_of_outputs():
    p = parse_vnnlib(
        HEAD
        + """
        (assert (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1)))
        (assert (or (and (>= (+ Y_0 (* 2 Y_1)) 3) (<= Y_0 1)) (>= (- Y_1 Y_0) 0.5)))
    """
    )
    (case,) = p.cases
    assert len(case.unsafe) == 2
    a0, b0 = case.unsafe[0]
    np.testing.assert_array_equal(a0, [[-1, -2], [1, 0]])  # -(y0 + 2 y1) <= -3, y0 <= 1
    np.testing.assert_array_equal(b0, [-3, 1])
    assert p.is_unsafe([1, 1]) and p.is_unsafe([0, 0.6]) and not p.is_unsafe([2, 0])


def test_disjunction_of_input_boxes():
    p = parse_vnnlib(
        HEAD
        + """
        (assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))
                    (and (>= X_0 2) (<= X_0 3) (>= X_1 0) (<= X_1 1))))
        (assert (<= Y_0 0))
    """
    )
    assert [c.lo[0] for c in p.cases] == [0, 2]


def test_unclosed_paren_reports_line_and_column():
    with pytest.raises(SpecError, match=r"prop:6:9: '\(' is never closed"):
        parse_vnnlib(HEAD + "\n        (assert (<= X_0 1)\n", "prop")


def test_unknown_variable_reports_position():
    with pytest.raises(SpecError, match=r"p:5:17: unknown name 'X_7'"):
        parse_vnnlib(HEAD + "(assert (<= X_0 X_7))", "p")


def test_unsupported_operator_and_unbounded_input():
    with pytest.raises(SpecError, match="unsupported operator 'not'"):
        parse_vnnlib(HEAD + "(assert (not (<= X_0 1)))")
    with pytest.raises(SpecError, match="X_1 is not bounded"):
        parse_vnnlib(HEAD + "(assert (<= X_0 1)) (assert (>= X_0 0)) (assert (<= X_1 1))")


def test_contradictory_box():
    with pytest.raises(SpecError, match="contradictory"):
        parse_vnnlib(
            HEAD + "(assert (<= X_0 0)) (assert (>= X_0 1)) (assert (<= X_1 1)) (assert (>= X_1 0))"
        )


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_vnnlib(tmp_path / "none.vnnlib")


@pytest.mark.skipif(benchmarks_dir() is None, reason="benchmark properties absent")
def test_every_shared_property_parses():
    files = sorted(benchmarks_dir().rglob("*.vnnlib"))
    assert files
    for f in files:
        p = load_vnnlib(f)
        assert p.cases and all(np.all(c.lo <= c.hi) for c in p.cases)
    p6 = load_vnnlib(benchmarks_dir() / "acasxu" / "prop_6.vnnlib")
    assert len(p6.cases) == 2 and len(p6.cases[0].unsafe) == 4
