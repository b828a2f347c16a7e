"""Window partitions whose element counts are products of sizes: the equation a reshape states
(``h·w = 49·floor(h/7)·floor(w/7)``) holds factor by factor, and a condition the domain already
implies still fixes the coarser floor, so window counts cancel and no ``Max``/``Min`` piles up
over the blocks (gcvit's global query, maxvit's strided stages)."""
import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape as ss
from symshape.decide import always_nonnegative, slope
from symshape.floors import floor_div
from symshape.solve.conditions import tight_product
from symshape.symbols import size_symbol

H, W = size_symbol("H"), size_symbol("W")


def _has_extremum(value) -> bool:
    """Whether a size, MACs or (nested) shape holds a Max or Min: a window count left undecided."""
    if isinstance(value, (tuple, list)):
        return any(_has_extremum(v) for v in value)
    return isinstance(value, sympy.Basic) and value.has(sympy.Max, sympy.Min)


def agrees(model, spec, points):
    rep = ss.trace(model, spec)
    res = ss.check(model, rep, sizes=points)
    assert res.ok, res.short()
    return rep, res


# ---------------------------------------------------------------- the algebra

def test_slope_of_floor_terms():
    assert slope(7 * floor_div(H + 3, 28), H) == sympy.Rational(1, 4)
    assert slope(floor_div(7 * floor_div(H + 3, 28) - 1, 2) + 1, H) == sympy.Rational(1, 8)
    assert slope(H - 2 * floor_div(H, 2), H) == 0
    assert slope(H * floor_div(H, 2), H) is None


def test_a_window_partition_after_a_stride_holds_factor_by_factor():
    h, w = floor_div(H - 1, 4) + 1, floor_div(W - 1, 4) + 1
    assert tight_product(8 * h * w, 392 * floor_div(H + 3, 28) * floor_div(W + 3, 28)) == [
        (h, 7 * floor_div(H + 3, 28)), (w, 7 * floor_div(W + 3, 28))]


def test_a_constant_inside_a_factor_joins_the_others():
    h = floor_div(7 * floor_div(H + 3, 28) - 1, 2) + 1  # a stride-2 conv after the partition above
    w = floor_div(7 * floor_div(W + 3, 28) - 1, 2) + 1
    lhs, rhs = sympy.Mul(128 * h, w), 6272 * floor_div(H + 3, 56) * floor_div(W + 3, 56)
    assert tight_product(lhs, rhs) is None  # h is 0 at H < 25, where the product is 0 on both sides
    assert tight_product(lhs, rhs, {H: 25, W: 25}) == [(h, 7 * floor_div(H + 3, 56)), (w, 7 * floor_div(W + 3, 56))]


def test_products_that_do_not_split():
    # W < 2·floor((W + 1)/2) at odd W: the factors are not ordered the same way
    assert tight_product(H * W, 4 * floor_div(H, 2) * floor_div(W + 1, 2)) is None
    # 2·floor(H/2) <= H but 3·floor(W/3) <= W: the constants' product (6) is not 4
    assert tight_product(H * W, 4 * floor_div(H, 2) * floor_div(W, 3)) is None
    # one symbol twice: not a pairing by symbol
    assert tight_product(H * H, 4 * floor_div(H, 2) * floor_div(H, 2)) is None


def test_an_extremum_that_divides_is_left_undecided():
    """``floor(H·W/Max(H, W))·Max(H, W)``: putting 0 for the Max divides by zero; the sign is
    undecided (None), not a raw sympy TypeError (gcvit_xxtiny raised 'Invalid NaN comparison')."""
    m = sympy.Max(H, W)
    assert always_nonnegative(sympy.floor(H * W / m) * m - 1) is None
    assert always_nonnegative(sympy.nan) is None
    assert always_nonnegative(sympy.Rational(-1, 2)) is False


# ---------------------------------------------------------------- the idioms, against torch

def window_partition(x, ws):
    B, h, w, C = x.shape
    x = x.view(B, h // ws, ws, w // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)


def window_reverse(windows, ws, h, w):
    C = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, h, w, C)


