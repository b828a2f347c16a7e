"""How the cost of the algebra grows: the PyTorch tutorial CNN (``x.view(x.size(0), -1)``) against
its nn.Flatten twin, residual networks of 25 to 200 blocks, and Sequentials of 125 to 1,000 layers.

Run from the repository root: ``python benchmarks/bench_depth.py [--runs 3]``. Each figure is the
median of several runs; trace and valid_inputs() are timed separately, and every result is checked
against torch at one size (outside the timed regions).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_speed import TutorialNet, _residual  # noqa: E402  (the same models the tests pin)

import symshape as ss  # noqa: E402


def median_time(fn, runs: int):
    times, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def twin() -> nn.Module:
    m = TutorialNet()
    return nn.Sequential(m.conv1, nn.ReLU(), m.pool, m.conv2, nn.ReLU(), m.pool, nn.Flatten(),
                         m.fc1, nn.ReLU(), m.fc2, nn.ReLU(), m.fc3)


def sequential(n: int) -> nn.Module:
    layers = []
    for _ in range(n // 4):
        layers += [nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.Identity()]
    return nn.Sequential(nn.Conv2d(3, 4, 1), *layers).eval()


def row(label: str, model: nn.Module, spec: str, at: dict, runs: int, base=None) -> float:
    t_trace, rep = median_time(lambda: ss.trace(model, spec), runs)
    t_solve, answer = median_time(rep.valid_inputs, runs)
    ok = ss.check(model, rep, sizes=[at]).ok
    ratio = f"{t_trace / base:6.2f}x" if base else "       "
    exact = "exact" if not answer.note else "SCAN"
    print(f"{label:<34} trace {t_trace:8.3f} s {ratio}  valid_inputs {t_solve:7.3f} s {exact:<5} "
          f"boxes {len(answer.boxes):<3} check {'ok' if ok else 'MISMATCH'}")
    return t_trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, symshape {ss.__version__}, median of {runs} runs")
    base = row("tutorial CNN, nn.Flatten twin", twin(), "N,3,H,W", {"N": 1, "H": 32, "W": 32}, runs)
    row("tutorial CNN, x.view(x.size(0), -1)", TutorialNet(), "N,3,H,W", {"N": 1, "H": 32, "W": 32}, runs, base)
    per_block = None
    for depth in (25, 50, 100, 200):
        t = row(f"residual, {depth} blocks", _residual(depth), "N,3,H,W", {"N": 2, "H": 13, "W": 9}, runs,
                per_block and per_block * depth)
        per_block = per_block or t / depth
    per_layer = None
    for n in (125, 250, 500, 1000):
        t = row(f"Sequential, {n} layers", sequential(n), "1,3,H,W", {"H": 5, "W": 3}, runs,
                per_layer and per_layer * n)
        per_layer = per_layer or t / n
    print("ratios: the tutorial CNN against its twin; the deeper nets against the first row's time per "
          "block (per layer) times their depth (1.00x = linear growth)")


if __name__ == "__main__":
    main()
