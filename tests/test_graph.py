"""The torch.fx front end against torch itself: meta-device shapes, FlopCounterMode // 2, and
torch failing exactly outside the domain that symshape reports."""
import functools

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import symshape as ss
from symshape import zoo
from symshape.floors import floor_div
from symshape.report import module_of

import graph_blocks as blocks
from torch_ref import torch_shape_and_macs

H, W = ss.symbols("H W")


def torch_ref(model, shape):
    """(output shape or the error, MACs) from torch on the meta device. Whether torch runs is decided
    by a plain run: under FlopCounterMode, F.interpolate to an output size of 0 does not raise (the
    mode's decomposition skips aten's size check), while the plain meta and CPU kernels do."""
    # On the meta device torch.nn.functional.scaled_dot_product_attention may pick a fused kernel
    # that FlopCounterMode has no formula for; the math backend runs the two matmuls it counts.
    with sdpa_kernel(SDPBackend.MATH):
        try:
            with torch.no_grad():
                model.to("meta")(torch.zeros(shape, device="meta"))
        except Exception as err:  # torch rejects the size: compared with the domain
            return err, None
        return torch_shape_and_macs(model, shape)


@functools.lru_cache(maxsize=None)
def traced(name):
    entry = zoo.MODELS[name]
    model = entry.factory()
    return model, entry.input, ss.trace(model, entry.input)


def concrete(spec, sizes):
    return [sizes.get(str(d), d) if not str(d).isdigit() else int(d) for d in ss.parse_shape(spec)]


def agrees(model, spec, rep, **sizes):
    """symshape and torch agree at these sizes: both run with the same shape and MACs, or both fail."""
    want, macs = torch_ref(model, concrete(spec, sizes))
    if rep.violations(**sizes):
        assert isinstance(want, Exception), f"torch runs at {sizes} but symshape says {rep.violations(**sizes)}"
        return False
    assert not isinstance(want, Exception), f"torch fails at {sizes}: {want}"
    at = rep.at(**sizes)
    out = at.output_shape[0] if isinstance(at.output_shape[0], tuple) else at.output_shape
    assert (tuple(out), int(at.macs)) == (want, macs)
    return True


# ---------------------------------------------------------------- the zoo's graph models

@pytest.mark.parametrize("name,sizes", [
    ("resnet50", [(224, 224), (97, 131), (33, 40)]),
    ("mobilenet_v2", [(224, 224), (161, 97)]),
    ("alexnet2012", [(227, 227), (258, 240)]),
    ("unet", [(572, 572), (188, 204)]),
    ("unet_same", [(64, 48), (512, 512)]),
    ("vit_tiny", [(224, 224), (112, 448)]),
])
def test_zoo_graph_models_match_torch(name, sizes):
    model, spec, rep = traced(name)
    for h, w in sizes:
        assert agrees(model, spec, rep, H=h, W=w)


def test_resnet50_published_figures():
    model, _, rep = traced("resnet50")
    assert rep.params == 25_557_032
    assert rep.at(H=224, W=224).macs == 4_089_184_256  # torchvision publishes 4.09 GFLOPS (= GMACs)
    # the output of layer4 is ceil(H/32) x ceil(W/32): the stem's ceil(H/4), then three stride-2 3x3 convs
    assert rep.layer("layer4.2.relu#3").out_shape == (1, 2048, floor_div(H - 1, 32) + 1, floor_div(W - 1, 32) + 1)
    # one record per call: a Bottleneck applies its ReLU three times; the block itself has a record too
    assert rep.layer("layer4.2.relu").out_shape == (1, 512, floor_div(H - 1, 32) + 1, floor_div(W - 1, 32) + 1)
    assert rep.layer("layer4").out_shape == rep.layer("layer4.2").out_shape == rep.layer("layer4.2.relu#3").out_shape
    # in training mode BatchNorm needs more than one value per channel: layer4's map must not be 1x1
    assert str(rep.domain[-1].expr) == "(floor(H/32 - 1/32) + 1)*(floor(W/32 - 1/32) + 1) >= 2"
    assert {c.kind for c in rep.domain} == {"BatchNorm2d"}
    assert not agrees(model, "1,3,H,W", rep, H=32, W=1) and agrees(model, "1,3,H,W", rep, H=33, W=1)
    assert ss.trace(model.eval(), "1,3,H,W").domain == ()
    model.train()
    names = dict(model.named_modules())
    assert all(module_of(layer.name) in names for layer in rep.layers if layer.kind[0].isupper())
    assert [layer.name for layer in rep.layers if layer.kind == "add"][:2] == ["layer1.0.add", "layer1.1.add"]


