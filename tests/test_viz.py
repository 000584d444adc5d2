"""nnrange.viz: every picture renders with Agg and holds the artists it promises."""

from __future__ import annotations

import re
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import MODELS  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import nnrange  # noqa: E402
from nnrange import viz  # noqa: E402

MLP, CNN, SUM = MODELS / "mlp.onnx", MODELS / "cnn.onnx", MODELS / "example_sum.onnx"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def mlp_results():
    return {m: nnrange.bounds(MLP, -1, 1, method=m) for m in ("ibp", "crown", "alpha-crown")}


@pytest.fixture(scope="module")
def cnn_results():
    return {m: nnrange.bounds(CNN, 0, 1, method=m, inner=False) for m in ("ibp", "crown")}


def render(fig, tmp_path):
    path = tmp_path / "figure.png"
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000
    return data


def vlines(ax):
    """x positions of the vertical lines of an axes (axvline: two equal x data points)."""
    return [line.get_xdata()[0] for line in ax.lines]


def legend_texts(fig_or_ax):
    legends = fig_or_ax.legends if hasattr(fig_or_ax, "legends") else []
    legend = getattr(fig_or_ax, "get_legend", lambda: None)()
    legends = legends + ([legend] if legend is not None else [])
    return [t.get_text() for lg in legends for t in lg.get_texts()]


# ---------------------------------------------------------------------------- histogram
def test_histogram_one_panel_per_output_with_every_bound(cnn_results, tmp_path):
    r = cnn_results["crown"]
    fig = viz.histogram(r, CNN, lo=0, hi=1, others={"ibp": cnn_results["ibp"]}, bins=25)
    render(fig, tmp_path)
    assert len(fig.axes) == r.n_outputs == 2
    for j, ax in enumerate(fig.axes):
        assert ax.get_title() == f"output {j}"
        # histogram bars: one rectangle per bin
        assert sum(isinstance(p, Rectangle) for p in ax.patches) == 25
        # no inner bounds (inner=False) -> only the outer ones: crown and ibp, both sides
        xs = vlines(ax)
        assert len(xs) == 4
        assert np.allclose(sorted(xs[:2]), [r.lower[j], r.upper[j]])
        assert np.allclose(
            sorted(xs[2:]), [cnn_results["ibp"].lower[j], cnn_results["ibp"].upper[j]]
        )
        lo, hi = ax.get_xlim()
        assert lo <= min(xs) and hi >= max(xs)
    texts = legend_texts(fig)
    assert "proven: crown" in texts and "proven: ibp" in texts
    assert any("sampled outputs" in t for t in texts)


def test_histogram_inner_bounds_exact_range_and_given_samples(tmp_path):
    r = nnrange.bounds(SUM, 0, 1)
    samples = np.random.default_rng(0).uniform(0, 2, size=(300, 1))
    fig = viz.histogram(r, samples=samples, exact=([0.0], [2.0]), bins=10)
    render(fig, tmp_path)
    (ax,) = fig.axes
    xs = vlines(ax)
    assert len(xs) == 4  # inner lower/upper (solid), outer lower/upper (dashed)
    assert [line.get_linestyle() for line in ax.lines] == ["-", "-", "--", "--"]
    assert np.allclose(xs, [0, 2, 0, 2])
    # 10 histogram bars + the shaded exact range
    assert len(ax.patches) == 11
    assert "(exact)" in ax.get_title()
    assert {"exact range", "attained (inner)", "proven: crown"} <= set(legend_texts(fig))


def test_histogram_subset_of_outputs_and_batched_box(tmp_path):
    r = nnrange.bounds(MLP, [[-1, -1], [0, 0]], [[1, 1], [0.5, 0.5]], method="ibp")
    fig = viz.histogram(r, MLP, lo=[[-1, -1], [0, 0]], hi=[[1, 1], [0.5, 0.5]], box=1)
    render(fig, tmp_path)
    (ax,) = fig.axes
    xs = vlines(ax)
    assert np.allclose(xs, [r[1].inner_lower[0], r[1].inner_upper[0], r[1].lower[0], r[1].upper[0]])
    fig = viz.histogram(nnrange.bounds(CNN, 0, 1), outputs=[1])
    assert len(fig.axes) == 1 and fig.axes[0].get_title().startswith("output 1")


def test_histogram_rejects_bad_arguments():
    r = nnrange.bounds(SUM, 0, 1)
    with pytest.raises(ValueError, match="lo= and hi="):
        viz.histogram(r, SUM)
    with pytest.raises(ValueError, match="outputs per row"):
        viz.histogram(r, samples=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="out of range"):
        viz.histogram(r, outputs=[3])
    with pytest.raises(ValueError, match="single box"):
        viz.histogram(r, box=2)


# ---------------------------------------------------------------------------- compare
def test_compare_bars_per_method_and_output_with_times(cnn_results, tmp_path):
    sample = nnrange.bounds(CNN, 0, 1, method="sample", inner={"steps": 0})
    fig = viz.compare({**cnn_results, "sample": sample})
    render(fig, tmp_path)
    ax_range, ax_width = fig.axes
    # two finite-bounded methods x two outputs; the sample-only result has no outer bar
    assert len(ax_range.patches) == 4
    assert len(ax_width.containers) == 3
    assert [len(c) for c in ax_width.containers] == [2, 2, 0]
    widths = sorted(p.get_width() for p in ax_width.patches)
    expected = np.concatenate([cnn_results["ibp"].width, cnn_results["crown"].width])
    assert np.allclose(widths, sorted(expected))
    assert [t.get_text() for t in ax_range.get_yticklabels()] == ["output 0", "output 1"]
    # the attained ranges: one line per output
    assert len(ax_range.collections) == 1 and len(ax_range.collections[0].get_segments()) == 2
    texts = legend_texts(ax_width)
    assert len(texts) == 3
    assert all(re.search(r"\(\d[\d.e+-]* (ms|s)\)", t) for t in texts)


