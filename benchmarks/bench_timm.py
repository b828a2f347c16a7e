"""Time symshape's trace on named timm / torchvision models, each in a forked child with a time limit.

    python benchmarks/bench_timm.py [--timeout S] [--repeat N] [--profile N] NAME [NAME ...]

A NAME is a timm model (``maxvit_nano_rw_256``) or ``tv:NAME`` for a torchvision classifier
(``tv:maxvit_t``). Needs timm / torchvision, which the project does not depend on: run it in their
environment. The input is ``1,3,H,W``. Prints each model's best trace time of N (or its first
error line, or the timeout) with the CPU time of that trace (steadier than the wall clock on a
shared machine), then the median and the slowest. symshape is imported, and has traced a one-layer
model, before the children fork (survey.warm_up: its time is printed once); each model's trace
starts with its own formulas unseen. With ``--repeat N`` the later traces find them cached. ``--profile N`` runs the trace under cProfile
and prints its N costliest functions (cumulative time) after each model.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from survey import in_child, warm_up  # noqa: E402  (the same forked child with a time limit)


def _build(name: str):
    if name.startswith("tv:"):
        import torchvision

        return torchvision.models.get_model(name[3:], weights=None).eval()
    import timm

    return timm.create_model(name, pretrained=False).eval()


def _child(queue, name: str, repeat: int, profile: int = 0) -> None:
    import symshape as ss

    warnings.simplefilter("ignore")
    try:
        model = _build(name)
    except Exception as err:  # not a model of this timm / torchvision: no time to report
        queue.put((None, f"not built: {type(err).__name__}: {str(err).strip().splitlines()[0][:100]}"))
        return
    start = time.perf_counter()
    try:
        best = cpu = None
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            if profile:
                import cProfile
                import io
                import pstats

                profiler = cProfile.Profile()
                rep = profiler.runcall(ss.trace, model, "1,3,H,W")
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(profile)
                print(text.getvalue(), flush=True)
            else:
                rep = ss.trace(model, "1,3,H,W")
            took = time.perf_counter() - start
            if best is None or took < best:
                best, cpu = took, time.process_time() - start_cpu
        pieces = f", {len(rep.pieces)} pieces" if rep.pieces else ""
        queue.put((best, f"cpu {cpu:6.2f}s  {len(rep.layers)} layers{pieces}"))
    except Exception as err:  # a failure is a result: its first line is printed
        queue.put((time.perf_counter() - start, f"{type(err).__name__}: {str(err).strip().splitlines()[0][:100]}"))


def run(name: str, timeout: float, repeat: int, profile: int = 0) -> tuple:
    how, value = in_child(_child, (name, repeat, profile), timeout)
    if how == "done":
        return value
    return (None, f"over {timeout:.0f} s") if how == "timeout" else (None, f"child exited {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile each trace and print its N costliest functions")
    args = parser.parse_args()
    print(f"symshape import and a one-layer trace, once, not in the times below: {warm_up():.2f} s", flush=True)
    times = {}
    for name in args.names:
        took, note = run(name, args.timeout, args.repeat, args.profile)
        if took is not None:
            times[name] = took
        shown = f"{took:8.2f}s" if took is not None else f"{'-':>9}"
        print(f"{name:28} {shown}  {note}", flush=True)
    if times:
        slowest = max(times, key=times.get)
        print(f"median {statistics.median(times.values()):.2f} s, slowest {slowest} {times[slowest]:.2f} s, "
              f"{sum(t > 2 for t in times.values())} over 2 s, {sum(t > 5 for t in times.values())} over 5 s")


if __name__ == "__main__":
    main()
