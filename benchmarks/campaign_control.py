"""The differential campaign over random modules with control flow on sizes: symshape's executing
front end against torch, module by module.

    python benchmarks/campaign_control.py [--modules 2000] [--seed 0] [--sizes 2] [--show 5]

For module after module from :func:`symshape.testing_control.random_control` (size guards that raise,
``assert`` and ``torch._assert``, TF 'same' padding with ``math.ceil`` and ``max``, padding to a
multiple of a window, ``int()`` of fixed sizes, loops over fixed dims, comparisons decided by earlier
guards, branches whose other side raises, submodules with control flow; unless ``--no-two-sided``,
branches where both sides run, and unless ``--no-int``, a last ``int()`` of a symbolic size), it
traces the module on its symbolic spec (``N,C,H,W``), picks sizes as the graph campaign does
(:func:`campaign.sizes_for`: the reference size, the solver's edges inside the domain and just
outside it, random sizes near the reference; for a piecewise report, sizes inside and at the edge
of each piece too) and compares with torch by :func:`symshape.check` (every layer's shape, the
output, MACs as FlopCounterMode's flops / 2, and whether torch runs or raises). Each module/size
pair lands in one bucket of :data:`campaign_graphs.BUCKETS`. A module whose last step is ``int()``
of a symbolic size must be refused with the exact text :func:`expected_refusal` gives (bucket
"refusal text" otherwise, "not refused" where it traces); a module refused because its branches
would split it into too many pieces is counted as "refused: pieces"; other refusals are counted
apart by reason. It prints the counts, the first ``--show`` failures of each bucket with a
reproducer, and the time; it exits 1 if any pair or module is not as expected.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import random
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import symshape as ss  # noqa: E402
from symshape.evaluate import compile_expr  # noqa: E402
from symshape.rules.common import fmt_shape  # noqa: E402
from symshape.verify import default_sizes  # noqa: E402
from symshape.testing_control import INT_OF_SYMBOLIC, TWO_SIDED, random_control  # noqa: E402
from campaign import sizes_for  # noqa: E402
from campaign_graphs import BUCKETS, _reason, bucket  # noqa: E402

REFUSAL_BUCKETS = ("refused as expected", "refused: pieces", "refusal text", "not refused")

_BOTH_RUN = "and the other branch runs too"


class Outcome(NamedTuple):
    """What one module gave: ``refused`` (an unexpected ShapeError's text, else None), the buckets of
    its size pairs (or of the module, for an expected refusal) and one line per failure."""

    refused: Optional[str]
    buckets: tuple
    failures: tuple
    comparisons: int


class Refusal(NamedTuple):
    """An expected refusal: its text as one of *patterns*; where the pattern has a group ``size``,
    the size the text names must equal *size* wherever *domain* (a report) holds, at every H and
    W up to 40 and N up to 3 (the message shows the size as the trace held it, which may be
    written otherwise than the report's)."""

    patterns: tuple
    size: object = None
    domain: object = None

    def matches(self, text: str) -> bool:
        for pattern in self.patterns:
            m = pattern.fullmatch(text)
            if m is not None and (self.size is None or "size" not in pattern.groupindex
                                  or self._same_size(m.group("size"))):
                return True
        return False

    def _same_size(self, shown: str) -> bool:
        if shown == str(self.size):
            return True
        try:
            got = ss.parse_expr(shown)
        except ss.ShapeError:  # longer than the parser takes: compared as text only
            return False
        syms = sorted(got.free_symbols | self.size.free_symbols, key=lambda s: s.name)
        for values in itertools.product(*[range(1, 4 if s.name == "N" else 41) for s in syms]):
            point = dict(zip(syms, values))
            if self.domain is not None and self.domain.violations(**{s.name: v for s, v in point.items()}):
                continue
            if compile_expr(got, fallback=True)(point) != compile_expr(self.size, fallback=True)(point):
                return False
        return True

    def __str__(self):
        return " or ".join(p.pattern for p in self.patterns) + (f" with size = {self.size}" if self.size is not None
                                                                  else "")


def expected_refusal(c) -> Optional[Refusal]:
    """The refusal a module's trace must give (None: it must trace).

    ``int()`` of a symbolic size as the last step: the exact text, naming the model, its input, the
    size (the one that the module without the step gives there), the line and the fix; where that
    module is refused for another reason, the same refusal. A branch where both sides run
    (:data:`TWO_SIDED`) is traced piece by piece (``rep.pieces``), or refused where the pieces would
    be too many (:data:`_BOTH_RUN` in the text: counted apart, as "refused: pieces").
    """
    if not c.kinds or c.kinds[-1] != INT_OF_SYMBOLIC:
        return None
    step, line = c.steps[-1], c.lines[-1]
    d = -1 if "x.shape[-1]" in step.lines[0] else -2
    try:
        rep = ss.trace(c.prefix().model(), c.spec)
    except ss.ShapeError as err:
        if _BOTH_RUN not in str(err):
            return Refusal((re.compile(re.escape(str(err))),))
        size = rep = None
    else:
        size = rep.output_shape[d]
        if not getattr(size, "free_symbols", None):
            return None
    names = ", ".join(sorted(s.name for s in size.free_symbols)) if size is not None else "\x01"
    text = (f"the model (Net) got input {fmt_shape(ss.parse_shape(c.spec))}: its forward uses int() of the "
            f"symbolic size \x00 at {c.name}:{line}: `{step.lines[0]}`: Python's int() must return a number, so "
            f"the size cannot stay symbolic past it; the size is already an integer, so in your own code drop the "
            f"int(); else register a shape rule for Net (@symshape.register(Net)), or give {names} a fixed value "
            f"in the input spec")
    pattern = re.compile(re.escape(text).replace("\x00", "(?P<size>.+)").replace("\x01", "[A-Z, ]+"))
    # where the module without the step is refused for its branches, so may the module
    both = re.compile(r"the model \(Net\) got input : its forward branches on the sizes .*"
                      + re.escape(_BOTH_RUN) + ".*")
    return Refusal((pattern,) + ((both,) if rep is None else ()), size, rep)


def compare(c, rng: random.Random, extra: int = 2, limit: int = 8) -> Outcome:
    """Trace module *c* and compare it with torch at up to *limit* sizes (see the module's doc)."""
    want = expected_refusal(c)
    model = c.model()
    try:
        rep = ss.trace(model, c.spec)
    except ss.ShapeError as err:
        text = str(err)
        if want is None:
            if TWO_SIDED in c.kinds and _BOTH_RUN in text:  # too many pieces: declined, counted apart
                return Outcome(None, ("refused: pieces",), (), 0)
            return Outcome(text, (), (), 0)
        if want.matches(text):
            return Outcome(None, ("refused as expected",), (), 0)
        return Outcome(None, ("refusal text",), (f"refusal text: got {text!r}, expected {want}",), 0)
    if want is not None and c.kinds[-1] == INT_OF_SYMBOLIC:
        return Outcome(None, ("not refused",), (f"not refused: expected {want}",), 0)
    points = sizes_for(c, rep, rng, extra)[:limit]
    for piece in rep.pieces[1:]:  # a branch where both sides run: sizes inside (and at the edge of) each piece
        try:
            more = default_sizes(piece, n=2)
        except ss.ShapeError:
            continue
        points += [p for p in more if p not in points][:3]
    res = ss.check(model, rep, sizes=points)
    buckets, failures = [], []
    for point in res.sizes:
        here = [x for x in res.comparisons if x.sizes == point]
        b = bucket(here)
        buckets.append(b)
        if b != "agree":
            failures.append(f"{b}: {next(x for x in here if x.status == 'mismatch')}")
    return Outcome(None, tuple(buckets), tuple(failures), len(res.comparisons))


class _Timeout(BaseException):
    """Raised by the alarm: a BaseException, which the executor does not take for the model's raise."""


def _alarm(signum, frame):
    raise _Timeout()


def campaign(modules: int, seed: int, extra: int, show: int = 5, timeout: float = 60, two_sided: bool = True,
             int_of_symbolic: bool = True, out=sys.stdout) -> int:
    warnings.filterwarnings("ignore")  # torch's performance and deprecation notes
    rng = random.Random(seed)
    start = time.perf_counter()
    counts, refusals, kinds = collections.Counter(), collections.Counter(), collections.Counter()
    examples = collections.defaultdict(list)
    refused = timeouts = comparisons = 0
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for _ in range(modules):
            module_seed = rng.randrange(2 ** 32)
            c = random_control(random.Random(module_seed), two_sided=two_sided, int_of_symbolic=int_of_symbolic,
                               name=f"<control {module_seed}>")
            kinds.update(set(c.kinds))
            repro = (f"module seed {module_seed}: spec {c.spec!r}, torch runs at {c.ref}\n"
                     + "\n".join("      " + line for line in c.source().splitlines()))
            signal.alarm(int(timeout))
            try:
                got = compare(c, random.Random(module_seed), extra)
            except _Timeout:
                timeouts += 1
                examples["timeout"].append(repro)
                continue
            except Exception as err:  # a raw exception escaped: a bug
                counts["crash"] += 1
                examples["crash"].append(f"{type(err).__name__}: {err}\n    {repro}")
                continue
            finally:
                signal.alarm(0)
            if got.refused is not None:
                refused += 1
                refusals[_reason(ss.ShapeError(got.refused))] += 1
                examples["refused"].append(f"{got.refused}\n    {repro}")
                continue
            counts.update(got.buckets)
            comparisons += got.comparisons
            for f in got.failures:
                examples[f.split(":", 1)[0]].append(f"{f}\n    {repro}")
    finally:
        signal.signal(signal.SIGALRM, old)
    elapsed = time.perf_counter() - start
    pairs = sum(counts[b] for b in BUCKETS)
    print(f"modules             {modules:,} ({refused:,} refused unexpectedly, "
          f"{counts['refused as expected']:,} refused as expected, {timeouts:,} over {timeout:g} s)", file=out)
    print(f"pairs compared      {pairs:,} (module/size pairs; {comparisons:,} comparisons with torch)", file=out)
    for b in BUCKETS + REFUSAL_BUCKETS:
        print(f"  {b:<18}{counts[b]:,}", file=out)
    print("steps drawn (modules with each kind): " + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common()), file=out)
    if refusals:
        print("unexpected refusals by reason (sizes and names blurred):", file=out)
        for reason, n in refusals.most_common(12):
            print(f"  {n:,}: {reason}", file=out)
    for b in (*BUCKETS[1:], *REFUSAL_BUCKETS[1:], "refused", "timeout"):
        for text in examples[b][:show]:
            print(f"{b}: {text}", file=out)
    print(f"elapsed             {elapsed:.1f} s", file=out)
    bad = pairs - counts["agree"] + counts["refusal text"] + counts["not refused"] + timeouts
    return 1 if bad else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=2_000, help="random modules to check (default 2,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the campaign (default 0)")
    parser.add_argument("--sizes", type=int, default=2, help="random sizes per module besides the spread (default 2)")
    parser.add_argument("--show", type=int, default=5, help="failures shown per bucket (default 5)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per module (default 60)")
    parser.add_argument("--no-two-sided", action="store_true", help="no branches where both sides run")
    parser.add_argument("--no-int", action="store_true", help="no int() of a symbolic size")
    args = parser.parse_args(argv)
    return campaign(args.modules, args.seed, args.sizes, args.show, args.timeout, not args.no_two_sided,
                    not args.no_int)


if __name__ == "__main__":
    sys.exit(main())
