"""Which size comparisons the domain collected so far decides, beyond its lower bounds: the executing
front end (execute.py) asks before it takes a branch at the typical size, since a branch taken
against the domain would leave it empty (a model that runs, reported as running nowhere) or be
refused as running both ways."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import sympy

__all__ = ["implied_by_domain"]


def _upper_bounded(rel, domain) -> bool:
    """Whether a domain inequality bounds a size of *rel* from above (``W <= 54``, ``2*H < W``): only
    then can the domain decide an inequality that its lower bounds leave open."""
    syms = rel.free_symbols
    for cond in domain:
        e = cond.expr
        if isinstance(e, (sympy.GreaterThan, sympy.StrictGreaterThan)) and e.rhs.free_symbols & syms:
            return True
        if isinstance(e, (sympy.LessThan, sympy.StrictLessThan)) and e.lhs.free_symbols & syms:
            return True
    return False


def implied_by_domain(rel, negation, tracer) -> Optional[bool]:
    """Whether the whole domain collected so far decides *rel*, else None: a one-size equation or
    disequation over its period (``h % 4`` after ``assert h % 8 == 0``), bounds on one expression
    (``2·(h + 1) == 76`` after ``h + 1 == 38``, ``h·w <= 1013`` after ``h·w <= 1005``), an
    inequality by the solver where the domain bounds a size from above (``if w <= 61`` after
    ``if w > 54: raise``).
    Without this the branch taken at the typical size could contradict the domain, which would
    then be empty: a model that runs, reported as running nowhere."""
    from .asymptotics import implied_periodically

    known = [c.expr for c in tracer.domain]
    if isinstance(rel, (sympy.Equality, sympy.Unequality)) and len(rel.free_symbols) == 1:
        if implied_periodically(rel, known):
            return True
        if isinstance(negation, (sympy.Equality, sympy.Unequality)) and implied_periodically(negation, known):
            return False
    spanned = _decided_by_spans(negation if isinstance(rel, sympy.Unequality) else rel, tracer.domain)
    if spanned is not None:  # bounds on one expression: ``if h * w <= 1013`` after ``h * w > 1005`` raised
        return spanned != isinstance(rel, sympy.Unequality)
    if _upper_bounded(rel, tracer.domain):
        from .solve.solver import feasible  # the solver's core: relations on sizes, no report

        if feasible(rel, known, why=False) is not None:  # whether, not why
            return False
        if feasible(negation, known, why=False) is not None:
            return True
    return None


_SPAN_KINDS = {sympy.GreaterThan: (0, 1), sympy.StrictGreaterThan: (1, 1), sympy.LessThan: (0, -1),
               sympy.StrictLessThan: (1, -1), sympy.Equality: (0, 0)}


@lru_cache(maxsize=65536)  # the domain's conditions are asked again at every branch
def _span(rel) -> Optional[tuple]:
    """``(e, lo, hi)`` when *rel* compares ``k·e`` (an integer-valued expression of sizes, its sign
    and factor normalized) with a number: it says ``lo <= e <= hi`` (None: no bound; ``lo > hi``:
    never), else None."""
    if type(rel) not in _SPAN_KINDS:
        return None
    strict, way = _SPAN_KINDS[type(rel)]
    c, e = (rel.lhs - rel.rhs).as_coeff_Add()  # way·(e + c) >= strict, or e + c = 0
    if not c.is_Rational or not e.free_symbols:
        return None
    k, e = sympy.factor_terms(e).as_coeff_Mul()
    if not k.is_Rational or k == 0 or not e.is_integer:
        return None
    if e.could_extract_minus_sign():
        e, k = -e, -k
    if k < 0:
        k, c, way = -k, -c, -way
    v = -c / k  # way·(e - v) >= strict / k
    if way == 0:
        return (e, v, v) if v.is_Integer else (e, 1, 0)
    if way > 0:
        return e, int(sympy.floor(v)) + 1 if strict else int(sympy.ceiling(v)), None
    return e, None, int(sympy.ceiling(v)) - 1 if strict else int(sympy.floor(v))


def _decided_by_spans(rel, domain) -> Optional[bool]:
    """Whether the domain's bounds on the expression that *rel* bounds decide it, else None."""
    span = _span(rel)
    if span is None:
        return None
    e, lo, hi = span
    if lo is not None and hi is not None and lo > hi:
        return False
    klo = khi = None
    for cond in domain:
        other = _span(cond.expr)
        if other is not None and other[0] == e:
            if other[1] is not None and (klo is None or other[1] > klo):
                klo = other[1]
            if other[2] is not None and (khi is None or other[2] < khi):
                khi = other[2]
    if (lo is None or (klo is not None and klo >= lo)) and (hi is None or (khi is not None and khi <= hi)):
        return True
    if (lo is not None and khi is not None and khi < lo) or (hi is not None and klo is not None and klo > hi):
        return False
    return None
