"""Which size branches of a module's forward make no difference: the paths of one module call,
traced side by side (execute.py), compared exactly.

A forward such as timm's window attention pads only where the size is not a multiple of the window
(``if pad_b > 0: x = F.pad(...)``). Where pad_b = 0 the padding path gives what the other path
gives, so the branch needs neither a domain condition nor a piece of its own. The executor traces
every path of the module call (a tree of :class:`Node` over the conditions it branches on, with a
:class:`Leaf` per path); :func:`inert_conditions` merges the tree bottom up: two sides merge when
the richer one's layers, output and domain give, at every size of the other side's region, what the
other side gives (:func:`~symshape.regions.holds_on`, exact). A condition is *inert* when every node
that branches on it merges; the executor then follows the richer side and adds no condition.
:class:`Paths` is the executor's part that traces the paths (mixed into the Executor).

Each layer of the poorer path is matched to a later layer of the richer one: of its kind and name,
else (an op, not a module call) of any kind, with the same shapes and MACs on the region (an average
pool to 16x16 where the other path interpolates to 16x16); what the richer path does besides must
cost no MACs. Where the region leaves a size finitely many values (``floor(H/16) = 64``), relations
of several sizes are evaluated at each (:func:`_at_every_point`); where it makes a size a multiple
of m, a relation of it is also read with the size written m·k (:func:`_holds_one`).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
from functools import lru_cache
from typing import Optional

import sympy

from .decide import always_nonnegative
from .regions import allowed_sizes as _allowed, factor_pairs, growth, holds_on, point_test
from .report import Shape
from .standins import _TYPICAL, _unwrap
from .symbols import ShapeError

__all__ = ["Leaf", "Node", "RAISES", "inert_conditions", "Paths", "typical"]

RAISES = "raises"  # a path on which the forward raised: its condition is a guard, for the executor


@dataclasses.dataclass
class Leaf:
    """One path: ``region`` the relations that select it (the branch conditions taken, as the
    domain holds them), ``out`` what the module returned (shapes and sizes), ``layers`` and
    ``domain`` what the path added to the trace (the region's conditions left out)."""

    region: tuple
    out: object
    layers: tuple
    domain: tuple
    value: Optional[bool] = None  # the side of the parent's condition this path took
    base: tuple = ()  # the domain's relations of one size at the module call (they hold on every path)
    calls: frozenset = frozenset()  # the names of its layers that are module calls (the others are ops)
    where: Optional[dict] = None  # a merged path: layer name -> the regions where it (or its match) runs
    partial: frozenset = frozenset()  # a merged path: the layers some of the merged paths do not run


@dataclasses.dataclass
class Node:
    """A branch: the module *frame* compared *rel*; ``sides`` maps True/False to the subtree of
    that side (a Node, a Leaf, None where no size takes it, or RAISES)."""

    frame: str
    rel: object
    first: bool
    sides: dict


def inert_conditions(tree) -> dict:
    """``{(frame, rel): side}`` for the conditions whose sides merge at every node of *tree*
    that branches on them (*side*: the value whose path the executor follows)."""
    return _inert_and_whole(tree)[0]


def _inert_and_whole(tree) -> tuple:
    """:func:`inert_conditions`, whether the whole tree merges into one path, and the layers of the
    merged paths that some path merged into does not run: ``{layer name: the regions where it or
    its match runs}`` (any of which may hold). Where the tree merges only in part, each subtree
    that merges is one path of the trace (the conditions apart are choices, in the domain), and a
    layer's regions are those of every path that has it: at most one of them meets the domain."""
    apart: set = set()
    while True:  # a condition whose nodes disagree is apart everywhere, and the merges above them are redone
        verdicts: dict = {}
        tops: list = []  # the paths left after merging: the tree's, or those below the nodes apart
        merged = _merge(tree, verdicts, apart, tops)
        new = {key for key, sides in verdicts.items() if not sides} - apart
        if not new:
            inert = {key: (True in sides) for key, sides in verdicts.items() if sides}
            tops = [merged] if isinstance(merged, Leaf) else tops
            partial: dict = {}
            for name in {name for top in tops for name in top.partial}:
                partial[name] = tuple(region for top in tops for region in _where(top).get(name, ()))
            return inert, isinstance(merged, Leaf), partial
        apart |= new


_APART = "apart"  # a subtree whose paths do not merge into one


def _merge(tree, verdicts: dict, apart: set, tops: Optional[list] = None):
    """The one Leaf that *tree* merges into; None where no size takes it, RAISES where a path raises,
    _APART where its paths differ. Records each node's verdict: the sides it may be followed on (an
    empty set: none). A node that branches on a condition in *apart* (one whose nodes disagree
    elsewhere) does not merge, nor do the nodes above it. A merged Leaf records where each of its
    layers runs (``where``) and which do not run on every path merged (``partial``); *tops* gets
    the paths below a node that does not merge."""
    if not isinstance(tree, Node):
        return tree
    sides = {v: _merge(t, verdicts, apart, tops) for v, t in tree.sides.items()}
    key = (tree.frame, tree.rel)
    a, b = sides[tree.first], sides[not tree.first]
    if key in apart or RAISES in (a, b) or _APART in (a, b):
        verdicts[key] = set()
        if tops is not None:
            tops += [side for side in (a, b) if isinstance(side, Leaf)]
        return RAISES if RAISES in (a, b) else _APART
    if a is None and b is None:
        return None
    if a is None or b is None:  # no size of this path's region takes one side: follow the other one
        # (a verdict too: the executor follows verdicts without adding their conditions, so the region
        # that left this side empty need not be in its domain)
        _verdict(verdicts, key, {tree.first if b is None else not tree.first})
        return a if b is None else b
    # the side whose path gives the other's results on the other's region; with as many layers on
    # both sides (a shift of 0 or 3 in one of two dims) each may, and the verdict keeps every side
    # that does, so that nodes which branch on the same condition in other regions can agree
    if len(a.layers) == len(b.layers):
        candidates = [(a, b, tree.first), (b, a, not tree.first)]
    else:
        candidates = [(b, a, not tree.first) if len(b.layers) > len(a.layers) else (a, b, tree.first)]
    merged = [(rich, poor, value, matched) for rich, poor, value in candidates
              for matched in [_same_on(rich, poor)] if matched is not None]
    if not merged:
        verdicts[key] = set()
        if tops is not None:
            tops += [a, b]
        return _APART
    _verdict(verdicts, key, {value for _, _, value, _ in merged})
    rich, poor, _, matched = merged[0]
    region = tuple(r for r in rich.region if r in poor.region)
    # where each layer of the merged path runs in torch: its own path's region, and its match's
    rw, pw = _where(rich), _where(poor)
    where = {name: rw[name] + (pw.get(matched[name], ()) if name in matched else ()) for name in rw}
    partial = rich.partial | {name for name in rw if name not in matched or matched[name] in poor.partial}
    return dataclasses.replace(rich, region=region, where=where, partial=frozenset(partial))


def _where(leaf: Leaf) -> dict:
    """``{layer name: regions}``: where each layer of *leaf*'s path runs (a merged path's record,
    else the path's own region for each)."""
    if leaf.where is not None:
        return leaf.where
    return {layer.name: (leaf.region,) for layer in leaf.layers}


def _verdict(verdicts: dict, key, sides: set) -> None:
    """Record that *key* may be followed on any of *sides*; nodes that allow no common side leave
    none (an empty set: no verdict)."""
    verdicts[key] = verdicts[key] & sides if key in verdicts else set(sides)


def _base(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


def _same_on(rich: Leaf, poor: Leaf) -> Optional[dict]:
    """Where *rich*'s path gives *poor*'s results at every size of *poor*'s region, which layer of
    *poor* each layer of *rich* stands for (``{rich name: poor name}``; the others, which cost no
    MACs, only *rich* runs); else None."""
    mine, theirs = [c.expr for c in rich.domain], [c.expr for c in poor.domain]
    # the region, and the conditions both paths add: where one of those fails neither path runs, so
    # the rest is compared where they hold (a guard both paths make, W >= 253, bounds the sizes there)
    region = poor.region + tuple(r for r in poor.base if r not in poor.region)
    region += tuple(e for e in mine if e in theirs and e not in region)
    i, extras, matched = 0, [], {}
    for layer in poor.layers:  # each layer of the poorer path is the next one of the richer path of its
        # kind and name that agrees with it on the region (the ones passed over are the richer path's own,
        # which must cost no MACs: none is looked for past the first that counts some)
        stop = next((k for k in range(i, len(rich.layers)) if not _equal_on(rich.layers[k].macs, 0, region)),
                    len(rich.layers) - 1) + 1
        same = [j for j in range(i, stop) if rich.layers[j].kind == layer.kind
                and _base(rich.layers[j].name) == _base(layer.name)][:_TRIES]
        j = next((j for j in same if _layers_agree(rich.layers[j], layer, region)), None)
        if j is None and layer.name not in poor.calls:  # an op the richer path does as another op, on the
            # same shapes at the same cost (an average pool to 16x16 where the other path interpolates to it)
            j = next((j for j in range(i, min(i + _TRIES, stop)) if rich.layers[j].name not in rich.calls
                      and _layers_agree(rich.layers[j], layer, region)), None)
        if j is None and layer.name not in poor.calls and _equal_on(layer.macs, 0, region):
            # a reshape of the same output from another input (tiny_vit's x.reshape(B, L, C) where the
            # other path cuts its one window, (B*nH*nW, 49, C), a few steps on): what follows sees the same
            j = next((j for j in range(i, min(i + 2 * _TRIES, stop)) if rich.layers[j].name not in rich.calls
                      and _equal_on(rich.layers[j].macs, 0, region)
                      and _values_on(rich.layers[j].out_shape, layer.out_shape, region)), None)
        if j is None:
            return None
        extras += rich.layers[i:j]
        matched[rich.layers[j].name] = layer.name
        i = j + 1
    extras += rich.layers[i:]
    for r in extras:  # what only the richer path does (a pad, a roll, an attention mask, the arithmetic on
        # sizes the poorer path computes on fixed tensors) must cost no MACs: the layers both paths run see
        # equal shapes (checked above), so their rules give the same
        if not _equal_on(r.macs, 0, region):
            return None
    if not _values_on(rich.out, poor.out, region):
        return None
    if (all(e in theirs or _holds(e, region) or any(_same_relation(e, t, region) for t in theirs) for e in mine)
            and all(e in mine or _holds(e, region) or any(_same_relation(e, t, region) for t in mine) for e in theirs)):
        return matched
    return None


def _same_relation(a, b, region) -> bool:
    """Whether two domain conditions are one at every size of the region: the same relation between
    sides equal there (BatchNorm's ``2*(floor((W - 1)/8) + 1)*floor((H + 15)/16) >= 2`` on a path that
    interpolates to a multiple of 16 and ``4*floor((H + 15)/16)*floor((W + 15)/16) >= 2`` on the one
    that finds the map a multiple already)."""
    return (type(a) is type(b) and isinstance(a, sympy.core.relational.Relational)
            and _equal_on(a.rhs, b.rhs, region) and _equal_on(a.lhs, b.lhs, region))


_TRIES = 3  # layers of the richer path tried for one of the poorer path (each try is an exact check)


def _layers_agree(r, p, region) -> bool:
    return (_values_on(r.in_shapes, p.in_shapes, region) and _values_on(r.out_shape, p.out_shape, region)
            and _equal_on(r.macs, p.macs, region))


def _values_on(a, b, region) -> bool:
    """Shapes, tuples of them, or sizes, equal at every size of the region."""
    if isinstance(a, (tuple, list, Shape)) and isinstance(b, (tuple, list, Shape)):
        return len(a) == len(b) and all(_values_on(x, y, region) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_on(a[k], b[k], region) for k in a)
    if isinstance(a, (int, sympy.Basic)) and isinstance(b, (int, sympy.Basic)) and not isinstance(a, bool):
        return _equal_on(a, b, region)
    return a == b


def _equal_on(a, b, region) -> bool:
    a, b = sympy.sympify(a, strict=True), sympy.sympify(b, strict=True)
    if a == b:
        return True
    return _equal_on_region(a, b, tuple(region))


@lru_cache(maxsize=65536)
def _equal_on_region(a, b, region: tuple) -> bool:
    """:func:`_equal_on` of two different formulas, cached on the exact formulas and region (the
    same sizes are compared at every layer that two paths share, and again at every call)."""
    free = a.free_symbols | b.free_symbols
    if len(free) == 1:
        (x,) = free
        return _holds_one(sympy.Eq(a, b, evaluate=False), region, x)
    # products of one-size factors: equal where the factors of each size are, up to constants whose
    # product is the ratio of the two coefficients (16*H*W = 784*floor(-H/7)*floor(-W/7) where 7 | H, W)
    paired = factor_pairs(a, b)
    if paired is None or paired[0] == 0:
        return _at_every_point(sympy.Eq(a, b, evaluate=False), region)
    ca, cb, pairs = paired
    ratio = sympy.Integer(1)
    for f, g in pairs:
        (x,) = f.free_symbols
        k = _ratio_at_a_point(f, g, _about(region, x), x)
        if k is None or holds_on(sympy.Eq(f, k * g, evaluate=False), _about(region, x), x) is not True:
            # (a square of a floor has no period and drift): where the region leaves each size finitely
            # many values, every point is evaluated (efficientvit's 16*(floor((H - 1)/16) + 1)**2*... MACs
            # against the windowed path's 38416*floor(-H/112)*floor(-W/112), where the map is one window)
            return _at_every_point(sympy.Eq(a, b, evaluate=False), region)
        ratio *= k
    return ratio * ca == cb


def _ratio_at_a_point(f, g, region, x, top: int = 1000):
    """f/g at the first size of the region (up to *top*) where g is not 0, else None."""
    from .evaluate import compile_expr

    fc, gc, tests = compile_expr(f), compile_expr(g), [point_test(r) for r in region]
    if None in tests:
        return None
    for v in range(1, top + 1):
        point = {x: v}
        if all(test(point) for test in tests):
            den = gc(point)
            if den != 0:
                return sympy.Rational(fc(point), den)
    return None


def _holds(rel, region) -> bool:
    """Whether a domain condition holds at every size of the region (one size symbol, or an
    equation of products that pair by symbol)."""
    if rel is sympy.true:
        return True
    free = rel.free_symbols
    if len(free) == 1:
        (x,) = free
        return _holds_one(rel, region, x)
    if isinstance(rel, sympy.Equality) and _equal_on(rel.lhs, rel.rhs, region):
        return True
    if isinstance(rel, (sympy.GreaterThan, sympy.LessThan, sympy.Equality)):  # at every size, once the
        # region's equations have put one side for the other (N*(floor((H - 1)/2) + 1)*W >= 2 where
        # floor((H - 1)/2) + 1 = 4*floor((H + 7)/8), which is at least 4; efficientvit's window of 49
        # positions, (floor((H - 1)/16) + 1)*(floor((W - 1)/16) + 1) = 49, where each floor is 7)
        big, small = (rel.lhs, rel.rhs) if isinstance(rel, sympy.GreaterThan) else (rel.rhs, rel.lhs)
        diff = big - small
        equal = [(e.lhs, e.rhs) for e in region if isinstance(e, sympy.Equality)]
        put = [diff] + [diff.xreplace({a: b}) for x, y in equal for a, b in ((x, y), (y, x)) if diff.has(a)]
        if isinstance(rel, sympy.Equality):
            put.append(diff.xreplace({a: b for x, y in equal for a, b in ((x, y),) if y.is_number}))
            if any(sympy.expand(d) == 0 for d in put):
                return True
        elif any(always_nonnegative(d) is True for d in put):
            return True
    return _at_every_point(rel, region)


_POINTS = 20_000  # the most points of a finite region a relation is evaluated at
_CASES = 64  # the most cases of the finite sizes where other sizes are left


def _at_every_point(rel, region) -> bool:
    """Whether *rel* holds at every point of the region, where the region allows some of its sizes
    finitely many values (``floor(H/16) = 64``: H in 1024..1039): all of them evaluated, and the
    relation left in the other sizes, if any, shown for each (:func:`_holds`); False otherwise."""
    test = point_test(rel)
    if test is None:
        return False
    finite, rest = [], []
    for x in sorted(rel.free_symbols, key=lambda s: s.name):
        allowed = _allowed(tuple(_about(region, x)), x)
        (rest if allowed is None else finite).append((x, allowed))
    count = math.prod(len(allowed) for _, allowed in finite)
    if not finite or count > (_CASES if rest else _POINTS):
        return False
    combos = itertools.product(*(allowed for _, allowed in finite))
    if rest:  # each case of the finite sizes leaves a relation of the others
        for combo in combos:
            left = rel.subs({x: v for (x, _), v in zip(finite, combo)})
            if left is sympy.false or (left is not sympy.true and not _holds(left, region)):
                return False
        return True
    # the region's relations of one size hold on `allowed`; those of several, on these sizes, are tested
    within = [point_test(r) for r in region if len(r.free_symbols) > 1 and r.free_symbols <= rel.free_symbols]
    within = [t for t in within if t is not None]
    try:
        for combo in combos:
            point = {x: v for (x, _), v in zip(finite, combo)}
            if all(t(point) for t in within) and not test(point):
                return False
    except (ArithmeticError, ValueError):  # undefined at a point: not shown
        return False
    return True


def _holds_one(rel, region, x) -> bool:
    """Whether a relation of the one size *x* holds on the region: at each of its sizes where they
    are finitely many, else by its period (:func:`~symshape.regions.holds_on`), else, where the region makes x a multiple of m, by
    writing x = m·k (``floor(H/floor(H/4)) = 4`` where 4 divides H)."""
    about = _about(region, x)
    pinned = any(_pins(r, x) for r in about)
    found = _at_each(rel, about, x) if pinned else None  # an equation pins x: its few sizes are evaluated
    if found is None:
        found = holds_on(rel, about, x)
    if found is None and not pinned:  # not periodic (a Min): evaluated where bounds leave finitely many sizes
        found = _at_each(rel, about, x)  # (8 <= W <= 15: Min(8, W) = 8*floor(W/8))
    if found is not None:
        return found
    for m in _moduli(about, x):
        if holds_on(sympy.Eq(sympy.Mod(x, m), 0), about, x) is True:
            k = sympy.Dummy("k", integer=True, positive=True)
            whole = sympy.simplify(rel.subs(x, m * k))
            if whole is sympy.true or (whole is not sympy.false and isinstance(whole, sympy.Rel)
                                       and holds_on(whole, [r.subs(x, m * k) for r in about], k) is True):
                return True
    return False


def _at_each(rel, about, x) -> Optional[bool]:
    """Whether *rel* holds at each size the relations *about* x allow, where they are finitely many
    (:func:`_allowed`); None where they are not, or where *rel* is undefined at one of them."""
    test = point_test(rel)
    allowed = _allowed(tuple(about), x) if test is not None else None
    if allowed is None:
        return None
    try:
        return all(test({x: v}) for v in allowed)
    except (ArithmeticError, ValueError):  # undefined at one of them (a division by a floor that is 0)
        return None


def _moduli(about, x) -> list:
    """The moduli m > 1 of ``Mod(., m)`` and ``floor(./m)`` in relations of *x*, largest first."""
    found = set()
    for r in about:
        for a in r.atoms(sympy.Mod):
            if a.args[1].is_Integer and a.args[1] > 1:
                found.add(int(a.args[1]))
        for a in r.atoms(sympy.floor):
            coeff = a.args[0].coeff(x)
            if coeff.is_Rational and coeff.q > 1:
                found.add(int(coeff.q))
    return sorted(found, reverse=True)


def _about(region, x) -> list:
    """The region's relations on *x* alone that :func:`~symshape.regions.holds_on` reads (dropping
    the others only widens the region: a stronger check)."""
    return [r for r in region if r.free_symbols == {x} and _periodic(r, x)]


@functools.lru_cache(maxsize=4096)
def _pins(rel, x) -> bool:
    """Whether *rel* is an equation whose sides drift apart as x grows (``floor(H/16) = 64``): it
    holds at finitely many sizes."""
    if not isinstance(rel, sympy.Equality):
        return False
    grown = growth(sympy.expand(rel.lhs - rel.rhs), x)
    return grown is not None and grown[1] != 0


@functools.lru_cache(maxsize=4096)
def _periodic(rel, x) -> bool:
    return isinstance(rel, sympy.Rel) and growth(sympy.expand(rel.lhs - rel.rhs), x) is not None


# ------------------------------------------------------------ tracing the paths (the executor's side)

_MAX_PATHS = 32  # paths of one module call traced side by side (explore.py)


class _Explore(BaseException):
    """A module call met a size condition no path of it has been compared on: trace its paths."""

    def __init__(self, frame):
        super().__init__()
        self.frame = frame


class _Local(BaseException):
    """While a module call's paths are traced: a condition the path has not fixed yet."""

    def __init__(self, rel, frame: str):
        super().__init__()
        self.rel, self.frame = rel, frame


_ABORT = "abort"  # too many paths


def typical(rel) -> bool:
    """The side of a size comparison at the typical size (224 for every size): the one followed first."""
    value = rel.subs({s: _TYPICAL for s in rel.free_symbols})
    return bool(value) if value in (sympy.true, sympy.false) else True


def _relative(qualified: str, name: str) -> Optional[str]:
    """A frame's or layer's name inside the call *name*, relative to it (None: outside it)."""
    if qualified == name:
        return ""
    return qualified[len(name):] if name and qualified.startswith(name + ".") else (qualified if not name else None)


def _named(relative: str, name: str) -> str:
    """:func:`_relative` undone for the call *name*."""
    return name if relative == "" else (name + relative if name else relative)


class Paths:
    """The executor's part that traces every path of one module call (mixed into
    :class:`~symshape.execute.Executor`, whose tracer, stack, counts and choices it uses)."""

    def _inert(self, name: str, rel):
        """The side to follow for *rel* in module *name* where a call on the stack showed both sides
        give the same result (under the domain at that call), else None."""
        for frame in self.stack:
            entry = self.entries.get(id(frame))
            verdicts = self.inert.get(entry[1]) if entry is not None else None
            if verdicts and (name, rel) in verdicts:
                return verdicts[(name, rel)]
        return None

    def _path_value(self, raw, rel, negation) -> bool:
        """While a module call's paths are traced: the value the path fixed for the comparison *raw*
        (as the forward wrote it; *rel* and *negation* simplified under the domain), its condition
        added to the domain (the path's region), or _Local for a comparison it has not fixed."""
        frame, forced, region = self.exploring
        if raw not in forced:
            raise _Local(raw, self.stack[-1][0])
        value = forced[raw]
        name, kind, inputs = self.stack[-1]
        before = len(self.tracer.domain)
        self.tracer.require(name, kind, inputs, rel if value else negation, f"a path of {frame[0]!r}")
        if len(self.tracer.domain) > before:
            region.append(self.tracer.domain[-1])
        return value

    def _explore(self, module, frame, args, kwargs) -> None:
        """Trace every path of this module call and learn which of its conditions are inert.

        Where the same call merged into one path under a domain that this one contains, its verdicts
        hold here too (on fewer sizes): they are taken without tracing the paths again. The same
        call: the same module and arguments (an earlier piece of the trace, before a branch's
        condition was assumed), or, for a function whose result depends on its arguments alone
        (``explore_key``: torchvision's ``shifted_window_attention``, called by every swin block),
        the same function and arguments under another name."""
        snapshot, key = self.entries[id(frame)]
        self.explored.add(key)
        name, call, domain = key
        ident = module.explore_key() if hasattr(module, "explore_key") else None
        earlier = self.tracer.memo.setdefault(("explored", name, call) if ident is None else
                                              ("explored", ident, call), [])
        here = set(domain)
        for known, verdicts, partial in earlier:
            if known == here if ident is not None else known <= here:  # another call of the function: only
                # under the same domain, where its own paths would merge as that call's did
                self.inert[key] = {(_named(f, name), rel): side for (f, rel), side in verdicts.items()}
                self.partial[key] = {_named(layer, name): regions for layer, regions in partial.items()}
                self._restore_snapshot(snapshot)  # what the call recorded before its first branch: run again
                return
        terse, self.tracer.terse = self.tracer.terse, True  # a path that fails is None or RAISES: no message read
        try:
            tree = self._paths(module, frame, args, kwargs, snapshot, {}, [_MAX_PATHS])
        finally:
            self.exploring, self.tracer.terse = None, terse
            self._restore_snapshot(snapshot)
        if tree is not _ABORT:
            verdicts, whole, partial = _inert_and_whole(tree)
            self.inert[key] = verdicts  # proven under the domain at this call only (and where it holds)
            self.partial[key] = partial
            kept = ({(_relative(f, name), rel): side for (f, rel), side in verdicts.items()},
                    {_relative(layer, name): regions for layer, regions in partial.items()})
            if whole and all(f is not None for f, _ in kept[0]) and None not in kept[1]:  # a call that merged only in
                # part is traced again under a larger domain (more may merge)
                earlier.append((frozenset(domain), *kept))

    def _paths(self, module, frame, args, kwargs, snapshot, forced: dict, budget: list):
        """The tree of paths of the call under the *forced* conditions (explore.py's Node and Leaf)."""
        self._restore_snapshot(snapshot)
        region: list = []
        self.exploring = (frame, forced, region)
        t = self.tracer
        layers, domain = len(t.layers), len(t.domain)
        try:
            out = module.forward(*args, **kwargs)
        except _Local as e:
            first = typical(e.rel)
            sides = {}
            for value in (first, not first):
                sides[value] = self._paths(module, frame, args, kwargs, snapshot, {**forced, e.rel: value}, budget)
                if sides[value] is _ABORT:
                    return _ABORT
            return Node(e.frame, e.rel, first, sides)
        except ShapeError as err:
            return None if getattr(err, "nowhere", False) else RAISES
        except Exception:  # noqa: BLE001 - the model's own raise on this path: a guard, for the executor
            return RAISES
        budget[0] -= 1
        if budget[0] < 0:
            return _ABORT
        added = [c for c in t.domain[domain:] if not any(c is r for r in region)]
        base = tuple(c.expr for c in t.domain[:snapshot[1]] if len(c.expr.free_symbols) == 1)
        calls = frozenset(n for n in self.names.values() if n)
        new = tuple(t.layers[layers:])
        return Leaf(tuple(c.expr for c in region), _unwrap(out), new, tuple(added), base=base,
                    calls=frozenset(layer.name for layer in new if layer.name in calls))

    def _snapshot(self):
        t = self.tracer
        return (len(t.layers), len(t.domain), len(t.modules), dict(t._calls), dict(self.counts), len(self.choices))

    def _restore_snapshot(self, snap) -> None:
        t = self.tracer
        for c in t.domain[snap[1]:]:
            t._seen.discard(c.expr)
        del t.layers[snap[0]:], t.domain[snap[1]:], t.modules[snap[2]:]
        t._calls, self.counts = dict(snap[3]), dict(snap[4])
        del self.choices[snap[5]:]
        t.domain_changed()
