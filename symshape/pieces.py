"""Piecewise reports: where a forward branches on the sizes and both sides run (``if h >= 224:``),
each side is a piece, traced on its own with its condition assumed (:func:`split_into_pieces`).

The executor (execute.py) goes on along the side it took and records each such branch
(:class:`~symshape.symbols.Split`); the piece tracer then raises
:class:`~symshape.symbols.BothBranches` with the report of that path. That path is one piece; the
other side of each branch is traced under the sides taken before it, and split again where it
branches. A side no size reaches, or whose forward fails at every size, is dropped, and the
condition of the side kept says why.
"""
from __future__ import annotations

from dataclasses import replace

import torch.nn as nn

from .report import Condition, Shape
from .symbols import BothBranches, ShapeError

__all__ = ["split_into_pieces"]


def split_into_pieces(trace_piece, model: nn.Module, shape: Shape) -> list:
    """The reports of *model*'s pieces: ``[report]`` where its forward takes one path.
    *trace_piece(model, shape, assumed, memo)* traces one path with the branch conditions *assumed*
    (trace.py); the rule results in *memo* are kept for every piece."""
    return _pieces(trace_piece, model, shape, (), [_MAX_PIECES], {})


_MAX_PIECES = 8  # pieces of a piecewise report (each a full trace of the forward)


def _show_cond(cond) -> str:
    from .printing import fmt

    return fmt(cond.expr)


class _TooMany(Exception):
    """The exploration of a forward's branches ran out of pieces."""


def _nowhere(err: ShapeError) -> ShapeError:
    err.nowhere = True  # the trace (or the piece being traced) holds at no size
    return err


def _pieces(trace_piece, model: nn.Module, shape: Shape, assumed: tuple, budget: list, memo: dict) -> list:
    """The reports of the pieces of *model* under the branch conditions *assumed*: one report
    where its forward takes one path, else one per path (each side of a branch that runs at some
    size is a piece, traced with its condition assumed; a side no size reaches is dropped). *budget*
    holds how many more pieces may be traced (shared by the whole exploration); *memo* the rule
    results kept for the whole trace (memo.py)."""
    try:
        if budget[0] <= 0:
            raise _TooMany
        piece = trace_piece(model, shape, assumed, memo)
        budget[0] -= 1
        return [piece]
    except BothBranches as err:
        return _sides(trace_piece, model, shape, assumed, budget, memo, err, 0)


def _sides(trace_piece, model: nn.Module, shape: Shape, assumed: tuple, budget: list, memo: dict, err: BothBranches,
           k: int) -> list:
    """The pieces of a trace under *assumed* whose forward branched where both sides run
    (``err.splits``), from the *k*-th branch on: the side taken is the path traced, up to the next
    branch (at the last one, ``err.report``: that path's report, made once); the other side is
    traced on its own, with the sides taken before it assumed."""
    from .solve.solver import feasible

    if k == len(err.splits):
        if err.report is None:  # the path traced does not run to its end: traced again with its sides assumed
            return _pieces(trace_piece, model, shape, assumed, budget, memo)
        if budget[0] <= 0:
            raise _TooMany
        budget[0] -= 1
        conds = {split.index: cond for split, cond in zip(err.splits, assumed[len(assumed) - len(err.splits):])}
        return [replace(err.report, domain=tuple(conds.get(i, c) for i, c in enumerate(err.report.domain)),
                        branch=assumed)]
    split = err.splits[k]
    if any(split.taken == a.expr or split.other == a.expr for a in assumed):
        raise ShapeError(f"{split}, even where its condition is assumed; symshape cannot split this forward "
                         "into pieces: register a shape rule for the module that branches (@symshape.register), "
                         "or fix the size it branches on in the input spec") from None
    sides, dropped = [], []
    for expr in (split.taken, split.other):
        cond = Condition(expr, split.layer, split.kind, split.reason)
        why = feasible(expr, [*split.domain, *(a.expr for a in assumed)])
        if why is not None:
            dropped.append(f"no size takes the other side ({why})")
            continue
        try:
            if expr is split.taken:
                sides.append((cond, _sides(trace_piece, model, shape, assumed + (cond,), budget, memo, err, k + 1)))
            else:
                sides.append((cond, _pieces(trace_piece, model, shape, assumed + (cond,), budget, memo)))
        except _TooMany:
            raise ShapeError(f"{split}; its branches on the sizes split it into more than {_MAX_PIECES} pieces, "
                             "each traced on its own: register a shape rule for the module that branches "
                             "(@symshape.register), or fix the size it branches on in the input spec") from None
        except ShapeError as inner:
            if not getattr(inner, "nowhere", False):
                raise
            if getattr(inner, "by_rule", False):
                # the side's formulas contradict themselves (a shape rule's condition fails at every
                # size there) while torch may run: no piece can be dropped on that, so no answer
                raise ShapeError(f"{split}; on the side where {_show_cond(cond)}, {str(inner).splitlines()[0]}; "
                                 "symshape cannot tell whether torch runs there, so it gives no answer: register "
                                 "a shape rule for the module that branches (@symshape.register), or fix the "
                                 "size it branches on in the input spec") from None
            dropped.append(f"the other side fails: {str(inner).splitlines()[0]}")
    if not sides:
        raise _nowhere(ShapeError(f"{split}, and neither side runs: {'; '.join(dropped)}")) from None
    out = []
    for cond, reports in sides:
        note = dropped[0] if dropped else "the other side is another piece of the report (rep.pieces)"
        marked = replace(cond, reason=f"{cond.reason}; {note}")
        out += [replace(r, domain=tuple(marked if c is cond else c for c in r.domain),
                        branch=tuple(marked if c is cond else c for c in r.branch)) for r in reports]
    return out
