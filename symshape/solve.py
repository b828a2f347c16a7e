"""Exact reverse solving: which integer sizes satisfy conditions on a report's formulas.

``solve(conditions, over=symbols)`` returns a :class:`~symshape.sets.SolutionSet`. The answer
is exact, or says where it is not, or the solver refuses (ShapeError); it never guesses. Integer-
linear equations between sizes (``H = W``, ``H - W = 3``, ``H = 2W``) first become ties that
substitute a size away; a condition whose non-constant part factors is used in product form.
Then the methods, in the order they are tried (DESIGN.md §5):

* one symbol, one floor: exact inversion, ``floor((aX + b)/m) + c = v`` iff
  ``ceil((m(v - c) - b)/a) <= X <= floor((m(v - c) + m - 1 - b)/a)``;
* one symbol, monotone (chains of floors, ``ScaledFloor``, sums and products of non-negative
  monotone factors): exact search on big integers, without a size limit where
  :func:`~symshape.decide.growth` shows the condition changes (secant guesses, bisection);
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
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Optional

import sympy

from .decide import _mentions, growth
from .evaluate import compile_expr
from .floors import ScaledFloor, preimage, simplify_relation
from .render.expr import fmt
from .sets import IntSet, SolutionSet
from .symbols import ShapeError

__all__ = ["solve", "feasible", "exactness_conditions", "SCAN", "LIMIT"]

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
        v = compile_expr(self.f)(env)
        return v % self.g == 0 if self.rel == "mod" else _OPS[self.rel](v)

    def split(self):
        """An equation as two inequalities (each monotone in the inclusion sense)."""
        if self.rel == "eq":
            return [_Cond("ge", self.f, 0, self.expr, self.label), _Cond("le", self.f, 0, self.expr, self.label)]
        return [self]


def _parse(cond, label: str, out: list) -> None:
    from .report import Condition

    if isinstance(cond, Condition):
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
        for a, b in ((lhs, rhs), (rhs, lhs)):
            if isinstance(a, sympy.Mul) and len(a.args) == 2 and a.args[0].is_number and a.args[0] != 0:
                a = a.args[1]  # 3*Mod(e, 2) = 0
            if isinstance(a, sympy.Mod) and b == 0 and a.args[1].is_Integer and int(a.args[1]) > 0:
                out.append(_Cond("mod", a.args[0], int(a.args[1]), cond, label))
                return
    out.append(_Cond(rel, sympy.sympify(lhs - rhs, strict=True), 0, cond, label))


# ---------------------------------------------------------------- monotonicity

def _sign(e, lows: dict, free) -> Optional[int]:
    """+1 when e >= 0 everywhere on the region (free symbols >= their lows), -1 when e <= 0, else None."""
    dirs = {_dir(e, s, lows, free) for s in _free(e) & free}
    v = compile_expr(e)(lows)
    if dirs <= {0, 1} and v >= 0:
        return 1
    if dirs <= {0, -1} and v <= 0 and e.is_number:
        return -1
    return None


@lru_cache(maxsize=65536)
def _free(e) -> frozenset:
    return frozenset(e.free_symbols)


def _combine(dirs) -> Optional[int]:
    dirs = set(dirs)
    if None in dirs or {1, -1} <= dirs:
        return None
    return 1 if 1 in dirs else -1 if -1 in dirs else 0


def _dir(e, x, lows: dict, free) -> Optional[int]:
    """+1 non-decreasing, -1 non-increasing, 0 constant in x over the region, None: not shown."""
    if not _mentions(e, x):
        return 0
    if e.is_Symbol:
        return 1
    if isinstance(e, (sympy.Add, sympy.Min, sympy.Max)):
        return _combine(_dir(a, x, lows, free) for a in e.args)
    if isinstance(e, (sympy.floor, sympy.ceiling, ScaledFloor)):
        return _dir(e.args[0], x, lows, free)
    if isinstance(e, sympy.Pow) and e.args[1].is_Integer and e.args[1] > 0:
        return _dir(e.args[0], x, lows, free) if _sign(e.args[0], lows, free) == 1 else None
    if isinstance(e, sympy.Mul):
        sign, dirs = 1, []
        for a in e.args:
            s = _sign(a, lows, free) if _free(a) & free else (1 if compile_expr(a)(lows) >= 0 else -1)
            if s is None:
                return None
            sign *= s
            dirs.append(s * _dir(a, x, lows, free) if _mentions(a, x) else 0)
            if dirs[-1] is None:
                return None
        d = _combine(dirs)
        return None if d is None else sign * d
    return None


@lru_cache(maxsize=8192)
def _dir_cached(e, x, lows: frozenset, free: frozenset) -> Optional[int]:
    return _dir(e, x, dict(lows), free)


def _monotone(cond: _Cond, syms, lows: dict, free) -> Optional[int]:
    """The common direction of cond's f in every symbol of syms (+1, -1), 0 if constant, else None."""
    if cond.rel in ("mod", "ne", "or"):
        return None
    mine = cond.syms
    key = frozenset((s, lows[s]) for s in mine if s in lows)
    dirs = {_dir_cached(cond.f, s, key, frozenset(free) & mine) for s in syms if s in mine}
    return _combine(dirs)


