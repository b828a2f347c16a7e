"""ss.check: symshape's formulas against torch (meta device, FlopCounterMode), and the campaign."""
import random

import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn


import symshape as ss
from symshape import zoo
from symshape.verify import default_sizes
from symshape.cli import main
from symshape.rules import conv as conv_rules
from symshape.rules.registry import RULES, Out
from symshape.testing import random_network

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_every_zoo_model_passes_at_its_default_sizes(name):
    entry = zoo.MODELS[name]
    with torch.device("meta"):  # no weight initialisation: the check runs on meta anyway
        model = entry.factory()
    rep = ss.trace(model, entry.input)
    res = ss.check(model, rep)
    assert res.ok, str(res)
    assert not res.skipped
    runs = [c for c in res.comparisons if c.what == "domain" and c.actual == "runs"]
    outside = [c for c in res.comparisons if c.what == "domain" and c.actual != "runs"]
    assert runs and (outside or not rep.domain)  # both sides of the domain were tried, where it has two
    modules = dict(model.named_modules())
    compared = {c.layer for c in res.comparisons if c.what == "shape"}
    assert compared >= {layer.name for layer in rep.layers if layer.name in modules}
    # function nodes of a graph (residual adds, flattens) have no module to hook: the totals cover them
    if any(layer.name not in modules for layer in rep.layers):
        assert any("compared through the model's output shape and total MACs only" in note for note in res.notes)


def broken_conv(m, x):
    out = conv_rules.conv(m, x)
    return Out((*out.shape[:-1], out.shape[-1] + 1), out.macs, out.requires)


@pytest.fixture
def broken(monkeypatch):
    for cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        monkeypatch.setitem(RULES, cls, broken_conv)


def test_a_broken_rule_fails_the_check_with_a_readable_report(broken):
    model = nn.Sequential(nn.Conv2d(3, 32, kernel_size=7, stride=2), nn.ReLU(), nn.Flatten())
    rep = ss.trace(model, "1,3,H,W")
    res = ss.check(model, rep, sizes=[{"H": 31, "W": 31}])
    assert not res.ok
    assert [(c.layer, c.what) for c in res.mismatches] == [("0", "shape"), ("1", "shape"), ("2", "shape"),
                                                          ("(model)", "shape")]
    assert str(res.mismatches[0]) == (
        "at H=31, W=31, layer '0' (Conv2d) shape: predicted (1, 32, 13, 14), torch (1, 32, 13, 13); "
        "formula (1, 32, floor((H - 7)/2) + 1, floor((W - 7)/2) + 2)")
    assert str(res.mismatches[2]) == (
        "at H=31, W=31, layer '2' (Flatten) shape: predicted (1, 5824), torch (1, 5408); "
        "formula (1, 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 2))")
    text = str(res)
    assert text.startswith("check Sequential against torch (meta): FAILED: 1 sizes, ")
    assert "\nmismatches:\n  at H=31, W=31, layer '0' (Conv2d) shape: predicted (1, 32, 13, 14)" in text


def test_the_rule_is_restored_after_the_broken_test():
    model = zoo.seed_case1()
    assert ss.check(model, ss.trace(model, "1,3,H,W"), sizes=[{"H": 31, "W": 31}]).ok


def test_a_domain_too_wide_is_a_mismatch(monkeypatch):
    def no_conditions(m, x):
        return Out(conv_rules.conv(m, x).shape, conv_rules.conv(m, x).macs, ())

    monkeypatch.setitem(RULES, nn.Conv2d, no_conditions)
    model = nn.Sequential(nn.Conv2d(1, 2, 5))
    rep = ss.trace(model, "1,1,H,W")
    res = ss.check(model, rep, sizes=[{"H": 4, "W": 9}])
    assert [c.what for c in res.mismatches] == ["domain"]
    assert res.mismatches[0].note.startswith(
        "inside the domain, but torch raised in module '0' (Conv2d): RuntimeError: Calculated padded input size "
        "per channel: (4 x 9). Kernel size: (5 x 5). Kernel size can't be greater than actual input size")


def test_a_domain_too_narrow_is_a_mismatch(monkeypatch):
    def strict(m, x):
        out = conv_rules.conv(m, x)
        return Out(out.shape, out.macs, out.requires + ((sympy.Ge(x[2], 10), "made up"),))

    monkeypatch.setitem(RULES, nn.Conv2d, strict)
    model = nn.Sequential(nn.Conv2d(1, 2, 5))
    res = ss.check(model, ss.trace(model, "1,1,H,W"), sizes=[{"H": 9, "W": 9}])
    assert [str(c) for c in res.mismatches] == [
        "at H=9, W=9, layer '0' (Conv2d) domain: predicted raises, torch runs; formula H >= 10 (outside the domain "
        "(layer '0' (Conv2d) needs H >= 10: made up), but torch runs there)"]


