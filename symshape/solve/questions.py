"""Questions about a report, attached to it with ``@report_method``: ``rep.solve()``,
``rep.valid_inputs()``, ``rep.min_input()``, ``rep.exact_inputs()``, ``rep.inputs_for()``,
``rep.shape_conditions()``, ``rep.explain_solution()``, and the conditions they build
(:func:`exactness_conditions`, per-layer ranges over an answer)."""
from __future__ import annotations


import sympy

from ..evaluate import compile_expr
from ..monotone import _dir
from ..sets import SolutionSet
from ..symbols import ShapeError

from ..report import Condition, report_method, shapes_of
from .solver import solve


def exactness_conditions(report) -> list:
    """For every conv and pool of the report, per spatial dim, the condition that its windows
    cover every input row: ``(out - 1)·s + e - p >= L`` with stride s, window extent
    e = d(k - 1) + 1, padding p (at the end), input size L and output size out. A window that
    stops early drops the rows after it (floor mode with a remainder larger than the padding).
    The windows come from each layer's ``windows`` (:mod:`symshape.rules.window`, the one home of
    the window arithmetic), which JSON keeps, so a report read back from JSON answers too.

    >>> import torch.nn as nn
    >>> from symshape.trace import trace
    >>> rep = trace(nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2)), "1,3,H,W")
    >>> print(exactness_conditions(rep)[0])
    2*floor(H/2) >= H  [layer '0' (MaxPool2d): the windows cover every input row of dim 2]
    """

    out = []
    for layer in report.layers:
        # the sliding windows of convs and max/avg/LP pools (rules/window.py); transposed convs,
        # crops and resizes are not rows dropped by a stride, adaptive and fractional pools have none
        if "kernel_size" not in layer.attrs or not layer.windows or not layer.in_shapes:
            continue
        if not isinstance(layer.out_shape, tuple) or isinstance(layer.out_shape[0], tuple):
            continue
        nd = len(layer.windows)
        rank = len(layer.in_shape)
        for i, (w, size, o) in enumerate(zip(layer.windows, layer.in_shape[-nd:], layer.out_shape[-nd:])):
            if w is None or w.transposed or w.stride == 1 or not (size.free_symbols or o.free_symbols):
                continue
            rel = sympy.Ge(w.covered(size, o), size)
            if rel is sympy.true:
                continue
            out.append(Condition(rel, layer.name, layer.kind,
                                 f"the windows cover every input row of dim {rank - nd + i}"))
    return out


def layer_ranges(report, answer: SolutionSet, limit: int = 3) -> list:
    """Lines giving, for each of the first *limit* boxes of *answer*, every layer's output shape
    over the box (a size that varies prints as ``lo..hi``; shapes are monotone in the sizes); a
    layer with several outputs gives each of them."""

    lines = []
    for box in answer.boxes[:limit]:
        low = dict(zip(answer.free, (s.min() for s in box)))
        high = dict(zip(answer.free, (s.max() for s in box)))
        for tied, rep in answer.ties.items():
            a = compile_expr(rep)(low)
            b = None if None in (high[s] for s in rep.free_symbols) else compile_expr(rep)(high)
            if b is not None and b < a or b is None and _dir(rep, next(iter(rep.free_symbols)), low, set()) == -1:
                a, b = max(1, b) if b is not None else 1, a  # a tie that falls as its size grows
            low[tied], high[tied] = a, b
        text = ", ".join(s.text(x.name) for s, x in zip(box, answer.free))
        lines.append(f"per layer, over {text}:")
        for layer in report.layers:
            parts = []
            for shape in shapes_of(layer.out_shape):  # one shape, or each output of a multi-output layer
                dims = []
                for d in shape:
                    d = sympy.sympify(d, strict=True)
                    a = compile_expr(d)(low)
                    b = None if None in (high[s] for s in d.free_symbols) else compile_expr(d)(high)
                    dims.append(str(a) if a == b else f"{a}..{'' if b is None else b}")
                parts.append(f"({', '.join(dims)})")
            lines.append(f"  {layer.name!r} ({layer.kind}): {', '.join(parts)}")
    return lines


