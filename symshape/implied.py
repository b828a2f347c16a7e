"""The domain as it binds: a condition that another condition of the domain implies is left out of
the report's domain (convnext's H >= 4, H >= 8 and H >= 16 under H >= 32; BatchNorm's more than one
value per channel at every stage under the one at the smallest map).

Each implication is shown exactly, or the condition stays: conditions of one size through their
period (:func:`~symshape.regions.holds_on`), products of sizes factor by factor (each factor of the
implied condition at least the implying one's, none negative).

>>> import sympy
>>> from symshape.symbols import symbols
>>> from symshape.floors import floor_div
>>> H, W = symbols("H W")
>>> implies(H >= 32, floor_div(H, 2) >= 8), implies(H >= 8, H >= 32)
(True, False)
>>> big = (floor_div(H - 1, 32) + 1) * (floor_div(W - 1, 32) + 1) >= 2
>>> implies(big, (floor_div(H - 1, 2) + 1) * (floor_div(W - 1, 2) + 1) >= 2)
True
"""
from __future__ import annotations

from functools import lru_cache

import sympy

from .decide import always_nonnegative
from .regions import factor_pairs, holds_on

__all__ = ["implies", "binding"]


@lru_cache(maxsize=16384)
def implies(a, b) -> bool:
    """Whether the relation *a* implies the relation *b* at every size (sizes >= 0); False where
    that is not shown."""
    if a == b:
        return True
    symbols = a.free_symbols
    if len(symbols) == 1 and symbols == b.free_symbols:
        (x,) = symbols
        return holds_on(b, [a], x, low=0) is True
    if isinstance(a, sympy.GreaterThan) and isinstance(b, sympy.GreaterThan) and a.rhs.is_number and b.rhs.is_number:
        return a.rhs >= b.rhs and _at_least(b.lhs, a.lhs)
    return False


def _at_least(big, small) -> bool:
    """Whether the product *big* is at least the product *small* at every size: factors paired by
    size, each of *big*'s at least its partner, which is never negative, and the coefficients too."""
    paired = factor_pairs(big, small)
    if paired is None:
        return False
    c, d, pairs = paired
    if not (c >= d > 0):
        return False
    for g, f in pairs:
        (x,) = f.free_symbols
        at_zero = {x: 0}
        if not (always_nonnegative(f) and always_nonnegative(g - f)):
            return False
        if f.subs(at_zero) < 0 or g.subs(at_zero) < f.subs(at_zero):  # always_nonnegative looks at sizes >= 1
            return False
    return True


def binding(conditions, keep=()) -> tuple:
    """*conditions* (domain Conditions) without those another kept one implies; the conditions in
    *keep* (a piece's branch) stay. Of two that imply each other, the later stays."""
    kept = list(conditions)
    for c in conditions:
        if any(c is k for k in keep):
            continue
        if any(d is not c and implies(d.expr, c.expr) for d in kept):
            kept = [d for d in kept if d is not c]
    return tuple(kept)
