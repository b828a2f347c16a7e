"""The ``symshape solve`` sub-command: exact output, exit codes, errors on stderr."""
import json

import pytest

from symshape.cli import main


def run(capsys, *argv):
    code = main(["solve", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_prints_the_valid_and_the_minimal_inputs(capsys):
    assert run(capsys, "seed_case1") == (0, (
        "H ∈ {7, 8}, W ∈ {343, 344}\n"
        "H ∈ {31, 32}, W ∈ {31, 32}\n"
        "H ∈ {343, 344}, W ∈ {7, 8}\n"
        "minimal:\n"
        "H = 7, W = 343\n"
        "H = 31, W = 31\n"
        "H = 343, W = 7\n"), "")


def test_solve_options_narrow_the_question(capsys):
    assert run(capsys, "seed_case2", "--square") == (0, "H = W, 32 ≤ H ≤ 39\nminimal:\nH = 32, W = 32\n", "")
    assert run(capsys, "seed_case2", "--exact") == (0, (
        "H = 8, W = 128\nH = 16, W = 64\nH = 32, W = 32\nH = 64, W = 16\nH = 128, W = 8\n"
        "minimal:\nH = 8, W = 128\nH = 16, W = 64\nH = 32, W = 32\nH = 64, W = 16\nH = 128, W = 8\n"), "")
    assert run(capsys, "plainnet50", "--layer", "146", "--shape", "_,1,10") == (
        0, "1 ≤ H ≤ 32, 289 ≤ W ≤ 320\nminimal:\nH = 1, W = 289\n", "")
    assert run(capsys, "seed_case1", "--layer", "0", "--shape", "None,13", "--square") == (
        0, "H = W, H ∈ {31, 32}\nminimal:\nH = 31, W = 31\n", "")
    assert run(capsys, "lenet5", "--max-macs", "1000000", "--square") == (
        0, "H = W, 32 ≤ H ≤ 35\nminimal:\nH = 32, W = 32\n", "")


def test_solve_explain_latex_json(capsys):
    assert run(capsys, "seed_case1", "--square", "--explain") == (0, (
        "5408 = 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) ⇔ 31 ≤ H ≤ 32\n"
        "answer: H = W, H ∈ {31, 32}\n"
        "per layer, over H ∈ {31, 32}:\n"
        "  '0' (Conv2d): (1, 32, 13, 13)\n"
        "  '1' (ReLU): (1, 32, 13, 13)\n"
        "  '2' (Flatten): (1, 5408)\n"
        "  '3' (Linear): (1, 10)\n"
        "minimal:\nH = 31, W = 31\n"), "")
    assert run(capsys, "seed_case1", "--format", "latex") == (0, (
        "% input sizes\n"
        r"\[ \left(H \in \{7, 8\},\ W \in \{343, 344\}\right) \;\lor\; \left(H \in \{31, 32\},\ W \in \{31, 32\}\right)"
        r" \;\lor\; \left(H \in \{343, 344\},\ W \in \{7, 8\}\right) \]" "\n"
        "% minimal input sizes\n"
        r"\[ H = 7,\ W = 343 \;\lor\; H = 31,\ W = 31 \;\lor\; H = 343,\ W = 7 \]" "\n"), "")
    code, out, err = run(capsys, "seed_case1", "--square", "--format", "json")
    assert (code, err) == (0, "") and json.loads(out) == {
        "schema": "symshape.solution/1", "symbols": ["H", "W"], "ties": {"W": "H"},
        "boxes": [{"H": [{"lo": 31, "hi": 32, "mod": 1, "residue": 0}]}], "minimal": [{"H": 31, "W": 31}],
        "text": "H = W, H ∈ {31, 32}", "method": "exact inversion, bisection", "note": "", "caveat": None,
        "exact_up_to": {}, "reason": ""}


def test_solve_exits_1_with_the_reason_when_nothing_fits(capsys):
    assert run(capsys, "seed_case1", "--max-macs", "200000") == (1, (
        "no solution: the condition needs 4704*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) + 54080 <= 200000, "
        "which no size satisfies together with 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) = 5408 "
        "(layer '3' (Linear))\n"), "")
    code, out, err = run(capsys, "seed_case1", "--max-macs", "200000", "--format", "json")
    assert code == 1 and json.loads(out)["boxes"] == [] and json.loads(out)["minimal"] == []


@pytest.mark.parametrize("argv, message", [
    (["seed_case1", "--shape", "7,7"], "--layer and --shape go together: e.g. --layer 0 --shape 13,13"),
    (["seed_case1", "--layer", "0", "--shape", "7,x"],
     "cannot parse --shape '7,x': write the trailing output dims as integers, with _ for any size, e.g. 7,7 or _,7"),
    (["seed_case1", "--layer", "9", "--shape", "7"], "no layer or module named '9'; names: '0', '1', '2', '3'"),
    (["seed_case1", "--layer", "0", "--shape", "1,1,1,1,1"],
     "layer '0' outputs 4-d shapes (1, 32, floor((H - 7)/2) + 1, floor((W - 7)/2) + 1), got the 5-d target "
     "(1, 1, 1, 1, 1)"),
    (["seed_case1", "--square", "--input", "1,3,H,8"],
     "--square needs exactly two sizes besides the batch size N, this input has 1: H"),
    (["symshape.zoo:lenet5", "--square"],
     "symshape.zoo:lenet5 is not a zoo model: give its input shape with --input, e.g. --input 1,3,H,W"),
])
def test_solve_usage_errors_exit_2_on_stderr(capsys, argv, message):
    assert run(capsys, *argv) == (2, "", f"symshape: error: {message}\n")


def test_solve_square_skips_the_batch_size(capsys):
    assert run(capsys, "seed_case1", "--square", "--input", "N,3,H,W") == (
        0, "H = W, N ≥ 1, H ∈ {31, 32}\nminimal:\nN = 1, H = 31, W = 31\n", "")


# --- the command line as a newcomer meets it (issue 15 §4) -----------------------------------------

def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


NET = '''
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x)
'''


@pytest.mark.parametrize("form", ["relative", "dot", "absolute", "module"])
def test_a_model_loads_from_a_file_path_or_a_module_in_the_current_directory(capsys, tmp_path, monkeypatch, form):
    (tmp_path / "mynet.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))  # keep sys.path non-empty and unrelated
    ref = {"relative": "mynet.py:Net", "dot": "./mynet.py:Net", "absolute": f"{tmp_path}/mynet.py:Net",
           "module": "mynet:Net"}[form]
    code, out, err = cli(capsys, "summary", ref, "--input", "1,3,H,W")
    assert (code, err) == (0, "")
    assert "conv   Conv2d  (1, 8, H - 2, W - 2)" in out


def test_a_missing_file_or_attribute_is_a_readable_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "summary", "./nope.py:Net", "--input", "1,3,H,W") == (
        2, "", "symshape: error: no file './nope.py' for './nope.py:Net': give MODULE:ATTR or PATH.py:ATTR\n")
    assert cli(capsys, "summary", ":") == (
        2, "", "symshape: error: unknown model ':': give a zoo name (" + ", ".join(__import__("symshape").zoo.MODELS)
        + "), MODULE:ATTR or PATH.py:ATTR\n")
    (tmp_path / "broken.py").write_text("raise ValueError('bad file')\n")
    assert cli(capsys, "summary", "broken.py:Net", "--input", "1,3,H,W") == (
        2, "", "symshape: error: running 'broken.py' for 'broken.py:Net' failed: ValueError: bad file\n")


def test_version(capsys):
    import symshape

    assert cli(capsys, "--version") == (0, f"symshape {symshape.__version__}\n", "")


@pytest.mark.parametrize("value, shown", [("-3", "-3"), ("0", "0"), ("²", "'²'"), ("x", "'x'"), ("3.5", "'3.5'")])
def test_sizes_must_be_positive_integers(capsys, value, shown):
    assert cli(capsys, "summary", "seed_case1", "--at", f"H={value},W=32") == (
        2, "", f"symshape: error: --at H={value}: a size must be a positive integer, got {shown}\n")


@pytest.mark.parametrize("command", ["summary", "explain", "latex"])
def test_a_model_that_does_not_run_at_the_sizes_is_exit_1_everywhere_with_a_cli_fix(capsys, command):
    code, out, err = cli(capsys, command, "seed_case1", "--at", "H=28,W=28")
    flat = "32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)"
    assert code == 1
    assert err == (f"symshape: the model does not run at H=28, W=28: layer '3' (Linear) needs {flat} = 5408 "
                   f"(the last dim of the input, {flat}, to equal in_features=5408); "
                   "run `symshape solve seed_case1` for the sizes at which it runs\n")
    if command == "explain":  # the explanation is printed up to the layer that fails
        assert out.rstrip().endswith("the model does not run at H=28, W=28")


def test_the_summary_says_when_training_mode_narrows_the_domain(capsys):
    code, out, err = cli(capsys, "summary", "plainnet50", "--at", "H=64,W=64")
    assert code == 0
    assert ("note: the model is in training mode, where '1', '5', '23' ... need more than one value per channel; "
            "in eval mode (model.eval()) the domain is wider\n") in out
    code, out, err = cli(capsys, "summary", "seed_case1")
    assert "training mode" not in out


def test_an_input_missing_a_spatial_dim_says_so(capsys):
    assert cli(capsys, "summary", "seed_case1", "--input", "1,3,H") == (
        2, "", "symshape: error: layer '0' (Conv2d) got input (1, 3, H): a 3-d input reads as unbatched (C, H, W) "
               "with C = 1, but in_channels=3 is its dim 1: it looks like (N, C, H, W) with a spatial dim missing; "
               "give a 4-d input such as (1, 3, H, W)\n")


class _Terminal:
    """A stderr that says it is a terminal and keeps what is written."""

    def __init__(self, tty=True):
        self.tty, self.text = tty, []

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text.append(text)

    def flush(self):
        pass


def test_a_slow_solve_shows_its_time_on_a_terminal_only():
    import time

    from symshape.progress import busy

    term = _Terminal()
    with busy("solving", stream=term, after=0.05, every=0.05) as b:
        time.sleep(0.3)
    assert b.shown and term.text[0] == "\rsolving… 0 s" and term.text[-1] == "\r\033[K"
    quick = _Terminal()
    with busy("solving", stream=quick, after=5):
        pass
    assert quick.text == []  # finished before the delay: nothing drawn
    pipe = _Terminal(tty=False)
    with busy("solving", stream=pipe, after=0):
        time.sleep(0.1)
    assert pipe.text == []