def test_mobilenet_v2_published_figures():
    _, _, rep = traced("mobilenet_v2")
    assert rep.params == 3_504_872
    assert rep.at(H=224, W=224).macs == 300_774_272  # torchvision: 0.30 GFLOPS


def test_unet_paper_572_to_388_and_minimum_size():
    model, spec, rep = traced("unet")
    assert rep.at(H=572, W=572).output_shape == (1, 2, 388, 388)
    runs = [h for h in range(180, 200) if not rep.violations(H=h, W=188)]
    low = runs[0]
    assert agrees(model, spec, rep, H=low, W=188) and not agrees(model, spec, rep, H=low - 1, W=188)


def test_unet_same_needs_multiples_of_16_and_torch_agrees():
    model, spec, rep = traced("unet_same")
    ok = [h for h in range(16, 70) if not rep.violations(H=h, W=32)]
    assert ok == [16, 32, 48, 64]
    for h in (16, 17, 24, 31, 32, 40, 48):
        agrees(model, spec, rep, H=h, W=32)
    # the earlier cats fix floor(H/2) = 8*floor(H/16), put into the last one's sizes
    assert str(rep.domain[-2]) == ("H ≡ 0 (mod 16)  [layer 'cat_3' (cat): cat along dim 1 needs dim 2 of every "
                                   "input to agree]")


def test_vit_positional_embedding_fixes_the_patch_grid():
    model, spec, rep = traced("vit_tiny")
    cond = rep.domain[-1]
    assert cond.expr == sympy.Eq(floor_div(H, 16) * floor_div(W, 16) + 1, 197)
    assert (cond.layer, cond.kind) == ("add", "add")
    for h, w in [(224, 224), (239, 239), (240, 240), (208, 208), (112, 448), (16, 3136)]:
        agrees(model, spec, rep, H=h, W=w)
    # linear in the number of patches (the patch embedding); the blocks after the position embedding
    # see the 197 tokens the domain fixes, so the broadcast's output is the fixed 197 and their MACs constant
    macs = sympy.expand(rep.macs)
    assert sympy.degree(macs.subs({floor_div(H, 16): sympy.Symbol("a"), floor_div(W, 16): sympy.Symbol("a")}),
                        sympy.Symbol("a")) == 2
    assert rep.layers[[layer.name for layer in rep.layers].index("add")].out_shape == (1, 197, 192)


def test_alexnet2012_does_not_run_at_the_papers_224():
    model, spec, rep = traced("alexnet2012")
    assert rep.params == 60_965_224  # "60 million parameters"
    assert [h for h in range(220, 262) if not rep.violations(H=h, W=h)] == list(range(227, 259))
    for h in (224, 226, 227, 258, 259):
        agrees(model, spec, rep, H=h, W=h)
    with pytest.raises(ss.ShapeError, match="layer 'classifier.1' \\(Linear\\) needs"):
        rep.at(H=224, W=224)


# ---------------------------------------------------------------- blocks, at random sizes

BLOCKS = {
    "se": (blocks.SqueezeExcite, "1,16,H,W"),
    "dense": (blocks.DenseBlock, "2,8,H,W"),
    "shuffle": (blocks.ShuffleUnit, "1,16,H,W"),
    "convnext": (blocks.ConvNeXtBlock, "1,16,H,W"),
    "window": (blocks.WindowAttention, "1,H,W,16"),
    "transformer": (blocks.TinyTransformer, "1,3,H,W"),
    "upcat": (blocks.UpCat, "1,8,H,W"),
    "ops": (blocks.Ops, "2,4,H,W"),
}


@functools.lru_cache(maxsize=None)
def traced_block(name):
    factory, spec = BLOCKS[name]
    model = factory()
    return model, spec, ss.trace(model, spec)


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(sorted(BLOCKS)), h=st.integers(1, 40), w=st.integers(1, 40))
def test_blocks_match_torch_at_random_sizes(name, h, w):
    model, spec, rep = traced_block(name)
    agrees(model, spec, rep, H=h, W=w)


def test_block_formulas():
    _, _, rep = traced_block("window")
    assert rep.output_shape == (1, H, W, 16)
    padded = rep.layer("pad").out_shape
    assert [padded[1].subs(H, h) for h in (1, 4, 5, 8)] == [4, 4, 8, 8]
    _, _, rep = traced_block("transformer")
    assert [str(c) for c in rep.domain] == [
        "H >= 4  [layer 'embed' (Conv2d): output size >= 1: the padded input must cover the kernel extent 4]",
        "W >= 4  [layer 'embed' (Conv2d): output size >= 1: the padded input must cover the kernel extent 4]",
        "floor(H/4)*floor(W/4) + 1 = 17  [layer 'add' (add): broadcasting needs dim -2 to agree "
        "(floor(H/4)*floor(W/4) + 1 vs 17) or one of them to be 1]",
    ]
    _, _, rep = traced_block("dense")
    assert rep.output_shape == (2, 20, floor_div(H, 2), floor_div(W, 2))


