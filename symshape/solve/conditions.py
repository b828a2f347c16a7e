"""The solver's conditions: a relation on the sizes parsed into ``f <rel> 0`` (or ``f ≡ 0 (mod g)``,
or a disjunction), with the constants that bound every search."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import sympy

from ..evaluate import compile_expr
from ..monotone import _combine, _dir_cached
from ..symbols import ShapeError


#: the window of a last-resort scan when no bound is given
SCAN = 4096
#: an unbounded search whose condition is not shown to change eventually stops here, and the
#: answer says so (a condition shown to grow without bound is searched without a limit)
LIMIT = 2 ** 256
#: the most boxes a staircase may have before the solver says it cannot list them
MAX_BOXES = 64
#: the most sub-problems a staircase may solve before the solver gives up, promptly
MAX_PROBES = 3000


class _NoScan(Exception):
    """A scan was needed where it is not wanted (explaining an empty answer)."""


class _TooMany(Exception):
    """A staircase with more steps than can be listed."""


_OPS = {"ge": lambda v: v >= 0, "gt": lambda v: v > 0, "le": lambda v: v <= 0, "lt": lambda v: v < 0,
        "eq": lambda v: v == 0, "ne": lambda v: v != 0}
_REL = {sympy.GreaterThan: "ge", sympy.StrictGreaterThan: "gt", sympy.LessThan: "le", sympy.StrictLessThan: "lt",
        sympy.Equality: "eq", sympy.Unequality: "ne"}


@dataclass(frozen=True)
class _Cond:
    """One condition ``f <rel> 0`` (or ``f ≡ 0 (mod g)`` for rel 'mod'), with where it came from."""

    rel: str
    f: sympy.Expr
    g: int
    expr: sympy.Basic
    label: str
    #: for rel 'or' (a disjunction such as broadcasting's ``H = 16 or H = 1``): its alternatives,
    #: each a tuple of conditions that must all hold
    parts: tuple = ()

    @cached_property
    def syms(self):
        if self.rel == "or":
            return set().union(*(c.syms for conj in self.parts for c in conj))
        return self.f.free_symbols

    def xreplace(self, mapping, expr: bool = True) -> "_Cond":
        """The condition with symbols replaced (in ``expr`` too unless *expr* is False)."""
        parts = tuple(tuple(c.xreplace(mapping, expr) for c in conj) for conj in self.parts)
        return _Cond(self.rel, self.f.xreplace(mapping), self.g, self.expr.xreplace(mapping) if expr else self.expr,
                     self.label, parts)

    def holds(self, env) -> bool:
        if self.rel == "or":
            return any(all(c.holds(env) for c in conj) for conj in self.parts)
        try:
            v = compile_expr(self.f)(env)
        except ZeroDivisionError:  # undefined there (a division by a size that is 0): a violation, as in Report.violations
            return False
        return v % self.g == 0 if self.rel == "mod" else _OPS[self.rel](v)

    def split(self):
        """An equation as two inequalities (each monotone in the inclusion sense)."""
        if self.rel == "eq":
            return [_Cond("ge", self.f, 0, self.expr, self.label), _Cond("le", self.f, 0, self.expr, self.label)]
        return [self]


def _parse(cond, label: str, out: list) -> None:
    if not isinstance(cond, (bool, sympy.Basic)) and hasattr(cond, "expr"):  # a domain Condition of a report
        return _parse(cond.expr, f"layer {cond.layer!r} ({cond.kind})", out)
    if isinstance(cond, (bool, sympy.logic.boolalg.BooleanAtom)):
        out.append(_Cond("eq", sympy.Integer(0 if cond else 1), 0, sympy.sympify(cond, strict=True), label))
        return
    if isinstance(cond, sympy.And):
        for a in cond.args:
            _parse(a, label, out)
        return
    if isinstance(cond, sympy.Or):  # solved as the union of its alternatives
        parts = []
        for a in cond.args:
            conj: list = []
            _parse(a, label, conj)
            parts.append(tuple(conj))
        out.append(_Cond("or", sympy.Integer(0), 0, cond, label, tuple(parts)))
        return
    rel = _REL.get(type(cond))
    if rel is None:
        raise ShapeError(f"cannot solve {cond!r}: give sympy relations such as Eq(expr, 5408), expr <= 10**9 "
                         "or Eq(Mod(expr, 8), 0)")
    lhs, rhs = cond.args
    if rel == "eq":
        pairs = tight_product(lhs, rhs) or tight_product(rhs, lhs)
        if pairs:
            for a, b in pairs:
                _parse(sympy.Eq(a, b), label, out)
            return
        for a, b in ((lhs, rhs), (rhs, lhs)):
            if isinstance(a, sympy.Mul) and len(a.args) == 2 and a.args[0].is_number and a.args[0] != 0:
                a = a.args[1]  # 3*Mod(e, 2) = 0
            if isinstance(a, sympy.Mod) and b == 0 and a.args[1].is_Integer and int(a.args[1]) > 0:
                out.append(_Cond("mod", a.args[0], int(a.args[1]), cond, label))
                return
    out.append(_Cond(rel, sympy.sympify(lhs - rhs, strict=True), 0, cond, label))


def factor_equations(rel, lows: Optional[dict] = None) -> Optional[list]:
    """:func:`tight_product` of an equation's sides either way round, also of ``c·a1··· - d·b1··· = 0``
    (a condition written as a difference): the pairs ``(a_i, k_i·b_i)`` it holds by, else None.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> factor_equations(sympy.Eq(768 * floor_div(H, 16) * floor_div(W, 16) - 3 * H * W, 0))
    [(H, 16*floor(H/16)), (W, 16*floor(W/16))]
    """
    sides = [(rel.lhs, rel.rhs)]
    terms = sympy.Add.make_args(rel.lhs - rel.rhs)
    if len(terms) == 2:
        sides.append((terms[0], -terms[1]) if terms[0].could_extract_minus_sign() is False else (terms[1], -terms[0]))
    return next((p for a, b in sides for p in (tight_product(a, b, lows), tight_product(b, a, lows)) if p), None)


def tight_product(lhs, rhs, lows: Optional[dict] = None) -> Optional[list]:
    """``c·a1·a2··· = d·b1·b2···`` where each factor has one size symbol, ``a_i >= k_i·b_i >= 0``
    at every size (at or above *lows*, ``{symbol: lowest size}``, where given) for constants with
    ``k1·k2··· = d/c``, and every ``a_i >= 1``: the product on the
    left is then at least the one on the right, equal only where every pair is (``3·H·W =
    768·floor(H/16)·floor(W/16)``, a reshape that keeps every element, is ``H = 16·floor(H/16)``
    and ``W = 16·floor(W/16)``). The pairs ``(a_i, k_i·b_i)``, else None.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> tight_product(3 * H * W, 768 * floor_div(H, 16) * floor_div(W, 16))
    [(H, 16*floor(H/16)), (W, 16*floor(W/16))]
    >>> tight_product(H * W, 4 * floor_div(H, 2) * floor_div(W + 1, 2)) is None  # W < 2*floor((W + 1)/2) at odd W
    True
    >>> tight_product(8 * (floor_div(H - 1, 4) + 1) * (floor_div(W - 1, 4) + 1),
    ...               392 * floor_div(H + 3, 28) * floor_div(W + 3, 28))  # a window partition after a stride 4
    [(floor(H/4 - 1/4) + 1, 7*floor(H/28 + 3/28)), (floor(W/4 - 1/4) + 1, 7*floor(W/28 + 3/28))]

    A factor that is 0 at small sizes (``floor(H/8)``) is at least 1 above the domain's lows:

    >>> tight_product(floor_div(H, 8) * W, 4 * floor_div(H, 32) * floor_div(W, 7)) is None
    True
    >>> tight_product(floor_div(H, 8) * W, 28 * floor_div(H, 32) * floor_div(W, 7), {H: 8})
    [(floor(H/8), 4*floor(H/32)), (W, 7*floor(W/7))]
    """
    from fractions import Fraction

    from ..decide import always_nonnegative, slope
    from ..regions import factor_pairs

    paired = factor_pairs(lhs, rhs)
    if paired is None or len(paired[2]) < 2 or paired[0] <= 0 or paired[1] <= 0:
        return None
    c, d, factors = paired
    shift = {x: x + lo - 1 for x, lo in (lows or {}).items() if lo > 1}

    def nonnegative(e) -> bool:
        return always_nonnegative(e.xreplace(shift) if shift else e) is True

    pairs, product = [], Fraction(1)
    for a, b in factors:
        (x,) = a.free_symbols
        ca, a = a.as_content_primitive()  # 128·floor(H/8) + 128: the constant joins c
        cb, b = b.as_content_primitive()
        c, d = c * ca, d * cb
        low, high = slope(a, x), slope(b, x)  # a >= k·b at every size bounds k by the ratio of the slopes
        if not low or not high:
            return None
        k = low / high
        if k.denominator != 1 or k < 1:
            return None
        kb = int(k) * b
        if not (nonnegative(a - kb) and nonnegative(b) and nonnegative(a - 1)):
            return None
        pairs.append((a, kb))
        product *= k
    pairs.sort(key=lambda p: next(iter(p[0].free_symbols)).name)
    return pairs if product == Fraction(int(d.p), int(d.q)) / Fraction(int(c.p), int(c.q)) else None


def _monotone(cond: _Cond, syms, lows: dict, free) -> Optional[int]:
    """The common direction of cond's f in every symbol of syms (+1, -1), 0 if constant, else None."""
    if cond.rel in ("mod", "ne", "or"):
        return None
    mine = cond.syms
    key = frozenset((s, lows[s]) for s in mine if s in lows)
    dirs = {_dir_cached(cond.f, s, key, frozenset(free) & mine) for s in syms if s in mine}
    return _combine(dirs)
