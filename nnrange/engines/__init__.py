"""Bound engines. Each takes ``(graph, box, **options)`` and returns a ``BoundsResult``.

``ENGINES`` maps a method name to its engine; ``ALIASES`` maps accepted alternative spellings.
Adding an engine means adding its module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import alpha_crown, bab, crown, ibp, milp, sampling


@dataclass(frozen=True)
class Engine:
    name: str
    run: Callable
    gives_outer: bool
    gives_inner: bool
    summary: str
    #: ``supports(graph)``: None when the engine handles the graph with default options, else
    #: the reason it refuses (the contract suite skips such graphs with that reason).
    supports: Callable | None = None


ENGINES: dict[str, Engine] = {
    "ibp": Engine("ibp", ibp.run, True, False, "interval bound propagation (fast, loose)"),
    "crown": Engine(
        "crown",
        crown.run,
        True,
        False,
        "CROWN back-substitution, intermediate bounds intersected with IBP",
    ),
    "alpha-crown": Engine(
        "alpha-crown",
        alpha_crown.run,
        True,
        False,
        "CROWN with lower ReLU slopes optimised per output bound",
    ),
    "bab": Engine(
        "bab",
        bab.run,
        True,
        True,
        "branch and bound with CROWN, splitting inputs (small inputs) or ReLUs (ReLU nets with"
        " more than 64 inputs): anytime, exact within a tolerance",
    ),
    "milp": Engine(
        "milp",
        milp.run,
        True,
        True,
        "exact ranges of piecewise-linear nets: big-M MILP (HiGHS), witnesses re-evaluated",
        milp.supports,
    ),
    "sample": Engine(
        "sample",
        sampling.run,
        False,
        True,
        "inner bounds: centre, corners, uniform samples, gradient attack, LP polish",
    ),
}

#: Engines ``method="auto"`` runs in order, while a requested tolerance is not met.
AUTO_CHAIN: tuple[str, ...] = ("crown", "alpha-crown", "bab")

ALIASES: dict[str, str] = {
    "interval": "ibp",
    "sampling": "sample",
    "deeppoly": "crown",
    "alpha_crown": "alpha-crown",
    "alphacrown": "alpha-crown",
    "crown-optimized": "alpha-crown",
    "mip": "milp",
}
