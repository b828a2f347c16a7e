"""regions.holds_on against evaluation size by size, on random one-size formulas with floor,
ceiling and Mod (the algebra that decides whether two paths of a forward are one)."""
import random

import pytest
import sympy

from symshape.evaluate import compile_expr
from symshape.floors import floor_div
from symshape.regions import growth, holds_on
from symshape.symbols import size_symbol

X = size_symbol("X")
RELATIONS = [sympy.Eq, sympy.Ge, sympy.Le, sympy.Ne, sympy.Gt, sympy.Lt]


def _formula(rng, depth=0):
    k = rng.randint(0, 5 if depth < 2 else 1)
    if k == 0:
        return X + rng.randint(-5, 5)
    if k == 1:
        return sympy.Integer(rng.randint(-3, 9))
    if k == 2:
        return floor_div(_formula(rng, depth + 1), rng.randint(1, 9))
    if k == 3:
        return sympy.Mod(_formula(rng, depth + 1), rng.randint(1, 9))
    if k == 4:
        return rng.randint(-2, 3) * _formula(rng, depth + 1) + _formula(rng, depth + 1)
    return sympy.ceiling(_formula(rng, depth + 1) / rng.randint(1, 5))


@pytest.mark.parametrize("seed", range(4))
def test_holds_on_agrees_with_every_size(seed):
    rng = random.Random(seed)
    decided = 0
    for _ in range(60):
        rel = rng.choice(RELATIONS)(_formula(rng), _formula(rng))
        region = [rng.choice(RELATIONS)(_formula(rng), _formula(rng)) for _ in range(rng.randint(0, 2))]
        if any(r in (sympy.true, sympy.false) for r in (rel, *region)):
            continue
        answer = holds_on(rel, region, X)
        if answer is None:
            continue
        decided += 1
        truth = all(_at(rel, v) for v in range(1, 1500) if all(_at(r, v) for r in region))
        assert answer == truth, (rel, region)
    assert decided >= 10


def _at(rel, v):
    return bool(type(rel)(compile_expr(rel.lhs)({X: v}), compile_expr(rel.rhs)({X: v})))


def test_growth_of_nested_floors_and_mods():
    assert growth(floor_div(floor_div(X - 1, 8) + 1, 7), X) == (56, 1)
    assert growth(X + sympy.Mod(7 - sympy.Mod(X, 7), 7), X) == (7, 7)
    assert growth(X * X, X) is None and growth(sympy.Max(X, 3), X) is None


def test_a_region_that_ends_is_checked_to_its_end():
    # floor(X/16) = 16 is 256 <= X <= 271: X = 2*floor((X + 1)/2) holds there only at even X
    assert holds_on(sympy.Eq(2 * floor_div(X + 1, 2), X), [sympy.Eq(floor_div(X, 16), 16)], X) is False
    assert holds_on(sympy.Eq(2 * floor_div(X + 1, 2), X), [sympy.Eq(floor_div(X, 16), 16),
                                                          sympy.Eq(sympy.Mod(X, 2), 0)], X) is True
