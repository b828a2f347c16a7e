"""The long differential campaign: random networks and sizes, each checked against torch.

    python benchmarks/campaign.py [--pairs 10000] [--seed 0] [--sizes 4]

For network after network from :func:`symshape.testing.random_network`, it traces the network,
picks sizes (the generator's reference size, :func:`symshape.verify.default_sizes`, and random
sizes near the reference, inside or outside the domain) and runs :func:`symshape.check` at each
one (one network/size pair = one torch run) until ``--pairs`` pairs are done. It prints networks
tried, sizes tried, comparisons made, mismatches (each in full), skipped comparisons by reason,
and the elapsed time; it exits 1 if any mismatch was found.
"""
from __future__ import annotations

import argparse
import collections
import random
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import symshape as ss  # noqa: E402
from symshape.verify import default_sizes  # noqa: E402
from symshape.testing import random_network  # noqa: E402


def sizes_for(net, rep, rng, extra):
    """The reference size, the default spread, and ``extra`` random sizes around the reference."""
    points = [dict(net.ref)]
    try:
        points += [p for p in default_sizes(rep, n=4) if p not in points]
    except ss.ShapeError:  # no valid size near the lower bounds: the random ones still test the domain
        pass
    for _ in range(extra):
        point = {k: max(1, v + rng.randint(-v // 2 - 1, v // 2 + 1)) for k, v in net.ref.items()}
        if point not in points:
            points.append(point)
    return points


def campaign(pairs: int, seed: int, extra: int, out=sys.stdout) -> int:
    warnings.filterwarnings("ignore", message="Using padding='same'")  # torch's performance note
    rng = random.Random(seed)
    start = time.perf_counter()
    networks = tried = comparisons = 0
    mismatches, skipped = [], collections.Counter()
    while tried < pairs:
        net_seed = rng.randrange(2 ** 32)
        net = random_network(random.Random(net_seed))
        networks += 1
        try:
            rep = ss.trace(net.model, net.spec)
        except ss.ShapeError as err:
            tried += 1
            mismatches.append(f"network seed {net_seed} ({net.spec}, runs in torch at {net.ref}): trace raised: {err}")
            continue
        points = sizes_for(net, rep, rng, extra)[:pairs - tried]
        res = ss.check(net.model, rep, sizes=points)
        tried += len(points)
        comparisons += len(res.comparisons)
        for c in res.skipped:
            skipped[c.note] += 1
        for c in res.mismatches:
            mismatches.append(f"network seed {net_seed} ({net.spec}): {c}\n    model: {net.model}")
    elapsed = time.perf_counter() - start
    print(f"networks tried      {networks:,}", file=out)
    print(f"sizes tried         {tried:,} (network/size pairs)", file=out)
    print(f"comparisons made    {comparisons:,}", file=out)
    print(f"mismatches          {len(mismatches):,}", file=out)
    for m in mismatches:
        print(f"  {m}", file=out)
    print(f"skipped comparisons {sum(skipped.values()):,}", file=out)
    for reason, count in skipped.most_common():
        print(f"  {count:,}: {reason}", file=out)
    print(f"elapsed             {elapsed:.1f} s", file=out)
    return 1 if mismatches else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000, help="network/size pairs to check (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the campaign (default 0)")
    parser.add_argument("--sizes", type=int, default=3, help="random sizes per network besides the spread (default 3)")
    args = parser.parse_args(argv)
    return campaign(args.pairs, args.seed, args.sizes)


if __name__ == "__main__":
    sys.exit(main())
