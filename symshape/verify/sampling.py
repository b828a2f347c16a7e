"""Which sizes to check a report at: the solver's edges, a spread inside the domain, and sizes just
outside it."""
from __future__ import annotations

import itertools

import sympy

from ..evaluate import compile_expr
from ..symbols import ShapeError

__all__ = ["default_sizes", "SCAN", "SPREAD"]

SCAN = 1024
"""How far :func:`default_sizes` scans up from the lower bounds for a first valid size."""

SPREAD = 256
"""How far above the smallest valid value :func:`default_sizes` looks for larger values."""

_JOINT_BUDGET = 20_000


def _evaluator(expr):
    """A function ``values -> value`` that evaluates ``expr`` exactly at a point ``{symbol: int}``;
    node types :func:`~symshape.evaluate.compile_expr` does not know are left to sympy."""
    return compile_expr(expr, fallback=True)


def default_sizes(rep, n: int = 6) -> list:
    """A spread of sizes for :func:`check`: up to ``n`` inside ``rep``'s domain, then some just outside.

    The edges come from the solver (:meth:`~symshape.Report.valid_inputs`): first the minimal
    inputs (:meth:`~symshape.Report.min_input`), then, per box of the valid set and per size
    (the others at the box's corner), both ends of each finite piece and the first two values
    of each unbounded one, then larger valid sizes up to :data:`SPREAD` above the corner
    (multiples of 32, 16, 8 and their odd neighbours ``m·k ± 1``), alone and combined. The
    first ``n`` of these are the points inside. The points outside (at most ``2n``) are one
    below each minimal input and each lower edge, and one above each upper edge (the first
    value of an unbounded piece plus one), where the valid set excludes them. When the solver raises
    or answers by a flagged bounded scan, the sizes come from the domain alone
    (:func:`_domain_sizes`).

    >>> from symshape.trace import trace
    >>> from symshape.zoo import seed_case1
    >>> import torch.nn as nn
    >>> default_sizes(trace(seed_case1(), "1,3,H,W"), n=4)  # 3 minimal inputs, then edges; outside: 6 below, 2 above
    [{'H': 7, 'W': 343}, {'H': 31, 'W': 31}, {'H': 343, 'W': 7}, {'H': 8, 'W': 343}, {'H': 6, 'W': 343}, {'H': 7, 'W': 342}, {'H': 30, 'W': 31}, {'H': 31, 'W': 30}, {'H': 342, 'W': 7}, {'H': 343, 'W': 6}, {'H': 9, 'W': 343}, {'H': 7, 'W': 345}]
    >>> rep = trace(nn.Sequential(nn.MaxPool1d(4), nn.Unflatten(2, (-1, 2))), "1,4,L")
    >>> print(rep.valid_inputs())
    L ≡ 0 (mod 8), L ≥ 8 or L ≡ 1 (mod 8), L ≥ 9 or L ≡ 2 (mod 8), L ≥ 10 or L ≡ 3 (mod 8), L ≥ 11
    >>> default_sizes(rep, n=4)
    [{'L': 8}, {'L': 32}, {'L': 16}, {'L': 33}, {'L': 7}, {'L': 12}]
    """
    if rep.pieces:  # a piecewise report: each piece's sizes (inside it, on its edges, just outside)
        return list({tuple(sorted(p.items())): p for piece in rep.pieces for p in default_sizes(piece, n)}.values())
    syms = list(rep.symbols)
    try:
        valid = rep.valid_inputs() if syms else None
    except ShapeError:
        valid = None
    if valid is None or valid.note:
        return _domain_sizes(rep, n)
    if valid.is_empty:
        raise ShapeError(f"default_sizes found no size at which the model runs ({valid.reason}): "
                         f"pass sizes= explicitly")
    names = [s.name for s in valid.symbols]

    def full(p):  # a point of the free sizes -> all sizes (square answers tie some together)
        values = dict(zip(valid.free, p))
        return tuple(valid._tied(valid.ties.get(s, s), values) for s in valid.symbols)

    inside = [tuple(part.min() for part in box) for box in valid.minimal().boxes]
    edges: list = [[] for _ in valid.free]
    larger: list = [[] for _ in valid.free]
    outside = [(*p[:i], p[i] - 1, *p[i + 1:]) for p in inside for i in range(len(p))]
    for box in valid.boxes:
        corner = [part.min() for part in box]
        for i, part in enumerate(box):
            def at(v):
                return tuple(corner[:i] + [v] + corner[i + 1:])
            for lo, hi, m, _ in part.pieces:
                edges[i] += [at(lo), at(lo + m if hi is None else hi)]
                outside += [at(lo - 1), at((lo if hi is None else hi) + 1)]
            values = [v for v in range(corner[i], corner[i] + SPREAD + 1) if v in part]
            larger[i] += [at(v) for v in _picks(values, n)[1:]]
    mixes = [tuple(larger[i][k % len(larger[i])][i] for i in range(len(larger))) for k in range(n)
             if all(larger)] if len(larger) > 1 else []
    for group in (*itertools.zip_longest(*edges, *larger), mixes):
        inside += [p for p in group if p is not None and p not in inside and full(p) in valid]
    outside = [p for p in dict.fromkeys(outside) if min(p) >= 1 and full(p) not in valid]
    return [dict(zip(names, full(p))) for p in inside[:max(n, 1)] + outside[:2 * max(n, 1)]]


