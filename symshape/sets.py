"""Solution sets of integer sizes: unions of intervals and congruence classes, and boxes of them.

An :class:`IntSet` is a finite union of *pieces* ``{x : lo <= x <= hi, x ≡ r (mod m)}`` (``hi``
may be unbounded). A :class:`SolutionSet` is a finite union of disjoint boxes, one ``IntSet`` per
free symbol, plus ties (``H = W``) for square questions. Both print the way a person writes them.

>>> s = IntSet.interval(31, 32)
>>> print(s.text("H")), len(s), 32 in s
H ∈ {31, 32}
(None, 2, True)
>>> print(IntSet.congruence(32, 0, lo=1).text("H"))
H ≡ 0 (mod 32), H ≥ 32
"""
from __future__ import annotations

import heapq
import itertools
import math
import sys
from typing import Iterable, Optional

import sympy

__all__ = ["IntSet", "SolutionSet"]

_SHOW = 8  # finite sets with at most this many elements print as {a, b, ...}


def _length(n: int) -> int:
    if n > sys.maxsize:
        raise OverflowError(f"the set holds {n} points, more than len() can return: use .count()")
    return n


def _norm(lo: int, hi: Optional[int], m: int, r: int):
    """The piece with lo and hi moved onto its lattice, or None when it is empty."""
    r %= m
    lo = lo + (r - lo) % m
    if hi is not None:
        hi = hi - (hi - r) % m
        if hi < lo:
            return None
    return (lo, hi, m, r)


