"""Hostile input: parsers, JSON, outputs of several tensors, the CLI and threads. Every case gives
a ShapeError whose exact text names the part at fault, promptly, and never a raw exception."""
import time

import pytest

import symshape as ss
from symshape.report import Outputs
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
    ("H/" + "/".join(["9" * 999] * 5), "cannot parse expression 'H/" + "9" * 38 + "'...'" + "9" * 30 + "' "
                                       "(5,001 characters): a number of more than 1000 digits results at position 0"),
    ("(" + "*".join(["9" * 999] * 5) + ")**2", "cannot parse expression '(" + "9" * 39 + "'...'" + "9" * 26 +
     ")**2' (5,004 characters): the power (an integer of 16,594 bits)**2 has more than 1000 digits at position 5003"),
    ("2**2**2**2**2", "cannot parse expression '2**2**2**2**2': the exponent must be an integer between -64 and 64, "
                      "got 65536 at position 3"),
    ("0**-1", "cannot parse expression '0**-1': division by zero (0 to a negative power) at position 3"),
    ("1e999", "cannot parse expression '1e999': a decimal number (inf) is only allowed as the scale of ScaledFloor "
              "at position 0"),
    ("Min(H, W, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)", "cannot parse expression 'Min(H, W, 1, 2, 3, 4, 5, 6, 7, 8, 9, "
     "10, 11)': more than 12 arguments of Min and Max in all at position 0"),
    ("+".join(["floor(H/2)"] * 101), "cannot parse expression 'floor(H/2)+floor(H/2)+floor(H/2)+floor(H'...'"
                                      "oor(H/2)+floor(H/2)+floor(H/2)' (1,110 characters): more than 100 "
                                      "function calls and // (this floor is one too many) at position 1100"),
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
    assert _refused(parse_shape, "H," * 500_000 + "W") == (
        "the shape spec '" + "H," * 20 + "'...'" + ",H" * 14 + ",W' (1,000,001 characters) is longer than 10,000 "
        "characters; write one such as '1,3,H,W'")


# --- from_json: every missing key and wrong type is named ---------------------------------------

def _report_data():
    import json

    from symshape import zoo
    return json.loads(ss.trace(zoo.seed_case1(), "1,3,H,W").to_json())


def _set(path, value):
    def edit(data):
        *keys, last = path
        for key in keys:
            data = data[key]
        data[last] = value
    return edit


def _drop(*path):
    def edit(data):
        *keys, last = path
        for key in keys:
            data = data[key]
        del data[last]
    return edit


@pytest.mark.parametrize("edit,message", [
    (_drop("model"), "model is missing"),
    (_drop("layers"), "layers is missing"),
    (_drop("layers", 1, "macs"), "layers[1].macs is missing"),
    (_drop("domain", 0, "reason"), "domain[0].reason is missing"),
    (_drop("sizes"), "sizes is missing"),
    (_set(("layers",), {}), "layers must be a list, got dict {}"),
    (_set(("layers", 0), "conv"), "layers[0] must be an object, got str 'conv'"),
    (_set(("params",), "12"), "params must be an integer, got str '12'"),
    (_set(("layers", 0, "params"), True), "layers[0].params must be an integer, got bool True"),
    (_set(("layers", 0, "name"), 0), "layers[0].name must be a string, got int 0"),
    (_set(("layers", 0, "out_shape", 1), 3), "layers[0].out_shape[1] must be an expression as a string, got int 3"),
    (_set(("input_shape",), "1,3,H,W"), "input_shape must be a list, got str '1,3,H,W'"),
    (_set(("domain", 0, "expr"), 7), "domain[0].expr must be an expression as a string, got int 7"),
    (_set(("sizes",), {"H": "7"}), "sizes.H must be an integer, got str '7'"),
    (_set(("symbols",), [1]), "symbols[0] must be a size name, got int 1"),
    (_set(("symbols",), ["1H"]), "symbols[0]: '1H' is not a valid size name: use a Python identifier such as 'H' or 'W'"),
    (_set(("layers", 0, "windows", 0, "kernel"), "7"), "layers[0].windows[0].kernel must be an integer, got str '7'"),
    (_set(("layers", 0, "windows", 1), 7), "layers[0].windows[1] must be an object, got int 7"),
    (_set(("layers", 0, "attrs"), []), "layers[0].attrs must be an object, got list []"),
    (_set(("layers", 0, "macs"), "H +"), "layers[0].macs: cannot parse expression 'H +': unexpected end at "
                                         "position 3" + TAIL),
    (_set(("output_shape",), [[[[[[[[[["1"]]]]]]]]]]), "output_shape[0][0][0][0][0][0][0][0] nests outputs more "
                                                       "than 8 deep"),
])
def test_from_json_names_the_key_at_fault(edit, message):
    import json
    data = _report_data()
    edit(data)
    assert _refused(ss.Report.from_json, json.dumps(data)) == "not a symshape report: " + message


