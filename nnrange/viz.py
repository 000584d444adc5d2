"""Pictures of bounds: sampled outputs against proven and attained bounds, method comparisons,
2-D slices with per-cell bounds, per-layer bound widths.

Needs matplotlib (``pip install nnrange[plot]``), imported only when a function is called.
Every function returns a matplotlib ``Figure`` made through pyplot, so it shows in notebooks;
in scripts save it with ``fig.savefig(path)`` and free it with ``plt.close(fig)``.

Shared style: sampled outputs grey, attained (inner) bounds solid black, proven (outer) bounds
dashed in one colour per method, exact ranges shaded green.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .box import Box
from .result import BoundsResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Colour of each method's outer bounds; other names take colours from ``_CYCLE``.
METHOD_COLORS = {
    "ibp": "tab:red",
    "crown": "tab:blue",
    "alpha-crown": "tab:purple",
    "sample": "tab:gray",
}
_CYCLE = ("tab:orange", "tab:green", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_INNER = {"color": "black", "linestyle": "-", "linewidth": 1.6}
_EXACT = {"color": "tab:green", "alpha": 0.25}
_SAMPLES = {"color": "0.65"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "nnrange.viz needs matplotlib; install it with: pip install nnrange[plot]"
        ) from exc
    return plt


# ---------------------------------------------------------------------------- helpers
def _one(result: BoundsResult, box: int) -> BoundsResult:
    """Box ``box`` of a batched result, or the result itself."""
    if result.batched:
        return result[box]
    if box != 0:
        raise ValueError(f"box={box}, but the result holds a single box")
    return result


def _label(result: BoundsResult) -> str:
    """The outer engines that made a result, e.g. ``crown`` (not ``auto`` or ``+sample``)."""
    outer = [e for e in result.engines if e != "sample"]
    return "+".join(outer) or result.method or "result"


def _color(name: str, i: int) -> str:
    return METHOD_COLORS.get(name.lower(), _CYCLE[i % len(_CYCLE)])


def _outputs(result: BoundsResult, outputs: Sequence[int] | int | None) -> list[int]:
    if outputs is None:
        return list(range(result.n_outputs))
    outs = [int(outputs)] if np.isscalar(outputs) else [int(j) for j in outputs]
    bad = [j for j in outs if not 0 <= j < result.n_outputs]
    if bad:
        raise ValueError(f"output(s) {bad} out of range: the model has {result.n_outputs}")
    return outs


def _output_name(result: BoundsResult, j: int) -> str:
    return result.output_names[j] if result.output_names else f"output {j}"


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _short(name: str, size: int = 18) -> str:
    """A layer name short enough for a tick label: ``mlp/dense_4/MatMul`` -> ``dense_4``."""
    parts = [p for p in name.split("/") if p]
    name = parts[-2] if len(parts) >= 2 else (parts[0] if parts else name)
    return name if len(name) <= size else "…" + name[-(size - 1) :]


def _grid(plt, n: int, ncols: int = 3):
    """A figure with ``n`` panels in rows of at most ``ncols``; returns (fig, axes list)."""
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    width = max(3.4 * ncols, 6.4)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.6 * nrows + 0.7), layout="constrained")
    axes = list(np.atleast_1d(axes).ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def _finite(values) -> list[float]:
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)].tolist()


def _sample_outputs(model, lo, hi, n: int, box: int, seed: int) -> np.ndarray:
    """Outputs ``(n, n_outputs)`` of ``model`` at ``n`` uniform inputs of the box."""
    from .engines.sampling import evaluate
    from .loaders import load

    if lo is None or hi is None:
        raise ValueError(
            "to sample the model give its box as lo= and hi= (a BoundsResult does not keep its "
            "box), or pass samples= directly"
        )
    graph = load(model)
    boxes = Box.from_bounds(lo, hi, graph.input_shape)
    one = boxes[box] if boxes.batched else boxes
    return evaluate(graph, one.uniform(n, np.random.default_rng(seed)))[0]


def _exact_pair(exact, n_outputs: int) -> np.ndarray:
    arr = np.asarray(exact, dtype=np.float64)
    if arr.shape == (n_outputs, 2) and n_outputs != 2:
        arr = arr.T
    if arr.shape != (2, n_outputs):
        raise ValueError(
            f"exact= must be (lower, upper) with {n_outputs} value(s) each, got shape {arr.shape}"
        )
    return arr


# ---------------------------------------------------------------------------- histogram
def histogram(
    result: BoundsResult,
    model=None,
    samples=None,
    outputs: Sequence[int] | int | None = None,
    others: Mapping[str, BoundsResult] | None = None,
    exact=None,
    *,
    lo=None,
    hi=None,
    n_samples: int = 2000,
    bins: int = 40,
    box: int = 0,
    seed: int = 0,
) -> Figure:
    """One panel per output: sampled outputs against the bounds.

    Draws a histogram of output values (``samples``, shape ``(P, n_outputs)``, or ``n_samples``
    uniform inputs of the box ``lo``, ``hi`` run through ``model``), the attained inner bounds
    (solid; the widest over ``result`` and ``others``), the proven outer bounds of ``result``
    and of each result in ``others`` (``{name: BoundsResult}``, dashed, one colour per method)
    and, if given, the exact range ``exact = (lower, upper)`` (shaded).
    """
    plt = _pyplot()
    main = _one(result, box)
    named = {_label(main): main, **{k: _one(v, box) for k, v in (others or {}).items()}}
    outs = _outputs(main, outputs)
    if samples is None and model is not None:
        samples = _sample_outputs(model, lo, hi, n_samples, box, seed)
    values = None
    if samples is not None:
        values = np.asarray(samples, dtype=np.float64)
        values = values.reshape(values.shape[0], -1)
        if values.shape[1] != main.n_outputs:
            raise ValueError(
                f"samples have {values.shape[1]} outputs per row, the result {main.n_outputs}"
            )
    ex = None if exact is None else _exact_pair(exact, main.n_outputs)
    inner_lo = np.min([r.inner_lower for r in named.values()], axis=0)
    inner_hi = np.max([r.inner_upper for r in named.values()], axis=0)

    fig, axes = _grid(plt, len(outs))
    for ax, j in zip(axes, outs, strict=True):
        first = ax is axes[0]
        seen = [inner_lo[j], inner_hi[j]]
        if values is not None:
            label = f"{values.shape[0]} sampled outputs" if first else None
            ax.hist(values[:, j], bins=bins, **_SAMPLES, label=label)
            seen += [values[:, j].min(), values[:, j].max()]
        if ex is not None:
            ax.axvspan(ex[0, j], ex[1, j], **_EXACT, label="exact range" if first else None)
            seen += [ex[0, j], ex[1, j]]
        for k, v in enumerate((inner_lo[j], inner_hi[j])):
            if np.isfinite(v):
                label = "attained (inner)" if first and k == 0 else None
                ax.axvline(v, **_INNER, label=label)
        for i, (name, r) in enumerate(named.items()):
            for k, v in enumerate((r.lower[j], r.upper[j])):
                if np.isfinite(v):
                    label = f"proven: {name}" if first and k == 0 else None
                    ax.axvline(v, color=_color(name, i), linestyle="--", linewidth=1.4, label=label)
                    seen.append(v)
        seen = _finite(seen)
        if seen:
            a, b = min(seen), max(seen)
            pad = 0.05 * (b - a) if b > a else 0.5 * max(abs(a), 1e-3)
            ax.set_xlim(a - pad, b + pad)
        exact_flag = " (exact)" if main.exact[j] else ""
        ax.set_title(_output_name(main, j) + exact_flag, fontsize=10)
        ax.set_yticks([])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=8)
    return fig


# ---------------------------------------------------------------------------- compare
def compare(
    results: Mapping[str, BoundsResult],
    outputs: Sequence[int] | int | None = None,
    *,
    box: int = 0,
    log: bool | None = None,
) -> Figure:
    """Proven ranges (left) and their widths (right) per output for each method.

    ``results`` maps a name to a ``BoundsResult``; the legend gives each one's run time (the
    sum of its ``timings``, inner-bound sampling included). The widest attained range over all
    results is the black line on each output's row. Widths use a log scale when they span more
    than two decades (or as ``log`` says). Results without finite outer bounds get no bar.
    """
    plt = _pyplot()
    if not results:
        raise ValueError("compare() needs at least one result")
    named = {k: _one(v, box) for k, v in results.items()}
    first = next(iter(named.values()))
    outs = _outputs(first, outputs)
    m = len(named)
    height = 0.8 / m
    rows = np.arange(len(outs))
    fig, (ax_r, ax_w) = plt.subplots(
        1, 2, figsize=(10, 1.0 + 0.45 * len(outs) * max(m, 2)), layout="constrained", sharey=True
    )
    widths = []
    for i, (name, r) in enumerate(named.items()):
        y = rows - 0.4 + height * (i + 0.5)
        lo, hi = r.lower[outs], r.upper[outs]
        ok = np.isfinite(lo) & np.isfinite(hi)
        label = f"{name} ({_fmt_time(sum(r.timings.values()))})"
        color = _color(name, i)
        ax_r.barh(y[ok], (hi - lo)[ok], left=lo[ok], height=height, color=color, alpha=0.8)
        bars = ax_w.barh(y[ok], (hi - lo)[ok], height=height, color=color, alpha=0.8, label=label)
        ax_w.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
        widths += list((hi - lo)[ok])
    inner_lo = np.min([r.inner_lower[outs] for r in named.values()], axis=0)
    inner_hi = np.max([r.inner_upper[outs] for r in named.values()], axis=0)
    ok = np.isfinite(inner_lo) & np.isfinite(inner_hi)
    if ok.any():
        ax_r.hlines(
            rows[ok],
            inner_lo[ok],
            inner_hi[ok],
            colors="black",
            linewidth=2.5,
            label="attained (inner)",
        )
        ax_r.legend(loc="best", fontsize=8)
    ax_r.set_yticks(rows, [_output_name(first, j) for j in outs])
    ax_r.invert_yaxis()
    ax_r.set_xlabel("proven range [lower, upper]")
    positive = [w for w in widths if w > 0]
    if log is None:
        log = bool(positive) and max(positive) > 100 * min(positive)
    if log and positive:
        ax_w.set_xscale("log")
    ax_w.set_xlabel("width upper - lower" + (" (log scale)" if log else ""))
    ax_w.margins(x=0.15)
    ax_w.legend(loc="best", fontsize=8, title="method (time)", title_fontsize=8)
    return fig


# ---------------------------------------------------------------------------- slice2d
def slice2d(
    model,
    lo,
    hi,
    dims: tuple[int, int] = (0, 1),
    output: int = 0,
    fixed=None,
    resolution: int = 100,
    boxes: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
    method: str | None = None,
    *,
    cells: int = 4,
) -> Figure:
    """Heat map of one output over two input dimensions of the box ``[lo, hi]``.

    ``dims`` are flat input indices; the other inputs stay at the box centre or at ``fixed``
    (a scalar or one value per input). ``boxes`` outlines sub-boxes, each ``(lo2, hi2)`` in the
    two plotted dimensions. With ``method`` (e.g. ``"crown"``), the slice is cut into
    ``cells`` x ``cells`` cells and each shows its proven ``[lower, upper]`` over the cell
    (the other inputs held fixed, as in the picture).
    """
    plt = _pyplot()
    from .engines.sampling import evaluate
    from .loaders import load

    graph = load(model)
    one = Box.from_bounds(lo, hi, graph.input_shape)
    if one.batched:
        raise ValueError("slice2d() draws one box; pass lo and hi of a single box")
    lo_f, hi_f = one.lo.reshape(-1), one.hi.reshape(-1)
    i, k = (int(d) for d in dims)
    for d in (i, k):
        if not 0 <= d < lo_f.size:
            raise ValueError(f"input dimension {d} out of range: the model has {lo_f.size}")
        if lo_f[d] == hi_f[d]:
            raise ValueError(f"input dimension {d} has lo == hi: nothing to draw along it")
    if i == k:
        raise ValueError("dims must name two different input dimensions")
    if not 0 <= output < graph.output_size:
        raise ValueError(f"output {output} out of range: the model has {graph.output_size}")
    base = (lo_f + hi_f) / 2
    if fixed is not None:
        base = np.broadcast_to(np.asarray(fixed, dtype=np.float64).reshape(-1), base.shape).copy()

    xs = np.linspace(lo_f[i], hi_f[i], resolution)
    ys = np.linspace(lo_f[k], hi_f[k], resolution)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.repeat(base[None], gx.size, axis=0)
    pts[:, i], pts[:, k] = gx.ravel(), gy.ravel()
    z = evaluate(graph, pts.reshape(1, -1, *graph.input_shape))[0, :, output]

    fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
    extent = (lo_f[i], hi_f[i], lo_f[k], hi_f[k])
    image = ax.imshow(z.reshape(gx.shape), origin="lower", extent=extent, aspect="auto")
    fig.colorbar(image, ax=ax, label=f"output {output}")
    title = f"output {output} over inputs {i} and {k}"
    if method is not None:
        _cell_bounds(ax, graph, base, (i, k), lo_f, hi_f, output, method, cells)
        title += f"; {method} bounds per cell"
    for b_lo, b_hi in boxes or ():
        (x0, y0), (x1, y1) = b_lo, b_hi
        ax.add_patch(
            plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="tab:red", lw=1.5)
        )
    ax.set_xlabel(f"input {i}")
    ax.set_ylabel(f"input {k}")
    ax.set_title(title, fontsize=10)
    return fig


def _cell_bounds(ax, graph, base, dims, lo_f, hi_f, output, method, cells) -> None:
    """Outline ``cells`` x ``cells`` cells of the slice and write each one's proven range."""
    from matplotlib.patches import Rectangle

    from .api import bounds

    i, k = dims
    ex, ey = np.linspace(lo_f[i], hi_f[i], cells + 1), np.linspace(lo_f[k], hi_f[k], cells + 1)
    cx, cy = np.meshgrid(np.arange(cells), np.arange(cells))
    cx, cy = cx.ravel(), cy.ravel()
    c_lo = np.repeat(base[None], cx.size, axis=0)
    c_hi = c_lo.copy()
    c_lo[:, i], c_hi[:, i] = ex[cx], ex[cx + 1]
    c_lo[:, k], c_hi[:, k] = ey[cy], ey[cy + 1]
    r = bounds(graph, c_lo, c_hi, method=method, inner=False)
    lower = np.atleast_2d(r.lower)[:, output]
    upper = np.atleast_2d(r.upper)[:, output]
    size = max(5, 11 - cells)
    for x, y, lo_v, hi_v in zip(cx, cy, lower, upper, strict=True):
        w, h = ex[x + 1] - ex[x], ey[y + 1] - ey[y]
        ax.add_patch(Rectangle((ex[x], ey[y]), w, h, fill=False, edgecolor="white", lw=0.8))
        ax.text(
            ex[x] + w / 2,
            ey[y] + h / 2,
            f"[{lo_v:.3g},\n{hi_v:.3g}]",
            ha="center",
            va="center",
            fontsize=size,
            color="white",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.35, "lw": 0},
        )


