"""Bad input never escapes raw: random bad specs, sizes, solve conditions and broken models fed to
trace, at, violations, solve and check give symshape.ShapeError (naming the layer where a layer is
involved), never another exception."""
import re

import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn

import symshape as ss

H, W = ss.symbols("H W")
GOOD = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
REP = ss.trace(GOOD, "1,3,H,W")
NAMES_A_LAYER = re.compile(r"layer '[^']*' \([\w.]+\)|the model \([\w.]+\)")
FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def only_shape_errors(fn):
    """Run fn; any exception must be a ShapeError. Returns its text, or None when fn succeeded."""
    try:
        fn()
    except ss.ShapeError as err:
        return str(err)
    return None


sizes_values = st.one_of(st.integers(-3, 40), st.integers(2 ** 62, 2 ** 70), st.floats(allow_nan=True),
                         st.text(max_size=4), st.none(), st.booleans(), st.just(sympy.Symbol("Q")),
                         st.just(sympy.Rational(1, 2)), st.just(sympy.oo))
size_dicts = st.one_of(
    st.dictionaries(st.sampled_from(["H", "W", "X", "", "h"]), sizes_values, max_size=4),
    st.integers(), st.text(max_size=6), st.lists(st.integers(), max_size=3), st.none())
dims = st.one_of(st.integers(-3, 12), st.sampled_from(["H", "W", "H+1", "2*H", "H*W", "H/2", "x", "", " ", "-H",
                                                       "1.5", "10**100", "__import__('os')", "H W", "é"]),
                 st.just(H), st.just(-H), st.just(H - W), st.just(sympy.Rational(3, 2)), st.just(sympy.oo),
                 st.just(sympy.nan), st.just(sympy.I), st.floats(allow_nan=True), st.none(), st.booleans())
specs = st.one_of(st.text(max_size=20), st.lists(dims, max_size=6).map(tuple), st.lists(dims, max_size=6),
                  st.lists(dims, max_size=6).map(lambda ds: ",".join(map(str, ds))), st.integers(), st.none())


@FAST
@given(specs)
def test_bad_specs_give_shape_errors(spec):
    only_shape_errors(lambda: ss.trace(GOOD, spec))


@FAST
@given(size_dicts)
def test_bad_sizes_give_shape_errors(sizes):
    only_shape_errors(lambda: REP.at(sizes))
    if isinstance(sizes, dict):
        only_shape_errors(lambda: REP.violations(**{str(k): v for k, v in sizes.items()}))
        if all(isinstance(v, int) and not isinstance(v, bool) and v < 10 ** 4 for v in sizes.values()):
            only_shape_errors(lambda: ss.check(GOOD, REP, sizes=[sizes]))
        else:  # a value torch cannot take is refused before anything runs
            text = only_shape_errors(lambda: ss.check(GOOD, REP, sizes=[sizes]))
            assert text is not None
    else:
        only_shape_errors(lambda: ss.check(GOOD, REP, sizes=sizes))


atoms = st.sampled_from([H, W, H + W, H * W, H / 2, sympy.floor(H / 3), sympy.Mod(H, 4), 1 / H, H ** 2,
                         sympy.Max(H, W), sympy.Integer(0), sympy.Integer(-4), sympy.Float(2.5),
                         sympy.Integer(10 ** 80 + 1), sympy.sin(H), sympy.oo, sympy.I])


def _relation(op, a, b):
    try:
        return op(a, b)
    except TypeError:  # sympy itself refuses H <= I
        return sympy.Eq(a, b)


relations = st.builds(_relation, st.sampled_from([sympy.Eq, sympy.Ne, sympy.Le, sympy.Gt]), atoms, atoms)
conditions = st.one_of(relations, st.lists(relations, max_size=3), st.text(max_size=8), st.none(), st.integers(),
                       st.just(H), st.sampled_from([sympy.true, sympy.false, sympy.Not(H > 3), sympy.Or(H > 3, W < 2)]),
                       st.lists(st.one_of(relations, st.text(max_size=3)), min_size=1, max_size=2))
overs = st.one_of(st.just((H, W)), st.just("H W"), st.just(H), st.none(), st.integers(), st.just([H, 3]),
                  st.just("H W ;"))
bounds = st.one_of(st.none(), st.just((1, 64)), st.just((5, 2)), st.just("x"), st.just({"H": (1, None)}),
                   st.just({"Z": (1, 5)}), st.just({"H": 3}), st.just((1.5, 2)), st.just((-5, None)))


@FAST
@given(conditions, overs, bounds)
def test_bad_solve_conditions_give_shape_errors(cond, over, bound):
    only_shape_errors(lambda: ss.solve(cond, over=over, bounds=bound))


