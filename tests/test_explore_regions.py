"""The reading of a region of one size (regions.py, used by explore.py): which sizes it allows (finitely many or not), and
whether a relation holds at each of them, checked against every size up to the scan."""
from typing import Optional

import sympy
from hypothesis import given, settings, strategies as st

from symshape.explore import _holds_one
from symshape.floors import floor_div
from symshape.regions import SCAN as _SCAN, allowed_sizes as _allowed, bounding as _bounding, holds_on, point_test
from symshape.symbols import size_symbol

W = size_symbol("W")
_OPS = (sympy.Eq, sympy.Ne, sympy.Ge, sympy.Le, sympy.Gt, sympy.Lt)


def test_a_relation_bounds_the_sizes_where_its_sides_drift_apart_and_it_asks_them_not_to():
    assert [_bounding(r, W) for r in (W <= 508, W >= 5, sympy.Eq(floor_div(W, 16), 64),
                                      sympy.Ne(floor_div(W, 16), 64), sympy.Eq(sympy.Mod(W, 4), 0),
                                      floor_div(W, 32) >= floor_div(W, 16), -W > -3)] == [
        True, False, True, False, False, True, True]


def test_the_sizes_a_region_allows():
    pinned = (sympy.Eq(floor_div(W, 16), 64),)
    assert _allowed(pinned, W) == tuple(range(1024, 1040))
    assert _allowed((W >= 8, W <= 15), W) == tuple(range(8, 16))
    assert _allowed((sympy.Eq(sympy.Mod(W, 4), 0),), W) is None  # every fourth size: not finitely many
    assert _allowed((W >= 5000,), W) is None


def test_a_relation_that_is_not_periodic_is_read_at_each_size_of_a_bounded_region():
    """Min(8, W) has no period; where the region leaves 8..15, it is 8*floor(W/8) at each of them."""
    assert _holds_one(sympy.Eq(sympy.Min(8, W), 8 * floor_div(W, 8)), (W <= 15, W >= 8), W) is True
    assert _holds_one(sympy.Eq(sympy.Min(8, W), 8 * floor_div(W, 8)), (W <= 15, W >= 7), W) is False


_relation = st.builds(lambda op, a, m, b, c: op(a * floor_div(W + b, m) - W, c) if a else op(W, c),
                      st.sampled_from(_OPS), st.integers(0, 3), st.integers(1, 40), st.integers(-5, 5),
                      st.integers(-300, 300))


def _scan(region) -> Optional[tuple]:
    """The plain reading: every size up to the scan, then the region shown bounded by the last one."""
    tests = [point_test(r) for r in region]
    allowed = tuple(v for v in range(1, _SCAN + 1) if all(t({W: v}) for t in tests))
    if not allowed or holds_on(sympy.Le(W, allowed[-1]), list(region), W) is not True:
        return None
    return allowed


@settings(max_examples=300, deadline=None)
@given(st.lists(_relation, min_size=1, max_size=3))
def test_the_allowed_sizes_are_those_of_the_plain_scan(region):
    """_allowed skips the scan where no relation bounds the sizes and scans a stretch at a time:
    the same answer as evaluating every size, and where it finds finitely many, no size past the
    scan is allowed."""
    region = tuple(r for r in region if r not in (sympy.true, sympy.false))
    if not region:
        return
    found = _allowed(region, W)
    assert found == _scan(region)
    if found is not None:
        tests = [point_test(r) for r in region]
        assert not any(all(t({W: v}) for t in tests) for v in range(_SCAN + 1, 3 * _SCAN))


def test_feasible_says_whether_before_why():
    """The tracer's question on a path being explored (its message unread) skips the search for the
    condition that makes the sizes empty."""
    from symshape.solve.solver import feasible

    flat = 32 * (floor_div(W - 7, 2) + 1)
    assert feasible(sympy.Eq(flat, 5400), [W >= 7], why=False) == "no size satisfies these conditions together"
    assert feasible(sympy.Eq(flat, 5400), [W >= 7]) == (
        "the condition needs 32*floor((W - 7)/2) + 32 = 5400, which no positive size satisfies")
    assert feasible(sympy.Eq(flat, 5408), [W >= 7], why=False) is None


def test_parameters_read_in_a_forward_traced_through_are_the_nodes_fx_makes():
    """GraphTracer finds a parameter read by identity in a table made once per trace (fx searches
    every parameter at each read); the graph is the one fx makes."""
    import torch
    import torch.fx as fx
    import torch.nn as nn

    from symshape.graph import GraphTracer

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(4))
            self.inner = nn.Linear(4, 4)

        def forward(self, x):
            return self.inner(x) * self.gamma + self.gamma * self.inner.bias

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Scaled()
            self.b = self.a  # shared: fx names it by its first path

        def forward(self, x):
            return self.b(self.a(x))

    ours = GraphTracer().trace(Twice())
    theirs = fx.Tracer().trace(Twice())
    assert [n.target for n in ours.nodes if n.op == "get_attr"] == [n.target for n in theirs.nodes if n.op == "get_attr"]
    assert {n.target for n in ours.nodes if n.op == "get_attr"} == {"a.gamma", "a.inner.bias"}
