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