def test_sizes_must_name_every_symbol():
    model = zoo.seed_case1()
    with pytest.raises(ss.ShapeError, match=r"^check: sizes \{'H': 32\} must give exactly the report's sizes H, W; "
                                            r"missing W$"):
        ss.check(model, ss.trace(model, "1,3,H,W"), sizes=[{"H": 32}])


def test_layers_that_are_not_modules_are_compared_through_the_totals():
    model = zoo.seed_case1()
    rep = ss.trace(model, "1,3,H,W")
    from dataclasses import replace

    rep = replace(rep, layers=rep.layers[:-1] + (replace(rep.layers[-1], name="linear_fn"),))
    res = ss.check(model, rep, sizes=[{"H": 32, "W": 32}])
    assert res.ok
    assert "linear_fn" not in {c.layer for c in res.comparisons}
    assert res.notes == ("1 report layers are not modules of the model ('linear_fn'): they are compared through "
                         "the model's output shape and total MACs only",)
    # the totals still include it: a wrong MAC count there is caught
    bad = replace(rep, layers=rep.layers[:-1] + (replace(rep.layers[-1], macs=rep.layers[-1].macs + 1),))
    assert [(c.layer, c.what) for c in ss.check(model, bad, sizes=[{"H": 32, "W": 32}]).mismatches] == [
        ("(model)", "macs")]


class Pairwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Bilinear(4, 4, 3)

    def forward(self, x):
        return self.b(x, x)


def test_flopcounter_blind_spots_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.setitem(RULES, Pairwise, lambda m, x: RULES[nn.Bilinear](m.b, x, x))
    model = Pairwise()
    res = ss.check(model, ss.trace(model, "N,4"), sizes=[{"N": 2}])
    assert res.ok
    assert [(c.layer, c.what, c.predicted, c.actual) for c in res.skipped] == [
        ("", "macs", 96, 0), ("(model)", "macs", 96, 0)]
    assert res.skipped[0].note.startswith("contains Bilinear 'b': FlopCounterMode has no formula for aten._trilinear")


def test_default_sizes_cover_minimum_spread_and_outside():
    rep = ss.trace(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.PixelUnshuffle(2)), "1,1,H,W")
    sizes = default_sizes(rep, n=5)
    inside = [s for s in sizes if not rep.violations(**s)]
    outside = [s for s in sizes if rep.violations(**s)]
    assert inside[0] == {"H": 6, "W": 6}  # the minimum input: floor((H - 2)/2) must be even and >= 2
    assert len(inside) == 5 and len({s["H"] for s in inside}) > 1 and len({s["W"] for s in inside}) > 1
    assert {"H": 5, "W": 6} in outside and {"H": 6, "W": 5} in outside
    assert {"H": 7, "W": 6} not in outside and {"H": 8, "W": 6} in outside  # the first invalid value above 6


def test_default_sizes_without_symbols_and_without_a_valid_size(monkeypatch):
    assert default_sizes(ss.trace(nn.Conv2d(1, 1, 3), "1,1,8,8")) == [{}]
    rep = ss.trace(nn.Sequential(nn.Flatten(), nn.Linear(10 ** 7, 2)), "1,1,H,W")
    # the solver splits H*W = 10**7 into divisors, so the minimal inputs are found at once
    assert default_sizes(rep, n=3)[:3] == [{"H": 1, "W": 10 ** 7}, {"H": 2, "W": 5 * 10 ** 6}, {"H": 4, "W": 2500000}]
    # when the solver raises, the domain-only picker scans near the lower bounds, and gives up here
    def refuse(self):
        raise ss.ShapeError("the solver cannot evaluate this domain")

    monkeypatch.setattr(ss.Report, "valid_inputs", refuse)
    with pytest.raises(ss.ShapeError, match=r"^default_sizes found no size inside the domain near its lower "
                                            r"bounds \(H >= 1, W >= 1\): pass sizes= explicitly$"):
        default_sizes(rep)


def test_default_sizes_fall_back_to_the_domain_when_the_solver_only_scans(monkeypatch):
    rep = ss.trace(zoo.seed_case1(), "1,3,H,W")
    scanned = ss.SolutionSet(rep.symbols, rep.valid_inputs().boxes, note="scanned H in [1, 4096] only")
    monkeypatch.setattr(ss.Report, "valid_inputs", lambda self: scanned)
    assert default_sizes(rep, n=3) == [{"H": 31, "W": 31}, {"H": 32, "W": 31}, {"H": 31, "W": 32}, {"H": 30, "W": 31},
                                       {"H": 33, "W": 31}, {"H": 31, "W": 30}, {"H": 31, "W": 33}]


