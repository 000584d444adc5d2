"""A mixed-integer linear program in plain array form, and its export to pulp.

Columns have bounds and an integrality flag; rows are ``lo <= A v <= hi`` with a sparse ``A``.
The encoder appends columns and rows layer by layer; solver back ends read the arrays (HiGHS
takes them in bulk, in process) or the pulp problem built from them (CBC and any other pulp
solver). Keeping the arrays as the source of truth lets one model serve several objectives and
grow while LP bound tightening runs, without rebuilding anything.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Model:
    """Columns (bounds, integrality) and sparse rows ``row_lo <= A v <= row_hi``."""

    def __init__(self) -> None:
        self.col_lo = np.zeros(0)
        self.col_hi = np.zeros(0)
        self.integer = np.zeros(0, dtype=bool)
        self._blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, col, value)
        self._row_lo: list[np.ndarray] = []
        self._row_hi: list[np.ndarray] = []
        self.n_rows = 0

    @property
    def n_cols(self) -> int:
        return self.col_lo.size

    @property
    def n_int(self) -> int:
        return int(self.integer.sum())

    def add_cols(self, lo, hi, integer: bool = False) -> np.ndarray:
        """Append columns with bounds ``[lo, hi]``; returns their indices."""
        lo = np.atleast_1d(np.asarray(lo, dtype=np.float64))
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), lo.shape)
        start = self.n_cols
        self.col_lo = np.concatenate([self.col_lo, lo])
        self.col_hi = np.concatenate([self.col_hi, hi])
        self.integer = np.concatenate([self.integer, np.full(lo.size, integer)])
        return np.arange(start, self.n_cols)

    def add_binaries(self, n: int) -> np.ndarray:
        return self.add_cols(np.zeros(n), np.ones(n), integer=True)

    def set_bounds(self, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.col_lo[cols] = lo
        self.col_hi[cols] = hi

    def add_rows(self, rows, cols, vals, lo, hi) -> None:
        """Append ``len(lo)`` rows given as triplets (row offset within the block, col, value)."""
        lo = np.atleast_1d(np.asarray(lo, dtype=np.float64))
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), lo.shape).copy()
        if lo.size == 0:
            return
        # triplets until a solver asks: one sparse matrix per request, not per call
        rows = np.asarray(rows, dtype=np.int64).reshape(-1) + self.n_rows
        cols = np.asarray(cols, dtype=np.int64).reshape(-1)
        self._blocks.append((rows, cols, np.asarray(vals, dtype=np.float64).reshape(-1)))
        self._row_lo.append(lo)
        self._row_hi.append(hi)
        self.n_rows += lo.size

    def rows(self, start: int = 0) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """Rows from ``start`` on: ``(A, lo, hi)`` with ``A`` as wide as the model."""
        parts, los, his, seen = [], [], [], 0
        for block, lo, hi in zip(self._blocks, self._row_lo, self._row_hi, strict=True):
            if seen + lo.size > start:
                skip = max(0, start - seen)
                parts.append(block)
                los.append(lo[skip:])
                his.append(hi[skip:])
            seen += lo.size
        if not parts:
            return sp.csr_matrix((0, self.n_cols)), np.zeros(0), np.zeros(0)
        rows, cols, vals = (np.concatenate(p) for p in zip(*parts, strict=True))
        take = rows >= start
        # conversion from triplets sums duplicate entries
        a = sp.csr_matrix(
            (vals[take], (rows[take] - start, cols[take])), shape=(self.n_rows - start, self.n_cols)
        )
        return a, np.concatenate(los), np.concatenate(his)

    def to_pulp(self, name: str = "nnrange_milp"):
        """The same model as a ``pulp.LpProblem`` (minimisation, zero objective) and its
        variables, in column order. Ranged rows become two constraints."""
        import pulp

        prob = pulp.LpProblem(name, pulp.LpMinimize)
        xs = [
            pulp.LpVariable(
                f"v{j}",
                None if not np.isfinite(lo) else float(lo),
                None if not np.isfinite(hi) else float(hi),
                cat=pulp.LpInteger if integer else pulp.LpContinuous,
            )
            for j, (lo, hi, integer) in enumerate(
                zip(self.col_lo, self.col_hi, self.integer, strict=True)
            )
        ]
        a, lo, hi = self.rows()
        for i in range(a.shape[0]):
            sl = slice(a.indptr[i], a.indptr[i + 1])
            expr = pulp.LpAffineExpression(
                [(xs[j], float(v)) for j, v in zip(a.indices[sl], a.data[sl], strict=True)]
            )
            if lo[i] == hi[i]:
                prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintEQ, rhs=lo[i]), f"r{i}")
                continue
            if np.isfinite(lo[i]):
                prob.addConstraint(
                    pulp.LpConstraint(expr, pulp.LpConstraintGE, rhs=lo[i]), f"r{i}_lo"
                )
            if np.isfinite(hi[i]):
                prob.addConstraint(
                    pulp.LpConstraint(expr, pulp.LpConstraintLE, rhs=hi[i]), f"r{i}_hi"
                )
        return prob, xs


def _widen(m: sp.csr_matrix, n_cols: int) -> sp.csr_matrix:
    """The same sparse rows seen as a matrix of ``n_cols`` columns (appended columns are 0)."""
    if m.shape[1] == n_cols:
        return m
    return sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], n_cols))
