"""Random stacks of the catalogue layers against torch itself.

Each example builds a stack layer by layer at concrete "base" sizes, asking torch (meta device)
for the concrete shape after each layer so that hyper-parameters that depend on it (Linear's
in_features, LayerNorm's normalized_shape, ConvTranspose's output_size) are valid there. The
stack is then traced symbolically, and at the base sizes and at sizes on and just beyond the
domain's boundaries:

* where symshape's domain holds, torch runs, and every layer's shape and MACs (FlopCounterMode's
  flops // 2) equal the report's at those sizes, exactly;
* where the domain fails, torch raises, at the first layer whose condition fails.
"""
from __future__ import annotations

import itertools

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import symshape as ss
from symshape.rules.activation import ELEMENTWISE
from symshape.rules.conv import conv_transpose
from symshape.rules.linear import bilinear
from symshape.rules.pool import pool_size

from torch_ref import torch_layers

# Reproducible in CI (derandomize); no shrinking, which takes minutes on these stacks: a failure
# prints the stack it drew, which is small already.
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                phases=[Phase.explicit, Phase.generate])
NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


class ConvTransposeTo(nn.Module):
    """A ConvTranspose called with an explicit output_size, as in a U-Net decoder."""

    def __init__(self, ct: nn.Module, output_size):
        super().__init__()
        self.ct, self.output_size = ct, list(output_size)

    def forward(self, x):
        return self.ct(x, output_size=self.output_size)


@ss.register(ConvTransposeTo)
def _conv_transpose_to(m, x):
    """out = m.output_size, within ConvTranspose's range."""
    return conv_transpose(m.ct, x, output_size=m.output_size)


def _divisors(n: int, most: int = 6) -> list:
    return [d for d in range(1, min(n, most) + 1) if n % d == 0]


def _tup(draw, nd, lo, hi):
    return tuple(draw(st.integers(lo, hi)) for _ in range(nd))


def _run(module, shape):
    """torch's output shape for one module at a concrete shape, or None where it raises."""
    records, failure = torch_layers([module], shape)
    assert failure is None or "expected device" not in str(failure[1]), failure  # a bug of the test
    return None if failure else records[0][0]


# --- the catalogue: each maker draws a layer for the current concrete shape, or returns None ---

def make_conv(draw, nd, shape):
    c = shape[1]
    g = draw(st.sampled_from(_divisors(c, 4)))
    cout = g * draw(st.integers(1, 3))
    k, d = _tup(draw, nd, 1, 4), _tup(draw, nd, 1, 2)
    padding = draw(st.sampled_from(["same", "valid", "int", "tuple"]))
    stride = 1 if padding == "same" else _tup(draw, nd, 1, 3)
    if padding == "int":
        padding = draw(st.integers(0, 3))
    elif padding == "tuple":
        padding = _tup(draw, nd, 0, 3)
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "circular", "replicate"]))
    cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[nd - 1]
    return cls(c, cout, k, stride=stride, padding=padding, dilation=d, groups=g, padding_mode=mode,
               bias=draw(st.booleans()))


def make_conv_transpose(draw, nd, shape):
    c = shape[1]
    g = draw(st.sampled_from(_divisors(c, 4)))
    cout = g * draw(st.integers(1, 3))
    k, s, d, p = _tup(draw, nd, 1, 4), _tup(draw, nd, 1, 3), _tup(draw, nd, 1, 2), _tup(draw, nd, 0, 2)
    op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[nd - 1]
    if not draw(st.booleans()):
        return cls(c, cout, k, stride=s, padding=p, output_padding=op, dilation=d, groups=g)
    ct = cls(c, cout, k, stride=s, padding=p, dilation=d, groups=g)
    smallest = _run(ct, shape)
    if smallest is None:
        return None
    size = [lo + draw(st.integers(0, si - 1)) for lo, si in zip(smallest[2:], s)]
    if draw(st.booleans()):
        size = [*shape[:1], cout, *size]  # torch also takes (N, C, *spatial)
    return ConvTransposeTo(ct, size)


def make_max_pool(draw, nd, shape):
    k, d = _tup(draw, nd, 1, 4), _tup(draw, nd, 1, 2)
    s = draw(st.none() | st.just(_tup(draw, nd, 1, 3)))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    cls = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[nd - 1]
    return cls(k, s, p, d, ceil_mode=draw(st.booleans()))


def make_avg_pool(draw, nd, shape):
    k = _tup(draw, nd, 1, 4)
    s = draw(st.none() | st.just(_tup(draw, nd, 1, 3)))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    cls = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[nd - 1]
    return cls(k, s, p, ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()))


