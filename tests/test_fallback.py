"""The fallback for ops with no shape rule (symshape/fallback.py): torch's meta kernel run on
symbolic sizes, compared with torch itself (meta device, FlopCounterMode) inside and outside the
domain it gives, through both front ends."""
import itertools

import pytest
import sympy
import torch
import torch.nn as nn

import symshape as ss
from symshape.rules.registry import rule_for
from torch_ref import torch_shape_and_macs

H, W, L = ss.symbols("H W L")


class Op(nn.Module):
    """A module whose forward is one call, ``fn(x)``; with ``branch``, a Python ``if`` on a size
    first, so that the executing front end runs it instead of torch.fx."""

    def __init__(self, fn, branch=False, weight=None):
        super().__init__()
        self.fn, self.branch = fn, branch
        if weight is not None:
            self.weight = nn.Parameter(torch.zeros(weight))
        self.register_buffer("index", torch.tensor([0, 0, 1]))

    def forward(self, x):
        if self.branch and x.shape[-1] > 0:
            x = x * 1
        return self.fn(self, x)


#: (name, function of (module, x), input spec, its symbols, no rule for these)
CASES = [
    ("diff", lambda m, x: torch.diff(x, n=2), "2,L", "L", [torch.diff]),
    ("rot90", lambda m, x: torch.rot90(x), "2,3,H,W", "HW", [torch.rot90]),
    ("cartesian_prod", lambda m, x: torch.cartesian_prod(x, x), "L", "L", [torch.cartesian_prod]),
    ("cdist", lambda m, x: torch.cdist(x, x), "2,L,8", "L", [torch.cdist]),
    ("block_diag", lambda m, x: torch.block_diag(x, x.t()), "H,W", "HW", [torch.block_diag]),
    ("tril", lambda m, x: torch.tril(x, -1), "H,W", "HW", [torch.tril]),
    ("outer", lambda m, x: torch.outer(x, x), "L", "L", [torch.outer]),
    ("diag", lambda m, x: torch.diag(x), "L", "L", [torch.diag]),
    ("diagonal", lambda m, x: torch.diagonal(x, 1), "H,W", "HW", [torch.diagonal]),
    ("inner", lambda m, x: torch.inner(x, x), "H,W", "HW", [torch.inner]),
    ("atleast_3d", lambda m, x: torch.atleast_3d(x), "L", "L", [torch.atleast_3d]),
    ("tensordot", lambda m, x: torch.tensordot(x, m.weight, dims=1), "H,8", "H", [torch.tensordot]),
    ("logcumsumexp", lambda m, x: torch.logcumsumexp(x, 1), "2,L", "L", [torch.logcumsumexp]),
    ("cummax", lambda m, x: torch.cummax(x, 1)[0], "2,L", "L", [torch.cummax]),
    ("fliplr", lambda m, x: torch.fliplr(x), "H,W", "HW", [torch.fliplr]),
    ("Tensor.diagonal", lambda m, x: x.diagonal(-1), "H,W", "HW", ["diagonal"]),
    ("Tensor.index_select", lambda m, x: x.index_select(1, m.index), "3,L", "L", ["index_select"]),
    ("kron", lambda m, x: torch.kron(x, x), "2,L", "L", [torch.kron]),
    ("vander", lambda m, x: torch.vander(x), "L", "L", [torch.vander]),
]
WEIGHTS = {"tensordot": (8, 5)}

SIZES = (1, 2, 3, 5, 25, 26, 31, 224)


def _points(symbols):
    for values in itertools.product(SIZES, repeat=len(symbols)):
        if len(symbols) == 1 or values[0] in (1, 2, 26, 224) or values[1] in (1, 2, 26, 224):
            yield dict(zip(symbols, values))


