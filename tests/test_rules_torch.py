"""Regressions for the rule and trace layer, each compared with torch itself: expand and
broadcasting with size-1 dims, Max/Min in the domain, functional rules that share the module
rules' conditions, multi-output layers in explanations, arange with a negative step, negative
input sizes, hooks, lazy modules and container subclasses with their own forward."""
import itertools
import warnings

import pytest
import sympy
from hypothesis import given, settings, strategies as st
import torch
import torch.nn.functional as F
from torch import nn

import symshape as ss

H, W = ss.symbols("H W")


def torch_run(model, *shapes):
    """The output shape(s) of *model* on zero tensors of *shapes* on the CPU, or the exception."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model(*[torch.zeros(s) for s in shapes])
    except Exception as err:  # torch rejects the sizes
        return err
    if isinstance(out, (tuple, list)):
        return tuple(tuple(o.shape) for o in out)
    return tuple(out.shape)


def agrees(model, spec, points, names=("H", "W")):
    """At every point, symshape runs where torch runs, with torch's output shape, and refuses
    (``at`` raises, ``violations`` non-empty) where torch raises. Returns the number of points
    at which torch ran."""
    rep = ss.trace(model, spec)
    ran = 0
    for point in points:
        sizes = dict(zip(names, point))
        shape = tuple(int(t) if t.strip().isdigit() else sizes[t.strip()] for t in spec.split(","))
        got = torch_run(model, shape)
        if isinstance(got, Exception):
            assert rep.violations(**sizes), (sizes, got)
            with pytest.raises(ss.ShapeError):
                rep.at(**sizes)
        else:
            ran += 1
            assert not rep.violations(**sizes), (sizes, rep.violations(**sizes))
            out = rep.at(**sizes).output_shape
            assert tuple(int(d) for d in out) == got, (sizes, out, got)
    return ran


class SqueezeExcite(nn.Module):
    def forward(self, x):
        return x * F.adaptive_avg_pool2d(x, 1).expand_as(x)


def test_expand_as_stretches_size_one_dims():
    rep = ss.trace(SqueezeExcite(), "1,8,H,W")
    assert rep.domain == ()
    assert rep.output_shape == (1, 8, H, W)
    assert torch_run(SqueezeExcite(), (1, 8, 7, 9)) == (1, 8, 7, 9)
    assert agrees(SqueezeExcite(), "1,8,H,W", [(7, 9), (1, 1), (3, 1)]) == 3


class AddParam(nn.Module):
    """x + a fixed-size parameter (a position embedding, a relative position bias)."""

    def __init__(self, shape, conv=False):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1) if conv else nn.Identity()
        self.pos = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        return self.conv(x) + self.pos


def test_broadcast_fixed_size_admits_size_one():
    model = AddParam((1, 3, 16, 16), conv=True)
    rep = ss.trace(model, "1,3,H,W")
    assert [str(c.expr) for c in rep.domain] == ["Eq(H, 1) | Eq(H, 16)", "Eq(W, 1) | Eq(W, 16)"]
    assert [repr(c) for c in rep.domain] == ["H = 16 or H = 1", "W = 16 or W = 1"]
    assert rep.domain[0].reason == "broadcasting needs dim -2 to agree (H vs 16) or one of them to be 1"
    assert rep.output_shape == (1, 3, 16, 16)
    assert agrees(model, "1,3,H,W", itertools.product((1, 2, 15, 16, 17), (1, 16, 3))) == 4
    answer = rep.valid_inputs()
    assert str(answer) == "H ∈ {1, 16}, W ∈ {1, 16}" and len(answer) == 4
    from symshape.render.json import from_json, to_json
    assert from_json(to_json(rep)).domain == rep.domain
    assert "runs when H = 16 or H = 1, W = 16 or W = 1" in str(rep)
    assert "% the model runs when: H = 16 or H = 1, W = 16 or W = 1" in rep.to_latex()
    assert r"$H = 1 \vee H = 16$, $W = 1 \vee W = 16$" in rep.to_markdown()


def test_broadcast_vit_position_embedding():
    model = AddParam((1, 197, 64))
    rep = ss.trace(model, "1,L,64")
    assert [repr(c) for c in rep.domain] == ["L = 197 or L = 1"]
    assert agrees(model, "1,L,64", [(1,), (2,), (196,), (197,), (198,)], names=("L",)) == 2


class Transposed(nn.Module):
    def forward(self, x):
        return x + x.transpose(2, 3)


class Shifted(nn.Module):
    def forward(self, x):
        return x[..., 1:] + x


def test_broadcast_two_symbolic_sizes():
    rep = ss.trace(Transposed(), "1,2,H,W")
    assert [repr(c) for c in rep.domain] == ["H = W or H = 1 or W = 1"]
    assert rep.output_shape == (1, 2, sympy.Max(H, W), sympy.Max(H, W))
    assert agrees(Transposed(), "1,2,H,W", itertools.product(range(1, 5), range(1, 5))) == 10
    # a size that can be 0: 0 against 1 broadcasts to 0
    rep = ss.trace(Shifted(), "1,2,W")
    assert [repr(c) for c in rep.domain] == ["W - 1 = 1 or W = 1"]
    assert agrees(Shifted(), "1,2,W", [(w,) for w in range(1, 6)], names=("W",)) == 2


def test_broadcast_errors_when_both_sizes_fixed():
    class Bad(nn.Module):
        def forward(self, x):
            return x + torch.zeros(3, 5)

    assert isinstance(torch_run(Bad(), (2, 4)), RuntimeError)
    with pytest.raises(ss.ShapeError, match=r"layer 'add' \(add\) got input \(H, 4\), \(3, 5\): cannot broadcast "
                                            r"\(H, 4\) and \(3, 5\): dim -1 is 4 in one and 5 in another, and neither is 1"):
        ss.trace(Bad(), "H,4")


class PositionScale(nn.Module):
    """edgenext's positional encoding: a cumulative sum divided by its last row."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 8, stride=8)

    def forward(self, x):
        y = self.conv(x).cumsum(2)
        return y / (y[:, :, -1:, :] + 1e-6)


