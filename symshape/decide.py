"""Deciding the sign of a size expression for every input size, exactly and fast.

Shape rules often need to know whether ``a <= b`` for all sizes (is a slice's end inside the dim?
is the padded size at least the original one?). sympy's ``Min``/``Max`` and assumption system
answer slowly or not at all for floors. Size expressions are sums of terms in one symbol each,
built from integer-affine numerators and floors; such a term is *periodic plus
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
from functools import lru_cache
from typing import Optional

import sympy

from .evaluate import compile_expr
from .floors import _ratio

__all__ = ["always_nonnegative", "decide_le", "first_sizes", "lower_bounds", "slope", "under_bounds", "upper_bounds"]

MAX_PERIOD = 50_000


class _Undecided(Exception):
    pass


def _compile(expr, symbol) -> tuple:
    """``(f, period)``: the exact value as a function of one integer (:func:`compile_expr`), and
    a multiple of its period; raises _Undecided outside one-symbol floor-affine terms."""
    period = _term_period(expr, symbol)  # first: it refuses what compile_expr would not know
    fn = compile_expr(expr)
    return (lambda x: fn({symbol: x})), period


def _term_period(expr, symbol) -> int:
    """A period multiple of a one-symbol term: sums, a constant times a term, floor, ceiling and
    Mod by a positive integer of such terms; anything else is _Undecided."""
    if expr.is_Integer or expr.is_Rational or expr == symbol:
        return 1
    if isinstance(expr, sympy.Add):
        return math.lcm(*(_term_period(a, symbol) for a in expr.args))
    if isinstance(expr, sympy.Mul):
        rest = [a for a in expr.args if not a.is_Rational]
        if len(rest) != 1:
            raise _Undecided
        c = Fraction(1)
        for a in expr.args:
            if a.is_Rational:
                c *= Fraction(int(a.p), int(a.q))
        return _term_period(rest[0], symbol) * c.denominator
    if isinstance(expr, (sympy.floor, sympy.ceiling)):
        # arg(X + P) = arg(X) + slope·P, so floor(arg) repeats once slope·k·P is an integer
        inner = _term_period(expr.args[0], symbol)
        return inner * (_slope(expr.args[0], symbol) * inner).denominator
    if isinstance(expr, sympy.Mod) and expr.args[1].is_Integer and expr.args[1] > 0:
        return _term_period(expr.args[0], symbol) * int(expr.args[1])
    raise _Undecided


def _slope(expr, symbol) -> Fraction:
    """The slope s of a periodic-plus-linear term: f(X + P) = f(X) + s·P."""
    if expr == symbol:
        return Fraction(1)
    if expr.is_Rational:
        return Fraction(0)
    if isinstance(expr, sympy.Add):
        return sum((_slope(a, symbol) for a in expr.args), Fraction(0))
    if isinstance(expr, sympy.Mul):
        c, rest = Fraction(1), []
        for a in expr.args:
            if a.is_Rational:
                c *= Fraction(int(a.p), int(a.q))
            else:
                rest.append(a)
        return c * _slope(rest[0], symbol) if len(rest) == 1 else _raise_undecided()
    if isinstance(expr, (sympy.floor, sympy.ceiling)):
        return _slope(expr.args[0], symbol)
    if isinstance(expr, sympy.Mod):
        return Fraction(0)
    return _raise_undecided()


def slope(expr, symbol) -> Optional[Fraction]:
    """The slope s of a periodic-plus-linear term in one symbol (``f(X + P) = f(X) + s·P`` for its
    period P), None for another kind of expression.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> slope(7 * floor_div(H + 3, 28), H), slope(floor_div(H - 1, 4) + 1, H), slope(H * H, H) is None
    (Fraction(1, 4), Fraction(1, 4), True)
    """
    try:
        return _slope(sympy.expand(sympy.sympify(expr, strict=True)), symbol)
    except _Undecided:
        return None


def _raise_undecided():
    raise _Undecided


def _denominators(expr) -> int:
    d = 1
    for r in expr.atoms(sympy.Rational):
        d = math.lcm(d, int(r.q))
    return d


def _affine_floors(expr, symbol) -> Optional[tuple]:
    """``(D, lin, const, [(c, a, b, m)])`` with ``D·expr = lin·X + const + Σ c·floor((a·X + b)/m)``,
    all integers, when expr is a sum of floors of integer-affine numerators; else None."""
    terms = []
    lin, const = Fraction(0), Fraction(0)
    for atom, coef in expr.as_coefficients_dict().items():
        if not coef.is_Rational:
            return None
        c = Fraction(int(coef.p), int(coef.q))
        if atom is sympy.S.One:
            const += c
        elif atom == symbol:
            lin += c
        elif isinstance(atom, sympy.floor):
            form = _floor_form(atom, symbol)
            if form is None:
                return None
            terms.append((c, *form))
        else:
            return None
    d = math.lcm(lin.denominator, const.denominator, *(t[0].denominator for t in terms))
    return d, int(lin * d), int(const * d), [(int(c * d), a, b, m) for c, a, b, m in terms]


def affine_numerator(form):
    """``v -> D·expr`` at X = v, in integers, for :func:`_affine_floors`' ``(D, lin, const, terms)``."""
    _, lin, const, terms = form
    return lambda v: lin * v + const + sum(c * ((a * v + b) // m) for c, a, b, m in terms)


def _affine_period(form) -> int:
    """The period of an :func:`_affine_floors` form's floors."""
    return math.lcm(1, *(m // math.gcd(a, m) if a else 1 for _, a, _, m in form[3]))


@lru_cache(maxsize=65536)
def _floor_form(atom, symbol) -> Optional[tuple]:
    """``(a, b, m)`` with ``atom = floor((a·X + b)/m)``, integers, m > 0; else None."""
    ratio = _ratio(atom.args[0])
    if ratio is None:
        return None
    num, den = ratio
    poly = sympy.expand(num).as_coefficients_dict()
    if set(poly) - {symbol, sympy.S.One} or not all(v.is_Integer for v in poly.values()):
        return None
    return int(poly.get(symbol, 0)), int(poly.get(sympy.S.One, 0)), den


def _group_minimum(expr, symbol) -> Optional[Fraction]:
    """min over X >= 1 of a one-symbol term, -inf as None when its slope is negative."""
    fast = _affine_floors(expr, symbol)
    if fast is not None:
        d, lin, _, terms = fast
        period = _affine_period(fast)
        if period > MAX_PERIOD:
            raise _Undecided
        slope = lin * period + sum(c * (a * period // m) for c, a, _, m in terms)  # exact: m | a·period
        if slope < 0:
            return None
        value = affine_numerator(fast)
        return Fraction(min(value(x) for x in range(1, period + 1)), d)
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
    expr = sympy.sympify(expr, strict=True)
    if expr.free_symbols:
        return _always_nonnegative(expr)
    return bool(expr >= 0) if expr.is_extended_real else None


@lru_cache(maxsize=65536)
def _always_nonnegative(expr) -> Optional[bool]:
    plain = _sum_of_one_symbol_terms(sympy.expand(expr))
    return plain if plain is not None else _nonnegative_by_factors(expr)


def _nonnegative_by_factors(expr) -> Optional[bool]:
    """True where a sum of products of sizes is bounded below by 0 term by term: a product
    ``c*f*g`` (c > 0, each factor of one symbol and never negative) is at least c times its factors'
    minima (``2*(floor((W - 1)/8) + 1)*floor((H + 15)/16) - 2 >= 0``, as BatchNorm asks of a map);
    else None (undecided: a bound, not the minimum)."""
    total, rest = Fraction(0), []
    try:
        for term in sympy.Add.make_args(expr):
            if len(term.free_symbols) <= 1:
                rest.extend(sympy.Add.make_args(sympy.expand(term)))
                continue
            coeff, factors = term.as_coeff_mul()
            if not coeff.is_Rational or coeff <= 0:
                return None
            low = Fraction(int(coeff.p), int(coeff.q))
            for f in factors:
                base, n = f.as_base_exp()
                if len(base.free_symbols) != 1 or not (n.is_Integer and n > 0):
                    return None
                m = _group_minimum(sympy.expand(base), next(iter(base.free_symbols)))
                if m is None or m < 0:
                    return None
                low *= m ** int(n)
            total += low
        others = _minimum_of_sum(rest)
    except _Undecided:
        return None
    return True if others is not None and total + others >= 0 else None


def _sum_of_one_symbol_terms(expr) -> Optional[bool]:
    if expr.is_number:
        return bool(expr >= 0)
    if expr.has(sympy.Max, sympy.Min):
        return _nonnegative_through_extremum(expr)
    terms = sympy.Add.make_args(expr)
    if any(len(term.free_symbols) > 1 for term in terms):
        return None
    try:
        low = _minimum_of_sum(terms)
    except _Undecided:
        return None
    return low is not None and low >= 0


def _minimum_of_sum(terms) -> Optional[Fraction]:
    """The minimum over sizes >= 1 of a sum of (expanded) terms of at most one symbol each: the
    constants plus each symbol's group's minimum (the groups are independent); None where a group
    falls without bound."""
    groups: dict = {}
    const = sympy.Integer(0)
    for term in terms:
        syms = term.free_symbols
        if not syms:
            const += term
        else:
            (s,) = syms
            groups[s] = groups.get(s, sympy.Integer(0)) + term
    total = Fraction(int(sympy.Rational(const).p), int(sympy.Rational(const).q))
    for s, g in groups.items():
        low = _group_minimum(g, s)
        if low is None:
            return None
        total += low
    return total


def _nonnegative_through_extremum(expr) -> Optional[bool]:
    """``c*Max(a, b, ...) + r >= 0`` (c > 0) holds where some ``c*a + r >= 0`` always holds, and
    where every one does for ``Min`` (the other way round for c < 0); True or None (undecided)."""
    for m in expr.atoms(sympy.Max, sympy.Min):
        rest = expr.xreplace({m: sympy.Integer(0)})
        if rest.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):  # m divides: floor(H·W/Max(H, W))
            continue
        c = sympy.expand(expr - rest) / m
        if not c.is_number or c == 0:
            continue
        parts = [always_nonnegative(c * a + rest) for a in m.args]
        if (isinstance(m, sympy.Max) == (c > 0)) and any(p is True for p in parts):
            return True
        if all(p is True for p in parts):
            return True
    return None


def decide_le(a, b) -> Optional[bool]:
    """True when ``a <= b`` for every input size; None when that is not decided true.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> decide_le(H - 1, H), decide_le(H, 7)
    (True, None)
    """
    return True if always_nonnegative(sympy.sympify(b, strict=True) - sympy.sympify(a, strict=True)) else None



def _values(expr, symbol, period: int) -> Optional[list]:
    fast = _affine_floors(expr, symbol)
    if fast is not None:
        value = affine_numerator(fast)
        return [Fraction(value(x), fast[0]) for x in range(1, period + 2)]
    f, _ = _compile(expr, symbol)
    return [f(x) for x in range(1, period + 2)]


def _period(expr, symbol) -> int:
    fast = _affine_floors(expr, symbol)
    if fast is not None:
        return _affine_period(fast)
    return _compile(expr, symbol)[1]


def lower_bounds(relations) -> dict:
    """``{symbol: lowest size}`` from the relations ``X >= c``, ``X > c`` and ``X = c`` among
    *relations* (sympy relations or domain conditions); a size is otherwise at least 1.

    >>> from symshape.symbols import symbols
    >>> H, W = symbols("H W")
    >>> lower_bounds([H >= 7, W > 2, sympy.Eq(sympy.Mod(H, 2), 0)])
    {H: 7, W: 3}
    """
    return _bounds(relations, low=True)


def upper_bounds(relations) -> dict:
    """``{symbol: highest size}`` from the relations ``X <= c``, ``X < c`` and ``X = c`` among
    *relations* (a piece of a piecewise report: ``W <= 12``).

    >>> from symshape.symbols import symbols
    >>> H, W = symbols("H W")
    >>> upper_bounds([H <= 12, W < 9, H <= 20])
    {H: 12, W: 8}
    """
    return _bounds(relations, low=False)


def _bounds(relations, low: bool) -> dict:
    """The tightest ``X >= c`` (*low*) or ``X <= c`` bound of each symbol among *relations*."""
    kinds = (sympy.GreaterThan, sympy.StrictGreaterThan) if low else (sympy.LessThan, sympy.StrictLessThan)
    found: dict = {}
    for rel in relations:
        rel = getattr(rel, "expr", rel)
        if not isinstance(rel, (*kinds, sympy.Equality)):
            continue
        x, c = rel.args
        if not (x.is_Symbol and c.is_Integer):
            continue
        strict = isinstance(rel, kinds[1])
        if low:
            bound = int(c) + strict
            if bound > found.get(x, 1):
                found[x] = bound
        else:
            bound = int(c) - strict
            if bound < found.get(x, bound + 1):
                found[x] = bound
    return found


_RANGE = 512  # sizes of one symbol tried one by one where the domain bounds it above


def _nonnegative_in_range(expr, lows: dict, highs: dict) -> bool:
    """Whether ``expr >= 0`` (of one size symbol) at every size of its bounded range."""
    free = expr.free_symbols
    if len(free) != 1:
        return False
    (x,) = free
    hi = highs.get(x)
    lo = lows.get(x, 1)
    if hi is None or hi - lo > _RANGE:
        return False
    try:
        return all(expr.xreplace({x: sympy.Integer(v)}) >= 0 for v in range(lo, hi + 1))
    except TypeError:
        return False


def first_sizes(relations, lows: dict, limit: int = 4096) -> dict:
    """*lows* (``{symbol: lowest size}``, from :func:`lower_bounds`) with each symbol raised to
    the first size, from its low up, at which every relation of *relations* on that symbol alone
    holds (within *limit* steps; a relation that cannot be evaluated exactly is left out).

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> first_sizes([H >= 3, sympy.Eq(floor_div(H - 1, 4) + 1, 8 * floor_div(H + 3, 32)), W >= 2], {H: 3, W: 2})
    {H: 29, W: 2}
    >>> first_sizes([64 * floor_div(H + 3, 32) * floor_div(W, 16) >= 1], {}) == {H: 29, W: 16}  # no factor is 0
    True
    """
    from .evaluate import UnsupportedExpression

    alone: dict = {}
    for rel in _with_factors(getattr(r, "expr", r) for r in relations):
        if len(rel.free_symbols) == 1 and not (isinstance(rel, sympy.GreaterThan) and rel.lhs.is_Symbol):
            try:
                fn = compile_expr(rel)
            except UnsupportedExpression:
                continue
            alone.setdefault(next(iter(rel.free_symbols)), []).append(fn)
    out = dict(lows)
    for s, fns in alone.items():
        low = out.get(s, 1)
        try:
            first = next((v for v in range(low, low + limit) if all(f({s: v}) for f in fns)), None)
        except (ArithmeticError, TypeError, ValueError):
            continue
        if first is not None and first > low:
            out[s] = first
    return out


def _with_factors(relations):
    """*relations*, each ``c·f·g·… >= k`` (c, k >= 1) followed by ``f >= 1``, ``g >= 1``, … for its
    factors in one symbol that are never negative: a product of sizes that is at least 1 has no
    factor 0."""
    for rel in relations:
        yield rel
        if isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan)) and rel.rhs.is_Integer and \
                rel.rhs >= (1 if isinstance(rel, sympy.GreaterThan) else 0) and isinstance(rel.lhs, sympy.Mul):
            c, factors = rel.lhs.as_coeff_mul()
            if c > 0:
                for f in factors:
                    if len(f.free_symbols) == 1 and always_nonnegative(f):
                        yield sympy.Ge(f, 1)


def _nonnegative_above(expr, shift: dict) -> bool:
    """Whether ``expr >= 0`` at every size at or above the lows that *shift* encodes."""
    return bool(always_nonnegative(expr.xreplace(shift) if shift else expr))


def under_bounds(expr, lows: dict, proves=None, highs=None):
    """*expr* simplified for sizes at or above *lows* (``{symbol: lowest size}``; see
    :func:`lower_bounds`): each ``Max``/``Min`` loses the arguments that another one bounds, and
    in a disjunction the equations that cannot hold there are dropped. Decided with
    :func:`always_nonnegative`, or by ``proves(diff, lows)`` when given (a function that shows
    ``diff >= 0`` at every size at or above *lows*, for products of sizes); what is not decided is
    left as it is. *highs* (:func:`upper_bounds`) also decides a comparison of one size that
    the domain bounds above, size by size.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> F = floor_div(H, 8)
    >>> under_bounds(sympy.Eq(F, sympy.Max(0, F - sympy.Max(0, F - 1))), {H: 8})
    Eq(floor(H/8), 1)
    >>> under_bounds(sympy.Max(0, H - 2), {H: 3}), under_bounds(sympy.Max(0, H - 2), {})
    (H - 2, Max(0, H - 2))
    >>> under_bounds(sympy.Or(sympy.Eq(H, 16), sympy.Eq(H, 1)), {H: 7})
    Eq(H, 16)
    >>> under_bounds(sympy.Max(7, floor_div(H - 1, 2) + 1), {}, highs={H: 12})
    7
    """
    expr = sympy.sympify(expr, strict=True)
    if not expr.has(sympy.Max, sympy.Min, sympy.Or):
        return expr
    shift = {s: s + lo - 1 for s, lo in lows.items() if lo > 1}

    def nonnegative(d) -> bool:
        return (_nonnegative_above(d, shift) or bool(proves is not None and proves(d, lows))
                or bool(highs) and _nonnegative_in_range(d, lows, highs))

    def walk(e):
        if not e.args or e.is_Number:
            return e
        args = [walk(a) for a in e.args]
        if isinstance(e, (sympy.Max, sympy.Min)):
            keep = list(args)
            for a in list(keep):
                # Max: a goes when some b >= a; Min: when some b <= a
                if any(b is not a and nonnegative(b - a if isinstance(e, sympy.Max) else a - b) for b in keep):
                    keep.remove(a)
            return keep[0] if len(keep) == 1 else e.func(*keep)
        if isinstance(e, sympy.Or):
            kept = []
            for a in args:
                if a is sympy.true:
                    return sympy.true
                if isinstance(a, sympy.Equality) and (nonnegative(a.lhs - a.rhs - 1) or nonnegative(a.rhs - a.lhs - 1)):
                    continue  # never holds there
                kept.append(a)
            return sympy.Or(*kept)
        if all(a is b for a, b in zip(args, e.args)):
            return e
        return e.func(*args)

    return walk(expr)
