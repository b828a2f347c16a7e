"""Outputs for people: parse_expr, JSON, LaTeX, Markdown, HTML, explain, plots and the CLI."""
import json
import re
import shutil
import subprocess

import pytest
import sympy
import torch.nn as nn

import symshape as ss
from symshape import zoo
from symshape.cli import main
from symshape.floors import floor_div, scaled_floor
from symshape.render.json import SCHEMA, expr_text, from_json
from symshape.render.latex import latex
from symshape.symbols import ShapeError, parse_expr

from latex_check import LatexCheckError, check_latex
from torch_ref import torch_shape_and_macs

H, W = ss.symbols("H W")
REPORTS = {name: ss.trace(entry.factory(), entry.input) for name, entry in zoo.MODELS.items()}
NUMERIC = {name: rep.at(**zoo.MODELS[name].sizes) for name, rep in REPORTS.items()}


def all_expressions(rep):
    out = {rep.macs, rep.flops, rep.activations, *(c.expr for c in rep.domain)}
    for layer in rep.layers:
        out |= {layer.macs, *_dims(layer.out_shape), *_dims(layer.in_shapes)}
    return out


def _dims(value):
    """The sizes in a shape, or in the shapes of a layer with several inputs or outputs (None: no output)."""
    if value is None:
        return []
    if isinstance(value, tuple) and all(isinstance(d, sympy.Expr) for d in value):
        return list(value)
    return [d for v in value for d in _dims(v)]


# --- parse_expr ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_every_zoo_expression_parses_back_exactly(name):
    exprs = all_expressions(REPORTS[name]) | all_expressions(NUMERIC[name])
    assert len(exprs) > 5
    for expr in exprs:
        assert parse_expr(expr_text(expr)) == expr, expr
        if not isinstance(expr, sympy.core.relational.Relational):
            assert parse_expr(ss.fmt(expr)) == expr, expr  # the text people read parses too


