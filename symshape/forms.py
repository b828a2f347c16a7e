"""Closed forms for people: a size as its compact floor (``H - floor(H/2)`` is ``floor((H + 1)/2)``),
a product of sizes kept a product, and totals as sums of the layers' products with a common factor
taken out, never sympy's expanded polynomial in the floors (:func:`factored_sum`). Every form is the
same value as what it rewrites; the checks that show it are decide.py's.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import sympy

from .decide import _Undecided, _period, _values

__all__ = ["compact", "product", "factored", "scaled", "factored_sum"]


def compact(expr) -> sympy.Expr:
    """Rewrite each one-symbol part that holds several floors as a single ``floor((p·X + b)/q) + c``
    when it equals one for every X >= 1 (checked on a full period), else leave it.

    ``H - floor(H/2)`` is ``floor((H + 1)/2)``; sums like ``floor(H/4) - floor(H/8)``, which
    arise from padding to even sizes and slicing with step 2, collapse the same way.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> compact(H - floor_div(H, 2))
    floor(H/2 + 1/2)
    >>> compact(floor_div(H, 4) - floor_div(H, 8) + W)
    W + floor(H/8 + 1/2)
    """
    expr = sympy.sympify(expr, strict=True)
    if expr.is_number or not expr.has(sympy.floor):
        return expr
    return _compact(expr)


def product(factors) -> sympy.Expr:
    """The product of *factors*, kept a product: sympy distributes a number over a lone sum
    (``120*(L - 4)`` becomes ``120*L - 480``); here it stays ``120*(L - 4)``, the same value.

    >>> from symshape.symbols import symbols
    >>> L, N = symbols("L N")
    >>> product([2, 60, L - 4]), product([2, N, L - 4])
    (120*(L - 4), 2*N*(L - 4))
    """
    numbers, rest = sympy.Integer(1), []
    for f in factors:
        for g in sympy.Mul.make_args(sympy.sympify(f, strict=True)):
            if g.is_Number:
                numbers *= g
            else:
                rest.append(g)
    body = sympy.Mul(*rest)
    if numbers != 1 and body.is_Add:
        return sympy.Mul(numbers, body, evaluate=False)
    return numbers * body


def factored(expr) -> sympy.Expr:
    """One quantity (a layer's MACs, a tensor's bytes) with the number that sympy distributed over
    a size taken out again: ``120*L - 480`` is ``120*(L - 4)``, ``192*floor((L - 10)/4) + 192`` is
    ``192*(floor((L - 10)/4) + 1)``. Only a size and an offset are taken for a distributed size
    (one term and a constant: ``64*L**2 + 2048*L`` stays). Nothing expands, floors are left as they
    are; same value.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> from symshape.printing import fmt
    >>> L = symbols("L")
    >>> factored(120 * L - 480), fmt(factored(192 * floor_div(L - 10, 4) + 192))
    (120*(L - 4), '192*(floor((L - 10)/4) + 1)')
    """
    expr = sympy.sympify(expr, strict=True)
    if not expr.is_Add or expr.is_number:
        return expr
    if len(expr.args) != 2 or not any(t.is_Integer for t in expr.args):
        return expr  # a sum of products already (32*(L - 4) + 64*(floor(L/2) - 2)), or not a size: as it is
    content, rest = expr.as_content_primitive()  # an integer content: no recursion into floors, no expansion
    if content == 1 or not content.is_Integer:
        return expr
    return product([content, rest])


def scaled(number, total) -> sympy.Expr:
    """*number* times a :func:`factored_sum`: each term scaled, its products kept (``2*(120*(L - 4)
    + 840)`` is ``240*(L - 4) + 1680``, not ``240*L + 720``); same value."""
    return factored_sum(product([number, t]) for t in sympy.Add.make_args(sympy.sympify(total, strict=True)))


def factored_sum(quantities, common: bool = True) -> sympy.Expr:
    """The total of *quantities* (layers' MACs, activations, bytes) as a paper writes it: each one
    :func:`factored`, the same products gathered (``24*(H - 4)*(W - 4) + 12*(H - 4)*(W - 4)`` is
    ``36*(H - 4)*(W - 4)``), and (with *common*) the factors common to every term taken out
    (``N*(120*(L - 4) + 8)``). Never expanded; same value as their sum.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> from symshape.printing import fmt
    >>> L, N = symbols("L N")
    >>> print(fmt(factored_sum([120 * L - 480, 192 * floor_div(L - 10, 4) + 192, 840])))
    120*(L - 4) + 192*(floor((L - 10)/4) + 1) + 840
    >>> print(fmt(factored_sum([N * (120 * L - 480), N * (192 * floor_div(L - 10, 4) + 192)])))
    N*(120*(L - 4) + 192*(floor((L - 10)/4) + 1))
    """
    terms = [factored(q) for q in quantities]
    terms = [product([factored(f) for f in sympy.Mul.make_args(t)]) if t.is_Mul else t for t in terms]  # N*(120*L - 480)
    total = sympy.Add(*terms)
    parts = sympy.Add.make_args(total)
    if len(parts) < 2 or not common:
        return total
    # a factor that every term has, to the same power (the batch N, a shared floor(H/4)*floor(W/4)); a
    # polynomial's powers (256*L**2 + 32768*L) stay as they are
    common = None
    for term in parts:
        mine = {f for f in sympy.Mul.make_args(term) if not f.is_Number}
        common = mine if common is None else common & mine
        if not common:
            return total
    inner = [product(f for f in sympy.Mul.make_args(term) if f not in common) for term in parts]
    return sympy.Mul(*sorted(common, key=sympy.default_sort_key), sympy.Add(*inner))


@lru_cache(maxsize=65536)
def _compact(expr) -> sympy.Expr:
    if any(f.args[0].has(sympy.floor) for f in expr.atoms(sympy.floor)):  # floors of floors: innermost first
        expr = expr.replace(lambda e: isinstance(e, sympy.floor) and len(e.free_symbols) == 1 and e.args[0].has(
            sympy.floor), lambda e: _compact_group(e, next(iter(e.free_symbols))))
    if expr.is_Mul:  # a product of sizes stays a product: compact each factor, never expand
        return sympy.Mul(*(compact(f) for f in expr.args))
    if expr.is_Pow and expr.exp.is_Integer:
        return sympy.Pow(compact(expr.base), expr.exp)
    groups: dict = {}
    rest = []
    for term in sympy.Add.make_args(expr):
        syms = term.free_symbols
        if len(syms) == 1:
            (s,) = syms
            groups.setdefault(s, []).append(term)
        else:
            rest.append(compact(term) if term.is_Mul else term)
    out = list(rest)
    for s, terms in groups.items():
        out.append(_compact_group(sympy.expand(sympy.Add(*terms)), s))
    return sympy.Add(*out)


def _compact_group(group, s) -> sympy.Expr:
    """One symbol's terms as a single floor when they equal one for every s >= 1, else as given."""
    from .floors import floor_div

    terms = sympy.Add.make_args(group)
    if len(terms) < 2 and len(group.atoms(sympy.floor)) < 2:
        return group
    try:
        period = _period(group, s)
        if period > 4096:
            raise _Undecided
        vals = _values(group, s, period)
    except _Undecided:
        return group
    slope = Fraction(vals[period] - vals[0], period)
    p, q = slope.numerator, slope.denominator
    for b in range(q):
        c = vals[0] - (p + b) // q
        if c.denominator == 1 and all(vals[x - 1] == (p * x + b) // q + c for x in range(1, period + 2)):
            return floor_div(p * s + b, q) + int(c)
    return group
