"""Solving one condition in one size: exact inversion of a floor, exact (unbounded where it grows)
search of monotone conditions, congruences and periodic conditions, the bounded scan as a last resort."""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Optional

import sympy

from ..asymptotics import _mentions, growth
from ..evaluate import compile_expr
from ..floors import preimage, simplify_relation
from ..printing import fmt
from ..sets import IntSet
from .conditions import LIMIT, SCAN, _Cond, _NoScan, _OPS, _TooMany, _monotone


def _first(pred, lo: int, hi: Optional[int], eventually: bool = False, score=None) -> Optional[int]:
    """The least x in [lo, hi] with pred(x), for pred false then true; None if there is none.

    With hi None the search doubles its step: without end when *eventually* (pred is shown to
    become true), else up to :data:`LIMIT`, and None then means "not up to LIMIT". *score*, a
    non-decreasing number that turns non-negative about where pred turns true, only guides the
    guesses (secant steps, every other step a bisection); pred alone decides."""
    if pred(lo):
        return lo
    guess = _Guess(score)
    if hi is None:
        prev, step = lo, 1
        guess.see(lo)
        while True:
            x = max(lo + step, guess.beyond((lo + step) << 32))
            if x > LIMIT and not eventually:
                x = LIMIT + 1
                if pred(x):
                    break
                return None
            if x.bit_length() > 1 << 16:
                raise _TooMany(f"a bound beyond 2^{1 << 16}")
            if pred(x):
                break
            guess.see(x)
            prev, step = x, (x - lo) * 2
        a, b = prev, x
    else:
        if hi <= lo or not pred(hi):
            return None
        a, b = lo, hi
    secant = True
    while b - a > 1:
        mid = guess.between(a, b) if secant else None
        if mid is None or not a < mid < b:
            mid = (a + b) // 2
        width = b - a
        if pred(mid):
            b = mid
        else:
            a = mid
        secant = (b - a) * 2 < width  # a poor secant step is followed by a bisection
    return b


class _Guess:
    """Secant guesses from a score's values (remembered), or None without a score."""

    def __init__(self, score):
        self.score = score
        self.values: dict = {}

    def value(self, x):
        if self.score is None:
            return None
        if x not in self.values:
            try:
                self.values[x] = self.score(x)
            except (ArithmeticError, TypeError, ValueError):
                self.score = None
                return None
        return self.values[x]

    def see(self, x):
        self.value(x)

    def beyond(self, cap: int) -> int:
        """Where the secant through the last two points seen crosses zero (at most cap), or 0."""
        if self.score is None or len(self.values) < 2:
            return 0
        (x0, v0), (x1, v1) = sorted(self.values.items())[-2:]
        if v1 <= v0 or v1 >= 0:
            return 0
        root = x1 + math.ceil((x1 - x0) * Fraction(-v1) / Fraction(v1 - v0))
        return min(root, cap)

    def between(self, a, b) -> Optional[int]:
        va, vb = self.value(a), self.value(b)
        if va is None or vb is None or not va < 0 <= vb:
            return None
        return a + int((b - a) * Fraction(-va) / Fraction(vb - va))


class _Ctx:
    """What one solve did: methods used, notes, steps, and details of impossibilities."""

    def __init__(self):
        self.methods: list = []
        self.notes: list = []
        self.steps: list = []
        self.details: list = []
        self.record = True
        self.window = SCAN  # the window of a scan nested in another
        self._noted: set = set()
        self.no_scan = False
        self.scanned: dict = {}  # symbol -> the largest value up to which the answer is exact
        self.probes = 0

    def bound(self, x, top: int, note, key=None):
        """The answer is exact only for x <= top; say so (*note*: text, or a function giving it,
        formatted once per *key*)."""
        self.scanned[x] = min(top, self.scanned.get(x, top))
        key = key if key is not None else note
        if key in self._noted:
            return
        self._noted.add(key)
        note = note() if callable(note) else note
        if note not in self.notes:
            self.notes.append(note)

    def method(self, name: str):
        if name not in self.methods:
            self.methods.append(name)


def _interval_text(s: IntSet, name: str) -> str:
    if len(s.pieces) == 1 and s.pieces[0][2] == 1 and s.pieces[0][1] is not None:
        lo, hi = s.pieces[0][:2]
        return f"{name} = {lo}" if lo == hi else f"{lo} ≤ {name} ≤ {hi}"
    return s.text(name)