@pytest.mark.parametrize("branch", [False, True], ids=["fx", "executor"])
@pytest.mark.parametrize("name, fn, spec, symbols, ops", CASES, ids=[c[0] for c in CASES])
def test_fallback_agrees_with_torch(name, fn, spec, symbols, ops, branch):
    assert all(rule_for(op) is None for op in ops), f"{name} has a rule now: pick another op for this test"
    model = Op(fn, branch, WEIGHTS.get(name))
    rep = ss.trace(model, spec)
    used = [layer for layer in rep.layers if layer.attrs.get("fallback") == "meta"]
    assert used, f"{name}: no layer used the fallback"
    dims = [d.strip() for d in spec.split(",")]
    inside = 0
    for point in _points(symbols):
        shape = [int(d) if d.isdigit() else point[d] for d in dims]
        got, macs = torch_shape_and_macs(model, shape)
        failed = rep.violations(**point)
        values = rep.values(point)
        if not failed:
            inside += 1
            assert not isinstance(got, Exception), f"{name} at {point}: symshape says it runs, torch raises {got}"
            assert tuple(rep.output_shape.subs(values)) == got, f"{name} at {point}"
            assert sympy.sympify(rep.macs).subs(values) == macs, f"{name} at {point}: MACs"
        elif not isinstance(got, Exception):
            # outside, where torch runs: its kernel takes another path there, and the formula is not its answer
            formula = tuple(rep.output_shape.subs(values))
            assert formula != got or sympy.sympify(rep.macs).subs(values) != macs, \
                f"{name} at {point}: {failed} excludes a size where the formula holds"
    assert inside, f"{name}: no sampled size inside the domain"


