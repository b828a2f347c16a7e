"""Time symshape against torch.export on every zoo model, with the spatial sizes dynamic.

    python benchmarks/bench_zoo.py [NAME ...]

For each model (all of ``symshape.zoo`` plus ViT-B/16 by default), in a forked child of its own:
symshape's first trace at its symbolic input (fx tracing included; the model's formulas unseen),
the same trace again (symshape's caches then hold them), and ``torch.export.export`` with
``torch.export.Dim.AUTO`` for every symbolic dim at the zoo's usual size. Both libraries are
imported, and have run once on a one-layer model, before the children fork (that set-up is
printed once, not counted). Prints the times, the ratio of export to the first trace, and where
export fails (with its first error line); then the slowest first trace and the median.
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

sys.path.insert(0, os.path.dirname(__file__))
from survey import in_child, warm_up  # noqa: E402  (a forked child per model; the set-up done once before)

ENTRIES = {**zoo.MODELS, "vit_b16": zoo.ZooEntry(zoo.vit_b16, "1,3,H,W", {"H": 224, "W": 224})}


def bench(name: str) -> tuple:
    entry = ENTRIES[name]
    model = entry.factory().eval()
    t = time.perf_counter()
    ss.trace(model, entry.input)
    t_ss = time.perf_counter() - t
    t = time.perf_counter()
    ss.trace(model, entry.input)
    t_again = time.perf_counter() - t
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
    return name, t_ss, t_again, t_ex, note


def _child(queue, name: str) -> None:
    try:
        queue.put(bench(name))
    except Exception as err:  # noqa: BLE001 - a failure is a result
        queue.put((name, None, None, None, f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:120]}"))


def _warm_export() -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.export(torch.nn.Conv2d(3, 8, 3), (torch.zeros(1, 3, 16, 16),),
                            dynamic_shapes=({2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO},))
    return time.perf_counter() - start


def main(argv) -> None:
    names = argv or list(ENTRIES)
    print(f"torch {torch.__version__}; set-up before the models, not counted: symshape {warm_up():.2f} s, "
          f"torch.export {_warm_export():.2f} s")
    print(f"{'model':14} {'symshape':>9} {'again':>8} {'export':>9} {'ratio':>7}  note")
    times = {}
    for name in names:
        how, value = in_child(_child, (name,), 600)
        if how != "done":
            print(f"{name:14} {how} {value}", flush=True)
            continue
        name, t_ss, t_again, t_ex, note = value
        if t_ss is None:
            print(f"{name:14} {note}", flush=True)
            continue
        times[name] = t_ss
        print(f"{name:14} {t_ss:8.3f}s {t_again:7.3f}s {t_ex:8.3f}s {t_ex / t_ss:6.1f}x  {note}", flush=True)
    slowest = max(times, key=times.get)
    print(f"symshape first traces: median {statistics.median(times.values()):.3f}s, slowest {slowest} "
          f"{times[slowest]:.3f}s, {len(times)} models")


if __name__ == "__main__":
    main(sys.argv[1:])