def _crt(m1: int, r1: int, m2: int, r2: int):
    """``(m, r)`` with x ≡ r (mod m) iff x ≡ r1 (mod m1) and x ≡ r2 (mod m2), or None."""
    g = math.gcd(m1, m2)
    if (r2 - r1) % g:
        return None
    lcm = m1 // g * m2
    k = ((r2 - r1) // g * pow(m1 // g, -1, m2 // g)) % (m2 // g) if m2 // g > 1 else 0
    return lcm, (r1 + m1 * k) % lcm


class IntSet:
    """A set of integers: a union of disjoint pieces ``(lo, hi, m, r)``, sorted by ``lo``.

    >>> a = IntSet.interval(7, 8) | IntSet.interval(343, 344)
    >>> list(a), a.min(), a.max()
    ([7, 8, 343, 344], 7, 344)
    >>> print((IntSet.interval(1, None) & IntSet.congruence(8, 0)).text("W"))
    W ≡ 0 (mod 8), W ≥ 8
    """

    __slots__ = ("pieces",)

    def __init__(self, pieces: Iterable = ()):
        # by lo, then hi with unbounded last (a tuple with hi None does not compare with an int)
        ps = sorted((p for p in pieces if p is not None),
                    key=lambda p: (p[0], p[1] is None, p[1] or 0, p[2], p[3]))
        self.pieces = tuple(self._merge(ps))

    @staticmethod
    def _merge(ps):
        out: list = []
        for p in ps:
            if out and p[2] == 1 and out[-1][2] == 1 and (out[-1][1] is None or p[0] <= out[-1][1] + 1):
                lo, hi, _, _ = out[-1]
                out[-1] = (lo, None if hi is None or p[1] is None else max(hi, p[1]), 1, 0)
            else:
                out.append(p)
        return out

    # constructors
    @classmethod
    def interval(cls, lo: int, hi: Optional[int] = None) -> "IntSet":
        """``{lo, ..., hi}`` (``hi=None``: unbounded)."""
        return cls([_norm(int(lo), None if hi is None else int(hi), 1, 0)])

    @classmethod
    def congruence(cls, m: int, residues, lo: int = 1, hi: Optional[int] = None) -> "IntSet":
        """``{x : x ≡ r (mod m) for r in residues, lo <= x <= hi}``."""
        if isinstance(residues, int):
            residues = (residues,)
        if m == 1:
            return cls.interval(lo, hi) if residues else cls()
        return cls(_norm(lo, hi, m, r) for r in sorted(set(x % m for x in residues)))

    @classmethod
    def empty(cls) -> "IntSet":
        return cls()

    # algebra
    def __and__(self, other: "IntSet") -> "IntSet":
        out = []
        if len(self.pieces) * len(other.pieces) > 64 and len({p[2] for p in self.pieces + other.pieces}) == 1:
            by_residue: dict = {}  # one modulus: only pieces of the same residue meet
            for b in other.pieces:
                by_residue.setdefault(b[3], []).append(b)
            pairs = [(a, b) for a in self.pieces for b in by_residue.get(a[3], ())]
        else:
            pairs = itertools.product(self.pieces, other.pieces)
        for a, b in pairs:
            c = _crt(a[2], a[3], b[2], b[3])
            if c is None:
                continue
            hi = a[1] if b[1] is None else b[1] if a[1] is None else min(a[1], b[1])
            out.append(_norm(max(a[0], b[0]), hi, *c))
        return IntSet(out)

    def __or__(self, other: "IntSet") -> "IntSet":
        ps = list(self.pieces) + list(other.pieces)
        if all(p[2] == 1 for p in ps):
            return IntSet(ps)
        lcm = math.lcm(*(p[2] for p in ps))
        if lcm > 4096:  # keep the pieces as they are (they may overlap only in unusual inputs)
            return IntSet(ps)
        by_res: dict = {}
        for lo, hi, m, r in ps:
            for j in range(lcm // m):
                q = _norm(lo, hi, lcm, r + j * m)
                if q is not None:
                    by_res.setdefault(q[3], []).append(q)
        out = []
        for qs in by_res.values():
            qs.sort(key=lambda q: (q[0], q[1] is None, q[1] or 0))  # hi None: unbounded, last
            cur = list(qs[0])
            for lo, hi, _, _ in qs[1:]:
                if cur[1] is None or lo <= cur[1] + lcm:
                    cur[1] = None if cur[1] is None or hi is None else max(cur[1], hi)
                else:
                    out.append(tuple(cur))
                    cur = [lo, hi, lcm, cur[3]]
            out.append(tuple(cur))
        return IntSet(out)._coarsen()

    def _coarsen(self) -> "IntSet":
        """The same set with the smallest period, when it is a union of unbounded classes
        (``H ≡ 0 (mod 6) or H ≡ 2 (mod 6) or ...`` -> ``H ≡ 0 (mod 2)``)."""
        ps = self.pieces
        if len(ps) < 2 or any(p[1] is not None for p in ps) or len({p[2] for p in ps}) != 1 or ps[0][2] > 4096:
            return self
        m = ps[0][2]
        res = {p[3] for p in ps}
        lo, top = min(p[0] for p in ps), max(p[0] for p in ps)
        if top - lo > 4 * m:
            return self
        for q in sympy.divisors(m)[:-1]:
            small = {r % q for r in res}
            if res != {r for r in range(m) if r % q in small}:
                continue
            cand = IntSet.congruence(q, sorted(small), lo, None)
            if all((x in cand) == (x in self) for x in range(lo, top + m + 1)):
                return cand
        return self

    # queries
    @property
    def is_empty(self) -> bool:
        return not self.pieces

    @property
    def is_finite(self) -> bool:
        return all(p[1] is not None for p in self.pieces)

    def __contains__(self, x) -> bool:
        x = int(x)
        return any(lo <= x and (hi is None or x <= hi) and (x - r) % m == 0 for lo, hi, m, r in self.pieces)

    def count(self) -> int:
        """How many integers the set holds (exact, however large); ValueError when infinite."""
        if not self.is_finite:
            raise ValueError(f"the set {self.text('x')} is infinite")
        return sum((hi - lo) // m + 1 for lo, hi, m, _ in self.pieces)

    def __len__(self) -> int:
        return _length(self.count())

    def __iter__(self):
        gens = [itertools.count(lo, m) if hi is None else range(lo, hi + 1, m) for lo, hi, m, _ in self.pieces]
        last = None
        for x in heapq.merge(*gens):
            if x != last:
                yield x
            last = x

    def min(self) -> int:
        if self.is_empty:
            raise ValueError("the set is empty")
        return min(p[0] for p in self.pieces)

    def max(self) -> Optional[int]:
        """The largest element, None when unbounded."""
        if self.is_empty:
            raise ValueError("the set is empty")
        if not self.is_finite:
            return None
        return max(p[1] for p in self.pieces)

    def __eq__(self, other) -> bool:
        return isinstance(other, IntSet) and self.pieces == other.pieces

    def __hash__(self) -> int:
        return hash(self.pieces)

    def __repr__(self) -> str:
        return f"IntSet({self.text('x')})"

    # printing
    def _interval(self) -> bool:
        return len(self.pieces) == 1 and self.pieces[0][2] == 1

    def _small(self):
        return self.is_finite and self.count() <= _SHOW

    def text(self, name: str) -> str:
        """``H ∈ {31, 32}``, ``7 ≤ H ≤ 400``, ``H ≥ 7``, ``H ≡ 0 (mod 32), H ≥ 32``."""
        if self.is_empty:
            return f"{name} ∈ ∅"
        if self._small() and self.count() == 1:
            return f"{name} = {self.min()}"
        if self._small() and (self.count() <= 2 or not self._interval()):
            return f"{name} ∈ {{{', '.join(map(str, self))}}}"
        parts = []
        for lo, hi, m, r in self.pieces:
            if hi is not None and (hi - lo) // m < _SHOW and (m > 1 or hi - lo < 2):
                parts.append(f"{name} ∈ {{{', '.join(map(str, range(lo, hi + 1, m)))}}}")
                continue
            rng = f"{name} ≥ {lo}" if hi is None else f"{lo} ≤ {name} ≤ {hi}"
            parts.append(rng if m == 1 else f"{name} ≡ {r} (mod {m}), {rng}")
        return " or ".join(parts)

    def latex(self, name: str) -> str:
        """The set as LaTeX, e.g. ``H \\in \\{31, 32\\}``."""
        if self.is_empty:
            return rf"{name} \in \emptyset"
        if self._small() and self.count() == 1:
            return f"{name} = {self.min()}"
        if self._small() and (self.count() <= 2 or not self._interval()):
            return rf"{name} \in \{{{', '.join(map(str, self))}\}}"
        parts = []
        for lo, hi, m, r in self.pieces:
            rng = rf"{name} \geq {lo}" if hi is None else rf"{lo} \leq {name} \leq {hi}"
            parts.append(rng if m == 1 else rf"{name} \equiv {r} \pmod{{{m}}},\ {rng}")
        return r" \;\lor\; ".join(parts)


def _latex_text(text: str) -> str:
    table = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
             "$": r"\$", "^": r"\^{}", "~": r"\~{}"}
    return "".join(table.get(ch, ch) for ch in text)


def _tie_text(s, t, *_) -> str:
    """``H = W`` for a plain tie, ``W = H - 3`` for a linear one."""
    return f"{t.name} = {s.name}" if t.is_Symbol else f"{s.name} = {sympy.sstr(t)}"


def _tie_latex(s, t, *_) -> str:
    return f"{t.name} = {s.name}" if t.is_Symbol else f"{s.name} = {sympy.latex(t)}"


def _merge_boxes(boxes: list) -> list:
    """Fewer boxes for the same set: boxes equal in every size but one become one box (their
    union in that size), repeated until nothing merges."""
    if len(boxes) < 2:
        return boxes
    k = len(boxes[0])
    changed = True
    while changed and len(boxes) > 1:
        changed = False
        for i in range(k):
            groups: dict = {}
            for b in boxes:
                groups.setdefault(b[:i] + b[i + 1:], []).append(b)
            if len(groups) == len(boxes):
                continue
            out = []
            for rest, bs in groups.items():
                part = bs[0][i]
                for b in bs[1:]:
                    part = part | b[i]
                out.append(rest[:i] + (part,) + rest[i:])
            boxes, changed = out, True
    return boxes


def _box_key(box):
    return tuple(s.min() for s in box)


class SolutionSet:
    """Which integer sizes satisfy a question: a union of disjoint boxes over ``symbols``.

    ``symbols`` are the sympy symbols asked about, in order; ``free`` those that vary
    independently; ``ties`` maps a symbol to the free symbol it equals (square inputs), or to an
    integer-linear expression of free symbols (``W = H - 3``); ``boxes`` holds one :class:`IntSet` per free symbol. ``method`` names how the answer was
    found (``exact inversion``, ``bisection``, ``divisors``, ``staircase``, ``congruence``,
    ``scan``), ``note`` warns when part of it is a bounded scan, ``scanned`` maps each scanned size
    to the bound up to which the answer is exact (``in``, ``len``, iteration and ``min`` refuse
    with ShapeError beyond it), ``reason`` says why an empty answer is empty, and ``steps`` is the
    chain of inversions (see :meth:`explain`). ``count()`` is ``len()`` for sets too large for it.

    Points are tuples in the order of ``symbols`` (a bare int for one symbol).

    >>> H, W = sympy.symbols("H W", integer=True, positive=True)
    >>> box = (IntSet.interval(31, 32), IntSet.interval(31, 32))
    >>> s = SolutionSet((H, W), [box])
    >>> print(s)
    H ∈ {31, 32}, W ∈ {31, 32}
    >>> len(s), (31, 32) in s, {"H": 32, "W": 33} in s, s.min()
    (4, True, False, (31, 31))
    """

    def __init__(self, symbols, boxes=(), ties=None, method: str = "", note: str = "", reason: str = "",
                 steps=(), scanned=None):
        self.symbols = tuple(symbols)
        self.ties = dict(ties or {})
        self.free = tuple(s for s in self.symbols if s not in self.ties)
        kept = _merge_boxes([tuple(b) for b in boxes if not any(s.is_empty for s in b)])
        if not self.free:
            kept = kept[:1]
        self.boxes = tuple(sorted(kept, key=_box_key))
        self.method = method
        self.note = note
        self.reason = reason if not self.boxes else ""
        self._steps = tuple(steps)
        #: ``{symbol: top}`` when part of the answer rests on a bounded scan (or search): the
        #: answer is exact only at points with each such size at most ``top``
        self.scanned = dict(scanned or {})

    @property
    def steps(self) -> tuple:
        """The chain of inversions, as lines of text (formatted on first use)."""
        self._steps = tuple(s() if callable(s) else s for s in self._steps)
        return self._steps

    # queries
    @property
    def is_empty(self) -> bool:
        return not self.boxes

    @property
    def is_finite(self) -> bool:
        return all(s.is_finite for b in self.boxes for s in b)

    @property
    def caveat(self) -> str:
        """What the answer does not cover (empty when it is exact everywhere)."""
        return self.note if self.scanned or self.note else ""

    def _beyond(self, values: dict) -> list:
        return [f"{s.name} = {values[s]} > {top}" for s, top in self.scanned.items() if s in values and values[s] > top]

    def _refuse(self, what: str):
        from .symbols import ShapeError

        bound = ", ".join(f"{s.name} ≤ {top}" for s, top in self.scanned.items())
        raise ShapeError(f"{what}: this answer was scanned only up to a bound ({bound}; {self.note}), so the "
                         "sizes beyond it are not known; give bounds= to solve within them exactly")

    def _point(self, point) -> dict:
        if isinstance(point, dict):
            by_name = {s.name: s for s in self.symbols}
            return {by_name[k] if isinstance(k, str) else k: int(v) for k, v in point.items()}
        if not isinstance(point, (tuple, list)):
            point = (point,)
        if len(point) != len(self.symbols):
            raise ValueError(f"a point has {len(self.symbols)} sizes ({', '.join(s.name for s in self.symbols)}),"
                             f" got {point!r}")
        return dict(zip(self.symbols, (int(v) for v in point)))

    def __contains__(self, point) -> bool:
        try:
            values = self._point(point)
        except (ValueError, KeyError, TypeError):
            return False
        if set(values) != set(self.symbols):
            return False
        if any(values[s] != self._tied(t, values) for s, t in self.ties.items()):
            return False
        beyond = self._beyond(values)
        if beyond:
            self._refuse(f"cannot tell whether {', '.join(beyond)} is a solution")
        return any(all(values[s] in part for s, part in zip(self.free, box)) for box in self.boxes)

    def count(self) -> int:
        """How many points the set holds (exact, however large); ValueError when infinite,
        ShapeError when the answer rests on a bounded scan."""
        if self.scanned:
            self._refuse("cannot count the solutions")
        if not self.is_finite:
            raise ValueError(f"the solution set is infinite: {self}")
        return sum(math.prod(s.count() for s in box) for box in self.boxes)

    def __len__(self) -> int:
        return _length(self.count())

    @staticmethod
    def _tied(t, values: dict) -> int:
        return values[t] if t.is_Symbol else int(t.xreplace(values))

    def _expand(self, free_point):
        values = dict(zip(self.free, free_point))
        full = tuple(self._tied(self.ties.get(s, s), values) for s in self.symbols)
        return full[0] if len(full) == 1 else full

    def __iter__(self):
        """The points in increasing order (lexicographic over ``symbols``). An unbounded set of
        one free size iterates lazily without end (take what you need); an unbounded set of
        several free sizes cannot be listed in order and raises ValueError. A scanned answer lists
        the points it found, then raises ShapeError: it does not know the sizes beyond the scan."""
        if len(self.free) == 1:
            for box in self.boxes:
                for x in box[0]:
                    if self._beyond({self.free[0]: x}):
                        break
                    yield self._expand((x,))
            if self.scanned:
                self._refuse("cannot list every solution")
            return
        if not self.is_finite:
            raise ValueError(f"cannot list an infinite set of several sizes: {self}")
        points = [self._expand(p) for box in self.boxes for p in itertools.product(*box)]
        yield from sorted(points)
        if self.scanned:
            self._refuse("cannot list every solution")

    def min(self):
        """The smallest point (lexicographic over ``symbols``): an int for one symbol, else a tuple."""
        if self.is_empty and self.scanned:
            self._refuse("no solution found")
        if self.is_empty:
            raise ValueError(f"no solution: {self.reason}" if self.reason else "no solution")
        return min(self._expand(_box_key(b)) for b in self.boxes)

    def minimal(self) -> "SolutionSet":
        """The minimal points: those with no other solution at most as large in every size."""
        corners = sorted(set(_box_key(b) for b in self.boxes))
        keep = [c for c in corners if not any(d != c and all(x <= y for x, y in zip(d, c)) for d in corners)]
        boxes = [tuple(IntSet.interval(x, x) for x in c) for c in keep]
        return SolutionSet(self.symbols, boxes, self.ties, self.method, self.note, self.reason, self._steps,
                           self.scanned)

    def __eq__(self, other) -> bool:
        return (isinstance(other, SolutionSet) and self.symbols == other.symbols and self.ties == other.ties
                and self.boxes == other.boxes)

    def __hash__(self) -> int:
        return hash((self.symbols, self.boxes))

    # printing
    def _rows(self, part, tie, sep):
        if self.is_empty:
            return []
        head = [tie(s, t) for s, t in self.ties.items()]
        return [sep.join(head + [part(s, n) for s, n in zip(box, (x.name for x in self.free))])
                for box in self.boxes]

    def __str__(self) -> str:
        if self.is_empty:
            head = "no solution found" if self.scanned else "no solution"
            return head + (f": {self.reason}" if self.reason else "") + (f"\n({self.note})" if self.note else "")
        if not self.free:
            text = ", ".join(_tie_text(s, t) for s, t in self.ties.items())
        else:
            text = "\n".join(self._rows(lambda s, n: s.text(n), _tie_text, ", "))
        return text + (f"\n({self.note})" if self.note else "")

    def __repr__(self) -> str:
        return f"<SolutionSet {str(self)!r}>"

    def to_latex(self) -> str:
        r"""The set as LaTeX: boxes joined by ``\lor``."""
        note = rf" \quad \text{{({_latex_text(self.note)})}}" if self.note else ""
        if self.is_empty:
            return r"\emptyset" + note
        rows = self._rows(lambda s, n: s.latex(n), _tie_latex, r",\ ")
        return r" \;\lor\; ".join(rf"\left({r}\right)" if len(rows) > 1 else r for r in rows) + note

    def _repr_latex_(self) -> str:
        return f"${self.to_latex()}$"

    def explain(self) -> str:
        """The chain of steps that produced the answer, one per line, then the answer."""
        return "\n".join([*self.steps, f"answer: {self}"])
