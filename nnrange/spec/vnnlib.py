"""VNN-LIB properties: the subset used by the VNN-COMP benchmarks.

A property declares input variables ``X_i`` and output variables ``Y_j``, bounds the inputs
and describes an *unsafe* output region. It is violated when some input in the box reaches that
region. Supported: ``declare-const``, ``assert`` of ``<=``, ``>=``, ``<``, ``>``, ``=`` between
linear terms (numbers, variables, ``+``, ``-``, ``*`` by a constant), ``and`` and ``or`` in any
nesting. The conjunction of all asserts is put in disjunctive normal form; each term becomes an
input box and a polytope ``{y : A y <= b}``.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError

_TOKEN = re.compile(r"\s*(?:(;[^\n]*)|(\()|(\))|([^\s()]+))")
_VAR = re.compile(r"^([XY])_(\d+)$")


@dataclass
class Case:
    """One disjunct: an input box and the unsafe outputs ``any_k (A_k y <= b_k)``."""

    lo: np.ndarray
    hi: np.ndarray
    unsafe: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class Property:
    n_inputs: int
    n_outputs: int
    cases: list[Case]
    source: str = "property"

    def is_unsafe(self, y: np.ndarray, case: int | None = None, tol: float = 0.0) -> bool:
        """Does output vector ``y`` lie in the unsafe region (of one case, or of any)?"""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        cases = self.cases if case is None else [self.cases[case]]
        return any(np.all(a @ y <= b + tol) for c in cases for a, b in c.unsafe)


class _Sym:
    """A token or list with its source position, for error messages."""

    def __init__(self, value, line: int, col: int):
        self.value, self.line, self.col = value, line, col


def _tokenize(text: str, source: str) -> list[_Sym]:
    out, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        start = m.start(m.lastindex)
        line += text.count("\n", pos, start)
        nl = text.rfind("\n", 0, start)
        line_start = nl + 1 if nl >= 0 else 0
        if m.group(2) or m.group(3) or m.group(4):
            out.append(_Sym(m.group(m.lastindex), line, start - line_start + 1))
        line += text.count("\n", start, m.end())
        pos = m.end()
    if text[pos:].strip():
        raise SpecError(f"{source}: unexpected text at line {line}")
    return out


def _parse(tokens: list[_Sym], source: str) -> list[_Sym]:
    stack: list[_Sym] = [_Sym([], 1, 1)]
    for tok in tokens:
        if tok.value == "(":
            stack.append(_Sym([], tok.line, tok.col))
        elif tok.value == ")":
            if len(stack) == 1:
                raise SpecError(f"{source}:{tok.line}:{tok.col}: unmatched ')'")
            done = stack.pop()
            stack[-1].value.append(done)
        else:
            stack[-1].value.append(tok)
    if len(stack) > 1:
        s = stack[-1]
        raise SpecError(f"{source}:{s.line}:{s.col}: '(' is never closed")
    return stack[0].value


class _Reader:
    def __init__(self, source: str):
        self.source = source
        self.declared: dict[str, tuple[str, int]] = {}

    def err(self, sym: _Sym, msg: str) -> SpecError:
        return SpecError(f"{self.source}:{sym.line}:{sym.col}: {msg}")

    def head(self, sym: _Sym) -> str:
        if not isinstance(sym.value, list) or not sym.value or isinstance(sym.value[0].value, list):
            raise self.err(sym, "expected '(keyword ...)'")
        return sym.value[0].value

    def term(self, sym: _Sym) -> dict:
        """A linear term as ``{var: coef, "": const}``."""
        if not isinstance(sym.value, list):
            tok = sym.value
            if tok in self.declared:
                return {tok: 1.0}
            try:
                value = float(tok)
            except ValueError:
                raise self.err(
                    sym, f"unknown name {tok!r} (declare it with declare-const)"
                ) from None
            if not np.isfinite(value):
                raise self.err(sym, f"{tok!r} is not a finite number")
            return {"": value}
        op = self.head(sym)
        args = [self.term(a) for a in sym.value[1:]]
        if op == "+":
            return _add(*args)
        if op == "-":
            if len(args) == 1:
                return _scale(args[0], -1.0)
            return _add(args[0], *(_scale(a, -1.0) for a in args[1:]))
        if op == "*":
            consts = [a for a in args if set(a) <= {""}]
            others = [a for a in args if not set(a) <= {""}]
            if len(others) > 1:
                raise self.err(sym, "product of two variables is not linear")
            c = float(np.prod([a.get("", 0.0) for a in consts]))
            return _scale(others[0], c) if others else {"": c}
        raise self.err(sym, f"unsupported term operator {op!r}")

    def formula(self, sym: _Sym):
        """Formula tree: ("atom", row) | ("and", [..]) | ("or", [..])."""
        op = self.head(sym)
        args = sym.value[1:]
        if op in ("and", "or"):
            return (op, [self.formula(a) for a in args])
        if op in ("<=", ">=", "<", ">", "="):
            if len(args) != 2:
                raise self.err(sym, f"'{op}' takes two arguments, got {len(args)}")
            left, right = self.term(args[0]), self.term(args[1])
            diff = _add(left, _scale(right, -1.0))  # left - right
            if op in ("<=", "<"):
                return ("atom", diff, sym)
            if op in (">=", ">"):
                return ("atom", _scale(diff, -1.0), sym)
            return ("and", [("atom", diff, sym), ("atom", _scale(diff, -1.0), sym)])
        raise self.err(sym, f"unsupported operator {op!r} (supported: and, or, <=, >=, <, >, =)")


def _add(*terms: dict) -> dict:
    out: dict = {}
    for t in terms:
        for k, v in t.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _scale(t: dict, c: float) -> dict:
    return {k: v * c for k, v in t.items()}


def _dnf(f) -> list[list]:
    """Disjunctive normal form: list of conjunctions (lists of atoms)."""
    if f[0] == "atom":
        return [[f]]
    parts = [_dnf(g) for g in f[1]]
    if f[0] == "or":
        return [conj for p in parts for conj in p]
    out = [[]]
    for p in parts:
        out = [a + b for a, b in itertools.product(out, p)]
        if len(out) > 100_000:
            raise SpecError("the property expands to more than 100000 cases")
    return out


def parse_vnnlib(text: str, source: str = "property") -> Property:
    """Parse VNN-LIB text into input boxes and unsafe output polytopes."""
    reader = _Reader(source)
    forms = []
    for stmt in _parse(_tokenize(text, source), source):
        op = reader.head(stmt)
        if op == "declare-const":
            if len(stmt.value) != 3:
                raise reader.err(stmt, "declare-const takes a name and a sort")
            name, sort = stmt.value[1].value, stmt.value[2].value
            m = _VAR.match(str(name))
            if not m:
                raise reader.err(stmt.value[1], f"variable {name!r} is not named X_i or Y_j")
            if sort != "Real":
                raise reader.err(stmt.value[2], f"sort {sort!r} is not supported (only Real)")
            reader.declared[name] = (m.group(1), int(m.group(2)))
        elif op == "assert":
            if len(stmt.value) != 2:
                raise reader.err(stmt, "assert takes exactly one formula")
            forms.append(reader.formula(stmt.value[1]))
        else:
            raise reader.err(stmt, f"unsupported command {op!r} (expected declare-const or assert)")
    n_in = 1 + max((i for k, i in reader.declared.values() if k == "X"), default=-1)
    n_out = 1 + max((i for k, i in reader.declared.values() if k == "Y"), default=-1)
    if n_in == 0:
        raise SpecError(f"{source}: no input variables X_i are declared")
    cases: dict[tuple, Case] = {}
    for conj in _dnf(("and", forms)):
        lo, hi = np.full(n_in, -np.inf), np.full(n_in, np.inf)
        rows, rhs = [], []
        for _, row, sym in conj:
            const = row.get("", 0.0)
            xs = {k: v for k, v in row.items() if k and v != 0 and reader.declared[k][0] == "X"}
            ys = {k: v for k, v in row.items() if k and v != 0 and reader.declared[k][0] == "Y"}
            if xs and ys:
                raise reader.err(sym, "constraints mixing inputs and outputs are not supported")
            if len(xs) > 1:
                raise reader.err(sym, "input constraints must bound one variable (a box)")
            if xs:
                ((name, coef),) = xs.items()
                i = reader.declared[name][1]
                bound = -const / coef  # coef * x + const <= 0
                if coef > 0:
                    hi[i] = min(hi[i], bound)
                else:
                    lo[i] = max(lo[i], bound)
            elif ys:
                a = np.zeros(n_out)
                for name, coef in ys.items():
                    a[reader.declared[name][1]] += coef
                rows.append(a)
                rhs.append(-const)
            elif const > 0:
                rows.append(None)  # a false constant constraint: this disjunct is empty
        if any(r is None for r in rows) or np.any(lo > hi):
            continue
        missing = np.flatnonzero(~np.isfinite(lo) | ~np.isfinite(hi))
        if missing.size:
            raise SpecError(f"{source}: input X_{missing[0]} is not bounded on both sides")
        key = (lo.tobytes(), hi.tobytes())
        case = cases.setdefault(key, Case(lo, hi))
        case.unsafe.append((np.array(rows).reshape(len(rows), n_out), np.array(rhs)))
    if not cases:
        raise SpecError(f"{source}: the input constraints are contradictory (empty box)")
    return Property(n_in, n_out, list(cases.values()), source)


def load_vnnlib(path: str | os.PathLike) -> Property:
    """Read and parse a .vnnlib file."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a text file ({exc})") from exc
    return parse_vnnlib(text, path)