# ---------------------------------------------------------------------------- layers
def layers(result: BoundsResult, *, box: int = 0) -> Figure:
    """Per layer (each tensor that feeds a nonlinear node, in graph order): the median and
    maximum width of its bounds (left) and how many of its neurons are unstable, i.e. have a
    relaxation that is not exact (right). Needs ``result.layers`` (crown, alpha-crown)."""
    plt = _pyplot()
    res = _one(result, box)
    if not res.layers:
        raise ValueError(
            "the result has no per-layer bounds: use method='crown' or 'alpha-crown'"
            if res.layers is None
            else "the model has no nonlinear layers: nothing to show per layer"
        )
    names = [f"{_short(layer.name)}\n{layer.op}" for layer in res.layers]
    width = [np.ravel(layer.upper[0] - layer.lower[0]) for layer in res.layers]
    med = np.array([np.median(w) for w in width])
    big = np.array([np.max(w) for w in width])
    unstable = np.array([int(np.ravel(layer.unstable)[0]) for layer in res.layers])
    sizes = [math.prod(layer.shape) for layer in res.layers]
    x = np.arange(len(names))

    fig, (ax_w, ax_u) = plt.subplots(
        1, 2, figsize=(max(8.0, 1.3 * len(names) + 3), 3.8), layout="constrained"
    )
    ax_w.bar(x - 0.2, med, width=0.4, color="tab:blue", label="median width")
    ax_w.bar(x + 0.2, big, width=0.4, color="tab:orange", label="max width")
    positive = np.concatenate([med, big])
    positive = positive[positive > 0]
    if positive.size and positive.max() > 100 * positive.min():
        ax_w.set_yscale("log")
    ax_w.set_ylabel("pre-activation bound width")
    ax_w.legend(fontsize=8)
    bars = ax_u.bar(x, unstable, color="tab:red", alpha=0.8)
    ax_u.bar_label(
        bars, labels=[f"{u}/{s}" for u, s in zip(unstable, sizes, strict=True)], fontsize=7
    )
    ax_u.set_ylabel("unstable neurons")
    ax_u.yaxis.get_major_locator().set_params(integer=True)
    ax_u.margins(y=0.15)
    for ax in (ax_w, ax_u):
        if sum(len(n) for n in names) > 60:
            ax.set_xticks(x, names, fontsize=8, rotation=30, ha="right", rotation_mode="anchor")
        else:
            ax.set_xticks(x, names, fontsize=8)
    fig.suptitle(f"{_label(res)}: bounds of the inputs of each nonlinear layer", fontsize=10)
    return fig
