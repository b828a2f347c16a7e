"""Time symshape against torch.export on the zoo's graph models, with H and W dynamic.

    python benchmarks/bench_fx.py [NAME ...]

For each model: symshape's trace at a symbolic (N, C, H, W) input (fx tracing included), and
``torch.export.export`` with ``torch.export.Dim.AUTO`` for H and W at the zoo's usual size, in one
run. Prints both times, their ratio, and where export fails (with its first error line).
"""
from __future__ import annotations

import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import symshape as ss  # noqa: E402
from symshape import zoo  # noqa: E402

MODELS = ["resnet50", "mobilenet_v2", "alexnet2012", "unet", "unet_same", "vit_tiny", "vit_b16"]
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
    spec = [entry.sizes.get(str(d), d) for d in ss.parse_shape(entry.input)]
    x = torch.zeros([int(d) for d in spec])
    dims = ({2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO},)
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(model, (x,), dynamic_shapes=dims)
        t_ex = time.perf_counter() - t
        placeholder = [n for n in ep.graph.nodes if n.op == "placeholder"][-1]
        shape = tuple(placeholder.meta["val"].shape)
        dynamic = [str(d) for d in shape[2:] if not str(d).isdigit()]
        ranges = {str(k): v for k, v in ep.range_constraints.items()}
        hw = ", ".join(f"{d} in [{ranges[d].lower}, {ranges[d].upper}]" if d in ranges else d for d in dynamic)
        note = (f"export ok: H, W -> {hw}" if dynamic else
                f"export ok but H, W specialised to {tuple(int(d) for d in shape[2:])}")
    except Exception as err:  # export's failures are part of the result
        t_ex = time.perf_counter() - t
        note = f"export FAILED after {t_ex:.2f}s: {type(err).__name__}: {str(err).strip().splitlines()[0][:120]}"
    return name, t_ss, t_ex, note


def main(argv) -> None:
    names = argv or MODELS
    print(f"torch {torch.__version__}; symshape = best of 3 traces; export = one torch.export.export with Dim.AUTO H, W")
    print(f"{'model':14} {'symshape':>9} {'export':>9} {'ratio':>7}  note")
    for name in names:
        name, t_ss, t_ex, note = bench(name)
        print(f"{name:14} {t_ss:8.3f}s {t_ex:8.3f}s {t_ex / t_ss:6.1f}x  {note}")


if __name__ == "__main__":
    main(sys.argv[1:])
