"""Totals stay factored (issue 12: "products of sizes stay factored; no expansion of floor
products, anywhere"): the MACs, FLOPs, activations and memory of a report, and the tables' totals,
are sums of the layers' products as a paper writes them, never the expanded polynomial in the
floors, and never the number sympy distributes over a size (``120*L - 480`` for ``120*(L - 4)``).
Every form is checked equal to the plain sum of the layers' values, by expansion and at many sizes."""
import itertools

import pytest
import sympy
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st

import symshape as ss
from symshape import zoo
from symshape.forms import factored, factored_sum, scaled
from symshape.floors import floor_div
from symshape.symbols import parse_expr
from test_speed import TutorialNet

H, W, L, N = ss.symbols("H W L N")
CONV1D = nn.Sequential(nn.Conv1d(3, 8, 5), nn.MaxPool1d(2), nn.Conv1d(8, 8, 3, stride=2))
#: the peak of inference memory (a Max over every step) is checked on models of at most this many layers (seconds each)
SMALL = 30
REPORTS = {name: ss.trace(entry.factory(), entry.input) for name, entry in zoo.MODELS.items()}


def _line(rep, start):
    (line,) = [l for l in rep.summary(memory=torch.float32).splitlines() if l.startswith(start)]
    return line


def _same(a, b):
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


# --- the printed totals, before (expanded) and now ------------------------------------------------------
# Each case: a total as printed now, and as it printed before (the same value, expanded).
PRINTED = [
    ("seed_case1 saved", lambda: _line(REPORTS["seed_case1"], "saved"),
     "saved  12*H*W + 128*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) bytes for backward in training (fp32)",
     "saved  4*(3*H*W + 32*floor((H - 7)/2)*floor((W - 7)/2) + 32*floor((H - 7)/2) + 32*floor((W - 7)/2) + 32) "
     "bytes for backward in training (fp32)"),
    ("seed_case1 memory", lambda: ss.fmt(REPORTS["seed_case1"].memory().total),
     "12*H*W + 128*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) + 235344",
     "4*(3*H*W + 32*floor((H - 7)/2)*floor((W - 7)/2) + 32*floor((H - 7)/2) + 32*floor((W - 7)/2) + 42) + 235304"),
    ("tutorial saved", lambda: _line(ss.trace(TutorialNet(), "1,3,H,W"), "saved"),
     "saved  12*H*W + 24*(H - 4)*(W - 4) + 192*(floor(H/4) - 3)*(floor(W/4) - 3) + 64*(floor(H/2) - 6)*(floor(W/2) - 6)"
     " + 72*(floor(H/2) - 2)*(floor(W/2) - 2) + 816 bytes for backward in training (fp32)",
     "saved  4*(9*H*W - 24*H - 24*W + 48*floor(H/4)*floor(W/4) - 144*floor(H/4) + 34*floor(H/2)*floor(W/2) - "
     "132*floor(H/2) - 144*floor(W/4) - 132*floor(W/2) + 1380) bytes for backward in training (fp32)"),
    ("lenet5 saved", lambda: _line(REPORTS["lenet5"], "saved"),
     "saved  4*H*W + 24*(H - 4)*(W - 4) + 480*(floor(H/4) - 7)*(floor(W/4) - 7) + 64*(floor(H/4) - 3)*(floor(W/4) - 3)"
     " + 64*(floor(H/2) - 6)*(floor(W/2) - 6) + 24*(floor(H/2) - 2)*(floor(W/2) - 2) + 336 bytes for backward in "
     "training (fp32)",
     "saved  4*(7*H*W - 24*H - 24*W + 136*floor(H/4)*floor(W/4) - 888*floor(H/4) + 22*floor(H/2)*floor(W/2) - "
     "108*floor(H/2) - 888*floor(W/4) - 108*floor(W/2) + 6804) bytes for backward in training (fp32)"),
    ("conv1d MACs", lambda: _line(ss.trace(CONV1D, "1,3,L"), "MACs   "),
     "MACs   120*(L - 4) + 192*(floor((L - 10)/4) + 1)", "MACs   120*L + 192*floor((L - 10)/4) - 288"),
    ("conv1d layer MACs", lambda: _line(ss.trace(CONV1D, "1,3,L"), "2 "),
     "2      Conv1d     (1, 8, floor((L - 10)/4) + 1)     200  192*(floor((L - 10)/4) + 1)               "
     "32*(floor(L/2) - 2)  10/4/0",
     "2      Conv1d     (1, 8, floor((L - 10)/4) + 1)     200  192*floor((L - 10)/4) + 192          "
     "32*floor(L/2) - 64  10/4/0"),
    ("conv1d FLOPs", lambda: ss.fmt(ss.trace(CONV1D, "1,3,L").flops),
     "240*(L - 4) + 384*(floor((L - 10)/4) + 1)", "240*L + 384*floor((L - 10)/4) - 576"),
    ("conv1d activations", lambda: ss.fmt(ss.trace(CONV1D, "1,3,L").activations),
     "8*(L - 4) + 8*(floor(L/2) - 2) + 8*(floor((L - 10)/4) + 1)", "8*L + 8*floor(L/2) + 8*floor((L - 10)/4) - 40"),
    ("conv1d saved", lambda: _line(ss.trace(CONV1D, "1,3,L"), "saved"),
     "saved  12*L + 32*(L - 4) + 96*(floor(L/2) - 2) bytes for backward in training (fp32)",
     "saved  4*(11*L + 24*floor(L/2) - 80) bytes for backward in training (fp32)"),
    ("conv1d batch MACs", lambda: _line(ss.trace(CONV1D, "N,3,L"), "MACs   "),
     "MACs   N*(120*(L - 4) + 192*(floor((L - 10)/4) + 1))", "MACs   120*N*(L - 4) + 192*N*(floor((L - 10)/4) + 1)"),
    ("conv1d batch memory", lambda: ss.fmt(ss.trace(CONV1D, "N,3,L").memory().total),
     "N*(12*L + 32*(L - 4) + 96*(floor(L/2) - 2)) + 1312", "4*N*(11*L + 24*floor(L/2) - 80) + 1312"),
]


