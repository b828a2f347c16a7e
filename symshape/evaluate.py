"""Exact, fast substitution of sizes into size expressions.

``expr.subs(values)`` walks the whole tree and re-simplifies at every node; a report substitutes
into hundreds of expressions that share most of their sub-expressions. :func:`substitute` walks
each distinct node once (a memo shared across calls), computes the fully numeric nodes in exact
rational arithmetic (:class:`fractions.Fraction`, never floats, except where torch itself uses a
double: :class:`~symshape.floors.ScaledFloor`), and rebuilds only the nodes that keep a symbol.
"""
from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import Mapping, Optional

import sympy

from .floors import ScaledFloor

__all__ = ["substitute", "evaluate"]

_RELATIONS = {
    sympy.Eq: operator.eq, sympy.Ne: operator.ne, sympy.Ge: operator.ge, sympy.Gt: operator.gt,
    sympy.Le: operator.le, sympy.Lt: operator.lt,
}


def _mul(args):
    out = Fraction(1)
    for a in args:
        out *= a
    return out


def _pow(args):
    base, exp = args
    if exp.denominator != 1:
        return None
    return base ** int(exp)


def _scaled(args):
    size, scale = args
    if size.denominator != 1:
        return None
    return Fraction(math.floor(float(size.numerator) * float(scale)))


def _mod(args):
    a, m = args
    return a % m if m else None


_NUMERIC = {
    sympy.Add: sum,
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.floor: lambda args: Fraction(math.floor(args[0])),
    sympy.ceiling: lambda args: Fraction(math.ceil(args[0])),
    sympy.Min: min,
    sympy.Max: max,
    sympy.Mod: _mod,
    ScaledFloor: _scaled,
}


def _to_sympy(value):
    if isinstance(value, bool):
        return sympy.true if value else sympy.false
    if value.denominator == 1:
        return sympy.Integer(value.numerator)
    return sympy.Rational(value.numerator, value.denominator)


def _number(expr) -> Optional[Fraction]:
    if expr.is_Integer:
        return Fraction(int(expr))
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    return None


def substitute(expr, values: Mapping, memo: Optional[dict] = None):
    """*expr* with the symbols in *values* (symbol -> int) replaced, numeric parts computed exactly.

    Gives the same result as ``expr.subs(values)`` for size expressions (sums, products, integer
    powers, floor, ceiling, Min, Max, Mod, ScaledFloor, relations and their and/or/not), and
    falls back to sympy for any other node. Pass the same *memo* dict to share work between calls
    with the same *values*.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div, scaled_floor
    >>> H, W = symbols("H W")
    >>> substitute(32 * (floor_div(H - 7, 2) + 1) * (floor_div(W - 7, 2) + 1), {H: 32, W: 32})
    5408
    >>> substitute(floor_div(H - 7, 2) + W, {H: 28})
    W + 10
    >>> substitute(sympy.Ge(floor_div(H - 7, 2) + 1, 1), {H: 6}), substitute(scaled_floor(H, 0.29), {H: 100})
    (False, 28)
    """
    if memo is None:
        memo = {}
    return _subst(sympy.sympify(expr), {k: sympy.Integer(v) for k, v in values.items()}, memo)


def _subst(expr, values, memo):
    try:
        return memo[expr]
    except KeyError:
        pass
    if expr.is_Symbol:
        out = values.get(expr, expr)
    elif not expr.args or expr.is_Number:
        out = expr
    else:
        args = [_subst(a, values, memo) for a in expr.args]
        out = None
        fn = _NUMERIC.get(expr.func)
        rel = _RELATIONS.get(expr.func)
        if fn is not None or rel is not None:
            nums = [_number(a) for a in args]
            if all(n is not None for n in nums):
                value = fn(nums) if fn is not None else rel(*nums)
                if value is not None:
                    out = _to_sympy(value)
        if out is None:
            if all(a is b for a, b in zip(args, expr.args)):
                out = expr
            else:
                out = expr.func(*args)
    memo[expr] = out
    return out


def evaluate(expr, values: Mapping) -> int:
    """The exact integer value of a size expression at sizes that fix all its symbols.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> evaluate(floor_div(H, 8), {H: 33})
    4
    >>> evaluate(H + 1, {})
    Traceback (most recent call last):
    ...
    ValueError: H + 1 is not an integer at {}: give a value for every symbol
    """
    out = substitute(expr, values)
    if not out.is_Integer:
        raise ValueError(f"{out} is not an integer at {dict(values)}: give a value for every symbol")
    return int(out)
