"""What one domain gives the tracer, computed once per exact domain: the lowest and highest size of
each symbol, what it fixes (pins), and the sizes simplified under it.

A forward that branches on the sizes is run many times (each path of a module call, each probe of
the other side of a branch, each piece), and every run reaches the same domains again. The facts
depend on nothing but the domain's expressions, so they are kept per tuple of expressions (exact
sympy equality: ``2`` and ``2.0`` are different keys) and shared by those runs.
"""
from __future__ import annotations

from functools import lru_cache

import sympy

from .decide import first_sizes, lower_bounds, under_bounds, upper_bounds
from .floors import finest_floor
from .monotone import implied_by_bounds
from .report import Shape

__all__ = ["DomainFacts", "facts", "simplified", "pinned_args"]


class DomainFacts:
    """The facts of the domain *exprs* (a tuple of relations), each computed when first asked.
    ``simplified``, ``pinned_args``, ``decided`` and ``required`` are the tracer's memos under
    this domain."""

    def __init__(self, exprs: tuple):
        self.exprs = exprs
        self._lows = self._highs = self._pins = self._pinned = None
        self.simplified: dict = {}  # size or relation -> Tracer.simplify of it
        self.pinned_args: dict = {}  # size -> Tracer._pin_args of it
        self.decided: dict = {}  # size comparison -> True / False where the domain decides it, else None
        self.required: dict = {}  # condition -> Tracer.require's verdict (None: holds, else what is added)

    def lows(self) -> dict:
        if self._lows is None:
            self._lows = first_sizes(self.exprs, lower_bounds(self.exprs))
        return self._lows

    def highs(self) -> dict:
        if self._highs is None:
            self._highs = upper_bounds(self.exprs)
        return self._highs

    def pins(self) -> dict:
        if self._pins is None:
            pins: dict = {}
            for e in self.exprs:
                found = None
                if isinstance(e, sympy.Equality):
                    for a, b in ((e.lhs, e.rhs), (e.rhs, e.lhs)):
                        if a.is_Symbol and b.is_Integer:
                            found = (a, b)
                    if found is None and len(e.free_symbols) == 1:
                        (s,) = e.free_symbols  # a linear equation in one size: H + 1 = 38 fixes H = 37
                        d = e.lhs - e.rhs
                        if d.is_polynomial(s) and sympy.degree(d, s) == 1:
                            value = -d.subs(s, 0) / d.coeff(s, 1)
                            if value.is_Integer:
                                found = (s, value)
                    found = found or finest_floor(e)
                if found is not None and found[0] not in pins:
                    key, value = found
                    pins = {k: v.xreplace({key: value}) for k, v in pins.items()}
                    pins[key] = value.xreplace(pins)
            self._pins = pins
        return self._pins

    def pinned(self) -> set:
        """The symbols that :meth:`pins` mentions."""
        if self._pinned is None:
            pins = self.pins()
            self._pinned = set().union(*(k.free_symbols for k in pins)) if pins else set()
        return self._pinned

    def simplify(self, value):
        """One size or relation with the pins put in, and Max/Min and disjunctions decided by the
        domain's bounds (see :meth:`~symshape.trace.Tracer.simplify`)."""
        pins = self.pins()
        if pins and isinstance(value, sympy.Basic) and not value.free_symbols.isdisjoint(self.pinned()):
            for _ in range(3):  # a floor put in may rebuild into another pinned one
                before, value = value, value.xreplace(pins)
                if value == before:
                    break
        if isinstance(value, sympy.Basic) and value.has(sympy.Max, sympy.Min, sympy.Or):
            return under_bounds(value, self.lows(), _proves, self.highs())
        return value


def _proves(diff, lows) -> bool:
    """``diff >= 0`` at every size at or above *lows*, shown by monotonicity (products of sizes)."""
    return implied_by_bounds(sympy.Ge(diff, 0), lows)


def simplified(value, known):
    """:meth:`~symshape.trace.Tracer.simplify` under the domain facts *known* (kept there per size)."""
    if isinstance(value, (tuple, list)):
        return type(value)(simplified(v, known) for v in value) if not isinstance(value, Shape) else \
            Shape(simplified(v, known) for v in value)
    if not isinstance(value, sympy.Basic):
        return value
    memo = known.simplified
    if value not in memo:
        memo[value] = known.simplify(value)
    return memo[value]


def pinned_args(value, known, pinned: set):
    """:meth:`~symshape.trace.Tracer._pin_args` under the domain facts *known*, whose pins mention *pinned*."""
    if isinstance(value, sympy.Basic):
        memo = known.pinned_args
        if value not in memo:
            memo[value] = simplified(value, known) if not value.free_symbols.isdisjoint(pinned) else value
        return memo[value]
    if type(value) is Shape:  # kept per shape (by its type and sizes: a tuple that equals it is another key)
        memo = known.pinned_args
        key = (Shape, value)
        got = memo.get(key, _UNKNOWN)
        if got is _UNKNOWN:
            items = [pinned_args(v, known, pinned) for v in value]
            got = memo[key] = _SAME if all(a is b for a, b in zip(items, value)) else Shape(items)
        return value if got is _SAME else got
    if isinstance(value, Shape) or type(value) in (tuple, list):
        items = [pinned_args(v, known, pinned) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return Shape(items) if isinstance(value, Shape) else type(value)(items)
    if type(value) is dict:
        items = {k: pinned_args(v, known, pinned) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    return value


_UNKNOWN = object()  # nothing kept yet
_SAME = object()  # a shape that the pins leave as it is


@lru_cache(maxsize=2048)
def facts(exprs: tuple) -> DomainFacts:
    """The :class:`DomainFacts` of the domain whose conditions' expressions are *exprs*."""
    return DomainFacts(exprs)
