"""Shared fixtures: strict soundness checks, quiet TensorFlow, the shared benchmark folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ["NNRANGE_STRICT"] = "1"  # any witness escaping an outer bound fails the test
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def benchmarks_dir() -> Path | None:
    """``$NNRANGE_BENCHMARKS`` or ``../shared/benchmarks`` beside the project root, if present."""
    env = os.environ.get("NNRANGE_BENCHMARKS")
    path = Path(env) if env else ROOT.parent / "shared" / "benchmarks"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def bench() -> Path:
    path = benchmarks_dir()
    if path is None:
        pytest.skip(
            "benchmark networks absent: set NNRANGE_BENCHMARKS or provide ../shared/benchmarks"
        )
    return path


@pytest.fixture(scope="session")
def keras_zoo():
    """The Keras layer zoo (built once per session: TensorFlow start-up is slow)."""
    from keras_zoo import build_all

    return build_all()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def close(a, b, tol=1e-5):
    """Max relative-ish difference test used for model-runtime comparisons (float32 models)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b) / (1 + np.abs(b)), initial=0.0) <= tol
