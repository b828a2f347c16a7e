"""Time ss.trace against torch.export.export with dynamic H and W, and Report.at at 224x224; and the
start-up of the ``symshape`` command (``--help``, which loads neither torch nor sympy) against a full load.

Run from the repository root: ``python benchmarks/bench_trace.py [--runs 5]``. Models are built
outside the timed regions; each figure is the median of several runs in this process.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

import symshape as ss
from symshape import zoo

MODELS = {"plainnet50": zoo.plainnet50, "vgg16": zoo.vgg16}


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def subs_everything(rep, values) -> list:
    """What Report.at did before symshape.evaluate: sympy's subs on every expression of every layer."""
    return [([d.subs(values) for s in (*layer.in_shapes, layer.out_shape) for d in s], layer.macs.subs(values))
            for layer in rep.layers] + [c.expr.subs(values) for c in rep.domain]


def export_dynamic(model):
    """torch.export with dynamic H and W (Dim.AUTO; explicit Dims if AUTO fails)."""
    x = torch.zeros(1, 3, 224, 224)
    try:
        shapes = {"input": {2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}}
        return torch.export.export(model, (x,), dynamic_shapes=shapes), "Dim.AUTO"
    except Exception:  # older torch or a guard AUTO cannot express
        h, w = torch.export.Dim("H", min=32, max=4096), torch.export.Dim("W", min=32, max=4096)
        return torch.export.export(model, (x,), dynamic_shapes={"input": {2: h, 3: w}}), "explicit Dims"


def startup(runs: int) -> None:
    """Wall time of ``python -m symshape.cli --help`` in a fresh interpreter against one that loads the
    whole package (torch and sympy), the medians of *runs* each, and their ratio."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}

    def run(*args):
        subprocess.run([sys.executable, *args], env=env, cwd=root, capture_output=True, check=True)

    t_help = median_time(lambda: run("-m", "symshape.cli", "--help"), runs)
    t_full = median_time(lambda: run("-c", "import symshape; symshape.trace"), runs)
    print(f"start-up (median of {runs}): `symshape --help` {t_help * 1e3:.0f}ms; import symshape + its first "
          f"name (torch, sympy) {t_full * 1e3:.0f}ms; ratio {t_full / t_help:.1f}x")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--export-runs", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=5)
    args = parser.parse_args(argv)
    startup(args.startup_runs)
    print(f"torch {torch.__version__}; medians of {args.runs} runs (torch.export: {args.export_runs})")
    print(f"{'model':<12}{'layers':>7}{'first trace':>13}{'ss.trace':>11}{'torch.export':>14}{'ratio':>8}"
          f"{'rep.at(224)':>13}{'subs (old)':>12}")
    for name, factory in MODELS.items():
        model = factory().eval()
        start = time.perf_counter()
        rep = ss.trace(model, "1,3,H,W")
        t_first = time.perf_counter() - start
        t_trace = median_time(lambda: ss.trace(model, "1,3,H,W"), args.runs)
        t_at = median_time(lambda: rep.at(H=224, W=224), args.runs)
        H, W = rep.symbols
        t_subs = median_time(lambda: subs_everything(rep, {H: 224, W: 224}), max(1, args.runs // 2))
        t_export = median_time(lambda: export_dynamic(model), args.export_runs)
        how = export_dynamic(model)[1]
        print(f"{name:<12}{len(rep.layers):>7}{t_first * 1e3:>11.0f}ms{t_trace * 1e3:>9.0f}ms{t_export * 1e3:>12.0f}ms"
              f"{t_export / t_trace:>7.1f}x{t_at * 1e3:>11.1f}ms{t_subs * 1e3:>10.0f}ms  export via {how}")


if __name__ == "__main__":
    main()
