"""The package loads lazily: ``import symshape`` and the ``symshape`` command's --help, --version and
usage errors import neither torch nor sympy; every public name still resolves, to the same object
as in its home module, whatever was imported first."""
import json
import os
import pathlib
import pickle
import subprocess
import sys

import pytest

import symshape
from symshape import cli, zoo

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_fresh(code: str) -> dict:
    """Run *code* in a fresh interpreter with this checkout first on the path; it prints one JSON line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


HEAVY = "sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sympy', 'numpy'})"


def test_cli_help_version_and_usage_errors_import_neither_torch_nor_sympy():
    out = run_fresh(f"""
import contextlib, io, json, sys
from symshape import cli
codes, texts = [], []
for argv in (["--help"], ["--version"], ["summary", "--help"], ["solve", "--help"],
             ["summary", "--format", "nope"], ["solve", "--max-macs", "many"], ["--nosuch"]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        codes.append(cli.main(argv))
    texts.append(out.getvalue() + err.getvalue())
print(json.dumps({{"codes": codes, "heavy": {HEAVY}, "help": texts[0], "usage": texts[4]}}))
""")
    assert out["codes"] == [0, 0, 0, 0, 2, 2, 2]
    assert out["heavy"] == []
    assert out["help"].startswith("usage: symshape [-h] [--version] COMMAND ...")
    assert "argument --format: invalid choice: 'nope'" in out["usage"]


def test_cli_loads_torch_once_the_arguments_parse():
    out = run_fresh(f"""
import contextlib, io, json, sys
from symshape import cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = cli.main(["summary", "lenet5", "--at", "H=32,W=32"])
print(json.dumps({{"code": code, "heavy": {HEAVY}, "text": out.getvalue()}}))
""")
    assert out["code"] == 0 and {"torch", "sympy"} <= set(out["heavy"])
    assert "Linear" in out["text"]


def test_import_symshape_is_light_and_every_public_name_resolves():
    out = run_fresh(f"""
import json, sys
import symshape
light = {HEAVY}
names = {{n: type(getattr(symshape, n)).__name__ for n in symshape.__all__}}
print(json.dumps({{"light": light, "names": names, "dir": dir(symshape)}}))
""")
    assert out["light"] == []
    assert list(out["names"]) == symshape.__all__
    assert out["names"]["trace"] == out["names"]["solve"] == out["names"]["symbols"] == "function"
    assert out["names"]["zoo"] == "module" and out["names"]["ShapeError"] == "type"
    assert set(symshape.__all__) <= set(out["dir"])


@pytest.mark.parametrize("first", ["import symshape.trace", "import symshape.solve", "from symshape.floors import mod",
                                   "from symshape.symbols import ShapeError", "from symshape import check",
                                   "from symshape.report import Report"])
def test_names_shared_with_submodules_are_the_functions_whatever_was_imported_first(first):
    """``symshape.trace``, ``symshape.solve`` and ``symshape.symbols`` name submodules too: importing
    one of those first must not leave the module where the function was."""
    out = run_fresh(f"""
import json
{first}
import symshape
from symshape import trace, solve, symbols
print(json.dumps([f.__module__ + "." + f.__name__ for f in (symshape.trace, symshape.solve, symshape.symbols,
                                                           trace, solve, symbols)]))
""")
    assert out == ["symshape.trace.trace", "symshape.solve.solver.solve", "symshape.symbols.symbols"] * 2


def test_a_report_made_through_submodules_alone_has_its_attached_methods():
    out = run_fresh("""
import json
import torch.nn as nn
from symshape.symbols import symbols
from symshape.trace import trace
rep = trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.MaxPool2d(2)), (1, 3, *symbols("H W")))
print(json.dumps({"text": str(rep), "latex": rep.to_latex(), "solve": str(rep.solve())}))
""")
    assert out["text"].startswith("Sequential  input (1, 3, H, W)")
    assert out["latex"].startswith("\\begin{align}")
    assert out["solve"] == "H ≥ 4, W ≥ 4"


def test_every_public_name_is_the_object_of_its_home_module():
    import importlib

    for name, (module, attr) in symshape._HOMES.items():
        home = importlib.import_module(f"symshape.{module}")
        assert getattr(symshape, name) is (home if attr is None else getattr(home, attr)), name
    assert set(symshape._HOMES) == set(symshape.__all__)
    namespace = {}
    exec("from symshape import *", namespace)
    assert {n for n in namespace if not n.startswith("__")} == set(symshape.__all__)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="module 'symshape' has no attribute 'nosuch'"):
        symshape.nosuch  # noqa: B018
    assert not hasattr(symshape, "__wrapped__")


def test_the_help_lists_the_zoo():
    assert cli.ZOO_NAMES == tuple(zoo.MODELS)


def test_shape_error_keeps_its_public_name():
    err = symshape.ShapeError("layer 'fc' (Linear): expected 10 features")
    assert symshape.ShapeError.__module__ == "symshape.symbols" and symshape.symbols is not None
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is symshape.ShapeError and again.args == err.args