@pytest.mark.parametrize("name", ["seed_case1", "unet"])
def test_check_runs_at_the_minimal_inputs_and_just_below_them(name):
    entry = zoo.MODELS[name]
    with torch.device("meta"):
        model = entry.factory()
    rep = ss.trace(model, entry.input)
    minimal = [dict(zip(("H", "W"), p)) for p in rep.min_input()]
    below = [{**p, k: v - 1} for p in minimal for k, v in p.items() if v > 1]
    res = ss.check(model, rep)
    assert res.ok, str(res)
    assert all(p in res.sizes for p in minimal + below)
    verdicts = {tuple(c.sizes.values()): c.actual for c in res.comparisons if c.what == "domain"}
    assert [verdicts[tuple(p.values())] for p in below] == ["raises"] * len(below)
    assert all(p in rep.valid_inputs() and rep.violations(**p) == [] for p in minimal)


# ------------------------------------------------ regressions found by the campaign (rules/ fixes)

@pytest.mark.parametrize("module, spec, sizes", [
    (nn.FractionalMaxPool3d(2, output_size=3), "1,1,D,5,5", [{"D": 4}, {"D": 5}]),     # out + k - 1 < L in 3d
    (nn.FractionalMaxPool2d(2, output_size=3), "1,1,H,4", [{"H": 3}, {"H": 4}]),       # but <= in 2d
    (nn.GroupNorm(3, 3), "N,3,L", [{"N": 1, "L": 1}, {"N": 2, "L": 1}, {"N": 1, "L": 2}]),
    (nn.InstanceNorm1d(3), "1,3,L", [{"L": 1}, {"L": 2}]),
    (nn.InstanceNorm1d(3, track_running_stats=True), "1,3,L", [{"L": 1}]),
    (nn.ZeroPad1d((-2, 3)), "1,1,L", [{"L": 1}, {"L": 2}]),
    (nn.AvgPool3d(4, 2, 2), "1,1,D,4,4", [{"D": 3}, {"D": 4}]),
])
def test_rule_fixes_agree_with_torch(module, spec, sizes):
    res = ss.check(module, ss.trace(module, spec), sizes=sizes, device="cpu")
    assert res.ok, str(res)
    verdicts = [c.actual for c in res.comparisons if c.what == "domain"]
    assert "raises" in verdicts or module.__class__ is nn.InstanceNorm1d and module.track_running_stats


def test_rule_fixes_state_the_domain():
    assert ss.trace(nn.FractionalMaxPool3d(2, output_size=3), "1,1,D,5,5").domain[-1].expr == sympy.Ge(
        ss.symbols("D"), 5)
    assert [str(c) for c in ss.trace(nn.ZeroPad1d((-2, 3)), "1,1,L").domain] == [
        "L >= 2  [layer '' (ZeroPad1d): negative padding crops first (narrow), so it must not exceed the input size]"]


# ------------------------------------------------ the differential campaign (short; benchmarks/campaign.py is long)

@settings(derandomize=True, max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2 ** 32 - 1))
def test_random_networks_agree_with_torch(seed):
    net = random_network(random.Random(seed), max_layers=6)
    rep = ss.trace(net.model, net.spec)
    sizes = [net.ref] + [s for s in default_sizes(rep, n=2) if s != net.ref]
    res = ss.check(net.model, rep, sizes=sizes)
    assert res.ok, f"seed {seed}: {net.model}\n{res}"


# ------------------------------------------------ the command line