@pytest.mark.parametrize("text,values", [
    ("H - 2*W + 7", lambda h, w: h - 2 * w + 7),
    ("-H**2 + 2**3**2", lambda h, w: -h ** 2 + 2 ** 3 ** 2),
    ("H // 2 * 2", lambda h, w: h // 2 * 2),
    ("floor((H - 7)/2) + 1", lambda h, w: (h - 7) // 2 + 1),
    ("ceiling(H/32) * Max(H, W) - Min(H, 3)", lambda h, w: -(-h // 32) * max(h, w) - min(h, 3)),
    ("Mod(H - W, 7) + (H)//(W)", lambda h, w: (h - w) % 7 + h // w),
    ("ScaledFloor(H, 0.29)", lambda h, w: int(float(h) * 0.29)),
])
def test_parse_expr_evaluates_like_python_integers(text, values):
    expr = parse_expr(text)
    for h, w in [(1, 1), (7, 3), (28, 28), (100, 31), (224, 5)]:
        assert expr.subs({H: h, W: w}) == values(h, w), (text, h, w)


def test_parse_expr_relations_and_symbols():
    assert parse_expr("H >= 7") == sympy.Ge(H, 7)
    assert parse_expr("Mod(H, 32) == 0") == sympy.Eq(sympy.Mod(H, 32), 0)
    assert parse_expr("width").is_integer and parse_expr("width").is_positive
    assert parse_expr(expr_text(scaled_floor(H, 0.7))) == scaled_floor(H, 0.7)


@pytest.mark.parametrize("text,message", [
    ("H +", "unexpected end at position 3"),
    ("floor(H", "unexpected end at position 7"),
    ("H ** W", "the exponent must be an integer between -64 and 64, got W at position 5"),
    ("1.5 + H", "a decimal number (1.5) is only allowed as the scale of ScaledFloor at position 0"),
    ("H / 0", "division by zero at position 4"),
    ("Mod(H)", "Mod takes 2 arguments, got 1 at position 0"),
    ("H; import os", "unexpected character ';' at position 1"),
    ("os.system('x')", "unexpected character '.' at position 2"),
    ("floor + 1", "floor needs arguments in parentheses at position 6"),
    ("", "empty expression at position 0"),
])
def test_parse_expr_errors(text, message):
    with pytest.raises(ShapeError) as err:
        parse_expr(text)
    assert str(err.value) == (f"cannot parse expression {text!r}: {message}; use integers, size names, "
                              "+ - * / // **, parentheses and floor, ceiling, Min, Max, Mod")


# --- JSON ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_json_round_trips_exactly(name):
    for rep in (REPORTS[name], NUMERIC[name]):
        text = rep.to_json()
        data = json.loads(text)
        assert data["schema"] == SCHEMA and len(data["layers"]) == len(rep.layers)
        assert set(data) == {"schema", "model", "input_shape", "symbols", "sizes", "output_shape", "params", "macs",
                             "flops", "activations", "convention", "layers", "domain", "modules"}
        back = ss.Report.from_json(text)
        assert back == rep
        assert [b.attrs for b in back.layers] == [a.attrs for a in rep.layers]
        assert back.macs == rep.macs and back.domain == rep.domain


def test_json_keeps_double_rounded_scales_and_rejects_other_documents():
    rep = ss.trace(nn.Sequential(nn.Upsample(scale_factor=0.29), nn.Conv2d(3, 4, 3)), "1,3,H,W")
    assert from_json(rep.to_json()) == rep
    assert "ScaledFloor(H, 0.29)" in rep.to_json()
    assert from_json(rep.to_json()).at(H=100, W=100).layer("0").out_shape == (1, 3, 28, 28)
    with pytest.raises(ShapeError, match=r"^not a symshape report: expected schema 'symshape.report/1', got None$"):
        from_json("{}")


# --- LaTeX ---------------------------------------------------------------------------------------

def test_latex_floors_as_papers_write_them():
    assert latex(floor_div(H - 7, 2) + 1) == r"\left\lfloor \frac{H - 7}{2} \right\rfloor + 1"
    assert sympy.latex(floor_div(H - 7, 2)) == r"\left\lfloor{\frac{H}{2} - \frac{7}{2}}\right\rfloor"  # sympy's
    text = REPORTS["seed_case1"].to_latex()
    assert r"H_{\text{0}} &= \left\lfloor \frac{H - 7}{2} \right\rfloor + 1 \\" in text
    assert r"\left\lfloor{" not in text
    rep = ss.trace(nn.Sequential(nn.MaxPool2d(2)), (1, 3, ss.symbols("H_in"), ss.symbols("width")))
    assert r"{H_{in}}_{\text{0}} &= \left\lfloor \frac{H_{in}}{2} \right\rfloor" in rep.to_latex()
    assert r"\mathit{width}_{\text{0}} &= \left\lfloor \frac{\mathit{width}}{2} \right\rfloor" in rep.to_latex()


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_latex_of_every_zoo_model_passes_the_check(name):
    rep = REPORTS[name]
    for text in (rep.to_latex(), rep.to_latex(zoo.MODELS[name].sizes), rep.to_latex(document=True),
                 rep._repr_latex_()[2:-2]):
        check_latex(text)
    assert rep.to_latex().count(r"\texttt{") == len(rep.layers)


@pytest.mark.parametrize("broken", [
    r"\begin{align} H &= 1 \end{aligned}",
    r"\begin{align} H &= \frac{1}{2 \end{align}",
    r"\begin{align} H = 1 \end{align}",
    r"\begin{align} H &= 1 &= 2 \end{align}",
    r"$\left( H$",
    r"$\lfloor H \rfloor \foo$",
    r"\begin{tabular}{ll} a & b \\",
    r"H $x",
])
def test_the_latex_check_can_fail(broken):
    with pytest.raises(LatexCheckError):
        check_latex(broken)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("name", ["seed_case1", "seed_case2", "vgg16", "resnet50", "unet"])
def test_latex_document_compiles_in_one_pass_and_fits_the_page(name, tmp_path):
    # issue 15 §5: no longtable rerun, and no line wider than the page (long MAC sums wrap, a long
    # total goes below the table, names and shapes break after dots and commas)
    sizes = zoo.MODELS[name].sizes if name in ("vgg16", "unet") else None
    (tmp_path / "doc.tex").write_text(REPORTS[name].to_latex(sizes, document=True))
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Rerun" not in log and "Overfull" not in log, [line for line in log.splitlines() if "Overfull" in line]


# --- Markdown and Jupyter --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_markdown_and_html_of_every_zoo_model(name):
    rep = REPORTS[name]
    md = rep.to_markdown()
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == len(rep.layers)
    columns = 7 if any(f is not None for f in rep.receptive_fields()) else 6  # the receptive field column
    assert all(line.count("|") == columns and line.count("$") % 2 == 0 for line in rows)
    assert md.count("$") % 2 == 0 and r"\left\lfloor{" not in md
    numeric = rep.to_markdown(zoo.MODELS[name].sizes)
    assert f"{NUMERIC[name].params:,} parameters" in numeric
    html = rep._repr_html_()
    assert html.count("<tr>") == len(rep.layers) + 1 and "<script" not in html


# --- explain -------------------------------------------------------------------------------------

def test_explain_seed000_the_floor_drops_half_a_window():
    text = REPORTS["seed_case1"].explain(H=32, W=32)
    lines = text.splitlines()
    assert "  H: floor((32 + 2·0 - 1·(7 - 1) - 1)/2) + 1 = floor(25/2) + 1 = 13" in lines
    assert ("     (32 - 7)/2 + 1 = 13.5 → 13: the floor drops 0.5, so the last input row (32 of 32) is never covered "
            "by a window") in lines
    assert "  flattens dims 1 to 3: 32·13·13 = 5,408" in lines
    assert lines[-2] == "output (1, 10), 58,826 parameters, 849,056 MACs"


def test_explain_where_the_model_does_not_run():
    text = REPORTS["seed_case1"].explain(H=28, W=28)
    assert "  acts on the last dim, which must be in_features = 5408: it is 3872" in text
    assert text.endswith("the model does not run at H=28, W=28")
    with pytest.raises(ShapeError, match=r"^explain\(\) needs a value for every input size; missing W: call e\.g\. "
                                         r"report\.explain\(W=32\)$"):
        REPORTS["seed_case1"].explain(H=32)


def test_explain_seed001_macs_line_by_line_against_torch():
    rep = ss.trace(zoo.fastbook_cnn(), "64,1,H,W")
    text = rep.explain(H=28, W=28)
    assert "       = 7·7 · 8·4·3·3 = 49 · 288 = 14,112 per image" in text
    assert "       × batch 64 = 903,168" in text
    conv = zoo.fastbook_cnn()[1][0]
    _, macs = torch_shape_and_macs(conv, (64, 4, 14, 14))
    assert macs == 903_168 == 64 * 14_112 != 64 * 56_448


def test_explain_numbers_of_every_zoo_model_match_the_report():
    for name, rep in REPORTS.items():
        num = NUMERIC[name]
        text = rep.explain(zoo.MODELS[name].sizes)
        for layer in num.layers:
            assert f"layer {layer.name!r} ({layer.kind}" in text
            if layer.kind in ("Conv2d", "MaxPool2d", "AvgPool2d"):  # every window layer gets its formula
                header = next(line for line in text.splitlines() if line.startswith(f"layer {layer.name!r} ("))
                assert "kernel" in header, header
        assert f"{int(num.macs):,} MACs" in text.splitlines()[-2]


WINDOWS = [
    nn.MaxPool1d(3, stride=2, ceil_mode=True), nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True),
    nn.AvgPool1d(3, stride=3, padding=1, ceil_mode=True), nn.MaxPool1d(3, stride=2, padding=1, dilation=2),
    nn.Conv1d(1, 2, 5, stride=3, padding=2, dilation=2), nn.ConvTranspose1d(1, 2, 3, stride=2, padding=1,
                                                                           output_padding=1),
    nn.Conv1d(1, 2, 4, padding="same"), nn.Upsample(scale_factor=0.29), nn.Upsample(scale_factor=1.5),
]


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize("module", WINDOWS, ids=lambda m: repr(m))
def test_explain_per_dim_formula_agrees_with_torch(module):
    rep = ss.trace(nn.Sequential(module), "1,1,L")
    for size in range(1, 30):
        if rep.violations(L=size):
            continue
        text = rep.explain(L=size)
        shape, macs = torch_shape_and_macs(nn.Sequential(module), (1, 1, size))
        assert f"  → ({', '.join(map(str, shape))})" in text
        if "same" not in repr(module):
            value = int(re.search(r"^  L: .* = (-?\d+)$", text, re.M).group(1))
            assert value == shape[-1], (size, text)


# --- plots ---------------------------------------------------------------------------------------

def test_plot_curves_are_exact_and_the_png_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    from symshape.render.plot import curves

    rep = REPORTS["seed_case1"]
    data = curves(rep, range(29, 36, 2))
    assert data["valid"] == [False, True, False, False]
    for size, feature, macs in zip(data["sizes"], data["feature"], data["macs"]):
        shape, conv_macs = torch_shape_and_macs(zoo.seed_case1()[:3], (1, 3, size, size))
        assert feature == shape[1] and macs == conv_macs + 5408 * 10
    fig = rep.plot(range(5, 40), target=5408, path=tmp_path / "p.png")
    assert len(fig.axes) == 3 and (tmp_path / "p.png").stat().st_size > 10_000
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["model does not run", "target 5,408", "= target at 31-32"]


def test_plot_rejects_unknown_sizes():
    pytest.importorskip("matplotlib")
    with pytest.raises(ShapeError, match=r"^N is not a size of this model; its sizes are H, W$"):
        REPORTS["seed_case1"].plot(range(7, 9), fixed={"N": 1})


# --- the command line ----------------------------------------------------------------------------

def test_cli_subcommands(capsys, tmp_path):
    assert main(["explain", "fastbook_cnn"]) == 0
    assert "= 7·7 · 8·4·3·3 = 49 · 288 = 14,112 per image" in capsys.readouterr().out
    assert main(["explain", "seed_case1", "--at", "H=28,W=28"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("the model does not run at H=28, W=28")
    assert main(["latex", "symshape.zoo:lenet5", "--input", "1,1,H,W", "--document"]) == 0
    check_latex(capsys.readouterr().out)
    assert main(["summary", "seed_case2", "--format", "text"]) == 0
    assert "runs when H >= 8, W >= 8, 64*floor(H/8)*floor(W/8) = 1024" in capsys.readouterr().out
    assert main(["summary", "seed_case2", "--format", "markdown"]) == 0
    assert "| `fc` | Linear | $\\left(1, 10\\right)$ | 10,250 | $10{,}240$ |" in capsys.readouterr().out
    assert main(["summary", "seed_case2", "--format", "latex"]) == 0
    check_latex(capsys.readouterr().out)
    assert main(["summary", "seed_case2", "--format", "json"]) == 0
    assert ss.Report.from_json(capsys.readouterr().out) == REPORTS["seed_case2"]
    assert main(["summary", "seed_case1", "--format", "json", "--at", "H=32,W=32"]) == 0
    assert ss.Report.from_json(capsys.readouterr().out).output_shape == (1, 10)
    assert main(["lenet5"]) == 0 and "LeNet" not in capsys.readouterr().err


def test_cli_errors_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    assert "exit codes: 0 ok, 1 a check failed, no solution, or the model does not run at" in capsys.readouterr().out
    assert main(["summary", "--format", "yaml"]) == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err
    assert main(["explain", "nosuchmodule:model", "--input", "1,3,H,W"]) == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err == ("symshape: error: cannot import 'nosuchmodule' for 'nosuchmodule:model': "
                                         "No module named 'nosuchmodule'\n")
    assert main(["summary", "seed_case1", "--input", "1,3,H*2,W"]) == 2
    assert "item 3, 'H*2', is neither an integer nor a name" in capsys.readouterr().err


def test_cli_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "seed.png"
    assert main(["plot", "seed_case1", "-o", str(out), "--range", "7:40", "--target", "5408"]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n" and out.stat().st_size > 10_000
    assert main(["plot", "seed_case1", "-o", str(out), "--range", "40:7"]) == 2
    assert "cannot parse --range '40:7'" in capsys.readouterr().err


def test_layer_attrs_hold_the_hyper_parameters():
    layer = REPORTS["seed_case1"].layer("0")
    assert layer.attrs["kernel_size"] == (7, 7) and layer.attrs["stride"] == (2, 2)
    assert REPORTS["seed_case2"].layer("layer1.3").attrs == {"kernel_size": 2, "stride": 2, "padding": 0,
                                                             "dilation": 1, "ceil_mode": False}
    assert hash(layer) == hash(layer)  # attrs stays out of the hash


def test_a_numeric_report_holds_python_ints():
    # issue 15 §5: f"{...:,}" works on the totals and on every layer's MACs at concrete sizes
    num = NUMERIC["resnet50"]
    assert f"{num.macs:,}" == "4,089,184,256" and f"{num.layers[0].macs:,}" == "118,013,952"
    assert all(type(v) is int for v in (num.macs, num.flops, num.activations, num.params))
    assert all(type(layer.macs) is int for layer in num.layers)