# ---------------------------------------------------------------- one symbol

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
        expr, value = cond.f, 0
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


# ---------------------------------------------------------------- several symbols

def _components(conds, syms):
    parent = {s: s for s in syms}

    def find(s):
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for c in conds:
        mine = [s for s in syms if s in c.syms]
        for a, b in zip(mine, mine[1:]):
            parent[find(a)] = find(b)
    groups: dict = {}
    for s in syms:
        groups.setdefault(find(s), []).append(s)
    return list(groups.values())


def _exclusive(cond: _Cond) -> bool:
    """Whether an 'or' is of equations ``f = v1 or f = v2 ...`` (one f, different values; a fixed
    size broadcast against a symbolic one), whose alternatives never hold together."""
    eqs = [conj[0] for conj in cond.parts if len(conj) == 1 and conj[0].rel == "eq"]
    if len(eqs) != len(cond.parts):
        return False
    return all((a.f - b.f).is_number and a.f != b.f for a, b in itertools.combinations(eqs, 2))


def _solve(conds, syms, ranges: dict, env: dict, ctx: _Ctx) -> list:
    """Disjoint boxes (one IntSet per symbol of syms) where every cond holds."""
    live = []
    for c in conds:
        if not (c.syms & set(syms)):
            if not c.holds(env):
                return []
        else:
            live.append(c)
    for k, c in enumerate(live):
        if c.rel == "or" and len(c.syms & set(syms)) > 1 and _exclusive(c):
            # alternatives that exclude each other: the union of their answers is disjoint
            rest = live[:k] + live[k + 1:]
            return [box for conj in c.parts for box in _solve(rest + list(conj), syms, ranges, env, ctx)]
    per_comp = []
    for comp in _components(live, syms):
        mine = [c for c in live if c.syms & set(comp)]
        boxes = _solve_component(mine, comp, ranges, env, ctx) if mine else [tuple(ranges[s] for s in comp)]
        if not boxes:
            return []
        per_comp.append((comp, boxes))
    out = []
    for combo in itertools.product(*(b for _, b in per_comp)):
        values = {}
        for (comp, _), box in zip(per_comp, combo):
            values.update(zip(comp, box))
        out.append(tuple(values[s] for s in syms))
    return out


