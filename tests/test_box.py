"""Box construction: every accepted layout, and every bad input refused before any work."""

from __future__ import annotations

import numpy as np
import pytest

from nnrange import Box, BoxError


def test_scalar_broadcast_and_flat_sequences():
    b = Box.from_bounds(0, [1, 2, 3, 4], (1, 4))
    assert b.lo.shape == (1, 1, 4) and not b.batched
    np.testing.assert_array_equal(b.hi.reshape(-1), [1, 2, 3, 4])


@pytest.mark.parametrize("shape", [(6,), (1, 2, 3), (2, 3), (6, 1)])
def test_input_shape_with_or_without_batch_axis(shape):
    lo = np.zeros(shape)
    b = Box.from_bounds(lo, lo + 1, (1, 2, 3))
    assert b.lo.shape == (1, 1, 2, 3) and not b.batched


def test_batch_of_boxes_in_several_layouts():
    input_shape = (1, 2, 3)
    for lo in (np.zeros((5, 6)), np.zeros((5, 2, 3)), np.zeros((5, 1, 2, 3))):
        b = Box.from_bounds(lo, 1.0, input_shape)
        assert b.batched and b.n == 5 and b.lo.shape == (5, 1, 2, 3)
        assert b[2].lo.shape == (1, 1, 2, 3)


def test_lo_equal_hi_is_allowed():
    b = Box.from_bounds([0, 1], [0, 2], (2,))
    assert b.radius[0, 0] == 0


def test_lo_greater_than_hi_names_dimension():
    with pytest.raises(
        BoxError, match=r"lo > hi at input dimension 2 \(index \(0, 2\)\).*lo = 5.0, hi = 1.0"
    ):
        Box.from_bounds([0, 0, 5], [1, 1, 1], (1, 3))


def test_lo_greater_than_hi_in_batch_names_box():
    lo = np.zeros((3, 2))
    hi = np.ones((3, 2))
    hi[1, 1] = -1
    with pytest.raises(BoxError, match="box 1, input dimension 1"):
        Box.from_bounds(lo, hi, (2,))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_rejected(bad):
    with pytest.raises(BoxError, match="input dimension 1.*finite"):
        Box.from_bounds([0, bad], [1, 1], (2,))


def test_wrong_size_rejected_with_expected_shape():
    with pytest.raises(BoxError, match=r"shape \(3,\).*input has shape \(1, 5\) \(5 values\)"):
        Box.from_bounds([0, 0, 0], [1, 1, 1], (1, 5))


def test_mismatched_batches_rejected():
    with pytest.raises(BoxError, match="different numbers of boxes"):
        Box.from_bounds(np.zeros((2, 3)), np.ones((4, 3)), (3,))


def test_not_numbers_rejected():
    with pytest.raises(BoxError, match="not a number"):
        Box.from_bounds("abc", 1, (2,))


def test_corners_cover_free_dimensions_only():
    b = Box.from_bounds([0, 5, 0], [1, 5, 2], (3,))
    c = b.corners(16, np.random.default_rng(0))
    assert c.shape == (1, 4, 3)
    assert {tuple(p) for p in c[0]} == {(0, 5, 0), (1, 5, 0), (0, 5, 2), (1, 5, 2)}


def test_batch_of_one_box_stays_batched():
    box = Box.from_bounds(np.zeros((1, 3)), np.ones((1, 3)), (3,))
    assert box.batched and box.n == 1
    single = Box.from_bounds(np.zeros(3), np.ones(3), (3,))
    assert not single.batched


def test_on_faces_points_stay_inside_and_touch_the_bounds():
    box = Box.from_bounds(
        [[0.0, -1.0, 2.0], [5.0, 5.0, 5.0]], [[1.0, 1.0, 2.0], [6.0, 7.0, 5.0]], (3,)
    )
    pts = box.on_faces(4000, np.random.default_rng(0))
    assert pts.shape == (2, 4000, 3)
    assert (pts >= box.lo[:, None]).all() and (pts <= box.hi[:, None]).all()
    at_lo = (pts == box.lo[:, None]).mean(axis=1)
    at_hi = (pts == box.hi[:, None]).mean(axis=1)
    free = box.hi > box.lo
    # each free coordinate sits on each bound about a quarter of the time
    assert np.all(np.abs(at_lo[free] - 0.25) < 0.04) and np.all(np.abs(at_hi[free] - 0.25) < 0.04)