def test_max_min_decided_by_the_domain():
    rep = ss.trace(PositionScale(), "1,3,H,W")
    assert [repr(c) for c in rep.domain] == ["H >= 8", "W >= 8"]
    assert rep.layers[-2].out_shape == (1, 4, 1, sympy.floor(W / 8))
    assert agrees(PositionScale(), "1,3,H,W", [(256, 256), (8, 9), (7, 8), (17, 63)]) == 3

    class Strided(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return self.conv(x)[..., ::2]

    rep = ss.trace(Strided(), "1,3,H,W")
    assert rep.output_shape == (1, 8, H - 2, sympy.floor((W - 1) / 2))
    assert agrees(Strided(), "1,3,H,W", [(3, 3), (3, 4), (9, 10), (2, 5)]) == 3


class FunctionalNorm(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(torch.ones(4))
        self.register_buffer("mean", torch.zeros(4))
        self.register_buffer("var", torch.ones(4))

    def forward(self, x):
        if self.kind == "group":
            return F.group_norm(x, 4)
        if self.kind == "group_weight":
            return F.group_norm(x, 2, self.weight)
        if self.kind == "batch_train":
            return F.batch_norm(x, self.mean.clone(), self.var.clone(), training=True)
        if self.kind == "batch_eval":
            return F.batch_norm(x, self.mean, self.var)
        return F.instance_norm(x)


@pytest.mark.parametrize("kind, spec, domain, points", [
    ("group", "N,4,H,W", ["H*N*W >= 2"], [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 3, 3)]),
    # C = 4 fixes C: the later conditions are put in at C = 4 and hold (sizes are >= 1)
    ("group_weight", "1,C,H,W", ["C = 4"], [(4, 1, 1), (2, 1, 1), (6, 1, 1), (4, 3, 3)]),
    ("batch_train", "N,4,H,W", ["H*N*W >= 2"], [(1, 1, 1), (2, 1, 1), (1, 2, 3)]),
    ("batch_eval", "N,4,H,W", [], [(1, 1, 1), (3, 2, 2)]),
    ("instance", "N,4,H,W", ["H*W >= 2"], [(1, 1, 1), (2, 1, 1), (1, 1, 2)]),
])
def test_functional_norms_share_the_module_rules(kind, spec, domain, points):
    model = FunctionalNorm(kind)
    rep = ss.trace(model, spec)
    assert [repr(c) for c in rep.domain] == domain
    names = [t for t in spec.split(",") if not t.isdigit()]
    assert agrees(model, spec, points, names=names) >= 1


def test_functional_group_norm_fixed_channels_not_divisible():
    class Odd(nn.Module):
        def forward(self, x):
            return F.group_norm(x, 4)

    assert isinstance(torch_run(Odd(), (1, 6, 2, 2)), RuntimeError)
    with pytest.raises(ss.ShapeError, match=r"layer 'group_norm' \(group_norm\) got input \(1, 6, H, W\): "
                                            r"num_groups=4 must divide the 6 channels"):
        ss.trace(Odd(), "1,6,H,W")


class Attend(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        y, _ = self.mha(x, x, x)
        return self.fc(y)


def test_explain_solution_with_a_multi_output_layer():
    from torch.utils.flop_counter import FlopCounterMode

    rep = ss.trace(Attend(), "1,L,16")
    text = rep.explain_solution(rep.macs <= 10000)
    assert text.splitlines() == [
        "answer: 1 ≤ L ≤ 7",
        "per layer, over 1 ≤ L ≤ 7:",
        "  'mha' (MultiheadAttention): (1, 1..7, 16), (1, 1..7, 1..7)",
        "  'fc' (Linear): (1, 1..7, 4)",
    ]
    model = Attend().train()  # not the fused eval path, which FlopCounterMode does not count
    for length, inside in ((7, True), (8, False)):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            y, w = model.mha(*[torch.zeros(1, length, 16)] * 3)
            model.fc(y)
        assert (y.shape, w.shape) == ((1, length, 16), (1, length, length))
        assert (counter.get_total_flops() // 2 <= 10000) is inside
        assert rep.at(L=length).macs == counter.get_total_flops() // 2


class Reverse(nn.Module):
    def forward(self, x):
        return x[..., torch.arange(x.shape[-1] - 1, -1, -1)]


class Steps(nn.Module):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def forward(self, x):
        return x[..., torch.arange(x.shape[-1] - 1, 2, self.step)]


def test_arange_with_a_negative_step():
    rep = ss.trace(Reverse(), "1,3,W")
    assert rep.output_shape == (1, 3, W) and rep.domain == ()
    assert agrees(Reverse(), "1,3,W", [(w,) for w in (1, 2, 7)], names=("W",)) == 3
    rep = ss.trace(Steps(-2), "1,3,W")
    assert rep.output_shape == (1, 3, sympy.floor(W / 2) - 1) and [repr(c) for c in rep.domain] == ["W >= 3"]
    assert agrees(Steps(-2), "1,3,W", [(w,) for w in (1, 2, 3, 4, 5, 8)], names=("W",)) == 4
    # a positive step needs the bounds the other way round: W - 1 <= 2 (W = 1 indexes out of range,
    # which depends on the index values: not modelled)
    rep = ss.trace(Steps(1), "1,3,W")
    assert [repr(c) for c in rep.domain] == ["W <= 3"]
    assert agrees(Steps(1), "1,3,W", [(w,) for w in (2, 3, 4, 5)], names=("W",)) == 2


def test_a_rule_that_breaks_is_a_shape_error_naming_the_layer():
    def broken(x, *args, **kwargs):
        raise ValueError("boom")

    saved = ss.rules.registry.RULES.get(torch.flip)
    ss.register(torch.flip)(broken)

    class Flip(nn.Module):
        def forward(self, x):
            return torch.flip(x, (1,))

    try:
        with pytest.raises(ss.ShapeError, match=r"^layer 'flip' \(flip\) got input \(1, H\): its shape rule failed with "
                                                r"ValueError: boom; register a rule"):
            ss.trace(Flip(), "1,H")
    finally:
        ss.register(torch.flip)(saved)


def test_input_sizes_are_never_negative():
    rep = ss.trace(nn.Identity(), (1, H - 100))
    assert [str(c) for c in rep.domain] == ["H >= 100  [layer '' (Identity): dim 1 of the input is a size, >= 0]"]
    assert isinstance(torch_run(nn.Identity(), (1, -95)), RuntimeError)
    with pytest.raises(ss.ShapeError, match=r"the model does not run at H=5: layer '' \(Identity\) needs H >= 100"):
        rep.at(H=5)
    assert rep.at(H=100).output_shape == torch_run(nn.Identity(), (1, 0)) == (1, 0)
    assert str(rep.valid_inputs()) == "H ≥ 100"
    assert ss.trace(nn.Identity(), (1, H)).domain == ()


def test_forward_hooks_are_refused():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())

    def keep_two(module, args, output):
        return output[:, :2]

    handle = model[0].register_forward_hook(keep_two)
    try:
        assert torch_run(model, (1, 3, 8, 8)) == (1, 2, 6, 6)  # torch applies it
        with pytest.raises(ss.ShapeError, match=r"^layer '0' \(Conv2d\) got input \(1, 3, H, W\): it has forward hooks "
                                                r"registered \(test_forward_hooks_are_refused.<locals>.keep_two\), .*"
                                                r"remove them \(handle.remove\(\)\) before tracing"):
            ss.trace(model, "1,3,H,W")
    finally:
        handle.remove()
    handle = model.register_forward_pre_hook(lambda module, args: (args[0][:, :, :4],))
    try:
        with pytest.raises(ss.ShapeError, match=r"^the model \(Sequential\) got input \(1, 3, H, W\): it has forward "
                                                r"pre-hooks registered"):
            ss.trace(model, "1,3,H,W")
    finally:
        handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(keep_two)
    try:
        with pytest.raises(ss.ShapeError, match=r"global forward hooks are registered"):
            ss.trace(model, "1,3,H,W")
    finally:
        handle.remove()
    assert ss.trace(model, "1,3,H,W").output_shape == (1, 8, H - 2, W - 2)
    # weight norm's pre-hook recomputes the weight and keeps the shapes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        normed = nn.Sequential(nn.utils.weight_norm(nn.Conv2d(3, 8, 3)))
    assert ss.trace(normed, "1,3,H,W").output_shape == (1, 8, H - 2, W - 2)
    assert agrees(normed, "1,3,H,W", [(3, 3), (2, 5), (9, 4)]) == 2


@pytest.mark.parametrize("lazy, spec, shape", [(nn.LazyConv2d(8, 3), "1,3,H,W", (1, 3, 8, 8)),
                                               (nn.LazyLinear(4), "N,16", (2, 16))])
def test_lazy_modules_ask_for_one_forward_first(lazy, spec, shape):
    model = nn.Sequential(lazy, nn.ReLU())
    with pytest.raises(ss.ShapeError, match=rf"^layer '0' \({type(lazy).__name__}\) got input .*: its parameters are "
                                            r"not materialized yet .* run one forward pass on an example input first"):
        ss.trace(model, spec)
    model(torch.zeros(shape))
    rep = ss.trace(model, spec)
    assert rep.at(**{n: s for n, s in zip(spec.split(","), shape) if not n.isdigit()}).output_shape == \
        tuple(model(torch.zeros(shape)).shape)


class LayerGetter(nn.ModuleDict):
    """torchvision's IntermediateLayerGetter: a ModuleDict whose forward returns chosen outputs."""

    def __init__(self, modules, wanted):
        super().__init__(modules)
        self.wanted = wanted

    def forward(self, x):
        out = []
        for name, module in self.items():
            x = module(x)
            if name in self.wanted:
                out.append(x)
        return tuple(out)


class ListSkip(nn.ModuleList):
    def forward(self, x):
        return self[0](x) + self[1](x)


def test_container_subclasses_run_their_own_forward():
    getter = LayerGetter({"stem": nn.Conv2d(3, 8, 3, stride=2), "body": nn.Conv2d(8, 16, 3, stride=2),
                          "head": nn.Conv2d(16, 4, 1)}, wanted=("stem", "body"))
    rep = ss.trace(getter, "1,3,H,W")
    assert [layer.name for layer in rep.layers] == ["stem", "body", "head"]
    for h, w in [(9, 9), (32, 17)]:
        got = torch_run(getter, (1, 3, h, w))
        assert tuple(tuple(int(d) for d in s) for s in rep.at(H=h, W=w).output_shape) == got
    skip = ListSkip([nn.Conv2d(3, 3, 3, padding=1), nn.Identity()])
    rep = ss.trace(skip, "1,3,H,W")
    assert rep.output_shape == (1, 3, H, W) and [layer.name for layer in rep.layers] == ["0", "1", "add"]
    assert agrees(skip, "1,3,H,W", [(1, 1), (5, 7)]) == 2


class Op(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.scale = nn.Parameter(torch.ones(1, 5))

    def forward(self, x):
        return self.fn(self, x)


OPS = [
    ("unfold", lambda m, x: x.unfold(2, 3, 2), "1,5,L", [(1,), (2,), (3,), (4,), (9,)]),
    ("unfold_last", lambda m, x: x.unfold(-1, 4, 1).sum(-1), "1,5,L", [(3,), (4,), (10,)]),
    ("tile", lambda m, x: x.tile(2), "N,5,L", [(1, 1), (2, 3)]),
    ("tile_rank", lambda m, x: torch.tile(x, (3, 1, 1, 2)), "N,5,L", [(1, 1), (2, 3)]),
    ("norm", lambda m, x: x.norm(dim=1), "N,5,L", [(1, 1), (2, 3)]),
    ("norm_keep", lambda m, x: x.norm(2, -1, True), "N,5,L", [(2, 3)]),
    ("norm_all", lambda m, x: x.norm() + x, "N,5,L", [(2, 3)]),
    ("vector_norm", lambda m, x: torch.linalg.vector_norm(x, ord=2, dim=(0, 2), keepdim=True), "N,5,L", [(2, 3)]),
    ("rms_norm", lambda m, x: F.rms_norm(x, (x.shape[-1],)) + F.rms_norm(x, (5, 4)).sum(), "N,5,4", [(1,), (3,)]),
    ("rms_norm_fixed", lambda m, x: F.rms_norm(x, (4,)), "N,5,L", [(1, 4), (2, 3), (1, 5)]),
    ("addcmul", lambda m, x: torch.addcmul(x, x[:, :, :1], m.scale.t(), value=0.5), "N,5,L", [(1, 1), (2, 3)]),
    ("addcdiv", lambda m, x: x.addcdiv(m.scale.t(), x[..., :1]), "N,5,L", [(1, 1), (2, 3)]),
]


@pytest.mark.parametrize("name, fn, spec, points", OPS, ids=[o[0] for o in OPS])
def test_missing_rules_against_torch_meta(name, fn, spec, points):
    from torch.utils.flop_counter import FlopCounterMode

    model = Op(fn)
    rep = ss.trace(model, spec)
    names = [t for t in spec.split(",") if not t.isdigit()]
    ran = 0
    for point in points:
        sizes = dict(zip(names, point))
        shape = tuple(int(t) if t.isdigit() else sizes[t] for t in spec.split(","))
        meta = model.to("meta")
        try:
            with FlopCounterMode(display=False) as counter:
                out = meta(torch.zeros(shape, device="meta"))
        except Exception:  # torch rejects the sizes
            assert rep.violations(**sizes), sizes
            continue
        ran += 1
        assert not rep.violations(**sizes), (sizes, rep.violations(**sizes))
        at = rep.at(**sizes)
        assert tuple(at.output_shape) == tuple(out.shape), (sizes, at.output_shape, out.shape)
        assert at.macs == counter.get_total_flops() // 2
    assert ran >= 1


class RelativeBias(nn.Module):
    """A fixed-size relative position bias added to attention over the patches (coatnet)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 16, stride=16)
        self.bias = nn.Parameter(torch.zeros(2, 196, 196))

    def forward(self, x):
        q = self.embed(x).flatten(2).reshape(1, 2, 4, -1).transpose(-1, -2)
        return q @ q.transpose(-1, -2) + self.bias


def test_relative_position_bias_domain_solved_exactly():
    rep = ss.trace(RelativeBias(), "1,3,H,W")
    assert repr(rep.domain[-1]) == "floor(H/16)*floor(W/16) = 196 or floor(H/16)*floor(W/16) = 1"
    assert agrees(RelativeBias(), "1,3,H,W", [(224, 224), (256, 256), (16, 16), (31, 20), (32, 16), (239, 224)]) == 4
    answer = rep.valid_inputs()
    assert "scan" not in answer.method and answer.note == ""
    assert len(answer) == 10 * 16 * 16 and str(answer).splitlines()[:2] == ["16 ≤ H ≤ 31 or 3136 ≤ H ≤ 3151, 16 ≤ W ≤ 31",
                                                                            "16 ≤ H ≤ 31, 3136 ≤ W ≤ 3151"]
    assert (224, 239) in answer and (240, 224) not in answer and (16, 3151) in answer


class MaskedAttention(nn.Module):
    """timm's Attention2d with a relative position bias passed to SDPA as attn_mask (coatnet)."""

    def __init__(self, mask_shape):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 16, stride=16)
        self.bias = nn.Parameter(torch.zeros(mask_shape))

    def forward(self, x):
        q = self.embed(x).flatten(2).reshape(1, 2, 4, -1).transpose(-1, -2)
        return F.scaled_dot_product_attention(q, q, q, attn_mask=self.bias)


def test_sdpa_attn_mask_expands_to_the_attention_weights():
    model = MaskedAttention((1, 2, 196, 196))
    rep = ss.trace(model, "1,3,H,W")
    assert [repr(c) for c in rep.domain] == ["H >= 16", "W >= 16", "floor(H/16)*floor(W/16) = 196"]
    assert rep.domain[-1].reason == ("attn_mask must expand to the attention weights (1, 2, floor(H/16)*floor(W/16), "
                                  "floor(H/16)*floor(W/16)): expand to floor(H/16)*floor(W/16) needs the dim (196) "
                                  "to be floor(H/16)*floor(W/16) or 1")
    # the mask does not stretch the weights: L = 1 against a 196 x 196 mask fails in torch too
    assert agrees(model, "1,3,H,W", [(224, 224), (256, 256), (16, 16), (239, 230)]) == 2
    model = MaskedAttention((7, 1))  # a mask that broadcasts along the keys
    rep = ss.trace(model, "1,3,H,W")
    assert repr(rep.domain[-1]) == "floor(H/16)*floor(W/16) = 7"
    assert agrees(model, "1,3,H,W", [(16, 112), (112, 16), (32, 64), (16, 16)]) == 2


def test_union_of_bounded_and_unbounded_progressions():
    from symshape.sets import IntSet

    bounded, unbounded = IntSet.congruence(2, [0], 4, 10), IntSet.congruence(2, [0], 4, None)
    assert (bounded | unbounded) == (unbounded | bounded) == unbounded  # sorting them compared None with an int
    answer = ss.solve(sympy.Or(sympy.And(sympy.Eq(sympy.Mod(H, 2), 0), H <= 10), sympy.Eq(sympy.Mod(H, 2), 0)), over=H)
    assert str(answer) == "H ≡ 0 (mod 2), H ≥ 2"


def test_a_broadcast_that_no_size_satisfies_is_refused_at_trace_time():
    from symshape.floors import floor_div

    model = AddParam((1, 7))
    F4 = floor_div(H, 4)
    # F^2 + 2F is never 7 nor 1 (F = 2 gives 8): torch raises at every size
    assert all(isinstance(torch_run(model, (1, f * f + 2 * f)), RuntimeError) for f in range(0, 5))
    with pytest.raises(ss.ShapeError, match=r"^layer 'add' \(add\) got input \(1, floor\(H/4\)\*\*2 \+ 2\*floor\(H/4\)\), "
                                            r"\(1, 7\): needs broadcasting needs dim -1 to agree .* which fails for "
                                            r"every input size"):
        ss.trace(model, (1, F4 ** 2 + 2 * F4))
    rep = ss.trace(model, (1, F4 ** 2 + 2 * F4 - 1))  # F = 2 gives 7, F = 1 gives 2
    assert str(rep.valid_inputs()) == "8 ≤ H ≤ 11"


_DIM = ["1", "2", "3", "H", "W", "H-1", "2*H"]


def _size(text, h, w):
    return {"1": 1, "2": 2, "3": 3, "H": h, "W": w, "H-1": h - 1, "2*H": 2 * h}[text]


_RULES = {"add": ("add", lambda x, y: (x, y)), "expand": ("expand_as", lambda x, y: (y, x)),
          "where": (torch.where, lambda x, y: (x, x, y))}


class Pair(nn.Module):
    """x + y, y.expand_as(x) or torch.where(x > 0, x, y)."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, x, y):
        if self.op == "add":
            return x + y
        if self.op == "expand":
            return y.expand_as(x)
        return torch.where(x > 0, x, y)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_DIM), min_size=1, max_size=3), st.lists(st.sampled_from(_DIM), min_size=1, max_size=3),
       st.sampled_from(sorted(_RULES)))
def test_broadcast_and_expand_agree_with_torch(xs, ys, op):
    """The rule's output and domain (as the tracer keeps it, inputs >= 0) against torch at every
    H in 1..4, W in 1..3, for dims that are fixed, symbolic, 1 apart or twice another."""
    from symshape.evaluate import substitute
    from symshape.report import Shape
    from symshape.rules.registry import RULES
    from symshape.trace import Tracer

    x, y = (Shape(_size(t, H, W) for t in dims) for dims in (xs, ys))
    tracer = Tracer()
    for shape in (x, y):
        for d in shape:
            tracer.require("", "input", (shape,), sympy.Ge(d, 0), "a size")
    key, order = _RULES[op]
    try:
        out = tracer.apply(op, op, RULES[key], None, order(x, y))
    except ss.ShapeError:
        out = None  # fails at every size
    model = Pair(op)
    for h, w in itertools.product(range(1, 5), range(1, 4)):
        got = torch_run(model, *[tuple(_size(t, h, w) for t in dims) for dims in (xs, ys)])
        values = {H: h, W: w}
        holds = out is not None and all(substitute(c.expr, values) is sympy.true for c in tracer.domain)
        assert holds is not isinstance(got, Exception), (xs, ys, op, h, w, got, [str(c) for c in tracer.domain])
        if holds:
            assert tuple(int(substitute(d, values)) for d in out) == got, (xs, ys, op, h, w, out)
