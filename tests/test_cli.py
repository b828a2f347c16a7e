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
        "text": "H = W, H ∈ {31, 32}", "method": "exact inversion, bisection", "note": "", "reason": ""}


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
    (["seed_case1", "--layer", "9", "--shape", "7"], "no layer named '9'; layers: '0', '1', '2', '3'"),
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
