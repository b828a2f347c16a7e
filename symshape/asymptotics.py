"""How a size formula grows as one size grows: the lead term of a floor-affine formula in one size
(:func:`growth`, for the solver's searches) and the conditions a periodic domain already implies
(:func:`implied_periodically`)."""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Optional

import sympy

from .decide import _Undecided, _slope, _term_period, _values
from .evaluate import compile_expr

# ---------------------------------------------------------------- growth as one size grows

_FUZZ = Fraction(1, 2 ** 40)  # relative error allowed on a lead coefficient that passed through doubles


@lru_cache(maxsize=65536)
def _mentions(e, x) -> bool:
    return x in e.free_symbols


def _lead(e, x, env) -> Optional[tuple]:
    """``(d, c, err, fuzzy)``: e = c·x^d + O(x^err) as x → ∞ (other symbols fixed by env), err < d
    (err None: no error term); fuzzy when c passed through torch's double product. None: not known."""
    if not _mentions(e, x):
        v = compile_expr(e)(env)
        v = Fraction(v) if not isinstance(v, bool) else Fraction(int(v))
        return (0, v, None, False) if v != 0 else (None, Fraction(0), None, False)
    if e == x:
        return 1, Fraction(1), None, False
    if isinstance(e, sympy.Add):
        parts = [_lead(a, x, env) for a in e.args]
        if any(p is None for p in parts):
            return None
        parts = [p for p in parts if p[0] is not None]
        top = max(p[0] for p in parts)
        c = sum((p[1] for p in parts if p[0] == top), Fraction(0))
        fuzzy = any(p[3] for p in parts)
        if fuzzy and abs(c) <= _FUZZ * sum(abs(p[1]) for p in parts if p[0] == top):
            return None
        if c == 0:
            return None  # the leading terms cancel: the next order is not tracked
        errs = [p[0] for p in parts if p[0] < top] + [p[2] for p in parts if p[2] is not None]
        return top, c, max(errs) if errs else None, fuzzy
    if isinstance(e, sympy.Mul):
        parts = [_lead(a, x, env) for a in e.args]
        if any(p is None for p in parts):
            return None
        if any(p[0] is None for p in parts):  # a zero factor
            return None, Fraction(0), None, False
        d = sum(p[0] for p in parts)
        c = math.prod((p[1] for p in parts), start=Fraction(1))
        gaps = [p[0] - p[2] for p in parts if p[2] is not None]
        return d, c, (d - min(gaps)) if gaps else None, any(p[3] for p in parts)
    if isinstance(e, sympy.Pow) and e.args[1].is_Integer and int(e.args[1]) > 0:
        p = _lead(e.args[0], x, env)
        if p is None or p[0] is None:
            return None
        n = int(e.args[1])
        return n * p[0], p[1] ** n, None if p[2] is None else n * p[0] - (p[0] - p[2]), p[3]
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        p = _lead(e.args[0], x, env)
        if p is None or p[0] is None or p[0] < 1:
            return None
        return p[0], p[1], max(p[2] if p[2] is not None else 0, 0), p[3]
    if type(e).__name__ == "ScaledFloor":
        p = _lead(e.args[0], x, env)
        if p is None or p[0] is None or p[0] < 1:
            return None
        return p[0], p[1] * Fraction(float(e.args[1])), max(p[2] if p[2] is not None else 0, 0), True
    if isinstance(e, (sympy.Min, sympy.Max)):
        parts = [_lead(a, x, env) for a in e.args]
        if any(p is None or p[0] is None for p in parts):
            return None
        key = sorted(parts, key=lambda p: (p[1] > 0, p[0] if p[1] > 0 else -p[0], p[1]))
        pick = key[-1] if isinstance(e, sympy.Max) else key[0]
        if sum(1 for p in parts if (p[0], p[1]) == (pick[0], pick[1])) > 1 or pick[3]:
            return None  # equal leading terms: which one wins is not decided here
        return pick if pick[2] is None or pick[2] < pick[0] else None
    return None


def growth(expr, x, env) -> Optional[int]:
    """Where ``expr`` goes as the size ``x`` grows, the other symbols fixed by *env*: +1 to +∞,
    -1 to -∞, 0 when x does not occur; None when that is not shown (leading terms cancel, a Mod,
    a limit that is finite, ...).

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> growth(H * (H + 1) - 10**40, H, {}), growth(3 - floor_div(H, 2) * W, H, {W: 5})
    (1, -1)
    >>> growth(2 * floor_div(H, 2) - H, H, {}) is None
    True
    """
    expr = sympy.sympify(expr, strict=True)
    if x not in expr.free_symbols:
        return 0
    try:
        p = _lead(expr, x, env)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, KeyError):
        return None
    if p is None:
        return None
    d, c, err, _ = p
    if d is None or d <= 0 or (err is not None and err >= d):
        return None
    return 1 if c > 0 else -1


def implied_periodically(rel, known) -> bool:
    """Whether the one-symbol (in)equation *rel* holds wherever the one-symbol equations and
    disequations of *known* on the same symbol hold, when every difference involved is periodic
    (slope 0): checked over one common period. False means "not shown".

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> even = sympy.Eq(2 * floor_div(H + 15, 16), floor_div(H + 7, 8))   # ceil(H/8) is even
    >>> implied_periodically(sympy.Eq(floor_div(H + 7, 8), 2 * floor_div(H + 15, 16)), [even])
    True
    >>> implied_periodically(sympy.Eq(sympy.Mod(H, 16), 0), [even])
    False
    """
    if len(rel.free_symbols) != 1 or not isinstance(rel, (sympy.Equality, sympy.Unequality)):
        return False
    (s,) = rel.free_symbols
    rels = [rel] + [k for k in known if isinstance(k, (sympy.Equality, sympy.Unequality)) and k.free_symbols == {s}]
    if len(rels) == 1:
        return False
    return _implied_periodically(tuple(rels), s)


@lru_cache(maxsize=16384)
def _implied_periodically(rels: tuple, s) -> bool:
    """:func:`implied_periodically` of ``rels[0]`` by the others (all of the one symbol *s*),
    cached: every branch asks again with the same domain."""
    diffs = []
    try:
        for r in rels:
            d = r.lhs - r.rhs
            if _slope(d, s) != 0:
                return False
            diffs.append((d, _term_period(d, s), isinstance(r, sympy.Equality)))
        period = math.lcm(*(p for _, p, _ in diffs))
        if period > 4096:
            return False
        columns = [(_values(d, s, period)[:period], eq) for d, _, eq in diffs]
    except (_Undecided, TypeError, ValueError):
        return False
    target, rest = columns[0], columns[1:]
    for i in range(period):
        if all((col[i] == 0) == eq for col, eq in rest) and (target[0][i] == 0) != target[1]:
            return False
    return True