def test_compare_log_scale_when_widths_span_decades(tmp_path):
    a = nnrange.bounds(MLP, -1, 1, method="ibp")
    b = nnrange.bounds(MLP, -0.001, 0.001, method="crown")
    fig = viz.compare({"wide": a, "narrow": b})
    render(fig, tmp_path)
    assert fig.axes[1].get_xscale() == "log"
    assert viz.compare({"wide": a, "narrow": b}, log=False).axes[1].get_xscale() == "linear"
    with pytest.raises(ValueError, match="at least one"):
        viz.compare({})


# ---------------------------------------------------------------------------- slice2d
def test_slice2d_heat_map_cells_and_boxes(tmp_path):
    fig = viz.slice2d(
        MLP,
        -1,
        1,
        resolution=41,
        method="crown",
        cells=3,
        boxes=[((-0.5, -0.5), (0.0, 0.0)), ((0.2, 0.2), (0.9, 0.6))],
    )
    render(fig, tmp_path)
    ax = fig.axes[0]
    images = [im for im in ax.get_images() if isinstance(im, AxesImage)]
    assert len(images) == 1
    z = np.asarray(images[0].get_array())
    assert z.shape == (41, 41)
    assert len(fig.axes) == 2  # heat map and its colour bar
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 9 + 2
    assert len(ax.texts) == 9
    # every heat-map value lies inside the proven range written on its cell
    grid = np.linspace(-1, 1, 41)
    for rect, text in zip(rects[:9], ax.texts, strict=True):
        lower, upper = (float(v) for v in re.findall(r"-?[\d.]+(?:e[-+]?\d+)?", text.get_text()))
        (x0, y0), w, h = rect.get_xy(), rect.get_width(), rect.get_height()
        cols = (grid >= x0 - 1e-12) & (grid <= x0 + w + 1e-12)
        rows = (grid >= y0 - 1e-12) & (grid <= y0 + h + 1e-12)
        cell = z[np.ix_(rows, cols)]
        tol = 5e-3 * max(1.0, abs(lower), abs(upper))  # the text shows 3 significant digits
        assert cell.min() >= lower - tol and cell.max() <= upper + tol


def test_slice2d_other_dims_fixed_and_errors(tmp_path):
    fixed = np.full(64, 0.3)
    fig = viz.slice2d(CNN, 0, 1, dims=(10, 45), output=1, fixed=fixed, resolution=20)
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert len(ax.get_images()) == 1 and not ax.patches and not ax.texts
    z = np.asarray(ax.get_images()[0].get_array())
    flat = fixed.copy()
    flat[10], flat[45] = 1.0, 1.0  # the top right pixel: both plotted inputs at hi
    graph = nnrange.load(CNN)
    assert np.isclose(z[-1, -1], graph.forward(flat.reshape(1, *graph.input_shape)).ravel()[1])
    with pytest.raises(ValueError, match="different"):
        viz.slice2d(MLP, -1, 1, dims=(0, 0))
    with pytest.raises(ValueError, match="lo == hi"):
        viz.slice2d(MLP, [-1, 0], [1, 0])
    with pytest.raises(ValueError, match="single box"):
        viz.slice2d(MLP, [[-1, -1], [0, 0]], [[1, 1], [1, 1]])


# ---------------------------------------------------------------------------- layers
def test_layers_widths_and_unstable_counts(mlp_results, tmp_path):
    r = mlp_results["crown"]
    fig = viz.layers(r)
    render(fig, tmp_path)
    ax_w, ax_u = fig.axes
    n = len(r.layers)
    assert n == 2
    assert len(ax_w.patches) == 2 * n  # median and max per layer
    heights = [p.get_height() for p in ax_w.patches]
    w0 = (r.layers[0].upper - r.layers[0].lower).ravel()
    assert np.isclose(heights[0], np.median(w0)) and np.isclose(heights[n], w0.max())
    assert [p.get_height() for p in ax_u.patches] == [int(layer.unstable[0]) for layer in r.layers]
    labels = [t.get_text() for t in ax_u.texts]
    assert labels == [f"{int(layer.unstable[0])}/16" for layer in r.layers]
    assert len(ax_u.get_xticklabels()) == n


def test_layers_batched_and_errors(mlp_results):
    r = nnrange.bounds(MLP, [[-1, -1], [0, 0]], [[1, 1], [0.01, 0.01]], method="crown")
    fig = viz.layers(r, box=1)
    assert [p.get_height() for p in fig.axes[1].patches] == [
        int(layer.unstable[1]) for layer in r.layers
    ]
    with pytest.raises(ValueError, match="crown"):
        viz.layers(mlp_results["ibp"])
    with pytest.raises(ValueError, match="no nonlinear"):
        viz.layers(nnrange.bounds(SUM, 0, 1, method="crown"))


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install nnrange\[plot\]"):
        viz.compare({"x": nnrange.bounds(SUM, 0, 1)})
