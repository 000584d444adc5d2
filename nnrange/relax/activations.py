"""Linear relaxations of elementwise activations over an input interval ``[l, u]``.

Each function returns ``(lower_slope, lower_intercept, upper_slope, upper_intercept)`` such that

    lower_slope * z + lower_intercept <= f(z) <= upper_slope * z + upper_intercept

for every ``z`` in ``[l, u]`` (elementwise, arrays of any shape). Smooth functions get a margin
of a few ulps on the intercepts so that rounding in the slope and intercept cannot make a bound
cut into the function.

Why each bound holds is argued next to it. The argument used repeatedly: on an interval where f
is convex, ``line - f`` is concave, so a line that lies above f at both ends lies above it in
between; where f is concave the same holds for a line below f at both ends.
"""

from __future__ import annotations

import numpy as np

Relaxation = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: Relative and absolute slack added to smooth relaxations' intercepts (rounding only).
_MARGIN_REL = 1e-12
_MARGIN_ABS = 1e-13
#: Intervals narrower than this use the tangent at the midpoint for both bounds' slopes.
_TINY = 1e-9


def _margin(values: np.ndarray) -> np.ndarray:
    return _MARGIN_ABS + _MARGIN_REL * np.abs(values)


def _chord(f, l, u):
    """Slope and intercept of the chord of f between l and u (a constant when l == u)."""
    fl, fu = f(l), f(u)
    width = u - l
    slope = np.where(width > 0, (fu - fl) / np.where(width > 0, width, 1.0), 0.0)
    return slope, fl - slope * l


def _tangent(f, df, t):
    s = df(t)
    return s, f(t) - s * t


def relu(l, u, lower_slope=None) -> Relaxation:
    """ReLU. Upper: the chord (exact when stable). Lower: ``a * z`` with ``a`` in [0, 1], which
    lies below max(z, 0) everywhere; CROWN's adaptive choice is 1 when ``u > -l`` else 0.

    The same lines as ``leaky_relu(l, u, 0)``, in fewer array operations (CROWN relaxes every
    ReLU of every branch-and-bound piece): with ``u+ = max(u, 0)`` and ``l- = min(l, 0)`` the
    chord's slope is ``u+ / (u+ - l-)`` (1 when active, 0 when inactive), its intercept
    ``-slope * l-``.
    """
    l, u = np.asarray(l, dtype=np.float64), np.asarray(u, dtype=np.float64)
    u_pos, l_neg = np.maximum(u, 0.0), np.minimum(l, 0.0)
    width = u_pos - l_neg
    upper_s = np.divide(u_pos, width, out=np.zeros(width.shape), where=width > 0)
    upper_b = -upper_s * l_neg
    if lower_slope is None:
        lower_s = ((u > -l) & (u > 0)).astype(np.float64)
    else:
        lower_s = np.where((l < 0) & (u > 0), np.clip(lower_slope, 0.0, 1.0), u > 0)
    return lower_s, np.zeros(upper_b.shape), upper_s, upper_b


def leaky_relu(l, u, alpha, lower_slope=None) -> Relaxation:
    """``max(z, alpha z)`` type functions, alpha >= 0.

    For alpha <= 1 the function is convex: the chord through the end points is an upper bound
    and any line through the origin with slope in [alpha, 1] is a lower bound. For alpha > 1 it
    is concave and the roles swap. ``lower_slope`` (alpha-CROWN's parameter) replaces the
    adaptive slope of the bound through the origin where the neuron is unstable.
    """
    l, u = np.asarray(l, dtype=np.float64), np.asarray(u, dtype=np.float64)
    f_l = np.where(l >= 0, l, alpha * l)
    f_u = np.where(u >= 0, u, alpha * u)
    unstable = (l < 0) & (u > 0)
    width = np.where(unstable, u - l, 1.0)
    chord_s = np.where(unstable, (f_u - f_l) / width, 0.0)
    chord_b = np.where(unstable, f_l - chord_s * l, 0.0)
    stable_s = np.where(u <= 0, alpha, 1.0)
    lo_s, hi_s = min(alpha, 1.0), max(alpha, 1.0)
    if lower_slope is None:
        origin_s = np.where(u > -l, hi_s, lo_s) if alpha <= 1 else np.where(u > -l, lo_s, hi_s)
    else:
        origin_s = np.clip(lower_slope, lo_s, hi_s)
    chord = (np.where(unstable, chord_s, stable_s), np.where(unstable, chord_b, 0.0))
    origin = (np.where(unstable, origin_s, stable_s), np.zeros_like(chord_b))
    if alpha <= 1:
        return origin[0], origin[1], chord[0], chord[1]
    return chord[0], chord[1], origin[0], origin[1]


