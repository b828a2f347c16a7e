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

__all__ = ["always_nonnegative", "decide_le", "first_sizes", "growth", "implied_periodically", "lower_bounds",
           "under_bounds"]

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
        d, lin, const, terms = fast
        period = math.lcm(1, *(m // math.gcd(a, m) if a else 1 for _, a, _, m in terms))
        if period > MAX_PERIOD:
            raise _Undecided
        slope = lin * period + sum(c * (a * period // m) for c, a, _, m in terms)  # exact: m | a·period
        if slope < 0:
            return None
        low = min(lin * x + sum(c * ((a * x + b) // m) for c, a, b, m in terms) for x in range(1, period + 1))
        return Fraction(low + const, d)
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
    return _always_nonnegative(expr) if expr.free_symbols else bool(expr >= 0)


@lru_cache(maxsize=65536)
def _always_nonnegative(expr) -> Optional[bool]:
    expr = sympy.expand(expr)
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
    return True if always_nonnegative(sympy.sympify(b, strict=True) - sympy.sympify(a, strict=True)) else None



def _values(expr, symbol, period: int) -> Optional[list]:
    fast = _affine_floors(expr, symbol)
    if fast is not None:
        d, lin, const, terms = fast
        return [Fraction(lin * x + const + sum(c * ((a * x + b) // m) for c, a, b, m in terms), d)
                for x in range(1, period + 2)]
    f, _ = _compile(expr, symbol)
    return [f(x) for x in range(1, period + 2)]


def _period(expr, symbol) -> int:
    fast = _affine_floors(expr, symbol)
    if fast is not None:
        return math.lcm(1, *(m // math.gcd(a, m) if a else 1 for _, a, _, m in fast[3]))
    return _compile(expr, symbol)[1]


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


def lower_bounds(relations) -> dict:
    """``{symbol: lowest size}`` from the relations ``X >= c``, ``X > c`` and ``X = c`` among
    *relations* (sympy relations or domain conditions); a size is otherwise at least 1.

    >>> from symshape.symbols import symbols
    >>> H, W = symbols("H W")
    >>> lower_bounds([H >= 7, W > 2, sympy.Eq(sympy.Mod(H, 2), 0)])
    {H: 7, W: 3}
    """
    lows: dict = {}
    for rel in relations:
        rel = getattr(rel, "expr", rel)
        if not isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan, sympy.Equality)):
            continue
        x, c = rel.args
        if not (x.is_Symbol and c.is_Integer):
            continue
        low = int(c) + (1 if isinstance(rel, sympy.StrictGreaterThan) else 0)
        if low > lows.get(x, 1):
            lows[x] = low
    return lows


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


def under_bounds(expr, lows: dict, proves=None):
    """*expr* simplified for sizes at or above *lows* (``{symbol: lowest size}``; see
    :func:`lower_bounds`): each ``Max``/``Min`` loses the arguments that another one bounds, and
    in a disjunction the equations that cannot hold there are dropped. Decided with
    :func:`always_nonnegative`, or by ``proves(diff, lows)`` when given (a function that shows
    ``diff >= 0`` at every size at or above *lows*, for products of sizes); what is not decided is
    left as it is.

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
    """
    expr = sympy.sympify(expr, strict=True)
    if not expr.has(sympy.Max, sympy.Min, sympy.Or):
        return expr
    shift = {s: s + lo - 1 for s, lo in lows.items() if lo > 1}

    def nonnegative(d) -> bool:
        return _nonnegative_above(d, shift) or bool(proves is not None and proves(d, lows))

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
