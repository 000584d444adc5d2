"""The malloc tuning is applied on glibc Linux and can be turned off."""

from __future__ import annotations

import sys

import pytest

from nnrange.allocator import tune_malloc


def test_opt_out_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("NNRANGE_KEEP_MALLOC", "1")
    assert tune_malloc() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_thresholds_are_accepted_on_linux(monkeypatch):
    monkeypatch.delenv("NNRANGE_KEEP_MALLOC", raising=False)
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert tune_malloc() is True