@torch.fx.wrap
def grid(h, w):
    """A position grid built from sizes only (timm's _build_grid): torch.fx keeps it as one call."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([ys, xs]).float()


class Grid(nn.Module):
    def __init__(self, branch=False):
        super().__init__()
        self.branch = branch

    def forward(self, x):
        if self.branch and x.shape[-1] > 0:
            x = x * 1
        return x + grid(x.shape[2], x.shape[3])


@pytest.mark.parametrize("branch", [False, True], ids=["fx", "executor"])
def test_a_helper_of_sizes_runs(branch):
    rep = ss.trace(Grid(branch), "1,2,H,W")
    assert rep.output_shape == (1, 2, H, W)
    # the helper runs as written on stand-ins (its torch calls get symshape's rules, named after it)
    assert any(layer.kind == "meshgrid" for layer in rep.layers)
    for h, w in [(1, 1), (2, 2), (4, 6), (5, 9), (9, 4)]:
        got, macs = torch_shape_and_macs(Grid(branch), [1, 2, h, w], device="cpu")
        if rep.violations(H=h, W=w):
            assert isinstance(got, Exception), (h, w, rep.violations(H=h, W=w))
        else:
            assert tuple(rep.output_shape.subs(rep.values({"H": h, "W": w}))) == got, (h, w)


def test_exact_formulas():
    def trace(fn, spec, weight=None):
        return ss.trace(Op(fn, weight=weight), spec)

    rep = trace(lambda m, x: torch.diff(x, n=2), "2,L")
    assert rep.output_shape == (2, L - 2)
    # at L = 1 torch gives (2, 0), not L - 2: the formula holds where torch's kernel took this path
    assert [str(c) for c in rep.domain] == ["L >= 2  [layer 'diff' (diff): torch's meta kernel for torch.diff "
                                            "assumes L ≥ 2]"]
    # torch's cdist takes matrix products for more than 25 rows, another kernel below: the same
    # sizes and MACs on both sides (torch's kernel run with a hint below 26 shows it), so no condition
    rep = trace(lambda m, x: torch.cdist(x, x), "2,L,8")
    assert rep.output_shape == (2, L, L) and not rep.domain
    rep = trace(lambda m, x: torch.block_diag(x, x.t()), "H,W")
    assert rep.output_shape == (H + W, H + W) and not rep.domain
    rep = trace(lambda m, x: torch.cartesian_prod(x, x), "L")
    assert rep.output_shape == (L ** 2, 2) and not rep.domain  # a size-1 broadcast check, verified at L = 1
    rep = trace(lambda m, x: torch.diagonal(x, 1), "H,W")
    assert rep.output_shape == (sympy.Min(H, W - 1),) and not rep.domain
    rep = trace(lambda m, x: torch.tensordot(x, m.weight, dims=1), "H,8", weight=(8, 5))
    assert rep.output_shape == (H, 5) and rep.macs == 40 * H
    rep = trace(lambda m, x: torch.kron(x, x), "2,L")  # torch's kernel reads the sizes as numbers
    assert rep.output_shape == (4, 224 ** 2)
    assert [str(c) for c in rep.domain] == ["L = 224  [layer 'kron' (kron): torch's meta kernel for aten.size "
                                            "assumes L = 224]"]


def test_the_report_marks_the_fallback():
    rep = ss.trace(Op(lambda m, x: torch.rot90(x)), "2,3,H,W")
    layer = rep.layer("rot90")
    assert layer.attrs["fallback"] == "meta" and rep.output_shape == (3, 2, H, W)
    lines = rep.summary().splitlines()
    assert lines[3].split() == ["rot90", "rot90*", "(3,", "2,", "H,", "W)", "0", "0"]
    assert lines[5] == ("* no symshape rule: formula from torch's meta kernel run on symbolic sizes "
                         "(symshape.fallback)")
    markdown = rep.to_markdown()
    assert "| rot90\\* |" in markdown and "\\* no symshape rule: formula from torch's meta kernel" in markdown
    plain = ss.trace(nn.Sequential(nn.ReLU()), "2,3,H,W").summary()
    assert "*" not in plain and "meta kernel" not in plain


@pytest.mark.parametrize("branch", [False, True], ids=["fx", "executor"])
def test_data_dependent_op_is_refused(branch):
    model = Op(lambda m, x: x.masked_select(x > 0), branch)
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(model, "2,L")
    assert str(err.value) == (
        "layer 'masked_select' (Tensor.masked_select) got input (2, L), (2, L): Tensor.masked_select has no shape "
        "rule, and its output size depends on the values in its input, not only on sizes (torch's meta kernel "
        "cannot compute it); symshape cannot give it a formula: register a rule with @symshape.register that "
        "states the size you expect")


def test_an_op_torch_refuses_is_named():
    model = Op(lambda m, x: torch.cdist(x, x[:, :, :3]))
    with pytest.raises(ss.ShapeError) as err:
        ss.trace(model, "2,L,8")
    assert str(err.value).startswith("layer 'cdist' (cdist) got input (2, L, 8), (2, L, 3): torch.cdist has no "
                                     "shape rule, and torch's meta kernel refuses the call at typical sizes "
                                     "(every symbol 224): RuntimeError: ")


def test_translation_is_exact_or_refused():
    """Each of torch's size functions, translated, equals torch's own value at every size tried."""
    import torch.utils._sympy.functions as tf

    from symshape.fallback import _Untranslatable, translate

    s, t = sympy.Symbol("s0", integer=True, positive=True), sympy.Symbol("s1", integer=True, positive=True)
    exprs = [tf.FloorDiv(s - 1, 2) + 1, tf.CeilDiv(s, 7), tf.Mod(s, 5), tf.PythonMod(3 * s + 1, 4),
             tf.ModularIndexing(s, 3, 4), tf.Max(s, 2 * t - 3), tf.Min(s, t), tf.CleanDiv(4 * s, 2),
             tf.FloorToInt(tf.FloatTrueDiv(s, 3)), tf.CeilToInt(tf.FloatTrueDiv(s, 3)), tf.FloorDiv(s * t, t),
             tf.PowByNatural(s, 2), sympy.Eq(tf.Mod(s, 8), 0)]
    for expr in exprs:
        ours = translate(expr, {s: H, t: W})
        for h, w in itertools.product((1, 2, 3, 7, 8, 9, 224), (1, 5, 16)):
            want = expr.subs({s: h, t: w})
            assert ours.subs({H: h, W: w}) == want, (expr, h, w)
    for expr in (tf.FloatTrueDiv(s, 3), tf.ToFloat(s), tf.FloorDiv(s, -2), sympy.Symbol("u0")):
        with pytest.raises(_Untranslatable):
            translate(expr, {s: H})


SCALE = torch.arange(4.0)


@torch.fx.wrap
def scaled_ramp(n):
    """A helper of a size that also reads a constant tensor of its module."""
    return torch.arange(n)[:, None] * SCALE


class Ramp(nn.Module):
    def forward(self, x):
        return x + scaled_ramp(x.shape[1])


def test_a_helper_may_read_constant_tensors():
    rep = ss.trace(Ramp(), "2,L,4")
    assert rep.output_shape == (2, L, 4) and not rep.domain
    assert [layer.name for layer in rep.layers] == ["scaled_ramp.arange", "scaled_ramp.getitem", "scaled_ramp.mul", "add"]
    for n in (1, 2, 7):
        assert torch_shape_and_macs(Ramp(), [2, n, 4], device="cpu")[0] == (2, n, 4)