class Raises(nn.Module):
    def __init__(self, exc):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.exc = exc

    def forward(self, x):
        x = self.conv(x)
        if x.shape[1] == 3:
            raise self.exc("broken forward")
        return x


class ReturnsNoTensor(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return self.value


def layers(c, rank):
    """Layers and the input they get: channels c and rank drawn, so that most do not fit."""
    return [nn.Conv2d(3, 4, 3), nn.Conv1d(2, 4, 3), nn.Linear(5, 2), nn.BatchNorm2d(3), nn.LayerNorm(7),
            nn.GroupNorm(2, 4), nn.Embedding(10, 3), nn.ConvTranspose2d(3, 2, 2), nn.LSTM(4, 3),
            nn.MultiheadAttention(8, 2), nn.PixelShuffle(2), nn.Unflatten(1, (2, 3)), nn.Bilinear(3, 3, 2),
            nn.Sequential(nn.Flatten(), nn.Linear(11, 2))]


@FAST
@given(st.integers(0, 13), st.integers(1, 9), st.integers(0, 6), st.booleans())
def test_wrong_channels_and_ranks_name_the_layer(which, c, rank, wrap):
    layer = layers(c, rank)[which]
    model = nn.Sequential(nn.Identity(), layer) if wrap else layer
    spec = ",".join(["1", str(c), *["H", "W", "D", "E", "F", "G"][:rank]])
    text = only_shape_errors(lambda: ss.trace(model, spec))
    if text is not None:
        assert NAMES_A_LAYER.search(text), text


@pytest.mark.parametrize("exc", [ValueError, KeyError, RuntimeError, IndexError, AssertionError, ZeroDivisionError,
                                 TypeError, NotImplementedError, AttributeError, StopIteration])
def test_a_forward_that_raises_names_the_model(exc):
    text = only_shape_errors(lambda: ss.trace(Raises(exc), "1,3,H,W"))
    assert text is not None and NAMES_A_LAYER.search(text), text
    res = ss.check(Raises(exc), REP, sizes=[{"H": 5, "W": 5}])  # checking is no error: torch raising is a finding
    assert not res.ok and "inside the domain, but torch raised in module '' (Raises)" in str(res.mismatches[0])


@pytest.mark.parametrize("value", [3, None, "out", 2.5, [1, "a"]])
def test_a_forward_that_returns_no_tensor_names_the_model(value):
    text = only_shape_errors(lambda: ss.trace(ReturnsNoTensor(value), "1,3,H,W"))
    assert text is not None and text.startswith("the model (ReturnsNoTensor) got input (1, 3, H, W): "), text


@pytest.mark.parametrize("args, message", [
    ((5, REP), "check() needs the torch.nn.Module that was traced, got int"),
    ((GOOD, "report"), "check() needs the report of trace(model, ...), got str"),
    ((GOOD, REP, 5), "check: sizes must be a list of dicts such as [{'H': 224}], got 5"),
    ((GOOD, REP, [5]), "check: each size must be a dict of the report's sizes, such as {'H': 224}, got 5"),
    ((GOOD, REP, [{"H": 2 ** 63, "W": 5}]), "check: torch cannot make an input of shape (1, 3, 9223372036854775808, 5) "
                                            "(a size beyond 2**63 - 1); check at smaller sizes"),
    ((GOOD, REP, [{"H": None, "W": 5}]), "size H must be a positive integer, got None"),
])
def test_check_refuses_arguments_of_the_wrong_kind(args, message):
    with pytest.raises(ss.ShapeError) as info:
        ss.check(*args)
    assert str(info.value) == message
    with pytest.raises(ss.ShapeError, match="check: n must be a positive integer, got 'x'"):
        ss.check(GOOD, REP, n="x")
    with pytest.raises(ss.ShapeError, match="check: device 'nope' is not a torch device"):
        ss.check(GOOD, REP, sizes=[{"H": 5, "W": 5}], device="nope")
    with pytest.raises(ss.ShapeError, match=r"sizes must map size names to positive integers \(such as \{'H': 224\}\), "
                                            r"got str 'H=3'"):
        REP.at("H=3")
    with pytest.raises(ss.ShapeError, match=r"over= must name the sizes to solve for"):
        ss.solve(H > 3, over=None)
    with pytest.raises(ss.ShapeError, match=r"bounds= must be \(lo, hi\) or \{name: \(lo, hi\)\}"):
        ss.solve(H > 3, over=H, bounds="x")
    assert tuple(torch.zeros(1, 3, 5, 5).shape) == (1, 3, 5, 5)