def _solve_component(conds, syms, ranges, env, ctx) -> list:
    if len(syms) == 1:
        (x,) = syms
        s = ranges[x]
        for c in sorted(conds, key=lambda c: c.rel != "ge"):
            s = _solve_1d(c, x, s, env, ctx)  # within s already
            if s.is_empty:
                break
        return [(s,)] if not s.is_empty else []
    # single-symbol conditions first: they narrow the ranges
    ranges = dict(ranges)
    multi = []
    for c in conds:
        mine = [s for s in syms if s in c.syms]
        if len(mine) == 1:
            got = _solve_component([c], mine, ranges, env, ctx)
            if not got:
                return []
            ranges[mine[0]] = got[0][0]
        else:
            multi.append(c)
    if not multi:
        return [tuple(ranges[s] for s in syms)]
    got = _joint_congruence(multi, syms, ranges, env, ctx)
    if got is not None:
        return got
    # monotone region: below it, fix the sizes one by one
    lows = {**env, **{s: ranges[s].min() for s in syms}}
    free = set(syms)
    shift = 0
    while any(_monotone(c, syms, {**lows, **{s: lows[s] + shift for s in syms}}, free) is None for c in multi):
        shift = 1 if shift == 0 else shift * 2
        if shift > 64:
            return _scan_component(multi, syms, ranges, env, ctx)
    if shift:
        out = []
        for i, x in enumerate(syms):
            r = ranges[x]
            below = r & IntSet.interval(1, lows[x] + shift - 1)
            for v in below:
                sub = {**ranges, x: IntSet.interval(v, v)}
                rest = [s for s in syms if s != x]
                for box in _solve(multi, rest, sub, {**env, x: v}, ctx):
                    vals = dict(zip(rest, box))
                    vals[x] = IntSet.interval(v, v)
                    out.append(tuple(vals[s] for s in syms))
            ranges = {**ranges, x: r & IntSet.interval(lows[x] + shift, None)}
            if ranges[x].is_empty:
                return out
        return out + _solve_component(multi, syms, ranges, env, ctx)
    for c in multi:
        got = _divisors(c, multi, syms, ranges, env, ctx)
        if got is not None:
            return got
    return _staircase(multi, syms, ranges, env, ctx)


@lru_cache(maxsize=4096)
def _integer_poly(f, syms: tuple) -> bool:
    """Whether f is a polynomial in syms whose coefficients are integers for integer sizes."""
    if f.atoms(sympy.Function):
        return False
    try:
        poly = sympy.Poly(f, *syms)
    except sympy.PolynomialError:
        return False
    return all(c.is_integer for c in poly.coeffs())


def _joint_congruence(conds, syms, ranges, env, ctx) -> Optional[list]:
    """Divisibility of integer polynomials in several sizes (``Mod(N·H·W, 2) = 0``): the truth
    repeats with period P = lcm of the moduli in every size, so the residue tuples mod P decide
    it exactly (when there are at most 4096 of them); else None."""
    if not all(c.rel == "mod" and _integer_poly(c.f, tuple(syms)) for c in conds):
        return None
    period = math.lcm(*(c.g for c in conds))
    if period ** len(syms) > SCAN:
        return None
    ctx.method("congruence")
    out = []
    for res in itertools.product(range(period), repeat=len(syms)):
        point = {**env, **{s: period + r for s, r in zip(syms, res)}}
        if all(c.holds(point) for c in conds):
            box = tuple(ranges[s] & IntSet.congruence(period, r, ranges[s].min(), ranges[s].max())
                        for s, r in zip(syms, res))
            if not any(b.is_empty for b in box):
                out.append(box)
    return out


def _scan_component(conds, syms, ranges, env, ctx) -> list:
    """Each value of the first size in a window, the others solved at it. The window is SCAN
    values while the other sizes are solved exactly, else SCAN^(1/k) for k sizes, so that nested
    scans stay within about SCAN points."""
    if ctx.no_scan:
        raise _NoScan
    ctx.method("scan")
    x, rest = syms[0], syms[1:]
    r = ranges[x]
    small = max(16, int(round(SCAN ** (1 / len(syms))))) if not env else ctx.window
    wide = SCAN if not env else small
    out = []
    saved, ctx.window = ctx.window, small
    nested = set(ctx.scanned)
    top = r.min() - 1
    try:
        for v in r & IntSet.interval(r.min(), r.min() + wide - 1):
            if v - r.min() >= small and set(ctx.scanned) - nested:
                break  # the other sizes needed scans too: keep the small window
            for box in _solve(conds, list(rest), ranges, {**env, x: v}, ctx):
                out.append((IntSet.interval(v, v), *box))
            top = v
    finally:
        ctx.window = saved
    if r.max() is None or top < r.max():
        ctx.bound(x, top, lambda: f"scanned {x.name} in [{r.min()}, {top}] only: "
                                  f"{'; '.join(fmt(c.expr) for c in conds)} is not monotone in the sizes",
                  ("scan", x, r.min(), top, tuple(c.expr for c in conds)))
    return out


