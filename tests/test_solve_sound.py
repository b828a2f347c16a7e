"""The solver never answers wrong: random conditions with huge constants (up to 10**60), each
answer checked against exact evaluation (plain Python integers, not the solver's evaluator) at
points inside it, on its edges and just outside it."""
import random

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symshape as ss
from symshape.floors import floor_div
from symshape.symbols import symbols

H, W = symbols("H W")
BIG = 10 ** 60

consts = st.one_of(st.integers(0, 50), st.integers(0, BIG), st.sampled_from([10 ** k for k in range(0, 61, 5)]))
RELS = {"<=": (lambda a, b: a <= b, lambda a, b: a <= b), ">=": (lambda a, b: a >= b, lambda a, b: a >= b),
        "<": (lambda a, b: a < b, lambda a, b: a < b), ">": (lambda a, b: a > b, lambda a, b: a > b),
        "==": (lambda a, b: sympy.Eq(a, b), lambda a, b: a == b), "!=": (lambda a, b: sympy.Ne(a, b), lambda a, b: a != b)}


@st.composite
def term(draw, x):
    """A monotone non-decreasing term in x: (sympy expression, python function of the size)."""
    kind = draw(st.sampled_from(["poly", "floor", "floorprod", "scaled"]))
    if kind == "poly":
        k = draw(st.integers(1, 4))
        a = draw(st.integers(1, 10 ** draw(st.sampled_from([0, 3, 20]))))
        b = draw(st.integers(0, 1000))
        return a * x ** k + b * x, (lambda v, a=a, b=b, k=k: a * v ** k + b * v)
    if kind == "floor":
        a, b, m = draw(st.integers(1, 7)), draw(st.integers(-20, 20)), draw(st.integers(1, 10 ** draw(st.sampled_from([1, 30]))))
        return floor_div(a * x + b, m), (lambda v, a=a, b=b, m=m: (a * v + b) // m)
    if kind == "floorprod":
        m1, m2, c = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 5))
        return (floor_div(x, m1) + 1) * (floor_div(x + c, m2) + c), (
            lambda v, m1=m1, m2=m2, c=c: (v // m1 + 1) * ((v + c) // m2 + c))
    k = draw(st.integers(1, 3))
    return floor_div(3 * x ** k, 2), (lambda v, k=k: 3 * v ** k // 2)


@st.composite
def one_size(draw):
    n = draw(st.integers(1, 2))
    parts = [draw(term(H)) for _ in range(n)]
    expr = sum((p[0] for p in parts), sympy.Integer(0))
    rel = draw(st.sampled_from(sorted(RELS)))
    value = draw(consts)
    if rel in ("==", "!="):  # aim at a value the expression takes
        value = sum(p[1](draw(st.integers(1, 10 ** draw(st.sampled_from([2, 15])))) ) for p in parts)
    make, check = RELS[rel]
    fn = lambda v: check(sum(p[1](v) for p in parts), value)  # noqa: E731
    return make(expr, value), fn


def probes(answer, fixed=()):
    """Points to test: every piece's ends and their neighbours, random points inside, big sizes."""
    rng = random.Random(0)
    points = {1, 2, 3, 10 ** 20, 10 ** 61, 2 ** 62, 2 ** 62 + 1}
    for box in answer.boxes:
        for lo, hi, m, _ in box[0].pieces:
            points |= {lo - 1, lo, lo + 1, lo + m}
            if hi is not None:
                points |= {hi - 1, hi, hi + 1, rng.randint(lo, hi)}
            else:
                points |= {lo + 10 ** 30, lo * 2 ** 80 + 7}
    return sorted(p for p in points if p >= 1)


def agrees(answer, fn, points):
    for v in points:
        if answer.scanned and v > answer.scanned[H]:
            with pytest.raises(ss.ShapeError, match="scanned only up to a bound"):
                v in answer  # noqa: B015
            continue
        assert (v in answer) == fn(v), (str(answer), v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_size())
def test_one_size_answers_are_exact(case):
    cond, fn = case
    answer = ss.solve(cond, over=H)
    assert not answer.scanned, str(answer)  # monotone terms are always solved exactly
    agrees(answer, fn, probes(answer))
    if answer.is_empty:
        assert "no solution" in str(answer)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_size(), one_size())
def test_two_conditions_together(a, b):
    answer = ss.solve([a[0], b[0]], over=H)
    agrees(answer, lambda v: a[1](v) and b[1](v), probes(answer))


@st.composite
def two_sizes(draw):
    m1, m2 = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    c1, c2 = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    expr = (floor_div(H, m1) + c1 + 1) * (floor_div(W, m2) + c2 + 1)
    f = lambda h, w: (h // m1 + c1 + 1) * (w // m2 + c2 + 1)  # noqa: E731
    rel = draw(st.sampled_from(["<=", ">=", "=="]))
    value = draw(st.one_of(st.integers(1, 400), st.integers(1, BIG)))
    tie = draw(st.sampled_from(["none", "square", "shift"]))
    make, check = RELS[rel]
    conds = [make(expr, value)]
    if tie == "square":
        conds.append(sympy.Eq(H, W))
    elif tie == "shift":
        conds.append(sympy.Eq(H - W, 3))
    ok = {"none": lambda h, w: True, "square": lambda h, w: h == w, "shift": lambda h, w: h - w == 3}[tie]
    return conds, (lambda h, w: check(f(h, w), value) and ok(h, w))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_sizes())
def test_two_size_answers_are_exact_or_refused(case):
    conds, fn = case
    try:
        answer = ss.solve(conds, over=(H, W))
    except ss.ShapeError as err:
        assert "staircase with more than" in str(err)
        return
    assert not answer.scanned
    rng = random.Random(1)
    points = set()
    for box in answer.boxes:
        ends = []
        for part in box:
            lo, hi = part.min(), part.max()
            ends.append({lo - 1, lo, lo + 1} | ({hi, hi + 1} if hi is not None else {lo + 10 ** 25}))
        if answer.ties:
            (tie,) = answer.ties.values()
            points |= {(h, int(tie.xreplace({H: h}))) for h in ends[0]} | {(h, int(tie.xreplace({H: h})) + 1)
                                                                            for h in ends[0]}
        else:
            points |= {(h, w) for h in ends[0] for w in ends[1]}
    points |= {(rng.randint(1, 500), rng.randint(1, 500)) for _ in range(20)}
    for h, w in points:
        if h >= 1 and w >= 1:
            assert ((h, w) in answer) == fn(h, w), (str(answer), h, w)
