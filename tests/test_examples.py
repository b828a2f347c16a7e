"""Every script in examples/ runs, and prints the answers it is there for."""
import pathlib
import runpy

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

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


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_example_runs_and_prints_its_answers(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
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
