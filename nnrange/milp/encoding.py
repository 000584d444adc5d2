"""Big-M MILP encoding of a layer graph over an input box.

Every tensor is an affine form ``M v + c`` of the model's columns ``v``. Linear nodes compose
forms with their matrix, materialised once per node from ``node.linear`` on identity batches.
A tensor that feeds a nonlinear node gets its own columns ``z`` with the equalities
``z = M v + c`` and the intermediate bounds ``[l, u]`` as column bounds (CROWN's, padded for
floating point, optionally tightened by LPs). In compact mode (the default for inputs of at
most ``COMPACT_INPUTS`` values) only the neurons whose relaxation is in doubt get columns when
every consumer is a ReLU, LeakyReLU or Clip; the others stay affine forms over earlier columns.
On a small input-split piece of ACAS Xu with 20 of 300 neurons unstable that makes the model a
tenth of the size and an exact solve 2.5x faster. Compact forms, products of dense weight
matrices over a few dozen columns, are kept as dense arrays (sparse ones otherwise): scipy's
per-operation overhead was two thirds of such a solve (14 ms -> 9 ms). The LP relaxation loses
the substituted neurons' bounds (implied for every input of the box, so the MILP is unchanged)
and can be a little looser; keeping them as rows cost more time than they saved. Per neuron:

- ReLU: stable neurons need nothing (``y = z`` or ``y = 0``); unstable ones (``l < 0 < u``) get
  ``y`` in ``[0, u]`` and a binary ``a`` with ``y >= z``, ``y <= u a``, ``y <= z - l (1 - a)``.
- LeakyReLU: ``y = alpha z + (1 - alpha) relu(z)``, an identity for every alpha.
- Clip: ``y = low + relu(z - low) - relu(z - high)`` (two binaries, the upper one implying the
  lower one), with the obvious forms for an infinite end.
- MaxPool: per window, the inputs that can win (``u_i >= max_j l_j``); one candidate means
  ``y = z_i``; else one binary per candidate, ``sum a = 1``, ``y >= z_i`` and
  ``y <= z_i + (U - l_i)(1 - a_i)`` with ``U`` the largest candidate upper bound.

Other nodes (Sigmoid, Tanh, Softmax, ...) have no exact encoding: they are refused unless
``relaxed``, which encodes the linear relaxation CROWN uses (``nnrange.relax``) between the
interval bounds of the output, so the optimum is a sound bound but not attained.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import EngineError
from ..graph import Clip, Graph, LeakyRelu, MaxPool, Relu
from ..graph.core import LinearNode, Node
from ..graph.linear import _channels_back
from ..relax import activation_relaxation, unstable
from .model import Model, _widen

#: Node types with an exact encoding.
EXACT = (Relu, LeakyRelu, Clip, MaxPool)
#: Intermediate bounds are widened by this much (absolute + relative) before use as big-M.
PAD_ABS = 1e-6
PAD_REL = 1e-6
#: Inputs up to this size get a compact model by default (see ``Encoding``).
COMPACT_INPUTS = 64
#: Largest dense block (in float64 values) materialised per call of ``node.linear``.
_BLOCK_VALUES = 2_000_000

Matrix = sp.csr_matrix | np.ndarray
Form = tuple[Matrix, np.ndarray]
Fill = Callable[[np.ndarray, dict], None]
#: ``tightener(encoding, cols, lo, hi, need) -> (lo, hi)``: tighter bounds of new columns.
Tightener = Callable[["Encoding", np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple]

_MATRICES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inexact_nodes(graph: Graph) -> list[Node]:
    """Nodes the MILP cannot encode exactly (everything but affine, ReLU family, Clip, max)."""
    return [n for n in graph if n.kind != "linear" and not isinstance(n, EXACT)]


def unsupported_reason(graph: Graph) -> str | None:
    """None when the graph has an exact encoding, else a message naming the offending nodes."""
    bad = inexact_nodes(graph)
    if not bad:
        return None
    names = ", ".join(f"'{n.source}' ({n.op})" for n in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    verb = "is" if len(bad) == 1 else "are"
    return (
        f"the MILP encodes only piecewise-linear networks exactly (affine maps, ReLU, "
        f"LeakyReLU, Clip, MaxPool); node{'s' if len(bad) > 1 else ''} {names}{more} {verb} not "
        "piecewise linear. In Python, pass relaxed=True to encode the linear relaxation "
        "instead (sound bounds, not exact); or use method 'crown' / 'alpha-crown'."
    )


def linear_matrices(node: LinearNode) -> tuple[list[sp.csr_matrix], np.ndarray]:
    """The matrices ``T_i`` (out_size x in_size_i) of the node's homogeneous map, one per
    input, and its constant part (flat), from ``node.linear`` on identity batches (cached)."""
    cached = _MATRICES.get(node)
    if cached is not None:
        return cached
    zeros = [np.zeros((1, *s)) for s in node.in_shapes]
    const = np.asarray(node.forward(*zeros), dtype=np.float64).reshape(-1).copy()
    mats = []
    for i, shape in enumerate(node.in_shapes):
        n_in = math.prod(shape)
        step = max(1, _BLOCK_VALUES // max(node.out_size, 1))
        blocks = []
        for start in range(0, n_in, step):
            k = min(step, n_in - start)
            xs = [np.zeros((k, *s)) for s in node.in_shapes]
            eye = np.zeros((k, n_in))
            eye[np.arange(k), start + np.arange(k)] = 1.0
            xs[i] = eye.reshape(k, *shape)
            y = np.asarray(node.linear(*xs)).reshape(k, -1)
            blocks.append(sp.csr_matrix(y.T))
        mats.append(sp.hstack(blocks, format="csr") if len(blocks) > 1 else blocks[0])
    _MATRICES[node] = (mats, const)
    return mats, const


def pad_bounds(lo, hi, pad_abs: float = PAD_ABS, pad_rel: float = PAD_REL):
    """``[lo, hi]`` widened by ``pad_abs + pad_rel * |bound|`` on each side."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    return lo - (pad_abs + pad_rel * np.abs(lo)), hi + (pad_abs + pad_rel * np.abs(hi))