class GlobalQueryBlock(nn.Module):
    """gcvit's block: windows with no divisibility guard, and a query shared by the windows of an
    image, repeated ``B // q_global.shape[0]`` times."""

    def __init__(self, dim, ws):
        super().__init__()
        self.ws = ws
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, q_global):
        _, h, w, C = x.shape
        win = window_partition(x, self.ws).view(-1, self.ws * self.ws, C)
        B, N, _ = win.shape
        k, v = self.kv(win).reshape(B, N, 2, C).unbind(2)
        q = q_global.repeat_interleave(B // q_global.shape[0], dim=0).reshape(B, N, C)
        out = self.proj((q @ k.transpose(-2, -1)).softmax(-1) @ v)
        return x + window_reverse(out.view(-1, self.ws, self.ws, C), self.ws, h, w)


class GlobalQueryNet(nn.Module):
    def __init__(self, depth=3, ws=3):
        super().__init__()
        self.ws = ws
        self.stem = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.blocks = nn.ModuleList(GlobalQueryBlock(8, ws) for _ in range(depth))

    def forward(self, x):
        x = self.stem(x)
        q = F.adaptive_avg_pool2d(x, self.ws).permute(0, 2, 3, 1)
        x = x.permute(0, 2, 3, 1)
        for blk in self.blocks:
            x = blk(x, q)
        return x.permute(0, 3, 1, 2)


def test_global_query_windows_agree_with_torch():
    points = [{"H": h, "W": w} for h in range(1, 30) for w in (12, 13)]
    rep, res = agrees(GlobalQueryNet(), "2,3,H,W", points)
    assert [ss.fmt(c.expr) for c in rep.domain] == [
        "floor((H - 1)/4) + 1 = 3*floor((H + 3)/12)", "floor((W - 1)/4) + 1 = 3*floor((W + 3)/12)",
        "72*floor((H + 3)/12)*floor((W + 3)/12) >= 1"]
    assert rep.output_shape == (2, 8, 3 * floor_div(H + 3, 12), 3 * floor_div(W + 3, 12))
    inside = [p["H"] for p in res.sizes if p["W"] == 12 and not rep.violations(**p)]
    assert inside == [9, 10, 11, 12, 21, 22, 23, 24]
    assert not any(_has_extremum(layer.out_shape) or _has_extremum(layer.macs) for layer in rep.layers)


class Partition(nn.Module):
    """maxvit's partition: the size must be a multiple of the window, as the model asserts."""

    def __init__(self, dim, ws):
        super().__init__()
        self.ws = ws
        self.lin = nn.Linear(dim, dim)

    def forward(self, x):
        _, h, w, _ = x.shape
        assert h % self.ws == 0, "the height must be a multiple of the window"
        assert w % self.ws == 0, "the width must be a multiple of the window"
        return x + window_reverse(self.lin(window_partition(x, self.ws)), self.ws, h, w)


class Down(nn.Module):
    """A stride-2 conv whose shortcut is a 2x2 average pool: the map must have an even size."""

    def __init__(self, dim):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, 2, 1)
        self.pool = nn.AvgPool2d(2, 2)

    def forward(self, x):
        return self.conv(x) + self.pool(x)


class StridedWindows(nn.Module):
    def __init__(self, ws=3):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.parts = nn.ModuleList(Partition(8, ws) for _ in range(3))
        self.downs = nn.ModuleList(Down(8) for _ in range(2))

    def forward(self, x):
        x = self.stem(x)
        for i, part in enumerate(self.parts):
            x = part(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            if i < len(self.downs):
                x = self.downs[i](x)
        return x


def test_strided_windows_agree_with_torch():
    """The map after the stem is 5k, the pooled shortcut needs k even, and the next partition's
    guard 5 | floor(5k/2) is then implied: it still gives floor(5k/2) = 5·floor(k/2), by which the
    window count divides out (else a Max/Min of floors of ratios grows with every block)."""
    points = [{"H": h, "W": w} for h in (1, 40, 76, 77, 78, 79, 80, 81, 100, 157, 160, 161) for w in (80, 82)]
    rep, res = agrees(StridedWindows(5), "1,3,H,W", points)
    assert rep.output_shape == (1, 8, 5 * floor_div(H + 3, 80), 5 * floor_div(W + 3, 80))
    inside = [p["H"] for p in res.sizes if p["W"] == 80 and not rep.violations(**p)]
    assert inside == [77, 78, 79, 80, 157, 160]
    assert not [p for p in res.sizes if p["W"] == 82 and not rep.violations(**p)]
    assert not any(_has_extremum(layer.out_shape) or _has_extremum(layer.macs) for layer in rep.layers)
