"""The fast exact substitution behind Report.at gives exactly what sympy's subs gives."""
import pytest
import sympy

import symshape as ss
from symshape import zoo
from symshape.evaluate import evaluate, substitute
from symshape.floors import ceil_div, floor_div, mod, scaled_floor, smin

H, W = ss.symbols("H W")


def _all_exprs(rep):
    for layer in rep.layers:
        yield from layer.in_shape
        yield from layer.out_shape
        yield layer.macs
    for cond in rep.domain:
        yield cond.expr


@pytest.mark.parametrize("name,sizes", [("seed_case2", {H: 37, W: 33}), ("vgg11", {H: 67, W: 224}),
                                        ("alexnet", {H: 63})])
def test_report_at_equals_subs(name, sizes):
    entry = zoo.MODELS[name]
    rep = ss.trace(entry.factory(), entry.input)
    at = rep.at({s.name: v for s, v in sizes.items()})
    got = [e for e in _all_exprs(at)]
    want = [sympy.sympify(e).subs(sizes) for e in _all_exprs(rep)
            if not sympy.sympify(e).subs(sizes) is sympy.true]
    assert got == want
    assert at.symbols == tuple(s for s in rep.symbols if s not in sizes)


def test_every_node_kind_against_subs():
    exprs = [floor_div(3 * H - 7, 4) * W + 2, ceil_div(H, 3) ** 2, mod(H + W, 7), smin(floor_div(H, 2), W),
             sympy.Max(H - W, 1), scaled_floor(H, 0.7), scaled_floor(H, 0.29) + scaled_floor(W, 1.5),
             sympy.And(sympy.Ge(H, 3), sympy.Eq(sympy.Mod(W, 4), 0)), sympy.Lt(H, W) | sympy.Ne(H, 5), H / 4]
    for h in (1, 5, 10, 100):
        for w in (1, 4, 7):
            for e in exprs:
                assert substitute(e, {H: h, W: w}) == e.subs({H: h, W: w}), (e, h, w)
            for e in exprs:
                assert substitute(e, {H: h}) == e.subs({H: h}), (e, h)


def test_double_rounding_is_torchs():
    assert substitute(scaled_floor(H, 0.7), {H: 10}) == 7  # 10 * 0.7 == 7.0 in doubles
    assert evaluate(scaled_floor(H, 0.29), {H: 100}) == 28


# ------------------------------------------------------------------ compile_expr: the one evaluator

from fractions import Fraction  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

from symshape.decide import always_nonnegative  # noqa: E402

from symshape.forms import compact
from symshape.evaluate import UnsupportedExpression, compile_expr  # noqa: E402


def _exact(value):
    """A sympy value as the Python value compile_expr gives (bool, or an exact rational)."""
    if value is sympy.true or value is sympy.false:
        return bool(value)
    return Fraction(int(value.p), int(value.q))


NODES = [floor_div(3 * H - 7, 4) * W + 2, ceil_div(H, 3) ** 2, mod(H + W, 7), smin(floor_div(H, 2), W),
         sympy.Max(H - W, 1), sympy.Min(H, W, 9), scaled_floor(H, 0.7), scaled_floor(H, 0.29) + scaled_floor(W, 1.5),
         sympy.floor(sympy.sqrt(2) * 0 + H / 3 + W / 5), sympy.ceiling(H / 3) - sympy.ceiling(W / 2),
         sympy.floor(floor_div(H, 2) / 3), sympy.Mod(H * W, W + 1), H ** -2 * W, sympy.Rational(3, 4) * H * W * 2,
         sympy.And(sympy.Ge(H, 3), sympy.Eq(sympy.Mod(W, 4), 0)), sympy.Lt(H, W) | sympy.Ne(H, 5),
         sympy.Le(H, 4) & sympy.Gt(W, 2) & sympy.Ge(H + W, 6), sympy.Not(sympy.Ge(H, W)), H / 4,
         sympy.Integer(7), sympy.Rational(-5, 3), sympy.true, sympy.false]


def test_compile_every_node_kind_against_subs():
    for e in NODES:
        f = compile_expr(e)
        for h in (1, 2, 5, 10, 100):
            for w in (1, 4, 7, 33):
                assert f({H: h, W: w}) == _exact(e.subs({H: h, W: w})), (e, h, w)


def test_compile_agrees_with_substitute_on_zoo_reports():
    for name, sizes in [("seed_case2", {H: 37, W: 33}), ("vgg11", {H: 67, W: 224}), ("alexnet", {H: 230, W: 230})]:
        rep = ss.trace(zoo.MODELS[name].factory(), zoo.MODELS[name].input)
        point = {s: sizes[s] for s in rep.symbols}
        for e in _all_exprs(rep):
            e = sympy.sympify(e)
            assert compile_expr(e)(point) == _exact(substitute(e, point)), e


