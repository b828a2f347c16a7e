"""Hostile input: parsers, JSON, outputs of several tensors, the CLI and threads. Every case gives
a ShapeError whose exact text names the part at fault, promptly, and never a raw exception."""
import time

import pytest

import symshape as ss
from symshape.symbols import ShapeError, parse_expr, parse_shape

TAIL = "; use integers, size names, + - * / // **, parentheses and floor, ceiling, Min, Max, Mod"


def _refused(fn, *args) -> str:
    start = time.thread_time()
    with pytest.raises(ShapeError) as err:
        fn(*args)
    assert time.thread_time() - start < 1.0
    return str(err.value)


NINES = "9" * 4000
DEEP = "(" * 300 + "H" + ")" * 300
LONG = "H+" * 500_000 + "H"  # 1 MB


@pytest.mark.parametrize("text,message", [
    ("Mod(H, 0)", "cannot parse expression 'Mod(H, 0)': Mod by zero (its second argument is 0) at position 0"),
    ("ScaledFloor(2, 1e308)", "cannot parse expression 'ScaledFloor(2, 1e308)': the scale of ScaledFloor must be "
                              "a positive number at most 2**32, got 1e+308 at position 0"),
    ("ScaledFloor(H, W)", "cannot parse expression 'ScaledFloor(H, W)': the scale of ScaledFloor must be "
                          "a positive number at most 2**32, got W at position 0"),
    (DEEP, "cannot parse expression '" + "(" * 40 + "'...'" + ")" * 30 + "' (601 characters): more than 64 "
           "nested levels (parentheses, calls, signs, powers or //) at position 65"),
    ("-" * 65 + "H", f"cannot parse expression '{'-' * 65}H': more than 64 nested levels (parentheses, calls, "
                     "signs, powers or //) at position 65"),
    ("H//" * 101 + "H", "cannot parse expression '" + ("H//" * 14)[:40] + "'...'" + ("//H" * 10) + "' "
                        "(304 characters): more than 64 nested levels (parentheses, calls, signs, powers or //) "
                        "at position 196"),
    ("9" * 5000, "cannot parse expression '" + "9" * 40 + "'...'" + "9" * 30 + "' (5,000 characters): the number "
                 "999999999999... has more than 1000 digits at position 0"),
    (f"((({NINES})**64)**64)**64", "cannot parse expression '(((" + "9" * 37 + "'...'" + "9" * 15 + ")**64)**64)**64' "
                                   "(4,018 characters): the number 999999999999... has more than 1000 digits at "
                                   "position 3"),
    ("(((" + "9" * 400 + ")**64)**64)**64", "cannot parse expression '(((" + "9" * 37 + "'...'" + "9" * 15 +
     ")**64)**64)**64' (418 characters): the power 999999999999... (400 digits)**64 has more than 1000 digits at "
     "position 406"),
    ("2**2**2**2**2", "cannot parse expression '2**2**2**2**2': the exponent must be an integer between -64 and 64, "
                      "got 65536 at position 3"),
    ("0**-1", "cannot parse expression '0**-1': division by zero (0 to a negative power) at position 3"),
    ("1e999", "cannot parse expression '1e999': a decimal number (inf) is only allowed as the scale of ScaledFloor "
              "at position 0"),
    ("Min(H, W, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)", "cannot parse expression 'Min(H, W, 1, 2, 3, 4, 5, 6, 7, 8, 9, "
     "10, 11)': more than 12 arguments of Min and Max in all at position 0"),
    ("+".join(f"floor(H/{i})" for i in range(2, 103)),
     "cannot parse expression 'floor(H/2)+floor(H/3)+floor(H/4)+floor(H'...'100)+floor(H/101)+floor(H/102)' "
     "(1,206 characters): more than 100 function calls and // (this floor is one too many) at position 1194"),
])
def test_parse_expr_refuses_hostile_text_promptly(text, message):
    assert _refused(parse_expr, text) == message + TAIL


def test_a_megabyte_sum_is_refused_at_once_and_a_long_one_parses_linearly():
    start = time.perf_counter()
    assert _refused(parse_expr, LONG) == (
        "cannot parse expression '" + "H+" * 20 + "'...'" + "+H" * 15 + "' (1,000,001 characters): it is 1,000,001 "
        "characters long, more than the 10,000 allowed; no model's expression is that long")
    assert time.perf_counter() - start < 1.0
    H = ss.symbols("H")
    start = time.thread_time()  # 4,999 terms: one Add, not 4,999 re-sorted partial sums
    assert parse_expr("+".join(["H"] * 4999)) == 4999 * H
    assert parse_expr("-".join(["H"] * 4999)) == -4997 * H
    assert time.thread_time() - start < 1.0


def test_parse_shape_refuses_huge_sizes():
    assert _refused(parse_shape, "1,3," + "9" * 5000 + ",W") == "a size must be below 2**64, got 999999999999... (5000 digits)"
    assert _refused(parse_shape, f"1,{2 ** 64}") == "a size must be below 2**64, got an integer of 20 digits"
    assert _refused(parse_shape, [1, 10 ** 5000]) == "a size must be below 2**64, got an integer of 16610 bits"
    assert parse_shape(f"1,{2 ** 64 - 1}") == (1, 2 ** 64 - 1)