def test_every_block_at_many_sizes():
    for name in BLOCKS:
        model, spec, rep = traced_block(name)
        for h, w in [(1, 1), (3, 4), (7, 9), (16, 16), (17, 5)]:
            agrees(model, spec, rep, H=h, W=w)


# ---------------------------------------------------------------- attention MACs and FlopCounterMode

def flop_macs(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def test_multihead_attention_macs_and_what_flop_counter_sees():
    L = ss.symbols("L")
    mha = nn.MultiheadAttention(64, 4, batch_first=True)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x)

    rep = ss.trace(SelfAttention(), (2, L, 64))
    assert rep.output_shape == ((2, L, 64), (2, L, L))
    assert rep.macs == 2 * (2 * 64 * 64 * L + 2 * 64 * 64 * L + 2 * 64 * L ** 2)
    x = torch.randn(2, 10, 64)
    # With gradients (training, or inputs that need grad) MHA runs in_proj, bmm, bmm, out_proj: all counted.
    assert flop_macs(lambda: mha(x, x, x)) == rep.at(L=10).macs
    # need_weights=False on CPU calls the fused _scaled_dot_product_flash_attention_for_cpu, which
    # FlopCounterMode has no formula for (it sees the projections only); with the math backend it sees all.
    assert flop_macs(lambda: mha(x, x, x, need_weights=False)) == 2 * 4 * 64 * 64 * 10
    with sdpa_kernel(SDPBackend.MATH):
        assert flop_macs(lambda: mha(x, x, x, need_weights=False)) == rep.at(L=10).macs
    # In eval mode without grad, the fast path _native_multi_head_attention hides everything: 0.
    mha.eval()
    with torch.no_grad():
        assert flop_macs(lambda: mha(x, x, x)) == 0
    assert ss.trace(SelfAttention(), (2, L, 64)).macs == rep.macs  # symshape counts the real work in every mode


def test_sdpa_and_einsum_rules():
    L = ss.symbols("L")

    class SelfAttend(nn.Module):
        def forward(self, x):
            scores = torch.einsum("bld,bsd->bls", x, x)
            return torch.matmul(scores.softmax(-1), x), F.scaled_dot_product_attention(x, x, x)

    rep = ss.trace(SelfAttend(), (2, L, 16))
    assert rep.output_shape == ((2, L, 16), (2, L, 16))
    assert rep.macs == 2 * (16 * L ** 2) * 2 + 2 * L * L * 32
    x = torch.zeros(2, 9, 16)
    with sdpa_kernel(SDPBackend.MATH):
        assert flop_macs(lambda: SelfAttend()(x)) == rep.at(L=9).macs


# ---------------------------------------------------------------- errors and extension

class Branchy(nn.Module):
    def forward(self, x):
        if x.size(2) > 8:
            return x[:, :, :8]
        return x


def test_control_flow_on_sizes_that_runs_both_ways_gives_two_pieces():
    """fx cannot trace ``if x.size(2) > 8``; the forward runs on stand-ins instead. Both branches run
    in torch (crop above 8, keep below), so a domain ``H > 8`` alone would be a wrong answer at
    H <= 8: each side is a piece of the report, with its condition and its formulas."""
    import inspect

    line = inspect.getsourcelines(Branchy.forward)[1] + 1
    model = nn.Sequential(nn.Conv2d(3, 3, 1), Branchy())
    rep = ss.trace(model, "1,3,H,W")
    assert [(tuple(c.expr for c in p.branch), p.output_shape) for p in rep.pieces] == [
        ((H >= 9,), (1, 3, 8, W)), ((H <= 8,), (1, 3, H, W))]
    assert str(rep.pieces[1].branch[0]) == (
        f"H <= 8  [layer '1' (Branchy): the forward of '1' (Branchy) branches on it at test_graph.py:{line}; the other "
        "side is another piece of the report (rep.pieces)]")
    for h in range(1, 14):
        assert rep.at(H=h, W=3).output_shape == tuple(model(torch.zeros(1, 3, h, 3)).shape)
    assert str(rep.valid_inputs()) == "H ≥ 1, W ≥ 1"
    rep = ss.trace(model, "1,3,11,W")  # a fixed size decides the branch
    assert rep.output_shape == (1, 3, 8, W) and rep.pieces == ()


def test_control_flow_in_a_submodule_is_named():
    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Branchy()

        def forward(self, x):
            return self.inner(x) + 1

    rep = ss.trace(Outer(), "1,3,H,W")
    assert "the forward of 'inner' (Branchy) branches on it at test_graph.py:" in rep.pieces[1].branch[0].reason


