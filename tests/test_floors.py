"""The floor algebra against plain integer arithmetic."""
import itertools
import math

import pytest
import sympy

from symshape.evaluate import substitute
from symshape.floors import canonical, ceil_div, floor_div, mod, scaled_floor, simplify_relation, smin
from symshape.symbols import symbols

H = symbols("H")
SIZES = range(1, 200)


def values(expr):
    """The exact values at every size: substitute's exact arithmetic (itself checked against
    sympy's subs in tests/test_evaluate.py), much faster than subs over 200 sizes."""
    return [int(substitute(expr, {H: h})) for h in SIZES]


def truth(rel):
    return [bool(substitute(rel, {H: h})) for h in SIZES]


@pytest.mark.parametrize("m1,e,m2", list(itertools.product([1, 2, 3, 4], [-5, -1, 0, 2, 7], [1, 2, 3, 5])))
def test_nested_floor_collapses_and_agrees(m1, e, m2):
    expr = floor_div(floor_div(H - 3, m1) + e, m2)
    assert len(expr.atoms(sympy.floor)) <= 1
    assert values(expr) == [((h - 3) // m1 + e) // m2 for h in SIZES]


@pytest.mark.parametrize("q,m,e", list(itertools.product([1, 2, 3, 4, 6], [2, 3, 4], [-3, 0, 5])))
def test_multiple_of_floor(q, m, e):
    expr = floor_div(q * floor_div(H + 1, 3) + e, m)
    assert values(expr) == [(q * ((h + 1) // 3) + e) // m for h in SIZES]


def test_three_maxpools_and_resnet_stem():
    assert floor_div(floor_div(floor_div(H, 2), 2), 2) == sympy.floor(H / 8)
    stem = floor_div(floor_div(H + 6 - 7, 2) + 1 + 2 - 3, 2) + 1
    assert values(stem) == [math.ceil(h / 4) for h in SIZES]
    assert len(stem.atoms(sympy.floor)) == 1


def test_ceil_mod_min_and_canonical():
    assert values(ceil_div(H - 3, 4)) == [math.ceil((h - 3) / 4) for h in SIZES]
    assert values(mod(-H, 7)) == [(-h) % 7 for h in SIZES]
    assert values(smin(floor_div(H + 1, 3), floor_div(H - 4, 3))) == [(h - 4) // 3 for h in SIZES]
    tower = sympy.floor(sympy.floor(sympy.ceiling(H / 2) / 3) / 5)
    assert values(canonical(tower)) == values(tower)
    assert len(canonical(tower).atoms(sympy.floor, sympy.ceiling)) == 1


@pytest.mark.parametrize("scale", [0.29, 0.7, 0.5, 1.5, 2.0, 0.3, 1.1, 2.5, 0.123])
def test_scaled_floor_matches_double_arithmetic(scale):
    assert values(scaled_floor(H, scale)) == [math.floor(float(h) * scale) for h in SIZES]


def test_scaled_floor_keeps_torch_double_rounding():
    # 10 * 0.7 is 7.0 in doubles though 0.7's exact binary value is below 0.7
    assert scaled_floor(10, 0.7) == 7 and math.floor(10 * sympy.Rational(0.7)) == 6
    assert scaled_floor(100, 0.29) == 28


@pytest.mark.parametrize("k,s,b,c,v", list(itertools.product([1, 3], [1, 2, 5], [-7, 0, 3], [-1, 1], [1, 4])))
def test_simplify_relation_is_exact(k, s, b, c, v):
    expr = k * floor_div(H + b, s) + c
    for rel in (sympy.Ge(expr, v), sympy.Le(expr, v)):
        simple = simplify_relation(rel)
        assert truth(simple) == truth(rel)
