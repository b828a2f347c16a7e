"""Random graphs over the tensor-op layer against torch (symshape.testing_graphs), and the bugs that
the graph campaign (benchmarks/campaign_graphs.py) found, each a regression test against torch:
shapes, MACs (FlopCounterMode flops / 2) and the domain both ways, through symshape.check."""
import random
import sys
from pathlib import Path

import pytest
import sympy
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck
from torch import nn

import symshape as ss
from symshape.sets import IntSet
from symshape.testing_graphs import random_graph

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from campaign_graphs import bucket  # noqa: E402
from campaign import sizes_for  # noqa: E402

L, H, W = ss.symbols("L H W")


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def agrees_everywhere(model, spec, points):
    """symshape.check at every point: shapes, MACs and the domain both ways agree with torch."""
    res = ss.check(model, ss.trace(model, spec), sizes=points)
    assert res.ok, "\n".join(map(str, res.mismatches))
    return res


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2 ** 32 - 1))
def test_random_graphs_agree_with_torch(seed):
    """A random graph, traced on its symbolic spec, agrees with torch at its reference size, the
    domain's edges, sizes just outside and random sizes around the reference (or trace refuses it
    with a ShapeError)."""
    g = random_graph(random.Random(seed), max_steps=4)
    try:
        rep = ss.trace(g.model, g.spec)
    except ss.ShapeError:
        return
    points = sizes_for(g, rep, random.Random(seed), 2)[:8]
    res = ss.check(g.model, rep, sizes=points)
    assert all(bucket([c for c in res.comparisons if c.sizes == p]) == "agree" for p in res.sizes), (
        g.model.source() + "\n" + "\n".join(map(str, res.mismatches)))


def test_graph_source_is_the_forward_it_runs():
    g = random_graph(random.Random(7))
    text = g.model.source()
    assert text.startswith("class Net(nn.Module):") and text.count("\n        x = ") + text.count(
        "; x = ") >= len(g.model.steps)