def clip(l, u, low, high) -> Relaxation:
    """``min(max(z, low), high)``.

    On each linear piece the relaxation is exact. Across one breakpoint the function is convex
    (at ``low``) or concave (at ``high``): the chord bounds one side and the better (by value at
    the midpoint, i.e. by area) of the two extensions of the pieces bounds the other. Across both
    breakpoints, the upper bound is either the constant ``high`` or the line from ``(l, low)``
    through ``(high, high)``; the lower bound is the constant ``low`` or the line from
    ``(low, low)`` through ``(u, high)``; each is above/below f at every breakpoint and end, and
    f is linear between those, so they are sound.
    """
    l, u = np.asarray(l, dtype=np.float64), np.asarray(u, dtype=np.float64)

    def f(z):
        return np.clip(z, low, high)

    mid = (l + u) / 2
    cs, cb = _chord(f, l, u)
    one, zero = np.ones_like(l), np.zeros_like(l)

    def better(cands, upper):
        """Pick per element the candidate line with the best value at the midpoint."""
        vals = np.stack([s * mid + b for s, b in cands])
        k = vals.argmin(axis=0) if upper else vals.argmax(axis=0)
        slopes = np.choose(k, [np.broadcast_to(s, l.shape) for s, _ in cands])
        inters = np.choose(k, [np.broadcast_to(b, l.shape) for _, b in cands])
        return slopes, inters

    crosses_low = (l < low) & (u > low)
    crosses_high = (l < high) & (u > high)
    # default: inside one piece -> exact (constant or identity)
    piece_s = np.where((l >= low) & (u <= high), one, zero)
    piece_b = np.where(u <= low, low, np.where(l >= high, high, zero))
    piece_b = np.where((l >= low) & (u <= high), zero, piece_b)
    ls, lb, us, ub = piece_s.copy(), piece_b.copy(), piece_s.copy(), piece_b.copy()
    # across low only: convex; upper chord, lower: constant low or identity
    m = crosses_low & ~crosses_high
    if m.any():
        s, b = better([(zero, np.full_like(l, low)), (one, zero)], upper=False)
        ls, lb = np.where(m, s, ls), np.where(m, b, lb)
        us, ub = np.where(m, cs, us), np.where(m, cb, ub)
    # across high only: concave; lower chord, upper: constant high or identity
    m = crosses_high & ~crosses_low
    if m.any():
        s, b = better([(zero, np.full_like(l, high)), (one, zero)], upper=True)
        us, ub = np.where(m, s, us), np.where(m, b, ub)
        ls, lb = np.where(m, cs, ls), np.where(m, cb, lb)
    # across both
    m = crosses_low & crosses_high
    if m.any():
        up_s = (high - low) / np.where(m, high - l, 1.0)
        s, b = better([(zero, np.full_like(l, high)), (up_s, high - up_s * high)], upper=True)
        us, ub = np.where(m, s, us), np.where(m, b, ub)
        lo_s = (high - low) / np.where(m, u - low, 1.0)
        s, b = better([(zero, np.full_like(l, low)), (lo_s, low - lo_s * low)], upper=False)
        ls, lb = np.where(m, s, ls), np.where(m, b, lb)
    return ls, lb, us, ub


def convex(f, df, l, u, tangent_at=None) -> Relaxation:
    """A convex function: chord above, tangent (at the midpoint, or ``tangent_at``) below."""
    l, u = np.asarray(l, dtype=np.float64), np.asarray(u, dtype=np.float64)
    t = (l + u) / 2 if tangent_at is None else np.clip(tangent_at, l, u)
    ls, lb = _tangent(f, df, t)
    us, ub = _chord(f, l, u)
    tiny = (u - l) <= _TINY  # f - s z is convex with its minimum at t: its max is at an end
    us, ub = np.where(tiny, ls, us), np.where(tiny, np.maximum(f(l) - ls * l, f(u) - ls * u), ub)
    return ls, lb - _margin(lb), us, ub + _margin(ub)


def _bisect(g, lo, hi, iterations=40):
    """Smallest-ish d in [lo, hi] with g(d) >= 0 for g nondecreasing; returns the end of the final
    bracket where g >= 0 (``hi`` must satisfy it)."""
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok = g(mid) >= 0
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return hi