@report_method(name="solve")
def solve_report(report, *conditions, bounds=None):
    """The sizes at which the model runs and every extra condition holds (relations on this
    report's formulas, e.g. ``sympy.Eq(rep.layer("2").out_shape[1], 5408)`` or ``rep.macs <= 10**9``).

    >>> import sympy, symshape as ss
    >>> rep = ss.trace(ss.zoo.seed_case2(), "1,3,H,W")
    >>> H, W = rep.symbols
    >>> print(rep.solve(sympy.Eq(H, W)))
    H = W, 32 ≤ H ≤ 39
    >>> print(rep.solve(W <= 20))
    64 ≤ H ≤ 71, 16 ≤ W ≤ 20
    128 ≤ H ≤ 135, 8 ≤ W ≤ 15
    """

    if report.pieces and all(_on_sizes_only(c) for c in conditions):
        return union([solve([*p.domain, *conditions], over=report.symbols, bounds=bounds) for p in report.pieces])
    answer = solve([*report.domain, *conditions], over=report.symbols, bounds=bounds)
    if report.pieces:  # conditions on the formulas of the first piece: the answer is within that piece
        where = ", ".join(repr(c) for c in report.branch)
        answer.note = "; ".join(filter(None, [answer.note, (
            f"the model is piecewise and these conditions are on the formulas of its first piece, so the answer "
            f"covers only the sizes where {where}; ask the others with rep.pieces[k].solve(...)")]))
    return answer


def _on_sizes_only(condition) -> bool:
    """Whether a condition is on the input sizes themselves (``W <= 20``, ``H = W``), the same in
    every piece, rather than on a piece's formulas."""
    expr = getattr(condition, "expr", condition)
    return not isinstance(expr, sympy.Basic) or not expr.has(sympy.floor, sympy.ceiling, sympy.Max, sympy.Min,
                                                              sympy.Mod, sympy.Piecewise)


def _over_pieces(report, conditions_of, bounds):
    """The union over the pieces of a piecewise report (each with its own formulas) of the sizes
    that satisfy ``conditions_of(piece)``; for a report of one piece, its answer."""
    if not report.pieces:
        return report.solve(*conditions_of(report), bounds=bounds)
    return union([solve([*p.domain, *conditions_of(p)], over=report.symbols, bounds=bounds) for p in report.pieces])


def union(answers: list) -> SolutionSet:
    """One answer for the pieces of a piecewise report: their boxes together (the pieces' domains
    do not overlap), their notes and scan bounds kept."""
    first = answers[0]
    if any(a.ties != first.ties or a.symbols != first.symbols for a in answers):
        raise ShapeError("the pieces of this report give answers of different forms (one ties sizes together, "
                         "another not); ask each piece: [p.solve(...) for p in rep.pieces]")
    scanned: dict = {}
    for a in answers:
        for s, top in a.scanned.items():
            scanned[s] = min(top, scanned.get(s, top))
    notes = list(dict.fromkeys(a.note for a in answers if a.note))
    methods = list(dict.fromkeys(a.method for a in answers if a.method))
    reasons = "; ".join(f"piece {i + 1}: {a.reason}" for i, a in enumerate(answers) if a.reason)
    return SolutionSet(first.symbols, [b for a in answers for b in a.boxes], first.ties, ", ".join(methods),
                       "; ".join(notes), reasons, [line for a in answers for line in a.steps], scanned)

@report_method
def valid_inputs(report, bounds=None):
    """Every size at which the model runs: the solution set of the domain.

    >>> import symshape as ss
    >>> print(ss.trace(ss.zoo.seed_case1(), "1,3,H,W").valid_inputs())
    H ∈ {7, 8}, W ∈ {343, 344}
    H ∈ {31, 32}, W ∈ {31, 32}
    H ∈ {343, 344}, W ∈ {7, 8}
    """
    return report.solve(bounds=bounds)

@report_method
def min_input(report):
    """The smallest valid sizes: the valid points with no other valid point at most as large
    in every size.

    >>> import symshape as ss
    >>> print(ss.trace(ss.zoo.seed_case1(), "1,3,H,W").min_input())
    H = 7, W = 343
    H = 31, W = 31
    H = 343, W = 7
    >>> ss.trace(ss.zoo.plainnet50().eval(), "1,3,H,W").min_input().min()
    (1, 1)
    >>> ss.trace(ss.zoo.plainnet50(), "1,3,H,W").min_input().min()  # training: BatchNorm needs 2 values
    (1, 33)
    """
    return report.valid_inputs().minimal()

