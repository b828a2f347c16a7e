"""Regression tests: the solver never answers wrong and never hangs (unbounded exact search,
visible scan caveats, infinite sets kept whole, prompt refusals, merged boxes)."""
import time

import pytest
import sympy
import torch.nn as nn

import symshape as ss
from symshape.evaluate import compile_expr
from symshape.symbols import symbols

H, W, N = symbols("H W N")


# ---------------------------------------------------------------- 1. no cut-off at 2**62

def test_polynomial_bounds_beyond_2_62_are_exact():
    s = ss.solve(H * (H + 1) <= 10 ** 40, over=H)
    assert str(s) == "1 ≤ H ≤ 99999999999999999999"
    b = 99999999999999999999
    assert b * (b + 1) <= 10 ** 40 < (b + 1) * (b + 2)
    t = ss.solve(H * H >= 10 ** 40, over=H)
    assert str(t) == "H ≥ 100000000000000000000" and 10 ** 20 in t and 10 ** 20 - 1 not in t


def test_conv_macs_square_bound_is_exact():
    conv = ss.trace(nn.Conv2d(3, 8, 3, stride=2), "1,3,H,W")
    s = conv.solve(conv.macs <= 10 ** 40, sympy.Eq(H, W))
    assert str(s) == "H = W, 3 ≤ H ≤ 13608276348795433880"
    macs = compile_expr(conv.macs)
    top = 13608276348795433880
    assert macs({H: top, W: top}) <= 10 ** 40 < macs({H: top + 1, W: top + 1})
    assert (10 ** 21, 10 ** 21) not in s and (top, top) in s and (top + 1, top + 1) not in s
    assert s.count() == top - 2
