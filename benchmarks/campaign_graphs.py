"""The differential campaign over random graphs of tensor ops: symshape against torch, pair by pair.

    python benchmarks/campaign_graphs.py [--pairs 10000] [--seed 0] [--sizes 4] [--show 5]

For graph after graph from :func:`symshape.testing_graphs.random_graph`, it traces the graph on
its symbolic spec, picks sizes as the module campaign does (:func:`campaign.sizes_for`: the
reference size, the solver's edges inside the domain and just outside it, and random sizes near
the reference) and compares with torch by :func:`symshape.check` (shapes per output, MACs as
FlopCounterMode's flops / 2, and whether the model runs) until ``--pairs`` graph/size pairs are
done. Each pair lands in one bucket: agree, mismatch shape, mismatch MACs, domain too strict
(symshape refuses a size where torch runs), domain too loose (torch raises where symshape says it
runs, or raises in an earlier layer than symshape names), or crash (an exception other than
ShapeError escaped). Graphs that ``trace`` refuses with a ShapeError are counted apart (refused);
so are graphs whose trace and check took longer than ``--timeout`` seconds. It prints the counts,
the refusal reasons, the first ``--show`` failures of each bucket with a reproducer, and the time;
it exits 1 if any pair is not agree.
"""
from __future__ import annotations

import argparse
import collections
import random
import re
import signal
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import symshape as ss  # noqa: E402
from symshape.testing_graphs import random_graph  # noqa: E402
from campaign import sizes_for  # noqa: E402

BUCKETS = ("agree", "mismatch shape", "mismatch MACs", "domain too strict", "domain too loose", "crash")


def bucket(comparisons) -> str:
    """The bucket of one graph/size pair from its comparisons (the first mismatch decides)."""
    for c in comparisons:
        if c.status != "mismatch":
            continue
        if c.what == "domain":
            return "domain too strict" if c.predicted == "raises" and c.actual == "runs" else "domain too loose"
        return "mismatch MACs" if c.what == "macs" else "mismatch shape"
    return "agree"


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _reason(err: Exception) -> str:
    """A refusal's reason with sizes and names blurred, to count refusals by kind."""
    text = str(err).split(": ", 1)[-1]
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\([^()]*\)", "(…)", text)
    return re.sub(r"\d+", "#", text)[:110]


def campaign(pairs: int, seed: int, extra: int, show: int = 5, timeout: float = 120, out=sys.stdout,
             progress=None) -> int:
    warnings.filterwarnings("ignore")  # torch's performance and deprecation notes
    rng = random.Random(seed)
    start = time.perf_counter()
    counts = collections.Counter()
    refusals = collections.Counter()
    examples = collections.defaultdict(list)
    graphs = refused = timeouts = 0
    done = 0
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        while done < pairs:
            graph_seed = rng.randrange(2 ** 32)
            g = random_graph(random.Random(graph_seed))
            graphs += 1
            repro = (f"graph seed {graph_seed}: spec {g.spec!r}, torch runs at {g.ref}\n"
                     + "\n".join("      " + line for line in g.model.source().splitlines()))
            signal.alarm(int(timeout))
            try:
                try:
                    rep = ss.trace(g.model, g.spec)
                except ss.ShapeError as err:
                    refused += 1
                    refusals[_reason(err)] += 1
                    continue
                points = sizes_for(g, rep, rng, extra)[:pairs - done]
                res = ss.check(g.model, rep, sizes=points)
            except _Timeout:
                timeouts += 1
                examples["timeout"].append(repro)
                continue
            except Exception as err:  # a raw exception escaped: a bug, counted as a crash pair
                counts["crash"] += 1
                done += 1
                examples["crash"].append(f"{type(err).__name__}: {err}\n    {repro}")
                continue
            finally:
                signal.alarm(0)
            for point in res.sizes:
                here = [c for c in res.comparisons if c.sizes == point]
                b = bucket(here)
                counts[b] += 1
                done += 1
                if b != "agree":
                    bad = next(c for c in here if c.status == "mismatch")
                    examples[b].append(f"{bad}\n    {repro}")
            if progress is not None:
                progress(done, graphs, counts, time.perf_counter() - start)
    finally:
        signal.signal(signal.SIGALRM, old)
    elapsed = time.perf_counter() - start
    print(f"graphs tried        {graphs:,} ({refused:,} refused by trace with a ShapeError, "
          f"{timeouts:,} over {timeout:g} s)", file=out)
    print(f"pairs compared      {done:,} (graph/size pairs)", file=out)
    for b in BUCKETS:
        print(f"  {b:<18}{counts[b]:,}", file=out)
    if refusals:
        print("refusals by reason (sizes and names blurred):", file=out)
        for reason, n in refusals.most_common(12):
            print(f"  {n:,}: {reason}", file=out)
    for b in (*BUCKETS[1:], "timeout"):
        for text in examples[b][:show]:
            print(f"{b}: {text}", file=out)
    print(f"elapsed             {elapsed:.1f} s", file=out)
    return 1 if done - counts["agree"] else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000, help="graph/size pairs to check (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the campaign (default 0)")
    parser.add_argument("--sizes", type=int, default=4, help="random sizes per graph besides the spread (default 4)")
    parser.add_argument("--show", type=int, default=5, help="failures shown per bucket (default 5)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per graph (default 120)")
    parser.add_argument("--progress", action="store_true", help="a progress line on stderr per graph")
    args = parser.parse_args(argv)

    def progress(done, graphs, counts, elapsed):
        bad = done - counts["agree"]
        print(f"\r{done:,} pairs, {graphs:,} graphs, {bad:,} not agreeing, {elapsed:.0f} s", end="",
              file=sys.stderr, flush=True)
    return campaign(args.pairs, args.seed, args.sizes, args.show, args.timeout,
                    progress=progress if args.progress else None)


if __name__ == "__main__":
    sys.exit(main())