def test_cli_check_passes(capsys):
    assert main(["check", "seed_case1", "--at", "H=32,W=32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("check Sequential against torch (meta): ok: 1 sizes, 11 comparisons, 0 mismatches")


def test_cli_check_fails_on_a_mismatch(broken, capsys):
    assert main(["check", "seed_case1", "--at", "H=31,W=31"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_cli_check_usage_errors(capsys):
    assert main(["check", "seed_case1", "--at", "H=32"]) == 2
    assert capsys.readouterr().err == (
        "symshape: error: check: sizes {'H': 32} must give exactly the report's sizes H, W; missing W\n")


# ------------------------------------------------ dtypes, short output

def test_an_embedding_model_is_checked_with_index_inputs():
    model = nn.Sequential(nn.Embedding(100, 8), nn.Flatten(), nn.Linear(8 * 5, 3))
    rep = ss.trace(model, "N,5")
    res = ss.check(model, rep, sizes=[{"N": 1}, {"N": 4}])
    assert res.ok, str(res)
    assert len(res.comparisons) == 2 * 9  # per size: the domain, 3 layers and the model, shape and MACs


def test_a_double_and_a_half_model_are_checked_in_their_dtype():
    for model in (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).double(),
                  nn.Sequential(nn.Linear(6, 4), nn.ReLU()).half()):
        spec = "1,3,H,W" if isinstance(model[0], nn.Conv2d) else "N,6"
        rep = ss.trace(model, spec)
        sizes = [{"H": 5, "W": 4}] if "H" in spec else [{"N": 3}]
        assert ss.check(model, rep, sizes=sizes, device="cpu").ok


def test_the_input_dtype_follows_the_model():
    from symshape.verify import input_dtype

    assert input_dtype(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))) == torch.long
    assert input_dtype(nn.Conv2d(3, 4, 3).double()) == torch.float64
    assert input_dtype(nn.ReLU()) == torch.float32


def test_check_reports_progress_per_size():
    seen = []
    model = zoo.seed_case1()
    ss.check(model, ss.trace(model, "1,3,H,W"), sizes=[{"H": 32, "W": 32}, {"H": 5, "W": 5}],
             progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]


def test_cli_check_prints_one_line_per_size_and_the_table_with_verbose(capsys):
    assert main(["check", "seed_case1", "--at", "H=32,W=32"]) == 0
    assert capsys.readouterr().out == (
        "check Sequential against torch (meta): ok: 1 sizes, 11 comparisons, 0 mismatches, 0 skipped\n"
        "  H=32, W=32: runs in torch, as predicted; 10 comparisons, all agree\n")
    assert main(["check", "seed_case1", "--at", "H=32,W=32", "--verbose"]) == 0
    assert "  0        Conv2d      (1, 32, 13, 13)  (1, 32, 13, 13)" in capsys.readouterr().out


def test_cli_check_takes_a_dtype(tmp_path, capsys, monkeypatch):
    (tmp_path / "emb.py").write_text(
        "import torch.nn as nn\n"
        "def net():\n"
        "    return nn.Sequential(nn.Embedding(50, 4), nn.Flatten(), nn.Linear(4 * 7, 2))\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "emb.py:net", "--input", "N,7", "--at", "N=2", "--dtype", "long"]) == 0
    assert "ok: 1 sizes" in capsys.readouterr().out


# ------------------------------------------------ outputs of several tensors, broadcasts to size 1

class DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.c(x)
        return {"feat": y, "pool": y.mean((2, 3)), "n": 3}


class TupleOut(DictOut):
    def forward(self, x):
        y = self.c(x)
        return y, [y.flatten(1), y.sum()]


def test_a_model_returning_a_dict_or_a_tuple_is_checked_without_false_mismatches():
    for model in (DictOut(), TupleOut()):
        rep = ss.trace(model, "1,3,H,W")
        res = ss.check(model, rep)
        assert res.ok and not res.skipped, str(res)
        assert res.summary() == f"check {type(model).__name__} against torch (meta): ok: 8 sizes, 32 comparisons, " \
                                "0 mismatches, 0 skipped"
        (whole,) = [c for c in res.comparisons if c.what == "shape" and c.kind == type(model).__name__
                    and c.sizes == {"H": 3, "W": 3}]
        assert whole.actual == whole.predicted == _shapes(model(torch.zeros(1, 3, 3, 3)))


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, dict):
        return tuple(_shapes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return tuple(_shapes(v) for v in value)
    return None


class AddPosition(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.pos = nn.Conv2d(3, 3, 1), nn.Parameter(torch.zeros(1, 3, 16, 16))

    def forward(self, x):
        return self.conv(x) + self.pos


def test_default_check_sizes_reach_the_size_one_broadcast():
    model = AddPosition()
    rep = ss.trace(model, "1,3,H,W")
    res = ss.check(model, rep)
    assert res.ok, str(res)
    assert {"H": 1, "W": 1} in res.sizes and {"H": 1, "W": 16} in res.sizes and {"H": 16, "W": 1} in res.sizes
    assert {"H": 2, "W": 1} in res.sizes and {"H": 17, "W": 1} in res.sizes  # just outside: torch raises there
    assert tuple(model(torch.zeros(1, 3, 1, 16)).shape) == tuple(rep.at(H=1, W=16).output_shape) == (1, 3, 16, 16)
