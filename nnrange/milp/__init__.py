"""Exact output ranges of piecewise-linear networks by mixed-integer linear programming.

- ``model``: the MILP as arrays (columns, sparse rows) and its export to pulp;
- ``encoding``: graph + box + intermediate bounds -> big-M MILP (``Encoding``);
- ``tightening``: progressive LP tightening of intermediate bounds (``LpTightener``);
- ``solving``: HiGHS in process and CBC through pulp, one model for many objectives.

The engine (``method="milp"``) and ``solve_range`` for branch and bound live in
``nnrange.engines.milp``.
"""

from .encoding import Encoding, inexact_nodes, linear_matrices, unsupported_reason
from .model import Model
from .solving import CbcSolver, HighsSolver, Outcome, make_solver
from .tightening import LpTightener

__all__ = [
    "CbcSolver",
    "Encoding",
    "HighsSolver",
    "LpTightener",
    "Model",
    "Outcome",
    "inexact_nodes",
    "linear_matrices",
    "make_solver",
    "unsupported_reason",
]
