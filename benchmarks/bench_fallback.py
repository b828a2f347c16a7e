"""Time a trace whose ops have rules against the same trace with those rules removed, so that
torch's meta kernels stand in (symshape/fallback.py): cold (the fallback's cache cleared before
each run) and warm (cached, as a repeated block is).

Run from the repository root: ``python benchmarks/bench_fallback.py [--runs 5]``. Each figure is
the median of several runs in this process; the three traces must agree on shape, MACs and domain.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch
import torch.nn as nn

import symshape as ss
from symshape import fallback
from symshape.rules.registry import RULES

OPS = [torch.roll, torch.flip, torch.cumsum, torch.movedim, torch.narrow]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        x = torch.roll(self.conv(x), 1, 2)
        x = torch.cumsum(torch.flip(x, [3]), 1)
        return torch.flatten(torch.narrow(torch.movedim(x, 1, 3), 1, 0, 4), 1)


def median_time(runs: int, cold: bool):
    times, rep = [], None
    for _ in range(runs):
        if cold:
            fallback._CACHE.clear()
        start = time.perf_counter()
        rep = ss.trace(Net(), "1,3,H,W")
        times.append(time.perf_counter() - start)
    return statistics.median(times), rep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.CRITICAL)
    ss.trace(Net(), "1,3,H,W")  # imports and first-call costs outside the timed runs
    with_rules, a = median_time(runs, cold=True)
    saved = {op: RULES.pop(op) for op in OPS}
    try:
        cold, b = median_time(runs, cold=True)
        warm, c = median_time(runs, cold=False)
    finally:
        RULES.update(saved)
    used = sum(layer.attrs.get("fallback") == "meta" for layer in b.layers)
    same = all((r.output_shape, r.macs, [x.expr for x in r.domain]) == (a.output_shape, a.macs, [x.expr for x in a.domain])
               for r in (b, c))
    print(f"rules: {with_rules * 1e3:.0f} ms; {used} ops by torch's meta kernels: {cold * 1e3:.0f} ms cold, "
          f"{warm * 1e3:.0f} ms cached; same answer: {same}")


if __name__ == "__main__":
    main()
