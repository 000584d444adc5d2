"""Draw the README's figures into docs/: python docs/make_figures.py"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import nnrange  # noqa: E402
from nnrange import viz  # noqa: E402

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent / "models" / "mlp.onnx"


def histogram(path: Path = HERE / "histogram.png") -> Path:
    """The shipped regressor over [-1, 1]^2: samples, attained and proven bounds."""
    results = {
        m: nnrange.bounds(MODEL, -1.0, 1.0, method=m) for m in ("crown", "ibp", "alpha-crown")
    }
    crown = results.pop("crown")
    fig = viz.histogram(crown, MODEL, lo=-1.0, hi=1.0, others=results, n_samples=5000)
    fig.axes[0].set_title("mlp.onnx over [-1, 1]^2: sampled outputs, attained and proven bounds")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print("wrote", histogram())
