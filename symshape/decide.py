"""Deciding the sign of a size expression for every input size, exactly and fast.

Shape rules often need to know whether ``a <= b`` for all sizes (is a slice's end inside the dim?
is the padded size at least the original one?). sympy's ``Min``/``Max`` and assumption system
answer slowly or not at all for floors. Size expressions are sums of terms in one symbol each,
built from integer-affine numerators and floors (DESIGN.md §5); such a term is *periodic plus
linear*: ``f(X + P) = f(X) + s·P`` for the period P (a multiple of every divisor in it) and slope s.
So ``f >= 0`` for every X >= 1 iff s >= 0 and f >= 0 on X = 1..P, which is a finite check.

>>> from symshape.symbols import symbols
>>> from symshape.floors import floor_div, mod
>>> H, W = symbols("H W")
>>> padded = H + mod(7 - mod(H, 7), 7)           # H padded to a multiple of 7
>>> always_nonnegative(padded - H), always_nonnegative(H - padded)
(True, False)
>>> always_nonnegative(floor_div(H, 2) + floor_div(W - 1, 3))
True
>>> always_nonnegative(H * W - 3) is None          # products of symbols are not decided
True
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import sympy

__all__ = ["always_nonnegative", "decide_le"]

MAX_PERIOD = 50_000


class _Undecided(Exception):
    pass


def _compile(expr, symbol) -> tuple:
    """``(f, period)``: a Python function of one integer, exact, and a period multiple."""
    if expr.is_Integer or expr.is_Rational:
        value = Fraction(int(expr.p), int(expr.q))
        return (lambda x: value), 1
    if expr == symbol:
        return (lambda x: x), 1
    if isinstance(expr, sympy.Add):
        parts = [_compile(a, symbol) for a in expr.args]
        fs = [f for f, _ in parts]
        return (lambda x: sum(f(x) for f in fs)), math.lcm(*(p for _, p in parts))
    if isinstance(expr, sympy.Mul):
        const = [a for a in expr.args if a.is_Rational]
        rest = [a for a in expr.args if not a.is_Rational]
        if len(rest) != 1:
            raise _Undecided
        c = Fraction(1)
        for a in const:
            c *= Fraction(int(a.p), int(a.q))
        f, p = _compile(rest[0], symbol)
        return (lambda x: c * f(x)), p * c.denominator
    if isinstance(expr, sympy.floor):
        f, p = _compile(expr.args[0], symbol)
        return (lambda x: Fraction(math.floor(f(x)))), p * _denominators(expr.args[0])
    if isinstance(expr, sympy.ceiling):
        f, p = _compile(expr.args[0], symbol)
        return (lambda x: Fraction(math.ceil(f(x)))), p * _denominators(expr.args[0])
    if isinstance(expr, sympy.Mod) and expr.args[1].is_Integer and expr.args[1] > 0:
        f, p = _compile(expr.args[0], symbol)
        m = int(expr.args[1])
        return (lambda x: f(x) % m), p * m
    raise _Undecided


def _denominators(expr) -> int:
    d = 1
    for r in expr.atoms(sympy.Rational):
        d = math.lcm(d, int(r.q))
    return d


def _group_minimum(expr, symbol) -> Optional[Fraction]:
    """min over X >= 1 of a one-symbol term, -inf as None when its slope is negative."""
    f, period = _compile(expr, symbol)
    if period > MAX_PERIOD:
        raise _Undecided
    slope = f(1 + period) - f(1)
    if slope < 0:
        return None
    return min(f(x) for x in range(1, period + 1))


def always_nonnegative(expr) -> Optional[bool]:
    """True if ``expr >= 0`` for every positive integer value of its symbols, False if not, None
    when the expression is not a sum of one-symbol floor-affine terms (or its period is too long)."""
    expr = sympy.expand(sympy.sympify(expr))
    if expr.is_number:
        return bool(expr >= 0)
    groups: dict = {}
    const = sympy.Integer(0)
    for term in sympy.Add.make_args(expr):
        syms = term.free_symbols
        if not syms:
            const += term
        elif len(syms) == 1:
            (s,) = syms
            groups[s] = groups.get(s, sympy.Integer(0)) + term
        else:
            return None
    total = Fraction(int(sympy.Rational(const).p), int(sympy.Rational(const).q))
    try:
        for s, g in groups.items():
            low = _group_minimum(g, s)
            if low is None:
                return False
            total += low
    except _Undecided:
        return None
    return total >= 0


def decide_le(a, b) -> Optional[bool]:
    """True when ``a <= b`` for every input size; None when that is not decided true.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> decide_le(H - 1, H), decide_le(H, 7)
    (True, None)
    """
    return True if always_nonnegative(sympy.sympify(b) - sympy.sympify(a)) else None