def _paren(e) -> str:
    return f"({fmt(e)})" if isinstance(e, sympy.Add) else fmt(e)


def _step_text(cond: _Cond) -> str:
    e = cond.expr
    if isinstance(e, sympy.Equality) and e.args[1].is_number and not e.args[0].is_number:
        return f"{fmt(e.args[1])} = {fmt(e.args[0])}"
    return fmt(e)


@lru_cache(maxsize=4096)
def _poly(f, x) -> Optional[tuple]:
    """The coefficients (lowest degree first) of f as a polynomial in x, each free of x and
    integer for integer sizes, or None."""
    if any(x in a.free_symbols for a in f.atoms(sympy.Function)):
        return None
    try:
        poly = sympy.Poly(f, x)
    except sympy.PolynomialError:
        return None
    coeffs = tuple(reversed(poly.all_coeffs()))
    if len(coeffs) > 64 or not all(c.is_integer for c in coeffs):
        return None
    return coeffs


def _congruence(cond: _Cond, x, env, lo, hi) -> Optional[IntSet]:
    """The x with ``p(x) ≡ 0 (mod g)`` for an integer polynomial p: linear ones by the inverse
    mod g, others by their residues over one period g (when g is at most 10^5); else None."""
    coeffs = _poly(cond.f, x)
    if coeffs is None:
        return None
    vals = [compile_expr(c)(env) for c in coeffs]
    if not all(isinstance(v, int) for v in vals):
        return None
    g = cond.g
    if len(vals) <= 2:
        b, a = vals[0], (vals[1] if len(vals) > 1 else 0)
        d = math.gcd(a, g)
        if b % d:
            return IntSet()
        m = g // d
        r = (-b // d) * pow(a // d, -1, m) % m if m > 1 else 0
        return IntSet.congruence(m, r, lo, hi)
    if g > 10 ** 5:
        return None

    def at(r):
        v = 0
        for c in reversed(vals):
            v = (v * r + c) % g
        return v

    return _reduce_congruence(g, [r for r in range(g) if at(r) == 0], lo, hi)


def _denominator(arg) -> Optional[int]:
    """The lcm m of the denominators in ``arg`` = (sum of integer-valued terms)/m, or None.
    (Works on unevaluated products such as ``(W + 6)/5`` too.)"""
    m = 1
    for term in sympy.Add.make_args(sympy.expand(arg)):
        coeff, rest = term.as_coeff_Mul()
        if not coeff.is_Rational or rest.is_integer is not True:
            return None
        m = math.lcm(m, int(coeff.q))
    return m


@lru_cache(maxsize=4096)
def _period_of(f, x) -> Optional[int]:
    """A period P in x of f's periodic part when f is linear in x plus floors of affine
    arguments (nested allowed) plus Mod of integer polynomials, every such atom entering
    linearly; else None. (Whether f's linear part vanishes is checked by the caller.)"""
    mods = [a for a in f.atoms(sympy.Mod) if _mentions(a, x)]
    for a in mods:
        if not a.args[1].is_Integer or int(a.args[1]) <= 0 or _poly(a.args[0], x) is None:
            return None
    g = f.xreplace({a: sympy.Dummy() for a in mods})
    floors = [a for a in g.atoms(sympy.Function) if _mentions(a, x)]
    if any(not isinstance(a, (sympy.floor, sympy.ceiling)) for a in floors):
        return None
    if any(_mentions(a, x) for a in g.atoms(sympy.Min, sympy.Max)):
        return None
    period = math.lcm(1, *(int(a.args[1]) for a in mods))
    nested = any(a.args[0].atoms(sympy.floor, sympy.ceiling) for a in floors)
    for a in floors:
        m = _denominator(a.args[0])
        if m is None:
            return None
        period = period * m if nested else math.lcm(period, m)
    dummies = {a: sympy.Dummy() for a in floors}
    lin = g.xreplace(dummies)
    gens = [x, *dummies.values(), *(d for d in lin.free_symbols if isinstance(d, sympy.Dummy) and d not in
                                    dummies.values())]
    try:
        poly = sympy.Poly(lin, *gens)
    except sympy.PolynomialError:
        return None
    if poly.total_degree() > 1 or any(_mentions(c, x) for c in poly.coeffs()):
        return None
    return period


def _periodic(cond: _Cond, x, env) -> Optional[int]:
    """A period P of the truth of cond in x (integer-linear combinations of floors, Mod of
    integer polynomials), or None."""
    period = _period_of(cond.f, x)
    if period is None:
        return None
    fn = compile_expr(cond.f)
    delta = fn({**env, x: period}) - fn({**env, x: 0})
    if cond.rel == "mod":
        return period * cond.g if isinstance(delta, int) else None
    return period if delta == 0 else None


def _solve_1d(cond: _Cond, x, rng: IntSet, env: dict, ctx: _Ctx) -> IntSet:
    """The x in rng (other symbols fixed by env) where cond holds."""
    if rng.is_empty:
        return rng
    if cond.rel == "or":  # the union of the alternatives
        result = IntSet()
        for conj in cond.parts:
            part = rng
            for c in conj:
                part = part & _solve_1d(c, x, part, env, ctx)
            result = result | part
        return result
    lo, hi = rng.min(), rng.max()
    at = lambda v: {**env, x: v}  # noqa: E731
    result = _linear_1d(cond, x, env, lo, hi) if cond.rel != "mod" else None
    if result is not None:
        ctx.method("exact inversion")
        result = result & rng
        if ctx.record and not env and (cond.rel == "eq" or result.is_empty):
            ctx.steps.append(lambda: f"{_step_text(cond)} ⇔ {_interval_text(result, x.name)}")
        return result
    d = _monotone(cond, (x,), at(lo), {x})
    if d is not None and d != 0 and not env:
        result = _invert(cond, x, lo, hi, ctx)
    if result is None and d == 0:
        result = IntSet.interval(lo, hi) if cond.holds(at(lo)) else IntSet()
    if result is None and d in (1, -1):
        ctx.method("bisection")
        grows = growth(cond.f, x, env) if hi is None else 0
        parts = []
        for c in cond.split():
            sense = 1 if c.rel in ("ge", "gt") else -1
            up = (sense == 1) == (d == 1)
            fn = compile_expr(c.f)
            score = lambda v: d * fn(at(v))  # noqa: E731
            if up:
                first = _first(lambda v: c.holds(at(v)), lo, hi, grows == sense, score)
                parts.append(IntSet() if first is None else IntSet.interval(first, hi))
            else:
                first = _first(lambda v: not c.holds(at(v)), lo, hi, grows == -sense, score)
                parts.append(IntSet.interval(lo, hi) if first is None else IntSet.interval(lo, first - 1))
            if first is None and hi is None:
                ctx.bound(x, LIMIT, lambda: f"searched {x.name} up to 2^{LIMIT.bit_length() - 1} only for "
                                            f"{fmt(cond.expr)}: not shown to change beyond", ("limit", x, cond.expr))
        result = parts[0]
        for p in parts[1:]:
            result = result & p
    if result is None and cond.rel == "ne":
        eq = _Cond("eq", cond.f, 0, cond.expr, cond.label)
        if _monotone(eq, (x,), at(lo), {x}) in (1, -1):
            inside = _solve_1d(eq, x, IntSet.interval(lo, hi), env, ctx)
            result = IntSet.interval(lo, hi)
            if not inside.is_empty:
                a, b = inside.min(), inside.max()
                result = IntSet.interval(lo, a - 1) | (IntSet() if b is None else IntSet.interval(b + 1, hi))
    if result is None and cond.rel == "mod":
        result = _congruence(cond, x, env, lo, hi)
        if result is not None:
            ctx.method("congruence")
    if result is None:
        period = _periodic(cond, x, env)
        if period is not None and period <= 10 ** 5:
            ctx.method("congruence")
            residues = [r for r in range(period) if cond.holds(at(r))]
            result = _reduce_congruence(period, residues, lo, hi)
    if result is None and cond.rel not in ("mod", "ne"):
        # monotone from some size on (factors negative below it): the head point by point
        shift = 1
        while shift <= 64 and (hi is None or lo + shift <= hi):
            if _monotone(cond, (x,), at(lo + shift), {x}) is not None:
                head = IntSet([(v, v, 1, 0) for v in range(lo, lo + shift) if cond.holds(at(v))])
                saved, ctx.record = ctx.record, False
                tail = _solve_1d(cond, x, IntSet.interval(lo + shift, hi), env, ctx)
                ctx.record = saved
                result = head | tail
                break
            shift *= 2
    if result is None:
        if ctx.no_scan:
            raise _NoScan
        window = SCAN if not env else ctx.window
        top = hi if hi is not None and hi - lo < window else lo + window - 1
        ctx.method("scan")
        if hi is None or top < hi:
            ctx.bound(x, top, lambda: f"scanned {x.name} in [{lo}, {top}] only for {fmt(cond.expr)}: "
                                      "not monotone, not periodic", ("scan", x, lo, top, cond.expr))
        result = IntSet([(v, v, 1, 0) for v in range(lo, top + 1) if cond.holds(at(v))])
    result = result & rng
    if ctx.record and not env and (cond.rel in ("eq", "mod") or result.is_empty):
        ctx.steps.append(lambda: f"{_step_text(cond)} ⇔ {_interval_text(result, x.name)}")
    return result


def _linear_1d(cond: _Cond, x, env, lo, hi) -> Optional[IntSet]:
    """``a·x + b <rel> 0`` (a polynomial of degree at most 1 in x once env is fixed), exactly."""
    coeffs = _poly(cond.f, x)
    if coeffs is None or len(coeffs) > 2:
        return None
    vals = [compile_expr(c)(env) for c in coeffs]
    if not all(isinstance(v, (int, Fraction)) and not isinstance(v, bool) for v in vals):
        return None
    b, a = Fraction(vals[0]), Fraction(vals[1] if len(vals) > 1 else 0)
    everything = IntSet.interval(lo, hi)
    if a == 0:
        return everything if _OPS[cond.rel](b) else IntSet()
    root = -b / a
    if cond.rel in ("eq", "ne"):
        point = IntSet.interval(int(root), int(root)) if root.denominator == 1 else IntSet()
        if cond.rel == "eq":
            return point & everything
        if point.is_empty or int(root) < lo or (hi is not None and int(root) > hi):
            return everything
        r = int(root)
        return (IntSet.interval(lo, r - 1) if r > lo else IntSet()) | (
            IntSet.interval(r + 1, hi) if hi is None or r < hi else IntSet())
    rel = cond.rel if a > 0 else {"ge": "le", "gt": "lt", "le": "ge", "lt": "gt"}[cond.rel]
    if rel == "ge":
        return IntSet.interval(max(lo, math.ceil(root)), hi)
    if rel == "gt":
        return IntSet.interval(max(lo, math.floor(root) + 1), hi)
    top = math.floor(root) if rel == "le" else math.ceil(root) - 1
    top = top if hi is None else min(hi, top)
    return IntSet.interval(lo, top) if top >= lo else IntSet()


def _reduce_congruence(period: int, residues, lo, hi) -> IntSet:
    """The residues mod the smallest period that describes them."""
    have = set(residues)
    for p in sympy.divisors(period):
        small = {r % p for r in have}
        if len(have) == len(small) * (period // p) and have == {r for r in range(period) if r % p in small}:
            return IntSet.congruence(p, sorted(small), lo, hi)
    return IntSet.congruence(period, sorted(have), lo, hi)


def _invert(cond: _Cond, x, lo, hi, ctx: _Ctx) -> Optional[IntSet]:
    """Exact inversion of a single-floor form, or None when cond is not one."""
    if cond.rel == "eq":
        expr = cond.f
        const = expr.as_coeff_Add()[0]
        pre = preimage(expr - const, -const) or preimage(-(expr - const), const)
        if pre is None:
            return None
        ctx.method("exact inversion")
        return IntSet.interval(max(lo, pre[1]), pre[2] if hi is None else min(hi, pre[2]))
    if cond.rel in ("ge", "gt", "le", "lt") and cond.f.is_integer:
        rel = {"ge": (sympy.Ge, 0), "gt": (sympy.Ge, 1), "le": (sympy.Le, 0), "lt": (sympy.Le, -1)}[cond.rel]
        rel = rel[0](cond.f, rel[1], evaluate=False)
        simple = simplify_relation(rel)
        if simple is sympy.true:
            return IntSet.interval(lo, hi)
        if simple is sympy.false:
            return IntSet()
        if isinstance(simple, (sympy.GreaterThan, sympy.LessThan)) and simple.lhs == x and simple.rhs.is_Integer:
            ctx.method("exact inversion")
            bound = int(simple.rhs)
            if isinstance(simple, sympy.GreaterThan):
                return IntSet.interval(max(lo, bound), hi)
            return IntSet.interval(lo, bound if hi is None else min(hi, bound))
    return None
