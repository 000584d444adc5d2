"""Solver back ends: HiGHS in process (default) and CBC through pulp (fallback).

Each back end holds one model and minimises ``cost . v + offset`` over it for any number of
cost vectors: only the objective changes between solves. A solve returns an ``Outcome`` with
the best value found (if any), the column values reaching it, and a *proven* lower bound on the
minimum (the solver's dual bound, or the cutoff when the cutoff row made the model infeasible).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from .model import Model

#: Feasibility and integrality tolerance passed to the solvers (big-M reach ~2000 on ACAS Xu).
FEASIBILITY_TOL = 1e-9


@dataclass
class Outcome:
    """One minimisation: ``status`` is "optimal", "timeout", "cutoff" (nothing below the
    cutoff exists) or "error"; ``bound`` is a proven lower bound of the minimum (``-inf`` when
    unknown); ``value``/``cols`` the best solution found (None when none)."""

    status: str
    bound: float
    value: float | None
    cols: np.ndarray | None
    seconds: float
    solver: str
    message: str = ""


class HighsSolver:
    """HiGHS through ``highspy``, in process; the model is passed once, in bulk."""

    name = "highs"

    def __init__(
        self,
        model: Model,
        gap_rel: float = 0.0,
        gap_abs: float = 0.0,
        threads: int | None = None,
        integer: bool = True,
    ):
        import highspy

        self._hs = highspy
        self.model = model
        self.integer = integer
        self.gap_rel, self.gap_abs = gap_rel, gap_abs
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        for opt in (
            "mip_feasibility_tolerance",
            "primal_feasibility_tolerance",
            "dual_feasibility_tolerance",
        ):
            h.setOptionValue(opt, FEASIBILITY_TOL)
        h.setOptionValue("mip_rel_gap", float(gap_rel))
        h.setOptionValue("mip_abs_gap", float(gap_abs))
        if threads is not None:
            h.setOptionValue("threads", int(threads))
        self.h = h
        self.n_cols = 0
        self.n_rows = 0
        self.sync()

    def sync(self) -> None:
        """Push columns and rows added to the model since the last call."""
        h, m, hs = self.h, self.model, self._hs
        if m.n_cols > self.n_cols:
            k = m.n_cols - self.n_cols
            new = np.arange(self.n_cols, m.n_cols)
            empty = np.zeros(0, dtype=np.int32)
            h.addCols(k, np.zeros(k), m.col_lo[new], m.col_hi[new], 0, empty, empty, np.zeros(0))
            ints = new[m.integer[new]].astype(np.int32)
            if ints.size and self.integer:
                h.changeColsIntegrality(
                    ints.size, ints, np.array([hs.HighsVarType.kInteger] * ints.size)
                )
            self.n_cols = m.n_cols
        if m.n_rows > self.n_rows:
            a, lo, hi = m.rows(self.n_rows)
            h.addRows(
                a.shape[0],
                lo,
                hi,
                a.nnz,
                a.indptr[:-1].astype(np.int32),
                a.indices.astype(np.int32),
                a.data,
            )
            self.n_rows = m.n_rows

    def set_bounds(self, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.h.changeColsBounds(cols.size, cols.astype(np.int32), lo, hi)

    def lp_value(self, col: int, sign: float, time_limit: float | None = None) -> float | None:
        """Optimal value of the LP ``min sign * v[col]`` (integrality relaxed), or None."""
        h, ms = self.h, self._hs.HighsModelStatus
        h.setOptionValue("time_limit", float(time_limit) if time_limit is not None else np.inf)
        h.changeColCost(int(col), float(sign))
        try:
            h.run()
            if h.getModelStatus() != ms.kOptimal:
                return None
            return float(h.getInfo().objective_function_value)
        finally:
            h.changeColCost(int(col), 0.0)

    def solve(
        self,
        cost: np.ndarray,
        offset: float,
        time_limit: float | None = None,
        cutoff: float | None = None,
        start: np.ndarray | None = None,
    ) -> Outcome:
        """Minimise ``cost . v + offset``; with ``cutoff``, only over ``cost . v + offset <=
        cutoff`` (an infeasible model then proves the minimum is above the cutoff)."""
        hs, h = self._hs, self.h
        self.sync()
        t0 = time.perf_counter()
        n = self.n_cols
        h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(cost, dtype=np.float64))
        h.setOptionValue("time_limit", float(time_limit) if time_limit is not None else np.inf)
        cut_row = None
        if cutoff is not None:
            nz = np.flatnonzero(cost)
            h.addRow(-np.inf, cutoff - offset, nz.size, nz.astype(np.int32), cost[nz])
            cut_row = h.getNumRow() - 1
        try:
            if start is not None:
                sol = hs.HighsSolution()
                sol.col_value = [float(v) for v in start]
                sol.value_valid = True
                h.setSolution(sol)
            h.run()
            status = h.getModelStatus()
            info = h.getInfo()
            has_sol = info.primal_solution_status == 2
            cols = np.array(h.getSolution().col_value) if has_sol else None
            value = float(info.objective_function_value) + offset if has_sol else None
            mip = self.integer and self.model.n_int > 0
            dual = float(info.mip_dual_bound) + offset if mip else -np.inf
            ms = hs.HighsModelStatus
            if status == ms.kOptimal and value is None:  # seen on LPs: no value to trust
                out = Outcome(
                    "error", -np.inf, None, None, 0.0, self.name, "optimal without a solution"
                )
            elif status == ms.kOptimal:
                if not mip:
                    bound = value
                elif np.isfinite(dual):
                    bound = min(dual, value)
                else:  # no dual bound reported: the stopping rule's gap
                    bound = value - max(self.gap_abs, self.gap_rel * abs(value))
                out = Outcome("optimal", bound, value, cols, 0.0, self.name)
            elif status in (ms.kInfeasible, ms.kUnboundedOrInfeasible) and cutoff is not None:
                out = Outcome("cutoff", float(cutoff), None, None, 0.0, self.name)
            elif status in (
                ms.kTimeLimit,
                ms.kInterrupt,
                ms.kIterationLimit,
                ms.kSolutionLimit,
            ):
                bound = dual if np.isfinite(dual) else -np.inf
                if cutoff is not None:
                    bound = min(bound, float(cutoff))
                out = Outcome("timeout", bound, value, cols, 0.0, self.name)
            else:
                out = Outcome(
                    "error", -np.inf, None, None, 0.0, self.name, h.modelStatusToString(status)
                )
        finally:
            if cut_row is not None:
                h.deleteRows(1, np.array([cut_row], dtype=np.int32))
        out.seconds = time.perf_counter() - t0
        return out


class CbcSolver:
    """CBC (shipped with pulp) on the pulp problem built from the model."""

    name = "cbc"

    def __init__(self, model: Model, gap_rel: float, gap_abs: float, threads: int | None = None):
        import pulp

        self._pulp = pulp
        self.model = model
        self.gap_rel, self.gap_abs = gap_rel, gap_abs
        self.threads = threads
        self.prob, self.vars = model.to_pulp()
        if not pulp.PULP_CBC_CMD().available():
            raise RuntimeError("pulp's CBC binary is not available")

    def solve(
        self,
        cost: np.ndarray,
        offset: float,
        time_limit: float | None = None,
        cutoff: float | None = None,
        start: np.ndarray | None = None,
    ) -> Outcome:
        pulp = self._pulp
        t0 = time.perf_counter()
        nz = np.flatnonzero(cost)
        expr = pulp.LpAffineExpression([(self.vars[j], float(cost[j])) for j in nz])
        self.prob.setObjective(expr)
        self.prob.sense = pulp.LpMinimize
        if cutoff is not None:
            self.prob.addConstraint(
                pulp.LpConstraint(expr, pulp.LpConstraintLE, rhs=cutoff - offset), "cutoff"
            )
        if start is not None:
            for var, val in zip(self.vars, start, strict=True):
                var.setInitialValue(float(round(val)) if var.cat == pulp.LpInteger else float(val))
        fd, log = tempfile.mkstemp(suffix=".log", prefix="nnrange_cbc_")
        os.close(fd)
        tol = f"{FEASIBILITY_TOL:g}"
        solver = pulp.PULP_CBC_CMD(
            msg=False,
            timeLimit=time_limit,
            gapRel=self.gap_rel,
            gapAbs=self.gap_abs,
            threads=self.threads,
            warmStart=start is not None,
            logPath=log,
            options=[f"primalTolerance {tol}", f"integerTolerance {tol}"],
        )
        try:
            self.prob.solve(solver)
            with open(log) as fh:
                text = fh.read()
        except Exception as exc:  # any solver failure is reported, not raised
            return Outcome(
                "error", -np.inf, None, None, time.perf_counter() - t0, self.name, str(exc)
            )
        finally:
            if cutoff is not None:
                del self.prob.constraints["cutoff"]
            os.unlink(log)
        return self._outcome(text, cutoff, offset, time.perf_counter() - t0)

    def _outcome(self, log: str, cutoff, offset: float, seconds: float) -> Outcome:
        pulp = self._pulp
        prob = self.prob
        has_sol = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        cols = value = None
        if has_sol:
            cols = np.array([v.varValue if v.varValue is not None else 0.0 for v in self.vars])
            value = float(pulp.value(prob.objective) or 0.0) + offset
        found = re.search(r"Lower bound:\s*(\S+)", log)
        # CBC prints about 7 significant digits: widen by a relative 1e-6
        dual = float(found.group(1)) if found else -np.inf
        dual = dual - 1e-6 * abs(dual) - 1e-9 + offset if np.isfinite(dual) else -np.inf
        stopped = "Stopped on" in log
        if prob.status == pulp.LpStatusInfeasible or "proven infeasible" in log:
            if cutoff is not None:
                return Outcome("cutoff", float(cutoff), None, None, seconds, self.name)
            return Outcome("error", -np.inf, None, None, seconds, self.name, "infeasible")
        if has_sol and prob.sol_status == pulp.LpSolutionOptimal and not stopped:
            gap = max(self.gap_abs, self.gap_rel * abs(value)) if self.model.n_int else 0.0
            return Outcome("optimal", value - gap, value, cols, seconds, self.name)
        if stopped or has_sol:
            bound = dual if cutoff is None else min(dual, float(cutoff))
            return Outcome("timeout", bound, value, cols, seconds, self.name)
        return Outcome("error", -np.inf, None, None, seconds, self.name, pulp.LpStatus[prob.status])


SOLVERS = {"highs": HighsSolver, "cbc": CbcSolver}


def make_solver(name: str, model: Model, gap_rel: float, gap_abs: float, threads=None):
    """The back end ``name`` ("highs" or "cbc") for ``model``; HiGHS falls back to CBC when
    ``highspy`` is missing. Returns ``(solver, note)`` with a note when it fell back."""
    key = name.lower()
    if key not in SOLVERS:
        from ..errors import EngineError

        raise EngineError(f"unknown MILP solver {name!r}; choose 'highs' or 'cbc'")
    if key == "highs":
        try:
            return HighsSolver(model, gap_rel, gap_abs, threads), None
        except ImportError as exc:
            return CbcSolver(model, gap_rel, gap_abs, threads), f"HiGHS unavailable ({exc}); CBC"
    return CbcSolver(model, gap_rel, gap_abs, threads), None