def _domain_sizes(rep, n: int = 6) -> list:
    """:func:`default_sizes` from the domain conditions alone, for domains the solver only scans.

    Uses only the domain conditions. Per symbol, the lower (upper) bound is the tightest
    ``X >= c`` (``X <= c``, ``X = c``) condition, else 1 (no upper bound). The other
    conditions (divisibility, a ``Linear`` that fixes a flatten size, ...) are met by
    scanning: first all symbols together up from their lower bounds (at most :data:`SCAN`
    steps), then, if that finds nothing, points in order of their total distance from the
    lower bounds (at most 20,000 points); then each symbol is lowered, the others fixed,
    to its smallest valid value (the *minimum input*). The search is bounded: a domain whose
    first valid point lies beyond it raises :class:`~symshape.ShapeError`; give sizes
    explicitly then.

    From the minimum input, each symbol's valid values up to :data:`SPREAD` above its
    minimum are scanned (others fixed) and a few picked: multiples of 32, 16, 8 and their
    neighbours ``m·k - 1`` and ``m·k + 1`` (where floors truncate), then the next values.
    The valid points are the minimum input, each symbol moved alone to its picks, and (for
    two or more symbols) the picks combined, straight and rotated, into rectangular sizes;
    every point is checked against the whole domain. The points just outside are, per
    symbol with the others at the minimum input: its minimum - 1 (when >= 1), the first
    invalid value above its minimum within the scan, and its upper bound + 1.

    >>> import torch.nn as nn
    >>> from symshape.trace import trace
    >>> from symshape.zoo import seed_case1
    >>> _domain_sizes(trace(seed_case1(), "1,3,H,W"), n=3)
    [{'H': 31, 'W': 31}, {'H': 32, 'W': 31}, {'H': 31, 'W': 32}, {'H': 30, 'W': 31}, {'H': 33, 'W': 31}, {'H': 31, 'W': 30}, {'H': 31, 'W': 33}]
    >>> rep = trace(nn.Sequential(nn.MaxPool1d(4), nn.Unflatten(2, (-1, 2))), "1,4,L")
    >>> rep.domain
    (L >= 4, floor(L/4) ≡ 0 (mod 2))
    >>> _domain_sizes(rep, n=4)
    [{'L': 8}, {'L': 32}, {'L': 33}, {'L': 16}, {'L': 7}, {'L': 12}]
    """
    syms = list(rep.symbols)
    if not syms:
        return [{}]
    lo, hi = {s: 1 for s in syms}, {s: None for s in syms}
    for cond in rep.domain:
        e = cond.expr
        if e.lhs.is_Symbol and e.lhs in lo and e.rhs.is_Integer if isinstance(e, sympy.Rel) else False:
            c = int(e.rhs)
            if isinstance(e, (sympy.Ge, sympy.Eq)):
                lo[e.lhs] = max(lo[e.lhs], c)
            if isinstance(e, (sympy.Le, sympy.Eq)):
                hi[e.lhs] = c if hi[e.lhs] is None else min(hi[e.lhs], c)
    tests = [_evaluator(c.expr) for c in rep.domain]

    def holds(point):
        values = {s: point[s] for s in syms}
        return all(t(values) for t in tests)

    def clip(s, v):
        return v if hi[s] is None else min(v, hi[s])

    base = next((p for p in ({s: clip(s, lo[s] + k) for s in syms} for k in range(SCAN)) if holds(p)), None)
    if base is None:
        base = next((p for p in _by_distance(syms, lo, hi, _JOINT_BUDGET) if holds(p)), None)
    if base is None:
        bounds = ", ".join(f"{s} >= {lo[s]}" for s in syms)
        raise ShapeError(f"default_sizes found no size inside the domain near its lower bounds ({bounds}): "
                         f"pass sizes= explicitly")

    def valid_values(s, point, start):
        stop = start + SPREAD if hi[s] is None else min(start + SPREAD, hi[s])
        return [v for v in range(start, stop + 1) if holds({**point, s: v})]

    for s in syms:  # lower each symbol to its smallest valid value, the others fixed
        base[s] = valid_values(s, base, lo[s])[0] if base[s] > lo[s] else base[s]
    picks = {s: _picks(valid_values(s, base, base[s]), n) for s in syms}

    singles = [[{**base, s: v} for v in picks[s][1:]] for s in syms]
    depth = min(len(p) for p in picks.values())
    mixes = [[{s: picks[s][(i + shift * k) % depth] for k, s in enumerate(syms)} for i in range(1, depth)]
             for shift in ((0, 1) if len(syms) > 1 else ())]
    chosen = [dict(base)]
    for group in itertools.zip_longest(*singles, *mixes):
        for point in group:
            if point is not None and point not in chosen and holds(point):
                chosen.append(point)
    chosen = chosen[:n]

    outside = []
    for s in syms:
        candidates = [base[s] - 1]
        above = next((v for v in range(base[s], base[s] + SPREAD + 1) if not holds({**base, s: v})), None)
        candidates += [above] if above is not None else []
        candidates += [hi[s] + 1] if hi[s] is not None else []
        for v in candidates:
            point = {**base, s: v}
            if v >= 1 and point not in outside and not holds(point):
                outside.append(point)
    return [{s.name: v for s, v in p.items()} for p in chosen + outside]


def _by_distance(syms, lo, hi, budget):
    """Points ``lo + k`` in order of ``sum(k)``, within the upper bounds, at most ``budget``."""
    free = [s for s in syms if hi[s] is None or hi[s] > lo[s]]
    count, total = 0, 0
    while count < budget:
        for ks in itertools.product(range(total + 1), repeat=len(free)):
            if sum(ks) != total:
                continue
            point = {s: lo[s] for s in syms}
            point.update({s: lo[s] + k for s, k in zip(free, ks)})
            if any(hi[s] is not None and point[s] > hi[s] for s in free):
                continue
            count += 1
            yield point
        total += 1
        if not free:
            return


def _picks(valid, n):
    """The smallest valid value, then multiples of 32, 16, 8 and their neighbours, then the rest."""
    if not valid:
        return []
    first, rest = valid[0], valid[1:]
    order = [first]
    for m in (32, 16, 8):
        for r in (0, m - 1, 1):
            v = next((v for v in rest if v % m == r), None)
            if v is not None and v not in order:
                order.append(v)
    order += [v for v in rest if v not in order]
    return order[:max(n, 2)]