@pytest.mark.parametrize("what, now, printed, before", PRINTED, ids=[p[0] for p in PRINTED])
def test_totals_print_factored(what, now, printed, before):
    assert now() == printed
    if what != "conv1d layer MACs":  # the same value as the expanded form printed before
        strip = [("saved  ", ""), ("MACs   ", ""), (" bytes for backward in training (fp32)", "")]
        a, b = printed, before
        for old, new in strip:
            a, b = a.replace(old, new), b.replace(old, new)
        assert _same(parse_expr(a), parse_expr(b))


def test_the_tutorial_flatten_size_is_factored():
    rep = ss.trace(TutorialNet(), "1,3,H,W")
    assert ss.fmt(rep.layer("view").out_shape[1]) == "16*(floor(H/4) - 3)*(floor(W/4) - 3)"


# --- every total equals the plain sum of the layers' values ----------------------------------------------

def _points(rep, count=12):
    """*count* points of sizes from the domain's lowest sizes up (the formulas are compared there
    whether or not the model runs: a Linear after a flatten runs at one flatten size only)."""
    from symshape.decide import lower_bounds

    low = lower_bounds(rep.domain)
    names = sorted(rep.symbols, key=str)
    return [{s: low.get(s, 1) + step * (7 + k) + (step * step) % 5 for k, s in enumerate(names)}
            for step in range(count)]


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_every_zoo_total_equals_the_sum_of_its_layers(name):
    rep = REPORTS[name]
    plain_macs = sympy.Add(*(layer.macs for layer in rep.layers))
    plain_acts = sympy.Add(*(layer.activations for layer in rep.layers))
    assert _same(rep.macs, plain_macs) and _same(rep.flops, 2 * plain_macs) and _same(rep.activations, plain_acts)
    train = rep.memory(training=True)
    plain_saved = sympy.Add(*(b for _, _, b in train.layers))
    assert _same(train.activations, plain_saved)
    for point in _points(rep):
        assert sympy.sympify(rep.macs).xreplace(point) == plain_macs.xreplace(point)
        assert sympy.sympify(rep.flops).xreplace(point) == 2 * plain_macs.xreplace(point)
        assert sympy.sympify(rep.activations).xreplace(point) == plain_acts.xreplace(point)
        assert sympy.sympify(train.activations).xreplace(point) == plain_saved.xreplace(point)
    sizes = {k: v for k, v in zoo.MODELS[name].sizes.items() if k in {s.name for s in rep.symbols}}
    at, point = rep.at(**sizes), {s: sizes[s.name] for s in rep.symbols}
    assert sympy.sympify(rep.macs).xreplace(point) == at.macs and sympy.sympify(rep.flops).xreplace(point) == at.flops
    assert sympy.sympify(rep.activations).xreplace(point) == at.activations
    assert sympy.sympify(train.total).xreplace(point) == at.memory(training=True).total
    if len(rep.layers) <= SMALL:
        assert sympy.sympify(rep.memory().total).xreplace(point) == at.memory().total


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_no_zoo_total_expands_a_product_of_floors(name):
    """No term of a total is a lone floor of a product that the layers have as a product of two
    sizes: ``32*floor((H - 7)/2)*floor((W - 7)/2) + 32*floor((H - 7)/2) + ...`` is that expansion."""
    rep = REPORTS[name]
    mem = rep.memory(training=True)
    peak = (rep.memory().total,) if len(rep.layers) <= SMALL else ()
    for total in (rep.macs, rep.flops, rep.activations, mem.activations, *peak):
        total = sympy.sympify(total)
        for term in sympy.Add.make_args(total.args[0] if isinstance(total, sympy.Max) else total):
            factors = [f for f in sympy.Mul.make_args(term) if not f.is_Number]
            assert not (len(factors) == 1 and isinstance(factors[0], sympy.floor) and rep.symbols and
                        len(rep.symbols) > 1 and len(rep.input_shape) > 3), (name, ss.fmt(total))