def s_shaped(f, df, l, u, inflection=0.0) -> Relaxation:
    """A nondecreasing function convex below ``inflection`` and concave above (sigmoid, tanh).

    Entirely on one side: chord on the outer side, tangent at the midpoint on the inner side.
    Across the inflection, the upper bound is the tangent at the point ``d >= c`` whose tangent
    passes through ``(l, f(l))`` (found by bisection, keeping the side whose tangent lies above
    ``f(l)``): on ``[c, u]`` any tangent of the concave part is above f, and on ``[l, c]`` the
    line is above f at both ends of a convex piece. If no such ``d <= u`` exists, the chord is an
    upper bound: its slope is then below ``f'(u)``, so on the concave part it stays above f left
    of ``u``, and on the convex part it is above f at both ends. The lower bound is the mirror.
    """
    l, u = np.asarray(l, dtype=np.float64), np.asarray(u, dtype=np.float64)
    c = inflection
    mid = (l + u) / 2
    cs, cb = _chord(f, l, u)
    ts, tb = _tangent(f, df, mid)
    convex_side = u <= c
    concave_side = l >= c
    ls = np.where(convex_side, ts, np.where(concave_side, cs, 0.0))
    lb = np.where(convex_side, tb, np.where(concave_side, cb, 0.0))
    us = np.where(convex_side, cs, np.where(concave_side, ts, 0.0))
    ub = np.where(convex_side, cb, np.where(concave_side, tb, 0.0))
    cross = ~convex_side & ~concave_side
    if cross.any():
        lc, uc = l[cross], u[cross]
        fl = f(lc)
        # upper: tangent at d in [c, u] through (l, f(l)); g(d) = tangent_d(l) - f(l)
        g_up = lambda d: f(d) + df(d) * (lc - d) - fl  # noqa: E731
        has_tangent = g_up(uc) >= 0
        d = _bisect(g_up, np.full_like(lc, c), uc)
        s_t, b_t = _tangent(f, df, d)
        s_c, b_c = _chord(f, lc, uc)
        us[cross] = np.where(has_tangent, s_t, s_c)
        ub[cross] = np.where(has_tangent, b_t, b_c)
        # lower: tangent at d in [l, c] through (u, f(u)); h(d) = f(u) - tangent_d(u)
        h_lo = lambda d: f(uc) - (f(d) + df(d) * (uc - d))  # noqa: E731
        has_tangent = h_lo(lc) >= 0
        # h is nonincreasing in d on the convex side: bisect on -d
        d = -_bisect(lambda e: h_lo(-e), np.full_like(lc, -c), -lc)
        s_t, b_t = _tangent(f, df, d)
        ls[cross] = np.where(has_tangent, s_t, s_c)
        lb[cross] = np.where(has_tangent, b_t, b_c)
    tiny = (u - l) <= _TINY
    s_mid = df(mid)
    b_l, b_u = f(l) - s_mid * l, f(u) - s_mid * u
    us, ub = np.where(tiny, s_mid, us), np.where(tiny, np.maximum(b_l, b_u), ub)
    ls, lb = np.where(tiny, s_mid, ls), np.where(tiny, np.minimum(b_l, b_u), lb)
    return ls, lb - _margin(lb), us, ub + _margin(ub)


def elu(l, u, alpha) -> Relaxation:
    """``z`` for z > 0, ``alpha (e^z - 1)`` otherwise.

    alpha <= 1: convex, as ``convex``. alpha > 1: convex on z <= 0, linear above, with a concave
    kink at 0. Then the upper bound is the chord raised to lie above f(0), and the lower bound is
    the tangent at the midpoint of the negative part, lowered to lie below f(u); each is above
    (below) f at l, 0 and u, and f is convex or linear between those points.
    """
    l, u = np.asarray(l, dtype=np.float64), np.asarray(u, dtype=np.float64)

    def f(z):
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))

    def df(z):
        return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))

    if alpha <= 1:
        return convex(f, df, l, u)
    ls, lb, us, ub = convex(f, df, l, u)  # exact where the interval avoids the kink
    cross = (l < 0) & (u > 0)
    if cross.any():
        lc, uc = l[cross], u[cross]
        s, b = _chord(f, lc, uc)
        b = b + np.maximum(0.0, -b)  # f(0) = 0: the chord's value at 0 is its intercept
        us[cross], ub[cross] = s, b + _margin(b)
        t = lc / 2
        s, b = _tangent(f, df, t)
        b = b - np.maximum(0.0, s * uc + b - uc)
        ls[cross], lb[cross] = s, b - _margin(b)
    return ls, lb, us, ub