def test_compile_keeps_ints_ints():
    """The solver's periodicity test needs int results where the value is an integer by construction."""
    assert type(compile_expr(floor_div(H - 7, 2) * 32 + ceil_div(W, 3) - mod(H, 4))({H: 40, W: 9})) is int
    assert type(compile_expr(scaled_floor(H, 0.5) + sympy.Min(H, 3))({H: 9})) is int
    assert compile_expr(H / 4 + W / 2)({H: 3, W: 1}) == Fraction(5, 4)
    assert compile_expr(H ** -1)({H: 4}) == Fraction(1, 4)


def test_compile_double_rounding_is_torchs():
    # 0.7 is 0.6999999999999999555910790149937... in binary; torch's 10 * 0.7 is 7.0 in doubles
    assert compile_expr(scaled_floor(H, 0.7))({H: 10}) == 7
    assert compile_expr(scaled_floor(H, 0.29))({H: 100}) == 28
    assert compile_expr(sympy.floor(sympy.Rational(0.7) * H))({H: 10}) == 6


def test_compile_is_cached_and_refuses_unknown_nodes():
    e = floor_div(H, 8) + W
    assert compile_expr(e) is compile_expr(e)
    with pytest.raises(UnsupportedExpression) as err:
        compile_expr(floor_div(H, 2) + sympy.gamma(W))
    assert str(err.value) == "cannot evaluate gamma(W) exactly: unsupported function gamma"
    assert isinstance(err.value, ss.ShapeError) and isinstance(err.value, TypeError)
    with pytest.raises(UnsupportedExpression):
        compile_expr(sympy.sqrt(H))
    assert compile_expr(floor_div(H, 2) + sympy.gamma(W), fallback=True)({H: 9, W: 4}) == 10
    with pytest.raises(KeyError):
        compile_expr(H + W)({H: 1})


def test_decide_leaves_unknown_nodes_undecided():
    assert always_nonnegative(sympy.gamma(H) - 1) is None
    assert always_nonnegative(floor_div(H + 1, 2) - floor_div(H, 2)) is True
    assert compact(H - floor_div(H, 2)) == floor_div(H + 1, 2)


def test_a_product_of_sizes_is_bounded_below_by_its_factors_minima():
    """BatchNorm in training needs more than one value per channel: 2*(floor((W - 1)/8) + 1)*
    floor((H + 15)/16) >= 2 holds at every size (each factor is at least 1); a bound, so a sum it
    does not show non-negative stays undecided, never False."""
    bn = 2 * (floor_div(W - 1, 8) + 1) * floor_div(H + 15, 16) - 2
    assert always_nonnegative(bn) is True
    assert always_nonnegative(4 * floor_div(H + 15, 16) * floor_div(W + 15, 16) - 1) is True
    assert always_nonnegative(floor_div(H, 2) * W - 1) is None  # floor(1/2)*W = 0
    assert always_nonnegative(4 * floor_div(H + 15, 16) * floor_div(W + 15, 16) - 5) is None
    assert always_nonnegative(H * W - H) is None
    assert always_nonnegative(H * floor_div(W, 3) ** 2 + floor_div(H, 2)) is True
    for h in range(1, 40):
        for w in range(1, 40):
            assert bn.subs({H: h, W: w}) >= 0


_leaf = st.one_of(st.sampled_from([H, W]), st.integers(-9, 9).map(sympy.Integer))


def _grow(children):
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda p: p[0] + p[1]), pair.map(lambda p: p[0] * p[1]),
        st.tuples(children, st.integers(1, 7)).map(lambda p: sympy.floor(p[0] / p[1])),
        st.tuples(children, st.integers(1, 7)).map(lambda p: sympy.ceiling(p[0] / p[1])),
        st.tuples(children, st.integers(1, 7)).map(lambda p: sympy.Mod(p[0], p[1])),
        pair.map(lambda p: sympy.Min(*p)), pair.map(lambda p: sympy.Max(*p)),
        st.tuples(children, st.sampled_from([0.3, 0.5, 0.75, 1.5])).map(lambda p: scaled_floor(p[0], p[1])))


@settings(max_examples=150, deadline=None)
@given(st.recursive(_leaf, _grow, max_leaves=8), st.integers(1, 300), st.integers(1, 300))
def test_compile_random_trees_against_subs(e, h, w):
    assert compile_expr(e)({H: h, W: w}) == _exact(e.subs({H: h, W: w}))