def _fit(m: Matrix, n_cols: int) -> Matrix:
    """``m`` seen with ``n_cols`` columns (appended columns are 0), dense or sparse alike."""
    if sp.issparse(m):
        return _widen(m, n_cols)
    if m.shape[1] == n_cols:
        return m
    return np.pad(m, ((0, 0), (0, n_cols - m.shape[1])))


def nonzeros(m: Matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the nonzeros of ``m``."""
    if sp.issparse(m):
        coo = m.tocoo()
        return coo.row, coo.col, coo.data
    rows, cols = np.nonzero(m)
    return rows, cols, m[rows, cols]


@dataclass
class TensorVars:
    """A tensor that feeds a nonlinear node: the affine ``form`` of every neuron, the columns
    of the neurons that have their own (-1 for the others, whose form is over earlier
    columns), and the bounds of every neuron (flat)."""

    form: Form
    cols: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


class Encoding:
    """The MILP of ``graph`` over the box ``[lo, hi]`` (one box, arrays in the input shape).

    ``bounds[name]`` gives sound ``(lower, upper)`` bounds of every tensor that feeds a
    nonlinear node (any array shape of the right size). ``tightener`` (see ``Tightener``) is
    called on each such tensor's columns before its consumers are encoded.
    """

    def __init__(
        self,
        graph: Graph,
        lo: np.ndarray,
        hi: np.ndarray,
        bounds: dict[str, tuple[np.ndarray, np.ndarray]],
        *,
        relaxed: bool = False,
        tightener: Tightener | None = None,
        pad_abs: float = PAD_ABS,
        pad_rel: float = PAD_REL,
        compact: bool | None = None,
    ):
        if not relaxed and (reason := unsupported_reason(graph)):
            raise EngineError(reason)
        self.graph = graph
        self.lo = np.asarray(lo, dtype=np.float64).reshape(-1)
        self.hi = np.asarray(hi, dtype=np.float64).reshape(-1)
        self.bounds = bounds
        self.relaxed_nodes = [n.source for n in inexact_nodes(graph)]
        self.exact = not self.relaxed_nodes
        self.tightener = tightener
        self.pad = (pad_abs, pad_rel)
        self.compact = graph.input_size <= COMPACT_INPUTS if compact is None else compact
        # compact forms on few inputs are products of dense weight matrices over a few dozen
        # columns: sparse storage only costs time there
        self.dense = self.compact and graph.input_size <= COMPACT_INPUTS
        self.model = Model()
        self.fills: list[Fill] = []
        self.tensors: dict[str, TensorVars] = {}
        self.forms: dict[str, Form] = {}
        self._consumers = graph.consumers()
        self.input_cols = self.model.add_cols(self.lo, self.hi)
        self.fills.append(lambda v, f: v.__setitem__(self.input_cols, f["__x__"]))
        self.forms[graph.input_name] = (
            self._select(self.input_cols),
            np.zeros(self.input_cols.size),
        )
        self.tensors[graph.input_name] = TensorVars(
            self.forms[graph.input_name], self.input_cols, self.lo, self.hi
        )
        for node in graph:
            if node.kind == "linear":
                self._linear(node)
                continue
            for src in node.inputs:
                self._materialize(src)
            if isinstance(node, Relu):
                self.forms[node.name] = self._relu(self.tensors[node.inputs[0]], 0.0)[0]
            elif isinstance(node, LeakyRelu):
                self._leaky(node)
            elif isinstance(node, Clip):
                self._clip(node)
            elif isinstance(node, MaxPool):
                self._maxpool(node)
            elif node.kind == "activation":
                self._relaxed_activation(node)
            else:
                self._relaxed_interval(node)
        m, c = self.forms[graph.output]
        self.output = (_fit(m, self.model.n_cols), c)

    # ------------------------------------------------------------------ public helpers
    @property
    def n_binaries(self) -> int:
        return self.model.n_int

    def objective(self, row: np.ndarray) -> tuple[np.ndarray, float]:
        """Column costs and constant of ``row . y`` (``row`` over the flattened outputs)."""
        m, c = self.output
        m = _fit(m, self.model.n_cols)
        row = np.asarray(row, dtype=np.float64).reshape(-1)
        return np.asarray(m.T @ row).reshape(-1), float(row @ c)

    def assignment(self, x: np.ndarray) -> np.ndarray:
        """A value for every column from the forward pass at ``x`` (a feasible MIP start)."""
        x = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), self.lo, self.hi)
        values = self.graph.forward(x.reshape(1, *self.graph.input_shape), all_values=True)
        values["__x__"] = x
        v = np.zeros(self.model.n_cols)
        for fill in self.fills:
            fill(v, values)
        return np.clip(v, self.model.col_lo, self.model.col_hi)

    def input_of(self, col_values: np.ndarray) -> np.ndarray:
        """The input (in the model's input shape, clipped to the box) of a solution."""
        x = np.asarray(col_values, dtype=np.float64)[self.input_cols]
        return np.clip(x, self.lo, self.hi).reshape(self.graph.input_shape)

    # ------------------------------------------------------------------ form algebra
    def _unit(self, rows, cols, n_rows: int) -> Matrix:
        """``n_rows`` rows over the model's columns with a 1 at each ``(rows[i], cols[i])``."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        if not self.dense:
            ones = np.ones(rows.size)
            return sp.csr_matrix((ones, (rows, cols)), shape=(n_rows, self.model.n_cols))
        m = np.zeros((n_rows, self.model.n_cols))
        m[rows, cols] = 1.0  # every use has distinct positions
        return m

    def _zeros(self, n_rows: int) -> Matrix:
        return self._unit([], [], n_rows)

    def _select(self, cols: np.ndarray) -> Matrix:
        """Rows picking one column each."""
        return self._unit(np.arange(cols.size), cols, cols.size)

    def _merge(self, m: Matrix, keep: np.ndarray, rows, cols) -> Matrix:
        """The rows of ``m`` where ``keep``, zero rows elsewhere, plus a 1 at each ``(rows[i],
        cols[i])`` (a neuron that is now its own column)."""
        m = _fit(m, self.model.n_cols)
        keep = keep.astype(np.float64)
        kept = keep[:, None] * m if self.dense else sp.diags(keep) @ m
        merged = kept + self._unit(rows, cols, m.shape[0])
        return merged if self.dense else merged.tocsr()

    def _sum_forms(self, parts: list[tuple[float, Form]]) -> Form:
        n_cols = self.model.n_cols
        m = self._zeros(parts[0][1][0].shape[0])
        c = np.zeros(m.shape[0])
        for w, (mi, ci) in parts:
            m = m + w * _fit(mi, n_cols)
            c = c + w * ci
        return (m if self.dense else m.tocsr()), c

    # ------------------------------------------------------------------ node encoders
    def _linear(self, node: LinearNode) -> None:
        mats, const = linear_matrices(node)
        n = self.model.n_cols
        m = self._zeros(node.out_size)
        c = const.copy()
        for t, src in zip(mats, node.inputs, strict=True):
            ms, cs = self.forms[src]
            m = m + t @ _fit(ms, n)
            c = c + t @ cs
        self.forms[node.name] = (m if self.dense else m.tocsr(), c)

    def _materialize(self, name: str) -> None:
        """Give tensor ``name`` bounded columns (equalities to its affine form): every neuron,
        or in compact mode only those in doubt, the others keeping their form."""
        if name in self.tensors:
            return
        m, c = self.forms[name]
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(-1) for b in self.bounds[name])
        lo, hi = pad_bounds(lo, hi, *self.pad)
        need = self._needs_tightening(name, lo, hi)
        own = need if self.compact and self._collapsible(name) else np.ones(lo.size, dtype=bool)
        idx = np.flatnonzero(own)
        new = self.model.add_cols(lo[idx], hi[idx])
        n, k = lo.size, idx.size
        sub_rows, sub_cols, sub_vals = nonzeros(m[idx])
        self.model.add_rows(
            np.concatenate([np.arange(k), sub_rows]),
            np.concatenate([new, sub_cols]),
            np.concatenate([np.ones(k), -sub_vals]),
            c[idx],
            c[idx],
        )
        self.fills.append(
            lambda v, f, new=new, idx=idx, name=name: v.__setitem__(new, f[name].ravel()[idx])
        )
        cols = np.full(n, -1)
        cols[idx] = new
        if k < n:
            form = (self._merge(m, ~own, idx, new), np.where(own, 0.0, c))
        else:
            form = (self._select(new), np.zeros(n))
        self.forms[name] = form
        if self.tightener is not None and need[idx].any():
            lo[idx], hi[idx] = self.tightener(self, new, lo[idx], hi[idx], need[idx])
            self.model.set_bounds(new, lo[idx], hi[idx])
        self.tensors[name] = TensorVars(form, cols, lo, hi)

    def _collapsible(self, name: str) -> bool:
        """Whether every consumer of ``name`` needs columns only for its neurons in doubt."""
        return all(
            isinstance(self.graph.nodes[c], (Relu, LeakyRelu, Clip))
            for c in self._consumers.get(name, [])
        )

    def _needs_tightening(self, name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        need = np.zeros(lo.size, dtype=bool)
        for consumer in self._consumers.get(name, []):
            node = self.graph.nodes[consumer]
            if node.kind == "activation":
                need |= np.asarray(unstable(node, lo, hi)).reshape(-1)
            elif node.kind == "nonlinear":
                need |= hi > lo
        return need

    def _relu(self, t: TensorVars, shift: float) -> tuple[Form, np.ndarray]:
        """Form of ``relu(z - shift)`` per neuron of ``t`` and each neuron's binary (-1: none)."""
        model = self.model
        ll, uu = t.lo - shift, t.hi - shift
        active = ll >= 0
        unst = (ll < 0) & (uu > 0)
        idx = np.flatnonzero(unst)
        k = idx.size
        binaries = np.full(t.cols.size, -1)
        ys = model.add_cols(np.zeros(k), uu[idx])
        bs = model.add_binaries(k)
        binaries[idx] = bs
        z = t.cols[idx]
        r = np.arange(k)
        # y - z >= -shift ; y - uu a <= 0 ; y - z - ll a <= -l
        model.add_rows(
            np.concatenate([r, r, r + k, r + k, r + 2 * k, r + 2 * k, r + 2 * k]),
            np.concatenate([ys, z, ys, bs, ys, z, bs]),
            np.concatenate(
                [np.ones(k), -np.ones(k), np.ones(k), -uu[idx], np.ones(k), -np.ones(k), -ll[idx]]
            ),
            np.concatenate([np.full(k, -shift), np.full(k, -np.inf), np.full(k, -np.inf)]),
            np.concatenate([np.full(k, np.inf), np.zeros(k), -t.lo[idx]]),
        )

        def fill(v, f, z=z, ys=ys, bs=bs, shift=shift):
            zz = v[z] - shift
            v[ys] = np.maximum(zz, 0.0)
            v[bs] = (zz >= 0).astype(np.float64)

        self.fills.append(fill)
        fm, fc = t.form
        m = self._merge(fm, active, idx, ys)
        c = np.where(active, fc - shift, 0.0)
        return (m, c), binaries

    def _leaky(self, node: LeakyRelu) -> None:
        t = self.tensors[node.inputs[0]]
        relu, _ = self._relu(t, 0.0)
        ident = t.form
        a = node.alpha
        self.forms[node.name] = self._sum_forms([(a, ident), (1.0 - a, relu)])

    def _clip(self, node: Clip) -> None:
        t = self.tensors[node.inputs[0]]
        n = t.cols.size
        ident = t.form
        parts: list[tuple[float, Form]] = []
        b_low = b_high = None
        if np.isfinite(node.low):
            low_part, b_low = self._relu(t, node.low)
            parts += [(1.0, (self._zeros(n), np.full(n, node.low))), (1.0, low_part)]
        else:
            parts.append((1.0, ident))
        if np.isfinite(node.high):
            high_part, b_high = self._relu(t, node.high)
            parts.append((-1.0, high_part))
        if b_low is not None and b_high is not None:
            both = (b_low >= 0) & (b_high >= 0)
            k = int(both.sum())
            r = np.arange(k)
            # z >= high implies z >= low: a_high <= a_low
            self.model.add_rows(
                np.concatenate([r, r]),
                np.concatenate([b_high[both], b_low[both]]),
                np.concatenate([np.ones(k), -np.ones(k)]),
                np.full(k, -np.inf),
                np.zeros(k),
            )
        self.forms[node.name] = self._sum_forms(parts)

    def _maxpool(self, node: MaxPool) -> None:
        t = self.tensors[node.inputs[0]]
        nsp = node.window.ndim
        idx = np.arange(t.cols.size, dtype=np.float64).reshape(1, *node.in_shapes[0])
        wins = [_channels_back(w, nsp, node.channels_last) for w in node.windows(idx)]
        windex = np.stack([w.reshape(-1) for w in wins])  # (K, out_size), -inf on padding
        model = self.model
        n_out = windex.shape[1]
        out_rows, out_cols = [], []
        ri, rc, rv, rlo, rhi = [], [], [], [], []
        fills = []
        for j in range(n_out):
            cells = windex[:, j]
            cells = cells[np.isfinite(cells)].astype(int)
            lmax = t.lo[cells].max()
            cand = cells[t.hi[cells] >= lmax]
            if cand.size == 1:
                out_rows.append(j)
                out_cols.append(int(t.cols[cand[0]]))
                continue
            top = t.hi[cand].max()
            y = int(model.add_cols([lmax], [top])[0])
            bs = model.add_binaries(cand.size)
            out_rows.append(j)
            out_cols.append(y)
            base = len(rlo)
            k = cand.size
            # sum a = 1
            ri += [base] * k
            rc += bs.tolist()
            rv += [1.0] * k
            rlo.append(1.0)
            rhi.append(1.0)
            for q, (i, b) in enumerate(zip(cand, bs, strict=True)):
                big = top - t.lo[i]
                r1, r2 = base + 1 + 2 * q, base + 2 + 2 * q
                # y - z_i >= 0 ; y - z_i + big a_i <= big
                ri += [r1, r1, r2, r2, r2]
                rc += [y, int(t.cols[i]), y, int(t.cols[i]), int(b)]
                rv += [1.0, -1.0, 1.0, -1.0, big]
                rlo += [0.0, -np.inf]
                rhi += [np.inf, big]
            fills.append((y, t.cols[cand], bs))
        model.add_rows(ri, rc, rv, rlo, rhi)

        def fill(v, f, fills=fills):
            for y, zc, bs in fills:
                vals = v[zc]
                v[y] = vals.max()
                v[bs] = 0.0
                v[bs[int(vals.argmax())]] = 1.0

        self.fills.append(fill)
        self.forms[node.name] = (self._unit(out_rows, out_cols, n_out), np.zeros(n_out))

    def _relaxed_activation(self, node: Node) -> None:
        """Sound linear relaxation (the one CROWN uses) between the output's interval bounds."""
        t = self.tensors[node.inputs[0]]
        ls, lb, us, ub = (
            np.asarray(a, dtype=np.float64).reshape(-1)
            for a in activation_relaxation(node, t.lo, t.hi)
        )
        out_lo, out_hi = pad_bounds(*node.interval(t.lo, t.hi), *self.pad)
        k = t.cols.size
        ys = self.model.add_cols(out_lo, out_hi)
        r = np.arange(k)
        # y - ls z >= lb ; y - us z <= ub
        self.model.add_rows(
            np.concatenate([r, r, r + k, r + k]),
            np.concatenate([ys, t.cols, ys, t.cols]),
            np.concatenate([np.ones(k), -ls, np.ones(k), -us]),
            np.concatenate([lb, np.full(k, -np.inf)]),
            np.concatenate([np.full(k, np.inf), ub]),
        )
        self.fills.append(lambda v, f, ys=ys, name=node.name: v.__setitem__(ys, f[name].ravel()))
        self.forms[node.name] = (self._select(ys), np.zeros(k))

    def _relaxed_interval(self, node: Node) -> None:
        """A node without a linear relaxation: its output interval only."""
        los = [self.tensors[i].lo.reshape(1, *self.graph.shapes[i]) for i in node.inputs]
        his = [self.tensors[i].hi.reshape(1, *self.graph.shapes[i]) for i in node.inputs]
        out_lo, out_hi = node.interval(los, his)
        out_lo, out_hi = pad_bounds(np.ravel(out_lo), np.ravel(out_hi), *self.pad)
        ys = self.model.add_cols(out_lo, out_hi)
        self.fills.append(lambda v, f, ys=ys, name=node.name: v.__setitem__(ys, f[name].ravel()))
        self.forms[node.name] = (self._select(ys), np.zeros(ys.size))
