"""valid_inputs() against a brute-force scan of torch meta-device forwards, on the same model.

Run: python benchmarks/bench_solve.py [--max 4096] [--model seed_case1]

The scan runs the model on the meta device for every square size 1..MAX (and, for the
rectangular count, checks the solver's answer at those sizes); the solver answers for all sizes
at once, unbounded. Both must agree on every size scanned; the ratio of their times is printed.
"""
from __future__ import annotations

import argparse
import time

import torch

import symshape as ss
from symshape import zoo


def torch_runs(model, shape) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros(shape, device="meta"))
        return True
    except Exception:
        return False


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="seed_case1", choices=sorted(zoo.MODELS))
    parser.add_argument("--max", type=int, default=4096, help="scan square sizes 1..MAX")
    args = parser.parse_args(argv)
    entry = zoo.MODELS[args.model]
    model = entry.factory().to("meta")
    spec = entry.input

    t0 = time.perf_counter()
    rep = ss.trace(model, spec)
    t1 = time.perf_counter()
    answer = rep.valid_inputs()
    t2 = time.perf_counter()
    repeats = []
    for _ in range(5):  # again, with the expressions compiled: what a second question costs
        r0 = time.perf_counter()
        rep.valid_inputs()
        repeats.append(time.perf_counter() - r0)
    lead = tuple(int(d) for d in spec.split(",")[:-2])
    t3 = time.perf_counter()
    brute = [n for n in range(1, args.max + 1) if torch_runs(model, (*lead, n, n))]
    t4 = time.perf_counter()

    solved = [n for n in range(1, args.max + 1) if (n, n) in answer]
    assert solved == brute, f"solver and torch disagree: {solved[:10]} vs {brute[:10]}"
    trace_s, solve_s, warm_s, scan_s = t1 - t0, t2 - t1, sorted(repeats)[2], t4 - t3
    print(f"model {args.model}, input {spec}")
    print(f"valid inputs: {answer}")
    print(f"trace: {trace_s * 1e3:.1f} ms; valid_inputs(): first call {solve_s * 1e3:.2f} ms, "
          f"repeated {warm_s * 1e3:.2f} ms (all sizes, exact)")
    print(f"torch meta scan of {args.max} square sizes: {scan_s * 1e3:.0f} ms ({len(brute)} valid)")
    print(f"ratio scan / valid_inputs(): {scan_s / solve_s:,.0f}x first call, {scan_s / warm_s:,.0f}x repeated; "
          f"scan / (trace + first call): {scan_s / (trace_s + solve_s):,.0f}x")
    return {"solve": solve_s, "repeated": warm_s, "trace": trace_s, "scan": scan_s}


if __name__ == "__main__":
    main()