def make_lp_pool(draw, nd, shape):
    k = _tup(draw, nd, 1, 3)
    s = draw(st.none() | st.just(_tup(draw, nd, 1, 3)))
    cls = (nn.LPPool1d, nn.LPPool2d, nn.LPPool3d)[nd - 1]
    return cls(2, k if nd > 1 else k[0], s if nd > 1 or s is None else s[0], ceil_mode=draw(st.booleans()))


def make_adaptive(draw, nd, shape):
    out = tuple(draw(st.none() | st.integers(1, 5)) for _ in range(nd))
    kind = draw(st.sampled_from(["avg", "max"]))
    cls = {"avg": (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
           "max": (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)}[kind][nd - 1]
    return cls(out if nd > 1 else out[0])


def make_fractional(draw, nd, shape):
    if nd == 1:
        return None
    k = _tup(draw, nd, 1, 3)
    cls = (None, nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)[nd - 1]
    if draw(st.booleans()):
        return cls(k, output_size=_tup(draw, nd, 1, 6))
    ratios = tuple(draw(st.sampled_from([0.29, 0.5, 0.7, 0.33, 0.9])) for _ in range(nd))
    return cls(k, output_ratio=ratios)


SCALES = [2, 3, 0.5, 0.29, 0.7, 1.5, 1.3, 2.5, 0.33]


def make_upsample(draw, nd, shape):
    mode = draw(st.sampled_from(["nearest", "nearest-exact", ("linear", "bilinear", "trilinear")[nd - 1]]))
    how = draw(st.sampled_from(["size", "scale", "scales"]))
    if how == "size":
        return nn.Upsample(size=_tup(draw, nd, 1, 9) if nd > 1 else draw(st.integers(1, 9)), mode=mode)
    if how == "scale":
        return nn.Upsample(scale_factor=draw(st.sampled_from(SCALES)), mode=mode)
    return nn.Upsample(scale_factor=tuple(float(draw(st.sampled_from(SCALES))) for _ in range(nd)), mode=mode)


def make_shuffle(draw, nd, shape):
    kind = draw(st.sampled_from(["pixel", "unpixel", "channel"]))
    if kind == "channel":
        return nn.ChannelShuffle(draw(st.sampled_from(_divisors(shape[1]))))
    r = draw(st.integers(1, 3))
    return nn.PixelShuffle(r) if kind == "pixel" else nn.PixelUnshuffle(r)


def make_norm(draw, nd, shape):
    c = shape[1]
    kind = draw(st.sampled_from(["batch", "instance", "group", "layer", "lrn"]))
    if kind == "batch":
        return (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[nd - 1](c)
    if kind == "instance":
        return (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[nd - 1](
            c, affine=draw(st.booleans()), track_running_stats=draw(st.booleans()))
    if kind == "group":
        return nn.GroupNorm(draw(st.sampled_from(_divisors(c))), c)
    if kind == "layer":
        j = draw(st.integers(1, len(shape) - 1))
        return nn.LayerNorm(list(shape[-j:]))
    return nn.LocalResponseNorm(draw(st.integers(1, 4)))


def make_activation(draw, nd, shape):
    kind = draw(st.sampled_from([*ELEMENTWISE, nn.PReLU, nn.GLU, nn.Softmax, nn.LogSoftmax, nn.Softmin,
                                 nn.Softmax2d, nn.Dropout1d, nn.Identity]))
    rank = len(shape)
    if kind is nn.Threshold:
        return nn.Threshold(0.1, 20.0)
    if kind is nn.PReLU:
        return nn.PReLU(draw(st.sampled_from([1, shape[1]])))
    if kind is nn.GLU:
        return nn.GLU(draw(st.integers(-rank, rank - 1)))
    if kind in (nn.Softmax, nn.LogSoftmax, nn.Softmin):
        return kind(draw(st.integers(-rank, rank - 1)))
    if kind in (nn.Softmax2d, nn.Dropout1d):
        return kind() if rank <= 4 else None
    if kind in (nn.Dropout2d, nn.Dropout3d):
        return kind() if rank == (4 if kind is nn.Dropout2d else 5) else None  # other ranks warn and guess
    return kind()


def make_pad(draw, nd, shape):
    kind = draw(st.sampled_from(["zero", "constant", "reflect", "replicate", "circular"]))
    pads = tuple(draw(st.integers(-2 if kind == "constant" else 0, 3)) for _ in range(2 * nd))
    cls = {"zero": (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d),
           "constant": (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d),
           "reflect": (nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d),
           "replicate": (nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d),
           "circular": (nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d)}[kind][nd - 1]
    return cls(pads, 0.5) if kind == "constant" else cls(pads)


MAKERS = [make_conv, make_conv, make_conv_transpose, make_max_pool, make_avg_pool, make_lp_pool,
          make_adaptive, make_fractional, make_upsample, make_shuffle, make_norm, make_activation, make_pad]


def make_tail(draw, shape):
    """Flatten and then Linear or Unflatten, or a Linear on the last dim."""
    rank = len(shape)
    kind = draw(st.sampled_from(["flatten", "flatten-linear", "flatten-unflatten", "linear"]))
    layers = []
    if kind != "linear":
        start = draw(st.integers(0, rank - 1))
        end = draw(st.integers(start, rank - 1))
        layers.append(nn.Flatten(start, end))
        shape = (*shape[:start], sympy.prod(shape[start:end + 1]), *shape[end + 1:])
    if kind.endswith("linear"):
        layers.append(nn.Linear(int(shape[-1]), draw(st.integers(1, 5))))
    if kind.endswith("unflatten"):
        dim = draw(st.integers(0, len(shape) - 1))
        a = draw(st.sampled_from(_divisors(int(shape[dim]), 12)))
        sizes = [a, -1] if draw(st.booleans()) else [a, int(shape[dim]) // a]
        layers.append(nn.Unflatten(dim - len(shape) if draw(st.booleans()) else dim, sizes))
    return layers


@st.composite
def stacks(draw, first=None, depth=3):
    """``(modules, input shape, base sizes)`` of a random stack that torch runs at the base sizes;
    *first* makes its first layer (retried a few times if torch rejects it), "tail" forces a tail."""
    nd = draw(st.sampled_from([1, 2, 3]))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 6))
    base = {name: draw(st.integers(1, 24 if nd < 3 else 12)) for name in NAMES[nd]}
    shape = (n, c, *base.values())
    makers = [first] * 4 if first not in (None, "tail") else []
    makers += [draw(st.sampled_from(MAKERS)) for _ in range(draw(st.integers(0 if makers else 1, depth - 1)))]
    modules = []
    for maker in makers:
        if maker is first and modules:
            continue
        module = maker(draw, nd, shape)
        out = None if module is None else _run(module, shape)
        if out is not None and 0 not in out and len(out) == len(shape):
            modules.append(module)
            shape = out
    if first == "tail" or draw(st.integers(0, 4)) == 0:
        tail = make_tail(draw, shape)
        if torch_layers(tail, shape)[1] is None:
            modules += tail
    return modules, (n, c, *NAMES[nd]), base


def _candidates(rep, base) -> dict:
    """Per size name: the base value, its neighbours, and every bound of the domain and one beyond."""
    out = {name: {v, v + 1, max(v - 1, 1)} for name, v in base.items()}
    for cond in rep.domain:
        rel = cond.expr
        if isinstance(rel, (sympy.GreaterThan, sympy.LessThan)) and rel.lhs.is_Symbol and rel.rhs.is_Integer:
            bound = int(rel.rhs)
            out[rel.lhs.name] |= {b for b in (bound - 1, bound, bound + 1) if b >= 1}
    return {name: sorted(vals) for name, vals in out.items()}


def check_against_torch(rep, modules, input_shape, sizes):
    """symshape's report at *sizes* against torch running the modules one by one."""
    concrete = tuple(sizes.get(str(d), d) if not isinstance(d, int) else d for d in input_shape)
    records, failure = torch_layers(modules, concrete)
    violations = rep.violations(**sizes)
    if failure is not None:
        index, err = failure
        assert violations, f"torch raised at layer {index} ({type(modules[index]).__name__}) at {sizes}: {err}"
        first = min(int(v.layer) for v in violations)
        assert first == index, (f"torch raised at layer {index} ({err}), symshape's first failing condition is "
                                f"{violations[0]}")
        with pytest.raises(ss.ShapeError, match="does not run at"):
            rep.at(**sizes)
        return False
    assert not violations, f"torch runs at {sizes}, symshape says {violations}"
    at = rep.at(**sizes)
    assert len(at.layers) == len(records)
    for layer, (shape, macs) in zip(at.layers, records):
        assert tuple(layer.out_shape) == shape, (layer.name, layer.kind, sizes)
        assert layer.macs == macs, (layer.name, layer.kind, sizes)
    assert at.macs == sum(m for _, m in records)
    assert tuple(at.output_shape) == records[-1][0]
    return True


def _check_stack(data, first):
    modules, spec, base = data.draw(stacks(first))
    if not modules:
        return
    rep = ss.trace(nn.Sequential(*modules), spec)
    assert check_against_torch(rep, modules, spec, base), "the stack was built to run at the base sizes"
    candidates = _candidates(rep, base)
    for _ in range(3):
        sizes = {name: data.draw(st.sampled_from(vals)) for name, vals in candidates.items()}
        check_against_torch(rep, modules, spec, sizes)


@pytest.mark.parametrize("first", [*MAKERS[1:], "tail"], ids=lambda f: getattr(f, "__name__", f))
@settings(max_examples=9, **SETTINGS)
@given(data=st.data())
def test_stacks_from_each_catalogue_entry_match_torch(first, data):
    _check_stack(data, first)


@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_random_stacks_match_torch(data):
    _check_stack(data, None)


def _pool_cases():
    for ceil_mode in (False, True):
        for k, s, d in itertools.product(range(1, 6), range(1, 6), (1, 2)):
            e = d * (k - 1) + 1
            for p in range(e // 2 + 1):
                for length in range(1, 40):
                    yield length, k, s, p, d, ceil_mode


def test_pool_size_brute_force_against_torch():
    """pool_size for every L < 40, k, s <= 5, d <= 2, p <= e//2, ceil_mode both, against
    max_pool3d on the meta device: three cases whose output is >= 1 share one call (one per
    spatial dim); every case whose formula gives < 1 runs alone and must raise."""
    x_cache = {}
    runs, fails = {}, []
    for case in _pool_cases():
        length, k, s, p, d, ceil_mode = case
        if p > k // 2:  # torch bounds the padding by half the kernel size, not the dilated extent
            with pytest.raises(ss.ShapeError, match="at most half the kernel size"):
                pool_size(length, k, s, p, d, ceil_mode)
            with pytest.raises(RuntimeError, match="half of kernel size"):
                F.max_pool1d(torch.zeros(1, 1, length, device="meta"), k, s, p, d, ceil_mode=ceil_mode)
            continue
        out = pool_size(length, k, s, p, d, ceil_mode)
        (runs.setdefault(ceil_mode, []) if out >= 1 else fails).append((case, int(out)))
    checked = 0
    for ceil_mode, cases in runs.items():
        for i in range(0, len(cases), 3):
            group = cases[i:i + 3]
            group += [group[-1]] * (3 - len(group))
            (lengths, ks, ss_, ps, ds, _) = zip(*(c for c, _ in group))
            shape = (1, 1, *lengths)
            x = x_cache.setdefault(shape, torch.zeros(shape, device="meta"))
            got = F.max_pool3d(x, ks, ss_, ps, ds, ceil_mode=ceil_mode).shape[2:]
            assert tuple(got) == tuple(o for _, o in group), group
            checked += len(group)
    for (length, k, s, p, d, ceil_mode), out in fails:
        with pytest.raises(RuntimeError, match="output size"):
            F.max_pool1d(torch.zeros(1, 1, length, device="meta"), k, s, p, d, ceil_mode=ceil_mode)
    assert checked >= 6000 and len(fails) > 100


def test_bilinear_rule_and_its_macs():
    """nn.Bilinear takes two inputs, so its rule is tested directly. FlopCounterMode counts 0 for
    it (aten._trilinear has no flop formula), so the MACs are checked against the number of
    products in y[b, o] = sum_ij x1[b, i] W[o, i, j] x2[b, j]: an einsum on ones counts them."""
    N, L = ss.symbols("N L")
    for lead, in1, in2, out in [((2,), 3, 4, 5), ((2, 7), 1, 6, 2), ((), 5, 5, 3)]:
        m = nn.Bilinear(in1, in2, out)
        got = bilinear(m, (*map(sympy.Integer, lead), sympy.Integer(in1)), (*map(sympy.Integer, lead), sympy.Integer(in2)))
        y = m(torch.zeros(*lead, in1), torch.zeros(*lead, in2))
        assert tuple(got.shape) == tuple(y.shape)
        terms = torch.einsum("...i,oij,...j->...o", torch.ones(*lead, in1), torch.ones(out, in1, in2),
                             torch.ones(*lead, in2))
        assert got.macs == int(terms.sum())
    sym = bilinear(nn.Bilinear(3, 4, 5), (N, L, sympy.Integer(3)), (N, L, sympy.Integer(4)))
    assert sym.shape == (N, L, 5) and sym.macs == 60 * N * L
    with pytest.raises(ss.ShapeError, match="leading dims of both inputs must match"):
        bilinear(nn.Bilinear(3, 4, 5), (N, sympy.Integer(3)), (L, sympy.Integer(4)))


@pytest.mark.parametrize("shape", [(2, 7), (3,), (2, 3, 4)])
def test_embedding_matches_torch(shape):
    m = nn.Embedding(10, 6)
    rep = ss.trace(m, shape)
    assert tuple(rep.output_shape) == tuple(m(torch.zeros(shape, dtype=torch.long)).shape)
    assert rep.macs == 0
