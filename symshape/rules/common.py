"""Helpers shared by the rules: shape checks that produce readable errors and requirements."""
from __future__ import annotations

from typing import Sequence

import sympy

from ..floors import floor_div, whole_parts_out
from ..printing import fmt
from ..symbols import ShapeError

__all__ = ["prod", "ntuple", "split_spatial", "at_least", "equal", "divisible", "exact_div", "fmt_shape", "fmt_size", "dim_index",
           "check_channels", "more_than_one"]


def prod(items) -> sympy.Expr:
    """The product, built in one Mul so that sympy keeps ``32*(a + 1)*(b + 1)`` factored."""
    return sympy.Mul(*items)


def ntuple(value, n: int) -> tuple:
    """``value`` repeated n times when it is a scalar, else as a tuple of length n."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1 and n > 1:
            return tuple(value) * n
        return tuple(value)
    return (value,) * n


def fmt_shape(shape) -> str:
    """A shape for messages: ``(1, 32, floor((H - 7)/2) + 1)``."""
    return "(" + ", ".join(fmt(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_size(expr) -> str:
    """One size as people write it, ``floor((H - 7)/2) + 1``, for messages."""
    return fmt(expr)


def at_least(expr, low: int, why: str) -> tuple:
    """The requirement ``expr >= low``."""
    return (sympy.Ge(expr, low), why)


def equal(got, want, why: str) -> tuple:
    """The requirement ``got == want`` (kept unevaluated where sympy already sees that it never holds,
    so that the tracer can say why)."""
    if not any(getattr(v, "free_symbols", None) for v in (got, want)):
        return (sympy.Eq(got, want), why)
    diff = sympy.sympify(got, strict=True) - sympy.sympify(want, strict=True)
    if diff == 0 or diff.has(sympy.floor) and sympy.expand(whole_parts_out(diff)) == 0:
        return (sympy.true, why)
    # unevaluated: sympy's own evaluation of an equation between floors rewrites them (seconds on a
    # Swin window partition); the tracer and the solver decide it
    return (sympy.Eq(got, want, evaluate=False), why)


def divisible(expr, by: int, why: str) -> tuple:
    """The requirement ``expr ≡ 0 (mod by)``."""
    return (sympy.Eq(sympy.Mod(expr, by), 0), why)


def exact_div(expr, by: int) -> sympy.Expr:
    """``expr / by`` for an expr that a requirement makes divisible: kept integer-valued."""
    return floor_div(expr, by)


_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def split_spatial(x: Sequence, nd: int, what: str = "input") -> tuple:
    """``(batch dims, channels, spatial dims)`` of an (N, C, *spatial) or unbatched (C, *spatial)
    input with nd spatial dims, or a ShapeError that says which ranks are accepted."""
    if len(x) == nd + 2:
        return tuple(x[:1]), x[1], tuple(x[2:])
    if len(x) == nd + 1:
        return (), x[0], tuple(x[1:])
    raise ShapeError(
        f"expected a {nd + 2}-d (N, C, {_SPATIAL.get(nd, '...')}) "
        f"or {nd + 1}-d unbatched {what}, got {len(x)}-d {fmt_shape(x)}"
    )


def check_channels(c, expected: int, attr: str, suggestion: str) -> tuple:
    """Requirements that the channel count equals *expected*; a ShapeError if it cannot."""
    if c.is_Integer:
        if int(c) != expected:
            raise ShapeError(f"expected {expected} channels ({attr}={expected}), got {c}; {suggestion}")
        return ()
    return (equal(c, expected, f"{attr}={expected} channels"),)


def dim_index(dim: int, rank: int, op: str) -> int:
    """A possibly negative dim as an index into a shape of the given rank."""
    if not -rank <= dim < max(rank, 1):
        raise ShapeError(f"{op}: dim {dim} is out of range for a {rank}-d input (valid: {-rank} to {rank - 1})")
    return dim % rank if rank else 0


def more_than_one(dims, why: str) -> tuple:
    """Requirements that ``prod(dims) >= 2`` (torch's "expected more than 1 value"); none when the
    constant dims alone make it hold, since every size symbol is >= 1."""
    const = prod(d for d in dims if d.is_Integer)
    if const >= 2:
        return ()
    return (at_least(prod(dims), 2, why),)


def _int(value, what: str) -> int:
    if isinstance(value, (int, sympy.Integer)) and not isinstance(value, bool):
        return int(value)
    shown = fmt_size(value) if isinstance(value, sympy.Expr) else repr(value)
    raise ShapeError(f"{what} must be a fixed integer, got {shown}")


def _sizes(args) -> tuple:
    """Sizes given as varargs ``(2, 3)`` or as one sequence ``((2, 3),)``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(sympy.sympify(a, strict=True) for a in args)