def test_reshape_minus_one_next_to_a_size_zero():
    """x.reshape(N, L // 2, -1): torch raises where L // 2 is 0 (the -1 is ambiguous); the domain
    says so instead of dividing by zero."""
    model = Fn(lambda x: F.pad(x.reshape(x.size(0), x.size(1) // 2, -1), (0, 3, -2, 1, 1, 3)))
    rep = ss.trace(model, "2,L,2")
    assert rep.output_shape == (6, sympy.floor(L / 2) - 1, sympy.floor(2 * L / sympy.floor(L / 2)) + 3)
    assert str(rep.domain[0]) == ("L >= 2  [layer 'reshape' (Tensor.reshape): view/reshape with -1 needs the "
                                  "other sizes' product 2*floor(L/2) to be at least 1]")
    agrees_everywhere(model, "2,L,2", [{"L": n} for n in range(1, 12)])


def test_chunk_of_a_symbolic_dim_not_divisible():
    """a, b = x.chunk(2, 1): pieces ceil(L/2) and L - ceil(L/2); a * b broadcasts at L = 3 (2 and 1)."""
    def two(x):
        a, b = x.chunk(2, 1)
        return a * b
    rep = ss.trace(Fn(two), "1,L,3")
    assert rep.output_shape == (1, ss.ceil_div(L, 2), 3)
    assert [ss.fmt(c.expr) for c in rep.domain] == [
        "L >= 2", "floor(L/2) = floor((L + 1)/2) or floor((L + 1)/2) = 1 or floor(L/2) = 1"]
    res = agrees_everywhere(Fn(two), "1,L,3", [{"L": n} for n in range(1, 10)])
    assert [p["L"] for p in res.sizes if not rep.violations(**p)] == [2, 3, 4, 6, 8]

    def three(x):
        a, b, c = x.chunk(3, 1)
        return c
    rep = ss.trace(Fn(three), "1,L,3")
    assert rep.output_shape == (1, L - 2 * ss.ceil_div(L, 3), 3)
    agrees_everywhere(Fn(three), "1,L,3", [{"L": n} for n in range(1, 14)])


def test_int_set_union_of_a_bounded_and_an_unbounded_piece_from_one_start():
    assert (IntSet.interval(2, 5) | IntSet.interval(2)).pieces == ((2, None, 1, 0),)
    assert IntSet([(2, None, 1, 0), (2, 5, 1, 0)]).pieces == ((2, None, 1, 0),)


def test_relative_table_after_split_gives_its_sizes():
    """A relative-position table over the last dim after a split: default_sizes (the solver)
    used to sort an unbounded piece against a bounded one from the same start and crash."""
    model = Fn(lambda x: x.split(4, 1)[0] + (torch.arange(x.size(-1))[:, None]
                                             - torch.arange(x.size(-1))[None, :]).to(x.dtype))
    rep = ss.trace(model, "1,5,H,W")
    assert [str(c.expr) for c in rep.domain] == ["Eq(H, 1) | Eq(H, W) | Eq(W, 1)"]
    agrees_everywhere(model, "1,5,H,W", None)


def test_functional_pad_crops_first():
    """F.pad with a negative pad narrows first: the input must be at least the crop, even where
    the other side's padding would make the output large enough."""
    model = Fn(lambda x: F.pad(x, (3, -2)))
    rep = ss.trace(model, "1,2,L")
    assert rep.output_shape == (1, 2, L + 1)
    assert [str(c.expr) for c in rep.domain] == ["L >= 2"]
    agrees_everywhere(model, "1,2,L", [{"L": n} for n in range(1, 5)])


def test_interpolate_to_size_zero_raises_on_cpu_not_on_meta():
    """F.interpolate(scale_factor=0.5) at L = 1 gives size 0: the meta kernel runs, the CPU raises;
    check repeats a function call's run on the CPU before it calls the domain too strict."""
    model = Fn(lambda x: F.interpolate(x, scale_factor=0.5, mode="linear", recompute_scale_factor=True))
    res = agrees_everywhere(model, "1,3,L", [{"L": n} for n in range(1, 5)])
    assert "torch raises there, as predicted" in res.short().splitlines()[1]


@pytest.mark.parametrize("eq, shapes", [
    ("abc,abz->az", [(2, "L", 5)] * 2),            # contracted b = L: counted only where L >= 2
    ("abc,abz->abz", [(2, "L", 5)] * 2),           # nothing contracted: an element-wise product, 0
    ("abc,dbc->ad", [(2, "L", 1), (5, "L", 1)]),    # b and c contracted, c of size 1
])
def test_einsum_with_contracted_letters_of_size_one_counts_as_torch(eq, shapes):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(*(5, 1, 1) if shapes[1][0] == 5 else (1,)), requires_grad=False)

        def forward(self, x):
            return torch.einsum(eq, x, self.w.expand(shapes[1][0], x.size(1), shapes[1][2]) if shapes[1][0] == 5 else x)
    spec = ",".join(map(str, shapes[0]))
    rep = ss.trace(Two(), spec)
    expected = {"abc,abz->az": 10 * L * sympy.Min(1, L - 1), "abc,abz->abz": 0,
                "abc,dbc->ad": 10 * L * sympy.Min(1, L - 1)}[eq]
    assert sympy.simplify(rep.macs - expected) == 0
    agrees_everywhere(Two(), spec, [{"L": n} for n in (1, 2, 3)])


def test_an_empty_tensor_between_function_calls_runs():
    """F.pad(x, (0, -2)) at W = 2 gives an empty tensor that x @ x.T turns into zeros: torch runs, and
    so does the model in symshape's domain (one rule for empty outputs: README, "Empty outputs")."""
    model = Fn(lambda x: (lambda y: y @ y.transpose(-1, -2))(F.pad(x, (0, -2))))
    rep = ss.trace(model, "2,3,H,W")
    assert [str(c.expr) for c in rep.domain] == ["W >= 2"]
    assert rep.at(H=2, W=2).output_shape == (2, 3, 2, 2) and rep.at(H=2, W=2).macs == 0
    res = agrees_everywhere(model, "2,3,H,W", [{"H": 2, "W": w} for w in (1, 2, 3)])
    assert res.ok


def test_squeeze_of_a_symbolic_dim_is_refused():
    """torch drops a squeezed dim of size 1 and keeps it otherwise: the rank would depend on N."""
    model = Fn(lambda x: x.squeeze(0))
    with pytest.raises(ss.ShapeError, match=r"layer 'squeeze' \(Tensor.squeeze\) got input \(N, 6\): squeeze of dim 0 "
                                            r"of \(N, 6\): the size N can be 1, where torch drops the dim"):
        ss.trace(model, "N,6")
    assert tuple(model(torch.zeros(1, 6)).shape) == (6,) and tuple(model(torch.zeros(2, 6)).shape) == (2, 6)
    agrees_everywhere(Fn(lambda x: x[:, :1].squeeze(1)), "N,6", [{"N": 1}, {"N": 2}])


@pytest.mark.parametrize("mode", ["replicate", "reflect", "circular"])
def test_pad_modes_refuse_an_empty_input(mode):
    """x[..., 0:-3] is empty at W = 2; replicate and reflect padding raise on it (also along a dim
    they do not pad), circular along a padded dim, even where the padding would fill it."""
    model = Fn(lambda x: F.pad(x[..., 0:-3], (1, 1, 1, 1) if mode != "reflect" else (0, 0, 1, 1), mode=mode))
    res = agrees_everywhere(model, "2,3,H,W", [{"H": h, "W": w} for h in (1, 2, 3) for w in (1, 2, 3, 4, 5)])
    assert "W=3: outside the domain" in res.short()


@pytest.mark.parametrize("fn", [
    lambda x: x.tensor_split(3, 2)[1],
    lambda x: torch.tensor_split(x, 3, -1)[2] + 1,
    lambda x: x.tensor_split([1, -2], 2)[1],
    lambda x: x.tensor_split([4, 2], 2)[1],
    lambda x: x.unflatten(2, (2, -1)),
    lambda x: torch.unflatten(x, 1, (1, 3)),
])
def test_tensor_split_and_unflatten_as_torch(fn):
    """Rules the graph campaign found missing (its most frequent refusals)."""
    agrees_everywhere(Fn(fn), "2,3,L", [{"L": n} for n in range(1, 9)])


@pytest.mark.parametrize("fn", [
    lambda x: F.unfold(x, 3),
    lambda x: F.unfold(x, (2, 3), padding=1, stride=2),
    lambda x: F.unfold(x[0], 2, dilation=2),
    nn.Unfold(3, stride=(1, 2)),
])
def test_unfold_as_torch(fn):
    model = fn if isinstance(fn, nn.Module) else Fn(fn)
    rep = ss.trace(model, "2,3,H,W")
    assert rep.macs == 0
    agrees_everywhere(model, "2,3,H,W", [{"H": h, "W": w} for h in range(1, 6) for w in (1, 3, 4, 6)])


def test_reshape_minus_one_of_a_sum_of_halves():
    """reshape(N, C, oh, 2, -1) after a stride-2 conv: the -1 is (floor(W/2) + 1)/2, a sum of
    halves that sympy.fraction did not see as a fraction, so the divisibility was lost."""
    weight = torch.zeros(5, 4, 2, 2)

    def fn(x):
        x = F.conv2d(x, weight, stride=2, padding=1)
        return x.reshape(x.size(0), x.size(1), x.size(2), 2, -1)
    rep = ss.trace(Fn(fn), "N,4,H,W")
    assert rep.output_shape == (ss.symbols("N"), 5, sympy.floor(H / 2) + 1, 2, sympy.floor((W + 2) / 4))
    assert [ss.fmt(c.expr) for c in rep.domain] == ["floor(W/2) + 1 ≡ 0 (mod 2)"]
    agrees_everywhere(Fn(fn), "N,4,H,W", [{"N": n, "H": h, "W": w} for n in (1, 2) for h in (1, 2) for w in range(1, 8)])


class LambdaDownsample(nn.Module):
    """Issue #11 case 5 (timm lambda_resnet26t, stages.3.0.add): the main path pools with floor,
    the shortcut with ceil_mode; at odd sizes the two differ, and torch still adds them where one
    of them is 1 (H = 33 gives 1 against 2 in the last stage)."""

    def __init__(self):
        super().__init__()
        self.main = nn.AvgPool2d(2, 2)
        self.short = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)

    def forward(self, x):
        return self.main(x) + self.short(x)


def test_issue11_case5_lambda_resnet_broadcast_at_odd_sizes():
    rep = ss.trace(LambdaDownsample(), "1,4,H,W")
    res = agrees_everywhere(LambdaDownsample(), "1,4,H,W", [{"H": h, "W": w} for h in range(2, 8) for w in (2, 3, 4)])
    runs = [(p["H"], p["W"]) for p in res.sizes if not rep.violations(**p)]
    assert (3, 3) in runs and (3, 2) in runs and (5, 4) not in runs


class PoolingViT(nn.Module):
    """Issue #11 case 4 (timm pit_ti_224): a strided patch conv, a fixed-size position embedding
    added to its output, tokens with a class token, and a strided depthwise pooling conv."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 16, stride=8)
        self.pos = nn.Parameter(torch.zeros(1, 8, 27, 27))
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.pool = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8)

    def forward(self, x):
        x = self.patch(x) + self.pos
        b, c, h, w = x.shape
        tokens = torch.cat([self.cls.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        x = tokens[:, 1:].transpose(1, 2).reshape(b, c, h, w)
        return self.pool(x)


def test_issue11_case4_pit_position_embedding():
    rep = ss.trace(PoolingViT(), "1,3,H,W")
    assert [ss.fmt(c.expr) for c in rep.domain][2:4] == ["floor(H/8) - 1 = 27 or floor(H/8) - 1 = 1",
                                                        "floor(W/8) - 1 = 27 or floor(W/8) - 1 = 1"]
    agrees_everywhere(PoolingViT(), "1,3,H,W", [{"H": h, "W": w} for h, w in [
        (224, 224), (231, 224), (232, 224), (216, 224), (16, 16), (23, 224), (24, 224), (240, 240)]])


@pytest.mark.parametrize("fn", [
    lambda x: x.tensor_split(3, 0)[1].amax(dim=(0, 2), keepdim=True),
    lambda x: x[..., 3:].amin(-1),
    lambda x: x[..., 3:].argmax(-1),
    lambda x: x[..., 3:].max(-1)[0],
    lambda x: x[..., 3:].max() + x,
])
def test_max_and_min_of_an_empty_dim_are_outside_the_domain(fn):
    """torch raises on a max or min over a dim of size 0 (a split piece or a slice that can be empty)."""
    agrees_everywhere(Fn(fn), "N,5,L", [{"N": n, "L": l} for n in (1, 2, 3) for l in (1, 3, 4, 5)])


def test_avg_pool_with_a_kernel_that_can_be_zero():
    """F.avg_pool1d(x, x.shape[-1]) after a slice that is empty at L = 1: torch says 'stride should
    not be zero'; the kernel must be >= 1."""
    model = Fn(lambda x: F.avg_pool1d(x[..., 1:3], x[..., 1:3].shape[-1]))
    rep = ss.trace(model, "1,4,L")
    assert [ss.fmt(c.expr) for c in rep.domain][0] == "Min(3, L) - 1 >= 1"
    agrees_everywhere(model, "1,4,L", [{"L": n} for n in range(1, 6)])


def test_reshape_minus_one_when_together_cancels_into_halves():
    """reshape(N + 6, 4, -1) of (N + 6, 2, 3(L - 4)): sympy.together cancels the quotient into
    3L/2 - 6, a sum of fractions whose denominator it no longer shows; the divisibility was lost."""
    def fn(x):
        x = F.pad(x, (-2, -2, -1, -1, 3, 3))
        return x.repeat(1, 1, 3).reshape(x.size(0), 4, -1)
    rep = ss.trace(Fn(fn), "N,4,L")
    assert rep.output_shape == (ss.symbols("N") + 6, 4, sympy.floor(3 * L / 2) - 6)
    assert [ss.fmt(c.expr) for c in rep.domain] == ["L >= 4", "L ≡ 0 (mod 2)"]  # at L = 4 the crop is empty: runs
    agrees_everywhere(Fn(fn), "N,4,L", [{"N": n, "L": l} for n in (1, 2) for l in range(3, 10)])


class MaskBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2, 1, 13, 13), requires_grad=False)

    def forward(self, x):
        return F.scaled_dot_product_attention(x, x, x, attn_mask=self.bias)


