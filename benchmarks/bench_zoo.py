"""Time symshape against torch.export on every zoo model, with the spatial sizes dynamic.

    python benchmarks/bench_zoo.py [NAME ...]

For each model (all of ``symshape.zoo`` plus ViT-B/16 by default): symshape's trace at its
symbolic input (fx tracing included), and ``torch.export.export`` with ``torch.export.Dim.AUTO``
for every symbolic dim at the zoo's usual size, in one run. Prints both times, their ratio, and
where export fails (with its first error line); then the slowest trace and the median.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import symshape as ss  # noqa: E402
from symshape import zoo  # noqa: E402

ENTRIES = {**zoo.MODELS, "vit_b16": zoo.ZooEntry(zoo.vit_b16, "1,3,H,W", {"H": 224, "W": 224})}


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(name: str, repeat: int = 3) -> tuple:
    entry = ENTRIES[name]
    model = entry.factory().eval()
    t_ss = best_of(lambda: ss.trace(model, entry.input), repeat)
    parsed = ss.parse_shape(entry.input)
    spec = [entry.sizes.get(str(d), d) for d in parsed]
    x = torch.zeros([int(d) for d in spec])
    dims = ({i: torch.export.Dim.AUTO for i, d in enumerate(parsed) if str(d) in entry.sizes},)
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(model, (x,), dynamic_shapes=dims)
        t_ex = time.perf_counter() - t
        placeholder = [n for n in ep.graph.nodes if n.op == "placeholder"][-1]
        shape = tuple(placeholder.meta["val"].shape)
        dynamic = [str(d) for d in shape if not str(d).isdigit()]
        ranges = {str(k): v for k, v in ep.range_constraints.items()}
        hw = ", ".join(f"{d} in [{ranges[d].lower}, {ranges[d].upper}]" if d in ranges else d for d in dynamic)
        note = (f"export ok: {hw}" if dynamic else f"export ok but every size specialised: {tuple(shape)}")
    except Exception as err:  # export's failures are part of the result
        t_ex = time.perf_counter() - t
        note = f"export FAILED after {t_ex:.2f}s: {type(err).__name__}: {str(err).strip().splitlines()[0][:120]}"
    return name, t_ss, t_ex, note


def main(argv) -> None:
    names = argv or list(ENTRIES)
    print(f"torch {torch.__version__}; symshape = best of 3 traces; export = one torch.export.export, Dim.AUTO sizes")
    print(f"{'model':14} {'symshape':>9} {'export':>9} {'ratio':>7}  note")
    times = {}
    for name in names:
        name, t_ss, t_ex, note = bench(name)
        times[name] = t_ss
        print(f"{name:14} {t_ss:8.3f}s {t_ex:8.3f}s {t_ex / t_ss:6.1f}x  {note}", flush=True)
    slowest = max(times, key=times.get)
    print(f"symshape traces: median {statistics.median(times.values()):.3f}s, slowest {slowest} "
          f"{times[slowest]:.3f}s, {len(times)} models")


if __name__ == "__main__":
    main(sys.argv[1:])
