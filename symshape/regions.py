"""Exact checks of one-size formulas over a region of sizes, through their period.

A size formula built from one size symbol X with ``+``, integer multiples, ``floor``, ``ceiling`` and
``Mod`` by integers is *eventually periodic up to a drift*: there are P and c with
``f(X + P) = f(X) + c`` at every X (:func:`growth`). A relation ``f >= 0`` between such formulas is
then decided for all X by evaluating it on finitely many sizes: past the point where every drifting
term has left the constants behind, membership repeats with period P. :func:`holds_on` uses this
to show that a relation holds at every size of a region (given by such relations), exactly, or to
say that it cannot tell (None).

It is how two paths of a forward that branches on the sizes are shown to be one (execute.py): the
path that pads (``if pad_b > 0: x = F.pad(x, (0, 0, 0, 0, 0, pad_b))``) gives, where pad_b = 0, what
the path that does not pad gives.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import gcd
from typing import Optional

import sympy

from .evaluate import compile_expr

__all__ = ["growth", "holds_on", "factor_pairs", "point_test", "allowed_sizes", "bounding", "SCAN"]

_SPAN = 100_000  # the most sizes a check evaluates


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


def growth(expr, x) -> Optional[tuple]:
    """``(P, c)`` with ``expr(x + P) = expr(x) + c`` at every integer x (P >= 1, c rational), for
    formulas of the one symbol *x*; None for anything else (a product of two sizes, Max, ...).

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> growth(floor_div(floor_div(H - 1, 8) + 1, 7), H) == (56, 1), growth(sympy.Mod(-H, 7) + H, H) == (7, 7)
    (True, True)
    """
    expr = sympy.sympify(expr, strict=True)
    if expr.is_number:
        return (1, Fraction(0)) if expr.is_Rational else None
    if expr == x:
        return 1, Fraction(1)
    if isinstance(expr, sympy.Add):
        parts = [growth(a, x) for a in expr.args]
        if None in parts:
            return None
        p = 1
        for q, _ in parts:
            p = _lcm(p, q)
        return p, sum((c * (p // q) for q, c in parts), Fraction(0))
    if isinstance(expr, sympy.Mul):
        coeff, rest = expr.as_coeff_Mul()
        inner = growth(rest, x) if coeff.is_Rational and coeff != 1 else None
        if inner is None:
            return None
        return inner[0], inner[1] * Fraction(int(coeff.p), int(coeff.q))
    if isinstance(expr, (sympy.floor, sympy.ceiling)):
        inner = growth(expr.args[0], x)
        if inner is None:
            return None
        p, c = inner
        k = c.denominator  # shift by k periods: the argument moves by the integer k*c
        return p * k, c * k
    if isinstance(expr, sympy.Mod) and expr.args[1].is_Integer and int(expr.args[1]) > 0:
        m = int(expr.args[1])
        inner = growth(expr.args[0], x)
        if inner is None:
            return None
        p, c = inner
        k = (c / m).denominator  # the argument moves by a multiple of m: Mod repeats
        return p * k, Fraction(0)
    return None


def holds_on(relation, region, x, low: int = 1) -> Optional[bool]:
    """Whether *relation* (a sympy relation of formulas of *x*) holds at every size ``x >= low``
    where every relation of *region* holds: True, False, or None where the formulas are not of the
    kind :func:`growth` handles or the check would take too many sizes.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> pad = sympy.Mod(7 - sympy.Mod(H, 7), 7)
    >>> holds_on(sympy.Eq(H + pad, H), [sympy.Le(pad, 0)], H)    # where nothing is padded
    True
    >>> holds_on(sympy.Eq(H + pad, H), [sympy.Ge(H, 3)], H)
    False
    >>> holds_on(sympy.Eq(2 * floor_div(H + 1, 2), H), [sympy.Eq(floor_div(H, 16), 16), sympy.Eq(sympy.Mod(H, 2), 0)], H)
    True
    """
    return _holds_on(relation, tuple(region), x, low)


@lru_cache(maxsize=65536)
def _holds_on(relation, region: tuple, x, low: int) -> Optional[bool]:
    """:func:`holds_on`, cached on the exact relations (paths are compared again and again on the
    same formulas: every layer of a block that both paths run, every run of the forward)."""
    funcs = [_difference(r) for r in (relation, *region)]
    if any(f is None for f in funcs):
        return None
    grown = [growth(f, x) for f, _ in funcs]
    if any(g is None for g in grown):
        return None
    period = 1
    for p, _ in grown:
        period = _lcm(period, p)
    calls = [_at_sizes(f, x) for f, _ in funcs]  # size -> (a positive multiple of) the difference
    tests = [op for _, op in funcs]
    # past `settle` periods every drifting difference has left its first period's range behind
    settle = 0
    for (p, c), (call, scale) in zip(grown, calls):
        if c == 0:
            continue
        drift = c * (period // p)
        spread = max(abs(Fraction(call(v))) for v in range(low, low + period)) / scale
        settle = max(settle, int(spread / abs(drift)) + 2)
    end = low + (settle + 1) * period
    if end - low > _SPAN:
        return None
    (first, _), rest = calls[0], [(t, call) for t, (call, _) in zip(tests[1:], calls[1:])]
    for v in range(low, end + period):
        if all(t(call(v)) for t, call in rest) and not tests[0](first(v)):
            return False
    # beyond `end`, a difference that drifts keeps its sign and one that does not repeats: the
    # relation and the region repeat with the period, and the last period checked stands for all
    return True


def _at_sizes(expr, x) -> tuple:
    """``(f, D)``: f(v) = D·expr at x = v, D > 0 (a sum of floors of affine numerators is evaluated in
    integers, D its common denominator: the same sign and zeros as expr, several times faster than
    the compiled expression, which :func:`holds_on` evaluates at thousands of sizes)."""
    from .decide import _affine_floors, affine_numerator  # decide.py reads regions' growth, not the other way

    form = _affine_floors(expr, x)
    if form is None:
        call = compile_expr(expr)
        return (lambda v: call({x: v})), 1
    return affine_numerator(form), form[0]


def factor_pairs(a, b) -> Optional[tuple]:
    """``(c, d, [(f_i, g_i)])`` for ``a = c·f1·f2···`` and ``b = d·g1·g2···`` whose factors each have
    one size symbol, paired by symbol (the same symbols on both sides, each once), else None.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> factor_pairs(3 * H * W, 12 * floor_div(W, 2) * floor_div(H, 2))
    (3, 12, [(H, floor(H/2)), (W, floor(W/2))])
    """
    c, left = sympy.sympify(a, strict=True).as_coeff_mul()
    d, right = sympy.sympify(b, strict=True).as_coeff_mul()
    if not (c.is_Rational and d.is_Rational) or len(left) != len(right):
        return None
    by_symbol: dict = {}
    for g in right:
        if len(g.free_symbols) != 1 or next(iter(g.free_symbols)) in by_symbol:
            return None
        by_symbol[next(iter(g.free_symbols))] = g
    pairs = []
    for f in left:
        if len(f.free_symbols) != 1 or next(iter(f.free_symbols)) not in by_symbol:
            return None
        pairs.append((f, by_symbol.pop(next(iter(f.free_symbols)))))
    return c, d, pairs


_TESTS = {sympy.Equality: lambda v: v == 0, sympy.Unequality: lambda v: v != 0,
          sympy.GreaterThan: lambda v: v >= 0, sympy.StrictGreaterThan: lambda v: v > 0,
          sympy.LessThan: lambda v: v <= 0, sympy.StrictLessThan: lambda v: v < 0}


def point_test(relation):
    """A function ``{x: size} -> bool`` that evaluates *relation* exactly at a point, or None for
    something other than an (in)equation."""
    parts = _difference(relation)
    if parts is None:
        return None
    call, test = compile_expr(parts[0]), parts[1]
    return lambda point: test(call(point))


def _difference(relation):
    test = _TESTS.get(type(relation))
    if test is None:
        return None
    return sympy.expand(relation.lhs - relation.rhs), test


SCAN = 4096  # sizes scanned for the values a region allows one size


@lru_cache(maxsize=1024)
def allowed_sizes(about: tuple, x) -> Optional[tuple]:
    """The sizes of *x* where every relation of *about* holds, where they are finitely many (shown
    by :func:`~symshape.regions.holds_on`), else None."""
    if not any(bounding(r, x) for r in about):  # past some size every relation holds, or none does
        return None  # where it is exactly periodic: the region is empty or unbounded (no scan needed)
    low, high = _bounds(about, x)
    low, high = max(low, 1), min(high, SCAN)
    # the cheapest relations first: where a plain bound fails, the floors are not evaluated
    tests = [point_test(r) for r in sorted(about, key=sympy.count_ops)]
    allowed: tuple = ()
    start = low
    for stop in (64, 512, SCAN):  # a stretch at a time: where no size past the last one found is
        # allowed (shown by period), the rest of the scan would find none
        stop = min(stop, high)
        try:
            allowed += tuple(v for v in range(start, stop + 1) if all(t({x: v}) for t in tests))
        except (ArithmeticError, ValueError):  # a relation undefined at some size
            return None
        start = max(start, stop + 1)
        if allowed and holds_on(sympy.Le(x, allowed[-1]), list(about), x) is True:
            return allowed
    return None  # unbounded (or not shown bounded) on the region


def bounding(rel, x) -> bool:
    """Whether *rel* (of the one size x) fails at every size past some size: its sides drift apart
    (:func:`~symshape.regions.growth`) and the relation asks them to stay together, or the larger
    one to stay below (``floor(H/16) = 64``, ``W <= 508``); True where that is not known."""
    grown = growth(sympy.expand(rel.lhs - rel.rhs), x)
    if grown is None:
        return True
    drift = grown[1]
    if drift == 0 or isinstance(rel, sympy.Unequality):
        return False
    if isinstance(rel, sympy.Equality):
        return True
    return isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan)) == (drift < 0)


def _bounds(about, x) -> tuple:
    """The lowest and highest sizes that the relations of *about* linear in x (no floor) allow
    (``W <= 508``, ``2*W >= 123``); 1 and SCAN where none bounds it."""
    low, high = 1, SCAN
    for r in about:
        if not isinstance(r, (sympy.GreaterThan, sympy.StrictGreaterThan, sympy.LessThan, sympy.StrictLessThan,
                              sympy.Equality)):
            continue
        diff = sympy.expand(r.lhs - r.rhs)  # the relation is diff (op) 0
        a, b = diff.coeff(x, 1), diff.coeff(x, 0)
        if not (a.is_Rational and b.is_Rational and a != 0 and sympy.expand(a * x + b - diff) == 0):
            continue
        root = -b / a  # diff = a*(x - root)
        if isinstance(r, sympy.Equality):
            if not root.is_Integer:
                return 1, 0
            low, high = max(low, int(root)), min(high, int(root))
            continue
        up = isinstance(r, (sympy.GreaterThan, sympy.StrictGreaterThan)) == (a > 0)  # x above root
        strict = isinstance(r, (sympy.StrictGreaterThan, sympy.StrictLessThan))
        if up:
            low = max(low, int(sympy.floor(root)) + 1 if strict or not root.is_Integer else int(root))
        else:
            high = min(high, int(sympy.ceiling(root)) - 1 if strict or not root.is_Integer else int(root))
    return low, high
