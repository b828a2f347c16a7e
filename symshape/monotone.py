"""Whether an expression of sizes has one sign, and in which direction it moves as a size grows, over
a region ``size >= low``: the monotonicity facts the solver's searches and the domain summaries
rest on (shown from the expression's structure, never by sampling)."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import sympy

from .asymptotics import _mentions
from .evaluate import compile_expr
from .floors import ScaledFloor

__all__ = ["implied_by_bounds", "sign_on", "direction"]


def _sign(e, lows: dict, free) -> Optional[int]:
    """+1 when e >= 0 everywhere on the region (free symbols >= their lows), -1 when e <= 0, else None."""
    dirs = {_dir(e, s, lows, free) for s in _free(e) & free}
    try:
        v = compile_expr(e)(lows)
    except ZeroDivisionError:  # e.g. 1/floor(L/2) at the corner L = 0: no sign shown
        return None
    if dirs <= {0, 1} and v >= 0:
        return 1
    if dirs <= {0, -1} and v <= 0 and e.is_number:
        return -1
    return None


@lru_cache(maxsize=65536)
def _free(e) -> frozenset:
    return frozenset(e.free_symbols)


def _combine(dirs) -> Optional[int]:
    dirs = set(dirs)
    if None in dirs or {1, -1} <= dirs:
        return None
    return 1 if 1 in dirs else -1 if -1 in dirs else 0


def _dir(e, x, lows: dict, free) -> Optional[int]:
    """+1 non-decreasing, -1 non-increasing, 0 constant in x over the region, None: not shown."""
    if not _mentions(e, x):
        return 0
    if e.is_Symbol:
        return 1
    if isinstance(e, (sympy.Add, sympy.Min, sympy.Max)):
        return _combine(_dir(a, x, lows, free) for a in e.args)
    if isinstance(e, (sympy.floor, sympy.ceiling, ScaledFloor)):
        return _dir(e.args[0], x, lows, free)
    if isinstance(e, sympy.Pow) and e.args[1].is_Integer and e.args[1] > 0:
        return _dir(e.args[0], x, lows, free) if _sign(e.args[0], lows, free) == 1 else None
    if isinstance(e, sympy.Mul):
        moving = [a for a in e.args if _mentions(a, x)]
        if len(moving) == 1:  # c·g(x) with c of one sign: g's direction, whatever g's sign (2*floor((H - 3)/2))
            others = [a for a in e.args if a is not moving[0]]
            signs = [_sign(a, lows, free) if _free(a) & free else (1 if compile_expr(a)(lows) >= 0 else -1)
                     for a in others]
            d = _dir(moving[0], x, lows, free)
            if None not in signs and d is not None:
                return d * (-1) ** signs.count(-1)
        sign, dirs = 1, []
        for a in e.args:
            s = _sign(a, lows, free) if _free(a) & free else (1 if compile_expr(a)(lows) >= 0 else -1)
            if s is None:
                return None
            sign *= s
            dirs.append(s * _dir(a, x, lows, free) if _mentions(a, x) else 0)
            if dirs[-1] is None:
                return None
        d = _combine(dirs)
        return None if d is None else sign * d
    return None


@lru_cache(maxsize=8192)
def _dir_cached(e, x, lows: frozenset, free: frozenset) -> Optional[int]:
    return _dir(e, x, dict(lows), free)


def implied_by_bounds(rel, lows: dict) -> bool:
    """Whether the relation ``lhs >= rhs`` (or ``<=``) holds at every size at or above *lows*
    (a symbol -> lower bound map; symbols not in it are >= 1): its difference is shown
    non-decreasing in every symbol on that region and non-negative at the corner. False means
    "not shown", not "fails".

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> implied_by_bounds(sympy.Ge(floor_div(H, 4) * floor_div(W, 4), 2), {H: 8, W: 8})
    True
    >>> implied_by_bounds(sympy.Ge(floor_div(H, 4) * floor_div(W, 4), 2), {H: 4, W: 4})
    False
    """
    if isinstance(rel, sympy.GreaterThan):
        diff = rel.lhs - rel.rhs
    elif isinstance(rel, sympy.LessThan):
        diff = rel.rhs - rel.lhs
    else:
        return False
    free = diff.free_symbols
    region = {s: lows.get(s, 1) for s in free}
    try:
        return _sign(diff, region, free) == 1
    except (KeyError, TypeError, ZeroDivisionError):
        return False


sign_on = _sign
direction = _dir