# --- the algebra ---------------------------------------------------------------------------------------

def test_factored_takes_out_only_a_distributed_number():
    assert ss.fmt(factored(120 * L - 480)) == "120*(L - 4)"
    assert ss.fmt(factored(192 * floor_div(L - 10, 4) + 192)) == "192*(floor((L - 10)/4) + 1)"
    assert factored(64 * L ** 2 + 2048 * L) == 64 * L ** 2 + 2048 * L  # a polynomial, not a size: as it is
    assert factored(L - 4) == L - 4 and factored(7) == 7
    assert ss.fmt(scaled(2, factored(120 * L - 480) + 840)) == "240*(L - 4) + 1680"


def test_factored_sum_gathers_products_and_takes_out_common_factors():
    h, w = floor_div(H, 4), floor_div(W, 4)
    assert ss.fmt(factored_sum([24 * (H - 4) * (W - 4), 12 * (H - 4) * (W - 4), 5])) == "36*(H - 4)*(W - 4) + 5"
    assert ss.fmt(factored_sum([3 * N * h * w, 5 * N * H * W])) == "N*(5*H*W + 3*floor(H/4)*floor(W/4))"
    total = factored_sum([3 * h * w * H, 5 * h * w * W])
    assert ss.fmt(total) == "(3*H + 5*W)*floor(H/4)*floor(W/4)"
    assert ss.fmt(factored_sum([256 * L ** 2, 32768 * L])) == "256*L**2 + 32768*L"  # powers stay


SIZES = [L - 4, floor_div(L - 10, 4) + 1, floor_div(L, 2) - 2, L, N, floor_div(L + 1, 3) * floor_div(L, 5) + 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50), st.lists(st.sampled_from(SIZES), min_size=0, max_size=3)),
                min_size=1, max_size=6))
def test_factored_sum_is_the_same_value(terms):
    quantities = [sympy.expand(c * sympy.Mul(*fs)) * 1 for c, fs in terms]  # as sympy gives them: distributed
    total = factored_sum(quantities)
    assert _same(total, sympy.Add(*quantities))
    assert _same(scaled(3, total), 3 * sympy.Add(*quantities))
    for n, l in itertools.product((1, 2, 7), (10, 11, 29, 64)):
        assert sympy.sympify(total).xreplace({N: n, L: l}) == sympy.Add(*quantities).xreplace({N: n, L: l})
    assert parse_expr(ss.fmt(total)) == total  # the printed total parses back to the same expression


@pytest.mark.parametrize("tool, printed, before", [
    ("fvcore", "120*(L - 4) + 192*(floor((L - 10)/4) + 1)", "120*L + 192*floor((L - 10)/4) - 288"),
    ("ptflops", "144*(L - 4) + 200*(floor((L - 10)/4) + 1)", "144*L + 200*floor((L - 10)/4) - 376")])
def test_other_tools_counts_print_factored(tool, printed, before):
    rep = ss.trace(CONV1D, "1,3,L")
    count = rep.macs_as(tool)
    assert ss.fmt(count.total) == printed and _same(parse_expr(printed), parse_expr(before))
    for size in range(10, 80, 3):
        assert count.at({"L": size}) == int(sympy.Add(*(t for *_, t in count.layers)).xreplace({L: size}))