@pytest.mark.parametrize("text,message", [
    ("[" * 100_000, "the JSON nests too deeply"),
    ("null", "expected schema 'symshape.report/1', got 'NoneType'"),
    (None, "from_json() needs JSON text, got NoneType"),
])
def test_from_json_refuses_what_is_not_a_report(text, message):
    assert _refused(ss.Report.from_json, text) == "not a symshape report: " + message


# --- models that return a dict, a tuple or a list ------------------------------------------------

DICT_NET = '''
import torch.nn as nn


class DictNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.c(x)
        return {"feat": y, "pool": y.mean((2, 3)), "n": 3}


class TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.c(x)
        return y, [y.flatten(1), y.sum()]
'''


@pytest.fixture(scope="module")
def nets():
    namespace: dict = {}
    exec(compile(DICT_NET, "dictnet.py", "exec"), namespace)  # the test's own source, not user input
    return namespace["DictNet"](), namespace["TupleNet"]()


def _torch_shapes(value):
    import torch
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, dict):
        return {k: _torch_shapes(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_torch_shapes(v) for v in value)
    return None


def _plain(outputs):
    if getattr(outputs, "names", None) is not None:
        return {k: _plain(v) for k, v in outputs.items()}
    if isinstance(outputs, Outputs):
        return tuple(_plain(v) for v in outputs)
    return None if outputs is None else tuple(int(d) for d in outputs)


def test_a_dict_or_tuple_output_matches_torch_and_renders(nets):
    import torch
    dict_net, tuple_net = nets
    for net in nets:
        rep = ss.trace(net, "1,3,H,W")
        for h, w in [(3, 3), (10, 12)]:
            expected = _torch_shapes(net(torch.zeros(1, 3, h, w)))
            assert _plain(rep.at(H=h, W=w).output_shape) == expected
        back = ss.Report.from_json(rep.to_json())
        assert back.output_shape == rep.output_shape and back.output_shape.names == rep.output_shape.names
    rep = ss.trace(dict_net, "1,3,H,W")
    assert repr(rep.output_shape) == "{'feat': (1, 8, H - 2, W - 2), 'pool': (1, 8), 'n': None}"
    assert rep.output_shape.names == ("feat", "pool", "n")
    assert str(rep).splitlines()[6] == "output feat: (1, 8, H - 2, W - 2), pool: (1, 8), n: None"
    output = (r"$\text{feat}\colon \left(1, 8, H - 2, W - 2\right), \text{pool}\colon \left(1, 8\right), "
              r"\text{n}\colon \mathrm{None}$")
    assert f"Output {output}, 224 parameters" in rep.to_markdown()
    assert f"Total & & {output} & 224" in rep.to_latex()
    assert '"output_shape": {\n    "feat": [\n      "1",' in rep.to_json()
    tup = ss.trace(tuple_net, "1,3,H,W")
    assert repr(tup.output_shape) == "((1, 8, H - 2, W - 2), ((1, 8*(H - 2)*(W - 2)), ()))"
    assert "output (1, 8, H - 2, W - 2), (1, 8*(H - 2)*(W - 2)), ()" in str(tup)
    assert '"output_shape": [\n    [\n      "1",' in tup.to_json()


def test_the_cli_summarises_a_model_that_returns_a_dict(capsys, tmp_path):
    from symshape.cli import main
    (tmp_path / "dictnet.py").write_text(DICT_NET)
    code = main(["summary", f"{tmp_path}/dictnet.py:DictNet", "--input", "1,3,H,W", "--at", "H=10,W=12"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "output feat: (1, 8, 8, 10), pool: (1, 8), n: None\n" in out


# --- the command line: malformed arguments are usage errors (exit 2), never a traceback -----------

@pytest.mark.parametrize("argv,message", [
    (["summary", "seed_case1", "--at", "H=²"], "--at H=²: a size must be a positive integer, got '²'"),
    (["summary", "seed_case1", "--at", "H=" + "9" * 101], "--at H=" + "9" * 38 + "... (103 characters): a size "
                                                         "must be a positive integer of at most 100 digits, got 101"),
    (["summary", ":"], "unknown model ':': give a zoo name (" + ", ".join(__import__("symshape").zoo.MODELS) +
                       "), MODULE:ATTR or PATH.py:ATTR"),
    (["summary", "seed_case1", "--input", "(" * 300], "cannot parse shape spec '" + "(" * 40 + "'...'" + "(" * 30 +
     "' (300 characters): item 1, '" + "(" * 40 + "'...'" + "(" * 30 + "' (300 characters), is neither an integer "
     "nor a name; write a spec such as '1,3,H,W'"),
    (["summary", "seed_case1", "--input", "1,3," + "9" * 30 + ",W"], "a size must be below 2**64, got "
                                                                    "999999999999... (30 digits)"),
    (["solve", "seed_case1", "--layer", "0", "--shape", "1,²"], "cannot parse --shape '1,²': write the trailing "
                                                               "output dims as integers, with _ for any size, e.g. 7,7 or _,7"),
    (["plot", "seed_case1", "--range", "²:5", "-o", "unused.png"], "cannot parse --range '²:5': write START:STOP "
                                                                   "with 0 < START < STOP, e.g. 8:257"),
    (["plot", "seed_case1", "--range", "1:999999999", "-o", "unused.png"], "--range 1:999999999: at most 100,000 "
                                                                           "resolutions, got 999,999,998; plot a narrower range"),
])
def test_malformed_cli_arguments_exit_2_with_a_message(capsys, argv, message):
    from symshape.cli import main
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", f"symshape: error: {message}\n")


def test_markdown_escapes_html_and_markdown_in_names():
    import torch.nn as nn
    evil = type("<script>alert(1)</script>", (nn.Sequential,), {})()
    evil.add_module("<img src=x onerror=alert(1)>", nn.Conv2d(3, 4, 3))
    evil.add_module("a|b`c", nn.ReLU())
    lines = ss.trace(evil, "1,3,H,W").to_markdown().splitlines()
    assert lines[0] == r"**&lt;script&gt;alert\(1\)&lt;/script&gt;**, input $\left(1, 3, H, W\right)$"
    assert lines[2] == r"- $H_{\text{&lt;img src=x onerror=alert(1)&gt;}} = H - 2$"
    assert lines[7] == (r"| &lt;img src=x onerror=alert\(1\)&gt; | Conv2d | $\left(1, 4, H - 2, W - 2\right)$ | 112 | "
                        r"$108 \left(H - 2\right) \left(W - 2\right)$ | $3/1/0$ |")
    assert lines[8].startswith(r"| a\|b\`c | ReLU |")
    assert "<script" not in "\n".join(lines) and "<img" not in "\n".join(lines)


# --- threads -------------------------------------------------------------------------------------

def test_tracing_from_8_threads_gives_identical_answers_and_leaves_torch_working():
    import threading

    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)) + x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.block, self.head = nn.Conv2d(3, 4, 3), Block(), nn.Linear(4, 2)

        def forward(self, x):
            y = self.block(self.stem(x))
            return {"logits": self.head(y.mean((2, 3))), "map": y}

    expected = ss.trace(Net(), "N,3,H,W").to_json()
    assert '"name": "block.add"' in expected  # Block's forward is an fx graph: fx patches globals while it traces
    patched = (nn.Module.__call__, nn.Module.__getattr__, torch.relu)
    answers, errors = [], []

    def work():
        net = Net()
        for _ in range(25):
            try:
                answers.append(ss.trace(net, "N,3,H,W").to_json())
            except Exception as err:  # collected, so that the assertion shows it
                errors.append(repr(err))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(answers) == 200 and all(a == expected for a in answers)
    assert (nn.Module.__call__, nn.Module.__getattr__, torch.relu) == patched
    out = Net()(torch.zeros(2, 3, 9, 9))  # fx's patches are gone: torch runs the model as usual
    assert tuple(out["logits"].shape) == (2, 2) and tuple(out["map"].shape) == (2, 4, 3, 3)


# --- sizes given as NumPy or torch integer scalars -------------------------------------------------

def test_sizes_may_be_numpy_or_torch_integers_but_not_floats_or_bools():
    import numpy as np
    import torch

    rep = ss.trace(__import__("symshape").zoo.seed_case1(), "1,3,H,W")
    assert rep.at(H=np.int64(32), W=torch.tensor(32)).output_shape == (1, 10)
    assert rep.at(H=np.uint8(32), W=np.int32(32)).macs == rep.at(H=32, W=32).macs == 849056
    assert rep.violations(H=np.int64(31), W=torch.tensor(32, dtype=torch.int16)) == []
    for bad, shown in [(np.float64(32.0), "np.float64(32.0)"), (True, "True"), (torch.tensor(True), "tensor(True)"),
                       (torch.tensor(32.0), "tensor(32.)"), (np.int64(0), "np.int64(0)")]:
        with pytest.raises(ss.ShapeError) as err:
            rep.at(H=bad, W=32)
        assert str(err.value) == f"size H must be a positive integer, got {shown}"


# --- tracing leaves the model as it was ------------------------------------------------------------

def test_tracing_leaves_the_models_attributes_and_caches_unchanged():
    import torch
    import torch.nn as nn

    class Cached(nn.Module):
        """Fills a cache keyed by device and counts its calls, as timm's attention blocks do."""

        def __init__(self):
            super().__init__()
            self.biases, self.cache, self.calls = nn.Parameter(torch.zeros(4)), {}, 0

        def forward(self, x):
            self.calls += 1
            self.last = x.shape
            if str(x.device) not in self.cache:
                self.cache[str(x.device)] = self.biases * 2
            return x + self.cache[str(x.device)]

    for model in (Cached(), nn.Sequential(nn.Linear(4, 4), Cached())):
        inner = model if isinstance(model, Cached) else model[1]
        cache = inner.cache
        rep = ss.trace(model, "N,4")
        assert str(rep.output_shape) == "(N, 4)"
        assert inner.cache is cache and cache == {} and inner.calls == 0 and not hasattr(inner, "last")
        assert ss.check(model, rep, sizes=[{"N": 2}]).ok