def test_registered_rule_makes_a_leaf():
    class Crop8(Branchy):
        pass

    @ss.register(Crop8)
    def crop8(m, x):
        """out = (N, C, min(H, 8), W)."""
        return (*x[:2], sympy.Min(x[2], 8), x[3])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.crop = Crop8()

        def forward(self, x):
            return self.crop(x) * 2

    rep = ss.trace(Net(), "1,3,H,W")
    assert [(layer.name, layer.kind) for layer in rep.layers] == [("crop", "Crop8"), ("mul", "mul")]
    assert rep.output_shape == (1, 3, sympy.Min(H, 8), W)


def test_function_without_rule():
    """A torch function with no rule falls back to torch's meta kernel (symshape.fallback); one whose
    output size depends on values is still refused, naming the layer."""
    class Spectrum(nn.Module):
        def forward(self, x):
            return torch.fft.rfft2(x)

    rep = ss.trace(Spectrum(), "1,3,H,W")  # torch's kernel specializes the sizes: the domain says so
    assert rep.output_shape == (1, 3, 224, 113) and rep.layers[0].attrs["fallback"] == "meta"
    assert [str(c) for c in rep.domain] == [
        "H = 224  [layer 'fft_rfft2' (fft_rfft2): torch's meta kernel for aten._fft_r2c assumes H = 224]",
        "W = 224  [layer 'fft_rfft2' (fft_rfft2): torch's meta kernel for aten._fft_r2c assumes W = 224]"]

    class Nonzero(nn.Module):
        def forward(self, x):
            return torch.nonzero(x)

    with pytest.raises(ss.ShapeError) as err:
        ss.trace(Nonzero(), "1,3,H,W")
    assert str(err.value) == (
        "layer 'nonzero' (nonzero) got input (1, 3, H, W): torch.nonzero has no shape rule, and its output size "
        "depends on the values in its input, not only on sizes (torch's meta kernel cannot compute it); symshape "
        "cannot give it a formula: register a rule with @symshape.register that states the size you expect"
    )


def test_residual_mismatch_is_a_domain_condition_and_fixed_mismatch_an_error():
    class Skip(nn.Module):
        def __init__(self, stride):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, stride=stride, padding=1)

        def forward(self, x):
            return self.conv(x) + x

    rep = ss.trace(Skip(2), "1,4,H,W")
    # equal sizes, or either is 1: at H = 2 the conv gives 1 row, which broadcasts against 2
    assert [str(c.expr) for c in rep.domain] == [
        "Eq(H, 1) | Eq(H, floor(H/2 - 1/2) + 1) | Eq(floor(H/2 - 1/2) + 1, 1)",
        "Eq(W, 1) | Eq(W, floor(W/2 - 1/2) + 1) | Eq(floor(W/2 - 1/2) + 1, 1)"]
    assert rep.violations(H=1, W=1) == [] and rep.violations(H=2, W=1) == [] and len(rep.violations(H=3, W=1)) == 1
    assert Skip(2)(torch.zeros(1, 4, 2, 1)).shape == (1, 4, 2, 1)
    with pytest.raises(RuntimeError):
        Skip(2)(torch.zeros(1, 4, 3, 1))
    with pytest.raises(ss.ShapeError, match=r"layer 'add' \(add\) got input \(1, 4, 2, 2\), \(1, 4, 3, 3\): "
                                            r"cannot broadcast"):
        ss.trace(Skip(2), "1,4,3,3")


def test_wrapped_function_is_traced_and_its_failure_named():
    import time

    class Net(nn.Module):
        def forward(self, x):
            return halve_rows(x) + 1

    rep = ss.trace(Net(), "1,3,H,W")
    assert [layer.name for layer in rep.layers] == ["halve_rows.getitem", "add"]
    assert rep.output_shape == (1, 3, floor_div(H + 1, 2), W)

    class Bad(nn.Module):
        def forward(self, x):
            return branch_rows(x)

    # fx cannot trace it (a branch on the size): it runs as written, and both branches run: two pieces
    rep = ss.trace(Bad(), "1,3,H,W")
    assert [(tuple(c.expr for c in p.branch), p.output_shape) for p in rep.pieces] == [
        ((H >= 3,), (1, 3, 2, W)), ((H <= 2,), (1, 3, H, W))]
    assert "the forward of 'branch_rows' (branch_rows) branches on it at test_graph.py:" in rep.branch[0].reason
    with torch.device("meta"):
        vit_b = zoo.vit_b16()
    assert ss.trace(vit_b, "1,3,H,W").output_shape == (1, 1000)


@torch.fx.wrap
def halve_rows(x):
    return x[:, :, ::2]


@torch.fx.wrap
def branch_rows(x):
    if x.size(2) > 2:
        return x[:, :, :2]
    return x
