"""Advanced indexing, as torch does it (the helpers of :func:`~symshape.rules.tensor.getitem`).

A list of ints (``x[:, [0, 1, 8, 16]]``), a nested list or an index tensor selects along its dim: the
selected positions take the index's shape. Several such indices broadcast together into one shape B.
Integers select first (they are not advanced indices in torch, unlike NumPy), so what decides where
B goes is only whether the advanced indices are next to each other among the remaining slices and
Nones: if they are, B replaces them in place (``x[:, L, 0, L]`` is (N, *B)); otherwise B goes
first (``x[:, L, :, L]`` is (*B, N, C)). A 1-d list of bools is a mask: the dim must have its length,
and it keeps the Trues. The entries of a list must lie in [-size, size): a ShapeError on a fixed
dim, a domain condition on a symbolic one (torch's meta kernels do not check it; the CPU raises
IndexError).

>>> import sympy
>>> from symshape.symbols import symbols
>>> H = symbols("H")
>>> list_index(H, [0, 1, 8, 16, -2])
((5,), ((H >= 17, "the list index's entries (-2 to 16) must lie in [-size, size) of a dim of size H"),))
"""
from __future__ import annotations

import sympy

from ..symbols import ShapeError
from .common import fmt_size

__all__ = ["is_list_index", "list_index", "place"]


def is_list_index(it) -> bool:
    """Whether an index item is a (possibly nested) list of ints or bools."""
    return isinstance(it, list)


def _list_shape(v, depth=0) -> tuple:
    if not isinstance(v, list):
        if isinstance(v, bool) or isinstance(v, (int, sympy.Integer)):
            return ()
        raise ShapeError(f"a list index holds integers (or bools, a mask), got {v!r}")
    shapes = {_list_shape(x, depth + 1) for x in v}
    if len(shapes) > 1:
        raise ShapeError(f"a nested list index must be rectangular, got rows of shapes {sorted(shapes)}")
    return (len(v), *(shapes.pop() if shapes else ()))


def _flat(v) -> list:
    return [y for x in v for y in _flat(x)] if isinstance(v, list) else [v]


def list_index(size, it: list) -> tuple:
    """``(index shape, requirements)`` of a list index on a dim of *size*."""
    shape = _list_shape(it)
    entries = _flat(it)
    if entries and all(isinstance(e, bool) for e in entries):
        if len(shape) != 1:
            raise ShapeError(f"a nested list of bools (a {len(shape)}-d mask) is not supported as an index; "
                             "index with a 1-d mask per dim")
        reqs = ()
        if size.is_Integer and int(size) != len(it):
            raise ShapeError(f"the mask of {len(it)} bools does not match the dim of size {size}")
        if not size.is_Integer:
            reqs = ((sympy.Eq(size, len(it)), f"the mask of {len(it)} bools must have the dim's size"),)
        return (sum(entries),), reqs
    values = [int(e) for e in entries]
    if not values:
        return shape, ()
    high, low = max(values), min(values)
    need = max(high + 1, -low)  # -size <= v < size for every entry v
    if size.is_Integer:
        bad = [v for v in values if not -int(size) <= v < int(size)]
        if bad:
            raise ShapeError(f"index {bad[0]} is out of bounds for a dim of size {size} (entries must lie in "
                             f"[{-int(size)}, {int(size) - 1}])")
        return shape, ()
    span = f"{low} to {high}" if low != high else str(low)
    return shape, ((sympy.Ge(size, need), f"the list index's entries ({span}) must lie in [-size, size) of a dim "
                                          f"of size {fmt_size(size)}"),)


def place(positions: list, index_shape: tuple) -> tuple:
    """The output shape from *positions* (each a size, or None for an advanced index) and the
    broadcast shape of the advanced indices: in place where they are adjacent, else first."""
    where = [k for k, p in enumerate(positions) if p is None]
    rest = [p for p in positions if p is not None]
    if where == list(range(where[0], where[0] + len(where))):
        return (*rest[:where[0]], *index_shape, *rest[where[0]:])
    return (*index_shape, *rest)