def test_sdpa_mask_of_a_larger_batch_raises_as_torch_runs_it():
    """A mask of batch 2 against a query of batch 1: the CPU kernel raises; under FlopCounterMode
    SDPA decomposes and broadcasts (output batch 2). check decides the domain by a plain run."""
    rep = ss.trace(MaskBatch(), "N,2,H,W")
    assert [ss.fmt(c.expr) for c in rep.domain] == ["N = 2", "H = 13"]
    x = torch.zeros(1, 2, 13, 1)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        MaskBatch()(x)
    agrees_everywhere(MaskBatch(), "N,2,H,W", [{"N": n, "H": 13, "W": w} for n in (1, 2, 3) for w in (1, 4)])


@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool1d(x[..., 1:2:2], 2, 1, 1, ceil_mode=True),
    lambda x: F.avg_pool1d(x[..., 2:], 2, 1, 1),
    lambda x: F.adaptive_max_pool1d(x[..., 2:], 2),
    lambda x: nn.functional.conv1d(x[..., 2:], torch.zeros(3, 5, 2), padding=1),
    lambda x: F.unfold(x[..., 2:].unsqueeze(2), 1, padding=1, stride=3),
])
def test_pools_and_convs_refuse_an_empty_input(fn):
    """A slice that is empty at small L, then a pool or conv whose padding would still give an
    output: torch raises on the empty input (the CPU conv; meta runs it)."""
    agrees_everywhere(Fn(fn), "2,5,L", [{"L": n} for n in range(1, 6)])
