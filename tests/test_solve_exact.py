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


# ---------------------------------------------------------------- 2. a scan's caveat is never hidden

CONV = None


def conv():
    global CONV
    if CONV is None:
        CONV = ss.trace(nn.Conv2d(3, 8, 3), "1,3,H,W")
    return CONV


def test_scanned_answer_says_so_and_refuses_beyond_the_scan():
    from symshape.cli import _solution_json

    p = 10 ** 6 + 3
    t = time.perf_counter()
    s = conv().solve(sympy.Eq(sympy.Mod(H * W, p), 0))
    assert time.perf_counter() - t < 5
    assert str(s) == ("3 ≤ H ≤ 66, W ≡ 0 (mod 1000003), W ≥ 1000003\n"
                      "(scanned H in [3, 66] only: H*W ≡ 0 (mod 1000003) is not monotone in the sizes)")
    assert "scanned H in [3, 66] only" in repr(s) and s.scanned == {H: 66}
    assert (5, 1000003) in s and (5, 1000004) not in s  # inside the scan: exact
    with pytest.raises(ss.ShapeError, match="scanned only up to a bound"):
        (1000003, 3) in s  # noqa: B015 (a solution, beyond the scan)
    with pytest.raises(ss.ShapeError, match="scanned only up to a bound"):
        len(s)
    import json
    data = json.loads(_solution_json(s, []))
    assert data["caveat"] == s.note and data["exact_up_to"] == {"H": 66} and "scanned" in data["text"]
    assert r"\text{(scanned H in [3, 66] only" in s.to_latex()


def test_empty_scan_never_claims_no_positive_size():
    from symshape.floors import floor_div

    p = 10 ** 6 + 3
    s = ss.solve(sympy.Eq(sympy.Mod(floor_div(H * H, 7), p), p - 1), over=H)
    assert not any((h * h // 7) % p == p - 1 for h in range(1, 4097))
    assert str(s) == ("no solution found: none with H ≤ 4096; sizes beyond that were not checked\n"
                      "(scanned H in [1, 4096] only for Mod(floor((H**2)/7), 1000003) = 1000002: "
                      "not monotone, not periodic)")
    assert "positive size" not in repr(s)
    with pytest.raises(ss.ShapeError, match="scanned only up to a bound"):
        s.min()
    with pytest.raises(ss.ShapeError, match="scanned only up to a bound"):
        list(s)
    assert 7 not in s
    with pytest.raises(ss.ShapeError, match="scanned only up to a bound"):
        5000 in s  # noqa: B015


def test_cli_json_has_a_caveat_key(capsys):
    from symshape.cli import main

    assert main(["solve", "seed_case1", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"caveat": null' in out and '"exact_up_to": {}' in out
