"""Exact reverse solving: which integer sizes satisfy conditions on a report's formulas.

``solve(conditions, over=symbols)`` returns a :class:`~symshape.sets.SolutionSet`. The answer
is exact, or says where it is not, or the solver refuses (ShapeError); it never guesses. Integer-
linear equations between sizes (``H = W``, ``H - W = 3``, ``H = 2W``) first become ties that
substitute a size away; a condition whose non-constant part factors is used in product form.
Then the methods, in the order they are tried (the methods below):

* one symbol, one floor: exact inversion, ``floor((aX + b)/m) + c = v`` iff
  ``ceil((m(v - c) - b)/a) <= X <= floor((m(v - c) + m - 1 - b)/a)``;
* one symbol, monotone (chains of floors, ``ScaledFloor``, sums and products of non-negative
  monotone factors): exact search on big integers, without a size limit where
  :func:`~symshape.asymptotics.growth` shows the condition changes (secant guesses, bisection);
* one symbol, periodic (divisibility ``Mod(e, g) = 0``, "no rows dropped", congruences of
  integer polynomials): the inverse mod g or the residues over one period;
* several symbols, divisibility of integer polynomials: the residue tuples over one period;
* several symbols, ``c·g1(H)·g2(W) = v`` (flatten sizes): every split of ``v/c`` into divisors,
  each factor inverted exactly;
* several symbols, monotone in each (MACs, activations): a staircase, found by divide and
  conquer on the first symbol, each step solved exactly; one of more than :data:`MAX_BOXES`
  boxes is refused with a ShapeError (fix a size or give bounds);
* otherwise a bounded scan: the answer says so in ``note`` and wherever it is printed, keeps the
  bound in ``scanned``, and refuses ``in``/``len`` beyond it.

>>> import sympy
>>> from symshape.symbols import symbols
>>> from symshape.floors import floor_div
>>> H, W = symbols("H W")
>>> flat = 32 * (floor_div(H - 7, 2) + 1) * (floor_div(W - 7, 2) + 1)
>>> print(solve([sympy.Eq(flat, 5408), H >= 7, W >= 7], over=(H, W)))
H ∈ {7, 8}, W ∈ {343, 344}
H ∈ {31, 32}, W ∈ {31, 32}
H ∈ {343, 344}, W ∈ {7, 8}
>>> print(solve(sympy.Eq(floor_div(H, 8), 4), over=H))
32 ≤ H ≤ 39
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Optional

import sympy

from ..printing import fmt
from ..sets import IntSet, SolutionSet
from ..symbols import ShapeError
from .conditions import _Cond, _NoScan, _TooMany, _parse
from .many_dim import _solve
from .one_dim import _Ctx

__all__ = ["solve", "feasible"]


def _symbols(over) -> tuple:
    from ..symbols import size_symbol

    if isinstance(over, str):
        over = [p for p in over.replace(",", " ").split() if p]
    if isinstance(over, (sympy.Symbol, str)):
        over = [over]
    if not isinstance(over, (list, tuple, set, frozenset)) or not all(isinstance(s, (str, sympy.Symbol)) for s in over):
        raise ShapeError(f"over= must name the sizes to solve for (a symbol, a name, or a list of them), got {over!r:.60}")
    return tuple(size_symbol(s if isinstance(s, str) else s.name) for s in over)


def _bounds(bounds, syms) -> dict:
    ranges = {s: IntSet.interval(1, None) for s in syms}
    if bounds is None:
        return ranges
    if isinstance(bounds, tuple) and len(bounds) == 2 and not isinstance(bounds[0], tuple):
        bounds = {s: bounds for s in syms}
    by_name = {s.name: s for s in syms}
    if not isinstance(bounds, dict) or not all(isinstance(v, (tuple, list)) and len(v) == 2 for v in bounds.values()):
        raise ShapeError(f"bounds= must be (lo, hi) or {{name: (lo, hi)}} (hi None: unbounded), got {bounds!r:.60}")
    for k, (lo, hi) in dict(bounds).items():
        name = k if isinstance(k, str) else k.name
        if name not in by_name:
            raise ShapeError(f"bounds name {name!r}, which is not among the symbols solved for: {', '.join(by_name)}")
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (lo, hi)) or (
                lo is not None and hi is not None and lo > hi):
            raise ShapeError(f"bounds for {name} must be integers lo <= hi (hi None: unbounded), got {(lo, hi)!r:.60}")
        ranges[by_name[name]] = ranges[by_name[name]] & IntSet.interval(max(1, lo if lo is not None else 1), hi)
    return ranges


def _conditions(conditions, syms) -> list:
    if not isinstance(conditions, (list, tuple)):
        conditions = [conditions]
    parsed: list = []
    for c in conditions:
        _parse(c, "", parsed)
    by_name = {s.name: s for s in syms}
    out = []
    for c in parsed:
        unknown = sorted(s.name for s in c.syms if s.name not in by_name)
        if unknown:
            raise ShapeError(
                f"the condition {fmt(c.expr)} mentions {', '.join(unknown)}, which is not among the symbols "
                f"solved for ({', '.join(by_name) or 'none'}): add it to over=, or substitute a value first")
        rename = {s: by_name[s.name] for s in c.syms if s != by_name[s.name]}
        if c.rel == "or":
            out.append(c.xreplace(rename) if rename else c)
            continue
        f = _factored(c.f.xreplace(rename)) if c.rel != "mod" else c.f.xreplace(rename)
        out.append(_Cond(c.rel, f, c.g, c.expr.xreplace(rename), c.label) if rename or f is not c.f else c)
    return out


@lru_cache(maxsize=4096)
def _factored(f):
    """f with its non-constant part factored when that is a product of several sizes' terms
    (``16·a·b - 48·a - 48·b + 144`` -> ``16·(a - 3)·(b - 3)``, a and b floors): the product
    form is monotone and splits into divisors where the expanded one is neither."""
    const, rest = f.as_coeff_Add()
    if not rest.is_Add or len(rest.free_symbols) < 2 or len(rest.args) > 32:
        return f
    atoms = sorted(rest.atoms(sympy.Function), key=sympy.default_sort_key)
    dummies = {a: sympy.Dummy() for a in atoms}
    plain = rest.xreplace(dummies)
    shift = sympy.Integer(0)
    try:
        g = sympy.factor(plain)
        if not _several(g):  # p·a·b + q·a + r·b is p·(a + r/p)·(b + q/p) - q·r/p
            gens = sorted(plain.free_symbols, key=sympy.default_sort_key)
            poly = sympy.Poly(plain, *gens)
            if len(gens) == 2 and poly.total_degree() == 2 and poly.degree(gens[0]) == 1 == poly.degree(gens[1]):
                p, q, r = (poly.coeff_monomial(m) for m in (gens[0] * gens[1], gens[0], gens[1]))
                if p != 0 and poly.coeff_monomial(1) == 0:
                    shift = q * r / p
                    g = sympy.factor(plain + shift)
    except (sympy.PolynomialError, TypeError, ValueError):
        return f
    if not _several(g):
        return f
    return g.xreplace({d: a for a, d in dummies.items()}) + (const - shift)


def _several(g) -> bool:
    return g.is_Mul and sum(1 for a in g.args if a.free_symbols) >= 2


def _linear(c: _Cond, syms) -> Optional[tuple]:
    """``({symbol: int coefficient}, int constant)`` when c is an integer-linear equation in two
    or more of syms, else None."""
    if c.rel != "eq" or len(c.syms) < 2 or not c.f.is_Add:
        return None
    coefs, const = {}, 0
    for term, k in c.f.as_coefficients_dict().items():
        if not k.is_Integer:
            return None
        if term is sympy.S.One:
            const = int(k)
        elif term in syms:
            coefs[term] = int(k)
        else:
            return None
    return coefs, const


def _ties(conds, syms, ranges):
    """Integer-linear equations between sizes (``H = W``, ``H - W = 3``, ``H = 2W``): each
    eliminates a size whose coefficient is ±1 (the last such in syms), which becomes a tie
    ``W = H - 3`` substituted into the other conditions, with its range as a condition."""
    ties: dict = {}
    rest = list(conds)
    extra = []
    while True:
        for i, c in enumerate(rest):
            lin = _linear(c, syms)
            if lin is None:
                continue
            coefs, const = lin
            unit = [s for s in coefs if abs(coefs[s]) == 1]
            if unit:
                break
        else:
            break
        y = max(unit, key=syms.index)
        expr = -coefs[y] * (const + sum((k * s for s, k in coefs.items() if s != y), sympy.Integer(0)))
        if expr.is_Symbol:  # H = W: W takes H's place; H takes W's range
            y, expr = (y, expr) if syms.index(expr) < syms.index(y) else (expr, y)
        ties = {k: v.xreplace({y: expr}) for k, v in ties.items()}
        ties[y] = expr
        rest = [o.xreplace({y: expr}, expr=False) for o in rest[:i] + rest[i + 1:]]
        extra = [o.xreplace({y: expr}, expr=False) for o in extra]
        r = ranges[y]
        if expr.is_Symbol:
            ranges[expr] = ranges[expr] & r
        else:
            lo, hi = r.min(), r.max()
            extra.append(_Cond("ge", expr - lo, 0, sympy.Ge(y, lo), f"{y.name} = {fmt(expr)}"))
            if hi is not None:
                extra.append(_Cond("le", expr - hi, 0, sympy.Le(y, hi), f"{y.name} = {fmt(expr)}"))
    return rest + extra, ties


def solve(conditions, over, bounds=None, *, _exact_only=False, _why=True) -> SolutionSet:
    """The integer sizes of ``over`` (positive, within ``bounds``) at which every condition holds.

    *conditions*: a sympy relation or a list of them (``Eq``, ``<=``, ``>=``, ``<``, ``>``, ``Ne``,
    divisibility ``Eq(Mod(expr, g), 0)``), or report domain conditions; ``Eq(H, W)`` asks for
    square sizes. *over*: the symbols (or names) to solve for; every symbol in the conditions must
    be among them. *bounds*: ``{name: (lo, hi)}`` or one ``(lo, hi)`` for all (``hi=None``:
    unbounded). The answer is exact; see the module docstring for the methods.

    >>> import sympy
    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> macs = 4704 * (floor_div(H - 7, 2) + 1) * (floor_div(W - 7, 2) + 1)
    >>> s = solve([macs <= 10**6, sympy.Eq(H, W), H >= 7], over=(H, W))
    >>> print(s)
    H = W, 7 ≤ H ≤ 34
    >>> s.min(), len(s), (34, 34) in s, (35, 35) in s, (7, 8) in s
    ((7, 7), 28, True, False, False)
    >>> print(solve(sympy.Eq(sympy.Mod(H, 32), 0), over=H))
    H ≡ 0 (mod 32), H ≥ 32
    >>> print(solve([sympy.Eq(floor_div(H, 8), 4), H > 40], over=H))
    no solution: the condition needs H > 40, which no size satisfies together with floor(H/8) = 4
    """
    syms = _symbols(over)
    conds = _conditions(conditions, syms)
    ranges = _bounds(bounds, syms)
    conds, ties = _ties(conds, list(syms), ranges)
    free = [s for s in syms if s not in ties]
    ctx = _Ctx()
    if _exact_only:  # the tracer's quick question (feasible): no scans, no steps; _NoScan escapes
        ctx.no_scan, ctx.record = True, False
    try:
        boxes = _solve(conds, free, ranges, {}, ctx)
        if boxes or ctx.scanned:
            reason = ""
        elif not _why:  # the tracer's question on a path whose message no one reads: empty, not why
            reason = "no size satisfies these conditions together"
        else:
            reason = _why_empty(conds, free, ranges, ctx)
            if ties:
                reason += f" (with {', '.join(_tie(s, t) for s, t in ties.items())})"
    except OverflowError:
        raise ShapeError("cannot solve: the answer lies at sizes beyond 1.8e308, where torch's double-precision "
                         "size arithmetic (a float scale factor) overflows; give bounds=") from None
    except _TooMany as err:
        names = ", ".join(s.name for s in free)
        raise ShapeError(
            f"cannot list the answer: over {names} it is a staircase with {err} (a size bound that "
            f"moves with another size); fix a size (e.g. Eq(H, W), or H = 224) or give bounds= to "
            f"ask about a range") from None
    if not boxes and ctx.scanned:
        reason = (f"none with {', '.join(f'{s.name} ≤ {top}' for s, top in ctx.scanned.items())}; "
                  "sizes beyond that were not checked")
    method = ", ".join(ctx.methods)
    return SolutionSet(syms, boxes, ties, method, "; ".join(ctx.notes), reason, ctx.steps, scanned=ctx.scanned)


def _tie(s, t) -> str:
    return f"{t.name} = {s.name}" if t.is_Symbol else f"{s.name} = {fmt(t)}"


def _why_empty(conds, free, ranges, ctx) -> str:
    """Which condition makes the answer empty: the first that is impossible alone, else the
    first that contradicts those before it. Only exact answers count as proof (no scans)."""
    quiet = _Ctx()
    quiet.record = False
    quiet.no_scan = True

    def empty(cs) -> bool:
        quiet.scanned = {}
        try:
            return not _solve(cs, free, ranges, {}, quiet) and not quiet.scanned
        except _NoScan:
            return False

    for c in conds:  # a condition without sizes that fails says it all
        if not (c.syms & set(free)) and not c.holds({}):
            return f"{c.label or 'the condition'} {fmt(c.expr)} is false"
    for i, c in enumerate(conds):
        quiet.details = []
        if empty([c]):
            who = c.label or "the condition"
            detail = f": {'; '.join(quiet.details)}" if quiet.details else ""
            return f"{who} needs {fmt(c.expr)}, which no positive size satisfies{detail}"
    for i, c in enumerate(conds):
        if empty(conds[: i + 1]):
            before = list(conds[:i])
            for p in list(before):  # keep only the conditions the contradiction needs
                trial = [q for q in before if q is not p]
                if empty([*trial, c]):
                    before = trial
            who = c.label or "the condition"
            others = ", ".join(fmt(p.expr) + (f" ({p.label})" if p.label else "") for p in before)
            return f"{who} needs {fmt(c.expr)}, which no size satisfies together with {others}"
    return "the conditions contradict each other"


_USUAL = (32, 64, 128, 224, 256, 384, 448, 512, 896, 1024)


def _holds_somewhere(conds, syms) -> bool:
    """Whether every condition holds at one of a few small sizes, or at a usual image size in every
    dim (a model's windows and strides often allow only multiples of 32 or of 224): a cheap first look."""
    try:
        parsed = _conditions(conds, syms)
    except ShapeError:
        return False
    k = len(syms)
    points = itertools.product(range(1, 5), repeat=k) if 4 ** k <= 256 else ((v,) * k for v in range(1, 17))
    points = itertools.chain(points, ((v,) * k for v in _USUAL))
    try:
        return any(all(c.holds(dict(zip(syms, p))) for c in parsed) for p in points)
    except (ArithmeticError, TypeError, ValueError):
        return False


def feasible(expr, domain=(), symbols=None, why: bool = True) -> Optional[str]:
    """None when the relation *expr* holds at some positive sizes that also satisfy *domain*
    (a list of relations or domain conditions), else the reason it never holds (with *why*
    false, a short one: which condition it is costs more than whether there is one).

    Used by the tracer on equations such as a Linear's ``in_features``, so a model that can run at
    no size fails at trace time.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> flat = sympy.Mul(32, floor_div(H - 7, 2) + 1, floor_div(W - 7, 2) + 1)
    >>> feasible(sympy.Eq(flat, 5408), [H >= 7, W >= 7]) is None
    True
    >>> print(feasible(sympy.Eq(flat, 5400), [H >= 7, W >= 7]))
    the condition needs 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) = 5400, which no positive size satisfies: (floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) = 5400/32 = 675/4, not an integer
    """
    domain = tuple(domain)
    if isinstance(expr, sympy.Basic) and all(isinstance(c, sympy.Basic) for c in domain):
        return _feasible_relations(expr, domain, None if symbols is None else tuple(symbols), why)
    return _feasible(expr, domain, symbols, why)


@lru_cache(maxsize=16384)
def _feasible_relations(expr, domain: tuple, symbols, why: bool) -> Optional[str]:
    """:func:`feasible` of plain relations, cached on them (the tracer asks with the same domain at
    every run of a forward)."""
    return _feasible(expr, domain, symbols, why)


def _feasible(expr, domain, symbols, why: bool = True) -> Optional[str]:
    conds = [expr, *domain]
    if symbols is None:
        found: set = set()
        for c in conds:
            found |= getattr(c, "expr", c).free_symbols
        symbols = sorted(found, key=lambda s: s.name)
    if _holds_somewhere(conds, tuple(symbols)):
        return None
    try:
        ans = solve(conds, over=tuple(symbols), _exact_only=True, _why=why)
    except (ShapeError, _NoScan):  # cannot evaluate, or only a scan would tell: say nothing rather than guess
        return None
    # a bounded scan proves nothing about the sizes beyond it
    return None if not ans.is_empty or ans.scanned else ans.reason
