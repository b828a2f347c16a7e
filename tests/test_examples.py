"""Every script in examples/ runs and prints the answers it is there for (each checked against torch elsewhere)."""
import pathlib
import runpy

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run(name, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out.splitlines()


def test_where_does_5408_come_from(capsys):
    lines = run("where_does_5408_come_from.py", capsys)
    assert lines[1] == "  Flatten gives 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)"
    assert lines[2] == ("  at 28x28: 3872 -> does not run: layer '3' needs "
                        "32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) = 5408")
    assert lines[3:5] == ["  at 31x31: 5408 -> runs", "  at 32x32: 5408 -> runs"]
    assert "  after layer3.3 (MaxPool2d): (1, 64, floor(H/8), floor(W/8)) -> (1, 64, 4, 4) at 32x32" in lines
    assert "  Flatten gives 64*floor(H/8)*floor(W/8) -> 1024 = 64*4*4" in lines


def test_counting_multiplications(capsys):
    lines = run("counting_multiplications.py", capsys)
    rows = {line.split()[0]: line.split() for line in lines[2:8]}
    assert rows["1.0"][-2:] == ["14,112", "903,168"]
    assert [rows[name][-2] for name in ("0.0", "1.0", "2.0", "3.0", "4")] == ["7,056", "14,112", "18,432", "18,432",
                                                                              "576"]
    assert rows["total"][-2:] == ["58,608", "3,750,912"]
    assert lines[-1] == ("second conv: (1, 4, 14, 14) -> (1, 8, 7, 7): 7*7*8*4*3*3 = 14,112 multiplications per "
                         "image, not 56,448 (= 14*14*288: that counts every input position)")


CHECKED_ABOVE = {"where_does_5408_come_from.py", "counting_multiplications.py"}

KEY_LINES = {
    "solve_backwards.py": [
        "case 1, flatten size: 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)",
        "H ∈ {31, 32}, W ∈ {31, 32}",
        "H ∈ {343, 344}, W ∈ {7, 8}",
        "case 1, square inputs: H = W, H ∈ {31, 32}",
        "case 1, smallest inputs: [(7, 343), (31, 31), (343, 7)]",
        "  13 = floor((H - 7)/2) + 1 ⇔ 31 ≤ H ≤ 32",
        "case 2, flatten size: 64*floor(H/8)*floor(W/8)",
        "32 ≤ H ≤ 39, 32 ≤ W ≤ 39",
        "case 2, square inputs: H = W, 32 ≤ H ≤ 39",
        "H = 32, W = 32",
        "plainnet50, final map floor((H - 1)/32) + 1 = 7: 193 ≤ H ≤ 224",
    ],
}


@pytest.mark.parametrize("path", [p for p in sorted(EXAMPLES.glob("*.py")) if p.name not in CHECKED_ABOVE],
                         ids=lambda p: p.name)
def test_example_runs_and_prints_its_answers(path, capsys):
    lines = run(path.name, capsys)
    for key in KEY_LINES.get(path.name, []):
        assert key in lines, key


def test_plainnet50_budget_line_matches_the_macs():
    import sympy

    import symshape as ss
    from symshape import zoo

    H, W = ss.symbols("H W")
    macs = ss.trace(zoo.plainnet50(), (1, 3, H, W)).macs
    top = max(p[0] for p in ss.solve([macs <= 10 ** 9, sympy.Eq(H, W)], over=(H, W)))
    assert macs.subs({H: top, W: top}) <= 10 ** 9 < macs.subs({H: top + 1, W: top + 1})


def test_benchmark_is_importable_and_agrees_on_a_small_window(capsys):
    bench = runpy.run_path(str(EXAMPLES.parent / "benchmarks" / "bench_solve.py"), run_name="bench")
    times = bench["main"](["--max", "40"])
    assert set(times) == {"solve", "repeated", "trace", "scan"}
    assert "ratio scan / valid_inputs():" in capsys.readouterr().out
