"""Solving conditions in several sizes: independent components, joint congruences, products of
floors split into divisors (flatten sizes), staircases of monotone conditions, bounded scans."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import lru_cache
from typing import Optional

import sympy

from ..asymptotics import growth
from ..evaluate import compile_expr
from ..monotone import _sign
from ..printing import fmt
from ..sets import IntSet
from .conditions import LIMIT, MAX_BOXES, MAX_PROBES, SCAN, _Cond, _NoScan, _TooMany, _monotone
from .one_dim import _Ctx, _first, _interval_text, _paren, _solve_1d, _step_text


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


#: the most ways to split a product's value into its factors that the solver tries
MAX_SPLITS = 20_000


def _divisors_of(n: int, k: int) -> list:
    """The divisors of n, when n factors quickly and has few enough splits into k factors; else
    :class:`_TooMany` (a 60-digit value may take sympy minutes to factor, or have millions of splits)."""
    factors = sympy.factorint(n, limit=2 ** 20)
    if any(p > 2 ** 20 and not sympy.isprime(p) for p in factors):
        raise _TooMany(f"a product value, {n}, too large to factor promptly")
    count = 1
    for e in factors.values():
        count *= e + 1
    if count ** (k - 1) > MAX_SPLITS:
        raise _TooMany(f"more than {MAX_SPLITS} ways to split {n} into {k} factors")
    return sympy.divisors(n)


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
    divs = _divisors_of(n, len(syms))
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
