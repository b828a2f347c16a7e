"""The examples run and print the numbers they are about (each checked against torch elsewhere)."""
import pathlib
import runpy

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
