"""Fuzzing the parsers (size expressions, shape specs, CLI arguments, report JSON) with random and
hostile strings: each gives a value or a ShapeError, never another exception, within a second."""
import functools
import json
import time

import sympy
from hypothesis import HealthCheck, given, settings, strategies as st

from symshape.cli import parse_sizes, parse_target
from symshape.render.json import from_json
from symshape.symbols import ShapeError, parse_expr, parse_shape

TOKENS = ["H", "W", "N", "width", "0", "1", "2", "7", "32", "64", "65", "9" * 30, "9" * 1001, "0.5", "0.29", "1e308",
          "1e-320", "1e999", "+", "-", "*", "/", "//", "**", "(", ")", ",", " ", "floor(", "ceiling(", "Min(", "Max(",
          "Mod(", "ScaledFloor(", "exp(", "__import__(", ">=", "<=", "==", "!=", "<", ">", "=", "²", "٣", "ⅷ", ";",
          ".", "'", "\\", "\x00", "\n", "[", "]", "_", "H=", "-3", "None"]
SETTINGS = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 300)), deadline=None, suppress_health_check=list(HealthCheck))

token_soup = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
repeated = st.builds(lambda t, n, tail: t * n + tail, st.sampled_from(TOKENS), st.integers(1, 3000),
                     st.sampled_from(["", "H", ")", "1"]))
nested = st.builds(lambda open_, n, core, close: open_ * n + core + close * n,
                   st.sampled_from(["(", "floor(", "Min(H,", "-", "Mod(", "ScaledFloor(", "2**"]),
                   st.integers(1, 200), st.sampled_from(["H", "9" * 400, "H,2)", "0"]),
                   st.sampled_from([")", ",2)", ",0.5)", ""]))
hostile = st.one_of(token_soup, repeated, nested, st.text(max_size=200))


def _value_or_shape_error(fn, text):
    start = time.thread_time()
    try:
        value = fn(text)
    except ShapeError as err:
        assert str(err) and len(str(err)) < 2000
        value = None
    assert time.thread_time() - start < 1.0, text[:200]
    return value


@SETTINGS
@given(hostile)
def test_parse_expr_gives_an_expression_or_a_shape_error(text):
    value = _value_or_shape_error(parse_expr, text)
    assert value is None or isinstance(value, sympy.Basic)


@SETTINGS
@given(hostile)
def test_parse_shape_and_cli_arguments_give_a_value_or_a_shape_error(text):
    assert _value_or_shape_error(parse_shape, text) is None or all(
        isinstance(d, sympy.Expr) for d in parse_shape(text))
    sizes = _value_or_shape_error(parse_sizes, text)
    assert sizes is None or all(isinstance(v, int) and v > 0 for v in sizes.values())
    target = _value_or_shape_error(parse_target, text)
    assert target is None or all(v is None or isinstance(v, int) for v in target)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False),
              hostile, st.sampled_from(["H", "1", "H >= 7", "floor((H - 7)/2) + 1"])),
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.sampled_from(["name", "kind", "expr", "kernel", "layer", "reason", "why",
                                                                "macs", "params", "feat"]), children, max_size=5)),
    max_leaves=30)
REPORT_KEYS = ["model", "input_shape", "symbols", "sizes", "output_shape", "params", "layers", "domain"]


@SETTINGS
@given(st.dictionaries(st.sampled_from(REPORT_KEYS), json_values, max_size=8))
def test_from_json_gives_a_report_or_a_shape_error(data):
    text = json.dumps({"schema": "symshape.report/1", **data})
    _value_or_shape_error(from_json, text)


@functools.lru_cache(maxsize=None)
def _real_report(factory) -> str:
    import symshape as ss
    return ss.trace(factory(), "1,3,H,W").to_json()


@SETTINGS
@given(st.data())
def test_from_json_of_a_damaged_real_report_gives_a_report_or_a_shape_error(data):
    import symshape as ss
    from symshape import zoo
    damaged = json.loads(_real_report(zoo.seed_case2))
    for _ in range(data.draw(st.integers(1, 4))):
        node, parent, key = damaged, None, None
        while True:  # walk down to a random place and replace what is there
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            parent, key = node, data.draw(st.sampled_from(keys))
            if not isinstance(node[key], (dict, list)) or data.draw(st.booleans()):
                break
            node = node[key]
        if parent is not None:
            parent[key] = data.draw(json_values)
    _value_or_shape_error(from_json, json.dumps(damaged))
