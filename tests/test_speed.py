"""Compact closed forms on the idioms that used to blow up the algebra (issue: compact closed forms
and fast traces). Nothing here is timed: benchmarks/bench_depth.py prints the times; these tests
pin the forms and check the answers against torch."""
from __future__ import annotations

import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.forms import compact
from symshape.floors import floor_div
from symshape.symbols import symbols


class TutorialNet(nn.Module):
    """The CNN of PyTorch's "Training a classifier" tutorial, as written there."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def test_compact_keeps_products_factored():
    H, W = symbols("H W")
    prod = sympy.Mul(16, floor_div(H, 4) - 3, floor_div(W, 4) - 3)  # as Shape.numel builds it
    assert compact(prod) == prod
    assert str(compact(prod)) == "16*(floor(H/4) - 3)*(floor(W/4) - 3)"
    # the one-symbol sums inside a factor still collapse to one floor
    assert str(compact((H - floor_div(H, 2)) * W)) == "W*floor(H/2 + 1/2)"


def test_the_tutorial_cnn_flatten_size_is_factored_and_solved_exactly():
    model = TutorialNet()
    rep = ss.trace(model, "N,3,H,W")
    view = next(layer for layer in rep.layers if layer.kind == "Tensor.view")
    assert str(view.out_shape) == "(N, 16*(floor(H/4) - 3)*(floor(W/4) - 3))"
    answer = rep.valid_inputs()
    assert not answer.note  # exact: no bounded scan behind it
    assert str(answer) == ("N ≥ 1, 16 ≤ H ≤ 19, 112 ≤ W ≤ 115\n"
                           "N ≥ 1, 32 ≤ H ≤ 35, 32 ≤ W ≤ 35\n"
                           "N ≥ 1, 112 ≤ H ≤ 115, 16 ≤ W ≤ 19")
    # torch agrees on every corner of every box and just outside each
    sizes = [{"N": 1, "H": h, "W": w} for h, w in
             [(16, 112), (19, 115), (15, 112), (20, 115), (32, 32), (35, 35), (31, 33), (36, 32), (112, 16),
              (115, 19), (116, 16), (112, 20)]]
    result = ss.check(model, rep, sizes=sizes)
    assert result.ok, str(result)
    assert [s in answer for s in [(1, 16, 112), (1, 15, 112), (2, 35, 35), (1, 36, 32)]] == [True, False, True, False]


def test_flatten_inside_a_module_is_factored():
    class Flat(nn.Module):
        def forward(self, x):
            return torch.flatten(x, 1)

    model = nn.Sequential(nn.Conv2d(3, 6, 5), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), Flat())
    rep = ss.trace(model, "N,3,H,W")
    assert str(rep.output_shape) == "(N, 16*(floor(H/4) - 3)*(floor(W/4) - 3))"
    assert ss.check(model, rep, sizes=[{"N": 2, "H": 16, "W": 23}, {"N": 1, "H": 15, "W": 40}]).ok


def _residual(depth: int, width: int = 8) -> nn.Module:
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(width, width, 3, padding=1)
            self.bn = nn.BatchNorm2d(width)

        def forward(self, x):
            return F.relu(x + self.bn(self.conv(x)))

    return nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), *(Block() for _ in range(depth)),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)).eval()


def test_a_deep_residual_network_keeps_its_forms():
    model = _residual(200)
    rep = ss.trace(model, "N,3,H,W")
    N, H, W = rep.symbols
    assert str(rep.layers[1].out_shape) == "(N, 8, floor((H - 1)/2) + 1, floor((W - 1)/2) + 1)"
    assert str(rep.output_shape) == "(N, 10)"
    area = (floor_div(H - 1, 2) + 1) * (floor_div(W - 1, 2) + 1)
    assert sympy.expand(rep.macs - (N * 8 * 3 * 9 * area + 200 * N * 8 * 8 * 9 * area + N * 8 * 10)) == 0
    at = rep.at(N=2, H=13, W=9)
    out = model(torch.zeros(2, 3, 13, 9))
    assert tuple(at.output_shape) == tuple(out.shape)
    assert ss.check(model, rep, sizes=[{"N": 2, "H": 13, "W": 9}]).ok


def test_a_1000_layer_sequential():
    layers = []
    for _ in range(250):
        layers += [nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.Identity()]
    model = nn.Sequential(nn.Conv2d(3, 4, 1), *layers).eval()
    rep = ss.trace(model, "1,3,H,W")
    assert len(rep.layers) == 1001
    assert str(rep.output_shape) == "(1, 4, H, W)"
    H, W = rep.symbols
    assert sympy.expand(rep.macs - (250 * 4 * 4 * 9 * H * W + 3 * 4 * H * W)) == 0
    assert ss.check(model, rep, sizes=[{"H": 5, "W": 3}]).ok


def test_the_tracers_feasibility_question_never_scans():
    """At trace time the solver only refuses what it proves exactly: a condition that only a scan
    would decide is kept without asking (timm halonet26t spent 52 s of 71 in such scans)."""
    import sympy

    from symshape.floors import floor_div
    from symshape.solve.solver import feasible

    H, W = ss.symbols("H W")
    # not monotone, not periodic in (H, W) jointly: the full solver would scan it
    rel = sympy.Eq(-8 * floor_div(H + 15, 128) + floor_div(H - 1, 16) + 1 + floor_div(W, 3) * floor_div(H, 5), 7)
    assert feasible(rel, [H >= 225, W >= 225]) is None
    assert "not an integer" in feasible(sympy.Eq(32 * floor_div(H, 2) * floor_div(W, 2), 5400), [H >= 2, W >= 2])


class WindowBlock(nn.Module):
    """A MaxViT-style block: a strided stem, then attention in 8x8 windows (the size asserted a
    multiple of the window, as timm asserts it), the windows put back and a residual add."""

    def __init__(self, c=8, window=8):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, stride=4, padding=1)
        self.window = window
        self.qkv = nn.Linear(c, 3 * c)

    def forward(self, x):
        x = self.stem(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        wh = self.window
        torch._assert(H % wh == 0, "height must be divisible by the window")
        torch._assert(W % wh == 0, "width must be divisible by the window")
        w = x.view(B, H // wh, wh, W // wh, wh, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * wh, C)
        q, k, v = self.qkv(w).chunk(3, dim=-1)
        bias = torch.zeros(1, wh * wh, wh * wh)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        a = a.view(-1, H // wh, W // wh, wh, wh, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, H, W, C)
        return x + a


def test_window_partition_sizes_stay_factored_and_agree_with_torch():
    """The assert fixes floor((H - 1)/4) + 1 = 8*floor((H + 3)/32): later formulas are put in that
    form, so the windows' count is a product of floors, the batch of windows cancels back to 1
    (no floor of a ratio of products, no Min(1, ...)) and the first size allowed is H = 29."""
    model = WindowBlock().eval()
    rep = ss.trace(model, "1,3,H,W")
    assert str(rep.output_shape) == "(1, 8*floor((H + 3)/32), 8*floor((W + 3)/32), 8)"
    sizes = [d for layer in rep.layers for d in layer.out_shape if isinstance(d, sympy.Basic)]
    assert not any(d.has(sympy.Min, sympy.Max) or d.has(sympy.floor) and any(
        f.args[0].has(sympy.floor) for f in d.atoms(sympy.floor)) for d in sizes)
    res = ss.check(model, rep, sizes=[{"H": h, "W": w} for h, w in [(29, 29), (28, 29), (32, 61), (64, 36), (33, 29)]])
    assert res.ok, "\n".join(map(str, res.mismatches))
