"""The executing front end (symshape/execute.py): forwards with Python control flow on sizes, run
on stand-ins, compared with torch inside and outside the domain they give."""
import inspect
import math

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.floors import ceil_div, floor_div

H, W, L = ss.symbols("H W L")


class Guarded(nn.Module):
    """segmentation_models_pytorch's check_input_shape guard, as it is written there."""

    def __init__(self, output_stride=32):
        super().__init__()
        self.output_stride = output_stride
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)

    def check_input_shape(self, x):
        h, w = x.shape[-2:]
        output_stride = self.output_stride
        if h % output_stride != 0 or w % output_stride != 0:
            new_h = (h // output_stride + 1) * output_stride if h % output_stride != 0 else h
            new_w = (w // output_stride + 1) * output_stride if w % output_stride != 0 else w
            raise RuntimeError(
                f"Wrong input shape height={h}, width={w}. Expected image height and width "
                f"divisible by {output_stride}. Consider pad your images to shape ({new_h}, {new_w})."
            )

    def forward(self, x):
        self.check_input_shape(x)
        return self.conv(x)


def test_a_raising_guard_becomes_the_domain_with_the_models_message():
    model = Guarded()
    rep = ss.trace(model, "1,3,H,W")
    assert rep.output_shape == (1, 8, floor_div(H - 1, 2) + 1, floor_div(W - 1, 2) + 1)
    line = inspect.getsourcelines(Guarded.check_input_shape)[1] + 3
    guards = [str(c) for c in rep.domain if c.layer == ""][-2:]
    assert guards == [
        "H ≡ 0 (mod 32)  [layer '' (Guarded): Wrong input shape height=H, width=W. Expected image height and width "
        "divisible by 32. Consider pad your images to shape (32*floor(H/32) + 32, W). (the forward of the model "
        f"(Guarded) raises otherwise, at test_execute.py:{line})]",
        "W ≡ 0 (mod 32)  [layer '' (Guarded): Wrong input shape height=H, width=W. Expected image height and width "
        "divisible by 32. Consider pad your images to shape (H, 32*floor(W/32) + 32). (the forward of the model "
        f"(Guarded) raises otherwise, at test_execute.py:{line})]",
    ]
    result = ss.check(model, rep, sizes=[{"H": 32, "W": 64}, {"H": 96, "W": 32}, {"H": 48, "W": 32},
                                         {"H": 32, "W": 33}])
    assert result.ok, result.short()
    assert [c.status for c in result.comparisons if c.what == "domain"] == ["ok"] * 4
    assert "torch raises there, as predicted" in result.comparisons[-1].note
    default = ss.check(model, rep)
    assert default.ok, default.short()


def test_an_assert_becomes_a_condition():
    class Asserting(nn.Module):
        def forward(self, x):
            assert x.shape[-1] % 4 == 0, "the length must be a multiple of 4"
            return x.view(x.shape[0], x.shape[1], x.shape[-1] // 4, 4)

    rep = ss.trace(Asserting(), "2,3,L")
    line = inspect.getsourcelines(Asserting.forward)[1] + 1
    assert rep.output_shape == (2, 3, floor_div(L, 4), 4)
    assert str(rep.domain[0]) == ("L ≡ 0 (mod 4)  [layer '' (Asserting): the length must be a multiple of 4 (the "
                                  f"forward of the model (Asserting) raises otherwise, at test_execute.py:{line})]")
    result = ss.check(Asserting(), rep)
    assert result.ok, result.short()
    assert [c.status for c in result.comparisons if c.what == "domain" and c.predicted == "raises"] == ["ok", "ok"]


def get_same_padding(x, kernel_size, stride, dilation):
    """timm's get_same_padding, as written there."""
    if isinstance(x, torch.Tensor):
        return torch.clamp(((x / stride).ceil() - 1) * stride + (kernel_size - 1) * dilation + 1 - x, min=0)
    return max((math.ceil(x / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - x, 0)


class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: TensorFlow's 'same' padding computed from the input size in forward."""

    def forward(self, x):
        ih, iw = x.size()[-2:]
        pad_h = get_same_padding(ih, self.kernel_size[0], self.stride[0], self.dilation[0])
        pad_w = get_same_padding(iw, self.kernel_size[1], self.stride[1], self.dilation[1])
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation, self.groups)


@pytest.mark.parametrize("k,s", [(3, 2), (5, 2), (3, 1), (7, 4), (1, 2)])
def test_tf_same_padding_gives_ceil_of_size_over_stride(k, s):
    """For k < s the padding max(..., 0) is a Max that the rules carry; the size is still ceil(H/s)."""
    model = nn.Sequential(Conv2dSame(3, 4, k, stride=s), nn.ReLU())
    rep = ss.trace(model, "1,3,H,W")
    if k >= s:
        assert rep.output_shape == (1, 4, ceil_div(H, s), ceil_div(W, s))
    assert all(rep.at(H=h, W=1).output_shape == (1, 4, -(-h // s), 1) for h in range(1, 50))
    assert [layer.name for layer in rep.layers] == ["0.pad", "0.conv2d", "1"]
    result = ss.check(model, rep)
    assert result.ok, result.short()
    for h, w in [(1, 1), (13, 7), (32, 31)]:
        assert tuple(model(torch.zeros(1, 3, h, w)).shape) == rep.at(H=h, W=w).output_shape


def test_avg_pool_over_the_whole_length():
    class Pool(nn.Module):
        def forward(self, x):
            return F.avg_pool1d(x, x.shape[-1])

    rep = ss.trace(Pool(), "2,5,L")
    assert rep.output_shape == (2, 5, 1)
    result = ss.check(Pool(), rep)
    assert result.ok, result.short()


def test_a_loop_over_a_fixed_size():
    class Pairs(nn.Module):
        def forward(self, x):
            outs = []
            for i in range(x.shape[1] // 2):
                outs.append(x[:, 2 * i:2 * i + 2].mean(1, keepdim=True))
            return torch.cat(outs, 1)

    rep = ss.trace(Pairs(), "1,6,H,W")
    assert rep.output_shape == (1, 3, H, W)
    assert [layer.name for layer in rep.layers][:2] == ["getitem", "mean"]
    result = ss.check(Pairs(), rep)
    assert result.ok, result.short()


class RelBias(nn.Module):
    """timm maxvit's relative-position bias: an einsum of two weights, in a forward that branches on
    a size (so it runs on stand-ins). torch counts the einsum; so must the report."""

    def __init__(self):
        super().__init__()
        self.w, self.t = nn.Parameter(torch.randn(8, 16)), nn.Parameter(torch.randn(16, 49))
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        x = self.conv(x)
        if x.shape[-1] % 7 != 0:
            raise ValueError("the map must be a multiple of 7 wide")
        bias = torch.einsum("ab,bc->ac", self.w, self.t)  # on weights only: a fixed computation
        return x.flatten(2)[..., :49] + bias


def test_a_computation_on_weights_counts_its_macs():
    rep = ss.trace(RelBias(), "1,3,H,W")
    assert [(layer.name, layer.macs) for layer in rep.layers if layer.kind == "einsum"] == [("einsum", 8 * 16 * 49)]
    assert rep.layer("einsum").in_shapes == ((8, 16), (16, 49)) and rep.layer("einsum").out_shape == (8, 49)
    res = ss.check(RelBias(), rep)
    assert res.ok, str(res)
