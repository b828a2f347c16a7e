"""Exact evaluation of size expressions: one compiler, and a fast substitution built on its rules.

:func:`compile_expr` turns a size expression into a plain Python function ``{symbol: int} ->
value``, exact: ints where the value is an integer by construction, :class:`fractions.Fraction`
for rational constants and quotients, ``bool`` for relations, and doubles only where torch itself
uses them (:class:`~symshape.floors.ScaledFloor`). It is the evaluator of the solver, of
:func:`~symshape.verify.default_sizes` and of :mod:`~symshape.decide`; compiled functions are
cached on the expression, so asking again costs one dictionary look-up.

:func:`substitute` replaces *some* symbols and keeps the others: it walks each distinct node once
(a memo shared across calls), computes the fully numeric nodes with the same node rules
(:data:`NODE_RULES`), and rebuilds only the nodes that keep a symbol. ``Report.at`` uses it.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Mapping, Optional

import sympy

from .floors import ScaledFloor, _ratio
from .symbols import ShapeError

__all__ = ["compile_expr", "UnsupportedExpression", "NODE_RULES", "substitute", "evaluate"]


class UnsupportedExpression(ShapeError, TypeError):
    """A node :func:`compile_expr` does not know how to evaluate exactly (a ShapeError and a TypeError)."""


def _pow(base, n: int):
    return base ** n if n >= 0 else Fraction(1, base ** -n)


def _scaled(size, scale: float) -> int:
    return math.floor(float(size) * scale)


#: How each kind of node combines the exact values of its arguments. ``floor``/``ceiling`` of a
#: Fraction are exact; ``Pow`` takes an integer exponent; ``ScaledFloor`` multiplies in doubles as
#: torch does. :func:`compile_expr` specialises the common nodes (sums, products, floors of
#: ``numerator/m``) but gives the same values.
NODE_RULES: dict = {
    sympy.Add: lambda xs: sum(xs),
    sympy.Mul: lambda xs: math.prod(xs),
    sympy.Pow: lambda xs: _pow(xs[0], int(xs[1])),
    sympy.floor: lambda xs: math.floor(xs[0]),
    sympy.ceiling: lambda xs: math.ceil(xs[0]),
    ScaledFloor: lambda xs: _scaled(xs[0], float(xs[1])),
    sympy.Mod: lambda xs: xs[0] % xs[1],
    sympy.Min: min,
    sympy.Max: max,
    sympy.Eq: lambda xs: xs[0] == xs[1],
    sympy.Ne: lambda xs: xs[0] != xs[1],
    sympy.Ge: lambda xs: xs[0] >= xs[1],
    sympy.Le: lambda xs: xs[0] <= xs[1],
    sympy.Gt: lambda xs: xs[0] > xs[1],
    sympy.Lt: lambda xs: xs[0] < xs[1],
    sympy.And: all,
    sympy.Or: any,
    sympy.Not: lambda xs: not xs[0],
}


def _const(value):
    return lambda env: value


@lru_cache(maxsize=16384)
def compile_expr(expr, fallback: bool = False) -> Callable[[Mapping], object]:
    """A function ``{symbol: int} -> exact value`` of a size expression, cached on the expression.

    Knows integers, rationals, symbols, ``+``, ``*``, integer powers, floor and ceiling (of
    ``numerator/m``: one integer division), :class:`~symshape.floors.ScaledFloor` (torch's
    ``floor(double(L) * scale)``), Mod, Min, Max, the relations ``= ≠ ≥ ≤ > <``, And, Or, Not,
    true and false (:data:`NODE_RULES`). Values are ints where the value is an integer by
    construction, Fractions where a rational enters, bools for relations. A symbol missing from
    the mapping raises KeyError when the function is called.

    Any other node raises :class:`UnsupportedExpression` here, at compile time: the solver must
    not guess. With ``fallback=True`` such a node is evaluated by sympy's ``subs`` instead (slow,
    but :func:`~symshape.verify.default_sizes` takes any domain condition).

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div, scaled_floor
    >>> H, W = symbols("H W")
    >>> f = compile_expr(32 * (floor_div(H - 7, 2) + 1) * (floor_div(W - 7, 2) + 1))
    >>> f({H: 32, W: 32}), f({H: 31, W: 31})
    (5408, 5408)
    >>> compile_expr(H / 4)({H: 6}), compile_expr(scaled_floor(H, 0.7))({H: 10})
    (Fraction(3, 2), 7)
    >>> compile_expr(sympy.And(H >= 7, sympy.Eq(sympy.Mod(W, 4), 0)))({H: 7, W: 12})
    True
    >>> compile_expr(sympy.gamma(H))
    Traceback (most recent call last):
    ...
    symshape.evaluate.UnsupportedExpression: cannot evaluate gamma(H) exactly: unsupported function gamma
    >>> compile_expr(sympy.gamma(H), fallback=True)({H: 5})
    Fraction(24, 1)
    """
    e = expr if isinstance(expr, sympy.Basic) else sympy.sympify(expr, strict=True)
    if e is sympy.true or e is sympy.false:
        return _const(bool(e))
    if e.is_Integer:
        return _const(int(e))
    if e.is_Rational:
        return _const(Fraction(int(e.p), int(e.q)))
    if e.is_Symbol:
        return lambda env: env[e]
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        ratio = _ratio(e.args[0])
        if ratio is not None:  # floor(num/m) is one integer division (num may be a Fraction: still exact)
            num, m = ratio
            fn = compile_expr(num, fallback)
            if isinstance(e, sympy.floor):
                return lambda env: fn(env) // m
            return lambda env: -((-fn(env)) // m)
        fn = compile_expr(e.args[0], fallback)
        rnd = math.floor if isinstance(e, sympy.floor) else math.ceil
        return lambda env: rnd(fn(env))
    if isinstance(e, ScaledFloor):
        fn, scale = compile_expr(e.args[0], fallback), float(e.args[1])
        return lambda env: math.floor(float(fn(env)) * scale)
    if isinstance(e, sympy.Add):
        fns = [compile_expr(a, fallback) for a in e.args]
        if len(fns) == 2:
            a, b = fns
            return lambda env: a(env) + b(env)
        return lambda env: sum(f(env) for f in fns)
    if isinstance(e, sympy.Mul):
        fns = [compile_expr(a, fallback) for a in e.args]
        if len(fns) == 2:
            a, b = fns
            return lambda env: a(env) * b(env)
        return lambda env: math.prod(f(env) for f in fns)
    if isinstance(e, sympy.Pow) and e.args[1].is_Integer:
        fn, n = compile_expr(e.args[0], fallback), int(e.args[1])
        return (lambda env: fn(env) ** n) if n >= 0 else (lambda env: Fraction(1, fn(env) ** -n))
    if isinstance(e, sympy.Mod):
        a, b = compile_expr(e.args[0], fallback), compile_expr(e.args[1], fallback)
        return lambda env: a(env) % b(env)
    rule = None if isinstance(e, sympy.Pow) else _rule(e)
    if rule is not None:
        fns = [compile_expr(a, fallback) for a in e.args]
        return lambda env: rule([f(env) for f in fns])
    if fallback:
        def by_sympy(env):
            value = e.subs(env)
            return bool(value) if value in (sympy.true, sympy.false) else Fraction(str(value))
        return by_sympy
    from .printing import fmt

    raise UnsupportedExpression(f"cannot evaluate {fmt(e)} exactly: unsupported function {type(e).__name__}")


def _rule(e):
    rule = NODE_RULES.get(type(e))
    if rule is None:
        rule = next((r for t, r in NODE_RULES.items() if isinstance(e, t)), None)
    return rule


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


def _numeric(func, nums):
    """:data:`NODE_RULES` on numbers, or None where the node is left to sympy (kept symbolic)."""
    rule = NODE_RULES.get(func)
    if rule is None or (func is sympy.Pow and nums[1].denominator != 1) or (func is sympy.Mod and not nums[1]) \
            or (func is ScaledFloor and nums[0].denominator != 1):
        return None
    return _to_sympy(rule(nums))


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
    return _subst(sympy.sympify(expr, strict=True), {k: sympy.Integer(v) for k, v in values.items()}, memo)


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
        if expr.func in NODE_RULES:
            nums = [_number(a) for a in args]
            if all(n is not None for n in nums):
                out = _numeric(expr.func, nums)
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