@report_method
def exact_inputs(report, bounds=None):
    """The valid sizes at which no conv or pool drops input rows or columns (every window
    grid reaches the end of its input).

    >>> import symshape as ss
    >>> print(ss.trace(ss.zoo.seed_case2(), "1,3,H,W").exact_inputs())
    H = 8, W = 128
    H = 16, W = 64
    H = 32, W = 32
    H = 64, W = 16
    H = 128, W = 8
    >>> import torch.nn as nn
    >>> print(ss.trace(nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2), nn.MaxPool2d(2)), "1,3,H,W").exact_inputs())
    H ≡ 0 (mod 8), H ≥ 8, W ≡ 0 (mod 8), W ≥ 8
    """

    return _over_pieces(report, exactness_conditions, bounds)

@report_method
def inputs_for(report, name: str, shape, bounds=None):
    """The sizes at which the model runs and layer *name* outputs *shape*. A shorter shape
    is matched against the trailing dims (``(7, 7)``: the spatial dims; ``(5408,)``: the
    flatten size), and ``None`` matches anything.

    >>> import symshape as ss
    >>> rep = ss.trace(ss.zoo.plainnet50(), "1,3,H,W")
    >>> print(rep.inputs_for("146", (7, 7)))        # the last conv gives a 7x7 map
    193 ≤ H ≤ 224, 193 ≤ W ≤ 224
    >>> print(rep.inputs_for("146", (None, 1, 10)))
    1 ≤ H ≤ 32, 289 ≤ W ≤ 320
    """
    return _over_pieces(report, lambda p: p.shape_conditions(name, shape), bounds)

@report_method
def shape_conditions(report, name: str, shape) -> list:
    """The equations "layer *name* outputs *shape*" that :meth:`inputs_for` solves (trailing
    dims; ``None`` matches anything), to combine with other conditions in :meth:`solve`.

    >>> import symshape as ss
    >>> ss.trace(ss.zoo.seed_case1(), "1,3,H,W").shape_conditions("0", (None, 13))
    [Eq(floor(W/2 - 7/2) + 1, 13)]
    """
    import sympy

    out = report.layer(name).out_shape
    shape = tuple(shape)
    if len(shape) > len(out):
        raise ShapeError(f"layer {name!r} outputs {len(out)}-d shapes {out!r}, got the {len(shape)}-d target {shape}")
    return [sympy.Eq(d, int(v)) for d, v in zip(out[len(out) - len(shape):], shape) if v is not None]

@report_method
def explain_solution(report, *conditions, bounds=None) -> str:
    """How the answer to :meth:`solve` (by default :meth:`valid_inputs`) was found: the
    inversions step by step, then per layer the range of each output size over the answer.

    >>> import symshape as ss
    >>> print(ss.trace(ss.zoo.seed_case1(), "1,3,H,W").explain_solution())
    5408 = 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) ⇔ (floor((H - 7)/2) + 1) · (floor((W - 7)/2) + 1) = 169: try every split of 169 into 2 factors
      1 = floor((H - 7)/2) + 1 ⇔ 7 ≤ H ≤ 8
      169 = floor((W - 7)/2) + 1 ⇔ 343 ≤ W ≤ 344
      13 = floor((H - 7)/2) + 1 ⇔ 31 ≤ H ≤ 32
      13 = floor((W - 7)/2) + 1 ⇔ 31 ≤ W ≤ 32
      169 = floor((H - 7)/2) + 1 ⇔ 343 ≤ H ≤ 344
      1 = floor((W - 7)/2) + 1 ⇔ 7 ≤ W ≤ 8
    answer: H ∈ {7, 8}, W ∈ {343, 344}
    H ∈ {31, 32}, W ∈ {31, 32}
    H ∈ {343, 344}, W ∈ {7, 8}
    per layer, over H ∈ {7, 8}, W ∈ {343, 344}:
      '0' (Conv2d): (1, 32, 1, 169)
      '1' (ReLU): (1, 32, 1, 169)
      '2' (Flatten): (1, 5408)
      '3' (Linear): (1, 10)
    per layer, over H ∈ {31, 32}, W ∈ {31, 32}:
      '0' (Conv2d): (1, 32, 13, 13)
      '1' (ReLU): (1, 32, 13, 13)
      '2' (Flatten): (1, 5408)
      '3' (Linear): (1, 10)
    per layer, over H ∈ {343, 344}, W ∈ {7, 8}:
      '0' (Conv2d): (1, 32, 169, 1)
      '1' (ReLU): (1, 32, 169, 1)
      '2' (Flatten): (1, 5408)
      '3' (Linear): (1, 10)
    """

    answer = solve([*report.domain, *conditions], over=report.symbols, bounds=bounds)
    return "\n".join([answer.explain(), *layer_ranges(report, answer)])
