"""symshape's ``rep.macs_as(tool)`` against the tools themselves: fvcore, ptflops, thop and
torchinfo, on every zoo model at two sizes (the usual one and a rectangular one).

Run from the repository root: ``python benchmarks/counters.py [--venv DIR] [--models a,b]``. The
tools live in a separate virtual environment (default ``.venv-counters`` in the repository, or
``--venv``/``SYMSHAPE_COUNTERS_VENV``): when it is missing the script creates it with the running
Python and installs the torch version this Python has, then ``fvcore ptflops thop torchinfo sympy``
(torch first, so that pip keeps it; on a machine without a GPU set ``PIP_INDEX_URL`` or
``PIP_EXTRA_INDEX_URL`` to the CPU wheels, as the README's installation section says). It then
reruns itself in that environment with this checkout on the import path.

Each line prints the tool's number, ``macs_as(tool).at(...)`` and their ratio; the summary counts
exact matches per tool. The rules were read from fvcore 0.1.5.post20221221, ptflops 0.7.5, thop
0.1.1.post2209072238 and torchinfo 1.8.0; other versions may count differently.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import subprocess
import sys
import venv
import warnings

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOOLS = ("fvcore", "ptflops", "thop", "torchinfo")

#: Two sizes per zoo model: its usual size and a rectangular one inside its domain.
SIZES = {
    "seed_case1": ({"H": 32, "W": 32}, {"H": 31, "W": 32}),
    "seed_case2": ({"H": 32, "W": 32}, {"H": 35, "W": 38}),
    "fastbook_cnn": ({"H": 28, "W": 28}, {"H": 40, "W": 30}),
    "lenet5": ({"H": 32, "W": 32}, {"H": 33, "W": 35}),
    "alexnet": ({"H": 224, "W": 224}, {"H": 256, "W": 200}),
    "vgg11": ({"H": 224, "W": 224}, {"H": 160, "W": 192}),
    "vgg16": ({"H": 224, "W": 224}, {"H": 160, "W": 192}),
    "plainnet50": ({"H": 224, "W": 224}, {"H": 192, "W": 256}),
    "alexnet2012": ({"H": 227, "W": 227}, {"H": 240, "W": 250}),
    "resnet50": ({"H": 224, "W": 224}, {"H": 192, "W": 256}),
    "mobilenet_v2": ({"H": 224, "W": 224}, {"H": 192, "W": 256}),
    "unet": ({"H": 572, "W": 572}, {"H": 188, "W": 236}),
    "unet_same": ({"H": 512, "W": 512}, {"H": 128, "W": 192}),
    "vit_tiny": ({"H": 224, "W": 224}, {"H": 230, "W": 235}),
}


def ensure_venv(path: str) -> str:
    """The venv's python, after creating it and installing the tools when it is missing."""
    python = os.path.join(path, "bin", "python")
    if not os.path.exists(python):
        import torch

        version = torch.__version__.split("+")[0]
        print(f"creating {path} with torch=={version} and the tools ...", file=sys.stderr)
        venv.create(path, with_pip=True)
        subprocess.run([python, "-m", "pip", "install", "-q", f"torch=={version}"], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *TOOLS, "sympy"], check=True)
    return python


def count_fvcore(model, x) -> int:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, (x,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return int(analysis.total())


def count_ptflops(model, x) -> int:
    from ptflops import get_model_complexity_info

    with contextlib.redirect_stdout(io.StringIO()):
        macs, _ = get_model_complexity_info(model, tuple(x.shape[1:]), input_constructor=lambda _: x.clone(),
                                            as_strings=False, print_per_layer_stat=False)
    return int(macs)


def count_thop(model, x) -> int:
    from thop import profile

    with contextlib.redirect_stdout(io.StringIO()):
        macs, _ = profile(model, inputs=(x,), verbose=False)
    return int(macs)


def count_torchinfo(model, x) -> int:
    from torchinfo import summary

    return int(summary(model, input_data=[x], verbose=0, device="cpu").total_mult_adds)


COUNTERS = {"fvcore": count_fvcore, "ptflops": count_ptflops, "thop": count_thop, "torchinfo": count_torchinfo}


def run(models) -> int:
    import torch

    import symshape as ss

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.manual_seed(0)
    exact = {t: 0 for t in TOOLS}
    total = 0
    print(f"{'model':<13} {'size':<9} {'tool':<10} {'tool says':>16} {'macs_as':>16}  ratio")
    for name in models:
        entry = ss.zoo.MODELS[name]
        model = entry.factory().eval()
        rep = ss.trace(model, entry.input)
        counts = {t: rep.macs_as(t) for t in TOOLS}
        for sizes in SIZES[name]:
            if rep.violations(**sizes):
                raise SystemExit(f"{name} does not run at {sizes}: fix SIZES")
            shape = tuple(int(d) for d in rep.at(sizes).input_shape)
            x = torch.randn(shape)
            size = f"{sizes['H']}x{sizes['W']}"
            for tool in TOOLS:
                theirs = COUNTERS[tool](model, x)
                ours = counts[tool].at(sizes)
                total += tool == TOOLS[0]
                exact[tool] += theirs == ours
                ratio = ours / theirs if theirs else float("nan")
                mark = "" if theirs == ours else "  <- differs"
                print(f"{name:<13} {size:<9} {tool:<10} {theirs:>16,} {ours:>16,}  {ratio:.6f}{mark}", flush=True)
    print()
    for tool in TOOLS:
        print(f"{tool:<10} exact on {exact[tool]} of {total} (model, size) pairs")
    return 0 if all(v == total for v in exact.values()) else 1


def record() -> int:
    """Print the tools' numbers on tests/convention_cases.py, to paste into tests/test_conventions.py."""
    import torch

    import symshape as ss

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from convention_cases import CASES

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    print("RECORDED = {")
    for name, (factory, spec, sizes_list) in CASES.items():
        rows = []
        for sizes in sizes_list:
            model = factory().eval()
            x = torch.randn(tuple(int(d) for d in ss.trace(model, spec).at(sizes).input_shape))
            rows.append("{" + ", ".join(f'"{t}": {COUNTERS[t](model, x)}' for t in TOOLS) + "}")
        print(f'    "{name}": ({", ".join(rows)}),')
    print("}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=os.environ.get("SYMSHAPE_COUNTERS_VENV", os.path.join(ROOT, ".venv-counters")))
    parser.add_argument("--models", default=",".join(SIZES), help="comma-separated zoo names")
    parser.add_argument("--record", action="store_true", help="print the tools' numbers on the tests' small modules")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    if args.inside:
        return record() if args.record else run(models)
    python = ensure_venv(args.venv)
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    extra = ["--record"] if args.record else []
    return subprocess.run([python, __file__, "--inside", "--models", ",".join(models), *extra], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