def _product_form(cond: _Cond, syms, env):
    """``(c, {symbol: factor}, v)`` when cond is ``c * prod(factor(symbol)) = v``, else None."""
    if cond.rel != "eq":
        return None
    const, rest = cond.f.as_coeff_Add()
    value = -const
    coeff, factors = rest.as_coeff_mul()
    c = Fraction(int(coeff.p), int(coeff.q)) if coeff.is_Rational else None
    if c is None:
        return None
    groups: dict = {}
    for fac in factors:
        if isinstance(fac, sympy.Add):  # sympy distributes 32*(a + 1) into 32*a + 32
            content, fac = fac.primitive()
            c *= Fraction(int(content.p), int(content.q))
        mine = [s for s in syms if s in fac.free_symbols]
        if len(mine) > 1 or fac.is_integer is not True:
            return None
        if not mine:
            c *= compile_expr(fac)(env)
            continue
        groups.setdefault(mine[0], []).append(fac)
    if set(groups) != set(syms):
        return None
    return c, {s: sympy.Mul(*fs) for s, fs in groups.items()}, Fraction(int(value.p), int(value.q))


def _splits(n: int, k: int, divs):
    if k == 1:
        yield (n,)
        return
    for d in divs:
        if n % d == 0:
            for rest in _splits(n // d, k - 1, divs):
                yield (d, *rest)


def _divisors(cond, conds, syms, ranges, env, ctx) -> Optional[list]:
    form = _product_form(cond, syms, env)
    if form is None:
        return None
    c, factors, value = form
    lows = {**env, **{s: ranges[s].min() for s in syms}}
    if any(_sign(f, lows, set(syms)) != 1 for f in factors.values()):
        return None
    if c == 0:
        return None
    ctx.method("divisors")
    n = value / c
    if n.denominator != 1:
        ctx.details.append(f"{fmt(sympy.Mul(*factors.values()))} = {value}/{c} = {n}, not an integer")
        return []
    if n <= 0:
        product = fmt(sympy.Mul(*factors.values()))
        ctx.details.append(f"{product} = {n}, but the product is positive" if n < 0 else
                           f"{product} = 0, but every factor is positive")
        return [] if n < 0 else None
    n = int(n)
    divs = sympy.divisors(n)
    record = ctx.record and not env
    if record:
        ctx.steps.append(lambda: f"{_step_text(cond)} ⇔ {' · '.join(_paren(f) for f in factors.values())} = {n}: "
                                 f"try every split of {n} into {len(syms)} factors")
    others = [o for o in conds if o is not cond]
    cache: dict = {}
    out = []
    saved, ctx.record = ctx.record, False
    try:
        for split in _splits(n, len(syms), divs):
            box = []
            for s, d in zip(syms, split):
                key = (s, d)
                if key not in cache:
                    sub = _Cond("eq", factors[s] - d, 0, sympy.Eq(factors[s], d, evaluate=False), cond.label)
                    cache[key] = _solve_1d(sub, s, ranges[s], env, ctx)
                    if record and not cache[key].is_empty:
                        ctx.steps.append(lambda d=d, s=s, got=cache[key]:
                                         f"  {d} = {fmt(factors[s])} ⇔ {_interval_text(got, s.name)}")
                if cache[key].is_empty:
                    break
                box.append(cache[key])
            else:
                if others:
                    out += _solve(others, syms, {**ranges, **dict(zip(syms, box))}, env, ctx)
                else:
                    out.append(tuple(box))
    finally:
        ctx.record = saved
    if not out and record:
        ctx.details.append(f"no split of {n} into the factors {', '.join(fmt(f) for f in factors.values())} "
                           "is reached by sizes in range")
    return out


def _staircase(conds, syms, ranges, env, ctx) -> list:
    """Divide and conquer on the first symbol: each condition, monotone in every size, gives a
    solution set of the other sizes that only grows (or only shrinks) with the first; where the
    sets agree at both ends of a range, they agree inside it."""
    ctx.method("staircase")
    x, rest = syms[0], list(syms[1:])
    halves = [h for c in conds for h in c.split()]
    lows = {**env, **{s: ranges[s].min() for s in syms}}
    free = set(syms)
    rng = ranges[x]
    lo, hi = rng.min(), rng.max()
    saved, ctx.record = ctx.record, False
    try:
        if hi is None:
            # beyond a threshold every half is full or empty: the sets stop changing
            top = lo
            for h in halves:
                if x not in h.syms:
                    continue  # its set of the other sizes does not change with x
                d = _monotone(h, syms, lows, free)
                sense = 1 if h.rel in ("ge", "gt") else -1
                up = (sense == 1) == (d == 1)
                grows = growth(h.f, x, {s: v for s, v in lows.items() if s != x})
                probe = (lambda v, h=h: h.holds({**lows, x: v})) if up else (lambda v, h=h: not h.holds({**lows, x: v}))
                fn = compile_expr(h.f)
                t = _first(probe, lo, None, grows == (sense if up else -sense),
                           lambda v, fn=fn, d=d: d * fn({**lows, x: v}))
                if t is None:
                    t = LIMIT
                    ctx.bound(x, LIMIT, lambda h=h: f"assumed {fmt(h.expr)} no longer changes beyond "
                                                    f"{x.name} = 2^{LIMIT.bit_length() - 1}", ("assumed", x, h.expr))
                if not up:
                    hi = t - 1 if hi is None else min(hi, t - 1)
                top = max(top, t)
            unbounded = hi is None
            hi = top if unbounded else hi
        else:
            unbounded = False
        if hi < lo:
            return []

        memo: dict = {}

        probes = [0]

        def key(v):
            if v not in memo:
                probes[0] += 1
                if probes[0] > MAX_PROBES:
                    raise _TooMany(f"more than {MAX_PROBES} steps")
                sub = {**env, x: v}
                memo[v] = tuple(tuple(_solve([h], rest, ranges, sub, ctx)) for h in halves)
            return memo[v]

        merged: list = []

        def emit(a, b, k):
            if merged and merged[-1][2] == k and merged[-1][1] + 1 == a:
                merged[-1] = (merged[-1][0], b, k)
            else:
                merged.append((a, b, k))
                if len(merged) > MAX_BOXES:
                    raise _TooMany(f"more than {MAX_BOXES} boxes")

        # each half's set changes monotonically with x, so a key never comes back: more distinct
        # keys at sample points than boxes allowed means too many boxes (found in a few probes)
        seen, k = set(), 0
        while lo + (1 << k) - 1 <= hi and k < 4 * MAX_BOXES:
            seen.add(key(lo + (1 << k) - 1))
            if len(seen) > MAX_BOXES:
                raise _TooMany(f"more than {MAX_BOXES} boxes")
            k += 1
        stack = [(lo, hi)]  # depth first, left half first: blocks come out in order
        while stack:
            a, b = stack.pop()
            ka, kb = key(a), key(b)
            if ka == kb:
                emit(a, b, ka)
            elif b - a <= 1:
                emit(a, a, ka)
                emit(b, b, kb)
            else:
                m = (a + b) // 2
                stack.append((m + 1, b))
                stack.append((a, m))
        if unbounded:
            a, b, k = merged[-1]
            merged[-1] = (a, None, k)
        out = []
        for a, b, k in merged:
            span = IntSet.interval(a, b) & rng
            if span.is_empty:
                continue
            for box in _solve(conds, rest, ranges, {**env, x: a}, ctx):
                out.append((span, *box))
        return out
    finally:
        ctx.record = saved


# ---------------------------------------------------------------- the public solver

def _symbols(over) -> tuple:
    from .symbols import size_symbol

    if isinstance(over, str):
        over = [p for p in over.replace(",", " ").split() if p]
    if isinstance(over, (sympy.Symbol, str)):
        over = [over]
    return tuple(size_symbol(s if isinstance(s, str) else s.name) for s in over)


def _bounds(bounds, syms) -> dict:
    ranges = {s: IntSet.interval(1, None) for s in syms}
    if bounds is None:
        return ranges
    if isinstance(bounds, tuple) and len(bounds) == 2 and not isinstance(bounds[0], tuple):
        bounds = {s: bounds for s in syms}
    by_name = {s.name: s for s in syms}
    for k, (lo, hi) in dict(bounds).items():
        name = k if isinstance(k, str) else k.name
        if name not in by_name:
            raise ShapeError(f"bounds name {name!r}, which is not among the symbols solved for: {', '.join(by_name)}")
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


def solve(conditions, over, bounds=None) -> SolutionSet:
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
    try:
        boxes = _solve(conds, free, ranges, {}, ctx)
        if boxes or ctx.scanned:
            reason = ""
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


def _holds_somewhere(conds, syms) -> bool:
    """Whether every condition holds at one of a few small sizes (a cheap first look)."""
    try:
        parsed = _conditions(conds, syms)
    except ShapeError:
        return False
    k = len(syms)
    points = itertools.product(range(1, 5), repeat=k) if 4 ** k <= 256 else ((v,) * k for v in range(1, 17))
    try:
        return any(all(c.holds(dict(zip(syms, p))) for c in parsed) for p in points)
    except (ArithmeticError, TypeError, ValueError):
        return False


def feasible(expr, domain=(), symbols=None) -> Optional[str]:
    """None when the relation *expr* holds at some positive sizes that also satisfy *domain*
    (a list of relations or domain conditions), else the reason it never holds.

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
    conds = [expr, *domain]
    if symbols is None:
        found: set = set()
        for c in conds:
            found |= getattr(c, "expr", c).free_symbols
        symbols = sorted(found, key=lambda s: s.name)
    if _holds_somewhere(conds, tuple(symbols)):
        return None
    try:
        ans = solve(conds, over=tuple(symbols))
    except ShapeError:  # a function the solver cannot evaluate: say nothing rather than guess
        return None
    # a bounded scan proves nothing about the sizes beyond it
    return None if not ans.is_empty or ans.scanned else ans.reason


# ---------------------------------------------------------------- rows dropped by conv and pool

def exactness_conditions(report) -> list:
    """For every conv and pool of the report, per spatial dim, the condition that its windows
    cover every input row: ``(out - 1)·s + e - p >= L`` with stride s, window extent
    e = d(k - 1) + 1, padding p (at the end), input size L and output size out. A window that
    stops early drops the rows after it (floor mode with a remainder larger than the padding).
    The hyper-parameters come from each layer's ``attrs``, so a report read back from JSON
    answers too.

    >>> import torch.nn as nn
    >>> from symshape.trace import trace
    >>> rep = trace(nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2)), "1,3,H,W")
    >>> print(exactness_conditions(rep)[0])
    2*floor(H/2) >= H  [layer '0' (MaxPool2d): the windows cover every input row of dim 2]
    """
    from .report import Condition
    from .rules.common import ntuple

    out = []
    for layer in report.layers:
        a = layer.attrs
        # sliding windows: convs and max/avg/LP pools (not transposed convs; adaptive and
        # fractional pools have no stride)
        if "kernel_size" not in a or "stride" not in a or a.get("transposed"):
            continue
        if a.get("padding") == "same" or not isinstance(layer.out_shape, tuple) or not layer.in_shapes:
            continue  # 'same' is stride 1: every row is covered
        k = a["kernel_size"]
        nd = len(k) if isinstance(k, tuple) else len(layer.in_shape) - 2
        if nd < 1:
            continue
        ks = ntuple(k, nd)
        ss = ntuple(a["stride"] if a["stride"] is not None else k, nd)
        ps = (0,) * nd if a.get("padding") == "valid" else ntuple(a.get("padding", 0), nd)
        ds = ntuple(a.get("dilation", 1), nd)
        ins, outs = layer.in_shape[-nd:], layer.out_shape[-nd:]
        rank = len(layer.in_shape)
        for i, (size, o, k, s, d, p) in enumerate(zip(ins, outs, ks, ss, ds, ps)):
            if s == 1 or not (size.free_symbols or o.free_symbols):
                continue
            e = d * (k - 1) + 1
            rel = sympy.Ge((o - 1) * s + e - p, size)
            if rel is sympy.true:
                continue
            out.append(Condition(rel, layer.name, layer.kind,
                                 f"the windows cover every input row of dim {rank - nd + i}"))
    return out


def layer_ranges(report, answer: SolutionSet, limit: int = 3) -> list:
    """Lines giving, for each of the first *limit* boxes of *answer*, every layer's output shape
    over the box (a size that varies prints as ``lo..hi``; shapes are monotone in the sizes); a
    layer with several outputs gives each of them."""
    from .report import shapes_of

    lines = []
    for box in answer.boxes[:limit]:
        low = dict(zip(answer.free, (s.min() for s in box)))
        high = dict(zip(answer.free, (s.max() for s in box)))
        for tied, rep in answer.ties.items():
            a = compile_expr(rep)(low)
            b = None if None in (high[s] for s in rep.free_symbols) else compile_expr(rep)(high)
            if b is not None and b < a or b is None and _dir(rep, next(iter(rep.free_symbols)), low, set()) == -1:
                a, b = max(1, b) if b is not None else 1, a  # a tie that falls as its size grows
            low[tied], high[tied] = a, b
        text = ", ".join(s.text(x.name) for s, x in zip(box, answer.free))
        lines.append(f"per layer, over {text}:")
        for layer in report.layers:
            parts = []
            for shape in shapes_of(layer.out_shape):  # one shape, or each output of a multi-output layer
                dims = []
                for d in shape:
                    d = sympy.sympify(d, strict=True)
                    a = compile_expr(d)(low)
                    b = None if None in (high[s] for s in d.free_symbols) else compile_expr(d)(high)
                    dims.append(str(a) if a == b else f"{a}..{'' if b is None else b}")
                parts.append(f"({', '.join(dims)})")
            lines.append(f"  {layer.name!r} ({layer.kind}): {', '.join(parts)}")
    return lines


def implied_by_bounds(rel, lows: dict) -> bool:
    """Whether the relation ``lhs >= rhs`` (or ``<=``) holds at every size at or above *lows*
    (a symbol -> lower bound map; symbols not in it are >= 1): its difference is shown
    non-decreasing in every symbol on that region and non-negative at the corner. False means
    "not shown", not "fails".

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> implied_by_bounds(sympy.Ge(floor_div(H, 4) * floor_div(W, 4), 2), {H: 8, W: 8})
    True
    >>> implied_by_bounds(sympy.Ge(floor_div(H, 4) * floor_div(W, 4), 2), {H: 4, W: 4})
    False
    """
    if isinstance(rel, sympy.GreaterThan):
        diff = rel.lhs - rel.rhs
    elif isinstance(rel, sympy.LessThan):
        diff = rel.rhs - rel.lhs
    else:
        return False
    free = diff.free_symbols
    region = {s: lows.get(s, 1) for s in free}
    try:
        return _sign(diff, region, free) == 1
    except (KeyError, TypeError, ZeroDivisionError):
        return False
